/*
 * Channels: a bounded MPMC ring buffer of pointers under one mutex.
 *
 * A thread that must block (sender on a full channel, receiver on an empty
 * one) queues a parker node on the channel, registers an sl_ctx_waiter on
 * its context, drops the mutex and sleeps on the node's futex word. It is
 * woken by the side that makes progress possible (a receive frees a slot, a
 * send fills one), by close, or by its context's wake callback — which only
 * touches the node, never the channel mutex, so lock order is always
 * channel mutex -> context mutex. After every wake the thread re-checks its
 * context first: cancellation wins.
 *
 * A thread dequeued by a channel wake-up that then gives up (its context is
 * done) passes the wake-up on, so no progress signal is lost.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "engine/channel_internal.h"
#include "engine/futex_internal.h"
#include "sluice/channel.h"
#include "sluice/error.h"

/* A thread blocked on the channel. Lives on the blocked thread's stack. */
typedef struct chan_parker {
    sl_ctx_waiter cw;               /* registered on the blocked thread's context */
    _Atomic uint32_t woken;         /* atomic: 0 asleep, 1 woken */
    struct chan_parker *prev;       /* guarded by ch->mu */
    struct chan_parker *next;       /* guarded by ch->mu */
    bool queued;                    /* guarded by ch->mu: in a wait queue */
} chan_parker;

typedef struct chan_waitq {
    chan_parker *head;              /* guarded by ch->mu: oldest first */
    chan_parker *tail;              /* guarded by ch->mu */
} chan_waitq;

struct sl_chan {
    pthread_mutex_t mu;             /* guards everything not marked otherwise */
    void **buf;                     /* ring of cap slots */
    size_t cap;                     /* immutable */
    size_t head;                    /* next slot to receive from */
    _Atomic size_t count;           /* atomic (written under mu): items queued */
    _Atomic bool closed;            /* atomic (written under mu) */
    chan_waitq senders;             /* blocked senders */
    chan_waitq receivers;           /* blocked receivers */
    sl_free_fn free_item;           /* immutable; may be NULL */
    uint64_t sent;                  /* items sent */
    uint64_t received;              /* items received */
    size_t max_depth;               /* high-water mark of count */
    int64_t blocked_send_ns;        /* time senders spent blocked */
    int64_t idle_recv_ns;           /* time receivers spent blocked */
};

static int64_t mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_S + ts.tv_nsec;
}

/* ------------------------------------------------------------ wait queues */

static void waitq_push(chan_waitq *q, chan_parker *p)
{
    p->next = NULL;
    p->prev = q->tail;
    if (q->tail != NULL)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    p->queued = true;
}

static void waitq_unlink(chan_waitq *q, chan_parker *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        q->head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        q->tail = p->prev;
    p->prev = p->next = NULL;
    p->queued = false;
}

static void parker_signal(chan_parker *p)
{
    atomic_store_explicit(&p->woken, 1, memory_order_release);
    sl__futex_wake(&p->woken, 1);
}

/* Wake up to n threads from q, oldest first. Caller holds ch->mu (which
 * keeps each node alive: its owner must retake the mutex to leave). */
static void waitq_wake(chan_waitq *q, size_t n)
{
    while (n > 0 && q->head != NULL) {
        chan_parker *p = q->head;
        waitq_unlink(q, p);
        parker_signal(p);
        n--;
    }
}

static void waitq_wake_all(chan_waitq *q)
{
    waitq_wake(q, SIZE_MAX);
}

/* Context wake callback: runs under the context's lock; touches only p. */
static void parker_ctx_wake(sl_ctx_waiter *w)
{
    parker_signal((chan_parker *)w);
}

/*
 * Block on q. Called and returns with ch->mu held. Returns 0 when woken by
 * the channel (or spuriously: the caller re-checks), else ctx's error. The
 * time blocked is added to *stat_ns.
 */
static int chan_park(sl_chan *ch, chan_waitq *q, sl_ctx *ctx, int64_t *stat_ns)
{
    chan_parker p = { .cw = { .wake = parker_ctx_wake } };
    int64_t t0, t1;
    int rc;

    atomic_init(&p.woken, 0);
    if (!sl_ctx_add_waiter(ctx, &p.cw))
        return sl_ctx_err(ctx);
    waitq_push(q, &p);
    pthread_mutex_unlock(&ch->mu);

    t0 = mono_now();
    while (atomic_load_explicit(&p.woken, memory_order_acquire) == 0)
        sl__futex_wait(&p.woken, 0, INT64_MAX);
    t1 = mono_now();
    sl_ctx_remove_waiter(ctx, &p.cw);

    pthread_mutex_lock(&ch->mu);
    *stat_ns += t1 - t0;
    rc = sl_ctx_err(ctx);
    if (p.queued) {
        waitq_unlink(q, &p);          /* woken by the context, not the channel */
    } else if (rc != 0) {
        waitq_wake(q, 1);             /* we consumed a channel wake-up: pass it on */
    }
    return rc;
}

/* ------------------------------------------------------------ lifetime */

/*
 * A channel of capacity slots (>= 1, else SL_EINVAL). free_item (may be
 * NULL) frees items the channel has to drop. Thread: any.
 */
int sl_chan_create(size_t capacity, sl_free_fn free_item, sl_chan **out)
{
    sl_chan *ch;

    if (capacity == 0 || out == NULL || capacity > SIZE_MAX / sizeof(void *))
        return SL_EINVAL;
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return SL_ENOMEM;
    ch->buf = calloc(capacity, sizeof(*ch->buf));
    if (ch->buf == NULL)
        goto out_free_ch;
    if (pthread_mutex_init(&ch->mu, NULL) != 0)
        goto out_free_buf;
    ch->cap = capacity;
    ch->free_item = free_item;
    atomic_init(&ch->count, 0);
    atomic_init(&ch->closed, false);
    *out = ch;
    return 0;
out_free_buf:
    free(ch->buf);
out_free_ch:
    free(ch);
    return SL_ENOMEM;
}

/* Free ch and the items still queued. NULL: no-op. Thread: owner. */
void sl_chan_destroy(sl_chan *ch)
{
    if (ch == NULL)
        return;
    size_t n = atomic_load(&ch->count);
    for (size_t i = 0; i < n; i++) {
        void *item = ch->buf[(ch->head + i) % ch->cap];
        if (ch->free_item != NULL)
            ch->free_item(item);
    }
    pthread_mutex_destroy(&ch->mu);
    free(ch->buf);
    free(ch);
}

static void chan_free_items(sl_chan *ch, void **items, size_t n)
{
    if (ch->free_item == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        ch->free_item(items[i]);
}

/* ------------------------------------------------------------ ring */

/* Push up to n items; returns how many fit. Caller holds mu. */
static size_t ring_push(sl_chan *ch, void *const *items, size_t n)
{
    size_t count = atomic_load_explicit(&ch->count, memory_order_relaxed);
    size_t k = ch->cap - count;

    if (k > n)
        k = n;
    for (size_t i = 0; i < k; i++)
        ch->buf[(ch->head + count + i) % ch->cap] = items[i];
    count += k;
    atomic_store_explicit(&ch->count, count, memory_order_relaxed);
    ch->sent += k;
    if (count > ch->max_depth)
        ch->max_depth = count;
    if (k > 0)
        waitq_wake(&ch->receivers, k);
    return k;
}

/* Pop up to n items; returns how many. Caller holds mu. */
static size_t ring_pop(sl_chan *ch, void **out, size_t n)
{
    size_t count = atomic_load_explicit(&ch->count, memory_order_relaxed);
    size_t k = count < n ? count : n;

    for (size_t i = 0; i < k; i++) {
        out[i] = ch->buf[ch->head];
        ch->buf[ch->head] = NULL;
        ch->head = (ch->head + 1) % ch->cap;
    }
    atomic_store_explicit(&ch->count, count - k, memory_order_relaxed);
    ch->received += k;
    if (k > 0)
        waitq_wake(&ch->senders, k);
    return k;
}

/* ------------------------------------------------------------ send */

/*
 * Send n items in order, blocking while full. On failure the unsent items
 * are freed. Returns 0, SL_ECLOSED or ctx's error.
 */
static int chan_send_n(sl_chan *ch, sl_ctx *ctx, void **items, size_t n)
{
    size_t done = 0;
    int rc = 0;

    if (sl_ctx_is_done(ctx)) {
        rc = sl_ctx_err(ctx);
        goto out_free;
    }
    pthread_mutex_lock(&ch->mu);
    for (;;) {
        if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
            rc = SL_ECLOSED;
            break;
        }
        done += ring_push(ch, items + done, n - done);
        if (done == n)
            break;
        rc = chan_park(ch, &ch->senders, ctx, &ch->blocked_send_ns);
        if (rc != 0)
            break;
    }
    pthread_mutex_unlock(&ch->mu);
out_free:
    if (rc != 0)
        chan_free_items(ch, items + done, n - done);
    return rc;
}

/* Blocking send; takes ownership of item. Thread: any. */
int sl_chan_send(sl_chan *ch, sl_ctx *ctx, void *item)
{
    if (ch == NULL)
        return SL_EINVAL;
    return chan_send_n(ch, ctx, &item, 1);
}

/* Blocking batch send; takes ownership of all n items. Thread: any. */
int sl_chan_send_batch(sl_chan *ch, sl_ctx *ctx, void **items, size_t n)
{
    if (ch == NULL || (items == NULL && n > 0))
        return SL_EINVAL;
    if (n == 0)
        return 0;
    return chan_send_n(ch, ctx, items, n);
}

/*
 * Non-blocking send: SL_EAGAIN (item still the caller's) when full,
 * SL_ECLOSED (item freed) when closed. Thread: any.
 */
int sl_chan_try_send(sl_chan *ch, void *item)
{
    int rc = 0;

    if (ch == NULL)
        return SL_EINVAL;
    pthread_mutex_lock(&ch->mu);
    if (atomic_load_explicit(&ch->closed, memory_order_relaxed))
        rc = SL_ECLOSED;
    else if (ring_push(ch, &item, 1) == 0)
        rc = SL_EAGAIN;
    pthread_mutex_unlock(&ch->mu);
    if (rc == SL_ECLOSED)
        chan_free_items(ch, &item, 1);
    return rc;
}

/* ------------------------------------------------------------ receive */

static int chan_recv_n(sl_chan *ch, sl_ctx *ctx, void **out, size_t max,
                       size_t *got)
{
    size_t k = 0;
    int rc = 0;

    if (sl_ctx_is_done(ctx))
        return sl_ctx_err(ctx);
    pthread_mutex_lock(&ch->mu);
    for (;;) {
        k = ring_pop(ch, out, max);
        if (k > 0)
            break;
        if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
            rc = SL_ECLOSED;
            break;
        }
        rc = chan_park(ch, &ch->receivers, ctx, &ch->idle_recv_ns);
        if (rc != 0)
            break;
    }
    pthread_mutex_unlock(&ch->mu);
    *got = k;
    return rc;
}

/* Blocking receive. Thread: any. */
int sl_chan_recv(sl_chan *ch, sl_ctx *ctx, void **out)
{
    size_t got;

    if (ch == NULL || out == NULL)
        return SL_EINVAL;
    return chan_recv_n(ch, ctx, out, 1, &got);
}

/* Blocking receive of 1..max items. Thread: any. */
int sl_chan_recv_batch(sl_chan *ch, sl_ctx *ctx, void **out, size_t max,
                       size_t *got)
{
    if (got != NULL)
        *got = 0;
    if (ch == NULL || out == NULL || got == NULL || max == 0)
        return SL_EINVAL;
    return chan_recv_n(ch, ctx, out, max, got);
}

/* Non-blocking receive: SL_EAGAIN when empty, SL_ECLOSED when closed and
 * drained. Thread: any. */
int sl_chan_try_recv(sl_chan *ch, void **out)
{
    int rc = 0;

    if (ch == NULL || out == NULL)
        return SL_EINVAL;
    pthread_mutex_lock(&ch->mu);
    if (ring_pop(ch, out, 1) == 0)
        rc = atomic_load_explicit(&ch->closed, memory_order_relaxed)
                 ? SL_ECLOSED : SL_EAGAIN;
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

/* ------------------------------------------------------------ close, stats */

/* No more sends; wakes every blocked thread. Idempotent. Thread: any. */
void sl_chan_close(sl_chan *ch)
{
    if (ch == NULL)
        return;
    pthread_mutex_lock(&ch->mu);
    atomic_store_explicit(&ch->closed, true, memory_order_release);
    waitq_wake_all(&ch->senders);
    waitq_wake_all(&ch->receivers);
    pthread_mutex_unlock(&ch->mu);
}

bool sl_chan_is_closed(const sl_chan *ch)
{
    return ch != NULL && atomic_load_explicit(&ch->closed, memory_order_acquire);
}

size_t sl_chan_len(const sl_chan *ch)
{
    return ch != NULL ? atomic_load_explicit(&ch->count, memory_order_relaxed) : 0;
}

size_t sl_chan_cap(const sl_chan *ch)
{
    return ch != NULL ? ch->cap : 0;
}

/* A snapshot of the counters, taken under the mutex. Thread: any. */
void sl_chan_stats_get(const sl_chan *ch, sl_chan_stats *out)
{
    sl_chan *m = (sl_chan *)ch;   /* the mutex is not part of the value */

    if (ch == NULL) {
        *out = (sl_chan_stats){ 0 };
        return;
    }
    pthread_mutex_lock(&m->mu);
    out->sent = m->sent;
    out->received = m->received;
    out->depth = atomic_load_explicit(&m->count, memory_order_relaxed);
    out->capacity = m->cap;
    out->max_depth = m->max_depth;
    out->blocked_send_ns = m->blocked_send_ns;
    out->idle_recv_ns = m->idle_recv_ns;
    pthread_mutex_unlock(&m->mu);
}

/* Threads blocked right now, for tests and diagnostics. Thread: any. */
size_t sl__chan_blocked(const sl_chan *ch, bool senders)
{
    sl_chan *m = (sl_chan *)ch;
    size_t n = 0;

    pthread_mutex_lock(&m->mu);
    for (chan_parker *p = senders ? m->senders.head : m->receivers.head;
         p != NULL; p = p->next)
        n++;
    pthread_mutex_unlock(&m->mu);
    return n;
}
