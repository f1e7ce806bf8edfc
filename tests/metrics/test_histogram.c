/*
 * The latency histogram: bucket layout, quantiles within the documented
 * 6.25% of the exact nearest-rank value on a known distribution, exact
 * totals, Prometheus bound counts, and the sampler's periods and weights.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/histogram.h"

static sl__hist h;          /* zeroed per test (one process per test) */
static sl__hist_sum sum;

Test(histogram, buckets_adjoin_and_are_at_most_an_eighth_wide)
{
    for (int i = 0; i < SL__HIST_BUCKETS - 1; i++) {
        int64_t low = sl__hist_bucket_low(i), high = sl__hist_bucket_high(i);
        cr_assert_eq(high + 1, sl__hist_bucket_low(i + 1), "bucket %d", i);
        cr_assert_eq(sl__hist_bucket(low), i);
        cr_assert_eq(sl__hist_bucket(high), i);
        if (low >= SL__HIST_SUB)
            cr_assert_leq((high - low + 1) * 8, low, "bucket %d too wide", i);
    }
    cr_expect_eq(sl__hist_bucket(-5), 0);
    cr_expect_eq(sl__hist_bucket(INT64_MAX), SL__HIST_BUCKETS - 1);
}

static uint64_t rng = 88172645463325252ull;

static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Log-uniform over 50 ns .. 50 ms, with a slow tail: latencies as a mixed
 * stage produces them. */
static int64_t draw(void)
{
    double u = (double)(next_u64() >> 11) / 9007199254740992.0;
    double v = 50.0 * pow(1e6, u);
    if (next_u64() % 100 == 0)
        v *= 20;
    return (int64_t)v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

Test(histogram, quantiles_within_the_error_bound)
{
    enum { N = 200000 };
    int64_t *v = malloc(N * sizeof(*v));
    cr_assert_not_null(v);
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        v[i] = draw();
        total += (uint64_t)v[i];
        sl__hist_record(&h, v[i]);
    }
    qsort(v, N, sizeof(*v), cmp_i64);
    sl__hist_accumulate(&sum, &h);
    cr_expect_eq(sum.count, N);
    cr_expect_eq(sum.sum_ns, total);
    cr_expect_eq(sum.max_ns, v[N - 1]);
    const double qs[] = {0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999,
                         0.9999, 1.0};
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        size_t rank = (size_t)ceil(qs[k] * N);   /* nearest rank, 1-based */
        int64_t exact = v[rank - 1];
        int64_t est = sl__hist_quantile(&sum, qs[k]);
        double err = fabs((double)(est - exact)) / (double)exact;
        cr_expect_leq(err, 1.0 / 16, "q=%g: estimate %lld, exact %lld (%.2f%%)",
                      qs[k], (long long)est, (long long)exact, err * 100);
    }
    cr_expect_eq(sl__hist_quantile(&sum, 1.0), v[N - 1], "q=1 is the max");
    free(v);
}

Test(histogram, small_values_are_exact)
{
    for (int i = 0; i < 8; i++)
        sl__hist_record(&h, i);
    sl__hist_accumulate(&sum, &h);
    cr_expect_eq(sl__hist_quantile(&sum, 0.5), 3);
    cr_expect_eq(sl__hist_quantile(&sum, 0.0), 0);
    cr_expect_eq(sl__hist_quantile(&sum, 1.0), 7);
}

Test(histogram, empty_reads_zero)
{
    sl__hist_accumulate(&sum, &h);
    cr_expect_eq(sl__hist_quantile(&sum, 0.5), 0);
    cr_expect_eq(sl__hist_count_le(&sum, 1000), 0);
}

Test(histogram, weighted_values_and_bound_counts)
{
    sl__hist_record_n(&h, 1000, 3);     /* below 1023 */
    sl__hist_record(&h, 1023);          /* exactly on the bound */
    sl__hist_record(&h, 1024);          /* just above */
    sl__hist_record_n(&h, 5000000, 2);
    sl__hist_accumulate(&sum, &h);
    cr_expect_eq(sum.count, 7);
    cr_expect_eq(sum.sum_ns, 3000 + 1023 + 1024 + 10000000);
    cr_expect_eq(sl__hist_count_le(&sum, 1023), 4);
    cr_expect_eq(sl__hist_count_le(&sum, 2047), 5);
    cr_expect_eq(sl__hist_count_le(&sum, ((int64_t)1 << 23) - 1), 7);
    /* the median of 7 is the 4th: in the 1000..1023 bucket, read as its
       midpoint */
    int64_t p50 = sl__hist_quantile(&sum, 0.5);
    cr_expect(p50 >= 960 && p50 <= 1023, "p50 %lld", (long long)p50);
}

/* ------------------------------------------------------------------ */
/* Sampler                                                             */
/* ------------------------------------------------------------------ */

/* Run n calls of `ns` each through the sampler; return how many were
 * timed. */
static int drive(sl__lat_sampler *s, int n, int64_t ns)
{
    int timed = 0;
    for (int i = 0; i < n; i++) {
        if (sl__lat_begin(s)) {
            sl__lat_end(s, &h, ns);
            timed++;
        }
    }
    return timed;
}

Test(histogram, sampler_times_every_slow_record)
{
    sl__lat_sampler s;
    memset(&s, 0, sizeof(s));
    cr_expect_eq(drive(&s, 1000, 20000), 1000);
    cr_expect_eq(s.period, 1);
    sl__lat_finish(&s, &h);
    sl__hist_accumulate(&sum, &h);
    cr_expect_eq(sum.count, 1000);
}

Test(histogram, sampler_samples_fast_records_and_weights_them)
{
    sl__lat_sampler s;
    memset(&s, 0, sizeof(s));
    int timed = drive(&s, 100000, 100);      /* 100 ns: period 64 */
    cr_expect_eq(s.period, SL__LAT_MAX_PERIOD);
    cr_expect_leq(timed, 100000 / 32, "timed %d", timed);
    cr_expect_geq(timed, 100000 / SL__LAT_MAX_PERIOD);
    sl__lat_finish(&s, &h);
    sl__hist_accumulate(&sum, &h);
    cr_expect_eq(sum.count, 100000, "every call counted, timed or not");
    cr_expect_eq(sum.sum_ns, 100000 * 100);
    int64_t p99 = sl__hist_quantile(&sum, 0.99);
    cr_expect(p99 >= 100 - 100 / 16 && p99 <= 100 + 100 / 16, "p99 %lld",
              (long long)p99);
    cr_expect_eq(sl__hist_quantile(&sum, 1.0), 100);
}

Test(histogram, sampler_period_follows_the_mean)
{
    sl__lat_sampler s;
    memset(&s, 0, sizeof(s));
    drive(&s, 200, 1500);                     /* 6000/1500 = 4 */
    cr_expect_eq(s.period, 4);
    drive(&s, 400, 3500);                     /* 6000/3500 -> 2 -> 1 */
    cr_expect_eq(s.period, 1);
    drive(&s, 2000, 10);
    cr_expect_eq(s.period, SL__LAT_MAX_PERIOD);
    drive(&s, 200, 100000);                   /* slow again: every record */
    cr_expect_eq(s.period, 1);
}

Test(histogram, sampler_off_times_nothing)
{
    sl__lat_sampler s;
    memset(&s, 0, sizeof(s));
    s.off = true;
    cr_expect_eq(drive(&s, 100, 5000), 0);
    sl__lat_finish(&s, &h);
    sl__hist_accumulate(&sum, &h);
    cr_expect_eq(sum.count, 0);
}
