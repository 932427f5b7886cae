/* A run's result: building it for a scenario, its one-line verdict,
 * freeing it; and the scenario's timings the runner plans with. */
#include "run_result.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "exit_codes.h"

const char *runner_default_state_dir(void)
{
    const char *d = getenv("CHAOS_STATE_DIR");
    if (d && *d)
        return d;
    if (geteuid() == 0)
        return "/var/lib/chaos";
    /* An unprivileged user can still pause their own processes; their
     * journals go where the XDG base directory spec keeps state. */
    static char buf[PATH_MAX];
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg == '/')
        snprintf(buf, sizeof buf, "%s/chaos", xdg);
    else if (home && *home == '/')
        snprintf(buf, sizeof buf, "%s/.local/state/chaos", home);
    else
        snprintf(buf, sizeof buf, "/tmp/chaos-%d", (int)geteuid());
    return buf;
}


int64_t run_steady_ms(const struct scenario *s)
{
    int64_t m = 0;
    for (size_t i = 0; i < s->n_steady; i++)
        if (s->steady[i].for_ms > m)
            m = s->steady[i].for_ms;
    return m;
}

int64_t run_after_ms(const struct scenario *s)
{
    int64_t m = 0;
    for (size_t i = 0; i < s->n_expect; i++) {
        const struct check *c = &s->expect[i];
        if (c->after < 0)
            continue;
        int64_t end = scenario_fault_active_ms(s, (size_t)c->after) + s->faults[c->after].at_ms +
                      (c->within_ms >= 0 ? c->within_ms : c->for_ms);
        if (end > m)
            m = end;
    }
    return m;
}

static void init_check_run(const struct scenario *s, struct run *run, struct check_run *cr,
                           const struct check *c, enum run_phase phase)
{
    memset(cr, 0, sizeof *cr);
    cr->check = c;
    cr->phase = phase;
    cr->run = run;
    cr->started_ms = cr->ended_ms = -1;
    check_result_init(&cr->res, c);
    if (phase == PHASE_BEFORE)
        snprintf(cr->window, sizeof cr->window, "before the faults");
    else if (phase == PHASE_AFTER)
        snprintf(cr->window, sizeof cr->window, "after recovery");
    else if (c->section == SECTION_ABORT)
        snprintf(cr->window, sizeof cr->window, "for the whole run");
    else if (c->during >= 0)
        snprintf(cr->window, sizeof cr->window, "during '%s'", s->faults[c->during].name);
    else if (c->after >= 0)
        snprintf(cr->window, sizeof cr->window, "after '%s'", s->faults[c->after].name);
    else
        snprintf(cr->window, sizeof cr->window, "during the fault phase");
}

struct run_result *run_result_new(const struct scenario *s, struct run *run, struct chaos_err *err)
{
    struct run_result *res = calloc(1, sizeof *res);
    if (!res) {
        chaos_err_set(err, ENOMEM, "out of memory");
        return NULL;
    }
    res->timeline = json_array();
    res->faults = calloc(s->n_faults ? s->n_faults : 1, sizeof *res->faults);
    size_t n = 2 * s->n_steady + s->n_expect + s->n_abort;
    res->checks = calloc(n ? n : 1, sizeof *res->checks);
    if (!res->timeline || !res->faults || !res->checks)
        goto oom;
    res->n_faults = s->n_faults;
    for (size_t i = 0; i < s->n_faults; i++) {
        struct fault_record *fr = &res->faults[i];
        fr->fault = &s->faults[i];
        fr->run = run;
        fr->planned_ms = fr->applied_ms = fr->ended_ms = -1;
        if (!(fr->events = json_array()) || !(fr->rounds = json_array()))
            goto oom;
    }
    for (size_t i = 0; i < s->n_steady; i++)
        init_check_run(s, run, &res->checks[res->n_checks++], &s->steady[i], PHASE_BEFORE);
    for (size_t i = 0; i < s->n_expect; i++)
        init_check_run(s, run, &res->checks[res->n_checks++], &s->expect[i], PHASE_FAULTS);
    for (size_t i = 0; i < s->n_abort; i++)
        init_check_run(s, run, &res->checks[res->n_checks++], &s->abort_when[i], PHASE_FAULTS);
    for (size_t i = 0; i < s->n_steady; i++)
        init_check_run(s, run, &res->checks[res->n_checks++], &s->steady[i], PHASE_AFTER);
    return res;
oom:
    run_result_free(res);
    chaos_err_set(err, ENOMEM, "out of memory");
    return NULL;
}

void run_result_summarize(struct run_result *res)
{
    size_t passed = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < res->n_checks; i++) {
        enum check_verdict v = res->checks[i].res.verdict;
        if (res->checks[i].check->section == SECTION_ABORT)
            continue;
        passed += v == CHECK_PASSED;
        failed += v == CHECK_FAILED;
        skipped += v == CHECK_SKIPPED;
    }
    res->checks_judged = passed + failed;
    if (res->exit_code == CHAOS_EXIT_OK && passed + failed + skipped == 0)
        snprintf(res->verdict, sizeof res->verdict,
                 "NOTHING CHECKED: the faults ran and were reverted, but the scenario has no "
                 "steady_state or expect check");
    else if (res->exit_code == CHAOS_EXIT_ABORTED)
        snprintf(res->verdict, sizeof res->verdict, "ABORTED: %s",
                 res->abort_reason[0] ? res->abort_reason : "a fault could not be reverted");
    else if (res->exit_code == CHAOS_EXIT_FAILED)
        snprintf(res->verdict, sizeof res->verdict, "FAILED: %zu of %zu checks failed%s", failed,
                 passed + failed + skipped, skipped ? " (some were not reached)" : "");
    else
        snprintf(res->verdict, sizeof res->verdict, "PASSED: all %zu checks held", passed);
}

void run_result_free(struct run_result *r)
{
    if (!r)
        return;
    json_decref(r->silences);
    for (size_t i = 0; r->faults && i < r->n_faults; i++) {
        json_decref(r->faults[i].events);
        json_decref(r->faults[i].rounds);
    }
    for (size_t i = 0; r->checks && i < r->n_checks; i++)
        check_result_free(&r->checks[i].res);
    free(r->faults);
    free(r->checks);
    json_decref(r->timeline);
    free(r);
}
