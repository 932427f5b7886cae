/* The canonical form of a tc object: the message that recreates it, with
 * statistics and other output-only fields removed and ifindex, refcount and
 * sequence zeroed, for the kinds and attributes we have verified to replay
 * exactly; everything else is refused. The same rules keep a dumped object,
 * check one read back from a journal, and turn a kept one into the request
 * that replays it. */
#ifndef CHAOS_TC_CANON_H
#define CHAOS_TC_CANON_H

#include <stdbool.h>
#include "chaos_err.h"
#include "tc_msg.h"

/* What canon() is doing, and where its errors go. */
struct canon_cx {
    bool replay;        /* rewrite for sending rather than for keeping */
    const char *ifname; /* the interface dumped; NULL: the object comes from a journal */
    char what[192];     /* the object at hand */
    struct chaos_err *err;
};

/* Appends to out (empty) the canonical form of in, or with c->replay the
 * message to send (flags the kernel refuses as input dropped, values it
 * dumps rounded restored). Once in's kind is read, c->what describes in;
 * errors before that name what the caller put there.
 * Fails with -EINVAL for a message that does not parse, -EOPNOTSUPP for a
 * kind or attribute we do not replay exactly, -ENOMEM when out of memory or
 * over TCM_MAX_MSG; c->err names the object. out must still be freed. */
int canon(const struct nlmsghdr *in, struct mbuf *out, struct canon_cx *c)
    __attribute__((warn_unused_result));

/* canon() into a new allocation, stored in *res for the caller to free;
 * *res is untouched on failure. */
int canon_dup(const struct nlmsghdr *in, struct nlmsghdr **res, struct canon_cx *c)
    __attribute__((warn_unused_result));

/* Sets c->err to "<object in c->what> cannot be restored exactly: <why>"
 * and returns -EOPNOTSUPP. */
int canon_refuse(struct canon_cx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));

/* True for the qdisc kinds whose classes users make (htb); false for the
 * rest, whose classes come with the qdisc or list its flows, and for kinds
 * we do not replay. */
bool canon_user_classes(const char *qdisc_kind);

#endif
