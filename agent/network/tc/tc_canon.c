#include "tc_canon.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/gen_stats.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <sys/socket.h>

#include "tc_canon_rules.h"
#include "util.h"

/* ---- Canonical form: what to keep of each kind ---- */

int canon_refuse(struct canon_cx *c, const char *fmt, ...)
{
    char why[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (c->ifname)
        return chaos_err_set(c->err, EOPNOTSUPP, "interface %s: %s cannot be restored exactly: %s",
                             c->ifname, c->what, why);
    return chaos_err_set(c->err, EOPNOTSUPP, "saved tc snapshot: %s cannot be restored exactly: %s",
                         c->what, why);
}

int canon_malformed(struct canon_cx *c, const char *where)
{
    if (c->ifname)
        return chaos_err_set(c->err, EINVAL, "interface %s: %s: malformed %s in the kernel's dump",
                             c->ifname, c->what, where);
    return chaos_err_set(c->err, EINVAL, "saved tc snapshot: %s: malformed %s", c->what, where);
}

/* Copies a stream of attributes by the rules. Unknown types are refused:
 * a newer kernel may dump output-only data that would not replay, or
 * configuration we would not see is kept. */
int canon_copy_attrs(struct tcm_iter it, const struct ruleset *rs, struct mbuf *out,
                      struct canon_cx *c)
{
    const struct nlattr *a;
    while ((a = tcm_attr_next(&it))) {
        int t = tcm_atype(a), act = 0;
        const struct rule *ru = NULL;
        for (size_t i = 0; i < rs->n; i++)
            if (rs->r[i].type == t) {
                ru = &rs->r[i];
                act = ru->act;
            }
        if (!ru && t > 0 && t <= rs->keep_upto)
            act = R_KEEP;
        if (act == R_KEEP) {
            mbuf_copy(out, a);
        } else if (act == R_FN) {
            int r = ru->fn(a, out, c);
            if (r < 0)
                return r;
        } else if (act != R_DROP) {
            return canon_refuse(c, "its %s carry attribute %d, which we do not know", rs->where, t);
        }
    }
    if (it.bad)
        return canon_malformed(c, rs->where);
    return 0;
}

int canon_copy_nest(const struct nlattr *a, const struct ruleset *rs, struct mbuf *out,
                     struct canon_cx *c)
{
    size_t off = mbuf_start(out, a->nla_type);
    int r = canon_copy_attrs(tcm_nest_attrs(a), rs, out, c);
    mbuf_end(out, off);
    return r;
}

/* A fixed struct; zero_at/zero_len blank statistics inside it. */
int canon_copy_struct(const struct nlattr *a, size_t min, size_t zero_at, size_t zero_len,
                       struct mbuf *out, struct canon_cx *c, const char *where)
{
    if (tcm_alen(a) < min)
        return canon_malformed(c, where);
    unsigned char buf[512];
    size_t n = tcm_alen(a);
    if (n > sizeof buf)
        return canon_refuse(c, "its %s are %zu bytes, more than we know", where, n);
    memcpy(buf, tcm_adata(a), n);
    if (zero_len && zero_at + zero_len <= n)
        memset(buf + zero_at, 0, zero_len);
    mbuf_attr(out, a->nla_type, buf, n);
    return 0;
}


/* Statistics are dropped, but a rate estimator shows only there: its
 * interval and time constant (TCA_RATE) are never dumped. */
int canon_stats2(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    struct tcm_iter it = tcm_nest_attrs(a);
    const struct nlattr *s;
    while ((s = tcm_attr_next(&it)))
        if (tcm_atype(s) == TCA_STATS_RATE_EST || tcm_atype(s) == TCA_STATS_RATE_EST64)
            return canon_refuse(c,
                                "it has a rate estimator, whose settings the kernel does not dump");
    return 0;
}

/* -- qdisc options -- */

static int htb_init(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    if (tcm_alen(a) < sizeof(struct tc_htb_glob))
        return canon_malformed(c, "htb options");
    struct tc_htb_glob g;
    memcpy(&g, tcm_adata(a), sizeof g);
    g.direct_pkts = 0; /* a packet count */
    /* The kernel dumps HTB_VER (3.17) but accepts only its major part. */
    if (c->replay && g.version > 0xffff)
        g.version >>= 16;
    mbuf_attr(out, a->nla_type, &g, sizeof g);
    return 0;
}

static int refuse_offload(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    return canon_refuse(c, "it is offloaded to hardware");
}

static const struct rule htb_rules[] = {
    {TCA_HTB_INIT, R_FN, htb_init},         {TCA_HTB_DIRECT_QLEN, R_KEEP, NULL},
    {TCA_HTB_PARMS, R_KEEP, NULL},          {TCA_HTB_RATE64, R_KEEP, NULL},
    {TCA_HTB_CEIL64, R_KEEP, NULL},         {TCA_HTB_PAD, R_DROP, NULL},
    {TCA_HTB_OFFLOAD, R_FN, refuse_offload}};
static const struct rule tbf_rules[] = {
    {TCA_TBF_PARMS, R_KEEP, NULL}, {TCA_TBF_RATE64, R_KEEP, NULL}, {TCA_TBF_PRATE64, R_KEEP, NULL},
    {TCA_TBF_BURST, R_KEEP, NULL}, {TCA_TBF_PBURST, R_KEEP, NULL}, {TCA_TBF_PAD, R_DROP, NULL}};
/* codel keeps its times in 1024 ns units and dumps them in µs rounded
 * down, so the dumped value sent back loses up to 1 µs per round trip
 * (3ms comes back as 2999us, then 2998us). The unit count is recoverable
 * from the dump; replay the smallest µs value that maps onto it. */
static int codel_time(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    if (tcm_alen(a) < sizeof(uint32_t))
        return canon_malformed(c, "codel time");
    uint32_t us;
    memcpy(&us, tcm_adata(a), sizeof us);
    if (c->replay) {
        uint64_t units = ((uint64_t)us * 1000 + 1023) / 1024;
        uint64_t back = (units * 1024 + 999) / 1000;
        if (back <= UINT32_MAX)
            us = (uint32_t)back;
    }
    mbuf_attr(out, a->nla_type, &us, sizeof us);
    return 0;
}

static const struct rule none[] = {{0, R_DROP, NULL}};
static const struct rule fq_codel_rules[] = {{TCA_FQ_CODEL_TARGET, R_FN, codel_time},
                                             {TCA_FQ_CODEL_INTERVAL, R_FN, codel_time},
                                             {TCA_FQ_CODEL_CE_THRESHOLD, R_FN, codel_time}};
static const struct rule codel_rules[] = {{TCA_CODEL_TARGET, R_FN, codel_time},
                                          {TCA_CODEL_INTERVAL, R_FN, codel_time},
                                          {TCA_CODEL_CE_THRESHOLD, R_FN, codel_time}};
static const struct ruleset htb_rs = RULES("htb options", htb_rules, 0);
static const struct ruleset tbf_rs = RULES("tbf options", tbf_rules, 0);
/* Every attribute of these kinds is configuration the kernel takes back as
 * dumped; types newer than our headers are refused. */
static const struct ruleset fq_codel_rs =
    RULES("fq_codel options", fq_codel_rules, TCA_FQ_CODEL_MAX);
static const struct ruleset codel_rs = RULES("codel options", codel_rules, TCA_CODEL_MAX);
static const struct ruleset fq_rs = RULES("fq options", none, TCA_FQ_MAX);

static int opt_htb(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &htb_rs, o, c);
}
static int opt_tbf(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &tbf_rs, o, c);
}
static int opt_fq_codel(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &fq_codel_rs, o, c);
}
static int opt_codel(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &codel_rs, o, c);
}
static int opt_fq(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &fq_rs, o, c);
}
static int opt_fifo(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_struct(a, sizeof(struct tc_fifo_qopt), 0, 0, o, c, "fifo options");
}
static int opt_prio(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_struct(a, sizeof(struct tc_prio_qopt), 0, 0, o, c, "priomap options");
}

/* What sfq_init and sfq_change leave of the shape of an sfq for a request:
 * they start from limit 127, flows 128, divisor 1024, depth 127 and apply
 * flows, divisor (flows <= divisor), depth, then limit (limit <= depth *
 * flows, and flows lowered to the limit), each only when it is not 0. */
#define SFQ_MAX_DEPTH_ 127u
#define SFQ_MAX_FLOWS_ (0x10000u - SFQ_MAX_DEPTH_ - 1)
struct sfq_shape {
    uint32_t limit, flows, divisor, depth;
};

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

static struct sfq_shape sfq_made(const struct tc_sfq_qopt_v1 *o, bool v1)
{
    struct sfq_shape s = {SFQ_MAX_DEPTH_, 128, 1024, SFQ_MAX_DEPTH_};
    if (o->v0.flows)
        s.flows = min_u32(o->v0.flows, SFQ_MAX_FLOWS_);
    if (o->v0.divisor) {
        s.divisor = o->v0.divisor;
        s.flows = min_u32(s.flows, s.divisor);
    }
    if (v1 && o->depth)
        s.depth = min_u32(o->depth, SFQ_MAX_DEPTH_);
    if (o->v0.limit) {
        uint64_t most = (uint64_t)s.depth * s.flows;
        s.limit = most < o->v0.limit ? (uint32_t)most : o->v0.limit;
        s.flows = min_u32(s.flows, s.limit);
    }
    return s;
}

/* sfq dumps the shape it ended up with, and sending that back is not
 * always the same shape: by default flows is 128 and limit 127, and a
 * request with limit 127 lowers flows to 127 (seen on Debian's 6.1: `sfq
 * perturb 10` came back as flows 127). Send the dump as it is when the
 * kernel makes the same shape from it, else without the limit when the
 * limit is the default one; any other shape takes more than one request
 * and is refused. */
static int opt_sfq(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    size_t n = tcm_alen(a);
    if (n < sizeof(struct tc_sfq_qopt))
        return canon_malformed(c, "sfq options");
    if (n > sizeof(struct tc_sfq_qopt_v1))
        return canon_refuse(c, "its sfq options are %zu bytes, more than we know", n);
    struct tc_sfq_qopt_v1 q = {0};
    bool v1 = n == sizeof q;
    memcpy(&q, tcm_adata(a), n);
    if (v1)
        memset(&q.stats, 0, sizeof q.stats);
    struct sfq_shape want = {q.v0.limit, q.v0.flows, q.v0.divisor, v1 ? q.depth : SFQ_MAX_DEPTH_};
    struct tc_sfq_qopt_v1 send = q;
    struct sfq_shape got = sfq_made(&send, v1);
    if (memcmp(&got, &want, sizeof got) != 0) {
        send.v0.limit = 0;
        got = sfq_made(&send, v1);
    }
    if (memcmp(&got, &want, sizeof got) != 0)
        return canon_refuse(c,
                            "one request cannot make an sfq with limit %u, flows %u, divisor %u "
                            "and depth %u (the kernel lowers flows to the limit and the limit to "
                            "depth times flows)",
                            want.limit, want.flows, want.divisor, want.depth);
    mbuf_attr(o, a->nla_type, c->replay ? &send : &q, n);
    return 0;
}

/* pie keeps its target in 64 ns ticks and dumps it in µs rounded down, so
 * the dumped value can come back 1 µs lower; send the smallest µs value
 * that dumps as the one we have. */
static uint32_t pie_dumped_us(uint32_t us)
{
    uint64_t ticks = (uint64_t)us * 1000 >> 6;
    return (uint32_t)((uint32_t)(ticks << 6) / 1000);
}

static int pie_time(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    if (tcm_alen(a) < sizeof(uint32_t))
        return canon_malformed(c, "pie target");
    uint32_t us;
    memcpy(&us, tcm_adata(a), sizeof us);
    if (c->replay && pie_dumped_us(us) != us && us < UINT32_MAX && pie_dumped_us(us + 1) == us)
        us++;
    mbuf_attr(out, a->nla_type, &us, sizeof us);
    return 0;
}

/* netem: a struct tc_netem_qopt, then attributes, all inside TCA_OPTIONS.
 * Its delay distribution table (tc's `distribution normal`, ...) is never
 * dumped, nor whether there is one; it only matters with jitter, which is
 * therefore refused. The same holds for a slot distribution. */
static int netem_jitter(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    int64_t j;
    if (tcm_alen(a) < sizeof j)
        return canon_malformed(c, "netem jitter");
    memcpy(&j, tcm_adata(a), sizeof j);
    if (j)
        return canon_refuse(c, "it has jitter, and the kernel never dumps netem's delay "
                               "distribution table, nor whether it has one");
    mbuf_copy(out, a);
    return 0;
}

static int netem_slot(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    struct tc_netem_slot sl;
    if (tcm_alen(a) < sizeof sl)
        return canon_malformed(c, "netem slot");
    memcpy(&sl, tcm_adata(a), sizeof sl);
    if (sl.dist_delay || sl.dist_jitter)
        return canon_refuse(c, "its slots follow a distribution, and the kernel never dumps "
                               "netem's slot distribution table");
    mbuf_copy(out, a);
    return 0;
}

static int netem_dist(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    return canon_refuse(c, "it carries a distribution table, which the kernel never dumps");
}

static const struct rule netem_loss_rules[] = {{NETEM_LOSS_GI, R_KEEP, NULL},
                                               {NETEM_LOSS_GE, R_KEEP, NULL}};
static const struct ruleset netem_loss_rs = RULES("netem loss model", netem_loss_rules, 0);
static int netem_loss(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    return canon_copy_nest(a, &netem_loss_rs, out, c);
}

static const struct rule netem_rules[] = {
    {TCA_NETEM_CORR, R_KEEP, NULL},          {TCA_NETEM_DELAY_DIST, R_FN, netem_dist},
    {TCA_NETEM_REORDER, R_KEEP, NULL},       {TCA_NETEM_CORRUPT, R_KEEP, NULL},
    {TCA_NETEM_LOSS, R_FN, netem_loss},      {TCA_NETEM_RATE, R_KEEP, NULL},
    {TCA_NETEM_ECN, R_KEEP, NULL},           {TCA_NETEM_RATE64, R_KEEP, NULL},
    {TCA_NETEM_PAD, R_DROP, NULL},           {TCA_NETEM_LATENCY64, R_KEEP, NULL},
    {TCA_NETEM_JITTER64, R_FN, netem_jitter}, {TCA_NETEM_SLOT, R_FN, netem_slot},
    {TCA_NETEM_SLOT_DIST, R_FN, netem_dist}};
static const struct ruleset netem_rs = RULES("netem options", netem_rules, 0);

/* A fixed struct followed by attributes, all in one TCA_OPTIONS (netem,
 * mqprio): the kernel reads the attributes after the struct, aligned. */
static int copy_struct_attrs(const struct nlattr *a, const void *head, size_t head_len,
                             const struct ruleset *rs, struct mbuf *out, struct canon_cx *c)
{
    size_t skip = NLA_ALIGN(head_len);
    if (tcm_alen(a) < skip)
        return canon_malformed(c, rs->where);
    size_t off = mbuf_start(out, a->nla_type);
    mbuf_put(out, head, head_len);
    struct tcm_iter it = {(const unsigned char *)tcm_adata(a) + skip, tcm_alen(a) - skip, false};
    int r = canon_copy_attrs(it, rs, out, c);
    mbuf_end(out, off);
    return r;
}

static int opt_netem(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    struct tc_netem_qopt q;
    if (tcm_alen(a) < sizeof q)
        return canon_malformed(c, "netem options");
    memcpy(&q, tcm_adata(a), sizeof q);
    if (q.jitter)
        return canon_refuse(c, "it has jitter, and the kernel never dumps netem's delay "
                               "distribution table, nor whether it has one");
    return copy_struct_attrs(a, &q, sizeof q, &netem_rs, o, c);
}

/* mqprio in software (hw 0): the struct alone; modes, shapers and rates
 * come with hardware offload. */
static const struct ruleset mqprio_rs = RULES("mqprio options", none, 0);
static int opt_mqprio(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    struct tc_mqprio_qopt q;
    if (tcm_alen(a) < sizeof q)
        return canon_malformed(c, "mqprio options");
    memcpy(&q, tcm_adata(a), sizeof q);
    if (q.hw)
        return canon_refuse(c, "it is offloaded to hardware");
    return copy_struct_attrs(a, &q, sizeof q, &mqprio_rs, o, c);
}

static int opt_multiq(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_struct(a, sizeof(struct tc_multiq_qopt), 0, 0, o, c, "multiq options");
}

static int opt_hfsc(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_struct(a, sizeof(struct tc_hfsc_qopt), 0, 0, o, c, "hfsc options");
}

static const struct rule pie_rules[] = {{TCA_PIE_TARGET, R_FN, pie_time}};
static const struct ruleset pie_rs = RULES("pie options", pie_rules, TCA_PIE_MAX);
static const struct rule cake_rules[] = {{TCA_CAKE_PAD, R_DROP, NULL}};
static const struct ruleset cake_rs = RULES("cake options", cake_rules, TCA_CAKE_MAX);
static const struct ruleset hfsc_class_rs = RULES("hfsc class options", none, TCA_HFSC_MAX);
static const struct rule sfb_rules[] = {{TCA_SFB_PARMS, R_KEEP, NULL}};
static const struct ruleset sfb_rs = RULES("sfb options", sfb_rules, 0);

static int opt_pie(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &pie_rs, o, c);
}
static int opt_cake(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &cake_rs, o, c);
}
static int opt_hfsc_class(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &hfsc_class_rs, o, c);
}
static int opt_sfb(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &sfb_rs, o, c);
}
static int opt_none(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_refuse(c, "it has options, which this kind never has");
}

/* The kinds we replay, each verified to come back exactly on Debian's 6.1
 * (tests/host/tc_snapshot_cases.c, run in the VM; the host kernel lacks
 * most of them). Classes: only htb and hfsc classes are made by users; the
 * classes of prio, tbf, multiq, mq, mqprio and sfb come with their qdisc,
 * and fq_codel, sfq, fq and cake list flows or tins. */
struct kind {
    const char *name;
    attr_fn opts;
    bool user_classes;
};
static const struct kind qdisc_kinds[] = {
    {"htb", opt_htb, true},
    {"tbf", opt_tbf, false},
    {"pfifo", opt_fifo, false},
    {"bfifo", opt_fifo, false},
    {"pfifo_head_drop", opt_fifo, false},
    {"pfifo_fast", opt_prio, false},
    {"prio", opt_prio, false},
    {"fq_codel", opt_fq_codel, false},
    {"codel", opt_codel, false},
    {"fq", opt_fq, false},
    {"sfq", opt_sfq, false},
    {"noqueue", opt_none, false},
    {"mq", opt_none, false},
    {"netem", opt_netem, false},
    {"pie", opt_pie, false},
    {"cake", opt_cake, false},
    {"sfb", opt_sfb, false},
    {"multiq", opt_multiq, false},
    {"mqprio", opt_mqprio, false},
    {"hfsc", opt_hfsc, true},
};
static const struct kind class_kinds[] = {{"htb", opt_htb, true}, {"hfsc", opt_hfsc_class, true}};
static const struct kind filter_kinds[] = {
    {"u32", canon_opt_u32, false},
    {"matchall", canon_opt_matchall, false},
    {"fw", canon_opt_fw, false},
    {"basic", canon_opt_basic, false},
};

static const struct kind *find_kind(const struct kind *k, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].name, name) == 0)
            return &k[i];
    return NULL;
}

bool canon_user_classes(const char *qdisc_kind)
{
    const struct kind *k = find_kind(qdisc_kinds, ARRAY_SIZE(qdisc_kinds), qdisc_kind);
    return k && k->user_classes;
}

static const char *why_not(int type, const char *kind)
{
    if (type == RTM_NEWTFILTER && strcmp(kind, "bpf") == 0)
        return "bpf filters are not replayed (an eBPF program is held by id and goes away "
               "with the filter)";
    if (type == RTM_NEWQDISC && strcmp(kind, "red") == 0)
        return "the kernel does not dump red's lookup table (TCA_RED_STAB)";
    if (type == RTM_NEWQDISC && strcmp(kind, "choke") == 0)
        return "the kernel does not dump choke's lookup table (TCA_CHOKE_STAB)";
    if (type == RTM_NEWQDISC && strcmp(kind, "gred") == 0)
        return "the kernel does not dump gred's lookup tables (TCA_GRED_STAB)";
    return "its kind is not one we have verified to replay exactly";
}

/* -- top level -- */

static int stab(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    struct tcm_iter it = tcm_nest_attrs(a);
    const struct nlattr *s;
    while ((s = tcm_attr_next(&it))) {
        if (tcm_atype(s) == TCA_STAB_BASE) {
            struct tc_sizespec sz;
            if (tcm_alen(s) < sizeof sz)
                return canon_malformed(c, "size table");
            memcpy(&sz, tcm_adata(s), sizeof sz);
            /* The kernel dumps the base but never the table itself. */
            if (sz.tsize)
                return canon_refuse(c,
                                    "its size table (stab) has %u entries and the kernel does not "
                                    "dump them",
                                    sz.tsize);
        } else {
            return canon_refuse(c, "its size table carries attribute %d, which we do not know",
                                tcm_atype(s));
        }
    }
    if (it.bad)
        return canon_malformed(c, "size table");
    mbuf_copy(out, a);
    return 0;
}

static int hw_offload(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    if (tcm_alen(a) >= 1 && *(const uint8_t *)tcm_adata(a))
        return canon_refuse(c, "it is offloaded to hardware");
    return 0;
}

static int refuse_block(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    return canon_refuse(c, "it uses a shared filter block");
}

/* Canonical (or, with c->replay, sendable) form of one dumped object. */
/* One attribute of a tc object's top level: kept, dropped, rewritten by its
 * kind's rules (TCA_OPTIONS), or refused. */
static int canon_top_attr(const struct nlattr *a, int type, const struct kind *kk,
                          struct mbuf *out, struct canon_cx *c)
{
    int r = 0;
    switch (tcm_atype(a)) {
    case TCA_KIND:
        mbuf_copy(out, a);
        break;
    case TCA_CHAIN:
        if (type != RTM_NEWTFILTER)
            r = canon_refuse(c, "it carries a chain attribute, which only filters have");
        else
            mbuf_copy(out, a);
        break;
    case TCA_OPTIONS:
        r = kk->opts(a, out, c);
        break;
    case TCA_STAB:
        if (type != RTM_NEWQDISC)
            r = canon_refuse(c, "it carries a size table, which only qdiscs have");
        else
            r = stab(a, out, c);
        break;
    case TCA_STATS2:
        r = canon_stats2(a, out, c);
        break;
    case TCA_STATS:
    case TCA_XSTATS:
    case TCA_RATE:
    case TCA_FCNT:
    case TCA_PAD:
    case TCA_EXT_WARN_MSG:
        break;
    case TCA_HW_OFFLOAD:
        r = hw_offload(a, out, c);
        break;
    case TCA_INGRESS_BLOCK:
    case TCA_EGRESS_BLOCK:
        r = refuse_block(a, out, c);
        break;
    default:
        r = canon_refuse(c, "the kernel reports attribute %d, which we do not know",
                         tcm_atype(a));
    }
    return r;
}

int canon(const struct nlmsghdr *in, struct mbuf *out, struct canon_cx *c)
{
    if (in->nlmsg_len < TCM_ATTR_OFF)
        return canon_malformed(c, "message (too short)");
    const struct tcmsg *t = tcm_of(in);
    const struct nlattr *k = tcm_find_attr(in, TCA_KIND);
    int type = in->nlmsg_type;
    if (!k || tcm_alen(k) < 2 || ((const char *)tcm_adata(k))[tcm_alen(k) - 1] != '\0' ||
        strlen(tcm_adata(k)) + 1 != tcm_alen(k))
        return canon_malformed(c, "kind");
    const char *kind = tcm_adata(k);
    const struct kind *kk = NULL;
    if (type == RTM_NEWQDISC)
        kk = find_kind(qdisc_kinds, ARRAY_SIZE(qdisc_kinds), kind);
    else if (type == RTM_NEWTCLASS)
        kk = find_kind(class_kinds, ARRAY_SIZE(class_kinds), kind);
    else if (type == RTM_NEWTFILTER)
        kk = find_kind(filter_kinds, ARRAY_SIZE(filter_kinds), kind);
    else
        return canon_malformed(c, "message type");

    struct nlmsghdr h = {.nlmsg_type = (uint16_t)type};
    struct tcmsg tm = {.tcm_family = AF_UNSPEC,
                       .tcm_handle = t->tcm_handle,
                       .tcm_parent = t->tcm_parent,
                       /* qdiscs: the refcount; classes: the leaf qdisc
                        * (compared, not sent); filters: prio and protocol. */
                       .tcm_info = type == RTM_NEWQDISC ? 0 : t->tcm_info};
    mbuf_put(out, &h, sizeof h);
    mbuf_put(out, &tm, sizeof tm);

    /* tcm_describe() reads the header, kind and chain: the raw message has them. */
    tcm_describe(in, c->what, sizeof c->what);
    if (!kk)
        return canon_refuse(c, "%s", why_not(type, kind));

    struct tcm_iter it = tcm_msg_attrs(in);
    const struct nlattr *a;
    while ((a = tcm_attr_next(&it))) {
        int r = canon_top_attr(a, type, kk, out, c);
        if (r < 0)
            return r;
    }
    if (it.bad)
        return canon_malformed(c, "attributes");
    if (out->oom)
        return chaos_err_set(c->err, ENOMEM, "out of memory (or a tc object over %d bytes)",
                             TCM_MAX_MSG);
    ((struct nlmsghdr *)out->p)->nlmsg_len = (uint32_t)out->len;
    return 0;
}

int canon_dup(const struct nlmsghdr *in, struct nlmsghdr **res, struct canon_cx *c)
{
    __attribute__((cleanup(mbuf_freep))) struct mbuf b = {0};
    int r = canon(in, &b, c);
    if (r < 0)
        return r;
    *res = (struct nlmsghdr *)steal_pointer(&b.p);
    return 0;
}
