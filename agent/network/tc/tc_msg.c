#include "tc_msg.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>

const struct tcmsg *tcm_of(const struct nlmsghdr *m)
{
    return (const struct tcmsg *)((const char *)m + TCM_OFF);
}

bool tcm_is_ingress(const struct tcmsg *t)
{
    /* ingress and clsact both sit at ffff:fff1 with handle ffff:. */
    return t->tcm_parent == TC_H_INGRESS || TC_H_MAJ(t->tcm_handle) == TC_H_MAJ(TC_H_INGRESS);
}

/* ---- Reading attributes ---- */

const struct nlattr *tcm_attr_next(struct tcm_iter *it)
{
    if (it->rem < NLA_HDRLEN) {
        it->bad |= it->rem != 0;
        return NULL;
    }
    const struct nlattr *a = (const struct nlattr *)it->p;
    if (a->nla_len < NLA_HDRLEN || a->nla_len > it->rem) {
        it->bad = true;
        return NULL;
    }
    size_t step = NLA_ALIGN(a->nla_len);
    if (step > it->rem)
        step = it->rem;
    it->p += step;
    it->rem -= step;
    return a;
}

const void *tcm_adata(const struct nlattr *a)
{
    return (const unsigned char *)a + NLA_HDRLEN;
}

size_t tcm_alen(const struct nlattr *a)
{
    return a->nla_len - NLA_HDRLEN;
}

int tcm_atype(const struct nlattr *a)
{
    return a->nla_type & NLA_TYPE_MASK;
}

struct tcm_iter tcm_msg_attrs(const struct nlmsghdr *m)
{
    return (struct tcm_iter){(const unsigned char *)m + TCM_ATTR_OFF, m->nlmsg_len - TCM_ATTR_OFF,
                             false};
}

struct tcm_iter tcm_nest_attrs(const struct nlattr *a)
{
    return (struct tcm_iter){tcm_adata(a), tcm_alen(a), false};
}

const struct nlattr *tcm_find_attr(const struct nlmsghdr *m, int type)
{
    struct tcm_iter it = tcm_msg_attrs(m);
    const struct nlattr *a;
    while ((a = tcm_attr_next(&it)))
        if (tcm_atype(a) == type)
            return a;
    return NULL;
}

/* Messages in a snapshot have passed canon(), so TCA_KIND is there and
 * ends in a NUL. */
const char *tcm_kind(const struct nlmsghdr *m)
{
    const struct nlattr *a = tcm_find_attr(m, TCA_KIND);
    return a ? tcm_adata(a) : "?";
}

int tcm_chain(const struct nlmsghdr *m, uint32_t *chain)
{
    const struct nlattr *a = tcm_find_attr(m, TCA_CHAIN);
    if (!a || tcm_alen(a) < sizeof(uint32_t))
        return -1;
    memcpy(chain, tcm_adata(a), sizeof *chain);
    return 0;
}

/* ---- Names, for messages a person can act on ---- */

void tcm_fmt_handle(char *buf, size_t len, uint32_t h)
{
    if (h == TC_H_ROOT)
        snprintf(buf, len, "root");
    else if (h == TC_H_INGRESS)
        snprintf(buf, len, "ingress");
    else if (TC_H_MIN(h))
        snprintf(buf, len, "%x:%x", TC_H_MAJ(h) >> 16, TC_H_MIN(h));
    else
        snprintf(buf, len, "%x:", TC_H_MAJ(h) >> 16);
}

static const char *proto_name(uint16_t p, char *buf, size_t len)
{
    switch (p) {
    case 0x0003:
        return "all";
    case 0x0800:
        return "ip";
    case 0x86dd:
        return "ipv6";
    case 0x0806:
        return "arp";
    case 0x8100:
        return "802.1Q";
    default:
        snprintf(buf, len, "0x%04x", p);
        return buf;
    }
}

/* "qdisc htb 1: (root)", "class htb 1:10", "filter u32 800::800 at 1:
 * chain 0 prio 1 protocol ip". */
void tcm_describe(const struct nlmsghdr *m, char *buf, size_t len)
{
    const struct tcmsg *t = tcm_of(m);
    const char *kind = tcm_kind(m);
    char h[32], p[32], pr[16];
    tcm_fmt_handle(h, sizeof h, t->tcm_handle);
    tcm_fmt_handle(p, sizeof p, t->tcm_parent);
    if (m->nlmsg_type == RTM_NEWQDISC) {
        if (t->tcm_parent == TC_H_ROOT)
            snprintf(buf, len, "qdisc %s %s (root)", kind, h);
        else
            snprintf(buf, len, "qdisc %s %s at %s", kind, h, p);
    } else if (m->nlmsg_type == RTM_NEWTCLASS) {
        snprintf(buf, len, "class %s %s", kind, h);
    } else {
        uint32_t fh = t->tcm_handle, chain = 0;
        IGNORE_RESULT(tcm_chain(m, &chain)); /* no TCA_CHAIN: chain 0, preset */
        if (fh == 0)
            h[0] = '\0';
        else if (strcmp(kind, "u32") == 0 && TC_U32_KEY(fh) == 0)
            snprintf(h, sizeof h, "%x:", TC_U32_USERHTID(fh));
        else if (strcmp(kind, "u32") == 0 && TC_U32_HASH(fh))
            snprintf(h, sizeof h, "%x:%x:%x", TC_U32_USERHTID(fh), TC_U32_HASH(fh),
                     TC_U32_NODE(fh));
        else if (strcmp(kind, "u32") == 0)
            snprintf(h, sizeof h, "%x::%x", TC_U32_USERHTID(fh), TC_U32_NODE(fh));
        else
            snprintf(h, sizeof h, "0x%x", fh);
        snprintf(buf, len, "filter %s%s%s at %s chain %u prio %u protocol %s", kind, *h ? " " : "",
                 h, p, chain, TC_H_MAJ(t->tcm_info) >> 16,
                 proto_name(ntohs((uint16_t)TC_H_MIN(t->tcm_info)), pr, sizeof pr));
    }
}

/* ---- Writing messages ---- */

void mbuf_freep(struct mbuf *b)
{
    free(b->p);
}

static void *mbuf_grow(struct mbuf *b, size_t n)
{
    size_t need = b->len + NLA_ALIGN(n);
    if (b->oom || need > TCM_MAX_MSG) {
        b->oom = true;
        return NULL;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    void *at = b->p + b->len;
    memset(at, 0, NLA_ALIGN(n));
    b->len = need;
    return at;
}

void mbuf_put(struct mbuf *b, const void *d, size_t n)
{
    void *at = mbuf_grow(b, n);
    if (at)
        memcpy(at, d, n);
}

/* Starts an attribute of the given raw type (flags kept); returns its
 * offset for mbuf_end. */
size_t mbuf_start(struct mbuf *b, uint16_t rawtype)
{
    size_t off = b->len;
    struct nlattr *a = mbuf_grow(b, NLA_HDRLEN);
    if (a)
        a->nla_type = rawtype;
    return off;
}

void mbuf_end(struct mbuf *b, size_t off)
{
    if (b->oom)
        return;
    struct nlattr *a = (struct nlattr *)(b->p + off);
    a->nla_len = (uint16_t)(b->len - off);
}

void mbuf_attr(struct mbuf *b, uint16_t rawtype, const void *d, size_t n)
{
    size_t off = mbuf_start(b, rawtype);
    mbuf_put(b, d, n);
    /* The length excludes the padding after the payload. */
    if (!b->oom)
        ((struct nlattr *)(b->p + off))->nla_len = (uint16_t)(NLA_HDRLEN + n);
}

void mbuf_copy(struct mbuf *b, const struct nlattr *a)
{
    mbuf_attr(b, a->nla_type, tcm_adata(a), tcm_alen(a));
}
