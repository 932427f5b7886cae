/* The syscall kind: its spec parser (names, classes, errnos, counters,
 * filters, strace's words, the errors that name the field), its decision
 * counters, and the supervisor with real launched programs: EIO on the 3rd
 * write, one port refused while another connects, a delayed fsync, calls that
 * pass once the window ends, and a workload that outlives a SIGKILLed
 * engine. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "journal.h"
#include "sys_spec.h"
#include "proc_target.h"
#include "sys_super.h"
#include "sys_trace.h"
#include "util.h"

static char tmpdir[64];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/chaos-t-sys-%d", (int)getpid());
    cr_assert(mkdir(tmpdir, 0700) == 0 || errno == EEXIST, "mkdir: %s", strerror(errno));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    cr_assert(system(cmd) == 0);
}

TestSuite(syscall, .init = setup, .fini = teardown);

static struct sys_spec *parse_ok(const char *target, const char *params)
{
    json_error_t je;
    json_t *t = target ? json_loads(target, 0, &je) : NULL;
    json_t *p = json_loads(params, 0, &je);
    cr_assert(p, "bad test JSON: %s", params);
    struct chaos_err err = {0};
    struct sys_spec *s = NULL;
    int r = sys_spec_parse(t, p, "f", &s, &err);
    json_decref(t);
    json_decref(p);
    cr_assert(r == 0, "parse %s: %s", params, err.msg);
    return s;
}

static void parse_fails(const char *target, const char *params, const char *want)
{
    json_error_t je;
    json_t *t = target ? json_loads(target, 0, &je) : NULL;
    json_t *p = json_loads(params, 0, &je);
    cr_assert(p, "bad test JSON: %s", params);
    struct chaos_err err = {0};
    struct sys_spec *s = NULL;
    int r = sys_spec_parse(t, p, "f", &s, &err);
    json_decref(t);
    json_decref(p);
    cr_assert(r < 0, "parse %s succeeded", params);
    cr_assert(s == NULL);
    cr_assert(strstr(err.msg, want), "error for %s is '%s', wanted '%s'", params, err.msg, want);
}

#define CMD "{\"command\": [\"true\"]}"

static bool has_nr(const struct sys_spec *s, const char *name)
{
    int nr = seccomp_syscall_resolve_name(name);
    for (size_t i = 0; i < s->n_nr; i++)
        if (s->nr[i] == nr)
            return true;
    return false;
}

Test(syscall, parses_names_errno_and_counters)
{
    struct sys_spec *s = parse_ok(CMD, "{\"syscalls\": [\"write\", \"fsync\"], \"errno\": \"EIO\","
                                       " \"every\": 2, \"after\": 3, \"max\": 4, "
                                       "\"probability\": 0.5, \"seed\": 7}");
    cr_assert(has_nr(s, "write") && has_nr(s, "fsync") && s->n_nr == 2);
    cr_assert_eq(s->err_no, EIO);
    cr_assert_eq(s->every, 2);
    cr_assert_eq(s->after, 3);
    cr_assert_eq(s->max, 4);
    cr_assert(s->has_seed && s->seed == 7);
    cr_assert_str_eq(s->argv[0], "true");
    cr_assert_null(s->argv[1]);
    sys_spec_free(s);
}

Test(syscall, classes_resolve_against_the_architecture)
{
    struct sys_spec *s =
        parse_ok("{\"command\": {\"argv\": [\"true\"]}}",
                 "{\"syscalls\": [\"%file\", \"%network\"], \"errno\": \"EACCES\"}");
    cr_assert(has_nr(s, "openat") && has_nr(s, "connect") && has_nr(s, "unlinkat"));
    cr_assert(!has_nr(s, "write"));
    sys_spec_free(s);
}

Test(syscall, strace_words_parse_into_the_same_spec)
{
    struct sys_spec *s = parse_ok(CMD, "{\"strace\": \"inject=write:error=EIO:when=3+\"}");
    cr_assert(has_nr(s, "write") && s->n_nr == 1);
    cr_assert_eq(s->err_no, EIO);
    cr_assert_eq(s->after, 2);
    cr_assert_eq(s->every, 1);
    cr_assert_eq(s->max, 0);
    sys_spec_free(s);

    s = parse_ok(CMD, "{\"strace\": \"fsync,fdatasync:delay_enter=200000:when=2..10+4\"}");
    cr_assert_eq(s->delay_us, 200000);
    cr_assert_eq(s->err_no, 0);
    cr_assert_eq(s->after, 1);
    cr_assert_eq(s->every, 4);
    cr_assert_eq(s->max, 3); /* calls 2, 6, 10 */
    sys_spec_free(s);

    s = parse_ok(CMD, "{\"strace\": \"inject=read:retval=0:when=5\", \"probability\": 1}");
    cr_assert(s->has_retval && s->retval == 0);
    cr_assert_eq(s->after, 4);
    cr_assert_eq(s->max, 1);
    sys_spec_free(s);

    s = parse_ok(CMD, "{\"strace\": \"inject=fsync:delay_enter=10ms\"}");
    cr_assert_eq(s->delay_us, 10000);
    sys_spec_free(s);
}

Test(syscall, bad_specs_name_the_field)
{
    parse_fails(CMD, "{\"syscalls\": [\"wirte\"], \"errno\": \"EIO\"}",
                "f: params.syscalls[0]: unknown syscall 'wirte'");
    parse_fails(CMD, "{\"syscalls\": [\"%files\"], \"errno\": \"EIO\"}",
                "params.syscalls[0]: unknown syscall class '%files'");
    parse_fails(CMD, "{\"syscalls\": [\"write\"], \"errno\": \"EIOO\"}",
                "params.errno: unknown errno 'EIOO'");
    parse_fails(CMD, "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"probability\": 1.5}",
                "probability");
    parse_fails(CMD, "{\"syscalls\": [\"getpid\"], \"errno\": \"EIO\", \"path_prefix\": \"/t\"}",
                "params.path_prefix: getpid takes no path");
    parse_fails(CMD, "{\"syscalls\": [\"openat\"], \"errno\": \"EIO\", \"port\": 80}",
                "params.port: openat has no address");
    parse_fails(CMD, "{\"syscalls\": [\"connect\"], \"errno\": \"EIO\", \"addr\": \"1.2.3/8\"}",
                "params.addr: '1.2.3/8' is not an IPv4");
    parse_fails(CMD, "{\"syscalls\": [\"write\"]}", "nothing to inject");
    parse_fails(CMD, "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"retval\": 3}", "not both");
    parse_fails(CMD, "{\"strace\": \"inject=write:error=EIO:when=x\"}", "params.strace: when=x");
    parse_fails(CMD, "{\"strace\": \"inject=write:error=EIO\", \"errno\": \"EIO\"}",
                "params.strace: cannot be combined with params.errno");
    parse_fails(CMD, "{\"strace\": \"inject=write:signal=KILL\"}", "'signal' is not supported");
    parse_fails(NULL, "{\"syscalls\": [\"write\"], \"errno\": \"EIO\"}", "f: target: required");
    parse_fails("{\"command\": []}", "{\"syscalls\": [\"write\"], \"errno\": \"EIO\"}",
                "target.command: required");
    parse_fails(CMD, "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"evry\": 2}", "evry");
}

#define EIO_WRITE "{\"syscalls\": [\"write\"], \"errno\": \"EIO\"}"

/* A pid no process has: above pid_max, which the kernel never hands out. */
static long free_pid(void)
{
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    long max = 0;
    cr_assert(f && fscanf(f, "%ld", &max) == 1);
    fclose(f);
    cr_assert(max > 2);
    for (long p = max - 1; p > 1; p--) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld", p);
        if (access(path, F_OK) != 0)
            return p;
    }
    cr_assert_fail("no free pid");
    return 0;
}

Test(syscall, running_process_targets)
{
    char t[128];
    snprintf(t, sizeof t, "{\"pid\": %d}", (int)getpid());
    struct sys_spec *s = parse_ok(t, EIO_WRITE);
    cr_assert(s->running && !s->argv);
    char plan[512];
    sys_spec_plan(s, plan, sizeof plan);
    cr_assert(strstr(plan, "running process pid"), "plan: %s", plan);
    sys_spec_free(s);
    static const char *const ok[] = {
        "{\"name\": \"sqlite3\"}", "{\"name\": \"sqlite3\", \"pick\": 1, \"seed\": 3}",
        "{\"cmdline\": \"^python3 .*srv\"}", "{\"cgroup\": \"/sys/fs/cgroup/app.slice\"}",
        "{\"systemd_unit\": \"nginx.service\"}", "{\"pidfile\": \"/run/app.pid\"}"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        s = parse_ok(ok[i], EIO_WRITE);
        cr_assert(s->running, "%s", ok[i]);
        sys_spec_free(s);
    }
}

Test(syscall, running_process_errors)
{
    char t[128];
    snprintf(t, sizeof t, "{\"pid\": %ld}", free_pid());
    parse_fails(t, EIO_WRITE, "f: target.pid: no process");
    parse_fails("{\"pid\": 1}", EIO_WRITE, "target.pid: 1 is init");
    parse_fails("{\"pid\": 0}", EIO_WRITE, "target.pid");
    parse_fails("{\"pid\": \"12\"}", EIO_WRITE, "target.pid");
    snprintf(t, sizeof t, "{\"pid\": %d, \"command\": [\"true\"]}", (int)getpid());
    parse_fails(t, EIO_WRITE, "f: target: give either command");
    parse_fails("{\"name\": \"x\", \"command\": [\"true\"]}", EIO_WRITE, "got command and name");
    snprintf(t, sizeof t, "{\"pid\": %d, \"output_dir\": \"/tmp/x\"}", (int)getpid());
    parse_fails(t, EIO_WRITE, "target.output_dir: only with target.command");
    snprintf(t, sizeof t, "{\"pid\": %d, \"name\": \"x\"}", (int)getpid());
    parse_fails(t, EIO_WRITE, "give exactly one of");
    parse_fails("{\"name\": \"a-name-longer-than-15\"}", EIO_WRITE, "target.name");
    parse_fails("{\"name\": \"x\", \"pick\": 0}", EIO_WRITE, "target.pick");
    parse_fails("{\"name\": \"x\", \"pid_file\": \"/x\"}", EIO_WRITE, "pid_file");
    parse_fails("{\"cgroup\": \"/sys/fs/cgroup\"}", EIO_WRITE, "root of a cgroup hierarchy");
    parse_fails("{\"systemd_unit\": \"nginx\"}", EIO_WRITE, "target.systemd_unit");
    /* The params are checked as for a command. */
    snprintf(t, sizeof t, "{\"pid\": %d}", (int)getpid());
    parse_fails(t, "{\"syscalls\": [\"getpid\"], \"errno\": \"EIO\", \"path_prefix\": \"/t\"}",
                "params.path_prefix: getpid takes no path");
}

Test(syscall, counters_every_after_max)
{
    struct sys_spec *s = parse_ok(CMD, "{\"strace\": \"write:error=EIO:when=3..9+3\"}");
    struct sys_counter c;
    sys_counter_init(&c, s);
    char got[16] = "";
    for (int i = 0; i < 12; i++)
        got[i] = sys_decide(s, &c) ? 'x' : '.';
    cr_assert_str_eq(got, "..x..x..x...");
    sys_spec_free(s);
}

Test(syscall, probability_lands_within_a_binomial_bound)
{
    struct sys_spec *s =
        parse_ok(CMD, "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"probability\": 0.1, "
                      "\"seed\": 42}");
    struct sys_counter c;
    sys_counter_init(&c, s);
    int hits = 0;
    for (int i = 0; i < 10000; i++)
        hits += sys_decide(s, &c);
    /* mean 1000, sd 30: 5 sd either way */
    cr_assert(hits > 850 && hits < 1150, "%d hits in 10000 at p=0.1", hits);
    sys_spec_free(s);
}

/* ---- the supervisor with real programs ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *slurp(const char *dir, const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Waits for the workload to end (the supervisor writes "status"). */
static char *wait_status(const char *dir, int timeout_ms)
{
    for (int i = 0; i < timeout_ms / 10; i++) {
        char *s = slurp(dir, SYS_OUT_STATUS);
        if (s)
            return s;
        usleep(10000);
    }
    return NULL;
}

/* Running, not a zombie waiting for whichever reaper adopted it. */
static bool alive(pid_t pid)
{
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* Launches argv_json under params; returns the output folder. */
static const char *launch(const char *argv_json, const char *params, int64_t deadline_ms,
                          const char *sub, pid_t *sp, pid_t *wp)
{
    static char dir[128];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    char target[1024];
    snprintf(target, sizeof target, "{\"command\": %s}", argv_json);
    struct sys_spec *s = parse_ok(target, params);
    struct chaos_err err = {0};
    int r = sys_super_start(s, dir, deadline_ms, sp, wp, &err);
    sys_spec_free(s);
    cr_assert(r == 0, "sys_super_start: %s", err.msg);
    return dir;
}

Test(syscall, write_fails_with_eio_on_the_third_call)
{
    char params[512];
    snprintf(params, sizeof params,
             "{\"strace\": \"inject=write:error=EIO:when=3\", \"path_prefix\": \"%s/w/stdout\"}",
             tmpdir);
    pid_t sp, wp;
    const char *dir = launch("[\"sh\", \"-c\", \"for i in 1 2 3 4 5; do echo $i; done\"]", params,
                             now_ms() + 20000, "w", &sp, &wp);
    char *st = wait_status(dir, 10000);
    cr_assert(st, "the workload did not end");
    cr_assert_str_eq(st, "exited 0\n");
    cr_assert_str_eq(slurp(dir, SYS_OUT_STDOUT), "1\n2\n4\n5\n");
    char *e = slurp(dir, SYS_OUT_STDERR);
    cr_assert(e && strstr(e, "I/O error"), "stderr: %s", e ? e : "(none)");
    cr_assert_str_eq(slurp(dir, SYS_OUT_INJECTED), "1\n");
    for (int i = 0; i < 100 && alive(sp); i++)
        usleep(10000);
    cr_assert(!alive(sp), "the supervisor outlived its workload");
}

static int listen_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(listen(fd, 8) == 0);
    socklen_t len = sizeof a;
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

Test(syscall, connect_refused_on_one_port_while_others_pass)
{
    int p1, p2;
    int l1 = listen_port(&p1), l2 = listen_port(&p2);
    char params[512], argv[512];
    snprintf(params, sizeof params,
             "{\"syscalls\": [\"connect\"], \"errno\": \"ECONNREFUSED\", \"addr\": "
             "\"127.0.0.0/8\", \"port\": %d}",
             p1);
    snprintf(argv, sizeof argv,
             "[\"bash\", \"-c\", \"exec 3<>/dev/tcp/127.0.0.1/%d && echo ok1; exec "
             "4<>/dev/tcp/127.0.0.1/%d && echo ok2\"]",
             p1, p2);
    pid_t sp, wp;
    const char *dir = launch(argv, params, now_ms() + 20000, "c", &sp, &wp);
    char *st = wait_status(dir, 10000);
    cr_assert(st, "the workload did not end");
    cr_assert_str_eq(slurp(dir, SYS_OUT_STDOUT), "ok2\n");
    char *e = slurp(dir, SYS_OUT_STDERR);
    cr_assert(e && strstr(e, "Connection refused"), "stderr: %s", e ? e : "(none)");
    close(l1);
    close(l2);
}

Test(syscall, fsync_delayed_by_200ms)
{
    char params[512], argv[512];
    snprintf(params, sizeof params,
             "{\"syscalls\": [\"fsync\", \"fdatasync\"], \"delay\": "
             "\"200ms\"}");
    snprintf(argv, sizeof argv,
             "[\"sh\", \"-c\", \"echo x > %s/f; s=$(date +%%s%%N); sync %s/f; e=$(date "
             "+%%s%%N); echo $(( (e - s) / 1000000 ))\"]",
             tmpdir, tmpdir);
    pid_t sp, wp;
    const char *dir = launch(argv, params, now_ms() + 20000, "d", &sp, &wp);
    char *st = wait_status(dir, 10000);
    cr_assert(st, "the workload did not end");
    cr_assert_str_eq(st, "exited 0\n");
    int ms = atoi(slurp(dir, SYS_OUT_STDOUT));
    cr_assert(ms >= 200 && ms < 2000, "sync took %d ms", ms);

    /* And without the fault it is fast. */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "s=$(date +%%s%%N); sync %s/f; e=$(date +%%s%%N); exit $(( (e - s) / 1000000 "
             ">= 200 ))",
             tmpdir);
    cr_assert(system(cmd) == 0, "an undelayed sync took 200 ms or more: the test proves nothing");
}

Test(syscall, calls_pass_after_the_window)
{
    char params[512];
    snprintf(params, sizeof params,
             "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"path_prefix\": \"%s/a/stdout\"}",
             tmpdir);
    pid_t sp, wp;
    const char *dir = launch("[\"sh\", \"-c\", \"echo before; sleep 1; echo after\"]", params,
                             now_ms() + 400, "a", &sp, &wp);
    char *st = wait_status(dir, 10000);
    cr_assert(st, "the workload did not end");
    cr_assert_str_eq(slurp(dir, SYS_OUT_STDOUT), "after\n");
}

Test(syscall, revert_by_sigusr1_ends_the_window)
{
    char params[512];
    snprintf(params, sizeof params,
             "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"path_prefix\": \"%s/r/stdout\"}",
             tmpdir);
    pid_t sp, wp;
    const char *dir =
        launch("[\"sh\", \"-c\", \"echo before; sleep 1; echo after\"]", params, 0, "r", &sp, &wp);
    usleep(300000);
    cr_assert(kill(sp, SIGUSR1) == 0);
    char *st = wait_status(dir, 10000);
    cr_assert(st, "the workload did not end");
    cr_assert_str_eq(slurp(dir, SYS_OUT_STDOUT), "after\n");
}

Test(syscall, workload_outlives_a_sigkilled_engine)
{
    char params[512];
    snprintf(params, sizeof params,
             "{\"syscalls\": [\"write\", \"openat\", \"read\"], \"errno\": \"EIO\", "
             "\"path_prefix\": \"/nonexistent\"}");
    char dir[128];
    snprintf(dir, sizeof dir, "%s/k", tmpdir);
    int pfd[2];
    cr_assert(pipe(pfd) == 0);
    pid_t engine = fork();
    cr_assert(engine >= 0);
    if (engine == 0) {
        close(pfd[0]);
        json_error_t je;
        json_t *t = json_loads("{\"command\": [\"sh\", \"-c\", \"sleep 1; cat /etc/hostname; "
                               "echo done\"]}",
                               0, &je);
        json_t *p = json_loads(params, 0, &je);
        struct sys_spec *s = NULL;
        struct chaos_err err = {0};
        pid_t sp, wp;
        if (!t || !p || sys_spec_parse(t, p, "", &s, &err) < 0 ||
            sys_super_start(s, dir, 0, &sp, &wp, &err) < 0)
            _exit(1);
        IGNORE_RESULT(write(pfd[1], "ok", 2));
        pause();
        _exit(0);
    }
    close(pfd[1]);
    char b[2];
    cr_assert(read(pfd[0], b, 2) == 2, "the engine did not start the workload");
    close(pfd[0]);
    cr_assert(kill(engine, SIGKILL) == 0);
    int wst;
    cr_assert(waitpid(engine, &wst, 0) == engine);
    char *st = wait_status(dir, 10000);
    cr_assert(st, "the workload did not end");
    cr_assert_str_eq(st, "exited 0\n");
    char *out = slurp(dir, SYS_OUT_STDOUT);
    cr_assert(out && strstr(out, "done\n"), "stdout: %s", out ? out : "(none)");
    char *e = slurp(dir, SYS_OUT_STDERR);
    cr_assert(e && e[0] == '\0', "stderr: %s", e);
}

Test(syscall, every_thread_of_a_multithreaded_workload_is_covered)
{
    char params[512], argv[1024];
    snprintf(params, sizeof params,
             "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"path_glob\": \"%s/mt/x*\"}",
             tmpdir);
    snprintf(argv, sizeof argv,
             "[\"/usr/bin/python3\", \"-c\", \"import os, threading\\n"
             "res = []\\n"
             "def w(i):\\n"
             "    fd = os.open('%s/mt/x%%d' %% i, os.O_WRONLY | os.O_CREAT)\\n"
             "    try:\\n"
             "        os.write(fd, b'x'); res.append('ok')\\n"
             "    except OSError as e:\\n"
             "        res.append(e.errno)\\n"
             "ts = [threading.Thread(target=w, args=(i,)) for i in range(4)]\\n"
             "[t.start() for t in ts]; [t.join() for t in ts]\\n"
             "os.write(1, repr(sorted(res, key=str)).encode())\\n\"]",
             tmpdir);
    pid_t sp, wp;
    const char *dir = launch(argv, params, now_ms() + 20000, "mt", &sp, &wp);
    char *st = wait_status(dir, 20000);
    cr_assert(st, "the workload did not end");
    cr_assert_str_eq(st, "exited 0\n", "status %s, stderr %s", st, slurp(dir, SYS_OUT_STDERR));
    cr_assert_str_eq(slurp(dir, SYS_OUT_STDOUT), "[5, 5, 5, 5]");
}

static const struct fault_ops *ops(void)
{
    const struct fault_ops *o = fault_ops_find("syscall");
    cr_assert(o, "the registry does not know the syscall kind");
    return o;
}

Test(syscall, ops_apply_journal_revert_and_recover)
{
    char path[128];
    struct chaos_err err = {0};
    struct journal *j = NULL;
    snprintf(path, sizeof path, "%s/journal.jsonl", tmpdir);
    cr_assert(journal_open(path, &j, &err) == 0, "journal_open: %s", err.msg);
    char target[512];
    snprintf(target, sizeof target,
             "{\"command\": [\"sh\", \"-c\", \"echo a; sleep 1; echo b\"], \"output_dir\": "
             "\"%s/ops\"}",
             tmpdir);
    char params[256];
    snprintf(params, sizeof params,
             "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"path_prefix\": \"%s/ops/stdout\"}",
             tmpdir);
    json_error_t je;
    json_t *t = json_loads(target, 0, &je), *p = json_loads(params, 0, &je);
    void *spec = NULL, *state = NULL;
    struct fault_info info = {0};
    cr_assert(ops()->parse(t, p, "f", &spec, &info, &err) == 0, "%s", err.msg);
    json_decref(t);
    json_decref(p);
    cr_assert(info.lasting && info.needs_duration);
    struct fault_env env = {
        .journal = j, .fault_id = "f1-sys", .kind = "syscall", .deadline_ms = now_ms() + 20000};
    int64_t next = 0;
    cr_assert(ops()->apply(&env, spec, &state, &next, &err) == 0, "apply: %s", err.msg);
    char desc[512];
    ops()->describe(state, desc, sizeof desc);
    cr_assert(strstr(desc, "under supervisor"), "%s", desc);
    usleep(300000);
    cr_assert(ops()->revert(&env, state, &err) == 0, "revert: %s", err.msg);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/ops", tmpdir);
    char *st = wait_status(dir, 10000);
    cr_assert(st, "the workload did not end");
    cr_assert_str_eq(slurp(dir, SYS_OUT_STDOUT), "b\n");
    /* Reverting or recovering a supervisor that is gone is fine. */
    cr_assert(ops()->revert(&env, state, &err) == 0, "second revert: %s", err.msg);
    json_t *undo = json_pack("{s:s,s:i,s:I}", "output_dir", dir, "supervisor", 999999999, "start",
                             (json_int_t)1);
    cr_assert(ops()->recover(undo, &err) == 0, "recover: %s", err.msg);
    json_decref(undo);
    undo = json_pack("{s:s}", "output_dir", dir);
    cr_assert(ops()->recover(undo, &err) == 0, "recover before start: %s", err.msg);
    json_decref(undo);
    ops()->free_state(state);
    ops()->free_spec(spec);
    journal_close(j, true);
}

/* A signal while the supervisor holds a call (a delayed fsync) runs its
 * handler when the call ends, and the call does not fail with EINTR, as for
 * an fsync that really blocks in the kernel. Perl installs its handlers
 * without SA_RESTART, so an interrupted fsync would show "fail". */
Test(syscall, signal_during_a_held_call_behaves_as_without_us)
{
    char script[128];
    snprintf(script, sizeof script, "%s/sig.pl", tmpdir);
    FILE *f = fopen(script, "w");
    cr_assert(f);
    fprintf(f,
            "use IO::Handle; use Time::HiRes qw(ualarm);\n"
            "my $n = 0; $SIG{ALRM} = sub { $n++ };\n"
            "open(my $f, '>', '%s/sig.data') or die; print $f 'x'; $f->flush;\n"
            "ualarm(100000); my $r = $f->sync;\n"
            "print(($r ? 'ok' : \"fail $!\") . \" alarms=$n\\n\");\n",
            tmpdir);
    cr_assert(fclose(f) == 0);
    char argv[256];
    snprintf(argv, sizeof argv, "[\"perl\", \"%s\"]", script);
    pid_t sp, wp;
    const char *dir = launch(argv, "{\"syscalls\": [\"fsync\"], \"delay\": \"400ms\"}",
                             now_ms() + 20000, "sig", &sp, &wp);
    char *st = wait_status(dir, 10000);
    cr_assert(st, "the workload did not end");
    cr_assert_str_eq(slurp(dir, SYS_OUT_STDOUT), "ok alarms=1\n", "stderr: %s",
                     slurp(dir, SYS_OUT_STDERR));
    cr_assert_str_eq(slurp(dir, SYS_OUT_INJECTED), "1\n");
}

Test(syscall, an_output_folder_that_is_not_ours_is_refused)
{
    char link[128];
    snprintf(link, sizeof link, "%s/planted", tmpdir);
    cr_assert(symlink("/etc", link) == 0);
    struct sys_spec *s = parse_ok(CMD, "{\"syscalls\": [\"write\"], \"errno\": \"EIO\"}");
    struct chaos_err err = {0};
    pid_t sp = 0, wp = 0;
    cr_assert(sys_super_start(s, link, 0, &sp, &wp, &err) < 0, "a symlinked folder was used");
    cr_assert(strstr(err.msg, "not a folder of ours"), "%s", err.msg);
    sys_spec_free(s);
}

Test(syscall, probability_on_a_real_program_within_a_binomial_bound)
{
    char params[512], argv[512];
    snprintf(params, sizeof params,
             "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"probability\": 0.1, \"seed\": 3, "
             "\"path_prefix\": \"%s/p.data\"}",
             tmpdir);
    snprintf(argv, sizeof argv,
             "[\"sh\", \"-c\", \"i=0; while [ $i -lt 1000 ]; do echo x >> %s/p.data 2>/dev/null; "
             "i=$((i+1)); done\"]",
             tmpdir);
    pid_t sp, wp;
    const char *dir = launch(argv, params, now_ms() + 60000, "p", &sp, &wp);
    char *st = wait_status(dir, 60000);
    cr_assert(st, "the workload did not end");
    long injected = atol(slurp(dir, SYS_OUT_INJECTED));
    char data[128];
    snprintf(data, sizeof data, "%s/p.data", tmpdir);
    struct stat sb;
    cr_assert(stat(data, &sb) == 0);
    long lines = (long)sb.st_size / 2; /* "x\n" */
    cr_assert_eq(lines + injected, 1000, "%ld lines written, %ld injected", lines, injected);
    /* mean 100, sd 9.5: 5 sd either way */
    cr_assert(injected > 52 && injected < 148, "%ld of 1000 writes failed at p=0.1", injected);
}

Test(syscall, a_command_that_is_not_there_fails_the_start)
{
    struct sys_spec *s = parse_ok("{\"command\": [\"chaos-t-no-such-program\"]}",
                                  "{\"syscalls\": [\"write\"], \"errno\": \"EIO\"}");
    char dir[128];
    snprintf(dir, sizeof dir, "%s/none", tmpdir);
    struct chaos_err err = {0};
    pid_t sp = 0, wp = 0;
    cr_assert(sys_super_start(s, dir, 0, &sp, &wp, &err) < 0, "started a missing program");
    cr_assert(strstr(err.msg, "target.command: 'chaos-t-no-such-program' is not an executable"),
              "%s", err.msg);
    sys_spec_free(s);
}

/* The tracer on a real running child: it writes under tmpdir every 5 ms and
 * reports each result on a pipe ('o' ok, 'f' EIO). With max 3, exactly 3
 * writes fail while traced; after the stop the child is untraced and
 * writes succeed again. */
static pid_t start_writer(int *rfd)
{
    int p[2];
    cr_assert(pipe(p) == 0);
    pid_t c = fork();
    cr_assert(c >= 0);
    if (c == 0) {
        close(p[0]);
        char path[128];
        snprintf(path, sizeof path, "%s/w", tmpdir);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        for (;;) {
            char r = write(fd, "x", 1) == 1 ? 'o' : errno == EIO ? 'f' : 'e';
            if (write(p[1], &r, 1) != 1)
                _exit(0);
            usleep(5000);
        }
    }
    close(p[1]);
    *rfd = p[0];
    return c;
}

/* Reads the child's results for ms milliseconds into counts. */
static void read_results(int fd, int ms, int *ok, int *failed)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *ok = *failed = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
            return;
        char r;
        cr_assert(read(fd, &r, 1) == 1);
        cr_assert(r != 'e', "a write failed with another errno");
        if (r == 'o')
            (*ok)++;
        else
            (*failed)++;
    }
}

Test(syscall, tracer_on_a_running_child, .timeout = 30)
{
    int rfd;
    pid_t c = start_writer(&rfd);
    int ok, failed;
    read_results(rfd, 100, &ok, &failed);
    cr_assert(ok > 0 && failed == 0);
    char t[64], params[256];
    snprintf(t, sizeof t, "{\"pid\": %d}", (int)c);
    snprintf(params, sizeof params,
             "{\"syscalls\": [\"write\"], \"errno\": \"EIO\", \"path_prefix\": \"%s\", \"max\": 3}",
             tmpdir);
    struct sys_spec *s = parse_ok(t, params);
    struct proc_ent ents[2], ent;
    cr_assert(proc_target_stat(c, &ent, NULL) == 0);
    /* A target that exited since it was resolved is left out... */
    pid_t gone = fork();
    cr_assert(gone >= 0);
    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0);
    ents[0] = (struct proc_ent){.pid = gone, .start = ent.start, .comm = "gone"};
    struct sys_trace tr;
    struct chaos_err err = {0};
    cr_assert(sys_trace_start(s, ents, 1, 0, &tr, &err) < 0);
    cr_assert(strstr(err.msg, "exited before it could be traced"), "%s", err.msg);
    /* ... and the others are traced. */
    ents[1] = ent;
    cr_assert(sys_trace_start(s, ents, 2, 0, &tr, &err) == 0, "start: %s", err.msg);
    cr_assert(tr.threads == 1);
    cr_assert(sys_trace_tracer_of(c) == tr.tracer.pid);
    /* A second tracer is refused, and the first one keeps its tracee. */
    struct sys_trace tr2;
    cr_assert(sys_trace_start(s, &ent, 1, 0, &tr2, &err) < 0);
    cr_assert(strstr(err.msg, "traced already by pid"), "%s", err.msg);
    read_results(rfd, 300, &ok, &failed);
    cr_assert(failed == 3 && ok > 0, "traced: %d ok, %d failed", ok, failed);
    cr_assert(sys_trace_stop(&tr, &ent, 1, &err) == 0, "stop: %s", err.msg);
    cr_assert(tr.ended && tr.injected == 3, "injected %lld", tr.injected);
    cr_assert(sys_trace_tracer_of(c) == 0);
    read_results(rfd, 100, &ok, &failed);
    cr_assert(ok > 0 && failed == 0);
    /* Recovery after the tracer has gone finds nothing to do. */
    cr_assert(sys_trace_recover(&tr.tracer, &ent, 1, &err) == 0, "%s", err.msg);
    sys_spec_free(s);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    close(rfd);
}
