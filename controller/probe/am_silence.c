/* Alertmanager silences: POST /api/v2/silences, DELETE /api/v2/silence/{id},
 * through the probes' curl multi on the loop (probe_curl.c). */
#include "am_silence.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jsonv.h"
#include "probe_curl.h"
#include "probe_impl.h"
#include "util.h"

struct am_silencer {
    struct pcurl *pc;
    struct pconn conn;
};

struct op {
    am_silence_created_cb created;
    am_silence_deleted_cb deleted;
    void *arg;
};

int am_silencer_new(struct loop *loop, const json_t *conn, const char *ctx,
                    struct am_silencer **out, struct chaos_err *err)
{
    static const char *const keys[] = {PCONN_KEYS, NULL};
    int r;
    if ((r = jv_expect_object(conn, ctx, err)) < 0 || (r = jv_only_keys(conn, ctx, keys, err)) < 0)
        return r;
    struct am_silencer *s = calloc(1, sizeof *s);
    if (!s)
        return chaos_err_set(err, ENOMEM, "%s: out of memory", ctx);
    if ((r = pconn_parse(conn, ctx, &s->conn, err)) < 0 || (r = pcurl_new(loop, &s->pc, err)) < 0) {
        pconn_clear(&s->conn);
        free(s);
        return r;
    }
    *out = s;
    return 0;
}

void am_silencer_free(struct am_silencer *s)
{
    if (!s)
        return;
    pcurl_free(s->pc);
    pconn_clear(&s->conn);
    free(s);
}

static void rfc3339(int64_t unix_ms, char *buf, size_t size)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char d[32] = "1970-01-01T00:00:00";
    if (gmtime_r(&t, &tm))
        strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03dZ", d, (int)(unix_ms % 1000));
}

/* "name=value" etc. into Alertmanager's matcher object; ctx names the
 * matchers array in errors ("silence.matchers"). */
static json_t *matcher_json(const char *m, const char *ctx, size_t i, struct chaos_err *err)
{
    size_t n = strspn(m, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    const char *op = m + n;
    bool re = false, eq = true;
    size_t oplen = 1;
    if (strncmp(op, "=~", 2) == 0)
        re = true, oplen = 2;
    else if (strncmp(op, "!~", 2) == 0)
        re = true, eq = false, oplen = 2;
    else if (strncmp(op, "!=", 2) == 0)
        eq = false, oplen = 2;
    else if (*op != '=')
        n = 0;
    if (!n || (m[0] >= '0' && m[0] <= '9')) {
        char q[64];
        probe_quote(m, q, sizeof q);
        chaos_err_set(err, EINVAL,
                      "%s[%zu]: %s is not a matcher; write label=value, "
                      "label!=value, label=~regex or label!~regex",
                      ctx, i, q);
        return NULL;
    }
    json_t *j = json_pack("{s:s%, s:s, s:b, s:b}", "name", m, n, "value", op + oplen, "isRegex", re,
                          "isEqual", eq);
    if (!j)
        chaos_err_set(err, ENOMEM, "silence: out of memory");
    return j;
}

int am_silence_check_matcher(const char *m, const char *ctx, size_t i, struct chaos_err *err)
{
    json_t *j = matcher_json(m, ctx, i, err);
    if (!j)
        return -err->code;
    json_decref(j);
    return 0;
}

int am_silence_check_conn(const json_t *conn, const char *ctx, struct chaos_err *err)
{
    static const char *const keys[] = {PCONN_KEYS, NULL};
    struct pconn c = {0};
    int r;
    if ((r = jv_expect_object(conn, ctx, err)) < 0 || (r = jv_only_keys(conn, ctx, keys, err)) < 0)
        return r;
    r = pconn_parse(conn, ctx, &c, err);
    pconn_clear(&c);
    return r;
}

static void on_created(const struct pcurl_reply *rep, void *arg)
{
    struct op *o = arg;
    char why[256];
    json_t *doc = pcurl_json(rep, why, sizeof why);
    const char *id = doc ? json_string_value(json_object_get(doc, "silenceID")) : NULL;
    if (doc && !id)
        snprintf(why, sizeof why, "alertmanager: the answer has no silenceID");
    o->created(id, id ? NULL : why, o->arg);
    json_decref(doc);
    free(o);
}

static void on_deleted(const struct pcurl_reply *rep, void *arg)
{
    struct op *o = arg;
    char why[256];
    const char *e = NULL;
    if (rep->error) {
        e = rep->error;
    } else if (rep->status < 200 || rep->status > 299) {
        char q[64];
        probe_quote(rep->body, q, sizeof q);
        snprintf(why, sizeof why, "status %d: %s", rep->status, q);
        e = why;
    }
    o->deleted(e, o->arg);
    free(o);
}

int am_silence_create(struct am_silencer *s, const struct am_silence_spec *spec,
                      am_silence_created_cb done, void *arg, struct chaos_err *err)
{
    if (spec->n_matchers < 1 || spec->n_matchers > 32)
        return chaos_err_set(err, EINVAL, "silence.matchers: give 1-32 matchers");
    if (spec->ends_unix_ms <= spec->starts_unix_ms)
        return chaos_err_set(err, EINVAL, "silence: it must end after it starts");
    json_t *ms = json_array();
    if (!ms)
        return chaos_err_set(err, ENOMEM, "silence: out of memory");
    for (size_t i = 0; i < spec->n_matchers; i++) {
        json_t *m = matcher_json(spec->matchers[i], "silence.matchers", i, err);
        if (!m || json_array_append_new(ms, m) < 0) {
            json_decref(ms);
            return m ? chaos_err_set(err, ENOMEM, "silence: out of memory") : -EINVAL;
        }
    }
    char from[40], to[40];
    rfc3339(spec->starts_unix_ms, from, sizeof from);
    rfc3339(spec->ends_unix_ms, to, sizeof to);
    json_t *body =
        json_pack("{s:o, s:s, s:s, s:s, s:s}", "matchers", ms, "startsAt", from, "endsAt", to,
                  "createdBy", spec->created_by ? spec->created_by : "chaos", "comment",
                  spec->comment ? spec->comment : "");
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    struct op *o = text ? calloc(1, sizeof *o) : NULL;
    if (!o) {
        free(text);
        return chaos_err_set(err, ENOMEM, "silence: out of memory");
    }
    *o = (struct op){.created = done, .arg = arg};
    int r =
        pcurl_request(s->pc, &s->conn, "POST", "/api/v2/silences", text, on_created, free, o, err);
    free(text);
    if (r < 0)
        free(o);
    return r;
}

int am_silence_delete(struct am_silencer *s, const char *id, am_silence_deleted_cb done, void *arg,
                      struct chaos_err *err)
{
    if (!id || !*id || strspn(id, "0123456789abcdefABCDEF-") != strlen(id) || strlen(id) > 64)
        return chaos_err_set(err, EINVAL, "silence: \"%.64s\" is not a silence id", id ? id : "");
    char path[96];
    snprintf(path, sizeof path, "/api/v2/silence/%s", id);
    struct op *o = calloc(1, sizeof *o);
    if (!o)
        return chaos_err_set(err, ENOMEM, "silence: out of memory");
    *o = (struct op){.deleted = done, .arg = arg};
    int r = pcurl_request(s->pc, &s->conn, "DELETE", path, NULL, on_deleted, free, o, err);
    if (r < 0)
        free(o);
    return r;
}
