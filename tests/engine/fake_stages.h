/*
 * A small stage registry for config and graph tests: descriptors with
 * option tables shaped like the real stages, and no behaviour.
 */
#ifndef SLUICE_TESTS_FAKE_STAGES_H
#define SLUICE_TESTS_FAKE_STAGES_H

#include <stddef.h>
#include <string.h>

#include "engine/config.h"
#include "sluice/plugin.h"

typedef struct fake_generate {
    int64_t count;
    double rate;
    sl_exprmap fields;
} fake_generate;

static const sl_option fake_generate_opts[] = {
    {SL_OPT_INT, "count", "0", 0, offsetof(fake_generate, count), 0, 1e15,
     NULL, "records to make"},
    {SL_OPT_RATE, "rate", NULL, 0, offsetof(fake_generate, rate), 0, 0, NULL,
     "records per second"},
    {SL_OPT_EXPR_MAP, "fields", NULL, 0, offsetof(fake_generate, fields), 0, 0,
     NULL, "field expressions"},
    SL_OPTIONS_END,
};

typedef struct fake_path {
    char *path;
    int format;
    int mode;
} fake_path;

static const sl_option fake_file_in_opts[] = {
    {SL_OPT_STRING, "path", NULL, SL_OPT_REQUIRED, offsetof(fake_path, path), 0,
     0, NULL, "file to read"},
    SL_OPTIONS_END,
};

static const sl_option fake_file_out_opts[] = {
    {SL_OPT_STRING, "path", NULL, SL_OPT_REQUIRED, offsetof(fake_path, path), 0,
     0, NULL, "file to write"},
    {SL_OPT_ENUM, "format", "jsonl", 0, offsetof(fake_path, format), 0, 0,
     "jsonl|csv", "format"},
    {SL_OPT_ENUM, "mode", "append", 0, offsetof(fake_path, mode), 0, 0,
     "append|truncate", "mode"},
    SL_OPTIONS_END,
};

typedef struct fake_http {
    char *url;
    sl_strlist urls;
    int64_t timeout;
    int64_t workers;
    int64_t batch_size;
} fake_http;

static const sl_option fake_http_in_opts[] = {
    {SL_OPT_STRING, "url", NULL, 0, offsetof(fake_http, url), 0, 0, NULL, "u"},
    {SL_OPT_STRING_LIST, "urls", NULL, 0, offsetof(fake_http, urls), 0, 0, NULL,
     "us"},
    {SL_OPT_DURATION, "timeout", "30s", 0, offsetof(fake_http, timeout), 0, 0,
     NULL, "t"},
    {SL_OPT_INT, "workers", "1", 0, offsetof(fake_http, workers), 1, 256, NULL,
     "w"},
    SL_OPTIONS_END,
};

static const sl_option fake_http_out_opts[] = {
    {SL_OPT_STRING, "url", NULL, SL_OPT_REQUIRED, offsetof(fake_http, url), 0,
     0, NULL, "u"},
    {SL_OPT_INT, "batch_size", "100", 0, offsetof(fake_http, batch_size), 1,
     100000, NULL, "b"},
    SL_OPTIONS_END,
};

typedef struct fake_json {
    bool split;
} fake_json;

static const sl_option fake_json_opts[] = {
    {SL_OPT_BOOL, "split", "false", 0, offsetof(fake_json, split), 0, 0, NULL,
     "s"},
    SL_OPTIONS_END,
};

typedef struct fake_filter {
    sl_expr *where;
} fake_filter;

static const sl_option fake_filter_opts[] = {
    {SL_OPT_EXPR, "where", NULL, SL_OPT_REQUIRED, offsetof(fake_filter, where),
     0, 0, NULL, "condition"},
    SL_OPTIONS_END,
};

typedef struct fake_map {
    sl_exprmap set;
    sl_strmap rename;
    sl_strlist del;
    sl_strlist keep;
} fake_map;

static const sl_option fake_map_opts[] = {
    {SL_OPT_EXPR_MAP, "set", NULL, 0, offsetof(fake_map, set), 0, 0, NULL, "s"},
    {SL_OPT_STRING_MAP, "rename", NULL, 0, offsetof(fake_map, rename), 0, 0,
     NULL, "r"},
    {SL_OPT_STRING_LIST, "delete", NULL, 0, offsetof(fake_map, del), 0, 0, NULL,
     "d"},
    {SL_OPT_STRING_LIST, "keep", NULL, 0, offsetof(fake_map, keep), 0, 0, NULL,
     "k"},
    SL_OPTIONS_END,
};

typedef struct fake_sqlite {
    char *path;
    char *table;
    int64_t batch_size;
    char *key;
} fake_sqlite;

static const sl_option fake_sqlite_opts[] = {
    {SL_OPT_STRING, "path", NULL, SL_OPT_REQUIRED, offsetof(fake_sqlite, path),
     0, 0, NULL, "p"},
    {SL_OPT_STRING, "table", NULL, SL_OPT_REQUIRED,
     offsetof(fake_sqlite, table), 0, 0, NULL, "t"},
    {SL_OPT_INT, "batch_size", "1000", 0, offsetof(fake_sqlite, batch_size), 1,
     1000000, NULL, "b"},
    {SL_OPT_STRING, "key", NULL, 0, offsetof(fake_sqlite, key), 0, 0, NULL,
     "k"},
    SL_OPTIONS_END,
};

#define FAKE_DESC(var, nm, knd, opts, st)                                     \
    static const sl_stage_desc var = {                                        \
        SL_STAGE_DESC_HEADER, .name = nm, .kind = knd, .summary = nm,         \
        .options = opts, .state_size = st}

FAKE_DESC(fake_generate_desc, "generate", SL_STAGE_SOURCE, fake_generate_opts,
          sizeof(fake_generate));
FAKE_DESC(fake_stdin_desc, "stdin", SL_STAGE_SOURCE, NULL, 0);
FAKE_DESC(fake_file_in_desc, "file", SL_STAGE_SOURCE, fake_file_in_opts,
          sizeof(fake_path));
FAKE_DESC(fake_file_out_desc, "file", SL_STAGE_SINK, fake_file_out_opts,
          sizeof(fake_path));
FAKE_DESC(fake_http_in_desc, "http", SL_STAGE_SOURCE, fake_http_in_opts,
          sizeof(fake_http));
FAKE_DESC(fake_http_out_desc, "http", SL_STAGE_SINK, fake_http_out_opts,
          sizeof(fake_http));
FAKE_DESC(fake_json_desc, "json", SL_STAGE_TRANSFORM, fake_json_opts,
          sizeof(fake_json));
FAKE_DESC(fake_filter_desc, "filter", SL_STAGE_TRANSFORM, fake_filter_opts,
          sizeof(fake_filter));
FAKE_DESC(fake_map_desc, "map", SL_STAGE_TRANSFORM, fake_map_opts,
          sizeof(fake_map));
FAKE_DESC(fake_sqlite_desc, "sqlite", SL_STAGE_SINK, fake_sqlite_opts,
          sizeof(fake_sqlite));
FAKE_DESC(fake_stdout_desc, "stdout", SL_STAGE_SINK, NULL, 0);

static const struct {
    const char *name;
    const sl_stage_desc *source;
    const sl_stage_desc *consumer;
} fake_types[] = {
    {"generate", &fake_generate_desc, NULL},
    {"stdin", &fake_stdin_desc, NULL},
    {"file", &fake_file_in_desc, &fake_file_out_desc},
    {"http", &fake_http_in_desc, &fake_http_out_desc},
    {"json", NULL, &fake_json_desc},
    {"filter", NULL, &fake_filter_desc},
    {"map", NULL, &fake_map_desc},
    {"sqlite", NULL, &fake_sqlite_desc},
    {"stdout", NULL, &fake_stdout_desc},
};

static bool fake_forms(void *arg, const char *type, const sl_stage_desc **src,
                       const sl_stage_desc **cons)
{
    (void)arg;
    *src = NULL;
    *cons = NULL;
    for (size_t i = 0; i < sizeof(fake_types) / sizeof(fake_types[0]); i++) {
        if (strcmp(fake_types[i].name, type) == 0) {
            *src = fake_types[i].source;
            *cons = fake_types[i].consumer;
            return true;
        }
    }
    return false;
}

static const char *const *fake_names(void *arg)
{
    static const char *const names[] = {"generate", "stdin", "file", "http",
                                        "json", "filter", "map", "sqlite",
                                        "stdout", NULL};
    (void)arg;
    return names;
}

static const sl_stage_registry fake_registry = {
    .arg = NULL, .forms = fake_forms, .names = fake_names,
    .load_plugins = NULL,
};

#endif
