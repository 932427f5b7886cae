#include "engine.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "fault.h"
#include "journal.h"
#include "lifecycle.h"
#include "loop.h"
#include "util.h"

struct engine_fault {
    struct engine *engine;
    struct engine_fault *next;
    char *name;
    char id[80];
    const struct fault_spec *spec; /* borrowed: the caller keeps it alive */
    void *state;
    enum fault_state st;           /* moved only by advance() */
    struct fault_env env;
    uint64_t revert_timer;         /* the revert (lasting) or natural end (repeated) */
    uint64_t step_timer;
    engine_event_cb cb;
    void *cb_arg;
    char error[sizeof(((struct chaos_err *)0)->msg)];
};

/* An event waiting to be delivered from the loop, or (f NULL) a call for
 * engine_when_drained. */
struct queued {
    struct queued *next;
    struct engine_fault *f;
    enum engine_event ev;
    void (*call)(void *arg);
    void *call_arg;
    char detail[768];
};

struct engine {
    struct loop *loop;
    struct journal *journal;
    pid_t protected_pids[FAULT_MAX_PROTECTED];
    size_t n_protected;
    struct engine_fault *faults;
    unsigned seq;
    /* Events go out from the loop, never from inside a call: an eventfd,
     * registered once at engine_new, wakes the loop for them, so delivering
     * later never needs a timer that could fail to arm. */
    int wake_fd;
    struct queued *head, **tail;
};

static void on_wake(struct loop *loop, int fd, uint32_t events, void *arg);

int engine_new(struct loop *loop, const char *journal_path, const pid_t *extra_protected, size_t n,
               struct engine **out, struct chaos_err *err)
{
    if (n + 3 > FAULT_MAX_PROTECTED)
        return chaos_err_set(err, EINVAL, "too many protected pids");
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return chaos_err_set(err, ENOMEM, "out of memory");
    e->loop = loop;
    e->tail = &e->head;
    e->protected_pids[e->n_protected++] = 1;
    e->protected_pids[e->n_protected++] = getpid();
    e->protected_pids[e->n_protected++] = getppid();
    for (size_t i = 0; i < n; i++)
        e->protected_pids[e->n_protected++] = extra_protected[i];
    e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->wake_fd < 0) {
        int r = chaos_err_set(err, errno, "engine: eventfd: %s", strerror(errno));
        free(e);
        return r;
    }
    int r = loop_add_fd(loop, e->wake_fd, EPOLLIN, on_wake, e);
    if (r == 0 && (r = loop_set_urgent(loop, e->wake_fd)) < 0)
        loop_del_fd(loop, e->wake_fd);
    if (r < 0) {
        chaos_err_set(err, -r, "engine: event loop: %s", strerror(-r));
        close(e->wake_fd);
        free(e);
        return r;
    }
    if ((r = journal_open(journal_path, &e->journal, err)) < 0) {
        loop_del_fd(loop, e->wake_fd);
        close(e->wake_fd);
        free(e);
        return r;
    }
    *out = e;
    return 0;
}

static void fault_free(struct engine_fault *f)
{
    if (f->state && f->spec->ops->free_state)
        f->spec->ops->free_state(f->state);
    free(f->name);
    free(f);
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    bool keep_journal = false;
    for (struct queued *q = e->head, *next; q; q = next) {
        next = q->next;
        free(q);
    }
    for (struct engine_fault *f = e->faults, *next; f; f = next) {
        next = f->next;
        /* A fault still applied (or whose revert failed: it stays applied in
         * the journal's eyes) keeps the journal for a later recovery. */
        if (f->spec->info.lasting && fault_state_applied(f->st))
            keep_journal = true;
        if (f->revert_timer)
            loop_cancel_timer(e->loop, f->revert_timer);
        if (f->step_timer)
            loop_cancel_timer(e->loop, f->step_timer);
        fault_free(f);
    }
    loop_del_fd(e->loop, e->wake_fd);
    close(e->wake_fd);
    journal_close(e->journal, !keep_journal);
    free(e);
}

/* ---- delivery: later, from the loop ---- */

static void wake(struct engine *e)
{
    uint64_t one = 1;
    /* Fails only when the counter would overflow: it is awake already. */
    IGNORE_RESULT(write(e->wake_fd, &one, sizeof one));
}

static void enqueue(struct engine *e, struct queued *q)
{
    q->next = NULL;
    *e->tail = q;
    e->tail = &q->next;
    wake(e);
}

static void deliver(struct engine_fault *f, enum engine_event ev, const char *detail)
{
    if (f->cb)
        f->cb(f, ev, detail, f->cb_arg);
}

static void queue_event(struct engine_fault *f, enum engine_event ev, const char *detail)
{
    if (!f->cb)
        return;
    struct queued *q = calloc(1, sizeof *q);
    if (!q) {
        /* Out of memory: a re-entrant event is better than a lost one. */
        deliver(f, ev, detail);
        return;
    }
    q->f = f;
    q->ev = ev;
    snprintf(q->detail, sizeof q->detail, "%s", detail ? detail : "");
    enqueue(f->engine, q);
}

static void on_wake(struct loop *loop, int fd, uint32_t events, void *arg)
{
    struct engine *e = arg;
    uint64_t n;
    IGNORE_RESULT(read(fd, &n, sizeof n));
    /* Handlers may queue more (a revert from an event handler): those are
     * taken in this same pass, in order. */
    while (e->head) {
        struct queued *q = e->head;
        e->head = q->next;
        if (!e->head)
            e->tail = &e->head;
        if (q->f)
            deliver(q->f, q->ev, q->detail);
        else
            q->call(q->call_arg);
        free(q);
    }
}

int engine_when_drained(struct engine *e, void (*call)(void *arg), void *arg)
{
    struct queued *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->call = call;
    q->call_arg = arg;
    enqueue(e, q);
    return 0;
}

/* ---- the lifecycle: every state change goes through the table ---- */

/* Feeds what happened to f into the lifecycle table: f takes the next state
 * and, when the table says so, the event is queued with detail. */
static void advance(struct engine_fault *f, enum fault_input in, const char *detail)
{
    const struct fault_transition *t = lifecycle_next(f->st, in);
    if (!t->valid)
        return;
    f->st = t->next;
    if (t->emit)
        queue_event(f, t->event, detail);
}

static void cancel_timers(struct engine_fault *f)
{
    if (f->revert_timer)
        loop_cancel_timer(f->engine->loop, f->revert_timer);
    if (f->step_timer)
        loop_cancel_timer(f->engine->loop, f->step_timer);
    f->revert_timer = f->step_timer = 0;
}

static void on_revert_timer(struct loop *loop, void *arg)
{
    struct engine_fault *f = arg;
    struct chaos_err err = {0};
    f->revert_timer = 0;
    /* Errors are recorded in f and reported through the event callback. */
    IGNORE_RESULT(engine_revert(f->engine, f, &err));
}

static void on_step_timer(struct loop *loop, void *arg);

/* A non-lasting fault is done once it has no more steps to run and its
 * natural duration (a repeated kill: every x count) has passed, so windows
 * "during" it also see the effect of its last round. */
static void finish_if_done(struct engine_fault *f)
{
    if (f->st == FAULT_ACTIVE && !f->spec->info.lasting && !f->step_timer && !f->revert_timer) {
        char d[512];
        engine_fault_describe(f, d, sizeof d);
        advance(f, INPUT_DONE, d);
    }
}

static void on_natural_end(struct loop *loop, void *arg)
{
    struct engine_fault *f = arg;
    f->revert_timer = 0;
    if (f->step_timer) { /* cannot happen with every x count; never outlive the window */
        loop_cancel_timer(loop, f->step_timer);
        f->step_timer = 0;
    }
    finish_if_done(f);
}

/* Arms the timer of f's next round (none when next_step_ms <= 0). Returns 0,
 * or the positive errno of a timer that could not be armed. */
static int schedule_step(struct engine_fault *f, int64_t next_step_ms)
{
    f->step_timer = 0;
    if (next_step_ms <= 0)
        return 0;
    f->step_timer = loop_add_timer(f->engine->loop, loop_now_ms() + next_step_ms, on_step_timer, f);
    return f->step_timer ? 0 : errno ? errno : ENOMEM;
}

/* A timer f depends on (`timer`: "revert timer", ...) could not be armed
 * (errno e). f must not run on without it: a lasting fault whose revert
 * timer never fires would never be reverted. So f's other timers are
 * cancelled and a lasting part is reverted at once (the journal records the
 * revert); the lifecycle then ends f: at apply time as APPLY_FAILED, later
 * as ABORTED, or REVERT_FAILED when that revert fails too (the journal keeps
 * the record for `chaos recover`). The reason goes to f->error and err:
 * "cannot arm its revert timer: ...; reverted". Returns -e. */
static int end_unarmed(struct engine_fault *f, const char *timer, int e, struct chaos_err *err)
{
    struct engine *eng = f->engine;
    cancel_timers(f);
    char what[sizeof f->error];
    enum fault_input in = INPUT_UNSAFE_UNDONE;
    if (f->spec->info.lasting && f->spec->ops->revert) {
        struct chaos_err rerr = {0}, jerr = {0};
        if (f->spec->ops->revert(&f->env, f->state, &rerr) < 0) {
            in = INPUT_UNSAFE_STUCK;
            snprintf(what, sizeof what,
                     "its revert failed too: %s; the journal keeps it for `chaos recover`",
                     rerr.msg);
        } else if (journal_record_revert(eng->journal, f->id, &jerr) < 0) {
            snprintf(what, sizeof what, "reverted, but %s", jerr.msg);
        } else {
            snprintf(what, sizeof what, "reverted");
        }
    } else {
        snprintf(what, sizeof what, "no further rounds run (what ran cannot be undone)");
    }
    /* No fault name: like every apply error, the caller puts it in front. */
    chaos_err_set(err, e, "cannot arm its %s: %s; %s", timer, strerror(e), what);
    snprintf(f->error, sizeof f->error, "%s", err->msg);
    advance(f, in, f->error);
    return -e;
}

static void on_step_timer(struct loop *loop, void *arg)
{
    struct engine_fault *f = arg;
    f->step_timer = 0;
    if (f->st != FAULT_ACTIVE)
        return;
    int64_t next = 0;
    struct chaos_err err = {0};
    int r = f->spec->ops->step(&f->env, f->state, &next, &err);
    int unarmed = schedule_step(f, next);
    if (r < 0) {
        snprintf(f->error, sizeof f->error, "%s", err.msg);
        advance(f, INPUT_STEP_FAILED, err.msg);
    } else {
        char d[512];
        engine_fault_describe(f, d, sizeof d);
        advance(f, INPUT_STEPPED, d);
    }
    if (unarmed) {
        struct chaos_err uerr = {0};
        IGNORE_RESULT(end_unarmed(f, "timer for its next round", unarmed, &uerr));
        return;
    }
    finish_if_done(f);
}

static struct engine_fault *fault_new(struct engine *e, const char *name,
                                      const struct fault_spec *spec, engine_event_cb cb, void *arg)
{
    struct engine_fault *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name))) {
        free(f);
        return NULL;
    }
    f->engine = e;
    f->spec = spec;
    f->cb = cb;
    f->cb_arg = arg;
    f->st = FAULT_PENDING;
    snprintf(f->id, sizeof f->id, "f%u-%d", ++e->seq, (int)getpid());
    memcpy(f->env.protected_pids, e->protected_pids, sizeof e->protected_pids);
    f->env.n_protected = e->n_protected;
    f->env.journal = e->journal;
    f->env.fault_id = f->id;
    f->env.kind = spec->ops->kind;
    f->env.loop = e->loop;
    f->env.deadline_ms =
        spec->info.lasting && spec->duration_ms >= 0 ? loop_unix_ms() + spec->duration_ms : 0;
    f->next = e->faults;
    e->faults = f;
    return f;
}

/* The timers an applied fault needs: its revert (lasting), its natural end
 * (repeated) and its next round. Returns 0, or end_unarmed's result. */
static int arm_timers(struct engine_fault *f, int64_t next_step_ms, struct chaos_err *err)
{
    struct engine *e = f->engine;
    const struct fault_info *info = &f->spec->info;
    if (info->lasting) {
        f->revert_timer =
            loop_add_timer(e->loop, loop_now_ms() + f->spec->duration_ms, on_revert_timer, f);
        if (!f->revert_timer)
            return end_unarmed(f, "revert timer", errno ? errno : ENOMEM, err);
    } else if (info->natural_duration_ms > 0) {
        f->revert_timer = loop_add_timer(e->loop, loop_now_ms() + info->natural_duration_ms,
                                         on_natural_end, f);
        if (!f->revert_timer)
            return end_unarmed(f, "end timer", errno ? errno : ENOMEM, err);
    }
    int unarmed = schedule_step(f, next_step_ms);
    return unarmed ? end_unarmed(f, "step timer", unarmed, err) : 0;
}

int engine_apply(struct engine *e, const char *name, const struct fault_spec *spec,
                 engine_event_cb cb, void *arg, struct engine_fault **out, struct chaos_err *err)
{
    struct engine_fault *f = fault_new(e, name, spec, cb, arg);
    if (!f)
        return chaos_err_set(err, ENOMEM, "out of memory");
    *out = f;
    int64_t next = 0;
    int r = spec->ops->apply(&f->env, spec->spec, &f->state, &next, err);
    if (r < 0) {
        snprintf(f->error, sizeof f->error, "%s", err->msg);
        /* apply left nothing behind; close any undo record it journalled. */
        struct chaos_err jerr = {0};
        if (spec->info.lasting && journal_record_revert(e->journal, f->id, &jerr) < 0)
            snprintf(f->error, sizeof f->error, "%s (and %s)", err->msg, jerr.msg);
        advance(f, INPUT_APPLY_FAILED, f->error);
        return r;
    }
    /* Applied: from here on a timer that cannot be armed undoes it rather
     * than leave it to a timer that will never fire. */
    if ((r = arm_timers(f, next, err)) < 0)
        return r;
    char d[512];
    engine_fault_describe(f, d, sizeof d);
    advance(f, INPUT_APPLIED, d);
    finish_if_done(f);
    return 0;
}

int engine_revert(struct engine *e, struct engine_fault *f, struct chaos_err *err)
{
    if (f->st != FAULT_ACTIVE)
        return 0;
    cancel_timers(f);
    advance(f, INPUT_REVERT, NULL);
    if (f->spec->info.lasting && f->spec->ops->revert) {
        int r = f->spec->ops->revert(&f->env, f->state, err);
        if (r < 0) {
            snprintf(f->error, sizeof f->error, "revert failed: %s", err->msg);
            advance(f, INPUT_REVERT_FAILED, f->error);
            return r;
        }
        struct chaos_err jerr = {0};
        if (journal_record_revert(e->journal, f->id, &jerr) < 0)
            snprintf(f->error, sizeof f->error, "reverted, but %s", jerr.msg);
    }
    char d[512];
    engine_fault_describe(f, d, sizeof d);
    advance(f, INPUT_REVERTED, d);
    return 0;
}

int engine_revert_all(struct engine *e)
{
    int failed = 0;
    for (struct engine_fault *f = e->faults; f; f = f->next) {
        struct chaos_err err = {0};
        if (engine_revert(e, f, &err) < 0)
            failed++;
    }
    return failed;
}

size_t engine_active_count(const struct engine *e)
{
    size_t n = 0;
    for (const struct engine_fault *f = e->faults; f; f = f->next)
        n += f->st == FAULT_ACTIVE;
    return n;
}

const char *engine_fault_name(const struct engine_fault *f)
{
    return f->name;
}

const char *engine_fault_id(const struct engine_fault *f)
{
    return f->id;
}

enum fault_state engine_fault_state(const struct engine_fault *f)
{
    return f->st;
}

const char *engine_fault_error(const struct engine_fault *f)
{
    return f->error;
}

void engine_fault_describe(const struct engine_fault *f, char *buf, size_t size)
{
    if (f->state && f->spec->ops->describe)
        f->spec->ops->describe(f->state, buf, size);
    else
        snprintf(buf, size, "%s fault '%s'", f->spec->ops->kind, f->name);
}

int engine_journal_dir(const char *state_dir, char *buf, size_t size)
{
    if (snprintf(buf, size, "%s/journal", state_dir) >= (int)size)
        return -ENAMETOOLONG;
    return 0;
}

int engine_journal_path(const char *state_dir, pid_t owner, char *buf, size_t size)
{
    if (snprintf(buf, size, "%s/journal/run-%d.jsonl", state_dir, (int)owner) >= (int)size)
        return -ENAMETOOLONG;
    return 0;
}
