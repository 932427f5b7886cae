#include "duration.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit {
    const char *name;
    int64_t ns;
};

/* Longest names first so "ms" is not read as "m" followed by junk. */
static const struct unit units[] = {
    {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}, {"m", 60000000000}, {"h", 3600000000000},
};

#define DURATION_MAX_NS (DURATION_MAX_MS * 1000000)

/* Parses s into nanoseconds with integer arithmetic, so "1.1s" is exactly
 * 1100ms and never 1100.0000000000002 rounded up to 1101. Digits of a
 * fraction below a nanosecond round the part up. */
static int parse_ns(const char *s, int64_t *out, struct chaos_err *err)
{
    if (!s || !*s)
        return chaos_err_set(err, EINVAL, "empty duration (write e.g. \"500ms\", \"2s\", \"1m\")");
    const char *p = s;
    __int128 total = 0;
    while (*p) {
        if (*p == '-')
            return chaos_err_set(err, EINVAL, "\"%s\" is negative; durations are >= 0", s);
        /* The grammar is digits, optionally "." and digits, then a unit:
         * no exponents, hex, or bare "." that strtod would take. */
        if (!isdigit((unsigned char)*p))
            return chaos_err_set(err, EINVAL,
                                 "\"%s\" is not a duration (write e.g. \"500ms\", \"2s\", \"1m30s\")", s);
        __int128 whole = 0, frac = 0, scale = 1;
        bool more = false; /* nonzero digits past what frac holds */
        for (; isdigit((unsigned char)*p); p++) {
            whole = whole * 10 + (*p - '0');
            if (whole > DURATION_MAX_NS)
                return chaos_err_set(err, ERANGE, "\"%s\" is longer than the 7-day maximum", s);
        }
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p))
                return chaos_err_set(err, EINVAL, "\"%s\" is not a duration", s);
            for (; isdigit((unsigned char)*p); p++) {
                if (scale < 1000000000000000000) {
                    frac = frac * 10 + (*p - '0');
                    scale *= 10;
                } else if (*p != '0') {
                    more = true;
                }
            }
        }
        const struct unit *u = NULL;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].name);
            if (strncmp(p, units[i].name, n) == 0 && !isalpha((unsigned char)p[n])) {
                u = &units[i];
                p += n;
                break;
            }
        }
        if (!u && (*p == 'd' || *p == 'w' || *p == 'y') && !isalpha((unsigned char)p[1]))
            return chaos_err_set(err, EINVAL,
                                 "\"%s\": %s are not a unit; use h (e.g. \"48h\" for 2 days); "
                                 "units are us, ms, s, m and h",
                                 s, *p == 'd' ? "days" : *p == 'w' ? "weeks" : "years");
        if (!u)
            return chaos_err_set(err, EINVAL,
                                 "\"%s\" needs a unit after each number (us, ms, s, m or h)", s);
        __int128 part_frac = frac * u->ns;
        total += whole * u->ns + part_frac / scale + (part_frac % scale || more ? 1 : 0);
        if (total > DURATION_MAX_NS)
            return chaos_err_set(err, ERANGE, "\"%s\" is longer than the 7-day maximum", s);
    }
    *out = (int64_t)total;
    return 0;
}

int duration_parse(const char *s, int64_t *ms, struct chaos_err *err)
{
    int64_t ns;
    int r = parse_ns(s, &ns, err);
    if (r < 0)
        return r;
    *ms = (ns + 999999) / 1000000; /* never shorter than asked */
    return 0;
}

int duration_parse_us(const char *s, int64_t *us, struct chaos_err *err)
{
    int64_t ns;
    int r = parse_ns(s, &ns, err);
    if (r < 0)
        return r;
    *us = (ns + 999) / 1000;
    return 0;
}

void duration_format_us(int64_t us, char *buf, size_t size)
{
    if (us % 1000 == 0) {
        duration_format(us / 1000, buf, size);
        return;
    }
    if (us < 1000) {
        snprintf(buf, size, "%lldus", (long long)us);
        return;
    }
    /* "1.5ms", "12.345ms": milliseconds with the fraction's trailing zeros cut. */
    char frac[8];
    snprintf(frac, sizeof frac, "%03lld", (long long)(us % 1000));
    for (size_t n = strlen(frac); n > 0 && frac[n - 1] == '0'; n--)
        frac[n - 1] = '\0';
    snprintf(buf, size, "%lld.%sms", (long long)(us / 1000), frac);
}

void duration_format(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0) {
        snprintf(buf, size, "0s");
        return;
    }
    if (ms < 1000 || ms % 1000) {
        if (ms >= 1000 && ms % 100 == 0)
            snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
        else
            snprintf(buf, size, "%lldms", (long long)ms);
        return;
    }
    long long s = ms / 1000, h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
    size_t off = 0;
    buf[0] = '\0';
    if (h)
        off += (size_t)snprintf(buf + off, size - off, "%lldh", h);
    if (m && off < size)
        off += (size_t)snprintf(buf + off, size - off, "%lldm", m);
    if (sec && off < size)
        snprintf(buf + off, size - off, "%llds", sec);
}
