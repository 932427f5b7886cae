#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "agent_request.h"
#include "duration.h"
#include "engine.h"
#include "proc_stat.h"
#include "util.h"

/* The engine keeps every fault it applied until it is freed (it has no way
 * to forget one yet), so the agent bounds how many it accepts in its life. */
#define AGENT_MAX_FAULTS 20000
/* Events kept per fault: a repeated kill reports one per round. The oldest
 * go first; seq numbers stay, so ?since=N still works. */
#define AGENT_MAX_EVENTS 512
/* Processes of a pause watched for exit (a fault whose target died). */
#define WATCH_MAX 64

static const double hist_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
#define N_BOUNDS (sizeof hist_bounds / sizeof hist_bounds[0])

struct histogram {
    uint64_t bucket[N_BOUNDS]; /* cumulative at output time, per bucket here */
    uint64_t count;
    double sum;
};

struct watch {
    int fd;
    pid_t pid;
    char comm[16];
    struct afault *f;
};

struct afault {
    struct afault *next;
    struct agent *a;
    char *name, *kind, *controller;
    struct fault_spec *spec; /* the engine borrows it: freed with the engine */
    struct engine_fault *ef;
    int64_t expires_unix_ms; /* -1: no duration */
    int64_t duration_ms;
    json_t *events;
    json_int_t seq;
    char reason[256]; /* why the agent reverted it ("" : its duration ended) */
    struct watch watch[WATCH_MAX];
    size_t n_watch, n_gone;
};

struct lease {
    struct lease *next;
    struct agent *a;
    char *controller;
    uint64_t timer;
};

struct agent {
    struct loop *loop;
    const struct agent_config *cfg;
    struct engine *engine;
    struct afault *faults, **tail;
    size_t n_faults;
    struct lease *leases;
    bool halted;
    bool stopping;
    uint64_t applied, reverted, failed, lease_expiries, recoveries;
    struct histogram apply_s, revert_s;
};

/* ---- small helpers ---- */

static void observe(struct histogram *h, double s)
{
    for (size_t i = 0; i < N_BOUNDS; i++)
        if (s <= hist_bounds[i]) {
            h->bucket[i]++;
            break;
        }
    h->count++;
    h->sum += s;
}

static void reply_json(struct agent_reply *out, unsigned status, json_t *j)
{
    out->status = status;
    out->content_type = "application/json";
    out->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!out->body)
        out->status = 500;
    json_decref(j);
}

static void reply_error(struct agent_reply *out, unsigned status, const char *msg)
{
    reply_json(out, status, json_pack("{s:s}", "error", msg));
}

static struct afault *find_fault(struct agent *a, const char *id)
{
    for (struct afault *f = a->faults; f; f = f->next)
        if (f->ef && strcmp(engine_fault_id(f->ef), id) == 0)
            return f;
    return NULL;
}

static const char *event_name(enum engine_event ev)
{
    switch (ev) {
    case ENGINE_APPLIED:
        return "applied";
    case ENGINE_STEPPED:
        return "stepped";
    case ENGINE_STEP_FAILED:
        return "step_failed";
    case ENGINE_FINISHED:
        return "finished";
    case ENGINE_REVERTED:
        return "reverted";
    case ENGINE_FAILED:
        return "revert_failed";
    case ENGINE_ABORTED:
        return "aborted";
    }
    return "unknown";
}

static void unwatch(struct afault *f)
{
    for (size_t i = 0; i < f->n_watch; i++)
        if (f->watch[i].fd >= 0) {
            loop_del_fd(f->a->loop, f->watch[i].fd);
            close(f->watch[i].fd);
            f->watch[i].fd = -1;
        }
}

static void add_event(struct afault *f, const char *event, const char *detail)
{
    json_t *e = json_pack("{s:I, s:I, s:s, s:s}", "seq", ++f->seq, "t_unix_ms",
                          (json_int_t)loop_unix_ms(), "event", event, "detail", detail);
    /* Out of memory: the fault's state still says where it is. */
    if (!e)
        return;
    if (json_array_size(f->events) >= AGENT_MAX_EVENTS)
        IGNORE_RESULT(json_array_remove(f->events, 0));
    /* Fails only out of memory, as above. */
    IGNORE_RESULT(json_array_append_new(f->events, e));
}

static void on_event(struct engine_fault *ef, enum engine_event ev, const char *detail, void *arg)
{
    struct afault *f = arg;
    struct agent *a = f->a;
    char text[1024];
    if (ev == ENGINE_REVERTED || ev == ENGINE_FAILED) {
        char dur[32];
        duration_format(f->duration_ms, dur, sizeof dur);
        if (f->reason[0])
            snprintf(text, sizeof text, "%s: %s", f->reason, detail);
        else
            snprintf(text, sizeof text, "its duration %s ended: %s", dur, detail);
        detail = text;
    }
    add_event(f, event_name(ev), detail);
    if (ev == ENGINE_REVERTED)
        a->reverted++;
    else if (ev == ENGINE_FAILED || ev == ENGINE_ABORTED)
        a->failed++;
    if (fault_state_ended(engine_fault_state(ef)))
        unwatch(f);
    fprintf(stderr, "chaos-agent: fault %s '%s': %s: %s\n", engine_fault_id(ef), f->name,
            event_name(ev), detail);
}

/* Reverts f for reason; the time goes into the revert histogram. */
static int revert_fault(struct afault *f, const char *reason)
{
    if (!f->ef || engine_fault_state(f->ef) != FAULT_ACTIVE)
        return 0;
    snprintf(f->reason, sizeof f->reason, "%s", reason);
    int64_t t0 = loop_now_us();
    struct chaos_err err = {0};
    int r = engine_revert(f->a->engine, f->ef, &err);
    observe(&f->a->revert_s, (double)(loop_now_us() - t0) / 1e6);
    return r;
}

/* ---- a fault whose target died ---- */

static void on_target_exit(struct loop *loop, int fd, uint32_t events, void *arg)
{
    struct watch *w = arg;
    struct afault *f = w->f;
    loop_del_fd(loop, fd);
    close(fd);
    w->fd = -1;
    if (++f->n_gone < f->n_watch)
        return;
    char reason[256];
    if (f->n_watch == 1)
        snprintf(reason, sizeof reason, "target gone: process %d (%s) exited", (int)w->pid,
                 w->comm);
    else
        snprintf(reason, sizeof reason, "target gone: all %zu paused processes exited", f->n_watch);
    /* Errors are recorded by the engine and reported in the fault's events. */
    IGNORE_RESULT(revert_fault(f, reason));
}

/* Watches the processes a pause stopped, so that a fault whose every target
 * exited is reverted then, with the reason, instead of staying "active" to
 * its end. The engine's public API names them only in its description
 * ("paused 2 processes: 812 (worker), 813 (worker)"), so they are read from
 * there; each is pinned by a pidfd and checked to still carry that name
 * before it is watched. Best effort: a fault not watched still ends at its duration. */
static void watch_targets(struct afault *f)
{
    if (strcmp(f->kind, "process") != 0)
        return;
    char d[2048];
    engine_fault_describe(f->ef, d, sizeof d);
    if (strncmp(d, "paused ", 7) != 0)
        return;
    const char *p = strstr(d, ": ");
    while (p && f->n_watch < WATCH_MAX) {
        p += 2;
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p || pid <= 1 || strncmp(end, " (", 2) != 0)
            break;
        /* The name as the description gives it: up to the ")" that ends
         * the item (a name may hold ") " itself; then it is not watched). */
        const char *c = end + 2, *ce = strstr(c, "), ");
        if (!ce)
            ce = c + strlen(c) - (c[0] && c[strlen(c) - 1] == ')' ? 1 : 0);
        char comm[16];
        snprintf(comm, sizeof comm, "%.*s", (int)(ce - c), c);
        /* Pinned first, then checked: if the pid is still this name after
         * the pidfd was opened, the pidfd is that process. */
        struct proc_stat st;
        int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
        if (fd >= 0 && (proc_stat_read((pid_t)pid, &st) != 0 || strcmp(st.comm, comm) != 0)) {
            close(fd);
            fd = -1;
        }
        if (fd >= 0) {
            struct watch *w = &f->watch[f->n_watch];
            w->fd = fd;
            w->pid = (pid_t)pid;
            w->f = f;
            snprintf(w->comm, sizeof w->comm, "%s", st.comm);
            if (loop_add_fd(f->a->loop, fd, EPOLLIN, on_target_exit, w) < 0)
                close(fd);
            else
                f->n_watch++;
        }
        p = strstr(end, "), ");
        if (p)
            p++;
    }
}

/* ---- leases ---- */

static void on_lease_expired(struct loop *loop, void *arg)
{
    struct lease *l = arg;
    struct agent *a = l->a;
    l->timer = 0;
    a->lease_expiries++;
    char reason[256];
    snprintf(reason, sizeof reason, "lease of controller '%s' expired", l->controller);
    size_t n = 0;
    for (struct afault *f = a->faults; f; f = f->next)
        if (f->controller && strcmp(f->controller, l->controller) == 0 && f->ef &&
            engine_fault_state(f->ef) == FAULT_ACTIVE) {
            IGNORE_RESULT(revert_fault(f, reason)); /* reported in the fault's events */
            n++;
        }
    fprintf(stderr, "chaos-agent: %s; reverted %zu fault%s\n", reason, n, n == 1 ? "" : "s");
    for (struct lease **pp = &a->leases; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    free(l->controller);
    free(l);
}

/* Renews (or opens) controller's lease. The new timer is armed before the
 * old one is cancelled, so a lease is never left without one. */
static int lease_renew(struct agent *a, const char *controller, struct chaos_err *err)
{
    struct lease *l = a->leases;
    while (l && strcmp(l->controller, controller) != 0)
        l = l->next;
    bool fresh = !l;
    if (fresh) {
        if (!(l = calloc(1, sizeof *l)) || !(l->controller = strdup(controller))) {
            free(l);
            return chaos_err_set(err, ENOMEM, "out of memory");
        }
        l->a = a;
    }
    uint64_t t = loop_add_timer(a->loop, loop_now_ms() + a->cfg->lease_ms, on_lease_expired, l);
    if (!t) {
        int e = errno ? errno : ENOMEM;
        if (fresh) {
            free(l->controller);
            free(l);
        }
        return chaos_err_set(err, e, "cannot arm the lease timer: %s", strerror(e));
    }
    if (l->timer)
        loop_cancel_timer(a->loop, l->timer);
    l->timer = t;
    if (fresh) {
        l->next = a->leases;
        a->leases = l;
    }
    return 0;
}

/* ---- views ---- */

static json_t *fault_json(const struct afault *f, json_int_t since)
{
    char desc[2048];
    engine_fault_describe(f->ef, desc, sizeof desc);
    json_t *events = json_array();
    if (!events)
        return NULL;
    size_t i;
    json_t *e;
    json_array_foreach(f->events, i, e) if (json_integer_value(json_object_get(e, "seq")) > since &&
                                            json_array_append(events, e) < 0)
    {
        json_decref(events);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:o, s:o}", "id", engine_fault_id(f->ef),
                     "name", f->name, "kind", f->kind, "state",
                     fault_state_name(engine_fault_state(f->ef)), "description", desc, "error",
                     engine_fault_error(f->ef), "controller", f->controller, "expires_unix_ms",
                     f->expires_unix_ms >= 0 ? json_integer(f->expires_unix_ms) : json_null(),
                     "events", events);
}

/* ---- handlers ---- */

static void post_fault(struct agent *a, const char *body, size_t len, struct agent_reply *out)
{
    struct agent_fault_req req;
    struct chaos_err err = {0};
    if (agent_request_parse_fault(body, len, &req, &err) < 0)
        return reply_error(out, 400, err.msg);
    if (agent_policy_check(&a->cfg->policy, req.kind, req.target, req.params, req.spec, &err) < 0) {
        agent_fault_req_clear(&req, 1);
        return reply_error(out, 403, err.msg);
    }
    if (a->halted || a->stopping) {
        agent_fault_req_clear(&req, 1);
        return reply_error(out, 409,
                           a->stopping ? "halted: the agent is stopping"
                                       : "halted: the agent refuses new faults "
                                         "until DELETE /v1/halt");
    }
    if (a->n_faults >= AGENT_MAX_FAULTS) {
        agent_fault_req_clear(&req, 1);
        return reply_error(out, 503,
                           "this agent has applied its limit of faults in one life; "
                           "restart it");
    }
    /* The fault's own request renews its lease; without a lease armed the
     * fault must not start (it would not be held by anything). */
    if (req.controller && lease_renew(a, req.controller, &err) < 0) {
        agent_fault_req_clear(&req, 1);
        return reply_error(out, 500, err.msg);
    }
    struct afault *f = calloc(1, sizeof *f);
    json_t *events = json_array();
    if (!f || !events) {
        free(f);
        json_decref(events);
        agent_fault_req_clear(&req, 1);
        return reply_error(out, 500, "out of memory");
    }
    f->a = a;
    f->events = events;
    f->name = steal_pointer(&req.name);
    f->kind = steal_pointer(&req.kind);
    f->controller = steal_pointer(&req.controller);
    f->spec = steal_pointer(&req.spec);
    f->duration_ms = req.duration_ms;
    f->expires_unix_ms = fault_spec_info(f->spec)->lasting ? loop_unix_ms() + req.duration_ms : -1;
    agent_fault_req_clear(&req, 1);
    /* In the list before the apply: the spec must live as long as the
     * engine's fault, and the fault is shown even when its apply failed. */
    *a->tail = f;
    a->tail = &f->next;
    a->n_faults++;
    int64_t t0 = loop_now_us();
    int r = engine_apply(a->engine, f->name, f->spec, on_event, f, &f->ef, &err);
    observe(&a->apply_s, (double)(loop_now_us() - t0) / 1e6);
    if (r < 0) {
        a->failed++;
        chaos_err_prefix(&err, "fault '%s'", f->name);
        fprintf(stderr, "chaos-agent: %s\n", err.msg);
        return reply_error(out, 500, err.msg);
    }
    a->applied++;
    watch_targets(f);
    reply_json(out, 201, fault_json(f, 0));
}

static void get_faults(struct agent *a, struct agent_reply *out)
{
    json_t *arr = json_array();
    for (struct afault *f = a->faults; arr && f; f = f->next) {
        if (!f->ef)
            continue;
        json_t *j = fault_json(f, 0);
        if (!j || json_array_append_new(arr, j) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    reply_json(out, 200, arr ? json_pack("{s:o}", "faults", arr) : NULL);
}

static void post_halt(struct agent *a, struct agent_reply *out)
{
    a->halted = true;
    json_int_t n = 0;
    for (struct afault *f = a->faults; f; f = f->next)
        if (f->ef && engine_fault_state(f->ef) == FAULT_ACTIVE) {
            IGNORE_RESULT(revert_fault(f, "halted (POST /v1/halt)")); /* in its events */
            n++;
        }
    fprintf(stderr, "chaos-agent: halted; reverted %lld fault%s\n", (long long)n,
            n == 1 ? "" : "s");
    reply_json(out, 200, json_pack("{s:b, s:I}", "halted", 1, "reverted", n));
}

static void post_lease(struct agent *a, const char *body, size_t len, struct agent_reply *out)
{
    _cleanup_free_ char *controller = NULL;
    struct chaos_err err = {0};
    if (agent_request_parse_lease(body, len, &controller, &err) < 0)
        return reply_error(out, 400, err.msg);
    if (lease_renew(a, controller, &err) < 0)
        return reply_error(out, 500, err.msg);
    reply_json(out, 200,
               json_pack("{s:s, s:I}", "controller", controller, "expires_in_ms",
                         (json_int_t)a->cfg->lease_ms));
}

static int parse_since(const char *s, json_int_t *out)
{
    if (!s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

static void metrics(struct agent *a, struct agent_reply *out);

void agent_handle(struct agent *a, const char *method, const char *path, const char *since,
                  const char *body, size_t len, struct agent_reply *out)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
         del = strcmp(method, "DELETE") == 0;
    memset(out, 0, sizeof *out);
    if (strcmp(path, "/healthz") == 0 && get)
        return reply_json(out, 200, json_pack("{s:s, s:b}", "status", "ok", "halted", a->halted));
    if (strcmp(path, "/metrics") == 0 && get)
        return metrics(a, out);
    if (strcmp(path, "/v1/faults") == 0) {
        if (post)
            return post_fault(a, body, len, out);
        if (get)
            return get_faults(a, out);
        return reply_error(out, 405, "method: /v1/faults takes GET or POST");
    }
    if (strncmp(path, "/v1/faults/", 11) == 0) {
        struct afault *f = find_fault(a, path + 11);
        if (!get && !del)
            return reply_error(out, 405, "method: /v1/faults/{id} takes GET or DELETE");
        if (!f)
            return reply_error(out, 404, "id: no such fault");
        json_int_t s = 0;
        if (parse_since(since, &s) < 0)
            return reply_error(out, 400, "since: must be an event seq number (0 or more)");
        if (del)
            IGNORE_RESULT(revert_fault(f, "reverted on request (DELETE)")); /* state says */
        return reply_json(out, 200, fault_json(f, s));
    }
    if (strcmp(path, "/v1/lease") == 0) {
        if (post)
            return post_lease(a, body, len, out);
        return reply_error(out, 405, "method: /v1/lease takes POST");
    }
    if (strcmp(path, "/v1/halt") == 0) {
        if (post)
            return post_halt(a, out);
        if (del) {
            a->halted = false;
            fprintf(stderr, "chaos-agent: halt cleared\n");
            return reply_json(out, 200, json_pack("{s:b}", "halted", 0));
        }
        return reply_error(out, 405, "method: /v1/halt takes POST or DELETE");
    }
    reply_error(out, 404, "path: no such endpoint");
}

/* ---- metrics ---- */

struct textbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

__attribute__((format(printf, 2, 3))) static void tb_printf(struct textbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void histogram_text(struct textbuf *b, const char *name, const char *help,
                           const struct histogram *h)
{
    tb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < N_BOUNDS; i++) {
        cum += h->bucket[i];
        tb_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, hist_bounds[i], cum);
    }
    tb_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n%s_count %" PRIu64 "\n", name,
              h->count, name, h->sum, name, h->count);
}

static void counter_text(struct textbuf *b, const char *name, const char *help, uint64_t v)
{
    tb_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

static void metrics(struct agent *a, struct agent_reply *out)
{
    struct textbuf b = {.cap = 4096};
    if (!(b.p = malloc(b.cap)))
        return reply_error(out, 500, "out of memory");
    tb_printf(&b, "# HELP chaos_agent_faults_active Faults applied and not yet reverted.\n"
                  "# TYPE chaos_agent_faults_active gauge\n");
    /* Every kind this build knows gets a line, 0 included, so a dashboard
     * sees the series before the first fault. */
    char kinds[256];
    snprintf(kinds, sizeof kinds, "%s", fault_kinds_list());
    char *save = NULL;
    for (char *k = strtok_r(kinds, ", ", &save); k; k = strtok_r(NULL, ", ", &save)) {
        unsigned n = 0;
        for (struct afault *f = a->faults; f; f = f->next)
            n += f->ef && strcmp(f->kind, k) == 0 && engine_fault_state(f->ef) == FAULT_ACTIVE;
        tb_printf(&b, "chaos_agent_faults_active{kind=\"%s\"} %u\n", k, n);
    }
    counter_text(&b, "chaos_agent_faults_applied_total", "Faults applied.", a->applied);
    counter_text(&b, "chaos_agent_faults_reverted_total", "Faults reverted.", a->reverted);
    counter_text(&b, "chaos_agent_faults_failed_total",
                 "Faults whose apply or revert failed, or that were aborted.", a->failed);
    histogram_text(&b, "chaos_agent_apply_seconds", "Time to apply a fault.", &a->apply_s);
    histogram_text(&b, "chaos_agent_revert_seconds", "Time to revert a fault.", &a->revert_s);
    counter_text(&b, "chaos_agent_lease_expiries_total", "Controller leases that expired.",
                 a->lease_expiries);
    counter_text(&b, "chaos_agent_recoveries_total",
                 "Faults reverted from the journal at start (left by a crashed agent).",
                 a->recoveries);
    if (b.oom) {
        free(b.p);
        return reply_error(out, 500, "out of memory");
    }
    out->status = 200;
    out->content_type = "text/plain; version=0.0.4";
    out->body = b.p;
}

/* ---- life ---- */

int agent_new(struct loop *loop, const struct agent_config *cfg, unsigned recoveries,
              struct agent **out, struct chaos_err *err)
{
    struct agent *a = calloc(1, sizeof *a);
    if (!a)
        return chaos_err_set(err, ENOMEM, "out of memory");
    a->loop = loop;
    a->cfg = cfg;
    a->tail = &a->faults;
    a->recoveries = recoveries;
    int r = engine_new(loop, cfg->journal, NULL, 0, &a->engine, err);
    if (r < 0) {
        free(a);
        return r;
    }
    *out = a;
    return 0;
}

size_t agent_applied_count(const struct agent *a)
{
    size_t n = 0;
    for (const struct afault *f = a->faults; f; f = f->next)
        n += f->ef && fault_state_applied(engine_fault_state(f->ef));
    return n;
}

int agent_shutdown(struct agent *a, const char *reason, void (*done)(void *arg), void *arg)
{
    a->stopping = true;
    int failed = 0;
    for (struct afault *f = a->faults; f; f = f->next)
        if (revert_fault(f, reason) < 0)
            failed++;
    if (engine_when_drained(a->engine, done, arg) < 0)
        done(arg); /* out of memory: stop now; the reverts themselves are done */
    return failed;
}

void agent_free(struct agent *a)
{
    if (!a)
        return;
    for (struct lease *l = a->leases, *next; l; l = next) {
        next = l->next;
        if (l->timer)
            loop_cancel_timer(a->loop, l->timer);
        free(l->controller);
        free(l);
    }
    for (struct afault *f = a->faults; f; f = f->next)
        unwatch(f);
    /* The engine first: its faults borrow our specs. */
    engine_free(a->engine);
    for (struct afault *f = a->faults, *next; f; f = next) {
        next = f->next;
        fault_spec_free(f->spec);
        free(f->name);
        free(f->kind);
        free(f->controller);
        json_decref(f->events);
        free(f);
    }
    free(a);
}
