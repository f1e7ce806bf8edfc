/*
 * Channels: a bounded lock-free MPMC ring with futex parking.
 *
 * The ring is a plain array of item pointers with four 64-bit counters
 * that only grow (positions; slot = position mod cap), in the manner of a
 * multi-producer disruptor:
 *
 *   tail       positions reserved by senders (bit 63: closed)
 *   committed  positions whose items are written and visible
 *   head       positions reserved by receivers
 *   released   positions whose items receivers have taken, free again
 *
 * released <= head <= committed <= tail <= released + cap. A sender reserves
 * up to its whole batch with one CAS on `tail` (room permitting), copies the
 * items in, waits for earlier senders to commit (they are mid-copy; rarely
 * any wait) and stores `committed`. A receiver reserves up to its maximum
 * with one CAS on `head` (as far as `committed`), copies out, waits for
 * earlier receivers, and stores `released`. So a batch of 64 costs one CAS
 * and one store per side and moves 8 cache lines of items, and a single
 * item costs the same two atomic operations per side and no lock. Each
 * side keeps a cached copy of the other side's counter next to its own, so
 * it reads the other side's cache line only when the cached value says
 * "full" (or "empty").
 *
 * Counters for free: every reservation is always completed, so `tail` is
 * the number sent and `head` the number received; depth is the difference.
 *
 * Close is bit 63 of `tail`, set with one atomic OR: a sender's CAS fails
 * once it is set, so no send can succeed after close. A receiver reports
 * SL_ECLOSED only when the bit is set and head has caught up with the tail
 * (a reserved but not yet committed batch is still waited for).
 *
 * Blocking. Each kind of wait has an event: a futex word `epoch` and a
 * count of `waiters` (announcements). A thread that finds the ring full (or
 * empty) first spins briefly, then announces itself, re-checks the ring,
 * registers an sl_ctx_waiter and sleeps on the epoch. The other side, after
 * storing `committed` (or `released`), reads `waiters`: only when someone
 * announced does it take the announcements, bump the epoch and make one
 * futex system call that wakes every sleeper of that kind — so a sleeper
 * costs one system call per sleep, not one per item sent while it wakes
 * up. The store and the announce are seq_cst, so a wake-up cannot be lost
 * (one of the two always sees the other; see event_notify()). A context's
 * wake callback bumps the same epoch; sleepers re-check their contexts
 * first (cancellation wins). Waiting for one's turn to commit or release
 * uses two more events the same way; it cannot be cancelled (the
 * reservation must be completed) and never waits on anything but a thread
 * that is running.
 *
 * Stats: blocked_send_ns / idle_recv_ns count time from the first announce
 * to the end of the wait, i.e. only when a thread really had to park;
 * max_depth is kept exact without reading `head` on every send (see
 * note_depth()).
 */
#include <limits.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/channel_internal.h"
#include "engine/futex_internal.h"
#include "sluice/channel.h"
#include "sluice/error.h"

#define CACHE_LINE 64
#define CLOSED_BIT (UINT64_C(1) << 63)
#define POS_MASK (CLOSED_BIT - 1)
/* Spin iterations (a pause each) before a thread parks: an adaptive
 * budget per event between these bounds, and a fixed one for turn waits. */
#define SPIN_MIN 8
#define SPIN_MAX 256
#define SPIN_TRIES 200

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

/* Threads parked for one reason. */
typedef struct chan_event {
    _Atomic uint32_t epoch;         /* atomic: futex word, bumped to wake sleepers */
    _Atomic uint32_t waiters;       /* atomic: announcements since the last wake-up */
    _Atomic uint32_t sleepers;      /* atomic: threads in (or entering) the futex wait */
    _Atomic uint32_t spin;          /* atomic: how long to spin before parking (adaptive) */
} chan_event;

struct sl_chan {
    /* Immutable after create. */
    void **buf;                     /* cap item slots */
    uint64_t cap;                   /* capacity */
    uint64_t mask;                  /* cap - 1 when cap is a power of two > 1, else 0 */
    sl_free_fn free_item;           /* may be NULL */

    /* Senders' line. */
    alignas(CACHE_LINE) _Atomic uint64_t tail;  /* atomic: reserved by senders | CLOSED_BIT */
    _Atomic uint64_t released_seen; /* atomic: a recent value of released */
    _Atomic uint64_t head_seen;     /* atomic: a recent value of head, for note_depth */
    _Atomic uint64_t max_depth;     /* atomic: high-water mark of depth */

    /* Written by senders, read by receivers. */
    alignas(CACHE_LINE) _Atomic uint64_t committed;  /* atomic: items visible below this */

    /* Receivers' line. */
    alignas(CACHE_LINE) _Atomic uint64_t head;  /* atomic: reserved by receivers */
    _Atomic uint64_t committed_seen;  /* atomic: a recent value of committed */

    /* Written by receivers, read by senders. */
    alignas(CACHE_LINE) _Atomic uint64_t released;  /* atomic: slots free below this + cap */

    /* Woken when committed grows: receivers, and senders waiting to commit. */
    alignas(CACHE_LINE) chan_event not_empty;
    chan_event commit_turn;
    /* Woken when released grows: senders, and receivers waiting to release. */
    alignas(CACHE_LINE) chan_event not_full;
    chan_event release_turn;

    alignas(CACHE_LINE) _Atomic int64_t blocked_send_ns;  /* atomic */
    _Atomic int64_t idle_recv_ns;   /* atomic */
};

static int64_t mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_S + ts.tv_nsec;
}

/* ------------------------------------------------------------ events */

/*
 * After storing a counter: wake the sleepers if anyone announced since the
 * last wake-up. This is one half of a Dekker pair: the publisher does a
 * seq_cst store of the counter (committed or released) then a seq_cst load
 * of `waiters`; a waiter does a seq_cst increment of `waiters` then a
 * seq_cst load of the counter. In the single total order of seq_cst
 * operations one of the two comes first, so either the publisher sees the
 * waiter or the waiter sees the counter. (On x86: one xchg per operation
 * and plain loads.)
 *
 * The publisher takes the announcements (exchange to 0) and wakes every
 * sleeper, so while they get going, further items make no more system
 * calls; a thread whose announcement was taken finds the epoch moved and
 * announces again before it sleeps again (event_prepare()).
 */
static inline void event_notify(chan_event *ev)
{
    if (atomic_load_explicit(&ev->waiters, memory_order_seq_cst) != 0 &&
        atomic_exchange_explicit(&ev->waiters, 0, memory_order_seq_cst) != 0) {
        atomic_fetch_add_explicit(&ev->epoch, 1, memory_order_release);
        sl__futex_wake(&ev->epoch, INT_MAX);
    }
}

/*
 * Announce a sleeper; returns the epoch to sleep on. The caller re-checks
 * the ring after this and sleeps only if that finds nothing. The epoch is
 * read before the announcement: if a publisher takes the announcement, its
 * epoch bump comes after, so the sleep returns at once and the caller
 * announces again. An announcement left behind by a thread that did not
 * sleep only costs one needless wake-up later.
 */
static inline uint32_t event_prepare(chan_event *ev)
{
    uint32_t epoch = atomic_load_explicit(&ev->epoch, memory_order_acquire);

    atomic_fetch_add_explicit(&ev->waiters, 1, memory_order_seq_cst);
    return epoch;
}

/* Sleep until the epoch moves on from epoch (or spuriously). */
static inline void event_sleep(chan_event *ev, uint32_t epoch)
{
    atomic_fetch_add_explicit(&ev->sleepers, 1, memory_order_relaxed);
    sl__futex_wait(&ev->epoch, epoch, INT64_MAX);
    atomic_fetch_sub_explicit(&ev->sleepers, 1, memory_order_relaxed);
}

static void event_wake_all(chan_event *ev)
{
    atomic_fetch_add_explicit(&ev->epoch, 1, memory_order_release);
    sl__futex_wake(&ev->epoch, INT_MAX);
}

/* Context wake callback: runs under the context's lock; touches only the
 * event (the channel outlives the blocked operation that registered it). */
static void event_ctx_wake(sl_ctx_waiter *w)
{
    event_wake_all(w->arg);
}

/* ------------------------------------------------------------ ring */

/*
 * Keep max_depth exact cheaply. Called by a sender that has reserved
 * positions up to end but not yet committed them, so head <= end and
 * end - head is the depth including this send. head only grows, so depth
 * computed from an older head is an upper bound: only when that bound
 * beats the current maximum do we read the real head (a cache line owned
 * by the receivers).
 */
static inline void note_depth(sl_chan *ch, uint64_t end)
{
    uint64_t max = atomic_load_explicit(&ch->max_depth, memory_order_relaxed);

    if (end - atomic_load_explicit(&ch->head_seen, memory_order_relaxed) <= max)
        return;
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    atomic_store_explicit(&ch->head_seen, h, memory_order_relaxed);
    if (h > end)
        return;
    uint64_t d = end - h;
    while (d > max &&
           !atomic_compare_exchange_weak_explicit(&ch->max_depth, &max, d,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

static inline uint64_t slot_index(const sl_chan *ch, uint64_t pos)
{
    return ch->mask != 0 ? (pos & ch->mask) : (pos % ch->cap);
}

/*
 * Wait until *ctr reaches pos: our turn to commit (or release) after the
 * reservations before ours. Those belong to threads between their CAS and
 * their store, which never block on anything but this same kind of turn,
 * so the wait always ends; it spins first (they are mid-copy), then
 * yields, then parks on ev. Not cancellable: a reservation must complete.
 */
static void wait_turn(_Atomic uint64_t *ctr, uint64_t pos, chan_event *ev)
{
    for (int i = 0; i < SPIN_TRIES; i++) {
        if (atomic_load_explicit(ctr, memory_order_acquire) == pos)
            return;
        cpu_relax();
    }
    sched_yield();
    for (;;) {
        uint32_t epoch = event_prepare(ev);
        if (atomic_load_explicit(ctr, memory_order_seq_cst) == pos)
            return;
        event_sleep(ev, epoch);
    }
}

/* Copy k items to or from the ring starting at slot i0, wrapping once. */
static inline void ring_copy_in(sl_chan *ch, uint64_t i0, void *const *items, size_t k)
{
    if (k == 1) {
        ch->buf[i0] = items[0];
        return;
    }
    size_t first = ch->cap - i0 < k ? (size_t)(ch->cap - i0) : k;

    memcpy(&ch->buf[i0], items, first * sizeof(void *));
    if (first < k)
        memcpy(&ch->buf[0], items + first, (k - first) * sizeof(void *));
}

static inline void ring_copy_out(const sl_chan *ch, uint64_t i0, void **out, size_t k)
{
    if (k == 1) {
        out[0] = ch->buf[i0];
        return;
    }
    size_t first = ch->cap - i0 < k ? (size_t)(ch->cap - i0) : k;

    memcpy(out, &ch->buf[i0], first * sizeof(void *));
    if (first < k)
        memcpy(out + first, &ch->buf[0], (k - first) * sizeof(void *));
}

/*
 * Send up to n items without blocking. Returns how many were sent (in
 * order, from items[0]); *closed tells whether the channel is closed.
 */
static inline size_t ring_send(sl_chan *ch, void *const *items, size_t n,
                               bool *closed)
{
    uint64_t t = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    uint64_t k;

    *closed = false;
    for (;;) {
        if (t & CLOSED_BIT) {
            *closed = true;
            return 0;
        }
        /* Acquire: the receivers' reads of these slots happen before our
         * writes (through the release stores of released/released_seen). */
        uint64_t rel = atomic_load_explicit(&ch->released_seen, memory_order_acquire);
        uint64_t used = t - rel;
        if (used >= ch->cap || ch->cap - used < n) {
            rel = atomic_load_explicit(&ch->released, memory_order_seq_cst);
            atomic_store_explicit(&ch->released_seen, rel, memory_order_release);
            used = t - rel;
        }
        if ((int64_t)used < 0) {
            /* Our view of the tail is older than released: reload. */
            t = atomic_load_explicit(&ch->tail, memory_order_relaxed);
            continue;
        }
        if (used >= ch->cap) {
            uint64_t t2 = atomic_load_explicit(&ch->tail, memory_order_relaxed);
            if (t2 == t)
                return 0;   /* full */
            t = t2;
            continue;
        }
        k = ch->cap - used < n ? ch->cap - used : n;
        if (atomic_compare_exchange_weak_explicit(&ch->tail, &t, t + k,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    ring_copy_in(ch, slot_index(ch, t), items, (size_t)k);
    note_depth(ch, t + k);
    if (atomic_load_explicit(&ch->committed, memory_order_acquire) != t)
        wait_turn(&ch->committed, t, &ch->commit_turn);
    /* Release for the items; seq_cst for the waiters check below. */
    atomic_store_explicit(&ch->committed, t + k, memory_order_seq_cst);
    event_notify(&ch->not_empty);
    event_notify(&ch->commit_turn);
    return (size_t)k;
}

/*
 * Receive up to max items without blocking. Returns how many. When it
 * returns 0, *closed tells whether the channel is closed and drained.
 */
static inline size_t ring_recv(sl_chan *ch, void **out, size_t max, bool *closed)
{
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    uint64_t k;

    *closed = false;
    for (;;) {
        /* Acquire: the senders' writes of these items happen before our
         * reads (through the release stores of committed/committed_seen). */
        uint64_t com = atomic_load_explicit(&ch->committed_seen, memory_order_acquire);
        if ((int64_t)(com - h) <= 0) {
            com = atomic_load_explicit(&ch->committed, memory_order_seq_cst);
            atomic_store_explicit(&ch->committed_seen, com, memory_order_release);
            if (com == h) {
                /* Empty for us: closed and drained, or wait. */
                uint64_t t = atomic_load_explicit(&ch->tail, memory_order_acquire);
                uint64_t h2 = atomic_load_explicit(&ch->head, memory_order_relaxed);
                if (h2 != h) {
                    h = h2;
                    continue;
                }
                *closed = (t & CLOSED_BIT) && (t & POS_MASK) == h;
                return 0;
            }
            if ((int64_t)(com - h) < 0) {
                h = atomic_load_explicit(&ch->head, memory_order_relaxed);
                continue;
            }
        }
        k = com - h < max ? com - h : max;
        if (atomic_compare_exchange_weak_explicit(&ch->head, &h, h + k,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    ring_copy_out(ch, slot_index(ch, h), out, (size_t)k);
    if (atomic_load_explicit(&ch->released, memory_order_acquire) != h)
        wait_turn(&ch->released, h, &ch->release_turn);
    atomic_store_explicit(&ch->released, h + k, memory_order_seq_cst);
    event_notify(&ch->not_full);
    event_notify(&ch->release_turn);
    return (size_t)k;
}

/* ------------------------------------------------------------ lifetime */

/*
 * A channel of capacity slots (>= 1, else SL_EINVAL). free_item (may be
 * NULL) frees items the channel has to drop. Thread: any.
 */
int sl_chan_create(size_t capacity, sl_free_fn free_item, sl_chan **out)
{
    sl_chan *ch;

    if (capacity == 0 || out == NULL || capacity > (SIZE_MAX >> 8))
        return SL_EINVAL;
    ch = aligned_alloc(CACHE_LINE, (sizeof(*ch) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE);
    if (ch == NULL)
        return SL_ENOMEM;
    memset(ch, 0, sizeof(*ch));
    ch->buf = aligned_alloc(CACHE_LINE, (capacity * sizeof(void *) + CACHE_LINE - 1)
                                            / CACHE_LINE * CACHE_LINE);
    if (ch->buf == NULL)
        goto out_free_ch;
    ch->cap = capacity;
    ch->mask = capacity > 1 && (capacity & (capacity - 1)) == 0 ? capacity - 1 : 0;
    ch->free_item = free_item;
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->released_seen, 0);
    atomic_init(&ch->head_seen, 0);
    atomic_init(&ch->max_depth, 0);
    atomic_init(&ch->committed, 0);
    atomic_init(&ch->head, 0);
    atomic_init(&ch->committed_seen, 0);
    atomic_init(&ch->released, 0);
    chan_event *evs[] = { &ch->not_empty, &ch->commit_turn, &ch->not_full, &ch->release_turn };
    for (size_t i = 0; i < 4; i++) {
        atomic_init(&evs[i]->epoch, 0);
        atomic_init(&evs[i]->waiters, 0);
        atomic_init(&evs[i]->sleepers, 0);
        atomic_init(&evs[i]->spin, SPIN_MAX / 2);
    }
    atomic_init(&ch->blocked_send_ns, 0);
    atomic_init(&ch->idle_recv_ns, 0);
    *out = ch;
    return 0;
out_free_ch:
    free(ch);
    return SL_ENOMEM;
}

/* Free ch and the items still queued. NULL: no-op. Thread: owner. */
void sl_chan_destroy(sl_chan *ch)
{
    if (ch == NULL)
        return;
    uint64_t t = atomic_load(&ch->tail) & POS_MASK;
    if (ch->free_item != NULL) {
        for (uint64_t p = atomic_load(&ch->head); p != t; p++)
            ch->free_item(ch->buf[slot_index(ch, p)]);
    }
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

/* ------------------------------------------------------------ blocking */

/*
 * The slow path shared by send and receive: spin, then park on ev until
 * the ring may have changed. Returns 0 to retry the operation, SL_ECLOSED
 * when *closed was found set, or ctx's error. progress() retries the
 * operation itself; its result (> 0: progress made) is left in *got.
 */
typedef size_t (*chan_try_fn)(sl_chan *ch, void *op, bool *closed);

static int chan_wait(sl_chan *ch, chan_event *ev, _Atomic uint64_t *watch,
                     sl_ctx *ctx, chan_try_fn try, void *op, size_t *got,
                     _Atomic int64_t *stat_ns)
{
    bool closed = false;
    uint64_t seen = atomic_load_explicit(watch, memory_order_relaxed);
    uint32_t ep = atomic_load_explicit(&ev->epoch, memory_order_relaxed);
    uint32_t budget = atomic_load_explicit(&ev->spin, memory_order_relaxed);

    /*
     * Spin reading only the counter the other side moves and our event's
     * epoch (which close bumps), not the lines the other side is writing,
     * and retry the operation when one of them changes. Spinning only pays
     * when the other side is running on another CPU at the same time; on
     * an oversubscribed machine it is wasted, so the budget adapts: it
     * grows when a spin succeeds and halves when one runs out.
     */
    for (uint32_t i = 0; i < budget; i++) {
        cpu_relax();
        if (atomic_load_explicit(watch, memory_order_relaxed) == seen &&
            atomic_load_explicit(&ev->epoch, memory_order_relaxed) == ep &&
            !sl_ctx_is_done(ctx))
            continue;
        *got = try(ch, op, &closed);
        if (*got > 0) {
            if (budget < SPIN_MAX)
                atomic_store_explicit(&ev->spin, budget * 2 > SPIN_MAX ? SPIN_MAX : budget * 2,
                                      memory_order_relaxed);
            return 0;
        }
        if (closed)
            return SL_ECLOSED;
        if (sl_ctx_is_done(ctx))
            return sl_ctx_err(ctx);
        seen = atomic_load_explicit(watch, memory_order_relaxed);
        ep = atomic_load_explicit(&ev->epoch, memory_order_relaxed);
    }
    if (budget > SPIN_MIN)
        atomic_store_explicit(&ev->spin, budget / 2 < SPIN_MIN ? SPIN_MIN : budget / 2,
                              memory_order_relaxed);
    sched_yield();

    sl_ctx_waiter w = { .wake = event_ctx_wake, .arg = ev };
    bool registered = false;
    int64_t t0 = mono_now();
    int rc;

    for (;;) {
        uint32_t epoch = event_prepare(ev);
        *got = try(ch, op, &closed);
        if (*got > 0 || closed) {
            rc = *got > 0 ? 0 : SL_ECLOSED;
            break;
        }
        if (!registered) {
            if (!sl_ctx_add_waiter(ctx, &w)) {
                rc = sl_ctx_err(ctx);
                break;
            }
            registered = true;
        }
        /* A cancel stores the error before its callback moves the epoch:
         * either we see the error here or the sleep returns at once. */
        if (sl_ctx_is_done(ctx)) {
            rc = sl_ctx_err(ctx);
            break;
        }
        event_sleep(ev, epoch);
    }
    if (registered)
        sl_ctx_remove_waiter(ctx, &w);
    atomic_fetch_add_explicit(stat_ns, mono_now() - t0, memory_order_relaxed);
    return rc;
}

/* ------------------------------------------------------------ send */

typedef struct send_op {
    void **items;                   /* the caller's items */
    size_t n;                       /* how many */
    size_t done;                    /* how many sent so far */
} send_op;

static size_t send_try(sl_chan *ch, void *arg, bool *closed)
{
    send_op *op = arg;
    size_t k = ring_send(ch, op->items + op->done, op->n - op->done, closed);

    op->done += k;
    return k;
}

/*
 * Send n >= 1 items in order, blocking while full. On failure the unsent
 * items are freed. Returns 0, SL_ECLOSED or ctx's error.
 */
static int chan_send_n(sl_chan *ch, sl_ctx *ctx, void **items, size_t n)
{
    send_op op = { .items = items, .n = n };
    bool closed;
    int rc = 0;

    if (sl_ctx_is_done(ctx)) {
        rc = sl_ctx_err(ctx);
        goto out_free;
    }
    for (;;) {
        size_t got;
        if (send_try(ch, &op, &closed) > 0 && op.done == n)
            return 0;
        if (closed) {
            rc = SL_ECLOSED;
            break;
        }
        if (op.done == n)
            return 0;
        rc = chan_wait(ch, &ch->not_full, &ch->released, ctx, send_try, &op,
                       &got, &ch->blocked_send_ns);
        if (rc != 0)
            break;
        if (op.done == n)
            return 0;
    }
out_free:
    chan_free_items(ch, items + op.done, n - op.done);
    return rc;
}

/* Blocking send; takes ownership of item. Thread: any. */
int sl_chan_send(sl_chan *ch, sl_ctx *ctx, void *item)
{
    bool closed;

    if (ch == NULL)
        return SL_EINVAL;
    if (!sl_ctx_is_done(ctx) && ring_send(ch, &item, 1, &closed) == 1)
        return 0;
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
    bool closed;

    if (ch == NULL)
        return SL_EINVAL;
    if (ring_send(ch, &item, 1, &closed) == 1)
        return 0;
    if (closed) {
        chan_free_items(ch, &item, 1);
        return SL_ECLOSED;
    }
    return SL_EAGAIN;
}

/* ------------------------------------------------------------ receive */

typedef struct recv_op {
    void **out;                     /* the caller's buffer */
    size_t max;                     /* its size */
} recv_op;

static size_t recv_try(sl_chan *ch, void *arg, bool *closed)
{
    recv_op *op = arg;

    return ring_recv(ch, op->out, op->max, closed);
}

static int chan_recv_n(sl_chan *ch, sl_ctx *ctx, void **out, size_t max,
                       size_t *got)
{
    recv_op op = { .out = out, .max = max };
    bool closed;
    int rc;

    *got = 0;
    if (sl_ctx_is_done(ctx))
        return sl_ctx_err(ctx);
    for (;;) {
        *got = ring_recv(ch, out, max, &closed);
        if (*got > 0)
            return 0;
        if (closed)
            return SL_ECLOSED;
        rc = chan_wait(ch, &ch->not_empty, &ch->committed, ctx, recv_try, &op,
                       got, &ch->idle_recv_ns);
        if (rc != 0) {
            *got = 0;
            return rc;
        }
        if (*got > 0)
            return 0;
    }
}

/* Blocking receive. Thread: any. */
int sl_chan_recv(sl_chan *ch, sl_ctx *ctx, void **out)
{
    size_t got;
    bool closed;

    if (ch == NULL || out == NULL)
        return SL_EINVAL;
    if (!sl_ctx_is_done(ctx) && ring_recv(ch, out, 1, &closed) == 1)
        return 0;
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
    bool closed;

    if (ch == NULL || out == NULL)
        return SL_EINVAL;
    if (ring_recv(ch, out, 1, &closed) == 1)
        return 0;
    return closed ? SL_ECLOSED : SL_EAGAIN;
}

/* ------------------------------------------------------------ close, stats */

/* No more sends; wakes every blocked thread. Idempotent. Thread: any. */
void sl_chan_close(sl_chan *ch)
{
    if (ch == NULL)
        return;
    atomic_fetch_or_explicit(&ch->tail, CLOSED_BIT, memory_order_seq_cst);
    event_wake_all(&ch->not_empty);
    event_wake_all(&ch->not_full);
}

/* Whether sl_chan_close has been called (NULL: false). Thread: any. */
bool sl_chan_is_closed(const sl_chan *ch)
{
    return ch != NULL &&
           (atomic_load_explicit(&ch->tail, memory_order_acquire) & CLOSED_BIT);
}

/* Items queued now, a snapshot (NULL: 0). Thread: any. */
size_t sl_chan_len(const sl_chan *ch)
{
    if (ch == NULL)
        return 0;
    /* head first: both only grow, so the difference is never negative. */
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&ch->tail, memory_order_acquire) & POS_MASK;
    /* Sends between the two loads may overshoot; depth never exceeds cap. */
    return (size_t)(t - h > ch->cap ? ch->cap : t - h);
}

/* The capacity given at creation (NULL: 0). Thread: any. */
size_t sl_chan_cap(const sl_chan *ch)
{
    return ch != NULL ? (size_t)ch->cap : 0;
}

/* A snapshot of the counters. Thread: any. */
void sl_chan_stats_get(const sl_chan *ch, sl_chan_stats *out)
{
    if (ch == NULL) {
        *out = (sl_chan_stats){ 0 };
        return;
    }
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&ch->tail, memory_order_acquire) & POS_MASK;
    out->sent = t;
    out->received = h;
    out->depth = (size_t)(t - h > ch->cap ? ch->cap : t - h);
    out->capacity = (size_t)ch->cap;
    out->max_depth = (size_t)atomic_load_explicit(&ch->max_depth, memory_order_relaxed);
    out->blocked_send_ns = atomic_load_explicit(&ch->blocked_send_ns, memory_order_relaxed);
    out->idle_recv_ns = atomic_load_explicit(&ch->idle_recv_ns, memory_order_relaxed);
}

/* Threads asleep (or entering the sleep) in a blocking send or receive
 * now, for tests and diagnostics. Thread: any. */
size_t sl__chan_blocked(const sl_chan *ch, bool senders)
{
    const chan_event *ev = senders ? &ch->not_full : &ch->not_empty;

    return atomic_load_explicit(&ev->sleepers, memory_order_acquire);
}
