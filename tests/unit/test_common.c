/* Durations, strict JSON field reading, error helpers and the event loop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "duration.h"
#include "jsonv.h"
#include "loop.h"
#include "util.h"

static int64_t parse_ok(const char *s)
{
    int64_t ms = -1;
    struct chaos_err err = {0};
    cr_assert_eq(duration_parse(s, &ms, &err), 0, "'%s' failed: %s", s, err.msg);
    return ms;
}

static const char *parse_err(const char *s)
{
    static struct chaos_err err;
    int64_t ms = 12345;
    cr_assert_lt(duration_parse(s, &ms, &err), 0, "'%s' parsed", s);
    cr_assert_eq(ms, 12345, "failed parse must not write the output");
    return err.msg;
}

Test(duration, units_and_sums)
{
    cr_expect_eq(parse_ok("0s"), 0);
    cr_expect_eq(parse_ok("250ms"), 250);
    cr_expect_eq(parse_ok("2s"), 2000);
    cr_expect_eq(parse_ok("1.5m"), 90000);
    cr_expect_eq(parse_ok("1h"), 3600000);
    cr_expect_eq(parse_ok("1m30s"), 90000);
    cr_expect_eq(parse_ok("1500us"), 2); /* rounds up: never shorter than asked */
    cr_expect_eq(parse_ok("168h"), 7LL * 24 * 3600 * 1000);
}

Test(duration, errors_say_what_is_wrong)
{
    cr_expect(strstr(parse_err("30"), "needs a unit"));
    cr_expect(strstr(parse_err("-5s"), "negative"));
    cr_expect(strstr(parse_err("5 s"), "needs a unit"));
    cr_expect(strstr(parse_err("5sec"), "needs a unit"));
    cr_expect(strstr(parse_err("abc"), "not a duration"));
    cr_expect(strstr(parse_err(""), "empty"));
    cr_expect(strstr(parse_err("169h"), "7-day"));
    cr_expect(strstr(parse_err("1e3s"), "needs a unit"));
    cr_expect(strstr(parse_err("0x10s"), "needs a unit"));
    cr_expect(strstr(parse_err(".5s"), "not a duration"));
    cr_expect(strstr(parse_err("1.s"), "not a duration"));
}

Test(duration, decimal_fractions_are_exact)
{
    /* 1.1 * 1000 is 1100.0000000000002 in doubles; rounding that up would
     * make "1.1s" last 1101ms. */
    cr_expect_eq(parse_ok("1.1s"), 1100);
    cr_expect_eq(parse_ok("4.35s"), 4350);
    cr_expect_eq(parse_ok("0.001s"), 1);
    cr_expect_eq(parse_ok("0.0011s"), 2, "a fraction of a millisecond still rounds up");
    cr_expect_eq(parse_ok("1.0000000000000000000001s"), 1001, "digits past a nanosecond count");
}

Test(duration, microseconds)
{
    struct chaos_err err = {0};
    int64_t us = -1;
    cr_assert_eq(duration_parse_us("250us", &us, &err), 0, "%s", err.msg);
    cr_expect_eq(us, 250);
    cr_assert_eq(duration_parse_us("1.25ms", &us, &err), 0, "%s", err.msg);
    cr_expect_eq(us, 1250);
    cr_assert_eq(duration_parse_us("0.1ms", &us, &err), 0, "%s", err.msg);
    cr_expect_eq(us, 100);
    cr_assert_eq(duration_parse_us("1s200us", &us, &err), 0, "%s", err.msg);
    cr_expect_eq(us, 1000200);
    cr_assert_eq(duration_parse_us("0.0001ms", &us, &err), 0, "%s", err.msg);
    cr_expect_eq(us, 1, "below a microsecond rounds up");
    cr_expect_lt(duration_parse_us("169h", &us, &err), 0);
    cr_expect(strstr(err.msg, "7-day"), "%s", err.msg);

    char buf[32];
    static const struct {
        int64_t us;
        const char *text;
    } cases[] = {{250, "250us"}, {1250, "1.25ms"}, {1500, "1.5ms"}, {12345, "12.345ms"},
                 {100000, "100ms"}, {2000000, "2s"}, {0, "0s"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        duration_format_us(cases[i].us, buf, sizeof buf);
        cr_expect_str_eq(buf, cases[i].text);
        cr_assert_eq(duration_parse_us(buf, &us, &err), 0, "%s", err.msg);
        cr_expect_eq(us, cases[i].us, "%s does not read back", buf);
    }
}

Test(duration, format_round_trips)
{
    char buf[32];
    int64_t cases[] = {0, 1, 250, 1000, 1500, 90000, 3600000, 3661000};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        duration_format(cases[i], buf, sizeof buf);
        cr_expect_eq(parse_ok(buf), cases[i], "%lld formatted as %s", (long long)cases[i], buf);
    }
    duration_format(90000, buf, sizeof buf);
    cr_expect_str_eq(buf, "1m30s");
}

Test(jsonv, unknown_key_suggests_the_known_one)
{
    json_t *o = json_pack("{s:s}", "duraton", "5s");
    static const char *const keys[] = {"name", "duration", NULL};
    struct chaos_err err = {0};
    cr_assert_lt(jv_only_keys(o, "faults[0] 'x'", keys, &err), 0);
    cr_expect(strstr(err.msg, "faults[0] 'x'.duraton: unknown field; did you mean 'duration'?"),
              "%s", err.msg);
    json_decref(o);
}

Test(jsonv, getters_name_the_path_and_type)
{
    json_t *o = json_pack("{s:i, s:s, s:[]}", "n", 70000, "d", "5", "a");
    struct chaos_err err = {0};
    long long n;
    cr_expect_lt(jv_int(o, "target", "n", true, 1, 65535, &n, &err), 0);
    cr_expect(strstr(err.msg, "target.n: 70000 is out of range (1-65535)"), "%s", err.msg);
    int64_t ms;
    cr_expect_lt(jv_duration(o, "", "d", true, &ms, &err), 0);
    cr_expect(strstr(err.msg, "d: "), "%s", err.msg);
    const char *s;
    cr_expect_lt(jv_string(o, "x", "n", true, &s, &err), 0);
    cr_expect(strstr(err.msg, "x.n: must be a string, not an integer"), "%s", err.msg);
    cr_expect_lt(jv_string(o, "x", "missing", true, &s, &err), 0);
    cr_expect(strstr(err.msg, "x.missing: required field is missing"), "%s", err.msg);
    cr_expect_eq(jv_string(o, "x", "missing", false, &s, &err), 0);
    const json_t *a;
    cr_expect_lt(jv_array(o, "x", "a", true, 1, 10, &a, &err), 0);
    cr_expect(strstr(err.msg, "x.a: must not be empty"), "%s", err.msg);
    json_decref(o);
}

Test(chaos_err, prefix_keeps_the_message)
{
    struct chaos_err err = {0};
    cr_expect_eq(chaos_err_set(&err, EINVAL, "bad %s", "thing"), -EINVAL);
    chaos_err_prefix(&err, "file.json");
    cr_expect_str_eq(err.msg, "file.json: bad thing");
    cr_expect_eq(err.code, EINVAL);
    chaos_err_prefix(&err, "%s", "");
    cr_expect_str_eq(err.msg, "file.json: bad thing", "an empty context adds nothing");
    cr_expect_eq(chaos_err_setctx(&err, ERANGE, "faults[0]", "n: %d too big", 7), -ERANGE);
    cr_expect_str_eq(err.msg, "faults[0]: n: 7 too big");
    chaos_err_setctx(&err, ERANGE, "", "n: %d too big", 7);
    cr_expect_str_eq(err.msg, "n: 7 too big");
}

static void mark(struct loop *loop, void *arg)
{
    int *flag = arg;
    *flag = 1;
}

static void stop_cb(struct loop *loop, void *arg)
{
    loop_stop(loop);
}

Test(loop, timers_fire_in_order_and_cancel_works)
{
    struct loop *l = loop_new();
    cr_assert(l);
    int a = 0, b = 0, c = 0;
    int64_t now = loop_now_ms();
    cr_assert(loop_add_timer(l, now + 30, mark, &a));
    uint64_t id = loop_add_timer(l, now + 10, mark, &b);
    cr_assert(loop_add_timer(l, now + 5, mark, &c));
    cr_assert(loop_add_timer(l, now + 50, stop_cb, NULL));
    loop_cancel_timer(l, id);
    cr_assert_eq(loop_run(l), 0);
    cr_expect(loop_now_ms() - now >= 50, "stop timer fired early");
    cr_expect_eq(a, 1);
    cr_expect_eq(b, 0, "cancelled timer fired");
    cr_expect_eq(c, 1);
    loop_free(l);
}

static void on_pipe(struct loop *loop, int fd, uint32_t events, void *arg)
{
    char buf[8];
    int *got = arg;
    *got = (int)read(fd, buf, sizeof buf);
    loop_del_fd(loop, fd);
    loop_stop(loop);
}

Test(loop, fd_events_are_dispatched)
{
    struct loop *l = loop_new();
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int got = -1;
    cr_assert_eq(loop_add_fd(l, p[0], EPOLLIN, on_pipe, &got), 0);
    cr_expect_eq(loop_add_fd(l, p[0], EPOLLIN, on_pipe, &got), -EEXIST);
    cr_assert_eq(write(p[1], "abc", 3), 3);
    cr_assert(loop_add_timer(l, loop_now_ms() + 2000, stop_cb, NULL)); /* a bug fails, not hangs */
    cr_assert_eq(loop_run(l), 0);
    cr_expect_eq(got, 3);
    close(p[0]);
    close(p[1]);
    loop_free(l);
}

struct order {
    int seen[8];
    int n;
};

static void on_ordered(struct loop *l, int fd, uint32_t ev, void *arg)
{
    struct order *o = arg;
    char b[8];
    IGNORE_RESULT(read(fd, b, sizeof b));
    o->seen[o->n++] = fd;
    if (o->n == 4)
        loop_stop(l);
}

/* The engine's queued events must be heard before the I/O the revert that
 * queued them let through: an urgent fd goes first in its turn. */
Test(loop, urgent_fd_is_dispatched_first_in_its_turn)
{
    struct loop *l = loop_new();
    int p[4][2];
    struct order o = {0};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pipe(p[i]), 0);
        cr_assert_eq(loop_add_fd(l, p[i][0], EPOLLIN, on_ordered, &o), 0);
    }
    cr_assert_eq(loop_set_urgent(l, p[2][0]), 0);
    cr_expect_eq(loop_set_urgent(l, 999), -ENOENT);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(write(p[i][1], "x", 1), 1);
    cr_assert(loop_add_timer(l, loop_now_ms() + 2000, stop_cb, NULL));
    cr_assert_eq(loop_run(l), 0);
    cr_assert_eq(o.n, 4);
    cr_expect_eq(o.seen[0], p[2][0], "the urgent fd was not first");
    for (int i = 0; i < 4; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
    loop_free(l);
}

#include "regex_bounded.h"

Test(regex_bounded, ordinary_patterns_compile)
{
    const char *ok[] = {"^worker( --port [0-9]+)?$", "a{1,5}b+", "[[:alpha:]]+\\.json$",
                        "(ab|cd)*e", "x{3}"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        regex_t re;
        char why[128];
        cr_assert_eq(regex_compile_bounded(&re, ok[i], why, sizeof why), 0, "%s: %s", ok[i], why);
        regfree(&re);
    }
}

Test(regex_bounded, exploding_patterns_are_refused_before_regcomp)
{
    /* Each of these made glibc's regcomp allocate gigabytes (fuzzer finding). */
    const char *bad[] = {"cons++++++++++++++++++++++++++++++++++++++++++++uy",
                         "((a{99}){99}){99}", "(((((((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+",
                         /* a stray ')' is a literal to glibc, and so is a leading '+' */
                         "cons++++++++++&++++++)+++++++++++++++++++++++++++++++++uyments)",
                         "++++++++++++++++++++++++++++++++++++++++", "|{9}{9}{9}{9}{9}{9}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        regex_t re;
        char why[128];
        cr_expect_neq(regex_compile_bounded(&re, bad[i], why, sizeof why), 0, "%s compiled", bad[i]);
        cr_expect(strstr(why, "expand too far") || strstr(why, "directly after one another"),
                  "%s: %s", bad[i], why);
    }
    /* Stacked repetition: undefined in POSIX, and glibc spent minutes on a
     * run of "?" (fuzzer finding). */
    const char *stacked[] = {"co+?????????????????????????????????????????uy", "a**", "a{2}{3}", "(a)+?"};
    for (size_t i = 0; i < sizeof stacked / sizeof stacked[0]; i++) {
        regex_t re;
        char why[192];
        cr_expect_neq(regex_compile_bounded(&re, stacked[i], why, sizeof why), 0, "%s compiled",
                      stacked[i]);
        cr_expect(strstr(why, "directly after one another"), "%s: %s", stacked[i], why);
    }
    char longp[REGEX_MAX_LEN + 2];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    regex_t re;
    char why[128];
    cr_expect_neq(regex_compile_bounded(&re, longp, why, sizeof why), 0);
    cr_expect(strstr(why, "longer than"), "%s", why);
    cr_expect_neq(regex_compile_bounded(&re, "a(", why, sizeof why), 0, "regcomp errors pass through");
    cr_expect_neq(regex_compile_bounded(&re, "(a*)*\\1", why, sizeof why), 0);
    cr_expect(strstr(why, "back-references"), "%s", why);
    /* An empty interval at the very end used to step past the NUL (fuzzer, ASan). */
    cr_expect_neq(regex_compile_bounded(&re, "{{w?{0{{{{1{{}", why, sizeof why), 0);
    (void)regex_expansion("{}");
    (void)regex_expansion("a{");
}
