/* Which calls a syscall fault selects, shared by both ways of intercepting
 * them (the seccomp supervisor of a launched command, sys_super.c, and the
 * ptrace tracer of a running process, sys_trace.c): the syscall number, then
 * its arguments against the spec's filters (path prefix or glob, the file
 * behind an fd, IPv4 address and port). The counters and the probability
 * draw come after, in sys_decide (sys_spec.h). */
#ifndef CHAOS_SYS_MATCH_H
#define CHAOS_SYS_MATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "sys_spec.h"

/* Whether native syscall nr is one of s's. */
bool sys_call_selected(const struct sys_spec *s, int nr);

/* Whether the arguments of call nr made by thread tid pass s's filters.
 * Pointer arguments are read from tid's memory (process_vm_readv), relative
 * paths resolved against its cwd or dirfd and fds through /proc/TID/fd. A
 * call whose argument cannot be read does not match. */
bool sys_args_match(const struct sys_spec *s, pid_t tid, int nr, const unsigned long long args[6]);

#endif
