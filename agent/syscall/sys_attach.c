/* The engine's side of the tracer (see sys_trace.h): fork it, hear that it
 * attached, end its window, reap it, and after a crash make sure that it
 * has let go of its targets. */
#include "sys_trace.h"
#include "sys_trace_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int sys_trace_tracer_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? -ESRCH : -errno;
    int tracer = -ENOENT;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &tracer) == 1)
            break;
    fclose(f);
    return tracer;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Reads one line from fd within timeout_ms. 0, -ETIMEDOUT, or -EPIPE
 * (the writer closed it: the tracer died). */
static int read_line(int fd, char *buf, size_t size, int timeout_ms)
{
    size_t got = 0;
    int64_t end = mono_ms() + timeout_ms;
    while (got < size - 1) {
        int left = (int)(end - mono_ms());
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return pr < 0 ? -errno : -ETIMEDOUT;
        ssize_t n = read(fd, buf + got, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EPIPE;
        if (buf[got] == '\n')
            break;
        got++;
    }
    buf[got] = '\0';
    return 0;
}

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* The child: nothing of the engine's but the report pipe (as fd 3), no
 * terminal output, then the tracer's life. */
__attribute__((noreturn)) static void child(const struct sys_spec *s,
                                            const struct proc_ent *targets, size_t n,
                                            int64_t deadline_ms, int wfd, pid_t parent)
{
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
        dup2(wfd, 3) < 0 || close_range(4, ~0U, 0) < 0)
        _exit(1);
    sys_tracer_main(s, targets, n, deadline_ms, 3, parent);
}

/* "A n" from the tracer, or its reason for failing. */
static int hear_attached(pid_t pid, int fd, size_t *threads, struct chaos_err *err)
{
    char line[512];
    int r = read_line(fd, line, sizeof line, 10000);
    long long v = 0;
    int off = 0;
    if (r == 0 && sscanf(line, "A %lld", &v) == 1 && v > 0) {
        *threads = (size_t)v;
        return 0;
    }
    if (r == 0 && sscanf(line, "E %lld %n", &v, &off) == 1 && off > 0) {
        reap(pid);
        int e = v > 0 && v < 4096 ? (int)v : EPERM;
        return chaos_err_set(err, e, "target: cannot attach: %s", line + off);
    }
    kill(pid, SIGKILL); /* the kernel detaches whatever it held */
    reap(pid);
    return chaos_err_set(err, EIO, "target: the tracer %s before it had attached",
                         r == -ETIMEDOUT ? "did not answer" : "died");
}

int sys_trace_start(const struct sys_spec *s, const struct proc_ent *targets, size_t n,
                    int64_t deadline_ms, struct sys_trace *out, struct chaos_err *err)
{
#if !defined(__x86_64__)
    (void)s, (void)targets, (void)n, (void)deadline_ms, (void)out;
    return chaos_err_set(err, ENOTSUP, "target: a running process is traced on x86_64 only");
#else
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return chaos_err_set(err, errno, "pipe: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return chaos_err_set(err, e, "fork: %s", strerror(e));
    }
    if (pid == 0)
        child(s, targets, n, deadline_ms, pfd[1], parent);
    close(pfd[1]);
    memset(out, 0, sizeof *out);
    out->fd = pfd[0];
    int r = hear_attached(pid, out->fd, &out->threads, err);
    if (r < 0) {
        close(out->fd);
        out->fd = -1;
        return r;
    }
    /* Our unreaped child: its pid names it until we reap it. */
    if (proc_target_stat(pid, &out->tracer, NULL) < 0)
        out->tracer.pid = pid;
    return 0;
#endif
}

/* Whether a target that is still the same process shows tracer as its
 * tracer; waits up to wait_ms for the kernel to finish detaching. */
static int check_untraced(pid_t tracer, const struct proc_ent *targets, size_t n, int wait_ms,
                          struct chaos_err *err)
{
    int64_t end = mono_ms() + wait_ms;
    for (size_t i = 0; i < n; i++) {
        struct proc_ent now;
        while (proc_target_stat(targets[i].pid, &now, NULL) == 0 && now.start == targets[i].start &&
               sys_trace_tracer_of(targets[i].pid) == tracer) {
            if (mono_ms() >= end)
                return chaos_err_set(err, EBUSY, "pid %d (%s) is still traced by pid %d",
                                     (int)targets[i].pid, targets[i].comm, (int)tracer);
            sleep_ms(10);
        }
    }
    return 0;
}

int sys_trace_stop(struct sys_trace *t, const struct proc_ent *targets, size_t n,
                   struct chaos_err *err)
{
    if (!t->ended) {
        /* Unreaped, so the pid is still our tracer's (a zombie at worst). */
        kill(t->tracer.pid, SIGUSR1);
        char line[128];
        long long v;
        if (t->fd >= 0 && read_line(t->fd, line, sizeof line, SYS_TRACE_DETACH_MS + 3000) == 0 &&
            sscanf(line, "D %lld", &v) == 1)
            t->injected = v;
        else
            kill(t->tracer.pid, SIGKILL); /* hung: the kernel detaches for it */
        reap(t->tracer.pid);
        t->ended = true;
        if (t->fd >= 0)
            close(t->fd);
        t->fd = -1;
    }
    return check_untraced(t->tracer.pid, targets, n, 1000, err);
}

/* Waits for a tracer of a dead engine to go: it got SIGTERM by PDEATHSIG
 * and is detaching; after a second it is told again, after the detach
 * time it is killed. Only a process with the tracer's start time is ever
 * signalled. */
static void wait_gone(const struct proc_ent *tracer)
{
    int64_t start = mono_ms();
    bool told = false;
    for (;;) {
        int fd = proc_target_pidfd(tracer, NULL);
        if (fd < 0)
            return; /* gone, a zombie, or a recycled pid */
        int64_t waited = mono_ms() - start;
        if (waited > SYS_TRACE_DETACH_MS + 2000)
            IGNORE_RESULT(proc_target_signal(fd, SIGKILL));
        else if (waited > 1000 && !told && proc_target_signal(fd, SIGTERM) == 0)
            told = true;
        close(fd);
        if (waited > SYS_TRACE_DETACH_MS + 4000)
            return;
        sleep_ms(20);
    }
}

int sys_trace_recover(const struct proc_ent *tracer, const struct proc_ent *targets, size_t n,
                      struct chaos_err *err)
{
    struct proc_ent found = {0};
    if (tracer && tracer->pid > 0) {
        found = *tracer;
    } else {
        /* Crashed before the tracer was journalled: a tracer of ours is
         * known by its name. */
        for (size_t i = 0; i < n && found.pid == 0; i++) {
            int tp = sys_trace_tracer_of(targets[i].pid);
            struct proc_ent e;
            if (tp > 0 && proc_target_stat(tp, &e, NULL) == 0 &&
                strcmp(e.comm, "chaos-tracer") == 0)
                found = e;
        }
    }
    if (found.pid <= 0)
        return 0;
    wait_gone(&found);
    return check_untraced(found.pid, targets, n, 2000, err);
}
