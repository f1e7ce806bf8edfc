/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Futex helpers: park a thread on a 32-bit atomic word until another thread
 * changes it and wakes it. Used by contexts and channels so that a blocked
 * thread costs nothing and a wake-up is one system call, and only when
 * someone actually sleeps.
 *
 * Memory ordering is carried by the atomic word itself (waker: store, then
 * wake; sleeper: load, then wait), so ThreadSanitizer sees the
 * happens-before edges through the atomics; the system calls only park.
 *
 * Thread: any.
 */
#ifndef SLUICE_ENGINE_FUTEX_INTERNAL_H
#define SLUICE_ENGINE_FUTEX_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * Sleep while *word == expected, until woken, or until the absolute
 * CLOCK_MONOTONIC time deadline_ns passes (INT64_MAX: no deadline). May
 * return spuriously: callers re-check their condition in a loop.
 */
static inline void sl__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                                  int64_t deadline_ns)
{
    struct timespec ts;
    struct timespec *tsp = NULL;

    if (deadline_ns != INT64_MAX) {
        if (deadline_ns < 0)
            deadline_ns = 0;
        ts.tv_sec = (time_t)(deadline_ns / 1000000000);
        ts.tv_nsec = (long)(deadline_ns % 1000000000);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute timeout on CLOCK_MONOTONIC. */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE, expected,
            tsp, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* Wake up to n threads sleeping on word (INT_MAX: all). */
static inline void sl__futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

#endif
