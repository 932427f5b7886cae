#include "agent_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>
#include "agent_request.h"

struct agent_http {
    struct loop *loop;
    const struct agent_config *cfg;
    struct agent *agent;
    struct MHD_Daemon *mhd;
    int epoll_fd;
    uint64_t timer;
    unsigned idle_zero_runs; /* runs in a row MHD asked for at once, see drive */
    bool failed;
};

/* One request's state across the access handler's calls. */
struct conn {
    char *body;
    size_t len;
    bool too_big;
    bool answered; /* a reply was queued on the first call (401, 413) */
};

bool agent_http_auth_ok(const char *header, const char *token)
{
    static const char prefix[] = "Bearer ";
    if (!header || strncmp(header, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *given = header + sizeof prefix - 1;
    size_t glen = strlen(given), tlen = strlen(token);
    /* Every byte of the token is looked at whatever the input: the time
     * says nothing about how much of a guess was right. */
    unsigned char diff = glen != tlen;
    for (size_t i = 0; i < tlen; i++)
        diff |= (unsigned char)(token[i] ^ (i < glen ? given[i] : 0));
    return diff == 0;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, unsigned status, const char *body,
                                  const char *ctype)
{
    static const char oom[] = "{\"error\":\"out of memory\"}";
    if (!body) {
        body = oom;
        status = 500;
        ctype = "application/json";
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    enum MHD_Result r = MHD_add_response_header(resp, "Content-Type", ctype);
    if (r == MHD_YES)
        r = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct agent_http *h = cls;
    struct conn *st = *con_cls;
    if (!st) {
        if (!(st = calloc(1, sizeof *st)))
            return MHD_NO;
        *con_cls = st;
        bool health = strcmp(method, "GET") == 0 && strcmp(url, "/healthz") == 0;
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        /* Nothing is read or done before the token is checked. */
        if (!health && !agent_http_auth_ok(auth, h->cfg->token)) {
            st->answered = true;
            return send_reply(c, 401, "{\"error\":\"unauthorized\"}", "application/json");
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > AGENT_BODY_MAX) {
            st->answered = true;
            return send_reply(c, 413, "{\"error\":\"body: larger than 65536 bytes\"}",
                              "application/json");
        }
        return MHD_YES;
    }
    if (st->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        /* A chunked body has no Content-Length: it is cut off here. */
        if (!st->too_big && st->len + *upload_size <= AGENT_BODY_MAX) {
            char *nb = realloc(st->body, st->len + *upload_size + 1);
            if (!nb)
                return MHD_NO;
            memcpy(nb + st->len, upload, *upload_size);
            st->body = nb;
            st->len += *upload_size;
            st->body[st->len] = '\0';
        } else {
            st->too_big = true;
            free(st->body);
            st->body = NULL;
            st->len = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (st->too_big)
        return send_reply(c, 413, "{\"error\":\"body: larger than 65536 bytes\"}",
                          "application/json");
    const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    struct agent_reply rep;
    agent_handle(h->agent, method, url, since, st->body ? st->body : "", st->len, &rep);
    enum MHD_Result r = send_reply(c, rep.status, rep.body, rep.content_type);
    free(rep.body);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn *st = *con_cls;
    if (!st)
        return;
    free(st->body);
    free(st);
    *con_cls = NULL;
}

static void drive(struct agent_http *h);

static void on_timer(struct loop *loop, void *arg)
{
    struct agent_http *h = arg;
    h->timer = 0;
    drive(h);
}

static void on_ready(struct loop *loop, int fd, uint32_t events, void *arg)
{
    struct agent_http *h = arg;
    h->idle_zero_runs = 0;
    drive(h);
}

/* Whether MHD's epoll set has a socket ready (poll does not consume the
 * events, MHD_run still sees them). */
static bool sockets_ready(int epoll_fd)
{
    struct pollfd p = {.fd = epoll_fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* How long to wait when MHD asks to be run again at once (timeout 0).
 * libmicrohttpd 0.9.75 (Debian 12) keeps asking for as long as a TLS
 * handshake waits for the client's next flight: one client that sends its
 * ClientHello and stops would pin a core (9000 runs a second, each an
 * EAGAIN). A few immediate runs finish whatever MHD really holds; after
 * them, and while no socket is ready, it is run every 20 ms until a socket
 * wakes it or its connection timeout drops the stalled client. */
#define ZERO_RUNS_AT_ONCE 4
#define STALLED_RUN_MS 20
static int64_t zero_timeout_ms(struct agent_http *h)
{
    if (h->idle_zero_runs < ZERO_RUNS_AT_ONCE) {
        h->idle_zero_runs++;
        return 0;
    }
    return sockets_ready(h->epoll_fd) ? 0 : STALLED_RUN_MS;
}

/* Lets MHD do what is ready, then arms a timer for its next timeout
 * (idle connections, data it holds back). */
static void drive(struct agent_http *h)
{
    if (MHD_run(h->mhd) != MHD_YES && !h->failed) {
        h->failed = true;
        fprintf(stderr, "chaos-agent: http: MHD_run failed\n");
    }
    MHD_UNSIGNED_LONG_LONG t;
    if (h->timer) {
        loop_cancel_timer(h->loop, h->timer);
        h->timer = 0;
    }
    if (MHD_get_timeout(h->mhd, &t) == MHD_YES) {
        int64_t ms = t > 60000 ? 60000 : (int64_t)t;
        if (ms == 0)
            ms = zero_timeout_ms(h);
        else
            h->idle_zero_runs = 0;
        h->timer = loop_add_timer(h->loop, loop_now_ms() + ms, on_timer, h);
        /* Without the timer an idle connection lingers until the next request
         * wakes MHD; no fault depends on it. */
        if (!h->timer)
            fprintf(stderr, "chaos-agent: http: cannot arm a timer: %s\n", strerror(errno));
    }
}

int agent_http_start(struct loop *loop, const struct agent_config *cfg, struct agent *a,
                     struct agent_http **out, struct chaos_err *err)
{
    struct agent_http *h = calloc(1, sizeof *h);
    if (!h)
        return chaos_err_set(err, ENOMEM, "out of memory");
    h->loop = loop;
    h->cfg = cfg;
    h->agent = a;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (cfg->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (cfg->tls_cert_pem) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            free(h);
            return chaos_err_set(err, ENOTSUP, "tls: this libmicrohttpd has no TLS support");
        }
        flags |= MHD_USE_TLS;
    }
    uint16_t port = ntohs(((const struct sockaddr_in *)&cfg->addr)->sin_port);
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, cfg->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, cfg->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    h->mhd = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
        (const struct sockaddr *)&cfg->addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_ARRAY,
        cfg->tls_cert_pem ? tls_opts : tls_opts + 2, MHD_OPTION_END);
    if (!h->mhd) {
        free(h);
        return chaos_err_set(err, EADDRNOTAVAIL,
                             "listen: cannot serve on %s (the address is in use, not local, "
                             "or the TLS certificate and key do not match)",
                             cfg->listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    int r;
    if (!info || info->epoll_fd < 0) {
        r = chaos_err_set(err, ENOTSUP, "http: libmicrohttpd gave no epoll fd");
    } else if ((r = loop_add_fd(loop, info->epoll_fd, EPOLLIN, on_ready, h)) < 0) {
        chaos_err_set(err, -r, "http: event loop: %s", strerror(-r));
    } else {
        h->epoll_fd = info->epoll_fd;
        drive(h);
        *out = h;
        return 0;
    }
    MHD_stop_daemon(h->mhd);
    free(h);
    return r;
}

void agent_http_stop(struct agent_http *h)
{
    if (!h)
        return;
    if (h->timer)
        loop_cancel_timer(h->loop, h->timer);
    loop_del_fd(h->loop, h->epoll_fd);
    MHD_stop_daemon(h->mhd);
    free(h);
}
