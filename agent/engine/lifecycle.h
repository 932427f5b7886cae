/* The fault lifecycle as one table (s6-supervise's actions[state][event] is
 * the model): what happened to a fault (an input) moves it from one state to
 * the next and decides which event, if any, the engine reports. The engine
 * does the work (the kind's apply, step and revert; its timers) and then
 * feeds the outcome here; it never sets a state itself. */
#ifndef CHAOS_LIFECYCLE_H
#define CHAOS_LIFECYCLE_H

#include <stdbool.h>
#include "engine.h"
#include "fault_state.h"

enum fault_input {
    INPUT_APPLIED,          /* the kind applied it and its timers are armed */
    INPUT_APPLY_FAILED,     /* the kind's apply failed: nothing was left applied */
    INPUT_UNSAFE_UNDONE,    /* applied, but a timer it needs could not be armed: undone */
    INPUT_UNSAFE_STUCK,     /* the same, and undoing it failed too */
    INPUT_STEPPED,          /* a repeated action ran another round */
    INPUT_STEP_FAILED,      /* a round failed (the fault goes on) */
    INPUT_DONE,             /* a non-lasting fault's last round and natural duration passed */
    INPUT_REVERT,           /* its revert begins (asked for, or its duration ended) */
    INPUT_REVERTED,         /* the revert succeeded */
    INPUT_REVERT_FAILED,    /* the revert failed */
    INPUT_N
};

/* What the table says for one state and input. */
struct fault_transition {
    bool valid;             /* false: the input means nothing in that state; ignored */
    enum fault_state next;
    bool emit;              /* report `event` to the fault's owner */
    enum engine_event event;
};

/* The transition for st on in; .valid false when the input does not apply. */
const struct fault_transition *lifecycle_next(enum fault_state st, enum fault_input in);
const char *fault_input_name(enum fault_input in);

#endif
