/* The scenario model: reads a scenario file (format v1, docs/scenario-format.md)
 * and validates all of it before anything may act on it.
 *
 * Errors read "<file>: <section>[i] '<name>': <field.path>: <what is wrong>".
 * The item helpers below build "<field.path>: ..." with the jv_* helpers (ctx
 * "" or a sub-object), prefix the item context themselves, and scenario_parse
 * puts the file in front once. probe_parse and fault_spec_parse get the item
 * context and prefix it on their own. */
#include "scenario.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "duration.h"
#include "fault_spec.h"
#include "fleet.h"
#include "jsonv.h"
#include "probe.h"
#include "util.h"

#define NAME_MAX_CHARS 128
#define DESCRIPTION_MAX_CHARS 4096
#define EVERY_MIN_MS 10
#define DEFAULT_MAX_DURATION_MS (30LL * 60 * 1000)
#define DEFAULT_EVERY_MS 1000
#define DEFAULT_STEADY_FOR_MS 5000
#define DEFAULT_AFTER_FOR_MS 10000
#define DEFAULT_ABORT_FOR_MS 0

/* Item contexts hold a section, an index and a name of up to 128 characters
 * (512 bytes of UTF-8). */
#define CTX_SIZE 640

static const char *const top_keys[] = {"version",      "name",         "description",
                                       "max_duration", "steady_state", "faults",
                                       "expect",       "abort_when",   "silences",
                                       "agents",       NULL};
static const char *const fault_keys[] = {"name",   "kind",   "at",
                                         "duration", "target", "params",
                                         "on_round_failure", "agent", NULL};
static const char *const check_keys[] = {"name",   "probe", "every",  "for",
                                         "during", "after", "expect", NULL};
/* Conditions on all samples of a window; latency ones in enum latency_stat order. */
static const char *const latency_keys[LAT__COUNT] = {"p50", "p90", "p95", "p99", "max_latency"};
static const char *const aggregate_keys[] = {"success_ratio", "p50",         "p90",    "p95",
                                             "p99",           "max_latency", "within", NULL};

static const char *section_name(enum check_section sec)
{
    switch (sec) {
    case SECTION_STEADY:
        return "steady_state";
    case SECTION_EXPECT:
        return "expect";
    case SECTION_ABORT:
        return "abort_when";
    }
    return "?";
}

/* What people see for a path: stdin has no name of its own. */
static const char *shown_path(const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return "<stdin>";
    return path;
}

/* ---- small helpers ------------------------------------------------------- */

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* The first control character of s (C0, DEL or C1), or NULL. allow_lines
 * lets newline and tab through (free text). */
static const unsigned char *find_control(const char *s, bool allow_lines)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (allow_lines && (*p == '\n' || *p == '\t'))
            continue;
        if (*p < 0x20 || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            return p;
    }
    return NULL;
}

/* Reads a name (1-128 characters, no control characters: names are printed
 * in event lines and verdicts, and "k\nPASSED: ..." must not forge one).
 * Returns 1 when present, 0 when absent and optional. Errors read
 * "name: ..." (the caller prefixes the item). */
static int get_name(const json_t *obj, bool required, const char **out, struct chaos_err *err)
{
    const char *name = NULL;
    int r = jv_string(obj, "", "name", required, &name, err);
    if (r <= 0)
        return r;
    size_t n = utf8_chars(name);
    if (n < 1 || n > NAME_MAX_CHARS)
        return chaos_err_set(err, EINVAL, "name: must be 1-%d characters, not %zu", NAME_MAX_CHARS,
                             n);
    const unsigned char *c = find_control(name, false);
    if (c)
        return chaos_err_set(err, EINVAL,
                             "name: contains a control character (byte 0x%02x at offset %zu); "
                             "names are printed in logs and verdicts, so they must be plain text",
                             *c, (size_t)(c - (const unsigned char *)name));
    *out = name;
    return 1;
}

/* An optional object field: 1 when present (an object), 0 when absent. */
static int get_object(const json_t *obj, const char *key, bool required, const json_t **out,
                      struct chaos_err *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return chaos_err_set(err, EINVAL, "%s: required field is missing", key);
        return 0;
    }
    if (!json_is_object(v))
        return chaos_err_set(err, EINVAL, "%s: must be an object, not %s", key, jv_type_name(v));
    *out = v;
    return 1;
}

static int positive_duration(const json_t *obj, const char *ctx, const char *key, int64_t *out_ms,
                             struct chaos_err *err)
{
    int r = jv_duration(obj, ctx, key, false, out_ms, err);
    if (r == 1 && *out_ms <= 0) {
        char path[256];
        jv_path(path, sizeof path, ctx, key);
        return chaos_err_set(err, EINVAL, "%s: must be longer than 0s", path);
    }
    return r;
}

/* ---- faults -------------------------------------------------------------- */

int64_t scenario_fault_active_ms(const struct scenario *s, size_t i)
{
    if (i >= s->n_faults)
        return 0;
    const struct scenario_fault *f = &s->faults[i];
    if (f->duration_ms >= 0)
        return f->duration_ms;
    if (f->spec && fault_spec_info(f->spec)->natural_duration_ms > 0)
        return fault_spec_info(f->spec)->natural_duration_ms;
    return 0;
}

int64_t scenario_fault_phase_ms(const struct scenario *s)
{
    int64_t end = 0;
    for (size_t i = 0; i < s->n_faults; i++) {
        int64_t e = s->faults[i].at_ms + scenario_fault_active_ms(s, i);
        if (e > end)
            end = e;
    }
    return end;
}

int scenario_fault_index(const struct scenario *s, const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < s->n_faults; i++)
        if (s->faults[i].name && strcmp(s->faults[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void fault_clear(struct scenario_fault *f)
{
    free(f->agent);
    free(f->agents);
    free(f->name);
    free(f->kind);
    json_decref(f->json);
    fault_spec_free(f->spec);
    memset(f, 0, sizeof *f);
}

/* The fault's own checks; "<field>: ..." errors, prefixed by the caller.
 * Errors of fault_spec_parse come already prefixed: *prefixed says so. */
static int parse_fault_fields(struct scenario *s, const json_t *j, const char *ctx,
                              struct scenario_fault *f, bool *prefixed, struct chaos_err *err)
{
    int r;
    if ((r = jv_only_keys(j, "", fault_keys, err)) < 0)
        return r;
    const char *agent = NULL;
    if ((r = jv_string(j, "", "agent", false, &agent, err)) < 0)
        return r;
    if (agent) {
        struct chaos_err e = {0};
        if (fleet_check_selector(agent, &e) < 0)
            return chaos_err_set(err, EINVAL, "agent: %s", e.msg);
        if (!(f->agent = strdup(agent)))
            return chaos_err_set(err, ENOMEM, "out of memory");
    }

    const char *kind = NULL;
    if ((r = jv_string(j, "", "kind", true, &kind, err)) < 0)
        return r;
    if (!fault_kind_known(kind))
        return chaos_err_set(err, EINVAL, "kind: unknown fault kind '%s' (available: %s)", kind,
                             fault_kinds_list());
    if (!(f->kind = strdup(kind)))
        return chaos_err_set(err, ENOMEM, "out of memory");
    /* Kept as written for backends that hand the fault on (a remote agent). */
    f->json = json_incref((json_t *)j);

    f->at_ms = 0;
    if ((r = jv_duration(j, "", "at", false, &f->at_ms, err)) < 0)
        return r;
    f->duration_ms = -1;
    if ((r = positive_duration(j, "", "duration", &f->duration_ms, err)) < 0)
        return r;

    const json_t *target = NULL, *params = NULL;
    if ((r = get_object(j, "target", true, &target, err)) < 0)
        return r;
    if ((r = get_object(j, "params", true, &params, err)) < 0)
        return r;

    r = fault_spec_parse(kind, target, params, ctx, f->duration_ms, &f->spec, err);
    if (r < 0) {
        *prefixed = true;
        return r;
    }

    const struct fault_info *info = fault_spec_info(f->spec);
    const char *orf = NULL;
    if ((r = jv_string(j, "", "on_round_failure", false, &orf, err)) < 0)
        return r;
    if (orf) {
        if (info->lasting || info->natural_duration_ms <= 0)
            return chaos_err_set(err, EINVAL,
                                 "on_round_failure: only a repeated action (every and count) has "
                                 "rounds");
        if (strcmp(orf, "abort") == 0)
            f->rounds_may_fail = false;
        else if (strcmp(orf, "continue") == 0)
            f->rounds_may_fail = true;
        else
            return chaos_err_set(err, EINVAL,
                                 "on_round_failure: '%s' is not one of abort (the default), "
                                 "continue",
                                 orf);
    }

    int64_t active = f->duration_ms >= 0 ? f->duration_ms : info->natural_duration_ms;
    if (active < 0)
        active = 0;
    if (f->at_ms + active > s->max_duration_ms) {
        char at[32], act[32], end[32], max[32];
        duration_format(f->at_ms, at, sizeof at);
        duration_format(active, act, sizeof act);
        duration_format(f->at_ms + active, end, sizeof end);
        duration_format(s->max_duration_ms, max, sizeof max);
        return chaos_err_set(err, EINVAL,
                             "ends at %s (at %s + active %s), later than max_duration %s; start it "
                             "earlier, shorten it, or raise max_duration",
                             end, at, act, max);
    }
    return 0;
}

static int parse_fault(struct scenario *s, size_t i, const json_t *j, struct chaos_err *err)
{
    struct scenario_fault *f = &s->faults[i];
    char ctx[CTX_SIZE];
    int r;
    snprintf(ctx, sizeof ctx, "faults[%zu]", i);
    if (!json_is_object(j))
        return chaos_err_set(err, EINVAL, "%s: must be an object, not %s", ctx, jv_type_name(j));

    const char *name = NULL;
    if ((r = get_name(j, true, &name, err)) < 0) {
        chaos_err_prefix(err, "%s", ctx);
        return r;
    }
    snprintf(ctx, sizeof ctx, "faults[%zu] '%s'", i, name);
    int dup = scenario_fault_index(s, name);
    if (dup >= 0) {
        chaos_err_set(err, EINVAL, "name: duplicate fault name '%s' (also faults[%d])", name, dup);
        chaos_err_prefix(err, "%s", ctx);
        return -EINVAL;
    }
    if (!(f->name = strdup(name)))
        return chaos_err_set(err, ENOMEM, "out of memory");

    bool prefixed = false;
    r = parse_fault_fields(s, j, ctx, f, &prefixed, err);
    if (r < 0) {
        if (!prefixed)
            chaos_err_prefix(err, "%s", ctx);
        fault_clear(f);
        return r;
    }
    return 0;
}

/* ---- checks -------------------------------------------------------------- */

static void check_clear(struct check *c)
{
    free(c->name);
    probe_free(c->probe);
    memset(c, 0, sizeof *c);
}

/* Where an earlier check already uses name, as "steady_state[0]"; false if none. */
static bool find_check_name(const struct scenario *s, const char *name, char *where, size_t size)
{
    const struct {
        const struct check *items;
        size_t n;
        enum check_section sec;
    } sections[] = {{s->steady, s->n_steady, SECTION_STEADY},
                    {s->expect, s->n_expect, SECTION_EXPECT},
                    {s->abort_when, s->n_abort, SECTION_ABORT}};
    for (size_t k = 0; k < ARRAY_SIZE(sections); k++)
        for (size_t i = 0; i < sections[k].n; i++)
            if (sections[k].items[i].name && strcmp(sections[k].items[i].name, name) == 0) {
                snprintf(where, size, "%s[%zu]", section_name(sections[k].sec), i);
                return true;
            }
    return false;
}

/* A fault reference of an expect check ("during" or "after"): its index. */
static int fault_ref(const struct scenario *s, const char *key, const char *name, int *out,
                     struct chaos_err *err)
{
    int idx = scenario_fault_index(s, name);
    if (idx < 0) {
        char list[400] = "";
        size_t off = 0;
        for (size_t i = 0; i < s->n_faults && off < sizeof list; i++)
            off += (size_t)snprintf(list + off, sizeof list - off, "%s'%s'", i ? ", " : "",
                                    s->faults[i].name);
        return chaos_err_set(err, EINVAL, "%s: no fault is called '%s' (faults: %s)", key, name,
                             list);
    }
    *out = idx;
    return 0;
}

/* The aggregate conditions of the check's expect object. */
static int parse_aggregates(const json_t *expect, enum check_section sec, struct check *c,
                            struct chaos_err *err)
{
    int r;
    if (sec == SECTION_ABORT)
        c->success_ratio = (struct cmp){.set = true, .op = CMP_LT, .value = 1};
    else
        c->success_ratio = (struct cmp){.set = true, .op = CMP_GE, .value = 1};
    if (!expect)
        return 0;

    const char *explicit_agg = NULL;
    const json_t *v = json_object_get(expect, "success_ratio");
    if (v) {
        if (!json_is_string(v))
            return chaos_err_set(err, EINVAL,
                                 "expect.success_ratio: must be a comparison string like \">= "
                                 "0.99\", not %s",
                                 jv_type_name(v));
        if ((r = cmp_parse(json_string_value(v), false, "expect.success_ratio", &c->success_ratio,
                           err)) < 0)
            return r;
        if (c->success_ratio.value < 0 || c->success_ratio.value > 1)
            return chaos_err_set(err, ERANGE,
                                 "expect.success_ratio: %g is out of range: a ratio is 0-1",
                                 c->success_ratio.value);
        explicit_agg = "success_ratio";
    }
    for (int k = 0; k < LAT__COUNT; k++) {
        char path[64];
        snprintf(path, sizeof path, "expect.%s", latency_keys[k]);
        v = json_object_get(expect, latency_keys[k]);
        if (!v)
            continue;
        if (!json_is_string(v))
            return chaos_err_set(err, EINVAL,
                                 "%s: must be a comparison string like \"< 500ms\", not %s", path,
                                 jv_type_name(v));
        if ((r = cmp_parse(json_string_value(v), true, path, &c->latency[k], err)) < 0)
            return r;
        if (!explicit_agg)
            explicit_agg = latency_keys[k];
    }

    if ((r = positive_duration(expect, "expect", "within", &c->within_ms, err)) < 0)
        return r;
    if (r == 1) {
        if (sec == SECTION_ABORT)
            return chaos_err_set(err, EINVAL,
                                 "expect.within: not allowed in abort_when: an abort condition "
                                 "is judged over the last 'for', not eventually");
        if (explicit_agg)
            return chaos_err_set(err, EINVAL,
                                 "expect.within: cannot be combined with %s: with within the check "
                                 "passes at the first successful sample, so aggregate conditions "
                                 "have nothing to judge",
                                 explicit_agg);
    } else {
        c->within_ms = -1;
    }
    return 0;
}

/* Checks the keys of expect against the aggregate keys and the probe's own. */
static int check_expect_keys(const json_t *expect, const struct probe *p, struct chaos_err *err)
{
    const char *allowed[64];
    size_t n = 0;
    for (size_t i = 0; aggregate_keys[i]; i++)
        allowed[n++] = aggregate_keys[i];
    const char *const *pk = probe_expect_keys(p);
    for (size_t i = 0; pk && pk[i] && n < ARRAY_SIZE(allowed) - 1; i++)
        allowed[n++] = pk[i];
    allowed[n] = NULL;
    return jv_only_keys(expect, "expect", allowed, err);
}

/* The window of an expect check with neither during nor after: from the
 * first fault's start to the last one's end. */
static int64_t faults_window_ms(const struct scenario *s)
{
    int64_t first = s->n_faults ? s->faults[0].at_ms : 0;
    for (size_t i = 1; i < s->n_faults; i++)
        if (s->faults[i].at_ms < first)
            first = s->faults[i].at_ms;
    return scenario_fault_phase_ms(s) - first;
}

/* An eventually check is judged when its window ends: a within longer than
 * the window would be cut short and reported as "did not hold within" a
 * time it never had. */
static int check_within_fits(const struct scenario *s, const struct check *c,
                             struct chaos_err *err)
{
    if (c->within_ms < 0)
        return 0;
    int64_t window;
    char what[320];
    if (c->for_ms >= 0) {
        window = c->for_ms;
        snprintf(what, sizeof what, "its for");
    } else if (c->during >= 0) {
        window = scenario_fault_active_ms(s, (size_t)c->during);
        snprintf(what, sizeof what, "fault '%s' is active", s->faults[c->during].name);
    } else {
        window = faults_window_ms(s);
        snprintf(what, sizeof what, "the faults last");
    }
    if (c->within_ms <= window)
        return 0;
    char w[32], l[32];
    duration_format(c->within_ms, w, sizeof w);
    duration_format(window, l, sizeof l);
    return chaos_err_set(err, EINVAL,
                         "expect.within: %s is longer than the window it is judged in (%s %s); "
                         "make within at most %s%s",
                         w, what, l, l, c->for_ms >= 0 ? ", or lengthen for" : "");
}

/* The check's window: for per section, and what for may be combined with. */
static int check_window(const struct scenario *s, enum check_section sec, int has_for,
                        int64_t for_ms, const char *during, const char *after, struct check *c,
                        struct chaos_err *err)
{
    switch (sec) {
    case SECTION_STEADY:
        c->for_ms = has_for ? for_ms : DEFAULT_STEADY_FOR_MS;
        break;
    case SECTION_ABORT:
        c->for_ms = has_for ? for_ms : DEFAULT_ABORT_FOR_MS;
        break;
    case SECTION_EXPECT:
        if (after) {
            c->for_ms = has_for ? for_ms : DEFAULT_AFTER_FOR_MS;
        } else if (has_for) {
            if (during)
                return chaos_err_set(err, EINVAL,
                                     "for: not allowed with during: the check samples while "
                                     "'%s' is active",
                                     during);
            return chaos_err_set(err, EINVAL,
                                 "for: not allowed without during or after: the check samples "
                                 "from the first fault's start to the last fault's end");
        } else if (!during && faults_window_ms(s) <= 0) {
            return chaos_err_set(err, EINVAL,
                                 "during: missing: without during or after the check samples "
                                 "from the first fault's start to the last fault's end, and "
                                 "every fault here is a one-shot action (an instant); use after");
        } else {
            c->for_ms = -1;
        }
        break;
    }
    return 0;
}

/* Lets the probe resolve the faults it names (the workload probe's fault). */
static int bind_probe(const struct scenario *s, struct probe *p, const char *ctx,
                      struct chaos_err *err)
{
    struct probe_fault_ref refs[SCENARIO_MAX_FAULTS];
    size_t n = s->n_faults < SCENARIO_MAX_FAULTS ? s->n_faults : SCENARIO_MAX_FAULTS;
    for (size_t i = 0; i < n; i++)
        refs[i] = (struct probe_fault_ref){s->faults[i].name, s->faults[i].kind, s->faults[i].json};
    return probe_bind_faults(p, refs, n, ctx, err);
}

/* The check's own fields; "<field>: ..." errors, prefixed by the caller.
 * probe_parse errors come prefixed already: *prefixed says so. */
static int parse_check_fields(struct scenario *s, enum check_section sec, const json_t *j,
                              const char *ctx, struct check *c, bool *prefixed,
                              struct chaos_err *err)
{
    int r;
    if (sec != SECTION_EXPECT) {
        for (const char *const *k = (const char *const[]){"during", "after", NULL}; *k; k++)
            if (json_object_get(j, *k))
                return chaos_err_set(
                    err, EINVAL, "%s: only expect checks may use during and after; %s", *k,
                    sec == SECTION_STEADY
                        ? "steady_state checks run before the first fault and after the last"
                        : "abort_when checks run throughout the fault phase");
    }
    if ((r = jv_only_keys(j, "", check_keys, err)) < 0)
        return r;

    const json_t *probe = NULL, *expect = NULL;
    if ((r = get_object(j, "probe", true, &probe, err)) < 0)
        return r;
    if ((r = get_object(j, "expect", false, &expect, err)) < 0)
        return r;

    c->every_ms = DEFAULT_EVERY_MS;
    if ((r = jv_duration(j, "", "every", false, &c->every_ms, err)) < 0)
        return r;
    if (c->every_ms < EVERY_MIN_MS)
        return chaos_err_set(err, EINVAL, "every: must be at least %dms", EVERY_MIN_MS);

    int64_t for_ms = -1;
    int has_for = jv_duration(j, "", "for", false, &for_ms, err);
    if (has_for < 0)
        return has_for;

    const char *during = NULL, *after = NULL;
    if ((r = jv_string(j, "", "during", false, &during, err)) < 0)
        return r;
    if ((r = jv_string(j, "", "after", false, &after, err)) < 0)
        return r;
    if (during && after)
        return chaos_err_set(err, EINVAL,
                             "after: during and after are mutually exclusive; use one of them");
    if (during) {
        if ((r = fault_ref(s, "during", during, &c->during, err)) < 0)
            return r;
        if (scenario_fault_active_ms(s, (size_t)c->during) <= 0)
            return chaos_err_set(err, EINVAL,
                                 "during: fault '%s' is a one-shot action, active only for an "
                                 "instant; use after, or make it last (a duration, or every and "
                                 "count)",
                                 during);
    }
    if (after && (r = fault_ref(s, "after", after, &c->after, err)) < 0)
        return r;

    if ((r = check_window(s, sec, has_for, for_ms, during, after, c, err)) < 0)
        return r;

    r = probe_parse(probe, expect, ctx, &c->probe, err);
    if (r == 0)
        r = bind_probe(s, c->probe, ctx, err);
    if (r < 0) {
        *prefixed = true;
        return r;
    }
    if (expect && (r = check_expect_keys(expect, c->probe, err)) < 0)
        return r;
    if ((r = parse_aggregates(expect, sec, c, err)) < 0)
        return r;
    return check_within_fits(s, c, err);
}

static int parse_check(struct scenario *s, enum check_section sec, size_t i, const json_t *j,
                       struct check *c, struct chaos_err *err)
{
    char ctx[CTX_SIZE];
    int r;
    snprintf(ctx, sizeof ctx, "%s[%zu]", section_name(sec), i);
    *c = (struct check){.section = sec, .for_ms = -1, .within_ms = -1, .during = -1, .after = -1};
    if (!json_is_object(j))
        return chaos_err_set(err, EINVAL, "%s: must be an object, not %s", ctx, jv_type_name(j));

    const char *name = NULL;
    r = get_name(j, sec != SECTION_ABORT, &name, err);
    if (r < 0) {
        chaos_err_prefix(err, "%s", ctx);
        return r;
    }
    if (name) {
        char where[64];
        if (find_check_name(s, name, where, sizeof where)) {
            chaos_err_set(err, EINVAL, "name: duplicate check name '%s' (also %s)", name, where);
            chaos_err_prefix(err, "%s[%zu] '%s'", section_name(sec), i, name);
            return -EINVAL;
        }
        snprintf(ctx, sizeof ctx, "%s[%zu] '%s'", section_name(sec), i, name);
    }
    /* abort_when items may be anonymous: they are called by their place. */
    if (!(c->name = strdup(name ? name : ctx)))
        return chaos_err_set(err, ENOMEM, "out of memory");

    bool prefixed = false;
    r = parse_check_fields(s, sec, j, ctx, c, &prefixed, err);
    if (r < 0) {
        if (!prefixed)
            chaos_err_prefix(err, "%s", ctx);
        check_clear(c);
        return r;
    }
    return 0;
}

static int parse_checks(struct scenario *s, enum check_section sec, const json_t *arr,
                        struct check **items, size_t *n, struct chaos_err *err)
{
    size_t count = arr ? json_array_size(arr) : 0;
    if (count == 0)
        return 0;
    if (!(*items = calloc(count, sizeof **items)))
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        int r = parse_check(s, sec, i, json_array_get(arr, i), &(*items)[i], err);
        if (r < 0)
            return r;
        (*n)++;
    }
    return 0;
}

/* ---- the scenario -------------------------------------------------------- */

static int parse_root(struct scenario *s, const json_t *root, struct chaos_err *err)
{
    int r;
    if ((r = jv_expect_object(root, "", err)) < 0)
        return r;
    if ((r = jv_only_keys(root, "", top_keys, err)) < 0)
        return r;
    if (json_object_get(root, "agents") &&
        (r = fleet_parse(json_object_get(root, "agents"), "agents", &s->fleet, err)) < 0)
        return r;

    long long version = 0;
    if ((r = jv_int(root, "", "version", true, LLONG_MIN, LLONG_MAX, &version, err)) < 0)
        return r;
    if (version != 1)
        return chaos_err_set(err, EINVAL,
                             "version: %lld is not supported; this version of chaos reads format "
                             "version 1",
                             version);

    const char *name = NULL, *desc = "";
    if ((r = get_name(root, true, &name, err)) < 0)
        return r;
    if ((r = jv_string(root, "", "description", false, &desc, err)) < 0)
        return r;
    if (utf8_chars(desc) > DESCRIPTION_MAX_CHARS)
        return chaos_err_set(err, EINVAL, "description: %zu characters, more than the %d allowed",
                             utf8_chars(desc), DESCRIPTION_MAX_CHARS);
    const unsigned char *ctl = find_control(desc, true);
    if (ctl)
        return chaos_err_set(err, EINVAL,
                             "description: contains a control character (byte 0x%02x at offset "
                             "%zu); only newline and tab are allowed",
                             *ctl, (size_t)(ctl - (const unsigned char *)desc));
    if (!(s->name = strdup(name)) || !(s->description = strdup(desc)))
        return chaos_err_set(err, ENOMEM, "out of memory");

    s->max_duration_ms = DEFAULT_MAX_DURATION_MS;
    if ((r = positive_duration(root, "", "max_duration", &s->max_duration_ms, err)) < 0)
        return r;

    const json_t *faults = NULL, *steady = NULL, *expect = NULL, *abort_when = NULL;
    if ((r = jv_array(root, "", "faults", true, 1, SCENARIO_MAX_FAULTS, &faults, err)) < 0)
        return r;
    if ((r = jv_array(root, "", "steady_state", false, 0, SCENARIO_MAX_CHECKS, &steady, err)) < 0)
        return r;
    if ((r = jv_array(root, "", "expect", false, 0, SCENARIO_MAX_CHECKS, &expect, err)) < 0)
        return r;
    if ((r = jv_array(root, "", "abort_when", false, 0, SCENARIO_MAX_CHECKS, &abort_when, err)) < 0)
        return r;

    /* Faults first: checks refer to them by name. */
    size_t nf = json_array_size(faults);
    if (!(s->faults = calloc(nf, sizeof *s->faults)))
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < nf; i++) {
        if ((r = parse_fault(s, i, json_array_get(faults, i), err)) < 0)
            return r;
        s->n_faults++;
    }
    if ((r = parse_checks(s, SECTION_STEADY, steady, &s->steady, &s->n_steady, err)) < 0)
        return r;
    if ((r = parse_checks(s, SECTION_EXPECT, expect, &s->expect, &s->n_expect, err)) < 0)
        return r;
    if ((r = parse_checks(s, SECTION_ABORT, abort_when, &s->abort_when, &s->n_abort, err)) < 0)
        return r;
    if ((r = scenario_parse_silences(s, root, err)) < 0)
        return r;
    /* With agents of its own, every fault's agent must be one of them now;
     * without, an --inventory decides at run time. */
    return s->fleet.n ? scenario_bind_fleet(s, NULL, err) : 0;
}

int scenario_parse(const json_t *root, const char *path, struct scenario **out,
                   struct chaos_err *err)
{
    *out = NULL;
    struct scenario *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path ? path : "-"))) {
        free(s);
        return chaos_err_set(err, ENOMEM, "%s: out of memory", shown_path(path));
    }
    int r = parse_root(s, root, err);
    if (r < 0) {
        scenario_free(s);
        chaos_err_prefix(err, "%s", shown_path(path));
        return r;
    }
    *out = s;
    return 0;
}

static void checks_free(struct check *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_clear(&items[i]);
    free(items);
}

void scenario_free(struct scenario *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_faults; i++)
        fault_clear(&s->faults[i]);
    free(s->faults);
    checks_free(s->steady, s->n_steady);
    checks_free(s->expect, s->n_expect);
    checks_free(s->abort_when, s->n_abort);
    scenario_silences_free(s);
    fleet_clear(&s->fleet);
    free(s->path);
    free(s->name);
    free(s->description);
    free(s);
}
