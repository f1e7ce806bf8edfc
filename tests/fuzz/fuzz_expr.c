/*
 * libFuzzer target for the expression language: compile arbitrary text,
 * and when it compiles, evaluate it against a fixed record (and against no
 * record) both boxed and as a condition. Checks that errors always carry a
 * column inside the text and a message, and that a compiled expression
 * keeps its source.
 *
 * Build and run (see run_all.sh): tests/fuzz/run_all.sh 10, or
 *   build-fuzz/fuzz_expr -max_total_time=60 -dict=tests/fuzz/expr.dict \
 *       tests/fuzz/corpus/expr
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/expr.h"
#include "sluice/record.h"
#include "sluice/value.h"

static sl_record *fixture(void)
{
    static const char json[] =
        "{\"status\":503,\"path\":\"/api/v1/x\",\"n\":-3,\"d\":2.5,"
        "\"s\":\"MiXed\",\"e\":\"\",\"t\":true,\"z\":null,"
        "\"big\":9223372036854775807,\"small\":-9223372036854775808,"
        "\"a\":[1,\"two\",{\"k\":[3]}],\"o\":{\"x\":{\"y\":1},\"key with "
        "space\":\"v\"}}";
    sl_value *v = NULL;
    if (sl_json_parse(json, sizeof(json) - 1, NULL, &v, NULL) < 0)
        abort();
    sl_record *r = sl_record_new();
    if (r == NULL || sl_record_set_fields(r, v) < 0)
        abort();
    return r;
}

static void check_error(const sl_expr_error *err, size_t len, int rc)
{
    if (rc == SL_ENOMEM)
        return;
    if (err->text[0] == '\0' || err->column < 1 ||
        (size_t)err->column > len + 1) {
        fprintf(stderr, "bad error: rc %d column %d text '%s'\n", rc,
                err->column, err->text);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_record *rec;
    if (rec == NULL)
        rec = fixture();
    char *src = malloc(size + 1);
    if (src == NULL)
        return 0;
    memcpy(src, data, size);
    src[size] = '\0';
    size_t len = strlen(src);

    sl_expr *e = NULL;
    sl_expr_error err;
    memset(&err, 0, sizeof(err));
    int rc = sl_expr_compile(src, &e, &err);
    if (rc < 0) {
        if (rc != SL_EPARSE && rc != SL_ENOMEM)
            abort();
        check_error(&err, len, rc);
        free(src);
        return 0;
    }
    if (strcmp(sl_expr_source(e), src) != 0)
        abort();

    sl_expr_env env = {.seq = 42, .now_ns = 1700000000000000000};
    for (int pass = 0; pass < 2; pass++) {
        const sl_record *r = pass == 0 ? rec : NULL;
        sl_value *v = NULL;
        memset(&err, 0, sizeof(err));
        rc = sl_expr_eval(e, r, &env, &v, &err);
        if (rc == 0) {
            sl_buf b;
            sl_buf_init(&b);
            if (sl_json_dump(v, &b) < 0)
                abort();
            sl_buf_fini(&b);
            sl_value_unref(v);
        } else {
            if (v != NULL)
                abort();
            check_error(&err, len, rc);
        }
        bool truth;
        sl_expr_error err2;
        memset(&err2, 0, sizeof(err2));
        int rc2 = sl_expr_eval_bool(e, r, &env, &truth, &err2);
        if (rc2 != rc && rc != SL_ENOMEM && rc2 != SL_ENOMEM)
            abort();
    }
    sl_expr_destroy(e);
    free(src);
    return 0;
}
