/* Benchmark: applying and reverting a scoped network fault through our code
 * (route netlink via libnl, one socket per namespace) versus the same tc
 * tree built by forking /usr/sbin/tc, the way a shell script or a tool that
 * shells out does it. Both run in the same process, alternating round by
 * round, on a veth inside a throw-away network namespace.
 *
 * usage: bench_network netem [N = 30]   inside the VM (tests/vm/vm-run): the
 *            prio root + netem + u32 tree of a "network" fault, through
 *            net_tree (what fault_network.c does: open the socket in the
 *            namespace, look the interface up, take the lock, plan, install)
 *            and through engine_apply/engine_revert (adds the journal);
 *            baseline: tc qdisc add prio, tc qdisc add netem, tc filter add
 *            u32; revert: tc qdisc del root.
 *        bench_network host [N = 30]   on any kernel with htb, tbf and u32:
 *            htb root + htb class + tbf child + u32 filter, built from
 *            libnl-route objects and sent with nltc_request, versus the same
 *            four tc commands; revert deletes the root.
 *
 * Setup (not timed): the namespace chaos-t-bench (/run/netns/chaos-t-bench,
 * made like `ip netns add` does) with an up veth pair chaos-t-v0/chaos-t-v1,
 * created through libnl. Every tc runs as `tc -n chaos-t-bench ...`, so tc
 * itself enters the namespace (as `ip netns exec` would). After every apply
 * the tree is read back; after every revert the device must be back to the
 * root it had at the start, alone. The namespace (and with it every link and
 * qdisc) is removed at the end, also after a failure.
 *
 * Prints median, p90 and min per phase and the ratio tc/ours of the medians.
 * Exit 0 on success, 1 on a failure, 2 on bad usage, 77 when it cannot run
 * here (not root, no tc, or the kernel lacks a qdisc: run netem in the VM). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/tc.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/class.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>

#include "engine.h"
#include "fault.h"
#include "loop.h"
#include "net_scope.h"
#include "net_tree.h"
#include "netem_params.h"
#include "nl_tc.h"

extern char **environ;

#define NS_NAME "chaos-t-bench"
#define NS_DIR "/run/netns"
#define NS_PATH NS_DIR "/" NS_NAME
#define DEV "chaos-t-v0"
#define PEER "chaos-t-v1"
#define TC "/usr/sbin/tc"
#define ROOT TC_HANDLE(0xCA05u, 0)
#define CHILD TC_HANDLE(0xCA10u, 0)
#define FILTER_PREF 0xCA00u /* 51712: slot 0's IPv4 filter in net_tree */

static const char *const target_json =
    "{\"netns\": \"" NS_NAME "\", \"interface\": \"" DEV "\", \"dst\": \"10.99.0.2/32\","
    " \"dport\": 5432, \"protocol\": \"tcp\"}";
static const char *const params_json = "{\"delay\": \"100ms\"}";

/* ---- small helpers ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct stats {
    double median, p90, min; /* ms */
};

static struct stats stats_of(int64_t *ns, int n)
{
    qsort(ns, (size_t)n, sizeof *ns, cmp_i64);
    double med = n % 2 ? (double)ns[n / 2] : ((double)ns[n / 2 - 1] + (double)ns[n / 2]) / 2;
    int k = (9 * n + 9) / 10 - 1; /* nearest rank: ceil(0.9 n) - 1 */
    return (struct stats){med / 1e6, (double)ns[k < 0 ? 0 : k] / 1e6, (double)ns[0] / 1e6};
}

/* Runs argv (argv[0] is the program's path) with fork+exec, as a script
 * would, and waits. Returns its exit status, -1 if it could not run. */
static int run(char *const argv[])
{
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the namespace with its veth pair ---- */

static bool made_ns_dir;

static void netns_remove(void)
{
    if (umount2(NS_PATH, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        fprintf(stderr, "bench_network: umount %s: %s\n", NS_PATH, strerror(errno));
    if (unlink(NS_PATH) < 0 && errno != ENOENT)
        fprintf(stderr, "bench_network: unlink %s: %s\n", NS_PATH, strerror(errno));
    if (made_ns_dir)
        (void)rmdir(NS_DIR); /* only when empty: someone else's namespaces stay */
}

static int add_veth(void)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0) {
        fprintf(stderr, "bench_network: cannot open a route netlink socket\n");
        if (sk)
            nl_socket_free(sk);
        return -1;
    }
    struct rtnl_link *l = rtnl_link_veth_alloc(), *lo = NULL;
    int r = -NLE_NOMEM;
    if (l) {
        struct rtnl_link *peer = rtnl_link_veth_get_peer(l);
        rtnl_link_set_name(l, DEV);
        rtnl_link_set_flags(l, IFF_UP);
        rtnl_link_set_name(peer, PEER);
        rtnl_link_put(peer);
        /* IFF_UP on the peer in the same request fails (libnl 3.7: "Unspecific
         * failure"): it goes up below, with lo. */
        r = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_veth_release(l);
    }
    if (r < 0)
        fprintf(stderr, "bench_network: creating veth %s/%s: %s\n", DEV, PEER, nl_geterror(r));
    static const char *const up_names[] = {PEER, "lo"};
    for (size_t i = 0; r == 0 && i < 2; i++) {
        struct rtnl_link *up = rtnl_link_alloc();
        if (!up || (r = rtnl_link_get_kernel(sk, 0, up_names[i], &lo)) < 0) {
            if (up)
                rtnl_link_put(up);
            break;
        }
        rtnl_link_set_flags(up, IFF_UP);
        r = rtnl_link_change(sk, lo, up, 0);
        rtnl_link_put(up);
        rtnl_link_put(lo);
        if (r < 0)
            fprintf(stderr, "bench_network: setting %s up: %s\n", up_names[i], nl_geterror(r));
    }
    nl_socket_free(sk);
    return r < 0 ? -1 : 0;
}

/* Creates NS_PATH the way `ip netns add` does (a bind mount of a new
 * namespace on a file under /run/netns) and the veth pair inside it. */
static int netns_create(void)
{
    struct stat st;
    if (stat(NS_PATH, &st) == 0) {
        /* A leftover of ours (the name says so), from a run that was killed. */
        fprintf(stderr, "bench_network: removing a leftover %s\n", NS_PATH);
        netns_remove();
    }
    if (mkdir(NS_DIR, 0755) == 0)
        made_ns_dir = true;
    else if (errno != EEXIST) {
        fprintf(stderr, "bench_network: mkdir %s: %s\n", NS_DIR, strerror(errno));
        return -1;
    }
    int fd = open(NS_PATH, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "bench_network: create %s: %s\n", NS_PATH, strerror(errno));
        return -1;
    }
    close(fd);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0 || unshare(CLONE_NEWNET) < 0) {
        fprintf(stderr, "bench_network: new network namespace: %s\n", strerror(errno));
        if (self >= 0)
            close(self);
        netns_remove();
        return -1;
    }
    int r = 0;
    if (mount("/proc/thread-self/ns/net", NS_PATH, "none", MS_BIND, NULL) < 0) {
        fprintf(stderr, "bench_network: bind mount on %s: %s\n", NS_PATH, strerror(errno));
        r = -1;
    }
    if (r == 0)
        r = add_veth();
    if (setns(self, CLONE_NEWNET) < 0) {
        /* Cannot happen to root; without it every later step is wrong. */
        perror("bench_network: back to our network namespace");
        abort();
    }
    close(self);
    if (r < 0)
        netns_remove();
    return r;
}

/* ---- reading the device back ---- */

struct view {
    int n_qdiscs;
    uint32_t root_handle;
    char root_kind[32];
    int n_children; /* qdiscs under ROOT with handle CHILD */
    char child_kind[32];
    int n_filters; /* filters at ROOT with our preference */
};

static int on_qdisc(const struct nlmsghdr *nlh, void *arg)
{
    struct view *v = arg;
    const struct tcmsg *tcm = nlmsg_data(nlh);
    v->n_qdiscs++;
    if (tcm->tcm_parent == TC_H_ROOT) {
        v->root_handle = tcm->tcm_handle;
        snprintf(v->root_kind, sizeof v->root_kind, "%s", nltc_msg_kind(nlh));
    } else if (TC_H_MAJ(tcm->tcm_parent) == ROOT && tcm->tcm_handle == CHILD) {
        v->n_children++;
        snprintf(v->child_kind, sizeof v->child_kind, "%s", nltc_msg_kind(nlh));
    }
    return 0;
}

static int on_filter(const struct nlmsghdr *nlh, void *arg)
{
    struct view *v = arg;
    const struct tcmsg *tcm = nlmsg_data(nlh);
    if (TC_H_MAJ(tcm->tcm_info) >> 16 == FILTER_PREF && strcmp(nltc_msg_kind(nlh), "u32") == 0)
        v->n_filters++;
    return 0;
}

static int read_view(struct nl_tc *t, int ifindex, struct view *v, struct chaos_err *err)
{
    memset(v, 0, sizeof *v);
    int r = nltc_dump(t, RTM_GETQDISC, ifindex, 0, on_qdisc, v, err);
    if (r == 0 && v->root_handle == ROOT)
        r = nltc_dump(t, RTM_GETTFILTER, ifindex, ROOT, on_filter, v, err);
    return r;
}

/* The tree a method built: our root, its child of the right kind, a filter. */
static int check_applied(struct nl_tc *t, int ifindex, const char *root_kind,
                         const char *child_kind, const char *who)
{
    struct view v;
    struct chaos_err err = {0};
    if (read_view(t, ifindex, &v, &err) < 0) {
        fprintf(stderr, "bench_network: reading back after %s: %s\n", who, err.msg);
        return -1;
    }
    if (v.root_handle != ROOT || strcmp(v.root_kind, root_kind) != 0 || v.n_children != 1 ||
        strcmp(v.child_kind, child_kind) != 0 || v.n_filters < 1) {
        fprintf(stderr,
                "bench_network: after %s apply: root %s %x:, %d %s child(ren), %d u32 "
                "filter message(s) at pref %u; wanted %s ca05: + %s ca10: + u32\n",
                who, v.root_kind, v.root_handle >> 16, v.n_children, v.child_kind, v.n_filters,
                FILTER_PREF, root_kind, child_kind);
        return -1;
    }
    return 0;
}

/* Nothing left: the device has exactly the root it had at the start. */
static int check_reverted(struct nl_tc *t, int ifindex, const struct view *base, const char *who)
{
    struct view v;
    struct chaos_err err = {0};
    if (read_view(t, ifindex, &v, &err) < 0) {
        fprintf(stderr, "bench_network: reading back after %s revert: %s\n", who, err.msg);
        return -1;
    }
    if (v.n_qdiscs != base->n_qdiscs || v.root_handle != base->root_handle ||
        strcmp(v.root_kind, base->root_kind) != 0) {
        fprintf(stderr,
                "bench_network: after %s revert: %d qdisc(s), root %s %x:; wanted the "
                "default again: %d qdisc(s), root %s %x:\n",
                who, v.n_qdiscs, v.root_kind, v.root_handle >> 16, base->n_qdiscs, base->root_kind,
                base->root_handle >> 16);
        return -1;
    }
    return 0;
}

/* ---- the tc baseline ---- */

/* The baseline, as a script writes it (each line one fork+exec of tc). */
static const char *const tc_netem_lines[] = {
    "qdisc add dev " DEV " root handle ca05: prio bands 16 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1",
    "qdisc add dev " DEV " parent ca05:4 handle ca10: netem delay 100ms limit 10000",
    "filter add dev " DEV " parent ca05: prio 51712 protocol ip u32 match ip dst 10.99.0.2/32 "
    "match ip protocol 6 0xff match ip dport 5432 0xffff flowid ca05:4",
    NULL};
static const char *const tc_host_lines[] = {
    "qdisc add dev " DEV " root handle ca05: htb",
    "class add dev " DEV " parent ca05: classid ca05:1 htb rate 10mbit",
    "qdisc add dev " DEV " parent ca05:1 handle ca10: tbf rate 1mbit burst 32kb latency 400ms",
    "filter add dev " DEV " parent ca05: prio 51712 protocol ip u32 match ip dst 10.99.0.2/32 "
    "match ip protocol 6 0xff match ip dport 5432 0xffff flowid ca05:1",
    NULL};
static const char *const tc_revert_lines[] = {"qdisc del dev " DEV " root", NULL};

#define TC_MAX_CMDS 4
#define TC_MAX_ARGS 40

/* tc command lines split into argv once, before anything is timed. */
struct tc_script {
    int n;
    char *argv[TC_MAX_CMDS][TC_MAX_ARGS];
    char *buf[TC_MAX_CMDS];
};

static int tc_script_init(struct tc_script *s, const char *const *lines)
{
    memset(s, 0, sizeof *s);
    for (; lines[s->n]; s->n++) {
        if (s->n == TC_MAX_CMDS || !(s->buf[s->n] = strdup(lines[s->n])))
            return -1;
        char **a = s->argv[s->n], *save = NULL;
        int k = 0;
        a[k++] = TC;
        a[k++] = "-n";
        a[k++] = NS_NAME;
        for (char *w = strtok_r(s->buf[s->n], " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            if (k == TC_MAX_ARGS - 1)
                return -1;
            a[k++] = w;
        }
        a[k] = NULL;
    }
    return 0;
}

static void tc_script_clear(struct tc_script *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->buf[i]);
}

/* ---- the methods ---- */

struct ctx {
    bool netem; /* netem mode (else host mode) */
    struct net_target target;
    struct netem_params params;
    struct net_u32_rule *rules; /* host mode: the same scope's rules */
    size_t n_rules;
    struct engine *engine;
    struct fault_spec *spec;
    struct engine_fault *fault; /* the engine's fault between apply and revert */
    int slot;                   /* net_tree's slot between apply and revert */
    int rounds;
    struct tc_script tc_apply, tc_revert;
};

/* Our apply for netem mode, step by step as network_apply + apply_locked do
 * it (minus the journal, which the engine method adds). */
static int ours_netem_apply(struct ctx *c, struct chaos_err *err)
{
    struct nl_tc *t = NULL;
    struct nltc_ns_id ns;
    int ifindex, lock = -1;
    struct net_u32_rule *rules = NULL;
    size_t n = 0;
    struct net_tree_plan plan = {0};
    int r = nltc_open(c->target.netns_path, &ns, &t, err);
    if (r < 0)
        return r;
    if ((r = nltc_link_index(t, c->target.ifname, &ifindex, err)) < 0)
        goto out;
    if ((r = net_tree_lock(&lock, err)) < 0)
        goto out;
    if ((r = net_scope_rules(&c->target.scope, false, &rules, &n, err)) < 0)
        goto out;
    if ((r = net_tree_plan(t, ifindex, c->target.ifname, &plan, err)) < 0)
        goto out;
    if ((r = net_tree_install(t, &ns, &plan, &c->params, rules, n, err)) < 0)
        goto out;
    c->slot = plan.slot;
out:
    net_tree_plan_clear(&plan);
    free(rules);
    net_tree_unlock(lock);
    nltc_close(t);
    return r;
}

static int ours_netem_revert(struct ctx *c, struct chaos_err *err)
{
    struct nl_tc *t = NULL;
    struct nltc_ns_id ns;
    int ifindex, lock = -1;
    int r = nltc_open(c->target.netns_path, &ns, &t, err);
    if (r < 0)
        return r;
    /* network_revert keeps the index from apply; looking it up again is
     * one more round trip than it pays. */
    if ((r = nltc_link_index(t, c->target.ifname, &ifindex, err)) < 0)
        goto out;
    if ((r = net_tree_lock(&lock, err)) < 0)
        goto out;
    r = net_tree_uninstall(t, &ns, ifindex, c->target.ifname, c->slot, NULL, NULL, err);
out:
    net_tree_unlock(lock);
    nltc_close(t);
    return r;
}

static int engine_method_apply(struct ctx *c, struct chaos_err *err)
{
    static int seq;
    char name[32];
    snprintf(name, sizeof name, "net%d", seq++);
    return engine_apply(c->engine, name, c->spec, NULL, NULL, &c->fault, err);
}

static int engine_method_revert(struct ctx *c, struct chaos_err *err)
{
    return engine_revert(c->engine, c->fault, err);
}

static void qdisc_putp(struct rtnl_qdisc **q)
{
    if (*q)
        rtnl_qdisc_put(*q);
}

static void class_putp(struct rtnl_class **q)
{
    if (*q)
        rtnl_class_put(*q);
}

static void cls_putp(struct rtnl_cls **q)
{
    if (*q)
        rtnl_cls_put(*q);
}

/* msg by address: the build call in the same argument list fills it. */
static int send_obj(struct nl_tc *t, int built, struct nl_msg **msg, const char *what,
                    const char *module, struct chaos_err *err)
{
    if (built < 0)
        return chaos_err_set(err, EINVAL, "%s: cannot build the request: %s", what,
                             nl_geterror(built));
    return nltc_request(t, *msg, what, module, err);
}

/* Host mode, ours: htb root, htb class ca05:1 (10mbit), tbf ca10: under it
 * (1mbit, burst 32 KiB, latency 400 ms), u32 filter with the scope's rules
 * to ca05:1: the objects and flags net_tree uses, kinds the host has. */
static int ours_host_apply(struct ctx *c, struct chaos_err *err)
{
    struct nl_tc *t = NULL;
    int ifindex;
    int r = nltc_open(c->target.netns_path, NULL, &t, err);
    if (r < 0)
        return r;
    if ((r = nltc_link_index(t, c->target.ifname, &ifindex, err)) < 0)
        goto out;
    const uint32_t cls = TC_HANDLE(0xCA05u, 1);
    struct nl_msg *msg = NULL;
    {
        __attribute__((cleanup(qdisc_putp))) struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        rtnl_tc_set_handle(TC_CAST(q), ROOT);
        rtnl_tc_set_kind(TC_CAST(q), "htb");
        r = send_obj(t, rtnl_qdisc_build_add_request(q, NLM_F_CREATE | NLM_F_EXCL, &msg), &msg,
                     "adding the htb root", "sch_htb", err);
        if (r < 0)
            goto out;
    }
    {
        __attribute__((cleanup(class_putp))) struct rtnl_class *k = rtnl_class_alloc();
        rtnl_tc_set_ifindex(TC_CAST(k), ifindex);
        rtnl_tc_set_parent(TC_CAST(k), ROOT);
        rtnl_tc_set_handle(TC_CAST(k), cls);
        rtnl_tc_set_kind(TC_CAST(k), "htb");
        rtnl_htb_set_rate(k, 1250000); /* 10mbit in bytes/s */
        r = send_obj(t, rtnl_class_build_add_request(k, NLM_F_CREATE | NLM_F_EXCL, &msg), &msg,
                     "adding the htb class", "sch_htb", err);
        if (r < 0)
            goto undo;
    }
    {
        __attribute__((cleanup(qdisc_putp))) struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), cls);
        rtnl_tc_set_handle(TC_CAST(q), CHILD);
        rtnl_tc_set_kind(TC_CAST(q), "tbf");
        rtnl_qdisc_tbf_set_rate(q, 125000, 32768, 0); /* 1mbit, burst 32kb */
        if (rtnl_qdisc_tbf_set_limit_by_latency(q, 400) < 0) {
            r = chaos_err_set(err, EINVAL, "libnl refused the tbf latency");
            goto undo;
        }
        r = send_obj(t, rtnl_qdisc_build_add_request(q, NLM_F_CREATE | NLM_F_EXCL, &msg), &msg,
                     "adding tbf", "sch_tbf", err);
        if (r < 0)
            goto undo;
    }
    for (size_t i = 0; i < c->n_rules; i++) {
        const struct net_u32_rule *rule = &c->rules[i];
        __attribute__((cleanup(cls_putp))) struct rtnl_cls *f = rtnl_cls_alloc();
        rtnl_tc_set_ifindex(TC_CAST(f), ifindex);
        rtnl_tc_set_parent(TC_CAST(f), ROOT);
        rtnl_tc_set_kind(TC_CAST(f), "u32");
        rtnl_cls_set_prio(f, FILTER_PREF);
        rtnl_cls_set_protocol(f, rule->eth_proto);
        for (size_t k = 0; k < rule->n_keys; k++)
            rtnl_u32_add_key(f, rule->keys[k].val, rule->keys[k].mask, rule->keys[k].off, 0);
        rtnl_u32_set_classid(f, cls);
        rtnl_u32_set_cls_terminal(f);
        r = send_obj(t, rtnl_cls_build_add_request(f, NLM_F_CREATE | NLM_F_EXCL, &msg), &msg,
                     "adding the u32 filter", "cls_u32", err);
        if (r < 0)
            goto undo;
    }
    goto out;
undo:
    if (nltc_qdisc_del(t, ifindex, TC_H_ROOT, ROOT, "", NULL) < 0)
        fprintf(stderr, "bench_network: could not undo a partial apply\n");
out:
    nltc_close(t);
    return r;
}

static int ours_host_revert(struct ctx *c, struct chaos_err *err)
{
    struct nl_tc *t = NULL;
    int ifindex;
    int r = nltc_open(c->target.netns_path, NULL, &t, err);
    if (r < 0)
        return r;
    if ((r = nltc_link_index(t, c->target.ifname, &ifindex, err)) == 0)
        r = nltc_qdisc_del(t, ifindex, TC_H_ROOT, ROOT, "removing the htb root", err);
    nltc_close(t);
    return r;
}

static int tc_run_script(const struct tc_script *s, struct chaos_err *err)
{
    for (int i = 0; i < s->n; i++)
        if (run(s->argv[i]) != 0)
            return chaos_err_set(err, EIO, "tc %s %s failed (its message is above)", s->argv[i][3],
                                 s->argv[i][4]);
    return 0;
}

static int tc_apply(struct ctx *c, struct chaos_err *err)
{
    return tc_run_script(&c->tc_apply, err);
}

static int tc_revert(struct ctx *c, struct chaos_err *err)
{
    return tc_run_script(&c->tc_revert, err);
}

struct method {
    const char *name;
    int (*apply)(struct ctx *, struct chaos_err *);
    int (*revert)(struct ctx *, struct chaos_err *);
    int64_t *t_apply, *t_revert; /* ns per round */
};

/* One apply + check + revert + check; timed rounds store their times. */
static int one_round(struct ctx *c, struct method *m, int round, struct nl_tc *check, int ifindex,
                     const struct view *base)
{
    struct chaos_err err = {0};
    int64_t t0 = now_ns();
    int r = m->apply(c, &err);
    int64_t t1 = now_ns();
    if (r < 0) {
        fprintf(stderr, "bench_network: %s apply: %s\n", m->name, err.msg);
        return r;
    }
    const char *child = c->netem ? "netem" : "tbf";
    if (check_applied(check, ifindex, c->netem ? "prio" : "htb", child, m->name) < 0)
        return -EIO;
    int64_t t2 = now_ns();
    r = m->revert(c, &err);
    int64_t t3 = now_ns();
    if (r < 0) {
        fprintf(stderr, "bench_network: %s revert: %s\n", m->name, err.msg);
        return r;
    }
    if (check_reverted(check, ifindex, base, m->name) < 0)
        return -EIO;
    if (round >= 0) {
        m->t_apply[round] = t1 - t0;
        m->t_revert[round] = t3 - t2;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_network netem|host [rounds 1-10000, default 30]\n"
                    "  netem: run inside the VM (tests/vm/vm-run -- bench_network netem)\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        return usage();
    struct ctx c = {0};
    if (strcmp(argv[1], "netem") == 0)
        c.netem = true;
    else if (strcmp(argv[1], "host") != 0)
        return usage();
    c.rounds = argc > 2 ? atoi(argv[2]) : 30;
    if (c.rounds < 1 || c.rounds > 10000)
        return usage();
    if (geteuid() != 0) {
        fprintf(stderr, "bench_network: needs root (network namespaces, tc); skipped\n");
        return 77;
    }
    if (access(TC, X_OK) != 0) {
        fprintf(stderr, "bench_network: no %s (apt-get install iproute2); skipped\n", TC);
        return 77;
    }

    struct chaos_err err = {0};
    json_t *tj = json_loads(target_json, 0, NULL), *pj = json_loads(params_json, 0, NULL);
    if (!tj || !pj || net_target_parse(tj, "target", &c.target, &err) < 0 ||
        netem_params_parse(pj, "params", &c.params, &err) < 0 ||
        net_scope_rules(&c.target.scope, false, &c.rules, &c.n_rules, &err) < 0) {
        fprintf(stderr, "bench_network: setup: %s\n", err.msg);
        return 1;
    }

    if (tc_script_init(&c.tc_apply, c.netem ? tc_netem_lines : tc_host_lines) < 0 ||
        tc_script_init(&c.tc_revert, tc_revert_lines) < 0) {
        fprintf(stderr, "bench_network: setup: out of memory\n");
        return 1;
    }
    struct loop *loop = NULL;
    char tmpdir[] = "/tmp/chaos-bench-net-XXXXXX", journal[64] = "";
    struct method ms[3];
    size_t n_m = 0;
    if (c.netem) {
        ms[n_m++] = (struct method){"ours (net_tree)", ours_netem_apply, ours_netem_revert, 0, 0};
        ms[n_m++] =
            (struct method){"ours (engine)", engine_method_apply, engine_method_revert, 0, 0};
        ms[n_m++] = (struct method){"tc fork+exec", tc_apply, tc_revert, 0, 0};
        if (!mkdtemp(tmpdir)) {
            perror("bench_network: mkdtemp");
            return 1;
        }
        snprintf(journal, sizeof journal, "%s/journal.jsonl", tmpdir);
        loop = loop_new();
        if (!loop || engine_new(loop, journal, NULL, 0, &c.engine, &err) < 0 ||
            fault_spec_parse("network", tj, pj, "bench", 600000, &c.spec, &err) < 0) {
            fprintf(stderr, "bench_network: setup: %s\n", err.msg);
            rmdir(tmpdir);
            return 1;
        }
    } else {
        ms[n_m++] = (struct method){"ours (libnl)", ours_host_apply, ours_host_revert, 0, 0};
        ms[n_m++] = (struct method){"tc fork+exec", tc_apply, tc_revert, 0, 0};
    }
    for (size_t i = 0; i < n_m; i++) {
        ms[i].t_apply = calloc((size_t)c.rounds, sizeof(int64_t));
        ms[i].t_revert = calloc((size_t)c.rounds, sizeof(int64_t));
    }

    int rc = 0;
    struct nl_tc *check = NULL;
    int ifindex = 0;
    struct view base;
    if (netns_create() < 0) {
        rc = 1;
        goto out;
    }
    if (nltc_open(NS_PATH, NULL, &check, &err) < 0 ||
        nltc_link_index(check, DEV, &ifindex, &err) < 0 ||
        read_view(check, ifindex, &base, &err) < 0) {
        fprintf(stderr, "bench_network: setup: %s\n", err.msg);
        rc = 1;
        goto out;
    }

    /* One untimed round each first (module loading, page cache for tc);
     * then the order of the methods rotates every round, so none of them
     * always runs right after another's revert. */
    for (int round = -1; round < c.rounds && rc == 0; round++) {
        size_t first = round < 0 ? 0 : (size_t)round % n_m;
        for (size_t k = 0; k < n_m && rc == 0; k++) {
            struct method *m = &ms[(first + k) % n_m];
            int r = one_round(&c, m, round, check, ifindex, &base);
            if (r < 0) {
                if (r == -ENOENT && m->apply != tc_apply && round < 0) {
                    fprintf(stderr, "bench_network: this kernel cannot build the tree%s\n",
                            c.netem ? ": run it inside the VM (tests/vm/vm-run)" : "");
                    rc = 77;
                } else {
                    rc = 1;
                }
            }
        }
    }
    if (rc == 0) {
        struct utsname u;
        uname(&u);
        printf("bench_network %s: %d rounds (+1 warm-up), kernel %s, %ld CPUs\n",
               c.netem ? "netem (prio 16 bands + netem delay 100ms + u32, in netns)"
                       : "host (htb + htb class + tbf + u32, in netns)",
               c.rounds, u.release, sysconf(_SC_NPROCESSORS_ONLN));
        printf("scope: dst 10.99.0.2/32 dport 5432 tcp on %s in netns %s\n", DEV, NS_NAME);
        if (c.netem)
            printf("engine journal: %s\n", journal);
        printf("baseline, one posix_spawn each (tc enters the netns itself):\n");
        for (int i = 0; i < c.tc_apply.n; i++)
            printf("  apply:  %s -n %s %s\n", TC, NS_NAME,
                   (c.netem ? tc_netem_lines : tc_host_lines)[i]);
        printf("  revert: %s -n %s %s\n", TC, NS_NAME, tc_revert_lines[0]);
        printf("%-8s %-16s %10s %10s %10s\n", "phase", "method", "median", "p90", "min");
        struct stats sa[3], sr[3];
        for (size_t i = 0; i < n_m; i++) {
            sa[i] = stats_of(ms[i].t_apply, c.rounds);
            sr[i] = stats_of(ms[i].t_revert, c.rounds);
        }
        for (size_t i = 0; i < n_m; i++)
            printf("%-8s %-16s %7.3f ms %7.3f ms %7.3f ms\n", "apply", ms[i].name, sa[i].median,
                   sa[i].p90, sa[i].min);
        for (size_t i = 0; i < n_m; i++)
            printf("%-8s %-16s %7.3f ms %7.3f ms %7.3f ms\n", "revert", ms[i].name, sr[i].median,
                   sr[i].p90, sr[i].min);
        size_t tc = n_m - 1;
        for (size_t i = 0; i < tc; i++)
            printf("ratio tc/%s (medians): apply %.0fx, revert %.0fx\n", ms[i].name,
                   sa[tc].median / sa[i].median, sr[tc].median / sr[i].median);
    }

out:
    nltc_close(check);
    if (c.engine) {
        engine_revert_all(c.engine);
        engine_free(c.engine);
    }
    netns_remove();
    if (journal[0]) {
        unlink(journal);
        rmdir(tmpdir);
    }
    loop_free(loop);
    fault_spec_free(c.spec);
    net_target_clear(&c.target);
    free(c.rules);
    tc_script_clear(&c.tc_apply);
    tc_script_clear(&c.tc_revert);
    json_decref(tj);
    json_decref(pj);
    for (size_t i = 0; i < n_m; i++) {
        free(ms[i].t_apply);
        free(ms[i].t_revert);
    }
    return rc;
}
