/*
 * Channel patterns: the building blocks a pipeline is wired from.
 *
 *   or-done    read a channel until it closes or the context is done
 *   tee        one input, N outputs, every item to each output
 *   merge      N inputs into one output (fan-in)
 *   bridge     a channel of channels flattened in order
 *   queue      an unbounded FIFO, for the few places that need one
 *   heartbeat  a "last pulse" time; a watchdog reports the silent ones
 *   pool       N workers on one input, optionally in input order
 *   errgroup   tasks on threads; the first error cancels the group
 *
 * Patterns that run threads (tee, merge, bridge, pool) share one life
 * cycle:
 *
 *   sl_X_start(ctx, ...)  starts the threads. The pattern works under its
 *                         own child of ctx (ctx may be NULL: no outer
 *                         cancellation). On failure nothing was started,
 *                         no item was moved and *out is untouched.
 *   sl_X_stop(x)          hard stop: cancels the pattern's context with
 *                         SL_ECANCELED; returns at once. Thread: any.
 *   sl_X_wait(x)          joins the threads and returns the result: 0 when
 *                         the inputs closed and everything was forwarded,
 *                         else the error that stopped it. Calling it again
 *                         returns the same result. Thread: owner.
 *   sl_X_destroy(x)       stop + wait if still running, then free. NULL:
 *                         no-op. Thread: owner.
 *
 * Channels given to a pattern are borrowed: they must outlive it (until
 * wait or destroy returns). Once started, whatever way a pattern stops, it
 * closes its output channels, so downstream readers never wait forever. Items keep the
 * channel ownership rule: sending gives an item away, on success and on
 * failure.
 *
 * Bounds: a pattern never holds more than a small fixed number of items of
 * its own (stated per pattern), so a slow consumer slows its producers —
 * backpressure goes through patterns unchanged. The queue is the one
 * exception, by design.
 *
 * Cancellation: every blocking wait inside a pattern returns promptly when
 * its context is done; there is no polling.
 *
 * Thread: any, unless noted.
 */
#ifndef SLUICE_PATTERNS_H
#define SLUICE_PATTERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "clock.h"
#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* or-done                                                             */
/* ------------------------------------------------------------------ */

/* Called once per item; the item is given away to fn. Non-zero stops. */
typedef int (*sl_item_fn)(void *item, void *arg);

/*
 * Receive from in and call fn(item, arg) for each item, in order, until the
 * channel is closed and drained (returns 0), ctx is done (returns its
 * error), or fn returns non-zero (returns that value; the items still in
 * the channel stay there). fn owns each item it is given. ctx may be NULL.
 * SL_EINVAL if in or fn is NULL. Thread: any (the calling thread runs fn).
 */
int sl_chan_for_each(sl_chan *in, sl_ctx *ctx, sl_item_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* tee                                                                 */
/* ------------------------------------------------------------------ */

/*
 * Make an independent copy of item for another output, or return NULL when
 * out of memory. Runs on the tee's thread; item must not be modified.
 */
typedef void *(*sl_copy_fn)(const void *item, void *arg);

typedef struct sl_tee sl_tee;

/*
 * Start a tee: one thread receives each item from in and sends it to every
 * output of outs[0..n), in input order on each output. n - 1 outputs get a
 * copy made with copy(item, arg) (made before any of them is sent, so no
 * branch sees another's changes); the last output still open gets the
 * original. copy may be NULL only when n == 1.
 *
 * Bounds: the tee holds at most one item (and its copies) at a time, so an
 * output that is not read stops the tee: no reader gets more than the
 * slowest output's capacity + 1 items ahead of the slowest reader, and in
 * is not drained further. An item is first offered to every output without
 * blocking, then the tee blocks on the outputs still missing it.
 *
 * An output closed by its reader is dropped from the tee (its branch gets
 * nothing more); once every output is closed the tee stops with SL_ECLOSED.
 * When in is closed and drained the tee closes every output and its result
 * is 0. If a copy fails the tee stops with SL_ENOMEM. Items the tee holds
 * when it stops are freed with free_item (may be NULL: not freed).
 *
 * outs is copied; the channels are borrowed. Returns 0, SL_EINVAL (n == 0,
 * a NULL channel, or n > 1 without copy), SL_ENOMEM, SL_EAGAIN (no thread).
 * Thread: any.
 */
int sl_tee_start(sl_ctx *ctx, sl_chan *in, sl_chan *const *outs, size_t n,
                 sl_copy_fn copy, sl_free_fn free_item, void *arg,
                 sl_tee **out);
/* Hard stop (see the life cycle above). Thread: any. */
void sl_tee_stop(sl_tee *t);
/* Join; 0, SL_ECLOSED, SL_ENOMEM or the context's error. Thread: owner. */
int sl_tee_wait(sl_tee *t);
/* Stop, join and free. NULL: no-op. Thread: owner. */
void sl_tee_destroy(sl_tee *t);

/* ------------------------------------------------------------------ */
/* merge                                                               */
/* ------------------------------------------------------------------ */

typedef struct sl_merge sl_merge;

/*
 * Start a merge (fan-in): every item of ins[0..n) is sent to out exactly
 * once; items from one input keep their order, items from different inputs
 * interleave as they come. out is closed once every input is closed and
 * drained (result 0), or when the merge stops: ctx done (its error), out
 * closed by its reader (SL_ECLOSED, and the other inputs are no longer
 * read).
 *
 * One forwarding thread per input: channels offer no wait on several
 * channels at once, and a thread that waited on one input while another
 * had items would stall that other stream. Each forwarder moves items in
 * batches of up to 32, so the merge holds at most 32 items per input.
 *
 * ins is copied; the channels are borrowed and should be distinct. Returns
 * 0, SL_EINVAL (n == 0 or a NULL channel), SL_ENOMEM, SL_EAGAIN (no
 * thread; then none was started). Thread: any.
 */
int sl_merge_start(sl_ctx *ctx, sl_chan *const *ins, size_t n, sl_chan *out,
                   sl_merge **out_merge);
/* Inputs still being forwarded (n at start, 0 once finished). Thread: any. */
size_t sl_merge_active(const sl_merge *m);
/* Hard stop (see the life cycle above). Thread: any. */
void sl_merge_stop(sl_merge *m);
/* Join; 0, SL_ECLOSED or the context's error. Thread: owner. */
int sl_merge_wait(sl_merge *m);
/* Stop, join and free. NULL: no-op. Thread: owner. */
void sl_merge_destroy(sl_merge *m);

/* ------------------------------------------------------------------ */
/* bridge                                                              */
/* ------------------------------------------------------------------ */

/* Called once the bridge is done with a sub-channel (see below). */
typedef void (*sl_chan_release_fn)(sl_chan *sub, void *arg);

typedef struct sl_bridge sl_bridge;

/*
 * Start a bridge: subs is a channel whose items are sl_chan pointers. The
 * bridge's thread receives one sub-channel, forwards all its items to out
 * until it is closed and drained, then takes the next: out carries every
 * sub-channel's items, sub-channel after sub-channel, in the order the
 * sub-channels were sent. (Producers can fill later sub-channels
 * concurrently; their items wait in those channels, bounded by their
 * capacity.) When subs is closed and drained, out is closed: result 0.
 *
 * A NULL item in subs stands for an empty stream and is skipped.
 *
 * After the bridge has finished with a sub-channel — closed and drained,
 * or abandoned because the bridge stopped — it calls release(sub, arg)
 * (release may be NULL). Release is where the bridge's claim on the
 * sub-channel ends: destroy it there only if its producer can no longer
 * touch it (e.g. the producer and the bridge share a reference count).
 * Sub-channels still queued in subs when the bridge stops are not
 * released: they stay in subs.
 *
 * The bridge holds at most 32 items. Returns 0, SL_EINVAL (NULL channel),
 * SL_ENOMEM, SL_EAGAIN (no thread). Thread: any.
 */
int sl_bridge_start(sl_ctx *ctx, sl_chan *subs, sl_chan *out,
                    sl_chan_release_fn release, void *arg,
                    sl_bridge **out_bridge);
/* Hard stop (see the life cycle above). Thread: any. */
void sl_bridge_stop(sl_bridge *b);
/* Join; 0, SL_ECLOSED (out closed by its reader) or the context's error.
 * Thread: owner. */
int sl_bridge_wait(sl_bridge *b);
/* Stop, join and free. NULL: no-op. Thread: owner. */
void sl_bridge_destroy(sl_bridge *b);

/* ------------------------------------------------------------------ */
/* queue                                                               */
/* ------------------------------------------------------------------ */

/*
 * An unbounded FIFO of pointers. Push never blocks, so nothing slows the
 * producer down: memory grows with the backlog. Use it only where a design
 * needs a producer that must never wait (e.g. a callback on a thread that
 * may not block) and the backlog is bounded some other way; everywhere else
 * use a channel and its backpressure. Its size and high-water mark are
 * there to be exported as metrics, so a growing queue is visible.
 */
typedef struct sl_queue sl_queue;

typedef struct sl_queue_stats {
    uint64_t pushed;   /* items pushed successfully */
    uint64_t popped;   /* items popped */
    size_t len;        /* items queued now */
    size_t max_len;    /* high-water mark of len */
    size_t waiting;    /* poppers blocked in sl_queue_pop now */
} sl_queue_stats;

/* A new empty queue; free_item frees items left in it at destroy and items
 * refused by push (may be NULL). Returns 0 or SL_ENOMEM. Thread: any. */
int sl_queue_create(sl_free_fn free_item, sl_queue **out);

/* Free the queue and the items still in it. No thread may be using it.
 * NULL: no-op. Thread: owner. */
void sl_queue_destroy(sl_queue *q);

/* Append item (takes ownership, also on failure: then it is freed).
 * Never blocks. Returns 0, SL_ECLOSED, or SL_ENOMEM. Thread: any. */
int sl_queue_push(sl_queue *q, void *item);

/* Remove the oldest item into *out, blocking while the queue is empty.
 * Returns 0, SL_ECLOSED once closed and drained, or ctx's error (ctx may
 * be NULL). Thread: any. */
int sl_queue_pop(sl_queue *q, sl_ctx *ctx, void **out);

/* As pop, but SL_EAGAIN instead of blocking. Thread: any. */
int sl_queue_try_pop(sl_queue *q, void **out);

/* No more pushes; poppers drain what is queued, then get SL_ECLOSED.
 * Idempotent. Thread: any. */
void sl_queue_close(sl_queue *q);
/* true once closed. Thread: any. */
bool sl_queue_is_closed(const sl_queue *q);

/* Items queued now (a snapshot). Thread: any. */
size_t sl_queue_len(const sl_queue *q);
/* A snapshot of the counters. Thread: any. */
void sl_queue_stats_get(const sl_queue *q, sl_queue_stats *out);

/* ------------------------------------------------------------------ */
/* heartbeat and watchdog                                              */
/* ------------------------------------------------------------------ */

/*
 * A heartbeat: the time of its owner's last pulse. Embed it in whatever it
 * watches. The owner pulses while it makes progress and pauses it before
 * a wait that is not its fault (an empty input, a full output): a paused
 * heartbeat is never reported, and the next pulse resumes it.
 */
typedef struct sl_heartbeat {
    const sl_clock *clock;      /* immutable after init; NULL = real clock */
    _Atomic int64_t last_ns;    /* atomic: time of the last pulse */
    _Atomic uint64_t beats;     /* atomic: number of pulses so far */
    _Atomic bool paused;        /* atomic: true between pause and pulse */
} sl_heartbeat;

/* Initialise with one pulse at the clock's current time (clock NULL =
 * sl_clock_real()). Thread: owner, before sharing hb. */
void sl_heartbeat_init(sl_heartbeat *hb, const sl_clock *clock);
/* Record progress now; also ends a pause. Lock-free. Thread: any. */
void sl_heartbeat_pulse(sl_heartbeat *hb);
/* Stop counting silence until the next pulse. Thread: any. */
void sl_heartbeat_pause(sl_heartbeat *hb);
/* Time of the last pulse. Thread: any. */
int64_t sl_heartbeat_last(const sl_heartbeat *hb);

typedef struct sl_watchdog sl_watchdog;

/* Told that heartbeat name has been silent for silent_ns (> the timeout). */
typedef void (*sl_watchdog_fn)(const char *name, int64_t silent_ns,
                               void *arg);

/*
 * A watchdog reporting, through on_stuck(name, silent_ns, arg), every
 * registered heartbeat silent for longer than timeout_ns. Returns 0,
 * SL_EINVAL (timeout_ns <= 0 or on_stuck NULL) or SL_ENOMEM. Thread: any.
 */
int sl_watchdog_create(int64_t timeout_ns, sl_watchdog_fn on_stuck,
                       void *arg, sl_watchdog **out);

/* Stop the background thread if running, free the watchdog and its
 * registrations (not the heartbeats). NULL: no-op. Thread: owner. */
void sl_watchdog_destroy(sl_watchdog *wd);

/* Watch hb under name (copied). hb is borrowed until sl_watchdog_remove.
 * Returns 0, SL_EINVAL, SL_EEXISTS (hb already watched), SL_ENOMEM.
 * Thread: any. */
int sl_watchdog_add(sl_watchdog *wd, const char *name, sl_heartbeat *hb);

/* Stop watching hb; once it returns, the watchdog never touches hb again.
 * Returns 0 or SL_ENOTFOUND. Thread: any (also from on_stuck). */
int sl_watchdog_remove(sl_watchdog *wd, const sl_heartbeat *hb);

/*
 * Check every heartbeat against now_ns (on the heartbeats' clock): each
 * one silent for longer than the timeout, and not paused, is reported once
 * — not again until it has pulsed. on_stuck is called on this thread with
 * no lock held that add/remove need. Deterministic: tests pass a fake
 * clock's time. Returns the number of reports made. Checks are serialised.
 * Thread: any.
 */
size_t sl_watchdog_check(sl_watchdog *wd, int64_t now_ns);

/*
 * Start a background thread that calls sl_watchdog_check(wd, real time)
 * every interval_ns until stopped or ctx (may be NULL) is done; its sleeps
 * end at once on either. The heartbeats should then use the real clock.
 * on_stuck runs on that thread and must not call stop or destroy.
 * Returns 0, SL_EINVAL (interval_ns <= 0), SL_EEXISTS (already running),
 * SL_ENOMEM, SL_EAGAIN (no thread). Thread: owner.
 */
int sl_watchdog_start(sl_watchdog *wd, sl_ctx *ctx, int64_t interval_ns);

/* Stop and join the background thread; no-op if not running.
 * Thread: owner. */
void sl_watchdog_stop(sl_watchdog *wd);

/* ------------------------------------------------------------------ */
/* worker pool                                                         */
/* ------------------------------------------------------------------ */

/*
 * Process one item (given away to fn) into *result (NULL: nothing to send
 * for it). Return 0, or a negative SL_E* code to stop the whole pool with
 * that error (per-item errors a stage can survive are for fn to handle);
 * on error a result left in *result is freed with free_result.
 * ctx is the pool's context: long work should honour it. Runs on a worker
 * thread, concurrently with other calls.
 */
typedef int (*sl_pool_fn)(void *item, void **result, sl_ctx *ctx, void *arg);

typedef struct sl_pool_config {
    size_t workers;          /* number of worker threads, >= 1 */
    bool ordered;            /* results in input order (reorder buffer) */
    size_t window;           /* ordered: reorder slots, 0 = 16 * workers */
    sl_pool_fn fn;           /* the work, required */
    void *arg;               /* passed to fn */
    sl_free_fn free_result;  /* frees results dropped by a stop; may be NULL */
    sl_free_fn free_item;    /* frees items taken from in but never given
                                to fn because of a stop; may be NULL */
} sl_pool_config;

typedef struct sl_pool sl_pool;

/*
 * Start a worker pool: cfg.workers threads receive items from in, run
 * cfg.fn on each and send the non-NULL results to out.
 *
 * Graceful stop: close in. The workers finish every item already queued,
 * the last one out closes out, and sl_pool_wait returns 0. Hard stop: ctx
 * done or sl_pool_stop; results not yet sent are freed with free_result.
 * A fn error, or out closed by its reader (SL_ECLOSED), stops the pool the
 * hard way with that error.
 *
 * Unordered (default): results go out as they are ready.
 * Ordered: results go out in input order. Items are numbered as they are
 * received; a result that is ready early waits in a reorder buffer of
 * window slots. Workers take no item numbered window or more places past
 * the next result to send: they block until there is room, so the pool
 * never holds more than window items or results, and in is not drained
 * beyond that. Workers take items in small batches (a share of the free
 * room, at most 16), which keeps the cost of numbering low; a hard stop
 * frees the items of a batch not yet processed with free_item.
 *
 * cfg is copied. Returns 0, SL_EINVAL (workers == 0 or fn NULL),
 * SL_ENOMEM, SL_EAGAIN (no thread; then none was started). Thread: any.
 */
int sl_pool_start(sl_ctx *ctx, const sl_pool_config *cfg, sl_chan *in,
                  sl_chan *out, sl_pool **out_pool);
/* Hard stop (see the life cycle above). Thread: any. */
void sl_pool_stop(sl_pool *p);
/* Join; 0, fn's error, SL_ECLOSED or the context's error. Thread: owner. */
int sl_pool_wait(sl_pool *p);
/* Stop, join and free. NULL: no-op. Thread: owner. */
void sl_pool_destroy(sl_pool *p);

/* ------------------------------------------------------------------ */
/* error group                                                         */
/* ------------------------------------------------------------------ */

/* A task: return 0 or a negative SL_E* code. ctx is the group's context. */
typedef int (*sl_task_fn)(sl_ctx *ctx, void *arg);

typedef struct sl_errgroup sl_errgroup;

/*
 * A group of tasks, each on its own thread, under a child of parent (NULL:
 * a new root). The first task to fail cancels the group's context with its
 * error code and cause, so siblings blocked on it wake up. limit > 0 caps
 * the number of tasks running at once (0: no limit). Returns 0 or
 * SL_ENOMEM. Thread: any.
 */
int sl_errgroup_create(sl_ctx *parent, size_t limit, sl_errgroup **out);

/* The group's context: done on the first error, when parent is done, or
 * once sl_errgroup_wait returns. Borrowed, lives as long as g.
 * Thread: any. */
sl_ctx *sl_errgroup_ctx(const sl_errgroup *g);

/*
 * Run fn(group ctx, arg) on a new thread. While limit tasks are running it
 * blocks until one finishes. If the group's context is done (before or
 * while waiting) it returns that error instead and fn never runs. A task
 * returning an error records it as the group's error if it is the first,
 * and cancels the group's context with that code and the cause
 * sl_strerror(code). Returns 0, the context's error, or SL_EAGAIN (no
 * thread). On failure arg stays with the caller. A task may call go on
 * its own group, but with a limit it then holds a slot while waiting for
 * one. Thread: any.
 */
int sl_errgroup_go(sl_errgroup *g, sl_task_fn fn, void *arg);

/*
 * Fail the group with code (negative) and a cause such as "stage parse:
 * bad JSON at line 12", for a task that wants its context's cause to say
 * more than sl_strerror: call it, then return code. Only the first error
 * of the group counts. Thread: any.
 */
void sl_errgroup_fail(sl_errgroup *g, int code, const char *cause_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Wait for every task started so far, then cancel the group's context
 * (if not already done) and return the group's first error, or 0. After
 * it, go() fails with the context's error; calling wait again returns the
 * same result. Thread: owner (not from a task of the group).
 */
int sl_errgroup_wait(sl_errgroup *g);

/* Wait, then free. NULL: no-op. Thread: owner. */
void sl_errgroup_destroy(sl_errgroup *g);

#ifdef __cplusplus
}
#endif
#endif
