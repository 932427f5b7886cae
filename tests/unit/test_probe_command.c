/* The command probe with real children: exit codes, signals, stdout
 * conditions, timeouts that kill, programs that cannot run, many in flight
 * and no fd of ours inherited. */
#include "probe_fixtures.h"

Test(probe_command, exit_codes, .timeout = 30)
{
    int fds = count_fds();
    struct sample s = sample1(cmd("[\"true\"]", NULL), NULL);
    cr_assert(s.ok, "error: %s", s.error);
    cr_assert_eq(s.status, 0);

    s = sample1(cmd("[\"false\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 1);
    cr_assert_str_eq(s.error, "exit code 1 not in [0]");

    s = sample1(cmd("[\"sh\", \"-c\", \"exit 3\"]", NULL), "{\"exit_code\": [2, 3]}");
    cr_assert(s.ok, "error: %s", s.error);
    cr_assert_eq(s.status, 3);

    s = sample1(cmd("[\"sh\", \"-c\", \"exit 0\"]", NULL), "{\"exit_code\": [1]}");
    cr_assert_str_eq(s.error, "exit code 0 not in [1]");

    /* 127 from a shell that could not find the program */
    s = sample1(cmd("[\"sh\", \"-c\", \"exec /nonexistent/prog 2>/dev/null\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 127);
    cr_assert(strstr(s.error, "exit code 127 not in [0] (127: the program could not be run"), "%s",
              s.error);
    assert_no_children();
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
}

Test(probe_command, killed_by_signal, .timeout = 30)
{
    struct sample s = sample1(cmd("[\"sh\", \"-c\", \"kill -TERM $$\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, -1);
    cr_assert(strstr(s.error, "killed by signal SIGTERM"), "%s", s.error);
    assert_no_children();
}

Test(probe_command, stdout_conditions, .timeout = 30)
{
    struct sample s = sample1(cmd("[\"echo\", \"hello world\"]", NULL),
                              "{\"stdout_contains\": \"lo wo\", \"stdout_regex\": \"^hello "
                              "[a-z]+\\n$\"}");
    cr_assert(s.ok, "error: %s", s.error);

    s = sample1(cmd("[\"echo\", \"hello\"]", NULL), "{\"stdout_contains\": \"bye\"}");
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 0);
    cr_assert_str_eq(s.error, "stdout does not contain \"bye\"");

    s = sample1(cmd("[\"echo\", \"v1.2\"]", NULL), "{\"stdout_regex\": \"^v2\"}");
    cr_assert_str_eq(s.error, "stdout does not match regex \"^v2\"");

    /* stdin is /dev/null: cat ends at once */
    s = sample1(cmd("[\"cat\"]", "\"timeout\": \"2s\""), "{\"stdout_regex\": \"^$\"}");
    cr_assert(s.ok, "error: %s", s.error);
}

Test(probe_command, stdout_beyond_64k_is_drained, .timeout = 30)
{
    /* 1 MiB of output: the child would block forever if we stopped reading. */
    struct sample s = sample1(cmd("[\"sh\", \"-c\", \"head -c 1048576 /dev/zero | tr '\\\\0' a; "
                                  "echo END\"]",
                                  NULL),
                              "{\"stdout_contains\": \"END\"}");
    cr_assert(!s.ok);
    cr_assert_eq(s.status, 0);
    cr_assert_str_eq(s.error, "stdout (first 64 KiB) does not contain \"END\"");
    s = sample1(cmd("[\"sh\", \"-c\", \"head -c 1048576 /dev/zero | tr '\\\\0' a\"]", NULL),
                "{\"stdout_regex\": \"^a+$\"}");
    cr_assert(s.ok, "error: %s", s.error);
    assert_no_children();
}

static bool process_gone(pid_t pid)
{
    /* Gone, or a zombie waiting for init: dead either way. */
    for (int i = 0; i < 100; i++) {
        char path[64], st[256] = "";
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return true;
        size_t n = fread(st, 1, sizeof st - 1, f);
        fclose(f);
        st[n] = '\0';
        char *rp = strrchr(st, ')');
        if (rp && (rp[2] == 'Z' || rp[2] == 'X'))
            return true;
        usleep(10000);
    }
    return false;
}

static pid_t read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s was not written", path);
    int pid = 0;
    cr_assert(fscanf(f, "%d", &pid) == 1);
    fclose(f);
    unlink(path);
    return pid;
}

Test(probe_command, timeout_kills_the_child, .timeout = 30)
{
    char pidfile[64], kidfile[64], argv[512];
    snprintf(pidfile, sizeof pidfile, "/tmp/test_probe_%d.pid", (int)getpid());
    snprintf(kidfile, sizeof kidfile, "/tmp/test_probe_%d.kid", (int)getpid());
    /* The shell starts a grandchild too: the whole group dies. */
    snprintf(argv, sizeof argv, "[\"sh\", \"-c\", \"echo $$ > %s; sleep 30 & echo $! > %s; wait\"]",
             pidfile, kidfile);
    int fds = count_fds();
    int64_t t0 = loop_now_ms();
    struct sample s = sample1(cmd(argv, "\"timeout\": \"300ms\""), NULL);
    int64_t took = loop_now_ms() - t0;
    cr_assert(!s.ok);
    cr_assert_eq(s.status, -1);
    cr_assert_str_eq(s.error, "timed out after 300ms");
    cr_assert(took >= 290 && took < 3000, "took %lld ms", (long long)took);
    pid_t pid = read_pid(pidfile), kid = read_pid(kidfile);
    cr_assert(pid > 0 && kill(pid, 0) < 0 && errno == ESRCH, "the child %d is still there", pid);
    cr_assert(process_gone(kid), "the grandchild %d survived", kid);
    assert_no_children();
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
}

Test(probe_command, program_that_cannot_run, .timeout = 30)
{
    int fds = count_fds();
    struct sample s = sample1(cmd("[\"/nonexistent/prog\", \"x\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_eq(s.status, -1);
    cr_assert_str_eq(s.error, "cannot run '/nonexistent/prog': No such file or directory");

    s = sample1(cmd("[\"no-such-program-for-test-probe\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_str_eq(s.error,
                     "cannot run 'no-such-program-for-test-probe': No such file or directory");

    s = sample1(cmd("[\"/etc/passwd\"]", NULL), NULL);
    cr_assert(!s.ok);
    cr_assert_str_eq(s.error, "cannot run '/etc/passwd': Permission denied");
    assert_no_children();
    cr_assert_eq(count_fds(), fds, "file descriptors leaked");
}

Test(probe_command, many_in_flight, .timeout = 30)
{
    struct probe *p = parse_ok(cmd("[\"sh\", \"-c\", \"sleep 0.3; echo done\"]", NULL),
                               "{\"stdout_contains\": \"done\"}");
    struct run r;
    run_init(&r);
    int64_t t0 = loop_now_ms();
    for (int i = 0; i < 20; i++)
        run_start(&r, p);
    run_wait(&r);
    int64_t took = loop_now_ms() - t0;
    cr_assert_eq(r.n, 20);
    for (int i = 0; i < 20; i++)
        cr_assert(r.got[i].ok, "sample %d: %s", i, r.got[i].error);
    cr_assert(took < 3000, "20 x 300ms took %lld ms: not concurrent", (long long)took);
    run_fini(&r);
    probe_free(p);
    assert_no_children();
}

Test(probe_command, child_does_not_inherit_our_fds, .timeout = 30)
{
    /* Only 0, 1, 2 and the fd ls itself opens to read the directory. */
    struct sample s = sample1(cmd("[\"sh\", \"-c\", \"ls /proc/self/fd | wc -l\"]", NULL),
                              "{\"stdout_regex\": \"^ *4\\n$\"}");
    cr_assert(s.ok, "error: %s", s.error);
}

/* Freeing the runner with samples in flight */
