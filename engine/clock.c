/*
 * Clocks: the real monotonic clock and a manually driven fake for tests.
 *
 * The real clock sleeps through sl_ctx_sleep(), so a sleeping stage wakes as
 * soon as its context is cancelled. The fake clock never sleeps: it moves
 * its own time forward by the amount asked for and returns at once.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include "sluice/clock.h"
#include "sluice/context.h"

/* ------------------------------------------------------------ real clock */

static int64_t real_now_ns(const sl_clock *self)
{
    struct timespec ts;

    (void)self;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_S + ts.tv_nsec;
}

static int real_sleep_ns(const sl_clock *self, sl_ctx *ctx, int64_t ns)
{
    (void)self;
    return sl_ctx_sleep(ctx, ns);
}

static const sl_clock real_clock = {
    .now_ns = real_now_ns,
    .sleep_ns = real_sleep_ns,
};

/*
 * The process-wide CLOCK_MONOTONIC clock. Static storage: never freed.
 * Thread: any.
 */
const sl_clock *sl_clock_real(void)
{
    return &real_clock;
}

/* Current time of c, or of the real clock when c is NULL. Thread: any. */
int64_t sl_clock_now(const sl_clock *c)
{
    if (c == NULL)
        c = &real_clock;
    return c->now_ns(c);
}

/*
 * Sleep ns on c (the real clock when NULL), waking early with ctx's error
 * when ctx is done. Thread: any.
 */
int sl_clock_sleep(const sl_clock *c, sl_ctx *ctx, int64_t ns)
{
    if (c == NULL)
        c = &real_clock;
    return c->sleep_ns(c, ctx, ns);
}

/* ------------------------------------------------------------ fake clock */

static int64_t fake_now_ns(const sl_clock *self)
{
    const sl_fake_clock *fc = (const sl_fake_clock *)self;

    return atomic_load(&fc->now);
}

/*
 * A fake sleep: fail with the context's error if it is already done,
 * otherwise advance the fake time by ns (negative counts as 0) and record
 * the request in `slept`.
 */
static int fake_sleep_ns(const sl_clock *self, sl_ctx *ctx, int64_t ns)
{
    sl_fake_clock *fc = (sl_fake_clock *)self;

    if (ctx != NULL && sl_ctx_is_done(ctx))
        return sl_ctx_err(ctx);
    if (ns < 0)
        ns = 0;
    atomic_fetch_add(&fc->slept, ns);
    atomic_fetch_add(&fc->now, ns);
    return 0;
}

/* Set up fc at start_ns with nothing slept. Thread: owner. */
void sl_fake_clock_init(sl_fake_clock *fc, int64_t start_ns)
{
    fc->clock.now_ns = fake_now_ns;
    fc->clock.sleep_ns = fake_sleep_ns;
    atomic_init(&fc->now, start_ns);
    atomic_init(&fc->slept, 0);
}

/* Move fc's time forward by ns (may be negative in tests). Thread: any. */
void sl_fake_clock_advance(sl_fake_clock *fc, int64_t ns)
{
    atomic_fetch_add(&fc->now, ns);
}
