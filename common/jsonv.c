#include "jsonv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "duration.h"

void jv_path(char *buf, size_t size, const char *ctx, const char *key)
{
    int n = ctx && *ctx ? snprintf(buf, size, "%s.%s", ctx, key) : snprintf(buf, size, "%s", key);
    if (n >= 0 && (size_t)n >= size)
        chaos_utf8_trim(buf);
}

const char *jv_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

int jv_expect_object(const json_t *j, const char *ctx, struct chaos_err *err)
{
    if (!json_is_object(j))
        return chaos_err_set(err, EINVAL, "%s: must be an object, not %s",
                             ctx && *ctx ? ctx : "scenario", j ? jv_type_name(j) : "missing");
    return 0;
}

/* Levenshtein distance, bounded to short keys: used only for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(size_t) * (lb + 1));
    }
    return prev[lb];
}

int jv_only_keys(const json_t *obj, const char *ctx, const char *const allowed[],
                 struct chaos_err *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                known = true;
        if (known)
            continue;
        char list[384] = "", path[256];
        const char *best = NULL;
        size_t best_d = 3;
        size_t off = 0;
        for (size_t i = 0; allowed[i]; i++) {
            off += (size_t)snprintf(list + off, off < sizeof list ? sizeof list - off : 0, "%s%s",
                                    i ? ", " : "", allowed[i]);
            size_t d = edit_distance(key, allowed[i]);
            if (d < best_d) {
                best_d = d;
                best = allowed[i];
            }
        }
        jv_path(path, sizeof path, ctx, key);
        if (best)
            return chaos_err_set(err, EINVAL, "%s: unknown field; did you mean '%s'? (known: %s)",
                                 path, best, list);
        return chaos_err_set(err, EINVAL, "%s: unknown field (known: %s)", path, list);
    }
    return 0;
}

static int get_field(const json_t *obj, const char *ctx, const char *key, bool required,
                     json_t **out, struct chaos_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (!required)
            return 0;
        char path[256];
        jv_path(path, sizeof path, ctx, key);
        return chaos_err_set(err, EINVAL, "%s: required field is missing", path);
    }
    *out = v;
    return 1;
}

#define TYPE_ERROR(what)                                                                     \
    do {                                                                                     \
        char path_[256];                                                                     \
        jv_path(path_, sizeof path_, ctx, key);                                              \
        return chaos_err_set(err, EINVAL, "%s: must be %s, not %s", path_, what,             \
                             jv_type_name(v));                                               \
    } while (0)

int jv_string(const json_t *obj, const char *ctx, const char *key, bool required,
              const char **out, struct chaos_err *err)
{
    json_t *v = NULL;
    int r = get_field(obj, ctx, key, required, &v, err);
    if (r <= 0)
        return r;
    if (!json_is_string(v))
        TYPE_ERROR("a string");
    *out = json_string_value(v);
    return 1;
}

static int duration_field(const json_t *obj, const char *ctx, const char *key, bool required,
                          bool micro, int64_t *out, struct chaos_err *err)
{
    json_t *v = NULL;
    int r = get_field(obj, ctx, key, required, &v, err);
    if (r <= 0)
        return r;
    if (!json_is_string(v))
        TYPE_ERROR("a duration string like \"500ms\" or \"2s\"");
    r = micro ? duration_parse_us(json_string_value(v), out, err)
              : duration_parse(json_string_value(v), out, err);
    if (r < 0) {
        char path[256];
        jv_path(path, sizeof path, ctx, key);
        chaos_err_prefix(err, "%s", path);
        return r;
    }
    return 1;
}

int jv_duration(const json_t *obj, const char *ctx, const char *key, bool required,
                int64_t *out_ms, struct chaos_err *err)
{
    return duration_field(obj, ctx, key, required, false, out_ms, err);
}

int jv_duration_us(const json_t *obj, const char *ctx, const char *key, bool required,
                   int64_t *out_us, struct chaos_err *err)
{
    return duration_field(obj, ctx, key, required, true, out_us, err);
}

int jv_int(const json_t *obj, const char *ctx, const char *key, bool required, long long min,
           long long max, long long *out, struct chaos_err *err)
{
    json_t *v = NULL;
    int r = get_field(obj, ctx, key, required, &v, err);
    if (r <= 0)
        return r;
    if (!json_is_integer(v))
        TYPE_ERROR("an integer");
    long long n = json_integer_value(v);
    if (n < min || n > max) {
        char path[256];
        jv_path(path, sizeof path, ctx, key);
        return chaos_err_set(err, ERANGE, "%s: %lld is out of range (%lld-%lld)", path, n, min, max);
    }
    *out = n;
    return 1;
}

int jv_number(const json_t *obj, const char *ctx, const char *key, bool required, double min,
              double max, double *out, struct chaos_err *err)
{
    json_t *v = NULL;
    int r = get_field(obj, ctx, key, required, &v, err);
    if (r <= 0)
        return r;
    if (!json_is_number(v))
        TYPE_ERROR("a number");
    double n = json_number_value(v);
    if (!isfinite(n) || n < min || n > max) {
        char path[256];
        jv_path(path, sizeof path, ctx, key);
        return chaos_err_set(err, ERANGE, "%s: %g is out of range (%g-%g)", path, n, min, max);
    }
    *out = n;
    return 1;
}

int jv_bool(const json_t *obj, const char *ctx, const char *key, bool required, bool *out,
            struct chaos_err *err)
{
    json_t *v = NULL;
    int r = get_field(obj, ctx, key, required, &v, err);
    if (r <= 0)
        return r;
    if (!json_is_boolean(v))
        TYPE_ERROR("true or false");
    *out = json_is_true(v);
    return 1;
}

int jv_array(const json_t *obj, const char *ctx, const char *key, bool required, size_t min,
             size_t max, const json_t **out, struct chaos_err *err)
{
    json_t *v = NULL;
    int r = get_field(obj, ctx, key, required, &v, err);
    if (r <= 0)
        return r;
    if (!json_is_array(v))
        TYPE_ERROR("an array");
    size_t n = json_array_size(v);
    if (n < min || n > max) {
        char path[256];
        jv_path(path, sizeof path, ctx, key);
        if (n < min && min == 1)
            return chaos_err_set(err, EINVAL, "%s: must not be empty", path);
        return chaos_err_set(err, EINVAL, "%s: has %zu elements; allowed %zu-%zu", path, n, min, max);
    }
    *out = v;
    return 1;
}
