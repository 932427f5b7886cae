/* Recovery of the silences of runs that died: each journal under
 * <state_dir>/silences/ whose run is gone has its silences expired (DELETE
 * /api/v2/silence/{id}), on a loop of its own, before a new run starts and
 * by `chaos recover`. */
#include "run_silences.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "am_silence.h"
#include "proc_stat.h"
#include "run_silences_impl.h"
#include "util.h"

/* Bounds one journal's requests: each has its connection's own timeout too. */
#define RECOVER_LIMIT_MS 60000

struct recovery {
    struct loop *loop;
    size_t pending;
    void (*log)(const char *line, void *arg);
    void *arg;
};

struct pending_silence {
    struct recovery *rc;
    struct am_silencer *am;
    json_t *entry; /* {"name","alertmanager","id"} */
    bool done, ok;
};

static void __attribute__((format(printf, 2, 3))) say(struct recovery *rc, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (rc->log)
        rc->log(line, rc->arg);
}

/* Whether the run that wrote the journal is gone (or --all); why says so. */
static bool owner_gone(const json_t *j, bool all, char *why, size_t size)
{
    int pid = (int)json_integer_value(json_object_get(j, "pid"));
    unsigned long long start = (unsigned long long)json_integer_value(json_object_get(j, "start"));
    struct proc_stat st;
    int r = pid > 0 ? proc_stat_read(pid, &st) : -ESRCH;
    /* A zombie is gone too: the guard recovers while its run awaits its reaper. */
    if (r == -ESRCH || (r == 0 && (st.start != start || st.state == 'Z' || st.state == 'X'))) {
        snprintf(why, size, "its run (pid %d) is gone", pid);
        return true;
    }
    snprintf(why, size, "its run (pid %d) %s", pid,
             r == 0 ? "is still running" : "cannot be told apart from a running one");
    return all;
}

static void on_deleted(const char *error, void *arg)
{
    struct pending_silence *p = arg;
    const char *id = json_string_value(json_object_get(p->entry, "id"));
    p->done = true;
    p->ok = !error || strstr(error, "status 404") || strstr(error, "already expired");
    if (p->ok)
        say(p->rc, "silence %s expired", id);
    else
        say(p->rc, "silence %s: not expired: %s", id, error);
    if (!--p->rc->pending)
        loop_stop(p->rc->loop);
}

static void on_limit(struct loop *loop, void *arg)
{
    (void)arg;
    loop_stop(loop);
}

static bool send_one(struct recovery *rc, struct pending_silence *p, const char *path)
{
    const char *id = json_string_value(json_object_get(p->entry, "id"));
    struct chaos_err e = {0};
    int r = am_silencer_new(rc->loop, json_object_get(p->entry, "alertmanager"), "alertmanager",
                            &p->am, &e);
    if (r == 0 && (r = am_silence_delete(p->am, id, on_deleted, p, &e)) == 0) {
        rc->pending++;
        return true;
    }
    say(rc, "%s: silence %s: %s", path, id ? id : "(no id)", e.msg);
    return false;
}

/* Expires the silences of one journal; keeps in it those that failed.
 * Returns how many failed. */
static int recover_journal(struct recovery *rc, const char *path, json_t *j)
{
    json_t *list = json_object_get(j, "silences");
    size_t n = json_array_size(list);
    struct pending_silence *ps = calloc(n ? n : 1, sizeof *ps);
    if (!ps) {
        say(rc, "%s: out of memory", path);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        ps[i] = (struct pending_silence){.rc = rc, .entry = json_array_get(list, i)};
        send_one(rc, &ps[i], path);
    }
    uint64_t limit = rc->pending ? loop_add_timer(rc->loop, loop_now_ms() + RECOVER_LIMIT_MS,
                                                  on_limit, NULL) : 0;
    if (rc->pending && (!limit || loop_run(rc->loop) < 0))
        say(rc, "%s: the event loop failed: %s", path, strerror(errno));
    if (limit)
        loop_cancel_timer(rc->loop, limit);
    rc->pending = 0;
    json_t *left = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!ps[i].ok && left)
            json_array_append(left, ps[i].entry);
        am_silencer_free(ps[i].am); /* drops an answer that never came */
    }
    free(ps);
    int failed = left ? (int)json_array_size(left) : (int)n;
    char why[512];
    if (!failed && unlink(path) < 0 && errno != ENOENT)
        say(rc, "%s: %s", path, strerror(errno));
    if (failed && left && json_object_set(j, "silences", left) == 0 &&
        silence_journal_write(path, j, why, sizeof why) < 0)
        say(rc, "%s", why);
    json_decref(left);
    return failed;
}

static int recover_entry(struct recovery *rc, const char *path, bool all)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j || !json_is_array(json_object_get(j, "silences"))) {
        say(rc, "%s: not a silence journal (%s); kept", path, j ? "no \"silences\"" : jerr.text);
        json_decref(j);
        return 1;
    }
    char why[128];
    int failed = 0;
    if (!owner_gone(j, all, why, sizeof why))
        say(rc, "%s: skipped: %s (`chaos recover --all` takes it anyway)", path, why);
    else {
        say(rc, "%s: %s; expiring the silences of run %s", path, why,
            json_string_value(json_object_get(j, "run_id")) ?: "?");
        failed = recover_journal(rc, path, j);
    }
    json_decref(j);
    return failed;
}

int run_silences_recover(const char *state_dir, bool all, void (*log)(const char *line, void *arg),
                         void *arg, struct chaos_err *err)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/silences", state_dir) >= (int)sizeof dir)
        return chaos_err_set(err, ENAMETOOLONG, "%s/silences: path too long", state_dir);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : chaos_err_set(err, errno, "%s: %s", dir, strerror(errno));
    struct recovery rc = {.log = log, .arg = arg};
    int failed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        if (!rc.loop && !(rc.loop = loop_new())) {
            closedir(d);
            return chaos_err_set(err, errno, "event loop: %s", strerror(errno));
        }
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        failed += recover_entry(&rc, path, all);
    }
    closedir(d);
    loop_free(rc.loop);
    return failed;
}
