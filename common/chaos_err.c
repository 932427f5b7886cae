#include "chaos_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int chaos_err_set(struct chaos_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return -code;
}

void chaos_err_prefix(struct chaos_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (!prefix[0])
        return;
    /* Shift the old message right and write the prefix in front; the end is
     * cut if the whole would not fit. */
    size_t plen = strlen(prefix) + 2, mlen = strnlen(err->msg, sizeof err->msg - 1);
    if (plen >= sizeof err->msg)
        plen = sizeof err->msg - 1;
    if (plen + mlen >= sizeof err->msg)
        mlen = sizeof err->msg - 1 - plen;
    memmove(err->msg + plen, err->msg, mlen);
    err->msg[plen + mlen] = '\0';
    memcpy(err->msg, prefix, plen - 2);
    memcpy(err->msg + plen - 2, ": ", 2);
}

int chaos_err_setctx(struct chaos_err *err, int code, const char *ctx, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
        chaos_err_prefix(err, "%s", ctx ? ctx : "");
    }
    return -code;
}

void chaos_err_clear(struct chaos_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
