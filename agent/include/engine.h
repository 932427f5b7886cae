/* The fault engine: parses fault specs through the registry, applies and
 * reverts faults on an event loop, enforces their durations itself, and
 * journals every lasting fault before touching the system. Used in-process by
 * `chaos run` (the embedded default) and, later, by the chaos-agent daemon. */
#ifndef CHAOS_ENGINE_H
#define CHAOS_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "chaos_err.h"
#include "fault_spec.h"
#include "fault_state.h"
#include "loop.h"

struct engine;
struct engine_fault;

enum engine_event {
    ENGINE_APPLIED,   /* apply succeeded */
    ENGINE_STEPPED,   /* a repeated action ran again (detail says what) */
    ENGINE_STEP_FAILED,
    ENGINE_FINISHED,  /* a non-lasting fault did its last action and its natural
                         duration (every x count) has passed */
    ENGINE_REVERTED,  /* revert succeeded (by request or because the duration ended) */
    ENGINE_FAILED,    /* revert failed: the system may still carry the fault */
    ENGINE_ABORTED,   /* the engine ended the fault early as failed (the timer of
                         its next round could not be armed); a lasting part was
                         reverted and journalled; detail says why */
};

/* Called for every event of a fault, always later from the loop (an event
 * is queued when it happens and delivered on the loop's next turn), never
 * from inside engine_apply or engine_revert: a handler may call back into
 * the engine freely. The fault's state (engine_fault_state) has already
 * moved on when its event arrives; detail is a line for people. */
typedef void (*engine_event_cb)(struct engine_fault *f, enum engine_event ev, const char *detail,
                                void *arg);

/* Opens an engine that journals to journal_path (created, fsynced; its folder
 * is created if missing). extra_protected lists PIDs no fault may touch on top
 * of 1, this process and its parent (n may be 0). */
int engine_new(struct loop *loop, const char *journal_path, const pid_t *extra_protected, size_t n,
               struct engine **out, struct chaos_err *err) __attribute__((warn_unused_result));
/* Frees the engine. Faults still active are NOT reverted (call
 * engine_revert_all first); the journal file is removed only when no fault is
 * left active, so a later recovery still finds them. */
void engine_free(struct engine *e);

/* Applies spec as fault `name`, for the duration it was validated with
 * (fault_spec_parse). A lasting fault is reverted by the engine itself when
 * its duration ends.
 * On failure nothing is left applied, *out is still set (state
 * FAULT_APPLY_FAILED, or FAULT_REVERT_FAILED, below) so the caller can
 * report it, and the error is in err. That includes a
 * timer the fault needs (its revert, end or step timer) that cannot be
 * armed: the kind's revert undoes the apply at once (journalled), and err
 * says "fault 'X': cannot arm its revert timer: ...; reverted" (or that the
 * revert failed too, and the journal keeps the fault for `chaos recover`).
 * No event is emitted for a failed apply. */
int engine_apply(struct engine *e, const char *name, const struct fault_spec *spec,
                 engine_event_cb cb, void *arg, struct engine_fault **out, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Reverts f now (no-op unless it is FAULT_ACTIVE). Repeated actions are
 * stopped. Returns the revert's result; its REVERTED (or FAILED) event
 * follows from the loop. */
int engine_revert(struct engine *e, struct engine_fault *f, struct chaos_err *err);

/* Reverts every active fault; returns the number that failed (their errors
 * are reported through the event callback and engine_fault_error()). */
int engine_revert_all(struct engine *e);

/* Calls call(arg) from the loop once every event queued so far has been
 * delivered (after engine_revert_all: once its REVERTED and FAILED events
 * are out). Returns 0, or -ENOMEM when it cannot be queued. */
int engine_when_drained(struct engine *e, void (*call)(void *arg), void *arg)
    __attribute__((warn_unused_result));

/* Where the journals of state_dir live ("<state_dir>/journal"), and the
 * journal of the run with pid owner in it: the one place that knows. 0, or
 * -ENAMETOOLONG. */
int engine_journal_dir(const char *state_dir, char *buf, size_t size)
    __attribute__((warn_unused_result));
int engine_journal_path(const char *state_dir, pid_t owner, char *buf, size_t size)
    __attribute__((warn_unused_result));

/* Number of faults still active. */
size_t engine_active_count(const struct engine *e);

const char *engine_fault_name(const struct engine_fault *f);
const char *engine_fault_id(const struct engine_fault *f);
enum fault_state engine_fault_state(const struct engine_fault *f);
/* The last error of f, or "" when none. */
const char *engine_fault_error(const struct engine_fault *f);
/* What the fault did, e.g. "paused 2 processes: 812 (demo-worker), 813 (demo-worker)". */
void engine_fault_describe(const struct engine_fault *f, char *buf, size_t size);

/* Crash recovery: reverts every fault that journals under dir say is still
 * applied, for journals whose owner process is gone (or all of them when
 * all is true). log (may be NULL) gets a line for each fault reverted or
 * not, and one line for every journal: what was done with it and why
 * (skipped: its run still runs; or its run is gone, the pid recycled or
 * now a thread of another process, its last record torn). Journals fully
 * recovered are removed; one with a line that is no record, or that cannot
 * be read, is kept and counted as a failure. Returns the number of faults
 * that could not be reverted plus the journals kept unread, or a negative
 * errno when dir cannot be read. A missing dir is not an error. */
int engine_recover_dir(const char *dir, bool all, void (*log)(const char *line, void *arg),
                       void *arg, struct chaos_err *err);

/* Reverts every fault the journal at path says is still applied, whoever
 * owns it, and removes the journal when all were reverted. Returns the number
 * that could not be reverted, or a negative errno when path cannot be read
 * (a missing file is not an error: nothing to do). */
int engine_recover_file(const char *path, void (*log)(const char *line, void *arg), void *arg,
                        struct chaos_err *err);

#endif
