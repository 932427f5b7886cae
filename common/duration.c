#include "duration.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit {
    const char *name;
    double ms;
};

/* Longest names first so "ms" is not read as "m" followed by junk. */
static const struct unit units[] = {
    {"us", 0.001}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
};

int duration_parse(const char *s, int64_t *ms, struct chaos_err *err)
{
    if (!s || !*s)
        return chaos_err_set(err, EINVAL, "empty duration (write e.g. \"500ms\", \"2s\", \"1m\")");
    const char *p = s;
    double total = 0;
    while (*p) {
        if (*p == '-')
            return chaos_err_set(err, EINVAL, "\"%s\" is negative; durations are >= 0", s);
        /* The grammar is digits, optionally "." and digits, then a unit:
         * no exponents, hex, or bare "." that strtod would take. */
        if (!isdigit((unsigned char)*p))
            return chaos_err_set(err, EINVAL,
                                 "\"%s\" is not a duration (write e.g. \"500ms\", \"2s\", \"1m30s\")", s);
        const char *q = p;
        while (isdigit((unsigned char)*q))
            q++;
        if (*q == '.') {
            q++;
            if (!isdigit((unsigned char)*q))
                return chaos_err_set(err, EINVAL, "\"%s\" is not a duration", s);
            while (isdigit((unsigned char)*q))
                q++;
        }
        char num[48];
        if ((size_t)(q - p) >= sizeof num)
            return chaos_err_set(err, ERANGE, "\"%s\" is longer than the 7-day maximum", s);
        memcpy(num, p, (size_t)(q - p));
        num[q - p] = '\0';
        double v = strtod(num, NULL);
        p = q;
        const struct unit *u = NULL;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].name);
            if (strncmp(p, units[i].name, n) == 0 && !isalpha((unsigned char)p[n])) {
                u = &units[i];
                p += n;
                break;
            }
        }
        if (!u)
            return chaos_err_set(err, EINVAL,
                                 "\"%s\" needs a unit after each number (us, ms, s, m or h)", s);
        total += v * u->ms;
        if (total > (double)DURATION_MAX_MS)
            return chaos_err_set(err, ERANGE, "\"%s\" is longer than the 7-day maximum", s);
    }
    int64_t r = (int64_t)ceil(total);
    *ms = r;
    return 0;
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
