/* Small file-system helpers shared by the engine and the daemons. */
#ifndef CHAOS_FSUTIL_H
#define CHAOS_FSUTIL_H

#include <sys/types.h>

/* Creates dir and every missing parent (mode 0700: journals and locks are
 * root's business alone). An existing folder is fine. 0, or -errno
 * (-ENAMETOOLONG for a path longer than PATH_MAX). */
int mkdir_p(const char *dir) __attribute__((warn_unused_result));

/* mkdir_p of the folder that holds path ("a/b/c.lock" -> "a/b"); nothing for
 * a bare name or a file in /. */
int mkdir_parent(const char *path) __attribute__((warn_unused_result));

#endif
