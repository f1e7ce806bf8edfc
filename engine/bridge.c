/*
 * bridge: a channel of channels flattened in order.
 *
 * One thread drains the sub-channels one after another into the output.
 * The order of the output is the order of the sub-channels, whatever order
 * their producers fill them in.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "sluice/error.h"
#include "sluice/patterns.h"

#define BRIDGE_BATCH 32

struct sl_bridge {
    sl_ctx *ctx;                 /* own child of the caller's context */
    sl_chan *subs;               /* borrowed: a channel of sl_chan * */
    sl_chan *out;                /* borrowed */
    sl_chan_release_fn release;  /* immutable after start; may be NULL */
    void *arg;                   /* passed to release */
    pthread_t thread;            /* the bridge thread */
    bool joined;                 /* owner only */
    int result;                  /* written by the thread, read after join */
};

/* Forward everything of sub to out; 0 once sub is closed and drained. */
static int drain_sub(sl_bridge *b, sl_chan *sub)
{
    void *buf[BRIDGE_BATCH];
    for (;;) {
        size_t got = 0;
        int rc = sl_chan_recv_batch(sub, b->ctx, buf, BRIDGE_BATCH, &got);
        if (rc == SL_ECLOSED)
            return 0;
        if (rc != 0)
            return rc;
        rc = sl_chan_send_batch(b->out, b->ctx, buf, got);
        if (rc != 0)
            return rc;
    }
}

/* The bridge thread: sub-channel after sub-channel, releasing each when
 * done with it; closes out however it ends. */
static void *bridge_main(void *p)
{
    sl_bridge *b = p;
    int rc;

    for (;;) {
        void *item;
        rc = sl_chan_recv(b->subs, b->ctx, &item);
        if (rc == SL_ECLOSED) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        sl_chan *sub = item;
        if (sub == NULL)        /* nothing to drain: an empty stream */
            continue;
        rc = drain_sub(b, sub);
        if (b->release != NULL)
            b->release(sub, b->arg);
        if (rc != 0)
            break;
    }
    sl_chan_close(b->out);
    b->result = rc;
    return NULL;
}

/* Allocate, take a child context, start the thread; on failure nothing
 * is left behind and *out_bridge is untouched. Thread: any. */
int sl_bridge_start(sl_ctx *ctx, sl_chan *subs, sl_chan *out,
                    sl_chan_release_fn release, void *arg,
                    sl_bridge **out_bridge)
{
    int rc;

    if (subs == NULL || out == NULL || out_bridge == NULL)
        return SL_EINVAL;
    sl_bridge *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return SL_ENOMEM;
    b->subs = subs;
    b->out = out;
    b->release = release;
    b->arg = arg;
    rc = ctx != NULL ? sl_ctx_create_child(ctx, &b->ctx)
                     : sl_ctx_create(&b->ctx);
    if (rc != 0)
        goto out_free_bridge;
    int err = pthread_create(&b->thread, NULL, bridge_main, b);
    if (err != 0) {
        rc = err == EAGAIN ? SL_EAGAIN : SL_EINTERNAL;
        goto out_destroy_ctx;
    }
    *out_bridge = b;
    return 0;

out_destroy_ctx:
    sl_ctx_destroy(b->ctx);
out_free_bridge:
    free(b);
    return rc;
}

/* Cancel the bridge's own context. Thread: any. */
void sl_bridge_stop(sl_bridge *b)
{
    if (b != NULL)
        sl_ctx_cancel(b->ctx, SL_ECANCELED, "bridge stopped");
}

/* Join the thread once; later calls return the same result. Thread: owner. */
int sl_bridge_wait(sl_bridge *b)
{
    if (b == NULL)
        return SL_EINVAL;
    if (!b->joined) {
        pthread_join(b->thread, NULL);
        b->joined = true;
    }
    return b->result;
}

/* Stop, join, free. NULL: no-op. Thread: owner. */
void sl_bridge_destroy(sl_bridge *b)
{
    if (b == NULL)
        return;
    sl_bridge_stop(b);
    sl_bridge_wait(b);
    sl_ctx_destroy(b->ctx);
    free(b);
}
