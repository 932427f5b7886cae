/* The scenario's "silences": Alertmanager silences a game day creates for
 * the run, so the alerts it expects page nobody (the runner creates and
 * removes them: controller/run/run_silences.c). Parsed and checked here with
 * the rest of the scenario, before anything is touched. */
#include "scenario.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "am_silence.h"
#include "jsonv.h"

#define SCENARIO_MAX_SILENCES 8
#define SILENCE_MAX_MATCHERS 32

static int parse_matchers(struct scenario_silence *sl, const json_t *obj, const char *ctx,
                          struct chaos_err *err)
{
    const json_t *arr = NULL;
    int r = jv_array(obj, ctx, "matchers", true, 1, SILENCE_MAX_MATCHERS, &arr, err);
    if (r < 0)
        return r;
    char mctx[64];
    snprintf(mctx, sizeof mctx, "%s.matchers", ctx);
    size_t n = json_array_size(arr);
    if (!(sl->matchers = calloc(n, sizeof *sl->matchers)))
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(arr, i);
        if (!json_is_string(m))
            return chaos_err_set(err, EINVAL, "%s[%zu]: must be a string, not %s", mctx, i,
                                 jv_type_name(m));
        if ((r = am_silence_check_matcher(json_string_value(m), mctx, i, err)) < 0)
            return r;
        if (!(sl->matchers[i] = strdup(json_string_value(m))))
            return chaos_err_set(err, ENOMEM, "out of memory");
        sl->n_matchers++;
    }
    return 0;
}

static int parse_silence(struct scenario_silence *sl, size_t i, const json_t *obj,
                         struct chaos_err *err)
{
    static const char *const keys[] = {"name", "alertmanager", "matchers", NULL};
    char ctx[32];
    snprintf(ctx, sizeof ctx, "silences[%zu]", i);
    int r;
    if ((r = jv_expect_object(obj, ctx, err)) < 0 || (r = jv_only_keys(obj, ctx, keys, err)) < 0)
        return r;
    const char *name = NULL;
    if ((r = jv_string(obj, ctx, "name", false, &name, err)) < 0)
        return r;
    if (name && (!*name || strlen(name) > 128))
        return chaos_err_set(err, EINVAL, "%s.name: must be 1-128 bytes", ctx);
    if (!(sl->name = strdup(name ? name : ctx)))
        return chaos_err_set(err, ENOMEM, "out of memory");
    const json_t *am = json_object_get(obj, "alertmanager");
    char actx[48];
    snprintf(actx, sizeof actx, "%s.alertmanager", ctx);
    if (!am)
        return chaos_err_set(err, EINVAL,
                             "%s: required: {\"url\": \"http://alertmanager:9093\"} and the "
                             "probe's connection options",
                             actx);
    if ((r = am_silence_check_conn(am, actx, err)) < 0)
        return r;
    sl->alertmanager = json_incref((json_t *)am);
    return parse_matchers(sl, obj, ctx, err);
}

int scenario_parse_silences(struct scenario *s, const json_t *root, struct chaos_err *err)
{
    const json_t *arr = NULL;
    int r = jv_array(root, "", "silences", false, 0, SCENARIO_MAX_SILENCES, &arr, err);
    if (r < 0 || !arr)
        return r < 0 ? r : 0;
    size_t n = json_array_size(arr);
    if (!n)
        return 0;
    if (!(s->silences = calloc(n, sizeof *s->silences)))
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        s->n_silences++; /* counted first: scenario_free frees a half-parsed one */
        if ((r = parse_silence(&s->silences[i], i, json_array_get(arr, i), err)) < 0)
            return r;
    }
    return 0;
}

void scenario_silences_free(struct scenario *s)
{
    for (size_t i = 0; i < s->n_silences; i++) {
        struct scenario_silence *sl = &s->silences[i];
        free(sl->name);
        for (size_t k = 0; k < sl->n_matchers; k++)
            free(sl->matchers[k]);
        free(sl->matchers);
        json_decref(sl->alertmanager);
    }
    free(s->silences);
}
