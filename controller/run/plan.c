/* --dry-run: what a run would do, printed without touching anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "duration.h"
#include "fault_spec.h"
#include "probe.h"
#include "runner.h"

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
    for (size_t i = 0; i < s->n_silences; i++) {
        const struct scenario_silence *sl = &s->silences[i];
        fprintf(out, "   then silence '%s' in %s for the run:", sl->name,
                json_string_value(json_object_get(sl->alertmanager, "url")));
        for (size_t k = 0; k < sl->n_matchers; k++)
            fprintf(out, " %s", sl->matchers[k]);
        fputc('\n', out);
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
        fault_spec_preview(f->spec, what, sizeof what);
        if (what[0])
            fprintf(out, "     now: %s\n", what);
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
    if (s->n_silences)
        fprintf(out, "   The silences are removed once every fault is reverted.\n");
}
