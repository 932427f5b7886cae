/* Unit tests of the process fault kind and its target resolution, with real
 * processes: every process signalled here is a child this test forked, with
 * a name or command line unique to the test run, and each test reaps all of
 * its children (they also die with the test through PR_SET_PDEATHSIG). */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "journal.h"
#include "proc_target.h"

#define CGROUP2_MAGIC 0x63677270

#define MAX_KIDS 32

/* What a test created, so .fini removes it even when an assertion fails. */
static struct {
    pid_t kids[MAX_KIDS];
    size_t n_kids;
    char tag[10]; /* "ct<pid>": prefix of every name this test uses */
    char tmpdir[64];
    char cgroup[256]; /* a cgroup dir we made, or "" */
    struct journal *journal;
} fx;

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    /* PIDs have at most 7 digits (4194304), so every name fits comm's 15. */
    snprintf(fx.tag, sizeof fx.tag, "ct%u", (unsigned)getpid() % 10000000u);
    snprintf(fx.tmpdir, sizeof fx.tmpdir, "/tmp/chaos-t-proc-%d", (int)getpid());
    cr_assert(mkdir(fx.tmpdir, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", fx.tmpdir,
              strerror(errno));
}

static void forget_kid(pid_t pid)
{
    for (size_t i = 0; i < fx.n_kids; i++)
        if (fx.kids[i] == pid) {
            fx.kids[i] = fx.kids[--fx.n_kids];
            return;
        }
}

/* Kills (if needed) and reaps a child; returns its wait status. */
static int reap(pid_t pid)
{
    int status = 0;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    forget_kid(pid);
    return status;
}

static void teardown(void)
{
    while (fx.n_kids > 0)
        reap(fx.kids[0]);
    if (fx.cgroup[0]) {
        /* The cgroup empties once its last member is reaped; allow a moment. */
        for (int i = 0; i < 100 && rmdir(fx.cgroup) < 0 && errno == EBUSY; i++)
            usleep(10000);
    }
    if (fx.journal)
        journal_close(fx.journal, true);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx.tmpdir);
    if (system(cmd) != 0) {
        /* Only a temp folder: nothing to do about it. */
    }
}

TestSuite(process, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ---- */

static bool read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

static bool comm_is(pid_t pid, const char *comm)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    if (!read_small(path, buf, sizeof buf))
        return false;
    buf[strcspn(buf, "\n")] = '\0';
    return strcmp(buf, comm) == 0;
}

/* The state letter of /proc/PID/stat ('S', 'T', 'Z', ...), or 0 when gone. */
static char pstate(pid_t pid)
{
    struct proc_ent e;
    char st = 0;
    if (proc_target_stat(pid, &e, &st) < 0)
        return 0;
    return st;
}

static bool wait_for(pid_t pid, bool want_stopped)
{
    for (int i = 0; i < 300; i++) {
        char s = pstate(pid);
        if ((s == 'T') == want_stopped)
            return true;
        usleep(10000);
    }
    return false;
}

static void wait_comm(pid_t pid, const char *comm)
{
    for (int i = 0; i < 500; i++) {
        if (comm_is(pid, comm))
            return;
        usleep(10000);
    }
    cr_assert_fail("child %d never got the name '%s'", (int)pid, comm);
}

static pid_t track(pid_t pid)
{
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    cr_assert(fx.n_kids < MAX_KIDS);
    fx.kids[fx.n_kids++] = pid;
    return pid;
}

/* A child that dies with us, even if we crash. */
static void child_prologue(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(126);
}

/* A child named comm (as /proc/PID/comm shows it) that waits forever. */
static pid_t spawn_named(const char *comm)
{
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        child_prologue(parent);
        prctl(PR_SET_NAME, comm);
        for (;;)
            pause();
    }
    track(pid);
    wait_comm(pid, comm);
    return pid;
}

/* `sleep 60` exec'd with argv[0] = argv0, so its cmdline reads "<argv0> 60"
 * (argv0 makes it unique) while its comm is "sleep". */
static pid_t spawn_sleep(const char *argv0)
{
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        child_prologue(parent);
        char *argv[] = {(char *)argv0, (char *)"60", NULL};
        execvp("sleep", argv);
        _exit(127);
    }
    track(pid);
    wait_comm(pid, "sleep");
    return pid;
}

static struct fault_env make_env(void)
{
    struct fault_env env = {
        .protected_pids = {1, getpid(), getppid()},
        .n_protected = 3,
        .journal = fx.journal,
        .fault_id = "f1-test",
        .kind = "process",
    };
    return env;
}

static void open_journal(void)
{
    char path[128];
    struct chaos_err err = {0};
    snprintf(path, sizeof path, "%s/journal.jsonl", fx.tmpdir);
    cr_assert(journal_open(path, &fx.journal, &err) == 0, "journal_open: %s", err.msg);
}

static const struct fault_ops *ops(void)
{
    const struct fault_ops *o = fault_ops_find("process");
    cr_assert(o, "the registry does not know the process kind");
    return o;
}

static json_t *load(const char *s)
{
    if (!s)
        return NULL;
    json_error_t je;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
    cr_assert(j, "bad test JSON '%s': %s", s, je.text);
    return j;
}

/* Parses with ctx "faults[0] 't'" through the engine's one validation entry
 * point (which also checks the duration); returns its result, and the kind's
 * own spec in *spec (the caller's, for ops()->free_spec). */
static int parse(const char *target, const char *params, int64_t duration_ms, void **spec,
                 struct fault_info *info, struct chaos_err *err)
{
    json_t *t = load(target), *p = load(params);
    struct fault_spec *fs = NULL;
    int r = fault_spec_parse("process", t, p, "faults[0] 't'", duration_ms, &fs, err);
    json_decref(t);
    json_decref(p);
    *spec = NULL;
    if (r == 0) {
        *info = *fault_spec_info(fs);
        *spec = fs->spec;
        fs->spec = NULL;
        fault_spec_free(fs);
    }
    return r;
}

static void *parse_ok(const char *target, const char *params, int64_t duration_ms,
                      struct fault_info *info)
{
    void *spec = NULL;
    struct fault_info dummy;
    struct chaos_err err = {0};
    int r = parse(target, params, duration_ms, &spec, info ? info : &dummy, &err);
    cr_assert(r == 0, "parse(%s, %s) failed: %s", target, params, err.msg);
    cr_assert(spec);
    return spec;
}

/* Parsing must fail with a message that holds every given needle. */
static void parse_bad(const char *target, const char *params, int64_t duration_ms,
                      const char *needle)
{
    void *spec = NULL;
    struct fault_info info;
    struct chaos_err err = {0};
    int r = parse(target, params, duration_ms, &spec, &info, &err);
    cr_assert(r < 0, "parse(%s, %s) should fail", target, params);
    cr_assert(spec == NULL);
    cr_assert(err.code != 0 && r == -err.code, "code %d vs %d", r, err.code);
    cr_assert(strncmp(err.msg, "faults[0] 't': ", 15) == 0, "no ctx prefix: %s", err.msg);
    cr_assert(strstr(err.msg, needle), "parse(%s, %s): message '%s' lacks '%s'", target, params,
              err.msg, needle);
}

/* Parses, applies and frees the spec right away (the state must not need it). */
static int apply(const char *target, const char *params, int64_t duration_ms,
                 const struct fault_env *env, void **state, int64_t *next, struct chaos_err *err)
{
    void *spec = parse_ok(target, params, duration_ms, NULL);
    *next = -1;
    *state = NULL;
    int r = ops()->apply(env, spec, state, next, err);
    ops()->free_spec(spec);
    if (r < 0)
        cr_assert(*state == NULL, "a failed apply left state");
    return r;
}

static struct proc_target *target(const char *json)
{
    json_t *t = load(json);
    struct proc_target *pt = NULL;
    struct chaos_err err = {0};
    int r = proc_target_parse(t, "target", NULL, &pt, &err);
    json_decref(t);
    cr_assert(r == 0, "proc_target_parse(%s): %s", json, err.msg);
    return pt;
}

/* Resolves json; returns the number of processes and fills pids (sorted). */
static int resolve(const char *json, pid_t *pids, size_t max, struct chaos_err *err)
{
    struct proc_target *t = target(json);
    struct fault_env env = make_env();
    struct proc_ent *ents = NULL;
    size_t n = 0;
    int r = proc_target_resolve(t, &env, &ents, &n, err);
    proc_target_free(t);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && i < max; i++)
        pids[i] = ents[i].pid;
    free(ents);
    return (int)n;
}

static int cmp_pid(const void *a, const void *b)
{
    return (*(const pid_t *)a > *(const pid_t *)b) - (*(const pid_t *)a < *(const pid_t *)b);
}

static void sort_pids(pid_t *p, size_t n)
{
    qsort(p, n, sizeof *p, cmp_pid);
}

__attribute__((format(printf, 2, 3))) static void write_file(const char *path, const char *fmt, ...)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "open %s: %s", path, strerror(errno));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    cr_assert_eq(fclose(f), 0);
}

/* The cgroup v2 mount: /sys/fs/cgroup/unified on hybrid systems, else
 * /sys/fs/cgroup when it is v2 itself; NULL when there is none. */
static const char *cgroup2_root(void)
{
    static const char *const roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
    for (size_t i = 0; i < 2; i++) {
        struct statfs sf;
        if (statfs(roots[i], &sf) == 0 && sf.f_type == CGROUP2_MAGIC)
            return roots[i];
    }
    return NULL;
}

static void make_cgroup(const char *name)
{
    const char *root = cgroup2_root();
    if (!root)
        cr_skip_test("no cgroup v2 mount");
    snprintf(fx.cgroup, sizeof fx.cgroup, "%s/%s", root, name);
    cr_assert(mkdir(fx.cgroup, 0755) == 0, "mkdir %s: %s", fx.cgroup, strerror(errno));
}

static void move_to_cgroup(pid_t pid)
{
    char path[300], line[32];
    snprintf(path, sizeof path, "%s/cgroup.procs", fx.cgroup);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    int len = snprintf(line, sizeof line, "%d\n", (int)pid);
    cr_assert(write(fd, line, (size_t)len) == len, "moving %d: %s", (int)pid, strerror(errno));
    close(fd);
}

/* The undo record the journal holds for id, or NULL (caller decrefs). */
static json_t *journalled_undo(const char *id)
{
    char path[128], *line = NULL;
    size_t cap = 0;
    snprintf(path, sizeof path, "%s/journal.jsonl", fx.tmpdir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "open %s: %s", path, strerror(errno));
    json_t *undo = NULL;
    while (getline(&line, &cap, f) > 0) {
        json_t *rec = json_loads(line, 0, NULL);
        const char *op = json_string_value(json_object_get(rec, "op"));
        const char *rid = json_string_value(json_object_get(rec, "id"));
        if (op && rid && strcmp(op, "apply") == 0 && strcmp(rid, id) == 0) {
            json_decref(undo);
            undo = json_incref(json_object_get(rec, "undo"));
        }
        json_decref(rec);
    }
    free(line);
    fclose(f);
    return undo;
}

static bool undo_has_pid(const json_t *undo, pid_t pid, unsigned long long start)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(undo, "pids"), i, e)
    {
        if (json_integer_value(json_object_get(e, "pid")) == pid &&
            (unsigned long long)json_integer_value(json_object_get(e, "start")) == start)
            return true;
    }
    return false;
}

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
