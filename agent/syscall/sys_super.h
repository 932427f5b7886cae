/* The per-workload supervisor: a process of its own (not a child of the
 * engine's) that launches the workload under a seccomp filter matching only
 * the chosen syscalls, holds the user-notification listener, decides each
 * call, and answers CONTINUE once the window ends (the deadline passed, or
 * SIGUSR1) for as long as the workload lives, whether or not the engine is
 * still there. It writes the workload's stdout, stderr and exit status to
 * files in its output folder. */
#ifndef CHAOS_SYS_SUPER_H
#define CHAOS_SYS_SUPER_H

#include <stdint.h>
#include <sys/types.h>
#include "chaos_err.h"
#include "sys_spec.h"

/* Files in the output folder. "status" appears when the workload has ended:
 * "exited N" or "killed by signal N". "injected" holds the count of
 * injected calls: at most 100 ms behind during the window, exact once the
 * window is over and when the workload has ended. */
#define SYS_OUT_STDOUT "stdout"
#define SYS_OUT_STDERR "stderr"
#define SYS_OUT_STATUS "status"
#define SYS_OUT_INJECTED "injected"

/* Starts the supervisor and the workload; returns once the listener is held
 * (the workload then runs). deadline_ms: CLOCK_REALTIME ms at which injection
 * stops by itself (0: only SIGUSR1 stops it). On failure nothing runs. */
int sys_super_start(const struct sys_spec *s, const char *out_dir, int64_t deadline_ms,
                    pid_t *super_pid, pid_t *workload_pid, struct chaos_err *err)
    __attribute__((warn_unused_result));

#endif
