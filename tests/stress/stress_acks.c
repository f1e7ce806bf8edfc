/*
 * Stress for the acknowledgement tracker (a plain program: ThreadSanitizer
 * checks it).
 *
 * One source thread attaches records and tees each into two branches:
 *
 *     src ──┬─> a: two threads free their copies (out of order)
 *           └─> b: an exactly-once store commits batches of them with
 *                  its own SQLite connection, rolling every fifth batch
 *                  back once before committing it
 *
 * while the committer thread saves positions to the same file. The source
 * goes round its ring several times, so it waits for room and slots are
 * reused. At the end both lanes are at the last record, and the state file
 * says so.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/acks.h"
#include "engine/record_internal.h"
#include "sluice/channel.h"
#include "sluice/error.h"

#include "stress_common.h"

#define BATCH 256

static const size_t src_outs[] = {1};
static const size_t tee_outs[] = {2, 3};
static const sl__acks_stage stages[] = {
    {"src", true, 1, 1, src_outs},
    {"tee", false, 1, 2, tee_outs},
    {"a", false, 1, 0, NULL},
    {"b", false, 1, 0, NULL},
};

static sl__acks *acks;
static sl_ctx *root;
static sl_chan *to_a, *to_b;
static int64_t n_records;
static char state_path[256];

static void free_record(void *item)
{
    sl_record_free(item);
}

static void *source_main(void *arg)
{
    (void)arg;
    sl__ack_source *as = sl__acks_source(acks, 0, 0);
    for (int64_t i = 1; i <= n_records; i++) {
        if (sl__acks_full(as))
            CHECK(sl__acks_wait_room(as, root) == 0, "wait_room");
        sl_record *r = sl_record_new();
        CHECK(r != NULL, "oom");
        CHECK(sl_record_set_position(r, "src", (i & 1024) ? "f1" : "f2",
                                     i * 10, i) == 0, "position");
        CHECK(sl__acks_attach(as, r) == 1, "attach %lld", (long long)i);
        sl_record *c = sl_record_copy(r);
        CHECK(c != NULL, "copy");
        sl__record_ack_narrow(c, sl__acks_reach(acks, 2));
        sl__record_ack_narrow(r, sl__acks_reach(acks, 3));
        CHECK(sl_chan_send(to_a, root, c) == 0, "send a");
        CHECK(sl_chan_send(to_b, root, r) == 0, "send b");
    }
    sl_chan_close(to_a);
    sl_chan_close(to_b);
    return NULL;
}

static void *a_main(void *arg)
{
    (void)arg;
    void *item;
    while (sl_chan_recv(to_a, root, &item) == 0)
        sl_record_free(item);
    return NULL;
}

static void commit(sqlite3 *db, sl_record **batch, size_t n, int round)
{
    int sink = sl__acks_sink_index(acks, 3);
    if (round % 5 == 0) {
        CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
              "begin: %s", sqlite3_errmsg(db));
        CHECK(sl__acks_prepare(acks, sink, db, batch, n) == 0, "prepare");
        CHECK(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK,
              "rollback");
        sl__acks_finish_txn(acks, sink, batch, n, false);
    }
    CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
          "begin: %s", sqlite3_errmsg(db));
    CHECK(sl__acks_prepare(acks, sink, db, batch, n) == 0, "prepare");
    CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK,
          "commit: %s", sqlite3_errmsg(db));
    sl__acks_finish_txn(acks, sink, batch, n, true);
    for (size_t i = 0; i < n; i++)
        sl_record_free(batch[i]);
}

static void *b_main(void *arg)
{
    (void)arg;
    sqlite3 *db;
    CHECK(sqlite3_open(state_path, &db) == SQLITE_OK, "open");
    sqlite3_busy_timeout(db, 10000);
    sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
    sl_record *batch[BATCH];
    size_t n = 0;
    int round = 0;
    void *item;
    while (sl_chan_recv(to_b, root, &item) == 0) {
        batch[n++] = item;
        if (n == BATCH) {
            commit(db, batch, n, round++);
            n = 0;
        }
    }
    if (n > 0)
        commit(db, batch, n, round);
    sqlite3_close(db);
    return NULL;
}

static int64_t saved(const char *sink)
{
    sqlite3 *db;
    CHECK(sqlite3_open(state_path, &db) == SQLITE_OK, "open");
    sqlite3_stmt *st;
    CHECK(sqlite3_prepare_v2(db, "SELECT ordinal FROM sluice_positions WHERE"
                             " sink = ?1", -1, &st, NULL) == SQLITE_OK, "sql");
    sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
    int64_t o = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return o;
}

int main(void)
{
    const char *scale = getenv("SLUICE_STRESS_SCALE");
    n_records = 150000;   /* a little over two laps of the ring */
    if (scale != NULL && atoi(scale) > 0)
        n_records *= atoi(scale);
    char dir[] = "/tmp/sluice-stress-acks-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(state_path, sizeof(state_path), "%s/state.db", dir);
    CHECK(sl_ctx_create(&root) == 0, "ctx");
    char err[512];
    CHECK(sl__acks_create(state_path, "stress", stages, 4, root, err,
                          sizeof(err), &acks) == 0, "create: %s", err);
    CHECK(sl__acks_start(acks) == 0, "start");
    CHECK(sl_chan_create(256, free_record, &to_a) == 0, "chan");
    CHECK(sl_chan_create(256, free_record, &to_b) == 0, "chan");

    pthread_t src, a1, a2, b;
    CHECK(pthread_create(&a1, NULL, a_main, NULL) == 0, "thread");
    CHECK(pthread_create(&a2, NULL, a_main, NULL) == 0, "thread");
    CHECK(pthread_create(&b, NULL, b_main, NULL) == 0, "thread");
    CHECK(pthread_create(&src, NULL, source_main, NULL) == 0, "thread");
    pthread_join(src, NULL);
    pthread_join(a1, NULL);
    pthread_join(a2, NULL);
    pthread_join(b, NULL);

    CHECK(sl__acks_finish(acks) == 0, "finish");
    int64_t seq_a = 0, seq_b = 0;
    int64_t oa = sl__acks_lane_ordinal(acks, 0, 0, 0, &seq_a);
    int64_t ob = sl__acks_lane_ordinal(acks, 0, 0, 1, &seq_b);
    CHECK(oa == n_records && seq_a == n_records, "lane a at %lld", (long long)oa);
    CHECK(ob == n_records && seq_b == n_records, "lane b at %lld", (long long)ob);
    CHECK(saved("a") == n_records, "saved a %lld", (long long)saved("a"));
    CHECK(saved("b") == n_records, "saved b %lld", (long long)saved("b"));
    sl__acks_destroy(acks);
    sl_chan_destroy(to_a);
    sl_chan_destroy(to_b);
    sl_ctx_destroy(root);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    printf("stress_acks: %lld records through a tee, ring reused, ok\n",
           (long long)n_records);
    return 0;
}
