/*
 * vm-init: PID 1 of the throw-away QEMU guest that tests/vm/vm-run boots.
 *
 * The guest runs Debian's own kernel (linux-image-amd64) and uses the host's
 * root file system, shared read-write over virtio-9p, as its root. This one
 * static binary does both stages of the boot:
 *   1. In the initramfs vm-run packed (this binary, /dev/console and the 9p
 *      modules in /vm-modules/, loaded in the order of /vm-modules/order): load
 *      the modules, mount the host root on /newroot, move /dev there and make
 *      it the root (what switch_root does; the initramfs stays, unused).
 *   2. On the host root: mount proc, sysfs, private tmpfs on /run, /tmp and
 *      /dev/shm, devpts; load the network modules the suites use (a real
 *      kernel also loads them on first use through the host's modprobe; doing
 *      it here with plain syscalls saves an exec per module); bring lo up; run
 *      COMMAND; write its exit status; power off.
 * Why C and not busybox sh: every exec inside a TCG guest costs tens of ms and
 * a shell init needs dozens; this init does the same with syscalls in a few
 * ms, and vm-run compiles it (`cc -static`, ~0.2 s) on every run, so it is
 * never stale and needs no build system.
 *
 * Protocol with vm-run (all files in the host dir named by CHAOS_VM_RUNDIR,
 * which the kernel hands us in our environment from its command line):
 *   argv     COMMAND and its arguments, each ended by a NUL
 *   env      NAME=VALUE entries, each ended by a NUL: COMMAND's whole environment
 *   cwd      the caller's working directory
 *   stdout   } COMMAND's output (vm-run created them empty and follows them live)
 *   stderr   } our own diagnostics go to stderr too, prefixed "vm-init:"
 *   started  written just before COMMAND is exec'd: proves the guest booted
 *   status   "exit N UPTIME" once COMMAND ended (QEMU's own exit status says
 *            nothing about COMMAND)
 * The run dir comes as a 9p share of its own (tag "rundir", no cache); the
 * host root is the share "hostroot".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The qdiscs, classifiers, actions and devices the network suites use. The
 * kernel would load each on first use through the host's /sbin/modprobe, but
 * one exec per module costs ~100 ms under TCG; finit_module here costs
 * microseconds. Modules the suite keeps out (CHAOS_VM_NO_MODULES) are skipped
 * here and blacklisted on the kernel command line by vm-run, so the kernel
 * refuses them on demand too. */
static const char *const wanted_modules[] = {
    "sch_netem",   "sch_prio",     "cls_u32",  "act_mirred", "act_gact", "ifb",
    "veth",        "sch_htb",      "sch_fq_codel", "sch_tbf", "sch_ingress", "cls_matchall",
    "sch_sfq",     "sch_fq",       "sch_codel", "cls_fw",    "cls_basic", "cls_flower",
    "sch_multiq",  "sch_mqprio",   "sch_pie",  "sch_red",    "sch_cake", "sch_hfsc",
    "dummy",
};

#define RUNDIR_MNT "/dev/.vm-rundir"
static int rundir_fd = -1;
static int console_fd = -1; /* /dev/console (ttyS0): lands in vm-run's console.log */

static void logmsg(int also_stderr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logmsg(int also_stderr, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    if (console_fd >= 0 && write(console_fd, "vm-init: ", 9) >= 0)
        (void)!write(console_fd, buf, (size_t)n);
    if (also_stderr && write(2, "vm-init: ", 9) >= 0)
        (void)!write(2, buf, (size_t)n);
}

/* Never return from PID 1: the kernel would panic (vm-run boots with
 * panic=-1 and -no-reboot, so even that ends QEMU at once). vm-run then sees
 * "no status" and reports a boot failure with the console log. */
static void power_off(void)
{
    sync();
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    char buf[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    logmsg(1, "fatal: %s", buf);
    power_off();
    __builtin_unreachable();
}

/* Reads all of fd (then closes it) into a NUL-terminated buffer; *len gets
 * the byte count. Dies on a read error: PID 1 has no one to return to. */
static char *slurp_fd(int fd, const char *name, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            die("out of memory");
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("reading %s: %s", name, strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
        if (cap - n < 2)
            buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Reads a whole file of the run dir; the result is NUL-terminated. */
static char *read_rundir_file(const char *name, size_t *len)
{
    int fd = openat(rundir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("cannot open %s in the run dir: %s", name, strerror(errno));
    return slurp_fd(fd, name, len);
}

/* Splits NUL-ended entries into a NULL-terminated vector with room for `extra`
 * more entries. */
static char **split_nul(char *buf, size_t len, size_t extra)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        count += buf[i] == '\0';
    char **v = calloc(count + extra + 1, sizeof *v);
    if (!v)
        die("out of memory");
    size_t k = 0;
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
        v[k++] = buf + i;
    return v;
}

static const char *env_get(char **env, const char *name)
{
    size_t n = strlen(name);
    for (; *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static void do_mount(const char *src, const char *target, const char *type, unsigned long flags,
                     const char *data)
{
    if (mount(src, target, type, flags, data) != 0)
        die("mount %s on %s: %s", type, target, strerror(errno));
}

static void mkdir_p(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        die("path too long: %s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            die("mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        die("mkdir %s: %s", tmp, strerror(errno));
}

/* The guest's /tmp is a private tmpfs (so temp files never land in the host's
 * /tmp), which hides host paths below /tmp. When the caller's directory or the
 * build/source tree lives there (a CI clone in /tmp, say), the top-level host
 * directory holding it is kept: bind-mounted aside before the tmpfs covers
 * /tmp (stash_host_tmp_path), then moved back on top of it
 * (restore_host_tmp_paths). */
#define STASH "/dev/.vm-init-stash"
static char stashed[3][4096];
static int nstashed;

static void stash_host_tmp_path(const char *path)
{
    if (!path || strncmp(path, "/tmp/", 5) != 0 || !path[5] || nstashed >= 3)
        return;
    char top[4096];
    size_t n = strcspn(path + 5, "/");
    if (n == 0 || n + 6 > sizeof top)
        return;
    memcpy(top, path, n + 5);
    top[n + 5] = '\0';
    for (int i = 0; i < nstashed; i++)
        if (strcmp(stashed[i], top) == 0)
            return;
    char aside[4200];
    snprintf(aside, sizeof aside, STASH "/%d", nstashed);
    mkdir_p(aside);
    if (mount(top, aside, NULL, MS_BIND | MS_REC, NULL) != 0) {
        logmsg(1, "cannot keep host %s inside the guest: %s", top, strerror(errno));
        return;
    }
    snprintf(stashed[nstashed++], sizeof stashed[0], "%s", top);
}

static void restore_host_tmp_paths(void)
{
    for (int i = 0; i < nstashed; i++) {
        char aside[64];
        snprintf(aside, sizeof aside, STASH "/%d", i);
        mkdir_p(stashed[i]);
        if (mount(aside, stashed[i], NULL, MS_MOVE, NULL) != 0)
            logmsg(1, "cannot expose host %s inside the guest: %s", stashed[i], strerror(errno));
    }
}

static int module_is_loaded(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/sys/module/%s/initstate", name);
    return access(path, F_OK) == 0;
}

/* "kernel/net/sched/sch_netem.ko" -> "sch_netem" (dashes become underscores,
 * as the kernel names modules). */
static void module_name_of(const char *path, char *out, size_t outlen)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, ".");
    if (n >= outlen)
        n = outlen - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = base[i] == '-' ? '_' : base[i];
    out[n] = '\0';
}

/* Finds NAME's line in a modules.dep/modules.builtin text; returns a pointer to
 * the line start or NULL. */
static const char *find_module_line(const char *text, const char *name)
{
    for (const char *line = text; line && *line;) {
        const char *end = strpbrk(line, ":\n");
        char cand[128];
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char path[512];
        if (n < sizeof path) {
            memcpy(path, line, n);
            path[n] = '\0';
            module_name_of(path, cand, sizeof cand);
            if (strcmp(cand, name) == 0)
                return line;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return NULL;
}

/* A whole file by path, or NULL if it cannot be opened. */
static char *slurp_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? NULL : slurp_fd(fd, path, NULL);
}

struct moddb {
    char dir[256];
    char *dep;
    char *builtin;
};

/* Loads NAME after the modules it depends on; returns 0 when it is there
 * afterwards (built in, already loaded or loaded now). */
static int load_module(struct moddb *db, const char *name, int depth)
{
    if (depth > 16)
        return logmsg(1, "module dependencies of %s nest too deep", name), -1;
    if (module_is_loaded(name))
        return 0;
    if (db->builtin && find_module_line(db->builtin, name))
        return 0;
    const char *line = db->dep ? find_module_line(db->dep, name) : NULL;
    if (!line) {
        logmsg(1, "module %s: not in %s/modules.dep and not built in", name, db->dir);
        return -1;
    }
    const char *colon = strchr(line, ':');
    const char *eol = strchr(line, '\n');
    if (!eol)
        eol = line + strlen(line);
    char relpath[512];
    size_t n = (size_t)(colon - line);
    if (n >= sizeof relpath)
        return -1;
    memcpy(relpath, line, n);
    relpath[n] = '\0';

    /* modules.dep lists dependencies so that the last one must be loaded first. */
    char deps[2048];
    size_t dn = (size_t)(eol - colon - 1);
    if (dn >= sizeof deps)
        dn = sizeof deps - 1;
    memcpy(deps, colon + 1, dn);
    deps[dn] = '\0';
    char *words[64];
    int nw = 0;
    for (char *save = NULL, *w = strtok_r(deps, " \t", &save); w && nw < 64;
         w = strtok_r(NULL, " \t", &save))
        words[nw++] = w;
    for (int i = nw - 1; i >= 0; i--) {
        char dep[128];
        module_name_of(words[i], dep, sizeof dep);
        if (load_module(db, dep, depth + 1) != 0) {
            logmsg(1, "module %s: dependency %s did not load", name, dep);
            return -1;
        }
    }

    char path[1024];
    snprintf(path, sizeof path, "%s/%s", db->dir, relpath);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        logmsg(1, "module %s: cannot open %s: %s", name, path, strerror(errno));
        return -1;
    }
    long rc = syscall(SYS_finit_module, fd, "", 0);
    int err = errno;
    close(fd);
    if (rc != 0 && err != EEXIST) {
        logmsg(1, "module %s: loading %s failed: %s", name, path, strerror(err));
        return -1;
    }
    logmsg(0, "loaded %s", name);
    return 0;
}

static int in_list(const char *list, const char *name)
{
    if (!list)
        return 0;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        p += strspn(p, " ,\t\n");
        size_t w = strcspn(p, " ,\t\n");
        if (w == n) {
            /* compare with '-' and '_' as one, like modprobe does */
            size_t i = 0;
            for (; i < n; i++) {
                char a = p[i] == '-' ? '_' : p[i], b = name[i] == '-' ? '_' : name[i];
                if (a != b)
                    break;
            }
            if (i == n)
                return 1;
        }
        p += w;
    }
    return 0;
}

/* Loads wanted_modules but those in skip, then every module in extra (the
 * ones a suite asked for with vm-run --modules), each after what it depends
 * on. A wanted module that does not load is reported; one the suite asked
 * for and cannot have ends the boot: the suite would test the wrong kernel. */
static void load_modules(const char *skip, const char *extra)
{
    struct utsname u;
    struct moddb db = {0};
    if (uname(&u) != 0)
        die("uname: %s", strerror(errno));
    snprintf(db.dir, sizeof db.dir, "/lib/modules/%s", u.release);
    char path[512];
    snprintf(path, sizeof path, "%s/modules.dep", db.dir);
    db.dep = slurp_path(path);
    snprintf(path, sizeof path, "%s/modules.builtin", db.dir);
    db.builtin = slurp_path(path);
    if (!db.dep)
        logmsg(1, "no %s/modules.dep: is linux-image-%s installed on the host?", db.dir, u.release);
    for (size_t i = 0; i < sizeof wanted_modules / sizeof *wanted_modules; i++) {
        if (in_list(skip, wanted_modules[i])) {
            logmsg(0, "not loading %s (CHAOS_VM_NO_MODULES)", wanted_modules[i]);
            continue;
        }
        load_module(&db, wanted_modules[i], 0); /* failures are reported, not fatal */
    }
    char names[1024];
    snprintf(names, sizeof names, "%s", extra ? extra : "");
    for (char *save = NULL, *m = strtok_r(names, " ,", &save); m; m = strtok_r(NULL, " ,", &save))
        if (load_module(&db, m, 0) != 0)
            die("module %s, which the suite asked for (--modules), did not load", m);
    free(db.dep);
    free(db.builtin);
}

/* Stage 1, in the initramfs: the 9p transport's modules, then the host root. */
static void mount_host_root(void)
{
    char *order = slurp_path("/vm-modules/order");
    if (!order)
        die("no /vm-modules/order in the initramfs");
    for (char *save = NULL, *name = strtok_r(order, "\n", &save); name;
         name = strtok_r(NULL, "\n", &save)) {
        char path[512];
        snprintf(path, sizeof path, "/vm-modules/%s.ko", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die("initramfs module %s: %s", path, strerror(errno));
        long rc = syscall(SYS_finit_module, fd, "", 0);
        int err = errno;
        close(fd);
        if (rc != 0 && err != EEXIST)
            die("loading %s: %s", path, strerror(err));
    }
    free(order);
    if (mkdir("/newroot", 0755) != 0 && errno != EEXIST)
        die("mkdir /newroot: %s", strerror(errno));
    /* cache=loose: the guest keeps what it read in its page cache, so an
     * exec of tc costs ~85 ms instead of ~360 ms under TCG. The price is
     * coherence: host changes made while the guest runs may stay unseen (our
     * suites make none), and the guest's writes reach the host by writeback,
     * at the latest by the sync() before power-off. The run dir, which the
     * host reads live, has a share of its own without any cache. */
    do_mount("hostroot", "/newroot", "9p", 0,
             "trans=virtio,version=9p2000.L,msize=262144,access=any,cache=loose");
    do_mount("devtmpfs", "/newroot/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    if (chdir("/newroot") != 0)
        die("cd /newroot: %s", strerror(errno));
    do_mount(".", "/", NULL, MS_MOVE, NULL);
    if (chroot(".") != 0 || chdir("/") != 0)
        die("chroot into the host root: %s", strerror(errno));
    /* Our fds 0-2 still point at the initramfs's /dev/console node, which
     * stays valid; reopen it from the guest's devtmpfs all the same. */
    int c = open("/dev/console", O_RDWR | O_CLOEXEC);
    if (c >= 0) {
        dup2(c, 1);
        close(console_fd);
        console_fd = fcntl(1, F_DUPFD_CLOEXEC, 10);
        close(c);
    }
}

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        die("lo: %s", strerror(errno));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        die("bringing lo up: %s", strerror(errno));
    close(s);
}

static double uptime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_rundir_file(const char *name, const char *text)
{
    int fd = openat(rundir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) != 0)
        logmsg(1, "writing %s to the run dir: %s", name, strerror(errno));
    if (fd >= 0)
        close(fd);
}

int main(void)
{
    /* The kernel opened the initramfs's /dev/console as fds 0-2. */
    console_fd = fcntl(1, F_DUPFD_CLOEXEC, 10);
    mount_host_root();

    const char *rundir = getenv("CHAOS_VM_RUNDIR");
    if (!rundir || rundir[0] != '/')
        die("CHAOS_VM_RUNDIR is not set: boot this init through tests/vm/vm-run");
    /* The run dir is vm-run's second 9p share (tag "rundir"), uncached, so
     * that COMMAND's output reaches the host as it is written, and the status
     * file as soon as it is fsynced. It is mounted in the guest's own /dev, out
     * of COMMAND's way; CHAOS_VM_RUNDIR names the same dir on the host. */
    if (mkdir(RUNDIR_MNT, 0700) != 0 && errno != EEXIST)
        die("mkdir %s: %s", RUNDIR_MNT, strerror(errno));
    do_mount("rundir", RUNDIR_MNT, "9p", MS_NOSUID | MS_NODEV,
             "trans=virtio,version=9p2000.L,msize=262144,access=any,cache=none");
    rundir_fd = open(RUNDIR_MNT, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rundir_fd < 0)
        die("cannot open the run dir (%s on the host): %s", rundir, strerror(errno));

    /* From here on our own errors reach the caller's stderr. */
    int out = openat(rundir_fd, "stdout", O_WRONLY | O_APPEND | O_CLOEXEC);
    int err = openat(rundir_fd, "stderr", O_WRONLY | O_APPEND | O_CLOEXEC);
    if (out < 0 || err < 0)
        die("cannot open stdout/stderr in the run dir: %s", strerror(errno));
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        close(null);
    }

    size_t alen, elen, clen;
    char *abuf = read_rundir_file("argv", &alen);
    char *ebuf = read_rundir_file("env", &elen);
    char *cwd = read_rundir_file("cwd", &clen);
    char **argv = split_nul(abuf, alen, 0);
    char **envp = split_nul(ebuf, elen, 0);
    if (!argv[0] || !argv[0][0])
        die("no command given");

    do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    stash_host_tmp_path(cwd);
    stash_host_tmp_path(env_get(envp, "CHAOS_BUILD"));
    stash_host_tmp_path(env_get(envp, "CHAOS_SOURCE"));
    /* tmpfs on /run: `ip netns add` bind-mounts into /run/netns, which would
     * otherwise create files in the host's /run through 9p. */
    do_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    restore_host_tmp_paths();
    /* /dev/shm and /dev/pts live in the guest's devtmpfs, not on the host. */
    if (mkdir("/dev/shm", 01777) == 0 || errno == EEXIST)
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    if (mkdir("/dev/pts", 0755) == 0 || errno == EEXIST)
        mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666");
    /* cgroup2, as on a systemd host: process targets by cgroup work inside. */
    mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    if (chdir(cwd) != 0)
        die("cd %s: %s", cwd, strerror(errno));

    load_modules(env_get(envp, "CHAOS_VM_NO_MODULES"), env_get(envp, "CHAOS_VM_MODULES"));
    loopback_up();

    char started[64];
    snprintf(started, sizeof started, "started %.3f\n", uptime());
    write_rundir_file("started", started);

    pid_t child = fork();
    if (child < 0)
        die("fork: %s", strerror(errno));
    if (child == 0) {
        setsid();
        /* execvp searches the PATH of the environment it runs in, not envp's. */
        extern char **environ;
        environ = envp;
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        int e = errno;
        logmsg(1, "cannot run %s: %s", argv[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }

    /* As PID 1 we also reap whatever COMMAND orphaned, until COMMAND itself ends. */
    int status = 0;
    for (;;) {
        int st;
        pid_t p = wait(&st);
        if (p < 0 && errno == EINTR)
            continue;
        if (p < 0)
            die("wait: %s", strerror(errno));
        if (p == child) {
            status = st;
            break;
        }
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char line[64];
    snprintf(line, sizeof line, "exit %d %.3f\n", code, uptime());
    write_rundir_file("status", line);
    power_off();
}
