/* Tests for engine/ordone.c: sl_chan_for_each stops on close, on the
 * context, and on the callback's request, and hands every item over. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/channel_internal.h"
#include "sluice/channel.h"
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

static int *item(int v)
{
    int *p = malloc(sizeof(*p));
    cr_assert_not_null(p);
    *p = v;
    return p;
}

struct seen {
    int values[64];
    int n;
    int stop_at;        /* return SL_EPARSE on this value; -1: never */
};

static int collect(void *it, void *arg)
{
    struct seen *s = arg;
    int v = *(int *)it;
    free(it);
    s->values[s->n++] = v;
    return v == s->stop_at ? SL_EPARSE : 0;
}

Test(ordone, reads_every_item_in_order_until_closed)
{
    sl_chan *ch;
    struct seen s = { .stop_at = -1 };

    cr_assert_eq(sl_chan_create(16, free, &ch), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(sl_chan_send(ch, NULL, item(i)), 0);
    sl_chan_close(ch);
    cr_assert_eq(sl_chan_for_each(ch, NULL, collect, &s), 0);
    cr_assert_eq(s.n, 10);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(s.values[i], i);
    sl_chan_destroy(ch);
}

Test(ordone, callback_error_stops_and_leaves_the_rest)
{
    sl_chan *ch;
    struct seen s = { .stop_at = 3 };

    cr_assert_eq(sl_chan_create(16, free, &ch), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(sl_chan_send(ch, NULL, item(i)), 0);
    cr_assert_eq(sl_chan_for_each(ch, NULL, collect, &s), SL_EPARSE);
    cr_assert_eq(s.n, 4, "items 0..3 were handed over");
    cr_assert_eq(sl_chan_len(ch), 6, "the rest stay in the channel");
    sl_chan_destroy(ch);   /* frees the 6 */
}

struct loop {
    sl_chan *ch;
    sl_ctx *ctx;
    struct seen s;
    int rc;
};

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    l->rc = sl_chan_for_each(l->ch, l->ctx, collect, &l->s);
    return NULL;
}

Test(ordone, blocked_reader_returns_the_context_error)
{
    struct loop l = { .s = { .stop_at = -1 } };
    pthread_t th;

    cr_assert_eq(sl_chan_create(4, free, &l.ch), 0);
    cr_assert_eq(sl_ctx_create(&l.ctx), 0);
    cr_assert_eq(sl_chan_send(l.ch, NULL, item(7)), 0);
    cr_assert_eq(pthread_create(&th, NULL, loop_main, &l), 0);
    WAIT_UNTIL(sl__chan_blocked(l.ch, false) == 1);
    sl_ctx_cancel(l.ctx, SL_EIO, "source gone");
    pthread_join(th, NULL);
    cr_assert_eq(l.rc, SL_EIO);
    cr_assert_eq(l.s.n, 1);
    cr_assert_eq(l.s.values[0], 7);
    cr_assert_not(sl_chan_is_closed(l.ch));
    sl_ctx_destroy(l.ctx);
    sl_chan_destroy(l.ch);
}

Test(ordone, done_context_reads_nothing)
{
    sl_chan *ch;
    sl_ctx *ctx;
    struct seen s = { .stop_at = -1 };

    cr_assert_eq(sl_chan_create(4, free, &ch), 0);
    cr_assert_eq(sl_ctx_create(&ctx), 0);
    cr_assert_eq(sl_chan_send(ch, NULL, item(1)), 0);
    sl_ctx_cancel(ctx, SL_ECANCELED, NULL);
    cr_assert_eq(sl_chan_for_each(ch, ctx, collect, &s), SL_ECANCELED);
    cr_assert_eq(s.n, 0);
    sl_ctx_destroy(ctx);
    sl_chan_destroy(ch);
}

Test(ordone, rejects_null_arguments)
{
    sl_chan *ch;

    cr_assert_eq(sl_chan_create(1, NULL, &ch), 0);
    cr_assert_eq(sl_chan_for_each(NULL, NULL, collect, NULL), SL_EINVAL);
    cr_assert_eq(sl_chan_for_each(ch, NULL, NULL, NULL), SL_EINVAL);
    sl_chan_destroy(ch);
}
