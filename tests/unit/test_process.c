/* Unit tests of the process fault kind and its target resolution, with real
 * processes: every process signalled here is a child this test forked, with
 * a name or command line unique to the test run, and each test reaps all of
 * its children (they also die with the test through PR_SET_PDEATHSIG). */
#include "process_fixtures.h"

TestSuite(process, .init = setup, .fini = teardown, .timeout = 60);

/* ---- parse ---- */

Test(process, parse_accepts_good_faults)
{
    struct fault_info info;
    void *s = parse_ok("{\"name\":\"demo-worker\",\"pick\":1}",
                       "{\"action\":\"kill\",\"signal\":\"SIGKILL\"}", -1, &info);
    cr_assert(!info.lasting);
    cr_assert_eq(info.natural_duration_ms, 0);
    ops()->free_spec(s);

    s = parse_ok("{\"name\":\"demo-worker\",\"pick\":\"25%\",\"seed\":42}",
                 "{\"action\":\"kill\",\"every\":\"2s\",\"count\":3}", -1, &info);
    cr_assert(!info.lasting);
    cr_assert_eq(info.natural_duration_ms, 6000);
    ops()->free_spec(s);

    s = parse_ok("{\"cmdline\":\"^/usr/bin/python3 .*worker\\\\.py\"}", "{\"action\":\"pause\"}",
                 30000, &info);
    cr_assert(info.lasting);
    cr_assert_eq(info.natural_duration_ms, 0);
    ops()->free_spec(s);

    static const char *const targets[] = {
        "{\"pid\":812}",
        "{\"pidfile\":\"/run/x.pid\"}",
        "{\"cgroup\":\"unified/app\"}",
        "{\"cgroup\":\"/sys/fs/cgroup/pids/app/\"}",
        "{\"systemd_unit\":\"nginx.service\"}",
        "{\"systemd_unit\":\"session-1.scope\",\"pick\":\"all\"}",
        "{\"name\":\"exactly15chars_\",\"pick\":\"100%\",\"seed\":0}",
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        ops()->free_spec(parse_ok(targets[i], "{\"action\":\"kill\"}", -1, NULL));
    static const char *const signals[] = {"\"TERM\"",     "\"sigterm\"", "15", "\"SIGRTMIN+1\"",
                                          "\"SIGRTMAX\"", "\"SIGUSR1\"", "64"};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "{\"action\":\"kill\",\"signal\":%s}", signals[i]);
        ops()->free_spec(parse_ok("{\"pid\":812}", p, -1, NULL));
    }
}

Test(process, parse_rejects_bad_targets)
{
    const char *kill = "{\"action\":\"kill\"}";
    parse_bad(NULL, kill, -1, "target: required");
    parse_bad("[]", kill, -1, "target: must be an object");
    parse_bad("{}", kill, -1,
              "target: give exactly one of pid, name, cmdline, pidfile, cgroup, systemd_unit "
              "(got none)");
    parse_bad("{\"pid\":5,\"name\":\"x\"}", kill, -1, "(got pid and name)");
    parse_bad("{\"pick\":1}", kill, -1, "give exactly one of");
    parse_bad("{\"nmae\":\"x\"}", kill, -1, "target.nmae: unknown field; did you mean 'name'");
    parse_bad("{\"pid\":0}", kill, -1, "target.pid");
    parse_bad("{\"pid\":\"12\"}", kill, -1, "target.pid: must be an integer");
    parse_bad("{\"pid\":99999999}", kill, -1, "target.pid");
    parse_bad("{\"name\":\"\"}", kill, -1, "target.name: must not be empty");
    parse_bad("{\"name\":\"a-much-too-long-name\"}", kill, -1,
              "target.name: 'a-much-too-long-name'");
    parse_bad("{\"name\":\"a-much-too-long-name\"}", kill, -1, "at 15");
    parse_bad("{\"name\":3}", kill, -1, "target.name: must be a string");
    parse_bad("{\"cmdline\":\"(unclosed\"}", kill, -1, "target.cmdline: bad regular expression");
    parse_bad("{\"cmdline\":\"\"}", kill, -1, "target.cmdline: must not be empty");
    parse_bad("{\"pidfile\":\"run/x.pid\"}", kill, -1, "target.pidfile: must be an absolute path");
    parse_bad("{\"cgroup\":\"\"}", kill, -1, "target.cgroup: must not be empty");
    parse_bad("{\"cgroup\":\"unified/../../etc\"}", kill, -1, "target.cgroup: ");
    parse_bad("{\"systemd_unit\":\"nginx\"}", kill, -1,
              "target.systemd_unit: 'nginx' is not a unit");
    parse_bad("{\"systemd_unit\":\".service\"}", kill, -1, "target.systemd_unit");
    parse_bad("{\"systemd_unit\":\"a b.service\"}", kill, -1, "target.systemd_unit");
    static const char *const picks[] = {"0",      "-1",    "1.5",    "true", "\"some\"",
                                        "\"25\"", "\"%\"", "\"x%\"", "[1]"};
    for (size_t i = 0; i < sizeof picks / sizeof picks[0]; i++) {
        char t[128];
        snprintf(t, sizeof t, "{\"name\":\"w\",\"pick\":%s}", picks[i]);
        parse_bad(t, kill, -1,
                  "target.pick: must be \"all\", a positive integer or a percentage "
                  "like \"25%\"");
    }
    parse_bad("{\"name\":\"w\",\"pick\":\"0%\"}", kill, -1, "target.pick: \"0%\" is out of range");
    parse_bad("{\"name\":\"w\",\"pick\":\"101%\"}", kill, -1,
              "target.pick: \"101%\" is out of range");
    parse_bad("{\"name\":\"w\",\"seed\":-1}", kill, -1, "target.seed");
    parse_bad("{\"name\":\"w\",\"seed\":\"1\"}", kill, -1, "target.seed");
}

Test(process, parse_rejects_bad_params)
{
    const char *t = "{\"name\":\"w\"}";
    parse_bad(t, NULL, -1, "params: required");
    parse_bad(t, "3", -1, "params: must be an object");
    parse_bad(t, "{}", -1, "params.action: required field is missing");
    parse_bad(t, "{\"action\":\"stop\"}", -1, "params.action: must be \"kill\" or \"pause\"");
    parse_bad(t, "{\"action\":\"kill\",\"sginal\":9}", -1, "params.sginal: unknown field");
    parse_bad(t, "{\"action\":\"kill\",\"signal\":\"SIGSTOP\"}", -1, "params.signal: SIGSTOP");
    parse_bad(t, "{\"action\":\"kill\",\"signal\":\"STOP\"}", -1, "\"pause\"");
    parse_bad(t, "{\"action\":\"kill\",\"signal\":\"SIGCONT\"}", -1, "params.signal");
    parse_bad(t, "{\"action\":\"kill\",\"signal\":20}", -1, "params.signal: SIGTSTP");
    parse_bad(t, "{\"action\":\"kill\",\"signal\":\"SIGFOO\"}", -1,
              "params.signal: unknown signal 'SIGFOO' (use a name like SIGKILL, SIGTERM");
    parse_bad(t, "{\"action\":\"kill\",\"signal\":0}", -1, "params.signal: 0 is not a signal");
    parse_bad(t, "{\"action\":\"kill\",\"signal\":65}", -1, "params.signal: 65 is not a signal");
    parse_bad(t, "{\"action\":\"kill\",\"signal\":[]}", -1, "params.signal: must be");
    parse_bad(t, "{\"action\":\"kill\",\"count\":0}", -1, "params.count");
    parse_bad(t, "{\"action\":\"kill\",\"count\":10001,\"every\":\"1s\"}", -1, "params.count");
    parse_bad(t, "{\"action\":\"kill\",\"count\":3}", -1,
              "params.count: 3 rounds need params.every");
    parse_bad(t, "{\"action\":\"kill\",\"every\":\"1s\"}", -1, "params.every: needs params.count");
    parse_bad(t, "{\"action\":\"kill\",\"every\":\"1s\",\"count\":1}", -1, "params.every");
    parse_bad(t, "{\"action\":\"kill\",\"every\":\"0s\",\"count\":2}", -1,
              "params.every: must be more than 0");
    parse_bad(t, "{\"action\":\"kill\",\"every\":\"2\",\"count\":2}", -1, "params.every");
    parse_bad(t, "{\"action\":\"kill\",\"every\":2,\"count\":2}", -1, "params.every");
    parse_bad(t, "{\"action\":\"kill\",\"every\":\"7d\",\"count\":2}", -1, "params.every");
    parse_bad(t, "{\"action\":\"kill\",\"every\":\"24h\",\"count\":10}", -1,
              "params.count: every x count");
    parse_bad(t, "{\"action\":\"pause\",\"signal\":\"SIGTERM\"}", 1000,
              "params.signal: only for action \"kill\"");
    parse_bad(t, "{\"action\":\"pause\",\"every\":\"1s\",\"count\":2}", 1000, "params.every");
    parse_bad(t, "{\"action\":\"pause\",\"count\":2}", 1000, "params.count");
}

Test(process, parse_checks_duration_rules)
{
    const char *t = "{\"name\":\"w\"}";
    parse_bad(t, "{\"action\":\"pause\"}", -1,
              "faults[0] 't': duration: required for action pause (a paused process must be "
              "resumed)");
    parse_bad(t, "{\"action\":\"pause\"}", 0, "duration: must be more than 0");
    parse_bad(t, "{\"action\":\"kill\"}", 5000,
              "faults[0] 't': duration: a kill cannot be undone; use params.every and "
              "params.count to repeat it");
    parse_bad(t, "{\"action\":\"kill\",\"every\":\"1s\",\"count\":2}", 0, "duration: a kill");
}

Test(process, error_names_the_whole_path)
{
    void *spec = NULL;
    struct fault_info info;
    struct chaos_err err = {0};
    json_t *t = load("{\"name\":\"worker\",\"pick\":\"half\"}");
    json_t *p = load("{\"action\":\"kill\"}");
    int r = ops()->parse(t, p, "faults[1] 'kill worker'", &spec, &info, &err);
    json_decref(t);
    json_decref(p);
    cr_assert_eq(r, -EINVAL);
    cr_assert_str_eq(err.msg, "faults[1] 'kill worker': target.pick: must be \"all\", a positive "
                              "integer or a percentage like \"25%\", not \"half\"");
}

/* ---- selectors, with real processes ---- */

Test(process, name_selects_exactly_the_named)
{
    char a[16], b[16];
    snprintf(a, sizeof a, "%sa", fx.tag);
    snprintf(b, sizeof b, "%sb", fx.tag);
    pid_t want[2] = {spawn_named(a), spawn_named(a)};
    pid_t other = spawn_named(b);
    sort_pids(want, 2);

    char json[64];
    pid_t got[8];
    struct chaos_err err = {0};
    snprintf(json, sizeof json, "{\"name\":\"%s\"}", a);
    cr_assert_eq(resolve(json, got, 8, &err), 2, "%s", err.msg);
    cr_assert(got[0] == want[0] && got[1] == want[1]);

    snprintf(json, sizeof json, "{\"name\":\"%s\"}", b);
    cr_assert_eq(resolve(json, got, 8, &err), 1, "%s", err.msg);
    cr_assert_eq(got[0], other);
}

Test(process, cmdline_regex_matches_joined_arguments)
{
    char web[64], api[64];
    snprintf(web, sizeof web, "%s-web --port", fx.tag);
    snprintf(api, sizeof api, "%s-api --port", fx.tag);
    pid_t w1 = spawn_sleep(web), w2 = spawn_sleep(web), a1 = spawn_sleep(api);
    pid_t want[2] = {w1, w2};
    sort_pids(want, 2);

    char json[128];
    pid_t got[8];
    struct chaos_err err = {0};
    /* NULs between arguments read as single spaces: "<tag>-web --port 60". */
    snprintf(json, sizeof json, "{\"cmdline\":\"^%s-web --port 60$\"}", fx.tag);
    cr_assert_eq(resolve(json, got, 8, &err), 2, "%s", err.msg);
    cr_assert(got[0] == want[0] && got[1] == want[1]);

    snprintf(json, sizeof json, "{\"cmdline\":\"^%s-(api|nope) \"}", fx.tag);
    cr_assert_eq(resolve(json, got, 8, &err), 1, "%s", err.msg);
    cr_assert_eq(got[0], a1);
}

Test(process, pid_and_pidfile_select_one_process)
{
    pid_t kid = spawn_sleep("chaos-t-pidfile");
    char json[160], path[128];
    pid_t got[4];
    struct chaos_err err = {0};

    snprintf(json, sizeof json, "{\"pid\":%d}", (int)kid);
    cr_assert_eq(resolve(json, got, 4, &err), 1, "%s", err.msg);
    cr_assert_eq(got[0], kid);

    snprintf(path, sizeof path, "%s/kid.pid", fx.tmpdir);
    write_file(path, "%d\n", (int)kid);
    snprintf(json, sizeof json, "{\"pidfile\":\"%s\"}", path);
    cr_assert_eq(resolve(json, got, 4, &err), 1, "%s", err.msg);
    cr_assert_eq(got[0], kid);

    write_file(path, "not a pid\n");
    cr_assert_eq(resolve(json, got, 4, &err), -EINVAL);
    cr_assert(strstr(err.msg, "does not hold a pid"), "%s", err.msg);

    snprintf(json, sizeof json, "{\"pidfile\":\"%s/missing.pid\"}", fx.tmpdir);
    cr_assert_eq(resolve(json, got, 4, &err), -ESRCH);
    cr_assert(strstr(err.msg, "target matched no process (pidfile"), "%s", err.msg);
}

Test(process, cgroup_selects_its_members)
{
    char name[64], json[300];
    snprintf(name, sizeof name, "chaos-t-%d", (int)getpid());
    make_cgroup(name);
    char na[16], nb[16];
    snprintf(na, sizeof na, "%sin", fx.tag);
    snprintf(nb, sizeof nb, "%sout", fx.tag);
    pid_t in = spawn_named(na), out = spawn_named(nb);
    move_to_cgroup(in);

    pid_t got[4];
    struct chaos_err err = {0};
    snprintf(json, sizeof json, "{\"cgroup\":\"%s\"}", fx.cgroup);
    cr_assert_eq(resolve(json, got, 4, &err), 1, "%s", err.msg);
    cr_assert_eq(got[0], in);

    /* Relative to /sys/fs/cgroup. */
    snprintf(json, sizeof json, "{\"cgroup\":\"%s\"}", fx.cgroup + strlen("/sys/fs/cgroup/"));
    cr_assert_eq(resolve(json, got, 4, &err), 1, "%s", err.msg);
    cr_assert_eq(got[0], in);
    (void)out;

    snprintf(json, sizeof json, "{\"cgroup\":\"%s-none\"}", fx.cgroup);
    cr_assert_eq(resolve(json, got, 4, &err), -ENOENT);
    cr_assert(strstr(err.msg, "is not a cgroup"), "%s", err.msg);
}

Test(process, systemd_unit_selects_by_cgroup_path)
{
    char unit[64], json[128];
    snprintf(unit, sizeof unit, "chaos-t-%d.service", (int)getpid());
    make_cgroup(unit);
    char na[16], nb[16];
    snprintf(na, sizeof na, "%su", fx.tag);
    snprintf(nb, sizeof nb, "%sv", fx.tag);
    pid_t in = spawn_named(na);
    spawn_named(nb);
    move_to_cgroup(in);

    pid_t got[4];
    struct chaos_err err = {0};
    snprintf(json, sizeof json, "{\"systemd_unit\":\"%s\"}", unit);
    cr_assert_eq(resolve(json, got, 4, &err), 1, "%s", err.msg);
    cr_assert_eq(got[0], in);
}

Test(process, zombies_and_protected_are_skipped)
{
    char z[16], p[16], json[64];
    snprintf(z, sizeof z, "%sz", fx.tag);
    snprintf(p, sizeof p, "%sp", fx.tag);
    pid_t zombie = spawn_named(z);
    cr_assert_eq(kill(zombie, SIGKILL), 0);
    for (int i = 0; i < 300 && pstate(zombie) != 'Z'; i++)
        usleep(10000);
    cr_assert_eq(pstate(zombie), 'Z');

    pid_t got[4];
    struct chaos_err err = {0};
    snprintf(json, sizeof json, "{\"name\":\"%s\"}", z);
    cr_assert_eq(resolve(json, got, 4, &err), -ESRCH);
    char want[96];
    snprintf(want, sizeof want, "target matched no process (name '%s')", z);
    cr_assert_str_eq(err.msg, want);
    snprintf(json, sizeof json, "{\"pid\":%d}", (int)zombie);
    cr_assert_eq(resolve(json, got, 4, &err), -ESRCH, "%s", err.msg);

    /* A protected process matched by a selector is skipped silently... */
    pid_t prot = spawn_named(p);
    struct fault_env env = make_env();
    env.protected_pids[env.n_protected++] = prot;
    void *state;
    int64_t next;
    snprintf(json, sizeof json, "{\"name\":\"%s\"}", p);
    cr_assert_eq(apply(json, "{\"action\":\"kill\"}", -1, &env, &state, &next, &err), -ESRCH);
    cr_assert(pstate(prot) != 0 && pstate(prot) != 'Z', "a protected process was killed");
    /* ...but naming it explicitly is an error. */
    snprintf(json, sizeof json, "{\"pid\":%d}", (int)prot);
    cr_assert_eq(apply(json, "{\"action\":\"kill\"}", -1, &env, &state, &next, &err), -EPERM);
    cr_assert(strstr(err.msg, "is protected"), "%s", err.msg);
}

Test(process, pid_1_and_self_are_refused)
{
    struct fault_env env = make_env();
    struct chaos_err err = {0};
    void *state;
    int64_t next;
    /* A literal pid 1 is refused when the target is parsed, so that
     * `chaos validate` refuses it too, not only a run. */
    parse_bad("{\"pid\":1}", "{\"action\":\"kill\"}", -1,
              "target.pid: 1 is init; chaos never signals PID 1");
    char json[64];
    snprintf(json, sizeof json, "{\"pid\":%d}", (int)getpid());
    cr_assert_eq(apply(json, "{\"action\":\"pause\"}", 1000, &env, &state, &next, &err), -EPERM);
    snprintf(json, sizeof json, "{\"pid\":%d}", (int)getppid());
    cr_assert_eq(apply(json, "{\"action\":\"kill\"}", -1, &env, &state, &next, &err), -EPERM);

    /* A pidfile is as explicit as a pid. */
    char path[128], pjson[160];
    snprintf(path, sizeof path, "%s/init.pid", fx.tmpdir);
    write_file(path, "1\n");
    snprintf(pjson, sizeof pjson, "{\"pidfile\":\"%s\"}", path);
    cr_assert_eq(apply(pjson, "{\"action\":\"kill\"}", -1, &env, &state, &next, &err), -EPERM);
    cr_assert(strstr(err.msg, "target pid 1 is protected"), "%s", err.msg);
}

/* A FIFO named as a pidfile would block the run's loop in open() until some
 * process wrote to it (issue 13): it is refused at once, as is a folder. */
Test(process, pidfile_fifo_is_refused_without_blocking, .timeout = 10)
{
    struct fault_env env = make_env();
    struct chaos_err err = {0};
    void *state;
    int64_t next;
    char path[128], pjson[160];
    snprintf(path, sizeof path, "%s/fifo.pid", fx.tmpdir);
    cr_assert(mkfifo(path, 0600) == 0, "mkfifo: %s", strerror(errno));
    snprintf(pjson, sizeof pjson, "{\"pidfile\":\"%s\"}", path);
    cr_assert_eq(apply(pjson, "{\"action\":\"kill\"}", -1, &env, &state, &next, &err), -EINVAL);
    cr_assert(strstr(err.msg, "target.pidfile: ") && strstr(err.msg, "is not a regular file"),
              "%s", err.msg);
    snprintf(pjson, sizeof pjson, "{\"pidfile\":\"%s\"}", fx.tmpdir);
    cr_assert_eq(apply(pjson, "{\"action\":\"kill\"}", -1, &env, &state, &next, &err), -EINVAL);
    cr_assert(strstr(err.msg, "is not a regular file"), "%s", err.msg);
}

/* A cgroup root lists every process not in a child cgroup (in a container,
 * the caller's shell too): refused unless the target says it means it. */
Test(process, cgroup_root_needs_allow_cgroup_root)
{
    parse_bad("{\"cgroup\":\"/sys/fs/cgroup\"}", "{\"action\":\"kill\"}", -1,
              "target.cgroup: /sys/fs/cgroup is the root of a cgroup hierarchy");
    parse_bad("{\"cgroup\":\"/sys/fs/cgroup/\"}", "{\"action\":\"pause\"}", 1000,
              "set \"allow_cgroup_root\": true in the target if you mean it");
    void *spec = parse_ok("{\"cgroup\":\"/sys/fs/cgroup\", \"allow_cgroup_root\": true}",
                          "{\"action\":\"kill\"}", -1, NULL);
    ops()->free_spec(spec);
    spec = parse_ok("{\"cgroup\":\"system.slice/x.service\"}", "{\"action\":\"kill\"}", -1,
                    NULL);
    ops()->free_spec(spec);
    parse_bad("{\"name\":\"w\", \"allow_cgroup_root\": true}", "{\"action\":\"kill\"}", -1,
              "target.allow_cgroup_root: only goes with a cgroup selector");
}

/* ---- pick ---- */

Test(process, pick_is_deterministic_for_a_seed)
{
    struct proc_ent ents[100], a[100], b[100];
    for (int i = 0; i < 100; i++)
        ents[i] = (struct proc_ent){.pid = 1000 + 3 * i, .start = (unsigned long long)i};
    struct proc_target *t = target("{\"name\":\"w\",\"pick\":7,\"seed\":1234}");
    uint64_t rng_a = 1234, rng_b = 1234, seed;
    size_t na = 100, nb = 100;
    memcpy(a, ents, sizeof ents);
    memcpy(b, ents, sizeof ents);
    proc_target_pick(t, &rng_a, a, &na);
    proc_target_pick(t, &rng_b, b, &nb);
    cr_assert_eq(na, 7);
    cr_assert_eq(nb, 7);
    for (size_t i = 0; i < 7; i++) {
        cr_assert_eq(a[i].pid, b[i].pid);
        if (i)
            cr_assert(a[i - 1].pid < a[i].pid, "picked list not sorted");
    }
    cr_assert_eq(proc_target_seed(t, &seed, NULL), 0);
    cr_assert_eq(seed, 1234);
    /* The PRNG continues: a second round from the advanced state differs
     * from the first in some pick (7 of 100: a repeat is unlikely enough). */
    nb = 100;
    memcpy(b, ents, sizeof ents);
    proc_target_pick(t, &rng_b, b, &nb);
    cr_assert(memcmp(a, b, 7 * sizeof *a) != 0, "the PRNG did not advance");
    proc_target_free(t);

    /* Percentages round up; counts above the candidates take all. */
    static const struct {
        const char *pick;
        size_t have, want;
    } cases[] = {
        {"\"25%\"", 5, 2},    {"\"1%\"", 5, 1}, {"\"100%\"", 5, 5}, {"\"50%\"", 1, 1},
        {"\"33%\"", 100, 33}, {"3", 2, 2},      {"3", 5, 3},        {"\"all\"", 9, 9},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char json[64];
        snprintf(json, sizeof json, "{\"name\":\"w\",\"pick\":%s}", cases[c].pick);
        t = target(json);
        size_t n = cases[c].have;
        uint64_t rng = 99;
        memcpy(a, ents, sizeof ents);
        proc_target_pick(t, &rng, a, &n);
        cr_assert_eq(n, cases[c].want, "pick %s of %zu gave %zu", cases[c].pick, cases[c].have, n);
        proc_target_free(t);
    }
}

Test(process, drawn_seed_is_shown_and_repeats_the_pick)
{
    char name[16], json[128], desc[512];
    snprintf(name, sizeof name, "%ss", fx.tag);
    for (int i = 0; i < 6; i++)
        spawn_named(name);
    struct fault_env env = make_env();
    struct chaos_err err = {0};
    void *state;
    int64_t next;

    /* Pausing picks without killing, so the same processes stay to pick again. */
    open_journal();
    env.journal = fx.journal;
    snprintf(json, sizeof json, "{\"name\":\"%s\",\"pick\":2}", name);
    cr_assert_eq(apply(json, "{\"action\":\"pause\"}", 1000, &env, &state, &next, &err), 0, "%s",
                 err.msg);
    ops()->describe(state, desc, sizeof desc);
    const char *s = strstr(desc, "; pick seed ");
    cr_assert(s, "describe shows no seed: %s", desc);
    unsigned long long seed = strtoull(s + strlen("; pick seed "), NULL, 10);
    cr_assert_eq(ops()->revert(&env, state, &err), 0, "%s", err.msg);
    char first[512];
    snprintf(first, sizeof first, "%s", desc);
    ops()->free_state(state);

    snprintf(json, sizeof json, "{\"name\":\"%s\",\"pick\":2,\"seed\":%llu}", name, seed);
    cr_assert_eq(apply(json, "{\"action\":\"pause\"}", 1000, &env, &state, &next, &err), 0, "%s",
                 err.msg);
    ops()->describe(state, desc, sizeof desc);
    cr_assert_str_eq(desc, first);
    cr_assert_eq(ops()->revert(&env, state, &err), 0, "%s", err.msg);
    ops()->free_state(state);

    /* Picking all shows no seed: there is nothing to repeat. */
    snprintf(json, sizeof json, "{\"name\":\"%s\"}", name);
    cr_assert_eq(apply(json, "{\"action\":\"pause\"}", 1000, &env, &state, &next, &err), 0, "%s",
                 err.msg);
    ops()->describe(state, desc, sizeof desc);
    cr_assert(strncmp(desc, "paused 6 processes: ", 20) == 0, "%s", desc);
    cr_assert(!strstr(desc, "seed"), "%s", desc);
    cr_assert_eq(ops()->revert(&env, state, &err), 0, "%s", err.msg);
    ops()->free_state(state);
}

/* ---- pidfds ---- */

Test(process, a_recycled_pid_is_never_signalled)
{
    pid_t kid = spawn_sleep("chaos-t-recycled");
    struct proc_ent e;
    cr_assert_eq(proc_target_stat(kid, &e, NULL), 0);
    cr_assert_str_eq(e.comm, "sleep");
    int fd = proc_target_pidfd(&e, NULL);
    cr_assert(fd >= 0, "pidfd: %s", strerror(-fd));
    close(fd);
    /* The same PID with another start time is another process. */
    e.start += 1;
    cr_assert_eq(proc_target_pidfd(&e, NULL), -ESRCH);
    /* A process that exited: its pidfd says ESRCH, never a newcomer. */
    e.start -= 1;
    fd = proc_target_pidfd(&e, NULL);
    cr_assert(fd >= 0);
    int status = reap(kid);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(proc_target_signal(fd, SIGTERM), -ESRCH);
    close(fd);
}
