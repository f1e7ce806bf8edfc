/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Context introspection for tests and diagnostics.
 *
 * Thread: any.
 */
#ifndef SLUICE_ENGINE_CONTEXT_INTERNAL_H
#define SLUICE_ENGINE_CONTEXT_INTERNAL_H

#include <stddef.h>

#include "sluice/context.h"

/* Waiters registered on ctx now (e.g. a thread blocked in sl_ctx_wait). */
size_t sl__ctx_waiter_count(const sl_ctx *ctx);

/* Children attached to ctx now (running children not yet destroyed). */
size_t sl__ctx_child_count(const sl_ctx *ctx);

/* ctx's reference count now. */
long sl__ctx_refcount(const sl_ctx *ctx);

#endif
