/*
 * Stage plugins end to end inside one process: a plugin built for an older
 * minor ABI loads and its missing callbacks read as absent; the example
 * plugins (built into <build>/plugins by CMake) load through the command
 * line, show in `sluice stages`, are counted in metrics, have their options
 * checked with file:line:column, and fail or cancel a run like a built-in.
 *
 * This executable exports the sl_* API (ENABLE_EXPORTS), as sluice does, so
 * the plugins it loads resolve against it.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cli.h"
#include "engine/config.h"
#include "engine/diag.h"
#include "engine/registry.h"
#include "engine/run.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

static char dir[64];          /* scratch directory of the test */
static char plugins[512];     /* <build>/plugins */

static void setup(void)
{
    strcpy(dir, "/tmp/sluice-plugins-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *bin = getenv("SLUICE_BIN");
    cr_assert_not_null(bin, "SLUICE_BIN is set by ctest");
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", bin);
    snprintf(plugins, sizeof(plugins), "%s/plugins", dirname(copy));
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(plugins, .init = setup, .fini = teardown, .timeout = 60);

#define CLI(...)                                                          \
    ({                                                                    \
        const char *argv_[] = {"sluice", __VA_ARGS__, NULL};              \
        sl__cli_main((int)(sizeof(argv_) / sizeof(argv_[0])) - 1,         \
                     (char **)argv_);                                     \
    })

/* Write text to dir/name; returns the path (static buffer per slot). */
static const char *write_file(int slot, const char *name, const char *text)
{
    static char paths[4][256];
    snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", dir, name);
    FILE *f = fopen(paths[slot], "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return paths[slot];
}

static const char *plugin_path(int slot, const char *name)
{
    static char paths[2][600];
    snprintf(paths[slot], sizeof(paths[slot]), "%s/lib%s.so", plugins, name);
    cr_assert_eq(access(paths[slot], R_OK), 0,
                 "%s is built with the tests", paths[slot]);
    return paths[slot];
}

/* Everything written to the redirected stream so far. */
static const char *slurp_stream(FILE *f)
{
    static char buf[32768];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    return buf;
}

static const char *captured_stderr(void)
{
    fflush(stderr);
    return slurp_stream(cr_get_redirected_stderr());
}

static const char *captured_stdout(void)
{
    fflush(stdout);
    return slurp_stream(cr_get_redirected_stdout());
}

static char *slurp(const char *path)
{
    static char buf[16384];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* ------------------------------------------------------------------ */
/* A plugin built against ABI 1.0                                      */
/* ------------------------------------------------------------------ */

/* What the 1.0 structs end with: the engine's own copy of the rule. */
#define STAGE_DESC_SIZE_1_0 \
    (offsetof(sl_stage_desc, destroy) + sizeof(((sl_stage_desc *)0)->destroy))
#define PLUGIN_SIZE_1_0 \
    (offsetof(sl_plugin, stages) + sizeof(((sl_plugin *)0)->stages))

static int old_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    int rc = sl_record_set(rec, "seen", sl_value_bool(true));
    if (rc < 0)
        return sl_stage_error(sc, rc, "cannot set 'seen'");
    return sl_emit(sc, rec);
}

/*
 * The descriptor and table as a plugin built against 1.0 lays them out in
 * memory: struct_size is the 1.0 size and whatever follows is not the
 * plugin's (here: 0xa5 bytes, which must never be read as fields).
 */
static unsigned char old_desc_mem[sizeof(sl_stage_desc) + 64];
static unsigned char old_plugin_mem[sizeof(sl_plugin) + 64];
static const sl_stage_desc *old_stages[1];

static const sl_plugin *old_plugin(void)
{
    memset(old_desc_mem, 0xa5, sizeof(old_desc_mem));
    sl_stage_desc d;
    memset(&d, 0, sizeof(d));
    d.abi_major = 1;
    d.abi_minor = 0;
    d.struct_size = (uint32_t)STAGE_DESC_SIZE_1_0;
    d.name = "old_minor";
    d.kind = SL_STAGE_TRANSFORM;
    d.summary = "built against ABI 1.0";
    d.process = old_process;   /* no init, flush or destroy */
    memcpy(old_desc_mem, &d, STAGE_DESC_SIZE_1_0);
    old_stages[0] = (const sl_stage_desc *)(void *)old_desc_mem;

    memset(old_plugin_mem, 0xa5, sizeof(old_plugin_mem));
    sl_plugin p;
    memset(&p, 0, sizeof(p));
    p.abi_major = 1;
    p.abi_minor = 0;
    p.struct_size = (uint32_t)PLUGIN_SIZE_1_0;
    p.name = "old";
    p.n_stages = 1;
    p.stages = old_stages;
    memcpy(old_plugin_mem, &p, PLUGIN_SIZE_1_0);
    return (const sl_plugin *)(void *)old_plugin_mem;
}

Test(plugins, older_minor_loads_and_missing_callbacks_are_absent)
{
    sl_diag *diag = sl__diag_create();
    sl_registry *reg = NULL;
    cr_assert_eq(sl__registry_create(diag, &reg), 0);
    cr_assert_eq(sl__registry_add_plugin(reg, old_plugin(), "old.so", diag), 0);

    const sl_stage_desc *d = sl__registry_find(reg, "old_minor", true);
    cr_assert_not_null(d);
    cr_expect_neq((const void *)d, (const void *)old_desc_mem,
                  "the engine keeps its own copy");
    cr_expect_eq(d->abi_minor, 0);
    cr_expect_eq(d->process, old_process);
    cr_expect_null(d->init);
    cr_expect_null(d->run);
    cr_expect_null(d->flush);
    cr_expect_null(d->destroy);
    cr_expect_null(d->options);
    /* Anything the engine knows beyond 1.0 reads as zero, never as the
     * bytes that followed the plugin's struct. */
    const unsigned char *bytes = (const unsigned char *)d;
    for (size_t i = STAGE_DESC_SIZE_1_0; i < sizeof(sl_stage_desc); i++)
        cr_expect_eq(bytes[i], 0, "byte %zu of the copy", i);

    /* And it runs: generate -> old_minor -> null, with nothing to call for
     * init, flush and destroy. */
    const sl_stage_desc *gen = sl__registry_find(reg, "generate", false);
    const sl_stage_desc *null_sink = sl__registry_find(reg, "null", true);
    cr_assert_not_null(gen);
    cr_assert_not_null(null_sink);
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "old.yaml";
    cfg.name = "old";
    cfg.settings.channel_capacity = 8;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    cfg.metrics.interval_ns = SL_NS_PER_S;
    sl_stage_conf confs[3];
    memset(confs, 0, sizeof(confs));
    const sl_stage_desc *descs[3] = {gen, d, null_sink};
    const char *names[3] = {"gen", "old", "sink"};
    sl__run_stage rs[3];
    memset(rs, 0, sizeof(rs));
    static const size_t prev[3] = {0, 0, 1};
    for (size_t i = 0; i < 3; i++) {
        confs[i].name = (char *)names[i];
        confs[i].type = (char *)descs[i]->name;
        confs[i].desc = descs[i];
        confs[i].workers = 1;
        confs[i].on_error = SL_ON_ERROR_FAIL;
        rs[i].conf = &confs[i];
        rs[i].n_inputs = i > 0 ? 1 : 0;
        rs[i].inputs = &prev[i];
    }
    rs[0].options_yaml = "count: 100";
    sl__run_opts o = {.cfg = &cfg, .n_stages = 3, .stages = rs};
    sl__run *run = NULL;
    cr_assert_eq(sl__run_create(&o, diag, &run), 0);
    sl__run_result res;
    cr_assert_eq(sl__run_start(run), 0);
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED, "%s", res.cause);
    cr_expect_eq(res.exit_code, 0);
    cr_expect_eq(SL__RUN_COUNTER(run, 1, records_in), 100);
    cr_expect_eq(SL__RUN_COUNTER(run, 1, records_out), 100);
    cr_expect_eq(SL__RUN_COUNTER(run, 2, records_out), 100);
    sl__run_destroy(run);
    sl__registry_destroy(reg);
    sl__diag_destroy(diag);
}

/* A newer plugin's table: larger, with a field this engine does not know. */
Test(plugins, newer_minor_fields_are_ignored)
{
    struct {
        sl_plugin base;
        void *later;
    } newer;
    memset(&newer, 0, sizeof(newer));
    old_plugin();
    newer.base.abi_major = SL_ABI_MAJOR;
    newer.base.abi_minor = SL_ABI_MINOR + 1;
    newer.base.struct_size = sizeof(newer);
    newer.base.name = "newer";
    newer.base.n_stages = 1;
    newer.base.stages = old_stages;
    newer.later = (void *)&newer;
    sl_diag *diag = sl__diag_create();
    sl_registry *reg = NULL;
    cr_assert_eq(sl__registry_create(diag, &reg), 0);
    cr_expect_eq(sl__registry_add_plugin(reg, &newer.base, "newer.so", diag), 0);
    cr_expect_not_null(sl__registry_find(reg, "old_minor", true));
    sl__registry_destroy(reg);
    sl__diag_destroy(diag);
}

/* ------------------------------------------------------------------ */
/* The example plugins through the command line                        */
/* ------------------------------------------------------------------ */

/* generate -> upper -> counter, with extra text after the upper stage. */
static const char *pipeline(int slot, const char *name, const char *upper_extra,
                            const char *counter_extra, int count)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "name: plugged\n"
             "plugins: [%s, %s]\n"
             "stages:\n"
             "  - name: gen\n"
             "    type: generate\n"
             "    count: %d\n"
             "    fields: {id: seq(), user: '\"u\" + to_string(seq() %% 3)',"
             " note: 'seq() == 7 ? 1 : \"x\"'}\n"
             "  - name: shout\n"
             "    type: upper\n"
             "    fields: [user, note]\n"
             "%s"
             "  - name: count\n"
             "    type: counter\n"
             "    key: user\n"
             "    path: %s/counts.json\n"
             "%s",
             plugin_path(0, "upper"), plugin_path(1, "counter"), count,
             upper_extra, dir, counter_extra);
    return write_file(slot, name, text);
}

Test(plugins, stages_lists_plugin_types)
{
    cr_expect_eq(CLI("stages", "--plugin", plugin_path(0, "upper"), "--plugin",
                     plugin_path(1, "counter")), 0);
    cr_expect_eq(CLI("stages", "upper", "--plugin", plugin_path(0, "upper")), 0);
    const char *out = captured_stdout();
    char want[700];
    snprintf(want, sizeof(want), "[plugin %s]", plugin_path(0, "upper"));
    cr_expect(strstr(out, want) != NULL, "%s", out);
    cr_expect(strstr(out, "counter ") != NULL, "%s", out);
    cr_expect(strstr(out, "upper (transform): upper-case chosen string fields")
              != NULL, "%s", out);
    snprintf(want, sizeof(want), "from plugin %s", plugin_path(0, "upper"));
    cr_expect(strstr(out, want) != NULL, "%s", out);
    cr_expect(strstr(out, "the string fields to upper-case") != NULL, "%s", out);
}

Test(plugins, run_counts_plugin_stages_in_metrics)
{
    const char *p = pipeline(0, "ok.yaml", "", "", 30);
    char metrics[128];
    snprintf(metrics, sizeof(metrics), "%s/m.json", dir);
    cr_assert_eq(CLI("run", p, "--quiet", "--metrics-file", metrics), 0, "%s",
                 captured_stderr());

    char counts[128];
    snprintf(counts, sizeof(counts), "%s/counts.json", dir);
    const char *text = slurp(counts);
    cr_assert_not_null(text);
    cr_expect_str_eq(text, "{\"U1\":10,\"U2\":10,\"U0\":10}\n");

    text = slurp(metrics);
    cr_assert_not_null(text);
    sl_value *v = NULL;
    cr_assert_eq(sl_json_parse(text, strlen(text), NULL, &v, NULL), 0);
    cr_expect_str_eq(sl_value_get_string(sl_object_get(v, "status"), NULL),
                     "succeeded");
    const sl_value *stages = sl_object_get(v, "stages");
    cr_assert_eq(sl_array_len(stages), 3);
    const sl_value *shout = sl_array_get(stages, 1);
    const sl_value *count = sl_array_get(stages, 2);
    cr_expect_str_eq(sl_value_get_string(sl_object_get(shout, "type"), NULL),
                     "upper");
    cr_expect_eq(sl_value_get_int(sl_object_get(shout, "records_in")), 30);
    cr_expect_eq(sl_value_get_int(sl_object_get(shout, "records_out")), 30);
    cr_expect_str_eq(sl_value_get_string(sl_object_get(count, "type"), NULL),
                     "counter");
    cr_expect_eq(sl_value_get_int(sl_object_get(count, "records_in")), 30);
    cr_expect_eq(sl_value_get_int(sl_object_get(count, "records_out")), 30,
                 "stored once the counts file is written");
    cr_expect_gt(sl_value_get_int(sl_object_get(count, "bytes_out")), 0);
    sl_value_unref(v);
}

Test(plugins, plugin_error_under_fail_cancels_the_run)
{
    /* Record 7's note is an int: strict makes that an error. The source
     * would run forever (count: 0), so the run ends only by cancellation. */
    const char *p = pipeline(0, "fail.yaml", "    strict: true\n", "", 0);
    cr_expect_eq(CLI("run", p, "--quiet"), 1);
    const char *err = captured_stderr();
    cr_expect(strstr(err, "sluice: stage shout: field 'note' is int, not a "
                          "string") != NULL, "%s", err);
}

Test(plugins, plugin_error_under_skip_and_dead_letter)
{
    char extra[256];
    snprintf(extra, sizeof(extra), "dead_letter: {path: %s/rejects.jsonl}\n",
             dir);
    const char *p = pipeline(0, "dl.yaml",
                             "    strict: true\n    on_error: dead_letter\n",
                             extra, 20);
    char metrics[128];
    snprintf(metrics, sizeof(metrics), "%s/m.json", dir);
    cr_assert_eq(CLI("run", p, "--quiet", "--metrics-file", metrics), 0, "%s",
                 captured_stderr());
    char path[128];
    snprintf(path, sizeof(path), "%s/rejects.jsonl", dir);
    const char *rejects = slurp(path);
    cr_assert_not_null(rejects);
    cr_expect(strstr(rejects, "\"stage\":\"shout\"") != NULL, "%s", rejects);
    cr_expect(strstr(rejects, "field 'note' is int, not a string") != NULL,
              "%s", rejects);
    cr_expect(strstr(rejects, "\"user\":\"u1\"") != NULL,
              "the record as it arrived, unchanged: %s", rejects);
    snprintf(path, sizeof(path), "%s/counts.json", dir);
    const char *counts = slurp(path);
    cr_assert_not_null(counts);
    cr_expect_str_eq(counts, "{\"U1\":6,\"U2\":7,\"U0\":6}\n");
}

Test(plugins, plugin_option_errors_name_the_line)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "name: bad\n"
             "plugins: [%s]\n"
             "stages:\n"
             "  - {name: gen, type: generate, count: 1}\n"
             "  - name: shout\n"
             "    type: upper\n"
             "    feilds: [user]\n"
             "    strict: maybe\n"
             "  - {name: sink, type: \"null\"}\n",
             plugin_path(0, "upper"));
    const char *p = write_file(0, "bad.yaml", text);
    cr_expect_eq(CLI("validate", p), 2);
    const char *err = captured_stderr();
    char want[400];
    snprintf(want, sizeof(want), "%s:7:5: unknown key 'feilds' in stage "
             "'shout' (did you mean 'fields'?)", p);
    cr_expect(strstr(err, want) != NULL, "%s", err);
    snprintf(want, sizeof(want), "%s:8:13: 'strict': expected true or false, "
             "got 'maybe'", p);
    cr_expect(strstr(err, want) != NULL, "%s", err);
    snprintf(want, sizeof(want), "%s:5:5: stage 'shout': missing required "
             "option 'fields'", p);
    cr_expect(strstr(err, want) != NULL, "%s", err);
}

Test(plugins, plugin_init_failure_names_the_stage)
{
    const char *p = pipeline(0, "workers.yaml", "",
                             "    workers: 2\n", 5);
    cr_expect_eq(CLI("run", p, "--quiet"), 1);
    const char *err = captured_stderr();
    cr_expect(strstr(err, "stage count: counter needs workers: 1") != NULL,
              "%s", err);
}

Test(plugins, refused_plugin_exits_2_naming_the_file)
{
    const char *p = write_file(0, "notaplugin.so", "just text\n");
    char text[512];
    snprintf(text, sizeof(text),
             "name: refused\n"
             "plugins:\n"
             "  - %s\n"
             "stages:\n"
             "  - {name: gen, type: generate, count: 1}\n",
             p);
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "%s", write_file(1, "refused.yaml", text));
    cr_expect_eq(CLI("validate", yaml), 2);
    cr_expect_eq(CLI("run", yaml, "--quiet"), 2);
    cr_expect_eq(CLI("stages", "--plugin", p), 2);
    const char *err = captured_stderr();
    char want[700];
    snprintf(want, sizeof(want), "%s:3:5: plugin %s: cannot load: not a "
             "shared object (no ELF header)", yaml, p);
    cr_expect(strstr(err, want) != NULL, "%s", err);
}

Test(plugins, bare_names_follow_the_search_path)
{
    char text[512];
    snprintf(text, sizeof(text),
             "name: bare\n"
             "plugins: [upper, libcounter.so]\n"
             "stages:\n"
             "  - {name: gen, type: generate, count: 4, fields: {user: '\"a\"'}}\n"
             "  - {name: shout, type: upper, fields: [user]}\n"
             "  - {name: count, type: counter, key: user, path: %s/c.json}\n",
             dir);
    const char *p = write_file(0, "bare.yaml", text);
    char path[1200];
    snprintf(path, sizeof(path), "%s/none:%s", dir, plugins);
    cr_assert_eq(setenv("SLUICE_PLUGIN_PATH", path, 1), 0);
    cr_expect_eq(CLI("run", p, "--quiet"), 0, "%s", captured_stderr());
    snprintf(path, sizeof(path), "%s/c.json", dir);
    const char *counts = slurp(path);
    cr_assert_not_null(counts);
    cr_expect_str_eq(counts, "{\"A\":4}\n");

    cr_assert_eq(setenv("SLUICE_PLUGIN_PATH", dir, 1), 0);
    cr_expect_eq(CLI("validate", p), 2);
    const char *err = captured_stderr();
    char want[300];
    snprintf(want, sizeof(want), "plugin upper: cannot load: not found in "
             "SLUICE_PLUGIN_PATH=%s (as NAME, libNAME.so and NAME.so)", dir);
    cr_expect(strstr(err, want) != NULL, "%s", err);
    unsetenv("SLUICE_PLUGIN_PATH");
}
