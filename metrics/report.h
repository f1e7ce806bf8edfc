/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The HTML run report (`sluice report`, docs/report.md): a metrics.history
 * file read into time series (metrics/report_history.c), and one
 * self-contained HTML page drawn from them with inline SVG charts
 * (metrics/report_html.c, metrics/report_graph.c, metrics/svg_chart.c).
 * Every piece of text that reaches the page goes through sl__mput_html
 * (metrics/html_text.c): stage and pipeline names are user input.
 *
 * Thread: any, on the caller's own history and buffer.
 */
#ifndef SLUICE_METRICS_REPORT_H
#define SLUICE_METRICS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "metrics/snapshot.h"
#include "sluice/value.h"

/* ------------------------------------------------------------------ */
/* A history read into series (metrics/report_history.c)               */
/* ------------------------------------------------------------------ */

/*
 * One run of a history file: its snapshots' figures as series. Per-stage
 * series are stored point-major: the value of stage s at point p is
 * series[p * n_stages + s].
 */
typedef struct sl__history {
    size_t n_points;          /* snapshots of the run (lines) */
    size_t n_stages;          /* as in last */
    double *t;                /* [n_points] elapsed_s of each snapshot */
    size_t *line;             /* [n_points] its line in the file */
    uint64_t *work;           /* records worked through, cumulative: taken
                                 in, or emitted by a source */
    uint64_t *errors;         /* cumulative */
    uint64_t *retries;        /* cumulative */
    double *queue_fill;       /* input queue depth / capacity, 0..1; -1 for
                                 a stage without an input queue */
    long *bottleneck;         /* [n_points] at the last point of each
                                 window (see SL__REPORT_WINDOW_S): the
                                 bottleneck over the window (-1: none);
                                 SL__REPORT_NO_WINDOW at other points */
    sl__run_snapshot last;    /* the run's last snapshot, in full */
    size_t n_runs;            /* runs found in the file (this is the last
                                 unless a run was chosen) */
    size_t run;               /* which of them this is, from 1 */
    size_t first_line;        /* the file's line of this run's first
                                 snapshot */
    bool skipped_partial;     /* an unfinished last line was left out */
} sl__history;

/*
 * The bottleneck over time is named per window of at least this many
 * seconds (from one window's last snapshot to the next), and over the
 * run's last stretch however short: a worker's wait on a full output is
 * counted when it ends, so over much shorter windows a stage held back in
 * one long wait looks busy.
 */
#define SL__REPORT_WINDOW_S 1.0
#define SL__REPORT_NO_WINDOW (-2)

/*
 * Read a metrics.history file (one JSON snapshot per line, blank lines
 * ignored) from f. A file that holds several runs (the history is appended
 * to, so running a pipeline twice leaves two) is split where a snapshot's
 * elapsed time goes back, its stages change, or the line before it was a
 * run's final snapshot; `run` picks one (from 1; 0 = the last). An
 * unfinished last line (no newline, not JSON: the file is being written)
 * is left out and flagged.
 *
 * Returns 0 with *out filled (free with sl__history_fini); SL_EPARSE with
 * *err_line the line and err the reason ("not JSON: ...", "stage 2: no
 * name"), or *err_line 0 for the file as a whole ("no snapshots", "holds 2
 * runs, not 3"); SL_EIO (errno says why); or SL_ENOMEM. *out is untouched
 * on failure.
 */
int sl__history_read(FILE *f, size_t run, sl__history *out, size_t *err_line,
                     char *err, size_t err_size);

/* Free what the history owns; zeroed histories are fine. */
void sl__history_fini(sl__history *h);

/* The value of stage s at point p of a per-stage series. */
#define SL__HIST_AT(h, series, p, s) ((h)->series[(p) * (h)->n_stages + (s)])

/* ------------------------------------------------------------------ */
/* The page (metrics/report_html.c)                                    */
/* ------------------------------------------------------------------ */

typedef struct sl__report_opts {
    const char *source;       /* the history's name, shown on the page */
    size_t max_points;        /* most points per chart series (0: 600);
                                 longer histories are merged into windows */
} sl__report_opts;

/*
 * Append the whole report for h to out: a self-contained HTML5 page (no
 * scripts, no external resources) with the stage graph, a stage table,
 * throughput, queue fill and errors/retries over time, time use and
 * latency quantiles per stage, and the bottleneck named and highlighted.
 * A history with no points gives a page saying so. 0 or SL_ENOMEM.
 */
int sl__report_html(const sl__history *h, const sl__report_opts *opts,
                    sl_buf *out);

/* ------------------------------------------------------------------ */
/* Pieces of the page (metrics/report_graph.c, metrics/svg_chart.c)    */
/* ------------------------------------------------------------------ */

/* Text for HTML and SVG, in element content and in quoted attributes:
 * & < > " ' escaped, control characters other than tab and newline
 * replaced by U+FFFD. 0 or SL_ENOMEM. */
int sl__mput_html(sl_buf *b, const char *s);

/* The same, at most max_chars characters (UTF-8 sequences kept whole),
 * with "…" in place of the rest. */
int sl__mput_html_cut(sl_buf *b, const char *s, size_t max_chars);

/* A stage's colour: index into a fixed palette, repeating after its
 * size (SL__SVG_COLORS) with a dash pattern so stages stay apart. */
#define SL__SVG_COLORS 10
const char *sl__svg_color(size_t i);
/* "" for the first SL__SVG_COLORS stages, then a stroke-dasharray. */
const char *sl__svg_dash(size_t i);

/* "1.2k", "34.5M", "0.25", "12": short numbers for axes and labels. */
void sl__svg_num(double v, char *buf, size_t size);
/* "3.5µs", "12ms", "1.2s" from microseconds. */
void sl__svg_duration_us(double us, char *buf, size_t size);

/* One line of a line chart: values at the chart's x positions (NaN: no
 * value there, the line breaks). */
typedef struct sl__svg_series {
    const char *name;         /* legend text (escaped when written) */
    size_t color;             /* palette index (sl__svg_color) */
    const double *y;          /* [n] values */
    bool emphasis;            /* drawn thicker, legend marks it */
} sl__svg_series;

typedef struct sl__svg_line_chart {
    const char *id;           /* the <svg> element's id */
    const char *y_unit;       /* axis caption, e.g. "records/s" */
    const double *x;          /* [n] seconds, ascending */
    size_t n;
    const sl__svg_series *series;
    size_t n_series;
    bool percent;             /* values are 0..1, shown 0–100% */
    bool integer;             /* counts: no ticks between whole numbers */
} sl__svg_line_chart;

/*
 * An SVG line chart: axes with ticks, one <polyline> per series (class
 * "series", data-stage the series name), a marker per point when there is
 * only one, and a legend. 0 or SL_ENOMEM.
 */
int sl__svg_line_chart_write(sl_buf *b, const sl__svg_line_chart *c);

/* One row of a stacked bar chart. */
typedef struct sl__svg_bar_row {
    const char *label;
    double parts[3];          /* shares, each 0..1, summing to at most 1 */
    bool emphasis;
} sl__svg_bar_row;

/*
 * Horizontal bars 0–100%, one per row, split into three parts named
 * part_names with part_colors, each part with its percentage as a
 * tooltip and, when wide enough, as text. 0 or SL_ENOMEM.
 */
int sl__svg_share_bars_write(sl_buf *b, const char *id,
                             const sl__svg_bar_row *rows, size_t n,
                             const char *const part_names[3],
                             const char *const part_colors[3]);

/* One row of the latency chart: quantiles in microseconds (0: none). */
typedef struct sl__svg_quantile_row {
    const char *label;
    double q[4];              /* p50, p90, p99, max */
    bool emphasis;
} sl__svg_quantile_row;

/* Per row a range from p50 to max on a logarithmic axis, with a mark at
 * each quantile. Rows without any value say "no latency recorded". */
int sl__svg_quantiles_write(sl_buf *b, const char *id,
                            const sl__svg_quantile_row *rows, size_t n);

/*
 * The stage graph of a snapshot: stages as boxes in columns by depth
 * (sources left), edges from each input to its reader, each box with the
 * stage's name, type and records out; the stage at index `bottleneck`
 * (or none, -1) drawn in red and labelled. 0 or SL_ENOMEM.
 */
int sl__report_graph_write(sl_buf *b, const sl__run_snapshot *s,
                           long bottleneck);

#endif
