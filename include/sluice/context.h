/*
 * Contexts: a tree of cancellation scopes, as in Go's context package.
 *
 * A context is done when it is cancelled, when its deadline passes, or when
 * any ancestor is done. Cancelling is idempotent: the first cancellation's
 * error code and cause win and are visible to every descendant. Blocked
 * channel operations (and anything else that registers an sl_ctx_waiter)
 * are woken at once on cancel — there is no polling loop.
 *
 * Lifetime: contexts are reference counted. sl_ctx_create* returns a context
 * holding one reference for the caller and one internal reference from its
 * parent's child list (dropped when the child is destroyed or done). Call
 * sl_ctx_destroy() when finished with it — like Go's `defer cancel()`, it
 * cancels the context (if not already done), detaches it from its parent
 * and drops the caller's reference. Code that hands a context to another
 * thread takes its own reference with sl_ctx_ref().
 *
 * Thread: any, unless noted.
 */
#ifndef SLUICE_CONTEXT_H
#define SLUICE_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_ctx sl_ctx;

/* A new root context (never done unless cancelled). */
int sl_ctx_create(sl_ctx **out);

/* A child of parent, done when cancelled or when parent is done. */
int sl_ctx_create_child(sl_ctx *parent, sl_ctx **out);

/*
 * A child that is cancelled with SL_EDEADLINE at deadline_ns (on
 * sl_clock_real()'s scale) or when parent is done, whichever comes first.
 * A deadline already past yields a context that is already done.
 */
int sl_ctx_create_deadline(sl_ctx *parent, int64_t deadline_ns, sl_ctx **out);

/* sl_ctx_create_deadline(parent, now + timeout_ns, out). */
int sl_ctx_create_timeout(sl_ctx *parent, int64_t timeout_ns, sl_ctx **out);

/*
 * A child carrying (key, value). Lookups walk up the tree; keys compare by
 * address. value is borrowed: it must outlive the context.
 */
int sl_ctx_create_value(sl_ctx *parent, const void *key, void *value,
                        sl_ctx **out);

/* Cancel, detach from the parent, drop the caller's reference. NULL: no-op. */
void sl_ctx_destroy(sl_ctx *ctx);

sl_ctx *sl_ctx_ref(sl_ctx *ctx);
void sl_ctx_unref(sl_ctx *ctx);

/*
 * Cancel ctx and all its descendants. code is the error readers see
 * (normally SL_ECANCELED); cause is a printf-style human explanation such as
 * "stage parse: bad JSON at line 12" (may be NULL). Only the first call on a
 * context has an effect. Never blocks on other contexts' waiters' work:
 * waiters' wake callbacks are short and non-blocking.
 */
void sl_ctx_cancel(sl_ctx *ctx, int code, const char *cause_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* true once ctx is done. Cheap: one atomic load. */
bool sl_ctx_is_done(const sl_ctx *ctx);

/* 0 while running, else the error code of the cancellation that ended it. */
int sl_ctx_err(const sl_ctx *ctx);

/*
 * The cause of the cancellation ("" while running, or a default such as
 * "deadline exceeded" when none was given). The string lives as long as ctx.
 */
const char *sl_ctx_cause(const sl_ctx *ctx);

/* The deadline in ns (sl_clock_real scale) inherited by ctx, or INT64_MAX. */
int64_t sl_ctx_deadline(const sl_ctx *ctx);

/* The value stored under key by ctx or its nearest ancestor, or NULL. */
void *sl_ctx_value(const sl_ctx *ctx, const void *key);

/*
 * Sleep for ns real nanoseconds or until ctx is done. Returns 0 after the
 * full sleep, else sl_ctx_err(ctx).
 */
int sl_ctx_sleep(sl_ctx *ctx, int64_t ns);

/*
 * Block until ctx is done (returns its error), or until deadline_ns on the
 * real clock passes (returns SL_ETIMEDOUT). INT64_MAX waits forever.
 */
int sl_ctx_wait(sl_ctx *ctx, int64_t deadline_ns);

/*
 * Waiters: how blocking primitives learn of cancellation without polling.
 * Register before blocking; the context calls wake(w) exactly once when it
 * becomes done (immediately false is returned instead if it already is).
 * wake runs on the cancelling thread with an internal lock held: it must not
 * block, allocate or call back into the context API. Unregister after
 * waking up; on return from sl_ctx_remove_waiter the callback is not running
 * and will not run.
 */
typedef struct sl_ctx_waiter {
    void (*wake)(struct sl_ctx_waiter *w);  /* set by the caller */
    void *arg;                              /* for the caller's use */
    struct sl_ctx_waiter *prev, *next;      /* owned by the context */
    sl_ctx *owner;                          /* owned by the context */
} sl_ctx_waiter;

bool sl_ctx_add_waiter(sl_ctx *ctx, sl_ctx_waiter *w);
void sl_ctx_remove_waiter(sl_ctx *ctx, sl_ctx_waiter *w);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
