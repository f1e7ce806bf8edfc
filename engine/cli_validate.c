/*
 * `sluice validate FILE` and `sluice graph FILE`: load and check a pipeline
 * without running it; graph also prints its wiring as Graphviz DOT.
 */
#include <stdio.h>
#include <string.h>

#include "engine/cli.h"

static const char validate_usage[] =
    "Usage: sluice validate PIPELINE.yaml [--set VAR=VALUE]... [--plugin PATH]...\n"
    "\n"
    "Check a pipeline file without running it: keys, types, stage options,\n"
    "expressions and wiring. Prints \"FILE: ok (N stages)\" and exits 0, or\n"
    "prints every problem as file:line:col and exits 2.\n";

static const char graph_usage[] =
    "Usage: sluice graph PIPELINE.yaml [--set VAR=VALUE]... [--plugin PATH]...\n"
    "\n"
    "Print the pipeline's stage graph as Graphviz DOT on stdout, e.g.\n"
    "  sluice graph pipelines/tee.yaml | dot -Tsvg > tee.svg\n";

/* Shared argument parsing: FILE plus --set/--plugin. -1 = go on. */
static int parse(int argc, char **argv, const char *cmd, const char *usage,
                 const char **file, sl__strvec *sets, sl__strvec *plugins)
{
    for (int i = 0; i < argc; i++) {
        bool m;
        const char *v;
        if (sl__cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        }
        if ((v = sl__cli_opt_value(argc, argv, &i, "--set", &m)) != NULL || m) {
            if (v == NULL)
                return 2;
            sl__strvec_push(sets, v);
            continue;
        }
        if ((v = sl__cli_opt_value(argc, argv, &i, "--plugin", &m)) != NULL ||
            m) {
            if (v == NULL)
                return 2;
            sl__strvec_push(plugins, v);
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            sl__cli_error("%s: unknown option '%s' (see sluice %s --help)", cmd,
                          argv[i], cmd);
            return 2;
        }
        if (*file != NULL) {
            sl__cli_error("%s: one pipeline file at a time", cmd);
            return 2;
        }
        *file = argv[i];
    }
    if (*file == NULL) {
        sl__cli_error("%s: which pipeline? (sluice %s PIPELINE.yaml)", cmd, cmd);
        return 2;
    }
    return -1;
}

static int load_and(int argc, char **argv, bool dot)
{
    const char *cmd = dot ? "graph" : "validate";
    const char *file = NULL;
    sl__strvec sets = {0}, plugins = {0};
    int code = parse(argc, argv, cmd, dot ? graph_usage : validate_usage,
                     &file, &sets, &plugins);
    if (code >= 0)
        goto out;
    sl__loaded l;
    code = sl__cli_load(file, &sets, &plugins, &l);
    if (code != 0)
        goto out;
    if (dot) {
        if (sl__graph_to_dot(l.graph, stdout) != 0 || fflush(stdout) != 0) {
            sl__cli_error("graph: cannot write to stdout");
            code = SL__EXIT_FAILED;
        }
    } else {
        printf("%s: ok (%zu stage%s)\n", file, l.cfg->n_stages,
               l.cfg->n_stages == 1 ? "" : "s");
    }
    sl__cli_unload(&l);
out:
    sl__strvec_fini(&sets);
    sl__strvec_fini(&plugins);
    return code;
}

int sl__cli_validate(int argc, char **argv)
{
    return load_and(argc, argv, false);
}

int sl__cli_graph(int argc, char **argv)
{
    return load_and(argc, argv, true);
}
