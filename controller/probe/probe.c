/* The probe dispatcher: picks the kind from the probe object, owns struct
 * probe and struct probe_runner, and forwards to the kind's ops table. */
#include "probe.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "duration.h"
#include "jsonv.h"
#include "probe_impl.h"
#include "regex_bounded.h"
#include "util.h"

/* Every kind this version knows, in the order error messages list them. */
static const struct probe_ops *const kinds[] = {
    &probe_http_ops,         &probe_command_ops, &probe_prometheus_ops, &probe_prometheus_alert_ops,
    &probe_alertmanager_ops, &probe_workload_ops,
};
#define N_KINDS ARRAY_SIZE(kinds)

struct probe {
    size_t kind;   /* index into kinds[] */
    void *impl;    /* the kind's parsed data */
    unsigned refs; /* the owner plus one per sample in flight */
    struct probe_budget budget;
    const char *keys[16]; /* the kind's expect keys plus "budget" */
};

struct probe_runner {
    struct loop *loop;
    void *state[N_KINDS];
};

static void kinds_list(char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_KINDS && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", kinds[i]->name);
}

/* Puts "<ctx>: " in front of err unless ctx is empty; returns r. */
static int with_ctx(struct chaos_err *err, const char *ctx, int r)
{
    chaos_err_prefix(err, "%s", ctx ? ctx : "");
    return r;
}

/* "99.95%" or 0.9995 into a fraction in (lo, hi). */
static int parse_fraction(const json_t *b, const char *key, bool required, double lo, double hi,
                          double *out, struct chaos_err *err)
{
    json_t *v = json_object_get(b, key);
    if (!v)
        return required ? chaos_err_set(err, EINVAL, "expect.budget.%s: missing", key) : 0;
    double x;
    if (json_is_number(v)) {
        x = json_number_value(v);
    } else if (json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        x = strtod(s, &end);
        if (end == s || strcmp(end, "%") != 0)
            return chaos_err_set(err, EINVAL,
                                 "expect.budget.%s: \"%s\" must be a percentage like \"99.9%%\" "
                                 "or a fraction like 0.999",
                                 key, s);
        x /= 100.0;
    } else {
        return chaos_err_set(err, EINVAL,
                             "expect.budget.%s: must be a percentage string or a number, not %s",
                             key, jv_type_name(v));
    }
    if (!(x > lo && x < hi))
        return chaos_err_set(err, ERANGE, "expect.budget.%s: %g is out of range (%g-%g, exclusive)",
                             key, x, lo, hi);
    *out = x;
    return 1;
}

/* expect.budget: {"slo": "99.95%", "period": "30d", "max_burn": "2%",
 * "source": "samples"|"value"}. */
static int parse_budget(const json_t *expect, const char *kind, struct probe_budget *b,
                        struct chaos_err *err)
{
    json_t *o = expect ? json_object_get(expect, "budget") : NULL;
    if (!o)
        return 0;
    static const char *const keys[] = {"slo", "period", "max_burn", "source", NULL};
    int r;
    if ((r = jv_expect_object(o, "expect.budget", err)) < 0 ||
        (r = jv_only_keys(o, "expect.budget", keys, err)) < 0)
        return r;
    if ((r = parse_fraction(o, "slo", true, 0, 1, &b->slo, err)) < 0 ||
        (r = parse_fraction(o, "max_burn", true, 0, 1.000001, &b->max_burn, err)) < 0)
        return r;
    const char *period;
    if ((r = jv_string(o, "expect.budget", "period", true, &period, err)) < 0)
        return r;
    /* SLO periods are written in days ("30d", "28d"), past what durations take. */
    char *end;
    long days = strtol(period, &end, 10);
    if (end != period && strcmp(end, "d") == 0 && days >= 1 && days <= 366) {
        b->period_ms = days * 24LL * 3600 * 1000;
    } else {
        struct chaos_err derr = {0};
        if (duration_parse(period, &b->period_ms, &derr) < 0 || b->period_ms <= 0)
            return chaos_err_set(err, EINVAL,
                                 "expect.budget.period: \"%s\" must be days (\"30d\", 1-366) or a "
                                 "duration above 0s",
                                 period);
    }
    const char *src = "samples";
    if ((r = jv_string(o, "expect.budget", "source", false, &src, err)) < 0)
        return r;
    if (strcmp(src, "value") == 0 && strcmp(kind, "prometheus") == 0)
        b->from_value = true;
    else if (strcmp(src, "value") == 0)
        return chaos_err_set(err, EINVAL,
                             "expect.budget.source: \"value\" needs a prometheus probe whose "
                             "query gives the error ratio");
    else if (strcmp(src, "samples") != 0)
        return chaos_err_set(err, EINVAL, "expect.budget.source: must be \"samples\" or \"value\"");
    /* An eventually check passes at its first good sample: a budget over
     * the window would never be judged. */
    if (json_object_get(expect, "within"))
        return chaos_err_set(err, EINVAL,
                             "expect.budget: cannot be combined with within: a budget is judged "
                             "over the whole window");
    b->ratio_written = json_object_get(expect, "success_ratio") != NULL;
    b->set = true;
    return 0;
}

int probe_parse(const json_t *probe_obj, const json_t *expect_obj, const char *ctx,
                struct probe **out, struct chaos_err *err)
{
    char list[128];
    kinds_list(list, sizeof list);

    int r = jv_expect_object(probe_obj, "probe", err);
    if (r < 0)
        return with_ctx(err, ctx, r);
    if (expect_obj && !json_is_object(expect_obj))
        return with_ctx(err, ctx,
                        chaos_err_set(err, EINVAL, "expect: must be an object, not %s",
                                      jv_type_name(expect_obj)));
    if (json_object_size(probe_obj) != 1)
        return with_ctx(err, ctx,
                        chaos_err_set(err, EINVAL, "probe: give exactly one of %s", list));

    const char *key, *only_key = "";
    json_t *val, *only_val = NULL;
    size_t kind = N_KINDS;
    json_object_foreach((json_t *)probe_obj, key, val)
    {
        only_key = key;
        only_val = val;
        for (size_t i = 0; i < N_KINDS; i++)
            if (strcmp(key, kinds[i]->name) == 0)
                kind = i;
    }
    if (kind == N_KINDS) {
        /* A near miss of a known kind is a typo; anything else is a kind a
         * later version may bring. */
        const char *names[N_KINDS + 1];
        for (size_t i = 0; i < N_KINDS; i++)
            names[i] = kinds[i]->name;
        names[N_KINDS] = NULL;
        struct chaos_err typo = {0};
        if (jv_only_keys(probe_obj, "probe", names, &typo) < 0 && strstr(typo.msg, "did you mean"))
            r = chaos_err_set(err, EINVAL, "%s", typo.msg);
        else
            r = chaos_err_set(err, EINVAL,
                              "probe.%s: not available in this version (available: %s)", only_key,
                              list);
        return with_ctx(err, ctx, r);
    }

    char path[64];
    snprintf(path, sizeof path, "probe.%s", kinds[kind]->name);
    r = jv_expect_object(only_val, path, err);
    if (r < 0)
        return with_ctx(err, ctx, r);

    struct probe *p = calloc(1, sizeof *p);
    if (!p)
        return with_ctx(err, ctx, chaos_err_set(err, ENOMEM, "probe: out of memory"));
    r = kinds[kind]->parse(only_val, expect_obj, &p->impl, err);
    if (r < 0) {
        free(p);
        return with_ctx(err, ctx, r);
    }
    p->kind = kind;
    p->refs = 1;
    size_t nk = 0;
    for (const char *const *k = kinds[kind]->expect_keys; *k && nk < ARRAY_SIZE(p->keys) - 2; k++)
        p->keys[nk++] = *k;
    p->keys[nk++] = "budget";
    p->keys[nk] = NULL;
    if ((r = parse_budget(expect_obj, kinds[kind]->name, &p->budget, err)) < 0) {
        kinds[kind]->free(p->impl);
        free(p);
        return with_ctx(err, ctx, r);
    }
    *out = p;
    return 0;
}

int probe_bind_faults(struct probe *p, const struct probe_fault_ref *faults, size_t n,
                      const char *ctx, struct chaos_err *err)
{
    if (!kinds[p->kind]->bind)
        return 0;
    int r = kinds[p->kind]->bind(p->impl, faults, n, err);
    return r < 0 ? with_ctx(err, ctx, r) : 0;
}

const struct probe_budget *probe_budget(const struct probe *p)
{
    return &p->budget;
}

const char *const *probe_expect_keys(const struct probe *p)
{
    return p->keys;
}

const char *probe_kind(const struct probe *p)
{
    return kinds[p->kind]->name;
}

int probe_max_in_flight(const struct probe *p)
{
    return kinds[p->kind]->max_in_flight;
}

const char *probe_describe(const struct probe *p)
{
    return kinds[p->kind]->describe(p->impl);
}

json_t *probe_to_json(const struct probe *p)
{
    json_t *inner = kinds[p->kind]->to_json(p->impl);
    if (!inner)
        return NULL;
    json_t *o = json_object();
    if (!o || json_object_set_new(o, kinds[p->kind]->name, inner) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

struct probe *probe_ref(const struct probe *p)
{
    /* The count is bookkeeping, not part of the probe's value: a const probe
     * may be shared by samples in flight. */
    struct probe *mp = (struct probe *)p;
    mp->refs++;
    return mp;
}

void probe_free(struct probe *p)
{
    if (!p || --p->refs > 0)
        return;
    kinds[p->kind]->free(p->impl);
    free(p);
}

struct probe_runner *probe_runner_new(struct loop *loop, struct chaos_err *err)
{
    struct probe_runner *r = calloc(1, sizeof *r);
    if (!r) {
        chaos_err_set(err, ENOMEM, "probe runner: out of memory");
        return NULL;
    }
    r->loop = loop;
    for (size_t i = 0; i < N_KINDS; i++) {
        if (kinds[i]->runner_new(loop, &r->state[i], err) < 0) {
            probe_runner_free(r);
            return NULL;
        }
    }
    return r;
}

void probe_runner_free(struct probe_runner *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < N_KINDS; i++)
        if (r->state[i])
            kinds[i]->runner_free(r->state[i]);
    free(r);
}

int probe_start(struct probe_runner *r, const struct probe *p, probe_done_cb done, void *arg,
                struct chaos_err *err)
{
    return kinds[p->kind]->start(r->state[p->kind], p, p->impl, done, arg, err);
}

/* Shared helpers for the kinds. */

void probe_format_int_list(const int *v, size_t n, char *buf, size_t size)
{
    size_t off = (size_t)snprintf(buf, size, "[");
    for (size_t i = 0; i < n; i++) {
        char item[16];
        snprintf(item, sizeof item, "%s%d", i ? ", " : "", v[i]);
        if (off + strlen(item) + 5 >= size) {
            snprintf(buf + off, size - off, ", ...]");
            return;
        }
        off += (size_t)snprintf(buf + off, size - off, "%s", item);
    }
    snprintf(buf + off, size - off, "]");
}

int probe_parse_int_list(const json_t *expect, const char *key, long long min, long long max,
                         int **out, size_t *n, struct chaos_err *err)
{
    if (!expect)
        return 0;
    const json_t *arr;
    int r = jv_array(expect, "expect", key, false, 1, 256, &arr, err);
    if (r <= 0)
        return r;
    size_t count = json_array_size(arr);
    int *v = calloc(count, sizeof *v);
    if (!v)
        return chaos_err_set(err, ENOMEM, "expect.%s: out of memory", key);
    for (size_t i = 0; i < count; i++) {
        const json_t *e = json_array_get(arr, i);
        long long x = json_is_integer(e) ? json_integer_value(e) : 0;
        if (!json_is_integer(e) || x < min || x > max) {
            free(v);
            if (!json_is_integer(e))
                return chaos_err_set(err, EINVAL,
                                     "expect.%s[%zu]: must be an integer %lld-%lld, not %s", key, i,
                                     min, max, jv_type_name(e));
            return chaos_err_set(err, ERANGE, "expect.%s[%zu]: %lld is out of range (%lld-%lld)",
                                 key, i, x, min, max);
        }
        v[i] = (int)x;
    }
    *out = v;
    *n = count;
    return 1;
}

struct probe_regex {
    regex_t re;
};

int probe_parse_regex(const json_t *expect, const char *key, struct probe_regex **out,
                      const char **src, struct chaos_err *err)
{
    if (!expect)
        return 0;
    const char *pattern;
    int r = jv_string(expect, "expect", key, false, &pattern, err);
    if (r <= 0)
        return r;
    struct probe_regex *re = calloc(1, sizeof *re);
    if (!re)
        return chaos_err_set(err, ENOMEM, "expect.%s: out of memory", key);
    char why[128];
    if (regex_compile_bounded(&re->re, pattern, why, sizeof why) != 0) {
        char q[64];
        free(re);
        probe_quote(pattern, q, sizeof q);
        return chaos_err_set(err, EINVAL, "expect.%s: %s is not a valid POSIX extended regex: %s",
                             key, q, why);
    }
    *out = re;
    *src = pattern;
    return 1;
}

bool probe_regex_match(const struct probe_regex *re, const char *text, size_t len)
{
#ifdef REG_STARTEND
    regmatch_t m[1] = {{.rm_so = 0, .rm_eo = (regoff_t)len}};
    return regexec(&re->re, text, 1, m, REG_STARTEND) == 0;
#else
    (void)len;
    return regexec(&re->re, text, 0, NULL, 0) == 0;
#endif
}

void probe_regex_free(struct probe_regex *re)
{
    if (!re)
        return;
    regfree(&re->re);
    free(re);
}

void probe_quote(const char *text, char *buf, size_t size)
{
    const size_t max = 48;
    size_t off = 0, i = 0;
    if (size < 8) {
        if (size)
            buf[0] = '\0';
        return;
    }
    buf[off++] = '"';
    for (; text[i] && i < max && off + 6 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        buf[off++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (text[i]) {
        memcpy(buf + off, "...", 3);
        off += 3;
    }
    buf[off++] = '"';
    buf[off] = '\0';
}
