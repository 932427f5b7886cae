/* The replay driver of the fuzz targets when built without libFuzzer: runs
 * LLVMFuzzerTestOneInput over a file and every prefix of it, so ctest checks
 * each target's corpus under the sanitizer build. */
#ifndef CHAOS_FUZZ_REPLAY_H
#define CHAOS_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The whole file, then its prefixes of 0, step, 2*step, ... bytes:
 * truncated input is the most common malformation. after_whole (may be
 * NULL) is called between the two, for a verdict on the whole file. -1
 * (after perror) when the file cannot be read; files over 1 MiB are cut
 * there. */
static inline int fuzz_replay_file(const char *path, size_t step,
                                   void (*after_whole)(const char *path))
{
    static uint8_t buf[1 << 20];
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    if (after_whole)
        after_whole(path);
    for (size_t k = 0; k < n; k += step)
        LLVMFuzzerTestOneInput(buf, k);
    return 0;
}

#endif
