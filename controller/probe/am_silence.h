/* Alertmanager silences for game days: create one for the run (so the
 * alerts a scenario expects page nobody) and expire it at the end, on
 * abort and by recovery. Asynchronous on the run's loop, like the probes.
 * The runner owns when (controller/run/run_silences.c). */
#ifndef CHAOS_AM_SILENCE_H
#define CHAOS_AM_SILENCE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"
#include "loop.h"

struct am_silencer;

/* conn is an object with the connection options of the alertmanager probe
 * ({"url": "http://127.0.0.1:9093", "basic_auth": ..., "tls": ...});
 * ctx names it in errors ("silence"). Returns 0 or a negative errno with
 * err naming the field. */
int am_silencer_new(struct loop *loop, const json_t *conn, const char *ctx,
                    struct am_silencer **out, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Drops requests in flight; their callbacks are not called. */
void am_silencer_free(struct am_silencer *s);

/* Checks a matcher ("alertname=CheckoutSlow") the way am_silence_create
 * will; err names it as ctx[i]. Returns 0 or -EINVAL. */
int am_silence_check_matcher(const char *m, const char *ctx, size_t i, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Checks connection options the way am_silencer_new will, touching
 * nothing (a secret's file or variable is read and dropped). */
int am_silence_check_conn(const json_t *conn, const char *ctx, struct chaos_err *err)
    __attribute__((warn_unused_result));

struct am_silence_spec {
    const char *const *matchers; /* "alertname=CheckoutSlow", "severity=~page|ticket" */
    size_t n_matchers;           /* 1-32 */
    int64_t starts_unix_ms;
    int64_t ends_unix_ms;   /* the silence expires by itself then, even if we die */
    const char *created_by; /* e.g. "chaos" */
    const char *comment;    /* carries the run id, so recovery can find it */
};

/* id is the new silence's id (NULL on failure); error says why (NULL on success). */
typedef void (*am_silence_created_cb)(const char *id, const char *error, void *arg);
typedef void (*am_silence_deleted_cb)(const char *error, void *arg);

/* POST /api/v2/silences. Matchers are checked first (err names the bad
 * one); done is called once, later, from the loop. */
int am_silence_create(struct am_silencer *s, const struct am_silence_spec *spec,
                      am_silence_created_cb done, void *arg, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* DELETE /api/v2/silence/{id}: the silence expires now. Deleting a silence
 * that already expired succeeds (Alertmanager answers 200). */
int am_silence_delete(struct am_silencer *s, const char *id, am_silence_deleted_cb done, void *arg,
                      struct chaos_err *err) __attribute__((warn_unused_result));

#endif
