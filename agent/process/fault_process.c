/* The "process" fault kind: kill processes (once, or in rounds every N) or
 * pause them (SIGSTOP, resumed with SIGCONT when the fault ends).
 *
 * Every signal goes through a pidfd that was checked, after opening, to
 * still refer to the process that was picked, so a PID recycled between
 * resolving and signalling is never hit. A pause journals the processes it
 * is about to stop before stopping any, so a crashed engine's successor can
 * resume them (recover()). */
#include "fault.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <strings.h>
#include <unistd.h>

#include "duration.h"
#include "jsonv.h"
#include "proc_target.h"
#include "util.h"

enum action { ACTION_KILL, ACTION_PAUSE };

struct proc_spec {
    struct proc_target *target;
    enum action action;
    int sig;          /* kill only */
    int64_t every_ms; /* kill only; 0 unless count > 1 */
    long long count;  /* kill rounds, >= 1 */
};

/* A process hit by the fault. */
struct victim {
    struct proc_ent ent;
    int pidfd;    /* pause: held until revert; kill: -1 once signalled */
    bool stopped; /* pause: SIGSTOP sent and not yet undone */
};

struct proc_state {
    struct proc_target *target; /* our own copy: the spec may be freed before us */
    enum action action;
    int sig;
    int64_t every_ms;
    long long count;
    long long round; /* kill rounds done (successful or not) */
    bool show_seed;
    uint64_t seed;
    uint64_t rng;     /* the pick's PRNG, continued from round to round */
    struct victim *v; /* pause: the paused; kill: the last round's victims */
    size_t n;
    size_t already_stopped; /* pause: matches left alone, stopped by someone else */
    bool reverted; /* pause: resumed */
};

/* ---- signals ---- */

struct sig_name {
    const char *name; /* without "SIG" */
    int sig;
};

static const struct sig_name sig_names[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

/* "SIGKILL", "SIGRTMIN+3" or "signal 32" into buf. */
static void sig_format(int sig, char *buf, size_t size)
{
    for (size_t i = 0; i < ARRAY_SIZE(sig_names); i++)
        if (sig_names[i].sig == sig) {
            snprintf(buf, size, "SIG%s", sig_names[i].name);
            return;
        }
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
    else
        snprintf(buf, size, "signal %d", sig);
}

/* Parses "SIGTERM", "TERM" (any case), "SIGRTMIN+N", "SIGRTMAX-N"; 0 if unknown. */
static int sig_lookup(const char *s)
{
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < ARRAY_SIZE(sig_names); i++)
        if (strcasecmp(s, sig_names[i].name) == 0)
            return sig_names[i].sig;
    bool min = strncasecmp(s, "RTMIN", 5) == 0, max = strncasecmp(s, "RTMAX", 5) == 0;
    if (!min && !max)
        return 0;
    s += 5;
    if (*s == '\0')
        return min ? SIGRTMIN : SIGRTMAX;
    if ((min && *s != '+') || (max && *s != '-') || s[1] < '0' || s[1] > '9')
        return 0;
    char *end;
    long off = strtol(s + 1, &end, 10);
    if (*end != '\0' || off > SIGRTMAX - SIGRTMIN)
        return 0;
    return min ? SIGRTMIN + (int)off : SIGRTMAX - (int)off;
}

/* Reads params.signal (string or integer) into *sig. */
static int parse_signal(const json_t *v, const char *path, int *sig, struct chaos_err *err)
{
    int s;
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 1 || n > 64)
            return chaos_err_set(err, ERANGE, "%s: %lld is not a signal number (1-64)", path,
                                 (long long)n);
        s = (int)n;
    } else if (json_is_string(v)) {
        s = sig_lookup(json_string_value(v));
        if (s == 0)
            return chaos_err_set(err, EINVAL,
                                 "%s: unknown signal '%s' (use a name like SIGKILL, SIGTERM, "
                                 "SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGRTMIN+1, or a number 1-64)",
                                 path, json_string_value(v));
    } else {
        return chaos_err_set(err, EINVAL,
                             "%s: must be a signal name like \"SIGTERM\" or a "
                             "number 1-64, not %s",
                             path, jv_type_name(v));
    }
    /* These stop or continue a process instead of killing it: a stop sent by
     * a kill would never be undone. */
    if (s == SIGSTOP || s == SIGTSTP || s == SIGTTIN || s == SIGTTOU || s == SIGCONT) {
        char name[32];
        sig_format(s, name, sizeof name);
        return chaos_err_set(err, EINVAL,
                             "%s: %s stops or continues a process; use \"action\": "
                             "\"pause\" with a duration, which resumes it for you",
                             path, name);
    }
    *sig = s;
    return 0;
}

/* ---- parse ---- */

static void free_spec(void *p)
{
    struct proc_spec *s = p;
    if (!s)
        return;
    proc_target_free(s->target);
    free(s);
}

static void free_specp(struct proc_spec **s)
{
    free_spec(*s);
}

/* "<ctx>: <field>: message"; ctx may be empty. */
__attribute__((format(printf, 4, 5))) static int field_err(struct chaos_err *err, const char *ctx,
                                                           const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return chaos_err_setctx(err, EINVAL, ctx, "%s: %s", field, msg);
}

static int parse_params(const json_t *params, const char *pctx, const char *ctx,
                        struct proc_spec *s, struct chaos_err *err)
{
    static const char *const keys[] = {"action", "signal", "every", "count", NULL};
    int r = jv_expect_object(params, pctx, err);
    if (r < 0)
        return r;
    r = jv_only_keys(params, pctx, keys, err);
    if (r < 0)
        return r;

    const char *action;
    r = jv_string(params, pctx, "action", true, &action, err);
    if (r < 0)
        return r;
    if (strcmp(action, "kill") == 0)
        s->action = ACTION_KILL;
    else if (strcmp(action, "pause") == 0)
        s->action = ACTION_PAUSE;
    else
        return field_err(err, ctx, "params.action", "must be \"kill\" or \"pause\", not '%s'",
                         action);

    const json_t *sigv = json_object_get(params, "signal");
    bool has_every = json_object_get(params, "every") != NULL;
    bool has_count = json_object_get(params, "count") != NULL;
    if (s->action == ACTION_PAUSE) {
        if (sigv)
            return field_err(err, ctx, "params.signal",
                             "only for action \"kill\" (a pause always sends SIGSTOP, then "
                             "SIGCONT)");
        if (has_every || has_count)
            return field_err(err, ctx, has_every ? "params.every" : "params.count",
                             "only for action \"kill\" (a pause lasts for the fault's duration)");
        s->count = 1;
        return 0;
    }

    s->sig = SIGKILL;
    if (sigv) {
        char path[320];
        jv_path(path, sizeof path, pctx, "signal");
        r = parse_signal(sigv, path, &s->sig, err);
        if (r < 0)
            return r;
    }
    s->count = 1;
    r = jv_int(params, pctx, "count", false, 1, 10000, &s->count, err);
    if (r < 0)
        return r;
    r = jv_duration(params, pctx, "every", false, &s->every_ms, err);
    if (r < 0)
        return r;
    if (has_every && s->every_ms <= 0)
        return field_err(err, ctx, "params.every", "must be more than 0");
    if (s->count > 1 && !has_every)
        return field_err(err, ctx, "params.count",
                         "%lld rounds need params.every, the time between them", s->count);
    if (has_every && s->count == 1)
        return field_err(err, ctx, "params.every",
                         "needs params.count above 1 (the number of kill rounds)");
    /* Bound the whole: every is at most 7 days, count at most 10000. */
    if (s->every_ms * s->count > DURATION_MAX_MS) {
        char total[64];
        duration_format(s->every_ms * s->count, total, sizeof total);
        return field_err(err, ctx, "params.count",
                         "every x count is %s, more than the 7-day "
                         "maximum",
                         total);
    }
    return 0;
}

static int process_parse(const json_t *target, const json_t *params, const char *ctx,
                         void **spec, struct fault_info *info, struct chaos_err *err)
{
    char tctx[320], pctx[320];
    fault_field_ctx(tctx, sizeof tctx, ctx, "target");
    fault_field_ctx(pctx, sizeof pctx, ctx, "params");
    if (!target)
        return chaos_err_set(err, EINVAL,
                             "%s: required field is missing (give one of pid, "
                             "name, cmdline, pidfile, cgroup, systemd_unit)",
                             tctx);
    if (!params)
        return chaos_err_set(err, EINVAL,
                             "%s: required field is missing (params.action is "
                             "\"kill\" or \"pause\")",
                             pctx);

    __attribute__((cleanup(free_specp))) struct proc_spec *s = calloc(1, sizeof *s);
    if (!s)
        return chaos_err_set(err, ENOMEM, "out of memory");
    int r = proc_target_parse(target, tctx, NULL, &s->target, err);
    if (r < 0)
        return r;
    r = parse_params(params, pctx, ctx, s, err);
    if (r < 0)
        return r;

    info->lasting = s->action == ACTION_PAUSE;
    info->natural_duration_ms = s->count > 1 ? s->every_ms * s->count : 0;
    info->needs_duration = "action pause (a paused process must be resumed)";
    info->no_duration = "a kill cannot be undone; use params.every and params.count to repeat it";
    *spec = steal_pointer(&s);
    return 0;
}

/* ---- state ---- */

static void close_victims(struct proc_state *st)
{
    for (size_t i = 0; i < st->n; i++)
        if (st->v[i].pidfd >= 0) {
            close(st->v[i].pidfd);
            st->v[i].pidfd = -1;
        }
    free(st->v);
    st->v = NULL;
    st->n = 0;
}

/* Frees the state without undoing anything: a paused process stays paused
 * (the journal still has it, so a later recovery resumes it). */
static void free_state(void *p)
{
    struct proc_state *st = p;
    if (!st)
        return;
    close_victims(st);
    proc_target_free(st->target);
    free(st);
}

static void free_statep(struct proc_state **st)
{
    free_state(*st);
}

/* Resolves and picks the targets of one round into st->v, each with a
 * verified pidfd open. Processes that exit meanwhile are left out. */
/* The target matched, but every match exited before it could be acted on. */
static int all_exited_error(const struct proc_state *st, const char *acted, struct chaos_err *err)
{
    char what[4200];
    proc_target_describe(st->target, what, sizeof what);
    return chaos_err_set(err, ESRCH,
                         "target matched no process (%s; they all exited before they could be %s)",
                         what, acted);
}

static int resolve_victims(const struct fault_env *env, struct proc_state *st,
                           struct chaos_err *err)
{
    close_victims(st);
    struct proc_ent *ents = NULL;
    size_t n = 0;
    int r = proc_target_resolve(st->target, env, &ents, &n, err);
    if (r < 0)
        return r;
    proc_target_pick(st->target, &st->rng, ents, &n);
    st->v = calloc(n, sizeof *st->v);
    if (!st->v) {
        free(ents);
        return chaos_err_set(err, ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        int fd = proc_target_pidfd(&ents[i], err);
        if (fd == -ESRCH)
            continue; /* exited, or its PID is someone else's now */
        if (fd < 0) {
            free(ents);
            close_victims(st);
            return fd;
        }
        st->v[st->n++] = (struct victim){.ent = ents[i], .pidfd = fd};
    }
    free(ents);
    if (st->n == 0) {
        return all_exited_error(st, "signalled", err);
    }
    return 0;
}

/* "812 (demo-worker), 813 (demo-worker)": the victims, cut to fit size. */
static void list_victims(const struct proc_state *st, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < st->n; i++) {
        char item[64];
        snprintf(item, sizeof item, "%s%d (%s)", i ? ", " : "", (int)st->v[i].ent.pid,
                 st->v[i].ent.comm);
        /* Leave room for the "... and N more" tail. */
        if (off + strlen(item) + 24 >= size) {
            snprintf(buf + off, size - off, ", ... and %zu more", st->n - i);
            return;
        }
        off += (size_t)snprintf(buf + off, size - off, "%s", item);
    }
}

/* ---- kill ---- */

/* One kill round: resolve, pick, signal. Every picked process that is still
 * there gets the signal; one that exited first is not an error. */
static int kill_round(const struct fault_env *env, struct proc_state *st, struct chaos_err *err)
{
    int r = resolve_victims(env, st, err);
    if (r < 0)
        return r;
    size_t sent = 0, w = 0;
    int first = 0;
    char failed[128] = "";
    for (size_t i = 0; i < st->n; i++) {
        r = proc_target_signal(st->v[i].pidfd, st->sig);
        close(st->v[i].pidfd);
        st->v[i].pidfd = -1;
        if (r == 0) {
            st->v[w++] = st->v[i]; /* keep only those signalled, for describe() */
            sent++;
        } else if (r != -ESRCH && first == 0) {
            first = r;
            snprintf(failed, sizeof failed, "%d (%s)", (int)st->v[i].ent.pid, st->v[i].ent.comm);
        }
    }
    st->n = w;
    if (first < 0) {
        char sig[32];
        sig_format(st->sig, sig, sizeof sig);
        return chaos_err_set(err, -first,
                             "cannot send %s to %s: %s (%zu other process%s "
                             "signalled)",
                             sig, failed, strerror(-first), sent, sent == 1 ? " was" : "es were");
    }
    if (sent == 0) {
        return all_exited_error(st, "signalled", err);
    }
    return 0;
}

static int new_state(const struct proc_spec *s, struct proc_state **out, struct chaos_err *err)
{
    __attribute__((cleanup(free_statep))) struct proc_state *st = calloc(1, sizeof *st);
    if (!st)
        return chaos_err_set(err, ENOMEM, "out of memory");
    int r = proc_target_dup(s->target, &st->target, err);
    if (r < 0)
        return r;
    st->action = s->action;
    st->sig = s->sig;
    st->every_ms = s->every_ms;
    st->count = s->count;
    /* Picking all needs no randomness, and a seed shown then would only
     * suggest that the choice could have been different. */
    st->show_seed = !proc_target_picks_all(s->target);
    if (st->show_seed) {
        r = proc_target_seed(s->target, &st->seed, err);
        if (r < 0)
            return r;
    }
    st->rng = st->seed;
    *out = steal_pointer(&st);
    return 0;
}

/* ---- pause ---- */

/* The undo record: every process about to be stopped, by pid and start
 * time, so recovery never resumes a process that merely reuses the PID. */
static int journal_victims(const struct fault_env *env, const struct proc_state *st, size_t n,
                           struct chaos_err *err)
{
    _cleanup_json_ json_t *pids = json_array();
    if (!pids)
        return chaos_err_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_pack("{s:I,s:I,s:s}", "pid", (json_int_t)st->v[i].ent.pid, "start",
                              (json_int_t)st->v[i].ent.start, "comm", st->v[i].ent.comm);
        if (!e || json_array_append_new(pids, e) < 0)
            return chaos_err_set(err, ENOMEM, "out of memory");
    }
    _cleanup_json_ json_t *undo = json_pack("{s:O}", "pids", pids);
    if (!undo)
        return chaos_err_set(err, ENOMEM, "out of memory");
    return fault_journal_undo(env, undo, err);
}

/* Resumes every victim still stopped; a process that exited counts as
 * resumed. Returns 0 or the first error (the others are still tried). */
static int resume_all(struct proc_state *st, struct chaos_err *err)
{
    int first = 0;
    for (size_t i = 0; i < st->n; i++) {
        struct victim *v = &st->v[i];
        if (!v->stopped)
            continue;
        int r = proc_target_signal(v->pidfd, SIGCONT);
        if (r == 0 || r == -ESRCH) {
            v->stopped = false;
        } else if (first == 0) {
            first = r;
            chaos_err_set(err, -r, "cannot resume %d (%s) with SIGCONT: %s", (int)v->ent.pid,
                          v->ent.comm, strerror(-r));
        }
    }
    return first;
}

/* Drops from st the processes that are stopped already (job control, a
 * debugger): pausing them is moot, and resuming them at the end would undo
 * someone else's stop. The pause leaves them exactly as it found them. */
static int skip_already_stopped(struct proc_state *st, struct chaos_err *err)
{
    size_t w = 0;
    for (size_t i = 0; i < st->n; i++) {
        struct proc_ent now;
        char state = 0;
        if (proc_target_stat(st->v[i].ent.pid, &now, &state) == 0 && now.start == st->v[i].ent.start &&
            (state == 'T' || state == 't')) {
            close(st->v[i].pidfd);
            st->already_stopped++;
            continue;
        }
        st->v[w++] = st->v[i];
    }
    st->n = w;
    if (st->n == 0) {
        char what[4200];
        proc_target_describe(st->target, what, sizeof what);
        return chaos_err_set(err, ESRCH,
                             "target matched only processes that are stopped already (%s: %zu); "
                             "nothing to pause",
                             what, st->already_stopped);
    }
    return 0;
}

/* SIGSTOP is only queued when kill returns: the target stops when the
 * kernel next schedules it. A pause reported as applied must be one, or a
 * "during" window would open on a process still answering its last
 * request. No notification exists for the stop of a process that is not
 * our child, so /proc/PID/stat is read until each victim shows T (or is
 * gone), for at most 200 ms; one that takes longer is left to stop on its
 * own (it will: the signal is pending), which is no safety risk. */
static void wait_stopped(const struct proc_state *st)
{
    for (int tries = 0; tries < 200; tries++) {
        bool all = true;
        for (size_t i = 0; i < st->n && all; i++) {
            struct proc_ent now;
            char state = 0;
            if (st->v[i].stopped && proc_target_stat(st->v[i].ent.pid, &now, &state) == 0 &&
                now.start == st->v[i].ent.start && state != 'T' && state != 't')
                all = false;
        }
        if (all)
            return;
        struct timespec ms = {.tv_nsec = 1000000};
        nanosleep(&ms, NULL);
    }
}

static int pause_apply(const struct fault_env *env, struct proc_state *st, struct chaos_err *err)
{
    int r = resolve_victims(env, st, err);
    if (r < 0)
        return r;
    r = skip_already_stopped(st, err);
    if (r < 0)
        return r;
    /* Journal first: if we crash between two SIGSTOPs, recovery must know
     * every process that may be stopped. */
    r = journal_victims(env, st, st->n, err);
    if (r < 0)
        return r;
    size_t stopped = 0;
    for (size_t i = 0; i < st->n; i++) {
        struct victim *v = &st->v[i];
        r = proc_target_signal(v->pidfd, SIGSTOP);
        if (r == 0) {
            v->stopped = true;
            stopped++;
            continue;
        }
        if (r == -ESRCH)
            continue; /* exited since we resolved it: nothing to pause or resume */
        chaos_err_set(err, -r, "cannot stop %d (%s) with SIGSTOP: %s", (int)v->ent.pid, v->ent.comm,
                      strerror(-r));
        break;
    }
    if (r == 0 && stopped == 0) {
        r = all_exited_error(st, "paused", err);
    }
    if (r < 0) {
        /* Leave nothing applied: resume what we stopped and empty the undo
         * record so a recovery does not send SIGCONT to them later. Errors
         * here cannot be reported better than the one we already have. */
        struct chaos_err ignored = {0};
        IGNORE_RESULT(resume_all(st, &ignored));
        /* If this fails, the record still names processes we resumed:
         * recovery would only send them a harmless extra SIGCONT. */
        IGNORE_RESULT(journal_victims(env, st, 0, &ignored));
        return r;
    }
    wait_stopped(st);
    return 0;
}

/* ---- ops ---- */

static int process_apply(const struct fault_env *env, const void *spec, void **state,
                         int64_t *next_step_ms, struct chaos_err *err)
{
    const struct proc_spec *s = spec;
    __attribute__((cleanup(free_statep))) struct proc_state *st = NULL;
    int r = new_state(s, &st, err);
    if (r < 0)
        return r;
    *next_step_ms = 0;
    if (s->action == ACTION_PAUSE) {
        r = pause_apply(env, st, err);
        if (r < 0)
            return r;
    } else {
        r = kill_round(env, st, err);
        st->round = 1;
        if (r < 0)
            return r;
        if (st->round < st->count)
            *next_step_ms = st->every_ms;
    }
    *state = steal_pointer(&st);
    return 0;
}

static int process_step(const struct fault_env *env, void *state, int64_t *next_step_ms,
                        struct chaos_err *err)
{
    struct proc_state *st = state;
    *next_step_ms = 0;
    if (st->action != ACTION_KILL || st->round >= st->count)
        return 0;
    /* Re-resolve every round: a supervisor restarts killed workers under
     * new PIDs, and those are what the next round must hit. */
    int r = kill_round(env, st, err);
    st->round++;
    /* Even a round that found nothing keeps the schedule: the next one may. */
    if (st->round < st->count)
        *next_step_ms = st->every_ms;
    return r;
}

static int process_revert(const struct fault_env *env, void *state, struct chaos_err *err)
{
    struct proc_state *st = state;
    if (st->action != ACTION_PAUSE)
        return 0;
    int r = resume_all(st, err);
    if (r < 0)
        return r;
    st->reverted = true;
    for (size_t i = 0; i < st->n; i++)
        if (st->v[i].pidfd >= 0) {
            close(st->v[i].pidfd);
            st->v[i].pidfd = -1;
        }
    return 0;
}

/* Resumes, after a crash, the processes an undo record names, but only
 * those whose start time still matches: the PID of one that exited may
 * belong to another process now. */
static int process_recover(const json_t *undo, struct chaos_err *err)
{
    const json_t *pids = json_object_get(undo, "pids");
    if (!json_is_array(pids))
        return chaos_err_set(err, EINVAL, "process undo record: \"pids\" must be an array");
    int first = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(pids, i, e)
    {
        const json_t *jp = json_object_get(e, "pid"), *js = json_object_get(e, "start");
        if (!json_is_integer(jp) || !json_is_integer(js) || json_integer_value(jp) < 1 ||
            json_integer_value(jp) > PROC_TARGET_PID_MAX || json_integer_value(js) < 0)
            return chaos_err_set(err, EINVAL,
                                 "process undo record: pids[%zu] needs a \"pid\" "
                                 "and a \"start\"",
                                 i);
        struct proc_ent want = {.pid = (pid_t)json_integer_value(jp),
                                .start = (unsigned long long)json_integer_value(js)};
        const char *comm = json_string_value(json_object_get(e, "comm"));
        snprintf(want.comm, sizeof want.comm, "%s", comm ? comm : "?");
        /* proc_target_pidfd checks the start time after pinning the process;
         * ESRCH means gone or a different process now: nothing to resume. */
        int fd = proc_target_pidfd(&want, NULL);
        if (fd == -ESRCH)
            continue;
        int r = fd;
        if (fd >= 0) {
            r = proc_target_signal(fd, SIGCONT);
            close(fd);
            if (r == -ESRCH)
                continue;
        }
        if (r < 0 && first == 0) {
            first = r;
            chaos_err_set(err, -r, "cannot resume %d (%s): %s", (int)want.pid, want.comm,
                          strerror(-r));
        }
    }
    return first;
}

static void process_describe(const void *state, char *buf, size_t size)
{
    const struct proc_state *st = state;
    char list[512], seed[64] = "";
    list_victims(st, list, sizeof list);
    if (st->show_seed)
        snprintf(seed, sizeof seed, "; pick seed %llu", (unsigned long long)st->seed);
    const char *s = st->n == 1 ? "" : "es";
    if (st->action == ACTION_PAUSE) {
        char skipped[96] = "";
        if (st->already_stopped)
            snprintf(skipped, sizeof skipped, " (%zu stopped already, left alone)",
                     st->already_stopped);
        snprintf(buf, size, "%s %zu process%s: %s%s%s", st->reverted ? "resumed" : "paused", st->n,
                 s, list, skipped, seed);
        return;
    }
    char sig[32], round[64] = "";
    sig_format(st->sig, sig, sizeof sig);
    if (st->count > 1)
        snprintf(round, sizeof round, " (round %lld/%lld)", st->round, st->count);
    if (st->n == 0) {
        /* The last round failed: it found no process, or could not read
         * the target (its error went to the engine). */
        char what[256];
        proc_target_describe(st->target, what, sizeof what);
        snprintf(buf, size, "kill%s signalled no process (%s)%s", round, what, seed);
        return;
    }
    snprintf(buf, size, "killed %zu process%s with %s%s: %s%s", st->n, s, sig, round, list, seed);
}

static void process_plan(const void *spec, char *buf, size_t size)
{
    const struct proc_spec *s = spec;
    char what[256];
    proc_target_describe(s->target, what, sizeof what);
    if (s->action == ACTION_PAUSE) {
        snprintf(buf, size, "pause processes: %s", what);
        return;
    }
    char sig[32], rounds[64] = "";
    sig_format(s->sig, sig, sizeof sig);
    if (s->count > 1) {
        char every[32];
        duration_format(s->every_ms, every, sizeof every);
        snprintf(rounds, sizeof rounds, ", %lld rounds every %s", s->count, every);
    }
    snprintf(buf, size, "kill with %s: %s%s", sig, what, rounds);
}

/* What the target matches at this moment, before its pick: a plan that
 * says "pause cgroup x" should also say that means 24 processes. */
static void process_preview(const void *spec, char *buf, size_t size)
{
    const struct proc_spec *s = spec;
    struct chaos_err err = {0};
    struct fault_env env = {.protected_pids = {1, getpid(), getppid()}, .n_protected = 3};
    struct proc_ent *ents = NULL;
    size_t n = 0;
    if (proc_target_resolve(s->target, &env, &ents, &n, &err) < 0) {
        snprintf(buf, size, "%s", err.msg);
        return;
    }
    int off = snprintf(buf, size, "the target matches %zu process%s:", n, n == 1 ? "" : "es");
    for (size_t i = 0; i < n && i < 8 && off >= 0 && (size_t)off < size; i++)
        off += snprintf(buf + off, size - (size_t)off, "%s %d (%s)", i ? "," : "",
                        (int)ents[i].pid, ents[i].comm);
    if (n > 8 && off >= 0 && (size_t)off < size)
        snprintf(buf + off, size - (size_t)off, ", ...");
    free(ents);
}

const struct fault_ops fault_process_ops = {
    .kind = "process",
    .parse = process_parse,
    .free_spec = free_spec,
    .apply = process_apply,
    .step = process_step,
    .revert = process_revert,
    .recover = process_recover,
    .describe = process_describe,
    .plan = process_plan,
    .preview = process_preview,
    .free_state = free_state,
};
