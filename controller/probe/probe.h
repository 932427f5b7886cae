/* Probes: how a check looks at the system. Each kind (http, command) parses
 * its own probe object and its per-sample conditions, and takes one sample at
 * a time asynchronously on the run's event loop. */
#ifndef CHAOS_PROBE_H
#define CHAOS_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"
#include "loop.h"

/* One observation. */
struct sample {
    int64_t t_ms;        /* monotonic ms when the sample started */
    int64_t latency_us;  /* time to answer (or to fail) */
    bool ok;             /* the probe ran and every per-sample condition held */
    int status;          /* HTTP status or exit code; -1 when there was none */
    char error[192];     /* why not ok, e.g. "status 503 not in [200]",
                            "connect: Connection refused", "timed out after 2s" */
    /* What a query-style probe (prometheus, alertmanager) observed, for the
     * report and for error budgets: has_value says value is set. */
    bool has_value;
    double value;    /* the reduced or first series' value; 1/0 for alert states */
    char detail[160]; /* e.g. "evaluated at 2026-12-02T20:31:05.123Z, 3 series" */
};

struct probe;         /* a parsed probe with its per-sample conditions */
struct probe_runner;  /* shared machinery (curl multi handle) bound to one loop */

/* Parses probe_obj ({"http": {...}} or {"command": {...}}, exactly one key) and
 * the per-sample conditions of its kind found in expect_obj (which may be NULL;
 * e.g. status, body_contains, body_regex for http). ctx prefixes errors, e.g.
 * "expect[0] 'retries hold'"; error paths read "<ctx>: probe.http.url: ...",
 * "<ctx>: expect.status: ...". Keys of expect_obj it does not know are left
 * for the caller: see probe_expect_keys(). */
int probe_parse(const json_t *probe_obj, const json_t *expect_obj, const char *ctx,
                struct probe **out, struct chaos_err *err) __attribute__((warn_unused_result));

/* A fault of the scenario as a probe that names one sees it (the workload
 * probe names the syscall fault whose command it watches). */
struct probe_fault_ref {
    const char *name;   /* the fault's name in the scenario */
    const char *kind;   /* "syscall", "process", ... */
    const json_t *json; /* the fault's object as written */
};

/* Resolves what p names among the scenario's faults; a no-op for kinds that
 * name none. Errors read "<ctx>: probe.workload.fault: no fault is called
 * 'X' (faults: ...)". The scenario calls it right after probe_parse. */
int probe_bind_faults(struct probe *p, const struct probe_fault_ref *faults, size_t n,
                      const char *ctx, struct chaos_err *err) __attribute__((warn_unused_result));

/* NULL-terminated list of the per-sample condition keys of p's kind. */
const char *const *probe_expect_keys(const struct probe *p);

/* "http", "command", "prometheus", "prometheus_alert", "alertmanager" or
 * "workload". */
const char *probe_kind(const struct probe *p);

/* How many samples of one check may be in flight at once; a tick that finds
 * this many still running is skipped (and counted), so a probe slower than
 * its every cannot pile up: 1 for command (each is a process), 8 for http
 * (a frozen server still gets overlapping looks, within a bound). */
int probe_max_in_flight(const struct probe *p);

/* One line for people: "GET http://127.0.0.1:8080/checkout", "command ./check.sh". */
const char *probe_describe(const struct probe *p);

/* The probe object as parsed, with defaults filled in (for the JSON report).
 * Returns a new reference. */
json_t *probe_to_json(const struct probe *p);

void probe_free(struct probe *p);

/* An error-budget expectation (expect.budget, any probe kind): "SLO slo over
 * period; this check may burn at most max_burn of the budget". Parsed here
 * with the probe's other expect keys because it is read from the same
 * object; judged by check.c (check_judge). */
struct probe_budget {
    bool set;
    double slo;          /* 0 < slo < 1, e.g. 0.9995 */
    int64_t period_ms;   /* e.g. 30 days */
    double max_burn;     /* fraction of the period's budget, e.g. 0.02 */
    bool from_value;     /* source "value": a prometheus probe's value is the
                            error ratio over the window; else samples */
    bool ratio_written;  /* expect.success_ratio was written too: judged as well */
};
/* The check's budget; ->set is false when expect.budget was not given. */
const struct probe_budget *probe_budget(const struct probe *p);

/* Creates the shared runner for loop. NULL on failure with err set. */
struct probe_runner *probe_runner_new(struct loop *loop, struct chaos_err *err);
/* Cancels every sample in flight (their callbacks are not called) and frees. */
void probe_runner_free(struct probe_runner *r);

typedef void (*probe_done_cb)(const struct sample *s, void *arg);

/* Starts one sample of p. done is called exactly once, later, from the loop
 * (never from inside probe_start), unless the runner is freed first. A probe
 * may have several samples in flight. Returns 0, or a negative errno with
 * err set when the sample could not even be started. */
int probe_start(struct probe_runner *r, const struct probe *p, probe_done_cb done, void *arg,
                struct chaos_err *err) __attribute__((warn_unused_result));

#endif
