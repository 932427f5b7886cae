/* Shared machinery of the probes that talk to Prometheus and Alertmanager
 * (probe_prometheus.c, probe_alertmanager.c, am_silence.c): one curl multi
 * handle driven by the run's event loop, and the connection options those
 * APIs share (url, timeout, basic auth, bearer token, TLS). Private to
 * controller/probe/. */
#ifndef CHAOS_PROBE_CURL_H
#define CHAOS_PROBE_CURL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"
#include "loop.h"

/* Where and how to reach an API. Secrets are read once, when parsed. */
struct pconn {
    char *url;          /* base URL without a trailing '/' */
    int64_t timeout_ms; /* per request, default 2s */
    char *user;         /* basic auth; NULL when none */
    char *password;
    char *password_src; /* "env FOO" or "file /x": what the report shows */
    char *bearer;       /* bearer token; NULL when none */
    char *bearer_src;
    char *ca_file; /* NULL: the system's CAs */
    bool insecure; /* tls.insecure_skip_verify, only when written */
};

/* Keys pconn_parse reads; a kind adds its own (see pconn_keys_with). */
#define PCONN_KEYS "url", "timeout", "basic_auth", "bearer_token_env", "bearer_token_file", "tls"

/* Parses the connection keys of obj; ctx is "probe.prometheus" etc. Returns 0
 * or a negative errno with err naming the field. On failure conn may hold
 * some fields: pconn_clear() it. */
int pconn_parse(const json_t *obj, const char *ctx, struct pconn *conn, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Frees the fields (not conn itself); NULL-safe fields. */
void pconn_clear(struct pconn *conn);
/* Adds the connection keys, with no secret, to o. Returns 0 or -ENOMEM. */
int pconn_to_json(const struct pconn *conn, json_t *o);

struct pcurl; /* the curl multi handle on a loop */

int pcurl_new(struct loop *loop, struct pcurl **out, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Cancels every request in flight without calling its callback. */
void pcurl_free(struct pcurl *pc);

/* The outcome of one request. error is NULL when an HTTP answer came (any
 * status); otherwise it says why not ("connect: Connection refused"). */
struct pcurl_reply {
    int status;       /* -1 without an answer */
    const char *body; /* NUL-terminated, at most 4 MiB kept */
    size_t len;
    bool truncated;
    const char *error;
    int64_t latency_us;
};
typedef void (*pcurl_done_cb)(const struct pcurl_reply *rep, void *arg);
/* Called instead of done for a request pcurl_free drops: frees arg. */
typedef void (*pcurl_cancel_cb)(void *arg);

/* Starts method ("GET", "POST", "DELETE") on conn->url + path (path starts
 * with '/', already URL-encoded). body (JSON, may be NULL) is copied. done
 * is called once, later, from the loop; if pc is freed first, cancel (when
 * not NULL) is called instead, from pcurl_free. Returns 0
 * or a negative errno with err set (done is then never called). */
int pcurl_request(struct pcurl *pc, const struct pconn *conn, const char *method, const char *path,
                  const char *body, pcurl_done_cb done, pcurl_cancel_cb cancel, void *arg,
                  struct chaos_err *err) __attribute__((warn_unused_result));

/* curl_easy_escape for query values; a new string or NULL on ENOMEM. */
char *pcurl_escape(const char *s);

/* Parses the JSON envelope of a Prometheus API answer ({"status":
 * "success", "data": ...}) or an Alertmanager answer (a bare array): on
 * success returns the document (a new reference); on failure NULL with why
 * written into buf ("status 400: bad_data: parse error at char 3"). */
json_t *pcurl_json(const struct pcurl_reply *rep, char *why, size_t size);

#endif
