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

/* Reads the journal at path; calls cb for every fault applied and not
 * reverted, in the order they were applied. *owner_pid is set to the pid of
 * the process that wrote it (0 if unknown). A truncated last line (a crash
 * mid-write) is ignored. Returns the number of pending faults, or a negative
 * errno with err set. */
int journal_read_pending(const char *path, int *owner_pid, journal_pending_cb cb, void *arg,
                         struct chaos_err *err);

#endif
