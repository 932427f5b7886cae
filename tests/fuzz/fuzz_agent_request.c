/* Fuzz target for chaos-agent's request parser: the bodies of POST
 * /v1/faults and POST /v1/lease are untrusted bytes from the network. Each
 * input goes through both parsers and, when it is a valid fault, through the
 * policy check with a policy that has every kind of list: a request or a
 * precise error out, never a crash or a leak. With -DCHAOS_FUZZ=ON (clang) a
 * libFuzzer binary; otherwise a driver replays the files given to it (and
 * their prefixes), which ctest runs over tests/fuzz/corpus-agent/. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent_config.h"
#include "agent_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *list_v[] = {"lo", "eth0", NULL};
static char *names_v[] = {"worker", NULL};
static char *cg_v[] = {"/system.slice", NULL};

static const struct agent_policy policy = {
    .allow = {[POLICY_INTERFACES] = {true, list_v, 2}, [POLICY_PROCESS_NAMES] = {true, names_v, 1}},
    .deny = {[POLICY_CGROUPS] = {true, cg_v, 1}, [POLICY_NETNS] = {true, list_v, 1}},
    .max_duration_ms = 600000,
    .max_loss = 50,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_fault_req req;
    struct chaos_err err = {0};
    if (agent_request_parse_fault((const char *)data, size, &req, &err) == 0) {
        struct chaos_err perr = {0};
        if (agent_policy_check(&policy, req.kind, req.target, req.params, req.spec, &perr) < 0 &&
            !perr.msg[0])
            abort(); /* every refusal must say why */
        agent_fault_req_clear(&req, 1);
    } else if (!err.msg[0]) {
        abort();
    }
    char *controller = NULL;
    struct chaos_err lerr = {0};
    if (agent_request_parse_lease((const char *)data, size, &controller, &lerr) == 0)
        free(controller);
    else if (!lerr.msg[0])
        abort();
    return 0;
}

#ifndef CHAOS_LIBFUZZER
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (fuzz_replay_file(argv[i], 5, NULL) < 0)
            return 1;
    printf("replayed %d inputs\n", argc - 1);
    return 0;
}
#endif
