#include "outpath.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include "loop.h"
#include "util.h"

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef SYSFS_MAGIC
#define SYSFS_MAGIC 0x62656572
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

#define SPECIAL_WRITE_TIMEOUT_MS 10000

/* The folder part of path, as dirname(3) says it. */
static void folder_of(const char *path, char *buf, size_t size)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    snprintf(buf, size, "%s", dirname(copy));
}

/* For a path that stat() refused with ENOTDIR: the nearest ancestor that
 * exists and is not a folder, so the message can name it. */
static void non_folder_ancestor(const char *path, char *buf, size_t size)
{
    char cur[PATH_MAX];
    snprintf(cur, sizeof cur, "%s", path);
    for (int depth = 0; depth < 256; depth++) {
        char up[PATH_MAX];
        folder_of(cur, up, sizeof up);
        if (strcmp(up, cur) == 0)
            break;
        struct stat st;
        if (stat(up, &st) == 0 && !S_ISDIR(st.st_mode)) {
            snprintf(buf, size, "%s", up);
            return;
        }
        snprintf(cur, sizeof cur, "%s", up);
    }
    snprintf(buf, size, "a part of the path");
}

static const char *kernel_fs_name(const char *dir)
{
    struct statfs sf;
    if (statfs(dir, &sf) < 0)
        return NULL;
    switch ((unsigned long)sf.f_type) {
    case PROC_SUPER_MAGIC: return "procfs";
    case SYSFS_MAGIC: return "sysfs";
    case CGROUP2_SUPER_MAGIC:
    case CGROUP_SUPER_MAGIC: return "cgroupfs";
    }
    return NULL;
}

/* Creates and removes a probe file in dir: the one test that covers
 * permissions, read-only and immutable folders and odd file systems alike. */
static int probe_folder(const char *flag, const char *path, const char *dir,
                        struct chaos_err *err)
{
    const char *kfs = kernel_fs_name(dir);
    if (kfs)
        return chaos_err_set(err, EINVAL,
                             "%s %s: folder %s is on %s, a kernel interface, not a place for a "
                             "report",
                             flag, path, dir, kfs);
    char probe[PATH_MAX];
    if (snprintf(probe, sizeof probe, "%s/.chaos-probe.%d", dir, (int)getpid()) >=
        (int)sizeof probe)
        return chaos_err_set(err, ENAMETOOLONG, "%s %s: path is too long", flag, path);
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return chaos_err_set(err, errno, "%s %s: cannot create files in folder %s: %s", flag,
                             path, dir, strerror(errno));
    close(fd);
    if (unlink(probe) < 0)
        return chaos_err_set(err, errno, "%s %s: cannot remove probe file %s: %s", flag, path,
                             probe, strerror(errno));
    return 0;
}

static bool same_file(const struct stat *a, const char *other)
{
    struct stat b;
    return other && strcmp(other, "-") != 0 && stat(other, &b) == 0 && a->st_dev == b.st_dev &&
           a->st_ino == b.st_ino;
}

/* An existing path: what kind of file it is decides how it is written. */
static int check_existing(const char *flag, const char *path, const struct stat *st,
                          const char *const *keep, size_t n, struct chaos_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (same_file(st, keep[i]))
            return chaos_err_set(err, EINVAL,
                                 "%s %s: is the scenario file itself; a report must not "
                                 "overwrite it",
                                 flag, path);
    if (S_ISDIR(st->st_mode))
        return chaos_err_set(err, EISDIR, "%s %s: is a folder; name a file in it", flag, path);
    if (S_ISFIFO(st->st_mode))
        return 0; /* opened at the end: opening now would end its reader's input */
    if (S_ISBLK(st->st_mode) || S_ISSOCK(st->st_mode))
        return chaos_err_set(err, EINVAL,
                             "%s %s: is a %s; a report goes to a regular file, a character "
                             "device or a FIFO",
                             flag, path, S_ISBLK(st->st_mode) ? "block device" : "socket");
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return chaos_err_set(err, errno, "%s %s: cannot be written: %s", flag, path,
                             strerror(errno));
    close(fd);
    if (S_ISCHR(st->st_mode))
        return 0; /* written in place */
    char dir[PATH_MAX];
    folder_of(path, dir, sizeof dir);
    return probe_folder(flag, path, dir, err);
}

int outpath_check_report(const char *flag, const char *path, const char *const *keep, size_t n,
                         struct chaos_err *err)
{
    if (!path || !*path)
        return chaos_err_set(err, EINVAL, "%s: the value is empty; name a file", flag);
    if (strlen(path) >= PATH_MAX - 32)
        return chaos_err_set(err, ENAMETOOLONG, "%s: path is too long", flag);
    struct stat st;
    if (stat(path, &st) == 0)
        return check_existing(flag, path, &st, keep, n, err);
    if (errno == ENOTDIR) {
        char what[PATH_MAX];
        non_folder_ancestor(path, what, sizeof what);
        return chaos_err_set(err, ENOTDIR, "%s %s: %s is not a folder", flag, path, what);
    }
    if (errno != ENOENT)
        return chaos_err_set(err, errno, "%s %s: %s", flag, path, strerror(errno));
    if (path[strlen(path) - 1] == '/')
        return chaos_err_set(err, EISDIR, "%s %s: names a folder; name a file", flag, path);
    char dir[PATH_MAX];
    folder_of(path, dir, sizeof dir);
    if (stat(dir, &st) < 0)
        return chaos_err_set(err, errno, "%s %s: folder %s: %s", flag, path, dir,
                             errno == ENOENT ? "does not exist" : strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return chaos_err_set(err, ENOTDIR, "%s %s: %s is not a folder", flag, path, dir);
    return probe_folder(flag, path, dir, err);
}

int outpath_check_dir(const char *flag, const char *dir, struct chaos_err *err)
{
    if (!dir || !*dir)
        return chaos_err_set(err, EINVAL, "%s: the value is empty; name a folder", flag);
    if (strlen(dir) >= PATH_MAX - 64)
        return chaos_err_set(err, ENAMETOOLONG, "%s: path is too long", flag);
    /* The nearest part that exists must be a folder we may write in: the
     * engine creates the rest (and <dir>/journal) on demand. */
    char cur[PATH_MAX];
    snprintf(cur, sizeof cur, "%s", dir);
    for (int depth = 0; depth < 256; depth++) {
        struct stat st;
        if (stat(cur, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return chaos_err_set(err, ENOTDIR, "%s %s: %s is not a folder", flag, dir, cur);
            const char *kfs = kernel_fs_name(cur);
            if (kfs)
                return chaos_err_set(err, EINVAL, "%s %s: %s is on %s, a kernel interface", flag,
                                     dir, cur, kfs);
            if (access(cur, W_OK | X_OK) < 0)
                return chaos_err_set(err, errno, "%s %s: folder %s is not writable: %s", flag,
                                     dir, cur, strerror(errno));
            return 0;
        }
        if (errno == ENOTDIR) {
            char what[PATH_MAX];
            non_folder_ancestor(cur, what, sizeof what);
            return chaos_err_set(err, ENOTDIR, "%s %s: %s is not a folder", flag, dir, what);
        }
        if (errno != ENOENT)
            return chaos_err_set(err, errno, "%s %s: %s: %s", flag, dir, cur, strerror(errno));
        char up[PATH_MAX];
        folder_of(cur, up, sizeof up);
        if (strcmp(up, cur) == 0)
            break;
        snprintf(cur, sizeof cur, "%s", up);
    }
    return chaos_err_set(err, ENOENT, "%s %s: no part of the path exists", flag, dir);
}

/* Writes into a character device or FIFO that is already there, without
 * ever blocking for good on a reader that stopped reading. */
static int write_in_place(const char *path, const char *data, size_t len, struct chaos_err *err)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return chaos_err_set(err, errno, "%s: %s", path,
                             errno == ENXIO ? "no process reads this FIFO" : strerror(errno));
    size_t off = 0;
    int64_t deadline = loop_now_ms() + SPECIAL_WRITE_TIMEOUT_MS;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w > 0) {
            off += (size_t)w;
            deadline = loop_now_ms() + SPECIAL_WRITE_TIMEOUT_MS;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return chaos_err_set(err, errno, "%s: %s", path, strerror(errno));
        int64_t left = deadline - loop_now_ms();
        if (left <= 0)
            return chaos_err_set(err, ETIMEDOUT,
                                 "%s: the reader took nothing for %ds; %zu of %zu bytes written",
                                 path, SPECIAL_WRITE_TIMEOUT_MS / 1000, off, len);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
            return chaos_err_set(err, errno, "%s: poll: %s", path, strerror(errno));
    }
    return 0;
}

int outpath_write(const char *path, const char *data, size_t len, struct chaos_err *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))
        return write_in_place(path, data, len, err);
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return chaos_err_set(err, ENAMETOOLONG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return chaos_err_set(err, errno, "%s: %s", path, strerror(errno));
    size_t off = 0;
    int e = 0;
    while (off < len && !e) {
        ssize_t w = write(fd, data + off, len - off);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EINTR)
            e = errno;
        else if (w == 0)
            e = EIO;
    }
    if (close(fd) < 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) < 0)
        e = errno;
    if (e) {
        unlink(tmp);
        return chaos_err_set(err, e, "%s: %s", path, strerror(e));
    }
    return 0;
}
