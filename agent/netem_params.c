#include "netem_params.h"

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
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/route/tc.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/netem.h>

#include "duration.h"
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

int netem_params_parse(const json_t *params, const char *pctx, struct netem_params *out,
                       struct chaos_err *err)
{
    static const char *const keys[] = {
        "partition", "delay",   "jitter",          "correlation", "distribution",
        "loss",      "loss_correlation", "gilbert_elliott", "duplicate",
        "duplicate_correlation", "corrupt", "corrupt_correlation", "reorder",
        "reorder_correlation", "rate", "limit", NULL};
    memset(out, 0, sizeof *out);
    out->limit = NETEM_DEFAULT_LIMIT;
    if (!params)
        return chaos_err_set(err, EINVAL,
                             "%s: required field is missing (give e.g. \"delay\", "
                             "\"loss\" or \"partition\")",
                             pctx);
    int r = jv_expect_object(params, pctx, err);
    if (r < 0 || (r = jv_only_keys(params, pctx, keys, err)) < 0)
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

    const char *s = NULL;
    if ((r = jv_string(params, pctx, "distribution", false, &s, err)) < 0)
        return r;
    bool has_dist = s != NULL;
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
    const json_t *ge = json_object_get(params, "gilbert_elliott");
    if (ge && (r = parse_ge(ge, pctx, out, err)) < 0)
        return r;

    /* Combinations, checked as tc checks them, with the reason. */
    if (out->partition) {
        for (size_t i = 1; keys[i]; i++)
            if (json_object_get(params, keys[i]))
                return perr(err, pctx, keys[i],
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

/* Appends an attribute inside TCA_OPTIONS. libnl puts netem's options last
 * and makes TCA_OPTIONS span to the end of the message (netem reads its
 * nested attributes from there), so growing the message means growing
 * TCA_OPTIONS by as much. */
static int put_option(struct nl_msg *msg, struct nlattr *opts, int type, size_t len,
                      const void *data)
{
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    size_t before = nlh->nlmsg_len;
    /* nla_put may realloc the message: keep opts as an offset. */
    size_t opts_off = (size_t)((char *)opts - (char *)nlh);
    if (nla_put(msg, type, (int)len, data) < 0)
        return -EMSGSIZE;
    nlh = nlmsg_hdr(msg);
    opts = (struct nlattr *)((char *)nlh + opts_off);
    opts->nla_len = (uint16_t)(opts->nla_len + (nlh->nlmsg_len - before));
    return 0;
}

/* Finds TCA_OPTIONS among the request's attributes. */
static struct nlattr *find_options(struct nl_msg *msg)
{
    struct nlmsghdr *nlh = nlmsg_hdr(msg);
    struct nlattr *a;
    int rem;
    nlmsg_for_each_attr(a, nlh, sizeof(struct tcmsg), rem)
    {
        if (nla_type(a) == TCA_OPTIONS)
            return a;
    }
    return NULL;
}

static void qdisc_putp(struct rtnl_qdisc **q)
{
    if (*q)
        rtnl_qdisc_put(*q);
}

int netem_build_request(const struct netem_params *p, int ifindex, uint32_t parent,
                        uint32_t handle, const char *dist_dir, struct nl_msg **out,
                        struct chaos_err *err)
{
    __attribute__((cleanup(qdisc_putp))) struct rtnl_qdisc *q = rtnl_qdisc_alloc();
    if (!q)
        return chaos_err_set(err, ENOMEM, "out of memory");
    rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
    rtnl_tc_set_parent(TC_CAST(q), parent);
    rtnl_tc_set_handle(TC_CAST(q), handle);
    if (rtnl_tc_set_kind(TC_CAST(q), "netem") < 0)
        return chaos_err_set(err, EINVAL, "libnl does not know the netem qdisc");

    /* libnl takes probabilities as the kernel's u32 fractions in an int. */
    rtnl_netem_set_limit(q, (int)p->limit);
    if (p->partition) {
        rtnl_netem_set_loss(q, (int)UINT32_MAX);
    } else {
        if (p->delay_us)
            rtnl_netem_set_delay(q, (int)p->delay_us);
        if (p->jitter_us)
            rtnl_netem_set_jitter(q, (int)p->jitter_us);
        if (p->delay_corr)
            rtnl_netem_set_delay_correlation(q, (int)netem_prob(p->delay_corr));
        if (p->dist != NETEM_DIST_UNIFORM) {
            char path[512];
            int r = dist_path(p->dist, dist_dir, path, sizeof path, err);
            if (r < 0)
                return r;
            if (rtnl_netem_set_delay_distribution(q, path) < 0)
                return chaos_err_set(err, EINVAL, "cannot read the distribution table %s",
                                     path);
        }
        if (p->loss)
            rtnl_netem_set_loss(q, (int)netem_prob(p->loss));
        if (p->loss_corr)
            rtnl_netem_set_loss_correlation(q, (int)netem_prob(p->loss_corr));
        if (p->duplicate)
            rtnl_netem_set_duplicate(q, (int)netem_prob(p->duplicate));
        if (p->duplicate_corr)
            rtnl_netem_set_duplicate_correlation(q, (int)netem_prob(p->duplicate_corr));
        if (p->corrupt)
            rtnl_netem_set_corruption_probability(q, (int)netem_prob(p->corrupt));
        if (p->corrupt_corr)
            rtnl_netem_set_corruption_correlation(q, (int)netem_prob(p->corrupt_corr));
        if (p->reorder)
            rtnl_netem_set_reorder_probability(q, (int)netem_prob(p->reorder));
        if (p->reorder_corr)
            rtnl_netem_set_reorder_correlation(q, (int)netem_prob(p->reorder_corr));
    }

    struct nl_msg *msg = NULL;
    int r = rtnl_qdisc_build_add_request(q, NLM_F_CREATE | NLM_F_EXCL, &msg);
    if (r < 0)
        return chaos_err_set(err, EINVAL, "cannot build the netem request: %s", nl_geterror(r));
    /* libnl 3.7 stretches TCA_OPTIONS over netem's nested attributes and
     * then grows nlmsg_len by as much again: zero bytes after TCA_OPTIONS
     * (past the buffer with a distribution table). Cut the message back. */
    struct nlattr *o = find_options(msg);
    if (o)
        nlmsg_hdr(msg)->nlmsg_len =
            (uint32_t)((char *)o - (char *)nlmsg_hdr(msg)) + NLA_ALIGN(o->nla_len);

    /* What libnl 3.7 cannot say: delay and jitter in nanoseconds (its
     * fields are psched ticks of 64 ns, so 500us would arrive as 499.968us;
     * the kernel prefers the 64-bit attributes), rate and the
     * Gilbert-Elliott model. */
    if (!p->partition && (p->delay_us || p->rate_bytes || p->ge)) {
        struct nlattr *opts = find_options(msg);
        if (!opts) {
            nlmsg_free(msg);
            return chaos_err_set(err, EPROTO, "netem request has no TCA_OPTIONS");
        }
        r = 0;
        if (p->delay_us) {
            int64_t ns = p->delay_us * 1000;
            r = put_option(msg, opts, TCA_NETEM_LATENCY64, sizeof ns, &ns);
        }
        if (r == 0 && p->jitter_us) {
            int64_t ns = p->jitter_us * 1000;
            opts = find_options(msg);
            r = put_option(msg, opts, TCA_NETEM_JITTER64, sizeof ns, &ns);
        }
        if (r == 0 && p->rate_bytes) {
            opts = find_options(msg);
            struct tc_netem_rate rate = {
                .rate = p->rate_bytes >= UINT32_MAX ? UINT32_MAX : (uint32_t)p->rate_bytes};
            r = put_option(msg, opts, TCA_NETEM_RATE, sizeof rate, &rate);
            if (r == 0 && p->rate_bytes >= UINT32_MAX) {
                uint64_t r64 = p->rate_bytes;
                opts = find_options(msg);
                r = put_option(msg, opts, TCA_NETEM_RATE64, sizeof r64, &r64);
            }
        }
        if (r == 0 && p->ge) {
            /* The kernel loses a packet in the bad state when a random
             * u32 exceeds h, so h = 1 - loss_in_bad (tc's "1-h"). */
            struct tc_netem_gemodel ge = {
                .p = netem_prob(p->ge_p),
                .r = netem_prob(p->ge_r),
                .h = UINT32_MAX - netem_prob(p->ge_loss_bad),
                .k1 = netem_prob(p->ge_loss_good),
            };
            opts = find_options(msg);
            size_t opts_off = (size_t)((char *)opts - (char *)nlmsg_hdr(msg));
            size_t before = nlmsg_hdr(msg)->nlmsg_len;
            struct nlattr *loss = nla_nest_start(msg, TCA_NETEM_LOSS);
            if (!loss || nla_put(msg, NETEM_LOSS_GE, sizeof ge, &ge) < 0) {
                r = -EMSGSIZE;
            } else {
                nla_nest_end(msg, loss);
                opts = (struct nlattr *)((char *)nlmsg_hdr(msg) + opts_off);
                opts->nla_len = (uint16_t)(opts->nla_len + (nlmsg_hdr(msg)->nlmsg_len - before));
            }
        }
        if (r < 0) {
            nlmsg_free(msg);
            return chaos_err_set(err, EMSGSIZE, "netem request too large");
        }
    }
    *out = msg;
    return 0;
}

/* ---- describe ---- */

static void add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

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
        add(buf, size, "delay %s", d);
        if (p->jitter_us) {
            duration_format_us(p->jitter_us, d, sizeof d);
            add(buf, size, " jitter %s", d);
            if (p->dist != NETEM_DIST_UNIFORM)
                add(buf, size, " (%s)", dist_names[p->dist]);
        }
        sep = ", ";
    }
    if (p->loss) {
        add(buf, size, "%sloss %g%%", sep, p->loss);
        sep = ", ";
    }
    if (p->ge) {
        add(buf, size, "%sloss gilbert-elliott p %g%% r %g%%", sep, p->ge_p, p->ge_r);
        sep = ", ";
    }
    if (p->duplicate) {
        add(buf, size, "%sduplicate %g%%", sep, p->duplicate);
        sep = ", ";
    }
    if (p->corrupt) {
        add(buf, size, "%scorrupt %g%%", sep, p->corrupt);
        sep = ", ";
    }
    if (p->reorder) {
        add(buf, size, "%sreorder %g%%", sep, p->reorder);
        sep = ", ";
    }
    if (p->rate_bytes)
        add(buf, size, "%srate %.0f kbit/s", sep, (double)p->rate_bytes * 8 / 1000);
}
