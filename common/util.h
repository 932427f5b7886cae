/* Small helpers for ownership: cleanup attributes and steal_pointer(). */
#ifndef CHAOS_UTIL_H
#define CHAOS_UTIL_H

#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
#include <jansson.h>

static inline void freep(void *p)
{
    free(*(void **)p);
}

static inline void closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))
/* json_decrefp() comes with jansson (>= 2.9). */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

/* Hands ownership on: returns *pp and sets it to NULL so cleanup skips it. */
static inline void *steal_ptr(void *pp)
{
    void **p = pp;
    void *v = *p;
    *p = NULL;
    return v;
}
#define steal_pointer(pp) steal_ptr(pp)

static inline int steal_fd(int *fd)
{
    int v = *fd;
    *fd = -1;
    return v;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The one spelling of "this result is deliberately ignored" in agent/,
 * controller/ and common/ (tests may keep their own). Allowed only where a
 * failure changes nothing the caller could act on, or is already reported
 * another way (an error recorded and emitted by the callee, a best-effort
 * cleanup on a path that is failing anyway); a comment at the call says
 * which. Never on the safety path: a revert, a journal record or a timer
 * that a fault's end depends on is handled, not ignored. The `!` also
 * silences warn_unused_result, which a plain (void) cast does not in GCC. */
#define IGNORE_RESULT(expr) ((void)!(expr))

#endif
