/* Reading a scenario file: bounded in size, NULs named by field, then
 * scenario_parse; and the warnings `chaos validate` gives valid files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "scenario.h"
#include "util.h"

/* Bounds every string a scenario can hold (probe bodies, regexes, argv) at
 * once: a scenario is a page of JSON, not a data file. */
#define SCENARIO_FILE_MAX (1024 * 1024)

/* What people see for a path: stdin has no name of its own. */
static const char *shown_path(const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return "<stdin>";
    return path;
}

/* Reads all of f, up to SCENARIO_FILE_MAX bytes, into a malloc'd buffer. */
static int read_bounded(FILE *f, const char *shown, char **out, size_t *len,
                        struct chaos_err *err)
{
    size_t cap = 65536, used = 0;
    _cleanup_free_ char *buf = malloc(cap);
    if (!buf)
        return chaos_err_set(err, ENOMEM, "%s: out of memory", shown);
    for (;;) {
        if (used == cap) {
            if (cap > SCENARIO_FILE_MAX)
                return chaos_err_set(err, EFBIG,
                                     "%s: larger than %d KiB; a scenario is a page of JSON, not "
                                     "a data file",
                                     shown, SCENARIO_FILE_MAX / 1024);
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                return chaos_err_set(err, ENOMEM, "%s: out of memory", shown);
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (n == 0)
            break;
    }
    if (ferror(f))
        return chaos_err_set(err, EIO, "%s: cannot read: %s", shown, strerror(errno));
    if (used > SCENARIO_FILE_MAX)
        return chaos_err_set(err, EFBIG,
                             "%s: larger than %d KiB; a scenario is a page of JSON, not a data "
                             "file",
                             shown, SCENARIO_FILE_MAX / 1024);
    *out = steal_pointer(&buf);
    *len = used;
    return 0;
}

/* jansson refuses "\u0000" with its own wording and no field; the document
 * is read with NULs allowed and the first string holding one is named here. */
static bool find_nul(const json_t *v, char *path, size_t size)
{
    size_t len = strlen(path);
    if (json_is_string(v))
        return strlen(json_string_value(v)) != json_string_length(v);
    if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach ((json_t *)v, key, item) {
            snprintf(path + len, size - len, "%s%s", len ? "." : "", key);
            if (find_nul(item, path, size))
                return true;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach (v, i, item) {
            snprintf(path + len, size - len, "[%zu]", i);
            if (find_nul(item, path, size))
                return true;
        }
    }
    path[len] = '\0';
    return false;
}

int scenario_load(const char *path, struct scenario **out, struct chaos_err *err)
{
    *out = NULL;
    bool from_stdin = strcmp(path, "-") == 0;
    const char *shown = shown_path(path);
    /* A pipe (`<(generate)`) is read like stdin; its size is bounded below. */
    int fd = from_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return chaos_err_set(err, errno, "%s: cannot open: %s", shown, strerror(errno));
    struct stat st;
    if (!from_stdin && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return chaos_err_set(err, EISDIR, "%s: is a directory, not a scenario file", shown);
    }
    FILE *f = from_stdin ? stdin : fdopen(fd, "r");
    if (!f) {
        int e = errno;
        close(fd);
        return chaos_err_set(err, e, "%s: cannot open: %s", shown, strerror(e));
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = read_bounded(f, shown, &text, &len, err);
    if (!from_stdin)
        fclose(f);
    if (r < 0)
        return r;
    json_error_t jerr;
    _cleanup_json_ json_t *root =
        json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root)
        return chaos_err_set(err, EINVAL, "%s:%d:%d: %s", shown, jerr.line, jerr.column, jerr.text);
    char where[512] = "";
    if (find_nul(root, where, sizeof where))
        return chaos_err_set(err, EINVAL,
                             "%s: %s: contains a NUL character (\\u0000), which no field allows",
                             shown, where[0] ? where : "(top level)");
    return scenario_parse(root, path, out, err);
}

bool scenario_warning(const struct scenario *s, char *buf, size_t size)
{
    if (s->n_faults && !s->n_steady && !s->n_expect) {
        snprintf(buf, size,
                 "no steady_state or expect checks: the faults run and are reverted, but "
                 "nothing is checked, and the verdict will say so");
        return true;
    }
    return false;
}

