/*
 * `lines`: the payload becomes one string field ({"line": "..."} by
 * default); the payload is then cleared. Fields the record already has are
 * kept.
 */
#include <string.h>

#include "sluice/plugin.h"

typedef struct lines_stage {
    char *field;            /* option: name of the field to set */
} lines_stage;

static int lines_init(void *state, sl_stage_ctx *sc)
{
    lines_stage *ls = state;
    if (ls->field == NULL || ls->field[0] == '\0')
        return sl_stage_error(sc, SL_ECONFIG, "'field' must not be empty");
    return 0;
}

static int lines_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    lines_stage *ls = state;
    size_t len;
    const char *p = sl_record_payload(rec, &len);
    sl_value *v = sl_value_string(p != NULL ? p : "", p != NULL ? len : 0);
    if (v == NULL || sl_record_set(rec, ls->field, v) < 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    sl_record_clear_payload(rec);
    sl_emit(sc, rec);
    return 0;
}

static const sl_option lines_options[] = {
    {SL_OPT_STRING, "field", "line", 0, offsetof(lines_stage, field), 0, 0, NULL,
     "field that receives the payload text"},
    SL_OPTIONS_END,
};

const sl_stage_desc sl_stage_lines = {
    SL_STAGE_DESC_HEADER,
    .name = "lines",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "turn each payload into one text field ({\"line\": ...})",
    .options = lines_options,
    .state_size = sizeof(lines_stage),
    .init = lines_init,
    .process = lines_process,
};
