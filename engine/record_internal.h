/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Record helpers the engine shares between its files (engine/record.c).
 *
 * Thread: as for records (the sole holder).
 */
#ifndef SLUICE_ENGINE_RECORD_INTERNAL_H
#define SLUICE_ENGINE_RECORD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/acks.h"
#include "sluice/record.h"

/*
 * sl_record_size(r) when it is known without walking the fields — the
 * record has no fields (then its payload length), or their size is cached
 * — in *out, returning true; false otherwise. For byte counts on the hot
 * path (metrics).
 */
bool sl__record_size_known(const sl_record *r, size_t *out);

/*
 * Acknowledgement references a record carries (engine/acks.h). A record
 * holds none until a source's slot or an input's references are given to
 * it; freeing it releases them; a copy holds its own.
 */
/* How many, and the i-th (0 <= i < count), borrowed. */
size_t sl__record_ack_count(const sl_record *r);
sl__ackref *sl__record_ack_at(sl_record *r, size_t i);

/* Add a (its reference passes to r). A zero mask is ignored. 0, or
 * SL_ENOMEM (a is released). */
int sl__record_ack_add(sl_record *r, sl__ackref a);

/* Take a reference to each of src's for dst (a record emitted while src
 * was processed). 0 or SL_ENOMEM (dst unchanged). */
int sl__record_ack_inherit(sl_record *dst, const sl_record *src);

/* Keep only the sinks in keep: release the rest, drop emptied references. */
void sl__record_ack_narrow(sl_record *r, uint32_t keep);

/*
 * Start fetching what a consumer is about to read of r: its fields (the
 * first SL__PREFETCH_BYTES of them; a parsed record is one allocation).
 * Records arrive from another core, so their first touch is a cache miss
 * that a loop over a batch can overlap with the work on the record before.
 * The record itself must be in cache already (sl__record_prefetch_head).
 */
void sl__record_prefetch_fields(const sl_record *r);
/* Start fetching r itself (its first cache line). */
static inline void sl__record_prefetch_head(const sl_record *r)
{
    __builtin_prefetch(r, 0, 3);
}

#endif
