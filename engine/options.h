/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Option tables applied to configuration: the one place that turns a stage's
 * YAML mapping into its typed state, using the stage's sl_option table
 * (stage.h). Also parses the shared value syntaxes (durations, rates,
 * sizes) for pipeline settings.
 *
 * Thread: any (no shared state).
 */
#ifndef SLUICE_ENGINE_OPTIONS_H
#define SLUICE_ENGINE_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "sluice/stage.h"
#include "engine/diag.h"

struct sl_node;  /* a YAML node with its position, see engine/config.h */

/* "250ms", "5s", "2m", "1h", "1.5s" -> ns. 0 or SL_EINVAL / SL_ERANGE. */
int sl__parse_duration(const char *s, int64_t *ns);
/* "100/s", "6000/m", "5/h", "100" (per second) -> per second. */
int sl__parse_rate(const char *s, double *per_s);
/* "4096", "64KiB", "16MiB", "1GiB", "64KB" -> bytes. */
int sl__parse_size(const char *s, int64_t *bytes);

/*
 * Fill state from map (a YAML mapping node) using table: defaults first, then
 * given keys, checking types and ranges. Keys listed in `reserved` (a NULL
 * terminated list, e.g. "name", "type", "inputs", ...) are skipped. Unknown
 * keys are errors that suggest the nearest valid key. All problems go to
 * diag with the node's file:line:col. Returns 0 or SL_ECONFIG.
 * On failure, whatever was filled is still released by sl__options_free.
 */
int sl__options_apply(const sl_option *table, const struct sl_node *map,
                      const char *const *reserved, void *state, sl_diag *diag);

/*
 * The same from YAML text (a mapping), for tests and the stage harness.
 * file names the text in messages.
 */
int sl__options_apply_text(const sl_option *table, const char *yaml,
                           const char *file, void *state, sl_diag *diag);

/* Free the option values the table put in state (strings, lists, exprs). */
void sl__options_free(const sl_option *table, void *state);

/* The valid key nearest to key (edit distance <= 2), or NULL. */
const char *sl__options_suggest(const sl_option *table,
                                const char *const *extra, const char *key);

#endif
