/* Fuzz target for tc_snapshot_from_json, the reader of the tc configuration
 * a network fault keeps in its journal and hand-off file to put back after a
 * crash. Those files are ours, but a damaged or edited one must give a
 * precise error, never a crash, a leak, or a snapshot that restore would
 * send to the kernel unchecked.
 *
 * Input: netlink messages, each as a 2-byte little-endian length and that
 * many bytes; the target turns them into the journal's JSON form (an array
 * of hex strings) so the fuzzer mutates the binary messages, not hex text.
 * An accepted snapshot must survive a round trip: to_json, from_json again,
 * and the same JSON out.
 *
 * With -DCHAOS_FUZZ=ON (clang) this is a libFuzzer binary; otherwise a small
 * driver replays the files given (and every prefix of them), which ctest runs
 * over tests/fuzz/corpus-tc under the sanitizer build. The corpus seeds are
 * snapshots of real trees (htb with u32 hash tables and mirred, fq_codel,
 * tbf, prio, netem, pie, cake, sfb, hfsc, multiq, mqprio) taken inside the
 * VM (Debian's kernel under QEMU) by tests/fuzz/make-tc-seeds.sh, with
 * `--take NETNS_PATH IFNAME` (the input format of a snapshot of that
 * interface, on stdout); `--from-json FILE` turns a journal's snapshot array
 * into the input format. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "nl_tc.h"
#include "tc_snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool last_accepted; /* the last input was read as a snapshot */

static json_t *messages_to_json(const uint8_t *data, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    json_t *arr = json_array();
    char *buf = malloc(2 * 65536 + 1);
    if (!arr || !buf)
        abort();
    size_t off = 0;
    while (off + 2 <= size) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;
        off += 2;
        if (len > size - off)
            len = size - off;
        for (size_t i = 0; i < len; i++) {
            buf[2 * i] = hex[data[off + i] >> 4];
            buf[2 * i + 1] = hex[data[off + i] & 15];
        }
        buf[2 * len] = '\0';
        if (json_array_append_new(arr, json_string(buf)) < 0)
            abort();
        off += len;
    }
    free(buf);
    return arr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    last_accepted = false;
    json_t *in = messages_to_json(data, size);
    struct tc_snapshot *s = NULL;
    struct chaos_err err = {0};
    int r = tc_snapshot_from_json(in, &s, &err);
    json_decref(in);
    if (r < 0) {
        /* Damage is -EINVAL, a tree take would have refused -EOPNOTSUPP;
         * either way the error says why. */
        if ((r != -EINVAL && r != -EOPNOTSUPP && r != -ENOMEM) || !err.msg[0] || s)
            abort();
        return 0;
    }
    json_t *out = tc_snapshot_to_json(s);
    if (!out)
        abort();
    struct tc_snapshot *again = NULL;
    if (tc_snapshot_from_json(out, &again, &err) < 0) {
        fprintf(stderr, "an accepted snapshot does not read back: %s\n", err.msg);
        abort();
    }
    json_t *out2 = tc_snapshot_to_json(again);
    if (!out2 || !json_equal(out, out2) ||
        tc_snapshot_count(s) != tc_snapshot_count(again)) {
        fprintf(stderr, "a snapshot changed over a round trip\n");
        abort();
    }
    json_decref(out);
    json_decref(out2);
    tc_snapshot_free(s);
    tc_snapshot_free(again);
    last_accepted = true;
    return 0;
}

#ifndef CHAOS_LIBFUZZER
#include "fuzz_replay.h"

/* Writes a snapshot array (as in a journal) in the input format to stdout;
 * what names it in errors. */
static int emit_messages(const json_t *arr, const char *what)
{
    if (!json_is_array(arr)) {
        fprintf(stderr, "%s: not a JSON array\n", what);
        return 1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *h = json_string_value(v);
        size_t n = h ? strlen(h) / 2 : 0;
        if (!h || strlen(h) % 2 || n > 65535) {
            fprintf(stderr, "%s: item %zu is not a hex string under 64 KiB\n", what, i);
            return 1;
        }
        putchar((int)(n & 0xff));
        putchar((int)(n >> 8));
        for (size_t k = 0; k < n; k++) {
            unsigned int byte;
            if (sscanf(h + 2 * k, "%2x", &byte) != 1) {
                fprintf(stderr, "%s: item %zu: bad hex\n", what, i);
                return 1;
            }
            putchar((int)byte);
        }
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

/* --from-json FILE: a journal's snapshot array, in the input format. */
static int from_json(const char *path)
{
    json_error_t jerr;
    json_t *arr = json_load_file(path, 0, &jerr);
    if (!arr) {
        fprintf(stderr, "%s: %s\n", path, jerr.text);
        return 1;
    }
    int r = emit_messages(arr, path);
    json_decref(arr);
    return r;
}

/* --take NETNS_PATH IFNAME: a real snapshot, in the input format. */
static int take(const char *ns_path, const char *ifname)
{
    struct chaos_err err = {0};
    struct nl_tc *t = NULL;
    struct tc_snapshot *s = NULL;
    int ifindex = 0, r = nltc_open(ns_path, NULL, &t, &err);
    if (r == 0)
        r = nltc_link_index(t, ifname, &ifindex, &err);
    if (r == 0)
        r = tc_snapshot_take(t, ifindex, ifname, &s, &err);
    nltc_close(t);
    if (r < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    json_t *arr = tc_snapshot_to_json(s);
    tc_snapshot_free(s);
    r = arr ? emit_messages(arr, ifname) : 1;
    json_decref(arr);
    return r;
}

/* Whether the whole file was read as a snapshot: a seed must be, a found
 * crash need not. */
static void say_verdict(const char *path)
{
    printf("%s: %s\n", path, last_accepted ? "accepted" : "refused");
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--from-json") == 0)
        return from_json(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--take") == 0)
        return take(argv[2], argv[3]);
    /* Every prefix too, at a step that also cuts messages in half. */
    for (int i = 1; i < argc; i++)
        if (fuzz_replay_file(argv[i], 5, say_verdict) < 0)
            return 1;
    printf("replayed %d inputs\n", argc - 1);
    return 0;
}
#endif
