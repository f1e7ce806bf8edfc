/*
 * What the run-level stress tests share: CHECK, which ends the program
 * with the place and a message when a condition fails (these tests are
 * plain executables, so that ThreadSanitizer can run them), and `src`, a
 * source stage emitting {"n": 1}, {"n": 2}, ... (positions seq = n),
 * `count` of them or, with count 0, until the run stops it.
 *
 * Included by one stress_*.c each; everything is static and may go unused.
 */
#ifndef SLUICE_STRESS_COMMON_H
#define SLUICE_STRESS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sluice/plugin.h"

#define CHECK(cond, ...)                                     \
    do {                                                     \
        if (!(cond)) {                                       \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);  \
            fprintf(stderr, __VA_ARGS__);                    \
            fputc('\n', stderr);                             \
            exit(1);                                         \
        }                                                    \
    } while (0)

typedef struct src_state {
    int64_t count;   /* 0: until stopped */
} src_state;

static const sl_option src_options[] __attribute__((unused)) = {
    {SL_OPT_INT, "count", "0", 0, offsetof(src_state, count), 0, 0, NULL, ""},
    SL_OPTIONS_END,
};

static __attribute__((unused)) int src_run(void *state, sl_stage_ctx *sc)
{
    src_state *st = state;
    for (int64_t i = 1; st->count == 0 || i <= st->count; i++) {
        if (sl_stage_stopping(sc))
            return 0;
        sl_record *r = sl_record_new();
        if (r == NULL)
            return SL_ENOMEM;
        sl_record_set_position(r, sl_stage_name(sc), NULL, -1, i);
        sl_record_set(r, "n", sl_value_int(i));
        int rc = sl_emit(sc, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const sl_stage_desc src_desc __attribute__((unused)) = {
    SL_STAGE_DESC_HEADER, .name = "src", .kind = SL_STAGE_SOURCE,
    .options = src_options, .state_size = sizeof(src_state), .run = src_run,
};

#endif
