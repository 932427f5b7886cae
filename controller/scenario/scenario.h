/* The scenario model: a parsed, fully validated scenario file (format v1, see
 * docs/scenario-format.md). Parsing touches nothing on the system. */
#ifndef CHAOS_SCENARIO_H
#define CHAOS_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"
#include "fleet.h"

struct probe;
struct fault_spec;

#define SCENARIO_MAX_FAULTS 64
#define SCENARIO_MAX_CHECKS 64

enum cmp_op { CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_EQ, CMP_NE };

/* A comparison like ">= 0.99" or "< 500ms" (latencies are kept in microseconds). */
struct cmp {
    bool set;
    enum cmp_op op;
    double value;
};

/* Parses "<op> <value>". latency: value is a duration, stored in microseconds;
 * otherwise a plain number. path names the field in errors. */
int cmp_parse(const char *s, bool latency, const char *path, struct cmp *out,
              struct chaos_err *err) __attribute__((warn_unused_result));
bool cmp_holds(const struct cmp *c, double v);
/* "<op>" as text: "<", "<=", ... */
const char *cmp_op_str(enum cmp_op op);

enum check_section { SECTION_STEADY, SECTION_EXPECT, SECTION_ABORT };

enum latency_stat { LAT_P50, LAT_P90, LAT_P95, LAT_P99, LAT_MAX, LAT__COUNT };

struct check {
    char *name;                 /* never NULL: abort_when items get "abort_when[i]" */
    enum check_section section;
    struct probe *probe;
    int64_t every_ms;           /* default 1000 */
    int64_t for_ms;             /* sampling window; defaults per section (docs); -1 unused */
    int64_t within_ms;          /* eventually mode when >= 0; else -1 */
    int during;                 /* index into faults, or -1 */
    int after;                  /* index into faults, or -1 */
    struct cmp success_ratio;   /* always set: default ">= 1" (abort_when: "< 1") */
    struct cmp latency[LAT__COUNT]; /* p50, p90, p95, p99, max_latency; microseconds */
};

struct scenario_fault {
    char *name;
    char *kind;
    int64_t at_ms;
    int64_t duration_ms;        /* -1 when the fault has none (one-off actions) */
    bool rounds_may_fail;       /* on_round_failure "continue"; default "abort" */
    json_t *json;               /* the fault's object as written (a reference): what
                                   a remote backend sends its agent */
    struct fault_spec *spec;
    char *agent;                /* "node1" or "role=db": where it runs; NULL: here */
    const struct fleet_agent **agents; /* agent resolved (scenario_bind_fleet) */
    size_t n_agents;
};

/* An Alertmanager silence the run creates before its faults and removes at
 * its end (docs/verification.md, "Silences for game days"). */
struct scenario_silence {
    char *name;           /* "silences[i]" when not written */
    json_t *alertmanager; /* connection options, checked (am_silence_check_conn) */
    char **matchers;      /* "alertname=CheckoutSlow", checked */
    size_t n_matchers;
};

struct scenario {
    char *path;                 /* file it was loaded from ("-" for stdin) */
    char *name;
    char *description;          /* "" when absent */
    int64_t max_duration_ms;    /* default 30 minutes */
    struct check *steady;  size_t n_steady;
    struct scenario_fault *faults; size_t n_faults;
    struct check *expect;  size_t n_expect;
    struct check *abort_when; size_t n_abort;
    struct scenario_silence *silences; size_t n_silences;
    struct fleet fleet;         /* the scenario's own "agents" (n == 0: none) */
    bool remote;                /* some fault runs on an agent (after scenario_bind_fleet) */
};

/* Reads and validates the file at path. Errors start with the path. */
int scenario_load(const char *path, struct scenario **out, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Validates an already-parsed document; path is used in errors only. */
int scenario_parse(const json_t *root, const char *path, struct scenario **out,
                   struct chaos_err *err) __attribute__((warn_unused_result));
void scenario_free(struct scenario *s);

/* How long fault i stays active: its duration, its natural duration (repeated
 * actions), or 0. */
int64_t scenario_fault_active_ms(const struct scenario *s, size_t i);
/* End of the fault phase relative to its start: max over faults of at + active. */
int64_t scenario_fault_phase_ms(const struct scenario *s);

/* What a valid scenario probably got wrong, for `chaos validate` to say (a
 * run with faults but no steady_state or expect checks nothing). Returns
 * true with buf set when there is something to say. */
bool scenario_warning(const struct scenario *s, char *buf, size_t size);

/* The "silences" section of root into s (scenario_silence.c); errors name
 * the field. */
int scenario_parse_silences(struct scenario *s, const json_t *root, struct chaos_err *err)
    __attribute__((warn_unused_result));
void scenario_silences_free(struct scenario *s);

/* Resolves every fault's "agent" against inventory (from --inventory; may
 * be NULL), or else the scenario's own "agents". Errors name the fault:
 * an agent that no inventory has, a selector matching none, an inventory
 * given twice. 0 or -EINVAL / -ENOMEM. */
int scenario_bind_fleet(struct scenario *s, const struct fleet *inventory, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Index of the fault called name, or -1. */
int scenario_fault_index(const struct scenario *s, const char *name);

#endif
