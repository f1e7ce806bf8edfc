/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Diagnostics: a list of messages for people, each naming where it happened
 * ("pipelines/x.yaml:12:5: unknown key 'wehre' (did you mean 'where'?)").
 * Library code never prints; it adds to the caller's sl_diag.
 *
 * Thread: owner.
 */
#ifndef SLUICE_ENGINE_DIAG_H
#define SLUICE_ENGINE_DIAG_H

#include <stdio.h>
#include <stddef.h>

typedef struct sl_diag sl_diag;

sl_diag *sl__diag_create(void);
void sl__diag_destroy(sl_diag *d);            /* NULL: no-op */

/* Add a message. file may be NULL; line/col 0 mean unknown. Messages are
 * capped (the cap itself is reported once) so hostile input cannot grow
 * the list without bound. */
void sl__diag_add(sl_diag *d, const char *file, int line, int col,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

size_t sl__diag_count(const sl_diag *d);
/* The i-th message, fully formatted ("file:line:col: text"). */
const char *sl__diag_message(const sl_diag *d, size_t i);
/* Print every message, one per line, prefixed with "error: ". */
void sl__diag_print(const sl_diag *d, FILE *out);

#endif
