/*
 * `json`: parse each payload as one JSON document into the record's fields.
 *
 * An object becomes the fields; any other value is stored as
 * {"value": v}. With `split: true` a top-level array becomes one record per
 * element (each with the record's position; an empty array drops the
 * record). The payload is cleared once parsed. A parse error names the
 * record's position:
 *   events.jsonl line 12: string or '}' expected near end of file at column 25
 */
#include <stdio.h>
#include <string.h>

#include "sluice/plugin.h"

#include "record_where.h"

typedef struct json_stage {
    bool split;             /* option: a top-level array -> one record each */
    int64_t max_depth;      /* option: deepest nesting accepted */
    int64_t max_bytes;      /* option: largest document accepted */
    sl_json_limits limits;  /* from the options */
} json_stage;

static int json_init(void *state, sl_stage_ctx *sc)
{
    json_stage *js = state;
    if (js->max_bytes < 1)
        return sl_stage_error(sc, SL_ECONFIG, "max_bytes must be at least 1 byte");
    js->limits.max_depth = (size_t)js->max_depth;
    js->limits.max_bytes = (size_t)js->max_bytes;
    return 0;
}

/* Give rec the fields v (takes ownership): an object as is, else {"value": v}. */
static int set_fields(sl_record *rec, sl_value *v)
{
    if (sl_value_type(v) != SL_TYPE_OBJECT) {
        sl_value *o = sl_value_object();
        if (o == NULL) {
            sl_value_unref(v);
            return SL_ENOMEM;
        }
        if (sl_object_set(o, "value", v) < 0) {
            sl_value_unref(o);
            return SL_ENOMEM;
        }
        v = o;
    }
    return sl_record_set_fields(rec, v);
}

/*
 * Emit one record per element of arr, the last one being rec itself. On
 * failure before anything was emitted, rec stays with the caller (negative
 * return); once an element went out, rec is consumed and 0 returned.
 */
static int emit_split(sl_stage_ctx *sc, sl_record *rec, sl_value *arr)
{
    size_t n = sl_array_len(arr);
    if (n == 0) {
        sl_value_unref(arr);
        sl_record_drop(sc, rec);
        return 0;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        sl_record *copy = sl_record_copy(rec);
        if (copy == NULL || set_fields(copy, sl_value_ref(sl_array_get(arr, i))) < 0) {
            sl_record_free(copy);
            sl_value_unref(arr);
            if (i == 0)
                return sl_stage_error(sc, SL_ENOMEM, "out of memory");
            sl_stage_count_error(sc);
            sl_stage_log(sc, SL_LOG_ERROR, "out of memory splitting an array after %zu of %zu elements",
                         i, n);
            sl_record_free(rec);
            return 0;
        }
        if (sl_emit(sc, copy) < 0) {
            sl_value_unref(arr);
            sl_record_free(rec);   /* the run is being torn down */
            return 0;
        }
    }
    sl_value *last = sl_value_ref(sl_array_get(arr, n - 1));
    sl_value_unref(arr);
    if (set_fields(rec, last) < 0) {
        if (n == 1)
            return sl_stage_error(sc, SL_ENOMEM, "out of memory");
        sl_stage_count_error(sc);
        sl_stage_log(sc, SL_LOG_ERROR, "out of memory splitting an array after %zu of %zu elements",
                     n - 1, n);
        sl_record_free(rec);
        return 0;
    }
    sl_emit(sc, rec);
    return 0;
}

static int json_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    json_stage *js = state;
    char where[512];
    size_t len;
    const char *p = sl_record_payload(rec, &len);
    if (p == NULL) {
        p = "";
        len = 0;
    }
    sl_value *v = NULL;
    sl_json_error err;
    memset(&err, 0, sizeof(err));
    int rc = sl_json_parse(p, len, &js->limits, &v, &err);
    if (rc == SL_ENOMEM)
        return sl_stage_error(sc, SL_ENOMEM, "%s: out of memory",
                              sl__record_where(rec, where, sizeof(where)));
    if (rc < 0) {
        sl__record_where(rec, where, sizeof(where));
        const char *text = err.text[0] != '\0' ? err.text : "invalid JSON";
        if (err.line > 1)
            return sl_stage_error(sc, rc, "%s: %s at line %d column %d", where, text,
                                  err.line, err.column);
        if (err.column > 0)
            return sl_stage_error(sc, rc, "%s: %s at column %d", where, text, err.column);
        return sl_stage_error(sc, rc, "%s: %s", where, text);
    }
    if (js->split && sl_value_type(v) == SL_TYPE_ARRAY) {
        sl_record_clear_payload(rec);   /* before the copies, not in each */
        return emit_split(sc, rec, v);
    }
    if (set_fields(rec, v) < 0)
        return sl_stage_error(sc, SL_ENOMEM, "%s: out of memory",
                              sl__record_where(rec, where, sizeof(where)));
    sl_record_clear_payload(rec);
    sl_emit(sc, rec);
    return 0;
}

static const sl_option json_options[] = {
    {SL_OPT_BOOL, "split", "false", 0, offsetof(json_stage, split), 0, 0, NULL,
     "a top-level array becomes one record per element"},
    {SL_OPT_INT, "max_depth", "512", 0, offsetof(json_stage, max_depth), 1, 100000, NULL,
     "deepest nesting of arrays and objects accepted"},
    {SL_OPT_SIZE, "max_bytes", "16MiB", 0, offsetof(json_stage, max_bytes), 0, 0, NULL,
     "largest document accepted"},
    SL_OPTIONS_END,
};

const sl_stage_desc sl_stage_json = {
    SL_STAGE_DESC_HEADER,
    .name = "json",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "parse each payload as a JSON document into fields (split: arrays into records)",
    .options = json_options,
    .state_size = sizeof(json_stage),
    .init = json_init,
    .process = json_process,
};
