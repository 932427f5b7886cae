#include "regex_bounded.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP (REGEX_MAX_NODES + 1)

static size_t add(size_t a, size_t b)
{
    return a + b > CAP ? CAP : a + b;
}

static size_t mul(size_t a, size_t b)
{
    return b && a > CAP / b ? CAP : a * b;
}

/* Skips a bracket expression starting at p (on '['); returns the char after. */
static const char *skip_bracket(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    while (*p && *p != ']') {
        if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            char close = p[1];
            p += 2;
            while (*p && !(p[0] == close && p[1] == ']'))
                p++;
            if (*p)
                p += 2;
            continue;
        }
        p++;
    }
    return *p ? p + 1 : p;
}

/* Upper bound of the copies a "{m}" / "{m,}" / "{m,n}" makes: max(m, n) + 1,
 * with *pp moved past the '}'. 0 when *pp does not start an interval (then
 * *pp is untouched and the '{' is a literal). */
static size_t interval_copies(const char **pp)
{
    const char *p = *pp + 1;
    unsigned long m = 0, n = 0;
    char *end;
    if (isdigit((unsigned char)*p)) {
        m = strtoul(p, &end, 10);
        p = end;
    }
    if (*p == ',') {
        p++;
        if (isdigit((unsigned char)*p)) {
            n = strtoul(p, &end, 10);
            p = end;
        }
    }
    if (*p != '}') /* not an interval: regcomp will judge it */
        return 0;
    *pp = p + 1;
    unsigned long k = (m > n ? m : n) + 1;
    return k > CAP ? CAP : (size_t)k;
}

struct scan {
    bool stacked; /* a repetition operator directly after another one */
    bool backref; /* \1..\9: a glibc extension that makes matching backtrack */
};

/* Size of the sequence at *pp up to an unmatched ')' or the end. */
static size_t expansion(const char **pp, int depth, struct scan *sc)
{
    const char *p = *pp;
    size_t total = 0, last = 0;
    bool after_quant = false; /* the previous token was *, +, ? or {m,n} */
    if (depth > 64)
        return CAP;
    /* A ')' with no '(' open is a literal for glibc: only nested calls stop at one. */
    while (*p && !(*p == ')' && depth > 0) && total < CAP) {
        bool quant = *p == '*' || *p == '+' || *p == '?' ||
                     (*p == '{' && isdigit((unsigned char)p[1]));
        if (quant && after_quant)
            sc->stacked = true;
        after_quant = quant;
        switch (*p) {
        case '(':
            p++;
            last = add(expansion(&p, depth + 1, sc), 1);
            if (*p == ')')
                p++;
            total = add(total, last);
            break;
        case '|':
            p++;
            total = add(total, 1);
            last = 0;
            break;
        case '[':
            p = skip_bracket(p);
            last = 1;
            total = add(total, 1);
            break;
        case '\\':
            if (p[1] >= '1' && p[1] <= '9')
                sc->backref = true;
            p += p[1] ? 2 : 1;
            last = 1;
            total = add(total, 1);
            break;
        case '*':
        case '?':
            p++;
            total = add(total, 1);
            break;
        case '+': /* "x+" becomes "xx*": the atom is copied */
            p++;
            if (last == 0) /* nothing to repeat: glibc may take it as a literal */
                last = 1;
            total = add(total, last);
            last = mul(last, 2);
            break;
        case '{': {
            size_t k = interval_copies(&p);
            if (k == 0) {
                p++;
                last = 1;
                total = add(total, 1);
            } else {
                if (last == 0)
                    last = 1;
                total = add(total, mul(last, k - 1));
                last = mul(last, k);
            }
            break;
        }
        default:
            p++;
            last = 1;
            total = add(total, 1);
        }
    }
    *pp = p;
    return total;
}

/* One pass over pattern: its expansion, and the constructs we refuse. */
static size_t scan_pattern(const char *pattern, struct scan *sc)
{
    const char *p = pattern;
    *sc = (struct scan){0};
    return expansion(&p, 0, sc);
}

size_t regex_expansion(const char *pattern)
{
    struct scan sc;
    return scan_pattern(pattern, &sc);
}

bool regex_has_stacked_repetition(const char *pattern)
{
    struct scan sc;
    scan_pattern(pattern, &sc);
    return sc.stacked;
}

int regex_compile_bounded(regex_t *re, const char *pattern, char *why, size_t why_size)
{
    if (strlen(pattern) > REGEX_MAX_LEN) {
        snprintf(why, why_size, "longer than %d characters", REGEX_MAX_LEN);
        return -1;
    }
    /* POSIX leaves "a+?", "a**" undefined, and glibc's closure computation
     * over a run of them takes minutes (fuzzer finding): refuse them. */
    struct scan sc;
    size_t nodes = scan_pattern(pattern, &sc);
    if (sc.stacked) {
        snprintf(why, why_size,
                 "repetition operators directly after one another (like \"+?\" or \"**\") "
                 "are undefined in POSIX extended regexes; group them: \"(a+)?\"");
        return -1;
    }
    /* Matching with back-references backtracks, exponentially in the worst
     * case, over inputs up to a megabyte (HTTP bodies). */
    if (sc.backref) {
        snprintf(why, why_size,
                 "back-references (\\1 to \\9) are not part of POSIX extended regexes");
        return -1;
    }
    if (nodes > REGEX_MAX_NODES) {
        snprintf(why, why_size,
                 "its repetitions expand too far (nested or stacked +, {m,n}); simplify it");
        return -1;
    }
    int rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, re, why, why_size);
        return -1;
    }
    return 0;
}
