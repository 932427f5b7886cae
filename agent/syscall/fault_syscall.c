/* The "syscall" fault kind: errors, return values and delays injected into
 * chosen syscalls of
 * (a) a command the scenario launches, through a seccomp user-notification
 *     listener held by a per-workload supervisor (sys_super.c). The window
 *     ends at the deadline (the supervisor knows it and stops by itself) or
 *     at revert (SIGUSR1), after which the supervisor answers CONTINUE for
 *     as long as the workload lives;
 * (b) running processes, selected as the process kind selects them
 *     (proc_target.h), through a ptrace tracer that is our child for the
 *     window only (sys_trace.h): revert makes it detach, and it dies with
 *     the engine (the kernel then detaches), so nothing stays behind. */
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
#include "sys_trace.h"
#include "util.h"

struct sys_state {
    /* (b): the processes attached to, and their tracer */
    struct proc_ent *targets;
    size_t n_targets;
    struct sys_trace trace;
    bool show_seed;
    uint64_t seed;
    bool detached;
    /* (a) */
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

/* ---- (b) a running process ---- */

/* Resolves and picks the running processes as the process kind does, and
 * refuses any that someone traces already (ptrace allows one tracer). */
static int attach_targets(const struct fault_env *env, const struct sys_spec *s,
                          struct sys_state *st, struct chaos_err *err)
{
    struct proc_ent *ents = NULL;
    size_t n = 0;
    int r = proc_target_resolve(s->running, env, &ents, &n, err);
    if (r < 0)
        return r;
    st->show_seed = !proc_target_picks_all(s->running);
    if (st->show_seed && (r = proc_target_seed(s->running, &st->seed, err)) < 0) {
        free(ents);
        return r;
    }
    uint64_t rng = st->seed;
    proc_target_pick(s->running, &rng, ents, &n);
    for (size_t i = 0; i < n; i++) {
        int tp = sys_trace_tracer_of(ents[i].pid);
        if (tp > 0) {
            r = chaos_err_set(err, EBUSY,
                              "target: pid %d (%s) is traced already by pid %d (a debugger or "
                              "strace?); a process can have one tracer only",
                              (int)ents[i].pid, ents[i].comm, tp);
            free(ents);
            return r;
        }
    }
    st->targets = ents;
    st->n_targets = n;
    return 0;
}

/* The undo record: the targets (pid and start time), and the tracer once
 * it runs, so a recovery can check that they are free of it. */
static int attach_journal(const struct fault_env *env, const struct sys_state *st,
                          struct chaos_err *err)
{
    _cleanup_json_ json_t *arr = json_array();
    _cleanup_json_ json_t *undo = json_pack("{s:s}", "mode", "attach");
    if (!arr || !undo)
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < st->n_targets; i++) {
        json_t *e = json_pack("{s:i,s:I,s:s}", "pid", (int)st->targets[i].pid, "start",
                              (json_int_t)st->targets[i].start, "comm", st->targets[i].comm);
        if (!e || json_array_append_new(arr, e) < 0)
            return chaos_err_set(err, ENOMEM, "out of memory");
    }
    if (json_object_set(undo, "targets", arr) < 0)
        return chaos_err_set(err, ENOMEM, "out of memory");
    if (st->trace.tracer.pid > 0) {
        json_t *t = json_pack("{s:i,s:I}", "pid", (int)st->trace.tracer.pid, "start",
                              (json_int_t)st->trace.tracer.start);
        if (!t || json_object_set_new(undo, "tracer", t) < 0)
            return chaos_err_set(err, ENOMEM, "out of memory");
    }
    return fault_journal_undo(env, undo, err);
}

static int attach_apply(const struct fault_env *env, const struct sys_spec *s, struct sys_state *st,
                        struct chaos_err *err)
{
    int r = attach_targets(env, s, st, err);
    if (r < 0 || (r = attach_journal(env, st, err)) < 0)
        return r;
    r = sys_trace_start(s, st->targets, st->n_targets, env->deadline_ms, &st->trace, err);
    if (r < 0)
        return r;
    r = attach_journal(env, st, err);
    if (r < 0) {
        /* Leave nothing applied; the journal error is the one to report. */
        struct chaos_err e2 = {0};
        IGNORE_RESULT(sys_trace_stop(&st->trace, st->targets, st->n_targets, &e2));
        st->detached = true;
    }
    return r;
}

/* An undo record's array of {pid, start, comm} into *out (caller frees). */
static int undo_ents(const json_t *arr, struct proc_ent **out, size_t *n, struct chaos_err *err)
{
    size_t len = json_array_size(arr);
    struct proc_ent *v = calloc(len ? len : 1, sizeof *v);
    if (!v)
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const json_t *e = json_array_get(arr, i);
        const json_t *p = json_object_get(e, "pid"), *st = json_object_get(e, "start");
        const char *comm = json_string_value(json_object_get(e, "comm"));
        if (!json_is_integer(p) || !json_is_integer(st) || json_integer_value(p) < 1 ||
            json_integer_value(p) > PROC_TARGET_PID_MAX || json_integer_value(st) < 0) {
            free(v);
            return chaos_err_set(err, EINVAL,
                                 "syscall undo record: targets[%zu] needs a \"pid\" and a "
                                 "\"start\"",
                                 i);
        }
        v[i].pid = (pid_t)json_integer_value(p);
        v[i].start = (unsigned long long)json_integer_value(st);
        snprintf(v[i].comm, sizeof v[i].comm, "%s", comm ? comm : "?");
    }
    *out = v;
    *n = len;
    return 0;
}

/* After a crash: the tracer died with the engine (or is dying); check that
 * the targets are free of it. */
static int attach_recover(const json_t *undo, struct chaos_err *err)
{
    const json_t *arr = json_object_get(undo, "targets");
    if (!json_is_array(arr))
        return chaos_err_set(err, EINVAL, "syscall undo record: \"targets\" must be an array");
    struct proc_ent tracer = {0};
    const json_t *t = json_object_get(undo, "tracer");
    if (t) {
        const json_t *p = json_object_get(t, "pid"), *st = json_object_get(t, "start");
        if (!json_is_integer(p) || !json_is_integer(st) || json_integer_value(p) < 1 ||
            json_integer_value(p) > PROC_TARGET_PID_MAX)
            return chaos_err_set(err, EINVAL,
                                 "syscall undo record: \"tracer\" needs a \"pid\" and a "
                                 "\"start\"");
        tracer.pid = (pid_t)json_integer_value(p);
        tracer.start = (unsigned long long)json_integer_value(st);
    }
    _cleanup_free_ struct proc_ent *ents = NULL;
    size_t n = 0;
    int r = undo_ents(arr, &ents, &n, err);
    if (r < 0)
        return r;
    return sys_trace_recover(t ? &tracer : NULL, ents, n, err);
}

static void attach_describe(const struct sys_state *st, char *buf, size_t size)
{
    char list[256] = "";
    size_t off = 0;
    for (size_t i = 0; i < st->n_targets && off < sizeof list - 40; i++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%d (%s)", i ? ", " : "",
                                (int)st->targets[i].pid, st->targets[i].comm);
    char seed[48] = "", result[64];
    if (st->show_seed)
        snprintf(seed, sizeof seed, "; pick seed %llu", (unsigned long long)st->seed);
    if (st->trace.ended)
        snprintf(result, sizeof result, "; detached, %lld call%s injected", st->trace.injected,
                 st->trace.injected == 1 ? "" : "s");
    else
        snprintf(result, sizeof result, "; tracing");
    snprintf(buf, size, "traced %zu process%s (%zu thread%s) by tracer %d: %s (%s)%s%s",
             st->n_targets, st->n_targets == 1 ? "" : "es", st->trace.threads,
             st->trace.threads == 1 ? "" : "s", (int)st->trace.tracer.pid, list, st->plan, result,
             seed);
}

static void sys_free_state(void *state)
{
    struct sys_state *st = state;
    if (!st)
        return;
    /* Without a revert the tracer runs on until its deadline or the
     * engine's end (PDEATHSIG); we only let go of its pipe. */
    if (st->trace.fd >= 0)
        close(st->trace.fd);
    free(st->targets);
    free(st);
}

/* ---- the ops ---- */

/* (a): journal, start the supervisor and its workload, journal again. */
static int command_apply(const struct fault_env *env, const struct sys_spec *s,
                         struct sys_state *st, struct chaos_err *err)
{
    out_dir_of(env, s, st->out_dir, sizeof st->out_dir);
    /* Journal first: the supervisor ends its window by itself at the
     * deadline, so the record only lets a recovery end it early. */
    _cleanup_json_ json_t *undo = json_pack("{s:s}", "output_dir", st->out_dir);
    int r = undo ? fault_journal_undo(env, undo, err) : chaos_err_set(err, ENOMEM, "out of memory");
    if (r < 0)
        return r;
    pid_t sp, wp;
    r = sys_super_start(s, st->out_dir, env->deadline_ms, &sp, &wp, err);
    if (r < 0)
        return r;
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
    }
    return r;
}

static int sys_apply(const struct fault_env *env, const void *spec, void **state,
                     int64_t *next_step_ms, struct chaos_err *err)
{
    (void)next_step_ms;
    const struct sys_spec *s = spec;
    struct sys_state *st = calloc(1, sizeof *st);
    if (!st)
        return chaos_err_set(err, ENOMEM, "out of memory");
    sys_spec_plan(s, st->plan, sizeof st->plan);
    st->n_nr = s->n_nr;
    st->trace.fd = -1;
    int r = s->running ? attach_apply(env, s, st, err) : command_apply(env, s, st, err);
    if (r < 0) {
        sys_free_state(st);
        return r;
    }
    *state = st;
    return 0;
}

static int sys_revert(const struct fault_env *env, void *state, struct chaos_err *err)
{
    (void)env;
    struct sys_state *st = state;
    if (st->targets) {
        if (st->detached)
            return 0;
        int r = sys_trace_stop(&st->trace, st->targets, st->n_targets, err);
        if (r == 0)
            st->detached = true;
        return r;
    }
    if (!st->super.pid)
        return 0;
    return end_window(st->super.pid, st->super.start, err);
}

static int sys_recover(const json_t *undo, struct chaos_err *err)
{
    const char *mode = json_string_value(json_object_get(undo, "mode"));
    if (mode && strcmp(mode, "attach") == 0)
        return attach_recover(undo, err);
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
    if (st->targets) {
        attach_describe(st, buf, size);
        return;
    }
    snprintf(buf, size, "workload %d under supervisor %d (%s); output in %s", (int)st->workload,
             (int)st->super.pid, st->plan, st->out_dir);
}

static void sys_plan(const void *spec, char *buf, size_t size)
{
    sys_spec_plan(spec, buf, size);
}

/* For a running-process target, what it matches now (before its pick)
 * and which of those a tracer holds already; nothing for a command. */
static void sys_preview(const void *spec, char *buf, size_t size)
{
    const struct sys_spec *s = spec;
    if (!s->running)
        return;
    struct chaos_err err = {0};
    struct fault_env env = {.protected_pids = {1, getpid(), getppid()}, .n_protected = 3};
    struct proc_ent *ents = NULL;
    size_t n = 0;
    if (proc_target_resolve(s->running, &env, &ents, &n, &err) < 0) {
        snprintf(buf, size, "%s", err.msg);
        return;
    }
    int off = snprintf(buf, size, "the target matches %zu process%s:", n, n == 1 ? "" : "es");
    for (size_t i = 0; i < n && i < 8 && off >= 0 && (size_t)off < size; i++) {
        int tp = sys_trace_tracer_of(ents[i].pid);
        char traced[48] = "";
        if (tp > 0)
            snprintf(traced, sizeof traced, ", traced already by %d", tp);
        off += snprintf(buf + off, size - (size_t)off, "%s %d (%s%s)", i ? "," : "",
                        (int)ents[i].pid, ents[i].comm, traced);
    }
    if (n > 8 && off >= 0 && (size_t)off < size)
        snprintf(buf + off, size - (size_t)off, ", ...");
    free(ents);
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
    .preview = sys_preview,
    .free_state = sys_free_state,
};
