/* The fixture the tc snapshot tests share (test_tc_snapshot.c,
 * tc_snapshot_cases.c): one network namespace per test with the
 * interfaces below, tc(8) run as few times as possible (under TCG every
 * exec costs ~80 ms), and tc's own view of an interface to compare. */
#ifndef CHAOS_TC_SNAP_FX_H
#define CHAOS_TC_SNAP_FX_H

#include <stdbool.h>
#include <criterion/criterion.h>

#include "nl_tc.h"
#include "tc_snapshot.h"

/* In the namespace: veth0 (peer veth1), the interface most tests use;
 * mq0 (peer mq1), a veth with 4 transmit queues (multiq, mqprio and mq
 * roots need several); ifb4, an ifb with 4 queues, whose default root is
 * mq (veth's is noqueue). IPv6 is off, so that no packet moves a counter
 * tc prints without -s (htb's direct_packets_stat). */
#define DEV "veth0"

struct snap_fx {
    char ns[48];
    char nspath[96];
    struct nl_tc *t;
    bool made;
    bool in_vm; /* CHAOS_VM is set: Debian's kernel has every kind, nothing may skip */
};
extern struct snap_fx fx;

void snap_setup(void);
void snap_teardown(void);

/* The ifindex of dev in the namespace. */
int fx_ifindex(const char *dev);

/* Runs tc -n NS [-j] -b with these lines (one command each), stdout and
 * stderr into *out (may be NULL: dropped), and returns its exit status. */
int tc_batch(const char *lines, bool json, char **out);
/* tc_batch that must succeed. */
#define TCB(...) tcb_ok(__VA_ARGS__)
void tcb_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* tc's own view of dev (qdiscs, classes, and the filters of every qdisc
 * and class: a filter dump lists one parent's block), without -s:
 * statistics are not configuration. Two execs of tc. */
char *tc_state(const char *dev);
/* Waits up to 2 s for tc_state(dev) to equal want; NULL when it did, else
 * a description of the first difference (to free). The kernel frees the
 * filters of a deleted qdisc in deferred work, and an action they held
 * stays in its table until then: a filter replayed right after the delete
 * binds to it and tc shows "ref 2 bind 2" for a moment (measured: gone
 * within 50 ms). */
char *state_differs(const char *dev, const char *want);
/* Deletes dev's root qdisc (nothing to delete is fine), through netlink. */
void del_root(const char *dev);

struct tc_snapshot *take_ok(const char *dev);

#endif
