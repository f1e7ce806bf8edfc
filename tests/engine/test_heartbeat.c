/* Tests for engine/heartbeat.c: a stuck heartbeat reported exactly once
 * (until it pulses again) on a fake clock, pauses, registration errors,
 * removal from the callback, and the background thread. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/patterns.h"

#define MS SL_NS_PER_MS

struct report {
    char names[16][32];
    int64_t silent[16];
    int n;
    sl_watchdog *wd;            /* for remove */
    sl_heartbeat *remove;       /* remove this one from inside the callback */
};

static void on_stuck(const char *name, int64_t silent_ns, void *arg)
{
    struct report *r = arg;
    cr_assert_lt(r->n, 16);
    strncpy(r->names[r->n], name, sizeof(r->names[0]) - 1);
    r->silent[r->n] = silent_ns;
    r->n++;
    if (r->remove != NULL) {
        cr_assert_eq(sl_watchdog_remove(r->wd, r->remove), 0);
        r->remove = NULL;
    }
}

static int64_t now(sl_fake_clock *fc)
{
    return sl_clock_now(&fc->clock);
}

Test(heartbeat, stuck_heartbeat_is_reported_exactly_once_until_it_pulses)
{
    sl_fake_clock fc;
    sl_heartbeat hb;
    struct report r = { 0 };
    sl_watchdog *wd;

    sl_fake_clock_init(&fc, 1000 * MS);
    sl_heartbeat_init(&hb, &fc.clock);
    cr_assert_eq(sl_heartbeat_last(&hb), 1000 * MS);
    cr_assert_eq(sl_watchdog_create(100 * MS, on_stuck, &r, &wd), 0);
    cr_assert_eq(sl_watchdog_add(wd, "parse", &hb), 0);

    sl_fake_clock_advance(&fc, 100 * MS);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 0, "exactly the timeout");
    sl_fake_clock_advance(&fc, 1);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 1, "past the timeout");
    cr_assert_str_eq(r.names[0], "parse");
    cr_assert_eq(r.silent[0], 100 * MS + 1);
    for (int i = 0; i < 5; i++) {
        sl_fake_clock_advance(&fc, 500 * MS);
        cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 0, "reported once");
    }
    cr_assert_eq(r.n, 1);

    /* A pulse re-arms it, even one at the same fake instant. */
    sl_heartbeat_pulse(&hb);
    cr_assert_eq(sl_heartbeat_last(&hb), now(&fc));
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 0);
    sl_fake_clock_advance(&fc, 150 * MS);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 1, "stuck again");
    cr_assert_eq(r.silent[1], 150 * MS);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 0);

    /* Pulsing, with the silence still over the timeout at check time
     * (the check runs at a later time than the pulse), still counts as a
     * pulse: reported again, once. */
    sl_heartbeat_pulse(&hb);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc) + 200 * MS), 1);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc) + 300 * MS), 0);
    cr_assert_eq(r.n, 3);
    sl_watchdog_destroy(wd);
}

Test(heartbeat, only_the_silent_ones_are_reported)
{
    sl_fake_clock fc;
    sl_heartbeat a, b, c;
    struct report r = { 0 };
    sl_watchdog *wd;

    sl_fake_clock_init(&fc, 0);
    sl_heartbeat_init(&a, &fc.clock);
    sl_heartbeat_init(&b, &fc.clock);
    sl_heartbeat_init(&c, &fc.clock);
    cr_assert_eq(sl_watchdog_create(10 * MS, on_stuck, &r, &wd), 0);
    cr_assert_eq(sl_watchdog_add(wd, "a", &a), 0);
    cr_assert_eq(sl_watchdog_add(wd, "b", &b), 0);
    cr_assert_eq(sl_watchdog_add(wd, "c", &c), 0);
    for (int i = 0; i < 10; i++) {
        sl_fake_clock_advance(&fc, 5 * MS);
        sl_heartbeat_pulse(&a);
        if (i < 2)
            sl_heartbeat_pulse(&c);
        sl_watchdog_check(wd, now(&fc));
    }
    /* b silent since 0 (reported at 15 ms), c since 10 ms (at 25 ms). */
    cr_assert_eq(r.n, 2);
    cr_assert_str_eq(r.names[0], "b");
    cr_assert_eq(r.silent[0], 15 * MS);
    cr_assert_str_eq(r.names[1], "c");
    cr_assert_eq(r.silent[1], 15 * MS);
    sl_watchdog_destroy(wd);
}

Test(heartbeat, paused_heartbeat_is_not_reported)
{
    sl_fake_clock fc;
    sl_heartbeat hb;
    struct report r = { 0 };
    sl_watchdog *wd;

    sl_fake_clock_init(&fc, 0);
    sl_heartbeat_init(&hb, &fc.clock);
    cr_assert_eq(sl_watchdog_create(10 * MS, on_stuck, &r, &wd), 0);
    cr_assert_eq(sl_watchdog_add(wd, "idle", &hb), 0);
    sl_heartbeat_pause(&hb);            /* waiting on an empty input */
    sl_fake_clock_advance(&fc, 1000 * MS);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 0);
    sl_heartbeat_pulse(&hb);            /* got work: counting again */
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 0);
    sl_fake_clock_advance(&fc, 11 * MS);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 1);
    cr_assert_eq(r.silent[0], 11 * MS);
    sl_watchdog_destroy(wd);
}

Test(heartbeat, registration_errors_and_removal)
{
    sl_fake_clock fc;
    sl_heartbeat a, b;
    struct report r = { 0 };
    sl_watchdog *wd = (sl_watchdog *)0x1;

    cr_assert_eq(sl_watchdog_create(0, on_stuck, &r, &wd), SL_EINVAL);
    cr_assert_eq(sl_watchdog_create(MS, NULL, &r, &wd), SL_EINVAL);
    cr_assert_eq(wd, (sl_watchdog *)0x1);
    sl_fake_clock_init(&fc, 0);
    sl_heartbeat_init(&a, &fc.clock);
    sl_heartbeat_init(&b, &fc.clock);
    cr_assert_eq(sl_watchdog_create(MS, on_stuck, &r, &wd), 0);
    cr_assert_eq(sl_watchdog_add(wd, NULL, &a), SL_EINVAL);
    cr_assert_eq(sl_watchdog_add(wd, "a", NULL), SL_EINVAL);
    cr_assert_eq(sl_watchdog_add(wd, "a", &a), 0);
    cr_assert_eq(sl_watchdog_add(wd, "again", &a), SL_EEXISTS);
    cr_assert_eq(sl_watchdog_add(wd, "b", &b), 0);
    cr_assert_eq(sl_watchdog_remove(wd, &a), 0);
    cr_assert_eq(sl_watchdog_remove(wd, &a), SL_ENOTFOUND);
    sl_fake_clock_advance(&fc, 10 * MS);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 1);
    cr_assert_str_eq(r.names[0], "b", "a removed is never reported");
    cr_assert_eq(sl_watchdog_start(wd, NULL, 0), SL_EINVAL);
    sl_watchdog_stop(wd);   /* not running: no-op */
    sl_watchdog_destroy(wd);
    sl_watchdog_destroy(NULL);
}

Test(heartbeat, callback_may_remove_the_reported_heartbeat)
{
    sl_fake_clock fc;
    sl_heartbeat a, b;
    struct report r = { 0 };
    sl_watchdog *wd;

    sl_fake_clock_init(&fc, 0);
    sl_heartbeat_init(&a, &fc.clock);
    sl_heartbeat_init(&b, &fc.clock);
    cr_assert_eq(sl_watchdog_create(MS, on_stuck, &r, &wd), 0);
    cr_assert_eq(sl_watchdog_add(wd, "a", &a), 0);
    cr_assert_eq(sl_watchdog_add(wd, "b", &b), 0);
    r.wd = wd;
    r.remove = &a;          /* the first report removes a */
    sl_fake_clock_advance(&fc, 2 * MS);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 2,
                 "a's report, already chosen, is still delivered");
    cr_assert_null(r.remove);
    cr_assert_eq(sl_watchdog_remove(wd, &a), SL_ENOTFOUND);
    sl_heartbeat_pulse(&b);
    sl_fake_clock_advance(&fc, 2 * MS);
    cr_assert_eq(sl_watchdog_check(wd, now(&fc)), 1);
    cr_assert_str_eq(r.names[2], "b");
    sl_watchdog_destroy(wd);
}

/* Background thread: the report is signalled through a condition. */
struct bg {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int reports;
    char name[32];
};

static void bg_stuck(const char *name, int64_t silent_ns, void *arg)
{
    struct bg *g = arg;
    cr_assert_gt(silent_ns, MS);
    pthread_mutex_lock(&g->mu);
    g->reports++;
    strncpy(g->name, name, sizeof(g->name) - 1);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

Test(heartbeat, background_thread_reports_once_and_stops)
{
    struct bg g = { .mu = PTHREAD_MUTEX_INITIALIZER,
                    .cv = PTHREAD_COND_INITIALIZER };
    sl_heartbeat hb;
    sl_watchdog *wd;
    sl_ctx *parent;

    cr_assert_eq(sl_ctx_create(&parent), 0);
    sl_heartbeat_init(&hb, NULL);
    cr_assert_eq(sl_watchdog_create(MS, bg_stuck, &g, &wd), 0);
    cr_assert_eq(sl_watchdog_add(wd, "stuck", &hb), 0);
    cr_assert_eq(sl_watchdog_start(wd, parent, MS), 0);
    cr_assert_eq(sl_watchdog_start(wd, parent, MS), SL_EEXISTS);
    pthread_mutex_lock(&g.mu);
    while (g.reports == 0)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    cr_assert_str_eq(g.name, "stuck");
    /* The thread ends when the parent is done; stop then only joins. */
    sl_ctx_cancel(parent, SL_ECANCELED, NULL);
    sl_watchdog_stop(wd);
    cr_assert_eq(g.reports, 1, "never pulsed again: reported once");

    /* Restart after a stop, then destroy while running. */
    cr_assert_eq(sl_watchdog_start(wd, NULL, 1000 * MS), 0);
    sl_watchdog_destroy(wd);
    sl_ctx_destroy(parent);
}
