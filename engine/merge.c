/*
 * merge: N inputs into one output (fan-in).
 *
 * One forwarder thread per input moves batches from its input to the
 * shared output (channels are multi-producer, so the output needs no extra
 * locking). The last forwarder to finish closes the output.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "sluice/error.h"
#include "sluice/patterns.h"

#define MERGE_BATCH 32

struct merge_fwd {
    sl_merge *m;            /* back pointer */
    sl_chan *in;            /* borrowed */
    pthread_t thread;       /* this input's forwarder */
};

struct sl_merge {
    sl_ctx *ctx;              /* own child of the caller's context */
    sl_chan *out;             /* borrowed */
    struct merge_fwd *fwds;   /* n forwarders */
    size_t n;                 /* number of inputs */
    pthread_mutex_t mu;       /* start gate: held while threads are created */
    bool aborted;             /* guarded by mu: start failed, do nothing */
    _Atomic size_t active;    /* atomic: forwarders not yet finished */
    _Atomic int result;       /* atomic: first error, 0 if none */
    bool joined;              /* owner only */
};

/* Keep the first error any forwarder met. */
static void record_error(sl_merge *m, int rc)
{
    int expected = 0;
    atomic_compare_exchange_strong(&m->result, &expected, rc);
}

/* A forwarder: pass the start gate, move batches until its input closes
 * or the merge stops; the last forwarder out closes the output. */
static void *fwd_main(void *p)
{
    struct merge_fwd *f = p;
    sl_merge *m = f->m;
    void *buf[MERGE_BATCH];
    int rc;

    pthread_mutex_lock(&m->mu);
    bool aborted = m->aborted;
    pthread_mutex_unlock(&m->mu);
    if (aborted)
        return NULL;

    for (;;) {
        size_t got = 0;
        rc = sl_chan_recv_batch(f->in, m->ctx, buf, MERGE_BATCH, &got);
        if (rc == SL_ECLOSED) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        rc = sl_chan_send_batch(m->out, m->ctx, buf, got);
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        record_error(m, rc);
        /* out closed by its reader: the other forwarders must stop too. */
        if (rc == SL_ECLOSED)
            sl_ctx_cancel(m->ctx, SL_ECLOSED, "merge: output closed");
    }
    if (atomic_fetch_sub(&m->active, 1) == 1)
        sl_chan_close(m->out);
    return NULL;
}

/* Free the merge's memory (threads joined, context gone). */
static void merge_free(sl_merge *m)
{
    pthread_mutex_destroy(&m->mu);
    free(m->fwds);
    free(m);
}

/*
 * The forwarders wait on the start gate (mu, held here) so that if one
 * thread cannot be created, the ones already started leave without having
 * moved a single item.
 */
int sl_merge_start(sl_ctx *ctx, sl_chan *const *ins, size_t n, sl_chan *out,
                   sl_merge **out_merge)
{
    int rc;

    if (ins == NULL || n == 0 || out == NULL || out_merge == NULL)
        return SL_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (ins[i] == NULL)
            return SL_EINVAL;

    sl_merge *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return SL_ENOMEM;
    m->fwds = calloc(n, sizeof(*m->fwds));
    if (m->fwds == NULL) {
        free(m);
        return SL_ENOMEM;
    }
    pthread_mutex_init(&m->mu, NULL);
    m->out = out;
    m->n = n;
    atomic_init(&m->active, n);
    atomic_init(&m->result, 0);
    rc = ctx != NULL ? sl_ctx_create_child(ctx, &m->ctx)
                     : sl_ctx_create(&m->ctx);
    if (rc != 0)
        goto out_free_merge;

    size_t started = 0;
    pthread_mutex_lock(&m->mu);
    for (; started < n; started++) {
        m->fwds[started].m = m;
        m->fwds[started].in = ins[started];
        int err = pthread_create(&m->fwds[started].thread, NULL, fwd_main,
                                 &m->fwds[started]);
        if (err != 0) {
            rc = err == EAGAIN ? SL_EAGAIN : SL_EINTERNAL;
            m->aborted = true;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (rc != 0)
        goto out_join;
    *out_merge = m;
    return 0;

out_join:
    for (size_t i = 0; i < started; i++)
        pthread_join(m->fwds[i].thread, NULL);
    sl_ctx_destroy(m->ctx);
out_free_merge:
    merge_free(m);
    return rc;
}

/* Forwarders still running. Thread: any. */
size_t sl_merge_active(const sl_merge *m)
{
    return atomic_load(&((sl_merge *)m)->active);
}

/* Cancel the merge's own context. Thread: any. */
void sl_merge_stop(sl_merge *m)
{
    if (m != NULL)
        sl_ctx_cancel(m->ctx, SL_ECANCELED, "merge stopped");
}

/* Join every forwarder once; return the first error. Thread: owner. */
int sl_merge_wait(sl_merge *m)
{
    if (m == NULL)
        return SL_EINVAL;
    if (!m->joined) {
        for (size_t i = 0; i < m->n; i++)
            pthread_join(m->fwds[i].thread, NULL);
        m->joined = true;
    }
    return atomic_load(&m->result);
}

/* Stop, join, free. NULL: no-op. Thread: owner. */
void sl_merge_destroy(sl_merge *m)
{
    if (m == NULL)
        return;
    sl_merge_stop(m);
    sl_merge_wait(m);
    sl_ctx_destroy(m->ctx);
    merge_free(m);
}
