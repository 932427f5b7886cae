/* Unit tests of the network fault's pure parts: the "target" and "params"
 * parsers (every error names its field), rates and probabilities, the port
 * blocks and u32 rules of a scope (checked key by key, and by running the
 * rules over hand-built packets), and the RTM_NEWQDISC request for netem,
 * parsed back with libnl the way the kernel reads it. Nothing here touches
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

/* ---- target -------------------------------------------------------------- */

Test(net_target, absent_means_all_egress_on_the_default_interface)
{
    struct net_target t;
    struct chaos_err err = {0};
    cr_assert_eq(net_target_parse(NULL, TCTX, &t, &err), 0, "%s", err.msg);
    cr_expect_null(t.netns_path);
    cr_expect_eq(t.netns_pid, 0);
    cr_expect_null(t.ifname);
    cr_expect_eq(t.direction, NET_EGRESS);
    cr_expect_eq(t.scope.n_dst + t.scope.n_src + t.scope.n_dport + t.scope.n_sport, 0);
    cr_expect_eq(t.scope.proto, NET_PROTO_ANY);
    net_target_clear(&t);

    target_ok("{}", &t);
    cr_expect_eq(t.direction, NET_EGRESS);
    net_target_clear(&t);
}

Test(net_target, every_field)
{
    struct net_target t;
    target_ok("{'netns': 'blue', 'interface': 'veth0', 'direction': 'both',"
              " 'dst': ['10.0.0.0/24', '10.1.2.3'], 'src': '10.9.0.0/16',"
              " 'dport': [5432, '8000-8100'], 'sport': '1024-65535', 'protocol': 'tcp'}",
              &t);
    cr_expect_str_eq(t.netns_path, "/run/netns/blue", "a bare name is what `ip netns add` made");
    cr_expect_str_eq(t.ifname, "veth0");
    cr_expect_eq(t.direction, NET_BOTH);
    cr_assert_eq(t.scope.n_dst, 2);
    cr_expect_eq(t.scope.dst[0].family, AF_INET);
    cr_expect_eq(t.scope.dst[0].prefix, 24);
    cr_expect_eq(memcmp(t.scope.dst[0].addr, "\x0a\x00\x00\x00", 4), 0);
    cr_expect_eq(t.scope.dst[1].prefix, 32, "a bare address is a /32");
    cr_expect_eq(memcmp(t.scope.dst[1].addr, "\x0a\x01\x02\x03", 4), 0);
    cr_assert_eq(t.scope.n_src, 1);
    cr_expect_eq(t.scope.src[0].prefix, 16);
    cr_assert_eq(t.scope.n_dport, 2);
    cr_expect_eq(t.scope.dport[0].lo, 5432);
    cr_expect_eq(t.scope.dport[0].hi, 5432);
    cr_expect_eq(t.scope.dport[1].lo, 8000);
    cr_expect_eq(t.scope.dport[1].hi, 8100);
    cr_assert_eq(t.scope.n_sport, 1);
    cr_expect_eq(t.scope.sport[0].lo, 1024);
    cr_expect_eq(t.scope.sport[0].hi, 65535);
    cr_expect_eq(t.scope.proto, NET_PROTO_TCP);
    net_target_clear(&t);
    cr_expect_null(t.ifname, "clear leaves a zeroed struct");

    target_ok("{'direction': 'ingress', 'protocol': 'icmp', 'dst': 'fd00::/64'}", &t);
    cr_expect_eq(t.direction, NET_INGRESS);
    cr_expect_eq(t.scope.proto, NET_PROTO_ICMP);
    cr_expect_eq(t.scope.dst[0].family, AF_INET6);
    cr_expect_eq(t.scope.dst[0].prefix, 64);
    net_target_clear(&t);
    target_ok("{'protocol': 'udp', 'direction': 'egress'}", &t);
    cr_expect_eq(t.scope.proto, NET_PROTO_UDP);
    cr_expect_eq(t.direction, NET_EGRESS);
    net_target_clear(&t);
}

Test(net_target, netns_name_path_or_pid)
{
    struct net_target t;
    target_ok("{'netns': '/var/run/netns/red'}", &t);
    cr_expect_str_eq(t.netns_path, "/var/run/netns/red", "an absolute path is used as it is");
    net_target_clear(&t);
    target_ok("{'netns_pid': 4242}", &t);
    cr_expect_eq(t.netns_pid, 4242);
    cr_expect_null(t.netns_path);
    net_target_clear(&t);

    target_fails("{'netns': 'blue', 'netns_pid': 12}",
                 TCTX ".netns_pid: give either netns or netns_pid, not both");
    target_fails("{'netns': 'netns/blue'}", TCTX ".netns: 'netns/blue' must be an absolute path");
    target_fails("{'netns': ''}", TCTX ".netns: must be a namespace name");
    target_fails("{'netns': '..'}", TCTX ".netns: '..' is not a namespace name");
    target_fails("{'netns': 7}", TCTX ".netns: must be a string");
    target_fails("{'netns_pid': 0}", TCTX ".netns_pid: 0 is out of range");
    target_fails("{'netns_pid': 4194305}", TCTX ".netns_pid: 4194305 is out of range");
}

Test(net_target, interface_names)
{
    struct net_target t;
    target_ok("{'interface': 'abcdefghijklmno'}", &t); /* 15: the most IFNAMSIZ allows */
    cr_expect_str_eq(t.ifname, "abcdefghijklmno");
    net_target_clear(&t);
    target_fails("{'interface': 'abcdefghijklmnop'}",
                 TCTX ".interface: 'abcdefghijklmnop' is not an interface name (1-15 characters");
    target_fails("{'interface': ''}", TCTX ".interface: '' is not an interface name");
    target_fails("{'interface': 'a/b'}", TCTX ".interface: 'a/b' is not an interface name");
    target_fails("{'interface': 'eth 0'}", TCTX ".interface: 'eth 0' is not an interface name");
    target_fails("{'direction': 'out'}",
                 TCTX ".direction: must be \"egress\", \"ingress\" or \"both\", not 'out'");
    target_fails("{'protocol': 'sctp'}",
                 TCTX ".protocol: must be \"tcp\", \"udp\" or \"icmp\", not 'sctp'");
    target_fails("{'dports': 80}", TCTX ".dports: unknown field; did you mean 'dport'?");
    target_fails("{'port': 80}", TCTX ".port: unknown field");
}

Test(net_target, ports_name_the_element)
{
    target_fails("{'dport': [80, 70000]}", TCTX ".dport[1]: 70000 is not a port (1-65535)");
    target_fails("{'dport': 0}", TCTX ".dport: 0 is not a port (1-65535)");
    target_fails("{'sport': ['1-2', '9000-8000']}",
                 TCTX ".sport[1]: range '9000-8000' ends before it starts");
    target_fails("{'dport': ['80x']}", TCTX ".dport[0]: '80x' is not a port or range");
    target_fails("{'dport': '80-'}", TCTX ".dport: '80-' is not a port or range");
    target_fails("{'dport': '-80'}", TCTX ".dport: '-80' is not a port or range");
    target_fails("{'dport': '1-65536'}", TCTX ".dport: 65536 is not a port (1-65535)");
    target_fails("{'dport': [80, true]}", TCTX ".dport[1]: must be a port number or a range");
    target_fails("{'dport': []}", TCTX ".dport: must list 1 to 32 ports or ranges, not 0");
    target_fails("{'dport': [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,"
                 "26,27,28,29,30,31,32,33]}",
                 TCTX ".dport: must list 1 to 32 ports or ranges, not 33");
}

Test(net_target, addresses_and_cidrs)
{
    target_fails("{'dst': '10.0.0.7/24'}", TCTX ".dst: '10.0.0.7/24' has host bits set");
    target_fails("{'dst': ['10.0.0.0/8', 'fd00::1/64']}",
                 TCTX ".dst[1]: 'fd00::1/64' has host bits set");
    target_fails("{'src': '10.0.0.0/33'}", TCTX ".src: '10.0.0.0/33': prefix length must be 0-32");
    target_fails("{'src': 'fd00::/129'}", TCTX ".src: 'fd00::/129': prefix length must be 0-128");
    target_fails("{'dst': '10.0.0.0/'}", TCTX ".dst: '10.0.0.0/' has an empty prefix length");
    target_fails("{'dst': '10.0.0.0/2x'}", TCTX ".dst: '10.0.0.0/2x': prefix length must be");
    target_fails("{'dst': 'db.example.com'}",
                 TCTX ".dst: 'db.example.com' is not an IPv4 or IPv6 address or CIDR");
    target_fails("{'dst': ['10.0.0.1', 5]}", TCTX ".dst[1]: must be an address or CIDR string");
    target_fails("{'dst': {}}", TCTX ".dst: must be an address or CIDR string, or an array");
    target_fails("{'dst': []}", TCTX ".dst: must list 1 to 32 addresses, not 0");

    struct net_target t;
    target_ok("{'dst': ['0.0.0.0/0', '::/0']}", &t);
    cr_expect_eq(t.scope.dst[0].prefix, 0);
    cr_expect_eq(t.scope.dst[1].prefix, 0);
    net_target_clear(&t);
    target_ok("{'dst': '10.0.0.0/24', 'src': ['fd00::/8', '192.168.0.0/16']}", &t);
    cr_expect_eq(t.scope.n_src, 2, "one family in common is enough");
    net_target_clear(&t);
}

Test(net_target, combinations)
{
    target_fails("{'dst': '10.0.0.1', 'src': 'fd00::1'}",
                 TCTX ".src: no address family in common with dst");
    target_fails("{'dst': ['fd00::1', 'fd00::2'], 'src': '10.0.0.0/8'}",
                 TCTX ".src: no address family in common with dst");
    target_fails("{'protocol': 'icmp', 'dport': 80}",
                 TCTX ".protocol: icmp has no ports; drop dport or the protocol");
    target_fails("{'protocol': 'icmp', 'sport': '1-1024'}",
                 TCTX ".protocol: icmp has no ports; drop sport or the protocol");

    /* 32 x 32 addresses: 1024 filters per direction. */
    char text[2048] = "{'dst': [";
    for (int i = 0; i < 32; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s'10.0.%d.1'", i ? "," : "", i);
    strcat(text, "], 'src': [");
    for (int i = 0; i < 32; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s'10.1.%d.1'", i ? "," : "", i);
    strcat(text, "]}");
    target_fails(text, TCTX ": the scope needs more than 256 filters");
}

/* ---- rates and probabilities ------------------------------------------- */

Test(netem_rate, units_as_tc_reads_them)
{
    static const struct {
        const char *s;
        uint64_t bytes;
    } ok[] = {
        {"8bit", 1},          {"100kbit", 12500},         {"1mbit", 125000}, {"2.5mbit", 312500},
        {"1gbit", 125000000}, {"1tbit", 125000000000ull}, {"100bps", 100},   {"1kbps", 1000},
        {"1mbps", 1000000},   {"3gbps", 3000000000},      {"1MBit", 125000}, {"0.5kbps", 500},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct chaos_err err = {0};
        uint64_t b = 0;
        cr_expect_eq(netem_rate_parse(ok[i].s, &b, &err), 0, "%s: %s", ok[i].s, err.msg);
        cr_expect_eq(b, ok[i].bytes, "%s: %llu bytes/s, want %llu", ok[i].s, (unsigned long long)b,
                     (unsigned long long)ok[i].bytes);
    }
    /* The trap tc sets: kbps is kilobytes, 8 times kbit. */
    uint64_t kbit = 0, kbps = 0;
    struct chaos_err err = {0};
    cr_assert_eq(netem_rate_parse("100kbit", &kbit, &err), 0);
    cr_assert_eq(netem_rate_parse("100kbps", &kbps, &err), 0);
    cr_expect_eq(kbps, 8 * kbit);
}

Test(netem_rate, garbage_is_refused)
{
    static const char *const bad[] = {"",       "fast",     "mbit",    "1",         "1 mbit",
                                      "-1mbit", ".5mbit",   "1e3kbit", "1.2.3mbit", "1mbit ",
                                      "1kib",   "0x10kbit", "1,5mbit"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct chaos_err err = {0};
        uint64_t b = 77;
        cr_expect_lt(netem_rate_parse(bad[i], &b, &err), 0, "'%s' was accepted", bad[i]);
        cr_expect_eq(b, 77, "'%s': output written on error", bad[i]);
        cr_expect(strstr(err.msg, bad[i]) != NULL, "'%s': the error does not quote it: %s", bad[i],
                  err.msg);
    }
    struct chaos_err err = {0};
    uint64_t b;
    cr_expect_eq(netem_rate_parse("0mbit", &b, &err), -ERANGE);
    cr_expect(strstr(err.msg, "below 1 byte per second"), "%s", err.msg);
    cr_expect_eq(netem_rate_parse("4bit", &b, &err), -ERANGE, "half a byte per second");
    cr_expect_eq(netem_rate_parse("100tbit", &b, &err), -ERANGE);
    cr_expect(strstr(err.msg, "above 10 TB/s"), "%s", err.msg);
    cr_expect_lt(netem_rate_parse("123456789012345678901234mbit", &b, &err), 0);
}

Test(netem_prob, percent_to_u32_fraction)
{
    cr_expect_eq(netem_prob(0), 0u);
    cr_expect_eq(netem_prob(-3), 0u);
    cr_expect_eq(netem_prob(100), UINT32_MAX);
    cr_expect_eq(netem_prob(250), UINT32_MAX);
    uint32_t half = netem_prob(50);
    cr_expect(half >= UINT32_MAX / 2 && half <= UINT32_MAX / 2 + 1, "50%% is %u", half);
    uint32_t one = netem_prob(1);
    cr_expect(one >= 42949672u && one <= 42949673u, "1%% is %u", one);
    cr_expect_gt(netem_prob(0.0001), 0u, "a tiny percentage is not zero");
    cr_expect_lt(netem_prob(99.9999), UINT32_MAX, "just below 100%% is below UINT32_MAX");
    cr_expect_lt(netem_prob(25), netem_prob(26));
}

/* ---- params -------------------------------------------------------------- */

Test(netem_params, defaults_and_every_field)
{
    struct netem_params p;
    params_ok("{'delay': '100ms'}", &p);
    cr_expect_eq(p.delay_us, 100000);
    cr_expect_eq(p.limit, NETEM_DEFAULT_LIMIT);
    cr_expect_eq(p.limit, 10000);
    cr_expect_not(p.partition);
    cr_expect_not(p.ge);
    cr_expect_eq(p.rate_bytes, 0);

    params_ok("{'delay': '1.5s', 'jitter': '250ms', 'correlation': 25, 'distribution': "
              "'pareto', 'loss': 0.5, 'loss_correlation': 10, 'duplicate': 1, "
              "'duplicate_correlation': 2, 'corrupt': 0.1, 'corrupt_correlation': 3, "
              "'reorder': 30, 'reorder_correlation': 40, 'rate': '10mbit', 'limit': 500}",
              &p);
    cr_expect_eq(p.delay_us, 1500000);
    cr_expect_eq(p.jitter_us, 250000);
    cr_expect_float_eq(p.delay_corr, 25, 1e-9);
    cr_expect_eq(p.dist, NETEM_DIST_PARETO);
    cr_expect_float_eq(p.loss, 0.5, 1e-9);
    cr_expect_float_eq(p.loss_corr, 10, 1e-9);
    cr_expect_float_eq(p.duplicate, 1, 1e-9);
    cr_expect_float_eq(p.duplicate_corr, 2, 1e-9);
    cr_expect_float_eq(p.corrupt, 0.1, 1e-9);
    cr_expect_float_eq(p.corrupt_corr, 3, 1e-9);
    cr_expect_float_eq(p.reorder, 30, 1e-9);
    cr_expect_float_eq(p.reorder_corr, 40, 1e-9);
    cr_expect_eq(p.rate_bytes, 1250000);
    cr_expect_eq(p.limit, 500);

    params_ok("{'partition': true}", &p);
    cr_expect(p.partition);
    params_ok("{'rate': '1mbit'}", &p);
    cr_expect_eq(p.rate_bytes, 125000, "a rate alone is a fault");
    params_ok("{'duplicate': 5}", &p);
    params_ok("{'corrupt': 5}", &p);
    params_ok("{'loss': 100}", &p);
    params_ok("{'delay': '10ms', 'jitter': '10ms', 'distribution': 'normal'}", &p);
    cr_expect_eq(p.dist, NETEM_DIST_NORMAL, "jitter equal to delay is fine");
    params_ok("{'delay': '500us', 'jitter': '120us'}", &p);
    cr_expect_eq(p.delay_us, 500, "netem takes microseconds: 500us stays 500us");
    cr_expect_eq(p.jitter_us, 120);
    params_ok("{'delay': '1.25ms'}", &p);
    cr_expect_eq(p.delay_us, 1250);
    params_ok("{'delay': '5s', 'jitter': '2.1s'}", &p);
    cr_expect_eq(p.jitter_us, 2100000);
    params_ok("{'delay': '60s'}", &p);
}

Test(netem_params, describe_says_what_was_asked)
{
    struct netem_params p;
    char buf[256];
    params_ok("{'delay': '500us', 'jitter': '120us'}", &p);
    netem_params_describe(&p, buf, sizeof buf);
    cr_expect_str_eq(buf, "delay 500us jitter 120us");
    params_ok("{'delay': '1.5s', 'jitter': '250ms', 'distribution': 'pareto', 'loss': 5}", &p);
    netem_params_describe(&p, buf, sizeof buf);
    cr_expect_str_eq(buf, "delay 1.5s jitter 250ms (pareto), loss 5%");
}

Test(netem_params, gilbert_elliott)
{
    struct netem_params p;
    params_ok("{'gilbert_elliott': {'p': 5}}", &p);
    cr_expect(p.ge);
    cr_expect_float_eq(p.ge_p, 5, 1e-9);
    cr_expect_float_eq(p.ge_r, 95, 1e-9, "r defaults to 100 - p, as tc");
    cr_expect_float_eq(p.ge_loss_bad, 100, 1e-9);
    cr_expect_float_eq(p.ge_loss_good, 0, 1e-9);
    params_ok("{'gilbert_elliott': {'p': 1, 'r': 20, 'loss_in_bad': 80, 'loss_in_good': 0.5}}", &p);
    cr_expect_float_eq(p.ge_r, 20, 1e-9);
    cr_expect_float_eq(p.ge_loss_bad, 80, 1e-9);
    cr_expect_float_eq(p.ge_loss_good, 0.5, 1e-9);

    params_fail("{'gilbert_elliott': {'p': 1}, 'loss': 5}",
                PCTX ".gilbert_elliott: replaces loss; give one loss model, not both");
    params_fail("{'gilbert_elliott': {'r': 10}}", PCTX ".gilbert_elliott.p: required field");
    params_fail("{'gilbert_elliott': {'p': 0}}", PCTX ".gilbert_elliott.p: must be more than 0");
    params_fail("{'gilbert_elliott': {'p': 1, 'h': 3}}", PCTX ".gilbert_elliott.h: unknown field");
    params_fail("{'gilbert_elliott': {'p': 1, 'loss_in_bad': 101}}",
                PCTX ".gilbert_elliott.loss_in_bad: 101 is out of range (0-100)");
    params_fail("{'gilbert_elliott': 5}", PCTX ".gilbert_elliott: must be an object");
}

Test(netem_params, combinations_as_tc_checks_them)
{
    params_fail("{'jitter': '10ms'}", PCTX ".jitter: needs delay");
    params_fail("{'delay': '10ms', 'jitter': '11ms'}", PCTX ".jitter: is larger than delay");
    params_fail("{'delay': '10ms', 'correlation': 20}", PCTX ".correlation: needs jitter");
    params_fail("{'delay': '10ms', 'distribution': 'normal'}", PCTX ".distribution: needs jitter");
    params_fail("{'reorder': 10, 'loss': 1}", PCTX ".reorder: needs delay");
    params_fail("{'loss_correlation': 10, 'delay': '1ms'}", PCTX ".loss_correlation: needs loss");
    params_fail("{'duplicate_correlation': 10, 'delay': '1ms'}",
                PCTX ".duplicate_correlation: needs duplicate");
    params_fail("{'corrupt_correlation': 10, 'delay': '1ms'}",
                PCTX ".corrupt_correlation: needs corrupt");
    params_fail("{'reorder_correlation': 10, 'delay': '1ms'}",
                PCTX ".reorder_correlation: needs reorder");
    params_fail("{'delay': '61s'}", PCTX ".delay: at most 60s");
    params_fail("{'delay': '10ms', 'jitter': '2m'}", PCTX ".jitter: at most 2.147s");
    params_fail("{'delay': '5s', 'jitter': '3s'}",
                PCTX ".jitter: at most 2.147s (the kernel silently caps jitter at 2^31 ns)");
}

Test(netem_params, partition_stands_alone)
{
    params_fail("{'partition': true, 'delay': '10ms'}",
                PCTX ".delay: cannot be combined with partition");
    params_fail("{'partition': true, 'loss': 50}", PCTX ".loss: cannot be combined with partition");
    params_fail("{'partition': true, 'limit': 100}",
                PCTX ".limit: cannot be combined with partition");
    params_fail("{'partition': true, 'rate': '1mbit'}",
                PCTX ".rate: cannot be combined with partition");
    params_fail("{'partition': true, 'gilbert_elliott': {'p': 1}}",
                PCTX ".gilbert_elliott: cannot be combined with partition");
    params_fail("{'partition': 'yes'}", PCTX ".partition: must be true or false");
}

Test(netem_params, params_that_do_nothing)
{
    params_fail("{}", PCTX ": does nothing; give at least one of delay, loss");
    params_fail("{'limit': 100}", PCTX ": does nothing");
    params_fail("{'partition': false}", PCTX ": does nothing");
    params_fail("{'delay': '0ms', 'loss': 0}", PCTX ": does nothing");
    struct chaos_err err = {0};
    struct netem_params p;
    cr_expect_lt(netem_params_parse(NULL, PCTX, &p, &err), 0);
    cr_expect_eq(strncmp(err.msg, PCTX ": required field is missing",
                         sizeof(PCTX ": required field is missing") - 1),
                 0, "%s", err.msg);
}

Test(netem_params, values_and_types)
{
    params_fail("{'loss': 101}", PCTX ".loss: 101 is out of range (0-100)");
    params_fail("{'loss': -1}", PCTX ".loss: -1 is out of range (0-100)");
    params_fail("{'loss': '5%'}", PCTX ".loss: must be a number");
    params_fail("{'delay': 100}", PCTX ".delay: must be a duration string");
    params_fail("{'delay': '100'}", PCTX ".delay: ");
    params_fail("{'delay': '10ms', 'limit': 0}", PCTX ".limit: 0 is out of range");
    params_fail("{'delay': '10ms', 'limit': 1000001}", PCTX ".limit: 1000001 is out of range");
    params_fail("{'delay': '10ms', 'jitter': '1ms', 'distribution': 'gauss'}",
                PCTX ".distribution: must be \"uniform\", \"normal\", \"pareto\" or "
                     "\"paretonormal\", not 'gauss'");
    params_fail("{'rate': '1kib'}", PCTX ".rate: '1kib' has no known unit");
    params_fail("{'rate': 1000}", PCTX ".rate: must be a string");
    params_fail("{'delay': '10ms', 'latency': '5ms'}", PCTX ".latency: unknown field");
    params_fail("[]", PCTX ": must be an object");
}

/* ---- port blocks --------------------------------------------------------- */

/* ---- the netem request --------------------------------------------------- */

/* A request as the kernel reads it: the tcmsg, TCA_KIND, TCA_OPTIONS holding
 * struct tc_netem_qopt, then netem's own attributes up to the end of
 * TCA_OPTIONS (sch_netem parses them from there). */
struct request {
    struct nl_msg *msg;
    struct nlmsghdr *nlh;
    struct tcmsg *tcm;
    const char *kind;
    struct nlattr *opts;
    size_t opts_end; /* offset of the first byte after TCA_OPTIONS */
    struct tc_netem_qopt qopt;
    struct nlattr *nested[TCA_NETEM_MAX + 1];
    int nested_left; /* bytes of TCA_OPTIONS that are not well-formed attributes */
};

static void build(const char *params, const char *dist_dir, struct request *q)
{
    struct netem_params p;
    params_ok(params, &p);
    memset(q, 0, sizeof *q);
    struct chaos_err err = {0};
    cr_assert_eq(
        netem_build_request(&p, 7, HANDLE(0xca05, 4), HANDLE(0xca10, 0), dist_dir, &q->msg, &err),
        0, "%s: %s", params, err.msg);
    q->nlh = nlmsg_hdr(q->msg);
    cr_assert_geq(nlmsg_get_max_size(q->msg), q->nlh->nlmsg_len,
                  "%s: nlmsg_len %u is beyond the message buffer (%zu bytes)", params,
                  q->nlh->nlmsg_len, nlmsg_get_max_size(q->msg));
    cr_assert_eq(q->nlh->nlmsg_type, RTM_NEWQDISC);
    q->tcm = nlmsg_data(q->nlh);
    struct nlattr *a;
    int rem;
    nlmsg_for_each_attr(a, q->nlh, sizeof(struct tcmsg), rem)
    {
        if (nla_type(a) == TCA_KIND)
            q->kind = nla_get_string(a);
        if (nla_type(a) == TCA_OPTIONS)
            q->opts = a;
    }
    cr_assert_not_null(q->kind, "%s: no TCA_KIND", params);
    cr_assert_not_null(q->opts, "%s: no TCA_OPTIONS", params);
    q->opts_end = (size_t)((char *)q->opts - (char *)q->nlh) + NLA_ALIGN(q->opts->nla_len);
    cr_assert_geq(nla_len(q->opts), (int)sizeof q->qopt, "%s: TCA_OPTIONS too short", params);
    memcpy(&q->qopt, nla_data(q->opts), sizeof q->qopt);
    int len = nla_len(q->opts) - (int)NLA_ALIGN(sizeof q->qopt);
    struct nlattr *head = (struct nlattr *)((char *)nla_data(q->opts) + NLA_ALIGN(sizeof q->qopt));
    nla_for_each_attr(a, head, len, rem)
    {
        if (nla_type(a) <= TCA_NETEM_MAX)
            q->nested[nla_type(a)] = a;
    }
    q->nested_left = rem;
}

static void expect_spans(const struct request *q, const char *what)
{
    cr_expect_eq(q->opts_end, q->nlh->nlmsg_len,
                 "%s: TCA_OPTIONS ends at byte %zu but the message at %u: sch_netem reads its "
                 "attributes from TCA_OPTIONS only",
                 what, q->opts_end, q->nlh->nlmsg_len);
    cr_expect_eq(q->nested_left, 0, "%s: %d bytes of TCA_OPTIONS are not attributes", what,
                 q->nested_left);
}

Test(netem_request, delay_and_loss)
{
    struct request q;
    build("{'delay': '100ms', 'loss': 5, 'limit': 321}", NULL, &q);
    cr_expect(q.nlh->nlmsg_flags & NLM_F_CREATE);
    cr_expect(q.nlh->nlmsg_flags & NLM_F_EXCL);
    cr_expect_eq(q.tcm->tcm_ifindex, 7);
    cr_expect_eq(q.tcm->tcm_parent, HANDLE(0xca05, 4));
    cr_expect_eq(q.tcm->tcm_handle, HANDLE(0xca10, 0));
    cr_expect_str_eq(q.kind, "netem");
    cr_expect_eq(q.qopt.limit, 321);
    cr_expect_eq(q.qopt.loss, netem_prob(5));
    cr_expect_gt(q.qopt.latency, 0, "delay in ticks");
    cr_expect_eq(q.qopt.jitter, 0);
    cr_expect_eq(q.qopt.gap, 0, "no reorder, no gap");
    cr_expect_eq(q.qopt.duplicate, 0);
    cr_expect_null(q.nested[TCA_NETEM_RATE]);
    cr_expect_null(q.nested[TCA_NETEM_LOSS]);
    expect_spans(&q, "delay and loss");
    nlmsg_free(q.msg);

    /* Latency is in psched ticks: twice the delay, twice the ticks. */
    struct request q2;
    build("{'delay': '200ms', 'duplicate': 2}", NULL, &q2);
    cr_expect_eq(q2.qopt.latency, 2 * q.qopt.latency);
    cr_expect_eq(q2.qopt.limit, NETEM_DEFAULT_LIMIT);
    cr_expect_eq(q2.qopt.duplicate, netem_prob(2));
    cr_expect_eq(q2.qopt.loss, 0);
    expect_spans(&q2, "delay and duplicate");
    nlmsg_free(q2.msg);
}

/* The ticks of the legacy fields are 64 ns: 500us would be 499.968us there,
 * so delay and jitter also go in nanoseconds, which the kernel prefers. */
Test(netem_request, delay_and_jitter_in_nanoseconds)
{
    struct request q;
    build("{'delay': '500us', 'jitter': '120us'}", NULL, &q);
    cr_assert_not_null(q.nested[TCA_NETEM_LATENCY64], "no TCA_NETEM_LATENCY64");
    cr_expect_eq((int64_t)nla_get_s64(q.nested[TCA_NETEM_LATENCY64]), 500000);
    cr_assert_not_null(q.nested[TCA_NETEM_JITTER64], "no TCA_NETEM_JITTER64");
    cr_expect_eq((int64_t)nla_get_s64(q.nested[TCA_NETEM_JITTER64]), 120000);
    expect_spans(&q, "delay and jitter");
    nlmsg_free(q.msg);

    build("{'delay': '1.5s', 'rate': '1mbit'}", NULL, &q);
    cr_assert_not_null(q.nested[TCA_NETEM_LATENCY64]);
    cr_expect_eq((int64_t)nla_get_s64(q.nested[TCA_NETEM_LATENCY64]), 1500000000);
    cr_expect_null(q.nested[TCA_NETEM_JITTER64], "no jitter, no JITTER64");
    cr_expect_not_null(q.nested[TCA_NETEM_RATE], "rate next to the 64-bit delay");
    expect_spans(&q, "delay and rate");
    nlmsg_free(q.msg);
}

Test(netem_request, partition_drops_everything)
{
    struct request q;
    build("{'partition': true}", NULL, &q);
    cr_expect_eq(q.qopt.loss, UINT32_MAX);
    cr_expect_eq(q.qopt.latency, 0);
    cr_expect_eq(q.qopt.limit, NETEM_DEFAULT_LIMIT);
    for (int i = 1; i <= TCA_NETEM_MAX; i++)
        cr_expect_null(q.nested[i], "partition carries attribute %d", i);
    expect_spans(&q, "partition");
    nlmsg_free(q.msg);
}

Test(netem_request, rate)
{
    struct request q;
    build("{'rate': '1mbit'}", NULL, &q);
    cr_assert_not_null(q.nested[TCA_NETEM_RATE], "rate set, no TCA_NETEM_RATE");
    struct tc_netem_rate rate;
    cr_assert_geq(nla_len(q.nested[TCA_NETEM_RATE]), (int)sizeof rate);
    memcpy(&rate, nla_data(q.nested[TCA_NETEM_RATE]), sizeof rate);
    cr_expect_eq(rate.rate, 125000, "bytes per second");
    cr_expect_null(q.nested[TCA_NETEM_RATE64], "a rate that fits in 32 bits needs no RATE64");
    expect_spans(&q, "rate");
    nlmsg_free(q.msg);

    /* 40gbit is 5e9 bytes/s: more than a u32 says. */
    build("{'delay': '1ms', 'rate': '40gbit'}", NULL, &q);
    cr_assert_not_null(q.nested[TCA_NETEM_RATE]);
    memcpy(&rate, nla_data(q.nested[TCA_NETEM_RATE]), sizeof rate);
    cr_expect_eq(rate.rate, UINT32_MAX);
    cr_assert_not_null(q.nested[TCA_NETEM_RATE64]);
    cr_expect_eq(nla_get_u64(q.nested[TCA_NETEM_RATE64]), 5000000000ull);
    expect_spans(&q, "rate64");
    nlmsg_free(q.msg);
}

static struct tc_netem_gemodel ge_of(const struct request *q)
{
    struct tc_netem_gemodel ge = {0};
    const struct nlattr *loss = q->nested[TCA_NETEM_LOSS];
    cr_assert_not_null(loss, "no TCA_NETEM_LOSS");
    struct nlattr *a, *found = NULL;
    int rem;
    nla_for_each_nested(a, loss, rem)
    {
        if (nla_type(a) == NETEM_LOSS_GE)
            found = a;
        cr_expect_eq(nla_type(a), NETEM_LOSS_GE, "TCA_NETEM_LOSS holds attribute %d", nla_type(a));
    }
    cr_assert_not_null(found, "TCA_NETEM_LOSS has no NETEM_LOSS_GE");
    cr_assert_geq(nla_len(found), (int)sizeof ge);
    memcpy(&ge, nla_data(found), sizeof ge);
    return ge;
}

Test(netem_request, gilbert_elliott)
{
    struct request q;
    build("{'gilbert_elliott': {'p': 5, 'r': 30, 'loss_in_bad': 80, 'loss_in_good': 1}}", NULL, &q);
    struct tc_netem_gemodel ge = ge_of(&q);
    cr_expect_eq(ge.p, netem_prob(5));
    cr_expect_eq(ge.r, netem_prob(30));
    cr_expect_eq(ge.h, UINT32_MAX - netem_prob(80), "h is 1 - loss_in_bad (tc's \"1-h\")");
    cr_expect_eq(ge.k1, netem_prob(1));
    cr_expect_eq(q.qopt.loss, 0, "the random loss stays off");
    expect_spans(&q, "gilbert_elliott");
    nlmsg_free(q.msg);

    build("{'gilbert_elliott': {'p': 2}, 'rate': '10kbit'}", NULL, &q);
    ge = ge_of(&q);
    cr_expect_eq(ge.r, netem_prob(98));
    cr_expect_eq(ge.h, 0, "loses everything in the bad state by default");
    cr_expect_eq(ge.k1, 0);
    cr_expect_not_null(q.nested[TCA_NETEM_RATE]);
    expect_spans(&q, "gilbert_elliott and rate");
    nlmsg_free(q.msg);
}

Test(netem_request, reorder_sets_gap)
{
    struct request q;
    build("{'delay': '50ms', 'reorder': 25, 'reorder_correlation': 5}", NULL, &q);
    cr_expect_eq(q.qopt.gap, 1, "netem reorders only with a gap");
    cr_assert_not_null(q.nested[TCA_NETEM_REORDER]);
    struct tc_netem_reorder ro;
    memcpy(&ro, nla_data(q.nested[TCA_NETEM_REORDER]), sizeof ro);
    cr_expect_eq(ro.probability, netem_prob(25));
    cr_expect_eq(ro.correlation, netem_prob(5));
    expect_spans(&q, "reorder");
    nlmsg_free(q.msg);
}

/* libnl puts corr, reorder, corrupt and the distribution inside TCA_OPTIONS
 * itself; what netem_params adds (rate, Gilbert-Elliott) must land inside
 * it too, where the kernel looks, with everything libnl put there. */
Test(netem_request, everything_at_once)
{
    struct request q;
    build("{'delay': '100ms', 'jitter': '10ms', 'correlation': 20, 'reorder': 25, "
          "'corrupt': 1, 'rate': '1mbit', 'gilbert_elliott': {'p': 1, 'loss_in_bad': 80}}",
          NULL, &q);
    cr_expect_not_null(q.nested[TCA_NETEM_CORR], "correlation");
    cr_expect_not_null(q.nested[TCA_NETEM_REORDER], "reorder");
    cr_expect_not_null(q.nested[TCA_NETEM_CORRUPT], "corrupt");
    cr_expect_not_null(q.nested[TCA_NETEM_RATE], "rate is lost: the kernel would not see it");
    cr_expect_not_null(q.nested[TCA_NETEM_LOSS],
                       "gilbert_elliott is lost: the kernel would not see it");
    cr_expect_eq(q.qopt.gap, 1);
    cr_expect_gt(q.qopt.jitter, 0);
    expect_spans(&q, "everything");
    nlmsg_free(q.msg);
}

static char dist_dir[64];

static void dist_setup(void)
{
    snprintf(dist_dir, sizeof dist_dir, "/tmp/chaos-t-net-%d", (int)getpid());
    cr_assert(mkdir(dist_dir, 0700) == 0 || errno == EEXIST);
    char path[128];
    snprintf(path, sizeof path, "%s/normal.dist", dist_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("# a tiny table\n1 2 3 -4\n5 6\n", f);
    fclose(f);
    /* As large as the tables iproute2 ships: 4096 values. */
    snprintf(path, sizeof path, "%s/paretonormal.dist", dist_dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 4096; i++)
        fprintf(f, "%d%c", i - 2048, i % 8 == 7 ? '\n' : ' ');
    fclose(f);
}

static void dist_teardown(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/normal.dist", dist_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/paretonormal.dist", dist_dir);
    unlink(path);
    rmdir(dist_dir);
}

Test(netem_request, distribution_table, .init = dist_setup, .fini = dist_teardown)
{
    struct request q;
    build("{'delay': '100ms', 'jitter': '20ms', 'distribution': 'normal'}", dist_dir, &q);
    struct nlattr *d = q.nested[TCA_NETEM_DELAY_DIST];
    cr_assert_not_null(d, "no TCA_NETEM_DELAY_DIST");
    static const int16_t want[] = {1, 2, 3, -4, 5, 6};
    cr_assert_eq(nla_len(d), (int)sizeof want);
    cr_expect_eq(memcmp(nla_data(d), want, sizeof want), 0, "the table's values");
    expect_spans(&q, "distribution");
    nlmsg_free(q.msg);

    /* With a rate as well: all three must reach the kernel. */
    build("{'delay': '100ms', 'jitter': '20ms', 'distribution': 'normal', 'rate': '5mbit'}",
          dist_dir, &q);
    cr_expect_not_null(q.nested[TCA_NETEM_DELAY_DIST]);
    cr_expect_not_null(q.nested[TCA_NETEM_RATE]);
    expect_spans(&q, "distribution and rate");
    nlmsg_free(q.msg);

    /* A full-size table: the whole request stays inside libnl's buffer
     * (build() checks nlmsg_len against it), alone and with what we add. */
    build("{'delay': '100ms', 'jitter': '20ms', 'distribution': 'paretonormal'}", dist_dir, &q);
    expect_spans(&q, "full-size distribution");
    nlmsg_free(q.msg);
    build("{'delay': '100ms', 'jitter': '20ms', 'distribution': 'paretonormal', 'rate': "
          "'5mbit', 'gilbert_elliott': {'p': 1}}",
          dist_dir, &q);
    d = q.nested[TCA_NETEM_DELAY_DIST];
    cr_assert_not_null(d);
    cr_expect_eq(nla_len(d), 4096 * 2);
    cr_expect_eq(((const int16_t *)nla_data(d))[4095], 2047);
    cr_expect_not_null(q.nested[TCA_NETEM_RATE]);
    cr_expect_not_null(q.nested[TCA_NETEM_LOSS]);
    expect_spans(&q, "full-size distribution, rate and gilbert_elliott");
    nlmsg_free(q.msg);

    /* A table that is not there: said before anything is sent. */
    struct netem_params p;
    params_ok("{'delay': '100ms', 'jitter': '20ms', 'distribution': 'pareto'}", &p);
    struct chaos_err err = {0};
    struct nl_msg *msg = NULL;
    cr_expect_eq(
        netem_build_request(&p, 7, HANDLE(0xca05, 4), HANDLE(0xca10, 0), dist_dir, &msg, &err),
        -ENOENT);
    cr_expect_null(msg);
    cr_expect(strstr(err.msg, "table pareto.dist not found"), "%s", err.msg);
}
