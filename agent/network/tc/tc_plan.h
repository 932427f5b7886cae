/* The order in which to replay a snapshot's tc objects so that the kernel
 * recreates each one exactly: parents before children, and u32 hash tables
 * in the order that makes the kernel give them their numbers again. Working
 * the order out is also the check that a snapshot is one consistent tree,
 * whether it comes from a dump or from a journal. */
#ifndef CHAOS_TC_PLAN_H
#define CHAOS_TC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include "chaos_err.h"
#include "tc_msg.h"

/* One step of a replay: send object idx. */
struct plan_op {
    size_t idx;
    bool auto_handle; /* send handle 0: the kernel numbers it as it did */
};

struct plan {
    struct plan_op *v;
    size_t n;
};

/* Fills p (start from {0}; free with plan_freep, also on failure) with the
 * order to replay m[0..n-1] in: objects in canonical form (tc_canon), the
 * root qdisc first, then the other qdiscs, classes, and filters, as
 * tc_snapshot keeps them; any other arrangement is refused.
 * Fails with -ENOMEM, or when m is not one consistent tree or cannot be
 * replayed exactly: -EOPNOTSUPP naming the object when ifname is set (a
 * dump); -EINVAL for damage when ifname is NULL (a journal), except for u32
 * hash tables numbered against their creation order (-EOPNOTSUPP). */
int plan_build(struct nlmsghdr *const *m, size_t n, const char *ifname, struct plan *p,
               struct chaos_err *err) __attribute__((warn_unused_result));

/* plan_build, keeping only the verdict. */
int plan_check(struct nlmsghdr *const *m, size_t n, const char *ifname, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* For __attribute__((cleanup)). */
void plan_freep(struct plan *p);

#endif
