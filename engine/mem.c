/*
 * Per-thread size-class caches with batched hand-over between threads
 * (engine/mem.h).
 *
 * Every block carries a 16-byte header before the caller's bytes holding
 * its size class (or SL__MEM_LARGE for a block straight from malloc), so
 * sl__mem_free needs no size. A free block's first two words link it: the
 * next block of its list, and, for the first block of a batch on a global
 * list, the next batch.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/mem.h"

#if defined(__SANITIZE_ADDRESS__)
#define SL__MEM_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SL__MEM_PASSTHROUGH 1
#endif
#endif

#ifndef SL__MEM_PASSTHROUGH

#define HEADER 16
#define BATCH 64
/* Bytes each class may keep on its global list before batches go back to
 * malloc. */
#define GLOBAL_BYTES ((size_t)16 << 20)

/* Block sizes, header included. */
static const size_t class_size[] = {64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536,
                                    SL__MEM_MAX_CLASS + HEADER};
#define NCLASS (sizeof(class_size) / sizeof(class_size[0]))
#define SL__MEM_LARGE 0xFFu

typedef struct free_block {
    struct free_block *next;        /* next block of the list */
    struct free_block *next_batch;  /* global lists: first block of the next batch */
} free_block;

typedef struct header {
    uint32_t cls;
    uint32_t pad[3];
} header;

_Static_assert(sizeof(header) == HEADER, "header is 16 bytes");


/* A thread's free blocks of one class: the list it allocates from and
 * frees to (fewer than BATCH), and at most one full batch set aside, so
 * that handing a batch on never walks a list (each block of it is likely
 * cold: freed by a sink after another thread wrote it). */
typedef struct local_class {
    free_block *head;
    size_t n;               /* blocks on head */
    free_block *full;       /* BATCH blocks, or NULL */
} local_class;

typedef struct local_cache {
    local_class c[NCLASS];
    bool registered;
} local_cache;

static struct {
    pthread_mutex_t mu;
    free_block *batches;    /* guarded by mu */
    size_t n_batches;       /* guarded by mu */
} global[NCLASS] = {
#define G {PTHREAD_MUTEX_INITIALIZER, NULL, 0}
    G, G, G, G, G, G, G, G, G, G, G,
#undef G
};

static _Thread_local local_cache cache;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static bool key_ok;

static void free_list(free_block *b)
{
    while (b != NULL) {
        free_block *next = b->next;
        free(b);
        b = next;
    }
}

/* Put the batch starting at b (BATCH blocks linked by next) on the global
 * list of class k, or back to malloc when that list is full. */
static void give_batch(size_t k, free_block *b)
{
    size_t max = GLOBAL_BYTES / (BATCH * class_size[k]);
    pthread_mutex_lock(&global[k].mu);
    if (global[k].n_batches < max) {
        b->next_batch = global[k].batches;
        global[k].batches = b;
        global[k].n_batches++;
        b = NULL;
    }
    pthread_mutex_unlock(&global[k].mu);
    free_list(b);
}

/* A thread ends: its cached blocks go to the global lists (or malloc). */
static void cache_release(void *arg)
{
    local_cache *lc = arg;
    for (size_t k = 0; k < NCLASS; k++) {
        if (lc->c[k].full != NULL)
            give_batch(k, lc->c[k].full);
        lc->c[k].full = NULL;
        free_block *b = lc->c[k].head;
        lc->c[k].head = NULL;
        lc->c[k].n = 0;
        while (b != NULL) {
            /* Cut a batch of at most BATCH blocks. */
            free_block *first = b, *last = b;
            for (size_t i = 1; i < BATCH && last->next != NULL; i++)
                last = last->next;
            b = last->next;
            last->next = NULL;
            give_batch(k, first);
        }
    }
    lc->registered = false;
}

static void key_init(void)
{
    key_ok = pthread_key_create(&key, cache_release) == 0;
}

/* Make sure this thread's cache is released when the thread ends. */
static void cache_register(void)
{
    pthread_once(&key_once, key_init);
    if (key_ok && pthread_setspecific(key, &cache) == 0)
        cache.registered = true;
}

static inline size_t class_of(size_t total)
{
    size_t k = 0;
    while (class_size[k] < total)
        k++;
    return k;
}

void *sl__mem_alloc(size_t size)
{
    if (size > SL__MEM_MAX_CLASS) {
        if (size > SIZE_MAX - HEADER)
            return NULL;
        header *h = malloc(HEADER + size);
        if (h == NULL)
            return NULL;
        h->cls = SL__MEM_LARGE;
        return (char *)h + HEADER;
    }
    size_t k = class_of(size + HEADER);
    local_class *lc = &cache.c[k];
    free_block *b = lc->head;
    if (b == NULL && lc->full != NULL) {
        b = lc->head = lc->full;
        lc->n = BATCH;
        lc->full = NULL;
    }
    if (b == NULL) {
        if (!cache.registered)
            cache_register();
        pthread_mutex_lock(&global[k].mu);
        b = global[k].batches;
        if (b != NULL) {
            global[k].batches = b->next_batch;
            global[k].n_batches--;
        }
        pthread_mutex_unlock(&global[k].mu);
        if (b != NULL) {
            lc->head = b;
            lc->n = BATCH;
        } else {
            b = malloc(class_size[k]);
            if (b == NULL)
                return NULL;
            lc->head = b;
            b->next = NULL;
            lc->n = 1;
        }
    }
    lc->head = b->next;
    lc->n--;
    /* The next block was most likely last written on another CPU: start
     * fetching it now rather than on the next call. */
    if (lc->head != NULL)
        __builtin_prefetch(lc->head, 1);
    header *h = (header *)b;
    h->cls = (uint32_t)k;
    return (char *)h + HEADER;
}

void sl__mem_free(void *p)
{
    if (p == NULL)
        return;
    header *h = (header *)((char *)p - HEADER);
    if (h->cls == SL__MEM_LARGE) {
        free(h);
        return;
    }
    size_t k = h->cls;
    /* A thread that only frees (a sink) keeps blocks too: they must go to
     * the global lists when it ends. */
    if (!cache.registered)
        cache_register();
    local_class *lc = &cache.c[k];
    free_block *b = (free_block *)h;
    b->next = lc->head;
    lc->head = b;
    if (++lc->n < BATCH)
        return;
    /* head is a whole batch: set it aside, handing on the one set aside
     * before (the older, colder one). */
    if (lc->full != NULL)
        give_batch(k, lc->full);
    lc->full = lc->head;
    lc->head = NULL;
    lc->n = 0;
}

#else /* SL__MEM_PASSTHROUGH */

void *sl__mem_alloc(size_t size)
{
    return malloc(size);
}

void sl__mem_free(void *p)
{
    free(p);
}

#endif
