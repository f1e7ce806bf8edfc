/*
 * sqlite_load: the hand-written loader the sqlite store is measured
 * against — the practical limit for getting gen_events output into SQLite.
 *
 *   sqlite_load jsonl|csv INPUT DATABASE [TABLE]
 *
 * Reads INPUT line by line (JSON lines, or CSV with a header line, as
 * bench/gen_events.c writes them), pulls the seven fields out with a
 * parser that knows the format and nothing else, and inserts every row
 * with one prepared statement in one transaction, binding each value
 * straight from the line (WAL, synchronous=NORMAL). SQLITE_LOAD_BATCH=N
 * commits every N rows instead, to measure what a commit costs. The table is created
 * with the types sluice gives the same fields (id, status, bytes INTEGER;
 * latency_ms REAL; the rest TEXT). Prints rows, wall seconds and process
 * CPU seconds on one line:
 *
 *   rows 1000000 wall_s 2.134 cpu_s 2.101
 *
 * Standalone (SQLite and libc only):
 *   cc -O2 -o sqlite_load bench/sqlite_load.c -lsqlite3
 */
#include <errno.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NCOLS 7

static const char *const columns[NCOLS] = {"id", "ts", "user", "status", "path", "bytes",
                                           "latency_ms"};
/* 'i' integer, 'r' real, 't' text */
static const char kinds[NCOLS] = {'i', 't', 't', 'i', 't', 'i', 'r'};

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite_load: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

typedef struct span {
    const char *p;
    size_t n;
} span;

/*
 * One JSON line of gen_events: {"id":1,"ts":"...",...}. Values are taken
 * in key order; strings hold no escapes (gen_events writes none). Returns
 * 0, or -1 for a line of another shape.
 */
static int split_json(const char *p, size_t n, span *out)
{
    const char *end = p + n;
    if (p == end || *p++ != '{')
        return -1;
    for (int c = 0; c < NCOLS; c++) {
        const char *k = memchr(p, ':', (size_t)(end - p));
        if (k == NULL)
            return -1;
        p = k + 1;
        if (p < end && *p == '"') {
            const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
            if (q == NULL)
                return -1;
            out[c] = (span){p + 1, (size_t)(q - p - 1)};
            p = q + 1;
        } else {
            const char *q = p;
            while (q < end && *q != ',' && *q != '}')
                q++;
            out[c] = (span){p, (size_t)(q - p)};
            p = q;
        }
        if (p >= end || (*p != ',' && *p != '}'))
            return -1;
        p++;
    }
    return 0;
}

/* One CSV line of gen_events: no quoting. */
static int split_csv(const char *p, size_t n, span *out)
{
    const char *end = p + n;
    for (int c = 0; c < NCOLS; c++) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        if (q == NULL) {
            if (c != NCOLS - 1)
                return -1;
            q = end;
        }
        out[c] = (span){p, (size_t)(q - p)};
        p = q + 1;
    }
    return 0;
}

/* An integer or a real from a span, without a copy. */
static long long span_int(span s)
{
    long long v = 0;
    size_t i = 0;
    bool neg = s.n > 0 && s.p[0] == '-';
    for (i = neg ? 1 : 0; i < s.n; i++)
        v = v * 10 + (s.p[i] - '0');
    return neg ? -v : v;
}

static double span_real(span s)
{
    char buf[64];
    size_t n = s.n < sizeof(buf) - 1 ? s.n : sizeof(buf) - 1;
    memcpy(buf, s.p, n);
    buf[n] = '\0';
    return strtod(buf, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "jsonl") != 0 && strcmp(argv[1], "csv") != 0)) {
        fprintf(stderr, "usage: sqlite_load jsonl|csv INPUT DATABASE [TABLE]\n");
        return 2;
    }
    bool csv = strcmp(argv[1], "csv") == 0;
    const char *table = argc > 4 ? argv[4] : "events";
    const char *batch_env = getenv("SQLITE_LOAD_BATCH");
    long long batch = batch_env != NULL ? atoll(batch_env) : 0;
    FILE *in = fopen(argv[2], "r");
    if (in == NULL) {
        fprintf(stderr, "sqlite_load: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    static char iobuf[1 << 16];
    setvbuf(in, iobuf, _IOFBF, sizeof(iobuf));

    double wall0 = seconds(CLOCK_MONOTONIC);
    double cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    sqlite3 *db;
    if (sqlite3_open(argv[3], &db) != SQLITE_OK)
        die(db, "open");
    char sql[512];
    snprintf(sql, sizeof(sql),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
             "CREATE TABLE IF NOT EXISTS \"%s\" (\"id\" INTEGER, \"ts\" TEXT, \"user\" TEXT,"
             " \"status\" INTEGER, \"path\" TEXT, \"bytes\" INTEGER, \"latency_ms\" REAL)",
             table);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(db, "setup");
    snprintf(sql, sizeof(sql), "INSERT INTO \"%s\" (\"%s\",\"%s\",\"%s\",\"%s\",\"%s\",\"%s\",\"%s\")"
             " VALUES (?,?,?,?,?,?,?)", table, columns[0], columns[1], columns[2], columns[3],
             columns[4], columns[5], columns[6]);
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(db, sql, -1, &ins, NULL) != SQLITE_OK)
        die(db, "prepare");
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        die(db, "begin");

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long rows = 0, lineno = 0;
    while ((len = getline(&line, &cap, in)) > 0) {
        lineno++;
        if (line[len - 1] == '\n')
            len--;
        if (csv && lineno == 1)
            continue;   /* the header */
        span f[NCOLS];
        if ((csv ? split_csv(line, (size_t)len, f) : split_json(line, (size_t)len, f)) < 0) {
            fprintf(stderr, "sqlite_load: %s line %lld: unexpected shape\n", argv[2], lineno);
            return 1;
        }
        for (int c = 0; c < NCOLS; c++) {
            int rc;
            if (kinds[c] == 'i')
                rc = sqlite3_bind_int64(ins, c + 1, span_int(f[c]));
            else if (kinds[c] == 'r')
                rc = sqlite3_bind_double(ins, c + 1, span_real(f[c]));
            else
                rc = sqlite3_bind_text(ins, c + 1, f[c].p, (int)f[c].n, SQLITE_STATIC);
            if (rc != SQLITE_OK)
                die(db, "bind");
        }
        if (sqlite3_step(ins) != SQLITE_DONE)
            die(db, "insert");
        sqlite3_reset(ins);
        rows++;
        if (batch > 0 && rows % batch == 0 &&
            (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK ||
             sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK))
            die(db, "commit");
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die(db, "commit");
    sqlite3_finalize(ins);
    if (sqlite3_close(db) != SQLITE_OK)
        die(db, "close");
    free(line);
    fclose(in);
    printf("rows %lld wall_s %.3f cpu_s %.3f\n", rows, seconds(CLOCK_MONOTONIC) - wall0,
           seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0);
    return 0;
}
