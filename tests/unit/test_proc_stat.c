/* The shared /proc/PID/stat parser (common/proc_stat.c) and its users: the
 * journal's owner start time and the process target's, each checked against
 * field 22 read independently here (sscanf after the last ')'), for this
 * process, a child whose name holds spaces and ')', and a thread. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "journal.h"
#include "proc_stat.h"
#include "proc_target.h"

/* Field 22 (starttime) and 23 (vsize) of /proc/PID/stat, read without the
 * code under test: scanf skips fields 3-21 after the last ')'. */
static void independent_fields(pid_t pid, unsigned long long *start, unsigned long long *vsize)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    cr_assert_not_null(p);
    int got = sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d"
                     " %llu %llu",
                     start, vsize);
    cr_assert_eq(got, 2, "cannot read fields 22 and 23 of '%s'", buf);
}

static void check_pid(pid_t pid)
{
    unsigned long long want, vsize, got = 0;
    independent_fields(pid, &want, &vsize);
    cr_assert_neq(want, vsize, "start time and vsize coincide; the test cannot tell them apart");

    cr_assert_eq(journal_proc_start_time(pid, &got), 0);
    cr_expect_eq(got, want, "journal_proc_start_time(%d) = %llu, field 22 is %llu (vsize %llu)",
                 (int)pid, got, want, vsize);

    struct proc_ent e;
    char state;
    cr_assert_eq(proc_target_stat(pid, &e, &state), 0);
    cr_expect_eq(e.start, want, "proc_target_stat(%d).start = %llu, field 22 is %llu", (int)pid,
                 e.start, want);

    struct proc_stat ps;
    cr_assert_eq(proc_stat_read(pid, &ps), 0);
    cr_expect_eq(ps.start, want);
}

Test(proc_stat, start_time_of_this_process_is_field_22)
{
    check_pid(getpid());
}

Test(proc_stat, comm_with_spaces_and_parens_is_parsed_from_the_last_paren)
{
    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        prctl(PR_SET_NAME, "x) 1 2 (y) z");
        char c;
        close(go[1]);
        (void)!write(2, "", 0);
        (void)!read(go[0], &c, 1); /* until the parent closes its end */
        _exit(0);
    }
    close(go[0]);
    /* Wait until the child has renamed itself. */
    struct proc_stat ps = {0};
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(proc_stat_read(child, &ps), 0);
        if (strcmp(ps.comm, "x) 1 2 (y) z") == 0)
            break;
        usleep(5000);
    }
    cr_expect_str_eq(ps.comm, "x) 1 2 (y) z");
    cr_expect(ps.state == 'S' || ps.state == 'R', "state %c", ps.state);
    check_pid(child);
    close(go[1]);
    cr_assert_eq(waitpid(child, NULL, 0), child);
}

static void *park(void *arg)
{
    int *fd = arg;
    char c;
    (void)!read(*fd, &c, 1);
    return NULL;
}

Test(proc_stat, a_thread_has_its_own_start_and_names_its_process)
{
    int go[2];
    cr_assert_eq(pipe(go), 0);
    usleep(20000); /* two clock ticks: the thread starts later than we did */
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, park, &go[0]), 0);
    pid_t tid = 0;
    /* The new thread is the highest task id in /proc/self/task. */
    for (int i = 0; i < 200 && !tid; i++) {
        char path[64];
        for (pid_t t = getpid() + 1; t < getpid() + 64; t++) {
            snprintf(path, sizeof path, "/proc/self/task/%d", (int)t);
            if (access(path, F_OK) == 0)
                tid = t;
        }
        if (!tid)
            usleep(5000);
    }
    cr_assert_gt(tid, 0, "cannot find the thread's task id");
    check_pid(tid);
    pid_t tgid = 0;
    cr_assert_eq(proc_stat_tgid(tid, &tgid), 0);
    cr_expect_eq(tgid, getpid());
    cr_assert_eq(proc_stat_tgid(getpid(), &tgid), 0);
    cr_expect_eq(tgid, getpid());
    close(go[1]);
    pthread_join(th, NULL);
}

Test(proc_stat, a_missing_process_is_esrch_everywhere)
{
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0)
        _exit(0);
    cr_assert_eq(waitpid(child, NULL, 0), child);
    unsigned long long s;
    struct proc_ent e;
    struct proc_stat ps;
    pid_t tgid;
    cr_expect_eq(journal_proc_start_time(child, &s), -ESRCH);
    cr_expect_eq(proc_target_stat(child, &e, NULL), -ESRCH);
    cr_expect_eq(proc_stat_read(child, &ps), -ESRCH);
    cr_expect_eq(proc_stat_tgid(child, &tgid), -ESRCH);
}

Test(proc_stat, text_not_in_the_kernels_format_is_eio)
{
    static const char *const bad[] = {
        "",
        "12 comm S 1",
        "12 (comm",
        "12 (comm)S 1 2",
        "12 (comm) S 1 2 3 4 5",                                 /* too few fields */
        "12 (c) S 1 1 1 0 -1 x 0 0 0 0 0 0 0 0 20 0 1 0 99 1 2", /* flags not a number */
        "12 (c) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -9 1 2", /* start negative */
        "12 (c) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct proc_stat ps;
        cr_expect_eq(proc_stat_parse(bad[i], strlen(bad[i]), &ps), -EIO, "'%s'", bad[i]);
    }
    static const char good[] = "12 (a) b) R 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 777 1\n";
    struct proc_stat ps;
    cr_assert_eq(proc_stat_parse(good, sizeof good - 1, &ps), 0);
    cr_expect_str_eq(ps.comm, "a) b");
    cr_expect_eq(ps.state, 'R');
    cr_expect_eq(ps.flags, 4194560ul);
    cr_expect_eq(ps.start, 4242ull);
    /* Field 22 is the last one: it ends the text. */
    static const char last[] = "12 (a) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4243";
    cr_assert_eq(proc_stat_parse(last, sizeof last - 1, &ps), 0);
    cr_expect_eq(ps.start, 4243ull);
}

/* The journal's owner record: this process's pid and field 22, in the file
 * from the moment its name exists (an empty journal would read as nobody's
 * and be removed by a recovery running at that moment). */
Test(proc_stat, journal_owner_record_is_field_22_from_the_start)
{
    char dir[] = "/tmp/chaos-t-journal-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128], tmp[140];
    snprintf(path, sizeof path, "%s/run-1.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    struct journal *j = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(journal_open(path, &j, &err), 0, "%s", err.msg);
    cr_expect_neq(access(tmp, F_OK), 0, "the temp file stayed");
    struct journal_owner owner;
    size_t n = 1;
    cr_assert_eq(journal_read_pending(path, &owner, NULL, NULL, &n, &err), 0, "%s", err.msg);
    unsigned long long want, vsize;
    independent_fields(getpid(), &want, &vsize);
    cr_expect_eq(owner.pid, getpid());
    cr_expect_eq(owner.start, want, "journal records start %llu, field 22 is %llu", owner.start,
                 want);
    cr_expect_eq(n, 0);
    cr_expect_eq(journal_owner_check(&owner, NULL), JOURNAL_OWNER_ALIVE);
    journal_close(j, false);
    /* Opening it again appends a second owner record to the same file. */
    cr_assert_eq(journal_open(path, &j, &err), 0, "%s", err.msg);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f);
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    cr_expect_eq(lines, 2);
    journal_close(j, true);
    cr_expect_neq(access(path, F_OK), 0);
    cr_assert_eq(rmdir(dir), 0);
}
