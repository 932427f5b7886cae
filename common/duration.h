/* Durations are strings with a unit: "250ms", "2s", "1.5m", "1h", "1m30s".
 * Inside the program every duration is an int64_t count of milliseconds. */
#ifndef CHAOS_DURATION_H
#define CHAOS_DURATION_H

#include <stdint.h>
#include <stddef.h>
#include "chaos_err.h"

/* The largest duration we accept anywhere: 7 days. Bounds what comes from outside. */
#define DURATION_MAX_MS (7LL * 24 * 3600 * 1000)

/* Parses s into *ms. Accepts one or more <number><unit> parts (units us, ms, s,
 * m, h; a number may have a fraction) summed together, e.g. "1m30s". A value
 * below one millisecond rounds up to 1 ms unless it is zero. Negative values,
 * missing units, unknown units and values above DURATION_MAX_MS are errors;
 * on error *ms is untouched and err says what is wrong with s. */
int duration_parse(const char *s, int64_t *ms, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* duration_parse with microsecond resolution, for what the kernel takes
 * finer than milliseconds (netem's delay and jitter): "250us", "1.5ms". A
 * value below one microsecond rounds up to 1 us unless it is zero. */
int duration_parse_us(const char *s, int64_t *us, struct chaos_err *err)
    __attribute__((warn_unused_result));

/* Formats us the way a person writes it: "250us", "1.5ms", "2s". */
void duration_format_us(int64_t us, char *buf, size_t size);

/* Formats ms the way a person writes it ("1m30s", "250ms", "0s") into buf. */
void duration_format(int64_t ms, char *buf, size_t size);

#endif
