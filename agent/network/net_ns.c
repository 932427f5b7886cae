#include "net_ns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/nsfs.h>
#include "util.h"

#ifndef CLONE_NEWNET
#define CLONE_NEWNET 0x40000000
#endif

int net_ns_pin(const char *path, struct nltc_ns_id *id, struct chaos_err *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return chaos_err_set(err, e, "network namespace %s: %s", path,
                             e == ENOENT ? "no such namespace (is the container running? "
                                           "`ip netns list` shows named ones)"
                                         : strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return chaos_err_set(err, errno, "network namespace %s: %s", path, strerror(errno));
    /* NS_GET_NSTYPE (Linux 4.11) tells a network namespace from any other
     * file; an older kernel answers ENOTTY and setns checks later. */
    int type = ioctl(fd, NS_GET_NSTYPE);
    if ((type < 0 && errno != ENOTTY) || (type >= 0 && type != CLONE_NEWNET))
        return chaos_err_set(err, EINVAL, "network namespace %s: not a network namespace", path);
    *id = (struct nltc_ns_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino};
    return steal_fd(&fd);
}

void net_ns_fd_path(int fd, char *path, size_t size)
{
    snprintf(path, size, "/proc/self/fd/%d", fd);
}

/* True when path is the namespace id (stat follows /proc's magic links). */
static bool is_ns(const char *path, const struct nltc_ns_id *id)
{
    struct stat st;
    return stat(path, &st) == 0 && (uint64_t)st.st_dev == id->dev &&
           (uint64_t)st.st_ino == id->ino;
}

/* Where the search could not look: /proc entries we may not read. */
struct blind {
    size_t n;
    int code;
    char where[96];
};

static void went_blind(struct blind *b, const char *where)
{
    /* A task that exits during the search is no blind spot. */
    if (errno == ENOENT || errno == ESRCH)
        return;
    if (!b->n++) {
        b->code = errno;
        snprintf(b->where, sizeof b->where, "%s", where);
    }
}

/* A name of /proc/.../ns/net or /proc/.../fd/N links to "net:[INO]": the
 * cheap test before the stat that compares the device too. */
static bool link_names(const char *path, const char *want, struct blind *b)
{
    char buf[64];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0)
        went_blind(b, path);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strcmp(buf, want) == 0;
}

static int found(const char *p, char *path, size_t size)
{
    snprintf(path, size, "%s", p);
    return 1;
}

static int scan_dir_files(const char *dir, const struct nltc_ns_id *id, char *path, size_t size)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    int r = 0;
    char p[PATH_MAX];
    while (!r && (de = readdir(d)))
        if (de->d_name[0] != '.' &&
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name) < (int)sizeof p && is_ns(p, id))
            r = found(p, path, size);
    closedir(d);
    return r;
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

/* nsfs bind mounts anywhere (ip netns, docker's /var/run/docker/netns). */
static int scan_mounts(const struct nltc_ns_id *id, const char *want, char *path, size_t size)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    int r = 0;
    while (!r && getline(&line, &cap, f) > 0) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE ...; ROOT is net:[INO]. */
        char root[64], mnt[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %63s %4095s", root, mnt) == 2 && strcmp(root, want) == 0) {
            unescape(mnt);
            if (is_ns(mnt, id))
                r = found(mnt, path, size);
        }
    }
    free(line);
    fclose(f);
    return r;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Every link in dir (a /proc/PID/fd or a task's ns folder) that names want. */
static int scan_links(const char *dir, const char *only, const struct nltc_ns_id *id,
                      const char *want, char *path, size_t size, struct blind *b)
{
    DIR *d = opendir(dir);
    if (!d) {
        went_blind(b, dir);
        return 0;
    }
    struct dirent *de;
    int r = 0;
    char p[PATH_MAX];
    while (!r && (de = readdir(d))) {
        if (de->d_name[0] == '.' || (only && strcmp(de->d_name, only) != 0))
            continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) < (int)sizeof p &&
            link_names(p, want, b) && is_ns(p, id))
            r = found(p, path, size);
    }
    closedir(d);
    return r;
}

/* Every task of pid: its namespace and the fds of its process. */
static int scan_pid(const char *pid, const struct nltc_ns_id *id, const char *want, char *path,
                    size_t size, struct blind *b)
{
    char dir[64];
    size_t blind_before = b->n;
    snprintf(dir, sizeof dir, "/proc/%s/task", pid);
    DIR *d = opendir(dir);
    if (!d) {
        went_blind(b, dir);
        return 0;
    }
    struct dirent *de;
    int r = 0;
    while (!r && (de = readdir(d))) {
        if (!all_digits(de->d_name))
            continue;
        char ns[96];
        snprintf(ns, sizeof ns, "/proc/%s/task/%s/ns", pid, de->d_name);
        r = scan_links(ns, "net", id, want, path, size, b);
    }
    closedir(d);
    if (!r) {
        snprintf(dir, sizeof dir, "/proc/%s/fd", pid);
        r = scan_links(dir, NULL, id, want, path, size, b);
    }
    if (b->n > blind_before) /* one process, however many of its entries */
        b->n = blind_before + 1;
    return r;
}

int net_ns_find(const struct nltc_ns_id *id, char *path, size_t size, char *unseen,
                size_t unseen_size, struct chaos_err *err)
{
    if (unseen_size)
        unseen[0] = '\0';
    char want[48];
    snprintf(want, sizeof want, "net:[%llu]", (unsigned long long)id->ino);
    int r = scan_dir_files("/run/netns", id, path, size);
    if (!r)
        r = scan_dir_files("/var/run/netns", id, path, size);
    if (!r)
        r = scan_mounts(id, want, path, size);
    if (r)
        return r;
    DIR *d = opendir("/proc");
    if (!d)
        return chaos_err_set(err, errno, "cannot look for network namespace %s in /proc: %s",
                             want, strerror(errno));
    struct dirent *de;
    struct blind b = {0};
    while (!r && (de = readdir(d)))
        if (all_digits(de->d_name))
            r = scan_pid(de->d_name, id, want, path, size, &b);
    closedir(d);
    if (!r && b.n && unseen_size)
        snprintf(unseen, unseen_size, "not searched: %zu process%s this one may not inspect (%s: %s)",
                 b.n, b.n == 1 ? "" : "es", b.where, strerror(b.code));
    return r;
}
