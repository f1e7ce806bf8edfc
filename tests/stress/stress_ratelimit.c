/*
 * Several threads sharing a limiter, a keyed limiter and a breaker.
 * Checks the invariants that must hold under any interleaving; run under
 * ThreadSanitizer to check the locking. Exit 0 on success.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "sluice/breaker.h"
#include "sluice/clock.h"
#include "sluice/error.h"
#include "sluice/ratelimit.h"

#define THREADS 4

static atomic_int failures;

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "stress_ratelimit:%d: %s: ", __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
            atomic_fetch_add(&failures, 1);                             \
        }                                                               \
    } while (0)

static void start_all(pthread_t *t, void *(*fn)(void *), void *args,
                      size_t arg_size)
{
    for (int i = 0; i < THREADS; i++) {
        if (pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * arg_size) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
}

static void join_all(pthread_t *t)
{
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

/* ------------------------------------------------------------------ */
/* 1. Real clock: waiting threads never beat the rate.                 */
/* ------------------------------------------------------------------ */

#define REAL_RATE 20000.0
#define REAL_BURST 50
#define REAL_PER_THREAD 1000

typedef struct real_arg {
    sl_limiter *l;
    int taken;
    int errors;
} real_arg;

static void *real_worker(void *p)
{
    real_arg *a = p;
    for (int i = 0; i < REAL_PER_THREAD; i++) {
        int64_t n = 1 + i % 3;
        if (sl_limiter_try(a->l, n)) {
            a->taken += (int)n;
            continue;
        }
        if (sl_limiter_wait(a->l, NULL, n) == 0)
            a->taken += (int)n;
        else
            a->errors++;
    }
    return NULL;
}

static void stress_real_clock(void)
{
    sl_limiter *l = NULL;
    if (sl_limiter_create(REAL_RATE, REAL_BURST, NULL, &l) != 0)
        exit(1);
    pthread_t t[THREADS];
    real_arg args[THREADS] = {{0}};
    for (int i = 0; i < THREADS; i++)
        args[i].l = l;
    int64_t t0 = sl_clock_now(NULL);
    start_all(t, real_worker, args, sizeof(args[0]));
    join_all(t);
    int64_t elapsed = sl_clock_now(NULL) - t0;
    int taken = 0;
    for (int i = 0; i < THREADS; i++) {
        taken += args[i].taken;
        CHECK(args[i].errors == 0, "thread %d: %d waits failed", i, args[i].errors);
    }
    /* Everything beyond the initial burst had to be earned at the rate. */
    double min_s = (taken - REAL_BURST) / REAL_RATE;
    CHECK((double)elapsed / 1e9 >= min_s - 1e-6,
          "%d tokens in %.4f s, at least %.4f s needed", taken,
          (double)elapsed / 1e9, min_s);
    sl_limiter_destroy(l);
}

/* ------------------------------------------------------------------ */
/* 2. Fake clock: tokens handed out never exceed what was earned.      */
/* ------------------------------------------------------------------ */

#define FAKE_RATE 1000.0
#define FAKE_BURST 20
#define FAKE_TICKS 2000
#define FAKE_TICK_NS (SL_NS_PER_MS / 4)

typedef struct fake_arg {
    sl_limiter *l;
    sl_keyed_limiter *kl;
    atomic_bool *stop;
    unsigned seed;
    long taken;
    long keyed_ok;
    long keyed_limited;
} fake_arg;

static void *fake_worker(void *p)
{
    fake_arg *a = p;
    char key[16];
    while (!atomic_load(a->stop)) {
        if (sl_limiter_try(a->l, 1))
            a->taken++;
        int k = rand_r(&a->seed) % 500;
        int len = snprintf(key, sizeof(key), "k%d", k);
        int64_t retry = 0;
        int rc = sl_keyed_limiter_try(a->kl, key, (size_t)len, 1, &retry);
        if (rc == 0) {
            a->keyed_ok++;
        } else {
            CHECK(rc == SL_ELIMIT, "keyed try: %d", rc);
            CHECK(retry > 0 && retry <= SL_NS_PER_S, "retry after %lld",
                  (long long)retry);
            a->keyed_limited++;
        }
        CHECK(sl_keyed_limiter_count(a->kl) <= 100, "map over its cap");
    }
    return NULL;
}

static void stress_fake_clock(void)
{
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    sl_limiter *l = NULL;
    sl_keyed_limiter *kl = NULL;
    sl_keyed_limiter_config kcfg = {.rate = 1, .burst = 2, .max_keys = 100,
                                    .clock = &fc.clock};
    if (sl_limiter_create(FAKE_RATE, FAKE_BURST, &fc.clock, &l) != 0 ||
        sl_keyed_limiter_create(&kcfg, &kl) != 0)
        exit(1);
    atomic_bool stop = false;
    pthread_t t[THREADS];
    fake_arg args[THREADS];
    for (int i = 0; i < THREADS; i++)
        args[i] = (fake_arg){l, kl, &stop, (unsigned)i * 7919u + 1, 0, 0, 0};
    start_all(t, fake_worker, args, sizeof(args[0]));
    for (int i = 0; i < FAKE_TICKS; i++) {
        sl_fake_clock_advance(&fc, FAKE_TICK_NS);
        if (i % 64 == 0)
            sl_keyed_limiter_sweep(kl);
        sched_yield();
    }
    atomic_store(&stop, true);
    join_all(t);
    long taken = 0, keyed = 0;
    for (int i = 0; i < THREADS; i++) {
        taken += args[i].taken;
        keyed += args[i].keyed_ok + args[i].keyed_limited;
    }
    double earned = FAKE_RATE * (double)FAKE_TICKS * FAKE_TICK_NS / 1e9;
    CHECK(taken <= FAKE_BURST + (long)earned, "took %ld, only %.0f + %d earned",
          taken, earned, FAKE_BURST);
    CHECK(taken + sl_limiter_tokens(l) <= FAKE_BURST + earned + 1e-6,
          "tokens created from nothing");
    CHECK(keyed > 0, "keyed limiter never used");
    CHECK(sl_keyed_limiter_count(kl) <= 100, "map over its cap");
    sl_keyed_limiter_destroy(kl);
    sl_limiter_destroy(l);
}

/* ------------------------------------------------------------------ */
/* 3. Breaker: one probe at a time, every transition reported.         */
/* ------------------------------------------------------------------ */

#define ROUNDS 300

static atomic_int opened_reports;
static atomic_int closed_reports;

static void on_change(void *arg, sl_breaker_state from, sl_breaker_state to)
{
    (void)arg;
    (void)from;
    if (to == SL_BREAKER_OPEN)
        atomic_fetch_add(&opened_reports, 1);
    else if (to == SL_BREAKER_CLOSED)
        atomic_fetch_add(&closed_reports, 1);
}

typedef struct probe_arg {
    sl_breaker *b;
    pthread_barrier_t *start;
    pthread_barrier_t *done;
    atomic_int *allowed;
} probe_arg;

/* Each round every thread asks at once; exactly one may be the probe. */
static void *probe_worker(void *p)
{
    probe_arg *a = p;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(a->start);
        if (sl_breaker_allow(a->b) == 0)
            atomic_fetch_add(a->allowed, 1);
        pthread_barrier_wait(a->done);
        pthread_barrier_wait(a->done);   /* main thread checks and resets */
    }
    return NULL;
}

static void stress_breaker_probe(void)
{
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    sl_breaker_config cfg = {.failures = 1, .cooldown_ns = SL_NS_PER_S,
                             .clock = &fc.clock, .on_change = on_change};
    sl_breaker *b = NULL;
    if (sl_breaker_create(&cfg, &b) != 0)
        exit(1);
    pthread_barrier_t start, done;
    pthread_barrier_init(&start, NULL, THREADS + 1);
    pthread_barrier_init(&done, NULL, THREADS + 1);
    atomic_int allowed = 0;
    pthread_t t[THREADS];
    probe_arg args[THREADS];
    for (int i = 0; i < THREADS; i++)
        args[i] = (probe_arg){b, &start, &done, &allowed};
    start_all(t, probe_worker, args, sizeof(args[0]));
    /* Open it once; every round waits out the cooldown, then probes. */
    sl_breaker_allow(b);
    sl_breaker_record(b, false);
    for (int r = 0; r < ROUNDS; r++) {
        sl_fake_clock_advance(&fc, SL_NS_PER_S);
        pthread_barrier_wait(&start);
        pthread_barrier_wait(&done);
        CHECK(atomic_load(&allowed) == 1, "round %d: %d probes", r,
              atomic_load(&allowed));
        atomic_store(&allowed, 0);
        /* The probe fails on even rounds (reopen), succeeds on odd ones. */
        sl_breaker_record(b, r % 2 == 1);
        if (r % 2 == 1) {             /* closed: fail once to reopen */
            sl_breaker_allow(b);
            sl_breaker_record(b, false);
        }
        pthread_barrier_wait(&done);
    }
    join_all(t);
    CHECK(sl_breaker_opens(b) == (uint64_t)ROUNDS + 1, "opens %llu",
          (unsigned long long)sl_breaker_opens(b));
    CHECK(atomic_load(&opened_reports) == ROUNDS + 1, "open reports %d",
          atomic_load(&opened_reports));
    CHECK(atomic_load(&closed_reports) == ROUNDS / 2, "close reports %d",
          atomic_load(&closed_reports));
    CHECK(sl_breaker_rejections(b) == (uint64_t)ROUNDS * (THREADS - 1),
          "rejections %llu", (unsigned long long)sl_breaker_rejections(b));
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&done);
    sl_breaker_destroy(b);
}

/* Free-running: random outcomes and clock moves; counters must agree. */
typedef struct chaos_arg {
    sl_breaker *b;
    sl_limiter *l;
    sl_fake_clock *fc;
    unsigned seed;
    long allowed;
    long rejected;
} chaos_arg;

static void *chaos_worker(void *p)
{
    chaos_arg *a = p;
    for (int i = 0; i < 20000; i++) {
        sl_limiter_try(a->l, 1);
        if (sl_breaker_allow(a->b) == 0) {
            a->allowed++;
            sl_breaker_record(a->b, rand_r(&a->seed) % 3 != 0);
        } else {
            a->rejected++;
        }
        if (rand_r(&a->seed) % 16 == 0)
            sl_fake_clock_advance(a->fc, SL_NS_PER_MS);
        sl_breaker_state s = sl_breaker_get_state(a->b);
        CHECK(s == SL_BREAKER_CLOSED || s == SL_BREAKER_OPEN ||
              s == SL_BREAKER_HALF_OPEN, "state %d", (int)s);
    }
    return NULL;
}

static void stress_breaker_chaos(void)
{
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    atomic_store(&opened_reports, 0);
    atomic_store(&closed_reports, 0);
    sl_breaker_config cfg = {.failures = 3, .cooldown_ns = 5 * SL_NS_PER_MS,
                             .clock = &fc.clock, .on_change = on_change};
    sl_breaker *b = NULL;
    sl_limiter *l = NULL;
    if (sl_breaker_create(&cfg, &b) != 0 ||
        sl_limiter_create(1000, 10, &fc.clock, &l) != 0)
        exit(1);
    pthread_t t[THREADS];
    chaos_arg args[THREADS];
    for (int i = 0; i < THREADS; i++)
        args[i] = (chaos_arg){b, l, &fc, (unsigned)i + 17u, 0, 0};
    start_all(t, chaos_worker, args, sizeof(args[0]));
    join_all(t);
    long rejected = 0;
    for (int i = 0; i < THREADS; i++)
        rejected += args[i].rejected;
    CHECK((uint64_t)rejected == sl_breaker_rejections(b), "rejections %ld vs %llu",
          rejected, (unsigned long long)sl_breaker_rejections(b));
    CHECK((uint64_t)atomic_load(&opened_reports) == sl_breaker_opens(b),
          "open reports %d vs opens %llu", atomic_load(&opened_reports),
          (unsigned long long)sl_breaker_opens(b));
    CHECK(sl_breaker_opens(b) > 0, "never opened");
    sl_limiter_destroy(l);
    sl_breaker_destroy(b);
}

int main(void)
{
    stress_real_clock();
    stress_fake_clock();
    stress_breaker_probe();
    stress_breaker_chaos();
    if (atomic_load(&failures) != 0) {
        fprintf(stderr, "stress_ratelimit: %d checks failed\n",
                atomic_load(&failures));
        return 1;
    }
    return 0;
}
