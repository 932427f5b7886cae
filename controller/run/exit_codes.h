/* The exit codes of `chaos` (a contract: docs/cli.md). Every place in
 * controller/ that decides one uses these names. */
#ifndef CHAOS_EXIT_CODES_H
#define CHAOS_EXIT_CODES_H

enum chaos_exit {
    CHAOS_EXIT_OK = 0,      /* every check held (or nothing to do: help, validate ok) */
    CHAOS_EXIT_FAILED = 1,  /* an expectation or the steady state failed */
    CHAOS_EXIT_USAGE = 2,   /* invalid input: scenario, options, usage */
    CHAOS_EXIT_ABORTED = 3, /* aborted, or a fault could not be applied or reverted */
};

#endif
