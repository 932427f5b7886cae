#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fault.h"
#include "journal.h"
#include "loop.h"
#include "util.h"

struct engine_fault {
    struct engine *engine;
    struct engine_fault *next;
    char *name;
    char id[80];
    const struct fault_spec *spec; /* borrowed: the scenario owns it */
    void *state;
    enum fault_state st;
    struct fault_env env;
    uint64_t revert_timer;
    uint64_t step_timer;
    engine_event_cb cb;
    void *cb_arg;
    bool revert_failed;
    char error[sizeof(((struct chaos_err *)0)->msg)];
};

struct engine {
    struct loop *loop;
    struct journal *journal;
    pid_t protected_pids[FAULT_MAX_PROTECTED];
    size_t n_protected;
    struct engine_fault *faults;
    unsigned seq;
};

/* ---- fault specs and the helpers fault kinds use ---- */

int fault_spec_parse(const char *kind, const json_t *target, const json_t *params, const char *ctx,
                     int64_t duration_ms, struct fault_spec **out, struct chaos_err *err)
{
    const struct fault_ops *ops = fault_ops_find(kind);
    if (!ops)
        return chaos_err_set(err, EINVAL, "%s: kind: unknown fault kind '%s' (available: %s)", ctx,
                             kind, fault_kinds_list());
    struct fault_spec *fs = calloc(1, sizeof *fs);
    if (!fs)
        return chaos_err_set(err, ENOMEM, "out of memory");
    fs->ops = ops;
    int r = ops->parse(target, params, ctx, duration_ms, &fs->spec, &fs->info, err);
    if (r < 0) {
        free(fs);
        return r;
    }
    *out = fs;
    return 0;
}

void fault_spec_free(struct fault_spec *fs)
{
    if (!fs)
        return;
    if (fs->spec)
        fs->ops->free_spec(fs->spec);
    free(fs);
}

void fault_spec_plan(const struct fault_spec *fs, char *buf, size_t size)
{
    if (!size)
        return;
    buf[0] = '\0';
    if (fs && fs->spec && fs->ops->plan)
        fs->ops->plan(fs->spec, buf, size);
}

int fault_journal_undo(const struct fault_env *env, const json_t *undo, struct chaos_err *err)
{
    if (!env->journal)
        return chaos_err_set(err, EINVAL, "no journal: refusing to apply a lasting fault");
    return journal_record_apply(env->journal, env->fault_id, env->kind, undo, env->deadline_ms,
                                err);
}

bool fault_env_is_protected(const struct fault_env *env, pid_t pid)
{
    for (size_t i = 0; i < env->n_protected; i++)
        if (env->protected_pids[i] == pid)
            return true;
    return false;
}

/* ---- the engine ---- */

int engine_new(struct loop *loop, const char *journal_path, const pid_t *extra_protected, size_t n,
               struct engine **out, struct chaos_err *err)
{
    if (n + 3 > FAULT_MAX_PROTECTED)
        return chaos_err_set(err, EINVAL, "too many protected pids");
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return chaos_err_set(err, ENOMEM, "out of memory");
    e->loop = loop;
    e->protected_pids[e->n_protected++] = 1;
    e->protected_pids[e->n_protected++] = getpid();
    e->protected_pids[e->n_protected++] = getppid();
    for (size_t i = 0; i < n; i++)
        e->protected_pids[e->n_protected++] = extra_protected[i];
    int r = journal_open(journal_path, &e->journal, err);
    if (r < 0) {
        free(e);
        return r;
    }
    *out = e;
    return 0;
}

static void fault_free(struct engine_fault *f)
{
    if (f->state && f->spec->ops->free_state)
        f->spec->ops->free_state(f->state);
    free(f->name);
    free(f);
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    bool keep_journal = false;
    for (struct engine_fault *f = e->faults, *next; f; f = next) {
        next = f->next;
        if (f->spec->info.lasting && (f->st == FAULT_ACTIVE || f->revert_failed))
            keep_journal = true;
        if (f->revert_timer)
            loop_cancel_timer(e->loop, f->revert_timer);
        if (f->step_timer)
            loop_cancel_timer(e->loop, f->step_timer);
        fault_free(f);
    }
    /* A fault still active (or whose revert failed: it stays active in the
     * journal's eyes) keeps the journal for a later recovery. */
    journal_close(e->journal, !keep_journal);
    free(e);
}

static void emit(struct engine_fault *f, enum engine_event ev, const char *detail)
{
    if (f->cb)
        f->cb(f, ev, detail, f->cb_arg);
}

static void on_revert_timer(struct loop *loop, void *arg)
{
    struct engine_fault *f = arg;
    struct chaos_err err = {0};
    f->revert_timer = 0;
    /* Errors are recorded in f and reported through the event callback. */
    IGNORE_RESULT(engine_revert(f->engine, f, &err));
}

static void on_step_timer(struct loop *loop, void *arg);
static void finish_if_done(struct engine_fault *f);

static void on_natural_end(struct loop *loop, void *arg)
{
    struct engine_fault *f = arg;
    f->revert_timer = 0;
    if (f->step_timer) { /* cannot happen with every x count; never outlive the window */
        loop_cancel_timer(loop, f->step_timer);
        f->step_timer = 0;
    }
    finish_if_done(f);
}

/* Arms the timer of f's next round (none when next_step_ms <= 0). Returns 0,
 * or the positive errno of a timer that could not be armed. */
static int schedule_step(struct engine_fault *f, int64_t next_step_ms)
{
    f->step_timer = 0;
    if (next_step_ms <= 0)
        return 0;
    f->step_timer = loop_add_timer(f->engine->loop, loop_now_ms() + next_step_ms, on_step_timer, f);
    return f->step_timer ? 0 : errno ? errno : ENOMEM;
}

/* A timer f depends on (`timer`: "revert timer", ...) could not be armed
 * (errno e). f must not run on without it: a lasting fault whose revert
 * timer never fires would never be reverted. So f's other timers are
 * cancelled, a lasting part is reverted at once (the journal records the
 * revert), and f ends FAULT_FAILED with the reason in f->error and err:
 * "cannot arm its revert timer: ...; reverted". When that revert
 * fails too, f->revert_failed is set and the journal keeps the record for
 * `chaos recover`. Emits nothing; returns -e. */
static int end_unarmed(struct engine_fault *f, const char *timer, int e, struct chaos_err *err)
{
    struct engine *eng = f->engine;
    if (f->revert_timer)
        loop_cancel_timer(eng->loop, f->revert_timer);
    if (f->step_timer)
        loop_cancel_timer(eng->loop, f->step_timer);
    f->revert_timer = f->step_timer = 0;
    char what[sizeof f->error];
    if (f->spec->info.lasting && f->spec->ops->revert) {
        struct chaos_err rerr = {0}, jerr = {0};
        if (f->spec->ops->revert(&f->env, f->state, &rerr) < 0) {
            f->revert_failed = true;
            snprintf(what, sizeof what,
                     "its revert failed too: %s; the journal keeps it for `chaos recover`",
                     rerr.msg);
        } else if (journal_record_revert(eng->journal, f->id, &jerr) < 0) {
            snprintf(what, sizeof what, "reverted, but %s", jerr.msg);
        } else {
            snprintf(what, sizeof what, "reverted");
        }
    } else {
        snprintf(what, sizeof what, "no further rounds run (what ran cannot be undone)");
    }
    f->st = FAULT_FAILED;
    /* No fault name: like every apply error, the caller puts it in front. */
    chaos_err_set(err, e, "cannot arm its %s: %s; %s", timer, strerror(e), what);
    snprintf(f->error, sizeof f->error, "%s", err->msg);
    return -e;
}

/* A non-lasting fault is done once it has no more steps to run and its
 * natural duration (a repeated kill: every x count) has passed, so windows
 * "during" it also see the effect of its last round. */
static void finish_if_done(struct engine_fault *f)
{
    if (f->st == FAULT_ACTIVE && !f->spec->info.lasting && !f->step_timer && !f->revert_timer) {
        f->st = FAULT_REVERTED;
        char d[512];
        engine_fault_describe(f, d, sizeof d);
        emit(f, ENGINE_FINISHED, d);
    }
}

static void on_step_timer(struct loop *loop, void *arg)
{
    struct engine_fault *f = arg;
    f->step_timer = 0;
    if (f->st != FAULT_ACTIVE)
        return;
    int64_t next = 0;
    struct chaos_err err = {0};
    int r = f->spec->ops->step(&f->env, f->state, &next, &err);
    /* Armed before the event goes out: a handler may revert f (an abort). */
    int unarmed = schedule_step(f, next);
    if (r < 0) {
        snprintf(f->error, sizeof f->error, "%s", err.msg);
        emit(f, ENGINE_STEP_FAILED, err.msg);
    } else {
        char d[512];
        engine_fault_describe(f, d, sizeof d);
        emit(f, ENGINE_STEPPED, d);
    }
    if (unarmed && f->st == FAULT_ACTIVE) {
        struct chaos_err uerr = {0};
        IGNORE_RESULT(end_unarmed(f, "timer for its next round", unarmed, &uerr));
        emit(f, f->revert_failed ? ENGINE_FAILED : ENGINE_ABORTED, f->error);
        return;
    }
    finish_if_done(f);
}

int engine_apply(struct engine *e, const char *name, const struct fault_spec *spec,
                 int64_t duration_ms, engine_event_cb cb, void *arg, struct engine_fault **out,
                 struct chaos_err *err)
{
    struct engine_fault *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name))) {
        free(f);
        return chaos_err_set(err, ENOMEM, "out of memory");
    }
    f->engine = e;
    f->spec = spec;
    f->cb = cb;
    f->cb_arg = arg;
    f->st = FAULT_FAILED;
    snprintf(f->id, sizeof f->id, "f%u-%d", ++e->seq, (int)getpid());
    memcpy(f->env.protected_pids, e->protected_pids, sizeof e->protected_pids);
    f->env.n_protected = e->n_protected;
    f->env.journal = e->journal;
    f->env.fault_id = f->id;
    f->env.kind = spec->ops->kind;
    f->env.deadline_ms = spec->info.lasting && duration_ms >= 0 ? loop_unix_ms() + duration_ms : 0;
    f->next = e->faults;
    e->faults = f;
    *out = f;

    if (spec->info.lasting && duration_ms < 0)
        return chaos_err_set(err, EINVAL, "fault '%s': a lasting fault needs a duration", name);

    int64_t next = 0;
    int r = spec->ops->apply(&f->env, spec->spec, &f->state, &next, err);
    if (r < 0) {
        snprintf(f->error, sizeof f->error, "%s", err->msg);
        /* apply left nothing behind; close any undo record it journalled. */
        struct chaos_err jerr = {0};
        if (spec->info.lasting && journal_record_revert(e->journal, f->id, &jerr) < 0)
            snprintf(f->error, sizeof f->error, "%s (and %s)", err->msg, jerr.msg);
        return r;
    }
    f->st = FAULT_ACTIVE;
    /* The fault is applied: from here on a timer that cannot be armed
     * undoes it rather than leave it to a timer that will never fire. */
    if (spec->info.lasting) {
        f->revert_timer = loop_add_timer(e->loop, loop_now_ms() + duration_ms, on_revert_timer, f);
        if (!f->revert_timer)
            return end_unarmed(f, "revert timer", errno ? errno : ENOMEM, err);
    } else if (spec->info.natural_duration_ms > 0) {
        f->revert_timer = loop_add_timer(e->loop, loop_now_ms() + spec->info.natural_duration_ms,
                                         on_natural_end, f);
        if (!f->revert_timer)
            return end_unarmed(f, "end timer", errno ? errno : ENOMEM, err);
    }
    int unarmed = schedule_step(f, next);
    if (unarmed)
        return end_unarmed(f, "step timer", unarmed, err);
    char d[512];
    engine_fault_describe(f, d, sizeof d);
    emit(f, ENGINE_APPLIED, d);
    finish_if_done(f);
    return 0;
}

int engine_revert(struct engine *e, struct engine_fault *f, struct chaos_err *err)
{
    if (f->st != FAULT_ACTIVE)
        return 0;
    if (f->revert_timer) {
        loop_cancel_timer(e->loop, f->revert_timer);
        f->revert_timer = 0;
    }
    if (f->step_timer) {
        loop_cancel_timer(e->loop, f->step_timer);
        f->step_timer = 0;
    }
    if (f->spec->info.lasting && f->spec->ops->revert) {
        int r = f->spec->ops->revert(&f->env, f->state, err);
        if (r < 0) {
            f->st = FAULT_FAILED;
            f->revert_failed = true;
            snprintf(f->error, sizeof f->error, "revert failed: %s", err->msg);
            emit(f, ENGINE_FAILED, f->error);
            return r;
        }
        struct chaos_err jerr = {0};
        if (journal_record_revert(e->journal, f->id, &jerr) < 0)
            snprintf(f->error, sizeof f->error, "reverted, but %s", jerr.msg);
    }
    f->st = FAULT_REVERTED;
    char d[512];
    engine_fault_describe(f, d, sizeof d);
    emit(f, ENGINE_REVERTED, d);
    return 0;
}

int engine_revert_all(struct engine *e)
{
    int failed = 0;
    for (struct engine_fault *f = e->faults; f; f = f->next) {
        struct chaos_err err = {0};
        if (engine_revert(e, f, &err) < 0)
            failed++;
    }
    return failed;
}

size_t engine_active_count(const struct engine *e)
{
    size_t n = 0;
    for (const struct engine_fault *f = e->faults; f; f = f->next)
        n += f->st == FAULT_ACTIVE;
    return n;
}

const char *engine_fault_name(const struct engine_fault *f)
{
    return f->name;
}

const char *engine_fault_id(const struct engine_fault *f)
{
    return f->id;
}

enum fault_state engine_fault_state(const struct engine_fault *f)
{
    return f->st;
}

const char *engine_fault_error(const struct engine_fault *f)
{
    return f->error;
}

void engine_fault_describe(const struct engine_fault *f, char *buf, size_t size)
{
    if (f->state && f->spec->ops->describe)
        f->spec->ops->describe(f->state, buf, size);
    else
        snprintf(buf, size, "%s fault '%s'", f->spec->ops->kind, f->name);
}

/* ---- crash recovery ---- */

struct recover_ctx {
    const char *path;
    void (*log)(const char *line, void *arg);
    void *arg;
    size_t reverted, noop;
};

static void say(const struct recover_ctx *rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct recover_ctx *rc, const char *fmt, ...)
{
    if (!rc->log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    rc->log(line, rc->arg);
}

/* A kind's recover() may succeed with a note in err (err->code 0, a
 * message): there was nothing left to revert, and the note says why (e.g.
 * the network namespace is gone and took the fault with it). */
static int recover_one(const char *id, const char *kind, const json_t *undo, void *arg)
{
    struct recover_ctx *rc = arg;
    const struct fault_ops *ops = fault_ops_find(kind);
    struct chaos_err err = {0};
    int r;
    if (!ops || !ops->recover)
        r = chaos_err_set(&err, ENOTSUP, "unknown fault kind '%s'", kind);
    else
        r = ops->recover(undo, &err);
    if (r < 0) {
        say(rc, "%s: could not revert %s fault %s: %s", rc->path, kind, id, err.msg);
    } else if (err.code == 0 && err.msg[0]) {
        rc->noop++;
        say(rc, "%s: %s fault %s left by a crashed run: nothing to revert: %s", rc->path, kind,
            id, err.msg);
    } else {
        rc->reverted++;
        say(rc, "%s: reverted %s fault %s left by a crashed run", rc->path, kind, id);
    }
    return r < 0;
}

/* Reverts what path holds and says so in one line; why names the owner's
 * fate ("its run (pid 812) is gone"). Returns the failures, or -errno. */
static int recover_journal(const char *path, const char *why,
                           void (*log)(const char *line, void *arg), void *arg,
                           struct chaos_err *err)
{
    struct recover_ctx rc = {.path = path, .log = log, .arg = arg};
    struct journal_info info;
    int r = journal_read(path, &info, recover_one, &rc, err);
    if (r < 0)
        return r;
    char torn[128] = "";
    if (info.torn)
        snprintf(torn, sizeof torn, "; its last record was cut short by the crash (that fault "
                                    "was never applied)");
    if (info.bad_lines) {
        /* A record we cannot read may be a fault that is still applied. */
        char more[64] = "";
        if (info.bad_lines > 1)
            snprintf(more, sizeof more, " (and %zu more)", info.bad_lines - 1);
        say(&rc,
            "%s: %s; reverted %zu fault%s, failed %d; KEPT the journal: line %zu%s is not a "
            "journal record, so a fault may still be applied: check by hand, then remove the file",
            path, why, rc.reverted, rc.reverted == 1 ? "" : "s", r, info.first_bad_line, more);
        return r + 1;
    }
    if (r) {
        say(&rc, "%s: %s; reverted %zu fault%s, %d could not be reverted (see above): kept the "
                 "journal for another `chaos recover`%s",
            path, why, rc.reverted, rc.reverted == 1 ? "" : "s", r, torn);
        return r;
    }
    if (unlink(path) < 0 && errno != ENOENT)
        say(&rc, "%s: could not remove it: %s", path, strerror(errno));
    char noop[64] = "";
    if (rc.noop)
        snprintf(noop, sizeof noop, ", %zu had nothing left to revert", rc.noop);
    say(&rc, "%s: %s; reverted %zu fault%s%s%s; removed the journal", path, why, rc.reverted,
        rc.reverted == 1 ? "" : "s", noop, torn);
    return 0;
}

int engine_recover_file(const char *path, void (*log)(const char *line, void *arg), void *arg,
                        struct chaos_err *err)
{
    int r = recover_journal(path, "its run died", log, arg, err);
    if (r < 0)
        return err->code == ENOENT ? 0 : r;
    return r;
}

/* Why the journal's owner is not running, for the line about it; false
 * when it still runs (or /proc cannot tell, which counts as running). */
static bool owner_gone(const struct journal_owner *o, char *why, size_t size)
{
    int tgid = 0;
    switch (journal_owner_check(o, &tgid)) {
    case JOURNAL_OWNER_ALIVE:
        snprintf(why, size, "its run (pid %d) is still running", o->pid);
        return false;
    case JOURNAL_OWNER_UNKNOWN:
        snprintf(why, size, "cannot tell whether its run (pid %d) still runs (/proc/%d is not "
                 "readable)", o->pid, o->pid);
        return false;
    case JOURNAL_OWNER_NONE:
        snprintf(why, size, "it names no run (its first record is missing: truncated)");
        return true;
    case JOURNAL_OWNER_GONE:
        snprintf(why, size, "its run (pid %d) is gone", o->pid);
        return true;
    case JOURNAL_OWNER_RECYCLED:
        snprintf(why, size, "its run (pid %d) is gone (the pid was recycled: another process "
                 "has it now)", o->pid);
        return true;
    case JOURNAL_OWNER_THREAD:
        snprintf(why, size, "its run (pid %d) is gone (the pid is now a thread of process %d)",
                 o->pid, tgid);
        return true;
    }
    return false;
}

/* One journal of engine_recover_dir: skipped or recovered, in one line. */
static int recover_dir_entry(const char *path, bool all, void (*log)(const char *line, void *arg),
                             void *arg)
{
    struct recover_ctx rc = {.path = path, .log = log, .arg = arg};
    struct chaos_err rerr = {0};
    struct journal_info info;
    if (journal_read(path, &info, NULL, NULL, &rerr) < 0) {
        if (rerr.code == ENOENT)
            return 0; /* its run finished and removed it meanwhile */
        say(&rc, "%s: skipped, cannot read it (%s): kept it; a fault it records may still be "
                 "applied", path, rerr.msg);
        return 1;
    }
    char why[192];
    if (!owner_gone(&info.owner, why, sizeof why)) {
        if (!all) {
            say(&rc, "%s: skipped: %s (`chaos recover --all` takes it anyway)", path, why);
            return 0;
        }
        snprintf(why, sizeof why, "--all given (its run, pid %d, may still be running)",
                 info.owner.pid);
    }
    int r = recover_journal(path, why, log, arg, &rerr);
    if (r < 0) {
        if (rerr.code == ENOENT)
            return 0;
        say(&rc, "%s: %s", path, rerr.msg);
        return 1;
    }
    return r;
}

int engine_recover_dir(const char *dir, bool all, void (*log)(const char *line, void *arg),
                       void *arg, struct chaos_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return chaos_err_set(err, errno, "journal folder %s: %s", dir, strerror(errno));
    }
    int failures = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 7 || strcmp(de->d_name + len - 6, ".jsonl") != 0)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        failures += recover_dir_entry(path, all, log, arg);
    }
    closedir(d);
    return failures;
}
