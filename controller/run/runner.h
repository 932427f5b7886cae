/* The runner: executes a validated scenario, applying its faults through a
 * backend (backend.h; the embedded engine today). Steady state before, faults on their timeline with
 * expectations sampled in their windows and abort_when watched throughout,
 * steady state again after recovery. Every fault is reverted before
 * runner_run returns: at the end, on abort, on SIGINT/SIGTERM. */
#ifndef CHAOS_RUNNER_H
#define CHAOS_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "check.h"
#include "fault_state.h"
#include "scenario.h"

struct backend_fault;
struct run;

enum run_phase { PHASE_BEFORE, PHASE_FAULTS, PHASE_AFTER };

/* What happened to one fault of the scenario. Times are ms since the run began. */
struct fault_record {
    const struct scenario_fault *fault;
    int64_t planned_ms;   /* when it was due: fault phase start + at; -1 if never reached */
    int64_t applied_ms;   /* -1 if never applied */
    int64_t ended_ms;     /* reverted, finished or aborted; -1 if not */
    /* Where the fault is, as its backend last said (FAULT_PENDING until
     * it is applied; FAULT_APPLY_FAILED when the apply call failed). */
    enum fault_state state;
    char description[512];
    char error[768];
    json_t *events;       /* [{"t_ms":..,"event":..,"detail":..}] */
    /* Every round of the fault's action (the apply is round 1; a repeated
     * kill steps through the rest): [{"round":n,"t_ms":..,"ok":b,"detail":..}] */
    json_t *rounds;
    size_t n_rounds, n_rounds_failed;
    /* runner's own */
    struct backend_fault *bf;
    struct run *run;
};

/* One check sampled in one window. */
struct check_run {
    const struct check *check;
    enum run_phase phase;
    struct check_result res;
    char window[192];     /* "before the faults", "during 'slow db'", ... */
    int64_t started_ms;   /* -1 if it never started (ms since run start) */
    int64_t ended_ms;
    /* runner's own */
    struct run *run;
    bool sampling, finalized;
    int64_t mono_start, next_tick;
    int64_t window_end;   /* monotonic ms the window closes; -1 while open-ended */
    int in_flight;
    size_t ticks_skipped; /* ticks with the probe's bound of samples in flight */
    uint64_t tick_timer, end_timer;
};

struct run_result {
    int exit_code;        /* enum chaos_exit (exit_codes.h): OK held, FAILED a check
                             failed, ABORTED aborted or a fault failed */
    bool aborted;
    bool interrupted;     /* by SIGINT or SIGTERM */
    char abort_reason[768];
    char verdict[256];    /* one line: "PASSED: 3 checks held" */
    size_t checks_judged; /* steady_state and expect windows judged (passed or failed) */
    int64_t started_unix_ms;
    int64_t duration_ms;
    int64_t mono_start_ms; /* run start on the monotonic clock (sample times are on it) */
    struct fault_record *faults;
    size_t n_faults;
    struct check_run *checks; /* steady (before), expect, abort_when, steady (after) */
    size_t n_checks;
    json_t *timeline;     /* [{"t_ms":..,"event":..}] */
    char run_id[96];      /* chaos-<host>-<pid>-<unix ms>: in the silences' comments */
    json_t *silences;     /* run_silences_json; NULL for a scenario without silences */
};

struct run_options {
    const char *state_dir; /* journals go under <state_dir>/journal */
    FILE *out;             /* progress lines and the final verdict */
    bool live;             /* out is a terminal: keep a redrawn status line */
    int64_t watchdog_ms;   /* > 0: the watchdog's limit instead of runner_watchdog_ms()
                              (tests use it to force an overrun) */
    const struct fleet *fleet; /* --inventory the scenario was bound to; NULL: its own */
};

/* The least time the watchdog ever gives a timeline past its plan. */
#define RUNNER_WATCHDOG_GRACE_MS 10000

/* The watchdog's limit for s, from the fault phase's start: the longer of
 * max_duration and the planned timeline (the fault phase, or the end of the
 * last `after` window when that is later), plus a grace of a tenth of that,
 * at least RUNNER_WATCHDOG_GRACE_MS. A timeline not ended by then is aborted
 * (exit 3, "watchdog: the timeline did not end within ...") and every fault
 * reverted: a safety net under the engine's own revert timers. */
int64_t runner_watchdog_ms(const struct scenario *s);

/* Runs s. Returns 0 with *out set (the verdict is in (*out)->exit_code), or a
 * negative errno with err set when the run could not start at all (no
 * journal, no event loop); nothing was touched then. */
int runner_run(const struct scenario *s, const struct run_options *opt, struct run_result **out,
               struct chaos_err *err) __attribute__((warn_unused_result));
void run_result_free(struct run_result *r);

/* Prints what a run would do, without touching anything (--dry-run). */
void runner_print_plan(const struct scenario *s, FILE *out);

/* The default state folder: $CHAOS_STATE_DIR; else /var/lib/chaos for root,
 * $XDG_STATE_HOME/chaos or ~/.local/state/chaos for other users. */
const char *runner_default_state_dir(void);

#endif
