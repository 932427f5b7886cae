/* The run's Alertmanager silences: creation before the faults, removal after
 * the reverts, and the journal that lets `chaos recover` remove them after a
 * run that died (run_silences_recover.c). */
#include "run_silences.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "am_silence.h"
#include "fsutil.h"
#include "proc_stat.h"
#include "run_silences_impl.h"
#include "util.h"

struct item {
    struct run_silences *rs;
    const struct scenario_silence *sl;
    struct am_silencer *am;
    char *id;
    bool in_flight, created, removed;
    char error[384];
};

struct run_silences {
    const struct scenario *s;
    char journal[PATH_MAX];
    char run_id[96];
    struct item *items;
    size_t n;
    size_t pending;
    bool removing;
    run_silences_created_cb created_done;
    void (*removed_done)(void *arg);
    void *arg;
};

int run_silences_new(struct loop *loop, const struct scenario *s, const char *state_dir,
                     const char *run_id, struct run_silences **out, struct chaos_err *err)
{
    struct run_silences *rs = calloc(1, sizeof *rs);
    if (!rs || !(rs->items = calloc(s->n_silences ? s->n_silences : 1, sizeof *rs->items))) {
        free(rs);
        return chaos_err_set(err, ENOMEM, "silences: out of memory");
    }
    rs->s = s;
    snprintf(rs->run_id, sizeof rs->run_id, "%s", run_id);
    int n = snprintf(rs->journal, sizeof rs->journal, "%s/silences/%s.json", state_dir, run_id);
    if (n < 0 || (size_t)n >= sizeof rs->journal) {
        free(rs->items);
        free(rs);
        return chaos_err_set(err, ENAMETOOLONG, "silences: the state folder's path is too long");
    }
    for (size_t i = 0; i < s->n_silences; i++) {
        struct item *it = &rs->items[i];
        *it = (struct item){.rs = rs, .sl = &s->silences[i]};
        rs->n++;
        char ctx[160];
        snprintf(ctx, sizeof ctx, "silence '%s': alertmanager", it->sl->name);
        int r = am_silencer_new(loop, it->sl->alertmanager, ctx, &it->am, err);
        if (r < 0) {
            run_silences_free(rs);
            return r;
        }
    }
    *out = rs;
    return 0;
}

void run_silences_free(struct run_silences *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        am_silencer_free(rs->items[i].am);
        free(rs->items[i].id);
    }
    free(rs->items);
    free(rs);
}

/* ---- the journal ---- */

static json_t *journal_json(const struct run_silences *rs)
{
    struct proc_stat st;
    unsigned long long start = proc_stat_read(getpid(), &st) == 0 ? st.start : 0;
    json_t *arr = json_array();
    json_t *j = json_pack("{s:i, s:I, s:s, s:o}", "pid", (int)getpid(), "start", (json_int_t)start,
                          "run_id", rs->run_id, "silences", arr);
    if (!j)
        return NULL;
    for (size_t i = 0; i < rs->n; i++) {
        const struct item *it = &rs->items[i];
        if (!it->created || it->removed)
            continue;
        if (json_array_append_new(arr, json_pack("{s:s, s:O, s:s}", "name", it->sl->name,
                                                 "alertmanager", it->sl->alertmanager, "id",
                                                 it->id)) < 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

/* The journal names the silences created and not removed; with none left
 * it goes. Returns 0 or a negative errno with why set. */
static int journal_sync(const struct run_silences *rs, char *why, size_t size)
{
    bool any = false;
    for (size_t i = 0; i < rs->n; i++)
        any |= rs->items[i].created && !rs->items[i].removed;
    if (!any) {
        if (unlink(rs->journal) < 0 && errno != ENOENT)
            return snprintf(why, size, "%s: %s", rs->journal, strerror(errno)), -errno;
        return 0;
    }
    int r = mkdir_parent(rs->journal);
    if (r < 0)
        return snprintf(why, size, "%s: %s", rs->journal, strerror(-r)), r;
    json_t *j = journal_json(rs);
    r = j ? silence_journal_write(rs->journal, j, why, size) : -ENOMEM;
    if (!j)
        snprintf(why, size, "out of memory");
    json_decref(j);
    return r;
}

int silence_journal_write(const char *path, const json_t *j, char *why, size_t size)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char *text = json_dumps(j, JSON_COMPACT);
    if (!text)
        return snprintf(why, size, "out of memory"), -ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int r = 0;
    if (fd < 0) {
        r = -errno;
    } else {
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0)
            r = errno ? -errno : -EIO;
        if (close(fd) < 0 && !r)
            r = -errno;
        if (!r && rename(tmp, path) < 0)
            r = -errno;
        if (r)
            unlink(tmp);
    }
    free(text);
    if (r)
        snprintf(why, size, "journal %s: %s", path, strerror(-r));
    return r;
}

/* ---- creation and removal ---- */

static void op_done(struct run_silences *rs)
{
    if (--rs->pending)
        return;
    if (rs->removing) {
        if (rs->removed_done)
            rs->removed_done(rs->arg);
        return;
    }
    char msg[512] = "";
    for (size_t i = 0; i < rs->n && !*msg; i++)
        if (*rs->items[i].error)
            snprintf(msg, sizeof msg, "silence '%s': %s", rs->items[i].sl->name,
                     rs->items[i].error);
    rs->created_done(*msg ? msg : NULL, rs->arg);
}

static void send_delete(struct item *it);

static void on_created(const char *id, const char *error, void *arg)
{
    struct item *it = arg;
    struct run_silences *rs = it->rs;
    it->in_flight = false;
    if (id && !(it->id = strdup(id)))
        snprintf(it->error, sizeof it->error, "out of memory");
    else if (id)
        it->created = true;
    else
        snprintf(it->error, sizeof it->error, "not created: %s", error ? error : "no answer");
    /* A silence the journal does not name could not be recovered: its error
     * fails the creation (the run is aborted), and it is removed at the end
     * all the same. */
    if (it->created)
        journal_sync(rs, it->error, sizeof it->error);
    if (it->created && rs->removing)
        send_delete(it);
    op_done(rs);
}

int run_silences_create(struct run_silences *rs, int64_t ends_unix_ms,
                        run_silences_created_cb done, void *arg, struct chaos_err *err)
{
    rs->created_done = done;
    rs->arg = arg;
    int64_t now = loop_unix_ms();
    for (size_t i = 0; i < rs->n; i++) {
        struct item *it = &rs->items[i];
        char comment[512];
        snprintf(comment, sizeof comment, "chaos run %s: scenario '%s', silence '%s'", rs->run_id,
                 rs->s->name, it->sl->name);
        struct am_silence_spec spec = {
            .matchers = (const char *const *)it->sl->matchers, .n_matchers = it->sl->n_matchers,
            .starts_unix_ms = now, .ends_unix_ms = ends_unix_ms, .created_by = "chaos",
            .comment = comment};
        struct chaos_err e = {0};
        if (am_silence_create(it->am, &spec, on_created, it, &e) < 0) {
            snprintf(it->error, sizeof it->error, "not created: %s", e.msg);
            if (!rs->pending)
                return chaos_err_set(err, e.code ? e.code : EIO, "silence '%s': %s",
                                     it->sl->name, it->error);
            break; /* the ones in flight answer first; done then names this one */
        }
        it->in_flight = true;
        rs->pending++;
    }
    return 0;
}

static bool already_gone(const char *error)
{
    return strstr(error, "status 404") || strstr(error, "already expired");
}

static void on_deleted(const char *error, void *arg)
{
    struct item *it = arg;
    it->in_flight = false;
    if (!error || already_gone(error)) {
        it->removed = true;
    } else {
        snprintf(it->error, sizeof it->error, "not removed: %s", error);
    }
    char why[384];
    if (journal_sync(it->rs, why, sizeof why) < 0 && !*it->error)
        snprintf(it->error, sizeof it->error, "%s", why);
    op_done(it->rs);
}

static void send_delete(struct item *it)
{
    struct chaos_err e = {0};
    if (am_silence_delete(it->am, it->id, on_deleted, it, &e) < 0) {
        snprintf(it->error, sizeof it->error, "not removed: %s", e.msg);
        return;
    }
    it->in_flight = true;
    it->rs->pending++;
}

size_t run_silences_remove(struct run_silences *rs, void (*done)(void *arg), void *arg)
{
    rs->removing = true;
    rs->removed_done = done;
    rs->arg = arg;
    for (size_t i = 0; i < rs->n; i++) {
        struct item *it = &rs->items[i];
        if (it->created && !it->removed && !it->in_flight)
            send_delete(it);
    }
    return rs->pending;
}

size_t run_silences_left(const struct run_silences *rs)
{
    size_t n = 0;
    for (size_t i = 0; rs && i < rs->n; i++)
        n += rs->items[i].created && !rs->items[i].removed;
    return n;
}

json_t *run_silences_json(const struct run_silences *rs)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && rs && i < rs->n; i++) {
        const struct item *it = &rs->items[i];
        json_t *m = json_array();
        for (size_t k = 0; m && k < it->sl->n_matchers; k++)
            json_array_append_new(m, json_string(it->sl->matchers[k]));
        json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:b, s:b, s:o}", "name",
                                             it->sl->name, "id",
                                             it->id ? json_string(it->id) : json_null(),
                                             "matchers", m ? m : json_array(), "created",
                                             it->created, "removed", it->removed, "error",
                                             *it->error ? json_string(it->error) : json_null()));
    }
    return arr;
}
