#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "engine.h"
#include "exit_codes.h"
#include "run_silences.h"
#include "util.h"

static void guard_log(const char *line, void *arg)
{
    fprintf(stderr, "chaos-guard: %s\n", line);
}

/* The guard's whole life: wait for the run to say "quit" or to vanish. */
static void __attribute__((noreturn)) guard_main(int rfd, int ready_fd, pid_t run_pid,
                                                 const char *journal, const char *state_dir)
{
    prctl(PR_SET_NAME, "chaos-guard");
    /* Its own session and process group: `timeout -s KILL`, a CI runner or
     * job control kill the run's whole group, and the guard must outlive
     * exactly that. The run waits for this (ready_fd closing) before it
     * applies anything. setsid cannot fail in a fresh fork (not a leader). */
    IGNORE_RESULT(setsid());
    close(ready_fd);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char c;
    ssize_t n;
    do
        n = read(rfd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1)
        _exit(CHAOS_EXIT_OK); /* the run ended and reverted: nothing to do */
    struct chaos_err err = {0};
    fprintf(stderr, "chaos-guard: chaos run (pid %d) died without reverting; recovering\n",
            (int)run_pid);
    int r = engine_recover_file(journal, guard_log, NULL, &err);
    if (r < 0)
        fprintf(stderr, "chaos-guard: %s\n", err.msg);
    /* Then its game-day silences, so a dead run mutes no alert. The guard
     * forked before the run had threads; its own curl starts here. */
    int s = state_dir ? run_silences_recover(state_dir, false, guard_log, NULL, &err) : 0;
    if (s < 0)
        fprintf(stderr, "chaos-guard: %s\n", err.msg);
    _exit(r == 0 && s == 0 ? CHAOS_EXIT_OK : CHAOS_EXIT_ABORTED);
}

int guard_start(const char *journal_path, const char *state_dir, struct guard *g,
                struct chaos_err *err)
{
    g->pid = -1;
    g->fd = -1;
    int p[2], ready[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return chaos_err_set(err, errno, "guard: pipe: %s", strerror(errno));
    if (pipe2(ready, O_CLOEXEC) < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return chaos_err_set(err, e, "guard: pipe: %s", strerror(e));
    }
    pid_t run_pid = getpid();
    fflush(NULL); /* the child must not write out the parent's buffered output */
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        close(ready[0]);
        close(ready[1]);
        return chaos_err_set(err, e, "guard: fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(p[1]);
        close(ready[0]);
        guard_main(p[0], ready[1], run_pid, journal_path, state_dir);
    }
    close(p[0]);
    close(ready[1]);
    /* Until the guard has left our process group, a group kill would take
     * it too: wait for it to say so (its end of ready closes). */
    char c;
    ssize_t n;
    do
        n = read(ready[0], &c, 1);
    while (n < 0 && errno == EINTR);
    close(ready[0]);
    g->pid = pid;
    g->fd = p[1];
    return 0;
}

void guard_stop(struct guard *g)
{
    if (g->pid <= 0)
        return;
    ssize_t w;
    do
        w = write(g->fd, "q", 1);
    while (w < 0 && errno == EINTR);
    close(g->fd);
    int status;
    while (waitpid(g->pid, &status, 0) < 0 && errno == EINTR)
        ;
    g->pid = -1;
    g->fd = -1;
}
