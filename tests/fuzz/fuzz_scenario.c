/* Fuzz target for the scenario parser: untrusted JSON in, a scenario or a
 * precise error out, never a crash or a leak. With -DCHAOS_FUZZ=ON (clang)
 * it is a libFuzzer binary; otherwise a small driver replays the files (and
 * the .json files of the folders) given on the command line, which ctest runs
 * over the scenario corpus under the sanitizer build. */
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
#include <dirent.h>
#include <sys/stat.h>
#include "fuzz_replay.h"

/* Replays path, or every .json file in it when it is a folder: the
 * broken-scenario corpus is written into the build tree at build time, after
 * ctest's list of files was made. Returns the number of inputs, -1 on error. */
static int replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return fuzz_replay_file(path, 7, NULL) < 0 ? -1 : 1;
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort), count = 0;
    if (n < 0) {
        perror(path);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
        size_t len = strlen(names[i]->d_name);
        if (len > 5 && strcmp(names[i]->d_name + len - 5, ".json") == 0 && count >= 0)
            count = fuzz_replay_file(file, 7, NULL) < 0 ? -1 : count + 1;
        free(names[i]);
    }
    free(names);
    if (count == 0)
        fprintf(stderr, "%s: no .json file in the folder\n", path);
    return count > 0 ? count : -1;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n = replay_path(argv[i]);
        if (n < 0)
            return 1;
        total += n;
    }
    printf("replayed %d inputs\n", total);
    return 0;
}
#endif
