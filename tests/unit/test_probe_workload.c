/* The workload probe: parsing and binding errors that name the field, and
 * samples judged from an output folder as a syscall fault's supervisor
 * writes it (stdout, stderr, status), including the ones that must fail:
 * a workload still running, not started, or from an earlier run. */
#include "probe_fixtures.h"

#include <sys/stat.h>
#include "scenario.h"

static char dir[64];

static void mkdir_out(void)
{
    snprintf(dir, sizeof dir, "/tmp/chaos-t-wl-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void put(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert(f, "%s: %s", p, strerror(errno));
    fputs(text, f);
    cr_assert(fclose(f) == 0);
}

static void rm_out(void)
{
    const char *names[] = {"stdout", "stderr", "status"};
    for (size_t i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* A probe of fault 'db' bound to dir. */
static struct probe *bound(const char *expect_text)
{
    struct probe *p = parse_ok("{\"workload\": {\"fault\": \"db\"}}", expect_text);
    char fj[256];
    snprintf(fj, sizeof fj, "{\"target\": {\"command\": [\"x\"], \"output_dir\": \"%s\"}}", dir);
    json_t *j = J(fj);
    struct probe_fault_ref ref = {"db", "syscall", j};
    struct chaos_err err = {0};
    cr_assert(probe_bind_faults(p, &ref, 1, "check 't'", &err) == 0, "bind: %s", err.msg);
    json_decref(j);
    return p;
}

static struct sample wl_sample(const char *expect_text)
{
    struct probe *p = bound(expect_text);
    struct run r;
    run_init(&r);
    run_start(&r, p);
    run_wait(&r);
    cr_assert(r.n == 1);
    struct sample s = r.got[0];
    run_fini(&r);
    probe_free(p);
    return s;
}

#define OK(expect)                                                                                 \
    do {                                                                                           \
        struct sample s_ = wl_sample(expect);                                                      \
        cr_assert(s_.ok, "%s: %s", expect ? expect : "(none)", s_.error);                          \
    } while (0)
#define FAILS(expect, want)                                                                        \
    do {                                                                                           \
        struct sample s_ = wl_sample(expect);                                                      \
        cr_assert(!s_.ok, "%s held", expect ? expect : "(none)");                                  \
        cr_assert(strstr(s_.error, want), "error '%s' does not contain '%s'", s_.error, want);     \
    } while (0)

Test(probe_workload, parse_errors)
{
    parse_fails("{\"workload\": {}}", NULL, "probe.workload.fault: required field is missing");
    parse_fails("{\"workload\": {\"fault\": \"\"}}", NULL,
                "probe.workload.fault: must not be empty");
    parse_fails("{\"workload\": {\"fault\": \"db\", \"dir\": \"/x\"}}", NULL, "probe.workload.dir");
    parse_fails("{\"workload\": {\"fault\": \"db\"}}", "{\"exit_code\": \"nonzero\"}",
                "expect.exit_code: must be a list of exit codes like [0] or \"non-zero\"");
    parse_fails("{\"workload\": {\"fault\": \"db\"}}", "{\"exit_code\": [256]}",
                "expect.exit_code[0]: 256 is out of range");
    parse_fails("{\"workload\": {\"fault\": \"db\"}}", "{\"signal\": \"SIGFOO\"}",
                "expect.signal: unknown signal 'SIGFOO'");
    parse_fails("{\"workload\": {\"fault\": \"db\"}}", "{\"signal\": 99}",
                "expect.signal: 99 is out of range");
    parse_fails("{\"workload\": {\"fault\": \"db\"}}", "{\"signal\": \"KILL\", \"exit_code\": [0]}",
                "expect.signal: cannot be combined with exit_code");
    parse_fails("{\"workload\": {\"fault\": \"db\"}}", "{\"running\": true, \"exit_code\": [0]}",
                "expect.running: true cannot be combined with exit_code");
    parse_fails("{\"workload\": {\"fault\": \"db\"}}", "{\"stderr_regex\": \"(\"}",
                "expect.stderr_regex");
    parse_fails("{\"workload\": {\"fault\": \"db\"}}", "{\"running\": \"yes\"}", "expect.running");
}

/* A scenario around one workload check; returns the error or "" when valid. */
static const char *scenario_error(const char *fault, const char *probe, const char *expect)
{
    static char msg[512];
    char text[2048];
    snprintf(text, sizeof text,
             "{\"version\": 1, \"name\": \"w\", \"faults\": [%s],"
             " \"expect\": [{\"name\": \"c\", \"during\": \"db\", \"probe\": %s, \"expect\": %s}]}",
             fault, probe, expect);
    json_t *root = J(text);
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    int r = scenario_parse(root, "s.json", &s, &err);
    json_decref(root);
    snprintf(msg, sizeof msg, "%s", r < 0 ? err.msg : "");
    scenario_free(s);
    return msg;
}

#define SYS_FAULT(target)                                                                          \
    "{\"name\": \"db\", \"kind\": \"syscall\", \"duration\": \"2s\", \"target\": " target          \
    ", \"params\": {\"syscalls\": [\"write\"], \"errno\": \"EIO\"}}"
#define WL "{\"workload\": {\"fault\": \"db\"}}"

Test(probe_workload, scenario_binding)
{
    const char *e =
        scenario_error(SYS_FAULT("{\"command\": [\"true\"], \"output_dir\": \"/tmp/o\"}"), WL,
                       "{\"exit_code\": [0], \"within\": \"1s\"}");
    cr_assert_str_eq(e, "");
    e = scenario_error(SYS_FAULT("{\"command\": [\"true\"], \"output_dir\": \"/tmp/o\"}"),
                       "{\"workload\": {\"fault\": \"dbx\"}}", "{}");
    cr_assert(strstr(e, "s.json: expect[0] 'c': probe.workload.fault: no fault is called 'dbx' "
                        "(faults: 'db')"),
              "%s", e);
    e = scenario_error(SYS_FAULT("{\"command\": [\"true\"]}"), WL, "{}");
    cr_assert(strstr(e, "probe.workload.fault: fault 'db' has no target.output_dir"), "%s", e);
    e = scenario_error("{\"name\": \"db\", \"kind\": \"process\", \"duration\": \"1s\", "
                       "\"target\": {\"name\": \"x\"}, \"params\": {\"action\": \"pause\"}}",
                       WL, "{}");
    cr_assert(strstr(e, "probe.workload.fault: fault 'db' is a process fault"), "%s", e);
    e = scenario_error(SYS_FAULT("{\"command\": [\"true\"], \"output_dir\": \"/tmp/o\"}"), WL,
                       "{\"exit_cod\": [0]}");
    cr_assert(strstr(e, "expect.exit_cod"), "%s", e);
}

Test(probe_workload, exit_status, .init = mkdir_out, .fini = rm_out)
{
    FAILS(NULL, "the workload of 'db' has not started (no ");
    put("stdout", "");
    put("stderr", "");
    FAILS(NULL, "the workload is still running (no exit status yet), wanted an exit code in [0]");
    FAILS("{\"exit_code\": \"non-zero\"}", "still running");
    FAILS("{\"running\": false}", "still running (no exit status yet), wanted it to have ended");
    OK("{\"running\": true}");

    put("status", "exited 0\n");
    OK(NULL);
    OK("{\"exit_code\": [0]}");
    OK("{\"running\": false}");
    FAILS("{\"exit_code\": \"non-zero\"}", "the workload exited 0, wanted a non-zero exit code");
    FAILS("{\"running\": true}", "the workload has ended (exited 0), wanted it running");
    FAILS("{\"signal\": \"any\"}", "the workload exited 0, wanted killed by a signal");
    struct sample s = wl_sample(NULL);
    cr_assert_eq(s.status, 0);
    cr_assert_str_eq(s.detail, "exited 0");

    put("status", "exited 3\n");
    OK("{\"exit_code\": \"non-zero\"}");
    OK("{\"exit_code\": [1, 3]}");
    FAILS(NULL, "the workload exited 3, wanted an exit code in [0]");

    put("status", "killed by signal 9\n");
    OK("{\"signal\": \"SIGKILL\"}");
    OK("{\"signal\": \"KILL\"}");
    OK("{\"signal\": 9}");
    OK("{\"signal\": \"any\"}");
    FAILS("{\"signal\": \"SIGTERM\"}", "killed by signal SIGKILL, wanted killed by signal SIGTERM");
    FAILS(NULL, "the workload killed by signal SIGKILL, wanted an exit code in [0]");
    FAILS("{\"exit_code\": \"non-zero\"}", "killed by signal SIGKILL");
    s = wl_sample("{\"signal\": 9}");
    cr_assert_eq(s.status, -1);

    put("status", "garbage\n");
    FAILS(NULL, "the workload's status is unknown");
}

Test(probe_workload, output_conditions, .init = mkdir_out, .fini = rm_out)
{
    put("stdout", "row 1\nrow 2\n");
    put("stderr", "Error: disk I/O error\n");
    /* Output conditions alone do not ask for an exit: they hold while it runs. */
    OK("{\"stderr_contains\": \"disk I/O error\"}");
    OK("{\"stdout_contains\": \"row 2\", \"stderr_regex\": \"^Error: .*I/O\"}");
    FAILS("{\"stdout_contains\": \"row 3\"}", "stdout does not contain \"row 3\"");
    FAILS("{\"stderr_regex\": \"^ok$\"}", "stderr does not match regex \"^ok$\"");
    FAILS("{\"stderr_contains\": \"disk I/O error\", \"exit_code\": [0]}", "still running");
    put("status", "exited 1\n");
    OK("{\"stderr_contains\": \"disk I/O error\", \"exit_code\": \"non-zero\"}");
    FAILS("{\"stderr_contains\": \"disk full\", \"exit_code\": \"non-zero\"}",
          "stderr does not contain \"disk full\"");
}

Test(probe_workload, earlier_run_is_no_evidence, .init = mkdir_out, .fini = rm_out)
{
    put("stdout", "done\n");
    put("status", "exited 0\n");
    char p[128];
    snprintf(p, sizeof p, "%s/stdout", dir);
    struct timespec old[2] = {{.tv_sec = time(NULL) - 60}, {.tv_sec = time(NULL) - 60}};
    cr_assert(utimensat(AT_FDCWD, p, old, 0) == 0);
    FAILS(NULL, "has not started in this run");
    FAILS("{\"stdout_contains\": \"done\"}", "has not started in this run");
}

Test(probe_workload, unbound_and_json, .init = mkdir_out, .fini = rm_out)
{
    struct sample s = sample1(WL, NULL);
    cr_assert(!s.ok);
    cr_assert(strstr(s.error, "not bound to its fault"), "%s", s.error);
    struct probe *p = bound(NULL);
    cr_assert_str_eq(probe_kind(p), "workload");
    cr_assert(strstr(probe_describe(p), "workload of 'db' ("), "%s", probe_describe(p));
    json_t *j = probe_to_json(p);
    cr_assert(j);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "workload"), "fault")),
                     "db");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "workload"), "output_dir")), dir);
    json_decref(j);
    probe_free(p);
}
