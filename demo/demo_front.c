/* demo-front: the front service of the demo system. It starts and supervises
 * N demo-worker processes (restarting any that exits) and serves
 * GET /checkout by asking the workers round-robin, retrying on the next
 * worker when one fails. The example scenarios kill and pause the workers to
 * show what retries can and cannot cover.
 *
 * Threads: libmicrohttpd serves each connection in its own thread, so a slow
 * upstream never blocks other requests; request handlers read only the
 * immutable configuration and an atomic counter. The main thread owns the
 * workers: it forks them, and waits on a signalfd (SIGCHLD, SIGTERM, SIGINT)
 * and a timerfd (pending restarts). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include "demo_breaker.h"

#define MAX_WORKERS 64
#define MAX_RETRIES 10
#define RESTART_DELAY_MS 100
#define RESTART_DELAY_MAX_MS 5000
#define QUICK_EXIT_MS 500  /* a worker dying younger than this backs off */
#define STOP_GRACE_MS 2000 /* SIGTERM to SIGKILL when stopping workers */

struct config {
    int port;
    int workers;
    int worker_base_port;
    int retries;
    long attempt_timeout_ms;
    const char *pidfile;
    int breaker_failures; /* 0: no breakers */
    long breaker_open_ms;
};

struct worker {
    int port;
    pid_t pid; /* 0 while not running */
    int64_t started_ms;
    int64_t restart_at_ms; /* 0 when no restart is pending */
    int quick_exits;       /* exits in a row, each soon after the start */
};

struct front {
    struct config cfg;
    char worker_path[PATH_MAX];
    struct worker *workers;
    atomic_uint next; /* round-robin position, shared by request threads */
    pid_t self;
    bool stopping;
    int sfd;
    int tfd;
    struct demo_stats *stats; /* breakers and the /metrics counters */
};

static const char usage_text[] =
    "usage: demo-front [options]\n"
    "\n"
    "Starts N demo-worker processes on 127.0.0.1 (restarting any that exits) and\n"
    "serves on 127.0.0.1:\n"
    "  GET /checkout  asks the workers round-robin, retrying on the next worker\n"
    "                 on failure: 200 \"ok via worker P (attempt k)\" or\n"
    "                 503 \"all workers failed: <last error>\"\n"
    "  GET /healthz   200 \"ok\"\n"
    "  GET /metrics   counters and breaker states, Prometheus text format\n"
    "\n"
    "options:\n"
    "  --port P               port of the front (default 8080)\n"
    "  --workers N            number of workers, 1-64 (default 2)\n"
    "  --worker-base-port B   workers listen on B, B+1, ... (default 8081)\n"
    "  --retries R            extra attempts after a failed one, 0-10 (default 2)\n"
    "  --attempt-timeout D    time limit of one attempt, e.g. 300ms, 1s (default 300ms)\n"
    "  --breaker-failures N   open a worker's circuit breaker after N failed attempts\n"
    "                         in a row, 0-100 (default 0: no breakers)\n"
    "  --breaker-open D       how long an open breaker skips its worker before one\n"
    "                         trial attempt (default 2s)\n"
    "  --pidfile F            write the front's PID to F while it runs\n"
    "  --help                 show this text\n"
    "\n"
    "SIGTERM or SIGINT stops the workers and exits 0.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("demo-front: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\ntry 'demo-front --help'\n", stderr);
    va_end(ap);
    return 2;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses a decimal integer in [min, max]; returns 0 on success, -1 otherwise. */
static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* Parses "<number><unit>" with unit ms, s or m into milliseconds in
 * [1 ms, 60 s]; returns 0 on success, -1 otherwise. */
static int parse_timeout(const char *s, long *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(v) || v < 0)
        return -1;
    double mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else
        return -1;
    double ms = v * mult;
    if (ms > 60000)
        return -1;
    long whole = (long)ms;
    if (whole < ms)
        whole++; /* round up: a fraction of a millisecond is still a limit */
    if (whole < 1)
        return -1;
    *out = whole;
    return 0;
}

/* Fills cfg from the command line. Returns -1 when the program may go on,
 * otherwise the exit code (0 after --help, 2 after a usage error). */
static int parse_args(int argc, char **argv, struct config *cfg)
{
    enum { O_PORT = 1, O_WORKERS, O_BASE, O_RETRIES, O_TIMEOUT, O_PIDFILE, O_BFAIL, O_BOPEN, O_HELP };
    static const struct option opts[] = {
        {"port", required_argument, NULL, O_PORT},
        {"workers", required_argument, NULL, O_WORKERS},
        {"worker-base-port", required_argument, NULL, O_BASE},
        {"retries", required_argument, NULL, O_RETRIES},
        {"attempt-timeout", required_argument, NULL, O_TIMEOUT},
        {"pidfile", required_argument, NULL, O_PIDFILE},
        {"breaker-failures", required_argument, NULL, O_BFAIL},
        {"breaker-open", required_argument, NULL, O_BOPEN},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *cfg = (struct config){8080, 2, 8081, 2, 300, NULL, 0, 2000};
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_PORT:
            if (parse_int(optarg, 1, 65535, &cfg->port) < 0)
                return usage_error("--port: '%s' is not a port (1-65535)", optarg);
            break;
        case O_WORKERS:
            if (parse_int(optarg, 1, MAX_WORKERS, &cfg->workers) < 0)
                return usage_error("--workers: '%s' is not a number from 1 to %d", optarg,
                                   MAX_WORKERS);
            break;
        case O_BASE:
            if (parse_int(optarg, 1, 65535, &cfg->worker_base_port) < 0)
                return usage_error("--worker-base-port: '%s' is not a port (1-65535)", optarg);
            break;
        case O_RETRIES:
            if (parse_int(optarg, 0, MAX_RETRIES, &cfg->retries) < 0)
                return usage_error("--retries: '%s' is not a number from 0 to %d", optarg,
                                   MAX_RETRIES);
            break;
        case O_TIMEOUT:
            if (parse_timeout(optarg, &cfg->attempt_timeout_ms) < 0)
                return usage_error("--attempt-timeout: '%s' is not a duration from 1ms to 60s "
                                   "with a unit (ms, s, m), e.g. 300ms",
                                   optarg);
            break;
        case O_BFAIL:
            if (parse_int(optarg, 0, 100, &cfg->breaker_failures) < 0)
                return usage_error("--breaker-failures: '%s' is not a number from 0 to 100",
                                   optarg);
            break;
        case O_BOPEN:
            if (parse_timeout(optarg, &cfg->breaker_open_ms) < 0)
                return usage_error("--breaker-open: '%s' is not a duration from 1ms to 60s "
                                   "with a unit (ms, s, m), e.g. 2s",
                                   optarg);
            break;
        case O_PIDFILE:
            if (optarg[0] == '\0')
                return usage_error("--pidfile: the file name is empty");
            cfg->pidfile = optarg;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            return usage_error("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);

    int last = cfg->worker_base_port + cfg->workers - 1;
    if (last > 65535)
        return usage_error("--worker-base-port: %d workers from port %d go past port 65535",
                           cfg->workers, cfg->worker_base_port);
    if (cfg->port >= cfg->worker_base_port && cfg->port <= last)
        return usage_error("--port: %d is also a worker port (%d-%d)", cfg->port,
                           cfg->worker_base_port, last);
    return -1;
}

/* Sets path to the demo-worker binary next to our own executable.
 * Returns 0, or -1 with a message printed. */
static int find_worker_binary(char *path, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", path, size - 1);
    if (n < 0) {
        perror("demo-front: readlink /proc/self/exe");
        return -1;
    }
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    const char *name = "demo-worker";
    if (slash == NULL || (size_t)(slash + 1 - path) + strlen(name) + 1 > size) {
        fprintf(stderr, "demo-front: cannot place demo-worker next to '%s'\n", path);
        return -1;
    }
    strcpy(slash + 1, name);
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "demo-front: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- supervision (main thread only) ---- */

/* Forks and execs one worker. Returns 0, or -1 with a message printed. */
static int spawn_worker(struct front *f, struct worker *w)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", w->port);
    char *const argv[] = {"demo-worker", "--port", port, NULL};
    /* The worker starts with SIGTERM and SIGINT still blocked: it takes them
     * with sigwait(), so one sent before it is ready stays pending and still
     * ends it cleanly. */
    sigset_t mask;
    if (sigemptyset(&mask) != 0 || sigaddset(&mask, SIGTERM) != 0 ||
        sigaddset(&mask, SIGINT) != 0) {
        fprintf(stderr, "demo-front: sigset for worker %d\n", w->port);
        return -1;
    }

    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "demo-front: fork for worker %d: %s\n", w->port, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec: the parent has
         * threads. Die with the front even if it is SIGKILLed; the signal
         * stays set across exec. The getppid() check closes the race with a
         * front that died before prctl. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != f->self)
            _exit(127);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        if (sigaction(SIGPIPE, &dfl, NULL) != 0 || sigprocmask(SIG_SETMASK, &mask, NULL) != 0)
            _exit(127);
        /* Sockets other threads opened without O_CLOEXEC (curl's) must not
         * live on in the worker. Best effort: older kernels lack close_range,
         * and the descriptors we open ourselves are close-on-exec anyway. */
        (void)close_range(3, ~0U, 0);
        execv(f->worker_path, argv);
        _exit(127);
    }
    w->pid = pid;
    w->started_ms = now_ms();
    w->restart_at_ms = 0;
    return 0;
}

static void describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "ended (status 0x%x)", (unsigned)status);
}

/* The restart delay: RESTART_DELAY_MS, doubled for each further exit in a
 * row that came soon after the start, so a worker that cannot start (its
 * port is taken) does not spin. */
static int64_t restart_delay(int quick_exits)
{
    int64_t delay = RESTART_DELAY_MS;
    for (int i = 1; i < quick_exits && delay < RESTART_DELAY_MAX_MS; i++)
        delay *= 2;
    return delay < RESTART_DELAY_MAX_MS ? delay : RESTART_DELAY_MAX_MS;
}

/* Reaps every exited child and, unless stopping, schedules its restart. */
static void reap_workers(struct front *f)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return; /* 0: none left to reap; -1 (ECHILD): no children */
        for (int i = 0; i < f->cfg.workers; i++) {
            struct worker *w = &f->workers[i];
            if (w->pid != pid)
                continue;
            w->pid = 0;
            char what[96];
            describe_status(status, what, sizeof(what));
            if (f->stopping) {
                fprintf(stderr, "demo-front: worker %d (pid %d) %s\n", w->port, (int)pid, what);
                break;
            }
            int64_t now = now_ms();
            w->quick_exits = now - w->started_ms < QUICK_EXIT_MS ? w->quick_exits + 1 : 0;
            int64_t delay = restart_delay(w->quick_exits);
            w->restart_at_ms = now + delay;
            fprintf(stderr, "demo-front: worker %d (pid %d) %s; restarting in %" PRId64 "ms\n",
                    w->port, (int)pid, what, delay);
            break;
        }
    }
}

/* Starts the workers whose restart is due; a failed fork is tried again in a second. */
static void restart_due(struct front *f)
{
    int64_t now = now_ms();
    for (int i = 0; i < f->cfg.workers; i++) {
        struct worker *w = &f->workers[i];
        if (w->pid != 0 || w->restart_at_ms == 0 || w->restart_at_ms > now)
            continue;
        if (spawn_worker(f, w) < 0)
            w->restart_at_ms = now + 1000;
        else
            fprintf(stderr, "demo-front: worker %d started (pid %d)\n", w->port, (int)w->pid);
    }
}

/* Arms the timerfd for the earliest pending restart, or disarms it. */
static int arm_timer(struct front *f)
{
    int64_t first = 0;
    for (int i = 0; i < f->cfg.workers; i++) {
        int64_t t = f->workers[i].restart_at_ms;
        if (f->workers[i].pid == 0 && t != 0 && (first == 0 || t < first))
            first = t;
    }
    struct itimerspec its = {0};
    if (first != 0) {
        its.it_value.tv_sec = first / 1000;
        its.it_value.tv_nsec = (first % 1000) * 1000000;
    }
    if (timerfd_settime(f->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
        perror("demo-front: timerfd_settime");
        return -1;
    }
    return 0;
}

/* Reads one signal from the signalfd into *sig. Returns 0 or -1. */
static int read_signal(int sfd, int *sig)
{
    struct signalfd_siginfo si;
    ssize_t n = read(sfd, &si, sizeof(si));
    if (n != (ssize_t)sizeof(si)) {
        perror("demo-front: read signalfd");
        return -1;
    }
    *sig = (int)si.ssi_signo;
    return 0;
}

/* Runs until SIGTERM or SIGINT. Returns 0 then, -1 on an internal error. */
static int supervise(struct front *f)
{
    for (;;) {
        if (arm_timer(f) < 0)
            return -1;
        struct pollfd p[2] = {{.fd = f->sfd, .events = POLLIN}, {.fd = f->tfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("demo-front: poll");
            return -1;
        }
        if (p[0].revents & POLLIN) {
            int sig;
            if (read_signal(f->sfd, &sig) < 0)
                return -1;
            if (sig == SIGCHLD)
                reap_workers(f);
            else
                return 0; /* SIGTERM or SIGINT */
        }
        if (p[1].revents & POLLIN) {
            uint64_t expirations;
            if (read(f->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) {
                perror("demo-front: read timerfd");
                return -1;
            }
            restart_due(f);
        }
    }
}

static bool any_worker_running(const struct front *f)
{
    for (int i = 0; i < f->cfg.workers; i++)
        if (f->workers[i].pid != 0)
            return true;
    return false;
}

static void signal_workers(const struct front *f, int sig)
{
    for (int i = 0; i < f->cfg.workers; i++)
        if (f->workers[i].pid != 0 && kill(f->workers[i].pid, sig) != 0 && errno != ESRCH)
            fprintf(stderr, "demo-front: kill worker %d: %s\n", f->workers[i].port,
                    strerror(errno));
}

/* Stops every worker: SIGTERM (and SIGCONT, so a paused worker gets it),
 * SIGKILL after STOP_GRACE_MS, and reaps them all. Our children are never
 * reaped by anyone else, so their PIDs cannot be reused while we signal them. */
static void stop_workers(struct front *f)
{
    f->stopping = true;
    signal_workers(f, SIGTERM);
    signal_workers(f, SIGCONT);
    int64_t deadline = now_ms() + STOP_GRACE_MS;
    reap_workers(f);
    while (any_worker_running(f)) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = f->sfd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno != EINTR) {
            perror("demo-front: poll");
            break;
        }
        int sig;
        if (n > 0 && read_signal(f->sfd, &sig) < 0)
            break;
        reap_workers(f);
    }
    if (!any_worker_running(f))
        return;
    signal_workers(f, SIGKILL);
    for (int i = 0; i < f->cfg.workers; i++) {
        struct worker *w = &f->workers[i];
        if (w->pid != 0 && waitpid(w->pid, NULL, 0) < 0)
            fprintf(stderr, "demo-front: waitpid worker %d: %s\n", w->port, strerror(errno));
        w->pid = 0;
    }
}

/* ---- HTTP (request threads) ---- */

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

static size_t discard(char *data, size_t size, size_t nmemb, void *userdata)
{
    return size * nmemb;
}

/* One request to the worker on port. Returns 0 on a 200, otherwise -1 with
 * the reason in err. */
static int attempt(const struct front *f, int port, char *err, size_t size)
{
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(err, size, "worker %d: cannot create a curl handle", port);
        return -1;
    }
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/work", port);
    char ebuf[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURLcode rc;
    /* NOSIGNAL: curl must not use signals in a threaded program. NOPROXY: an
     * http_proxy in the environment must not reroute 127.0.0.1. */
    if ((rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf)) == CURLE_OK &&
        (rc = curl_easy_setopt(h, CURLOPT_URL, url)) == CURLE_OK &&
        (rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L)) == CURLE_OK &&
        (rc = curl_easy_setopt(h, CURLOPT_NOPROXY, "*")) == CURLE_OK &&
        (rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, f->cfg.attempt_timeout_ms)) == CURLE_OK &&
        (rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard)) == CURLE_OK &&
        (rc = curl_easy_perform(h)) == CURLE_OK)
        rc = curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);

    if (rc != CURLE_OK) {
        snprintf(err, size, "worker %d: %s", port, ebuf[0] ? ebuf : curl_easy_strerror(rc));
        return -1;
    }
    if (status != 200) {
        snprintf(err, size, "worker %d: HTTP status %ld", port, status);
        return -1;
    }
    return 0;
}

static enum MHD_Result checkout(struct front *f, struct MHD_Connection *conn)
{
    unsigned int start = atomic_fetch_add(&f->next, 1);
    char err[CURL_ERROR_SIZE + 32] = "no attempt made";
    char body[sizeof(err) + 64];

    for (int k = 0; k <= f->cfg.retries; k++) {
        int idx = (int)((start + (unsigned int)k) % (unsigned int)f->cfg.workers);
        int port = f->cfg.worker_base_port + idx;
        /* An open breaker costs the attempt nothing: the next worker is asked. */
        if (!demo_breaker_allow(f->stats, idx, now_ms())) {
            snprintf(err, sizeof(err), "worker %d: circuit breaker open", port);
            continue;
        }
        int ok = attempt(f, port, err, sizeof(err)) == 0;
        demo_breaker_record(f->stats, idx, ok, now_ms());
        if (ok) {
            demo_count_checkout(f->stats, true);
            snprintf(body, sizeof(body), "ok via worker %d (attempt %d)\n", port, k + 1);
            return reply(conn, MHD_HTTP_OK, body);
        }
    }
    demo_count_checkout(f->stats, false);
    snprintf(body, sizeof(body), "all workers failed: %s\n", err);
    return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result metrics(struct front *f, struct MHD_Connection *conn)
{
    char page[16384];
    size_t n = demo_metrics(f->stats, now_ms(), page, sizeof(page));
    if (n >= sizeof(page))
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics page too long\n");
    return reply(conn, MHD_HTTP_OK, page);
}

/* GET requests carry no body, so we answer on the first call. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
    if (strcmp(url, "/checkout") == 0)
        return checkout(cls, conn);
    if (strcmp(url, "/healthz") == 0)
        return reply(conn, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/metrics") == 0)
        return metrics(cls, conn);
    return reply(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ---- setup ---- */

/* Writes our PID to path through a temporary file, so readers never see a
 * partial file. Returns 0, or -1 with a message printed. */
static int write_pidfile(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        fprintf(stderr, "demo-front: --pidfile: name too long\n");
        return -1;
    }
    FILE *fp = fopen(tmp, "we");
    if (fp == NULL) {
        fprintf(stderr, "demo-front: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    int bad = fprintf(fp, "%d\n", (int)getpid()) < 0;
    bad |= fclose(fp) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "demo-front: writing %s: %s\n", path, strerror(errno));
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}

/* Blocks the signals we take through the signalfd. They must be blocked
 * before any thread starts (threads inherit the mask) and restored to their
 * default action: a script's background job starts with SIGINT ignored, and
 * an ignored signal never reaches a signalfd. */
static int setup_signals(sigset_t *set)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    struct sigaction ign = {.sa_handler = SIG_IGN};
    if (sigemptyset(set) != 0 || sigaddset(set, SIGCHLD) != 0 || sigaddset(set, SIGTERM) != 0 ||
        sigaddset(set, SIGINT) != 0 || sigaction(SIGTERM, &dfl, NULL) != 0 ||
        sigaction(SIGINT, &dfl, NULL) != 0 || sigaction(SIGPIPE, &ign, NULL) != 0 ||
        sigprocmask(SIG_BLOCK, set, NULL) != 0) {
        perror("demo-front: signals");
        return -1;
    }
    return 0;
}

/* Listens, starts the workers and serves until SIGTERM or SIGINT; then
 * stops the workers. Returns the exit code. */
static int serve(struct front *f)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)f->cfg.port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
        (uint16_t)f->cfg.port, NULL, NULL, handle, f, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)256,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "demo-front: cannot listen on 127.0.0.1:%d\n", f->cfg.port);
        return 1;
    }
    for (int i = 0; i < f->cfg.workers; i++) {
        struct worker *w = &f->workers[i];
        w->port = f->cfg.worker_base_port + i;
        if (spawn_worker(f, w) < 0)
            w->restart_at_ms = now_ms() + 1000;
    }
    int rc = 1;
    if (f->cfg.pidfile == NULL || write_pidfile(f->cfg.pidfile) == 0) {
        fprintf(stderr, "demo-front: listening on 127.0.0.1:%d, %d workers from port %d\n",
                f->cfg.port, f->cfg.workers, f->cfg.worker_base_port);
        rc = supervise(f) < 0 ? 1 : 0;
        if (f->cfg.pidfile != NULL && unlink(f->cfg.pidfile) != 0)
            fprintf(stderr, "demo-front: %s: %s\n", f->cfg.pidfile, strerror(errno));
    }
    MHD_stop_daemon(d);
    stop_workers(f);
    return rc;
}

int main(int argc, char **argv)
{
    struct front f = {.sfd = -1, .tfd = -1};
    int rc = parse_args(argc, argv, &f.cfg);
    if (rc >= 0)
        return rc;
    if (find_worker_binary(f.worker_path, sizeof(f.worker_path)) < 0)
        return 1;

    sigset_t set;
    if (setup_signals(&set) < 0)
        return 1;
    f.self = getpid();
    f.sfd = signalfd(-1, &set, SFD_CLOEXEC);
    f.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    f.workers = calloc((size_t)f.cfg.workers, sizeof(*f.workers));
    f.stats = demo_stats_new(f.cfg.workers, f.cfg.worker_base_port, f.cfg.breaker_failures,
                             f.cfg.breaker_open_ms);
    if (f.sfd < 0 || f.tfd < 0 || f.workers == NULL || f.stats == NULL) {
        perror("demo-front: setup");
        rc = 1;
    } else if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "demo-front: curl_global_init failed\n");
        rc = 1;
    } else {
        rc = serve(&f);
        curl_global_cleanup();
    }
    free(f.workers);
    demo_stats_free(f.stats);
    if (f.sfd >= 0)
        close(f.sfd);
    if (f.tfd >= 0)
        close(f.tfd);
    return rc;
}
