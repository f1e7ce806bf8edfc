/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Value helpers the engine shares between its files (engine/value.c).
 *
 * Thread: as for values (read from any thread, written by the sole holder).
 */
#ifndef SLUICE_ENGINE_VALUE_INTERNAL_H
#define SLUICE_ENGINE_VALUE_INTERNAL_H

#include <stddef.h>

#include "sluice/value.h"

/* About the bytes v would take as compact JSON, without serialising it
 * (exact for strings that need no escapes, 8 bytes per number). NULL
 * counts as null. Used for record sizes in metrics. */
size_t sl__value_size(const sl_value *v);

#endif
