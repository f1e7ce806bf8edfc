/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The layout of values (engine/value.c), shared with the JSON parser and
 * serialiser (engine/json.c) so that they build and walk values directly.
 *
 * Every value starts with struct sl_value (a reference count and a type);
 * the rest depends on the type:
 *   - null, true and false are three static singletons (never freed);
 *   - an int or a double is the header and the number, one allocation;
 *   - a string is the header, the length and the bytes (NUL-terminated),
 *     one allocation;
 *   - an array is the header and a vector of item pointers; the parser puts
 *     the vector in the same allocation as the header (inline), a later
 *     growth moves it to its own;
 *   - an object is the header and one "block" holding the members (key
 *     pointer, key length, value) followed by the key bytes the members
 *     point to. Like an array's items the block starts inline when the
 *     parser or a copy knows the size; growing it copies the live keys
 *     into a new block (which also drops the bytes of deleted keys). Past
 *     SL__OBJ_INDEX_MIN members an open-addressing index (hash of the key
 *     -> member position) makes lookups O(1); below it a scan comparing
 *     lengths first is faster.
 *
 * Embedded scalars: a container the parser builds carries its numbers and
 * strings in its own allocation, after the block (sl__container_build), so
 * a parsed event is one allocation rather than one per field. Such a
 * scalar has `embedded` set and, instead of a count of its own, the byte
 * offset back to its container in `refcount`: a reference to it is a
 * reference to the container (sl_value_ref and sl_value_unref go to the
 * owner), so it lives as long as anyone holds either. The container's own
 * slot holding it is not counted; replacing or deleting that slot just
 * forgets it (its bytes stay until the container is freed). A container
 * never holds an embedded scalar of another, nor a counted reference to
 * one of its own: sl_object_set and the array setters store a copy of an
 * embedded value instead, so containers form no cycles.
 *
 * Thread: as for values (read from any thread, written by the sole holder).
 */
#ifndef SLUICE_ENGINE_VALUE_INTERNAL_H
#define SLUICE_ENGINE_VALUE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/value.h"

/* Reference count of the static singletons: never changed, never freed. */
#define SL__STATIC_REFCOUNT UINT32_MAX
/* Objects with more members than this keep a hash index. */
#define SL__OBJ_INDEX_MIN 16

struct sl_value {
    uint32_t refcount;      /* atomic; SL__STATIC_REFCOUNT for singletons;
                             * embedded: offset back to the owner (constant) */
    uint8_t type;           /* sl_type */
    uint8_t inline_block;   /* array/object: items or block in this allocation */
    uint8_t embedded;       /* a scalar inside its container's allocation */
};

typedef struct sl__int {
    sl_value h;
    int64_t i;
} sl__int;

typedef struct sl__double {
    sl_value h;
    double d;
} sl__double;

typedef struct sl__string {
    sl_value h;
    size_t len;
    char bytes[];           /* len + 1 bytes, NUL-terminated */
} sl__string;

typedef struct sl__array {
    sl_value h;
    sl_value **items;       /* inline (after the struct) or heap */
    size_t len;
    size_t cap;
    size_t counted;         /* items holding a reference to drop (see below) */
} sl__array;

typedef struct sl__member {
    const char *key;        /* into the object's block; NUL-terminated */
    size_t klen;
    sl_value *value;        /* owned reference */
} sl__member;

typedef struct sl__object {
    sl_value h;
    sl__member *m;          /* the block: cap members, then kcap key bytes */
    size_t len;
    size_t cap;
    char *keys;             /* (char *)(m + cap) */
    size_t kused;
    size_t kcap;
    uint32_t *index;        /* NULL, or index_cap slots: member position + 1 */
    size_t index_cap;       /* a power of two, or 0 */
    size_t counted;         /* members holding a reference to drop (see below) */
} sl__object;

/* `counted`: how many slots hold something freeing the container must
 * drop — not its own embedded scalars, not the singletons. A parsed or
 * built record has none, so freeing it (on a sink, another core) reads
 * its header only instead of every member and scalar. */

#define SL__INT(v)    ((sl__int *)(v))
#define SL__DOUBLE(v) ((sl__double *)(v))
#define SL__STRING(v) ((sl__string *)(v))
#define SL__ARRAY(v)  ((sl__array *)(v))
#define SL__OBJECT(v) ((sl__object *)(v))

/* The singletons, for code that builds values without a call. */
extern sl_value sl__null_value, sl__true_value, sl__false_value;

/* A string value holding s[0..len) (any bytes); NULL on out of memory. */
sl_value *sl__string_new(const char *s, size_t len);

/* An array with room for cap items in the same allocation; NULL on out of
 * memory. Items are added with sl__array_push. */
sl_value *sl__array_new_sized(size_t cap);
/* Append item (takes ownership, also on failure); 0 or SL_ENOMEM. */
int sl__array_push(sl_value *a, sl_value *item);

/* An object with room for cap members and kbytes key bytes (each key takes
 * its length + 1) in the same allocation; NULL on out of memory. */
sl_value *sl__object_new_sized(size_t cap, size_t kbytes);
/* Set key[0..klen) (no NUL inside) to v (takes ownership, also on
 * failure): an existing key keeps its position and drops its old value, a
 * new key goes last. 0 or SL_ENOMEM. */
int sl__object_setn(sl_value *o, const char *key, size_t klen, sl_value *v);

/* One element of a container being built: a value already made (v), or a
 * scalar to embed (v NULL, kind SL_TYPE_INT, _DOUBLE or _STRING). key is
 * used for objects only (no NUL inside). */
typedef struct sl__item {
    sl_value *v;            /* owned; NULL for a scalar to embed */
    uint8_t kind;
    const char *key;
    size_t klen;
    union {
        int64_t i;
        double d;
        struct {
            const char *s;
            size_t len;
        } str;
    } u;
} sl__item;

/*
 * An object (object true: items[i].key set; a repeated key keeps its
 * first position and its last value) or an array of the n items, in one
 * allocation with the scalars embedded, plus room for extra_members more
 * members and extra_kbytes key bytes. Takes ownership of every items[i].v,
 * also on failure (set to NULL). NULL on out of memory.
 */
sl_value *sl__container_build(bool object, sl__item *items, size_t n, size_t extra_members,
                              size_t extra_kbytes);

/* About the bytes v would take as compact JSON, without serialising it
 * (exact for strings that need no escapes, 8 bytes per number). NULL
 * counts as null. Used for record sizes in metrics. */
size_t sl__value_size(const sl_value *v);

#endif
