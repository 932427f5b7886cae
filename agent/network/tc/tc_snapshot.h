/* A copy of an interface's egress tc configuration (qdiscs, classes,
 * filters) taken before the network fault replaces the root qdisc, so that
 * the exact configuration can be put back afterwards. Kinds we cannot put
 * back exactly are refused when the snapshot is taken, before anything
 * changes. */
#ifndef CHAOS_TC_SNAPSHOT_H
#define CHAOS_TC_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "chaos_err.h"

struct nl_tc;
struct tc_snapshot;

/* Dumps every qdisc, class and filter (all chains) of ifindex except the
 * ingress/clsact qdisc and what hangs under it, and keeps each as the
 * message that recreates it, without statistics. Objects the kernel makes by
 * itself (qdiscs with handle 0:, the classes of prio/tbf/mq, per-flow classes)
 * are not kept. A root with handle 0: (the kernel's default) gives an empty
 * snapshot. ifname only names the interface in messages.
 * Fails with -EOPNOTSUPP and an err naming the object ("interface eth0:
 * filter bpf at 1: chain 0 prio 49152 protocol all cannot be restored
 * exactly: ...") when something could not be recreated exactly: a kind
 * outside the list we have verified, an attribute we do not know, a size
 * table with entries, u32 hash tables the kernel would number differently on
 * replay, u32 filters of one qdisc sharing a priority. Changes nothing. */
int tc_snapshot_take(struct nl_tc *t, int ifindex, const char *ifname, struct tc_snapshot **out,
                     struct chaos_err *err) __attribute__((warn_unused_result));

/* True when the snapshot holds nothing (the root was the kernel's default). */
bool tc_snapshot_empty(const struct tc_snapshot *s);
/* How many objects (qdiscs, classes, filter entries) the snapshot holds. */
size_t tc_snapshot_count(const struct tc_snapshot *s);

/* Recreates the snapshot on ifindex, whose root must be the kernel's default
 * (-EEXIST otherwise, nothing changed): root qdisc, its classes parents
 * first, child qdiscs, then filters, each with NLM_F_CREATE|NLM_F_EXCL. Then
 * dumps the interface again and compares it with the snapshot.
 * An empty snapshot succeeds without touching anything.
 * Failures: a request the kernel refuses: the root we created is deleted
 * again (the interface is back at the kernel's default, the snapshot can be
 * replayed later) and err names the object. A dump that differs after the
 * replay: -EPROTO, err names the first differing object; the replayed
 * configuration stays, as it is closer to the snapshot than the default. */
int tc_snapshot_restore(struct nl_tc *t, int ifindex, const char *ifname,
                        const struct tc_snapshot *s, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* For the crash journal: a JSON array of strings, each object's kept netlink
 * message in hex. NULL when out of memory. */
json_t *tc_snapshot_to_json(const struct tc_snapshot *s);
/* The reverse; checks the input as tc_snapshot_take checks a dump (sizes,
 * message types, kinds, attributes, replay order), so a damaged or edited
 * journal cannot make restore send anything take would have refused.
 * -EINVAL for malformed input, -EOPNOTSUPP for what take would refuse. */
int tc_snapshot_from_json(const json_t *j, struct tc_snapshot **out, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* NULL is fine. */
void tc_snapshot_free(struct tc_snapshot *s);

#endif
