/* The fault journal: an append-only file of JSON lines, fsynced after every
 * record, written before a lasting fault touches the system. After a crash,
 * the faults it says are applied and not reverted are reverted from it.
 *
 * Records: {"op":"apply","id":...,"kind":...,"undo":{...},"deadline":unix_ms,
 * "pid":owner} and {"op":"revert","id":...}. A later apply record with the
 * same id replaces the earlier one's undo. */
#ifndef CHAOS_JOURNAL_H
#define CHAOS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"

struct journal;

/* Opens (creating, with its folder) the journal at path for appending. */
int journal_open(const char *path, struct journal **out, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Closes; removes the file when remove_file is true. NULL is fine. */
void journal_close(struct journal *j, bool remove_file);
const char *journal_path(const struct journal *j);

int journal_record_apply(struct journal *j, const char *id, const char *kind, const json_t *undo,
                         int64_t deadline_unix_ms, struct chaos_err *err)
    __attribute__((warn_unused_result));
int journal_record_revert(struct journal *j, const char *id, struct chaos_err *err)
    __attribute__((warn_unused_result));

typedef int (*journal_pending_cb)(const char *id, const char *kind, const json_t *undo,
                                  void *arg);

/* The process that wrote a journal: its first line records pid and start time
 * (field 22 of /proc/PID/stat) so a recycled PID is not taken for the owner. */
struct journal_owner {
    int pid;
    unsigned long long start;
};

/* What reading a journal found besides its pending faults. */
struct journal_info {
    struct journal_owner owner; /* from the "open" record; zeros when there is none */
    bool torn;                  /* the last line was cut short (a crash mid-write): it was
                                   ignored, the fault it began was never applied */
    size_t bad_lines;           /* complete lines that are not journal records */
    size_t first_bad_line;      /* the first of them, counting from 1 (0: none) */
    size_t n_pending;           /* faults applied and not reverted */
};

/* Reads the journal at path; calls cb for every fault applied and not
 * reverted, in the order they were applied (cb may be NULL to only count;
 * a non-zero return is counted as a failure and reading goes on). info
 * (may be NULL) is filled in. A truncated last line is ignored (info->torn);
 * a complete line that is no record is skipped and counted (a record we
 * cannot read may be a fault still applied: callers must not delete such a
 * journal). Returns the number of cb failures, or a negative errno with err
 * set when the file cannot be read (-ENOENT when it does not exist). */
int journal_read(const char *path, struct journal_info *info, journal_pending_cb cb, void *arg,
                 struct chaos_err *err);

/* journal_read, for callers that need only the owner and the count (either
 * may be NULL). */
int journal_read_pending(const char *path, struct journal_owner *owner, journal_pending_cb cb,
                         void *arg, size_t *n_pending, struct chaos_err *err);

/* Whether a journal's owner is still running, and if not, what its PID is now. */
enum journal_owner_state {
    JOURNAL_OWNER_ALIVE,    /* same pid, same start time: the run is alive */
    JOURNAL_OWNER_NONE,     /* the journal names no owner (its first record is missing) */
    JOURNAL_OWNER_GONE,     /* no process or thread has that pid */
    JOURNAL_OWNER_RECYCLED, /* the pid now names another process */
    JOURNAL_OWNER_THREAD,   /* the pid now names a thread of another process */
    JOURNAL_OWNER_UNKNOWN,  /* /proc could not tell (not readable): assume alive */
};

/* Classifies o. *tgid (may be NULL) gets the process a JOURNAL_OWNER_THREAD
 * pid belongs to. Never fails: what cannot be read is JOURNAL_OWNER_UNKNOWN. */
enum journal_owner_state journal_owner_check(const struct journal_owner *o, int *tgid);

/* True while the owner process is still running (same pid, same start time). */
bool journal_owner_alive(const struct journal_owner *owner);

/* Start time of pid (field 22 of /proc/PID/stat, clock ticks since boot).
 * Returns 0, or a negative errno (-ESRCH when there is no such process). */
int journal_proc_start_time(int pid, unsigned long long *start);

#endif
