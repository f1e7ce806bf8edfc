/*
 * The expression language of `where:`, `set:` and `fields:`
 * (docs/expressions.md is the full reference).
 *
 *   literals        1  2.5  "text"  'text'  true  false  null
 *   field paths     status  a.b[0]  a[-1]  headers["content-type"]  $["a b"]
 *   arithmetic      + - * / %      (+ also joins strings; int overflow and
 *                                   division by zero are SL_ERANGE)
 *   comparison      == != < <= > >=  (do not chain; ordering against null —
 *                                   a missing field — is false, not an error)
 *   logic           && || !        (short-circuit)
 *   conditional     cond ? a : b
 *   regex match     path =~ "^/api/"   path !~ "^/api/"
 *                                  (POSIX extended, compiled once)
 *   functions       len lower upper contains starts_with to_int to_float
 *                   to_string now seq
 *
 * Compiled once at start-up; a syntax error, an unknown function or a bad
 * regex literal reports the column (1-based, in characters from the start of
 * the text) within the expression text. Evaluation is allocation-free for
 * scalar results. Missing fields read as null.
 *
 * Thread: a compiled sl_expr is immutable; evaluate it from any thread.
 */
#ifndef SLUICE_EXPR_H
#define SLUICE_EXPR_H

#include <stdbool.h>
#include <stdint.h>

#include "record.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_expr sl_expr;

typedef struct sl_expr_error {
    int column;          /* 1-based column within the expression text */
    char text[160];      /* "expected ')' after arguments to len" */
} sl_expr_error;

/* Compile src. 0, SL_EPARSE (err filled) or SL_ENOMEM; SL_EINVAL for NULL
 * arguments. err may be NULL. On failure *out is untouched. Expressions are
 * limited to 64 KiB of text and 256 levels of nesting (SL_EPARSE). */
int sl_expr_compile(const char *src, sl_expr **out, sl_expr_error *err);
void sl_expr_destroy(sl_expr *e);          /* NULL: no-op */
const char *sl_expr_source(const sl_expr *e);

/* What the evaluator may read besides the record's fields. */
typedef struct sl_expr_env {
    int64_t seq;        /* value of seq() (the record's number, from 1) */
    int64_t now_ns;     /* value of now() (wall clock ns); 0 = read the clock */
} sl_expr_env;

/*
 * Evaluate e against rec's fields (rec may be NULL: fields read as null).
 * Returns 0 with *out a new reference, or SL_ETYPE / SL_ERANGE with a
 * message in err->text (e.g. "cannot add string and int") and the column of
 * the operator or function at fault; SL_EINVAL for an invalid computed
 * regex; SL_ENOMEM. err may be NULL. Arrays and objects taken from the
 * record are returned shared, not copied (copy on write, value.h).
 */
int sl_expr_eval(const sl_expr *e, const sl_record *rec,
                 const sl_expr_env *env, sl_value **out, sl_expr_error *err);

/*
 * Evaluate as a condition: false, null, 0 and "" are false, everything else
 * true. A missing field is null. Returns 0 with *result set, or an error as
 * sl_expr_eval.
 */
int sl_expr_eval_bool(const sl_expr *e, const sl_record *rec,
                      const sl_expr_env *env, bool *result, sl_expr_error *err);

#ifdef __cplusplus
}
#endif
#endif
