/*
 * Stress for the channel patterns: tee, merge, bridge, ordered pool, error
 * group and queue under many items and threads, each run once to the end
 * and once cancelled midway. Checks delivery (every item, once, in order
 * where promised) and that every item allocated is freed exactly once.
 * Run under ThreadSanitizer and AddressSanitizer. Exit 0 on success.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/channel.h"
#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/patterns.h"

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

static atomic_long allocated;
static atomic_long freed;

static void *item(long v)
{
    long *p = malloc(sizeof(*p));
    CHECK(p != NULL);
    *p = v;
    atomic_fetch_add(&allocated, 1);
    return p;
}

static long value(void *p)
{
    return *(long *)p;
}

static void item_free(void *p)
{
    atomic_fetch_add(&freed, 1);
    free(p);
}

static void *item_copy(const void *p, void *arg)
{
    (void)arg;
    return item(*(const long *)p);
}

static void check_balanced(const char *what)
{
    long a = atomic_load(&allocated), f = atomic_load(&freed);
    if (a != f) {
        fprintf(stderr, "%s: %ld items allocated, %ld freed\n", what, a, f);
        exit(1);
    }
}

static sl_chan *chan(size_t cap)
{
    sl_chan *ch;
    CHECK(sl_chan_create(cap, item_free, &ch) == 0);
    return ch;
}

/* Sends first, first + step, ... (count items), then closes ch. */
struct producer {
    sl_chan *ch;
    sl_ctx *ctx;
    long first;
    long step;
    long count;
    pthread_t th;
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    for (long i = 0; i < p->count; i++)
        if (sl_chan_send(p->ch, p->ctx, item(p->first + i * p->step)) != 0)
            break;
    sl_chan_close(p->ch);
    return NULL;
}

static void start_producer(struct producer *p)
{
    CHECK(pthread_create(&p->th, NULL, producer_main, p) == 0);
}

/*
 * Reads ch until closed or ctx done; checks values strictly increase when
 * ordered; cancels cancel_ctx after cancel_after items (0: never).
 */
struct reader {
    sl_chan *ch;
    sl_ctx *ctx;
    bool ordered;
    long cancel_after;
    sl_ctx *cancel_ctx;
    long n;
    long sum;
    pthread_t th;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    long last = -1;
    for (;;) {
        void *p;
        if (sl_chan_recv(r->ch, r->ctx, &p) != 0)
            break;
        long v = value(p);
        item_free(p);
        if (r->ordered)
            CHECK(v > last);
        last = v;
        r->n++;
        r->sum += v;
        if (r->cancel_after > 0 && r->n == r->cancel_after)
            sl_ctx_cancel(r->cancel_ctx, SL_ECANCELED, "stress: cancel");
    }
    return NULL;
}

static void start_reader(struct reader *r)
{
    CHECK(pthread_create(&r->th, NULL, reader_main, r) == 0);
}

/* ------------------------------------------------------------ tee */

static void stress_tee(long n, bool cancel)
{
    enum { OUTS = 3 };
    sl_ctx *root;
    sl_chan *in = chan(16), *outs[OUTS];
    struct reader rd[OUTS];
    struct producer pr = { .ch = in, .first = 0, .step = 1, .count = n };
    sl_tee *t;

    CHECK(sl_ctx_create(&root) == 0);
    pr.ctx = root;
    for (int i = 0; i < OUTS; i++) {
        outs[i] = chan((size_t)(1 + 7 * i));
        rd[i] = (struct reader){ .ch = outs[i], .ctx = root, .ordered = true };
    }
    if (cancel) {
        rd[1].cancel_after = n / 2;
        rd[1].cancel_ctx = root;
    }
    CHECK(sl_tee_start(root, in, outs, OUTS, item_copy, item_free, NULL,
                       &t) == 0);
    for (int i = 0; i < OUTS; i++)
        start_reader(&rd[i]);
    start_producer(&pr);
    pthread_join(pr.th, NULL);
    for (int i = 0; i < OUTS; i++)
        pthread_join(rd[i].th, NULL);
    int rc = sl_tee_wait(t);
    if (cancel) {
        CHECK(rc == SL_ECANCELED);
        for (int i = 0; i < OUTS; i++)
            CHECK(rd[i].n <= n);
    } else {
        CHECK(rc == 0);
        for (int i = 0; i < OUTS; i++) {
            CHECK(rd[i].n == n);
            CHECK(rd[i].sum == n * (n - 1) / 2);
        }
    }
    sl_tee_destroy(t);
    for (int i = 0; i < OUTS; i++)
        sl_chan_destroy(outs[i]);
    sl_chan_destroy(in);
    sl_ctx_destroy(root);
    check_balanced(cancel ? "tee (cancelled)" : "tee");
}

/* ------------------------------------------------------------ merge */

static void stress_merge(long per_input, bool cancel)
{
    enum { IN = 6 };
    sl_ctx *root;
    sl_chan *ins[IN], *out = chan(8);
    struct producer pr[IN];
    struct reader rd = { .ch = out };
    sl_merge *m;

    CHECK(sl_ctx_create(&root) == 0);
    rd.ctx = root;
    for (int k = 0; k < IN; k++) {
        ins[k] = chan((size_t)(1 + k));
        /* Input k carries k, k + IN, k + 2 IN, ...: all values distinct. */
        pr[k] = (struct producer){ .ch = ins[k], .ctx = root, .first = k,
                                   .step = IN, .count = per_input };
    }
    if (cancel) {
        rd.cancel_after = per_input * IN / 3;
        rd.cancel_ctx = root;
    }
    CHECK(sl_merge_start(root, ins, IN, out, &m) == 0);
    start_reader(&rd);
    for (int k = 0; k < IN; k++)
        start_producer(&pr[k]);
    for (int k = 0; k < IN; k++)
        pthread_join(pr[k].th, NULL);
    pthread_join(rd.th, NULL);
    int rc = sl_merge_wait(m);
    long total = per_input * IN;
    if (cancel) {
        CHECK(rc == SL_ECANCELED);
        CHECK(rd.n >= total / 3 && rd.n <= total);
    } else {
        CHECK(rc == 0);
        CHECK(rd.n == total);
        CHECK(rd.sum == total * (total - 1) / 2);
    }
    CHECK(sl_merge_active(m) == 0);
    sl_merge_destroy(m);
    for (int k = 0; k < IN; k++)
        sl_chan_destroy(ins[k]);
    sl_chan_destroy(out);
    sl_ctx_destroy(root);
    check_balanced(cancel ? "merge (cancelled)" : "merge");
}

/* ------------------------------------------------------------ bridge */

static void release_sub(sl_chan *sub, void *arg)
{
    (void)arg;
    (void)sub;
}

static void stress_bridge(long subs_n, long per_sub, bool cancel)
{
    sl_ctx *root;
    sl_chan *subs, *out = chan(8);
    sl_chan **sub = calloc((size_t)subs_n, sizeof(*sub));
    struct producer *pr = calloc((size_t)subs_n, sizeof(*pr));
    struct reader rd = { .ch = out, .ordered = true };
    sl_bridge *b;

    CHECK(sub != NULL && pr != NULL);
    CHECK(sl_ctx_create(&root) == 0);
    CHECK(sl_chan_create((size_t)subs_n, NULL, &subs) == 0);
    rd.ctx = root;
    if (cancel) {
        rd.cancel_after = subs_n * per_sub / 2;
        rd.cancel_ctx = root;
    }
    CHECK(sl_bridge_start(root, subs, out, release_sub, NULL, &b) == 0);
    start_reader(&rd);
    /* All producers fill their sub-channels at once; order comes from
     * the order of the sub-channels alone. */
    for (long s = 0; s < subs_n; s++) {
        sub[s] = chan(4);
        pr[s] = (struct producer){ .ch = sub[s], .ctx = root,
                                   .first = s * per_sub, .step = 1,
                                   .count = per_sub };
        CHECK(sl_chan_send(subs, NULL, sub[s]) == 0);
        start_producer(&pr[s]);
    }
    sl_chan_close(subs);
    for (long s = 0; s < subs_n; s++)
        pthread_join(pr[s].th, NULL);
    pthread_join(rd.th, NULL);
    int rc = sl_bridge_wait(b);
    long total = subs_n * per_sub;
    if (cancel) {
        CHECK(rc == SL_ECANCELED);
    } else {
        CHECK(rc == 0);
        CHECK(rd.n == total);
        CHECK(rd.sum == total * (total - 1) / 2);
    }
    sl_bridge_destroy(b);
    for (long s = 0; s < subs_n; s++)
        sl_chan_destroy(sub[s]);
    sl_chan_destroy(subs);
    sl_chan_destroy(out);
    sl_ctx_destroy(root);
    free(sub);
    free(pr);
    check_balanced(cancel ? "bridge (cancelled)" : "bridge");
}

/* ------------------------------------------------------------ pool */

static int square_ish(void *it, void **result, sl_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    long v = value(it);
    /* Uneven work so results finish out of order. */
    unsigned h = (unsigned)v * 2654435761u;
    for (unsigned i = 0; i < (h >> 8) % 512; i++)
        h = h * 1103515245u + 12345u;
    if (h == 42)            /* never true in practice; keeps the loop */
        v++;
    *result = it;           /* the same item goes on */
    return 0;
}

static void stress_pool(long n, bool ordered, bool cancel)
{
    sl_ctx *root;
    sl_chan *in = chan(32), *out = chan(8);
    struct producer pr = { .ch = in, .first = 0, .step = 1, .count = n };
    struct reader rd = { .ch = out, .ordered = ordered };
    sl_pool_config cfg = { .workers = 4, .ordered = ordered, .window = 8,
                           .fn = square_ish, .free_result = item_free,
                           .free_item = item_free };
    sl_pool *p;

    CHECK(sl_ctx_create(&root) == 0);
    pr.ctx = root;
    rd.ctx = root;
    if (cancel) {
        rd.cancel_after = n / 2;
        rd.cancel_ctx = root;
    }
    CHECK(sl_pool_start(root, &cfg, in, out, &p) == 0);
    start_reader(&rd);
    start_producer(&pr);
    pthread_join(pr.th, NULL);
    pthread_join(rd.th, NULL);
    int rc = sl_pool_wait(p);
    if (cancel) {
        CHECK(rc == SL_ECANCELED);
    } else {
        CHECK(rc == 0);
        CHECK(rd.n == n);
        CHECK(rd.sum == n * (n - 1) / 2);
    }
    sl_pool_destroy(p);
    sl_chan_destroy(in);
    sl_chan_destroy(out);
    sl_ctx_destroy(root);
    check_balanced(cancel ? "pool (cancelled)" : "pool");
}

/* ------------------------------------------------------------ errgroup */

static atomic_int eg_running;
static atomic_int eg_max;

/* arg encodes what to do: > 0 count down busy work, 0 wait for the
 * context, < 0 fail with that code. */
static int eg_task(sl_ctx *ctx, void *arg)
{
    intptr_t what = (intptr_t)arg;
    int now = atomic_fetch_add(&eg_running, 1) + 1;
    int max = atomic_load(&eg_max);
    while (now > max && !atomic_compare_exchange_weak(&eg_max, &max, now))
        ;
    int rc = 0;
    if (what < 0)
        rc = (int)what;
    else if (what == 0)
        rc = sl_ctx_wait(ctx, INT64_MAX);
    else
        for (volatile intptr_t i = 0; i < what; i++)
            ;
    atomic_fetch_sub(&eg_running, 1);
    return rc;
}

static void stress_errgroup(int tasks, size_t limit, bool fail)
{
    sl_errgroup *g;

    atomic_store(&eg_max, 0);
    CHECK(sl_errgroup_create(NULL, limit, &g) == 0);
    int started = 0, refused = 0;
    for (int i = 0; i < tasks; i++) {
        intptr_t what = 1000 + (i % 13) * 500;
        if (fail && i == 5)
            what = SL_EIO;
        else if (fail && i < 5 && i % 2 == 0)
            what = 0;       /* holds a slot until the failure cancels */
        int rc = sl_errgroup_go(g, eg_task, (void *)what);
        if (rc == 0) {
            started++;
        } else {
            CHECK(rc == SL_EIO);
            refused++;
        }
    }
    int rc = sl_errgroup_wait(g);
    CHECK(rc == (fail ? SL_EIO : 0));
    CHECK(started + refused == tasks);
    if (!fail)
        CHECK(started == tasks);
    if (limit > 0)
        CHECK(atomic_load(&eg_max) <= (int)limit);
    CHECK(atomic_load(&eg_running) == 0);
    sl_errgroup_destroy(g);
}

/* ------------------------------------------------------------ queue */

struct qworker {
    sl_queue *q;
    sl_ctx *ctx;
    long n;
    long sum;
    pthread_t th;
};

static void *qpush_main(void *arg)
{
    struct qworker *w = arg;
    for (long i = 0; i < w->n; i++)
        CHECK(sl_queue_push(w->q, item(i)) == 0);
    return NULL;
}

static void *qpop_main(void *arg)
{
    struct qworker *w = arg;
    void *p;
    while (sl_queue_pop(w->q, w->ctx, &p) == 0) {
        w->sum += value(p);
        w->n++;
        item_free(p);
    }
    return NULL;
}

static void stress_queue(long per_pusher)
{
    enum { PUSH = 3, POP = 3 };
    struct qworker pu[PUSH], po[POP];
    sl_queue *q;
    sl_ctx *ctx;

    CHECK(sl_queue_create(item_free, &q) == 0);
    CHECK(sl_ctx_create(&ctx) == 0);
    for (int i = 0; i < POP; i++) {
        po[i] = (struct qworker){ .q = q, .ctx = ctx };
        CHECK(pthread_create(&po[i].th, NULL, qpop_main, &po[i]) == 0);
    }
    for (int i = 0; i < PUSH; i++) {
        pu[i] = (struct qworker){ .q = q, .n = per_pusher };
        CHECK(pthread_create(&pu[i].th, NULL, qpush_main, &pu[i]) == 0);
    }
    for (int i = 0; i < PUSH; i++)
        pthread_join(pu[i].th, NULL);
    sl_queue_close(q);
    long n = 0, sum = 0;
    for (int i = 0; i < POP; i++) {
        pthread_join(po[i].th, NULL);
        n += po[i].n;
        sum += po[i].sum;
    }
    CHECK(n == PUSH * per_pusher);
    CHECK(sum == PUSH * (per_pusher * (per_pusher - 1) / 2));
    sl_queue_stats st;
    sl_queue_stats_get(q, &st);
    CHECK(st.pushed == (uint64_t)n && st.popped == (uint64_t)n);
    CHECK(st.len == 0 && st.max_len >= 1);

    /* Cancel poppers blocked on an empty open queue. */
    sl_queue *q2;
    CHECK(sl_queue_create(item_free, &q2) == 0);
    for (int i = 0; i < POP; i++) {
        po[i] = (struct qworker){ .q = q2, .ctx = ctx };
        CHECK(pthread_create(&po[i].th, NULL, qpop_main, &po[i]) == 0);
    }
    for (int i = 0; i < 100; i++)
        CHECK(sl_queue_push(q2, item(i)) == 0);
    sl_ctx_cancel(ctx, SL_ECANCELED, "stress: cancel");
    for (int i = 0; i < POP; i++)
        pthread_join(po[i].th, NULL);
    sl_queue_destroy(q2);
    sl_queue_destroy(q);
    sl_ctx_destroy(ctx);
    check_balanced("queue");
}

/* Print how long a part took; returns the time now. */
static int64_t lap(const char *what, int64_t since)
{
    int64_t now = sl_clock_now(NULL);
    printf("  %-24s %6.3f s\n", what, (double)(now - since) / SL_NS_PER_S);
    return now;
}

int main(int argc, char **argv)
{
    /* SLUICE_STRESS_SCALE multiplies the item counts (default 1). */
    long scale = 1;
    const char *env = getenv("SLUICE_STRESS_SCALE");
    if (env != NULL && atol(env) > 0)
        scale = atol(env);
    (void)argc;
    (void)argv;

    int64_t t0 = sl_clock_now(NULL), t = t0;
    for (int round = 0; round < 2; round++) {
        bool cancel = round == 1;
        stress_tee(3000 * scale, cancel);
        t = lap(cancel ? "tee, cancelled" : "tee", t);
        stress_merge(1500 * scale, cancel);
        t = lap(cancel ? "merge, cancelled" : "merge", t);
        stress_bridge(40, 100 * scale, cancel);
        t = lap(cancel ? "bridge, cancelled" : "bridge", t);
        stress_pool(8000 * scale, true, cancel);
        t = lap(cancel ? "pool ordered, cancelled" : "pool ordered", t);
        stress_pool(4000 * scale, false, cancel);
        t = lap(cancel ? "pool, cancelled" : "pool", t);
        stress_errgroup((int)(200 * scale), 4, cancel);
        t = lap(cancel ? "errgroup, failing" : "errgroup", t);
    }
    stress_errgroup(100, 0, true);
    t = lap("errgroup, no limit", t);
    stress_queue(6000 * scale);
    lap("queue", t);
    printf("stress_patterns: ok in %.2f s\n",
           (double)(sl_clock_now(NULL) - t0) / SL_NS_PER_S);
    return 0;
}
