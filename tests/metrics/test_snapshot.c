/*
 * Snapshots without a run: JSON out and back, reading errors, the
 * Prometheus text, /health, the bottleneck rule and the report tables, on
 * snapshots built by hand.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/snapshot.h"
#include "sluice/error.h"

static size_t inputs_store[8];

/* gen -> slow -> store, over 10 s: gen blocked 9 s on slow's full queue,
 * slow busy 9.5 s, store idle 9.8 s. */
static void three_stages(sl__run_snapshot *s, sl__stage_snapshot st[3])
{
    memset(s, 0, sizeof(*s));
    memset(st, 0, 3 * sizeof(*st));
    s->pipeline = "demo \"p\"";
    s->status = SL__RUN_SUCCEEDED;
    s->elapsed_s = 10;
    s->cause = "";
    s->n_stages = 3;
    s->stages = st;
    inputs_store[0] = 0;
    inputs_store[1] = 1;
    st[0] = (sl__stage_snapshot){.name = "gen", .type = "generate",
                                 .kind = SL_STAGE_SOURCE, .state = "done",
                                 .workers = 1, .active_s = 10, .records_out = 1000,
                                 .blocked_send_s = 9.0, .throughput_rps = 100};
    st[1] = (sl__stage_snapshot){.name = "slow", .type = "rate_limit",
                                 .kind = SL_STAGE_TRANSFORM, .state = "done",
                                 .workers = 1, .active_s = 10, .n_inputs = 1,
                                 .inputs = &inputs_store[0],
                                 .records_in = 1000, .records_out = 1000,
                                 .queue_capacity = 16, .queue_max_depth = 16,
                                 .queue_full_s = 9.0, .blocked_send_s = 0.1,
                                 .idle_recv_s = 0.4, .latency_p50_us = 9000,
                                 .latency_p90_us = 9500, .latency_p99_us = 9900,
                                 .latency_max_us = 12000, .latency_count = 1000,
                                 .latency_sum_s = 9.5, .throughput_rps = 100};
    st[2] = (sl__stage_snapshot){.name = "store", .type = "null",
                                 .kind = SL_STAGE_SINK, .state = "done",
                                 .workers = 1, .active_s = 10, .n_inputs = 1,
                                 .inputs = &inputs_store[1],
                                 .records_in = 1000, .records_out = 990,
                                 .errors = 4, .dropped = 6,
                                 .queue_capacity = 1024, .idle_recv_s = 9.8,
                                 .latency_count = 1000, .throughput_rps = 100,
                                 .has_breaker = true, .breaker_state = "open",
                                 .breaker_opens = 2, .breaker_rejections = 7};
}

static char *to_json(const sl__run_snapshot *s)
{
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl__run_snapshot_json(s, &b), 0);
    cr_assert_eq(sl_buf_putc(&b, '\0'), 0);
    return b.data;   /* the buffer's memory, freed by the caller */
}

Test(snapshot, json_round_trip)
{
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    s.cause = "stage x: \"bad\"\n";
    char *text = to_json(&s);
    sl__run_snapshot r;
    char err[128] = "";
    cr_assert_eq(sl__run_snapshot_read(text, strlen(text), &r, err,
                                       sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(r.pipeline, "demo \"p\"");
    cr_expect_eq(r.status, SL__RUN_SUCCEEDED);
    cr_expect_str_eq(r.cause, "stage x: \"bad\"\n");
    cr_expect_eq(r.elapsed_s, 10);
    cr_assert_eq(r.n_stages, 3);
    cr_expect_eq(r.stages[0].kind, SL_STAGE_SOURCE);
    cr_expect_eq(r.stages[2].kind, SL_STAGE_SINK);
    cr_expect_str_eq(r.stages[1].type, "rate_limit");
    cr_expect_str_eq(r.stages[1].state, "done");
    cr_expect_eq(r.stages[1].n_inputs, 1);
    cr_expect_eq(r.stages[1].inputs[0], 0);
    cr_expect_eq(r.stages[2].inputs[0], 1);
    cr_expect_eq(r.stages[2].errors, 4);
    cr_expect_eq(r.stages[2].dropped, 6);
    cr_expect_eq(r.stages[1].queue_capacity, 16);
    cr_expect_eq(r.stages[1].queue_full_s, 9.0);
    cr_expect_eq(r.stages[1].latency_p99_us, 9900);
    cr_expect_eq(r.stages[1].latency_count, 1000);
    cr_expect(r.stages[2].has_breaker);
    cr_expect_str_eq(r.stages[2].breaker_state, "open");
    cr_expect_eq(r.stages[2].breaker_rejections, 7);
    cr_expect_not(r.stages[1].has_breaker);

    /* and out again: the same text */
    char *again = to_json(&r);
    cr_expect_str_eq(again, text);
    free(again);
    free(text);
    sl__run_snapshot_fini(&r);
    sl__run_snapshot_fini(&r);   /* twice is fine */
}

static int read_err(const char *text, char *err, size_t size)
{
    sl__run_snapshot r;
    memset(&r, 0xab, sizeof(r));
    int rc = sl__run_snapshot_read(text, strlen(text), &r, err, size);
    if (rc == 0)
        sl__run_snapshot_fini(&r);
    return rc;
}

Test(snapshot, read_errors)
{
    char err[160];
    cr_expect_eq(read_err("{\"stages\": [", err, sizeof(err)), SL_EPARSE);
    cr_expect(strncmp(err, "not JSON: ", 10) == 0, "%s", err);
    cr_expect_eq(read_err("[1,2]", err, sizeof(err)), SL_EPARSE);
    cr_expect_str_eq(err, "not a metrics snapshot: a JSON array, not an object");
    cr_expect_eq(read_err("{\"pipeline\":\"x\"}", err, sizeof(err)), SL_EPARSE);
    cr_expect_str_eq(err, "not a metrics snapshot: no \"stages\" list");
    cr_expect_eq(read_err("{\"status\":\"sleeping\",\"stages\":[]}", err,
                          sizeof(err)), SL_EPARSE);
    cr_expect_str_eq(err, "unknown status \"sleeping\"");
    cr_expect_eq(read_err("{\"stages\":[{\"type\":\"x\"}]}", err, sizeof(err)),
                 SL_EPARSE);
    cr_expect_str_eq(err, "stage 1: no name");
    cr_expect_eq(read_err("{\"stages\":[3]}", err, sizeof(err)), SL_EPARSE);
    cr_expect_str_eq(err, "stage 1: not an object");
    cr_expect_eq(read_err("{\"stages\":[{\"name\":\"a\",\"inputs\":[\"b\"]}]}",
                          err, sizeof(err)), SL_EPARSE);
    cr_expect_str_eq(err, "stage a: input \"b\" is not a stage of the snapshot");
    /* the minimum: names only, everything else reads as zero */
    cr_expect_eq(read_err("{\"stages\":[{\"name\":\"a\"}]}", err, sizeof(err)), 0);
}

/* ------------------------------------------------------------------ */

static char *prometheus(const sl__run_snapshot *s)
{
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl__metrics_prometheus(s, &b), 0);
    cr_assert_eq(sl_buf_putc(&b, '\0'), 0);
    return b.data;
}

/* Numbers outside what a live run produces (a hand-edited or damaged
 * file): counts saturate at INT64_MAX, and what is read writes out again
 * as JSON that reads back (found by tests/fuzz/fuzz_snapshot). */
Test(snapshot, out_of_range_numbers_read_and_write_back)
{
    const char *text =
        "{\"elapsed_s\":1e300,\"stages\":[{\"name\":\"a\","
        "\"records_out\":1e30,\"records_in\":-3,\"errors\":2.5,"
        "\"bytes_in\":18446744073709551615.0,\"idle_recv_s\":1e20}]}";
    sl__run_snapshot r;
    char err[160] = "";
    cr_assert_eq(sl__run_snapshot_read(text, strlen(text), &r, err,
                                       sizeof(err)), 0, "%s", err);
    cr_expect_eq(r.stages[0].records_out, (uint64_t)INT64_MAX);
    cr_expect_eq(r.stages[0].bytes_in, (uint64_t)INT64_MAX);
    cr_expect_eq(r.stages[0].records_in, 0);
    cr_expect_eq(r.stages[0].errors, 2);
    char *json = to_json(&r);
    cr_expect(strstr(json, "\"records_out\":9223372036854775807,") != NULL,
              "%s", json);
    cr_expect(strstr(json, "\"idle_recv_s\":1e+20,") != NULL, "%s", json);
    sl__run_snapshot back;
    cr_assert_eq(sl__run_snapshot_read(json, strlen(json), &back, err,
                                       sizeof(err)), 0, "%s: %s", err, json);
    cr_expect_eq(back.stages[0].records_out, (uint64_t)INT64_MAX);
    cr_expect_eq(back.stages[0].idle_recv_s, 1e20);
    sl__run_snapshot_fini(&back);
    free(json);

    /* Prometheus: no cast of an out-of-range double; its own spellings */
    r.stages[0].blocked_send_s = 1.0 / 0.0;
    char *t = prometheus(&r);
    cr_expect(strstr(t, "sluice_pipeline_elapsed_seconds{pipeline=\"pipeline\"} 1e+300\n") != NULL, "%s", t);
    cr_expect(strstr(t, "sluice_stage_blocked_send_seconds_total{pipeline=\"pipeline\",stage=\"a\"} +Inf\n") != NULL, "%s", t);
    cr_expect(strstr(t, "sluice_stage_records_out_total{pipeline=\"pipeline\",stage=\"a\"} 9.22337204e+18\n") != NULL, "%s", t);
    free(t);
    sl__run_snapshot_fini(&r);
}

Test(snapshot, prometheus_text)
{
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    st[1].has_buckets = true;
    for (int k = 0; k < SL__LAT_LE_N; k++)
        st[1].latency_le[k] = k < 20 ? 0 : 1000;   /* all at ~4-8 ms */
    char *t = prometheus(&s);
    const char *want[] = {
        "# TYPE sluice_stage_records_in_total counter\n",
        "sluice_stage_records_in_total{pipeline=\"demo \\\"p\\\"\",stage=\"slow\"} 1000\n",
        "sluice_stage_dropped_total{pipeline=\"demo \\\"p\\\"\",stage=\"store\"} 6\n",
        "sluice_stage_blocked_send_seconds_total{pipeline=\"demo \\\"p\\\"\",stage=\"gen\"} 9\n",
        "sluice_stage_queue_capacity{pipeline=\"demo \\\"p\\\"\",stage=\"slow\"} 16\n",
        "sluice_pipeline_status{pipeline=\"demo \\\"p\\\"\",status=\"succeeded\"} 1\n",
        "sluice_pipeline_status{pipeline=\"demo \\\"p\\\"\",status=\"running\"} 0\n",
        "sluice_stage_state{pipeline=\"demo \\\"p\\\"\",stage=\"gen\",state=\"done\"} 1\n",
        "sluice_stage_circuit_breaker_state{pipeline=\"demo \\\"p\\\"\",stage=\"store\",state=\"open\"} 1\n",
        "sluice_stage_circuit_breaker_opens_total{pipeline=\"demo \\\"p\\\"\",stage=\"store\"} 2\n",
        "# TYPE sluice_stage_latency_seconds histogram\n",
        "sluice_stage_latency_seconds_bucket{pipeline=\"demo \\\"p\\\"\",stage=\"slow\",le=\"1.27e-07\"} 0\n",
        "sluice_stage_latency_seconds_bucket{pipeline=\"demo \\\"p\\\"\",stage=\"slow\",le=\"0.134217727\"} 1000\n",
        "sluice_stage_latency_seconds_bucket{pipeline=\"demo \\\"p\\\"\",stage=\"slow\",le=\"+Inf\"} 1000\n",
        "sluice_stage_latency_seconds_sum{pipeline=\"demo \\\"p\\\"\",stage=\"slow\"} 9.5\n",
        "sluice_stage_latency_seconds_count{pipeline=\"demo \\\"p\\\"\",stage=\"slow\"} 1000\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect(strstr(t, want[i]) != NULL, "missing: %s", want[i]);
    /* sources have no input queue and no latency */
    cr_expect(strstr(t, "sluice_stage_queue_depth{pipeline=\"demo \\\"p\\\"\",stage=\"gen\"}") == NULL);
    cr_expect(strstr(t, "sluice_stage_latency_seconds_count{pipeline=\"demo \\\"p\\\"\",stage=\"gen\"}") == NULL);
    /* every family has its HELP right before its TYPE */
    for (const char *p = strstr(t, "# TYPE "); p != NULL; p = strstr(p + 1, "# TYPE ")) {
        const char *line = p - 1;
        while (line > t && line[-1] != '\n')
            line--;
        cr_expect(strncmp(line, "# HELP ", 7) == 0, "no HELP before %.60s", p);
    }
    free(t);
}

Test(snapshot, health)
{
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    int code = 0;
    sl_buf b;
    sl_buf_init(&b);

    s.status = SL__RUN_RUNNING;
    st[2].breaker_state = "closed";
    cr_assert_eq(sl__metrics_health_json(&s, &b, &code), 0);
    cr_expect_eq(code, 200);
    cr_expect_not(sl__metrics_degraded(&s));
    cr_assert_eq(sl_buf_putc(&b, '\0'), 0);
    cr_expect_str_eq(b.data,
        "{\"pipeline\":\"demo \\\"p\\\"\",\"status\":\"running\",\"elapsed_s\":10,"
        "\"stages\":[{\"name\":\"gen\",\"state\":\"done\",\"degraded\":false},"
        "{\"name\":\"slow\",\"state\":\"done\",\"degraded\":false},"
        "{\"name\":\"store\",\"state\":\"done\",\"breaker\":\"closed\","
        "\"degraded\":false}]}");

    sl_buf_reset(&b);
    st[2].breaker_state = "half_open";
    cr_assert_eq(sl__metrics_health_json(&s, &b, &code), 0);
    cr_expect_eq(code, 200, "degraded still answers 200");
    cr_expect(strstr(b.data, "\"status\":\"degraded\"") != NULL);

    sl_buf_reset(&b);
    st[2].breaker_state = "closed";
    st[1].state = "stalled";
    cr_expect(sl__metrics_degraded(&s));
    st[1].state = "running";
    s.stopping = true;
    cr_assert_eq(sl__metrics_health_json(&s, &b, &code), 0);
    cr_expect_eq(code, 503);
    cr_expect(strstr(b.data, "\"status\":\"stopping\"") != NULL);

    sl_buf_reset(&b);
    s.status = SL__RUN_FAILED;
    cr_assert_eq(sl__metrics_health_json(&s, &b, &code), 0);
    cr_expect_eq(code, 503);
    cr_expect(strstr(b.data, "\"status\":\"failed\"") != NULL);
    sl_buf_fini(&b);
}

/* ------------------------------------------------------------------ */

Test(snapshot, bottleneck_is_the_busy_stage_with_a_full_input)
{
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    sl__stage_load l;
    sl__stage_load_of(&s, 1, &l);
    cr_expect_float_eq(l.busy, 0.95, 1e-9);
    cr_expect_float_eq(l.blocked, 0.01, 1e-9);
    cr_expect_float_eq(l.idle, 0.04, 1e-9);
    cr_expect_float_eq(l.input_full, 0.9, 1e-9);
    sl__stage_load_of(&s, 0, &l);
    cr_expect_float_eq(l.blocked, 0.9, 1e-9);
    cr_expect_eq(l.pressure, 0, "a blocked stage is not the bottleneck");
    cr_expect_eq(sl__metrics_bottleneck(&s), 1);
}

Test(snapshot, bottleneck_source_when_everything_else_keeps_up)
{
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    st[0].blocked_send_s = 0.2;
    st[1].queue_full_s = 0.1;
    st[1].idle_recv_s = 8;
    st[1].blocked_send_s = 0;
    cr_expect_eq(sl__metrics_bottleneck(&s), 0);
}

Test(snapshot, bottleneck_workers_and_merges)
{
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    /* the slow stage runs 4 workers, mostly idle: it keeps up */
    st[1].workers = 4;
    st[1].active_s = 40;
    st[1].idle_recv_s = 30;
    st[1].queue_full_s = 1;
    st[0].blocked_send_s = 1;
    st[0].workers = 1;
    sl__stage_load l;
    sl__stage_load_of(&s, 1, &l);
    cr_expect_float_eq(l.idle, 0.75, 1e-9);
    cr_expect_eq(sl__metrics_bottleneck(&s), 0, "the source is the limit");
    /* two producers (a source with 2 workers) waiting half the time each */
    st[0].workers = 2;
    st[0].active_s = 20;
    st[0].blocked_send_s = 10;
    st[1].queue_full_s = 10;
    st[1].idle_recv_s = 1;
    sl__stage_load_of(&s, 1, &l);
    cr_expect_float_eq(l.input_full, 0.5, 1e-9);
}

Test(snapshot, bottleneck_over_the_time_each_stage_ran)
{
    /* stopped after 2 s: the source ran 2 s, blocked 1.9 s of it on the
       slow stage, which then drained its queue for another 8 s */
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    st[0].active_s = 2;
    st[0].blocked_send_s = 1.9;
    st[1].active_s = 10;
    st[1].queue_full_s = 1.9;
    st[1].idle_recv_s = 0;
    st[1].blocked_send_s = 0;
    st[2].active_s = 10;
    sl__stage_load l;
    sl__stage_load_of(&s, 1, &l);
    cr_expect_float_eq(l.input_full, 0.95, 1e-9);
    cr_expect_float_eq(l.busy, 1.0, 1e-9);
    cr_expect_eq(sl__metrics_bottleneck(&s), 1);
}

Test(snapshot, snapshots_without_active_time_use_the_elapsed_time)
{
    const char *text =
        "{\"pipeline\":\"old\",\"status\":\"succeeded\",\"elapsed_s\":10,"
        "\"stages\":[{\"name\":\"a\",\"kind\":\"source\",\"blocked_send_s\":9},"
        "{\"name\":\"b\",\"inputs\":[\"a\"],\"queue_full_s\":9,"
        "\"idle_recv_s\":0.5}]}";
    sl__run_snapshot r;
    char err[128];
    cr_assert_eq(sl__run_snapshot_read(text, strlen(text), &r, err,
                                       sizeof(err)), 0, "%s", err);
    cr_expect_lt(r.stages[1].active_s, 0);
    sl__stage_load l;
    sl__stage_load_of(&r, 1, &l);
    cr_expect_float_eq(l.input_full, 0.9, 1e-9);
    cr_expect_float_eq(l.busy, 0.95, 1e-9);
    cr_expect_eq(sl__metrics_bottleneck(&r), 1);
    sl__run_snapshot_fini(&r);
}

Test(snapshot, window_between_two_snapshots)
{
    sl__run_snapshot a, b, w;
    sl__stage_snapshot sa[3], sb[3];
    three_stages(&a, sa);
    three_stages(&b, sb);
    /* in the last 2 s the slow stage kept up: nobody waited on it */
    b.elapsed_s = 12;
    sb[0].active_s = sb[1].active_s = sb[2].active_s = 12;
    sb[0].records_out = 1200;
    sb[1].records_in = 1200;
    sb[1].idle_recv_s = 2.2;
    sb[2].idle_recv_s = 11.8;
    cr_assert_eq(sl__run_snapshot_window(&b, &a, &w), 0);
    cr_expect_float_eq(w.elapsed_s, 2, 1e-9);
    cr_expect_eq(w.stages[0].records_out, 200);
    cr_expect_float_eq(w.stages[1].idle_recv_s, 1.8, 1e-9);
    cr_expect_float_eq(w.stages[1].queue_full_s, 0, 1e-9);
    cr_expect_eq(sl__metrics_bottleneck(&w), 0, "the source, now");
    cr_expect_eq(sl__metrics_bottleneck(&b), 1, "the slow stage, overall");
    sl__run_snapshot_fini(&w);
    a.n_stages = 2;
    cr_expect_eq(sl__run_snapshot_window(&b, &a, &w), SL_EINVAL);
}

Test(snapshot, no_bottleneck_when_nothing_is_saturated)
{
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    st[0].blocked_send_s = 4;     /* the source waits 40%: excluded */
    st[1].queue_full_s = 4;       /* slow: busy 55% x full 40% */
    st[1].idle_recv_s = 4.4;
    cr_expect_eq(sl__metrics_bottleneck(&s), -1);
    s.elapsed_s = 0;
    cr_expect_eq(sl__metrics_bottleneck(&s), -1, "no time, no answer");
}

/* ------------------------------------------------------------------ */

static char *report(const sl__run_snapshot *s, bool summary)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    if (summary)
        sl__run_snapshot_print_table(s, f);
    else
        sl__metrics_print_report(s, f);
    fclose(f);
    return text;
}

Test(snapshot, report_tables)
{
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    char *t = report(&s, false);
    cr_expect(strstr(t, "pipeline demo \"p\": succeeded after 10.00s\n") != NULL,
              "%s", t);
    cr_expect(strstr(t, "bottleneck: slow (rate_limit): busy 95% of the time "
                        "with its input queue full 90% of the time, while its "
                        "output waited only 1%\n") != NULL, "%s", t);
    cr_expect(strstr(t, "circuit breaker of store: open (opened 2 times, 7 "
                        "calls refused)\n") != NULL, "%s", t);
    cr_expect(strstr(t, "slow        1        0/16        90%    95%") != NULL,
              "%s", t);
    free(t);
    t = report(&s, true);
    cr_expect(strstr(t, "demo \"p\" succeeded in 10.00s\n") != NULL, "%s", t);
    free(t);
}

/* ------------------------------------------------------------------ */

Test(snapshot, progress_line)
{
    sl__run_snapshot s;
    sl__stage_snapshot st[3];
    three_stages(&s, st);
    st[1].queue_depth = 12;
    char line[256];
    sl__metrics_progress_line(&s, 42.25, line, sizeof(line));
    cr_expect_str_eq(line, "  42.2s  gen 100/s b90% | slow* 100/s q75% b1% | "
                           "store 100/s q0% b0%");
    /* narrow: whole stages only, then " ..." */
    sl__metrics_progress_line(&s, 42.25, line, 40);
    cr_expect_str_eq(line, "  42.2s  gen 100/s b90% ...");
    cr_expect_lt(strlen(line), 40);
    sl__metrics_progress_line(&s, 42.25, line, 5);
    cr_expect_lt(strlen(line), 5);
}
