/* The seam between the runner and whatever applies faults. The runner
 * applies, reverts and watches faults only through one of these ops tables
 * (curl's Curl_ssl is the model): the embedded engine in this process today
 * (backend_embedded.c, with its crash recovery, guard and journal), a remote
 * chaos-agent next. A backend implements this header and nothing in the
 * runner changes.
 *
 * The contract every backend keeps:
 * - Events are delivered later, from the loop, never from inside a call:
 *   apply, revert and revert_all return before any event of theirs arrives,
 *   so a handler may call back into the backend freely.
 * - Each event carries the fault's state after it (fault_state.h); the
 *   runner keeps no state of its own about a fault beyond what these say.
 * - A fault whose apply call returned 0 ends with exactly one of FINISHED,
 *   REVERTED, REVERT_FAILED, ABORTED or APPLY_FAILED (a remote apply can
 *   fail after the request went out); STEPPED and STEP_FAILED may come
 *   before. A fault whose apply call failed gets no event at all.
 * - revert_all reverts every fault not yet ended and calls done once each of
 *   their final events has been delivered; done is called exactly once,
 *   always from the loop.
 * - close frees the backend. What is still applied then is left to the
 *   backend's own safety net (the embedded engine's journal and guard, a
 *   remote agent's lease), never silently dropped. */
#ifndef CHAOS_BACKEND_H
#define CHAOS_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"
#include "fault_spec.h"
#include "fault_state.h"
#include "loop.h"

struct backend_fault; /* one fault applied through a backend */
struct fleet;
struct fleet_agent;

enum backend_event {
    BACKEND_APPLIED,       /* the fault is in place; detail says what it hit */
    BACKEND_APPLY_FAILED,  /* the apply failed after it was accepted (remote) */
    BACKEND_STEPPED,       /* a repeated action ran another round */
    BACKEND_STEP_FAILED,   /* a round failed; the fault goes on */
    BACKEND_FINISHED,      /* a one-off or repeated action did its last round */
    BACKEND_REVERTED,      /* reverted: asked for, or its duration ended */
    BACKEND_REVERT_FAILED, /* the revert failed: the system may still carry it */
    BACKEND_ABORTED,       /* ended early by the backend (detail says why); a
                              lasting part was reverted */
    BACKEND_ENDING,        /* the planned end: the revert starts now and its
                              outcome comes later (a remote backend, whose
                              revert is a round trip); checks of the fault's
                              window close here, not when the answer comes */
};

typedef void (*backend_event_cb)(struct backend_fault *f, enum backend_event ev,
                                 enum fault_state st, const char *detail, void *arg);
/* revert_all is over; failed counts the faults whose revert failed. */
typedef void (*backend_done_cb)(int failed, void *arg);

struct backend_options {
    const char *state_dir; /* the embedded engine's journals go under <state_dir>/journal */
    /* Lines for people about what the backend did on its own (a recovery of
     * faults left by a crashed run). May be NULL. */
    void (*log)(const char *line, void *arg);
    void *log_arg;
    /* Remote backends: who we are to the agents (the lease's controller id)
     * and every agent a request may name. */
    const char *controller_id;
    const struct fleet *fleet;
};

/* One fault as the scenario gives it. */
struct backend_request {
    const char *name;              /* the fault's name in the scenario */
    const struct fault_spec *spec; /* validated; outlives the backend fault */
    const json_t *json;            /* the fault's object as written (what a
                                      remote agent is sent); may be NULL */
    const struct fleet_agent *const *agents; /* where it runs; n_agents 0: here */
    size_t n_agents;
};

struct backend_ops {
    const char *name; /* "embedded" */

    /* Opens the backend on loop. On failure nothing was touched and err
     * says why. */
    int (*open)(struct loop *loop, const struct backend_options *opt, void **ctx,
                struct chaos_err *err);
    void (*close)(void *ctx);

    /* Applies req (see the contract above). Returns 0 when the fault was
     * applied or accepted, with *out set; its events arrive through cb.
     * Returns a negative errno with err set when it was not applied and never
     * will be: nothing is left behind and no event follows. */
    int (*apply)(void *ctx, const struct backend_request *req, backend_event_cb cb, void *arg,
                 struct backend_fault **out, struct chaos_err *err);
    /* Reverts f now (nothing when it has ended). 0 when the revert was done
     * or sent: REVERTED or REVERT_FAILED follows. */
    int (*revert)(void *ctx, struct backend_fault *f, struct chaos_err *err);
    /* Reverts every fault not yet ended; done follows from the loop. */
    void (*revert_all)(void *ctx, backend_done_cb done, void *arg);

    enum fault_state (*state)(const struct backend_fault *f);
};

/* The embedded engine: faults are applied in this process. */
extern const struct backend_ops backend_embedded;

#endif
