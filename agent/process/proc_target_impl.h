/* What proc_target.c (parsing, picking, pidfds) and proc_target_scan.c
 * (reading /proc and cgroupfs to resolve a target) share; not for other
 * modules. */
#ifndef CHAOS_PROC_TARGET_IMPL_H
#define CHAOS_PROC_TARGET_IMPL_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "proc_target.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

enum selector { SEL_PID, SEL_NAME, SEL_CMDLINE, SEL_PIDFILE, SEL_CGROUP, SEL_UNIT };

enum pick_kind { PICK_ALL, PICK_COUNT, PICK_PERCENT };

struct proc_target {
    enum selector sel;
    pid_t pid;  /* SEL_PID */
    char *arg;  /* name, regex source, pidfile, absolute cgroup dir or unit */
    regex_t re; /* SEL_CMDLINE */
    bool have_re;
    enum pick_kind pick;
    unsigned long pick_n; /* PICK_COUNT: a count; PICK_PERCENT: 1-100 */
    bool have_seed;
    uint64_t seed;
};

/* Zombies ('Z') and dead tasks ('X', 'x') cannot be signalled to any effect. */
static inline bool proc_state_is_dead(char state)
{
    return state == 'Z' || state == 'X' || state == 'x';
}

/* qsort order of struct proc_ent: by pid. */
static inline int proc_ent_cmp_pid(const void *a, const void *b)
{
    pid_t x = ((const struct proc_ent *)a)->pid, y = ((const struct proc_ent *)b)->pid;
    return (x > y) - (x < y);
}

#endif
