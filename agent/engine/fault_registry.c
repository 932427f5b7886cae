#include "fault.h"

#include <string.h>

extern const struct fault_ops fault_process_ops;
extern const struct fault_ops fault_network_ops;
extern const struct fault_ops fault_syscall_ops;

/* Every fault kind this build knows, in the order docs list them. */
static const struct fault_ops *const fault_kinds[] = {
    &fault_network_ops,
    &fault_process_ops,
    &fault_syscall_ops,
};

const struct fault_ops *fault_ops_find(const char *kind)
{
    for (size_t i = 0; i < sizeof fault_kinds / sizeof fault_kinds[0]; i++)
        if (strcmp(fault_kinds[i]->kind, kind) == 0)
            return fault_kinds[i];
    return NULL;
}

const char *fault_kinds_list(void)
{
    return "network, process, syscall";
}
