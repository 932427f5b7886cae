/* Unit tests of a network fault's scope: the port blocks and the u32 rules
 * of a target (checked key by key, and by running the rules over
 * hand-built packets), and how a scope is described. Nothing here touches
 * the host's network. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include "net_fixtures.h"

/* Splits [lo, hi] and checks, over all 65536 ports, that every port in the
 * range matches exactly one block and no port outside matches any. */
static size_t check_cover(uint16_t lo, uint16_t hi)
{
    uint16_t val[64], mask[64];
    size_t n = net_port_blocks(lo, hi, val, mask, 64);
    cr_assert_gt(n, 0, "%u-%u: no blocks", lo, hi);
    cr_assert_leq(n, 32, "%u-%u: %zu blocks, more than the documented 32", lo, hi, n);
    for (size_t b = 0; b < n; b++) {
        /* A block is a prefix: the mask's ones are contiguous from the top,
         * and the value has no bits outside the mask. */
        uint16_t inv = (uint16_t)~mask[b];
        cr_expect_eq(inv & (inv + 1u), 0, "%u-%u: mask %#x is not a prefix", lo, hi, mask[b]);
        cr_expect_eq(val[b] & inv, 0, "%u-%u: value %#x has bits outside mask %#x", lo, hi, val[b],
                     mask[b]);
    }
    for (uint32_t port = 0; port <= 65535; port++) {
        int hits = 0;
        for (size_t b = 0; b < n; b++)
            hits += (port & mask[b]) == val[b];
        int want = port >= lo && port <= hi;
        if (hits != want) {
            cr_expect_eq(hits, want, "%u-%u: port %u is matched by %d blocks, want %d", lo, hi,
                         port, hits, want);
            break;
        }
    }
    return n;
}

Test(net_port_blocks, exact_cover_without_overlap)
{
    cr_expect_eq(check_cover(1000, 1999), 7);
    cr_expect_eq(check_cover(1, 65535), 16);
    cr_expect_eq(check_cover(0, 65535), 1);
    cr_expect_eq(check_cover(32768, 65535), 1);
    cr_expect_eq(check_cover(5432, 5432), 1);
    cr_expect_eq(check_cover(1, 1), 1);
    cr_expect_eq(check_cover(65535, 65535), 1);
    cr_expect_eq(check_cover(8000, 8100), 4);
    cr_expect_eq(check_cover(1024, 65535), 6);
    check_cover(2, 65534);
    check_cover(12345, 54321);
    check_cover(80, 81);
    check_cover(65534, 65535);

    uint16_t val[1], mask[1];
    cr_expect_eq(net_port_blocks(5432, 5432, val, mask, 1), 1);
    cr_expect_eq(val[0], 5432);
    cr_expect_eq(mask[0], 0xffff, "a single port is an exact match");
    uint16_t v4[4], m4[4];
    cr_expect_eq(net_port_blocks(1, 65535, v4, m4, 4), 4, "never more than max");
}

/* ---- u32 rules ----------------------------------------------------------- */

static const struct net_u32_key *key_at(const struct net_u32_rule *r, int off)
{
    const struct net_u32_key *found = NULL;
    for (size_t k = 0; k < r->n_keys; k++)
        if (r->keys[k].off == off) {
            cr_assert_null(found, "two keys at offset %d", off);
            found = &r->keys[k];
        }
    return found;
}

static void expect_key(const struct net_u32_rule *r, int off, uint32_t val_host, uint32_t mask_host)
{
    const struct net_u32_key *k = key_at(r, off);
    cr_assert_not_null(k, "no key at offset %d", off);
    cr_expect_eq(k->val, htonl(val_host), "offset %d: value %#x, want %#x (network order)", off,
                 ntohl(k->val), val_host);
    cr_expect_eq(k->mask, htonl(mask_host), "offset %d: mask %#x, want %#x", off, ntohl(k->mask),
                 mask_host);
}

static void rules_of(const char *target, bool mirrored, struct net_target *t,
                     struct net_u32_rule **rules, size_t *n)
{
    target_ok(target, t);
    struct chaos_err err = {0};
    cr_assert_eq(net_scope_rules(&t->scope, mirrored, rules, n, &err), 0, "%s", err.msg);
}

Test(net_scope_rules, ipv4_host_port_tcp_key_by_key)
{
    struct net_target t;
    struct net_u32_rule *r;
    size_t n;
    rules_of("{'dst': '10.0.0.7/32', 'dport': 5432, 'protocol': 'tcp'}", false, &t, &r, &n);
    cr_assert_eq(n, 1, "an IPv4 scope has no IPv6 rule");
    cr_expect_eq(r[0].eth_proto, ETH_P_IP);
    cr_expect_eq(r[0].n_keys, 5);
    expect_key(&r[0], 16, 0x0a000007, 0xffffffff); /* destination address */
    expect_key(&r[0], 8, 6u << 16, 0x00ff0000);    /* protocol byte: tcp */
    expect_key(&r[0], 0, 0x05000000, 0x0f000000);  /* IHL 5: no options */
    expect_key(&r[0], 4, 0, 0x00001fff);           /* fragment offset 0 */
    expect_key(&r[0], 20, 5432, 0x0000ffff);       /* dport, low half of the port word */
    cr_expect_null(key_at(&r[0], 12), "no source key");
    free(r);
    net_target_clear(&t);

    /* Ingress sees the replies: the remote side is the source. */
    rules_of("{'dst': '10.0.0.7/32', 'dport': 5432, 'protocol': 'tcp'}", true, &t, &r, &n);
    cr_assert_eq(n, 1);
    cr_expect_eq(r[0].n_keys, 5);
    expect_key(&r[0], 12, 0x0a000007, 0xffffffff);
    cr_expect_null(key_at(&r[0], 16), "no destination key when mirrored");
    expect_key(&r[0], 20, 5432u << 16, 0xffff0000); /* sport, high half */
    expect_key(&r[0], 8, 6u << 16, 0x00ff0000);
    free(r);
    net_target_clear(&t);

    rules_of("{'dst': '192.168.0.0/23', 'src': '10.0.0.0/8', 'sport': 53, 'protocol': 'udp'}",
             false, &t, &r, &n);
    cr_assert_eq(n, 1);
    expect_key(&r[0], 16, 0xc0a80000, 0xfffffe00);
    expect_key(&r[0], 12, 0x0a000000, 0xff000000);
    expect_key(&r[0], 8, 17u << 16, 0x00ff0000);
    expect_key(&r[0], 20, 53u << 16, 0xffff0000);
    free(r);
    net_target_clear(&t);
}

Test(net_scope_rules, ipv6_keys)
{
    struct net_target t;
    struct net_u32_rule *r;
    size_t n;
    rules_of("{'dst': 'fd00::7', 'dport': 443, 'protocol': 'udp'}", false, &t, &r, &n);
    cr_assert_eq(n, 1);
    cr_expect_eq(r[0].eth_proto, ETH_P_IPV6);
    expect_key(&r[0], 24, 0xfd000000, 0xffffffff);
    expect_key(&r[0], 28, 0, 0xffffffff);
    expect_key(&r[0], 32, 0, 0xffffffff);
    expect_key(&r[0], 36, 7, 0xffffffff);
    expect_key(&r[0], 4, 17u << 8, 0x0000ff00); /* next header: udp, no extension header */
    expect_key(&r[0], 40, 443, 0x0000ffff);
    cr_expect_null(key_at(&r[0], 0), "no IHL key in IPv6");
    cr_expect_eq(r[0].n_keys, 6);
    free(r);
    net_target_clear(&t);

    rules_of("{'dst': 'fd00::7', 'dport': 443, 'protocol': 'udp'}", true, &t, &r, &n);
    cr_assert_eq(n, 1);
    expect_key(&r[0], 8, 0xfd000000, 0xffffffff);
    expect_key(&r[0], 20, 7, 0xffffffff);
    cr_expect_null(key_at(&r[0], 24));
    expect_key(&r[0], 40, 443u << 16, 0xffff0000);
    free(r);
    net_target_clear(&t);

    /* A /64 needs two words, a /36 a partial second one; icmp is 58 in IPv6. */
    rules_of("{'dst': ['fd00:1:2:3::/64', '2001:db8:f000::/36'], 'protocol': 'icmp'}", false, &t,
             &r, &n);
    cr_assert_eq(n, 2);
    expect_key(&r[0], 24, 0xfd000001, 0xffffffff);
    expect_key(&r[0], 28, 0x00020003, 0xffffffff);
    cr_expect_null(key_at(&r[0], 32));
    expect_key(&r[0], 4, 58u << 8, 0x0000ff00);
    expect_key(&r[1], 24, 0x20010db8, 0xffffffff);
    expect_key(&r[1], 28, 0xf0000000, 0xf0000000);
    cr_expect_eq(r[1].n_keys, 3);
    free(r);
    net_target_clear(&t);
}

Test(net_scope_rules, no_scope_is_every_frame)
{
    struct net_target t;
    struct net_u32_rule *r;
    size_t n;
    for (int m = 0; m < 2; m++) {
        rules_of("{'interface': 'eth0'}", m, &t, &r, &n);
        cr_assert_eq(n, 1);
        cr_expect_eq(r[0].eth_proto, ETH_P_ALL, "every frame, ARP included");
        cr_assert_eq(r[0].n_keys, 1, "u32 needs one key");
        cr_expect_eq(r[0].keys[0].val, 0);
        cr_expect_eq(r[0].keys[0].mask, 0);
        cr_expect_eq(r[0].keys[0].off, 0);
        free(r);
        net_target_clear(&t);
    }
}

Test(net_scope_rules, families_protocols_and_blocks_multiply)
{
    struct net_target t;
    struct net_u32_rule *r;
    size_t n;
    /* Ports without a protocol mean tcp and udp; no address means both families. */
    rules_of("{'dport': 53}", false, &t, &r, &n);
    cr_assert_eq(n, 4);
    int v4_tcp = 0, v4_udp = 0, v6_tcp = 0, v6_udp = 0;
    for (size_t i = 0; i < n; i++) {
        bool v4 = r[i].eth_proto == ETH_P_IP;
        const struct net_u32_key *p = key_at(&r[i], v4 ? 8 : 4);
        cr_assert_not_null(p, "rule %zu has no protocol key", i);
        uint32_t proto = ntohl(p->val) >> (v4 ? 16 : 8);
        if (v4)
            (*(proto == 6 ? &v4_tcp : &v4_udp))++;
        else
            (*(proto == 6 ? &v6_tcp : &v6_udp))++;
        cr_expect(proto == 6 || proto == 17, "protocol %u", proto);
    }
    cr_expect(v4_tcp == 1 && v4_udp == 1 && v6_tcp == 1 && v6_udp == 1);
    free(r);
    net_target_clear(&t);

    /* A protocol alone: one rule per family, no port or fragment keys. */
    rules_of("{'protocol': 'icmp'}", false, &t, &r, &n);
    cr_assert_eq(n, 2);
    cr_expect_eq(r[0].eth_proto, ETH_P_IP);
    cr_expect_eq(r[0].n_keys, 1);
    expect_key(&r[0], 8, 1u << 16, 0x00ff0000);
    cr_expect_eq(r[1].eth_proto, ETH_P_IPV6);
    expect_key(&r[1], 4, 58u << 8, 0x0000ff00);
    free(r);
    net_target_clear(&t);

    /* 1000-1999 is 7 blocks; tcp only; IPv4 only through dst. */
    rules_of("{'dst': '10.0.0.0/8', 'dport': '1000-1999', 'protocol': 'tcp'}", false, &t, &r, &n);
    cr_expect_eq(n, 7);
    free(r);
    net_target_clear(&t);
    /* Mixed-family dst: each address gets the rules of its family only. */
    rules_of("{'dst': ['10.0.0.1', 'fd00::1'], 'sport': 22}", false, &t, &r, &n);
    cr_assert_eq(n, 4);
    for (size_t i = 0; i < n; i++)
        cr_expect_not_null(key_at(&r[i], r[i].eth_proto == ETH_P_IP ? 16 : 36));
    free(r);
    net_target_clear(&t);
}

Test(net_scope_rules, the_rule_cap)
{
    /* Built by hand: the parser refuses this already. */
    static struct net_cidr dsts[32], srcs[32];
    for (int i = 0; i < 32; i++) {
        dsts[i] =
            (struct net_cidr){.family = AF_INET, .addr = {10, 0, (uint8_t)i, 1}, .prefix = 32};
        srcs[i] =
            (struct net_cidr){.family = AF_INET, .addr = {10, 1, (uint8_t)i, 1}, .prefix = 32};
    }
    struct net_scope s = {.dst = dsts, .n_dst = 32, .src = srcs, .n_src = 8};
    struct net_u32_rule *r = (void *)1;
    size_t n = 99;
    struct chaos_err err = {0};
    cr_assert_eq(net_scope_rules(&s, false, &r, &n, &err), 0, "256 rules is the most, not more");
    cr_expect_eq(n, 256);
    free(r);
    s.n_src = 9;
    r = (void *)1;
    cr_expect_eq(net_scope_rules(&s, false, &r, &n, &err), -E2BIG);
    cr_expect(strstr(err.msg, "needs more than 256 filters"), "%s", err.msg);
    cr_expect_null(r, "no rules on failure");
    cr_expect_eq(n, 0);

    /* dst and src of different families never match: an error, not zero rules. */
    struct net_cidr v6 = {.family = AF_INET6, .addr = {0xfd}, .prefix = 8};
    struct net_scope bad = {.dst = dsts, .n_dst = 1, .src = &v6, .n_src = 1};
    cr_expect_eq(net_scope_rules(&bad, false, &r, &n, &err), -EINVAL);
    cr_expect(strstr(err.msg, "matches no packet"), "%s", err.msg);
}

/* ---- the rules on real packets ------------------------------------------- */

/* What the kernel's u32 does with one rule: every key's 32-bit word at off
 * from the network header, masked, equals the value. */
static bool rule_matches(const struct net_u32_rule *r, uint16_t eth_proto, const uint8_t *pkt,
                         size_t len)
{
    if (r->eth_proto != ETH_P_ALL && r->eth_proto != eth_proto)
        return false;
    for (size_t k = 0; k < r->n_keys; k++) {
        uint32_t w;
        if (r->keys[k].off < 0 || (size_t)r->keys[k].off + 4 > len)
            return false;
        memcpy(&w, pkt + r->keys[k].off, 4);
        if ((w & r->keys[k].mask) != r->keys[k].val)
            return false;
    }
    return true;
}

static bool any_matches(const struct net_u32_rule *r, size_t n, uint16_t eth_proto,
                        const uint8_t *pkt, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (rule_matches(&r[i], eth_proto, pkt, len))
            return true;
    return false;
}

struct pkt {
    uint8_t b[80];
    size_t len;
    uint16_t eth;
};

static struct pkt ip4(const char *src, const char *dst, uint8_t proto, uint16_t sport,
                      uint16_t dport, int ihl, uint16_t frag)
{
    struct pkt p = {.len = (size_t)ihl * 4 + 8, .eth = ETH_P_IP};
    p.b[0] = (uint8_t)(0x40 | ihl);
    p.b[6] = (uint8_t)(frag >> 8);
    p.b[7] = (uint8_t)frag;
    p.b[8] = 64;
    p.b[9] = proto;
    cr_assert_eq(inet_pton(AF_INET, src, p.b + 12), 1);
    cr_assert_eq(inet_pton(AF_INET, dst, p.b + 16), 1);
    uint16_t ports[2] = {htons(sport), htons(dport)};
    memcpy(p.b + ihl * 4, ports, 4);
    return p;
}

static struct pkt ip6(const char *src, const char *dst, uint8_t next, uint16_t sport,
                      uint16_t dport)
{
    struct pkt p = {.len = 48, .eth = ETH_P_IPV6};
    p.b[0] = 0x60;
    p.b[6] = next;
    p.b[7] = 64;
    cr_assert_eq(inet_pton(AF_INET6, src, p.b + 8), 1);
    cr_assert_eq(inet_pton(AF_INET6, dst, p.b + 24), 1);
    uint16_t ports[2] = {htons(sport), htons(dport)};
    memcpy(p.b + 40, ports, 4);
    return p;
}

#define MATCH(rules, n, p) any_matches(rules, n, (p).eth, (p).b, (p).len)

Test(net_scope_rules, ipv4_packets)
{
    struct net_target t;
    struct net_u32_rule *out, *in;
    size_t n_out, n_in;
    rules_of("{'dst': '10.0.0.0/24', 'dport': '5432-5433', 'protocol': 'tcp'}", false, &t, &out,
             &n_out);
    net_target_clear(&t);
    rules_of("{'dst': '10.0.0.0/24', 'dport': '5432-5433', 'protocol': 'tcp'}", true, &t, &in,
             &n_in);

    struct pkt sent = ip4("10.9.9.9", "10.0.0.7", 6, 40000, 5432, 5, 0);
    struct pkt reply = ip4("10.0.0.7", "10.9.9.9", 6, 5432, 40000, 5, 0);
    cr_expect(MATCH(out, n_out, sent), "egress misses a packet in scope");
    cr_expect(MATCH(in, n_in, reply), "ingress misses the reply");
    cr_expect_not(MATCH(out, n_out, reply), "egress matches the reply");
    cr_expect_not(MATCH(in, n_in, sent), "ingress matches the request");

    cr_expect(MATCH(out, n_out, ip4("10.9.9.9", "10.0.0.200", 6, 1, 5433, 5, 0)));
    cr_expect_not(MATCH(out, n_out, ip4("10.9.9.9", "10.0.1.7", 6, 1, 5432, 5, 0)), "other net");
    cr_expect_not(MATCH(out, n_out, ip4("10.9.9.9", "10.0.0.7", 6, 1, 5434, 5, 0)), "other port");
    cr_expect_not(MATCH(out, n_out, ip4("10.9.9.9", "10.0.0.7", 6, 5432, 1, 5, 0)), "sport");
    cr_expect_not(MATCH(out, n_out, ip4("10.9.9.9", "10.0.0.7", 17, 1, 5432, 5, 0)), "udp");
    /* IPv4 options move the ports: such packets are not matched by port. */
    cr_expect_not(MATCH(out, n_out, ip4("10.9.9.9", "10.0.0.7", 6, 1, 5432, 6, 0)), "options");
    /* A first fragment (MF set, offset 0) has the ports; later ones do not. */
    cr_expect(MATCH(out, n_out, ip4("10.9.9.9", "10.0.0.7", 6, 1, 5432, 5, 0x2000)));
    cr_expect_not(MATCH(out, n_out, ip4("10.9.9.9", "10.0.0.7", 6, 1, 5432, 5, 0x2010)));
    cr_expect_not(MATCH(out, n_out, ip6("fd00::1", "fd00::2", 6, 1, 5432)), "IPv6");
    free(out);
    free(in);
    net_target_clear(&t);
}

Test(net_scope_rules, ipv6_packets_and_no_scope)
{
    struct net_target t;
    struct net_u32_rule *r;
    size_t n;
    rules_of("{'dst': 'fd00:1::/64', 'dport': 443}", false, &t, &r, &n);
    cr_expect(MATCH(r, n, ip6("fd00:9::1", "fd00:1::5", 6, 40000, 443)), "tcp");
    cr_expect(MATCH(r, n, ip6("fd00:9::1", "fd00:1::5", 17, 40000, 443)), "udp (no protocol)");
    cr_expect_not(MATCH(r, n, ip6("fd00:9::1", "fd00:1::5", 58, 40000, 443)), "icmpv6");
    cr_expect_not(MATCH(r, n, ip6("fd00:9::1", "fd00:2::5", 6, 40000, 443)), "other net");
    cr_expect_not(MATCH(r, n, ip6("fd00:9::1", "fd00:1::5", 6, 40000, 444)), "other port");
    /* A hop-by-hop header (next header 0) hides the ports. */
    cr_expect_not(MATCH(r, n, ip6("fd00:9::1", "fd00:1::5", 0, 40000, 443)), "extension header");
    cr_expect_not(MATCH(r, n, ip4("10.0.0.1", "10.0.0.2", 6, 40000, 443, 5, 0)), "IPv4");
    free(r);
    net_target_clear(&t);

    rules_of("{}", false, &t, &r, &n);
    struct pkt arp = {.len = 28, .eth = ETH_P_ARP};
    cr_expect(MATCH(r, n, arp), "no scope: ARP too");
    cr_expect(MATCH(r, n, ip4("10.0.0.1", "10.0.0.2", 17, 1, 2, 5, 0)));
    cr_expect(MATCH(r, n, ip6("fd00:9::1", "fd00:1::5", 58, 0, 0)));
    free(r);
    net_target_clear(&t);
}

/* Every port of several ranges is matched in each family: the blocks of
 * all ranges become rules (82 blocks here), none is dropped. */
Test(net_scope_rules, many_ranges_keep_every_block)
{
    static const uint16_t ranges[][2] = {
        {1001, 9998}, {10001, 19998}, {20001, 29998}, {30001, 39998}, {40001, 49998}};
    struct net_target t;
    struct net_u32_rule *r;
    size_t n;
    rules_of("{'dport': ['1001-9998', '10001-19998', '20001-29998', '30001-39998', "
             "'40001-49998'], 'protocol': 'tcp'}",
             false, &t, &r, &n);
    cr_expect_eq(n, 2 * 82, "14 + 4 x 17 blocks, in two families");
    for (int fam = 0; fam < 2; fam++) {
        int wrong = 0, first = -1;
        for (uint32_t port = 1; port <= 65535; port++) {
            struct pkt p = fam ? ip6("fd00::1", "fd00::2", 6, 7, (uint16_t)port)
                               : ip4("10.0.0.1", "10.0.0.2", 6, 7, (uint16_t)port, 5, 0);
            bool want = false;
            for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
                want |= port >= ranges[i][0] && port <= ranges[i][1];
            if (MATCH(r, n, p) != want) {
                wrong++;
                if (first < 0)
                    first = (int)port;
            }
        }
        cr_expect_eq(wrong, 0, "%s: %d ports matched wrongly (the first: %d) with %zu rules",
                     fam ? "IPv6" : "IPv4", wrong, first, n);
    }
    free(r);
    net_target_clear(&t);
}

Test(net_scope, describe)
{
    struct net_target t;
    char buf[256];
    target_ok("{'dst': '10.0.0.7', 'dport': 5432, 'protocol': 'tcp'}", &t);
    net_scope_describe(&t.scope, buf, sizeof buf);
    cr_expect_str_eq(buf, "dst 10.0.0.7/32 dport 5432 tcp");
    net_target_clear(&t);
    target_ok("{'src': ['10.0.0.0/8', 'fd00::/8'], 'sport': ['1-2', 9]}", &t);
    net_scope_describe(&t.scope, buf, sizeof buf);
    cr_expect_str_eq(buf, "src 10.0.0.0/8,fd00::/8 sport 1-2,9");
    net_target_clear(&t);
    target_ok("{}", &t);
    net_scope_describe(&t.scope, buf, sizeof buf);
    cr_expect_str_eq(buf, "all traffic");
    net_target_clear(&t);
}
