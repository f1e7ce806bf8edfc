/* Tests for engine/tee.c: every output gets every item as an independent
 * copy, a slow branch bounds the fast one, and every way of stopping
 * closes the outputs and frees what the tee held. */
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

typedef struct thing {
    int v;              /* the value */
    int touched;        /* set by a reader to prove copies are independent */
} thing;

static atomic_int frees;
static atomic_int copies;
static atomic_int fail_copy_at;   /* fail the copy of this value; -1: never */

static void thing_free(void *p)
{
    atomic_fetch_add(&frees, 1);
    free(p);
}

static thing *thing_new(int v)
{
    thing *t = calloc(1, sizeof(*t));
    cr_assert_not_null(t);
    t->v = v;
    return t;
}

static void *thing_copy(const void *p, void *arg)
{
    const thing *t = p;
    (void)arg;
    if (t->v == atomic_load(&fail_copy_at))
        return NULL;
    atomic_fetch_add(&copies, 1);
    thing *c = thing_new(t->v);
    c->touched = t->touched;
    return c;
}

static void init(void)
{
    atomic_store(&frees, 0);
    atomic_store(&copies, 0);
    atomic_store(&fail_copy_at, -1);
}

TestSuite(tee, .init = init);

/* A reader on its own thread, keeping every item it gets. */
struct reader {
    sl_chan *ch;
    thing *got[256];
    atomic_int n;
    int rc;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    for (;;) {
        void *p;
        r->rc = sl_chan_recv(r->ch, NULL, &p);
        if (r->rc != 0)
            break;
        thing *t = p;
        t->touched = 1;     /* a change the other branches must not see */
        r->got[atomic_load(&r->n)] = t;
        atomic_fetch_add(&r->n, 1);
    }
    return NULL;
}

Test(tee, every_output_gets_every_item_as_an_independent_copy)
{
    enum { N = 200, OUTS = 3 };
    sl_chan *in, *outs[OUTS];
    struct reader rd[OUTS] = { 0 };
    pthread_t th[OUTS];
    thing *orig[N];
    sl_tee *t;

    cr_assert_eq(sl_chan_create(8, thing_free, &in), 0);
    for (int i = 0; i < OUTS; i++) {
        cr_assert_eq(sl_chan_create(2 + i, thing_free, &outs[i]), 0);
        rd[i].ch = outs[i];
        cr_assert_eq(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    }
    cr_assert_eq(sl_tee_start(NULL, in, outs, OUTS, thing_copy, thing_free,
                              NULL, &t), 0);
    for (int i = 0; i < N; i++) {
        orig[i] = thing_new(i);
        cr_assert_eq(sl_chan_send(in, NULL, orig[i]), 0);
    }
    sl_chan_close(in);
    for (int i = 0; i < OUTS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(rd[i].rc, SL_ECLOSED, "the tee closed output %d", i);
    }
    cr_assert_eq(sl_tee_wait(t), 0);
    cr_assert_eq(sl_tee_wait(t), 0, "wait again: same result");

    cr_assert_eq(atomic_load(&copies), (OUTS - 1) * N);
    for (int o = 0; o < OUTS; o++) {
        cr_assert_eq(atomic_load(&rd[o].n), N);
        for (int i = 0; i < N; i++) {
            cr_assert_eq(rd[o].got[i]->v, i, "output %d in order", o);
            cr_assert_eq(rd[o].got[i] == orig[i], o == OUTS - 1,
                         "only the last output gets the original");
            for (int p = 0; p < o; p++)
                cr_assert_neq(rd[o].got[i], rd[p].got[i]);
        }
    }
    /* Each reader set touched on its own item only; copies were taken
     * from the original before any output saw it. */
    cr_assert_eq(atomic_load(&frees), 0);
    for (int o = 0; o < OUTS; o++)
        for (int i = 0; i < N; i++)
            thing_free(rd[o].got[i]);
    sl_tee_destroy(t);
    for (int i = 0; i < OUTS; i++)
        sl_chan_destroy(outs[i]);
    sl_chan_destroy(in);
}

Test(tee, slow_reader_bounds_the_fast_one_and_the_input)
{
    enum { N = 100, CAP = 4 };
    sl_chan *in, *fast, *slow;
    struct reader fr = { 0 };
    pthread_t th;
    sl_tee *t;

    cr_assert_eq(sl_chan_create(N, thing_free, &in), 0);
    cr_assert_eq(sl_chan_create(CAP, thing_free, &fast), 0);
    cr_assert_eq(sl_chan_create(CAP, thing_free, &slow), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(sl_chan_send(in, NULL, thing_new(i)), 0);

    fr.ch = fast;
    cr_assert_eq(pthread_create(&th, NULL, reader_main, &fr), 0);
    sl_chan *outs[2] = { fast, slow };
    cr_assert_eq(sl_tee_start(NULL, in, outs, 2, thing_copy, thing_free,
                              NULL, &t), 0);

    /* Steady state: the fast reader has the item the tee holds, the tee
     * waits on the full slow output. Nothing may move from here until the
     * slow branch reads. Give a broken tee a moment to misbehave before
     * looking (an observation window, not a synchronisation: a correct
     * tee passes the assertions below at once). */
    WAIT_UNTIL(atomic_load(&fr.n) >= CAP + 1 &&
               sl__chan_blocked(slow, true) == 1 &&
               sl_chan_len(slow) == CAP);
    sl_ctx *pause;
    cr_assert_eq(sl_ctx_create(&pause), 0);
    sl_ctx_sleep(pause, 20 * SL_NS_PER_MS);
    sl_ctx_destroy(pause);
    cr_assert_eq(atomic_load(&fr.n), CAP + 1,
                 "the fast reader is at most capacity + 1 ahead");
    cr_assert_eq(sl_chan_len(slow), CAP);
    cr_assert_eq(sl_chan_len(in), N - (CAP + 1),
                 "the input is not drained beyond the bound");
    sl_chan_stats st;
    sl_chan_stats_get(slow, &st);
    cr_assert_eq(st.max_depth, CAP);

    /* The slow branch reads everything; the fast one follows. */
    sl_chan_close(in);
    for (int i = 0; i < N; i++) {
        void *p;
        cr_assert_eq(sl_chan_recv(slow, NULL, &p), 0);
        cr_assert_eq(((thing *)p)->v, i);
        cr_assert_eq(((thing *)p)->touched, 0,
                     "the fast reader's change is not visible here");
        thing_free(p);
    }
    void *p;
    cr_assert_eq(sl_chan_recv(slow, NULL, &p), SL_ECLOSED);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&fr.n), N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(fr.got[i]->v, i);
        thing_free(fr.got[i]);
    }
    cr_assert_eq(sl_tee_wait(t), 0);
    sl_tee_destroy(t);
    sl_chan_destroy(fast);
    sl_chan_destroy(slow);
    sl_chan_destroy(in);
}

Test(tee, closed_output_is_dropped_and_all_closed_stops)
{
    sl_chan *in, *a, *b;
    sl_tee *t;
    void *p;

    cr_assert_eq(sl_chan_create(16, thing_free, &in), 0);
    cr_assert_eq(sl_chan_create(16, thing_free, &a), 0);
    cr_assert_eq(sl_chan_create(16, thing_free, &b), 0);
    sl_chan *outs[2] = { a, b };
    sl_chan_close(b);          /* this branch wants nothing */
    cr_assert_eq(sl_tee_start(NULL, in, outs, 2, thing_copy, thing_free,
                              NULL, &t), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sl_chan_send(in, NULL, thing_new(i)), 0);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(sl_chan_recv(a, NULL, &p), 0);
        cr_assert_eq(((thing *)p)->v, i, "the open branch still gets all");
        thing_free(p);
    }
    /* The first item's copy went to the closed branch and was freed
     * there; after that a gets originals and nothing is copied. */
    cr_assert_eq(atomic_load(&copies), 1);
    cr_assert_eq(atomic_load(&frees), 5 + 1);

    sl_chan_close(a);
    cr_assert_eq(sl_chan_send(in, NULL, thing_new(99)), 0);
    cr_assert_eq(sl_tee_wait(t), SL_ECLOSED, "every output closed");
    cr_assert_eq(atomic_load(&frees), 5 + 1 + 1, "the last item was freed");
    sl_tee_destroy(t);
    sl_chan_destroy(a);
    sl_chan_destroy(b);
    sl_chan_destroy(in);
}

Test(tee, failed_copy_stops_with_enomem_and_frees)
{
    sl_chan *in, *a, *b;
    sl_tee *t;
    void *p;

    atomic_store(&fail_copy_at, 2);
    cr_assert_eq(sl_chan_create(16, thing_free, &in), 0);
    cr_assert_eq(sl_chan_create(16, thing_free, &a), 0);
    cr_assert_eq(sl_chan_create(16, thing_free, &b), 0);
    sl_chan *outs[2] = { a, b };
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sl_chan_send(in, NULL, thing_new(i)), 0);
    cr_assert_eq(sl_tee_start(NULL, in, outs, 2, thing_copy, thing_free,
                              NULL, &t), 0);
    cr_assert_eq(sl_tee_wait(t), SL_ENOMEM);
    cr_assert_eq(atomic_load(&frees), 1, "the item whose copy failed");
    cr_assert(sl_chan_is_closed(a));
    cr_assert(sl_chan_is_closed(b));
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(sl_chan_recv(a, NULL, &p), 0);
        thing_free(p);
        cr_assert_eq(sl_chan_recv(b, NULL, &p), 0);
        thing_free(p);
    }
    cr_assert_eq(sl_chan_recv(a, NULL, &p), SL_ECLOSED);
    cr_assert_eq(sl_chan_len(in), 1, "item 3 was never taken");
    sl_tee_destroy(t);
    sl_chan_destroy(a);
    sl_chan_destroy(b);
    sl_chan_destroy(in);
}

Test(tee, stop_and_parent_cancel_end_a_blocked_tee)
{
    sl_chan *in, *a, *b;
    sl_ctx *parent;
    sl_tee *t;

    cr_assert_eq(sl_ctx_create(&parent), 0);
    cr_assert_eq(sl_chan_create(16, thing_free, &in), 0);
    cr_assert_eq(sl_chan_create(1, thing_free, &a), 0);
    cr_assert_eq(sl_chan_create(1, thing_free, &b), 0);
    sl_chan *outs[2] = { a, b };

    /* Blocked on a full output holding an item and its copy. */
    cr_assert_eq(sl_tee_start(parent, in, outs, 2, thing_copy, thing_free,
                              NULL, &t), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sl_chan_send(in, NULL, thing_new(i)), 0);
    WAIT_UNTIL(sl__chan_blocked(a, true) == 1);
    sl_ctx_cancel(parent, SL_EIO, "upstream failed");
    cr_assert_eq(sl_tee_wait(t), SL_EIO);
    cr_assert(sl_chan_is_closed(a));
    cr_assert(sl_chan_is_closed(b));
    /* Item 1: the copy for a was freed by the failed send, the original
     * for b by the tee. */
    cr_assert_eq(atomic_load(&frees), 2);
    sl_tee_destroy(t);
    sl_chan_destroy(a);
    sl_chan_destroy(b);

    /* Blocked on an empty input; stop. */
    cr_assert_eq(sl_chan_create(1, thing_free, &a), 0);
    sl_chan *one[1] = { a };
    cr_assert_eq(sl_tee_start(NULL, in, one, 1, NULL, NULL, NULL, &t), 0);
    void *p;
    cr_assert_eq(sl_chan_recv(a, NULL, &p), 0);
    cr_assert_eq(((thing *)p)->v, 2);
    thing_free(p);
    WAIT_UNTIL(sl__chan_blocked(in, false) == 1);
    sl_tee_stop(t);
    cr_assert_eq(sl_tee_wait(t), SL_ECANCELED);
    cr_assert(sl_chan_is_closed(a));
    sl_tee_destroy(t);
    sl_chan_destroy(a);
    sl_chan_destroy(in);
    sl_ctx_destroy(parent);
}

Test(tee, destroy_while_running_stops_it)
{
    sl_chan *in, *a;
    sl_tee *t;

    cr_assert_eq(sl_chan_create(1, NULL, &in), 0);
    cr_assert_eq(sl_chan_create(1, NULL, &a), 0);
    cr_assert_eq(sl_tee_start(NULL, in, &a, 1, NULL, NULL, NULL, &t), 0);
    sl_tee_destroy(t);
    cr_assert(sl_chan_is_closed(a));
    sl_tee_destroy(NULL);
    sl_chan_destroy(a);
    sl_chan_destroy(in);
}

Test(tee, rejects_bad_arguments)
{
    sl_chan *in, *a, *b;
    sl_tee *t = (sl_tee *)0x1;

    cr_assert_eq(sl_chan_create(1, NULL, &in), 0);
    cr_assert_eq(sl_chan_create(1, NULL, &a), 0);
    cr_assert_eq(sl_chan_create(1, NULL, &b), 0);
    sl_chan *outs[2] = { a, b };
    sl_chan *holes[2] = { a, NULL };
    cr_assert_eq(sl_tee_start(NULL, in, outs, 0, thing_copy, NULL, NULL, &t),
                 SL_EINVAL);
    cr_assert_eq(sl_tee_start(NULL, in, outs, 2, NULL, NULL, NULL, &t),
                 SL_EINVAL, "copy is required for two outputs");
    cr_assert_eq(sl_tee_start(NULL, NULL, outs, 2, thing_copy, NULL, NULL, &t),
                 SL_EINVAL);
    cr_assert_eq(sl_tee_start(NULL, in, holes, 2, thing_copy, NULL, NULL, &t),
                 SL_EINVAL);
    cr_assert_eq(t, (sl_tee *)0x1, "*out untouched on failure");
    cr_assert_eq(sl_tee_wait(NULL), SL_EINVAL);
    sl_chan_destroy(a);
    sl_chan_destroy(b);
    sl_chan_destroy(in);
}
