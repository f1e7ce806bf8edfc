/*
 * Expression evaluation speed: compile once, evaluate many times on a
 * parsed record, report ns per evaluation.
 *
 *   cmake --build build --target bench_expr && build/bench_expr [N [EXPR]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/error.h"
#include "sluice/expr.h"
#include "sluice/record.h"
#include "sluice/value.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);   /* CPU time: robust on a busy machine */
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static sl_record *record(const char *json)
{
    sl_value *v = NULL;
    if (sl_json_parse(json, strlen(json), NULL, &v, NULL) < 0)
        return NULL;
    sl_record *r = sl_record_new();
    if (r == NULL || sl_record_set_fields(r, v) < 0) {
        sl_record_free(r);
        return NULL;
    }
    return r;
}

/* ns per evaluation of e on r: the fastest of five rounds of n, since
 * other processes on the machine only ever add time. */
static double rounds(const sl_expr *e, const sl_record *r, long n, bool boxed,
                     long *hits)
{
    sl_expr_env env = {.seq = 1, .now_ns = 1};
    sl_expr_error err;
    double best = 0;
    for (int round = 0; round < 5; round++) {
        *hits = 0;
        int64_t t0 = now_ns();
        for (long i = 0; i < n; i++) {
            if (boxed) {
                sl_value *v = NULL;
                if (sl_expr_eval(e, r, &env, &v, &err) < 0)
                    return -1;
                *hits += sl_value_type(v) != SL_TYPE_NULL;
                sl_value_unref(v);
            } else {
                bool b = false;
                if (sl_expr_eval_bool(e, r, &env, &b, &err) < 0)
                    return -1;
                *hits += b;
            }
        }
        double ns = (double)(now_ns() - t0) / (double)n;
        if (round == 0 || ns < best)
            best = ns;
    }
    return best;
}

static int bench(const char *src, const sl_record *r, long n, bool boxed)
{
    sl_expr *e = NULL;
    sl_expr_error err;
    if (sl_expr_compile(src, &e, &err) < 0) {
        fprintf(stderr, "%s: column %d: %s\n", src, err.column, err.text);
        return 1;
    }
    long hits = 0;
    double ns = rounds(e, r, n, boxed, &hits);
    sl_expr_destroy(e);
    if (ns < 0) {
        fprintf(stderr, "%s: evaluation failed\n", src);
        return 1;
    }
    printf("%-52s %-5s %7.1f ns/eval (%ld true)\n", src,
           boxed ? "value" : "bool", ns, hits);
    return 0;
}

/*
 * The floor the value library sets: looking up status and path and reading
 * them, with no expression around it.
 */
static void floor_cost(const sl_record *r, long n)
{
    double best = 0;
    long hits = 0;
    for (int round = 0; round < 5; round++) {
        hits = 0;
        int64_t t0 = now_ns();
        for (long i = 0; i < n; i++) {
            const sl_value *f = sl_record_fields(r);
            const sl_value *s = sl_object_getn(f, "status", 6);
            const sl_value *p = sl_object_getn(f, "path", 4);
            size_t len = 0;
            const char *str = sl_value_get_string(p, &len);
            hits += sl_value_type(s) == SL_TYPE_INT &&
                    sl_value_get_int(s) >= 500 && str != NULL && len >= 5 &&
                    memcmp(str, "/api/", 5) == 0;
        }
        double ns = (double)(now_ns() - t0) / (double)n;
        if (round == 0 || ns < best)
            best = ns;
    }
    printf("%-52s %-5s %7.1f ns/eval (%ld true)\n",
           "(floor: the same two lookups by hand)", "bool", best, hits);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    sl_record *r = record(
        "{\"id\":42,\"ts\":\"2024-05-01T12:00:00Z\",\"method\":\"GET\","
        "\"path\":\"/api/v1/users/42\",\"status\":503,\"latency_ms\":87.5,"
        "\"bytes\":5120,\"user\":\"u42\",\"ua\":\"curl/8.0\"}");
    if (r == NULL)
        return 1;
    int rc = 0;
    if (argc > 2) {              /* one expression given: just that one */
        rc = bench(argv[2], r, n, false);
        sl_record_free(r);
        return rc;
    }
    floor_cost(r, n);
    rc |= bench("status >= 500 && path =~ \"^/api/\"", r, n, false);
    rc |= bench("status >= 500 && path =~ \"^/api/v[0-9]+/\"", r, n, false);
    rc |= bench("status >= 500", r, n, false);
    rc |= bench("latency_ms / 1000.0", r, n, true);
    rc |= bench("status >= 503 ? \"high\" : \"medium\"", r, n, true);
    rc |= bench("\"u\" + to_string(seq() % 100)", r, n, true);
    rc |= bench("lower(method) == \"get\" && contains(ua, \"curl\")", r, n,
                false);
    sl_record_free(r);
    return rc;
}
