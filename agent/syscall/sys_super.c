/* The supervisor (see sys_super.h). The listener is taken from the workload
 * with pidfd_getfd while the workload is held in its own execve (execve is
 * always in the filter), so no syscall of ours between fork and exec needs
 * to pass a file descriptor (sendmsg in the filter deadlocks runc and crun).
 * Notifications before that execve are ours and answered CONTINUE. */
#include "sys_super.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "sys_match.h"
#include "util.h"

#define MAX_PENDING 256
/* Linux 6.6: the workload and the supervisor hand the CPU to each other
 * instead of waking through the scheduler (uapi seccomp.h; Debian 12's
 * headers are older). */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
/* How far the "injected" file may trail the count (see serve). */
#define INJECTED_FLUSH_MS 100

struct pending {
    uint64_t id;
    int64_t due_us; /* CLOCK_MONOTONIC */
    int err_no;
    bool has_retval;
    long long retval;
};

static volatile sig_atomic_t window_over;

static void on_usr1(int sig)
{
    (void)sig;
    window_over = 1;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void respond(int fd, struct seccomp_notif_resp *resp, uint64_t id, int err_no,
                    bool has_retval, long long retval)
{
    memset(resp, 0, sizeof *resp);
    resp->id = id;
    if (err_no)
        resp->error = -err_no;
    else if (has_retval)
        resp->val = retval;
    else
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    /* ENOENT: the caller was interrupted or died; nothing to answer. */
    IGNORE_RESULT(seccomp_notify_respond(fd, resp));
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fputs(text, f);
    if (fclose(f) == 0)
        IGNORE_RESULT(rename(tmp, p));
}

/* Finds the seccomp listener among pid's fds and takes a copy of it. */
static int take_listener(int pidfd, pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    for (int tries = 0; tries < 5000; tries++) {
        DIR *d = opendir(dir);
        if (!d)
            return -1;
        struct dirent *e;
        int found = -1;
        while ((e = readdir(d))) {
            char link[64], target[128];
            snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (strcmp(target, "anon_inode:seccomp notify") == 0) {
                found = atoi(e->d_name);
                break;
            }
        }
        closedir(d);
        if (found >= 0)
            return (int)syscall(SYS_pidfd_getfd, pidfd, found, 0);
        siginfo_t si = {0};
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            return -1; /* it died before loading the filter (reaped by the caller) */
        usleep(1000);
    }
    return -1;
}

/* Closes every fd above 2 but keep. */
static void close_others(int keep)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int dfd = dirfd(d);
    int fds[1024];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 1024) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd > 2 && fd != keep && fd != dfd)
            fds[n++] = fd;
    }
    closedir(d);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* The supervisor's life; never returns. */
/* The filter: execve (to see the workload start) and the chosen syscalls
 * go to the listener, every other call runs untouched. Exported as BPF to
 * *out (the caller frees out->filter). 0, or -1. */
static int build_filter(const struct sys_spec *s, int *nr_execve_out, struct sock_fprog *out)
{
    int nr_execve = seccomp_syscall_resolve_name("execve");
    *nr_execve_out = nr_execve;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    /* A call of another ABI (a 32-bit program the workload runs) is not
     * ours to judge: libseccomp's default would kill the caller. */
    bool ok = ctx && nr_execve >= 0 &&
              seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW) == 0 &&
              seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr_execve, 0) == 0;
    for (size_t i = 0; ok && i < s->n_nr; i++)
        if (s->nr[i] != nr_execve && seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, s->nr[i], 0) != 0)
            ok = false;
    if (!ok) {
        if (ctx)
            seccomp_release(ctx);
        return -1;
    }
    /* The program itself, to load it with flags libseccomp 2.5 lacks. */
    struct sock_fprog prog = {0};
    int mfd = ok ? memfd_create("chaos-syscall-bpf", MFD_CLOEXEC) : -1;
    off_t size = -1;
    if (mfd >= 0 && seccomp_export_bpf(ctx, mfd) == 0)
        size = lseek(mfd, 0, SEEK_END);
    if (size > 0 && size % (off_t)sizeof(struct sock_filter) == 0 && size < 1 << 20) {
        prog.filter = malloc((size_t)size);
        prog.len = (unsigned short)((size_t)size / sizeof(struct sock_filter));
        if (prog.filter && pread(mfd, prog.filter, (size_t)size, 0) != size) {
            free(prog.filter);
            prog.filter = NULL;
        }
    }
    if (mfd >= 0)
        close(mfd);
    seccomp_release(ctx);
    if (!prog.filter)
        return -1;
    *out = prog;
    return 0;
}

/* Forks the workload: it loads the filter (taking a listener) and execs
 * the command. Returns its pid; exits the supervisor when fork fails. */
static pid_t start_workload(const struct sys_spec *s, const struct sock_fprog *fprog, int outfd,
                            int errfd, int ready_fd)
{
    pid_t w = fork();
    if (w < 0) {
        IGNORE_RESULT(write(ready_fd, "E fork", 6));
        _exit(1);
    }
    if (w == 0) {
        close(ready_fd);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGUSR1, SIG_DFL);
        if (dup2(outfd, 1) < 0 || dup2(errfd, 2) < 0)
            _exit(126);
        /* WAIT_KILLABLE_RECV (5.19): once the supervisor holds a call, only
         * a fatal signal interrupts it, as for a call that really blocks in
         * the kernel (an fsync never returns EINTR because of us). */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            _exit(126);
        long lfd = syscall(
            SYS_seccomp, SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, (struct sock_fprog *)fprog);
        if (lfd < 0 && errno == EINVAL)
            lfd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                          (struct sock_fprog *)fprog);
        if (lfd < 0)
            _exit(126);
        execvp(s->argv[0], s->argv);
        _exit(127);
    }
    return w;
}

/* Answers the workload's held calls until no process is left under the
 * filter: injects by the spec during the window, CONTINUE otherwise (also
 * after SIGUSR1 or the deadline). Returns the number injected. */
static long long serve(const struct sys_spec *s, int lfd, struct seccomp_notif *req,
                       struct seccomp_notif_resp *resp, pid_t w, int nr_execve,
                       const char *out_dir, int64_t deadline_ms)
{
    struct sys_counter c;
    sys_counter_init(&c, s);
    struct pending pend[MAX_PENDING];
    size_t npend = 0;
    bool started = false;
    long long reported = -1;
    int64_t flushed_ms = 0;
    for (;;) {
        int64_t now = mono_us();
        for (size_t i = 0; i < npend;) {
            if (pend[i].due_us <= now || window_over) {
                respond(lfd, resp, pend[i].id, pend[i].err_no, pend[i].has_retval, pend[i].retval);
                pend[i] = pend[--npend];
            } else {
                i++;
            }
        }
        /* The count on disk trails by at most INJECTED_FLUSH_MS: rewriting
         * the file after every call cost an injected call ~100 us on ext4,
         * more than the decision itself. */
        int64_t now_ms = now / 1000;
        int timeout = -1;
        if (c.injected != reported) {
            if (window_over || now_ms - flushed_ms >= INJECTED_FLUSH_MS) {
                char t[32];
                snprintf(t, sizeof t, "%lld\n", c.injected);
                write_file(out_dir, SYS_OUT_INJECTED, t);
                reported = c.injected;
                flushed_ms = now_ms;
            } else {
                timeout = (int)(flushed_ms + INJECTED_FLUSH_MS - now_ms);
            }
        }
        for (size_t i = 0; i < npend; i++) {
            int64_t ms = (pend[i].due_us - now + 999) / 1000;
            if (timeout < 0 || ms < timeout)
                timeout = (int)ms;
        }
        if (!window_over && deadline_ms > 0) {
            int64_t left = deadline_ms - real_ms();
            if (left <= 0)
                window_over = 1;
            else if (timeout < 0 || left < timeout)
                timeout = (int)(left > INT_MAX ? INT_MAX : left);
        }
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        if (pfd.revents & (POLLHUP | POLLERR) && !(pfd.revents & POLLIN))
            break; /* no process left under the filter */
        memset(req, 0, sizeof *req);
        if (seccomp_notify_receive(lfd, req) != 0)
            continue; /* ENOENT: the caller went away */
        if (!started) {
            if ((int)req->pid == w && req->data.nr == nr_execve)
                started = true;
            respond(lfd, resp, req->id, 0, false, 0);
            continue;
        }
        if (window_over || !sys_call_selected(s, req->data.nr) ||
            !sys_args_match(s, (pid_t)req->pid, req->data.nr, req->data.args) ||
            seccomp_notify_id_valid(lfd, req->id) != 0 || !sys_decide(s, &c)) {
            respond(lfd, resp, req->id, 0, false, 0);
            continue;
        }
        if (s->delay_us > 0 && npend < MAX_PENDING) {
            pend[npend++] = (struct pending){req->id, mono_us() + s->delay_us, s->err_no,
                                             s->has_retval, s->retval};
            continue;
        }
        respond(lfd, resp, req->id, s->err_no, s->has_retval, s->retval);
    }
    return c.injected;
}

/* The workload's end, for whoever reads its output folder. */
static void write_status(pid_t w, const char *out_dir, long long injected)
{
    char msg[32];
    int st = 0;
    char t[64];
    if (waitpid(w, &st, 0) == w) {
        if (WIFEXITED(st))
            snprintf(t, sizeof t, "exited %d\n", WEXITSTATUS(st));
        else
            snprintf(t, sizeof t, "killed by signal %d\n", WTERMSIG(st));
    } else {
        snprintf(t, sizeof t, "unknown\n");
    }
    snprintf(msg, sizeof msg, "%lld\n", injected);
    write_file(out_dir, SYS_OUT_INJECTED, msg);
    write_file(out_dir, SYS_OUT_STATUS, t);
}

__attribute__((noreturn)) static void supervise(const struct sys_spec *s, const char *out_dir,
                                                int64_t deadline_ms, int ready_fd)
{
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    IGNORE_RESULT(setsid());

    /* Hold nothing of the engine's: not its terminal or output pipe (a
     * caller reading chaos run's output to the end would wait for the
     * workload), not the pipe its guard watches. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
        _exit(1);
    close_others(ready_fd);

    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", out_dir, SYS_OUT_STDOUT);
    int outfd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    snprintf(p, sizeof p, "%s/%s", out_dir, SYS_OUT_STDERR);
    int errfd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    int nr_execve = -1;
    struct sock_fprog prog = {0};
    if (outfd < 0 || errfd < 0 || build_filter(s, &nr_execve, &prog) < 0) {
        IGNORE_RESULT(write(ready_fd, "E cannot build the seccomp filter", 34));
        _exit(1);
    }
    pid_t w = start_workload(s, &prog, outfd, errfd, ready_fd);
    free(prog.filter);
    close(outfd);
    close(errfd);
    int pidfd = (int)syscall(SYS_pidfd_open, w, 0);
    int lfd = pidfd >= 0 ? take_listener(pidfd, w) : -1;
    if (lfd < 0) {
        IGNORE_RESULT(write(ready_fd, "E cannot take the seccomp listener", 34));
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
        _exit(1);
    }
    /* A held call is a round trip workload -> supervisor -> workload; with
     * synchronous wake-ups it costs about a third (20.7 -> 6.8 us on the
     * CI host, docs/benchmarks.md). An
     * older kernel refuses the flag (EINVAL) and wakes the usual way. */
    IGNORE_RESULT(ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP));
    char msg[32];
    int n = snprintf(msg, sizeof msg, "P %d", (int)w);
    IGNORE_RESULT(write(ready_fd, msg, (size_t)n));
    close(ready_fd);

    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    if (seccomp_notify_alloc(&req, &resp) != 0) {
        /* Without buffers we cannot answer: better killed than hung. */
        kill(w, SIGKILL);
        _exit(1);
    }
    long long injected = serve(s, lfd, req, resp, w, nr_execve, out_dir, deadline_ms);
    write_status(w, out_dir, injected);
    _exit(0);
}

/* Whether execvp would find cmd: an executable path, or one in PATH. */
static bool findable(const char *cmd)
{
    if (strchr(cmd, '/'))
        return access(cmd, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char buf[PATH_MAX];
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        /* An empty PATH entry is the current folder. */
        int n = end == p ? snprintf(buf, sizeof buf, "./%s", cmd)
                         : snprintf(buf, sizeof buf, "%.*s/%s", (int)(end - p), p, cmd);
        if (n > 0 && (size_t)n < sizeof buf && access(buf, X_OK) == 0)
            return true;
        if (*end == '\0')
            return false;
        p = end;
    }
}

int sys_super_start(const struct sys_spec *s, const char *out_dir, int64_t deadline_ms,
                    pid_t *super_pid, pid_t *workload_pid, struct chaos_err *err)
{
    if (!findable(s->argv[0]))
        return chaos_err_set(err, ENOENT, "target.command: '%s' is not an executable%s", s->argv[0],
                             strchr(s->argv[0], '/') ? "" : " in PATH");
    if (mkdir(out_dir, 0755) < 0 && errno != EEXIST)
        return chaos_err_set(err, errno, "cannot create %s: %s", out_dir, strerror(errno));
    /* The default lives in /tmp: a folder someone else made there (or a
     * symlink) must not get our files. */
    struct stat sb;
    if (lstat(out_dir, &sb) < 0)
        return chaos_err_set(err, errno, "%s: %s", out_dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 022))
        return chaos_err_set(err, EPERM,
                             "%s: not a folder of ours (it must be a directory owned by uid "
                             "%d, writable by nobody else, not a symlink)",
                             out_dir, (int)geteuid());
    char old[PATH_MAX];
    snprintf(old, sizeof old, "%s/%s", out_dir, SYS_OUT_STATUS);
    IGNORE_RESULT(unlink(old));
    snprintf(old, sizeof old, "%s/%s", out_dir, SYS_OUT_INJECTED);
    IGNORE_RESULT(unlink(old));
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return chaos_err_set(err, errno, "pipe: %s", strerror(errno));
    /* Twice forked: the supervisor is nobody's child of ours, so it outlives
     * us without becoming a zombie we must reap. */
    pid_t mid = fork();
    if (mid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return chaos_err_set(err, e, "fork: %s", strerror(e));
    }
    if (mid == 0) {
        close(pfd[0]);
        pid_t sp = fork();
        if (sp < 0)
            _exit(1);
        if (sp == 0)
            supervise(s, out_dir, deadline_ms, pfd[1]);
        char m[32];
        int n = snprintf(m, sizeof m, "S %d ", (int)sp);
        IGNORE_RESULT(write(pfd[1], m, (size_t)n));
        _exit(0);
    }
    close(pfd[1]);
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
    char buf[256];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(pfd[0], buf + got, sizeof buf - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(pfd[0]);
    buf[got] = '\0';
    int sp = 0, wp = 0;
    const char *e = strstr(buf, "E ");
    if (sscanf(buf, "S %d P %d", &sp, &wp) != 2 || e) {
        return chaos_err_set(err, EIO, "starting the workload '%s' under its supervisor: %s",
                             s->argv[0], e ? e + 2 : "the supervisor died");
    }
    *super_pid = sp;
    *workload_pid = wp;
    return 0;
}
