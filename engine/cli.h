/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The `sluice` command line: one function per command, each taking the
 * arguments after the command name and returning the process exit code
 * (DESIGN.md "Command line — contract"):
 *
 *   0 success, 1 pipeline failure, 2 usage or configuration error,
 *   3 forced stop.
 *
 * Output for people goes to stderr; stdout carries only what a command
 * produces (DOT, `stages` tables, `validate`'s "ok" line, help text) so
 * that the `stdout` stage owns it during `run`.
 *
 * Thread: main thread only.
 */
#ifndef SLUICE_ENGINE_CLI_H
#define SLUICE_ENGINE_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/config.h"
#include "engine/diag.h"
#include "engine/graph.h"
#include "engine/registry.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

#define SL__EXIT_OK 0
#define SL__EXIT_FAILED 1
#define SL__EXIT_USAGE 2
#define SL__EXIT_FORCED 3

/* The whole command line: dispatches to a command. */
int sl__cli_main(int argc, char **argv);

int sl__cli_run(int argc, char **argv);
int sl__cli_validate(int argc, char **argv);
int sl__cli_graph(int argc, char **argv);
int sl__cli_stages(int argc, char **argv);
int sl__cli_metrics(int argc, char **argv);
int sl__cli_report(int argc, char **argv);

/* ------------------------------------------------------------------ */
/* Shared by the commands (cli_common.c)                               */
/* ------------------------------------------------------------------ */

/* A growable NULL-terminated list of strings (borrowed from argv). */
typedef struct sl__strvec {
    const char **items;
    size_t n;
    size_t cap;
} sl__strvec;

int sl__strvec_push(sl__strvec *v, const char *s);
void sl__strvec_fini(sl__strvec *v);

/* What `run`, `validate` and `graph` load. */
typedef struct sl__loaded {
    sl_registry *registry;   /* built-ins and plugins */
    sl_config *cfg;          /* the pipeline */
    sl_graph *graph;         /* its wiring */
} sl__loaded;

/*
 * Load a pipeline: the registry (built-ins, then each --plugin path), the
 * file (with --set variables and its own `plugins:`), then the graph.
 * Problems are printed to stderr as "error: file:line:col: text", warnings
 * as "warning: ...". Returns 0, or the exit code to use (2).
 */
int sl__cli_load(const char *path, const sl__strvec *sets,
                 const sl__strvec *plugins, sl__loaded *out);
void sl__cli_unload(sl__loaded *l);

/* "sluice: " + message on stderr. */
void sl__cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Is arg -h or --help? */
bool sl__cli_is_help(const char *arg);

/*
 * Take an option's value: "--opt VALUE" (advancing *i) or "--opt=VALUE".
 * Returns the value, or NULL after printing a usage error when missing.
 * Returns NULL without a message when argv[*i] is not this option.
 */
const char *sl__cli_opt_value(int argc, char **argv, int *i, const char *opt,
                              bool *matched);

#endif
