/* Tests for engine/queue.c: FIFO through growth and shrinking, blocking pop
 * woken by push, close and cancel, the size metrics, item ownership. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/context_internal.h"
#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/patterns.h"

#define WAIT_UNTIL(cond)                                                    \
    do {                                                                    \
        int64_t wu_t0 = sl_clock_now(NULL);                                 \
        while (!(cond)) {                                                   \
            cr_assert_lt(sl_clock_now(NULL) - wu_t0, 10 * SL_NS_PER_S,      \
                         "timed out waiting for " #cond);                   \
            sched_yield();                                                  \
        }                                                                   \
    } while (0)

static atomic_int frees;

static void int_free(void *p)
{
    atomic_fetch_add(&frees, 1);
    free(p);
}

static int *item(int v)
{
    int *p = malloc(sizeof(*p));
    cr_assert_not_null(p);
    *p = v;
    return p;
}

static size_t waiting(sl_queue *q)
{
    sl_queue_stats st;
    sl_queue_stats_get(q, &st);
    return st.waiting;
}

Test(queue, fifo_through_growth_and_shrinking)
{
    sl_queue *q;
    sl_queue_stats st;
    void *p;
    int next_in = 0, next_out = 0;

    cr_assert_eq(sl_queue_create(int_free, &q), 0);
    /* Grow far past the initial ring, drain most (shrinking), wrap, grow
     * again: order must hold throughout. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 1000; i++)
            cr_assert_eq(sl_queue_push(q, item(next_in++)), 0);
        for (int i = 0; i < 990; i++) {
            cr_assert_eq(sl_queue_pop(q, NULL, &p), 0);
            cr_assert_eq(*(int *)p, next_out++);
            free(p);
        }
    }
    cr_assert_eq(sl_queue_len(q), 30);
    sl_queue_stats_get(q, &st);
    cr_assert_eq(st.pushed, 3000);
    cr_assert_eq(st.popped, 2970);
    cr_assert_eq(st.len, 30);
    cr_assert_eq(st.max_len, 1020, "high-water mark: 10 + 10 + 1000");
    cr_assert_eq(st.waiting, 0);
    while (sl_queue_try_pop(q, &p) == 0) {
        cr_assert_eq(*(int *)p, next_out++);
        free(p);
    }
    cr_assert_eq(next_out, next_in);
    cr_assert_eq(sl_queue_try_pop(q, &p), SL_EAGAIN);
    cr_assert_eq(atomic_load(&frees), 0);
    sl_queue_destroy(q);
}

struct popper {
    sl_queue *q;
    sl_ctx *ctx;
    void *item;
    int rc;
};

static void *pop_main(void *arg)
{
    struct popper *p = arg;
    p->rc = sl_queue_pop(p->q, p->ctx, &p->item);
    return NULL;
}

Test(queue, blocked_pop_wakes_on_push)
{
    struct popper pp = { 0 };
    pthread_t th;

    cr_assert_eq(sl_queue_create(int_free, &pp.q), 0);
    cr_assert_eq(sl_ctx_create(&pp.ctx), 0);
    cr_assert_eq(pthread_create(&th, NULL, pop_main, &pp), 0);
    WAIT_UNTIL(waiting(pp.q) == 1);
    cr_assert_eq(sl_queue_push(pp.q, item(5)), 0);
    pthread_join(th, NULL);
    cr_assert_eq(pp.rc, 0);
    cr_assert_eq(*(int *)pp.item, 5);
    free(pp.item);
    cr_assert_eq(sl__ctx_waiter_count(pp.ctx), 0, "waiter removed");
    sl_ctx_destroy(pp.ctx);
    sl_queue_destroy(pp.q);
}

Test(queue, blocked_pop_wakes_on_cancel_with_its_code)
{
    struct popper pp = { 0 };
    pthread_t th;

    cr_assert_eq(sl_queue_create(int_free, &pp.q), 0);
    cr_assert_eq(sl_ctx_create(&pp.ctx), 0);
    cr_assert_eq(pthread_create(&th, NULL, pop_main, &pp), 0);
    WAIT_UNTIL(waiting(pp.q) == 1 && sl__ctx_waiter_count(pp.ctx) == 1);
    sl_ctx_cancel(pp.ctx, SL_EIO, "gone");
    pthread_join(th, NULL);
    cr_assert_eq(pp.rc, SL_EIO);
    cr_assert_eq(waiting(pp.q), 0);
    /* A done context wins even over a queued item. */
    cr_assert_eq(sl_queue_push(pp.q, item(1)), 0);
    void *p;
    cr_assert_eq(sl_queue_pop(pp.q, pp.ctx, &p), SL_EIO);
    cr_assert_eq(sl_queue_len(pp.q), 1);
    sl_ctx_destroy(pp.ctx);
    sl_queue_destroy(pp.q);
    cr_assert_eq(atomic_load(&frees), 1, "destroy frees what is left");
}

Test(queue, cancelled_popper_does_not_swallow_a_push)
{
    struct popper a = { 0 }, b = { 0 };
    pthread_t ta, tb;
    sl_queue *q;

    cr_assert_eq(sl_queue_create(int_free, &q), 0);
    a.q = b.q = q;
    cr_assert_eq(sl_ctx_create(&a.ctx), 0);
    cr_assert_eq(sl_ctx_create(&b.ctx), 0);
    cr_assert_eq(pthread_create(&ta, NULL, pop_main, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, pop_main, &b), 0);
    WAIT_UNTIL(waiting(q) == 2);
    /* Whichever popper the push wakes, b must end up with the item. */
    sl_ctx_cancel(a.ctx, SL_ECANCELED, NULL);
    cr_assert_eq(sl_queue_push(q, item(9)), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(b.rc, 0);
    cr_assert_eq(*(int *)b.item, 9);
    free(b.item);
    cr_assert_eq(a.rc, SL_ECANCELED);
    sl_ctx_destroy(a.ctx);
    sl_ctx_destroy(b.ctx);
    sl_queue_destroy(q);
}

Test(queue, close_wakes_poppers_and_refuses_pushes)
{
    struct popper pp = { 0 };
    pthread_t th;
    void *p;

    cr_assert_eq(sl_queue_create(int_free, &pp.q), 0);
    cr_assert_eq(pthread_create(&th, NULL, pop_main, &pp), 0);
    WAIT_UNTIL(waiting(pp.q) == 1);
    sl_queue_close(pp.q);
    pthread_join(th, NULL);
    cr_assert_eq(pp.rc, SL_ECLOSED);
    cr_assert(sl_queue_is_closed(pp.q));
    cr_assert_eq(sl_queue_push(pp.q, item(1)), SL_ECLOSED);
    cr_assert_eq(atomic_load(&frees), 1, "a refused push frees the item");
    cr_assert_eq(sl_queue_try_pop(pp.q, &p), SL_ECLOSED);
    sl_queue_destroy(pp.q);

    /* Close drains first. */
    sl_queue *q;
    cr_assert_eq(sl_queue_create(int_free, &q), 0);
    cr_assert_eq(sl_queue_push(q, item(1)), 0);
    cr_assert_eq(sl_queue_push(q, item(2)), 0);
    sl_queue_close(q);
    sl_queue_close(q);
    cr_assert_eq(sl_queue_pop(q, NULL, &p), 0);
    cr_assert_eq(*(int *)p, 1);
    free(p);
    cr_assert_eq(sl_queue_try_pop(q, &p), 0);
    cr_assert_eq(*(int *)p, 2);
    free(p);
    cr_assert_eq(sl_queue_pop(q, NULL, &p), SL_ECLOSED);
    sl_queue_destroy(q);
    sl_queue_destroy(NULL);
}

Test(queue, rejects_null_out)
{
    cr_assert_eq(sl_queue_create(NULL, NULL), SL_EINVAL);
}
