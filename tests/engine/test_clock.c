/* Tests for engine/clock.c: the real monotonic clock and the fake clock. */
#include <criterion/criterion.h>

#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"

Test(clock, real_clock_is_monotonic_and_null_means_real)
{
    const sl_clock *c = sl_clock_real();
    int64_t a = sl_clock_now(c);
    int64_t b = sl_clock_now(NULL);
    int64_t d = c->now_ns(c);

    cr_assert_not_null(c);
    cr_assert(a > 0);
    cr_assert(b >= a);
    cr_assert(d >= b);
}

Test(clock, real_sleep_sleeps_the_full_time)
{
    int64_t t0 = sl_clock_now(NULL);

    cr_assert_eq(sl_clock_sleep(NULL, NULL, 2 * SL_NS_PER_MS), 0);
    cr_assert_geq(sl_clock_now(NULL) - t0, 2 * SL_NS_PER_MS);
    cr_assert_eq(sl_clock_sleep(sl_clock_real(), NULL, 0), 0);
    cr_assert_eq(sl_clock_sleep(sl_clock_real(), NULL, -5), 0);
}

Test(clock, real_sleep_returns_context_error_when_done)
{
    sl_ctx *ctx;
    int64_t t0;

    cr_assert_eq(sl_ctx_create(&ctx), 0);
    sl_ctx_cancel(ctx, SL_ECANCELED, "stop");
    t0 = sl_clock_now(NULL);
    cr_assert_eq(sl_clock_sleep(NULL, ctx, 60 * SL_NS_PER_S), SL_ECANCELED);
    cr_assert_lt(sl_clock_now(NULL) - t0, SL_NS_PER_S);
    sl_ctx_destroy(ctx);
}

Test(clock, real_sleep_ends_at_context_deadline)
{
    sl_ctx *root, *to;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_timeout(root, 5 * SL_NS_PER_MS, &to), 0);
    cr_assert_eq(sl_clock_sleep(NULL, to, 60 * SL_NS_PER_S), SL_EDEADLINE);
    sl_ctx_destroy(to);
    sl_ctx_destroy(root);
}

Test(fake_clock, init_sets_time_and_nothing_slept)
{
    sl_fake_clock fc;

    sl_fake_clock_init(&fc, 1000);
    cr_assert_eq(sl_clock_now(&fc.clock), 1000);
    cr_assert_eq(fc.clock.now_ns(&fc.clock), 1000);
    cr_assert_eq(fc.slept, 0);
}

Test(fake_clock, advance_moves_time)
{
    sl_fake_clock fc;

    sl_fake_clock_init(&fc, 0);
    sl_fake_clock_advance(&fc, 5 * SL_NS_PER_S);
    cr_assert_eq(sl_clock_now(&fc.clock), 5 * SL_NS_PER_S);
    sl_fake_clock_advance(&fc, 1);
    cr_assert_eq(sl_clock_now(&fc.clock), 5 * SL_NS_PER_S + 1);
    cr_assert_eq(fc.slept, 0, "advance is not sleep");
}

Test(fake_clock, sleep_advances_instantly_and_counts)
{
    sl_fake_clock fc;
    int64_t real0 = sl_clock_now(NULL);

    sl_fake_clock_init(&fc, 100);
    cr_assert_eq(sl_clock_sleep(&fc.clock, NULL, 3600 * SL_NS_PER_S), 0);
    cr_assert_eq(sl_clock_now(&fc.clock), 100 + 3600 * SL_NS_PER_S);
    cr_assert_eq(sl_clock_sleep(&fc.clock, NULL, 50), 0);
    cr_assert_eq(fc.slept, 3600 * SL_NS_PER_S + 50);
    cr_assert_lt(sl_clock_now(NULL) - real0, SL_NS_PER_S, "a fake sleep must not really sleep");
}

Test(fake_clock, sleep_with_done_context_fails_without_advancing)
{
    sl_fake_clock fc;
    sl_ctx *root, *child;

    sl_fake_clock_init(&fc, 0);
    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_child(root, &child), 0);
    cr_assert_eq(sl_clock_sleep(&fc.clock, child, 10), 0, "running context: full sleep");
    sl_ctx_cancel(root, SL_ESTOPPED, "shutdown");
    cr_assert_eq(sl_clock_sleep(&fc.clock, child, 10), SL_ESTOPPED);
    cr_assert_eq(sl_clock_now(&fc.clock), 10);
    cr_assert_eq(fc.slept, 10);
    sl_ctx_destroy(child);
    sl_ctx_destroy(root);
}
