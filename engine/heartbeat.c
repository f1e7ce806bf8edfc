/*
 * heartbeat and watchdog.
 *
 * A heartbeat is three atomics its owner writes without locking. The
 * watchdog keeps a list of registrations; a check walks it under a lock,
 * picks the heartbeats to report, and calls the callback after dropping
 * that lock. Registrations are reference counted so a heartbeat removed
 * while its report is being delivered is freed only afterwards.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/patterns.h"

/* ------------------------------------------------------------------ */
/* heartbeat                                                           */
/* ------------------------------------------------------------------ */

/* One pulse at the clock's current time. Thread: owner. */
void sl_heartbeat_init(sl_heartbeat *hb, const sl_clock *clock)
{
    hb->clock = clock;
    atomic_init(&hb->last_ns, sl_clock_now(clock));
    atomic_init(&hb->beats, 0);
    atomic_init(&hb->paused, false);
}

/*
 * The time is stored before the count is bumped (release), so a watchdog
 * that sees the new count (acquire) also sees the new time.
 */
void sl_heartbeat_pulse(sl_heartbeat *hb)
{
    atomic_store_explicit(&hb->last_ns, sl_clock_now(hb->clock),
                          memory_order_relaxed);
    atomic_store_explicit(&hb->paused, false, memory_order_relaxed);
    atomic_fetch_add_explicit(&hb->beats, 1, memory_order_release);
}

/* Silence stops counting until the next pulse. Thread: any. */
void sl_heartbeat_pause(sl_heartbeat *hb)
{
    atomic_store_explicit(&hb->paused, true, memory_order_release);
}

/* Time of the last pulse. Thread: any. */
int64_t sl_heartbeat_last(const sl_heartbeat *hb)
{
    return atomic_load_explicit(&((sl_heartbeat *)hb)->last_ns,
                                memory_order_acquire);
}

/* ------------------------------------------------------------------ */
/* watchdog                                                            */
/* ------------------------------------------------------------------ */

struct wd_entry {
    char *name;                  /* owned */
    sl_heartbeat *hb;            /* borrowed; NULL once removed */
    int refs;                    /* guarded by mu: list + reports in flight */
    bool reported;               /* guarded by mu: reported, no pulse since */
    uint64_t reported_beats;     /* guarded by mu: beats when reported */
    int64_t silent_ns;           /* check_mu: silence to report */
    struct wd_entry *next;       /* guarded by mu: registration list */
    struct wd_entry *report;     /* check_mu: this check's report list */
};

struct sl_watchdog {
    pthread_mutex_t mu;          /* guards the registrations */
    pthread_mutex_t check_mu;    /* serialises checks */
    struct wd_entry *entries;    /* guarded by mu */
    int64_t timeout_ns;          /* immutable after create */
    sl_watchdog_fn on_stuck;     /* immutable after create */
    void *arg;                   /* immutable after create */
    /* background thread; owner only */
    bool running;                /* thread started and not yet joined */
    sl_ctx *ctx;                 /* the thread's context; stop cancels it */
    int64_t interval_ns;         /* between checks */
    pthread_t thread;            /* the checking thread */
};

/* An empty watchdog, no thread yet. Thread: any. */
int sl_watchdog_create(int64_t timeout_ns, sl_watchdog_fn on_stuck,
                       void *arg, sl_watchdog **out)
{
    if (timeout_ns <= 0 || on_stuck == NULL || out == NULL)
        return SL_EINVAL;
    sl_watchdog *wd = calloc(1, sizeof(*wd));
    if (wd == NULL)
        return SL_ENOMEM;
    pthread_mutex_init(&wd->mu, NULL);
    pthread_mutex_init(&wd->check_mu, NULL);
    wd->timeout_ns = timeout_ns;
    wd->on_stuck = on_stuck;
    wd->arg = arg;
    *out = wd;
    return 0;
}

/* Free a registration nobody references any more. */
static void entry_free(struct wd_entry *e)
{
    free(e->name);
    free(e);
}

/* Stop the thread, free every registration and the watchdog.
 * NULL: no-op. Thread: owner. */
void sl_watchdog_destroy(sl_watchdog *wd)
{
    if (wd == NULL)
        return;
    sl_watchdog_stop(wd);
    struct wd_entry *e = wd->entries;
    while (e != NULL) {
        struct wd_entry *next = e->next;
        entry_free(e);
        e = next;
    }
    pthread_mutex_destroy(&wd->check_mu);
    pthread_mutex_destroy(&wd->mu);
    free(wd);
}

/* Register hb under a copy of name; refuses a heartbeat already watched.
 * Thread: any. */
int sl_watchdog_add(sl_watchdog *wd, const char *name, sl_heartbeat *hb)
{
    if (wd == NULL || name == NULL || hb == NULL)
        return SL_EINVAL;
    struct wd_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return SL_ENOMEM;
    e->name = strdup(name);
    if (e->name == NULL) {
        free(e);
        return SL_ENOMEM;
    }
    e->hb = hb;
    e->refs = 1;

    pthread_mutex_lock(&wd->mu);
    for (struct wd_entry *it = wd->entries; it != NULL; it = it->next) {
        if (it->hb == hb) {
            pthread_mutex_unlock(&wd->mu);
            entry_free(e);
            return SL_EEXISTS;
        }
    }
    e->next = wd->entries;
    wd->entries = e;
    pthread_mutex_unlock(&wd->mu);
    return 0;
}

/* Unlink hb's registration; it is freed now, or by the check still
 * delivering its report. Thread: any. */
int sl_watchdog_remove(sl_watchdog *wd, const sl_heartbeat *hb)
{
    struct wd_entry *gone = NULL;

    pthread_mutex_lock(&wd->mu);
    for (struct wd_entry **pp = &wd->entries; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->hb == hb) {
            struct wd_entry *e = *pp;
            *pp = e->next;
            e->hb = NULL;
            if (--e->refs == 0)
                gone = e;
            pthread_mutex_unlock(&wd->mu);
            if (gone != NULL)
                entry_free(gone);
            return 0;
        }
    }
    pthread_mutex_unlock(&wd->mu);
    return SL_ENOTFOUND;
}

/*
 * Under mu, decide who is reported: silent past the timeout, not paused,
 * and not already reported at this same pulse count. A heartbeat found
 * alive again is re-armed. The callbacks then run with mu released; the
 * extra reference keeps each reported entry's name alive through them.
 */
size_t sl_watchdog_check(sl_watchdog *wd, int64_t now_ns)
{
    struct wd_entry *reports = NULL, **tail = &reports;
    size_t count = 0;

    pthread_mutex_lock(&wd->check_mu);
    pthread_mutex_lock(&wd->mu);
    for (struct wd_entry *e = wd->entries; e != NULL; e = e->next) {
        sl_heartbeat *hb = e->hb;
        uint64_t beats = atomic_load_explicit(&hb->beats, memory_order_acquire);
        if (atomic_load_explicit(&hb->paused, memory_order_acquire))
            continue;
        int64_t silent = now_ns - atomic_load_explicit(&hb->last_ns,
                                                       memory_order_acquire);
        if (silent <= wd->timeout_ns) {
            e->reported = false;
            continue;
        }
        if (e->reported && e->reported_beats == beats)
            continue;
        e->reported = true;
        e->reported_beats = beats;
        e->silent_ns = silent;
        e->refs++;
        e->report = NULL;
        *tail = e;
        tail = &e->report;
    }
    pthread_mutex_unlock(&wd->mu);

    for (struct wd_entry *e = reports; e != NULL; e = e->report) {
        wd->on_stuck(e->name, e->silent_ns, wd->arg);
        count++;
    }

    struct wd_entry *gone = NULL;
    pthread_mutex_lock(&wd->mu);
    for (struct wd_entry *e = reports, *next; e != NULL; e = next) {
        next = e->report;
        if (--e->refs == 0) {
            e->report = gone;
            gone = e;
        }
    }
    pthread_mutex_unlock(&wd->mu);
    pthread_mutex_unlock(&wd->check_mu);

    while (gone != NULL) {
        struct wd_entry *next = gone->report;
        entry_free(gone);
        gone = next;
    }
    return count;
}

/* The background thread: sleep an interval (ends at once on cancel),
 * check against the real clock, repeat. */
static void *watchdog_main(void *p)
{
    sl_watchdog *wd = p;
    while (sl_ctx_sleep(wd->ctx, wd->interval_ns) == 0)
        sl_watchdog_check(wd, sl_clock_now(NULL));
    return NULL;
}

/* Start the background thread under a child of ctx. Thread: owner. */
int sl_watchdog_start(sl_watchdog *wd, sl_ctx *ctx, int64_t interval_ns)
{
    int rc;

    if (wd == NULL || interval_ns <= 0)
        return SL_EINVAL;
    if (wd->running)
        return SL_EEXISTS;
    rc = ctx != NULL ? sl_ctx_create_child(ctx, &wd->ctx)
                     : sl_ctx_create(&wd->ctx);
    if (rc != 0)
        return rc;
    wd->interval_ns = interval_ns;
    int err = pthread_create(&wd->thread, NULL, watchdog_main, wd);
    if (err != 0) {
        sl_ctx_destroy(wd->ctx);
        wd->ctx = NULL;
        return err == EAGAIN ? SL_EAGAIN : SL_EINTERNAL;
    }
    wd->running = true;
    return 0;
}

/* Cancel the thread's context and join it. Thread: owner. */
void sl_watchdog_stop(sl_watchdog *wd)
{
    if (wd == NULL || !wd->running)
        return;
    sl_ctx_cancel(wd->ctx, SL_ECANCELED, "watchdog stopped");
    pthread_join(wd->thread, NULL);
    sl_ctx_destroy(wd->ctx);
    wd->ctx = NULL;
    wd->running = false;
}
