/*
 * sample: keep a fraction of the records, drop the rest.
 *
 * `rate: 0.1` keeps each record with probability 0.1, drawn from a
 * generator seeded by `seed` (and the worker's index), so a given seed and
 * input keep the same records on every run. `every: 10` keeps records 1,
 * 11, 21, ... exactly. Dropped records count in the stage's `dropped`.
 */
#include <stddef.h>
#include <stdint.h>

#include "sluice/plugin.h"

typedef struct sample_state {
    double rate;        /* option: fraction kept; 0 = not given */
    int64_t every;      /* option: keep 1 in N; 0 = not given */
    int64_t seed;       /* option: generator seed */
    uint64_t rng;       /* splitmix64 state */
    int64_t seen;       /* records seen by this worker */
} sample_state;

static const sl_option sample_options[] = {
    {SL_OPT_DOUBLE, "rate", NULL, 0,
     offsetof(sample_state, rate), 0, 1, NULL,
     "fraction of records to keep, chosen at random (0 < rate <= 1)"},
    {SL_OPT_INT, "every", NULL, 0,
     offsetof(sample_state, every), 1, 9e15, NULL,
     "keep exactly one record in N: the 1st, the (N+1)th, ... (instead of rate)"},
    {SL_OPT_INT, "seed", "1", 0,
     offsetof(sample_state, seed), 0, 0, NULL,
     "random seed for rate: the same seed keeps the same records"},
    SL_OPTIONS_END,
};

/* splitmix64: any state is a valid seed. */
static uint64_t sample_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Exactly one of rate and every; seed the generator per worker. */
static int sample_init(void *state, sl_stage_ctx *sc)
{
    sample_state *st = state;
    if (st->rate > 0 && st->every > 0)
        return sl_stage_error(sc, SL_ECONFIG, "give either rate or every, not both");
    if (!(st->rate > 0) && st->every == 0)
        return sl_stage_error(sc, SL_ECONFIG,
                              "needs rate (0 < rate <= 1) or every (>= 1)");
    st->rng = (uint64_t)st->seed ^
              ((uint64_t)sl_stage_worker_index(sc) * UINT64_C(0xd1b54a32d192ed03));
    return 0;
}

static int sample_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    sample_state *st = state;
    bool keep;
    if (st->every > 0) {
        keep = st->seen % st->every == 0;
    } else {
        double u = (double)(sample_next(&st->rng) >> 11) * 0x1p-53;  /* [0, 1) */
        keep = u < st->rate;
    }
    st->seen++;
    if (keep)
        sl_emit(sc, rec);   /* on failure the run is ending; rec is gone */
    else
        sl_record_drop(sc, rec);
    return 0;
}

const sl_stage_desc sl_stage_sample = {
    SL_STAGE_DESC_HEADER,
    .name = "sample",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "keep a random fraction of records, or one in every N",
    .options = sample_options,
    .state_size = sizeof(sample_state),
    .init = sample_init,
    .process = sample_process,
};
