/* The remote backend: faults applied by chaos-agents (docs/agent.md, API)
 * through libcurl's multi interface on the run's loop (probe_curl.c), so one
 * step reaches hundreds of agents at once. A scenario fault addressed to N
 * agents is N agent faults ("parts"); the runner sees one fault whose events
 * sum them up:
 *   APPLIED       once every part is in place;
 *   STEPPED ...   a round on any part;
 *   FINISHED / REVERTED   when every part ended so;
 *   APPLY_FAILED  a part was refused or unreachable before all were in
 *                 place: the others are reverted first;
 *   ABORTED       a part ended early (halt, lease, target gone, an agent
 *                 lost): the others are reverted first;
 *   REVERT_FAILED a revert failed or could not be confirmed.
 * Every part is applied with the run's controller id, and each agent's lease
 * is renewed at a third of its period while a part lives there, so a
 * controller that dies leaves nothing behind for longer than the lease. */
#include "backend_remote.h"

#include <errno.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "fleet.h"
#include "jsonv.h"
#include "probe_curl.h"
#include "util.h"

#define REMOTE_POLL_MS 250
#define REMOTE_LEASE_MIN_MS 100
#define REMOTE_END_EARLY_MS 5

struct remote_agent {
    struct remote *r;
    const struct fleet_agent *a;
    bool leasing;       /* a renewal is scheduled or in flight */
    bool lease_busy;
    uint64_t lease_timer;
    int64_t lease_every_ms;
};

enum part_phase { PART_POSTING, PART_LIVE, PART_ENDED };

struct part {
    struct backend_fault *f;
    struct remote_agent *ra;
    char id[96];
    enum part_phase phase;
    bool applied, busy, revert_sent;
    long long seq;
    enum backend_event outcome; /* when ended */
    bool bad;                   /* ended in a way that ends the fault early */
    char detail[512];
};

struct backend_fault {
    struct remote *r;
    char *name;
    backend_event_cb cb;
    void *arg;
    enum fault_state st;
    struct part *parts;
    size_t n;
    char *body;
    bool applied_sent, ended, failing, asked;
    uint64_t end_timer; /* the planned end of a lasting fault */
    char why[768]; /* the first bad part's story */
};

struct remote {
    struct loop *loop;
    struct pcurl *pc;
    char controller[96];
    struct remote_agent *agents;
    size_t n_agents, cap_agents;
    struct backend_fault **faults;
    size_t n_faults, cap_faults;
    uint64_t poll_timer;
    backend_done_cb all_done;
    void *all_arg;
    uint64_t done_timer;
};

/* ---- helpers ---- */

static struct remote_agent *agent_of(struct remote *r, const struct fleet_agent *a)
{
    for (size_t i = 0; i < r->n_agents; i++)
        if (r->agents[i].a == a)
            return &r->agents[i];
    return NULL;
}

/* A stable slot per agent (the array is allocated once in open for every
 * agent a run may use, so pointers into it stay valid). */
static struct remote_agent *agent_add(struct remote *r, const struct fleet_agent *a)
{
    struct remote_agent *ra = agent_of(r, a);
    if (ra || r->n_agents == r->cap_agents)
        return ra;
    ra = &r->agents[r->n_agents++];
    *ra = (struct remote_agent){.r = r, .a = a};
    return ra;
}

/* {"error": "..."} of a refusal, or the body's start. */
static void reply_error(const struct pcurl_reply *rep, char *buf, size_t size)
{
    if (rep->error) {
        snprintf(buf, size, "%s", rep->error);
        return;
    }
    json_t *j = json_loadb(rep->body, rep->len, 0, NULL);
    const char *e = json_string_value(json_object_get(j, "error"));
    snprintf(buf, size, "status %d: %.300s", rep->status, e ? e : rep->body);
    json_decref(j);
}

static enum fault_state state_named(const char *s)
{
    static const struct {
        const char *name;
        enum fault_state st;
    } map[] = {{"pending", FAULT_PENDING},         {"active", FAULT_ACTIVE},
               {"reverting", FAULT_REVERTING},     {"reverted", FAULT_REVERTED},
               {"finished", FAULT_FINISHED},       {"apply_failed", FAULT_APPLY_FAILED},
               {"aborted", FAULT_ABORTED},         {"revert_failed", FAULT_REVERT_FAILED}};
    for (size_t i = 0; s && i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i].name, s) == 0)
            return map[i].st;
    return FAULT_ACTIVE;
}

static void fault_update(struct backend_fault *f);
static void send_delete(struct part *p);

static void emit(struct backend_fault *f, enum backend_event ev, enum fault_state st,
                 const char *detail)
{
    f->st = st;
    f->cb(f, ev, st, detail, f->arg);
}

/* The part ended; bad: in a way that ends the whole fault early. */
static void part_end(struct part *p, enum backend_event outcome, bool bad, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void part_end(struct part *p, enum backend_event outcome, bool bad, const char *fmt, ...)
{
    if (p->phase == PART_ENDED)
        return;
    p->phase = PART_ENDED;
    p->outcome = outcome;
    p->bad = bad;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof p->detail, fmt, ap);
    va_end(ap);
    struct backend_fault *f = p->f;
    if (bad && !f->failing) {
        f->failing = true;
        snprintf(f->why, sizeof f->why, "agent '%s': %s", p->ra->a->name, p->detail);
    }
}

/* An agent event on part p. */
static void part_event(struct part *p, const char *ev, const char *detail)
{
    struct backend_fault *f = p->f;
    char line[640];
    snprintf(line, sizeof line, "agent '%s': %s", p->ra->a->name, detail);
    if (strcmp(ev, "applied") == 0) {
        p->applied = true;
        snprintf(p->detail, sizeof p->detail, "%s", detail);
    } else if (strcmp(ev, "stepped") == 0 || strcmp(ev, "step_failed") == 0) {
        if (f->applied_sent && !f->ended)
            emit(f, strcmp(ev, "stepped") == 0 ? BACKEND_STEPPED : BACKEND_STEP_FAILED, f->st,
                 line);
    } else if (strcmp(ev, "finished") == 0) {
        part_end(p, BACKEND_FINISHED, false, "%s", detail);
    } else if (strcmp(ev, "reverted") == 0) {
        /* Early, and not asked for: halted, a lease, the target gone, the
         * agent stopping. The experiment did not run as written. */
        bool early = !p->revert_sent && !f->asked && strncmp(detail, "its duration", 12) != 0;
        part_end(p, BACKEND_REVERTED, early, early ? "reverted early: %s" : "%s", detail);
    } else if (strcmp(ev, "revert_failed") == 0) {
        part_end(p, BACKEND_REVERT_FAILED, true, "revert failed: %s", detail);
    } else if (strcmp(ev, "aborted") == 0 || strcmp(ev, "apply_failed") == 0) {
        part_end(p, BACKEND_ABORTED, true, "%s: %s", ev, detail);
    }
}

/* A fault object from the agent (POST, GET or DELETE reply). */
static void part_take(struct part *p, const json_t *obj)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    if (id && !*p->id)
        snprintf(p->id, sizeof p->id, "%s", id);
    const json_t *evs = json_object_get(obj, "events");
    size_t i;
    const json_t *e;
    json_array_foreach(evs, i, e) {
        long long seq = (long long)json_integer_value(json_object_get(e, "seq"));
        if (seq <= p->seq)
            continue;
        p->seq = seq;
        const char *ev = json_string_value(json_object_get(e, "event"));
        const char *d = json_string_value(json_object_get(e, "detail"));
        if (ev && p->phase != PART_ENDED)
            part_event(p, ev, d ? d : "");
    }
    /* The agent applies before it answers; its "applied" event may come later. */
    enum fault_state st = state_named(json_string_value(json_object_get(obj, "state")));
    if (!p->applied && (st == FAULT_ACTIVE || st == FAULT_FINISHED || st == FAULT_REVERTING)) {
        const char *d = json_string_value(json_object_get(obj, "description"));
        p->applied = true;
        snprintf(p->detail, sizeof p->detail, "%s", d ? d : "applied");
    }
}

/* ---- the summed-up fault ---- */

static void applied_detail(const struct backend_fault *f, char *buf, size_t size)
{
    int off = f->n == 1 ? snprintf(buf, size, "on agent '%s': %s", f->parts[0].ra->a->name,
                                   f->parts[0].detail)
                        : snprintf(buf, size, "on %zu agents:", f->n);
    for (size_t i = 0; f->n > 1 && i < f->n && off > 0 && (size_t)off < size; i++)
        off += snprintf(buf + off, size - (size_t)off, "%s %s: %s", i ? ";" : "",
                        f->parts[i].ra->a->name, f->parts[i].detail);
}

static void maybe_all_done(struct remote *r);

static void fault_final(struct backend_fault *f)
{
    if (f->end_timer)
        loop_cancel_timer(f->r->loop, f->end_timer);
    f->end_timer = 0;
    bool finished = true, revert_failed = false;
    for (size_t i = 0; i < f->n; i++) {
        finished &= f->parts[i].outcome == BACKEND_FINISHED;
        revert_failed |= f->parts[i].outcome == BACKEND_REVERT_FAILED;
    }
    f->ended = true;
    if (revert_failed)
        emit(f, BACKEND_REVERT_FAILED, FAULT_REVERT_FAILED, f->why);
    else if (f->failing && !f->applied_sent)
        emit(f, BACKEND_APPLY_FAILED, FAULT_APPLY_FAILED, f->why);
    else if (f->failing)
        emit(f, BACKEND_ABORTED, FAULT_ABORTED, f->why);
    else if (finished)
        emit(f, BACKEND_FINISHED, FAULT_FINISHED,
             f->n == 1 ? f->parts[0].detail : "finished on every agent");
    else
        emit(f, BACKEND_REVERTED, FAULT_REVERTED,
             f->n == 1 ? f->parts[0].detail : "reverted on every agent");
    maybe_all_done(f->r);
}

static void fault_update(struct backend_fault *f)
{
    if (f->ended)
        return;
    bool all_applied = true, all_ended = true;
    for (size_t i = 0; i < f->n; i++) {
        all_applied &= f->parts[i].applied;
        all_ended &= f->parts[i].phase == PART_ENDED;
    }
    if (!f->applied_sent && !f->failing && all_applied) {
        char d[1024];
        applied_detail(f, d, sizeof d);
        f->applied_sent = true;
        emit(f, BACKEND_APPLIED, FAULT_ACTIVE, d);
        if (f->ended)
            return; /* the handler reverted it (the run is finishing) */
    }
    if (f->failing || f->asked)
        for (size_t i = 0; i < f->n; i++)
            if (f->parts[i].phase == PART_LIVE)
                send_delete(&f->parts[i]);
    if (all_ended)
        fault_final(f);
}

/* ---- requests ---- */

static void lease_schedule(struct remote_agent *ra);

static void on_posted(const struct pcurl_reply *rep, void *arg)
{
    struct part *p = arg;
    p->busy = false;
    json_t *obj = rep->error || rep->status != 201 ? NULL : json_loadb(rep->body, rep->len, 0, NULL);
    if (!obj) {
        char why[400];
        reply_error(rep, why, sizeof why);
        part_end(p, BACKEND_APPLY_FAILED, true, "%s %s (%s)",
                 rep->error ? "could not be reached:" : "refused the fault:", why,
                 p->ra->a->conn.url);
    } else {
        p->phase = PART_LIVE;
        part_take(p, obj);
        json_decref(obj);
        if (!p->ra->leasing)
            lease_schedule(p->ra);
    }
    fault_update(p->f);
}

static void on_polled(const struct pcurl_reply *rep, void *arg)
{
    struct part *p = arg;
    p->busy = false;
    if (p->phase != PART_LIVE)
        return;
    json_t *obj = rep->error || rep->status != 200 ? NULL : json_loadb(rep->body, rep->len, 0, NULL);
    if (obj) {
        part_take(p, obj);
        json_decref(obj);
    } else if (rep->status == 404) {
        part_end(p, BACKEND_ABORTED, true,
                 "no longer knows fault %s (it restarted: its journal recovery reverted it)",
                 p->id);
    } else {
        char why[400];
        reply_error(rep, why, sizeof why);
        part_end(p, BACKEND_ABORTED, true,
                 "could not be reached (%s): %s; its lease reverts the fault there",
                 p->ra->a->conn.url, why);
    }
    fault_update(p->f);
}

static void on_deleted(const struct pcurl_reply *rep, void *arg)
{
    struct part *p = arg;
    p->busy = false;
    if (p->phase == PART_ENDED) {
        fault_update(p->f);
        return;
    }
    json_t *obj = rep->error || rep->status != 200 ? NULL : json_loadb(rep->body, rep->len, 0, NULL);
    if (obj) {
        part_take(p, obj);
        enum fault_state st = state_named(json_string_value(json_object_get(obj, "state")));
        if (p->phase != PART_ENDED && st == FAULT_REVERT_FAILED)
            part_end(p, BACKEND_REVERT_FAILED, true, "revert failed: %s",
                     json_string_value(json_object_get(obj, "error")) ?: "?");
        else if (p->phase != PART_ENDED)
            part_end(p, st == FAULT_FINISHED ? BACKEND_FINISHED : BACKEND_REVERTED, false,
                     "reverted on request");
        json_decref(obj);
    } else if (rep->status == 404) {
        part_end(p, BACKEND_REVERTED, false, "gone (the agent restarted and recovered it)");
    } else {
        char why[400];
        reply_error(rep, why, sizeof why);
        part_end(p, BACKEND_REVERT_FAILED, true,
                 "the revert could not be confirmed (%s): %s; its lease reverts the fault there",
                 p->ra->a->conn.url, why);
    }
    fault_update(p->f);
}

static void part_request(struct part *p, const char *method, const char *path, const char *body,
                         pcurl_done_cb done)
{
    struct chaos_err e = {0};
    if (pcurl_request(p->f->r->pc, &p->ra->a->conn, method, path, body, done, NULL, p, &e) < 0) {
        part_end(p, strcmp(method, "DELETE") == 0 ? BACKEND_REVERT_FAILED : BACKEND_ABORTED, true,
                 "%s %s: %s", method, path, e.msg);
        return;
    }
    p->busy = true;
}

static void send_delete(struct part *p)
{
    if (p->revert_sent || p->busy || p->phase != PART_LIVE)
        return; /* a reply in flight re-runs fault_update, which sends it then */
    p->revert_sent = true;
    char path[160];
    snprintf(path, sizeof path, "/v1/faults/%s", p->id);
    part_request(p, "DELETE", path, NULL, on_deleted);
}

static void on_poll_tick(struct loop *loop, void *arg)
{
    struct remote *r = arg;
    /* Unarmed, the next tick is missed; the replies in flight and the
     * leases still move every fault on. */
    r->poll_timer = loop_add_timer(loop, loop_now_ms() + REMOTE_POLL_MS, on_poll_tick, r);
    for (size_t i = 0; i < r->n_faults; i++) {
        struct backend_fault *f = r->faults[i];
        for (size_t k = 0; !f->ended && k < f->n; k++) {
            struct part *p = &f->parts[k];
            if (p->phase != PART_LIVE || p->busy || p->revert_sent)
                continue;
            char path[192];
            snprintf(path, sizeof path, "/v1/faults/%s?since=%lld", p->id, p->seq);
            part_request(p, "GET", path, NULL, on_polled);
        }
        fault_update(f);
    }
}

/* ---- leases ---- */

static bool agent_has_live_parts(const struct remote_agent *ra)
{
    const struct remote *r = ra->r;
    for (size_t i = 0; i < r->n_faults; i++)
        for (size_t k = 0; k < r->faults[i]->n; k++)
            if (r->faults[i]->parts[k].ra == ra && r->faults[i]->parts[k].phase != PART_ENDED)
                return true;
    return false;
}

/* The agent is lost: every part there ends (its lease reverts them). */
static void agent_lost(struct remote_agent *ra, const char *why)
{
    struct remote *r = ra->r;
    for (size_t i = 0; i < r->n_faults; i++) {
        struct backend_fault *f = r->faults[i];
        for (size_t k = 0; k < f->n; k++)
            if (f->parts[k].ra == ra && f->parts[k].phase == PART_LIVE && !f->parts[k].busy)
                part_end(&f->parts[k], BACKEND_ABORTED, true,
                         "lease renewal failed (%s): %s; its lease reverts the fault there",
                         ra->a->conn.url, why);
        fault_update(f);
    }
}

static void on_lease_tick(struct loop *loop, void *arg);

static void on_leased(const struct pcurl_reply *rep, void *arg)
{
    struct remote_agent *ra = arg;
    ra->lease_busy = false;
    json_t *obj = rep->error || rep->status != 200 ? NULL : json_loadb(rep->body, rep->len, 0, NULL);
    if (!obj) {
        char why[400];
        reply_error(rep, why, sizeof why);
        ra->leasing = false;
        agent_lost(ra, why);
        return;
    }
    int64_t ms = (int64_t)json_integer_value(json_object_get(obj, "expires_in_ms"));
    json_decref(obj);
    ra->lease_every_ms = ms / 3 > REMOTE_LEASE_MIN_MS ? ms / 3 : REMOTE_LEASE_MIN_MS;
    if (!agent_has_live_parts(ra)) {
        ra->leasing = false;
        return;
    }
    ra->lease_timer = loop_add_timer(ra->r->loop, loop_now_ms() + ra->lease_every_ms,
                                     on_lease_tick, ra);
    if (!ra->lease_timer) {
        ra->leasing = false;
        agent_lost(ra, "the lease renewal timer could not be armed");
    }
}

static void on_lease_tick(struct loop *loop, void *arg)
{
    struct remote_agent *ra = arg;
    (void)loop;
    ra->lease_timer = 0;
    char body[160];
    snprintf(body, sizeof body, "{\"controller\": \"%s\"}", ra->r->controller);
    struct chaos_err e = {0};
    if (pcurl_request(ra->r->pc, &ra->a->conn, "POST", "/v1/lease", body, on_leased, NULL, ra,
                      &e) < 0) {
        ra->leasing = false;
        agent_lost(ra, e.msg);
        return;
    }
    ra->lease_busy = true;
}

/* The first renewal goes at once: its answer says the agent's period. */
static void lease_schedule(struct remote_agent *ra)
{
    ra->leasing = true;
    on_lease_tick(ra->r->loop, ra);
}

/* ---- the ops ---- */

static int remote_open(struct loop *loop, const struct backend_options *opt, void **ctx,
                       struct chaos_err *err)
{
    struct remote *r = calloc(1, sizeof *r);
    if (!r)
        return chaos_err_set(err, ENOMEM, "remote: out of memory");
    r->loop = loop;
    snprintf(r->controller, sizeof r->controller, "%s", opt->controller_id ? opt->controller_id
                                                                           : "chaos");
    r->cap_agents = opt->fleet ? opt->fleet->n : 0;
    int rc;
    if (!(r->agents = calloc(r->cap_agents ? r->cap_agents : 1, sizeof *r->agents))) {
        rc = chaos_err_set(err, ENOMEM, "remote: out of memory");
    } else if ((rc = pcurl_new(loop, &r->pc, err)) == 0) {
        *ctx = r;
        return 0;
    }
    free(r->agents);
    free(r);
    return rc;
}

static void remote_close(void *ctx)
{
    struct remote *r = ctx;
    if (!r)
        return;
    pcurl_free(r->pc); /* drops replies in flight; their parts are freed below */
    if (r->poll_timer)
        loop_cancel_timer(r->loop, r->poll_timer);
    if (r->done_timer)
        loop_cancel_timer(r->loop, r->done_timer);
    for (size_t i = 0; i < r->n_agents; i++)
        if (r->agents[i].lease_timer)
            loop_cancel_timer(r->loop, r->agents[i].lease_timer);
    for (size_t i = 0; i < r->n_faults; i++) {
        if (r->faults[i]->end_timer)
            loop_cancel_timer(r->loop, r->faults[i]->end_timer);
        free(r->faults[i]->parts);
        free(r->faults[i]->name);
        free(r->faults[i]->body);
        free(r->faults[i]);
    }
    free(r->faults);
    free(r->agents);
    free(r);
}

/* What an agent is sent: the fault as written, without what only the
 * controller reads (at, agent, on_round_failure), with our controller id. */
static char *agent_body(const struct remote *r, const json_t *fault)
{
    static const char *const keep[] = {"name", "kind", "target", "params", "duration", NULL};
    json_t *b = json_object();
    for (size_t i = 0; b && keep[i]; i++) {
        json_t *v = json_object_get(fault, keep[i]);
        if (v && json_object_set(b, keep[i], v) < 0) {
            json_decref(b);
            return NULL;
        }
    }
    char *text = b && json_object_set_new(b, "controller", json_string(r->controller)) == 0
                     ? json_dumps(b, JSON_COMPACT)
                     : NULL;
    json_decref(b);
    return text;
}

static int track(struct remote *r, struct backend_fault *f)
{
    if (r->n_faults == r->cap_faults) {
        size_t cap = r->cap_faults ? 2 * r->cap_faults : 16;
        struct backend_fault **v = realloc(r->faults, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        r->faults = v;
        r->cap_faults = cap;
    }
    r->faults[r->n_faults++] = f;
    return 0;
}

/* The planned end, a little before each agent's own (it started counting
 * when our request reached it, after we sent it): the windows close and the
 * reverts go out; the agents' durations stay the safety net. */
static void on_planned_end(struct loop *loop, void *arg)
{
    struct backend_fault *f = arg;
    (void)loop;
    f->end_timer = 0;
    if (f->ended || f->asked)
        return;
    f->asked = true;
    emit(f, BACKEND_ENDING, FAULT_REVERTING, "its duration ended");
    if (!f->ended)
        fault_update(f);
}

static int remote_apply(void *ctx, const struct backend_request *req, backend_event_cb cb,
                        void *arg, struct backend_fault **out, struct chaos_err *err)
{
    struct remote *r = ctx;
    if (!req->n_agents || !req->json)
        return chaos_err_set(err, EINVAL, "fault '%s': no agent to send it to", req->name);
    struct backend_fault *f = calloc(1, sizeof *f);
    if (!f || !(f->parts = calloc(req->n_agents, sizeof *f->parts)) ||
        !(f->name = strdup(req->name)) || !(f->body = agent_body(r, req->json)) || track(r, f) < 0) {
        if (f) {
            free(f->parts);
            free(f->name);
            free(f->body);
        }
        free(f);
        return chaos_err_set(err, ENOMEM, "fault '%s': out of memory", req->name);
    }
    *f = (struct backend_fault){.r = r, .name = f->name, .cb = cb, .arg = arg, .st = FAULT_PENDING,
                                .parts = f->parts, .n = req->n_agents, .body = f->body};
    /* Polling is how the parts' ends are seen: without its timer the fault
     * is not sent at all. */
    if (!r->poll_timer &&
        !(r->poll_timer = loop_add_timer(r->loop, loop_now_ms() + REMOTE_POLL_MS, on_poll_tick, r))) {
        r->n_faults--;
        free(f->parts);
        free(f->name);
        free(f->body);
        free(f);
        return chaos_err_set(err, EAGAIN, "fault '%s': the polling timer could not be armed",
                             req->name);
    }
    int64_t duration_ms = -1;
    struct chaos_err de = {0};
    if (jv_duration(req->json, "", "duration", false, &duration_ms, &de) < 0)
        duration_ms = -1; /* checked when the scenario was loaded */
    if (duration_ms > 0 &&
        !(f->end_timer = loop_add_timer(r->loop, loop_now_ms() + duration_ms - REMOTE_END_EARLY_MS,
                                        on_planned_end, f))) {
        r->n_faults--;
        free(f->parts);
        free(f->name);
        free(f->body);
        free(f);
        return chaos_err_set(err, EAGAIN, "fault '%s': its end timer could not be armed: not sent",
                             req->name);
    }
    for (size_t i = 0; i < f->n; i++) {
        struct remote_agent *ra = agent_add(r, req->agents[i]);
        f->parts[i] = (struct part){.f = f, .ra = ra};
        if (!ra) {
            part_end(&f->parts[i], BACKEND_APPLY_FAILED, true, "not in the run's inventory");
            continue;
        }
        part_request(&f->parts[i], "POST", "/v1/faults", f->body, on_posted);
    }
    *out = f;
    /* Parts that failed synchronously are judged from the loop, never
     * from inside this call (the contract): the next poll tick, or the
     * replies of the others, run fault_update. */
    return 0;
}

static int remote_revert(void *ctx, struct backend_fault *f, struct chaos_err *err)
{
    (void)ctx;
    (void)err;
    if (f->ended)
        return 0;
    f->asked = true;
    for (size_t i = 0; i < f->n; i++)
        send_delete(&f->parts[i]);
    return 0;
}

static void on_done_timer(struct loop *loop, void *arg)
{
    struct remote *r = arg;
    (void)loop;
    r->done_timer = 0;
    maybe_all_done(r);
}

static void maybe_all_done(struct remote *r)
{
    if (!r->all_done)
        return;
    int failed = 0;
    for (size_t i = 0; i < r->n_faults; i++) {
        if (!r->faults[i]->ended)
            return;
        failed += r->faults[i]->st == FAULT_REVERT_FAILED;
    }
    backend_done_cb done = r->all_done;
    r->all_done = NULL;
    done(failed, r->all_arg);
}

static void remote_revert_all(void *ctx, backend_done_cb done, void *arg)
{
    struct remote *r = ctx;
    r->all_done = done;
    r->all_arg = arg;
    for (size_t i = 0; i < r->n_faults; i++)
        IGNORE_RESULT(remote_revert(r, r->faults[i], NULL));
    /* From the loop, even when nothing is left to wait for. */
    r->done_timer = loop_add_timer(r->loop, loop_now_ms(), on_done_timer, r);
    if (!r->done_timer)
        maybe_all_done(r);
}

static enum fault_state remote_state(const struct backend_fault *f)
{
    return f->st;
}

const struct backend_ops backend_remote = {
    .name = "remote",
    .open = remote_open,
    .close = remote_close,
    .apply = remote_apply,
    .revert = remote_revert,
    .revert_all = remote_revert_all,
    .state = remote_state,
};
