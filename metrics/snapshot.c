/*
 * Snapshot basics: freeing one, and the names of run statuses.
 */
#include "metrics/snapshot.h"

#include <stdlib.h>
#include <string.h>

void sl__run_snapshot_fini(sl__run_snapshot *s)
{
    if (s == NULL)
        return;
    free(s->stages);
    free(s->input_store);
    sl_value_unref(s->doc);
    memset(s, 0, sizeof(*s));
}

const char *sl__run_status_name(sl__run_status s)
{
    switch (s) {
    case SL__RUN_RUNNING:
        return "running";
    case SL__RUN_SUCCEEDED:
        return "succeeded";
    case SL__RUN_INTERRUPTED:
        return "interrupted";
    case SL__RUN_FAILED:
        return "failed";
    }
    return "unknown";
}

bool sl__run_status_parse(const char *name, sl__run_status *out)
{
    static const sl__run_status all[] = {SL__RUN_RUNNING, SL__RUN_SUCCEEDED,
                                         SL__RUN_INTERRUPTED, SL__RUN_FAILED};
    for (size_t i = 0; name != NULL && i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, sl__run_status_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}
