/* The fleet: the chaos-agents a run may drive, from `chaos run --inventory
 * FILE` or the scenario's own "agents", and the faults that address them by
 * name ("node1") or by a label selector ("role=db", "role=db,zone=a").
 * Parsed strictly, secrets read once (the probes' connection options:
 * url, timeout, bearer_token_env / bearer_token_file, tls.ca_file). */
#ifndef CHAOS_FLEET_H
#define CHAOS_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "chaos_err.h"
#include "probe_curl.h"

#define FLEET_MAX_AGENTS 4096

struct fleet_agent {
    char *name;
    json_t *labels; /* object of string values; {} when none */
    struct pconn conn;
};

struct fleet {
    struct fleet_agent *agents;
    size_t n;
};

/* arr is the "agents" array; ctx names it in errors ("agents",
 * "inventory.json: agents"). Returns 0 with *out filled, or a negative errno
 * with err naming the field; *out is then empty. */
int fleet_parse(const json_t *arr, const char *ctx, struct fleet *out, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* An inventory file: {"agents": [...]}. Errors start with the path. */
int fleet_load_file(const char *path, struct fleet *out, struct chaos_err *err)
    __attribute__((warn_unused_result));
void fleet_clear(struct fleet *f);

/* Checks how a fault addresses agents ("node1", "role=db,zone=a"), without
 * a fleet. 0 or -EINVAL with err set. */
int fleet_check_selector(const char *sel, struct chaos_err *err) __attribute__((warn_unused_result));

/* The agents sel names, in inventory order, into a new array *out (free()
 * it) of *n >= 1 pointers into f. -ENOENT with err saying so when none
 * matches; -EINVAL for a bad selector; -ENOMEM. */
int fleet_select(const struct fleet *f, const char *sel, const struct fleet_agent ***out, size_t *n,
                 struct chaos_err *err) __attribute__((warn_unused_result));

#endif
