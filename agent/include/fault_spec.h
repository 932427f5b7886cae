/* A fault's validated description, as the engine's public API hands it out:
 * one entry point checks a fault's kind, target, params and duration, and
 * every rule about them lives behind it (in the kind, or in the engine for
 * the rules every kind shares). The controller validates scenarios through
 * this header alone; the kinds' own interface (fault.h) stays inside the
 * engine. */
#ifndef CHAOS_FAULT_SPEC_H
#define CHAOS_FAULT_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"

/* How the engine must treat a fault, decided by its kind. */
struct fault_info {
    /* true: the fault changes the system until reverted (pause, netem), so it
     * needs a duration and the engine schedules its revert; false: a one-off
     * action (kill) that nothing can undo, which has no duration. */
    bool lasting;
    /* How long a non-lasting fault is "active" when it repeats (every x
     * count for a repeated kill); 0 for a one-shot action. */
    int64_t natural_duration_ms;
    /* For the error when the duration is missing or 0 (lasting faults):
     * what needs it, e.g. "action pause (a paused process must be resumed)". */
    const char *needs_duration;
    /* For the error when a one-off fault has one: why it cannot, e.g. "a
     * kill cannot be undone; use params.every and params.count to repeat it". */
    const char *no_duration;
};

struct fault_spec;

/* Validates one fault: kind, its "target" and "params" objects (either may be
 * NULL when absent) and its duration (duration_ms < 0: none given). ctx
 * prefixes every error, which then reads "<ctx>: <field>: <what is wrong>",
 * e.g. "faults[1] 'kill worker': target.pick: ...", or "<ctx>: duration:
 * required: ..." for a lasting fault without one. Touches nothing on the
 * system. On success *out is the caller's (fault_spec_free). */
int fault_spec_parse(const char *kind, const json_t *target, const json_t *params, const char *ctx,
                     int64_t duration_ms, struct fault_spec **out, struct chaos_err *err)
    __attribute__((warn_unused_result));
void fault_spec_free(struct fault_spec *fs);

/* The kind's verdict on how the fault lives (see struct fault_info). */
const struct fault_info *fault_spec_info(const struct fault_spec *fs);
/* The kind's name, e.g. "process". */
const char *fault_spec_kind(const struct fault_spec *fs);
/* The duration the spec was validated with (ms), or -1 for none. */
int64_t fault_spec_duration_ms(const struct fault_spec *fs);

/* What the fault would do, from the spec alone, for --dry-run: "pause
 * processes: name 'demo-worker', pick 1". "" when its kind cannot say. */
void fault_spec_plan(const struct fault_spec *fs, char *buf, size_t size);
/* What the fault's target matches on this machine right now, for --dry-run:
 * "the target matches 2 processes: 812 (worker), 813 (worker)". Reads the
 * system, changes nothing. "" when its kind has nothing to say. */
void fault_spec_preview(const struct fault_spec *fs, char *buf, size_t size);

/* Whether this build knows the kind. */
bool fault_kind_known(const char *kind);
/* The kinds this build supports, comma-separated, for error messages. */
const char *fault_kinds_list(void);

#endif
