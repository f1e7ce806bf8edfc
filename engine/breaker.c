/*
 * Circuit breaker state machine. One mutex guards the state; a state change
 * is noted under the lock and reported to on_change after unlocking.
 */
#include "sluice/breaker.h"

#include <pthread.h>
#include <stdlib.h>

#include "sluice/error.h"

struct sl_breaker {
    pthread_mutex_t mu;
    uint32_t threshold;              /* immutable after create */
    int64_t cooldown_ns;             /* immutable after create */
    const sl_clock *clock;           /* immutable after create; borrowed */
    sl_breaker_change_fn on_change;  /* immutable after create */
    void *on_change_arg;             /* immutable after create */
    sl_breaker_state state;          /* guarded by mu */
    uint32_t failures;               /* guarded by mu; consecutive, closed */
    int64_t opened_ns;               /* guarded by mu; when it last opened */
    bool probing;                    /* guarded by mu; a probe is out */
    uint64_t opens;                  /* guarded by mu */
    uint64_t rejections;             /* guarded by mu */
};

/* A state change to report once the lock is released. */
typedef struct br_change {
    bool happened;
    sl_breaker_state from;
    sl_breaker_state to;
} br_change;

int sl_breaker_create(const sl_breaker_config *cfg, sl_breaker **out)
{
    if (cfg == NULL || out == NULL || cfg->failures == 0 || cfg->cooldown_ns < 0)
        return SL_EINVAL;
    sl_breaker *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return SL_ENOMEM;
    if (pthread_mutex_init(&b->mu, NULL) != 0)
        goto out_free_b;
    b->threshold = cfg->failures;
    b->cooldown_ns = cfg->cooldown_ns;
    b->clock = cfg->clock != NULL ? cfg->clock : sl_clock_real();
    b->on_change = cfg->on_change;
    b->on_change_arg = cfg->on_change_arg;
    b->state = SL_BREAKER_CLOSED;
    *out = b;
    return 0;
out_free_b:
    free(b);
    return SL_ENOMEM;
}

void sl_breaker_destroy(sl_breaker *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* Move to state `to`, noting the change for the report. Caller holds mu. */
static void br_set(sl_breaker *b, sl_breaker_state to, br_change *ch)
{
    ch->happened = true;
    ch->from = b->state;
    ch->to = to;
    b->state = to;
    b->probing = false;
    if (to == SL_BREAKER_OPEN) {
        b->opened_ns = sl_clock_now(b->clock);
        b->opens++;
    } else if (to == SL_BREAKER_CLOSED) {
        b->failures = 0;
    }
}

/* Open -> half-open once the cooldown has passed. Caller holds mu. */
static void br_check_cooldown(sl_breaker *b, br_change *ch)
{
    if (b->state == SL_BREAKER_OPEN &&
        sl_clock_now(b->clock) - b->opened_ns >= b->cooldown_ns)
        br_set(b, SL_BREAKER_HALF_OPEN, ch);
}

static void br_report(sl_breaker *b, const br_change *ch)
{
    if (ch->happened && b->on_change != NULL)
        b->on_change(b->on_change_arg, ch->from, ch->to);
}

int sl_breaker_allow(sl_breaker *b)
{
    br_change ch = {0};
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    br_check_cooldown(b, &ch);
    if (b->state == SL_BREAKER_HALF_OPEN && !b->probing) {
        b->probing = true;          /* this call is the probe */
    } else if (b->state != SL_BREAKER_CLOSED) {
        b->rejections++;            /* open, or a probe is already out */
        rc = SL_EBREAKER;
    }
    pthread_mutex_unlock(&b->mu);
    br_report(b, &ch);
    return rc;
}

void sl_breaker_record(sl_breaker *b, bool success)
{
    br_change ch = {0};
    pthread_mutex_lock(&b->mu);
    switch (b->state) {
    case SL_BREAKER_CLOSED:
        if (success) {
            b->failures = 0;
        } else if (++b->failures >= b->threshold) {
            br_set(b, SL_BREAKER_OPEN, &ch);
        }
        break;
    case SL_BREAKER_HALF_OPEN:
        /* Only the probe's result decides; a stray one before it is ignored. */
        if (b->probing)
            br_set(b, success ? SL_BREAKER_CLOSED : SL_BREAKER_OPEN, &ch);
        break;
    case SL_BREAKER_OPEN:
        /* A call let through before the breaker opened: too late to matter. */
        break;
    }
    pthread_mutex_unlock(&b->mu);
    br_report(b, &ch);
}

sl_breaker_state sl_breaker_get_state(sl_breaker *b)
{
    br_change ch = {0};
    pthread_mutex_lock(&b->mu);
    br_check_cooldown(b, &ch);
    sl_breaker_state s = b->state;
    pthread_mutex_unlock(&b->mu);
    br_report(b, &ch);
    return s;
}

const char *sl_breaker_state_name(sl_breaker_state s)
{
    switch (s) {
    case SL_BREAKER_CLOSED:
        return "closed";
    case SL_BREAKER_OPEN:
        return "open";
    case SL_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

int64_t sl_breaker_retry_in(sl_breaker *b)
{
    int64_t left = 0;
    pthread_mutex_lock(&b->mu);
    if (b->state == SL_BREAKER_OPEN) {
        left = b->opened_ns + b->cooldown_ns - sl_clock_now(b->clock);
        if (left < 0)
            left = 0;
    }
    pthread_mutex_unlock(&b->mu);
    return left;
}

uint64_t sl_breaker_opens(sl_breaker *b)
{
    pthread_mutex_lock(&b->mu);
    uint64_t n = b->opens;
    pthread_mutex_unlock(&b->mu);
    return n;
}

uint64_t sl_breaker_rejections(sl_breaker *b)
{
    pthread_mutex_lock(&b->mu);
    uint64_t n = b->rejections;
    pthread_mutex_unlock(&b->mu);
    return n;
}

uint32_t sl_breaker_failures(sl_breaker *b)
{
    pthread_mutex_lock(&b->mu);
    uint32_t n = b->failures;
    pthread_mutex_unlock(&b->mu);
    return n;
}
