/* What traffic a network fault hits: the "target" object of a network fault
 * (namespace, interface, direction, addresses, ports, protocol), parsed and
 * turned into u32 classifier rules. Pure: touches nothing, so every rule it
 * produces is unit-tested on the host. */
#ifndef CHAOS_NET_SCOPE_H
#define CHAOS_NET_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "chaos_err.h"

struct net_cidr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t addr[16];  /* network byte order; host bits cleared */
    int prefix;
};

struct net_port_range {
    uint16_t lo, hi;   /* inclusive */
};

enum net_proto { NET_PROTO_ANY, NET_PROTO_TCP, NET_PROTO_UDP, NET_PROTO_ICMP };

enum net_direction { NET_EGRESS = 1, NET_INGRESS = 2, NET_BOTH = 3 };

/* The packets a fault hits, described as this host sends them: dst and dport
 * are the remote side. Ingress matches the mirrored packets (src <-> dst). */
struct net_scope {
    struct net_cidr *dst, *src;
    size_t n_dst, n_src;
    struct net_port_range *dport, *sport;
    size_t n_dport, n_sport;
    enum net_proto proto;
};

#define NET_SCOPE_MAX_CIDRS 32
#define NET_SCOPE_MAX_PORTS 32
/* Bounds the filters one fault installs (the product of families, addresses,
 * protocols and port blocks): more is almost certainly a mistake. */
#define NET_SCOPE_MAX_RULES 256

struct net_target {
    char *netns_path;   /* NULL: the engine's own namespace */
    pid_t netns_pid;    /* > 0: the namespace of this process */
    char *ifname;       /* NULL: the interface of the default route */
    enum net_direction direction;
    struct net_scope scope;
};

/* Parses a network fault's "target" object (NULL when absent: every packet
 * on the default route's interface, egress). Errors name "<tctx>.<field>". */
int net_target_parse(const json_t *target, const char *tctx, struct net_target *out,
                     struct chaos_err *err) __attribute__((warn_unused_result));
/* Frees what net_target_parse allocated; the struct itself is the caller's. */
void net_target_clear(struct net_target *t);

/* One u32 match: the 32-bit word at off (from the network header) masked
 * with mask equals val. val and mask are in network byte order. */
struct net_u32_key {
    uint32_t val, mask;
    int off;
};

#define NET_U32_MAX_KEYS 16

/* One u32 filter: all keys must match. eth_proto is the filter's protocol
 * (ETH_P_IP, ETH_P_IPV6 or ETH_P_ALL, host order). */
struct net_u32_rule {
    uint16_t eth_proto;
    size_t n_keys;
    struct net_u32_key keys[NET_U32_MAX_KEYS];
};

/* Builds the u32 rules that together match exactly the scope's packets (any
 * one rule matching is a match). mirrored swaps the roles of src/dst and
 * sport/dport, for the ingress side. Ports are matched only in packets
 * without IPv4 options or IPv6 extension headers, and only in first
 * fragments. On success *rules (free()) holds *n rules. */
int net_scope_rules(const struct net_scope *s, bool mirrored, struct net_u32_rule **rules,
                    size_t *n, struct chaos_err *err) __attribute__((warn_unused_result));

/* One line for people, e.g. "dst 10.0.0.7/32 dport 5432 tcp". */
void net_scope_describe(const struct net_scope *s, char *buf, size_t size);

/* Splits [lo, hi] into aligned blocks value/mask (host order); at most 32.
 * Returns the number of blocks. Exposed for tests. */
size_t net_port_blocks(uint16_t lo, uint16_t hi, uint16_t *val, uint16_t *mask, size_t max);

#endif
