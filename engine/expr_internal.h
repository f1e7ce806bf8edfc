/* Private to the engine: the expression compiler and evaluator's shared parts. */
/*
 * An expression is compiled into a tree of sl__xnode allocated from one arena
 * owned by the sl_expr. Field paths are resolved into segment arrays, regex
 * literals are compiled (or reduced to a literal test), function names are
 * resolved to an id; nothing is looked up by name at evaluation time.
 *
 * Evaluation works on sl__xval, an unboxed variant: scalars are held by
 * value, strings as borrowed (pointer, length) pairs — pointing into the
 * record, into the compiled expression, or into a per-evaluation scratch
 * area — and arrays/objects as borrowed sl_value pointers. Only the final
 * result of sl_expr_eval is boxed into an sl_value.
 *
 * Files: expr_lex.c (tokens), expr_parse.c (grammar, compile/destroy),
 * expr_regex.c (=~), expr_func.c (function table and built-ins),
 * expr_eval.c (tree walk, operators, sl_expr_eval*), expr_value.c
 * (unboxing, boxing, comparison, conversions, scratch memory).
 *
 * Thread: a compiled expression is immutable; everything mutable during an
 * evaluation lives in the caller's stack frame (sl__xeval).
 */
#ifndef SLUICE_ENGINE_EXPR_INTERNAL_H
#define SLUICE_ENGINE_EXPR_INTERNAL_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/expr.h"

/* Hostile-input guards. */
#define SL__EXPR_MAX_DEPTH 256            /* nesting levels (parser and tree) */
#define SL__EXPR_MAX_LEN (64 * 1024)      /* bytes of expression text */
#define SL__EXPR_MAX_STRING (64u << 20)   /* bytes of one computed string */

/* ------------------------------------------------------------------ */
/* Arena: bump allocation in chunks, freed all at once.               */
/* ------------------------------------------------------------------ */

typedef struct sl__xchunk {
    struct sl__xchunk *next;   /* older chunk */
    size_t used;               /* bytes handed out from data */
    size_t cap;                /* bytes in data */
    _Alignas(16) unsigned char data[];
} sl__xchunk;

typedef struct sl__xarena {
    sl__xchunk *head;          /* newest chunk, or NULL */
    size_t total;              /* bytes allocated so far (all chunks) */
} sl__xarena;

/* n bytes aligned to 16, or NULL on out of memory. */
void *sl__xarena_alloc(sl__xarena *a, size_t n);
void sl__xarena_free(sl__xarena *a);

/* ------------------------------------------------------------------ */
/* Lexer                                                               */
/* ------------------------------------------------------------------ */

typedef enum sl__xtok_kind {
    SL__T_EOF = 0,
    SL__T_INT,        /* u64 holds the magnitude (may be 2^63, see parser) */
    SL__T_DOUBLE,
    SL__T_STRING,     /* decoded bytes in str/len (arena, NUL-terminated) */
    SL__T_IDENT,
    SL__T_TRUE,
    SL__T_FALSE,
    SL__T_NULL,
    SL__T_DOLLAR,
    SL__T_LPAREN,
    SL__T_RPAREN,
    SL__T_LBRACK,
    SL__T_RBRACK,
    SL__T_DOT,
    SL__T_COMMA,
    SL__T_QUESTION,
    SL__T_COLON,
    SL__T_PLUS,
    SL__T_MINUS,
    SL__T_STAR,
    SL__T_SLASH,
    SL__T_PERCENT,
    SL__T_EQ,
    SL__T_NE,
    SL__T_LT,
    SL__T_LE,
    SL__T_GT,
    SL__T_GE,
    SL__T_MATCH,      /* =~ */
    SL__T_NMATCH,     /* !~ */
    SL__T_AND,
    SL__T_OR,
    SL__T_NOT,
} sl__xtok_kind;

typedef struct sl__xtok {
    sl__xtok_kind kind;
    size_t pos;             /* byte offset of the token's first character */
    size_t end;             /* byte offset just past the token */
    uint64_t u64;           /* SL__T_INT */
    double d;               /* SL__T_DOUBLE */
    const char *str;        /* SL__T_STRING (decoded), SL__T_IDENT (source) */
    size_t len;             /* bytes in str */
} sl__xtok;

typedef struct sl__xlexer {
    const char *src;        /* the expression text (borrowed) */
    size_t len;             /* bytes in src */
    size_t pos;             /* next byte to read */
    sl__xarena *arena;      /* where decoded strings go */
    sl_expr_error *err;     /* filled on error (never NULL) */
} sl__xlexer;

/* Read the next token. 0, SL_EPARSE (err filled) or SL_ENOMEM. */
int sl__xlex_next(sl__xlexer *lx, sl__xtok *tok);

/* Printable description of a token kind for messages ("')'", "a number"). */
const char *sl__xtok_describe(sl__xtok_kind k);

/* 1-based column (in UTF-8 characters) of byte offset pos in src. */
int sl__xcolumn(const char *src, size_t len, size_t pos);

/* Fill err (column from pos) and return code. printf-style. */
int sl__xerror(sl_expr_error *err, const char *src, size_t len, size_t pos,
               int code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* ------------------------------------------------------------------ */
/* Values during evaluation                                            */
/* ------------------------------------------------------------------ */

typedef enum sl__xtype {
    SL__XV_NULL = 0,
    SL__XV_BOOL,
    SL__XV_INT,
    SL__XV_DOUBLE,
    SL__XV_STRING,
    SL__XV_ARRAY,     /* borrowed sl_value in v */
    SL__XV_OBJECT,    /* borrowed sl_value in v */
} sl__xtype;

typedef struct sl__xval {
    sl__xtype t;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *p;  /* NUL-terminated, may also hold NULs */
            size_t n;
        } s;
        const sl_value *v;
    } u;
} sl__xval;

/* "null", "bool", "int", "double", "string", "array", "object". */
const char *sl__xtype_name(sl__xtype t);

/* ------------------------------------------------------------------ */
/* Compiled form                                                       */
/* ------------------------------------------------------------------ */

typedef enum sl__xop {
    SL__X_LIT = 1,    /* lit */
    SL__X_FIELD,      /* path: segments walked from the fields object ($) */
    SL__X_INDEX,      /* a[b] / (expr).name on a computed base: kid[0], kid[1] */
    SL__X_NEG,
    SL__X_NOT,
    SL__X_ADD,
    SL__X_SUB,
    SL__X_MUL,
    SL__X_DIV,
    SL__X_MOD,
    SL__X_EQ,
    SL__X_NE,
    SL__X_LT,
    SL__X_LE,
    SL__X_GT,
    SL__X_GE,
    SL__X_AND,
    SL__X_OR,
    SL__X_COND,       /* kid[0] ? kid[1] : kid[2] */
    SL__X_MATCH,      /* kid[0] =~ re (precompiled); negate for !~ */
    SL__X_MATCH_DYN,  /* kid[0] =~ kid[1] (compiled per evaluation) */
    SL__X_CALL,       /* fn(args) */
} sl__xop;

typedef struct sl__xseg {
    const char *key;    /* object key (arena), or NULL for an index */
    size_t key_len;     /* bytes in key */
    int64_t index;      /* array index when key is NULL; negative from end */
} sl__xseg;

typedef enum sl__xre_kind {
    SL__RE_POSIX = 0,   /* regexec */
    SL__RE_ANY,         /* always matches ("^", "" ) */
    SL__RE_SUBSTR,      /* literal anywhere */
    SL__RE_PREFIX,      /* ^literal */
    SL__RE_SUFFIX,      /* literal$ */
    SL__RE_EXACT,       /* ^literal$ */
} sl__xre_kind;

typedef struct sl__xregex {
    sl__xre_kind kind;
    const char *lit;           /* literal for the non-POSIX kinds (arena) */
    size_t lit_len;
    bool compiled;             /* re holds a compiled regex to regfree */
    regex_t re;
    struct sl__xregex *next;   /* all regexes of one expression */
} sl__xregex;

typedef enum sl__xfn {
    SL__F_LEN = 0,
    SL__F_LOWER,
    SL__F_UPPER,
    SL__F_CONTAINS,
    SL__F_STARTS_WITH,
    SL__F_TO_INT,
    SL__F_TO_FLOAT,
    SL__F_TO_STRING,
    SL__F_NOW,
    SL__F_SEQ,
    SL__F_COUNT_,
} sl__xfn;

#define SL__XFUNC_MAX_ARGS 2   /* the most any built-in takes */

typedef struct sl__xfunc {
    const char *name;
    int min_args;
    int max_args;
} sl__xfunc;

extern const sl__xfunc sl__xfuncs[SL__F_COUNT_];

/* The function called name[0..len), or -1. */
int sl__xfunc_find(const char *name, size_t len);
/* The known function name nearest to name (edit distance <= 2), or NULL. */
const char *sl__xfunc_suggest(const char *name, size_t len);

typedef struct sl__xnode sl__xnode;

struct sl__xnode {
    sl__xop op;
    uint32_t depth;         /* height of the subtree, for the nesting limit */
    uint32_t pos;           /* byte offset of the operator / name, for errors */
    uint32_t src_len;       /* bytes of source the node spans from src_pos */
    uint32_t src_pos;       /* byte offset of the node's first character */
    union {
        sl__xval lit;                   /* SL__X_LIT */
        struct {
            const sl__xseg *segs;       /* n == 0: the fields object */
            uint32_t n;
        } path;                         /* SL__X_FIELD */
        const sl__xnode *kid[3];        /* operators */
        struct {
            const sl__xnode *lhs;
            const sl__xregex *re;
            bool negate;
        } match;                        /* SL__X_MATCH */
        struct {
            const sl__xnode *lhs;
            const sl__xnode *rhs;
            bool negate;
        } dmatch;                       /* SL__X_MATCH_DYN */
        struct {
            sl__xfn fn;
            uint32_t nargs;
            const sl__xnode *const *args;
        } call;                         /* SL__X_CALL */
    } u;
};

struct sl_expr {
    const sl__xnode *root;     /* immutable after compile */
    char *src;                 /* copy of the source text (arena) */
    size_t src_len;
    sl__xregex *regexes;       /* to regfree on destroy */
    sl__xarena arena;          /* owns nodes, strings, segments */
};

/* Parse src into e (whose arena and src are set up). 0, SL_EPARSE, SL_ENOMEM. */
int sl__xparse(sl_expr *e, sl_expr_error *err);

/*
 * Regex literal pattern[0..len) for the node at pos: compile it (or reduce
 * it to a literal test) into *out, linked into e->regexes.
 * 0, SL_EPARSE (err filled, column of pos) or SL_ENOMEM.
 */
int sl__xregex_compile(sl_expr *e, const char *pattern, size_t len,
                       size_t pos, const sl__xregex **out, sl_expr_error *err);
void sl__xregex_free_all(sl__xregex *list);
/* Is pattern[0..len) safe to give regcomp? If not, *why says why. */
bool sl__xregex_check(const char *pattern, size_t len, const char **why);
/* Does s[0..n) match? (s is NUL-terminated at n.) */
bool sl__xregex_match(const sl__xregex *re, const char *s, size_t n);

/* ------------------------------------------------------------------ */
/* Evaluation state                                                    */
/* ------------------------------------------------------------------ */

/* Scratch memory for strings made during one evaluation: a small buffer on
 * the caller's stack, then heap chunks, all released by sl__xscratch_fini. */
typedef struct sl__xscratch {
    char *buf;                 /* inline buffer (caller's stack) */
    size_t cap;
    size_t used;
    sl__xarena heap;           /* overflow */
} sl__xscratch;

typedef struct sl__xeval {
    const sl_expr *expr;
    const sl_value *fields;    /* the record's fields, or NULL */
    const sl_expr_env *env;    /* may be NULL */
    sl_expr_error *err;        /* never NULL */
    sl__xscratch scratch;
} sl__xeval;

/* n bytes of scratch (n + 1 really, for a NUL), or NULL on OOM. */
char *sl__xscratch_alloc(sl__xscratch *s, size_t n);
void sl__xscratch_fini(sl__xscratch *s);

/* Evaluate node n. 0 or a negative code with E->err filled. */
int sl__xeval_node(const sl__xnode *n, sl__xeval *E, sl__xval *out);

/* Call a built-in with evaluated arguments (nargs within the table's range). */
int sl__xcall(const sl__xnode *n, sl__xeval *E, const sl__xval *args,
              sl__xval *out);

/* Fill E->err for node n and return code. printf-style. */
int sl__xeval_error(sl__xeval *E, const sl__xnode *n, int code,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* --- expr_value.c --- */

/* Read a stored value as an evaluation value (borrowing strings/containers). */
void sl__xval_from_value(const sl_value *v, sl__xval *out);
/* Box x into a new sl_value reference, or NULL on OOM. */
sl_value *sl__xval_to_value(const sl__xval *x);
/* Truthiness: false, null, 0, 0.0, NaN and "" are false. */
bool sl__xval_truthy(const sl__xval *x);
/* Equality: numbers across int/double, strings by bytes, containers deeply;
 * different types are unequal. */
bool sl__xval_equal(const sl__xval *a, const sl__xval *b);
/*
 * Ordering of two numbers or two strings: *cmp <0, 0, >0. Returns false if
 * they cannot be ordered (mixed types, or a NaN).
 */
bool sl__xval_order(const sl__xval *a, const sl__xval *b, int *cmp);
/* Format x as text into scratch (to_string semantics). 0 or SL_ENOMEM. */
int sl__xval_format(const sl__xval *x, sl__xscratch *s, sl__xval *out);

#endif
