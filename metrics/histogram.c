/*
 * Latency histograms (log-bucketed, single writer) and the per-worker
 * sampler that picks the records to time. See metrics/histogram.h for the
 * bucket layout, the error bound and the sampling rule.
 */
#include "metrics/histogram.h"

#include <stddef.h>

/* counter += n for a single-writer counter: no read-modify-write needed. */
static inline void add_u64(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Bucket of ns: 0..7 exact, then 8 sub-buckets per power of two. */
int sl__hist_bucket(int64_t ns)
{
    if (ns < SL__HIST_SUB)
        return ns < 0 ? 0 : (int)ns;
    uint64_t v = (uint64_t)ns;
    int e = 63 - __builtin_clzll(v);          /* 3..62 */
    int mant = (int)((v >> (e - 3)) & 7u);
    return SL__HIST_SUB + (e - 3) * SL__HIST_SUB + mant;
}

int64_t sl__hist_bucket_low(int i)
{
    if (i < SL__HIST_SUB)
        return i;
    int k = i - SL__HIST_SUB;
    int e = k / SL__HIST_SUB + 3;
    uint64_t mant = (uint64_t)(k % SL__HIST_SUB);
    return (int64_t)((8u + mant) << (e - 3));
}

int64_t sl__hist_bucket_high(int i)
{
    if (i < SL__HIST_SUB)
        return i;
    if (i >= SL__HIST_BUCKETS - 1)
        return INT64_MAX;
    return sl__hist_bucket_low(i + 1) - 1;
}

void sl__hist_record_n(sl__hist *h, int64_t ns, uint64_t n)
{
    if (ns < 0)
        ns = 0;
    add_u64(&h->buckets[sl__hist_bucket(ns)], n);
    add_u64(&h->count, n);
    add_u64(&h->sum_ns, (uint64_t)ns * n);
    if (ns > atomic_load_explicit(&h->max_ns, memory_order_relaxed))
        atomic_store_explicit(&h->max_ns, ns, memory_order_relaxed);
}

void sl__hist_record(sl__hist *h, int64_t ns)
{
    sl__hist_record_n(h, ns, 1);
}

void sl__hist_accumulate(sl__hist_sum *sum, const sl__hist *h)
{
    for (int i = 0; i < SL__HIST_BUCKETS; i++)
        sum->buckets[i] += atomic_load_explicit(&h->buckets[i],
                                                memory_order_relaxed);
    sum->count += atomic_load_explicit(&h->count, memory_order_relaxed);
    sum->sum_ns += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    int64_t m = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
    if (m > sum->max_ns)
        sum->max_ns = m;
}

/*
 * The total is recomputed from the buckets: a snapshot taken while a
 * worker records may see a bucket and the count out of step, and the
 * buckets are what the answer is read from.
 */
int64_t sl__hist_quantile(const sl__hist_sum *sum, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < SL__HIST_BUCKETS; i++)
        total += sum->buckets[i];
    if (total == 0)
        return 0;
    if (!(q > 0))
        q = 0;
    if (q > 1)
        q = 1;
    /* nearest rank, 1-based: ceil(q * total), at least 1 */
    double r = q * (double)total;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank >= total && sum->max_ns > 0)
        return sum->max_ns;      /* the largest value is known exactly */
    uint64_t seen = 0;
    for (int i = 0; i < SL__HIST_BUCKETS; i++) {
        seen += sum->buckets[i];
        if (seen >= rank) {
            int64_t low = sl__hist_bucket_low(i);
            int64_t high = sl__hist_bucket_high(i);
            if (high == INT64_MAX)   /* the open top bucket */
                high = sum->max_ns > low ? sum->max_ns : low;
            int64_t mid = low + (high - low) / 2;
            return (sum->max_ns > 0 && mid > sum->max_ns) ? sum->max_ns : mid;
        }
    }
    return sum->max_ns;
}

uint64_t sl__hist_count_le(const sl__hist_sum *sum, int64_t le_ns)
{
    uint64_t n = 0;
    for (int i = 0; i < SL__HIST_BUCKETS && sl__hist_bucket_high(i) <= le_ns;
         i++)
        n += sum->buckets[i];
    return n;
}

/* ------------------------------------------------------------------ */
/* Sampling                                                            */
/* ------------------------------------------------------------------ */

/*
 * The period is the smallest power of two >= SL__LAT_EXACT_NS / mean, at
 * most SL__LAT_MAX_PERIOD. A period of 2 costs as many clock reads as 1
 * (a timed record after an untimed one needs its own start time), so it
 * becomes 1.
 */
static uint32_t choose_period(int64_t mean_ns)
{
    if (mean_ns >= SL__LAT_EXACT_NS)
        return 1;
    int64_t want = mean_ns > 0 ? (SL__LAT_EXACT_NS + mean_ns - 1) / mean_ns
                               : SL__LAT_MAX_PERIOD;
    uint32_t p = 1;
    while ((int64_t)p < want && p < SL__LAT_MAX_PERIOD)
        p <<= 1;
    return p == 2 ? 1 : p;
}

void sl__lat_end(sl__lat_sampler *s, sl__hist *h, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    sl__hist_record_n(h, ns, s->pending + 1);
    s->pending = 0;
    s->last_ns = ns;
    if (s->period == 0)
        s->mean_ns = ns;
    else
        s->mean_ns += (ns - s->mean_ns) / 8;
    s->period = choose_period(s->mean_ns);
    s->skip = s->period - 1;
}

void sl__lat_finish(sl__lat_sampler *s, sl__hist *h)
{
    if (s->pending > 0 && s->period > 0)
        sl__hist_record_n(h, s->last_ns, s->pending);
    s->pending = 0;
}
