/*
 * The `http` fetch stage's three threads (fetcher, bridge, worker) and the
 * store, over and over against the loopback test server: ordered output
 * under random delays and failures with many transfers in flight, a
 * downstream that cancels mid-stream, stop requests and cancellations
 * racing transfers in flight. Run under ThreadSanitizer to check the
 * hand-offs. Exit 0 on success.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/harness.h"
#include "engine/stage_ctx.h"
#include "sluice/plugin.h"
#include "support/http_server.h"

extern const sl_stage_desc sl_stage_http_fetch;
extern const sl_stage_desc sl_stage_http_store;

static int failures;

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "stress_http:%d: %s: ", __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
            failures++;                                                 \
        }                                                               \
    } while (0)

static http_server *srv;

/* YAML for n URLs /s<round>/<i>, each with a random delay, every seventh
 * failing once. malloc'd. */
static char *urls_yaml(int round, int n, int workers)
{
    size_t cap = (size_t)n * 128 + 256;
    char *y = malloc(cap);
    if (y == NULL)
        abort();
    int at = snprintf(y, cap, "workers: %d\nretry: {attempts: 3, backoff: 1ms, "
                      "max_backoff: 2ms}\nurls:\n", workers);
    for (int i = 0; i < n; i++) {
        char u[128];
        http_server_url(srv, u, sizeof(u), "/s%d/%d?delay_ms=%d%s", round, i,
                        rand() % 6, i % 7 == 3 ? "&fail=1" : "");
        at += snprintf(y + at, cap - (size_t)at, "  - '%s'\n", u);
    }
    return y;
}

static void ordered_round(int round)
{
    enum { N = 120 };
    char *yaml = urls_yaml(round, N, 1 + round % 8);
    sl_harness *h = NULL;
    CHECK(sl_harness_create(&sl_stage_http_fetch, yaml, &h) == 0, "create");
    CHECK(sl_harness_init(h) == 0, "init: %s", sl_harness_last_error(h));
    int rc = sl_harness_run(h);
    CHECK(rc == 0, "run: %s", sl_harness_last_error(h));
    CHECK(sl_harness_emitted_count(h) == N, "emitted %zu",
          sl_harness_emitted_count(h));
    for (size_t i = 0; i < sl_harness_emitted_count(h); i++) {
        const sl_position *p = sl_record_position(sl_harness_emitted(h, i));
        CHECK(p->seq == (int64_t)i + 1, "record %zu has seq %lld", i,
              (long long)p->seq);
    }
    CHECK(sl_harness_retry_count(h) == (N + 3) / 7, "retries %llu",
          (unsigned long long)sl_harness_retry_count(h));
    sl_harness_destroy(h);
    free(yaml);
}

typedef struct interrupter {
    sl_harness *h;
    uint64_t after;     /* server hits to wait for */
    bool stop;          /* stop request instead of cancel */
} interrupter;

static void *interrupt_main(void *arg)
{
    interrupter *in = arg;
    http_server_wait_hits(srv, in->after, 10000);
    if (in->stop)
        sl_harness_stop(in->h);
    else
        sl_harness_cancel(in->h, "stress");
    return NULL;
}

static void interrupted_round(int round, bool stop)
{
    enum { N = 200 };
    char *yaml = urls_yaml(1000 + round, N, 8);
    sl_harness *h = NULL;
    CHECK(sl_harness_create(&sl_stage_http_fetch, yaml, &h) == 0, "create");
    CHECK(sl_harness_init(h) == 0, "init: %s", sl_harness_last_error(h));
    interrupter in = {h, http_server_hits(srv) + 5 + (uint64_t)(rand() % 60), stop};
    pthread_t t;
    if (pthread_create(&t, NULL, interrupt_main, &in) != 0)
        abort();
    int rc = sl_harness_run(h);
    pthread_join(t, NULL);
    if (stop)
        CHECK(rc == 0, "stopped run: %s", sl_harness_last_error(h));
    else
        CHECK(rc == SL_ECANCELED || rc == 0, "cancelled run: %s",
              sl_error_name(rc));
    for (size_t i = 0; i < sl_harness_emitted_count(h); i++) {
        const sl_position *p = sl_record_position(sl_harness_emitted(h, i));
        CHECK(p->seq == (int64_t)i + 1, "in order until interrupted");
    }
    sl_harness_destroy(h);
    free(yaml);
}

static void store_round(int round)
{
    char u[128];
    http_server_url(srv, u, sizeof(u), "/store%d?delay_ms=1", round);
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "url: '%s'\nbatch_size: 7", u);
    sl_harness *h = NULL;
    CHECK(sl_harness_create(&sl_stage_http_store, yaml, &h) == 0, "create");
    CHECK(sl_harness_init(h) == 0, "init: %s", sl_harness_last_error(h));
    interrupter in = {h, http_server_hits(srv) + 3, false};
    pthread_t t;
    if (pthread_create(&t, NULL, interrupt_main, &in) != 0)
        abort();
    for (int i = 0; i < 200; i++) {
        char rec[64];
        snprintf(rec, sizeof(rec), "{\"id\":%d}", i);
        if (sl_harness_process_json(h, rec) != 0)
            break;
    }
    pthread_join(t, NULL);
    sl_harness_destroy(h);
}

int main(void)
{
    srand(7);
    sl__log_set_level(SL_LOG_ERROR);   /* the retries' warnings are expected */
    if (http_server_start(&srv) != 0) {
        fprintf(stderr, "stress_http: cannot start the test server\n");
        return 1;
    }
    for (int r = 0; r < 8; r++)
        ordered_round(r);
    for (int r = 0; r < 6; r++)
        interrupted_round(r, r % 2 == 0);
    for (int r = 0; r < 4; r++)
        store_round(r);
    http_server_stop(srv);
    if (failures != 0) {
        fprintf(stderr, "stress_http: %d checks failed\n", failures);
        return 1;
    }
    return 0;
}
