/*
 * `sluice run PIPELINE.yaml`: load, run until done, stopped or failed,
 * report. Live progress on stderr when it is a terminal; a summary table at
 * the end unless --quiet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "engine/cli.h"
#include "engine/run.h"
#include "engine/signals.h"
#include "engine/stage_ctx.h"
#include "engine/watchdog.h"
#include "metrics/endpoint.h"
#include "sluice/error.h"

static const char run_usage[] =
    "Usage: sluice run PIPELINE.yaml [options]\n"
    "\n"
    "Run a pipeline until its sources are exhausted, it is stopped\n"
    "(SIGINT/SIGTERM: drain and exit 0; a second signal forces a stop, exit\n"
    "3), or a stage fails (exit 1). SIGUSR1 prints every stage's state\n"
    "(also served at /debug/stages by the metrics endpoint).\n"
    "\n"
    "Options:\n"
    "  --set VAR=VALUE      set ${VAR} for the pipeline file (repeatable;\n"
    "                       wins over the environment)\n"
    "  --metrics-file PATH  write the metrics snapshot here (overrides\n"
    "                       metrics.file)\n"
    "  --metrics-listen HOST:PORT\n"
    "                       serve /metrics (Prometheus), /health,\n"
    "                       /snapshot and /debug/stages over HTTP while\n"
    "                       the run goes (overrides metrics.listen; an\n"
    "                       empty HOST is 127.0.0.1, port 0 picks a free\n"
    "                       one)\n"
    "  --trace PATH         write an activity trace when the run ends:\n"
    "                       per worker busy / blocked / idle spans, queue\n"
    "                       depths, retries, errors, breaker changes,\n"
    "                       stalls and signals, as Chrome trace-event JSON\n"
    "                       (open in ui.perfetto.dev; docs/debugging.md)\n"
    "  --plugin PATH        load a stage plugin (repeatable)\n"
    "  --quiet, -q          no progress line and no summary table\n"
    "  --log-level LEVEL    error, warn, info (default) or debug\n"
    "  -h, --help           show this help\n"
    "\n"
    "Environment:\n"
    "  SLUICE_METRICS=off   no per-record measurements: no latency timing,\n"
    "                       no record sizes (counts and wait times stay;\n"
    "                       see docs/metrics.md)\n"
    "\n"
    "Exit codes: 0 success, 1 pipeline failure, 2 usage or configuration\n"
    "error, 3 forced stop.\n";

/* ------------------------------------------------------------------ */
/* Live progress                                                       */
/* ------------------------------------------------------------------ */

typedef struct progress {
    sl__run_snapshot prev;   /* monitor thread */
    bool has_prev;           /* monitor thread */
    bool shown;              /* a line is on screen */
} progress;

/*
 * Runs on the monitor thread: one line, redrawn in place, about the last
 * interval (metrics/table.c: sl__metrics_progress_line).
 */
static void show_progress(void *arg, sl__run *run)
{
    progress *p = arg;
    sl__run_snapshot snap, win;
    if (sl__run_snapshot_take(run, p->has_prev ? &p->prev : NULL, &snap) != 0)
        return;
    bool has_win = p->has_prev &&
                   sl__run_snapshot_window(&snap, &p->prev, &win) == 0;
    struct winsize ws;
    size_t width = 100;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
        width = ws.ws_col;
    char line[1024];
    if (width > sizeof(line))
        width = sizeof(line);
    sl__metrics_progress_line(has_win ? &win : &snap, snap.elapsed_s, line,
                              width);
    if (has_win)
        sl__run_snapshot_fini(&win);
    flockfile(stderr);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    funlockfile(stderr);
    p->shown = true;
    sl__log_set_clear_line(true);
    if (p->has_prev)
        sl__run_snapshot_fini(&p->prev);
    p->prev = snap;
    p->has_prev = true;
}

/* What the metrics endpoint serves: the run as it is now, throughput
 * over the whole run so far. Runs on the endpoint's thread. */
static int live_snapshot(void *arg, sl__run_snapshot *out)
{
    return sl__run_snapshot_take(arg, NULL, out);
}

/* /debug/stages: what SIGUSR1 prints. Runs on the endpoint's thread. */
static int live_stages(void *arg, sl_buf *out)
{
    return sl__run_describe(arg, out);
}

/* ------------------------------------------------------------------ */

typedef struct run_args {
    const char *pipeline;
    sl__strvec sets;
    sl__strvec plugins;
    const char *metrics_file;
    const char *metrics_listen;
    const char *trace;
    bool quiet;
} run_args;

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, run_args *a)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        bool m;
        const char *v;
        if (sl__cli_is_help(arg)) {
            fputs(run_usage, stdout);
            return SL__EXIT_OK;
        }
        if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
            a->quiet = true;
            continue;
        }
        if ((v = sl__cli_opt_value(argc, argv, &i, "--set", &m)) != NULL || m) {
            if (v == NULL)
                return SL__EXIT_USAGE;
            if (strchr(v, '=') == NULL || v[0] == '=') {
                sl__cli_error("--set wants VAR=VALUE, got '%s'", v);
                return SL__EXIT_USAGE;
            }
            sl__strvec_push(&a->sets, v);
            continue;
        }
        if ((v = sl__cli_opt_value(argc, argv, &i, "--plugin", &m)) != NULL ||
            m) {
            if (v == NULL)
                return SL__EXIT_USAGE;
            sl__strvec_push(&a->plugins, v);
            continue;
        }
        if ((v = sl__cli_opt_value(argc, argv, &i, "--metrics-file", &m)) !=
                NULL || m) {
            if (v == NULL)
                return SL__EXIT_USAGE;
            a->metrics_file = v;
            continue;
        }
        if ((v = sl__cli_opt_value(argc, argv, &i, "--metrics-listen", &m)) !=
                NULL || m) {
            if (v == NULL)
                return SL__EXIT_USAGE;
            a->metrics_listen = v;
            continue;
        }
        if ((v = sl__cli_opt_value(argc, argv, &i, "--trace", &m)) != NULL ||
            m) {
            if (v == NULL)
                return SL__EXIT_USAGE;
            a->trace = v;
            continue;
        }
        if ((v = sl__cli_opt_value(argc, argv, &i, "--log-level", &m)) != NULL ||
            m) {
            sl_log_level level;
            if (v == NULL)
                return SL__EXIT_USAGE;
            if (sl__log_parse_level(v, &level) != 0) {
                sl__cli_error("--log-level: unknown level '%s' (error, warn, "
                              "info, debug)", v);
                return SL__EXIT_USAGE;
            }
            sl__log_set_level(level);
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            sl__cli_error("run: unknown option '%s' (see sluice run --help)",
                          arg);
            return SL__EXIT_USAGE;
        }
        if (a->pipeline != NULL) {
            sl__cli_error("run: one pipeline file at a time ('%s' and '%s')",
                          a->pipeline, arg);
            return SL__EXIT_USAGE;
        }
        a->pipeline = arg;
    }
    if (a->pipeline == NULL) {
        sl__cli_error("run: which pipeline? (sluice run PIPELINE.yaml)");
        return SL__EXIT_USAGE;
    }
    return -1;
}

static int run_loaded(const sl__loaded *l, const run_args *a)
{
    const sl_config *cfg = l->cfg;
    const sl_graph *g = l->graph;
    sl__run_stage *stages = calloc(g->n > 0 ? g->n : 1, sizeof(*stages));
    if (stages == NULL) {
        sl__cli_error("out of memory");
        return SL__EXIT_FAILED;
    }
    for (size_t i = 0; i < g->n; i++) {
        stages[i].conf = &cfg->stages[i];
        stages[i].n_inputs = g->nodes[i].n_inputs;
        stages[i].inputs = g->nodes[i].inputs;
    }
    progress prog;
    memset(&prog, 0, sizeof(prog));
    bool metrics_off = false;
    const char *m_env = getenv("SLUICE_METRICS");
    if (m_env != NULL && m_env[0] != '\0') {
        if (strcmp(m_env, "off") == 0 || strcmp(m_env, "0") == 0)
            metrics_off = true;
        else if (strcmp(m_env, "on") != 0 && strcmp(m_env, "1") != 0)
            sl__log(SL_LOG_WARN, NULL, "SLUICE_METRICS: expected on or off, "
                    "got '%s'; metrics stay on", m_env);
    }
    bool live = !a->quiet && isatty(STDERR_FILENO);
    sl__run_opts opts = {
        .cfg = cfg,
        .n_stages = g->n,
        .stages = stages,
        .metrics_file = a->metrics_file,
        .progress = live ? show_progress : NULL,
        .progress_arg = &prog,
        .metrics_off = metrics_off,
        .trace_path = a->trace,
    };
    int exit_code = SL__EXIT_FAILED;
    sl_diag *diag = sl__diag_create();
    sl__run *run = NULL;
    sl__metrics_server *server = NULL;
    int rc = diag != NULL ? sl__run_create(&opts, diag, &run) : SL_ENOMEM;
    if (diag != NULL)
        sl__diag_print(diag, stderr);
    if (rc != 0) {
        if (rc == SL_ENOMEM)
            sl__cli_error("out of memory");
        exit_code = rc == SL_ECONFIG ? SL__EXIT_USAGE : SL__EXIT_FAILED;
        goto out;
    }

    const char *listen_addr = a->metrics_listen != NULL ? a->metrics_listen
                                                        : cfg->metrics.listen;
    if (listen_addr != NULL) {
        char err[256];
        rc = sl__metrics_server_start_debug(listen_addr, live_snapshot,
                                            live_stages, run, err,
                                            sizeof(err), &server);
        if (rc != 0) {
            sl__cli_error("metrics endpoint: %s",
                          rc == SL_ENOMEM ? "out of memory" : err);
            exit_code = rc == SL_EINVAL ? SL__EXIT_USAGE : SL__EXIT_FAILED;
            goto out;
        }
        sl__log(SL_LOG_INFO, NULL, "metrics at http://%s/metrics",
                sl__metrics_server_address(server));
    }

    sl__signals *sig = NULL;
    if (sl__signals_start(run, &sig) != 0)
        sl__log(SL_LOG_WARN, NULL, "no signal thread: SIGINT/SIGTERM will "
                                   "not stop the run gracefully");
    sl__run_result res;
    sl__run_start(run);
    sl__run_wait(run, &res);
    sl__signals_stop(sig);
    sl__metrics_server_stop(server);
    server = NULL;

    if (prog.shown) {
        sl__log_set_clear_line(false);
        fputs("\r\033[K", stderr);
    }
    if (!a->quiet) {
        sl__run_snapshot snap;
        if (sl__run_snapshot_take(run, NULL, &snap) == 0) {
            snap.status = res.status;
            sl__run_snapshot_print_table(&snap, stderr);
            /* below a second, start-up dominates the figures */
            if (snap.elapsed_s >= 1.0 && sl__metrics_bottleneck(&snap) >= 0)
                sl__metrics_print_bottleneck(&snap, stderr);
            sl__run_snapshot_fini(&snap);
        }
    }
    if (res.cause[0] != '\0' && res.status != SL__RUN_SUCCEEDED &&
        (res.status == SL__RUN_FAILED || res.forced))
        sl__cli_error("%s", res.cause);
    exit_code = res.exit_code;
out:
    sl__metrics_server_stop(server);
    if (prog.has_prev)
        sl__run_snapshot_fini(&prog.prev);
    sl__run_destroy(run);
    sl__diag_destroy(diag);
    free(stages);
    return exit_code;
}

int sl__cli_run(int argc, char **argv)
{
    run_args a;
    memset(&a, 0, sizeof(a));
    int exit_code = parse_args(argc, argv, &a);
    if (exit_code >= 0)
        goto out;
    /* Before any thread exists, so that every thread inherits the mask. */
    if (sl__signals_block() != 0)
        sl__log(SL_LOG_WARN, NULL, "cannot block signals");
    sl__loaded l;
    exit_code = sl__cli_load(a.pipeline, &a.sets, &a.plugins, &l);
    if (exit_code != 0)
        goto out;
    exit_code = run_loaded(&l, &a);
    sl__cli_unload(&l);
out:
    sl__strvec_fini(&a.sets);
    sl__strvec_fini(&a.plugins);
    return exit_code;
}
