/*
 * Memory for expressions: the arena that holds a compiled expression's
 * nodes and strings, and the scratch area of one evaluation.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/expr_internal.h"
#include "sluice/error.h"

#define SL__XCHUNK_MIN 1024

/*
 * n bytes, 16-aligned, from the newest chunk, or from a new chunk at least
 * twice the size of the last (so an arena makes O(log n) allocations).
 * NULL on out of memory or when n is absurdly large.
 */
void *sl__xarena_alloc(sl__xarena *a, size_t n)
{
    size_t need = (n + 15u) & ~(size_t)15u;
    if (need < n)
        return NULL;
    sl__xchunk *c = a->head;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = c != NULL ? c->cap * 2 : SL__XCHUNK_MIN;
        if (cap < need)
            cap = need;
        if (cap > SIZE_MAX - sizeof(sl__xchunk))
            return NULL;
        c = malloc(sizeof(sl__xchunk) + cap);
        if (c == NULL)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
        a->total += cap;
    }
    void *p = c->data + c->used;
    c->used += need;
    return p;
}

/* Release every chunk; the arena is empty (and reusable) afterwards. */
void sl__xarena_free(sl__xarena *a)
{
    sl__xchunk *c = a->head;
    while (c != NULL) {
        sl__xchunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/*
 * n + 1 bytes of scratch for a string made during an evaluation (the extra
 * byte for its NUL). Served from the caller's inline buffer while it lasts,
 * then from heap chunks. NULL on out of memory.
 */
char *sl__xscratch_alloc(sl__xscratch *s, size_t n)
{
    if (n >= SIZE_MAX - 16)
        return NULL;
    size_t need = n + 1;
    if (s->buf != NULL && s->cap - s->used >= need) {
        char *p = s->buf + s->used;
        s->used += need;
        return p;
    }
    return sl__xarena_alloc(&s->heap, need);
}

void sl__xscratch_fini(sl__xscratch *s)
{
    sl__xarena_free(&s->heap);
    s->used = 0;
}
