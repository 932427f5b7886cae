#include "agent_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "duration.h"
#include "jsonv.h"
#include "util.h"

/* Bounds on what comes from the file: a policy list, a PEM file, a token. */
#define POLICY_MAX_ENTRIES 1024
#define CONFIG_FILE_MAX (1 << 20)
#define PEM_MAX (1 << 20)
#define TOKEN_MAX 4096

static const char *const cat_keys[POLICY_N_CATS] = {"interfaces", "netns", "process_names",
                                                    "cgroups", "units"};

/* Reads a whole regular file of at most max bytes into a NUL-terminated
 * string. st (may be NULL) gets its stat. */
static int read_small_file(const char *path, size_t max, char **out, struct stat *st_out,
                           const char *field, struct chaos_err *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return chaos_err_set(err, errno, "%s: cannot open %s: %s", field, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0)
        return chaos_err_set(err, errno, "%s: %s: %s", field, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return chaos_err_set(err, EINVAL, "%s: %s is not a regular file", field, path);
    if ((uint64_t)st.st_size > max)
        return chaos_err_set(err, EFBIG, "%s: %s is larger than %zu bytes", field, path, max);
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return chaos_err_set(err, ENOMEM, "out of memory");
    size_t off = 0;
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            free(buf);
            return chaos_err_set(err, e, "%s: reading %s: %s", field, path, strerror(e));
        }
        off += (size_t)n;
    }
    buf[off] = '\0';
    if (st_out)
        *st_out = st;
    *out = buf;
    return 0;
}

/* "host:port", "[v6]:port". Plain HTTP is allowed only on loopback, so the
 * caller needs to know whether the address is one. */
static int parse_listen(const char *s, struct agent_config *c, struct chaos_err *err)
{
    char host[80];
    const char *colon;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
            return chaos_err_set(err, EINVAL, "listen: '%s' is not [IPv6]:port", s);
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host)
            return chaos_err_set(err, EINVAL, "listen: '%s' is not host:port (e.g. 127.0.0.1:7433)",
                                 s);
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
        return chaos_err_set(err, EINVAL, "listen: '%s': the port must be 1-65535", s);
    memset(&c->addr, 0, sizeof c->addr);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&c->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        c->addrlen = sizeof *in4;
        c->loopback = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        c->addrlen = sizeof *in6;
        c->loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    } else {
        return chaos_err_set(err, EINVAL,
                             "listen: '%s' is not an IP address (names are not resolved: give "
                             "the address to bind)",
                             host);
    }
    snprintf(c->listen, sizeof c->listen, "%s", s);
    return 0;
}

static int parse_token(const char *path, struct agent_config *c, struct chaos_err *err)
{
    char *buf = NULL;
    struct stat st;
    int r = read_small_file(path, TOKEN_MAX, &buf, &st, "token_file", err);
    if (r < 0)
        return r;
    /* Anyone on the machine could read the key to every fault we inject. */
    if (st.st_mode & S_IROTH) {
        explicit_bzero(buf, strlen(buf));
        free(buf);
        return chaos_err_set(err, EPERM,
                             "token_file: %s is world-readable (mode %03o): chmod 600 it", path,
                             (unsigned)(st.st_mode & 0777));
    }
    size_t len = strlen(buf), start = 0;
    while (len && strchr(" \t\r\n", buf[len - 1]))
        buf[--len] = '\0';
    while (start < len && strchr(" \t\r\n", buf[start]))
        start++;
    bool printable = true;
    for (size_t i = start; i < len; i++)
        if ((unsigned char)buf[i] <= ' ' || (unsigned char)buf[i] >= 127)
            printable = false;
    if (len - start < 16 || !printable) {
        explicit_bzero(buf, len);
        free(buf);
        return chaos_err_set(err, EINVAL,
                             "token_file: %s must hold one token of at least 16 printable "
                             "characters without spaces",
                             path);
    }
    memmove(buf, buf + start, len - start + 1);
    c->token = buf;
    return 0;
}

static int parse_tls(const json_t *tls, struct agent_config *c, struct chaos_err *err)
{
    static const char *const keys[] = {"cert", "key", NULL};
    const char *cert = NULL, *key = NULL;
    int r;
    if ((r = jv_expect_object(tls, "tls", err)) < 0 ||
        (r = jv_only_keys(tls, "tls", keys, err)) < 0 ||
        (r = jv_string(tls, "tls", "cert", true, &cert, err)) < 0 ||
        (r = jv_string(tls, "tls", "key", true, &key, err)) < 0)
        return r;
    if ((r = read_small_file(cert, PEM_MAX, &c->tls_cert_pem, NULL, "tls.cert", err)) < 0 ||
        (r = read_small_file(key, PEM_MAX, &c->tls_key_pem, NULL, "tls.key", err)) < 0)
        return r;
    if (!strstr(c->tls_cert_pem, "-----BEGIN CERTIFICATE-----"))
        return chaos_err_set(err, EINVAL, "tls.cert: %s holds no PEM certificate", cert);
    if (!strstr(c->tls_key_pem, "PRIVATE KEY-----"))
        return chaos_err_set(err, EINVAL, "tls.key: %s holds no PEM private key", key);
    return 0;
}

static int parse_list(const json_t *obj, const char *ctx, const char *key,
                      struct agent_policy_list *l, struct chaos_err *err)
{
    const json_t *arr = NULL;
    int r = jv_array(obj, ctx, key, false, 0, POLICY_MAX_ENTRIES, &arr, err);
    if (r <= 0)
        return r;
    l->set = true;
    l->v = calloc(json_array_size(arr) + 1, sizeof *l->v);
    if (!l->v)
        return chaos_err_set(err, ENOMEM, "out of memory");
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        char path[256];
        snprintf(path, sizeof path, "%s.%s[%zu]", ctx, key, i);
        if (!json_is_string(e) || json_string_length(e) == 0 || json_string_length(e) > 4096)
            return chaos_err_set(err, EINVAL, "%s: must be a non-empty string", path);
        if (!(l->v[l->n++] = strdup(json_string_value(e))))
            return chaos_err_set(err, ENOMEM, "out of memory");
    }
    return 1;
}

/* "50%" or 50: a loss percentage in [0, 100]. */
static int parse_max_loss(const json_t *pol, double *out, struct chaos_err *err)
{
    const json_t *v = json_object_get(pol, "max_loss");
    if (!v)
        return 0;
    double d;
    if (json_is_number(v)) {
        d = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || strcmp(end, "%") != 0)
            return chaos_err_set(err, EINVAL,
                                 "policy.max_loss: '%s' is not a percentage like \"50%%\"", s);
    } else {
        return chaos_err_set(err, EINVAL,
                             "policy.max_loss: must be a percentage like \"50%%\", not %s",
                             jv_type_name(v));
    }
    if (!(d >= 0 && d <= 100))
        return chaos_err_set(err, ERANGE, "policy.max_loss: %g is out of range (0-100%%)", d);
    *out = d;
    return 1;
}

static int parse_policy(const json_t *pol, struct agent_policy *p, struct chaos_err *err)
{
    static const char *const keys[] = {"allow", "deny", "max_duration", "max_loss", NULL};
    int r;
    if ((r = jv_expect_object(pol, "policy", err)) < 0 ||
        (r = jv_only_keys(pol, "policy", keys, err)) < 0)
        return r;
    static const char *const list_keys[] = {"interfaces", "netns", "process_names",
                                            "cgroups",    "units", NULL};
    for (int side = 0; side < 2; side++) {
        const char *name = side ? "deny" : "allow";
        char ctx[32];
        snprintf(ctx, sizeof ctx, "policy.%s", name);
        const json_t *o = json_object_get(pol, name);
        if (!o)
            continue;
        if ((r = jv_expect_object(o, ctx, err)) < 0 ||
            (r = jv_only_keys(o, ctx, list_keys, err)) < 0)
            return r;
        for (int k = 0; k < POLICY_N_CATS; k++)
            if ((r = parse_list(o, ctx, cat_keys[k], side ? &p->deny[k] : &p->allow[k], err)) < 0)
                return r;
    }
    if ((r = jv_duration(pol, "policy", "max_duration", false, &p->max_duration_ms, err)) < 0)
        return r;
    if (r > 0 && p->max_duration_ms <= 0)
        return chaos_err_set(err, EINVAL, "policy.max_duration: must be above 0");
    return parse_max_loss(pol, &p->max_loss, err) < 0 ? -EINVAL : 0;
}

int agent_config_parse(const json_t *root, struct agent_config *c, struct chaos_err *err)
{
    static const char *const keys[] = {"listen", "tls",    "token_file", "journal",
                                       "lease",  "policy", NULL};
    memset(c, 0, sizeof *c);
    c->policy.max_loss = 100;
    c->lease_ms = 15000;
    const char *listen = "127.0.0.1:7433", *token_file = NULL,
               *journal = "/var/lib/chaos-agent/journal.jsonl";
    int r;
    if ((r = jv_expect_object(root, "", err)) < 0 || (r = jv_only_keys(root, "", keys, err)) < 0 ||
        (r = jv_string(root, "", "listen", false, &listen, err)) < 0 ||
        (r = parse_listen(listen, c, err)) < 0 ||
        (r = jv_string(root, "", "token_file", true, &token_file, err)) < 0 ||
        (r = jv_string(root, "", "journal", false, &journal, err)) < 0 ||
        (r = jv_duration(root, "", "lease", false, &c->lease_ms, err)) < 0)
        goto fail;
    if (c->lease_ms < 100) {
        r = chaos_err_set(err, EINVAL, "lease: must be at least 100ms");
        goto fail;
    }
    if (journal[0] != '/') {
        r = chaos_err_set(err, EINVAL, "journal: '%s' must be an absolute path", journal);
        goto fail;
    }
    const json_t *tls = json_object_get(root, "tls");
    if (tls && (r = parse_tls(tls, c, err)) < 0)
        goto fail;
    if (!tls && !c->loopback) {
        r = chaos_err_set(err, EINVAL,
                          "listen: %s is not a loopback address: plain HTTP would send the token "
                          "in clear text; configure \"tls\" (cert and key)",
                          listen);
        goto fail;
    }
    const json_t *pol = json_object_get(root, "policy");
    if (pol && (r = parse_policy(pol, &c->policy, err)) < 0)
        goto fail;
    if ((r = parse_token(token_file, c, err)) < 0)
        goto fail;
    if (!(c->journal = strdup(journal))) {
        r = chaos_err_set(err, ENOMEM, "out of memory");
        goto fail;
    }
    return 0;
fail:
    chaos_err_prefix(err, "config");
    agent_config_clear(c);
    return r < 0 ? r : -EINVAL;
}

int agent_config_load(const char *path, struct agent_config *out, struct chaos_err *err)
{
    _cleanup_free_ char *text = NULL;
    memset(out, 0, sizeof *out);
    int r = read_small_file(path, CONFIG_FILE_MAX, &text, NULL, "config", err);
    if (r < 0)
        return r;
    json_error_t jerr;
    _cleanup_json_ json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return chaos_err_set(err, EINVAL, "config: %s: line %d column %d: %s", path, jerr.line,
                             jerr.column, jerr.text);
    return agent_config_parse(root, out, err);
}

static void list_clear(struct agent_policy_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void agent_config_clear(struct agent_config *c)
{
    if (!c)
        return;
    if (c->token) {
        explicit_bzero(c->token, strlen(c->token));
        free(c->token);
    }
    if (c->tls_key_pem) {
        explicit_bzero(c->tls_key_pem, strlen(c->tls_key_pem));
        free(c->tls_key_pem);
    }
    free(c->tls_cert_pem);
    free(c->journal);
    for (int k = 0; k < POLICY_N_CATS; k++) {
        list_clear(&c->policy.allow[k]);
        list_clear(&c->policy.deny[k]);
    }
    memset(c, 0, sizeof *c);
}
