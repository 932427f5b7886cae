/* The tracer of running processes: a child process of the engine that
 * PTRACE_SEIZEs every thread of the targets for the fault window only,
 * stops each syscall at its entry, injects the spec's errno, value or delay
 * into the selected calls (sys_match.h, sys_decide), follows threads and
 * children forked during the window, and detaches them all when the window
 * ends: at the deadline, on SIGUSR1 (the revert) or SIGTERM, and when its
 * parent dies (PR_SET_PDEATHSIG). Nothing stays in the targets: no seccomp
 * filter, no tracer; should the tracer itself be killed, the kernel detaches
 * the tracees. x86_64 only. */
#ifndef CHAOS_SYS_TRACE_H
#define CHAOS_SYS_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "chaos_err.h"
#include "proc_target.h"
#include "sys_spec.h"

/* The tracer as the engine holds it. */
struct sys_trace {
    struct proc_ent tracer; /* pid and start time */
    int fd;                 /* its report pipe; -1 once read to the end */
    size_t threads;         /* threads attached at the start */
    long long injected;     /* calls injected, known once it has ended */
    bool ended;             /* reaped */
};

/* Starts the tracer (a child of the caller) on targets[0..n) and returns
 * once every thread is attached. deadline_ms: CLOCK_REALTIME ms at which it
 * detaches by itself (0: only on SIGUSR1). On failure nothing is attached
 * and no tracer runs: a target already traced by someone else, a thread
 * the kernel does not let us trace, a target that is not the process it was. */
int sys_trace_start(const struct sys_spec *s, const struct proc_ent *targets, size_t n,
                    int64_t deadline_ms, struct sys_trace *out, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Ends the window: SIGUSR1 to the tracer, waits (at most a few seconds,
 * then SIGKILL, after which the kernel detaches) until it has detached
 * every tracee and exited, and reaps it. Then checks that no target shows
 * the tracer in /proc/PID/status. 0, or a negative errno with err set. */
int sys_trace_stop(struct sys_trace *t, const struct proc_ent *targets, size_t n,
                   struct chaos_err *err) __attribute__((warn_unused_result));

/* Recovery after the engine died: the tracer died with it (PDEATHSIG) or
 * is ending; one still there after a moment (same pid and start time) is
 * told to end, then killed. Checks that none of targets (those still the
 * same processes) is traced by it any more. Idempotent. */
int sys_trace_recover(const struct proc_ent *tracer, const struct proc_ent *targets, size_t n,
                      struct chaos_err *err) __attribute__((warn_unused_result));

/* The TracerPid of pid from /proc/PID/status: >= 0, or a negative errno
 * (-ESRCH: no such process). */
int sys_trace_tracer_of(pid_t pid);

#endif
