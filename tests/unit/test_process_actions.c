/* Unit tests of the process kind's actions with real processes: pause and
 * its revert, the journal and recovery, kill and repeated kills. */
#include "process_fixtures.h"

TestSuite(process, .init = setup, .fini = teardown, .timeout = 60);

/* ---- pause ---- */

Test(process, pause_journals_stops_and_revert_resumes)
{
    char name[16], json[64], desc[512], want[512];
    snprintf(name, sizeof name, "%sw", fx.tag);
    pid_t k[2] = {spawn_named(name), spawn_named(name)};
    sort_pids(k, 2);
    open_journal();
    struct fault_env env = make_env();
    struct chaos_err err = {0};
    void *state;
    int64_t next;

    snprintf(json, sizeof json, "{\"name\":\"%s\"}", name);
    cr_assert_eq(apply(json, "{\"action\":\"pause\"}", 5000, &env, &state, &next, &err), 0, "%s",
                 err.msg);
    cr_assert(next <= 0, "a pause needs no steps");
    for (int i = 0; i < 2; i++)
        cr_assert(wait_for(k[i], true), "%d not stopped", (int)k[i]);
    ops()->describe(state, desc, sizeof desc);
    snprintf(want, sizeof want, "paused 2 processes: %d (%s), %d (%s)", (int)k[0], name, (int)k[1],
             name);
    cr_assert_str_eq(desc, want);

    json_t *undo = journalled_undo("f1-test");
    cr_assert(undo, "no undo record in the journal");
    cr_assert_eq(json_array_size(json_object_get(undo, "pids")), 2);
    for (int i = 0; i < 2; i++) {
        struct proc_ent e;
        cr_assert_eq(proc_target_stat(k[i], &e, NULL), 0);
        cr_assert(undo_has_pid(undo, k[i], e.start), "undo lacks %d", (int)k[i]);
    }
    json_decref(undo);

    cr_assert_eq(ops()->revert(&env, state, &err), 0, "%s", err.msg);
    for (int i = 0; i < 2; i++)
        cr_assert(wait_for(k[i], false), "%d not resumed", (int)k[i]);
    ops()->describe(state, desc, sizeof desc);
    cr_assert(strncmp(desc, "resumed 2 processes: ", 21) == 0, "%s", desc);
    ops()->free_state(state);
}

Test(process, odd_names_are_shown_and_journalled_safely)
{
    /* A name is any bytes: control characters and invalid UTF-8 must not
     * break the journal (JSON) or a terminal. */
    char name[16], json[64], desc[256], want[64];
    snprintf(name, sizeof name, "%s\x01\xff\xc3\xa9", fx.tag);
    snprintf(want, sizeof want, "%s??\xc3\xa9", fx.tag);
    pid_t kid = spawn_named(name);
    open_journal();
    struct fault_env env = make_env();
    struct chaos_err err = {0};
    void *state;
    int64_t next;
    snprintf(json, sizeof json, "{\"pid\":%d}", (int)kid);
    cr_assert_eq(apply(json, "{\"action\":\"pause\"}", 5000, &env, &state, &next, &err), 0, "%s",
                 err.msg);
    ops()->describe(state, desc, sizeof desc);
    cr_assert(strstr(desc, want), "%s", desc);
    json_t *undo = journalled_undo("f1-test");
    cr_assert(undo);
    cr_assert_str_eq(json_string_value(
                         json_object_get(json_array_get(json_object_get(undo, "pids"), 0), "comm")),
                     want);
    json_decref(undo);
    cr_assert_eq(ops()->revert(&env, state, &err), 0, "%s", err.msg);
    cr_assert(wait_for(kid, false));
    ops()->free_state(state);

    /* Some kernels escape a backslash in /proc/PID/stat; the name selector
     * matches the name as it is (/proc/PID/comm). */
    char bs[16], got_json[96];
    snprintf(bs, sizeof bs, "%s\\t", fx.tag);
    pid_t kbs = spawn_named(bs);
    snprintf(got_json, sizeof got_json, "{\"name\":\"%s\\\\t\"}", fx.tag);
    pid_t got[2];
    cr_assert_eq(resolve(got_json, got, 2, &err), 1, "%s", err.msg);
    cr_assert_eq(got[0], kbs);
}

Test(process, pause_stops_nothing_when_the_journal_fails)
{
    char name[16], json[64];
    snprintf(name, sizeof name, "%sj", fx.tag);
    pid_t kid = spawn_named(name);
    struct fault_env env = make_env();
    env.journal = NULL; /* fault_journal_undo refuses: nothing may be stopped */
    struct chaos_err err = {0};
    void *state;
    int64_t next;
    snprintf(json, sizeof json, "{\"name\":\"%s\"}", name);
    cr_assert(apply(json, "{\"action\":\"pause\"}", 5000, &env, &state, &next, &err) < 0);
    usleep(50000);
    cr_assert(pstate(kid) != 'T', "stopped although the undo record was not written");
}

Test(process, revert_counts_a_vanished_process_as_resumed)
{
    char name[16], json[64];
    snprintf(name, sizeof name, "%sg", fx.tag);
    pid_t gone = spawn_named(name), stays = spawn_named(name);
    open_journal();
    struct fault_env env = make_env();
    struct chaos_err err = {0};
    void *state;
    int64_t next;
    snprintf(json, sizeof json, "{\"name\":\"%s\"}", name);
    cr_assert_eq(apply(json, "{\"action\":\"pause\"}", 5000, &env, &state, &next, &err), 0, "%s",
                 err.msg);
    cr_assert(wait_for(gone, true));
    reap(gone);
    cr_assert_eq(ops()->revert(&env, state, &err), 0, "%s", err.msg);
    cr_assert(wait_for(stays, false));
    /* Reverting again is harmless. */
    cr_assert_eq(ops()->revert(&env, state, &err), 0, "%s", err.msg);
    ops()->free_state(state);
}

Test(process, a_crash_leaves_the_pause_to_recovery)
{
    char name[16], json[64];
    snprintf(name, sizeof name, "%sc", fx.tag);
    pid_t kid = spawn_named(name);
    open_journal();
    struct fault_env env = make_env();
    struct chaos_err err = {0};
    void *state;
    int64_t next;
    snprintf(json, sizeof json, "{\"name\":\"%s\"}", name);
    cr_assert_eq(apply(json, "{\"action\":\"pause\"}", 5000, &env, &state, &next, &err), 0, "%s",
                 err.msg);
    cr_assert(wait_for(kid, true));
    /* The engine going away frees the state without reverting... */
    ops()->free_state(state);
    usleep(50000);
    cr_assert_eq(pstate(kid), 'T', "freeing the state resumed the process");
    /* ...and its successor resumes it from the journal alone. */
    json_t *undo = journalled_undo("f1-test");
    cr_assert(undo);
    cr_assert_eq(ops()->recover(undo, &err), 0, "%s", err.msg);
    json_decref(undo);
    cr_assert(wait_for(kid, false), "recovery did not resume %d", (int)kid);
}

Test(process, recover_resumes_only_the_same_process)
{
    pid_t same = spawn_sleep("chaos-t-recover-a"), other = spawn_sleep("chaos-t-recover-b");
    struct proc_ent es, eo;
    cr_assert_eq(proc_target_stat(same, &es, NULL), 0);
    cr_assert_eq(proc_target_stat(other, &eo, NULL), 0);
    cr_assert_eq(kill(same, SIGSTOP), 0);
    cr_assert_eq(kill(other, SIGSTOP), 0);
    cr_assert(wait_for(same, true) && wait_for(other, true));

    /* other's record has another start time: as if its PID were recycled. */
    char buf[256];
    snprintf(buf, sizeof buf,
             "{\"pids\":[{\"pid\":%d,\"start\":%llu,\"comm\":\"sleep\"},"
             "{\"pid\":%d,\"start\":%llu,\"comm\":\"sleep\"}]}",
             (int)same, es.start, (int)other, eo.start + 7);
    json_t *undo = load(buf);
    struct chaos_err err = {0};
    cr_assert_eq(ops()->recover(undo, &err), 0, "%s", err.msg);
    cr_assert(wait_for(same, false), "recover did not resume %d", (int)same);
    usleep(100000);
    cr_assert_eq(pstate(other), 'T', "recover touched a process with another start time");
    /* Idempotent. */
    cr_assert_eq(ops()->recover(undo, &err), 0, "%s", err.msg);
    json_decref(undo);

    /* Gone processes and an empty record are fine; a broken record is not. */
    reap(same);
    undo = load(buf);
    cr_assert_eq(ops()->recover(undo, &err), 0, "%s", err.msg);
    json_decref(undo);
    undo = load("{\"pids\":[]}");
    cr_assert_eq(ops()->recover(undo, &err), 0, "%s", err.msg);
    json_decref(undo);
    undo = load("{\"pids\":[{\"pid\":\"x\"}]}");
    cr_assert_eq(ops()->recover(undo, &err), -EINVAL);
    json_decref(undo);
    undo = load("{}");
    cr_assert_eq(ops()->recover(undo, &err), -EINVAL);
    json_decref(undo);
}

/* ---- kill ---- */

Test(process, kill_signals_the_picked)
{
    char name[16], json[64], desc[256], want[256];
    snprintf(name, sizeof name, "%sk", fx.tag);
    pid_t kid = spawn_named(name);
    struct fault_env env = make_env();
    struct chaos_err err = {0};
    void *state;
    int64_t next;
    snprintf(json, sizeof json, "{\"name\":\"%s\"}", name);
    cr_assert_eq(
        apply(json, "{\"action\":\"kill\",\"signal\":\"TERM\"}", -1, &env, &state, &next, &err), 0,
        "%s", err.msg);
    cr_assert(next <= 0, "a one-shot kill needs no steps");
    ops()->describe(state, desc, sizeof desc);
    snprintf(want, sizeof want, "killed 1 process with SIGTERM: %d (%s)", (int)kid, name);
    cr_assert_str_eq(desc, want);
    ops()->free_state(state);
    int status = reap(kid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "status %#x", status);

    /* Nothing left to match: ESRCH naming the selector. */
    cr_assert_eq(apply(json, "{\"action\":\"kill\"}", -1, &env, &state, &next, &err), -ESRCH);
    snprintf(want, sizeof want, "target matched no process (name '%s')", name);
    cr_assert_str_eq(err.msg, want);
}

Test(process, repeated_kill_follows_respawned_workers)
{
    char name[16], json[96], desc[256], want[256];
    snprintf(name, sizeof name, "%sr", fx.tag);
    pid_t kid = spawn_named(name);
    spawn_sleep("chaos-t-bystander");
    struct fault_env env = make_env();
    struct chaos_err err = {0};
    void *state;
    int64_t next;
    snprintf(json, sizeof json, "{\"name\":\"%s\",\"pick\":1,\"seed\":5}", name);
    cr_assert_eq(apply(json, "{\"action\":\"kill\",\"every\":\"50ms\",\"count\":4}", -1, &env,
                       &state, &next, &err),
                 0, "%s", err.msg);
    cr_assert_eq(next, 50);
    int status = reap(kid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
    ops()->describe(state, desc, sizeof desc);
    snprintf(want, sizeof want, "killed 1 process with SIGKILL (round 1/4): %d (%s); pick seed 5",
             (int)kid, name);
    cr_assert_str_eq(desc, want);

    /* A supervisor would restart the worker under a new PID. */
    kid = spawn_named(name);
    cr_assert_eq(ops()->step(&env, state, &next, &err), 0, "%s", err.msg);
    cr_assert_eq(next, 50);
    status = reap(kid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ops()->describe(state, desc, sizeof desc);
    cr_assert(strstr(desc, "(round 2/4)"), "%s", desc);

    /* No worker this round: an error, but the rounds go on. */
    cr_assert_eq(ops()->step(&env, state, &next, &err), -ESRCH);
    cr_assert(strstr(err.msg, "target matched no process"), "%s", err.msg);
    cr_assert_eq(next, 50);
    ops()->describe(state, desc, sizeof desc);
    snprintf(want, sizeof want, "kill (round 3/4) signalled no process (name '%s', pick 1); pick seed 5",
             name);
    cr_assert_str_eq(desc, want);

    kid = spawn_named(name);
    cr_assert_eq(ops()->step(&env, state, &next, &err), 0, "%s", err.msg);
    cr_assert(next <= 0, "the last round scheduled another: %lld", (long long)next);
    status = reap(kid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ops()->free_state(state);
}
