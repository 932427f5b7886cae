/* Route netlink, the way the network fault needs it: one libnl socket bound
 * to a network namespace, requests that wait for the kernel's answer and
 * carry its extended-ACK message into our errors, raw dumps, and the few
 * link and route lookups a fault needs. libnl's NLE_* codes stop here:
 * callers see negative errno values. */
#ifndef CHAOS_NL_TC_H
#define CHAOS_NL_TC_H

#include <stdint.h>
#include <net/if.h>
#include <linux/netlink.h>
#include "chaos_err.h"

struct nl_msg;
struct nl_tc;

/* Identifies a network namespace (the nsfs inode), to tell after a crash
 * whether a path still names the same namespace. */
struct nltc_ns_id {
    uint64_t dev, ino;
};

/* Opens a route netlink socket inside the namespace at ns_path (NULL: the
 * caller's own). The socket stays bound to that namespace; the calling
 * thread is back in its own namespace when this returns. id (may be NULL)
 * receives the namespace's identity. */
int nltc_open(const char *ns_path, struct nltc_ns_id *id, struct nl_tc **out,
              struct chaos_err *err) __attribute__((warn_unused_result));
void nltc_close(struct nl_tc *t);

/* Sends msg (always freed) and waits for the kernel's ACK, sending again
 * when the kernel asks for it (EAGAIN after it loaded a module). On failure
 * err reads "<what>: <reason> (kernel: <extack message>)" and the return is
 * the kernel's negative errno. module names the kernel module that provides
 * what the request creates ("sch_netem"), or NULL: when the kernel says it
 * does not know that kind, err says exactly that: "kernel lacks sch_netem". */
int nltc_request(struct nl_tc *t, struct nl_msg *msg, const char *what, const char *module,
                 struct chaos_err *err) __attribute__((warn_unused_result));
/* A libnl message holding a copy of the request built by hand in
 * data[0..len) (a struct nlmsghdr, then its payload, as struct mbuf builds
 * it), with nlmsg_flags set to flags (nl_send_auto adds NLM_F_REQUEST and
 * NLM_F_ACK); the header's length, port and sequence are libnl's. NULL when
 * out of memory or when len is shorter than a header. The caller owns it (nltc_request frees it). */
struct nl_msg *nltc_msg_from(const void *data, size_t len, int flags)
    __attribute__((warn_unused_result));
/* The extended-ACK message of the last failed request ("" if none). */
const char *nltc_last_extack(const struct nl_tc *t);

/* Dumps RTM_GETQDISC / RTM_GETTCLASS / RTM_GETTFILTER objects of ifindex
 * (filters: those attached to parent) and calls cb with each raw message.
 * cb returns 0 to go on or a negative errno, which is returned once the rest
 * of the dump has been read (and not passed to cb), so the socket is ready
 * for the next request. */
typedef int (*nltc_dump_cb)(const struct nlmsghdr *nlh, void *arg);
int nltc_dump(struct nl_tc *t, int type, int ifindex, uint32_t parent, nltc_dump_cb cb, void *arg,
              struct chaos_err *err) __attribute__((warn_unused_result));

/* The TCA_KIND of a dumped qdisc, class or filter message ("" when it has
 * none or it is not NUL-terminated). */
const char *nltc_msg_kind(const struct nlmsghdr *nlh);

/* The index of the interface called name (-ENODEV when there is none). */
int nltc_link_index(struct nl_tc *t, const char *name, int *ifindex, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* The name of ifindex into name (IFNAMSIZ); -ENODEV when gone. */
int nltc_link_name(struct nl_tc *t, int ifindex, char *name, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* The interface of the default route (IPv4, else IPv6; lowest metric). */
int nltc_default_route_ifname(struct nl_tc *t, char *name, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Creates an up ifb device called name; *ifindex gets its index. */
int nltc_ifb_add(struct nl_tc *t, const char *name, int *ifindex, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Deletes the link ifindex; a link that is already gone is success. */
int nltc_link_del(struct nl_tc *t, int ifindex, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Deletes the qdisc at parent (TC_H_ROOT, TC_H_INGRESS or a class) of
 * ifindex; one that is gone already is success. */
int nltc_qdisc_del(struct nl_tc *t, int ifindex, uint32_t parent, uint32_t handle,
                   const char *what, struct chaos_err *err) __attribute__((warn_unused_result));
/* Deletes every filter of priority prio and protocol proto (host order)
 * under parent; none left is success. */
int nltc_filter_del(struct nl_tc *t, int ifindex, uint32_t parent, uint16_t prio, uint16_t proto,
                    const char *what, struct chaos_err *err) __attribute__((warn_unused_result));

#endif
