#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct watch {
    int fd;
    loop_fd_cb cb;
    void *arg;
    bool dead; /* removed while the current epoll batch still refers to it */
    bool urgent; /* dispatched before the other fds of a batch (loop_set_urgent) */
    struct watch *next;
};

struct timer {
    uint64_t id;
    int64_t at_ms;
    loop_timer_cb cb;
    void *arg;
    struct timer *next; /* sorted by at_ms, then id */
};

struct loop {
    int epfd;
    int tfd;
    struct watch *watches;
    struct timer *timers;
    uint64_t next_id;
    unsigned fail_timers; /* test hook: loop_fail_next_timers() */
    int arm_error;        /* a timerfd_settime that failed outside loop_add_timer */
    bool stop;
    bool in_dispatch;
};

int64_t loop_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t loop_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_now_ms(void)
{
    return loop_now_us() / 1000;
}

struct loop *loop_new(void)
{
    struct loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (l->epfd < 0 || l->tfd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev) < 0)
        goto fail;
    l->next_id = 1;
    return l;
fail: {
    int saved = errno;
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->tfd >= 0)
        close(l->tfd);
    free(l);
    errno = saved;
    return NULL;
}
}

static void reap_watches(struct loop *l)
{
    struct watch **pp = &l->watches;
    while (*pp) {
        if ((*pp)->dead) {
            struct watch *w = *pp;
            *pp = w->next;
            free(w);
        } else {
            pp = &(*pp)->next;
        }
    }
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    for (struct watch *w = l->watches, *n; w; w = n) {
        n = w->next;
        free(w);
    }
    for (struct timer *t = l->timers, *n; t; t = n) {
        n = t->next;
        free(t);
    }
    close(l->epfd);
    close(l->tfd);
    free(l);
}

static struct watch *find_watch(struct loop *l, int fd)
{
    for (struct watch *w = l->watches; w; w = w->next)
        if (w->fd == fd && !w->dead)
            return w;
    return NULL;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
    if (find_watch(l, fd))
        return -EEXIST;
    struct watch *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    *w = (struct watch){.fd = fd, .cb = cb, .arg = arg, .next = l->watches};
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int r = -errno;
        free(w);
        return r;
    }
    l->watches = w;
    return 0;
}

int loop_set_urgent(struct loop *l, int fd)
{
    struct watch *w = find_watch(l, fd);
    if (!w)
        return -ENOENT;
    w->urgent = true;
    return 0;
}

int loop_mod_fd(struct loop *l, int fd, uint32_t events)
{
    struct watch *w = find_watch(l, fd);
    if (!w)
        return -ENOENT;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void loop_del_fd(struct loop *l, int fd)
{
    struct watch *w = find_watch(l, fd);
    if (!w)
        return;
    /* The fd may already be closed by its owner; EBADF/ENOENT are fine then. */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->dead = true;
    if (!l->in_dispatch)
        reap_watches(l);
}

/* Returns 0, or -errno when the timerfd cannot be armed (no timer would fire). */
static int arm_timerfd(struct loop *l)
{
    struct itimerspec its = {0};
    if (l->timers) {
        int64_t at = l->timers->at_ms;
        if (at <= 0)
            at = 1; /* an all-zero it_value would disarm the timer */
        its.it_value.tv_sec = at / 1000;
        its.it_value.tv_nsec = (at % 1000) * 1000000;
    }
    return timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ? -errno : 0;
}

/* A re-arm that fails after the timer list changed leaves timers that would
 * never fire: loop_run ends with that error rather than wait forever. */
static void rearm_or_fail(struct loop *l)
{
    int r = arm_timerfd(l);
    if (r < 0 && !l->arm_error)
        l->arm_error = r;
}

void loop_fail_next_timers(struct loop *l, unsigned n)
{
    l->fail_timers = n;
}

uint64_t loop_add_timer(struct loop *l, int64_t at_ms, loop_timer_cb cb, void *arg)
{
    if (l->fail_timers) {
        l->fail_timers--;
        errno = ENOMEM;
        return 0;
    }
    struct timer *t = calloc(1, sizeof *t);
    if (!t)
        return 0;
    *t = (struct timer){.id = l->next_id++, .at_ms = at_ms, .cb = cb, .arg = arg};
    struct timer **pp = &l->timers;
    while (*pp && (*pp)->at_ms <= at_ms)
        pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
    if (l->timers == t) {
        int r = arm_timerfd(l);
        if (r < 0) {
            l->timers = t->next;
            free(t);
            rearm_or_fail(l); /* back to the previous earliest timer */
            errno = -r;
            return 0;
        }
    }
    return t->id;
}

void loop_cancel_timer(struct loop *l, uint64_t id)
{
    for (struct timer **pp = &l->timers; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct timer *t = *pp;
            bool was_first = t == l->timers;
            *pp = t->next;
            free(t);
            if (was_first)
                rearm_or_fail(l);
            return;
        }
    }
}

static void run_due_timers(struct loop *l)
{
    uint64_t expirations;
    while (read(l->tfd, &expirations, sizeof expirations) > 0)
        ;
    int64_t now = loop_now_ms();
    /* Only timers due now; timers added by callbacks for "now" run next round. */
    while (l->timers && l->timers->at_ms <= now && !l->stop) {
        struct timer *t = l->timers;
        l->timers = t->next;
        loop_timer_cb cb = t->cb;
        void *arg = t->arg;
        free(t);
        cb(l, arg);
    }
    rearm_or_fail(l);
}

int loop_run(struct loop *l)
{
    l->stop = false;
    while (!l->stop) {
        if (l->arm_error)
            return l->arm_error;
        struct epoll_event evs[32];
        int n = epoll_wait(l->epfd, evs, 32, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        l->in_dispatch = true;
        bool timers_due = false;
        /* Two passes: urgent fds first, then the rest in epoll's order. */
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < n && !l->stop; i++) {
                struct watch *w = evs[i].data.ptr;
                if (!w) {
                    timers_due = true;
                    continue;
                }
                if (!w->dead && w->urgent == (pass == 0))
                    w->cb(l, w->fd, evs[i].events, w->arg);
            }
        l->in_dispatch = false;
        reap_watches(l);
        if (timers_due && !l->stop)
            run_due_timers(l);
    }
    return 0;
}

void loop_stop(struct loop *l)
{
    l->stop = true;
}
