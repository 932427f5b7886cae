/* Where a fault is in its life. The engine moves a fault between these
 * states only through its lifecycle table (agent/engine/lifecycle.c); the
 * runner reads them from its backend instead of inferring them. */
#ifndef CHAOS_FAULT_STATE_H
#define CHAOS_FAULT_STATE_H

#include <stdbool.h>

enum fault_state {
    FAULT_PENDING,       /* not applied yet (or being applied) */
    FAULT_ACTIVE,        /* applied; a repeated action is still running its rounds */
    FAULT_REVERTING,     /* its revert runs (a remote backend: the request is out) */
    FAULT_REVERTED,      /* reverted, on request or because its duration ended */
    FAULT_FINISHED,      /* a one-off or repeated action did its last round */
    FAULT_APPLY_FAILED,  /* the apply failed, or could not be made safe (a timer it
                            needs could not be armed): nothing is left applied */
    FAULT_ABORTED,       /* ended early by the engine (the timer of its next round
                            could not be armed); a lasting part was reverted */
    FAULT_REVERT_FAILED, /* a revert failed: the system may still carry the fault,
                            and its journal keeps it for `chaos recover` */
    /* Room for a state between REVERTING and REVERTED where the fault no
     * longer injects but its machinery keeps serving (a syscall fault's
     * listener answers CONTINUE until its workload exits). */
    FAULT_N_STATES
};

/* "active", "apply_failed", ...: the names reports use. */
const char *fault_state_name(enum fault_state st);
/* Whether the state is final: nothing more will happen to the fault. */
bool fault_state_ended(enum fault_state st);
/* Whether the system may carry the fault now (ACTIVE, REVERTING, REVERT_FAILED). */
bool fault_state_applied(enum fault_state st);

#endif
