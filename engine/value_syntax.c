/*
 * The public face of the pipeline file's value syntaxes (stage.h), for
 * stages that read durations and rates out of string maps. The parsing
 * itself is the option code's (engine/options.c), so a value means the
 * same wherever it is written.
 */
#include "engine/options.h"
#include "sluice/error.h"
#include "sluice/stage.h"

int sl_parse_duration(const char *text, int64_t *ns)
{
    if (ns == NULL)
        return SL_EINVAL;
    return sl__parse_duration(text, ns);
}

int sl_parse_rate(const char *text, double *per_s)
{
    if (per_s == NULL)
        return SL_EINVAL;
    return sl__parse_rate(text, per_s);
}
