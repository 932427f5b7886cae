/* The workload probe: what the command a syscall fault launched did. It
 * reads the files the fault's supervisor writes in its output folder
 * (stdout, stderr, and status once the workload has ended: "exited N" or
 * "killed by signal N") and judges exit code, signal, running and the text
 * of stdout and stderr. The probe names the fault; the scenario binds it to
 * the fault's target.output_dir (probe_bind_faults). Files older than the
 * probe runner are an earlier run's: a sample then fails, never passes on
 * stale evidence, and so does "exits 0" while the workload still runs. */
#include "probe_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "jsonv.h"
#include "util.h"

#define WL_OUT_CAP (1024 * 1024) /* bytes of stdout and of stderr judged */
#define WL_STALE_SLACK_MS 50     /* file times come from a coarse clock */

static const char *const wl_keys[] = {"fault", NULL};
static const char *const wl_expect_keys[] = {
    "exit_code",       "signal",       "running",      "stdout_contains",
    "stderr_contains", "stdout_regex", "stderr_regex", NULL};

enum wl_exit { WL_EXIT_ANY, WL_EXIT_LIST, WL_EXIT_NONZERO };

/* One text condition on stdout or stderr. */
struct wl_text {
    char *contains;
    struct probe_regex *re;
    char *re_src;
};

struct wl_probe {
    char *fault; /* the fault's name */
    char *dir;   /* its target.output_dir; NULL until bound */
    char *desc;
    enum wl_exit exit_mode;
    int *exit_codes;
    size_t n_exit_codes;
    int signal;              /* > 0: killed by it; -1: by any; 0: no condition */
    int running;             /* 1: must run, 0: must have ended, -1: no condition */
    struct wl_text out, err; /* stdout, stderr */
};

struct wl_sample {
    struct wl_sample *prev, *next;
    struct wl_runner *wr;
    struct probe *ref;
    const struct wl_probe *wp;
    probe_done_cb done;
    void *arg;
    uint64_t timer;
    int64_t t_ms, t0_us;
};

struct wl_runner {
    struct loop *loop;
    int64_t born_unix_ms; /* files older than this are an earlier run's */
    struct wl_sample *samples;
};

/* What the output folder says. */
struct wl_seen {
    bool ended, killed;
    int code; /* exit code or signal */
    char *out, *err;
    size_t out_len, err_len;
    bool out_cut, err_cut;
};

/* Parsing */

static void text_free(struct wl_text *t)
{
    free(t->contains);
    probe_regex_free(t->re);
    free(t->re_src);
}

static void wl_free(void *impl)
{
    struct wl_probe *wp = impl;
    if (!wp)
        return;
    free(wp->fault);
    free(wp->dir);
    free(wp->desc);
    free(wp->exit_codes);
    text_free(&wp->out);
    text_free(&wp->err);
    free(wp);
}

/* SIGKILL, KILL, 9 or "any" into *out (-1 for any). */
static int parse_signal(const json_t *v, int *out, struct chaos_err *err)
{
    if (json_is_integer(v)) {
        long long n = json_integer_value(v);
        if (n < 1 || n > 64)
            return chaos_err_set(err, ERANGE, "expect.signal: %lld is out of range (1-64)", n);
        *out = (int)n;
        return 0;
    }
    if (!json_is_string(v))
        return chaos_err_set(err, EINVAL,
                             "expect.signal: must be a signal name like \"SIGKILL\", a number or "
                             "\"any\", not %s",
                             jv_type_name(v));
    const char *s = json_string_value(v);
    if (strcmp(s, "any") == 0) {
        *out = -1;
        return 0;
    }
    const char *bare = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
    for (int i = 1; i < 65; i++) {
        const char *a = sigabbrev_np(i);
        if (a && strcmp(a, bare) == 0) {
            *out = i;
            return 0;
        }
    }
#endif
    return chaos_err_set(err, EINVAL, "expect.signal: unknown signal '%s' (e.g. \"SIGKILL\", 9)",
                         s);
}

static int parse_exit(const json_t *expect, struct wl_probe *wp, struct chaos_err *err)
{
    const json_t *v = json_object_get(expect, "exit_code");
    if (!v)
        return 0;
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "non-zero") != 0)
            return chaos_err_set(err, EINVAL,
                                 "expect.exit_code: must be a list of exit codes like [0] or "
                                 "\"non-zero\", not \"%s\"",
                                 json_string_value(v));
        wp->exit_mode = WL_EXIT_NONZERO;
        return 0;
    }
    int r =
        probe_parse_int_list(expect, "exit_code", 0, 255, &wp->exit_codes, &wp->n_exit_codes, err);
    if (r < 0)
        return r;
    wp->exit_mode = WL_EXIT_LIST;
    return 0;
}

static int parse_text(const json_t *expect, const char *stream, struct wl_text *t,
                      struct chaos_err *err)
{
    char key[32];
    const char *s;
    snprintf(key, sizeof key, "%s_contains", stream);
    int r = jv_string(expect, "expect", key, false, &s, err);
    if (r < 0)
        return r;
    if (r > 0 && !(t->contains = strdup(s)))
        return chaos_err_set(err, ENOMEM, "expect.%s: out of memory", key);
    snprintf(key, sizeof key, "%s_regex", stream);
    r = probe_parse_regex(expect, key, &t->re, &s, err);
    if (r > 0 && !(t->re_src = strdup(s)))
        return chaos_err_set(err, ENOMEM, "expect.%s: out of memory", key);
    return r < 0 ? r : 0;
}

/* The status conditions and how they combine. */
static int parse_status(const json_t *expect, struct wl_probe *wp, struct chaos_err *err)
{
    int r;
    if ((r = parse_exit(expect, wp, err)) < 0)
        return r;
    const json_t *sig = json_object_get(expect, "signal");
    if (sig && (r = parse_signal(sig, &wp->signal, err)) < 0)
        return r;
    if (sig && wp->exit_mode != WL_EXIT_ANY)
        return chaos_err_set(err, EINVAL,
                             "expect.signal: cannot be combined with exit_code: a workload either "
                             "exits or is killed by a signal");
    bool running = false;
    if ((r = jv_bool(expect, "expect", "running", false, &running, err)) < 0)
        return r;
    wp->running = r > 0 ? running : -1;
    if (wp->running == 1 && (sig || wp->exit_mode != WL_EXIT_ANY))
        return chaos_err_set(err, EINVAL,
                             "expect.running: true cannot be combined with %s: a running "
                             "workload has no exit status yet",
                             sig ? "signal" : "exit_code");
    return 0;
}

static int parse_expect(const json_t *expect, struct wl_probe *wp, struct chaos_err *err)
{
    int r;
    if (expect && ((r = parse_status(expect, wp, err)) < 0 ||
                   (r = parse_text(expect, "stdout", &wp->out, err)) < 0 ||
                   (r = parse_text(expect, "stderr", &wp->err, err)) < 0))
        return r;
    bool any = wp->exit_mode != WL_EXIT_ANY || wp->signal || wp->running >= 0 || wp->out.contains ||
               wp->out.re || wp->err.contains || wp->err.re;
    if (!any) {
        /* Like the command probe: no condition means "exits 0". */
        if (!(wp->exit_codes = calloc(1, sizeof *wp->exit_codes)))
            return chaos_err_set(err, ENOMEM, "expect: out of memory");
        wp->n_exit_codes = 1;
        wp->exit_mode = WL_EXIT_LIST;
    }
    return 0;
}

static int wl_parse(const json_t *obj, const json_t *expect, void **out, struct chaos_err *err)
{
    int r = jv_only_keys(obj, "probe.workload", wl_keys, err);
    if (r < 0)
        return r;
    const char *fault;
    if ((r = jv_string(obj, "probe.workload", "fault", true, &fault, err)) < 0)
        return r;
    if (!*fault)
        return chaos_err_set(err, EINVAL, "probe.workload.fault: must not be empty");
    struct wl_probe *wp = calloc(1, sizeof *wp);
    if (!wp)
        return chaos_err_set(err, ENOMEM, "probe.workload: out of memory");
    wp->running = -1;
    if (!(wp->fault = strdup(fault))) {
        wl_free(wp);
        return chaos_err_set(err, ENOMEM, "probe.workload: out of memory");
    }
    if ((r = parse_expect(expect, wp, err)) < 0) {
        wl_free(wp);
        return r;
    }
    *out = wp;
    return 0;
}

/* Binding to the scenario's fault */

static void faults_list(const struct probe_fault_ref *faults, size_t n, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s'%s'", i ? ", " : "", faults[i].name);
}

/* The output folder of the fault called wp->fault, checked to be a syscall
 * fault that launches a command. */
static int find_dir(const struct wl_probe *wp, const struct probe_fault_ref *faults, size_t n,
                    const char **dir, struct chaos_err *err)
{
    const struct probe_fault_ref *f = NULL;
    for (size_t i = 0; i < n && !f; i++)
        if (strcmp(faults[i].name, wp->fault) == 0)
            f = &faults[i];
    if (!f) {
        char list[400];
        faults_list(faults, n, list, sizeof list);
        return chaos_err_set(err, EINVAL,
                             "probe.workload.fault: no fault is called '%s' (faults: %s)",
                             wp->fault, list);
    }
    if (strcmp(f->kind, "syscall") != 0)
        return chaos_err_set(err, EINVAL,
                             "probe.workload.fault: fault '%s' is a %s fault; the workload probe "
                             "watches the command a syscall fault launches",
                             wp->fault, f->kind);
    const json_t *target = json_object_get(f->json, "target");
    if (!json_object_get(target, "command"))
        return chaos_err_set(err, EINVAL,
                             "probe.workload.fault: fault '%s' does not launch a command (its "
                             "target has no command); the workload probe watches a launched "
                             "command",
                             wp->fault);
    const json_t *od = json_object_get(target, "output_dir");
    if (!json_is_string(od))
        return chaos_err_set(err, EINVAL,
                             "probe.workload.fault: fault '%s' has no target.output_dir; give it "
                             "one: the probe reads the workload's stdout, stderr and status there",
                             wp->fault);
    *dir = json_string_value(od);
    return 0;
}

static int wl_bind(void *impl, const struct probe_fault_ref *faults, size_t n,
                   struct chaos_err *err)
{
    struct wl_probe *wp = impl;
    const char *dir;
    int r = find_dir(wp, faults, n, &dir, err);
    if (r < 0)
        return r;
    char *d = strdup(dir);
    size_t len = strlen(wp->fault) + strlen(dir) + 32;
    char *desc = malloc(len);
    if (!d || !desc) {
        free(d);
        free(desc);
        return chaos_err_set(err, ENOMEM, "probe.workload: out of memory");
    }
    snprintf(desc, len, "workload of '%s' (%s)", wp->fault, dir);
    free(wp->dir);
    free(wp->desc);
    wp->dir = d;
    wp->desc = desc;
    return 0;
}

static const char *wl_describe(const void *impl)
{
    const struct wl_probe *wp = impl;
    return wp->desc ? wp->desc : wp->fault;
}

static json_t *wl_to_json(const void *impl)
{
    const struct wl_probe *wp = impl;
    return json_pack("{s:s, s:s?}", "fault", wp->fault, "output_dir", wp->dir);
}

/* The runner */

static int wl_runner_new(struct loop *loop, void **out, struct chaos_err *err)
{
    struct wl_runner *wr = calloc(1, sizeof *wr);
    if (!wr)
        return chaos_err_set(err, ENOMEM, "workload probe: out of memory");
    wr->loop = loop;
    wr->born_unix_ms = loop_unix_ms();
    *out = wr;
    return 0;
}

static void sample_destroy(struct wl_sample *s)
{
    struct wl_runner *wr = s->wr;
    if (s->timer)
        loop_cancel_timer(wr->loop, s->timer);
    if (s->prev)
        s->prev->next = s->next;
    else if (wr->samples == s)
        wr->samples = s->next;
    if (s->next)
        s->next->prev = s->prev;
    probe_free(s->ref);
    free(s);
}

static void wl_runner_free(void *state)
{
    struct wl_runner *wr = state;
    if (!wr)
        return;
    while (wr->samples)
        sample_destroy(wr->samples);
    free(wr);
}

/* Reads up to cap bytes of dir/name into a new buffer. 0, or a negative errno. */
static int read_file(const char *dir, const char *name, size_t cap, char **out, size_t *len,
                     bool *cut)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p)
        return -ENAMETOOLONG;
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    char *buf = malloc(cap + 1);
    size_t n = 0;
    ssize_t k = 0;
    while (buf && n < cap && ((k = read(fd, buf + n, cap - n)) > 0 || (k < 0 && errno == EINTR)))
        n += k > 0 ? (size_t)k : 0;
    char extra;
    *cut = buf && n == cap && read(fd, &extra, 1) == 1;
    int e = !buf ? ENOMEM : k < 0 ? errno : 0;
    close(fd);
    if (e) {
        free(buf);
        return -e;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int64_t mtime_ms(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* Whether this run's workload has started: its stdout exists and is not
 * older than the runner. Else the reason in out->error. */
static bool started(const struct wl_runner *wr, const struct wl_probe *wp, struct sample *out)
{
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s/stdout", wp->dir);
    if (stat(p, &st) < 0) {
        snprintf(out->error, sizeof out->error,
                 "the workload of '%.64s' has not started (no %.80s/stdout: %s)", wp->fault,
                 wp->dir, strerror(errno));
        return false;
    }
    if (mtime_ms(&st) < wr->born_unix_ms - WL_STALE_SLACK_MS) {
        snprintf(out->error, sizeof out->error,
                 "the workload of '%.64s' has not started in this run (%.80s/stdout is older "
                 "than the run)",
                 wp->fault, wp->dir);
        return false;
    }
    return true;
}

/* The status file: absent while the workload runs. */
static int read_status(const struct wl_probe *wp, struct wl_seen *seen, struct sample *out)
{
    char *text = NULL;
    size_t len;
    bool cut;
    int r = read_file(wp->dir, "status", 64, &text, &len, &cut);
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        snprintf(out->error, sizeof out->error, "cannot read %.80s/status: %s", wp->dir,
                 strerror(-r));
        return r;
    }
    int code = -1;
    if (sscanf(text, "exited %d", &code) == 1) {
        seen->ended = true;
    } else if (sscanf(text, "killed by signal %d", &code) == 1) {
        seen->ended = seen->killed = true;
    } else {
        snprintf(out->error, sizeof out->error, "the workload's status is unknown (%.80s/status)",
                 wp->dir);
        r = -EINVAL;
    }
    seen->code = code;
    free(text);
    return r;
}

static void signal_text(int sig, char *buf, size_t size)
{
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
    const char *a = sig > 0 ? sigabbrev_np(sig) : NULL;
    if (a) {
        snprintf(buf, size, "SIG%s", a);
        return;
    }
#endif
    snprintf(buf, size, "%d", sig);
}

/* "exited 1", "killed by signal SIGKILL", "running" */
static void status_text(const struct wl_seen *seen, char *buf, size_t size)
{
    char s[32];
    if (!seen->ended) {
        snprintf(buf, size, "running");
    } else if (seen->killed) {
        signal_text(seen->code, s, sizeof s);
        snprintf(buf, size, "killed by signal %s", s);
    } else {
        snprintf(buf, size, "exited %d", seen->code);
    }
}

/* What the exit or signal condition wants, for messages. */
static void wanted_text(const struct wl_probe *wp, char *buf, size_t size)
{
    char s[96];
    if (wp->exit_mode == WL_EXIT_LIST) {
        probe_format_int_list(wp->exit_codes, wp->n_exit_codes, s, sizeof s);
        snprintf(buf, size, "an exit code in %s", s);
    } else if (wp->exit_mode == WL_EXIT_NONZERO) {
        snprintf(buf, size, "a non-zero exit code");
    } else if (wp->signal) {
        signal_text(wp->signal, s, sizeof s);
        snprintf(buf, size, "killed by %s%s", wp->signal > 0 ? "signal " : "a signal",
                 wp->signal > 0 ? s : "");
    } else {
        snprintf(buf, size, "it to have ended");
    }
}

static bool status_holds(const struct wl_probe *wp, const struct wl_seen *seen)
{
    if (wp->running >= 0 && (wp->running == 1) == seen->ended)
        return false;
    bool exit_cond = wp->exit_mode != WL_EXIT_ANY || wp->signal;
    if (!exit_cond)
        return true;
    if (!seen->ended)
        return false;
    if (wp->signal)
        return seen->killed && (wp->signal < 0 || wp->signal == seen->code);
    if (seen->killed)
        return false;
    if (wp->exit_mode == WL_EXIT_NONZERO)
        return seen->code != 0;
    for (size_t i = 0; i < wp->n_exit_codes; i++)
        if (wp->exit_codes[i] == seen->code)
            return true;
    return false;
}

static void judge_status(const struct wl_probe *wp, const struct wl_seen *seen, struct sample *out)
{
    char st[64], want[128];
    status_text(seen, st, sizeof st);
    if (wp->running == 1)
        snprintf(out->error, sizeof out->error, "the workload has ended (%s), wanted it running",
                 st);
    else if (!seen->ended)
        snprintf(out->error, sizeof out->error,
                 "the workload is still running (no exit status yet), wanted %s",
                 (wanted_text(wp, want, sizeof want), want));
    else
        snprintf(out->error, sizeof out->error, "the workload %s, wanted %s", st,
                 (wanted_text(wp, want, sizeof want), want));
}

/* A text condition on one stream; false with out->error set when it fails. */
static bool text_holds(const struct wl_text *t, const char *stream, const char *text, size_t len,
                       bool cut, struct sample *out)
{
    char q[64];
    const char *part = cut ? " (first 1 MiB)" : "";
    if (t->contains && !memmem(text, len, t->contains, strlen(t->contains))) {
        probe_quote(t->contains, q, sizeof q);
        snprintf(out->error, sizeof out->error, "%s%s does not contain %s", stream, part, q);
        return false;
    }
    if (t->re && !probe_regex_match(t->re, text, len)) {
        probe_quote(t->re_src, q, sizeof q);
        snprintf(out->error, sizeof out->error, "%s%s does not match regex %s", stream, part, q);
        return false;
    }
    return true;
}

/* Reads the stream when a condition needs it; false with out->error set
 * when it cannot be read or the condition fails. */
static bool stream_holds(const struct wl_probe *wp, const struct wl_text *t, const char *stream,
                         struct sample *out)
{
    if (!t->contains && !t->re)
        return true;
    char *text = NULL;
    size_t len = 0;
    bool cut = false;
    int r = read_file(wp->dir, stream, WL_OUT_CAP, &text, &len, &cut);
    if (r < 0) {
        snprintf(out->error, sizeof out->error, "cannot read %.80s/%s: %s", wp->dir, stream,
                 strerror(-r));
        return false;
    }
    bool ok = text_holds(t, stream, text, len, cut, out);
    free(text);
    return ok;
}

static void observe(const struct wl_runner *wr, const struct wl_probe *wp, struct sample *out)
{
    if (!wp->dir) {
        snprintf(out->error, sizeof out->error,
                 "the workload probe of '%.64s' is not bound to its fault", wp->fault);
        return;
    }
    if (!started(wr, wp, out))
        return;
    struct wl_seen seen = {0};
    if (read_status(wp, &seen, out) < 0)
        return;
    status_text(&seen, out->detail, sizeof out->detail);
    if (seen.ended && !seen.killed)
        out->status = seen.code;
    if (!status_holds(wp, &seen)) {
        judge_status(wp, &seen, out);
        return;
    }
    if (!stream_holds(wp, &wp->out, "stdout", out) || !stream_holds(wp, &wp->err, "stderr", out))
        return;
    out->ok = true;
}

static void on_sample(struct loop *loop, void *arg)
{
    (void)loop;
    struct wl_sample *s = arg;
    s->timer = 0;
    struct sample out = {.t_ms = s->t_ms, .status = -1};
    observe(s->wr, s->wp, &out);
    out.latency_us = loop_now_us() - s->t0_us;
    probe_done_cb done = s->done;
    void *done_arg = s->arg;
    sample_destroy(s);
    done(&out, done_arg);
}

static int wl_start(void *state, const struct probe *p, const void *impl, probe_done_cb done,
                    void *arg, struct chaos_err *err)
{
    struct wl_runner *wr = state;
    struct wl_sample *s = calloc(1, sizeof *s);
    if (!s)
        return chaos_err_set(err, ENOMEM, "workload probe: out of memory");
    *s = (struct wl_sample){.wr = wr,
                            .wp = impl,
                            .done = done,
                            .arg = arg,
                            .t_ms = loop_now_ms(),
                            .t0_us = loop_now_us()};
    /* Read from the loop, never from inside probe_start. */
    if (!(s->timer = loop_add_timer(wr->loop, loop_now_ms(), on_sample, s))) {
        int e = errno ? errno : ENOMEM;
        free(s);
        return chaos_err_set(err, e, "workload probe: cannot arm its timer: %s", strerror(e));
    }
    s->ref = probe_ref(p);
    s->next = wr->samples;
    if (wr->samples)
        wr->samples->prev = s;
    wr->samples = s;
    return 0;
}

const struct probe_ops probe_workload_ops = {
    .name = "workload",
    .expect_keys = wl_expect_keys,
    .max_in_flight = 1,
    .parse = wl_parse,
    .describe = wl_describe,
    .to_json = wl_to_json,
    .free = wl_free,
    .runner_new = wl_runner_new,
    .runner_free = wl_runner_free,
    .start = wl_start,
    .bind = wl_bind,
};
