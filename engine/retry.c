/*
 * Exponential backoff with jitter, and a retry loop built on it.
 */
#include "sluice/retry.h"

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>

#include "sluice/error.h"

/* Upper bound for a delay when the policy has no cap: about 73 years. */
#define DELAY_MAX_NS (INT64_MAX / 4)

/* splitmix64: any state is a valid seed, including 0. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

void sl_retry_policy_default(sl_retry_policy *p)
{
    p->max_attempts = 3;
    p->initial_ns = 100 * SL_NS_PER_MS;
    p->max_backoff_ns = 10 * SL_NS_PER_S;
    p->multiplier = SL_RETRY_DEFAULT_MULTIPLIER;
    p->jitter = 0.2;
    p->seed = 0;
}

int sl_retry_policy_check(const sl_retry_policy *p)
{
    if (p == NULL || p->max_attempts < 1 || p->initial_ns < 0 ||
        p->max_backoff_ns < 0)
        return SL_EINVAL;
    if (p->max_backoff_ns > 0 && p->max_backoff_ns < p->initial_ns)
        return SL_EINVAL;
    if (p->multiplier != 0 && !(isfinite(p->multiplier) && p->multiplier >= 1))
        return SL_EINVAL;
    if (!(p->jitter >= 0 && p->jitter <= 1))   /* also refuses NaN */
        return SL_EINVAL;
    return 0;
}

static double policy_cap(const sl_retry_policy *p)
{
    return p->max_backoff_ns > 0 ? (double)p->max_backoff_ns
                                 : (double)DELAY_MAX_NS;
}

int64_t sl_backoff_delay(const sl_retry_policy *p, int attempt, uint64_t *rng)
{
    if (attempt < 1)
        attempt = 1;
    double mult = p->multiplier != 0 ? p->multiplier : SL_RETRY_DEFAULT_MULTIPLIER;
    double cap = policy_cap(p);
    double base = (double)p->initial_ns * pow(mult, (double)(attempt - 1));
    if (!(base < cap))          /* also catches inf */
        base = cap;
    double d = base;
    if (p->jitter > 0)
        d = base * (1.0 + p->jitter * (2.0 * rng_unit(rng) - 1.0));
    if (d > cap)
        d = cap;
    if (d < 0)
        d = 0;
    return (int64_t)d;
}

/* Sleep ns on clock unless ctx is done; cancellation wins. */
static int sleep_ctx(const sl_clock *clock, sl_ctx *ctx, int64_t ns)
{
    if (ctx != NULL && sl_ctx_is_done(ctx))
        return sl_ctx_err(ctx);
    if (ns <= 0)
        return 0;
    return sl_clock_sleep(clock, ctx, ns);
}

int sl_retry_sleep(const sl_retry_policy *p, const sl_clock *clock,
                   sl_ctx *ctx, int attempt, uint64_t *rng)
{
    return sleep_ctx(clock, ctx, sl_backoff_delay(p, attempt, rng));
}

/* A seed that differs between runs and between concurrent callers. */
static uint64_t fresh_seed(void)
{
    static _Atomic uint64_t counter;
    uint64_t s = (uint64_t)sl_clock_now(NULL) ^
                 (atomic_fetch_add(&counter, 1) * UINT64_C(0x9e3779b97f4a7c15));
    return rng_next(&s);
}

int sl_retry_run(const sl_retry_policy *p, const sl_clock *clock, sl_ctx *ctx,
                 sl_retry_fn fn, void *arg, int *attempts)
{
    int n = 0;
    int rc;
    if (fn == NULL || sl_retry_policy_check(p) != 0) {
        rc = SL_EINVAL;
        goto out;
    }
    uint64_t rng = p->seed != 0 ? p->seed : fresh_seed();
    for (;;) {
        if (ctx != NULL && sl_ctx_is_done(ctx)) {
            rc = sl_ctx_err(ctx);
            break;
        }
        sl_retry_hint hint = {0};
        n++;
        rc = fn(arg, n, &hint);
        if (rc >= 0) {
            rc = 0;
            break;
        }
        if (!(rc == SL_EAGAIN || hint.retryable) || n >= p->max_attempts)
            break;
        int64_t delay;
        if (hint.retry_after_ns > 0) {
            double cap = policy_cap(p);
            delay = (double)hint.retry_after_ns > cap ? (int64_t)cap
                                                      : hint.retry_after_ns;
        } else {
            delay = sl_backoff_delay(p, n, &rng);
        }
        int src = sleep_ctx(clock, ctx, delay);
        if (src != 0) {
            rc = src;
            break;
        }
    }
out:
    if (attempts != NULL)
        *attempts = n;
    return rc;
}
