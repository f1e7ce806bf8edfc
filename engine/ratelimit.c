/*
 * Token buckets: sl_limiter (one bucket, shared) and sl_keyed_limiter (a
 * bounded map of buckets with LRU and idle-TTL eviction).
 *
 * A bucket is (tokens, time of last refill). Tokens are a double so that
 * fractional rates work. Every decision is made in time: n tokens are there
 * when the time still needed to earn them is within NS_TOL of zero. The
 * tolerance, far below the clock's 1 ns grain, absorbs rounding, so the
 * computed waits are the exact ceilings one expects (100 ms for one token
 * at 10/s, 333333334 ns at 3/s) and waiting that long suffices.
 */
#include "sluice/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sluice/error.h"

#define NS_TOL 1e-3
/* Upper bound for any computed wait, far beyond any real use. */
#define WAIT_MAX_NS (INT64_MAX / 4)

/* ------------------------------------------------------------------ */
/* Bucket arithmetic (callers hold the owning lock)                    */
/* ------------------------------------------------------------------ */

typedef struct rl_bucket {
    double tokens;       /* may be negative after reservations */
    int64_t last_ns;     /* clock time of the last refill */
} rl_bucket;

static bool rl_params_valid(double rate, int64_t burst)
{
    return isfinite(rate) && rate > 0 && burst >= 1;
}

/* Add the tokens earned since the last refill, up to burst. */
static void rl_refill(rl_bucket *b, double rate, int64_t burst, int64_t now)
{
    if (now > b->last_ns) {
        b->tokens += (double)(now - b->last_ns) * rate / (double)SL_NS_PER_S;
        if (b->tokens > (double)burst)
            b->tokens = (double)burst;
        b->last_ns = now;
    }
}

/* Nanoseconds until the bucket holds n tokens (0 if it does now). */
static int64_t rl_shortfall_ns(const rl_bucket *b, double rate, int64_t n)
{
    double ns = ((double)n - b->tokens) * (double)SL_NS_PER_S / rate;
    if (ns <= NS_TOL)
        return 0;
    ns = ceil(ns - NS_TOL);
    if (ns >= (double)WAIT_MAX_NS)
        return WAIT_MAX_NS;
    return (int64_t)ns;
}

static bool rl_has(const rl_bucket *b, double rate, int64_t n)
{
    return rl_shortfall_ns(b, rate, n) == 0;
}

static void rl_take(rl_bucket *b, double rate, int64_t n)
{
    b->tokens -= (double)n;
    /* Rounding dust worth less than NS_TOL of refill is no token at all. */
    if (fabs(b->tokens) * (double)SL_NS_PER_S / rate <= NS_TOL)
        b->tokens = 0;
}

/* ------------------------------------------------------------------ */
/* sl_limiter                                                          */
/* ------------------------------------------------------------------ */

struct sl_limiter {
    pthread_mutex_t mu;
    double rate;            /* immutable after create */
    int64_t burst;          /* immutable after create */
    const sl_clock *clock;  /* immutable after create; borrowed */
    rl_bucket b;            /* guarded by mu */
};

int sl_limiter_create(double rate, int64_t burst, const sl_clock *clock,
                      sl_limiter **out)
{
    if (!rl_params_valid(rate, burst) || out == NULL)
        return SL_EINVAL;
    sl_limiter *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return SL_ENOMEM;
    if (pthread_mutex_init(&l->mu, NULL) != 0)
        goto out_free_l;
    l->rate = rate;
    l->burst = burst;
    l->clock = clock != NULL ? clock : sl_clock_real();
    l->b.tokens = (double)burst;
    l->b.last_ns = sl_clock_now(l->clock);
    *out = l;
    return 0;
out_free_l:
    free(l);
    return SL_ENOMEM;
}

void sl_limiter_destroy(sl_limiter *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

bool sl_limiter_try(sl_limiter *l, int64_t n)
{
    if (n < 1 || n > l->burst)
        return false;
    pthread_mutex_lock(&l->mu);
    rl_refill(&l->b, l->rate, l->burst, sl_clock_now(l->clock));
    bool ok = rl_has(&l->b, l->rate, n);
    if (ok)
        rl_take(&l->b, l->rate, n);
    pthread_mutex_unlock(&l->mu);
    return ok;
}

int sl_limiter_reserve(sl_limiter *l, int64_t n, int64_t *wait_ns)
{
    if (n < 1 || n > l->burst || wait_ns == NULL)
        return SL_EINVAL;
    pthread_mutex_lock(&l->mu);
    rl_refill(&l->b, l->rate, l->burst, sl_clock_now(l->clock));
    int64_t wait = rl_shortfall_ns(&l->b, l->rate, n);
    rl_take(&l->b, l->rate, n);
    pthread_mutex_unlock(&l->mu);
    *wait_ns = wait;
    return 0;
}

int sl_limiter_wait(sl_limiter *l, sl_ctx *ctx, int64_t n)
{
    if (n < 1 || n > l->burst)
        return SL_EINVAL;
    for (;;) {
        /* Cancellation wins, even over tokens that are there. */
        if (ctx != NULL && sl_ctx_is_done(ctx))
            return sl_ctx_err(ctx);
        pthread_mutex_lock(&l->mu);
        rl_refill(&l->b, l->rate, l->burst, sl_clock_now(l->clock));
        int64_t wait = rl_shortfall_ns(&l->b, l->rate, n);
        if (wait == 0)
            rl_take(&l->b, l->rate, n);
        pthread_mutex_unlock(&l->mu);
        if (wait == 0)
            return 0;
        /* Another taker may get there first; then we go round again. */
        int rc = l->clock->sleep_ns(l->clock, ctx, wait);
        if (rc != 0)
            return rc;
    }
}

double sl_limiter_tokens(sl_limiter *l)
{
    pthread_mutex_lock(&l->mu);
    rl_refill(&l->b, l->rate, l->burst, sl_clock_now(l->clock));
    double t = l->b.tokens;
    pthread_mutex_unlock(&l->mu);
    return t;
}

double sl_limiter_rate(const sl_limiter *l)
{
    return l->rate;
}

int64_t sl_limiter_burst(const sl_limiter *l)
{
    return l->burst;
}

/* ------------------------------------------------------------------ */
/* Keyed hashing                                                       */
/* ------------------------------------------------------------------ */

/*
 * SipHash-1-3 with a per-map random key: keys come from clients, and a
 * predictable hash would let one client pile every key into one chain.
 */
static uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3)                                        \
    do {                                                                \
        v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);   \
        v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                        \
        v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                        \
        v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);   \
    } while (0)

static uint64_t siphash13(const uint64_t k[2], const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v0 = k[0] ^ UINT64_C(0x736f6d6570736575);
    uint64_t v1 = k[1] ^ UINT64_C(0x646f72616e646f6d);
    uint64_t v2 = k[0] ^ UINT64_C(0x6c7967656e657261);
    uint64_t v3 = k[1] ^ UINT64_C(0x7465646279746573);
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = 0;
        for (int j = 7; j >= 0; j--)
            m = (m << 8) | p[i + (size_t)j];
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t j = 0; j < len % 8; j++)
        last |= (uint64_t)p[whole + j] << (8 * j);
    v3 ^= last;
    SIPROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ------------------------------------------------------------------ */
/* sl_keyed_limiter                                                    */
/* ------------------------------------------------------------------ */

typedef struct kl_entry {
    struct kl_entry *hnext;     /* hash chain */
    struct kl_entry *newer;     /* LRU list, towards the most recent */
    struct kl_entry *older;     /* LRU list, towards the least recent */
    uint64_t hash;
    int64_t used_ns;            /* last try() on this key */
    rl_bucket b;
    size_t key_len;
    unsigned char key[];        /* key_len bytes */
} kl_entry;

struct sl_keyed_limiter {
    pthread_mutex_t mu;
    double rate;                /* immutable after create */
    int64_t burst;              /* immutable after create */
    int64_t ttl_ns;             /* immutable after create */
    size_t max_keys;            /* immutable after create */
    const sl_clock *clock;      /* immutable after create; borrowed */
    uint64_t hkey[2];           /* immutable after create */
    kl_entry **table;           /* guarded by mu; power-of-two size */
    size_t table_size;          /* guarded by mu */
    size_t count;               /* guarded by mu */
    kl_entry *newest;           /* guarded by mu */
    kl_entry *oldest;           /* guarded by mu */
    uint64_t evictions;         /* guarded by mu */
};

#define KL_DEFAULT_MAX_KEYS 65536
#define KL_INITIAL_TABLE 16

static void kl_seed(uint64_t k[2])
{
    if (getrandom(k, 2 * sizeof(uint64_t), GRND_NONBLOCK) ==
        (ssize_t)(2 * sizeof(uint64_t)))
        return;
    /* No entropy yet (early boot): time and addresses still vary. */
    uint64_t t = (uint64_t)sl_clock_now(NULL);
    k[0] = t ^ (uint64_t)(uintptr_t)k;
    k[1] = rotl64(t, 29) ^ (uint64_t)(uintptr_t)&kl_seed;
}

int sl_keyed_limiter_create(const sl_keyed_limiter_config *cfg,
                            sl_keyed_limiter **out)
{
    if (cfg == NULL || out == NULL || !rl_params_valid(cfg->rate, cfg->burst) ||
        cfg->idle_ttl_ns < 0)
        return SL_EINVAL;
    sl_keyed_limiter *kl = calloc(1, sizeof(*kl));
    if (kl == NULL)
        return SL_ENOMEM;
    kl->table = calloc(KL_INITIAL_TABLE, sizeof(*kl->table));
    if (kl->table == NULL)
        goto out_free_kl;
    if (pthread_mutex_init(&kl->mu, NULL) != 0)
        goto out_free_table;
    kl->table_size = KL_INITIAL_TABLE;
    kl->rate = cfg->rate;
    kl->burst = cfg->burst;
    kl->max_keys = cfg->max_keys != 0 ? cfg->max_keys : KL_DEFAULT_MAX_KEYS;
    kl->clock = cfg->clock != NULL ? cfg->clock : sl_clock_real();
    if (cfg->idle_ttl_ns > 0) {
        kl->ttl_ns = cfg->idle_ttl_ns;
    } else {
        double fill = ceil((double)cfg->burst * (double)SL_NS_PER_S / cfg->rate);
        kl->ttl_ns = fill >= (double)WAIT_MAX_NS ? WAIT_MAX_NS : (int64_t)fill;
    }
    kl_seed(kl->hkey);
    *out = kl;
    return 0;
out_free_table:
    free(kl->table);
out_free_kl:
    free(kl);
    return SL_ENOMEM;
}

void sl_keyed_limiter_destroy(sl_keyed_limiter *kl)
{
    if (kl == NULL)
        return;
    kl_entry *e = kl->newest;
    while (e != NULL) {
        kl_entry *next = e->older;
        free(e);
        e = next;
    }
    free(kl->table);
    pthread_mutex_destroy(&kl->mu);
    free(kl);
}

static void kl_lru_unlink(sl_keyed_limiter *kl, kl_entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        kl->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        kl->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void kl_lru_push_newest(sl_keyed_limiter *kl, kl_entry *e)
{
    e->newer = NULL;
    e->older = kl->newest;
    if (kl->newest != NULL)
        kl->newest->newer = e;
    kl->newest = e;
    if (kl->oldest == NULL)
        kl->oldest = e;
}

static void kl_evict(sl_keyed_limiter *kl, kl_entry *e)
{
    kl_entry **pp = &kl->table[e->hash & (kl->table_size - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    kl_lru_unlink(kl, e);
    kl->count--;
    kl->evictions++;
    free(e);
}

/* Evict from the old end while buckets are idle longer than the TTL. */
static size_t kl_evict_expired(sl_keyed_limiter *kl, int64_t now)
{
    size_t n = 0;
    while (kl->oldest != NULL && now - kl->oldest->used_ns > kl->ttl_ns) {
        kl_evict(kl, kl->oldest);
        n++;
    }
    return n;
}

/* Double the table; on allocation failure keep the old one (chains grow). */
static void kl_grow(sl_keyed_limiter *kl)
{
    size_t size = kl->table_size * 2;
    kl_entry **t = calloc(size, sizeof(*t));
    if (t == NULL)
        return;
    for (size_t i = 0; i < kl->table_size; i++) {
        kl_entry *e = kl->table[i];
        while (e != NULL) {
            kl_entry *next = e->hnext;
            size_t slot = e->hash & (size - 1);
            e->hnext = t[slot];
            t[slot] = e;
            e = next;
        }
    }
    free(kl->table);
    kl->table = t;
    kl->table_size = size;
}

static kl_entry *kl_find(sl_keyed_limiter *kl, uint64_t h, const void *key,
                         size_t key_len)
{
    for (kl_entry *e = kl->table[h & (kl->table_size - 1)]; e != NULL;
         e = e->hnext) {
        if (e->hash == h && e->key_len == key_len &&
            (key_len == 0 || memcmp(e->key, key, key_len) == 0))
            return e;
    }
    return NULL;
}

int sl_keyed_limiter_try(sl_keyed_limiter *kl, const void *key,
                         size_t key_len, int64_t n, int64_t *retry_after_ns)
{
    if (n < 1 || n > kl->burst || (key == NULL && key_len > 0))
        return SL_EINVAL;
    uint64_t h = siphash13(kl->hkey, key, key_len);
    int rc = 0;

    pthread_mutex_lock(&kl->mu);
    int64_t now = sl_clock_now(kl->clock);
    kl_evict_expired(kl, now);
    kl_entry *e = kl_find(kl, h, key, key_len);
    if (e == NULL) {
        e = malloc(sizeof(*e) + key_len);
        if (e == NULL) {
            rc = SL_ENOMEM;
            goto out_unlock;
        }
        if (kl->count >= kl->max_keys)
            kl_evict(kl, kl->oldest);
        e->hash = h;
        e->key_len = key_len;
        if (key_len > 0)
            memcpy(e->key, key, key_len);
        e->b.tokens = (double)kl->burst;
        e->b.last_ns = now;
        size_t slot = h & (kl->table_size - 1);
        e->hnext = kl->table[slot];
        kl->table[slot] = e;
        kl_lru_push_newest(kl, e);
        kl->count++;
        if (kl->count > kl->table_size / 4 * 3)
            kl_grow(kl);
    } else if (e != kl->newest) {
        kl_lru_unlink(kl, e);
        kl_lru_push_newest(kl, e);
    }
    e->used_ns = now;
    rl_refill(&e->b, kl->rate, kl->burst, now);
    if (rl_has(&e->b, kl->rate, n)) {
        rl_take(&e->b, kl->rate, n);
    } else {
        rc = SL_ELIMIT;
        if (retry_after_ns != NULL)
            *retry_after_ns = rl_shortfall_ns(&e->b, kl->rate, n);
    }
out_unlock:
    pthread_mutex_unlock(&kl->mu);
    return rc;
}

size_t sl_keyed_limiter_sweep(sl_keyed_limiter *kl)
{
    pthread_mutex_lock(&kl->mu);
    size_t n = kl_evict_expired(kl, sl_clock_now(kl->clock));
    pthread_mutex_unlock(&kl->mu);
    return n;
}

size_t sl_keyed_limiter_count(sl_keyed_limiter *kl)
{
    pthread_mutex_lock(&kl->mu);
    size_t n = kl->count;
    pthread_mutex_unlock(&kl->mu);
    return n;
}

uint64_t sl_keyed_limiter_evictions(sl_keyed_limiter *kl)
{
    pthread_mutex_lock(&kl->mu);
    uint64_t n = kl->evictions;
    pthread_mutex_unlock(&kl->mu);
    return n;
}
