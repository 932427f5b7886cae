/* backend_fleet: each fault to the backend its request calls for - to
 * chaos-agents (backend_remote) when it names agents, to this process
 * (backend_embedded) when not - behind one ops table, so the runner does not
 * know the difference. A fault here is a handle on the inner backend's. */
#include "backend_remote.h"

#include <errno.h>
#include <stdlib.h>

struct backend_fault {
    const struct backend_ops *ops;
    void *ctx;
    void *inner; /* the inner backend's struct backend_fault */
    backend_event_cb cb;
    void *arg;
    struct backend_fault *next;
};

struct fleet_ctx {
    void *local, *remote;
    struct backend_fault *faults;
    int pending;   /* inner revert_alls not yet done */
    int failed;
    backend_done_cb done;
    void *done_arg;
};

static int fleet_open(struct loop *loop, const struct backend_options *opt, void **ctx,
                      struct chaos_err *err)
{
    struct fleet_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return chaos_err_set(err, ENOMEM, "out of memory");
    int r = backend_embedded.open(loop, opt, &c->local, err);
    if (r == 0 && (r = backend_remote.open(loop, opt, &c->remote, err)) < 0)
        backend_embedded.close(c->local);
    if (r < 0) {
        free(c);
        return r;
    }
    *ctx = c;
    return 0;
}

static void fleet_close(void *ctx)
{
    struct fleet_ctx *c = ctx;
    backend_remote.close(c->remote);
    backend_embedded.close(c->local);
    while (c->faults) {
        struct backend_fault *n = c->faults->next;
        free(c->faults);
        c->faults = n;
    }
    free(c);
}

static void on_inner_event(struct backend_fault *inner, enum backend_event ev,
                           enum fault_state st, const char *detail, void *arg)
{
    struct backend_fault *f = arg;
    (void)inner;
    f->cb(f, ev, st, detail, f->arg);
}

static int fleet_apply(void *ctx, const struct backend_request *req, backend_event_cb cb,
                       void *arg, struct backend_fault **out, struct chaos_err *err)
{
    struct fleet_ctx *c = ctx;
    struct backend_fault *f = calloc(1, sizeof *f);
    if (!f)
        return chaos_err_set(err, ENOMEM, "fault '%s': out of memory", req->name);
    bool remote = req->n_agents > 0;
    *f = (struct backend_fault){.ops = remote ? &backend_remote : &backend_embedded,
                                .ctx = remote ? c->remote : c->local, .cb = cb, .arg = arg};
    struct backend_fault *inner = NULL;
    int r = f->ops->apply(f->ctx, req, on_inner_event, f, &inner, err);
    if (r < 0) {
        free(f);
        return r;
    }
    f->inner = inner;
    f->next = c->faults;
    c->faults = f;
    *out = f;
    return 0;
}

static int fleet_revert(void *ctx, struct backend_fault *f, struct chaos_err *err)
{
    (void)ctx;
    return f->ops->revert(f->ctx, f->inner, err);
}

static void on_inner_done(int failed, void *arg)
{
    struct fleet_ctx *c = arg;
    c->failed += failed;
    if (--c->pending == 0)
        c->done(c->failed, c->done_arg);
}

static void fleet_revert_all(void *ctx, backend_done_cb done, void *arg)
{
    struct fleet_ctx *c = ctx;
    c->done = done;
    c->done_arg = arg;
    c->failed = 0;
    c->pending = 2;
    /* Both call back from the loop, never from here (the contract). */
    backend_remote.revert_all(c->remote, on_inner_done, c);
    backend_embedded.revert_all(c->local, on_inner_done, c);
}

static enum fault_state fleet_state(const struct backend_fault *f)
{
    return f->ops->state(f->inner);
}

const struct backend_ops backend_fleet = {
    .name = "fleet",
    .open = fleet_open,
    .close = fleet_close,
    .apply = fleet_apply,
    .revert = fleet_revert,
    .revert_all = fleet_revert_all,
    .state = fleet_state,
};
