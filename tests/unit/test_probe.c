/* Probes: parsing (every error names its field), and real samples: HTTP
 * against a tiny server on 127.0.0.1 started by the test, and commands. */
#include "probe_fixtures.h"

Test(probe_parse, kind_selection)
{
    parse_fails("[]", NULL, "probe: must be an object");
    parse_fails("{}", NULL, "check 't': probe: give exactly one of http, command");
    parse_fails("{\"http\": {\"url\": \"http://a\"}, \"command\": {\"argv\": [\"true\"]}}", NULL,
                "probe: give exactly one of http, command");
    parse_fails("{\"grpc\": {}}", NULL,
                "check 't': probe.grpc: not available in this version (available: http, "
                "command, prometheus, prometheus_alert, alertmanager, workload)");
    parse_fails("{\"htpp\": {}}", NULL, "probe.htpp: unknown field; did you mean 'http'?");
    parse_fails("{\"http\": \"http://a\"}", NULL, "probe.http: must be an object, not a string");
    parse_fails("{\"command\": [\"true\"]}", NULL, "probe.command: must be an object");
    parse_fails("{\"command\": {\"argv\": [\"true\"]}}", "[]", "expect: must be an object");
}

Test(probe_parse, caller_keys_are_left_alone)
{
    struct probe *p = parse_ok("{\"http\": {\"url\": \"http://127.0.0.1/\"}}",
                               "{\"status\": [200], \"success_ratio\": \">= 0.9\", \"p99\": "
                               "\"< 1s\", \"within\": \"5s\", \"exit_code\": \"junk\"}");
    const char *const *keys = probe_expect_keys(p);
    bool status = false, exit_code = false;
    for (size_t i = 0; keys[i]; i++) {
        status |= strcmp(keys[i], "status") == 0;
        exit_code |= strcmp(keys[i], "exit_code") == 0;
    }
    cr_assert(status && !exit_code);
    cr_assert_str_eq(probe_kind(p), "http");
    probe_free(p);

    p = parse_ok("{\"command\": {\"argv\": [\"true\"]}}", "{\"status\": \"junk\", \"p50\": 3}");
    keys = probe_expect_keys(p);
    cr_assert_str_eq(keys[0], "exit_code");
    cr_assert_str_eq(keys[1], "stdout_contains");
    cr_assert_str_eq(keys[2], "stdout_regex");
    cr_assert_str_eq(keys[3], "budget"); /* every kind takes an error budget */
    cr_assert_null(keys[4]);
    cr_assert_str_eq(probe_kind(p), "command");
    probe_free(p);
    probe_free(NULL);
}

Test(probe_parse, http_errors_name_the_field)
{
    parse_fails("{\"http\": {}}", NULL, "probe.http.url: required field is missing");
    parse_fails("{\"http\": {\"url\": 5}}", NULL, "probe.http.url: must be a string");
    parse_fails("{\"http\": {\"url\": \"ftp://x/\"}}", NULL,
                "probe.http.url: \"ftp://x/\" must start with http:// or https://");
    parse_fails("{\"http\": {\"url\": \"127.0.0.1:80\"}}", NULL, "probe.http.url:");
    parse_fails("{\"http\": {\"url\": \"http://\"}}", NULL, "probe.http.url:");
    parse_fails("{\"http\": {\"url\": \"http://a b/\"}}", NULL, "probe.http.url:");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"urll\": 1}}", NULL,
                "probe.http.urll: unknown field; did you mean 'url'?");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"method\": \"FETCH\"}}", NULL,
                "probe.http.method: \"FETCH\" is not one of GET, HEAD, POST, PUT, PATCH, DELETE");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"method\": \"get\"}}", NULL,
                "probe.http.method:");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"headers\": [\"X: y\"]}}", NULL,
                "probe.http.headers: must be an object of strings");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"headers\": {\"X-A\": 1}}}", NULL,
                "probe.http.headers.X-A: must be a string, not an integer");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"headers\": {\"X-A\": \"a\\r\\nEvil: 1\"}}}",
                NULL, "probe.http.headers.X-A: the value contains CR, LF or NUL");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"headers\": {\"X\\nA\": \"a\"}}}", NULL,
                "probe.http.headers: header name \"X?A\" contains CR or LF");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"headers\": {\"X A\": \"a\"}}}", NULL,
                "probe.http.headers: header name \"X A\" contains ' '");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"headers\": {\"\": \"a\"}}}", NULL,
                "probe.http.headers: a header name is empty");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"body\": 5}}", NULL,
                "probe.http.body: must be a string");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"method\": \"HEAD\", \"body\": \"x\"}}", NULL,
                "probe.http.body: not allowed with method HEAD");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"timeout\": \"0s\"}}", NULL,
                "probe.http.timeout: 0s is out of range (1ms-5m)");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"timeout\": \"6m\"}}", NULL,
                "probe.http.timeout: 6m is out of range (1ms-5m)");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"timeout\": 2}}", NULL,
                "probe.http.timeout: must be a duration string");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"timeout\": \"2\"}}", NULL,
                "probe.http.timeout:");
    parse_fails("{\"http\": {\"url\": \"http://a/\", \"tls_verify\": \"no\"}}", NULL,
                "probe.http.tls_verify: must be true or false");
}

Test(probe_parse, http_expect_errors_name_the_field)
{
    const char *p = "{\"http\": {\"url\": \"http://a/\"}}";
    parse_fails(p, "{\"status\": 200}", "expect.status: must be an array");
    parse_fails(p, "{\"status\": []}", "expect.status: must not be empty");
    parse_fails(p, "{\"status\": [200, 99]}", "expect.status[1]: 99 is out of range (100-599)");
    parse_fails(p, "{\"status\": [600]}", "expect.status[0]: 600 is out of range (100-599)");
    parse_fails(p, "{\"status\": [\"200\"]}", "expect.status[0]: must be an integer 100-599");
    parse_fails(p, "{\"body_contains\": 1}", "expect.body_contains: must be a string");
    parse_fails(p, "{\"body_regex\": [\"a\"]}", "expect.body_regex: must be a string");
    parse_fails(p, "{\"body_regex\": \"(unclosed\"}",
                "expect.body_regex: \"(unclosed\" is not a valid POSIX extended regex: ");
    /* the regerror() text itself */
    parse_fails(p, "{\"body_regex\": \"(unclosed\"}", "Unmatched (");
    parse_fails(p, "{\"body_regex\": \"a{2,1}\"}", "expect.body_regex:");
}

Test(probe_parse, command_errors_name_the_field)
{
    parse_fails("{\"command\": {}}", NULL, "probe.command.argv: required field is missing");
    parse_fails("{\"command\": {\"argv\": \"true\"}}", NULL,
                "probe.command.argv: must be an array");
    parse_fails("{\"command\": {\"argv\": []}}", NULL, "probe.command.argv: must not be empty");
    parse_fails("{\"command\": {\"argv\": [\"true\", \"\"]}}", NULL,
                "probe.command.argv[1]: must not be empty");
    parse_fails("{\"command\": {\"argv\": [\"true\", 1]}}", NULL,
                "probe.command.argv[1]: must be a string, not an integer");
    parse_fails("{\"command\": {\"argv\": [\"true\"], \"timeout\": \"0s\"}}", NULL,
                "probe.command.timeout: 0s is out of range");
    parse_fails("{\"command\": {\"argv\": [\"true\"], \"timeout\": \"soon\"}}", NULL,
                "probe.command.timeout:");
    parse_fails("{\"command\": {\"argv\": [\"true\"], \"shell\": true}}", NULL,
                "probe.command.shell: unknown field");
    const char *p = "{\"command\": {\"argv\": [\"true\"]}}";
    parse_fails(p, "{\"exit_code\": [0, 256]}", "expect.exit_code[1]: 256 is out of range (0-255)");
    parse_fails(p, "{\"exit_code\": [-1]}", "expect.exit_code[0]: -1 is out of range (0-255)");
    parse_fails(p, "{\"exit_code\": 0}", "expect.exit_code: must be an array");
    parse_fails(p, "{\"stdout_contains\": false}", "expect.stdout_contains: must be a string");
    parse_fails(p, "{\"stdout_regex\": \"[a\"}",
                "expect.stdout_regex: \"[a\" is not a valid POSIX extended regex:");
}

Test(probe_parse, describe_and_defaults)
{
    struct probe *p = parse_ok("{\"http\": {\"url\": \"http://127.0.0.1:8080/checkout\"}}", NULL);
    cr_assert_str_eq(probe_describe(p), "GET http://127.0.0.1:8080/checkout");
    json_t *j = probe_to_json(p);
    json_t *want = J("{\"http\": {\"url\": \"http://127.0.0.1:8080/checkout\", \"method\": \"GET\","
                     " \"headers\": {}, \"timeout\": \"2s\", \"tls_verify\": true}}");
    char *got = json_dumps(j, JSON_SORT_KEYS);
    cr_assert(json_equal(j, want), "to_json gave %s", got);
    free(got);
    json_decref(j);
    json_decref(want);
    probe_free(p);

    p = parse_ok("{\"http\": {\"url\": \"https://x.example/a\", \"method\": \"POST\", \"headers\":"
                 " {\"X-A\": \"1\"}, \"body\": \"b\", \"timeout\": \"1500ms\", \"tls_verify\": "
                 "false}}",
                 NULL);
    cr_assert_str_eq(probe_describe(p), "POST https://x.example/a");
    j = probe_to_json(p);
    want = J("{\"http\": {\"url\": \"https://x.example/a\", \"method\": \"POST\", \"headers\": "
             "{\"X-A\": \"1\"}, \"body\": \"b\", \"timeout\": \"1.5s\", \"tls_verify\": false}}");
    cr_assert(json_equal(j, want));
    json_decref(j);
    json_decref(want);
    probe_free(p);

    p = parse_ok("{\"command\": {\"argv\": [\"./check.sh\", \"arg\"]}}", NULL);
    cr_assert_str_eq(probe_describe(p), "command ./check.sh arg");
    j = probe_to_json(p);
    want = J("{\"command\": {\"argv\": [\"./check.sh\", \"arg\"], \"timeout\": \"5s\"}}");
    cr_assert(json_equal(j, want));
    json_decref(j);
    json_decref(want);
    probe_free(p);

    p = parse_ok("{\"command\": {\"argv\": [\"sh\", \"-c\", \"exit 0\"], \"timeout\": \"1m\"}}",
                 NULL);
    cr_assert_str_eq(probe_describe(p), "command sh -c 'exit 0'");
    probe_free(p);
}

/* HTTP samples */

TestSuite(probe_http, .init = server_start, .fini = server_stop, .timeout = 30);

Test(probe_http, ok_and_default_status)
{
    int fds = count_fds();
    struct sample s = sample1(url_probe("/ok", NULL), NULL);
    cr_assert(s.ok, "error: %s", s.error);
    cr_assert_eq(s.status, 200);
    cr_assert_str_eq(s.error, "");
    cr_assert(s.latency_us > 0 && s.latency_us < 2000000, "latency %lld", (long long)s.latency_us);
    cr_assert(s.t_ms > 0 && s.t_ms <= loop_now_ms());

    s = sample1(url_probe("/status/204", NULL), NULL);
    cr_assert(s.ok, "error: %s", s.error);
    cr_assert_eq(s.status, 204);

    s = sample1(url_probe("/status/503", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 503);
    cr_assert_str_eq(s.error, "status 503 not in 2xx");

    s = sample1(url_probe("/status/302", NULL), NULL);
    cr_assert(!s.ok, "redirects are not followed and 302 is not 2xx");
    cr_assert_eq(s.status, 302);
    wait_server_idle();
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
}

Test(probe_http, status_set)
{
    struct sample s = sample1(url_probe("/status/503", NULL), "{\"status\": [503, 504]}");
    cr_assert(s.ok, "error: %s", s.error);
    s = sample1(url_probe("/ok", NULL), "{\"status\": [201]}");
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 200);
    cr_assert_str_eq(s.error, "status 200 not in [201]");
    s = sample1(url_probe("/status/404", NULL), "{\"status\": [200, 204]}");
    cr_assert_str_eq(s.error, "status 404 not in [200, 204]");
}

Test(probe_http, body_conditions)
{
    struct sample s = sample1(url_probe("/ok", NULL), "{\"body_contains\": \"ok\"}");
    cr_assert(s.ok, "error: %s", s.error);
    s = sample1(url_probe("/ok", NULL), "{\"body_contains\": \"nope\"}");
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 200);
    cr_assert_str_eq(s.error, "body does not contain \"nope\"");

    s = sample1(url_probe("/json", NULL),
                "{\"body_regex\": \"\\\"status\\\":\\\"(green|yellow)\\\"\"}");
    cr_assert(s.ok, "error: %s", s.error);
    s = sample1(url_probe("/json", NULL), "{\"body_regex\": \"version\\\":[0-9]{3}\"}");
    cr_assert(!s.ok);
    cr_assert(strstr(s.error, "body does not match regex"), "%s", s.error);
    /* conditions are checked in order: status first */
    s = sample1(url_probe("/status/500", NULL), "{\"body_contains\": \"status\"}");
    cr_assert_str_eq(s.error, "status 500 not in 2xx");
}

Test(probe_http, body_is_capped_at_1mib)
{
    struct sample s = sample1(url_probe("/big", NULL), "{\"body_regex\": \"^a+$\"}");
    cr_assert(s.ok, "the first MiB is all 'a': %s", s.error);
    s = sample1(url_probe("/big", NULL), "{\"body_contains\": \"TAIL\"}");
    cr_assert(!s.ok);
    cr_assert_str_eq(s.error, "body (first 1 MiB) does not contain \"TAIL\"");
}

Test(probe_http, timeout)
{
    int64_t t0 = loop_now_ms();
    struct sample s = sample1(url_probe("/slow", "\"timeout\": \"200ms\""), NULL);
    int64_t took = loop_now_ms() - t0;
    cr_assert(!s.ok);
    cr_assert_str_eq(s.error, "timed out after 200ms");
    cr_assert_eq(s.status, -1);
    cr_assert(took >= 190 && took < 2000, "took %lld ms", (long long)took);
    cr_assert(s.latency_us >= 190000 && s.latency_us < 2000000);
}

Test(probe_http, connection_refused)
{
    char probe[256];
    snprintf(probe, sizeof probe, "{\"http\": {\"url\": \"http://127.0.0.1:%d/\"}}", closed_port());
    struct sample s = sample1(probe, NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, -1);
    cr_assert_str_eq(s.error, "connect: Connection refused");
}

Test(probe_http, proxy_environment_is_ignored)
{
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", closed_port());
    setenv("http_proxy", proxy, 1);
    setenv("HTTP_PROXY", proxy, 1);
    setenv("ALL_PROXY", proxy, 1);
    struct sample s = sample1(url_probe("/ok", NULL), NULL);
    cr_assert(s.ok, "error: %s", s.error);
}

Test(probe_http, post_with_body_and_headers_reaches_the_server)
{
    strcpy(srv.want_method, "POST");
    strcpy(srv.want_header, "X-Token: s3cret");
    strcpy(srv.want_body, "{\"order\": 1}");
    struct sample s =
        sample1(url_probe("/verify", "\"method\": \"POST\", \"headers\": {\"X-Token\": "
                                     "\"s3cret\", \"Content-Type\": "
                                     "\"application/json\"}, \"body\": \"{\\\"order\\\": "
                                     "1}\""),
                "{\"body_contains\": \"verified\"}");
    cr_assert(s.ok, "error: %s", s.error);

    /* the server notices a wrong body */
    s = sample1(url_probe("/verify", "\"method\": \"POST\", \"headers\": {\"X-Token\": \"s3cret\"},"
                                     " \"body\": \"other\""),
                NULL);
    cr_assert(!s.ok);
    cr_assert_str_eq(s.error, "status 400 not in 2xx");
}

Test(probe_http, other_methods_reach_the_server)
{
    strcpy(srv.want_method, "HEAD");
    strcpy(srv.want_header, "X-Probe: yes");
    srv.want_body[0] = '\0';
    struct sample s = sample1(
        url_probe("/verify", "\"method\": \"HEAD\", \"headers\": {\"X-Probe\": \"yes\"}"), NULL);
    cr_assert(s.ok, "error: %s", s.error);
    cr_assert_eq(s.status, 200);

    strcpy(srv.want_method, "PUT");
    strcpy(srv.want_body, "new value");
    s = sample1(url_probe("/verify", "\"method\": \"PUT\", \"headers\": {\"X-Probe\": \"yes\"}, "
                                     "\"body\": \"new value\""),
                NULL);
    cr_assert(s.ok, "error: %s", s.error);

    strcpy(srv.want_method, "DELETE");
    srv.want_body[0] = '\0';
    s = sample1(url_probe("/verify", "\"method\": \"DELETE\", \"headers\": {\"X-Probe\": \"yes\"}"),
                NULL);
    cr_assert(s.ok, "error: %s", s.error);

    strcpy(srv.want_method, "PATCH");
    strcpy(srv.want_body, "p");
    s = sample1(url_probe("/verify", "\"method\": \"PATCH\", \"headers\": {\"X-Probe\": \"yes\"}, "
                                     "\"body\": \"p\""),
                NULL);
    cr_assert(s.ok, "error: %s", s.error);

    /* an empty header value is sent, not dropped */
    strcpy(srv.want_method, "GET");
    strcpy(srv.want_header, "X-Empty:");
    srv.want_body[0] = '\0';
    s = sample1(url_probe("/verify", "\"headers\": {\"X-Empty\": \"\"}"), NULL);
    cr_assert(s.ok, "error: %s", s.error);
}

Test(probe_http, many_samples_in_flight)
{
    int fds = count_fds();
    struct probe *p = parse_ok(url_probe("/delay/300", NULL), "{\"body_contains\": \"delayed\"}");
    struct run r;
    run_init(&r);
    int64_t t0 = loop_now_ms();
    for (int i = 0; i < 30; i++)
        run_start(&r, p);
    run_wait(&r);
    int64_t took = loop_now_ms() - t0;
    cr_assert_eq(r.n, 30);
    for (int i = 0; i < 30; i++)
        cr_assert(r.got[i].ok, "sample %d: %s", i, r.got[i].error);
    cr_assert(took < 3000, "30 x 300ms took %lld ms: not concurrent", (long long)took);
    pthread_mutex_lock(&srv.mu);
    int peak = srv.peak;
    pthread_mutex_unlock(&srv.mu);
    cr_assert(peak >= 20, "at most %d requests were in flight together", peak);
    run_fini(&r);
    probe_free(p);
    wait_server_idle();
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
}

Test(probe_http, probe_freed_while_sample_in_flight)
{
    struct probe *p = parse_ok(url_probe("/delay/50", NULL), "{\"body_contains\": \"delayed\"}");
    struct run r;
    run_init(&r);
    run_start(&r, p);
    probe_free(p); /* the sample keeps what it needs */
    run_wait(&r);
    cr_assert(r.got[0].ok, "error: %s", r.got[0].error);
    run_fini(&r);
}

Test(probe_http, runner_freed_from_done_callback)
{
    struct probe *fast = parse_ok(url_probe("/ok", NULL), NULL);
    struct probe *slow = parse_ok(url_probe("/slow", NULL), NULL);
    struct run r;
    run_init(&r);
    run_start(&r, fast);
    run_start(&r, slow);
    run_start(&r, slow);
    r.free_runner_in_done = true;
    run_wait(&r);
    cr_assert_eq(r.n, 1, "callbacks after the runner was freed");
    cr_assert(r.got[0].ok);
    cr_assert_null(r.runner);
    loop_free(r.loop);
    probe_free(fast);
    probe_free(slow);
}

/* Command samples */

static void stop_loop(struct loop *loop, void *arg)
{
    loop_stop(loop);
}

Test(probe_runner, freed_with_samples_in_flight, .init = server_start, .fini = server_stop,
     .timeout = 30)
{
    int fds = count_fds();
    char sleeper[] = "{\"command\": {\"argv\": [\"sleep\", \"30\"]}}";
    struct probe *c = parse_ok(sleeper, NULL);
    struct probe *missing = parse_ok("{\"command\": {\"argv\": [\"/nonexistent/prog\"]}}", NULL);
    struct probe *h = parse_ok(url_probe("/slow", NULL), NULL);
    struct run r;
    run_init(&r);
    for (int i = 0; i < 3; i++) {
        run_start(&r, c);
        run_start(&r, h);
    }
    cr_assert(loop_add_timer(r.loop, loop_now_ms() + 200, stop_loop, NULL));
    cr_assert(loop_run(r.loop) == 0);
    cr_assert_eq(r.n, 0);
    run_start(&r, missing); /* its failure is queued, never delivered */
    probe_runner_free(r.runner);
    cr_assert_eq(r.n, 0, "a callback ran after the runner was freed");
    assert_no_children();
    /* nothing the runner watched is left on the loop */
    cr_assert(loop_add_timer(r.loop, loop_now_ms() + 100, stop_loop, NULL));
    cr_assert(loop_run(r.loop) == 0);
    cr_assert_eq(r.n, 0);
    loop_free(r.loop);
    probe_free(c);
    probe_free(missing);
    probe_free(h);
    wait_server_idle();
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
}

Test(probe_runner, freed_before_the_loop_ever_ran, .timeout = 30)
{
    struct probe *c = parse_ok("{\"command\": {\"argv\": [\"sleep\", \"30\"]}}", NULL);
    struct probe *h = parse_ok("{\"http\": {\"url\": \"http://127.0.0.1:9/\"}}", NULL);
    struct run r;
    run_init(&r);
    run_start(&r, c);
    run_start(&r, h);
    run_fini(&r);
    cr_assert_eq(r.n, 0);
    assert_no_children();
    probe_free(c);
    probe_free(h);
    probe_runner_free(NULL);
}

Test(probe_runner, mixed_kinds_on_one_loop, .init = server_start, .fini = server_stop,
     .timeout = 30)
{
    struct probe *c = parse_ok(cmd("[\"sh\", \"-c\", \"sleep 0.1; echo ok\"]", NULL),
                               "{\"stdout_contains\": \"ok\"}");
    struct probe *h = parse_ok(url_probe("/delay/100", NULL), NULL);
    struct run r;
    run_init(&r);
    for (int i = 0; i < 5; i++) {
        run_start(&r, c);
        run_start(&r, h);
    }
    run_wait(&r);
    cr_assert_eq(r.n, 10);
    for (int i = 0; i < 10; i++)
        cr_assert(r.got[i].ok, "sample %d: %s", i, r.got[i].error);
    run_fini(&r);
    probe_free(c);
    probe_free(h);
    assert_no_children();
}
