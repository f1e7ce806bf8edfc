/*
 * The command line, called in-process: exit codes, what goes to stdout,
 * and a few real runs of built-in stages.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cli.h"
#include "sluice/value.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/sluice-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
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

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

static int cli(int argc, const char **argv)
{
    return sl__cli_main(argc, (char **)argv);
}

#define CLI(...)                                                  \
    ({                                                            \
        const char *argv_[] = {"sluice", __VA_ARGS__, NULL};      \
        cli((int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_);  \
    })

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

Test(cli, version)
{
    cr_expect_eq(CLI("version"), 0);
    fflush(stdout);
    cr_expect_stdout_eq_str("sluice " SLUICE_VERSION " (plugin ABI 1.0)\n");
}

Test(cli, usage_errors_exit_2)
{
    const char *argv[] = {"sluice", NULL};
    cr_expect_eq(cli(1, argv), 2);
    cr_expect_eq(CLI("frobnicate"), 2);
    cr_expect_eq(CLI("run"), 2, "no pipeline");
    cr_expect_eq(CLI("run", "a.yaml", "b.yaml"), 2);
    cr_expect_eq(CLI("run", "a.yaml", "--bogus"), 2);
    cr_expect_eq(CLI("run", "a.yaml", "--set"), 2, "--set without a value");
    cr_expect_eq(CLI("run", "a.yaml", "--set", "novalue"), 2);
    cr_expect_eq(CLI("run", "a.yaml", "--log-level", "loud"), 2);
    cr_expect_eq(CLI("validate"), 2);
    cr_expect_eq(CLI("stages", "a", "b"), 2);
    cr_expect_eq(CLI("help", "nosuch"), 2);
}

Test(cli, help_on_every_command)
{
    cr_expect_eq(CLI("--help"), 0);
    cr_expect_eq(CLI("-h"), 0);
    cr_expect_eq(CLI("help"), 0);
    cr_expect_eq(CLI("help", "run"), 0);
    cr_expect_eq(CLI("run", "--help"), 0);
    cr_expect_eq(CLI("validate", "-h"), 0);
    cr_expect_eq(CLI("stages", "--help"), 0);
    cr_expect_eq(CLI("graph", "--help"), 0);
    cr_expect_eq(CLI("version", "--help"), 0);
    fflush(stdout);
    FILE *out = cr_get_redirected_stdout();
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, out);
    buf[n] = '\0';
    cr_expect(strstr(buf, "Usage: sluice COMMAND") != NULL);
    cr_expect(strstr(buf, "Usage: sluice run PIPELINE.yaml") != NULL);
    cr_expect(strstr(buf, "Usage: sluice validate") != NULL);
    cr_expect(strstr(buf, "Usage: sluice stages") != NULL);
    cr_expect(strstr(buf, "Usage: sluice graph") != NULL);
    cr_expect(strstr(buf, "--metrics-listen") == NULL,
              "no flags that do nothing");
}

static const char gen_pipeline[] =
    "name: gen\n"
    "stages:\n"
    "  - name: gen\n"
    "    type: generate\n"
    "    count: ${N:-100}\n"
    "    fields: {id: seq()}\n"
    "  - {name: even, type: filter, where: id % 2 == 0}\n"
    "  - {name: sink, type: \"null\"}\n";

Test(cli, validate_ok_and_errors)
{
    const char *p = write_file("gen.yaml", gen_pipeline);
    char path[256];
    snprintf(path, sizeof(path), "%s", p);
    cr_expect_eq(CLI("validate", path), 0);
    fflush(stdout);
    char want[300];
    snprintf(want, sizeof(want), "%s: ok (3 stages)\n", path);
    cr_expect_stdout_eq_str(want);

    const char *bad = write_file("bad.yaml",
                                 "name: bad\nstages:\n  - {name: x, type: nosuch}\n");
    cr_expect_eq(CLI("validate", bad), 2);
    cr_expect_eq(CLI("validate", "/nonexistent/file.yaml"), 2);
}

Test(cli, graph_prints_dot)
{
    const char *p = write_file("gen.yaml", gen_pipeline);
    cr_expect_eq(CLI("graph", p), 0);
    fflush(stdout);
    FILE *out = cr_get_redirected_stdout();
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, out);
    buf[n] = '\0';
    cr_expect(strncmp(buf, "digraph ", 8) == 0, "%s", buf);
    cr_expect(strstr(buf, "\"gen\" -> \"even\"") != NULL, "%s", buf);
}

Test(cli, stages_list_and_detail)
{
    cr_expect_eq(CLI("stages"), 0);
    cr_expect_eq(CLI("stages", "generate"), 0);
    cr_expect_eq(CLI("stages", "nosuch"), 2);
    fflush(stdout);
    FILE *out = cr_get_redirected_stdout();
    char buf[32768];
    size_t n = fread(buf, 1, sizeof(buf) - 1, out);
    buf[n] = '\0';
    cr_expect(strstr(buf, "type ") != NULL);
    cr_expect(strstr(buf, "generate (fetch)") != NULL, "%s", buf);
    cr_expect(strstr(buf, "count") != NULL);
}

Test(cli, stages_markdown)
{
    char md[128];
    snprintf(md, sizeof(md), "%s/md", dir);
    cr_expect_eq(CLI("stages", "--markdown", md), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/generate.md", md);
    const char *text = slurp(path);
    cr_assert_not_null(text);
    cr_expect(strncmp(text, "# `generate`", 12) == 0, "%s", text);
    cr_expect(strstr(text, "| `count` |") != NULL, "%s", text);
    snprintf(path, sizeof(path), "%s/README.md", md);
    text = slurp(path);
    cr_assert_not_null(text);
    cr_expect(strstr(text, "[`generate`](generate.md)") != NULL);
}

Test(cli, run_writes_metrics_and_takes_set)
{
    const char *p = write_file("gen.yaml", gen_pipeline);
    char path[256], metrics[256];
    snprintf(path, sizeof(path), "%s", p);
    snprintf(metrics, sizeof(metrics), "%s/m.json", dir);
    cr_expect_eq(CLI("run", path, "--quiet", "--set", "N=40",
                     "--metrics-file", metrics), 0);
    const char *text = slurp(metrics);
    cr_assert_not_null(text);
    sl_value *v = NULL;
    cr_assert_eq(sl_json_parse(text, strlen(text), NULL, &v, NULL), 0);
    cr_expect_str_eq(sl_value_get_string(sl_object_get(v, "status"), NULL),
                     "succeeded");
    sl_value *even = sl_array_get(sl_object_get(v, "stages"), 1);
    cr_expect_eq(sl_value_get_int(sl_object_get(even, "records_in")), 40);
    cr_expect_eq(sl_value_get_int(sl_object_get(even, "records_out")), 20);
    cr_expect_eq(sl_value_get_int(sl_object_get(even, "dropped")), 20);
    sl_value_unref(v);
}

Test(cli, run_failure_exits_1_naming_the_stage)
{
    char text[512];
    snprintf(text, sizeof(text),
             "name: missing\n"
             "stages:\n"
             "  - {name: read, type: file, path: %s/nope.jsonl}\n"
             "  - {name: sink, type: \"null\"}\n", dir);
    const char *p = write_file("missing.yaml", text);
    cr_expect_eq(CLI("run", p, "--quiet"), 1);
    fflush(stderr);
    FILE *err = cr_get_redirected_stderr();
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, err);
    buf[n] = '\0';
    cr_expect(strstr(buf, "sluice: stage read: ") != NULL, "%s", buf);
    cr_expect(strstr(buf, "nope.jsonl") != NULL, "%s", buf);
}
