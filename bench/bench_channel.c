/*
 * Channel throughput: items/s and ns/item through one sl_chan of capacity
 * 1024, for
 *   spsc_single   1 producer, 1 consumer, sl_chan_send / sl_chan_recv
 *   spsc_batch    1 producer, 1 consumer, batches of 64 each way
 *   mpmc_single   2 producers, 2 consumers, single-item ops
 *   mpmc_batch    2 producers, 2 consumers, batches of 64
 * Every operation passes a live context, as stages do. The consumers check
 * the sum of what they received. Columns: wall seconds, millions of items
 * per second, wall ns per item, and process CPU ns per item (both threads'
 * time; steadier than wall time on a loaded machine). bench/go/chanbench.go runs the same
 * workloads on a Go buffered channel; bench/channel.sh compares the two.
 *
 * Usage: bench_channel [ITEMS] [WORKLOAD...]   (default 20000000, all)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/channel.h"
#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"

#define CAPACITY 1024
#define BATCH 64

typedef struct bench {
    sl_chan *ch;
    sl_ctx *ctx;
    uint64_t per_producer;          /* items each producer sends */
    int producers;                  /* producer thread count */
    int consumers;                  /* consumer thread count */
    int batch;                      /* 1 or BATCH */
} bench;

typedef struct worker {
    bench *b;
    int index;                      /* producer index */
    uint64_t sum;                   /* consumer: sum of received values */
    uint64_t count;                 /* consumer: items received */
    uint64_t ops;                   /* consumer: successful receive calls */
} worker;

/* CPU time of the whole process (all threads), ns: on a shared machine
 * this shows the cost per item even when wall time is inflated by other
 * processes' load. */
static int64_t cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_S + ts.tv_nsec;
}

static void *producer_main(void *arg)
{
    worker *w = arg;
    bench *b = w->b;
    uint64_t base = (uint64_t)w->index * b->per_producer;
    void *buf[BATCH];

    if (b->batch == 1) {
        for (uint64_t i = 1; i <= b->per_producer; i++) {
            if (sl_chan_send(b->ch, b->ctx, (void *)(uintptr_t)(base + i)) != 0)
                abort();
        }
        return NULL;
    }
    for (uint64_t i = 1; i <= b->per_producer;) {
        size_t n = 0;
        while (n < BATCH && i <= b->per_producer)
            buf[n++] = (void *)(uintptr_t)(base + i++);
        if (sl_chan_send_batch(b->ch, b->ctx, buf, n) != 0)
            abort();
    }
    return NULL;
}

static void *consumer_main(void *arg)
{
    worker *w = arg;
    bench *b = w->b;
    void *buf[BATCH];

    for (;;) {
        size_t got = 1;
        int rc;
        if (b->batch == 1)
            rc = sl_chan_recv(b->ch, b->ctx, buf);
        else
            rc = sl_chan_recv_batch(b->ch, b->ctx, buf, BATCH, &got);
        if (rc == SL_ECLOSED)
            return NULL;
        if (rc != 0)
            abort();
        for (size_t i = 0; i < got; i++)
            w->sum += (uintptr_t)buf[i];
        w->count += got;
        w->ops++;
    }
}

static int run(const char *name, uint64_t items, int producers, int consumers,
               int batch)
{
    bench b = {
        .per_producer = items / (uint64_t)producers,
        .producers = producers,
        .consumers = consumers,
        .batch = batch,
    };
    pthread_t pt[8], ct[8];
    worker pw[8], cw[8];
    uint64_t total = b.per_producer * (uint64_t)producers;
    uint64_t sum = 0, count = 0, ops = 0;

    if (sl_ctx_create(&b.ctx) != 0 || sl_chan_create(CAPACITY, NULL, &b.ch) != 0)
        return 1;
    int64_t t0 = sl_clock_now(NULL);
    int64_t cpu0 = cpu_now();
    for (int i = 0; i < consumers; i++) {
        cw[i] = (worker){ .b = &b, .index = i };
        pthread_create(&ct[i], NULL, consumer_main, &cw[i]);
    }
    for (int i = 0; i < producers; i++) {
        pw[i] = (worker){ .b = &b, .index = i };
        pthread_create(&pt[i], NULL, producer_main, &pw[i]);
    }
    for (int i = 0; i < producers; i++)
        pthread_join(pt[i], NULL);
    sl_chan_close(b.ch);
    for (int i = 0; i < consumers; i++) {
        pthread_join(ct[i], NULL);
        sum += cw[i].sum;
        count += cw[i].count;
        ops += cw[i].ops;
    }
    int64_t ns = sl_clock_now(NULL) - t0;
    int64_t cpu = cpu_now() - cpu0;

    if (count != total || sum != total * (total + 1) / 2) {
        fprintf(stderr, "%s: received %llu items, wrong sum\n", name,
                (unsigned long long)count);
        return 1;
    }
    sl_chan_stats st;
    sl_chan_stats_get(b.ch, &st);
    printf("%-12s %10llu %9.3f %10.2f %8.2f %9.2f   items/recv %.1f, blocked_send %.3fs, idle_recv %.3fs\n",
           name, (unsigned long long)total, (double)ns / 1e9,
           (double)total / ((double)ns / 1e9) / 1e6, (double)ns / (double)total,
           (double)cpu / (double)total, (double)count / (double)ops,
           (double)st.blocked_send_ns / 1e9, (double)st.idle_recv_ns / 1e9);
    fflush(stdout);
    sl_chan_destroy(b.ch);
    sl_ctx_destroy(b.ctx);
    return 0;
}

static bool wanted(int argc, char **argv, const char *name)
{
    if (argc <= 2)
        return true;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    uint64_t items = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000;
    int rc = 0;

    printf("%-12s %10s %9s %10s %8s %9s\n", "workload", "items", "seconds", "Mitems/s",
           "ns/item", "cpu_ns/it");
    if (wanted(argc, argv, "spsc_single"))
        rc |= run("spsc_single", items, 1, 1, 1);
    if (wanted(argc, argv, "spsc_batch"))
        rc |= run("spsc_batch", items, 1, 1, BATCH);
    if (wanted(argc, argv, "mpmc_single"))
        rc |= run("mpmc_single", items, 2, 2, 1);
    if (wanted(argc, argv, "mpmc_batch"))
        rc |= run("mpmc_batch", items, 2, 2, BATCH);
    return rc;
}
