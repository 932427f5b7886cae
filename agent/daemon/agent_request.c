#include "agent_request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "jsonv.h"
#include "util.h"

/* Parses body as one JSON object; duplicate keys are errors (which one
 * counts would be a guess). */
static int load_object(const char *body, size_t len, json_t **out, struct chaos_err *err)
{
    if (len > AGENT_BODY_MAX)
        return chaos_err_set(err, EFBIG, "body: larger than %d bytes", AGENT_BODY_MAX);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return chaos_err_set(err, EINVAL, "body: invalid JSON at line %d column %d: %s", jerr.line,
                             jerr.column, jerr.text);
    if (!json_is_object(root)) {
        int r = chaos_err_set(err, EINVAL, "body: must be an object, not %s", jv_type_name(root));
        json_decref(root);
        return r;
    }
    *out = root;
    return 0;
}

int agent_request_check_id(const char *id, const char *field, struct chaos_err *err)
{
    size_t n = strlen(id);
    if (n == 0 || n > AGENT_ID_MAX)
        return chaos_err_set(err, EINVAL, "%s: must be 1-%d characters", field, AGENT_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= ' ' || c >= 127 || c == '"' || c == '\'' || c == '\\')
            return chaos_err_set(
                err, EINVAL, "%s: may hold only printable ASCII without spaces or quotes", field);
    }
    return 0;
}

static int dup_string(const char *s, char **out, struct chaos_err *err)
{
    if (!(*out = strdup(s)))
        return chaos_err_set(err, ENOMEM, "out of memory");
    return 0;
}

int agent_request_parse_fault(const char *body, size_t len, struct agent_fault_req *out,
                              struct chaos_err *err)
{
    static const char *const keys[] = {"name",     "kind",       "target", "params",
                                       "duration", "controller", NULL};
    memset(out, 0, sizeof *out);
    out->duration_ms = -1;
    _cleanup_json_ json_t *root = NULL;
    int r = load_object(body, len, &root, err);
    if (r < 0)
        return r;
    const char *name = NULL, *kind = NULL, *controller = NULL;
    if ((r = jv_only_keys(root, "", keys, err)) < 0 ||
        (r = jv_string(root, "", "name", true, &name, err)) < 0 ||
        (r = jv_string(root, "", "kind", true, &kind, err)) < 0 ||
        (r = jv_string(root, "", "controller", false, &controller, err)) < 0 ||
        (r = jv_duration(root, "", "duration", false, &out->duration_ms, err)) < 0)
        goto fail;
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > AGENT_NAME_MAX ||
        nlen != json_string_length(json_object_get(root, "name"))) {
        r = chaos_err_set(err, EINVAL, "name: must be 1-%d characters without NUL", AGENT_NAME_MAX);
        goto fail;
    }
    if (controller && (r = agent_request_check_id(controller, "controller", err)) < 0)
        goto fail;
    if (!fault_kind_known(kind)) {
        r = chaos_err_set(err, EINVAL, "kind: unknown kind '%.64s' (known: %s)", kind,
                          fault_kinds_list());
        goto fail;
    }
    out->target = json_incref(json_object_get(root, "target"));
    out->params = json_incref(json_object_get(root, "params"));
    if ((r = fault_spec_parse(kind, out->target, out->params, "fault", out->duration_ms, &out->spec,
                              err)) < 0)
        goto fail;
    if ((r = dup_string(name, &out->name, err)) < 0 ||
        (r = dup_string(kind, &out->kind, err)) < 0 ||
        (controller && (r = dup_string(controller, &out->controller, err)) < 0))
        goto fail;
    return 0;
fail:
    agent_fault_req_clear(out, 1);
    return r < 0 ? r : -EINVAL;
}

void agent_fault_req_clear(struct agent_fault_req *req, int free_spec)
{
    free(req->name);
    free(req->kind);
    free(req->controller);
    json_decref(req->target);
    json_decref(req->params);
    if (free_spec)
        fault_spec_free(req->spec);
    memset(req, 0, sizeof *req);
    req->duration_ms = -1;
}

int agent_request_parse_lease(const char *body, size_t len, char **controller,
                              struct chaos_err *err)
{
    static const char *const keys[] = {"controller", NULL};
    _cleanup_json_ json_t *root = NULL;
    int r = load_object(body, len, &root, err);
    if (r < 0)
        return r;
    const char *c = NULL;
    if ((r = jv_only_keys(root, "", keys, err)) < 0 ||
        (r = jv_string(root, "", "controller", true, &c, err)) < 0 ||
        (r = agent_request_check_id(c, "controller", err)) < 0)
        return r;
    return dup_string(c, controller, err);
}
