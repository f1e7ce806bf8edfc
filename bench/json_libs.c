/*
 * json_libs: the measurement behind docs/decisions/0001 — which Debian JSON
 * library sluice parses and serialises records with.
 *
 *   json_libs_LIB EVENTS.jsonl [--runs N] [--suite DIR] [--raw] [--no-checks]
 *
 * Compiled once per library with -DBENCH_JANSSON, -DBENCH_JSONC,
 * -DBENCH_CJSON or -DBENCH_SLUICE (jansson and json-c declare the same
 * names, json_object among them, so they cannot share a program). For
 * jansson, json-c and cJSON (each called the way it is fastest: reused
 * tokeniser or preallocated output where the library offers one) and for
 * sluice's own sl_json_parse / sl_json_dump (jansson underneath, our
 * serialiser), it reports
 *   - parse-only and parse+serialise throughput over every line of the
 *     file, median of N runs (MB/s of input, lines/s) by CPU time, with
 *     the wall-clock median beside it (--raw: one line per run instead,
 *     which bench/json_libs.sh interleaves across libraries so a busy
 *     machine slows all of them alike);
 *   - correctness properties: int64 precision, NUL in strings, trailing
 *     garbage, order of keys, error message with line/column;
 *   - JSONTestSuite results (y_ accepted, n_ rejected, i_ accepted) when
 *     --suite points at test_parsing/; each library runs in a child process
 *     so a crash is reported, not fatal.
 *
 * Built and run by bench/json_libs.sh; not part of the CMake build, because
 * it links json-c and cJSON, which sluice itself does not use.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(BENCH_JANSSON)
#include <jansson.h>
#elif defined(BENCH_JSONC)
#include <json-c/json.h>
#elif defined(BENCH_CJSON)
#include <cjson/cJSON.h>
#elif defined(BENCH_SLUICE)
#include "sluice/value.h"
#else
#error "define one of BENCH_JANSSON, BENCH_JSONC, BENCH_CJSON, BENCH_SLUICE"
#endif

/* ------------------------------------------------------------ adapters */

/* One library behind three calls. parse returns NULL on error and writes a
 * message into err. dump returns the length of the compact text, which it
 * leaves in *out (valid until the next dump or free). */
typedef struct lib {
    const char *name;
    void *(*parse)(const char *buf, size_t len, char *err, size_t errlen);
    size_t (*dump)(void *doc, const char **out);
    void (*free_doc)(void *doc);
    /* The string at doc[0] (a one-element array), for the NUL check. */
    const char *(*first_string)(void *doc, size_t *len);
} lib;

static char *out_buf;       /* shared output buffer for dumps */
static size_t out_cap;

static void out_reserve(size_t n)
{
    if (n <= out_cap)
        return;
    out_cap = n * 2;
    out_buf = realloc(out_buf, out_cap);
    if (out_buf == NULL) {
        perror("realloc");
        exit(1);
    }
}

#if defined(BENCH_JANSSON)
static void *jansson_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    json_error_t e;
    json_t *j = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (j == NULL)
        snprintf(err, errlen, "%d:%d: %s", e.line, e.column, e.text);
    return j;
}

static size_t jansson_dump(void *doc, const char **out)
{
    size_t n = json_dumpb(doc, out_buf, out_cap, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n > out_cap) {
        out_reserve(n);
        n = json_dumpb(doc, out_buf, out_cap, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    *out = out_buf;
    return n;
}

static void jansson_free(void *doc)
{
    json_decref(doc);
}

static const char *jansson_first(void *doc, size_t *len)
{
    json_t *s = json_array_get(doc, 0);
    *len = json_string_length(s);
    return json_string_value(s);
}

static void lib_fini(void)
{
}

static const lib the_lib = {"jansson", jansson_parse, jansson_dump, jansson_free, jansson_first};

#elif defined(BENCH_JSONC)
/* json-c: one tokeniser, reset per document, strict with UTF-8 checks. */
static json_tokener *jc_tok;

static void *jsonc_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    if (jc_tok == NULL) {
        jc_tok = json_tokener_new_ex(512);
        json_tokener_set_flags(jc_tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    }
    json_tokener_reset(jc_tok);
    struct json_object *o = json_tokener_parse_ex(jc_tok, buf, (int)len);
    enum json_tokener_error e = json_tokener_get_error(jc_tok);
    if (o == NULL && e == json_tokener_success)
        e = json_tokener_error_parse_unexpected;   /* e.g. a bare "null" reads as NULL */
    if (e == json_tokener_continue) {
        /* Incomplete, or a bare number waiting for a terminator: feed an
         * empty chunk to say the input ended. */
        o = json_tokener_parse_ex(jc_tok, "", 1);
        e = json_tokener_get_error(jc_tok);
        if (e == json_tokener_success && json_tokener_get_parse_end(jc_tok) != 0)
            e = json_tokener_error_parse_eof;
    } else if (e == json_tokener_success) {
        size_t end = json_tokener_get_parse_end(jc_tok);
        for (; end < len; end++)
            if (strchr(" \t\r\n", buf[end]) == NULL) {
                json_object_put(o);
                snprintf(err, errlen, "offset %zu: trailing characters", end);
                return NULL;
            }
    }
    if (e != json_tokener_success) {
        json_object_put(o);
        snprintf(err, errlen, "offset %zu: %s", json_tokener_get_parse_end(jc_tok),
                 json_tokener_error_desc(e));
        return NULL;
    }
    if (o == NULL)   /* "null" */
        return (void *)&jc_tok;   /* stands for JSON null */
    return o;
}

static struct json_object *jc_obj(void *doc)
{
    return doc == (void *)&jc_tok ? NULL : doc;
}

static size_t jsonc_dump(void *doc, const char **out)
{
    size_t n;
    *out = json_object_to_json_string_length(jc_obj(doc), JSON_C_TO_STRING_PLAIN, &n);
    return n;
}

static void jsonc_free(void *doc)
{
    json_object_put(jc_obj(doc));
}

static const char *jsonc_first(void *doc, size_t *len)
{
    struct json_object *s = json_object_array_get_idx(jc_obj(doc), 0);
    *len = (size_t)json_object_get_string_len(s);
    return json_object_get_string(s);
}

static void lib_fini(void)
{
    if (jc_tok != NULL)
        json_tokener_free(jc_tok);
}

static const lib the_lib = {"json-c", jsonc_parse, jsonc_dump, jsonc_free, jsonc_first};

#elif defined(BENCH_CJSON)
static void *cjson_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    const char *end = NULL;
    cJSON *c = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (c == NULL) {
        snprintf(err, errlen, "offset %td: parse error", end != NULL ? end - buf : -1);
        return NULL;
    }
    for (; (size_t)(end - buf) < len; end++)
        if (strchr(" \t\r\n", *end) == NULL) {
            cJSON_Delete(c);
            snprintf(err, errlen, "offset %td: trailing characters", end - buf);
            return NULL;
        }
    return c;
}

static size_t cjson_dump(void *doc, const char **out)
{
    while (!cJSON_PrintPreallocated(doc, out_buf, (int)out_cap, 0))
        out_reserve(out_cap * 2);
    *out = out_buf;
    return strlen(out_buf);
}

static void cjson_free(void *doc)
{
    cJSON_Delete(doc);
}

static const char *cjson_first(void *doc, size_t *len)
{
    const char *s = cJSON_GetStringValue(cJSON_GetArrayItem(doc, 0));
    *len = s != NULL ? strlen(s) : 0;
    return s;
}

static void lib_fini(void)
{
}

static const lib the_lib = {"cJSON", cjson_parse, cjson_dump, cjson_free, cjson_first};

#elif defined(BENCH_SLUICE)
/* sluice: sl_json_parse / sl_json_dump */
static sl_buf sl_out;

static void *sluice_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    sl_value *v = NULL;
    sl_json_error e;
    if (sl_json_parse(buf, len, NULL, &v, &e) != 0) {
        snprintf(err, errlen, "%d:%d: %s", e.line, e.column, e.text);
        return NULL;
    }
    return v;
}

static size_t sluice_dump(void *doc, const char **out)
{
    sl_buf_reset(&sl_out);
    if (sl_json_dump(doc, &sl_out) != 0) {
        fprintf(stderr, "sl_json_dump failed\n");
        exit(1);
    }
    *out = sl_out.data;
    return sl_out.len;
}

static void sluice_free(void *doc)
{
    sl_value_unref(doc);
}

static const char *sluice_first(void *doc, size_t *len)
{
    return sl_value_get_string(sl_array_get(doc, 0), len);
}

static void lib_fini(void)
{
    sl_buf_fini(&sl_out);
}

static const lib the_lib = {"sluice", sluice_parse, sluice_dump, sluice_free, sluice_first};
#endif

/* ------------------------------------------------------------ throughput */

typedef struct lines {
    char *data;
    size_t size;
    size_t *start;   /* offsets of line starts; start[n] = end */
    size_t n;
} lines;

static void load_lines(const char *path, lines *l)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    l->size = (size_t)ftell(f);
    rewind(f);
    l->data = malloc(l->size + 1);
    if (l->data == NULL || fread(l->data, 1, l->size, f) != l->size) {
        fprintf(stderr, "%s: read failed\n", path);
        exit(1);
    }
    fclose(f);
    size_t cap = 1024;
    l->start = malloc(cap * sizeof(*l->start));
    l->n = 0;
    size_t pos = 0;
    while (pos < l->size) {
        if (l->n + 2 > cap) {
            cap *= 2;
            l->start = realloc(l->start, cap * sizeof(*l->start));
        }
        l->start[l->n++] = pos;
        char *nl = memchr(l->data + pos, '\n', l->size - pos);
        pos = nl != NULL ? (size_t)(nl - l->data) + 1 : l->size;
    }
    l->start[l->n] = l->size;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds for one pass (the machine may be shared, so CPU time is the
 * steadier figure), wall seconds in *wall; the checksum of dump lengths
 * keeps the work from being optimised away. */
static double one_pass(const lib *L, const lines *l, int with_dump, size_t *checksum,
                       double *wall)
{
    char err[256];
    double w0 = clock_s(CLOCK_MONOTONIC);
    double t0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (size_t i = 0; i < l->n; i++) {
        size_t len = l->start[i + 1] - l->start[i] - 1;   /* without '\n' */
        void *doc = L->parse(l->data + l->start[i], len, err, sizeof(err));
        if (doc == NULL) {
            fprintf(stderr, "%s: line %zu: %s\n", L->name, i + 1, err);
            exit(1);
        }
        if (with_dump) {
            const char *out;
            *checksum += L->dump(doc, &out);
        }
        L->free_doc(doc);
    }
    *wall = clock_s(CLOCK_MONOTONIC) - w0;
    return clock_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void throughput(const lib *L, const lines *l, int runs, int raw)
{
    static const char *const modes[] = {"parse", "parse+dump"};
    for (int mode = 0; mode < 2; mode++) {
        if (raw) {
            /* One line per run for the script to aggregate across programs. */
            for (int r = 0; r < runs; r++) {
                size_t checksum = 0;
                double wall, cpu = one_pass(L, l, mode, &checksum, &wall);
                printf("raw %s %s %.6f %.6f %zu %zu\n", L->name, modes[mode], cpu, wall, l->size,
                       l->n);
                fflush(stdout);
            }
            continue;
        }
        double t[64], w[64];
        size_t checksum = 0;
        for (int r = 0; r < runs; r++)
            t[r] = one_pass(L, l, mode, &checksum, &w[r]);
        qsort(t, (size_t)runs, sizeof(double), cmp_double);
        qsort(w, (size_t)runs, sizeof(double), cmp_double);
        double med = t[runs / 2];
        printf("%-8s %-10s cpu median %6.3f s (min %6.3f max %6.3f) %6.1f MB/s %9.0f lines/s"
               " | wall median %6.3f s\n",
               L->name, modes[mode], med, t[0], t[runs - 1], (double)l->size / med / 1e6,
               (double)l->n / med, w[runs / 2]);
        fflush(stdout);
    }
}

/* ------------------------------------------------------------ correctness */

static void check_round_trip(const lib *L, const char *label, const char *in, const char *want)
{
    char err[256];
    void *doc = L->parse(in, strlen(in), err, sizeof(err));
    if (doc == NULL) {
        printf("%-8s %-22s REJECTED: %s\n", L->name, label, err);
        return;
    }
    const char *out;
    size_t n = L->dump(doc, &out);
    printf("%-8s %-22s %-4s %.*s\n", L->name, label,
           n == strlen(want) && memcmp(out, want, n) == 0 ? "ok" : "BAD", (int)n, out);
    L->free_doc(doc);
}

static void check_rejects(const lib *L, const char *label, const char *in, size_t len)
{
    char err[256];
    void *doc = L->parse(in, len, err, sizeof(err));
    if (doc != NULL) {
        printf("%-8s %-22s BAD  accepted\n", L->name, label);
        L->free_doc(doc);
        return;
    }
    printf("%-8s %-22s ok   rejected: %s\n", L->name, label, err);
}

static void correctness(const lib *L)
{
    char err[256];
    check_round_trip(L, "int64 2^53+1", "[9007199254740993]", "[9007199254740993]");
    check_round_trip(L, "int64 extremes", "[-9223372036854775808,9223372036854775807]",
                     "[-9223372036854775808,9223372036854775807]");
    check_round_trip(L, "double 0.1", "[0.1]", "[0.1]");
    check_round_trip(L, "double 1.0", "[1.0]", "[1.0]");
    check_round_trip(L, "key order", "{\"b\":1,\"a\":2,\"c\":3}", "{\"b\":1,\"a\":2,\"c\":3}");

    const char *nul = "[\"a\\u0000b\"]";
    void *doc = L->parse(nul, strlen(nul), err, sizeof(err));
    if (doc == NULL) {
        printf("%-8s %-22s REJECTED: %s\n", L->name, "NUL in string", err);
    } else {
        size_t len;
        const char *s = L->first_string(doc, &len);
        const char *out;
        size_t n = L->dump(doc, &out);
        printf("%-8s %-22s %-4s length %zu, dumped %.*s\n", L->name, "NUL in string",
               s != NULL && len == 3 && memcmp(s, "a\0b", 3) == 0 ? "ok" : "BAD", len, (int)n, out);
        L->free_doc(doc);
    }
    check_rejects(L, "trailing garbage", "[1] x", 5);
    check_rejects(L, "two documents", "{} {}", 5);
    check_rejects(L, "invalid UTF-8", "[\"\xff\"]", 5);
    check_rejects(L, "error location", "{\"a\": 1,\n \"b\": }", 16);
}

/* ------------------------------------------------------------ JSONTestSuite */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void suite_child(const lib *L, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        printf("%-8s suite: cannot open %s\n", L->name, dir);
        return;
    }
    int total[3] = {0}, accepted[3] = {0};
    char wrong[4096] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int kind = e->d_name[0] == 'y' ? 0 : e->d_name[0] == 'n' ? 1 : e->d_name[0] == 'i' ? 2 : -1;
        if (kind < 0 || e->d_name[1] != '_')
            continue;
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len;
        char *buf = read_all(path, &len);
        if (buf == NULL)
            continue;
        /* Announce the file first so a crash names it. */
        fprintf(stderr, "%s\r", e->d_name);
        char err[256];
        void *doc = L->parse(buf, len, err, sizeof(err));
        total[kind]++;
        if (doc != NULL) {
            accepted[kind]++;
            L->free_doc(doc);
        }
        if ((kind == 0 && doc == NULL) || (kind == 1 && doc != NULL)) {
            size_t w = strlen(wrong);
            snprintf(wrong + w, sizeof(wrong) - w, " %s", e->d_name);
        }
        free(buf);
    }
    closedir(d);
    fprintf(stderr, "%60s\r", "");
    printf("%-8s suite: y accepted %d/%d, n rejected %d/%d, i accepted %d/%d\n", L->name,
           accepted[0], total[0], total[1] - accepted[1], total[1], accepted[2], total[2]);
    if (wrong[0] != '\0')
        printf("%-8s   wrong:%s\n", L->name, wrong);
}

static void suite(const lib *L, const char *dir)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        suite_child(L, dir);
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        printf("%-8s suite: CRASHED (signal %d) on the file named on stderr\n", L->name,
               WTERMSIG(status));
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    const char *path = NULL, *suite_dir = NULL;
    int runs = 5, raw = 0, checks = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--raw") == 0)
            raw = 1;
        else if (strcmp(argv[i], "--no-checks") == 0)
            checks = 0;
        else if (strcmp(argv[i], "--suite") == 0 && i + 1 < argc)
            suite_dir = argv[++i];
        else
            path = argv[i];
    }
    if (path == NULL || runs < 0 || runs > 64) {
        fprintf(stderr, "usage: json_libs_LIB EVENTS.jsonl [--runs N] [--suite DIR] [--raw] "
                        "[--no-checks]\n");
        return 2;
    }
    out_reserve(1 << 16);

    if (checks) {
        printf("== %s: correctness\n", the_lib.name);
        correctness(&the_lib);
    }
    if (checks && suite_dir != NULL) {
        printf("== %s: JSONTestSuite (%s)\n", the_lib.name, suite_dir);
        suite(&the_lib, suite_dir);
    }

    if (runs == 0) {   /* checks only */
        lib_fini();
        free(out_buf);
        return 0;
    }
    lines l;
    load_lines(path, &l);
    if (!raw)
        printf("== %s: throughput on %s, %zu lines, %.1f MB, median of %d runs\n", the_lib.name,
               path, l.n, (double)l.size / 1e6, runs);
    throughput(&the_lib, &l, runs, raw);

    lib_fini();
    free(out_buf);
    free(l.start);
    free(l.data);
    return 0;
}
