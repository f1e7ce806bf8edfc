/*
 * Stress for metrics (a plain program: ThreadSanitizer checks it).
 *
 * While a pipeline runs — a multi-worker stage under the engine's circuit
 * breaker, a stage watching breakers of its own that its destroy() frees —
 * two threads take snapshots in a loop and render every export (JSON,
 * Prometheus, /health, tables, the live line), and a third fetches
 * /metrics, /health and /snapshot from the endpoint. Several runs, some
 * stopped midway. At the end the counts are exact.
 *
 *     src ─> flaky (workers 3, skip, breaker) ─> watch (workers 2) ─> sink
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/diag.h"
#include "engine/run.h"
#include "metrics/endpoint.h"
#include "sluice/plugin.h"

#include "stress_common.h"

/* Fails every 7th record. */
static int flaky_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    if (sl_value_get_int(sl_record_get(rec, "n")) % 7 == 0)
        return sl_stage_error(sc, SL_EPARSE, "seventh");
    return sl_emit(sc, rec);
}

/* Keeps a breaker of its own for the metrics to read, freed in destroy. */
typedef struct watch_state {
    sl_breaker *b;
} watch_state;

static int watch_init(void *state, sl_stage_ctx *sc)
{
    watch_state *st = state;
    sl_breaker_config bc = {.failures = 3, .cooldown_ns = SL_NS_PER_S};
    int rc = sl_breaker_create(&bc, &st->b);
    if (rc != 0)
        return rc;
    sl_stage_watch_breaker(sc, st->b);
    return 0;
}

static int watch_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    watch_state *st = state;
    if (sl_breaker_allow(st->b) == 0)
        sl_breaker_record(st->b, true);
    return sl_emit(sc, rec);
}

static void watch_destroy(void *state)
{
    watch_state *st = state;
    sl_breaker_destroy(st->b);
    st->b = NULL;
}

static _Atomic uint64_t stored;

static int sink_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    atomic_fetch_add(&stored, 1);
    sl_record_stored(sc, rec);
    return 0;
}

static const sl_stage_desc flaky_desc = {
    SL_STAGE_DESC_HEADER, .name = "flaky", .kind = SL_STAGE_TRANSFORM,
    .process = flaky_process,
};
static const sl_stage_desc watch_desc = {
    SL_STAGE_DESC_HEADER, .name = "watch", .kind = SL_STAGE_TRANSFORM,
    .state_size = sizeof(watch_state), .init = watch_init,
    .process = watch_process, .destroy = watch_destroy,
};
static const sl_stage_desc sink_desc = {
    SL_STAGE_DESC_HEADER, .name = "sink", .kind = SL_STAGE_SINK,
    .process = sink_process,
};

/* ------------------------------------------------------------------ */
/* Readers                                                             */
/* ------------------------------------------------------------------ */

static _Atomic bool done;
static _Atomic uint64_t snapshots;

static void *snapshot_loop(void *arg)
{
    sl__run *run = arg;
    sl__run_snapshot prev;
    bool has_prev = false;
    while (!atomic_load(&done)) {
        sl__run_snapshot s, w;
        CHECK(sl__run_snapshot_take(run, has_prev ? &prev : NULL, &s) == 0,
              "take");
        sl_buf b;
        sl_buf_init(&b);
        int code = 0;
        CHECK(sl__run_snapshot_json(&s, &b) == 0, "json");
        CHECK(sl__metrics_prometheus(&s, &b) == 0, "prometheus");
        CHECK(sl__metrics_health_json(&s, &b, &code) == 0, "health");
        sl_buf_fini(&b);
        FILE *null = fopen("/dev/null", "w");
        CHECK(null != NULL, "/dev/null");
        sl__run_snapshot_print_table(&s, null);
        sl__metrics_print_report(&s, null);
        fclose(null);
        if (has_prev && sl__run_snapshot_window(&s, &prev, &w) == 0) {
            char line[256];
            sl__metrics_progress_line(&w, s.elapsed_s, line, sizeof(line));
            sl__run_snapshot_fini(&w);
        }
        if (has_prev)
            sl__run_snapshot_fini(&prev);
        prev = s;
        has_prev = true;
        atomic_fetch_add(&snapshots, 1);
    }
    if (has_prev)
        sl__run_snapshot_fini(&prev);
    return NULL;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static const char *server_addr;

static void *http_loop(void *arg)
{
    (void)arg;
    static const char *const paths[] = {"/metrics", "/health", "/snapshot"};
    CURL *c = curl_easy_init();
    CHECK(c != NULL, "curl");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    for (int i = 0; !atomic_load(&done); i++) {
        char url[128];
        snprintf(url, sizeof(url), "http://%s%s", server_addr, paths[i % 3]);
        curl_easy_setopt(c, CURLOPT_URL, url);
        CHECK(curl_easy_perform(c) == CURLE_OK, "GET %s", url);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static int live(void *arg, sl__run_snapshot *out)
{
    return sl__run_snapshot_take(arg, NULL, out);
}

/* ------------------------------------------------------------------ */

static void one_run(int64_t count, bool stop_midway)
{
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "stress";
    cfg.name = "stress";
    cfg.settings.channel_capacity = 32;
    cfg.settings.shutdown_timeout_ns = 60 * SL_NS_PER_S;
    cfg.settings.stall_timeout_ns = 30 * SL_NS_PER_S;
    sl_stage_conf conf[4];
    memset(conf, 0, sizeof(conf));
    const sl_stage_desc *descs[4] = {&src_desc, &flaky_desc, &watch_desc,
                                     &sink_desc};
    const char *names[4] = {"src", "flaky", "watch", "sink"};
    int workers[4] = {1, 3, 2, 1};
    size_t inputs[4] = {0, 0, 1, 2};
    sl__run_stage st[4];
    char opt[64];
    snprintf(opt, sizeof(opt), "count: %lld", (long long)count);
    for (int i = 0; i < 4; i++) {
        conf[i].name = (char *)names[i];
        conf[i].desc = descs[i];
        conf[i].workers = workers[i];
        st[i].conf = &conf[i];
        st[i].n_inputs = i == 0 ? 0 : 1;
        st[i].inputs = &inputs[i];
        st[i].options_yaml = i == 0 ? opt : NULL;
    }
    conf[1].on_error = SL_ON_ERROR_SKIP;
    conf[1].breaker.set = true;
    conf[1].breaker.failures = 1000000;
    conf[1].breaker.cooldown_ns = SL_NS_PER_S;

    sl__run_opts o = {.cfg = &cfg, .n_stages = 4, .stages = st};
    sl_diag *diag = sl__diag_create();
    sl__run *run = NULL;
    CHECK(sl__run_create(&o, diag, &run) == 0, "create");
    char err[256];
    sl__metrics_server *srv = NULL;
    CHECK(sl__metrics_server_start("127.0.0.1:0", live, run, err, sizeof(err),
                                   &srv) == 0, "%s", err);
    server_addr = sl__metrics_server_address(srv);
    atomic_store(&stored, 0);
    atomic_store(&done, false);
    pthread_t readers[3];
    CHECK(sl__run_start(run) == 0, "start");
    CHECK(pthread_create(&readers[0], NULL, snapshot_loop, run) == 0, "thread");
    CHECK(pthread_create(&readers[1], NULL, snapshot_loop, run) == 0, "thread");
    CHECK(pthread_create(&readers[2], NULL, http_loop, NULL) == 0, "thread");
    if (stop_midway) {
        while (atomic_load(&stored) < 2000)
            sched_yield();
        sl__run_stop(run, false);
    }
    sl__run_result res;
    sl__run_wait(run, &res);
    atomic_store(&done, true);
    for (int i = 0; i < 3; i++)
        pthread_join(readers[i], NULL);
    sl__metrics_server_stop(srv);

    sl__run_snapshot s;
    CHECK(sl__run_snapshot_take(run, NULL, &s) == 0, "take");
    uint64_t emitted = s.stages[0].records_out;
    if (!stop_midway)
        CHECK(emitted == (uint64_t)count, "emitted %llu",
              (unsigned long long)emitted);
    uint64_t sevenths = emitted / 7;
    CHECK(s.stages[1].records_in == emitted, "flaky in %llu",
          (unsigned long long)s.stages[1].records_in);
    CHECK(s.stages[1].errors == sevenths, "flaky errors %llu of %llu",
          (unsigned long long)s.stages[1].errors,
          (unsigned long long)emitted);
    CHECK(s.stages[3].records_out == emitted - sevenths, "stored %llu",
          (unsigned long long)s.stages[3].records_out);
    CHECK(s.stages[1].has_breaker && strcmp(s.stages[1].breaker_state,
                                            "closed") == 0, "engine breaker");
    CHECK(s.stages[2].has_breaker && strcmp(s.stages[2].breaker_state,
                                            "closed") == 0, "watched breaker");
    CHECK(s.stages[1].latency_count == emitted, "latency count %llu",
          (unsigned long long)s.stages[1].latency_count);
    CHECK(res.status == (stop_midway ? SL__RUN_INTERRUPTED : SL__RUN_SUCCEEDED),
          "status %s: %s", sl__run_status_name(res.status), res.cause);
    sl__run_snapshot_fini(&s);
    sl__run_destroy(run);
    sl__diag_destroy(diag);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int round = 0; round < 4; round++)
        one_run(round % 2 == 0 ? 10000 : 0, round % 2 == 1);
    curl_global_cleanup();
    printf("stress_metrics: ok (%llu snapshots)\n",
           (unsigned long long)atomic_load(&snapshots));
    return 0;
}
