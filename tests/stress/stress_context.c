/*
 * Context stress: builder threads create trees (plain, value, deadline and
 * timeout children), publish their nodes, and tear them down in random
 * order while canceller threads cancel random nodes and blocker threads sit
 * in channel operations, sl_ctx_wait and sl_ctx_sleep on random nodes.
 *
 * Checks: every blocked operation returns its node's error (or times out
 * when it asked to); once sl_ctx_cancel(x) returns, x and every descendant
 * are done with a non-zero code; a node whose parent is done is done; after
 * teardown every node is done and everything is freed (ASan: no leaks;
 * TSan: no races; a hang fails the ctest timeout).
 *
 * Exit 0 on success; prints the failure and exits 1 otherwise.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/channel.h"
#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"

#define BUILDERS 2
#define CANCELLERS 1
#define BLOCKERS 3
#define ITERATIONS 1000
#define FANOUT 3
#define DEPTH 4                     /* levels below the root */
#define MAX_NODES 121               /* 1 + 3 + 9 + 27 + 81 */
#define TABLE 64

#define FAIL(...)                                                           \
    do {                                                                    \
        fprintf(stderr, "stress_context: FAIL: " __VA_ARGS__);              \
        fprintf(stderr, "\n");                                              \
        exit(1);                                                            \
    } while (0)

/* Shared table of published nodes; each entry holds a reference. */
static struct {
    pthread_mutex_t mu;             /* guards slots */
    sl_ctx *slots[TABLE];           /* published contexts (referenced) */
} table = { .mu = PTHREAD_MUTEX_INITIALIZER };

static sl_chan *empty_ch;           /* never sent to: receivers block until cancelled */
static sl_chan *full_ch;            /* kept full: senders block until cancelled */
static _Atomic bool builders_done;
static _Atomic uint64_t blocked_ops, woken_ops, live_ops;
static const char value_key[] = "key";

static uint32_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545F4914F6CDD1DULL) >> 32);
}

static void publish(sl_ctx *ctx, uint64_t *rs)
{
    size_t i = rnd(rs) % TABLE;
    sl_ctx *old;

    pthread_mutex_lock(&table.mu);
    old = table.slots[i];
    table.slots[i] = sl_ctx_ref(ctx);
    pthread_mutex_unlock(&table.mu);
    sl_ctx_unref(old);
}

/* A referenced random published node, or NULL. */
static sl_ctx *pick(uint64_t *rs)
{
    size_t i = rnd(rs) % TABLE;
    sl_ctx *c;

    pthread_mutex_lock(&table.mu);
    c = sl_ctx_ref(table.slots[i]);
    pthread_mutex_unlock(&table.mu);
    return c;
}

static bool is_ctx_code(int rc)
{
    return rc == SL_ECANCELED || rc == SL_EDEADLINE || rc == SL_EIO ||
           rc == SL_ESTOPPED;
}

static void *builder_main(void *arg)
{
    uint64_t rs = 0x9E3779B97F4A7C15ULL * ((uint64_t)(uintptr_t)arg + 1);
    sl_ctx *nodes[MAX_NODES];
    int parent_of[MAX_NODES];
    int marker = 0;

    for (int it = 0; it < ITERATIONS; it++) {
        int n = 0;
        int rc = sl_ctx_create(&nodes[n]);
        if (rc != 0)
            FAIL("create: %s", sl_strerror(rc));
        parent_of[n++] = -1;
        int level_start = 0, level_end = 1;
        for (int d = 0; d < DEPTH; d++) {
            for (int p = level_start; p < level_end; p++) {
                int kids = (int)(rnd(&rs) % (FANOUT + 1));
                for (int k = 0; k < kids && n < MAX_NODES; k++) {
                    sl_ctx *c;
                    switch (rnd(&rs) % 5) {
                    case 0:
                        rc = sl_ctx_create_timeout(nodes[p],
                                                   (int64_t)(rnd(&rs) % 3000) * SL_NS_PER_US, &c);
                        break;
                    case 1:
                        rc = sl_ctx_create_deadline(nodes[p], sl_clock_now(NULL) +
                                                    (int64_t)(rnd(&rs) % 3000) * SL_NS_PER_US - 500 * SL_NS_PER_US,
                                                    &c);
                        break;
                    case 2:
                        rc = sl_ctx_create_value(nodes[p], value_key, &marker, &c);
                        break;
                    default:
                        rc = sl_ctx_create_child(nodes[p], &c);
                        break;
                    }
                    if (rc != 0)
                        FAIL("create child: %s", sl_strerror(rc));
                    parent_of[n] = p;
                    nodes[n++] = c;
                    publish(c, &rs);
                }
            }
            level_start = level_end;
            level_end = n;
        }
        publish(nodes[0], &rs);

        /* Give blockers and the canceller time to get onto this tree. */
        uint64_t before = atomic_load(&live_ops);
        for (int y = 0; y < 2000 && atomic_load(&live_ops) - before < BLOCKERS; y++)
            sched_yield();

        /* Cancel a random node ourselves: its subtree must be done on return. */
        int x = (int)(rnd(&rs) % (uint32_t)n);
        sl_ctx_cancel(nodes[x], SL_EIO, "builder cancel %d", it);
        for (int i = 0; i < n; i++) {
            for (int a = i; a >= 0; a = parent_of[a]) {
                if (a == x && !sl_ctx_is_done(nodes[i]))
                    FAIL("node %d under cancelled node %d is not done", i, x);
            }
            /* A parent seen done may still be mid-cascade on another
             * thread; a cancel of our own returns only after it is over. */
            if (parent_of[i] >= 0 && sl_ctx_is_done(nodes[parent_of[i]])) {
                sl_ctx_cancel(nodes[parent_of[i]], SL_EIO, NULL);
                if (!sl_ctx_is_done(nodes[i]))
                    FAIL("node %d running under a done parent", i);
            }
            if (i > 0 && sl_ctx_deadline(nodes[i]) > sl_ctx_deadline(nodes[parent_of[i]]))
                FAIL("node %d deadline later than its parent's", i);
        }
        for (int i = 0; i < n; i++) {
            if (sl_ctx_value(nodes[i], value_key) != NULL &&
                sl_ctx_value(nodes[i], value_key) != &marker)
                FAIL("value lookup returned a stranger");
        }

        /* Tear down in random order (children may outlive parents). */
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rnd(&rs) % (uint32_t)(i + 1));
            sl_ctx *t = nodes[i];
            nodes[i] = nodes[j];
            nodes[j] = t;
        }
        for (int i = 0; i < n; i++) {
            sl_ctx *keep = sl_ctx_ref(nodes[i]);
            sl_ctx_destroy(nodes[i]);
            if (!sl_ctx_is_done(keep) || !is_ctx_code(sl_ctx_err(keep)))
                FAIL("destroyed context not done (err %d)", sl_ctx_err(keep));
            if (sl_ctx_cause(keep)[0] == '\0')
                FAIL("done context without a cause");
            sl_ctx_unref(keep);
        }
    }
    return NULL;
}

static void *canceller_main(void *arg)
{
    uint64_t rs = 0xD1B54A32D192ED03ULL * ((uint64_t)(uintptr_t)arg + 1);
    static const int codes[] = { SL_ECANCELED, SL_ESTOPPED, SL_EIO };

    while (!atomic_load(&builders_done)) {
        sl_ctx *c = pick(&rs);
        if (c == NULL) {
            sched_yield();
            continue;
        }
        if (rnd(&rs) % 4 == 0) {
            int code = codes[rnd(&rs) % 3];
            sl_ctx_cancel(c, code, "cancel %s", sl_error_name(code));
            if (!sl_ctx_is_done(c))
                FAIL("cancelled context not done");
        }
        sl_ctx_unref(c);
        sched_yield();
    }
    return NULL;
}

static void *blocker_main(void *arg)
{
    uint64_t rs = 0x2545F4914F6CDD1DULL * ((uint64_t)(uintptr_t)arg + 1);

    while (!atomic_load(&builders_done)) {
        sl_ctx *c = pick(&rs);
        if (c == NULL) {
            sched_yield();
            continue;
        }
        if (sl_ctx_is_done(c) && rnd(&rs) % 16 != 0) {
            sl_ctx_unref(c);   /* mostly look for running ones */
            sched_yield();
            continue;
        }
        /* A published node is never freed while we hold a reference; its
         * builder cancels every node during teardown, so all of these end. */
        int rc = 0;
        void *out = NULL;
        if (!sl_ctx_is_done(c))
            atomic_fetch_add(&live_ops, 1);   /* most of these really block */
        atomic_fetch_add(&blocked_ops, 1);
        switch (rnd(&rs) % 4) {
        case 0:
            rc = sl_chan_recv(empty_ch, c, &out);
            break;
        case 1:
            rc = sl_chan_send(full_ch, c, NULL);
            break;
        case 2:
            rc = sl_ctx_wait(c, sl_clock_now(NULL) + 2 * SL_NS_PER_MS);
            if (rc == SL_ETIMEDOUT)
                rc = sl_ctx_wait(c, INT64_MAX);
            break;
        default: {
            void *outs[4];
            size_t got = 7;
            rc = sl_chan_recv_batch(empty_ch, c, outs, 4, &got);
            if (got != 0)
                FAIL("cancelled batch receive returned %zu items", got);
            break;
        }
        }
        atomic_fetch_add(&woken_ops, 1);
        if (!is_ctx_code(rc))
            FAIL("blocked op returned %s", sl_error_name(rc));
        if (rc != sl_ctx_err(c))
            FAIL("op returned %s but the context says %s", sl_error_name(rc),
                 sl_error_name(sl_ctx_err(c)));
        sl_ctx_unref(c);
    }
    return NULL;
}

int main(void)
{
    pthread_t b[BUILDERS], c[CANCELLERS], k[BLOCKERS];
    int64_t t0 = sl_clock_now(NULL);

    if (sl_chan_create(4, NULL, &empty_ch) != 0 || sl_chan_create(1, NULL, &full_ch) != 0 ||
        sl_chan_try_send(full_ch, NULL) != 0)
        FAIL("channel setup");
    for (int i = 0; i < CANCELLERS; i++)
        pthread_create(&c[i], NULL, canceller_main, (void *)(uintptr_t)i);
    for (int i = 0; i < BLOCKERS; i++)
        pthread_create(&k[i], NULL, blocker_main, (void *)(uintptr_t)i);
    for (int i = 0; i < BUILDERS; i++)
        pthread_create(&b[i], NULL, builder_main, (void *)(uintptr_t)i);
    for (int i = 0; i < BUILDERS; i++)
        pthread_join(b[i], NULL);

    /* Everything published is done by now; blockers on it return. */
    pthread_mutex_lock(&table.mu);
    for (int i = 0; i < TABLE; i++) {
        if (table.slots[i] != NULL && !sl_ctx_is_done(table.slots[i]))
            FAIL("published context still running after teardown");
    }
    pthread_mutex_unlock(&table.mu);
    atomic_store(&builders_done, true);
    for (int i = 0; i < CANCELLERS; i++)
        pthread_join(c[i], NULL);
    for (int i = 0; i < BLOCKERS; i++)
        pthread_join(k[i], NULL);
    for (int i = 0; i < TABLE; i++)
        sl_ctx_unref(table.slots[i]);

    sl_chan_stats st;
    sl_chan_stats_get(empty_ch, &st);
    if (st.received != 0 || st.sent != 0)
        FAIL("empty channel moved items");
    sl_chan_destroy(empty_ch);
    sl_chan_destroy(full_ch);
    printf("stress_context: ok: %llu operations (%llu on running contexts) in %.2f s\n",
           (unsigned long long)atomic_load(&woken_ops),
           (unsigned long long)atomic_load(&live_ops),
           (double)(sl_clock_now(NULL) - t0) / SL_NS_PER_S);
    return 0;
}
