/* The tc netlink messages tc_snapshot keeps, read and written by hand:
 * walking a message's attributes with every length checked (a journal can
 * hand us damaged ones), building a message attribute by attribute in a
 * growing buffer, and naming the object a message stands for, for errors a
 * person can act on. Nothing here talks to the kernel. */
#ifndef CHAOS_TC_MSG_H
#define CHAOS_TC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

/* The largest message we build, or accept from a journal (a dump is
 * bounded by the kernel). */
#define TCM_MAX_MSG 65536

/* Where a tc message's struct tcmsg and its attributes start. */
#define TCM_OFF NLMSG_HDRLEN
#define TCM_ATTR_OFF (NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct tcmsg)))

/* The struct tcmsg of m; m must be at least TCM_ATTR_OFF bytes long. */
const struct tcmsg *tcm_of(const struct nlmsghdr *m);

/* True for the ingress and clsact qdiscs, which the network fault leaves
 * alone. */
bool tcm_is_ingress(const struct tcmsg *t);

/* ---- Reading attributes ---- */

/* A stream of attributes: a message's, or a nest's payload. */
struct tcm_iter {
    const unsigned char *p;
    size_t rem;
    bool bad; /* the stream ended inside an attribute */
};

/* The attributes of m, which must be at least TCM_ATTR_OFF bytes long. */
struct tcm_iter tcm_msg_attrs(const struct nlmsghdr *m);
/* The attributes nested inside a. */
struct tcm_iter tcm_nest_attrs(const struct nlattr *a);
/* The next attribute, whole inside the stream, or NULL at its end. When the
 * stream ends inside an attribute, NULL is returned and it->bad is set:
 * callers check it after their loop. */
const struct nlattr *tcm_attr_next(struct tcm_iter *it) __attribute__((warn_unused_result));

/* An attribute's payload, its length, and its type without the nested and
 * byte-order flags. */
const void *tcm_adata(const struct nlattr *a);
size_t tcm_alen(const struct nlattr *a);
int tcm_atype(const struct nlattr *a);

/* The first top-level attribute of m with the given type, or NULL. */
const struct nlattr *tcm_find_attr(const struct nlmsghdr *m, int type)
    __attribute__((warn_unused_result));
/* m's TCA_KIND, or "?" without one. Trusts the kind to end in a NUL: only
 * for messages that passed canon(). */
const char *tcm_kind(const struct nlmsghdr *m);
/* Stores m's TCA_CHAIN in *chain and returns 0; -1 without a (whole) one,
 * *chain untouched, so a caller can preset the default. */
int tcm_chain(const struct nlmsghdr *m, uint32_t *chain);

/* ---- Names, for messages a person can act on ---- */

/* "root", "ingress", "1:" or "1:10"; cut to fit len. */
void tcm_fmt_handle(char *buf, size_t len, uint32_t h);
/* "qdisc htb 1: (root)", "class htb 1:10", "filter u32 800::800 at 1:
 * chain 0 prio 1 protocol ip"; cut to fit len. m must be at least
 * TCM_ATTR_OFF bytes long. */
void tcm_describe(const struct nlmsghdr *m, char *buf, size_t len);

/* ---- Writing messages ---- */

/* A message being built. Writers never fail one by one: running out of
 * memory, or growing past TCM_MAX_MSG, sets oom and makes every later write
 * a no-op, so the builder checks oom once at the end. Start from {0}. */
struct mbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
};

/* For __attribute__((cleanup)): frees the buffer (p may be NULL). */
void mbuf_freep(struct mbuf *b);
/* Appends n bytes, zero-padded to the netlink alignment. */
void mbuf_put(struct mbuf *b, const void *d, size_t n);
/* Starts a nested attribute of the given raw type (flags kept); returns its
 * offset, which mbuf_end needs to close it. */
size_t mbuf_start(struct mbuf *b, uint16_t rawtype) __attribute__((warn_unused_result));
/* Closes the attribute mbuf_start opened at off: its length spans all that
 * was written since. */
void mbuf_end(struct mbuf *b, size_t off);
/* Appends an attribute of the given raw type with n bytes of payload. */
void mbuf_attr(struct mbuf *b, uint16_t rawtype, const void *d, size_t n);
/* Appends a copy of attribute a. */
void mbuf_copy(struct mbuf *b, const struct nlattr *a);

#endif
