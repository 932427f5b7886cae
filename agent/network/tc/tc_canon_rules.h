/* Private to tc_canon.c and tc_canon_filter.c: the rule tables that say,
 * per kind, which attributes of a dump are kept, dropped or rewritten. */
#ifndef CHAOS_TC_CANON_RULES_H
#define CHAOS_TC_CANON_RULES_H

#include <stddef.h>
#include <stdint.h>
#include "tc_canon.h"

typedef int (*attr_fn)(const struct nlattr *a, struct mbuf *out, struct canon_cx *c);

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

/* "malformed <where> in the kernel's dump" (or in a saved snapshot). */
int canon_malformed(struct canon_cx *c, const char *where);
/* Copies a stream of attributes by rs; unknown types are refused. */
int canon_copy_attrs(struct tcm_iter it, const struct ruleset *rs, struct mbuf *out,
                     struct canon_cx *c);
/* The same for the attributes nested in a (kept as a nest of its type). */
int canon_copy_nest(const struct nlattr *a, const struct ruleset *rs, struct mbuf *out,
                    struct canon_cx *c);
/* A fixed struct of at least min bytes; zero_at/zero_len blank statistics. */
int canon_copy_struct(const struct nlattr *a, size_t min, size_t zero_at, size_t zero_len,
                      struct mbuf *out, struct canon_cx *c, const char *where);
/* TCA_STATS2: dropped, but a rate estimator (never dumped) is refused. */
int canon_stats2(const struct nlattr *a, struct mbuf *out, struct canon_cx *c);

/* Filter options (tc_canon_filter.c). */
int canon_opt_u32(const struct nlattr *a, struct mbuf *o, struct canon_cx *c);
int canon_opt_matchall(const struct nlattr *a, struct mbuf *o, struct canon_cx *c);
int canon_opt_fw(const struct nlattr *a, struct mbuf *o, struct canon_cx *c);
int canon_opt_basic(const struct nlattr *a, struct mbuf *o, struct canon_cx *c);

#endif
