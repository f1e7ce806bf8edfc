/*
 * Reading a JSON snapshot back (for `sluice metrics`): the document is
 * parsed once and kept; the snapshot's strings point into it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/snapshot.h"
#include "sluice/error.h"

static uint64_t get_u64(const sl_value *o, const char *key)
{
    const sl_value *v = sl_object_get(o, key);
    if (sl_value_type(v) == SL_TYPE_INT) {
        int64_t i = sl_value_get_int(v);
        return i > 0 ? (uint64_t)i : 0;
    }
    double d = sl_value_get_double(v);
    if (!(d > 0))
        return 0;
    /* 2^64: past it the conversion is undefined */
    return d < 18446744073709551616.0 ? (uint64_t)d : UINT64_MAX;
}

static double get_num(const sl_value *o, const char *key)
{
    return sl_value_get_double(sl_object_get(o, key));
}

/* The string under key, or dflt when absent or not a string. */
static const char *get_str(const sl_value *o, const char *key, const char *dflt)
{
    const sl_value *v = sl_object_get(o, key);
    if (sl_value_type(v) != SL_TYPE_STRING)
        return dflt;
    return sl_value_get_string(v, NULL);
}

static sl_stage_kind parse_kind(const char *s, size_t n_inputs)
{
    if (s != NULL && strcmp(s, "source") == 0)
        return SL_STAGE_SOURCE;
    if (s != NULL && strcmp(s, "sink") == 0)
        return SL_STAGE_SINK;
    if (s != NULL && strcmp(s, "transform") == 0)
        return SL_STAGE_TRANSFORM;
    return n_inputs == 0 ? SL_STAGE_SOURCE : SL_STAGE_TRANSFORM;
}

static long find_stage(const sl__run_snapshot *s, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->stages[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* Fill stage i from its object (names of inputs resolved afterwards). */
static void read_stage(const sl_value *o, sl__stage_snapshot *t)
{
    t->name = get_str(o, "name", NULL);
    t->type = get_str(o, "type", "?");
    t->state = get_str(o, "state", "");
    int64_t w = sl_value_get_int(sl_object_get(o, "workers"));
    t->workers = w >= 1 && w <= 1000000 ? (int)w : 1;
    t->records_in = get_u64(o, "records_in");
    t->records_out = get_u64(o, "records_out");
    t->errors = get_u64(o, "errors");
    t->dropped = get_u64(o, "dropped");
    t->retries = get_u64(o, "retries");
    t->bytes_in = get_u64(o, "bytes_in");
    t->bytes_out = get_u64(o, "bytes_out");
    t->queue_depth = (size_t)get_u64(o, "queue_depth");
    t->queue_capacity = (size_t)get_u64(o, "queue_capacity");
    t->queue_max_depth = (size_t)get_u64(o, "queue_max_depth");
    t->queue_full_s = get_num(o, "queue_full_s");
    t->active_s = sl_object_get(o, "active_s") != NULL ? get_num(o, "active_s")
                                                         : -1;
    t->blocked_send_s = get_num(o, "blocked_send_s");
    t->idle_recv_s = get_num(o, "idle_recv_s");
    const sl_value *lat = sl_object_get(o, "latency_us");
    t->latency_p50_us = get_num(lat, "p50");
    t->latency_p90_us = get_num(lat, "p90");
    t->latency_p99_us = get_num(lat, "p99");
    t->latency_max_us = get_num(lat, "max");
    t->latency_count = get_u64(lat, "count");
    t->throughput_rps = get_num(o, "throughput_rps");
    const sl_value *br = sl_object_get(o, "breaker");
    if (sl_value_type(br) == SL_TYPE_OBJECT) {
        t->has_breaker = true;
        t->breaker_state = get_str(br, "state", "closed");
        t->breaker_opens = get_u64(br, "opens");
        t->breaker_rejections = get_u64(br, "rejections");
    }
}

int sl__run_snapshot_read(const char *text, size_t len, sl__run_snapshot *out,
                          char *err, size_t err_size)
{
    sl__run_snapshot s;
    memset(&s, 0, sizeof(s));
    sl_json_error jerr;
    memset(&jerr, 0, sizeof(jerr));
    int rc = sl_json_parse(text, len, NULL, &s.doc, &jerr);
    if (rc == SL_ENOMEM)
        return rc;
    if (rc != 0) {
        snprintf(err, err_size, "not JSON: %s at line %d column %d",
                 jerr.text[0] != '\0' ? jerr.text : "invalid", jerr.line,
                 jerr.column);
        return SL_EPARSE;
    }
    rc = SL_EPARSE;
    if (sl_value_type(s.doc) != SL_TYPE_OBJECT) {
        snprintf(err, err_size, "not a metrics snapshot: a JSON %s, not an "
                 "object", sl_type_name(sl_value_type(s.doc)));
        goto out_fail;
    }
    const sl_value *stages = sl_object_get(s.doc, "stages");
    if (sl_value_type(stages) != SL_TYPE_ARRAY) {
        snprintf(err, err_size, "not a metrics snapshot: no \"stages\" list");
        goto out_fail;
    }
    s.pipeline = get_str(s.doc, "pipeline", "pipeline");
    const char *status = get_str(s.doc, "status", "running");
    if (!sl__run_status_parse(status, &s.status)) {
        snprintf(err, err_size, "unknown status \"%s\"", status);
        goto out_fail;
    }
    s.elapsed_s = get_num(s.doc, "elapsed_s");
    s.cause = get_str(s.doc, "cause", "");
    s.n_stages = sl_array_len(stages);
    size_t n_inputs = 0;
    for (size_t i = 0; i < s.n_stages; i++)
        n_inputs += sl_array_len(sl_object_get(sl_array_get(stages, i),
                                               "inputs"));
    rc = SL_ENOMEM;
    s.stages = calloc(s.n_stages > 0 ? s.n_stages : 1, sizeof(*s.stages));
    s.input_store = calloc(n_inputs > 0 ? n_inputs : 1,
                           sizeof(*s.input_store));
    if (s.stages == NULL || s.input_store == NULL)
        goto out_fail;
    rc = SL_EPARSE;
    for (size_t i = 0; i < s.n_stages; i++) {
        const sl_value *o = sl_array_get(stages, i);
        if (sl_value_type(o) != SL_TYPE_OBJECT) {
            snprintf(err, err_size, "stage %zu: not an object", i + 1);
            goto out_fail;
        }
        read_stage(o, &s.stages[i]);
        if (s.stages[i].name == NULL) {
            snprintf(err, err_size, "stage %zu: no name", i + 1);
            goto out_fail;
        }
    }
    size_t next = 0;
    for (size_t i = 0; i < s.n_stages; i++) {
        const sl_value *o = sl_array_get(stages, i);
        const sl_value *ins = sl_object_get(o, "inputs");
        sl__stage_snapshot *t = &s.stages[i];
        t->inputs = s.input_store + next;
        for (size_t k = 0; k < sl_array_len(ins); k++) {
            const char *name = sl_value_get_string(sl_array_get(ins, k), NULL);
            long j = name != NULL ? find_stage(&s, s.n_stages, name) : -1;
            if (j < 0) {
                snprintf(err, err_size, "stage %s: input \"%s\" is not a "
                         "stage of the snapshot", t->name,
                         name != NULL ? name : "?");
                goto out_fail;
            }
            s.input_store[next++] = (size_t)j;
            t->n_inputs++;
        }
        t->kind = parse_kind(get_str(o, "kind", NULL), t->n_inputs);
    }
    *out = s;
    return 0;
out_fail:
    sl__run_snapshot_fini(&s);
    return rc;
}
