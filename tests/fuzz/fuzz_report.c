/*
 * libFuzzer target for `sluice report`: arbitrary bytes read as a metrics
 * history and, when they read, drawn as the HTML page. Checks what the
 * page promises: a whole document, no markup from the input (every
 * data-stage attribute value free of < > and quotes), no script.
 *
 * Build and run (see run_all.sh): tests/fuzz/run_all.sh 10, or
 *   build-fuzz/fuzz_report -max_total_time=60 tests/fuzz/corpus/report
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/report.h"
#include "sluice/error.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_report: " __VA_ARGS__);                   \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > (1 << 16))
        return 0;
    FILE *f = fmemopen((void *)data, size, "r");
    if (f == NULL)
        return 0;
    sl__history h;
    size_t line = 0;
    char err[256] = "";
    int rc = sl__history_read(f, 0, &h, &line, err, sizeof(err));
    fclose(f);
    if (rc != 0) {
        CHECK(rc == SL_EPARSE || rc == SL_ENOMEM || rc == SL_EIO, "rc %d", rc);
        CHECK(rc != SL_EPARSE || err[0] != '\0', "no message");
        return 0;
    }
    CHECK(h.n_points >= 1 && h.run >= 1 && h.run <= h.n_runs, "counts");
    sl_buf b;
    sl_buf_init(&b);
    sl__report_opts o = {.source = "fuzz.jsonl", .max_points = 7};
    rc = sl__report_html(&h, &o, &b);
    if (rc == 0 && sl_buf_putc(&b, '\0') == 0) {
        CHECK(strncmp(b.data, "<!DOCTYPE html>", 15) == 0, "no doctype");
        CHECK(strstr(b.data, "</html>\n") != NULL, "not whole");
        CHECK(strstr(b.data, "<script") == NULL, "a script");
        for (const char *p = strstr(b.data, "data-stage=\""); p != NULL;
             p = strstr(p + 1, "data-stage=\"")) {
            const char *v = p + 12;
            size_t n = strcspn(v, "\"<>");
            CHECK(v[n] == '"', "markup in a stage name: %.40s", v);
        }
    }
    sl_buf_fini(&b);
    sl__history_fini(&h);
    return 0;
}
