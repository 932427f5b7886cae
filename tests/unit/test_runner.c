/* The runner's watchdog: a timeline that has not ended by its limit is
 * aborted (exit 3) and every fault reverted; the limit it takes from a
 * scenario covers max_duration and the planned timeline. And the probes it
 * drives on the loop: a timer they cannot arm fails a sample, never hangs it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "exit_codes.h"
#include "loop.h"
#include "probe.h"
#include "proc_stat.h"
#include "runner.h"
#include "scenario.h"
#include "sleep_child.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/chaos-t-runner-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(runner, .init = setup, .fini = teardown);

static struct scenario *parse(const char *text)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    cr_assert(root, "%s", jerr.text);
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(scenario_parse(root, "inline.json", &s, &err), 0, "%s", err.msg);
    json_decref(root);
    return s;
}

/* The watchdog (here at 300ms, as if the timeline had overrun its limit)
 * ends a run whose pause would last 5s: the run is aborted, the reason
 * names the watchdog and what was still open, and the process runs again. */
Test(runner, watchdog_aborts_an_overrun_timeline_and_reverts)
{
    pid_t kid = spawn_sleep();
    char text[1024];
    snprintf(text, sizeof text,
             "{\"version\": 1, \"name\": \"overrun\", \"faults\": [{\"name\": \"freeze\", "
             "\"kind\": \"process\", \"at\": \"0s\", \"duration\": \"5s\", \"target\": "
             "{\"pid\": %d}, \"params\": {\"action\": \"pause\"}}]}",
             (int)kid);
    struct scenario *s = parse(text);
    FILE *out = tmpfile();
    cr_assert(out);
    struct run_options opt = {.state_dir = dir, .out = out, .watchdog_ms = 300};
    struct run_result *res = NULL;
    struct chaos_err err = {0};
    int64_t t0 = loop_now_ms();
    cr_assert_eq(runner_run(s, &opt, &res, &err), 0, "%s", err.msg);
    int64_t took = loop_now_ms() - t0;
    usleep(200000); /* let the SIGCONT land */
    struct proc_stat st;
    int r = proc_stat_read(kid, &st);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    cr_expect_eq(res->exit_code, CHAOS_EXIT_ABORTED);
    cr_expect(res->aborted);
    const char *want = "watchdog: the timeline did not end within 300ms of the fault phase's "
                       "start; still open: fault 'freeze'";
    cr_expect(strncmp(res->abort_reason, want, strlen(want)) == 0, "%s", res->abort_reason);
    cr_expect(strstr(res->verdict, "ABORTED: watchdog: "), "%s", res->verdict);
    cr_expect_lt(took, 4000, "the run waited for the fault's own end (%lld ms)", (long long)took);
    cr_expect_eq(r, 0);
    cr_expect_neq(st.state, 'T', "the paused process was left stopped");
    cr_expect_eq(res->n_faults, 1);
    cr_expect_geq(res->faults[0].ended_ms, 0, "the fault was not reverted");
    cr_expect_eq(res->faults[0].state, FAULT_REVERTED, "%s", fault_state_name(res->faults[0].state));
    run_result_free(res);
    scenario_free(s);
    fclose(out);
}

/* A scenario that runs as planned never meets its watchdog: the limit is
 * past max_duration, past the fault phase and past the last `after` window. */
Test(runner, watchdog_limit_covers_max_duration_and_the_timeline)
{
    struct scenario *s = parse(
        "{\"version\": 1, \"name\": \"w\", \"max_duration\": \"2s\", \"faults\": [{\"name\": "
        "\"k\", \"kind\": \"process\", \"at\": \"1s\", \"target\": {\"name\": \"chaos-t-none\"}, "
        "\"params\": {\"action\": \"kill\"}}], \"expect\": [{\"name\": \"later\", \"after\": "
        "\"k\", \"for\": \"30s\", \"every\": \"1s\", \"probe\": {\"command\": {\"argv\": "
        "[\"true\"]}}}]}");
    int64_t w = runner_watchdog_ms(s);
    cr_expect_geq(w, 31000 + RUNNER_WATCHDOG_GRACE_MS, "%lld", (long long)w);
    scenario_free(s);
    s = parse("{\"version\": 1, \"name\": \"w\", \"max_duration\": \"10m\", \"faults\": [{\"name\": "
              "\"k\", \"kind\": \"process\", \"at\": \"1s\", \"target\": {\"name\": "
              "\"chaos-t-none\"}, \"params\": {\"action\": \"kill\"}}]}");
    w = runner_watchdog_ms(s);
    cr_expect_eq(w, 600000 + 60000, "a tenth of the limit as grace: %lld", (long long)w);
    scenario_free(s);
}

/* ---- probes whose timers cannot be armed ---- */

struct got {
    bool done;
    struct sample s;
    struct loop *loop;
};

static void on_done(const struct sample *s, void *arg)
{
    struct got *g = arg;
    g->done = true;
    g->s = *s;
    loop_stop(g->loop);
}

static void give_up(struct loop *l, void *arg)
{
    loop_stop(l);
}

/* A server that takes the connection (the kernel's backlog does) and never
 * answers: the request waits on curl's timer alone. When curl cannot re-arm
 * that timer, the sample fails at once instead of waiting forever. (curl
 * 7.88 fails the transfer itself; probe_http.c also fails what is still in
 * flight when curl_multi_socket_action reports an error, whatever curl does.) */
Test(probe_timers, http_sample_fails_when_curls_timer_cannot_be_armed)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(lfd, 8), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    char text[256];
    snprintf(text, sizeof text,
             "{\"http\": {\"url\": \"http://127.0.0.1:%d/\", \"timeout\": \"5s\"}}",
             ntohs(a.sin_port));
    json_t *pj = json_loads(text, 0, NULL);
    struct probe *p = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(probe_parse(pj, NULL, "check 't'", &p, &err), 0, "%s", err.msg);
    struct loop *l = loop_new();
    struct probe_runner *pr = probe_runner_new(l, &err);
    cr_assert(pr, "%s", err.msg);
    struct got g = {.loop = l};
    cr_assert(loop_add_timer(l, loop_now_ms() + 3000, give_up, NULL));
    int64_t t0 = loop_now_ms();
    cr_assert_eq(probe_start(pr, p, on_done, &g, &err), 0, "%s", err.msg);
    loop_fail_next_timers(l, 1000); /* every timer curl asks for from now on */
    cr_assert_eq(loop_run(l), 0);
    cr_expect(g.done, "the sample never came (it waits on a timer that does not exist)");
    cr_expect_lt(loop_now_ms() - t0, 2500);
    cr_expect_not(g.s.ok);
    cr_expect(g.s.error[0], "a failed sample says why");
    probe_runner_free(pr);
    probe_free(p);
    loop_free(l);
    json_decref(pj);
    close(lfd);
}
