/* The fleet: inventory parsing (strict, secrets read once, errors name the
 * field), agent selection by name and label selector, and binding a
 * scenario's faults to agents (scenario_bind_fleet). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fleet.h"
#include "scenario.h"

static char token_file[] = "/tmp/chaos-t-fleet-token-XXXXXX";

static void write_token(void)
{
    int fd = mkstemp(token_file);
    cr_assert(fd >= 0);
    cr_assert(write(fd, "0123456789abcdef0123\n", 21) == 21);
    close(fd);
}

static void remove_token(void)
{
    unlink(token_file);
}

TestSuite(fleet, .init = write_token, .fini = remove_token);

/* text with every "%s" replaced by the token file's path. */
static void with_token(const char *text, char *buf, size_t size)
{
    size_t o = 0;
    for (const char *p = text; *p && o + 1 < size; p++) {
        if (p[0] == '%' && p[1] == 's') {
            o += (size_t)snprintf(buf + o, size - o, "%s", token_file);
            p++;
        } else {
            buf[o++] = *p;
        }
    }
    buf[o < size ? o : size - 1] = '\0';
}

static int parse(const char *text, struct fleet *f, struct chaos_err *err)
{
    char buf[4096];
    with_token(text, buf, sizeof buf);
    json_error_t je;
    json_t *j = json_loads(buf, 0, &je);
    cr_assert(j, "test JSON: %s: %s", je.text, buf);
    int r = fleet_parse(j, "agents", f, err);
    json_decref(j);
    return r;
}

static void parse_fails(const char *text, const char *want)
{
    struct fleet f;
    struct chaos_err err = {0};
    cr_expect_lt(parse(text, &f, &err), 0, "parsed: %s", text);
    cr_expect(strstr(err.msg, want), "error '%s' does not contain '%s'", err.msg, want);
    cr_expect_eq(f.n, 0);
}

#define A(extra) "{\"name\": \"n1\", \"url\": \"https://10.0.0.1:7433\", \"bearer_token_file\": \"%s\"" extra "}"

Test(fleet, refuses_what_is_wrong_naming_the_field)
{
    parse_fails("{}", "agents: must be an array of agents, not an object");
    parse_fails("[]", "agents: give 1-4096 agents");
    parse_fails("[{\"name\": \"n1\", \"url\": \"https://a:1\"}]",
                "agents[0]: give bearer_token_file or bearer_token_env");
    parse_fails("[" A(", \"color\": \"red\"") "]", "agents[0].color: unknown field");
    parse_fails("[{\"name\": \"a b\", \"url\": \"https://a:1\", \"bearer_token_file\": \"%s\"}]",
                "agents[0].name: \"a b\" must be 1-128 letters");
    parse_fails("[{\"name\": \"a=b\", \"url\": \"https://a:1\", \"bearer_token_file\": \"%s\"}]",
                "agents[0].name");
    parse_fails("[" A("") ", " A("") "]", "agents[1].name: 'n1' is also agents[0]'s name");
    parse_fails("[" A(", \"labels\": {\"role\": 1}") "]", "agents[0].labels.role: must be a string");
    parse_fails("[" A(", \"labels\": {\"9x\": \"a\"}") "]", "agents[0].labels: \"9x\" is not a label name");
    parse_fails("[" A(", \"labels\": {\"role\": \"a,b\"}") "]", "without ',' or '='");
    parse_fails("[{\"name\": \"n1\", \"url\": \"ftp://a\", \"bearer_token_file\": \"%s\"}]",
                "agents[0].url: \"ftp://a\" must start with http:// or https://");
    parse_fails("[{\"name\": \"n1\", \"url\": \"https://a:1\", \"bearer_token_file\": \"/nonexistent/t\"}]",
                "agents[0].bearer_token_file: cannot open /nonexistent/t");
}

Test(fleet, selects_by_name_and_by_labels)
{
    struct fleet f;
    struct chaos_err err = {0};
    int r = parse("[{\"name\": \"db1\", \"url\": \"https://a:1\", \"bearer_token_file\": \"%s\", "
                  "\"labels\": {\"role\": \"db\", \"zone\": \"a\"}}, "
                  "{\"name\": \"db2\", \"url\": \"https://b:1\", \"bearer_token_file\": \"%s\", "
                  "\"labels\": {\"role\": \"db\", \"zone\": \"b\"}}, "
                  "{\"name\": \"web1\", \"url\": \"https://c:1\", \"bearer_token_file\": \"%s\", "
                  "\"labels\": {\"role\": \"web\"}}]",
                  &f, &err);
    cr_assert_eq(r, 0, "%s", err.msg);
    cr_expect_str_eq(f.agents[0].conn.bearer, "0123456789abcdef0123", "token read once, newline dropped");
    const struct fleet_agent **v;
    size_t n;
    cr_assert_eq(fleet_select(&f, "web1", &v, &n, &err), 0, "%s", err.msg);
    cr_expect(n == 1 && strcmp(v[0]->name, "web1") == 0);
    free(v);
    cr_assert_eq(fleet_select(&f, "role=db", &v, &n, &err), 0, "%s", err.msg);
    cr_expect(n == 2 && strcmp(v[0]->name, "db1") == 0 && strcmp(v[1]->name, "db2") == 0);
    free(v);
    cr_assert_eq(fleet_select(&f, "role=db,zone=b", &v, &n, &err), 0, "%s", err.msg);
    cr_expect(n == 1 && strcmp(v[0]->name, "db2") == 0);
    free(v);
    cr_expect_eq(fleet_select(&f, "role=cache", &v, &n, &err), -ENOENT);
    cr_expect(strstr(err.msg, "selector \"role=cache\" matches no agent of the inventory (3 agents)"),
              "%s", err.msg);
    cr_expect_eq(fleet_select(&f, "db", &v, &n, &err), -ENOENT, "a name is matched whole");
    cr_expect_eq(fleet_select(&f, "role=db=x", &v, &n, &err), -EINVAL);
    cr_expect_eq(fleet_select(&f, "role=db,", &v, &n, &err), -EINVAL);
    cr_expect_eq(fleet_select(&f, "role=", &v, &n, &err), -ENOENT, "an empty value matches no label");
    fleet_clear(&f);
    cr_expect_eq(f.n, 0);
}

static struct scenario *load(const char *agents_json)
{
    char buf[4096];
    char agents[1024] = "";
    if (agents_json)
        snprintf(agents, sizeof agents, "\"agents\": %s, ", agents_json);
    snprintf(buf, sizeof buf,
             "{\"version\": 1, \"name\": \"x\", %s\"faults\": [{\"name\": \"p\", \"kind\": \"process\", "
             "\"agent\": \"role=db\", \"duration\": \"1s\", \"target\": {\"pid\": 4000000}, "
             "\"params\": {\"action\": \"pause\"}}, {\"name\": \"local\", \"kind\": \"process\", "
             "\"duration\": \"1s\", \"target\": {\"pid\": 4000000}, \"params\": {\"action\": \"pause\"}}]}",
             agents);
    char agents_fmt[4096];
    with_token(buf, agents_fmt, sizeof agents_fmt);
    json_t *j = json_loads(agents_fmt, 0, NULL);
    cr_assert(j);
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    int r = scenario_parse(j, "t.json", &s, &err);
    json_decref(j);
    cr_assert_eq(r, 0, "%s", err.msg);
    return s;
}

Test(fleet, binds_faults_to_agents)
{
    /* Without agents of its own: valid, decided by an inventory at run time. */
    struct scenario *s = load(NULL);
    cr_expect_not(s->remote);
    struct chaos_err err = {0};
    cr_expect_lt(scenario_bind_fleet(s, NULL, &err), 0);
    cr_expect(strstr(err.msg, "faults[0] 'p': agent: \"role=db\" needs an inventory: chaos run "
                              "--inventory FILE"),
              "%s", err.msg);
    struct fleet inv;
    char text[512];
    snprintf(text, sizeof text,
             "[{\"name\": \"db1\", \"url\": \"https://a:1\", \"bearer_token_file\": \"%s\", "
             "\"labels\": {\"role\": \"db\"}}]",
             token_file);
    json_t *j = json_loads(text, 0, NULL);
    cr_assert_eq(fleet_parse(j, "inventory", &inv, &err), 0, "%s", err.msg);
    json_decref(j);
    cr_assert_eq(scenario_bind_fleet(s, &inv, &err), 0, "%s", err.msg);
    cr_expect(s->remote);
    cr_expect(s->faults[0].n_agents == 1 && s->faults[0].agents[0] == &inv.agents[0]);
    cr_expect_eq(s->faults[1].n_agents, 0, "a fault without agent stays on this machine");
    scenario_free(s);

    /* With its own agents: bound at load; an inventory besides is refused. */
    s = load("[{\"name\": \"db9\", \"url\": \"https://z:1\", \"bearer_token_file\": \"%s\", "
             "\"labels\": {\"role\": \"db\"}}]");
    cr_expect(s->remote && s->faults[0].n_agents == 1);
    cr_expect_str_eq(s->faults[0].agents[0]->name, "db9");
    cr_expect_lt(scenario_bind_fleet(s, &inv, &err), 0);
    cr_expect(strstr(err.msg, "agents: the scenario has its own agents and --inventory gives more"),
              "%s", err.msg);
    scenario_free(s);
    fleet_clear(&inv);
}
