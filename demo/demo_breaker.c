/* Circuit breakers and counters of the demo front (demo_breaker.h). */
#include "demo_breaker.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

enum breaker_state { CLOSED, OPEN, HALF_OPEN };

struct breaker {
    enum breaker_state state;
    int failures_in_a_row;
    int64_t opened_ms;
    bool trial_in_flight;
    uint64_t attempts_ok, attempts_failed, attempts_skipped, opened_total;
};

struct demo_stats {
    pthread_mutex_t lock;
    int workers, base_port, failures;
    int64_t open_ms;
    uint64_t checkouts, checkout_errors;
    struct breaker *b;
};

struct demo_stats *demo_stats_new(int workers, int base_port, int failures, int64_t open_ms)
{
    struct demo_stats *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->b = calloc((size_t)workers, sizeof(*st->b))) == NULL ||
        pthread_mutex_init(&st->lock, NULL) != 0) {
        if (st != NULL)
            free(st->b);
        free(st);
        return NULL;
    }
    st->workers = workers;
    st->base_port = base_port;
    st->failures = failures;
    st->open_ms = open_ms;
    return st;
}

void demo_stats_free(struct demo_stats *st)
{
    if (st == NULL)
        return;
    pthread_mutex_destroy(&st->lock);
    free(st->b);
    free(st);
}

bool demo_breaker_allow(struct demo_stats *st, int i, int64_t now_ms)
{
    if (st->failures == 0)
        return true;
    pthread_mutex_lock(&st->lock);
    struct breaker *b = &st->b[i];
    bool allow = true;
    if (b->state == OPEN && now_ms - b->opened_ms >= st->open_ms)
        b->state = HALF_OPEN; /* time for one trial */
    if (b->state == OPEN || (b->state == HALF_OPEN && b->trial_in_flight))
        allow = false;
    else if (b->state == HALF_OPEN)
        b->trial_in_flight = true;
    if (!allow)
        b->attempts_skipped++;
    pthread_mutex_unlock(&st->lock);
    return allow;
}

static void open_breaker(struct breaker *b, int64_t now_ms)
{
    b->state = OPEN;
    b->opened_ms = now_ms;
    b->opened_total++;
}

void demo_breaker_record(struct demo_stats *st, int i, bool ok, int64_t now_ms)
{
    pthread_mutex_lock(&st->lock);
    struct breaker *b = &st->b[i];
    if (ok)
        b->attempts_ok++;
    else
        b->attempts_failed++;
    if (st->failures > 0) {
        bool trial = b->state == HALF_OPEN && b->trial_in_flight;
        b->trial_in_flight = false;
        if (ok) {
            b->state = CLOSED;
            b->failures_in_a_row = 0;
        } else if (trial || ++b->failures_in_a_row >= st->failures) {
            open_breaker(b, now_ms);
            b->failures_in_a_row = 0;
        }
    }
    pthread_mutex_unlock(&st->lock);
}

void demo_count_checkout(struct demo_stats *st, bool ok)
{
    pthread_mutex_lock(&st->lock);
    st->checkouts++;
    if (!ok)
        st->checkout_errors++;
    pthread_mutex_unlock(&st->lock);
}

struct out {
    char *buf;
    size_t size, len;
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->len < o->size ? o->buf + o->len : NULL,
                      o->len < o->size ? o->size - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

static void per_worker(struct out *o, struct demo_stats *st, const char *name, const char *help,
                       const char *type, uint64_t (*value)(const struct breaker *))
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (int i = 0; i < st->workers; i++)
        put(o, "%s{worker=\"%d\"} %llu\n", name, st->base_port + i,
            (unsigned long long)value(&st->b[i]));
}

static uint64_t v_open(const struct breaker *b) { return b->state != CLOSED; }
static uint64_t v_opened(const struct breaker *b) { return b->opened_total; }
static uint64_t v_ok(const struct breaker *b) { return b->attempts_ok; }
static uint64_t v_failed(const struct breaker *b) { return b->attempts_failed; }
static uint64_t v_skipped(const struct breaker *b) { return b->attempts_skipped; }

size_t demo_metrics(struct demo_stats *st, int64_t now_ms, char *buf, size_t size)
{
    struct out o = {buf, size, 0};
    if (size > 0)
        buf[0] = '\0';
    pthread_mutex_lock(&st->lock);
    for (int i = 0; i < st->workers; i++)
        if (st->b[i].state == OPEN && now_ms - st->b[i].opened_ms >= st->open_ms)
            st->b[i].state = HALF_OPEN; /* what the next attempt would see */
    put(&o, "# HELP demo_checkout_requests_total GET /checkout requests answered.\n"
            "# TYPE demo_checkout_requests_total counter\n"
            "demo_checkout_requests_total %llu\n"
            "# HELP demo_checkout_errors_total GET /checkout requests answered 503.\n"
            "# TYPE demo_checkout_errors_total counter\n"
            "demo_checkout_errors_total %llu\n",
        (unsigned long long)st->checkouts, (unsigned long long)st->checkout_errors);
    per_worker(&o, st, "demo_breaker_open",
               "1 while the worker's circuit breaker is open or half-open.", "gauge", v_open);
    per_worker(&o, st, "demo_breaker_opened_total", "Times the worker's breaker opened.",
               "counter", v_opened);
    per_worker(&o, st, "demo_attempts_ok_total", "Attempts on the worker that got a 200.",
               "counter", v_ok);
    per_worker(&o, st, "demo_attempts_failed_total", "Attempts on the worker that failed.",
               "counter", v_failed);
    per_worker(&o, st, "demo_attempts_skipped_total",
               "Attempts not made because the worker's breaker was open.", "counter", v_skipped);
    pthread_mutex_unlock(&st->lock);
    return o.len;
}
