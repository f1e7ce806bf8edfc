/*
 * The `sluice` command dispatcher: help, version, and the commands.
 */
#include <stdio.h>
#include <string.h>

#include "engine/cli.h"
#include "sluice/plugin.h"

static const char main_usage[] =
    "Usage: sluice COMMAND [ARGS]\n"
    "\n"
    "sluice runs data pipelines described in YAML: stages joined by bounded\n"
    "channels, with backpressure, per-stage metrics and clean shutdown.\n"
    "\n"
    "Commands:\n"
    "  run PIPELINE.yaml       run a pipeline\n"
    "  validate PIPELINE.yaml  check a pipeline file (exit 0, or 2 with\n"
    "                          file:line:col errors)\n"
    "  stages [TYPE]           list stage types, or one type's options\n"
    "  graph PIPELINE.yaml     print the stage graph as Graphviz DOT\n"
    "  metrics SNAPSHOT        show a metrics snapshot as tables and name\n"
    "                          the bottleneck\n"
    "  report HISTORY -o FILE  draw a metrics history as an HTML page with\n"
    "                          charts\n"
    "  version                 print the version\n"
    "  help [COMMAND]          show help (also: COMMAND --help)\n"
    "\n"
    "Exit codes: 0 success, 1 pipeline failure, 2 usage or configuration\n"
    "error, 3 forced stop.\n";

typedef int (*command_fn)(int argc, char **argv);

static const struct {
    const char *name;
    command_fn fn;
} commands[] = {
    {"run", sl__cli_run},
    {"validate", sl__cli_validate},
    {"stages", sl__cli_stages},
    {"graph", sl__cli_graph},
    {"metrics", sl__cli_metrics},
    {"report", sl__cli_report},
};

static int version(void)
{
    printf("sluice %s (plugin ABI %d.%d)\n", SLUICE_VERSION, SL_ABI_MAJOR,
           SL_ABI_MINOR);
    return SL__EXIT_OK;
}

static command_fn find(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].fn;
    return NULL;
}

static int unknown(const char *name)
{
    static const char *const names[] = {"run",     "validate", "stages",
                                        "graph",   "metrics",  "report",
                                        "version",
                                        "help",    NULL};
    const char *near = sl__diag_suggest(name, names, SIZE_MAX);
    if (near != NULL)
        sl__cli_error("unknown command '%s' (did you mean '%s'?)", name, near);
    else
        sl__cli_error("unknown command '%s' (see sluice --help)", name);
    return SL__EXIT_USAGE;
}

int sl__cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(main_usage, stderr);
        return SL__EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (sl__cli_is_help(cmd)) {
        fputs(main_usage, stdout);
        return SL__EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && sl__cli_is_help(argv[2])) {
            printf("Usage: sluice version\n\nPrint the version and the "
                   "plugin ABI version.\n");
            return SL__EXIT_OK;
        }
        return version();
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc < 3) {
            fputs(main_usage, stdout);
            return SL__EXIT_OK;
        }
        if (strcmp(argv[2], "version") == 0 || strcmp(argv[2], "help") == 0) {
            fputs(main_usage, stdout);
            return SL__EXIT_OK;
        }
        command_fn fn = find(argv[2]);
        if (fn == NULL)
            return unknown(argv[2]);
        char *help_argv[] = {(char *)"--help", NULL};
        return fn(1, help_argv);
    }
    command_fn fn = find(cmd);
    if (fn == NULL)
        return unknown(cmd);
    return fn(argc - 2, argv + 2);
}
