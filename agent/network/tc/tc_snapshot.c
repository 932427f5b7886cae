#include "tc_snapshot.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>

#include "nl_tc.h"
#include "tc_canon.h"
#include "tc_msg.h"
#include "tc_plan.h"
#include "util.h"

/* Bounds for what a journal may hand us (a dump is bounded by the kernel). */
#define MAX_OBJS 65536

/* The snapshot keeps each object as a netlink message in canonical form:
 * what the kernel dumped, statistics and other output-only fields removed,
 * ifindex/refcount/sequence zeroed. The same form of a fresh dump is what
 * restore compares against, and replay messages are derived from it. */
struct tc_snapshot {
    size_t n, cap;
    struct nlmsghdr **m;
};

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
    if (nlh->nlmsg_type != mv->expect || nlh->nlmsg_len < TCM_ATTR_OFF ||
        nlh->nlmsg_len > TCM_MAX_MSG) {
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

/* The canonical copy of m, appended to s. */
static int add_canon(struct tc_snapshot *s, const struct nlmsghdr *m, struct canon_cx *c)
{
    struct nlmsghdr *copy;
    int r = canon_dup(m, &copy, c);
    if (r < 0)
        return r;
    if (snap_add(s, copy) < 0) {
        free(copy);
        return chaos_err_set(c->err, ENOMEM, "out of memory");
    }
    return 0;
}

/* The classes users made, under the qdiscs already taken (the first
 * nqdisc of s); a changed hfsc root class is refused. */
static int take_classes(struct nl_tc *t, int ifindex, const char *ifname, struct tc_snapshot *s,
                        size_t nqdisc, struct canon_cx *c)
{
    struct chaos_err *err = c->err;
    __attribute__((cleanup(msgvec_freep))) struct msgvec cl = {0};
    int r;
    if ((r = dump(t, RTM_GETTCLASS, ifindex, 0, ifname, &cl, err)) < 0)
        return r;
    for (size_t i = 0; i < cl.n; i++) {
        const struct tcmsg *k = tcm_of(cl.v[i]);
        bool user_classes = false;
        for (size_t j = 0; j < nqdisc; j++)
            if (tcm_of(s->m[j])->tcm_handle == TC_H_MAJ(k->tcm_handle))
                user_classes = canon_user_classes(tcm_kind(s->m[j]));
        /* Classes of ingress, of default qdiscs, and those a qdisc makes
         * by itself are not configuration. */
        if (!user_classes)
            continue;
        /* hfsc's own root class (minor 0) comes with the qdisc; as it
         * comes, it has no service curves. Changed curves would need a
         * change request, which we do not replay. */
        if (TC_H_MIN(k->tcm_handle) == 0) {
            const struct nlattr *o = tcm_find_attr(cl.v[i], TCA_OPTIONS);
            if (!o || tcm_alen(o) == 0)
                continue;
            tcm_describe(cl.v[i], c->what, sizeof c->what);
            return canon_refuse(c, "it is the root class its qdisc makes, and it was changed "
                                    "(service curves set on it); only added classes are "
                                    "replayed");
        }
        if ((r = add_canon(s, cl.v[i], c)) < 0)
            return r;
    }

    return 0;
}

/* The filters of every qdisc and class taken: a filter dump lists one
 * block, a qdisc's or a class's. */
static int take_filters(struct nl_tc *t, int ifindex, const char *ifname, struct tc_snapshot *s,
                        struct canon_cx *c)
{
    struct chaos_err *err = c->err;
    int r;
    size_t nowners = s->n;
    for (size_t i = 0; i < nowners; i++) {
        __attribute__((cleanup(msgvec_freep))) struct msgvec fl = {0};
        if ((r = dump(t, RTM_GETTFILTER, ifindex, tcm_of(s->m[i])->tcm_handle, ifname, &fl, err)) <
            0)
            return r;
        for (size_t j = 0; j < fl.n; j++) {
            if ((r = add_canon(s, fl.v[j], c)) < 0)
                return r;
        }
    }
    return 0;
}

int tc_snapshot_take(struct nl_tc *t, int ifindex, const char *ifname, struct tc_snapshot **out,
                     struct chaos_err *err)
{
    _cleanup_snap_ struct tc_snapshot *s = calloc(1, sizeof *s);
    __attribute__((cleanup(msgvec_freep))) struct msgvec qd = {0};
    if (!s)
        return chaos_err_set(err, ENOMEM, "out of memory");
    struct canon_cx c = {.ifname = ifname, .err = err, .what = "a dumped object"};
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
            if (qd.v[i] == root || tcm_is_ingress(q) || q->tcm_handle == 0)
                continue;
            tcm_describe(qd.v[i], c.what, sizeof c.what);
            return canon_refuse(&c,
                                "it sits under the kernel's default root qdisc, which the fault "
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
        if ((k > 0 && qm == root) || tcm_is_ingress(q) || q->tcm_handle == 0)
            continue;
        if ((r = add_canon(s, qm, &c)) < 0)
            return r;
    }
    size_t nqdisc = s->n;

    if ((r = take_classes(t, ifindex, ifname, s, nqdisc, &c)) < 0 ||
        (r = take_filters(t, ifindex, ifname, s, &c)) < 0)
        return r;
    if ((r = plan_check(s->m, s->n, ifname, err)) < 0)
        return r;
    *out = steal_pointer(&s);
    return 0;
}

/* ---- Restore ---- */

static int replay_one(struct nl_tc *t, int ifindex, const char *ifname, const struct nlmsghdr *m,
                      bool auto_handle, struct chaos_err *err)
{
    __attribute__((cleanup(mbuf_freep))) struct mbuf b = {0};
    struct canon_cx c = {.replay = true, .ifname = ifname, .err = err};
    int r = canon(m, &b, &c);
    if (r < 0)
        return r;
    struct tcmsg *tm = (struct tcmsg *)(b.p + TCM_OFF);
    tm->tcm_ifindex = ifindex;
    if (auto_handle)
        tm->tcm_handle = 0;
    if (m->nlmsg_type == RTM_NEWTCLASS)
        tm->tcm_info = 0;
    ((struct nlmsghdr *)b.p)->nlmsg_type = m->nlmsg_type;
    struct nl_msg *msg = nltc_msg_from(b.p, b.len, NLM_F_CREATE | NLM_F_EXCL);
    if (!msg)
        return chaos_err_set(err, ENOMEM, "out of memory");
    char what[256];
    tcm_describe(m, c.what, sizeof c.what);
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
    IGNORE_RESULT(tcm_chain(m, &chain)); /* no TCA_CHAIN: chain 0, preset */
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
    const struct nlattr *oa = tcm_find_attr(a, TCA_OPTIONS), *ob = tcm_find_attr(b, TCA_OPTIONS);
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
            tcm_describe(a[i].m, w, sizeof w);
            how = "is missing";
        } else if (c > 0) {
            tcm_describe(b[j].m, w, sizeof w);
            how = "is there but was not before";
        } else if (a[i].m->nlmsg_len != b[j].m->nlmsg_len ||
                   memcmp(a[i].m, b[j].m, a[i].m->nlmsg_len) != 0) {
            tcm_describe(a[i].m, w, sizeof w);
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
        if (tcm_is_ingress(q) || q->tcm_handle == 0)
            continue;
        char w[192];
        tcm_describe(qd.v[i], w, sizeof w);
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
    int r = plan_build(s->m, s->n, ifname, &p, err);
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
        if (!txt || len % 2 || len < 2 * TCM_ATTR_OFF || len > 2 * TCM_MAX_MSG)
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
        struct canon_cx c = {.err = err};
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
    int r = plan_check(s->m, s->n, NULL, err);
    if (r < 0)
        return r;
    *out = steal_pointer(&s);
    return 0;
}
