/* The "syscall" fault kind: errors, return values and delays injected into
 * chosen syscalls of a command the scenario launches, through a seccomp
 * user-notification listener held by a per-workload supervisor
 * (sys_super.c). The fault is lasting: its window ends at the deadline (the
 * supervisor knows it and stops by itself) or at revert (SIGUSR1), after
 * which the supervisor answers CONTINUE for as long as the workload lives. */
#include "fault.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_target.h"
#include "sys_spec.h"
#include "sys_super.h"
#include "util.h"

struct sys_state {
    char out_dir[PATH_MAX];
    struct proc_ent super; /* the supervisor: pid and start time */
    pid_t workload;
    size_t n_nr;
    char plan[512];
};

static int sys_parse(const json_t *target, const json_t *params, const char *ctx, void **spec,
                     struct fault_info *info, struct chaos_err *err)
{
    struct sys_spec *s;
    int r = sys_spec_parse(target, params, ctx, &s, err);
    if (r < 0)
        return r;
    *spec = s;
    info->lasting = true;
    info->natural_duration_ms = 0;
    info->needs_duration = "a syscall fault (its injection stops when the duration ends)";
    info->no_duration = NULL;
    return 0;
}

static void sys_free_spec(void *spec)
{
    sys_spec_free(spec);
}

static void out_dir_of(const struct fault_env *env, const struct sys_spec *s, char *buf,
                       size_t size)
{
    if (s->output_dir)
        snprintf(buf, size, "%s", s->output_dir);
    else
        snprintf(buf, size, "/tmp/chaos-syscall-%s", env->fault_id ? env->fault_id : "fault");
}

/* Ends the window of the supervisor an undo record or state names, if it is
 * still that process. Gone is fine. */
static int end_window(pid_t pid, unsigned long long start, struct chaos_err *err)
{
    struct proc_ent e = {.pid = pid, .start = start};
    int fd = proc_target_pidfd(&e, err);
    if (fd == -ESRCH) {
        chaos_err_clear(err);
        return 0;
    }
    if (fd < 0)
        return fd;
    int r = proc_target_signal(fd, SIGUSR1);
    close(fd);
    if (r < 0 && r != -ESRCH)
        return chaos_err_set(err, -r, "cannot signal the syscall supervisor %d: %s", (int)pid,
                             strerror(-r));
    return 0;
}

static int sys_apply(const struct fault_env *env, const void *spec, void **state,
                     int64_t *next_step_ms, struct chaos_err *err)
{
    (void)next_step_ms;
    const struct sys_spec *s = spec;
    struct sys_state *st = calloc(1, sizeof *st);
    if (!st)
        return chaos_err_set(err, ENOMEM, "out of memory");
    out_dir_of(env, s, st->out_dir, sizeof st->out_dir);
    sys_spec_plan(s, st->plan, sizeof st->plan);
    st->n_nr = s->n_nr;
    /* Journal first: the supervisor ends its window by itself at the
     * deadline, so the record only lets a recovery end it early. */
    _cleanup_json_ json_t *undo = json_pack("{s:s}", "output_dir", st->out_dir);
    int r = undo ? fault_journal_undo(env, undo, err) : chaos_err_set(err, ENOMEM, "out of memory");
    if (r < 0) {
        free(st);
        return r;
    }
    pid_t sp, wp;
    r = sys_super_start(s, st->out_dir, env->deadline_ms, &sp, &wp, err);
    if (r < 0) {
        free(st);
        return r;
    }
    char pstate;
    if (proc_target_stat(sp, &st->super, &pstate) < 0) {
        /* It is gone already (the workload ended at once): nothing to end. */
        st->super.pid = 0;
    }
    st->workload = wp;
    json_t *u2 = json_pack("{s:s,s:i,s:I}", "output_dir", st->out_dir, "supervisor", (int)sp,
                           "start", (json_int_t)st->super.start);
    r = u2 ? fault_journal_undo(env, u2, err) : chaos_err_set(err, ENOMEM, "out of memory");
    json_decref(u2);
    if (r < 0) {
        struct chaos_err e2 = {0};
        if (st->super.pid)
            IGNORE_RESULT(end_window(st->super.pid, st->super.start, &e2));
        free(st);
        return r;
    }
    *state = st;
    return 0;
}

static int sys_revert(const struct fault_env *env, void *state, struct chaos_err *err)
{
    (void)env;
    struct sys_state *st = state;
    if (!st->super.pid)
        return 0;
    return end_window(st->super.pid, st->super.start, err);
}

static int sys_recover(const json_t *undo, struct chaos_err *err)
{
    const json_t *p = json_object_get(undo, "supervisor");
    const json_t *s = json_object_get(undo, "start");
    if (!p)
        return 0; /* crashed before the supervisor existed */
    if (!json_is_integer(p) || !json_is_integer(s))
        return chaos_err_set(err, EINVAL,
                             "syscall undo record: \"supervisor\" and \"start\" must be integers");
    return end_window((pid_t)json_integer_value(p), (unsigned long long)json_integer_value(s), err);
}

static void sys_describe(const void *state, char *buf, size_t size)
{
    const struct sys_state *st = state;
    snprintf(buf, size, "workload %d under supervisor %d (%s); output in %s", (int)st->workload,
             (int)st->super.pid, st->plan, st->out_dir);
}

static void sys_plan(const void *spec, char *buf, size_t size)
{
    sys_spec_plan(spec, buf, size);
}

static void sys_free_state(void *state)
{
    free(state);
}

const struct fault_ops fault_syscall_ops = {
    .kind = "syscall",
    .parse = sys_parse,
    .free_spec = sys_free_spec,
    .apply = sys_apply,
    .step = NULL,
    .revert = sys_revert,
    .recover = sys_recover,
    .describe = sys_describe,
    .plan = sys_plan,
    .preview = NULL,
    .free_state = sys_free_state,
};
