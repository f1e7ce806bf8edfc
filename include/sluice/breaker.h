/*
 * Circuit breaker: stop calling something that keeps failing, and try it
 * again, carefully, after a cooldown.
 *
 *   closed     every call is allowed; `failures` consecutive failures open
 *              the breaker (a success resets the count)
 *   open       every call is refused with SL_EBREAKER until `cooldown` has
 *              passed since it opened; then it is half-open
 *   half-open  one call at a time is allowed through as a probe: its
 *              success closes the breaker, its failure opens it again for
 *              another cooldown; other calls are refused meanwhile
 *
 * Usage per call:  if (sl_breaker_allow(b) == 0) { ok = call(); sl_breaker_record(b, ok); }
 * Every allowed call should be followed by exactly one record. Results
 * recorded while open are ignored (they belong to calls made before it
 * opened); while half-open, the first result recorded after the probe was
 * let through is taken as the probe's.
 *
 * Time is read through an injectable sl_clock. Thread: any, unless noted.
 */
#ifndef SLUICE_BREAKER_H
#define SLUICE_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_breaker sl_breaker;

typedef enum sl_breaker_state {
    SL_BREAKER_CLOSED = 0,
    SL_BREAKER_OPEN,
    SL_BREAKER_HALF_OPEN,
} sl_breaker_state;

/*
 * Told of each state change, after the breaker's lock is released, on the
 * thread whose call caused it. It may call back into the breaker. When
 * several threads change the state at about the same time, their reports
 * may arrive in either order; each names both states.
 */
typedef void (*sl_breaker_change_fn)(void *arg, sl_breaker_state from,
                                     sl_breaker_state to);

typedef struct sl_breaker_config {
    uint32_t failures;               /* consecutive failures that open; >= 1 */
    int64_t cooldown_ns;             /* time open before a probe; >= 0 */
    const sl_clock *clock;           /* borrowed; NULL = sl_clock_real() */
    sl_breaker_change_fn on_change;  /* may be NULL */
    void *on_change_arg;             /* passed to on_change */
} sl_breaker_config;

/*
 * Create a closed breaker from cfg (copied). Returns 0, SL_EINVAL when
 * failures is 0 or cooldown_ns < 0, or SL_ENOMEM. On failure *out is
 * untouched. Thread: any.
 */
int sl_breaker_create(const sl_breaker_config *cfg, sl_breaker **out);

/* Free it. No thread may still be using it. NULL: no-op. Thread: owner. */
void sl_breaker_destroy(sl_breaker *b);

/*
 * May a call go ahead? Returns 0 (go, then record the outcome) or
 * SL_EBREAKER (do not call; counted as a rejection). An open breaker whose
 * cooldown has passed turns half-open here and lets this call through as
 * the probe. Thread: any.
 */
int sl_breaker_allow(sl_breaker *b);

/* Report the outcome of an allowed call. Thread: any. */
void sl_breaker_record(sl_breaker *b, bool success);

/*
 * The state now. An open breaker whose cooldown has passed reports (and
 * becomes) half-open. Thread: any.
 */
sl_breaker_state sl_breaker_get_state(sl_breaker *b);

/* "closed", "open", "half_open"; "unknown" for anything else. Thread: any. */
const char *sl_breaker_state_name(sl_breaker_state s);

/*
 * Nanoseconds until an open breaker lets a probe through (0 when it is not
 * open or the cooldown has passed) — e.g. for a Retry-After. Thread: any.
 */
int64_t sl_breaker_retry_in(sl_breaker *b);

/* Times the breaker has opened (including reopenings after a failed
 * probe). Thread: any. */
uint64_t sl_breaker_opens(sl_breaker *b);

/* Calls refused with SL_EBREAKER. Thread: any. */
uint64_t sl_breaker_rejections(sl_breaker *b);

/* Consecutive failures counted while closed. Thread: any. */
uint32_t sl_breaker_failures(sl_breaker *b);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
