/* The runner's own helpers around struct run_result (runner.h has the
 * public part): building one for a scenario and judging it. */
#ifndef CHAOS_RUN_RESULT_H
#define CHAOS_RUN_RESULT_H

#include <stdint.h>
#include "chaos_err.h"
#include "runner.h"

/* A result for s with every fault record and check window in place, their
 * back pointers set to run (may be NULL). NULL with err set on ENOMEM. */
struct run_result *run_result_new(const struct scenario *s, struct run *run,
                                  struct chaos_err *err);
/* Fills checks_judged and the one-line verdict from exit_code and checks. */
void run_result_summarize(struct run_result *res);

/* The longest steady-state window of s, and the end of its last `after`
 * window from the fault phase's start (0 when none). */
int64_t run_steady_ms(const struct scenario *s);
int64_t run_after_ms(const struct scenario *s);

#endif
