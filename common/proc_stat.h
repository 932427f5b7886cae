/* Reading /proc/PID/stat: the one parser every module uses, so that a field
 * means the same everywhere (the process's start time above all: it is how
 * a recycled PID is told from the process we meant). */
#ifndef CHAOS_PROC_STAT_H
#define CHAOS_PROC_STAT_H

#include <stddef.h>
#include <sys/types.h>

/* The fields of /proc/PID/stat we use (proc(5) numbers them from 1). */
struct proc_stat {
    char comm[16];            /* field 2 without its parentheses, as the kernel wrote
                                 it (any bytes but NUL), NUL-terminated, cut at 15 */
    char state;               /* field 3: R, S, D, T, t, Z, X, ... */
    unsigned long flags;      /* field 9: PF_* flags */
    unsigned long long start; /* field 22: starttime, clock ticks since boot */
};

/* Parses the text of a /proc/PID/stat file (len bytes, need not be NUL-
 * terminated). comm may itself hold spaces and ')': it ends at the last ')'.
 * Returns 0, or -EIO (and *out is unspecified) when the text is not in the
 * kernel's format. */
int proc_stat_parse(const char *buf, size_t len, struct proc_stat *out)
    __attribute__((warn_unused_result));

/* Reads and parses /proc/PID/stat. Returns 0, -ESRCH when there is no such
 * process (or thread: /proc/TID/stat exists for every thread, see
 * proc_stat_tgid), -EIO when the file is not in the kernel's format, or
 * another negative errno from open/read. */
int proc_stat_read(pid_t pid, struct proc_stat *out) __attribute__((warn_unused_result));

/* The thread group (process) that task id pid belongs to: pid itself for a
 * process, its process's pid for a thread. Read from /proc/PID/status.
 * Returns 0 with *tgid set, -ESRCH when there is no such task, -EIO when the
 * file has no Tgid line, or another negative errno. */
int proc_stat_tgid(pid_t pid, pid_t *tgid) __attribute__((warn_unused_result));

#endif
