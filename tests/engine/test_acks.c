/*
 * Acknowledgements (engine/acks.c): a source position is done only once
 * every record made from it is dealt with; records held by a stage keep it
 * open; an exactly-once store's positions follow its commit; saved
 * positions come back on the next start. The tracker is driven directly
 * (records attached and freed by the test), and once through a real run
 * whose store holds its records until the test lets it go.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/acks.h"
#include "engine/diag.h"
#include "engine/record_internal.h"
#include "engine/run.h"
#include "engine/run_internal.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

static char tmpdir[64];
static char state_path[128];
static sl_ctx *root;

static void setup(void)
{
    strcpy(tmpdir, "/tmp/sluice-acks-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(state_path, sizeof(state_path), "%s/state.db", tmpdir);
    cr_assert_eq(sl_ctx_create(&root), 0);
}

static void teardown(void)
{
    sl_ctx_destroy(root);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
}

TestSuite(acks, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------------ */
/* Graphs                                                              */
/* ------------------------------------------------------------------ */

/* src -> store */
static const size_t line_outs[] = {1};
static const sl__acks_stage line_stages[] = {
    {"src", true, 1, 1, line_outs},
    {"store", false, 1, 0, NULL},
};

/* src -> split -> {a, b} (a tee) */
static const size_t tee_src_outs[] = {1};
static const size_t tee_outs[] = {2, 3};
static const sl__acks_stage tee_stages[] = {
    {"src", true, 1, 1, tee_src_outs},
    {"split", false, 1, 2, tee_outs},
    {"a", false, 1, 0, NULL},
    {"b", false, 1, 0, NULL},
};

static sl__acks *make(const sl__acks_stage *stages, size_t n)
{
    char err[512] = "";
    sl__acks *acks = NULL;
    int rc = sl__acks_create(state_path, "p", stages, n, root, err,
                             sizeof(err), &acks);
    cr_assert_eq(rc, 0, "create: %d %s", rc, err);
    return acks;
}

/* A record at position (line n, byte 10n) of f.jsonl, attached. */
static sl_record *read_one(sl__acks *acks, int64_t n)
{
    sl_record *r = sl_record_new();
    cr_assert_not_null(r);
    cr_assert_eq(sl_record_set_position(r, "src", "f.jsonl", n * 10, n), 0);
    sl__ack_source *as = sl__acks_source(acks, 0, 0);
    cr_assert_not_null(as);
    cr_assert_not(sl__acks_full(as));
    cr_assert_eq(sl__acks_attach(as, r), 1);
    return r;
}

/* The lane (src, sink)'s watermark after an advance. */
static int64_t mark(sl__acks *acks, int sink, int64_t *seq)
{
    sl__acks_advance_all(acks);
    return sl__acks_lane_ordinal(acks, 0, 0, sink, seq);
}

/* ------------------------------------------------------------------ */
/* In flight                                                           */
/* ------------------------------------------------------------------ */

Test(acks, a_record_held_keeps_its_position_and_all_after_it_open)
{
    sl__acks *acks = make(line_stages, 2);
    sl_record *r[6];
    for (int i = 1; i <= 5; i++)
        r[i] = read_one(acks, i);
    cr_expect_eq(mark(acks, 0, NULL), 0, "nothing dealt with yet");
    sl_record_free(r[1]);
    sl_record_free(r[2]);
    sl_record_free(r[4]);
    int64_t seq = -1;
    cr_expect_eq(mark(acks, 0, &seq), 2, "record 3 is still held");
    cr_expect_eq(seq, 2);
    sl_record_free(r[3]);
    cr_expect_eq(mark(acks, 0, &seq), 4);
    cr_expect_eq(seq, 4);
    sl_record_free(r[5]);
    cr_expect_eq(mark(acks, 0, NULL), 5);
    sl__acks_destroy(acks);
}

Test(acks, records_made_from_one_hold_its_position_until_all_are_done)
{
    sl__acks *acks = make(line_stages, 2);
    sl_record *in = read_one(acks, 1);
    /* A split: two records emitted while `in` is processed, then `in` goes. */
    sl_record *x = sl_record_new(), *y = sl_record_new();
    cr_assert_eq(sl__record_ack_inherit(x, in), 0);
    cr_assert_eq(sl__record_ack_inherit(y, in), 0);
    sl_record_free(in);
    cr_expect_eq(mark(acks, 0, NULL), 0);
    sl_record_free(x);
    cr_expect_eq(mark(acks, 0, NULL), 0, "y is still in flight");
    sl_record_free(y);
    cr_expect_eq(mark(acks, 0, NULL), 1);
    sl__acks_destroy(acks);
}

Test(acks, a_batch_answers_for_the_records_it_took_over)
{
    sl__acks *acks = make(line_stages, 2);
    sl_record *r1 = read_one(acks, 1), *r2 = read_one(acks, 2);
    sl_record *r3 = read_one(acks, 3);
    cr_assert_eq(sl_record_take_acks(r3, r1), 0);
    cr_assert_eq(sl_record_take_acks(r3, r2), 0);
    cr_expect_eq(sl__record_ack_count(r3), 3);
    cr_expect_eq(sl__record_ack_count(r1), 0);
    sl_record_free(r1);
    sl_record_free(r2);
    cr_expect_eq(mark(acks, 0, NULL), 0, "the batch is still in flight");
    sl_record_free(r3);
    cr_expect_eq(mark(acks, 0, NULL), 3);
    r3 = sl_record_new();
    cr_expect_eq(sl_record_take_acks(r3, r3), SL_EINVAL);
    cr_expect_eq(sl_record_take_acks(NULL, r3), SL_EINVAL);
    sl_record_free(r3);
    sl__acks_destroy(acks);
}

Test(acks, tee_branches_are_acknowledged_per_store)
{
    sl__acks *acks = make(tee_stages, 4);
    cr_assert_eq(sl__acks_sink_index(acks, 2), 0);
    cr_assert_eq(sl__acks_sink_index(acks, 3), 1);
    cr_assert_eq(sl__acks_sink_index(acks, 1), -1);
    cr_expect_eq(sl__acks_reach(acks, 0), 3u);
    sl_record *r = read_one(acks, 1);
    sl_record *copy = sl_record_copy(r);
    sl__record_ack_narrow(copy, sl__acks_reach(acks, 2));
    sl__record_ack_narrow(r, sl__acks_reach(acks, 3));
    sl_record_free(copy);   /* stored by a */
    cr_expect_eq(mark(acks, 0, NULL), 1);
    cr_expect_eq(mark(acks, 1, NULL), 0, "b still holds its copy");
    sl_record_free(r);
    cr_expect_eq(mark(acks, 1, NULL), 1);
    sl__acks_destroy(acks);
}

Test(acks, records_freed_after_a_cancel_are_not_acknowledged)
{
    sl__acks *acks = make(line_stages, 2);
    sl_record *r1 = read_one(acks, 1), *r2 = read_one(acks, 2);
    sl_record_free(r1);
    sl_ctx_cancel(root, SL_ECANCELED, "test");
    sl_record_free(r2);     /* abandoned by a failing run */
    cr_expect_eq(mark(acks, 0, NULL), 1);
    sl__acks_destroy(acks);
}

/* ------------------------------------------------------------------ */
/* Exactly-once stores                                                 */
/* ------------------------------------------------------------------ */

static int64_t saved_ordinal(const char *sink)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(state_path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT ordinal FROM sluice_positions"
                                    " WHERE sink = ?1", -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
    int64_t o = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return o;
}

Test(acks, a_store_transaction_publishes_its_positions_only_when_committed)
{
    sl__acks *acks = make(line_stages, 2);
    sl_record *r[3] = {read_one(acks, 1), read_one(acks, 2), read_one(acks, 3)};
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(state_path, &db), SQLITE_OK);

    /* Rolled back: positions stay, and the records still count. */
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(sl__acks_prepare(acks, 0, db, r, 2), 0);
    cr_assert_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sl__acks_finish_txn(acks, 0, r, 2, false);
    cr_expect_eq(mark(acks, 0, NULL), 0);
    cr_expect_eq(saved_ordinal("store"), 0);

    /* Committed: the lane and the row move together. */
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(sl__acks_prepare(acks, 0, db, r, 2), 0);
    cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sl__acks_finish_txn(acks, 0, r, 2, true);
    cr_expect_eq(sl__acks_lane_ordinal(acks, 0, 0, 0, NULL), 2);
    cr_expect_eq(saved_ordinal("store"), 2);
    /* Freeing the committed records releases nothing twice. */
    sl_record_free(r[0]);
    sl_record_free(r[1]);
    cr_expect_eq(mark(acks, 0, NULL), 2, "record 3 is in no transaction yet");
    sl_record_free(r[2]);
    cr_expect_eq(mark(acks, 0, NULL), 3);
    cr_expect_eq(sl__acks_prepare(acks, 7, db, r, 0), SL_EINVAL);
    sqlite3_close(db);
    sl__acks_destroy(acks);
}

/* Elements of a split: n records inheriting in's references. */
static void split(sl_record *in, sl_record **out, int n)
{
    for (int i = 0; i < n; i++) {
        out[i] = sl_record_new();
        cr_assert_not_null(out[i]);
        cr_assert_eq(sl__record_ack_inherit(out[i], in), 0);
    }
}

Test(acks, a_store_commits_only_the_rows_of_complete_source_records)
{
    sl__acks *acks = make(line_stages, 2);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(state_path, &db), SQLITE_OK);
    /* Line 1 splits into a, b, c; line 2 into d, e. */
    sl_record *l1 = read_one(acks, 1), *l2 = read_one(acks, 2);
    sl_record *e1[3], *e2[2];
    split(l1, e1, 3);
    sl_record_free(l1);
    split(l2, e2, 2);

    /* The store has a, b: c is on its way, nothing may commit. */
    sl_record *pend[5] = {e1[0], e1[1]};
    cr_expect_eq(sl__acks_ready(acks, 0, pend, 2), 0);
    /* a, b, c, d: line 1 is whole; d's line is still being split. */
    pend[2] = e1[2];
    pend[3] = e2[0];
    cr_expect_eq(sl__acks_ready(acks, 0, pend, 4), 3);
    cr_expect_eq(mark(acks, 0, NULL), 0, "asking changes nothing");

    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(sl__acks_prepare(acks, 0, db, pend, 3), 0);
    cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sl__acks_finish_txn(acks, 0, pend, 3, true);
    cr_expect_eq(sl__acks_lane_ordinal(acks, 0, 0, 0, NULL), 1);
    cr_expect_eq(saved_ordinal("store"), 1);
    for (int i = 0; i < 3; i++)
        sl_record_free(e1[i]);

    /* d carried; line 2's input is done, e arrives: both whole. */
    sl_record_free(l2);
    pend[0] = e2[0];
    pend[1] = e2[1];
    cr_expect_eq(sl__acks_ready(acks, 0, pend, 1), 0, "e is not in yet");
    cr_expect_eq(sl__acks_ready(acks, 0, pend, 2), 2);

    /* Out of order: line 4's row before line 3 is dealt with. */
    sl_record *l3 = read_one(acks, 3), *l4 = read_one(acks, 4);
    pend[2] = l4;
    cr_expect_eq(sl__acks_ready(acks, 0, pend, 3), 2);
    pend[2] = l3;
    pend[3] = l4;
    cr_expect_eq(sl__acks_ready(acks, 0, pend, 4), 4);
    /* A whole line behind an incomplete one waits with it. */
    pend[0] = e2[0];
    pend[1] = l3;
    cr_expect_eq(sl__acks_ready(acks, 0, pend, 2), 0);
    for (int i = 0; i < 2; i++)
        sl_record_free(e2[i]);
    sl_record_free(l3);
    sl_record_free(l4);
    cr_expect_eq(mark(acks, 0, NULL), 4);
    sqlite3_close(db);
    sl__acks_destroy(acks);
}

/* ------------------------------------------------------------------ */
/* Saved positions                                                     */
/* ------------------------------------------------------------------ */

Test(acks, saved_positions_come_back_and_a_store_ahead_skips_what_it_has)
{
    sl__acks *acks = make(tee_stages, 4);
    for (int i = 1; i <= 4; i++) {
        sl_record *r = read_one(acks, i);
        sl_record *copy = sl_record_copy(r);
        sl__record_ack_narrow(copy, 1u);          /* a */
        sl__record_ack_narrow(r, 2u);             /* b */
        sl_record_free(copy);
        sl_record_free(r);
    }
    cr_assert_eq(sl__acks_finish(acks), 0);
    sl__acks_destroy(acks);
    cr_expect_eq(saved_ordinal("a"), 4);
    cr_expect_eq(saved_ordinal("b"), 4);

    /* Again, with b behind: resume after b's point; a skips 3 and 4. */
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(state_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "UPDATE sluice_positions SET ordinal = 2,"
                              " seq = 2, offset = 20 WHERE sink = 'b'",
                              NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    acks = make(tee_stages, 4);
    sl__ack_source *as = sl__acks_source(acks, 0, 0);
    const char *loc;
    int64_t off, seq;
    uint64_t dev, ino;
    cr_assert_eq(sl__acks_resume_point(as, &loc, &off, &seq, &dev, &ino), 0);
    cr_expect_str_eq(loc, "f.jsonl");
    cr_expect_eq(off, 20);
    cr_expect_eq(seq, 2);
    sl_record *r3 = read_one(acks, 3);
    cr_expect_eq(sl__record_ack_at(r3, 0)->mask, 2u, "a has record 3");
    sl_record_free(r3);
    sl__acks_destroy(acks);

    /* A source that never asks where to resume starts from its beginning:
     * no store skips what it sends. */
    acks = make(tee_stages, 4);
    sl_record *r = read_one(acks, 1);
    cr_expect_eq(sl__record_ack_at(r, 0)->mask, 3u);
    sl_record_free(r);
    sl__acks_destroy(acks);
}

Test(acks, no_saved_position_and_bad_state_files)
{
    sl__acks *acks = make(line_stages, 2);
    const char *loc;
    int64_t off, seq;
    uint64_t dev, ino;
    cr_expect_eq(sl__acks_resume_point(sl__acks_source(acks, 0, 0), &loc,
                                       &off, &seq, &dev, &ino), SL_ENOTFOUND);
    cr_expect_null(sl__acks_source(acks, 1, 0));
    sl__acks_destroy(acks);

    char err[512];
    sl__acks *bad = NULL;
    cr_expect_eq(sl__acks_create("/nonexistent-dir/x/state.db", "p",
                                 line_stages, 2, root, err, sizeof(err), &bad),
                 SL_EIO);
    cr_expect_null(bad);
    cr_expect_neq(strstr(err, "state file"), NULL, "%s", err);

    sl__acks_stage many[40];
    for (int i = 0; i < 40; i++)
        many[i] = (sl__acks_stage){"s", false, 1, 0, NULL};
    cr_expect_eq(sl__acks_create(state_path, "p", many, 40, root, err,
                                 sizeof(err), &bad), SL_ELIMIT);
}

/* ------------------------------------------------------------------ */
/* Through a run: a store holding its records                          */
/* ------------------------------------------------------------------ */

#define HOLD_N 10

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static sl_record *held[HOLD_N];      /* guarded by mu */
static int n_held;                   /* guarded by mu */
static sl_ctx *gate;                 /* the holding store waits on it */

static int count_run(void *state, sl_stage_ctx *sc)
{
    (void)state;
    for (int64_t i = 1; i <= HOLD_N; i++) {
        sl_record *r = sl_record_new();
        cr_assert_not_null(r);
        sl_record_set_position(r, sl_stage_name(sc), "mem", i * 10, i);
        int rc = sl_emit(sc, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const sl_stage_desc count_desc = {
    SL_STAGE_DESC_HEADER, .name = "count", .kind = SL_STAGE_SOURCE,
    .summary = "count", .state_size = 1, .run = count_run,
};

/* Holds every record; once it has them all, waits for the gate, then
 * stores them. */
static int hold_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    pthread_mutex_lock(&mu);
    held[n_held++] = rec;
    bool all = n_held == HOLD_N;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
    if (!all)
        return 0;
    sl_ctx_wait(gate, INT64_MAX);
    for (int i = 0; i < HOLD_N; i++)
        sl_record_stored(sc, held[i]);
    return 0;
}

static const sl_stage_desc hold_desc = {
    SL_STAGE_DESC_HEADER, .name = "hold", .kind = SL_STAGE_SINK,
    .summary = "hold", .state_size = 1, .process = hold_process,
};

Test(acks, positions_do_not_advance_while_a_store_holds_the_records)
{
    cr_assert_eq(sl_ctx_create(&gate), 0);
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "test.yaml";
    cfg.name = "hold";
    cfg.settings.channel_capacity = 16;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    cfg.settings.state = state_path;
    cfg.metrics.interval_ns = SL_NS_PER_S;
    sl_stage_conf confs[2];
    memset(confs, 0, sizeof(confs));
    confs[0] = (sl_stage_conf){.name = "src", .type = "count",
                               .desc = &count_desc, .workers = 1};
    confs[1] = (sl_stage_conf){.name = "store", .type = "hold",
                               .desc = &hold_desc, .workers = 1};
    size_t in0 = 0;
    sl__run_stage rs[2] = {{.conf = &confs[0]},
                           {.conf = &confs[1], .n_inputs = 1, .inputs = &in0}};
    sl__run_opts o = {.cfg = &cfg, .n_stages = 2, .stages = rs};
    sl_diag *diag = sl__diag_create();
    sl__run *run = NULL;
    cr_assert_eq(sl__run_create(&o, diag, &run), 0);
    cr_assert_eq(sl__run_start(run), 0);

    pthread_mutex_lock(&mu);
    while (n_held < HOLD_N)
        pthread_cond_wait(&cond, &mu);
    pthread_mutex_unlock(&mu);
    cr_expect_eq(mark(run->acks, 0, NULL), 0,
                 "every record is held by the store: nothing is done");

    sl_ctx_cancel(gate, SL_ECANCELED, "go");
    sl__run_result res;
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.exit_code, 0);
    int64_t seq = 0;
    cr_expect_eq(sl__acks_lane_ordinal(run->acks, 0, 0, 0, &seq), HOLD_N);
    cr_expect_eq(seq, HOLD_N);
    cr_expect_eq(saved_ordinal("store"), HOLD_N);
    sl__run_destroy(run);
    sl__diag_destroy(diag);
    sl_ctx_destroy(gate);
}
