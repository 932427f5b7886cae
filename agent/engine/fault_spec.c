/* Fault specs, the one validation entry point, and the helpers kinds use. */
#include "fault_spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fault.h"
#include "journal.h"

/* The rule every kind shares: a lasting fault needs a duration above 0 (the
 * engine reverts it when it ends), a one-off action takes none. It lives
 * here alone; the kinds say why in info, for the message. */
static int check_duration(const struct fault_info *info, const char *ctx, int64_t duration_ms,
                          struct chaos_err *err)
{
    if (info->lasting && duration_ms < 0)
        return chaos_err_set(err, EINVAL, "%s: duration: required for %s", ctx,
                             info->needs_duration ? info->needs_duration
                                                  : "this fault (it lasts until it is reverted)");
    if (info->lasting && duration_ms == 0)
        return chaos_err_set(err, EINVAL, "%s: duration: must be more than 0 for %s", ctx,
                             info->needs_duration ? info->needs_duration : "this fault");
    if (!info->lasting && duration_ms >= 0)
        return chaos_err_set(err, EINVAL, "%s: duration: %s", ctx,
                             info->no_duration ? info->no_duration
                                               : "not allowed: this fault is a one-off action "
                                                 "that cannot be undone, so it has no duration");
    return 0;
}

int fault_spec_parse(const char *kind, const json_t *target, const json_t *params, const char *ctx,
                     int64_t duration_ms, struct fault_spec **out, struct chaos_err *err)
{
    const struct fault_ops *ops = fault_ops_find(kind);
    if (!ops)
        return chaos_err_set(err, EINVAL, "%s: kind: unknown fault kind '%s' (available: %s)", ctx,
                             kind, fault_kinds_list());
    struct fault_spec *fs = calloc(1, sizeof *fs);
    if (!fs)
        return chaos_err_set(err, ENOMEM, "out of memory");
    fs->ops = ops;
    fs->duration_ms = duration_ms < 0 ? -1 : duration_ms;
    int r = ops->parse(target, params, ctx, &fs->spec, &fs->info, err);
    if (r == 0)
        r = check_duration(&fs->info, ctx, duration_ms, err);
    if (r < 0) {
        fault_spec_free(fs);
        return r;
    }
    *out = fs;
    return 0;
}

void fault_spec_free(struct fault_spec *fs)
{
    if (!fs)
        return;
    if (fs->spec)
        fs->ops->free_spec(fs->spec);
    free(fs);
}

const struct fault_info *fault_spec_info(const struct fault_spec *fs)
{
    return &fs->info;
}

const char *fault_spec_kind(const struct fault_spec *fs)
{
    return fs->ops->kind;
}

int64_t fault_spec_duration_ms(const struct fault_spec *fs)
{
    return fs->duration_ms;
}

void fault_spec_plan(const struct fault_spec *fs, char *buf, size_t size)
{
    if (!size)
        return;
    buf[0] = '\0';
    if (fs && fs->spec && fs->ops->plan)
        fs->ops->plan(fs->spec, buf, size);
}

void fault_spec_preview(const struct fault_spec *fs, char *buf, size_t size)
{
    if (!size)
        return;
    buf[0] = '\0';
    if (fs && fs->spec && fs->ops->preview)
        fs->ops->preview(fs->spec, buf, size);
}

bool fault_kind_known(const char *kind)
{
    return kind && fault_ops_find(kind) != NULL;
}

int fault_journal_undo(const struct fault_env *env, const json_t *undo, struct chaos_err *err)
{
    if (!env->journal)
        return chaos_err_set(err, EINVAL, "no journal: refusing to apply a lasting fault");
    return journal_record_apply(env->journal, env->fault_id, env->kind, undo, env->deadline_ms,
                                err);
}

void fault_field_ctx(char *buf, size_t size, const char *ctx, const char *field)
{
    bool has_ctx = ctx && *ctx;
    snprintf(buf, size, "%s%s%s", has_ctx ? ctx : "", has_ctx ? ": " : "", field);
}

bool fault_env_is_protected(const struct fault_env *env, pid_t pid)
{
    for (size_t i = 0; i < env->n_protected; i++)
        if (env->protected_pids[i] == pid)
            return true;
    return false;
}
