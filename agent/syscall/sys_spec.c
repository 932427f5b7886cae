/* Parsing and deciding for the syscall kind: names and strace-style classes
 * resolved with libseccomp against the native architecture, errno names,
 * counters (every, after, max), probability with a seed, argument filters,
 * and strace's own --inject words parsed into the same spec. */
#include "sys_spec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "duration.h"
#include "jsonv.h"
#include "proc_target.h"
#include "util.h"

/* ---- syscall tables ---- */

struct argdef {
    const char *name;
    enum sys_argkind kind;
    int idx, len_idx;
};

static const struct argdef argdefs[] = {
    {"open", SYS_ARG_PATH, 0, -1},
    {"creat", SYS_ARG_PATH, 0, -1},
    {"openat", SYS_ARG_PATH, 1, -1},
    {"openat2", SYS_ARG_PATH, 1, -1},
    {"stat", SYS_ARG_PATH, 0, -1},
    {"lstat", SYS_ARG_PATH, 0, -1},
    {"newfstatat", SYS_ARG_PATH, 1, -1},
    {"statx", SYS_ARG_PATH, 1, -1},
    {"access", SYS_ARG_PATH, 0, -1},
    {"faccessat", SYS_ARG_PATH, 1, -1},
    {"faccessat2", SYS_ARG_PATH, 1, -1},
    {"unlink", SYS_ARG_PATH, 0, -1},
    {"unlinkat", SYS_ARG_PATH, 1, -1},
    {"rename", SYS_ARG_PATH, 0, -1},
    {"renameat", SYS_ARG_PATH, 1, -1},
    {"renameat2", SYS_ARG_PATH, 1, -1},
    {"mkdir", SYS_ARG_PATH, 0, -1},
    {"mkdirat", SYS_ARG_PATH, 1, -1},
    {"rmdir", SYS_ARG_PATH, 0, -1},
    {"truncate", SYS_ARG_PATH, 0, -1},
    {"chmod", SYS_ARG_PATH, 0, -1},
    {"fchmodat", SYS_ARG_PATH, 1, -1},
    {"chown", SYS_ARG_PATH, 0, -1},
    {"lchown", SYS_ARG_PATH, 0, -1},
    {"fchownat", SYS_ARG_PATH, 1, -1},
    {"readlink", SYS_ARG_PATH, 0, -1},
    {"readlinkat", SYS_ARG_PATH, 1, -1},
    {"link", SYS_ARG_PATH, 0, -1},
    {"linkat", SYS_ARG_PATH, 1, -1},
    {"symlink", SYS_ARG_PATH, 1, -1},
    {"symlinkat", SYS_ARG_PATH, 2, -1},
    {"utimensat", SYS_ARG_PATH, 1, -1},
    {"chdir", SYS_ARG_PATH, 0, -1},
    {"statfs", SYS_ARG_PATH, 0, -1},
    {"mknod", SYS_ARG_PATH, 0, -1},
    {"mknodat", SYS_ARG_PATH, 1, -1},
    {"read", SYS_ARG_FD, 0, -1},
    {"write", SYS_ARG_FD, 0, -1},
    {"pread64", SYS_ARG_FD, 0, -1},
    {"pwrite64", SYS_ARG_FD, 0, -1},
    {"readv", SYS_ARG_FD, 0, -1},
    {"writev", SYS_ARG_FD, 0, -1},
    {"preadv", SYS_ARG_FD, 0, -1},
    {"pwritev", SYS_ARG_FD, 0, -1},
    {"fsync", SYS_ARG_FD, 0, -1},
    {"fdatasync", SYS_ARG_FD, 0, -1},
    {"ftruncate", SYS_ARG_FD, 0, -1},
    {"fallocate", SYS_ARG_FD, 0, -1},
    {"fstat", SYS_ARG_FD, 0, -1},
    {"lseek", SYS_ARG_FD, 0, -1},
    {"sync_file_range", SYS_ARG_FD, 0, -1},
    {"connect", SYS_ARG_ADDR, 1, 2},
    {"bind", SYS_ARG_ADDR, 1, 2},
    {"sendto", SYS_ARG_ADDR, 4, 5},
};

struct sysclass {
    const char *name;    /* without '%' */
    const char *members; /* space-separated; those absent on this arch are skipped */
};

static const struct sysclass classes[] = {
    {"file", "open creat openat openat2 stat lstat newfstatat statx access faccessat "
             "faccessat2 unlink unlinkat rename renameat renameat2 mkdir mkdirat rmdir "
             "truncate chmod fchmodat chown lchown fchownat readlink readlinkat link linkat "
             "symlink symlinkat utimensat chdir statfs mknod mknodat execve execveat"},
    {"network", "socket socketpair connect bind listen accept accept4 sendto recvfrom "
                "sendmsg recvmsg sendmmsg recvmmsg shutdown getsockopt setsockopt "
                "getsockname getpeername"},
    {"desc", "read write pread64 pwrite64 readv writev preadv pwritev close dup dup2 dup3 "
             "fcntl fsync fdatasync ftruncate fallocate fstat lseek ioctl poll ppoll select "
             "pselect6 epoll_wait epoll_pwait epoll_ctl sendfile splice"},
    {"process", "fork vfork clone clone3 execve execveat exit exit_group wait4 waitid kill "
                "tkill tgkill"},
    {"memory", "mmap munmap mprotect brk mremap madvise msync mlock munlock"},
    {"signal", "rt_sigaction rt_sigprocmask rt_sigreturn rt_sigsuspend rt_sigpending "
               "rt_sigtimedwait sigaltstack kill tkill tgkill pause"},
    {"fsync", "fsync fdatasync sync syncfs sync_file_range msync"},
};

enum sys_argkind sys_argkind_of(int nr, int *idx, int *len_idx)
{
    for (size_t i = 0; i < ARRAY_SIZE(argdefs); i++) {
        int n = seccomp_syscall_resolve_name(argdefs[i].name);
        if (n >= 0 && n == nr) {
            if (idx)
                *idx = argdefs[i].idx;
            if (len_idx)
                *len_idx = argdefs[i].len_idx;
            return argdefs[i].kind;
        }
    }
    return SYS_ARG_NONE;
}

int sys_errno_lookup(const char *name)
{
    for (int e = 1; e < 134; e++) {
        const char *n = strerrorname_np(e);
        if (n && strcasecmp(n, name) == 0)
            return e;
    }
    return 0;
}

/* ---- helpers ---- */

__attribute__((format(printf, 4, 5))) static int field_err(struct chaos_err *err, const char *ctx,
                                                           const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return chaos_err_setctx(err, EINVAL, ctx, "%s: %s", field, msg);
}

static int add_nr(struct sys_spec *s, int nr, const char *ctx, const char *field,
                  struct chaos_err *err)
{
    for (size_t i = 0; i < s->n_nr; i++)
        if (s->nr[i] == nr)
            return 0;
    if (s->n_nr >= SYS_SPEC_MAX_NR)
        return field_err(err, ctx, field, "more than %d syscalls", SYS_SPEC_MAX_NR);
    s->nr[s->n_nr++] = nr;
    return 0;
}

/* One name ("write") or class ("%file") into s. */
static int add_syscall(struct sys_spec *s, const char *name, const char *ctx, const char *field,
                       struct chaos_err *err)
{
    if (name[0] == '%') {
        for (size_t i = 0; i < ARRAY_SIZE(classes); i++) {
            if (strcmp(name + 1, classes[i].name) != 0)
                continue;
            char buf[1024];
            snprintf(buf, sizeof buf, "%s", classes[i].members);
            char *save = NULL;
            for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
                int nr = seccomp_syscall_resolve_name(t);
                if (nr < 0)
                    continue; /* not on this architecture */
                int r = add_nr(s, nr, ctx, field, err);
                if (r < 0)
                    return r;
            }
            return 0;
        }
        return field_err(err, ctx, field,
                         "unknown syscall class '%s' (known: %%file, %%network, %%desc, "
                         "%%process, %%memory, %%signal, %%fsync)",
                         name);
    }
    int nr = seccomp_syscall_resolve_name(name);
    if (nr < 0)
        return field_err(err, ctx, field, "unknown syscall '%s' on this architecture", name);
    return add_nr(s, nr, ctx, field, err);
}

static int parse_errno(const char *v, const char *ctx, const char *field, int *out,
                       struct chaos_err *err)
{
    int e = sys_errno_lookup(v);
    if (e == 0) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (*v && *end == '\0' && errno == 0 && n >= 1 && n <= 4095)
            e = (int)n;
    }
    if (e == 0)
        return field_err(err, ctx, field,
                         "unknown errno '%s' (use a name like EIO, ENOSPC, ECONNREFUSED, "
                         "ETIMEDOUT, EAGAIN, EACCES, or a number 1-4095)",
                         v);
    *out = e;
    return 0;
}

static int parse_ll(const char *v, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

/* strace's when=: first, first+, first+step, first..last, first..last+step. */
static int parse_when(struct sys_spec *s, const char *v, const char *ctx, struct chaos_err *err)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    long long first, last = -1, step = 0;
    char *plus = strchr(buf, '+');
    if (plus) {
        *plus = '\0';
        if (plus[1] == '\0')
            step = 1;
        else if (parse_ll(plus + 1, 1, 1000000000, &step) < 0)
            goto bad;
    }
    char *dots = strstr(buf, "..");
    if (dots) {
        *dots = '\0';
        if (parse_ll(dots + 2, 1, 1000000000, &last) < 0)
            goto bad;
        if (!plus)
            step = 1;
    }
    if (parse_ll(buf, 1, 1000000000, &first) < 0)
        goto bad;
    if (last >= 0 && last < first)
        goto bad;
    s->after = first - 1;
    s->every = step ? step : 1;
    if (last >= 0)
        s->max = (last - first) / s->every + 1;
    else if (!step)
        s->max = 1;
    return 0;
bad:
    return field_err(err, ctx, "params.strace",
                     "when=%s: use FIRST, FIRST+, FIRST+STEP, FIRST..LAST or FIRST..LAST+STEP "
                     "(counting from 1)",
                     v);
}

/* strace's delay_enter=: microseconds, or a number with s/ms/us/ns. */
static int parse_strace_delay(const char *v, int64_t *us)
{
    long long n;
    if (parse_ll(v, 0, 3600000000LL, &n) == 0) {
        *us = n;
        return 0;
    }
    if (strlen(v) > 2 && strcmp(v + strlen(v) - 2, "ns") == 0) {
        char b[64];
        snprintf(b, sizeof b, "%.*s", (int)strlen(v) - 2, v);
        if (parse_ll(b, 0, 3600000000000LL, &n) < 0)
            return -1;
        *us = (n + 999) / 1000;
        return 0;
    }
    return duration_parse_us(v, us, NULL) < 0 ? -1 : 0;
}

/* "inject=write,fsync:error=EIO:when=3+" (the "inject=" is optional). */
static int parse_strace(struct sys_spec *s, const char *expr, const char *ctx,
                        struct chaos_err *err)
{
    const char *field = "params.strace";
    char *buf = strdup(expr);
    if (!buf)
        return chaos_err_set(err, ENOMEM, "out of memory");
    char *p = buf;
    if (strncmp(p, "inject=", 7) == 0)
        p += 7;
    else if (strncmp(p, "fault=", 6) == 0) {
        p += 6;
        s->err_no = ENOSYS; /* strace's fault= defaults to ENOSYS */
    }
    int r = 0;
    char *save = NULL;
    char *set = strtok_r(p, ":", &save);
    if (!set || !*set) {
        r = field_err(err, ctx, field, "'%s': no syscalls (write it as inject=write:error=EIO)",
                      expr);
        goto out;
    }
    char *s2 = NULL;
    for (char *t = strtok_r(set, ",", &s2); t; t = strtok_r(NULL, ",", &s2))
        if ((r = add_syscall(s, t, ctx, field, err)) < 0)
            goto out;
    for (char *opt = strtok_r(NULL, ":", &save); opt; opt = strtok_r(NULL, ":", &save)) {
        char *eq = strchr(opt, '=');
        if (!eq) {
            r = field_err(err, ctx, field, "'%s': expected key=value", opt);
            goto out;
        }
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(opt, "error") == 0) {
            if ((r = parse_errno(v, ctx, field, &s->err_no, err)) < 0)
                goto out;
        } else if (strcmp(opt, "retval") == 0) {
            if (parse_ll(v, LLONG_MIN, LLONG_MAX, &s->retval) < 0) {
                r = field_err(err, ctx, field, "retval=%s: not an integer", v);
                goto out;
            }
            s->has_retval = true;
        } else if (strcmp(opt, "delay_enter") == 0) {
            if (parse_strace_delay(v, &s->delay_us) < 0) {
                r = field_err(err, ctx, field,
                              "delay_enter=%s: not a delay (microseconds, or 10ms, 1s)", v);
                goto out;
            }
        } else if (strcmp(opt, "when") == 0) {
            if ((r = parse_when(s, v, ctx, err)) < 0)
                goto out;
        } else {
            r = field_err(err, ctx, field,
                          "'%s' is not supported (use error=, retval=, delay_enter=, when=)", opt);
            goto out;
        }
    }
out:
    free(buf);
    return r;
}

static int parse_cidr(struct sys_spec *s, const char *v, const char *ctx, struct chaos_err *err)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", v);
    int len = 32;
    char *slash = strchr(buf, '/');
    if (slash) {
        long long n;
        *slash = '\0';
        if (parse_ll(slash + 1, 0, 32, &n) < 0)
            return field_err(err, ctx, "params.addr", "'%s': prefix length must be 0-32", v);
        len = (int)n;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return field_err(err, ctx, "params.addr", "'%s' is not an IPv4 address or CIDR", v);
    s->addr = ntohl(a.s_addr);
    s->prefix_len = len;
    s->has_addr = true;
    return 0;
}

/* target.command (and output_dir): the workload to launch. */
static int parse_command(struct sys_spec *s, const json_t *target, const char *ctx,
                         const char *tctx, struct chaos_err *err)
{
    static const char *const keys[] = {"command", "output_dir", NULL};
    int r = jv_only_keys(target, tctx, keys, err);
    if (r < 0)
        return r;
    const json_t *cmd = json_object_get(target, "command");
    if (json_is_object(cmd))
        cmd = json_object_get(cmd, "argv");
    if (!json_is_array(cmd) || json_array_size(cmd) == 0 || json_array_size(cmd) > 256)
        return field_err(err, ctx, "target.command",
                         "required: a non-empty array of strings (argv), e.g. [\"./ledger\", "
                         "\"--data\", \"/tmp/ledger\"]");
    const json_t *od = json_object_get(target, "output_dir");
    if (od && (!json_is_string(od) || json_string_value(od)[0] != '/'))
        return field_err(err, ctx, "target.output_dir", "must be an absolute path");
    if (od && !(s->output_dir = strdup(json_string_value(od))))
        return chaos_err_set(err, ENOMEM, "out of memory");
    size_t n = json_array_size(cmd);
    s->argv = calloc(n + 1, sizeof *s->argv);
    if (!s->argv)
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(cmd, i);
        if (!json_is_string(a))
            return field_err(err, ctx, "target.command", "[%zu] must be a string, not %s", i,
                             jv_type_name(a));
        if (!(s->argv[i] = strdup(json_string_value(a))))
            return chaos_err_set(err, ENOMEM, "out of memory");
    }
    return 0;
}

/* A running process, selected as the process kind selects (proc_target.h).
 * An explicit pid must be running now: there is nothing to attach to
 * otherwise, and saying so before the run is kinder than failing in it. */
static int parse_running(struct sys_spec *s, const json_t *target, const char *ctx,
                         const char *tctx, struct chaos_err *err)
{
    if (json_object_get(target, "output_dir"))
        return field_err(err, ctx, "target.output_dir",
                         "only with target.command (a running process keeps its own output)");
    int r = proc_target_parse(target, tctx, NULL, &s->running, err);
    if (r < 0)
        return r;
    const json_t *pid = json_object_get(target, "pid");
    if (pid) {
        struct proc_ent e;
        char state = 0;
        long long p = json_integer_value(pid);
        if (proc_target_stat((pid_t)p, &e, &state) < 0 || state == 'Z' || state == 'X')
            return field_err(err, ctx, "target.pid",
                             "no process %lld is running (nothing to attach to)", p);
    }
    return 0;
}

static const char *const running_keys[] = {"pid",    "name",         "cmdline", "pidfile",
                                           "cgroup", "systemd_unit", NULL};

static int parse_target(struct sys_spec *s, const json_t *target, const char *ctx,
                        struct chaos_err *err)
{
    if (!target)
        return field_err(err, ctx, "target",
                         "required: {\"command\": [\"prog\", \"arg\" ...]} to launch a "
                         "program, or a running process: {\"pid\": N} (or name, cmdline, "
                         "pidfile, cgroup, systemd_unit)");
    if (!json_is_object(target))
        return field_err(err, ctx, "target", "must be an object, not %s", jv_type_name(target));
    char tctx[256];
    snprintf(tctx, sizeof tctx, "%s%starget", ctx ? ctx : "", ctx && *ctx ? ": " : "");
    const char *sel = NULL;
    for (size_t i = 0; running_keys[i] && !sel; i++)
        if (json_object_get(target, running_keys[i]))
            sel = running_keys[i];
    if (sel && json_object_get(target, "command"))
        return field_err(err, ctx, "target",
                         "give either command (a program to launch) or a running process "
                         "(pid, name, cmdline, pidfile, cgroup, systemd_unit), not both (got "
                         "command and %s)",
                         sel);
    if (sel)
        return parse_running(s, target, ctx, tctx, err);
    return parse_command(s, target, ctx, tctx, err);
}

void sys_spec_free(struct sys_spec *s)
{
    if (!s)
        return;
    if (s->argv)
        for (char **a = s->argv; *a; a++)
            free(*a);
    free(s->argv);
    free(s->path_prefix);
    free(s->path_glob);
    free(s->output_dir);
    proc_target_free(s->running);
    free(s);
}

static void sys_spec_freep(struct sys_spec **s)
{
    sys_spec_free(*s);
}

/* The action and the counters, in the scenario's words (not strace's). */
static int parse_action(struct sys_spec *s, const json_t *params, const char *pctx, const char *ctx,
                        struct chaos_err *err)
{
    int r;
    const json_t *arr;
    if ((r = jv_array(params, pctx, "syscalls", true, 1, 256, &arr, err)) < 0)
        return r;
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        char field[64];
        snprintf(field, sizeof field, "params.syscalls[%zu]", i);
        if (!json_is_string(v))
            return field_err(err, ctx, field, "must be a syscall name or %%class, not %s",
                             jv_type_name(v));
        if ((r = add_syscall(s, json_string_value(v), ctx, field, err)) < 0)
            return r;
    }
    const char *en = NULL;
    if ((r = jv_string(params, pctx, "errno", false, &en, err)) < 0)
        return r;
    if (en && (r = parse_errno(en, ctx, "params.errno", &s->err_no, err)) < 0)
        return r;
    if (json_object_get(params, "retval")) {
        if ((r = jv_int(params, pctx, "retval", false, LLONG_MIN, LLONG_MAX, &s->retval, err)) < 0)
            return r;
        s->has_retval = true;
    }
    if ((r = jv_duration_us(params, pctx, "delay", false, &s->delay_us, err)) < 0)
        return r;
    if ((r = jv_int(params, pctx, "every", false, 1, 1000000000, &s->every, err)) < 0 ||
        (r = jv_int(params, pctx, "after", false, 0, 1000000000, &s->after, err)) < 0 ||
        (r = jv_int(params, pctx, "max", false, 1, 1000000000, &s->max, err)) < 0)
        return r;
    return 0;
}

/* The argument filters (path_prefix, path_glob, addr, port), each only
 * for syscalls that have such an argument. */
static int parse_filters(struct sys_spec *s, const json_t *params, const char *pctx,
                         const char *ctx, struct chaos_err *err)
{
    int r;
    const char *pp = NULL, *pg = NULL, *addr = NULL;
    if ((r = jv_string(params, pctx, "path_prefix", false, &pp, err)) < 0 ||
        (r = jv_string(params, pctx, "path_glob", false, &pg, err)) < 0 ||
        (r = jv_string(params, pctx, "addr", false, &addr, err)) < 0)
        return r;
    long long port = 0;
    if ((r = jv_int(params, pctx, "port", false, 1, 65535, &port, err)) < 0)
        return r;
    s->port = (int)port;
    if (pp && pp[0] != '/')
        return field_err(err, ctx, "params.path_prefix", "'%s' must be an absolute path", pp);
    if (pg && pg[0] != '/')
        return field_err(err, ctx, "params.path_glob", "'%s' must be an absolute pattern", pg);
    if (addr && (r = parse_cidr(s, addr, ctx, err)) < 0)
        return r;
    for (size_t i = 0; i < s->n_nr; i++) {
        enum sys_argkind k = sys_argkind_of(s->nr[i], NULL, NULL);
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, s->nr[i]);
        const char *nm = name ? name : "?";
        if ((pp || pg) && k != SYS_ARG_PATH && k != SYS_ARG_FD)
            r = field_err(err, ctx, pp ? "params.path_prefix" : "params.path_glob",
                          "%s takes no path or file descriptor; select only path syscalls "
                          "(openat ...) or fd syscalls (write, fsync ...)",
                          nm);
        else if ((addr || port) && k != SYS_ARG_ADDR)
            r = field_err(err, ctx, addr ? "params.addr" : "params.port",
                          "%s has no address; select only connect, bind or sendto", nm);
        free(name);
        if (r < 0)
            return r;
    }
    if ((pp && !(s->path_prefix = strdup(pp))) || (pg && !(s->path_glob = strdup(pg))))
        return chaos_err_set(err, ENOMEM, "out of memory");
    return 0;
}

static int parse_params(struct sys_spec *s, const json_t *params, const char *ctx,
                        struct chaos_err *err)
{
    static const char *const keys[] = {"syscalls",  "errno", "retval", "delay",  "probability",
                                       "seed",      "every", "after",  "max",    "path_prefix",
                                       "path_glob", "addr",  "port",   "strace", NULL};
    char pctx[256];
    snprintf(pctx, sizeof pctx, "%s%sparams", ctx ? ctx : "", ctx && *ctx ? ": " : "");
    if (!params)
        return field_err(err, ctx, "params", "required: {\"syscalls\": [...], \"errno\": ...}");
    int r = jv_expect_object(params, pctx, err);
    if (r < 0 || (r = jv_only_keys(params, pctx, keys, err)) < 0)
        return r;

    const char *strace = NULL;
    if ((r = jv_string(params, pctx, "strace", false, &strace, err)) < 0)
        return r;
    if (strace) {
        static const char *const excl[] = {"syscalls", "errno", "retval", "delay",
                                           "every",    "after", "max"};
        for (size_t i = 0; i < ARRAY_SIZE(excl); i++)
            if (json_object_get(params, excl[i]))
                return field_err(err, ctx, "params.strace",
                                 "cannot be combined with params.%s (say it in the strace "
                                 "expression)",
                                 excl[i]);
        if ((r = parse_strace(s, strace, ctx, err)) < 0)
            return r;
    } else if ((r = parse_action(s, params, pctx, ctx, err)) < 0) {
        return r;
    }
    if (s->err_no && s->has_retval)
        return field_err(err, ctx, strace ? "params.strace" : "params.retval",
                         "give an errno or a return value, not both");
    if (!s->err_no && !s->has_retval && s->delay_us <= 0)
        return field_err(err, ctx, strace ? "params.strace" : "params",
                         "nothing to inject: give errno, retval or delay");
    if (s->delay_us > 60LL * 1000000)
        return field_err(err, ctx, strace ? "params.strace" : "params.delay",
                         "at most 60s per call");

    if ((r = jv_number(params, pctx, "probability", false, 0, 1, &s->probability, err)) < 0)
        return r;
    long long seed = 0;
    if (json_object_get(params, "seed")) {
        if ((r = jv_int(params, pctx, "seed", false, 0, LLONG_MAX, &seed, err)) < 0)
            return r;
        s->seed = (uint64_t)seed;
        s->has_seed = true;
    }

    return parse_filters(s, params, pctx, ctx, err);
}

int sys_spec_parse(const json_t *target, const json_t *params, const char *ctx,
                   struct sys_spec **out, struct chaos_err *err)
{
    __attribute__((cleanup(sys_spec_freep))) struct sys_spec *s = calloc(1, sizeof *s);
    if (!s)
        return chaos_err_set(err, ENOMEM, "out of memory");
    s->probability = 1;
    s->every = 1;
    int r = parse_params(s, params, ctx, err);
    if (r < 0 || (r = parse_target(s, target, ctx, err)) < 0)
        return r;
    *out = steal_pointer(&s);
    return 0;
}

/* ---- deciding ---- */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sys_counter_init(struct sys_counter *c, const struct sys_spec *s)
{
    c->seen = 0;
    c->injected = 0;
    c->rng = s->has_seed ? s->seed : 0x5eed;
}

bool sys_decide(const struct sys_spec *s, struct sys_counter *c)
{
    long long k = ++c->seen;
    if (k <= s->after || (k - s->after - 1) % s->every != 0)
        return false;
    if (s->max && c->injected >= s->max)
        return false;
    if (s->probability < 1) {
        double u = (double)(splitmix(&c->rng) >> 11) / 9007199254740992.0;
        if (u >= s->probability)
            return false;
    }
    c->injected++;
    return true;
}

void sys_spec_plan(const struct sys_spec *s, char *buf, size_t size)
{
    char names[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < s->n_nr && len < sizeof names - 8; i++) {
        char *n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, s->nr[i]);
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? "," : "", n ? n : "?");
        free(n);
    }
    if (len >= sizeof names)
        len = sizeof names - 1;
    char what[96];
    if (s->err_no)
        snprintf(what, sizeof what, "fail with %s", strerrorname_np(s->err_no));
    else if (s->has_retval)
        snprintf(what, sizeof what, "return %lld", s->retval);
    else
        snprintf(what, sizeof what, "let run");
    char delay[32] = "";
    if (s->delay_us > 0) {
        char d[24];
        duration_format_us(s->delay_us, d, sizeof d);
        snprintf(delay, sizeof delay, " after %s", d);
    }
    char most[48] = "";
    if (s->max)
        snprintf(most, sizeof most, ", at most %lld time%s", s->max, s->max == 1 ? "" : "s");
    char target[320];
    if (s->running) {
        char sel[256];
        proc_target_describe(s->running, sel, sizeof sel);
        snprintf(target, sizeof target, "running process %s (ptrace)", sel);
    } else {
        snprintf(target, sizeof target, "command '%s'", s->argv && s->argv[0] ? s->argv[0] : "");
    }
    snprintf(buf, size, "syscalls %s: %s%s; calls %lld+ every %lld%s%s%s, probability %g, %s",
             names, what, delay, s->after + 1, s->every, most, s->path_prefix ? ", under " : "",
             s->path_prefix ? s->path_prefix : "", s->probability, target);
}
