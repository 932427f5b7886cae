/* Where a run writes: report files and the state folder. Every path is
 * checked before anything is touched (finding out after a ten-minute run
 * would lose the verdict, and a path that names the wrong thing must not be
 * clobbered), and reports are written so that a reader never sees half of
 * one and a special file is never replaced by a regular one. */
#ifndef CHAOS_OUTPATH_H
#define CHAOS_OUTPATH_H

#include <stddef.h>
#include "chaos_err.h"

/* Checks that path (given with flag, e.g. "--junit") can take a report:
 *  - a new file, or an existing regular file that can be opened for writing,
 *    in a real folder where a file can be created (reports are written to a
 *    temp file there and renamed over path);
 *  - an existing character device (/dev/null, /dev/stdout on a terminal) or
 *    FIFO, written in place, never replaced.
 * Refused: an empty path, a folder, a block device or socket, a path under a
 * regular file, a missing folder, files on procfs/sysfs/cgroupfs, unwritable
 * or immutable files, and any path that is the same file as one of keep[0..n)
 * (the scenario file; NULL entries are skipped). Touches nothing: a probe
 * file it creates is removed at once. Errors read "<flag> <path>: why". */
int outpath_check_report(const char *flag, const char *path, const char *const *keep, size_t n,
                         struct chaos_err *err) __attribute__((warn_unused_result));

/* Checks that dir (given with flag, "--state-dir") is, or can be created as,
 * a writable folder: not empty, not a file, not under a file, on a writable
 * file system. Errors read "<flag> <dir>: why". */
int outpath_check_dir(const char *flag, const char *dir, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Writes data[0..len) to path: into it when it is a character device or a
 * FIFO (a FIFO needs a reader; writing gives up after 10 s without
 * progress), else through a temp file in the same folder and rename. On
 * failure path is unchanged (or partly written, for a special file) and err
 * says why ("<path>: ..."). */
int outpath_write(const char *path, const char *data, size_t len, struct chaos_err *err)
    __attribute__((warn_unused_result));

#endif
