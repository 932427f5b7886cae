#include "chaos_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void chaos_utf8_trim(char *s)
{
    size_t n = strlen(s), i = n, back = 0;
    /* Walk back over continuation bytes to the lead byte of the last sequence. */
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (want > 1 && back + 1 < want)
        s[i - 1] = '\0';
}

int chaos_err_set(struct chaos_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof err->msg)
            chaos_utf8_trim(err->msg);
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
    if (vsnprintf(prefix, sizeof prefix, fmt, ap) >= (int)sizeof prefix)
        chaos_utf8_trim(prefix);
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
    chaos_utf8_trim(err->msg);
}

int chaos_err_setctx(struct chaos_err *err, int code, const char *ctx, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        if (vsnprintf(err->msg, sizeof err->msg, fmt, ap) >= (int)sizeof err->msg)
            chaos_utf8_trim(err->msg);
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
