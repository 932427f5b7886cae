/* What the network unit tests share: JSON written with ' for ", and the
 * target and params parsers asserted to succeed or to fail with a message. */
#ifndef CHAOS_TEST_NET_FIXTURES_H
#define CHAOS_TEST_NET_FIXTURES_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "net_scope.h"
#include "netem_params.h"

#define TCTX "faults[0] 'x': target"
#define PCTX "faults[0] 'x': params"
/* A tc handle "maj:min". */
#define HANDLE(maj, min) ((uint32_t)(maj) << 16 | (uint32_t)(min))


/* JSON written with ' for " (none of these documents holds an apostrophe). */
static inline json_t *jl(const char *text)
{
    char *s = strdup(text);
    cr_assert_not_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t jerr;
    json_t *j = json_loads(s, 0, &jerr);
    cr_assert_not_null(j, "test JSON does not parse: %s: %s", s, jerr.text);
    free(s);
    return j;
}

static inline void target_ok(const char *text, struct net_target *t)
{
    json_t *j = jl(text);
    struct chaos_err err = {0};
    int r = net_target_parse(j, TCTX, t, &err);
    json_decref(j);
    cr_assert_eq(r, 0, "%s: expected to parse, got: %s", text, err.msg);
}

/* The error must begin with want: the full field path, then the reason. */
static inline void target_fails(const char *text, const char *want)
{
    json_t *j = jl(text);
    struct chaos_err err = {0};
    struct net_target t;
    int r = net_target_parse(j, TCTX, &t, &err);
    net_target_clear(&t);
    json_decref(j);
    cr_expect_lt(r, 0, "%s: expected an error", text);
    cr_expect_eq(strncmp(err.msg, want, strlen(want)), 0, "%s:\n  got:  %s\n  want: %s...", text,
                 err.msg, want);
}

static inline void params_ok(const char *text, struct netem_params *p)
{
    json_t *j = jl(text);
    struct chaos_err err = {0};
    int r = netem_params_parse(j, PCTX, p, &err);
    json_decref(j);
    cr_assert_eq(r, 0, "%s: expected to parse, got: %s", text, err.msg);
}

static inline void params_fail(const char *text, const char *want)
{
    json_t *j = jl(text);
    struct chaos_err err = {0};
    struct netem_params p;
    int r = netem_params_parse(j, PCTX, &p, &err);
    json_decref(j);
    cr_expect_lt(r, 0, "%s: expected an error", text);
    cr_expect_eq(strncmp(err.msg, want, strlen(want)), 0, "%s:\n  got:  %s\n  want: %s...", text,
                 err.msg, want);
}

#endif
