#include "journal.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "loop.h"
#include "proc_stat.h"
#include "util.h"

struct journal {
    int fd;
    char *path;
};

int journal_proc_start_time(int pid, unsigned long long *start)
{
    struct proc_stat ps;
    int r = proc_stat_read(pid, &ps);
    if (r < 0)
        return r;
    *start = ps.start;
    return 0;
}

enum journal_owner_state journal_owner_check(const struct journal_owner *o, int *tgid)
{
    if (o->pid <= 0)
        return JOURNAL_OWNER_NONE;
    struct proc_stat ps;
    int r = proc_stat_read(o->pid, &ps);
    if (r == -ESRCH)
        return JOURNAL_OWNER_GONE;
    if (r < 0)
        return JOURNAL_OWNER_UNKNOWN;
    /* /proc/TID/stat exists for every thread, though /proc lists only
     * processes: a pid reused as a thread id is not our run either. */
    pid_t g;
    r = proc_stat_tgid(o->pid, &g);
    if (r == -ESRCH)
        return JOURNAL_OWNER_GONE;
    if (r < 0)
        return JOURNAL_OWNER_UNKNOWN;
    if (g != o->pid) {
        if (tgid)
            *tgid = (int)g;
        return JOURNAL_OWNER_THREAD;
    }
    return ps.start == o->start ? JOURNAL_OWNER_ALIVE : JOURNAL_OWNER_RECYCLED;
}

bool journal_owner_alive(const struct journal_owner *o)
{
    return journal_owner_check(o, NULL) == JOURNAL_OWNER_ALIVE;
}

/* Writes one JSON line and makes it durable before returning. */
static int append_line(struct journal *j, json_t *rec, struct chaos_err *err)
{
    _cleanup_free_ char *line = json_dumps(rec, JSON_COMPACT);
    if (!line)
        return chaos_err_set(err, ENOMEM, "journal: out of memory");
    size_t len = strlen(line);
    line[len] = '\n'; /* json_dumps leaves room: we overwrite the NUL and write len+1 */
    const char *p = line;
    size_t left = len + 1;
    while (left) {
        ssize_t w = write(j->fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return chaos_err_set(err, errno, "journal %s: write: %s", j->path, strerror(errno));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(j->fd) < 0)
        return chaos_err_set(err, errno, "journal %s: fsync: %s", j->path, strerror(errno));
    return 0;
}

static int append_open_record(struct journal *j, unsigned long long start, struct chaos_err *err)
{
    _cleanup_json_ json_t *rec = json_pack("{s:s, s:i, s:I, s:I}", "op", "open", "pid",
                                           (int)getpid(), "start", (json_int_t)start, "at",
                                           (json_int_t)loop_unix_ms());
    if (!rec)
        return chaos_err_set(err, ENOMEM, "out of memory");
    return append_line(j, rec, err);
}

/* Makes j->path exist with its owner record already in it, so that a
 * recovery reading the folder at any moment knows whose journal it is (an
 * empty file would read as nobody's and be removed). The record is written
 * to PATH.new (recovery reads only *.jsonl), then hard-linked to the name,
 * which fails instead of replacing a journal that is there already: that
 * one is appended to. */
static int create_with_owner(struct journal *j, unsigned long long start, struct chaos_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.new", j->path) >= (int)sizeof tmp)
        return chaos_err_set(err, ENAMETOOLONG, "journal %s: path too long", j->path);
    j->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0)
        return chaos_err_set(err, errno, "journal %s: %s", tmp, strerror(errno));
    int r = append_open_record(j, start, err);
    if (r == 0 && link(tmp, j->path) < 0) {
        if (errno != EEXIST)
            r = chaos_err_set(err, errno, "journal %s: %s", j->path, strerror(errno));
        close(j->fd);
        j->fd = -1;
    }
    /* Only the way to a complete file; a leftover PATH.new names no journal. */
    IGNORE_RESULT(unlink(tmp));
    if (r < 0 || j->fd >= 0)
        return r;
    /* A journal by that name exists already: append to it. */
    j->fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (j->fd < 0)
        return chaos_err_set(err, errno, "journal %s: %s", j->path, strerror(errno));
    return append_open_record(j, start, err);
}

int journal_open(const char *path, struct journal **out, struct chaos_err *err)
{
    _cleanup_free_ char *dircopy = strdup(path);
    if (!dircopy)
        return chaos_err_set(err, ENOMEM, "out of memory");
    const char *dir = dirname(dircopy);
    int r = mkdir_p(dir);
    if (r < 0)
        return chaos_err_set(err, -r, "journal folder %s: %s", dir, strerror(-r));
    /* Without our start time a recovery would take the journal for a dead
     * run's and revert our faults. */
    unsigned long long start;
    if ((r = journal_proc_start_time(getpid(), &start)) < 0)
        return chaos_err_set(err, -r, "journal %s: cannot read this process's start time "
                             "(/proc/self/stat): %s", path, strerror(-r));
    struct journal *j = calloc(1, sizeof *j);
    char *pcopy = strdup(path);
    if (!j || !pcopy) {
        free(j);
        free(pcopy);
        return chaos_err_set(err, ENOMEM, "out of memory");
    }
    j->fd = -1;
    j->path = pcopy;
    if ((r = create_with_owner(j, start, err)) < 0) {
        if (j->fd >= 0)
            close(j->fd);
        free(j->path);
        free(j);
        return r;
    }
    /* Make the new file's name durable too, not only its contents (best
     * effort: every record is fsynced as it is written). */
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        IGNORE_RESULT(fsync(dfd));
    *out = j;
    return 0;
}

void journal_close(struct journal *j, bool remove_file)
{
    if (!j)
        return;
    close(j->fd);
    /* A journal left with nothing pending is removed by the next recovery. */
    if (remove_file)
        IGNORE_RESULT(unlink(j->path));
    free(j->path);
    free(j);
}

const char *journal_path(const struct journal *j)
{
    return j->path;
}

int journal_record_apply(struct journal *j, const char *id, const char *kind, const json_t *undo,
                         int64_t deadline_unix_ms, struct chaos_err *err)
{
    _cleanup_json_ json_t *rec =
        json_pack("{s:s, s:s, s:s, s:O, s:I, s:I}", "op", "apply", "id", id, "kind", kind, "undo",
                  undo, "deadline", (json_int_t)deadline_unix_ms, "at", (json_int_t)loop_unix_ms());
    if (!rec)
        return chaos_err_set(err, ENOMEM, "journal: out of memory");
    return append_line(j, rec, err);
}

int journal_record_revert(struct journal *j, const char *id, struct chaos_err *err)
{
    _cleanup_json_ json_t *rec = json_pack("{s:s, s:s, s:I}", "op", "revert", "id", id, "at",
                                           (json_int_t)loop_unix_ms());
    if (!rec)
        return chaos_err_set(err, ENOMEM, "journal: out of memory");
    return append_line(j, rec, err);
}

/* Takes one complete line into pending/order (or info). Returns false when
 * it is not a journal record. */
static bool take_line(const char *line, json_t *pending, json_t *order, struct journal_info *info)
{
    _cleanup_json_ json_t *rec = json_loads(line, 0, NULL);
    const char *op = json_string_value(json_object_get(rec, "op"));
    const char *id = json_string_value(json_object_get(rec, "id"));
    if (!op)
        return false;
    if (strcmp(op, "open") == 0) {
        info->owner.pid = (int)json_integer_value(json_object_get(rec, "pid"));
        info->owner.start = (unsigned long long)json_integer_value(json_object_get(rec, "start"));
    } else if (id && strcmp(op, "apply") == 0) {
        if (!json_object_get(pending, id))
            json_array_append_new(order, json_string(id));
        json_object_set(pending, id, rec);
    } else if (id && strcmp(op, "revert") == 0) {
        json_object_del(pending, id);
    } else {
        return false;
    }
    return true;
}

int journal_read(const char *path, struct journal_info *info_out, journal_pending_cb cb, void *arg,
                 struct chaos_err *err)
{
    struct journal_info info = {0};
    FILE *f = fopen(path, "re");
    if (!f)
        return chaos_err_set(err, errno, "journal %s: %s", path, strerror(errno));
    /* id -> apply record, in order of first apply; reverts delete the entry. */
    _cleanup_json_ json_t *pending = json_object();
    _cleanup_json_ json_t *order = json_array();
    if (!pending || !order) {
        fclose(f);
        return chaos_err_set(err, ENOMEM, "out of memory");
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    errno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') {
            info.torn = true; /* torn final write: the fault it described was never applied */
            break;
        }
        if (!take_line(line, pending, order, &info) && !info.bad_lines++)
            info.first_bad_line = lineno;
    }
    int read_errno = ferror(f) ? (errno ? errno : EIO) : 0;
    free(line);
    fclose(f);
    if (read_errno)
        return chaos_err_set(err, read_errno, "journal %s: %s", path, strerror(read_errno));

    int failures = 0;
    size_t i;
    json_t *idv;
    json_array_foreach(order, i, idv) {
        json_t *rec = json_object_get(pending, json_string_value(idv));
        if (!rec)
            continue;
        info.n_pending++;
        if (!cb)
            continue;
        const char *kind = json_string_value(json_object_get(rec, "kind"));
        if (cb(json_string_value(idv), kind ? kind : "", json_object_get(rec, "undo"), arg) != 0)
            failures++;
    }
    if (info_out)
        *info_out = info;
    return failures;
}

int journal_read_pending(const char *path, struct journal_owner *owner, journal_pending_cb cb,
                         void *arg, size_t *n_pending, struct chaos_err *err)
{
    struct journal_info info;
    if (owner)
        *owner = (struct journal_owner){0};
    int r = journal_read(path, &info, cb, arg, err);
    if (r < 0)
        return r;
    if (owner)
        *owner = info.owner;
    if (n_pending)
        *n_pending = info.n_pending;
    return r;
}
