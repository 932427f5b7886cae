/* A `sleep 60` child for the unit tests that pause a real process, and its
 * state as /proc shows it. Shared by test_engine.c and test_runner.c. */
#ifndef CHAOS_TEST_SLEEP_CHILD_H
#define CHAOS_TEST_SLEEP_CHILD_H

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "proc_stat.h"

/* Starts `sleep 60` and returns once the child is sleep (not the fork still
 * on its way to exec). */
static inline pid_t spawn_sleep(void)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execlp("sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        struct proc_stat st;
        if (proc_stat_read(pid, &st) == 0 && strcmp(st.comm, "sleep") == 0)
            break;
        usleep(5000);
    }
    return pid;
}

/* Kills and reaps a child of spawn_sleep. */
static inline void reap_sleep(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* The state letter of /proc/PID/stat ('T' when stopped), '?' when gone. */
static inline char proc_state(pid_t pid)
{
    struct proc_stat st;
    return proc_stat_read(pid, &st) == 0 ? st.state : '?';
}

/* The process state once the signals sent to it have landed: a SIGSTOP or
 * SIGCONT takes effect when the process next runs, not when kill returns,
 * so a state read at once may predate a stop. After a pause, then 'T' for a
 * second means it stays stopped. */
static inline char settled_state(pid_t pid)
{
    usleep(200000);
    char c = proc_state(pid);
    for (int i = 0; i < 100 && c == 'T'; i++) {
        usleep(10000);
        c = proc_state(pid);
    }
    return c;
}

#endif
