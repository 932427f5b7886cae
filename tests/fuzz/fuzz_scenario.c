/* Fuzz target for the scenario parser: untrusted JSON in, a scenario or a
 * precise error out, never a crash or a leak. With -DCHAOS_FUZZ=ON (clang)
 * it is a libFuzzer binary; otherwise a small driver replays the files given
 * on the command line, which ctest runs over the scenario corpus under the
 * sanitizer build. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return 0;
    struct scenario *s = NULL;
    struct chaos_err err = {0};
    if (scenario_parse(root, "fuzz.json", &s, &err) == 0)
        scenario_free(s);
    else if (!err.msg[0])
        abort(); /* every rejection must say why */
    json_decref(root);
    return 0;
}

#ifndef CHAOS_LIBFUZZER
#include "fuzz_replay.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (fuzz_replay_file(argv[i], 7, NULL) < 0)
            return 1;
    printf("replayed %d inputs\n", argc - 1);
    return 0;
}
#endif
