/* One event loop per process: epoll for file descriptors, one timerfd armed to
 * the earliest timer. Callbacks run on the loop's thread; nothing needs locks.
 *
 * Times are milliseconds on CLOCK_MONOTONIC (loop_now_ms()). */
#ifndef CHAOS_LOOP_H
#define CHAOS_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

struct loop;

typedef void (*loop_fd_cb)(struct loop *loop, int fd, uint32_t events, void *arg);
typedef void (*loop_timer_cb)(struct loop *loop, void *arg);

/* Monotonic clock in milliseconds. */
int64_t loop_now_ms(void);
/* Monotonic clock in microseconds (for latency measurements). */
int64_t loop_now_us(void);

/* Wall-clock time (CLOCK_REALTIME) in milliseconds since the epoch: for
 * journals and reports, never for scheduling. */
int64_t loop_unix_ms(void);

/* Returns NULL with errno set on failure. */
struct loop *loop_new(void);
/* Frees the loop and its pending timers; does not close watched fds. NULL is fine. */
void loop_free(struct loop *loop);

/* Watches fd for events (EPOLLIN, EPOLLOUT...). One watch per fd. */
int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_cb cb, void *arg)
    __attribute__((warn_unused_result));
int loop_mod_fd(struct loop *loop, int fd, uint32_t events);
/* Makes fd's callback run before those of the other fds that are ready in
 * the same turn: for news that must be heard before the I/O it may have
 * caused (the engine's queued events: a REVERTED must close a "during"
 * window before the replies the revert let through are read). 0 or -ENOENT. */
int loop_set_urgent(struct loop *loop, int fd) __attribute__((warn_unused_result));
/* Stops watching fd; safe to call from inside fd's own callback. */
void loop_del_fd(struct loop *loop, int fd);

/* Calls cb once at monotonic time at_ms (or at once when it has passed).
 * Returns a timer id > 0, or 0 with errno set when the timer cannot be
 * armed (ENOMEM, or the timerfd refused it); the timer does not exist then.
 * Every caller must handle 0: a timer that silently never fires is how a
 * fault would outlive its duration. */
uint64_t loop_add_timer(struct loop *loop, int64_t at_ms, loop_timer_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Cancels a timer that has not fired; unknown or fired ids are ignored. */
void loop_cancel_timer(struct loop *loop, uint64_t id);

/* Test hook, compiled in always and called only by tests: the next n
 * loop_add_timer() calls fail with ENOMEM, as an allocation failure would. */
void loop_fail_next_timers(struct loop *loop, unsigned n);

/* Runs until loop_stop(). Returns 0, or a negative errno if epoll fails or
 * the timerfd could not be re-armed (pending timers would never fire). */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

#endif
