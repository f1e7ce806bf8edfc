/*
 * Channel stress: many producers and consumers on one small channel, with
 * single, batch and non-blocking operations, random cancellations (explicit
 * and by deadline), early close and whole-run cancel.
 *
 * Every item carries a unique id. At the end of each round every id must
 * have been received exactly once or freed by the channel exactly once (a
 * failed send, or still queued at destroy) — never both, never twice, never
 * lost. Counts, sums and XORs of received ids are checked against what the
 * producers sent. Run under ASan it also proves no item leaks; under TSan,
 * no data races.
 *
 * Exit 0 on success; prints the failure and exits 1 otherwise.
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

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 6000
#define ROUNDS 6   /* one per capacity */
/* Per round: small, odd and one-slot rings, so wrap-around is constant. */
static const size_t capacities[] = { 8, 7, 1, 5, 16, 3 };
#define MAX_BATCH 16

#define FAIL(...)                                                           \
    do {                                                                    \
        fprintf(stderr, "stress_channel: FAIL: " __VA_ARGS__);              \
        fprintf(stderr, "\n");                                              \
        exit(1);                                                            \
    } while (0)

typedef struct stress_item {
    uint32_t id;
} stress_item;

/* One lifetime of a worker: a context the chaos thread may cancel. */
typedef struct slot {
    pthread_mutex_t mu;             /* guards ctx */
    sl_ctx *ctx;                    /* current life, or NULL */
} slot;

enum round_mode {
    MODE_DRAIN,                     /* producers finish, then close, consumers drain */
    MODE_EARLY_CLOSE,               /* close while producers are still sending */
    MODE_ROOT_CANCEL,               /* cancel the whole run midway */
};

static struct {
    sl_chan *ch;
    sl_ctx *root;
    enum round_mode mode;
    slot slots[PRODUCERS + CONSUMERS];
    _Atomic uint8_t *received;      /* per id */
    _Atomic uint8_t *freed;         /* per id */
    _Atomic uint64_t recv_count, recv_sum, recv_xor;
    _Atomic uint64_t sent_ok;       /* items producers know were accepted */
    _Atomic int producers_left;
    _Atomic bool stop_chaos;
} g;

static void item_free(void *p)
{
    stress_item *it = p;

    if (atomic_fetch_add(&g.freed[it->id], 1) != 0)
        FAIL("item %u freed twice", it->id);
    free(it);
}

static void item_received(stress_item *it)
{
    if (atomic_fetch_add(&g.received[it->id], 1) != 0)
        FAIL("item %u received twice", it->id);
    atomic_fetch_add(&g.recv_count, 1);
    atomic_fetch_add(&g.recv_sum, it->id);
    atomic_fetch_xor(&g.recv_xor, it->id);
    free(it);
}

static uint32_t rnd(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Start a new life for slot i: a child of root, sometimes with a deadline. */
static sl_ctx *life_begin(int i, uint64_t *rs)
{
    sl_ctx *ctx;
    int rc;

    if (rnd(rs) % 8 == 0)
        rc = sl_ctx_create_timeout(g.root, (int64_t)(rnd(rs) % 2000) * SL_NS_PER_US, &ctx);
    else
        rc = sl_ctx_create_child(g.root, &ctx);
    if (rc != 0)
        FAIL("context create: %s", sl_strerror(rc));
    pthread_mutex_lock(&g.slots[i].mu);
    g.slots[i].ctx = ctx;
    pthread_mutex_unlock(&g.slots[i].mu);
    return ctx;
}

static void life_end(int i)
{
    sl_ctx *ctx;

    pthread_mutex_lock(&g.slots[i].mu);
    ctx = g.slots[i].ctx;
    g.slots[i].ctx = NULL;
    pthread_mutex_unlock(&g.slots[i].mu);
    sl_ctx_destroy(ctx);
}

static bool ctx_error_ok(int rc)
{
    return rc == SL_ECANCELED || rc == SL_EDEADLINE || rc == SL_ESTOPPED;
}

static void *producer_main(void *arg)
{
    int idx = (int)(intptr_t)arg;
    uint64_t rs = 0x9E3779B97F4A7C15ULL * (uint64_t)(idx + 1);
    uint32_t next = (uint32_t)idx * PER_PRODUCER;
    uint32_t end = next + PER_PRODUCER;
    void *batch[MAX_BATCH];
    sl_ctx *ctx = life_begin(idx, &rs);

    while (next < end) {
        if (sl_ctx_is_done(g.root))
            break;
        if (sl_ctx_is_done(ctx)) {
            life_end(idx);
            ctx = life_begin(idx, &rs);
        }
        uint32_t op = rnd(&rs) % 4;
        size_t n = 1;
        if (op == 1) {
            n = 1 + rnd(&rs) % MAX_BATCH;
            if (n > end - next)
                n = end - next;
        }
        for (size_t i = 0; i < n; i++) {
            stress_item *it = malloc(sizeof(*it));
            if (it == NULL)
                FAIL("out of memory");
            it->id = next++;
            batch[i] = it;
        }
        int rc;
        if (op == 1) {
            rc = sl_chan_send_batch(g.ch, ctx, batch, n);
        } else if (op == 2) {
            rc = sl_chan_try_send(g.ch, batch[0]);
            if (rc == SL_EAGAIN)
                rc = sl_chan_send(g.ch, ctx, batch[0]);
        } else {
            rc = sl_chan_send(g.ch, ctx, batch[0]);
        }
        if (rc == 0) {
            atomic_fetch_add(&g.sent_ok, n);
        } else if (rc == SL_ECLOSED) {
            if (g.mode == MODE_DRAIN)
                FAIL("send saw SL_ECLOSED before producers finished");
            break;
        } else if (!ctx_error_ok(rc)) {
            FAIL("send: unexpected %s", sl_error_name(rc));
        }
    }
    life_end(idx);
    if (atomic_fetch_sub(&g.producers_left, 1) == 1 && g.mode != MODE_EARLY_CLOSE)
        sl_chan_close(g.ch);
    return NULL;
}

static void *consumer_main(void *arg)
{
    int idx = (int)(intptr_t)arg;
    uint64_t rs = 0xD1B54A32D192ED03ULL * (uint64_t)(idx + 1);
    void *out[MAX_BATCH];
    sl_ctx *ctx = life_begin(idx, &rs);

    for (;;) {
        if (sl_ctx_is_done(g.root))
            break;
        if (sl_ctx_is_done(ctx)) {
            life_end(idx);
            ctx = life_begin(idx, &rs);
        }
        uint32_t op = rnd(&rs) % 4;
        size_t got = 0;
        int rc;
        if (op == 1) {
            rc = sl_chan_recv_batch(g.ch, ctx, out, 1 + rnd(&rs) % MAX_BATCH, &got);
        } else if (op == 2) {
            rc = sl_chan_try_recv(g.ch, out);
            if (rc == SL_EAGAIN)
                rc = sl_chan_recv(g.ch, ctx, out);
            got = rc == 0;
        } else {
            rc = sl_chan_recv(g.ch, ctx, out);
            got = rc == 0;
        }
        if (rc == 0) {
            if (got == 0)
                FAIL("receive succeeded with nothing");
            for (size_t i = 0; i < got; i++)
                item_received(out[i]);
        } else if (rc == SL_ECLOSED) {
            if (sl_chan_len(g.ch) != 0)
                FAIL("SL_ECLOSED with %zu items still queued", sl_chan_len(g.ch));
            break;
        } else if (!ctx_error_ok(rc)) {
            FAIL("recv: unexpected %s", sl_error_name(rc));
        } else if (got != 0) {
            FAIL("failed receive returned items");
        }
    }
    life_end(idx);
    return NULL;
}

/* Cancel random lives until told to stop; maybe close or cancel the run. */
static void *chaos_main(void *arg)
{
    uint64_t rs = (uint64_t)(uintptr_t)arg | 1;
    int ops = 0;

    while (!atomic_load(&g.stop_chaos)) {
        int i = (int)(rnd(&rs) % (PRODUCERS + CONSUMERS));
        pthread_mutex_lock(&g.slots[i].mu);
        if (g.slots[i].ctx != NULL)
            sl_ctx_cancel(g.slots[i].ctx, SL_ECANCELED, "chaos %d", ops);
        pthread_mutex_unlock(&g.slots[i].mu);
        ops++;
        if (ops == 300 && g.mode == MODE_EARLY_CLOSE)
            sl_chan_close(g.ch);
        if (ops == 300 && g.mode == MODE_ROOT_CANCEL)
            sl_ctx_cancel(g.root, SL_ESTOPPED, "run stopped");
        sl_ctx_sleep(NULL, (int64_t)(rnd(&rs) % 200) * SL_NS_PER_US);
    }
    return NULL;
}

static void run_round(int round)
{
    const uint32_t total = PRODUCERS * PER_PRODUCER;
    pthread_t prod[PRODUCERS], cons[CONSUMERS], chaos;
    int rc;

    memset(&g, 0, sizeof(g));
    g.mode = (enum round_mode)(round % 3);
    g.received = calloc(total, sizeof(*g.received));
    g.freed = calloc(total, sizeof(*g.freed));
    if (g.received == NULL || g.freed == NULL)
        FAIL("out of memory");
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        pthread_mutex_init(&g.slots[i].mu, NULL);
    atomic_store(&g.producers_left, PRODUCERS);
    if ((rc = sl_ctx_create(&g.root)) != 0 ||
        (rc = sl_chan_create(capacities[round], item_free, &g.ch)) != 0)
        FAIL("setup: %s", sl_strerror(rc));

    for (int i = 0; i < CONSUMERS; i++)
        pthread_create(&cons[i], NULL, consumer_main, (void *)(intptr_t)(PRODUCERS + i));
    for (int i = 0; i < PRODUCERS; i++)
        pthread_create(&prod[i], NULL, producer_main, (void *)(intptr_t)i);
    pthread_create(&chaos, NULL, chaos_main, (void *)(uintptr_t)(round * 7919 + 1));

    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(prod[i], NULL);
    if (g.mode == MODE_EARLY_CLOSE)
        sl_chan_close(g.ch);   /* in case chaos had not got there yet */
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(cons[i], NULL);
    atomic_store(&g.stop_chaos, true);
    pthread_join(chaos, NULL);

    sl_chan_stats st;
    sl_chan_stats_get(g.ch, &st);
    size_t left = st.depth;
    if (g.mode != MODE_ROOT_CANCEL && left != 0)
        FAIL("round %d: %zu items left after drain", round, left);
    sl_chan_destroy(g.ch);   /* frees what is left */

    uint64_t count = 0, sum = 0, x = 0, freed = 0, issued = 0;
    for (uint32_t id = 0; id < total; id++) {
        unsigned r = atomic_load(&g.received[id]);
        unsigned f = atomic_load(&g.freed[id]);
        if (r + f > 1)
            FAIL("round %d: item %u received %u, freed %u", round, id, r, f);
        if (r) {
            count++;
            sum += id;
            x ^= id;
        }
        freed += f;
        issued += r + f;
    }
    if (count != atomic_load(&g.recv_count) || sum != atomic_load(&g.recv_sum) ||
        x != atomic_load(&g.recv_xor))
        FAIL("round %d: receive tallies disagree", round);
    /* A batch cut short by cancel or close was partly accepted: sent_ok
     * counts only whole successes, so it is a lower bound. */
    if (st.sent < atomic_load(&g.sent_ok) || st.received != count)
        FAIL("round %d: stats sent %llu/%llu received %llu/%llu", round,
             (unsigned long long)st.sent, (unsigned long long)atomic_load(&g.sent_ok),
             (unsigned long long)st.received, (unsigned long long)count);
    if (st.sent != count + left)
        FAIL("round %d: accepted %llu != received %llu + left %zu", round,
             (unsigned long long)st.sent, (unsigned long long)count, left);
    if (st.max_depth > capacities[round] || st.max_depth == 0)
        FAIL("round %d: max_depth %zu above capacity", round, st.max_depth);
    /* Every id a producer created is accounted for; in drain mode that is all. */
    if (g.mode == MODE_DRAIN && issued != total)
        FAIL("round %d: %llu of %u items accounted for", round,
             (unsigned long long)issued, total);
    printf("round %d (%s, capacity %zu): received %llu, freed %llu, max_depth %zu\n", round,
           g.mode == MODE_DRAIN ? "drain" : g.mode == MODE_EARLY_CLOSE ? "early close"
                                                                      : "root cancel",
           capacities[round], (unsigned long long)count, (unsigned long long)freed, st.max_depth);

    sl_ctx_destroy(g.root);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        pthread_mutex_destroy(&g.slots[i].mu);
    free(g.received);
    free(g.freed);
}

int main(void)
{
    int64_t t0 = sl_clock_now(NULL);

    for (int r = 0; r < ROUNDS; r++)
        run_round(r);
    printf("stress_channel: ok in %.2f s\n",
           (double)(sl_clock_now(NULL) - t0) / SL_NS_PER_S);
    return 0;
}
