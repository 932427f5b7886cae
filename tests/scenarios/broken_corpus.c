/* The broken-scenario table: reading its lines and applying a line's edits
 * to its template. The format is described in tests/scenarios/broken.tsv. */
#include "broken_corpus.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#define NCOLUMNS 5
/* A repeated value ("x" * 129) stays far below the parser's 1 MiB bound. */
#define REPEAT_MAX_BYTES (256 * 1024)

static int fail(char *err, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return false;
    return true;
}

/* ---- the table ------------------------------------------------------------ */

static void case_free(struct broken_case *c)
{
    free(c->name);
    free(c->base);
    free(c->field);
    free(c->fragment);
    free(c->change);
}

void broken_table_free(struct broken_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        case_free(&t->cases[i]);
    free(t->cases);
    t->cases = NULL;
    t->n = 0;
}

/* Splits line (modified in place) into its columns; c takes copies. */
static int parse_line(char *line, int lineno, struct broken_case *c, char *err, size_t size)
{
    char *col[NCOLUMNS];
    size_t n = 0;
    for (char *p = line;;) {
        char *tab = strchr(p, '\t');
        if (n == NCOLUMNS)
            return fail(err, size, "line %d: more than %d tab-separated columns", lineno, NCOLUMNS);
        col[n++] = p;
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    if (n != NCOLUMNS)
        return fail(err, size,
                    "line %d: %zu columns, want %d: name, base, field, fragment, change "
                    "(separated by tabs)",
                    lineno, n, NCOLUMNS);
    if (!is_name(col[0]))
        return fail(err, size, "line %d: name '%s': use lowercase letters, digits and '-'", lineno,
                    col[0]);
    if (!is_name(col[1]))
        return fail(err, size, "line %d (%s): base '%s' is not a template name or raw", lineno,
                    col[0], col[1]);
    for (size_t i = 2; i < NCOLUMNS; i++)
        if (!col[i][0])
            return fail(err, size, "line %d (%s): column %zu is empty", lineno, col[0], i + 1);
    bool raw = strcmp(col[1], "raw") == 0, nochange = strcmp(col[4], "-") == 0;
    if (raw != nochange)
        return fail(err, size, "line %d (%s): %s", lineno, col[0],
                    raw ? "a raw case has no change: write '-'"
                        : "a case of a template needs a change ('-' is for raw cases)");
    *c = (struct broken_case){.name = strdup(col[0]),
                              .base = strdup(col[1]),
                              .field = strdup(col[2]),
                              .fragment = strdup(col[3]),
                              .change = strdup(col[4]),
                              .line = lineno};
    if (!c->name || !c->base || !c->field || !c->fragment || !c->change) {
        case_free(c);
        return fail(err, size, "out of memory");
    }
    return 0;
}

int broken_table_read(const char *path, struct broken_table *t, char *err, size_t size)
{
    *t = (struct broken_table){0};
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, size, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t len;
    int lineno = 0, r = 0;
    while (r == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (t->n == alloc) {
            alloc = alloc ? alloc * 2 : 128;
            struct broken_case *nc = realloc(t->cases, alloc * sizeof *nc);
            if (!nc) {
                r = fail(err, size, "out of memory");
                break;
            }
            t->cases = nc;
        }
        struct broken_case *c = &t->cases[t->n];
        r = parse_line(line, lineno, c, err, size);
        if (r < 0)
            break;
        t->n++;
        for (size_t i = 0; i + 1 < t->n; i++)
            if (strcmp(t->cases[i].name, c->name) == 0)
                r = fail(err, size, "line %d: %s is also the name of line %d", lineno, c->name,
                         t->cases[i].line);
    }
    free(line);
    fclose(f);
    if (r == 0 && t->n == 0)
        r = fail(err, size, "%s: no cases", path);
    if (r < 0)
        broken_table_free(t);
    return r;
}

/* ---- edits: JSON pointers (RFC 6901) into the template -------------------- */

/* The next reference token of *ptr (which starts at a '/'), unescaped into a
 * malloc'd string; *ptr moves past it. */
static char *next_token(const char **ptr)
{
    const char *s = *ptr + 1, *end = strchr(s, '/');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    char *tok = malloc(n + 1), *o = tok;
    if (!tok)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' && i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '1')) {
            *o++ = s[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    *ptr = s + n;
    return tok;
}

/* tok as an index of an array of size n: decimal, no leading zero, < n. */
static bool array_index(const char *tok, size_t n, size_t *out)
{
    if (!*tok || (tok[0] == '0' && tok[1]) || strspn(tok, "0123456789") != strlen(tok))
        return false;
    errno = 0;
    unsigned long long v = strtoull(tok, NULL, 10);
    if (errno || v >= n)
        return false;
    *out = (size_t)v;
    return true;
}

/* Finds the container that pointer's last token refers into; *last gets
 * that token (malloc'd). */
static int resolve_parent(json_t *doc, const char *pointer, json_t **parent, char **last, char *why,
                          size_t size)
{
    if (pointer[0] != '/')
        return fail(why, size, "'%s' is not a JSON pointer (it starts with '/')", pointer);
    const char *p = pointer;
    json_t *cur = doc;
    for (;;) {
        char *tok = next_token(&p);
        if (!tok)
            return fail(why, size, "out of memory");
        if (!*p) {
            *parent = cur;
            *last = tok;
            return 0;
        }
        json_t *next = NULL;
        size_t i;
        if (json_is_object(cur))
            next = json_object_get(cur, tok);
        else if (json_is_array(cur) && array_index(tok, json_array_size(cur), &i))
            next = json_array_get(cur, i);
        free(tok);
        if (!next)
            return fail(why, size, "%s: %.*s does not exist", pointer, (int)(p - pointer), pointer);
        cur = next;
    }
}

/* Sets pointer to value (stolen): replaces a member or an element, adds a
 * member, or appends to an array with the token "-". */
static int edit_set(json_t *doc, const char *pointer, json_t *value, char *why, size_t size)
{
    json_t *parent;
    char *last;
    if (resolve_parent(doc, pointer, &parent, &last, why, size) < 0) {
        json_decref(value);
        return -1;
    }
    json_t *old = NULL;
    size_t i = 0;
    int r = 0;
    if (json_is_object(parent)) {
        old = json_object_get(parent, last);
    } else if (json_is_array(parent)) {
        if (strcmp(last, "-") != 0 && !array_index(last, json_array_size(parent), &i))
            r = fail(why, size, "%s: no element %s (the array has %zu; '-' appends)", pointer, last,
                     json_array_size(parent));
        else if (strcmp(last, "-") != 0)
            old = json_array_get(parent, i);
    } else {
        r = fail(why, size, "%s: the parent is neither an object nor an array", pointer);
    }
    if (r == 0 && old && json_equal(old, value))
        r = fail(why, size, "%s: the value is already there: the edit changes nothing", pointer);
    if (r == 0) {
        if (json_is_object(parent))
            r = json_object_set_new(parent, last, value);
        else if (old)
            r = json_array_set_new(parent, i, value);
        else
            r = json_array_append_new(parent, value);
        value = NULL;
        if (r < 0)
            fail(why, size, "%s: cannot set it", pointer);
    }
    json_decref(value);
    free(last);
    return r;
}

static int edit_delete(json_t *doc, const char *pointer, char *why, size_t size)
{
    json_t *parent;
    char *last;
    if (resolve_parent(doc, pointer, &parent, &last, why, size) < 0)
        return -1;
    size_t i;
    int r;
    if (json_is_object(parent) && json_object_get(parent, last))
        r = json_object_del(parent, last);
    else if (json_is_array(parent) && array_index(last, json_array_size(parent), &i))
        r = json_array_remove(parent, i);
    else
        r = fail(why, size, "%s does not exist: nothing to delete", pointer);
    free(last);
    return r;
}

/* "VALUE * N": a string or the elements of an array, N times over. Steals v. */
static json_t *repeat(json_t *v, long n, char *why, size_t size)
{
    json_t *out = NULL;
    if (json_is_string(v)) {
        size_t len = json_string_length(v);
        if (len == 0 || (size_t)n > REPEAT_MAX_BYTES / len) {
            fail(why, size, "* %ld: the result would be empty or over %d bytes", n,
                 REPEAT_MAX_BYTES);
        } else {
            char *buf = malloc(len * (size_t)n);
            if (buf) {
                for (long k = 0; k < n; k++)
                    memcpy(buf + (size_t)k * len, json_string_value(v), len);
                out = json_stringn(buf, len * (size_t)n);
                free(buf);
            }
            if (!out)
                fail(why, size, "out of memory");
        }
    } else if (json_is_array(v)) {
        out = json_array();
        for (long k = 0; out && k < n; k++) {
            size_t i;
            json_t *item;
            json_array_foreach(v, i, item) if (json_array_append_new(out, json_deep_copy(item)) < 0)
            {
                json_decref(out);
                out = NULL;
                break;
            }
        }
        if (!out)
            fail(why, size, "out of memory");
    } else {
        fail(why, size, "only a string or an array can be repeated with '*'");
    }
    json_decref(v);
    return out;
}

/* The value of a set at *p: a JSON text, optionally "* N". */
static json_t *parse_value(const char **p, char *why, size_t size)
{
    json_error_t je;
    json_t *v =
        json_loadb(*p, strlen(*p), JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &je);
    if (!v) {
        fail(why, size, "the value is not JSON: %s", je.text);
        return NULL;
    }
    *p += je.position;
    *p += strspn(*p, " ");
    if (**p != '*')
        return v;
    (*p)++;
    char *end;
    errno = 0;
    long n = strtol(*p, &end, 10);
    if (end == *p || errno || n < 2 || n > 100000) {
        json_decref(v);
        fail(why, size, "'*' wants a count of 2-100000");
        return NULL;
    }
    *p = end;
    return repeat(v, n, why, size);
}

/* Applies every edit of change to doc, in order. */
static int apply_change(json_t *doc, const char *change, char *why, size_t size)
{
    const char *p = change;
    for (;;) {
        p += strspn(p, " ");
        size_t oplen = strcspn(p, " ");
        bool set = oplen == 3 && strncmp(p, "set", 3) == 0;
        bool del = oplen == 6 && strncmp(p, "delete", 6) == 0;
        if (!set && !del)
            return fail(why, size,
                        "'%.*s' is not an edit: write set POINTER VALUE or delete POINTER",
                        (int)oplen, p);
        p += oplen;
        p += strspn(p, " ");
        size_t plen = strcspn(p, " ;");
        char pointer[512];
        if (plen == 0 || plen >= sizeof pointer)
            return fail(why, size, "%s: wants a JSON pointer like /faults/0/name",
                        set ? "set" : "delete");
        memcpy(pointer, p, plen);
        pointer[plen] = '\0';
        p += plen;
        int r;
        if (set) {
            p += strspn(p, " ");
            char vwhy[256];
            json_t *v = parse_value(&p, vwhy, sizeof vwhy);
            if (!v)
                return fail(why, size, "set %s: %s", pointer, vwhy);
            r = edit_set(doc, pointer, v, why, size);
        } else {
            r = edit_delete(doc, pointer, why, size);
        }
        if (r < 0)
            return -1;
        p += strspn(p, " ");
        if (!*p)
            return 0;
        if (*p != ';')
            return fail(why, size, "after the edit of %s: want ';' or the end, not '%s'", pointer,
                        p);
        p++;
    }
}

/* ---- writing a case ------------------------------------------------------- */

static int copy_file(const char *from, const char *to, char *why, size_t size)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return fail(why, size, "%s: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    if (!out) {
        fail(why, size, "%s: %s", to, strerror(errno));
        fclose(in);
        return -1;
    }
    char buf[65536];
    size_t n;
    int r = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            r = fail(why, size, "%s: %s", to, strerror(errno));
    if (ferror(in))
        r = fail(why, size, "%s: read error", from);
    fclose(in);
    if (fclose(out) != 0 && r == 0)
        r = fail(why, size, "%s: %s", to, strerror(errno));
    return r;
}

int broken_case_write(const struct broken_case *c, const char *src_dir, const char *out_dir,
                      char *err, size_t size)
{
    char from[4096], to[4096], why[512];
    snprintf(to, sizeof to, "%s/%s.json", out_dir, c->name);
    int r;
    if (strcmp(c->base, "raw") == 0) {
        snprintf(from, sizeof from, "%s/raw/%s.json", src_dir, c->name);
        r = copy_file(from, to, why, sizeof why);
    } else {
        snprintf(from, sizeof from, "%s/templates/%s.json", src_dir, c->base);
        json_error_t je;
        json_t *doc = json_load_file(from, JSON_REJECT_DUPLICATES, &je);
        if (!doc) {
            r = fail(why, sizeof why, "%s:%d: %s", from, je.line, je.text);
        } else {
            r = apply_change(doc, c->change, why, sizeof why);
            if (r == 0 && json_dump_file(doc, to, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0)
                r = fail(why, sizeof why, "%s: cannot write it", to);
            json_decref(doc);
        }
    }
    if (r < 0)
        return fail(err, size, "line %d (%s): %s", c->line, c->name, why);
    return 0;
}
