/*
 * worker pool: N workers on one input, optionally in input order.
 *
 * Unordered, each worker loops receive -> fn -> send.
 *
 * Ordered, a worker numbers each item as it receives it (receives are
 * serialised by recv_mu so numbers follow input order), runs fn, and
 * deposits the result in the reorder ring at seq % window. A result more
 * than window places ahead of next_emit waits for room. Whoever deposits
 * the result numbered next_emit while nobody is emitting becomes the
 * emitter: it sends the run of consecutive ready results, one at a time
 * with mu released, then goes back to work. So no extra thread is needed
 * and at most one thread sends, in order.
 *
 * Lock order: recv_mu, then the channels' and contexts' own locks. mu is
 * taken by the context waiter's wake callback, so no channel or context
 * call (other than sl_ctx_is_done) is made while holding mu.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "sluice/error.h"
#include "sluice/patterns.h"

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

    pthread_mutex_t recv_mu;     /* ordered: serialises receive + numbering */
    uint64_t next_seq;           /* guarded by recv_mu: next item's number */

    pthread_mutex_t mu;          /* guards the rest */
    pthread_cond_t room;         /* next_emit moved, or stopping */
    bool aborted;                /* start failed: workers leave at once */
    bool stopping;               /* ctx is done */
    size_t active;               /* workers not yet finished */
    int result;                  /* first error, 0 if none */
    uint64_t next_emit;          /* ordered: number of the next result out */
    bool emitting;               /* ordered: a worker is sending the run */
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

/* Context waiter: mark the pool stopping and wake workers waiting for
 * room. It takes mu, a leaf lock held only for short sections in which
 * no context or channel call is made, so the waker cannot deadlock. */
static void wake_pool(sl_ctx_waiter *w)
{
    sl_pool *p = w->arg;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->room);
    pthread_mutex_unlock(&p->mu);
}

/* Receive the next item; ordered pools also get its number. */
static int next_item(sl_pool *p, void **item, uint64_t *seq)
{
    if (!p->cfg.ordered)
        return sl_chan_recv(p->in, p->ctx, item);
    pthread_mutex_lock(&p->recv_mu);
    int rc = sl_chan_recv(p->in, p->ctx, item);
    if (rc == 0)
        *seq = p->next_seq++;
    pthread_mutex_unlock(&p->recv_mu);
    return rc;
}

/*
 * Send the run of ready results starting at next_emit. Caller holds mu
 * and has set emitting; returns with mu held and emitting cleared.
 */
static int emit_run(sl_pool *p)
{
    int rc = 0;
    for (;;) {
        size_t i = (size_t)(p->next_emit % p->window);
        if (!p->ready[i] || p->stopping)
            break;
        void *res = p->slot[i];
        p->slot[i] = NULL;
        p->ready[i] = false;
        pthread_mutex_unlock(&p->mu);
        if (res != NULL)
            rc = sl_chan_send(p->out, p->ctx, res);
        pthread_mutex_lock(&p->mu);
        p->next_emit++;
        pthread_cond_broadcast(&p->room);
        if (rc != 0)
            break;
    }
    p->emitting = false;
    return rc;
}

/*
 * Put the result numbered seq into the reorder ring, waiting while it is
 * more than window places ahead, and send what has become sendable.
 * Takes ownership of res. Returns 0, or the error that stops the pool.
 */
static int deposit(sl_pool *p, uint64_t seq, void *res)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (seq >= p->next_emit + p->window && !p->stopping)
        pthread_cond_wait(&p->room, &p->mu);
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
        rc = emit_run(p);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* A worker: pass the start gate, then receive, process, send (or deposit)
 * until the input closes or the pool stops; the last one out closes out. */
static void *worker_main(void *arg)
{
    sl_pool *p = arg;
    int rc;

    pthread_mutex_lock(&p->mu);
    bool aborted = p->aborted;
    pthread_mutex_unlock(&p->mu);
    if (aborted)
        return NULL;

    for (;;) {
        void *item, *res = NULL;
        uint64_t seq = 0;
        rc = next_item(p, &item, &seq);
        if (rc == SL_ECLOSED) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        rc = p->cfg.fn(item, &res, p->ctx, p->cfg.arg);
        if (rc != 0) {
            free_result(p, res);
            fail(p, rc);
            break;
        }
        if (p->cfg.ordered)
            rc = deposit(p, seq, res);
        else if (res != NULL)
            rc = sl_chan_send(p->out, p->ctx, res);
        if (rc != 0) {
            if (rc == SL_ECLOSED)
                fail(p, rc);
            break;
        }
    }

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
    p->window = cfg->window != 0 ? cfg->window : 4 * cfg->workers;
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

/* Join the workers, then free the results a stop left in the ring. */
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
