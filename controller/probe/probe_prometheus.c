/* The prometheus probe: one PromQL query per sample against the HTTP API.
 * Without expect.held_for it is an instant query (/api/v1/query at the
 * sample's wall-clock time); with it, a range query (/api/v1/query_range
 * over the last held_for) whose every step must satisfy the condition, so
 * "the breaker stayed open for 10s" is one sample. The condition is on the
 * whole vector: every series (default), any series, a reduction (min, max,
 * sum, avg, count), and/or the number of series. An empty result is
 * explicit: it fails unless expect.empty says "pass" or "zero". */
#include "probe_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "duration.h"
#include "jsonv.h"
#include "probe_curl.h"
#include "scenario.h"
#include "util.h"

#define PROM_QUERY_MAX 16384
#define PROM_MAX_POINTS 11000 /* Prometheus refuses more points per series */

static const char *const prom_keys[] = {PCONN_KEYS, "query", "step", NULL};
static const char *const prom_expect_keys[] = {"value", "series",   "reduce", "count",
                                               "empty", "held_for", NULL};

enum prom_series { SERIES_ALL, SERIES_ANY };
enum prom_reduce { REDUCE_NONE, REDUCE_MIN, REDUCE_MAX, REDUCE_SUM, REDUCE_AVG, REDUCE_COUNT };
enum prom_empty { EMPTY_FAIL, EMPTY_PASS, EMPTY_ZERO };
static const char *const series_names[] = {"all", "any", NULL};
static const char *const reduce_names[] = {"none", "min", "max", "sum", "avg", "count", NULL};
static const char *const empty_names[] = {"fail", "pass", "zero", NULL};

struct prom_probe {
    struct pconn conn;
    char *query;
    char *query_esc;
    int64_t step_ms;     /* range queries only */
    int64_t held_for_ms; /* 0: instant query */
    struct cmp value;
    struct cmp count;
    enum prom_series series;
    enum prom_reduce reduce;
    enum prom_empty empty;
    char *desc;
};

struct prom_sample {
    const struct prom_probe *pp;
    struct probe *ref;
    probe_done_cb done;
    void *arg;
    int64_t t_ms;
    int64_t eval_unix_ms;
};

static void prom_free(void *impl)
{
    struct prom_probe *pp = impl;
    if (!pp)
        return;
    pconn_clear(&pp->conn);
    free(pp->query);
    free(pp->query_esc);
    free(pp->desc);
    free(pp);
}

/* Reads obj.key, one of names, into *out (its index). */
static int parse_enum(const json_t *obj, const char *ctx, const char *key, const char *const *names,
                      int *out, struct chaos_err *err)
{
    const char *s;
    int r = obj ? jv_string(obj, ctx, key, false, &s, err) : 0;
    if (r <= 0)
        return r;
    char list[96] = "";
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 1;
        }
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", names[i]);
    }
    char q[64];
    probe_quote(s, q, sizeof q);
    return chaos_err_set(err, EINVAL, "%s.%s: %s is not one of %s", ctx, key, q, list);
}

static int parse_cmp_field(const json_t *expect, const char *key, struct cmp *out,
                           struct chaos_err *err)
{
    json_t *v = expect ? json_object_get(expect, key) : NULL;
    if (!v)
        return 0;
    char path[32];
    snprintf(path, sizeof path, "expect.%s", key);
    if (!json_is_string(v))
        return chaos_err_set(err, EINVAL, "%s: must be a comparison string like \"> 0.5\", not %s",
                             path, jv_type_name(v));
    return cmp_parse(json_string_value(v), false, path, out, err);
}

static int prom_parse_expect(const json_t *expect, struct prom_probe *pp, struct chaos_err *err)
{
    int r, e;
    if ((r = parse_cmp_field(expect, "value", &pp->value, err)) < 0 ||
        (r = parse_cmp_field(expect, "count", &pp->count, err)) < 0)
        return r;
    e = SERIES_ALL;
    if ((r = parse_enum(expect, "expect", "series", series_names, &e, err)) < 0)
        return r;
    pp->series = (enum prom_series)e;
    bool series_set = r > 0;
    e = REDUCE_NONE;
    if ((r = parse_enum(expect, "expect", "reduce", reduce_names, &e, err)) < 0)
        return r;
    pp->reduce = (enum prom_reduce)e;
    e = EMPTY_FAIL;
    if ((r = parse_enum(expect, "expect", "empty", empty_names, &e, err)) < 0)
        return r;
    pp->empty = (enum prom_empty)e;
    if (pp->reduce != REDUCE_NONE && series_set)
        return chaos_err_set(err, EINVAL,
                             "expect.series: cannot be combined with reduce: a reduced vector is "
                             "one number");
    if ((series_set || pp->reduce != REDUCE_NONE) && !pp->value.set)
        return chaos_err_set(err, EINVAL, "expect.%s: needs expect.value to compare with",
                             series_set ? "series" : "reduce");
    if (expect && (r = jv_duration(expect, "expect", "held_for", false, &pp->held_for_ms, err)) < 0)
        return r;
    if (r > 0 && pp->held_for_ms <= 0)
        return chaos_err_set(err, ERANGE, "expect.held_for: must be above 0s");
    if (pp->held_for_ms > 0 && !pp->value.set && !pp->count.set)
        return chaos_err_set(err, EINVAL,
                             "expect.held_for: needs expect.value or expect.count: what must hold");
    return 0;
}

static int prom_parse(const json_t *obj, const json_t *expect, void **out, struct chaos_err *err)
{
    int r = jv_only_keys(obj, "probe.prometheus", prom_keys, err);
    if (r < 0)
        return r;
    struct prom_probe *pp = calloc(1, sizeof *pp);
    if (!pp)
        return chaos_err_set(err, ENOMEM, "probe.prometheus: out of memory");
    const char *q;
    if ((r = pconn_parse(obj, "probe.prometheus", &pp->conn, err)) < 0 ||
        (r = jv_string(obj, "probe.prometheus", "query", true, &q, err)) < 0)
        goto fail;
    if (!*q || strlen(q) > PROM_QUERY_MAX) {
        r = chaos_err_set(err, EINVAL, "probe.prometheus.query: must be 1-%d characters",
                          PROM_QUERY_MAX);
        goto fail;
    }
    if (!(pp->query = strdup(q)) || !(pp->query_esc = pcurl_escape(q))) {
        r = chaos_err_set(err, ENOMEM, "probe.prometheus: out of memory");
        goto fail;
    }
    if ((r = prom_parse_expect(expect, pp, err)) < 0)
        goto fail;
    pp->step_ms = 1000;
    if ((r = jv_duration(obj, "probe.prometheus", "step", false, &pp->step_ms, err)) < 0)
        goto fail;
    if (r > 0 && !pp->held_for_ms) {
        r = chaos_err_set(err, EINVAL,
                          "probe.prometheus.step: only a range query (expect.held_for) has a step");
        goto fail;
    }
    if (pp->step_ms < 1 || (pp->held_for_ms && pp->held_for_ms / pp->step_ms > PROM_MAX_POINTS)) {
        r = chaos_err_set(err, ERANGE,
                          "probe.prometheus.step: must be above 0s and give at most %d points "
                          "over held_for",
                          PROM_MAX_POINTS);
        goto fail;
    }
    size_t n = strlen(pp->query) + 64;
    if (!(pp->desc = malloc(n))) {
        r = chaos_err_set(err, ENOMEM, "probe.prometheus: out of memory");
        goto fail;
    }
    snprintf(pp->desc, n, "prometheus %s", pp->query);
    *out = pp;
    return 0;
fail:
    prom_free(pp);
    return r;
}

static const char *prom_describe(const void *impl)
{
    return ((const struct prom_probe *)impl)->desc;
}

static json_t *cmp_json(const struct cmp *c)
{
    char b[48];
    snprintf(b, sizeof b, "%s %g", cmp_op_str(c->op), c->value);
    return json_string(b);
}

static json_t *prom_to_json(const void *impl)
{
    const struct prom_probe *pp = impl;
    json_t *o = json_object();
    if (!o || pconn_to_json(&pp->conn, o) < 0 ||
        json_object_set_new(o, "query", json_string(pp->query)) < 0)
        goto fail;
    /* The condition as understood, so a report shows how it was judged. */
    json_t *c = json_pack("{s:s, s:s}", "series", series_names[pp->series], "empty",
                          empty_names[pp->empty]);
    if (!c || json_object_set_new(o, "condition", c) < 0)
        goto fail;
    if (pp->value.set && json_object_set_new(c, "value", cmp_json(&pp->value)) < 0)
        goto fail;
    if (pp->count.set && json_object_set_new(c, "count", cmp_json(&pp->count)) < 0)
        goto fail;
    if (pp->reduce && json_object_set_new(c, "reduce", json_string(reduce_names[pp->reduce])) < 0)
        goto fail;
    if (pp->held_for_ms) {
        char d[32], s[32];
        duration_format(pp->held_for_ms, d, sizeof d);
        duration_format(pp->step_ms, s, sizeof s);
        if (json_object_set_new(c, "held_for", json_string(d)) < 0 ||
            json_object_set_new(o, "step", json_string(s)) < 0)
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* Judging */

/* "{job="x", code="500"}" of a series' metric, cut to fit. */
static void format_labels(const json_t *metric, char *buf, size_t size)
{
    size_t off = (size_t)snprintf(buf, size, "{");
    const char *k;
    json_t *v;
    bool first = true;
    json_object_foreach((json_t *)metric, k, v)
    {
        if (off >= size)
            break;
        off += (size_t)snprintf(buf + off, size - off, "%s%s=\"%s\"", first ? "" : ", ", k,
                                json_is_string(v) ? json_string_value(v) : "?");
        first = false;
    }
    if (off < size)
        snprintf(buf + off, size - off, "}");
    if (off >= size && size > 4)
        memcpy(buf + size - 5, "...}", 5);
}

/* A Prometheus sample value: "1", "0.5", "NaN", "+Inf". */
static bool parse_value(const json_t *pair, double *v, double *t)
{
    if (!json_is_array(pair) || json_array_size(pair) != 2)
        return false;
    const json_t *jt = json_array_get(pair, 0), *jv = json_array_get(pair, 1);
    if (!json_is_number(jt) || !json_is_string(jv))
        return false;
    char *end;
    *v = strtod(json_string_value(jv), &end);
    *t = json_number_value(jt);
    return *end == '\0' && end != json_string_value(jv);
}

struct vec {
    double *v;
    const json_t **metric; /* NULL for a scalar */
    size_t n;
};

/* Judges one instant vector; *value gets the number that was compared.
 * Returns true when the condition holds, else writes why. */
static bool judge_vector(const struct prom_probe *pp, const struct vec *vec, double *value,
                         bool *has_value, char *why, size_t size)
{
    double zero = 0;
    struct vec v = *vec;
    *has_value = false;
    if (pp->count.set && !cmp_holds(&pp->count, (double)vec->n)) {
        snprintf(why, size, "%zu series, wanted count %s %g", vec->n, cmp_op_str(pp->count.op),
                 pp->count.value);
        *value = (double)vec->n;
        *has_value = true;
        return false;
    }
    if (v.n == 0) {
        if (pp->empty == EMPTY_FAIL) {
            snprintf(why, size, "empty result (no series)%s",
                     pp->value.set ? "; an empty vector is not 0 unless expect.empty is \"zero\""
                                   : "");
            return false;
        }
        if (pp->empty == EMPTY_PASS)
            return true;
        v.v = &zero;
        v.metric = NULL;
        v.n = 1;
    }
    if (pp->reduce != REDUCE_NONE) {
        double acc = pp->reduce == REDUCE_MIN ? INFINITY : pp->reduce == REDUCE_MAX ? -INFINITY : 0;
        for (size_t i = 0; i < v.n; i++) {
            if (pp->reduce == REDUCE_MIN)
                acc = fmin(acc, v.v[i]);
            else if (pp->reduce == REDUCE_MAX)
                acc = fmax(acc, v.v[i]);
            else
                acc += v.v[i];
        }
        if (pp->reduce == REDUCE_AVG)
            acc /= (double)v.n;
        if (pp->reduce == REDUCE_COUNT)
            acc = (double)vec->n;
        *value = acc;
        *has_value = true;
        if (!cmp_holds(&pp->value, acc)) {
            snprintf(why, size, "%s over %zu series is %g, wanted %s %g", reduce_names[pp->reduce],
                     v.n, acc, cmp_op_str(pp->value.op), pp->value.value);
            return false;
        }
        return true;
    }
    *value = v.v[0];
    *has_value = true;
    if (!pp->value.set)
        return true;
    size_t held = 0, bad = v.n;
    for (size_t i = 0; i < v.n; i++) {
        if (cmp_holds(&pp->value, v.v[i]))
            held++;
        else if (bad == v.n)
            bad = i;
    }
    if (pp->series == SERIES_ANY ? held > 0 : held == v.n) {
        /* The value shown is one that held (any) or the first (all). */
        for (size_t i = 0; pp->series == SERIES_ANY && i < v.n; i++)
            if (cmp_holds(&pp->value, v.v[i])) {
                *value = v.v[i];
                break;
            }
        return true;
    }
    char labels[96] = "";
    if (pp->series == SERIES_ANY) {
        snprintf(why, size, "no series of %zu has value %s %g (first: %g)", v.n,
                 cmp_op_str(pp->value.op), pp->value.value, v.v[0]);
        return false;
    }
    if (v.metric && v.metric[bad] && json_object_size(v.metric[bad]))
        format_labels(v.metric[bad], labels, sizeof labels);
    *value = v.v[bad];
    snprintf(why, size, "value %g%s%s, wanted %s %g%s", v.v[bad], *labels ? " of " : "", labels,
             cmp_op_str(pp->value.op), pp->value.value, v.n > 1 ? " for every series" : "");
    return false;
}

static void format_unix(double t, char *buf, size_t size)
{
    time_t s = (time_t)t;
    struct tm tm;
    int ms = (int)((t - (double)s) * 1000 + 0.5);
    if (ms >= 1000)
        ms = 999;
    if (!gmtime_r(&s, &tm)) {
        snprintf(buf, size, "%.3f", t);
        return;
    }
    char d[32];
    strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03dZ", d, ms);
}

/* Instant query: data.result is a vector or a scalar. */
static void judge_instant(const struct prom_sample *ps, const json_t *data, struct sample *out)
{
    const struct prom_probe *pp = ps->pp;
    const char *type = json_string_value(json_object_get(data, "resultType"));
    const json_t *res = json_object_get(data, "result");
    double eval_t = (double)ps->eval_unix_ms / 1000.0;
    struct vec v = {0};
    double t;
    if (type && strcmp(type, "scalar") == 0) {
        v.v = malloc(sizeof *v.v);
        if (!v.v || !parse_value(res, &v.v[0], &t)) {
            snprintf(out->error, sizeof out->error, "prometheus: malformed scalar result");
            goto done;
        }
        eval_t = t;
        v.n = 1;
    } else if (type && strcmp(type, "vector") == 0 && json_is_array(res)) {
        size_t n = json_array_size(res);
        v.v = calloc(n ? n : 1, sizeof *v.v);
        v.metric = calloc(n ? n : 1, sizeof *v.metric);
        if (!v.v || !v.metric) {
            snprintf(out->error, sizeof out->error, "prometheus: out of memory");
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *s = json_array_get(res, i);
            if (!parse_value(json_object_get(s, "value"), &v.v[i], &t)) {
                snprintf(out->error, sizeof out->error, "prometheus: malformed vector result");
                goto done;
            }
            v.metric[i] = json_object_get(s, "metric");
            eval_t = t; /* the evaluation time Prometheus used */
        }
        v.n = n;
    } else {
        snprintf(out->error, sizeof out->error,
                 "prometheus: result type %s; the query must give a vector or a scalar",
                 type ? type : "(none)");
        goto done;
    }
    char at[40];
    format_unix(eval_t, at, sizeof at);
    snprintf(out->detail, sizeof out->detail, "evaluated at %s, %zu series", at, v.n);
    char why[160];
    out->ok = judge_vector(pp, &v, &out->value, &out->has_value, why, sizeof why);
    if (!out->ok)
        snprintf(out->error, sizeof out->error, "%s", why);
done:
    free(v.v);
    free(v.metric);
}

/* Range query: data.result is a matrix; every step from start to end must
 * hold. A step where no series has a point is an empty vector. */
static void judge_range(const struct prom_sample *ps, const json_t *data, struct sample *out)
{
    const struct prom_probe *pp = ps->pp;
    const char *type = json_string_value(json_object_get(data, "resultType"));
    const json_t *res = json_object_get(data, "result");
    if (!type || strcmp(type, "matrix") != 0 || !json_is_array(res)) {
        snprintf(out->error, sizeof out->error, "prometheus: range result type %s, not a matrix",
                 type ? type : "(none)");
        return;
    }
    int64_t end_ms = ps->eval_unix_ms, start_ms = end_ms - pp->held_for_ms;
    size_t steps = (size_t)(pp->held_for_ms / pp->step_ms) + 1, n = json_array_size(res);
    /* vals[series * steps + step], NaN-marked holes via present[]. */
    double *vals = calloc(n * steps + 1, sizeof *vals);
    bool *present = calloc(n * steps + 1, sizeof *present);
    double *col = calloc(n + 1, sizeof *col);
    const json_t **metric = calloc(n + 1, sizeof *metric);
    if (!vals || !present || !col || !metric) {
        snprintf(out->error, sizeof out->error, "prometheus: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(res, i), *pts = json_object_get(s, "values");
        size_t k;
        const json_t *pt;
        json_array_foreach(pts, k, pt)
        {
            double v, t;
            if (!parse_value(pt, &v, &t)) {
                snprintf(out->error, sizeof out->error, "prometheus: malformed matrix result");
                goto done;
            }
            double idx = ((t * 1000.0) - (double)start_ms) / (double)pp->step_ms;
            long j = lround(idx);
            if (j >= 0 && (size_t)j < steps) {
                vals[i * steps + (size_t)j] = v;
                present[i * steps + (size_t)j] = true;
            }
        }
    }
    char from[40], to[40], sd[32], hd[32];
    format_unix((double)start_ms / 1000.0, from, sizeof from);
    format_unix((double)end_ms / 1000.0, to, sizeof to);
    duration_format(pp->step_ms, sd, sizeof sd);
    duration_format(pp->held_for_ms, hd, sizeof hd);
    snprintf(out->detail, sizeof out->detail, "range %s to %s step %s, %zu series", from, to, sd,
             n);
    for (size_t j = 0; j < steps; j++) {
        struct vec v = {.v = col, .metric = metric};
        for (size_t i = 0; i < n; i++) {
            if (!present[i * steps + j])
                continue;
            col[v.n] = vals[i * steps + j];
            metric[v.n] = json_object_get(json_array_get(res, i), "metric");
            v.n++;
        }
        char why[128];
        if (!judge_vector(pp, &v, &out->value, &out->has_value, why, sizeof why)) {
            char at[40];
            format_unix((double)(start_ms + (int64_t)j * pp->step_ms) / 1000.0, at, sizeof at);
            snprintf(out->error, sizeof out->error, "not held for %s: at %s %s", hd, at, why);
            goto done;
        }
    }
    out->ok = true;
done:
    free(vals);
    free(present);
    free(col);
    free(metric);
}

static void on_reply(const struct pcurl_reply *rep, void *arg)
{
    struct prom_sample *ps = arg;
    struct sample out = {.t_ms = ps->t_ms, .latency_us = rep->latency_us, .status = rep->status};
    char why[sizeof out.error];
    json_t *doc = pcurl_json(rep, why, sizeof why);
    const json_t *data = doc ? json_object_get(doc, "data") : NULL;
    if (!doc)
        snprintf(out.error, sizeof out.error, "%s", why);
    else if (!json_is_object(data))
        snprintf(out.error, sizeof out.error, "prometheus: the answer has no data object");
    else if (ps->pp->held_for_ms)
        judge_range(ps, data, &out);
    else
        judge_instant(ps, data, &out);
    json_decref(doc);
    probe_done_cb done = ps->done;
    void *darg = ps->arg;
    probe_free(ps->ref);
    free(ps);
    done(&out, darg);
}

static void on_cancel(void *arg);

static int prom_runner_new(struct loop *loop, void **out, struct chaos_err *err)
{
    struct pcurl *pc;
    int r = pcurl_new(loop, &pc, err);
    if (r < 0) {
        chaos_err_prefix(err, "prometheus probe");
        return r;
    }
    *out = pc;
    return 0;
}

static void prom_runner_free(void *state)
{
    pcurl_free(state);
}

/* A sample dropped by prom_runner_free: its done is never called. */
static void on_cancel(void *arg)
{
    struct prom_sample *ps = arg;
    probe_free(ps->ref);
    free(ps);
}

static int prom_start(void *state, const struct probe *p, const void *impl, probe_done_cb done,
                      void *arg, struct chaos_err *err)
{
    const struct prom_probe *pp = impl;
    struct prom_sample *ps = calloc(1, sizeof *ps);
    if (!ps)
        return chaos_err_set(err, ENOMEM, "prometheus probe: out of memory");
    *ps = (struct prom_sample){
        .pp = pp, .done = done, .arg = arg, .t_ms = loop_now_ms(), .eval_unix_ms = loop_unix_ms()};
    size_t n = strlen(pp->query_esc) + 160;
    _cleanup_free_ char *path = malloc(n);
    if (!path) {
        free(ps);
        return chaos_err_set(err, ENOMEM, "prometheus probe: out of memory");
    }
    if (pp->held_for_ms) {
        int64_t end = ps->eval_unix_ms, start = end - pp->held_for_ms;
        snprintf(path, n, "/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%.3f",
                 pp->query_esc, (double)start / 1000.0, (double)end / 1000.0,
                 (double)pp->step_ms / 1000.0);
    } else {
        snprintf(path, n, "/api/v1/query?query=%s&time=%.3f", pp->query_esc,
                 (double)ps->eval_unix_ms / 1000.0);
    }
    ps->ref = probe_ref(p);
    int r = pcurl_request(state, &pp->conn, "GET", path, NULL, on_reply, on_cancel, ps, err);
    if (r < 0) {
        probe_free(ps->ref);
        free(ps);
        chaos_err_prefix(err, "prometheus probe");
        return r;
    }
    return 0;
}

const struct probe_ops probe_prometheus_ops = {
    .name = "prometheus",
    .expect_keys = prom_expect_keys,
    .max_in_flight = 4,
    .parse = prom_parse,
    .describe = prom_describe,
    .to_json = prom_to_json,
    .free = prom_free,
    .runner_new = prom_runner_new,
    .runner_free = prom_runner_free,
    .start = prom_start,
};
