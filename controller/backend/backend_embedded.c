/* The embedded backend: the engine in this process. Opening it recovers
 * what crashed runs left behind, starts the guard (which reverts this run's
 * journal if the process dies without doing so) and opens the engine on
 * this run's journal. */
#include "backend.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "engine.h"
#include "guard.h"
#include "util.h"

struct embedded {
    struct loop *loop;
    struct engine *engine;
    struct guard guard;
    struct backend_fault *faults;
    backend_done_cb done;
    void *done_arg;
    int failed;
};

struct backend_fault {
    struct backend_fault *next;
    struct engine_fault *ef;
    backend_event_cb cb;
    void *arg;
};

static int embedded_open(struct loop *loop, const struct backend_options *opt, void **ctx,
                         struct chaos_err *err)
{
    char jdir[PATH_MAX], jpath[PATH_MAX];
    if (engine_journal_dir(opt->state_dir, jdir, sizeof jdir) < 0 ||
        engine_journal_path(opt->state_dir, getpid(), jpath, sizeof jpath) < 0)
        return chaos_err_set(err, ENAMETOOLONG, "state dir %s: path too long", opt->state_dir);
    struct embedded *b = calloc(1, sizeof *b);
    if (!b)
        return chaos_err_set(err, ENOMEM, "out of memory");
    b->loop = loop;
    b->guard = (struct guard){.pid = -1, .fd = -1};

    /* Faults left behind by a run that crashed (SIGKILL, power loss) go first. */
    struct chaos_err rerr = {0};
    if (engine_recover_dir(jdir, false, opt->log, opt->log_arg, &rerr) < 0 && opt->log)
        opt->log(rerr.msg, opt->log_arg);

    /* The guard reverts this run's faults if this process dies without doing it. */
    int r = guard_start(jpath, opt->state_dir, &b->guard, err);
    if (r < 0) {
        free(b);
        return r;
    }
    if ((r = engine_new(loop, jpath, &b->guard.pid, 1, &b->engine, err)) < 0) {
        guard_stop(&b->guard);
        free(b);
        return r;
    }
    *ctx = b;
    return 0;
}

static void embedded_close(void *ctx)
{
    struct embedded *b = ctx;
    if (!b)
        return;
    /* A fault still applied keeps the journal (engine_free), and the guard
     * goes only after the engine: with the journal it recovers from. */
    engine_free(b->engine);
    guard_stop(&b->guard);
    for (struct backend_fault *f = b->faults, *next; f; f = next) {
        next = f->next;
        free(f);
    }
    free(b);
}

static enum backend_event backend_event_of(enum engine_event ev)
{
    switch (ev) {
    case ENGINE_APPLIED: return BACKEND_APPLIED;
    case ENGINE_STEPPED: return BACKEND_STEPPED;
    case ENGINE_STEP_FAILED: return BACKEND_STEP_FAILED;
    case ENGINE_FINISHED: return BACKEND_FINISHED;
    case ENGINE_REVERTED: return BACKEND_REVERTED;
    case ENGINE_FAILED: return BACKEND_REVERT_FAILED;
    case ENGINE_ABORTED: return BACKEND_ABORTED;
    }
    return BACKEND_ABORTED;
}

/* The engine already delivers its events from the loop, after the call
 * that caused them: they pass straight through. */
static void on_engine_event(struct engine_fault *ef, enum engine_event ev, const char *detail,
                            void *arg)
{
    struct backend_fault *f = arg;
    f->cb(f, backend_event_of(ev), engine_fault_state(ef), detail, f->arg);
}

static int embedded_apply(void *ctx, const struct backend_request *req, backend_event_cb cb,
                          void *arg, struct backend_fault **out, struct chaos_err *err)
{
    struct embedded *b = ctx;
    struct backend_fault *f = calloc(1, sizeof *f);
    if (!f)
        return chaos_err_set(err, ENOMEM, "out of memory");
    f->cb = cb;
    f->arg = arg;
    f->next = b->faults;
    b->faults = f;
    /* A failed apply leaves the engine's fault (for its journal record) but
     * nothing applied, and the engine sends no event for it. */
    int r = engine_apply(b->engine, req->name, req->spec, on_engine_event, f, &f->ef, err);
    if (r < 0)
        return r;
    *out = f;
    return 0;
}

static int embedded_revert(void *ctx, struct backend_fault *f, struct chaos_err *err)
{
    struct embedded *b = ctx;
    return engine_revert(b->engine, f->ef, err);
}

static void on_drained(void *arg)
{
    struct embedded *b = arg;
    backend_done_cb done = b->done;
    b->done = NULL;
    if (done)
        done(b->failed, b->done_arg);
}

static void embedded_revert_all(void *ctx, backend_done_cb done, void *arg)
{
    struct embedded *b = ctx;
    b->done = done;
    b->done_arg = arg;
    b->failed = engine_revert_all(b->engine);
    /* done must follow the events of those reverts: the engine's queue
     * keeps the order. Only when even that cannot be queued (out of memory)
     * is done called here and now. */
    if (engine_when_drained(b->engine, on_drained, b) < 0)
        on_drained(b);
}

static enum fault_state embedded_state(const struct backend_fault *f)
{
    return f->ef ? engine_fault_state(f->ef) : FAULT_PENDING;
}

const struct backend_ops backend_embedded = {
    .name = "embedded",
    .open = embedded_open,
    .close = embedded_close,
    .apply = embedded_apply,
    .revert = embedded_revert,
    .revert_all = embedded_revert_all,
    .state = embedded_state,
};
