/*
 * Channels: a bounded lock-free MPMC ring with futex parking.
 *
 * The ring. Each slot has a sequence number (Vyukov's bounded MPMC queue).
 * Positions are 64-bit counters that only grow: `tail` is the next position
 * to send to, `head` the next to receive from; slot i serves positions
 * i, i + cap, i + 2cap, ... A slot is free for position p when its sequence
 * is 2p, and holds the item of p when it is 2p + 1; a receiver frees it for
 * the next lap by storing 2(p + cap). A sender scans forward from the tail
 * while slots are free (up to its batch), claims them all with one CAS on
 * the tail, then writes the items and publishes each slot; a receiver does
 * the same from the head. So a batch costs one CAS per side, and a single
 * item costs one CAS, two cache lines and no lock.
 *
 * Counters for free: every claimed position is always filled and every
 * received one freed, so `tail` is the number sent and `head` the number
 * received; depth is their difference.
 *
 * Close is bit 63 of `tail`, set with one atomic OR: a sender's CAS fails
 * once it is set, so no send can succeed after close. A receiver reports
 * SL_ECLOSED only when the bit is set and head has caught up with the tail
 * (a claimed but not yet published slot is still waited for).
 *
 * Blocking. Each direction has an event: a futex word `epoch` and a count
 * of `waiters`. A thread that finds the ring full (or empty) first spins
 * briefly, then announces itself (waiters++), re-checks the ring, registers
 * an sl_ctx_waiter and sleeps on the epoch. The other side, after
 * publishing, reads `waiters`: only when someone is waiting does it bump
 * the epoch and make the futex system call. The publish and the announce
 * are seq_cst, so a wake-up cannot be lost (one of the two always sees the
 * other; see event_notify()). A context's wake callback
 * bumps the same epoch and wakes every sleeper of that direction; they
 * re-check their contexts first (cancellation wins). A thread that gives up
 * after sleeping passes one wake-up on, in case it had consumed it.
 *
 * Stats: blocked_send_ns / idle_recv_ns count time from the announce to the
 * wake-up, i.e. only when a thread really had to park; max_depth is kept
 * exact without reading `head` on every send (see note_depth()).
 */
#include <limits.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "engine/channel_internal.h"
#include "engine/futex_internal.h"
#include "sluice/channel.h"
#include "sluice/error.h"

#define CACHE_LINE 64
#define CLOSED_BIT (UINT64_C(1) << 63)
#define POS_MASK (CLOSED_BIT - 1)
/* Slot sequence values: free for position p, or holding p's item. Doubling
 * keeps the two apart even when cap == 1 (p + 1 is the next lap's p). */
#define SEQ_FREE(p) ((p) * 2)
#define SEQ_FULL(p) ((p) * 2 + 1)
/* Re-checks of the ring, with a pause each, before a thread parks. */
#define SPIN_TRIES 200

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

typedef struct chan_slot {
    _Atomic uint64_t seq;           /* atomic: position this slot is ready for (see top) */
    void *item;                     /* written by the claiming sender, read by the claiming receiver */
} chan_slot;

/* Threads parked in one direction. */
typedef struct chan_event {
    _Atomic uint32_t epoch;         /* atomic: futex word, bumped to wake sleepers */
    _Atomic uint32_t waiters;       /* atomic: threads announced as about to sleep */
} chan_event;

struct sl_chan {
    /* Immutable after create. */
    chan_slot *slots;               /* cap slots */
    uint64_t cap;                   /* capacity */
    uint64_t mask;                  /* cap - 1 when cap is a power of two, else 0 */
    sl_free_fn free_item;           /* may be NULL */

    /* Sender side. */
    alignas(CACHE_LINE) _Atomic uint64_t tail;  /* atomic: next send position | CLOSED_BIT */
    _Atomic uint64_t head_seen;     /* atomic: a recent value of head, for note_depth */
    _Atomic uint64_t max_depth;     /* atomic: high-water mark of depth */

    /* Receiver side. */
    alignas(CACHE_LINE) _Atomic uint64_t head;  /* atomic: next receive position */

    alignas(CACHE_LINE) chan_event not_empty;   /* receivers waiting for items */
    alignas(CACHE_LINE) chan_event not_full;    /* senders waiting for room */

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
 * After publishing: wake up to n sleepers if anyone announced. This is one
 * half of a Dekker pair: the publisher does a seq_cst store of its first
 * slot then a seq_cst load of `waiters`; a waiter does a seq_cst increment
 * of `waiters` then seq_cst loads of the slots. In the single total order
 * of seq_cst operations one of the two comes first, so either the
 * publisher sees the waiter or the waiter sees the slot. (On x86 that is
 * one xchg per operation and plain loads; no fences.)
 */
static inline void event_notify(chan_event *ev, int n)
{
    if (atomic_load_explicit(&ev->waiters, memory_order_seq_cst) != 0) {
        atomic_fetch_add_explicit(&ev->epoch, 1, memory_order_release);
        sl__futex_wake(&ev->epoch, n);
    }
}

/* Announce a sleeper; returns the epoch to sleep on. The caller re-checks
 * the ring after this and before sleeping. */
static inline uint32_t event_announce(chan_event *ev)
{
    atomic_fetch_add_explicit(&ev->waiters, 1, memory_order_seq_cst);
    return atomic_load_explicit(&ev->epoch, memory_order_acquire);
}

/* Leave; when giving up after a sleep, pass a wake-up on to another. */
static inline void event_leave(chan_event *ev, bool pass_on)
{
    uint32_t left = atomic_fetch_sub_explicit(&ev->waiters, 1, memory_order_seq_cst) - 1;

    if (pass_on && left != 0) {
        atomic_fetch_add_explicit(&ev->epoch, 1, memory_order_release);
        sl__futex_wake(&ev->epoch, 1);
    }
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
 * Keep max_depth exact cheaply. Called by a sender that has claimed
 * positions up to end but not yet published the first, so head <= end and
 * end - head is the depth including this send. head only grows, so depth
 * computed from an older head is an upper bound: only when that bound
 * beats the current maximum do we read the real head (a cache line owned
 * by the receivers). A stale head_seen from a slower sender just causes
 * one extra read.
 */
static inline void note_depth(sl_chan *ch, uint64_t end)
{
    uint64_t max = atomic_load_explicit(&ch->max_depth, memory_order_relaxed);

    if (end - atomic_load_explicit(&ch->head_seen, memory_order_relaxed) <= max)
        return;
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    atomic_store_explicit(&ch->head_seen, h, memory_order_relaxed);
    uint64_t d = end - h;
    if (h > end)
        return;
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
 * Count the consecutive slots from index i (for position pos onwards) whose
 * sequence is want, want + 2, ... — free slots for a sender, full ones for
 * a receiver — up to n. *seq0 gets the first slot's sequence.
 */
static inline size_t ring_scan(const sl_chan *ch, uint64_t i, uint64_t want,
                               size_t n, uint64_t *seq0)
{
    size_t k;

    *seq0 = atomic_load_explicit(&ch->slots[i].seq, memory_order_seq_cst);
    if (*seq0 != want)
        return 0;
    for (k = 1; k < n; k++) {
        if (++i == ch->cap)
            i = 0;
        want += 2;
        if (atomic_load_explicit(&ch->slots[i].seq, memory_order_acquire) != want)
            break;
    }
    return k;
}

/*
 * Send up to n items without blocking. Returns how many were sent (in
 * order, from items[0]); *closed tells whether the channel is closed.
 */
static inline size_t ring_send(sl_chan *ch, void *const *items, size_t n,
                               bool *closed)
{
    uint64_t t = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    uint64_t i0, seq;
    size_t k;

    *closed = false;
    for (;;) {
        if (t & CLOSED_BIT) {
            *closed = true;
            return 0;
        }
        i0 = slot_index(ch, t);
        k = ring_scan(ch, i0, SEQ_FREE(t), n, &seq);
        if (k == 0) {
            if ((int64_t)(seq - SEQ_FREE(t)) < 0) {
                /* Slot t still holds last lap's item: full, unless our
                 * view of the tail is stale. */
                uint64_t t2 = atomic_load_explicit(&ch->tail, memory_order_relaxed);
                if (t2 == t)
                    return 0;
                t = t2;
            } else {
                t = atomic_load_explicit(&ch->tail, memory_order_relaxed);
            }
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&ch->tail, &t, t + k,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    /* Before publishing, so receivers cannot have moved head past t. */
    note_depth(ch, t + k);
    /*
     * Publish back to front: receivers scan from the first slot, so they
     * see the whole batch at once and claim it with one CAS instead of
     * chasing us slot by slot through shared cache lines. The first slot's
     * store, last, is seq_cst: see event_notify().
     */
    if (k > 1) {
        uint64_t i = i0 + k - 1;
        if (i >= ch->cap)
            i -= ch->cap;
        for (size_t m = k - 1; m > 0; m--) {
            ch->slots[i].item = items[m];
            atomic_store_explicit(&ch->slots[i].seq, SEQ_FULL(t + m), memory_order_release);
            i = i == 0 ? ch->cap - 1 : i - 1;
        }
    }
    ch->slots[i0].item = items[0];
    atomic_store_explicit(&ch->slots[i0].seq, SEQ_FULL(t), memory_order_seq_cst);
    event_notify(&ch->not_empty, (int)k);
    return k;
}

/*
 * Receive up to max items without blocking. Returns how many. When it
 * returns 0, *closed tells whether the channel is closed and drained.
 */
static inline size_t ring_recv(sl_chan *ch, void **out, size_t max, bool *closed)
{
    uint64_t h = atomic_load_explicit(&ch->head, memory_order_relaxed);
    uint64_t i0, seq;
    size_t k;

    *closed = false;
    for (;;) {
        i0 = slot_index(ch, h);
        k = ring_scan(ch, i0, SEQ_FULL(h), max, &seq);
        if (k == 0) {
            if ((int64_t)(seq - SEQ_FULL(h)) < 0) {
                /* Nothing published at h: empty, in flight, or stale h. */
                uint64_t t = atomic_load_explicit(&ch->tail, memory_order_acquire);
                uint64_t h2 = atomic_load_explicit(&ch->head, memory_order_relaxed);
                if (h2 != h) {
                    h = h2;
                    continue;
                }
                *closed = (t & CLOSED_BIT) && (t & POS_MASK) == h;
                return 0;
            }
            h = atomic_load_explicit(&ch->head, memory_order_relaxed);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&ch->head, &h, h + k,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    /* Free back to front for the same reason as ring_send publishes so. */
    if (k > 1) {
        uint64_t i = i0 + k - 1;
        if (i >= ch->cap)
            i -= ch->cap;
        for (size_t m = k - 1; m > 0; m--) {
            out[m] = ch->slots[i].item;
            atomic_store_explicit(&ch->slots[i].seq, SEQ_FREE(h + m + ch->cap),
                                  memory_order_release);
            i = i == 0 ? ch->cap - 1 : i - 1;
        }
    }
    out[0] = ch->slots[i0].item;
    atomic_store_explicit(&ch->slots[i0].seq, SEQ_FREE(h + ch->cap), memory_order_seq_cst);
    event_notify(&ch->not_full, (int)k);
    return k;
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
    ch->slots = aligned_alloc(CACHE_LINE, (capacity * sizeof(chan_slot) + CACHE_LINE - 1)
                                              / CACHE_LINE * CACHE_LINE);
    if (ch->slots == NULL)
        goto out_free_ch;
    for (size_t i = 0; i < capacity; i++) {
        atomic_init(&ch->slots[i].seq, SEQ_FREE(i));
        ch->slots[i].item = NULL;
    }
    ch->cap = capacity;
    ch->mask = (capacity & (capacity - 1)) == 0 ? capacity - 1 : 0;
    if (capacity == 1)
        ch->mask = 0;   /* pos % 1; a mask of 0 would mean "not a power of two" */
    ch->free_item = free_item;
    atomic_init(&ch->tail, 0);
    atomic_init(&ch->head_seen, 0);
    atomic_init(&ch->max_depth, 0);
    atomic_init(&ch->head, 0);
    atomic_init(&ch->not_empty.epoch, 0);
    atomic_init(&ch->not_empty.waiters, 0);
    atomic_init(&ch->not_full.epoch, 0);
    atomic_init(&ch->not_full.waiters, 0);
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
            ch->free_item(ch->slots[slot_index(ch, p)].item);
    }
    free(ch->slots);
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

static int chan_wait(sl_chan *ch, chan_event *ev, sl_ctx *ctx, chan_try_fn try,
                     void *op, size_t *got, _Atomic int64_t *stat_ns)
{
    bool closed = false;

    for (int i = 0; i < SPIN_TRIES; i++) {
        cpu_relax();
        *got = try(ch, op, &closed);
        if (*got > 0)
            return 0;
        if (closed)
            return SL_ECLOSED;
        if (sl_ctx_is_done(ctx))
            return sl_ctx_err(ctx);
    }
    sched_yield();

    sl_ctx_waiter w = { .wake = event_ctx_wake, .arg = ev };
    int64_t t0 = mono_now();
    uint32_t epoch = event_announce(ev);
    int rc = 0;
    bool slept = false;

    *got = try(ch, op, &closed);
    if (*got > 0 || closed) {
        rc = *got > 0 ? 0 : SL_ECLOSED;
        goto out_leave;
    }
    if (!sl_ctx_add_waiter(ctx, &w)) {
        rc = sl_ctx_err(ctx);
        goto out_leave;
    }
    sl__futex_wait(&ev->epoch, epoch, INT64_MAX);
    slept = true;
    sl_ctx_remove_waiter(ctx, &w);
    rc = sl_ctx_err(ctx);
out_leave:
    event_leave(ev, slept && rc != 0);
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
        rc = chan_wait(ch, &ch->not_full, ctx, send_try, &op, &got,
                       &ch->blocked_send_ns);
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
        rc = chan_wait(ch, &ch->not_empty, ctx, recv_try, &op, got,
                       &ch->idle_recv_ns);
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

bool sl_chan_is_closed(const sl_chan *ch)
{
    return ch != NULL &&
           (atomic_load_explicit(&ch->tail, memory_order_acquire) & CLOSED_BIT);
}

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

/* Threads parked (or about to park) now, for tests and diagnostics.
 * Thread: any. */
size_t sl__chan_blocked(const sl_chan *ch, bool senders)
{
    const chan_event *ev = senders ? &ch->not_full : &ch->not_empty;

    return atomic_load_explicit(&ev->waiters, memory_order_acquire);
}
