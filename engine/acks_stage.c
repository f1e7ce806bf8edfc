/*
 * The stage API of delivery (include/sluice/stage.h "Delivery"): what
 * sources and exactly-once stores ask of the acknowledgement tracker
 * (engine/acks.c) through their stage context. Without settings.state
 * (and in the stage harness) a stage context has no tracker and every
 * call here is a no-op that says so.
 */
#include "engine/acks.h"
#include "engine/stage_ctx.h"
#include "sluice/error.h"
#include "sluice/stage.h"

int sl_stage_resume_point(sl_stage_ctx *sc, sl_resume *out)
{
    if (sc == NULL || out == NULL)
        return SL_EINVAL;
    if (sc->ack_source == NULL)
        return SL_ENOTFOUND;
    sl_resume r;
    int rc = sl__acks_resume_point(sc->ack_source, &r.locator, &r.offset,
                                   &r.seq, &r.file_dev, &r.file_ino);
    if (rc == 0)
        *out = r;
    return rc;
}

void sl_stage_resume_reset(sl_stage_ctx *sc)
{
    if (sc != NULL && sc->ack_source != NULL)
        sl__acks_resume_reset(sc->ack_source);
}

int sl_stage_source_file(sl_stage_ctx *sc, const char *path, uint64_t dev,
                         uint64_t ino)
{
    if (sc == NULL || path == NULL)
        return SL_EINVAL;
    if (sc->ack_source == NULL)
        return 0;
    return sl__acks_source_file(sc->ack_source, path, dev, ino);
}

const char *sl_stage_state_path(const sl_stage_ctx *sc)
{
    return sc != NULL && sc->acks != NULL ? sl__acks_path(sc->acks) : NULL;
}

size_t sl_stage_acks_ready(sl_stage_ctx *sc, sl_record *const *recs,
                           size_t n)
{
    if (sc == NULL || recs == NULL || sc->acks == NULL || sc->ack_sink < 0)
        return n;
    return sl__acks_ready(sc->acks, sc->ack_sink, recs, n);
}

int sl_stage_acks_prepare(sl_stage_ctx *sc, void *sqlite_db,
                          sl_record *const *recs, size_t n)
{
    if (sc == NULL || sqlite_db == NULL || (recs == NULL && n > 0))
        return SL_EINVAL;
    if (sc->acks == NULL || sc->ack_sink < 0)
        return 0;
    return sl__acks_prepare(sc->acks, sc->ack_sink, sqlite_db, recs, n);
}

void sl_stage_acks_finish(sl_stage_ctx *sc, sl_record *const *recs, size_t n,
                          bool committed)
{
    if (sc == NULL || sc->acks == NULL || sc->ack_sink < 0)
        return;
    sl__acks_finish_txn(sc->acks, sc->ack_sink, recs, n, committed);
}
