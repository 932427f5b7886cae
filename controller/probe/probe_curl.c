/* One curl multi handle on the run's loop for the Prometheus and
 * Alertmanager probes, and the connection options they share. The loop
 * plumbing follows probe_http.c (sockets and curl's timer on struct loop). */
#include "probe_curl.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "duration.h"
#include "jsonv.h"
#include "probe_impl.h"
#include "util.h"

#define PCURL_BODY_CAP (4 * 1024 * 1024)
#define PCONN_URL_MAX 4096
#define PCONN_SECRET_MAX 4096
#define PCONN_TIMEOUT_DEFAULT_MS 2000
#define PCONN_TIMEOUT_MAX_MS (5 * 60 * 1000)

/* Connection options */

void pconn_clear(struct pconn *c)
{
    free(c->url);
    free(c->user);
    if (c->password)
        explicit_bzero(c->password, strlen(c->password));
    free(c->password);
    free(c->password_src);
    if (c->bearer)
        explicit_bzero(c->bearer, strlen(c->bearer));
    free(c->bearer);
    free(c->bearer_src);
    free(c->ca_file);
    memset(c, 0, sizeof *c);
}

/* Reads a secret from the environment variable or the file named by the
 * string at obj.key; trailing newlines are dropped (a token file written by
 * `echo`). Returns 1 when present, 0 when absent, negative on error. */
static int read_secret(const json_t *obj, const char *ctx, const char *key, bool from_file,
                       char **out, char **src, struct chaos_err *err)
{
    const char *name;
    int r = jv_string(obj, ctx, key, false, &name, err);
    if (r <= 0)
        return r;
    char buf[PCONN_SECRET_MAX + 2];
    size_t len = 0;
    if (!*name)
        return chaos_err_set(err, EINVAL, "%s.%s: must not be empty", ctx, key);
    if (from_file) {
        int fd = open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return chaos_err_set(err, errno, "%s.%s: cannot open %s: %s", ctx, key, name,
                                 strerror(errno));
        ssize_t n;
        while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int e = errno;
                close(fd);
                return chaos_err_set(err, e, "%s.%s: cannot read %s: %s", ctx, key, name,
                                     strerror(e));
            }
            len += (size_t)n;
        }
        close(fd);
    } else {
        const char *v = getenv(name);
        if (!v)
            return chaos_err_set(err, ENOENT, "%s.%s: environment variable %s is not set", ctx, key,
                                 name);
        len = strlen(v);
        if (len > PCONN_SECRET_MAX)
            len = PCONN_SECRET_MAX + 1;
        memcpy(buf, v, len < sizeof buf ? len : sizeof buf - 1);
    }
    if (len > PCONN_SECRET_MAX)
        return chaos_err_set(err, EINVAL, "%s.%s: the secret is longer than %d bytes", ctx, key,
                             PCONN_SECRET_MAX);
    buf[len] = '\0';
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (!len || strlen(buf) != len || strpbrk(buf, "\r\n"))
        return chaos_err_set(err, EINVAL,
                             "%s.%s: the secret in %s is empty or holds a NUL, CR or LF", ctx, key,
                             name);
    *out = strdup(buf);
    explicit_bzero(buf, sizeof buf);
    size_t n = strlen(name) + 6;
    *src = malloc(n);
    if (*src)
        snprintf(*src, n, "%s %s", from_file ? "file" : "env", name);
    if (!*out || !*src)
        return chaos_err_set(err, ENOMEM, "%s.%s: out of memory", ctx, key);
    return 1;
}

static int parse_basic_auth(const json_t *obj, const char *ctx, struct pconn *c,
                            struct chaos_err *err)
{
    json_t *b = json_object_get(obj, "basic_auth");
    if (!b)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s.basic_auth", ctx);
    static const char *const keys[] = {"username", "password_env", "password_file", NULL};
    int r;
    if ((r = jv_expect_object(b, path, err)) < 0 || (r = jv_only_keys(b, path, keys, err)) < 0)
        return r;
    const char *user;
    if ((r = jv_string(b, path, "username", true, &user, err)) < 0)
        return r;
    if (!*user || strchr(user, ':'))
        return chaos_err_set(err, EINVAL, "%s.username: must be non-empty and hold no ':'", path);
    bool env = json_object_get(b, "password_env"), file = json_object_get(b, "password_file");
    if (env == file)
        return chaos_err_set(err, EINVAL,
                             "%s: give exactly one of password_env, password_file (a password is "
                             "never written into the scenario)",
                             path);
    if (!(c->user = strdup(user)))
        return chaos_err_set(err, ENOMEM, "%s: out of memory", path);
    r = read_secret(b, path, env ? "password_env" : "password_file", file, &c->password,
                    &c->password_src, err);
    return r < 0 ? r : 0;
}

static int parse_tls(const json_t *obj, const char *ctx, struct pconn *c, struct chaos_err *err)
{
    json_t *t = json_object_get(obj, "tls");
    if (!t)
        return 0;
    char path[96];
    snprintf(path, sizeof path, "%s.tls", ctx);
    static const char *const keys[] = {"ca_file", "insecure_skip_verify", NULL};
    int r;
    if ((r = jv_expect_object(t, path, err)) < 0 || (r = jv_only_keys(t, path, keys, err)) < 0)
        return r;
    const char *ca;
    if ((r = jv_string(t, path, "ca_file", false, &ca, err)) < 0)
        return r;
    if (r > 0) {
        if (access(ca, R_OK) != 0)
            return chaos_err_set(err, errno, "%s.ca_file: cannot read %s: %s", path, ca,
                                 strerror(errno));
        if (!(c->ca_file = strdup(ca)))
            return chaos_err_set(err, ENOMEM, "%s: out of memory", path);
    }
    if ((r = jv_bool(t, path, "insecure_skip_verify", false, &c->insecure, err)) < 0)
        return r;
    if (c->insecure && c->ca_file)
        return chaos_err_set(err, EINVAL,
                             "%s.insecure_skip_verify: cannot be combined with ca_file: either "
                             "verify against the CA or not at all",
                             path);
    if ((c->insecure || c->ca_file) && strncasecmp(c->url, "https://", 8) != 0)
        return chaos_err_set(err, EINVAL, "%s: the url is not https://", path);
    return 0;
}

int pconn_parse(const json_t *obj, const char *ctx, struct pconn *c, struct chaos_err *err)
{
    const char *url;
    int r = jv_string(obj, ctx, "url", true, &url, err);
    if (r < 0)
        return r;
    char q[64];
    probe_quote(url, q, sizeof q);
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return chaos_err_set(err, EINVAL, "%s.url: %s must start with http:// or https://", ctx, q);
    size_t len = strlen(url);
    if (len > PCONN_URL_MAX)
        return chaos_err_set(err, EINVAL, "%s.url: longer than %d characters", ctx, PCONN_URL_MAX);
    if (strpbrk(url, "?#"))
        return chaos_err_set(err, EINVAL,
                             "%s.url: %s must be the base URL (no query or fragment): the probe "
                             "adds the API path",
                             ctx, q);
    CURLU *u = curl_url();
    if (!u)
        return chaos_err_set(err, ENOMEM, "%s.url: out of memory", ctx);
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    char *host = NULL;
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    bool empty_host = uc == CURLUE_OK && (!host || !*host);
    curl_free(host);
    curl_url_cleanup(u);
    if (uc != CURLUE_OK)
        return chaos_err_set(err, EINVAL, "%s.url: %s is not a valid URL: %s", ctx, q,
                             curl_url_strerror(uc));
    if (empty_host)
        return chaos_err_set(err, EINVAL, "%s.url: %s has no host", ctx, q);
    while (len && url[len - 1] == '/')
        len--;
    if (!(c->url = strndup(url, len)))
        return chaos_err_set(err, ENOMEM, "%s.url: out of memory", ctx);
    c->timeout_ms = PCONN_TIMEOUT_DEFAULT_MS;
    if ((r = jv_duration(obj, ctx, "timeout", false, &c->timeout_ms, err)) < 0)
        return r;
    if (c->timeout_ms < 1 || c->timeout_ms > PCONN_TIMEOUT_MAX_MS) {
        char d[32];
        duration_format(c->timeout_ms, d, sizeof d);
        return chaos_err_set(err, ERANGE, "%s.timeout: %s is out of range (1ms-5m)", ctx, d);
    }
    if ((r = parse_basic_auth(obj, ctx, c, err)) < 0)
        return r;
    char path[96];
    snprintf(path, sizeof path, "%s", ctx);
    bool tenv = json_object_get(obj, "bearer_token_env"),
         tfile = json_object_get(obj, "bearer_token_file");
    if (tenv && tfile)
        return chaos_err_set(err, EINVAL,
                             "%s.bearer_token_file: give one of bearer_token_env, "
                             "bearer_token_file, not both",
                             ctx);
    if (tenv || tfile) {
        if (c->user)
            return chaos_err_set(err, EINVAL,
                                 "%s.%s: cannot be combined with basic_auth: a request carries "
                                 "one Authorization header",
                                 ctx, tenv ? "bearer_token_env" : "bearer_token_file");
        r = read_secret(obj, path, tenv ? "bearer_token_env" : "bearer_token_file", tfile,
                        &c->bearer, &c->bearer_src, err);
        if (r < 0)
            return r;
    }
    return parse_tls(obj, ctx, c, err);
}

int pconn_to_json(const struct pconn *c, json_t *o)
{
    char d[32];
    duration_format(c->timeout_ms, d, sizeof d);
    if (json_object_set_new(o, "url", json_string(c->url)) < 0 ||
        json_object_set_new(o, "timeout", json_string(d)) < 0)
        return -ENOMEM;
    if (c->user && json_object_set_new(o, "basic_auth",
                                       json_pack("{s:s, s:s}", "username", c->user, "password",
                                                 c->password_src)) < 0)
        return -ENOMEM;
    if (c->bearer && json_object_set_new(o, "bearer_token", json_string(c->bearer_src)) < 0)
        return -ENOMEM;
    if ((c->ca_file || c->insecure) &&
        json_object_set_new(o, "tls",
                            json_pack("{s:s?, s:b}", "ca_file", c->ca_file, "insecure_skip_verify",
                                      c->insecure)) < 0)
        return -ENOMEM;
    return 0;
}

/* The multi handle on the loop */

struct preq;

struct pcurl {
    struct loop *loop;
    CURLM *multi;
    uint64_t timer;
    int *fds;
    size_t n_fds, cap_fds;
    struct preq *reqs;
    bool *alive; /* set while delivering; cleared if pcurl_free runs then */
};

struct preq {
    struct preq *prev, *next;
    struct pcurl *pc;
    CURL *easy;
    struct curl_slist *headers;
    char *body_out;
    pcurl_done_cb done;
    pcurl_cancel_cb cancel;
    void *arg;
    int64_t t0_us, timeout_ms;
    char *buf;
    size_t len, cap;
    bool truncated, oom;
    char errbuf[CURL_ERROR_SIZE];
};

static void drive(struct pcurl *pc, curl_socket_t fd, int mask);

static void on_socket_event(struct loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    int mask = 0;
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (!mask && (events & (EPOLLERR | EPOLLHUP)))
        mask = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    drive(arg, fd, mask);
}

static void on_curl_timeout(struct loop *loop, void *arg)
{
    (void)loop;
    struct pcurl *pc = arg;
    pc->timer = 0;
    drive(pc, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct pcurl *pc = userp;
    if (pc->timer) {
        loop_cancel_timer(pc->loop, pc->timer);
        pc->timer = 0;
    }
    if (timeout_ms < 0)
        return 0;
    pc->timer = loop_add_timer(pc->loop, loop_now_ms() + timeout_ms, on_curl_timeout, pc);
    return pc->timer ? 0 : -1;
}

static ssize_t fd_index(const struct pcurl *pc, int fd)
{
    for (size_t i = 0; i < pc->n_fds; i++)
        if (pc->fds[i] == fd)
            return (ssize_t)i;
    return -1;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct pcurl *pc = userp;
    ssize_t i = fd_index(pc, s);
    if (what == CURL_POLL_REMOVE) {
        if (i >= 0) {
            loop_del_fd(pc->loop, s);
            pc->fds[i] = pc->fds[--pc->n_fds];
        }
        return 0;
    }
    uint32_t ev = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    if (i >= 0) {
        int r = loop_mod_fd(pc->loop, s, ev);
        if (r != -ENOENT)
            return r < 0 ? -1 : 0;
        pc->fds[i] = pc->fds[--pc->n_fds]; /* number closed and reused behind our back */
    }
    if (pc->n_fds == pc->cap_fds) {
        size_t cap = pc->cap_fds ? pc->cap_fds * 2 : 16;
        int *fds = realloc(pc->fds, cap * sizeof *fds);
        if (!fds)
            return -1;
        pc->fds = fds;
        pc->cap_fds = cap;
    }
    int r = loop_add_fd(pc->loop, s, ev, on_socket_event, pc);
    if (r == -EEXIST) {
        loop_del_fd(pc->loop, s);
        r = loop_add_fd(pc->loop, s, ev, on_socket_event, pc);
    }
    if (r < 0)
        return -1;
    pc->fds[pc->n_fds++] = s;
    return 0;
}

int pcurl_new(struct loop *loop, struct pcurl **out, struct chaos_err *err)
{
    CURLcode gc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (gc != CURLE_OK)
        return chaos_err_set(err, EIO, "curl_global_init: %s", curl_easy_strerror(gc));
    struct pcurl *pc = calloc(1, sizeof *pc);
    if (!pc || !(pc->multi = curl_multi_init())) {
        free(pc);
        curl_global_cleanup();
        return chaos_err_set(err, ENOMEM, "cannot create a curl multi handle");
    }
    pc->loop = loop;
    curl_multi_setopt(pc->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(pc->multi, CURLMOPT_SOCKETDATA, pc);
    curl_multi_setopt(pc->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(pc->multi, CURLMOPT_TIMERDATA, pc);
    *out = pc;
    return 0;
}

static void req_destroy(struct preq *q)
{
    struct pcurl *pc = q->pc;
    if (q->easy) {
        curl_multi_remove_handle(pc->multi, q->easy);
        curl_easy_cleanup(q->easy);
    }
    if (q->prev)
        q->prev->next = q->next;
    else if (pc->reqs == q)
        pc->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    curl_slist_free_all(q->headers);
    free(q->body_out);
    free(q->buf);
    free(q);
}

void pcurl_free(struct pcurl *pc)
{
    if (!pc)
        return;
    if (pc->alive)
        *pc->alive = false;
    while (pc->reqs) {
        pcurl_cancel_cb cancel = pc->reqs->cancel;
        void *arg = pc->reqs->arg;
        req_destroy(pc->reqs);
        if (cancel)
            cancel(arg);
    }
    curl_multi_cleanup(pc->multi);
    for (size_t i = 0; i < pc->n_fds; i++)
        loop_del_fd(pc->loop, pc->fds[i]);
    if (pc->timer)
        loop_cancel_timer(pc->loop, pc->timer);
    free(pc->fds);
    free(pc);
    curl_global_cleanup();
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct preq *q = userp;
    size_t n = size * nmemb, room = PCURL_BODY_CAP - q->len, keep = n < room ? n : room;
    if (keep < n)
        q->truncated = true;
    if (keep) {
        if (q->len + keep + 1 > q->cap) {
            size_t cap = q->cap ? q->cap : 8192;
            while (cap < q->len + keep + 1)
                cap *= 2;
            char *b = realloc(q->buf, cap);
            if (!b) {
                q->oom = true;
                return 0;
            }
            q->buf = b;
            q->cap = cap;
        }
        memcpy(q->buf + q->len, data, keep);
        q->len += keep;
        q->buf[q->len] = '\0';
    }
    return n;
}

static void finish(struct preq *q, CURLcode rc)
{
    char why[256];
    struct pcurl_reply rep = {.status = -1,
                              .body = q->buf ? q->buf : "",
                              .len = q->len,
                              .truncated = q->truncated,
                              .latency_us = loop_now_us() - q->t0_us};
    long code = 0;
    if (curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code > 0)
        rep.status = (int)code;
    const char *detail = q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc);
    long os_errno = 0;
    char d[32];
    if (rc == CURLE_OK && rep.status < 0) {
        snprintf(why, sizeof why, "no HTTP status in the response");
        rep.error = why;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        duration_format(q->timeout_ms, d, sizeof d);
        snprintf(why, sizeof why, "timed out after %s", d);
        rep.error = why;
    } else if (rc == CURLE_COULDNT_CONNECT) {
        curl_easy_getinfo(q->easy, CURLINFO_OS_ERRNO, &os_errno);
        snprintf(why, sizeof why, "connect: %s",
                 os_errno ? strerror((int)os_errno) : curl_easy_strerror(rc));
        rep.error = why;
    } else if (rc == CURLE_WRITE_ERROR && q->oom) {
        rep.error = "out of memory while reading the body";
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
               rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM) {
        snprintf(why, sizeof why, "tls: %s", detail);
        rep.error = why;
    } else if (rc != CURLE_OK) {
        snprintf(why, sizeof why, "%s", detail);
        rep.error = why;
    }
    pcurl_done_cb done = q->done;
    void *arg = q->arg;
    /* The reply points into q's buffer: take it before q goes. */
    char *buf = q->buf;
    q->buf = NULL;
    rep.body = buf ? buf : "";
    req_destroy(q);
    done(&rep, arg);
    free(buf);
}

static void fail_in_flight(struct pcurl *pc, CURLMcode mc)
{
    bool alive = true;
    pc->alive = &alive;
    while (pc->reqs) {
        struct preq *q = pc->reqs;
        char why[160];
        snprintf(why, sizeof why, "the event loop cannot drive the request: %s",
                 curl_multi_strerror(mc));
        struct pcurl_reply rep = {
            .status = -1, .body = "", .error = why, .latency_us = loop_now_us() - q->t0_us};
        pcurl_done_cb done = q->done;
        void *arg = q->arg;
        req_destroy(q);
        done(&rep, arg);
        if (!alive)
            return;
    }
    pc->alive = NULL;
}

static bool deliver(struct pcurl *pc)
{
    bool alive = true;
    pc->alive = &alive;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(pc->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result;
        struct preq *q = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
        if (!q)
            continue;
        finish(q, rc);
        if (!alive)
            return false;
    }
    pc->alive = NULL;
    return true;
}

static void drive(struct pcurl *pc, curl_socket_t fd, int mask)
{
    int running;
    CURLMcode mc = curl_multi_socket_action(pc->multi, fd, mask, &running);
    if (deliver(pc) && mc != CURLM_OK)
        fail_in_flight(pc, mc);
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        CURLcode c_ = curl_easy_setopt(q->easy, opt, val);                                         \
        if (c_ != CURLE_OK) {                                                                      \
            r = chaos_err_set(err, EINVAL, "cannot set %s: %s", #opt, curl_easy_strerror(c_));     \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* The connection's own options: its timeout, TLS verification, basic or
 * bearer auth. 0, or -errno with err set. */
static int set_conn_opts(struct preq *q, const struct pconn *c, struct chaos_err *err)
{
    int r;
    SETOPT(CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    SETOPT(CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
    if (c->ca_file)
        SETOPT(CURLOPT_CAINFO, c->ca_file);
    if (c->user) {
        SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(CURLOPT_USERNAME, c->user);
        SETOPT(CURLOPT_PASSWORD, c->password);
    }
    if (c->bearer) {
#ifdef CURLAUTH_BEARER
        SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        SETOPT(CURLOPT_XOAUTH2_BEARER, c->bearer);
#else
#error "libcurl without CURLAUTH_BEARER"
#endif
    }
    return 0;
fail:
    return r;
}

int pcurl_request(struct pcurl *pc, const struct pconn *c, const char *method, const char *path,
                  const char *body, pcurl_done_cb done, pcurl_cancel_cb cancel, void *arg,
                  struct chaos_err *err)
{
    int r;
    struct preq *q = calloc(1, sizeof *q);
    if (!q)
        return chaos_err_set(err, ENOMEM, "out of memory");
    q->pc = pc;
    q->done = done;
    q->cancel = cancel;
    q->arg = arg;
    q->timeout_ms = c->timeout_ms;
    size_t ulen = strlen(c->url) + strlen(path) + 1;
    _cleanup_free_ char *url = malloc(ulen);
    if (!url || !(q->easy = curl_easy_init())) {
        free(q);
        return chaos_err_set(err, ENOMEM, "out of memory");
    }
    snprintf(url, ulen, "%s%s", c->url, path);
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_PRIVATE, (char *)q);
    SETOPT(CURLOPT_ERRORBUFFER, q->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    /* Exactly the URL given: no proxy from the environment, no redirect
     * (a redirect would carry the credentials elsewhere). */
    SETOPT(CURLOPT_NOPROXY, "*");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    if ((r = set_conn_opts(q, c, err)) < 0)
        goto fail;
    SETOPT(CURLOPT_USERAGENT, "chaos-probe/1");
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, q);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (h && body)
        h = curl_slist_append(h, "Content-Type: application/json") ? h : NULL;
    if (h && body)
        h = curl_slist_append(h, "Expect:") ? h : NULL;
    if (!h) {
        r = chaos_err_set(err, ENOMEM, "out of memory");
        goto fail;
    }
    q->headers = h;
    SETOPT(CURLOPT_HTTPHEADER, q->headers);
    if (body) {
        if (!(q->body_out = strdup(body))) {
            r = chaos_err_set(err, ENOMEM, "out of memory");
            goto fail;
        }
        SETOPT(CURLOPT_POSTFIELDSIZE, (long)strlen(q->body_out));
        SETOPT(CURLOPT_POSTFIELDS, q->body_out);
    }
    if (strcmp(method, "GET") == 0 && !body)
        SETOPT(CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "POST") != 0)
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    q->t0_us = loop_now_us();
    q->next = pc->reqs;
    if (pc->reqs)
        pc->reqs->prev = q;
    pc->reqs = q;
    CURLMcode mc = curl_multi_add_handle(pc->multi, q->easy);
    if (mc != CURLM_OK) {
        r = chaos_err_set(err, EIO, "cannot start the request: %s", curl_multi_strerror(mc));
        req_destroy(q);
        return r;
    }
    return 0;
fail:
    curl_slist_free_all(q->headers);
    free(q->body_out);
    curl_easy_cleanup(q->easy);
    free(q);
    return r;
}

char *pcurl_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e)
        return NULL;
    char *copy = strdup(e);
    curl_free(e);
    return copy;
}

json_t *pcurl_json(const struct pcurl_reply *rep, char *why, size_t size)
{
    if (rep->error) {
        snprintf(why, size, "%s", rep->error);
        return NULL;
    }
    if (rep->truncated) {
        snprintf(why, size, "status %d: the answer is longer than 4 MiB", rep->status);
        return NULL;
    }
    json_error_t je;
    json_t *doc = json_loadb(rep->body, rep->len, JSON_REJECT_DUPLICATES, &je);
    /* Prometheus answers errors with a JSON envelope too: show its words. */
    if (doc && json_is_object(doc)) {
        const char *st = json_string_value(json_object_get(doc, "status"));
        if (st && strcmp(st, "success") != 0) {
            const char *et = json_string_value(json_object_get(doc, "errorType"));
            const char *e = json_string_value(json_object_get(doc, "error"));
            snprintf(why, size, "status %d: %s: %s", rep->status, et ? et : st, e ? e : "?");
            json_decref(doc);
            return NULL;
        }
    }
    if (rep->status < 200 || rep->status > 299) {
        char q[64];
        probe_quote(rep->body, q, sizeof q);
        snprintf(why, size, "status %d: %s", rep->status, q);
        json_decref(doc);
        return NULL;
    }
    if (!doc) {
        snprintf(why, size, "status %d: the answer is not JSON: %s", rep->status, je.text);
        return NULL;
    }
    return doc;
}
