/* The agent's HTTP server: libmicrohttpd driven from the agent's loop (its
 * epoll fd watched, its timeout a loop timer; no thread), the bearer token
 * checked on every request but GET /healthz, bodies bounded. */
#ifndef CHAOS_AGENT_HTTP_H
#define CHAOS_AGENT_HTTP_H

#include "agent.h"
#include "agent_config.h"
#include "chaos_err.h"
#include "loop.h"

struct agent_http;

/* Listens on cfg->addr (TLS when cfg has a certificate). cfg and a are
 * borrowed. */
int agent_http_start(struct loop *loop, const struct agent_config *cfg, struct agent *a,
                     struct agent_http **out, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Stops listening and closes every connection. NULL is fine. */
void agent_http_stop(struct agent_http *h);

/* Whether header is "Bearer <token>", compared in time independent of
 * where they differ. */
bool agent_http_auth_ok(const char *header, const char *token);

#endif
