#include "report.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "duration.h"
#include "outpath.h"
#include "probe.h"
#include "util.h"

static const char *section_name(enum check_section s)
{
    switch (s) {
    case SECTION_STEADY: return "steady_state";
    case SECTION_EXPECT: return "expect";
    case SECTION_ABORT: return "abort_when";
    }
    return "?";
}

static const char *phase_name(enum run_phase p)
{
    switch (p) {
    case PHASE_BEFORE: return "before";
    case PHASE_FAULTS: return "faults";
    case PHASE_AFTER: return "after";
    }
    return "?";
}

static const char *fault_outcome(const struct fault_record *f)
{
    switch (f->state) {
    case FAULT_PENDING:
        return "not_reached";
    case FAULT_REVERTED:
    case FAULT_FINISHED:
        /* A repeated action stopped early by a revert still "finished". */
        return f->fault->duration_ms >= 0 ? "reverted" : "finished";
    default:
        /* apply_failed, revert_failed, aborted (ended early as failed; a
         * lasting part was reverted); active or reverting cannot happen
         * after a run, whose every fault is reverted. */
        return fault_state_name(f->state);
    }
}

void report_print_verdict(const struct scenario *s, const struct run_result *r, FILE *out)
{
    char d[32];
    duration_format(r->duration_ms, d, sizeof d);
    fprintf(out, "\n%s  (scenario '%s', %s)\n", r->verdict, s->name, d);
    for (size_t i = 0; i < r->n_checks; i++) {
        const struct check_run *cr = &r->checks[i];
        if (cr->check->section == SECTION_ABORT && cr->res.verdict == CHECK_PASSED)
            continue; /* an abort condition that never triggered is not news */
        const char *mark = cr->res.verdict == CHECK_PASSED ? "ok  "
                           : cr->res.verdict != CHECK_FAILED ? "skip"
                           : cr->check->section == SECTION_ABORT ? "TRIGGERED"
                                                                 : "FAIL";
        const char *what = cr->check->section == SECTION_STEADY ? "steady state"
                           : cr->check->section == SECTION_EXPECT ? "expect"
                                                                  : "abort_when";
        fprintf(out, "  %s %s '%s': %s\n", mark, what, cr->check->name, cr->res.reason);
    }
    for (size_t i = 0; i < r->n_faults; i++) {
        const struct fault_record *f = &r->faults[i];
        fprintf(out, "  fault '%s' %s", f->fault->name, fault_outcome(f));
        if (f->description[0])
            fprintf(out, ": %s", f->description);
        if (f->error[0])
            fprintf(out, " (%s)", f->error);
        if (f->n_rounds_failed)
            fprintf(out, " [%zu of %zu rounds FAILED]", f->n_rounds_failed, f->n_rounds);
        fputc('\n', out);
        /* A repeated action lists every round: a round that hit nothing
         * must be as visible as the ones that did. */
        for (size_t k = 0; f->n_rounds > 1 && k < json_array_size(f->rounds); k++) {
            const json_t *rd = json_array_get(f->rounds, k);
            fprintf(out, "    round %lld %s: %s\n",
                    (long long)json_integer_value(json_object_get(rd, "round")),
                    json_is_true(json_object_get(rd, "ok")) ? "ok" : "FAILED",
                    json_string_value(json_object_get(rd, "detail")));
        }
    }
}

/* A tripped abort_when is "triggered": it did its job, nothing "failed". */
static const char *verdict_name(const struct check_run *cr)
{
    if (cr->check->section == SECTION_ABORT && cr->res.verdict == CHECK_FAILED)
        return "triggered";
    return check_verdict_str(cr->res.verdict);
}

static json_t *ms_or_null(int64_t ms)
{
    return ms >= 0 ? json_integer(ms) : json_null();
}

static void iso8601(int64_t unix_ms, char *buf, size_t size)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "agent" as written and "agents", the names it was resolved to; both null
 * for a fault injected on this machine. */
static json_t *with_agents(const struct scenario_fault *f, json_t *o)
{
    json_t *names = f->n_agents ? json_array() : json_null();
    for (size_t i = 0; names && i < f->n_agents; i++)
        json_array_append_new(names, json_string(f->agents[i]->name));
    if (!o || json_object_set_new(o, "agent", f->agent ? json_string(f->agent) : json_null()) < 0 ||
        json_object_set_new(o, "agents", names) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *report_json(const struct scenario *s, const struct run_result *r)
{
    char started[32];
    iso8601(r->started_unix_ms, started, sizeof started);
    json_t *faults = json_array(), *checks = json_array();
    for (size_t i = 0; i < r->n_faults; i++) {
        const struct fault_record *f = &r->faults[i];
        json_array_append_new(
            faults, with_agents(f->fault, json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:s, s:s, s:s, s:O, s:o, s:I}",
                              "name",
                              f->fault->name, "kind", f->fault->kind, "at_ms",
                              (json_int_t)f->fault->at_ms, "duration_ms",
                              ms_or_null(f->fault->duration_ms), "planned_ms",
                              ms_or_null(f->planned_ms), "applied_ms", ms_or_null(f->applied_ms),
                              "ended_ms", ms_or_null(f->ended_ms), "outcome", fault_outcome(f),
                              "description", f->description, "error", f->error, "events",
                              f->events, "rounds", f->rounds ? json_incref(f->rounds) : json_array(), "rounds_failed",
                              (json_int_t)f->n_rounds_failed)));
    }
    for (size_t i = 0; i < r->n_checks; i++) {
        const struct check_run *cr = &r->checks[i];
        json_t *samples = check_summary_json(&cr->res, r->mono_start_ms);
        if (samples)
            json_object_set_new(samples, "ticks_skipped", json_integer((json_int_t)cr->ticks_skipped));
        json_array_append_new(
            checks, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "name",
                              cr->check->name, "section", section_name(cr->check->section),
                              "phase", phase_name(cr->phase), "window", cr->window, "verdict",
                              verdict_name(cr), "reason", cr->res.reason,
                              "started_ms", ms_or_null(cr->started_ms), "ended_ms",
                              ms_or_null(cr->ended_ms), "probe", probe_to_json(cr->check->probe),
                              "samples", samples ? samples : json_null()));
    }
    json_t *j = json_pack("{s:i, s:{s:s, s:s, s:s}, s:s, s:I, s:i, s:s, s:I, s:b, s:b, s:s, s:O, s:o, "
                     "s:o, s:s}",
                     "report_version", 1, "scenario", "name", s->name, "file", s->path,
                     "description", s->description, "started_at", started, "duration_ms",
                     (json_int_t)r->duration_ms, "exit_code", r->exit_code, "verdict", r->verdict,
                     "checks_judged", (json_int_t)r->checks_judged,
                     "aborted", r->aborted, "interrupted", r->interrupted, "abort_reason",
                     r->abort_reason, "timeline", r->timeline, "faults", faults, "checks", checks,
                     "run_id", r->run_id);
    /* Only a scenario with silences has the key: its absence says "none asked". */
    if (j && r->silences && json_object_set(j, "silences", r->silences) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

int report_write_json(const struct scenario *s, const struct run_result *r, const char *path,
                      struct chaos_err *err)
{
    _cleanup_json_ json_t *j = report_json(s, r);
    if (!j)
        return chaos_err_set(err, ENOMEM, "JSON report: out of memory");
    _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2));
    if (!text)
        return chaos_err_set(err, ENOMEM, "JSON report: out of memory");
    size_t len = strlen(text);
    text[len] = '\n'; /* room of the NUL; written as the final newline */
    return outpath_write(path, text, len + 1, err);
}

/* A growing string for the XML. */
struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void __attribute__((format(printf, 2, 3))) bprintf(struct buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* Appends s escaped for XML text and attributes; drops characters XML 1.0 forbids. */
static void bxml(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': bprintf(b, "&amp;"); break;
        case '<': bprintf(b, "&lt;"); break;
        case '>': bprintf(b, "&gt;"); break;
        case '"': bprintf(b, "&quot;"); break;
        case '\'': bprintf(b, "&apos;"); break;
        case '\n': bprintf(b, "&#10;"); break;
        default:
            if (c >= 0x20 || c == '\t')
                bprintf(b, "%c", c);
        }
    }
}

/* One <property> per scalar of the check's JSON summary (nested objects as
 * "budget.burned", "latency_ms.p99"): the observed values, the time an
 * eventually check took and the error budget burned, the same numbers the
 * JSON report has, for CI systems that show testcase properties. */
static void junit_props_of(struct buf *bp, const char *prefix, json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        char name[96];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
        char val[192];
        if (json_is_object(v)) {
            junit_props_of(bp, name, v);
            continue;
        }
        if (json_is_integer(v))
            snprintf(val, sizeof val, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
            snprintf(val, sizeof val, "%g", json_real_value(v));
        else if (json_is_string(v))
            snprintf(val, sizeof val, "%s", json_string_value(v));
        else
            continue; /* null (no samples) and the error tally (in <failure>) */
        bprintf(bp, "        <property name=\"");
        bxml(bp, name);
        bprintf(bp, "\" value=\"");
        bxml(bp, val);
        bprintf(bp, "\"/>\n");
    }
}

static void junit_properties(struct buf *bp, const struct check_run *cr, int64_t base_ms)
{
    json_t *sum = check_summary_json(&cr->res, base_ms);
    /* "samples" is always an integer: the element is never empty (the
     * schema wants one property at least). */
    if (!sum || !json_is_integer(json_object_get(sum, "samples"))) {
        json_decref(sum);
        return;
    }
    bprintf(bp, "      <properties>\n");
    junit_props_of(bp, "", sum);
    bprintf(bp, "      </properties>\n");
    json_decref(sum);
}

/* One testcase per steady_state and expect window, with its properties
 * (above) and <failure> quoting the reason and the failure tally, or
 * <skipped>. */
static void junit_checks(struct buf *bp, const struct scenario *s, const struct run_result *r)
{
    for (size_t i = 0; i < r->n_checks; i++) {
        const struct check_run *cr = &r->checks[i];
        if (cr->check->section == SECTION_ABORT)
            continue;
        double t = cr->started_ms >= 0 && cr->ended_ms >= 0
                       ? (double)(cr->ended_ms - cr->started_ms) / 1000.0 : 0;
        bprintf(bp, "    <testcase classname=\"");
        bxml(bp, s->name);
        bprintf(bp, ".%s\" name=\"", section_name(cr->check->section));
        bxml(bp, cr->check->name);
        bprintf(bp, " (");
        bxml(bp, cr->window);
        bprintf(bp, ")\" time=\"%.3f\">\n", t);
        junit_properties(bp, cr, r->mono_start_ms);
        if (cr->res.verdict == CHECK_PASSED) {
            bprintf(bp, "    </testcase>\n");
            continue;
        }
        const char *tag = cr->res.verdict == CHECK_FAILED ? "failure" : "skipped";
        bprintf(bp, "      <%s message=\"", tag);
        bxml(bp, cr->res.reason);
        if (cr->res.verdict == CHECK_FAILED) {
            bprintf(bp, "\" type=\"expectation\">");
            bxml(bp, cr->res.reason);
            for (size_t k = 0; k < cr->res.n_error_kinds; k++) {
                bprintf(bp, "&#10;%zu x ", cr->res.errors[k].count);
                bxml(bp, cr->res.errors[k].msg);
            }
            bprintf(bp, "</failure>\n");
        } else {
            bprintf(bp, "\"/>\n");
        }
        bprintf(bp, "    </testcase>\n");
    }
}

/* One testcase per round of a repeated action, an <error> for each round
 * that failed: CI shows the rounds that hit nothing. */
static void junit_rounds(struct buf *b, const struct scenario *s, const struct fault_record *f)
{
    for (size_t k = 0; f->n_rounds > 1 && k < json_array_size(f->rounds); k++) {
        const json_t *rd = json_array_get(f->rounds, k);
        bprintf(b, "    <testcase classname=\"");
        bxml(b, s->name);
        bprintf(b, ".faults\" name=\"");
        bxml(b, f->fault->name);
        bprintf(b, " round %lld\" time=\"0\"",
                (long long)json_integer_value(json_object_get(rd, "round")));
        if (json_is_true(json_object_get(rd, "ok"))) {
            bprintf(b, "/>\n");
            continue;
        }
        bprintf(b, ">\n      <error message=\"");
        bxml(b, json_string_value(json_object_get(rd, "detail")));
        bprintf(b, "\" type=\"round_failed\"/>\n    </testcase>\n");
    }
}

int report_write_junit(const struct scenario *s, const struct run_result *r, const char *path,
                       struct chaos_err *err)
{
    size_t tests = 0, failures = 0, errors = 0, skipped = 0;
    for (size_t i = 0; i < r->n_checks; i++) {
        if (r->checks[i].check->section == SECTION_ABORT)
            continue;
        tests++;
        failures += r->checks[i].res.verdict == CHECK_FAILED;
        skipped += r->checks[i].res.verdict == CHECK_SKIPPED;
    }
    for (size_t i = 0; i < r->n_faults; i++) {
        tests++;
        errors += r->faults[i].state == FAULT_APPLY_FAILED ||
                  r->faults[i].state == FAULT_REVERT_FAILED;
        if (r->faults[i].n_rounds > 1) {
            tests += r->faults[i].n_rounds;
            errors += r->faults[i].n_rounds_failed;
        }
    }
    if (r->aborted) {
        tests++;
        errors++;
    }
    char started[32];
    iso8601(r->started_unix_ms, started, sizeof started);
    double secs = (double)r->duration_ms / 1000.0;
    struct buf b = {0};
    bprintf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    bprintf(&b, "<testsuites name=\"chaos\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
                "time=\"%.3f\">\n", tests, failures, errors, secs);
    bprintf(&b, "  <testsuite name=\"");
    bxml(&b, s->name);
    bprintf(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\" "
                "timestamp=\"%s\">\n", tests, failures, errors, skipped, secs, started);
    junit_checks(&b, s, r);
    for (size_t i = 0; i < r->n_faults; i++) {
        const struct fault_record *f = &r->faults[i];
        bprintf(&b, "    <testcase classname=\"");
        bxml(&b, s->name);
        bprintf(&b, ".faults\" name=\"");
        bxml(&b, f->fault->name);
        bprintf(&b, " (%s)\" time=\"%.3f\"", fault_outcome(f),
                f->applied_ms >= 0 && f->ended_ms >= 0
                    ? (double)(f->ended_ms - f->applied_ms) / 1000.0 : 0);
        if (f->state == FAULT_APPLY_FAILED || f->state == FAULT_REVERT_FAILED) {
            bprintf(&b, ">\n      <error message=\"");
            bxml(&b, f->error);
            bprintf(&b, "\" type=\"%s\"/>\n    </testcase>\n", fault_outcome(f));
        } else if (f->applied_ms < 0) {
            bprintf(&b, ">\n      <skipped message=\"not reached\"/>\n    </testcase>\n");
        } else {
            bprintf(&b, "/>\n");
        }
        junit_rounds(&b, s, f);
    }
    if (r->aborted) {
        bprintf(&b, "    <testcase classname=\"");
        bxml(&b, s->name);
        bprintf(&b, ".run\" name=\"run completed\" time=\"%.3f\">\n      <error message=\"", secs);
        bxml(&b, r->abort_reason);
        bprintf(&b, "\" type=\"aborted\"/>\n    </testcase>\n");
    }
    bprintf(&b, "  </testsuite>\n</testsuites>\n");
    if (b.oom) {
        free(b.p);
        return chaos_err_set(err, ENOMEM, "JUnit report: out of memory");
    }
    int rc = outpath_write(path, b.p, b.len, err);
    free(b.p);
    return rc;
}
