/*
 * Contexts: a tree of cancellation scopes.
 *
 * Each context has its own mutex guarding its children list and its waiter
 * list. The error code is an atomic written once (under the mutex, after the
 * cause), so sl_ctx_is_done() is one acquire load and the cause can be read
 * without locking once the code is visible.
 *
 * Lock order is parent before child, never the reverse. A cancel marks the
 * context done, wakes its waiters and steals its whole children list (whose
 * references it now owns) under its own lock, and cancels the stolen
 * children while still holding it, each under its own lock in turn. So once
 * any cancel of a context returns — even one that lost the race to another
 * — the context and its whole subtree are done. A child that cancels on
 * its own detaches from its parent by taking the parent's lock after
 * releasing its own. The timer mutex is a leaf: taken last, never held
 * while taking a context lock.
 *
 * References: the caller's (from create or sl_ctx_ref), one from the
 * parent's children list while the child is attached and running, and one
 * from the deadline heap while the context waits there. A child holds a
 * reference on its parent for its whole life, so value lookups and inherited
 * causes can always walk up.
 *
 * Deadlines: one process-wide timer thread sleeps on a condition variable
 * (CLOCK_MONOTONIC) until the earliest deadline in a binary min-heap and
 * cancels whatever has expired with SL_EDEADLINE.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/context_internal.h"
#include "engine/futex_internal.h"
#include "sluice/context.h"
#include "sluice/error.h"

struct sl_ctx {
    _Atomic int err;                /* atomic: 0 running, else the code; set once under mu */
    _Atomic long refs;              /* atomic: reference count */
    pthread_mutex_t mu;             /* guards children, waiters, cause, cause_owned */
    sl_ctx *parent;                 /* immutable; holds a reference; NULL for a root */
    sl_ctx *children;               /* guarded by mu: attached running children */
    sl_ctx *sib_prev;               /* guarded by parent->mu */
    sl_ctx *sib_next;               /* guarded by parent->mu */
    bool attached;                  /* guarded by parent->mu: in parent's children list */
    sl_ctx_waiter *waiters;         /* guarded by mu */
    const char *cause;              /* written once under mu before err; immutable after */
    char *cause_owned;              /* the allocation behind cause, if ours */
    int64_t deadline;               /* immutable: own or inherited deadline, or INT64_MAX */
    bool has_timer;                 /* immutable after create: entered the deadline heap */
    long heap_idx;                  /* guarded by the timer mutex: index in heap, or -1 */
    bool has_value;                 /* immutable */
    const void *key;                /* immutable */
    void *value;                    /* immutable */
};

static void ctx_cancel_with(sl_ctx *ctx, int code, const char *cause,
                            char *cause_owned);

/* ------------------------------------------------------------ time */

static int64_t mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_S + ts.tv_nsec;
}

/* ------------------------------------------------------------ deadline heap */

/*
 * The deadline heap: contexts ordered by deadline, each holding one
 * reference. The timer thread is started on first use and lives for the
 * rest of the process.
 */
static struct {
    pthread_mutex_t mu;             /* guards everything below */
    pthread_cond_t cv;              /* CLOCK_MONOTONIC; signalled on a new earliest deadline */
    bool cv_ready;                  /* cv initialised with the monotonic clock */
    bool started;                   /* timer thread running */
    sl_ctx **heap;                  /* min-heap by deadline */
    size_t n;                       /* entries in heap */
    size_t cap;                     /* allocated entries */
} timers = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

static void heap_set(size_t i, sl_ctx *c)
{
    timers.heap[i] = c;
    c->heap_idx = (long)i;
}

static void heap_up(size_t i)
{
    sl_ctx *c = timers.heap[i];

    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (timers.heap[p]->deadline <= c->deadline)
            break;
        heap_set(i, timers.heap[p]);
        i = p;
    }
    heap_set(i, c);
}

static void heap_down(size_t i)
{
    sl_ctx *c = timers.heap[i];

    for (;;) {
        size_t l = 2 * i + 1, m = i;
        int64_t best = c->deadline;
        if (l < timers.n && timers.heap[l]->deadline < best) {
            m = l;
            best = timers.heap[l]->deadline;
        }
        if (l + 1 < timers.n && timers.heap[l + 1]->deadline < best)
            m = l + 1;
        if (m == i)
            break;
        heap_set(i, timers.heap[m]);
        i = m;
    }
    heap_set(i, c);
}

/* Remove heap entry i. Caller holds timers.mu. */
static void heap_remove_at(size_t i)
{
    sl_ctx *c = timers.heap[i];
    sl_ctx *last = timers.heap[--timers.n];

    c->heap_idx = -1;
    if (i == timers.n)
        return;
    heap_set(i, last);
    heap_up(i);
    heap_down((size_t)last->heap_idx);
}

static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&timers.mu);
    for (;;) {
        if (timers.n == 0) {
            pthread_cond_wait(&timers.cv, &timers.mu);
            continue;
        }
        sl_ctx *top = timers.heap[0];
        int64_t now = mono_now();
        if (top->deadline <= now) {
            /* The heap's reference passes to this thread. */
            heap_remove_at(0);
            pthread_mutex_unlock(&timers.mu);
            ctx_cancel_with(top, SL_EDEADLINE, NULL, NULL);
            sl_ctx_unref(top);
            pthread_mutex_lock(&timers.mu);
            continue;
        }
        struct timespec ts = {
            .tv_sec = (time_t)(top->deadline / SL_NS_PER_S),
            .tv_nsec = (long)(top->deadline % SL_NS_PER_S),
        };
        pthread_cond_timedwait(&timers.cv, &timers.mu, &ts);
    }
    return NULL;
}

/* Start the timer thread if needed. Caller holds timers.mu. */
static int timer_start_locked(void)
{
    pthread_condattr_t ca;
    pthread_attr_t ta;
    pthread_t thr;
    sigset_t all, old;
    int rc;

    if (timers.started)
        return 0;
    if (!timers.cv_ready) {
        if (pthread_condattr_init(&ca) != 0)
            return SL_ENOMEM;
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        rc = pthread_cond_init(&timers.cv, &ca);
        pthread_condattr_destroy(&ca);
        if (rc != 0)
            return SL_ENOMEM;
        timers.cv_ready = true;
    }
    if (pthread_attr_init(&ta) != 0)
        return SL_ENOMEM;
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    /* Signals belong to the application's threads, never to the timer. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&thr, &ta, timer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&ta);
    if (rc != 0)
        return SL_ENOMEM;
    timers.started = true;
    return 0;
}

/*
 * Enter ctx (has_timer set) into the heap with a reference. A context
 * cancelled meanwhile is left out: its cancel stored err before taking
 * timers.mu in timer_remove, so one of the two always sees the other.
 */
static int timer_add(sl_ctx *ctx)
{
    int rc;

    pthread_mutex_lock(&timers.mu);
    if (sl_ctx_is_done(ctx)) {
        rc = 0;
        goto out_unlock;
    }
    rc = timer_start_locked();
    if (rc != 0)
        goto out_unlock;
    if (timers.n == timers.cap) {
        size_t ncap = timers.cap ? timers.cap * 2 : 16;
        sl_ctx **nh = realloc(timers.heap, ncap * sizeof(*nh));
        if (nh == NULL) {
            rc = SL_ENOMEM;
            goto out_unlock;
        }
        timers.heap = nh;
        timers.cap = ncap;
    }
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    timers.heap[timers.n] = ctx;
    ctx->heap_idx = (long)timers.n;
    timers.n++;
    heap_up(timers.n - 1);
    if (ctx->heap_idx == 0)
        pthread_cond_signal(&timers.cv);
out_unlock:
    pthread_mutex_unlock(&timers.mu);
    return rc;
}

/* Take ctx out of the heap if it is still there, dropping the heap's ref. */
static void timer_remove(sl_ctx *ctx)
{
    bool drop = false;

    if (!ctx->has_timer)
        return;
    pthread_mutex_lock(&timers.mu);
    if (ctx->heap_idx >= 0) {
        heap_remove_at((size_t)ctx->heap_idx);
        drop = true;
    }
    pthread_mutex_unlock(&timers.mu);
    if (drop)
        sl_ctx_unref(ctx);
}

/* ------------------------------------------------------------ lifetime */

static sl_ctx *ctx_alloc(void)
{
    sl_ctx *ctx = calloc(1, sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    if (pthread_mutex_init(&ctx->mu, NULL) != 0) {
        free(ctx);
        return NULL;
    }
    atomic_init(&ctx->err, 0);
    atomic_init(&ctx->refs, 1);
    ctx->deadline = INT64_MAX;
    ctx->heap_idx = -1;
    return ctx;
}

/*
 * Take a reference. Returns ctx for chaining; NULL stays NULL.
 * Thread: any.
 */
sl_ctx *sl_ctx_ref(sl_ctx *ctx)
{
    if (ctx != NULL)
        atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

/*
 * Drop a reference; the last one frees the context and drops its reference
 * on the parent. Waiters must have been removed by then. NULL: no-op.
 * Thread: any.
 */
void sl_ctx_unref(sl_ctx *ctx)
{
    while (ctx != NULL) {
        if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
            return;
        sl_ctx *parent = ctx->parent;
        free(ctx->cause_owned);
        pthread_mutex_destroy(&ctx->mu);
        free(ctx);
        ctx = parent;   /* iterative, so a deep chain cannot overflow the stack */
    }
}

/*
 * Make a child of parent. Everything immutable (deadline, value) is set
 * before the child is attached, since a concurrent cancel of the parent can
 * reach it from then on. The child takes a reference on the parent and
 * either joins the parent's children list or, when the parent is already
 * done, starts out done with its code and cause. A deadline earlier than the
 * inherited one enters the timer heap (or, if already past, cancels the
 * child at once).
 */
static int ctx_new_child(sl_ctx *parent, int64_t deadline, bool has_value,
                         const void *key, void *value, sl_ctx **out)
{
    bool expired = false;
    sl_ctx *ctx;
    int rc;

    if (parent == NULL || out == NULL)
        return SL_EINVAL;
    ctx = ctx_alloc();
    if (ctx == NULL)
        return SL_ENOMEM;
    ctx->parent = sl_ctx_ref(parent);
    ctx->deadline = parent->deadline;
    if (deadline < ctx->deadline) {
        ctx->deadline = deadline;
        if (deadline <= mono_now())
            expired = true;
        else
            ctx->has_timer = true;
    }
    ctx->has_value = has_value;
    ctx->key = key;
    ctx->value = value;

    pthread_mutex_lock(&parent->mu);
    int perr = atomic_load_explicit(&parent->err, memory_order_relaxed);
    if (perr != 0) {
        ctx->cause = parent->cause;
        atomic_store_explicit(&ctx->err, perr, memory_order_release);
    } else {
        atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
        ctx->sib_prev = NULL;
        ctx->sib_next = parent->children;
        if (parent->children != NULL)
            parent->children->sib_prev = ctx;
        parent->children = ctx;
        ctx->attached = true;
    }
    pthread_mutex_unlock(&parent->mu);

    if (expired) {
        ctx_cancel_with(ctx, SL_EDEADLINE, NULL, NULL);
    } else if (ctx->has_timer) {
        rc = timer_add(ctx);
        if (rc != 0) {
            sl_ctx_destroy(ctx);
            return rc;
        }
    }
    *out = ctx;
    return 0;
}

/* A new root context, never done until cancelled. Thread: any. */
int sl_ctx_create(sl_ctx **out)
{
    sl_ctx *ctx;

    if (out == NULL)
        return SL_EINVAL;
    ctx = ctx_alloc();
    if (ctx == NULL)
        return SL_ENOMEM;
    *out = ctx;
    return 0;
}

/* A child of parent (SL_EINVAL if NULL). Thread: any. */
int sl_ctx_create_child(sl_ctx *parent, sl_ctx **out)
{
    return ctx_new_child(parent, INT64_MAX, false, NULL, NULL, out);
}

/*
 * A child cancelled with SL_EDEADLINE at deadline_ns. When the parent's
 * deadline is earlier the child simply inherits it (the parent's timer will
 * cancel both); a deadline already past gives a context that is done.
 * Thread: any.
 */
int sl_ctx_create_deadline(sl_ctx *parent, int64_t deadline_ns, sl_ctx **out)
{
    return ctx_new_child(parent, deadline_ns, false, NULL, NULL, out);
}

/* A deadline timeout_ns from now. Thread: any. */
int sl_ctx_create_timeout(sl_ctx *parent, int64_t timeout_ns, sl_ctx **out)
{
    int64_t now = mono_now();
    int64_t deadline;

    if (timeout_ns > INT64_MAX - now)
        deadline = INT64_MAX;
    else
        deadline = now + timeout_ns;
    return sl_ctx_create_deadline(parent, deadline, out);
}

/* A child carrying (key, value); value is borrowed. Thread: any. */
int sl_ctx_create_value(sl_ctx *parent, const void *key, void *value,
                        sl_ctx **out)
{
    return ctx_new_child(parent, INT64_MAX, true, key, value, out);
}

/*
 * Cancel (if not already done), detach, and drop the caller's reference.
 * NULL: no-op. Thread: any.
 */
void sl_ctx_destroy(sl_ctx *ctx)
{
    if (ctx == NULL)
        return;
    ctx_cancel_with(ctx, SL_ECANCELED, NULL, NULL);
    sl_ctx_unref(ctx);
}

/* ------------------------------------------------------------ cancel */

/* Unlink ctx from its parent's list if still there; drop the list's ref. */
static void ctx_detach(sl_ctx *ctx)
{
    sl_ctx *p = ctx->parent;
    bool drop = false;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    if (ctx->attached) {
        if (ctx->sib_prev != NULL)
            ctx->sib_prev->sib_next = ctx->sib_next;
        else
            p->children = ctx->sib_next;
        if (ctx->sib_next != NULL)
            ctx->sib_next->sib_prev = ctx->sib_prev;
        ctx->sib_prev = ctx->sib_next = NULL;
        ctx->attached = false;
        drop = true;
    }
    pthread_mutex_unlock(&p->mu);
    if (drop)
        sl_ctx_unref(ctx);
}

/*
 * Mark ctx done with code and cause, if it is not yet, and wake its
 * waiters. Returns the children list, stolen (its references pass to the
 * caller), or NULL if ctx was already done. Caller holds ctx->mu.
 */
static sl_ctx *ctx_mark_done_locked(sl_ctx *ctx, int code, const char *cause,
                                    char *cause_owned, bool *was_done)
{
    sl_ctx *kids;

    *was_done = atomic_load_explicit(&ctx->err, memory_order_relaxed) != 0;
    if (*was_done)
        return NULL;
    ctx->cause = cause;
    ctx->cause_owned = cause_owned;
    atomic_store_explicit(&ctx->err, code, memory_order_release);

    /* Wake every waiter exactly once, under our lock (see the header). */
    sl_ctx_waiter *w = ctx->waiters;
    ctx->waiters = NULL;
    while (w != NULL) {
        sl_ctx_waiter *next = w->next;
        w->prev = w->next = NULL;
        w->owner = NULL;
        w->wake(w);
        w = next;
    }

    kids = ctx->children;
    ctx->children = NULL;
    for (sl_ctx *k = kids; k != NULL; k = k->sib_next)
        k->attached = false;
    return kids;
}

/*
 * Cancel a list of children stolen from their parent, whose lock the caller
 * holds, and drop the list's references. Each child inherits the parent's
 * code and borrows its cause string (kept alive by the child's reference on
 * the parent). A child already done had already emptied its own list.
 */
static void ctx_cancel_stolen(sl_ctx *kids, int code, const char *cause)
{
    while (kids != NULL) {
        sl_ctx *k = kids;
        bool was_done;

        kids = k->sib_next;
        k->sib_prev = k->sib_next = NULL;
        pthread_mutex_lock(&k->mu);
        sl_ctx *grand = ctx_mark_done_locked(k, code, cause, NULL, &was_done);
        ctx_cancel_stolen(grand, code, cause);
        pthread_mutex_unlock(&k->mu);
        if (!was_done)
            timer_remove(k);
        sl_ctx_unref(k);
    }
}

/*
 * Cancel ctx with code (values >= 0 become SL_ECANCELED) and cause (NULL:
 * the code's message; cause_owned, if not NULL, is the allocation behind
 * cause and passes to ctx, or is freed when ctx was already done), then its
 * whole subtree, then leave the timer heap and the parent's list. The
 * caller holds a reference on ctx.
 */
static void ctx_cancel_with(sl_ctx *ctx, int code, const char *cause,
                            char *cause_owned)
{
    bool was_done;

    if (code >= 0)
        code = SL_ECANCELED;
    if (cause == NULL)
        cause = sl_strerror(code);

    pthread_mutex_lock(&ctx->mu);
    sl_ctx *kids = ctx_mark_done_locked(ctx, code, cause, cause_owned, &was_done);
    ctx_cancel_stolen(kids, code, cause);
    pthread_mutex_unlock(&ctx->mu);
    if (was_done) {
        free(cause_owned);
        return;
    }
    timer_remove(ctx);
    ctx_detach(ctx);
}

/*
 * Cancel ctx and its subtree with code (values >= 0 become SL_ECANCELED)
 * and a printf-style cause (NULL: the code's standard message). The cause
 * is formatted once, before locking; only the first cancellation sticks.
 * On return ctx and its whole subtree are done, even when another thread's
 * cancel won the race. Thread: any.
 */
void sl_ctx_cancel(sl_ctx *ctx, int code, const char *cause_fmt, ...)
{
    char *cause = NULL;

    if (ctx == NULL)
        return;
    /* Already done: no cause to format, but still go through the lock so
     * that a cascade in progress on another thread is over on return. */
    if (cause_fmt != NULL && !sl_ctx_is_done(ctx)) {
        va_list ap;
        va_start(ap, cause_fmt);
        int len = vsnprintf(NULL, 0, cause_fmt, ap);
        va_end(ap);
        if (len >= 0) {
            cause = malloc((size_t)len + 1);
            if (cause != NULL) {
                va_start(ap, cause_fmt);
                vsnprintf(cause, (size_t)len + 1, cause_fmt, ap);
                va_end(ap);
            }
        }
    }
    /* Out of memory for the cause: fall back to the code's message. */
    ctx_cancel_with(ctx, code, cause, cause);
}

/* ------------------------------------------------------------ queries */

/* One acquire load. NULL is never done. Thread: any. */
bool sl_ctx_is_done(const sl_ctx *ctx)
{
    return ctx != NULL &&
           atomic_load_explicit(&ctx->err, memory_order_acquire) != 0;
}

/* 0 while running, else the cancellation's code. Thread: any. */
int sl_ctx_err(const sl_ctx *ctx)
{
    if (ctx == NULL)
        return 0;
    return atomic_load_explicit(&ctx->err, memory_order_acquire);
}

/* "" while running, else the cause; lives as long as ctx. Thread: any. */
const char *sl_ctx_cause(const sl_ctx *ctx)
{
    if (!sl_ctx_is_done(ctx))
        return "";
    return ctx->cause;
}

/* The effective deadline, or INT64_MAX. Thread: any. */
int64_t sl_ctx_deadline(const sl_ctx *ctx)
{
    return ctx != NULL ? ctx->deadline : INT64_MAX;
}

/* The nearest value stored under key (compared by address). Thread: any. */
void *sl_ctx_value(const sl_ctx *ctx, const void *key)
{
    for (const sl_ctx *c = ctx; c != NULL; c = c->parent) {
        if (c->has_value && c->key == key)
            return c->value;
    }
    return NULL;
}

/* ------------------------------------------------------------ waiters */

/*
 * Register w (w->wake set by the caller). Returns false, without
 * registering, if ctx is already done. A NULL ctx is never done: true,
 * nothing registered. Thread: any.
 */
bool sl_ctx_add_waiter(sl_ctx *ctx, sl_ctx_waiter *w)
{
    bool ok;

    w->prev = w->next = NULL;
    w->owner = NULL;
    if (ctx == NULL)
        return true;
    pthread_mutex_lock(&ctx->mu);
    ok = atomic_load_explicit(&ctx->err, memory_order_relaxed) == 0;
    if (ok) {
        w->owner = ctx;
        w->next = ctx->waiters;
        if (ctx->waiters != NULL)
            ctx->waiters->prev = w;
        ctx->waiters = w;
    }
    pthread_mutex_unlock(&ctx->mu);
    return ok;
}

/*
 * Unregister w. Taking ctx's lock guarantees that a wake callback running
 * on another thread has returned. Safe whether or not w was woken.
 * Thread: any.
 */
void sl_ctx_remove_waiter(sl_ctx *ctx, sl_ctx_waiter *w)
{
    if (ctx == NULL)
        return;
    pthread_mutex_lock(&ctx->mu);
    if (w->owner == ctx) {
        if (w->prev != NULL)
            w->prev->next = w->next;
        else
            ctx->waiters = w->next;
        if (w->next != NULL)
            w->next->prev = w->prev;
        w->prev = w->next = NULL;
        w->owner = NULL;
    }
    pthread_mutex_unlock(&ctx->mu);
}

/* ------------------------------------------------------------ waiting */

typedef struct ctx_parker {
    sl_ctx_waiter w;                /* registered on the context */
    _Atomic uint32_t woken;         /* atomic: 0 until the context is done */
} ctx_parker;

static void ctx_parker_wake(sl_ctx_waiter *w)
{
    ctx_parker *p = (ctx_parker *)w;

    atomic_store_explicit(&p->woken, 1, memory_order_release);
    sl__futex_wake(&p->woken, 1);
}

/*
 * Block until ctx is done or the real clock reaches deadline_ns. A NULL ctx
 * simply waits for the deadline. Thread: any.
 */
int sl_ctx_wait(sl_ctx *ctx, int64_t deadline_ns)
{
    ctx_parker p = { .w = { .wake = ctx_parker_wake } };

    atomic_init(&p.woken, 0);
    if (!sl_ctx_add_waiter(ctx, &p.w))
        return sl_ctx_err(ctx);
    while (atomic_load_explicit(&p.woken, memory_order_acquire) == 0) {
        if (deadline_ns != INT64_MAX && mono_now() >= deadline_ns)
            break;
        sl__futex_wait(&p.woken, 0, deadline_ns);
    }
    sl_ctx_remove_waiter(ctx, &p.w);
    if (sl_ctx_is_done(ctx))
        return sl_ctx_err(ctx);
    return SL_ETIMEDOUT;
}

/* Sleep ns or until ctx is done: 0 after a full sleep. Thread: any. */
int sl_ctx_sleep(sl_ctx *ctx, int64_t ns)
{
    int64_t now = mono_now();
    int rc;

    if (sl_ctx_is_done(ctx))
        return sl_ctx_err(ctx);
    if (ns <= 0)
        return 0;
    rc = sl_ctx_wait(ctx, ns > INT64_MAX - now ? INT64_MAX : now + ns);
    return rc == SL_ETIMEDOUT ? 0 : rc;
}

/* Waiters registered right now, for tests and diagnostics. Thread: any. */
size_t sl__ctx_waiter_count(const sl_ctx *ctx)
{
    sl_ctx *m = (sl_ctx *)ctx;   /* the mutex is not part of the value */
    size_t n = 0;

    pthread_mutex_lock(&m->mu);
    for (sl_ctx_waiter *w = m->waiters; w != NULL; w = w->next)
        n++;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* Attached running children right now, for tests. Thread: any. */
size_t sl__ctx_child_count(const sl_ctx *ctx)
{
    sl_ctx *m = (sl_ctx *)ctx;
    size_t n = 0;

    pthread_mutex_lock(&m->mu);
    for (sl_ctx *c = m->children; c != NULL; c = c->sib_next)
        n++;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* The current reference count, for tests. Thread: any. */
long sl__ctx_refcount(const sl_ctx *ctx)
{
    return atomic_load(&ctx->refs);
}
