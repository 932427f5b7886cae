/* The tracer's own life (see sys_trace.h): seize, serve, detach. The
 * engine's side (starting it, ending it, recovery) is in sys_attach.c.
 *
 * Every thread stops at each syscall entry and exit while the window lasts
 * (PTRACE_SYSCALL). A selected call that is to fail is skipped (orig_rax
 * -1) and its return value set at the exit stop; a delayed call is held
 * stopped at its entry until it is due, while the other threads go on.
 * Signal-delivery stops pass the signal on; group-stops are kept with
 * PTRACE_LISTEN, so job control works as without us. */
#include "sys_trace.h"
#include "sys_trace_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sys_match.h"
#include "util.h"

#if defined(__x86_64__)

#define TRACE_OPTS                                                                                 \
    (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK)

struct tracee {
    pid_t tid;
    bool fix; /* at the syscall exit: set the return value to ret */
    long long ret;
    bool held;      /* stopped at a syscall entry until due_us */
    int64_t due_us; /* CLOCK_MONOTONIC */
};

struct tracer {
    const struct sys_spec *s;
    struct sys_counter c;
    struct tracee *t;
    size_t n, cap;
    int sfd; /* signalfd: SIGCHLD, and the signals that end the window */
    int64_t deadline_ms;
    bool over;
};

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

static struct tracee *find(struct tracer *tr, pid_t tid)
{
    for (size_t i = 0; i < tr->n; i++)
        if (tr->t[i].tid == tid)
            return &tr->t[i];
    return NULL;
}

static struct tracee *add(struct tracer *tr, pid_t tid)
{
    struct tracee *t = find(tr, tid);
    if (t)
        return t;
    if (tr->n == tr->cap) {
        size_t cap = tr->cap ? tr->cap * 2 : 64;
        struct tracee *v = realloc(tr->t, cap * sizeof *v);
        if (!v)
            return NULL;
        tr->t = v;
        tr->cap = cap;
    }
    tr->t[tr->n] = (struct tracee){.tid = tid};
    return &tr->t[tr->n++];
}

static void drop(struct tracer *tr, struct tracee *t)
{
    *t = tr->t[--tr->n];
}

/* Resumes t to its next syscall stop, delivering sig (0: none). A tracee
 * that vanished (killed meanwhile) reports its exit to waitpid later. */
static void resume(struct tracee *t, int sig)
{
    IGNORE_RESULT(ptrace(PTRACE_SYSCALL, t->tid, 0, (void *)(long)sig));
}

static void set_reg(pid_t tid, size_t off, long long v)
{
    /* ESRCH: it was killed in the stop; there is nothing to fix then. */
    IGNORE_RESULT(ptrace(PTRACE_POKEUSER, tid, (void *)off, (void *)v));
}

/* The decided call runs now: skipped with the errno or value (fixed at
 * its exit stop), or let run when the spec only delays. */
static void inject(const struct sys_spec *s, struct tracee *t)
{
    if (s->err_no || s->has_retval) {
        set_reg(t->tid, offsetof(struct user_regs_struct, orig_rax), -1);
        t->fix = true;
        t->ret = s->err_no ? -(long long)s->err_no : s->retval;
    }
    resume(t, 0);
}

/* A syscall stop during the window. */
static void on_syscall(struct tracer *tr, struct tracee *t)
{
    struct __ptrace_syscall_info info;
    memset(&info, 0, sizeof info);
    long r = ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof info, &info);
    if (r > 0 && info.op == PTRACE_SYSCALL_INFO_EXIT && t->fix) {
        set_reg(t->tid, offsetof(struct user_regs_struct, rax), t->ret);
        t->fix = false;
    }
    /* Calls of another ABI (int 0x80 from 32-bit code) have other numbers. */
    if (r <= 0 || info.op != PTRACE_SYSCALL_INFO_ENTRY || info.arch != AUDIT_ARCH_X86_64) {
        resume(t, 0);
        return;
    }
    int nr = (int)info.entry.nr;
    unsigned long long args[6];
    for (int i = 0; i < 6; i++)
        args[i] = info.entry.args[i];
    const struct sys_spec *s = tr->s;
    if (!sys_call_selected(s, nr) || !sys_args_match(s, t->tid, nr, args) ||
        !sys_decide(s, &tr->c)) {
        resume(t, 0);
        return;
    }
    if (s->delay_us > 0) {
        t->held = true;
        t->due_us = mono_us() + s->delay_us;
        return;
    }
    inject(s, t);
}

static bool is_stop_signal(int sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* One waitpid report during the window. */
static void on_report(struct tracer *tr, pid_t tid, int st)
{
    struct tracee *t = add(tr, tid); /* a new child may stop before its parent's event */
    if (!t) {
        IGNORE_RESULT(ptrace(PTRACE_DETACH, tid, 0, 0)); /* no memory: leave it alone */
        return;
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
        drop(tr, t);
        return;
    }
    if (!WIFSTOPPED(st))
        return;
    int sig = WSTOPSIG(st), ev = (unsigned)st >> 16;
    if (sig == (SIGTRAP | 0x80)) {
        on_syscall(tr, t);
    } else if (ev == PTRACE_EVENT_STOP) {
        /* A group-stop stays one; an interrupt or a new child's first stop
         * goes on to its next syscall. */
        if (is_stop_signal(sig))
            IGNORE_RESULT(ptrace(PTRACE_LISTEN, tid, 0, 0));
        else
            resume(t, 0);
    } else if (ev == PTRACE_EVENT_CLONE || ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK) {
        unsigned long child = 0;
        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0 && child > 0 && !add(tr, (pid_t)child))
            IGNORE_RESULT(ptrace(PTRACE_DETACH, (pid_t)child, 0, 0));
        resume(find(tr, tid), 0); /* add() may have moved the array */
    } else if (ev) {
        resume(t, 0);
    } else {
        resume(t, sig); /* a signal for the tracee: never swallowed */
    }
}

/* Releases the held calls that are due (all of them once the window is
 * over: a delayed call then runs untouched); returns the ms to the next. */
static int release_due(struct tracer *tr)
{
    int64_t now = mono_us();
    int timeout = -1;
    for (size_t i = 0; i < tr->n; i++) {
        struct tracee *t = &tr->t[i];
        if (!t->held)
            continue;
        if (t->due_us <= now) {
            t->held = false;
            inject(tr->s, t);
            continue;
        }
        int64_t ms = (t->due_us - now + 999) / 1000;
        if (timeout < 0 || ms < timeout)
            timeout = (int)ms;
    }
    return timeout;
}

/* Reads the signals that arrived; SIGCHLD only says "waitpid". */
static void drain_signals(struct tracer *tr)
{
    struct signalfd_siginfo si;
    while (read(tr->sfd, &si, sizeof si) == (ssize_t)sizeof si)
        if (si.ssi_signo != SIGCHLD)
            tr->over = true;
}

/* The window: serve stops until it ends or no tracee is left. */
static void serve(struct tracer *tr)
{
    while (!tr->over && tr->n > 0) {
        int st;
        pid_t tid;
        while ((tid = waitpid(-1, &st, __WALL | WNOHANG)) > 0)
            on_report(tr, tid, st);
        int timeout = release_due(tr);
        if (tr->deadline_ms > 0) {
            int64_t left = tr->deadline_ms - real_ms();
            if (left <= 0)
                break;
            if (timeout < 0 || left < timeout)
                timeout = (int)(left > INT_MAX ? INT_MAX : left);
        }
        struct pollfd pfd = {.fd = tr->sfd, .events = POLLIN};
        if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
            break;
        drain_signals(tr);
    }
    tr->over = true;
}

/* One report while detaching: put right what we changed, pass on the
 * signal, let go. */
static void detach_report(struct tracer *tr, pid_t tid, int st)
{
    struct tracee *t = find(tr, tid);
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
        if (t)
            drop(tr, t);
        return;
    }
    if (!WIFSTOPPED(st))
        return;
    int sig = WSTOPSIG(st), ev = (unsigned)st >> 16, pass = 0;
    if (sig == (SIGTRAP | 0x80)) {
        struct __ptrace_syscall_info info;
        memset(&info, 0, sizeof info);
        if (t && t->fix && ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof info, &info) > 0 &&
            info.op == PTRACE_SYSCALL_INFO_EXIT)
            set_reg(tid, offsetof(struct user_regs_struct, rax), t->ret);
    } else if (ev == PTRACE_EVENT_CLONE || ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK) {
        unsigned long child = 0;
        /* The child is ours too until its first stop, where it is let go;
         * unless that stop came first and it is let go already. */
        if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0 && child > 0 &&
            sys_trace_tracer_of((pid_t)child) == getpid() && add(tr, (pid_t)child))
            t = find(tr, tid);
    } else if (ev == 0) {
        pass = sig; /* a signal-delivery stop: deliver it */
    }
    /* A group-stop stays in effect after the detach: the kernel keeps it. */
    IGNORE_RESULT(ptrace(PTRACE_DETACH, tid, 0, (void *)(long)pass));
    if (t)
        drop(tr, t);
}

/* Stops every tracee and detaches it. Held calls are let go at once and
 * run untouched: the window is over. */
static void detach_all(struct tracer *tr)
{
    for (size_t i = 0; i < tr->n;) {
        struct tracee *t = &tr->t[i];
        if (t->held) {
            IGNORE_RESULT(ptrace(PTRACE_DETACH, t->tid, 0, 0));
            drop(tr, t);
            continue;
        }
        if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0 && errno == ESRCH) {
            drop(tr, t); /* gone, and already reaped */
            continue;
        }
        i++;
    }
    int64_t end = mono_us() + (int64_t)SYS_TRACE_DETACH_MS * 1000;
    while (tr->n > 0) {
        int st;
        pid_t tid;
        while ((tid = waitpid(-1, &st, __WALL | WNOHANG)) > 0)
            detach_report(tr, tid, st);
        if (tid < 0 && errno == ECHILD)
            break;
        int64_t left = (end - mono_us()) / 1000;
        if (tr->n == 0 || left <= 0)
            break;
        struct pollfd pfd = {.fd = tr->sfd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            break;
        struct signalfd_siginfo si;
        while (read(tr->sfd, &si, sizeof si) == (ssize_t)sizeof si)
            ;
    }
}

/* Seizes the threads of pid not seized yet; *added counts the new ones.
 * A thread that exits meanwhile is no error; one traced by someone else is. */
static int seize_threads(struct tracer *tr, pid_t pid, size_t *added, char *why, size_t wsize)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d) {
        int en = errno == ENOENT ? ESRCH : errno;
        snprintf(why, wsize, "pid %d: %s", (int)pid, en == ESRCH ? "exited" : strerror(en));
        return -en;
    }
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d))) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid <= 0 || find(tr, tid))
            continue;
        if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)TRACE_OPTS) < 0) {
            int en = errno;
            if (en == ESRCH)
                continue;
            /* A thread born of one seized already is ours by TRACECLONE. */
            if (en == EPERM && sys_trace_tracer_of(tid) == getpid()) {
                r = add(tr, tid) ? 0 : -ENOMEM;
                continue;
            }
            int other = sys_trace_tracer_of(tid);
            if (other > 0)
                snprintf(why, wsize, "pid %d (thread %d) is traced already by pid %d", (int)pid,
                         (int)tid, other);
            else
                snprintf(why, wsize, "pid %d (thread %d): PTRACE_SEIZE: %s", (int)pid, (int)tid,
                         strerror(en));
            r = -en;
            break;
        }
        /* Out of memory, the thread stays seized but unknown: the tracer
         * gives up, and its exit detaches it. An INTERRUPT that fails
         * (ESRCH) is a thread exiting: its exit is reported to waitpid. */
        if (!add(tr, tid))
            r = -ENOMEM;
        else
            IGNORE_RESULT(ptrace(PTRACE_INTERRUPT, tid, 0, 0));
        (*added)++;
    }
    closedir(d);
    return r;
}

/* Seizes every thread of every target, listing each /proc/PID/task again
 * until a pass finds no new thread (threads started meanwhile). A target
 * that has exited since it was resolved is left out, as the process kind
 * leaves it out; none left is an error. */
static int seize_all(struct tracer *tr, const struct proc_ent *targets, size_t n, char *why,
                     size_t wsize)
{
    size_t seized = 0;
    for (size_t i = 0; i < n; i++) {
        struct proc_ent now;
        if (proc_target_stat(targets[i].pid, &now, NULL) < 0 || now.start != targets[i].start)
            continue;
        size_t added, total = 0;
        int passes = 0, r;
        do {
            added = 0;
            r = seize_threads(tr, targets[i].pid, &added, why, wsize);
            total += added;
        } while (r == 0 && added > 0 && ++passes < 100);
        /* ESRCH: it exited meanwhile; threads seized before report their exit. */
        if (r < 0 && r != -ESRCH)
            return r;
        if (total > 0)
            seized++;
    }
    if (seized == 0) {
        snprintf(why, wsize, "the target%s exited before %s could be traced", n == 1 ? "" : "s",
                 n == 1 ? "it" : "they");
        return -ESRCH;
    }
    return 0;
}

/* The signals that end the window, and SIGCHLD, come through a signalfd. */
static int setup_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGUSR1, SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        sigaddset(&set, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* One line to the engine: "A n", "D n", or "E errno why". */
static void report(int fd, char tag, long long v, const char *why)
{
    char buf[512];
    int len = snprintf(buf, sizeof buf, "%c %lld%s%s\n", tag, v, why ? " " : "", why ? why : "");
    if (len > 0)
        IGNORE_RESULT(write(fd, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf - 1));
}

void sys_tracer_main(const struct sys_spec *s, const struct proc_ent *targets, size_t n,
                     int64_t deadline_ms, int report_fd, pid_t parent)
{
    prctl(PR_SET_NAME, "chaos-tracer");
    /* SIGTERM, not SIGKILL: a dying engine still gets a clean detach. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
        _exit(1);
    struct tracer tr = {.s = s, .deadline_ms = deadline_ms};
    sys_counter_init(&tr.c, s);
    tr.sfd = setup_signals();
    char why[400] = "";
    int r = tr.sfd < 0 ? -errno : seize_all(&tr, targets, n, why, sizeof why);
    if (r < 0) {
        if (!why[0])
            snprintf(why, sizeof why, "%s", strerror(-r));
        tr.over = true;
        detach_all(&tr);
        report(report_fd, 'E', -r, why);
        _exit(1);
    }
    report(report_fd, 'A', (long long)tr.n, NULL);
    serve(&tr);
    detach_all(&tr);
    report(report_fd, 'D', tr.c.injected, NULL);
    _exit(tr.n == 0 ? 0 : 2);
}

#else /* the registers set above are x86_64's; sys_trace_start refuses elsewhere */

void sys_tracer_main(const struct sys_spec *s, const struct proc_ent *targets, size_t n,
                     int64_t deadline_ms, int report_fd, pid_t parent)
{
    (void)s, (void)targets, (void)n, (void)deadline_ms, (void)parent;
    static const char msg[] = "E 95 a running process is traced on x86_64 only\n";
    IGNORE_RESULT(write(report_fd, msg, sizeof msg - 1));
    _exit(1);
}

#endif
