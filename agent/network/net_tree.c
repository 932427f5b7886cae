#include "net_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/route/tc.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/prio.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/action.h>
#include <netlink/route/act/mirred.h>

#include "fsutil.h"
#include "tc_snapshot.h"
#include "util.h"

/* Undo on a path that already failed uses IGNORE_RESULT (util.h): the
 * first error is the one to report. */

#define STATE_DIR "/run/chaos/net"
#define ROOT_HANDLE TC_HANDLE(NET_TREE_ROOT_MAJOR, 0)
/* ffff:, the ingress qdisc; unsigned, or the shift in TC_HANDLE overflows int. */
#define INGRESS_HANDLE TC_HANDLE(0xffffu, 0)

static uint32_t slot_class(int slot)
{
    /* prio's classes are 1-based: band b is class b+1; our slots start at band 3. */
    return TC_HANDLE(NET_TREE_ROOT_MAJOR, (uint32_t)(slot + 4));
}

static uint32_t slot_netem(int slot)
{
    return TC_HANDLE(NET_TREE_NETEM_MAJOR + (uint32_t)slot, 0);
}

static uint16_t slot_pref(int slot, uint16_t eth_proto)
{
    int k = eth_proto == ETH_P_IP ? 0 : eth_proto == ETH_P_IPV6 ? 1 : 2;
    return (uint16_t)(NET_TREE_PREF_BASE + 4 * slot + k);
}

/* ---- the host-wide lock and the hand-off file ---- */

int net_tree_lock(int *fd, struct chaos_err *err)
{
    int r = mkdir_p(STATE_DIR);
    if (r < 0)
        return chaos_err_set(err, -r, "cannot create %s: %s", STATE_DIR, strerror(-r));
    int f = open(STATE_DIR "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0)
        return chaos_err_set(err, errno, "cannot open %s/lock: %s", STATE_DIR, strerror(errno));
    while (flock(f, LOCK_EX) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(f);
        return chaos_err_set(err, e, "cannot lock %s/lock: %s", STATE_DIR, strerror(e));
    }
    *fd = f;
    return 0;
}

void net_tree_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* One file per interface we changed, for what outlives a single fault:
 * the snapshot of the root we replaced, and which ingress pieces we made. */
static void state_path(const struct nltc_ns_id *ns, int ifindex, char *buf, size_t size)
{
    snprintf(buf, size, STATE_DIR "/%llx-%llx-%d.json", (unsigned long long)ns->dev,
             (unsigned long long)ns->ino, ifindex);
}

static json_t *state_read(const struct nltc_ns_id *ns, int ifindex)
{
    char path[256];
    state_path(ns, ifindex, path, sizeof path);
    json_t *j = json_load_file(path, 0, NULL);
    return j ? j : json_object();
}

static int state_write(const struct nltc_ns_id *ns, int ifindex, json_t *st, struct chaos_err *err)
{
    char path[256], tmp[272];
    state_path(ns, ifindex, path, sizeof path);
    int r = mkdir_p(STATE_DIR);
    if (r < 0)
        return chaos_err_set(err, -r, "cannot create %s: %s", STATE_DIR, strerror(-r));
    if (json_object_size(st) == 0) {
        if (unlink(path) < 0 && errno != ENOENT)
            return chaos_err_set(err, errno, "cannot remove %s: %s", path, strerror(errno));
        return 0;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(st, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return chaos_err_set(err, EIO, "cannot write %s", path);
    }
    return 0;
}

/* Drops what no longer says anything: an empty slot map, and a file left
 * with nothing but the interface's name. */
static void state_tidy(json_t *st)
{
    json_t *slots = json_object_get(st, "slots");
    if (slots && json_object_size(slots) == 0)
        json_object_del(st, "slots");
    if (json_object_size(st) == 1 && json_object_get(st, "ifname"))
        json_object_clear(st);
}

/* Forgets what the ingress side made (the ifb, the ingress qdisc, the
 * redirect), leaving the egress record. */
static void state_drop_ingress(json_t *st)
{
    json_object_del(st, "ifb_index");
    json_object_del(st, "made_ifb");
    json_object_del(st, "made_ingress");
    json_object_del(st, "mirred");
}

/* Who holds each slot, by the owner token of its fault. A fault whose revert
 * finished in the kernel but not in its journal (a crash in between) is
 * reverted again on recovery; by then another fault may hold the same slot,
 * and the token is what tells them apart. */
static const char *slot_owner(const json_t *st, int slot)
{
    char key[8];
    snprintf(key, sizeof key, "%d", slot);
    return json_string_value(json_object_get(json_object_get(st, "slots"), key));
}

static void slot_owner_set(json_t *st, const char *ifname, int slot, const char *owner)
{
    char key[8];
    snprintf(key, sizeof key, "%d", slot);
    json_t *slots = json_object_get(st, "slots");
    if (!slots) {
        slots = json_object();
        json_object_set_new(st, "slots", slots);
    }
    json_object_set_new(slots, key, json_string(owner));
    json_object_set_new(st, "ifname", json_string(ifname));
}

static void slot_owner_drop(json_t *st, int slot)
{
    char key[8];
    snprintf(key, sizeof key, "%d", slot);
    json_object_del(json_object_get(st, "slots"), key);
    state_tidy(st);
}

/* ---- reading the interface ---- */

struct tree_view {
    bool have_root;
    uint32_t root_handle, root_parent;
    char root_kind[32];
    bool used[NET_TREE_SLOTS];
    int n_used;
    bool have_ingress;
    char ingress_kind[32];
};

static int view_qdisc(const struct nlmsghdr *nlh, void *arg)
{
    struct tree_view *v = arg;
    const struct tcmsg *tcm = nlmsg_data(nlh);
    const char *kind = nltc_msg_kind(nlh);
    if (tcm->tcm_parent == TC_H_ROOT) {
        v->have_root = true;
        v->root_handle = tcm->tcm_handle;
        snprintf(v->root_kind, sizeof v->root_kind, "%s", kind);
    } else if (tcm->tcm_parent == TC_H_INGRESS) {
        v->have_ingress = true;
        snprintf(v->ingress_kind, sizeof v->ingress_kind, "%s", kind);
    } else if (TC_H_MAJ(tcm->tcm_parent) == ROOT_HANDLE && strcmp(kind, "netem") == 0) {
        uint32_t major = TC_H_MAJ(tcm->tcm_handle) >> 16;
        if (major >= NET_TREE_NETEM_MAJOR && major < NET_TREE_NETEM_MAJOR + NET_TREE_SLOTS) {
            v->used[major - NET_TREE_NETEM_MAJOR] = true;
            v->n_used++;
        }
    }
    return 0;
}

static int read_view(struct nl_tc *t, int ifindex, struct tree_view *v, struct chaos_err *err)
{
    memset(v, 0, sizeof *v);
    return nltc_dump(t, RTM_GETQDISC, ifindex, 0, view_qdisc, v, err);
}

static bool root_is_ours(const struct tree_view *v)
{
    return v->have_root && v->root_handle == ROOT_HANDLE && strcmp(v->root_kind, "prio") == 0;
}

int net_tree_slots_used(struct nl_tc *t, int ifindex, struct chaos_err *err)
{
    struct tree_view v;
    int r = read_view(t, ifindex, &v, err);
    if (r < 0)
        return r;
    return root_is_ours(&v) ? v.n_used : 0;
}

/* ---- plan ---- */

int net_tree_plan(struct nl_tc *t, int ifindex, const char *ifname, struct net_tree_plan *plan,
                  struct chaos_err *err)
{
    memset(plan, 0, sizeof *plan);
    plan->ifindex = ifindex;
    snprintf(plan->ifname, sizeof plan->ifname, "%s", ifname);
    struct tree_view v;
    int r = read_view(t, ifindex, &v, err);
    if (r < 0)
        return r;
    if (root_is_ours(&v)) {
        for (int s = 0; s < NET_TREE_SLOTS; s++)
            if (!v.used[s]) {
                plan->slot = s;
                return 0;
            }
        return chaos_err_set(err, EBUSY,
                             "interface %s already carries %d network faults, the most one "
                             "interface can take; wait for one to end",
                             ifname, NET_TREE_SLOTS);
    }
    plan->slot = 0;
    plan->create_root = true;
    if (!v.have_root || v.root_handle == 0)
        return 0; /* the kernel's default: it comes back by itself */
    /* Someone configured this root: keep all of it, or refuse now. */
    r = tc_snapshot_take(t, ifindex, ifname, &plan->snapshot, err);
    if (r < 0)
        return r;
    if (tc_snapshot_empty(plan->snapshot)) {
        tc_snapshot_free(plan->snapshot);
        plan->snapshot = NULL;
    }
    return 0;
}

void net_tree_plan_clear(struct net_tree_plan *plan)
{
    if (!plan)
        return;
    tc_snapshot_free(plan->snapshot);
    plan->snapshot = NULL;
}

/* ---- building blocks ---- */

static void qdisc_putp(struct rtnl_qdisc **q)
{
    if (*q)
        rtnl_qdisc_put(*q);
}

static void cls_putp(struct rtnl_cls **c)
{
    if (*c)
        rtnl_cls_put(*c);
}

static int add_root(struct nl_tc *t, int ifindex, const char *ifname, struct chaos_err *err)
{
    /* The kernel's default priomap: TOS-marked traffic goes to bands 0-2
     * exactly as before, never to a band of ours. */
    static uint8_t priomap[TC_PRIO_MAX + 1] = {1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    __attribute__((cleanup(qdisc_putp))) struct rtnl_qdisc *q = rtnl_qdisc_alloc();
    if (!q)
        return chaos_err_set(err, ENOMEM, "out of memory");
    rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
    rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
    rtnl_tc_set_handle(TC_CAST(q), ROOT_HANDLE);
    if (rtnl_tc_set_kind(TC_CAST(q), "prio") < 0)
        return chaos_err_set(err, EINVAL, "libnl does not know the prio qdisc");
    rtnl_qdisc_prio_set_bands(q, NET_TREE_BANDS);
    if (rtnl_qdisc_prio_set_priomap(q, priomap, sizeof priomap) < 0)
        return chaos_err_set(err, EINVAL, "libnl refused the prio priomap");
    struct nl_msg *msg = NULL;
    int r = rtnl_qdisc_build_add_request(q, NLM_F_CREATE | NLM_F_EXCL, &msg);
    if (r < 0)
        return chaos_err_set(err, EINVAL, "cannot build the prio request: %s", nl_geterror(r));
    char what[96];
    snprintf(what, sizeof what, "interface %s: adding the prio root", ifname);
    return nltc_request(t, msg, what, "sch_prio", err);
}

static int add_netem(struct nl_tc *t, int ifindex, const char *ifname, int slot,
                     const struct netem_params *p, struct chaos_err *err)
{
    struct nl_msg *msg = NULL;
    int r = netem_build_request(p, ifindex, slot_class(slot), slot_netem(slot), NULL, &msg, err);
    if (r < 0)
        return r;
    char what[96];
    snprintf(what, sizeof what, "interface %s: adding netem", ifname);
    return nltc_request(t, msg, what, "sch_netem", err);
}

static int add_filter(struct nl_tc *t, int ifindex, const char *ifname, int slot,
                      const struct net_u32_rule *rule, struct chaos_err *err)
{
    __attribute__((cleanup(cls_putp))) struct rtnl_cls *c = rtnl_cls_alloc();
    if (!c)
        return chaos_err_set(err, ENOMEM, "out of memory");
    rtnl_tc_set_ifindex(TC_CAST(c), ifindex);
    rtnl_tc_set_parent(TC_CAST(c), ROOT_HANDLE);
    if (rtnl_tc_set_kind(TC_CAST(c), "u32") < 0)
        return chaos_err_set(err, EINVAL, "libnl does not know the u32 classifier");
    rtnl_cls_set_prio(c, slot_pref(slot, rule->eth_proto));
    rtnl_cls_set_protocol(c, rule->eth_proto);
    for (size_t k = 0; k < rule->n_keys; k++)
        if (rtnl_u32_add_key(c, rule->keys[k].val, rule->keys[k].mask, rule->keys[k].off, 0) < 0)
            return chaos_err_set(err, ENOMEM, "out of memory");
    if (rtnl_u32_set_classid(c, slot_class(slot)) < 0 || rtnl_u32_set_cls_terminal(c) < 0)
        return chaos_err_set(err, ENOMEM, "out of memory");
    struct nl_msg *msg = NULL;
    int r = rtnl_cls_build_add_request(c, NLM_F_CREATE | NLM_F_EXCL, &msg);
    if (r < 0)
        return chaos_err_set(err, EINVAL, "cannot build the u32 request: %s", nl_geterror(r));
    char what[96];
    snprintf(what, sizeof what, "interface %s: adding a u32 filter", ifname);
    return nltc_request(t, msg, what, "cls_u32", err);
}

static int del_slot(struct nl_tc *t, int ifindex, const char *ifname, int slot,
                    struct chaos_err *err)
{
    static const uint16_t protos[] = {ETH_P_IP, ETH_P_IPV6, ETH_P_ALL};
    char what[96];
    snprintf(what, sizeof what, "interface %s: removing our filters", ifname);
    int first = 0;
    for (size_t i = 0; i < ARRAY_SIZE(protos); i++) {
        int r = nltc_filter_del(t, ifindex, ROOT_HANDLE, slot_pref(slot, protos[i]), protos[i],
                                what, err);
        if (r < 0 && first == 0)
            first = r;
    }
    /* Filters first: once they are gone no packet reaches the band, so
     * deleting its netem drops nothing. */
    snprintf(what, sizeof what, "interface %s: removing netem", ifname);
    int r = nltc_qdisc_del(t, ifindex, slot_class(slot), slot_netem(slot), what,
                           first ? NULL : err);
    return first ? first : r;
}

static int del_root(struct nl_tc *t, int ifindex, const char *ifname, struct chaos_err *err)
{
    char what[96];
    snprintf(what, sizeof what, "interface %s: removing our prio root", ifname);
    return nltc_qdisc_del(t, ifindex, TC_H_ROOT, ROOT_HANDLE, what, err);
}

/* Puts back the root we replaced, after ours is gone. */
static int restore_root(struct nl_tc *t, int ifindex, const char *ifname,
                        const struct tc_snapshot *snap, struct chaos_err *err)
{
    if (!snap)
        return 0;
    int r = tc_snapshot_restore(t, ifindex, ifname, snap, err);
    if (r < 0)
        chaos_err_prefix(err, "restoring the qdiscs of %s", ifname);
    return r;
}

/* ---- install / uninstall ---- */

int net_tree_install(struct nl_tc *t, const struct nltc_ns_id *ns, const struct net_tree_plan *plan,
                     const struct netem_params *p, const struct net_u32_rule *rules, size_t n,
                     struct chaos_err *err)
{
    int ifindex = plan->ifindex;
    const char *ifname = plan->ifname;
    int r;
    _cleanup_json_ json_t *st = state_read(ns, ifindex);
    _cleanup_json_ json_t *was = json_deep_copy(st);
    if (plan->create_root) {
        /* Slot owners on record belonged to a tree that is gone. */
        json_object_del(st, "slots");
    }
    if (plan->create_root && !plan->snapshot) {
        /* A snapshot on record is stale: it belonged to a root that went
         * away with its namespace. Never "restore" it over the default. */
        json_object_del(st, "snapshot");
    }
    if (plan->create_root && plan->snapshot) {
        /* Hand the snapshot to whichever fault leaves last. */
        json_object_set_new(st, "ifname", json_string(ifname));
        json_object_set_new(st, "snapshot", tc_snapshot_to_json(plan->snapshot));
    }
    /* The slot's owner is on record before the kernel has the slot. */
    if (plan->owner[0])
        slot_owner_set(st, ifname, plan->slot, plan->owner);
    state_tidy(st);
    /* Each write is a few syscalls, slow in an emulated guest: skip a no-op. */
    if (!json_equal(was, st) && (r = state_write(ns, ifindex, st, err)) < 0)
        return r;
    if (plan->create_root) {
        if (plan->snapshot) {
            char what[96];
            snprintf(what, sizeof what, "interface %s: removing the configured root for now",
                     ifname);
            if ((r = nltc_qdisc_del(t, ifindex, TC_H_ROOT, 0, what, err)) < 0)
                goto drop_state;
        }
        if ((r = add_root(t, ifindex, ifname, err)) < 0)
            goto put_back;
    }
    if ((r = add_netem(t, ifindex, ifname, plan->slot, p, err)) < 0)
        goto drop_root;
    for (size_t i = 0; i < n; i++)
        if ((r = add_filter(t, ifindex, ifname, plan->slot, &rules[i], err)) < 0)
            goto drop_slot;
    return 0;

    /* Undo in reverse; the first error is the one reported. */
drop_slot:
    IGNORE_RESULT(del_slot(t, ifindex, ifname, plan->slot, NULL));
drop_root:
    if (plan->create_root)
        IGNORE_RESULT(del_root(t, ifindex, ifname, NULL));
put_back:
    if (plan->snapshot)
        IGNORE_RESULT(restore_root(t, ifindex, ifname, plan->snapshot, NULL));
drop_state:
    if (plan->snapshot)
        json_object_del(st, "snapshot");
    if (plan->owner[0])
        slot_owner_drop(st, plan->slot);
    state_tidy(st);
    IGNORE_RESULT(state_write(ns, ifindex, st, NULL));
    return r;
}

/* Is ifindex still the interface called ifname? -ENODEV when it is gone. */
/* ifindex must still be called ifname: 0. -ENODEV (err cleared) when it is
 * gone, and everything on it with it. An index that has another name now is
 * a recycled index or our interface renamed: if it carries nothing that
 * could be ours (our prio root; on ingress, an ingress qdisc) it is -ENODEV
 * too, else -ESTALE with err set: neither touched nor counted as removed. */
static int same_interface(struct nl_tc *t, int ifindex, const char *ifname, bool ingress,
                          struct chaos_err *err)
{
    char now[IFNAMSIZ];
    int r = nltc_link_name(t, ifindex, now, err);
    if (r == -ENODEV)
        chaos_err_clear(err);
    if (r < 0 || strcmp(now, ifname) == 0)
        return r;
    struct tree_view v;
    if ((r = read_view(t, ifindex, &v, err)) < 0)
        return r;
    bool maybe_ours = ingress ? v.have_ingress && strcmp(v.ingress_kind, "ingress") == 0
                              : root_is_ours(&v);
    if (!maybe_ours)
        return -ENODEV;
    return chaos_err_set(err, ESTALE,
                         "interface %d is now called %s, not %s, and carries %s: not touching "
                         "it. If it is %s renamed, the fault is still on it: rename it back and "
                         "run `chaos recover`, or remove it by hand (see docs/faults/network.md, "
                         "Recognisable leftovers)",
                         ifindex, now, ifname,
                         ingress ? "an ingress qdisc" : "a chaos tree (prio root ca05:)", ifname);
}

int net_tree_uninstall(struct nl_tc *t, const struct nltc_ns_id *ns, int ifindex,
                       const char *ifname, int slot, const char *owner, const json_t *fallback,
                       struct chaos_err *err)
{
    int r = same_interface(t, ifindex, ifname, false, err);
    if (r == -ENODEV) {
        /* Gone (a deleted veth, a stopped container): so is everything on it. */
        return 0;
    }
    if (r < 0)
        return r;
    struct tree_view v;
    if ((r = read_view(t, ifindex, &v, err)) < 0)
        return r;
    if (!root_is_ours(&v))
        return 0; /* removed already (a revert before a crash finished it) */
    _cleanup_json_ json_t *st = state_read(ns, ifindex);
    /* Another fault holds the slot now: ours left it before (see
     * slot_owner). Without a record (an older file), the slot is ours. */
    const char *holder = slot_owner(st, slot);
    bool mine = !owner || !holder || strcmp(holder, owner) == 0;
    bool held = v.used[slot] && mine;
    /* The last fault on the tree skips its own filters and band: deleting
     * the root takes them with it in one request (the lock keeps the count
     * true), which halves the time to revert. */
    bool last = v.n_used == 0 || (v.n_used == 1 && held);
    if (!last) {
        if (held && (r = del_slot(t, ifindex, ifname, slot, err)) < 0)
            return r;
        if (owner && holder && strcmp(holder, owner) == 0) {
            slot_owner_drop(st, slot);
            if ((r = state_write(ns, ifindex, st, err)) < 0)
                return r;
        }
        if ((r = read_view(t, ifindex, &v, err)) < 0)
            return r;
        if (v.n_used > 0)
            return 0; /* other faults still use the tree */
    }

    const json_t *snapj = json_object_get(st, "snapshot");
    if (!snapj)
        snapj = fallback;
    struct tc_snapshot *snap = NULL;
    if (snapj && (r = tc_snapshot_from_json(snapj, &snap, err)) < 0)
        return r;
    r = del_root(t, ifindex, ifname, err);
    if (r == 0)
        r = restore_root(t, ifindex, ifname, snap, err);
    tc_snapshot_free(snap);
    if (r < 0)
        return r;
    json_object_del(st, "snapshot");
    json_object_del(st, "slots"); /* the tree is gone, and every slot with it */
    state_tidy(st);
    return state_write(ns, ifindex, st, err);
}

/* ---- ingress ---- */

void net_tree_ifb_name(int ifindex, char *name)
{
    /* "cifb" and the index in hex: at most 12 characters for any index, so
     * the name is never cut at IFNAMSIZ and no two interfaces share it. */
    snprintf(name, IFNAMSIZ, "cifb%x", (unsigned)ifindex);
}

/* Labels a new ifb with the interface it serves, for people (`ip link`). */
static int set_ifb_alias(struct nl_tc *t, int ifb_index, const char *ifb, int ifindex,
                         const char *ifname, struct chaos_err *err)
{
    char alias[64], what[96];
    snprintf(alias, sizeof alias, "chaos: ingress of ifindex %d (%s)", ifindex, ifname);
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifb_index};
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST);
    if (!msg || nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
        nla_put_string(msg, IFLA_IFALIAS, alias) < 0) {
        nlmsg_free(msg);
        return chaos_err_set(err, ENOMEM, "out of memory");
    }
    snprintf(what, sizeof what, "ifb %s: setting its alias", ifb);
    return nltc_request(t, msg, what, NULL, err);
}

/* The ifb the hand-off record of an interface says it made or took (0: none). */
static int recorded_ifb(const json_t *st)
{
    const json_t *v = json_object_get(st, "ifb_index");
    return json_is_integer(v) ? (int)json_integer_value(v) : 0;
}

/* The error for an ifb-named device that is not ours. */
static int foreign_ifb(const char *ifname, const char *ifb, int ifb_index, struct chaos_err *err)
{
    return chaos_err_set(err, EEXIST,
                         "interface %s: an interface called %s (index %d) exists already and no "
                         "record says it carries %s's ingress faults; remove it (ip link del %s) "
                         "if it is a leftover, or rename it",
                         ifname, ifb, ifb_index, ifname, ifb);
}

int net_tree_ifb_find(struct nl_tc *t, const struct nltc_ns_id *ns, int ifindex,
                      const char *ifname, int *ifb_index, struct chaos_err *err)
{
    char ifb[IFNAMSIZ];
    net_tree_ifb_name(ifindex, ifb);
    int r = nltc_link_index(t, ifb, ifb_index, err);
    if (r < 0)
        return r;
    _cleanup_json_ json_t *st = state_read(ns, ifindex);
    /* Without a record (the file was lost) the name is all we have. */
    if (json_object_size(st) && recorded_ifb(st) != *ifb_index)
        return foreign_ifb(ifname, ifb, *ifb_index, err);
    return 0;
}

/* Finds or makes the ifb of ifindex. One of our name that this interface's
 * record does not name is not ours (made by hand, or by another tool):
 * refused rather than shared. */
static int take_ifb(struct nl_tc *t, const json_t *st, int ifindex, const char *ifname,
                    int *ifb_index, bool *made, struct chaos_err *err)
{
    char ifb[IFNAMSIZ];
    net_tree_ifb_name(ifindex, ifb);
    *made = false;
    if (nltc_link_index(t, ifb, ifb_index, NULL) == 0) {
        if (recorded_ifb(st) == *ifb_index) {
            *made = json_is_true(json_object_get(st, "made_ifb"));
            return 0;
        }
        return foreign_ifb(ifname, ifb, *ifb_index, err);
    }
    int r = nltc_ifb_add(t, ifb, ifb_index, err);
    if (r < 0)
        return r;
    *made = true;
    if ((r = set_ifb_alias(t, *ifb_index, ifb, ifindex, ifname, err)) < 0) {
        IGNORE_RESULT(nltc_link_del(t, *ifb_index, NULL));
        *made = false;
    }
    return r;
}

static int add_ingress_qdisc(struct nl_tc *t, int ifindex, const char *ifname,
                             struct chaos_err *err)
{
    __attribute__((cleanup(qdisc_putp))) struct rtnl_qdisc *q = rtnl_qdisc_alloc();
    if (!q)
        return chaos_err_set(err, ENOMEM, "out of memory");
    rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
    rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
    rtnl_tc_set_handle(TC_CAST(q), INGRESS_HANDLE);
    if (rtnl_tc_set_kind(TC_CAST(q), "ingress") < 0)
        return chaos_err_set(err, EINVAL, "libnl does not know the ingress qdisc");
    struct nl_msg *msg = NULL;
    int r = rtnl_qdisc_build_add_request(q, NLM_F_CREATE | NLM_F_EXCL, &msg);
    if (r < 0)
        return chaos_err_set(err, EINVAL, "cannot build the ingress request: %s",
                             nl_geterror(r));
    char what[96];
    snprintf(what, sizeof what, "interface %s: adding an ingress qdisc", ifname);
    return nltc_request(t, msg, what, "sch_ingress", err);
}

static void act_putp(struct rtnl_act **a)
{
    if (*a)
        rtnl_act_put(*a);
}

static int add_mirred(struct nl_tc *t, int ifindex, const char *ifname, int ifb_index,
                      struct chaos_err *err)
{
    __attribute__((cleanup(cls_putp))) struct rtnl_cls *c = rtnl_cls_alloc();
    __attribute__((cleanup(act_putp))) struct rtnl_act *a = rtnl_act_alloc();
    if (!c || !a)
        return chaos_err_set(err, ENOMEM, "out of memory");
    rtnl_tc_set_ifindex(TC_CAST(c), ifindex);
    rtnl_tc_set_parent(TC_CAST(c), INGRESS_HANDLE);
    if (rtnl_tc_set_kind(TC_CAST(c), "u32") < 0 || rtnl_tc_set_kind(TC_CAST(a), "mirred") < 0)
        return chaos_err_set(err, EINVAL, "libnl does not know u32 or mirred");
    rtnl_cls_set_prio(c, NET_TREE_MIRRED_PREF);
    rtnl_cls_set_protocol(c, ETH_P_ALL);
    if (rtnl_u32_add_key(c, 0, 0, 0, 0) < 0)
        return chaos_err_set(err, ENOMEM, "out of memory");
    rtnl_mirred_set_action(a, TCA_EGRESS_REDIR);
    rtnl_mirred_set_policy(a, TC_ACT_STOLEN);
    rtnl_mirred_set_ifindex(a, (uint32_t)ifb_index);
    if (rtnl_u32_add_action(c, a) < 0 || rtnl_u32_set_cls_terminal(c) < 0)
        return chaos_err_set(err, ENOMEM, "out of memory");
    struct nl_msg *msg = NULL;
    int r = rtnl_cls_build_add_request(c, NLM_F_CREATE | NLM_F_EXCL, &msg);
    if (r < 0)
        return chaos_err_set(err, EINVAL, "cannot build the mirred request: %s",
                             nl_geterror(r));
    char what[96];
    snprintf(what, sizeof what, "interface %s: redirecting ingress to its ifb", ifname);
    return nltc_request(t, msg, what, "act_mirred", err);
}

int net_tree_ingress_attach(struct nl_tc *t, const struct nltc_ns_id *ns, int ifindex,
                            const char *ifname, int *ifb_index, struct chaos_err *err)
{
    char ifb[IFNAMSIZ];
    net_tree_ifb_name(ifindex, ifb);
    _cleanup_json_ json_t *st = state_read(ns, ifindex);
    if (json_is_true(json_object_get(st, "mirred"))) {
        /* Another fault set it up; reuse it. A record whose ifb is gone (or
         * is another device now) is stale. */
        if (nltc_link_index(t, ifb, ifb_index, NULL) == 0 && recorded_ifb(st) == *ifb_index)
            return 0;
        /* Only the ingress part: the egress snapshot and slot owners of
         * this interface are still true if only the ifb went away. */
        state_drop_ingress(st);
    }
    struct tree_view v;
    int r = read_view(t, ifindex, &v, err);
    if (r < 0)
        return r;
    if (v.have_ingress && strcmp(v.ingress_kind, "ingress") != 0)
        return chaos_err_set(err, EOPNOTSUPP,
                             "interface %s has a %s qdisc on ingress (eBPF programs use "
                             "clsact); ingress faults need a plain ingress qdisc or none",
                             ifname, v.ingress_kind);
    bool made_ifb = false, made_ingress = false;
    if ((r = take_ifb(t, st, ifindex, ifname, ifb_index, &made_ifb, err)) < 0)
        return r;
    /* Record what we made before the next step, so a crash in between
     * still finds it. */
    json_object_set_new(st, "ifname", json_string(ifname));
    json_object_set_new(st, "ifb_index", json_integer(*ifb_index));
    json_object_set_new(st, "made_ifb", json_boolean(made_ifb));
    json_object_set_new(st, "made_ingress", json_boolean(!v.have_ingress));
    if ((r = state_write(ns, ifindex, st, err)) < 0)
        goto undo;
    if (!v.have_ingress) {
        if ((r = add_ingress_qdisc(t, ifindex, ifname, err)) < 0)
            goto undo;
        made_ingress = true;
    }
    if ((r = add_mirred(t, ifindex, ifname, *ifb_index, err)) < 0)
        goto undo;
    json_object_set_new(st, "mirred", json_true());
    if ((r = state_write(ns, ifindex, st, err)) < 0)
        goto undo_mirred;
    return 0;

undo_mirred:
    IGNORE_RESULT(
        nltc_filter_del(t, ifindex, INGRESS_HANDLE, NET_TREE_MIRRED_PREF, ETH_P_ALL, "", NULL));
undo:
    if (made_ingress)
        IGNORE_RESULT(nltc_qdisc_del(t, ifindex, TC_H_INGRESS, 0, "", NULL));
    if (made_ifb)
        IGNORE_RESULT(nltc_link_del(t, *ifb_index, NULL));
    state_drop_ingress(st);
    state_tidy(st);
    IGNORE_RESULT(state_write(ns, ifindex, st, NULL));
    return r;
}

int net_tree_ingress_detach(struct nl_tc *t, const struct nltc_ns_id *ns, int ifindex,
                            const char *ifname, struct chaos_err *err)
{
    _cleanup_json_ json_t *st = state_read(ns, ifindex);
    char ifb[IFNAMSIZ];
    net_tree_ifb_name(ifindex, ifb);
    int ifb_index = 0, r;
    if (nltc_link_index(t, ifb, &ifb_index, NULL) == 0) {
        r = net_tree_slots_used(t, ifb_index, err);
        if (r < 0)
            return r;
        if (r > 0)
            return 0; /* other ingress faults still use it */
    }
    r = same_interface(t, ifindex, ifname, true, err);
    if (r < 0 && r != -ENODEV)
        return r;
    bool gone = r == -ENODEV;
    chaos_err_clear(err);
    char what[96];
    if (!gone) {
        snprintf(what, sizeof what, "interface %s: removing the ingress redirect", ifname);
        if ((r = nltc_filter_del(t, ifindex, INGRESS_HANDLE, NET_TREE_MIRRED_PREF,
                                 ETH_P_ALL, what, err)) < 0)
            return r;
        if (json_is_true(json_object_get(st, "made_ingress"))) {
            snprintf(what, sizeof what, "interface %s: removing the ingress qdisc", ifname);
            if ((r = nltc_qdisc_del(t, ifindex, TC_H_INGRESS, 0, what, err)) < 0)
                return r;
        }
    }
    /* The ifb carries nothing of anyone's now; without a record we still
     * remove it when its name says it is ours, never one the record says
     * is another device. */
    bool ours = !json_is_false(json_object_get(st, "made_ifb")) &&
                (recorded_ifb(st) == 0 || recorded_ifb(st) == ifb_index);
    if (ifb_index > 0 && ours && (r = nltc_link_del(t, ifb_index, err)) < 0)
        return r;
    state_drop_ingress(st);
    state_tidy(st);
    return state_write(ns, ifindex, st, err);
}
