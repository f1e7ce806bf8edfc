/*
 * SVG charts for the HTML report: line charts over time, share bars and
 * latency quantiles on a logarithmic axis (see metrics/report.h). Every
 * chart is a plain <svg> with a viewBox, styled by the page's CSS classes,
 * so it scales with the window and needs no script.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metrics/report.h"
#include "metrics/text.h"
#include "sluice/error.h"

/* ------------------------------------------------------------------ */
/* Colours and numbers                                                 */
/* ------------------------------------------------------------------ */

static const char *const palette[SL__SVG_COLORS] = {
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2",
    "#edc948", "#9c755f", "#ff9da7", "#e15759", "#7f7f7f",
};

static const char *const dashes[] = {"6 3", "2 2", "8 3 2 3"};

const char *sl__svg_color(size_t i)
{
    return palette[i % SL__SVG_COLORS];
}

const char *sl__svg_dash(size_t i)
{
    if (i < SL__SVG_COLORS)
        return "";
    return dashes[(i / SL__SVG_COLORS - 1) % (sizeof(dashes) / sizeof(dashes[0]))];
}

void sl__svg_num(double v, char *buf, size_t size)
{
    double a = fabs(v);
    if (!isfinite(v))
        snprintf(buf, size, "0");
    else if (a >= 1e9)
        snprintf(buf, size, "%.3gG", v / 1e9);
    else if (a >= 1e6)
        snprintf(buf, size, "%.3gM", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, size, "%.3gk", v / 1e3);
    else if (a >= 100 || v == floor(v))
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.3g", v);
}

void sl__svg_duration_us(double us, char *buf, size_t size)
{
    if (us >= 1e6)
        snprintf(buf, size, "%.3gs", us / 1e6);
    else if (us >= 1e3)
        snprintf(buf, size, "%.3gms", us / 1e3);
    else if (us >= 1)
        snprintf(buf, size, "%.3g\xc2\xb5s", us);
    else
        snprintf(buf, size, "%.3gns", us * 1e3);
}

/* v within [lo, hi]; NaN reads as lo. */
static double clamp(double v, double lo, double hi)
{
    if (!(v > lo))
        return lo;
    return v > hi ? hi : v;
}

/* A step of 1, 2 or 5 times a power of ten giving about `target` ticks
 * over range (> 0). */
static double nice_step(double range, int target)
{
    double raw = range / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double step = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return step * mag;
}

/* ------------------------------------------------------------------ */
/* Legend                                                              */
/* ------------------------------------------------------------------ */

#define CHART_W 760.0
#define LEGEND_ROW 18.0
#define LEGEND_MAX_CHARS 28

/* Characters of s (UTF-8), at most cap. */
static size_t text_chars(const char *s, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n < cap; p++)
        if ((*p & 0xc0) != 0x80)
            n++;
    return n;
}

/* Width of a legend entry: the swatch, the (cut) name, the mark. */
static double legend_item_w(const sl__svg_series *s)
{
    return 34 + 7.5 * (double)text_chars(s->name, LEGEND_MAX_CHARS) +
           (s->emphasis ? 100 : 0);
}

/* Rows the legend needs across width w. */
static int legend_rows(const sl__svg_series *ss, size_t n, double w)
{
    int rows = n > 0 ? 1 : 0;
    double x = 0;
    for (size_t i = 0; i < n; i++) {
        double iw = legend_item_w(&ss[i]);
        if (x > 0 && x + iw > w) {
            rows++;
            x = 0;
        }
        x += iw;
    }
    return rows;
}

/* The legend under a chart: one entry per series, wrapped into rows of
 * width w from (left, top), as legend_rows counted. 0 or SL_ENOMEM. */
static int legend_write(sl_buf *b, const sl__svg_series *ss, size_t n,
                        double left, double top, double w)
{
    int rc = sl__mputf(b, "<g class=\"legend\">");
    double x = 0, y = top;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sl__svg_series *s = &ss[i];
        double iw = legend_item_w(s);
        if (x > 0 && x + iw > w) {
            x = 0;
            y += LEGEND_ROW;
        }
        rc |= sl__mputf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                        "y2=\"%.1f\" stroke=\"%s\" stroke-width=\"%s\"",
                        left + x, y + 9, left + x + 22, y + 9,
                        sl__svg_color(s->color), s->emphasis ? "4" : "2");
        if (sl__svg_dash(s->color)[0] != '\0')
            rc |= sl__mputf(b, " stroke-dasharray=\"%s\"",
                            sl__svg_dash(s->color));
        rc |= sl__mputf(b, "/><text x=\"%.1f\" y=\"%.1f\"%s>",
                        left + x + 26, y + 13,
                        s->emphasis ? " class=\"hot\"" : "");
        rc |= sl__mput_html_cut(b, s->name, LEGEND_MAX_CHARS);
        if (s->emphasis)
            rc |= sl__mput(b, " (bottleneck)");
        rc |= sl__mput(b, "</text>");
        x += iw;
    }
    rc |= sl__mput(b, "</g>");
    return rc != 0 ? SL_ENOMEM : 0;
}

/* ------------------------------------------------------------------ */
/* Line chart                                                          */
/* ------------------------------------------------------------------ */

#define PLOT_L 64.0
#define PLOT_R 16.0
#define PLOT_T 12.0
#define PLOT_H 200.0
#define AXIS_H 40.0

/*
 * x runs from 0 to a round value at or past the last point, y from 0 to a
 * round value at or past the highest (0–100% for percentages). Values
 * outside are drawn at the edge, so a wild number cannot push the drawing
 * off the chart or make the tick loops long.
 */
int sl__svg_line_chart_write(sl_buf *b, const sl__svg_line_chart *c)
{
    double pw = CHART_W - PLOT_L - PLOT_R;
    double xmax = c->n > 0 ? c->x[c->n - 1] : 0;
    if (!(xmax > 0) || !isfinite(xmax) || xmax > 1e15)
        xmax = 1;
    double xstep = nice_step(xmax, 6);
    xmax = ceil(xmax / xstep - 1e-9) * xstep;
    double ymax = 0;
    for (size_t k = 0; k < c->n_series; k++)
        for (size_t i = 0; i < c->n; i++)
            if (isfinite(c->series[k].y[i]) && c->series[k].y[i] > ymax)
                ymax = c->series[k].y[i];
    double ystep;
    if (c->percent) {
        ymax = 1;
        ystep = 0.25;
    } else {
        if (!(ymax > 0) || ymax > 1e18)
            ymax = ymax > 1e18 ? 1e18 : 1;
        ystep = nice_step(ymax, 4);
        if (c->integer && ystep < 1)
            ystep = 1;
        ymax = ceil(ymax / ystep - 1e-9) * ystep;
    }
    int lrows = legend_rows(c->series, c->n_series, pw);
    double h = PLOT_T + PLOT_H + AXIS_H + lrows * LEGEND_ROW + 4;
    int rc = 0;
    rc |= sl__mput(b, "<svg class=\"chart line-chart\" id=\"");
    rc |= sl__mput_html(b, c->id);
    rc |= sl__mputf(b, "\" xmlns=\"http://www.w3.org/2000/svg\" "
                    "viewBox=\"0 0 %.0f %.0f\" role=\"img\">", CHART_W, h);
    /* grid and axes */
    rc |= sl__mput(b, "<g class=\"axis\">");
    /* ticks by count: a step too small for the value cannot loop */
    for (int k = 0; k <= 40 && k * ystep <= ymax * (1 + 1e-9); k++) {
        double v = k * ystep;
        double y = PLOT_T + PLOT_H - v / ymax * PLOT_H;
        char lab[32];
        if (c->percent)
            snprintf(lab, sizeof(lab), "%.0f%%", v * 100);
        else
            sl__svg_num(v, lab, sizeof(lab));
        rc |= sl__mputf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" "
                        "x2=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" "
                        "text-anchor=\"end\">%s</text>",
                        PLOT_L, y, PLOT_L + pw, y, PLOT_L - 6, y + 4, lab);
    }
    for (int k = 0; k <= 40 && k * xstep <= xmax * (1 + 1e-9); k++) {
        double v = k * xstep;
        double x = PLOT_L + v / xmax * pw;
        char lab[32];
        sl__svg_num(v, lab, sizeof(lab));
        rc |= sl__mputf(b, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" "
                        "x2=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" "
                        "text-anchor=\"middle\">%ss</text>",
                        x, PLOT_T + PLOT_H, x, PLOT_T + PLOT_H + 5, x,
                        PLOT_T + PLOT_H + 18, lab);
    }
    rc |= sl__mputf(b, "<line class=\"frame\" x1=\"%.1f\" y1=\"%.1f\" "
                    "x2=\"%.1f\" y2=\"%.1f\"/>",
                    PLOT_L, PLOT_T + PLOT_H, PLOT_L + pw, PLOT_T + PLOT_H);
    rc |= sl__mputf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                    "elapsed time</text>",
                    PLOT_L + pw / 2, PLOT_T + PLOT_H + 34);
    rc |= sl__mputf(b, "<text x=\"12\" y=\"%.1f\" text-anchor=\"middle\" "
                    "transform=\"rotate(-90 12 %.1f)\">",
                    PLOT_T + PLOT_H / 2, PLOT_T + PLOT_H / 2);
    rc |= sl__mput_html(b, c->y_unit);
    rc |= sl__mput(b, "</text></g>");
    /* one path per series, emphasised ones last so they are on top */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < c->n_series && rc == 0; k++) {
            const sl__svg_series *s = &c->series[k];
            if (s->emphasis != (pass == 1))
                continue;
            rc |= sl__mputf(b, "<path class=\"series%s\" data-stage=\"",
                            s->emphasis ? " hot" : "");
            rc |= sl__mput_html(b, s->name);
            rc |= sl__mputf(b, "\" fill=\"none\" stroke=\"%s\" "
                            "stroke-width=\"%s\"", sl__svg_color(s->color),
                            s->emphasis ? "3.5" : "1.8");
            if (sl__svg_dash(s->color)[0] != '\0')
                rc |= sl__mputf(b, " stroke-dasharray=\"%s\"",
                                sl__svg_dash(s->color));
            rc |= sl__mput(b, " d=\"");
            bool pen = false;
            for (size_t i = 0; i < c->n; i++) {
                double v = s->y[i];
                if (!isfinite(v)) {
                    pen = false;
                    continue;
                }
                double x = PLOT_L + clamp(c->x[i] / xmax, 0, 1) * pw;
                double y = PLOT_T + PLOT_H - clamp(v / ymax, 0, 1) * PLOT_H;
                rc |= sl__mputf(b, "%s%.1f %.1f", pen ? " L" : " M", x, y);
                pen = true;
            }
            rc |= sl__mput(b, "\"><title>");
            rc |= sl__mput_html(b, s->name);
            rc |= sl__mput(b, "</title></path>");
            /* a lone point draws no line: mark it */
            for (size_t i = 0; i < c->n && c->n == 1; i++) {
                if (!isfinite(s->y[i]))
                    continue;
                rc |= sl__mputf(b, "<circle class=\"point\" cx=\"%.1f\" "
                                "cy=\"%.1f\" r=\"4\" fill=\"%s\"/>",
                                PLOT_L + clamp(c->x[i] / xmax, 0, 1) * pw,
                                PLOT_T + PLOT_H -
                                    clamp(s->y[i] / ymax, 0, 1) * PLOT_H,
                                sl__svg_color(s->color));
            }
        }
    }
    if (rc == 0)
        rc = legend_write(b, c->series, c->n_series, PLOT_L,
                          PLOT_T + PLOT_H + AXIS_H, pw);
    rc |= sl__mput(b, "</svg>");
    return rc != 0 ? SL_ENOMEM : 0;
}

/* ------------------------------------------------------------------ */
/* Share bars                                                          */
/* ------------------------------------------------------------------ */

#define BAR_LABEL_W 170.0
#define BAR_ROW 26.0
#define BAR_H 18.0

/* Rows of BAR_ROW under a legend line; parts past 100% are cut at the end
 * of the bar. */
int sl__svg_share_bars_write(sl_buf *b, const char *id,
                             const sl__svg_bar_row *rows, size_t n,
                             const char *const part_names[3],
                             const char *const part_colors[3])
{
    double bw = CHART_W - BAR_LABEL_W - PLOT_R;
    double top = 26;
    double h = top + (double)n * BAR_ROW + 24;
    int rc = 0;
    rc |= sl__mput(b, "<svg class=\"chart share-chart\" id=\"");
    rc |= sl__mput_html(b, id);
    rc |= sl__mputf(b, "\" xmlns=\"http://www.w3.org/2000/svg\" "
                    "viewBox=\"0 0 %.0f %.0f\" role=\"img\">", CHART_W, h);
    /* legend */
    for (int k = 0; k < 3; k++)
        rc |= sl__mputf(b, "<rect x=\"%.1f\" y=\"4\" width=\"14\" "
                        "height=\"12\" fill=\"%s\"/><text x=\"%.1f\" "
                        "y=\"14\">%s</text>",
                        BAR_LABEL_W + k * 150.0, part_colors[k],
                        BAR_LABEL_W + k * 150.0 + 20, part_names[k]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sl__svg_bar_row *r = &rows[i];
        double y = top + (double)i * BAR_ROW;
        rc |= sl__mputf(b, "<g class=\"bar-row%s\" data-stage=\"",
                        r->emphasis ? " hot" : "");
        rc |= sl__mput_html(b, r->label);
        rc |= sl__mputf(b, "\"><text x=\"%.1f\" y=\"%.1f\" "
                        "text-anchor=\"end\"%s>",
                        BAR_LABEL_W - 8, y + 13,
                        r->emphasis ? " class=\"hot\"" : "");
        rc |= sl__mput_html_cut(b, r->label, 22);
        rc |= sl__mput(b, "</text>");
        rc |= sl__mputf(b, "<rect class=\"bar-bg\" x=\"%.1f\" y=\"%.1f\" "
                        "width=\"%.1f\" height=\"%.1f\"/>",
                        BAR_LABEL_W, y, bw, BAR_H);
        double x = BAR_LABEL_W;
        for (int k = 0; k < 3; k++) {
            double f = r->parts[k];
            if (!(f > 0))
                continue;
            if (f > 1)
                f = 1;
            double w = f * bw;
            if (x + w > BAR_LABEL_W + bw)
                w = BAR_LABEL_W + bw - x;
            rc |= sl__mputf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                            "height=\"%.1f\" fill=\"%s\"><title>",
                            x, y, w, BAR_H, part_colors[k]);
            rc |= sl__mput_html(b, r->label);
            rc |= sl__mputf(b, ": %s %.1f%%</title></rect>", part_names[k],
                            f * 100);
            if (w >= 40)
                rc |= sl__mputf(b, "<text class=\"in-bar\" x=\"%.1f\" "
                                "y=\"%.1f\" text-anchor=\"middle\">%.0f%%"
                                "</text>", x + w / 2, y + 13, f * 100);
            x += w;
        }
        rc |= sl__mput(b, "</g>");
    }
    for (int k = 0; k <= 4; k++) {
        double x = BAR_LABEL_W + bw * k / 4;
        rc |= sl__mputf(b, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" "
                        "text-anchor=\"middle\">%d%%</text>",
                        x, top + (double)n * BAR_ROW + 12, k * 25);
    }
    rc |= sl__mput(b, "</svg>");
    return rc != 0 ? SL_ENOMEM : 0;
}

/* ------------------------------------------------------------------ */
/* Latency quantiles                                                   */
/* ------------------------------------------------------------------ */

static const char *const q_names[4] = {"p50", "p90", "p99", "max"};
static const char *const q_colors[4] = {"#4e79a7", "#59a14f", "#f28e2b",
                                        "#e15759"};

/* The axis spans whole decades around every value, at most 12. */
int sl__svg_quantiles_write(sl_buf *b, const char *id,
                            const sl__svg_quantile_row *rows, size_t n)
{
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            double v = rows[i].q[k];
            if (v > 0 && isfinite(v)) {
                if (v < lo)
                    lo = v;
                if (v > hi)
                    hi = v;
            }
        }
    bool any = hi > 0;
    double d_lo = any ? floor(log10(lo)) : 0;
    double d_hi = any ? ceil(log10(hi)) : 1;
    if (d_hi <= d_lo)
        d_hi = d_lo + 1;
    if (d_lo < d_hi - 12)
        d_lo = d_hi - 12;   /* at most 12 decades; less is drawn at the left */
    double aw = CHART_W - BAR_LABEL_W - PLOT_R - 10;
    double top = 26;
    double h = top + (double)n * BAR_ROW + 24;
    int rc = 0;
    rc |= sl__mput(b, "<svg class=\"chart latency-chart\" id=\"");
    rc |= sl__mput_html(b, id);
    rc |= sl__mputf(b, "\" xmlns=\"http://www.w3.org/2000/svg\" "
                    "viewBox=\"0 0 %.0f %.0f\" role=\"img\">", CHART_W, h);
    for (int k = 0; k < 4; k++)
        rc |= sl__mputf(b, "<circle cx=\"%.1f\" cy=\"10\" r=\"5\" "
                        "fill=\"%s\"/><text x=\"%.1f\" y=\"14\">%s</text>",
                        BAR_LABEL_W + 6 + k * 90.0, q_colors[k],
                        BAR_LABEL_W + 16 + k * 90.0, q_names[k]);
    double axis_y = top + (double)n * BAR_ROW;
    for (double d = d_lo; d <= d_hi; d++) {
        double x = BAR_LABEL_W + 5 + (d - d_lo) / (d_hi - d_lo) * aw;
        char lab[32];
        sl__svg_duration_us(pow(10, d), lab, sizeof(lab));
        rc |= sl__mputf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" "
                        "x2=\"%.1f\" y2=\"%.1f\"/><text class=\"axis\" "
                        "x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s"
                        "</text>", x, top - 4, x, axis_y, x, axis_y + 12, lab);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sl__svg_quantile_row *r = &rows[i];
        double y = top + (double)i * BAR_ROW + BAR_H / 2;
        rc |= sl__mputf(b, "<g class=\"q-row%s\" data-stage=\"",
                        r->emphasis ? " hot" : "");
        rc |= sl__mput_html(b, r->label);
        rc |= sl__mputf(b, "\"><text x=\"%.1f\" y=\"%.1f\" "
                        "text-anchor=\"end\"%s>", BAR_LABEL_W - 8, y + 4,
                        r->emphasis ? " class=\"hot\"" : "");
        rc |= sl__mput_html_cut(b, r->label, 22);
        rc |= sl__mput(b, "</text>");
        double xs[4];
        bool has = false;
        for (int k = 0; k < 4; k++) {
            double v = r->q[k];
            xs[k] = -1;
            if (v > 0 && isfinite(v)) {
                xs[k] = BAR_LABEL_W + 5 +
                        clamp((log10(v) - d_lo) / (d_hi - d_lo), 0, 1) * aw;
                has = true;
            }
        }
        if (!has) {
            rc |= sl__mputf(b, "<text class=\"none\" x=\"%.1f\" y=\"%.1f\">"
                            "no latency recorded</text>",
                            BAR_LABEL_W + 8, y + 4);
        } else {
            double x0 = INFINITY, x1 = -1;
            for (int k = 0; k < 4; k++)
                if (xs[k] >= 0) {
                    x0 = xs[k] < x0 ? xs[k] : x0;
                    x1 = xs[k] > x1 ? xs[k] : x1;
                }
            rc |= sl__mputf(b, "<line class=\"range\" x1=\"%.1f\" y1=\"%.1f\" "
                            "x2=\"%.1f\" y2=\"%.1f\"/>", x0, y, x1, y);
            for (int k = 0; k < 4; k++) {
                if (xs[k] < 0)
                    continue;
                char v[32];
                sl__svg_duration_us(r->q[k], v, sizeof(v));
                rc |= sl__mputf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" "
                                "fill=\"%s\"><title>", xs[k], y, q_colors[k]);
                rc |= sl__mput_html(b, r->label);
                rc |= sl__mputf(b, " %s: %s</title></circle>", q_names[k], v);
            }
        }
        rc |= sl__mput(b, "</g>");
    }
    rc |= sl__mput(b, "</svg>");
    return rc != 0 ? SL_ENOMEM : 0;
}
