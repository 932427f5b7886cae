/* Judging checks from samples: ratios, percentiles, eventually mode, and the
 * sliding window of abort_when. The reasons carry the numbers. */
#include <criterion/criterion.h>
#include <string.h>
#include "check.h"

static struct check make_check(enum check_section sec, enum cmp_op op, double ratio)
{
    struct check c;
    memset(&c, 0, sizeof c);
    c.name = "c";
    c.section = sec;
    c.every_ms = 100;
    c.for_ms = -1;
    c.within_ms = -1;
    c.during = c.after = -1;
    c.success_ratio = (struct cmp){.set = true, .op = op, .value = ratio};
    return c;
}

static void add(struct check_result *r, int64_t t, int64_t lat_us, bool ok, const char *err)
{
    struct sample s = {.t_ms = t, .latency_us = lat_us, .ok = ok, .status = ok ? 200 : 503};
    snprintf(s.error, sizeof s.error, "%s", err ? err : "");
    cr_assert_eq(check_result_add(r, &s), 0);
}

Test(check, ratio_failure_explains_itself)
{
    struct check c = make_check(SECTION_EXPECT, CMP_GE, 0.99);
    struct check_result r;
    check_result_init(&r, &c);
    for (int i = 0; i < 100; i++)
        add(&r, i * 100, 1000, i % 10 != 0, i % 10 ? NULL : "status 503 not in [200]");
    check_judge(&r, "during 'slow db'");
    cr_expect_eq(r.verdict, CHECK_FAILED);
    cr_expect(strstr(r.reason, "success_ratio 0.9 (90/100 ok), wanted >= 0.99 during 'slow db'"),
              "%s", r.reason);
    cr_expect(strstr(r.reason, "most common failure: status 503 not in [200]"), "%s", r.reason);
    check_result_free(&r);
}

Test(check, all_ok_passes_and_no_samples_fails)
{
    struct check c = make_check(SECTION_STEADY, CMP_GE, 1);
    struct check_result r;
    check_result_init(&r, &c);
    check_judge(&r, "before the faults");
    cr_expect_eq(r.verdict, CHECK_FAILED, "an empty window must not pass");
    cr_expect(strstr(r.reason, "no samples before the faults"), "%s", r.reason);
    for (int i = 0; i < 5; i++)
        add(&r, i, 500, true, NULL);
    check_judge(&r, "before the faults");
    cr_expect_eq(r.verdict, CHECK_PASSED, "%s", r.reason);
    check_result_free(&r);
}

Test(check, pass_quotes_every_condition)
{
    struct check c = make_check(SECTION_EXPECT, CMP_GE, 0.99);
    c.latency[LAT_P99] = (struct cmp){.set = true, .op = CMP_GE, .value = 250000};
    struct check_result r;
    check_result_init(&r, &c);
    for (int i = 0; i < 10; i++)
        add(&r, i * 100, i % 2 ? 812000 : 3000, true, NULL);
    check_judge(&r, "during 'slow worker'");
    cr_expect_eq(r.verdict, CHECK_PASSED, "%s", r.reason);
    cr_expect(strstr(r.reason, "success_ratio 1 (10/10 ok), wanted >= 0.99; p99 812ms, wanted "
                               ">= 250ms during 'slow worker'"),
              "%s", r.reason);
    check_result_free(&r);
}

Test(check, latency_percentiles_nearest_rank)
{
    struct check c = make_check(SECTION_EXPECT, CMP_GE, 0);
    struct check_result r;
    check_result_init(&r, &c);
    for (int i = 1; i <= 100; i++)
        add(&r, i, i * 1000, true, NULL); /* 1ms .. 100ms */
    cr_expect_eq(check_latency(&r, LAT_P50), 50000);
    cr_expect_eq(check_latency(&r, LAT_P90), 90000);
    cr_expect_eq(check_latency(&r, LAT_P99), 99000);
    cr_expect_eq(check_latency(&r, LAT_MAX), 100000);
    c.latency[LAT_P99] = (struct cmp){.set = true, .op = CMP_LT, .value = 50000};
    check_judge(&r, "during 'x'");
    cr_expect_eq(r.verdict, CHECK_FAILED);
    cr_expect(strstr(r.reason, "p99 99ms, wanted < 50ms"), "%s", r.reason);
    c.latency[LAT_P99].value = 100000;
    check_judge(&r, "during 'x'");
    cr_expect_eq(r.verdict, CHECK_PASSED, "%s", r.reason);
    check_result_free(&r);
}

Test(check, eventually_passes_on_first_success)
{
    struct check c = make_check(SECTION_EXPECT, CMP_GE, 1);
    c.within_ms = 5000;
    struct check_result r;
    check_result_init(&r, &c);
    add(&r, 0, 10, false, "firing is false");
    cr_expect_not(check_eventually_met(&r));
    add(&r, 1500, 10, true, NULL);
    cr_expect(check_eventually_met(&r));
    cr_expect_eq(r.verdict, CHECK_PASSED);
    cr_expect(strstr(r.reason, "held after 1.5s"), "%s", r.reason);
    check_result_free(&r);

    check_result_init(&r, &c);
    add(&r, 0, 10, false, "firing is false");
    check_eventually_expired(&r, "after 'x'");
    cr_expect_eq(r.verdict, CHECK_FAILED);
    cr_expect(strstr(r.reason, "did not hold within 5s after 'x' (1 samples); last failures: firing is false"),
              "%s", r.reason);
    check_result_free(&r);
}

/* "Fired within 2m of the fault": the time counts from the window's start
 * (the apply), also when the first sample came later. */
Test(check, eventually_took_counts_from_the_window_start)
{
    struct check c = make_check(SECTION_EXPECT, CMP_GE, 1);
    c.within_ms = 5000;
    struct check_result r;
    check_result_init(&r, &c);
    r.window_start_ms = 1000;
    add(&r, 1200, 10, false, "firing is false");
    add(&r, 3000, 10, true, NULL);
    cr_expect(check_eventually_met(&r));
    cr_expect_eq(r.took_ms, 2000);
    cr_expect(strstr(r.reason, "held after 2s"), "%s", r.reason);
    check_result_free(&r);
}

Test(check, abort_uses_the_last_for_window_only)
{
    struct check c = make_check(SECTION_ABORT, CMP_LT, 0.5);
    c.for_ms = 1000;
    struct check_result r;
    check_result_init(&r, &c);
    /* Healthy for 2 s, then failing. */
    for (int t = 0; t < 2000; t += 100)
        add(&r, t, 10, true, NULL);
    cr_expect_not(check_abort_triggered(&r, 2000, 0));
    for (int t = 2000; t < 2600; t += 100)
        add(&r, t, 10, false, "connect: refused");
    /* Window [1600, 2600]: 4 ok of 10 -> 0.4 < 0.5 only once enough failures came. */
    cr_expect(check_abort_triggered(&r, 2600, 0), "%s", r.reason);
    cr_expect(strstr(r.reason, "over the last 1s"), "%s", r.reason);
    check_result_free(&r);

    /* Not before `for` has elapsed since sampling began. */
    check_result_init(&r, &c);
    add(&r, 0, 10, false, "x");
    cr_expect_not(check_abort_triggered(&r, 500, 0));
    check_result_free(&r);
}

/* Issue 13: with every 100ms, for 500ms and a probe that times out after 1s,
 * every sample started more than `for` before its outcome came. The window
 * holds the outcomes observed in it, whenever their probe started. */
Test(check, abort_judges_outcomes_observed_in_the_window_however_slow)
{
    struct check c = make_check(SECTION_ABORT, CMP_LT, 1);
    c.for_ms = 500;
    struct check_result r;
    check_result_init(&r, &c);
    bool triggered = false;
    for (int k = 0; k < 40 && !triggered; k++) {
        add(&r, k * 100, 1000000, false, "timed out after 1s");
        triggered = check_abort_triggered(&r, k * 100 + 1000, 0);
    }
    cr_expect(triggered, "40 timed-out samples never triggered: %s", r.reason);
    cr_expect_eq(r.verdict, CHECK_FAILED);
    cr_expect(strstr(r.reason, "over the last 500ms; most common failure: timed out after 1s"),
              "%s", r.reason);
    check_result_free(&r);
}

/* Samples whose outcome had not come when the window ended are left out,
 * and the verdict and the report say how many. */
Test(check, in_flight_samples_are_reported_not_counted)
{
    struct check c = make_check(SECTION_EXPECT, CMP_GE, 0.9);
    struct check_result r;
    check_result_init(&r, &c);
    add(&r, 0, 1000, true, NULL);
    check_set_in_flight_at_end(&r, 3);
    check_judge(&r, "during 'freeze'");
    cr_expect_eq(r.verdict, CHECK_PASSED, "%s", r.reason);
    cr_expect(strstr(r.reason, "(1/1 ok), wanted >= 0.9 during 'freeze'; 3 samples still in "
                               "flight when the window ended, not counted"),
              "%s", r.reason);
    json_t *j = check_summary_json(&r, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "in_flight_at_end")), 3);
    cr_expect_eq(json_integer_value(json_object_get(j, "samples")), 1);
    json_decref(j);
    check_result_free(&r);

    check_result_init(&r, &c);
    check_set_in_flight_at_end(&r, 1);
    check_judge(&r, "during 'freeze'");
    cr_expect_eq(r.verdict, CHECK_FAILED);
    cr_expect(strstr(r.reason, "no samples during 'freeze'; 1 sample still in flight"), "%s",
              r.reason);
    check_result_free(&r);
}

Test(check, abort_with_zero_for_triggers_on_one_sample)
{
    struct check c = make_check(SECTION_ABORT, CMP_LT, 1);
    c.for_ms = 0;
    struct check_result r;
    check_result_init(&r, &c);
    add(&r, 0, 10, true, NULL);
    cr_expect_not(check_abort_triggered(&r, 0, 0));
    add(&r, 100, 10, false, "exit status 1 not in [0]");
    cr_expect(check_abort_triggered(&r, 100, 0));
    check_result_free(&r);
}

Test(check, error_tally_is_bounded)
{
    struct check c = make_check(SECTION_EXPECT, CMP_GE, 1);
    struct check_result r;
    check_result_init(&r, &c);
    char msg[32];
    for (int i = 0; i < 20; i++) {
        snprintf(msg, sizeof msg, "error %d", i);
        add(&r, i, 1, false, msg);
    }
    cr_expect_eq(r.n_error_kinds, CHECK_MAX_ERROR_KINDS);
    cr_expect_eq(r.other_errors, 20 - CHECK_MAX_ERROR_KINDS);
    json_t *j = check_summary_json(&r, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "samples")), 20);
    cr_expect_eq(json_array_size(json_object_get(j, "errors")), CHECK_MAX_ERROR_KINDS + 1);
    json_decref(j);
    check_result_free(&r);
}
