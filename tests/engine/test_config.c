/* Pipeline files: good files load with the right values; every bad file in
 * tests/fixtures/config/bad fails with its expected message and position. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/config.h"
#include "engine/diag.h"
#include "engine/graph.h"
#include "engine/options.h"
#include "engine/fake_stages.h"
#include "sluice/error.h"

static sl_diag *diag;

static void setup(void)
{
    diag = sl__diag_create();
}

static void teardown(void)
{
    sl__diag_destroy(diag);
}

TestSuite(config, .init = setup, .fini = teardown);

static const char *fixture_dir(char *buf, size_t size, const char *sub)
{
    const char *src = getenv("SLUICE_SOURCE_DIR");
    snprintf(buf, size, "%s/tests/fixtures/config/%s", src ? src : "..", sub);
    return buf;
}

static const char *all_messages(void)
{
    static char buf[8192];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sl__diag_count(diag) && off < sizeof(buf); i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\n",
                                sl__diag_message(diag, i));
    return buf;
}

static bool has_message(const char *needle)
{
    for (size_t i = 0; i < sl__diag_count(diag); i++) {
        if (strstr(sl__diag_message(diag, i), needle) != NULL)
            return true;
    }
    return false;
}

static int load_text(const char *text, sl_config **out)
{
    sl_config_opts o = {.registry = &fake_registry, .no_env = true};
    return sl__config_load_text(text, strlen(text), "p.yaml", &o, diag, out);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* Good files                                                          */
/* ------------------------------------------------------------------ */

Test(config, contract_example)
{
    char dir[512], path[600];
    snprintf(path, sizeof(path), "%s/contract.yaml",
             fixture_dir(dir, sizeof(dir), "good"));
    sl_config_opts o = {.registry = &fake_registry, .no_env = true};
    sl_config *cfg = NULL;
    cr_assert_eq(sl__config_load_file(path, &o, diag, &cfg), 0, "%s",
                 all_messages());
    cr_assert_str_eq(cfg->name, "api-errors");
    cr_assert_eq(cfg->settings.channel_capacity, 1024);
    cr_assert_eq(cfg->settings.shutdown_timeout_ns, 30000000000LL);
    cr_assert_eq(cfg->settings.deadline_ns, 600000000000LL);
    cr_assert_str_eq(cfg->settings.state, "out/events.db");
    cr_assert_eq(cfg->settings.stall_timeout_ns, 30000000000LL);
    cr_assert_eq(cfg->settings.on_stall, SL_ON_STALL_WARN);
    cr_assert_eq(cfg->n_plugins, 1);
    cr_assert_str_eq(cfg->plugins[0].path, "./build/libupper.so");
    cr_assert_eq(cfg->plugins[0].pos.line, 8);
    cr_assert_str_eq(cfg->metrics.file, "out/metrics.json");
    cr_assert_eq(cfg->metrics.interval_ns, 1000000000LL);
    cr_assert_str_eq(cfg->metrics.listen, "127.0.0.1:9464");
    cr_assert_str_eq(cfg->metrics.history, "out/metrics.jsonl");
    cr_assert_str_eq(cfg->dead_letter.path, "out/rejects.jsonl");
    cr_assert_eq(cfg->n_stages, 5);

    const sl_stage_conf *fetch = &cfg->stages[0];
    cr_assert_str_eq(fetch->name, "fetch");
    cr_assert_str_eq(fetch->type, "http");
    cr_assert_eq(fetch->desc, &fake_http_in_desc);
    cr_assert_eq(fetch->n_inputs, 0);
    cr_assert_eq(fetch->workers, 4);
    cr_assert_eq(fetch->timeout_ns, 5000000000LL);
    cr_assert(fetch->retry.set);
    cr_assert_eq(fetch->retry.attempts, 4);
    cr_assert_eq(fetch->retry.backoff_ns, 100000000LL);
    cr_assert_eq(fetch->retry.max_backoff_ns, 5000000000LL);
    cr_assert(fetch->rate_limit.set);
    cr_assert_float_eq(fetch->rate_limit.rate, 50.0, 1e-9);
    cr_assert_eq(fetch->rate_limit.burst, 10);
    cr_assert(fetch->breaker.set);
    cr_assert_eq(fetch->breaker.failures, 5);
    cr_assert_eq(fetch->breaker.cooldown_ns, 30000000000LL);
    cr_assert_eq(fetch->pos.line, 17);
    cr_assert_eq(fetch->pos.col, 5);
    cr_assert_eq(fetch->type_pos.line, 18);

    const sl_stage_conf *parse = &cfg->stages[1];
    cr_assert_eq(parse->desc, &fake_json_desc);
    cr_assert_eq(parse->on_error, SL_ON_ERROR_DEAD_LETTER);
    cr_assert(parse->inputs_implicit);
    cr_assert_eq(parse->n_inputs, 1);
    cr_assert_str_eq(parse->inputs[0], "fetch");
    cr_assert_eq(parse->workers, 1);
    cr_assert_eq(parse->retry.set, false);
    cr_assert_eq(parse->retry.attempts, 3);

    const sl_stage_conf *db = &cfg->stages[4];
    cr_assert_eq(db->desc, &fake_sqlite_desc);
    cr_assert(db->inputs_given);
    cr_assert_not(db->inputs_implicit);
    cr_assert_str_eq(db->inputs[0], "enrich");
    cr_assert_eq(db->input_pos[0].line, 37);
    cr_assert_eq(db->input_pos[0].col, 14);

    /* The stage's own options, as a worker would get them. */
    fake_sqlite s = {0};
    cr_assert_eq(sl__config_stage_options(cfg, db, &s, diag), 0);
    cr_assert_str_eq(s.path, "out/events.db");
    cr_assert_str_eq(s.table, "errors");
    cr_assert_eq(s.batch_size, 1000);
    sl__options_free(fake_sqlite_opts, &s);

    /* http declares timeout and workers too: it gets them as well. */
    fake_http h = {0};
    cr_assert_eq(sl__config_stage_options(cfg, fetch, &h, diag), 0);
    cr_assert_eq(h.timeout, 5000000000LL);
    cr_assert_eq(h.workers, 4);
    cr_assert_eq(h.urls.n, 1);
    sl__options_free(fake_http_in_opts, &h);

    cr_assert_eq(sl__config_find_stage(cfg, "enrich"), 3);
    cr_assert_eq(sl__config_find_stage(cfg, "nope"), -1);
    sl__config_destroy(cfg);
}

Test(config, minimal_defaults)
{
    sl_config *cfg = NULL;
    cr_assert_eq(load_text("name: m\nstages:\n  - {name: a, type: stdin}\n"
                           "  - {name: b, type: stdout}\n", &cfg), 0,
                 "%s", all_messages());
    cr_assert_eq(cfg->settings.channel_capacity, 1024);
    cr_assert_eq(cfg->settings.shutdown_timeout_ns, 30000000000LL);
    cr_assert_eq(cfg->settings.deadline_ns, 0);
    cr_assert_null(cfg->settings.state);
    cr_assert_eq(cfg->metrics.interval_ns, 1000000000LL);
    cr_assert_null(cfg->metrics.file);
    cr_assert_null(cfg->dead_letter.path);
    cr_assert_eq(cfg->n_plugins, 0);
    cr_assert_eq(cfg->stages[1].on_error, SL_ON_ERROR_FAIL);
    cr_assert_eq(cfg->stages[1].capacity, 0);
    cr_assert_eq(cfg->stages[1].rate_limit.set, false);
    cr_assert_eq(cfg->stages[1].desc, &fake_stdout_desc);
    cr_assert_str_eq(sl__on_error_name(cfg->stages[1].on_error), "fail");
    sl__config_destroy(cfg);
}

Test(config, file_and_http_forms)
{
    sl_config *cfg = NULL;
    cr_assert_eq(load_text("name: f\nstages:\n"
                           "  - {name: a, type: file, path: in}\n"
                           "  - {name: b, type: file, path: out}\n"
                           "  - {name: c, type: file, path: in2, inputs: []}\n"
                           "  - {name: d, type: http, url: 'http://x/'}\n",
                           &cfg), 0, "%s", all_messages());
    cr_assert_eq(cfg->stages[0].desc, &fake_file_in_desc);
    cr_assert_eq(cfg->stages[1].desc, &fake_file_out_desc);
    cr_assert_eq(cfg->stages[2].desc, &fake_file_in_desc);
    cr_assert_eq(cfg->stages[2].n_inputs, 0);
    cr_assert_eq(cfg->stages[3].desc, &fake_http_out_desc);
    cr_assert_str_eq(cfg->stages[3].inputs[0], "c");
    sl__config_destroy(cfg);
}

Test(config, fetch_only_type_mid_list_has_no_input)
{
    sl_config *cfg = NULL;
    cr_assert_eq(load_text("name: g\nstages:\n"
                           "  - {name: a, type: stdin}\n"
                           "  - {name: b, type: generate}\n"
                           "  - {name: c, type: stdout, inputs: [a, b]}\n",
                           &cfg), 0, "%s", all_messages());
    cr_assert_eq(cfg->stages[1].n_inputs, 0);
    cr_assert_not(cfg->stages[1].inputs_implicit);
    cr_assert_eq(cfg->stages[2].n_inputs, 2);
    sl__config_destroy(cfg);
}

Test(config, env_and_set)
{
    char dir[512], path[600];
    snprintf(path, sizeof(path), "%s/env.yaml",
             fixture_dir(dir, sizeof(dir), "good"));
    const char *set[] = {"COUNT=500", "DB=/tmp/x.db", NULL};
    sl_config_opts o = {.registry = &fake_registry, .no_env = true,
                        .set = set};
    sl_config *cfg = NULL;
    cr_assert_eq(sl__config_load_file(path, &o, diag, &cfg), 0, "%s",
                 all_messages());
    cr_assert_str_eq(cfg->name, "env-demo");
    cr_assert_eq(cfg->settings.channel_capacity, 64);
    fake_generate g = {0};
    cr_assert_eq(sl__config_stage_options(cfg, &cfg->stages[0], &g, diag), 0);
    cr_assert_eq(g.count, 500);
    sl__options_free(fake_generate_opts, &g);
    fake_sqlite s = {0};
    cr_assert_eq(sl__config_stage_options(cfg, &cfg->stages[1], &s, diag), 0);
    cr_assert_str_eq(s.path, "/tmp/x.db");
    cr_assert_str_eq(s.table, "t_${literal}");
    sl__options_free(fake_sqlite_opts, &s);
    sl__config_destroy(cfg);
}

Test(config, env_from_environment)
{
    char dir[512], path[600];
    snprintf(path, sizeof(path), "%s/env.yaml",
             fixture_dir(dir, sizeof(dir), "good"));
    setenv("COUNT", "7", 1);
    setenv("PIPELINE_NAME", "from-env", 1);
    const char *set[] = {"PIPELINE_NAME=from-set", NULL};
    sl_config_opts o = {.registry = &fake_registry, .set = set};
    sl_config *cfg = NULL;
    cr_assert_eq(sl__config_load_file(path, &o, diag, &cfg), 0, "%s",
                 all_messages());
    /* --set wins over the environment */
    cr_assert_str_eq(cfg->name, "from-set");
    sl__config_destroy(cfg);
    /* without COUNT anywhere: an error naming it */
    unsetenv("COUNT");
    cr_assert_eq(sl__config_load_file(path, &o, diag, &cfg), SL_ECONFIG);
    cr_assert(has_message("env.yaml:8:12: variable 'COUNT' is not set"),
              "%s", all_messages());
}

Test(config, no_registry_leaves_types_unchecked)
{
    sl_config *cfg = NULL;
    const char *t = "name: x\nstages:\n  - {name: a, type: whatever, k: v}\n";
    cr_assert_eq(sl__config_load_text(t, strlen(t), "p.yaml", NULL, diag,
                                      &cfg), 0, "%s", all_messages());
    cr_assert_null(cfg->stages[0].desc);
    cr_assert_str_eq(cfg->stages[0].type, "whatever");
    sl__config_destroy(cfg);
}

static int plugins_seen;

static int fake_load_plugins(void *arg, const sl_config *cfg, sl_diag *d)
{
    (void)arg;
    plugins_seen = (int)cfg->n_plugins;
    sl__diag_add(d, cfg->file, cfg->plugins[1].pos.line,
                 cfg->plugins[1].pos.col, "cannot load plugin '%s'",
                 cfg->plugins[1].path);
    return SL_EIO;
}

Test(config, load_plugins_called_before_stages)
{
    sl_stage_registry reg = fake_registry;
    reg.load_plugins = fake_load_plugins;
    sl_config_opts o = {.registry = &reg, .no_env = true};
    const char *t = "name: x\nplugins: [a.so, b.so]\nstages:\n"
                    "  - {name: a, type: stdin}\n";
    sl_config *cfg = NULL;
    cr_assert_eq(sl__config_load_text(t, strlen(t), "p.yaml", &o, diag, &cfg),
                 SL_ECONFIG);
    cr_assert_eq(plugins_seen, 2);
    cr_assert(has_message("p.yaml:2:17: cannot load plugin 'b.so'"),
              "%s", all_messages());
}

Test(config, plugins_scalar_is_one)
{
    sl_config *cfg = NULL;
    cr_assert_eq(load_text("name: x\nplugins: ./one.so\nstages:\n"
                           "  - {name: a, type: stdin}\n", &cfg), 0);
    cr_assert_eq(cfg->n_plugins, 1);
    cr_assert_str_eq(cfg->plugins[0].path, "./one.so");
    sl__config_destroy(cfg);
}

Test(config, reports_every_error)
{
    sl_config *cfg = NULL;
    const char *t = "name: many\n"
                    "settings: {channel_capacity: 0, deadlin: 5s}\n"
                    "stages:\n"
                    "  - name: read\n"
                    "    type: stdin\n"
                    "  - name: parse\n"
                    "    type: jsn\n"
                    "  - name: errors\n"
                    "    type: filter\n"
                    "    where: a == 1\n"
                    "    workers: 0\n"
                    "    on_error: ignore\n"
                    "  - name: db\n"
                    "    type: sqlite\n"
                    "    path: x.db\n"
                    "    batch_sise: 10\n";
    cr_assert_eq(load_text(t, &cfg), SL_ECONFIG);
    cr_assert(has_message("p.yaml:2:30: 'channel_capacity' must be between 1 "
                          "and 1048576, got 0"), "%s", all_messages());
    cr_assert(has_message("p.yaml:2:33: unknown key 'deadlin' in settings "
                          "(did you mean 'deadline'?)"));
    cr_assert(has_message("p.yaml:7:11: unknown stage type 'jsn' (did you "
                          "mean 'json'?)"));
    cr_assert(has_message("p.yaml:11:14: 'workers' must be between 1 and 256, "
                          "got 0"));
    cr_assert(has_message("p.yaml:12:15: 'on_error': expected one of fail, "
                          "skip, dead_letter, retry, got 'ignore'"));
    cr_assert(has_message("p.yaml:13:5: stage 'db': missing required option "
                          "'table'"));
    cr_assert(has_message("p.yaml:16:5: unknown key 'batch_sise' in stage 'db' "
                          "(did you mean 'batch_size'?)"));
    cr_assert_eq(sl__diag_errors(diag), 7, "%s", all_messages());
}

Test(config, reserved_key_error_not_repeated_by_stage_table)
{
    /* http declares `workers` too; a bad value is reported once. */
    sl_config *cfg = NULL;
    cr_assert_eq(load_text("name: x\nstages:\n"
                           "  - {name: a, type: http, url: u, workers: lots}\n",
                           &cfg), SL_ECONFIG);
    cr_assert_eq(sl__diag_errors(diag), 1, "%s", all_messages());
    cr_assert(has_message("'workers': expected a number, got 'lots'"));
}

Test(config, stage_shapes)
{
    sl_config *cfg = NULL;
    cr_assert_eq(load_text("name: x\nstages:\n  - just-a-name\n"
                           "  - {type: stdout}\n  - {name: c}\n", &cfg),
                 SL_ECONFIG);
    cr_assert(has_message("p.yaml:3:5: stage 1: expected a mapping with 'name' "
                          "and 'type', got a scalar"), "%s", all_messages());
    cr_assert(has_message("p.yaml:4:5: stage 2: missing required key 'name'"));
    cr_assert(has_message("p.yaml:5:5: stage 'c': missing required key "
                          "'type'"));
}

Test(config, empty_stage_list_and_missing_stages)
{
    sl_config *cfg = NULL;
    cr_assert_eq(load_text("name: x\nstages: []\n", &cfg), SL_ECONFIG);
    cr_assert(has_message("p.yaml:2:1: 'stages': a pipeline needs at least one "
                          "stage"), "%s", all_messages());
    sl__diag_clear(diag);
    cr_assert_eq(load_text("name: x\n", &cfg), SL_ECONFIG);
    cr_assert(has_message("p.yaml:1:1: missing required key 'stages'"));
}

Test(config, long_stage_name_refused)
{
    char t[512];
    char name[80];
    memset(name, 'n', 65);
    name[65] = '\0';
    snprintf(t, sizeof(t), "name: x\nstages:\n  - {name: %s, type: stdin}\n",
             name);
    sl_config *cfg = NULL;
    cr_assert_eq(load_text(t, &cfg), SL_ECONFIG);
    cr_assert(has_message("invalid stage name"));
}

Test(config, inputs_listed_twice)
{
    sl_config *cfg = NULL;
    cr_assert_eq(load_text("name: x\nstages:\n  - {name: a, type: stdin}\n"
                           "  - {name: b, type: stdout, inputs: [a, a]}\n",
                           &cfg), SL_ECONFIG);
    cr_assert(has_message("p.yaml:4:41: 'inputs': 'a' is listed twice"),
              "%s", all_messages());
}

Test(config, retry_backoff_order)
{
    sl_config *cfg = NULL;
    cr_assert_eq(load_text("name: x\nstages:\n  - name: a\n    type: stdin\n"
                           "    retry: {backoff: 5s, max_backoff: 1s}\n",
                           &cfg), SL_ECONFIG);
    cr_assert(has_message("p.yaml:5:39: retry: 'max_backoff' must not be "
                          "shorter than 'backoff'"), "%s", all_messages());
}

Test(config, missing_file)
{
    sl_config *cfg = NULL;
    cr_assert_eq(sl__config_load_file("/nonexistent/p.yaml", NULL, diag, &cfg),
                 SL_EIO);
    cr_assert(has_message("/nonexistent/p.yaml: cannot open"));
}

/* ------------------------------------------------------------------ */
/* The corpus of bad files                                             */
/* ------------------------------------------------------------------ */

/* The text after "# expect: " on the file's first line, into buf. */
static bool read_expectation(const char *path, char *buf, size_t size)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return false;
    bool ok = fgets(buf, (int)size, fp) != NULL;
    fclose(fp);
    if (!ok || strncmp(buf, "# expect: ", 10) != 0)
        return false;
    memmove(buf, buf + 10, strlen(buf + 10) + 1);
    buf[strcspn(buf, "\n")] = '\0';
    return true;
}

/* Load + wire path; true if it failed with a message holding want at a
 * position "path:LINE:" with LINE >= 1. */
static bool fails_as_expected(const char *path, const char *want)
{
    sl_config_opts o = {.registry = &fake_registry, .no_env = true};
    sl_config *cfg = NULL;
    sl_graph *g = NULL;
    int rc = sl__config_load_file(path, &o, diag, &cfg);
    if (rc == 0) {
        rc = sl__graph_build(cfg, diag, &g);
        sl__graph_destroy(g);
        sl__config_destroy(cfg);
    }
    if (rc != SL_ECONFIG) {
        cr_log_error("%s: expected SL_ECONFIG, got %d", path, rc);
        return false;
    }
    size_t plen = strlen(path);
    for (size_t i = 0; i < sl__diag_count(diag); i++) {
        const char *m = sl__diag_message(diag, i);
        if (strstr(m, want) == NULL)
            continue;
        if (strncmp(m, path, plen) == 0 && m[plen] == ':'
            && m[plen + 1] >= '1' && m[plen + 1] <= '9')
            return true;
        cr_log_error("%s: message without file:line: %s", path, m);
        return false;
    }
    cr_log_error("%s: no message contains \"%s\"; got:\n%s", path, want,
                 all_messages());
    return false;
}

Test(config, bad_corpus)
{
    char dir[512];
    fixture_dir(dir, sizeof(dir), "bad");
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    struct dirent *e;
    int files = 0, failed = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".yaml") != 0)
            continue;
        char path[1024], want[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        cr_expect(read_expectation(path, want, sizeof(want)),
                  "%s: first line must be '# expect: ...'", path);
        sl__diag_clear(diag);
        double t0 = now_s();
        bool ok = fails_as_expected(path, want);
        double el = now_s() - t0;
        cr_expect(ok, "%s", e->d_name);
        cr_expect_lt(el, 10.0, "%s took %.3fs", e->d_name, el);
        files++;
        failed += !ok;
    }
    closedir(d);
    cr_assert_geq(files, 30, "only %d bad files found in %s", files, dir);
    cr_assert_eq(failed, 0);
}

Test(config, good_corpus_loads_and_wires)
{
    char dir[512];
    fixture_dir(dir, sizeof(dir), "good");
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    const char *set[] = {"COUNT=1", NULL};
    int files = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".yaml") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        sl_config_opts o = {.registry = &fake_registry, .no_env = true,
                            .set = set};
        sl_config *cfg = NULL;
        sl_graph *g = NULL;
        sl__diag_clear(diag);
        cr_expect_eq(sl__config_load_file(path, &o, diag, &cfg), 0, "%s: %s",
                     e->d_name, all_messages());
        if (cfg != NULL) {
            cr_expect_eq(sl__graph_build(cfg, diag, &g), 0, "%s: %s",
                         e->d_name, all_messages());
            sl__graph_destroy(g);
            sl__config_destroy(cfg);
        }
        files++;
    }
    closedir(d);
    cr_assert_geq(files, 4);
}

/* Generated hostile files (too big to commit). */

static bool generated_fails(const char *text, size_t len, const char *want,
                            double *elapsed)
{
    sl_config_opts o = {.registry = &fake_registry, .no_env = true};
    sl_config *cfg = NULL;
    double t0 = now_s();
    int rc = sl__config_load_text(text, len, "gen.yaml", &o, diag, &cfg);
    *elapsed = now_s() - t0;
    if (rc != SL_ECONFIG)
        return false;
    for (size_t i = 0; i < sl__diag_count(diag); i++) {
        const char *m = sl__diag_message(diag, i);
        if (strstr(m, want) != NULL && strncmp(m, "gen.yaml:1:", 11) == 0)
            return true;
    }
    return false;
}

Test(config, generated_deep_nesting)
{
    size_t depth = 20000;
    size_t len = 0;
    char *t = malloc(depth * 2 + 64);
    len += (size_t)sprintf(t, "name: ");
    for (size_t i = 0; i < depth; i++)
        t[len++] = '[';
    for (size_t i = 0; i < depth; i++)
        t[len++] = ']';
    t[len++] = '\n';
    double el;
    cr_assert(generated_fails(t, len, "nesting deeper than 64 levels", &el),
              "%s", all_messages());
    cr_assert_lt(el, 10.0);
    free(t);
}

Test(config, generated_megabyte_key)
{
    size_t klen = 1 << 20;
    char *t = malloc(klen + 64);
    memset(t, 'k', klen);
    memcpy(t + klen, ": 1\nname: x\n", 13);
    double el;
    cr_assert(generated_fails(t, klen + 12, "a mapping key may be at most 1024",
                              &el), "%s", all_messages());
    cr_assert_lt(el, 10.0);
    free(t);
}

Test(config, generated_many_stages_fast)
{
    /* 15000 stages in one chain: linear wiring, no quadratic blow-up. */
    size_t n = 15000;
    char *t = malloc(n * 64 + 64);
    size_t len = (size_t)sprintf(t, "name: big\nstages:\n"
                                    "  - {name: s0, type: stdin}\n");
    for (size_t i = 1; i < n; i++)
        len += (size_t)sprintf(t + len, "  - {name: s%zu, type: json}\n", i);
    sl_config_opts o = {.registry = &fake_registry, .no_env = true};
    sl_config *cfg = NULL;
    double t0 = now_s();
    int rc = sl__config_load_text(t, len, "big.yaml", &o, diag, &cfg);
    cr_assert_eq(rc, 0, "%s", all_messages());
    sl_graph *g = NULL;
    cr_assert_eq(sl__graph_build(cfg, diag, &g), 0);
    double el = now_s() - t0;
    cr_assert_eq(g->order[n - 1], n - 1);
    /* about 0.2s optimised, 2s under ASan; quadratic wiring takes minutes */
    cr_assert_lt(el, 30.0, "took %.3fs", el);
    sl__graph_destroy(g);
    sl__config_destroy(cfg);
    free(t);
}

/* Random damage to good files never crashes, leaks or hangs the loader:
 * every result is either a config or SL_ECONFIG with positioned messages. */
Test(config, mutated_files_are_handled, .timeout = 60)
{
    char dir[512], path[600];
    snprintf(path, sizeof(path), "%s/contract.yaml",
             fixture_dir(dir, sizeof(dir), "good"));
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    char orig[8192];
    size_t n = fread(orig, 1, sizeof(orig), fp);
    fclose(fp);
    static const char alphabet[] = "[]{}:,-&*!|>'\"#\t\n ${}\\x0a\xff\xc3";
    uint64_t seed = 0x5eed;
    char buf[8192 + 64];
    int loaded = 0, refused = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, orig, n);
        size_t len = n;
        int edits = 1 + iter % 4;
        for (int e = 0; e < edits; e++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(seed >> 33) % len;
            unsigned op = (unsigned)(seed >> 20) % 4;
            char ch = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
            if (op == 0) {
                buf[at] = ch;                      /* replace */
            } else if (op == 1 && len < sizeof(buf) - 1) {
                memmove(buf + at + 1, buf + at, len - at);  /* insert */
                buf[at] = ch;
                len++;
            } else if (op == 2 && len > 1) {
                memmove(buf + at, buf + at + 1, len - at - 1);  /* delete */
                len--;
            } else {
                len = at + 1;                      /* truncate */
            }
        }
        sl_config_opts o = {.registry = &fake_registry, .no_env = true};
        sl_config *cfg = NULL;
        sl__diag_clear(diag);
        int rc = sl__config_load_text(buf, len, "m.yaml", &o, diag, &cfg);
        if (rc == 0) {
            sl_graph *g = NULL;
            rc = sl__graph_build(cfg, diag, &g);
            sl__graph_destroy(g);
            sl__config_destroy(cfg);
        }
        cr_assert(rc == 0 || rc == SL_ECONFIG, "iteration %d: rc %d", iter,
                  rc);
        if (rc == 0) {
            loaded++;
            continue;
        }
        refused++;
        cr_assert_gt(sl__diag_count(diag), 0, "iteration %d", iter);
        for (size_t i = 0; i < sl__diag_count(diag); i++) {
            const char *m = sl__diag_message(diag, i);
            cr_assert(strncmp(m, "m.yaml:", 7) == 0 && m[7] >= '1'
                      && m[7] <= '9', "iteration %d: %s", iter, m);
        }
    }
    cr_log_info("mutations: %d loaded, %d refused", loaded, refused);
    cr_assert_gt(refused, 100);
}
