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
 * The three above: "0" is the only bare number a duration accepts; several
 * parts add up ("1h30m"); fractions are allowed ("1.5s", "0.5KiB", rounded
 * to the nearest ns or byte); negative values, unknown units and anything
 * else malformed are SL_EINVAL; values beyond int64 are SL_ERANGE.
 * Rate units: s, sec, second, m, min, minute, h, hour (100/s, 6000/m,
 * 5/h); a bare number is per second. Size units, case-insensitive, after
 * an optional space: B, KB, MB, GB, TB (powers of 1000) and KiB, MiB, GiB,
 * TiB (powers of 1024).
 */

/* Write ns as the shortest readable duration ("1.5s", "250ms", "2m30s"). */
void sl__format_duration(int64_t ns, char *buf, size_t size);

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
 * sl__options_apply, naming the owner of the options in messages
 * ("unknown key 'wehre' in stage 'errors' (did you mean 'where'?)",
 * "stage 'db': missing required option 'path'"); what may be NULL.
 * A reserved key that the table declares as well is applied like any
 * other (the table wins). A value node marked invalid (already reported)
 * is skipped without a second message, and does not count as missing.
 */
int sl__options_apply_named(const sl_option *table, const struct sl_node *map,
                            const char *const *reserved, const char *what,
                            void *state, sl_diag *diag);

/*
 * Check one value against one option and store it at opt->offset in state,
 * releasing what was there. On error reports to diag, leaves state as it
 * was and returns SL_ECONFIG.
 */
int sl__option_set(const sl_option *opt, const struct sl_node *value,
                   void *state, sl_diag *diag);

/* The row of table for key, or NULL. */
const sl_option *sl__options_find(const sl_option *table, const char *key);

/*
 * The same from YAML text (a mapping), for tests and the stage harness.
 * file names the text in messages.
 */
int sl__options_apply_text(const sl_option *table, const char *yaml,
                           const char *file, void *state, sl_diag *diag);

/* Free the option values the table put in state (strings, lists, exprs)
 * and zero them, so calling it twice is harmless. */
void sl__options_free(const sl_option *table, void *state);

/* The valid key nearest to key (edit distance <= 2), or NULL. */
const char *sl__options_suggest(const sl_option *table,
                                const char *const *extra, const char *key);

#endif
