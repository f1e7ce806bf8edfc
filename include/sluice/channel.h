/*
 * Channels: bounded multi-producer multi-consumer queues of pointers.
 *
 * Send blocks while the channel is full (backpressure); receive blocks while
 * it is empty. Every blocking operation takes a context (may be NULL) and
 * returns its error as soon as it is done. Close wakes every receiver; they
 * drain what is queued and then get SL_ECLOSED. Sending on a closed channel
 * fails with SL_ECLOSED.
 *
 * Ownership: an item sent is given away on success and on failure — on
 * failure the channel frees it with the free_item function given at
 * creation (if any). sl_chan_destroy frees items still queued the same way.
 *
 * The channel counts how long senders were blocked on a full channel and
 * receivers idle on an empty one; those feed the stage metrics
 * blocked_send_s and idle_recv_s.
 *
 * Thread: any, unless noted.
 */
#ifndef SLUICE_CHANNEL_H
#define SLUICE_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "context.h"

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_chan sl_chan;
typedef void (*sl_free_fn)(void *item);

/* capacity >= 1. free_item may be NULL (items are then never freed). */
int sl_chan_create(size_t capacity, sl_free_fn free_item, sl_chan **out);

/* Free the channel and any items still queued. No thread may be using it.
 * NULL: no-op. Thread: owner. */
void sl_chan_destroy(sl_chan *ch);

/* Blocking send. 0, SL_ECLOSED, or ctx's error. Takes ownership of item. */
int sl_chan_send(sl_chan *ch, sl_ctx *ctx, void *item);

/* Blocking receive. 0 with *out set, SL_ECLOSED once closed and drained, or
 * ctx's error. */
int sl_chan_recv(sl_chan *ch, sl_ctx *ctx, void **out);

/* Non-blocking forms: SL_EAGAIN instead of blocking. try_send keeps
 * ownership with the caller when it returns SL_EAGAIN. */
int sl_chan_try_send(sl_chan *ch, void *item);
int sl_chan_try_recv(sl_chan *ch, void **out);

/*
 * Send all n items in order, blocking as needed, amortising synchronisation
 * over the batch. Takes ownership of all n items: on failure the ones not
 * sent are freed. Returns 0, SL_ECLOSED, or ctx's error.
 */
int sl_chan_send_batch(sl_chan *ch, sl_ctx *ctx, void **items, size_t n);

/*
 * Receive between 1 and max items (blocking until at least one is there).
 * Returns 0 with *got >= 1, SL_ECLOSED once closed and drained, or ctx's
 * error (with *got == 0).
 */
int sl_chan_recv_batch(sl_chan *ch, sl_ctx *ctx, void **out, size_t max,
                       size_t *got);

/* Close: no more sends. Idempotent. Wakes all blocked senders/receivers. */
void sl_chan_close(sl_chan *ch);
bool sl_chan_is_closed(const sl_chan *ch);

/* Current number of queued items (a snapshot) and the capacity. */
size_t sl_chan_len(const sl_chan *ch);
size_t sl_chan_cap(const sl_chan *ch);

typedef struct sl_chan_stats {
    uint64_t sent;            /* items successfully sent */
    uint64_t received;        /* items received */
    size_t depth;             /* items queued now */
    size_t capacity;          /* capacity */
    size_t max_depth;         /* high-water mark of depth */
    int64_t blocked_send_ns;  /* total time senders waited on a full channel */
    int64_t idle_recv_ns;     /* total time receivers waited on an empty one */
} sl_chan_stats;

/* A consistent-enough snapshot for metrics (counters are monotonic). */
void sl_chan_stats_get(const sl_chan *ch, sl_chan_stats *out);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
