/*
 * bench_record: cost of the per-record operations on the hot path.
 *
 *   bench_record [ITERATIONS]     default 1000000
 *
 * Each line is one operation sequence, timed over ITERATIONS records built
 * from a typical event line (bench/gen_events), reported as ns per record
 * (CPU time, median of 5 runs):
 *   source        sl_record_new_payload + sl_record_set_position + free
 *   json_stage    source + sl_json_parse + set_fields + clear_payload
 *   tee_copy      sl_record_copy of a parsed record + free
 *   tee_write     copy + one sl_record_set on the copy (unshares the fields)
 *   size          sl_record_size of a parsed record
 *   dump          sl_json_dump of the fields into a reused sl_buf
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/record.h"
#include "sluice/value.h"

static const char line[] =
    "{\"id\":123457,\"ts\":\"2026-01-01T01:22:03.517Z\",\"user\":\"u42\",\"status\":503,"
    "\"path\":\"/api/v1/items/17\",\"bytes\":5123,\"latency_ms\":12.5}";

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sl_record *source_record(long i)
{
    sl_record *r = sl_record_new_payload(line, sizeof(line) - 1);
    if (r == NULL || sl_record_set_position(r, "events", "/data/events-1.jsonl",
                                            (int64_t)i * 130, i + 1) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return r;
}

static sl_record *parsed_record(long i)
{
    sl_record *r = source_record(i);
    size_t len;
    const char *p = sl_record_payload(r, &len);
    sl_value *v = NULL;
    if (sl_json_parse(p, len, NULL, &v, NULL) != 0 || sl_record_set_fields(r, v) != 0) {
        fprintf(stderr, "parse failed\n");
        exit(1);
    }
    sl_record_clear_payload(r);
    return r;
}

static size_t sink;   /* keeps results observable */

static void op_source(long i)
{
    sl_record_free(source_record(i));
}

static void op_json_stage(long i)
{
    sl_record_free(parsed_record(i));
}

static sl_record *shared;   /* a parsed record for the copy operations */

static void op_tee_copy(long i)
{
    sl_record *c = sl_record_copy(shared);
    sink += (size_t)c;
    sl_record_free(c);
}

static void op_tee_write(long i)
{
    sl_record *c = sl_record_copy(shared);
    sl_record_set(c, "branch", sl_value_int(i));
    sl_record_free(c);
}

static void op_size(long i)
{
    sink += sl_record_size(shared);
}

static sl_buf out;

static void op_dump(long i)
{
    sl_buf_reset(&out);
    sl_json_dump(sl_record_fields(shared), &out);
    sink += out.len;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void run(const char *name, void (*op)(long), long n)
{
    double t[5];
    for (int r = 0; r < 5; r++) {
        double t0 = cpu_s();
        for (long i = 0; i < n; i++)
            op(i);
        t[r] = cpu_s() - t0;
    }
    qsort(t, 5, sizeof(double), cmp_double);
    printf("%-11s %8.1f ns/record  (min %.1f, max %.1f)\n", name, t[2] / (double)n * 1e9,
           t[0] / (double)n * 1e9, t[4] / (double)n * 1e9);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n <= 0) {
        fprintf(stderr, "usage: bench_record [ITERATIONS]\n");
        return 2;
    }
    sl_buf_init(&out);
    shared = parsed_record(0);
    run("source", op_source, n);
    run("json_stage", op_json_stage, n);
    run("tee_copy", op_tee_copy, n);
    run("tee_write", op_tee_write, n);
    run("size", op_size, n);
    run("dump", op_dump, n);
    sl_record_free(shared);
    sl_buf_fini(&out);
    return sink == 0;
}
