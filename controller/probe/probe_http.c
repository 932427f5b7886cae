/* The http probe: one request per sample, driven by a curl multi handle on
 * the run's event loop (sockets and the curl timer live in struct loop). */
#include "probe_impl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "duration.h"
#include "jsonv.h"
#include "util.h"

#define HTTP_BODY_CAP (1024 * 1024)     /* bytes of response body kept */
#define HTTP_URL_MAX 8192               /* longest url accepted */
#define HTTP_HEADERS_MAX 64             /* most request headers accepted */
#define HTTP_HEADER_MAX 8192            /* longest header value accepted */
#define HTTP_REQ_BODY_MAX (1024 * 1024) /* longest request body accepted */
#define HTTP_TIMEOUT_DEFAULT_MS 2000
#define HTTP_TIMEOUT_MAX_MS (5 * 60 * 1000)

static const char *const http_keys[] = {"url",     "method",     "headers", "body",
                                        "timeout", "tls_verify", NULL};
static const char *const http_expect_keys[] = {"status", "body_contains", "body_regex", NULL};
static const char *const http_methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", NULL};

struct http_probe {
    char *url;
    const char *method;             /* one of http_methods */
    json_t *headers;                /* the validated object, for to_json */
    struct curl_slist *header_list; /* "Name: value" lines, shared by samples */
    char *body;                     /* NULL when absent */
    size_t body_len;
    int64_t timeout_ms;
    bool tls_verify;
    /* per-sample conditions */
    int *status; /* NULL: any 2xx */
    size_t n_status;
    char *body_contains;
    struct probe_regex *body_regex;
    char *body_regex_src;
    char *desc;
};

struct http_sample;

struct http_runner {
    struct loop *loop;
    CURLM *multi;
    uint64_t timer; /* the loop timer standing for curl's timeout, 0 if none */
    int *fds;       /* sockets curl asked us to watch */
    size_t n_fds, cap_fds;
    struct http_sample *samples; /* in flight */
    bool *alive;                 /* set while delivering results; cleared if the runner is freed */
};

struct http_sample {
    struct http_sample *prev, *next;
    struct http_runner *hr;
    struct probe *ref;
    const struct http_probe *hp;
    CURL *easy;
    probe_done_cb done;
    void *arg;
    int64_t t_ms, t0_us;
    char *buf; /* the first HTTP_BODY_CAP bytes of the body, NUL-terminated */
    size_t len, cap;
    bool truncated, oom;
    char errbuf[CURL_ERROR_SIZE];
};

/* Parsing */

static void http_free(void *impl)
{
    struct http_probe *hp = impl;
    if (!hp)
        return;
    free(hp->url);
    json_decref(hp->headers);
    curl_slist_free_all(hp->header_list);
    free(hp->body);
    free(hp->status);
    free(hp->body_contains);
    probe_regex_free(hp->body_regex);
    free(hp->body_regex_src);
    free(hp->desc);
    free(hp);
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int parse_url(const json_t *obj, struct http_probe *hp, struct chaos_err *err)
{
    const char *url;
    int r = jv_string(obj, "probe.http", "url", true, &url, err);
    if (r < 0)
        return r;
    char q[64];
    probe_quote(url, q, sizeof q);
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return chaos_err_set(err, EINVAL, "probe.http.url: %s must start with http:// or https://",
                             q);
    if (strlen(url) > HTTP_URL_MAX)
        return chaos_err_set(err, EINVAL, "probe.http.url: longer than %d characters",
                             HTTP_URL_MAX);
    CURLU *u = curl_url();
    if (!u)
        return chaos_err_set(err, ENOMEM, "probe.http.url: out of memory");
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    char *host = NULL;
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    bool empty_host = uc == CURLUE_OK && (!host || !*host);
    curl_free(host);
    curl_url_cleanup(u);
    if (uc != CURLUE_OK)
        return chaos_err_set(err, EINVAL, "probe.http.url: %s is not a valid URL: %s", q,
                             curl_url_strerror(uc));
    if (empty_host)
        return chaos_err_set(err, EINVAL, "probe.http.url: %s has no host", q);
    hp->url = strdup(url);
    return hp->url ? 0 : chaos_err_set(err, ENOMEM, "probe.http.url: out of memory");
}

static int parse_method(const json_t *obj, struct http_probe *hp, struct chaos_err *err)
{
    const char *m = "GET";
    int r = jv_string(obj, "probe.http", "method", false, &m, err);
    if (r < 0)
        return r;
    for (size_t i = 0; http_methods[i]; i++) {
        if (strcmp(m, http_methods[i]) == 0) {
            hp->method = http_methods[i];
            return 0;
        }
    }
    char q[64];
    probe_quote(m, q, sizeof q);
    return chaos_err_set(
        err, EINVAL, "probe.http.method: %s is not one of GET, HEAD, POST, PUT, PATCH, DELETE", q);
}

static int parse_headers(const json_t *obj, struct http_probe *hp, bool *has_expect,
                         struct chaos_err *err)
{
    json_t *h = json_object_get(obj, "headers");
    if (!h) {
        hp->headers = json_object();
        return hp->headers ? 0 : chaos_err_set(err, ENOMEM, "probe.http.headers: out of memory");
    }
    if (!json_is_object(h))
        return chaos_err_set(err, EINVAL,
                             "probe.http.headers: must be an object of strings, not %s",
                             jv_type_name(h));
    if (json_object_size(h) > HTTP_HEADERS_MAX)
        return chaos_err_set(err, EINVAL, "probe.http.headers: more than %d headers",
                             HTTP_HEADERS_MAX);
    const char *name;
    json_t *val;
    json_object_foreach(h, name, val)
    {
        char q[64];
        probe_quote(name, q, sizeof q);
        if (!*name)
            return chaos_err_set(err, EINVAL, "probe.http.headers: a header name is empty");
        for (const char *c = name; *c; c++) {
            if (*c == '\r' || *c == '\n')
                return chaos_err_set(err, EINVAL,
                                     "probe.http.headers: header name %s contains CR or LF", q);
            if (!is_tchar((unsigned char)*c))
                return chaos_err_set(
                    err, EINVAL,
                    "probe.http.headers: header name %s contains '%c', not allowed "
                    "in a header name",
                    q, (unsigned char)*c < 0x20 ? '?' : *c);
        }
        if (!json_is_string(val))
            return chaos_err_set(err, EINVAL, "probe.http.headers.%s: must be a string, not %s",
                                 name, jv_type_name(val));
        const char *v = json_string_value(val);
        if (strpbrk(v, "\r\n") || strlen(v) != json_string_length(val))
            return chaos_err_set(err, EINVAL,
                                 "probe.http.headers.%s: the value contains CR, LF or NUL", name);
        if (strlen(v) > HTTP_HEADER_MAX)
            return chaos_err_set(err, EINVAL, "probe.http.headers.%s: longer than %d characters",
                                 name, HTTP_HEADER_MAX);
        if (strcasecmp(name, "Expect") == 0)
            *has_expect = true;
        /* curl drops "Name:" with nothing after it; "Name;" sends it empty. */
        size_t n = strlen(name) + strlen(v) + 3;
        _cleanup_free_ char *line = malloc(n);
        if (!line)
            return chaos_err_set(err, ENOMEM, "probe.http.headers: out of memory");
        if (*v)
            snprintf(line, n, "%s: %s", name, v);
        else
            snprintf(line, n, "%s;", name);
        struct curl_slist *l = curl_slist_append(hp->header_list, line);
        if (!l)
            return chaos_err_set(err, ENOMEM, "probe.http.headers: out of memory");
        hp->header_list = l;
    }
    hp->headers = json_deep_copy(h);
    return hp->headers ? 0 : chaos_err_set(err, ENOMEM, "probe.http.headers: out of memory");
}

static int parse_body(const json_t *obj, struct http_probe *hp, bool has_expect,
                      struct chaos_err *err)
{
    json_t *b = json_object_get(obj, "body");
    if (!b)
        return 0;
    if (!json_is_string(b))
        return chaos_err_set(err, EINVAL, "probe.http.body: must be a string, not %s",
                             jv_type_name(b));
    if (strcmp(hp->method, "HEAD") == 0)
        return chaos_err_set(err, EINVAL, "probe.http.body: not allowed with method HEAD");
    size_t len = json_string_length(b);
    if (len > HTTP_REQ_BODY_MAX)
        return chaos_err_set(err, EINVAL, "probe.http.body: longer than %d bytes",
                             HTTP_REQ_BODY_MAX);
    hp->body = malloc(len + 1);
    if (!hp->body)
        return chaos_err_set(err, ENOMEM, "probe.http.body: out of memory");
    memcpy(hp->body, json_string_value(b), len + 1);
    hp->body_len = len;
    /* Without this curl waits up to a second for "100 Continue" on big bodies. */
    if (!has_expect) {
        struct curl_slist *l = curl_slist_append(hp->header_list, "Expect:");
        if (!l)
            return chaos_err_set(err, ENOMEM, "probe.http.body: out of memory");
        hp->header_list = l;
    }
    return 0;
}

static int parse_expect(const json_t *expect, struct http_probe *hp, struct chaos_err *err)
{
    int r = probe_parse_int_list(expect, "status", 100, 599, &hp->status, &hp->n_status, err);
    if (r < 0)
        return r;
    const char *s;
    r = expect ? jv_string(expect, "expect", "body_contains", false, &s, err) : 0;
    if (r < 0)
        return r;
    if (r > 0 && !(hp->body_contains = strdup(s)))
        return chaos_err_set(err, ENOMEM, "expect.body_contains: out of memory");
    r = probe_parse_regex(expect, "body_regex", &hp->body_regex, &s, err);
    if (r < 0)
        return r;
    if (r > 0 && !(hp->body_regex_src = strdup(s)))
        return chaos_err_set(err, ENOMEM, "expect.body_regex: out of memory");
    return 0;
}

static int http_parse(const json_t *obj, const json_t *expect, void **out, struct chaos_err *err)
{
    int r = jv_only_keys(obj, "probe.http", http_keys, err);
    if (r < 0)
        return r;
    struct http_probe *hp = calloc(1, sizeof *hp);
    if (!hp)
        return chaos_err_set(err, ENOMEM, "probe.http: out of memory");
    hp->timeout_ms = HTTP_TIMEOUT_DEFAULT_MS;
    hp->tls_verify = true;
    bool has_expect = false;
    if ((r = parse_url(obj, hp, err)) < 0 || (r = parse_method(obj, hp, err)) < 0 ||
        (r = parse_headers(obj, hp, &has_expect, err)) < 0 ||
        (r = parse_body(obj, hp, has_expect, err)) < 0)
        goto fail;
    if ((r = jv_duration(obj, "probe.http", "timeout", false, &hp->timeout_ms, err)) < 0)
        goto fail;
    if (hp->timeout_ms < 1 || hp->timeout_ms > HTTP_TIMEOUT_MAX_MS) {
        char d[32];
        duration_format(hp->timeout_ms, d, sizeof d);
        r = chaos_err_set(err, ERANGE, "probe.http.timeout: %s is out of range (1ms-5m)", d);
        goto fail;
    }
    if ((r = jv_bool(obj, "probe.http", "tls_verify", false, &hp->tls_verify, err)) < 0)
        goto fail;
    if ((r = parse_expect(expect, hp, err)) < 0)
        goto fail;
    if (strcmp(hp->method, "HEAD") == 0 && (hp->body_contains || hp->body_regex_src)) {
        /* A HEAD answer has no body: the check could never hold. */
        r = chaos_err_set(err, EINVAL,
                          "expect.%s: a HEAD request gets no body to check; use GET, or check "
                          "status only",
                          hp->body_contains ? "body_contains" : "body_regex");
        goto fail;
    }
    size_t n = strlen(hp->method) + strlen(hp->url) + 2;
    if (!(hp->desc = malloc(n))) {
        r = chaos_err_set(err, ENOMEM, "probe.http: out of memory");
        goto fail;
    }
    snprintf(hp->desc, n, "%s %s", hp->method, hp->url);
    *out = hp;
    return 0;
fail:
    http_free(hp);
    return r;
}

static const char *http_describe(const void *impl)
{
    const struct http_probe *hp = impl;
    return hp->desc;
}

static json_t *http_to_json(const void *impl)
{
    const struct http_probe *hp = impl;
    char d[32];
    duration_format(hp->timeout_ms, d, sizeof d);
    json_t *o = json_pack("{s:s, s:s, s:O, s:s, s:b}", "url", hp->url, "method", hp->method,
                          "headers", hp->headers, "timeout", d, "tls_verify", hp->tls_verify);
    if (o && hp->body && json_object_set_new(o, "body", json_stringn(hp->body, hp->body_len)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The runner: curl sockets and the curl timer on the loop */

static bool deliver_results(struct http_runner *hr);
static void drive(struct http_runner *hr, curl_socket_t fd, int mask);

static void on_socket_event(struct loop *loop, int fd, uint32_t events, void *arg)
{
    struct http_runner *hr = arg;
    int mask = 0;
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    /* On an error or hangup let curl look at the socket itself: it then
     * reports the real cause (e.g. connection refused). */
    if (!mask && (events & (EPOLLERR | EPOLLHUP)))
        mask = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    drive(hr, fd, mask);
}

static void on_curl_timeout(struct loop *loop, void *arg)
{
    struct http_runner *hr = arg;
    hr->timer = 0;
    drive(hr, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called in timeout_ms (-1: never). */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_runner *hr = userp;
    if (hr->timer) {
        loop_cancel_timer(hr->loop, hr->timer);
        hr->timer = 0;
    }
    if (timeout_ms < 0)
        return 0;
    hr->timer = loop_add_timer(hr->loop, loop_now_ms() + timeout_ms, on_curl_timeout, hr);
    return hr->timer ? 0 : -1;
}

static ssize_t fd_index(const struct http_runner *hr, int fd)
{
    for (size_t i = 0; i < hr->n_fds; i++)
        if (hr->fds[i] == fd)
            return (ssize_t)i;
    return -1;
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl asks (or stop watching it). */
static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct http_runner *hr = userp;
    ssize_t i = fd_index(hr, s);
    if (what == CURL_POLL_REMOVE) {
        if (i >= 0) {
            loop_del_fd(hr->loop, s);
            hr->fds[i] = hr->fds[--hr->n_fds];
        }
        return 0;
    }
    uint32_t ev = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (i >= 0) {
        int r = loop_mod_fd(hr->loop, s, ev);
        if (r != -ENOENT)
            return r < 0 ? -1 : 0;
        /* The number was closed and reused behind our back: watch it anew. */
        hr->fds[i] = hr->fds[--hr->n_fds];
    }
    if (hr->n_fds == hr->cap_fds) {
        size_t cap = hr->cap_fds ? hr->cap_fds * 2 : 16;
        int *fds = realloc(hr->fds, cap * sizeof *fds);
        if (!fds)
            return -1;
        hr->fds = fds;
        hr->cap_fds = cap;
    }
    int r = loop_add_fd(hr->loop, s, ev, on_socket_event, hr);
    if (r == -EEXIST) {
        /* A stale watch left on a number that was closed and reused. */
        loop_del_fd(hr->loop, s);
        r = loop_add_fd(hr->loop, s, ev, on_socket_event, hr);
    }
    if (r < 0)
        return -1;
    hr->fds[hr->n_fds++] = s;
    return 0;
}

static int http_runner_new(struct loop *loop, void **out, struct chaos_err *err)
{
    CURLcode gc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (gc != CURLE_OK)
        return chaos_err_set(err, EIO, "http probe: curl_global_init: %s", curl_easy_strerror(gc));
    struct http_runner *hr = calloc(1, sizeof *hr);
    if (!hr || !(hr->multi = curl_multi_init())) {
        free(hr);
        curl_global_cleanup();
        return chaos_err_set(err, ENOMEM, "http probe: cannot create a curl multi handle");
    }
    hr->loop = loop;
    curl_multi_setopt(hr->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(hr->multi, CURLMOPT_SOCKETDATA, hr);
    curl_multi_setopt(hr->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(hr->multi, CURLMOPT_TIMERDATA, hr);
    *out = hr;
    return 0;
}

/* Detaches s from curl and the runner and frees it. */
static void sample_destroy(struct http_sample *s)
{
    struct http_runner *hr = s->hr;
    if (s->easy) {
        curl_multi_remove_handle(hr->multi, s->easy);
        curl_easy_cleanup(s->easy);
    }
    if (s->prev)
        s->prev->next = s->next;
    else if (hr->samples == s)
        hr->samples = s->next;
    if (s->next)
        s->next->prev = s->prev;
    probe_free(s->ref);
    free(s->buf);
    free(s);
}

static void http_runner_free(void *state)
{
    struct http_runner *hr = state;
    if (!hr)
        return;
    if (hr->alive)
        *hr->alive = false;
    while (hr->samples)
        sample_destroy(hr->samples);
    curl_multi_cleanup(hr->multi);
    /* curl normally asks to unwatch every socket itself; drop any it left. */
    for (size_t i = 0; i < hr->n_fds; i++)
        loop_del_fd(hr->loop, hr->fds[i]);
    if (hr->timer)
        loop_cancel_timer(hr->loop, hr->timer);
    free(hr->fds);
    free(hr);
    curl_global_cleanup();
}

/* One sample */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_sample *s = userp;
    size_t n = size * nmemb;
    size_t room = HTTP_BODY_CAP - s->len;
    size_t keep = n < room ? n : room;
    if (keep < n)
        s->truncated = true;
    if (keep) {
        if (s->len + keep + 1 > s->cap) {
            size_t cap = s->cap ? s->cap : 4096;
            while (cap < s->len + keep + 1)
                cap *= 2;
            if (cap > HTTP_BODY_CAP + 1)
                cap = HTTP_BODY_CAP + 1;
            char *b = realloc(s->buf, cap);
            if (!b) {
                s->oom = true;
                return 0; /* fails the transfer with CURLE_WRITE_ERROR */
            }
            s->buf = b;
            s->cap = cap;
        }
        memcpy(s->buf + s->len, data, keep);
        s->len += keep;
        s->buf[s->len] = '\0';
    }
    return n; /* past the cap the rest is read and dropped */
}

static void describe_failure(struct http_sample *s, CURLcode rc, struct sample *out)
{
    const char *detail = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
    long os_errno = 0;
    char d[32];
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        duration_format(s->hp->timeout_ms, d, sizeof d);
        snprintf(out->error, sizeof out->error, "timed out after %s", d);
        break;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(s->easy, CURLINFO_OS_ERRNO, &os_errno);
        snprintf(out->error, sizeof out->error, "connect: %s",
                 os_errno ? strerror((int)os_errno) : curl_easy_strerror(rc));
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(out->error, sizeof out->error, "resolve: %s", detail);
        break;
    case CURLE_WRITE_ERROR:
        snprintf(out->error, sizeof out->error, "%s",
                 s->oom ? "out of memory while reading the body" : detail);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(out->error, sizeof out->error, "tls: %s", detail);
        break;
    default:
        snprintf(out->error, sizeof out->error, "%s", detail);
        break;
    }
}

/* Checks the per-sample conditions on a completed response. */
static void judge(const struct http_sample *s, struct sample *out)
{
    const struct http_probe *hp = s->hp;
    const char *body = s->buf ? s->buf : "";
    const char *part = s->truncated ? " (first 1 MiB)" : "";
    char q[64];
    bool status_ok = false;
    if (!hp->status)
        status_ok = out->status >= 200 && out->status <= 299;
    for (size_t i = 0; i < hp->n_status; i++)
        if (hp->status[i] == out->status)
            status_ok = true;
    if (!status_ok) {
        char list[96];
        if (hp->status)
            probe_format_int_list(hp->status, hp->n_status, list, sizeof list);
        snprintf(out->error, sizeof out->error, "status %d not in %s", out->status,
                 hp->status ? list : "2xx");
        return;
    }
    if (hp->body_contains && !memmem(body, s->len, hp->body_contains, strlen(hp->body_contains))) {
        probe_quote(hp->body_contains, q, sizeof q);
        snprintf(out->error, sizeof out->error, "body%s does not contain %s", part, q);
        return;
    }
    if (hp->body_regex && !probe_regex_match(hp->body_regex, body, s->len)) {
        probe_quote(hp->body_regex_src, q, sizeof q);
        snprintf(out->error, sizeof out->error, "body%s does not match regex %s", part, q);
        return;
    }
    out->ok = true;
}

/* Builds the result of a finished transfer, frees the sample, calls done. */
static void finish(struct http_sample *s, CURLcode rc)
{
    struct sample out = {.t_ms = s->t_ms, .latency_us = loop_now_us() - s->t0_us, .status = -1};
    long code = 0;
    if (curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code > 0)
        out.status = (int)code;
    if (rc != CURLE_OK)
        describe_failure(s, rc, &out);
    else if (out.status < 0)
        snprintf(out.error, sizeof out.error, "no HTTP status in the response");
    else
        judge(s, &out);
    probe_done_cb done = s->done;
    void *arg = s->arg;
    sample_destroy(s);
    done(&out, arg);
}

/* Every sample still in flight fails with why (curl could not be driven:
 * our timer or socket callback failed), so none waits for an event that
 * will never come. */
static void fail_in_flight(struct http_runner *hr, CURLMcode mc)
{
    bool alive = true;
    hr->alive = &alive;
    while (hr->samples) {
        struct http_sample *s = hr->samples;
        struct sample out = {.t_ms = s->t_ms, .latency_us = loop_now_us() - s->t0_us, .status = -1};
        snprintf(out.error, sizeof out.error,
                 "http probe: the event loop cannot drive the request: %s",
                 curl_multi_strerror(mc));
        probe_done_cb done = s->done;
        void *arg = s->arg;
        sample_destroy(s);
        done(&out, arg);
        if (!alive)
            return;
    }
    hr->alive = NULL;
}

/* Lets curl act on fd (or its timeout), then hands out what finished. */
static void drive(struct http_runner *hr, curl_socket_t fd, int mask)
{
    int running;
    CURLMcode mc = curl_multi_socket_action(hr->multi, fd, mask, &running);
    if (deliver_results(hr) && mc != CURLM_OK)
        fail_in_flight(hr, mc);
}

/* Returns false when a done callback freed the runner. */
static bool deliver_results(struct http_runner *hr)
{
    /* A done callback may free the runner; stop touching it then. */
    bool alive = true;
    hr->alive = &alive;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(hr->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result;
        struct http_sample *s = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        if (!s)
            continue;
        finish(s, rc);
        if (!alive)
            return false;
    }
    hr->alive = NULL;
    return true;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        CURLcode c_ = curl_easy_setopt(s->easy, opt, val);                                         \
        if (c_ != CURLE_OK) {                                                                      \
            r = chaos_err_set(err, EINVAL, "http probe: cannot set %s: %s", #opt,                  \
                              curl_easy_strerror(c_));                                             \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static int http_start(void *state, const struct probe *p, const void *impl, probe_done_cb done,
                      void *arg, struct chaos_err *err)
{
    struct http_runner *hr = state;
    const struct http_probe *hp = impl;
    int r;
    struct http_sample *s = calloc(1, sizeof *s);
    if (!s)
        return chaos_err_set(err, ENOMEM, "http probe: out of memory");
    *s = (struct http_sample){.hr = hr, .hp = hp, .done = done, .arg = arg};
    if (!(s->easy = curl_easy_init())) {
        free(s);
        return chaos_err_set(err, ENOMEM, "http probe: cannot create a curl handle");
    }
    SETOPT(CURLOPT_URL, hp->url);
    SETOPT(CURLOPT_PRIVATE, (char *)s);
    SETOPT(CURLOPT_ERRORBUFFER, s->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    /* Reach exactly the URL given: no proxy from the environment, no redirect. */
    SETOPT(CURLOPT_NOPROXY, "*");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    /* Every sample opens its own connection, so it sees what a new client
     * sees (a listener gone, a refused connect) rather than a pooled socket. */
    SETOPT(CURLOPT_FRESH_CONNECT, 1L);
    SETOPT(CURLOPT_FORBID_REUSE, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)hp->timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)hp->timeout_ms);
    SETOPT(CURLOPT_SSL_VERIFYPEER, hp->tls_verify ? 1L : 0L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, hp->tls_verify ? 2L : 0L);
    SETOPT(CURLOPT_USERAGENT, "chaos-probe/1");
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, s);
    if (hp->header_list)
        SETOPT(CURLOPT_HTTPHEADER, hp->header_list);
    if (strcmp(hp->method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (strcmp(hp->method, "GET") == 0 && !hp->body) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(hp->method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, hp->method);
        if (hp->body || strcmp(hp->method, "POST") == 0) {
            SETOPT(CURLOPT_POSTFIELDSIZE, (long)hp->body_len);
            SETOPT(CURLOPT_POSTFIELDS, hp->body ? hp->body : "");
        }
    }
    s->t_ms = loop_now_ms();
    s->t0_us = loop_now_us();
    s->ref = probe_ref(p);
    s->next = hr->samples;
    if (hr->samples)
        hr->samples->prev = s;
    hr->samples = s;
    CURLMcode mc = curl_multi_add_handle(hr->multi, s->easy);
    if (mc != CURLM_OK) {
        r = chaos_err_set(err, EIO, "http probe: cannot start the request: %s",
                          curl_multi_strerror(mc));
        sample_destroy(s);
        return r;
    }
    return 0;
fail:
    curl_easy_cleanup(s->easy);
    free(s);
    return r;
}

const struct probe_ops probe_http_ops = {
    .name = "http",
    .expect_keys = http_expect_keys,
    .max_in_flight = 8,
    .parse = http_parse,
    .describe = http_describe,
    .to_json = http_to_json,
    .free = http_free,
    .runner_new = http_runner_new,
    .runner_free = http_runner_free,
    .start = http_start,
};
