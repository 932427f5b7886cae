/* Backends for faults that run on chaos-agents (backend.h has the contract):
 * backend_remote sends every fault to the agents its request names;
 * backend_fleet sends those with agents there and applies the others in
 * this process through backend_embedded, so a scenario may mix both. */
#ifndef CHAOS_BACKEND_REMOTE_H
#define CHAOS_BACKEND_REMOTE_H

#include "backend.h"

extern const struct backend_ops backend_remote;
extern const struct backend_ops backend_fleet;

#endif
