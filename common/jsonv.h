/* Strict, well-explained reading of JSON objects (jansson).
 *
 * Every helper names the full field path in its error, e.g.
 * "faults[1] 'kill worker': target.pick: must be ...". `ctx` is the path of the
 * object being read ("" at top level); the helpers append ".key".
 *
 * Field getters return 1 when the field was present and read, 0 when it is
 * absent and optional (*out untouched), and a negative errno with err set when
 * it is absent but required or has the wrong type or range. */
#ifndef CHAOS_JSONV_H
#define CHAOS_JSONV_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"

/* Writes "ctx.key" (or "key" when ctx is empty) into buf. */
void jv_path(char *buf, size_t size, const char *ctx, const char *key);

/* Errors unless j is an object; "ctx: must be an object". */
int jv_expect_object(const json_t *j, const char *ctx, struct chaos_err *err);

/* Errors on the first key of obj not in allowed (NULL-terminated), naming it,
 * the known keys, and the closest known key when it looks like a typo. */
int jv_only_keys(const json_t *obj, const char *ctx, const char *const allowed[],
                 struct chaos_err *err);

int jv_string(const json_t *obj, const char *ctx, const char *key, bool required,
              const char **out, struct chaos_err *err);
/* A duration string ("2s"); see duration.h. */
int jv_duration(const json_t *obj, const char *ctx, const char *key, bool required,
                int64_t *out_ms, struct chaos_err *err);
/* jv_duration in microseconds (duration_parse_us). */
int jv_duration_us(const json_t *obj, const char *ctx, const char *key, bool required,
                   int64_t *out_us, struct chaos_err *err);
/* An integer in [min, max]. */
int jv_int(const json_t *obj, const char *ctx, const char *key, bool required, long long min,
           long long max, long long *out, struct chaos_err *err);
/* A number (integer or real) in [min, max]. */
int jv_number(const json_t *obj, const char *ctx, const char *key, bool required, double min,
              double max, double *out, struct chaos_err *err);
int jv_bool(const json_t *obj, const char *ctx, const char *key, bool required, bool *out,
            struct chaos_err *err);
/* An array (any element type) with between min and max elements. */
int jv_array(const json_t *obj, const char *ctx, const char *key, bool required, size_t min,
             size_t max, const json_t **out, struct chaos_err *err);

/* The JSON type name of j as a person says it ("a string", "an array", ...). */
const char *jv_type_name(const json_t *j);

#endif
