/* Reports of a finished run: the verdict for people, a JSON report with the
 * whole timeline and every check's samples summary, and JUnit XML for CI. */
#ifndef CHAOS_REPORT_H
#define CHAOS_REPORT_H

#include <stdio.h>
#include <jansson.h>
#include "chaos_err.h"
#include "runner.h"
#include "scenario.h"

/* Prints the verdict and one line per check and fault. */
void report_print_verdict(const struct scenario *s, const struct run_result *r, FILE *out);

/* The JSON report (schema in docs/reports.md). NULL on allocation failure. */
json_t *report_json(const struct scenario *s, const struct run_result *r);

/* Writes the JSON report / JUnit XML to path (outpath_write: atomically
 * through a temp file and rename, or in place into a character device or
 * FIFO). */
int report_write_json(const struct scenario *s, const struct run_result *r, const char *path,
                      struct chaos_err *err) __attribute__((warn_unused_result));
int report_write_junit(const struct scenario *s, const struct run_result *r, const char *path,
                       struct chaos_err *err) __attribute__((warn_unused_result));

#endif
