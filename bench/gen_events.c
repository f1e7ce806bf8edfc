/*
 * gen_events: deterministic synthetic access-log events for benchmarks.
 *
 *   gen_events [--count N] [--format jsonl|csv] [--seed S] [--output PATH]
 *
 * Writes N events (default 1000000) as JSON lines of about 125 bytes,
 *
 *   {"id":1,"ts":"2026-01-01T00:00:00.042Z","user":"u42","status":503,
 *    "path":"/api/v1/items/17","bytes":5123,"latency_ms":12.5}
 *
 * or as CSV with a header line and the same columns. The same seed always
 * gives the same bytes (default seed 1). About 20% of events have a status
 * of 500 or more. Standalone on purpose (libc only), so any benchmark or
 * script can build it:  cc -O2 -o gen_events bench/gen_events.c
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* splitmix64: small, fast, and the same on every platform. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint64_t below(uint64_t *state, uint64_t n)
{
    return next_random(state) % n;
}

/* Status codes with weights out of 1000; 500 and above sum to 200. */
static const struct {
    int status;
    int weight;
} statuses[] = {
    {200, 520}, {201, 60}, {204, 30}, {301, 20}, {304, 40}, {400, 40}, {404, 60},
    {429, 30}, {500, 80}, {502, 40}, {503, 60}, {504, 20},
};

static const char *const paths[] = {
    "/api/v1/items/%u", "/api/v1/users/%u", "/api/v1/orders/%u",
    "/search?q=%u", "/img/%u.png", "/health",
};

static int pick_status(uint64_t *state)
{
    int r = (int)below(state, 1000);
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        if (r < statuses[i].weight)
            return statuses[i].status;
        r -= statuses[i].weight;
    }
    return 200;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: gen_events [--count N] [--format jsonl|csv] [--seed S] [--output PATH]\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t count = 1000000, seed = 1;
    const char *format = "jsonl", *output = NULL;

    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (val == NULL) {
            usage(stderr);
            return 2;
        }
        if (strcmp(arg, "--count") == 0 && parse_u64(val, &count) == 0) {
        } else if (strcmp(arg, "--seed") == 0 && parse_u64(val, &seed) == 0) {
        } else if (strcmp(arg, "--format") == 0 &&
                   (strcmp(val, "jsonl") == 0 || strcmp(val, "csv") == 0)) {
            format = val;
        } else if (strcmp(arg, "--output") == 0) {
            output = val;
        } else {
            fprintf(stderr, "gen_events: bad argument %s %s\n", arg, val);
            usage(stderr);
            return 2;
        }
    }

    FILE *out = stdout;
    if (output != NULL && (out = fopen(output, "w")) == NULL) {
        fprintf(stderr, "gen_events: %s: %s\n", output, strerror(errno));
        return 1;
    }
    static char iobuf[1 << 16];
    setvbuf(out, iobuf, _IOFBF, sizeof(iobuf));

    bool csv = strcmp(format, "csv") == 0;
    if (csv)
        fputs("id,ts,user,status,path,bytes,latency_ms\n", out);

    uint64_t state = seed;
    /* 2026-01-01T00:00:00Z; events arrive 0-40 ms apart. */
    int64_t ts_ms = INT64_C(1767225600000);
    for (uint64_t id = 1; id <= count; id++) {
        ts_ms += (int64_t)below(&state, 41);
        time_t secs = (time_t)(ts_ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char ts[80];
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ts_ms % 1000));

        unsigned user = (unsigned)below(&state, 1000);
        int status = pick_status(&state);
        char path[64];
        const char *pfmt = paths[below(&state, sizeof(paths) / sizeof(paths[0]))];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(path, sizeof(path), pfmt, (unsigned)below(&state, 10000));
#pragma GCC diagnostic pop
        unsigned bytes = status == 204 || status == 304 ? 0 : (unsigned)below(&state, 20000);
        /* Mostly fast, with a slow tail; one decimal place. */
        unsigned lat10 = (unsigned)below(&state, 500);
        if (below(&state, 10) == 0)
            lat10 += (unsigned)below(&state, 20000);
        if (status >= 500)
            lat10 += 1000;

        if (csv)
            fprintf(out, "%" PRIu64 ",%s,u%u,%d,%s,%u,%u.%u\n", id, ts, user, status, path,
                    bytes, lat10 / 10, lat10 % 10);
        else
            fprintf(out,
                    "{\"id\":%" PRIu64 ",\"ts\":\"%s\",\"user\":\"u%u\",\"status\":%d,"
                    "\"path\":\"%s\",\"bytes\":%u,\"latency_ms\":%u.%u}\n",
                    id, ts, user, status, path, bytes, lat10 / 10, lat10 % 10);
    }
    if (fflush(out) != 0 || (out != stdout && fclose(out) != 0)) {
        fprintf(stderr, "gen_events: write failed: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
