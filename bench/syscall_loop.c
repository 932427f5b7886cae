/* The workload of bench_syscall: makes N calls of one kind, times them with
 * clock_gettime(CLOCK_MONOTONIC) and prints "ns/call X failed F calls N".
 * Linked statically, so no dynamic loader opens files before main (strace's
 * inject=openat would fail those too and the program would never start).
 *
 * usage: syscall_loop getppid|devnull|open N [PATH] [wait]
 *   getppid  N getppid() calls
 *   devnull  N write(2) of one byte to /dev/null (opened before the loop)
 *   open     N openat(AT_FDCWD, PATH, O_RDONLY), each closed when it worked
 *   wait     read one byte from stdin before the loop (for an attach) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long run(const char *mode, long n, const char *path, int nullfd)
{
    long failed = 0;
    if (strcmp(mode, "getppid") == 0) {
        for (long i = 0; i < n; i++)
            if (syscall(SYS_getppid) < 0)
                failed++;
    } else if (strcmp(mode, "devnull") == 0) {
        for (long i = 0; i < n; i++)
            if (write(nullfd, "x", 1) != 1)
                failed++;
    } else {
        for (long i = 0; i < n; i++) {
            int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                failed++;
            else
                close(fd);
        }
    }
    return failed;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: syscall_loop getppid|devnull|open N [PATH] [wait]\n");
        return 2;
    }
    const char *mode = argv[1], *path = argc > 3 ? argv[3] : "/dev/null";
    long n = strtol(argv[2], NULL, 10);
    if (n < 1 || (strcmp(mode, "getppid") && strcmp(mode, "devnull") && strcmp(mode, "open"))) {
        fprintf(stderr, "syscall_loop: bad mode or N\n");
        return 2;
    }
    /* Only where it is used: strace's inject=openat fails every open. */
    int nullfd = strcmp(mode, "devnull") == 0 ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -2;
    if (nullfd == -1) {
        perror("/dev/null");
        return 1;
    }
    if (argc > 4 && strcmp(argv[4], "wait") == 0) {
        char c;
        while (read(STDIN_FILENO, &c, 1) < 0 && errno == EINTR)
            ;
    }
    long long t0 = now_ns();
    long failed = run(mode, n, path, nullfd);
    long long t1 = now_ns();
    printf("ns/call %.1f failed %ld calls %ld\n", (double)(t1 - t0) / (double)n, failed, n);
    if (nullfd >= 0)
        close(nullfd);
    return 0;
}
