/*
 * The HTML run report without a run: escaping, reading history files
 * (runs, bad lines, unfinished lines), and the page drawn from them —
 * charts present, one series per stage, the bottleneck marked, empty and
 * one-line histories, merged windows for long ones.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/report.h"
#include "sluice/error.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static char *escaped(const char *s)
{
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl__mput_html(&b, s), 0);
    sl_buf_putc(&b, '\0');
    return b.data;
}

static char *escaped_cut(const char *s, size_t max)
{
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl__mput_html_cut(&b, s, max), 0);
    sl_buf_putc(&b, '\0');
    return b.data;
}

/*
 * One history line of a three-stage pipeline gen -> NAME -> store at
 * elapsed time t (seconds): gen emitted 100 t records, the middle stage
 * took them in busy all the time with its input full (the bottleneck),
 * store idle. Stage names are given so escaping can be tested.
 */
static void history_line(char *buf, size_t size, const char *status,
                         double t, const char *mid, uint64_t errors,
                         uint64_t retries)
{
    unsigned long long n = (unsigned long long)(t * 100);
    snprintf(buf, size,
             "{\"pipeline\":\"demo\",\"status\":\"%s\",\"elapsed_s\":%g,"
             "\"stages\":["
             "{\"name\":\"gen\",\"type\":\"generate\",\"kind\":\"source\","
             "\"workers\":1,\"inputs\":[],\"records_out\":%llu,"
             "\"active_s\":%g,\"blocked_send_s\":%g},"
             "{\"name\":\"%s\",\"type\":\"rate_limit\",\"kind\":\"transform\","
             "\"workers\":1,\"inputs\":[\"gen\"],\"records_in\":%llu,"
             "\"records_out\":%llu,\"errors\":%llu,\"retries\":%llu,"
             "\"queue_depth\":16,\"queue_capacity\":16,\"queue_max_depth\":16,"
             "\"queue_full_s\":%g,\"active_s\":%g,\"idle_recv_s\":0,"
             "\"latency_us\":{\"p50\":9000,\"p90\":9500,\"p99\":9900,"
             "\"max\":12000,\"count\":%llu}},"
             "{\"name\":\"store\",\"type\":\"null\",\"kind\":\"sink\","
             "\"workers\":1,\"inputs\":[\"%s\"],\"records_in\":%llu,"
             "\"records_out\":%llu,\"queue_depth\":0,\"queue_capacity\":1024,"
             "\"active_s\":%g,\"idle_recv_s\":%g,"
             "\"latency_us\":{\"p50\":3,\"p90\":4,\"p99\":5,\"max\":9,"
             "\"count\":%llu}}]}\n",
             status, t, n, t, t * 0.9, mid, n, n, (unsigned long long)errors,
             (unsigned long long)retries, t * 0.9, t, n, mid, n, n, t,
             t * 0.95, n);
}

/* A history of `lines` snapshots, one every 0.5 s, the last one final. */
static char *history_text(size_t lines, const char *mid)
{
    size_t cap = lines * 2048 + 1;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    size_t len = 0;
    for (size_t i = 0; i < lines; i++) {
        history_line(text + len, cap - len,
                     i + 1 == lines ? "succeeded" : "running",
                     0.5 * (double)(i + 1), mid, i, i / 2);
        len += strlen(text + len);
    }
    return text;
}

static int read_text(const char *text, size_t run, sl__history *h,
                     size_t *line, char *err, size_t err_size)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    cr_assert_not_null(f);
    int rc = sl__history_read(f, run, h, line, err, err_size);
    fclose(f);
    return rc;
}

static char *page_of(const char *text, size_t max_points)
{
    sl__history h;
    size_t line = 0;
    char err[256] = "";
    int rc = read_text(text, 0, &h, &line, err, sizeof(err));
    cr_assert_eq(rc, 0, "read: %d line %zu: %s", rc, line, err);
    sl_buf b;
    sl_buf_init(&b);
    sl__report_opts o = {.source = "out/h.jsonl", .max_points = max_points};
    cr_assert_eq(sl__report_html(&h, &o, &b), 0);
    sl_buf_putc(&b, '\0');
    sl__history_fini(&h);
    return b.data;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL;
         p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The text of the <svg id="ID"> element. Caller frees. */
static char *svg_of(const char *page, const char *id)
{
    char key[64];
    snprintf(key, sizeof(key), "id=\"%s\"", id);
    const char *at = strstr(page, key);
    cr_assert_not_null(at, "no chart %s", id);
    const char *start = at;
    while (start > page && strncmp(start, "<svg", 4) != 0)
        start--;
    const char *end = strstr(at, "</svg>");
    cr_assert_not_null(end);
    return strndup(start, (size_t)(end - start) + 6);
}

/* ------------------------------------------------------------------ */
/* Escaping                                                            */
/* ------------------------------------------------------------------ */

Test(report_escape, markup_and_quotes)
{
    char *s = escaped("<script>alert('x' & \"y\")</script>");
    cr_assert_str_eq(s, "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)"
                        "&lt;/script&gt;");
    free(s);
}

Test(report_escape, control_characters_replaced)
{
    char *s = escaped("a\x01" "b\x7f" "c\td\ne");
    cr_assert_str_eq(s, "a&#xFFFD;b&#xFFFD;c\td\ne");
    free(s);
}

Test(report_escape, utf8_kept_and_cut_whole)
{
    char *s = escaped("caf\xc3\xa9 \xe2\x86\x92 db");
    cr_assert_str_eq(s, "caf\xc3\xa9 \xe2\x86\x92 db");
    free(s);
    s = escaped_cut("caf\xc3\xa9\xc3\xa9\xc3\xa9", 4);
    cr_assert_str_eq(s, "caf\xc3\xa9\xe2\x80\xa6");
    free(s);
    s = escaped_cut("abc", 3);
    cr_assert_str_eq(s, "abc");
    free(s);
    s = escaped(NULL);
    cr_assert_str_eq(s, "");
    free(s);
}

/* ------------------------------------------------------------------ */
/* Reading histories                                                   */
/* ------------------------------------------------------------------ */

Test(report_history, series_and_interval_bottleneck)
{
    char *text = history_text(4, "slow");
    sl__history h;
    size_t line = 0;
    char err[256];
    cr_assert_eq(read_text(text, 0, &h, &line, err, sizeof(err)), 0);
    cr_assert_eq(h.n_points, 4);
    cr_assert_eq(h.n_stages, 3);
    cr_assert_eq(h.n_runs, 1);
    cr_assert_eq(h.first_line, 1);
    cr_assert_eq(h.line[3], 4);
    cr_assert_float_eq(h.t[1], 1.0, 1e-9);
    cr_assert_eq(SL__HIST_AT(&h, work, 1, 0), 100);   /* gen: records_out */
    cr_assert_eq(SL__HIST_AT(&h, work, 1, 1), 100);   /* slow: records_in */
    cr_assert_eq(SL__HIST_AT(&h, errors, 3, 1), 3);
    cr_assert_eq(SL__HIST_AT(&h, retries, 3, 1), 1);
    cr_assert_float_eq(SL__HIST_AT(&h, queue_fill, 2, 1), 1.0, 1e-9);
    cr_assert_float_eq(SL__HIST_AT(&h, queue_fill, 2, 0), -1.0, 1e-9);
    /* windows of 1 s or more: 0-1 s, then 1-2 s (closed by the final) */
    cr_assert_eq(h.bottleneck[0], SL__REPORT_NO_WINDOW);
    cr_assert_eq(h.bottleneck[1], 1);
    cr_assert_eq(h.bottleneck[2], SL__REPORT_NO_WINDOW);
    cr_assert_eq(h.bottleneck[3], 1);
    cr_assert_str_eq(h.last.stages[1].name, "slow");
    cr_assert_eq(h.last.status, SL__RUN_SUCCEEDED);
    sl__history_fini(&h);
    free(text);
}

Test(report_history, empty_and_blank_files)
{
    sl__history h;
    size_t line = 99;
    char err[256] = "";
    cr_assert_eq(read_text("", 0, &h, &line, err, sizeof(err)), SL_EPARSE);
    cr_assert_eq(line, 0);
    cr_assert_str_eq(err, "no snapshots (an empty history)");
    cr_assert_eq(read_text("\n  \n\n", 0, &h, &line, err, sizeof(err)),
                 SL_EPARSE);
    cr_assert_eq(line, 0);
}

Test(report_history, bad_line_named)
{
    char *good = history_text(1, "slow");
    size_t cap = strlen(good) * 2 + 64;
    char *text = malloc(cap);
    snprintf(text, cap, "%s\n{\"pipeline\": oops}\n%s", good, good);
    sl__history h;
    size_t line = 0;
    char err[256] = "";
    cr_assert_eq(read_text(text, 0, &h, &line, err, sizeof(err)), SL_EPARSE);
    cr_assert_eq(line, 3);   /* the blank line 2 counts */
    cr_assert(strncmp(err, "not JSON: ", 10) == 0, "%s", err);
    snprintf(text, cap, "[1,2]\n");
    cr_assert_eq(read_text(text, 0, &h, &line, err, sizeof(err)), SL_EPARSE);
    cr_assert_eq(line, 1);
    cr_assert_str_eq(err, "not a metrics snapshot: a JSON array, not an "
                          "object");
    free(text);
    free(good);
}

Test(report_history, unfinished_last_line_left_out)
{
    char *text = history_text(3, "slow");
    size_t len = strlen(text);
    text[len - 40] = '\0';   /* cut the last line short, no newline */
    sl__history h;
    size_t line = 0;
    char err[256];
    cr_assert_eq(read_text(text, 0, &h, &line, err, sizeof(err)), 0);
    cr_assert(h.skipped_partial);
    cr_assert_eq(h.n_points, 2);
    cr_assert_eq(h.last.status, SL__RUN_RUNNING);
    cr_assert_eq(h.bottleneck[1], 1);
    sl__history_fini(&h);
    /* ending while running, mid-window: the last stretch is closed too */
    char *two = history_text(5, "slow");
    char *cut = two;
    for (int k = 0; k < 3; k++)
        cut = strchr(cut, '\n') + 1;
    cut[100] = '\0';      /* lines 1-3 (0.5 s to 1.5 s), then part of 4 */
    cr_assert_eq(read_text(two, 0, &h, &line, err, sizeof(err)), 0);
    cr_assert(h.skipped_partial);
    cr_assert_eq(h.n_points, 3);
    cr_assert_eq(h.bottleneck[0], SL__REPORT_NO_WINDOW);
    cr_assert_eq(h.bottleneck[1], 1);
    cr_assert_eq(h.bottleneck[2], 1);
    free(two);
    sl__history_fini(&h);
    free(text);
}

Test(report_history, runs_split_and_chosen)
{
    char *a = history_text(3, "slow");
    char *b = history_text(2, "other");
    char *c = history_text(2, "slow");
    size_t cap = strlen(a) + strlen(b) + strlen(c) + 1;
    char *text = malloc(cap);
    snprintf(text, cap, "%s%s%s", a, b, c);
    sl__history h;
    size_t line = 0;
    char err[256];
    cr_assert_eq(read_text(text, 0, &h, &line, err, sizeof(err)), 0);
    cr_assert_eq(h.n_runs, 3);
    cr_assert_eq(h.run, 3);
    cr_assert_eq(h.n_points, 2);
    cr_assert_eq(h.first_line, 6);
    sl__history_fini(&h);
    cr_assert_eq(read_text(text, 2, &h, &line, err, sizeof(err)), 0);
    cr_assert_eq(h.run, 2);
    cr_assert_eq(h.n_points, 2);
    cr_assert_eq(h.first_line, 4);
    cr_assert_str_eq(h.last.stages[1].name, "other");
    sl__history_fini(&h);
    cr_assert_eq(read_text(text, 1, &h, &line, err, sizeof(err)), 0);
    cr_assert_eq(h.n_points, 3);
    cr_assert_eq(h.last.status, SL__RUN_SUCCEEDED);
    sl__history_fini(&h);
    cr_assert_eq(read_text(text, 4, &h, &line, err, sizeof(err)), SL_EPARSE);
    cr_assert_eq(line, 0);
    cr_assert_str_eq(err, "holds 3 runs, not 4");
    free(text);
    free(a);
    free(b);
    free(c);
}

/* ------------------------------------------------------------------ */
/* The page                                                            */
/* ------------------------------------------------------------------ */

Test(report_html, self_contained_with_every_chart)
{
    char *text = history_text(6, "slow");
    char *page = page_of(text, 0);
    cr_assert(strncmp(page, "<!DOCTYPE html>", 15) == 0);
    cr_assert_not_null(strstr(page, "</html>\n"));
    for (const char *const *id = (const char *const[]){
             "stage-graph", "throughput", "queue-fill", "time-use", "latency",
             "errors", "retries", NULL};
         *id != NULL; id++) {
        char *svg = svg_of(page, *id);
        free(svg);
    }
    /* nothing fetched, nothing run */
    cr_assert_null(strstr(page, "<script"));
    cr_assert_null(strstr(page, "src="));
    cr_assert_null(strstr(page, "href="));
    cr_assert_null(strstr(page, "@import"));
    cr_assert_null(strstr(page, "url(http"));
    free(page);
    free(text);
}

Test(report_html, one_series_per_stage)
{
    char *text = history_text(6, "slow");
    char *page = page_of(text, 0);
    char *svg = svg_of(page, "throughput");
    cr_assert_eq(count(svg, "class=\"series"), 3);
    cr_assert_eq(count(svg, "data-stage=\"gen\""), 1);
    cr_assert_eq(count(svg, "data-stage=\"slow\""), 1);
    cr_assert_eq(count(svg, "data-stage=\"store\""), 1);
    /* every snapshot is a point: 6 per line */
    const char *d = strstr(strstr(svg, "data-stage=\"gen\""), " d=\"");
    char *path = strndup(d, (size_t)(strchr(d + 4, '"') - d));
    cr_assert_eq(count(path, " L"), 5);
    free(path);
    free(svg);
    /* queue fill: the two stages with an input queue */
    svg = svg_of(page, "queue-fill");
    cr_assert_eq(count(svg, "class=\"series"), 2);
    cr_assert_eq(count(svg, "data-stage=\"gen\""), 0);
    free(svg);
    /* errors and retries: only the stage that has them */
    svg = svg_of(page, "errors");
    cr_assert_eq(count(svg, "class=\"series"), 1);
    cr_assert_eq(count(svg, "data-stage=\"slow\""), 1);
    free(svg);
    svg = svg_of(page, "time-use");
    cr_assert_eq(count(svg, "class=\"bar-row"), 3);
    free(svg);
    svg = svg_of(page, "latency");
    cr_assert_eq(count(svg, "class=\"q-row"), 2);   /* not the source */
    free(svg);
    free(page);
    free(text);
}

Test(report_html, bottleneck_highlighted)
{
    char *text = history_text(4, "slow");
    char *page = page_of(text, 0);
    char *graph = svg_of(page, "stage-graph");
    cr_assert_eq(count(graph, "class=\"node hot\""), 1);
    cr_assert_not_null(strstr(graph, "class=\"node hot\" data-stage=\"slow\""));
    cr_assert_eq(count(graph, "class=\"edge\""), 2);
    cr_assert_not_null(strstr(graph, "data-from=\"gen\" data-to=\"slow\""));
    free(graph);
    cr_assert_not_null(strstr(page, "<div class=\"callout hot\" "
                                    "id=\"bottleneck\">bottleneck: slow "
                                    "(rate_limit): busy "));
    cr_assert_not_null(strstr(page, "<tr class=\"hot\" data-stage=\"slow\">"));
    char *svg = svg_of(page, "throughput");
    cr_assert_not_null(strstr(svg, "class=\"series hot\" data-stage=\"slow\""));
    cr_assert_not_null(strstr(svg, "slow (bottleneck)"));
    free(svg);
    cr_assert_not_null(strstr(page, "<li>slow: 100% of the time</li>"));
    free(page);
    free(text);
}

Test(report_html, stage_names_escaped_everywhere)
{
    const char *evil = "<img src=x onerror=alert(1)>&\\\"'";
    /* as JSON inside the history line */
    const char *json_evil = "<img src=x onerror=alert(1)>&\\\\\\\"'";
    char *text = history_text(3, json_evil);
    char *page = page_of(text, 0);
    cr_assert_null(strstr(page, "<img"));
    cr_assert_null(strstr(page, "onerror=alert(1)>"));
    char *esc = escaped(evil);
    cr_assert_str_eq(esc, "&lt;img src=x onerror=alert(1)&gt;&amp;\\&quot;"
                          "&#39;");
    /* table, graph node, series, bars, latency rows, legend (cut) */
    cr_assert_geq(count(page, esc), 6, "escaped name %zu times",
                  count(page, esc));
    free(esc);
    free(page);
    free(text);
}

Test(report_html, empty_history_page)
{
    sl__history h;
    memset(&h, 0, sizeof(h));
    sl_buf b;
    sl_buf_init(&b);
    sl__report_opts o = {.source = "out/<empty>.jsonl"};
    cr_assert_eq(sl__report_html(&h, &o, &b), 0);
    sl_buf_putc(&b, '\0');
    cr_assert_not_null(strstr(b.data, "id=\"empty\""));
    cr_assert_not_null(strstr(b.data, "out/&lt;empty&gt;.jsonl"));
    cr_assert_null(strstr(b.data, "<svg"));
    cr_assert_not_null(strstr(b.data, "</html>"));
    sl_buf_fini(&b);
}

Test(report_html, one_line_history)
{
    char *text = history_text(1, "slow");
    char *page = page_of(text, 0);
    char *svg = svg_of(page, "throughput");
    cr_assert_eq(count(svg, "class=\"series"), 3);
    cr_assert_eq(count(svg, "<circle class=\"point\""), 3);
    free(svg);
    cr_assert_not_null(strstr(page, "1 snapshot &middot;"));
    cr_assert_not_null(strstr(page, "too short to compare"));
    /* no errors in a one-line history of this pipeline */
    cr_assert_not_null(strstr(page, "id=\"no-errors\""));
    cr_assert_not_null(strstr(page, "id=\"no-retries\""));
    free(page);
    free(text);
}

Test(report_html, long_history_merged_into_windows)
{
    char *text = history_text(100, "slow");
    char *page = page_of(text, 10);
    char *svg = svg_of(page, "throughput");
    const char *d = strstr(strstr(svg, "data-stage=\"gen\""), " d=\"");
    char *path = strndup(d, (size_t)(strchr(d + 4, '"') - d));
    cr_assert_eq(count(path, " M"), 1);
    cr_assert_eq(count(path, " L"), 9);
    free(path);
    free(svg);
    free(page);
    free(text);
}

Test(report_graph, columns_by_depth_and_merge)
{
    /* a, b -> m (merge) -> out; a also -> side (tee) */
    const char *line =
        "{\"pipeline\":\"g\",\"status\":\"succeeded\",\"elapsed_s\":1,"
        "\"stages\":["
        "{\"name\":\"a\",\"type\":\"generate\",\"kind\":\"source\"},"
        "{\"name\":\"b\",\"type\":\"generate\",\"kind\":\"source\"},"
        "{\"name\":\"m\",\"type\":\"map\",\"inputs\":[\"a\",\"b\"]},"
        "{\"name\":\"out\",\"type\":\"null\",\"inputs\":[\"m\"]},"
        "{\"name\":\"side\",\"type\":\"null\",\"inputs\":[\"a\"]}]}\n";
    sl__history h;
    size_t l = 0;
    char err[256];
    cr_assert_eq(read_text(line, 0, &h, &l, err, sizeof(err)), 0, "%s", err);
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl__report_graph_write(&b, &h.last, -1), 0);
    sl_buf_putc(&b, '\0');
    cr_assert_eq(count(b.data, "class=\"edge\""), 4);
    cr_assert_eq(count(b.data, "class=\"node\""), 5);
    cr_assert_eq(count(b.data, "hot"), 0);
    /* three columns: sources at x 24, m and side at 214, out at 404 */
    cr_assert_not_null(strstr(b.data, "data-stage=\"out\"><title>out (null, "
                                      "1 worker): 0 in, 0 out</title><rect "
                                      "x=\"404.0\""));
    cr_assert_not_null(strstr(b.data, "data-stage=\"side\"><title>side (null, "
                                      "1 worker): 0 in, 0 out</title><rect "
                                      "x=\"214.0\""));
    sl_buf_fini(&b);
    sl__history_fini(&h);
}

Test(report_svg, numbers_and_durations)
{
    char t[32];
    sl__svg_num(0, t, sizeof(t));
    cr_assert_str_eq(t, "0");
    sl__svg_num(0.25, t, sizeof(t));
    cr_assert_str_eq(t, "0.25");
    sl__svg_num(12345, t, sizeof(t));
    cr_assert_str_eq(t, "12.3k");
    sl__svg_num(2.5e6, t, sizeof(t));
    cr_assert_str_eq(t, "2.5M");
    sl__svg_duration_us(0.5, t, sizeof(t));
    cr_assert_str_eq(t, "500ns");
    sl__svg_duration_us(3.5, t, sizeof(t));
    cr_assert_str_eq(t, "3.5\xc2\xb5s");
    sl__svg_duration_us(12000, t, sizeof(t));
    cr_assert_str_eq(t, "12ms");
    sl__svg_duration_us(1.5e6, t, sizeof(t));
    cr_assert_str_eq(t, "1.5s");
    cr_assert_str_eq(sl__svg_dash(3), "");
    cr_assert_str_neq(sl__svg_dash(12), "");
    cr_assert_str_eq(sl__svg_color(1), sl__svg_color(11));
}

Test(report_html, hostile_numbers_stay_bounded)
{
    /* a first snapshot a hair after the start (a rate of 1e302/s), a huge
     * elapsed time and latencies over 30 decades */
    const char *text =
        "{\"pipeline\":\"p\",\"status\":\"running\",\"elapsed_s\":1e-300,"
        "\"stages\":[{\"name\":\"g\",\"kind\":\"source\",\"records_out\":100},"
        "{\"name\":\"t\",\"inputs\":[\"g\"],\"records_in\":100,"
        "\"latency_us\":{\"p50\":1e-20,\"p99\":1e10}}]}\n"
        "{\"pipeline\":\"p\",\"status\":\"failed\",\"elapsed_s\":1e200,"
        "\"cause\":\"stage t: <bad> & worse\","
        "\"stages\":[{\"name\":\"g\",\"kind\":\"source\",\"records_out\":200},"
        "{\"name\":\"t\",\"inputs\":[\"g\"],\"records_in\":200,"
        "\"latency_us\":{\"p50\":1e-20,\"p99\":1e10}}]}\n";
    char *page = page_of(text, 0);
    cr_assert_not_null(strstr(page, "<b>failed</b> after"));
    cr_assert_not_null(strstr(page, "id=\"cause\">cause: stage t: &lt;bad&gt; "
                                    "&amp; worse</p>"));
    char *svg = svg_of(page, "throughput");
    cr_assert_lt(count(svg, "class=\"grid\""), 42);
    cr_assert_lt(count(svg, "class=\"tick\""), 42);
    free(svg);
    svg = svg_of(page, "latency");
    cr_assert_leq(count(svg, "class=\"grid\""), 13);
    free(svg);
    free(page);
}

Test(report_history, counts_past_2_64_saturate)
{
    const char *text =
        "{\"pipeline\":\"p\",\"status\":\"succeeded\",\"elapsed_s\":1,"
        "\"stages\":[{\"name\":\"g\",\"kind\":\"source\",\"records_out\":1e30,"
        "\"errors\":-5}]}\n";
    sl__history h;
    size_t line = 0;
    char err[256];
    cr_assert_eq(read_text(text, 0, &h, &line, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(h.last.stages[0].records_out, UINT64_MAX);
    cr_assert_eq(SL__HIST_AT(&h, work, 0, 0), UINT64_MAX);
    cr_assert_eq(h.last.stages[0].errors, 0);
    sl__history_fini(&h);
}
