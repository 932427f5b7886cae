/* The "network" fault kind: netem on the packets a scope selects, in any
 * network namespace, egress, ingress (through an ifb) or both, programmed
 * through route netlink (libnl), never by forking tc.
 *
 * The tc tree itself (prio root, one band per fault, snapshots of a root
 * someone configured) is net_tree's; the scope's u32 rules are net_scope's;
 * netem's options are netem_params'. This file ties them to the engine: it
 * journals exactly which slot on which interface of which namespace it is
 * about to use before it changes anything, and undoes that after a crash. */
#include "fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "jsonv.h"
#include "net_ns.h"
#include "net_scope.h"
#include "net_tree.h"
#include "netem_params.h"
#include "nl_tc.h"
#include "tc_snapshot.h"
#include "util.h"

/* Undo on a path that already failed uses IGNORE_RESULT (util.h): the
 * first error is the one to report. */

struct net_spec {
    struct net_target target;
    struct netem_params params;
};

/* One side (egress on the interface, or ingress on its ifb) of an applied fault. */
struct net_side {
    bool on;
    int slot;
};

struct net_state {
    char ns_path[288];   /* "" for our own namespace */
    struct nltc_ns_id ns;
    int ns_fd;           /* pins the namespace while the fault lives (-1: our own) */
    int ifindex;
    char ifname[IFNAMSIZ];
    struct net_side egress, ingress;
    struct netem_params params;
    char scope[256];
    char owner[NET_TREE_OWNER_LEN]; /* token of this fault's slots ("" in old journals) */
    bool reverted;
};

/* ---- parse ---- */

static void free_spec(void *p)
{
    struct net_spec *s = p;
    if (!s)
        return;
    net_target_clear(&s->target);
    free(s);
}

static void free_specp(struct net_spec **s)
{
    free_spec(*s);
}

static int network_parse(const json_t *target, const json_t *params, const char *ctx,
                         void **spec, struct fault_info *info, struct chaos_err *err)
{
    char tctx[320], pctx[320];
    fault_field_ctx(tctx, sizeof tctx, ctx, "target");
    fault_field_ctx(pctx, sizeof pctx, ctx, "params");
    __attribute__((cleanup(free_specp))) struct net_spec *s = calloc(1, sizeof *s);
    if (!s)
        return chaos_err_set(err, ENOMEM, "out of memory");
    int r = net_target_parse(target, tctx, &s->target, err);
    if (r < 0)
        return r;
    r = netem_params_parse(params, pctx, &s->params, err);
    if (r < 0)
        return r;
    info->lasting = true;
    info->natural_duration_ms = 0;
    info->needs_duration = "a network fault (it is reverted when the duration ends)";
    *spec = steal_pointer(&s);
    return 0;
}

/* ---- apply ---- */

static void free_state(void *p)
{
    struct net_state *st = p;
    if (st && st->ns_fd >= 0)
        close(st->ns_fd);
    free(st);
}

static void free_statep(struct net_state **st)
{
    free_state(*st);
}

static void nltc_closep(struct nl_tc **t)
{
    nltc_close(*t);
}

/* A socket in the fault's namespace: through the pinned fd while the fault
 * lives, so a namespace whose process or name went away is still reached;
 * else (recovery) through st->ns_path. */
static int open_ns(const struct net_state *st, struct nltc_ns_id *id, struct nl_tc **t,
                   struct chaos_err *err)
{
    char pinned[32];
    if (st->ns_fd >= 0) {
        net_ns_fd_path(st->ns_fd, pinned, sizeof pinned);
        int r = nltc_open(pinned, id, t, err);
        if (r < 0)
            chaos_err_prefix(err, "network namespace of the fault (was %s)", st->ns_path);
        return r;
    }
    return nltc_open(st->ns_path[0] ? st->ns_path : NULL, id, t, err);
}

static json_t *undo_record(const struct net_state *st, const struct tc_snapshot *snap)
{
    json_t *u = json_pack("{s:s, s:I, s:I, s:i, s:s}", "netns", st->ns_path, "ns_dev",
                          (json_int_t)st->ns.dev, "ns_ino", (json_int_t)st->ns.ino, "ifindex",
                          st->ifindex, "ifname", st->ifname);
    if (!u)
        return NULL;
    if (st->owner[0])
        json_object_set_new(u, "owner", json_string(st->owner));
    if (st->egress.on)
        json_object_set_new(u, "egress_slot", json_integer(st->egress.slot));
    if (st->ingress.on)
        json_object_set_new(u, "ingress_slot", json_integer(st->ingress.slot));
    /* A copy of the root we replace, in case the hand-off file is lost. */
    if (snap)
        json_object_set_new(u, "snapshot", tc_snapshot_to_json(snap));
    return u;
}

/* The slot the ifb of ifindex will give us (0 while it does not exist). */
static int plan_ingress(struct nl_tc *t, const struct net_state *st, struct net_tree_plan *plan,
                        struct chaos_err *err)
{
    char ifb[IFNAMSIZ];
    int ifb_index;
    net_tree_ifb_name(st->ifindex, ifb);
    memset(plan, 0, sizeof *plan);
    int r = net_tree_ifb_find(t, &st->ns, st->ifindex, st->ifname, &ifb_index, err);
    if (r == -ENODEV) {
        chaos_err_clear(err);
        plan->slot = 0;
        plan->create_root = true;
        return 0;
    }
    if (r < 0)
        return r; /* a device of the ifb's name that is not ours: refused before any change */
    return net_tree_plan(t, ifb_index, ifb, plan, err);
}

/* Removes what st says is on; used by revert, recover and a failed apply. */
static int remove_sides(struct nl_tc *t, const struct net_state *st, const json_t *snap_fallback,
                        struct chaos_err *err)
{
    int first = 0;
    if (st->egress.on) {
        first = net_tree_uninstall(t, &st->ns, st->ifindex, st->ifname, st->egress.slot,
                                   st->owner[0] ? st->owner : NULL, snap_fallback, err);
    }
    if (st->ingress.on) {
        char ifb[IFNAMSIZ];
        int ifb_index, r;
        struct chaos_err *e = first ? NULL : err;
        net_tree_ifb_name(st->ifindex, ifb);
        r = net_tree_ifb_find(t, &st->ns, st->ifindex, st->ifname, &ifb_index, e);
        if (r == 0)
            r = net_tree_uninstall(t, &st->ns, ifb_index, ifb, st->ingress.slot,
                                   st->owner[0] ? st->owner : NULL, NULL, e);
        else if (r == -ENODEV) /* gone, and its tree with it */
            r = 0;
        if (e && r == 0)
            chaos_err_clear(e);
        if (r == 0)
            r = net_tree_ingress_detach(t, &st->ns, st->ifindex, st->ifname, first ? NULL : err);
        if (first == 0)
            first = r;
    }
    return first;
}

static int apply_locked(const struct fault_env *env, const struct net_spec *s, struct nl_tc *t,
                        struct net_state *st, struct chaos_err *err)
{
    const struct net_target *tg = &s->target;
    struct net_u32_rule *out_rules = NULL, *in_rules = NULL;
    size_t n_out = 0, n_in = 0;
    struct net_tree_plan eplan = {0}, iplan = {0};
    _cleanup_json_ json_t *undo = NULL;
    int r = 0;
    bool egress = tg->direction & NET_EGRESS, ingress = tg->direction & NET_INGRESS;

    if (egress && (r = net_scope_rules(&tg->scope, false, &out_rules, &n_out, err)) < 0)
        goto out;
    if (ingress && (r = net_scope_rules(&tg->scope, true, &in_rules, &n_in, err)) < 0)
        goto out;
    if (egress && (r = net_tree_plan(t, st->ifindex, st->ifname, &eplan, err)) < 0)
        goto out;
    if (ingress && (r = plan_ingress(t, st, &iplan, err)) < 0)
        goto out;
    st->egress = (struct net_side){egress, eplan.slot};
    st->ingress = (struct net_side){ingress, iplan.slot};
    snprintf(eplan.owner, sizeof eplan.owner, "%s", st->owner);

    /* The journal knows every slot before the kernel does. */
    undo = undo_record(st, eplan.snapshot);
    if (!undo) {
        r = chaos_err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    if ((r = fault_journal_undo(env, undo, err)) < 0)
        goto out;

    if (egress && (r = net_tree_install(t, &st->ns, &eplan, &s->params, out_rules, n_out, err)) < 0) {
        st->egress.on = false;
        st->ingress.on = false;
        goto out;
    }
    if (ingress) {
        int ifb_index;
        char ifb[IFNAMSIZ];
        net_tree_ifb_name(st->ifindex, ifb);
        r = net_tree_ingress_attach(t, &st->ns, st->ifindex, st->ifname, &ifb_index, err);
        if (r == 0) {
            /* Plan again now that the ifb exists: under the lock it picks
             * the slot we journalled. */
            struct net_tree_plan now = {0};
            r = net_tree_plan(t, ifb_index, ifb, &now, err);
            if (r == 0 && now.slot != iplan.slot)
                r = chaos_err_set(err, EAGAIN,
                                  "ifb %s changed while this fault was being set up "
                                  "(another tool touched it?); nothing was left applied, "
                                  "try again",
                                  ifb);
            snprintf(now.owner, sizeof now.owner, "%s", st->owner);
            if (r == 0)
                r = net_tree_install(t, &st->ns, &now, &s->params, in_rules, n_in, err);
            net_tree_plan_clear(&now);
            if (r < 0)
                IGNORE_RESULT(net_tree_ingress_detach(t, &st->ns, st->ifindex, st->ifname, NULL));
        }
        if (r < 0) {
            st->ingress.on = false;
            IGNORE_RESULT(remove_sides(t, st, NULL, NULL));
            st->egress.on = false;
            goto out;
        }
    }
out:
    net_tree_plan_clear(&eplan);
    net_tree_plan_clear(&iplan);
    free(out_rules);
    free(in_rules);
    return r;
}

/* Without CAP_NET_ADMIN the first thing to fail would be the lock file or
 * a netlink request, with an error that does not say what is missing. */
static bool have_net_admin(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0}};
    if (syscall(SYS_capget, &hdr, data) < 0)
        return true; /* cannot tell: let the kernel answer */
    return data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32));
}

static int network_apply(const struct fault_env *env, const void *spec, void **state,
                         int64_t *next_step_ms, struct chaos_err *err)
{
    const struct net_spec *s = spec;
    const struct net_target *tg = &s->target;
    *next_step_ms = 0;
    if (!have_net_admin())
        return chaos_err_set(err, EPERM,
                             "network faults need CAP_NET_ADMIN: run chaos as root (uid %d "
                             "lacks it)",
                             (int)geteuid());
    __attribute__((cleanup(free_statep))) struct net_state *st = calloc(1, sizeof *st);
    if (!st)
        return chaos_err_set(err, ENOMEM, "out of memory");
    st->ns_fd = -1;
    if (tg->netns_path)
        snprintf(st->ns_path, sizeof st->ns_path, "%s", tg->netns_path);
    else if (tg->netns_pid > 0)
        snprintf(st->ns_path, sizeof st->ns_path, "/proc/%d/ns/net", (int)tg->netns_pid);
    st->params = s->params;
    net_scope_describe(&tg->scope, st->scope, sizeof st->scope);
    uint64_t token[2];
    if (getrandom(token, sizeof token, 0) != (ssize_t)sizeof token)
        return chaos_err_set(err, errno ? errno : EIO, "cannot draw the fault's owner token: %s",
                             strerror(errno));
    snprintf(st->owner, sizeof st->owner, "%016llx%016llx", (unsigned long long)token[0],
             (unsigned long long)token[1]);

    /* Hold the namespace itself: its process may exit, its name may go,
     * and the revert must still get in (the fault is still installed). */
    if (st->ns_path[0]) {
        int fd = net_ns_pin(st->ns_path, &st->ns, err);
        if (fd < 0)
            return fd;
        st->ns_fd = fd;
    }
    __attribute__((cleanup(nltc_closep))) struct nl_tc *t = NULL;
    struct nltc_ns_id id;
    int r = open_ns(st, &id, &t, err);
    if (r < 0)
        return r;
    if (!st->ns_path[0])
        st->ns = id;
    if (tg->ifname)
        snprintf(st->ifname, sizeof st->ifname, "%s", tg->ifname);
    else if ((r = nltc_default_route_ifname(t, st->ifname, err)) < 0)
        return r;
    if ((r = nltc_link_index(t, st->ifname, &st->ifindex, err)) < 0) {
        if (st->ns_path[0])
            chaos_err_prefix(err, "in network namespace %s", st->ns_path);
        return r;
    }
    int lock = -1;
    if ((r = net_tree_lock(&lock, err)) < 0)
        return r;
    r = apply_locked(env, s, t, st, err);
    net_tree_unlock(lock);
    if (r < 0)
        return r;
    *state = steal_pointer(&st);
    return 0;
}

/* ---- revert / recover ---- */

static int network_revert(const struct fault_env *env, void *state, struct chaos_err *err)
{
    struct net_state *st = state;
    __attribute__((cleanup(nltc_closep))) struct nl_tc *t = NULL;
    struct nltc_ns_id id;
    /* The pinned namespace cannot be gone: a failure to enter it leaves
     * the fault installed, and is a failed revert. */
    int r = open_ns(st, &id, &t, err);
    if (r < 0)
        return r;
    if (id.dev != st->ns.dev || id.ino != st->ns.ino)
        return chaos_err_set(err, ESTALE,
                             "network namespace %s is not the one the fault changed (nsfs device "
                             "%llu inode %llu, now %llu/%llu): the fault may still be installed",
                             st->ns_path[0] ? st->ns_path : "of this process",
                             (unsigned long long)st->ns.dev, (unsigned long long)st->ns.ino,
                             (unsigned long long)id.dev, (unsigned long long)id.ino);
    int lock = -1;
    if ((r = net_tree_lock(&lock, err)) < 0)
        return r;
    r = remove_sides(t, st, NULL, err);
    net_tree_unlock(lock);
    if (r == 0)
        st->reverted = true;
    return r;
}

/* Opens the namespace st->ns for a recovery: at its recorded path if that
 * still names it, else wherever it is held now (st->ns_path is updated).
 * Returns 1 with *t open, 0 when the namespace is gone (err holds the note
 * with code 0), or a negative errno. */
static int recover_open_ns(struct net_state *st, struct nl_tc **t, struct chaos_err *err)
{
    struct nltc_ns_id id;
    struct chaos_err perr = {0};
    char was[sizeof st->ns_path];
    snprintf(was, sizeof was, "%s", st->ns_path[0] ? st->ns_path : "the run's own namespace");
    for (int attempt = 0; attempt < 3; attempt++) {
        int r = nltc_open(st->ns_path[0] ? st->ns_path : NULL, &id, t, &perr);
        if (r == 0 && id.dev == st->ns.dev && id.ino == st->ns.ino)
            return 1;
        nltc_close(*t);
        *t = NULL;
        if (r < 0 && r != -ENOENT && attempt > 0)
            return chaos_err_set(err, -r, "network namespace (nsfs device %llu inode %llu) is "
                                 "at %s, but: %s; the fault may still be installed",
                                 (unsigned long long)st->ns.dev, (unsigned long long)st->ns.ino,
                                 st->ns_path, perr.msg);
        /* Not (or no longer) at that path: look where else it is held. */
        char path[sizeof st->ns_path], unseen[192];
        r = net_ns_find(&st->ns, path, sizeof path, unseen, sizeof unseen, err);
        if (r < 0)
            return r;
        if (r == 0) {
            chaos_err_clear(err);
            snprintf(err->msg, sizeof err->msg,
                     "its network namespace (nsfs device %llu inode %llu, was %s) is gone, "
                     "and its qdiscs with it%s%s",
                     (unsigned long long)st->ns.dev, (unsigned long long)st->ns.ino, was,
                     unseen[0] ? "; " : "", unseen);
            return 0;
        }
        snprintf(st->ns_path, sizeof st->ns_path, "%s", path);
    }
    return chaos_err_set(err, EAGAIN,
                         "network namespace (nsfs device %llu inode %llu) kept moving while "
                         "recovery looked for it; the fault may still be installed: run "
                         "`chaos recover` again",
                         (unsigned long long)st->ns.dev, (unsigned long long)st->ns.ino);
}

static int network_recover(const json_t *undo, struct chaos_err *err)
{
    struct net_state st = {.ns_fd = -1};
    const char *ns = json_string_value(json_object_get(undo, "netns"));
    const char *ifname = json_string_value(json_object_get(undo, "ifname"));
    const json_t *ifindex = json_object_get(undo, "ifindex");
    if (!ns || !ifname || !json_is_integer(ifindex) || strlen(ifname) >= IFNAMSIZ ||
        strlen(ns) >= sizeof st.ns_path)
        return chaos_err_set(err, EINVAL,
                             "network undo record: needs \"netns\", \"ifname\" and \"ifindex\"");
    snprintf(st.ns_path, sizeof st.ns_path, "%s", ns);
    snprintf(st.ifname, sizeof st.ifname, "%s", ifname);
    st.ifindex = (int)json_integer_value(ifindex);
    st.ns.dev = (uint64_t)json_integer_value(json_object_get(undo, "ns_dev"));
    st.ns.ino = (uint64_t)json_integer_value(json_object_get(undo, "ns_ino"));
    const char *owner = json_string_value(json_object_get(undo, "owner"));
    if (owner) {
        if (strlen(owner) >= sizeof st.owner)
            return chaos_err_set(err, EINVAL, "network undo record: \"owner\" is too long");
        snprintf(st.owner, sizeof st.owner, "%s", owner);
    }
    const json_t *es = json_object_get(undo, "egress_slot"), *is = json_object_get(undo, "ingress_slot");
    if (json_is_integer(es)) {
        st.egress = (struct net_side){true, (int)json_integer_value(es)};
    }
    if (json_is_integer(is)) {
        st.ingress = (struct net_side){true, (int)json_integer_value(is)};
    }
    if ((st.egress.on && (st.egress.slot < 0 || st.egress.slot >= NET_TREE_SLOTS)) ||
        (st.ingress.on && (st.ingress.slot < 0 || st.ingress.slot >= NET_TREE_SLOTS)))
        return chaos_err_set(err, EINVAL, "network undo record: slot out of range");

    if (st.ns.dev == 0 && st.ns.ino == 0)
        return chaos_err_set(err, EINVAL, "network undo record: no namespace identity "
                                          "(\"ns_dev\", \"ns_ino\")");
    __attribute__((cleanup(nltc_closep))) struct nl_tc *t = NULL;
    int r = recover_open_ns(&st, &t, err);
    if (r <= 0)
        return r; /* gone (a note in err), or not reachable */
    int lock = -1;
    if ((r = net_tree_lock(&lock, err)) < 0)
        return r;
    r = remove_sides(t, &st, json_object_get(undo, "snapshot"), err);
    net_tree_unlock(lock);
    return r;
}

/* "delay 100ms on eth0 egress, dst 10.0.0.7/32 in netns /run/netns/app":
 * the one form of both the applied fault and the plan. ns is "" or starts
 * with a space. */
static void describe_line(char *buf, size_t size, const char *prefix,
                          const struct netem_params *p, const char *ifname, bool egress,
                          bool ingress, const char *scope, const char *ns)
{
    char what[256];
    netem_params_describe(p, what, sizeof what);
    const char *dir = egress && ingress ? "both ways" : ingress ? "ingress" : "egress";
    snprintf(buf, size, "%s%s on %s %s, %s%s", prefix, what, ifname, dir, scope, ns);
}

static void network_describe(const void *state, char *buf, size_t size)
{
    const struct net_state *st = state;
    char ns[300] = "";
    if (st->ns_path[0])
        snprintf(ns, sizeof ns, " in netns %s", st->ns_path);
    describe_line(buf, size, st->reverted ? "removed " : "", &st->params, st->ifname,
                  st->egress.on, st->ingress.on, st->scope, ns);
}

static void network_plan(const void *spec, char *buf, size_t size)
{
    const struct net_spec *s = spec;
    const struct net_target *tg = &s->target;
    char scope[256], ns[300] = "";
    net_scope_describe(&tg->scope, scope, sizeof scope);
    if (tg->netns_path)
        snprintf(ns, sizeof ns, " in netns %s", tg->netns_path);
    else if (tg->netns_pid > 0)
        snprintf(ns, sizeof ns, " in the netns of pid %d", (int)tg->netns_pid);
    describe_line(buf, size, "", &s->params, tg->ifname ? tg->ifname : "the default-route interface",
                  tg->direction & NET_EGRESS, tg->direction & NET_INGRESS, scope, ns);
}

const struct fault_ops fault_network_ops = {
    .kind = "network",
    .parse = network_parse,
    .free_spec = free_spec,
    .apply = network_apply,
    .step = NULL,
    .revert = network_revert,
    .recover = network_recover,
    .describe = network_describe,
    .plan = network_plan,
    .free_state = free_state,
};
