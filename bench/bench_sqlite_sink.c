/*
 * The sqlite sink against the plain C loop it should come close to: one
 * prepared INSERT, bound parameters, 1000 rows per transaction, WAL,
 * synchronous=NORMAL. Every variant writes the same rows (5 columns) to a
 * fresh database:
 *
 *   raw C loop     values from C variables: the floor
 *   raw records    the same loop binding from prebuilt records and freeing
 *                  them after each commit: the floor for anything that
 *                  consumes records
 *   sqlite sink    the stage through the stage harness (which, like the
 *                  runtime, counts bytes and times every call)
 *
 * Records are built before the clock starts.
 *
 *   cmake --build build --target bench_sqlite_sink
 *   ./build/bench_sqlite_sink [rows] [dir]
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/harness.h"
#include "sluice/plugin.h"

extern const sl_stage_desc sl_stage_sqlite;

#define BATCH 1000

/* CPU time of this thread: on a shared machine, wall time measures the
 * neighbours as much as the code. (Nothing here runs on other threads, and
 * with synchronous=NORMAL in WAL mode only checkpoints wait on the disk.) */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, sqlite3 *db, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static char users[100][8];
static const char *paths[4] = {"/api/v1/users", "/api/v1/orders", "/health", "/api/v2/items"};

static void remove_db(const char *path)
{
    char buf[1100];
    unlink(path);
    snprintf(buf, sizeof(buf), "%s-wal", path);
    unlink(buf);
    snprintf(buf, sizeof(buf), "%s-shm", path);
    unlink(buf);
}

/* The baseline: what a hand-written loader would do. */
static double raw_loop(const char *path, long n)
{
    remove_db(path);
    sqlite3 *db;
    check(sqlite3_open(path, &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                           "CREATE TABLE t (id INTEGER, user TEXT, status INTEGER,"
                           " latency_ms REAL, path TEXT)", NULL, NULL, NULL), db, "setup");
    sqlite3_stmt *ins, *begin, *commit;
    check(sqlite3_prepare_v2(db, "INSERT INTO t (id,user,status,latency_ms,path) VALUES (?,?,?,?,?)",
                             -1, &ins, NULL), db, "prepare");
    check(sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL), db, "prepare");
    check(sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL), db, "prepare");
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (i % BATCH == 0) {
            check(sqlite3_step(begin), db, "begin");
            sqlite3_reset(begin);
        }
        sqlite3_bind_int64(ins, 1, i);
        sqlite3_bind_text(ins, 2, users[i % 100], -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, i % 5 == 0 ? 503 : 200);
        sqlite3_bind_double(ins, 4, (double)(i % 1000) / 10.0);
        sqlite3_bind_text(ins, 5, paths[i % 4], -1, SQLITE_STATIC);
        check(sqlite3_step(ins), db, "insert");
        sqlite3_reset(ins);
        if (i % BATCH == BATCH - 1 || i == n - 1) {
            check(sqlite3_step(commit), db, "commit");
            sqlite3_reset(commit);
        }
    }
    double dt = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    return dt;
}

static sl_record **make_records(long n)
{
    sl_record **recs = malloc((size_t)n * sizeof(*recs));
    for (long i = 0; i < n; i++) {
        sl_record *r = sl_record_new();
        sl_record_set(r, "id", sl_value_int(i));
        sl_record_set(r, "user", sl_value_cstring(users[i % 100]));
        sl_record_set(r, "status", sl_value_int(i % 5 == 0 ? 503 : 200));
        sl_record_set(r, "latency_ms", sl_value_double((double)(i % 1000) / 10.0));
        sl_record_set(r, "path", sl_value_cstring(paths[i % 4]));
        recs[i] = r;
    }
    return recs;
}

/* The raw loop over records: bind from the values, free after commit. */
static double raw_records(const char *path, long n)
{
    remove_db(path);
    sl_record **recs = make_records(n);
    sqlite3 *db;
    check(sqlite3_open(path, &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                           "CREATE TABLE t (id INTEGER, user TEXT, status INTEGER,"
                           " latency_ms REAL, path TEXT)", NULL, NULL, NULL), db, "setup");
    sqlite3_stmt *ins, *begin, *commit;
    check(sqlite3_prepare_v2(db, "INSERT INTO t (id,user,status,latency_ms,path) VALUES (?,?,?,?,?)",
                             -1, &ins, NULL), db, "prepare");
    check(sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL), db, "prepare");
    check(sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL), db, "prepare");
    double t0 = now_s();
    long first = 0;
    for (long i = 0; i < n; i++) {
        if (i % BATCH == 0) {
            check(sqlite3_step(begin), db, "begin");
            sqlite3_reset(begin);
        }
        const sl_value *f = sl_record_fields(recs[i]);
        int k = 1;
        for (void *it = sl_object_iter(f); it != NULL; it = sl_object_next(f, it), k++) {
            const sl_value *v = sl_object_iter_value(it);
            size_t len;
            const char *s;
            switch (sl_value_type(v)) {
            case SL_TYPE_INT:
                sqlite3_bind_int64(ins, k, sl_value_get_int(v));
                break;
            case SL_TYPE_DOUBLE:
                sqlite3_bind_double(ins, k, sl_value_get_double(v));
                break;
            default:
                s = sl_value_get_string(v, &len);
                sqlite3_bind_text64(ins, k, s, len, SQLITE_STATIC, SQLITE_UTF8);
                break;
            }
        }
        check(sqlite3_step(ins), db, "insert");
        sqlite3_reset(ins);
        if (i % BATCH == BATCH - 1 || i == n - 1) {
            check(sqlite3_step(commit), db, "commit");
            sqlite3_reset(commit);
            for (; first <= i; first++)
                sl_record_free(recs[first]);
        }
    }
    double dt = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    free(recs);
    return dt;
}

static double stage_loop(const char *path, long n)
{
    remove_db(path);
    sl_record **recs = make_records(n);
    char opts[1200];
    snprintf(opts, sizeof(opts), "{path: '%s', table: t, batch_size: %d}", path, BATCH);
    sl_harness *h = NULL;
    if (sl_harness_create(&sl_stage_sqlite, opts, &h) != 0 || sl_harness_init(h) != 0) {
        fprintf(stderr, "stage: %s %s\n", sl_harness_config_error(h), sl_harness_last_error(h));
        exit(1);
    }
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (sl_harness_process(h, recs[i]) != 0) {
            fprintf(stderr, "stage: %s\n", sl_harness_last_error(h));
            exit(1);
        }
    }
    if (sl_harness_flush(h) != 0) {
        fprintf(stderr, "stage: %s\n", sl_harness_last_error(h));
        exit(1);
    }
    double dt = now_s() - t0;
    if (sl_harness_stored_count(h) != (uint64_t)n) {
        fprintf(stderr, "stage stored %llu of %ld\n",
                (unsigned long long)sl_harness_stored_count(h), n);
        exit(1);
    }
    sl_harness_destroy(h);
    free(recs);
    return dt;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 300000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    char path[1024];
    snprintf(path, sizeof(path), "%s/bench_sqlite_sink.db", dir);
    for (int u = 0; u < 100; u++)
        snprintf(users[u], sizeof(users[u]), "u%d", u);

    double best_raw = 1e9, best_recs = 1e9, best_stage = 1e9;
    for (int round = 0; round < 5; round++) {
        double r = raw_loop(path, n);
        double rr = raw_records(path, n);
        double s = stage_loop(path, n);
        if (r < best_raw)
            best_raw = r;
        if (rr < best_recs)
            best_recs = rr;
        if (s < best_stage)
            best_stage = s;
    }
    remove_db(path);
    printf("rows: %ld (batch %d, WAL, synchronous=NORMAL), best of 5\n", n, BATCH);
    printf("raw C loop  : %8.0f rows/s (%.3f s CPU)\n", (double)n / best_raw, best_raw);
    printf("raw records : %8.0f rows/s (%.3f s CPU)\n", (double)n / best_recs, best_recs);
    printf("sqlite sink : %8.0f rows/s (%.3f s CPU)\n", (double)n / best_stage, best_stage);
    printf("sink / raw C loop  : %.2f\n", best_raw / best_stage);
    printf("sink / raw records : %.2f\n", best_recs / best_stage);
    return 0;
}
