/* Two alert probes, so a scenario can tell "the rule never fired" apart
 * from "Alertmanager never got it":
 *   alertmanager      GET /api/v2/alerts: is an alert with this name and
 *                     these labels in one of the wanted states (active,
 *                     suppressed, unprocessed)?
 *   prometheus_alert  GET /api/v1/rules?type=alert: is the alerting rule
 *                     (or its alerts with these labels) inactive, pending
 *                     or firing? A rule that is not loaded fails the
 *                     sample: a wrong alert name is never "not firing".
 * A sample holds when the matched alert is in the wanted state; "fires
 * within T", "not firing during", "resolved within T after" are the
 * check's within / during / after over these samples. */
#include "probe_impl.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonv.h"
#include "probe_curl.h"
#include "regex_bounded.h"
#include "util.h"

#define AM_MAX_MATCHERS 32
#define AM_LABEL_MAX 1024

static const char *const am_keys[] = {PCONN_KEYS, "alert", "matchers", "states", NULL};
static const char *const am_expect_keys[] = {"firing", NULL};
static const char *const pa_keys[] = {PCONN_KEYS, "alert", "matchers", NULL};
static const char *const pa_expect_keys[] = {"firing", "state", NULL};

enum mop { MOP_EQ, MOP_NE, MOP_RE, MOP_NRE };
static const char *const mop_str[] = {"=", "!=", "=~", "!~"};

struct matcher {
    char *name;
    char *value;
    enum mop op;
    bool has_re;
    regex_t re;
};

enum { ST_ACTIVE = 1, ST_SUPPRESSED = 2, ST_UNPROCESSED = 4 };
enum rule_state { RS_INACTIVE, RS_PENDING, RS_FIRING };
static const char *const rule_state_names[] = {"inactive", "pending", "firing", NULL};

struct alert_probe {
    bool rule; /* prometheus_alert, else alertmanager */
    struct pconn conn;
    char *alert;
    struct matcher m[AM_MAX_MATCHERS];
    size_t n_m;
    unsigned states; /* alertmanager: ST_* wanted */
    bool firing;     /* alertmanager; prometheus_alert without state */
    int want_state;  /* prometheus_alert: enum rule_state, -1 when "firing" given */
    char *desc;
};

struct alert_sample {
    const struct alert_probe *ap;
    struct probe *ref;
    probe_done_cb done;
    void *arg;
    int64_t t_ms;
};

static void alert_free(void *impl)
{
    struct alert_probe *ap = impl;
    if (!ap)
        return;
    pconn_clear(&ap->conn);
    free(ap->alert);
    for (size_t i = 0; i < ap->n_m; i++) {
        free(ap->m[i].name);
        free(ap->m[i].value);
        if (ap->m[i].has_re)
            regfree(&ap->m[i].re);
    }
    free(ap->desc);
    free(ap);
}

static bool is_label_name(const char *s, size_t n)
{
    if (!n || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* "severity=page", "job!=x", "service=~check.*", "env!~\"dev|test\"". */
static int parse_matcher(const char *s, const char *path, struct matcher *m, struct chaos_err *err)
{
    char q[64];
    probe_quote(s, q, sizeof q);
    size_t n = strcspn(s, "=!");
    const char *op = s + n;
    size_t oplen;
    if (strncmp(op, "=~", 2) == 0)
        m->op = MOP_RE, oplen = 2;
    else if (strncmp(op, "!~", 2) == 0)
        m->op = MOP_NRE, oplen = 2;
    else if (strncmp(op, "!=", 2) == 0)
        m->op = MOP_NE, oplen = 2;
    else if (*op == '=')
        m->op = MOP_EQ, oplen = 1;
    else
        return chaos_err_set(err, EINVAL,
                             "%s: %s is not a matcher; write label=value, label!=value, "
                             "label=~regex or label!~regex",
                             path, q);
    if (!is_label_name(s, n))
        return chaos_err_set(err, EINVAL,
                             "%s: %s: the label name must match [a-zA-Z_][a-zA-Z0-9_]*", path, q);
    const char *v = op + oplen;
    size_t vlen = strlen(v);
    if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
        v++, vlen -= 2;
    if (vlen > AM_LABEL_MAX)
        return chaos_err_set(err, EINVAL, "%s: the value is longer than %d characters", path,
                             AM_LABEL_MAX);
    if (!(m->name = strndup(s, n)) || !(m->value = strndup(v, vlen)))
        return chaos_err_set(err, ENOMEM, "%s: out of memory", path);
    if (m->op == MOP_RE || m->op == MOP_NRE) {
        /* Prometheus anchors label regexes at both ends. */
        size_t an = vlen + 5;
        _cleanup_free_ char *anchored = malloc(an);
        if (!anchored)
            return chaos_err_set(err, ENOMEM, "%s: out of memory", path);
        snprintf(anchored, an, "^(%s)$", m->value);
        char why[128];
        if (regex_compile_bounded(&m->re, anchored, why, sizeof why) != 0)
            return chaos_err_set(err, EINVAL, "%s: %s is not a valid POSIX extended regex: %s",
                                 path, q, why);
        m->has_re = true;
    }
    return 0;
}

static bool matcher_holds(const struct matcher *m, const json_t *labels)
{
    const char *v = json_string_value(json_object_get(labels, m->name));
    if (!v)
        v = ""; /* a missing label matches "" as in Prometheus */
    switch (m->op) {
    case MOP_EQ:
        return strcmp(v, m->value) == 0;
    case MOP_NE:
        return strcmp(v, m->value) != 0;
    case MOP_RE:
        return regexec(&m->re, v, 0, NULL, 0) == 0;
    case MOP_NRE:
        return regexec(&m->re, v, 0, NULL, 0) != 0;
    }
    return false;
}

static bool labels_match(const struct alert_probe *ap, const json_t *labels)
{
    const char *name = json_string_value(json_object_get(labels, "alertname"));
    if (!ap->rule && (!name || strcmp(name, ap->alert) != 0))
        return false;
    for (size_t i = 0; i < ap->n_m; i++)
        if (!matcher_holds(&ap->m[i], labels))
            return false;
    return true;
}

static int parse_common(const json_t *obj, const char *ctx, struct alert_probe *ap,
                        struct chaos_err *err)
{
    int r;
    const char *alert;
    if ((r = pconn_parse(obj, ctx, &ap->conn, err)) < 0 ||
        (r = jv_string(obj, ctx, "alert", true, &alert, err)) < 0)
        return r;
    if (!*alert || strlen(alert) > AM_LABEL_MAX)
        return chaos_err_set(err, EINVAL, "%s.alert: must be 1-%d characters", ctx, AM_LABEL_MAX);
    if (!(ap->alert = strdup(alert)))
        return chaos_err_set(err, ENOMEM, "%s: out of memory", ctx);
    const json_t *arr;
    if ((r = jv_array(obj, ctx, "matchers", false, 0, AM_MAX_MATCHERS, &arr, err)) < 0)
        return r;
    for (size_t i = 0; r > 0 && i < json_array_size(arr); i++) {
        char path[80];
        snprintf(path, sizeof path, "%s.matchers[%zu]", ctx, i);
        const json_t *e = json_array_get(arr, i);
        if (!json_is_string(e))
            return chaos_err_set(err, EINVAL, "%s: must be a string like \"severity=page\", not %s",
                                 path, jv_type_name(e));
        int mr = parse_matcher(json_string_value(e), path, &ap->m[ap->n_m], err);
        ap->n_m++; /* counted even on failure so alert_free frees what it holds */
        if (mr < 0)
            return mr;
    }
    return 0;
}

static int make_desc(struct alert_probe *ap, const char *kind, struct chaos_err *err)
{
    size_t n = strlen(ap->alert) + strlen(ap->conn.url) + 64;
    for (size_t i = 0; i < ap->n_m; i++)
        n += strlen(ap->m[i].name) + strlen(ap->m[i].value) + 6;
    if (!(ap->desc = malloc(n)))
        return chaos_err_set(err, ENOMEM, "probe.%s: out of memory", kind);
    size_t off = (size_t)snprintf(ap->desc, n, "%s %s", kind, ap->alert);
    for (size_t i = 0; i < ap->n_m; i++)
        off += (size_t)snprintf(ap->desc + off, n - off, "%s%s%s\"%s\"", i ? ", " : "{",
                                ap->m[i].name, mop_str[ap->m[i].op], ap->m[i].value);
    snprintf(ap->desc + off, n - off, "%s at %s", ap->n_m ? "}" : "", ap->conn.url);
    return 0;
}

static int am_parse(const json_t *obj, const json_t *expect, void **out, struct chaos_err *err)
{
    int r = jv_only_keys(obj, "probe.alertmanager", am_keys, err);
    if (r < 0)
        return r;
    struct alert_probe *ap = calloc(1, sizeof *ap);
    if (!ap)
        return chaos_err_set(err, ENOMEM, "probe.alertmanager: out of memory");
    ap->firing = true;
    /* A silenced or inhibited alert still fires: Alertmanager's states say
     * whether it notifies. A game day's own silence must not hide the alert
     * from the check that waits for it (docs/verification.md). */
    ap->states = ST_ACTIVE | ST_SUPPRESSED;
    if ((r = parse_common(obj, "probe.alertmanager", ap, err)) < 0)
        goto fail;
    const json_t *arr;
    if ((r = jv_array(obj, "probe.alertmanager", "states", false, 1, 3, &arr, err)) < 0)
        goto fail;
    if (r > 0) {
        ap->states = 0;
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const char *s = json_string_value(json_array_get(arr, i));
            unsigned bit = !s                              ? 0
                           : strcmp(s, "active") == 0      ? ST_ACTIVE
                           : strcmp(s, "suppressed") == 0  ? ST_SUPPRESSED
                           : strcmp(s, "unprocessed") == 0 ? ST_UNPROCESSED
                                                           : 0;
            if (!bit) {
                r = chaos_err_set(err, EINVAL,
                                  "probe.alertmanager.states[%zu]: must be one of active, "
                                  "suppressed, unprocessed",
                                  i);
                goto fail;
            }
            ap->states |= bit;
        }
    }
    if (expect && (r = jv_bool(expect, "expect", "firing", false, &ap->firing, err)) < 0)
        goto fail;
    if ((r = make_desc(ap, "alertmanager", err)) < 0)
        goto fail;
    *out = ap;
    return 0;
fail:
    alert_free(ap);
    return r;
}

static int pa_parse(const json_t *obj, const json_t *expect, void **out, struct chaos_err *err)
{
    int r = jv_only_keys(obj, "probe.prometheus_alert", pa_keys, err);
    if (r < 0)
        return r;
    struct alert_probe *ap = calloc(1, sizeof *ap);
    if (!ap)
        return chaos_err_set(err, ENOMEM, "probe.prometheus_alert: out of memory");
    ap->rule = true;
    ap->firing = true;
    ap->want_state = -1;
    if ((r = parse_common(obj, "probe.prometheus_alert", ap, err)) < 0)
        goto fail;
    bool has_firing = expect && json_object_get(expect, "firing");
    const char *st;
    if (expect && (r = jv_bool(expect, "expect", "firing", false, &ap->firing, err)) < 0)
        goto fail;
    if (expect && (r = jv_string(expect, "expect", "state", false, &st, err)) < 0)
        goto fail;
    if (r > 0) {
        if (has_firing) {
            r = chaos_err_set(err, EINVAL,
                              "expect.state: cannot be combined with expect.firing: give one");
            goto fail;
        }
        for (int i = 0; rule_state_names[i]; i++)
            if (strcmp(st, rule_state_names[i]) == 0)
                ap->want_state = i;
        if (ap->want_state < 0) {
            char q[64];
            probe_quote(st, q, sizeof q);
            r = chaos_err_set(err, EINVAL,
                              "expect.state: %s is not one of inactive, pending, firing", q);
            goto fail;
        }
    }
    if ((r = make_desc(ap, "prometheus_alert", err)) < 0)
        goto fail;
    *out = ap;
    return 0;
fail:
    alert_free(ap);
    return r;
}

static const char *alert_describe(const void *impl)
{
    return ((const struct alert_probe *)impl)->desc;
}

static json_t *alert_to_json(const void *impl)
{
    const struct alert_probe *ap = impl;
    json_t *o = json_object(), *m = json_array();
    if (!o || !m || pconn_to_json(&ap->conn, o) < 0 ||
        json_object_set_new(o, "alert", json_string(ap->alert)) < 0)
        goto fail;
    for (size_t i = 0; i < ap->n_m; i++) {
        char b[2 * AM_LABEL_MAX + 8];
        snprintf(b, sizeof b, "%s%s%s", ap->m[i].name, mop_str[ap->m[i].op], ap->m[i].value);
        if (json_array_append_new(m, json_string(b)) < 0)
            goto fail;
    }
    if (json_object_set_new(o, "matchers", m) < 0) {
        m = NULL;
        goto fail;
    }
    m = NULL;
    if (!ap->rule) {
        json_t *st = json_array();
        if (!st || json_object_set_new(o, "states", st) < 0)
            goto fail;
        if (ap->states & ST_ACTIVE)
            json_array_append_new(st, json_string("active"));
        if (ap->states & ST_SUPPRESSED)
            json_array_append_new(st, json_string("suppressed"));
        if (ap->states & ST_UNPROCESSED)
            json_array_append_new(st, json_string("unprocessed"));
    }
    json_t *want = ap->want_state >= 0 && ap->rule
                       ? json_string(rule_state_names[ap->want_state])
                       : json_string(ap->firing ? "firing" : "not firing");
    if (json_object_set_new(o, "wanted", want) < 0)
        goto fail;
    return o;
fail:
    json_decref(m);
    json_decref(o);
    return NULL;
}

/* Judging */

static void judge_am(const struct alert_probe *ap, const json_t *doc, struct sample *out)
{
    if (!json_is_array(doc)) {
        snprintf(out->error, sizeof out->error, "alertmanager: the answer is not an array");
        return;
    }
    size_t i, hits = 0, other = 0;
    const json_t *a;
    json_array_foreach(doc, i, a)
    {
        if (!labels_match(ap, json_object_get(a, "labels")))
            continue;
        const char *st = json_string_value(json_object_get(json_object_get(a, "status"), "state"));
        unsigned bit = !st                              ? 0
                       : strcmp(st, "active") == 0      ? ST_ACTIVE
                       : strcmp(st, "suppressed") == 0  ? ST_SUPPRESSED
                       : strcmp(st, "unprocessed") == 0 ? ST_UNPROCESSED
                                                        : 0;
        if (bit & ap->states)
            hits++;
        else
            other++;
    }
    out->has_value = true;
    out->value = (double)hits;
    snprintf(out->detail, sizeof out->detail,
             "%zu of %zu alerts match in a wanted state (%zu more in another state)", hits,
             json_array_size(doc), other);
    out->ok = ap->firing ? hits > 0 : hits == 0;
    if (!out->ok)
        snprintf(out->error, sizeof out->error, "%s is %sfiring (%zu matching alert%s)", ap->alert,
                 hits ? "" : "not ", hits, hits == 1 ? "" : "s");
}

static enum rule_state parse_rule_state(const char *s)
{
    if (s && strcmp(s, "firing") == 0)
        return RS_FIRING;
    if (s && strcmp(s, "pending") == 0)
        return RS_PENDING;
    return RS_INACTIVE;
}

static void judge_rule(const struct alert_probe *ap, const json_t *doc, struct sample *out)
{
    const json_t *groups = json_object_get(json_object_get(doc, "data"), "groups");
    if (!json_is_array(groups)) {
        snprintf(out->error, sizeof out->error, "prometheus: the answer has no data.groups");
        return;
    }
    size_t gi, ri, n_rules = 0, found = 0;
    const json_t *g, *rule;
    enum rule_state state = RS_INACTIVE;
    json_array_foreach(groups, gi, g)
    {
        json_array_foreach(json_object_get(g, "rules"), ri, rule)
        {
            const char *type = json_string_value(json_object_get(rule, "type"));
            const char *name = json_string_value(json_object_get(rule, "name"));
            if (type && strcmp(type, "alerting") != 0)
                continue;
            n_rules++;
            if (!name || strcmp(name, ap->alert) != 0)
                continue;
            found++;
            if (!ap->n_m) {
                enum rule_state s =
                    parse_rule_state(json_string_value(json_object_get(rule, "state")));
                if (s > state)
                    state = s;
                continue;
            }
            size_t ai;
            const json_t *a;
            json_array_foreach(json_object_get(rule, "alerts"), ai, a)
            {
                if (!labels_match(ap, json_object_get(a, "labels")))
                    continue;
                enum rule_state s =
                    parse_rule_state(json_string_value(json_object_get(a, "state")));
                if (s > state)
                    state = s;
            }
        }
    }
    if (!found) {
        snprintf(out->error, sizeof out->error,
                 "prometheus has no alerting rule named %s (%zu alerting rules loaded)", ap->alert,
                 n_rules);
        return;
    }
    out->has_value = true;
    out->value = (double)state;
    snprintf(out->detail, sizeof out->detail, "rule %s is %s", ap->alert, rule_state_names[state]);
    if (ap->want_state >= 0)
        out->ok = (int)state == ap->want_state;
    else
        out->ok = ap->firing ? state == RS_FIRING : state != RS_FIRING;
    if (!out->ok)
        snprintf(out->error, sizeof out->error, "rule %s is %s, wanted %s", ap->alert,
                 rule_state_names[state],
                 ap->want_state >= 0 ? rule_state_names[ap->want_state]
                 : ap->firing        ? "firing"
                                     : "not firing");
}

static void on_reply(const struct pcurl_reply *rep, void *arg)
{
    struct alert_sample *as = arg;
    struct sample out = {.t_ms = as->t_ms, .latency_us = rep->latency_us, .status = rep->status};
    char why[sizeof out.error];
    json_t *doc = pcurl_json(rep, why, sizeof why);
    if (!doc)
        snprintf(out.error, sizeof out.error, "%s", why);
    else if (as->ap->rule)
        judge_rule(as->ap, doc, &out);
    else
        judge_am(as->ap, doc, &out);
    json_decref(doc);
    probe_done_cb done = as->done;
    void *darg = as->arg;
    probe_free(as->ref);
    free(as);
    done(&out, darg);
}

static void on_cancel(void *arg)
{
    struct alert_sample *as = arg;
    probe_free(as->ref);
    free(as);
}

static int alert_runner_new(struct loop *loop, void **out, struct chaos_err *err)
{
    struct pcurl *pc;
    int r = pcurl_new(loop, &pc, err);
    if (r < 0) {
        chaos_err_prefix(err, "alert probe");
        return r;
    }
    *out = pc;
    return 0;
}

static void alert_runner_free(void *state)
{
    pcurl_free(state);
}

static int alert_start(void *state, const struct probe *p, const void *impl, probe_done_cb done,
                       void *arg, struct chaos_err *err)
{
    const struct alert_probe *ap = impl;
    struct alert_sample *as = calloc(1, sizeof *as);
    if (!as)
        return chaos_err_set(err, ENOMEM, "alert probe: out of memory");
    *as = (struct alert_sample){.ap = ap, .done = done, .arg = arg, .t_ms = loop_now_ms()};
    as->ref = probe_ref(p);
    /* Alertmanager: every alert, filtered here (the matchers' regexes are
     * ours, bounded). Prometheus: the alerting rules with their alerts. */
    const char *path = ap->rule ? "/api/v1/rules?type=alert" : "/api/v2/alerts";
    int r = pcurl_request(state, &ap->conn, "GET", path, NULL, on_reply, on_cancel, as, err);
    if (r < 0) {
        probe_free(as->ref);
        free(as);
        chaos_err_prefix(err, "alert probe");
        return r;
    }
    return 0;
}

const struct probe_ops probe_alertmanager_ops = {
    .name = "alertmanager",
    .expect_keys = am_expect_keys,
    .max_in_flight = 4,
    .parse = am_parse,
    .describe = alert_describe,
    .to_json = alert_to_json,
    .free = alert_free,
    .runner_new = alert_runner_new,
    .runner_free = alert_runner_free,
    .start = alert_start,
};

const struct probe_ops probe_prometheus_alert_ops = {
    .name = "prometheus_alert",
    .expect_keys = pa_expect_keys,
    .max_in_flight = 4,
    .parse = pa_parse,
    .describe = alert_describe,
    .to_json = alert_to_json,
    .free = alert_free,
    .runner_new = alert_runner_new,
    .runner_free = alert_runner_free,
    .start = alert_start,
};
