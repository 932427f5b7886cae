/* Host tests of agent/tc_snapshot: take an interface's tc configuration,
 * delete its root, restore, and check with tc(8) itself that the
 * configuration is back exactly.
 *
 * Needs root. Every test makes its own network namespace chaos-t-snap-<pid>
 * with a veth pair (veth0 is the interface under test) and deletes it in
 * .fini, so nothing outside the namespace is touched. IPv6 is off in it so
 * that no packet (router solicitations, MLD) moves a counter tc prints
 * without -s (htb's direct_packets_stat).
 *
 * What "exactly" means here: the text of `tc -j qdisc show`, `tc -j class
 * show` and `tc -j filter show parent P` for every qdisc and class P is the
 * same before and after, byte for byte (no -s: statistics are not
 * configuration). Nothing is masked: handles the kernel allocates (8001:
 * qdiscs, u32's 800: tables, action indexes) must come back the same.
 * Every round trip also checks that deleting the root changed that text,
 * so a restore that did nothing fails.
 *
 * The host kernel has htb, tbf, fifos, u32, bpf and mirred only. Tests of
 * other kinds skip there and run under User-Mode Linux (ctest
 * uml/test_tc_snapshot), whose modules we load here when CHAOS_UML is set.
 * Criterion cannot start in UML (its BoxFort arena wants an address range
 * the guest lacks: "Could not initialize inheritable arena"), so for the
 * guest this file is built again with TC_SNAPSHOT_GUEST: a small runner
 * below stands in for the few Criterion macros used, same test bodies. */
#ifndef TC_SNAPSHOT_GUEST
#include <criterion/criterion.h>
#else
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void setup(void);
static void teardown(void);

struct guest_test {
    const char *name;
    void (*fn)(void);
};
static struct guest_test guest_tests[64];
static size_t guest_ntests;

/* The format comes with a leading space (" " __VA_ARGS__), so that a
 * call without a message still passes a format. */
__attribute__((format(printf, 4, 5), noreturn)) static void
guest_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    if (fmt[1]) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt + 1, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    teardown();
    _exit(1);
}

__attribute__((format(printf, 1, 2), noreturn)) static void guest_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("skipped:", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    teardown();
    _exit(77);
}

#define Test(suite, name, ...)                                                                     \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void reg_##name(void)                                      \
    {                                                                                              \
        guest_tests[guest_ntests++] = (struct guest_test){#name, test_##name};                     \
    }                                                                                              \
    static void test_##name(void)
#define TestSuite(...)
#define cr_assert(cond, ...)                                                                       \
    ((cond) ? (void)0 : guest_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__))
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_null(p, ...) cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) cr_assert(strcmp((a), (b)) != 0, __VA_ARGS__)
#define cr_assert_fail(...) guest_fail(__FILE__, __LINE__, "failed", " " __VA_ARGS__)
#define cr_skip_test(...) guest_skip(" " __VA_ARGS__)
#define cr_log_info(...) (printf("  info: " __VA_ARGS__), putchar('\n'))
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "nl_tc.h"
#include "tc_snapshot.h"
#include "util.h"

#define DEV "veth0"

static struct {
    char ns[48];
    char nspath[96];
    struct nl_tc *t;
    int ifindex;
    bool made;
} fx;

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A tc command inside the namespace that must succeed. */
#define TC(...) tc_ok(__VA_ARGS__)
static void tc_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tc_ok(const char *fmt, ...)
{
    char args[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = run("tc -n %s %s", fx.ns, args);
    cr_assert_eq(rc, 0, "tc %s: exit %d", args, rc);
}

static char *capture(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    cr_assert(f, "popen %s", cmd);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2048)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(f);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d", cmd, st);
    return buf;
}

/* tc's own view of DEV: qdiscs, classes, and the filters of every qdisc
 * and class (a filter dump lists one parent's block). */
static char *state(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "ip netns exec %s sh -c '"
             "tc -j qdisc show dev " DEV "; echo; tc -j class show dev " DEV "; echo; "
             "for p in $( (tc qdisc show dev " DEV "; tc class show dev " DEV ") | cut -d\" \" -f3 "
             "| grep -v \"^0:$\" | grep -v \"^ffff:\" ); do "
             "echo \"parent $p:\"; tc -j filter show dev " DEV " parent $p; echo; done'",
             fx.ns);
    return capture(cmd);
}

static bool kernel_has(const char *what)
{
    /* veth1 is scratch: try the kind there. */
    bool ok;
    if (strncmp(what, "cls:", 4) == 0) {
        run("tc -n %s qdisc add dev veth1 root handle 1: htb", fx.ns);
        ok = run("tc -n %s filter add dev veth1 parent 1: prio 1 %s >/dev/null 2>&1",
                 fx.ns, what + 4) == 0;
    } else {
        ok = run("tc -n %s qdisc add dev veth1 root handle 1: %s >/dev/null 2>&1", fx.ns,
                 what) == 0;
    }
    run("tc -n %s qdisc del dev veth1 root >/dev/null 2>&1", fx.ns);
    return ok;
}

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    if (geteuid() != 0)
        cr_skip_test("needs root (network namespaces, tc)");
    if (getenv("CHAOS_UML")) {
        /* uml-run loads the network-fault modules; these kinds too. */
        struct utsname u;
        uname(&u);
        static const char *const mods[] = {"sch_fq",    "sch_sfq",  "sch_codel",    "cls_fw",
                                           "cls_basic", "cls_bpf",  "cls_flower",   "act_gact",
                                           "em_cmp",    "sch_prio", "sch_fq_codel", "cls_matchall"};
        /* Only the ones not loaded yet: in UML each insmod is two slow execs,
         * and every test's setup comes here. */
        char *loaded = capture("cat /proc/modules");
        for (size_t i = 0; i < ARRAY_SIZE(mods); i++) {
            char needle[64];
            snprintf(needle, sizeof needle, "\n%s ", mods[i]);
            if (!strstr(loaded, needle) && strncmp(loaded, needle + 1, strlen(needle + 1)) != 0)
                run("insmod /usr/lib/uml/modules/%s/kernel/net/sched/%s.ko 2>/dev/null",
                    u.release, mods[i]);
        }
        free(loaded);
    }
    snprintf(fx.ns, sizeof fx.ns, "chaos-t-snap-%d", (int)getpid());
    snprintf(fx.nspath, sizeof fx.nspath, "/run/netns/%s", fx.ns);
    run("ip netns del %s 2>/dev/null", fx.ns);
    cr_assert_eq(run("ip netns add %s", fx.ns), 0);
    fx.made = true;
    cr_assert_eq(run("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                     "net.ipv6.conf.default.disable_ipv6=1",
                     fx.ns),
                 0);
    cr_assert_eq(run("ip -n %s link add " DEV " type veth peer name veth1 && ip -n %s link set " DEV
                     " up && ip -n %s link set veth1 up",
                     fx.ns, fx.ns, fx.ns),
                 0);
    struct chaos_err err = {0};
    cr_assert_eq(nltc_open(fx.nspath, NULL, &fx.t, &err), 0, "%s", err.msg);
    cr_assert_eq(nltc_link_index(fx.t, DEV, &fx.ifindex, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    nltc_close(fx.t);
    fx.t = NULL;
    if (fx.made)
        run("ip netns del %s", fx.ns);
    fx.made = false;
}

/* Criterion does not run .fini after cr_skip_test. */
#define SKIP(...)                                                                                  \
    do {                                                                                           \
        teardown();                                                                                \
        cr_skip_test(__VA_ARGS__);                                                                 \
    } while (0)

TestSuite(tc_snapshot, .init = setup, .fini = teardown, .timeout = 120);

static struct tc_snapshot *take_ok(void)
{
    struct chaos_err err = {0};
    struct tc_snapshot *s = NULL;
    int r = tc_snapshot_take(fx.t, fx.ifindex, DEV, &s, &err);
    cr_assert_eq(r, 0, "take: %d %s", r, err.msg);
    cr_assert(s);
    return s;
}

/* Criterion cuts long messages: show the first line that differs. */
static void same_state(const char *before, const char *after)
{
    if (strcmp(before, after) == 0)
        return;
    const char *b = before, *a = after;
    while (*b && *b == *a) {
        b++;
        a++;
    }
    /* Some context before the first difference, up to a line start. */
    for (int i = 0; i < 300 && b > before && b[-1] != '\n'; i++)
        b--, a--;
    cr_assert_fail("tc shows something else after the restore, from byte %zu:\nbefore: %.600s\n"
                   "after:  %.600s",
                   (size_t)(b - before), b, a);
}

/* tc's view must come back to want. The kernel frees the filters of a
 * deleted qdisc in deferred work, and an action they held stays in its table
 * until then: a filter replayed right after the delete binds to it and tc
 * shows "ref 2 bind 2" for a moment (measured: gone within 50 ms). So give
 * the kernel up to 2 s before comparing for good. */
static void expect_state(const char *want)
{
    for (int i = 0; i < 40; i++) {
        _cleanup_free_ char *now = state();
        if (strcmp(now, want) == 0)
            return;
        usleep(50000);
    }
    _cleanup_free_ char *now = state();
    same_state(want, now);
}

/* Takes a snapshot, deletes the root, restores, and checks tc's view. */
static void round_trip(void)
{
    _cleanup_free_ char *before = state();
    struct tc_snapshot *s = take_ok();
    cr_assert(!tc_snapshot_empty(s), "nothing in the snapshot of:\n%s", before);
    TC("qdisc del dev " DEV " root");
    _cleanup_free_ char *gone = state();
    cr_assert_str_neq(gone, before, "deleting the root changed nothing tc shows");
    struct chaos_err err = {0};
    int r = tc_snapshot_restore(fx.t, fx.ifindex, DEV, s, &err);
    cr_assert_eq(r, 0, "restore: %d %s", r, err.msg);
    expect_state(before);
    tc_snapshot_free(s);
}

static void htb_tree(const char *leaf_qdisc)
{
    TC("qdisc add dev " DEV " root handle 1: htb default 20 r2q 5");
    TC("class add dev " DEV " parent 1: classid 1:1 htb rate 100mbit ceil 100mbit");
    TC("class add dev " DEV " parent 1:1 classid 1:10 htb rate 10mbit ceil 50mbit prio 1 "
       "quantum 1500 burst 15k");
    TC("class add dev " DEV " parent 1:1 classid 1:20 htb rate 20mbit ceil 100mbit");
    /* Above 4 Gbit/s the rates travel as TCA_HTB_RATE64/CEIL64. */
    TC("class add dev " DEV " parent 1: classid 1:30 htb rate 5gbit ceil 10gbit");
    TC("qdisc add dev " DEV " parent 1:10 handle 10: %s", leaf_qdisc);
    TC("filter add dev " DEV " parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 "
       "flowid 1:10");
    TC("filter add dev " DEV " parent 1: protocol ip prio 2 u32 match ip dport 80 0xffff "
       "flowid 1:20");
    /* A filter in a class's block, numbered in the qdisc's u32 space (802:). */
    TC("filter add dev " DEV " parent 1:1 protocol ip prio 3 u32 match ip src 10.9.0.0/16 "
       "flowid 1:30");
}

Test(tc_snapshot, htb_tree_with_u32_filters)
{
    bool fq_codel = kernel_has("fq_codel");
    htb_tree(fq_codel ? "fq_codel limit 300 flows 128 target 2ms" : "pfifo limit 77");
    if (!fq_codel)
        cr_log_info("kernel lacks fq_codel: the leaf qdisc is pfifo here (fq_codel under UML)");
    round_trip();
}

Test(tc_snapshot, tbf_root_with_child_and_size_table)
{
    TC("qdisc add dev " DEV " root handle 5: stab overhead 24 tbf rate 6gbit burst 1mb "
       "latency 40ms");
    TC("qdisc add dev " DEV " parent 5:1 handle 51: bfifo limit 30000");
    round_trip();
}

Test(tc_snapshot, auto_numbered_qdiscs_come_back_with_their_numbers)
{
    TC("qdisc add dev " DEV " root handle 1: htb");
    TC("class add dev " DEV " parent 1: classid 1:1 htb rate 1mbit");
    TC("class add dev " DEV " parent 1: classid 1:2 htb rate 1mbit");
    /* No handle: the kernel picks 8001: and up. */
    TC("qdisc add dev " DEV " parent 1:1 pfifo limit 5");
    TC("qdisc add dev " DEV " parent 1:2 pfifo_head_drop limit 9");
    round_trip();
}

Test(tc_snapshot, noqueue_and_pfifo_fast_roots)
{
    TC("qdisc add dev " DEV " root handle 7: noqueue");
    round_trip();
    TC("qdisc del dev " DEV " root");
    TC("qdisc add dev " DEV " root handle 8: pfifo_fast");
    round_trip();
}

Test(tc_snapshot, fq_codel_root_with_options)
{
    if (!kernel_has("fq_codel"))
        SKIP("kernel lacks fq_codel (runs under UML)");
    TC("qdisc add dev " DEV " root handle 1: fq_codel limit 500 flows 256 target 3ms "
       "interval 50ms quantum 300 ecn ce_threshold 1ms memory_limit 8mb");
    round_trip();
}

Test(tc_snapshot, prio_tree_with_other_kinds)
{
    if (!kernel_has("prio") || !kernel_has("sfq") || !kernel_has("fq") || !kernel_has("codel") ||
        !kernel_has("cls:matchall classid 1:1") || !kernel_has("cls:handle 5 fw classid 1:1") ||
        !kernel_has("cls:basic classid 1:1"))
        SKIP("kernel lacks prio, sfq, fq, codel, matchall, fw or basic (runs under UML)");
    TC("qdisc add dev " DEV " root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1");
    TC("qdisc add dev " DEV " parent 1:1 handle 11: sfq perturb 10 quantum 1600 limit 100");
    TC("qdisc add dev " DEV " parent 1:2 handle 12: fq maxrate 100mbit flow_limit 50");
    TC("qdisc add dev " DEV " parent 1:3 handle 13: codel target 4ms interval 40ms ecn");
    TC("filter add dev " DEV " parent 1: prio 10 protocol ip handle 5 fw classid 1:2");
    TC("filter add dev " DEV " parent 1: prio 11 protocol ip basic match "
       "'cmp(u8 at 9 layer network eq 6)' classid 1:3");
    TC("filter add dev " DEV " parent 1: prio 12 protocol all matchall classid 1:4 "
       "action gact ok random determ drop 10");
    round_trip();
}

Test(tc_snapshot, u32_hash_tables_links_and_mirred)
{
    TC("qdisc add dev " DEV " root handle 1: htb default 1");
    TC("class add dev " DEV " parent 1: classid 1:1 htb rate 10mbit");
    TC("class add dev " DEV " parent 1: classid 1:2 htb rate 10mbit");
    TC("filter add dev " DEV " parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 "
       "flowid 1:1");
    /* prio 4: root table 801:, a table with a handle (2:), one without
     * (802:), a knode in 800: linking to 2:, and one in a bucket of 2:
     * with a mirred action. */
    TC("filter add dev " DEV " parent 1: prio 4 handle 2: protocol ip u32 divisor 16");
    TC("filter add dev " DEV " parent 1: prio 4 protocol ip u32 divisor 4");
    TC("filter add dev " DEV " parent 1: prio 1 protocol ip u32 ht 800:: match ip dst 10.1.0.0/16 "
       "hashkey mask 0x0000000f at 16 link 2:");
    TC("filter add dev " DEV " parent 1: prio 4 protocol ip u32 ht 2:3: match ip dst 10.1.0.3/32 "
       "flowid 1:2 action mirred egress redirect dev veth1");
    /* Another chain: dumped with the others, numbered in the same space. */
    TC("filter add dev " DEV " parent 1: chain 3 prio 6 protocol ip u32 match ip dst 10.0.0.3/32 "
       "flowid 1:2");
    round_trip();
}

Test(tc_snapshot, kernel_default_root_gives_an_empty_snapshot)
{
    _cleanup_free_ char *before = state();
    struct tc_snapshot *s = take_ok();
    cr_assert(tc_snapshot_empty(s));
    cr_assert_eq(tc_snapshot_count(s), 0);
    json_t *j = tc_snapshot_to_json(s);
    cr_assert(json_is_array(j) && json_array_size(j) == 0);
    json_decref(j);
    struct chaos_err err = {0};
    cr_assert_eq(tc_snapshot_restore(fx.t, fx.ifindex, DEV, s, &err), 0, "%s", err.msg);
    _cleanup_free_ char *after = state();
    cr_assert_str_eq(after, before);
    tc_snapshot_free(s);
}

Test(tc_snapshot, ingress_is_left_out)
{
    TC("qdisc add dev " DEV " ingress");
    TC("filter add dev " DEV " parent ffff: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 "
       "action mirred egress redirect dev veth1");
    struct tc_snapshot *s = take_ok();
    cr_assert(tc_snapshot_empty(s), "the ingress qdisc was kept");
    tc_snapshot_free(s);
    TC("qdisc add dev " DEV " root handle 1: tbf rate 1mbit burst 10k latency 50ms");
    s = take_ok();
    cr_assert_eq(tc_snapshot_count(s), 1, "kept %zu objects, want the tbf only",
                 tc_snapshot_count(s));
    tc_snapshot_free(s);
    round_trip();
}

static void refused(const char *what, const char *const *needles)
{
    _cleanup_free_ char *before = state();
    struct chaos_err err = {0};
    struct tc_snapshot *s = NULL;
    int r = tc_snapshot_take(fx.t, fx.ifindex, DEV, &s, &err);
    cr_assert_eq(r, -EOPNOTSUPP, "%s: take gave %d (%s)", what, r, err.msg);
    cr_assert_null(s);
    for (const char *const *n = needles; *n; n++)
        cr_assert(strstr(err.msg, *n), "%s: error lacks '%s': %s", what, *n, err.msg);
    cr_log_info("%s: %s", what, err.msg);
    _cleanup_free_ char *after = state();
    cr_assert_str_eq(after, before, "taking the snapshot changed something");
}

Test(tc_snapshot, bpf_filter_is_refused)
{
    TC("qdisc add dev " DEV " root handle 1: htb");
    TC("class add dev " DEV " parent 1: classid 1:10 htb rate 1mbit");
    TC("filter add dev " DEV " parent 1: prio 49152 bpf bytecode '1,6 0 0 4294967295,' "
       "flowid 1:10");
    refused("bpf", (const char *const[]){"interface " DEV, "filter bpf", "at 1:", "prio 49152",
                                         "cannot be restored exactly", NULL});
}

Test(tc_snapshot, flower_filter_is_refused)
{
    TC("qdisc add dev " DEV " root handle 1: htb");
    TC("class add dev " DEV " parent 1: classid 1:10 htb rate 1mbit");
    if (run("tc -n %s filter add dev " DEV " parent 1: prio 3 protocol ip flower "
            "dst_ip 10.0.0.1 classid 1:10 2>/dev/null",
            fx.ns) != 0)
        SKIP("kernel lacks flower (runs under UML)");
    refused("flower", (const char *const[]){"filter flower", "prio 3", NULL});
}

Test(tc_snapshot, atm_size_table_is_refused)
{
    TC("qdisc add dev " DEV " root handle 1: stab linklayer atm overhead 10 tbf rate 1mbit "
       "burst 10k latency 50ms");
    refused("stab", (const char *const[]){"qdisc tbf 1: (root)", "size table", NULL});
}

Test(tc_snapshot, rate_estimator_is_refused)
{
    TC("qdisc add dev " DEV " root handle 1: htb");
    TC("class add dev " DEV " parent 1: classid 1:10 estimator 1sec 8sec htb rate 1mbit");
    refused("estimator", (const char *const[]){"class htb 1:10", "rate estimator", NULL});
}

Test(tc_snapshot, u32_numbering_gap_is_refused)
{
    TC("qdisc add dev " DEV " root handle 1: htb");
    TC("filter add dev " DEV " parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32");
    TC("filter add dev " DEV " parent 1: protocol ip prio 2 u32 match ip dst 10.0.0.2/32");
    /* 800: goes; a replay would number prio 2's table 800:, not 801:. */
    TC("filter del dev " DEV " parent 1: protocol ip prio 1");
    refused("u32 gap", (const char *const[]){"filter u32 801:", "800:", NULL});
}

Test(tc_snapshot, u32_at_one_prio_in_two_blocks_is_refused)
{
    /* The qdisc's block and class 1:1's both have u32 at prio 1: each
     * dump lists both root tables (800: and 801:), so which is whose
     * cannot be told. */
    TC("qdisc add dev " DEV " root handle 1: htb");
    TC("class add dev " DEV " parent 1: classid 1:1 htb rate 1mbit");
    TC("filter add dev " DEV " parent 1:1 protocol ip prio 1 u32 match ip dst 10.0.0.1/32");
    TC("filter add dev " DEV " parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.2/32");
    refused("u32 same prio",
            (const char *const[]){"prio 1", "give them different priorities", NULL});
}

Test(tc_snapshot, mq_root_with_a_configured_child)
{
    /* mq needs a device with several queues; veth has IFF_NO_QUEUE and
     * keeps noqueue, ifb does not. Under its mq root the kernel makes a
     * default qdisc (handle 0:, listed) per queue; one is replaced here. */
    TC("qdisc del dev " DEV " root 2>/dev/null; true");
    cr_assert_eq(run("ip -n %s link set " DEV " down && ip -n %s link del " DEV " && "
                     "ip -n %s link add " DEV " numtxqueues 3 type ifb && ip -n %s link set " DEV
                     " up",
                     fx.ns, fx.ns, fx.ns, fx.ns),
                 0);
    struct chaos_err err = {0};
    cr_assert_eq(nltc_link_index(fx.t, DEV, &fx.ifindex, &err), 0, "%s", err.msg);
    TC("qdisc add dev " DEV " root handle 1: mq");
    TC("qdisc replace dev " DEV " parent 1:2 handle 22: tbf rate 1mbit burst 10k latency 50ms");
    round_trip();
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
    htb_tree("pfifo limit 77");
    TC("filter add dev " DEV " parent 1: prio 5 protocol ip u32 match ip dst 10.0.0.9/32 "
       "flowid 1:10 action mirred egress redirect dev veth1");
    _cleanup_free_ char *before = state();
    struct tc_snapshot *s = take_ok();
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

    TC("qdisc del dev " DEV " root");
    cr_assert_eq(tc_snapshot_restore(fx.t, fx.ifindex, DEV, s2, &err), 0, "%s", err.msg);
    expect_state(before);
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
    struct tc_snapshot *s = take_ok();
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
    htb_tree("pfifo limit 77");
    _cleanup_free_ char *before = state();
    struct tc_snapshot *s = tampered(set_cell_log);
    TC("qdisc del dev " DEV " root");
    struct chaos_err err = {0};
    int r = tc_snapshot_restore(fx.t, fx.ifindex, DEV, s, &err);
    cr_assert_eq(r, -EPROTO, "restore gave %d (%s)", r, err.msg);
    cr_assert(strstr(err.msg, "class htb 1:10") && strstr(err.msg, "differs in its options"), "%s",
              err.msg);
    cr_log_info("%s", err.msg);
    /* Left as restored: that is the untampered tree. */
    _cleanup_free_ char *after = state();
    cr_assert_str_eq(after, before);
    tc_snapshot_free(s);
}

Test(tc_snapshot, refused_request_rolls_back)
{
    htb_tree("pfifo limit 77");
    struct tc_snapshot *s = tampered(zero_rate);
    TC("qdisc del dev " DEV " root");
    _cleanup_free_ char *gone = state();
    struct chaos_err err = {0};
    int r = tc_snapshot_restore(fx.t, fx.ifindex, DEV, s, &err);
    cr_assert_eq(r, -EINVAL, "restore gave %d (%s)", r, err.msg);
    cr_assert(strstr(err.msg, "restoring class htb 1:10") && strstr(err.msg, "undone"), "%s",
              err.msg);
    cr_log_info("%s", err.msg);
    _cleanup_free_ char *after = state();
    cr_assert_str_eq(after, gone, "the partial restore was left behind:\n%s", after);
    tc_snapshot_free(s);
}

Test(tc_snapshot, restore_needs_the_default_root)
{
    htb_tree("pfifo limit 77");
    _cleanup_free_ char *before = state();
    struct tc_snapshot *s = take_ok();
    struct chaos_err err = {0};
    int r = tc_snapshot_restore(fx.t, fx.ifindex, DEV, s, &err);
    cr_assert_eq(r, -EEXIST, "restore gave %d (%s)", r, err.msg);
    cr_assert(strstr(err.msg, "qdisc htb 1: (root) is there"), "%s", err.msg);
    _cleanup_free_ char *after = state();
    cr_assert_str_eq(after, before);
    tc_snapshot_free(s);
}

#ifdef TC_SNAPSHOT_GUEST
/* Each test in a child of its own, as Criterion does; exit status 1 when
 * one failed. An argument selects tests whose name contains it. */
int main(int argc, char **argv)
{
    int failed = 0, passed = 0, skipped = 0;
    for (size_t i = 0; i < guest_ntests; i++) {
        if (argc > 1 && !strstr(guest_tests[i].name, argv[1]))
            continue;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(120);
            setup();
            guest_tests[i].fn();
            teardown();
            fflush(NULL);
            _exit(0);
        }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0)
            ;
        int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        const char *verdict = rc == 0 ? "PASS" : rc == 77 ? "SKIP" : "FAIL";
        printf("[%s] tc_snapshot::%s\n", verdict, guest_tests[i].name);
        fflush(stdout);
        rc == 0 ? passed++ : rc == 77 ? skipped++ : failed++;
    }
    printf("guest: %d passed, %d skipped, %d failed\n", passed, skipped, failed);
    return failed ? 1 : 0;
}
#endif
