/*
 * Values (include/sluice/value.h) on top of jansson.
 *
 * An sl_value is a jansson json_t: the struct sl_value is never defined and
 * pointers are cast at this boundary. jansson already gives what value.h
 * asks for — reference counts updated with atomic builtins, 64-bit
 * integers, strings with a length (so they may hold NUL), objects that keep
 * insertion order — and using its tree directly means a parsed document
 * needs no second conversion pass (docs/decisions/0001).
 *
 * Deliberate differences from plain jansson use:
 *   - strings and keys are stored without UTF-8 validation (the *_nocheck
 *     calls): payloads from CSV, regex or line sources may hold any bytes,
 *     and the serialiser (engine/json.c) writes such bytes as U+FFFD;
 *   - a double that is NaN or infinite has no JSON form; sl_value_double()
 *     returns null for it instead of failing;
 *   - reference counts are read and changed only atomically, and the last
 *     reference to any value is dropped by sl_value_unref with
 *     acquire-release ordering (jansson's own decrements are release only),
 *     so a thread that frees a value shared with others sees their reads
 *     done — see "references" below;
 *   - deep copy and equality are our own: jansson's copy keeps a table of
 *     visited containers (slow for the copy-on-write path) and its equality
 *     says 1 != 1.0.
 *
 * Values are trees: adding a container to itself (directly or through a
 * child) is a programming error. Recursive operations (copy, equal, dump,
 * free) go as deep as the tree; the parser caps depth (engine/json.c).
 */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "engine/value_internal.h"
#include "sluice/error.h"
#include "sluice/value.h"

#define J(v)  ((json_t *)(v))
#define CJ(v) ((const json_t *)(v))
#define V(j)  ((sl_value *)(j))

/* jansson's statically allocated singletons (null, true, false) carry this
 * reference count and are never freed. */
#define SL__STATIC_REFCOUNT ((size_t)-1)

const char *sl_type_name(sl_type t)
{
    switch (t) {
    case SL_TYPE_NULL:
        return "null";
    case SL_TYPE_BOOL:
        return "bool";
    case SL_TYPE_INT:
        return "int";
    case SL_TYPE_DOUBLE:
        return "double";
    case SL_TYPE_STRING:
        return "string";
    case SL_TYPE_ARRAY:
        return "array";
    case SL_TYPE_OBJECT:
        return "object";
    }
    return "unknown";
}

/* ------------------------------------------------------------ construction */

sl_value *sl_value_null(void)
{
    return V(json_null());
}

sl_value *sl_value_bool(bool b)
{
    return V(b ? json_true() : json_false());
}

sl_value *sl_value_int(int64_t i)
{
    return V(json_integer((json_int_t)i));
}

/* NaN and the infinities have no JSON form: they read back as null. */
sl_value *sl_value_double(double d)
{
    if (!isfinite(d))
        return V(json_null());
    return V(json_real(d));
}

/* Copies len bytes (any bytes, NUL included) and NUL-terminates the copy. */
sl_value *sl_value_string(const char *s, size_t len)
{
    if (s == NULL && len > 0)
        return NULL;
    return V(json_stringn_nocheck(s != NULL ? s : "", len));
}

sl_value *sl_value_cstring(const char *s)
{
    if (s == NULL)
        s = "";
    return V(json_stringn_nocheck(s, strlen(s)));
}

sl_value *sl_value_array(void)
{
    return V(json_array());
}

sl_value *sl_value_object(void)
{
    return V(json_object());
}

/* ------------------------------------------------------------ references */

/*
 * Every reference count access here is atomic, and the last reference to a
 * value is always dropped by sl_value_unref, with acquire-release ordering,
 * so the thread that frees a value is ordered after every other holder's
 * reads (and ThreadSanitizer, which does not see inside libjansson, sees
 * that order). jansson's own decrements — in json_delete for children, in
 * its set and delete calls for replaced values — are release only, so we
 * never let one of them be the last for a value someone else holds: such a
 * value is pinned (one extra reference) around the call and released
 * through sl_value_unref afterwards. A value with a count of one is
 * reachable only through its container, whose holder is the one thread
 * that can touch it, and jansson may free it directly.
 */

/* True if someone besides the caller holds a reference to j. The acquire
 * load pairs with the release in other holders' sl_value_unref. */
static inline bool is_shared(const json_t *j)
{
    size_t rc = __atomic_load_n(&j->refcount, __ATOMIC_ACQUIRE);
    return rc > 1 && rc != SL__STATIC_REFCOUNT;
}

/* Before a jansson call that may drop a reference to j (NULL allowed):
 * returns whether j was pinned, to be passed to unpin after the call. A
 * container's own reference keeps j alive while it is pinned. */
static inline bool pin(json_t *j)
{
    if (j == NULL || !is_shared(j))
        return false;
    __atomic_add_fetch(&j->refcount, 1, __ATOMIC_RELAXED);
    return true;
}

static inline void unpin(json_t *j, bool pinned)
{
    if (pinned)
        sl_value_unref(V(j));
}

/* Take a reference. */
sl_value *sl_value_ref(sl_value *v)
{
    json_t *j = J(v);
    if (j != NULL && __atomic_load_n(&j->refcount, __ATOMIC_RELAXED) != SL__STATIC_REFCOUNT)
        __atomic_add_fetch(&j->refcount, 1, __ATOMIC_RELAXED);
    return v;
}

/*
 * j is a container whose last reference is being dropped. Take out of it
 * (and out of its unshared descendants, which json_delete will free too)
 * every child that someone else still holds, releasing our reference to
 * each through sl_value_unref. What is left for json_delete is reachable
 * only from j.
 */
static void release_shared_children(json_t *j)
{
    if (json_is_array(j)) {
        for (size_t i = json_array_size(j); i-- > 0;) {
            json_t *c = json_array_get(j, i);
            if (pin(c)) {
                json_array_remove(j, i);   /* from the end: no moves */
                unpin(c, true);
            } else {
                release_shared_children(c);   /* json_delete will free c */
            }
        }
    } else if (json_is_object(j)) {
        void *it = json_object_iter(j);
        while (it != NULL) {
            /* Deleting the current pair leaves the next one valid. */
            void *next = json_object_iter_next(j, it);
            json_t *c = json_object_iter_value(it);
            if (pin(c)) {
                json_object_deln(j, json_object_iter_key(it), json_object_iter_key_len(it));
                unpin(c, true);
            } else {
                release_shared_children(c);   /* json_delete will free c */
            }
            it = next;
        }
    }
}

/* Drop one reference; the last one frees the value (see above). */
void sl_value_unref(sl_value *v)
{
    json_t *j = J(v);
    if (j == NULL || __atomic_load_n(&j->refcount, __ATOMIC_RELAXED) == SL__STATIC_REFCOUNT)
        return;
    if (__atomic_sub_fetch(&j->refcount, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    release_shared_children(j);
    json_delete(j);
}

/* ------------------------------------------------------------ copy */

/*
 * Deep copy of j; NULL on out of memory. Strings and numbers are copied
 * too, although nothing here changes them in place: a copy that shared its
 * leaves would make every later release of either tree take the slow,
 * pinning path of release_shared_children for each leaf.
 */
static json_t *deep_copy(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
    case JSON_TRUE:
    case JSON_FALSE:
        return (json_t *)j;   /* immutable singletons */
    case JSON_INTEGER:
        return json_integer(json_integer_value(j));
    case JSON_REAL:
        return json_real(json_real_value(j));
    case JSON_STRING:
        return json_stringn_nocheck(json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        json_t *a = json_array();
        if (a == NULL)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            json_t *item = deep_copy(json_array_get(j, i));
            if (item == NULL || json_array_append_new(a, item) != 0)
                goto out_free_a;
        }
        return a;
out_free_a:
        sl_value_unref(V(a));
        return NULL;
    }
    case JSON_OBJECT: {
        json_t *o = json_object();
        if (o == NULL)
            return NULL;
        for (void *it = json_object_iter((json_t *)j); it != NULL;
             it = json_object_iter_next((json_t *)j, it)) {
            json_t *item = deep_copy(json_object_iter_value(it));
            if (item == NULL ||
                json_object_setn_new_nocheck(o, json_object_iter_key(it),
                                             json_object_iter_key_len(it), item) != 0)
                goto out_free_o;
        }
        return o;
out_free_o:
        sl_value_unref(V(o));
        return NULL;
    }
    }
    return NULL;
}

/* A deep copy; NULL reads as null. NULL only on out of memory. */
sl_value *sl_value_copy(const sl_value *v)
{
    if (v == NULL)
        return V(json_null());
    return V(deep_copy(CJ(v)));
}

/*
 * Copy on write. Only containers and strings can be shared usefully; the
 * singletons are immutable and never copied. On SL_ENOMEM *v is unchanged.
 */
int sl_value_unshare(sl_value **v)
{
    if (v == NULL)
        return SL_EINVAL;
    json_t *j = J(*v);
    if (j == NULL || !is_shared(j))
        return 0;
    json_t *copy = deep_copy(j);
    if (copy == NULL)
        return SL_ENOMEM;
    *v = V(copy);
    sl_value_unref(V(j));
    return 0;
}

/* ------------------------------------------------------------ inspection */

sl_type sl_value_type(const sl_value *v)
{
    if (v == NULL)
        return SL_TYPE_NULL;
    switch (json_typeof(CJ(v))) {
    case JSON_NULL:
        return SL_TYPE_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
        return SL_TYPE_BOOL;
    case JSON_INTEGER:
        return SL_TYPE_INT;
    case JSON_REAL:
        return SL_TYPE_DOUBLE;
    case JSON_STRING:
        return SL_TYPE_STRING;
    case JSON_ARRAY:
        return SL_TYPE_ARRAY;
    case JSON_OBJECT:
        return SL_TYPE_OBJECT;
    }
    return SL_TYPE_NULL;
}

bool sl_value_get_bool(const sl_value *v)
{
    return v != NULL && json_is_true(CJ(v));
}

/* Doubles are truncated toward zero and saturate at the int64 range. */
int64_t sl_value_get_int(const sl_value *v)
{
    if (v == NULL)
        return 0;
    if (json_is_integer(CJ(v)))
        return (int64_t)json_integer_value(CJ(v));
    if (json_is_real(CJ(v))) {
        double d = json_real_value(CJ(v));
        if (d >= 9223372036854775808.0)
            return INT64_MAX;
        if (d < -9223372036854775808.0)
            return INT64_MIN;
        return (int64_t)d;
    }
    return 0;
}

double sl_value_get_double(const sl_value *v)
{
    if (v == NULL)
        return 0.0;
    if (json_is_real(CJ(v)))
        return json_real_value(CJ(v));
    if (json_is_integer(CJ(v)))
        return (double)json_integer_value(CJ(v));
    return 0.0;
}

const char *sl_value_get_string(const sl_value *v, size_t *len)
{
    if (v == NULL || !json_is_string(CJ(v)))
        return NULL;
    if (len != NULL)
        *len = json_string_length(CJ(v));
    return json_string_value(CJ(v));
}

/* Exact comparison of an int64 with a double (no rounding of i). */
static bool int_equals_double(int64_t i, double d)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return false;
    if (d != trunc(d))
        return false;
    return (int64_t)d == i;
}

static bool equal(const json_t *a, const json_t *b)
{
    if (a == b)
        return true;
    json_type ta = json_typeof(a), tb = json_typeof(b);
    if (ta == JSON_INTEGER && tb == JSON_REAL)
        return int_equals_double(json_integer_value(a), json_real_value(b));
    if (ta == JSON_REAL && tb == JSON_INTEGER)
        return int_equals_double(json_integer_value(b), json_real_value(a));
    if (ta != tb)
        return false;
    switch (ta) {
    case JSON_NULL:
    case JSON_TRUE:
    case JSON_FALSE:
        return true;
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL:
        return json_real_value(a) == json_real_value(b);
    case JSON_STRING: {
        size_t n = json_string_length(a);
        return n == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), n) == 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        for (void *it = json_object_iter((json_t *)a); it != NULL;
             it = json_object_iter_next((json_t *)a, it)) {
            json_t *bv = json_object_getn(b, json_object_iter_key(it),
                                          json_object_iter_key_len(it));
            if (bv == NULL || !equal(json_object_iter_value(it), bv))
                return false;
        }
        return true;
    }
    }
    return false;
}

/* Deep equality; numbers compare by value across int and double; object
 * key order does not matter. NULL reads as null. */
bool sl_value_equal(const sl_value *a, const sl_value *b)
{
    json_t *na = json_null();
    return equal(a != NULL ? CJ(a) : na, b != NULL ? CJ(b) : na);
}

/* About the bytes v takes as compact JSON, without writing it: exact for
 * strings without escapes, 8 per number. */
size_t sl__value_size(const sl_value *v)
{
    const json_t *j = CJ(v);
    size_t total;
    if (j == NULL)
        return 4;
    switch (json_typeof(j)) {
    case JSON_NULL:
    case JSON_TRUE:
        return 4;
    case JSON_FALSE:
        return 5;
    case JSON_INTEGER:
    case JSON_REAL:
        return 8;
    case JSON_STRING:
        return json_string_length(j) + 2;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        total = n + 1;   /* brackets and commas */
        for (size_t i = 0; i < n; i++)
            total += sl__value_size(V(json_array_get(j, i)));
        return total;
    }
    case JSON_OBJECT:
        total = 2;
        for (void *it = json_object_iter((json_t *)j); it != NULL;
             it = json_object_iter_next((json_t *)j, it))
            total += json_object_iter_key_len(it) + 4 +
                     sl__value_size(V(json_object_iter_value(it)));
        return total;
    }
    return 0;
}

/* ------------------------------------------------------------ arrays */

size_t sl_array_len(const sl_value *a)
{
    return a != NULL ? json_array_size(CJ(a)) : 0;   /* 0 for non-arrays */
}

sl_value *sl_array_get(const sl_value *a, size_t i)
{
    return a != NULL ? V(json_array_get(CJ(a), i)) : NULL;
}

/* Takes ownership of item. SL_EINVAL for a NULL array or item, SL_ETYPE if
 * a is not an array, SL_ENOMEM. */
int sl_array_append(sl_value *a, sl_value *item)
{
    int rc;
    if (a == NULL || item == NULL) {
        rc = SL_EINVAL;
        goto out_drop;
    }
    if (!json_is_array(J(a))) {
        rc = SL_ETYPE;
        goto out_drop;
    }
    if (a == item) {
        rc = SL_EINVAL;
        goto out_drop;
    }
    /* json_array_append_new consumes item even when it fails. */
    bool pinned = pin(J(item));
    rc = json_array_append_new(J(a), J(item)) == 0 ? 0 : SL_ENOMEM;
    unpin(J(item), pinned);
    return rc;
out_drop:
    sl_value_unref(item);
    return rc;
}

/* json_array_set_new for i < length, with the old and new values pinned
 * when shared. Consumes item. */
static int replace_item(json_t *a, size_t i, json_t *item)
{
    json_t *old = json_array_get(a, i);
    bool pinned_old = pin(old), pinned_new = pin(item);
    int rc = json_array_set_new(a, i, item) == 0 ? 0 : SL_ENOMEM;
    unpin(item, pinned_new);
    unpin(old, pinned_old);
    return rc;
}

/* Takes ownership of item. SL_ERANGE if i >= length. */
int sl_array_set(sl_value *a, size_t i, sl_value *item)
{
    int rc;
    if (a == NULL || item == NULL || a == item) {
        rc = SL_EINVAL;
        goto out_drop;
    }
    if (!json_is_array(J(a))) {
        rc = SL_ETYPE;
        goto out_drop;
    }
    if (i >= json_array_size(J(a))) {
        rc = SL_ERANGE;
        goto out_drop;
    }
    return replace_item(J(a), i, J(item));
out_drop:
    sl_value_unref(item);
    return rc;
}

/* The i-th item made safe to modify: a shared item is replaced in the array
 * by its copy. NULL if out of range, not an array, or out of memory. */
sl_value *sl_array_get_mut(sl_value *a, size_t i)
{
    sl_value *item = sl_array_get(a, i);
    if (item == NULL || !is_shared(J(item)))
        return item;
    json_t *copy = deep_copy(J(item));
    if (copy == NULL)
        return NULL;
    if (replace_item(J(a), i, copy) != 0)
        return NULL;
    return V(copy);
}

/* ------------------------------------------------------------ objects */

size_t sl_object_len(const sl_value *o)
{
    return o != NULL ? json_object_size(CJ(o)) : 0;
}

sl_value *sl_object_get(const sl_value *o, const char *key)
{
    if (o == NULL || key == NULL)
        return NULL;
    return V(json_object_get(CJ(o), key));
}

sl_value *sl_object_getn(const sl_value *o, const char *key, size_t len)
{
    if (o == NULL || key == NULL)
        return NULL;
    return V(json_object_getn(CJ(o), key, len));
}

/* json_object_setn_new_nocheck with the replaced and new values pinned
 * when shared. Consumes v, even when it fails. */
static int set_member(json_t *o, const char *key, json_t *v)
{
    size_t len = strlen(key);
    json_t *old = json_object_getn(o, key, len);
    bool pinned_old = pin(old), pinned_new = pin(v);
    int rc = json_object_setn_new_nocheck(o, key, len, v) == 0 ? 0 : SL_ENOMEM;
    unpin(v, pinned_new);
    unpin(old, pinned_old);
    return rc;
}

/*
 * Takes ownership of v. Setting an existing key replaces its value in place
 * (the key keeps its position); a new key goes last. SL_EINVAL for NULL
 * arguments or o == v, SL_ETYPE if o is not an object, SL_ENOMEM.
 */
int sl_object_set(sl_value *o, const char *key, sl_value *v)
{
    int rc;
    if (o == NULL || key == NULL || v == NULL || o == v) {
        rc = SL_EINVAL;
        goto out_drop;
    }
    if (!json_is_object(J(o))) {
        rc = SL_ETYPE;
        goto out_drop;
    }
    return set_member(J(o), key, J(v));
out_drop:
    sl_value_unref(v);
    return rc;
}

/* SL_ENOTFOUND if key is absent, SL_ETYPE if o is not an object. */
int sl_object_del(sl_value *o, const char *key)
{
    if (o == NULL || key == NULL)
        return SL_EINVAL;
    if (!json_is_object(J(o)))
        return SL_ETYPE;
    json_t *old = json_object_get(J(o), key);
    if (old == NULL)
        return SL_ENOTFOUND;
    bool pinned = pin(old);
    json_object_del(J(o), key);
    unpin(old, pinned);
    return 0;
}

/* The value under key made safe to modify (see sl_array_get_mut). */
sl_value *sl_object_get_mut(sl_value *o, const char *key)
{
    sl_value *item = sl_object_get(o, key);
    if (item == NULL || !is_shared(J(item)))
        return item;
    json_t *copy = deep_copy(J(item));
    if (copy == NULL)
        return NULL;
    if (set_member(J(o), key, copy) != 0)
        return NULL;
    return V(copy);
}

void *sl_object_iter(const sl_value *o)
{
    return o != NULL ? json_object_iter(J(o)) : NULL;
}

void *sl_object_next(const sl_value *o, void *it)
{
    if (o == NULL || it == NULL)
        return NULL;
    return json_object_iter_next(J(o), it);
}

const char *sl_object_iter_key(void *it)
{
    return it != NULL ? json_object_iter_key(it) : NULL;
}

sl_value *sl_object_iter_value(void *it)
{
    return it != NULL ? V(json_object_iter_value(it)) : NULL;
}
