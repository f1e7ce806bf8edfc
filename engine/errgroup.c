/*
 * error group: tasks on threads; the first error cancels the group.
 *
 * Each task runs on its own joinable thread. A finished task puts itself
 * on the done list; go() and wait() join and free what is there, so a
 * long-lived group holds only its running tasks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "sluice/error.h"
#include "sluice/patterns.h"

struct eg_task {
    sl_errgroup *g;          /* back pointer */
    sl_task_fn fn;           /* the task */
    void *arg;               /* its argument */
    pthread_t thread;        /* its thread */
    struct eg_task *next;    /* done list link, guarded by g->mu */
};

struct sl_errgroup {
    sl_ctx *ctx;             /* the group's context */
    size_t limit;            /* immutable: max running tasks, 0 = none */
    pthread_mutex_t mu;      /* guards the fields below */
    pthread_cond_t cond;     /* a task finished, or ctx is done */
    size_t live;             /* tasks started and not finished */
    struct eg_task *done;    /* finished tasks not yet joined */
    int err;                 /* first error, 0 if none */
};

/* A group with no tasks under a child of parent (or a new root).
 * Thread: any. */
int sl_errgroup_create(sl_ctx *parent, size_t limit, sl_errgroup **out)
{
    if (out == NULL)
        return SL_EINVAL;
    sl_errgroup *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return SL_ENOMEM;
    int rc = parent != NULL ? sl_ctx_create_child(parent, &g->ctx)
                            : sl_ctx_create(&g->ctx);
    if (rc != 0) {
        free(g);
        return rc;
    }
    g->limit = limit;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    *out = g;
    return 0;
}

/* The group's context, borrowed. Thread: any. */
sl_ctx *sl_errgroup_ctx(const sl_errgroup *g)
{
    return g->ctx;
}

/* Record code as the group's error if it is the first; cancel if so. The
 * context is cancelled with mu released (its waiters take mu). */
static void group_fail(sl_errgroup *g, int code, const char *cause)
{
    pthread_mutex_lock(&g->mu);
    bool first = g->err == 0;
    if (first)
        g->err = code;
    pthread_mutex_unlock(&g->mu);
    if (first)
        sl_ctx_cancel(g->ctx, code, "%s", cause);
}

/* Format the cause, then fail the group if this is its first error.
 * Non-negative codes are ignored. Thread: any. */
void sl_errgroup_fail(sl_errgroup *g, int code, const char *cause_fmt, ...)
{
    char cause[256];
    if (g == NULL || code >= 0)
        return;
    if (cause_fmt != NULL) {
        va_list ap;
        va_start(ap, cause_fmt);
        vsnprintf(cause, sizeof(cause), cause_fmt, ap);
        va_end(ap);
    } else {
        snprintf(cause, sizeof(cause), "%s", sl_strerror(code));
    }
    group_fail(g, code, cause);
}

/* A task's thread: run it, record a failure, then put itself on the done
 * list for go() or wait() to join. */
static void *task_main(void *p)
{
    struct eg_task *t = p;
    sl_errgroup *g = t->g;

    int rc = t->fn(g->ctx, t->arg);
    if (rc != 0)
        group_fail(g, rc, sl_strerror(rc));

    pthread_mutex_lock(&g->mu);
    t->next = g->done;
    g->done = t;
    g->live--;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Join and free the finished tasks. */
static void reap(sl_errgroup *g)
{
    pthread_mutex_lock(&g->mu);
    struct eg_task *t = g->done;
    g->done = NULL;
    pthread_mutex_unlock(&g->mu);
    while (t != NULL) {
        struct eg_task *next = t->next;
        pthread_join(t->thread, NULL);
        free(t);
        t = next;
    }
}

/* Context waiter for go() blocked on the limit: wake it to re-check. Takes
 * mu, a leaf lock never held across a context call. */
static void wake_group(sl_ctx_waiter *w)
{
    sl_errgroup *g = w->arg;
    pthread_mutex_lock(&g->mu);
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
}

/*
 * Take a running slot, waiting while the limit is reached. Returns 0, or
 * the context's error when it is (or becomes) done.
 */
static int take_slot(sl_errgroup *g)
{
    sl_ctx_waiter w = { .wake = wake_group, .arg = g };
    bool done = false;

    if (g->limit == 0) {
        if (sl_ctx_is_done(g->ctx))
            return sl_ctx_err(g->ctx);
        pthread_mutex_lock(&g->mu);
        g->live++;
        pthread_mutex_unlock(&g->mu);
        return 0;
    }
    if (!sl_ctx_add_waiter(g->ctx, &w))
        return sl_ctx_err(g->ctx);
    pthread_mutex_lock(&g->mu);
    for (;;) {
        if (sl_ctx_is_done(g->ctx)) {
            done = true;
            break;
        }
        if (g->live < g->limit)
            break;
        pthread_cond_wait(&g->cond, &g->mu);
    }
    if (!done)
        g->live++;
    pthread_mutex_unlock(&g->mu);
    sl_ctx_remove_waiter(g->ctx, &w);
    return done ? sl_ctx_err(g->ctx) : 0;
}

/* Join finished tasks, take a slot (maybe waiting), start the thread.
 * Thread: any. */
int sl_errgroup_go(sl_errgroup *g, sl_task_fn fn, void *arg)
{
    if (g == NULL || fn == NULL)
        return SL_EINVAL;
    reap(g);
    struct eg_task *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return SL_ENOMEM;
    t->g = g;
    t->fn = fn;
    t->arg = arg;
    int rc = take_slot(g);
    if (rc != 0) {
        free(t);
        return rc;
    }
    int err = pthread_create(&t->thread, NULL, task_main, t);
    if (err != 0) {
        pthread_mutex_lock(&g->mu);
        g->live--;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->mu);
        free(t);
        return err == EAGAIN ? SL_EAGAIN : SL_EINTERNAL;
    }
    return 0;
}

/* Waiting for tasks to finish is not cut short by the context: a task that
 * was started is always joined. */
int sl_errgroup_wait(sl_errgroup *g)
{
    if (g == NULL)
        return SL_EINVAL;
    pthread_mutex_lock(&g->mu);
    while (g->live > 0)
        pthread_cond_wait(&g->cond, &g->mu);
    int err = g->err;
    pthread_mutex_unlock(&g->mu);
    reap(g);
    sl_ctx_cancel(g->ctx, SL_ECANCELED, "error group finished");
    return err;
}

/* Wait for every task, then free. NULL: no-op. Thread: owner. */
void sl_errgroup_destroy(sl_errgroup *g)
{
    if (g == NULL)
        return;
    sl_errgroup_wait(g);
    sl_ctx_destroy(g->ctx);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
