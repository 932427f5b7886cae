/* chaos: the command-line front end. `chaos run` executes a scenario with the
 * embedded engine; `chaos validate` checks files; `chaos recover` reverts what
 * a crashed run left behind. Exit codes: 0 all held, 1 a check failed,
 * 2 invalid input or usage, 3 aborted or a fault could not be applied/reverted. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "engine.h"
#include "fleet.h"
#include "exit_codes.h"
#include "outpath.h"
#include "report.h"
#include "run_silences.h"
#include "runner.h"
#include "scenario.h"

static const char usage_text[] =
    "Usage: chaos COMMAND [OPTIONS]\n"
    "\n"
    "Inject faults, watch the system, and say whether it held.\n"
    "\n"
    "Commands:\n"
    "  run FILE [OPTIONS]    run a scenario: its faults on this machine (embedded\n"
    "                        engine), or on chaos-agents for faults with \"agent\"\n"
    "      --inventory F     the agents (name, url, token, CA, labels) that faults'\n"
    "                        \"agent\" names or selects (\"role=db\"); see docs/agent.md\n"
    "      --report-json F   write the JSON report (timeline, faults, samples) to F\n"
    "      --junit F         write a JUnit XML report to F (one testcase per check)\n"
    "      --dry-run         print the plan and exit; touches nothing\n"
    "      --state-dir D     where fault journals live (default $CHAOS_STATE_DIR,\n"
    "                        else /var/lib/chaos for root, ~/.local/state/chaos\n"
    "                        for other users)\n"
    "      --no-progress     plain event lines even on a terminal\n"
    "  validate FILE...      check scenario files; touches nothing\n"
    "  recover [--state-dir D] [--all]\n"
    "                        revert faults left by runs that died (SIGKILL, crash);\n"
    "                        --all also takes journals whose owner still runs\n"
    "  help                  this text\n"
    "  version               the version\n"
    "\n"
    "Fault kinds: process (kill, repeated kill, pause), network (netem through\n"
    "netlink: delay, jitter, loss, duplicate, corrupt, reorder, rate, partition;\n"
    "scoped by interface, direction, CIDR, port and protocol; needs root) and\n"
    "syscall (errors, return values and delays through seccomp for a command the\n"
    "scenario launches, or ptrace for a running process).\n"
    "\n"
    "Exit codes: 0 every check held; 1 a check or the steady state failed;\n"
    "2 invalid input or usage; 3 the run was aborted or a fault could not be\n"
    "applied or reverted.\n"
    "\n"
    "Examples:\n"
    "  chaos validate scenarios/*.json\n"
    "  chaos run scenarios/demo-retries-hold.json --junit out.xml\n"
    "\n"
    "Docs: docs/cli.md, docs/scenario-format.md, docs/faults/process.md,\n"
    "docs/faults/network.md\n";

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("chaos: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("; try 'chaos --help'\n", stderr);
    return CHAOS_EXIT_USAGE;
}

/* Every path a run writes is checked before anything is touched: a report
 * that cannot be written after a ten-minute run loses its verdict, and a
 * path that names the wrong thing (the scenario, /dev/null) must never be
 * clobbered. Prints the error; returns -1 when a path is refused. */
static int check_output_paths(const char *file, const char *json_path, const char *junit_path,
                              const char *state_dir)
{
    struct chaos_err err = {0};
    const char *keep[] = {file};
    if ((json_path && outpath_check_report("--report-json", json_path, keep, 1, &err) < 0) ||
        (junit_path && outpath_check_report("--junit", junit_path, keep, 1, &err) < 0) ||
        outpath_check_dir("--state-dir", state_dir, &err) < 0) {
        fprintf(stderr, "chaos: %s\n", err.msg);
        return -1;
    }
    if (json_path && junit_path && strcmp(json_path, junit_path) == 0) {
        fprintf(stderr, "chaos: --junit %s: is also the --report-json file; give each report "
                        "its own file\n", junit_path);
        return -1;
    }
    return 0;
}

static bool is_run_option(const char *arg)
{
    static const char *const run_opts[] = {"--report-json", "--junit", "--dry-run",
                                           "--state-dir",   "--no-progress", "--inventory"};
    size_t n = strcspn(arg, "=");
    for (size_t i = 0; i < sizeof run_opts / sizeof run_opts[0]; i++)
        if (strlen(run_opts[i]) == n && strncmp(arg, run_opts[i], n) == 0)
            return true;
    return false;
}

static int cmd_validate(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("validate needs at least one FILE");
    /* Options first, all of them, before any file is read. */
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' || !argv[i][1])
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return CHAOS_EXIT_OK;
        }
        if (is_run_option(argv[i]))
            return usage_error("validate: '%s' is an option of 'chaos run', not of validate",
                               argv[i]);
        return usage_error("validate: unknown option '%s'", argv[i]);
    }
    int rc = CHAOS_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        struct scenario *s = NULL;
        struct chaos_err err = {0};
        if (scenario_load(argv[i], &s, &err) < 0) {
            fprintf(stderr, "chaos: %s\n", err.msg);
            rc = CHAOS_EXIT_USAGE;
            continue;
        }
        printf("%s: ok (%zu fault%s, %zu check%s)\n", argv[i], s->n_faults,
               s->n_faults == 1 ? "" : "s", s->n_steady + s->n_expect + s->n_abort,
               s->n_steady + s->n_expect + s->n_abort == 1 ? "" : "s");
        char warning[512];
        if (scenario_warning(s, warning, sizeof warning))
            fprintf(stderr, "chaos: %s: warning: %s\n", argv[i], warning);
        scenario_free(s);
    }
    return rc;
}

static void print_recovery(const char *line, void *arg)
{
    printf("%s\n", line);
}

static int cmd_recover(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir", required_argument, NULL, 's'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *state_dir = runner_default_state_dir();
    bool all = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 's': state_dir = optarg; break;
        case 'a': all = true; break;
        case 'h':
            fputs(usage_text, stdout);
            return CHAOS_EXIT_OK;
        default: return usage_error("recover: bad option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("recover: unexpected argument '%s'", argv[optind]);
    char dir[PATH_MAX];
    if (engine_journal_dir(state_dir, dir, sizeof dir) < 0)
        return usage_error("recover: --state-dir: path too long");
    struct chaos_err err = {0};
    int failed = engine_recover_dir(dir, all, print_recovery, NULL, &err);
    if (failed < 0) {
        fprintf(stderr, "chaos: recover: %s\n", err.msg);
        return CHAOS_EXIT_ABORTED;
    }
    /* Then the Alertmanager silences of game days that died. */
    int silences = run_silences_recover(state_dir, all, print_recovery, NULL, &err);
    if (silences < 0) {
        fprintf(stderr, "chaos: recover: %s\n", err.msg);
        return CHAOS_EXIT_ABORTED;
    }
    if (silences)
        fprintf(stderr, "chaos: recover: %d silence%s could not be expired (see above); "
                "their journals were kept\n", silences, silences == 1 ? "" : "s");
    if (failed) {
        fprintf(stderr,
                "chaos: recover: %d fault%s could not be reverted or journal%s could not be "
                "read (see above); their journals were kept\n",
                failed, failed == 1 ? "" : "s", failed == 1 ? "" : "s");
        return CHAOS_EXIT_ABORTED;
    }
    return silences ? CHAOS_EXIT_ABORTED : CHAOS_EXIT_OK;
}

/* Writes the reports asked for; returns the run's exit code, or
 * CHAOS_EXIT_ABORTED when it held but a report could not be written. */
static int write_reports(const struct scenario *s, const struct run_result *res,
                         const char *json_path, const char *junit_path)
{
    int rc = res->exit_code;
    struct chaos_err err = {0};
    if (json_path) {
        if (report_write_json(s, res, json_path, &err) < 0) {
            fprintf(stderr, "chaos: --report-json: %s\n", err.msg);
            rc = rc != CHAOS_EXIT_OK ? rc : CHAOS_EXIT_ABORTED;
        } else {
            printf("JSON report: %s\n", json_path);
        }
    }
    if (junit_path) {
        if (report_write_junit(s, res, junit_path, &err) < 0) {
            fprintf(stderr, "chaos: --junit: %s\n", err.msg);
            rc = rc != CHAOS_EXIT_OK ? rc : CHAOS_EXIT_ABORTED;
        } else {
            printf("JUnit report: %s\n", junit_path);
        }
    }
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"report-json", required_argument, NULL, 'j'},
        {"junit", required_argument, NULL, 'u'},
        {"dry-run", no_argument, NULL, 'n'},
        {"state-dir", required_argument, NULL, 's'},
        {"no-progress", no_argument, NULL, 'p'},
        {"inventory", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *json_path = NULL, *junit_path = NULL, *state_dir = runner_default_state_dir();
    const char *inventory = NULL;
    bool dry_run = false, progress = true;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json_path = optarg; break;
        case 'u': junit_path = optarg; break;
        case 'n': dry_run = true; break;
        case 's': state_dir = optarg; break;
        case 'p': progress = false; break;
        case 'i': inventory = optarg; break;
        case 'h':
            fputs(usage_text, stdout);
            return CHAOS_EXIT_OK;
        case ':':
            return usage_error("run: option '%s' needs a value (it is missing)",
                               argv[optind - 1]);
        default: return usage_error("run: unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error("run needs a scenario FILE");
    if (optind + 1 < argc)
        return usage_error("run takes one scenario FILE; unexpected '%s'", argv[optind + 1]);
    const char *file = argv[optind];

    if (check_output_paths(file, json_path, junit_path, state_dir) < 0)
        return CHAOS_EXIT_USAGE;

    struct scenario *s = NULL;
    struct chaos_err err = {0};
    if (scenario_load(file, &s, &err) < 0) {
        fprintf(stderr, "chaos: %s\n", err.msg);
        return CHAOS_EXIT_USAGE;
    }
    /* Which agent runs each fault is settled before anything starts. */
    struct fleet inv = {0};
    int bad = 0;
    if (inventory && (bad = fleet_load_file(inventory, &inv, &err)) < 0)
        fprintf(stderr, "chaos: --inventory: %s\n", err.msg);
    else if ((bad = scenario_bind_fleet(s, inventory ? &inv : NULL, &err)) < 0)
        fprintf(stderr, "chaos: %s: %s\n", file, err.msg);
    if (bad < 0) {
        fleet_clear(&inv);
        scenario_free(s);
        return CHAOS_EXIT_USAGE;
    }
    char warning[512];
    if (scenario_warning(s, warning, sizeof warning))
        fprintf(stderr, "chaos: %s: warning: %s\n", file, warning);
    if (dry_run) {
        runner_print_plan(s, stdout);
        fleet_clear(&inv);
        scenario_free(s);
        return CHAOS_EXIT_OK;
    }

    const char *term = getenv("TERM");
    struct run_options opt = {
        .state_dir = state_dir,
        .out = stdout,
        .live = progress && isatty(STDOUT_FILENO) && term && strcmp(term, "dumb") != 0,
        .fleet = inventory ? &inv : NULL,
    };
    struct run_result *res = NULL;
    if (runner_run(s, &opt, &res, &err) < 0) {
        fprintf(stderr, "chaos: run could not start: %s\n", err.msg);
        fleet_clear(&inv);
        scenario_free(s);
        return CHAOS_EXIT_ABORTED;
    }
    report_print_verdict(s, res, stdout);
    int rc = write_reports(s, res, json_path, junit_path);
    run_result_free(res);
    /* After the reports: they name the agents of the faults. */
    scenario_free(s);
    fleet_clear(&inv);
    return rc;
}

int main(int argc, char **argv)
{
    /* Output goes to CI logs and pipes as it happens. A reader that goes
     * away (`chaos run s.json | head -1`) must not kill a run mid-experiment:
     * the run finishes, reverts and writes its reports; lost output is only
     * lost output. Probes get default signal handling back (probe_command.c). */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return usage_error("no command given");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "validate"))
        return cmd_validate(argc - 1, argv + 1);
    if (!strcmp(cmd, "recover"))
        return cmd_recover(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        return CHAOS_EXIT_OK;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("chaos %s\n", CHAOS_VERSION);
        return CHAOS_EXIT_OK;
    }
    if (!strcmp(cmd, "controller") || !strcmp(cmd, "status") || !strcmp(cmd, "abort") ||
        !strcmp(cmd, "history"))
        return usage_error("'%s' needs the controller daemon, which this version does not have "
                           "yet", cmd);
    return usage_error("unknown command '%s'", cmd);
}
