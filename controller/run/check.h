/* Judging a check from its samples: aggregate conditions over a window,
 * "eventually" (within) mode, and the sliding window of abort_when. The
 * verdict always says why, with numbers ("success_ratio 0.93 < 0.99 over 150
 * samples during 'slow db'"). */
#ifndef CHAOS_CHECK_H
#define CHAOS_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "probe.h"
#include "scenario.h"

enum check_verdict { CHECK_PENDING, CHECK_PASSED, CHECK_FAILED, CHECK_SKIPPED };

/* One kept observation (the sample's error text is kept in a per-error tally).
 * A sample belongs to the time its outcome was observed (done_ms), not to
 * the time its probe started: a probe that waits out a frozen server and
 * succeeds after the revert saw the system after the revert. */
struct check_obs {
    int64_t t_ms;        /* monotonic ms when the probe started */
    int64_t done_ms;     /* monotonic ms when its outcome was observed */
    int64_t latency_us;
    bool ok;
    bool has_value; /* a query probe's observed number (see struct sample) */
    double value;
};

#define CHECK_MAX_ERROR_KINDS 8

struct check_result {
    const struct check *check;
    enum check_verdict verdict;
    char reason[512];
    struct check_obs *obs;
    size_t n_obs, cap;
    size_t n_ok;
    /* Distinct failure messages with counts, first CHECK_MAX_ERROR_KINDS kinds. */
    struct {
        char msg[192];
        size_t count;
    } errors[CHECK_MAX_ERROR_KINDS];
    size_t n_error_kinds;
    size_t other_errors; /* failures whose message did not fit the tally */
    /* Samples started in the window whose outcome had not come when it
     * ended: not counted (not in obs), only reported. */
    size_t in_flight_at_end;
    /* The detail of the latest sample that had one (a query's evaluation
     * time, how many alerts matched), for the report. */
    char last_detail[160];
    /* Eventually mode: ms from the window's start (window_start_ms) to the
     * start of the sample that held; -1 until one held. */
    int64_t took_ms;
    /* Monotonic ms when the check's window opened (the fault applied, the
     * fault ended ...); 0 when unknown, then the first sample's start. */
    int64_t window_start_ms;
    /* Error budget (probe_budget): evaluated by check_judge. */
    bool budget_evaluated;
    double budget_error_ratio; /* failures/total, or the query's ratio */
    double budget_burned;      /* fraction of the period's budget */
    int64_t budget_window_ms;  /* the span the burn was computed over */
};

void check_result_init(struct check_result *r, const struct check *c);
void check_result_free(struct check_result *r);

/* Records a sample; its outcome counts as observed at s->t_ms plus its
 * latency. Returns 0 or -ENOMEM. */
int check_result_add(struct check_result *r, const struct sample *s);

/* Nearest-rank latency statistic over all samples, in microseconds; -1 when
 * there are none. */
int64_t check_latency(const struct check_result *r, enum latency_stat stat);

/* Judges the aggregate conditions over every sample recorded; window names it
 * in the reason ("during 'slow db'", "before the faults"). Sets verdict. A
 * window without samples fails. With an error budget (expect.budget) the
 * burn must be at most max_burn: burned = error_ratio / (1 - slo) x
 * window / period, the window being the sampled span (first start to last
 * start plus one every); success_ratio is then judged only when written. */
void check_judge(struct check_result *r, const char *window);

/* Eventually mode: true (and verdict PASSED) once a successful sample came. */
bool check_eventually_met(struct check_result *r);
/* Eventually mode: the window ended with no successful sample. */
void check_eventually_expired(struct check_result *r, const char *window);

/* The window ended with n samples still in flight: they are not counted,
 * and the reason check_judge / check_eventually_expired give says so. */
void check_set_in_flight_at_end(struct check_result *r, size_t n);

/* abort_when: evaluates the check's conditions over the samples whose
 * outcome was observed in the last for_ms, whenever their probe started
 * (only the latest sample when for_ms is 0; only once sampling has gone on
 * for for_ms). now_ms and started_ms are monotonic. With an error budget
 * the condition is instead "the samples so far burned more than max_burn".
 * Returns true when the abort condition holds; verdict is then CHECK_FAILED
 * and reason explains it. */
bool check_abort_triggered(struct check_result *r, int64_t now_ms, int64_t started_ms);

/* The samples summary for reports: count, ok, ratio, latency stats, errors,
 * and the first/last sample times relative to base_ms (monotonic). */
json_t *check_summary_json(const struct check_result *r, int64_t base_ms);

const char *check_verdict_str(enum check_verdict v);

#endif
