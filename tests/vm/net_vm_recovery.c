/* Issue 12 against a real kernel: a fault never counts as reverted while
 * it is still installed, and ingress faults of two interfaces never share
 * an ifb. Part of the test_net_vm binary (the runner and the topology are
 * test_net_vm.c's); suite netrec.
 *
 * - A netns_pid fault whose process exits mid-fault is still reverted (the
 *   run pins the namespace), by the run and, after SIGKILL, by recovery
 *   (which finds the namespace by its nsfs identity under /run/netns).
 * - A namespace that is truly gone is reported as gone, not as reverted.
 * - Interfaces with ifindex 1000001 and 1000002 (which both gave
 *   "chaos-ifb100000" once IFNAMSIZ cut the name) get ifbs of their own,
 *   and a device of an ifb's name that is not ours is refused. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "net_vm.h"

#define DEAD "/tmp/chaos-t-netrec-dead.journal"

static pid_t helper_pid = -1;

static void rec_up(void)
{
    topo_up();
    helper_pid = -1;
    if (unlink(DEAD) < 0 && errno != ENOENT) {
    }
}

static void rec_down(void)
{
    if (helper_pid > 0) {
        kill(helper_pid, SIGKILL);
        waitpid(helper_pid, NULL, 0);
    }
    if (system("for l in chaos-t-x1 chaos-t-x2; do ip -n " CLI " link del $l 2>/dev/null; done; "
               "rm -f " DEAD)) {
    }
    topo_down();
}

TestSuite(netrec, .init = rec_up, .fini = rec_down, .timeout = 240);

/* A process that sits in namespace ns ("" for a new namespace of its own,
 * with lo up) until killed. */
static pid_t start_helper(const char *ns)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        if (ns[0]) {
            char path[128];
            snprintf(path, sizeof path, "/run/netns/%s", ns);
            int fd = open(path, O_RDONLY);
            if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
                _exit(2);
        } else if (unshare(CLONE_NEWNET) < 0 || system("ip link set lo up") != 0) {
            _exit(2);
        }
        if (write(ready[1], "r", 1) != 1)
            _exit(2);
        for (;;)
            pause();
    }
    close(ready[1]);
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1, "the helper process did not start");
    close(ready[0]);
    return pid;
}

static void stop_helper(pid_t pid)
{
    kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    if (pid == helper_pid)
        helper_pid = -1;
}

/* No hand-off file is left under /run/chaos/net (the guest's own /run). */
static void assert_no_handoff(void)
{
    char *left = capture("ls /run/chaos/net/ 2>/dev/null | grep 'json$' || true");
    cr_assert_str_eq(left, "", "hand-off files left behind: %s", left);
    free(left);
}

/* A configured htb root on DEV, so "as before" means more than the default. */
static void configure_htb(void)
{
    sh("tc -n " CLI " qdisc add dev " DEV " root handle 1: htb default 10 && "
       "tc -n " CLI " class add dev " DEV " parent 1: classid 1:10 htb rate 100mbit");
}

Test(netrec, netns_pid_process_exits_mid_fault)
{
    configure_htb();
    snapshot_before();
    helper_pid = start_helper(CLI);
    char target[256];
    snprintf(target, sizeof target,
             "{\"netns_pid\":%d,\"interface\":\"" DEV "\",\"dst\":\"" TARGET "\","
             "\"direction\":\"both\"}",
             (int)helper_pid);
    struct rig r;
    rig_open(&r);
    struct engine_fault *f = apply(&r, target, "{\"delay\":\"100ms\"}");
    double t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert_geq(t, 200, "the fault is not in force (RTT %.1f ms)", t);
    stop_helper(helper_pid); /* its /proc/PID/ns/net is gone; the namespace is not */
    revert(&r, f);
    rig_close(&r);
    t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert_lt(t, 25, "still delayed after the revert (RTT %.1f ms)", t);
    assert_state_restored();
    assert_no_handoff();
}

/* A netns_pid fault on iface in an engine that journals to DEAD and is
 * then SIGKILLed, as a crash would leave it. */
static void crash_with_fault(pid_t ns_pid, const char *iface)
{
    char target[160];
    snprintf(target, sizeof target,
             "{\"netns_pid\":%d,\"interface\":\"%s\",\"direction\":\"both\"}", (int)ns_pid,
             iface);
    apply_then_crash(DEAD, target, "{\"delay\":\"100ms\"}");
}

struct lines {
    char text[4096];
};

static void keep_line(const char *line, void *arg)
{
    struct lines *l = arg;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s\n", line);
}

Test(netrec, netns_pid_recovery_finds_the_namespace_by_identity)
{
    configure_htb();
    snapshot_before();
    helper_pid = start_helper(CLI);
    crash_with_fault(helper_pid, DEV);
    stop_helper(helper_pid);
    double t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert_geq(t, 200, "the crashed run's fault is not in force (RTT %.1f ms)", t);

    struct chaos_err err = {0};
    struct lines log = {""};
    int left = engine_recover_file(DEAD, keep_line, &log, &err);
    cr_assert_eq(left, 0, "recovery failed: %s\n%s", err.msg, log.text);
    cr_assert(strstr(log.text, "reverted network fault"), "recovery said:\n%s", log.text);
    t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert_lt(t, 25, "still delayed after recovery (RTT %.1f ms)", t);
    assert_state_restored();
    assert_no_handoff();
    cr_assert(access(DEAD, F_OK) < 0, "the recovered journal stayed");
}

Test(netrec, recovery_of_a_namespace_that_is_gone_says_so)
{
    snapshot_before();
    helper_pid = start_helper(""); /* a namespace only this process holds */
    crash_with_fault(helper_pid, "lo");
    stop_helper(helper_pid); /* the namespace goes with it, and the fault */

    struct chaos_err err = {0};
    struct lines log = {""};
    int left = engine_recover_file(DEAD, keep_line, &log, &err);
    cr_assert_eq(left, 0, "recovery failed: %s\n%s", err.msg, log.text);
    cr_assert(strstr(log.text, "nothing to revert: its network namespace") &&
                  strstr(log.text, "is gone, and its qdiscs with it"),
              "recovery said:\n%s", log.text);
    cr_assert(!strstr(log.text, "reverted network fault"), "a gone fault reported as reverted:\n%s",
              log.text);
    assert_state_restored();
}

/* Both redirects of x1 and x2 and where they point. */
static void assert_redirect(const char *dev, const char *ifb)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "tc -n " CLI " filter show dev %s ingress", dev);
    char *out = capture(cmd);
    char want[64];
    snprintf(want, sizeof want, "to device %s)", ifb);
    cr_assert(strstr(out, want), "%s: wanted a redirect %s in:\n%s", dev, want, out);
    free(out);
    snprintf(cmd, sizeof cmd, "ip -n " CLI " -d link show %s", ifb);
    out = capture(cmd);
    char alias[64];
    snprintf(alias, sizeof alias, "alias chaos: ingress of ifindex %d (%s)",
             strcmp(dev, "chaos-t-x1") == 0 ? 1000001 : 1000002, dev);
    cr_assert(strstr(out, alias), "ifb %s: wanted '%s' in:\n%s", ifb, alias, out);
    free(out);
}

Test(netrec, ifbs_of_long_ifindexes_do_not_collide)
{
    /* 1000001 and 1000002 both became "chaos-ifb100000" (15 bytes). */
    sh("ip -n " CLI " link add name chaos-t-x1 index 1000001 type veth peer name chaos-t-y1 && "
       "ip -n " CLI " link add name chaos-t-x2 index 1000002 type veth peer name chaos-t-y2 && "
       "for l in x1 y1 x2 y2; do ip -n " CLI " link set chaos-t-$l up; done");
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f1 =
        apply(&r, "{\"netns\":\"" CLI "\",\"interface\":\"chaos-t-x1\",\"direction\":\"ingress\"}",
              "{\"delay\":\"10ms\"}");
    struct engine_fault *f2 =
        apply(&r, "{\"netns\":\"" CLI "\",\"interface\":\"chaos-t-x2\",\"direction\":\"ingress\"}",
              "{\"delay\":\"20ms\"}");
    assert_redirect("chaos-t-x1", "cifbf4241");
    assert_redirect("chaos-t-x2", "cifbf4242");
    revert(&r, f1);
    /* x2 keeps its own ifb and tree. */
    assert_redirect("chaos-t-x2", "cifbf4242");
    char *q = capture("tc -n " CLI " qdisc show dev cifbf4242");
    cr_assert(strstr(q, "netem ca10:") && strstr(q, "delay 20ms"), "x2's ifb lost its tree:\n%s", q);
    free(q);
    revert(&r, f2);
    rig_close(&r);
    assert_state_restored();
}

Test(netrec, an_ifb_name_taken_by_another_device_is_refused)
{
    char *idx = capture("ip -n " CLI " -o link show " DEV " | cut -d: -f1");
    int ifindex = atoi(idx);
    free(idx);
    cr_assert(ifindex > 0, "cannot tell " DEV "'s index");
    char cmd[160], name[32];
    snprintf(name, sizeof name, "cifb%x", (unsigned)ifindex);
    snprintf(cmd, sizeof cmd, "ip -n " CLI " link add %s type ifb", name);
    sh(cmd);
    snapshot_before();
    struct rig r;
    rig_open(&r);
    char msg[800];
    apply_fails(&r, "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"direction\":\"both\"}",
                "{\"delay\":\"10ms\"}", msg, sizeof msg);
    cr_assert(strstr(msg, name) && strstr(msg, "exists already"), "%s", msg);
    rig_close(&r);
    assert_state_restored();
}

/* An interface renamed mid-fault still carries the tree: the revert must
 * fail naming it, not report it removed; renamed back, recovery removes it. */
Test(netrec, renamed_interface_is_a_failed_revert)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f = apply(&r, "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"dst\":\"" TARGET "\"}",
                                   "{\"delay\":\"100ms\"}");
    sh("ip -n " CLI " link set " DEV " down && ip -n " CLI " link set " DEV " name chaos-t-ren && "
       "ip -n " CLI " link set chaos-t-ren up");
    struct chaos_err err = {0};
    cr_assert(engine_revert(r.engine, f, &err) < 0, "a revert that missed the tree succeeded");
    cr_assert(strstr(err.msg, "is now called chaos-t-ren, not " DEV), "%s", err.msg);
    cr_assert_eq(engine_fault_state(f), FAULT_REVERT_FAILED);
    sh("ip -n " CLI " link set chaos-t-ren down && ip -n " CLI " link set chaos-t-ren name " DEV
       " && ip -n " CLI " link set " DEV " up");
    double t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert_geq(t, 100, "the tree is not there any more (RTT %.1f ms)", t);
    struct lines log = {""};
    int left = engine_recover_file(JOURNAL, keep_line, &log, &err);
    cr_assert_eq(left, 0, "recovery failed: %s\n%s", err.msg, log.text);
    cr_assert(strstr(log.text, "reverted network fault"), "recovery said:\n%s", log.text);
    t = median_rtt_ms(TARGET, 7, -1, 5);
    cr_assert_lt(t, 25, "still delayed after recovery (RTT %.1f ms)", t);
    rig_close(&r);
    assert_state_restored();
}
