/* The broken-scenario table (tests/scenarios/broken.tsv, format in its
 * header): reading it and materialising each case as a scenario file. Shared
 * by the unit test, which checks every case's error, and make_broken_corpus,
 * which writes the cases into the build tree for the fuzz replay and the
 * shell tests. Needs only jansson. */
#ifndef CHAOS_BROKEN_CORPUS_H
#define CHAOS_BROKEN_CORPUS_H

#include <stddef.h>

struct broken_case {
    char *name;     /* the case's file is NAME.json */
    char *base;     /* a template (templates/BASE.json), or "raw" (raw/NAME.json) */
    char *field;    /* where the error points: the text after "FILE: " (or "FILE:") */
    char *fragment; /* how the message after "FIELD: " begins */
    char *change;   /* the edits of the template; "-" for a raw case */
    int line;       /* in the table, for messages */
};

struct broken_table {
    struct broken_case *cases;
    size_t n;
};

/* Reads the table at path. Every line is checked for shape (five
 * tab-separated columns, a unique name, a known kind of base), not the
 * edits, which broken_case_write() applies. -1 with a message naming the
 * line in err on failure; *t is then empty. */
int broken_table_read(const char *path, struct broken_table *t, char *err, size_t size);
/* Frees what broken_table_read() allocated; accepts an empty table. */
void broken_table_free(struct broken_table *t);

/* Writes case c as out_dir/NAME.json: for a raw case a copy of
 * src_dir/raw/NAME.json, otherwise src_dir/templates/BASE.json with the
 * edits applied in order. An edit that fails (a path that does not exist, a
 * set that changes nothing, a syntax error) is -1 with a message naming the
 * table line in err, and nothing is written. */
int broken_case_write(const struct broken_case *c, const char *src_dir, const char *out_dir,
                      char *err, size_t size);

#endif
