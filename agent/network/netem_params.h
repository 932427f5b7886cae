/* The "params" of a network fault: what netem does to the packets in scope,
 * parsed and checked (like iproute2's q_netem.c: every combination is
 * validated before a single attribute is emitted), and encoded into an
 * RTM_NEWQDISC request built by hand on tc_msg's bounded message builder:
 * struct tc_netem_qopt, then only the TCA_NETEM_* attributes that are set, as
 * q_netem does (libnl 3.7's netem object could not say rate, the
 * Gilbert-Elliott model or nanosecond delays, and mis-sized its request). */
#ifndef CHAOS_NETEM_PARAMS_H
#define CHAOS_NETEM_PARAMS_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"

struct nl_msg;

enum netem_dist { NETEM_DIST_UNIFORM, NETEM_DIST_NORMAL, NETEM_DIST_PARETO,
                  NETEM_DIST_PARETONORMAL };

/* Percentages are 0-100 as people write them; 0 means "not set". */
struct netem_params {
    bool partition;          /* drop every packet in scope */
    int64_t delay_us, jitter_us; /* microseconds, as netem takes them */
    double delay_corr;
    enum netem_dist dist;
    double loss, loss_corr;
    bool ge;                 /* Gilbert-Elliott loss model instead of random loss */
    double ge_p, ge_r, ge_loss_bad, ge_loss_good;
    double duplicate, duplicate_corr;
    double corrupt, corrupt_corr;
    double reorder, reorder_corr;
    uint64_t rate_bytes;     /* bytes per second; 0: unlimited */
    uint32_t limit;          /* packets netem may hold */
};

#define NETEM_MAX_DELAY_US 60000000LL /* 60 s */
/* The kernel caps jitter at INT_MAX nanoseconds (what its table lookup can
 * scale) without saying so; we refuse more instead. */
#define NETEM_MAX_JITTER_US 2147483LL
#define NETEM_DEFAULT_LIMIT 10000

/* Parses a network fault's "params" (pctx names it in errors). Touches
 * nothing: the distribution table is read at encode time. */
int netem_params_parse(const json_t *params, const char *pctx, struct netem_params *out,
                       struct chaos_err *err) __attribute__((warn_unused_result));

/* Parses a rate the way tc writes it: "100kbit", "1mbit", "1gbit" (bits per
 * second, SI), or "bps", "kbps", "mbps", "gbps" (BYTES per second, as in
 * tc). Sets *bytes_per_s. Exposed for tests. */
int netem_rate_parse(const char *s, uint64_t *bytes_per_s, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* A percentage as the u32 fraction of UINT32_MAX the kernel wants. */
uint32_t netem_prob(double percent);

/* Builds the RTM_NEWQDISC request (NLM_F_CREATE|NLM_F_EXCL) that creates
 * netem with these params as handle under parent on ifindex. dist_dir is
 * the folder with tc's distribution tables (NULL: the usual places). On
 * success *msg is the caller's (nlmsg_free); on failure (a table missing or
 * unreadable, out of memory) *msg is untouched and err says why. */
int netem_build_request(const struct netem_params *p, int ifindex, uint32_t parent,
                        uint32_t handle, const char *dist_dir, struct nl_msg **msg,
                        struct chaos_err *err) __attribute__((warn_unused_result));

/* One line for people, e.g. "delay 100ms jitter 10ms (normal), loss 5%". */
void netem_params_describe(const struct netem_params *p, char *buf, size_t size);

#endif
