/* The table of trees: each case is the tc commands that build a tree on
 * one interface and what must come of it. Either the snapshot restores it
 * exactly (tc's view after delete + restore is the view before, byte for
 * byte), or taking the snapshot refuses, naming the object and why, and
 * changes nothing (tc's view after the refusal is the view before).
 *
 * Leaf qdiscs are tried under htb (class 1:10) and under prio (band 1:2)
 * alike; other cases build a whole tree. Per case: one tc batch to build,
 * two for each look at tc's view, none to delete (netlink). On the host,
 * a case whose tree the kernel cannot build (no such module) is skipped
 * and named; in the VM that fails the test. */
#include "tc_snap_fx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A leaf qdisc: its tc words, and NULL when it must come back, else a
 * part of the refusal that says why. */
struct leaf {
    const char *spec;
    const char *refusal;
};

static const struct leaf leaves[] = {
    {"pfifo limit 77", NULL},
    {"bfifo limit 30000", NULL},
    {"pfifo_head_drop limit 9", NULL},
    {"pfifo_fast", NULL},
    /* sfq's default shape (limit 127, flows 128) and the case:
     * sent back as dumped, the limit lowers flows to 127. */
    {"sfq", NULL},
    {"sfq perturb 10", NULL},
    {"sfq perturb 10 quantum 1600 limit 100", NULL},
    {"sfq limit 3000 depth 20 divisor 256 flows 64 headdrop", NULL},
    {"sfq limit 200 redflowlimit 100000 min 8000 max 60000 probability 0.2 avpkt 1000 ecn",
     NULL},
    {"fq maxrate 100mbit flow_limit 50", NULL},
    {"fq_codel limit 300 flows 128 target 2ms", NULL},
    {"codel target 4ms interval 40ms ecn", NULL},
    {"tbf rate 1mbit burst 10k latency 50ms", NULL},
    /* netem without jitter has no distribution table to lose. */
    {"netem delay 1ms", NULL},
    {"netem delay 100ms loss 1% 25% duplicate 2% corrupt 0.1% reorder 25% 50% gap 5 "
     "rate 10mbit limit 500",
     NULL},
    {"netem delay 5ms rate 6gbit ecn loss 2%", NULL},
    {"netem loss gemodel 1% 10% 70% 0.1%", NULL},
    {"netem slot 1ms 5ms packets 10 bytes 20000", NULL},
    {"netem delay 10ms 2ms", "it has jitter"},
    {"netem delay 10ms 2ms 25% distribution normal", "it has jitter"},
    {"netem slot distribution normal 1ms 1ms", "slot distribution table"},
    {"pie", NULL},
    /* 20005us is kept as 312578 ticks and dumped as 20004us, which sent
     * back would be 312562 ticks, dumped as 20003us. */
    {"pie target 20005us limit 500 tupdate 32ms alpha 2 beta 20 ecn bytemode", NULL},
    {"cake", NULL},
    {"cake bandwidth 100mbit besteffort flows wash ack-filter no-split-gso rtt 50ms "
     "overhead 18 mpu 64 memlimit 1mb fwmark 0xff",
     NULL},
    {"cake unlimited diffserv4 dual-srchost nat ingress raw", NULL},
    {"sfb limit 500 max 30 target 10", NULL},
    {"red limit 400000 min 30000 max 90000 avpkt 1000 burst 55 probability 0.02 "
     "bandwidth 10mbit",
     "red's lookup table"},
    {"choke limit 1000 bandwidth 10mbit", "choke's lookup table"},
    {"gred setup vqs 4 default 1", "gred's lookup tables"},
    {"plug limit 1000", "not one we have verified"},
    {"drr", "not one we have verified"},
    {"qfq", "not one we have verified"},
    {"ets bands 3", "not one we have verified"},
    {"hhf", "not one we have verified"},
    {"fq_pie", "not one we have verified"},
    {"skbprio", "not one we have verified"},
};

/* A whole tree, on dev. refusal as for leaves; "" means the snapshot is
 * empty (the kernel's default root: nothing to restore). */
struct tree {
    const char *name;
    const char *dev;
    const char *cmds;
    const char *refusal;
};

#define D "dev veth0 "
#define HTB_BASE                                                                                   \
    "qdisc add " D "root handle 1: htb default 20\n"                                               \
    "class add " D "parent 1: classid 1:10 htb rate 10mbit\n"                                      \
    "class add " D "parent 1: classid 1:20 htb rate 10mbit\n"

static const struct tree trees[] = {
    {"htb with classes, 64-bit rates, a leaf and u32 filters in two blocks", "veth0",
     "qdisc add " D "root handle 1: htb default 20 r2q 5\n"
     "class add " D "parent 1: classid 1:1 htb rate 100mbit ceil 100mbit\n"
     "class add " D "parent 1:1 classid 1:10 htb rate 10mbit ceil 50mbit prio 1 quantum 1500 "
     "burst 15k\n"
     "class add " D "parent 1:1 classid 1:20 htb rate 20mbit ceil 100mbit\n"
     "class add " D "parent 1: classid 1:30 htb rate 5gbit ceil 10gbit\n"
     "qdisc add " D "parent 1:10 handle 10: fq_codel limit 300 flows 128 target 2ms\n"
     "filter add " D "parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 flowid 1:10\n"
     "filter add " D "parent 1: protocol ip prio 2 u32 match ip dport 80 0xffff flowid 1:20\n"
     "filter add " D "parent 1:1 protocol ip prio 3 u32 match ip src 10.9.0.0/16 flowid 1:30\n",
     NULL},
    {"htb leaves the kernel numbers (8001:)", "veth0",
     "qdisc add " D "root handle 1: htb\n"
     "class add " D "parent 1: classid 1:1 htb rate 1mbit\n"
     "class add " D "parent 1: classid 1:2 htb rate 1mbit\n"
     "qdisc add " D "parent 1:1 pfifo limit 5\n"
     "qdisc add " D "parent 1:2 pfifo_head_drop limit 9\n",
     NULL},
    {"tbf root with a size table and a child", "veth0",
     "qdisc add " D "root handle 5: stab overhead 24 tbf rate 6gbit burst 1mb latency 40ms\n"
     "qdisc add " D "parent 5:1 handle 51: bfifo limit 30000\n",
     NULL},
    {"size table with overhead and mpu (tc makes a table for mpu)", "veth0",
     "qdisc add " D "root handle 1: stab overhead 4 mpu 64 htb default 1\n"
     "class add " D "parent 1: classid 1:1 htb rate 1mbit\n",
     "size table (stab) has 512 entries"},
    {"size table with mtu and tsize but no link layer", "veth0",
     "qdisc add " D "root handle 1: stab overhead 10 mtu 2048 tsize 512 tbf rate 1mbit "
     "burst 10k latency 50ms\n",
     NULL},
    {"size table for ethernet with overhead", "veth0",
     "qdisc add " D "root handle 1: stab linklayer ethernet overhead 4 htb default 1\n"
     "class add " D "parent 1: classid 1:1 htb rate 1mbit\n",
     NULL},
    {"size table for atm", "veth0",
     "qdisc add " D "root handle 1: stab linklayer atm overhead 10 tbf rate 1mbit burst 10k "
     "latency 50ms\n",
     "size table (stab) has"},
    {"noqueue root", "veth0", "qdisc add " D "root handle 7: noqueue\n", NULL},
    {"pfifo_fast root", "veth0", "qdisc add " D "root handle 8: pfifo_fast\n", NULL},
    {"fq_codel root with every option", "veth0",
     "qdisc add " D "root handle 1: fq_codel limit 500 flows 256 target 3ms interval 50ms "
     "quantum 300 ecn ce_threshold 1ms memory_limit 8mb\n",
     NULL},
    {"sfq root", "veth0", "qdisc add " D "root handle 1: sfq perturb 10\n", NULL},
    {"netem root", "veth0", "qdisc add " D "root handle 1: netem delay 1ms\n", NULL},
    {"prio with sfq, fq, codel and fw, basic, matchall filters", "veth0",
     "qdisc add " D "root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1\n"
     "qdisc add " D "parent 1:1 handle 11: sfq perturb 10 quantum 1600 limit 100\n"
     "qdisc add " D "parent 1:2 handle 12: fq maxrate 100mbit flow_limit 50\n"
     "qdisc add " D "parent 1:3 handle 13: codel target 4ms interval 40ms ecn\n"
     "filter add " D "parent 1: prio 10 protocol ip handle 5 fw classid 1:2\n"
     "filter add " D "parent 1: prio 11 protocol ip basic match 'cmp(u8 at 9 layer network eq 6)' "
     "classid 1:3\n"
     "filter add " D "parent 1: prio 12 protocol all matchall classid 1:4 action gact ok random "
     "determ drop 10\n",
     NULL},
    {"htb under prio, with its own classes and filter", "veth0",
     "qdisc add " D "root handle 1: prio\n"
     "qdisc add " D "parent 1:2 handle 12: htb default 5\n"
     "class add " D "parent 12: classid 12:5 htb rate 2mbit\n"
     "class add " D "parent 12: classid 12:6 htb rate 3mbit\n"
     "qdisc add " D "parent 12:6 handle 126: sfq\n"
     "filter add " D "parent 12: protocol ip prio 1 u32 match ip dst 10.0.0.6/32 flowid 12:6\n",
     NULL},
    {"hfsc root with classes, a leaf and a filter", "veth0",
     "qdisc add " D "root handle 1: hfsc default 20\n"
     "class add " D "parent 1: classid 1:1 hfsc sc rate 50mbit ul rate 80mbit\n"
     "class add " D "parent 1:1 classid 1:10 hfsc rt m1 5mbit d 10ms m2 2mbit ls rate 10mbit\n"
     "class add " D "parent 1:1 classid 1:20 hfsc ls rate 30mbit\n"
     "qdisc add " D "parent 1:10 handle 10: netem delay 2ms\n"
     "filter add " D "parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 flowid 1:10\n",
     NULL},
    {"u32 hash tables, links, another chain, mirred", "veth0",
     "qdisc add " D "root handle 1: htb default 1\n"
     "class add " D "parent 1: classid 1:1 htb rate 10mbit\n"
     "class add " D "parent 1: classid 1:2 htb rate 10mbit\n"
     "filter add " D "parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 flowid 1:1\n"
     "filter add " D "parent 1: prio 4 handle 2: protocol ip u32 divisor 16\n"
     "filter add " D "parent 1: prio 4 protocol ip u32 divisor 4\n"
     "filter add " D "parent 1: prio 1 protocol ip u32 ht 800:: match ip dst 10.1.0.0/16 "
     "hashkey mask 0x0000000f at 16 link 2:\n"
     "filter add " D "parent 1: prio 4 protocol ip u32 ht 2:3: match ip dst 10.1.0.3/32 "
     "flowid 1:2 action mirred egress redirect dev veth1\n"
     "filter add " D "parent 1: chain 3 prio 6 protocol ip u32 match ip dst 10.0.0.3/32 "
     "flowid 1:2\n",
     NULL},
    {"u32 with gact, fw with a mask and an action, basic with meta and u32 ematches, "
     "matchall with mirred",
     "veth0",
     HTB_BASE "filter add " D "parent 1: prio 1 protocol ip u32 match ip dst 10.0.0.9/32 "
              "action drop\n"
              "filter add " D "parent 1: prio 2 protocol ip handle 0x10/0xff fw classid 1:10\n"
              "filter add " D "parent 1: prio 3 protocol ip handle 7 fw classid 1:20 action "
              "mirred egress mirror dev veth1\n"
              "filter add " D "parent 1: prio 4 protocol ip basic match 'meta(priority eq 1) "
              "and u32(u16 0x1122 0xffff at 12)' classid 1:20\n"
              "filter add " D "parent 1: prio 5 protocol all matchall classid 1:10 action "
              "mirred egress mirror dev veth1 pipe action gact pass\n",
     NULL},
    {"flower filter", "veth0",
     HTB_BASE "filter add " D "parent 1: prio 3 protocol ip flower dst_ip 10.0.0.1 classid 1:10\n",
     "filter flower"},
    {"bpf filter", "veth0",
     HTB_BASE "filter add " D "parent 1: prio 49152 bpf bytecode '1,6 0 0 4294967295,' "
              "flowid 1:10\n",
     "bpf filters are not replayed"},
    {"cgroup filter", "veth0", HTB_BASE "filter add " D "parent 1: protocol ip prio 7 handle 1: cgroup\n",
     "filter cgroup"},
    {"route filter", "veth0",
     HTB_BASE "filter add " D "parent 1: prio 8 protocol ip route to 5 classid 1:10\n",
     "filter route"},
    {"flow filter", "veth0",
     HTB_BASE "filter add " D "parent 1: prio 9 protocol ip handle 1 flow hash keys src divisor 4 "
              "baseclass 1:10\n",
     "filter flow"},
    {"u32 with a police action", "veth0",
     HTB_BASE "filter add " D "parent 1: prio 1 protocol ip u32 match ip dst 10.0.0.1/32 "
              "action police rate 1mbit burst 10k drop\n",
     "police action"},
    {"u32 with an skbedit action", "veth0",
     HTB_BASE "filter add " D "parent 1: prio 1 protocol ip u32 match ip dst 10.0.0.1/32 "
              "action skbedit priority 1:10\n",
     "skbedit action"},
    {"class with a rate estimator", "veth0",
     "qdisc add " D "root handle 1: htb\n"
     "class add " D "parent 1: classid 1:10 estimator 1sec 8sec htb rate 1mbit\n",
     "rate estimator"},
    {"u32 tables numbered with a gap", "veth0",
     "qdisc add " D "root handle 1: htb\n"
     "filter add " D "parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32\n"
     "filter add " D "parent 1: protocol ip prio 2 u32 match ip dst 10.0.0.2/32\n"
     "filter del " D "parent 1: protocol ip prio 1\n",
     "would give this one 800:"},
    {"u32 at one priority in the qdisc's and a class's block", "veth0",
     "qdisc add " D "root handle 1: htb\n"
     "class add " D "parent 1: classid 1:1 htb rate 1mbit\n"
     "filter add " D "parent 1:1 protocol ip prio 1 u32 match ip dst 10.0.0.1/32\n"
     "filter add " D "parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.2/32\n",
     "give them different priorities"},
    {"mq root with fq_codel and netem children (veth, 4 queues)", "mq0",
     "qdisc add dev mq0 root handle 1: mq\n"
     "qdisc replace dev mq0 parent 1:1 handle 11: fq_codel\n"
     "qdisc replace dev mq0 parent 1:3 handle 13: netem delay 5ms\n",
     NULL},
    {"mq root with a tbf child (ifb, 4 queues)", "ifb4",
     "qdisc add dev ifb4 root handle 1: mq\n"
     "qdisc replace dev ifb4 parent 1:2 handle 22: tbf rate 1mbit burst 10k latency 50ms\n",
     NULL},
    {"the kernel's default mq root (ifb, 4 queues)", "ifb4", "", ""},
    {"multiq root with a child and a filter (veth, 4 queues)", "mq0",
     "qdisc add dev mq0 root handle 1: multiq\n"
     "qdisc add dev mq0 parent 1:2 handle 12: pfifo limit 50\n"
     "filter add dev mq0 parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 "
     "flowid 1:2\n",
     NULL},
    {"mqprio root in software (veth, 4 queues)", "mq0",
     "qdisc add dev mq0 root handle 1: mqprio num_tc 2 map 0 0 0 0 1 1 1 1 0 0 0 0 0 0 0 0 "
     "queues 2@0 2@2 hw 0\n",
     NULL},
};

/* True when msg holds every '|'-separated part of want. */
static bool has_all(const char *msg, const char *want)
{
    while (*want) {
        const char *bar = strchr(want, '|');
        size_t n = bar ? (size_t)(bar - want) : strlen(want);
        char part[256];
        snprintf(part, sizeof part, "%.*s", (int)n, want);
        if (!strstr(msg, part))
            return false;
        want += n + (bar != NULL);
    }
    return true;
}

/* Runs one case: builds it, then checks the outcome. NULL when it held,
 * "" when it was skipped (host only), else what went wrong (to free). */
static char *run_case(const char *dev, const char *cmds, const char *refusal, char **log)
{
    char *out = NULL;
    int rc = cmds[0] ? tc_batch(cmds, false, &out) : 0;
    if (rc != 0) {
        char *msg = NULL;
        if (asprintf(&msg, "%s: the tree cannot be built here: %s", fx.in_vm ? "FAILED" : "skipped",
                     out) < 0)
            msg = NULL;
        free(out);
        if (!fx.in_vm) {
            *log = msg;
            return strdup("");
        }
        return msg;
    }
    free(out);
    _cleanup_free_ char *before = tc_state(dev);
    struct chaos_err err = {0};
    struct tc_snapshot *s = NULL;
    int ifindex = fx_ifindex(dev);
    int r = tc_snapshot_take(fx.t, ifindex, dev, &s, &err);
    char *fail = NULL;
    if (refusal && refusal[0]) {
        if (r != -EOPNOTSUPP || !has_all(err.msg, refusal) ||
            !strstr(err.msg, "cannot be restored exactly"))
            (void)!asprintf(&fail, "take gave %d (%s), want a refusal saying '%s'", r, err.msg,
                            refusal);
        else if ((fail = state_differs(dev, before)) == NULL)
            (void)!asprintf(log, "refused: %s", err.msg);
        tc_snapshot_free(s);
        return fail;
    }
    if (r < 0) {
        (void)!asprintf(&fail, "take: %d %s", r, err.msg);
        return fail;
    }
    if (refusal) { /* "": the kernel's default, nothing kept */
        if (!tc_snapshot_empty(s))
            (void)!asprintf(&fail, "kept %zu objects of the kernel's default",
                            tc_snapshot_count(s));
        else
            *log = strdup("empty snapshot (the kernel's default root)");
        tc_snapshot_free(s);
        return fail;
    }
    if (tc_snapshot_empty(s)) {
        tc_snapshot_free(s);
        return strdup("nothing in the snapshot");
    }
    del_root(dev);
    /* The tree is gone (so a restore that did nothing cannot pass). */
    struct tc_snapshot *gone = take_ok(dev);
    bool was_gone = tc_snapshot_empty(gone);
    tc_snapshot_free(gone);
    if (!was_gone) {
        tc_snapshot_free(s);
        return strdup("deleting the root left configuration behind");
    }
    r = tc_snapshot_restore(fx.t, ifindex, dev, s, &err);
    tc_snapshot_free(s);
    if (r < 0) {
        (void)!asprintf(&fail, "restore: %d %s", r, err.msg);
        return fail;
    }
    if ((fail = state_differs(dev, before)) == NULL)
        *log = strdup("restored exactly");
    return fail;
}

/* Runs every case on the same namespace, the root deleted between them,
 * and fails once at the end naming every case that did not hold. */
static void run_all(const char *const *names, const char *const *devs, const char *const *cmds,
                    const char *const *refusals, size_t n)
{
    size_t failed = 0, skipped = 0;
    char summary[8192] = "";
    size_t sl = 0;
    for (size_t i = 0; i < n; i++) {
        char *log = NULL;
        char *fail = run_case(devs[i], cmds[i], refusals[i], &log);
        if (fail && !fail[0]) {
            skipped++;
            fail = NULL;
        }
        fprintf(stderr, "[case] %s: %s\n", names[i], fail ? "FAILED" : log ? log : "?");
        if (fail) {
            fprintf(stderr, "       %s\n", fail);
            failed++;
            sl += (size_t)snprintf(summary + sl, sl < sizeof summary ? sizeof summary - sl : 0,
                                   "\n%s: %.300s", names[i], fail);
        }
        free(fail);
        free(log);
        del_root(devs[i]);
    }
    fprintf(stderr, "[case] %zu cases: %zu held, %zu skipped (kernel lacks a kind), %zu failed\n",
            n, n - failed - skipped, skipped, failed);
    cr_assert_eq(failed, 0, "%zu of %zu cases failed:%s", failed, n, summary);
}

#define NLEAF ARRAY_SIZE(leaves)

static void leaf_cases(const char *parent_kind)
{
    static char cmds[NLEAF][1024], names[NLEAF][256], refusals[NLEAF][256];
    const char *c[NLEAF], *nm[NLEAF], *dv[NLEAF], *rf[NLEAF];
    bool htb = strcmp(parent_kind, "htb") == 0;
    const char *at = htb ? "1:10" : "1:2";
    const char *handle = htb ? "10:" : "12:";
    for (size_t i = 0; i < NLEAF; i++) {
        snprintf(cmds[i], sizeof cmds[i],
                 "%s"
                 "qdisc add " D "parent %s handle %s %s\n"
                 "filter add " D "parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 "
                 "flowid %s\n",
                 htb ? HTB_BASE : "qdisc add " D "root handle 1: prio\n", at, handle,
                 leaves[i].spec, at);
        snprintf(names[i], sizeof names[i], "%s under %s", leaves[i].spec, parent_kind);
        char kind[32];
        sscanf(leaves[i].spec, "%31s", kind);
        /* The refusal names the qdisc, then says why. */
        snprintf(refusals[i], sizeof refusals[i], "qdisc %s %s at %s|%s", kind, handle, at,
                 leaves[i].refusal ? leaves[i].refusal : "");
        c[i] = cmds[i];
        nm[i] = names[i];
        dv[i] = "veth0";
        rf[i] = leaves[i].refusal ? refusals[i] : NULL;
    }
    run_all(nm, dv, c, rf, NLEAF);
}

TestSuite(tc_cases, .init = snap_setup, .fini = snap_teardown, .timeout = 400);

Test(tc_cases, leaf_qdiscs_under_htb)
{
    leaf_cases("htb");
}

Test(tc_cases, leaf_qdiscs_under_prio)
{
    leaf_cases("prio");
}

Test(tc_cases, trees_roots_and_filters)
{
    size_t n = ARRAY_SIZE(trees);
    const char *c[ARRAY_SIZE(trees)], *nm[ARRAY_SIZE(trees)], *dv[ARRAY_SIZE(trees)],
        *rf[ARRAY_SIZE(trees)];
    for (size_t i = 0; i < n; i++) {
        c[i] = trees[i].cmds;
        nm[i] = trees[i].name;
        dv[i] = trees[i].dev;
        rf[i] = trees[i].refusal;
    }
    run_all(nm, dv, c, rf, n);
}
