/*
 * rate_limit: pass records on at most `rate` per second.
 *
 * A token bucket of `burst` tokens; each record takes one, waiting for it
 * when the bucket is empty. Waiting inside process() stops this stage from
 * reading its input, so the pressure reaches the stages upstream through
 * the full channel between them. With `workers: N`, each worker limits to
 * rate/N (and its share of the burst), so together they keep to the rate.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/plugin.h"
#include "sluice/ratelimit.h"

typedef struct rate_limit_state {
    double rate;            /* option: records per second, all workers together */
    int64_t burst;          /* option: bucket size; 0 = not given */
    sl_limiter *limiter;    /* this worker's bucket */
} rate_limit_state;

static const sl_option rate_limit_options[] = {
    {SL_OPT_RATE, "rate", NULL, SL_OPT_REQUIRED,
     offsetof(rate_limit_state, rate), 1e-9, 1e9, NULL,
     "records per second to let through, e.g. 100/s or 6000/m"},
    {SL_OPT_INT, "burst", NULL, 0,
     offsetof(rate_limit_state, burst), 1, 1e9, NULL,
     "records that may pass at once after a pause (default: one second's worth, at least 1)"},
    SL_OPTIONS_END,
};

/*
 * Set up this worker's share of the bucket: rate/N, and burst split so the
 * workers' shares add up to the whole (each at least 1).
 */
static int rate_limit_init(void *state, sl_stage_ctx *sc)
{
    rate_limit_state *st = state;
    int64_t burst = st->burst;
    if (burst == 0) {
        double one_second = ceil(st->rate);
        burst = one_second < 1 ? 1 : (int64_t)one_second;
    }
    int n = sl_stage_worker_count(sc);
    int i = sl_stage_worker_index(sc);
    if (n < 1)
        n = 1;
    int64_t share = burst / n + (i < burst % n ? 1 : 0);
    if (share < 1)
        share = 1;
    int rc = sl_limiter_create(st->rate / n, share, sl_stage_clock(sc),
                               &st->limiter);
    if (rc != 0)
        return sl_stage_error(sc, rc, "cannot create a limiter for rate %g/s",
                              st->rate);
    return 0;
}

/*
 * Wait for a token, then emit. A cancelled run ends the wait; the record is
 * then left with the engine.
 */
static int rate_limit_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    rate_limit_state *st = state;
    int rc = sl_limiter_wait(st->limiter, sl_stage_context(sc), 1);
    if (rc != 0)
        return sl_stage_error(sc, rc, "stopped while waiting for the rate limit");
    sl_emit(sc, rec);   /* on failure the run is ending; rec is gone either way */
    return 0;
}

static void rate_limit_destroy(void *state)
{
    rate_limit_state *st = state;
    sl_limiter_destroy(st->limiter);
    st->limiter = NULL;
}

const sl_stage_desc sl_stage_rate_limit = {
    SL_STAGE_DESC_HEADER,
    .name = "rate_limit",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "pass records on at most at a given rate, holding back upstream",
    .options = rate_limit_options,
    .state_size = sizeof(rate_limit_state),
    .init = rate_limit_init,
    .process = rate_limit_process,
    .destroy = rate_limit_destroy,
};
