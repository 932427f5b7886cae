/* make_broken_corpus TABLE SRC_DIR OUT_DIR: writes every case of the
 * broken-scenario table as OUT_DIR/NAME.json, with OUT_DIR/NAME.expect
 * holding the line its error must contain ("FIELD: FRAGMENT"), for the fuzz
 * replay and the shell tests. The build runs it into the build tree; files
 * of cases no longer in the table are removed first. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broken_corpus.h"

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

/* Removes the NAME.json and NAME.expect files a previous run left. */
static int clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)))
        if (has_suffix(e->d_name, ".json") || has_suffix(e->d_name, ".expect")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) < 0) {
                closedir(d);
                return -1;
            }
        }
    closedir(d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: make_broken_corpus TABLE SRC_DIR OUT_DIR\n");
        return 2;
    }
    const char *table = argv[1], *src = argv[2], *out = argv[3];
    if ((mkdir(out, 0755) < 0 && errno != EEXIST) || clear_dir(out) < 0) {
        fprintf(stderr, "make_broken_corpus: %s: %s\n", out, strerror(errno));
        return 1;
    }
    struct broken_table t;
    char err[1024];
    if (broken_table_read(table, &t, err, sizeof err) < 0) {
        fprintf(stderr, "make_broken_corpus: %s: %s\n", table, err);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < t.n && rc == 0; i++) {
        const struct broken_case *c = &t.cases[i];
        if (broken_case_write(c, src, out, err, sizeof err) < 0) {
            fprintf(stderr, "make_broken_corpus: %s: %s\n", table, err);
            rc = 1;
            break;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.expect", out, c->name);
        FILE *f = fopen(path, "w");
        int w = f ? fprintf(f, "%s: %s\n", c->field, c->fragment) : -1;
        if (f && fclose(f) != 0)
            w = -1;
        if (w < 0) {
            fprintf(stderr, "make_broken_corpus: %s: %s\n", path, strerror(errno));
            rc = 1;
        }
    }
    if (rc == 0)
        printf("make_broken_corpus: %zu cases in %s\n", t.n, out);
    broken_table_free(&t);
    return rc;
}
