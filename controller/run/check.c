#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "duration.h"

static const char *const stat_names[LAT__COUNT] = {"p50", "p90", "p95", "p99", "max_latency"};

void check_result_init(struct check_result *r, const struct check *c)
{
    memset(r, 0, sizeof *r);
    r->check = c;
    r->took_ms = -1;
}

void check_result_free(struct check_result *r)
{
    free(r->obs);
    r->obs = NULL;
    r->n_obs = r->cap = 0;
}

static void tally_error(struct check_result *r, const char *msg)
{
    for (size_t i = 0; i < r->n_error_kinds; i++) {
        if (strcmp(r->errors[i].msg, msg) == 0) {
            r->errors[i].count++;
            return;
        }
    }
    if (r->n_error_kinds == CHECK_MAX_ERROR_KINDS) {
        r->other_errors++;
        return;
    }
    snprintf(r->errors[r->n_error_kinds].msg, sizeof r->errors[0].msg, "%s", msg);
    r->errors[r->n_error_kinds++].count = 1;
}

int check_result_add(struct check_result *r, const struct sample *s)
{
    if (r->n_obs == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct check_obs *o = realloc(r->obs, cap * sizeof *o);
        if (!o)
            return -ENOMEM;
        r->obs = o;
        r->cap = cap;
    }
    int64_t latency_ms = s->latency_us > 0 ? (s->latency_us + 999) / 1000 : 0;
    r->obs[r->n_obs++] = (struct check_obs){.t_ms = s->t_ms,
                                            .done_ms = s->t_ms + latency_ms,
                                            .latency_us = s->latency_us,
                                            .ok = s->ok,
                                            .has_value = s->has_value,
                                            .value = s->value};
    if (s->detail[0])
        snprintf(r->last_detail, sizeof r->last_detail, "%s", s->detail);
    if (s->ok)
        r->n_ok++;
    else
        tally_error(r, s->error[0] ? s->error : "failed");
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile over obs[from..n). */
static int64_t latency_stat_range(const struct check_obs *obs, size_t from, size_t n,
                                  enum latency_stat stat)
{
    if (n <= from)
        return -1;
    size_t count = n - from;
    int64_t *v = malloc(count * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < count; i++)
        v[i] = obs[from + i].latency_us;
    qsort(v, count, sizeof *v, cmp_i64);
    static const double pct[LAT__COUNT] = {50, 90, 95, 99, 100};
    size_t rank = (size_t)((pct[stat] / 100.0) * (double)count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    int64_t out = v[rank - 1];
    free(v);
    return out;
}

int64_t check_latency(const struct check_result *r, enum latency_stat stat)
{
    return latency_stat_range(r->obs, 0, r->n_obs, stat);
}

static void fmt_latency(int64_t us, char *buf, size_t size)
{
    if (us < 10000)
        snprintf(buf, size, "%.2fms", (double)us / 1000.0);
    else
        duration_format((us + 500) / 1000, buf, size);
}

static void fmt_cmp(const struct cmp *c, bool latency, char *buf, size_t size)
{
    char v[32];
    if (latency)
        fmt_latency((int64_t)c->value, v, sizeof v);
    else
        snprintf(v, sizeof v, "%g", c->value);
    snprintf(buf, size, "%s %s", cmp_op_str(c->op), v);
}

/* Evaluates all aggregate conditions over obs[from..n); on the first that does
 * not hold writes why into why and returns false. When all hold, why gets a
 * short summary. */
static bool conditions_hold(const struct check_result *r, size_t from, bool skip_ratio, char *why,
                            size_t size)
{
    const struct check *c = r->check;
    size_t n = r->n_obs - from, ok = 0;
    for (size_t i = from; i < r->n_obs; i++)
        ok += r->obs[i].ok;
    double ratio = n ? (double)ok / (double)n : 0;
    char want_ratio[48], want[48];
    fmt_cmp(&c->success_ratio, false, want_ratio, sizeof want_ratio);
    /* The ratio is why it fails, or the start of the summary of a pass,
     * which quotes every condition it checked: a report shows the latency
     * that was seen and not just the success ratio. */
    int len = snprintf(why, size, "success_ratio %.4g (%zu/%zu ok), wanted %s", ratio, ok, n,
                       want_ratio);
    if (skip_ratio)
        len = snprintf(why, size, "%zu/%zu ok", ok, n);
    else if (!cmp_holds(&c->success_ratio, ratio))
        return false;
    for (int s = 0; s < LAT__COUNT; s++) {
        if (!c->latency[s].set)
            continue;
        int64_t v = latency_stat_range(r->obs, from, r->n_obs, (enum latency_stat)s);
        char got[32];
        fmt_latency(v, got, sizeof got);
        fmt_cmp(&c->latency[s], true, want, sizeof want);
        if (!cmp_holds(&c->latency[s], (double)v)) {
            snprintf(why, size, "%s %s, wanted %s (over %zu samples)", stat_names[s], got, want, n);
            return false;
        }
        if (len >= 0 && (size_t)len < size)
            len += snprintf(why + len, size - (size_t)len, "; %s %s, wanted %s", stat_names[s],
                            got, want);
    }
    return true;
}

/* The most common failure, to say what went wrong in the samples. */
static const char *top_error(const struct check_result *r)
{
    size_t best = 0;
    const char *msg = NULL;
    for (size_t i = 0; i < r->n_error_kinds; i++) {
        if (r->errors[i].count > best) {
            best = r->errors[i].count;
            msg = r->errors[i].msg;
        }
    }
    return msg;
}

void check_set_in_flight_at_end(struct check_result *r, size_t n)
{
    r->in_flight_at_end = n;
}

/* Says in the reason that late samples were left out: a verdict must not
 * look as if it had seen them. */
static void note_in_flight(struct check_result *r)
{
    if (!r->in_flight_at_end)
        return;
    size_t len = strlen(r->reason);
    snprintf(r->reason + len, sizeof r->reason - len,
             "; %zu sample%s still in flight when the window ended, not counted",
             r->in_flight_at_end, r->in_flight_at_end == 1 ? "" : "s");
}

static void fmt_pct(double f, char *buf, size_t size)
{
    snprintf(buf, size, "%.4g%%", f * 100.0);
}

/* Appends the budget to why; false when more than max_burn was burned. */
static bool budget_holds(struct check_result *r, const struct probe_budget *b, char *why,
                         size_t size)
{
    const struct check *c = r->check;
    int64_t every = c->every_ms > 0 ? c->every_ms : 1000;
    int64_t span = r->obs[r->n_obs - 1].t_ms - r->obs[0].t_ms + every;
    double ratio;
    char src[96];
    if (b->from_value) {
        ssize_t last = -1;
        for (size_t i = r->n_obs; i-- > 0;)
            if (r->obs[i].has_value) {
                last = (ssize_t)i;
                break;
            }
        size_t len = strlen(why);
        if (last < 0) {
            snprintf(why + len, size - len, "; error budget: no sample gave a value");
            return false;
        }
        ratio = r->obs[last].value;
        if (!(ratio >= 0 && ratio <= 1)) {
            snprintf(why + len, size - len,
                     "; error budget: the query gave %g, not an error ratio (0-1)", ratio);
            return false;
        }
        snprintf(src, sizeof src, "error ratio %.4g from the query", ratio);
    } else {
        ratio = (double)(r->n_obs - r->n_ok) / (double)r->n_obs;
        snprintf(src, sizeof src, "%zu/%zu samples failed", r->n_obs - r->n_ok, r->n_obs);
    }
    double burned = ratio / (1.0 - b->slo) * ((double)span / (double)b->period_ms);
    r->budget_evaluated = true;
    r->budget_error_ratio = ratio;
    r->budget_burned = burned;
    r->budget_window_ms = span;
    char got[32], max[32], slo[32], per[32], win[32];
    fmt_pct(burned, got, sizeof got);
    fmt_pct(b->max_burn, max, sizeof max);
    fmt_pct(b->slo, slo, sizeof slo);
    duration_format(span, win, sizeof win);
    if (b->period_ms % (24LL * 3600 * 1000) == 0)
        snprintf(per, sizeof per, "%lldd", (long long)(b->period_ms / (24LL * 3600 * 1000)));
    else
        duration_format(b->period_ms, per, sizeof per);
    size_t len = strlen(why);
    snprintf(why + len, size - len,
             "; error budget burned %s, allowed %s (SLO %s over %s; %s over %s)", got, max, slo,
             per, src, win);
    return burned <= b->max_burn;
}

void check_judge(struct check_result *r, const char *window)
{
    if (r->n_obs == 0) {
        r->verdict = CHECK_FAILED;
        snprintf(r->reason, sizeof r->reason, "no samples %s", window);
        note_in_flight(r);
        return;
    }
    char why[384];
    const struct probe_budget *b = r->check->probe ? probe_budget(r->check->probe) : NULL;
    bool budget = b && b->set;
    bool held = conditions_hold(r, 0, budget && !b->ratio_written, why, sizeof why);
    if (held && budget)
        held = budget_holds(r, b, why, sizeof why);
    r->verdict = held ? CHECK_PASSED : CHECK_FAILED;
    const char *err = top_error(r);
    if (!held && err)
        snprintf(r->reason, sizeof r->reason, "%s %s; most common failure: %s", why, window, err);
    else
        snprintf(r->reason, sizeof r->reason, "%s %s", why, window);
    note_in_flight(r);
}

bool check_eventually_met(struct check_result *r)
{
    if (r->verdict == CHECK_PASSED)
        return true;
    if (r->n_obs == 0 || !r->obs[r->n_obs - 1].ok)
        return false;
    char d[32];
    /* From the window's start, not the first sample's: "fired within 2m of
     * the fault" counts the time before the first answer came too. */
    int64_t from = r->window_start_ms > 0 ? r->window_start_ms : r->obs[0].t_ms;
    r->took_ms = r->obs[r->n_obs - 1].t_ms - from;
    if (r->took_ms < 0)
        r->took_ms = 0;
    duration_format(r->took_ms, d, sizeof d);
    r->verdict = CHECK_PASSED;
    snprintf(r->reason, sizeof r->reason, "held after %s (sample %zu)", d, r->n_obs);
    return true;
}

void check_eventually_expired(struct check_result *r, const char *window)
{
    if (r->verdict == CHECK_PASSED)
        return;
    char d[32];
    duration_format(r->check->within_ms, d, sizeof d);
    const char *err = top_error(r);
    r->verdict = CHECK_FAILED;
    snprintf(r->reason, sizeof r->reason, "did not hold within %s %s (%zu samples)%s%s", d, window,
             r->n_obs, err ? "; last failures: " : "", err ? err : "");
    note_in_flight(r);
}

bool check_abort_triggered(struct check_result *r, int64_t now_ms, int64_t started_ms)
{
    const struct check *c = r->check;
    if (r->n_obs == 0)
        return false;
    const struct probe_budget *b = c->probe ? probe_budget(c->probe) : NULL;
    if (b && b->set) {
        /* abort_when with a budget: stop once the samples so far have burned
         * more than max_burn (the budget does not wait for for). */
        char why[384];
        snprintf(why, sizeof why, "%zu/%zu ok", r->n_ok, r->n_obs);
        if (budget_holds(r, b, why, sizeof why))
            return false;
        snprintf(r->reason, sizeof r->reason, "%s so far", why);
        r->verdict = CHECK_FAILED;
        return true;
    }
    if (c->for_ms > 0 && now_ms - started_ms < c->for_ms)
        return false; /* the condition must have had a chance to hold for the whole period */
    /* obs are kept in the order their outcomes came, so the window is a
     * suffix: every outcome observed since now - for. */
    size_t from = r->n_obs;
    if (c->for_ms > 0)
        while (from > 0 && r->obs[from - 1].done_ms >= now_ms - c->for_ms)
            from--;
    else
        from = r->n_obs - 1;
    if (from >= r->n_obs)
        return false;
    char why[384];
    if (!conditions_hold(r, from, false, why, sizeof why))
        return false;
    char d[32];
    duration_format(c->for_ms, d, sizeof d);
    const char *err = top_error(r);
    snprintf(r->reason, sizeof r->reason, "%s over the last %s%s%s", why, d,
             err ? "; most common failure: " : "", err ? err : "");
    r->verdict = CHECK_FAILED;
    return true;
}

json_t *check_summary_json(const struct check_result *r, int64_t base_ms)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_object_set_new(j, "samples", json_integer((json_int_t)r->n_obs));
    json_object_set_new(j, "ok", json_integer((json_int_t)r->n_ok));
    json_object_set_new(j, "success_ratio",
                        r->n_obs ? json_real((double)r->n_ok / (double)r->n_obs) : json_null());
    json_t *lat = json_object();
    for (int s = 0; s < LAT__COUNT; s++) {
        int64_t v = check_latency(r, (enum latency_stat)s);
        json_object_set_new(lat, stat_names[s][0] == 'p' ? stat_names[s] : "max",
                            v >= 0 ? json_real((double)v / 1000.0) : json_null());
    }
    json_object_set_new(j, "latency_ms", lat);
    if (r->n_obs) {
        json_object_set_new(j, "first_ms", json_integer(r->obs[0].t_ms - base_ms));
        json_object_set_new(j, "last_ms", json_integer(r->obs[r->n_obs - 1].t_ms - base_ms));
    }
    json_t *errs = json_array();
    for (size_t i = 0; i < r->n_error_kinds; i++)
        json_array_append_new(errs, json_pack("{s:s, s:I}", "error", r->errors[i].msg, "count",
                                              (json_int_t)r->errors[i].count));
    if (r->other_errors)
        json_array_append_new(errs, json_pack("{s:s, s:I}", "error", "(other errors)", "count",
                                              (json_int_t)r->other_errors));
    json_object_set_new(j, "errors", errs);
    json_object_set_new(j, "in_flight_at_end", json_integer((json_int_t)r->in_flight_at_end));
    /* What query probes saw: the numbers, the latest detail (evaluation
     * time), how long an eventually check took, and the budget burned. */
    size_t nv = 0;
    double vmin = 0, vmax = 0, vlast = 0;
    for (size_t i = 0; i < r->n_obs; i++) {
        if (!r->obs[i].has_value)
            continue;
        double v = r->obs[i].value;
        vmin = nv && vmin < v ? vmin : v;
        vmax = nv && vmax > v ? vmax : v;
        vlast = v;
        nv++;
    }
    if (nv)
        json_object_set_new(j, "values",
                            json_pack("{s:I, s:f, s:f, s:f}", "count", (json_int_t)nv, "min", vmin,
                                      "max", vmax, "last", vlast));
    if (r->last_detail[0])
        json_object_set_new(j, "last_detail", json_string(r->last_detail));
    if (r->took_ms >= 0)
        json_object_set_new(j, "took_ms", json_integer(r->took_ms));
    if (r->budget_evaluated) {
        const struct probe_budget *b = probe_budget(r->check->probe);
        json_object_set_new(j, "budget",
                            json_pack("{s:f, s:I, s:f, s:f, s:f, s:I, s:s}", "slo", b->slo,
                                      "period_ms", (json_int_t)b->period_ms, "max_burn",
                                      b->max_burn, "error_ratio", r->budget_error_ratio, "burned",
                                      r->budget_burned, "window_ms",
                                      (json_int_t)r->budget_window_ms, "source",
                                      b->from_value ? "value" : "samples"));
    }
    return j;
}

const char *check_verdict_str(enum check_verdict v)
{
    switch (v) {
    case CHECK_PENDING: return "pending";
    case CHECK_PASSED: return "passed";
    case CHECK_FAILED: return "failed";
    case CHECK_SKIPPED: return "skipped";
    }
    return "?";
}
