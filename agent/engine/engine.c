#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fault.h"
#include "journal.h"
#include "loop.h"
#include "util.h"

struct engine_fault {
    struct engine *engine;
    struct engine_fault *next;
    char *name;
    char id[80];
    const struct fault_spec *spec; /* borrowed: the scenario owns it */
    void *state;
    enum fault_state st;
    struct fault_env env;
    uint64_t revert_timer;
    uint64_t step_timer;
    engine_event_cb cb;
    void *cb_arg;
    bool revert_failed;
    char error[sizeof(((struct chaos_err *)0)->msg)];
};

struct engine {
    struct loop *loop;
    struct journal *journal;
    pid_t protected_pids[FAULT_MAX_PROTECTED];
    size_t n_protected;
    struct engine_fault *faults;
    unsigned seq;
};

/* ---- the engine ---- */

int engine_new(struct loop *loop, const char *journal_path, const pid_t *extra_protected, size_t n,
               struct engine **out, struct chaos_err *err)
{
    if (n + 3 > FAULT_MAX_PROTECTED)
        return chaos_err_set(err, EINVAL, "too many protected pids");
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return chaos_err_set(err, ENOMEM, "out of memory");
    e->loop = loop;
    e->protected_pids[e->n_protected++] = 1;
    e->protected_pids[e->n_protected++] = getpid();
    e->protected_pids[e->n_protected++] = getppid();
    for (size_t i = 0; i < n; i++)
        e->protected_pids[e->n_protected++] = extra_protected[i];
    int r = journal_open(journal_path, &e->journal, err);
    if (r < 0) {
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
    for (struct engine_fault *f = e->faults, *next; f; f = next) {
        next = f->next;
        if (f->spec->info.lasting && (f->st == FAULT_ACTIVE || f->revert_failed))
            keep_journal = true;
        if (f->revert_timer)
            loop_cancel_timer(e->loop, f->revert_timer);
        if (f->step_timer)
            loop_cancel_timer(e->loop, f->step_timer);
        fault_free(f);
    }
    /* A fault still active (or whose revert failed: it stays active in the
     * journal's eyes) keeps the journal for a later recovery. */
    journal_close(e->journal, !keep_journal);
    free(e);
}

static void emit(struct engine_fault *f, enum engine_event ev, const char *detail)
{
    if (f->cb)
        f->cb(f, ev, detail, f->cb_arg);
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
static void finish_if_done(struct engine_fault *f);

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
 * cancelled, a lasting part is reverted at once (the journal records the
 * revert), and f ends FAULT_FAILED with the reason in f->error and err:
 * "cannot arm its revert timer: ...; reverted". When that revert
 * fails too, f->revert_failed is set and the journal keeps the record for
 * `chaos recover`. Emits nothing; returns -e. */
static int end_unarmed(struct engine_fault *f, const char *timer, int e, struct chaos_err *err)
{
    struct engine *eng = f->engine;
    if (f->revert_timer)
        loop_cancel_timer(eng->loop, f->revert_timer);
    if (f->step_timer)
        loop_cancel_timer(eng->loop, f->step_timer);
    f->revert_timer = f->step_timer = 0;
    char what[sizeof f->error];
    if (f->spec->info.lasting && f->spec->ops->revert) {
        struct chaos_err rerr = {0}, jerr = {0};
        if (f->spec->ops->revert(&f->env, f->state, &rerr) < 0) {
            f->revert_failed = true;
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
    f->st = FAULT_FAILED;
    /* No fault name: like every apply error, the caller puts it in front. */
    chaos_err_set(err, e, "cannot arm its %s: %s; %s", timer, strerror(e), what);
    snprintf(f->error, sizeof f->error, "%s", err->msg);
    return -e;
}

/* A non-lasting fault is done once it has no more steps to run and its
 * natural duration (a repeated kill: every x count) has passed, so windows
 * "during" it also see the effect of its last round. */
static void finish_if_done(struct engine_fault *f)
{
    if (f->st == FAULT_ACTIVE && !f->spec->info.lasting && !f->step_timer && !f->revert_timer) {
        f->st = FAULT_REVERTED;
        char d[512];
        engine_fault_describe(f, d, sizeof d);
        emit(f, ENGINE_FINISHED, d);
    }
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
    /* Armed before the event goes out: a handler may revert f (an abort). */
    int unarmed = schedule_step(f, next);
    if (r < 0) {
        snprintf(f->error, sizeof f->error, "%s", err.msg);
        emit(f, ENGINE_STEP_FAILED, err.msg);
    } else {
        char d[512];
        engine_fault_describe(f, d, sizeof d);
        emit(f, ENGINE_STEPPED, d);
    }
    if (unarmed && f->st == FAULT_ACTIVE) {
        struct chaos_err uerr = {0};
        IGNORE_RESULT(end_unarmed(f, "timer for its next round", unarmed, &uerr));
        emit(f, f->revert_failed ? ENGINE_FAILED : ENGINE_ABORTED, f->error);
        return;
    }
    finish_if_done(f);
}

int engine_apply(struct engine *e, const char *name, const struct fault_spec *spec,
                 engine_event_cb cb, void *arg, struct engine_fault **out, struct chaos_err *err)
{
    int64_t duration_ms = spec->duration_ms;
    struct engine_fault *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name))) {
        free(f);
        return chaos_err_set(err, ENOMEM, "out of memory");
    }
    f->engine = e;
    f->spec = spec;
    f->cb = cb;
    f->cb_arg = arg;
    f->st = FAULT_FAILED;
    snprintf(f->id, sizeof f->id, "f%u-%d", ++e->seq, (int)getpid());
    memcpy(f->env.protected_pids, e->protected_pids, sizeof e->protected_pids);
    f->env.n_protected = e->n_protected;
    f->env.journal = e->journal;
    f->env.fault_id = f->id;
    f->env.kind = spec->ops->kind;
    f->env.loop = e->loop;
    f->env.deadline_ms = spec->info.lasting && duration_ms >= 0 ? loop_unix_ms() + duration_ms : 0;
    f->next = e->faults;
    e->faults = f;
    *out = f;

    int64_t next = 0;
    int r = spec->ops->apply(&f->env, spec->spec, &f->state, &next, err);
    if (r < 0) {
        snprintf(f->error, sizeof f->error, "%s", err->msg);
        /* apply left nothing behind; close any undo record it journalled. */
        struct chaos_err jerr = {0};
        if (spec->info.lasting && journal_record_revert(e->journal, f->id, &jerr) < 0)
            snprintf(f->error, sizeof f->error, "%s (and %s)", err->msg, jerr.msg);
        return r;
    }
    f->st = FAULT_ACTIVE;
    /* The fault is applied: from here on a timer that cannot be armed
     * undoes it rather than leave it to a timer that will never fire. */
    if (spec->info.lasting) {
        f->revert_timer = loop_add_timer(e->loop, loop_now_ms() + duration_ms, on_revert_timer, f);
        if (!f->revert_timer)
            return end_unarmed(f, "revert timer", errno ? errno : ENOMEM, err);
    } else if (spec->info.natural_duration_ms > 0) {
        f->revert_timer = loop_add_timer(e->loop, loop_now_ms() + spec->info.natural_duration_ms,
                                         on_natural_end, f);
        if (!f->revert_timer)
            return end_unarmed(f, "end timer", errno ? errno : ENOMEM, err);
    }
    int unarmed = schedule_step(f, next);
    if (unarmed)
        return end_unarmed(f, "step timer", unarmed, err);
    char d[512];
    engine_fault_describe(f, d, sizeof d);
    emit(f, ENGINE_APPLIED, d);
    finish_if_done(f);
    return 0;
}

int engine_revert(struct engine *e, struct engine_fault *f, struct chaos_err *err)
{
    if (f->st != FAULT_ACTIVE)
        return 0;
    if (f->revert_timer) {
        loop_cancel_timer(e->loop, f->revert_timer);
        f->revert_timer = 0;
    }
    if (f->step_timer) {
        loop_cancel_timer(e->loop, f->step_timer);
        f->step_timer = 0;
    }
    if (f->spec->info.lasting && f->spec->ops->revert) {
        int r = f->spec->ops->revert(&f->env, f->state, err);
        if (r < 0) {
            f->st = FAULT_FAILED;
            f->revert_failed = true;
            snprintf(f->error, sizeof f->error, "revert failed: %s", err->msg);
            emit(f, ENGINE_FAILED, f->error);
            return r;
        }
        struct chaos_err jerr = {0};
        if (journal_record_revert(e->journal, f->id, &jerr) < 0)
            snprintf(f->error, sizeof f->error, "reverted, but %s", jerr.msg);
    }
    f->st = FAULT_REVERTED;
    char d[512];
    engine_fault_describe(f, d, sizeof d);
    emit(f, ENGINE_REVERTED, d);
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

