/* What the process unit tests share: the fixture that reaps every child a
 * test made (also when an assertion fails), spawning named children, the
 * parse/apply helpers, cgroups and the journal. Header-only: each test
 * binary includes it once. */
#ifndef CHAOS_TEST_PROCESS_FIXTURES_H
#define CHAOS_TEST_PROCESS_FIXTURES_H

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

static inline void setup(void)
{
    memset(&fx, 0, sizeof fx);
    /* PIDs have at most 7 digits (4194304), so every name fits comm's 15. */
    snprintf(fx.tag, sizeof fx.tag, "ct%u", (unsigned)getpid() % 10000000u);
    snprintf(fx.tmpdir, sizeof fx.tmpdir, "/tmp/chaos-t-proc-%d", (int)getpid());
    cr_assert(mkdir(fx.tmpdir, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", fx.tmpdir,
              strerror(errno));
}

static inline void forget_kid(pid_t pid)
{
    for (size_t i = 0; i < fx.n_kids; i++)
        if (fx.kids[i] == pid) {
            fx.kids[i] = fx.kids[--fx.n_kids];
            return;
        }
}

/* Kills (if needed) and reaps a child; returns its wait status. */
static inline int reap(pid_t pid)
{
    int status = 0;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    forget_kid(pid);
    return status;
}

static inline void teardown(void)
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


/* ---- helpers ---- */

static inline bool read_small(const char *path, char *buf, size_t size)
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

static inline bool comm_is(pid_t pid, const char *comm)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    if (!read_small(path, buf, sizeof buf))
        return false;
    buf[strcspn(buf, "\n")] = '\0';
    return strcmp(buf, comm) == 0;
}

/* The state letter of /proc/PID/stat ('S', 'T', 'Z', ...), or 0 when gone. */
static inline char pstate(pid_t pid)
{
    struct proc_ent e;
    char st = 0;
    if (proc_target_stat(pid, &e, &st) < 0)
        return 0;
    return st;
}

static inline bool wait_for(pid_t pid, bool want_stopped)
{
    for (int i = 0; i < 300; i++) {
        char s = pstate(pid);
        if ((s == 'T') == want_stopped)
            return true;
        usleep(10000);
    }
    return false;
}

static inline void wait_comm(pid_t pid, const char *comm)
{
    for (int i = 0; i < 500; i++) {
        if (comm_is(pid, comm))
            return;
        usleep(10000);
    }
    cr_assert_fail("child %d never got the name '%s'", (int)pid, comm);
}

static inline pid_t track(pid_t pid)
{
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    cr_assert(fx.n_kids < MAX_KIDS);
    fx.kids[fx.n_kids++] = pid;
    return pid;
}

/* A child that dies with us, even if we crash. */
static inline void child_prologue(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(126);
}

/* A child named comm (as /proc/PID/comm shows it) that waits forever. */
static inline pid_t spawn_named(const char *comm)
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
static inline pid_t spawn_sleep(const char *argv0)
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

static inline struct fault_env make_env(void)
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

static inline void open_journal(void)
{
    char path[128];
    struct chaos_err err = {0};
    snprintf(path, sizeof path, "%s/journal.jsonl", fx.tmpdir);
    cr_assert(journal_open(path, &fx.journal, &err) == 0, "journal_open: %s", err.msg);
}

static inline const struct fault_ops *ops(void)
{
    const struct fault_ops *o = fault_ops_find("process");
    cr_assert(o, "the registry does not know the process kind");
    return o;
}

static inline json_t *load(const char *s)
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
static inline int parse(const char *target, const char *params, int64_t duration_ms, void **spec,
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

static inline void *parse_ok(const char *target, const char *params, int64_t duration_ms,
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
static inline void parse_bad(const char *target, const char *params, int64_t duration_ms,
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
static inline int apply(const char *target, const char *params, int64_t duration_ms,
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

static inline struct proc_target *target(const char *json)
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
static inline int resolve(const char *json, pid_t *pids, size_t max, struct chaos_err *err)
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

static inline int cmp_pid(const void *a, const void *b)
{
    return (*(const pid_t *)a > *(const pid_t *)b) - (*(const pid_t *)a < *(const pid_t *)b);
}

static inline void sort_pids(pid_t *p, size_t n)
{
    qsort(p, n, sizeof *p, cmp_pid);
}

__attribute__((format(printf, 2, 3))) static inline void write_file(const char *path, const char *fmt, ...)
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
static inline const char *cgroup2_root(void)
{
    static const char *const roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
    for (size_t i = 0; i < 2; i++) {
        struct statfs sf;
        if (statfs(roots[i], &sf) == 0 && sf.f_type == CGROUP2_MAGIC)
            return roots[i];
    }
    return NULL;
}

static inline void make_cgroup(const char *name)
{
    const char *root = cgroup2_root();
    if (!root)
        cr_skip_test("no cgroup v2 mount");
    snprintf(fx.cgroup, sizeof fx.cgroup, "%s/%s", root, name);
    cr_assert(mkdir(fx.cgroup, 0755) == 0, "mkdir %s: %s", fx.cgroup, strerror(errno));
}

static inline void move_to_cgroup(pid_t pid)
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
static inline json_t *journalled_undo(const char *id)
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

static inline bool undo_has_pid(const json_t *undo, pid_t pid, unsigned long long start)
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

#endif
