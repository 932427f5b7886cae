/* Reading the bodies of the agent's API requests: untrusted bytes in, a
 * validated request or a precise error naming the field out. Touches
 * nothing on the system (the fuzz target drives it directly). */
#ifndef CHAOS_AGENT_REQUEST_H
#define CHAOS_AGENT_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"
#include "fault_spec.h"

/* The largest body any endpoint reads (413 beyond it). */
#define AGENT_BODY_MAX (64 * 1024)
/* Longest controller id and fault name accepted. */
#define AGENT_ID_MAX 128
#define AGENT_NAME_MAX 256

struct agent_fault_req {
    char *name;
    char *kind;
    char *controller; /* NULL: no lease holds the fault */
    json_t *target;   /* owned references (NULL when absent) */
    json_t *params;
    int64_t duration_ms; /* -1: none */
    struct fault_spec *spec;
};

/* POST /v1/faults: {"name", "kind", "target", "params", "duration",
 * "controller"}. 0, or -EINVAL with err "<field>: <what is wrong>" (the
 * spec's errors come from fault_spec_parse with ctx "fault"). */
int agent_request_parse_fault(const char *body, size_t len, struct agent_fault_req *out,
                              struct chaos_err *err) __attribute__((warn_unused_result));
/* Frees what req holds; the spec only when free_spec (the daemon keeps a
 * spec alive as long as the engine's fault). */
void agent_fault_req_clear(struct agent_fault_req *req, int free_spec);

/* POST /v1/lease: {"controller": "id"}. *controller is the caller's. */
int agent_request_parse_lease(const char *body, size_t len, char **controller,
                              struct chaos_err *err) __attribute__((warn_unused_result));

/* Checks a controller id (1-AGENT_ID_MAX printable characters, no spaces
 * or quotes). ctx names the field. */
int agent_request_check_id(const char *id, const char *field, struct chaos_err *err)
    __attribute__((warn_unused_result));

#endif
