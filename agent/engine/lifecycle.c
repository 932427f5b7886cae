#include "lifecycle.h"

#include <stddef.h>

#define GO(st, ev) {.valid = true, .next = (st), .emit = true, .event = (ev)}
#define QUIET(st) {.valid = true, .next = (st)}

/* Every transition a fault can make. A cell left empty is an input that
 * cannot happen in that state (or no longer matters: a revert asked for
 * twice, a round whose timer fired as the fault was being reverted); the
 * engine ignores it. The outcome of an apply is the apply call's own result,
 * so a failed apply is quiet; everything else is reported, later, from the
 * loop. */
static const struct fault_transition table[FAULT_N_STATES][INPUT_N] = {
    [FAULT_PENDING] = {
        [INPUT_APPLIED] = GO(FAULT_ACTIVE, ENGINE_APPLIED),
        [INPUT_APPLY_FAILED] = QUIET(FAULT_APPLY_FAILED),
        [INPUT_UNSAFE_UNDONE] = QUIET(FAULT_APPLY_FAILED),
        [INPUT_UNSAFE_STUCK] = QUIET(FAULT_REVERT_FAILED),
    },
    [FAULT_ACTIVE] = {
        [INPUT_STEPPED] = GO(FAULT_ACTIVE, ENGINE_STEPPED),
        [INPUT_STEP_FAILED] = GO(FAULT_ACTIVE, ENGINE_STEP_FAILED),
        [INPUT_DONE] = GO(FAULT_FINISHED, ENGINE_FINISHED),
        [INPUT_REVERT] = QUIET(FAULT_REVERTING),
        [INPUT_UNSAFE_UNDONE] = GO(FAULT_ABORTED, ENGINE_ABORTED),
        [INPUT_UNSAFE_STUCK] = GO(FAULT_REVERT_FAILED, ENGINE_FAILED),
    },
    [FAULT_REVERTING] = {
        [INPUT_REVERTED] = GO(FAULT_REVERTED, ENGINE_REVERTED),
        [INPUT_REVERT_FAILED] = GO(FAULT_REVERT_FAILED, ENGINE_FAILED),
    },
    /* REVERTED, FINISHED, APPLY_FAILED, ABORTED, REVERT_FAILED: final. A
     * fault whose revert failed stays so for this process; `chaos recover`
     * (or the guard) takes it from the journal. */
};

const struct fault_transition *lifecycle_next(enum fault_state st, enum fault_input in)
{
    static const struct fault_transition none = {.valid = false};
    if ((unsigned)st >= FAULT_N_STATES || (unsigned)in >= INPUT_N)
        return &none;
    return &table[st][in];
}

const char *fault_state_name(enum fault_state st)
{
    static const char *const names[FAULT_N_STATES] = {
        [FAULT_PENDING] = "pending",         [FAULT_ACTIVE] = "active",
        [FAULT_REVERTING] = "reverting",     [FAULT_REVERTED] = "reverted",
        [FAULT_FINISHED] = "finished",       [FAULT_APPLY_FAILED] = "apply_failed",
        [FAULT_ABORTED] = "aborted",         [FAULT_REVERT_FAILED] = "revert_failed",
    };
    return (unsigned)st < FAULT_N_STATES ? names[st] : "unknown";
}

bool fault_state_ended(enum fault_state st)
{
    return st == FAULT_REVERTED || st == FAULT_FINISHED || st == FAULT_APPLY_FAILED ||
           st == FAULT_ABORTED || st == FAULT_REVERT_FAILED;
}

bool fault_state_applied(enum fault_state st)
{
    return st == FAULT_ACTIVE || st == FAULT_REVERTING || st == FAULT_REVERT_FAILED;
}

const char *fault_input_name(enum fault_input in)
{
    static const char *const names[INPUT_N] = {
        [INPUT_APPLIED] = "applied",         [INPUT_APPLY_FAILED] = "apply failed",
        [INPUT_UNSAFE_UNDONE] = "unsafe, undone", [INPUT_UNSAFE_STUCK] = "unsafe, stuck",
        [INPUT_STEPPED] = "stepped",         [INPUT_STEP_FAILED] = "step failed",
        [INPUT_DONE] = "done",               [INPUT_REVERT] = "revert",
        [INPUT_REVERTED] = "reverted",       [INPUT_REVERT_FAILED] = "revert failed",
    };
    return (unsigned)in < INPUT_N ? names[in] : "unknown";
}
