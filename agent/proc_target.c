#include "proc_target.h"
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

/* include/linux/sched.h: set in the flags (field 9 of /proc/PID/stat) of a
 * kernel thread. Not exported to user space headers. */
#define PF_KTHREAD 0x00200000UL

/* Upper bounds on what we read from /proc and cgroupfs: a file larger than
 * this is cut (cmdline) or refused, so a hostile process cannot make us
 * allocate without bound. */
#define CMDLINE_MAX (256 * 1024)
#define CGROUP_FILE_MAX (64 * 1024)
#define PROCS_FILE_MAX (32 * 1024 * 1024)
#define PIDFILE_MAX 4096
#define PATTERN_MAX 4096

#define CGROUP_ROOT "/sys/fs/cgroup"

enum selector { SEL_PID, SEL_NAME, SEL_CMDLINE, SEL_PIDFILE, SEL_CGROUP, SEL_UNIT };

/* Same order as enum selector. */
static const char *const selector_keys[] = {
    "pid", "name", "cmdline", "pidfile", "cgroup", "systemd_unit",
};
#define N_SELECTORS ARRAY_SIZE(selector_keys)
#define SELECTOR_LIST "pid, name, cmdline, pidfile, cgroup, systemd_unit"

enum pick_kind { PICK_ALL, PICK_COUNT, PICK_PERCENT };

struct proc_target {
    enum selector sel;
    pid_t pid;  /* SEL_PID */
    char *arg;  /* name, regex source, pidfile, absolute cgroup dir or unit */
    regex_t re; /* SEL_CMDLINE */
    bool have_re;
    enum pick_kind pick;
    unsigned long pick_n; /* PICK_COUNT: a count; PICK_PERCENT: 1-100 */
    bool have_seed;
    uint64_t seed;
};

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

/* ---- reading /proc ---- */

/* Reads up to cap bytes of path into a NUL-terminated malloc'd buffer.
 * Never blocks: a FIFO (or any file that is not regular) is refused with
 * -EINVAL before it is read, since reading one would hang the run's loop.
 * Returns 0 (*truncated says whether the file was longer) or -errno. */
static int read_file(const char *path, size_t cap, char **out, size_t *len, bool *truncated)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    size_t size = 4096, used = 0;
    _cleanup_free_ char *buf = malloc(size + 1);
    if (!buf)
        return -ENOMEM;
    *truncated = false;
    for (;;) {
        if (used == size) {
            if (size >= cap) {
                *truncated = true;
                break;
            }
            size_t nsize = size * 2 > cap ? cap : size * 2;
            char *nb = realloc(buf, nsize + 1);
            if (!nb)
                return -ENOMEM;
            buf = nb;
            size = nsize;
        }
        ssize_t n = read(fd, buf + used, size - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    buf[used] = '\0';
    *len = used;
    *out = steal_pointer(&buf);
    return 0;
}

/* Reads /proc/PID/stat through the shared parser; *flags gets field 9. */
static int read_stat(pid_t pid, struct proc_ent *out, char *state, unsigned long *flags)
{
    struct proc_stat ps;
    int r = proc_stat_read(pid, &ps);
    if (r < 0)
        return r;
    out->pid = pid;
    out->start = ps.start;
    _Static_assert(sizeof out->comm == sizeof ps.comm, "comm sizes differ");
    memcpy(out->comm, ps.comm, sizeof out->comm);
    if (state)
        *state = ps.state;
    if (flags)
        *flags = ps.flags;
    return 0;
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] < 0x80             ? 1
               : (s[0] & 0xE0) == 0xC0 ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (n <= 1)
        return n;
    uint32_t cp = s[0] & (0x7F >> n);
    /* A NUL ends the loop too: it is no continuation byte. */
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, UTF-16 surrogates and values past Unicode are what
     * JSON parsers (jansson among them) refuse. */
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return n;
}

/* A process name is any bytes but NUL; what we show and journal must be
 * valid UTF-8 (JSON) without control characters (terminals): other bytes
 * become '?'. Matching uses the name as read, before this. */
static void sanitize_comm(char *comm)
{
    unsigned char *p = (unsigned char *)comm;
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

int proc_target_stat(pid_t pid, struct proc_ent *out, char *state)
{
    int r = read_stat(pid, out, state, NULL);
    if (r == 0)
        sanitize_comm(out->comm);
    return r;
}

/* Zombies ('Z') and dead tasks ('X', 'x') cannot be signalled to any effect. */
static bool is_dead(char state)
{
    return state == 'Z' || state == 'X' || state == 'x';
}

/* Whether /proc/PID/cmdline, NULs joined by spaces, matches t's regex. */
static bool cmdline_matches(const struct proc_target *t, pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    _cleanup_free_ char *buf = NULL;
    size_t len;
    bool trunc;
    if (read_file(path, CMDLINE_MAX, &buf, &len, &trunc) < 0)
        return false; /* gone, or unreadable: not a candidate */
    /* The arguments end in a NUL each; the last one is not a separator. */
    while (len > 0 && buf[len - 1] == '\0')
        len--;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[len] = '\0';
    return regexec(&t->re, buf, 0, NULL, 0) == 0;
}

/* Whether the process's name is exactly name. Some kernels escape a
 * backslash, newline, tab and a few more in the name of /proc/PID/stat with
 * a backslash, so a stat name with a backslash in it is checked against
 * /proc/PID/comm, which always has the name as it is. */
static bool name_matches(const char *name, pid_t pid, const char *stat_comm)
{
    if (!strchr(stat_comm, '\\'))
        return strcmp(stat_comm, name) == 0;
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    /* The name ends with the newline comm adds (a name may hold one too). */
    if (buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    return strcmp(buf, name) == 0;
}

/* Whether some line of /proc/PID/cgroup has a path component equal to unit. */
static bool unit_matches(const char *unit, pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    _cleanup_free_ char *buf = NULL;
    size_t len, ulen = strlen(unit);
    bool trunc;
    if (read_file(path, CGROUP_FILE_MAX, &buf, &len, &trunc) < 0)
        return false;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        /* "hierarchy-id:controllers:/path" */
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        for (const char *p = c2 + 1; *p;) {
            while (*p == '/')
                p++;
            size_t n = strcspn(p, "/");
            if (n == ulen && memcmp(p, unit, n) == 0)
                return true;
            p += n;
        }
    }
    return false;
}

/* A growing list of candidates. */
struct ent_vec {
    struct proc_ent *v;
    size_t n, cap;
};

static int vec_push(struct ent_vec *v, const struct proc_ent *e)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 16;
        struct proc_ent *nv = realloc(v->v, ncap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        v->v = nv;
        v->cap = ncap;
    }
    v->v[v->n++] = *e;
    return 0;
}

/* Adds pid to v when it is a live user process that t matches and that is
 * not protected. Processes that vanish meanwhile are simply not added. */
static int consider(const struct proc_target *t, const struct fault_env *env, pid_t pid,
                    bool check_selector, struct ent_vec *v)
{
    struct proc_ent e;
    char state;
    unsigned long flags;
    if (read_stat(pid, &e, &state, &flags) < 0)
        return 0;
    if ((flags & PF_KTHREAD) || is_dead(state) || fault_env_is_protected(env, pid))
        return 0;
    if (check_selector) {
        bool match = false;
        switch (t->sel) {
        case SEL_NAME:
            match = name_matches(t->arg, pid, e.comm);
            break;
        case SEL_CMDLINE:
            match = cmdline_matches(t, pid);
            break;
        case SEL_UNIT:
            match = unit_matches(t->arg, pid);
            break;
        default:
            match = true;
            break;
        }
        if (!match)
            return 0;
    }
    sanitize_comm(e.comm);
    return vec_push(v, &e);
}

/* Parses a decimal pid; returns it or 0 when s is not one. */
static pid_t parse_pid(const char *s, const char **end)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!isdigit((unsigned char)*s))
        return 0;
    char *e;
    errno = 0;
    unsigned long n = strtoul(s, &e, 10);
    if (errno || n < 1 || n > PROC_TARGET_PID_MAX)
        return 0;
    *end = e;
    return (pid_t)n;
}

/* Every numeric entry of /proc is a process (thread group); threads live
 * under /proc/PID/task and are not listed here. */
static int scan_proc(const struct proc_target *t, const struct fault_env *env, struct ent_vec *v,
                     struct chaos_err *err)
{
    DIR *d = opendir("/proc");
    if (!d)
        return chaos_err_set(err, errno, "cannot list /proc: %s", strerror(errno));
    int r = 0;
    for (;;) {
        /* readdir() tells end from error only through errno. */
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            r = errno ? -errno : 0;
            break;
        }
        const char *end;
        pid_t pid = parse_pid(de->d_name, &end);
        if (pid <= 0 || *end != '\0')
            continue;
        r = consider(t, env, pid, true, v);
        if (r < 0)
            break;
    }
    closedir(d);
    if (r < 0)
        return chaos_err_set(err, -r, "cannot list /proc: %s", strerror(-r));
    return 0;
}

/* The processes listed in the cgroup's cgroup.procs (not its children). */
static int scan_cgroup(const struct proc_target *t, const struct fault_env *env, struct ent_vec *v,
                       struct chaos_err *err)
{
    _cleanup_free_ char *path = NULL, *buf = NULL;
    if (asprintf(&path, "%s/cgroup.procs", t->arg) < 0)
        return chaos_err_set(err, ENOMEM, "out of memory");
    size_t len;
    bool trunc;
    int r = read_file(path, PROCS_FILE_MAX, &buf, &len, &trunc);
    if (r == -ENOENT)
        return chaos_err_set(err, ENOENT,
                             "target.cgroup: %s is not a cgroup (it has no "
                             "cgroup.procs)",
                             t->arg);
    if (r < 0)
        return chaos_err_set(err, -r, "target.cgroup: cannot read %s: %s", path, strerror(-r));
    if (trunc)
        return chaos_err_set(err, EFBIG, "target.cgroup: %s lists too many processes", path);
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        const char *end;
        pid_t pid = parse_pid(line, &end);
        if (pid <= 0)
            continue;
        r = consider(t, env, pid, false, v);
        if (r < 0)
            return chaos_err_set(err, -r, "out of memory");
    }
    return 0;
}

/* The one process a pid or pidfile names. Being explicit, a protected or
 * kernel-thread pid is an error rather than a silent non-match. */
static int one_pid(const struct fault_env *env, pid_t pid, struct ent_vec *v, struct chaos_err *err)
{
    if (fault_env_is_protected(env, pid))
        return chaos_err_set(err, EPERM,
                             "target pid %d is protected: chaos never signals PID 1, "
                             "itself, its parent or its guard",
                             (int)pid);
    struct proc_ent e;
    char state;
    unsigned long flags;
    int r = read_stat(pid, &e, &state, &flags);
    if (r == -ESRCH || (r == 0 && is_dead(state)))
        return 0; /* no candidate: the caller reports ESRCH */
    if (r < 0)
        return chaos_err_set(err, -r, "cannot read /proc/%d/stat: %s", (int)pid, strerror(-r));
    if (flags & PF_KTHREAD)
        return chaos_err_set(err, EPERM,
                             "target pid %d is a kernel thread (%s); chaos only "
                             "signals user processes",
                             (int)pid, e.comm);
    sanitize_comm(e.comm);
    r = vec_push(v, &e);
    if (r < 0)
        return chaos_err_set(err, -r, "out of memory");
    return 0;
}

static int read_pidfile(const struct proc_target *t, pid_t *pid, struct chaos_err *err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;
    bool trunc;
    int r = read_file(t->arg, PIDFILE_MAX, &buf, &len, &trunc);
    if (r == -ENOENT)
        return chaos_err_set(err, ESRCH, "target matched no process (pidfile %s does not exist)",
                             t->arg);
    if (r == -EINVAL)
        return chaos_err_set(err, EINVAL,
                             "target.pidfile: %s is not a regular file (a FIFO, device or "
                             "folder); a pidfile is a small regular file holding a pid",
                             t->arg);
    if (r < 0)
        return chaos_err_set(err, -r, "target.pidfile: cannot read %s: %s", t->arg, strerror(-r));
    const char *end;
    pid_t p = parse_pid(buf, &end);
    if (p > 0 && !trunc) {
        while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
            end++;
        if (*end == '\0') {
            *pid = p;
            return 0;
        }
    }
    return chaos_err_set(err, EINVAL,
                         "target.pidfile: %s does not hold a pid (a decimal number "
                         "1-%d)",
                         t->arg, PROC_TARGET_PID_MAX);
}

static int cmp_ent(const void *a, const void *b)
{
    pid_t x = ((const struct proc_ent *)a)->pid, y = ((const struct proc_ent *)b)->pid;
    return (x > y) - (x < y);
}

int proc_target_resolve(const struct proc_target *t, const struct fault_env *env,
                        struct proc_ent **out, size_t *n, struct chaos_err *err)
{
    struct ent_vec v = {0};
    int r;
    switch (t->sel) {
    case SEL_PID:
        r = one_pid(env, t->pid, &v, err);
        break;
    case SEL_PIDFILE: {
        pid_t pid = 0;
        r = read_pidfile(t, &pid, err);
        if (r == 0)
            r = one_pid(env, pid, &v, err);
        break;
    }
    case SEL_CGROUP:
        r = scan_cgroup(t, env, &v, err);
        break;
    default:
        r = scan_proc(t, env, &v, err);
        break;
    }
    if (r == 0 && v.n == 0) {
        char what[PATH_MAX + 64];
        proc_target_describe(t, what, sizeof what);
        r = chaos_err_set(err, ESRCH, "target matched no process (%s)", what);
    }
    if (r < 0) {
        free(v.v);
        return r;
    }
    /* cgroup.procs is not sorted; the pick must see one order for one seed. */
    qsort(v.v, v.n, sizeof *v.v, cmp_ent);
    *out = v.v;
    *n = v.n;
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
    qsort(ents, want, sizeof *ents, cmp_ent);
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
    int r = read_stat(e->pid, &now, &state, NULL);
    if (r < 0 || now.start != e->start || is_dead(state)) {
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
