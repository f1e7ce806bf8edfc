/*
 * Injectable clocks.
 *
 * Everything time-dependent (rate limiter, circuit breaker, backoff, metrics
 * rates) reads time through an sl_clock, so tests substitute a fake clock and
 * stay deterministic: a fake clock's sleep advances its own time instantly.
 *
 * Times are nanoseconds on a monotonic scale; only differences mean anything.
 */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stdint.h>

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

struct sl_ctx;

#define SL_NS_PER_US INT64_C(1000)
#define SL_NS_PER_MS INT64_C(1000000)
#define SL_NS_PER_S  INT64_C(1000000000)

typedef struct sl_clock {
    /* Current time in ns. Must be safe to call from any thread. */
    int64_t (*now_ns)(const struct sl_clock *self);
    /*
     * Sleep for ns, returning early with the context's error
     * (SL_ECANCELED / SL_EDEADLINE) if ctx (may be NULL) is done first.
     * Returns 0 after a full sleep.
     */
    int (*sleep_ns)(const struct sl_clock *self, struct sl_ctx *ctx, int64_t ns);
} sl_clock;

/* The process-wide real monotonic clock (CLOCK_MONOTONIC). Thread: any. */
const sl_clock *sl_clock_real(void);

/* Convenience wrappers; a NULL clock means sl_clock_real(). Thread: any. */
int64_t sl_clock_now(const sl_clock *c);
int sl_clock_sleep(const sl_clock *c, struct sl_ctx *ctx, int64_t ns);

/*
 * A manually driven clock for tests. sleep_ns advances the time by ns (and
 * still returns the context's error if ctx is already done). Embed it and
 * pass &fc.clock wherever an sl_clock is wanted.
 */
typedef struct sl_fake_clock {
    sl_clock clock;           /* must be first */
    _Atomic int64_t now;      /* atomic: current fake time, ns */
    _Atomic int64_t slept;    /* atomic: total ns requested by sleep_ns */
} sl_fake_clock;

/* Thread: owner. */
void sl_fake_clock_init(sl_fake_clock *fc, int64_t start_ns);
/* Thread: any. */
void sl_fake_clock_advance(sl_fake_clock *fc, int64_t ns);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
