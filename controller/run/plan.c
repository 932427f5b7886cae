/* --dry-run: what a run would do, printed without touching anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "duration.h"
#include "engine.h"
#include "fault.h"
#include "probe.h"
#include "proc_target.h"
#include "runner.h"

/* What a process target matches at this moment, before its pick: a plan
 * that says "pause cgroup x" should also say that means 24 processes. */
static void print_matches(const struct scenario_fault *f, FILE *out)
{
    if (strcmp(f->kind, "process") != 0 || !f->target_json)
        return;
    struct chaos_err err = {0};
    struct proc_target *t = NULL;
    if (proc_target_parse(f->target_json, "target", NULL, &t, &err) < 0)
        return; /* cannot happen: the scenario was validated */
    struct fault_env env = {.protected_pids = {1, getpid(), getppid()}, .n_protected = 3};
    struct proc_ent *ents = NULL;
    size_t n = 0;
    if (proc_target_resolve(t, &env, &ents, &n, &err) < 0) {
        fprintf(out, "     now: %s\n", err.msg);
    } else {
        fprintf(out, "     now: the target matches %zu process%s:", n, n == 1 ? "" : "es");
        for (size_t i = 0; i < n && i < 8; i++)
            fprintf(out, "%s %d (%s)", i ? "," : "", (int)ents[i].pid, ents[i].comm);
        fprintf(out, "%s\n", n > 8 ? ", ..." : "");
    }
    free(ents);
    proc_target_free(t);
}

void runner_print_plan(const struct scenario *s, FILE *out)
{
    char a[32], b[32];
    fprintf(out, "Plan for scenario '%s' (%s); nothing will be touched.\n", s->name, s->path);
    if (s->description[0])
        fprintf(out, "  %s\n", s->description);
    fprintf(out, "\n1. Steady state before the faults:\n");
    if (!s->n_steady)
        fprintf(out, "   (none)\n");
    for (size_t i = 0; i < s->n_steady; i++) {
        duration_format(s->steady[i].for_ms, a, sizeof a);
        duration_format(s->steady[i].every_ms, b, sizeof b);
        fprintf(out, "   - '%s': %s every %s for %s\n", s->steady[i].name,
                probe_describe(s->steady[i].probe), b, a);
    }
    duration_format(scenario_fault_phase_ms(s), a, sizeof a);
    fprintf(out, "\n2. Fault phase (%s):\n", a);
    for (size_t i = 0; i < s->n_faults; i++) {
        const struct scenario_fault *f = &s->faults[i];
        duration_format(f->at_ms, a, sizeof a);
        int64_t active = scenario_fault_active_ms(s, i);
        if (f->duration_ms >= 0) {
            duration_format(f->duration_ms, b, sizeof b);
            fprintf(out, "   - at +%s: '%s' (%s) for %s, then reverted by the engine\n", a,
                    f->name, f->kind, b);
        } else if (active > 0) {
            duration_format(active, b, sizeof b);
            fprintf(out, "   - at +%s: '%s' (%s), repeated over %s\n", a, f->name, f->kind, b);
        } else {
            fprintf(out, "   - at +%s: '%s' (%s), once\n", a, f->name, f->kind);
        }
        char what[512];
        fault_spec_plan(f->spec, what, sizeof what);
        if (what[0])
            fprintf(out, "     %s\n", what);
        print_matches(f, out);
    }
    for (size_t i = 0; i < s->n_expect; i++) {
        const struct check *c = &s->expect[i];
        duration_format(c->every_ms, b, sizeof b);
        if (c->during >= 0)
            fprintf(out, "   - expect '%s' during '%s': %s every %s\n", c->name,
                    s->faults[c->during].name, probe_describe(c->probe), b);
        else if (c->after >= 0)
            fprintf(out, "   - expect '%s' after '%s': %s every %s\n", c->name,
                    s->faults[c->after].name, probe_describe(c->probe), b);
        else
            fprintf(out, "   - expect '%s' throughout: %s every %s\n", c->name,
                    probe_describe(c->probe), b);
    }
    for (size_t i = 0; i < s->n_abort; i++) {
        duration_format(s->abort_when[i].every_ms, b, sizeof b);
        fprintf(out, "   - abort when '%s': %s every %s\n", s->abort_when[i].name,
                probe_describe(s->abort_when[i].probe), b);
    }
    fprintf(out, "\n3. Recovery: every fault reverted, then the steady state checked again.\n");
}
