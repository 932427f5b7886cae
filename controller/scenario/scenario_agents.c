/* Which agent runs each fault: the scenario's "agent" fields resolved
 * against the inventory (--inventory FILE) or the scenario's own "agents". */
#include "scenario.h"

#include <errno.h>
#include <stdlib.h>

int scenario_bind_fleet(struct scenario *s, const struct fleet *inventory, struct chaos_err *err)
{
    if (inventory && s->fleet.n)
        return chaos_err_set(err, EINVAL,
                             "agents: the scenario has its own agents and --inventory gives "
                             "more; use one of them");
    const struct fleet *f = inventory ? inventory : &s->fleet;
    s->remote = false;
    for (size_t i = 0; i < s->n_faults; i++) {
        struct scenario_fault *sf = &s->faults[i];
        free(sf->agents);
        sf->agents = NULL;
        sf->n_agents = 0;
        if (!sf->agent)
            continue;
        if (!f->n)
            return chaos_err_set(err, EINVAL,
                                 "faults[%zu] '%s': agent: \"%s\" needs an inventory: chaos run "
                                 "--inventory FILE, or \"agents\" in the scenario",
                                 i, sf->name, sf->agent);
        struct chaos_err e = {0};
        int r = fleet_select(f, sf->agent, &sf->agents, &sf->n_agents, &e);
        if (r < 0)
            return chaos_err_set(err, -r, "faults[%zu] '%s': agent: %s", i, sf->name, e.msg);
        s->remote = true;
    }
    return 0;
}
