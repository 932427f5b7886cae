/* Reports: the JSON report carries every check's samples summary and every
 * fault's times; the JUnit XML has the common shape and escapes what it must. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"

static const char scenario_json[] =
    "{\"version\": 1, \"name\": \"r<&>\\\"'\","
    " \"steady_state\": [{\"name\": \"st\", \"probe\": {\"command\": {\"argv\": [\"true\"]}}}],"
    " \"faults\": [{\"name\": \"k\", \"kind\": \"process\", \"target\": {\"pid\": 99999},"
    "   \"params\": {\"action\": \"kill\"}}],"
    " \"expect\": [{\"name\": \"e & <x>\", \"after\": \"k\","
    "   \"probe\": {\"command\": {\"argv\": [\"true\"]}}}]}";

static struct scenario *sc;
static struct run_result *res;
static char tmpdir[64];

static void add_samples(struct check_result *r, int n, int n_fail)
{
    for (int i = 0; i < n; i++) {
        struct sample s = {.t_ms = 1000 + i * 100, .latency_us = 1000 * (i + 1),
                           .ok = i >= n_fail, .status = i >= n_fail ? 0 : 1};
        if (i < n_fail)
            snprintf(s.error, sizeof s.error, "exit code 1 not in [0] <bad>");
        cr_assert_eq(check_result_add(r, &s), 0);
    }
}

static void setup(void)
{
    struct chaos_err err = {0};
    json_t *j = json_loads(scenario_json, 0, NULL);
    cr_assert(j);
    cr_assert_eq(scenario_parse(j, "mem.json", &sc, &err), 0, "%s", err.msg);
    json_decref(j);
    res = calloc(1, sizeof *res);
    res->exit_code = 1;
    snprintf(res->verdict, sizeof res->verdict, "FAILED: 1 of 3 checks failed");
    res->duration_ms = 4200;
    res->mono_start_ms = 1000;
    res->timeline = json_array();
    json_array_append_new(res->timeline, json_pack("{s:i, s:s}", "t_ms", 0, "event", "start"));
    res->n_faults = 1;
    res->faults = calloc(1, sizeof *res->faults);
    res->faults[0] = (struct fault_record){.fault = &sc->faults[0], .planned_ms = 2000,
                                           .applied_ms = 2001, .ended_ms = 2001,
                                           .state = FAULT_FINISHED,
                                           .events = json_array()};
    snprintf(res->faults[0].description, sizeof res->faults[0].description, "killed 1 process");
    res->n_checks = 3;
    res->checks = calloc(3, sizeof *res->checks);
    const struct check *cks[3] = {&sc->steady[0], &sc->expect[0], &sc->steady[0]};
    enum run_phase ph[3] = {PHASE_BEFORE, PHASE_FAULTS, PHASE_AFTER};
    for (int i = 0; i < 3; i++) {
        struct check_run *cr = &res->checks[i];
        cr->check = cks[i];
        cr->phase = ph[i];
        cr->started_ms = 0;
        cr->ended_ms = 1000;
        snprintf(cr->window, sizeof cr->window, "%s", i == 1 ? "after 'k'" : "before the faults");
        check_result_init(&cr->res, cks[i]);
        add_samples(&cr->res, 10, i == 1 ? 3 : 0);
        check_judge(&cr->res, cr->window);
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/chaos-t-report-XXXXXX");
    cr_assert(mkdtemp(tmpdir));
}

static void teardown(void)
{
    run_result_free(res);
    scenario_free(sc);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(report, .init = setup, .fini = teardown);

Test(report, json_has_samples_summaries_and_fault_times)
{
    json_t *j = report_json(sc, res);
    cr_assert(j);
    cr_expect_eq(json_integer_value(json_object_get(j, "exit_code")), 1);
    json_t *checks = json_object_get(j, "checks");
    cr_assert_eq(json_array_size(checks), 3);
    json_t *e = json_array_get(checks, 1);
    cr_expect_str_eq(json_string_value(json_object_get(e, "verdict")), "failed");
    cr_expect_str_eq(json_string_value(json_object_get(e, "section")), "expect");
    json_t *samples = json_object_get(e, "samples");
    cr_expect_eq(json_integer_value(json_object_get(samples, "samples")), 10);
    cr_expect_eq(json_integer_value(json_object_get(samples, "ok")), 7);
    cr_expect_float_eq(json_real_value(json_object_get(samples, "success_ratio")), 0.7, 1e-9);
    cr_expect_eq(json_integer_value(json_object_get(samples, "first_ms")), 0,
                 "sample times are relative to the run start");
    json_t *lat = json_object_get(samples, "latency_ms");
    cr_expect_float_eq(json_real_value(json_object_get(lat, "p50")), 5.0, 1e-9);
    cr_expect_float_eq(json_real_value(json_object_get(lat, "max")), 10.0, 1e-9);
    json_t *errs = json_object_get(samples, "errors");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(errs, 0), "count")), 3);
    json_t *f = json_array_get(json_object_get(j, "faults"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(f, "outcome")), "finished");
    cr_expect_eq(json_integer_value(json_object_get(f, "applied_ms")), 2001);
    cr_expect(json_is_null(json_object_get(f, "duration_ms")));
    cr_expect(json_is_object(json_object_get(e, "probe")), "the probe with its defaults");
    json_decref(j);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s missing", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(report, junit_counts_and_escapes)
{
    char path[128];
    snprintf(path, sizeof path, "%s/j.xml", tmpdir);
    struct chaos_err err = {0};
    cr_assert_eq(report_write_junit(sc, res, path, &err), 0, "%s", err.msg);
    const char *x = slurp(path);
    cr_expect(strstr(x, "<testsuite name=\"r&lt;&amp;&gt;&quot;&apos;\" tests=\"4\" failures=\"1\" "
                        "errors=\"0\" skipped=\"0\""), "%s", x);
    cr_expect(strstr(x, "name=\"e &amp; &lt;x&gt; (after &apos;k&apos;)\""), "%s", x);
    cr_expect(strstr(x, "<failure message=\"success_ratio 0.7 (7/10 ok)"), "%s", x);
    cr_expect(strstr(x, "3 x exit code 1 not in [0] &lt;bad&gt;"), "%s", x);
    cr_expect_null(strstr(x, "<bad>"), "unescaped text in XML");
}

Test(report, json_file_is_written_whole)
{
    char path[128];
    snprintf(path, sizeof path, "%s/r.json", tmpdir);
    struct chaos_err err = {0};
    cr_assert_eq(report_write_json(sc, res, path, &err), 0, "%s", err.msg);
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    cr_assert(j, "report is not valid JSON: %s", jerr.text);
    json_decref(j);
    snprintf(path, sizeof path, "%s/no/such/r.json", tmpdir);
    cr_expect_lt(report_write_json(sc, res, path, &err), 0);
    cr_expect(strstr(err.msg, "no/such/r.json"), "%s", err.msg);
}

/* A repeated action with rounds that found no target: every round is in the
 * text, the JSON and the JUnit XML (issue 13: only round 1 showed). */
static void add_rounds(struct fault_record *f)
{
    f->rounds = json_array();
    json_array_append_new(f->rounds, json_pack("{s:i, s:i, s:b, s:s}", "round", 1, "t_ms", 2001,
                                               "ok", 1, "detail", "killed 1 process (round 1/3)"));
    for (int k = 2; k <= 3; k++)
        json_array_append_new(f->rounds,
                              json_pack("{s:i, s:i, s:b, s:s}", "round", k, "t_ms", 2001 + k,
                                        "ok", 0, "detail", "target matched no process (pid 9)"));
    f->n_rounds = 3;
    f->n_rounds_failed = 2;
}

Test(report, every_round_is_reported)
{
    add_rounds(&res->faults[0]);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    report_print_verdict(sc, res, out);
    cr_assert_eq(fclose(out), 0);
    cr_expect(strstr(text, "fault 'k' finished: killed 1 process [2 of 3 rounds FAILED]"), "%s",
              text);
    cr_expect(strstr(text, "    round 1 ok: killed 1 process (round 1/3)\n"), "%s", text);
    cr_expect(strstr(text, "    round 3 FAILED: target matched no process (pid 9)\n"), "%s", text);
    free(text);

    json_t *j = report_json(sc, res);
    cr_assert_not_null(j);
    json_t *f = json_array_get(json_object_get(j, "faults"), 0);
    cr_expect_eq(json_integer_value(json_object_get(f, "rounds_failed")), 2);
    cr_expect_eq(json_array_size(json_object_get(f, "rounds")), 3);
    cr_expect(json_is_false(json_object_get(json_array_get(json_object_get(f, "rounds"), 1), "ok")));
    json_decref(j);

    char path[128];
    snprintf(path, sizeof path, "%s/j.xml", tmpdir);
    struct chaos_err err = {0};
    cr_assert_eq(report_write_junit(sc, res, path, &err), 0, "%s", err.msg);
    const char *x = slurp(path);
    cr_expect(strstr(x, "tests=\"7\" failures=\"1\" errors=\"2\""), "%s", x);
    cr_expect(strstr(x, "<testcase classname=\"r&lt;&amp;&gt;&quot;&apos;.faults\" name=\"k "
                        "round 1\" time=\"0\"/>"),
              "%s", x);
    cr_expect(strstr(x, "name=\"k round 3\" time=\"0\">\n      <error message=\"target matched no "
                        "process (pid 9)\" type=\"round_failed\"/>"),
              "%s", x);
}

/* --junit /dev/null replaced /dev/null with a regular file (issue 13): a
 * character device or a FIFO is written in place, never renamed over. */
Test(report, special_files_are_written_in_place, .timeout = 20)
{
    struct chaos_err err = {0};
    cr_assert_eq(report_write_junit(sc, res, "/dev/null", &err), 0, "%s", err.msg);
    struct stat st;
    cr_assert_eq(stat("/dev/null", &st), 0);
    cr_expect(S_ISCHR(st.st_mode), "/dev/null is no longer a character device");

    char fifo[128], got[128];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    snprintf(got, sizeof got, "%s/got.json", tmpdir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    /* Without a reader the write fails at once instead of blocking. */
    cr_expect_lt(report_write_json(sc, res, fifo, &err), 0);
    cr_expect(strstr(err.msg, "no process reads this FIFO"), "%s", err.msg);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "cat %s > %s & echo $!", fifo, got);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    int reader = 0;
    cr_assert_eq(fscanf(p, "%d", &reader), 1);
    pclose(p);
    /* The reader counts once cat has begun to open the FIFO: poll for it. */
    int r = -1;
    for (int i = 0; i < 500 && r < 0; i++)
        if ((r = report_write_json(sc, res, fifo, &err)) < 0)
            usleep(10000);
    cr_assert_eq(r, 0, "%s", err.msg);
    for (int i = 0; i < 200 && kill(reader, 0) == 0; i++)
        usleep(10000); /* cat ends at the FIFO's end of file */
    cr_assert_eq(stat(fifo, &st), 0);
    cr_expect(S_ISFIFO(st.st_mode), "the FIFO was replaced");
    json_error_t jerr;
    json_t *j = json_load_file(got, 0, &jerr);
    cr_expect_not_null(j, "the reader did not get the report: %s", jerr.text);
    json_decref(j);
}
