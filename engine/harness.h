/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Stage harness: drive one stage descriptor outside a pipeline, for tests.
 * Options come from YAML text through the same option table code as a real
 * run; input records are fed to process() (then flush()), or run() is called
 * for a source; whatever the stage emits, drops, stores or fails on is
 * collected for assertions.
 *
 * Thread: owner (the stage runs on the calling thread).
 */
#ifndef SLUICE_ENGINE_HARNESS_H
#define SLUICE_ENGINE_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/stage.h"

typedef struct sl_harness sl_harness;

/*
 * Create a harness for desc with options given as YAML mapping text
 * (e.g. "where: status >= 500"). NULL options = none. Returns 0, or
 * SL_ECONFIG with the messages readable through sl_harness_config_error.
 * On SL_ECONFIG *out is still set (so the message can be read) and must be
 * destroyed.
 */
int sl_harness_create(const sl_stage_desc *desc, const char *options_yaml,
                      sl_harness **out);
void sl_harness_destroy(sl_harness *h);   /* NULL: no-op; calls destroy() */
const char *sl_harness_config_error(const sl_harness *h);  /* "" if none */

/* Calls init() (once; again: SL_EINVAL, as after a config error). Returns
 * its result. process/flush/run before a successful init: SL_EINVAL. */
int sl_harness_init(sl_harness *h);

/* Feed one record to process() (takes ownership). Returns process()'s result;
 * on error the record is kept in the harness's failed list. */
int sl_harness_process(sl_harness *h, sl_record *rec);
/* Convenience: a record whose payload is the given text. */
int sl_harness_process_text(sl_harness *h, const char *payload);
/* Convenience: a record whose fields are parsed from JSON text. */
int sl_harness_process_json(sl_harness *h, const char *json);

int sl_harness_flush(sl_harness *h);
/* Source stages: call run() until it returns. */
int sl_harness_run(sl_harness *h);
/* Ask the source to stop (sl_stage_stopping becomes true, the source
 * context is cancelled with SL_ESTOPPED). Thread: any. */
void sl_harness_stop(sl_harness *h);

/* What happened. Records stay owned by the harness. */
size_t sl_harness_emitted_count(const sl_harness *h);
sl_record *sl_harness_emitted(const sl_harness *h, size_t i);
size_t sl_harness_dropped_count(const sl_harness *h);
uint64_t sl_harness_stored_count(const sl_harness *h);
/* Failed process() calls plus the stage's own sl_stage_count_error(). */
uint64_t sl_harness_error_count(const sl_harness *h);
const char *sl_harness_last_error(const sl_harness *h);  /* "" if none */
void *sl_harness_state(sl_harness *h);

/* --- additions --- */

/* The clock the stage sees (default real); call before init. A fake clock
 * (sl_fake_clock) makes rate and time logic deterministic. */
void sl_harness_set_clock(sl_harness *h, const sl_clock *clock);
/* Worker identity the stage sees (default 0 of 1); call before init. */
void sl_harness_set_worker(sl_harness *h, int index, int count);
/* The run context the stage sees (sl_stage_context). */
sl_ctx *sl_harness_context(sl_harness *h);
/* Cancel the run context, as a failing or forced-stopped run would:
 * sl_emit then returns SL_ECANCELED. Thread: any. */
void sl_harness_cancel(sl_harness *h, const char *cause);
uint64_t sl_harness_retry_count(const sl_harness *h);
uint64_t sl_harness_bytes_in(const sl_harness *h);
/* The on_error policy sl_record_reject applies: "fail" (default), "skip",
 * "dead_letter" or "retry", as in a pipeline file; 0 or SL_EINVAL. Every
 * rejected record is kept, with its reason, whatever the policy. */
int sl_harness_set_on_error(sl_harness *h, const char *policy);
size_t sl_harness_rejected_count(const sl_harness *h);
sl_record *sl_harness_rejected(const sl_harness *h, size_t i);
const char *sl_harness_rejected_reason(const sl_harness *h, size_t i);
/* The value of the stage's own metric name (with label_value, or NULL
 * for an unlabelled one); -1 when the stage did not declare it.
 * Thread: any. */
int64_t sl_harness_metric(const sl_harness *h, const char *name,
                          const char *label_value);
/* Records process() failed on, in order (owned by the harness). */
size_t sl_harness_failed_count(const sl_harness *h);
sl_record *sl_harness_failed(const sl_harness *h, size_t i);

#endif
