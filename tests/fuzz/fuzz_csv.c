/*
 * libFuzzer target for the csv parse stage, driven through the stage
 * harness: the first byte picks the options (header, infer_types, the
 * delimiter), the rest is split on '\n' into payloads (NUL bytes and all)
 * fed to process() one record each. Checks that every payload ends as
 * exactly one of emitted, dropped (the header) or failed with a message,
 * and that every emitted record has fields and no payload.
 *
 * Build and run (see run_all.sh): tests/fuzz/run_all.sh 10, or
 *   build-fuzz/fuzz_csv -max_total_time=3600 tests/fuzz/corpus/csv
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/harness.h"
#include "sluice/error.h"
#include "sluice/record.h"
#include "sluice/value.h"

extern const sl_stage_desc sl_stage_csv;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_csv: " __VA_ARGS__);                      \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const delims[] = {"\",\"", "\";\"", "\"\\t\"", "\"|\""};
    uint8_t mode = data[0];
    char options[160];
    snprintf(options, sizeof(options), "{header: %s, infer_types: %s, delimiter: %s%s}",
             (mode & 1) ? "true" : "false", (mode & 2) ? "true" : "false",
             delims[(mode >> 2) & 3], (mode & 16) ? ", columns: [a, b, c]" : "");
    data++;
    size--;

    sl_harness *h = NULL;
    int rc = sl_harness_create(&sl_stage_csv, options, &h);
    CHECK(rc == 0, "options rejected: %s: %s", options, h ? sl_harness_config_error(h) : "");
    CHECK(sl_harness_init(h) == 0, "init failed: %s", sl_harness_last_error(h));

    size_t fed = 0, failed = 0;
    size_t start = 0;
    while (start <= size) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - data) : size;
        sl_record *rec = sl_record_new_payload(data + start, end - start);
        CHECK(rec != NULL, "out of memory");
        fed++;
        rc = sl_harness_process(h, rec);
        if (rc != 0) {
            CHECK(rc < 0, "process returned %d", rc);
            CHECK(sl_harness_last_error(h)[0] != '\0', "error without a message (rc %d)", rc);
            failed++;
        }
        if (!nl)
            break;
        start = end + 1;
    }
    CHECK(sl_harness_flush(h) == 0 || sl_harness_last_error(h)[0] != '\0', "flush failed silently");

    size_t emitted = sl_harness_emitted_count(h);
    size_t dropped = sl_harness_dropped_count(h);
    CHECK(emitted + dropped + failed == fed,
          "records lost: fed %zu emitted %zu dropped %zu failed %zu", fed, emitted, dropped, failed);
    for (size_t i = 0; i < emitted; i++) {
        sl_record *r = sl_harness_emitted(h, i);
        size_t plen = 0;
        const sl_value *f = sl_record_fields(r);
        CHECK(f != NULL && sl_value_type(f) == SL_TYPE_OBJECT, "emitted record without fields");
        (void)sl_record_payload(r, &plen);
        CHECK(plen == 0, "emitted record keeps its payload");
    }
    sl_harness_destroy(h);
    return 0;
}
