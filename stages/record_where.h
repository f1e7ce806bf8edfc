/*
 * How the parse stages name a record in their messages: from its position,
 * "events.jsonl line 12", "line 12", "events.jsonl" or "record".
 *
 * Thread: any.
 */
#ifndef SLUICE_STAGES_RECORD_WHERE_H
#define SLUICE_STAGES_RECORD_WHERE_H

#include <stdio.h>

#include "sluice/record.h"

/* Write the record's description into buf (size n); returns buf. */
static inline const char *sl__record_where(const sl_record *rec, char *buf, size_t n)
{
    const sl_position *pos = sl_record_position(rec);
    const char *loc = pos != NULL ? pos->locator : NULL;
    long long seq = pos != NULL ? (long long)pos->seq : 0;
    if (loc != NULL && seq > 0)
        snprintf(buf, n, "%s line %lld", loc, seq);
    else if (seq > 0)
        snprintf(buf, n, "line %lld", seq);
    else if (loc != NULL)
        snprintf(buf, n, "%s", loc);
    else
        snprintf(buf, n, "record");
    return buf;
}

#endif
