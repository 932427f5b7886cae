/* The blast-radius policy, checked on a fault's own JSON before the engine
 * sees it. Each selector of a target belongs to one category (a process's
 * name, a cgroup, a unit, an interface, a namespace); a deny list refuses
 * its values, an allow list admits only its values. A selector whose
 * processes cannot be known before the apply (cmdline, pidfile, netns_pid)
 * is refused whenever a list that would have to judge it is configured:
 * the policy never guesses in the target's favour. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "agent_config.h"
#include "duration.h"

static const char *const cat_keys[POLICY_N_CATS] = {"interfaces", "netns", "process_names",
                                                    "cgroups", "units"};

/* Whether value matches entry: exactly, or (cgroups) as a path below it,
 * or (netns) as the /run/netns name of it. */
static bool entry_matches(enum agent_policy_cat cat, const char *entry, const char *value)
{
    if (strcmp(entry, value) == 0)
        return true;
    size_t n = strlen(entry);
    if (cat == POLICY_CGROUPS && strncmp(entry, value, n) == 0 &&
        (value[n] == '/' || (n && entry[n - 1] == '/')))
        return true;
    if (cat == POLICY_NETNS && strncmp(value, "/run/netns/", 11) == 0 &&
        strcmp(value + 11, entry) == 0)
        return true;
    return false;
}

static bool list_has(const struct agent_policy_list *l, enum agent_policy_cat cat, const char *v)
{
    for (size_t i = 0; i < l->n; i++)
        if (entry_matches(cat, l->v[i], v))
            return true;
    return false;
}

static void list_text(const struct agent_policy_list *l, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    if (l->n == 0)
        snprintf(buf, size, "empty");
    for (size_t i = 0; i < l->n && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "", l->v[i]);
}

/* Judges value (of field, in category cat) against both lists. what (may
 * be "") names what the value belongs to, e.g. "process 812 ". */
static int judge(const struct agent_policy *p, enum agent_policy_cat cat, const char *field,
                 const char *value, const char *what, struct chaos_err *err)
{
    char list[256];
    if (p->deny[cat].set && list_has(&p->deny[cat], cat, value)) {
        list_text(&p->deny[cat], list, sizeof list);
        return chaos_err_set(err, EPERM, "%s: %s'%s' is denied by the policy's deny.%s (%s)", field,
                             what, value, cat_keys[cat], list);
    }
    if (p->allow[cat].set && !list_has(&p->allow[cat], cat, value)) {
        list_text(&p->allow[cat], list, sizeof list);
        return chaos_err_set(err, EPERM, "%s: %s'%s' is not in the policy's allow.%s (%s)", field,
                             what, value, cat_keys[cat], list);
    }
    return 0;
}

static bool any_allow(const struct agent_policy *p, enum agent_policy_cat a,
                      enum agent_policy_cat b, enum agent_policy_cat c)
{
    return p->allow[a].set || p->allow[b].set || p->allow[c].set;
}

static int check_process(const struct agent_policy *p, const json_t *t, struct chaos_err *err)
{
    const json_t *v;
    if ((v = json_object_get(t, "pid"))) {
        long long pid = json_integer_value(v);
        /* The engine refuses these too; saying it here makes it a 403. */
        if (pid == 1 || pid == getpid() || pid == getppid())
            return chaos_err_set(err, EPERM, "target.pid: %lld is %s: never a target", pid,
                                 pid == 1          ? "init (PID 1)"
                                 : pid == getpid() ? "the agent itself"
                                                   : "the agent's parent");
        if (!p->allow[POLICY_PROCESS_NAMES].set && !p->deny[POLICY_PROCESS_NAMES].set) {
            if (any_allow(p, POLICY_PROCESS_NAMES, POLICY_CGROUPS, POLICY_UNITS))
                return chaos_err_set(err, EPERM,
                                     "target.pid: the policy allows only targets "
                                     "by %s",
                                     p->allow[POLICY_CGROUPS].set ? "cgroup" : "unit");
            return 0;
        }
        char path[64], comm[32] = "";
        snprintf(path, sizeof path, "/proc/%lld/comm", pid);
        FILE *f = fopen(path, "re");
        if (!f || !fgets(comm, sizeof comm, f)) {
            if (f)
                fclose(f);
            return chaos_err_set(err, EPERM,
                                 "target.pid: %lld: cannot read its name to check it "
                                 "against the policy",
                                 pid);
        }
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        char what[48];
        snprintf(what, sizeof what, "process %lld, named ", pid);
        return judge(p, POLICY_PROCESS_NAMES, "target.pid", comm, what, err);
    }
    static const struct {
        const char *key;
        enum agent_policy_cat cat;
    } sel[] = {
        {"name", POLICY_PROCESS_NAMES}, {"cgroup", POLICY_CGROUPS}, {"systemd_unit", POLICY_UNITS}};
    for (size_t i = 0; i < sizeof sel / sizeof sel[0]; i++) {
        if (!(v = json_object_get(t, sel[i].key)) || !json_is_string(v))
            continue;
        char field[32];
        snprintf(field, sizeof field, "target.%s", sel[i].key);
        if (!p->allow[sel[i].cat].set &&
            any_allow(p, POLICY_PROCESS_NAMES, POLICY_CGROUPS, POLICY_UNITS))
            return chaos_err_set(err, EPERM,
                                 "%s: the policy has no allow.%s; it allows only "
                                 "targets its allow lists name",
                                 field, cat_keys[sel[i].cat]);
        return judge(p, sel[i].cat, field, json_string_value(v), "", err);
    }
    static const char *const blind[] = {"cmdline", "pidfile"};
    for (size_t i = 0; i < 2; i++)
        if (json_object_get(t, blind[i]) &&
            (p->deny[POLICY_PROCESS_NAMES].set ||
             any_allow(p, POLICY_PROCESS_NAMES, POLICY_CGROUPS, POLICY_UNITS)))
            return chaos_err_set(err, EPERM,
                                 "target.%s: the processes it matches cannot be "
                                 "checked against the policy's process lists before they are "
                                 "hit; target them by name, pid, cgroup or unit",
                                 blind[i]);
    return 0;
}

/* The loss a network fault may cause, in percent. */
static double fault_loss(const json_t *params)
{
    if (json_is_true(json_object_get(params, "partition")))
        return 100;
    const json_t *ge = json_object_get(params, "gilbert_elliott");
    if (ge) {
        /* The bad state may drop up to loss_in_bad (100 by netem's default). */
        const json_t *lb = json_object_get(ge, "loss_in_bad");
        return json_is_number(lb) ? json_number_value(lb) : 100;
    }
    const json_t *l = json_object_get(params, "loss");
    return json_is_number(l) ? json_number_value(l) : 0;
}

static int check_network(const struct agent_policy *p, const json_t *t, const json_t *params,
                         struct chaos_err *err)
{
    const char *ifname = json_string_value(json_object_get(t, "interface"));
    if (ifname) {
        int r = judge(p, POLICY_INTERFACES, "target.interface", ifname, "", err);
        if (r < 0)
            return r;
    } else if (p->allow[POLICY_INTERFACES].set) {
        return chaos_err_set(err, EPERM,
                             "target.interface: required by the policy's "
                             "allow.interfaces");
    }
    const char *ns = json_string_value(json_object_get(t, "netns"));
    if (ns) {
        int r = judge(p, POLICY_NETNS, "target.netns", ns, "", err);
        if (r < 0)
            return r;
    } else if (json_object_get(t, "netns_pid") &&
               (p->allow[POLICY_NETNS].set || p->deny[POLICY_NETNS].set)) {
        return chaos_err_set(err, EPERM,
                             "target.netns_pid: a namespace named by a process cannot "
                             "be checked against the policy's netns lists; name it by path");
    } else if (!json_object_get(t, "netns_pid") && p->allow[POLICY_NETNS].set) {
        return chaos_err_set(err, EPERM,
                             "target.netns: required by the policy's allow.netns "
                             "(the agent's own namespace is not in it)");
    }
    double loss = fault_loss(params);
    if (loss > p->max_loss) {
        const char *field = json_is_true(json_object_get(params, "partition")) ? "params.partition"
                            : json_object_get(params, "gilbert_elliott") ? "params.gilbert_elliott"
                                                                         : "params.loss";
        return chaos_err_set(err, EPERM, "%s: %g%% loss is above the policy's max_loss %g%%", field,
                             loss, p->max_loss);
    }
    return 0;
}

int agent_policy_check(const struct agent_policy *p, const char *kind, const json_t *target,
                       const json_t *params, const struct fault_spec *spec, struct chaos_err *err)
{
    if (p->max_duration_ms > 0) {
        const struct fault_info *info = fault_spec_info(spec);
        int64_t d = info->lasting ? fault_spec_duration_ms(spec) : info->natural_duration_ms;
        if (d > p->max_duration_ms) {
            char have[32], max[32];
            duration_format(d, have, sizeof have);
            duration_format(p->max_duration_ms, max, sizeof max);
            return chaos_err_set(err, EPERM, "%s: %s is above the policy's max_duration %s",
                                 info->lasting ? "duration" : "params.every", have, max);
        }
    }
    /* A target that is a command to launch would make the token a remote
     * root shell: the agent injects into what runs, it never starts things
     * for the network, whatever the policy says. */
    if (json_object_get(target, "command"))
        return chaos_err_set(err, EPERM,
                             "target.command: the agent never launches commands "
                             "for remote callers; run this fault with `chaos run` on the machine");
    /* A syscall fault's running-process target selects as the process
     * kind does, and is judged by the same rules (never PID 1 or the agent,
     * the process lists); a ptrace of a process is no smaller a blast than
     * a signal to it. */
    if (strcmp(kind, "process") == 0 || strcmp(kind, "syscall") == 0)
        return check_process(p, target, err);
    if (strcmp(kind, "network") == 0)
        return check_network(p, target, params, err);
    /* A kind this policy has no rules for yet is refused rather than let
     * through unchecked, whenever a list is configured. */
    for (int k = 0; k < POLICY_N_CATS; k++)
        if (p->allow[k].set || p->deny[k].set)
            return chaos_err_set(err, EPERM,
                                 "kind: the policy has no rules for kind '%s' yet, "
                                 "so it refuses it",
                                 kind);
    return 0;
}
