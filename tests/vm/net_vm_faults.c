/* The network kind on a real kernel: what the tree looks like, what each
 * parameter does to traffic in and out of scope, how faults compose and
 * leave, recovery after a crash, missing modules. The runner and the rig
 * are in test_net_vm.c. */
#include <execinfo.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdbool.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <math.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include "engine.h"
#include "fault.h"
#include "nl_tc.h"
#include "loop.h"
#include "net_vm.h"

TestSuite(net, .init = topo_up, .fini = topo_down, .timeout = 240);

/* ---- the tree is what we meant ---- */

static json_t *tc_json(const char *what)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ip netns exec " CLI " tc -j %s show dev " DEV, what);
    char *out = capture(cmd);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert_not_null(j, "tc -j %s: %s\n%s", what, e.text, out);
    free(out);
    return j;
}

static json_t *find_by(json_t *arr, const char *key, const char *val)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *v = json_string_value(json_object_get(e, key));
        if (v && strcmp(v, val) == 0)
            return e;
    }
    return NULL;
}

Test(net, tree_is_what_we_meant)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f = apply(&r,
                                   "{\"netns\":\"" CLI "\",\"interface\":\"" DEV
                                   "\",\"dst\":\"" TARGET "\",\"dport\":7,\"protocol\":\"udp\"}",
                                   "{\"delay\":\"100ms\",\"loss\":5}");
    json_t *q = tc_json("qdisc");
    json_t *root = find_by(q, "handle", "ca05:");
    cr_assert_not_null(root, "no ca05: root in %s", json_dumps(q, 0));
    cr_assert_str_eq(json_string_value(json_object_get(root, "kind")), "prio");
    cr_assert(json_is_true(json_object_get(root, "root")));
    json_t *ro = json_object_get(root, "options");
    cr_assert_eq(json_integer_value(json_object_get(ro, "bands")), 16);
    /* The priomap never sends anything to band 3 or above. */
    json_t *pm = json_object_get(ro, "priomap");
    size_t i;
    json_t *e;
    cr_assert_eq(json_array_size(pm), 16);
    json_array_foreach(pm, i, e)
    {
        cr_assert_lt(json_integer_value(e), 3, "priomap[%zu]", i);
    }

    json_t *ne = find_by(q, "handle", "ca10:");
    cr_assert_not_null(ne, "no ca10: netem");
    cr_assert_str_eq(json_string_value(json_object_get(ne, "kind")), "netem");
    cr_assert_str_eq(json_string_value(json_object_get(ne, "parent")), "ca05:4");
    json_t *no = json_object_get(ne, "options");
    cr_assert_eq(json_integer_value(json_object_get(no, "limit")), 10000);
    json_t *delay = json_object_get(json_object_get(no, "delay"), "delay");
    cr_assert(json_is_number(delay), "no delay in %s", json_dumps(no, 0));
    cr_assert_float_eq(json_number_value(delay), 0.1, 0.0005);
    cr_assert_float_eq(json_number_value(json_object_get(json_object_get(no, "loss-random"), "loss")),
                       0.05, 0.0005);

    /* One u32 filter to band 4 matching dst, protocol, and port. tc -j
     * prints one "match" member per key, so look at the text. */
    char *fs = capture("ip netns exec " CLI " tc -j filter show dev " DEV);
    static const char *const want[] = {
        "\"flowid\":\"ca05:4\"",
        "\"match\":{\"value\":\"a4d0002\",\"mask\":\"ffffffff\",\"offmask\":\"\",\"off\":16}",
        "\"match\":{\"value\":\"110000\",\"mask\":\"ff0000\",\"offmask\":\"\",\"off\":8}",
        "\"match\":{\"value\":\"7\",\"mask\":\"ffff\",\"offmask\":\"\",\"off\":20}",
        "\"match\":{\"value\":\"5000000\",\"mask\":\"f000000\",\"offmask\":\"\",\"off\":0}",
        "\"match\":{\"value\":\"0\",\"mask\":\"1fff\",\"offmask\":\"\",\"off\":4}",
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        cr_assert(strstr(fs, want[k]), "filter lacks %s: %s", want[k], fs);
    cr_assert_eq(strstr(fs, "\"fh\":\"800::801\""), NULL, "more than one filter: %s", fs);
    free(fs);
    json_decref(q);

    revert(&r, f);
    rig_close(&r);
    assert_state_restored();
}

/* netem's own fields count 64 ns ticks; the delay we send in nanoseconds
 * must be what the kernel holds, to the nanosecond. */
struct netem_ns {
    int64_t latency, jitter;
    int seen;
};

static int read_netem_ns(const struct nlmsghdr *nlh, void *arg)
{
    struct netem_ns *out = arg;
    if (strcmp(nltc_msg_kind(nlh), "netem") != 0)
        return 0;
    out->seen++;
    struct nlattr *a;
    int rem;
    nlmsg_for_each_attr(a, nlh, sizeof(struct tcmsg), rem)
    {
        if (nla_type(a) != TCA_OPTIONS || nla_len(a) < (int)sizeof(struct tc_netem_qopt))
            continue;
        int left = nla_len(a) - NLA_ALIGN(sizeof(struct tc_netem_qopt));
        struct nlattr *n =
            (struct nlattr *)((char *)nla_data(a) + NLA_ALIGN(sizeof(struct tc_netem_qopt)));
        for (; nla_ok(n, left); n = nla_next(n, &left)) {
            if (nla_type(n) == TCA_NETEM_LATENCY64)
                out->latency = nla_get_s64(n);
            if (nla_type(n) == TCA_NETEM_JITTER64)
                out->jitter = nla_get_s64(n);
        }
    }
    return 0;
}

Test(net, microsecond_delay_is_exact)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f =
        apply(&r, "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"dst\":\"" TARGET "\"}",
              "{\"delay\":\"500us\",\"jitter\":\"120us\"}");
    struct chaos_err err = {0};
    struct nl_tc *t = NULL;
    int ifindex = 0;
    cr_assert_eq(nltc_open("/run/netns/" CLI, NULL, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(nltc_link_index(t, DEV, &ifindex, &err), 0, "%s", err.msg);
    struct netem_ns got = {0};
    cr_assert_eq(nltc_dump(t, RTM_GETQDISC, ifindex, 0, read_netem_ns, &got, &err), 0, "%s",
                 err.msg);
    nltc_close(t);
    cr_assert_eq(got.seen, 1, "netem qdiscs on " DEV ": %d", got.seen);
    cr_assert_eq(got.latency, 500000, "the kernel holds a delay of %lld ns",
                 (long long)got.latency);
    cr_assert_eq(got.jitter, 120000, "the kernel holds a jitter of %lld ns", (long long)got.jitter);
    revert(&r, f);
    rig_close(&r);
    assert_state_restored();
}

/* ---- delay hits the scope and nothing else ---- */

Test(net, delay_only_in_scope)
{
    cr_assert_lt(median_rtt_ms(TARGET, 7, -1, 5), 25, "baseline too slow");
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f = apply(&r,
                                   "{\"netns\":\"" CLI "\",\"interface\":\"" DEV
                                   "\",\"dst\":[\"" TARGET "\",\"" TARGET6 "\"]}",
                                   "{\"delay\":\"100ms\"}");
    double tgt = median_rtt_ms(TARGET, 7, -1, 9);
    double tgt6 = median_rtt_ms(TARGET6, 7, -1, 9);
    double other = median_rtt_ms(OTHER, 7, -1, 9);
    cr_assert(tgt >= 100 && tgt <= 140, "targeted RTT %.1f ms, wanted 100-140", tgt);
    cr_assert(tgt6 >= 100 && tgt6 <= 140, "targeted IPv6 RTT %.1f ms, wanted 100-140", tgt6);
    cr_assert_lt(other, 25, "untargeted RTT %.1f ms", other);
    /* Every skb priority (what TOS marks map to) to the other address
     * stays fast, and the target stays slow whatever the marking. */
    for (int prio = 0; prio < 16; prio++) {
        double o = median_rtt_ms(OTHER, 7, prio, 3);
        cr_assert_lt(o, 25, "untargeted traffic with priority %d delayed: %.1f ms", prio, o);
    }
    for (int prio = 0; prio < 16; prio += 5) {
        double t = median_rtt_ms(TARGET, 7, prio, 3);
        cr_assert_geq(t, 100, "targeted traffic with priority %d escaped: %.1f ms", prio, t);
    }
    revert(&r, f);
    cr_assert_lt(median_rtt_ms(TARGET, 7, -1, 5), 25, "still slow after revert");
    rig_close(&r);
    assert_state_restored();
}

/* ---- loss within a binomial bound ---- */

Test(net, loss_rate_matches)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f =
        apply(&r, "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"dst\":\"" TARGET "\"}",
              "{\"loss\":25}");
    const int n = 2000;
    int got = replies(TARGET, 7, n);
    int lost = n - got;
    double mean = n * 0.25, sd = 19.36; /* sqrt(n p (1-p)) */
    cr_assert(lost >= mean - 4.5 * sd && lost <= mean + 4.5 * sd,
              "lost %d of %d, wanted %.0f +- %.0f", lost, n, mean, 4.5 * sd);
    int other = replies(OTHER, 7, 400);
    cr_assert_geq(other, 398, "untargeted lost %d of 400", 400 - other);
    revert(&r, f);
    cr_assert_geq(replies(TARGET, 7, 200), 199, "loss left after revert");
    rig_close(&r);
    assert_state_restored();
}

/* ---- ingress through ifb ---- */

Test(net, ingress_delay)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f = apply(&r,
                                   "{\"netns\":\"" CLI "\",\"interface\":\"" DEV
                                   "\",\"direction\":\"ingress\",\"dst\":\"" TARGET "\"}",
                                   "{\"delay\":\"80ms\"}");
    char *links = capture("ip -n " CLI " -o link show");
    cr_assert(strstr(links, "cifb"), "no ifb device: %s", links);
    free(links);
    double tgt = median_rtt_ms(TARGET, 7, -1, 7), other = median_rtt_ms(OTHER, 7, -1, 7);
    cr_assert(tgt >= 80 && tgt <= 120, "targeted RTT %.1f ms, wanted 80-120", tgt);
    cr_assert_lt(other, 25, "untargeted RTT %.1f ms", other);
    revert(&r, f);
    rig_close(&r);
    assert_state_restored();
}

Test(net, both_directions_add_up)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f = apply(&r,
                                   "{\"netns\":\"" CLI "\",\"interface\":\"" DEV
                                   "\",\"direction\":\"both\",\"dst\":\"" TARGET "\"}",
                                   "{\"delay\":\"50ms\"}");
    double tgt = median_rtt_ms(TARGET, 7, -1, 7);
    cr_assert(tgt >= 100 && tgt <= 140, "RTT %.1f ms, wanted 50 each way (100-140)", tgt);
    revert(&r, f);
    rig_close(&r);
    assert_state_restored();
}

/* ---- partition ---- */

Test(net, partition_only_its_scope)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f = apply(&r,
                                   "{\"netns\":\"" CLI "\",\"interface\":\"" DEV
                                   "\",\"dst\":\"" TARGET "\",\"dport\":7,\"protocol\":\"udp\"}",
                                   "{\"partition\":true}");
    cr_assert_eq(replies(TARGET, 7, 100), 0, "partitioned port answered");
    cr_assert_geq(replies(TARGET, 9, 100), 99, "other port of the target cut off");
    cr_assert_geq(replies(OTHER, 7, 100), 99, "other address cut off");
    revert(&r, f);
    cr_assert_geq(replies(TARGET, 7, 100), 99, "partition left after revert");
    rig_close(&r);
    assert_state_restored();
}

/* ---- composition ---- */

Test(net, two_faults_compose_and_leave_one_by_one)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *slow = apply(&r,
                                      "{\"netns\":\"" CLI "\",\"interface\":\"" DEV
                                      "\",\"dst\":\"" TARGET "\"}",
                                      "{\"delay\":\"100ms\"}");
    struct engine_fault *cut = apply(&r,
                                     "{\"netns\":\"" CLI "\",\"interface\":\"" DEV
                                     "\",\"dst\":\"" OTHER "\"}",
                                     "{\"partition\":true}");
    double t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert(t >= 100 && t <= 140, "RTT %.1f with both faults", t);
    cr_assert_eq(replies(OTHER, 7, 50), 0, "partition not in force");
    revert(&r, slow);
    cr_assert_lt(median_rtt_ms(TARGET, 7, -1, 5), 25, "delay left after its revert");
    cr_assert_eq(replies(OTHER, 7, 50), 0, "reverting the delay lifted the partition");
    revert(&r, cut);
    cr_assert_geq(replies(OTHER, 7, 50), 49);
    rig_close(&r);
    assert_state_restored();
}

/* ---- configured roots come back exactly ---- */

Test(net, restores_configured_fq_codel)
{
    sh("ip netns exec " CLI " tc qdisc add dev " DEV
       " root handle 77: fq_codel limit 777 target 7ms interval 70ms ecn");
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f =
        apply(&r, "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"dst\":\"" TARGET "\"}",
              "{\"delay\":\"60ms\"}");
    double t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert(t >= 60 && t <= 100, "RTT %.1f", t);
    revert(&r, f);
    rig_close(&r);
    assert_state_restored();
    char *q = capture("ip netns exec " CLI " tc qdisc show dev " DEV);
    cr_assert(strstr(q, "fq_codel 77: root") && strstr(q, "limit 777p"), "%s", q);
    free(q);
}

Test(net, restores_configured_htb_tree)
{
    sh("ip netns exec " CLI " sh -c '"
       "tc qdisc add dev " DEV " root handle 1: htb default 20 r2q 5 && "
       "tc class add dev " DEV " parent 1: classid 1:1 htb rate 100mbit ceil 100mbit && "
       "tc class add dev " DEV " parent 1:1 classid 1:10 htb rate 60mbit ceil 100mbit prio 1 && "
       "tc class add dev " DEV " parent 1:1 classid 1:20 htb rate 40mbit ceil 80mbit prio 2 && "
       "tc qdisc add dev " DEV " parent 1:10 handle 10: fq_codel limit 600 && "
       "tc filter add dev " DEV " parent 1: protocol ip prio 5 u32 match ip dst 10.77.0.3/32 flowid 1:10 && "
       "tc filter add dev " DEV " parent 1: protocol ip prio 6 u32 match ip dport 9 0xffff flowid 1:20'");
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f =
        apply(&r, "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"dst\":\"" TARGET "\"}",
              "{\"delay\":\"60ms\"}");
    char *q = capture("ip netns exec " CLI " tc qdisc show dev " DEV);
    cr_assert(strstr(q, "prio ca05: root"), "our root is not in place: %s", q);
    free(q);
    revert(&r, f);
    rig_close(&r);
    assert_state_restored();
}

/* ---- crash: the journal is enough ---- */

void apply_then_crash(const char *journal, const char *target, const char *params)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        struct chaos_err err = {0};
        struct loop *l = loop_new();
        struct engine *e = NULL;
        json_error_t je;
        json_t *t = json_loads(target, 0, &je), *p = json_loads(params, 0, &je);
        struct fault_spec *spec = NULL;
        struct engine_fault *f = NULL;
        if (!t || !p || engine_new(l, journal, NULL, 0, &e, &err) < 0 ||
            fault_spec_parse("network", t, p, "x", 600000, &spec, &err) < 0 ||
            engine_apply(e, "net", spec, NULL, NULL, &f, &err) < 0) {
            fprintf(stderr, "apply in the crashing engine: %s\n", err.msg);
            _exit(3);
        }
        raise(SIGKILL); /* no revert, no cleanup: what a crash leaves */
        _exit(4);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
}

Test(net, recovery_after_sigkill)
{
    snapshot_before();
    apply_then_crash(JOURNAL,
                     "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"dst\":\"" TARGET
                     "\",\"direction\":\"both\"}",
                     "{\"delay\":\"100ms\"}");
    double t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert_geq(t, 200, "the crashed run's fault is not in force (RTT %.1f)", t);

    struct chaos_err err = {0};
    int left = engine_recover_file(JOURNAL, NULL, NULL, &err);
    cr_assert_eq(left, 0, "recovery failed: %s", err.msg);
    cr_assert_lt(median_rtt_ms(TARGET, 7, -1, 5), 25, "still delayed after recovery");
    assert_state_restored();
}

/* The dead run's own journal, apart from the live engine's. */
#define DEAD_JOURNAL "/tmp/chaos-t-net-dead.journal"

/* A run removed its tree in the kernel and died before journaling that (here:
 * SIGKILL, then the tree deleted as its revert would have); another fault
 * then took the same slot. Recovering the dead run must leave that fault
 * alone: the slot's owner token on record is not the dead run's. */
Test(net, recovery_leaves_a_reused_slot_alone)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    apply_then_crash(DEAD_JOURNAL,
                     "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"dst\":\"" TARGET "\"}",
                     "{\"delay\":\"300ms\"}");
    sh("tc -n " CLI " qdisc del dev " DEV " root");

    struct engine_fault *f =
        apply(&r, "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"dst\":\"" TARGET "\"}",
              "{\"delay\":\"150ms\"}");
    json_t *q = tc_json("qdisc");
    cr_assert_not_null(find_by(q, "handle", "ca10:"), "the new fault is not in slot 0, as the "
                                                      "dead one was: %s", json_dumps(q, 0));
    json_decref(q);

    struct chaos_err err = {0};
    int left = engine_recover_file(DEAD_JOURNAL, NULL, NULL, &err);
    cr_assert_eq(left, 0, "recovery failed: %s", err.msg);
    double t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert_geq(t, 150, "recovering the dead run removed the live fault (RTT %.1f ms)", t);
    cr_assert_lt(t, 250, "RTT %.1f ms: the dead run's 300ms delay is back?", t);

    revert(&r, f);
    rig_close(&r);
    cr_assert_lt(median_rtt_ms(TARGET, 7, -1, 5), 25, "still delayed after the revert");
    assert_state_restored();
}

/* ---- errors leave nothing behind ---- */

Test(net, missing_interface_and_namespace)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    char msg[800];
    apply_fails(&r, "{\"netns\":\"" CLI "\",\"interface\":\"chaos-t-nope\"}", "{\"delay\":\"10ms\"}",
                msg, sizeof msg);
    cr_assert(strstr(msg, "chaos-t-nope: no such interface"), "%s", msg);
    apply_fails(&r, "{\"netns\":\"chaos-t-nope\",\"interface\":\"" DEV "\"}", "{\"delay\":\"10ms\"}",
                msg, sizeof msg);
    cr_assert(strstr(msg, "/run/netns/chaos-t-nope") && strstr(msg, "no such namespace"), "%s", msg);
    rig_close(&r);
    assert_state_restored();
}

/* Run once per module we need, with CHAOS_VM_NO_MODULES naming it (see
 * net_faults.sh): the guest kernel lacks just that one, the apply must fail
 * naming it, and whatever went in before the failing step (the prio root,
 * the netem, the ifb link) must come out again. The ingress modules are only
 * needed, and so only missed, by an ingress fault. */
TestSuite(missing, .init = topo_up, .fini = topo_down, .timeout = 120);

Test(missing, module_named_and_nothing_left)
{
    const char *mod = getenv("CHAOS_VM_NO_MODULES");
    cr_assert(mod && *mod && !strchr(mod, ' '), "run with CHAOS_VM_NO_MODULES=<one module>");
    bool ingress = strcmp(mod, "ifb") == 0 || strcmp(mod, "sch_ingress") == 0 ||
                   strcmp(mod, "act_mirred") == 0;
    snapshot_before();
    struct rig r;
    rig_open(&r);
    char target[256], want[96], msg[800];
    snprintf(target, sizeof target,
             "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"direction\":\"%s\","
             "\"dst\":\"" TARGET "\"}",
             ingress ? "ingress" : "egress");
    apply_fails(&r, target, "{\"delay\":\"10ms\"}", msg, sizeof msg);
    snprintf(want, sizeof want, "kernel lacks %s: load the module (modprobe %s)", mod, mod);
    cr_assert(strstr(msg, want), "wanted '%s' in: %s", want, msg);
    rig_close(&r);
    assert_state_restored();
}
