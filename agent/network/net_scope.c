#include "net_scope.h"

#include "strbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"
#include "util.h"

/* ---- parsing ---- */

static int parse_cidr(const char *s, const char *path, struct net_cidr *c, struct chaos_err *err)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (strlen(s) >= sizeof buf)
        return chaos_err_set(err, EINVAL, "%s: '%.60s...' is not an address or CIDR", path, s);
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    memset(c, 0, sizeof *c);
    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        c->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        c->prefix = 128;
    } else {
        return chaos_err_set(err, EINVAL,
                             "%s: '%s' is not an IPv4 or IPv6 address or CIDR "
                             "(e.g. \"10.0.0.7\", \"10.0.0.0/24\", \"fd00::/64\")",
                             path, s);
    }
    if (slash) {
        const char *p = slash + 1;
        int max = c->prefix, v = 0;
        if (*p == '\0')
            return chaos_err_set(err, EINVAL, "%s: '%s' has an empty prefix length", path, s);
        for (; *p; p++) {
            if (*p < '0' || *p > '9' || v > 128)
                return chaos_err_set(err, EINVAL, "%s: '%s': prefix length must be 0-%d", path,
                                     s, max);
            v = v * 10 + (*p - '0');
        }
        if (v > max)
            return chaos_err_set(err, EINVAL, "%s: '%s': prefix length must be 0-%d", path, s,
                                 max);
        c->prefix = v;
    }
    /* A CIDR with host bits set ("10.0.0.7/24") is most likely a typo for
     * the host or the net: say so rather than guess. */
    int bytes = c->family == AF_INET ? 4 : 16;
    for (int i = 0; i < bytes; i++) {
        int keep = c->prefix - i * 8;
        uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        if (c->addr[i] & ~mask)
            return chaos_err_set(err, EINVAL,
                                 "%s: '%s' has host bits set; write the network "
                                 "(e.g. .../%d with the host bits zero) or a single "
                                 "address",
                                 path, s, c->prefix);
    }
    return 0;
}

/* A string or an array of strings, each a CIDR. */
static int parse_cidrs(const json_t *t, const char *tctx, const char *key, struct net_cidr **out,
                       size_t *n, struct chaos_err *err)
{
    const json_t *v = json_object_get(t, key);
    char path[320];
    jv_path(path, sizeof path, tctx, key);
    if (!v)
        return 0;
    if (json_is_string(v)) {
        *out = calloc(1, sizeof **out);
        if (!*out)
            return chaos_err_set(err, ENOMEM, "out of memory");
        *n = 1;
        return parse_cidr(json_string_value(v), path, *out, err);
    }
    if (!json_is_array(v))
        return chaos_err_set(err, EINVAL,
                             "%s: must be an address or CIDR string, or an array of "
                             "them, not %s",
                             path, jv_type_name(v));
    size_t len = json_array_size(v);
    if (len == 0 || len > NET_SCOPE_MAX_CIDRS)
        return chaos_err_set(err, EINVAL, "%s: must list 1 to %d addresses, not %zu", path,
                             NET_SCOPE_MAX_CIDRS, len);
    *out = calloc(len, sizeof **out);
    if (!*out)
        return chaos_err_set(err, ENOMEM, "out of memory");
    *n = len;
    for (size_t i = 0; i < len; i++) {
        const json_t *e = json_array_get(v, i);
        char ep[340];
        snprintf(ep, sizeof ep, "%s[%zu]", path, i);
        if (!json_is_string(e))
            return chaos_err_set(err, EINVAL, "%s: must be an address or CIDR string, not %s",
                                 ep, jv_type_name(e));
        int r = parse_cidr(json_string_value(e), ep, &(*out)[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int parse_port_number(const char *s, const char *path, const char *whole, uint16_t *out,
                             struct chaos_err *err)
{
    long v = 0;
    if (*s == '\0')
        return chaos_err_set(err, EINVAL, "%s: '%s' is not a port or range like \"8000-8100\"",
                             path, whole);
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > 65535)
            return chaos_err_set(err, EINVAL,
                                 "%s: '%s' is not a port or range like \"8000-8100\"", path,
                                 whole);
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > 65535)
        return chaos_err_set(err, ERANGE, "%s: %ld is not a port (1-65535)", path, v);
    *out = (uint16_t)v;
    return 0;
}

static int parse_port(const json_t *e, const char *path, struct net_port_range *r,
                      struct chaos_err *err)
{
    if (json_is_integer(e)) {
        json_int_t v = json_integer_value(e);
        if (v < 1 || v > 65535)
            return chaos_err_set(err, ERANGE, "%s: %lld is not a port (1-65535)", path,
                                 (long long)v);
        r->lo = r->hi = (uint16_t)v;
        return 0;
    }
    if (!json_is_string(e))
        return chaos_err_set(err, EINVAL,
                             "%s: must be a port number or a range string like "
                             "\"8000-8100\", not %s",
                             path, jv_type_name(e));
    const char *s = json_string_value(e);
    char buf[32];
    if (strlen(s) >= sizeof buf)
        return chaos_err_set(err, EINVAL, "%s: '%.20s...' is not a port or range", path, s);
    strcpy(buf, s);
    char *dash = strchr(buf, '-');
    if (dash)
        *dash = '\0';
    int rc = parse_port_number(buf, path, s, &r->lo, err);
    if (rc < 0)
        return rc;
    r->hi = r->lo;
    if (dash) {
        rc = parse_port_number(dash + 1, path, s, &r->hi, err);
        if (rc < 0)
            return rc;
        if (r->hi < r->lo)
            return chaos_err_set(err, EINVAL, "%s: range '%s' ends before it starts", path, s);
    }
    return 0;
}

/* A port, a range string, or an array of them. */
static int parse_ports(const json_t *t, const char *tctx, const char *key,
                       struct net_port_range **out, size_t *n, struct chaos_err *err)
{
    const json_t *v = json_object_get(t, key);
    char path[320];
    jv_path(path, sizeof path, tctx, key);
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        *out = calloc(1, sizeof **out);
        if (!*out)
            return chaos_err_set(err, ENOMEM, "out of memory");
        *n = 1;
        return parse_port(v, path, *out, err);
    }
    size_t len = json_array_size(v);
    if (len == 0 || len > NET_SCOPE_MAX_PORTS)
        return chaos_err_set(err, EINVAL, "%s: must list 1 to %d ports or ranges, not %zu", path,
                             NET_SCOPE_MAX_PORTS, len);
    *out = calloc(len, sizeof **out);
    if (!*out)
        return chaos_err_set(err, ENOMEM, "out of memory");
    *n = len;
    for (size_t i = 0; i < len; i++) {
        char ep[340];
        snprintf(ep, sizeof ep, "%s[%zu]", path, i);
        int r = parse_port(json_array_get(v, i), ep, &(*out)[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int parse_netns(const json_t *t, const char *tctx, struct net_target *out,
                       struct chaos_err *err)
{
    const char *ns = NULL;
    long long pid = 0;
    int r = jv_string(t, tctx, "netns", false, &ns, err);
    if (r < 0)
        return r;
    r = jv_int(t, tctx, "netns_pid", false, 1, 4194304, &pid, err);
    if (r < 0)
        return r;
    char path[320];
    if (ns && pid) {
        jv_path(path, sizeof path, tctx, "netns_pid");
        return chaos_err_set(err, EINVAL, "%s: give either netns or netns_pid, not both", path);
    }
    out->netns_pid = (pid_t)pid;
    if (!ns)
        return 0;
    jv_path(path, sizeof path, tctx, "netns");
    if (*ns == '\0' || strlen(ns) > 255)
        return chaos_err_set(err, EINVAL,
                             "%s: must be a namespace name (as in `ip netns`) or a "
                             "path like /run/netns/NAME",
                             path);
    /* A bare name is what `ip netns add NAME` made. */
    if (strchr(ns, '/')) {
        if (ns[0] != '/')
            return chaos_err_set(err, EINVAL, "%s: '%s' must be an absolute path", path, ns);
        out->netns_path = strdup(ns);
    } else if (strcmp(ns, ".") == 0 || strcmp(ns, "..") == 0) {
        return chaos_err_set(err, EINVAL, "%s: '%s' is not a namespace name", path, ns);
    } else if (asprintf(&out->netns_path, "/run/netns/%s", ns) < 0) {
        out->netns_path = NULL;
    }
    if (!out->netns_path)
        return chaos_err_set(err, ENOMEM, "out of memory");
    return 0;
}

/* "interface" (a name the kernel would take) and "direction". */
static int parse_interface_direction(const json_t *target, const char *tctx,
                                     struct net_target *out, struct chaos_err *err)
{
    char path[320];
    const char *s = NULL;
    int r = jv_string(target, tctx, "interface", false, &s, err);
    if (r < 0)
        return r;
    if (s) {
        jv_path(path, sizeof path, tctx, "interface");
        if (*s == '\0' || strlen(s) >= IFNAMSIZ || strchr(s, '/') || strchr(s, ' '))
            return chaos_err_set(err, EINVAL,
                                 "%s: '%s' is not an interface name (1-%d characters, "
                                 "no '/' or spaces)",
                                 path, s, IFNAMSIZ - 1);
        if (!(out->ifname = strdup(s)))
            return chaos_err_set(err, ENOMEM, "out of memory");
    }

    s = NULL;
    r = jv_string(target, tctx, "direction", false, &s, err);
    if (r < 0)
        return r;
    if (s) {
        if (strcmp(s, "egress") == 0)
            out->direction = NET_EGRESS;
        else if (strcmp(s, "ingress") == 0)
            out->direction = NET_INGRESS;
        else if (strcmp(s, "both") == 0)
            out->direction = NET_BOTH;
        else {
            jv_path(path, sizeof path, tctx, "direction");
            return chaos_err_set(err, EINVAL,
                                 "%s: must be \"egress\", \"ingress\" or \"both\", not '%s'",
                                 path, s);
        }
    }

    return 0;
}

/* What no single field shows: dst and src of one family, and a scope
 * whose filters stay few. */
static int check_scope(const struct net_scope *sc, const char *tctx, struct chaos_err *err)
{
    char path[320];
    /* dst and src must share a family, or no packet could ever match. */
    bool dst4 = false, dst6 = false, src4 = false, src6 = false;
    for (size_t i = 0; i < sc->n_dst; i++)
        *(sc->dst[i].family == AF_INET ? &dst4 : &dst6) = true;
    for (size_t i = 0; i < sc->n_src; i++)
        *(sc->src[i].family == AF_INET ? &src4 : &src6) = true;
    if (sc->n_dst && sc->n_src && !((dst4 && src4) || (dst6 && src6))) {
        jv_path(path, sizeof path, tctx, "src");
        return chaos_err_set(err, EINVAL,
                             "%s: no address family in common with dst (IPv4 and "
                             "IPv6 never match each other)",
                             path);
    }
    /* Reject a scope whose filters would explode rather than install
     * thousands of them. */
    struct net_u32_rule *rules = NULL;
    size_t n = 0;
    int r = net_scope_rules(sc, false, &rules, &n, err);
    free(rules);
    if (r < 0)
        chaos_err_prefix(err, "%s", tctx);
    return r;
}

int net_target_parse(const json_t *target, const char *tctx, struct net_target *out,
                     struct chaos_err *err)
{
    static const char *const keys[] = {"netns", "netns_pid", "interface", "direction", "dst",
                                       "src", "dport", "sport", "protocol", NULL};
    memset(out, 0, sizeof *out);
    out->direction = NET_EGRESS;
    if (!target)
        return 0;
    int r = jv_expect_object(target, tctx, err);
    if (r < 0 || (r = jv_only_keys(target, tctx, keys, err)) < 0)
        return r;
    r = parse_netns(target, tctx, out, err);
    if (r < 0)
        return r;

    if ((r = parse_interface_direction(target, tctx, out, err)) < 0)
        return r;

    struct net_scope *sc = &out->scope;
    if ((r = parse_cidrs(target, tctx, "dst", &sc->dst, &sc->n_dst, err)) < 0 ||
        (r = parse_cidrs(target, tctx, "src", &sc->src, &sc->n_src, err)) < 0 ||
        (r = parse_ports(target, tctx, "dport", &sc->dport, &sc->n_dport, err)) < 0 ||
        (r = parse_ports(target, tctx, "sport", &sc->sport, &sc->n_sport, err)) < 0)
        return r;

    char path[320];
    const char *s = NULL;
    r = jv_string(target, tctx, "protocol", false, &s, err);
    if (r < 0)
        return r;
    jv_path(path, sizeof path, tctx, "protocol");
    if (s) {
        if (strcmp(s, "tcp") == 0)
            sc->proto = NET_PROTO_TCP;
        else if (strcmp(s, "udp") == 0)
            sc->proto = NET_PROTO_UDP;
        else if (strcmp(s, "icmp") == 0)
            sc->proto = NET_PROTO_ICMP;
        else
            return chaos_err_set(err, EINVAL, "%s: must be \"tcp\", \"udp\" or \"icmp\", not '%s'",
                                 path, s);
    }
    if (sc->proto == NET_PROTO_ICMP && (sc->n_dport || sc->n_sport))
        return chaos_err_set(err, EINVAL, "%s: icmp has no ports; drop %s or the protocol", path,
                             sc->n_dport ? "dport" : "sport");

    return check_scope(sc, tctx, err);
}

void net_target_clear(struct net_target *t)
{
    if (!t)
        return;
    free(t->netns_path);
    free(t->ifname);
    free(t->scope.dst);
    free(t->scope.src);
    free(t->scope.dport);
    free(t->scope.sport);
    memset(t, 0, sizeof *t);
}

/* ---- u32 rules ---- */

size_t net_port_blocks(uint16_t lo, uint16_t hi, uint16_t *val, uint16_t *mask, size_t max)
{
    size_t n = 0;
    uint32_t cur = lo;
    while (cur <= hi && n < max) {
        /* The largest aligned block starting at cur that stays within hi. */
        uint32_t size = 1;
        while (size < 65536 && (cur & (size * 2 - 1)) == 0 && cur + size * 2 - 1 <= hi)
            size *= 2;
        val[n] = (uint16_t)cur;
        mask[n] = (uint16_t)~(size - 1);
        n++;
        cur += size;
    }
    return n;
}

/* What a family's header looks like to u32: offsets from the network header. */
struct fam_layout {
    int family;
    uint16_t eth_proto;
    int src_off, dst_off, addr_len; /* bytes */
    int proto_word;                 /* offset of the word holding the protocol byte */
    int proto_shift;                /* bit position of the protocol byte in that word */
    int l4_off;                     /* where ports start, assuming no options */
    uint8_t icmp;
};

static const struct fam_layout fam_v4 = {AF_INET, ETH_P_IP, 12, 16, 4, 8, 16, 20, 1};
static const struct fam_layout fam_v6 = {AF_INET6, ETH_P_IPV6, 8, 24, 16, 4, 8, 40, 58};

/* Callers ignore the result (IGNORE_RESULT): a rule gets at most 4 + 4
 * address words, a protocol, 2 IPv4 header checks and a port key, which is
 * within NET_U32_MAX_KEYS by construction, so the bound never trips. */
static int add_key(struct net_u32_rule *r, uint32_t val, uint32_t mask, int off)
{
    if (r->n_keys >= NET_U32_MAX_KEYS)
        return -E2BIG;
    r->keys[r->n_keys++] = (struct net_u32_key){htonl(val & mask), htonl(mask), off};
    return 0;
}

static void add_cidr_keys(struct net_u32_rule *r, const struct net_cidr *c, int off)
{
    int words = c->family == AF_INET ? 1 : 4;
    for (int w = 0; w < words; w++) {
        int keep = c->prefix - w * 32;
        if (keep <= 0)
            break;
        uint32_t mask = keep >= 32 ? 0xffffffffu : ~(0xffffffffu >> keep);
        uint32_t val;
        memcpy(&val, c->addr + w * 4, 4);
        IGNORE_RESULT(add_key(r, ntohl(val), mask, off + w * 4));
    }
}

struct rule_sink {
    struct net_u32_rule *rules;
    size_t n, cap;
};

static int sink_push(struct rule_sink *s, const struct net_u32_rule *r, struct chaos_err *err)
{
    if (s->n >= NET_SCOPE_MAX_RULES)
        return chaos_err_set(err, E2BIG,
                             "the scope needs more than %d filters (addresses x "
                             "protocols x port blocks); use CIDRs or fewer port ranges",
                             NET_SCOPE_MAX_RULES);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct net_u32_rule *nr = realloc(s->rules, cap * sizeof *nr);
        if (!nr)
            return chaos_err_set(err, ENOMEM, "out of memory");
        s->rules = nr;
        s->cap = cap;
    }
    s->rules[s->n++] = *r;
    return 0;
}

/* Port blocks of a list of ranges; one "any" entry when the list is empty. */
static size_t port_blocks(const struct net_port_range *p, size_t n, uint16_t *val, uint16_t *mask,
                          size_t max)
{
    if (n == 0) {
        val[0] = mask[0] = 0;
        return 1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        k += net_port_blocks(p[i].lo, p[i].hi, val + k, mask + k, max - k);
    return k;
}

static int family_rules(const struct net_scope *s, bool mirrored, const struct fam_layout *f,
                        struct rule_sink *sink, struct chaos_err *err)
{
    const struct net_cidr *dst = mirrored ? s->src : s->dst, *src = mirrored ? s->dst : s->src;
    size_t n_dst = mirrored ? s->n_src : s->n_dst, n_src = mirrored ? s->n_dst : s->n_src;
    const struct net_port_range *dp = mirrored ? s->sport : s->dport;
    const struct net_port_range *sp = mirrored ? s->dport : s->sport;
    size_t n_dp = mirrored ? s->n_sport : s->n_dport, n_sp = mirrored ? s->n_dport : s->n_sport;

    /* Protocols to match: ports imply tcp and udp unless one was named. */
    uint8_t protos[2];
    size_t n_protos = 0;
    bool ports = n_dp || n_sp;
    switch (s->proto) {
    case NET_PROTO_TCP: protos[n_protos++] = 6; break;
    case NET_PROTO_UDP: protos[n_protos++] = 17; break;
    case NET_PROTO_ICMP: protos[n_protos++] = f->icmp; break;
    case NET_PROTO_ANY:
        if (ports) {
            protos[n_protos++] = 6;
            protos[n_protos++] = 17;
        } else {
            protos[n_protos++] = 0; /* any */
        }
        break;
    }

    enum { MAXB = NET_SCOPE_MAX_PORTS * 32 }; /* 32 blocks per range at most: none dropped */
    uint16_t dv[MAXB], dm[MAXB], sv[MAXB], sm[MAXB];
    size_t n_db = port_blocks(dp, n_dp, dv, dm, MAXB), n_sb = port_blocks(sp, n_sp, sv, sm, MAXB);

    for (size_t di = 0; di < (n_dst ? n_dst : 1); di++) {
        if (n_dst && dst[di].family != f->family)
            continue;
        for (size_t si = 0; si < (n_src ? n_src : 1); si++) {
            if (n_src && src[si].family != f->family)
                continue;
            for (size_t pi = 0; pi < n_protos; pi++)
                for (size_t a = 0; a < n_db; a++)
                    for (size_t b = 0; b < n_sb; b++) {
                        struct net_u32_rule r = {.eth_proto = f->eth_proto};
                        if (n_dst)
                            add_cidr_keys(&r, &dst[di], f->dst_off);
                        if (n_src)
                            add_cidr_keys(&r, &src[si], f->src_off);
                        if (protos[pi])
                            IGNORE_RESULT(add_key(&r, (uint32_t)protos[pi] << f->proto_shift,
                                                  0xffu << f->proto_shift, f->proto_word));
                        if (ports) {
                            if (f->family == AF_INET) {
                                /* IHL 5 (no options, so ports sit at 20)
                                 * and fragment offset 0 (ports present). */
                                IGNORE_RESULT(add_key(&r, 0x05000000, 0x0f000000, 0));
                                IGNORE_RESULT(add_key(&r, 0, 0x00001fff, 4));
                            }
                            uint32_t val = (uint32_t)sv[b] << 16 | dv[a];
                            uint32_t mask = (uint32_t)sm[b] << 16 | dm[a];
                            if (mask)
                                IGNORE_RESULT(add_key(&r, val, mask, f->l4_off));
                        }
                        if (r.n_keys == 0) /* u32 needs one key: match all */
                            IGNORE_RESULT(add_key(&r, 0, 0, 0));
                        int rc = sink_push(sink, &r, err);
                        if (rc < 0)
                            return rc;
                    }
        }
    }
    return 0;
}

int net_scope_rules(const struct net_scope *s, bool mirrored, struct net_u32_rule **rules,
                    size_t *n, struct chaos_err *err)
{
    struct rule_sink sink = {0};
    *rules = NULL;
    *n = 0;
    bool any_addr = s->n_dst || s->n_src;
    /* Nothing to tell packets apart by: one rule for every frame. */
    if (!any_addr && s->proto == NET_PROTO_ANY && !s->n_dport && !s->n_sport) {
        struct net_u32_rule r = {.eth_proto = ETH_P_ALL};
        IGNORE_RESULT(add_key(&r, 0, 0, 0));
        int rc = sink_push(&sink, &r, err);
        if (rc < 0)
            return rc;
        *rules = sink.rules;
        *n = 1;
        return 0;
    }
    int rc = family_rules(s, mirrored, &fam_v4, &sink, err);
    if (rc == 0)
        rc = family_rules(s, mirrored, &fam_v6, &sink, err);
    if (rc < 0) {
        free(sink.rules);
        return rc;
    }
    if (sink.n == 0) {
        free(sink.rules);
        return chaos_err_set(err, EINVAL, "the scope matches no packet (dst and src never share "
                                          "an address family)");
    }
    *rules = sink.rules;
    *n = sink.n;
    return 0;
}

/* ---- describe ---- */

static void describe_cidrs(const char *name, const struct net_cidr *c, size_t n, char *buf,
                           size_t size)
{
    if (!n)
        return;
    str_append(buf, size, "%s ", name);
    for (size_t i = 0; i < n; i++) {
        char a[INET6_ADDRSTRLEN], one[INET6_ADDRSTRLEN + 8];
        inet_ntop(c[i].family, c[i].addr, a, sizeof a);
        snprintf(one, sizeof one, "%s/%d", a, c[i].prefix);
        str_append(buf, size, i ? ",%s" : "%s", one);
    }
    str_append(buf, size, "%s", " ");
}

static void describe_ports(const char *name, const struct net_port_range *p, size_t n, char *buf,
                           size_t size)
{
    if (!n)
        return;
    str_append(buf, size, "%s ", name);
    for (size_t i = 0; i < n; i++) {
        char one[16];
        if (p[i].lo == p[i].hi)
            snprintf(one, sizeof one, "%u", p[i].lo);
        else
            snprintf(one, sizeof one, "%u-%u", p[i].lo, p[i].hi);
        str_append(buf, size, i ? ",%s" : "%s", one);
    }
    str_append(buf, size, "%s", " ");
}

void net_scope_describe(const struct net_scope *s, char *buf, size_t size)
{
    static const char *const protos[] = {"", "tcp ", "udp ", "icmp "};
    if (!size)
        return;
    buf[0] = '\0';
    describe_cidrs("dst", s->dst, s->n_dst, buf, size);
    describe_cidrs("src", s->src, s->n_src, buf, size);
    describe_ports("dport", s->dport, s->n_dport, buf, size);
    describe_ports("sport", s->sport, s->n_sport, buf, size);
    str_append(buf, size, "%s", protos[s->proto]);
    size_t len = strlen(buf);
    if (len == 0)
        snprintf(buf, size, "all traffic");
    else if (buf[len - 1] == ' ')
        buf[len - 1] = '\0';
}
