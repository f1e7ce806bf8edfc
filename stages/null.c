/*
 * `null`: a sink that counts records as stored and discards them — for
 * benchmarks and for pipelines whose point is their metrics.
 */
#include "sluice/plugin.h"

static int null_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    sl_record_stored(sc, rec);
    return 0;
}

const sl_stage_desc sl_stage_null = {
    SL_STAGE_DESC_HEADER,
    .name = "null",
    .kind = SL_STAGE_SINK,
    .summary = "discard every record (counted as stored)",
    .options = NULL,
    .state_size = 0,
    .process = null_process,
};
