/* Private contract between probe.c (the dispatcher) and the probe kinds
 * (probe_http.c, probe_command.c). Nothing outside controller/probe*.c
 * includes this header. */
#ifndef CHAOS_PROBE_IMPL_H
#define CHAOS_PROBE_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"
#include "loop.h"
#include "probe.h"

/* One probe kind. probe.c keeps a static table of these; each kind exports
 * exactly one, the rest of its file is static. */
struct probe_ops {
    const char *name;               /* the key in the probe object: "http", "command" */
    const char *const *expect_keys; /* NULL-terminated per-sample condition keys */
    int max_in_flight;              /* samples of one check at once (see probe.h) */

    /* Parses the kind's object (the value of "http") and its per-sample
     * conditions in expect (NULL when there is none; keys not in expect_keys
     * are ignored). Error paths start with "probe.<name>." or "expect."; the
     * dispatcher puts the caller's ctx in front. On failure *out is untouched. */
    int (*parse)(const json_t *obj, const json_t *expect, void **out, struct chaos_err *err);
    /* "GET http://..." ; stays valid until free. */
    const char *(*describe)(const void *impl);
    /* The kind's object with defaults filled; a new reference, NULL on ENOMEM. */
    json_t *(*to_json)(const void *impl);
    void (*free)(void *impl);

    /* Per-runner state of the kind (e.g. the curl multi handle). */
    int (*runner_new)(struct loop *loop, void **out, struct chaos_err *err);
    /* Cancels the kind's samples in flight without calling their callbacks. */
    void (*runner_free)(void *state);
    /* Starts one sample of p (whose kind data is impl) on the kind's runner
     * state. Same contract as probe_start(). The kind keeps p alive with
     * probe_ref() while the sample is in flight. */
    int (*start)(void *state, const struct probe *p, const void *impl, probe_done_cb done,
                 void *arg, struct chaos_err *err);
    /* Optional (NULL: the kind names no fault): resolves the faults the
     * kind's object names (probe_bind_faults). Error paths start with
     * "probe.<name>."; the dispatcher puts the caller's ctx in front. */
    int (*bind)(void *impl, const struct probe_fault_ref *faults, size_t n,
                struct chaos_err *err);
};

extern const struct probe_ops probe_http_ops;
extern const struct probe_ops probe_command_ops;
extern const struct probe_ops probe_prometheus_ops;
extern const struct probe_ops probe_prometheus_alert_ops;
extern const struct probe_ops probe_alertmanager_ops;
extern const struct probe_ops probe_workload_ops;

/* Takes a reference on p so it outlives a caller's probe_free() while a
 * sample is in flight; drop it with probe_free(). */
struct probe *probe_ref(const struct probe *p);

/* Shared helpers for the kinds' per-sample conditions. */

/* Formats "[200, 204]" into buf (cut with "..." if it does not fit). */
void probe_format_int_list(const int *v, size_t n, char *buf, size_t size);

/* Reads an array of integers in [min, max] (1-256 elements) at expect.<key>
 * into a new array. Returns 1 when present, 0 when absent, negative on error. */
int probe_parse_int_list(const json_t *expect, const char *key, long long min, long long max,
                         int **out, size_t *n, struct chaos_err *err);

/* Compiles expect.<key> (a POSIX ERE) into *re. Returns 1 when present and
 * compiled, 0 when absent, negative on error quoting regerror(). *src gets
 * the pattern text (owned by expect). */
struct probe_regex;
int probe_parse_regex(const json_t *expect, const char *key, struct probe_regex **out,
                      const char **src, struct chaos_err *err);
/* True when the first len bytes of text match (NULs in text are allowed). */
bool probe_regex_match(const struct probe_regex *re, const char *text, size_t len);
void probe_regex_free(struct probe_regex *re);

/* Writes `"text"` into buf, cut to about 48 characters with "..." and with
 * control characters shown as '?', for error messages. */
void probe_quote(const char *text, char *buf, size_t size);

#endif
