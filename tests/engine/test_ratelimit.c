/*
 * Token bucket and keyed limiter, on a fake clock: every value is exact.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/ratelimit.h"

#define MS SL_NS_PER_MS
#define S SL_NS_PER_S

static sl_fake_clock fc;

static void setup(void)
{
    sl_fake_clock_init(&fc, 1000 * S);
}

TestSuite(limiter, .init = setup);
TestSuite(keyed, .init = setup);

static sl_limiter *make(double rate, int64_t burst)
{
    sl_limiter *l = NULL;
    cr_assert_eq(sl_limiter_create(rate, burst, &fc.clock, &l), 0);
    cr_assert_not_null(l);
    return l;
}

static int64_t now(void)
{
    return sl_clock_now(&fc.clock);
}

/* ------------------------------------------------------------------ */

Test(limiter, create_rejects_bad_parameters)
{
    sl_limiter *l = NULL;
    cr_expect_eq(sl_limiter_create(0, 1, &fc.clock, &l), SL_EINVAL);
    cr_expect_eq(sl_limiter_create(-5, 1, &fc.clock, &l), SL_EINVAL);
    cr_expect_eq(sl_limiter_create(NAN, 1, &fc.clock, &l), SL_EINVAL);
    cr_expect_eq(sl_limiter_create(INFINITY, 1, &fc.clock, &l), SL_EINVAL);
    cr_expect_eq(sl_limiter_create(10, 0, &fc.clock, &l), SL_EINVAL);
    cr_expect_eq(sl_limiter_create(10, -1, &fc.clock, &l), SL_EINVAL);
    cr_expect_eq(sl_limiter_create(10, 1, &fc.clock, NULL), SL_EINVAL);
    cr_expect_null(l);
    sl_limiter_destroy(NULL);
}

Test(limiter, starts_full_and_caps_at_burst)
{
    sl_limiter *l = make(10, 5);
    cr_expect_eq(sl_limiter_rate(l), 10.0);
    cr_expect_eq(sl_limiter_burst(l), 5);
    for (int i = 0; i < 5; i++)
        cr_expect(sl_limiter_try(l, 1), "token %d", i);
    cr_expect_not(sl_limiter_try(l, 1));
    /* An hour later the bucket holds burst, not 36000. */
    sl_fake_clock_advance(&fc, 3600 * S);
    cr_expect_eq(sl_limiter_tokens(l), 5.0);
    for (int i = 0; i < 5; i++)
        cr_expect(sl_limiter_try(l, 1));
    cr_expect_not(sl_limiter_try(l, 1));
    sl_limiter_destroy(l);
}

Test(limiter, tokens_accrue_at_rate)
{
    sl_limiter *l = make(10, 5);
    cr_assert(sl_limiter_try(l, 5));
    cr_expect_eq(sl_limiter_tokens(l), 0.0);
    sl_fake_clock_advance(&fc, 99 * MS);
    cr_expect_not(sl_limiter_try(l, 1));
    sl_fake_clock_advance(&fc, 1 * MS);
    cr_expect(sl_limiter_try(l, 1));
    cr_expect_not(sl_limiter_try(l, 1));
    /* 250 ms: 2.5 tokens — two whole takes, not three. */
    sl_fake_clock_advance(&fc, 250 * MS);
    cr_expect_eq(sl_limiter_tokens(l), 2.5);
    cr_expect_not(sl_limiter_try(l, 3));
    cr_expect(sl_limiter_try(l, 2));
    cr_expect_not(sl_limiter_try(l, 1));
    sl_fake_clock_advance(&fc, 50 * MS);
    cr_expect(sl_limiter_try(l, 1));
    sl_limiter_destroy(l);
}

Test(limiter, try_refuses_impossible_amounts)
{
    sl_limiter *l = make(10, 5);
    cr_expect_not(sl_limiter_try(l, 6));
    cr_expect_not(sl_limiter_try(l, 0));
    cr_expect_not(sl_limiter_try(l, -1));
    cr_expect_eq(sl_limiter_tokens(l), 5.0);  /* nothing taken */
    sl_limiter_destroy(l);
}

Test(limiter, reserve_returns_exact_waits_and_queues)
{
    sl_limiter *l = make(10, 2);
    int64_t w = -1;
    cr_assert_eq(sl_limiter_reserve(l, 1, &w), 0);
    cr_expect_eq(w, 0);
    cr_assert_eq(sl_limiter_reserve(l, 1, &w), 0);
    cr_expect_eq(w, 0);
    cr_assert_eq(sl_limiter_reserve(l, 1, &w), 0);
    cr_expect_eq(w, 100 * MS);
    cr_assert_eq(sl_limiter_reserve(l, 1, &w), 0);
    cr_expect_eq(w, 200 * MS);
    cr_assert_eq(sl_limiter_reserve(l, 2, &w), 0);
    cr_expect_eq(w, 400 * MS);
    cr_expect_eq(sl_limiter_tokens(l), -4.0);
    cr_expect_not(sl_limiter_try(l, 1));      /* debt blocks takers */
    sl_fake_clock_advance(&fc, 400 * MS);
    cr_expect_eq(sl_limiter_tokens(l), 0.0);
    sl_fake_clock_advance(&fc, 100 * MS);
    cr_expect(sl_limiter_try(l, 1));
    sl_limiter_destroy(l);
}

Test(limiter, reserve_rejects_impossible_amounts)
{
    sl_limiter *l = make(10, 2);
    int64_t w = 77;
    cr_expect_eq(sl_limiter_reserve(l, 3, &w), SL_EINVAL);
    cr_expect_eq(sl_limiter_reserve(l, 0, &w), SL_EINVAL);
    cr_expect_eq(sl_limiter_reserve(l, 1, NULL), SL_EINVAL);
    cr_expect_eq(w, 77);
    cr_expect_eq(sl_limiter_tokens(l), 2.0);
    sl_limiter_destroy(l);
}

Test(limiter, fractional_rates_round_waits_up)
{
    sl_limiter *l = make(3, 1);
    int64_t w;
    cr_assert(sl_limiter_try(l, 1));
    cr_assert_eq(sl_limiter_reserve(l, 1, &w), 0);
    cr_expect_eq(w, 333333334);   /* ceil(1e9 / 3) */
    /* Waiting exactly that long is enough. */
    sl_fake_clock_advance(&fc, w);
    cr_expect_geq(sl_limiter_tokens(l), -1e-9);
    sl_fake_clock_advance(&fc, 333333334);
    cr_expect(sl_limiter_try(l, 1));

    sl_limiter *slow = make(0.5, 1);       /* one token every two seconds */
    cr_assert(sl_limiter_try(slow, 1));
    cr_assert_eq(sl_limiter_reserve(slow, 1, &w), 0);
    cr_expect_eq(w, 2 * S);
    sl_limiter_destroy(slow);
    sl_limiter_destroy(l);
}

Test(limiter, wait_sleeps_exactly_on_the_clock)
{
    sl_limiter *l = make(10, 1);
    int64_t t0 = now();
    for (int i = 0; i < 11; i++)
        cr_assert_eq(sl_limiter_wait(l, NULL, 1), 0, "wait %d", i);
    /* The first token was there; the next ten cost 100 ms each. */
    cr_expect_eq(now() - t0, 1 * S);
    cr_expect_eq(atomic_load(&fc.slept), 1 * S);
    cr_expect_eq(sl_limiter_tokens(l), 0.0);
    sl_limiter_destroy(l);
}

Test(limiter, wait_for_several_tokens)
{
    sl_limiter *l = make(100, 10);
    cr_assert_eq(sl_limiter_wait(l, NULL, 10), 0);
    cr_expect_eq(atomic_load(&fc.slept), 0);
    cr_assert_eq(sl_limiter_wait(l, NULL, 4), 0);
    cr_expect_eq(atomic_load(&fc.slept), 40 * MS);
    cr_expect_eq(sl_limiter_wait(l, NULL, 11), SL_EINVAL);
    cr_expect_eq(sl_limiter_wait(l, NULL, 0), SL_EINVAL);
    sl_limiter_destroy(l);
}

Test(limiter, wait_with_cancelled_context_takes_nothing)
{
    sl_ctx *ctx = NULL;
    cr_assert_eq(sl_ctx_create(&ctx), 0);
    sl_limiter *l = make(10, 3);
    sl_ctx_cancel(ctx, SL_ECANCELED, "test");
    /* Tokens are there, but cancellation wins. */
    cr_expect_eq(sl_limiter_wait(l, ctx, 1), SL_ECANCELED);
    cr_expect_eq(sl_limiter_tokens(l), 3.0);
    cr_assert(sl_limiter_try(l, 3));
    cr_expect_eq(sl_limiter_wait(l, ctx, 1), SL_ECANCELED);
    cr_expect_eq(sl_limiter_tokens(l), 0.0);
    cr_expect_eq(atomic_load(&fc.slept), 0);
    sl_limiter_destroy(l);
    sl_ctx_destroy(ctx);
}

Test(limiter, wait_reports_deadline)
{
    sl_ctx *ctx = NULL;
    cr_assert_eq(sl_ctx_create(&ctx), 0);
    sl_limiter *l = make(10, 1);
    cr_assert(sl_limiter_try(l, 1));
    sl_ctx_cancel(ctx, SL_EDEADLINE, "deadline");
    cr_expect_eq(sl_limiter_wait(l, ctx, 1), SL_EDEADLINE);
    sl_limiter_destroy(l);
    sl_ctx_destroy(ctx);
}

/* A clock whose sleep is interrupted: the context is cancelled mid-sleep. */
typedef struct cancelling_clock {
    sl_clock clock;
    sl_fake_clock *inner;
    int64_t advance_ns;   /* how far time moves before the cancel */
    int sleeps;
} cancelling_clock;

static int64_t cc_now(const sl_clock *self)
{
    const cancelling_clock *cc = (const cancelling_clock *)self;
    return sl_clock_now(&cc->inner->clock);
}

static int cc_sleep(const sl_clock *self, sl_ctx *ctx, int64_t ns)
{
    cancelling_clock *cc = (cancelling_clock *)self;
    cc->sleeps++;
    sl_fake_clock_advance(cc->inner, cc->advance_ns < ns ? cc->advance_ns : ns);
    sl_ctx_cancel(ctx, SL_ECANCELED, "interrupted");
    return sl_ctx_err(ctx);
}

Test(limiter, cancel_during_wait_interrupts_it)
{
    cancelling_clock cc = {{cc_now, cc_sleep}, &fc, 50 * MS, 0};
    sl_limiter *l = NULL;
    cr_assert_eq(sl_limiter_create(10, 1, &cc.clock, &l), 0);
    sl_ctx *ctx = NULL;
    cr_assert_eq(sl_ctx_create(&ctx), 0);
    cr_assert(sl_limiter_try(l, 1));
    cr_expect_eq(sl_limiter_wait(l, ctx, 1), SL_ECANCELED);
    cr_expect_eq(cc.sleeps, 1);
    /* Half a token accrued in the 50 ms; none was taken. */
    cr_expect_eq(sl_limiter_tokens(l), 0.5);
    sl_limiter_destroy(l);
    sl_ctx_destroy(ctx);
}

Test(limiter, real_clock_when_null)
{
    sl_limiter *l = NULL;
    cr_assert_eq(sl_limiter_create(1000, 2, NULL, &l), 0);
    cr_expect(sl_limiter_try(l, 2));
    sl_limiter_destroy(l);
}

/* ------------------------------------------------------------------ */

static sl_keyed_limiter *make_keyed(double rate, int64_t burst, int64_t ttl,
                                    size_t max_keys)
{
    sl_keyed_limiter_config cfg = {
        .rate = rate, .burst = burst, .idle_ttl_ns = ttl,
        .max_keys = max_keys, .clock = &fc.clock,
    };
    sl_keyed_limiter *kl = NULL;
    cr_assert_eq(sl_keyed_limiter_create(&cfg, &kl), 0);
    return kl;
}

static int ktry(sl_keyed_limiter *kl, const char *key, int64_t *retry)
{
    return sl_keyed_limiter_try(kl, key, strlen(key), 1, retry);
}

Test(keyed, create_rejects_bad_parameters)
{
    sl_keyed_limiter *kl = NULL;
    sl_keyed_limiter_config cfg = {.rate = 0, .burst = 1};
    cr_expect_eq(sl_keyed_limiter_create(&cfg, &kl), SL_EINVAL);
    cfg.rate = 1;
    cfg.burst = 0;
    cr_expect_eq(sl_keyed_limiter_create(&cfg, &kl), SL_EINVAL);
    cfg.burst = 1;
    cfg.idle_ttl_ns = -1;
    cr_expect_eq(sl_keyed_limiter_create(&cfg, &kl), SL_EINVAL);
    cr_expect_eq(sl_keyed_limiter_create(NULL, &kl), SL_EINVAL);
    cr_expect_null(kl);
    sl_keyed_limiter_destroy(NULL);
}

Test(keyed, keys_have_independent_buckets)
{
    sl_keyed_limiter *kl = make_keyed(2, 2, 0, 0);
    int64_t retry = -1;
    cr_expect_eq(ktry(kl, "10.0.0.1", NULL), 0);
    cr_expect_eq(ktry(kl, "10.0.0.1", NULL), 0);
    cr_expect_eq(ktry(kl, "10.0.0.1", &retry), SL_ELIMIT);
    cr_expect_eq(retry, 500 * MS);
    cr_expect_eq(ktry(kl, "10.0.0.2", NULL), 0);
    cr_expect_eq(sl_keyed_limiter_count(kl), 2);
    sl_fake_clock_advance(&fc, 500 * MS);
    cr_expect_eq(ktry(kl, "10.0.0.1", NULL), 0);
    cr_expect_eq(ktry(kl, "10.0.0.1", &retry), SL_ELIMIT);
    cr_expect_eq(retry, 500 * MS);
    cr_expect_eq(sl_keyed_limiter_try(kl, "k", 1, 3, NULL), SL_EINVAL);
    cr_expect_eq(sl_keyed_limiter_try(kl, "k", 1, 0, NULL), SL_EINVAL);
    cr_expect_eq(sl_keyed_limiter_count(kl), 2);  /* no bucket for "k" */
    sl_keyed_limiter_destroy(kl);
}

Test(keyed, keys_are_bytes)
{
    sl_keyed_limiter *kl = make_keyed(1, 1, 0, 0);
    cr_expect_eq(sl_keyed_limiter_try(kl, "a\0b", 3, 1, NULL), 0);
    cr_expect_eq(sl_keyed_limiter_try(kl, "a\0c", 3, 1, NULL), 0);
    cr_expect_eq(sl_keyed_limiter_try(kl, "a", 1, 1, NULL), 0);
    cr_expect_eq(sl_keyed_limiter_try(kl, "", 0, 1, NULL), 0);
    cr_expect_eq(sl_keyed_limiter_try(kl, NULL, 0, 1, NULL), SL_ELIMIT);
    cr_expect_eq(sl_keyed_limiter_try(kl, "a\0b", 3, 1, NULL), SL_ELIMIT);
    cr_expect_eq(sl_keyed_limiter_count(kl), 4);
    sl_keyed_limiter_destroy(kl);
}

Test(keyed, idle_buckets_expire_after_ttl)
{
    sl_keyed_limiter *kl = make_keyed(10, 1, 1 * S, 0);
    cr_expect_eq(ktry(kl, "a", NULL), 0);
    sl_fake_clock_advance(&fc, 400 * MS);
    cr_expect_eq(ktry(kl, "b", NULL), 0);
    cr_expect_eq(sl_keyed_limiter_count(kl), 2);
    sl_fake_clock_advance(&fc, 600 * MS);     /* a idle exactly 1 s: kept */
    cr_expect_eq(sl_keyed_limiter_sweep(kl), 0);
    sl_fake_clock_advance(&fc, 1);            /* a idle longer: evicted */
    cr_expect_eq(sl_keyed_limiter_sweep(kl), 1);
    cr_expect_eq(sl_keyed_limiter_count(kl), 1);
    /* try() evicts on its way too. */
    sl_fake_clock_advance(&fc, 400 * MS);
    cr_expect_eq(ktry(kl, "c", NULL), 0);
    cr_expect_eq(sl_keyed_limiter_count(kl), 1);
    cr_expect_eq(sl_keyed_limiter_evictions(kl), 2);
    sl_keyed_limiter_destroy(kl);
}

Test(keyed, using_a_key_keeps_it)
{
    sl_keyed_limiter *kl = make_keyed(10, 1, 1 * S, 0);
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(ktry(kl, "a", NULL), 0);
        sl_fake_clock_advance(&fc, 900 * MS);
        cr_expect_eq(sl_keyed_limiter_sweep(kl), 0);
    }
    sl_keyed_limiter_destroy(kl);
}

Test(keyed, default_ttl_is_time_to_refill)
{
    sl_keyed_limiter *kl = make_keyed(10, 5, 0, 0);   /* 5 tokens: 500 ms */
    cr_expect_eq(ktry(kl, "a", NULL), 0);
    sl_fake_clock_advance(&fc, 500 * MS);
    cr_expect_eq(sl_keyed_limiter_sweep(kl), 0);
    sl_fake_clock_advance(&fc, 1);
    cr_expect_eq(sl_keyed_limiter_sweep(kl), 1);
    sl_keyed_limiter_destroy(kl);
}

Test(keyed, count_cap_evicts_least_recently_used)
{
    sl_keyed_limiter *kl = make_keyed(1, 1, 3600 * S, 3);
    cr_expect_eq(ktry(kl, "a", NULL), 0);
    cr_expect_eq(ktry(kl, "b", NULL), 0);
    cr_expect_eq(ktry(kl, "c", NULL), 0);
    cr_expect_eq(ktry(kl, "a", NULL), SL_ELIMIT);   /* a is now most recent */
    cr_expect_eq(ktry(kl, "d", NULL), 0);           /* b goes */
    cr_expect_eq(sl_keyed_limiter_count(kl), 3);
    cr_expect_eq(sl_keyed_limiter_evictions(kl), 1);
    cr_expect_eq(ktry(kl, "a", NULL), SL_ELIMIT);   /* a kept its state */
    cr_expect_eq(ktry(kl, "c", NULL), SL_ELIMIT);
    cr_expect_eq(ktry(kl, "b", NULL), 0);           /* b starts afresh; d goes */
    cr_expect_eq(ktry(kl, "d", NULL), 0);
    cr_expect_eq(sl_keyed_limiter_count(kl), 3);
    sl_keyed_limiter_destroy(kl);
}

Test(keyed, memory_stays_bounded_under_many_clients)
{
    sl_keyed_limiter *kl = make_keyed(5, 5, 3600 * S, 1000);
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "client-%d", i);
        cr_assert_eq(ktry(kl, key, NULL), 0);
    }
    cr_expect_eq(sl_keyed_limiter_count(kl), 1000);
    cr_expect_eq(sl_keyed_limiter_evictions(kl), 19000);
    /* The most recent thousand are the ones kept, each with 4 tokens left. */
    for (int i = 19000; i < 20000; i++) {
        snprintf(key, sizeof(key), "client-%d", i);
        cr_assert_eq(sl_keyed_limiter_try(kl, key, strlen(key), 4, NULL), 0);
        cr_assert_eq(ktry(kl, key, NULL), SL_ELIMIT);
    }
    cr_expect_eq(sl_keyed_limiter_count(kl), 1000);
    cr_expect_eq(sl_keyed_limiter_evictions(kl), 19000);
    sl_keyed_limiter_destroy(kl);
}
