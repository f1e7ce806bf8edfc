/*
 * Records (include/sluice/record.h).
 *
 * A record is allocated for every line a source reads, so its layout keeps
 * that cheap:
 *   - one allocation holds the struct and the payload bytes; a later, longer
 *     payload moves to its own buffer;
 *   - fields and metadata objects are created only when first written: an
 *     unwritten fields object reads as one shared, immutable empty object;
 *   - the source name is interned (stage names are few and live for the
 *     process), so positions copy by pointer.
 *
 * Copies (a tee) share the fields and metadata objects by reference; the
 * first write through the record API unshares them (copy on write, see
 * value.h), so branches never see each other's changes.
 *
 * Thread: a record has one owner at a time (record.h); the interned names
 * and the shared empty object are safe to reach from any thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/mem.h"
#include "engine/record_internal.h"
#include "engine/value_internal.h"
#include "sluice/error.h"
#include "sluice/record.h"

struct sl_record {
    sl_value *fields;       /* object; NULL reads as the shared empty object */
    sl_value *meta;         /* object; NULL until a key is set */
    char *payload;          /* inline_buf or a heap buffer; NUL-terminated */
    size_t payload_len;     /* bytes in payload, without the NUL */
    size_t inline_cap;      /* payload bytes inline_buf holds, without the NUL */
    sl_position pos;        /* source interned, locator owned */
    int64_t ingest_ns;      /* CLOCK_MONOTONIC at creation */
    size_t fields_size;     /* cached sl__value_size of fields, or SIZE_UNKNOWN */
    sl__ackref ack;         /* first acknowledgement reference (acks.h) */
    sl__ackref *ack_more;   /* further ones (a batch), or NULL */
    uint32_t n_more;        /* entries used in ack_more */
    uint32_t cap_more;      /* entries allocated in ack_more */
    char inline_buf[];      /* inline_cap + 1 bytes */
};

/* fields_size when it must be computed again. */
#define SIZE_UNKNOWN SIZE_MAX

/* ------------------------------------------------------------ shared state */

static pthread_once_t empty_once = PTHREAD_ONCE_INIT;
static sl_value *empty_fields;   /* immutable after empty_once */

static void empty_fields_init(void)
{
    empty_fields = sl_value_object();
}

/* Released when the process ends, so that leak checkers (valgrind sees
 * only an interior pointer into the allocator's block) report nothing.
 * Every thread that reads it has been joined by then. */
__attribute__((destructor)) static void empty_fields_fini(void)
{
    sl_value_unref(empty_fields);
    empty_fields = NULL;
}

/* The object that unwritten fields read as. NULL only if it could not be
 * allocated, which reads as an empty value too. */
static const sl_value *shared_empty_fields(void)
{
    pthread_once(&empty_once, empty_fields_init);
    return empty_fields;
}

/* Interned source names: a list that only grows, guarded by intern_mu. */
struct interned {
    struct interned *next;  /* guarded by intern_mu */
    char name[];            /* immutable */
};

static pthread_mutex_t intern_mu = PTHREAD_MUTEX_INITIALIZER;
static struct interned *intern_head;   /* guarded by intern_mu */
/* The name this thread interned last: sources set the same name on every
 * record, so the lock is taken once per thread and name. */
static _Thread_local const char *intern_last;

/*
 * A process-lifetime copy of s, the same pointer for equal strings. NULL on
 * out of memory. Thread: any.
 */
static const char *intern(const char *s)
{
    if (intern_last != NULL && strcmp(intern_last, s) == 0)
        return intern_last;
    pthread_mutex_lock(&intern_mu);
    struct interned *it;
    for (it = intern_head; it != NULL; it = it->next)
        if (strcmp(it->name, s) == 0)
            break;
    if (it == NULL) {
        size_t len = strlen(s);
        it = malloc(sizeof(*it) + len + 1);
        if (it != NULL) {
            memcpy(it->name, s, len + 1);
            it->next = intern_head;
            intern_head = it;
        }
    }
    pthread_mutex_unlock(&intern_mu);
    if (it == NULL)
        return NULL;
    intern_last = it->name;
    return it->name;
}

/*
 * Locators: one reference-counted copy shared by every record that names
 * the same file or URL, rather than a copy per record (a source sets the
 * same locator on each of a million lines). Each thread remembers the
 * last locator it set, holding one reference to it, released when the
 * thread ends or moves to another locator. pos.locator points at the
 * bytes of a shared_loc. Thread: any; the count is atomic.
 */
typedef struct shared_loc {
    uint32_t refs;          /* atomic */
    char s[];
} shared_loc;

#define LOC_OF(p) ((shared_loc *)(void *)((char *)(p) - offsetof(shared_loc, s)))

static _Thread_local shared_loc *loc_last;   /* one reference held */
static pthread_once_t loc_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t loc_key;
static bool loc_key_ok;

static const char *loc_ref(const char *p)
{
    if (p != NULL)
        __atomic_add_fetch(&LOC_OF(p)->refs, 1, __ATOMIC_RELAXED);
    return p;
}

static void loc_release(const char *p)
{
    if (p == NULL)
        return;
    shared_loc *l = LOC_OF(p);
    if (__atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(l);
}

/* A thread ends: drop its remembered locator (arg). */
static void loc_thread_end(void *arg)
{
    loc_release(((shared_loc *)arg)->s);
}

static void loc_key_init(void)
{
    loc_key_ok = pthread_key_create(&loc_key, loc_thread_end) == 0;
}

/* A new shared_loc holding a copy of s, one reference; NULL on out of
 * memory. */
static const char *loc_new(const char *s)
{
    size_t n = strlen(s);
    shared_loc *l = malloc(sizeof(*l) + n + 1);
    if (l == NULL)
        return NULL;
    l->refs = 1;
    memcpy(l->s, s, n + 1);
    return l->s;
}

/* A shared copy of s (a new reference); NULL on out of memory. */
static const char *loc_share(const char *s)
{
    if (loc_last != NULL && strcmp(loc_last->s, s) == 0)
        return loc_ref(loc_last->s);
    const char *p = loc_new(s);
    if (p == NULL)
        return NULL;
    shared_loc *l = LOC_OF(p);
    /* Remember it (one more reference) if the thread can release it at
     * its end. */
    pthread_once(&loc_key_once, loc_key_init);
    if (loc_key_ok && pthread_setspecific(loc_key, l) == 0) {
        shared_loc *old = loc_last;
        l->refs = 2;
        loc_last = l;
        if (old != NULL)
            loc_release(old->s);
    }
    return l->s;
}

/* Same scale as sl_clock_real() (CLOCK_MONOTONIC), read directly: this runs
 * once per record. */
static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ acks */

/* Release every reference r holds and forget them. */
static void release_acks(sl_record *r)
{
    sl__ackref_release(&r->ack);
    for (uint32_t i = 0; i < r->n_more; i++)
        sl__ackref_release(&r->ack_more[i]);
    free(r->ack_more);
    r->ack.slot = NULL;
    r->ack.mask = 0;
    r->ack_more = NULL;
    r->n_more = r->cap_more = 0;
}

size_t sl__record_ack_count(const sl_record *r)
{
    return r->ack.slot != NULL ? 1 + (size_t)r->n_more : 0;
}

sl__ackref *sl__record_ack_at(sl_record *r, size_t i)
{
    return i == 0 ? &r->ack : &r->ack_more[i - 1];
}

/* Room for n more references beyond the first. 0 or SL_ENOMEM. */
static int reserve_acks(sl_record *r, uint32_t n)
{
    if (r->cap_more - r->n_more >= n)
        return 0;
    if (n > UINT32_MAX / 2 - r->n_more)
        return SL_ENOMEM;
    uint32_t cap = r->cap_more > 0 ? r->cap_more : 4;
    while (cap - r->n_more < n)
        cap *= 2;
    sl__ackref *m = realloc(r->ack_more, cap * sizeof(*m));
    if (m == NULL)
        return SL_ENOMEM;
    r->ack_more = m;
    r->cap_more = cap;
    return 0;
}

/* Append a (taking its reference); room must be reserved if r has one. */
static void put_ack(sl_record *r, sl__ackref a)
{
    if (r->ack.slot == NULL)
        r->ack = a;
    else
        r->ack_more[r->n_more++] = a;
}

int sl__record_ack_add(sl_record *r, sl__ackref a)
{
    if (a.slot == NULL || a.mask == 0)
        return 0;
    if (r->ack.slot != NULL && reserve_acks(r, 1) != 0) {
        sl__ackref_release(&a);
        return SL_ENOMEM;
    }
    put_ack(r, a);
    return 0;
}

int sl__record_ack_inherit(sl_record *dst, const sl_record *src)
{
    size_t n = sl__record_ack_count(src);
    if (n == 0)
        return 0;
    uint32_t need = (uint32_t)n - (dst->ack.slot == NULL ? 1 : 0);
    if (need > 0 && reserve_acks(dst, need) != 0)
        return SL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const sl__ackref *a = i == 0 ? &src->ack : &src->ack_more[i - 1];
        sl__ackref_hold(a);
        put_ack(dst, *a);
    }
    return 0;
}

void sl__record_ack_narrow(sl_record *r, uint32_t keep)
{
    size_t n = sl__record_ack_count(r);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        sl__ackref a = *sl__record_ack_at(r, i);
        sl__ackref_narrow(&a, keep);
        if (a.mask != 0)
            *sl__record_ack_at(r, kept++) = a;
    }
    if (kept == 0) {
        r->ack.slot = NULL;
        r->ack.mask = 0;
    }
    r->n_more = kept > 0 ? (uint32_t)(kept - 1) : 0;
}

/*
 * dst becomes answerable for src's source positions: they are acknowledged
 * once dst is dealt with, and src no longer holds them. For stages that
 * combine records (a batch). 0, SL_EINVAL or SL_ENOMEM (nothing moved).
 */
int sl_record_take_acks(sl_record *dst, sl_record *src)
{
    if (dst == NULL || src == NULL || dst == src)
        return SL_EINVAL;
    size_t n = sl__record_ack_count(src);
    if (n == 0)
        return 0;
    uint32_t need = (uint32_t)n - (dst->ack.slot == NULL ? 1 : 0);
    if (need > 0 && reserve_acks(dst, need) != 0)
        return SL_ENOMEM;
    for (size_t i = 0; i < n; i++)
        put_ack(dst, *sl__record_ack_at(src, i));
    free(src->ack_more);
    src->ack.slot = NULL;
    src->ack.mask = 0;
    src->ack_more = NULL;
    src->n_more = src->cap_more = 0;
    return 0;
}

/* ------------------------------------------------------------ lifetime */

/* A record with room for cap payload bytes inline; payload empty. */
static sl_record *record_alloc(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(sl_record) - 1)
        return NULL;
    sl_record *r = sl__mem_alloc(sizeof(*r) + cap + 1);
    if (r == NULL)
        return NULL;
    r->fields = NULL;
    r->meta = NULL;
    r->payload = r->inline_buf;
    r->payload_len = 0;
    r->inline_cap = cap;
    r->inline_buf[0] = '\0';
    r->pos.source = "";
    r->pos.locator = NULL;
    r->pos.offset = -1;
    r->pos.seq = 0;
    r->ingest_ns = 0;
    r->fields_size = SIZE_UNKNOWN;
    r->ack.slot = NULL;
    r->ack.mask = 0;
    r->ack_more = NULL;
    r->n_more = 0;
    r->cap_more = 0;
    return r;
}

/* Empty payload, empty fields, no position (source "", offset -1, seq 0),
 * ingest time now. NULL on out of memory. Thread: any. */
sl_record *sl_record_new(void)
{
    sl_record *r = record_alloc(0);
    if (r != NULL)
        r->ingest_ns = now_ns();
    return r;
}

/* As sl_record_new, with a copy of data[0..len) as payload, in the same
 * allocation. NULL on out of memory or a NULL data with len > 0. */
sl_record *sl_record_new_payload(const void *data, size_t len)
{
    if (data == NULL && len > 0)
        return NULL;
    sl_record *r = record_alloc(len);
    if (r == NULL)
        return NULL;
    if (len > 0)
        memcpy(r->inline_buf, data, len);
    r->inline_buf[len] = '\0';
    r->payload_len = len;
    r->ingest_ns = now_ns();
    return r;
}

void sl_record_free(sl_record *r)
{
    if (r == NULL)
        return;
    if (r->ack.slot != NULL)
        release_acks(r);
    sl_value_unref(r->fields);
    sl_value_unref(r->meta);
    if (r->payload != r->inline_buf)
        free(r->payload);
    loc_release(r->pos.locator);
    sl__mem_free(r);
}

/*
 * A copy for another owner: payload and locator copied, fields and metadata
 * shared until either side writes, same position and ingest time. NULL on
 * out of memory.
 */
sl_record *sl_record_copy(const sl_record *r)
{
    if (r == NULL)
        return NULL;
    sl_record *c = record_alloc(r->payload_len);
    if (c == NULL)
        return NULL;
    /* A copy of its own: a copy goes to another branch and its owner. */
    if (r->pos.locator != NULL) {
        c->pos.locator = loc_new(r->pos.locator);
        if (c->pos.locator == NULL) {
            sl__mem_free(c);
            return NULL;
        }
    }
    memcpy(c->inline_buf, r->payload, r->payload_len);
    c->inline_buf[r->payload_len] = '\0';
    c->payload_len = r->payload_len;
    c->fields = sl_value_ref(r->fields);
    c->meta = sl_value_ref(r->meta);
    c->pos.source = r->pos.source;
    c->pos.offset = r->pos.offset;
    c->pos.seq = r->pos.seq;
    c->ingest_ns = r->ingest_ns;
    c->fields_size = r->fields_size;
    if (r->ack.slot != NULL && sl__record_ack_inherit(c, r) != 0) {
        sl_record_free(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------ payload */

/* Borrowed, NUL-terminated, never NULL ("" when empty). */
const char *sl_record_payload(const sl_record *r, size_t *len)
{
    if (len != NULL)
        *len = r->payload_len;
    return r->payload;
}

/* Copy data[0..len) in as the payload; data may point into the current
 * payload. Returns 0, SL_ENOMEM (payload unchanged) or SL_EINVAL. */
int sl_record_set_payload(sl_record *r, const void *data, size_t len)
{
    if (data == NULL && len > 0)
        return SL_EINVAL;
    if (len <= r->inline_cap) {
        if (len > 0)
            memmove(r->inline_buf, data, len);
        r->inline_buf[len] = '\0';
        if (r->payload != r->inline_buf)
            free(r->payload);
        r->payload = r->inline_buf;
        r->payload_len = len;
        return 0;
    }
    if (len == SIZE_MAX)
        return SL_ENOMEM;
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return SL_ENOMEM;
    memcpy(buf, data, len);
    buf[len] = '\0';
    if (r->payload != r->inline_buf)
        free(r->payload);
    r->payload = buf;
    r->payload_len = len;
    return 0;
}

void sl_record_clear_payload(sl_record *r)
{
    if (r->payload != r->inline_buf)
        free(r->payload);
    r->payload = r->inline_buf;
    r->payload_len = 0;
    r->inline_buf[0] = '\0';
}

/* ------------------------------------------------------------ fields */

/* Bytes of a record's fields worth fetching ahead: a parsed event of ten
 * fields is 500-700 bytes; fetching past the end costs a little bandwidth. */
#define SL__PREFETCH_BYTES 640

void sl__record_prefetch_fields(const sl_record *r)
{
    const char *f = (const char *)r->fields;
    if (f == NULL)
        return;
    for (size_t off = 0; off < SL__PREFETCH_BYTES; off += 64)
        __builtin_prefetch(f + off, 0, 3);
}

const sl_value *sl_record_fields(const sl_record *r)
{
    return r->fields != NULL ? r->fields : shared_empty_fields();
}

/* Takes ownership of v. A non-object (NULL reads as null) is wrapped as
 * {"value": v}. Returns 0 or SL_ENOMEM (v dropped, fields unchanged). */
int sl_record_set_fields(sl_record *r, sl_value *v)
{
    if (v == NULL) {
        v = sl_value_null();
        if (v == NULL)
            return SL_ENOMEM;
    }
    if (sl_value_type(v) != SL_TYPE_OBJECT) {
        sl_value *o = sl_value_object();
        if (o == NULL) {
            sl_value_unref(v);
            return SL_ENOMEM;
        }
        int rc = sl_object_set(o, "value", v);
        if (rc != 0) {
            sl_value_unref(o);
            return rc;
        }
        v = o;
    }
    sl_value_unref(r->fields);
    r->fields = v;
    r->fields_size = SIZE_UNKNOWN;
    return 0;
}

/* The fields object, created or unshared so the caller may modify it;
 * borrowed. NULL on out of memory. */
sl_value *sl_record_fields_mut(sl_record *r)
{
    r->fields_size = SIZE_UNKNOWN;   /* the caller is about to change them */
    if (r->fields == NULL) {
        r->fields = sl_value_object();
        return r->fields;
    }
    if (sl_value_unshare(&r->fields) != 0)
        return NULL;
    return r->fields;
}

sl_value *sl_record_get(const sl_record *r, const char *key)
{
    return sl_object_get(r->fields, key);
}

/* Takes ownership of v. Returns sl_object_set's result or SL_ENOMEM. */
int sl_record_set(sl_record *r, const char *key, sl_value *v)
{
    sl_value *f = sl_record_fields_mut(r);
    if (f == NULL) {
        sl_value_unref(v);
        return SL_ENOMEM;
    }
    return sl_object_set(f, key, v);
}

/* SL_ENOTFOUND if key is absent (shared fields are then not copied). */
int sl_record_del(sl_record *r, const char *key)
{
    if (key == NULL)
        return SL_EINVAL;
    if (sl_object_get(r->fields, key) == NULL)
        return SL_ENOTFOUND;
    sl_value *f = sl_record_fields_mut(r);
    if (f == NULL)
        return SL_ENOMEM;
    return sl_object_del(f, key);
}

/* ------------------------------------------------------------ metadata */

const sl_position *sl_record_position(const sl_record *r)
{
    return &r->pos;
}

/*
 * Set the position. source is interned (NULL means ""), locator copied
 * (may be NULL). Returns 0 or SL_ENOMEM (position unchanged).
 */
int sl_record_set_position(sl_record *r, const char *source,
                           const char *locator, int64_t offset, int64_t seq)
{
    const char *src = intern(source != NULL ? source : "");
    if (src == NULL)
        return SL_ENOMEM;
    const char *loc = NULL;
    if (locator != NULL) {
        loc = loc_share(locator);
        if (loc == NULL)
            return SL_ENOMEM;
    }
    loc_release(r->pos.locator);
    r->pos.source = src;
    r->pos.locator = loc;
    r->pos.offset = offset;
    r->pos.seq = seq;
    return 0;
}

int64_t sl_record_ingest_ns(const sl_record *r)
{
    return r->ingest_ns;
}

sl_value *sl_record_meta(const sl_record *r, const char *key)
{
    return sl_object_get(r->meta, key);
}

/* Takes ownership of v. Returns 0, SL_ENOMEM, or sl_object_set's error. */
int sl_record_set_meta(sl_record *r, const char *key, sl_value *v)
{
    if (r->meta == NULL) {
        r->meta = sl_value_object();
        if (r->meta == NULL) {
            sl_value_unref(v);
            return SL_ENOMEM;
        }
    } else if (sl_value_unshare(&r->meta) != 0) {
        sl_value_unref(v);
        return SL_ENOMEM;
    }
    return sl_object_set(r->meta, key, v);
}

/* ------------------------------------------------------------ size */

/*
 * Payload bytes plus about the size of the fields as compact JSON. The
 * fields part is remembered until the fields change through the record
 * API or are handed out for writing by sl_record_fields_mut, so a record
 * measured on the way out of one stage and into the next is walked once.
 */
bool sl__record_size_known(const sl_record *r, size_t *out)
{
    if (r->fields == NULL) {
        *out = r->payload_len;
        return true;
    }
    if (r->fields_size == SIZE_UNKNOWN)
        return false;
    *out = r->payload_len + r->fields_size;
    return true;
}

size_t sl_record_size(const sl_record *r)
{
    size_t fields = r->fields_size;
    if (fields == SIZE_UNKNOWN) {
        fields = sl__value_size(sl_record_fields(r));
        /* A cache, not part of the record's value: the one place a const
         * record is written. The owner is the only thread here. */
        ((sl_record *)r)->fields_size = fields;
    }
    return r->payload_len + fields;
}
