/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Channel introspection for tests and diagnostics.
 *
 * Thread: any.
 */
#ifndef SLUICE_ENGINE_CHANNEL_INTERNAL_H
#define SLUICE_ENGINE_CHANNEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/channel.h"

/* How many senders (senders=true) or receivers are blocked in ch now. A
 * test waits for this to reach 1 before cancelling, instead of sleeping. */
size_t sl__chan_blocked(const sl_chan *ch, bool senders);

#endif
