/* Which processes a fault hits: parses a "target" object that names
 * processes (exactly one of pid, name, cmdline, pidfile, cgroup,
 * systemd_unit; optional pick and seed), finds them in /proc, picks some of
 * them reproducibly, and hands out pidfds proven to refer to the process
 * that was picked, so a recycled PID is never signalled.
 *
 * Used by the process kind and meant for any kind that targets processes. */
#ifndef CHAOS_PROC_TARGET_H
#define CHAOS_PROC_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include "chaos_err.h"
#include "fault.h"

/* The kernel's PID_MAX_LIMIT on 64-bit: no PID is larger. */
#define PROC_TARGET_PID_MAX 4194304

struct proc_target;

/* One process as it was when resolved. pid and start (field 22 of
 * /proc/PID/stat: clock ticks after boot) together name it uniquely: a
 * recycled PID has a later start time. */
struct proc_ent {
    pid_t pid;
    unsigned long long start;
    /* /proc/PID/comm for people: NUL-terminated, at most 15 bytes, valid
     * UTF-8 without control characters (other bytes read as '?'). */
    char comm[16];
};

/* Parses the target object at path ctx (e.g. "faults[1] 'kill': target";
 * errors read "<ctx>.pick: ..."). Strict: keys other than the selectors,
 * "pick" and "seed" are errors unless listed in extra_keys (NULL-terminated,
 * may be NULL), which the caller then reads itself. Compiles a cmdline regex
 * and checks everything that needs no system access. On success *out is the
 * caller's (proc_target_free); on failure *out is untouched. */
int proc_target_parse(const json_t *target, const char *ctx, const char *const extra_keys[],
                      struct proc_target **out, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* An independent copy of t (its regex compiled again), for state that must
 * outlive the spec it came from. */
int proc_target_dup(const struct proc_target *t, struct proc_target **out, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Frees t; NULL is fine. */
void proc_target_free(struct proc_target *t);

/* The selector and pick for people, e.g. "name 'demo-worker', pick 1" or
 * "pid 812". */
void proc_target_describe(const struct proc_target *t, char *buf, size_t size);

/* true when the target picks all matching processes (no randomness). */
bool proc_target_picks_all(const struct proc_target *t);

/* The seed of the pick: the target's "seed" when given, else one drawn from
 * getrandom() (always in 0..INT64_MAX so a person can paste it into a
 * scenario). Fails only when getrandom() does. */
int proc_target_seed(const struct proc_target *t, uint64_t *seed, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Finds the processes t names now, sorted by pid, skipping kernel threads,
 * zombies and - silently - env's protected PIDs. An explicit pid (or the pid
 * of a pidfile) that is protected is an error (EPERM). No process at all is
 * ESRCH, naming the selector ("target matched no process (name 'x')"). On
 * success *out (malloc'd, caller frees; never NULL) holds *n >= 1 entries;
 * on failure *out and *n are untouched. */
int proc_target_resolve(const struct proc_target *t, const struct fault_env *env,
                        struct proc_ent **out, size_t *n, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Keeps the processes t's pick chooses among ents[0..*n) (sorted by pid) and
 * sets *n to their number; the kept entries are sorted by pid. The choice
 * depends only on *rng, the list and the pick; *rng advances, so calling
 * again with the same state continues the sequence. Never fails. */
void proc_target_pick(const struct proc_target *t, uint64_t *rng, struct proc_ent *ents, size_t *n);

/* Reads pid's /proc/PID/stat into *out (pid, start, comm) and its state
 * letter into *state (may be NULL). Returns 0, or a negative errno (-ESRCH
 * when the process is gone). */
int proc_target_stat(pid_t pid, struct proc_ent *out, char *state)
    __attribute__((warn_unused_result));

/* Opens a pidfd for e->pid, then checks that the process behind it still
 * has e->start and is no zombie. Returns the pidfd (caller closes), -ESRCH
 * when the process exited or the PID now names another process, or another
 * negative errno with err set (err may be NULL). */
int proc_target_pidfd(const struct proc_ent *e, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Sends sig through pidfd. Returns 0 or a negative errno (-ESRCH: the
 * process has exited). */
int proc_target_signal(int pidfd, int sig) __attribute__((warn_unused_result));

#endif
