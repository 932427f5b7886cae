/* Comparisons of the check conditions: "<op> <value>" with a plain number
 * or, for latencies, a duration (declared in scenario.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "duration.h"
#include "scenario.h"
#include "util.h"

const char *cmp_op_str(enum cmp_op op)
{
    switch (op) {
    case CMP_LT:
        return "<";
    case CMP_LE:
        return "<=";
    case CMP_GT:
        return ">";
    case CMP_GE:
        return ">=";
    case CMP_EQ:
        return "==";
    case CMP_NE:
        return "!=";
    }
    return "?";
}

bool cmp_holds(const struct cmp *c, double v)
{
    if (!c->set)
        return true;
    switch (c->op) {
    case CMP_LT:
        return v < c->value;
    case CMP_LE:
        return v <= c->value;
    case CMP_GT:
        return v > c->value;
    case CMP_GE:
        return v >= c->value;
    case CMP_EQ:
        return v == c->value;
    case CMP_NE:
        return v != c->value;
    }
    return false;
}

/* A plain decimal number: -?digits(.digits)?, as the JSON Schema's pattern
 * says; strtod alone would also take "inf", hex and exponents. */
static bool is_plain_number(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

/* The value of a duration string already accepted by duration_parse, in
 * microseconds (duration_parse rounds to milliseconds; latencies keep more). */
static double duration_us(const char *s)
{
    static const struct {
        const char *name;
        double us;
    } units[] = {{"us", 1}, {"ms", 1e3}, {"s", 1e6}, {"m", 6e7}, {"h", 3.6e9}};
    double total = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p)
            break;
        p = end;
        size_t i;
        for (i = 0; i < ARRAY_SIZE(units); i++) {
            size_t n = strlen(units[i].name);
            if (strncmp(p, units[i].name, n) == 0 && !isalpha((unsigned char)p[n])) {
                total += v * units[i].us;
                p += n;
                break;
            }
        }
        if (i == ARRAY_SIZE(units))
            break;
    }
    return total;
}

int cmp_parse(const char *s, bool latency, const char *path, struct cmp *out, struct chaos_err *err)
{
    static const struct {
        const char *text;
        enum cmp_op op;
    } ops[] = {{"<=", CMP_LE}, {">=", CMP_GE}, {"==", CMP_EQ},
               {"!=", CMP_NE}, {"<", CMP_LT},  {">", CMP_GT}};
    const char *example = latency ? "< 500ms" : ">= 0.99";
    const char *p = s ? s : "";
    size_t i;
    for (i = 0; i < ARRAY_SIZE(ops); i++)
        if (strncmp(p, ops[i].text, strlen(ops[i].text)) == 0)
            break;
    if (i == ARRAY_SIZE(ops) || (p[strlen(ops[i].text)] && strchr("<>=!", p[strlen(ops[i].text)])))
        return chaos_err_set(err, EINVAL,
                             "%s: \"%s\" is not a comparison; write \"<op> <value>\" with op one "
                             "of <, <=, >, >=, ==, != (e.g. \"%s\")",
                             path, p, example);
    enum cmp_op op = ops[i].op;
    p += strlen(ops[i].text);
    while (*p == ' ')
        p++;
    double value;
    if (latency) {
        int64_t ms;
        struct chaos_err derr = {0};
        if (duration_parse(p, &ms, &derr) < 0)
            return chaos_err_set(
                err, EINVAL, "%s: \"%s\": a latency is compared with a duration (e.g. \"%s\"): %s",
                path, s, example, derr.msg);
        value = duration_us(p);
    } else {
        if (!is_plain_number(p))
            return chaos_err_set(err, EINVAL,
                                 "%s: \"%s\": the value must be a plain number (e.g. \"%s\")", path,
                                 s, example);
        value = strtod(p, NULL);
    }
    out->set = true;
    out->op = op;
    out->value = value;
    return 0;
}

