/* The command probe: runs a program (no shell) per sample. Its exit is
 * watched through a pidfd and its stdout through a non-blocking pipe, both on
 * the run's event loop; a timer kills it when it overruns. */
#include "probe_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "duration.h"
#include "jsonv.h"
#include "util.h"

#if !defined(__GLIBC__) || !__GLIBC_PREREQ(2, 36)
#define P_PIDFD ((idtype_t)3)
#endif

#define CMD_OUT_CAP (64 * 1024) /* bytes of stdout kept */
#define CMD_ARGS_MAX 256        /* most argv elements accepted */
#define CMD_ARG_MAX 4096        /* longest argument accepted */
#define CMD_DESC_MAX 512        /* longest description */
#define CMD_TIMEOUT_DEFAULT_MS 5000
#define CMD_TIMEOUT_MAX_MS (3600 * 1000)

extern char **environ;

static const char *const cmd_keys[] = {"argv", "timeout", NULL};
static const char *const cmd_expect_keys[] = {"exit_code", "stdout_contains", "stdout_regex", NULL};

struct cmd_probe {
    char **argv; /* NULL-terminated */
    size_t argc;
    int64_t timeout_ms;
    /* per-sample conditions */
    int *exit_codes; /* NULL: [0] */
    size_t n_exit_codes;
    char *stdout_contains;
    struct probe_regex *stdout_regex;
    char *stdout_regex_src;
    char *desc;
};

struct cmd_sample;

struct cmd_runner {
    struct loop *loop;
    struct cmd_sample *samples; /* in flight */
};

struct cmd_sample {
    struct cmd_sample *prev, *next;
    struct cmd_runner *cr;
    struct probe *ref;
    const struct cmd_probe *cp;
    probe_done_cb done;
    void *arg;
    int64_t t_ms, t0_us;
    pid_t pid;      /* 0 when the program could not be started */
    int pidfd;      /* -1 when none */
    int outfd;      /* read end of the stdout pipe, -1 once closed */
    uint64_t timer; /* the timeout, or the deferred failure */
    bool timed_out;
    char *out; /* the first CMD_OUT_CAP bytes of stdout, NUL-terminated */
    size_t len;
    bool truncated;
    struct sample failed; /* the result when the program could not be started */
};

/* Parsing */

static void cmd_free(void *impl)
{
    struct cmd_probe *cp = impl;
    if (!cp)
        return;
    for (size_t i = 0; cp->argv && i < cp->argc; i++)
        free(cp->argv[i]);
    free(cp->argv);
    free(cp->exit_codes);
    free(cp->stdout_contains);
    probe_regex_free(cp->stdout_regex);
    free(cp->stdout_regex_src);
    free(cp->desc);
    free(cp);
}

static bool needs_quotes(const char *a)
{
    if (!*a)
        return true;
    for (; *a; a++)
        if (!((*a >= 'a' && *a <= 'z') || (*a >= 'A' && *a <= 'Z') || (*a >= '0' && *a <= '9') ||
              strchr("-_./=:,+%@", *a)))
            return true;
    return false;
}

/* "command ./check.sh 'two words'", cut at CMD_DESC_MAX. */
static char *make_desc(const struct cmd_probe *cp)
{
    char *d = malloc(CMD_DESC_MAX + 1);
    if (!d)
        return NULL;
    size_t off = (size_t)snprintf(d, CMD_DESC_MAX + 1, "command");
    for (size_t i = 0; i < cp->argc && off < CMD_DESC_MAX; i++) {
        const char *a = cp->argv[i];
        bool q = needs_quotes(a);
        d[off++] = ' ';
        if (q && off < CMD_DESC_MAX)
            d[off++] = '\'';
        for (; *a && off < CMD_DESC_MAX; a++) {
            unsigned char c = (unsigned char)*a;
            d[off++] = (c < 0x20 || c == 0x7f || c == '\'') ? '?' : (char)c;
        }
        if (q && off < CMD_DESC_MAX)
            d[off++] = '\'';
    }
    if (off >= CMD_DESC_MAX) {
        memcpy(d + CMD_DESC_MAX - 3, "...", 3);
        off = CMD_DESC_MAX;
    }
    d[off] = '\0';
    return d;
}

static int parse_argv(const json_t *obj, struct cmd_probe *cp, struct chaos_err *err)
{
    const json_t *arr;
    int r = jv_array(obj, "probe.command", "argv", true, 1, CMD_ARGS_MAX, &arr, err);
    if (r < 0)
        return r;
    size_t n = json_array_size(arr);
    cp->argv = calloc(n + 1, sizeof *cp->argv);
    if (!cp->argv)
        return chaos_err_set(err, ENOMEM, "probe.command.argv: out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        if (!json_is_string(e))
            return chaos_err_set(err, EINVAL, "probe.command.argv[%zu]: must be a string, not %s",
                                 i, jv_type_name(e));
        const char *s = json_string_value(e);
        size_t len = json_string_length(e);
        if (len == 0)
            return chaos_err_set(err, EINVAL, "probe.command.argv[%zu]: must not be empty", i);
        if (strlen(s) != len)
            return chaos_err_set(err, EINVAL, "probe.command.argv[%zu]: contains a NUL character",
                                 i);
        if (len > CMD_ARG_MAX)
            return chaos_err_set(err, EINVAL, "probe.command.argv[%zu]: longer than %d characters",
                                 i, CMD_ARG_MAX);
        if (!(cp->argv[i] = strdup(s)))
            return chaos_err_set(err, ENOMEM, "probe.command.argv: out of memory");
        cp->argc = i + 1;
    }
    return 0;
}

static int parse_expect(const json_t *expect, struct cmd_probe *cp, struct chaos_err *err)
{
    int r =
        probe_parse_int_list(expect, "exit_code", 0, 255, &cp->exit_codes, &cp->n_exit_codes, err);
    if (r < 0)
        return r;
    const char *s;
    r = expect ? jv_string(expect, "expect", "stdout_contains", false, &s, err) : 0;
    if (r < 0)
        return r;
    if (r > 0 && !(cp->stdout_contains = strdup(s)))
        return chaos_err_set(err, ENOMEM, "expect.stdout_contains: out of memory");
    r = probe_parse_regex(expect, "stdout_regex", &cp->stdout_regex, &s, err);
    if (r < 0)
        return r;
    if (r > 0 && !(cp->stdout_regex_src = strdup(s)))
        return chaos_err_set(err, ENOMEM, "expect.stdout_regex: out of memory");
    return 0;
}

static int cmd_parse(const json_t *obj, const json_t *expect, void **out, struct chaos_err *err)
{
    int r = jv_only_keys(obj, "probe.command", cmd_keys, err);
    if (r < 0)
        return r;
    struct cmd_probe *cp = calloc(1, sizeof *cp);
    if (!cp)
        return chaos_err_set(err, ENOMEM, "probe.command: out of memory");
    cp->timeout_ms = CMD_TIMEOUT_DEFAULT_MS;
    if ((r = parse_argv(obj, cp, err)) < 0)
        goto fail;
    if ((r = jv_duration(obj, "probe.command", "timeout", false, &cp->timeout_ms, err)) < 0)
        goto fail;
    if (cp->timeout_ms < 1 || cp->timeout_ms > CMD_TIMEOUT_MAX_MS) {
        char d[32];
        duration_format(cp->timeout_ms, d, sizeof d);
        r = chaos_err_set(err, ERANGE, "probe.command.timeout: %s is out of range (1ms-1h)", d);
        goto fail;
    }
    if ((r = parse_expect(expect, cp, err)) < 0)
        goto fail;
    if (!(cp->desc = make_desc(cp))) {
        r = chaos_err_set(err, ENOMEM, "probe.command: out of memory");
        goto fail;
    }
    *out = cp;
    return 0;
fail:
    cmd_free(cp);
    return r;
}

static const char *cmd_describe(const void *impl)
{
    const struct cmd_probe *cp = impl;
    return cp->desc;
}

static json_t *cmd_to_json(const void *impl)
{
    const struct cmd_probe *cp = impl;
    json_t *argv = json_array();
    for (size_t i = 0; argv && i < cp->argc; i++) {
        if (json_array_append_new(argv, json_string(cp->argv[i])) < 0) {
            json_decref(argv);
            return NULL;
        }
    }
    char d[32];
    duration_format(cp->timeout_ms, d, sizeof d);
    return argv ? json_pack("{s:o, s:s}", "argv", argv, "timeout", d) : NULL;
}

/* The runner */

static int cmd_runner_new(struct loop *loop, void **out, struct chaos_err *err)
{
    struct cmd_runner *cr = calloc(1, sizeof *cr);
    if (!cr)
        return chaos_err_set(err, ENOMEM, "command probe: out of memory");
    cr->loop = loop;
    *out = cr;
    return 0;
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void kill_child(const struct cmd_sample *s)
{
    /* The child leads its own process group, so this also takes whatever it
     * started. The group id cannot be reused while the child is unreaped. */
    if (kill(-s->pid, SIGKILL) < 0)
        syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
}

/* Reaps the child (blocking until it has exited). Returns 0 with *info set,
 * or a negative errno. */
static int reap(const struct cmd_sample *s, siginfo_t *info)
{
    memset(info, 0, sizeof *info);
    while (waitid(P_PIDFD, (id_t)s->pidfd, info, WEXITED) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* Unhooks s from the loop and the runner, closes its fds and frees it. The
 * child must have been reaped already. */
static void sample_destroy(struct cmd_sample *s)
{
    struct cmd_runner *cr = s->cr;
    if (s->timer)
        loop_cancel_timer(cr->loop, s->timer);
    if (s->pidfd >= 0) {
        loop_del_fd(cr->loop, s->pidfd);
        close(s->pidfd);
    }
    if (s->outfd >= 0) {
        loop_del_fd(cr->loop, s->outfd);
        close(s->outfd);
    }
    if (s->prev)
        s->prev->next = s->next;
    else if (cr->samples == s)
        cr->samples = s->next;
    if (s->next)
        s->next->prev = s->prev;
    probe_free(s->ref);
    free(s->out);
    free(s);
}

static void cmd_runner_free(void *state)
{
    struct cmd_runner *cr = state;
    if (!cr)
        return;
    while (cr->samples) {
        struct cmd_sample *s = cr->samples;
        if (s->pid > 0) {
            siginfo_t info;
            kill_child(s);
            IGNORE_RESULT(reap(s, &info)); /* freeing: no one reads its outcome */
        }
        sample_destroy(s);
    }
    free(cr);
}

/* Reads what stdout has for now; closes the pipe at end of file. */
static void read_output(struct cmd_sample *s)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = read(s->outfd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            loop_del_fd(s->cr->loop, s->outfd);
            close(s->outfd);
            s->outfd = -1;
            return;
        }
        size_t keep = (size_t)n;
        if (s->len + keep > CMD_OUT_CAP) {
            keep = CMD_OUT_CAP - s->len;
            s->truncated = true;
        }
        if (keep) {
            if (!s->out && !(s->out = malloc(CMD_OUT_CAP + 1))) {
                s->truncated = true; /* judged on what we have: nothing */
                continue;
            }
            memcpy(s->out + s->len, chunk, keep);
            s->len += keep;
            s->out[s->len] = '\0';
        }
    }
}

static void on_output(struct loop *loop, int fd, uint32_t events, void *arg)
{
    read_output(arg);
}

static void judge(const struct cmd_sample *s, const siginfo_t *info, int wait_err,
                  struct sample *out)
{
    const struct cmd_probe *cp = s->cp;
    char d[32], q[64];
    if (wait_err) {
        snprintf(out->error, sizeof out->error, "lost the exit status of '%.64s': %s", cp->argv[0],
                 strerror(-wait_err));
        return;
    }
    if (s->timed_out) {
        duration_format(cp->timeout_ms, d, sizeof d);
        snprintf(out->error, sizeof out->error, "timed out after %s", d);
        return;
    }
    if (info->si_code != CLD_EXITED) {
        int sig = info->si_status;
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
        const char *abbrev = sigabbrev_np(sig), *descr = sigdescr_np(sig);
        if (abbrev)
            snprintf(out->error, sizeof out->error, "killed by signal SIG%s (%s)", abbrev,
                     descr ? descr : "?");
        else
#endif
            snprintf(out->error, sizeof out->error, "killed by signal %d", sig);
        return;
    }
    out->status = info->si_status;
    bool code_ok = false;
    if (!cp->exit_codes)
        code_ok = out->status == 0;
    for (size_t i = 0; i < cp->n_exit_codes; i++)
        if (cp->exit_codes[i] == out->status)
            code_ok = true;
    if (!code_ok) {
        char list[96];
        static const int zero[] = {0};
        probe_format_int_list(cp->exit_codes ? cp->exit_codes : zero,
                              cp->exit_codes ? cp->n_exit_codes : 1, list, sizeof list);
        snprintf(out->error, sizeof out->error, "exit code %d not in %s%s", out->status, list,
                 out->status == 127 ? " (127: the program could not be run or was not found)" : "");
        return;
    }
    const char *text = s->out ? s->out : "";
    const char *part = s->truncated ? " (first 64 KiB)" : "";
    if (cp->stdout_contains &&
        !memmem(text, s->len, cp->stdout_contains, strlen(cp->stdout_contains))) {
        probe_quote(cp->stdout_contains, q, sizeof q);
        snprintf(out->error, sizeof out->error, "stdout%s does not contain %s", part, q);
        return;
    }
    if (cp->stdout_regex && !probe_regex_match(cp->stdout_regex, text, s->len)) {
        probe_quote(cp->stdout_regex_src, q, sizeof q);
        snprintf(out->error, sizeof out->error, "stdout%s does not match regex %s", part, q);
        return;
    }
    out->ok = true;
}

/* The pidfd is readable: the child has exited. */
static void on_exit_event(struct loop *loop, int fd, uint32_t events, void *arg)
{
    struct cmd_sample *s = arg;
    siginfo_t info;
    int r = reap(s, &info);
    struct sample out = {.t_ms = s->t_ms, .latency_us = loop_now_us() - s->t0_us, .status = -1};
    /* What it wrote before exiting is in the pipe; a descendant still
     * holding the pipe does not keep the sample waiting. */
    if (s->outfd >= 0)
        read_output(s);
    judge(s, &info, r, &out);
    probe_done_cb done = s->done;
    void *done_arg = s->arg;
    sample_destroy(s);
    done(&out, done_arg);
}

static void on_timeout(struct loop *loop, void *arg)
{
    struct cmd_sample *s = arg;
    s->timer = 0;
    s->timed_out = true;
    kill_child(s); /* the pidfd turns readable once it is dead */
}

static void on_deferred(struct loop *loop, void *arg)
{
    struct cmd_sample *s = arg;
    s->timer = 0;
    struct sample out = s->failed;
    probe_done_cb done = s->done;
    void *done_arg = s->arg;
    sample_destroy(s);
    done(&out, done_arg);
}

static void link_sample(struct cmd_runner *cr, struct cmd_sample *s)
{
    s->next = cr->samples;
    if (cr->samples)
        cr->samples->prev = s;
    cr->samples = s;
}

/* posix_spawnp() with stdin from /dev/null, stdout to outfd, stderr
 * inherited, no other descriptor, default signal handling, own group. */
static int spawn(const struct cmd_probe *cp, int outfd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int r = posix_spawn_file_actions_init(&fa);
    if (r)
        return r;
    if ((r = posix_spawnattr_init(&attr))) {
        posix_spawn_file_actions_destroy(&fa);
        return r;
    }
    sigemptyset(&none);
    sigfillset(&all);
    if (!(r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0)) &&
        !(r = posix_spawn_file_actions_adddup2(&fa, outfd, STDOUT_FILENO)) &&
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
        !(r = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1)) &&
#endif
        !(r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                  POSIX_SPAWN_SETPGROUP)) &&
        !(r = posix_spawnattr_setsigmask(&attr, &none)) &&
        !(r = posix_spawnattr_setsigdefault(&attr, &all)) &&
        !(r = posix_spawnattr_setpgroup(&attr, 0)))
        r = posix_spawnp(pid, cp->argv[0], &fa, &attr, cp->argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return r;
}

static int cmd_start(void *state, const struct probe *p, const void *impl, probe_done_cb done,
                     void *arg, struct chaos_err *err)
{
    struct cmd_runner *cr = state;
    const struct cmd_probe *cp = impl;
    struct loop *loop = cr->loop;
    struct cmd_sample *s = calloc(1, sizeof *s);
    if (!s)
        return chaos_err_set(err, ENOMEM, "command probe: out of memory");
    *s = (struct cmd_sample){.cr = cr,
                             .cp = cp,
                             .done = done,
                             .arg = arg,
                             .pidfd = -1,
                             .outfd = -1,
                             .t_ms = loop_now_ms(),
                             .t0_us = loop_now_us()};
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        free(s);
        return chaos_err_set(err, errno, "command probe: pipe: %s", strerror(errno));
    }
    _cleanup_close_ int wfd = pipefd[1];
    s->outfd = pipefd[0];
    /* Only our end is non-blocking: the child's stdout stays blocking. */
    if (fcntl(s->outfd, F_SETFL, O_NONBLOCK) < 0) {
        int e = errno;
        close(s->outfd);
        free(s);
        return chaos_err_set(err, e, "command probe: fcntl: %s", strerror(e));
    }
    s->ref = probe_ref(p);
    link_sample(cr, s);

    int r = spawn(cp, wfd, &s->pid);
    if (r) {
        /* A failed sample, not a failed start: report it from the loop. */
        s->pid = 0;
        s->failed =
            (struct sample){.t_ms = s->t_ms, .latency_us = loop_now_us() - s->t0_us, .status = -1};
        snprintf(s->failed.error, sizeof s->failed.error, "cannot run '%.96s': %s", cp->argv[0],
                 strerror(r));
        if (!(s->timer = loop_add_timer(loop, loop_now_ms(), on_deferred, s))) {
            int e = errno ? errno : ENOMEM;
            sample_destroy(s);
            return chaos_err_set(err, e, "command probe: cannot arm its timer: %s", strerror(e));
        }
        return 0;
    }
    close(steal_fd(&wfd));

    s->pidfd = pidfd_open_(s->pid);
    if (s->pidfd < 0) {
        int e = errno;
        kill(-s->pid, SIGKILL);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        s->pid = 0;
        sample_destroy(s);
        return chaos_err_set(err, e, "command probe: pidfd_open: %s (Linux 5.3 or later needed)",
                             strerror(e));
    }
    if ((r = loop_add_fd(loop, s->pidfd, EPOLLIN, on_exit_event, s)) < 0 ||
        (r = loop_add_fd(loop, s->outfd, EPOLLIN, on_output, s)) < 0 ||
        !(s->timer = loop_add_timer(loop, loop_now_ms() + cp->timeout_ms, on_timeout, s))) {
        if (r == 0)
            r = errno ? -errno : -ENOMEM; /* the timer could not be armed */
        siginfo_t info;
        kill_child(s);
        IGNORE_RESULT(reap(s, &info)); /* the error below is the one to report */
        sample_destroy(s);
        return chaos_err_set(err, -r, "command probe: cannot watch the child: %s", strerror(-r));
    }
    return 0;
}

const struct probe_ops probe_command_ops = {
    .name = "command",
    .expect_keys = cmd_expect_keys,
    .max_in_flight = 1,
    .parse = cmd_parse,
    .describe = cmd_describe,
    .to_json = cmd_to_json,
    .free = cmd_free,
    .runner_new = cmd_runner_new,
    .runner_free = cmd_runner_free,
    .start = cmd_start,
};
