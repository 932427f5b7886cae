#include "nl_tc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/socket.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/route/rtnl.h>

#include "net_ns.h"
#include "util.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct nl_tc {
    struct nl_sock *sk;
    int last_errno;        /* positive errno of the last NLMSG_ERROR */
    char extack[256];      /* its extended-ACK message, "" if none */
};

/* Keeps the kernel's answer to a failed request: errno and, when the
 * message carries NLM_F_ACK_TLVS, the extended-ACK text. libnl 3.7 passes
 * only the struct nlmsgerr, which sits right after its nlmsghdr. */
static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
    struct nl_tc *t = arg;
    t->last_errno = -e->error;
    t->extack[0] = '\0';
    const struct nlmsghdr *nlh = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
    if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
        return NL_STOP;
    size_t off = NLMSG_HDRLEN + sizeof *e;
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
        off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    off = NLMSG_ALIGN(off);
    if (off >= nlh->nlmsg_len)
        return NL_STOP;
    const struct nlattr *a = (const struct nlattr *)((const char *)nlh + off);
    int rem = (int)(nlh->nlmsg_len - off);
    const struct nlattr *pos;
    int r;
    nla_for_each_attr(pos, a, rem, r)
    {
        if (nla_type(pos) == NLMSGERR_ATTR_MSG && nla_len(pos) > 0) {
            snprintf(t->extack, sizeof t->extack, "%.*s", nla_len(pos), (const char *)nla_data(pos));
            /* The kernel's messages end without a stop, or with one. */
            size_t len = strlen(t->extack);
            while (len && (t->extack[len - 1] == '.' || t->extack[len - 1] == '\n'))
                t->extack[--len] = '\0';
        }
    }
    return NL_STOP;
}

static int enter_ns(const char *path, int *self_fd, struct nltc_ns_id *id, struct chaos_err *err)
{
    _cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0)
        return chaos_err_set(err, errno, "cannot open our own network namespace: %s",
                             strerror(errno));
    /* net_ns_pin names a missing or wrong namespace the way the journal's
     * pinning does. */
    struct nltc_ns_id got;
    _cleanup_close_ int fd = net_ns_pin(path, &got, err);
    if (fd < 0)
        return fd;
    if (id)
        *id = got;
    if (setns(fd, CLONE_NEWNET) < 0) {
        int e = errno;
        return chaos_err_set(err, e, "cannot enter network namespace %s: %s", path,
                             e == EINVAL ? "not a network namespace" : strerror(e));
    }
    *self_fd = steal_fd(&self);
    return 0;
}

int nltc_open(const char *ns_path, struct nltc_ns_id *id, struct nl_tc **out,
              struct chaos_err *err)
{
    struct nl_tc *t = calloc(1, sizeof *t);
    if (!t)
        return chaos_err_set(err, ENOMEM, "out of memory");
    int self = -1;
    if (ns_path) {
        int r = enter_ns(ns_path, &self, id, err);
        if (r < 0) {
            free(t);
            return r;
        }
    } else if (id) {
        struct stat st;
        if (stat("/proc/self/ns/net", &st) == 0)
            *id = (struct nltc_ns_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino};
    }
    /* The socket belongs to the namespace it was created in, whatever
     * the thread does afterwards. */
    int r = 0;
    t->sk = nl_socket_alloc();
    if (!t->sk)
        r = chaos_err_set(err, ENOMEM, "out of memory");
    else if ((r = nl_connect(t->sk, NETLINK_ROUTE)) < 0)
        r = chaos_err_set(err, EPROTO, "cannot open a route netlink socket: %s", nl_geterror(r));
    if (self >= 0) {
        if (setns(self, CLONE_NEWNET) < 0 && r == 0)
            r = chaos_err_set(err, errno, "cannot return to our network namespace: %s",
                              strerror(errno));
        close(self);
    }
    if (r < 0) {
        nltc_close(t);
        return r;
    }
    int one = 1;
    /* Best effort: older kernels answer without the extended ACK. */
    IGNORE_RESULT(
        setsockopt(nl_socket_get_fd(t->sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one));
    IGNORE_RESULT(
        setsockopt(nl_socket_get_fd(t->sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one));
    nl_socket_modify_err_cb(t->sk, NL_CB_CUSTOM, on_error, t);
    *out = t;
    return 0;
}

void nltc_close(struct nl_tc *t)
{
    if (!t)
        return;
    if (t->sk)
        nl_socket_free(t->sk);
    free(t);
}

const char *nltc_last_extack(const struct nl_tc *t)
{
    return t->extack;
}

/* libnl's codes for what a send or receive itself failed with. */
static int nle_to_errno(int nle)
{
    switch (-nle) {
    case NLE_NOMEM: return ENOMEM;
    case NLE_EXIST: return EEXIST;
    case NLE_OBJ_NOTFOUND: return ENOENT;
    case NLE_NODEV: return ENODEV;
    case NLE_PERM: return EPERM;
    case NLE_BUSY: return EBUSY;
    case NLE_INVAL: return EINVAL;
    case NLE_OPNOTSUPP: return EOPNOTSUPP;
    case NLE_AGAIN: return EAGAIN;
    case NLE_RANGE: return ERANGE;
    case NLE_MSGSIZE: return EMSGSIZE;
    default: return EPROTO;
    }
}

/* Does this failure mean the kernel has no such kind at all? */
static bool kind_unknown(int code, const char *extack)
{
    if (code == EOPNOTSUPP) /* RTM_NEWLINK with an unknown link kind */
        return strstr(extack, "Unknown device type") != NULL || *extack == '\0';
    if (code != ENOENT)
        return false;
    if (*extack == '\0')
        return true;
    return strstr(extack, "kind is unknown") || strstr(extack, "classifier not found") ||
           strstr(extack, "action module") || strstr(extack, "Unknown action");
}

struct nl_msg *nltc_msg_from(const void *data, size_t len, int flags)
{
    if (len < NLMSG_HDRLEN)
        return NULL;
    const struct nlmsghdr *src = data;
    size_t payload = len - NLMSG_HDRLEN;
    struct nl_msg *msg = nlmsg_alloc_size(len + NLMSG_HDRLEN);
    struct nlmsghdr *h = msg ? nlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, src->nlmsg_type,
                                         (int)payload, flags)
                             : NULL;
    if (!h) {
        nlmsg_free(msg);
        return NULL;
    }
    memcpy(nlmsg_data(h), (const char *)data + NLMSG_HDRLEN, payload);
    return msg;
}

int nltc_request(struct nl_tc *t, struct nl_msg *msg, const char *what, const char *module,
                 struct chaos_err *err)
{
    int r;
    for (int attempt = 0;; attempt++) {
        t->last_errno = 0;
        t->extack[0] = '\0';
        nlmsg_hdr(msg)->nlmsg_seq = NL_AUTO_SEQ;
        r = nl_send_auto(t->sk, msg);
        if (r >= 0)
            r = nl_wait_for_ack(t->sk);
        /* The kernel loaded the module we asked for and wants the
         * request again (iproute2 does the same). */
        if (r < 0 && t->last_errno == EAGAIN && attempt < 3)
            continue;
        break;
    }
    nlmsg_free(msg);
    if (r >= 0)
        return 0;
    int code = t->last_errno ? t->last_errno : nle_to_errno(r);
    if (module && kind_unknown(code, t->extack))
        return chaos_err_set(err, ENOENT,
                             "%s: kernel lacks %s: load the module (modprobe %s) or use a "
                             "kernel built with it",
                             what, module, module);
    if (t->extack[0])
        return chaos_err_set(err, code, "%s: %s (kernel: %s)", what, strerror(code), t->extack);
    return chaos_err_set(err, code, "%s: %s", what, strerror(code));
}

struct dump_ctx {
    nltc_dump_cb cb;
    void *arg;
    int ifindex;
    int r;
};

const char *nltc_msg_kind(const struct nlmsghdr *nlh)
{
    struct nlattr *a;
    int rem;
    nlmsg_for_each_attr(a, (struct nlmsghdr *)nlh, sizeof(struct tcmsg), rem)
    {
        if (nla_type(a) == TCA_KIND && nla_len(a) > 0 &&
            ((const char *)nla_data(a))[nla_len(a) - 1] == '\0')
            return nla_data(a);
    }
    return "";
}

static int on_dump(struct nl_msg *msg, void *arg)
{
    struct dump_ctx *d = arg;
    /* After a callback failed, read the rest without looking at it: the
     * kernel's remaining messages (and NLMSG_DONE) must not be left for
     * the next request to trip over. */
    if (d->r < 0)
        return NL_SKIP;
    const struct nlmsghdr *nlh = nlmsg_hdr(msg);
    if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg)))
        return NL_SKIP;
    const struct tcmsg *tcm = nlmsg_data(nlh);
    if (tcm->tcm_ifindex != d->ifindex)
        return NL_SKIP;
    int r = d->cb(nlh, d->arg);
    if (r < 0)
        d->r = r;
    return NL_OK;
}

int nltc_dump(struct nl_tc *t, int type, int ifindex, uint32_t parent, nltc_dump_cb cb, void *arg,
              struct chaos_err *err)
{
    struct tcmsg tcm = {.tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_parent = parent};
    int r = nl_send_simple(t->sk, type, NLM_F_DUMP, &tcm, sizeof tcm);
    if (r < 0)
        return chaos_err_set(err, nle_to_errno(r), "cannot ask the kernel for tc objects: %s",
                             nl_geterror(r));
    /* nl_socket_get_cb takes a reference: drop it, or the socket's
     * callbacks outlive nl_socket_free (LeakSanitizer). */
    struct nl_cb *sc = nl_socket_get_cb(t->sk);
    struct nl_cb *c = nl_cb_clone(sc);
    nl_cb_put(sc);
    if (!c)
        return chaos_err_set(err, ENOMEM, "out of memory");
    struct dump_ctx d = {cb, arg, ifindex, 0};
    nl_cb_set(c, NL_CB_VALID, NL_CB_CUSTOM, on_dump, &d);
    t->last_errno = 0;
    r = nl_recvmsgs(t->sk, c);
    nl_cb_put(c);
    if (d.r < 0)
        return d.r;
    if (r < 0) {
        int code = t->last_errno ? t->last_errno : nle_to_errno(r);
        return chaos_err_set(err, code, "cannot read tc objects of interface %d: %s", ifindex,
                             strerror(code));
    }
    return 0;
}

static void link_putp(struct rtnl_link **l)
{
    if (*l)
        rtnl_link_put(*l);
}

int nltc_link_index(struct nl_tc *t, const char *name, int *ifindex, struct chaos_err *err)
{
    __attribute__((cleanup(link_putp))) struct rtnl_link *l = NULL;
    int r = rtnl_link_get_kernel(t->sk, 0, name, &l);
    if (r < 0) {
        if (r == -NLE_NODEV || r == -NLE_OBJ_NOTFOUND)
            return chaos_err_set(err, ENODEV, "interface %s: no such interface", name);
        return chaos_err_set(err, nle_to_errno(r), "interface %s: %s", name, nl_geterror(r));
    }
    *ifindex = rtnl_link_get_ifindex(l);
    return 0;
}

int nltc_link_name(struct nl_tc *t, int ifindex, char *name, struct chaos_err *err)
{
    __attribute__((cleanup(link_putp))) struct rtnl_link *l = NULL;
    int r = rtnl_link_get_kernel(t->sk, ifindex, NULL, &l);
    if (r < 0) {
        if (r == -NLE_NODEV || r == -NLE_OBJ_NOTFOUND)
            return chaos_err_set(err, ENODEV, "interface %d: no such interface", ifindex);
        return chaos_err_set(err, nle_to_errno(r), "interface %d: %s", ifindex, nl_geterror(r));
    }
    snprintf(name, IFNAMSIZ, "%s", rtnl_link_get_name(l) ? rtnl_link_get_name(l) : "?");
    return 0;
}

struct route_pick {
    int ifindex;
    uint32_t metric;
};

static void pick_default(struct nl_object *o, void *arg)
{
    struct rtnl_route *rt = (struct rtnl_route *)o;
    struct route_pick *p = arg;
    struct nl_addr *dst = rtnl_route_get_dst(rt);
    if ((dst && nl_addr_get_prefixlen(dst) != 0) || rtnl_route_get_table(rt) != RT_TABLE_MAIN ||
        rtnl_route_get_type(rt) != RTN_UNICAST || rtnl_route_get_nnexthops(rt) < 1)
        return;
    int ifindex = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(rt, 0));
    uint32_t metric = rtnl_route_get_priority(rt);
    if (ifindex > 0 && (p->ifindex == 0 || metric < p->metric)) {
        p->ifindex = ifindex;
        p->metric = metric;
    }
}

int nltc_default_route_ifname(struct nl_tc *t, char *name, struct chaos_err *err)
{
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
        struct nl_cache *cache = NULL;
        int r = rtnl_route_alloc_cache(t->sk, families[i], 0, &cache);
        if (r < 0)
            return chaos_err_set(err, nle_to_errno(r), "cannot read the routing table: %s",
                                 nl_geterror(r));
        struct route_pick p = {0};
        nl_cache_foreach(cache, pick_default, &p);
        nl_cache_free(cache);
        if (p.ifindex > 0)
            return nltc_link_name(t, p.ifindex, name, err);
    }
    return chaos_err_set(err, ENOENT,
                         "there is no default route to take the interface from; name one in "
                         "target.interface");
}

int nltc_ifb_add(struct nl_tc *t, const char *name, int *ifindex, struct chaos_err *err)
{
    __attribute__((cleanup(link_putp))) struct rtnl_link *l = rtnl_link_alloc();
    if (!l)
        return chaos_err_set(err, ENOMEM, "out of memory");
    rtnl_link_set_name(l, name);
    if (rtnl_link_set_type(l, "ifb") < 0)
        return chaos_err_set(err, EINVAL, "libnl cannot create ifb links");
    rtnl_link_set_flags(l, IFF_UP);
    struct nl_msg *msg = NULL;
    int r = rtnl_link_build_add_request(l, NLM_F_CREATE | NLM_F_EXCL, &msg);
    if (r < 0)
        return chaos_err_set(err, nle_to_errno(r), "cannot build the ifb request: %s",
                             nl_geterror(r));
    char what[64];
    snprintf(what, sizeof what, "creating ifb device %s", name);
    r = nltc_request(t, msg, what, "ifb", err);
    if (r < 0)
        return r;
    return nltc_link_index(t, name, ifindex, err);
}

int nltc_link_del(struct nl_tc *t, int ifindex, struct chaos_err *err)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_DELLINK, NLM_F_REQUEST);
    if (!msg || nlmsg_append(msg, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) {
        nlmsg_free(msg);
        return chaos_err_set(err, ENOMEM, "out of memory");
    }
    char what[64];
    snprintf(what, sizeof what, "deleting interface %d", ifindex);
    int r = nltc_request(t, msg, what, NULL, err);
    if (r == -ENODEV) {
        chaos_err_clear(err);
        return 0;
    }
    return r;
}

static struct nl_msg *tc_msg(int type, int flags, int ifindex, uint32_t parent, uint32_t handle,
                             uint32_t info)
{
    struct tcmsg tcm = {.tcm_family = AF_UNSPEC,
                        .tcm_ifindex = ifindex,
                        .tcm_parent = parent,
                        .tcm_handle = handle,
                        .tcm_info = info};
    struct nl_msg *msg = nlmsg_alloc_simple(type, NLM_F_REQUEST | flags);
    if (msg && nlmsg_append(msg, &tcm, sizeof tcm, NLMSG_ALIGNTO) < 0) {
        nlmsg_free(msg);
        return NULL;
    }
    return msg;
}

int nltc_qdisc_del(struct nl_tc *t, int ifindex, uint32_t parent, uint32_t handle,
                   const char *what, struct chaos_err *err)
{
    struct nl_msg *msg = tc_msg(RTM_DELQDISC, 0, ifindex, parent, handle, 0);
    if (!msg)
        return chaos_err_set(err, ENOMEM, "out of memory");
    int r = nltc_request(t, msg, what, NULL, err);
    /* Gone already (a crash after the delete, or the interface went).
     * Some kernels say so with EINVAL and a "cannot find" message. */
    bool gone = r == -ENOENT || r == -ENODEV ||
                (r == -EINVAL && (strstr(t->extack, "no qdisc") || strstr(t->extack, "Cannot find")));
    if (!gone)
        return r;
    chaos_err_clear(err);
    return 0;
}

int nltc_filter_del(struct nl_tc *t, int ifindex, uint32_t parent, uint16_t prio, uint16_t proto,
                    const char *what, struct chaos_err *err)
{
    struct nl_msg *msg =
        tc_msg(RTM_DELTFILTER, 0, ifindex, parent, 0, TC_H_MAKE((uint32_t)prio << 16, htons(proto)));
    if (!msg)
        return chaos_err_set(err, ENOMEM, "out of memory");
    int r = nltc_request(t, msg, what, NULL, err);
    if (r == -ENOENT || r == -ENODEV) {
        chaos_err_clear(err);
        return 0;
    }
    return r;
}
