/* Crash recovery: reverting what journals of dead runs say is still applied. */
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "fault.h"
#include "journal.h"


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
