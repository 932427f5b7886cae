/* Scenario parsing and validation: the valid corpus and the broken-scenario
 * table under tests/scenarios, the demo scenarios, defaults, comparisons and limits. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broken_corpus.h"
#include "engine.h"
#include "fault.h"
#include "probe.h"
#include "scenario.h"

#define VALID_DIR CHAOS_SOURCE_DIR "/tests/scenarios/valid"
#define BROKEN_DIR CHAOS_SOURCE_DIR "/tests/scenarios/broken"
#define BROKEN_TABLE CHAOS_SOURCE_DIR "/tests/scenarios/broken.tsv"
#define DEMO_DIR CHAOS_SOURCE_DIR "/scenarios"

/* ---- helpers ------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dir's files ending in suffix; *n their count. */
static char **list_files(const char *dir, const char *suffix, size_t *n)
{
    DIR *d = opendir(dir);
    *n = 0;
    if (!d)
        return NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= sl || strcmp(e->d_name + len - sl, suffix) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            names = realloc(names, cap * sizeof *names);
            cr_assert_not_null(names);
        }
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n)
        qsort(names, *n, sizeof *names, cmp_str);
    return names;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static struct scenario *load_ok(const char *path)
{
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    int r = scenario_load(path, &s, &err);
    cr_assert_eq(r, 0, "%s: expected to load, got: %s", path, err.msg);
    cr_assert_not_null(s);
    return s;
}

static struct scenario *load_valid(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, VALID_DIR "/%s", name);
    return load_ok(path);
}

/* Parses text as a scenario; returns the result code and leaves the error in err. */
static int parse_text(const char *text, struct scenario **out, struct chaos_err *err)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(root, "test JSON does not parse: %s", jerr.text);
    int r = scenario_parse(root, "inline.json", out, err);
    json_decref(root);
    return r;
}

static const struct check *check_named(const struct check *c, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(c[i].name, name) == 0)
            return &c[i];
    cr_assert_fail("no check named '%s'", name);
    return NULL;
}

/* ---- the corpora --------------------------------------------------------- */

static void load_all_in(const char *dir, size_t min_count)
{
    size_t n;
    char **names = list_files(dir, ".json", &n);
    cr_assert_geq(n, min_count, "%s: expected at least %zu scenarios, found %zu", dir, min_count,
                  n);
    for (size_t i = 0; i < n; i++) {
        /* scenarios/ also holds the JSON Schema, which is no scenario. */
        if (strstr(names[i], ".schema.json"))
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct scenario *s = NULL;
        struct chaos_err err = {0};
        cr_expect_eq(scenario_load(path, &s, &err), 0, "%s: expected to load, got: %s", path,
                     err.msg);
        scenario_free(s);
    }
    free_list(names, n);
}

Test(corpus, every_valid_scenario_loads)
{
    load_all_in(VALID_DIR, 6);
}

Test(corpus, every_demo_scenario_loads)
{
    load_all_in(DEMO_DIR, 0);
}

/* ---- the broken-scenario table (tests/scenarios/broken.tsv) ---------------- */

/* Whether msg, the error of the case at path, is "PATH: FIELD: FRAGMENT..."
 * (or "PATH:FIELD: ..." for a JSON syntax error's LINE:COLUMN); if not, why
 * says what differs. */
static bool error_matches(const struct broken_case *c, const char *path, const char *msg, char *why,
                          size_t size)
{
    size_t n = strlen(path);
    if (strncmp(msg, path, n) != 0) {
        snprintf(why, size, "the error does not start with the file");
        return false;
    }
    const char *p = msg + n;
    if (*p != ':') {
        snprintf(why, size, "no ':' after the file");
        return false;
    }
    p += p[1] == ' ' ? 2 : 1;
    n = strlen(c->field);
    if (strncmp(p, c->field, n) != 0 || strncmp(p + n, ": ", 2) != 0) {
        snprintf(why, size, "the error does not point at \"%s\"", c->field);
        return false;
    }
    p += n + 2;
    if (strncmp(p, c->fragment, strlen(c->fragment)) != 0) {
        snprintf(why, size, "after \"%s: \" the message does not begin \"%s\"", c->field,
                 c->fragment);
        return false;
    }
    return true;
}

static void read_table(struct broken_table *t)
{
    char err[1024];
    cr_assert_eq(broken_table_read(BROKEN_TABLE, t, err, sizeof err), 0, "%s: %s", BROKEN_TABLE,
                 err);
}

Test(corpus, every_broken_scenario_fails_with_its_message)
{
    struct broken_table t;
    read_table(&t);
    cr_assert_geq(t.n, 100, "expected at least 100 broken scenarios, found %zu", t.n);
    char dir[] = CHAOS_BINARY_DIR "/broken-corpus-test.XXXXXX";
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s: %s", dir, strerror(errno));
    for (size_t i = 0; i < t.n; i++) {
        const struct broken_case *c = &t.cases[i];
        char err[1024], path[4096], why[512];
        int w = broken_case_write(c, BROKEN_DIR, dir, err, sizeof err);
        cr_expect_eq(w, 0, "%s: %s", BROKEN_TABLE, err);
        if (w < 0)
            continue;
        snprintf(path, sizeof path, "%s/%s.json", dir, c->name);
        struct scenario *s = (struct scenario *)0x1;
        struct chaos_err cerr = {0};
        int r = scenario_load(path, &s, &cerr);
        cr_expect_lt(r, 0, "%s (line %d): expected an error, it loaded", c->name, c->line);
        cr_expect_null(s, "%s: a scenario escaped the error", c->name);
        if (r < 0)
            cr_expect(error_matches(c, path, cerr.msg, why, sizeof why),
                      "%s (%s line %d): %s; want \"%s: %s...\", got: %s", c->name, BROKEN_TABLE,
                      c->line, why, c->field, c->fragment, cerr.msg);
        else
            scenario_free(s);
        unlink(path);
    }
    rmdir(dir);
    broken_table_free(&t);
}

/* A case must fail for its own mistake: each template is valid as it is. */
Test(corpus, every_template_loads)
{
    load_all_in(BROKEN_DIR "/templates", 3);
}

/* Every raw file is a case of the table, every case's base exists. */
Test(corpus, every_raw_file_and_template_is_used)
{
    struct broken_table t;
    read_table(&t);
    size_t n;
    char **raw = list_files(BROKEN_DIR "/raw", ".json", &n);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < t.n && !found; k++)
            found = strcmp(t.cases[k].base, "raw") == 0 &&
                    strncmp(t.cases[k].name, raw[i], strlen(raw[i]) - 5) == 0 &&
                    strlen(t.cases[k].name) == strlen(raw[i]) - 5;
        cr_expect(found, "raw/%s is no raw case of %s", raw[i], BROKEN_TABLE);
    }
    free_list(raw, n);
    char **templates = list_files(BROKEN_DIR "/templates", ".json", &n);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < t.n && !found; k++)
            found = strncmp(t.cases[k].base, templates[i], strlen(templates[i]) - 5) == 0 &&
                    strlen(t.cases[k].base) == strlen(templates[i]) - 5;
        cr_expect(found, "templates/%s is the base of no case", templates[i]);
    }
    free_list(templates, n);
    broken_table_free(&t);
}

/* The table's edits themselves: each mistake in one becomes an error naming
 * the line, never a silently different scenario. */
static void expect_bad_change(const char *base, const char *change, const char *want)
{
    struct broken_case c = {.name = "t",
                            .base = (char *)base,
                            .field = "f",
                            .fragment = "m",
                            .change = (char *)change,
                            .line = 7};
    char dir[] = CHAOS_BINARY_DIR "/broken-corpus-test.XXXXXX", err[1024] = "";
    cr_assert_not_null(mkdtemp(dir));
    int r = broken_case_write(&c, BROKEN_DIR, dir, err, sizeof err);
    char path[4096];
    snprintf(path, sizeof path, "%s/t.json", dir);
    cr_expect_lt(r, 0, "'%s' was accepted", change);
    cr_expect_neq(access(path, F_OK), 0, "'%s' wrote a file", change);
    unlink(path);
    rmdir(dir);
    cr_expect_not_null(strstr(err, "line 7 (t): "), "'%s': %s", change, err);
    cr_expect_not_null(strstr(err, want), "'%s': want \"%s\" in: %s", change, want, err);
}

Test(corpus, table_edits_that_are_wrong_are_refused)
{
    expect_bad_change("process", "set /faults/9/name \"x\"", "/faults/9 does not exist");
    expect_bad_change("process", "delete /nothing", "does not exist: nothing to delete");
    expect_bad_change("process", "set /version 1", "the edit changes nothing");
    expect_bad_change("process", "set /faults/5 {}", "no element 5");
    expect_bad_change("process", "set /name x", "not JSON");
    expect_bad_change("process", "set /name \"a\" \"b\"", "want ';' or the end");
    expect_bad_change("process", "replace /name \"a\"", "is not an edit");
    expect_bad_change("process", "set name \"a\"", "is not a JSON pointer");
    expect_bad_change("process", "set /version 2 * 3", "only a string or an array");
    expect_bad_change("nosuch", "set /name \"a\"", "templates/nosuch.json");
}

Test(corpus, table_edits_do_what_they_say)
{
    struct broken_case c = {
        .name = "t",
        .base = "small",
        .field = "f",
        .fragment = "m",
        .line = 1,
        .change = "set /name \"ab\" * 3; set /faults/- {\"k\": 1}; delete /faults/0/target/pid; "
                  "set /faults/0/target/a~1b \"x;y\"; set /faults/1/k [1, 2] * 2"};
    char dir[] = CHAOS_BINARY_DIR "/broken-corpus-test.XXXXXX", err[1024] = "", path[4096];
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(broken_case_write(&c, BROKEN_DIR, dir, err, sizeof err), 0, "%s", err);
    snprintf(path, sizeof path, "%s/t.json", dir);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    unlink(path);
    rmdir(dir);
    cr_assert_not_null(doc, "%s", jerr.text);
    json_t *want =
        json_loads("{\"version\": 1, \"name\": \"ababab\", \"faults\": ["
                   "{\"name\": \"pause\", \"kind\": \"process\", \"duration\": \"1s\","
                   " \"target\": {\"a/b\": \"x;y\"}, \"params\": {\"action\": \"pause\"}},"
                   " {\"k\": [1, 2, 1, 2]}]}",
                   0, &jerr);
    cr_assert_not_null(want, "%s", jerr.text);
    char *got = json_dumps(doc, JSON_SORT_KEYS);
    cr_expect(json_equal(doc, want), "got %s", got);
    free(got);
    json_decref(doc);
    json_decref(want);
}

/* ---- defaults, as docs/scenario-format.md says ---------------------------- */

Test(defaults, top_level_and_fault)
{
    struct scenario *s = load_valid("minimal.json");
    cr_expect_str_eq(s->name, "minimal");
    cr_expect_str_eq(s->description, "");
    cr_expect_eq(s->max_duration_ms, 30LL * 60 * 1000);
    cr_expect_eq(s->n_steady, 0);
    cr_expect_eq(s->n_expect, 0);
    cr_expect_eq(s->n_abort, 0);
    cr_assert_eq(s->n_faults, 1);
    cr_expect_str_eq(s->faults[0].name, "kill one worker");
    cr_expect_str_eq(s->faults[0].kind, "process");
    cr_expect_eq(s->faults[0].at_ms, 0);
    cr_expect_eq(s->faults[0].duration_ms, -1);
    cr_expect_not_null(s->faults[0].spec);
    /* A one-shot kill is active for an instant. */
    cr_expect_eq(scenario_fault_active_ms(s, 0), 0);
    cr_expect_eq(scenario_fault_phase_ms(s), 0);
    cr_expect(strstr(s->path, "minimal.json") != NULL);
    scenario_free(s);
}

Test(defaults, checks_per_section)
{
    struct scenario *s = load_valid("pause-and-recover.json");
    cr_expect_eq(s->max_duration_ms, 5 * 60 * 1000);
    cr_assert_eq(s->n_steady, 1);
    /* steady_state: every 1s, for 5s, success_ratio >= 1. */
    cr_expect_eq(s->steady[0].section, SECTION_STEADY);
    cr_expect_eq(s->steady[0].every_ms, 1000);
    cr_expect_eq(s->steady[0].for_ms, 5000);
    cr_expect_eq(s->steady[0].within_ms, -1);
    cr_expect_eq(s->steady[0].during, -1);
    cr_expect_eq(s->steady[0].after, -1);
    cr_expect(s->steady[0].success_ratio.set);
    cr_expect_eq(s->steady[0].success_ratio.op, CMP_GE);
    cr_expect_eq(s->steady[0].success_ratio.value, 1.0);
    for (int k = 0; k < LAT__COUNT; k++)
        cr_expect_not(s->steady[0].latency[k].set);
    cr_expect_str_eq(probe_kind(s->steady[0].probe), "command");

    const struct check *drains = check_named(s->expect, s->n_expect, "queue drains");
    cr_expect_eq(drains->section, SECTION_EXPECT);
    cr_expect_eq(drains->after, 0);
    cr_expect_eq(drains->for_ms, 60000);
    cr_expect_eq(drains->every_ms, 2000);
    cr_expect_eq(drains->success_ratio.op, CMP_GE);
    cr_expect_float_eq(drains->success_ratio.value, 0.9, 1e-12);

    const struct check *during = check_named(s->expect, s->n_expect, "producers keep going");
    cr_expect_eq(during->during, 0);
    cr_expect_eq(during->after, -1);
    cr_expect_eq(during->for_ms, -1);
    cr_expect_eq(during->every_ms, 1000);

    const struct check *after = check_named(s->expect, s->n_expect, "ingest back to normal");
    cr_expect_eq(after->for_ms, 10000); /* after: default 10s */

    cr_expect_eq(s->faults[0].at_ms, 500);
    cr_expect_eq(s->faults[0].duration_ms, 90000);
    cr_expect_eq(scenario_fault_active_ms(s, 0), 90000);
    cr_expect_eq(scenario_fault_phase_ms(s), 90500);
    scenario_free(s);
}

Test(defaults, abort_when)
{
    struct scenario *s = load_valid("latency-and-http.json");
    cr_assert_eq(s->n_abort, 2);
    const struct check *named = &s->abort_when[0];
    cr_expect_str_eq(named->name, "front down");
    cr_expect_eq(named->for_ms, 10000);
    cr_expect_eq(named->success_ratio.op, CMP_LE);
    cr_expect_float_eq(named->success_ratio.value, 0.2, 1e-12);
    const struct check *anon = &s->abort_when[1];
    cr_expect_str_eq(anon->name, "abort_when[1]");
    cr_expect_eq(anon->section, SECTION_ABORT);
    cr_expect_eq(anon->for_ms, 0);
    cr_expect_eq(anon->every_ms, 1000);
    cr_expect_eq(anon->success_ratio.op, CMP_LT); /* abort_when: "< 1" */
    cr_expect_eq(anon->success_ratio.value, 1.0);
    scenario_free(s);
}

Test(defaults, latency_conditions_in_microseconds)
{
    struct scenario *s = load_valid("latency-and-http.json");
    const struct check *c = &s->steady[0];
    cr_expect_eq(c->every_ms, 50);
    cr_expect_eq(c->for_ms, 3000);
    cr_expect_eq(c->latency[LAT_P50].op, CMP_LT);
    cr_expect_float_eq(c->latency[LAT_P50].value, 20000.0, 1e-6);
    cr_expect_eq(c->latency[LAT_P90].op, CMP_LE);
    cr_expect_float_eq(c->latency[LAT_P90].value, 50000.0, 1e-6);
    cr_expect_float_eq(c->latency[LAT_P95].value, 100000.0, 1e-6);
    cr_expect_float_eq(c->latency[LAT_P99].value, 250000.0, 1e-6);
    cr_expect_eq(c->latency[LAT_MAX].op, CMP_LE);
    cr_expect_float_eq(c->latency[LAT_MAX].value, 1500000.0, 1e-6);
    cr_expect_eq(c->success_ratio.op, CMP_EQ);
    cr_expect_str_eq(probe_kind(c->probe), "http");
    scenario_free(s);
}

Test(defaults, within_and_whole_phase)
{
    struct scenario *s = load_valid("eventually.json");
    const struct check *fires = check_named(s->expect, s->n_expect, "alert fires");
    cr_expect_eq(fires->within_ms, 60000);
    cr_expect_eq(fires->during, 0);
    cr_expect_eq(fires->success_ratio.op, CMP_GE); /* still set, see scenario.h */
    const struct check *front = check_named(s->expect, s->n_expect, "front answers at all");
    cr_expect_eq(front->during, -1);
    cr_expect_eq(front->after, -1);
    cr_expect_eq(front->for_ms, -1);
    cr_expect_eq(front->within_ms, 30000);
    cr_expect_eq(s->steady[0].within_ms, 10000);
    cr_expect_eq(s->steady[0].for_ms, 10000);
    scenario_free(s);

    s = load_valid("whole-phase.json");
    cr_expect_eq(s->max_duration_ms, 120000);
    cr_expect_eq(scenario_fault_phase_ms(s), 120000);
    cr_expect_eq(scenario_fault_index(s, "pause workers"), 0);
    cr_expect_eq(scenario_fault_index(s, "pause front"), 1);
    cr_expect_eq(scenario_fault_index(s, "nope"), -1);
    cr_expect_eq(s->abort_when[0].for_ms, 0);
    scenario_free(s);
}

Test(defaults, repeated_kill_is_active)
{
    struct scenario *s = load_valid("doc-example.json");
    cr_assert_eq(s->n_faults, 1);
    cr_expect_eq(s->faults[0].at_ms, 1000);
    cr_expect_eq(s->faults[0].duration_ms, -1);
    /* every x count, so `during` has a window. */
    cr_expect_eq(scenario_fault_active_ms(s, 0), 6000);
    cr_expect_eq(scenario_fault_phase_ms(s), 7000);
    cr_expect_eq(s->expect[0].during, 0);
    cr_expect_eq(s->steady[0].latency[LAT_P99].op, CMP_LT);
    cr_expect_float_eq(s->steady[0].latency[LAT_P99].value, 300000.0, 1e-6);
    scenario_free(s);
}

/* ---- comparisons ---------------------------------------------------------- */

Test(cmp, parses_every_operator)
{
    static const struct {
        const char *text;
        enum cmp_op op;
        double value;
    } cases[] = {
        {"< 1", CMP_LT, 1},        {"<= 0.5", CMP_LE, 0.5}, {"> 2", CMP_GT, 2},
        {">= 0.99", CMP_GE, 0.99}, {"== 1", CMP_EQ, 1},     {"!= 0", CMP_NE, 0},
        {">=0.25", CMP_GE, 0.25},  {"<   3", CMP_LT, 3},    {"== -1.5", CMP_EQ, -1.5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cmp c = {0};
        struct chaos_err err = {0};
        cr_assert_eq(cmp_parse(cases[i].text, false, "x", &c, &err), 0, "%s: %s", cases[i].text,
                     err.msg);
        cr_expect(c.set);
        cr_expect_eq(c.op, cases[i].op, "%s", cases[i].text);
        cr_expect_float_eq(c.value, cases[i].value, 1e-12, "%s", cases[i].text);
    }
}

Test(cmp, latency_values_are_microseconds)
{
    struct cmp c = {0};
    struct chaos_err err = {0};
    cr_assert_eq(cmp_parse("< 500ms", true, "p99", &c, &err), 0, "%s", err.msg);
    cr_expect_float_eq(c.value, 500000.0, 1e-6);
    cr_assert_eq(cmp_parse("<= 250us", true, "p99", &c, &err), 0, "%s", err.msg);
    cr_expect_float_eq(c.value, 250.0, 1e-6);
    cr_assert_eq(cmp_parse(">= 1m30s", true, "p99", &c, &err), 0, "%s", err.msg);
    cr_expect_float_eq(c.value, 90e6, 1e-3);
    cr_assert_eq(cmp_parse("< 1.5s", true, "p99", &c, &err), 0, "%s", err.msg);
    cr_expect_float_eq(c.value, 1.5e6, 1e-3);
}

Test(cmp, rejects_nonsense_naming_the_field)
{
    static const struct {
        const char *text;
        bool latency;
    } bad[] = {
        {"=> 0.99", false},  {"= 1", false},    {"0.99", false},   {">= ", false},
        {">= abc", false},   {">= 1e3", false}, {">= inf", false}, {"", false},
        {">= 0.9 x", false}, {"<> 1", false},   {"< 500", true},   {"< -5ms", true},
        {"< 5 ms", true},    {"=< 1s", true},   {"<", false},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cmp c = {0};
        struct chaos_err err = {0};
        cr_expect_lt(cmp_parse(bad[i].text, bad[i].latency, "expect.p99", &c, &err), 0,
                     "\"%s\" was accepted", bad[i].text);
        cr_expect_not(c.set, "\"%s\" set the comparison", bad[i].text);
        cr_expect_eq(strncmp(err.msg, "expect.p99: ", 12), 0, "\"%s\": %s", bad[i].text, err.msg);
    }
}

Test(cmp, holds)
{
    struct cmp c = {.set = true, .op = CMP_GE, .value = 0.99};
    cr_expect(cmp_holds(&c, 0.99));
    cr_expect(cmp_holds(&c, 1));
    cr_expect_not(cmp_holds(&c, 0.98));
    c.op = CMP_LT;
    cr_expect(cmp_holds(&c, 0.5));
    cr_expect_not(cmp_holds(&c, 0.99));
    c.op = CMP_LE;
    cr_expect(cmp_holds(&c, 0.99));
    cr_expect_not(cmp_holds(&c, 1));
    c.op = CMP_GT;
    cr_expect(cmp_holds(&c, 1));
    cr_expect_not(cmp_holds(&c, 0.99));
    c.op = CMP_EQ;
    cr_expect(cmp_holds(&c, 0.99));
    cr_expect_not(cmp_holds(&c, 0.5));
    c.op = CMP_NE;
    cr_expect(cmp_holds(&c, 0.5));
    cr_expect_not(cmp_holds(&c, 0.99));
    struct cmp unset = {0};
    cr_expect(cmp_holds(&unset, 12345), "an unset comparison never fails a check");
}

Test(cmp, op_strings)
{
    cr_expect_str_eq(cmp_op_str(CMP_LT), "<");
    cr_expect_str_eq(cmp_op_str(CMP_LE), "<=");
    cr_expect_str_eq(cmp_op_str(CMP_GT), ">");
    cr_expect_str_eq(cmp_op_str(CMP_GE), ">=");
    cr_expect_str_eq(cmp_op_str(CMP_EQ), "==");
    cr_expect_str_eq(cmp_op_str(CMP_NE), "!=");
}

/* ---- limits and odd inputs ------------------------------------------------ */

#define PAUSE_FAULT                                                                                \
    "{\"name\": \"f%d\", \"kind\": \"process\", \"duration\": \"1s\", \"target\": {\"pid\": "      \
    "4242}, \"params\": {\"action\": \"pause\"}}"

/* A scenario with nf pause faults and nc expect checks. */
static char *many(int nf, int nc)
{
    size_t cap = 256 + (size_t)nf * 160 + (size_t)nc * 160;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    size_t off = (size_t)snprintf(buf, cap, "{\"version\": 1, \"name\": \"many\", \"faults\": [");
    for (int i = 0; i < nf; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s" PAUSE_FAULT, i ? ", " : "", i);
    off += (size_t)snprintf(buf + off, cap - off, "], \"expect\": [");
    for (int i = 0; i < nc; i++)
        off += (size_t)snprintf(buf + off, cap - off,
                                "%s{\"name\": \"c%d\", \"probe\": {\"command\": {\"argv\": "
                                "[\"true\"]}}}",
                                i ? ", " : "", i);
    snprintf(buf + off, cap - off, "]}");
    return buf;
}

Test(limits, faults_and_checks)
{
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    char *t = many(64, 64);
    cr_expect_eq(parse_text(t, &s, &err), 0, "%s", err.msg);
    if (s) {
        cr_expect_eq(s->n_faults, 64);
        cr_expect_eq(s->n_expect, 64);
    }
    scenario_free(s);
    free(t);

    t = many(65, 1);
    cr_expect_lt(parse_text(t, &s, &err), 0);
    cr_expect_null(s);
    cr_expect(strstr(err.msg, "inline.json: faults: ") == err.msg, "%s", err.msg);
    free(t);

    t = many(1, 65);
    cr_expect_lt(parse_text(t, &s, &err), 0);
    cr_expect_null(s);
    cr_expect(strstr(err.msg, "inline.json: expect: ") == err.msg, "%s", err.msg);
    free(t);
}

Test(limits, errors_deep_in_the_file_free_everything)
{
    /* Fails at the last check, after faults and checks were built: ASan
     * catches any leak on the error path. */
    char text[2048];
    snprintf(text, sizeof text,
             "{\"version\": 1, \"name\": \"x\", \"faults\": [" PAUSE_FAULT ", " PAUSE_FAULT
             "], \"steady_state\": [{\"name\": \"a\", \"probe\": {\"http\": {\"url\": "
             "\"http://h/\"}}}], \"expect\": [{\"name\": \"b\", \"probe\": {\"command\": "
             "{\"argv\": [\"true\"]}}}], \"abort_when\": [{\"probe\": {\"command\": "
             "{\"argv\": [\"true\"]}}, \"expect\": {\"p99\": \"< 5\"}}]}",
             0, 1);
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    cr_expect_lt(parse_text(text, &s, &err), 0);
    cr_expect_null(s);
    cr_expect_str_eq(err.msg,
                     "inline.json: abort_when[0]: expect.p99: \"< 5\": a latency is compared "
                     "with a duration (e.g. \"< 500ms\"): \"5\" needs a unit after each number "
                     "(us, ms, s, m or h)");
}

Test(limits, root_must_be_an_object)
{
    json_t *root = json_array();
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    cr_expect_lt(scenario_parse(root, "arr.json", &s, &err), 0);
    cr_expect_null(s);
    cr_expect(strstr(err.msg, "arr.json: ") == err.msg, "%s", err.msg);
    cr_expect(strstr(err.msg, "must be an object"), "%s", err.msg);
    json_decref(root);
}

Test(limits, names_count_characters_not_bytes)
{
    /* 128 three-byte characters: allowed. */
    char name[128 * 3 + 1] = "";
    for (int i = 0; i < 128; i++)
        strcat(name, "\xe2\x82\xac");
    char text[1024];
    snprintf(text, sizeof text, "{\"version\": 1, \"name\": \"%s\", \"faults\": [" PAUSE_FAULT "]}",
             name, 0);
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    cr_expect_eq(parse_text(text, &s, &err), 0, "%s", err.msg);
    scenario_free(s);
}

Test(load, missing_file_and_directory)
{
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    cr_expect_lt(scenario_load("/nonexistent/x.json", &s, &err), 0);
    cr_expect_null(s);
    cr_expect(strstr(err.msg, "/nonexistent/x.json: ") == err.msg, "%s", err.msg);
    cr_expect_lt(scenario_load(VALID_DIR, &s, &err), 0);
    cr_expect_null(s);
    cr_expect(strstr(err.msg, "is a directory"), "%s", err.msg);
}

Test(load, syntax_error_names_line_and_column)
{
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    const char *path = BROKEN_DIR "/raw/json-syntax-error.json";
    cr_expect_lt(scenario_load(path, &s, &err), 0);
    char want[600];
    snprintf(want, sizeof want, "%s:", path);
    cr_expect(strstr(err.msg, want) == err.msg, "%s", err.msg);
    /* path:line:column: text */
    const char *p = err.msg + strlen(want);
    char *end;
    long line = strtol(p, &end, 10);
    cr_expect_gt(line, 0, "%s", err.msg);
    cr_expect_eq(*end, ':', "%s", err.msg);
    long col = strtol(end + 1, &end, 10);
    cr_expect_gt(col, 0, "%s", err.msg);
    cr_expect_eq(*end, ':', "%s", err.msg);
}

Test(load, dash_reads_stdin)
{
    cr_assert_not_null(freopen(VALID_DIR "/minimal.json", "r", stdin));
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(scenario_load("-", &s, &err), 0, "%s", err.msg);
    cr_expect_str_eq(s->path, "-");
    cr_expect_str_eq(s->name, "minimal");
    scenario_free(s);

    cr_assert_not_null(freopen(BROKEN_DIR "/raw/top-level-array.json", "r", stdin));
    cr_expect_lt(scenario_load("-", &s, &err), 0);
    cr_expect_null(s);
    cr_expect(strstr(err.msg, "<stdin>: scenario: ") == err.msg, "%s", err.msg);
}

/* Every string a scenario holds is bounded by bounding the file: a 2 MiB
 * scenario (here one huge probe argument) is refused before it is parsed. */
Test(load, oversized_file_is_refused)
{
    char path[] = "/tmp/chaos-t-big-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    cr_assert_not_null(f);
    fputs("{\"version\": 1, \"name\": \"big\", \"faults\": [{\"name\": \"k\", \"kind\": "
          "\"process\", \"target\": {\"name\": \"w\"}, \"params\": {\"action\": \"kill\"}}], "
          "\"expect\": [{\"name\": \"c\", \"probe\": {\"command\": {\"argv\": [\"",
          f);
    for (int i = 0; i < 2 * 1024 * 1024; i++)
        fputc('a', f);
    fputs("\"]}}}]}\n", f);
    cr_assert_eq(fclose(f), 0);
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    int r = scenario_load(path, &s, &err);
    unlink(path);
    cr_expect_lt(r, 0);
    cr_expect_null(s);
    cr_expect(strstr(err.msg, "larger than 1024 KiB"), "%s", err.msg);
}

/* Faults without steady_state or expect checks nothing: validate warns (the
 * scenario is still valid), and a scenario with a check does not. */
Test(load, no_checks_is_warned_about)
{
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    cr_assert_eq(parse_text("{\"version\": 1, \"name\": \"x\", \"faults\": [{\"name\": \"k\", "
                            "\"kind\": \"process\", \"target\": {\"name\": \"w\"}, "
                            "\"params\": {\"action\": \"kill\"}}]}",
                            &s, &err),
                 0, "%s", err.msg);
    char w[512];
    cr_expect(scenario_warning(s, w, sizeof w));
    cr_expect(strstr(w, "no steady_state or expect checks"), "%s", w);
    scenario_free(s);
    s = load_valid("doc-example.json");
    cr_expect_not(scenario_warning(s, w, sizeof w), "doc-example.json warned: %s", w);
    scenario_free(s);
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : 4;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n;
    }
    return true;
}

/* A long non-ASCII unknown key: the message (did you mean, known fields) is
 * cut where it must be, but never in the middle of a character. */
Test(limits, cut_messages_stay_valid_utf8)
{
    for (int len = 100; len < 420; len += 37) {
        char text[2048];
        int off = snprintf(text, sizeof text, "{\"version\": 1, \"name\": \"x\", \"");
        for (int i = 0; i < len; i++)
            off +=
                snprintf(text + off, sizeof text - (size_t)off, "%s", len % 2 || i % 3 ? "é" : "€");
        snprintf(text + off, sizeof text - (size_t)off, "\": 1, \"faults\": []}");
        struct scenario *s = NULL;
        struct chaos_err err = {0};
        cr_assert_lt(parse_text(text, &s, &err), 0);
        cr_expect(strstr(err.msg, "unknown field"), "%s", err.msg);
        cr_expect(valid_utf8(err.msg), "key of %d characters: message cut inside a character: %s",
                  len, err.msg);
    }
}
