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

/* Reads the journal at path; calls cb for every fault applied and not
 * reverted, in the order they were applied (cb may be NULL to only count; a non-zero return is
 * counted as a failure and reading goes on). owner is filled from the first
 * line (zeros if unknown). A truncated last line (a crash mid-write) is
 * ignored. Returns the number of cb failures, or a negative errno with err
 * set when the file cannot be read. *n_pending (may be NULL) gets the number
 * of pending faults. */
int journal_read_pending(const char *path, struct journal_owner *owner, journal_pending_cb cb,
                         void *arg, size_t *n_pending, struct chaos_err *err);

/* True while the owner process is still running (same pid, same start time). */
bool journal_owner_alive(const struct journal_owner *owner);

/* Start time of pid (field 22 of /proc/PID/stat, clock ticks since boot).
 * Returns 0, or a negative errno (-ESRCH when there is no such process). */
int journal_proc_start_time(int pid, unsigned long long *start);

#endif
