/* Tests for engine/context.c: trees, cancellation, deadlines, values, waiters. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "engine/context_internal.h"
#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"

/* Spin (yielding) until cond() holds; fail after 10 s instead of hanging. */
#define WAIT_UNTIL(cond)                                                    \
    do {                                                                    \
        int64_t wu_t0 = sl_clock_now(NULL);                                 \
        while (!(cond)) {                                                   \
            cr_assert_lt(sl_clock_now(NULL) - wu_t0, 10 * SL_NS_PER_S,      \
                         "timed out waiting for " #cond);                   \
            sched_yield();                                                  \
        }                                                                   \
    } while (0)

/* ------------------------------------------------------------ basics */

Test(context, root_is_running)
{
    sl_ctx *ctx;

    cr_assert_eq(sl_ctx_create(&ctx), 0);
    cr_assert_not(sl_ctx_is_done(ctx));
    cr_assert_eq(sl_ctx_err(ctx), 0);
    cr_assert_str_eq(sl_ctx_cause(ctx), "");
    cr_assert_eq(sl_ctx_deadline(ctx), INT64_MAX);
    cr_assert_eq(sl__ctx_refcount(ctx), 1);
    sl_ctx_destroy(ctx);
}

Test(context, invalid_arguments)
{
    sl_ctx *ctx = (sl_ctx *)0x1;

    cr_assert_eq(sl_ctx_create(NULL), SL_EINVAL);
    cr_assert_eq(sl_ctx_create_child(NULL, &ctx), SL_EINVAL);
    cr_assert_eq(sl_ctx_create_timeout(NULL, SL_NS_PER_S, &ctx), SL_EINVAL);
    cr_assert_eq(sl_ctx_create_deadline(NULL, 0, &ctx), SL_EINVAL);
    cr_assert_eq(sl_ctx_create_value(NULL, "k", NULL, &ctx), SL_EINVAL);
    cr_assert_eq(ctx, (sl_ctx *)0x1, "*out untouched on failure");
}

Test(context, null_is_harmless)
{
    sl_ctx_destroy(NULL);
    sl_ctx_unref(NULL);
    sl_ctx_cancel(NULL, SL_ECANCELED, "x");
    cr_assert_null(sl_ctx_ref(NULL));
    cr_assert_not(sl_ctx_is_done(NULL));
    cr_assert_eq(sl_ctx_err(NULL), 0);
    cr_assert_str_eq(sl_ctx_cause(NULL), "");
    cr_assert_eq(sl_ctx_deadline(NULL), INT64_MAX);
    cr_assert_null(sl_ctx_value(NULL, "k"));
}

Test(context, cancel_sets_code_and_formatted_cause)
{
    sl_ctx *ctx;

    cr_assert_eq(sl_ctx_create(&ctx), 0);
    sl_ctx_cancel(ctx, SL_ECANCELED, "stage %s: bad JSON at line %d", "parse", 12);
    cr_assert(sl_ctx_is_done(ctx));
    cr_assert_eq(sl_ctx_err(ctx), SL_ECANCELED);
    cr_assert_str_eq(sl_ctx_cause(ctx), "stage parse: bad JSON at line 12");
    sl_ctx_destroy(ctx);
}

Test(context, cancel_without_cause_uses_code_message)
{
    sl_ctx *a, *b;

    cr_assert_eq(sl_ctx_create(&a), 0);
    cr_assert_eq(sl_ctx_create(&b), 0);
    sl_ctx_cancel(a, SL_ECANCELED, NULL);
    cr_assert_str_eq(sl_ctx_cause(a), "canceled");
    sl_ctx_cancel(b, 0, NULL);
    cr_assert_eq(sl_ctx_err(b), SL_ECANCELED, "a non-error code becomes SL_ECANCELED");
    sl_ctx_destroy(a);
    sl_ctx_destroy(b);
}

Test(context, first_cancel_wins)
{
    sl_ctx *root, *child;
    const char *cause;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_child(root, &child), 0);
    sl_ctx_cancel(child, SL_EIO, "disk gone");
    cause = sl_ctx_cause(child);
    sl_ctx_cancel(child, SL_ECANCELED, "second");
    sl_ctx_cancel(root, SL_ESTOPPED, "root stop");
    cr_assert_eq(sl_ctx_err(child), SL_EIO);
    cr_assert_str_eq(sl_ctx_cause(child), "disk gone");
    cr_assert_eq(sl_ctx_cause(child), cause, "the cause string is immutable");
    cr_assert_eq(sl_ctx_err(root), SL_ESTOPPED);
    cr_assert_str_eq(sl_ctx_cause(root), "root stop");
    sl_ctx_destroy(child);
    sl_ctx_destroy(root);
}

Test(context, destroy_cancels_a_context_still_referenced)
{
    sl_ctx *root, *child;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_child(root, &child), 0);
    sl_ctx_ref(child);
    sl_ctx_destroy(child);
    cr_assert(sl_ctx_is_done(child));
    cr_assert_eq(sl_ctx_err(child), SL_ECANCELED);
    cr_assert_not(sl_ctx_is_done(root));
    sl_ctx_unref(child);
    sl_ctx_destroy(root);
}

/* ------------------------------------------------------------ tree */

Test(context, cancel_cascades_through_three_levels)
{
    sl_ctx *root, *a, *b, *c, *b2;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_child(root, &a), 0);
    cr_assert_eq(sl_ctx_create_child(a, &b), 0);
    cr_assert_eq(sl_ctx_create_child(a, &b2), 0);
    cr_assert_eq(sl_ctx_create_child(b, &c), 0);
    cr_assert_eq(sl__ctx_child_count(a), 2);

    sl_ctx_cancel(root, SL_ECANCELED, "stage %s failed", "db");
    sl_ctx *all[] = { root, a, b, b2, c };
    for (size_t i = 0; i < 5; i++) {
        cr_assert(sl_ctx_is_done(all[i]), "context %zu", i);
        cr_assert_eq(sl_ctx_err(all[i]), SL_ECANCELED);
        cr_assert_str_eq(sl_ctx_cause(all[i]), "stage db failed");
    }
    cr_assert_eq(sl__ctx_child_count(root), 0, "done children are detached");
    cr_assert_eq(sl__ctx_child_count(a), 0);
    sl_ctx_destroy(c);
    sl_ctx_destroy(b2);
    sl_ctx_destroy(b);
    sl_ctx_destroy(a);
    sl_ctx_destroy(root);
}

Test(context, cancel_affects_only_the_subtree)
{
    sl_ctx *root, *a, *b, *sib, *c;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_child(root, &a), 0);
    cr_assert_eq(sl_ctx_create_child(root, &sib), 0);
    cr_assert_eq(sl_ctx_create_child(a, &b), 0);
    cr_assert_eq(sl_ctx_create_child(b, &c), 0);
    sl_ctx_cancel(b, SL_EIO, "b broke");
    cr_assert_not(sl_ctx_is_done(root));
    cr_assert_not(sl_ctx_is_done(a));
    cr_assert_not(sl_ctx_is_done(sib));
    cr_assert_eq(sl_ctx_err(c), SL_EIO);
    cr_assert_str_eq(sl_ctx_cause(c), "b broke");
    cr_assert_eq(sl__ctx_child_count(a), 0, "b detached from a when it was cancelled");
    cr_assert_eq(sl__ctx_child_count(root), 2);
    sl_ctx_destroy(c);
    sl_ctx_destroy(b);
    sl_ctx_destroy(sib);
    sl_ctx_destroy(a);
    sl_ctx_destroy(root);
}

Test(context, child_of_done_parent_starts_done)
{
    sl_ctx *root, *child, *grand;

    cr_assert_eq(sl_ctx_create(&root), 0);
    sl_ctx_cancel(root, SL_ESTOPPED, "shutting down");
    cr_assert_eq(sl_ctx_create_child(root, &child), 0);
    cr_assert_eq(sl_ctx_create_value(child, "k", NULL, &grand), 0);
    cr_assert_eq(sl_ctx_err(child), SL_ESTOPPED);
    cr_assert_str_eq(sl_ctx_cause(grand), "shutting down");
    cr_assert_eq(sl__ctx_child_count(root), 0);
    sl_ctx_destroy(grand);
    sl_ctx_destroy(child);
    sl_ctx_destroy(root);
}

Test(context, destroying_children_releases_references)
{
    sl_ctx *root, *a, *b;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_child(root, &a), 0);
    cr_assert_eq(sl_ctx_create_child(root, &b), 0);
    cr_assert_eq(sl__ctx_refcount(root), 3, "caller + one per child");
    cr_assert_eq(sl__ctx_refcount(a), 2, "caller + parent's list");
    sl_ctx_destroy(a);
    cr_assert_eq(sl__ctx_child_count(root), 1);
    cr_assert_eq(sl__ctx_refcount(root), 2);
    sl_ctx_destroy(b);
    cr_assert_eq(sl__ctx_refcount(root), 1);
    cr_assert_not(sl_ctx_is_done(root), "destroying children leaves the parent running");
    sl_ctx_destroy(root);
}

Test(context, child_keeps_parent_alive)
{
    sl_ctx *root, *child;
    int v = 7;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_value(root, &v, &v, &child), 0);
    sl_ctx_cancel(root, SL_ECANCELED, "gone %d", 1);
    sl_ctx_destroy(root);
    /* root is unreachable to the caller now; the child still reads through it. */
    cr_assert_str_eq(sl_ctx_cause(child), "gone 1");
    cr_assert_eq(sl_ctx_value(child, &v), &v);
    sl_ctx_destroy(child);
}

/* ------------------------------------------------------------ values */

static const char key_user[] = "user";
static const char key_user_copy[] = "user";
static const char key_trace[] = "trace";

Test(context, values_are_found_through_ancestors)
{
    sl_ctx *root, *v1, *plain, *v2, *leaf;
    int user = 1, trace = 2, user2 = 3;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_value(root, key_user, &user, &v1), 0);
    cr_assert_eq(sl_ctx_create_child(v1, &plain), 0);
    cr_assert_eq(sl_ctx_create_value(plain, key_trace, &trace, &v2), 0);
    cr_assert_eq(sl_ctx_create_timeout(v2, 60 * SL_NS_PER_S, &leaf), 0);

    cr_assert_eq(sl_ctx_value(leaf, key_user), &user);
    cr_assert_eq(sl_ctx_value(leaf, key_trace), &trace);
    cr_assert_null(sl_ctx_value(leaf, key_user_copy), "keys compare by address");
    cr_assert_null(sl_ctx_value(plain, key_trace), "values are not seen upwards");
    cr_assert_null(sl_ctx_value(root, key_user));

    sl_ctx *shadow;
    cr_assert_eq(sl_ctx_create_value(leaf, key_user, &user2, &shadow), 0);
    cr_assert_eq(sl_ctx_value(shadow, key_user), &user2, "nearest wins");
    cr_assert_eq(sl_ctx_value(leaf, key_user), &user);

    sl_ctx_destroy(shadow);
    sl_ctx_destroy(leaf);
    sl_ctx_destroy(v2);
    sl_ctx_destroy(plain);
    sl_ctx_destroy(v1);
    sl_ctx_destroy(root);
}

/* ------------------------------------------------------------ deadlines */

Test(context, past_deadline_is_done_at_once)
{
    sl_ctx *root, *d;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_deadline(root, sl_clock_now(NULL) - 1, &d), 0);
    cr_assert(sl_ctx_is_done(d));
    cr_assert_eq(sl_ctx_err(d), SL_EDEADLINE);
    cr_assert_str_eq(sl_ctx_cause(d), "deadline exceeded");
    cr_assert_not(sl_ctx_is_done(root));
    cr_assert_eq(sl__ctx_child_count(root), 0);
    sl_ctx_destroy(d);
    cr_assert_eq(sl__ctx_refcount(root), 1);
    sl_ctx_destroy(root);
}

Test(context, timeout_fires_with_deadline_code_and_cause)
{
    sl_ctx *root, *to, *child;
    int64_t t0 = sl_clock_now(NULL);

    cr_assert_eq(sl_ctx_create(&root), 0);
    /* Long enough that a loaded machine cannot pass it before the checks. */
    cr_assert_eq(sl_ctx_create_timeout(root, 200 * SL_NS_PER_MS, &to), 0);
    cr_assert_eq(sl_ctx_create_child(to, &child), 0);
    cr_assert_not(sl_ctx_is_done(to));
    cr_assert_eq(sl_ctx_deadline(child), sl_ctx_deadline(to));
    cr_assert_geq(sl_ctx_deadline(to), t0 + 200 * SL_NS_PER_MS);

    cr_assert_eq(sl_ctx_wait(child, INT64_MAX), SL_EDEADLINE);
    cr_assert_geq(sl_clock_now(NULL), sl_ctx_deadline(to), "not before the deadline");
    cr_assert_eq(sl_ctx_err(to), SL_EDEADLINE);
    cr_assert_str_eq(sl_ctx_cause(to), "deadline exceeded");
    cr_assert_str_eq(sl_ctx_cause(child), "deadline exceeded");
    cr_assert_not(sl_ctx_is_done(root));
    sl_ctx_destroy(child);
    sl_ctx_destroy(to);
    /* The timer thread drops its own reference on `to` (and so on root)
     * just after the cancel that woke us. */
    WAIT_UNTIL(sl__ctx_refcount(root) == 1);
    sl_ctx_destroy(root);
}

Test(context, earlier_parent_deadline_is_inherited)
{
    sl_ctx *root, *p, *c, *c2;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_timeout(root, 10 * SL_NS_PER_MS, &p), 0);
    cr_assert_eq(sl_ctx_create_timeout(p, 3600 * SL_NS_PER_S, &c), 0);
    cr_assert_eq(sl_ctx_deadline(c), sl_ctx_deadline(p), "the earlier deadline wins");
    cr_assert_eq(sl_ctx_create_deadline(c, sl_ctx_deadline(p) - 1, &c2), 0);
    cr_assert_eq(sl_ctx_deadline(c2), sl_ctx_deadline(p) - 1);
    cr_assert_eq(sl_ctx_wait(c, INT64_MAX), SL_EDEADLINE);
    cr_assert_eq(sl_ctx_err(c2), SL_EDEADLINE);
    sl_ctx_destroy(c2);
    sl_ctx_destroy(c);
    sl_ctx_destroy(p);
    sl_ctx_destroy(root);
}

Test(context, timers_fire_in_deadline_order)
{
    sl_ctx *root, *late[8], *early;

    cr_assert_eq(sl_ctx_create(&root), 0);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(sl_ctx_create_timeout(root, (3600 + i) * SL_NS_PER_S, &late[i]), 0);
    cr_assert_eq(sl_ctx_create_timeout(root, 5 * SL_NS_PER_MS, &early), 0);
    cr_assert_eq(sl_ctx_wait(early, INT64_MAX), SL_EDEADLINE);
    for (int i = 0; i < 8; i++)
        cr_assert_not(sl_ctx_is_done(late[i]));
    /* Destroying a pending deadline takes it off the timer heap. */
    for (int i = 0; i < 8; i++) {
        sl_ctx_ref(late[i]);
        sl_ctx_destroy(late[i]);
        cr_assert_eq(sl__ctx_refcount(late[i]), 1, "heap and parent refs dropped");
        sl_ctx_unref(late[i]);
    }
    sl_ctx_destroy(early);
    sl_ctx_destroy(root);
}

Test(context, cancel_before_deadline_keeps_the_first_code)
{
    sl_ctx *root, *to;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_timeout(root, 3600 * SL_NS_PER_S, &to), 0);
    cr_assert_eq(sl__ctx_refcount(to), 3, "caller, parent's list, timer heap");
    sl_ctx_cancel(to, SL_EIO, "early");
    cr_assert_eq(sl__ctx_refcount(to), 1, "off the timer heap: it can never fire");
    cr_assert_eq(sl_ctx_err(to), SL_EIO);
    cr_assert_str_eq(sl_ctx_cause(to), "early");
    sl_ctx_destroy(to);
    sl_ctx_destroy(root);
}

/* ------------------------------------------------------------ waiting */

Test(context, wait_times_out_when_not_done)
{
    sl_ctx *ctx;
    int64_t t0 = sl_clock_now(NULL);

    cr_assert_eq(sl_ctx_create(&ctx), 0);
    cr_assert_eq(sl_ctx_wait(ctx, t0 + 5 * SL_NS_PER_MS), SL_ETIMEDOUT);
    cr_assert_geq(sl_clock_now(NULL) - t0, 5 * SL_NS_PER_MS);
    cr_assert_eq(sl__ctx_waiter_count(ctx), 0);
    sl_ctx_destroy(ctx);
}

Test(context, sleep_runs_full_time_when_not_cancelled)
{
    sl_ctx *ctx;
    int64_t t0 = sl_clock_now(NULL);

    cr_assert_eq(sl_ctx_create(&ctx), 0);
    cr_assert_eq(sl_ctx_sleep(ctx, 3 * SL_NS_PER_MS), 0);
    cr_assert_geq(sl_clock_now(NULL) - t0, 3 * SL_NS_PER_MS);
    cr_assert_eq(sl_ctx_sleep(ctx, 0), 0);
    sl_ctx_cancel(ctx, SL_ECANCELED, NULL);
    cr_assert_eq(sl_ctx_sleep(ctx, 0), SL_ECANCELED);
    sl_ctx_destroy(ctx);
}

struct sleeper {
    sl_ctx *ctx;
    int rc;
    bool use_wait;
};

static void *sleeper_main(void *arg)
{
    struct sleeper *s = arg;

    if (s->use_wait)
        s->rc = sl_ctx_wait(s->ctx, INT64_MAX);
    else
        s->rc = sl_ctx_sleep(s->ctx, 3600 * SL_NS_PER_S);
    return NULL;
}

static void check_blocked_wakes(bool use_wait)
{
    sl_ctx *root, *a, *b;
    struct sleeper s = { .use_wait = use_wait };
    pthread_t t;
    int64_t t0;

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_child(root, &a), 0);
    cr_assert_eq(sl_ctx_create_child(a, &b), 0);
    s.ctx = b;
    cr_assert_eq(pthread_create(&t, NULL, sleeper_main, &s), 0);
    WAIT_UNTIL(sl__ctx_waiter_count(b) == 1);
    t0 = sl_clock_now(NULL);
    sl_ctx_cancel(root, SL_ESTOPPED, "signal %d", 15);
    pthread_join(t, NULL);
    cr_assert_eq(s.rc, SL_ESTOPPED);
    cr_assert_lt(sl_clock_now(NULL) - t0, 2 * SL_NS_PER_S);
    cr_assert_str_eq(sl_ctx_cause(b), "signal 15");
    cr_assert_eq(sl__ctx_waiter_count(b), 0);
    sl_ctx_destroy(b);
    sl_ctx_destroy(a);
    sl_ctx_destroy(root);
}

Test(context, cancel_wakes_a_blocked_sleep)
{
    check_blocked_wakes(false);
}

Test(context, cancel_wakes_a_blocked_wait)
{
    check_blocked_wakes(true);
}

/* ------------------------------------------------------------ waiter API */

struct counting_waiter {
    sl_ctx_waiter w;
    int calls;
};

static void count_wake(sl_ctx_waiter *w)
{
    ((struct counting_waiter *)w)->calls++;
}

Test(context, waiter_is_woken_exactly_once)
{
    sl_ctx *root, *child;
    struct counting_waiter cw = { .w = { .wake = count_wake } };

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_child(root, &child), 0);
    cr_assert(sl_ctx_add_waiter(child, &cw.w));
    cr_assert_eq(sl__ctx_waiter_count(child), 1);
    sl_ctx_cancel(root, SL_ECANCELED, NULL);
    sl_ctx_cancel(child, SL_EIO, NULL);
    cr_assert_eq(cw.calls, 1);
    sl_ctx_remove_waiter(child, &cw.w);
    cr_assert_eq(cw.calls, 1);
    cr_assert_eq(sl__ctx_waiter_count(child), 0);
    sl_ctx_destroy(child);
    sl_ctx_destroy(root);
}

Test(context, removed_waiter_is_not_woken)
{
    sl_ctx *ctx;
    struct counting_waiter a = { .w = { .wake = count_wake } };
    struct counting_waiter b = { .w = { .wake = count_wake } };
    struct counting_waiter c = { .w = { .wake = count_wake } };

    cr_assert_eq(sl_ctx_create(&ctx), 0);
    cr_assert(sl_ctx_add_waiter(ctx, &a.w));
    cr_assert(sl_ctx_add_waiter(ctx, &b.w));
    cr_assert(sl_ctx_add_waiter(ctx, &c.w));
    sl_ctx_remove_waiter(ctx, &b.w);
    cr_assert_eq(sl__ctx_waiter_count(ctx), 2);
    sl_ctx_cancel(ctx, SL_ECANCELED, NULL);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 0);
    cr_assert_eq(c.calls, 1);
    sl_ctx_remove_waiter(ctx, &a.w);
    sl_ctx_remove_waiter(ctx, &c.w);
    sl_ctx_destroy(ctx);
}

Test(context, add_waiter_on_done_context_fails)
{
    sl_ctx *ctx;
    struct counting_waiter cw = { .w = { .wake = count_wake } };

    cr_assert_eq(sl_ctx_create(&ctx), 0);
    sl_ctx_cancel(ctx, SL_ECANCELED, NULL);
    cr_assert_not(sl_ctx_add_waiter(ctx, &cw.w));
    cr_assert_eq(cw.calls, 0, "not called: the caller learns from the result");
    sl_ctx_remove_waiter(ctx, &cw.w);
    sl_ctx_destroy(ctx);
}
