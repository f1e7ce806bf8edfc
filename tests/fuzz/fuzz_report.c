/*
 * libFuzzer target for the history reader and the HTML report: `sluice
 * report FILE` reads a metrics.history file that may come from anywhere.
 * The first byte picks the run (0 = the last, 1..3) and the most points
 * per chart (1..64, so that long histories are merged into windows); the
 * rest is the file. What reads is drawn as the whole page, which must be
 * a complete HTML document; refusals carry a message.
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
    if (size < 1)
        return 0;
    size_t run = data[0] & 3;
    size_t max_points = 1 + (data[0] >> 2);
    data++;
    size--;
    /* fmemopen refuses an empty buffer: an empty file is /dev/null */
    FILE *f = size > 0 ? fmemopen((void *)data, size, "r")
                       : fopen("/dev/null", "r");
    CHECK(f != NULL, "cannot open the input");

    sl__history h;
    memset(&h, 0, sizeof(h));
    size_t err_line = 0;
    char err[256] = "";
    int rc = sl__history_read(f, run, &h, &err_line, err, sizeof(err));
    fclose(f);
    if (rc != 0) {
        CHECK(rc == SL_EPARSE || rc == SL_ENOMEM || rc == SL_EIO, "rc %d", rc);
        CHECK(rc != SL_EPARSE || err[0] != '\0', "refused without a message");
        return 0;
    }
    sl__report_opts opts = {.source = "fuzz.jsonl", .max_points = max_points};
    sl_buf b;
    sl_buf_init(&b);
    rc = sl__report_html(&h, &opts, &b);
    CHECK(rc == 0 || rc == SL_ENOMEM, "report rc %d", rc);
    if (rc == 0) {
        CHECK(b.len > 0 && memmem(b.data, b.len, "</html>", 7) != NULL,
              "the page is not a whole document");
        CHECK(memchr(b.data, '\0', b.len) == NULL, "a NUL byte in the page");
    }
    sl_buf_fini(&b);
    sl__history_fini(&h);
    return 0;
}
