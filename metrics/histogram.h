/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Latency histograms and the sampler that decides which records are timed.
 *
 * Histogram. Durations in nanoseconds fall into log-spaced buckets: values
 * 0..7 have a bucket each, then every power of two is split into 8 equal
 * buckets, so a bucket [low, high] is never wider than low/8. A quantile is
 * read as the midpoint of the bucket holding it (capped at the exact
 * maximum, which is kept alongside), so it is within 1/16 = 6.25% of the
 * true value of the recorded data:
 *
 *     |estimate - v| <= (high - low) / 2 <= low / 16 <= v / 16
 *
 * One writer per histogram (the worker that owns it), any number of
 * readers: the writer updates relaxed atomics with load + store, readers
 * copy them into an sl__hist_sum. A reader racing the writer may see a
 * bucket and the totals one record apart; quantiles are read from the
 * buckets alone.
 *
 * Sampler. Reading the clock costs some tens of nanoseconds, as much as a
 * fast stage spends on a record. Each worker times its records with a
 * sampling period chosen from the running mean latency so that timing
 * costs about 1% of the stage's time: every record when records take
 * 6 us or more, one in 4..64 below that (powers of two). A timed record
 * stands for itself and the untimed ones since the previous timed record
 * (it is recorded with that weight), so the histogram's count is the
 * number of calls and its sum their estimated total time.
 *
 * Thread: as stated per function.
 */
#ifndef SLUICE_METRICS_HISTOGRAM_H
#define SLUICE_METRICS_HISTOGRAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SL__HIST_SUB 8
#define SL__HIST_BUCKETS (SL__HIST_SUB + 60 * SL__HIST_SUB)

typedef struct sl__hist {
    _Atomic uint64_t buckets[SL__HIST_BUCKETS]; /* atomic: counts per bucket */
    _Atomic uint64_t count;                     /* atomic: values recorded */
    _Atomic uint64_t sum_ns;                    /* atomic: their total */
    _Atomic int64_t max_ns;                     /* atomic: largest value */
} sl__hist;

/* Bucket index of a duration (negative values count as 0). Thread: any. */
int sl__hist_bucket(int64_t ns);
/* Smallest and largest value falling in bucket i. Thread: any. */
int64_t sl__hist_bucket_low(int i);
int64_t sl__hist_bucket_high(int i);

/* Record one value. Single writer. */
void sl__hist_record(sl__hist *h, int64_t ns);
/* Record a value that stands for n values (n >= 1). Single writer. */
void sl__hist_record_n(sl__hist *h, int64_t ns, uint64_t n);

/*
 * A plain (non-atomic) copy of one or more histograms, for computing
 * percentiles and exporting buckets at snapshot time.
 */
typedef struct sl__hist_sum {
    uint64_t buckets[SL__HIST_BUCKETS];
    uint64_t count;
    uint64_t sum_ns;
    int64_t max_ns;
} sl__hist_sum;

/* Add h into sum (sum must start zeroed). Thread: any. */
void sl__hist_accumulate(sl__hist_sum *sum, const sl__hist *h);

/*
 * The value at quantile q (0..1, clamped), nearest rank: the midpoint of
 * the bucket holding the ceil(q * n)-th smallest value, capped at the
 * maximum, so within 6.25% of that value; the last rank reads the exact
 * maximum. 0 when empty. Thread: any.
 */
int64_t sl__hist_quantile(const sl__hist_sum *sum, double q);

/* Values recorded at or below le_ns (le_ns + 1 must be a bucket's low
 * edge for the answer to be exact, e.g. 2^k - 1). Thread: any. */
uint64_t sl__hist_count_le(const sl__hist_sum *sum, int64_t le_ns);

/* ------------------------------------------------------------------ */
/* Sampling                                                            */
/* ------------------------------------------------------------------ */

/* Longest sampling period (records per timed record). */
#define SL__LAT_MAX_PERIOD 64
/* Mean latency from which every record is timed (see the file comment:
 * with a ~30 ns clock read, timing costs ~1% from here on). */
#define SL__LAT_EXACT_NS 6000

typedef struct sl__lat_sampler {
    bool off;          /* never time (metrics timing turned off) */
    uint32_t period;   /* records per timed record; 0 = not started */
    uint32_t skip;     /* records still to pass untimed */
    uint64_t pending;  /* untimed records since the last timed one */
    int64_t mean_ns;   /* running mean of timed latencies (1/8 weight) */
    int64_t last_ns;   /* the last timed latency */
} sl__lat_sampler;

/* Should the next record be timed? Counts it as pending if not. Single
 * writer (the worker). */
static inline bool sl__lat_begin(sl__lat_sampler *s)
{
    if (s->off)
        return false;
    if (s->skip > 0) {
        s->skip--;
        s->pending++;
        return false;
    }
    return true;
}

/* A timed record took ns: record it for itself and the pending untimed
 * ones, and choose the next period. Single writer. */
void sl__lat_end(sl__lat_sampler *s, sl__hist *h, int64_t ns);

/* The worker is done: the untimed records since the last timed one are
 * recorded with the last measured latency. Single writer. */
void sl__lat_finish(sl__lat_sampler *s, sl__hist *h);

#endif
