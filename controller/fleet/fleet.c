/* Inventory parsing and agent selection (fleet.h). */
#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonv.h"

#define FLEET_NAME_MAX 128
#define FLEET_MAX_LABELS 32

static bool label_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.' || c == '/'));
}

static bool valid_label_key(const char *k, size_t len)
{
    if (!len || len > 63)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!label_char(k[i], i == 0))
            return false;
    return true;
}

static bool valid_name(const char *n)
{
    size_t len = strlen(n);
    if (!len || len > FLEET_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!label_char(n[i], false) && !(n[i] >= '0' && n[i] <= '9'))
            return false;
    return true;
}

static int parse_labels(const json_t *obj, const char *ctx, json_t **out, struct chaos_err *err)
{
    const json_t *l = json_object_get(obj, "labels");
    if (!l) {
        *out = json_object();
        return *out ? 0 : chaos_err_set(err, ENOMEM, "out of memory");
    }
    if (!json_is_object(l))
        return chaos_err_set(err, EINVAL, "%s.labels: must be an object of strings, not %s", ctx,
                             jv_type_name(l));
    if (json_object_size(l) > FLEET_MAX_LABELS)
        return chaos_err_set(err, EINVAL, "%s.labels: at most %d labels", ctx, FLEET_MAX_LABELS);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)l, k, v) {
        if (!valid_label_key(k, strlen(k)))
            return chaos_err_set(err, EINVAL,
                                 "%s.labels: \"%.64s\" is not a label name (letters, digits, "
                                 "'_', '-', '.', '/'; a letter or '_' first; at most 63)",
                                 ctx, k);
        if (!json_is_string(v) || strlen(json_string_value(v)) > 256 ||
            strpbrk(json_string_value(v), ",="))
            return chaos_err_set(err, EINVAL,
                                 "%s.labels.%s: must be a string of at most 256 characters "
                                 "without ',' or '='",
                                 ctx, k);
    }
    *out = json_incref((json_t *)l);
    return 0;
}

static int parse_agent(const json_t *obj, const char *ctx, struct fleet_agent *a,
                       struct chaos_err *err)
{
    static const char *const keys[] = {"name", "url", "timeout", "bearer_token_env",
                                       "bearer_token_file", "tls", "labels", NULL};
    int r;
    if ((r = jv_expect_object(obj, ctx, err)) < 0 || (r = jv_only_keys(obj, ctx, keys, err)) < 0)
        return r;
    const char *name;
    if ((r = jv_string(obj, ctx, "name", true, &name, err)) < 0)
        return r;
    if (!valid_name(name))
        return chaos_err_set(err, EINVAL,
                             "%s.name: \"%.64s\" must be 1-%d letters, digits, '_', '-', '.' or "
                             "'/' (a selector tells names from labels by '=')",
                             ctx, name, FLEET_NAME_MAX);
    if (!(a->name = strdup(name)))
        return chaos_err_set(err, ENOMEM, "out of memory");
    if (!json_object_get(obj, "bearer_token_env") && !json_object_get(obj, "bearer_token_file"))
        return chaos_err_set(err, EINVAL,
                             "%s: give bearer_token_file or bearer_token_env: every agent "
                             "request carries its token",
                             ctx);
    if ((r = pconn_parse(obj, ctx, &a->conn, err)) < 0)
        return r;
    return parse_labels(obj, ctx, &a->labels, err);
}

int fleet_parse(const json_t *arr, const char *ctx, struct fleet *out, struct chaos_err *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_array(arr))
        return chaos_err_set(err, EINVAL, "%s: must be an array of agents, not %s", ctx,
                             jv_type_name(arr));
    size_t n = json_array_size(arr);
    if (!n || n > FLEET_MAX_AGENTS)
        return chaos_err_set(err, EINVAL, "%s: give 1-%d agents", ctx, FLEET_MAX_AGENTS);
    if (!(out->agents = calloc(n, sizeof *out->agents)))
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char actx[160];
        snprintf(actx, sizeof actx, "%s[%zu]", ctx, i);
        out->n++; /* counted first: fleet_clear frees a half-parsed one */
        int r = parse_agent(json_array_get(arr, i), actx, &out->agents[i], err);
        for (size_t k = 0; r == 0 && k < i; k++)
            if (strcmp(out->agents[k].name, out->agents[i].name) == 0)
                r = chaos_err_set(err, EINVAL, "%s.name: '%s' is also %s[%zu]'s name", actx,
                                  out->agents[i].name, ctx, k);
        if (r < 0) {
            fleet_clear(out);
            return r;
        }
    }
    return 0;
}

int fleet_load_file(const char *path, struct fleet *out, struct chaos_err *err)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return chaos_err_set(err, EINVAL, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    static const char *const keys[] = {"agents", NULL};
    char ctx[4200];
    snprintf(ctx, sizeof ctx, "%s: agents", path);
    int r = jv_expect_object(root, path, err);
    if (r == 0)
        r = jv_only_keys(root, path, keys, err);
    if (r == 0 && !json_object_get(root, "agents"))
        r = chaos_err_set(err, EINVAL, "%s: agents: required: [{\"name\", \"url\", ...}]", path);
    if (r == 0)
        r = fleet_parse(json_object_get(root, "agents"), ctx, out, err);
    json_decref(root);
    return r;
}

void fleet_clear(struct fleet *f)
{
    for (size_t i = 0; f->agents && i < f->n; i++) {
        free(f->agents[i].name);
        json_decref(f->agents[i].labels);
        pconn_clear(&f->agents[i].conn);
    }
    free(f->agents);
    memset(f, 0, sizeof *f);
}

/* Whether a matches every "key=value" of the selector sel. */
static bool matches(const struct fleet_agent *a, const char *sel)
{
    const char *p = sel;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        const char *v = eq ? json_string_value(json_object_getn(a->labels, p, (size_t)(eq - p)))
                           : NULL;
        if (!v || strlen(v) != len - (size_t)(eq - p) - 1 || memcmp(v, eq + 1, strlen(v)) != 0)
            return false;
        p += len;
        if (*p == ',')
            p++;
    }
    return true;
}

int fleet_check_selector(const char *sel, struct chaos_err *err)
{
    if (!strchr(sel, '=')) {
        if (!valid_name(sel))
            return chaos_err_set(err, EINVAL,
                                 "\"%.64s\" is neither an agent name nor a label selector "
                                 "(\"role=db\", \"role=db,zone=a\")",
                                 sel);
        return 0;
    }
    const char *p = sel;
    while (1) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (!eq || !valid_label_key(p, (size_t)(eq - p)) || memchr(eq + 1, '=', len - (size_t)(eq - p) - 1))
            return chaos_err_set(err, EINVAL,
                                 "\"%.64s\" is not a label selector: write label=value, and "
                                 "several joined by ',' (\"role=db,zone=a\")",
                                 sel);
        p += len;
        if (!*p)
            return 0;
        p++;
    }
}

int fleet_select(const struct fleet *f, const char *sel, const struct fleet_agent ***out, size_t *n,
                 struct chaos_err *err)
{
    int r = fleet_check_selector(sel, err);
    if (r < 0)
        return r;
    const struct fleet_agent **v = calloc(f->n ? f->n : 1, sizeof *v);
    if (!v)
        return chaos_err_set(err, ENOMEM, "out of memory");
    size_t k = 0;
    bool by_name = !strchr(sel, '=');
    for (size_t i = 0; i < f->n; i++)
        if (by_name ? strcmp(f->agents[i].name, sel) == 0 : matches(&f->agents[i], sel))
            v[k++] = &f->agents[i];
    if (!k) {
        free(v);
        return chaos_err_set(err, ENOENT, "%s \"%.64s\" matches no agent of the inventory (%zu agent%s)",
                             by_name ? "agent" : "selector", sel, f->n, f->n == 1 ? "" : "s");
    }
    *out = v;
    *n = k;
    return 0;
}
