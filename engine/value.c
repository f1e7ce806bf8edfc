/*
 * Values (include/sluice/value.h): our own representation, laid out in
 * engine/value_internal.h.
 *
 * Why our own rather than a JSON library's tree (docs/decisions/0013): a
 * parsed event of seven fields costs 10 allocations here against about 20
 * in jansson's (an object, its hash table, a pair per member, a value per
 * member, a buffer per string), and freeing it needs no second pass to
 * order the release of shared children (below). Objects keep insertion
 * order, strings have a length and may hold NUL, integers are int64.
 *
 * References: counts are changed only atomically; the decrement that may
 * free is acquire-release, so the thread that frees a value is ordered
 * after every other holder's reads, and the sharing test of
 * sl_value_unshare is an acquire load for the same reason. A container
 * holds one reference to each child and drops it through sl_value_unref
 * when it is freed or the child is replaced, so a child someone else also
 * holds (a tee's copy, a split's element) simply outlives it.
 *
 * NaN and the infinities have no JSON form: sl_value_double() returns null
 * for them. Values are trees: adding a container to itself (directly or
 * through a child) is a programming error. Recursive operations (copy,
 * equal, dump, free) go as deep as the tree; the parser caps depth
 * (engine/json.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mem.h"
#include "engine/value_internal.h"
#include "sluice/error.h"
#include "sluice/value.h"

sl_value sl__null_value = {SL__STATIC_REFCOUNT, SL_TYPE_NULL, 0, 0};
sl_value sl__true_value = {SL__STATIC_REFCOUNT, SL_TYPE_BOOL, 0, 0};
sl_value sl__false_value = {SL__STATIC_REFCOUNT, SL_TYPE_BOOL, 0, 0};

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

static inline void header_init(sl_value *v, sl_type t)
{
    v->refcount = 1;
    v->type = (uint8_t)t;
    v->inline_block = 0;
    v->embedded = 0;
}

sl_value *sl_value_null(void)
{
    return &sl__null_value;
}

sl_value *sl_value_bool(bool b)
{
    return b ? &sl__true_value : &sl__false_value;
}

sl_value *sl_value_int(int64_t i)
{
    sl__int *v = sl__mem_alloc(sizeof(*v));
    if (v == NULL)
        return NULL;
    header_init(&v->h, SL_TYPE_INT);
    v->i = i;
    return &v->h;
}

/* NaN and the infinities have no JSON form: they read back as null. */
sl_value *sl_value_double(double d)
{
    if (!isfinite(d))
        return &sl__null_value;
    sl__double *v = sl__mem_alloc(sizeof(*v));
    if (v == NULL)
        return NULL;
    header_init(&v->h, SL_TYPE_DOUBLE);
    v->d = d;
    return &v->h;
}

sl_value *sl__string_new(const char *s, size_t len)
{
    if (len > SIZE_MAX - sizeof(sl__string) - 1)
        return NULL;
    sl__string *v = sl__mem_alloc(sizeof(*v) + len + 1);
    if (v == NULL)
        return NULL;
    header_init(&v->h, SL_TYPE_STRING);
    v->len = len;
    if (len > 0)
        memcpy(v->bytes, s, len);
    v->bytes[len] = '\0';
    return &v->h;
}

/* Copies len bytes (any bytes, NUL included) and NUL-terminates the copy. */
sl_value *sl_value_string(const char *s, size_t len)
{
    if (s == NULL && len > 0)
        return NULL;
    return sl__string_new(s, len);
}

sl_value *sl_value_cstring(const char *s)
{
    if (s == NULL)
        s = "";
    return sl__string_new(s, strlen(s));
}

sl_value *sl__array_new_sized(size_t cap)
{
    if (cap > (SIZE_MAX - sizeof(sl__array)) / sizeof(sl_value *))
        return NULL;
    sl__array *a = sl__mem_alloc(sizeof(*a) + cap * sizeof(sl_value *));
    if (a == NULL)
        return NULL;
    header_init(&a->h, SL_TYPE_ARRAY);
    a->h.inline_block = 1;
    a->items = (sl_value **)(a + 1);
    a->len = 0;
    a->cap = cap;
    a->counted = 0;
    return &a->h;
}

sl_value *sl_value_array(void)
{
    return sl__array_new_sized(0);
}

/* Room for cap members and kbytes key bytes, members first. */
static size_t block_size(size_t cap, size_t kbytes, bool *overflow)
{
    *overflow = cap > (SIZE_MAX / 2) / sizeof(sl__member) || kbytes > SIZE_MAX / 2;
    return cap * sizeof(sl__member) + kbytes;
}

sl_value *sl__object_new_sized(size_t cap, size_t kbytes)
{
    bool overflow;
    size_t bs = block_size(cap, kbytes, &overflow);
    if (overflow || bs > SIZE_MAX - sizeof(sl__object))
        return NULL;
    sl__object *o = sl__mem_alloc(sizeof(*o) + bs);
    if (o == NULL)
        return NULL;
    header_init(&o->h, SL_TYPE_OBJECT);
    o->h.inline_block = 1;
    o->m = (sl__member *)(o + 1);
    o->len = 0;
    o->cap = cap;
    o->keys = (char *)(o->m + cap);
    o->kused = 0;
    o->kcap = kbytes;
    o->index = NULL;
    o->index_cap = 0;
    o->counted = 0;
    return &o->h;
}

sl_value *sl_value_object(void)
{
    return sl__object_new_sized(0, 0);
}

/* ------------------------------------------------------------ references */

/* The value whose count v's references are: v, or the container an
 * embedded scalar lives in. */
static inline sl_value *owner(const sl_value *v)
{
    if (v->embedded)
        return (sl_value *)((const char *)v - v->refcount);
    return (sl_value *)v;
}

/* True if someone besides the caller holds a reference to v. The acquire
 * load pairs with the release in other holders' sl_value_unref. */
static inline bool is_shared(const sl_value *v)
{
    uint32_t rc = __atomic_load_n(&owner(v)->refcount, __ATOMIC_ACQUIRE);
    return rc > 1 && rc != SL__STATIC_REFCOUNT;
}

/* Take a reference (the singletons' count is never touched). */
sl_value *sl_value_ref(sl_value *v)
{
    if (v != NULL && v->type > SL_TYPE_BOOL)
        __atomic_add_fetch(&owner(v)->refcount, 1, __ATOMIC_RELAXED);
    return v;
}

static void value_free(sl_value *v);
static sl_value *deep_copy(const sl_value *v);

/* Whether container c's slot holding v has a reference to drop: not for
 * an embedded scalar of c's own, nor for a singleton. */
static inline bool counted_child(const sl_value *c, const sl_value *v)
{
    return v->type > SL_TYPE_BOOL && !(v->embedded && owner(v) == c);
}

static inline size_t *counted_of(sl_value *c)
{
    return c->type == SL_TYPE_OBJECT ? &SL__OBJECT(c)->counted : &SL__ARRAY(c)->counted;
}

/* Container c puts v in a slot. */
static inline void slot_took(sl_value *c, const sl_value *v)
{
    if (counted_child(c, v))
        (*counted_of(c))++;
}

/* Container c lets go of its child v: an embedded scalar of c's own is
 * only forgotten, anything else loses c's reference. */
static inline void drop_child(sl_value *c, sl_value *v)
{
    if (!counted_child(c, v))
        return;
    (*counted_of(c))--;
    sl_value_unref(v);
}

/* Free v, whose last reference is gone, dropping its references to its
 * children. */
static void value_free(sl_value *v)
{
    switch ((sl_type)v->type) {
    case SL_TYPE_ARRAY: {
        sl__array *a = SL__ARRAY(v);
        for (size_t i = 0; a->counted > 0 && i < a->len; i++)
            drop_child(v, a->items[i]);
        if (!v->inline_block)
            sl__mem_free(a->items);
        break;
    }
    case SL_TYPE_OBJECT: {
        sl__object *o = SL__OBJECT(v);
        for (size_t i = 0; o->counted > 0 && i < o->len; i++)
            drop_child(v, o->m[i].value);
        if (!v->inline_block)
            sl__mem_free(o->m);
        free(o->index);
        break;
    }
    default:
        break;
    }
    sl__mem_free(v);
}

/* Drop one reference; the last one frees the value. Null and the booleans
 * are the singletons (the type never changes, so reading it is no race),
 * whose count is never touched. */
void sl_value_unref(sl_value *v)
{
    if (v == NULL || v->type <= SL_TYPE_BOOL)
        return;
    v = owner(v);
    /* The sole holder needs no read-modify-write: nobody else can be
     * changing the count (an acquire load orders us after past holders). */
    if (__atomic_load_n(&v->refcount, __ATOMIC_ACQUIRE) == 1 ||
        __atomic_sub_fetch(&v->refcount, 1, __ATOMIC_ACQ_REL) == 0)
        value_free(v);
}

/*
 * v (a reference the caller passes on) made fit to go into a container:
 * an embedded scalar is replaced by a copy of its own, so no container
 * ever holds a reference into another container (or into itself, which
 * its uncounted own slots would never drop, or into an ancestor, which
 * would be a cycle). Scalars are immutable, so the copy is the same
 * value. NULL on out of memory (the reference is dropped either way).
 */
static sl_value *unembed(sl_value *v)
{
    if (!v->embedded)
        return v;
    sl_value *copy = deep_copy(v);
    sl_value_unref(v);
    return copy;
}

/* ------------------------------------------------------------ objects (internal) */

/* FNV-1a, for the index of large objects. */
static inline uint32_t key_hash(const char *key, size_t klen)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < klen; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    return h;
}

/* Insert member position pos into the index (which has a free slot). */
static void index_put(sl__object *o, size_t pos)
{
    size_t mask = o->index_cap - 1;
    size_t slot = key_hash(o->m[pos].key, o->m[pos].klen) & mask;
    while (o->index[slot] != 0)
        slot = (slot + 1) & mask;
    o->index[slot] = (uint32_t)(pos + 1);
}

/* (Re)build the index for the current members when the object is large
 * enough, sized for cap members at half load. 0 or SL_ENOMEM (then the
 * object has no index, which lookups handle by scanning). */
static int index_rebuild(sl__object *o)
{
    free(o->index);
    o->index = NULL;
    o->index_cap = 0;
    if (o->len <= SL__OBJ_INDEX_MIN || o->cap > UINT32_MAX / 4)
        return 0;
    size_t icap = 64;
    while (icap < 2 * o->cap)
        icap *= 2;
    o->index = calloc(icap, sizeof(uint32_t));
    if (o->index == NULL)
        return SL_ENOMEM;
    o->index_cap = icap;
    for (size_t i = 0; i < o->len; i++)
        index_put(o, i);
    return 0;
}

/* Position of key[0..klen) among o's members, or -1. */
static inline ptrdiff_t obj_find(const sl__object *o, const char *key, size_t klen)
{
    if (o->index != NULL) {
        size_t mask = o->index_cap - 1;
        for (size_t slot = key_hash(key, klen) & mask;; slot = (slot + 1) & mask) {
            uint32_t p = o->index[slot];
            if (p == 0)
                return -1;
            const sl__member *m = &o->m[p - 1];
            if (m->klen == klen && memcmp(m->key, key, klen) == 0)
                return (ptrdiff_t)(p - 1);
        }
    }
    for (size_t i = 0; i < o->len; i++)
        if (o->m[i].klen == klen && memcmp(o->m[i].key, key, klen) == 0)
            return (ptrdiff_t)i;
    return -1;
}

/* Make room for one more member whose key takes kneed bytes: a new block
 * (members doubled as needed, live keys copied together). 0 or SL_ENOMEM
 * (o unchanged). */
static int obj_grow(sl__object *o, size_t kneed)
{
    size_t live = 0;
    for (size_t i = 0; i < o->len; i++)
        live += o->m[i].klen + 1;
    size_t cap = o->cap;
    if (o->len + 1 > cap)
        cap = cap < 4 ? 8 : cap * 2;
    size_t kcap = 2 * (live + kneed);
    if (kcap < 64)
        kcap = 64;
    bool overflow;
    size_t bs = block_size(cap, kcap, &overflow);
    if (overflow)
        return SL_ENOMEM;
    /* From the record allocator: the block is often freed by another
     * thread (a sink), which glibc's arenas handle under a lock. */
    sl__member *m = sl__mem_alloc(bs);
    if (m == NULL)
        return SL_ENOMEM;
    char *keys = (char *)(m + cap);
    size_t used = 0;
    for (size_t i = 0; i < o->len; i++) {
        memcpy(keys + used, o->m[i].key, o->m[i].klen + 1);
        m[i].key = keys + used;
        m[i].klen = o->m[i].klen;
        m[i].value = o->m[i].value;
        used += o->m[i].klen + 1;
    }
    if (!o->h.inline_block)
        sl__mem_free(o->m);
    o->h.inline_block = 0;
    o->m = m;
    o->cap = cap;
    o->keys = keys;
    o->kused = used;
    o->kcap = kcap;
    if (o->index != NULL || o->len + 1 > SL__OBJ_INDEX_MIN)
        (void)index_rebuild(o);   /* without an index, lookups scan */
    return 0;
}

/* Append a member for a key known to be absent. Takes v, also on failure. */
static int obj_append(sl__object *o, const char *key, size_t klen, sl_value *v)
{
    if (o->len + 1 > o->cap || o->kcap - o->kused < klen + 1) {
        if (klen > SIZE_MAX / 4 || obj_grow(o, klen + 1) != 0) {
            sl_value_unref(v);
            return SL_ENOMEM;
        }
    }
    char *k = o->keys + o->kused;
    memcpy(k, key, klen);
    k[klen] = '\0';
    o->kused += klen + 1;
    sl__member *m = &o->m[o->len];
    m->key = k;
    m->klen = klen;
    m->value = v;
    slot_took(&o->h, v);
    o->len++;
    if (o->index != NULL)
        index_put(o, o->len - 1);
    else if (o->len > SL__OBJ_INDEX_MIN)
        (void)index_rebuild(o);
    return 0;
}

int sl__object_setn(sl_value *ov, const char *key, size_t klen, sl_value *v)
{
    sl__object *o = SL__OBJECT(ov);
    ptrdiff_t at = obj_find(o, key, klen);
    if (at >= 0) {
        sl_value *old = o->m[at].value;
        o->m[at].value = v;
        slot_took(ov, v);
        drop_child(ov, old);
        return 0;
    }
    return obj_append(o, key, klen, v);
}

/* ------------------------------------------------------------ building */

static inline size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Bytes an embedded scalar of item it takes. */
static inline size_t embedded_size(const sl__item *it)
{
    if (it->kind == SL_TYPE_STRING)
        return align8(sizeof(sl__string) + it->u.str.len + 1);
    return sizeof(sl__int);   /* sl__double is the same size */
}

/* Item it as a value of its own (for a container too large to embed). */
static sl_value *box(const sl__item *it)
{
    switch (it->kind) {
    case SL_TYPE_INT:
        return sl_value_int(it->u.i);
    case SL_TYPE_DOUBLE:
        return sl_value_double(it->u.d);
    default:
        return sl__string_new(it->u.str.s, it->u.str.len);
    }
}

/* Write item it as an embedded scalar of container c at p. */
static sl_value *embed(sl_value *c, char *p, const sl__item *it)
{
    sl_value *v = (sl_value *)p;
    v->refcount = (uint32_t)(p - (char *)c);
    v->type = it->kind;
    v->inline_block = 0;
    v->embedded = 1;
    switch (it->kind) {
    case SL_TYPE_INT:
        SL__INT(v)->i = it->u.i;
        break;
    case SL_TYPE_DOUBLE:
        SL__DOUBLE(v)->d = it->u.d;
        break;
    default:
        SL__STRING(v)->len = it->u.str.len;
        if (it->u.str.len > 0)
            memcpy(SL__STRING(v)->bytes, it->u.str.s, it->u.str.len);
        SL__STRING(v)->bytes[it->u.str.len] = '\0';
        break;
    }
    return v;
}

/* Add member key -> v to o, built with room for it; a repeated key keeps
 * its position and takes the new value. */
static void build_put(sl__object *o, const char *key, size_t klen, sl_value *v)
{
    ptrdiff_t at = -1;
    if (o->index != NULL) {
        at = obj_find(o, key, klen);
    } else {
        for (size_t j = 0; j < o->len; j++) {
            const sl__member *m = &o->m[j];
            if (m->klen == klen && (klen == 0 || m->key[0] == key[0]) &&
                memcmp(m->key, key, klen) == 0) {
                at = (ptrdiff_t)j;
                break;
            }
        }
    }
    if (at >= 0) {
        sl_value *old = o->m[at].value;
        o->m[at].value = v;
        slot_took(&o->h, v);
        drop_child(&o->h, old);
        return;
    }
    char *k = o->keys + o->kused;
    memcpy(k, key, klen);
    k[klen] = '\0';
    o->kused += klen + 1;
    sl__member *m = &o->m[o->len++];
    m->key = k;
    m->klen = klen;
    m->value = v;
    slot_took(&o->h, v);
    if (o->index != NULL)
        index_put(o, o->len - 1);
    else if (o->len > SL__OBJ_INDEX_MIN)
        (void)index_rebuild(o);   /* without an index, lookups scan */
}

sl_value *sl__container_build(bool object, sl__item *items, size_t n, size_t extra_members,
                              size_t extra_kbytes)
{
    size_t kbytes = extra_kbytes, sbytes = 0, cap = n + extra_members;
    for (size_t i = 0; i < n; i++) {
        if (object)
            kbytes += items[i].klen + 1;
        if (items[i].v == NULL)
            sbytes += embedded_size(&items[i]);
    }
    size_t head = object ? sizeof(sl__object) + cap * sizeof(sl__member) + kbytes
                         : sizeof(sl__array) + cap * sizeof(sl_value *);
    head = align8(head);
    /* Embedded scalars find their container by a 32-bit offset. */
    bool do_embed = head + sbytes <= UINT32_MAX;
    sl_value *c = sl__mem_alloc(head + (do_embed ? sbytes : 0));
    if (c == NULL)
        goto out_drop;
    header_init(c, object ? SL_TYPE_OBJECT : SL_TYPE_ARRAY);
    c->inline_block = 1;
    sl__object *o = SL__OBJECT(c);
    sl__array *a = SL__ARRAY(c);
    if (object) {
        o->m = (sl__member *)(o + 1);
        o->len = 0;
        o->cap = cap;
        o->keys = (char *)(o->m + cap);
        o->kused = 0;
        o->kcap = kbytes;
        o->index = NULL;
        o->index_cap = 0;
        o->counted = 0;
    } else {
        a->items = (sl_value **)(a + 1);
        a->len = 0;
        a->cap = cap;
        a->counted = 0;
    }
    char *sp = (char *)c + head;
    for (size_t i = 0; i < n; i++) {
        sl_value *v = items[i].v;
        items[i].v = NULL;
        if (v == NULL) {
            if (do_embed) {
                v = embed(c, sp, &items[i]);
                sp += embedded_size(&items[i]);
            } else if ((v = box(&items[i])) == NULL) {
                sl_value_unref(c);
                goto out_drop;
            }
        }
        if (object) {
            build_put(o, items[i].key, items[i].klen, v);
        } else {
            a->items[a->len++] = v;
            slot_took(c, v);
        }
    }
    return c;
out_drop:
    for (size_t i = 0; i < n; i++) {
        sl_value_unref(items[i].v);
        items[i].v = NULL;
    }
    return NULL;
}

/* The public form of sl__container_build for objects (include/sluice/value.h). */
sl_value *sl_object_build(sl_member_init *members, size_t n, size_t spare_members,
                          size_t spare_key_bytes)
{
    /* Sizes past a quarter of the address space cannot be allocated
     * anyway; bounding them keeps sl__container_build's sums from
     * wrapping. */
    const size_t limit = SIZE_MAX / 4;
    sl__item stack[32];
    sl__item *items = stack;
    size_t taken = 0;   /* members whose v moved into items */
    size_t bytes = spare_key_bytes;
    if (n > limit / sizeof(sl__member) || spare_members > limit / sizeof(sl__member) - n ||
        spare_key_bytes > limit)
        goto fail;
    if (n > sizeof(stack) / sizeof(stack[0])) {
        items = n <= SIZE_MAX / sizeof(*items) ? sl__mem_alloc(n * sizeof(*items)) : NULL;
        if (items == NULL)
            goto fail;
    }
    for (; taken < n; taken++) {
        sl_member_init *m = &members[taken];
        sl__item *it = &items[taken];
        it->key = m->key;
        it->klen = m->key_len;
        it->kind = (uint8_t)m->type;
        it->v = NULL;
        if (m->key_len > limit - bytes)
            goto fail;
        bytes += m->key_len + 1;
        if (m->v != NULL) {
            /* Like sl_object_set: never a reference into another container. */
            it->v = unembed(m->v);
            m->v = NULL;
            if (it->v == NULL) {
                taken++;   /* unembed dropped it */
                goto fail;
            }
            continue;
        }
        switch (m->type) {
        case SL_TYPE_NULL:
            it->v = &sl__null_value;
            break;
        case SL_TYPE_BOOL:
            it->v = m->u.b ? &sl__true_value : &sl__false_value;
            break;
        case SL_TYPE_INT:
            it->u.i = m->u.i;
            break;
        case SL_TYPE_DOUBLE:
            /* As sl_value_double: JSON has no NaN or infinity. */
            if (isfinite(m->u.d))
                it->u.d = m->u.d;
            else
                it->v = &sl__null_value;
            break;
        case SL_TYPE_STRING:
            if ((m->u.str.s == NULL && m->u.str.len > 0) || m->u.str.len > limit - bytes)
                goto fail;
            bytes += m->u.str.len + 1;
            it->u.str.s = m->u.str.s;
            it->u.str.len = m->u.str.len;
            break;
        default:
            goto fail;   /* arrays and objects come as v */
        }
    }
    sl_value *o = sl__container_build(true, items, n, spare_members, spare_key_bytes);
    if (items != stack)
        sl__mem_free(items);
    return o;
fail:
    for (size_t i = 0; i < n; i++) {
        if (i < taken)
            sl_value_unref(items[i].v);
        sl_value_unref(members[i].v);
        members[i].v = NULL;
    }
    if (items != stack)
        sl__mem_free(items);
    return NULL;
}

/* ------------------------------------------------------------ copy */

/*
 * Deep copy of v; NULL on out of memory. Strings and numbers are copied
 * too, although nothing changes them in place, so that the copy is wholly
 * the new holder's.
 */
static sl_value *deep_copy(const sl_value *v)
{
    switch ((sl_type)v->type) {
    case SL_TYPE_NULL:
    case SL_TYPE_BOOL:
        return (sl_value *)v;   /* immutable singletons */
    case SL_TYPE_INT:
        return sl_value_int(SL__INT(v)->i);
    case SL_TYPE_DOUBLE:
        return sl_value_double(SL__DOUBLE(v)->d);
    case SL_TYPE_STRING:
        return sl__string_new(SL__STRING(v)->bytes, SL__STRING(v)->len);
    case SL_TYPE_ARRAY: {
        const sl__array *src = SL__ARRAY(v);
        sl_value *a = sl__array_new_sized(src->len);
        if (a == NULL)
            return NULL;
        for (size_t i = 0; i < src->len; i++) {
            sl_value *item = deep_copy(src->items[i]);
            if (item == NULL) {
                sl_value_unref(a);
                return NULL;
            }
            SL__ARRAY(a)->items[SL__ARRAY(a)->len++] = item;
            slot_took(a, item);
        }
        return a;
    }
    case SL_TYPE_OBJECT: {
        const sl__object *src = SL__OBJECT(v);
        size_t kbytes = 0;
        for (size_t i = 0; i < src->len; i++)
            kbytes += src->m[i].klen + 1;
        /* Slack for a few more members: a copy is usually made to write. */
        sl_value *o = sl__object_new_sized(src->len + 4, kbytes + 64);
        if (o == NULL)
            return NULL;
        for (size_t i = 0; i < src->len; i++) {
            sl_value *item = deep_copy(src->m[i].value);
            if (item == NULL ||
                obj_append(SL__OBJECT(o), src->m[i].key, src->m[i].klen, item) != 0) {
                sl_value_unref(o);
                return NULL;
            }
        }
        return o;
    }
    }
    return NULL;
}

/* A deep copy; NULL reads as null. NULL only on out of memory. */
sl_value *sl_value_copy(const sl_value *v)
{
    if (v == NULL)
        return &sl__null_value;
    return deep_copy(v);
}

/*
 * Copy on write. Only containers and strings can be shared usefully; the
 * singletons are immutable and never copied. On SL_ENOMEM *v is unchanged.
 */
int sl_value_unshare(sl_value **v)
{
    if (v == NULL)
        return SL_EINVAL;
    sl_value *j = *v;
    if (j == NULL || !is_shared(j))
        return 0;
    sl_value *copy = deep_copy(j);
    if (copy == NULL)
        return SL_ENOMEM;
    *v = copy;
    sl_value_unref(j);
    return 0;
}

/* ------------------------------------------------------------ inspection */

sl_type sl_value_type(const sl_value *v)
{
    return v == NULL ? SL_TYPE_NULL : (sl_type)v->type;
}

bool sl_value_get_bool(const sl_value *v)
{
    return v == &sl__true_value;
}

/* Doubles are truncated toward zero and saturate at the int64 range. */
int64_t sl_value_get_int(const sl_value *v)
{
    if (v == NULL)
        return 0;
    if (v->type == SL_TYPE_INT)
        return SL__INT(v)->i;
    if (v->type == SL_TYPE_DOUBLE) {
        double d = SL__DOUBLE(v)->d;
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
    if (v->type == SL_TYPE_DOUBLE)
        return SL__DOUBLE(v)->d;
    if (v->type == SL_TYPE_INT)
        return (double)SL__INT(v)->i;
    return 0.0;
}

const char *sl_value_get_string(const sl_value *v, size_t *len)
{
    if (v == NULL || v->type != SL_TYPE_STRING)
        return NULL;
    if (len != NULL)
        *len = SL__STRING(v)->len;
    return SL__STRING(v)->bytes;
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

static bool equal(const sl_value *a, const sl_value *b)
{
    if (a == b)
        return true;
    sl_type ta = (sl_type)a->type, tb = (sl_type)b->type;
    if (ta == SL_TYPE_INT && tb == SL_TYPE_DOUBLE)
        return int_equals_double(SL__INT(a)->i, SL__DOUBLE(b)->d);
    if (ta == SL_TYPE_DOUBLE && tb == SL_TYPE_INT)
        return int_equals_double(SL__INT(b)->i, SL__DOUBLE(a)->d);
    if (ta != tb)
        return false;
    switch (ta) {
    case SL_TYPE_NULL:
        return true;
    case SL_TYPE_BOOL:
        return false;   /* the singletons: equal only if the same one */
    case SL_TYPE_INT:
        return SL__INT(a)->i == SL__INT(b)->i;
    case SL_TYPE_DOUBLE:
        return SL__DOUBLE(a)->d == SL__DOUBLE(b)->d;
    case SL_TYPE_STRING: {
        size_t n = SL__STRING(a)->len;
        return n == SL__STRING(b)->len && memcmp(SL__STRING(a)->bytes, SL__STRING(b)->bytes, n) == 0;
    }
    case SL_TYPE_ARRAY: {
        const sl__array *x = SL__ARRAY(a), *y = SL__ARRAY(b);
        if (x->len != y->len)
            return false;
        for (size_t i = 0; i < x->len; i++)
            if (!equal(x->items[i], y->items[i]))
                return false;
        return true;
    }
    case SL_TYPE_OBJECT: {
        const sl__object *x = SL__OBJECT(a), *y = SL__OBJECT(b);
        if (x->len != y->len)
            return false;
        for (size_t i = 0; i < x->len; i++) {
            ptrdiff_t at = obj_find(y, x->m[i].key, x->m[i].klen);
            if (at < 0 || !equal(x->m[i].value, y->m[at].value))
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
    return equal(a != NULL ? a : &sl__null_value, b != NULL ? b : &sl__null_value);
}

/* About the bytes v takes as compact JSON, without writing it: exact for
 * strings without escapes, 8 per number. */
size_t sl__value_size(const sl_value *v)
{
    size_t total;
    if (v == NULL)
        return 4;
    switch ((sl_type)v->type) {
    case SL_TYPE_NULL:
        return 4;
    case SL_TYPE_BOOL:
        return v == &sl__true_value ? 4 : 5;
    case SL_TYPE_INT:
    case SL_TYPE_DOUBLE:
        return 8;
    case SL_TYPE_STRING:
        return SL__STRING(v)->len + 2;
    case SL_TYPE_ARRAY: {
        const sl__array *a = SL__ARRAY(v);
        total = a->len + 1;   /* brackets and commas */
        for (size_t i = 0; i < a->len; i++)
            total += sl__value_size(a->items[i]);
        return total;
    }
    case SL_TYPE_OBJECT: {
        const sl__object *o = SL__OBJECT(v);
        total = 2;
        for (size_t i = 0; i < o->len; i++)
            total += o->m[i].klen + 4 + sl__value_size(o->m[i].value);
        return total;
    }
    }
    return 0;
}

/* ------------------------------------------------------------ arrays */

static inline bool is_type(const sl_value *v, sl_type t)
{
    return v != NULL && v->type == t;
}

size_t sl_array_len(const sl_value *a)
{
    return is_type(a, SL_TYPE_ARRAY) ? SL__ARRAY(a)->len : 0;   /* 0 for non-arrays */
}

sl_value *sl_array_get(const sl_value *a, size_t i)
{
    if (!is_type(a, SL_TYPE_ARRAY) || i >= SL__ARRAY(a)->len)
        return NULL;
    return SL__ARRAY(a)->items[i];
}

int sl__array_push(sl_value *av, sl_value *item)
{
    sl__array *a = SL__ARRAY(av);
    if (a->len == a->cap) {
        size_t cap = a->cap < 4 ? 8 : a->cap * 2;
        if (cap > SIZE_MAX / 2 / sizeof(sl_value *)) {
            sl_value_unref(item);
            return SL_ENOMEM;
        }
        /* A new vector from the record allocator (see obj_grow). */
        sl_value **items = sl__mem_alloc(cap * sizeof(*items));
        if (items == NULL) {
            sl_value_unref(item);
            return SL_ENOMEM;
        }
        if (a->len > 0)
            memcpy(items, a->items, a->len * sizeof(*items));
        if (!av->inline_block)
            sl__mem_free(a->items);
        av->inline_block = 0;
        a->items = items;
        a->cap = cap;
    }
    a->items[a->len++] = item;
    slot_took(av, item);
    return 0;
}

/* Takes ownership of item. SL_EINVAL for a NULL array or item, SL_ETYPE if
 * a is not an array, SL_ENOMEM. */
int sl_array_append(sl_value *a, sl_value *item)
{
    int rc;
    if (a == NULL || item == NULL || a == item) {
        rc = SL_EINVAL;
        goto out_drop;
    }
    if (a->type != SL_TYPE_ARRAY) {
        rc = SL_ETYPE;
        goto out_drop;
    }
    if ((item = unembed(item)) == NULL)
        return SL_ENOMEM;
    return sl__array_push(a, item);
out_drop:
    sl_value_unref(item);
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
    if (a->type != SL_TYPE_ARRAY) {
        rc = SL_ETYPE;
        goto out_drop;
    }
    if (i >= SL__ARRAY(a)->len) {
        rc = SL_ERANGE;
        goto out_drop;
    }
    if ((item = unembed(item)) == NULL)
        return SL_ENOMEM;
    sl_value *old = SL__ARRAY(a)->items[i];
    SL__ARRAY(a)->items[i] = item;
    slot_took(a, item);
    drop_child(a, old);
    return 0;
out_drop:
    sl_value_unref(item);
    return rc;
}

/* The i-th item made safe to modify: a shared item is replaced in the array
 * by its copy. NULL if out of range, not an array, or out of memory. */
sl_value *sl_array_get_mut(sl_value *a, size_t i)
{
    sl_value *item = sl_array_get(a, i);
    if (item == NULL || !is_shared(item))
        return item;
    sl_value *copy = deep_copy(item);
    if (copy == NULL)
        return NULL;
    SL__ARRAY(a)->items[i] = copy;
    slot_took(a, copy);
    drop_child(a, item);
    return copy;
}

/* ------------------------------------------------------------ objects */

size_t sl_object_len(const sl_value *o)
{
    return is_type(o, SL_TYPE_OBJECT) ? SL__OBJECT(o)->len : 0;
}

sl_value *sl_object_getn(const sl_value *o, const char *key, size_t len)
{
    if (!is_type(o, SL_TYPE_OBJECT) || key == NULL)
        return NULL;
    ptrdiff_t at = obj_find(SL__OBJECT(o), key, len);
    return at < 0 ? NULL : SL__OBJECT(o)->m[at].value;
}

sl_value *sl_object_get(const sl_value *o, const char *key)
{
    if (key == NULL)
        return NULL;
    return sl_object_getn(o, key, strlen(key));
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
    if (o->type != SL_TYPE_OBJECT) {
        rc = SL_ETYPE;
        goto out_drop;
    }
    if ((v = unembed(v)) == NULL)
        return SL_ENOMEM;
    return sl__object_setn(o, key, strlen(key), v);
out_drop:
    sl_value_unref(v);
    return rc;
}

/* SL_ENOTFOUND if key is absent, SL_ETYPE if o is not an object. The key's
 * bytes stay in the block until it next grows. */
int sl_object_del(sl_value *ov, const char *key)
{
    if (ov == NULL || key == NULL)
        return SL_EINVAL;
    if (ov->type != SL_TYPE_OBJECT)
        return SL_ETYPE;
    sl__object *o = SL__OBJECT(ov);
    ptrdiff_t at = obj_find(o, key, strlen(key));
    if (at < 0)
        return SL_ENOTFOUND;
    sl_value *old = o->m[at].value;
    memmove(&o->m[at], &o->m[at + 1], (o->len - (size_t)at - 1) * sizeof(sl__member));
    o->len--;
    if (o->index != NULL)
        (void)index_rebuild(o);   /* without an index, lookups scan */
    drop_child(ov, old);
    return 0;
}

/* The value under key made safe to modify (see sl_array_get_mut). */
sl_value *sl_object_get_mut(sl_value *o, const char *key)
{
    if (!is_type(o, SL_TYPE_OBJECT) || key == NULL)
        return NULL;
    ptrdiff_t at = obj_find(SL__OBJECT(o), key, strlen(key));
    if (at < 0)
        return NULL;
    sl_value *item = SL__OBJECT(o)->m[at].value;
    if (!is_shared(item))
        return item;
    sl_value *copy = deep_copy(item);
    if (copy == NULL)
        return NULL;
    SL__OBJECT(o)->m[at].value = copy;
    slot_took(o, copy);
    drop_child(o, item);
    return copy;
}

/* An iterator is a pointer to a member; any change to the object ends the
 * iteration's validity. */
void *sl_object_iter(const sl_value *o)
{
    if (!is_type(o, SL_TYPE_OBJECT) || SL__OBJECT(o)->len == 0)
        return NULL;
    return SL__OBJECT(o)->m;
}

void *sl_object_next(const sl_value *o, void *it)
{
    if (!is_type(o, SL_TYPE_OBJECT) || it == NULL)
        return NULL;
    sl__member *m = (sl__member *)it + 1;
    return m < SL__OBJECT(o)->m + SL__OBJECT(o)->len ? m : NULL;
}

const char *sl_object_iter_key(void *it)
{
    return it != NULL ? ((sl__member *)it)->key : NULL;
}

sl_value *sl_object_iter_value(void *it)
{
    return it != NULL ? ((sl__member *)it)->value : NULL;
}
