/* am_silence against a real Alertmanager (Debian's prometheus-alertmanager,
 * started here on 127.0.0.1 with its own config and storage in a temp dir,
 * killed at the end): a silence is created with its comment and matchers,
 * shows as active, and is expired by delete. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "am_silence.h"
#include "loop.h"

static char dir[] = "/tmp/chaos-t-amXXXXXX";
static pid_t am_pid;
static int port;

static void start_am(void)
{
    cr_assert(mkdtemp(dir));
    char cfg[256];
    snprintf(cfg, sizeof cfg, "%s/am.yml", dir);
    FILE *f = fopen(cfg, "w");
    cr_assert(f);
    fputs("route: {receiver: nobody}\nreceivers: [{name: nobody}]\n", f);
    cr_assert(fclose(f) == 0);
    port = 20000 + (int)(getpid() % 20000);
    am_pid = fork();
    cr_assert(am_pid >= 0);
    if (am_pid == 0) {
        char a[64], b[300], c[300];
        snprintf(a, sizeof a, "--web.listen-address=127.0.0.1:%d", port);
        snprintf(b, sizeof b, "--config.file=%s", cfg);
        snprintf(c, sizeof c, "--storage.path=%s/data", dir);
        if (!freopen("/dev/null", "w", stderr))
            _exit(126);
        execlp("prometheus-alertmanager", "prometheus-alertmanager", a, b, c,
               "--cluster.listen-address=", (char *)NULL);
        _exit(127);
    }
    char cmd[160];
    snprintf(cmd, sizeof cmd, "curl -fs -o /dev/null http://127.0.0.1:%d/-/ready", port);
    for (int i = 0; i < 200 && system(cmd) != 0; i++)
        usleep(50000);
    cr_assert(system(cmd) == 0, "alertmanager did not come up on %d", port);
}

static void stop_am(void)
{
    if (am_pid > 0) {
        kill(am_pid, SIGKILL);
        waitpid(am_pid, NULL, 0);
    }
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

struct res {
    struct loop *loop;
    char id[80];
    char error[256];
    bool done;
};

static void on_created(const char *id, const char *error, void *arg)
{
    struct res *r = arg;
    snprintf(r->id, sizeof r->id, "%s", id ? id : "");
    snprintf(r->error, sizeof r->error, "%s", error ? error : "");
    r->done = true;
    loop_stop(r->loop);
}

static void on_deleted(const char *error, void *arg)
{
    struct res *r = arg;
    snprintf(r->error, sizeof r->error, "%s", error ? error : "");
    r->done = true;
    loop_stop(r->loop);
}

/* The state of silence id as Alertmanager reports it. */
static void silence_state(const char *id, char *buf, size_t size)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "curl -fs http://127.0.0.1:%d/api/v2/silence/%s | python3 -c 'import json,sys; "
             "s=json.load(sys.stdin); print(s[\"status\"][\"state\"], s[\"comment\"], "
             "s[\"matchers\"][1][\"isRegex\"])'",
             port, id);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    buf[0] = '\0';
    if (!fgets(buf, (int)size, p))
        buf[0] = '\0';
    pclose(p);
}

Test(am_silence, create_shows_active_delete_expires, .init = start_am, .fini = stop_am)
{
    struct res r = {.loop = loop_new()};
    cr_assert(r.loop);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    json_t *conn = json_pack("{s:s}", "url", url);
    struct am_silencer *s = NULL;
    struct chaos_err err = {0};
    cr_assert(am_silencer_new(r.loop, conn, "silence", &s, &err) == 0, "%s", err.msg);

    const char *m[] = {"alertname=CheckoutSlow", "severity=~page|ticket"};
    int64_t now = loop_unix_ms();
    struct am_silence_spec spec = {.matchers = m,
                                   .n_matchers = 2,
                                   .starts_unix_ms = now,
                                   .ends_unix_ms = now + 600000,
                                   .created_by = "chaos",
                                   .comment = "chaos run 1234"};
    cr_assert(am_silence_create(s, &spec, on_created, &r, &err) == 0, "%s", err.msg);
    cr_assert(loop_run(r.loop) >= 0);
    cr_assert(r.done);
    cr_assert_str_empty(r.error, "%s", r.error);
    cr_assert(r.id[0]);
    char st[256];
    silence_state(r.id, st, sizeof st);
    cr_expect_str_eq(st, "active chaos run 1234 True\n");

    r.done = false;
    cr_assert(am_silence_delete(s, r.id, on_deleted, &r, &err) == 0, "%s", err.msg);
    cr_assert(loop_run(r.loop) >= 0);
    cr_assert(r.done);
    cr_assert_str_empty(r.error, "%s", r.error);
    silence_state(r.id, st, sizeof st);
    cr_expect(strncmp(st, "expired ", 8) == 0, "%s", st);

    const char *bad[] = {"severity~page"};
    spec.matchers = bad;
    spec.n_matchers = 1;
    cr_expect(am_silence_create(s, &spec, on_created, &r, &err) < 0);
    cr_expect(strstr(err.msg, "silence.matchers[0]: \"severity~page\" is not a matcher"), "%s",
              err.msg);
    cr_expect(am_silence_delete(s, "../x", on_deleted, &r, &err) < 0);

    am_silencer_free(s);
    json_decref(conn);
    loop_free(r.loop);
}
