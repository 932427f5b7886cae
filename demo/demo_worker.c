/* demo-worker: the upstream of the demo system. A tiny HTTP server on
 * 127.0.0.1 that answers GET /work with "worker <port> ok" and GET /healthz
 * with "ok". demo-front starts and supervises several of these; the example
 * scenarios kill and pause them. Exits 0 on SIGTERM or SIGINT. */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>

static const char usage_text[] =
    "usage: demo-worker --port PORT\n"
    "\n"
    "Serves GET /work (200 \"worker PORT ok\") and GET /healthz (200 \"ok\")\n"
    "on 127.0.0.1:PORT until SIGTERM or SIGINT. Started by demo-front.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("demo-worker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\ntry 'demo-worker --help'\n", stderr);
    va_end(ap);
    return 2;
}

/* Parses a TCP port (1-65535); returns 0 on success, -1 otherwise. */
static int parse_port(const char *s, int *port)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *body)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    enum MHD_Result ret = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    if (ret == MHD_YES)
        ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* cls points at the worker's port. GET requests carry no body, so we answer
 * on the first call. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    const int *port = cls;

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
    if (strcmp(url, "/work") == 0) {
        char body[64];
        snprintf(body, sizeof(body), "worker %d ok\n", *port);
        return reply(conn, MHD_HTTP_OK, body);
    }
    if (strcmp(url, "/healthz") == 0)
        return reply(conn, MHD_HTTP_OK, "ok\n");
    return reply(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int port = 0;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_port(optarg, &port) < 0)
                return usage_error("--port: '%s' is not a port (1-65535)", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (port == 0)
        return usage_error("--port is required");

    /* Signals are taken synchronously with sigwait(); blocking them before
     * MHD starts its threads makes those threads inherit the mask. A parent
     * may have left them ignored (background jobs of a script), so restore
     * the default first or they would never arrive. */
    sigset_t stop;
    if (sigemptyset(&stop) != 0 || sigaddset(&stop, SIGTERM) != 0 ||
        sigaddset(&stop, SIGINT) != 0 || signal(SIGTERM, SIG_DFL) == SIG_ERR ||
        signal(SIGINT, SIG_DFL) == SIG_ERR || pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
        perror("demo-worker: signals");
        return 1;
    }

    struct sockaddr_in addr = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                         NULL, handle, &port, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "demo-worker: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }

    int sig = 0;
    int rc = sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    if (rc != 0) {
        fprintf(stderr, "demo-worker: sigwait: %s\n", strerror(rc));
        return 1;
    }
    return 0;
}
