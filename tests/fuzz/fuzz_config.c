/*
 * libFuzzer target for pipeline files: load arbitrary bytes as a pipeline
 * with the real stage registry (types, options, expressions checked) and,
 * when that succeeds, build the stage graph (wiring checked). Nothing runs.
 * Checks that a rejected file yields SL_ECONFIG with at least one message
 * and that every message names the file, as `sluice validate` prints them
 * (except the closing "too many errors" line of a file past the cap).
 *
 * Build and run (see run_all.sh): tests/fuzz/run_all.sh 10, or
 *   build-fuzz/fuzz_config -max_total_time=3600 -dict=tests/fuzz/config.dict \
 *       tests/fuzz/corpus/config
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/diag.h"
#include "engine/graph.h"
#include "engine/registry.h"
#include "sluice/error.h"

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_config: " __VA_ARGS__);                   \
            fprintf(stderr, "\n");                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

static sl_registry *registry;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sl__registry_create(NULL, &registry) != 0) {
        fprintf(stderr, "fuzz_config: no registry\n");
        abort();
    }
    return 0;
}

static void check_messages(const sl_diag *diag, int rc)
{
    CHECK(sl__diag_count(diag) > 0, "rejected (rc %d) without a message", rc);
    for (size_t i = 0; i < sl__diag_count(diag); i++) {
        const char *m = sl__diag_message(diag, i);
        CHECK(m != NULL, "message %zu missing", i);
        /* The cap's own line closes the list of a file with too many. */
        if (i + 1 == sl__diag_count(diag) && strncmp(m, "too many errors", 15) == 0)
            continue;
        CHECK(strncmp(m, "fuzz.yaml", 9) == 0,
              "message does not name the file: %s", m ? m : "(null)");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const set[] = {"FUZZ_VAR=value", NULL};
    sl_stage_registry adapter;
    sl__registry_adapter(registry, &adapter);
    sl_config_opts opts = {.set = set, .no_env = true, .registry = &adapter};

    sl_diag *diag = sl__diag_create();
    CHECK(diag != NULL, "out of memory");
    sl_config *cfg = NULL;
    int rc = sl__config_load_text((const char *)data, size, "fuzz.yaml", &opts, diag, &cfg);
    if (rc != 0) {
        CHECK(rc == SL_ECONFIG || rc == SL_ENOMEM, "load returned %d", rc);
        CHECK(cfg == NULL, "config set on failure");
        if (rc == SL_ECONFIG)
            check_messages(diag, rc);
        sl__diag_destroy(diag);
        return 0;
    }
    CHECK(cfg != NULL, "no config on success");
    sl_graph *graph = NULL;
    rc = sl__graph_build(cfg, diag, &graph);
    if (rc != 0) {
        CHECK(rc == SL_ECONFIG || rc == SL_ENOMEM, "graph build returned %d", rc);
        if (rc == SL_ECONFIG)
            check_messages(diag, rc);
    }
    sl__graph_destroy(graph);
    sl__config_destroy(cfg);
    sl__diag_destroy(diag);
    return 0;
}
