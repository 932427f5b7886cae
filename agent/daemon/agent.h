/* The chaos-agent's state: the faults it applied (through the engine), the
 * controllers' leases, the halt switch and the metrics; and the /v1 API on
 * top of them, independent of the HTTP server that carries it. Everything
 * runs on one loop. */
#ifndef CHAOS_AGENT_H
#define CHAOS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include "agent_config.h"
#include "chaos_err.h"
#include "loop.h"

struct agent;

/* A reply to one request: status and a body the caller frees. */
struct agent_reply {
    unsigned status;
    char *body;
    const char *content_type;
};

/* Opens the engine on cfg->journal and starts with nothing applied. cfg is
 * borrowed and must outlive the agent. recoveries is the number of faults
 * the start-up recovery reverted (for the metrics). */
int agent_new(struct loop *loop, const struct agent_config *cfg, unsigned recoveries,
              struct agent **out, struct chaos_err *err) __attribute__((warn_unused_result));
/* Frees the agent and its engine. Call agent_shutdown first: what is
 * still applied stays in the journal for the next start's recovery. */
void agent_free(struct agent *a);

/* Serves one authenticated request (or GET /healthz). path has no query;
 * since is the "since" query argument or NULL. Never fails: out always gets a
 * reply (500 when out of memory leaves no body: then body is NULL). */
void agent_handle(struct agent *a, const char *method, const char *path, const char *since,
                  const char *body, size_t len, struct agent_reply *out);

/* Reverts everything (reason says why, e.g. "agent stopping (SIGTERM)")
 * and calls done(arg) from the loop once the revert events are out.
 * Returns the number of reverts that failed. */
int agent_shutdown(struct agent *a, const char *reason, void (*done)(void *arg), void *arg);

/* Fault objects not yet ended (for the exit status). */
size_t agent_applied_count(const struct agent *a);

#endif
