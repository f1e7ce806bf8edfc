/* Tests for engine/merge.c: every item exactly once, per-input order kept,
 * the output closed only after the last input, and every way of stopping. */
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

/* Producer k sends k * M .. k * M + M - 1, then closes its channel. */
struct producer {
    sl_chan *ch;
    int first;
    int count;
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < p->count; i++)
        if (sl_chan_send(p->ch, NULL, item(p->first + i)) != 0)
            break;
    sl_chan_close(p->ch);
    return NULL;
}

Test(merge, every_item_exactly_once_in_per_input_order)
{
    enum { IN = 5, M = 2000, TOTAL = IN * M };
    sl_chan *ins[IN], *out;
    struct producer pr[IN];
    pthread_t th[IN];
    sl_merge *m;
    static unsigned char seen[TOTAL];
    int last[IN];
    long long sum = 0;
    int n = 0;

    cr_assert_eq(sl_chan_create(7, int_free, &out), 0);
    for (int k = 0; k < IN; k++) {
        cr_assert_eq(sl_chan_create(3, int_free, &ins[k]), 0);
        last[k] = -1;
    }
    cr_assert_eq(sl_merge_start(NULL, ins, IN, out, &m), 0);
    cr_assert_eq(sl_merge_active(m), IN);
    for (int k = 0; k < IN; k++) {
        pr[k] = (struct producer){ ins[k], k * M, M };
        cr_assert_eq(pthread_create(&th[k], NULL, producer_main, &pr[k]), 0);
    }
    for (;;) {
        void *p;
        int rc = sl_chan_recv(out, NULL, &p);
        if (rc == SL_ECLOSED)
            break;
        cr_assert_eq(rc, 0);
        int v = *(int *)p;
        free(p);
        cr_assert(v >= 0 && v < TOTAL);
        cr_assert_eq(seen[v], 0, "item %d delivered twice", v);
        seen[v] = 1;
        cr_assert_gt(v, last[v / M], "input %d out of order", v / M);
        last[v / M] = v;
        sum += v;
        n++;
    }
    cr_assert_eq(n, TOTAL);
    cr_assert_eq(sum, (long long)TOTAL * (TOTAL - 1) / 2);
    for (int k = 0; k < IN; k++)
        pthread_join(th[k], NULL);
    cr_assert_eq(sl_merge_wait(m), 0);
    cr_assert_eq(sl_merge_active(m), 0);
    cr_assert_eq(atomic_load(&frees), 0);
    sl_merge_destroy(m);
    for (int k = 0; k < IN; k++)
        sl_chan_destroy(ins[k]);
    sl_chan_destroy(out);
}

Test(merge, output_closes_only_after_the_last_input)
{
    enum { IN = 4 };
    sl_chan *ins[IN], *out;
    sl_merge *m;
    void *p;

    cr_assert_eq(sl_chan_create(16, int_free, &out), 0);
    for (int k = 0; k < IN; k++)
        cr_assert_eq(sl_chan_create(4, int_free, &ins[k]), 0);
    cr_assert_eq(sl_merge_start(NULL, ins, IN, out, &m), 0);
    for (int k = 0; k < IN - 1; k++) {
        cr_assert_eq(sl_chan_send(ins[k], NULL, item(k)), 0);
        sl_chan_close(ins[k]);
    }
    WAIT_UNTIL(sl_merge_active(m) == 1);
    cr_assert_not(sl_chan_is_closed(out), "one input is still open");
    int sum = 0;
    for (int k = 0; k < IN - 1; k++) {
        cr_assert_eq(sl_chan_recv(out, NULL, &p), 0);
        sum += *(int *)p;
        free(p);
    }
    cr_assert_eq(sum, 0 + 1 + 2);
    cr_assert_eq(sl_chan_send(ins[IN - 1], NULL, item(42)), 0);
    cr_assert_eq(sl_chan_recv(out, NULL, &p), 0);
    cr_assert_eq(*(int *)p, 42);
    free(p);
    cr_assert_not(sl_chan_is_closed(out));
    sl_chan_close(ins[IN - 1]);
    cr_assert_eq(sl_chan_recv(out, NULL, &p), SL_ECLOSED);
    cr_assert_eq(sl_merge_wait(m), 0);
    sl_merge_destroy(m);
    for (int k = 0; k < IN; k++)
        sl_chan_destroy(ins[k]);
    sl_chan_destroy(out);
}

Test(merge, context_cancel_stops_every_forwarder)
{
    enum { IN = 3 };
    sl_chan *ins[IN], *out;
    sl_ctx *parent;
    sl_merge *m;

    cr_assert_eq(sl_ctx_create(&parent), 0);
    cr_assert_eq(sl_chan_create(1, int_free, &out), 0);
    for (int k = 0; k < IN; k++)
        cr_assert_eq(sl_chan_create(4, int_free, &ins[k]), 0);
    /* Input 0 has more than out can take: its forwarder blocks sending;
     * the others block receiving. */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sl_chan_send(ins[0], NULL, item(i)), 0);
    cr_assert_eq(sl_merge_start(parent, ins, IN, out, &m), 0);
    WAIT_UNTIL(sl__chan_blocked(out, true) == 1 &&
               sl__chan_blocked(ins[1], false) == 1 &&
               sl__chan_blocked(ins[2], false) == 1);
    sl_ctx_cancel(parent, SL_EIO, "upstream failed");
    cr_assert_eq(sl_merge_wait(m), SL_EIO);
    cr_assert_eq(sl_merge_active(m), 0);
    cr_assert(sl_chan_is_closed(out), "out closed whatever the reason");
    cr_assert_eq(atomic_load(&frees), 2, "the batch not sent was freed");
    sl_merge_destroy(m);
    for (int k = 0; k < IN; k++)
        sl_chan_destroy(ins[k]);
    sl_chan_destroy(out);
    sl_ctx_destroy(parent);
}

Test(merge, output_closed_by_reader_stops_with_eclosed)
{
    sl_chan *ins[2], *out;
    sl_merge *m;

    cr_assert_eq(sl_chan_create(4, int_free, &out), 0);
    for (int k = 0; k < 2; k++)
        cr_assert_eq(sl_chan_create(4, int_free, &ins[k]), 0);
    cr_assert_eq(sl_merge_start(NULL, ins, 2, out, &m), 0);
    sl_chan_close(out);
    cr_assert_eq(sl_chan_send(ins[0], NULL, item(1)), 0);
    /* Input 1 is never written nor closed: its forwarder must still stop. */
    cr_assert_eq(sl_merge_wait(m), SL_ECLOSED);
    cr_assert_eq(atomic_load(&frees), 1);
    sl_merge_destroy(m);
    for (int k = 0; k < 2; k++)
        sl_chan_destroy(ins[k]);
    sl_chan_destroy(out);
}

Test(merge, stop_and_destroy)
{
    sl_chan *in, *out;
    sl_merge *m;

    cr_assert_eq(sl_chan_create(4, NULL, &out), 0);
    cr_assert_eq(sl_chan_create(4, NULL, &in), 0);
    cr_assert_eq(sl_merge_start(NULL, &in, 1, out, &m), 0);
    sl_merge_stop(m);
    cr_assert_eq(sl_merge_wait(m), SL_ECANCELED);
    cr_assert_eq(sl_merge_wait(m), SL_ECANCELED);
    sl_merge_destroy(m);

    cr_assert_eq(sl_merge_start(NULL, &in, 1, out, &m), 0);
    sl_merge_destroy(m);      /* running: stops and joins */
    sl_merge_destroy(NULL);
    sl_chan_destroy(in);
    sl_chan_destroy(out);
}

Test(merge, rejects_bad_arguments)
{
    sl_chan *a, *out;
    sl_merge *m = (sl_merge *)0x1;

    cr_assert_eq(sl_chan_create(1, NULL, &a), 0);
    cr_assert_eq(sl_chan_create(1, NULL, &out), 0);
    sl_chan *holes[2] = { a, NULL };
    cr_assert_eq(sl_merge_start(NULL, &a, 0, out, &m), SL_EINVAL);
    cr_assert_eq(sl_merge_start(NULL, &a, 1, NULL, &m), SL_EINVAL);
    cr_assert_eq(sl_merge_start(NULL, holes, 2, out, &m), SL_EINVAL);
    cr_assert_eq(m, (sl_merge *)0x1);
    cr_assert_eq(sl_merge_wait(NULL), SL_EINVAL);
    sl_chan_destroy(a);
    sl_chan_destroy(out);
}
