/* Matching a call against a syscall spec (see sys_match.h). */
#include "sys_match.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Reads a NUL-terminated string from pid's memory, page by page. */
static int read_str(pid_t pid, uint64_t addr, char *buf, size_t size)
{
    size_t got = 0;
    while (got < size - 1) {
        size_t chunk = 4096 - ((addr + got) & 4095);
        if (chunk > size - 1 - got)
            chunk = size - 1 - got;
        struct iovec l = {buf + got, chunk}, r = {(void *)(uintptr_t)(addr + got), chunk};
        ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (n <= 0)
            return -1;
        if (memchr(buf + got, '\0', (size_t)n))
            return 0;
        got += (size_t)n;
    }
    buf[size - 1] = '\0';
    return 0;
}

static int read_link(pid_t pid, const char *what, char *buf, size_t size)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, what);
    ssize_t n = readlink(p, buf, size - 1);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static bool path_matches(const struct sys_spec *s, const char *path)
{
    if (s->path_prefix) {
        size_t n = strlen(s->path_prefix);
        if (strncmp(path, s->path_prefix, n) != 0)
            return false;
        if (path[n] != '\0' && path[n] != '/' && s->path_prefix[n - 1] != '/')
            return false;
    }
    if (s->path_glob && fnmatch(s->path_glob, path, 0) != 0)
        return false;
    return true;
}

bool sys_args_match(const struct sys_spec *s, pid_t tid, int nr, const unsigned long long args[6])
{
    int idx = -1, len_idx = -1;
    enum sys_argkind k = sys_argkind_of(nr, &idx, &len_idx);
    bool want_path = s->path_prefix || s->path_glob;
    if (want_path && k == SYS_ARG_PATH) {
        char path[PATH_MAX], full[PATH_MAX * 2];
        if (read_str(tid, args[idx], path, sizeof path) < 0)
            return false;
        if (path[0] == '/')
            return path_matches(s, path);
        /* Relative: against the dirfd (the argument before it) or the cwd. */
        char base[PATH_MAX], what[32];
        int dirfd = idx > 0 ? (int)args[idx - 1] : AT_FDCWD;
        if (dirfd == AT_FDCWD)
            snprintf(what, sizeof what, "cwd");
        else
            snprintf(what, sizeof what, "fd/%d", dirfd);
        if (read_link(tid, what, base, sizeof base) < 0)
            return false;
        snprintf(full, sizeof full, "%s/%s", base, path);
        return path_matches(s, full);
    }
    if (want_path && k == SYS_ARG_FD) {
        char what[32], path[PATH_MAX];
        snprintf(what, sizeof what, "fd/%d", (int)args[idx]);
        return read_link(tid, what, path, sizeof path) == 0 && path_matches(s, path);
    }
    if ((s->has_addr || s->port) && k == SYS_ARG_ADDR) {
        struct sockaddr_in sin;
        unsigned long long len = args[len_idx];
        if (args[idx] == 0 || len < sizeof sin)
            return false; /* not IPv4 (a unix socket, say): never ours */
        struct iovec l = {&sin, sizeof sin}, r = {(void *)(uintptr_t)args[idx], sizeof sin};
        if (process_vm_readv(tid, &l, 1, &r, 1, 0) != (ssize_t)sizeof sin ||
            sin.sin_family != AF_INET)
            return false;
        if (s->port && ntohs(sin.sin_port) != s->port)
            return false;
        if (s->has_addr && s->prefix_len > 0) {
            uint32_t mask = s->prefix_len == 32 ? 0xffffffffu : ~(0xffffffffu >> s->prefix_len);
            if ((ntohl(sin.sin_addr.s_addr) & mask) != (s->addr & mask))
                return false;
        }
    }
    return true;
}

bool sys_call_selected(const struct sys_spec *s, int nr)
{
    for (size_t i = 0; i < s->n_nr; i++)
        if (s->nr[i] == nr)
            return true;
    return false;
}
