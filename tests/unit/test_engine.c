/* The engine's lifecycle with a fake fault kind: durations enforced by the
 * engine, steps, apply/revert failures, the journal written before apply and
 * kept when a revert fails, timers that cannot be armed (a real pause of a
 * real process among them); and the journal's crash-tolerant reading. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "engine.h"
#include "fault.h"
#include "journal.h"
#include "proc_stat.h"
#include "sleep_child.h"

/* ---- a fake fault kind that records what the engine asks of it ---- */

struct fake_log {
    int applies, steps, reverts;
    bool fail_apply, fail_revert;
    int steps_wanted;
    bool journal_seen_at_apply; /* the undo record was durable before "touching" */
    char journal[256];
};

static struct fake_log flog;

static int fake_parse(const json_t *t, const json_t *p, const char *ctx, void **spec,
                      struct fault_info *info, struct chaos_err *err)
{
    *spec = NULL;
    return 0;
}

static void fake_free_spec(void *s) {}

static int fake_apply(const struct fault_env *env, const void *spec, void **state,
                      int64_t *next, struct chaos_err *err)
{
    json_t *undo = json_pack("{s:s}", "what", "fake");
    int r = fault_journal_undo(env, undo, err);
    json_decref(undo);
    if (r < 0)
        return r;
    /* "Touching the system" happens after the record is on disk. */
    FILE *f = fopen(flog.journal, "r");
    char buf[4096] = "";
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    flog.journal_seen_at_apply = strstr(buf, env->fault_id) != NULL;
    if (flog.fail_apply)
        return chaos_err_set(err, EPERM, "fake apply refused");
    flog.applies++;
    *state = &flog;
    if (flog.steps_wanted)
        *next = 20;
    return 0;
}

static int fake_step(const struct fault_env *env, void *state, int64_t *next,
                     struct chaos_err *err)
{
    flog.steps++;
    if (flog.steps < flog.steps_wanted)
        *next = 20;
    return 0;
}

static int fake_revert(const struct fault_env *env, void *state, struct chaos_err *err)
{
    if (flog.fail_revert)
        return chaos_err_set(err, EIO, "fake revert failed");
    flog.reverts++;
    return 0;
}

static void fake_describe(const void *state, char *buf, size_t size)
{
    snprintf(buf, size, "fake");
}

static const struct fault_ops fake_ops = {
    .kind = "process", /* recovery looks kinds up by name; tests below do not recover */
    .parse = fake_parse,
    .free_spec = fake_free_spec,
    .apply = fake_apply,
    .step = fake_step,
    .revert = fake_revert,
    .describe = fake_describe,
};

static char dir[64];

static void setup(void)
{
    memset(&flog, 0, sizeof flog);
    snprintf(dir, sizeof dir, "/tmp/chaos-t-engine-XXXXXX");
    cr_assert(mkdtemp(dir));
    snprintf(flog.journal, sizeof flog.journal, "%s/journal/run.jsonl", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

struct events {
    int applied, reverted, finished, failed, stepped, aborted;
    char last[1024];
    struct loop *loop;
    bool stop_on_end;
};

static void on_event(struct engine_fault *f, enum engine_event ev, const char *d, void *arg)
{
    struct events *e = arg;
    switch (ev) {
    case ENGINE_APPLIED: e->applied++; break;
    case ENGINE_STEPPED: e->stepped++; break;
    case ENGINE_STEP_FAILED: break;
    case ENGINE_FINISHED: e->finished++; break;
    case ENGINE_REVERTED: e->reverted++; break;
    case ENGINE_FAILED: e->failed++; break;
    case ENGINE_ABORTED:
        e->aborted++;
        break;
    }
    snprintf(e->last, sizeof e->last, "%s", d);
    if (e->stop_on_end && (ev == ENGINE_REVERTED || ev == ENGINE_FINISHED || ev == ENGINE_FAILED ||
                           ev == ENGINE_ABORTED))
        loop_stop(e->loop);
}

static void give_up(struct loop *l, void *arg)
{
    loop_stop(l);
    *(bool *)arg = true;
}

static struct fault_spec lasting = {.ops = &fake_ops, .info = {.lasting = true}};
static struct fault_spec repeated = {.ops = &fake_ops, .info = {.lasting = false}};

/* s as fault_spec_parse would hand it out for duration d (ms, -1: none). */
static const struct fault_spec *spec_for(struct fault_spec *s, int64_t d)
{
    s->duration_ms = d;
    return s;
}

TestSuite(engine, .init = setup, .fini = teardown);

static void stop_loop(void *arg)
{
    loop_stop(arg);
}

/* Runs the loop until every event queued so far has been delivered. */
static void drain(struct engine *e, struct loop *l)
{
    cr_assert_eq(engine_when_drained(e, stop_loop, l), 0);
    cr_assert_eq(loop_run(l), 0);
}

Test(engine, events_arrive_later_from_the_loop_never_inside_the_call)
{
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    cr_assert_eq(engine_new(l, flog.journal, NULL, 0, &e, &err), 0, "%s", err.msg);
    struct events ev = {.loop = l};
    struct engine_fault *f;
    cr_assert_eq(engine_apply(e, "p", spec_for(&lasting, 60000), on_event, &ev, &f, &err), 0);
    /* The state moved at once; the event waits for the loop. */
    cr_expect_eq(engine_fault_state(f), FAULT_ACTIVE);
    cr_expect_eq(ev.applied, 0, "APPLIED was delivered from inside engine_apply");
    cr_assert_eq(engine_revert(e, f, &err), 0, "%s", err.msg);
    cr_expect_eq(engine_fault_state(f), FAULT_REVERTED);
    cr_expect_eq(ev.reverted, 0, "REVERTED was delivered from inside engine_revert");
    drain(e, l);
    cr_expect_eq(ev.applied, 1);
    cr_expect_eq(ev.reverted, 1);
    /* A revert of a fault that has ended is a no-op: no second event. */
    cr_expect_eq(engine_revert(e, f, &err), 0);
    drain(e, l);
    cr_expect_eq(ev.reverted, 1);
    engine_free(e);
    loop_free(l);
}

Test(engine, one_shot_action_is_applied_then_finished_in_order)
{
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    cr_assert_eq(engine_new(l, flog.journal, NULL, 0, &e, &err), 0, "%s", err.msg);
    struct events ev = {.loop = l};
    struct engine_fault *f;
    flog.steps_wanted = 0;
    cr_assert_eq(engine_apply(e, "k", spec_for(&repeated, -1), on_event, &ev, &f, &err), 0);
    cr_expect_eq(engine_fault_state(f), FAULT_FINISHED);
    drain(e, l);
    cr_expect_eq(ev.applied, 1);
    cr_expect_eq(ev.finished, 1);
    cr_expect_eq(ev.reverted, 0, "a finished one-off must not be reverted");
    engine_free(e);
    loop_free(l);
}

Test(engine, duration_is_enforced_by_the_engine)
{
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    cr_assert_eq(engine_new(l, flog.journal, NULL, 0, &e, &err), 0, "%s", err.msg);
    struct events ev = {.loop = l, .stop_on_end = true};
    struct engine_fault *f;
    int64_t t0 = loop_now_ms();
    cr_assert_eq(engine_apply(e, "p", spec_for(&lasting, 100), on_event, &ev, &f, &err), 0, "%s", err.msg);
    cr_expect(flog.journal_seen_at_apply, "undo record was not durable before apply touched");
    cr_expect_eq(engine_fault_state(f), FAULT_ACTIVE);
    bool timed_out = false;
    cr_assert(loop_add_timer(l, t0 + 3000, give_up, &timed_out));
    loop_run(l);
    cr_assert_not(timed_out, "the engine never reverted on its own");
    cr_expect_geq(loop_now_ms() - t0, 100, "reverted before the duration ended");
    cr_expect_eq(flog.reverts, 1);
    cr_expect_eq(ev.reverted, 1);
    cr_expect_eq(engine_fault_state(f), FAULT_REVERTED);
    size_t pending = 99;
    cr_expect_eq(journal_read_pending(flog.journal, NULL, NULL, NULL, &pending, &err), 0);
    cr_expect_eq(pending, 0, "the revert was not journalled");
    engine_free(e);
    cr_expect_neq(access(flog.journal, F_OK), 0, "journal not removed after a clean end");
    loop_free(l);
}

Test(engine, repeated_actions_step_then_finish)
{
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    cr_assert_eq(engine_new(l, flog.journal, NULL, 0, &e, &err), 0);
    flog.steps_wanted = 3;
    struct events ev = {.loop = l, .stop_on_end = true};
    struct engine_fault *f;
    /* Rounds at 0, 20, 40, 60 ms; active for every x count = 80 ms. */
    struct fault_spec rep = {.ops = &fake_ops, .info = {.natural_duration_ms = 80}};
    int64_t t0 = loop_now_ms();
    cr_assert_eq(engine_apply(e, "k", spec_for(&rep, -1), on_event, &ev, &f, &err), 0);
    bool timed_out = false;
    cr_assert(loop_add_timer(l, loop_now_ms() + 3000, give_up, &timed_out));
    loop_run(l);
    cr_assert_not(timed_out);
    cr_expect_geq(loop_now_ms() - t0, 80, "finished before every x count had passed");
    cr_expect_eq(flog.steps, 3);
    cr_expect_eq(ev.stepped, 3);
    cr_expect_eq(ev.finished, 1);
    cr_expect_eq(flog.reverts, 0, "a non-lasting fault has nothing to revert");
    cr_expect_eq(engine_active_count(e), 0);
    engine_free(e);
    loop_free(l);
}

Test(engine, failed_apply_leaves_no_pending_record)
{
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    cr_assert_eq(engine_new(l, flog.journal, NULL, 0, &e, &err), 0);
    flog.fail_apply = true;
    struct engine_fault *f = NULL;
    cr_expect_lt(engine_apply(e, "p", spec_for(&lasting, 1000), on_event, NULL, &f, &err), 0);
    cr_expect(strstr(err.msg, "fake apply refused"), "%s", err.msg);
    cr_assert(f);
    cr_expect_eq(engine_fault_state(f), FAULT_APPLY_FAILED);
    cr_expect(strstr(engine_fault_error(f), "fake apply refused"));
    size_t pending = 99;
    cr_expect_eq(journal_read_pending(flog.journal, NULL, NULL, NULL, &pending, &err), 0);
    cr_expect_eq(pending, 0);
    engine_free(e);
    loop_free(l);
}

Test(engine, lasting_fault_without_duration_is_refused)
{
    /* The rule lives at the one validation entry point: no spec, so nothing
     * can reach engine_apply that nothing would revert. */
    json_t *t = json_pack("{s:i}", "pid", (int)getpid());
    json_t *p = json_pack("{s:s}", "action", "pause");
    struct fault_spec *spec = NULL;
    struct chaos_err err = {0};
    cr_expect_lt(fault_spec_parse("process", t, p, "faults[0] 'p'", -1, &spec, &err), 0);
    cr_expect_null(spec);
    cr_expect(strstr(err.msg, "faults[0] 'p': duration: required for action pause"), "%s",
              err.msg);
    cr_expect_lt(fault_spec_parse("process", t, p, "faults[0] 'p'", 0, &spec, &err), 0);
    cr_expect(strstr(err.msg, "duration: must be more than 0"), "%s", err.msg);
    json_decref(t);
    json_decref(p);
}

Test(engine, failed_revert_keeps_the_journal_for_recovery)
{
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    cr_assert_eq(engine_new(l, flog.journal, NULL, 0, &e, &err), 0);
    struct events ev = {.loop = l};
    struct engine_fault *f;
    cr_assert_eq(engine_apply(e, "p", spec_for(&lasting, 60000), on_event, &ev, &f, &err), 0);
    flog.fail_revert = true;
    cr_expect_eq(engine_revert_all(e), 1);
    drain(e, l);
    cr_expect_eq(ev.failed, 1);
    cr_expect_eq(engine_fault_state(f), FAULT_REVERT_FAILED);
    cr_expect(strstr(engine_fault_error(f), "fake revert failed"));
    engine_free(e);
    size_t pending = 0;
    struct journal_owner owner;
    cr_expect_eq(journal_read_pending(flog.journal, &owner, NULL, NULL, &pending, &err), 0);
    cr_expect_eq(pending, 1, "the unreverted fault must stay in the journal");
    cr_expect_eq(owner.pid, getpid());
    loop_free(l);
}

Test(engine, protected_pids_include_self_parent_and_init)
{
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    pid_t extra = 4242;
    cr_assert_eq(engine_new(l, flog.journal, &extra, 1, &e, &err), 0);
    struct engine_fault *f;
    flog.steps_wanted = 0;
    cr_assert_eq(engine_apply(e, "k", spec_for(&repeated, -1), NULL, NULL, &f, &err), 0);
    /* The env the kind saw is the one fault_env_is_protected checks. */
    struct fault_env env = {.protected_pids = {1, getpid(), getppid(), 4242}, .n_protected = 4};
    cr_expect(fault_env_is_protected(&env, 1));
    cr_expect(fault_env_is_protected(&env, getpid()));
    cr_expect(fault_env_is_protected(&env, getppid()));
    cr_expect(fault_env_is_protected(&env, 4242));
    cr_expect_not(fault_env_is_protected(&env, 4243));
    engine_free(e);
    loop_free(l);
}

/* ---- timers that cannot be armed ---- */

static bool journal_has(const char *op, const char *id)
{
    FILE *f = fopen(flog.journal, "r");
    if (!f)
        return false;
    char line[8192];
    bool found = false;
    char want_op[64], want_id[128];
    snprintf(want_op, sizeof want_op, "\"op\":\"%s\"", op);
    snprintf(want_id, sizeof want_id, "\"id\":\"%s\"", id);
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, want_op) && strstr(line, want_id);
    fclose(f);
    return found;
}

/* The acceptance test of the timer-failure rule: a real pause (SIGSTOP) of a
 * real process whose revert timer cannot be armed must not stay applied. */
Test(engine, pause_whose_revert_timer_cannot_be_armed_is_not_left_applied)
{
    pid_t kid = spawn_sleep();
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    cr_assert_eq(engine_new(l, flog.journal, NULL, 0, &e, &err), 0, "%s", err.msg);
    char target[64];
    snprintf(target, sizeof target, "{\"pid\": %d}", (int)kid);
    json_t *t = json_loads(target, 0, NULL), *p = json_pack("{s:s}", "action", "pause");
    struct fault_spec *spec = NULL;
    cr_assert_eq(fault_spec_parse("process", t, p, "faults[0] 'freeze'", 60000, &spec, &err), 0,
                 "%s", err.msg);
    struct events ev = {.loop = l};
    struct engine_fault *f = NULL;
    loop_fail_next_timers(l, 1); /* the revert timer, the first the apply arms */
    int r = engine_apply(e, "freeze", spec, on_event, &ev, &f, &err);
    char state = settled_state(kid);
    if (state == 'T')
        kill(kid, SIGCONT); /* never leave it stopped, even when the test fails */
    cr_expect_lt(r, 0, "apply succeeded although its revert timer was never armed");
    cr_expect(strstr(err.msg, "cannot arm its revert timer: Cannot allocate "
                              "memory; reverted"),
              "%s", err.msg);
    cr_expect_neq(state, 'T', "the paused process was left stopped (state %c)", state);
    cr_expect_neq(state, '?', "the sleep child is gone");
    cr_assert(f);
    cr_expect_eq(engine_fault_state(f), FAULT_APPLY_FAILED);
    cr_expect_str_eq(engine_fault_error(f), err.msg);
    cr_expect_eq(ev.applied, 0, "a failed apply emits nothing");
    cr_expect_eq(engine_active_count(e), 0);
    cr_expect(journal_has("apply", engine_fault_id(f)), "the pause was not journalled first");
    cr_expect(journal_has("revert", engine_fault_id(f)), "the journal does not show the revert");
    size_t pending = 99;
    cr_expect_eq(journal_read_pending(flog.journal, NULL, NULL, NULL, &pending, &err), 0);
    cr_expect_eq(pending, 0, "the journal still says the pause is applied");
    engine_free(e);
    cr_expect_neq(access(flog.journal, F_OK), 0, "journal kept although nothing is applied");
    loop_free(l);
    fault_spec_free(spec);
    json_decref(t);
    json_decref(p);
    reap_sleep(kid);
}

Test(engine, revert_timer_unarmed_and_revert_failing_keeps_the_journal)
{
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    cr_assert_eq(engine_new(l, flog.journal, NULL, 0, &e, &err), 0);
    flog.fail_revert = true;
    struct engine_fault *f;
    loop_fail_next_timers(l, 1);
    cr_expect_lt(engine_apply(e, "p", spec_for(&lasting, 60000), on_event, NULL, &f, &err), 0);
    cr_expect(strstr(err.msg, "cannot arm its revert timer: "), "%s", err.msg);
    cr_expect(strstr(err.msg, "its revert failed too: fake revert failed; the journal keeps it"),
              "%s", err.msg);
    cr_expect_eq(engine_fault_state(f), FAULT_REVERT_FAILED);
    engine_free(e);
    size_t pending = 0;
    cr_expect_eq(journal_read_pending(flog.journal, NULL, NULL, NULL, &pending, &err), 0);
    cr_expect_eq(pending, 1, "a fault that may still be applied must stay in the journal");
    loop_free(l);
}

Test(engine, step_timer_unarmed_ends_a_repeated_fault_as_failed)
{
    struct loop *l = loop_new();
    struct engine *e;
    struct chaos_err err = {0};
    cr_assert_eq(engine_new(l, flog.journal, NULL, 0, &e, &err), 0);
    flog.steps_wanted = 3;
    struct events ev = {.loop = l, .stop_on_end = true};
    struct engine_fault *f;
    struct fault_spec rep = {.ops = &fake_ops, .info = {.natural_duration_ms = 80}};
    cr_assert_eq(engine_apply(e, "k", spec_for(&rep, -1), on_event, &ev, &f, &err), 0, "%s", err.msg);
    bool timed_out = false;
    cr_assert(loop_add_timer(l, loop_now_ms() + 3000, give_up, &timed_out));
    loop_fail_next_timers(l, 1); /* the next round's timer, armed by the first step */
    loop_run(l);
    cr_assert_not(timed_out, "the fault neither went on nor ended");
    cr_expect_eq(flog.steps, 1, "a round ran without its timer");
    cr_expect_eq(ev.aborted, 1);
    cr_expect_eq(ev.finished, 0, "reported finished although its rounds were cut short");
    cr_expect_eq(engine_fault_state(f), FAULT_ABORTED);
    cr_expect(strstr(ev.last, "cannot arm its timer for its next round: "), "%s",
              ev.last);
    cr_expect_eq(engine_active_count(e), 0);
    engine_free(e);
    loop_free(l);
}

static int count_cb(const char *id, const char *kind, const json_t *undo, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

Test(journal, torn_last_line_and_reverts_are_handled, .init = setup, .fini = teardown)
{
    struct chaos_err err = {0};
    struct journal *j;
    cr_assert_eq(journal_open(flog.journal, &j, &err), 0, "%s", err.msg);
    json_t *undo = json_pack("{s:i}", "x", 1);
    cr_assert_eq(journal_record_apply(j, "a", "process", undo, 0, &err), 0);
    cr_assert_eq(journal_record_apply(j, "b", "process", undo, 0, &err), 0);
    cr_assert_eq(journal_record_revert(j, "a", &err), 0);
    json_decref(undo);
    journal_close(j, false);
    /* A crash mid-write leaves half a line: it must be ignored, not fatal. */
    int fd = open(flog.journal, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "{\"op\":\"apply\",\"id\":\"c\"", 22), 22);
    close(fd);
    int n = 0;
    size_t pending;
    struct journal_owner owner;
    cr_expect_eq(journal_read_pending(flog.journal, &owner, count_cb, &n, &pending, &err), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(pending, 1);
    cr_expect(journal_owner_alive(&owner), "the owner (this process) is alive");
    owner.start += 1; /* same pid, other start time: a recycled pid */
    cr_expect_not(journal_owner_alive(&owner));
}
