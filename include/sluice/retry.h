/*
 * Retry with exponential backoff and jitter.
 *
 * After the k-th failed attempt (k = 1, 2, ...) the next attempt waits
 *
 *     base(k) = min(initial * multiplier^(k-1), max_backoff)
 *     delay   = min(base(k) * (1 + jitter * u), max_backoff),  u uniform in [-1, 1)
 *
 * so every delay lies in [base*(1-jitter), base*(1+jitter)], capped at
 * max_backoff. u comes from a caller-held generator state (splitmix64): the
 * same seed gives the same delays. Waits go through an sl_clock and honour
 * a context.
 *
 * Thread: any; a policy is read-only, an rng state belongs to its caller.
 */
#ifndef SLUICE_RETRY_H
#define SLUICE_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "context.h"

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_retry_policy {
    int max_attempts;        /* tries in all, the first included; >= 1 */
    int64_t initial_ns;      /* base delay after the first failure; >= 0 */
    int64_t max_backoff_ns;  /* cap on every delay; 0 = no cap */
    double multiplier;       /* growth per attempt, >= 1; 0 = default 2 */
    double jitter;           /* fraction in [0, 1]; 0 = exact delays */
    uint64_t seed;           /* sl_retry_run's jitter seed; 0 = a fresh one
                                per run, so concurrent retriers spread out */
} sl_retry_policy;

#define SL_RETRY_DEFAULT_MULTIPLIER 2.0

/*
 * A reasonable policy: 3 attempts, 100 ms initial, 10 s cap, multiplier 2,
 * jitter 0.2. Thread: any.
 */
void sl_retry_policy_default(sl_retry_policy *p);

/*
 * 0 if p is usable, else SL_EINVAL (max_attempts < 1, negative times,
 * multiplier in (0, 1) or not finite, jitter outside [0, 1], or a cap below
 * the initial delay). Thread: any.
 */
int sl_retry_policy_check(const sl_retry_policy *p);

/*
 * The delay in ns before the attempt that follows the attempt-th failure
 * (attempt >= 1; values < 1 read as 1). Advances *rng once when jitter > 0;
 * *rng may hold any seed. Deterministic for a given policy, attempt and rng
 * state. p must pass sl_retry_policy_check. Thread: any.
 */
int64_t sl_backoff_delay(const sl_retry_policy *p, int attempt, uint64_t *rng);

/*
 * Sleep sl_backoff_delay(p, attempt, rng) on clock (NULL: real), ending
 * early if ctx (may be NULL) is done. Returns 0 after the full sleep, else
 * the context's error. Thread: any.
 */
int sl_retry_sleep(const sl_retry_policy *p, const sl_clock *clock,
                   sl_ctx *ctx, int attempt, uint64_t *rng);

/* What an attempt tells sl_retry_run besides its result. */
typedef struct sl_retry_hint {
    bool retryable;          /* set to ask for another attempt after a failure */
    int64_t retry_after_ns;  /* > 0: wait this long instead of the backoff
                                (e.g. HTTP Retry-After), capped at max_backoff */
} sl_retry_hint;

/*
 * One attempt. attempt counts from 1. Return 0 (or any value >= 0) on
 * success, or a negative code; the failure is retried when the code is
 * SL_EAGAIN or the attempt set hint->retryable. hint is zeroed before each
 * call.
 */
typedef int (*sl_retry_fn)(void *arg, int attempt, sl_retry_hint *hint);

/*
 * Call fn until it succeeds, fails without asking for a retry, or has been
 * called p->max_attempts times, sleeping on clock (NULL: real) between
 * attempts as sl_retry_sleep does, with the jitter generator seeded from
 * p->seed. ctx (may be NULL) is checked before every attempt and
 * interrupts the sleeps.
 *
 * Returns 0 when an attempt succeeded; the last attempt's code when
 * attempts ran out or the failure was not retryable; the context's error
 * when it was done before an attempt or during a sleep; SL_EINVAL for a
 * bad policy or a NULL fn. *attempts (may be NULL) is set to the number
 * of times fn was called.
 * Thread: the caller's; fn runs on it.
 */
int sl_retry_run(const sl_retry_policy *p, const sl_clock *clock, sl_ctx *ctx,
                 sl_retry_fn fn, void *arg, int *attempts);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
