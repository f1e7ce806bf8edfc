/*
 * Acknowledgements and saved positions (see acks.h for the model).
 *
 * Locks: each lane has a mutex serialising its advances (the committer, the
 * source when its ring fills, an exactly-once store across its commit); a
 * thread holds at most one lane lock except a store, which takes its own
 * lanes in source order. Each source has a mutex over its list of
 * locators, which only its own thread adds to. The committer holds no
 * lock while it writes to the state file. Records never take a lock.
 */
#include "engine/acks.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "engine/record_internal.h"
#include "engine/stage_ctx.h"
#include "engine/state_store.h"
#include "sluice/error.h"

#define RING_SLOTS 65536            /* per source worker; a power of two */
#define COMMIT_EVERY_NS (100 * SL_NS_PER_MS)
#define ERR_LEN 512

/* A file or URL records were read from: immutable once listed. */
typedef struct ack_loc {
    char *path;             /* owned */
    uint64_t dev;           /* file identity, 0 when unknown */
    uint64_t ino;
} ack_loc;

struct sl__ack_slot {
    _Atomic int64_t ordinal;    /* atomic: which record holds the slot */
    sl__ack_source *src;        /* the ring's owner; set with ordinal */
    int64_t offset;             /* the record's position ... */
    int64_t seq;
    const ack_loc *loc;         /* ... NULL: no locator */
    _Atomic uint32_t refs[];    /* atomic: references per sink */
};

/* A saved position (where a lane's watermark is). */
typedef struct ack_pos {
    const ack_loc *loc;         /* NULL: none */
    int64_t offset;
    int64_t seq;
} ack_pos;

typedef struct ack_lane {
    pthread_mutex_t mu;         /* serialises advances */
    bool active;                /* immutable: the source reaches this sink */
    int64_t adv;                /* guarded by mu: contiguous done ordinal */
    ack_pos pos;                /* guarded by mu: the position at adv */
    _Atomic int64_t published;  /* atomic: adv as it may be saved */
    ack_pos pub_pos;            /* guarded by mu: the position there */
    int64_t written;            /* guarded by mu: highest ordinal saved */
    int64_t skip_upto;          /* source thread: records it already has */
} ack_lane;

struct sl__ack_source {
    sl__acks *acks;             /* immutable */
    const char *name;           /* immutable: the stage name */
    int worker;                 /* immutable */
    uint32_t reach;             /* immutable: sinks (lanes) it reaches */
    unsigned char *ring;        /* RING_SLOTS slots of stride bytes */
    size_t stride;              /* immutable */
    int64_t next;               /* source thread: last ordinal given */
    bool asked;                 /* source thread: it read its resume point */
    bool started;               /* source thread: it attached a record */
    int64_t floor;              /* source thread: lowest published, cached */
    ack_lane lanes[SL__ACK_MAX_SINKS];
    pthread_mutex_t loc_mu;     /* guards locs, n_locs */
    ack_loc **locs;             /* guarded by loc_mu; entries immutable */
    size_t n_locs;
    size_t cap_locs;            /* source thread */
    const ack_loc *cur;         /* source thread: the last one used */
    /* the saved resume point (at the lowest lane) */
    bool has_resume;            /* immutable after create */
    ack_pos resume;             /* its loc is in locs */
    int64_t max_saved;          /* highest saved ordinal of any lane */
    ack_pos max_pos;            /* the position there */
};

struct sl__acks {
    char *path;                 /* owned */
    char *pipeline;             /* owned */
    sl_ctx *root;               /* borrowed: done = records abandoned */
    sqlite3 *db;                /* the committer's connection */
    size_t n_stages;
    int *sink_index;            /* per stage: sink number or -1 */
    uint32_t *reach;            /* per stage: sinks reachable */
    char **sink_names;          /* borrowed, per sink */
    int n_sinks;
    sl__ack_source **sources;   /* per stage: array of workers, or NULL */
    int *source_workers;        /* per stage */
    sl_ctx *stop;               /* ends the committer */
    pthread_t committer;
    bool committer_started;
    _Atomic uint32_t exact;     /* atomic: sinks that save their own
                                   positions in their transactions */
};

/* ================================================================== */
/* References (any thread; the hot path)                               */
/* ================================================================== */

static inline sl__ack_slot *slot_at(const sl__ack_source *as, int64_t n)
{
    return (sl__ack_slot *)(as->ring +
                            (size_t)((uint64_t)n & (RING_SLOTS - 1)) *
                                as->stride);
}

void sl__ackref_hold(const sl__ackref *a)
{
    uint32_t m = a->mask;
    while (m != 0) {
        int i = __builtin_ctz(m);
        m &= m - 1;
        atomic_fetch_add_explicit(&a->slot->refs[i], 1, memory_order_relaxed);
    }
}

/*
 * Once the run is cancelled, whatever is freed was abandoned, not dealt
 * with: its references stay, so no lane passes it.
 */
static void release_bits(sl__ack_slot *slot, uint32_t m)
{
    if (m == 0 || sl_ctx_is_done(slot->src->acks->root))
        return;
    while (m != 0) {
        int i = __builtin_ctz(m);
        m &= m - 1;
        atomic_fetch_sub_explicit(&slot->refs[i], 1, memory_order_release);
    }
}

void sl__ackref_release(const sl__ackref *a)
{
    if (a->slot != NULL)
        release_bits(a->slot, a->mask);
}

void sl__ackref_narrow(sl__ackref *a, uint32_t keep)
{
    if (a->slot == NULL)
        return;
    release_bits(a->slot, a->mask & ~keep);
    a->mask &= keep;
}

/* ================================================================== */
/* Lanes                                                               */
/* ================================================================== */

/* Move the lane over every finished slot. mu held. true if it moved. */
static bool lane_advance(sl__ack_source *as, ack_lane *ln, int sink)
{
    int64_t n = ln->adv;
    for (;;) {
        sl__ack_slot *s = slot_at(as, n + 1);
        if (atomic_load_explicit(&s->ordinal, memory_order_acquire) != n + 1)
            break;
        if (atomic_load_explicit(&s->refs[sink], memory_order_acquire) != 0)
            break;
        n++;
    }
    if (n == ln->adv)
        return false;
    sl__ack_slot *s = slot_at(as, n);
    ln->pos.loc = s->loc;
    ln->pos.offset = s->offset;
    ln->pos.seq = s->seq;
    ln->adv = n;
    return true;
}

/* Make adv the lane's published watermark. mu held. */
static void lane_publish(ack_lane *ln)
{
    ln->pub_pos = ln->pos;
    atomic_store_explicit(&ln->published, ln->adv, memory_order_release);
}

/*
 * Advance every lane of as and publish. wait: take locks a store holds
 * (else skip those lanes this time). Thread: any.
 */
static void advance_source(sl__ack_source *as, bool wait)
{
    for (int k = 0; k < as->acks->n_sinks; k++) {
        ack_lane *ln = &as->lanes[k];
        if (!ln->active)
            continue;
        if (wait)
            pthread_mutex_lock(&ln->mu);
        else if (pthread_mutex_trylock(&ln->mu) != 0)
            continue;
        if (lane_advance(as, ln, k))
            lane_publish(ln);
        pthread_mutex_unlock(&ln->mu);
    }
}

/* Lowest published watermark of as (its next ordinal when no lane). */
static int64_t source_floor(sl__ack_source *as)
{
    int64_t lo = as->next;
    for (int k = 0; k < as->acks->n_sinks; k++) {
        if (!as->lanes[k].active)
            continue;
        int64_t p = atomic_load_explicit(&as->lanes[k].published,
                                         memory_order_acquire);
        if (p < lo)
            lo = p;
    }
    return lo;
}

/* ================================================================== */
/* Locators                                                            */
/* ================================================================== */

/* Find path (newest first) or list it. NULL on out of memory. Thread:
 * the source's. */
static const ack_loc *locate(sl__ack_source *as, const char *path,
                             bool with_id, uint64_t dev, uint64_t ino)
{
    if (!with_id && as->cur != NULL && strcmp(as->cur->path, path) == 0)
        return as->cur;
    for (size_t i = as->n_locs; i-- > 0;) {
        const ack_loc *l = as->locs[i];
        if (strcmp(l->path, path) == 0 &&
            (!with_id || (l->dev == dev && l->ino == ino)))
            return as->cur = l;
    }
    ack_loc *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->path = strdup(path);
    if (l->path == NULL) {
        free(l);
        return NULL;
    }
    l->dev = dev;
    l->ino = ino;
    if (as->n_locs == as->cap_locs) {
        size_t ncap = as->cap_locs > 0 ? as->cap_locs * 2 : 8;
        ack_loc **nl = realloc(as->locs, ncap * sizeof(*nl));
        if (nl == NULL) {
            free(l->path);
            free(l);
            return NULL;
        }
        pthread_mutex_lock(&as->loc_mu);
        as->locs = nl;
        pthread_mutex_unlock(&as->loc_mu);
        as->cap_locs = ncap;
    }
    pthread_mutex_lock(&as->loc_mu);
    as->locs[as->n_locs++] = l;
    pthread_mutex_unlock(&as->loc_mu);
    return as->cur = l;
}

/* ================================================================== */
/* Sources                                                             */
/* ================================================================== */

bool sl__acks_full(sl__ack_source *as)
{
    if (as->next + 1 - as->floor <= RING_SLOTS)
        return false;
    as->floor = source_floor(as);
    return as->next + 1 - as->floor > RING_SLOTS;
}

int sl__acks_wait_room(sl__ack_source *as, sl_ctx *ctx)
{
    int64_t nap = 100 * 1000;   /* 100 us, doubling to 5 ms */
    for (;;) {
        advance_source(as, true);
        if (!sl__acks_full(as))
            return 0;
        int rc = sl_ctx_sleep(ctx, nap);
        if (rc != 0)
            return rc;
        if (nap < 5 * SL_NS_PER_MS)
            nap *= 2;
    }
}

int sl__acks_attach(sl__ack_source *as, sl_record *rec)
{
    if (!as->started) {
        /* A source that did not look at its resume point starts from its
         * beginning: no store may skip what it sends. */
        as->started = true;
        if (!as->asked)
            sl__acks_resume_reset(as);
    }
    const sl_position *p = sl_record_position(rec);
    const ack_loc *loc = NULL;
    if (p->locator != NULL) {
        loc = locate(as, p->locator, false, 0, 0);
        if (loc == NULL)
            return SL_ENOMEM;
    }
    int64_t n = as->next + 1;
    uint32_t mask = 0;
    for (int k = 0; k < as->acks->n_sinks; k++)
        if (as->lanes[k].active && n > as->lanes[k].skip_upto)
            mask |= 1u << k;
    sl__ack_slot *s = slot_at(as, n);
    s->src = as;
    s->offset = p->offset;
    s->seq = p->seq;
    s->loc = loc;
    for (int k = 0; k < as->acks->n_sinks; k++)
        atomic_store_explicit(&s->refs[k], (mask >> k) & 1u,
                              memory_order_relaxed);
    atomic_store_explicit(&s->ordinal, n, memory_order_release);
    as->next = n;
    /* Batched advance: a quarter of the ring at a time, without waiting. */
    if ((n & (RING_SLOTS / 4 - 1)) == 0) {
        advance_source(as, false);
        as->floor = source_floor(as);
    }
    if (mask == 0)
        return 0;
    if (sl__record_ack_add(rec, (sl__ackref){s, mask}) != 0)
        return SL_ENOMEM;
    return 1;
}

int sl__acks_resume_point(sl__ack_source *as, const char **locator,
                          int64_t *offset, int64_t *seq, uint64_t *dev,
                          uint64_t *ino)
{
    as->asked = true;
    if (!as->has_resume)
        return SL_ENOTFOUND;
    const ack_loc *l = as->resume.loc;
    *locator = l != NULL ? l->path : NULL;
    *offset = as->resume.offset;
    *seq = as->resume.seq;
    *dev = l != NULL ? l->dev : 0;
    *ino = l != NULL ? l->ino : 0;
    return 0;
}

void sl__acks_resume_reset(sl__ack_source *as)
{
    if (as->max_saved == 0 || as->next > as->max_saved)
        return;
    as->next = as->floor = as->max_saved;
    for (int k = 0; k < as->acks->n_sinks; k++) {
        ack_lane *ln = &as->lanes[k];
        if (!ln->active)
            continue;
        pthread_mutex_lock(&ln->mu);
        ln->adv = as->max_saved;
        ln->pos = as->max_pos;
        ln->written = as->max_saved;
        ln->skip_upto = 0;
        lane_publish(ln);
        pthread_mutex_unlock(&ln->mu);
    }
}

int sl__acks_source_file(sl__ack_source *as, const char *path, uint64_t dev,
                         uint64_t ino)
{
    return locate(as, path, true, dev, ino) != NULL ? 0 : SL_ENOMEM;
}

/* ================================================================== */
/* Saving                                                              */
/* ================================================================== */

typedef struct save_list {
    sl__state_row *rows;
    ack_lane **lanes;
    size_t n, cap;
} save_list;

static int save_add(sl__acks *acks, save_list *sl, sl__ack_source *as,
                    int sink, ack_lane *ln)
{
    if (sl->n == sl->cap) {
        size_t ncap = sl->cap > 0 ? sl->cap * 2 : 16;
        sl__state_row *nr = realloc(sl->rows, ncap * sizeof(*nr));
        if (nr == NULL)
            return SL_ENOMEM;
        sl->rows = nr;
        ack_lane **nl = realloc(sl->lanes, ncap * sizeof(*nl));
        if (nl == NULL)
            return SL_ENOMEM;
        sl->lanes = nl;
        sl->cap = ncap;
    }
    sl__state_row *r = &sl->rows[sl->n];
    r->source = (char *)as->name;
    r->worker = as->worker;
    r->sink = acks->sink_names[sink];
    r->ordinal = ln->adv;
    r->locator = ln->pos.loc != NULL ? ln->pos.loc->path : NULL;
    r->offset = ln->pos.offset;
    r->seq = ln->pos.seq;
    r->file_dev = ln->pos.loc != NULL ? ln->pos.loc->dev : 0;
    r->file_ino = ln->pos.loc != NULL ? ln->pos.loc->ino : 0;
    sl->lanes[sl->n++] = ln;
    return 0;
}

/*
 * One pass: advance every lane (skipping those a store holds unless wait),
 * and save those that moved since they were last saved. 0 or SL_EIO.
 */
static int commit_pass(sl__acks *acks, bool wait)
{
    save_list sl = {0};
    int rc = 0;
    for (size_t st = 0; st < acks->n_stages; st++) {
        if (acks->sources[st] == NULL)
            continue;
        for (int w = 0; w < acks->source_workers[st]; w++) {
            sl__ack_source *as = &acks->sources[st][w];
            for (int k = 0; k < acks->n_sinks; k++) {
                ack_lane *ln = &as->lanes[k];
                if (!ln->active)
                    continue;
                if (wait)
                    pthread_mutex_lock(&ln->mu);
                else if (pthread_mutex_trylock(&ln->mu) != 0)
                    continue;
                if (lane_advance(as, ln, k))
                    lane_publish(ln);
                /* While running, a store that saves its own positions
                 * is left to do so: a write here would only contend for
                 * its database's lock. The last pass saves all. */
                bool own = !wait && ((atomic_load_explicit(
                                          &acks->exact, memory_order_relaxed) >>
                                      k) & 1u);
                if (ln->adv > ln->written && rc == 0 && !own)
                    rc = save_add(acks, &sl, as, k, ln);
                pthread_mutex_unlock(&ln->mu);
            }
        }
    }
    char err[ERR_LEN];
    if (rc == 0 && sl.n > 0) {
        rc = sl__state_save(acks->db, acks->pipeline, sl.rows, sl.n, err,
                            sizeof(err));
        if (rc != 0)
            sl__log(SL_LOG_WARN, NULL, "%s (%s); retrying", err, acks->path);
    }
    if (rc == 0) {
        for (size_t i = 0; i < sl.n; i++) {
            ack_lane *ln = sl.lanes[i];
            pthread_mutex_lock(&ln->mu);
            if (sl.rows[i].ordinal > ln->written)
                ln->written = sl.rows[i].ordinal;
            pthread_mutex_unlock(&ln->mu);
        }
    }
    free(sl.rows);
    free(sl.lanes);
    return rc;
}

static void *committer_main(void *arg)
{
    sl__acks *acks = arg;
    while (sl_ctx_sleep(acks->stop, COMMIT_EVERY_NS) == 0)
        commit_pass(acks, false);
    return NULL;
}

/* ================================================================== */
/* Exactly-once stores                                                 */
/* ================================================================== */

/* Lock (or unlock) every lane of sink, in source order. */
static void lock_sink(sl__acks *acks, int sink, bool lock)
{
    for (size_t st = 0; st < acks->n_stages; st++) {
        if (acks->sources[st] == NULL)
            continue;
        for (int w = 0; w < acks->source_workers[st]; w++) {
            ack_lane *ln = &acks->sources[st][w].lanes[sink];
            if (!ln->active)
                continue;
            if (lock)
                pthread_mutex_lock(&ln->mu);
            else
                pthread_mutex_unlock(&ln->mu);
        }
    }
}

/* Give back the references prepare released (their mask was cleared). */
static void unrelease(sl_record *const *recs, size_t n, uint32_t bit)
{
    for (size_t i = 0; i < n; i++) {
        size_t na = sl__record_ack_count(recs[i]);
        for (size_t j = 0; j < na; j++) {
            sl__ackref *a = sl__record_ack_at(recs[i], j);
            if (a->mask == 0) {
                a->mask = bit;
                sl__ackref_hold(a);
            }
        }
    }
}

/* Take (restore) or give back (release) the references for sink of
 * recs[from..to), leaving their masks as they are. Lanes of sink locked. */
static void shift_refs(sl_record *const *recs, size_t from, size_t to,
                       int sink, bool release)
{
    uint32_t bit = 1u << sink;
    for (size_t i = from; i < to; i++) {
        size_t na = sl__record_ack_count(recs[i]);
        for (size_t j = 0; j < na; j++) {
            sl__ackref *a = sl__record_ack_at(recs[i], j);
            if (a->slot == NULL || (a->mask & bit) == 0)
                continue;
            if (release)
                atomic_fetch_sub_explicit(&a->slot->refs[sink], 1,
                                          memory_order_release);
            else
                atomic_fetch_add_explicit(&a->slot->refs[sink], 1,
                                          memory_order_relaxed);
        }
    }
}

/* Move every lane of sink back to its published watermark, then over
 * every finished slot. Lanes of sink locked. */
static void readvance_sink(sl__acks *acks, int sink)
{
    for (size_t st = 0; st < acks->n_stages; st++) {
        if (acks->sources[st] == NULL)
            continue;
        for (int w = 0; w < acks->source_workers[st]; w++) {
            sl__ack_source *as = &acks->sources[st][w];
            ack_lane *ln = &as->lanes[sink];
            if (!ln->active)
                continue;
            ln->adv = atomic_load(&ln->published);
            ln->pos = ln->pub_pos;
            lane_advance(as, ln, sink);
        }
    }
}

/* Index of the first of recs[0..k) holding a reference for sink beyond
 * its lane's watermark, or k. Lanes of sink locked. */
static size_t first_beyond(sl_record *const *recs, size_t k, int sink)
{
    uint32_t bit = 1u << sink;
    for (size_t i = 0; i < k; i++) {
        size_t na = sl__record_ack_count(recs[i]);
        for (size_t j = 0; j < na; j++) {
            sl__ackref *a = sl__record_ack_at(recs[i], j);
            if (a->slot == NULL || (a->mask & bit) == 0)
                continue;
            int64_t o = atomic_load_explicit(&a->slot->ordinal,
                                             memory_order_relaxed);
            if (o > a->slot->src->lanes[sink].adv)
                return i;
        }
    }
    return k;
}

/*
 * The longest prefix recs[0..k) whose commit completes every source
 * position it holds: with the references of recs[k..n) still held, every
 * lane passes each position of recs[0..k). Found by letting the prefix go
 * (counts only; masks untouched), advancing, and shortening it to the
 * first record beyond a watermark until none is. Everything is put back
 * before returning. Since other holders only ever release, the answer
 * stays true until the store commits. Thread: the store's worker.
 */
size_t sl__acks_ready(sl__acks *acks, int sink, sl_record *const *recs,
                      size_t n)
{
    if (sink < 0 || sink >= acks->n_sinks || n == 0)
        return n;
    lock_sink(acks, sink, true);
    size_t k = n;
    shift_refs(recs, 0, n, sink, true);
    for (;;) {
        readvance_sink(acks, sink);
        size_t j = first_beyond(recs, k, sink);
        if (j == k)
            break;
        shift_refs(recs, j, k, sink, false);
        k = j;
    }
    shift_refs(recs, 0, k, sink, false);
    for (size_t st = 0; st < acks->n_stages; st++) {
        if (acks->sources[st] == NULL)
            continue;
        for (int w = 0; w < acks->source_workers[st]; w++) {
            ack_lane *ln = &acks->sources[st][w].lanes[sink];
            if (!ln->active)
                continue;
            ln->adv = atomic_load(&ln->published);
            ln->pos = ln->pub_pos;
        }
    }
    lock_sink(acks, sink, false);
    return k;
}

int sl__acks_prepare(sl__acks *acks, int sink, void *db,
                     sl_record *const *recs, size_t n)
{
    if (sink < 0 || sink >= acks->n_sinks)
        return SL_EINVAL;
    uint32_t bit = 1u << sink;
    atomic_fetch_or_explicit(&acks->exact, bit, memory_order_relaxed);
    lock_sink(acks, sink, true);
    for (size_t i = 0; i < n; i++) {
        size_t na = sl__record_ack_count(recs[i]);
        for (size_t j = 0; j < na; j++) {
            sl__ackref *a = sl__record_ack_at(recs[i], j);
            if ((a->mask & bit) == 0)
                continue;
            /* Not release_bits: this is a commit even if the run is ending. */
            atomic_fetch_sub_explicit(&a->slot->refs[sink], 1,
                                      memory_order_release);
            a->mask &= ~bit;
        }
    }
    save_list sl = {0};
    int rc = 0;
    for (size_t st = 0; st < acks->n_stages && rc == 0; st++) {
        if (acks->sources[st] == NULL)
            continue;
        for (int w = 0; w < acks->source_workers[st] && rc == 0; w++) {
            sl__ack_source *as = &acks->sources[st][w];
            ack_lane *ln = &as->lanes[sink];
            if (!ln->active)
                continue;
            lane_advance(as, ln, sink);
            if (ln->adv > ln->written)
                rc = save_add(acks, &sl, as, sink, ln);
        }
    }
    char err[ERR_LEN];
    if (rc == 0 && sl.n > 0)
        rc = sl__state_put(db, acks->pipeline, sl.rows, sl.n, err,
                           sizeof(err));
    if (rc != 0 && rc != SL_ENOMEM)
        sl__log(SL_LOG_ERROR, acks->sink_names[sink], "%s", err);
    free(sl.rows);
    free(sl.lanes);
    if (rc != 0) {
        sl__acks_finish_txn(acks, sink, recs, n, false);
        return rc;
    }
    return 0;
}

void sl__acks_finish_txn(sl__acks *acks, int sink, sl_record *const *recs,
                         size_t n, bool committed)
{
    if (sink < 0 || sink >= acks->n_sinks)
        return;
    if (!committed)
        unrelease(recs, n, 1u << sink);
    for (size_t st = 0; st < acks->n_stages; st++) {
        if (acks->sources[st] == NULL)
            continue;
        for (int w = 0; w < acks->source_workers[st]; w++) {
            sl__ack_source *as = &acks->sources[st][w];
            ack_lane *ln = &as->lanes[sink];
            if (!ln->active)
                continue;
            if (committed) {
                if (ln->adv > ln->written)
                    ln->written = ln->adv;
                lane_publish(ln);
            } else {
                ln->adv = atomic_load(&ln->published);
                ln->pos = ln->pub_pos;
            }
        }
    }
    lock_sink(acks, sink, false);
}

/* ================================================================== */
/* Set-up                                                              */
/* ================================================================== */

/* Sinks reachable from stage i (memoised in reach; done marks). */
static uint32_t compute_reach(sl__acks *acks, const sl__acks_stage *stages,
                              size_t i, bool *done)
{
    if (done[i])
        return acks->reach[i];
    uint32_t m = 0;
    if (stages[i].n_out == 0) {
        m = 1u << acks->sink_index[i];
    } else {
        for (size_t k = 0; k < stages[i].n_out; k++)
            m |= compute_reach(acks, stages, stages[i].outs[k], done);
    }
    done[i] = true;
    acks->reach[i] = m;
    return m;
}

/* The saved row of (source, worker, sink), or NULL. */
static const sl__state_row *find_row(const sl__state_row *rows, size_t n,
                                     const char *source, int worker,
                                     const char *sink)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].worker == worker && strcmp(rows[i].source, source) == 0 &&
            strcmp(rows[i].sink, sink) == 0)
            return &rows[i];
    return NULL;
}

/* A saved row's position, its locator listed (identity kept). */
static int row_pos(sl__ack_source *as, const sl__state_row *r, ack_pos *out)
{
    out->loc = NULL;
    if (r->locator != NULL) {
        out->loc = locate(as, r->locator, true, r->file_dev, r->file_ino);
        if (out->loc == NULL)
            return SL_ENOMEM;
    }
    out->offset = r->offset;
    out->seq = r->seq;
    return 0;
}

static int setup_source(sl__acks *acks, sl__ack_source *as, const char *name,
                        int worker, uint32_t reach, const sl__state_row *rows,
                        size_t n_rows)
{
    as->acks = acks;
    as->name = name;
    as->worker = worker;
    as->reach = reach;
    pthread_mutex_init(&as->loc_mu, NULL);
    for (int k = 0; k < acks->n_sinks; k++)
        pthread_mutex_init(&as->lanes[k].mu, NULL);
    as->stride = sizeof(sl__ack_slot) +
                 (size_t)acks->n_sinks * sizeof(_Atomic uint32_t);
    as->stride = (as->stride + 7) & ~(size_t)7;
    as->ring = calloc(RING_SLOTS, as->stride);
    if (as->ring == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < RING_SLOTS; i++)
        atomic_init(&((sl__ack_slot *)(as->ring + i * as->stride))->ordinal,
                    -1);
    const sl__state_row *lo = NULL, *hi = NULL;
    bool all_saved = true;
    for (int k = 0; k < acks->n_sinks; k++) {
        ack_lane *ln = &as->lanes[k];
        ln->active = (reach >> k) & 1u;
        if (!ln->active)
            continue;
        const sl__state_row *r = find_row(rows, n_rows, name, worker,
                                          acks->sink_names[k]);
        if (r == NULL || r->ordinal <= 0) {
            all_saved = false;
            continue;
        }
        ln->written = ln->skip_upto = r->ordinal;
        if (lo == NULL || r->ordinal < lo->ordinal)
            lo = r;
        if (hi == NULL || r->ordinal > hi->ordinal)
            hi = r;
    }
    if (hi != NULL) {
        as->max_saved = hi->ordinal;
        if (row_pos(as, hi, &as->max_pos) != 0)
            return SL_ENOMEM;
    }
    int64_t base = 0;
    if (all_saved && lo != NULL) {
        base = lo->ordinal;
        as->has_resume = true;
        if (row_pos(as, lo, &as->resume) != 0)
            return SL_ENOMEM;
    } else if (hi != NULL) {
        /* A lane with nothing saved (a new store) reads everything; the
         * others skip what they have. Ordinals go on from the lowest
         * possible: 0, so they line up with the saved ones. */
        base = 0;
    }
    as->next = as->floor = base;
    for (int k = 0; k < acks->n_sinks; k++) {
        ack_lane *ln = &as->lanes[k];
        if (!ln->active)
            continue;
        ln->adv = base;
        if (as->has_resume)
            ln->pos = as->resume;
        ln->pub_pos = ln->pos;
        atomic_init(&ln->published, base);
    }
    as->cur = NULL;
    return 0;
}

int sl__acks_create(const char *state_path, const char *pipeline,
                    const sl__acks_stage *stages, size_t n_stages,
                    sl_ctx *root, char *err, size_t err_len, sl__acks **out)
{
    sl__acks *acks = calloc(1, sizeof(*acks));
    bool *done = calloc(n_stages > 0 ? n_stages : 1, sizeof(*done));
    sl__state_row *rows = NULL;
    size_t n_rows = 0;
    int rc = SL_ENOMEM;
    if (acks == NULL || done == NULL)
        goto out_fail;
    acks->root = root;
    acks->n_stages = n_stages;
    acks->path = strdup(state_path);
    acks->pipeline = strdup(pipeline);
    acks->sink_index = calloc(n_stages, sizeof(*acks->sink_index));
    acks->reach = calloc(n_stages, sizeof(*acks->reach));
    acks->sink_names = calloc(n_stages, sizeof(*acks->sink_names));
    acks->sources = calloc(n_stages, sizeof(*acks->sources));
    acks->source_workers = calloc(n_stages, sizeof(*acks->source_workers));
    if (acks->path == NULL || acks->pipeline == NULL ||
        acks->sink_index == NULL || acks->reach == NULL ||
        acks->sink_names == NULL || acks->sources == NULL ||
        acks->source_workers == NULL)
        goto out_fail;
    for (size_t i = 0; i < n_stages; i++) {
        acks->sink_index[i] = -1;
        if (stages[i].n_out > 0)
            continue;
        if (acks->n_sinks == SL__ACK_MAX_SINKS) {
            snprintf(err, err_len, "settings.state: at most %d stages "
                     "without readers are supported", SL__ACK_MAX_SINKS);
            rc = SL_ELIMIT;
            goto out_fail;
        }
        acks->sink_names[acks->n_sinks] = (char *)stages[i].name;
        acks->sink_index[i] = acks->n_sinks++;
    }
    for (size_t i = 0; i < n_stages; i++)
        compute_reach(acks, stages, i, done);
    if (sl_ctx_create(&acks->stop) != 0)
        goto out_fail;
    rc = sl__state_open(state_path, &acks->db, err, err_len);
    if (rc != 0)
        goto out_fail;
    rc = sl__state_load(acks->db, pipeline, &rows, &n_rows, err, err_len);
    if (rc != 0)
        goto out_fail;
    rc = SL_ENOMEM;
    for (size_t i = 0; i < n_stages; i++) {
        if (!stages[i].source)
            continue;
        int nw = stages[i].workers > 0 ? stages[i].workers : 1;
        acks->sources[i] = calloc((size_t)nw, sizeof(sl__ack_source));
        if (acks->sources[i] == NULL)
            goto out_fail;
        acks->source_workers[i] = nw;
        for (int w = 0; w < nw; w++) {
            if (setup_source(acks, &acks->sources[i][w], stages[i].name, w,
                             acks->reach[i], rows, n_rows) != 0)
                goto out_fail;
        }
    }
    sl__state_rows_free(rows, n_rows);
    free(done);
    *out = acks;
    return 0;
out_fail:
    if (rc == SL_ENOMEM)
        snprintf(err, err_len, "settings.state: out of memory");
    sl__state_rows_free(rows, n_rows);
    free(done);
    sl__acks_destroy(acks);
    return rc;
}

int sl__acks_start(sl__acks *acks)
{
    if (pthread_create(&acks->committer, NULL, committer_main, acks) != 0)
        return SL_EINTERNAL;
    acks->committer_started = true;
    return 0;
}

static void stop_committer(sl__acks *acks)
{
    if (!acks->committer_started)
        return;
    sl_ctx_cancel(acks->stop, SL_ECANCELED, "run finished");
    pthread_join(acks->committer, NULL);
    acks->committer_started = false;
}

int sl__acks_finish(sl__acks *acks)
{
    stop_committer(acks);
    return commit_pass(acks, true);
}

void sl__acks_destroy(sl__acks *acks)
{
    if (acks == NULL)
        return;
    stop_committer(acks);
    if (acks->sources != NULL) {
        for (size_t i = 0; i < acks->n_stages; i++) {
            sl__ack_source *ws = acks->sources[i];
            if (ws == NULL)
                continue;
            for (int w = 0; w < acks->source_workers[i]; w++) {
                sl__ack_source *as = &ws[w];
                for (size_t l = 0; l < as->n_locs; l++) {
                    free(as->locs[l]->path);
                    free(as->locs[l]);
                }
                free(as->locs);
                free(as->ring);
                if (as->acks != NULL) {
                    pthread_mutex_destroy(&as->loc_mu);
                    for (int k = 0; k < acks->n_sinks; k++)
                        pthread_mutex_destroy(&as->lanes[k].mu);
                }
            }
            free(ws);
        }
    }
    sl__state_close(acks->db);
    sl_ctx_destroy(acks->stop);
    free(acks->sources);
    free(acks->source_workers);
    free(acks->sink_index);
    free(acks->reach);
    free(acks->sink_names);
    free(acks->path);
    free(acks->pipeline);
    free(acks);
}

/* ================================================================== */
/* Lookups                                                             */
/* ================================================================== */

sl__ack_source *sl__acks_source(sl__acks *acks, size_t stage, int worker)
{
    if (acks == NULL || stage >= acks->n_stages || acks->sources[stage] == NULL ||
        worker < 0 || worker >= acks->source_workers[stage])
        return NULL;
    return &acks->sources[stage][worker];
}

int sl__acks_sink_index(const sl__acks *acks, size_t stage)
{
    return acks != NULL && stage < acks->n_stages ? acks->sink_index[stage] : -1;
}

uint32_t sl__acks_reach(const sl__acks *acks, size_t stage)
{
    return acks != NULL && stage < acks->n_stages ? acks->reach[stage] : 0;
}

const char *sl__acks_path(const sl__acks *acks)
{
    return acks->path;
}

void sl__acks_advance_all(sl__acks *acks)
{
    for (size_t st = 0; st < acks->n_stages; st++)
        for (int w = 0; w < acks->source_workers[st]; w++)
            advance_source(&acks->sources[st][w], true);
}

int64_t sl__acks_lane_ordinal(sl__acks *acks, size_t source_stage, int worker,
                              int sink, int64_t *seq)
{
    sl__ack_source *as = sl__acks_source(acks, source_stage, worker);
    if (as == NULL || sink < 0 || sink >= acks->n_sinks ||
        !as->lanes[sink].active)
        return -1;
    ack_lane *ln = &as->lanes[sink];
    pthread_mutex_lock(&ln->mu);
    int64_t o = atomic_load(&ln->published);
    if (seq != NULL)
        *seq = o > 0 ? ln->pos.seq : 0;
    pthread_mutex_unlock(&ln->mu);
    return o;
}
