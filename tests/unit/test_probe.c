/* Probes: parsing (every error names its field), and real samples: HTTP
 * against a tiny server on 127.0.0.1 started by the test, and commands. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "loop.h"
#include "probe.h"

/* A tiny HTTP/1.1 server: one thread accepting, one thread per connection,
 * "Connection: close" on every answer. */

struct server {
    int lfd, port;
    int stop[2]; /* readable once the server stops */
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int active, peak, requests;
    /* what /verify wants to see */
    char want_method[16], want_header[128], want_body[256];
};

static struct server srv;

struct conn {
    struct server *s;
    int fd;
};

/* Waits ms; true (answer nothing) if the server stops or the client leaves. */
static bool stopping_wait(struct server *s, int fd, int ms)
{
    struct pollfd p[2] = {{.fd = s->stop[0], .events = POLLIN}, {.fd = fd, .events = POLLRDHUP}};
    return poll(p, 2, ms) > 0;
}

/* Waits until every connection handler has finished (the server side of
 * each connection is closed). */
static void wait_server_idle(void)
{
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&srv.mu);
        int active = srv.active;
        pthread_mutex_unlock(&srv.mu);
        if (!active)
            return;
        usleep(10000);
    }
    cr_assert_fail("server connections still open");
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, bool head, int status, const char *body, size_t len)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d Test\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n"
                     "Connection: close\r\n\r\n",
                     status, len);
    send_all(fd, hdr, (size_t)n);
    if (!head)
        send_all(fd, body, len);
}

static void handle(struct server *s, int fd)
{
    static char req[65536];
    char *buf = malloc(sizeof req);
    size_t len = 0;
    char *end = NULL;
    while (!end && len < sizeof req - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) <= 0)
            goto out;
        ssize_t n = recv(fd, buf + len, sizeof req - 1 - len, 0);
        if (n <= 0)
            goto out;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        goto out;
    size_t head_len = (size_t)(end - buf) + 4;
    size_t clen = 0;
    char *cl = strcasestr(buf, "\r\ncontent-length:");
    if (cl && cl < end)
        clen = strtoul(cl + 17, NULL, 10);
    while (len < head_len + clen && len < sizeof req - 1) {
        ssize_t n = recv(fd, buf + len, sizeof req - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    char method[16] = "", path[256] = "";
    sscanf(buf, "%15s %255s", method, path);
    bool head = strcmp(method, "HEAD") == 0;
    pthread_mutex_lock(&s->mu);
    s->requests++;
    pthread_mutex_unlock(&s->mu);

    if (strcmp(path, "/ok") == 0) {
        respond(fd, head, 200, "hello ok world", 14);
    } else if (strncmp(path, "/status/", 8) == 0) {
        char body[32];
        int code = atoi(path + 8);
        int n = snprintf(body, sizeof body, "status %d", code);
        respond(fd, head, code, body, (size_t)n);
    } else if (strcmp(path, "/slow") == 0) {
        if (!stopping_wait(s, fd, 5000))
            respond(fd, head, 200, "slow", 4);
    } else if (strncmp(path, "/delay/", 7) == 0) {
        if (!stopping_wait(s, fd, atoi(path + 7)))
            respond(fd, head, 200, "delayed", 7);
    } else if (strcmp(path, "/big") == 0) {
        size_t n = 2 * 1024 * 1024;
        char *big = malloc(n + 4);
        memset(big, 'a', n);
        memcpy(big + n, "TAIL", 4);
        respond(fd, head, 200, big, n + 4);
        free(big);
    } else if (strcmp(path, "/json") == 0) {
        const char *b = "{\"status\":\"green\",\"version\":42}";
        respond(fd, head, 200, b, strlen(b));
    } else if (strcmp(path, "/verify") == 0) {
        char line[160];
        snprintf(line, sizeof line, "\r\n%s\r\n", s->want_header);
        const char *why = NULL;
        if (strcmp(method, s->want_method) != 0)
            why = "wrong method";
        else if (s->want_header[0] && !strcasestr(buf, line))
            why = "header missing";
        else if (len - head_len != strlen(s->want_body) ||
                 memcmp(buf + head_len, s->want_body, len - head_len) != 0)
            why = "wrong body";
        if (why)
            respond(fd, head, 400, why, strlen(why));
        else
            respond(fd, head, 200, "verified", 8);
    } else {
        respond(fd, head, 404, "not found", 9);
    }
out:
    free(buf);
}

static void *conn_main(void *arg)
{
    struct conn c = *(struct conn *)arg;
    free(arg);
    handle(c.s, c.fd);
    close(c.fd);
    pthread_mutex_lock(&c.s->mu);
    c.s->active--;
    pthread_cond_broadcast(&c.s->cv);
    pthread_mutex_unlock(&c.s->mu);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                              {.fd = s->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents)
            return NULL;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        struct conn *c = malloc(sizeof *c);
        *c = (struct conn){.s = s, .fd = fd};
        pthread_mutex_lock(&s->mu);
        s->active++;
        if (s->active > s->peak)
            s->peak = s->active;
        pthread_mutex_unlock(&s->mu);
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_create(&t, &a, conn_main, c);
        pthread_attr_destroy(&a);
    }
}

static void server_start(void)
{
    memset(&srv, 0, sizeof srv);
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.cv, NULL);
    cr_assert(pipe2(srv.stop, O_CLOEXEC) == 0);
    srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(srv.lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert(bind(srv.lfd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(listen(srv.lfd, 128) == 0);
    cr_assert(getsockname(srv.lfd, (struct sockaddr *)&a, &alen) == 0);
    srv.port = ntohs(a.sin_port);
    cr_assert(pthread_create(&srv.thr, NULL, accept_main, &srv) == 0);
}

static void server_stop(void)
{
    cr_assert(write(srv.stop[1], "x", 1) == 1);
    pthread_join(srv.thr, NULL);
    pthread_mutex_lock(&srv.mu);
    while (srv.active > 0)
        pthread_cond_wait(&srv.cv, &srv.mu);
    pthread_mutex_unlock(&srv.mu);
    close(srv.lfd);
    close(srv.stop[0]);
    close(srv.stop[1]);
}

/* A port on 127.0.0.1 where nobody listens. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Helpers for driving samples */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void assert_no_children(void)
{
    errno = 0;
    cr_assert(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD,
              "a child process is left (zombie or running)");
}

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert(j, "bad test JSON %s: %s", text, e.text);
    return j;
}

static struct probe *parse_ok(const char *probe_text, const char *expect_text)
{
    json_t *pj = J(probe_text);
    json_t *ej = expect_text ? J(expect_text) : NULL;
    struct probe *p = NULL;
    struct chaos_err err = {0};
    int r = probe_parse(pj, ej, "check 't'", &p, &err);
    cr_assert(r == 0, "parse failed: %s", err.msg);
    json_decref(pj);
    json_decref(ej);
    return p;
}

/* Parses and expects failure; the message must contain want. */
static void parse_fails(const char *probe_text, const char *expect_text, const char *want)
{
    json_t *pj = J(probe_text);
    json_t *ej = expect_text ? J(expect_text) : NULL;
    struct probe *p = NULL;
    struct chaos_err err = {0};
    int r = probe_parse(pj, ej, "check 't'", &p, &err);
    cr_assert(r < 0, "parse of %s succeeded, wanted error containing '%s'", probe_text, want);
    cr_assert(p == NULL);
    cr_assert(strncmp(err.msg, "check 't': ", 11) == 0, "no ctx prefix: %s", err.msg);
    cr_assert(strstr(err.msg, want), "error '%s' does not contain '%s'", err.msg, want);
    json_decref(pj);
    json_decref(ej);
}

struct run {
    struct loop *loop;
    struct probe_runner *runner;
    int pending, n;
    struct sample got[64];
    bool timed_out;
    bool in_start;
    bool free_runner_in_done;
};

static void on_done(const struct sample *s, void *arg)
{
    struct run *r = arg;
    cr_assert(!r->in_start, "done called from inside probe_start");
    cr_assert(r->n < 64);
    r->got[r->n++] = *s;
    if (r->free_runner_in_done) {
        probe_runner_free(r->runner);
        r->runner = NULL;
        loop_stop(r->loop);
        return;
    }
    if (--r->pending == 0)
        loop_stop(r->loop);
}

static void on_safety(struct loop *loop, void *arg)
{
    struct run *r = arg;
    r->timed_out = true;
    loop_stop(loop);
}

static void run_init(struct run *r)
{
    memset(r, 0, sizeof *r);
    r->loop = loop_new();
    cr_assert(r->loop);
    struct chaos_err err = {0};
    r->runner = probe_runner_new(r->loop, &err);
    cr_assert(r->runner, "runner: %s", err.msg);
}

static void run_start(struct run *r, const struct probe *p)
{
    struct chaos_err err = {0};
    r->in_start = true;
    int rc = probe_start(r->runner, p, on_done, r, &err);
    r->in_start = false;
    cr_assert(rc == 0, "probe_start: %s", err.msg);
    r->pending++;
}

/* Runs the loop until every started sample is done (fails after 10 s). */
static void run_wait(struct run *r)
{
    uint64_t t = loop_add_timer(r->loop, loop_now_ms() + 10000, on_safety, r);
    cr_assert(loop_run(r->loop) == 0);
    loop_cancel_timer(r->loop, t);
    cr_assert(!r->timed_out, "samples did not finish within 10s (%d pending)", r->pending);
}

static void run_fini(struct run *r)
{
    probe_runner_free(r->runner);
    loop_free(r->loop);
}

/* One sample of probe_text/expect_text. */
static struct sample sample1(const char *probe_text, const char *expect_text)
{
    struct probe *p = parse_ok(probe_text, expect_text);
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

static char *url_probe(const char *path, const char *extra)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "{\"http\": {\"url\": \"http://127.0.0.1:%d%s\"%s%s}}", srv.port,
             path, extra ? ", " : "", extra ? extra : "");
    return buf;
}

/* Parsing: the dispatcher */

Test(probe_parse, kind_selection)
{
    parse_fails("[]", NULL, "probe: must be an object");
    parse_fails("{}", NULL, "check 't': probe: give exactly one of http, command");
    parse_fails("{\"http\": {\"url\": \"http://a\"}, \"command\": {\"argv\": [\"true\"]}}", NULL,
                "probe: give exactly one of http, command");
    parse_fails("{\"grpc\": {}}", NULL,
                "check 't': probe.grpc: not available in this version (available: http, "
                "command, prometheus, prometheus_alert, alertmanager)");
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

static const char *cmd(const char *argv_json, const char *extra)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "{\"command\": {\"argv\": %s%s%s}}", argv_json, extra ? ", " : "",
             extra ? extra : "");
    return buf;
}

Test(probe_command, exit_codes, .timeout = 30)
{
    int fds = count_fds();
    struct sample s = sample1(cmd("[\"true\"]", NULL), NULL);
    cr_assert(s.ok, "error: %s", s.error);
    cr_assert_eq(s.status, 0);

    s = sample1(cmd("[\"false\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 1);
    cr_assert_str_eq(s.error, "exit code 1 not in [0]");

    s = sample1(cmd("[\"sh\", \"-c\", \"exit 3\"]", NULL), "{\"exit_code\": [2, 3]}");
    cr_assert(s.ok, "error: %s", s.error);
    cr_assert_eq(s.status, 3);

    s = sample1(cmd("[\"sh\", \"-c\", \"exit 0\"]", NULL), "{\"exit_code\": [1]}");
    cr_assert_str_eq(s.error, "exit code 0 not in [1]");

    /* 127 from a shell that could not find the program */
    s = sample1(cmd("[\"sh\", \"-c\", \"exec /nonexistent/prog 2>/dev/null\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 127);
    cr_assert(strstr(s.error, "exit code 127 not in [0] (127: the program could not be run"), "%s",
              s.error);
    assert_no_children();
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
}

Test(probe_command, killed_by_signal, .timeout = 30)
{
    struct sample s = sample1(cmd("[\"sh\", \"-c\", \"kill -TERM $$\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, -1);
    cr_assert(strstr(s.error, "killed by signal SIGTERM"), "%s", s.error);
    assert_no_children();
}

Test(probe_command, stdout_conditions, .timeout = 30)
{
    struct sample s = sample1(cmd("[\"echo\", \"hello world\"]", NULL),
                              "{\"stdout_contains\": \"lo wo\", \"stdout_regex\": \"^hello "
                              "[a-z]+\\n$\"}");
    cr_assert(s.ok, "error: %s", s.error);

    s = sample1(cmd("[\"echo\", \"hello\"]", NULL), "{\"stdout_contains\": \"bye\"}");
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 0);
    cr_assert_str_eq(s.error, "stdout does not contain \"bye\"");

    s = sample1(cmd("[\"echo\", \"v1.2\"]", NULL), "{\"stdout_regex\": \"^v2\"}");
    cr_assert_str_eq(s.error, "stdout does not match regex \"^v2\"");

    /* stdin is /dev/null: cat ends at once */
    s = sample1(cmd("[\"cat\"]", "\"timeout\": \"2s\""), "{\"stdout_regex\": \"^$\"}");
    cr_assert(s.ok, "error: %s", s.error);
}

Test(probe_command, stdout_beyond_64k_is_drained, .timeout = 30)
{
    /* 1 MiB of output: the child would block forever if we stopped reading. */
    struct sample s = sample1(cmd("[\"sh\", \"-c\", \"head -c 1048576 /dev/zero | tr '\\\\0' a; "
                                  "echo END\"]",
                                  NULL),
                              "{\"stdout_contains\": \"END\"}");
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 0);
    cr_assert_str_eq(s.error, "stdout (first 64 KiB) does not contain \"END\"");
    s = sample1(cmd("[\"sh\", \"-c\", \"head -c 1048576 /dev/zero | tr '\\\\0' a\"]", NULL),
                "{\"stdout_regex\": \"^a+$\"}");
    cr_assert(s.ok, "error: %s", s.error);
    assert_no_children();
}

static bool process_gone(pid_t pid)
{
    /* Gone, or a zombie waiting for init: dead either way. */
    for (int i = 0; i < 100; i++) {
        char path[64], st[256] = "";
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return true;
        size_t n = fread(st, 1, sizeof st - 1, f);
        fclose(f);
        st[n] = '\0';
        char *rp = strrchr(st, ')');
        if (rp && (rp[2] == 'Z' || rp[2] == 'X'))
            return true;
        usleep(10000);
    }
    return false;
}

static pid_t read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s was not written", path);
    int pid = 0;
    cr_assert(fscanf(f, "%d", &pid) == 1);
    fclose(f);
    unlink(path);
    return pid;
}

Test(probe_command, timeout_kills_the_child, .timeout = 30)
{
    char pidfile[64], kidfile[64], argv[512];
    snprintf(pidfile, sizeof pidfile, "/tmp/test_probe_%d.pid", (int)getpid());
    snprintf(kidfile, sizeof kidfile, "/tmp/test_probe_%d.kid", (int)getpid());
    /* The shell starts a grandchild too: the whole group dies. */
    snprintf(argv, sizeof argv, "[\"sh\", \"-c\", \"echo $$ > %s; sleep 30 & echo $! > %s; wait\"]",
             pidfile, kidfile);
    int fds = count_fds();
    int64_t t0 = loop_now_ms();
    struct sample s = sample1(cmd(argv, "\"timeout\": \"300ms\""), NULL);
    int64_t took = loop_now_ms() - t0;
    cr_assert(!s.ok);
    cr_assert_eq(s.status, -1);
    cr_assert_str_eq(s.error, "timed out after 300ms");
    cr_assert(took >= 290 && took < 3000, "took %lld ms", (long long)took);
    pid_t pid = read_pid(pidfile), kid = read_pid(kidfile);
    cr_assert(pid > 0 && kill(pid, 0) < 0 && errno == ESRCH, "the child %d is still there", pid);
    cr_assert(process_gone(kid), "the grandchild %d survived", kid);
    assert_no_children();
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
}

Test(probe_command, program_that_cannot_run, .timeout = 30)
{
    int fds = count_fds();
    struct sample s = sample1(cmd("[\"/nonexistent/prog\", \"x\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, -1);
    cr_assert_str_eq(s.error, "cannot run '/nonexistent/prog': No such file or directory");

    s = sample1(cmd("[\"no-such-program-for-test-probe\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_str_eq(s.error,
                     "cannot run 'no-such-program-for-test-probe': No such file or directory");

    s = sample1(cmd("[\"/etc/passwd\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_str_eq(s.error, "cannot run '/etc/passwd': Permission denied");
    assert_no_children();
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
}

Test(probe_command, many_in_flight, .timeout = 30)
{
    struct probe *p = parse_ok(cmd("[\"sh\", \"-c\", \"sleep 0.3; echo done\"]", NULL),
                               "{\"stdout_contains\": \"done\"}");
    struct run r;
    run_init(&r);
    int64_t t0 = loop_now_ms();
    for (int i = 0; i < 20; i++)
        run_start(&r, p);
    run_wait(&r);
    int64_t took = loop_now_ms() - t0;
    cr_assert_eq(r.n, 20);
    for (int i = 0; i < 20; i++)
        cr_assert(r.got[i].ok, "sample %d: %s", i, r.got[i].error);
    cr_assert(took < 3000, "20 x 300ms took %lld ms: not concurrent", (long long)took);
    run_fini(&r);
    probe_free(p);
    assert_no_children();
}

Test(probe_command, child_does_not_inherit_our_fds, .timeout = 30)
{
    /* Only 0, 1, 2 and the fd ls itself opens to read the directory. */
    struct sample s = sample1(cmd("[\"sh\", \"-c\", \"ls /proc/self/fd | wc -l\"]", NULL),
                              "{\"stdout_regex\": \"^ *4\\n$\"}");
    cr_assert(s.ok, "error: %s", s.error);
}

/* Freeing the runner with samples in flight */

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
