/* The prometheus, prometheus_alert and alertmanager probes: their specs'
 * errors name the field; their judgement of real API answers (served by a
 * forked one-answer HTTP server on 127.0.0.1) covers vectors, scalars,
 * empty results, reductions, range queries and alert states; the check
 * layer's error budget and the time an eventually check took. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "loop.h"
#include "probe.h"

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert(j, "bad test JSON %s: %s", text, e.text);
    return j;
}

static struct probe *parse_ok(const char *probe_text, const char *expect_text)
{
    json_t *pj = J(probe_text), *ej = expect_text ? J(expect_text) : NULL;
    struct probe *p = NULL;
    struct chaos_err err = {0};
    int r = probe_parse(pj, ej, "check 't'", &p, &err);
    cr_assert(r == 0, "parse of %s / %s failed: %s", probe_text, expect_text ? expect_text : "-",
              err.msg);
    json_decref(pj);
    json_decref(ej);
    return p;
}

static void parse_fails(const char *probe_text, const char *expect_text, const char *want)
{
    json_t *pj = J(probe_text), *ej = expect_text ? J(expect_text) : NULL;
    struct probe *p = NULL;
    struct chaos_err err = {0};
    int r = probe_parse(pj, ej, "check 't'", &p, &err);
    cr_assert(r < 0, "parse of %s succeeded, wanted '%s'", probe_text, want);
    cr_assert_null(p);
    cr_assert(strstr(err.msg, want), "error '%s' does not contain '%s'", err.msg, want);
    json_decref(pj);
    json_decref(ej);
}

#define PROM "{\"prometheus\": {\"url\": \"http://127.0.0.1:9\", \"query\": \"up\"}}"
#define AM "{\"alertmanager\": {\"url\": \"http://127.0.0.1:9\", \"alert\": \"X\"}}"
#define RULE "{\"prometheus_alert\": {\"url\": \"http://127.0.0.1:9\", \"alert\": \"X\"}}"

Test(probe_prom, spec_errors_name_the_field)
{
    parse_fails("{\"prometheus\": {\"query\": \"up\"}}", NULL, "probe.prometheus.url: ");
    parse_fails("{\"prometheus\": {\"url\": \"http://h\"}}", NULL, "probe.prometheus.query: ");
    parse_fails("{\"prometheus\": {\"url\": \"http://h/api?x\", \"query\": \"up\"}}", NULL,
                "probe.prometheus.url: \"http://h/api?x\" must be the base URL");
    parse_fails("{\"prometheus\": {\"url\": \"ftp://h\", \"query\": \"up\"}}", NULL,
                "probe.prometheus.url: \"ftp://h\" must start with http://");
    parse_fails("{\"prometheus\": {\"url\": \"http://h\", \"query\": \"up\", \"qurey\": 1}}", NULL,
                "probe.prometheus.qurey: unknown field");
    parse_fails(PROM, "{\"value\": \"about 1\"}", "expect.value: \"about 1\" is not a comparison");
    parse_fails(PROM, "{\"series\": \"most\", \"value\": \"> 1\"}",
                "expect.series: \"most\" is not one of all, any");
    parse_fails(PROM, "{\"reduce\": \"max\"}", "expect.reduce: needs expect.value");
    parse_fails(PROM, "{\"reduce\": \"max\", \"series\": \"any\", \"value\": \"> 1\"}",
                "expect.series: cannot be combined with reduce");
    parse_fails(PROM, "{\"empty\": \"0\", \"value\": \"> 1\"}",
                "expect.empty: \"0\" is not one of fail, pass, zero");
    parse_fails(PROM, "{\"held_for\": \"5s\"}", "expect.held_for: needs expect.value");
    parse_fails("{\"prometheus\": {\"url\": \"http://h\", \"query\": \"up\", \"step\": \"1s\"}}",
                "{\"value\": \"> 1\"}", "probe.prometheus.step: only a range query");
    parse_fails("{\"prometheus\": {\"url\": \"http://h\", \"query\": \"up\", \"tls\": "
                "{\"insecure_skip_verify\": true}}}",
                NULL, "probe.prometheus.tls: the url is not https://");
    parse_fails("{\"prometheus\": {\"url\": \"https://h\", \"query\": \"up\", \"tls\": "
                "{\"ca_file\": \"/nonexistent/ca.pem\"}}}",
                NULL, "probe.prometheus.tls.ca_file: cannot read /nonexistent/ca.pem");
    parse_fails("{\"prometheus\": {\"url\": \"http://h\", \"query\": \"up\", \"basic_auth\": "
                "{\"username\": \"u\", \"password\": \"p\"}}}",
                NULL, "probe.prometheus.basic_auth.password: unknown field");
    parse_fails("{\"prometheus\": {\"url\": \"http://h\", \"query\": \"up\", \"basic_auth\": "
                "{\"username\": \"u\"}}}",
                NULL,
                "probe.prometheus.basic_auth: give exactly one of password_env, password_file");
    parse_fails("{\"prometheus\": {\"url\": \"http://h\", \"query\": \"up\", "
                "\"bearer_token_env\": \"CHAOS_TEST_UNSET_TOKEN\"}}",
                NULL,
                "probe.prometheus.bearer_token_env: environment variable CHAOS_TEST_UNSET_TOKEN is "
                "not set");
    parse_fails("{\"alertmanager\": {\"url\": \"http://h\"}}", NULL, "probe.alertmanager.alert: ");
    parse_fails("{\"alertmanager\": {\"url\": \"http://h\", \"alert\": \"X\", \"matchers\": "
                "[\"sev~page\"]}}",
                NULL, "probe.alertmanager.matchers[0]: \"sev~page\" is not a matcher");
    parse_fails("{\"alertmanager\": {\"url\": \"http://h\", \"alert\": \"X\", \"matchers\": "
                "[\"1x=a\"]}}",
                NULL, "probe.alertmanager.matchers[0]: \"1x=a\": the label name must match");
    parse_fails("{\"alertmanager\": {\"url\": \"http://h\", \"alert\": \"X\", \"matchers\": "
                "[\"a=~(\"]}}",
                NULL,
                "probe.alertmanager.matchers[0]: \"a=~(\" is not a valid POSIX extended regex");
    parse_fails("{\"alertmanager\": {\"url\": \"http://h\", \"alert\": \"X\", \"states\": "
                "[\"firing\"]}}",
                NULL, "probe.alertmanager.states[0]: must be one of active, suppressed");
    parse_fails(AM, "{\"firing\": \"yes\"}", "expect.firing: ");
    parse_fails(RULE, "{\"state\": \"fired\"}", "expect.state: \"fired\" is not one of inactive");
    parse_fails(RULE, "{\"state\": \"firing\", \"firing\": true}",
                "expect.state: cannot be combined with expect.firing");
    parse_fails(PROM,
                "{\"budget\": {\"slo\": \"99.9\", \"period\": \"30d\", \"max_burn\": \"2%\"}}",
                "expect.budget.slo: \"99.9\" must be a percentage");
    parse_fails(PROM,
                "{\"budget\": {\"slo\": \"100%\", \"period\": \"30d\", \"max_burn\": \"2%\"}}",
                "expect.budget.slo: 1 is out of range");
    parse_fails(PROM,
                "{\"budget\": {\"slo\": \"99%\", \"period\": \"month\", \"max_burn\": \"2%\"}}",
                "expect.budget.period: \"month\" must be days");
    parse_fails(PROM, "{\"budget\": {\"slo\": \"99%\", \"period\": \"30d\"}}",
                "expect.budget.max_burn: missing");
    parse_fails(AM,
                "{\"budget\": {\"slo\": \"99%\", \"period\": \"30d\", \"max_burn\": \"2%\", "
                "\"source\": \"value\"}}",
                "expect.budget.source: \"value\" needs a prometheus probe");
}

Test(probe_prom, secrets_stay_out_of_the_report)
{
    setenv("CHAOS_TEST_TOKEN", "s3cr3t-token\n", 1);
    struct probe *p = parse_ok("{\"prometheus\": {\"url\": \"http://h:9090/\", \"query\": \"up\", "
                               "\"bearer_token_env\": \"CHAOS_TEST_TOKEN\"}}",
                               "{\"value\": \"== 1\", \"held_for\": \"10s\"}");
    json_t *j = probe_to_json(p);
    char *text = json_dumps(j, JSON_SORT_KEYS);
    cr_assert(text);
    cr_expect_null(strstr(text, "s3cr3t"), "%s", text);
    cr_expect(strstr(text, "\"bearer_token\": \"env CHAOS_TEST_TOKEN\""), "%s", text);
    cr_expect(strstr(text, "\"url\": \"http://h:9090\""), "trailing / kept: %s", text);
    cr_expect(strstr(text, "\"held_for\": \"10s\""), "%s", text);
    cr_expect_str_eq(probe_kind(p), "prometheus");
    free(text);
    json_decref(j);
    probe_free(p);
    unsetenv("CHAOS_TEST_TOKEN");
}

/* A server on 127.0.0.1 that answers each of n connections with body
 * (status 200, JSON) and exits. */
static pid_t serve(const char *body, int n, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(listen(fd, 8) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < n; i++) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                _exit(1);
            char req[8192];
            ssize_t got = read(c, req, sizeof req); /* one small GET */
            (void)got;
            char head[128];
            int hl = snprintf(head, sizeof head,
                              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                              strlen(body));
            if (write(c, head, (size_t)hl) != hl ||
                write(c, body, strlen(body)) != (ssize_t)strlen(body))
                _exit(1);
            close(c);
        }
        _exit(0);
    }
    close(fd);
    return pid;
}

struct got {
    struct loop *loop;
    struct sample s;
    bool done;
};

static void on_done(const struct sample *s, void *arg)
{
    struct got *g = arg;
    g->s = *s;
    g->done = true;
    loop_stop(g->loop);
}

/* Parses the probe with url pointed at a server answering body, takes one
 * sample and returns it. */
static struct sample sample_of(const char *kind, const char *spec, const char *expect,
                               const char *body)
{
    int port;
    pid_t pid = serve(body, 1, &port);
    char text[1024];
    snprintf(text, sizeof text, "{\"%s\": {\"url\": \"http://127.0.0.1:%d\", %s}}", kind, port,
             spec);
    struct probe *p = parse_ok(text, expect);
    struct got g = {.loop = loop_new()};
    cr_assert(g.loop);
    struct chaos_err err = {0};
    struct probe_runner *r = probe_runner_new(g.loop, &err);
    cr_assert(r, "%s", err.msg);
    cr_assert(probe_start(r, p, on_done, &g, &err) == 0, "%s", err.msg);
    cr_assert(loop_run(g.loop) >= 0);
    cr_assert(g.done);
    probe_runner_free(r);
    probe_free(p);
    loop_free(g.loop);
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    return g.s;
}

#define VEC(...)                                                                                   \
    "{\"status\": \"success\", \"data\": {\"resultType\": \"vector\", \"result\": [" __VA_ARGS__   \
    "]}}"
#define SER(lbl, v) "{\"metric\": {\"job\": \"" lbl "\"}, \"value\": [1764700000.5, \"" v "\"]}"

Test(probe_prom, vectors_every_any_reduce_count)
{
    const char *q = "\"query\": \"up\"";
    struct sample s =
        sample_of("prometheus", q, "{\"value\": \"== 1\"}", VEC(SER("a", "1") ", " SER("b", "0")));
    cr_expect_not(s.ok);
    cr_expect(strstr(s.error, "value 0 of {job=\"b\"}, wanted == 1 for every series"), "%s",
              s.error);
    cr_expect(strstr(s.detail, "evaluated at 2025-12-02T18:26:40.500Z, 2 series"), "%s", s.detail);

    s = sample_of("prometheus", q, "{\"value\": \"== 1\", \"series\": \"any\"}",
                  VEC(SER("a", "1") ", " SER("b", "0")));
    cr_expect(s.ok, "%s", s.error);
    cr_expect(s.has_value && s.value == 1);

    s = sample_of("prometheus", q, "{\"value\": \"> 0.5\", \"reduce\": \"avg\"}",
                  VEC(SER("a", "1") ", " SER("b", "0")));
    cr_expect_not(s.ok);
    cr_expect(strstr(s.error, "avg over 2 series is 0.5, wanted > 0.5"), "%s", s.error);

    s = sample_of("prometheus", q, "{\"count\": \">= 3\"}", VEC(SER("a", "1") ", " SER("b", "0")));
    cr_expect_not(s.ok);
    cr_expect(strstr(s.error, "2 series, wanted count >= 3"), "%s", s.error);

    s = sample_of("prometheus", q, "{\"value\": \"< 1\"}", VEC(SER("a", "NaN")));
    cr_expect_not(s.ok, "NaN compared as a number");
}

Test(probe_prom, empty_is_not_zero_unless_said)
{
    const char *q = "\"query\": \"up\"";
    struct sample s = sample_of("prometheus", q, "{\"value\": \"== 0\"}", VEC());
    cr_expect_not(s.ok);
    cr_expect(strstr(s.error, "empty result (no series); an empty vector is not 0"), "%s", s.error);
    s = sample_of("prometheus", q, "{\"value\": \"== 0\", \"empty\": \"zero\"}", VEC());
    cr_expect(s.ok, "%s", s.error);
    s = sample_of("prometheus", q, "{\"value\": \"== 7\", \"empty\": \"pass\"}", VEC());
    cr_expect(s.ok, "%s", s.error);
    s = sample_of("prometheus", q, "{\"value\": \"== 7\", \"empty\": \"zero\"}", VEC());
    cr_expect_not(s.ok);
}

Test(probe_prom, scalars_errors_and_range)
{
    struct sample s = sample_of("prometheus", "\"query\": \"scalar(up)\"", "{\"value\": \"== 2\"}",
                                "{\"status\": \"success\", \"data\": {\"resultType\": \"scalar\", "
                                "\"result\": [1764700000, \"2\"]}}");
    cr_expect(s.ok, "%s", s.error);
    s = sample_of(
        "prometheus", "\"query\": \"up(\"", "{\"value\": \"== 2\"}",
        "{\"status\": \"error\", \"errorType\": \"bad_data\", \"error\": \"parse error\"}");
    cr_expect_not(s.ok);
    cr_expect(strstr(s.error, "bad_data: parse error"), "%s", s.error);
    /* A range answer whose points do not cover every step fails (a hole is
     * an empty vector), naming the time. The served points are at times the
     * request did not ask for, so every step is a hole. */
    s = sample_of("prometheus", "\"query\": \"up\", \"step\": \"1s\"",
                  "{\"value\": \"== 1\", \"held_for\": \"2s\"}",
                  "{\"status\": \"success\", \"data\": {\"resultType\": \"matrix\", \"result\": "
                  "[{\"metric\": {}, \"values\": [[1000, \"1\"], [1001, \"1\"]]}]}}");
    cr_expect_not(s.ok);
    cr_expect(strstr(s.error, "not held for 2s: at 20"), "%s", s.error);
    cr_expect(strstr(s.error, "empty result"), "%s", s.error);
}

Test(probe_prom, alert_states)
{
    const char *am = "[{\"labels\": {\"alertname\": \"CheckoutSlow\", \"severity\": \"page\"}, "
                     "\"status\": {\"state\": \"active\"}}, "
                     "{\"labels\": {\"alertname\": \"CheckoutSlow\", \"severity\": \"info\"}, "
                     "\"status\": {\"state\": \"suppressed\"}}]";
    struct sample s =
        sample_of("alertmanager", "\"alert\": \"CheckoutSlow\", \"matchers\": [\"severity=~pa.e\"]",
                  "{\"firing\": true}", am);
    cr_expect(s.ok, "%s", s.error);
    s = sample_of("alertmanager",
                  "\"alert\": \"CheckoutSlow\", \"matchers\": [\"severity!=page\"], \"states\": "
                  "[\"active\"]",
                  "{\"firing\": true}", am);
    cr_expect_not(s.ok, "a suppressed alert counted as active");
    s = sample_of("alertmanager", "\"alert\": \"CheckoutSlow\", \"matchers\": [\"severity!=page\"]",
                  "{\"firing\": true}", am);
    cr_expect(s.ok, "by default a silenced (suppressed) alert still fires: %s", s.error);
    s = sample_of("alertmanager",
                  "\"alert\": \"CheckoutSlow\", \"matchers\": [\"severity!~pa\"], \"states\": "
                  "[\"suppressed\"]",
                  "{\"firing\": true}", am);
    cr_expect(s.ok, "regexes are anchored: 'pa' does not match 'page' %s", s.error);
    s = sample_of("alertmanager", "\"alert\": \"Other\"", "{\"firing\": false}", am);
    cr_expect(s.ok, "%s", s.error);

    const char *rules =
        "{\"status\": \"success\", \"data\": {\"groups\": [{\"rules\": ["
        "{\"type\": \"alerting\", \"name\": \"Slow\", \"state\": \"pending\", "
        "\"alerts\": [{\"labels\": {\"svc\": \"a\"}, \"state\": \"pending\"}]}]}]}}";
    s = sample_of("prometheus_alert", "\"alert\": \"Slow\"", "{\"firing\": true}", rules);
    cr_expect_not(s.ok);
    cr_expect(strstr(s.error, "rule Slow is pending, wanted firing"), "%s", s.error);
    s = sample_of("prometheus_alert", "\"alert\": \"Slow\"", "{\"state\": \"pending\"}", rules);
    cr_expect(s.ok, "%s", s.error);
    s = sample_of("prometheus_alert", "\"alert\": \"Slow\", \"matchers\": [\"svc=b\"]",
                  "{\"state\": \"inactive\"}", rules);
    cr_expect(s.ok, "no alert of the rule matches: inactive %s", s.error);
    s = sample_of("prometheus_alert", "\"alert\": \"Fast\"", "{\"firing\": false}", rules);
    cr_expect_not(s.ok, "a rule that is not loaded is never 'not firing'");
    cr_expect(strstr(s.error, "no alerting rule named Fast (1 alerting rules loaded)"), "%s",
              s.error);
}

static struct check budget_check(struct probe *p)
{
    struct check c;
    memset(&c, 0, sizeof c);
    c.name = "b";
    c.section = SECTION_EXPECT;
    c.every_ms = 1000;
    c.for_ms = -1;
    c.within_ms = -1;
    c.during = c.after = -1;
    c.success_ratio = (struct cmp){.set = true, .op = CMP_GE, .value = 1};
    c.probe = p;
    return c;
}

static void add(struct check_result *r, int64_t t, bool ok, double value)
{
    struct sample s = {
        .t_ms = t, .latency_us = 1000, .ok = ok, .status = 200, .has_value = true, .value = value};
    snprintf(s.error, sizeof s.error, "%s", ok ? "" : "bad");
    cr_assert_eq(check_result_add(r, &s), 0);
}

Test(probe_prom, budget_from_samples_and_from_a_ratio)
{
    /* 1 of 60 one-second samples failed: error ratio 1/60 over 60s against
     * an SLO of 99% over 1h: burned (1/60)/0.01 x 60/3600 = 2.78%. */
    struct probe *p = parse_ok(PROM, "{\"budget\": {\"slo\": \"99%\", \"period\": \"1h\", "
                                     "\"max_burn\": \"3%\"}}");
    struct check c = budget_check(p);
    struct check_result r;
    check_result_init(&r, &c);
    for (int i = 0; i < 60; i++)
        add(&r, i * 1000, i != 7, 0);
    check_judge(&r, "during 'x'");
    cr_expect_eq(r.verdict, CHECK_PASSED, "success_ratio >= 1 by default must not apply: %s",
                 r.reason);
    cr_expect(strstr(r.reason, "error budget burned 2.778%, allowed 3% (SLO 99% over 1h; 1/60 "
                               "samples failed over 1m)"),
              "%s", r.reason);
    json_t *j = check_summary_json(&r, 0);
    json_t *b = json_object_get(j, "budget");
    cr_assert(b);
    cr_expect(json_real_value(json_object_get(b, "burned")) > 0.0277);
    json_decref(j);
    check_result_free(&r);
    probe_free(p);

    p = parse_ok(PROM,
                 "{\"budget\": {\"slo\": \"99%\", \"period\": \"1h\", \"max_burn\": \"2%\"}}");
    c = budget_check(p);
    check_result_init(&r, &c);
    for (int i = 0; i < 60; i++)
        add(&r, i * 1000, i != 7, 0);
    check_judge(&r, "during 'x'");
    cr_expect_eq(r.verdict, CHECK_FAILED, "%s", r.reason);
    check_result_free(&r);
    probe_free(p);

    /* From the query: the last value is the error ratio, 0.005 over 10s of
     * a 30d SLO of 99.9%: burned 5 x 10/2592000, tiny. */
    p = parse_ok(PROM, "{\"budget\": {\"slo\": \"99.9%\", \"period\": \"30d\", \"max_burn\": "
                       "\"0.01%\", \"source\": \"value\"}}");
    c = budget_check(p);
    check_result_init(&r, &c);
    for (int i = 0; i < 10; i++)
        add(&r, i * 1000, true, i == 9 ? 0.005 : 0.9);
    check_judge(&r, "during 'x'");
    cr_expect_eq(r.verdict, CHECK_PASSED, "%s", r.reason);
    cr_expect(strstr(r.reason, "error ratio 0.005 from the query over 10s"), "%s", r.reason);
    check_result_free(&r);
    check_result_init(&r, &c);
    add(&r, 0, true, 3.0);
    check_judge(&r, "during 'x'");
    cr_expect_eq(r.verdict, CHECK_FAILED);
    cr_expect(strstr(r.reason, "not an error ratio"), "%s", r.reason);
    check_result_free(&r);
    check_result_init(&r, &c);
    check_judge(&r, "during 'x'");
    cr_expect_eq(r.verdict, CHECK_FAILED, "no samples never passes a budget");
    check_result_free(&r);
    probe_free(p);
}

Test(probe_prom, eventually_reports_the_time_it_took)
{
    struct probe *p = parse_ok(AM, "{\"firing\": true}");
    struct check c = budget_check(p);
    c.within_ms = 10000;
    struct check_result r;
    check_result_init(&r, &c);
    add(&r, 0, false, 0);
    cr_expect_not(check_eventually_met(&r));
    add(&r, 2500, true, 1);
    cr_expect(check_eventually_met(&r));
    cr_expect_eq(r.took_ms, 2500);
    json_t *j = check_summary_json(&r, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "took_ms")), 2500);
    json_decref(j);
    check_result_free(&r);
    probe_free(p);
}

Test(probe_prom, budget_in_abort_when_and_not_with_within)
{
    parse_fails(PROM,
                "{\"within\": \"5s\", \"budget\": {\"slo\": \"99%\", \"period\": \"1h\", "
                "\"max_burn\": \"1%\"}}",
                "expect.budget: cannot be combined with within");
    /* abort once more than 1% of an hour's 99% budget is gone: 1 failure in
     * 10 one-second samples burns 0.1/0.01 x 10/3600 = 2.8%. */
    struct probe *p = parse_ok(PROM, "{\"budget\": {\"slo\": \"99%\", \"period\": \"1h\", "
                                     "\"max_burn\": \"1%\"}}");
    struct check c = budget_check(p);
    c.section = SECTION_ABORT;
    c.for_ms = 0;
    struct check_result r;
    check_result_init(&r, &c);
    for (int i = 0; i < 9; i++)
        add(&r, i * 1000, true, 0);
    cr_expect_not(check_abort_triggered(&r, 9000, 0), "%s", r.reason);
    add(&r, 9000, false, 0);
    cr_expect(check_abort_triggered(&r, 10000, 0));
    cr_expect(strstr(r.reason, "error budget burned 2.778%, allowed 1%"), "%s", r.reason);
    check_result_free(&r);
    probe_free(p);
}
