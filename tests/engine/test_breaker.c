/*
 * Circuit breaker transitions, on a fake clock.
 */
#include <criterion/criterion.h>

#include "sluice/breaker.h"
#include "sluice/clock.h"
#include "sluice/error.h"

#define S SL_NS_PER_S

static sl_fake_clock fc;

/* State changes seen by the callback, in order. */
typedef struct change_log {
    int n;
    sl_breaker_state from[16];
    sl_breaker_state to[16];
    sl_breaker *b;            /* to call back into from the callback */
    sl_breaker_state seen_inside[16];
} change_log;

static change_log log_;

static void on_change(void *arg, sl_breaker_state from, sl_breaker_state to)
{
    change_log *lg = arg;
    if (lg->n < 16) {
        lg->from[lg->n] = from;
        lg->to[lg->n] = to;
        /* Calling back in must not deadlock: the lock is not held. */
        lg->seen_inside[lg->n] = lg->b != NULL ? sl_breaker_get_state(lg->b)
                                               : to;
    }
    lg->n++;
}

static void setup(void)
{
    sl_fake_clock_init(&fc, 50 * S);
    memset(&log_, 0, sizeof(log_));
}

TestSuite(breaker, .init = setup);

static sl_breaker *make(uint32_t failures, int64_t cooldown)
{
    sl_breaker_config cfg = {
        .failures = failures, .cooldown_ns = cooldown, .clock = &fc.clock,
        .on_change = on_change, .on_change_arg = &log_,
    };
    sl_breaker *b = NULL;
    cr_assert_eq(sl_breaker_create(&cfg, &b), 0);
    log_.b = b;
    return b;
}

static void fail_n(sl_breaker *b, int n)
{
    for (int i = 0; i < n; i++) {
        cr_assert_eq(sl_breaker_allow(b), 0);
        sl_breaker_record(b, false);
    }
}

Test(breaker, create_rejects_bad_config)
{
    sl_breaker *b = NULL;
    sl_breaker_config cfg = {.failures = 0, .cooldown_ns = S};
    cr_expect_eq(sl_breaker_create(&cfg, &b), SL_EINVAL);
    cfg.failures = 1;
    cfg.cooldown_ns = -1;
    cr_expect_eq(sl_breaker_create(&cfg, &b), SL_EINVAL);
    cr_expect_eq(sl_breaker_create(NULL, &b), SL_EINVAL);
    cr_expect_null(b);
    sl_breaker_destroy(NULL);
}

Test(breaker, state_names)
{
    cr_expect_str_eq(sl_breaker_state_name(SL_BREAKER_CLOSED), "closed");
    cr_expect_str_eq(sl_breaker_state_name(SL_BREAKER_OPEN), "open");
    cr_expect_str_eq(sl_breaker_state_name(SL_BREAKER_HALF_OPEN), "half_open");
    cr_expect_str_eq(sl_breaker_state_name((sl_breaker_state)42), "unknown");
}

Test(breaker, opens_at_exactly_n_consecutive_failures)
{
    sl_breaker *b = make(3, 10 * S);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_CLOSED);
    fail_n(b, 2);
    cr_expect_eq(sl_breaker_failures(b), 2);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_CLOSED);
    cr_expect_eq(log_.n, 0);
    fail_n(b, 1);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_OPEN);
    cr_expect_eq(sl_breaker_opens(b), 1);
    cr_expect_eq(sl_breaker_allow(b), SL_EBREAKER);
    cr_expect_eq(sl_breaker_allow(b), SL_EBREAKER);
    cr_expect_eq(sl_breaker_rejections(b), 2);
    cr_assert_eq(log_.n, 1);
    cr_expect_eq(log_.from[0], SL_BREAKER_CLOSED);
    cr_expect_eq(log_.to[0], SL_BREAKER_OPEN);
    cr_expect_eq(log_.seen_inside[0], SL_BREAKER_OPEN);
    sl_breaker_destroy(b);
}

Test(breaker, success_resets_the_failure_count)
{
    sl_breaker *b = make(3, 10 * S);
    fail_n(b, 2);
    cr_assert_eq(sl_breaker_allow(b), 0);
    sl_breaker_record(b, true);
    cr_expect_eq(sl_breaker_failures(b), 0);
    fail_n(b, 2);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_CLOSED);
    fail_n(b, 1);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_OPEN);
    sl_breaker_destroy(b);
}

Test(breaker, one_failure_threshold)
{
    sl_breaker *b = make(1, S);
    fail_n(b, 1);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_OPEN);
    sl_breaker_destroy(b);
}

Test(breaker, half_open_after_exactly_the_cooldown)
{
    sl_breaker *b = make(2, 10 * S);
    fail_n(b, 2);
    cr_expect_eq(sl_breaker_retry_in(b), 10 * S);
    sl_fake_clock_advance(&fc, 10 * S - 1);
    cr_expect_eq(sl_breaker_retry_in(b), 1);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_OPEN);
    cr_expect_eq(sl_breaker_allow(b), SL_EBREAKER);
    sl_fake_clock_advance(&fc, 1);
    cr_expect_eq(sl_breaker_retry_in(b), 0);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_HALF_OPEN);
    cr_assert_eq(log_.n, 2);
    cr_expect_eq(log_.from[1], SL_BREAKER_OPEN);
    cr_expect_eq(log_.to[1], SL_BREAKER_HALF_OPEN);
    sl_breaker_destroy(b);
}

Test(breaker, half_open_lets_one_probe_through)
{
    sl_breaker *b = make(2, 10 * S);
    fail_n(b, 2);
    sl_fake_clock_advance(&fc, 10 * S);
    cr_expect_eq(sl_breaker_allow(b), 0);             /* the probe */
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_HALF_OPEN);
    cr_expect_eq(sl_breaker_allow(b), SL_EBREAKER);
    cr_expect_eq(sl_breaker_allow(b), SL_EBREAKER);
    cr_expect_eq(sl_breaker_rejections(b), 2);
    sl_breaker_record(b, true);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_CLOSED);
    cr_expect_eq(sl_breaker_failures(b), 0);
    cr_expect_eq(sl_breaker_allow(b), 0);
    cr_expect_eq(sl_breaker_allow(b), 0);
    cr_assert_eq(log_.n, 3);
    cr_expect_eq(log_.from[2], SL_BREAKER_HALF_OPEN);
    cr_expect_eq(log_.to[2], SL_BREAKER_CLOSED);
    /* Closed again: it takes the full count to reopen. */
    sl_breaker_record(b, false);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_CLOSED);
    sl_breaker_record(b, false);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_OPEN);
    cr_expect_eq(sl_breaker_opens(b), 2);
    sl_breaker_destroy(b);
}

Test(breaker, failed_probe_reopens_for_a_full_cooldown)
{
    sl_breaker *b = make(2, 10 * S);
    fail_n(b, 2);
    sl_fake_clock_advance(&fc, 15 * S);
    cr_assert_eq(sl_breaker_allow(b), 0);
    sl_breaker_record(b, false);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_OPEN);
    cr_expect_eq(sl_breaker_opens(b), 2);
    cr_expect_eq(sl_breaker_retry_in(b), 10 * S);
    sl_fake_clock_advance(&fc, 10 * S - 1);
    cr_expect_eq(sl_breaker_allow(b), SL_EBREAKER);
    sl_fake_clock_advance(&fc, 1);
    cr_expect_eq(sl_breaker_allow(b), 0);
    sl_breaker_record(b, true);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_CLOSED);
    static const sl_breaker_state want_from[] = {
        SL_BREAKER_CLOSED, SL_BREAKER_OPEN, SL_BREAKER_HALF_OPEN,
        SL_BREAKER_OPEN, SL_BREAKER_HALF_OPEN};
    static const sl_breaker_state want_to[] = {
        SL_BREAKER_OPEN, SL_BREAKER_HALF_OPEN, SL_BREAKER_OPEN,
        SL_BREAKER_HALF_OPEN, SL_BREAKER_CLOSED};
    cr_assert_eq(log_.n, 5);
    for (int i = 0; i < 5; i++) {
        cr_expect_eq(log_.from[i], want_from[i], "change %d", i);
        cr_expect_eq(log_.to[i], want_to[i], "change %d", i);
    }
    sl_breaker_destroy(b);
}

Test(breaker, results_while_open_are_ignored)
{
    sl_breaker *b = make(2, 10 * S);
    /* Two calls go out while closed; both fail, the breaker opens. */
    cr_assert_eq(sl_breaker_allow(b), 0);
    cr_assert_eq(sl_breaker_allow(b), 0);
    cr_assert_eq(sl_breaker_allow(b), 0);
    sl_breaker_record(b, false);
    sl_breaker_record(b, false);
    cr_assert_eq(sl_breaker_get_state(b), SL_BREAKER_OPEN);
    /* The third, late, succeeds: the breaker stays open. */
    sl_breaker_record(b, true);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_OPEN);
    cr_expect_eq(sl_breaker_opens(b), 1);
    sl_breaker_destroy(b);
}

Test(breaker, half_open_without_probe_ignores_results)
{
    sl_breaker *b = make(1, S);
    fail_n(b, 1);
    sl_fake_clock_advance(&fc, S);
    cr_assert_eq(sl_breaker_get_state(b), SL_BREAKER_HALF_OPEN);
    sl_breaker_record(b, false);      /* no probe was let through */
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_HALF_OPEN);
    cr_expect_eq(sl_breaker_allow(b), 0);
    sl_breaker_record(b, true);
    cr_expect_eq(sl_breaker_get_state(b), SL_BREAKER_CLOSED);
    sl_breaker_destroy(b);
}

Test(breaker, zero_cooldown_probes_at_once)
{
    sl_breaker *b = make(1, 0);
    fail_n(b, 1);
    cr_expect_eq(sl_breaker_opens(b), 1);
    cr_expect_eq(sl_breaker_allow(b), 0);
    cr_expect_eq(sl_breaker_allow(b), SL_EBREAKER);
    sl_breaker_destroy(b);
}

Test(breaker, works_without_callback_or_clock)
{
    sl_breaker_config cfg = {.failures = 1, .cooldown_ns = 3600 * S};
    sl_breaker *b = NULL;
    cr_assert_eq(sl_breaker_create(&cfg, &b), 0);
    cr_assert_eq(sl_breaker_allow(b), 0);
    sl_breaker_record(b, false);
    cr_expect_eq(sl_breaker_allow(b), SL_EBREAKER);
    cr_expect_gt(sl_breaker_retry_in(b), 3599 * S);
    sl_breaker_destroy(b);
}
