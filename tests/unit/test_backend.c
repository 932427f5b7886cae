/* The backend seam's contract, on the embedded backend with a real process
 * paused: events arrive later from the loop (never inside apply or
 * revert_all), every event carries the fault's state, revert_all's done
 * comes once after the final events, and close leaves nothing behind. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "engine.h"
#include "sleep_child.h"

struct seen {
    int n;
    enum backend_event ev[8];
    enum fault_state st[8];
    bool in_call;     /* set while the test is inside a backend call */
    bool reentrant;   /* an event arrived inside one */
    int done_calls;
    int done_failed;
    size_t events_at_done;
    struct loop *loop;
};

static void on_event(struct backend_fault *f, enum backend_event ev, enum fault_state st,
                     const char *detail, void *arg)
{
    struct seen *s = arg;
    if (s->in_call)
        s->reentrant = true;
    if (s->n < 8) {
        s->ev[s->n] = ev;
        s->st[s->n] = st;
    }
    s->n++;
}

static void on_done(int failed, void *arg)
{
    struct seen *s = arg;
    if (s->in_call)
        s->reentrant = true;
    s->done_calls++;
    s->done_failed = failed;
    s->events_at_done = (size_t)s->n;
    loop_stop(s->loop);
}

static void stop(struct loop *loop, void *arg)
{
    loop_stop(loop);
}

/* Runs the loop for ms (or until something stops it). */
static void run_for(struct loop *l, int64_t ms)
{
    uint64_t t = loop_add_timer(l, loop_now_ms() + ms, stop, NULL);
    cr_assert(t);
    cr_assert_eq(loop_run(l), 0);
    loop_cancel_timer(l, t);
}

static struct fault_spec *pause_spec(pid_t pid, int64_t duration_ms)
{
    json_t *t = json_pack("{s:i}", "pid", (int)pid);
    json_t *p = json_pack("{s:s}", "action", "pause");
    struct fault_spec *spec = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(fault_spec_parse("process", t, p, "faults[0] 'p'", duration_ms, &spec, &err), 0,
                 "%s", err.msg);
    json_decref(t);
    json_decref(p);
    return spec;
}

static char state_dir[] = "/tmp/chaos-t-backend-XXXXXX";

static void setup(void)
{
    cr_assert(mkdtemp(state_dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", state_dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(backend, .init = setup, .fini = teardown);

Test(backend, embedded_events_come_later_and_done_comes_last)
{
    pid_t kid = spawn_sleep();
    struct loop *l = loop_new();
    cr_assert(l);
    const struct backend_ops *b = &backend_embedded;
    struct backend_options opt = {.state_dir = state_dir};
    void *ctx = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(b->open(l, &opt, &ctx, &err), 0, "%s", err.msg);

    struct fault_spec *spec = pause_spec(kid, 60000);
    struct seen s = {.loop = l};
    struct backend_request req = {.name = "p", .spec = spec};
    struct backend_fault *f = NULL;
    s.in_call = true;
    int r = b->apply(ctx, &req, on_event, &s, &f, &err);
    s.in_call = false;
    cr_assert_eq(r, 0, "%s", err.msg);
    cr_expect_eq(s.n, 0, "an event arrived from inside apply");
    cr_expect_eq(b->state(f), FAULT_ACTIVE);
    cr_expect_eq(settled_state(kid), 'T', "the process is not paused");

    run_for(l, 100);
    cr_assert_eq(s.n, 1);
    cr_expect_eq(s.ev[0], BACKEND_APPLIED);
    cr_expect_eq(s.st[0], FAULT_ACTIVE);

    s.in_call = true;
    b->revert_all(ctx, on_done, &s);
    s.in_call = false;
    cr_expect_eq(s.done_calls, 0, "done was called from inside revert_all");
    cr_expect_eq(s.n, 1, "an event arrived from inside revert_all");
    run_for(l, 2000);
    cr_expect_not(s.reentrant);
    cr_assert_eq(s.done_calls, 1);
    cr_expect_eq(s.done_failed, 0);
    cr_assert_eq(s.n, 2);
    cr_expect_eq(s.events_at_done, 2, "done came before the REVERTED event");
    cr_expect_eq(s.ev[1], BACKEND_REVERTED);
    cr_expect_eq(s.st[1], FAULT_REVERTED);
    cr_expect_neq(settled_state(kid), 'T', "the process is still paused");

    /* Nothing is left: the journal of this run is gone with the close. */
    b->close(ctx);
    char jpath[512];
    cr_assert_eq(engine_journal_path(state_dir, getpid(), jpath, sizeof jpath), 0);
    cr_expect_neq(access(jpath, F_OK), 0, "%s is still there", jpath);
    fault_spec_free(spec);
    loop_free(l);
    reap_sleep(kid);
}

Test(backend, a_failed_apply_returns_the_error_and_sends_no_event)
{
    pid_t kid = spawn_sleep();
    reap_sleep(kid); /* a pid that no longer exists */
    struct loop *l = loop_new();
    cr_assert(l);
    const struct backend_ops *b = &backend_embedded;
    struct backend_options opt = {.state_dir = state_dir};
    void *ctx = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(b->open(l, &opt, &ctx, &err), 0, "%s", err.msg);
    struct fault_spec *spec = pause_spec(kid, 60000);
    struct seen s = {.loop = l};
    struct backend_request req = {.name = "p", .spec = spec};
    struct backend_fault *f = NULL;
    cr_expect_lt(b->apply(ctx, &req, on_event, &s, &f, &err), 0);
    cr_expect(err.msg[0], "no error message");
    b->revert_all(ctx, on_done, &s);
    run_for(l, 2000);
    cr_expect_eq(s.done_calls, 1);
    cr_expect_eq(s.n, 0, "a failed apply sent an event");
    b->close(ctx);
    fault_spec_free(spec);
    loop_free(l);
}
