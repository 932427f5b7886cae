/* Between sys_attach.c (the engine's side) and sys_trace.c (the tracer's
 * life); not for other modules. */
#ifndef CHAOS_SYS_TRACE_IMPL_H
#define CHAOS_SYS_TRACE_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "proc_target.h"
#include "sys_spec.h"

/* How long the tracer may take to detach before it exits anyway (the
 * kernel then detaches what is left). */
#define SYS_TRACE_DETACH_MS 5000

/* The tracer process, in the child of a fork of parent: seizes targets,
 * writes "A <threads>\n" to report_fd (or "E <errno> <why>\n" and exits),
 * serves the window, detaches, writes "D <injected>\n" and exits. */
__attribute__((noreturn)) void sys_tracer_main(const struct sys_spec *s,
                                               const struct proc_ent *targets, size_t n,
                                               int64_t deadline_ms, int report_fd, pid_t parent);

#endif
