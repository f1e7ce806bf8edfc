/*
 * tee: one input, N outputs, every item to each output.
 *
 * One thread takes an item, makes the copies, offers each output its item
 * without blocking, then blocks on the outputs that were full. Only one
 * item is in flight, so the slowest branch sets the pace and nothing grows.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "sluice/error.h"
#include "sluice/patterns.h"

struct sl_tee {
    sl_ctx *ctx;            /* own child of the caller's context */
    sl_chan *in;            /* borrowed */
    sl_chan **outs;         /* borrowed channels; array owned */
    bool *live;             /* tee thread only: output still open */
    void **pending;         /* tee thread only: per output, item to send */
    size_t n;               /* number of outputs */
    sl_copy_fn copy;        /* immutable after start */
    sl_free_fn free_item;   /* immutable after start */
    void *arg;              /* immutable after start */
    pthread_t thread;       /* the tee thread */
    bool joined;            /* owner only */
    int result;             /* written by the thread, read after join */
};

/* Free the tee's memory (the thread is joined, the context gone). */
static void tee_free(sl_tee *t)
{
    free(t->pending);
    free(t->live);
    free(t->outs);
    free(t);
}

/* Free the items of this round that were not handed to a channel. */
static void drop_pending(sl_tee *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->pending[i] != NULL && t->free_item != NULL)
            t->free_item(t->pending[i]);
        t->pending[i] = NULL;
    }
}

/*
 * Fill pending[] for every live output: copies for all but the last live
 * one, which gets item itself. On a failed copy everything is freed.
 */
static int make_copies(sl_tee *t, void *item)
{
    size_t last = t->n;
    for (size_t i = 0; i < t->n; i++)
        if (t->live[i])
            last = i;
    for (size_t i = 0; i < t->n; i++) {
        if (!t->live[i] || i == last)
            continue;
        t->pending[i] = t->copy(item, t->arg);
        if (t->pending[i] == NULL) {
            drop_pending(t);
            if (t->free_item != NULL)
                t->free_item(item);
            return SL_ENOMEM;
        }
    }
    t->pending[last] = item;
    return 0;
}

/* Send this round's items; returns 0 or the error that stops the tee. */
static int send_round(sl_tee *t, size_t *nlive)
{
    for (int blocking = 0; blocking <= 1; blocking++) {
        for (size_t i = 0; i < t->n; i++) {
            if (t->pending[i] == NULL)
                continue;
            int rc = blocking ? sl_chan_send(t->outs[i], t->ctx, t->pending[i])
                              : sl_chan_try_send(t->outs[i], t->pending[i]);
            if (rc == SL_EAGAIN)
                continue;
            t->pending[i] = NULL;     /* the channel has it, or freed it */
            if (rc == SL_ECLOSED) {
                t->live[i] = false;
                (*nlive)--;
            } else if (rc != 0) {
                drop_pending(t);
                return rc;
            }
        }
    }
    return *nlive == 0 ? SL_ECLOSED : 0;
}

/* The tee thread: one item per round until in closes or something stops
 * it; then close every output, whatever the reason. */
static void *tee_main(void *p)
{
    sl_tee *t = p;
    size_t nlive = t->n;
    int rc;

    for (;;) {
        void *item;
        rc = sl_chan_recv(t->in, t->ctx, &item);
        if (rc == SL_ECLOSED) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        rc = make_copies(t, item);
        if (rc != 0)
            break;
        rc = send_round(t, &nlive);
        if (rc != 0)
            break;
    }
    for (size_t i = 0; i < t->n; i++)
        sl_chan_close(t->outs[i]);
    t->result = rc;
    return NULL;
}

/* Map a pthread_create error to an SL_E* code. */
static int thread_error(int err)
{
    return err == EAGAIN ? SL_EAGAIN : SL_EINTERNAL;
}

/*
 * Allocate, take a child context and start the thread; on failure undo
 * everything in reverse order, leaving *out untouched.
 */
int sl_tee_start(sl_ctx *ctx, sl_chan *in, sl_chan *const *outs, size_t n,
                 sl_copy_fn copy, sl_free_fn free_item, void *arg,
                 sl_tee **out)
{
    int rc;

    if (in == NULL || outs == NULL || n == 0 || out == NULL ||
        (n > 1 && copy == NULL))
        return SL_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (outs[i] == NULL)
            return SL_EINVAL;

    sl_tee *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return SL_ENOMEM;
    t->outs = calloc(n, sizeof(*t->outs));
    t->live = calloc(n, sizeof(*t->live));
    t->pending = calloc(n, sizeof(*t->pending));
    if (t->outs == NULL || t->live == NULL || t->pending == NULL) {
        rc = SL_ENOMEM;
        goto out_free_tee;
    }
    for (size_t i = 0; i < n; i++) {
        t->outs[i] = outs[i];
        t->live[i] = true;
    }
    t->in = in;
    t->n = n;
    t->copy = copy;
    t->free_item = free_item;
    t->arg = arg;

    rc = ctx != NULL ? sl_ctx_create_child(ctx, &t->ctx)
                     : sl_ctx_create(&t->ctx);
    if (rc != 0)
        goto out_free_tee;
    int err = pthread_create(&t->thread, NULL, tee_main, t);
    if (err != 0) {
        rc = thread_error(err);
        goto out_destroy_ctx;
    }
    *out = t;
    return 0;

out_destroy_ctx:
    sl_ctx_destroy(t->ctx);
out_free_tee:
    tee_free(t);
    return rc;
}

/* Cancel the tee's own context; the thread notices at once. Thread: any. */
void sl_tee_stop(sl_tee *t)
{
    if (t != NULL)
        sl_ctx_cancel(t->ctx, SL_ECANCELED, "tee stopped");
}

/* Join the thread once; later calls return the same result. Thread: owner. */
int sl_tee_wait(sl_tee *t)
{
    if (t == NULL)
        return SL_EINVAL;
    if (!t->joined) {
        pthread_join(t->thread, NULL);
        t->joined = true;
    }
    return t->result;
}

/* Stop, join, free. NULL: no-op. Thread: owner. */
void sl_tee_destroy(sl_tee *t)
{
    if (t == NULL)
        return;
    sl_tee_stop(t);
    sl_tee_wait(t);
    sl_ctx_destroy(t->ctx);
    tee_free(t);
}
