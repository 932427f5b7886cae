/* chaos-agent --config F: the node agent. Serves the /v1 API over one event
 * loop, reverts what a crashed predecessor left (from the journal) before it
 * serves, and reverts everything on SIGTERM/SIGINT before it exits. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent.h"
#include "agent_config.h"
#include "agent_http.h"
#include "engine.h"
#include "fsutil.h"
#include "loop.h"
#include "util.h"

#define EXIT_USAGE 2

static void usage(FILE *to)
{
    fprintf(to, "usage: chaos-agent --config FILE\n"
                "  Serves the chaos agent API (see docs/agent.md). SIGTERM or SIGINT revert\n"
                "  every fault and stop the agent.\n");
}

/* "<journal>.lock", held (flock) for the agent's life: two agents on one
 * journal would each take the other's faults for a crashed run's. */
static int lock_journal(const char *journal, struct chaos_err *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s.lock", journal) >= (int)sizeof path)
        return chaos_err_set(err, ENAMETOOLONG, "journal: path too long");
    int r = mkdir_parent(path);
    if (r < 0)
        return chaos_err_set(err, -r, "journal: cannot create the folder of %s: %s", path,
                             strerror(-r));
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return chaos_err_set(err, errno, "journal: %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return chaos_err_set(err, EBUSY,
                                 "journal: another chaos-agent is running on %s (it holds %s)",
                                 journal, path);
        return chaos_err_set(err, e, "journal: lock %s: %s", path, strerror(e));
    }
    return fd;
}

struct recover_log {
    const char *journal;
    unsigned reverted;
};

static void on_recover_line(const char *line, void *arg)
{
    struct recover_log *rl = arg;
    size_t n = strlen(rl->journal);
    /* One line per fault reverted: "<journal>: reverted <kind> fault ...". */
    if (strncmp(line, rl->journal, n) == 0 && strncmp(line + n, ": reverted ", 11) == 0 &&
        strstr(line, " fault "))
        rl->reverted++;
    fprintf(stderr, "chaos-agent: recovery: %s\n", line);
}

struct main_ctx {
    struct loop *loop;
    struct agent *agent;
    int sfd;
    bool stopping;
};

static void on_done(void *arg)
{
    loop_stop(((struct main_ctx *)arg)->loop);
}

static void on_signal(struct loop *loop, int fd, uint32_t events, void *arg)
{
    struct main_ctx *m = arg;
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    if (n != sizeof si)
        return;
    if (si.ssi_signo == SIGHUP) {
        fprintf(stderr, "chaos-agent: SIGHUP ignored (restart the agent to read its config)\n");
        return;
    }
    if (m->stopping)
        return;
    m->stopping = true;
    char reason[64];
    snprintf(reason, sizeof reason, "agent stopping (%s)",
             si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
    fprintf(stderr, "chaos-agent: %s: reverting every fault\n", reason);
    int failed = agent_shutdown(m->agent, reason, on_done, m);
    if (failed)
        fprintf(stderr, "chaos-agent: %d revert%s failed; the journal keeps them\n", failed,
                failed == 1 ? "" : "s");
}

/* --config F and --help. Returns -1 to go on (config set), or the exit
 * status to return at once. */
static int parse_args(int argc, char **argv, const char **config)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            *config = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "chaos-agent: unknown argument '%s'; try 'chaos-agent --help'\n",
                    argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!*config) {
        usage(stderr);
        return EXIT_USAGE;
    }
    return -1;
}

/* What a killed predecessor left applied is reverted before anything new
 * is accepted. A journal that cannot be fully recovered stops the start:
 * the engine would append to it and, with nothing of its own applied,
 * remove it at exit, losing what it still holds. 0, or -1 (said why). */
static int recover_journal(const struct agent_config *cfg, struct recover_log *rl)
{
    struct chaos_err err = {0};
    int r = engine_recover_file(cfg->journal, on_recover_line, rl, &err);
    if (r == 0)
        return 0;
    if (r < 0)
        fprintf(stderr, "chaos-agent: recovery: %s\n", err.msg);
    fprintf(stderr,
            "chaos-agent: the journal %s still holds faults that could not be "
            "reverted; fix what the lines above say, then start again\n",
            cfg->journal);
    return -1;
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int r = parse_args(argc, argv, &config);
    if (r >= 0)
        return r;
    /* Before anything can be applied: a signal must find the signalfd. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
        perror("chaos-agent: sigprocmask");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    struct agent_config cfg;
    struct chaos_err err = {0};
    if (agent_config_load(config, &cfg, &err) < 0) {
        fprintf(stderr, "chaos-agent: %s\n", err.msg);
        return EXIT_USAGE;
    }
    int status = 1;
    int lock_fd = lock_journal(cfg.journal, &err);
    struct loop *loop = NULL;
    struct agent *agent = NULL;
    struct agent_http *http = NULL;
    struct main_ctx m = {.sfd = -1};
    if (lock_fd < 0) {
        fprintf(stderr, "chaos-agent: %s\n", err.msg);
        goto out;
    }
    struct recover_log rl = {.journal = cfg.journal};
    if (recover_journal(&cfg, &rl) < 0)
        goto out;
    if (!(loop = loop_new())) {
        fprintf(stderr, "chaos-agent: event loop: %s\n", strerror(errno));
        goto out;
    }
    m.loop = loop;
    if ((m.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
        loop_add_fd(loop, m.sfd, EPOLLIN, on_signal, &m) < 0) {
        fprintf(stderr, "chaos-agent: signalfd: %s\n", strerror(errno));
        goto out;
    }
    if (agent_new(loop, &cfg, rl.reverted, &agent, &err) < 0 ||
        agent_http_start(loop, &cfg, agent, &http, &err) < 0) {
        fprintf(stderr, "chaos-agent: %s\n", err.msg);
        goto out;
    }
    m.agent = agent;
    fprintf(stderr, "chaos-agent: listening on %s (%s), journal %s, lease %lldms\n", cfg.listen,
            cfg.tls_cert_pem ? "https" : "http", cfg.journal, (long long)cfg.lease_ms);
    r = loop_run(loop);
    if (r < 0) {
        /* The loop broke (a timer could not be re-armed): nothing can be
         * trusted to fire, so revert now, synchronously. */
        fprintf(stderr, "chaos-agent: event loop failed: %s; reverting every fault\n",
                strerror(-r));
        IGNORE_RESULT(agent_shutdown(agent, "agent stopping (its event loop failed)", on_done,
                                     &m)); /* what failed stays in the journal */
    }
    status = agent_applied_count(agent) ? 1 : 0;
    if (status)
        fprintf(stderr,
                "chaos-agent: %zu fault%s could not be reverted; the journal keeps "
                "them for the next start\n",
                agent_applied_count(agent), agent_applied_count(agent) == 1 ? "" : "s");
    else
        fprintf(stderr, "chaos-agent: stopped; nothing left applied\n");
out:
    agent_http_stop(http);
    agent_free(agent);
    if (m.sfd >= 0) {
        if (loop)
            loop_del_fd(loop, m.sfd);
        close(m.sfd);
    }
    loop_free(loop);
    if (lock_fd >= 0)
        close(lock_fd);
    agent_config_clear(&cfg);
    return status;
}
