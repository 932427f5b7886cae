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
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        /* Every prefix too: truncated input is the most common malformation. */
        for (size_t k = 0; k < n; k += 7)
            LLVMFuzzerTestOneInput(buf, k);
    }
    printf("replayed %d inputs\n", argc - 1);
    return 0;
}
#endif
