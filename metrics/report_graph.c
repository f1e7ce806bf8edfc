/*
 * The stage graph of the HTML report: stages placed in columns by their
 * depth from the sources (the longest chain of inputs before them), edges
 * drawn from each input to its reader. See metrics/report.h.
 */
#include <stdlib.h>
#include <string.h>

#include "metrics/report.h"
#include "metrics/text.h"
#include "sluice/error.h"

#define NODE_W 140.0
#define NODE_H 52.0
#define COL_STRIDE 190.0
/* Wider graphs are drawn at their size and scroll; narrower ones scale
 * down to the page. */
#define FIT_W 1400.0
#define ROW_STRIDE 76.0
#define MARGIN 24.0
#define NAME_CHARS 17

/*
 * Depth of each stage: 0 for a stage without inputs, else one more than
 * its deepest input. A wiring loop (which the engine refuses, but a file
 * may hold anything) stops growing after n rounds.
 */
static void depths(const sl__run_snapshot *s, size_t *depth)
{
    for (size_t i = 0; i < s->n_stages; i++)
        depth[i] = 0;
    for (size_t round = 0; round < s->n_stages; round++) {
        bool changed = false;
        for (size_t i = 0; i < s->n_stages; i++) {
            const sl__stage_snapshot *t = &s->stages[i];
            for (size_t k = 0; k < t->n_inputs; k++) {
                size_t j = t->inputs[k];
                if (j < s->n_stages && depth[j] + 1 > depth[i] &&
                    depth[j] + 1 < s->n_stages) {
                    depth[i] = depth[j] + 1;
                    changed = true;
                }
            }
        }
        if (!changed)
            break;
    }
}

/* One stage's box at (x, y) with its tooltip; the bottleneck red and
 * labelled above. 0 or SL_ENOMEM. */
static int node_write(sl_buf *b, const sl__stage_snapshot *t, double x,
                      double y, bool hot)
{
    char out[32], in[32];
    sl__svg_num((double)t->records_out, out, sizeof(out));
    sl__svg_num((double)t->records_in, in, sizeof(in));
    int rc = 0;
    rc |= sl__mputf(b, "<g class=\"node%s\" data-stage=\"", hot ? " hot" : "");
    rc |= sl__mput_html(b, t->name);
    rc |= sl__mput(b, "\"><title>");
    rc |= sl__mput_html(b, t->name);
    rc |= sl__mput(b, " (");
    rc |= sl__mput_html(b, t->type);
    rc |= sl__mputf(b, ", %d worker%s): %s in, %s out%s</title>", t->workers,
                    t->workers == 1 ? "" : "s", in, out,
                    hot ? " \xe2\x80\x94 the bottleneck" : "");
    rc |= sl__mputf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                    "height=\"%.1f\" rx=\"6\"/>", x, y, NODE_W, NODE_H);
    rc |= sl__mputf(b, "<text class=\"name\" x=\"%.1f\" y=\"%.1f\" "
                    "text-anchor=\"middle\">", x + NODE_W / 2, y + 21);
    rc |= sl__mput_html_cut(b, t->name, NAME_CHARS);
    rc |= sl__mputf(b, "</text><text class=\"sub\" x=\"%.1f\" y=\"%.1f\" "
                    "text-anchor=\"middle\">", x + NODE_W / 2, y + 39);
    rc |= sl__mput_html_cut(b, t->type, 12);
    if (t->workers > 1)
        rc |= sl__mputf(b, " \xc3\x97%d", t->workers);
    rc |= sl__mputf(b, " \xc2\xb7 %s out</text>", out);
    if (hot)
        rc |= sl__mputf(b, "<text class=\"hot\" x=\"%.1f\" y=\"%.1f\" "
                        "text-anchor=\"middle\">bottleneck</text>",
                        x + NODE_W / 2, y - 6);
    rc |= sl__mput(b, "</g>");
    return rc != 0 ? SL_ENOMEM : 0;
}

/* Edges first, so that boxes are drawn over their ends. */
int sl__report_graph_write(sl_buf *b, const sl__run_snapshot *s,
                           long bottleneck)
{
    size_t n = s->n_stages;
    size_t *depth = calloc(n > 0 ? n : 1, sizeof(*depth));
    size_t *row = calloc(n > 0 ? n : 1, sizeof(*row));
    size_t *col_rows = calloc(n > 0 ? n : 1, sizeof(*col_rows));
    int rc = SL_ENOMEM;
    if (depth == NULL || row == NULL || col_rows == NULL)
        goto out_free;
    depths(s, depth);
    size_t cols = 0, rows = 0;
    for (size_t i = 0; i < n; i++) {
        row[i] = col_rows[depth[i]]++;
        if (depth[i] + 1 > cols)
            cols = depth[i] + 1;
        if (col_rows[depth[i]] > rows)
            rows = col_rows[depth[i]];
    }
    double w = 2 * MARGIN + (cols > 0 ? (double)(cols - 1) * COL_STRIDE : 0) +
               NODE_W;
    double h = 2 * MARGIN + (rows > 0 ? (double)(rows - 1) * ROW_STRIDE : 0) +
               NODE_H;
    rc = 0;
    rc |= sl__mputf(b, "<svg class=\"chart graph%s\" id=\"stage-graph\" "
                    "xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
                    "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">",
                    w > FIT_W ? " wide" : "", w, h, w, h);
    rc |= sl__mput(b, "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" "
                   "refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
                   "orient=\"auto\"><path d=\"M0 0 L10 5 L0 10 z\"/></marker>"
                   "</defs>");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        double x2 = MARGIN + (double)depth[i] * COL_STRIDE;
        double y2 = MARGIN + (double)row[i] * ROW_STRIDE + NODE_H / 2;
        for (size_t k = 0; k < t->n_inputs; k++) {
            size_t j = t->inputs[k];
            if (j >= n)
                continue;
            double x1 = MARGIN + (double)depth[j] * COL_STRIDE + NODE_W;
            double y1 = MARGIN + (double)row[j] * ROW_STRIDE + NODE_H / 2;
            rc |= sl__mput(b, "<path class=\"edge\" data-from=\"");
            rc |= sl__mput_html(b, s->stages[j].name);
            rc |= sl__mput(b, "\" data-to=\"");
            rc |= sl__mput_html(b, t->name);
            rc |= sl__mputf(b, "\" marker-end=\"url(#arrow)\" d=\"M%.1f %.1f "
                            "C%.1f %.1f %.1f %.1f %.1f %.1f\"/>",
                            x1, y1, x1 + 40, y1, x2 - 40, y2, x2 - 2, y2);
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = node_write(b, &s->stages[i],
                        MARGIN + (double)depth[i] * COL_STRIDE,
                        MARGIN + (double)row[i] * ROW_STRIDE,
                        (long)i == bottleneck);
    rc |= sl__mput(b, "</svg>");
    if (rc != 0)
        rc = SL_ENOMEM;
out_free:
    free(col_rows);
    free(row);
    free(depth);
    return rc;
}
