/*
 * queue: an unbounded FIFO of pointers.
 *
 * A ring buffer that doubles when full and halves when mostly empty, so a
 * burst does not pin its memory forever. Poppers wait on a condition
 * variable; a context waiter wakes them on cancel.
 */
#include <pthread.h>
#include <stdlib.h>

#include "sluice/error.h"
#include "sluice/patterns.h"

#define QUEUE_MIN_CAP 16

struct sl_queue {
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t cond;    /* an item was pushed, closed, or a ctx is done */
    void **buf;             /* ring of cap slots */
    size_t cap;             /* slots in buf, a power of two */
    size_t head;            /* index of the oldest item */
    size_t len;             /* items queued */
    size_t max_len;         /* high-water mark of len */
    size_t waiting;         /* poppers blocked */
    uint64_t pushed;        /* items pushed */
    uint64_t popped;        /* items popped */
    bool closed;            /* no more pushes */
    sl_free_fn free_item;   /* immutable after create; may be NULL */
};

/* An empty queue with a ring of QUEUE_MIN_CAP slots. Thread: any. */
int sl_queue_create(sl_free_fn free_item, sl_queue **out)
{
    if (out == NULL)
        return SL_EINVAL;
    sl_queue *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return SL_ENOMEM;
    q->buf = calloc(QUEUE_MIN_CAP, sizeof(*q->buf));
    if (q->buf == NULL) {
        free(q);
        return SL_ENOMEM;
    }
    q->cap = QUEUE_MIN_CAP;
    q->free_item = free_item;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    *out = q;
    return 0;
}

/* Free what is still queued, then the queue. NULL: no-op. Thread: owner. */
void sl_queue_destroy(sl_queue *q)
{
    if (q == NULL)
        return;
    if (q->free_item != NULL)
        for (size_t i = 0; i < q->len; i++)
            q->free_item(q->buf[(q->head + i) & (q->cap - 1)]);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    free(q->buf);
    free(q);
}

/* Move the items into a new ring of new_cap slots (>= len). Caller holds
 * mu. Returns false, changing nothing, when out of memory. */
static bool resize(sl_queue *q, size_t new_cap)
{
    void **nb = malloc(new_cap * sizeof(*nb));
    if (nb == NULL)
        return false;
    for (size_t i = 0; i < q->len; i++)
        nb[i] = q->buf[(q->head + i) & (q->cap - 1)];
    free(q->buf);
    q->buf = nb;
    q->cap = new_cap;
    q->head = 0;
    return true;
}

/* Append under mu, doubling the ring when full; a refused item is freed
 * after mu is released (free_item is the caller's code). Thread: any. */
int sl_queue_push(sl_queue *q, void *item)
{
    int rc = 0;

    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        rc = SL_ECLOSED;
        goto out_unlock;
    }
    if (q->len == q->cap &&
        (q->cap > SIZE_MAX / 2 / sizeof(void *) || !resize(q, q->cap * 2))) {
        rc = SL_ENOMEM;
        goto out_unlock;
    }
    q->buf[(q->head + q->len) & (q->cap - 1)] = item;
    q->len++;
    q->pushed++;
    if (q->len > q->max_len)
        q->max_len = q->len;
    if (q->waiting > 0)
        pthread_cond_signal(&q->cond);
out_unlock:
    pthread_mutex_unlock(&q->mu);
    if (rc != 0 && q->free_item != NULL)
        q->free_item(item);
    return rc;
}

/* Take the oldest item. Caller holds mu and has checked len > 0. */
static void *take(sl_queue *q)
{
    void *item = q->buf[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    q->popped++;
    /* Give back memory after a burst; failing to is harmless. */
    if (q->cap > QUEUE_MIN_CAP && q->len <= q->cap / 4)
        resize(q, q->cap / 2);
    return item;
}

/* Pop without waiting: SL_EAGAIN when empty, SL_ECLOSED when closed and
 * drained. Thread: any. */
int sl_queue_try_pop(sl_queue *q, void **out)
{
    int rc = 0;
    pthread_mutex_lock(&q->mu);
    if (q->len > 0)
        *out = take(q);
    else
        rc = q->closed ? SL_ECLOSED : SL_EAGAIN;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/* Context waiter: wake every popper so the one(s) on this ctx notice. It
 * takes mu, a leaf lock never held across a context call. */
static void wake_poppers(sl_ctx_waiter *w)
{
    sl_queue *q = w->arg;
    pthread_mutex_lock(&q->mu);
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

/*
 * The waiter is registered before taking mu (the context's lock must never
 * be taken while holding mu: the waker takes them in the other order).
 * A push wakes one popper. If that one leaves because its context is done
 * while items remain, it passes the wake-up on: it may have seen the
 * context done and unregistered before the context's own broadcast ran.
 */
int sl_queue_pop(sl_queue *q, sl_ctx *ctx, void **out)
{
    sl_ctx_waiter w = { .wake = wake_poppers, .arg = q };
    bool waiting_on_ctx = false;
    bool ctx_done = false;
    int rc = 0;

    if (ctx != NULL) {
        if (!sl_ctx_add_waiter(ctx, &w))
            return sl_ctx_err(ctx);
        waiting_on_ctx = true;
    }
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (ctx != NULL && sl_ctx_is_done(ctx)) {
            ctx_done = true;     /* its error is read outside mu */
            break;
        }
        if (q->len > 0) {
            *out = take(q);
            break;
        }
        if (q->closed) {
            rc = SL_ECLOSED;
            break;
        }
        q->waiting++;
        pthread_cond_wait(&q->cond, &q->mu);
        q->waiting--;
    }
    if ((ctx_done || rc != 0) && q->len > 0 && q->waiting > 0)
        pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
    if (waiting_on_ctx)
        sl_ctx_remove_waiter(ctx, &w);
    if (ctx_done)
        rc = sl_ctx_err(ctx);
    return rc;
}

/* Mark closed and wake every popper. Idempotent. Thread: any. */
void sl_queue_close(sl_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

/* Whether close was called. Thread: any. */
bool sl_queue_is_closed(const sl_queue *q)
{
    sl_queue *mq = (sl_queue *)q;
    pthread_mutex_lock(&mq->mu);
    bool closed = mq->closed;
    pthread_mutex_unlock(&mq->mu);
    return closed;
}

/* Items queued now. Thread: any. */
size_t sl_queue_len(const sl_queue *q)
{
    sl_queue *mq = (sl_queue *)q;
    pthread_mutex_lock(&mq->mu);
    size_t len = mq->len;
    pthread_mutex_unlock(&mq->mu);
    return len;
}

/* The counters, read together under mu. Thread: any. */
void sl_queue_stats_get(const sl_queue *q, sl_queue_stats *out)
{
    sl_queue *mq = (sl_queue *)q;
    pthread_mutex_lock(&mq->mu);
    out->pushed = mq->pushed;
    out->popped = mq->popped;
    out->len = mq->len;
    out->max_len = mq->max_len;
    out->waiting = mq->waiting;
    pthread_mutex_unlock(&mq->mu);
}
