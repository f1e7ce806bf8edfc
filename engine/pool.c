/*
 * worker pool: N workers on one input, optionally in input order.
 *
 * Unordered, each worker loops receive -> fn -> send, one item at a time,
 * straight on the (lock-free) channels.
 *
 * Ordered, items are numbered in input order and results go through a
 * reorder ring of window slots (slot = number % window):
 *
 *   take     Under recv_mu a worker first reserves room: it waits until
 *            fewer than window numbered items are still unsent, then
 *            receives a batch of at most its share of the free room
 *            (room / workers, at least 1, at most POOL_BATCH) and numbers
 *            it. Reserving before receiving means a result always has its
 *            slot, and the pool never holds more than window items.
 *            Batches amortise recv_mu, the one point every item passes.
 *   run      fn on each item of the batch, in order.
 *   deposit  The result goes into its slot. Whoever deposits the result
 *            numbered next_emit while nobody is emitting becomes the
 *            emitter: it takes the run of consecutive ready results out
 *            of the ring (up to POOL_BATCH at a time), sends them with mu
 *            released, advances next_emit and wakes a worker waiting for
 *            room. So no extra thread is needed and exactly one thread
 *            sends, in order.
 *
 * Lock order: recv_mu, then mu; the channels' and contexts' own locks are
 * never taken while holding mu, because the context waiter's wake callback
 * takes mu (a leaf lock held only for short sections, so the waker cannot
 * block for long).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "sluice/error.h"
#include "sluice/patterns.h"

#define POOL_BATCH 16
/* A step's result at the end of input (positive: never an SL_E* code). */
#define POOL_END 1

struct sl_pool {
    sl_ctx *ctx;                 /* own child of the caller's context */
    sl_chan *in;                 /* borrowed */
    sl_chan *out;                /* borrowed */
    sl_pool_config cfg;          /* immutable after start */
    size_t window;               /* immutable: reorder slots (ordered) */
    pthread_t *threads;          /* cfg.workers threads */
    sl_ctx_waiter waiter;        /* on ctx: sets stopping, wakes waiters */
    bool waiter_added;           /* owner: waiter registered */
    bool joined;                 /* owner only */

    pthread_mutex_t recv_mu;     /* ordered: serialises take */
    uint64_t next_seq;           /* guarded by recv_mu: next item's number */

    pthread_mutex_t mu;          /* guards the rest */
    pthread_cond_t room;         /* next_emit moved, or stopping */
    bool aborted;                /* start failed: workers leave at once */
    bool stopping;               /* ctx is done */
    bool room_wanted;            /* a taker waits on room */
    size_t active;               /* workers not yet finished */
    int result;                  /* first error, 0 if none */
    uint64_t next_emit;          /* ordered: number of the next result out */
    bool emitting;               /* ordered: a worker is sending a run */
    void **slot;                 /* ordered: window results */
    bool *ready;                 /* ordered: slot holds a result (or NULL) */
};

/* Remember the first error. Caller holds mu. */
static void set_result(sl_pool *p, int rc)
{
    if (p->result == 0)
        p->result = rc;
}

/* Record rc and cancel the pool so the other workers stop too. */
static void fail(sl_pool *p, int rc)
{
    pthread_mutex_lock(&p->mu);
    set_result(p, rc);
    pthread_mutex_unlock(&p->mu);
    sl_ctx_cancel(p->ctx, rc, "worker pool: %s", sl_strerror(rc));
}

/* Free a result that will never be sent. */
static void free_result(sl_pool *p, void *res)
{
    if (res != NULL && p->cfg.free_result != NULL)
        p->cfg.free_result(res);
}

/* Free input items taken but never given to fn (a stop came first). */
static void free_items(sl_pool *p, void **items, size_t n)
{
    if (p->cfg.free_item == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        p->cfg.free_item(items[i]);
}

/* Context waiter: mark the pool stopping and wake a taker waiting for
 * room. It takes mu, a leaf lock held only for short sections in which no
 * context or channel call is made, so the waker cannot deadlock. */
static void wake_pool(sl_ctx_waiter *w)
{
    sl_pool *p = w->arg;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->room);
    pthread_mutex_unlock(&p->mu);
}

/*
 * Ordered take: reserve room, receive up to a fair share of it, number
 * the items. Returns 0 with *got >= 1 and *first the first number,
 * POOL_END at the end of input, or the error that stops the pool.
 */
static int take(sl_pool *p, void **items, size_t *got, uint64_t *first)
{
    int rc;

    pthread_mutex_lock(&p->recv_mu);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping && p->next_seq - p->next_emit >= p->window) {
        p->room_wanted = true;
        pthread_cond_wait(&p->room, &p->mu);
    }
    bool stopping = p->stopping;
    size_t room = (size_t)(p->window - (p->next_seq - p->next_emit));
    pthread_mutex_unlock(&p->mu);
    if (stopping) {
        pthread_mutex_unlock(&p->recv_mu);
        return SL_ECANCELED;    /* the context's error is recorded anyway */
    }
    size_t max = room / p->cfg.workers;
    if (max == 0)
        max = 1;
    if (max > POOL_BATCH)
        max = POOL_BATCH;
    rc = sl_chan_recv_batch(p->in, p->ctx, items, max, got);
    *first = p->next_seq;
    p->next_seq += *got;
    pthread_mutex_unlock(&p->recv_mu);
    return rc == SL_ECLOSED ? POOL_END : rc;
}

/*
 * Send runs of ready results starting at next_emit. Caller holds mu and
 * has set emitting; returns with mu held and emitting cleared.
 */
static int emit_runs(sl_pool *p)
{
    void *batch[POOL_BATCH];
    int rc = 0;

    while (rc == 0 && !p->stopping) {
        size_t k = 0, n = 0;
        while (k < POOL_BATCH) {
            size_t i = (size_t)((p->next_emit + k) % p->window);
            if (!p->ready[i])
                break;
            if (p->slot[i] != NULL)
                batch[n++] = p->slot[i];
            p->slot[i] = NULL;
            p->ready[i] = false;
            k++;
        }
        if (k == 0)
            break;
        /* Slots next_emit .. next_emit + k stay reserved until next_emit
         * moves, so no deposit can land in them meanwhile. */
        pthread_mutex_unlock(&p->mu);
        if (n > 0)
            rc = sl_chan_send_batch(p->out, p->ctx, batch, n);
        pthread_mutex_lock(&p->mu);
        p->next_emit += k;
        if (p->room_wanted) {
            p->room_wanted = false;
            pthread_cond_broadcast(&p->room);
        }
    }
    p->emitting = false;
    return rc;
}

/*
 * Put the result numbered seq into its reserved slot and send what has
 * become sendable. Takes ownership of res. Returns 0, or the error that
 * stops the pool.
 */
static int deposit(sl_pool *p, uint64_t seq, void *res)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        free_result(p, res);
        return SL_ECANCELED;    /* the context's error is recorded anyway */
    }
    size_t i = (size_t)(seq % p->window);
    p->slot[i] = res;
    p->ready[i] = true;
    if (seq == p->next_emit && !p->emitting) {
        p->emitting = true;
        rc = emit_runs(p);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Run fn on one item and pass its result on. */
static int process(sl_pool *p, void *item, uint64_t seq)
{
    void *res = NULL;
    int rc = p->cfg.fn(item, &res, p->ctx, p->cfg.arg);
    if (rc != 0) {
        free_result(p, res);
        fail(p, rc);
        return rc;
    }
    if (p->cfg.ordered)
        rc = deposit(p, seq, res);
    else if (res != NULL)
        rc = sl_chan_send(p->out, p->ctx, res);
    if (rc == SL_ECLOSED)
        fail(p, rc);
    return rc;
}

/* One unordered step: receive an item and process it. Returns 0,
 * POOL_END, or the error that stops the pool. */
static int step_unordered(sl_pool *p)
{
    void *item;
    int rc = sl_chan_recv(p->in, p->ctx, &item);
    if (rc == SL_ECLOSED)
        return POOL_END;
    return rc != 0 ? rc : process(p, item, 0);
}

/* One ordered step: take a batch and process it in order; on a stop the
 * items not yet given to fn are freed. */
static int step_ordered(sl_pool *p)
{
    void *items[POOL_BATCH];
    size_t got = 0;
    uint64_t first;
    int rc = take(p, items, &got, &first);
    for (size_t i = 0; rc == 0 && i < got; i++) {
        if (sl_ctx_is_done(p->ctx)) {
            free_items(p, items + i, got - i);
            return sl_ctx_err(p->ctx);
        }
        rc = process(p, items[i], first + i);
        if (rc != 0)
            free_items(p, items + i + 1, got - i - 1);
    }
    return rc;
}

/* A worker: pass the start gate, then step until the input closes or the
 * pool stops; the last one out closes out. */
static void *worker_main(void *arg)
{
    sl_pool *p = arg;
    int rc;

    pthread_mutex_lock(&p->mu);
    bool aborted = p->aborted;
    pthread_mutex_unlock(&p->mu);
    if (aborted)
        return NULL;

    do
        rc = p->cfg.ordered ? step_ordered(p) : step_unordered(p);
    while (rc == 0);
    if (rc == POOL_END)
        rc = 0;

    /* A context error is the pool's result when nothing else came first;
     * it is read here, outside mu. */
    int ctx_err = rc != 0 ? sl_ctx_err(p->ctx) : 0;
    pthread_mutex_lock(&p->mu);
    if (rc != 0)
        set_result(p, ctx_err != 0 ? ctx_err : rc);
    bool last = --p->active == 0;
    pthread_mutex_unlock(&p->mu);
    if (last)
        sl_chan_close(p->out);
    return NULL;
}

/* Free the pool's memory (threads joined, context gone). */
static void pool_free(sl_pool *p)
{
    pthread_cond_destroy(&p->room);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->recv_mu);
    free(p->ready);
    free(p->slot);
    free(p->threads);
    free(p);
}

/*
 * Workers wait on the start gate (mu, held while they are created) so a
 * failed start takes no item from in.
 */
int sl_pool_start(sl_ctx *ctx, const sl_pool_config *cfg, sl_chan *in,
                  sl_chan *out, sl_pool **out_pool)
{
    int rc = 0;

    if (cfg == NULL || cfg->workers == 0 || cfg->fn == NULL || in == NULL ||
        out == NULL || out_pool == NULL)
        return SL_EINVAL;
    sl_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return SL_ENOMEM;
    p->cfg = *cfg;
    p->in = in;
    p->out = out;
    p->window = cfg->window != 0 ? cfg->window : 16 * cfg->workers;
    pthread_mutex_init(&p->recv_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->room, NULL);
    p->threads = calloc(cfg->workers, sizeof(*p->threads));
    if (p->threads == NULL) {
        rc = SL_ENOMEM;
        goto out_free_pool;
    }
    if (cfg->ordered) {
        p->slot = calloc(p->window, sizeof(*p->slot));
        p->ready = calloc(p->window, sizeof(*p->ready));
        if (p->slot == NULL || p->ready == NULL) {
            rc = SL_ENOMEM;
            goto out_free_pool;
        }
    }
    rc = ctx != NULL ? sl_ctx_create_child(ctx, &p->ctx)
                     : sl_ctx_create(&p->ctx);
    if (rc != 0)
        goto out_free_pool;
    p->waiter.wake = wake_pool;
    p->waiter.arg = p;
    if (sl_ctx_add_waiter(p->ctx, &p->waiter))
        p->waiter_added = true;
    else
        p->stopping = true;    /* already done: workers leave at once */

    size_t started = 0;
    pthread_mutex_lock(&p->mu);
    p->active = cfg->workers;
    for (; started < cfg->workers; started++) {
        int err = pthread_create(&p->threads[started], NULL, worker_main, p);
        if (err != 0) {
            rc = err == EAGAIN ? SL_EAGAIN : SL_EINTERNAL;
            p->aborted = true;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (rc != 0)
        goto out_join;
    *out_pool = p;
    return 0;

out_join:
    for (size_t i = 0; i < started; i++)
        pthread_join(p->threads[i], NULL);
    if (p->waiter_added)
        sl_ctx_remove_waiter(p->ctx, &p->waiter);
    sl_ctx_destroy(p->ctx);
out_free_pool:
    pool_free(p);
    return rc;
}

/* Cancel the pool's own context. Thread: any. */
void sl_pool_stop(sl_pool *p)
{
    if (p != NULL)
        sl_ctx_cancel(p->ctx, SL_ECANCELED, "worker pool stopped");
}

/* Join the workers, then free the results a stop left in the ring.
 * Thread: owner. */
int sl_pool_wait(sl_pool *p)
{
    if (p == NULL)
        return SL_EINVAL;
    if (!p->joined) {
        for (size_t i = 0; i < p->cfg.workers; i++)
            pthread_join(p->threads[i], NULL);
        if (p->waiter_added) {
            sl_ctx_remove_waiter(p->ctx, &p->waiter);
            p->waiter_added = false;
        }
        if (p->cfg.ordered) {
            for (size_t i = 0; i < p->window; i++) {
                if (p->ready[i])
                    free_result(p, p->slot[i]);
                p->slot[i] = NULL;
                p->ready[i] = false;
            }
        }
        p->joined = true;
    }
    return p->result;
}

/* Stop, join, free. NULL: no-op. Thread: owner. */
void sl_pool_destroy(sl_pool *p)
{
    if (p == NULL)
        return;
    sl_pool_stop(p);
    sl_pool_wait(p);
    sl_ctx_destroy(p->ctx);
    pool_free(p);
}
