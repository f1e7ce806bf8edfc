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

#include <stdarg.h>
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

/* sl__diag_add with a va_list. */
void sl__diag_vadd(sl_diag *d, const char *file, int line, int col,
                   const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/* Messages kept (at most the cap, plus one "too many errors" line). */
size_t sl__diag_count(const sl_diag *d);
/* The i-th message, fully formatted ("file:line:col: text"). */
const char *sl__diag_message(const sl_diag *d, size_t i);
/*
 * Every error ever added, including those past the cap. Compare it before
 * and after a call to learn whether the call reported anything.
 */
size_t sl__diag_errors(const sl_diag *d);

/*
 * Warnings: things worth saying that do not make the input invalid (a stage
 * whose output nobody reads). Kept apart from errors, same format and cap;
 * they never count in sl__diag_count or sl__diag_errors.
 */
void sl__diag_warn(sl_diag *d, const char *file, int line, int col,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
size_t sl__diag_warning_count(const sl_diag *d);
const char *sl__diag_warning(const sl_diag *d, size_t i);

/* Print every error, one per line, prefixed with "error: ", then every
 * warning prefixed with "warning: ". */
void sl__diag_print(const sl_diag *d, FILE *out);

/* Drop every message and warning (the diag is reusable afterwards). */
void sl__diag_clear(sl_diag *d);

/*
 * The candidate nearest to word by edit distance (insertions, deletions,
 * substitutions, adjacent swaps), or NULL when none is close: at most 1 edit
 * for words of up to 3 characters, at most 2 otherwise. Ties go to the
 * earlier candidate. candidates is NULL-terminated; n_max bounds how many
 * are read (SIZE_MAX: all). Used for "did you mean 'X'?".
 */
const char *sl__diag_suggest(const char *word, const char *const *candidates,
                             size_t n_max);

/* Largest number of messages (and of warnings) kept. */
#define SL_DIAG_MAX 100

#endif
