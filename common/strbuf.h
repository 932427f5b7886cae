/* Appending to a fixed, NUL-terminated buffer: the one string builder of
 * the describe lines ("delay 100ms, loss 5%; dst 10.0.0.7/32"). */
#ifndef CHAOS_STRBUF_H
#define CHAOS_STRBUF_H

#include <stddef.h>

/* Appends the formatted text to buf (size bytes, already a string); what
 * does not fit is cut, and buf stays terminated. */
void str_append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
