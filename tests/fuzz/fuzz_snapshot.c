/*
 * libFuzzer target for the metrics snapshot reader: `sluice metrics FILE`
 * reads a snapshot (or a history file's last line) that may come from
 * anywhere. Arbitrary bytes go through sl__run_snapshot_read; what it
 * accepts then goes through everything `sluice metrics` and the exporters
 * do with a snapshot — the report (tables and bottleneck), the run's
 * summary table, the live progress line over a window, the Prometheus text,
 * the /health body — and its JSON form must read back and write the same
 * bytes again. Refusals always carry a message.
 *
 * Build and run (see run_all.sh): tests/fuzz/run_all.sh 10, or
 *   build-fuzz/fuzz_snapshot -max_total_time=60 tests/fuzz/corpus/snapshot
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/snapshot.h"
#include "sluice/error.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_snapshot: " __VA_ARGS__);                 \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sink = fopen("/dev/null", "w");
    return sink != NULL ? 0 : -1;
}

/* Everything that formats a snapshot, with its outputs checked for shape. */
static void format_all(const sl__run_snapshot *s)
{
    sl__metrics_print_report(s, sink);
    sl__run_snapshot_print_table(s, sink);
    sl__metrics_print_bottleneck(s, sink);
    long b = sl__metrics_bottleneck(s);
    CHECK(b >= -1 && b < (long)s->n_stages, "bottleneck index %ld", b);
    for (size_t i = 0; i < s->n_stages; i++) {
        sl__stage_load load;
        sl__stage_load_of(s, i, &load);
    }

    sl__run_snapshot window;
    memset(&window, 0, sizeof(window));
    int rc = sl__run_snapshot_window(s, s, &window);
    CHECK(rc == 0 || rc == SL_ENOMEM, "window of a snapshot with itself: %d", rc);
    if (rc == 0) {
        char line[200];
        sl__metrics_progress_line(&window, s->elapsed_s, line, sizeof(line));
        CHECK(strlen(line) < sizeof(line), "progress line too long");
        sl__run_snapshot_fini(&window);
    }

    sl_buf b2;
    sl_buf_init(&b2);
    rc = sl__metrics_prometheus(s, &b2);
    CHECK(rc == 0 || rc == SL_ENOMEM, "prometheus: %d", rc);
    sl_buf_fini(&b2);

    sl_buf_init(&b2);
    int http_status = 0;
    rc = sl__metrics_health_json(s, &b2, &http_status);
    CHECK(rc == 0 || rc == SL_ENOMEM, "health: %d", rc);
    CHECK(rc != 0 || http_status == 200 || http_status == 503,
          "health status %d", http_status);
    sl_buf_fini(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    sl__run_snapshot s;
    memset(&s, 0, sizeof(s));
    int rc = sl__run_snapshot_read((const char *)data, size, &s, err,
                                   sizeof(err));
    if (rc != 0) {
        CHECK(rc == SL_EPARSE || rc == SL_ENOMEM, "rc %d", rc);
        CHECK(rc == SL_ENOMEM || err[0] != '\0', "refused without a message");
        return 0;
    }
    format_all(&s);

    /* The JSON form reads back, and writes the same bytes again. */
    sl_buf a, c;
    sl_buf_init(&a);
    sl_buf_init(&c);
    if (sl__run_snapshot_json(&s, &a) == 0) {
        sl__run_snapshot back;
        memset(&back, 0, sizeof(back));
        rc = sl__run_snapshot_read(a.data, a.len, &back, err, sizeof(err));
        CHECK(rc == 0 || rc == SL_ENOMEM, "own JSON refused (%s): %.*s", err,
              (int)a.len, a.data);
        if (rc == 0) {
            CHECK(back.n_stages == s.n_stages, "stage count changed");
            sl__run_snapshot again;
            memset(&again, 0, sizeof(again));
            if (sl__run_snapshot_json(&back, &c) == 0 &&
                sl__run_snapshot_read(c.data, c.len, &again, err,
                                      sizeof(err)) == 0) {
                sl_buf d;
                sl_buf_init(&d);
                if (sl__run_snapshot_json(&again, &d) == 0)
                    CHECK(c.len == d.len && memcmp(c.data, d.data, c.len) == 0,
                          "JSON form not stable:\n%.*s\n%.*s", (int)c.len,
                          c.data, (int)d.len, d.data);
                sl_buf_fini(&d);
                sl__run_snapshot_fini(&again);
            }
            sl__run_snapshot_fini(&back);
        }
    }
    sl_buf_fini(&a);
    sl_buf_fini(&c);
    sl__run_snapshot_fini(&s);
    return 0;
}
