/* Tests for engine/channel.c: order, capacity, close, cancellation, batches,
 * stats and item ownership. */
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

#define WAIT_UNTIL(cond)                                                    \
    do {                                                                    \
        int64_t wu_t0 = sl_clock_now(NULL);                                 \
        while (!(cond)) {                                                   \
            cr_assert_lt(sl_clock_now(NULL) - wu_t0, 10 * SL_NS_PER_S,      \
                         "timed out waiting for " #cond);                   \
            sched_yield();                                                  \
        }                                                                   \
    } while (0)

/* Items are heap ints; the free function counts what the channel frees. */
static atomic_int frees;

static void count_free(void *item)
{
    atomic_fetch_add(&frees, 1);
    free(item);
}

static int *item(int v)
{
    int *p = malloc(sizeof(*p));
    cr_assert_not_null(p);
    *p = v;
    return p;
}

static int take(void *p)
{
    int v = *(int *)p;
    free(p);
    return v;
}

/* ------------------------------------------------------------ basics */

Test(channel, create_rejects_bad_arguments)
{
    sl_chan *ch = (sl_chan *)0x1;

    cr_assert_eq(sl_chan_create(0, NULL, &ch), SL_EINVAL);
    cr_assert_eq(sl_chan_create(4, NULL, NULL), SL_EINVAL);
    cr_assert_eq(ch, (sl_chan *)0x1);
    sl_chan_destroy(NULL);
}

Test(channel, fifo_order_and_capacity)
{
    sl_chan *ch;
    void *out;

    cr_assert_eq(sl_chan_create(3, count_free, &ch), 0);
    cr_assert_eq(sl_chan_cap(ch), 3);
    cr_assert_eq(sl_chan_len(ch), 0);
    /* Wrap the ring a few times. */
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 5; round++) {
        while (sl_chan_len(ch) < 3)
            cr_assert_eq(sl_chan_send(ch, NULL, item(next_in++)), 0);
        int *extra = item(-1);
        cr_assert_eq(sl_chan_try_send(ch, extra), SL_EAGAIN, "full");
        cr_assert_eq(*extra, -1, "try_send keeps ownership on SL_EAGAIN");
        free(extra);
        cr_assert_eq(sl_chan_len(ch), 3);
        for (int i = 0; i < 2; i++) {
            cr_assert_eq(sl_chan_recv(ch, NULL, &out), 0);
            cr_assert_eq(take(out), next_out++);
        }
    }
    while (sl_chan_try_recv(ch, &out) == 0)
        cr_assert_eq(take(out), next_out++);
    cr_assert_eq(next_out, next_in);
    cr_assert_eq(sl_chan_try_recv(ch, &out), SL_EAGAIN);
    cr_assert_eq(atomic_load(&frees), 0);
    sl_chan_destroy(ch);
}

Test(channel, try_ops)
{
    sl_chan *ch;
    void *out = NULL;

    cr_assert_eq(sl_chan_create(1, NULL, &ch), 0);
    cr_assert_eq(sl_chan_try_recv(ch, &out), SL_EAGAIN);
    cr_assert_eq(sl_chan_try_send(ch, (void *)0x10), 0);
    cr_assert_eq(sl_chan_try_send(ch, (void *)0x20), SL_EAGAIN);
    cr_assert_eq(sl_chan_try_recv(ch, &out), 0);
    cr_assert_eq(out, (void *)0x10);
    cr_assert_eq(sl_chan_try_send(NULL, NULL), SL_EINVAL);
    cr_assert_eq(sl_chan_try_recv(ch, NULL), SL_EINVAL);
    sl_chan_destroy(ch);
}

/* ------------------------------------------------------------ close */

Test(channel, close_drains_then_reports_closed)
{
    sl_chan *ch;
    void *out;

    cr_assert_eq(sl_chan_create(4, count_free, &ch), 0);
    cr_assert_eq(sl_chan_send(ch, NULL, item(1)), 0);
    cr_assert_eq(sl_chan_send(ch, NULL, item(2)), 0);
    cr_assert_not(sl_chan_is_closed(ch));
    sl_chan_close(ch);
    sl_chan_close(ch);   /* idempotent */
    cr_assert(sl_chan_is_closed(ch));

    cr_assert_eq(sl_chan_send(ch, NULL, item(3)), SL_ECLOSED);
    cr_assert_eq(atomic_load(&frees), 1, "a failed send frees the item");
    cr_assert_eq(sl_chan_try_send(ch, item(4)), SL_ECLOSED);
    cr_assert_eq(atomic_load(&frees), 2, "try_send on a closed channel frees too");
    void *batch[3] = { item(5), item(6), item(7) };
    cr_assert_eq(sl_chan_send_batch(ch, NULL, batch, 3), SL_ECLOSED);
    cr_assert_eq(atomic_load(&frees), 5);

    cr_assert_eq(sl_chan_recv(ch, NULL, &out), 0);
    cr_assert_eq(take(out), 1);
    cr_assert_eq(sl_chan_try_recv(ch, &out), 0);
    cr_assert_eq(take(out), 2);
    cr_assert_eq(sl_chan_recv(ch, NULL, &out), SL_ECLOSED);
    cr_assert_eq(sl_chan_try_recv(ch, &out), SL_ECLOSED);
    size_t got = 99;
    void *outs[4];
    cr_assert_eq(sl_chan_recv_batch(ch, NULL, outs, 4, &got), SL_ECLOSED);
    cr_assert_eq(got, 0);
    sl_chan_destroy(ch);
    cr_assert_eq(atomic_load(&frees), 5);
}

Test(channel, destroy_frees_queued_items)
{
    sl_chan *ch;
    void *out;

    cr_assert_eq(sl_chan_create(8, count_free, &ch), 0);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(sl_chan_send(ch, NULL, item(i)), 0);
    cr_assert_eq(sl_chan_recv(ch, NULL, &out), 0);
    take(out);
    cr_assert_eq(sl_chan_send(ch, NULL, item(8)), 0);   /* wrapped */
    sl_chan_destroy(ch);
    cr_assert_eq(atomic_load(&frees), 8);
}

Test(channel, null_free_fn_never_frees)
{
    sl_chan *ch;
    static int x;

    cr_assert_eq(sl_chan_create(1, NULL, &ch), 0);
    cr_assert_eq(sl_chan_send(ch, NULL, &x), 0);
    sl_chan_close(ch);
    cr_assert_eq(sl_chan_send(ch, NULL, &x), SL_ECLOSED);
    sl_chan_destroy(ch);   /* must not free &x */
}

/* ------------------------------------------------------------ blocking */

struct op {
    sl_chan *ch;
    sl_ctx *ctx;
    void *item;             /* send: the item; recv: what arrived */
    void **items;           /* batch */
    size_t n;               /* batch size / max */
    size_t got;             /* recv_batch result */
    int rc;
};

static void *send_main(void *arg)
{
    struct op *o = arg;
    o->rc = sl_chan_send(o->ch, o->ctx, o->item);
    return NULL;
}

static void *recv_main(void *arg)
{
    struct op *o = arg;
    o->rc = sl_chan_recv(o->ch, o->ctx, &o->item);
    return NULL;
}

static void *send_batch_main(void *arg)
{
    struct op *o = arg;
    o->rc = sl_chan_send_batch(o->ch, o->ctx, o->items, o->n);
    return NULL;
}

static void *recv_batch_main(void *arg)
{
    struct op *o = arg;
    o->rc = sl_chan_recv_batch(o->ch, o->ctx, o->items, o->n, &o->got);
    return NULL;
}

/* A three-level tree: root -> mid -> leaf. */
struct tree {
    sl_ctx *root, *mid, *leaf;
};

static void tree_make(struct tree *t)
{
    cr_assert_eq(sl_ctx_create(&t->root), 0);
    cr_assert_eq(sl_ctx_create_child(t->root, &t->mid), 0);
    cr_assert_eq(sl_ctx_create_child(t->mid, &t->leaf), 0);
}

static void tree_free(struct tree *t)
{
    sl_ctx_destroy(t->leaf);
    sl_ctx_destroy(t->mid);
    sl_ctx_destroy(t->root);
}

Test(channel, root_cancel_wakes_sender_blocked_on_full_channel)
{
    sl_chan *ch;
    struct tree t;
    pthread_t th;
    void *out;

    tree_make(&t);
    cr_assert_eq(sl_chan_create(1, count_free, &ch), 0);
    cr_assert_eq(sl_chan_send(ch, NULL, item(1)), 0);
    struct op o = { .ch = ch, .ctx = t.leaf, .item = item(2) };
    cr_assert_eq(pthread_create(&th, NULL, send_main, &o), 0);
    WAIT_UNTIL(sl__chan_blocked(ch, true) == 1);
    sl_ctx_cancel(t.root, SL_ECANCELED, "stage %s failed", "db");
    pthread_join(th, NULL);
    cr_assert_eq(o.rc, SL_ECANCELED);
    cr_assert_str_eq(sl_ctx_cause(t.leaf), "stage db failed");
    cr_assert_eq(atomic_load(&frees), 1, "the unsent item was freed");
    cr_assert_eq(sl__chan_blocked(ch, true), 0);
    cr_assert_eq(sl_chan_len(ch), 1);
    cr_assert_eq(sl_chan_recv(ch, NULL, &out), 0);
    cr_assert_eq(take(out), 1);
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    cr_assert_eq(st.sent, 1);
    cr_assert_gt(st.blocked_send_ns, 0);
    sl_chan_destroy(ch);
    tree_free(&t);
}

Test(channel, root_cancel_wakes_receiver_blocked_on_empty_channel)
{
    sl_chan *ch;
    struct tree t;
    pthread_t th;

    tree_make(&t);
    cr_assert_eq(sl_chan_create(4, count_free, &ch), 0);
    struct op o = { .ch = ch, .ctx = t.leaf };
    cr_assert_eq(pthread_create(&th, NULL, recv_main, &o), 0);
    WAIT_UNTIL(sl__chan_blocked(ch, false) == 1);
    sl_ctx_cancel(t.root, SL_ESTOPPED, "interrupted");
    pthread_join(th, NULL);
    cr_assert_eq(o.rc, SL_ESTOPPED);
    cr_assert_eq(sl__chan_blocked(ch, false), 0);
    /* The channel still works for others afterwards. */
    cr_assert_eq(sl_chan_send(ch, NULL, item(5)), 0);
    sl_chan_destroy(ch);
    cr_assert_eq(atomic_load(&frees), 1);
    tree_free(&t);
}

Test(channel, deadline_wakes_blocked_receiver)
{
    sl_chan *ch;
    sl_ctx *root, *to;
    void *out;

    int64_t t0 = sl_clock_now(NULL);

    cr_assert_eq(sl_ctx_create(&root), 0);
    cr_assert_eq(sl_ctx_create_timeout(root, 10 * SL_NS_PER_MS, &to), 0);
    cr_assert_eq(sl_chan_create(4, NULL, &ch), 0);
    cr_assert_eq(sl_chan_recv(ch, to, &out), SL_EDEADLINE);
    cr_assert_str_eq(sl_ctx_cause(to), "deadline exceeded");
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    /* Counted from when the receiver announced it would park, after a
     * short spin, so only "some time" is certain on a loaded machine. */
    cr_assert_gt(st.idle_recv_ns, 0);
    cr_assert_leq(st.idle_recv_ns, sl_clock_now(NULL) - t0);
    sl_chan_destroy(ch);
    sl_ctx_destroy(to);
    sl_ctx_destroy(root);
}

Test(channel, done_context_fails_before_touching_the_channel)
{
    sl_chan *ch;
    sl_ctx *ctx;
    void *out;

    cr_assert_eq(sl_ctx_create(&ctx), 0);
    cr_assert_eq(sl_chan_create(4, count_free, &ch), 0);
    cr_assert_eq(sl_chan_send(ch, NULL, item(1)), 0);
    sl_ctx_cancel(ctx, SL_EIO, "gone");
    cr_assert_eq(sl_chan_send(ch, ctx, item(2)), SL_EIO, "cancellation wins over free space");
    cr_assert_eq(atomic_load(&frees), 1);
    cr_assert_eq(sl_chan_recv(ch, ctx, &out), SL_EIO, "cancellation wins over a ready item");
    cr_assert_eq(sl_chan_len(ch), 1);
    sl_chan_destroy(ch);
    sl_ctx_destroy(ctx);
}

Test(channel, close_wakes_blocked_receivers_and_senders)
{
    sl_chan *rch, *sch;
    pthread_t r1, r2, s1;

    cr_assert_eq(sl_chan_create(2, count_free, &rch), 0);
    cr_assert_eq(sl_chan_create(1, count_free, &sch), 0);
    cr_assert_eq(sl_chan_send(sch, NULL, item(0)), 0);
    struct op a = { .ch = rch }, b = { .ch = rch };
    struct op s = { .ch = sch, .item = item(1) };
    cr_assert_eq(pthread_create(&r1, NULL, recv_main, &a), 0);
    cr_assert_eq(pthread_create(&r2, NULL, recv_main, &b), 0);
    cr_assert_eq(pthread_create(&s1, NULL, send_main, &s), 0);
    WAIT_UNTIL(sl__chan_blocked(rch, false) == 2);
    WAIT_UNTIL(sl__chan_blocked(sch, true) == 1);
    sl_chan_close(rch);
    sl_chan_close(sch);
    pthread_join(r1, NULL);
    pthread_join(r2, NULL);
    pthread_join(s1, NULL);
    cr_assert_eq(a.rc, SL_ECLOSED);
    cr_assert_eq(b.rc, SL_ECLOSED);
    cr_assert_eq(s.rc, SL_ECLOSED);
    cr_assert_eq(atomic_load(&frees), 1, "the blocked sender's item was freed");
    sl_chan_destroy(rch);
    sl_chan_destroy(sch);
    cr_assert_eq(atomic_load(&frees), 2);
}

Test(channel, send_wakes_blocked_receiver_with_the_item)
{
    sl_chan *ch;
    pthread_t th;

    cr_assert_eq(sl_chan_create(4, NULL, &ch), 0);
    struct op o = { .ch = ch };
    cr_assert_eq(pthread_create(&th, NULL, recv_main, &o), 0);
    WAIT_UNTIL(sl__chan_blocked(ch, false) == 1);
    cr_assert_eq(sl_chan_send(ch, NULL, (void *)0x42), 0);
    pthread_join(th, NULL);
    cr_assert_eq(o.rc, 0);
    cr_assert_eq(o.item, (void *)0x42);
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    cr_assert_gt(st.idle_recv_ns, 0);
    cr_assert_eq(st.blocked_send_ns, 0);
    sl_chan_destroy(ch);
}

Test(channel, recv_wakes_blocked_sender)
{
    sl_chan *ch;
    pthread_t th;
    void *out;

    cr_assert_eq(sl_chan_create(1, NULL, &ch), 0);
    cr_assert_eq(sl_chan_send(ch, NULL, (void *)0x1), 0);
    struct op o = { .ch = ch, .item = (void *)0x2 };
    cr_assert_eq(pthread_create(&th, NULL, send_main, &o), 0);
    WAIT_UNTIL(sl__chan_blocked(ch, true) == 1);
    cr_assert_eq(sl_chan_recv(ch, NULL, &out), 0);
    cr_assert_eq(out, (void *)0x1);
    pthread_join(th, NULL);
    cr_assert_eq(o.rc, 0);
    cr_assert_eq(sl_chan_recv(ch, NULL, &out), 0);
    cr_assert_eq(out, (void *)0x2);
    sl_chan_destroy(ch);
}

/* ------------------------------------------------------------ batches */

Test(channel, batch_ops_single_thread)
{
    sl_chan *ch;
    void *in[5], *out[8];
    size_t got = 0;

    cr_assert_eq(sl_chan_create(8, NULL, &ch), 0);
    for (uintptr_t i = 0; i < 5; i++)
        in[i] = (void *)(i + 1);
    cr_assert_eq(sl_chan_send_batch(ch, NULL, in, 5), 0);
    cr_assert_eq(sl_chan_send_batch(ch, NULL, in, 0), 0);
    cr_assert_eq(sl_chan_len(ch), 5);
    cr_assert_eq(sl_chan_recv_batch(ch, NULL, out, 3, &got), 0);
    cr_assert_eq(got, 3, "at most max");
    for (uintptr_t i = 0; i < 3; i++)
        cr_assert_eq(out[i], (void *)(i + 1));
    cr_assert_eq(sl_chan_recv_batch(ch, NULL, out, 8, &got), 0);
    cr_assert_eq(got, 2, "whatever is there, without waiting for more");
    cr_assert_eq(out[0], (void *)4);
    cr_assert_eq(out[1], (void *)5);
    cr_assert_eq(sl_chan_recv_batch(ch, NULL, out, 0, &got), SL_EINVAL);
    cr_assert_eq(sl_chan_send_batch(ch, NULL, NULL, 2), SL_EINVAL);
    sl_chan_destroy(ch);
}

Test(channel, batches_wrap_around_an_odd_ring)
{
    sl_chan *ch;
    void *in[5], *out[5];
    size_t got;

    cr_assert_eq(sl_chan_create(5, NULL, &ch), 0);
    for (uintptr_t lap = 0; lap < 7; lap++) {
        /* Start each lap at a different offset so every split is hit. */
        cr_assert_eq(sl_chan_send(ch, NULL, (void *)(lap + 100)), 0);
        cr_assert_eq(sl_chan_recv(ch, NULL, out), 0);
        cr_assert_eq(out[0], (void *)(lap + 100));
        for (uintptr_t i = 0; i < 5; i++)
            in[i] = (void *)(lap * 10 + i + 1);
        cr_assert_eq(sl_chan_send_batch(ch, NULL, in, 5), 0);
        cr_assert_eq(sl_chan_len(ch), 5);
        cr_assert_eq(sl_chan_try_send(ch, (void *)1), SL_EAGAIN);
        cr_assert_eq(sl_chan_recv_batch(ch, NULL, out, 5, &got), 0);
        cr_assert_eq(got, 5);
        for (uintptr_t i = 0; i < 5; i++)
            cr_assert_eq(out[i], in[i], "lap %zu item %zu", (size_t)lap, (size_t)i);
    }
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    cr_assert_eq(st.sent, 7 * 6);
    cr_assert_eq(st.received, 7 * 6);
    cr_assert_eq(st.max_depth, 5);
    sl_chan_destroy(ch);
}

Test(channel, batch_larger_than_capacity_flows_in_order)
{
    enum { N = 1000 };
    sl_chan *ch;
    pthread_t th;
    void **in = malloc(N * sizeof(*in));
    void *out[7];
    uintptr_t expect = 0;

    cr_assert_eq(sl_chan_create(8, NULL, &ch), 0);
    for (uintptr_t i = 0; i < N; i++)
        in[i] = (void *)i;
    struct op o = { .ch = ch, .items = in, .n = N };
    cr_assert_eq(pthread_create(&th, NULL, send_batch_main, &o), 0);
    while (expect < N) {
        size_t got;
        cr_assert_eq(sl_chan_recv_batch(ch, NULL, out, 7, &got), 0);
        cr_assert(got >= 1 && got <= 7);
        for (size_t i = 0; i < got; i++)
            cr_assert_eq(out[i], (void *)expect++);
    }
    pthread_join(th, NULL);
    cr_assert_eq(o.rc, 0);
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    cr_assert_eq(st.sent, N);
    cr_assert_eq(st.received, N);
    cr_assert_leq(st.max_depth, 8);
    sl_chan_destroy(ch);
    free(in);
}

Test(channel, cancelled_batch_send_frees_the_unsent_rest)
{
    sl_chan *ch;
    struct tree t;
    pthread_t th;
    void *in[10];

    tree_make(&t);
    cr_assert_eq(sl_chan_create(4, count_free, &ch), 0);
    for (int i = 0; i < 10; i++)
        in[i] = item(i);
    struct op o = { .ch = ch, .ctx = t.leaf, .items = in, .n = 10 };
    cr_assert_eq(pthread_create(&th, NULL, send_batch_main, &o), 0);
    WAIT_UNTIL(sl__chan_blocked(ch, true) == 1);
    sl_ctx_cancel(t.mid, SL_ECANCELED, NULL);
    pthread_join(th, NULL);
    cr_assert_eq(o.rc, SL_ECANCELED);
    cr_assert_eq(atomic_load(&frees), 6);
    cr_assert_eq(sl_chan_len(ch), 4);
    void *out[4];
    size_t got;
    cr_assert_eq(sl_chan_recv_batch(ch, NULL, out, 4, &got), 0);
    cr_assert_eq(got, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(take(out[i]), i, "the sent prefix arrived in order");
    sl_chan_destroy(ch);
    tree_free(&t);
}

Test(channel, cancelled_batch_recv_gets_nothing)
{
    sl_chan *ch;
    struct tree t;
    pthread_t th;
    void *out[4];

    tree_make(&t);
    cr_assert_eq(sl_chan_create(4, NULL, &ch), 0);
    struct op o = { .ch = ch, .ctx = t.leaf, .items = out, .n = 4, .got = 99 };
    cr_assert_eq(pthread_create(&th, NULL, recv_batch_main, &o), 0);
    WAIT_UNTIL(sl__chan_blocked(ch, false) == 1);
    sl_ctx_cancel(t.root, SL_ECANCELED, NULL);
    pthread_join(th, NULL);
    cr_assert_eq(o.rc, SL_ECANCELED);
    cr_assert_eq(o.got, 0);
    sl_chan_destroy(ch);
    tree_free(&t);
}

/* ------------------------------------------------------------ stats */

Test(channel, stats_count_items_and_depth)
{
    sl_chan *ch;
    sl_chan_stats st;
    void *out;

    cr_assert_eq(sl_chan_create(16, NULL, &ch), 0);
    for (uintptr_t i = 1; i <= 10; i++)
        cr_assert_eq(sl_chan_send(ch, NULL, (void *)i), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sl_chan_recv(ch, NULL, &out), 0);
    cr_assert_eq(sl_chan_try_send(ch, (void *)11), 0);
    sl_chan_stats_get(ch, &st);
    cr_assert_eq(st.sent, 11);
    cr_assert_eq(st.received, 4);
    cr_assert_eq(st.depth, 7);
    cr_assert_eq(st.capacity, 16);
    cr_assert_eq(st.max_depth, 10);
    cr_assert_eq(st.blocked_send_ns, 0, "never blocked");
    cr_assert_eq(st.idle_recv_ns, 0, "never idle");
    sl_chan_destroy(ch);
}

Test(channel, stats_of_null_are_zero)
{
    sl_chan_stats st = { .sent = 5 };

    sl_chan_stats_get(NULL, &st);
    cr_assert_eq(st.sent, 0);
    cr_assert_eq(st.capacity, 0);
    cr_assert_eq(sl_chan_len(NULL), 0);
    cr_assert_not(sl_chan_is_closed(NULL));
}
