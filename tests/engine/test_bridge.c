/* Tests for engine/bridge.c: sub-channels flattened in the order they were
 * sent, whatever order their producers fill them in; release and close on
 * every path. */
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

/* Release records the order sub-channels were finished in. */
struct released {
    sl_chan *subs[16];
    int n;
};

static void record_release(sl_chan *sub, void *arg)
{
    struct released *r = arg;
    r->subs[r->n++] = sub;
}

/* Fills one sub-channel with base .. base + count - 1, then closes it. */
struct filler {
    sl_chan *ch;
    int base;
    int count;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *turn;           /* fill only when *turn == my_turn */
    int my_turn;
};

static void *filler_main(void *arg)
{
    struct filler *f = arg;
    pthread_mutex_lock(f->mu);
    while (*f->turn != f->my_turn)
        pthread_cond_wait(f->cv, f->mu);
    pthread_mutex_unlock(f->mu);
    for (int i = 0; i < f->count; i++)
        cr_assert_eq(sl_chan_send(f->ch, NULL, item(f->base + i)), 0);
    sl_chan_close(f->ch);
    pthread_mutex_lock(f->mu);
    (*f->turn)++;
    pthread_cond_broadcast(f->cv);
    pthread_mutex_unlock(f->mu);
    return NULL;
}

Test(bridge, flattens_in_sub_channel_order_filled_in_reverse)
{
    enum { SUBS = 4, PER = 50 };
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    sl_chan *subs, *out, *sub[SUBS];
    struct filler f[SUBS];
    pthread_t th[SUBS];
    struct released rel = { 0 };
    sl_bridge *b;
    int turn = 0;

    cr_assert_eq(sl_chan_create(SUBS, NULL, &subs), 0);
    cr_assert_eq(sl_chan_create(3, int_free, &out), 0);
    for (int s = 0; s < SUBS; s++) {
        /* Room for a whole stream, so the last one can be filled first. */
        cr_assert_eq(sl_chan_create(PER, int_free, &sub[s]), 0);
        cr_assert_eq(sl_chan_send(subs, NULL, sub[s]), 0);
        f[s] = (struct filler){ sub[s], s * PER, PER, &mu, &cv, &turn,
                                SUBS - 1 - s };
        cr_assert_eq(pthread_create(&th[s], NULL, filler_main, &f[s]), 0);
    }
    sl_chan_close(subs);
    cr_assert_eq(sl_bridge_start(NULL, subs, out, record_release, &rel, &b),
                 0);
    for (int i = 0; i < SUBS * PER; i++) {
        void *p;
        cr_assert_eq(sl_chan_recv(out, NULL, &p), 0);
        cr_assert_eq(*(int *)p, i, "item %d in sub-channel order", i);
        free(p);
    }
    void *p;
    cr_assert_eq(sl_chan_recv(out, NULL, &p), SL_ECLOSED);
    cr_assert_eq(sl_bridge_wait(b), 0);
    cr_assert_eq(rel.n, SUBS);
    for (int s = 0; s < SUBS; s++) {
        cr_assert_eq(rel.subs[s], sub[s]);
        pthread_join(th[s], NULL);
        sl_chan_destroy(sub[s]);
    }
    sl_bridge_destroy(b);
    sl_chan_destroy(subs);
    sl_chan_destroy(out);
    cr_assert_eq(atomic_load(&frees), 0);
}

Test(bridge, waits_for_a_sub_channel_that_is_still_open)
{
    sl_chan *subs, *out, *a, *c;
    struct released rel = { 0 };
    sl_bridge *b;
    void *p;

    cr_assert_eq(sl_chan_create(4, NULL, &subs), 0);
    cr_assert_eq(sl_chan_create(8, int_free, &out), 0);
    cr_assert_eq(sl_chan_create(8, int_free, &a), 0);
    cr_assert_eq(sl_chan_create(8, int_free, &c), 0);
    cr_assert_eq(sl_bridge_start(NULL, subs, out, record_release, &rel, &b),
                 0);
    cr_assert_eq(sl_chan_send(subs, NULL, a), 0);
    cr_assert_eq(sl_chan_send(subs, NULL, NULL), 0);   /* an empty stream */
    cr_assert_eq(sl_chan_send(subs, NULL, c), 0);
    cr_assert_eq(sl_chan_send(c, NULL, item(100)), 0);  /* c is ready first */
    sl_chan_close(c);
    cr_assert_eq(sl_chan_send(a, NULL, item(1)), 0);
    cr_assert_eq(sl_chan_recv(out, NULL, &p), 0);
    cr_assert_eq(*(int *)p, 1);
    free(p);
    /* a is still open: c's item must wait behind it. */
    WAIT_UNTIL(sl__chan_blocked(a, false) == 1);
    cr_assert_eq(sl_chan_len(out), 0);
    cr_assert_eq(rel.n, 0);
    cr_assert_eq(sl_chan_send(a, NULL, item(2)), 0);
    sl_chan_close(a);
    sl_chan_close(subs);
    int want[] = { 2, 100 };
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(sl_chan_recv(out, NULL, &p), 0);
        cr_assert_eq(*(int *)p, want[i]);
        free(p);
    }
    cr_assert_eq(sl_chan_recv(out, NULL, &p), SL_ECLOSED);
    cr_assert_eq(sl_bridge_wait(b), 0);
    cr_assert_eq(rel.n, 2);
    cr_assert_eq(rel.subs[0], a);
    cr_assert_eq(rel.subs[1], c);
    sl_bridge_destroy(b);
    sl_chan_destroy(a);
    sl_chan_destroy(c);
    sl_chan_destroy(subs);
    sl_chan_destroy(out);
}

Test(bridge, cancel_releases_the_current_sub_and_closes_out)
{
    sl_chan *subs, *out, *a, *later;
    struct released rel = { 0 };
    sl_ctx *parent;
    sl_bridge *b;

    cr_assert_eq(sl_ctx_create(&parent), 0);
    cr_assert_eq(sl_chan_create(4, NULL, &subs), 0);
    cr_assert_eq(sl_chan_create(8, int_free, &out), 0);
    cr_assert_eq(sl_chan_create(8, int_free, &a), 0);
    cr_assert_eq(sl_chan_create(8, int_free, &later), 0);
    cr_assert_eq(sl_chan_send(subs, NULL, a), 0);
    cr_assert_eq(sl_chan_send(subs, NULL, later), 0);
    cr_assert_eq(sl_bridge_start(parent, subs, out, record_release, &rel, &b),
                 0);
    WAIT_UNTIL(sl__chan_blocked(a, false) == 1);
    sl_ctx_cancel(parent, SL_EDEADLINE, NULL);
    cr_assert_eq(sl_bridge_wait(b), SL_EDEADLINE);
    cr_assert(sl_chan_is_closed(out));
    cr_assert_eq(rel.n, 1, "the sub being drained is released");
    cr_assert_eq(rel.subs[0], a);
    cr_assert_eq(sl_chan_len(subs), 1, "later subs stay queued");
    sl_bridge_destroy(b);
    sl_chan_destroy(a);
    sl_chan_destroy(later);
    sl_chan_destroy(subs);
    sl_chan_destroy(out);
    sl_ctx_destroy(parent);
}

Test(bridge, output_closed_by_reader_and_stop)
{
    sl_chan *subs, *out, *a;
    struct released rel = { 0 };
    sl_bridge *b;

    cr_assert_eq(sl_chan_create(4, NULL, &subs), 0);
    cr_assert_eq(sl_chan_create(8, int_free, &out), 0);
    cr_assert_eq(sl_chan_create(8, int_free, &a), 0);
    sl_chan_close(out);
    cr_assert_eq(sl_chan_send(a, NULL, item(1)), 0);
    cr_assert_eq(sl_chan_send(a, NULL, item(2)), 0);
    cr_assert_eq(sl_chan_send(subs, NULL, a), 0);
    cr_assert_eq(sl_bridge_start(NULL, subs, out, record_release, &rel, &b),
                 0);
    cr_assert_eq(sl_bridge_wait(b), SL_ECLOSED);
    cr_assert_eq(atomic_load(&frees), 2, "the batch out refused is freed");
    cr_assert_eq(rel.n, 1);
    sl_bridge_destroy(b);
    sl_chan_destroy(out);

    /* stop while waiting for the next sub-channel */
    cr_assert_eq(sl_chan_create(8, int_free, &out), 0);
    cr_assert_eq(sl_bridge_start(NULL, subs, out, NULL, NULL, &b), 0);
    WAIT_UNTIL(sl__chan_blocked(subs, false) == 1);
    sl_bridge_stop(b);
    cr_assert_eq(sl_bridge_wait(b), SL_ECANCELED);
    cr_assert(sl_chan_is_closed(out));
    sl_bridge_destroy(b);
    sl_bridge_destroy(NULL);
    sl_chan_destroy(a);
    sl_chan_destroy(subs);
    sl_chan_destroy(out);
}

Test(bridge, rejects_bad_arguments)
{
    sl_chan *ch;
    sl_bridge *b = (sl_bridge *)0x1;

    cr_assert_eq(sl_chan_create(1, NULL, &ch), 0);
    cr_assert_eq(sl_bridge_start(NULL, NULL, ch, NULL, NULL, &b), SL_EINVAL);
    cr_assert_eq(sl_bridge_start(NULL, ch, NULL, NULL, NULL, &b), SL_EINVAL);
    cr_assert_eq(sl_bridge_start(NULL, ch, ch, NULL, NULL, NULL), SL_EINVAL);
    cr_assert_eq(b, (sl_bridge *)0x1);
    cr_assert_eq(sl_bridge_wait(NULL), SL_EINVAL);
    sl_chan_destroy(ch);
}
