/* The syscall kind's validated spec: which syscalls, what to do to them,
 * which calls (counters, probability, argument filters), and the command to
 * launch or the running processes to attach to. Parsed from the fault's JSON
 * or from strace's --inject words. */
#ifndef CHAOS_SYS_SPEC_H
#define CHAOS_SYS_SPEC_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "chaos_err.h"

#define SYS_SPEC_MAX_NR 128

struct proc_target;

/* How a selected syscall's argument can be filtered. */
enum sys_argkind { SYS_ARG_NONE, SYS_ARG_PATH, SYS_ARG_FD, SYS_ARG_ADDR };

struct sys_spec {
    int nr[SYS_SPEC_MAX_NR]; /* native syscall numbers, no duplicates */
    size_t n_nr;
    int err_no;      /* > 0: fail with it */
    bool has_retval; /* return retval instead */
    long long retval;
    int64_t delay_us;   /* > 0: hold the call this long first */
    double probability; /* 0..1; 1 when not given */
    uint64_t seed;
    bool has_seed;
    long long every;   /* inject every Nth matched call (>= 1) */
    long long after;   /* skip the first N matched calls */
    long long max;     /* inject at most N times; 0: no limit */
    char *path_prefix; /* path or fd-path filter; NULL: none */
    char *path_glob;   /* fnmatch(3) pattern; NULL: none */
    bool has_addr;     /* connect/bind/sendto IPv4 filter */
    uint32_t addr;     /* host order */
    int prefix_len;    /* 0..32 */
    int port;          /* 0: any */
    char **argv;       /* target.command, NULL-terminated; NULL for a running process */
    char *output_dir;  /* target.output_dir; NULL: the default */
    struct proc_target *running; /* a running process (pid, name ...); NULL for a command */
};

/* Parses target and params (see docs/faults/syscall.md). Errors name the
 * field: "<ctx>: params.errno: unknown errno 'EIOO' ...". On success *out is
 * the caller's (sys_spec_free). */
int sys_spec_parse(const json_t *target, const json_t *params, const char *ctx,
                   struct sys_spec **out, struct chaos_err *err)
    __attribute__((warn_unused_result));
void sys_spec_free(struct sys_spec *s);

/* The argument kind of native syscall nr, and the index of that argument
 * (and of the address length for SYS_ARG_ADDR in *len_idx). */
enum sys_argkind sys_argkind_of(int nr, int *idx, int *len_idx);

/* An errno by name ("EIO") or 0. */
int sys_errno_lookup(const char *name);

/* Per-fault counters for the decision. */
struct sys_counter {
    long long seen;     /* matched calls so far */
    long long injected; /* calls injected so far */
    uint64_t rng;
};

void sys_counter_init(struct sys_counter *c, const struct sys_spec *s);
/* Counts one matched call and says whether to inject it. */
bool sys_decide(const struct sys_spec *s, struct sys_counter *c);

/* "fail write, fsync with EIO, calls 3+ ..." for people. */
void sys_spec_plan(const struct sys_spec *s, char *buf, size_t size);

#endif
