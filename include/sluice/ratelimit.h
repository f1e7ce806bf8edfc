/*
 * Rate limiting: token buckets, alone or one per key.
 *
 * A bucket holds at most `burst` tokens and gains `rate` tokens per second.
 * Taking n tokens succeeds when n are there; a bucket starts full. Time is
 * read through an sl_clock, so with sl_fake_clock every result below is
 * exact and every wait is instant.
 *
 * sl_limiter: one bucket shared by any number of threads (e.g. the workers
 * of a stage).
 * sl_keyed_limiter: one bucket per key (client address, API key) in a map
 * whose memory stays bounded however many keys appear: buckets left unused
 * longer than a TTL are evicted, and beyond a maximum count the least
 * recently used bucket goes.
 *
 * Thread: any, unless noted.
 */
#ifndef SLUICE_RATELIMIT_H
#define SLUICE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "context.h"

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* One bucket                                                          */
/* ------------------------------------------------------------------ */

typedef struct sl_limiter sl_limiter;

/*
 * Create a full bucket of `burst` tokens refilled at `rate` tokens per
 * second. rate must be finite and > 0, burst >= 1, else SL_EINVAL; SL_ENOMEM
 * on allocation failure. clock is borrowed and must outlive the limiter;
 * NULL means sl_clock_real(). On failure *out is untouched.
 * Thread: any.
 */
int sl_limiter_create(double rate, int64_t burst, const sl_clock *clock,
                      sl_limiter **out);

/* Free the limiter. No thread may still be using it. NULL: no-op.
 * Thread: owner. */
void sl_limiter_destroy(sl_limiter *l);

/*
 * Take n tokens if they are there now: true if taken, false (nothing
 * taken) otherwise — including when n < 1 or n > burst, which can never
 * succeed. Never blocks.
 * Thread: any.
 */
bool sl_limiter_try(sl_limiter *l, int64_t n);

/*
 * Reserve n tokens now, letting the bucket go into debt, and set *wait_ns
 * to how long the caller must wait before acting on them (0: at once). The
 * wait is the time the bucket needs to hold n tokens, so later takers queue
 * behind this reservation. The reservation cannot be undone. Returns 0, or
 * SL_EINVAL when n < 1 or n > burst (nothing reserved, *wait_ns untouched).
 * Thread: any.
 */
int sl_limiter_reserve(sl_limiter *l, int64_t n, int64_t *wait_ns);

/*
 * Take n tokens, sleeping on the limiter's clock (its sleep_ns, so a fake
 * clock makes this instant) until they are there. ctx (may be NULL) ends
 * the wait early: a context that is or becomes done makes this return its
 * error (SL_ECANCELED / SL_EDEADLINE) without taking any token. Returns 0
 * once taken, or SL_EINVAL when n < 1 or n > burst.
 * Takers are not served in strict arrival order.
 * Thread: any.
 */
int sl_limiter_wait(sl_limiter *l, sl_ctx *ctx, int64_t n);

/* Tokens in the bucket now (negative while reservations are in debt).
 * Thread: any. */
double sl_limiter_tokens(sl_limiter *l);

/* The rate and burst given at creation. Thread: any. */
double sl_limiter_rate(const sl_limiter *l);
int64_t sl_limiter_burst(const sl_limiter *l);

/* ------------------------------------------------------------------ */
/* One bucket per key                                                  */
/* ------------------------------------------------------------------ */

typedef struct sl_keyed_limiter sl_keyed_limiter;

typedef struct sl_keyed_limiter_config {
    double rate;            /* tokens per second, per key; finite, > 0 */
    int64_t burst;          /* bucket size, per key; >= 1 */
    int64_t idle_ttl_ns;    /* evict buckets unused longer than this; 0 = the
                               time an empty bucket takes to fill (eviction
                               then never forgets a debt); < 0 invalid */
    size_t max_keys;        /* most buckets kept; 0 = 65536 */
    const sl_clock *clock;  /* borrowed; NULL = sl_clock_real() */
} sl_keyed_limiter_config;

/*
 * Create an empty per-key limiter from cfg (copied). Returns 0, SL_EINVAL
 * for a bad rate, burst or TTL, or SL_ENOMEM. On failure *out is untouched.
 * Thread: any.
 */
int sl_keyed_limiter_create(const sl_keyed_limiter_config *cfg,
                            sl_keyed_limiter **out);

/* Free the map and every bucket. NULL: no-op. Thread: owner. */
void sl_keyed_limiter_destroy(sl_keyed_limiter *kl);

/*
 * Take n tokens from key's bucket (key is key_len bytes, copied when a
 * bucket is created; a new key gets a full bucket). Returns 0 when taken;
 * SL_ELIMIT when the bucket is short, with *retry_after_ns (may be NULL)
 * set to how long until it holds n tokens; SL_EINVAL when n < 1 or
 * n > burst; SL_ENOMEM when a new bucket cannot be allocated. Expired
 * buckets are evicted as a side effect; when the map is full, the least
 * recently used bucket is evicted to make room (that key starts afresh
 * with a full bucket if it returns).
 * Thread: any.
 */
int sl_keyed_limiter_try(sl_keyed_limiter *kl, const void *key,
                         size_t key_len, int64_t n, int64_t *retry_after_ns);

/*
 * Evict every bucket unused longer than the TTL. Returns how many went.
 * try() already does this as it goes; call this from a timer to release
 * memory when traffic stops.
 * Thread: any.
 */
size_t sl_keyed_limiter_sweep(sl_keyed_limiter *kl);

/* Buckets held now. Thread: any. */
size_t sl_keyed_limiter_count(sl_keyed_limiter *kl);

/* Buckets evicted since creation (by TTL or by the count cap).
 * Thread: any. */
uint64_t sl_keyed_limiter_evictions(sl_keyed_limiter *kl);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
