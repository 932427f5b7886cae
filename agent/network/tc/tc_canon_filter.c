/* The canonical form of filters' options and their actions (u32, matchall,
 * fw, basic; mirred and gact actions): what tc_canon.c keeps of each. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_gact.h>
#include <linux/tc_act/tc_mirred.h>
#include "tc_canon.h"
#include "tc_canon_rules.h"
#include "util.h"

static int refuse_police(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    return canon_refuse(c, "it has an old-style police action, which we do not replay");
}

/* -- actions (inside u32, matchall, fw, basic) -- */

/* tc_gen: index, capab, action, refcnt, bindcnt: the counts change as
 * filters bind; the index is kept (an action shared by index stays shared). */
#define TC_GEN_COUNTS_AT (3 * sizeof(uint32_t))
#define TC_GEN_COUNTS_LEN (2 * sizeof(uint32_t))

static int mirred_parms(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    return canon_copy_struct(a, sizeof(struct tc_mirred), TC_GEN_COUNTS_AT, TC_GEN_COUNTS_LEN, out, c,
                       "mirred parameters");
}

static int gact_parms(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    return canon_copy_struct(a, sizeof(struct tc_gact), TC_GEN_COUNTS_AT, TC_GEN_COUNTS_LEN, out, c,
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
static int copy_action(const struct nlattr *act, struct mbuf *out, struct canon_cx *c)
{
    const struct nlattr *kind = NULL, *a;
    struct tcm_iter it = tcm_nest_attrs(act);
    while ((a = tcm_attr_next(&it)))
        if (tcm_atype(a) == TCA_ACT_KIND)
            kind = a;
    if (!kind || tcm_alen(kind) == 0 || ((const char *)tcm_adata(kind))[tcm_alen(kind) - 1] != '\0')
        return canon_malformed(c, "action");
    const struct ruleset *rs = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(action_kinds); i++)
        if (strcmp(tcm_adata(kind), action_kinds[i].kind) == 0)
            rs = action_kinds[i].rs;
    if (!rs)
        return canon_refuse(c, "it has a %s action; only %s and %s actions are replayed",
                            (const char *)tcm_adata(kind), action_kinds[0].kind,
                            action_kinds[1].kind);
    size_t off = mbuf_start(out, act->nla_type);
    it = tcm_nest_attrs(act);
    while ((a = tcm_attr_next(&it))) {
        switch (tcm_atype(a)) {
        case TCA_ACT_KIND:
        case TCA_ACT_INDEX:
        case TCA_ACT_COOKIE:
        case TCA_ACT_FLAGS:
        case TCA_ACT_HW_STATS:
            mbuf_copy(out, a);
            break;
        case TCA_ACT_STATS: {
            int r = canon_stats2(a, out, c);
            if (r < 0)
                return r;
            break;
        }
        case TCA_ACT_PAD:
        case TCA_ACT_USED_HW_STATS:
        case TCA_ACT_IN_HW_COUNT:
            break;
        case TCA_ACT_OPTIONS: {
            int r = canon_copy_nest(a, rs, out, c);
            if (r < 0)
                return r;
            break;
        }
        default:
            return canon_refuse(c, "its %s action carries attribute %d, which we do not know",
                                (const char *)tcm_adata(kind), tcm_atype(a));
        }
    }
    if (it.bad)
        return canon_malformed(c, "action");
    mbuf_end(out, off);
    return 0;
}

static int copy_actions(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    size_t off = mbuf_start(out, a->nla_type);
    struct tcm_iter it = tcm_nest_attrs(a);
    const struct nlattr *act;
    while ((act = tcm_attr_next(&it))) {
        int r = copy_action(act, out, c);
        if (r < 0)
            return r;
    }
    if (it.bad)
        return canon_malformed(c, "action list");
    mbuf_end(out, off);
    return 0;
}

/* -- filter options -- */

static int cls_flags(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    if (tcm_alen(a) < sizeof(uint32_t))
        return canon_malformed(c, "filter flags");
    uint32_t f;
    memcpy(&f, tcm_adata(a), sizeof f);
    /* IN_HW/NOT_IN_HW report the outcome; the kernel refuses them as input. */
    if (c->replay)
        f &= TCA_CLS_FLAGS_SKIP_HW | TCA_CLS_FLAGS_SKIP_SW;
    mbuf_attr(out, a->nla_type, &f, sizeof f);
    return 0;
}

static int u32_mark(const struct nlattr *a, struct mbuf *out, struct canon_cx *c)
{
    return canon_copy_struct(a, sizeof(struct tc_u32_mark), offsetof(struct tc_u32_mark, success),
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

int canon_opt_u32(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &u32_rs, o, c);
}
int canon_opt_matchall(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &matchall_rs, o, c);
}
int canon_opt_fw(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &fw_rs, o, c);
}
int canon_opt_basic(const struct nlattr *a, struct mbuf *o, struct canon_cx *c)
{
    return canon_copy_nest(a, &basic_rs, o, c);
}
