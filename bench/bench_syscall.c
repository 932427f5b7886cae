/* Benchmark: what a syscall fault costs the calls of a launched workload,
 * against no injection and against strace doing the same job.
 *
 * usage: bench_syscall [rounds = 7] [N calls per run = 20000] [folder = /tmp]
 * The scratch folder (the file opened, the fault's output_dir where the
 * supervisor rewrites "injected", at most every 100 ms) goes under
 * folder: compare /tmp with /dev/shm.
 *
 * The workload is syscall_loop (built beside this file, static): it times N
 * calls with clock_gettime and prints ns/call. Each case runs it, round by
 * round with the order of the methods rotating, as
 *   plain       no injection (posix_spawn of the loop; its opens succeed);
 *   chaos       through the engine, as `chaos run` does: fault_spec_parse of
 *               a "syscall" fault whose target.command is the loop, then
 *               engine_apply (supervisor, seccomp filter, listener), waiting
 *               for the workload's status file, engine_revert;
 *   strace      strace -f -qq -o /dev/null -e trace=openat -e inject=...;
 *   strace-bpf  the same with --seccomp-bpf (strace stops only traced calls).
 * Cases:
 *   getppid, untargeted      fault: openat under DIR fails with EIO
 *   write /dev/null, untarg. the same fault
 *   openat DIR/f, continue   fault: openat under DIR, after 1000000000
 *                            (every call decided by the supervisor: continue)
 *   openat DIR/f, EIO        fault: openat under DIR fails with EIO
 * strace cannot filter by path: its untargeted and continue runs inject
 * openat when=65535 (never reached), its EIO run every openat. Every run's
 * failure count is checked (the EIO cases must fail all N calls, the others
 * none), so the numbers are of runs that did the job. Prints medians of the
 * per-run ns/call and the ratios. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "engine.h"
#include "fault.h"
#include "loop.h"

extern char **environ;

enum method { M_PLAIN, M_CHAOS, M_STRACE, M_STRACE_BPF, M__COUNT };
static const char *const method_names[M__COUNT] = {"plain", "chaos", "strace", "strace-bpf"};

struct bcase {
    const char *title;
    const char *mode;   /* syscall_loop's mode */
    bool fails;         /* every call must fail (else none may) */
    long long after;    /* chaos: params.after; -1 none */
    const char *inject; /* strace's inject= */
    bool attach;        /* (iii): a running loop, attached by pid */
    struct fault_spec *spec;
    double ns[M__COUNT][64];
};

struct bench {
    char dir[PATH_MAX]; /* scratch folder: DIR/f, journal, outputs */
    char loop_exe[PATH_MAX];
    char file[PATH_MAX]; /* DIR/f, the file the open cases open */
    long n;
    bool have_strace, have_bpf;
    struct loop *loop;
    struct engine *engine;
    int seq;
    /* Specs of attach runs: the engine keeps a pointer to each fault's
     * spec until it is freed, so they are freed only at the end. */
    struct fault_spec *used[256];
    size_t n_used;
};

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double t[64];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_dbl);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* Runs argv with stdout into out (NUL-terminated), stderr to /dev/null.
 * Returns its exit status, or -1. */
static int spawn_capture(char *const argv[], char *out, size_t size)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int r = posix_spawn_file_actions_init(&fa);
    if (!r && !(r = posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO)) &&
        !(r = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0)))
        r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    size_t len = 0;
    ssize_t k;
    while (!r && len + 1 < size &&
           ((k = read(p[0], out + len, size - 1 - len)) > 0 || (k < 0 && errno == EINTR)))
        len += k > 0 ? (size_t)k : 0;
    out[len] = '\0';
    close(p[0]);
    if (r)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "ns/call X failed F calls N" into *ns, checking F. */
static int parse_result(const struct bench *b, const struct bcase *c, enum method m,
                        const char *out, double *ns)
{
    long failed = -1, calls = -1, want = c->fails && m != M_PLAIN ? b->n : 0;
    if (sscanf(out, "ns/call %lf failed %ld calls %ld", ns, &failed, &calls) != 3 ||
        calls != b->n || failed != want) {
        fprintf(stderr, "%s, %s: unexpected output '%.120s' (want %ld calls, %ld failed)\n",
                c->title, method_names[m], out, b->n, want);
        return -1;
    }
    return 0;
}

static int run_plain_or_strace(struct bench *b, struct bcase *c, enum method m, double *ns)
{
    char n[32], inject[160], out[512];
    snprintf(n, sizeof n, "%ld", b->n);
    snprintf(inject, sizeof inject, "inject=%s", c->inject);
    char *loop_argv[] = {b->loop_exe, (char *)c->mode, n, b->file, NULL};
    char *st_argv[] = {"strace",
                       "-f",
                       "-qq",
                       "-o",
                       "/dev/null",
                       "-e",
                       "trace=openat",
                       "-e",
                       inject,
                       m == M_STRACE_BPF ? "--seccomp-bpf" : "-f",
                       b->loop_exe,
                       (char *)c->mode,
                       n,
                       b->file,
                       NULL};
    int r = spawn_capture(m == M_PLAIN ? loop_argv : st_argv, out, sizeof out);
    if (r != 0) {
        fprintf(stderr, "%s, %s: exit status %d\n", c->title, method_names[m], r);
        return -1;
    }
    return parse_result(b, c, m, out, ns);
}

static int read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t k = read(fd, buf, size - 1);
    close(fd);
    if (k < 0)
        return -1;
    buf[k] = '\0';
    return 0;
}

/* The spec of the case's fault: launching the loop with output in DIR/out,
 * or attaching to the running loop pid. */
static int make_spec(struct bench *b, struct bcase *c, pid_t pid, struct chaos_err *err)
{
    char n[32], out_dir[PATH_MAX + 8];
    snprintf(n, sizeof n, "%ld", b->n);
    snprintf(out_dir, sizeof out_dir, "%s/out", b->dir);
    json_t *target = c->attach ? json_pack("{s:i}", "pid", (int)pid)
                               : json_pack("{s:[s,s,s,s], s:s}", "command", b->loop_exe, c->mode, n,
                                           b->file, "output_dir", out_dir);
    json_t *params =
        json_pack("{s:[s], s:s, s:s}", "syscalls", "openat", "errno", "EIO", "path_prefix", b->dir);
    int r = -ENOMEM;
    if (target && params && c->after >= 0)
        r = json_object_set_new(params, "after", json_integer(c->after)) < 0 ? -ENOMEM : 0;
    else if (target && params)
        r = 0;
    if (r == 0)
        r = fault_spec_parse("syscall", target, params, c->title, 60000, &c->spec, err);
    else
        chaos_err_set(err, ENOMEM, "out of memory");
    json_decref(target);
    json_decref(params);
    return r;
}

/* Waits up to 60 s for the workload's status file. */
static int wait_status(const char *out_dir, char *status, size_t size)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/status", out_dir);
    for (int i = 0; i < 60000; i++) {
        if (read_small(p, status, size) == 0 && strchr(status, '\n'))
            return 0;
        usleep(1000);
    }
    return -1;
}

static int run_chaos(struct bench *b, struct bcase *c, double *ns)
{
    struct chaos_err err = {0};
    struct engine_fault *f = NULL;
    char name[32], out_dir[PATH_MAX + 8], status[64], out[512], p[PATH_MAX + 16];
    snprintf(name, sizeof name, "s%d", ++b->seq);
    snprintf(out_dir, sizeof out_dir, "%s/out", b->dir);
    if (engine_apply(b->engine, name, c->spec, NULL, NULL, &f, &err) < 0) {
        fprintf(stderr, "%s, chaos: apply: %s\n", c->title, err.msg);
        return -1;
    }
    int r = wait_status(out_dir, status, sizeof status);
    if (engine_revert(b->engine, f, &err) < 0) {
        fprintf(stderr, "%s, chaos: revert: %s\n", c->title, err.msg);
        return -1;
    }
    snprintf(p, sizeof p, "%s/stdout", out_dir);
    if (r < 0 || strcmp(status, "exited 0\n") != 0 || read_small(p, out, sizeof out) < 0) {
        fprintf(stderr, "%s, chaos: workload status '%s'\n", c->title, r < 0 ? "(none)" : status);
        return -1;
    }
    return parse_result(b, c, M_CHAOS, out, ns);
}

/* (iii) The loop started waiting on its stdin, so a tracer can attach. */
struct waiting {
    pid_t pid;
    int in, out; /* its stdin (write end), its stdout (read end) */
};

static int spawn_waiting(struct bench *b, const struct bcase *c, struct waiting *w)
{
    char n[32];
    snprintf(n, sizeof n, "%ld", b->n);
    char *argv[] = {b->loop_exe, (char *)c->mode, n, b->file, "wait", NULL};
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    int r = posix_spawn_file_actions_init(&fa);
    if (!r && !(r = posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO)) &&
        !(r = posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO)))
        r = posix_spawn(&w->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    w->in = in[1];
    w->out = out[0];
    if (r) {
        close(w->in);
        close(w->out);
        return -1;
    }
    return 0;
}

/* Lets the loop run, reads its output to the end and reaps it. */
static int release(struct waiting *w, char *out, size_t size)
{
    int r = write(w->in, "g", 1) == 1 ? 0 : -1;
    close(w->in);
    size_t len = 0;
    ssize_t k;
    while (len + 1 < size &&
           ((k = read(w->out, out + len, size - 1 - len)) > 0 || (k < 0 && errno == EINTR)))
        len += k > 0 ? (size_t)k : 0;
    out[len] = '\0';
    close(w->out);
    int st;
    while (waitpid(w->pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return r == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* TracerPid of pid, or -1. */
static int tracer_of(pid_t pid)
{
    char p[64], buf[4096];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    if (read_small(p, buf, sizeof buf) < 0)
        return -1;
    const char *t = strstr(buf, "TracerPid:");
    return t ? atoi(t + 10) : -1;
}

static int attach_strace(struct bench *b, struct bcase *c, enum method m, struct waiting *w,
                         pid_t *sp)
{
    char inject[160], pid[32];
    snprintf(inject, sizeof inject, "inject=%s", c->inject);
    snprintf(pid, sizeof pid, "%d", (int)w->pid);
    char *argv[] = {"strace",
                    "-f",
                    "-qq",
                    "-o",
                    "/dev/null",
                    "-e",
                    "trace=openat",
                    "-e",
                    inject,
                    m == M_STRACE_BPF ? "--seccomp-bpf" : "-f",
                    "-p",
                    pid,
                    NULL};
    posix_spawn_file_actions_t fa;
    int r = posix_spawn_file_actions_init(&fa);
    if (!r && !(r = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0)))
        r = posix_spawnp(sp, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; !r && i < 10000 && tracer_of(w->pid) <= 0; i++)
        usleep(500);
    (void)b;
    return r || tracer_of(w->pid) <= 0 ? -1 : 0;
}

static int run_attached(struct bench *b, struct bcase *c, enum method m, double *ns)
{
    struct waiting w;
    struct chaos_err err = {0};
    struct engine_fault *f = NULL;
    pid_t sp = 0;
    char out[512], name[32];
    if (spawn_waiting(b, c, &w) < 0)
        return -1;
    int r = 0;
    if (m == M_CHAOS) {
        snprintf(name, sizeof name, "t%d", ++b->seq);
        /* 64 rounds x 2 attach cases fit; were it full, leaking beats a
         * spec freed under the engine. */
        if (c->spec && b->n_used < sizeof b->used / sizeof b->used[0])
            b->used[b->n_used++] = c->spec;
        c->spec = NULL;
        if ((r = make_spec(b, c, w.pid, &err)) == 0)
            r = engine_apply(b->engine, name, c->spec, NULL, NULL, &f, &err);
    } else if (m != M_PLAIN) {
        r = attach_strace(b, c, m, &w, &sp);
    }
    if (r < 0)
        fprintf(stderr, "%s, %s: cannot attach: %s\n", c->title, method_names[m], err.msg);
    int rr = release(&w, out, sizeof out);
    if (f && engine_revert(b->engine, f, &err) < 0) {
        fprintf(stderr, "%s, chaos: revert: %s\n", c->title, err.msg);
        r = -1;
    }
    while (sp > 0 && waitpid(sp, NULL, 0) < 0 && errno == EINTR)
        ;
    if (r < 0 || rr < 0) {
        fprintf(stderr, "%s, %s: the loop failed: '%.120s'\n", c->title, method_names[m], out);
        return -1;
    }
    return parse_result(b, c, m, out, ns);
}

static int run_one(struct bench *b, struct bcase *c, enum method m, double *ns)
{
    if (c->attach)
        return run_attached(b, c, m, ns);
    if (m == M_CHAOS)
        return run_chaos(b, c, ns);
    return run_plain_or_strace(b, c, m, ns);
}

static bool method_on(const struct bench *b, enum method m)
{
    return m == M_PLAIN || m == M_CHAOS || (m == M_STRACE && b->have_strace) ||
           (m == M_STRACE_BPF && b->have_bpf);
}

static void print_row(const struct bench *b, const struct bcase *c, int rounds)
{
    double med[M__COUNT] = {0};
    printf("%-30s", c->title);
    for (int m = 0; m < M__COUNT; m++) {
        if (!method_on(b, (enum method)m)) {
            printf(" %10s", "-");
            continue;
        }
        med[m] = median(c->ns[m], rounds) / 1000.0;
        printf(" %8.3f us", med[m]);
    }
    printf("   %5.2fx", med[M_CHAOS] / med[M_PLAIN]);
    if (b->have_strace)
        printf("  %6.2fx", med[M_STRACE] / med[M_CHAOS]);
    if (b->have_bpf)
        printf("  %6.2fx", med[M_STRACE_BPF] / med[M_CHAOS]);
    printf("\n");
}

static void print_table(const struct bench *b, struct bcase *cases, size_t nc, int rounds)
{
    printf("\nper-call cost, median of %d runs of %ld calls each (syscall_loop, static), in %s\n",
           rounds, b->n, b->dir);
    printf("%-30s %10s %10s %10s %10s   %s\n", "case", "plain", "chaos", "strace", "strace-bpf",
           "chaos/plain  strace/chaos  strace-bpf/chaos");
    for (size_t i = 0; i < nc; i++)
        print_row(b, &cases[i], rounds);
}

static int setup(struct bench *b, const char *self, const char *folder, struct chaos_err *err)
{
    snprintf(b->dir, sizeof b->dir, "%s/chaos-bsys-XXXXXX", folder);
    if (!mkdtemp(b->dir))
        return chaos_err_set(err, errno, "mkdtemp: %s", strerror(errno));
    chmod(b->dir, 0755);
    char exe[PATH_MAX], journal[PATH_MAX + 32];
    snprintf(exe, sizeof exe, "%s", self);
    char *slash = strrchr(exe, '/');
    snprintf(b->loop_exe, sizeof b->loop_exe, "%.*s/syscall_loop", slash ? (int)(slash - exe) : 1,
             slash ? exe : ".");
    if (access(b->loop_exe, X_OK) < 0)
        return chaos_err_set(err, ENOENT, "%s: %s", b->loop_exe, strerror(errno));
    snprintf(b->file, sizeof b->file, "%s/f", b->dir);
    int fd = open(b->file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return chaos_err_set(err, errno, "%s: %s", b->file, strerror(errno));
    close(fd);
    snprintf(journal, sizeof journal, "%s/journal/bench.jsonl", b->dir);
    if (!(b->loop = loop_new()))
        return chaos_err_set(err, ENOMEM, "loop_new failed");
    return engine_new(b->loop, journal, NULL, 0, &b->engine, err);
}

static void probe_strace(struct bench *b)
{
    char out[512];
    char *v[] = {"strace", "-V", NULL};
    b->have_strace = spawn_capture(v, out, sizeof out) == 0;
    char *bpf[] = {"strace", "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "true", NULL};
    b->have_bpf = b->have_strace && spawn_capture(bpf, out, sizeof out) == 0;
    if (!b->have_strace)
        printf("strace not found: its columns are left out (apt-get install strace)\n");
}

static void teardown(struct bench *b, struct bcase *cases, size_t nc)
{
    if (b->engine) {
        engine_revert_all(b->engine);
        engine_free(b->engine);
    }
    loop_free(b->loop);
    for (size_t i = 0; i < nc; i++)
        fault_spec_free(cases[i].spec);
    for (size_t i = 0; i < b->n_used; i++)
        fault_spec_free(b->used[i]);
    if (b->dir[0]) {
        char *rm[] = {"rm", "-rf", b->dir, NULL};
        char out[64];
        spawn_capture(rm, out, sizeof out);
    }
}

static int run_rounds(struct bench *b, struct bcase *cases, size_t nc, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < nc; i++) {
            for (int k = 0; k < M__COUNT; k++) {
                enum method m = (enum method)((k + r) % M__COUNT);
                if (method_on(b, m) && run_one(b, &cases[i], m, &cases[i].ns[m][r]) < 0)
                    return -1;
            }
        }
        fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    long n = argc > 2 ? atol(argv[2]) : 20000;
    if (rounds < 1 || rounds > 64 || n < 1 || n > 60000) {
        fprintf(stderr, "usage: bench_syscall [rounds 1-64] [N calls 1-60000] [folder]\n");
        return 2;
    }
    struct bcase cases[] = {
        {"getppid, untargeted",
         "getppid",
         false,
         -1,
         "openat:error=EIO:when=65535",
         false,
         NULL,
         {{0}}},
        {"write /dev/null, untargeted",
         "devnull",
         false,
         -1,
         "openat:error=EIO:when=65535",
         false,
         NULL,
         {{0}}},
        {"openat DIR/f, decided continue",
         "open",
         false,
         1000000000,
         "openat:error=EIO:when=65535",
         false,
         NULL,
         {{0}}},
        {"openat DIR/f, decided EIO", "open", true, -1, "openat:error=EIO", false, NULL, {{0}}},
        {"attached: getppid, untargeted",
         "getppid",
         false,
         -1,
         "openat:error=EIO:when=65535",
         true,
         NULL,
         {{0}}},
        {"attached: openat DIR/f, EIO", "open", true, -1, "openat:error=EIO", true, NULL, {{0}}},
    };
    size_t nc = sizeof cases / sizeof cases[0];
    struct bench b = {.n = n};
    struct chaos_err err = {0};
    int rc = 1;
    if (setup(&b, argv[0], argc > 3 ? argv[3] : "/tmp", &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        goto out;
    }
    for (size_t i = 0; i < nc; i++)
        if (!cases[i].attach && make_spec(&b, &cases[i], 0, &err) < 0) {
            fprintf(stderr, "spec: %s\n", err.msg);
            goto out;
        }
    probe_strace(&b);
    if (run_rounds(&b, cases, nc, rounds) == 0) {
        print_table(&b, cases, nc, rounds);
        rc = 0;
    }
out:
    teardown(&b, cases, nc);
    return rc;
}
