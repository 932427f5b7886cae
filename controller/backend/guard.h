/* The guard: a small watchdog process forked by `chaos run` before any fault
 * is applied. If the run dies without reverting its faults (SIGKILL, OOM
 * kill, a crash), the guard notices at once (its pipe from the run reaches
 * end-of-file) and reverts what the run's journal says is still applied. A
 * run that ends normally tells the guard to quit. The guard runs in its own
 * session, so a signal to the run's process group (`timeout -s KILL`, a CI
 * runner's kill) does not reach it, and it ignores SIGINT, SIGTERM, SIGHUP
 * and SIGPIPE as well. With state_dir (may be NULL) it then expires the
 * Alertmanager silences of runs that are gone (run_silences.h). */
#ifndef CHAOS_GUARD_H
#define CHAOS_GUARD_H

#include <sys/types.h>
#include "chaos_err.h"

struct guard {
    pid_t pid;  /* -1 when not running */
    int fd;     /* write end of the pipe; closing it by dying wakes the guard */
};

/* Forks the guard for the journal at journal_path and returns once it has
 * left this process group. Call before anything is applied and before other
 * threads exist. On failure nothing is running and err says why. */
int guard_start(const char *journal_path, const char *state_dir, struct guard *g,
                struct chaos_err *err)
    __attribute__((warn_unused_result));

/* The run has reverted everything it could: the guard exits without acting
 * and is reaped. Safe on a guard that never started. */
void guard_stop(struct guard *g);

#endif
