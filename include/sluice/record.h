/*
 * Records: what flows between stages.
 *
 * A record has
 *   - a payload: raw bytes as read by a source (a line, a response body),
 *     which parse stages turn into fields; may be empty once parsed;
 *   - fields: an object value (sl_value) — the record's data;
 *   - metadata: source name, position (file path and byte offset after the
 *     line, URL, sequence number), ingest time.
 *
 * A record has exactly one owner at a time; handing it to sl_emit or
 * sl_chan_send gives it away. Copies share their field values (copy on
 * write, see value.h), so teeing is cheap and branches stay independent.
 *
 * Thread: owner.
 */
#ifndef SLUICE_RECORD_H
#define SLUICE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "value.h"

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_record sl_record;

/* Where a record came from. Strings are owned by the record. */
typedef struct sl_position {
    const char *source;     /* source stage name (interned, never NULL once set) */
    const char *locator;    /* file path or URL; may be NULL */
    int64_t offset;         /* byte offset after the record, or -1 */
    int64_t seq;            /* sequence number within the source, from 1 */
} sl_position;

/* A new empty record: no payload, fields an empty object, ingest time now. */
sl_record *sl_record_new(void);

/* A new record whose payload is a copy of data[0..len). */
sl_record *sl_record_new_payload(const void *data, size_t len);

/* Free the record and drop its references. NULL: no-op. */
void sl_record_free(sl_record *r);

/* A copy sharing field values (copy on write) and copying the payload. */
sl_record *sl_record_copy(const sl_record *r);

/* --- payload --- */
const char *sl_record_payload(const sl_record *r, size_t *len); /* borrowed */
int sl_record_set_payload(sl_record *r, const void *data, size_t len);
void sl_record_clear_payload(sl_record *r);

/* --- fields --- */

/* The fields object, borrowed and read-only (never NULL). */
const sl_value *sl_record_fields(const sl_record *r);

/* Replace the fields with v (takes ownership). v should be an object;
 * any other value is stored under the key "value". */
int sl_record_set_fields(sl_record *r, sl_value *v);

/* The fields object, unshared so it may be modified (NULL on OOM). */
sl_value *sl_record_fields_mut(sl_record *r);

/* Shorthands on the fields object. get returns borrowed or NULL. */
sl_value *sl_record_get(const sl_record *r, const char *key);
int sl_record_set(sl_record *r, const char *key, sl_value *v); /* takes ownership */
int sl_record_del(sl_record *r, const char *key);

/* --- metadata --- */
const sl_position *sl_record_position(const sl_record *r);
int sl_record_set_position(sl_record *r, const char *source,
                           const char *locator, int64_t offset, int64_t seq);
int64_t sl_record_ingest_ns(const sl_record *r);  /* sl_clock_real scale */

/* Extra metadata (e.g. "status" for HTTP, "client" for http_server).
 * Borrowed / takes ownership, as for fields. */
sl_value *sl_record_meta(const sl_record *r, const char *key);
int sl_record_set_meta(sl_record *r, const char *key, sl_value *v);

/*
 * Acknowledgement (docs/reliability.md): a source position counts as
 * delivered once the record read there, and every record made from it, has
 * been stored, dropped or dead-lettered. Copies and records emitted while
 * processing another inherit this automatically. A stage that folds several
 * records into one (a batch) calls sl_record_take_acks(dst, src) before
 * freeing src: dst becomes answerable for src's positions. Returns 0,
 * SL_EINVAL (NULL or the same record) or SL_ENOMEM (nothing moved).
 */
int sl_record_take_acks(sl_record *dst, sl_record *src);

/* Approximate bytes the record occupies (payload + fields), for metrics.
 * The fields part is remembered until they change through this API or are
 * handed out by sl_record_fields_mut; a change made later through a
 * pointer obtained earlier is not seen until then. */
size_t sl_record_size(const sl_record *r);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
