/* or-done: read a channel until it closes or the context is done. */
#include "sluice/patterns.h"

#include "sluice/error.h"

/*
 * One receive per item, not a batch: fn may stop the loop at any item, and
 * the items after it must stay in the channel for someone else, since only
 * the channel knows how to free them.
 */
int sl_chan_for_each(sl_chan *in, sl_ctx *ctx, sl_item_fn fn, void *arg)
{
    if (in == NULL || fn == NULL)
        return SL_EINVAL;
    for (;;) {
        void *item;
        int rc = sl_chan_recv(in, ctx, &item);
        if (rc == SL_ECLOSED)
            return 0;
        if (rc != 0)
            return rc;
        rc = fn(item, arg);
        if (rc != 0)
            return rc;
    }
}
