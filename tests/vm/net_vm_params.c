/* Every netem parameter reaches Debian's kernel as given: the request is
 * built by hand (netem_build_request on tc_msg's message builder, only the
 * attributes that are set, as iproute2's q_netem does), so the kernel's own
 * view, read back with `tc -j`, is the proof. Part of the test_net_vm binary
 * (the runner and the topology are test_net_vm.c's); suite netparams. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net_vm.h"

TestSuite(netparams, .init = topo_up, .fini = topo_down, .timeout = 120);

#define SCOPE "{\"netns\":\"" CLI "\",\"interface\":\"" DEV "\",\"dst\":\"" TARGET "\"}"

/* The options of our netem (handle ca10:) as tc -j shows them. */
static json_t *netem_options(void)
{
    char *out = capture("tc -n " CLI " -j qdisc show dev " DEV);
    json_error_t e;
    json_t *all = json_loads(out, 0, &e);
    cr_assert_not_null(all, "tc -j qdisc show: %s\n%s", e.text, out);
    free(out);
    size_t i;
    json_t *q;
    json_array_foreach(all, i, q)
    {
        const char *h = json_string_value(json_object_get(q, "handle"));
        if (h && strcmp(h, "ca10:") == 0) {
            json_t *o = json_incref(json_object_get(q, "options"));
            json_decref(all);
            cr_assert_not_null(o, "netem ca10: has no options");
            return o;
        }
    }
    cr_assert(0, "no netem ca10: in %s", json_dumps(all, 0));
    return NULL;
}

/* o.a.b as a number; the test fails when it is missing. */
static double num(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(json_object_get(o, a), b);
    cr_assert(json_is_number(v), "no %s.%s in %s", a, b, json_dumps(o, 0));
    return json_number_value(v);
}

Test(netparams, every_param_reaches_the_kernel)
{
    snapshot_before();
    struct rig r;
    rig_open(&r);
    struct engine_fault *f =
        apply(&r, SCOPE,
              "{\"delay\":\"100ms\",\"jitter\":\"10ms\",\"correlation\":25,"
              "\"distribution\":\"normal\",\"loss\":5,\"loss_correlation\":20,"
              "\"duplicate\":2,\"duplicate_correlation\":50,\"corrupt\":3,"
              "\"corrupt_correlation\":40,\"reorder\":4,\"reorder_correlation\":30,"
              "\"rate\":\"5mbit\",\"limit\":321}");
    json_t *o = netem_options();
    cr_assert_eq(json_integer_value(json_object_get(o, "limit")), 321);
    cr_assert_float_eq(num(o, "delay", "delay"), 0.1, 1e-6);
    cr_assert_float_eq(num(o, "delay", "jitter"), 0.01, 1e-6);
    cr_assert_float_eq(num(o, "delay", "correlation"), 0.25, 1e-4);
    cr_assert_float_eq(num(o, "loss-random", "loss"), 0.05, 1e-4);
    cr_assert_float_eq(num(o, "loss-random", "correlation"), 0.20, 1e-4);
    cr_assert_float_eq(num(o, "duplicate", "duplicate"), 0.02, 1e-4);
    cr_assert_float_eq(num(o, "duplicate", "correlation"), 0.50, 1e-4);
    cr_assert_float_eq(num(o, "corrupt", "corrupt"), 0.03, 1e-4);
    cr_assert_float_eq(num(o, "corrupt", "correlation"), 0.40, 1e-4);
    cr_assert_float_eq(num(o, "reorder", "reorder"), 0.04, 1e-4);
    cr_assert_float_eq(num(o, "reorder", "correlation"), 0.30, 1e-4);
    /* netem reorders only with a gap; without one the reorder is void. */
    cr_assert_eq(json_integer_value(json_object_get(o, "gap")), 1);
    /* tc -j prints the rate in bytes per second: 5 mbit/s. */
    cr_assert_float_eq(num(o, "rate", "rate"), 625000, 0.5);
    json_decref(o);
    revert(&r, f);

    /* The Gilbert-Elliott model instead of random loss. */
    f = apply(&r, SCOPE,
              "{\"delay\":\"1ms\",\"gilbert_elliott\":{\"p\":1,\"r\":10,\"loss_in_bad\":70,"
              "\"loss_in_good\":0.1}}");
    o = netem_options();
    cr_assert_float_eq(num(o, "loss-gemodel", "p"), 0.01, 1e-4);
    cr_assert_float_eq(num(o, "loss-gemodel", "r"), 0.10, 1e-4);
    cr_assert_float_eq(num(o, "loss-gemodel", "1-h"), 0.70, 1e-4);
    cr_assert_float_eq(num(o, "loss-gemodel", "1-k"), 0.001, 1e-5);
    cr_assert(!json_object_get(o, "loss-random"), "random loss next to the model: %s",
              json_dumps(o, 0));
    json_decref(o);
    revert(&r, f);

    /* A rate above 4 GB/s needs the 64-bit attribute. */
    f = apply(&r, SCOPE, "{\"rate\":\"40gbit\"}");
    o = netem_options();
    cr_assert_float_eq(num(o, "rate", "rate"), 5e9, 0.5);
    cr_assert(!json_object_get(o, "delay"), "a delay nobody asked for: %s", json_dumps(o, 0));
    json_decref(o);
    revert(&r, f);

    /* A partition is 100% loss and nothing else. */
    f = apply(&r, SCOPE, "{\"partition\":true}");
    o = netem_options();
    cr_assert_float_eq(num(o, "loss-random", "loss"), 1.0, 1e-6);
    cr_assert(!json_object_get(o, "delay") && !json_object_get(o, "rate"),
              "a partition with more than loss: %s", json_dumps(o, 0));
    json_decref(o);
    revert(&r, f);

    rig_close(&r);
    assert_state_restored();
}
