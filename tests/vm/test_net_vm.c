/* Network faults against the real kernel, inside User-Mode Linux (the CI
 * host has no sch_netem), inside the VM: Debian's own kernel under QEMU.
 * Run through tests/vm/vm-run; see net_faults.sh.
 * net_vm_recovery.c adds the netrec suite to this binary (net_vm.h).
 *
 * Topology, made fresh for every test: namespace chaos-t-cli (10.77.0.1,
 * fd77::1 on chaos-t-c0) and chaos-t-srv (10.77.0.2 and 10.77.0.3, fd77::2,
 * on chaos-t-s0), joined by a veth pair. A UDP echo server in chaos-t-srv
 * answers on ports 7 and 9; the test process itself moves into chaos-t-cli
 * and measures round trips and losses with its own packets. Faults are
 * applied through the engine (the code `chaos run` uses) on chaos-t-c0.
 *
 * Every test compares iproute2's view of both interfaces (`tc -j` qdiscs,
 * classes, filters, ingress filters, and the link list) before and after:
 * they must be equal. Tolerances: a delay D must show a median RTT in
 * [D, D + 40 ms] (an emulated CPU's timer and scheduler add a few ms), untouched traffic
 * a median below 25 ms; a loss rate p over n packets must lose within 4.5
 * standard deviations of n*p. */
/* Not Criterion: this suite was born in User-Mode Linux, where Criterion's
 * BoxFort arena could not be set up, so this file carries a tiny runner with
 * the same assertion names: each test runs in a forked child, its suite's
 * init before and fini after (also when an assertion fails). */
#include <execinfo.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdbool.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include <math.h>

#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include "engine.h"
#include "fault.h"
#include "nl_tc.h"
#include "loop.h"
#include "net_vm.h"

/* ---- the tiny runner ---- */

static void (*current_fini)(void);

void fail_at(const char *file, int line, const char *expr, const char *fmt, ...)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    if (fmt && fmt[0] && fmt[1]) {
        va_list ap;
        va_start(ap, fmt);
        fputs("  ", stderr);
        vfprintf(stderr, fmt + 1, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fflush(stderr);
    void (*fini)(void) = current_fini;
    current_fini = NULL;
    if (fini)
        fini();
    _exit(1);
}

struct test {
    const struct suite *suite;
    const char *name;
    void (*fn)(void);
};
#define MAX_TESTS 64
static struct test tests[MAX_TESTS];
static size_t n_tests;

void net_vm_register(const struct suite *s, const char *name, void (*fn)(void))
{
    if (n_tests < MAX_TESTS)
        tests[n_tests++] = (struct test){s, name, fn};
}

static pid_t echo_pid;

void sh(const char *cmd)
{
    int rc = system(cmd);
    cr_assert(rc == 0, "setup command failed (%d): %s", rc, cmd);
}

/* Output of cmd, whole. */
char *capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = '\0';
    pclose(p);
    return buf;
}

/* Everything tc and ip say about the tc state of both ends and the links.
 * One `tc -batch` per namespace instead of a tc per device and object: each
 * exec costs ~80 ms under TCG, and every test takes this picture twice. The
 * link list heads each namespace's part, so a difference can be placed. */
static char *tc_state(void)
{
    return capture("for ns in " CLI " " SRV "; do "
                   "devs=$(ip -n $ns -o link show | while IFS= read -r l; do "
                   "d=${l#*: }; d=${d%%: *}; echo \"${d%%@*}\"; done); "
                   "echo \"$ns links:\" $devs; "
                   "for dev in $devs; do printf 'qdisc show dev %s\\nclass show dev %s\\n"
                   "filter show dev %s\\nfilter show dev %s ingress\\n' $dev $dev $dev $dev; "
                   "done | tc -n $ns -j -force -batch -; done 2>&1 "
                   /* a counter, not configuration: a re-created htb starts it at 0 */
                   "| sed 's/\"direct_packets_stat\":[0-9]*,//'");
}

static void enter_ns(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert(setns(fd, CLONE_NEWNET) == 0, "setns %s: %s", path, strerror(errno));
    close(fd);
}

/* Answers every UDP datagram from the address it was sent to: one socket
 * per address and port (a wildcard socket would answer 10.77.0.3 from
 * 10.77.0.2, which a connected client drops). */
static void echo_server(void)
{
    static const char *const addrs[] = {"10.77.0.2", "10.77.0.3", "fd77::2"};
    static const int ports[] = {7, 9};
    struct pollfd p[6];
    int n = 0;
    for (size_t a = 0; a < 3; a++)
        for (size_t k = 0; k < 2; k++) {
            struct sockaddr_storage ss = {0};
            socklen_t len;
            int fam = strchr(addrs[a], ':') ? AF_INET6 : AF_INET;
            if (fam == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(ports[k]);
                inet_pton(AF_INET6, addrs[a], &s6->sin6_addr);
                len = sizeof *s6;
            } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                s4->sin_family = AF_INET;
                s4->sin_port = htons(ports[k]);
                inet_pton(AF_INET, addrs[a], &s4->sin_addr);
                len = sizeof *s4;
            }
            int fd = socket(fam, SOCK_DGRAM, 0);
            int big = 4 << 20;
            setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
            if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0)
                _exit(3);
            p[n++] = (struct pollfd){fd, POLLIN, 0};
        }
    for (;;) {
        if (poll(p, (nfds_t)n, -1) < 0)
            continue;
        for (int i = 0; i < n; i++)
            if (p[i].revents & POLLIN) {
                char buf[256];
                struct sockaddr_storage from;
                socklen_t fl = sizeof from;
                ssize_t got = recvfrom(p[i].fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
                if (got > 0)
                    sendto(p[i].fd, buf, (size_t)got, 0, (struct sockaddr *)&from, fl);
            }
    }
}

static char *state_before;

void topo_up(void)
{
    if (system("ip netns del " CLI " 2>/dev/null; ip netns del " SRV " 2>/dev/null; rm -f " JOURNAL)) {
    }
    sh("ip netns add " CLI " && ip netns add " SRV
       " && ip -n " CLI " link add " DEV " type veth peer name chaos-t-s0 netns " SRV
       " && ip -n " CLI " link set lo up && ip -n " SRV " link set lo up"
       " && ip -n " CLI " addr add 10.77.0.1/24 dev " DEV
       " && ip -n " CLI " addr add fd77::1/64 dev " DEV " nodad"
       " && ip -n " SRV " addr add 10.77.0.2/24 dev chaos-t-s0"
       " && ip -n " SRV " addr add 10.77.0.3/24 dev chaos-t-s0"
       " && ip -n " SRV " addr add fd77::2/64 dev chaos-t-s0 nodad"
       " && ip -n " CLI " link set " DEV " up && ip -n " SRV " link set chaos-t-s0 up");
    echo_pid = fork();
    cr_assert(echo_pid >= 0);
    if (echo_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int fd = open("/run/netns/" SRV, O_RDONLY);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
            _exit(2);
        echo_server();
    }
    enter_ns(CLI);
    state_before = NULL;
}

struct rig;
static struct rig *open_rig;
static void rig_abandon(struct rig *r);

void topo_down(void)
{
    if (open_rig)
        rig_abandon(open_rig); /* a failed assertion left faults applied */
    if (echo_pid > 0) {
        kill(echo_pid, SIGKILL);
        waitpid(echo_pid, NULL, 0);
    }
    free(state_before);
    if (system("ip netns del " CLI " 2>/dev/null; ip netns del " SRV " 2>/dev/null; rm -f " JOURNAL)) {
    }
}

/* Takes the "before" picture; call once the topology is set up as the test wants. */
void snapshot_before(void)
{
    free(state_before);
    state_before = tc_state();
}

void assert_state_restored(void)
{
    char *after = tc_state();
    cr_assert_str_eq(after, state_before, "tc state differs after revert:\n--- before\n%s\n--- after\n%s",
                     state_before, after);
    free(after);
}

/* ---- measuring ---- */

int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int udp_socket(const char *addr, int port, int prio)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int fam;
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = fam = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, addr, &a->sin6_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = fam = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, addr, &a->sin_addr);
        len = sizeof *a;
    }
    int fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    if (prio >= 0)
        cr_assert(setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof prio) == 0);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    cr_assert(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect %s: %s", addr, strerror(errno));
    return fd;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median RTT in ms of n sequential probes (a lost probe counts as 1000 ms). */
double median_rtt_ms(const char *addr, int port, int prio, int n)
{
    int fd = udp_socket(addr, port, prio);
    int64_t rtt[64];
    cr_assert(n <= 64);
    for (int i = 0; i < n; i++) {
        uint32_t seq = (uint32_t)i;
        int64_t t0 = now_us();
        cr_assert(send(fd, &seq, sizeof seq, 0) == sizeof seq);
        rtt[i] = 1000000;
        struct pollfd p = {fd, POLLIN, 0};
        while (poll(&p, 1, 1000) > 0) {
            uint32_t got;
            if (recv(fd, &got, sizeof got, 0) == sizeof got && got == seq) {
                rtt[i] = now_us() - t0;
                break;
            }
        }
    }
    close(fd);
    qsort(rtt, (size_t)n, sizeof rtt[0], cmp_i64);
    return (double)rtt[n / 2] / 1000.0;
}

/* Sends n probes in paced bursts and counts the distinct replies. */
int replies(const char *addr, int port, int n)
{
    int fd = udp_socket(addr, port, -1);
    char *seen = calloc((size_t)n, 1);
    int got_n = 0;
    for (int i = 0; i < n || i == n; i++) {
        if (i < n) {
            uint32_t seq = (uint32_t)i;
            cr_assert(send(fd, &seq, sizeof seq, 0) == sizeof seq);
        }
        /* Drain what has come back every 20 packets, and wait at the end. */
        if (i % 20 == 19 || i == n) {
            struct pollfd p = {fd, POLLIN, 0};
            int wait_ms = i == n ? 1500 : 5;
            while (poll(&p, 1, wait_ms) > 0) {
                uint32_t got;
                if (recv(fd, &got, sizeof got, 0) == sizeof got && got < (uint32_t)n &&
                    !seen[got]) {
                    seen[got] = 1;
                    got_n++;
                }
                if (i == n)
                    wait_ms = 300;
            }
        }
        if (i == n)
            break;
    }
    free(seen);
    close(fd);
    return got_n;
}

/* ---- faults through the engine ---- */


void rig_open(struct rig *r)
{
    struct chaos_err err = {0};
    memset(r, 0, sizeof *r);
    r->loop = loop_new();
    cr_assert_not_null(r->loop);
    cr_assert_eq(engine_new(r->loop, JOURNAL, NULL, 0, &r->engine, &err), 0, "%s", err.msg);
    open_rig = r;
}

static void rig_free(struct rig *r)
{
    engine_free(r->engine);
    loop_free(r->loop);
    for (size_t i = 0; i < r->n_specs; i++)
        fault_spec_free(r->specs[i]);
}

static void rig_abandon(struct rig *r)
{
    open_rig = NULL;
    engine_revert_all(r->engine);
    rig_free(r);
}

void rig_close(struct rig *r)
{
    open_rig = NULL;
    cr_assert_eq(engine_revert_all(r->engine), 0);
    rig_free(r);
}

/* Applies a network fault given as JSON target and params; returns it. */
struct engine_fault *apply(struct rig *r, const char *target, const char *params)
{
    struct chaos_err err = {0};
    json_t *t = json_loads(target, 0, NULL), *p = json_loads(params, 0, NULL);
    cr_assert(t && p, "bad JSON in the test itself");
    struct fault_spec *spec = NULL;
    cr_assert_eq(fault_spec_parse("network", t, p, "test", 600000, &spec, &err), 0, "%s", err.msg);
    struct engine_fault *f = NULL;
    int rc = engine_apply(r->engine, "net", spec, NULL, NULL, &f, &err);
    cr_assert(r->n_specs < 8);
    r->specs[r->n_specs++] = spec;
    cr_assert_eq(rc, 0, "apply failed: %s", err.msg);
    json_decref(t);
    json_decref(p);
    return f;
}

/* Like apply, but the apply must fail; returns the error message. */
void apply_fails(struct rig *r, const char *target, const char *params, char *msg, size_t size)
{
    struct chaos_err err = {0};
    json_t *t = json_loads(target, 0, NULL), *p = json_loads(params, 0, NULL);
    struct fault_spec *spec = NULL;
    cr_assert_eq(fault_spec_parse("network", t, p, "test", 600000, &spec, &err), 0, "%s", err.msg);
    struct engine_fault *f = NULL;
    int rc = engine_apply(r->engine, "net", spec, NULL, NULL, &f, &err);
    cr_assert(r->n_specs < 8);
    r->specs[r->n_specs++] = spec;
    cr_assert_neq(rc, 0, "apply should have failed");
    snprintf(msg, size, "%s", err.msg);
    json_decref(t);
    json_decref(p);
}

void revert(struct rig *r, struct engine_fault *f)
{
    struct chaos_err err = {0};
    cr_assert_eq(engine_revert(r->engine, f, &err), 0, "revert failed: %s", err.msg);
}

/* ---- main ---- */

/* A crash in a test prints where it happened before the child dies. */
static void on_crash(int sig)
{
    void *frames[32];
    int n = backtrace(frames, 32);
    fprintf(stderr, "signal %d in the test; backtrace:\n", sig);
    backtrace_symbols_fd(frames, n, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Usage: test_net_vm [--filter GLOB]; GLOB matches "suite/test". */
int main(int argc, char **argv)
{
    const char *filter = "*";
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
    setvbuf(stdout, NULL, _IOLBF, 0);
    int failed = 0, ran = 0;
    for (size_t i = 0; i < n_tests; i++) {
        char full[160];
        snprintf(full, sizeof full, "%s/%s", tests[i].suite->name, tests[i].name);
        if (fnmatch(filter, full, 0) != 0)
            continue;
        ran++;
        int64_t t0 = now_us();
        pid_t pid = getenv("NET_VM_NOFORK") ? 0 : fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            signal(SIGSEGV, on_crash);
            signal(SIGABRT, on_crash);
            alarm((unsigned)tests[i].suite->timeout);
            current_fini = tests[i].suite->fini;
            tests[i].suite->init();
            tests[i].fn();
            current_fini = NULL;
            tests[i].suite->fini();
            _exit(0);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok) {
            failed++;
            /* A timeout or crash skipped fini: clean up for the next test. */
            if (!WIFEXITED(status))
                tests[i].suite->fini();
        }
        char how[48] = "";
        if (WIFSIGNALED(status))
            snprintf(how, sizeof how, WTERMSIG(status) == SIGALRM ? " timed out" : " killed by signal %d",
                     WTERMSIG(status));
        printf("%s %s (%.1f s)%s\n", ok ? "PASS" : "FAIL", full, (double)(now_us() - t0) / 1e6, how);
    }
    printf("%d of %d tests passed\n", ran - failed, ran);
    return failed || ran == 0 ? 1 : 0;
}
