/*
 * The /health answer: whether the run is going, each stage's state and
 * circuit breaker, and what makes it degraded.
 */
#include <string.h>

#include "metrics/snapshot.h"
#include "metrics/text.h"
#include "sluice/error.h"

static bool stage_degraded(const sl__stage_snapshot *t)
{
    if (t->state != NULL && strcmp(t->state, "stalled") == 0)
        return true;
    return t->has_breaker && strcmp(t->breaker_state, "closed") != 0;
}

bool sl__metrics_degraded(const sl__run_snapshot *s)
{
    for (size_t i = 0; i < s->n_stages; i++)
        if (stage_degraded(&s->stages[i]))
            return true;
    return false;
}

int sl__metrics_health_json(const sl__run_snapshot *s, sl_buf *b,
                            int *http_status)
{
    const char *status;
    if (s->status != SL__RUN_RUNNING) {
        status = sl__run_status_name(s->status);
        *http_status = 503;
    } else if (s->stopping) {
        status = "stopping";
        *http_status = 503;
    } else {
        status = sl__metrics_degraded(s) ? "degraded" : "running";
        *http_status = 200;
    }
    int rc = 0;
    rc |= sl__mput(b, "{\"pipeline\":");
    rc |= sl__mput_json_str(b, s->pipeline);
    rc |= sl__mput(b, ",\"status\":");
    rc |= sl__mput_json_str(b, status);
    rc |= sl__mput(b, ",\"elapsed_s\":");
    rc |= sl__mput_num(b, s->elapsed_s);
    rc |= sl__mput(b, ",\"stages\":[");
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        if (i > 0)
            rc |= sl__mput(b, ",");
        rc |= sl__mput(b, "{\"name\":");
        rc |= sl__mput_json_str(b, t->name);
        rc |= sl__mput(b, ",\"state\":");
        rc |= sl__mput_json_str(b, t->state);
        if (t->has_breaker) {
            rc |= sl__mput(b, ",\"breaker\":");
            rc |= sl__mput_json_str(b, t->breaker_state);
        }
        rc |= sl__mputf(b, ",\"degraded\":%s}",
                        stage_degraded(t) ? "true" : "false");
    }
    rc |= sl__mput(b, "]}");
    return rc != 0 ? SL_ENOMEM : 0;
}
