/* Benchmark: pausing and resuming N processes by name with the engine
 * (resolve from /proc, pidfds, journal with fsync) versus the shell a user
 * would otherwise write: sh -c 'kill -STOP $(pgrep -x NAME)' and -CONT.
 *
 * usage: bench_process [N processes = 10] [rounds = 50] [folder = /tmp]
 * The journal (fsynced before every pause) lives under folder: compare a
 * disk with /dev/shm to see what durability costs.
 * Prints medians and the ratio. Starts and reaps its own sleepers only. */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "engine.h"
#include "fault.h"
#include "loop.h"

extern char **environ;

#define NAME "chaos-bsleep"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double median_ms(int64_t *us, int n)
{
    qsort(us, (size_t)n, sizeof *us, cmp_i64);
    return (double)us[n / 2] / 1000.0;
}

static int run_sh(const char *cmd)
{
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    pid_t pid;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool all_in_state(const pid_t *pids, int n, char want)
{
    for (int i = 0; i < n; i++) {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pids[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            return false;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *p = strrchr(buf, ')');
        if (!p || p[2] != want)
            return false;
    }
    return true;
}

/* The kernel stops a process asynchronously: wait until all are in state. */
static void wait_state(const pid_t *pids, int n, char want)
{
    for (int i = 0; i < 2000 && !all_in_state(pids, n, want); i++)
        usleep(500);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10, rounds = argc > 2 ? atoi(argv[2]) : 50;
    if (n < 1 || n > 1000 || rounds < 3 || rounds > 10000) {
        fprintf(stderr, "usage: bench_process [N 1-1000] [rounds 3-10000] [folder]\n");
        return 2;
    }
    char dir[256];
    snprintf(dir, sizeof dir, "%s/chaos-bench-XXXXXX", argc > 3 ? argv[3] : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char exe[320], cmd[400], journal[320];
    snprintf(exe, sizeof exe, "%s/" NAME, dir);
    snprintf(cmd, sizeof cmd, "cp /bin/sleep %s", exe);
    if (run_sh(cmd) != 0) {
        fprintf(stderr, "cannot copy /bin/sleep\n");
        return 1;
    }
    snprintf(journal, sizeof journal, "%s/journal/bench.jsonl", dir);
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    for (int i = 0; i < n; i++) {
        char *sargv[] = {exe, "600", NULL};
        if (posix_spawn(&pids[i], exe, NULL, NULL, sargv, environ) != 0) {
            perror("spawn");
            return 1;
        }
    }
    usleep(200000); /* let every child exec, so its name is NAME */

    struct loop *loop = loop_new();
    struct engine *e = NULL;
    struct chaos_err err = {0};
    struct fault_spec *spec = NULL;
    json_t *target = json_pack("{s:s}", "name", NAME);
    json_t *params = json_pack("{s:s}", "action", "pause");
    if (!loop || engine_new(loop, journal, NULL, 0, &e, &err) < 0 ||
        fault_spec_parse("process", target, params, "bench", 60000, &spec, &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    int64_t *apply = calloc((size_t)rounds, sizeof *apply), *revert = calloc((size_t)rounds, 8),
            *sh_stop = calloc((size_t)rounds, 8), *sh_cont = calloc((size_t)rounds, 8);
    char stop_cmd[128], cont_cmd[128];
    snprintf(stop_cmd, sizeof stop_cmd, "kill -STOP $(pgrep -x %s)", NAME);
    snprintf(cont_cmd, sizeof cont_cmd, "kill -CONT $(pgrep -x %s)", NAME);
    int rc = 0;
    for (int r = 0; r < rounds && rc == 0; r++) {
        char name[32];
        snprintf(name, sizeof name, "p%d", r);
        struct engine_fault *f;
        int64_t t0 = loop_now_us();
        if (engine_apply(e, name, spec, NULL, NULL, &f, &err) < 0) {
            fprintf(stderr, "apply: %s\n", err.msg);
            rc = 1;
            break;
        }
        int64_t t1 = loop_now_us();
        wait_state(pids, n, 'T');
        int64_t t2 = loop_now_us();
        if (engine_revert(e, f, &err) < 0) {
            fprintf(stderr, "revert: %s\n", err.msg);
            rc = 1;
            break;
        }
        int64_t t3 = loop_now_us();
        wait_state(pids, n, 'S');
        apply[r] = t1 - t0;
        revert[r] = t3 - t2;

        t0 = loop_now_us();
        int s1 = run_sh(stop_cmd);
        t1 = loop_now_us();
        wait_state(pids, n, 'T');
        t2 = loop_now_us();
        int s2 = run_sh(cont_cmd);
        t3 = loop_now_us();
        wait_state(pids, n, 'S');
        if (s1 != 0 || s2 != 0) {
            fprintf(stderr, "shell baseline failed (is pgrep installed?)\n");
            rc = 1;
        }
        sh_stop[r] = t1 - t0;
        sh_cont[r] = t3 - t2;
    }
    if (rc == 0) {
        double a = median_ms(apply, rounds), v = median_ms(revert, rounds);
        double sa = median_ms(sh_stop, rounds), sv = median_ms(sh_cont, rounds);
        printf("pause %d processes by name, median of %d rounds, journal in %s\n", n, rounds,
               argc > 3 ? argv[3] : "/tmp");
        printf("  chaos engine: apply %.3f ms (includes journal fsync), revert %.3f ms\n", a, v);
        printf("  shell kill -STOP/-CONT $(pgrep -x): stop %.3f ms, resume %.3f ms\n", sa, sv);
        printf("  ratio shell/chaos: apply %.1fx, revert %.1fx\n", sa / a, sv / v);
    }
    engine_revert_all(e);
    engine_free(e);
    fault_spec_free(spec);
    json_decref(target);
    json_decref(params);
    loop_free(loop);
    for (int i = 0; i < n; i++) {
        kill(pids[i], SIGCONT);
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }
    free(pids);
    free(apply);
    free(revert);
    free(sh_stop);
    free(sh_cont);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_sh(cmd);
    return rc;
}
