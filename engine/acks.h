/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Acknowledgements: when is a source position done?
 *
 * Every record a source emits gets an ack slot: the next entry of that
 * source worker's ring, numbered by an ordinal (1, 2, ... continuing across
 * runs). The slot holds the record's position and one reference count per
 * terminal stage ("sink": a stage nobody reads) the record can reach. A
 * record carries one or more ack references (sl__ackref: the slot and a
 * mask of the sinks it still counts for):
 *
 *   - a copy (a tee) takes references for its branch's sinks;
 *   - a record emitted while another is processed (a split) inherits the
 *     input's references; sl_record_take_acks moves them (a batch);
 *   - freeing a record releases its references: stored, dropped, skipped
 *     or dead-lettered alike, since each of those frees the record after
 *     dealing with it. A release that brings a count to zero after the run
 *     was cancelled (failure, forced stop, deadline) marks the slot failed
 *     for that sink instead: the record was abandoned, not delivered.
 *
 * A "lane" is one (source worker, sink) pair. Its watermark is the highest
 * ordinal up to which every slot's count for that sink is zero and none
 * failed: the contiguous low watermark. Lanes advance in batches — when the
 * committer thread passes (every 100 ms), when a source has used a quarter
 * of its ring, and when an exactly-once store commits — never per record.
 * The hot path is an atomic add or subtract on the slot.
 *
 * A slot is reused once every lane of its source has passed it, so a ring
 * bounds how far a source runs ahead of its slowest sink: a full ring makes
 * the source wait (backpressure), which lets the stages downstream run dry
 * and flush, which releases slots.
 *
 * Exactly-once: a store that keeps its rows in the state file calls
 * sl_stage_acks_prepare inside its transaction (its batch's references are
 * released, its lane advanced and the position row written with the same
 * connection) and sl_stage_acks_finish after COMMIT (published) or a failure
 * (the references are taken back). The lane's lock is held in between, so
 * no one else publishes a watermark that the transaction has not made true.
 * Before that, sl_stage_acks_ready tells the store how many of its rows, from
 * the first, complete their positions (the rest of a split line, or an
 * earlier record, may still be in flight): it commits those and carries the
 * others to its next transaction.
 *
 * Resume: each lane's watermark is saved with the position of the record
 * at it. A source resumes after the lowest of its lanes; a lane further on
 * does not receive the records it already has (its bit is left out of
 * their masks, and a tee does not copy a record to a branch whose sinks
 * all have it).
 *
 * Thread: see each function.
 */
#ifndef SLUICE_ENGINE_ACKS_H
#define SLUICE_ENGINE_ACKS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/context.h"
#include "sluice/record.h"

/* Sinks a run with settings.state may have (bits of a mask). */
#define SL__ACK_MAX_SINKS 32

typedef struct sl__acks sl__acks;             /* one per run */
typedef struct sl__ack_source sl__ack_source; /* one per source worker */
typedef struct sl__ack_slot sl__ack_slot;

/* A record's share of one source record's acknowledgement. */
typedef struct sl__ackref {
    sl__ack_slot *slot;     /* NULL: none */
    uint32_t mask;          /* sinks this reference counts for */
} sl__ackref;

/* Take one more reference of a for each sink in its mask. Thread: any. */
void sl__ackref_hold(const sl__ackref *a);

/* Drop the references of a (see the top of this file). Thread: any. */
void sl__ackref_release(const sl__ackref *a);

/* Release the bits of a not in keep, and clear them from a->mask. */
void sl__ackref_narrow(sl__ackref *a, uint32_t keep);

/* ------------------------------------------------------------------ */
/* The tracker                                                         */
/* ------------------------------------------------------------------ */

/* One stage as the tracker needs it. */
typedef struct sl__acks_stage {
    const char *name;       /* stage name; borrowed for the run */
    bool source;            /* a source: gets one ring per worker */
    int workers;            /* its worker count */
    size_t n_out;           /* readers */
    const size_t *outs;     /* their indices */
} sl__acks_stage;

/*
 * Open (or create) the state file, load the saved positions of pipeline,
 * and set up a ring per source worker and a lane per (source worker, sink
 * it reaches). Sinks are the stages with no readers. Returns 0,
 * SL_ELIMIT (more than SL__ACK_MAX_SINKS sinks), SL_EIO (the state file;
 * message in err) or SL_ENOMEM. root: the run's context (cancelled =
 * abandoned records). Thread: owner.
 */
int sl__acks_create(const char *state_path, const char *pipeline,
                    const sl__acks_stage *stages, size_t n_stages,
                    sl_ctx *root, char *err, size_t err_len, sl__acks **out);

/* Stop the committer and free everything. No record may still hold a
 * reference. NULL: no-op. Thread: owner. */
void sl__acks_destroy(sl__acks *acks);

/* Start the committer thread. 0 or SL_EINTERNAL. Thread: owner. */
int sl__acks_start(sl__acks *acks);

/*
 * After every worker has ended: stop the committer, advance every lane a
 * last time and save. Returns 0 or SL_EIO (logged). Thread: owner.
 */
int sl__acks_finish(sl__acks *acks);

/* The ring of source stage `stage`, worker `worker`; NULL if not a source. */
sl__ack_source *sl__acks_source(sl__acks *acks, size_t stage, int worker);

/* The sink index of stage (0..), or -1 if it is not a sink. */
int sl__acks_sink_index(const sl__acks *acks, size_t stage);

/* Sinks reachable from stage (mask). */
uint32_t sl__acks_reach(const sl__acks *acks, size_t stage);

/* The state file's path (as given). */
const char *sl__acks_path(const sl__acks *acks);

/* ------------------------------------------------------------------ */
/* Sources (the source worker's thread)                                */
/* ------------------------------------------------------------------ */

/* true when the ring has no free slot: call sl__acks_wait_room first. */
bool sl__acks_full(sl__ack_source *as);

/*
 * Wait until a slot is free, advancing the lanes (and sleeping briefly
 * between tries while a sink holds them back). 0, or ctx's error.
 */
int sl__acks_wait_room(sl__ack_source *as, sl_ctx *ctx);

/*
 * Give rec (positioned by the source) the next slot. Returns 1 when it
 * got a reference; 0 when no sink still needs it (every lane has it
 * already: the caller frees it without sending it on; its slot is done);
 * The ring must not be full.
 */
int sl__acks_attach(sl__ack_source *as, sl_record *rec);

/* Saved resume point (the position at the lowest lane), as in stage.h.
 * A source that never asks before its first record is taken to start from
 * its beginning (as after sl__acks_resume_reset). */
int sl__acks_resume_point(sl__ack_source *as, const char **locator,
                          int64_t *offset, int64_t *seq, uint64_t *dev,
                          uint64_t *ino);

/* The saved point cannot be used (a file changed): lanes receive
 * everything again; ordinals go on after the highest saved one. */
void sl__acks_resume_reset(sl__ack_source *as);

/* Identity of the file that locator path names, saved with positions. */
int sl__acks_source_file(sl__ack_source *as, const char *path, uint64_t dev,
                         uint64_t ino);

/* ------------------------------------------------------------------ */
/* Exactly-once stores (the store's worker thread)                     */
/* ------------------------------------------------------------------ */

/* See sl_stage_acks_ready / _prepare / _finish in stage.h. sink: the stage's sink
 * index. */
size_t sl__acks_ready(sl__acks *acks, int sink, sl_record *const *recs,
                      size_t n);
int sl__acks_prepare(sl__acks *acks, int sink, void *db,
                     sl_record *const *recs, size_t n);
void sl__acks_finish_txn(sl__acks *acks, int sink, sl_record *const *recs,
                         size_t n, bool committed);

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/* Advance every lane now (as the committer does) without saving. */
void sl__acks_advance_all(sl__acks *acks);

/* The published watermark (ordinal) of a lane, and the seq of the
 * position at it (0 when none). */
int64_t sl__acks_lane_ordinal(sl__acks *acks, size_t source_stage, int worker,
                              int sink, int64_t *seq);

#endif
