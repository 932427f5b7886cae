/* The chaos-agent's configuration file and its blast-radius policy.
 *
 * The file is strict JSON: every field is checked and unknown ones are
 * errors naming the field ("config: lease: ..."), so nothing starts on a bad
 * config. The policy is checked on a fault's own target/params JSON before
 * the engine sees it. */
#ifndef CHAOS_AGENT_CONFIG_H
#define CHAOS_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <jansson.h>
#include "chaos_err.h"
#include "fault_spec.h"

/* The policy's categories, in the order of their config keys. */
enum agent_policy_cat {
    POLICY_INTERFACES,
    POLICY_NETNS,
    POLICY_PROCESS_NAMES,
    POLICY_CGROUPS,
    POLICY_UNITS,
    POLICY_N_CATS
};

struct agent_policy_list {
    bool set; /* the key was given (an empty list then allows nothing) */
    char **v;
    size_t n;
};

struct agent_policy {
    struct agent_policy_list allow[POLICY_N_CATS], deny[POLICY_N_CATS];
    int64_t max_duration_ms; /* 0: no limit beyond the engine's own */
    double max_loss;         /* percent; 100 when not set */
};

struct agent_config {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char listen[96]; /* as written, for messages */
    bool loopback;
    char *tls_cert_pem; /* NULL without "tls" */
    char *tls_key_pem;
    char *token; /* the token file's content, trimmed */
    char *journal;
    int64_t lease_ms;
    struct agent_policy policy;
};

/* Reads and checks the config file at path. On failure nothing is
 * allocated and err reads "config: <field>: <what is wrong>". */
int agent_config_load(const char *path, struct agent_config *out, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Parses a config from a JSON object (the token and TLS files are read). */
int agent_config_parse(const json_t *root, struct agent_config *out, struct chaos_err *err)
    __attribute__((warn_unused_result));
/* Frees what the config holds (the token is wiped first). NULL is fine. */
void agent_config_clear(struct agent_config *c);

/* Checks one fault against the policy: kind, its target and params JSON (may
 * be NULL), its validated spec (for the duration). Returns 0, or -EPERM
 * with err saying which field breaks which rule, e.g. "target.interface:
 * 'eth0' is not in the policy's allow.interfaces (lo)". */
int agent_policy_check(const struct agent_policy *p, const char *kind, const json_t *target,
                       const json_t *params, const struct fault_spec *spec, struct chaos_err *err)
    __attribute__((warn_unused_result));

#endif
