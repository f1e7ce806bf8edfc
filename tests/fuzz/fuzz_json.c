/*
 * libFuzzer target for JSON values: parse arbitrary bytes with small limits
 * and, when they parse, check what the rest of the engine relies on — the
 * compact dump parses back to an equal value and dumps to the same bytes,
 * a deep copy is equal and independent of the original, and unsharing a
 * shared value leaves the other holder untouched. Errors always carry a
 * message and, for parse errors, a line.
 *
 * Build and run (see run_all.sh): tests/fuzz/run_all.sh 10, or
 *   build-fuzz/fuzz_json -max_total_time=60 tests/fuzz/corpus/json
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/value.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_json: " __VA_ARGS__);                     \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_json_limits limits = {.max_depth = 64, .max_bytes = 1 << 16};
    sl_json_error err;
    sl_value *v = NULL;
    int rc = sl_json_parse((const char *)data, size, &limits, &v, &err);
    if (rc != 0) {
        CHECK(v == NULL, "output set on failure");
        CHECK(rc == SL_EPARSE || rc == SL_ELIMIT || rc == SL_ENOMEM, "rc %d", rc);
        CHECK(rc == SL_ENOMEM || err.text[0] != '\0', "no message (rc %d)", rc);
        CHECK(rc != SL_EPARSE || err.line >= 1, "parse error without a line");
        return 0;
    }

    sl_buf a, b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    CHECK(sl_json_dump(v, &a) == 0, "dump failed");
    sl_value *back = NULL;
    rc = sl_json_parse(a.data, a.len, NULL, &back, &err);
    CHECK(rc == 0, "dump does not parse back (%s): %.*s", err.text, (int)a.len, a.data);
    CHECK(sl_value_equal(v, back), "round trip changed the value: %.*s", (int)a.len, a.data);
    CHECK(sl_json_dump(back, &b) == 0, "second dump failed");
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, "dump is not stable");

    sl_value *copy = sl_value_copy(v);
    CHECK(copy != NULL && sl_value_equal(copy, v), "copy differs");

    /* Copy on write: a writer's change is not seen by the other holder. */
    sl_value *other = sl_value_ref(v);
    sl_value *writer = v;
    CHECK(sl_value_unshare(&writer) == 0, "unshare failed");
    if (sl_value_type(writer) == SL_TYPE_OBJECT)
        sl_object_set(writer, "\x01fuzz", sl_value_int(1));
    else if (sl_value_type(writer) == SL_TYPE_ARRAY)
        sl_array_append(writer, sl_value_int(1));
    CHECK(sl_value_equal(other, copy), "unshare let a write through");

    sl_value_unref(writer);
    sl_value_unref(other);
    sl_value_unref(copy);
    sl_value_unref(back);
    sl_buf_fini(&a);
    sl_buf_fini(&b);
    return 0;
}
