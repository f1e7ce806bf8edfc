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

#include "sluice/record.h"

/*
 * sl_record_size(r) when it is known without walking the fields — the
 * record has no fields (then its payload length), or their size is cached
 * — in *out, returning true; false otherwise. For byte counts on the hot
 * path (metrics).
 */
bool sl__record_size_known(const sl_record *r, size_t *out);

#endif
