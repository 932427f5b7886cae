/* The run's Alertmanager silences (the scenario's "silences"): created
 * after the steady state held and before the first fault, removed when every
 * fault is reverted - at the end, on abort, on SIGINT/SIGTERM - and by
 * `chaos recover` after a run that died. Each carries the run's id in its
 * comment and an end time past the run's watchdog, so a silence outlives a
 * dead run by minutes at most even if nobody recovers it.
 *
 * A journal under <state_dir>/silences/<run id>.json names the silences
 * created so far and the process that created them; it is written (tmp +
 * fsync + rename) after each creation and removed when every silence is. */
#ifndef CHAOS_RUN_SILENCES_H
#define CHAOS_RUN_SILENCES_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"
#include "loop.h"
#include "scenario.h"

struct run_silences;

/* One Alertmanager client per silence of s; nothing is sent yet. Returns 0
 * with *out set (also for a scenario without silences), or a negative errno
 * with err naming the silence. */
int run_silences_new(struct loop *loop, const struct scenario *s, const char *state_dir,
                     const char *run_id, struct run_silences **out, struct chaos_err *err)
    __attribute__((warn_unused_result));
void run_silences_free(struct run_silences *rs);

/* error is NULL when every silence was created, else says which failed and why. */
typedef void (*run_silences_created_cb)(const char *error, void *arg);

/* Sends every creation, each silence ending at ends_unix_ms; done is called
 * once from the loop when all have answered. Returns 0, or a negative errno
 * with err set when not one could be sent (done is not called then). */
int run_silences_create(struct run_silences *rs, int64_t ends_unix_ms,
                        run_silences_created_cb done, void *arg, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Expires every silence created (and any whose creation is still in flight,
 * when it answers). Returns the number of requests in flight: done is called
 * from the loop when they have all answered, and not at all when 0. */
size_t run_silences_remove(struct run_silences *rs, void (*done)(void *arg), void *arg);

/* How many silences were created and could not be removed (after remove). */
size_t run_silences_left(const struct run_silences *rs);

/* [{"name","id","matchers","created","removed","error"}] for the report. */
json_t *run_silences_json(const struct run_silences *rs);

/* Expires the silences of every journal whose run is gone (all: of live
 * runs too), on a loop of its own; log gets one line per silence. Returns
 * the number that could not be expired (their journals are kept), or a
 * negative errno with err set when the folder cannot be read. */
int run_silences_recover(const char *state_dir, bool all, void (*log)(const char *line, void *arg),
                         void *arg, struct chaos_err *err) __attribute__((warn_unused_result));

#endif
