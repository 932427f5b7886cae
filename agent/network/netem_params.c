#include "netem_params.h"

#include "strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <linux/pkt_sched.h>
#include <sys/socket.h>
#include <linux/rtnetlink.h>

#include "duration.h"
#include "nl_tc.h"
#include "tc_msg.h"
#include "jsonv.h"
#include "util.h"

static const char *const dist_names[] = {"uniform", "normal", "pareto", "paretonormal"};

uint32_t netem_prob(double percent)
{
    if (percent <= 0)
        return 0;
    if (percent >= 100)
        return UINT32_MAX;
    return (uint32_t)llround(percent / 100.0 * (double)UINT32_MAX);
}

int netem_rate_parse(const char *s, uint64_t *bytes_per_s, struct chaos_err *err)
{
    static const struct {
        const char *unit;
        double bytes; /* bytes per second per unit */
    } units[] = {
        {"bit", 1.0 / 8}, {"kbit", 1e3 / 8}, {"mbit", 1e6 / 8}, {"gbit", 1e9 / 8},
        {"tbit", 1e12 / 8}, {"bps", 1},      {"kbps", 1e3},     {"mbps", 1e6},
        {"gbps", 1e9},     {"tbps", 1e12},
    };
    const char *p = s;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (p == s || !isdigit((unsigned char)s[0]) || p - s > 20)
        return chaos_err_set(err, EINVAL,
                             "'%s' is not a rate (write e.g. \"1mbit\", \"500kbit\"; "
                             "\"kbps\"/\"mbps\" are bytes per second, as in tc)",
                             s);
    char num[32];
    memcpy(num, s, (size_t)(p - s));
    num[p - s] = '\0';
    double v = strtod(num, NULL);
    for (size_t i = 0; i < ARRAY_SIZE(units); i++)
        if (strcasecmp(p, units[i].unit) == 0) {
            double b = v * units[i].bytes;
            if (b < 1)
                return chaos_err_set(err, ERANGE, "'%s' is below 1 byte per second", s);
            if (b > 1e13)
                return chaos_err_set(err, ERANGE, "'%s' is above 10 TB/s", s);
            *bytes_per_s = (uint64_t)llround(b);
            return 0;
        }
    return chaos_err_set(err, EINVAL,
                         "'%s' has no known unit (use bit, kbit, mbit, gbit, or bps, kbps, "
                         "mbps, gbps for bytes per second)",
                         s);
}

/* A percentage field, 0-100 (a fraction like 0.5 is fine). */
static int pct(const json_t *o, const char *ctx, const char *key, double *out,
               struct chaos_err *err)
{
    return jv_number(o, ctx, key, false, 0, 100, out, err);
}

/* "<pctx>.<key>: msg" */
__attribute__((format(printf, 4, 5))) static int perr(struct chaos_err *err, const char *pctx,
                                                      const char *key, const char *fmt, ...)
{
    char path[320], msg[400];
    jv_path(path, sizeof path, pctx, key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return chaos_err_set(err, EINVAL, "%s: %s", path, msg);
}

static int parse_ge(const json_t *ge, const char *pctx, struct netem_params *out,
                    struct chaos_err *err)
{
    static const char *const keys[] = {"p", "r", "loss_in_bad", "loss_in_good", NULL};
    char ctx[340];
    jv_path(ctx, sizeof ctx, pctx, "gilbert_elliott");
    int r = jv_expect_object(ge, ctx, err);
    if (r < 0 || (r = jv_only_keys(ge, ctx, keys, err)) < 0)
        return r;
    if ((r = jv_number(ge, ctx, "p", true, 0, 100, &out->ge_p, err)) < 0)
        return r;
    /* tc's defaults: leave the bad state with 1-p, lose everything in it,
     * nothing in the good state. */
    out->ge_r = 100 - out->ge_p;
    out->ge_loss_bad = 100;
    out->ge_loss_good = 0;
    if ((r = jv_number(ge, ctx, "r", false, 0, 100, &out->ge_r, err)) < 0 ||
        (r = pct(ge, ctx, "loss_in_bad", &out->ge_loss_bad, err)) < 0 ||
        (r = pct(ge, ctx, "loss_in_good", &out->ge_loss_good, err)) < 0)
        return r;
    if (out->ge_p <= 0)
        return perr(err, ctx, "p", "must be more than 0 (the chance to enter the bad state)");
    out->ge = true;
    return 0;
}

static const char *const netem_keys[] = {
    "partition", "delay",   "jitter",          "correlation", "distribution",
    "loss",      "loss_correlation", "gilbert_elliott", "duplicate",
    "duplicate_correlation", "corrupt", "corrupt_correlation", "reorder",
    "reorder_correlation", "rate", "limit", NULL};

/* "distribution" (by name) and "rate" (with its unit); *has_dist says
 * whether a distribution was given, for the combinations. */
static int parse_dist_and_rate(const json_t *params, const char *pctx, struct netem_params *out,
                               bool *has_dist, struct chaos_err *err)
{
    int r;
    const char *s = NULL;
    if ((r = jv_string(params, pctx, "distribution", false, &s, err)) < 0)
        return r;
    *has_dist = s != NULL;
    if (s) {
        size_t i;
        for (i = 0; i < ARRAY_SIZE(dist_names); i++)
            if (strcmp(s, dist_names[i]) == 0)
                break;
        if (i == ARRAY_SIZE(dist_names))
            return perr(err, pctx, "distribution",
                        "must be \"uniform\", \"normal\", \"pareto\" or \"paretonormal\", "
                        "not '%s'",
                        s);
        out->dist = (enum netem_dist)i;
    }
    s = NULL;
    if ((r = jv_string(params, pctx, "rate", false, &s, err)) < 0)
        return r;
    if (s && (r = netem_rate_parse(s, &out->rate_bytes, err)) < 0) {
        char path[320];
        jv_path(path, sizeof path, pctx, "rate");
        chaos_err_prefix(err, "%s", path);
        return r;
    }
    return 0;
}

/* Combinations, checked as tc checks them, with the reason. */
static int check_combinations(const json_t *params, const char *pctx,
                              const struct netem_params *out, bool has_dist,
                              struct chaos_err *err)
{
    if (out->partition) {
        for (size_t i = 1; netem_keys[i]; i++)
            if (json_object_get(params, netem_keys[i]))
                return perr(err, pctx, netem_keys[i],
                            "cannot be combined with partition (a partition drops every "
                            "packet in scope)");
        return 0;
    }
    if (out->delay_us > NETEM_MAX_DELAY_US)
        return perr(err, pctx, "delay", "at most 60s");
    if (out->jitter_us > NETEM_MAX_JITTER_US)
        return perr(err, pctx, "jitter",
                    "at most 2.147s (the kernel silently caps jitter at 2^31 ns)");
    if (out->jitter_us && !out->delay_us)
        return perr(err, pctx, "jitter", "needs delay (jitter varies the delay)");
    if (out->jitter_us > out->delay_us)
        return perr(err, pctx, "jitter",
                    "is larger than delay; netem would clamp negative delays to 0 and the "
                    "mean delay would not be what you set");
    if (out->delay_corr && !out->jitter_us)
        return perr(err, pctx, "correlation", "needs jitter (it correlates successive delays)");
    if (has_dist && !out->jitter_us)
        return perr(err, pctx, "distribution", "needs jitter (it shapes the delay's spread)");
    if (out->loss_corr && !out->loss)
        return perr(err, pctx, "loss_correlation", "needs loss");
    if (out->ge && json_object_get(params, "loss"))
        return perr(err, pctx, "gilbert_elliott",
                    "replaces loss; give one loss model, not both");
    if (out->duplicate_corr && !out->duplicate)
        return perr(err, pctx, "duplicate_correlation", "needs duplicate");
    if (out->corrupt_corr && !out->corrupt)
        return perr(err, pctx, "corrupt_correlation", "needs corrupt");
    if (out->reorder_corr && !out->reorder)
        return perr(err, pctx, "reorder_correlation", "needs reorder");
    if (out->reorder && !out->delay_us)
        return perr(err, pctx, "reorder",
                    "needs delay (reordering sends some packets at once and delays the rest)");
    if (!out->delay_us && !out->loss && !out->ge && !out->duplicate && !out->corrupt &&
        !out->rate_bytes)
        return chaos_err_set(err, EINVAL,
                             "%s: does nothing; give at least one of delay, loss, "
                             "gilbert_elliott, duplicate, corrupt, rate or partition",
                             pctx);
    return 0;
}

int netem_params_parse(const json_t *params, const char *pctx, struct netem_params *out,
                       struct chaos_err *err)
{
    memset(out, 0, sizeof *out);
    out->limit = NETEM_DEFAULT_LIMIT;
    if (!params)
        return chaos_err_set(err, EINVAL,
                             "%s: required field is missing (give e.g. \"delay\", "
                             "\"loss\" or \"partition\")",
                             pctx);
    int r = jv_expect_object(params, pctx, err);
    if (r < 0 || (r = jv_only_keys(params, pctx, netem_keys, err)) < 0)
        return r;

    if ((r = jv_bool(params, pctx, "partition", false, &out->partition, err)) < 0 ||
        (r = jv_duration_us(params, pctx, "delay", false, &out->delay_us, err)) < 0 ||
        (r = jv_duration_us(params, pctx, "jitter", false, &out->jitter_us, err)) < 0 ||
        (r = pct(params, pctx, "correlation", &out->delay_corr, err)) < 0 ||
        (r = pct(params, pctx, "loss", &out->loss, err)) < 0 ||
        (r = pct(params, pctx, "loss_correlation", &out->loss_corr, err)) < 0 ||
        (r = pct(params, pctx, "duplicate", &out->duplicate, err)) < 0 ||
        (r = pct(params, pctx, "duplicate_correlation", &out->duplicate_corr, err)) < 0 ||
        (r = pct(params, pctx, "corrupt", &out->corrupt, err)) < 0 ||
        (r = pct(params, pctx, "corrupt_correlation", &out->corrupt_corr, err)) < 0 ||
        (r = pct(params, pctx, "reorder", &out->reorder, err)) < 0 ||
        (r = pct(params, pctx, "reorder_correlation", &out->reorder_corr, err)) < 0)
        return r;
    long long limit = out->limit;
    if ((r = jv_int(params, pctx, "limit", false, 1, 1000000, &limit, err)) < 0)
        return r;
    out->limit = (uint32_t)limit;

    bool has_dist = false;
    if ((r = parse_dist_and_rate(params, pctx, out, &has_dist, err)) < 0)
        return r;
    const json_t *ge = json_object_get(params, "gilbert_elliott");
    if (ge && (r = parse_ge(ge, pctx, out, err)) < 0)
        return r;

    return check_combinations(params, pctx, out, has_dist, err);
}

/* ---- encoding ---- */

/* The folder holding tc's distribution tables: Debian puts them under the
 * multiarch lib dir, which libnl does not search. */
static int dist_path(enum netem_dist d, const char *dist_dir, char *buf, size_t size,
                     struct chaos_err *err)
{
    static const char *const dirs[] = {"/usr/lib/x86_64-linux-gnu/tc", "/usr/lib/aarch64-linux-gnu/tc",
                                       "/usr/lib/tc", "/usr/lib64/tc", "/usr/local/lib/tc"};
    struct stat st;
    if (dist_dir) {
        snprintf(buf, size, "%s/%s.dist", dist_dir, dist_names[d]);
        if (stat(buf, &st) == 0)
            return 0;
    } else {
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
            snprintf(buf, size, "%s/%s.dist", dirs[i], dist_names[d]);
            if (stat(buf, &st) == 0)
                return 0;
        }
    }
    return chaos_err_set(err, ENOENT,
                         "distribution \"%s\": table %s.dist not found (it comes with "
                         "iproute2: apt-get install iproute2)",
                         dist_names[d], dist_names[d]);
}

/* Reads a tc distribution table (text: s16 values separated by white space,
 * lines starting with '#' are comments, at most NETEM_DIST_MAX values, as
 * iproute2's get_distribution reads them) into *tab (malloc'd, the caller
 * frees it) and its length into *n. */
#define NETEM_DIST_MAX 16384
static void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

static int read_dist(const char *path, int16_t **tab, size_t *n, struct chaos_err *err)
{
    __attribute__((cleanup(fclosep))) FILE *f = fopen(path, "re");
    if (!f)
        return chaos_err_set(err, errno, "cannot read the distribution table %s: %s", path,
                             strerror(errno));
    __attribute__((cleanup(freep))) int16_t *v = malloc(NETEM_DIST_MAX * sizeof *v);
    if (!v)
        return chaos_err_set(err, ENOMEM, "out of memory");
    size_t k = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        for (char *q = line, *end;; q = end) {
            while (isspace((unsigned char)*q))
                q++;
            if (!*q)
                break;
            errno = 0;
            long x = strtol(q, &end, 10);
            if (end == q || errno || x < INT16_MIN || x > INT16_MAX ||
                !(isspace((unsigned char)*end) || !*end))
                return chaos_err_set(err, EINVAL,
                                     "distribution table %s: \"%.20s\" is not a 16-bit number",
                                     path, q);
            if (k == NETEM_DIST_MAX)
                return chaos_err_set(err, EINVAL,
                                     "distribution table %s: more than %d values", path,
                                     NETEM_DIST_MAX);
            v[k++] = (int16_t)x;
        }
    }
    if (ferror(f))
        return chaos_err_set(err, EIO, "reading the distribution table %s failed", path);
    *tab = steal_pointer(&v);
    *n = k;
    return 0;
}

/* Nanoseconds as the kernel's psched ticks (64 ns each), saturated: what
 * tc_netem_qopt holds. The kernel takes the exact value from the 64-bit
 * attributes we send as well. */
static uint32_t ns_to_ticks(int64_t ns)
{
    int64_t t = ns >> 6;
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* Appends netem's own attributes, each only when its parameter is set (as
 * iproute2's q_netem does). They live inside TCA_OPTIONS, after struct
 * tc_netem_qopt: sch_netem parses them from there. */
static int put_netem_attrs(struct mbuf *b, const struct netem_params *p, const char *dist_dir,
                           struct chaos_err *err)
{
    if (p->delay_corr || p->loss_corr || p->duplicate_corr) {
        struct tc_netem_corr c = {.delay_corr = netem_prob(p->delay_corr),
                                  .loss_corr = netem_prob(p->loss_corr),
                                  .dup_corr = netem_prob(p->duplicate_corr)};
        mbuf_attr(b, TCA_NETEM_CORR, &c, sizeof c);
    }
    if (p->reorder) {
        struct tc_netem_reorder r = {.probability = netem_prob(p->reorder),
                                     .correlation = netem_prob(p->reorder_corr)};
        mbuf_attr(b, TCA_NETEM_REORDER, &r, sizeof r);
    }
    if (p->corrupt) {
        struct tc_netem_corrupt c = {.probability = netem_prob(p->corrupt),
                                     .correlation = netem_prob(p->corrupt_corr)};
        mbuf_attr(b, TCA_NETEM_CORRUPT, &c, sizeof c);
    }
    if (p->ge) {
        /* The kernel loses a packet in the bad state when a random u32
         * exceeds h, so h = 1 - loss_in_bad (tc's "1-h"). */
        struct tc_netem_gemodel ge = {
            .p = netem_prob(p->ge_p),
            .r = netem_prob(p->ge_r),
            .h = UINT32_MAX - netem_prob(p->ge_loss_bad),
            .k1 = netem_prob(p->ge_loss_good),
        };
        size_t loss = mbuf_start(b, TCA_NETEM_LOSS);
        mbuf_attr(b, NETEM_LOSS_GE, &ge, sizeof ge);
        mbuf_end(b, loss);
    }
    /* Delay and jitter in nanoseconds: the tick fields of the qopt would
     * turn 500us into 499.968us, and the kernel prefers these. */
    if (p->delay_us) {
        int64_t ns = p->delay_us * 1000;
        mbuf_attr(b, TCA_NETEM_LATENCY64, &ns, sizeof ns);
    }
    if (p->jitter_us) {
        int64_t ns = p->jitter_us * 1000;
        mbuf_attr(b, TCA_NETEM_JITTER64, &ns, sizeof ns);
    }
    if (p->rate_bytes) {
        struct tc_netem_rate rate = {
            .rate = p->rate_bytes >= UINT32_MAX ? UINT32_MAX : (uint32_t)p->rate_bytes};
        mbuf_attr(b, TCA_NETEM_RATE, &rate, sizeof rate);
        if (p->rate_bytes >= UINT32_MAX) {
            uint64_t r64 = p->rate_bytes;
            mbuf_attr(b, TCA_NETEM_RATE64, &r64, sizeof r64);
        }
    }
    if (p->dist != NETEM_DIST_UNIFORM) {
        char path[512];
        int r = dist_path(p->dist, dist_dir, path, sizeof path, err);
        if (r < 0)
            return r;
        __attribute__((cleanup(freep))) int16_t *tab = NULL;
        size_t n = 0;
        if ((r = read_dist(path, &tab, &n, err)) < 0)
            return r;
        mbuf_attr(b, TCA_NETEM_DELAY_DIST, tab, n * sizeof *tab);
    }
    return 0;
}

int netem_build_request(const struct netem_params *p, int ifindex, uint32_t parent,
                        uint32_t handle, const char *dist_dir, struct nl_msg **out,
                        struct chaos_err *err)
{
    __attribute__((cleanup(mbuf_freep))) struct mbuf b = {0};
    struct nlmsghdr h = {.nlmsg_type = RTM_NEWQDISC};
    mbuf_put(&b, &h, sizeof h);
    struct tcmsg tm = {.tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_handle = handle,
                       .tcm_parent = parent};
    mbuf_put(&b, &tm, sizeof tm);
    mbuf_attr(&b, TCA_KIND, "netem", sizeof "netem");

    /* TCA_OPTIONS is not a proper nest for netem: struct tc_netem_qopt,
     * then netem's attributes, all inside its length. */
    struct tc_netem_qopt q = {.limit = p->limit};
    if (p->partition) {
        q.loss = UINT32_MAX;
    } else {
        q.latency = ns_to_ticks(p->delay_us * 1000);
        q.jitter = ns_to_ticks(p->jitter_us * 1000);
        q.loss = netem_prob(p->loss);
        q.duplicate = netem_prob(p->duplicate);
        /* netem reorders only every gap-th packet; without a gap it never
         * does (iproute2 sets 1 the same way). */
        q.gap = p->reorder ? 1 : 0;
    }
    size_t opts = mbuf_start(&b, TCA_OPTIONS);
    mbuf_put(&b, &q, sizeof q);
    if (!p->partition) {
        int r = put_netem_attrs(&b, p, dist_dir, err);
        if (r < 0)
            return r;
    }
    mbuf_end(&b, opts);
    if (b.oom)
        return chaos_err_set(err, EMSGSIZE, "netem request too large (or out of memory)");
    struct nl_msg *msg = nltc_msg_from(b.p, b.len, NLM_F_CREATE | NLM_F_EXCL);
    if (!msg)
        return chaos_err_set(err, ENOMEM, "out of memory");
    *out = msg;
    return 0;
}

/* ---- describe ---- */

void netem_params_describe(const struct netem_params *p, char *buf, size_t size)
{
    if (!size)
        return;
    buf[0] = '\0';
    if (p->partition) {
        snprintf(buf, size, "partition (drop all)");
        return;
    }
    char d[32];
    const char *sep = "";
    if (p->delay_us) {
        duration_format_us(p->delay_us, d, sizeof d);
        str_append(buf, size, "delay %s", d);
        if (p->jitter_us) {
            duration_format_us(p->jitter_us, d, sizeof d);
            str_append(buf, size, " jitter %s", d);
            if (p->dist != NETEM_DIST_UNIFORM)
                str_append(buf, size, " (%s)", dist_names[p->dist]);
        }
        sep = ", ";
    }
    if (p->loss) {
        str_append(buf, size, "%sloss %g%%", sep, p->loss);
        sep = ", ";
    }
    if (p->ge) {
        str_append(buf, size, "%sloss gilbert-elliott p %g%% r %g%%", sep, p->ge_p, p->ge_r);
        sep = ", ";
    }
    if (p->duplicate) {
        str_append(buf, size, "%sduplicate %g%%", sep, p->duplicate);
        sep = ", ";
    }
    if (p->corrupt) {
        str_append(buf, size, "%scorrupt %g%%", sep, p->corrupt);
        sep = ", ";
    }
    if (p->reorder) {
        str_append(buf, size, "%sreorder %g%%", sep, p->reorder);
        sep = ", ";
    }
    if (p->rate_bytes)
        str_append(buf, size, "%srate %.0f kbit/s", sep, (double)p->rate_bytes * 8 / 1000);
}
