/* The demo front's circuit breakers (one per worker) and its counters, which
 * GET /metrics shows in the Prometheus text format. A breaker opens after
 * `failures` failed attempts in a row on its worker: the front then skips
 * that worker for `open_ms`, and lets one trial attempt through (half-open)
 * when that time is up; the trial's success closes it, its failure opens it
 * again. Thread-safe: the front serves each connection on its own thread. */
#ifndef DEMO_BREAKER_H
#define DEMO_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct demo_stats;

/* failures 0 turns the breakers off (every attempt is allowed). NULL on ENOMEM. */
struct demo_stats *demo_stats_new(int workers, int base_port, int failures, int64_t open_ms);
void demo_stats_free(struct demo_stats *st);

/* Whether an attempt on worker i may go ahead now; false while its breaker
 * is open. A true in half-open state makes this attempt the trial. */
bool demo_breaker_allow(struct demo_stats *st, int i, int64_t now_ms);
/* The attempt on worker i ended (ok or not). */
void demo_breaker_record(struct demo_stats *st, int i, bool ok, int64_t now_ms);
/* One /checkout answered: ok (200) or not (503). */
void demo_count_checkout(struct demo_stats *st, bool ok);

/* The metrics page into buf (NUL-terminated); returns its length, or the
 * length it would have had when size was too small. */
size_t demo_metrics(struct demo_stats *st, int64_t now_ms, char *buf, size_t size);

#endif
