#include "tc_snapshot.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/gen_stats.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_gact.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/msg.h>

#include "nl_tc.h"
#include "util.h"

/* Bounds for what a journal may hand us (a dump is bounded by the kernel). */
#define MAX_OBJS 65536
#define MAX_MSG 65536

#define TCM_OFF NLMSG_HDRLEN
#define ATTR_OFF (NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct tcmsg)))

/* The snapshot keeps each object as a netlink message in canonical form:
 * what the kernel dumped, statistics and other output-only fields removed,
 * ifindex/refcount/sequence zeroed. The same form of a fresh dump is what
 * restore compares against, and replay messages are derived from it. */
struct tc_snapshot {
    size_t n, cap;
    struct nlmsghdr **m;
};

static const struct tcmsg *tcm_of(const struct nlmsghdr *m)
{
    return (const struct tcmsg *)((const char *)m + TCM_OFF);
}

void tc_snapshot_free(struct tc_snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->m[i]);
    free(s->m);
    free(s);
}

static void snapp(struct tc_snapshot **s)
{
    tc_snapshot_free(*s);
}
#define _cleanup_snap_ __attribute__((cleanup(snapp)))

bool tc_snapshot_empty(const struct tc_snapshot *s)
{
    return !s || s->n == 0;
}

size_t tc_snapshot_count(const struct tc_snapshot *s)
{
    return s ? s->n : 0;
}

static int snap_add(struct tc_snapshot *s, struct nlmsghdr *m)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct nlmsghdr **v = realloc(s->m, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        s->m = v;
        s->cap = cap;
    }
    s->m[s->n++] = m;
    return 0;
}

/* ---- Names, for messages a person can act on ---- */

static void fmt_handle(char *buf, size_t len, uint32_t h)
{
    if (h == TC_H_ROOT)
        snprintf(buf, len, "root");
    else if (h == TC_H_INGRESS)
        snprintf(buf, len, "ingress");
    else if (TC_H_MIN(h))
        snprintf(buf, len, "%x:%x", TC_H_MAJ(h) >> 16, TC_H_MIN(h));
    else
        snprintf(buf, len, "%x:", TC_H_MAJ(h) >> 16);
}

static const char *kind_of(const struct nlmsghdr *m);
static int chain_of(const struct nlmsghdr *m, uint32_t *chain);

static const char *proto_name(uint16_t p, char *buf, size_t len)
{
    switch (p) {
    case 0x0003:
        return "all";
    case 0x0800:
        return "ip";
    case 0x86dd:
        return "ipv6";
    case 0x0806:
        return "arp";
    case 0x8100:
        return "802.1Q";
    default:
        snprintf(buf, len, "0x%04x", p);
        return buf;
    }
}

/* "qdisc htb 1: (root)", "class htb 1:10", "filter u32 800::800 at 1:
 * chain 0 prio 1 protocol ip". */
static void describe(const struct nlmsghdr *m, char *buf, size_t len)
{
    const struct tcmsg *t = tcm_of(m);
    const char *kind = kind_of(m);
    char h[32], p[32], pr[16];
    fmt_handle(h, sizeof h, t->tcm_handle);
    fmt_handle(p, sizeof p, t->tcm_parent);
    if (m->nlmsg_type == RTM_NEWQDISC) {
        if (t->tcm_parent == TC_H_ROOT)
            snprintf(buf, len, "qdisc %s %s (root)", kind, h);
        else
            snprintf(buf, len, "qdisc %s %s at %s", kind, h, p);
    } else if (m->nlmsg_type == RTM_NEWTCLASS) {
        snprintf(buf, len, "class %s %s", kind, h);
    } else {
        uint32_t fh = t->tcm_handle, chain = 0;
        (void)chain_of(m, &chain);
        if (fh == 0)
            h[0] = '\0';
        else if (strcmp(kind, "u32") == 0 && TC_U32_KEY(fh) == 0)
            snprintf(h, sizeof h, "%x:", TC_U32_USERHTID(fh));
        else if (strcmp(kind, "u32") == 0 && TC_U32_HASH(fh))
            snprintf(h, sizeof h, "%x:%x:%x", TC_U32_USERHTID(fh), TC_U32_HASH(fh),
                     TC_U32_NODE(fh));
        else if (strcmp(kind, "u32") == 0)
            snprintf(h, sizeof h, "%x::%x", TC_U32_USERHTID(fh), TC_U32_NODE(fh));
        else
            snprintf(h, sizeof h, "0x%x", fh);
        snprintf(buf, len, "filter %s%s%s at %s chain %u prio %u protocol %s", kind, *h ? " " : "",
                 h, p, chain, TC_H_MAJ(t->tcm_info) >> 16,
                 proto_name(ntohs((uint16_t)TC_H_MIN(t->tcm_info)), pr, sizeof pr));
    }
}

/* ---- Reading attributes ---- */

struct attr_iter {
    const unsigned char *p;
    size_t rem;
    bool bad; /* the stream ended inside an attribute */
};

static const struct nlattr *attr_next(struct attr_iter *it)
{
    if (it->rem < NLA_HDRLEN) {
        it->bad |= it->rem != 0;
        return NULL;
    }
    const struct nlattr *a = (const struct nlattr *)it->p;
    if (a->nla_len < NLA_HDRLEN || a->nla_len > it->rem) {
        it->bad = true;
        return NULL;
    }
    size_t step = NLA_ALIGN(a->nla_len);
    if (step > it->rem)
        step = it->rem;
    it->p += step;
    it->rem -= step;
    return a;
}

static const void *adata(const struct nlattr *a)
{
    return (const unsigned char *)a + NLA_HDRLEN;
}

static size_t alen(const struct nlattr *a)
{
    return a->nla_len - NLA_HDRLEN;
}

static int atype(const struct nlattr *a)
{
    return a->nla_type & NLA_TYPE_MASK;
}

static struct attr_iter msg_attrs(const struct nlmsghdr *m)
{
    return (struct attr_iter){(const unsigned char *)m + ATTR_OFF, m->nlmsg_len - ATTR_OFF, false};
}

static struct attr_iter nest_attrs(const struct nlattr *a)
{
    return (struct attr_iter){adata(a), alen(a), false};
}

static const struct nlattr *find_attr(const struct nlmsghdr *m, int type)
{
    struct attr_iter it = msg_attrs(m);
    const struct nlattr *a;
    while ((a = attr_next(&it)))
        if (atype(a) == type)
            return a;
    return NULL;
}

/* Messages in a snapshot have passed canon(), so TCA_KIND is there and
 * ends in a NUL. */
static const char *kind_of(const struct nlmsghdr *m)
{
    const struct nlattr *a = find_attr(m, TCA_KIND);
    return a ? adata(a) : "?";
}

static int chain_of(const struct nlmsghdr *m, uint32_t *chain)
{
    const struct nlattr *a = find_attr(m, TCA_CHAIN);
    if (!a || alen(a) < sizeof(uint32_t))
        return -1;
    memcpy(chain, adata(a), sizeof *chain);
    return 0;
}

/* ---- Writing messages ---- */

struct mbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
};

static void mbuf_freep(struct mbuf *b)
{
    free(b->p);
}

static void *mb_grow(struct mbuf *b, size_t n)
{
    size_t need = b->len + NLA_ALIGN(n);
    if (b->oom || need > MAX_MSG) {
        b->oom = true;
        return NULL;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    void *at = b->p + b->len;
    memset(at, 0, NLA_ALIGN(n));
    b->len = need;
    return at;
}

static void mb_put(struct mbuf *b, const void *d, size_t n)
{
    void *at = mb_grow(b, n);
    if (at)
        memcpy(at, d, n);
}

/* Starts an attribute of the given raw type (flags kept); returns its
 * offset for mb_end. */
static size_t mb_start(struct mbuf *b, uint16_t rawtype)
{
    size_t off = b->len;
    struct nlattr *a = mb_grow(b, NLA_HDRLEN);
    if (a)
        a->nla_type = rawtype;
    return off;
}

static void mb_end(struct mbuf *b, size_t off)
{
    if (b->oom)
        return;
    struct nlattr *a = (struct nlattr *)(b->p + off);
    a->nla_len = (uint16_t)(b->len - off);
}

static void mb_attr(struct mbuf *b, uint16_t rawtype, const void *d, size_t n)
{
    size_t off = mb_start(b, rawtype);
    mb_put(b, d, n);
    /* The length excludes the padding after the payload. */
    if (!b->oom)
        ((struct nlattr *)(b->p + off))->nla_len = (uint16_t)(NLA_HDRLEN + n);
}

static void mb_copy(struct mbuf *b, const struct nlattr *a)
{
    mb_attr(b, a->nla_type, adata(a), alen(a));
}

/* ---- Canonical form: what to keep of each kind ---- */

struct cx {
    bool replay; /* rewrite for sending rather than for keeping */
    const char *ifname;
    char what[192]; /* the object at hand */
    struct chaos_err *err;
};

static int refuse(struct cx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct cx *c, const char *fmt, ...)
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

static int malformed(struct cx *c, const char *where)
{
    if (c->ifname)
        return chaos_err_set(c->err, EINVAL, "interface %s: %s: malformed %s in the kernel's dump",
                             c->ifname, c->what, where);
    return chaos_err_set(c->err, EINVAL, "saved tc snapshot: %s: malformed %s", c->what, where);
}

typedef int (*attr_fn)(const struct nlattr *a, struct mbuf *out, struct cx *c);

enum { R_KEEP = 1, R_DROP, R_FN };
struct rule {
    uint16_t type;
    uint8_t act;
    attr_fn fn;
};
struct ruleset {
    const char *where; /* "htb options" */
    const struct rule *r;
    size_t n;
    int keep_upto; /* unlisted types 1..keep_upto are kept as they are */
};
#define RULES(where, arr, upto)                                                                    \
    {                                                                                              \
        where, arr, ARRAY_SIZE(arr), upto                                                          \
    }

/* Copies a stream of attributes by the rules. Unknown types are refused:
 * a newer kernel may dump output-only data that would not replay, or
 * configuration we would not see is kept. */
static int copy_attrs(struct attr_iter it, const struct ruleset *rs, struct mbuf *out, struct cx *c)
{
    const struct nlattr *a;
    while ((a = attr_next(&it))) {
        int t = atype(a), act = 0;
        const struct rule *ru = NULL;
        for (size_t i = 0; i < rs->n; i++)
            if (rs->r[i].type == t) {
                ru = &rs->r[i];
                act = ru->act;
            }
        if (!ru && t > 0 && t <= rs->keep_upto)
            act = R_KEEP;
        if (act == R_KEEP) {
            mb_copy(out, a);
        } else if (act == R_FN) {
            int r = ru->fn(a, out, c);
            if (r < 0)
                return r;
        } else if (act != R_DROP) {
            return refuse(c, "its %s carry attribute %d, which we do not know", rs->where, t);
        }
    }
    if (it.bad)
        return malformed(c, rs->where);
    return 0;
}

static int copy_nest(const struct nlattr *a, const struct ruleset *rs, struct mbuf *out,
                     struct cx *c)
{
    size_t off = mb_start(out, a->nla_type);
    int r = copy_attrs(nest_attrs(a), rs, out, c);
    mb_end(out, off);
    return r;
}

/* A fixed struct; zero_at/zero_len blank statistics inside it. */
static int copy_struct(const struct nlattr *a, size_t min, size_t zero_at, size_t zero_len,
                       struct mbuf *out, struct cx *c, const char *where)
{
    if (alen(a) < min)
        return malformed(c, where);
    unsigned char buf[512];
    size_t n = alen(a);
    if (n > sizeof buf)
        return refuse(c, "its %s are %zu bytes, more than we know", where, n);
    memcpy(buf, adata(a), n);
    if (zero_len && zero_at + zero_len <= n)
        memset(buf + zero_at, 0, zero_len);
    mb_attr(out, a->nla_type, buf, n);
    return 0;
}

static int refuse_police(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    return refuse(c, "it has an old-style police action, which we do not replay");
}

/* Statistics are dropped, but a rate estimator shows only there: its
 * interval and time constant (TCA_RATE) are never dumped. */
static int stats2(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    struct attr_iter it = nest_attrs(a);
    const struct nlattr *s;
    while ((s = attr_next(&it)))
        if (atype(s) == TCA_STATS_RATE_EST || atype(s) == TCA_STATS_RATE_EST64)
            return refuse(c, "it has a rate estimator, whose settings the kernel does not dump");
    return 0;
}

/* -- actions (inside u32, matchall, fw, basic) -- */

/* tc_gen: index, capab, action, refcnt, bindcnt: the counts change as
 * filters bind; the index is kept (an action shared by index stays shared). */
#define TC_GEN_COUNTS_AT (3 * sizeof(uint32_t))
#define TC_GEN_COUNTS_LEN (2 * sizeof(uint32_t))

static int mirred_parms(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    return copy_struct(a, sizeof(struct tc_mirred), TC_GEN_COUNTS_AT, TC_GEN_COUNTS_LEN, out, c,
                       "mirred parameters");
}

static int gact_parms(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    return copy_struct(a, sizeof(struct tc_gact), TC_GEN_COUNTS_AT, TC_GEN_COUNTS_LEN, out, c,
                       "gact parameters");
}

static const struct rule mirred_rules[] = {{TCA_MIRRED_TM, R_DROP, NULL},
                                           {TCA_MIRRED_PARMS, R_FN, mirred_parms},
                                           {TCA_MIRRED_PAD, R_DROP, NULL}};
static const struct rule gact_rules[] = {{TCA_GACT_TM, R_DROP, NULL},
                                         {TCA_GACT_PARMS, R_FN, gact_parms},
                                         {TCA_GACT_PROB, R_KEEP, NULL},
                                         {TCA_GACT_PAD, R_DROP, NULL}};
static const struct ruleset mirred_rs = RULES("mirred action options", mirred_rules, 0);
static const struct ruleset gact_rs = RULES("gact action options", gact_rules, 0);

static const struct {
    const char *kind;
    const struct ruleset *rs;
} action_kinds[] = {{"mirred", &mirred_rs}, {"gact", &gact_rs}};

/* One action: a nest (its order) of TCA_ACT_* attributes. */
static int copy_action(const struct nlattr *act, struct mbuf *out, struct cx *c)
{
    const struct nlattr *kind = NULL, *a;
    struct attr_iter it = nest_attrs(act);
    while ((a = attr_next(&it)))
        if (atype(a) == TCA_ACT_KIND)
            kind = a;
    if (!kind || alen(kind) == 0 || ((const char *)adata(kind))[alen(kind) - 1] != '\0')
        return malformed(c, "action");
    const struct ruleset *rs = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(action_kinds); i++)
        if (strcmp(adata(kind), action_kinds[i].kind) == 0)
            rs = action_kinds[i].rs;
    if (!rs)
        return refuse(c, "it has a %s action; only %s and %s actions are replayed",
                      (const char *)adata(kind), action_kinds[0].kind, action_kinds[1].kind);
    size_t off = mb_start(out, act->nla_type);
    it = nest_attrs(act);
    while ((a = attr_next(&it))) {
        switch (atype(a)) {
        case TCA_ACT_KIND:
        case TCA_ACT_INDEX:
        case TCA_ACT_COOKIE:
        case TCA_ACT_FLAGS:
        case TCA_ACT_HW_STATS:
            mb_copy(out, a);
            break;
        case TCA_ACT_STATS: {
            int r = stats2(a, out, c);
            if (r < 0)
                return r;
            break;
        }
        case TCA_ACT_PAD:
        case TCA_ACT_USED_HW_STATS:
        case TCA_ACT_IN_HW_COUNT:
            break;
        case TCA_ACT_OPTIONS: {
            int r = copy_nest(a, rs, out, c);
            if (r < 0)
                return r;
            break;
        }
        default:
            return refuse(c, "its %s action carries attribute %d, which we do not know",
                          (const char *)adata(kind), atype(a));
        }
    }
    if (it.bad)
        return malformed(c, "action");
    mb_end(out, off);
    return 0;
}

static int copy_actions(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    size_t off = mb_start(out, a->nla_type);
    struct attr_iter it = nest_attrs(a);
    const struct nlattr *act;
    while ((act = attr_next(&it))) {
        int r = copy_action(act, out, c);
        if (r < 0)
            return r;
    }
    if (it.bad)
        return malformed(c, "action list");
    mb_end(out, off);
    return 0;
}

/* -- qdisc options -- */

static int htb_init(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    if (alen(a) < sizeof(struct tc_htb_glob))
        return malformed(c, "htb options");
    struct tc_htb_glob g;
    memcpy(&g, adata(a), sizeof g);
    g.direct_pkts = 0; /* a packet count */
    /* The kernel dumps HTB_VER (3.17) but accepts only its major part. */
    if (c->replay && g.version > 0xffff)
        g.version >>= 16;
    mb_attr(out, a->nla_type, &g, sizeof g);
    return 0;
}

static int refuse_offload(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    return refuse(c, "it is offloaded to hardware");
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
static int codel_time(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    if (alen(a) < sizeof(uint32_t))
        return malformed(c, "codel time");
    uint32_t us;
    memcpy(&us, adata(a), sizeof us);
    if (c->replay) {
        uint64_t units = ((uint64_t)us * 1000 + 1023) / 1024;
        uint64_t back = (units * 1024 + 999) / 1000;
        if (back <= UINT32_MAX)
            us = (uint32_t)back;
    }
    mb_attr(out, a->nla_type, &us, sizeof us);
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

static int opt_htb(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_nest(a, &htb_rs, o, c);
}
static int opt_tbf(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_nest(a, &tbf_rs, o, c);
}
static int opt_fq_codel(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_nest(a, &fq_codel_rs, o, c);
}
static int opt_codel(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_nest(a, &codel_rs, o, c);
}
static int opt_fq(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_nest(a, &fq_rs, o, c);
}
static int opt_fifo(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_struct(a, sizeof(struct tc_fifo_qopt), 0, 0, o, c, "fifo options");
}
static int opt_prio(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_struct(a, sizeof(struct tc_prio_qopt), 0, 0, o, c, "priomap options");
}
static int opt_sfq(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_struct(a, sizeof(struct tc_sfq_qopt), offsetof(struct tc_sfq_qopt_v1, stats),
                       sizeof(struct tc_sfqred_stats), o, c, "sfq options");
}
static int opt_none(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return refuse(c, "it has options, which this kind never has");
}

/* -- filter options -- */

static int cls_flags(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    if (alen(a) < sizeof(uint32_t))
        return malformed(c, "filter flags");
    uint32_t f;
    memcpy(&f, adata(a), sizeof f);
    /* IN_HW/NOT_IN_HW report the outcome; the kernel refuses them as input. */
    if (c->replay)
        f &= TCA_CLS_FLAGS_SKIP_HW | TCA_CLS_FLAGS_SKIP_SW;
    mb_attr(out, a->nla_type, &f, sizeof f);
    return 0;
}

static int u32_mark(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    return copy_struct(a, sizeof(struct tc_u32_mark), offsetof(struct tc_u32_mark, success),
                       sizeof(uint32_t), out, c, "u32 mark");
}

static const struct rule u32_rules[] = {
    {TCA_U32_CLASSID, R_KEEP, NULL},   {TCA_U32_HASH, R_KEEP, NULL},
    {TCA_U32_LINK, R_KEEP, NULL},      {TCA_U32_DIVISOR, R_KEEP, NULL},
    {TCA_U32_SEL, R_KEEP, NULL},       {TCA_U32_POLICE, R_FN, refuse_police},
    {TCA_U32_ACT, R_FN, copy_actions}, {TCA_U32_INDEV, R_KEEP, NULL},
    {TCA_U32_PCNT, R_DROP, NULL},      {TCA_U32_MARK, R_FN, u32_mark},
    {TCA_U32_FLAGS, R_FN, cls_flags},  {TCA_U32_PAD, R_DROP, NULL}};
static const struct rule matchall_rules[] = {{TCA_MATCHALL_CLASSID, R_KEEP, NULL},
                                             {TCA_MATCHALL_ACT, R_FN, copy_actions},
                                             {TCA_MATCHALL_FLAGS, R_FN, cls_flags},
                                             {TCA_MATCHALL_PCNT, R_DROP, NULL},
                                             {TCA_MATCHALL_PAD, R_DROP, NULL}};
static const struct rule fw_rules[] = {{TCA_FW_CLASSID, R_KEEP, NULL},
                                       {TCA_FW_POLICE, R_FN, refuse_police},
                                       {TCA_FW_INDEV, R_KEEP, NULL},
                                       {TCA_FW_ACT, R_FN, copy_actions},
                                       {TCA_FW_MASK, R_KEEP, NULL}};
static const struct rule basic_rules[] = {
    {TCA_BASIC_CLASSID, R_KEEP, NULL},   {TCA_BASIC_EMATCHES, R_KEEP, NULL},
    {TCA_BASIC_ACT, R_FN, copy_actions}, {TCA_BASIC_POLICE, R_FN, refuse_police},
    {TCA_BASIC_PCNT, R_DROP, NULL},      {TCA_BASIC_PAD, R_DROP, NULL}};
static const struct ruleset u32_rs = RULES("u32 options", u32_rules, 0);
static const struct ruleset matchall_rs = RULES("matchall options", matchall_rules, 0);
static const struct ruleset fw_rs = RULES("fw options", fw_rules, 0);
static const struct ruleset basic_rs = RULES("basic options", basic_rules, 0);

static int opt_u32(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_nest(a, &u32_rs, o, c);
}
static int opt_matchall(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_nest(a, &matchall_rs, o, c);
}
static int opt_fw(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_nest(a, &fw_rs, o, c);
}
static int opt_basic(const struct nlattr *a, struct mbuf *o, struct cx *c)
{
    return copy_nest(a, &basic_rs, o, c);
}

/* The kinds we replay, each verified to come back exactly (see
 * tests/host/test_tc_snapshot.c; some only under UML, where the kernel has
 * them). Classes: only htb classes are made by users; the classes of prio,
 * tbf and mq come with their qdisc and fq_codel/sfq/fq list flows. */
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
};
static const struct kind class_kinds[] = {{"htb", opt_htb, true}};
static const struct kind filter_kinds[] = {
    {"u32", opt_u32, false},
    {"matchall", opt_matchall, false},
    {"fw", opt_fw, false},
    {"basic", opt_basic, false},
};

static const struct kind *find_kind(const struct kind *k, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].name, name) == 0)
            return &k[i];
    return NULL;
}

static const char *why_not(int type, const char *kind)
{
    if (type == RTM_NEWTFILTER && strcmp(kind, "bpf") == 0)
        return "bpf filters are not replayed (an eBPF program is held by id and goes away "
               "with the filter)";
    if (type == RTM_NEWQDISC && strcmp(kind, "red") == 0)
        return "the kernel does not dump red's lookup table (TCA_RED_STAB)";
    if (type == RTM_NEWQDISC && strcmp(kind, "netem") == 0)
        return "the kernel does not dump netem's delay distribution table";
    return "its kind is not one we have verified to replay exactly";
}

/* -- top level -- */

static int stab(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    struct attr_iter it = nest_attrs(a);
    const struct nlattr *s;
    while ((s = attr_next(&it))) {
        if (atype(s) == TCA_STAB_BASE) {
            struct tc_sizespec sz;
            if (alen(s) < sizeof sz)
                return malformed(c, "size table");
            memcpy(&sz, adata(s), sizeof sz);
            /* The kernel dumps the base but never the table itself. */
            if (sz.tsize)
                return refuse(c,
                              "its size table (stab) has %u entries and the kernel does not "
                              "dump them",
                              sz.tsize);
        } else {
            return refuse(c, "its size table carries attribute %d, which we do not know", atype(s));
        }
    }
    if (it.bad)
        return malformed(c, "size table");
    mb_copy(out, a);
    return 0;
}

static int hw_offload(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    if (alen(a) >= 1 && *(const uint8_t *)adata(a))
        return refuse(c, "it is offloaded to hardware");
    return 0;
}

static int refuse_block(const struct nlattr *a, struct mbuf *out, struct cx *c)
{
    return refuse(c, "it uses a shared filter block");
}

/* Canonical (or, with c->replay, sendable) form of one dumped object. */
static int canon(const struct nlmsghdr *in, struct mbuf *out, struct cx *c)
{
    if (in->nlmsg_len < ATTR_OFF)
        return malformed(c, "message (too short)");
    const struct tcmsg *t = tcm_of(in);
    const struct nlattr *k = find_attr(in, TCA_KIND);
    int type = in->nlmsg_type;
    if (!k || alen(k) < 2 || ((const char *)adata(k))[alen(k) - 1] != '\0' ||
        strlen(adata(k)) + 1 != alen(k))
        return malformed(c, "kind");
    const char *kind = adata(k);
    const struct kind *kk = NULL;
    if (type == RTM_NEWQDISC)
        kk = find_kind(qdisc_kinds, ARRAY_SIZE(qdisc_kinds), kind);
    else if (type == RTM_NEWTCLASS)
        kk = find_kind(class_kinds, ARRAY_SIZE(class_kinds), kind);
    else if (type == RTM_NEWTFILTER)
        kk = find_kind(filter_kinds, ARRAY_SIZE(filter_kinds), kind);
    else
        return malformed(c, "message type");

    struct nlmsghdr h = {.nlmsg_type = (uint16_t)type};
    struct tcmsg tm = {.tcm_family = AF_UNSPEC,
                       .tcm_handle = t->tcm_handle,
                       .tcm_parent = t->tcm_parent,
                       /* qdiscs: the refcount; classes: the leaf qdisc
                        * (compared, not sent); filters: prio and protocol. */
                       .tcm_info = type == RTM_NEWQDISC ? 0 : t->tcm_info};
    mb_put(out, &h, sizeof h);
    mb_put(out, &tm, sizeof tm);

    /* describe() reads the header, kind and chain: the raw message has them. */
    describe(in, c->what, sizeof c->what);
    if (!kk)
        return refuse(c, "%s", why_not(type, kind));

    struct attr_iter it = msg_attrs(in);
    const struct nlattr *a;
    while ((a = attr_next(&it))) {
        int r = 0;
        switch (atype(a)) {
        case TCA_KIND:
            mb_copy(out, a);
            break;
        case TCA_CHAIN:
            if (type != RTM_NEWTFILTER)
                r = refuse(c, "it carries a chain attribute, which only filters have");
            else
                mb_copy(out, a);
            break;
        case TCA_OPTIONS:
            r = kk->opts(a, out, c);
            break;
        case TCA_STAB:
            if (type != RTM_NEWQDISC)
                r = refuse(c, "it carries a size table, which only qdiscs have");
            else
                r = stab(a, out, c);
            break;
        case TCA_STATS2:
            r = stats2(a, out, c);
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
            r = refuse(c, "the kernel reports attribute %d, which we do not know", atype(a));
        }
        if (r < 0)
            return r;
    }
    if (it.bad)
        return malformed(c, "attributes");
    if (out->oom)
        return chaos_err_set(c->err, ENOMEM, "out of memory (or a tc object over %d bytes)",
                             MAX_MSG);
    ((struct nlmsghdr *)out->p)->nlmsg_len = (uint32_t)out->len;
    return 0;
}

static int canon_dup(const struct nlmsghdr *in, struct nlmsghdr **res, struct cx *c)
{
    __attribute__((cleanup(mbuf_freep))) struct mbuf b = {0};
    int r = canon(in, &b, c);
    if (r < 0)
        return r;
    *res = (struct nlmsghdr *)steal_pointer(&b.p);
    return 0;
}

/* ---- Dumps ---- */

struct msgvec {
    struct nlmsghdr **v;
    size_t n, cap;
    int expect; /* the message type the dump answers with */
    bool oom, odd;
};

static void msgvec_freep(struct msgvec *mv)
{
    for (size_t i = 0; i < mv->n; i++)
        free(mv->v[i]);
    free(mv->v);
}

/* Never stops the dump early: nltc_dump would leave the rest of it unread
 * on the socket. Trouble is noted and reported once the dump is done. */
static int collect(const struct nlmsghdr *nlh, void *arg)
{
    struct msgvec *mv = arg;
    if (mv->oom || mv->odd)
        return 0;
    if (nlh->nlmsg_type != mv->expect || nlh->nlmsg_len < ATTR_OFF || nlh->nlmsg_len > MAX_MSG) {
        mv->odd = true;
        return 0;
    }
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 16;
        struct nlmsghdr **v = cap <= MAX_OBJS ? realloc(mv->v, cap * sizeof *v) : NULL;
        if (!v) {
            mv->oom = true;
            return 0;
        }
        mv->v = v;
        mv->cap = cap;
    }
    struct nlmsghdr *copy = malloc(nlh->nlmsg_len);
    if (!copy) {
        mv->oom = true;
        return 0;
    }
    memcpy(copy, nlh, nlh->nlmsg_len);
    mv->v[mv->n++] = copy;
    return 0;
}

static int dump(struct nl_tc *t, int type, int ifindex, uint32_t parent, const char *ifname,
                struct msgvec *mv, struct chaos_err *err)
{
    mv->expect = type == RTM_GETQDISC    ? RTM_NEWQDISC
                 : type == RTM_GETTCLASS ? RTM_NEWTCLASS
                                         : RTM_NEWTFILTER;
    int r = nltc_dump(t, type, ifindex, parent, collect, mv, err);
    if (r < 0) {
        chaos_err_prefix(err, "interface %s", ifname);
        return r;
    }
    if (mv->oom)
        return chaos_err_set(err, ENOMEM, "interface %s: out of memory reading its tc objects",
                             ifname);
    if (mv->odd)
        return chaos_err_set(err, EPROTO,
                             "interface %s: the kernel's tc dump holds a message we cannot read",
                             ifname);
    return 0;
}

static bool is_ingress(const struct tcmsg *t)
{
    /* ingress and clsact both sit at ffff:fff1 with handle ffff:. */
    return t->tcm_parent == TC_H_INGRESS || TC_H_MAJ(t->tcm_handle) == TC_H_MAJ(TC_H_INGRESS);
}

static int plan_check(const struct tc_snapshot *s, const char *ifname, struct chaos_err *err);

int tc_snapshot_take(struct nl_tc *t, int ifindex, const char *ifname, struct tc_snapshot **out,
                     struct chaos_err *err)
{
    _cleanup_snap_ struct tc_snapshot *s = calloc(1, sizeof *s);
    __attribute__((cleanup(msgvec_freep))) struct msgvec qd = {0};
    __attribute__((cleanup(msgvec_freep))) struct msgvec cl = {0};
    if (!s)
        return chaos_err_set(err, ENOMEM, "out of memory");
    struct cx c = {.ifname = ifname, .err = err, .what = "a dumped object"};
    int r = dump(t, RTM_GETQDISC, ifindex, 0, ifname, &qd, err);
    if (r < 0)
        return r;

    /* No root in the dump: the device is down and has noop, a builtin the
     * kernel does not list. Like a handle-0 root, that is the default. */
    const struct nlmsghdr *root = NULL;
    for (size_t i = 0; i < qd.n; i++)
        if (tcm_of(qd.v[i])->tcm_parent == TC_H_ROOT)
            root = qd.v[i];
    if (!root || tcm_of(root)->tcm_handle == 0) {
        for (size_t i = 0; i < qd.n; i++) {
            const struct tcmsg *q = tcm_of(qd.v[i]);
            if (qd.v[i] == root || is_ingress(q) || q->tcm_handle == 0)
                continue;
            describe(qd.v[i], c.what, sizeof c.what);
            return refuse(&c, "it sits under the kernel's default root qdisc, which the fault "
                              "replaces; the kernel would put back its default there");
        }
        *out = steal_pointer(&s);
        return 0;
    }

    /* The root first (the kernel dumps it first anyway), then the rest. */
    for (size_t k = 0; k <= qd.n; k++) {
        const struct nlmsghdr *qm = k == 0 ? root : qd.v[k - 1];
        const struct tcmsg *q = tcm_of(qm);
        /* Handle 0: made by the kernel (a default child); it comes back
         * by itself when its parent is recreated. */
        if ((k > 0 && qm == root) || is_ingress(q) || q->tcm_handle == 0)
            continue;
        struct nlmsghdr *m;
        if ((r = canon_dup(qm, &m, &c)) < 0)
            return r;
        if (snap_add(s, m) < 0) {
            free(m);
            return chaos_err_set(err, ENOMEM, "out of memory");
        }
    }
    size_t nqdisc = s->n;

    if ((r = dump(t, RTM_GETTCLASS, ifindex, 0, ifname, &cl, err)) < 0)
        return r;
    for (size_t i = 0; i < cl.n; i++) {
        const struct tcmsg *k = tcm_of(cl.v[i]);
        const struct kind *qk = NULL;
        for (size_t j = 0; j < nqdisc; j++)
            if (tcm_of(s->m[j])->tcm_handle == TC_H_MAJ(k->tcm_handle))
                qk = find_kind(qdisc_kinds, ARRAY_SIZE(qdisc_kinds), kind_of(s->m[j]));
        /* Classes of ingress, of default qdiscs, and those a qdisc makes
         * by itself are not configuration. */
        if (!qk || !qk->user_classes)
            continue;
        struct nlmsghdr *m;
        if ((r = canon_dup(cl.v[i], &m, &c)) < 0)
            return r;
        if (snap_add(s, m) < 0) {
            free(m);
            return chaos_err_set(err, ENOMEM, "out of memory");
        }
    }

    /* A filter dump lists one block: a qdisc's, or a class's. */
    size_t nowners = s->n;
    for (size_t i = 0; i < nowners; i++) {
        __attribute__((cleanup(msgvec_freep))) struct msgvec fl = {0};
        if ((r = dump(t, RTM_GETTFILTER, ifindex, tcm_of(s->m[i])->tcm_handle, ifname, &fl, err)) <
            0)
            return r;
        for (size_t j = 0; j < fl.n; j++) {
            struct nlmsghdr *m;
            if ((r = canon_dup(fl.v[j], &m, &c)) < 0)
                return r;
            if (snap_add(s, m) < 0) {
                free(m);
                return chaos_err_set(err, ENOMEM, "out of memory");
            }
        }
    }
    if ((r = plan_check(s, ifname, err)) < 0)
        return r;
    *out = steal_pointer(&s);
    return 0;
}

/* ---- Replay order ---- */

struct op {
    size_t idx;
    bool auto_handle; /* send handle 0: the kernel numbers it as it did */
};

struct plan {
    struct op *v;
    size_t n;
};

static void plan_freep(struct plan *p)
{
    free(p->v);
}

struct hkey {
    uint32_t a, b, c, d;
    size_t idx;
};

static int hkey_cmp(const void *x, const void *y)
{
    const struct hkey *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    if (p->c != q->c)
        return p->c < q->c ? -1 : 1;
    if (p->d != q->d)
        return p->d < q->d ? -1 : 1;
    return p->idx < q->idx ? -1 : p->idx > q->idx;
}

/* Index of the entry with key a (and b) in a sorted array, or -1. */
static long hkey_find(const struct hkey *v, size_t n, uint32_t a)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid].a < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].a == a ? (long)lo : -1;
}

/* A snapshot that is not one consistent tree. From a dump, that is
 * something we cannot replay (refused); from a journal, damage. */
static int invalid(const char *ifname, struct chaos_err *err, const struct nlmsghdr *m,
                   const char *why)
{
    char w[192];
    describe(m, w, sizeof w);
    if (ifname)
        return chaos_err_set(err, EOPNOTSUPP, "interface %s: %s cannot be restored exactly: %s",
                             ifname, w, why);
    return chaos_err_set(err, EINVAL, "saved tc snapshot: %s: %s", w, why);
}

/* One filter instance (tcf_proto): its entries in dump order. */
struct run {
    size_t first, n;    /* snapshot indexes first..first+n-1 */
    size_t header;      /* the entry with handle 0 (SIZE_MAX: none) */
    size_t ht_at, ht_n; /* u32: its hash tables in hts[], dump order */
    size_t ht_left;     /* u32: not yet replayed, counted from ht_at */
    bool u32;
};

static bool auto_ht(uint32_t h)
{
    return h & 0x80000000u;
}

/* u32 numbers hash tables per qdisc (one numbering for the qdisc's block
 * and the blocks of its classes): the first instance's root table is 800:,
 * every later table made without a handle gets the next of 801:..fff:
 * (cyclic). Tables in that range are replayed in number order, each run's
 * tables in creation order (reverse dump order), so that the kernel hands
 * out the same numbers again; tables outside it are given their handle. */
static int plan_u32(const struct tc_snapshot *s, const char *ifname, struct run *runs, size_t nruns,
                    const size_t *hts, struct plan *p, struct chaos_err *err)
{
    size_t nauto = 0;
    for (size_t i = 0; i < nruns; i++)
        for (size_t j = 0; j < runs[i].ht_n; j++)
            nauto += auto_ht(tcm_of(s->m[hts[runs[i].ht_at + j]])->tcm_handle);
    _cleanup_free_ struct hkey *au = calloc(nauto ? nauto : 1, sizeof *au);
    if (!au)
        return chaos_err_set(err, ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < nruns; i++)
        for (size_t j = 0; j < runs[i].ht_n; j++) {
            const struct tcmsg *t = tcm_of(s->m[hts[runs[i].ht_at + j]]);
            if (auto_ht(t->tcm_handle))
                au[k++] =
                    (struct hkey){TC_H_MAJ(t->tcm_parent), TC_U32_USERHTID(t->tcm_handle) & 0x7ff,
                                  (uint32_t)i, (uint32_t)j, hts[runs[i].ht_at + j]};
        }
    qsort(au, nauto, sizeof *au, hkey_cmp);
    for (size_t g = 0; g < nauto;) {
        size_t end = g;
        while (end < nauto && au[end].a == au[g].a)
            end++;
        for (size_t i = g; i < end; i++) {
            struct run *r = &runs[au[i].c];
            const struct nlmsghdr *m = s->m[au[i].idx];
            if (au[i].b != i - g) {
                struct cx c = {.ifname = ifname, .err = err};
                describe(m, c.what, sizeof c.what);
                char par[32];
                fmt_handle(par, sizeof par, au[i].a);
                return refuse(&c,
                              "u32 numbers the hash tables under %s in creation order from "
                              "800: and would give this one %x:; delete and re-add the u32 "
                              "filters under %s to renumber them",
                              par, (unsigned)(0x800 + i - g), par);
            }
            /* Replay this run's tables up to this one. */
            for (;;) {
                if (r->ht_left == 0)
                    return invalid(ifname, err, m, "u32 hash tables out of order");
                size_t at = r->ht_at + --r->ht_left;
                size_t idx = hts[at];
                bool root = r->ht_left == r->ht_n - 1;
                if (auto_ht(tcm_of(s->m[idx])->tcm_handle)) {
                    if (idx != au[i].idx)
                        return invalid(ifname, err, m,
                                       "u32 hash tables numbered against their creation order");
                    /* The root table comes with the instance: its header
                     * (kind, no options) creates both. */
                    p->v[p->n++] = root ? (struct op){r->header, false} : (struct op){idx, true};
                    break;
                }
                if (root)
                    return invalid(ifname, err, m, "u32 root hash table outside 800:-fff:");
                p->v[p->n++] = (struct op){idx, false};
            }
        }
        g = end;
    }
    for (size_t i = 0; i < nruns; i++)
        while (runs[i].ht_left > 0) {
            size_t idx = hts[runs[i].ht_at + --runs[i].ht_left];
            if (auto_ht(tcm_of(s->m[idx])->tcm_handle))
                return invalid(ifname, err, s->m[idx], "u32 hash table without its instance");
            p->v[p->n++] = (struct op){idx, false};
        }
    return 0;
}

static int plan_filters(const struct tc_snapshot *s, const char *ifname, size_t first,
                        struct plan *p, struct chaos_err *err)
{
    size_t nf = s->n - first;
    _cleanup_free_ struct run *runs = calloc(nf ? nf : 1, sizeof *runs);
    _cleanup_free_ size_t *hts = calloc(nf ? nf : 1, sizeof *hts);
    _cleanup_free_ struct hkey *keys = calloc(nf ? nf : 1, sizeof *keys);
    if (!runs || !hts || !keys)
        return chaos_err_set(err, ENOMEM, "out of memory");
    size_t nruns = 0, nhts = 0;
    uint32_t pchain = 0, pparent = 0, pinfo = 0;
    for (size_t i = first; i < s->n; i++) {
        const struct nlmsghdr *m = s->m[i];
        const struct tcmsg *t = tcm_of(m);
        uint32_t chain;
        if (chain_of(m, &chain) < 0)
            return invalid(ifname, err, m, "filter without a chain");
        keys[i - first] =
            (struct hkey){t->tcm_parent, chain, TC_H_MAJ(t->tcm_info), t->tcm_handle, i};
        if (nruns == 0 || t->tcm_parent != pparent || chain != pchain ||
            TC_H_MAJ(t->tcm_info) != TC_H_MAJ(pinfo)) {
            runs[nruns++] = (struct run){.first = i,
                                         .header = SIZE_MAX,
                                         .ht_at = nhts,
                                         .u32 = strcmp(kind_of(m), "u32") == 0};
            pparent = t->tcm_parent, pchain = chain, pinfo = t->tcm_info;
        }
        struct run *r = &runs[nruns - 1];
        r->n++;
        if (t->tcm_info != pinfo || strcmp(kind_of(m), kind_of(s->m[r->first])) != 0)
            return invalid(ifname, err, m,
                           "entries of one filter priority disagree on kind or protocol");
        if (t->tcm_handle == 0) {
            if (r->header != SIZE_MAX)
                return invalid(ifname, err, m, "two filter instances at one priority");
            r->header = i;
        } else if (r->u32 && TC_U32_KEY(t->tcm_handle) == 0) {
            hts[nhts++] = i;
            r->ht_n++;
            r->ht_left++;
        }
    }
    /* Each entry once; each instance in one piece (as a dump has them). */
    qsort(keys, nf, sizeof *keys, hkey_cmp);
    for (size_t i = 1; i < nf; i++)
        if (keys[i].a == keys[i - 1].a && keys[i].b == keys[i - 1].b &&
            keys[i].c == keys[i - 1].c && keys[i].d == keys[i - 1].d)
            return invalid(ifname, err, s->m[keys[i].idx], "filter entry repeated");
    for (size_t i = 0; i < nruns; i++) {
        const struct nlmsghdr *m = s->m[runs[i].first];
        const struct tcmsg *t = tcm_of(m);
        uint32_t chain = 0;
        (void)chain_of(m, &chain);
        keys[i] = (struct hkey){t->tcm_parent, chain, TC_H_MAJ(t->tcm_info), 0, runs[i].first};
    }
    qsort(keys, nruns, sizeof *keys, hkey_cmp);
    for (size_t i = 1; i < nruns; i++)
        if (keys[i].a == keys[i - 1].a && keys[i].b == keys[i - 1].b && keys[i].c == keys[i - 1].c)
            return invalid(ifname, err, s->m[keys[i].idx], "filter instance split in two");
    for (size_t i = 0; i < nruns; i++) {
        struct run *r = &runs[i];
        if (r->header == SIZE_MAX)
            return invalid(ifname, err, s->m[r->first], "filter entries without their instance");
        if (r->u32 && r->ht_n == 0)
            return invalid(ifname, err, s->m[r->first], "u32 instance without its root table");
        /* An instance with nothing in it (fw allows that) is made from its
         * header alone. */
        if (!r->u32 && r->n == 1)
            p->v[p->n++] = (struct op){r->header, false};
    }
    /* u32 lists, under each of its instances, every hash table of the
     * qdisc with the instance's priority: two instances at one priority
     * (two chains, or the qdisc's block and a class's) show the same
     * tables, and which one each starts classifying from (its root) cannot
     * be read back from a dump. Guessing could swap them silently. */
    size_t nu = 0;
    for (size_t i = 0; i < nruns; i++)
        if (runs[i].u32) {
            const struct tcmsg *t = tcm_of(s->m[runs[i].first]);
            keys[nu++] =
                (struct hkey){TC_H_MAJ(t->tcm_parent), TC_H_MAJ(t->tcm_info), 0, 0, runs[i].first};
        }
    qsort(keys, nu, sizeof *keys, hkey_cmp);
    for (size_t i = 1; i < nu; i++)
        if (keys[i].a == keys[i - 1].a && keys[i].b == keys[i - 1].b) {
            char other[192], why[320];
            describe(s->m[keys[i - 1].idx], other, sizeof other);
            snprintf(why, sizeof why,
                     "u32 lists the hash tables of all its filters at one priority under each "
                     "of them, so which table this one starts from cannot be read back (also "
                     "here: %s); give them different priorities",
                     other);
            return invalid(ifname, err, s->m[keys[i].idx], why);
        }
    int rc = plan_u32(s, ifname, runs, nruns, hts, p, err);
    if (rc < 0)
        return rc;
    for (size_t i = first; i < s->n; i++) {
        const struct tcmsg *t = tcm_of(s->m[i]);
        if (t->tcm_handle == 0 ||
            (strcmp(kind_of(s->m[i]), "u32") == 0 && TC_U32_KEY(t->tcm_handle) == 0))
            continue;
        p->v[p->n++] = (struct op){i, false};
    }
    return 0;
}

/* The order to replay s in: each qdisc, then its classes parents first
 * (creating a class under a leaf throws the leaf's qdisc away, so child
 * qdiscs come after all classes of their parent), then the qdiscs under
 * them, breadth first; filters last (they name classes). Checks that s is
 * one consistent tree. */
static int plan_build(const struct tc_snapshot *s, const char *ifname, struct plan *p,
                      struct chaos_err *err)
{
    p->n = 0;
    p->v = calloc(s->n ? s->n : 1, sizeof *p->v);
    if (!p->v)
        return chaos_err_set(err, ENOMEM, "out of memory");
    if (s->n == 0)
        return 0;
    size_t nq = 0, nc = 0;
    while (nq < s->n && s->m[nq]->nlmsg_type == RTM_NEWQDISC)
        nq++;
    while (nq + nc < s->n && s->m[nq + nc]->nlmsg_type == RTM_NEWTCLASS)
        nc++;
    for (size_t i = nq + nc; i < s->n; i++)
        if (s->m[i]->nlmsg_type != RTM_NEWTFILTER)
            return invalid(ifname, err, s->m[i], "out of place (qdiscs, classes, filters)");
    if (nq == 0 || tcm_of(s->m[0])->tcm_parent != TC_H_ROOT)
        return invalid(ifname, err, s->m[0], "the first object must be the root qdisc");

    _cleanup_free_ struct hkey *qh = calloc(nq, sizeof *qh);          /* by handle */
    _cleanup_free_ struct hkey *qp = calloc(nq, sizeof *qp);          /* by parent's major */
    _cleanup_free_ struct hkey *ch = calloc(nc ? nc : 1, sizeof *ch); /* by handle */
    _cleanup_free_ struct hkey *cq = calloc(nc ? nc : 1, sizeof *cq); /* by major, newest first */
    _cleanup_free_ bool *done = calloc(s->n, sizeof *done);
    _cleanup_free_ size_t *queue = calloc(nq, sizeof *queue);
    if (!qh || !qp || !ch || !cq || !done || !queue)
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < nq; i++) {
        const struct tcmsg *t = tcm_of(s->m[i]);
        if (t->tcm_handle == 0 || TC_H_MIN(t->tcm_handle) || is_ingress(t) ||
            (i > 0 && t->tcm_parent == TC_H_ROOT))
            return invalid(ifname, err, s->m[i], "not a qdisc we would have kept");
        qh[i] = (struct hkey){t->tcm_handle, 0, 0, 0, i};
        qp[i] = (struct hkey){TC_H_MAJ(t->tcm_parent), 0, 0, 0, i};
    }
    for (size_t i = 0; i < nc; i++) {
        const struct tcmsg *t = tcm_of(s->m[nq + i]);
        ch[i] = (struct hkey){t->tcm_handle, 0, 0, 0, nq + i};
        cq[i] = (struct hkey){TC_H_MAJ(t->tcm_handle), (uint32_t)(nc - i), 0, 0, nq + i};
    }
    qsort(qh, nq, sizeof *qh, hkey_cmp);
    qsort(qp, nq, sizeof *qp, hkey_cmp);
    qsort(ch, nc, sizeof *ch, hkey_cmp);
    qsort(cq, nc, sizeof *cq, hkey_cmp);
    for (size_t i = 1; i < nq; i++)
        if (qh[i].a == qh[i - 1].a)
            return invalid(ifname, err, s->m[qh[i].idx], "two qdiscs with one handle");
    for (size_t i = 1; i < nc; i++)
        if (ch[i].a == ch[i - 1].a)
            return invalid(ifname, err, s->m[ch[i].idx], "two classes with one handle");

    size_t head = 0, tail = 0;
    queue[tail++] = 0;
    done[0] = true;
    while (head < tail) {
        size_t qi = queue[head++];
        uint32_t qhandle = tcm_of(s->m[qi])->tcm_handle;
        const struct kind *qk = find_kind(qdisc_kinds, ARRAY_SIZE(qdisc_kinds), kind_of(s->m[qi]));
        p->v[p->n++] = (struct op){qi, false};
        long c0 = hkey_find(cq, nc, qhandle);
        if (c0 >= 0 && !qk->user_classes)
            return invalid(ifname, err, s->m[cq[c0].idx], "a class of a qdisc without classes");
        /* htb allows 8 levels; a few more rounds than that settle any
         * valid order, and bound the work on a crafted one. */
        for (int round = 0; c0 >= 0 && round < 12; round++)
            for (size_t i = (size_t)c0; i < nc && cq[i].a == qhandle; i++) {
                size_t ci = cq[i].idx;
                uint32_t par = tcm_of(s->m[ci])->tcm_parent;
                if (done[ci] || strcmp(kind_of(s->m[ci]), kind_of(s->m[qi])) != 0)
                    continue;
                long pc = par == TC_H_ROOT || par == qhandle ? -1 : hkey_find(ch, nc, par);
                if (pc >= 0 ? TC_H_MAJ(par) == qhandle && done[ch[pc].idx]
                            : (par == TC_H_ROOT || par == qhandle)) {
                    done[ci] = true;
                    p->v[p->n++] = (struct op){ci, false};
                }
            }
        for (long i = c0; i >= 0 && (size_t)i < nc && cq[i].a == qhandle; i++)
            if (!done[cq[i].idx])
                return invalid(ifname, err, s->m[cq[i].idx],
                               "class whose parent is missing, of another kind, or too deep");
        for (long i = hkey_find(qp, nq, qhandle); i >= 0 && (size_t)i < nq && qp[i].a == qhandle;
             i++) {
            size_t ci = qp[i].idx;
            uint32_t par = tcm_of(s->m[ci])->tcm_parent;
            if (done[ci])
                continue;
            if (qk->user_classes && hkey_find(ch, nc, par) < 0)
                return invalid(ifname, err, s->m[ci], "qdisc under a class that is missing");
            done[ci] = true;
            queue[tail++] = ci;
        }
    }
    for (size_t i = 0; i < nq + nc; i++)
        if (!done[i])
            return invalid(ifname, err, s->m[i],
                           i < nq ? "qdisc whose parent is missing"
                                  : "class of a qdisc that is missing");
    for (size_t i = nq + nc; i < s->n; i++) {
        uint32_t par = tcm_of(s->m[i])->tcm_parent;
        if (TC_H_MIN(par) ? hkey_find(ch, nc, par) < 0 : hkey_find(qh, nq, par) < 0)
            return invalid(ifname, err, s->m[i], "filter under a qdisc or class that is missing");
    }
    return plan_filters(s, ifname, nq + nc, p, err);
}

static int plan_check(const struct tc_snapshot *s, const char *ifname, struct chaos_err *err)
{
    __attribute__((cleanup(plan_freep))) struct plan p = {0};
    return plan_build(s, ifname, &p, err);
}

/* ---- Restore ---- */

static int replay_one(struct nl_tc *t, int ifindex, const char *ifname, const struct nlmsghdr *m,
                      bool auto_handle, struct chaos_err *err)
{
    __attribute__((cleanup(mbuf_freep))) struct mbuf b = {0};
    struct cx c = {.replay = true, .ifname = ifname, .err = err};
    int r = canon(m, &b, &c);
    if (r < 0)
        return r;
    struct tcmsg *tm = (struct tcmsg *)(b.p + TCM_OFF);
    tm->tcm_ifindex = ifindex;
    if (auto_handle)
        tm->tcm_handle = 0;
    if (m->nlmsg_type == RTM_NEWTCLASS)
        tm->tcm_info = 0;
    size_t payload = b.len - NLMSG_HDRLEN;
    struct nl_msg *msg = nlmsg_alloc_size(b.len + NLMSG_HDRLEN);
    struct nlmsghdr *h = msg ? nlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, m->nlmsg_type,
                                         (int)payload, NLM_F_CREATE | NLM_F_EXCL)
                             : NULL;
    if (!h) {
        nlmsg_free(msg);
        return chaos_err_set(err, ENOMEM, "out of memory");
    }
    memcpy(nlmsg_data(h), b.p + NLMSG_HDRLEN, payload);
    char what[256];
    describe(m, c.what, sizeof c.what);
    snprintf(what, sizeof what, "interface %s: restoring %s", ifname, c.what);
    return nltc_request(t, msg, what, NULL, err);
}

struct ckey {
    const struct nlmsghdr *m;
    uint32_t k[5];
};

static void ckey_of(const struct nlmsghdr *m, struct ckey *ck)
{
    const struct tcmsg *t = tcm_of(m);
    uint32_t chain = 0;
    (void)chain_of(m, &chain);
    if (m->nlmsg_type == RTM_NEWTFILTER)
        *ck = (struct ckey){m, {2, t->tcm_parent, chain, t->tcm_info, t->tcm_handle}};
    else
        *ck = (struct ckey){m, {m->nlmsg_type == RTM_NEWQDISC ? 0 : 1, t->tcm_handle, 0, 0, 0}};
}

static int ckey_cmp(const void *x, const void *y)
{
    const struct ckey *p = x, *q = y;
    for (int i = 0; i < 5; i++)
        if (p->k[i] != q->k[i])
            return p->k[i] < q->k[i] ? -1 : 1;
    return 0;
}

static const char *how_differs(const struct nlmsghdr *a, const struct nlmsghdr *b)
{
    const struct nlattr *oa = find_attr(a, TCA_OPTIONS), *ob = find_attr(b, TCA_OPTIONS);
    if (!oa != !ob || (oa && (oa->nla_len != ob->nla_len || memcmp(oa, ob, oa->nla_len) != 0)))
        return "differs in its options";
    if (memcmp(tcm_of(a), tcm_of(b), sizeof(struct tcmsg)) != 0)
        return "differs in its parent or leaf qdisc";
    return "differs in its attributes";
}

/* Same objects, same content; the order of a dump follows the kernel's
 * hash tables and is not configuration. */
static int compare(const struct tc_snapshot *want, const struct tc_snapshot *got,
                   const char *ifname, struct chaos_err *err)
{
    _cleanup_free_ struct ckey *a = calloc(want->n + 1, sizeof *a);
    _cleanup_free_ struct ckey *b = calloc(got->n + 1, sizeof *b);
    if (!a || !b)
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < want->n; i++)
        ckey_of(want->m[i], &a[i]);
    for (size_t i = 0; i < got->n; i++)
        ckey_of(got->m[i], &b[i]);
    qsort(a, want->n, sizeof *a, ckey_cmp);
    qsort(b, got->n, sizeof *b, ckey_cmp);
    char w[192];
    size_t i = 0, j = 0;
    while (i < want->n || j < got->n) {
        int c = i == want->n ? 1 : j == got->n ? -1 : ckey_cmp(&a[i], &b[j]);
        const char *how;
        if (c < 0) {
            describe(a[i].m, w, sizeof w);
            how = "is missing";
        } else if (c > 0) {
            describe(b[j].m, w, sizeof w);
            how = "is there but was not before";
        } else if (a[i].m->nlmsg_len != b[j].m->nlmsg_len ||
                   memcmp(a[i].m, b[j].m, a[i].m->nlmsg_len) != 0) {
            describe(a[i].m, w, sizeof w);
            how = how_differs(a[i].m, b[j].m);
        } else {
            i++, j++;
            continue;
        }
        return chaos_err_set(err, EPROTO,
                             "interface %s: the restored tc configuration differs from the "
                             "snapshot: %s %s; it was left as restored",
                             ifname, w, how);
    }
    return 0;
}

/* The root is the kernel's default and nothing else but ingress is there. */
static int check_default(struct nl_tc *t, int ifindex, const char *ifname, struct chaos_err *err)
{
    __attribute__((cleanup(msgvec_freep))) struct msgvec qd = {0};
    int r = dump(t, RTM_GETQDISC, ifindex, 0, ifname, &qd, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < qd.n; i++) {
        const struct tcmsg *q = tcm_of(qd.v[i]);
        if (is_ingress(q) || q->tcm_handle == 0)
            continue;
        char w[192];
        describe(qd.v[i], w, sizeof w);
        return chaos_err_set(err, EEXIST,
                             "interface %s: cannot restore its tc configuration: %s is there; "
                             "the root must be the kernel's default (delete it first)",
                             ifname, w);
    }
    return 0;
}

int tc_snapshot_restore(struct nl_tc *t, int ifindex, const char *ifname,
                        const struct tc_snapshot *s, struct chaos_err *err)
{
    if (tc_snapshot_empty(s))
        return 0;
    __attribute__((cleanup(plan_freep))) struct plan p = {0};
    int r = plan_build(s, ifname, &p, err);
    if (r < 0)
        return r;
    if ((r = check_default(t, ifindex, ifname, err)) < 0)
        return r;
    for (size_t i = 0; i < p.n; i++) {
        r = replay_one(t, ifindex, ifname, s->m[p.v[i].idx], p.v[i].auto_handle, err);
        if (r >= 0)
            continue;
        if (i == 0) /* the root itself failed: nothing was created */
            return r;
        /* Everything hangs under the root: deleting it undoes the lot
         * and the kernel attaches its default again. */
        struct chaos_err e2 = {0};
        int r2 = nltc_qdisc_del(t, ifindex, TC_H_ROOT, 0, "deleting the partial restore", &e2);
        if (!err)
            return r;
        size_t len = strlen(err->msg);
        if (r2 < 0)
            snprintf(err->msg + len, sizeof err->msg - len,
                     "; what was restored so far is still there: %s", e2.msg);
        else
            snprintf(err->msg + len, sizeof err->msg - len,
                     "; undone: the interface has the kernel's default root qdisc again");
        return r;
    }
    _cleanup_snap_ struct tc_snapshot *now = NULL;
    if ((r = tc_snapshot_take(t, ifindex, ifname, &now, err)) < 0) {
        chaos_err_prefix(err, "checking the restored configuration");
        return r;
    }
    return compare(s, now, ifname, err);
}

/* ---- Journal form ---- */

json_t *tc_snapshot_to_json(const struct tc_snapshot *s)
{
    static const char hex[] = "0123456789abcdef";
    _cleanup_json_ json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; s && i < s->n; i++) {
        const unsigned char *p = (const unsigned char *)s->m[i];
        size_t n = s->m[i]->nlmsg_len;
        _cleanup_free_ char *txt = malloc(2 * n);
        if (!txt)
            return NULL;
        for (size_t k = 0; k < n; k++) {
            txt[2 * k] = hex[p[k] >> 4];
            txt[2 * k + 1] = hex[p[k] & 15];
        }
        if (json_array_append_new(a, json_stringn(txt, 2 * n)) < 0)
            return NULL;
    }
    return steal_pointer(&a);
}

static int unhex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int tc_snapshot_from_json(const json_t *j, struct tc_snapshot **out, struct chaos_err *err)
{
    if (!json_is_array(j))
        return chaos_err_set(err, EINVAL, "saved tc snapshot: not a JSON array");
    if (json_array_size(j) > MAX_OBJS)
        return chaos_err_set(err, EINVAL, "saved tc snapshot: %zu objects, more than %d",
                             json_array_size(j), MAX_OBJS);
    _cleanup_snap_ struct tc_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(j); i++) {
        const json_t *e = json_array_get(j, i);
        const char *txt = json_string_value(e);
        size_t len = json_string_length(e);
        if (!txt || len % 2 || len < 2 * ATTR_OFF || len > 2 * MAX_MSG)
            return chaos_err_set(err, EINVAL,
                                 "saved tc snapshot: object %zu is not a tc message in hex", i);
        _cleanup_free_ unsigned char *raw = malloc(len / 2);
        if (!raw)
            return chaos_err_set(err, ENOMEM, "out of memory");
        for (size_t k = 0; k < len / 2; k++) {
            int hi = unhex(txt[2 * k]), lo = unhex(txt[2 * k + 1]);
            if (hi < 0 || lo < 0)
                return chaos_err_set(err, EINVAL, "saved tc snapshot: object %zu is not hex", i);
            raw[k] = (unsigned char)(hi << 4 | lo);
        }
        struct nlmsghdr *in = (struct nlmsghdr *)raw;
        if (in->nlmsg_len != len / 2)
            return chaos_err_set(err, EINVAL,
                                 "saved tc snapshot: object %zu says %u bytes but has %zu", i,
                                 in->nlmsg_len, len / 2);
        /* The same filter as a dump gets: only what take would keep. */
        struct cx c = {.err = err};
        snprintf(c.what, sizeof c.what, "object %zu", i);
        struct nlmsghdr *m;
        int r = canon_dup(in, &m, &c);
        if (r < 0)
            return r;
        if (snap_add(s, m) < 0) {
            free(m);
            return chaos_err_set(err, ENOMEM, "out of memory");
        }
    }
    int r = plan_check(s, NULL, err);
    if (r < 0)
        return r;
    *out = steal_pointer(&s);
    return 0;
}
