#include "proc_stat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util.h"

/* Reads up to size-1 bytes of a small /proc file into buf, NUL-terminated.
 * ENOENT means the task is gone (or never was): -ESRCH. */
static int read_small(const char *path, char *buf, size_t size, size_t *len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    size_t used = 0;
    while (used < size - 1) {
        ssize_t n = read(fd, buf + used, size - 1 - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* A task that exits between open and read answers ESRCH. */
            return errno == ENOENT ? -ESRCH : -errno;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    buf[used] = '\0';
    *len = used;
    return 0;
}

/* Parses one unsigned decimal field that ends at a space, newline or end. */
static int parse_ull(const char *p, const char *end, unsigned long long *v)
{
    if (p >= end || *p < '0' || *p > '9')
        return -EIO;
    unsigned long long x = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (x > (ULLONG_MAX - (unsigned)(*p - '0')) / 10)
            return -EIO;
        x = x * 10 + (unsigned)(*p - '0');
    }
    if (p < end && *p != ' ' && *p != '\n')
        return -EIO;
    *v = x;
    return 0;
}

/* The start of field n (3 or more) of a stat text whose field 3 begins at
 * p, or NULL when there are fewer fields. */
static const char *field_at(const char *p, const char *end, int n)
{
    for (int f = 3; f < n; f++) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!sp)
            return NULL;
        p = sp + 1;
    }
    return p < end ? p : NULL;
}

int proc_stat_parse(const char *buf, size_t len, struct proc_stat *out)
{
    const char *end = buf + len;
    const char *open_paren = memchr(buf, '(', len);
    const char *close_paren = NULL;
    for (const char *p = end; p > buf; p--)
        if (p[-1] == ')') {
            close_paren = p - 1;
            break;
        }
    /* "PID (comm) S ...": the last ')' ends comm and is followed by " S". */
    if (!open_paren || !close_paren || close_paren < open_paren || end - close_paren < 3 ||
        close_paren[1] != ' ')
        return -EIO;
    size_t clen = (size_t)(close_paren - open_paren - 1);
    if (clen > sizeof out->comm - 1)
        clen = sizeof out->comm - 1;
    memcpy(out->comm, open_paren + 1, clen);
    out->comm[clen] = '\0';
    const char *f3 = close_paren + 2;
    out->state = *f3;
    const char *f9 = field_at(f3, end, 9), *f22 = field_at(f3, end, 22);
    unsigned long long flags;
    if (!f9 || !f22 || parse_ull(f9, end, &flags) < 0 || parse_ull(f22, end, &out->start) < 0)
        return -EIO;
    out->flags = (unsigned long)flags;
    return 0;
}

int proc_stat_read(pid_t pid, struct proc_stat *out)
{
    /* 52 fields of at most 20 digits and a 15-byte comm fit. */
    char path[64], buf[1280];
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int r = read_small(path, buf, sizeof buf, &len);
    if (r < 0)
        return r;
    return proc_stat_parse(buf, len, out);
}

int proc_stat_tgid(pid_t pid, pid_t *tgid)
{
    char path[64], buf[4096];
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int r = read_small(path, buf, sizeof buf, &len);
    if (r < 0)
        return r;
    const char *line = strstr(buf, "\nTgid:");
    if (!line)
        return -EIO;
    char *e;
    errno = 0;
    long v = strtol(line + 6, &e, 10);
    if (errno || e == line + 6 || v <= 0 || v > INT_MAX)
        return -EIO;
    *tgid = (pid_t)v;
    return 0;
}
