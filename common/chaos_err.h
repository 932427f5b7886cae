/* Error reporting shared by every module.
 *
 * Library code never prints or exits: it fills a caller-owned struct chaos_err
 * and returns a negative errno-style code. Only main() prints, once. */
#ifndef CHAOS_ERR_H
#define CHAOS_ERR_H

#include <stddef.h>

struct chaos_err {
    int code;       /* positive errno-style code, 0 when no error is set */
    char msg[768];  /* a sentence a person can act on, no trailing newline */
};

/* Sets err (if non-NULL) to code and the formatted message; returns -code so a
 * caller can write `return chaos_err_set(err, EINVAL, "...")`. */
int chaos_err_set(struct chaos_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Cuts a UTF-8 sequence left incomplete at the end of s (by a truncating
 * snprintf), so a cut message never ends in half a character. */
void chaos_utf8_trim(char *s);

/* Puts "prefix: " in front of the message already in err. No-op when err is
 * NULL or the prefix comes out empty (a top-level context has no name). */
void chaos_err_prefix(struct chaos_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* chaos_err_set, then "ctx: " in front unless ctx is NULL or empty. */
int chaos_err_setctx(struct chaos_err *err, int code, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clears err so it can be reused. */
void chaos_err_clear(struct chaos_err *err);

#endif
