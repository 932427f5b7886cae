/* Shared by run_silences.c and run_silences_recover.c. */
#ifndef CHAOS_RUN_SILENCES_IMPL_H
#define CHAOS_RUN_SILENCES_IMPL_H

#include <stddef.h>
#include <jansson.h>

/* Writes j to path through path.tmp, fsync and rename, so a crash leaves
 * the old journal or the new one, never half of one. 0 or a negative errno
 * with why set. */
int silence_journal_write(const char *path, const json_t *j, char *why, size_t size);

#endif
