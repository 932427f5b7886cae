/* What the files of the test_net_vm binary share: the tiny runner (each
 * test forked, its suite's init before and fini after, Criterion's
 * assertion names), the two-namespace topology and the engine rig. Defined
 * in test_net_vm.c; see there for the topology. */
#ifndef CHAOS_NET_VM_H
#define CHAOS_NET_VM_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <jansson.h>
#include "engine.h"
#include "loop.h"

__attribute__((format(printf, 4, 5), noreturn)) void fail_at(const char *file, int line,
                                                             const char *expr, const char *fmt,
                                                             ...);

#define cr_assert(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_at(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                                   \
    } while (0)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_not_null(a, ...) cr_assert((a) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...) cr_assert(fabs((a) - (b)) <= (eps), __VA_ARGS__)

struct suite {
    const char *name;
    void (*init)(void), (*fini)(void);
    int timeout;
};

/* Adds a test to the run (called from the constructors Test() makes). */
void net_vm_register(const struct suite *s, const char *name, void (*fn)(void));

#define TestSuite(sname, ...) static const struct suite suite_##sname = {#sname, __VA_ARGS__}
#define Test(sname, tname)                                                                         \
    static void test_##sname##_##tname(void);                                                     \
    __attribute__((constructor)) static void reg_##sname##_##tname(void)                          \
    {                                                                                              \
        net_vm_register(&suite_##sname, #tname, test_##sname##_##tname);                          \
    }                                                                                              \
    static void test_##sname##_##tname(void)

#define CLI "chaos-t-cli"
#define SRV "chaos-t-srv"
#define DEV "chaos-t-c0"
#define TARGET "10.77.0.2"
#define OTHER "10.77.0.3"
#define TARGET6 "fd77::2"
#define JOURNAL "/tmp/chaos-t-net.journal"

/* Runs cmd through the shell; the test fails unless it exits 0. */
void sh(const char *cmd);
/* The whole output of cmd (malloc'd). */
char *capture(const char *cmd);

/* The topology (suite init and fini): the test process ends up in CLI. */
void topo_up(void);
void topo_down(void);
/* Takes the "before" picture of every tc object and link of both namespaces. */
void snapshot_before(void);
/* The test fails unless the picture now equals the one snapshot_before took. */
void assert_state_restored(void);

int64_t now_us(void);
/* Median RTT in ms of n sequential UDP echo probes (a lost probe: 1000 ms). */
double median_rtt_ms(const char *addr, int port, int prio, int n);
/* Sends n UDP probes to addr:port in paced bursts; the distinct replies. */
int replies(const char *addr, int port, int n);

/* The engine keeps pointing at the specs of its faults: they live here
 * until the rig closes. */
struct rig {
    struct loop *loop;
    struct engine *engine;
    struct fault_spec *specs[8];
    size_t n_specs;
};
void rig_open(struct rig *r);
/* Reverts what is left (every revert must succeed) and frees the rig. */
void rig_close(struct rig *r);
/* Applies a network fault given as JSON target and params; the test fails unless it applies. */
struct engine_fault *apply(struct rig *r, const char *target, const char *params);
/* Like apply, but the apply must fail; its error goes to msg. */
void apply_fails(struct rig *r, const char *target, const char *params, char *msg, size_t size);
/* Applies a network fault (target and params as JSON) in a forked engine
 * that journals to journal and is then SIGKILLed, as a crash leaves it: the
 * fault stays installed and journalled, unreverted. */
void apply_then_crash(const char *journal, const char *target, const char *params);
/* Reverts f; the test fails unless that succeeds. */
void revert(struct rig *r, struct engine_fault *f);

#endif
