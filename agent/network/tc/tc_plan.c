#include "tc_plan.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>

#include "tc_canon.h"
#include "util.h"

/* ---- Replay order ---- */

/* The snapshot's objects, as tc_snapshot keeps them: a view, so that struct
 * tc_snapshot stays private to tc_snapshot.c. */
struct objs {
    struct nlmsghdr *const *m;
    size_t n;
};

void plan_freep(struct plan *p)
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
    tcm_describe(m, w, sizeof w);
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
static int plan_u32(const struct objs *s, const char *ifname, struct run *runs, size_t nruns,
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
                struct canon_cx c = {.ifname = ifname, .err = err};
                tcm_describe(m, c.what, sizeof c.what);
                char par[32];
                tcm_fmt_handle(par, sizeof par, au[i].a);
                return canon_refuse(&c,
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
                    p->v[p->n++] =
                        root ? (struct plan_op){r->header, false} : (struct plan_op){idx, true};
                    break;
                }
                if (root)
                    return invalid(ifname, err, m, "u32 root hash table outside 800:-fff:");
                p->v[p->n++] = (struct plan_op){idx, false};
            }
        }
        g = end;
    }
    for (size_t i = 0; i < nruns; i++)
        while (runs[i].ht_left > 0) {
            size_t idx = hts[runs[i].ht_at + --runs[i].ht_left];
            if (auto_ht(tcm_of(s->m[idx])->tcm_handle))
                return invalid(ifname, err, s->m[idx], "u32 hash table without its instance");
            p->v[p->n++] = (struct plan_op){idx, false};
        }
    return 0;
}

/* Each filter entry once, and each instance in one piece (as a dump has
 * them). keys is scratch room for max(nf, nruns) entries. */
static int check_unique(const struct objs *s, const char *ifname, const struct run *runs,
                        size_t nruns, struct hkey *keys, size_t nf, struct chaos_err *err)
{
    qsort(keys, nf, sizeof *keys, hkey_cmp);
    for (size_t i = 1; i < nf; i++)
        if (keys[i].a == keys[i - 1].a && keys[i].b == keys[i - 1].b &&
            keys[i].c == keys[i - 1].c && keys[i].d == keys[i - 1].d)
            return invalid(ifname, err, s->m[keys[i].idx], "filter entry repeated");
    for (size_t i = 0; i < nruns; i++) {
        const struct nlmsghdr *m = s->m[runs[i].first];
        const struct tcmsg *t = tcm_of(m);
        uint32_t chain = 0;
        IGNORE_RESULT(tcm_chain(m, &chain)); /* no TCA_CHAIN: chain 0, preset */
        keys[i] = (struct hkey){t->tcm_parent, chain, TC_H_MAJ(t->tcm_info), 0, runs[i].first};
    }
    qsort(keys, nruns, sizeof *keys, hkey_cmp);
    for (size_t i = 1; i < nruns; i++)
        if (keys[i].a == keys[i - 1].a && keys[i].b == keys[i - 1].b && keys[i].c == keys[i - 1].c)
            return invalid(ifname, err, s->m[keys[i].idx], "filter instance split in two");
    return 0;
}

/* u32 lists, under each of its instances, every hash table of the qdisc
 * with the instance's priority: two instances at one priority (two chains,
 * or the qdisc's block and a class's) show the same tables, and which one
 * each starts classifying from (its root) cannot be read back from a dump.
 * Guessing could swap them silently, so that is refused. keys is scratch. */
static int check_u32_roots(const struct objs *s, const char *ifname, const struct run *runs,
                           size_t nruns, struct hkey *keys, struct chaos_err *err)
{
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
            tcm_describe(s->m[keys[i - 1].idx], other, sizeof other);
            snprintf(why, sizeof why,
                     "u32 lists the hash tables of all its filters at one priority under each "
                     "of them, so which table this one starts from cannot be read back (also "
                     "here: %s); give them different priorities",
                     other);
            return invalid(ifname, err, s->m[keys[i].idx], why);
        }
    return 0;
}

static int plan_filters(const struct objs *s, const char *ifname, size_t first, struct plan *p,
                        struct chaos_err *err)
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
        if (tcm_chain(m, &chain) < 0)
            return invalid(ifname, err, m, "filter without a chain");
        keys[i - first] =
            (struct hkey){t->tcm_parent, chain, TC_H_MAJ(t->tcm_info), t->tcm_handle, i};
        if (nruns == 0 || t->tcm_parent != pparent || chain != pchain ||
            TC_H_MAJ(t->tcm_info) != TC_H_MAJ(pinfo)) {
            runs[nruns++] = (struct run){.first = i,
                                         .header = SIZE_MAX,
                                         .ht_at = nhts,
                                         .u32 = strcmp(tcm_kind(m), "u32") == 0};
            pparent = t->tcm_parent, pchain = chain, pinfo = t->tcm_info;
        }
        struct run *r = &runs[nruns - 1];
        r->n++;
        if (t->tcm_info != pinfo || strcmp(tcm_kind(m), tcm_kind(s->m[r->first])) != 0)
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
    int rc = check_unique(s, ifname, runs, nruns, keys, nf, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nruns; i++) {
        struct run *r = &runs[i];
        if (r->header == SIZE_MAX)
            return invalid(ifname, err, s->m[r->first], "filter entries without their instance");
        if (r->u32 && r->ht_n == 0)
            return invalid(ifname, err, s->m[r->first], "u32 instance without its root table");
        /* An instance with nothing in it (fw allows that) is made from its
         * header alone. */
        if (!r->u32 && r->n == 1)
            p->v[p->n++] = (struct plan_op){r->header, false};
    }
    if ((rc = check_u32_roots(s, ifname, runs, nruns, keys, err)) < 0)
        return rc;
    rc = plan_u32(s, ifname, runs, nruns, hts, p, err);
    if (rc < 0)
        return rc;
    for (size_t i = first; i < s->n; i++) {
        const struct tcmsg *t = tcm_of(s->m[i]);
        if (t->tcm_handle == 0 ||
            (strcmp(tcm_kind(s->m[i]), "u32") == 0 && TC_U32_KEY(t->tcm_handle) == 0))
            continue;
        p->v[p->n++] = (struct plan_op){i, false};
    }
    return 0;
}

/* The order to replay s in: each qdisc, then its classes parents first
 * (creating a class under a leaf throws the leaf's qdisc away, so child
 * qdiscs come after all classes of their parent), then the qdiscs under
 * them, breadth first; filters last (they name classes). Checks that s is
 * one consistent tree. */
/* Appends the classes of qdisc qi to the plan, each after its parent
 * (cq: classes by major, newest first; ch: classes by handle). */
static int place_classes(const struct objs *s, const char *ifname, size_t qi, bool user_classes,
                         const struct hkey *cq, const struct hkey *ch, size_t nc, bool *done,
                         struct plan *p, struct chaos_err *err)
{
    uint32_t qhandle = tcm_of(s->m[qi])->tcm_handle;
    long c0 = hkey_find(cq, nc, qhandle);
    if (c0 >= 0 && !user_classes)
        return invalid(ifname, err, s->m[cq[c0].idx], "a class of a qdisc without classes");
    /* htb allows 8 levels; a few more rounds than that settle any
     * valid order, and bound the work on a crafted one. */
    for (int round = 0; c0 >= 0 && round < 12; round++)
        for (size_t i = (size_t)c0; i < nc && cq[i].a == qhandle; i++) {
            size_t ci = cq[i].idx;
            uint32_t par = tcm_of(s->m[ci])->tcm_parent;
            if (done[ci] || strcmp(tcm_kind(s->m[ci]), tcm_kind(s->m[qi])) != 0)
                continue;
            long pc = par == TC_H_ROOT || par == qhandle ? -1 : hkey_find(ch, nc, par);
            if (pc >= 0 ? TC_H_MAJ(par) == qhandle && done[ch[pc].idx]
                        : (par == TC_H_ROOT || par == qhandle)) {
                done[ci] = true;
                p->v[p->n++] = (struct plan_op){ci, false};
            }
        }
    for (long i = c0; i >= 0 && (size_t)i < nc && cq[i].a == qhandle; i++)
        if (!done[cq[i].idx])
            return invalid(ifname, err, s->m[cq[i].idx],
                           "class whose parent is missing, of another kind, or too deep");
    return 0;
}

/* Every qdisc and class was reached from the root, and every filter sits
 * under one of them. */
static int check_all_placed(const struct objs *s, const char *ifname, size_t nq, size_t nc,
                            const struct hkey *qh, const struct hkey *ch, const bool *done,
                            struct chaos_err *err)
{
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
    return 0;
}

static int plan_tree(const struct objs *s, const char *ifname, struct plan *p,
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
        if (t->tcm_handle == 0 || TC_H_MIN(t->tcm_handle) || tcm_is_ingress(t) ||
            (i > 0 && t->tcm_parent == TC_H_ROOT))
            return invalid(ifname, err, s->m[i], "not a qdisc we would have kept");
        qh[i] = (struct hkey){t->tcm_handle, 0, 0, 0, i};
        qp[i] = (struct hkey){TC_H_MAJ(t->tcm_parent), 0, 0, 0, i};
    }
    for (size_t i = 0; i < nc; i++) {
        const struct tcmsg *t = tcm_of(s->m[nq + i]);
        if (TC_H_MIN(t->tcm_handle) == 0)
            return invalid(ifname, err, s->m[nq + i], "not a class we would have kept");
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
        bool user_classes = canon_user_classes(tcm_kind(s->m[qi]));
        p->v[p->n++] = (struct plan_op){qi, false};
        int rc = place_classes(s, ifname, qi, user_classes, cq, ch, nc, done, p, err);
        if (rc < 0)
            return rc;
        for (long i = hkey_find(qp, nq, qhandle); i >= 0 && (size_t)i < nq && qp[i].a == qhandle;
             i++) {
            size_t ci = qp[i].idx;
            uint32_t par = tcm_of(s->m[ci])->tcm_parent;
            if (done[ci])
                continue;
            if (user_classes && hkey_find(ch, nc, par) < 0)
                return invalid(ifname, err, s->m[ci], "qdisc under a class that is missing");
            done[ci] = true;
            queue[tail++] = ci;
        }
    }
    int rc = check_all_placed(s, ifname, nq, nc, qh, ch, done, err);
    if (rc < 0)
        return rc;
    return plan_filters(s, ifname, nq + nc, p, err);
}

int plan_build(struct nlmsghdr *const *m, size_t n, const char *ifname, struct plan *p,
               struct chaos_err *err)
{
    const struct objs s = {m, n};
    return plan_tree(&s, ifname, p, err);
}

int plan_check(struct nlmsghdr *const *m, size_t n, const char *ifname, struct chaos_err *err)
{
    __attribute__((cleanup(plan_freep))) struct plan p = {0};
    return plan_build(m, n, ifname, &p, err);
}
