/* What every fault kind implements: one const struct fault_ops per kind
 * (fault_process.c exports fault_process_ops, and so on); fault_registry.c
 * lists them. Everything else in a kind's file is static. */
#ifndef CHAOS_FAULT_H
#define CHAOS_FAULT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "chaos_err.h"
#include "fault_spec.h"
#include "loop.h"

struct journal;

#define FAULT_MAX_PROTECTED 8

/* What the engine lends a fault kind while it applies, steps or reverts. */
struct fault_env {
    /* PIDs no fault may touch: 1, the engine's own process, its parent, its guard. */
    pid_t protected_pids[FAULT_MAX_PROTECTED];
    size_t n_protected;
    struct journal *journal;
    const char *fault_id;   /* unique id of this fault instance, e.g. "f1-pause-workers" */
    const char *kind;
    int64_t deadline_ms;    /* CLOCK_REALTIME ms when the engine will revert; 0 if not lasting */
    /* The engine's loop, for kinds that watch fds of their own (a seccomp
     * listener); timers for durations and rounds stay the engine's. */
    struct loop *loop;
};

/* Writes the undo record for env->fault_id to the journal and fsyncs it. A
 * lasting fault must call this before it changes anything; undo must hold all
 * that recover() needs after a crash. Steals nothing (undo stays the caller's).
 * It may be called again to replace the record (e.g. more targets were hit). */
int fault_journal_undo(const struct fault_env *env, const json_t *undo, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* "<ctx>: <field>" (or just field when ctx is empty) into buf: the prefix a
 * kind gives the errors of its target and params objects. */
void fault_field_ctx(char *buf, size_t size, const char *ctx, const char *field);

/* Returns true if pid is one of env's protected PIDs. */
bool fault_env_is_protected(const struct fault_env *env, pid_t pid);

struct fault_ops {
    const char *kind;

    /* Validates the kind-specific "target" and "params" objects of one fault
     * (either may be NULL when absent). ctx prefixes error messages, e.g.
     * "faults[1] 'kill worker'"; errors then read "<ctx>: target.pick: ...".
     * Checks everything that can be checked without touching the system. On
     * success sets *spec (freed with free_spec) and *info. The fault's
     * duration is not the kind's business: the engine checks it against
     * info->lasting (fault_spec_parse), once for every kind. */
    int (*parse)(const json_t *target, const json_t *params, const char *ctx, void **spec,
                 struct fault_info *info, struct chaos_err *err);
    void (*free_spec)(void *spec);

    /* Applies the fault. A lasting fault journals its undo record before it
     * touches anything. On failure nothing is left applied. May set
     * *next_step_ms (> 0, relative) to be stepped again later. */
    int (*apply)(const struct fault_env *env, const void *spec, void **state,
                 int64_t *next_step_ms, struct chaos_err *err);
    /* Called when next_step_ms has passed (repeated actions). NULL if unused. */
    int (*step)(const struct fault_env *env, void *state, int64_t *next_step_ms,
                struct chaos_err *err);
    /* Undoes apply. NULL for kinds that are never lasting. After success the
     * engine journals the revert. Must succeed if the target has gone away. */
    int (*revert)(const struct fault_env *env, void *state, struct chaos_err *err);
    /* Undoes a journalled fault after a crash, from its undo record alone.
     * Idempotent; must not touch anything that is no longer the same object
     * (a recycled PID). NULL for kinds that are never lasting. */
    int (*recover)(const json_t *undo, struct chaos_err *err);
    /* One line for people, e.g. "paused 2 processes: 812 (worker), 813 (worker)". */
    void (*describe)(const void *state, char *buf, size_t size);
    /* What apply would do, from the spec alone, for --dry-run: e.g. "pause
     * processes: name 'demo-worker', pick 1". Touches nothing. */
    void (*plan)(const void *spec, char *buf, size_t size);
    /* What the target matches now, for --dry-run (reads, never changes, the
     * system). NULL when the kind has nothing to say. */
    void (*preview)(const void *spec, char *buf, size_t size);
    void (*free_state)(void *state);
};

/* The registry: the ops of kind, or NULL when unknown. */
const struct fault_ops *fault_ops_find(const char *kind);

/* What fault_spec_parse hands out (opaque outside the engine). */
struct fault_spec {
    const struct fault_ops *ops;
    void *spec;
    struct fault_info info;
    int64_t duration_ms; /* -1: none (a one-off action) */
};

#endif
