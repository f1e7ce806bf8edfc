/* Tests for engine/errgroup.c: the first error cancels the siblings with
 * its code and cause and is what wait returns; the concurrency limit holds
 * and a blocked go() wakes on cancel. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/context_internal.h"
#include "sluice/clock.h"
#include "sluice/context.h"
#include "sluice/error.h"
#include "sluice/patterns.h"

#define WAIT_UNTIL(cond)                                                    \
    do {                                                                    \
        int64_t wu_t0 = sl_clock_now(NULL);                                 \
        while (!(cond)) {                                                   \
            cr_assert_lt(sl_clock_now(NULL) - wu_t0, 10 * SL_NS_PER_S,      \
                         "timed out waiting for " #cond);                   \
            sched_yield();                                                  \
        }                                                                   \
    } while (0)

static atomic_int ran;

static int ok_task(sl_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    atomic_fetch_add(&ran, 1);
    return 0;
}

/* Blocks until the group's context is done; reports what woke it. */
static int sibling(sl_ctx *ctx, void *arg)
{
    atomic_int *seen = arg;
    int rc = sl_ctx_wait(ctx, INT64_MAX);
    atomic_store(seen, rc);
    return rc;
}

static int fail_io(sl_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    return SL_EIO;
}

Test(errgroup, all_succeed)
{
    sl_errgroup *g;

    cr_assert_eq(sl_errgroup_create(NULL, 0, &g), 0);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(sl_errgroup_go(g, ok_task, NULL), 0);
    cr_assert_eq(sl_errgroup_wait(g), 0);
    cr_assert_eq(atomic_load(&ran), 50);
    cr_assert(sl_ctx_is_done(sl_errgroup_ctx(g)), "done once wait returns");
    cr_assert_eq(sl_errgroup_go(g, ok_task, NULL), SL_ECANCELED,
                 "a finished group runs nothing more");
    cr_assert_eq(atomic_load(&ran), 50);
    cr_assert_eq(sl_errgroup_wait(g), 0);
    sl_errgroup_destroy(g);
    sl_errgroup_destroy(NULL);
}

Test(errgroup, first_error_cancels_blocked_siblings)
{
    enum { SIBS = 3 };
    atomic_int seen[SIBS];
    sl_errgroup *g;

    cr_assert_eq(sl_errgroup_create(NULL, 0, &g), 0);
    sl_ctx *gctx = sl_errgroup_ctx(g);
    for (int i = 0; i < SIBS; i++) {
        atomic_init(&seen[i], 1);
        cr_assert_eq(sl_errgroup_go(g, sibling, &seen[i]), 0);
    }
    WAIT_UNTIL(sl__ctx_waiter_count(gctx) == SIBS);
    cr_assert_not(sl_ctx_is_done(gctx));
    cr_assert_eq(sl_errgroup_go(g, fail_io, NULL), 0);
    cr_assert_eq(sl_errgroup_wait(g), SL_EIO);
    for (int i = 0; i < SIBS; i++)
        cr_assert_eq(atomic_load(&seen[i]), SL_EIO, "sibling %d woke", i);
    cr_assert_eq(sl_ctx_err(gctx), SL_EIO);
    cr_assert_str_eq(sl_ctx_cause(gctx), sl_strerror(SL_EIO));
    sl_errgroup_destroy(g);
}

struct detailed {
    sl_errgroup *g;
};

static int fail_detailed(sl_ctx *ctx, void *arg)
{
    struct detailed *d = arg;
    (void)ctx;
    sl_errgroup_fail(d->g, SL_EPARSE, "stage %s: bad JSON at line %d",
                     "parse", 12);
    return SL_EPARSE;
}

Test(errgroup, only_the_first_error_counts_and_keeps_its_cause)
{
    sl_errgroup *g;
    struct detailed d;

    cr_assert_eq(sl_errgroup_create(NULL, 0, &g), 0);
    d.g = g;
    cr_assert_eq(sl_errgroup_go(g, fail_detailed, &d), 0);
    WAIT_UNTIL(sl_ctx_is_done(sl_errgroup_ctx(g)));
    /* The group is failed: go refuses, and a later error changes nothing. */
    cr_assert_eq(sl_errgroup_go(g, fail_io, NULL), SL_EPARSE);
    sl_errgroup_fail(g, SL_EIO, "late");
    cr_assert_eq(sl_errgroup_wait(g), SL_EPARSE);
    cr_assert_eq(sl_ctx_err(sl_errgroup_ctx(g)), SL_EPARSE);
    cr_assert_str_eq(sl_ctx_cause(sl_errgroup_ctx(g)),
                     "stage parse: bad JSON at line 12");
    sl_errgroup_destroy(g);
}

Test(errgroup, parent_cancel_reaches_the_tasks)
{
    atomic_int seen;
    sl_errgroup *g;
    sl_ctx *parent;

    atomic_init(&seen, 1);
    cr_assert_eq(sl_ctx_create(&parent), 0);
    cr_assert_eq(sl_errgroup_create(parent, 0, &g), 0);
    cr_assert_eq(sl_errgroup_go(g, sibling, &seen), 0);
    WAIT_UNTIL(sl__ctx_waiter_count(sl_errgroup_ctx(g)) == 1);
    sl_ctx_cancel(parent, SL_ECANCELED, "interrupted");
    cr_assert_eq(sl_errgroup_wait(g), SL_ECANCELED);
    cr_assert_eq(atomic_load(&seen), SL_ECANCELED);
    cr_assert_str_eq(sl_ctx_cause(sl_errgroup_ctx(g)), "interrupted");
    sl_errgroup_destroy(g);
    sl_ctx_destroy(parent);
}

/* Limit: each task holds a slot until the test hands it a token. */
static pthread_mutex_t lim_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lim_cv = PTHREAD_COND_INITIALIZER;
static int running, max_running, tokens, finished;

static int limited(sl_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    pthread_mutex_lock(&lim_mu);
    running++;
    if (running > max_running)
        max_running = running;
    pthread_cond_broadcast(&lim_cv);
    while (tokens == 0)
        pthread_cond_wait(&lim_cv, &lim_mu);
    tokens--;
    running--;
    finished++;
    pthread_cond_broadcast(&lim_cv);
    pthread_mutex_unlock(&lim_mu);
    return 0;
}

struct launcher {
    sl_errgroup *g;
    int n;
    atomic_int started;
    int rc;
};

static void *launch_main(void *arg)
{
    struct launcher *l = arg;
    l->rc = 0;
    for (int i = 0; i < l->n; i++) {
        int rc = sl_errgroup_go(l->g, limited, NULL);
        if (rc != 0) {
            l->rc = rc;
            break;
        }
        atomic_fetch_add(&l->started, 1);
    }
    return NULL;
}

static int get_locked(int *v)
{
    pthread_mutex_lock(&lim_mu);
    int x = *v;
    pthread_mutex_unlock(&lim_mu);
    return x;
}

Test(errgroup, concurrency_limit_is_respected)
{
    enum { LIMIT = 3, TASKS = 12 };
    struct launcher l = { .n = TASKS };
    pthread_t th;

    cr_assert_eq(sl_errgroup_create(NULL, LIMIT, &l.g), 0);
    sl_ctx *gctx = sl_errgroup_ctx(l.g);
    cr_assert_eq(pthread_create(&th, NULL, launch_main, &l), 0);
    for (int done = 0; done < TASKS; done++) {
        /* Wait for the slots to fill and, while tasks remain to start, for
         * the launcher to block in go() (it waits on the group context). */
        int expect = TASKS - done < LIMIT ? TASKS - done : LIMIT;
        WAIT_UNTIL(get_locked(&running) == expect);
        if (done + LIMIT < TASKS) {
            WAIT_UNTIL(sl__ctx_waiter_count(gctx) == 1);
            cr_assert_eq(atomic_load(&l.started), done + LIMIT);
        }
        cr_assert_leq(get_locked(&max_running), LIMIT);
        pthread_mutex_lock(&lim_mu);
        tokens++;
        pthread_cond_broadcast(&lim_cv);
        while (finished == done)
            pthread_cond_wait(&lim_cv, &lim_mu);
        pthread_mutex_unlock(&lim_mu);
    }
    pthread_join(th, NULL);
    cr_assert_eq(l.rc, 0);
    cr_assert_eq(sl_errgroup_wait(l.g), 0);
    cr_assert_eq(max_running, LIMIT, "the limit was reached, never passed");
    cr_assert_eq(finished, TASKS);
    sl_errgroup_destroy(l.g);
}

Test(errgroup, go_blocked_on_the_limit_wakes_on_cancel)
{
    struct launcher l = { .n = 2 };
    sl_ctx *parent;
    pthread_t th;

    cr_assert_eq(sl_ctx_create(&parent), 0);
    cr_assert_eq(sl_errgroup_create(parent, 1, &l.g), 0);
    cr_assert_eq(pthread_create(&th, NULL, launch_main, &l), 0);
    WAIT_UNTIL(get_locked(&running) == 1 &&
               sl__ctx_waiter_count(sl_errgroup_ctx(l.g)) == 1);
    sl_ctx_cancel(parent, SL_ECANCELED, "shutting down");
    pthread_join(th, NULL);
    cr_assert_eq(l.rc, SL_ECANCELED, "go gave up instead of waiting");
    cr_assert_eq(atomic_load(&l.started), 1);
    pthread_mutex_lock(&lim_mu);
    tokens = 1;
    pthread_cond_broadcast(&lim_cv);
    pthread_mutex_unlock(&lim_mu);
    cr_assert_eq(sl_errgroup_wait(l.g), 0, "no task failed");
    cr_assert_eq(finished, 1);
    sl_errgroup_destroy(l.g);
    sl_ctx_destroy(parent);
}

Test(errgroup, rejects_bad_arguments)
{
    sl_errgroup *g;

    cr_assert_eq(sl_errgroup_create(NULL, 0, NULL), SL_EINVAL);
    cr_assert_eq(sl_errgroup_create(NULL, 0, &g), 0);
    cr_assert_eq(sl_errgroup_go(g, NULL, NULL), SL_EINVAL);
    cr_assert_eq(sl_errgroup_go(NULL, ok_task, NULL), SL_EINVAL);
    cr_assert_eq(sl_errgroup_wait(NULL), SL_EINVAL);
    sl_errgroup_fail(g, 0, "not an error");
    cr_assert_not(sl_ctx_is_done(sl_errgroup_ctx(g)));
    sl_errgroup_destroy(g);
}
