/*
 * Values: the JSON-like data a record carries.
 *
 * A value is null, bool, int64, double, string (bytes with a length, may
 * hold NUL), array or object (string keys, insertion order kept). Values are
 * reference counted and immutable once shared: code that wants to modify a
 * value it did not create calls sl_value_unshare() first, which copies it
 * only when someone else holds a reference (copy on write). That is how a
 * tee hands the same record to several branches without one branch seeing
 * another's changes.
 *
 * Ownership: functions named *_new return a new reference (refcount 1).
 * Getters return borrowed pointers valid while the container is. Setters
 * marked "takes ownership" consume the reference passed in, on success and
 * on failure.
 *
 * Thread: a value may be read from several threads at once; it may be
 * modified only by a thread holding the sole reference.
 */
#ifndef SLUICE_VALUE_H
#define SLUICE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_value sl_value;

typedef enum sl_type {
    SL_TYPE_NULL = 0,
    SL_TYPE_BOOL,
    SL_TYPE_INT,
    SL_TYPE_DOUBLE,
    SL_TYPE_STRING,
    SL_TYPE_ARRAY,
    SL_TYPE_OBJECT,
} sl_type;

/* "null", "bool", "int", "double", "string", "array", "object". */
const char *sl_type_name(sl_type t);

/* --- construction (new reference; NULL only on out of memory) --- */
sl_value *sl_value_null(void);
sl_value *sl_value_bool(bool b);
sl_value *sl_value_int(int64_t i);
sl_value *sl_value_double(double d);
sl_value *sl_value_string(const char *s, size_t len);  /* copies s */
sl_value *sl_value_cstring(const char *s);             /* copies s */
sl_value *sl_value_array(void);
sl_value *sl_value_object(void);

sl_value *sl_value_ref(sl_value *v);      /* NULL-safe */
void sl_value_unref(sl_value *v);         /* NULL-safe */

/* Deep copy (new reference). */
sl_value *sl_value_copy(const sl_value *v);

/*
 * Make *v safe to modify: if it is shared, replace *v by a deep copy and
 * drop one reference to the original. Returns 0 or SL_ENOMEM.
 */
int sl_value_unshare(sl_value **v);

/* --- inspection --- */
sl_type sl_value_type(const sl_value *v);  /* NULL reads as SL_TYPE_NULL */
bool sl_value_get_bool(const sl_value *v);   /* false unless a true bool */
int64_t sl_value_get_int(const sl_value *v); /* ints; doubles truncated; else 0 */
double sl_value_get_double(const sl_value *v); /* ints and doubles; else 0 */
/* Borrowed bytes of a string (NUL-terminated too); NULL if not a string. */
const char *sl_value_get_string(const sl_value *v, size_t *len);
/* Deep equality (1 == 1.0 is true). */
bool sl_value_equal(const sl_value *a, const sl_value *b);

/* --- arrays --- */
size_t sl_array_len(const sl_value *a);
sl_value *sl_array_get(const sl_value *a, size_t i);        /* borrowed */
int sl_array_append(sl_value *a, sl_value *item);          /* takes ownership */
/* Replace item i (takes ownership); SL_ERANGE if i >= length. */
int sl_array_set(sl_value *a, size_t i, sl_value *item);
/* Item i made safe to modify in place: if it is shared it is replaced in a
 * (which the caller may modify) by a deep copy. Borrowed; NULL if absent or
 * on out of memory. */
sl_value *sl_array_get_mut(sl_value *a, size_t i);

/* --- objects --- */
size_t sl_object_len(const sl_value *o);
sl_value *sl_object_get(const sl_value *o, const char *key); /* borrowed */
/* As sl_object_get, for a key given as key[0..len) (not NUL-terminated). */
sl_value *sl_object_getn(const sl_value *o, const char *key, size_t len);
/* The value under key made safe to modify in place (see sl_array_get_mut). */
sl_value *sl_object_get_mut(sl_value *o, const char *key);
int sl_object_set(sl_value *o, const char *key, sl_value *v); /* takes ownership */
int sl_object_del(sl_value *o, const char *key);        /* SL_ENOTFOUND if absent */

/*
 * An object built in one go, for code that knows a record's fields up
 * front (a CSV row, a fixed schema): the members, their keys and their
 * numbers and strings share one allocation, so the object costs one
 * allocation to make and one to free instead of one per field. Each
 * member is a value already made (v, taken over) or, with v NULL, a
 * scalar of type `type` (null, bool, int, double or string) copied in.
 */
typedef struct sl_member_init {
    const char *key;        /* key_len bytes, no NUL inside */
    size_t key_len;
    sl_value *v;            /* taken over (also on failure); NULL: the scalar below */
    sl_type type;           /* with v NULL: SL_TYPE_NULL, _BOOL, _INT, _DOUBLE or _STRING */
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *s;  /* len bytes, copied */
            size_t len;
        } str;
    } u;
} sl_member_init;

/* The object of members[0..n) in insertion order (a repeated key keeps its
 * first position and its last value), with room for spare_members more
 * members and spare_key_bytes of their keys (each key takes its length +
 * 1) before it grows. NULL on out of memory or an invalid type. */
sl_value *sl_object_build(sl_member_init *members, size_t n, size_t spare_members,
                          size_t spare_key_bytes);

/* Iteration in insertion order: for (it = sl_object_iter(o); it; it = sl_object_next(o, it)) */
void *sl_object_iter(const sl_value *o);
void *sl_object_next(const sl_value *o, void *it);
const char *sl_object_iter_key(void *it);
sl_value *sl_object_iter_value(void *it);                  /* borrowed */

/* --- JSON --- */

/* Limits applied while parsing; zero fields take the defaults. */
typedef struct sl_json_limits {
    size_t max_depth;   /* nesting depth; default 512 */
    size_t max_bytes;   /* document size; default 16 MiB */
} sl_json_limits;

/* Where and why a parse failed. */
typedef struct sl_json_error {
    int line;           /* 1-based, 0 if unknown */
    int column;         /* 1-based, 0 if unknown */
    size_t position;    /* byte offset */
    char text[160];     /* e.g. "'}' expected near end of file" */
} sl_json_error;

/*
 * Parse one JSON document (any value at the top). Returns 0 with *out a new
 * reference, SL_EPARSE (err filled) or SL_ELIMIT (err filled) or SL_ENOMEM.
 * err and limits may be NULL.
 */
int sl_json_parse(const char *buf, size_t len, const sl_json_limits *limits,
                  sl_value **out, sl_json_error *err);

/* A growable byte buffer, used by serialisers. */
typedef struct sl_buf {
    char *data;         /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
} sl_buf;

void sl_buf_init(sl_buf *b);
void sl_buf_fini(sl_buf *b);
int sl_buf_append(sl_buf *b, const void *data, size_t len);
int sl_buf_putc(sl_buf *b, char c);
void sl_buf_reset(sl_buf *b);   /* len = 0, keeps the memory */

/* Append v as compact JSON (no newline). Returns 0 or SL_ENOMEM. */
int sl_json_dump(const sl_value *v, sl_buf *out);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
