/* Our tc tree on one interface: a prio root (handle ca05:, "chaos") with 16
 * bands. The priomap only ever maps to bands 0-2, so bands 3-15 see only
 * what our u32 filters steer there: each network fault owns one of those
 * bands (a "slot") with its own netem child and its own filters, so faults
 * compose on one interface and leave one by one. Every handle and filter
 * priority we use is recognisable: leftovers after a crash are clearly ours.
 *
 * The root we replace is the kernel's default (restored by the kernel when
 * ours is deleted) or one someone configured, which is snapshotted first
 * (tc_snapshot) and restored exactly by the last fault to leave; a root
 * that cannot be restored exactly is refused before anything changes.
 *
 * Callers hold net_tree_lock() around plan + install and around uninstall,
 * so two engines on one host never race for a slot. */
#ifndef CHAOS_NET_TREE_H
#define CHAOS_NET_TREE_H

#include <stdbool.h>
#include <stdint.h>
#include <net/if.h>
#include <jansson.h>
#include "chaos_err.h"
#include "net_scope.h"
#include "netem_params.h"
#include "nl_tc.h"

#define NET_TREE_ROOT_MAJOR 0xCA05u   /* our prio root, "ca05:" */
#define NET_TREE_NETEM_MAJOR 0xCA10u  /* slot s's netem is (ca10 + s): */
#define NET_TREE_BANDS 16
#define NET_TREE_SLOTS (NET_TREE_BANDS - 3)
#define NET_TREE_PREF_BASE 0xCA00u    /* slot s's filters: prefs ca00 + 4s + {0 ip, 1 ipv6, 2 all} */
#define NET_TREE_MIRRED_PREF 0xCA05u  /* the ingress -> ifb redirect */

#define NET_TREE_OWNER_LEN 40 /* a fault's owner token, NUL included */

struct tc_snapshot;

/* What adding one fault to one interface will do; filled by net_tree_plan. */
struct net_tree_plan {
    int ifindex;
    char ifname[IFNAMSIZ];
    int slot;
    bool create_root;              /* our root is not there yet */
    struct tc_snapshot *snapshot;  /* the configured root we replace (NULL: kernel default) */
    char owner[NET_TREE_OWNER_LEN]; /* the fault's token ("" for none), set by the caller */
};

/* Takes the host-wide lock of network faults (a file under /run/chaos). */
int net_tree_lock(int *fd, struct chaos_err *err) __attribute__((warn_unused_result));
void net_tree_unlock(int fd);

/* Looks at ifindex and decides the slot, whether our root must be created,
 * and snapshots a configured root (refusing one that cannot be restored
 * exactly). Changes nothing. plan->snapshot is freed by net_tree_plan_clear. */
int net_tree_plan(struct nl_tc *t, int ifindex, const char *ifname, struct net_tree_plan *plan,
                  struct chaos_err *err) __attribute__((warn_unused_result));
void net_tree_plan_clear(struct net_tree_plan *plan);

/* Carries out plan: our root (replacing what was there), netem with p in
 * the plan's slot, and one u32 filter per rule. ns identifies the network
 * namespace (for the file that hands a snapshot on to the last fault to
 * leave). On failure everything done is undone. */
int net_tree_install(struct nl_tc *t, const struct nltc_ns_id *ns, const struct net_tree_plan *plan,
                     const struct netem_params *p, const struct net_u32_rule *rules, size_t n,
                     struct chaos_err *err) __attribute__((warn_unused_result));

/* Removes slot from ifindex (which must still be called ifname); the last
 * slot out deletes our root and restores the snapshot, from the hand-off
 * file or else from fallback (a journalled copy, may be NULL). An interface
 * that is gone is success: so is its tree. An index with another name now
 * is success when it carries no prio root of ours (a recycled index), and
 * -ESTALE, naming both names, when it does (ours renamed, perhaps): it is
 * not touched, and the fault is not removed.
 * owner is the token the slot was installed with: a slot the record gives
 * to another owner is left alone (ours was removed before a crash and the
 * slot handed on). NULL or no record: the slot is taken to be ours. */
int net_tree_uninstall(struct nl_tc *t, const struct nltc_ns_id *ns, int ifindex,
                       const char *ifname, int slot, const char *owner, const json_t *fallback,
                       struct chaos_err *err) __attribute__((warn_unused_result));

/* Number of our slots in use on ifindex (0 when our root is not there). */
int net_tree_slots_used(struct nl_tc *t, int ifindex, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Ingress: redirects every packet arriving on ifindex to an ifb device
 * ("cifb" + ifindex in hex, created unless there) through an ingress qdisc
 * (created unless there) and a mirred filter, so a tree on the ifb can
 * shape it. An existing device of the ifb's name that the interface's
 * hand-off record does not name is not used: -EEXIST, naming it. *ifb_index
 * gets the ifb's index. Undone on failure. */
int net_tree_ingress_attach(struct nl_tc *t, const struct nltc_ns_id *ns, int ifindex,
                            const char *ifname, int *ifb_index, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Undoes net_tree_ingress_attach once the ifb carries no slot any more. */
int net_tree_ingress_detach(struct nl_tc *t, const struct nltc_ns_id *ns, int ifindex,
                            const char *ifname, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* The ifb of ifindex, if there is one and it is ours: 0 with *ifb_index
 * set; -ENODEV when there is none; -EEXIST (err names it) when a device of
 * its name exists that the interface's hand-off record does not name. With
 * no record at all, a device of the ifb's name counts as ours. */
int net_tree_ifb_find(struct nl_tc *t, const struct nltc_ns_id *ns, int ifindex,
                      const char *ifname, int *ifb_index, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* The ifb name for ifindex: "cifb%x", unique for every index. */
void net_tree_ifb_name(int ifindex, char *name);

#endif
