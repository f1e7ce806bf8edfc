/*
 * `sluice report HISTORY -o REPORT.html`: a metrics.history file drawn as
 * one self-contained HTML page (metrics/report_html.c; docs/report.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli.h"
#include "metrics/report.h"
#include "sluice/error.h"

static const char report_usage[] =
    "Usage: sluice report HISTORY -o REPORT.html [--run N]\n"
    "\n"
    "Draw a metrics history (the file metrics.history appends a snapshot to\n"
    "every metrics.interval) as one self-contained HTML page that opens\n"
    "offline: the stage graph with the bottleneck marked, a table of the\n"
    "stages, per stage throughput and input queue fill over time, how each\n"
    "stage spent its time (busy, blocked on a full output, idle), latency\n"
    "quantiles, and errors and retries over time.\n"
    "\n"
    "HISTORY is a metrics.history file, or - for standard input. A file that\n"
    "holds several runs (the history is appended to) shows the last one.\n"
    "\n"
    "Options:\n"
    "  -o, --output PATH  write the page to PATH (required; - for standard\n"
    "                     output); PATH is replaced atomically\n"
    "  --run N            show the file's run N (from 1) instead of the last\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit codes: 0 written, 2 usage error, a file that is not a metrics\n"
    "history (the message names its line), or the page cannot be written.\n";

/* Parse a run number: a positive decimal integer. */
static bool parse_run(const char *s, size_t *out)
{
    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > SIZE_MAX)
        return false;
    *out = (size_t)v;
    return true;
}

/* Read the history at path ("-": stdin) into h; prints why not and
 * returns 2, or 0. */
static int load(const char *path, size_t run, sl__history *h)
{
    bool std_in = strcmp(path, "-") == 0;
    const char *shown = std_in ? "<stdin>" : path;
    FILE *f = std_in ? stdin : fopen(path, "r");
    if (f == NULL) {
        sl__cli_error("report: cannot open %s: %s", path, strerror(errno));
        return SL__EXIT_USAGE;
    }
    size_t line = 0;
    char err[300];
    int rc = sl__history_read(f, run, h, &line, err, sizeof(err));
    int saved = errno;
    if (!std_in)
        fclose(f);
    if (rc == 0)
        return 0;
    if (rc == SL_ENOMEM)
        sl__cli_error("out of memory");
    else if (rc == SL_EIO)
        sl__cli_error("report: cannot read %s: %s", shown, strerror(saved));
    else if (line > 0)
        sl__cli_error("report: %s:%zu: not a metrics snapshot: %s", shown,
                      line, err);
    else
        sl__cli_error("report: %s: %s", shown, err);
    return SL__EXIT_USAGE;
}

/* Write the page; prints why not and returns 2, or 0. */
static int save(const char *path, const sl_buf *page)
{
    if (strcmp(path, "-") == 0) {
        if (fwrite(page->data, 1, page->len, stdout) != page->len ||
            fflush(stdout) != 0) {
            sl__cli_error("report: cannot write to standard output: %s",
                          strerror(errno));
            return SL__EXIT_USAGE;
        }
        return 0;
    }
    int rc = sl__file_write_atomic(path, page->data, page->len);
    if (rc == SL_ENOMEM) {
        sl__cli_error("out of memory");
        return SL__EXIT_USAGE;
    }
    if (rc != 0) {
        sl__cli_error("report: cannot write %s: %s", path, strerror(errno));
        return SL__EXIT_USAGE;
    }
    return 0;
}

/* Parse the arguments, read the history, draw the page, write it. */
int sl__cli_report(int argc, char **argv)
{
    const char *path = NULL, *output = NULL;
    size_t run = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (sl__cli_is_help(a)) {
            fputs(report_usage, stdout);
            return SL__EXIT_OK;
        }
        bool matched = false;
        const char *v = sl__cli_opt_value(argc, argv, &i, "--output", &matched);
        if (!matched)
            v = sl__cli_opt_value(argc, argv, &i, "-o", &matched);
        if (matched) {
            if (v == NULL)
                return SL__EXIT_USAGE;
            if (v[0] == '\0') {
                sl__cli_error("report: -o needs a file name");
                return SL__EXIT_USAGE;
            }
            output = v;
            continue;
        }
        v = sl__cli_opt_value(argc, argv, &i, "--run", &matched);
        if (matched) {
            if (v == NULL)
                return SL__EXIT_USAGE;
            if (!parse_run(v, &run)) {
                sl__cli_error("report: --run takes a run number from 1, not "
                              "'%s'", v);
                return SL__EXIT_USAGE;
            }
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            sl__cli_error("report: unknown option '%s' (see sluice report "
                          "--help)", a);
            return SL__EXIT_USAGE;
        }
        if (path != NULL) {
            sl__cli_error("report: one history at a time ('%s' and '%s')",
                          path, a);
            return SL__EXIT_USAGE;
        }
        path = a;
    }
    if (path == NULL) {
        sl__cli_error("report: which history? (sluice report "
                      "out/metrics.jsonl -o out/report.html)");
        return SL__EXIT_USAGE;
    }
    if (output == NULL) {
        sl__cli_error("report: where to? (-o REPORT.html, or -o - for "
                      "standard output)");
        return SL__EXIT_USAGE;
    }
    sl__history h;
    int exit_code = load(path, run, &h);
    if (exit_code != 0)
        return exit_code;
    if (h.skipped_partial)
        fprintf(stderr, "sluice: report: %s: the last line is unfinished "
                "(still being written?); left out\n", path);
    if (h.n_runs > 1)
        fprintf(stderr, "sluice: report: %s holds %zu runs; showing run %zu "
                "(lines %zu-%zu)\n", path, h.n_runs, h.run, h.first_line,
                h.line[h.n_points - 1]);
    sl_buf page;
    sl_buf_init(&page);
    sl__report_opts opts = {.source = strcmp(path, "-") == 0 ? "<stdin>"
                                                             : path};
    int rc = sl__report_html(&h, &opts, &page);
    if (rc != 0) {
        sl__cli_error("out of memory");
        exit_code = SL__EXIT_USAGE;
    } else {
        exit_code = save(output, &page);
    }
    sl_buf_fini(&page);
    sl__history_fini(&h);
    return exit_code;
}
