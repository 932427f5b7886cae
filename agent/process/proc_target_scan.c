/* Resolving a process target: reading /proc, cgroupfs and pidfiles, never
 * blocking and never without a bound on what is read. */
#include "proc_target.h"
#include "proc_target_impl.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    if ((flags & PF_KTHREAD) || proc_state_is_dead(state) || fault_env_is_protected(env, pid))
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
    if (r == -ESRCH || (r == 0 && proc_state_is_dead(state)))
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
    qsort(v.v, v.n, sizeof *v.v, proc_ent_cmp_pid);
    *out = v.v;
    *n = v.n;
    return 0;
}

