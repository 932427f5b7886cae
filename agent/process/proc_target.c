#include "proc_target.h"
#include "proc_target_impl.h"
#include "regex_bounded.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonv.h"
#include "proc_stat.h"
#include "util.h"

/* Longest cmdline regex accepted. */
#define PATTERN_MAX 4096

/* Same order as enum selector. */
static const char *const selector_keys[] = {
    "pid", "name", "cmdline", "pidfile", "cgroup", "systemd_unit",
};
#define N_SELECTORS ARRAY_SIZE(selector_keys)
#define SELECTOR_LIST "pid, name, cmdline, pidfile, cgroup, systemd_unit"

/* Unit types systemd knows; a unit name ends in one of them. */
static const char *const unit_suffixes[] = {
    ".service", ".scope", ".slice",  ".socket", ".mount",  ".automount",
    ".swap",    ".timer", ".target", ".path",   ".device",
};

void proc_target_free(struct proc_target *t)
{
    if (!t)
        return;
    if (t->have_re)
        regfree(&t->re);
    free(t->arg);
    free(t);
}

static void proc_target_freep(struct proc_target **t)
{
    proc_target_free(*t);
}
#define _cleanup_target_ __attribute__((cleanup(proc_target_freep)))

/* Compiles t->arg as the cmdline regex; path names the field in errors. */
static int compile_regex(struct proc_target *t, const char *path, struct chaos_err *err)
{
    char why[256];
    /* Nothing to free on failure (POSIX says re is undefined then). */
    if (regex_compile_bounded(&t->re, t->arg, why, sizeof why) != 0)
        return chaos_err_set(err, EINVAL, "%s: bad regular expression '%.200s': %s", path, t->arg,
                             why);
    t->have_re = true;
    return 0;
}

/* A unit name as systemd accepts it: [A-Za-z0-9:_.\\@-] and a known type
 * suffix with something in front of it. */
static int check_unit(const char *u, const char *path, struct chaos_err *err)
{
    size_t len = strlen(u);
    if (len == 0)
        return chaos_err_set(err, EINVAL, "%s: must not be empty", path);
    if (len > 255)
        return chaos_err_set(err, EINVAL, "%s: unit names are at most 255 characters", path);
    for (const char *p = u; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(":_.\\@-", *p))
            return chaos_err_set(err, EINVAL,
                                 "%s: '%s' is not a unit name (allowed: letters, digits, "
                                 "\":_.\\@-\")",
                                 path, u);
    for (size_t i = 0; i < ARRAY_SIZE(unit_suffixes); i++) {
        size_t sl = strlen(unit_suffixes[i]);
        if (len > sl && strcmp(u + len - sl, unit_suffixes[i]) == 0)
            return 0;
    }
    return chaos_err_set(err, EINVAL,
                         "%s: '%s' is not a unit name; give the full name with its type, "
                         "like \"nginx.service\" or \"session-1.scope\"",
                         path, u);
}

/* Turns the "cgroup" field into the absolute directory we read. */
static int cgroup_dir(const char *s, const char *path, char **out, struct chaos_err *err)
{
    if (*s == '\0')
        return chaos_err_set(err, EINVAL, "%s: must not be empty", path);
    if (strlen(s) >= PATH_MAX - sizeof CGROUP_ROOT - 16)
        return chaos_err_set(err, EINVAL, "%s: path is too long", path);
    /* ".." would let a relative path escape the cgroup tree and makes an
     * allow list of cgroups meaningless. */
    const char *p = s;
    while (*p) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return chaos_err_set(err, EINVAL, "%s: '%s' must not contain \"..\"", path, s);
        p += n;
    }
    char *dir = NULL;
    int r = s[0] == '/' ? asprintf(&dir, "%s", s) : asprintf(&dir, CGROUP_ROOT "/%s", s);
    if (r < 0)
        return chaos_err_set(err, ENOMEM, "%s: out of memory", path);
    /* Trailing slashes would only make messages untidy. */
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = '\0';
    *out = dir;
    return 0;
}

/* Reads the "pick" field: "all", a positive integer or "N%". */
static int parse_pick(const json_t *v, const char *path, struct proc_target *t,
                      struct chaos_err *err)
{
    static const char bad[] = "must be \"all\", a positive integer or a percentage like \"25%\"";
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 1)
            return chaos_err_set(err, EINVAL, "%s: %s, not %lld", path, bad, (long long)n);
        if (n > PROC_TARGET_PID_MAX)
            return chaos_err_set(err, ERANGE,
                                 "%s: %lld is more processes than a system can have "
                                 "(at most %d)",
                                 path, (long long)n, PROC_TARGET_PID_MAX);
        t->pick = PICK_COUNT;
        t->pick_n = (unsigned long)n;
        return 0;
    }
    if (!json_is_string(v))
        return chaos_err_set(err, EINVAL, "%s: %s, not %s", path, bad, jv_type_name(v));
    const char *s = json_string_value(v);
    if (strcmp(s, "all") == 0) {
        t->pick = PICK_ALL;
        return 0;
    }
    size_t len = strlen(s), digits = strspn(s, "0123456789");
    if (len < 2 || digits != len - 1 || s[len - 1] != '%' || digits > 3)
        return chaos_err_set(err, EINVAL, "%s: %s, not \"%s\"", path, bad, s);
    unsigned long pct = strtoul(s, NULL, 10);
    if (pct < 1 || pct > 100)
        return chaos_err_set(err, ERANGE, "%s: \"%s\" is out of range (1%%-100%%)", path, s);
    t->pick = PICK_PERCENT;
    t->pick_n = pct;
    return 0;
}

/* Reads the one selector that is set into t. */
static int parse_selector(const json_t *target, const char *ctx, enum selector sel,
                          struct proc_target *t, struct chaos_err *err)
{
    char path[320];
    jv_path(path, sizeof path, ctx, selector_keys[sel]);
    t->sel = sel;
    if (sel == SEL_PID) {
        long long pid;
        int r = jv_int(target, ctx, "pid", true, 1, PROC_TARGET_PID_MAX, &pid, err);
        if (r < 0)
            return r;
        /* The engine protects PID 1 at run time too; saying so here lets
         * `chaos validate` refuse it before anyone runs it. */
        if (pid == 1)
            return chaos_err_set(err, EPERM,
                                 "%s: 1 is init; chaos never signals PID 1 (it would take the "
                                 "whole machine down)",
                                 path);
        t->pid = (pid_t)pid;
        return 0;
    }
    const char *s;
    int r = jv_string(target, ctx, selector_keys[sel], true, &s, err);
    if (r < 0)
        return r;
    switch (sel) {
    case SEL_NAME: {
        size_t len = strlen(s);
        if (len == 0)
            return chaos_err_set(err, EINVAL, "%s: must not be empty", path);
        if (len > 15)
            return chaos_err_set(err, EINVAL,
                                 "%s: '%s' is %zu bytes, but the kernel cuts a process name "
                                 "(/proc/PID/comm) at 15: use '%.15s', or a cmdline regex",
                                 path, s, len, s);
        break;
    }
    case SEL_CMDLINE:
        if (*s == '\0')
            return chaos_err_set(err, EINVAL,
                                 "%s: must not be empty (it would match every "
                                 "process)",
                                 path);
        if (strlen(s) > PATTERN_MAX)
            return chaos_err_set(err, EINVAL, "%s: longer than %d characters", path, PATTERN_MAX);
        break;
    case SEL_PIDFILE:
        if (s[0] != '/')
            return chaos_err_set(err, EINVAL, "%s: must be an absolute path, not '%s'", path, s);
        if (strlen(s) >= PATH_MAX)
            return chaos_err_set(err, EINVAL, "%s: path is too long", path);
        break;
    case SEL_CGROUP:
        return cgroup_dir(s, path, &t->arg, err);
    case SEL_UNIT:
        r = check_unit(s, path, err);
        if (r < 0)
            return r;
        break;
    case SEL_PID:
        break;
    }
    t->arg = strdup(s);
    if (!t->arg)
        return chaos_err_set(err, ENOMEM, "%s: out of memory", path);
    if (sel == SEL_CMDLINE)
        return compile_regex(t, path, err);
    return 0;
}

/* true when dir is the root of a mounted cgroup hierarchy: /sys/fs/cgroup
 * itself, or a folder on another file system than its parent (a v1
 * controller or the hybrid "unified" mount). Reads only stat(2). */
static bool is_cgroup_root(const char *dir)
{
    if (strcmp(dir, CGROUP_ROOT) == 0)
        return true;
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (!slash || slash == parent)
        return false;
    *slash = '\0';
    struct stat a, b;
    return stat(dir, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

/* A cgroup root holds every process not in a child cgroup (in a container
 * or a minimal system: all of them, the caller's shell too), so it is only
 * taken when the target says so. */
static int check_cgroup_root(const json_t *target, const char *ctx, const struct proc_target *t,
                             struct chaos_err *err)
{
    bool allow = false;
    int r = jv_bool(target, ctx, "allow_cgroup_root", false, &allow, err);
    if (r < 0)
        return r;
    char path[320];
    if (r > 0 && t->sel != SEL_CGROUP) {
        jv_path(path, sizeof path, ctx, "allow_cgroup_root");
        return chaos_err_set(err, EINVAL, "%s: only goes with a cgroup selector", path);
    }
    if (t->sel != SEL_CGROUP || allow || !is_cgroup_root(t->arg))
        return 0;
    jv_path(path, sizeof path, ctx, "cgroup");
    return chaos_err_set(err, EPERM,
                         "%s: %s is the root of a cgroup hierarchy: it holds every process not in "
                         "a child cgroup (often the caller's own shell); name a child cgroup, or "
                         "set \"allow_cgroup_root\": true in the target if you mean it",
                         path, t->arg);
}

int proc_target_parse(const json_t *target, const char *ctx, const char *const extra_keys[],
                      struct proc_target **out, struct chaos_err *err)
{
    int r = jv_expect_object(target, ctx, err);
    if (r < 0)
        return r;

    const char *allowed[N_SELECTORS + 3 + 16 + 1];
    size_t na = 0;
    for (size_t i = 0; i < N_SELECTORS; i++)
        allowed[na++] = selector_keys[i];
    allowed[na++] = "pick";
    allowed[na++] = "seed";
    allowed[na++] = "allow_cgroup_root";
    for (size_t i = 0; extra_keys && extra_keys[i]; i++) {
        if (i >= 16)
            return chaos_err_set(err, EINVAL, "%s: internal error: too many extra keys", ctx);
        allowed[na++] = extra_keys[i];
    }
    allowed[na] = NULL;
    r = jv_only_keys(target, ctx, allowed, err);
    if (r < 0)
        return r;

    /* Exactly one selector: two would leave it unclear whether they are
     * meant as "and" or "or", so neither is guessed. */
    size_t n_set = 0;
    enum selector sel = SEL_PID;
    char got[128] = "";
    for (size_t i = 0; i < N_SELECTORS; i++) {
        if (!json_object_get(target, selector_keys[i]))
            continue;
        size_t off = strlen(got);
        snprintf(got + off, sizeof got - off, "%s%s", n_set ? " and " : "", selector_keys[i]);
        sel = (enum selector)i;
        n_set++;
    }
    if (n_set != 1)
        return chaos_err_setctx(err, EINVAL, ctx, "give exactly one of " SELECTOR_LIST " (got %s)",
                       n_set ? got : "none");

    _cleanup_target_ struct proc_target *t = calloc(1, sizeof *t);
    if (!t)
        return chaos_err_set(err, ENOMEM, "%s: out of memory", ctx);
    r = parse_selector(target, ctx, sel, t, err);
    if (r < 0)
        return r;
    if ((r = check_cgroup_root(target, ctx, t, err)) < 0)
        return r;

    t->pick = PICK_ALL;
    const json_t *pick = json_object_get(target, "pick");
    if (pick) {
        char path[320];
        jv_path(path, sizeof path, ctx, "pick");
        r = parse_pick(pick, path, t, err);
        if (r < 0)
            return r;
    }
    long long seed;
    r = jv_int(target, ctx, "seed", false, 0, LLONG_MAX, &seed, err);
    if (r < 0)
        return r;
    if (r > 0) {
        t->have_seed = true;
        t->seed = (uint64_t)seed;
    }
    *out = steal_pointer(&t);
    return 0;
}

int proc_target_dup(const struct proc_target *t, struct proc_target **out, struct chaos_err *err)
{
    _cleanup_target_ struct proc_target *c = calloc(1, sizeof *c);
    if (!c)
        return chaos_err_set(err, ENOMEM, "out of memory");
    *c = *t;
    c->arg = NULL;
    c->have_re = false;
    if (t->arg) {
        c->arg = strdup(t->arg);
        if (!c->arg)
            return chaos_err_set(err, ENOMEM, "out of memory");
    }
    /* A regex_t cannot be copied: compile the same source again. */
    if (t->have_re) {
        int r = compile_regex(c, "target.cmdline", err);
        if (r < 0)
            return r;
    }
    *out = steal_pointer(&c);
    return 0;
}

void proc_target_describe(const struct proc_target *t, char *buf, size_t size)
{
    switch (t->sel) {
    case SEL_PID:
        snprintf(buf, size, "pid %d", (int)t->pid);
        break;
    case SEL_NAME:
        snprintf(buf, size, "name '%s'", t->arg);
        break;
    case SEL_CMDLINE:
        snprintf(buf, size, "cmdline '%s'", t->arg);
        break;
    case SEL_PIDFILE:
        snprintf(buf, size, "pidfile %s", t->arg);
        break;
    case SEL_CGROUP:
        snprintf(buf, size, "cgroup %s", t->arg);
        break;
    case SEL_UNIT:
        snprintf(buf, size, "systemd_unit '%s'", t->arg);
        break;
    }
    size_t len = strlen(buf);
    if (t->pick == PICK_COUNT && len < size)
        snprintf(buf + len, size - len, ", pick %lu", t->pick_n);
    else if (t->pick == PICK_PERCENT && len < size)
        snprintf(buf + len, size - len, ", pick %lu%%", t->pick_n);
}

bool proc_target_picks_all(const struct proc_target *t)
{
    return t->pick == PICK_ALL;
}

int proc_target_seed(const struct proc_target *t, uint64_t *seed, struct chaos_err *err)
{
    if (t->have_seed) {
        *seed = t->seed;
        return 0;
    }
    uint64_t s;
    ssize_t n;
    do
        n = getrandom(&s, sizeof s, 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof s)
        return chaos_err_set(err, n < 0 ? errno : EIO, "cannot draw a pick seed: %s",
                             n < 0 ? strerror(errno) : "short read from getrandom");
    /* JSON integers are signed 64-bit: keep the seed one a scenario can hold. */
    *seed = s & (uint64_t)INT64_MAX;
    return 0;
}

/* ---- picking ---- */

/* splitmix64: tiny, good enough to pick victims, and the same on every
 * platform, so a seed repeats a run anywhere (rand() does not). */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias (bound > 0). */
static uint64_t rand_below(uint64_t *state, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = splitmix64(state);
        if (r >= threshold)
            return r % bound;
    }
}

void proc_target_pick(const struct proc_target *t, uint64_t *rng, struct proc_ent *ents, size_t *n)
{
    size_t have = *n, want = have;
    if (t->pick == PICK_COUNT)
        want = t->pick_n < have ? t->pick_n : have;
    else if (t->pick == PICK_PERCENT)
        want = (have * t->pick_n + 99) / 100; /* rounds up, so at least 1 */
    if (want >= have)
        return;
    /* A partial Fisher-Yates shuffle: the first want slots get a uniform
     * random subset. */
    for (size_t i = 0; i < want; i++) {
        size_t j = i + (size_t)rand_below(rng, have - i);
        struct proc_ent tmp = ents[i];
        ents[i] = ents[j];
        ents[j] = tmp;
    }
    qsort(ents, want, sizeof *ents, proc_ent_cmp_pid);
    *n = want;
}

/* ---- pidfds ---- */

int proc_target_pidfd(const struct proc_ent *e, struct chaos_err *err)
{
    int fd = (int)syscall(SYS_pidfd_open, e->pid, 0);
    if (fd < 0) {
        int e_ = errno;
        if (e_ == ESRCH)
            return -ESRCH;
        if (e_ == ENOSYS)
            return chaos_err_set(err, ENOSYS,
                                 "this kernel has no pidfd_open (Linux 5.3 or later "
                                 "is needed to signal processes safely)");
        /* Without PIDFD_THREAD (Linux 6.9) only a thread-group leader has a
         * pidfd, and a pidfile can hold a thread id. */
        if (e_ == EINVAL)
            return chaos_err_set(err, EINVAL,
                                 "pid %d is a thread, not a process: give the pid of "
                                 "its process (the Tgid in /proc/%d/status)",
                                 (int)e->pid, (int)e->pid);
        return chaos_err_set(err, e_, "pidfd_open(%d): %s", (int)e->pid, strerror(e_));
    }
    /* Only now, with the process pinned by the pidfd, is checking its start
     * time conclusive: if the PID was recycled before pidfd_open, the start
     * time differs; if the process exits after, the pidfd refers to the dead
     * one and signals fail with ESRCH instead of reaching a newcomer. */
    struct proc_ent now;
    char state;
    int r = proc_target_stat(e->pid, &now, &state);
    if (r < 0 || now.start != e->start || proc_state_is_dead(state)) {
        close(fd);
        return -ESRCH;
    }
    return fd;
}

int proc_target_signal(int pidfd, int sig)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
        return -errno;
    return 0;
}
