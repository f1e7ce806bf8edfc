/*
 * Backoff delays and the retry loop, on a fake clock.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdatomic.h>

#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/retry.h"

#define MS SL_NS_PER_MS
#define S SL_NS_PER_S

static sl_fake_clock fc;

static void setup(void)
{
    sl_fake_clock_init(&fc, 0);
}

TestSuite(backoff, .init = setup);
TestSuite(retry, .init = setup);

static sl_retry_policy policy(int attempts, int64_t initial, int64_t max,
                              double mult, double jitter)
{
    sl_retry_policy p = {attempts, initial, max, mult, jitter, 0};
    return p;
}

static int64_t slept(void)
{
    return atomic_load(&fc.slept);
}

/* ------------------------------------------------------------------ */

Test(backoff, policy_check)
{
    sl_retry_policy p;
    sl_retry_policy_default(&p);
    cr_expect_eq(sl_retry_policy_check(&p), 0);
    cr_expect_eq(p.max_attempts, 3);
    cr_expect_eq(p.initial_ns, 100 * MS);
    cr_expect_eq(p.max_backoff_ns, 10 * S);
    cr_expect_eq(p.multiplier, 2.0);
    cr_expect_eq(p.jitter, 0.2);

    p = policy(1, 0, 0, 0, 0);
    cr_expect_eq(sl_retry_policy_check(&p), 0);
    p = policy(0, MS, S, 2, 0);
    cr_expect_eq(sl_retry_policy_check(&p), SL_EINVAL);
    p = policy(3, -1, S, 2, 0);
    cr_expect_eq(sl_retry_policy_check(&p), SL_EINVAL);
    p = policy(3, MS, -1, 2, 0);
    cr_expect_eq(sl_retry_policy_check(&p), SL_EINVAL);
    p = policy(3, S, MS, 2, 0);          /* cap below initial */
    cr_expect_eq(sl_retry_policy_check(&p), SL_EINVAL);
    p = policy(3, MS, S, 0.5, 0);
    cr_expect_eq(sl_retry_policy_check(&p), SL_EINVAL);
    p = policy(3, MS, S, INFINITY, 0);
    cr_expect_eq(sl_retry_policy_check(&p), SL_EINVAL);
    p = policy(3, MS, S, 2, 1.5);
    cr_expect_eq(sl_retry_policy_check(&p), SL_EINVAL);
    p = policy(3, MS, S, 2, -0.1);
    cr_expect_eq(sl_retry_policy_check(&p), SL_EINVAL);
    p = policy(3, MS, S, 2, NAN);
    cr_expect_eq(sl_retry_policy_check(&p), SL_EINVAL);
    cr_expect_eq(sl_retry_policy_check(NULL), SL_EINVAL);
}

Test(backoff, exact_sequence_without_jitter)
{
    sl_retry_policy p = policy(10, 100 * MS, S, 2, 0);
    uint64_t rng = 1;
    static const int64_t want[] = {100 * MS, 200 * MS, 400 * MS, 800 * MS,
                                   S, S, S};
    for (int k = 1; k <= 7; k++)
        cr_expect_eq(sl_backoff_delay(&p, k, &rng), want[k - 1], "attempt %d", k);
    cr_expect_eq(rng, 1);     /* no jitter draws nothing */
    cr_expect_eq(sl_backoff_delay(&p, 0, &rng), 100 * MS);
    cr_expect_eq(sl_backoff_delay(&p, 1000000, &rng), S);
}

Test(backoff, zero_multiplier_means_two)
{
    sl_retry_policy p = policy(10, 10 * MS, 0, 0, 0);
    uint64_t rng = 0;
    cr_expect_eq(sl_backoff_delay(&p, 1, &rng), 10 * MS);
    cr_expect_eq(sl_backoff_delay(&p, 2, &rng), 20 * MS);
    cr_expect_eq(sl_backoff_delay(&p, 4, &rng), 80 * MS);
    p.multiplier = 3;
    cr_expect_eq(sl_backoff_delay(&p, 3, &rng), 90 * MS);
    p.multiplier = 1;
    cr_expect_eq(sl_backoff_delay(&p, 30, &rng), 10 * MS);
}

Test(backoff, no_cap_does_not_overflow)
{
    sl_retry_policy p = policy(10, S, 0, 10, 0.5);
    uint64_t rng = 3;
    int64_t d = sl_backoff_delay(&p, 1000, &rng);
    cr_expect_gt(d, 0);
    cr_expect_leq(d, INT64_MAX / 4);
}

Test(backoff, jittered_delays_stay_in_bounds)
{
    sl_retry_policy p = policy(10, 100 * MS, 2 * S, 2, 0.25);
    for (uint64_t seed = 0; seed < 200; seed++) {
        uint64_t rng = seed;
        for (int k = 1; k <= 8; k++) {
            double base = fmin(100.0 * MS * pow(2, k - 1), 2.0 * S);
            int64_t d = sl_backoff_delay(&p, k, &rng);
            cr_assert_geq(d, (int64_t)floor(base * 0.75),
                          "seed %d attempt %d: %lld", (int)seed, k, (long long)d);
            cr_assert_leq(d, (int64_t)ceil(fmin(base * 1.25, 2.0 * S)),
                          "seed %d attempt %d: %lld", (int)seed, k, (long long)d);
        }
    }
}

Test(backoff, jitter_spreads_over_the_whole_range)
{
    sl_retry_policy p = policy(10, 1000 * MS, 0, 2, 0.5);
    uint64_t rng = 12345;
    int64_t lo = INT64_MAX, hi = 0;
    int below = 0;
    for (int i = 0; i < 2000; i++) {
        int64_t d = sl_backoff_delay(&p, 1, &rng);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        below += d < 1000 * MS;
    }
    cr_expect_geq(lo, 500 * MS);
    cr_expect_lt(lo, 520 * MS);
    cr_expect_lt(hi, 1500 * MS);
    cr_expect_gt(hi, 1480 * MS);
    cr_expect(below > 850 && below < 1150, "below %d", below);
}

Test(backoff, same_seed_same_delays)
{
    sl_retry_policy p = policy(10, 100 * MS, 10 * S, 2, 0.3);
    uint64_t a = 42, b = 42, c = 43;
    int same_as_c = 0;
    for (int k = 1; k <= 10; k++) {
        int64_t da = sl_backoff_delay(&p, k, &a);
        cr_expect_eq(da, sl_backoff_delay(&p, k, &b), "attempt %d", k);
        same_as_c += da == sl_backoff_delay(&p, k, &c);
    }
    cr_expect_eq(a, b);
    cr_expect_lt(same_as_c, 10);
}

Test(backoff, sleep_uses_the_clock)
{
    sl_retry_policy p = policy(5, 100 * MS, S, 2, 0);
    uint64_t rng = 0;
    cr_expect_eq(sl_retry_sleep(&p, &fc.clock, NULL, 3, &rng), 0);
    cr_expect_eq(slept(), 400 * MS);
    cr_expect_eq(sl_clock_now(&fc.clock), 400 * MS);

    sl_ctx *ctx = NULL;
    cr_assert_eq(sl_ctx_create(&ctx), 0);
    sl_ctx_cancel(ctx, SL_ECANCELED, "test");
    cr_expect_eq(sl_retry_sleep(&p, &fc.clock, ctx, 1, &rng), SL_ECANCELED);
    cr_expect_eq(slept(), 400 * MS);
    p.initial_ns = 0;
    cr_expect_eq(sl_retry_sleep(&p, &fc.clock, ctx, 1, &rng), SL_ECANCELED);
    sl_ctx_destroy(ctx);
}

/* ------------------------------------------------------------------ */

/* A scripted attempt function. */
typedef struct script {
    int results[16];          /* what attempt i (from 1) returns */
    bool retryable[16];       /* hint->retryable for attempt i */
    int64_t retry_after[16];  /* hint->retry_after_ns for attempt i */
    int calls;
    int64_t call_times[16];
    sl_ctx *cancel_on_call;   /* cancel this context during call cancel_at */
    int cancel_at;
} script;

static int scripted(void *arg, int attempt, sl_retry_hint *hint)
{
    script *s = arg;
    cr_assert_eq(hint->retryable, false);
    cr_assert_eq(hint->retry_after_ns, 0);
    s->calls++;
    cr_assert_eq(attempt, s->calls);
    s->call_times[attempt] = sl_clock_now(&fc.clock);
    if (s->cancel_on_call != NULL && attempt == s->cancel_at)
        sl_ctx_cancel(s->cancel_on_call, SL_ECANCELED, "stop");
    hint->retryable = s->retryable[attempt];
    hint->retry_after_ns = s->retry_after[attempt];
    return s->results[attempt];
}

Test(retry, succeeds_after_retryable_failures)
{
    sl_retry_policy p = policy(5, 100 * MS, S, 2, 0);
    script s = {.results = {0, SL_EAGAIN, SL_EAGAIN, 0}};
    int attempts = -1;
    cr_expect_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &s, &attempts), 0);
    cr_expect_eq(attempts, 3);
    cr_expect_eq(s.calls, 3);
    cr_expect_eq(s.call_times[1], 0);
    cr_expect_eq(s.call_times[2], 100 * MS);
    cr_expect_eq(s.call_times[3], 300 * MS);
    cr_expect_eq(slept(), 300 * MS);
}

Test(retry, gives_up_after_max_attempts)
{
    sl_retry_policy p = policy(4, 100 * MS, 250 * MS, 2, 0);
    script s = {.results = {0, SL_EAGAIN, SL_EAGAIN, SL_EAGAIN, SL_EAGAIN, 0}};
    int attempts = -1;
    cr_expect_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &s, &attempts),
                 SL_EAGAIN);
    cr_expect_eq(attempts, 4);
    /* 100 + 200 + 250 (capped); no sleep after the last attempt. */
    cr_expect_eq(slept(), 550 * MS);
}

Test(retry, one_attempt_never_sleeps)
{
    sl_retry_policy p = policy(1, 100 * MS, S, 2, 0);
    script s = {.results = {0, SL_EAGAIN}};
    int attempts = -1;
    cr_expect_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &s, &attempts),
                 SL_EAGAIN);
    cr_expect_eq(attempts, 1);
    cr_expect_eq(slept(), 0);
}

Test(retry, other_errors_are_final_unless_flagged)
{
    sl_retry_policy p = policy(5, 100 * MS, S, 2, 0);
    script s = {.results = {0, SL_EIO, 0}};
    int attempts = -1;
    cr_expect_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &s, &attempts),
                 SL_EIO);
    cr_expect_eq(attempts, 1);
    cr_expect_eq(slept(), 0);

    script t = {.results = {0, SL_EHTTP, SL_EHTTP, SL_EIO},
                .retryable = {false, true, true, false}};
    cr_expect_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &t, &attempts),
                 SL_EIO);
    cr_expect_eq(attempts, 3);
    cr_expect_eq(slept(), 300 * MS);
}

Test(retry, success_codes_are_zero)
{
    sl_retry_policy p = policy(3, MS, S, 2, 0);
    script s = {.results = {0, 7}};
    cr_expect_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &s, NULL), 0);
    cr_expect_eq(s.calls, 1);
}

Test(retry, retry_after_overrides_backoff_up_to_the_cap)
{
    sl_retry_policy p = policy(5, 100 * MS, S, 2, 0);
    script s = {.results = {0, SL_EHTTP, SL_EHTTP, SL_EHTTP, 0},
                .retryable = {false, true, true, true},
                .retry_after = {0, 250 * MS, 30 * S, 0}};
    int attempts = -1;
    cr_expect_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &s, &attempts), 0);
    cr_expect_eq(attempts, 4);
    cr_expect_eq(s.call_times[2], 250 * MS);
    cr_expect_eq(s.call_times[3], 250 * MS + S);         /* 30 s capped */
    cr_expect_eq(s.call_times[4], 250 * MS + S + 400 * MS); /* backoff(3) */
}

Test(retry, jitter_is_deterministic_for_a_seed)
{
    sl_retry_policy p = policy(6, 100 * MS, 5 * S, 2, 0.5);
    p.seed = 99;
    script a = {.results = {0, SL_EAGAIN, SL_EAGAIN, SL_EAGAIN, SL_EAGAIN, 0}};
    script b = a;
    cr_assert_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &a, NULL), 0);
    int64_t first = slept();
    sl_fake_clock_init(&fc, 0);
    cr_assert_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &b, NULL), 0);
    cr_expect_eq(slept(), first);
    for (int i = 1; i <= 5; i++)
        cr_expect_eq(a.call_times[i], b.call_times[i]);
    /* And the delays are the seed's backoff sequence. */
    uint64_t rng = 99;
    int64_t t = 0;
    for (int k = 1; k <= 4; k++) {
        t += sl_backoff_delay(&p, k, &rng);
        cr_expect_eq(b.call_times[k + 1], t, "attempt %d", k + 1);
    }
}

Test(retry, cancelled_context_stops_before_the_next_attempt)
{
    sl_ctx *ctx = NULL;
    cr_assert_eq(sl_ctx_create(&ctx), 0);
    sl_retry_policy p = policy(10, 100 * MS, S, 2, 0);
    script s = {.results = {0, SL_EAGAIN, SL_EAGAIN, SL_EAGAIN, 0},
                .cancel_on_call = ctx, .cancel_at = 2};
    int attempts = -1;
    cr_expect_eq(sl_retry_run(&p, &fc.clock, ctx, scripted, &s, &attempts),
                 SL_ECANCELED);
    cr_expect_eq(attempts, 2);
    cr_expect_eq(slept(), 100 * MS);

    /* Already done: fn is never called. */
    script t = {.results = {0, 0}};
    cr_expect_eq(sl_retry_run(&p, &fc.clock, ctx, scripted, &t, &attempts),
                 SL_ECANCELED);
    cr_expect_eq(attempts, 0);
    cr_expect_eq(t.calls, 0);
    sl_ctx_destroy(ctx);
}

Test(retry, deadline_code_is_passed_on)
{
    sl_ctx *ctx = NULL;
    cr_assert_eq(sl_ctx_create(&ctx), 0);
    sl_ctx_cancel(ctx, SL_EDEADLINE, "late");
    sl_retry_policy p = policy(3, MS, S, 2, 0);
    script s = {.results = {0, 0}};
    cr_expect_eq(sl_retry_run(&p, &fc.clock, ctx, scripted, &s, NULL),
                 SL_EDEADLINE);
    sl_ctx_destroy(ctx);
}

/* A clock whose sleeps are cut short by a cancel. */
typedef struct cancelling_clock {
    sl_clock clock;
    int sleeps;
} cancelling_clock;

static int64_t cc_now(const sl_clock *self)
{
    return sl_clock_now(&fc.clock);
}

static int cc_sleep(const sl_clock *self, sl_ctx *ctx, int64_t ns)
{
    cancelling_clock *cc = (cancelling_clock *)self;
    cc->sleeps++;
    sl_fake_clock_advance(&fc, ns / 2);
    sl_ctx_cancel(ctx, SL_ECANCELED, "interrupted");
    return sl_ctx_err(ctx);
}

Test(retry, cancel_during_backoff_sleep)
{
    cancelling_clock cc = {{cc_now, cc_sleep}, 0};
    sl_ctx *ctx = NULL;
    cr_assert_eq(sl_ctx_create(&ctx), 0);
    sl_retry_policy p = policy(5, 100 * MS, S, 2, 0);
    script s = {.results = {0, SL_EAGAIN, 0}};
    int attempts = -1;
    cr_expect_eq(sl_retry_run(&p, &cc.clock, ctx, scripted, &s, &attempts),
                 SL_ECANCELED);
    cr_expect_eq(attempts, 1);
    cr_expect_eq(cc.sleeps, 1);
    sl_ctx_destroy(ctx);
}

Test(retry, bad_arguments)
{
    sl_retry_policy p = policy(0, MS, S, 2, 0);
    script s = {.results = {0, 0}};
    int attempts = -1;
    cr_expect_eq(sl_retry_run(&p, &fc.clock, NULL, scripted, &s, &attempts),
                 SL_EINVAL);
    cr_expect_eq(attempts, 0);
    p.max_attempts = 3;
    cr_expect_eq(sl_retry_run(&p, &fc.clock, NULL, NULL, &s, &attempts),
                 SL_EINVAL);
    cr_expect_eq(sl_retry_run(NULL, &fc.clock, NULL, scripted, &s, &attempts),
                 SL_EINVAL);
    cr_expect_eq(s.calls, 0);
}
