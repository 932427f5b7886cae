/* What the probe unit tests share: a tiny HTTP/1.1 server on loopback,
 * parsing helpers, and a loop that runs one sample to its end. Header-only:
 * each test binary includes it once. */
#ifndef CHAOS_TEST_PROBE_FIXTURES_H
#define CHAOS_TEST_PROBE_FIXTURES_H

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
static inline bool stopping_wait(struct server *s, int fd, int ms)
{
    struct pollfd p[2] = {{.fd = s->stop[0], .events = POLLIN}, {.fd = fd, .events = POLLRDHUP}};
    return poll(p, 2, ms) > 0;
}

/* Waits until every connection handler has finished (the server side of
 * each connection is closed). */
static inline void wait_server_idle(void)
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

static inline void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static inline void respond(int fd, bool head, int status, const char *body, size_t len)
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

static inline void handle(struct server *s, int fd)
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

static inline void *conn_main(void *arg)
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

static inline void *accept_main(void *arg)
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

static inline void server_start(void)
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

static inline void server_stop(void)
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
static inline int closed_port(void)
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

static inline int count_fds(void)
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

static inline void assert_no_children(void)
{
    errno = 0;
    cr_assert(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD,
              "a child process is left (zombie or running)");
}

static inline json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert(j, "bad test JSON %s: %s", text, e.text);
    return j;
}

static inline struct probe *parse_ok(const char *probe_text, const char *expect_text)
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
static inline void parse_fails(const char *probe_text, const char *expect_text, const char *want)
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

static inline void on_done(const struct sample *s, void *arg)
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

static inline void on_safety(struct loop *loop, void *arg)
{
    struct run *r = arg;
    r->timed_out = true;
    loop_stop(loop);
}

static inline void run_init(struct run *r)
{
    memset(r, 0, sizeof *r);
    r->loop = loop_new();
    cr_assert(r->loop);
    struct chaos_err err = {0};
    r->runner = probe_runner_new(r->loop, &err);
    cr_assert(r->runner, "runner: %s", err.msg);
}

static inline void run_start(struct run *r, const struct probe *p)
{
    struct chaos_err err = {0};
    r->in_start = true;
    int rc = probe_start(r->runner, p, on_done, r, &err);
    r->in_start = false;
    cr_assert(rc == 0, "probe_start: %s", err.msg);
    r->pending++;
}

/* Runs the loop until every started sample is done (fails after 10 s). */
static inline void run_wait(struct run *r)
{
    uint64_t t = loop_add_timer(r->loop, loop_now_ms() + 10000, on_safety, r);
    cr_assert(loop_run(r->loop) == 0);
    loop_cancel_timer(r->loop, t);
    cr_assert(!r->timed_out, "samples did not finish within 10s (%d pending)", r->pending);
}

static inline void run_fini(struct run *r)
{
    probe_runner_free(r->runner);
    loop_free(r->loop);
}

/* One sample of probe_text/expect_text. */
static inline struct sample sample1(const char *probe_text, const char *expect_text)
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

static inline char *url_probe(const char *path, const char *extra)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "{\"http\": {\"url\": \"http://127.0.0.1:%d%s\"%s%s}}", srv.port,
             path, extra ? ", " : "", extra ? extra : "");
    return buf;
}

/* Parsing: the dispatcher */

/* A command probe's JSON: argv (a JSON array) and extra fields. */
static inline const char *cmd(const char *argv_json, const char *extra)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "{\"command\": {\"argv\": %s%s%s}}", argv_json, extra ? ", " : "",
             extra ? extra : "");
    return buf;
}

#endif
