#include "runner.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include "duration.h"
#include "backend.h"
#include "backend_remote.h"
#include "exit_codes.h"
#include "loop.h"
#include "probe.h"
#include "run_result.h"
#include "run_silences.h"
#include "util.h"

struct run {
    const struct scenario *s;
    const struct run_options *opt;
    struct run_result *res;
    struct loop *loop;
    const struct backend_ops *backend; /* the seam every fault goes through */
    void *backend_ctx;
    bool reverted_all;      /* the backend's revert_all is done: the loop may end */
    int finish_code;
    struct probe_runner *probes;
    enum run_phase phase;
    int64_t mono_start;     /* run start, monotonic ms */
    int64_t fault_t0;       /* fault phase start, monotonic ms */
    int64_t expected_total; /* estimate for the progress line */
    bool finishing;
    uint64_t *fault_timers;
    uint64_t watchdog_timer;
    int64_t watchdog_ms; /* from the fault phase's start */
    uint64_t status_timer;
    bool status_shown;
    int sigfd;
    struct run_silences *silences;
    bool silencing;         /* the silences' creation is in flight */
};

static int64_t rel_ms(const struct run *run)
{
    return loop_now_ms() - run->mono_start;
}

/* ---- output ---- */

static void clear_status(struct run *run)
{
    if (run->status_shown) {
        fputs("\r\033[K", run->opt->out);
        run->status_shown = false;
    }
}

static void draw_status(struct run *run)
{
    if (!run->opt->live || run->finishing)
        return;
    char el[32], tot[32], line[512];
    duration_format(rel_ms(run) / 100 * 100, el, sizeof el);
    duration_format(run->expected_total, tot, sizeof tot);
    static const char *const names[] = {"steady state", "faults", "recovery"};
    int off = snprintf(line, sizeof line, "[%s / ~%s] %s", el, tot, names[run->phase]);
    const char *sep = " | active: ";
    for (size_t i = 0; i < run->res->n_faults && off < (int)sizeof line; i++) {
        struct fault_record *fr = &run->res->faults[i];
        if (fr->state == FAULT_ACTIVE || fr->state == FAULT_REVERTING) {
            off += snprintf(line + off, sizeof line - (size_t)off, "%s%s", sep, fr->fault->name);
            sep = ", ";
        }
    }
    for (size_t i = 0; i < run->res->n_checks && off < (int)sizeof line; i++) {
        struct check_run *cr = &run->res->checks[i];
        if (cr->sampling)
            off += snprintf(line + off, sizeof line - (size_t)off, " | %s %zu/%zu ok",
                            cr->check->name, cr->res.n_ok, cr->res.n_obs);
    }
    clear_status(run);
    fputs(line, run->opt->out);
    fflush(run->opt->out);
    run->status_shown = true;
}

/* An event line for people, and a timeline entry for the report. */
static void __attribute__((format(printf, 2, 3))) event(struct run *run, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int64_t t = rel_ms(run);
    clear_status(run);
    fprintf(run->opt->out, "[%7.2fs] %s\n", (double)t / 1000.0, msg);
    fflush(run->opt->out);
    json_array_append_new(run->res->timeline, json_pack("{s:I, s:s}", "t_ms", (json_int_t)t,
                                                        "event", msg));
    draw_status(run);
}

static void on_status_timer(struct loop *loop, void *arg)
{
    struct run *run = arg;
    draw_status(run);
    run->status_timer = loop_add_timer(loop, loop_now_ms() + 250, on_status_timer, run);
    /* Only the redrawn line depends on it; the run goes on, and says so. */
    if (!run->status_timer)
        event(run, "the live status line stops: cannot arm its timer: %s", strerror(errno));
}

/* ---- checks ---- */

static void finish(struct run *run, int code);
static void abort_run(struct run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A timer the run depends on could not be armed (errno says why): the run
 * cannot keep its timeline, so it is aborted and every fault reverted. */
static void unarmed(struct run *run, const char *what, const char *name, const char *timer)
{
    abort_run(run, "%s '%s': cannot arm its %s: %s", what, name, timer, strerror(errno));
}

static void check_finalized(struct run *run, struct check_run *cr);

static bool is_eventually(const struct check_run *cr)
{
    return cr->check->within_ms >= 0 && cr->check->section != SECTION_ABORT;
}

/* A check judged during or after a fault some of whose rounds failed (and
 * the scenario allowed it: on_round_failure "continue") says so. */
static void note_failed_rounds(struct check_run *cr)
{
    int idx = cr->check->during >= 0 ? cr->check->during : cr->check->after;
    if (idx < 0 || cr->phase != PHASE_FAULTS)
        return;
    const struct fault_record *fr = &cr->run->res->faults[idx];
    if (!fr->n_rounds_failed)
        return;
    size_t len = strlen(cr->res.reason);
    snprintf(cr->res.reason + len, sizeof cr->res.reason - len,
             "; note: %zu of %zu rounds of '%s' failed to act", fr->n_rounds_failed, fr->n_rounds,
             fr->fault->name);
}

/* An abort_when that did not trigger. One that never got a sample was not
 * watched: that is not "never triggered" (the run went on without its safety
 * net), so it fails. */
static void judge_untriggered_abort(struct check_run *cr)
{
    if (cr->res.verdict != CHECK_PENDING)
        return;
    if (cr->res.n_obs == 0) {
        cr->res.verdict = CHECK_FAILED;
        snprintf(cr->res.reason, sizeof cr->res.reason,
                 "never sampled: the stop condition was not watched");
    } else {
        cr->res.verdict = CHECK_PASSED;
        snprintf(cr->res.reason, sizeof cr->res.reason, "never triggered (%zu samples)",
                 cr->res.n_obs);
    }
}

static void finalize(struct check_run *cr)
{
    if (cr->finalized)
        return;
    cr->finalized = true;
    cr->ended_ms = rel_ms(cr->run);
    check_set_in_flight_at_end(&cr->res, (size_t)cr->in_flight);
    if (cr->check->section == SECTION_ABORT) {
        judge_untriggered_abort(cr);
    } else if (is_eventually(cr)) {
        if (!check_eventually_met(&cr->res))
            check_eventually_expired(&cr->res, cr->window);
    } else {
        check_judge(&cr->res, cr->window);
    }
    note_failed_rounds(cr);
    check_finalized(cr->run, cr);
}

/* The window closes now and is judged at once: a sample counts only if
 * its outcome was observed inside the window. Samples still in flight
 * started inside it but would report on the system after it (a probe that
 * waited out a frozen server answers after the revert), so they are left
 * out and the verdict says how many (check_set_in_flight_at_end). */
static void stop_sampling(struct check_run *cr)
{
    struct loop *loop = cr->run->loop;
    if (cr->tick_timer)
        loop_cancel_timer(loop, cr->tick_timer);
    if (cr->end_timer)
        loop_cancel_timer(loop, cr->end_timer);
    cr->tick_timer = cr->end_timer = 0;
    cr->sampling = false;
    finalize(cr);
}

static void on_sample(const struct sample *s, void *arg)
{
    struct check_run *cr = arg;
    struct run *run = cr->run;
    cr->in_flight--;
    if (cr->finalized || !cr->sampling)
        return; /* observed after its window: reported as in flight, not counted */
    if (check_result_add(&cr->res, s) < 0) {
        abort_run(run, "out of memory recording samples of '%s'", cr->check->name);
        return;
    }
    if (cr->check->section == SECTION_ABORT) {
        if (check_abort_triggered(&cr->res, loop_now_ms(), cr->mono_start)) {
            /* Judged: the report shows it triggered, not "not judged". */
            cr->finalized = true;
            cr->sampling = false;
            cr->ended_ms = rel_ms(run);
            abort_run(run, "abort_when '%s' triggered: %s", cr->check->name, cr->res.reason);
        }
    } else if (is_eventually(cr) && check_eventually_met(&cr->res)) {
        stop_sampling(cr);
    }
}

static void on_tick(struct loop *loop, void *arg)
{
    struct check_run *cr = arg;
    cr->tick_timer = 0;
    int64_t now = loop_now_ms();
    if (!cr->sampling || (cr->window_end >= 0 && now >= cr->window_end))
        return; /* a sample started now could not report inside the window */
    struct chaos_err err = {0};
    if (cr->in_flight >= probe_max_in_flight(cr->check->probe)) {
        cr->ticks_skipped++; /* the probe is slower than every: no pile-up */
    } else if (probe_start(cr->run->probes, cr->check->probe, on_sample, cr, &err) < 0) {
        /* A probe that cannot even start is a failed sample, not a crash. */
        struct sample s = {.t_ms = loop_now_ms(), .status = -1};
        snprintf(s.error, sizeof s.error, "%s", err.msg);
        cr->in_flight++;
        on_sample(&s, cr);
        if (!cr->sampling)
            return;
    } else {
        cr->in_flight++;
    }
    /* Ticks stay on the grid start + k*every, whatever each sample costs. */
    cr->next_tick += cr->check->every_ms;
    now = loop_now_ms();
    if (cr->next_tick < now)
        cr->next_tick = now;
    cr->tick_timer = loop_add_timer(loop, cr->next_tick, on_tick, cr);
    if (!cr->tick_timer)
        unarmed(cr->run, "check", cr->check->name, "sampling timer");
}

static void on_window_end(struct loop *loop, void *arg)
{
    struct check_run *cr = arg;
    cr->end_timer = 0;
    stop_sampling(cr);
}

/* Starts sampling cr now. length_ms < 0: until stop_sampling() is called. */
static void start_check(struct check_run *cr, int64_t length_ms)
{
    struct run *run = cr->run;
    if (cr->sampling || cr->finalized || run->finishing)
        return;
    int64_t now = loop_now_ms();
    cr->sampling = true;
    cr->mono_start = cr->next_tick = now;
    cr->res.window_start_ms = now;
    cr->started_ms = now - run->mono_start;
    if (is_eventually(cr) && (length_ms < 0 || cr->check->within_ms < length_ms))
        length_ms = cr->check->within_ms;
    cr->window_end = length_ms >= 0 ? now + length_ms : -1;
    /* A window whose end or first sample never comes would hold the run
     * (or judge it on nothing): such a check ends the run instead. */
    if (length_ms >= 0 &&
        !(cr->end_timer = loop_add_timer(run->loop, now + length_ms, on_window_end, cr))) {
        unarmed(run, "check", cr->check->name, "window-end timer");
        return;
    }
    if (!(cr->tick_timer = loop_add_timer(run->loop, now, on_tick, cr)))
        unarmed(run, "check", cr->check->name, "sampling timer");
}

static bool all_done(struct run *run, enum run_phase phase, bool *any_failed)
{
    bool done = true;
    for (size_t i = 0; i < run->res->n_checks; i++) {
        struct check_run *cr = &run->res->checks[i];
        /* abort_when is watched across every phase: it never holds one up. */
        if (cr->phase != phase || cr->check->section == SECTION_ABORT)
            continue;
        if (!cr->finalized)
            done = false;
        else if (cr->res.verdict == CHECK_FAILED && any_failed)
            *any_failed = true;
    }
    return done;
}

/* ---- phases ---- */

static void begin_faults(struct run *run);
static void begin_silences(struct run *run);
static void begin_after(struct run *run);
static void stop_abort_watch(struct run *run);

static bool faults_all_ended(struct run *run)
{
    for (size_t i = 0; i < run->res->n_faults; i++) {
        struct fault_record *fr = &run->res->faults[i];
        if (!fault_state_ended(fr->state))
            return false;
    }
    return true;
}

static void maybe_advance(struct run *run)
{
    if (run->finishing)
        return;
    bool failed = false;
    switch (run->phase) {
    case PHASE_BEFORE:
        if (run->silencing || !all_done(run, PHASE_BEFORE, &failed))
            return;
        if (failed) {
            event(run, "steady state did not hold before the faults: no fault was injected");
            finish(run, CHAOS_EXIT_FAILED);
        } else if (run->s->n_silences) {
            begin_silences(run);
        } else {
            begin_faults(run);
        }
        return;
    case PHASE_FAULTS:
        if (!faults_all_ended(run) || !all_done(run, PHASE_FAULTS, NULL))
            return;
        begin_after(run);
        return;
    case PHASE_AFTER:
        if (!all_done(run, PHASE_AFTER, &failed))
            return;
        stop_abort_watch(run);
        for (size_t i = 0; i < run->res->n_checks; i++)
            if (run->res->checks[i].res.verdict == CHECK_FAILED)
                failed = true;
        finish(run, failed ? CHAOS_EXIT_FAILED : CHAOS_EXIT_OK);
        return;
    }
}

static void check_finalized(struct run *run, struct check_run *cr)
{
    if (cr->check->section == SECTION_ABORT)
        return; /* it holds up no phase (all_done) */
    event(run, "%s '%s' %s: %s",
          cr->check->section == SECTION_STEADY ? "steady state" : "expectation", cr->check->name,
          check_verdict_str(cr->res.verdict), cr->res.reason);
    maybe_advance(run);
}

static void start_phase_checks(struct run *run, enum run_phase phase)
{
    for (size_t i = 0; i < run->res->n_checks; i++) {
        struct check_run *cr = &run->res->checks[i];
        if (cr->phase == phase && cr->check->section == SECTION_STEADY)
            start_check(cr, cr->check->for_ms);
    }
}

/* abort_when is watched for the whole run: from the first steady-state
 * sample to the end of the last after window and the recovery steady state
 * (a breaker that trips only after the revert must stop the run too). */
static void start_abort_watch(struct run *run)
{
    for (size_t i = 0; i < run->res->n_checks; i++)
        if (run->res->checks[i].check->section == SECTION_ABORT)
            start_check(&run->res->checks[i], -1);
}

/* The run's last check is judged: abort_when has watched all it will. */
static void stop_abort_watch(struct run *run)
{
    for (size_t i = 0; i < run->res->n_checks; i++) {
        struct check_run *cr = &run->res->checks[i];
        if (cr->check->section == SECTION_ABORT && !cr->finalized)
            stop_sampling(cr);
    }
}

/* The whole-phase samplers stop once every fault has ended. */
static void stop_phase_samplers(struct run *run)
{
    for (size_t i = 0; i < run->res->n_checks; i++) {
        struct check_run *cr = &run->res->checks[i];
        if (cr->phase == PHASE_FAULTS && cr->sampling && cr->check->section == SECTION_EXPECT &&
            cr->check->during < 0 && cr->check->after < 0)
            stop_sampling(cr);
    }
}

static void fault_event(struct fault_record *fr, const char *what, const char *detail)
{
    json_array_append_new(fr->events, json_pack("{s:I, s:s, s:s}", "t_ms",
                                                 (json_int_t)rel_ms(fr->run), "event", what,
                                                 "detail", detail ? detail : ""));
}

static void fault_round(struct fault_record *fr, bool ok, const char *detail)
{
    fr->n_rounds++;
    fr->n_rounds_failed += !ok;
    json_array_append_new(fr->rounds, json_pack("{s:I, s:I, s:b, s:s}", "round",
                                                 (json_int_t)fr->n_rounds, "t_ms",
                                                 (json_int_t)rel_ms(fr->run), "ok", ok, "detail",
                                                 detail ? detail : ""));
}

static void start_fault_checks(struct run *run, size_t idx, bool after)
{
    for (size_t i = 0; i < run->res->n_checks; i++) {
        struct check_run *cr = &run->res->checks[i];
        if (cr->phase != PHASE_FAULTS)
            continue;
        if (!after && cr->check->during == (int)idx)
            start_check(cr, -1);
        /* A check with neither during nor after samples from the first
         * fault's start (the first apply) to the last fault's end. */
        if (!after && cr->check->section == SECTION_EXPECT && cr->check->during < 0 &&
            cr->check->after < 0)
            start_check(cr, -1);
        if (after && cr->check->after == (int)idx)
            start_check(cr, cr->check->for_ms);
    }
}

static void stop_during_checks(struct run *run, size_t idx)
{
    for (size_t i = 0; i < run->res->n_checks; i++) {
        struct check_run *cr = &run->res->checks[i];
        if (cr->phase == PHASE_FAULTS && cr->check->during == (int)idx && cr->sampling)
            stop_sampling(cr);
    }
}

static void fault_apply_failed(struct fault_record *fr, const char *why)
{
    snprintf(fr->error, sizeof fr->error, "%s", why);
    fault_event(fr, "apply_failed", why);
    abort_run(fr->run, "fault '%s' could not be applied: %s", fr->fault->name, why);
}

static void fault_ended(struct fault_record *fr, enum backend_event ev)
{
    struct run *run = fr->run;
    size_t idx = (size_t)(fr - run->res->faults);
    const char *how = ev == BACKEND_FINISHED ? "finished" : "reverted";
    fr->ended_ms = rel_ms(run);
    event(run, "fault '%s' %s", fr->fault->name, how);
    stop_during_checks(run, idx);
    start_fault_checks(run, idx, true);
    if (faults_all_ended(run))
        stop_phase_samplers(run);
    maybe_advance(run);
}

/* Every event of a fault, from its backend (always from the loop). The
 * fault's state is the backend's word (fr->state); this records what
 * happened and moves the timeline on. */
static void on_backend_event(struct backend_fault *bf, enum backend_event ev,
                             enum fault_state st, const char *detail, void *arg)
{
    struct fault_record *fr = arg;
    struct run *run = fr->run;
    size_t idx = (size_t)(fr - run->res->faults);
    const char *name = fr->fault->name;
    fr->state = st;
    switch (ev) {
    case BACKEND_APPLIED:
        fr->applied_ms = rel_ms(run);
        snprintf(fr->description, sizeof fr->description, "%s", detail);
        fault_event(fr, "applied", detail);
        fault_round(fr, true, detail);
        event(run, "fault '%s' applied: %s", name, detail);
        start_fault_checks(run, idx, false);
        break;
    case BACKEND_APPLY_FAILED:
        fault_apply_failed(fr, detail);
        break;
    case BACKEND_STEPPED:
        snprintf(fr->description, sizeof fr->description, "%s", detail);
        fault_event(fr, "stepped", detail);
        fault_round(fr, true, detail);
        event(run, "fault '%s': %s", name, detail);
        break;
    case BACKEND_STEP_FAILED:
        fault_event(fr, "step_failed", detail);
        fault_round(fr, false, detail);
        event(run, "fault '%s': round %zu FAILED: %s", name, fr->n_rounds, detail);
        /* A round that hit nothing means the experiment did not do what the
         * scenario says: by default that ends it (exit 3) rather than let a
         * "during" check pass over a fault that was not there. */
        if (!fr->fault->rounds_may_fail)
            abort_run(run,
                      "fault '%s' round %zu failed: %s (set \"on_round_failure\": \"continue\" "
                      "on the fault to go on)",
                      name, fr->n_rounds, detail);
        break;
    case BACKEND_FINISHED:
    case BACKEND_REVERTED:
        fault_event(fr, ev == BACKEND_FINISHED ? "finished" : "reverted", detail);
        fault_ended(fr, ev);
        break;
    case BACKEND_ENDING:
        /* What the window saw after this saw the fault coming down. */
        stop_during_checks(run, idx);
        break;
    case BACKEND_REVERT_FAILED:
        snprintf(fr->error, sizeof fr->error, "%s", detail);
        fault_event(fr, "revert_failed", detail);
        abort_run(run, "fault '%s' could not be reverted: %s", name, detail);
        break;
    case BACKEND_ABORTED:
        /* Ended early by the backend; what it applied is reverted. */
        fr->ended_ms = rel_ms(run);
        snprintf(fr->error, sizeof fr->error, "%s", detail);
        fault_event(fr, "failed", detail);
        abort_run(run, "fault '%s' ended early: %s", name, detail);
        break;
    }
}

static void on_fault_due(struct loop *loop, void *arg)
{
    struct fault_record *fr = arg;
    struct run *run = fr->run;
    size_t idx = (size_t)(fr - run->res->faults);
    run->fault_timers[idx] = 0;
    if (run->finishing)
        return;
    fr->planned_ms = rel_ms(run);
    struct chaos_err err = {0};
    const struct scenario_fault *f = fr->fault;
    struct backend_request req = {.name = f->name, .spec = f->spec, .json = f->json,
                                  .agents = f->agents, .n_agents = f->n_agents};
    if (run->backend->apply(run->backend_ctx, &req, on_backend_event, fr, &fr->bf, &err) < 0) {
        fr->state = FAULT_APPLY_FAILED;
        fault_apply_failed(fr, err.msg);
    }
}

/* What the watchdog found still open, for its abort reason. */
static void still_open(const struct run *run, char *buf, size_t size)
{
    int off = 0;
    const char *sep = "; still open: ";
    buf[0] = '\0';
    for (size_t i = 0; i < run->res->n_faults && off < (int)size; i++) {
        const struct fault_record *fr = &run->res->faults[i];
        if (!fault_state_ended(fr->state)) {
            off += snprintf(buf + off, size - (size_t)off, "%sfault '%s'", sep, fr->fault->name);
            sep = ", ";
        }
    }
    for (size_t i = 0; i < run->res->n_checks && off < (int)size; i++) {
        const struct check_run *cr = &run->res->checks[i];
        if (cr->phase == PHASE_FAULTS && !cr->finalized && cr->check->section != SECTION_ABORT) {
            off += snprintf(buf + off, size - (size_t)off, "%scheck '%s'", sep, cr->check->name);
            sep = ", ";
        }
    }
}


static void on_watchdog(struct loop *loop, void *arg)
{
    struct run *run = arg;
    run->watchdog_timer = 0;
    char d[32], open[384];
    duration_format(run->watchdog_ms, d, sizeof d);
    still_open(run, open, sizeof open);
    abort_run(run, "watchdog: the timeline did not end within %s of the fault phase's start%s", d,
              open);
}

int64_t runner_watchdog_ms(const struct scenario *s)
{
    int64_t planned = scenario_fault_phase_ms(s);
    if (run_after_ms(s) > planned)
        planned = run_after_ms(s);
    int64_t limit = s->max_duration_ms > planned ? s->max_duration_ms : planned;
    /* The grace covers a timeline that slipped behind its plan (a slow
     * apply delays every later timer), not one that stopped. */
    int64_t grace = limit / 10 > RUNNER_WATCHDOG_GRACE_MS ? limit / 10 : RUNNER_WATCHDOG_GRACE_MS;
    return limit + grace;
}

static void begin_faults(struct run *run)
{
    run->phase = PHASE_FAULTS;
    run->fault_t0 = loop_now_ms();
    char d[32];
    duration_format(scenario_fault_phase_ms(run->s), d, sizeof d);
    event(run, "fault phase begins (%zu fault%s over %s)", run->s->n_faults,
          run->s->n_faults == 1 ? "" : "s", d);
    /* Armed first: nothing may be applied that the watchdog does not cover. */
    run->watchdog_ms =
        run->opt->watchdog_ms > 0 ? run->opt->watchdog_ms : runner_watchdog_ms(run->s);
    run->watchdog_timer =
        loop_add_timer(run->loop, run->fault_t0 + run->watchdog_ms, on_watchdog, run);
    if (!run->watchdog_timer) {
        unarmed(run, "scenario", run->s->name, "watchdog timer");
        return;
    }
    for (size_t i = 0; i < run->s->n_faults; i++) {
        run->fault_timers[i] = loop_add_timer(run->loop, run->fault_t0 + run->s->faults[i].at_ms,
                                              on_fault_due, &run->res->faults[i]);
        if (!run->fault_timers[i]) {
            unarmed(run, "fault", run->s->faults[i].name, "start timer");
            return;
        }
    }
    start_phase_checks(run, PHASE_FAULTS);
}

static void on_silenced(const char *error, void *arg)
{
    struct run *run = arg;
    run->silencing = false;
    if (run->finishing)
        return; /* aborted meanwhile: the silences go with the reverts */
    if (error) {
        abort_run(run, "%s; no fault was injected", error);
        return;
    }
    event(run, "%zu silence%s created (run %s)", run->s->n_silences,
          run->s->n_silences == 1 ? "" : "s", run->res->run_id);
    begin_faults(run);
}

/* Game-day silences before the first fault. They end by themselves past
 * the watchdog's limit and the steady state after, should nobody remove
 * them: a dead run's silence outlives it by minutes, not forever. */
static void begin_silences(struct run *run)
{
    int64_t ends = loop_unix_ms() + runner_watchdog_ms(run->s) + run_steady_ms(run->s) +
                   RUNNER_WATCHDOG_GRACE_MS;
    struct chaos_err e = {0};
    run->silencing = true;
    if (run_silences_create(run->silences, ends, on_silenced, run, &e) < 0) {
        run->silencing = false;
        abort_run(run, "%s; no fault was injected", e.msg);
    }
}

static void cancel_watchdog(struct run *run)
{
    if (run->watchdog_timer)
        loop_cancel_timer(run->loop, run->watchdog_timer);
    run->watchdog_timer = 0;
}

static void begin_after(struct run *run)
{
    cancel_watchdog(run);
    run->phase = PHASE_AFTER;
    if (run->s->n_steady)
        event(run, "every fault has ended; checking the steady state again");
    start_phase_checks(run, PHASE_AFTER);
    maybe_advance(run);
}

/* The last step: a silence left behind (it expires by itself, and `chaos
 * recover` retries) makes the exit CHAOS_EXIT_ABORTED like a fault left
 * behind; the loop ends. */
static void on_unsilenced(void *arg)
{
    struct run *run = arg;
    size_t left = run_silences_left(run->silences);
    if (left) {
        event(run, "%zu silence%s could not be removed (see the report): they expire by "
              "themselves, and `chaos recover` retries", left, left == 1 ? "" : "s");
        run->res->exit_code = CHAOS_EXIT_ABORTED;
    } else if (run->s->n_silences) {
        event(run, "silences removed");
    }
    run->reverted_all = true;
    clear_status(run);
    loop_stop(run->loop);
}

/* The backend has reverted every fault: the verdict's exit code; then the
 * silences go and the loop ends. A fault whose revert failed (its state
 * says so) makes it CHAOS_EXIT_ABORTED. */
static void on_reverted_all(int failed, void *arg)
{
    struct run *run = arg;
    int code = run->finish_code;
    for (size_t i = 0; i < run->res->n_faults; i++)
        if (run->res->faults[i].state == FAULT_REVERT_FAILED)
            code = CHAOS_EXIT_ABORTED;
    if (failed > 0)
        code = CHAOS_EXIT_ABORTED;
    run->res->exit_code = code;
    if (!run->silences || !run_silences_remove(run->silences, on_unsilenced, run))
        on_unsilenced(run);
}

/* Stops everything that samples, reverts every fault, and ends the loop. */
static void finish(struct run *run, int code)
{
    if (run->finishing)
        return;
    run->finishing = true;
    cancel_watchdog(run);
    for (size_t i = 0; i < run->s->n_faults; i++)
        if (run->fault_timers[i]) {
            loop_cancel_timer(run->loop, run->fault_timers[i]);
            run->fault_timers[i] = 0;
        }
    /* Checks still open are not judged on a window the finish cut short
     * (an abort must not let a half "during" window pass): they are closed
     * before the reverts, whose events would otherwise judge them. */
    for (size_t i = 0; i < run->res->n_checks; i++) {
        struct check_run *cr = &run->res->checks[i];
        if (cr->tick_timer)
            loop_cancel_timer(run->loop, cr->tick_timer);
        if (cr->end_timer)
            loop_cancel_timer(run->loop, cr->end_timer);
        cr->tick_timer = cr->end_timer = 0;
        cr->sampling = false;
        if (!cr->finalized && cr->check->section == SECTION_ABORT) {
            /* It watched until now: judged on what it saw, never skipped. */
            cr->finalized = true;
            cr->ended_ms = rel_ms(run);
            check_set_in_flight_at_end(&cr->res, (size_t)cr->in_flight);
            judge_untriggered_abort(cr);
        } else if (!cr->finalized) {
            cr->finalized = true;
            cr->res.verdict = CHECK_SKIPPED;
            snprintf(cr->res.reason, sizeof cr->res.reason, "%s",
                     run->res->aborted ? "not judged: the run was aborted"
                                       : "not judged: its window never came");
        }
    }
    /* The loop runs on until the backend has reverted everything and its
     * last events are in (on_reverted_all ends it). */
    run->finish_code = code;
    run->backend->revert_all(run->backend_ctx, on_reverted_all, run);
}

static void abort_run(struct run *run, const char *fmt, ...)
{
    if (run->finishing)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run->res->abort_reason, sizeof run->res->abort_reason, fmt, ap);
    va_end(ap);
    run->res->aborted = true;
    event(run, "ABORT: %s; reverting every fault", run->res->abort_reason);
    finish(run, CHAOS_EXIT_ABORTED);
}

static void on_signal(struct loop *loop, int fd, uint32_t events, void *arg)
{
    struct run *run = arg;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) != (ssize_t)sizeof si)
        return;
    run->res->interrupted = true;
    const char *name = sigabbrev_np((int)si.ssi_signo);
    abort_run(run, "interrupted by SIG%s", name ? name : "?");
}

static void recovery_log(const char *line, void *arg)
{
    struct run *run = arg;
    fprintf(run->opt->out, "recovery: %s\n", line);
}

/* SIGINT/SIGTERM through a signalfd on a new loop (so reverting happens
 * in order), the backend, the probes. On failure err says why; the caller
 * frees what was opened (out_sig) and restores *old. */
static int open_run(struct run *run, sigset_t *old, struct chaos_err *err)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, old);
    run->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (run->sigfd < 0)
        return chaos_err_set(err, errno, "signalfd: %s", strerror(errno));
    if (!(run->loop = loop_new()))
        return chaos_err_set(err, errno, "event loop: %s", strerror(errno));
    int r = loop_add_fd(run->loop, run->sigfd, EPOLLIN, on_signal, run);
    if (r < 0)
        return chaos_err_set(err, -r, "event loop: %s", strerror(-r));
    /* Before the probes: the embedded backend forks its guard, which must
     * happen while this process has no other threads. */
    struct backend_options bopt = {.state_dir = run->opt->state_dir, .log = recovery_log,
                                   .log_arg = run, .controller_id = run->res->run_id,
                                   .fleet = run->opt->fleet ? run->opt->fleet : &run->s->fleet};
    if ((r = run->backend->open(run->loop, &bopt, &run->backend_ctx, err)) < 0)
        return r;
    if (!(run->probes = probe_runner_new(run->loop, err)))
        return -err->code;
    /* Silences a dead run left go now, as its faults just did. */
    struct chaos_err serr = {0};
    if (run_silences_recover(run->opt->state_dir, false, recovery_log, run, &serr) < 0)
        fprintf(run->opt->out, "recovery: %s\n", serr.msg);
    if (run->s->n_silences)
        return run_silences_new(run->loop, run->s, run->opt->state_dir, run->res->run_id,
                                &run->silences, err);
    return 0;
}

/* The clock starts and the steady state is checked first. */
static void start_run(struct run *run)
{
    const struct scenario *s = run->s;
    run->mono_start = loop_now_ms();
    run->res->started_unix_ms = loop_unix_ms();
    run->res->mono_start_ms = run->mono_start;
    run->expected_total = 2 * run_steady_ms(s) + scenario_fault_phase_ms(s);
    if (run_after_ms(s) > scenario_fault_phase_ms(s))
        run->expected_total += run_after_ms(s) - scenario_fault_phase_ms(s);
    size_t checks = s->n_steady + s->n_expect;
    event(run, "scenario '%s': %zu fault%s, %zu check%s", s->name, s->n_faults,
          s->n_faults == 1 ? "" : "s", checks, checks == 1 ? "" : "s");
    if (run->opt->live &&
        !(run->status_timer = loop_add_timer(run->loop, loop_now_ms() + 250, on_status_timer, run)))
        event(run, "no live status line: cannot arm its timer: %s", strerror(errno));
    run->phase = PHASE_BEFORE;
    if (s->n_steady)
        event(run, "checking the steady state");
    start_abort_watch(run);
    start_phase_checks(run, PHASE_BEFORE);
    maybe_advance(run);
}

/* chaos-<host>-<pid>-<unix ms>: unique across the machines that share an
 * Alertmanager, and a safe file name (the silences' journal). */
static void set_run_id(struct run_result *res)
{
    char host[64] = "host";
    if (gethostname(host, sizeof host) < 0)
        snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-'))
            *c = '-';
    snprintf(res->run_id, sizeof res->run_id, "chaos-%.40s-%d-%lld", host, (int)getpid(),
             (long long)loop_unix_ms());
}

int runner_run(const struct scenario *s, const struct run_options *opt, struct run_result **out,
               struct chaos_err *err)
{
    /* Faults on agents go through the fleet backend; a scenario without any
     * keeps the embedded engine alone, exactly as before. */
    struct run run = {.s = s, .opt = opt, .sigfd = -1,
                      .backend = s->remote ? &backend_fleet : &backend_embedded};
    int r = -ENOMEM;
    run.fault_timers = calloc(s->n_faults ? s->n_faults : 1, sizeof *run.fault_timers);
    if (!run.fault_timers) {
        chaos_err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    if (!(run.res = run_result_new(s, &run, err))) {
        r = -err->code;
        goto out;
    }

    set_run_id(run.res);
    sigset_t old;
    if ((r = open_run(&run, &old, err)) < 0)
        goto out_sig;
    start_run(&run);
    if (!run.reverted_all && (r = loop_run(run.loop)) < 0) {
        chaos_err_set(err, -r, "event loop: %s", strerror(-r));
        /* No loop for the events: the backend still reverts (the embedded
         * one at once; a revert that fails keeps its journal for `chaos
         * recover`), and closing it below leaves the rest to its safety net. */
        if (!run.finishing) {
            run.finishing = true;
            run.backend->revert_all(run.backend_ctx, on_reverted_all, &run);
        }
        goto out_sig;
    }
    run.res->duration_ms = rel_ms(&run);
    if (run.silences)
        run.res->silences = run_silences_json(run.silences);
    run_result_summarize(run.res);
    r = 0;

out_sig:
    run_silences_free(run.silences);
    probe_runner_free(run.probes);
    /* With every fault reverted (or journalled as failed): the embedded
     * backend's guard goes only now. */
    if (run.backend_ctx)
        run.backend->close(run.backend_ctx);
    loop_free(run.loop);
    if (run.sigfd >= 0)
        close(run.sigfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
out:
    free(run.fault_timers);
    if (r < 0) {
        run_result_free(run.res);
        return r;
    }
    *out = run.res;
    return 0;
}

