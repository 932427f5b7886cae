/* Tests of agent/tc_snapshot against a real kernel: take an interface's tc
 * configuration, delete its root, restore, and check with tc(8) itself
 * that the configuration is back exactly; or, for what cannot be put back,
 * that taking the snapshot refuses and changes nothing.
 *
 * Needs root. Every test makes its own network namespace chaos-t-snap-<pid>
 * (tc_snap_fx.h lists its interfaces) and deletes it in .fini, so nothing
 * outside the namespace is touched.
 *
 * What "exactly" means here: the text of `tc -j qdisc show`, `tc -j class
 * show` and `tc -j filter show parent P` for every qdisc and class P is the
 * same before and after, byte for byte (no -s: statistics are not
 * configuration). Nothing is masked: handles the kernel allocates (8001:
 * qdiscs, u32's 800: tables, action indexes) must come back the same.
 *
 * Runs twice: on the host (ctest host/test_tc_snapshot), whose kernel lacks
 * many kinds (no prio, netem, sfq ...: those cases skip there), and inside
 * the VM (ctest vm/test_tc_snapshot: Debian's 6.1 under QEMU, see
 * tests/vm/vm-run), where every kind is there and nothing may skip.
 * tc_snapshot_cases.c holds the table of trees; this file the fixture and
 * the tests of the journal form and of restores that must not pass. Under
 * TCG each exec costs ~80 ms, so trees are built with one tc batch, the
 * namespace with one ip batch, and roots are deleted through netlink. */
#include "tc_snap_fx.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "util.h"

struct snap_fx fx;

/* Runs argv (no shell), stdin /dev/null, stdout and stderr into *out
 * unless out is NULL; returns the exit status (128+N for signal N). */
static int spawn(char *const argv[], char **out)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(p[0], buf + len, cap - len - 1)) > 0 || (n < 0 && errno == EINTR)) {
        if (n < 0)
            continue;
        len += (size_t)n;
        if (cap - len < 4096)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* prog -n NS [flags] -b FILE, FILE holding lines. */
static int batch(const char *prog, const char *flag1, const char *flag2, const char *lines,
                 char **out)
{
    char path[] = "/tmp/chaos-t-snap-batch.XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
    size_t len = strlen(lines);
    cr_assert_eq(write(fd, lines, len), (ssize_t)len);
    close(fd);
    char *argv[8];
    int i = 0;
    argv[i++] = (char *)prog;
    argv[i++] = "-n";
    argv[i++] = fx.ns;
    if (flag1)
        argv[i++] = (char *)flag1;
    if (flag2)
        argv[i++] = (char *)flag2;
    argv[i++] = "-b";
    argv[i++] = path;
    argv[i] = NULL;
    int rc = spawn(argv, out);
    unlink(path);
    return rc;
}

int tc_batch(const char *lines, bool json, char **out)
{
    return batch("tc", json ? "-j" : NULL, NULL, lines, out);
}

void tcb_ok(const char *fmt, ...)
{
    char lines[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lines, sizeof lines, fmt, ap);
    va_end(ap);
    char *out = NULL;
    int rc = tc_batch(lines, false, &out);
    cr_assert_eq(rc, 0, "tc -b:\n%s\nexit %d: %s", lines, rc, out);
    free(out);
}

/* Appends the handles tc names in out ("handle":"1:10" in JSON, the third
 * word of a text line "class htb 1:10 ...") as filter show commands, leaving
 * out the kernel's defaults (0:, :N) and ingress (ffff:). */
static void filter_cmds(const char *dev, const char *out, char *cmds, size_t len)
{
    size_t n = strlen(cmds);
    for (const char *p = out; *p; p++) {
        char h[32];
        if (strncmp(p, "\"handle\":\"", 10) == 0) {
            if (sscanf(p + 10, "%31[^\"]", h) != 1)
                continue;
        } else if ((p == out || p[-1] == '\n') && strncmp(p, "class ", 6) == 0) {
            if (sscanf(p, "class %*s %31s", h) != 1)
                continue;
        } else {
            continue;
        }
        if (strcmp(h, "0:") == 0 || h[0] == ':' || strncmp(h, "ffff:", 5) == 0)
            continue;
        n += (size_t)snprintf(cmds + n, len - n, "filter show dev %s parent %s\n", dev, h);
        cr_assert(n < len, "too many qdiscs and classes on %s", dev);
    }
}

char *tc_state(const char *dev)
{
    char cmds[256];
    snprintf(cmds, sizeof cmds, "qdisc show dev %s\nclass show dev %s\n", dev, dev);
    char *objs = NULL;
    int rc = tc_batch(cmds, true, &objs);
    cr_assert_eq(rc, 0, "tc qdisc/class show dev %s: exit %d: %s", dev, rc, objs);
    static char fcmds[32768];
    fcmds[0] = '\0';
    filter_cmds(dev, objs, fcmds, sizeof fcmds);
    if (!fcmds[0])
        return objs;
    /* -force: prio's and mq's classes have no filter block of their own,
     * and tc says so; the same words before and after. */
    char *filters = NULL;
    (void)batch("tc", "-j", "-force", fcmds, &filters);
    size_t a = strlen(objs), b = strlen(filters);
    char *all = malloc(a + b + 1);
    memcpy(all, objs, a);
    memcpy(all + a, filters, b + 1);
    free(objs);
    free(filters);
    return all;
}

char *state_differs(const char *dev, const char *want)
{
    for (int i = 0; i < 40; i++) {
        _cleanup_free_ char *now = tc_state(dev);
        if (strcmp(now, want) == 0)
            return NULL;
        usleep(50000);
    }
    _cleanup_free_ char *now = tc_state(dev);
    if (strcmp(now, want) == 0)
        return NULL;
    /* Some context before the first difference, up to a line start. */
    const char *b = want, *a = now;
    while (*b && *b == *a)
        b++, a++;
    for (int i = 0; i < 300 && b > want && b[-1] != '\n'; i++)
        b--, a--;
    char *msg = NULL;
    if (asprintf(&msg, "tc shows something else, from byte %zu:\nbefore: %.600s\nafter:  %.600s",
                 (size_t)(b - want), b, a) < 0)
        msg = strdup("tc shows something else");
    return msg;
}

int fx_ifindex(const char *dev)
{
    struct chaos_err err = {0};
    int ifindex = 0;
    cr_assert_eq(nltc_link_index(fx.t, dev, &ifindex, &err), 0, "%s", err.msg);
    return ifindex;
}

void del_root(const char *dev)
{
    struct chaos_err err = {0};
    if (nltc_qdisc_del(fx.t, fx_ifindex(dev), TC_H_ROOT, 0, "deleting the root", &err) < 0)
        return; /* the kernel's default root: nothing to delete */
}

struct tc_snapshot *take_ok(const char *dev)
{
    struct chaos_err err = {0};
    struct tc_snapshot *s = NULL;
    int r = tc_snapshot_take(fx.t, fx_ifindex(dev), dev, &s, &err);
    cr_assert_eq(r, 0, "take: %d %s", r, err.msg);
    cr_assert(s);
    return s;
}

/* In a child: enter the namespace and turn IPv6 off there, before the
 * interfaces exist (no exec: sysctl(8) would be one more). */
static void ipv6_off(void)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int ns = open(fx.nspath, O_RDONLY | O_CLOEXEC);
        if (ns < 0 || setns(ns, CLONE_NEWNET) < 0)
            _exit(1);
        static const char *const knobs[] = {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
                                            "/proc/sys/net/ipv6/conf/default/disable_ipv6"};
        for (size_t i = 0; i < ARRAY_SIZE(knobs); i++) {
            int fd = open(knobs[i], O_WRONLY | O_CLOEXEC);
            if (fd < 0 || write(fd, "1", 1) != 1)
                _exit(2);
            close(fd);
        }
        _exit(0);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "turning IPv6 off in %s: status %d", fx.ns,
              st);
}

void snap_setup(void)
{
    memset(&fx, 0, sizeof fx);
    if (geteuid() != 0)
        cr_skip_test("needs root (network namespaces, tc)");
    fx.in_vm = getenv("CHAOS_VM") != NULL;
    snprintf(fx.ns, sizeof fx.ns, "chaos-t-snap-%d", (int)getpid());
    snprintf(fx.nspath, sizeof fx.nspath, "/run/netns/%s", fx.ns);
    if (access(fx.nspath, F_OK) == 0)
        (void)spawn((char *const[]){"ip", "netns", "del", fx.ns, NULL}, NULL);
    char *out = NULL;
    int rc = spawn((char *const[]){"ip", "netns", "add", fx.ns, NULL}, &out);
    cr_assert_eq(rc, 0, "ip netns add %s: %s", fx.ns, out);
    free(out);
    fx.made = true;
    ipv6_off();
    rc = batch("ip", NULL, NULL,
               "link add " DEV " type veth peer name veth1\n"
               "link set " DEV " up\n"
               "link set veth1 up\n"
               "link add mq0 numtxqueues 4 type veth peer name mq1 numtxqueues 4\n"
               "link set mq0 up\n"
               "link set mq1 up\n"
               "link add ifb4 numtxqueues 4 type ifb\n"
               "link set ifb4 up\n",
               &out);
    cr_assert_eq(rc, 0, "ip -b in %s: %s", fx.ns, out);
    free(out);
    struct chaos_err err = {0};
    cr_assert_eq(nltc_open(fx.nspath, NULL, &fx.t, &err), 0, "%s", err.msg);
}

void snap_teardown(void)
{
    nltc_close(fx.t);
    fx.t = NULL;
    if (fx.made)
        (void)spawn((char *const[]){"ip", "netns", "del", fx.ns, NULL}, NULL);
    fx.made = false;
}

TestSuite(tc_snapshot, .init = snap_setup, .fini = snap_teardown, .timeout = 120);

/* A configured tree used by the tests below: htb with classes, a leaf
 * qdisc and u32 filters, one of them in a class's block. */
#define HTB_TREE                                                                                   \
    "qdisc add dev " DEV " root handle 1: htb default 20 r2q 5\n"                                  \
    "class add dev " DEV " parent 1: classid 1:1 htb rate 100mbit ceil 100mbit\n"                  \
    "class add dev " DEV " parent 1:1 classid 1:10 htb rate 10mbit ceil 50mbit prio 1 "            \
    "quantum 1500 burst 15k\n"                                                                     \
    "class add dev " DEV " parent 1:1 classid 1:20 htb rate 20mbit ceil 100mbit\n"                 \
    "qdisc add dev " DEV " parent 1:10 handle 10: pfifo limit 77\n"                                \
    "filter add dev " DEV " parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 "            \
    "flowid 1:10\n"                                                                                \
    "filter add dev " DEV " parent 1:1 protocol ip prio 3 u32 match ip src 10.9.0.0/16 "           \
    "flowid 1:20\n"

Test(tc_snapshot, kernel_default_root_gives_an_empty_snapshot)
{
    _cleanup_free_ char *before = tc_state(DEV);
    struct tc_snapshot *s = take_ok(DEV);
    cr_assert(tc_snapshot_empty(s));
    cr_assert_eq(tc_snapshot_count(s), 0);
    json_t *j = tc_snapshot_to_json(s);
    cr_assert(json_is_array(j) && json_array_size(j) == 0);
    json_decref(j);
    struct chaos_err err = {0};
    cr_assert_eq(tc_snapshot_restore(fx.t, fx_ifindex(DEV), DEV, s, &err), 0, "%s", err.msg);
    _cleanup_free_ char *after = tc_state(DEV);
    cr_assert_str_eq(after, before);
    tc_snapshot_free(s);
}

Test(tc_snapshot, ingress_is_left_out)
{
    TCB("qdisc add dev " DEV " ingress\n"
        "filter add dev " DEV " parent ffff: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 "
        "action mirred egress redirect dev veth1\n");
    struct tc_snapshot *s = take_ok(DEV);
    cr_assert(tc_snapshot_empty(s), "the ingress qdisc was kept");
    tc_snapshot_free(s);
    TCB("qdisc add dev " DEV " root handle 1: tbf rate 1mbit burst 10k latency 50ms\n");
    _cleanup_free_ char *before = tc_state(DEV);
    s = take_ok(DEV);
    cr_assert_eq(tc_snapshot_count(s), 1, "kept %zu objects, want the tbf only",
                 tc_snapshot_count(s));
    del_root(DEV);
    struct chaos_err err = {0};
    cr_assert_eq(tc_snapshot_restore(fx.t, fx_ifindex(DEV), DEV, s, &err), 0, "%s", err.msg);
    _cleanup_free_ char *diff = state_differs(DEV, before);
    cr_assert_null(diff, "%s", diff);
    tc_snapshot_free(s);
}

/* ---- JSON, and restores that must not pass ---- */

static json_t *json_trip(const struct tc_snapshot *s)
{
    json_t *j = tc_snapshot_to_json(s);
    cr_assert(j);
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    json_error_t je;
    json_t *back = json_loads(txt, 0, &je);
    free(txt);
    cr_assert(back, "%s", je.text);
    return back;
}

Test(tc_snapshot, json_round_trip_restores)
{
    TCB(HTB_TREE "filter add dev " DEV " parent 1: prio 5 protocol ip u32 match ip dst "
                 "10.0.0.9/32 flowid 1:10 action mirred egress redirect dev veth1\n");
    _cleanup_free_ char *before = tc_state(DEV);
    struct tc_snapshot *s = take_ok(DEV);
    json_t *j = json_trip(s);
    struct tc_snapshot *s2 = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(tc_snapshot_from_json(j, &s2, &err), 0, "%s", err.msg);
    cr_assert_eq(tc_snapshot_count(s2), tc_snapshot_count(s));
    /* Same text both ways: the form is stable. */
    json_t *j1 = tc_snapshot_to_json(s), *j2 = tc_snapshot_to_json(s2);
    cr_assert(json_equal(j1, j2));
    json_decref(j1);
    json_decref(j2);
    json_decref(j);
    tc_snapshot_free(s);

    del_root(DEV);
    cr_assert_eq(tc_snapshot_restore(fx.t, fx_ifindex(DEV), DEV, s2, &err), 0, "%s", err.msg);
    _cleanup_free_ char *diff = state_differs(DEV, before);
    cr_assert_null(diff, "%s", diff);
    tc_snapshot_free(s2);
}

static void from_json_fails(const char *text, int want, const char *needle)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    cr_assert(j, "%s: %s", text, je.text);
    struct tc_snapshot *s = NULL;
    struct chaos_err err = {0};
    int r = tc_snapshot_from_json(j, &s, &err);
    json_decref(j);
    cr_assert_eq(r, want, "%.60s: gave %d (%s)", text, r, err.msg);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, needle), "%.60s: error lacks '%s': %s", text, needle, err.msg);
}

/* Hex of a tc message: nlmsghdr, tcmsg, then the attributes given as hex. */
static char *msg_hex(int type, uint32_t parent, uint32_t handle, uint32_t info, const char *attrs)
{
    size_t alen = strlen(attrs) / 2;
    struct {
        struct nlmsghdr h;
        struct tcmsg t;
    } m = {{(uint32_t)(sizeof m + alen), (uint16_t)type, 0, 0, 0},
           {.tcm_parent = parent, .tcm_handle = handle, .tcm_info = info}};
    char *out = malloc(2 * sizeof m + strlen(attrs) + 1);
    const unsigned char *p = (const unsigned char *)&m;
    for (size_t i = 0; i < sizeof m; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    strcpy(out + 2 * sizeof m, attrs);
    return out;
}

Test(tc_snapshot, from_json_refuses_damage)
{
    /* TCA_KIND "htb": 0800 0100 68746200 */
    _cleanup_free_ char *htb = msg_hex(RTM_NEWQDISC, TC_H_ROOT, 0x10000, 0, "0800010068746200");
    _cleanup_free_ char *bpf = msg_hex(RTM_NEWTFILTER, 0x10000, 1, 0x00010008,
                                       "0800010062706600"
                                       "08000b0000000000");
    _cleanup_free_ char *link = msg_hex(RTM_NEWLINK, TC_H_ROOT, 0x10000, 0, "0800010068746200");
    _cleanup_free_ char *child = msg_hex(RTM_NEWQDISC, 0x10001, 0x20000, 0, "0800010068746200");
    _cleanup_free_ char *again = msg_hex(RTM_NEWQDISC, 0x10001, 0x10000, 0, "0800010068746200");
    char buf[1024];
    from_json_fails("{}", -EINVAL, "not a JSON array");
    from_json_fails("[17]", -EINVAL, "object 0");
    from_json_fails("[\"abc\"]", -EINVAL, "object 0");
    snprintf(buf, sizeof buf, "[\"%.*sxx\"]", (int)strlen(htb) - 2, htb);
    from_json_fails(buf, -EINVAL, "not hex");
    snprintf(buf, sizeof buf, "[\"%s00000000\"]", htb);
    from_json_fails(buf, -EINVAL, "says");
    snprintf(buf, sizeof buf, "[\"%s\"]", link);
    from_json_fails(buf, -EINVAL, "malformed message type");
    snprintf(buf, sizeof buf, "[\"%s\",\"%s\"]", htb, bpf);
    from_json_fails(buf, -EOPNOTSUPP, "filter bpf");
    snprintf(buf, sizeof buf, "[\"%s\"]", child);
    from_json_fails(buf, -EINVAL, "root qdisc");
    snprintf(buf, sizeof buf, "[\"%s\",\"%s\"]", htb, htb);
    from_json_fails(buf, -EINVAL, "not a qdisc we would have kept");
    snprintf(buf, sizeof buf, "[\"%s\",\"%s\"]", htb, again);
    from_json_fails(buf, -EINVAL, "two qdiscs");
    /* And a good one passes. */
    snprintf(buf, sizeof buf, "[\"%s\"]", htb);
    json_t *j = json_loads(buf, 0, NULL);
    struct tc_snapshot *s = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(tc_snapshot_from_json(j, &s, &err), 0, "%s", err.msg);
    json_decref(j);
    tc_snapshot_free(s);
}

/* An sfq root in the journal form, with this limit and flows (divisor
 * 1024, depth 127, as sfq has them by default). */
static char *sfq_json(uint32_t limit, uint32_t flows)
{
    struct tc_sfq_qopt_v1 q = {.v0 = {.quantum = 1514, .limit = limit, .divisor = 1024,
                                      .flows = flows},
                               .depth = 127};
    char attrs[2 * (8 + NLA_HDRLEN + sizeof q) + 1];
    /* TCA_KIND "sfq" (8 bytes), then TCA_OPTIONS holding q. */
    size_t n = (size_t)sprintf(attrs, "0800010073667100");
    uint16_t len = (uint16_t)(NLA_HDRLEN + sizeof q), type = TCA_OPTIONS;
    n += (size_t)sprintf(attrs + n, "%02x%02x%02x%02x", len & 0xff, len >> 8, type & 0xff,
                         type >> 8);
    const unsigned char *p = (const unsigned char *)&q;
    for (size_t i = 0; i < sizeof q; i++)
        n += (size_t)sprintf(attrs + n, "%02x", p[i]);
    _cleanup_free_ char *m = msg_hex(RTM_NEWQDISC, TC_H_ROOT, 0x10000, 0, attrs);
    char *out = NULL;
    cr_assert(asprintf(&out, "[\"%s\"]", m) > 0);
    return out;
}

/* sfq's default shape (limit 127 below flows 128) is made by a request
 * without a limit; limit 100 with flows 128 (only tc qdisc change gets
 * there) by no single request. */
Test(tc_snapshot, sfq_shapes_no_request_makes_are_refused)
{
    _cleanup_free_ char *dflt = sfq_json(127, 128), *odd = sfq_json(100, 128);
    json_t *j = json_loads(dflt, 0, NULL);
    struct tc_snapshot *s = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(tc_snapshot_from_json(j, &s, &err), 0, "%s", err.msg);
    json_decref(j);
    tc_snapshot_free(s);
    from_json_fails(odd, -EOPNOTSUPP, "one request cannot make an sfq with limit 100, flows 128");
}

/* Rewrites, in the journal form, the tc_htb_opt of class classid. */
static void tamper_class(json_t *arr, uint32_t classid, void (*fn)(struct tc_htb_opt *))
{
    bool found = false;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *hex = json_string_value(json_array_get(arr, i));
        size_t n = strlen(hex) / 2;
        _cleanup_free_ unsigned char *m = malloc(n);
        for (size_t k = 0; k < n; k++)
            sscanf(hex + 2 * k, "%2hhx", &m[k]);
        struct nlmsghdr *h = (struct nlmsghdr *)m;
        struct tcmsg *t = NLMSG_DATA(h);
        if (h->nlmsg_type != RTM_NEWTCLASS || t->tcm_handle != classid)
            continue;
        /* TCA_OPTIONS, then TCA_HTB_PARMS inside it. */
        size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof *t);
        while (off + NLA_HDRLEN <= n) {
            struct nlattr *a = (struct nlattr *)(m + off);
            if ((a->nla_type & NLA_TYPE_MASK) == TCA_OPTIONS) {
                struct nlattr *p = (struct nlattr *)((unsigned char *)a + NLA_HDRLEN);
                cr_assert_eq(p->nla_type & NLA_TYPE_MASK, TCA_HTB_PARMS);
                fn((struct tc_htb_opt *)((unsigned char *)p + NLA_HDRLEN));
                found = true;
            }
            off += NLA_ALIGN(a->nla_len);
        }
        char *out = malloc(2 * n + 1);
        for (size_t k = 0; k < n; k++)
            sprintf(out + 2 * k, "%02x", m[k]);
        json_array_set_new(arr, i, json_string(out));
        free(out);
    }
    cr_assert(found, "class %x not in the snapshot", classid);
}

/* The kernel ignores cell_log on input and dumps 0. */
static void set_cell_log(struct tc_htb_opt *o)
{
    o->rate.cell_log = 5;
}

/* The kernel refuses a class without a rate. */
static void zero_rate(struct tc_htb_opt *o)
{
    o->rate.rate = 0;
}

static struct tc_snapshot *tampered(void (*fn)(struct tc_htb_opt *))
{
    struct tc_snapshot *s = take_ok(DEV);
    json_t *j = json_trip(s);
    tc_snapshot_free(s);
    tamper_class(j, 0x10010, fn);
    struct chaos_err err = {0};
    s = NULL;
    cr_assert_eq(tc_snapshot_from_json(j, &s, &err), 0, "%s", err.msg);
    json_decref(j);
    return s;
}

Test(tc_snapshot, restore_reports_a_difference)
{
    TCB(HTB_TREE);
    _cleanup_free_ char *before = tc_state(DEV);
    struct tc_snapshot *s = tampered(set_cell_log);
    del_root(DEV);
    struct chaos_err err = {0};
    int r = tc_snapshot_restore(fx.t, fx_ifindex(DEV), DEV, s, &err);
    cr_assert_eq(r, -EPROTO, "restore gave %d (%s)", r, err.msg);
    cr_assert(strstr(err.msg, "class htb 1:10") && strstr(err.msg, "differs in its options"), "%s",
              err.msg);
    cr_log_info("%s", err.msg);
    /* Left as restored: that is the untampered tree. */
    _cleanup_free_ char *diff = state_differs(DEV, before);
    cr_assert_null(diff, "%s", diff);
    tc_snapshot_free(s);
}

Test(tc_snapshot, refused_request_rolls_back)
{
    TCB(HTB_TREE);
    struct tc_snapshot *s = tampered(zero_rate);
    del_root(DEV);
    _cleanup_free_ char *gone = tc_state(DEV);
    struct chaos_err err = {0};
    int r = tc_snapshot_restore(fx.t, fx_ifindex(DEV), DEV, s, &err);
    cr_assert_eq(r, -EINVAL, "restore gave %d (%s)", r, err.msg);
    cr_assert(strstr(err.msg, "restoring class htb 1:10") && strstr(err.msg, "undone"), "%s",
              err.msg);
    cr_log_info("%s", err.msg);
    _cleanup_free_ char *after = tc_state(DEV);
    cr_assert_str_eq(after, gone, "the partial restore was left behind:\n%s", after);
    tc_snapshot_free(s);
}

Test(tc_snapshot, restore_needs_the_default_root)
{
    TCB(HTB_TREE);
    _cleanup_free_ char *before = tc_state(DEV);
    struct tc_snapshot *s = take_ok(DEV);
    struct chaos_err err = {0};
    int r = tc_snapshot_restore(fx.t, fx_ifindex(DEV), DEV, s, &err);
    cr_assert_eq(r, -EEXIST, "restore gave %d (%s)", r, err.msg);
    cr_assert(strstr(err.msg, "qdisc htb 1: (root) is there"), "%s", err.msg);
    _cleanup_free_ char *after = tc_state(DEV);
    cr_assert_str_eq(after, before);
    tc_snapshot_free(s);
}

