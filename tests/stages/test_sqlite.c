/*
 * The `sqlite` sink, against real database files checked with the SQLite
 * API on a second connection.
 */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include "stages/stage_test.h"

extern const sl_stage_desc sl_stage_sqlite;

TestSuite(sqlite_sink, .init = st_setup, .fini = st_teardown);

static void put(sl_harness *h, const char *json)
{
    int rc = sl_harness_process(h, st_record_json(json));
    cr_assert_eq(rc, 0, "%s: %s", json, sl_harness_last_error(h));
}

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK,
                 "open %s", path);
    return db;
}

/* The first column of the first row of sql, as text (static copy); "" if
 * no row. */
static const char *q(const char *path, const char *sql)
{
    static char out[4096];
    sqlite3 *db = db_open(path);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    out[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        snprintf(out, sizeof(out), "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static void exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    sqlite3_close(db);
}

Test(sqlite_sink, creates_a_typed_table)
{
    const char *db = st_path("t.db");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: events}", db));
    put(h, "{\"id\":1,\"score\":2.5,\"name\":\"a\",\"ok\":true,\"tags\":[\"x\",1],"
           "\"meta\":{\"k\":null},\"none\":null}");
    put(h, "{\"id\":2,\"score\":3,\"name\":\"b\\u0000c\",\"ok\":false,\"tags\":[],"
           "\"meta\":{},\"none\":7}");
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_stored_count(h), 2);
    cr_expect_str_eq(q(db, "select group_concat(name || ':' || type, ',') from "
                           "pragma_table_info('events')"),
                     "id:INTEGER,score:REAL,name:TEXT,ok:INTEGER,tags:TEXT,meta:TEXT,none:");
    cr_expect_str_eq(q(db, "select id||'|'||score||'|'||name||'|'||ok||'|'||tags||'|'||meta||'|'"
                           "||typeof(none) from events where id = 1"),
                     "1|2.5|a|1|[\"x\",1]|{\"k\":null}|null");
    cr_expect_str_eq(q(db, "select typeof(score)||length(cast(name as blob))||ok||none "
                           "from events where id = 2"), "real307");
    cr_expect_str_eq(q(db, "pragma journal_mode"), "wal");
    sl_harness_destroy(h);
}

Test(sqlite_sink, batches_commit_whole)
{
    const char *db = st_path("b.db");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t, batch_size: 3}", db));
    for (int i = 1; i <= 5; i++)
        put(h, st_fmt("{\"id\":%d}", i));
    cr_expect_eq(sl_harness_stored_count(h), 3, "one full batch committed");
    cr_expect_str_eq(q(db, "select count(*) from t"), "3");
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_stored_count(h), 5);
    cr_expect_str_eq(q(db, "select count(*) || ',' || sum(id) from t"), "5,15");
    /* Flushing with nothing pending is a no-op. */
    cr_assert_eq(sl_harness_flush(h), 0);
    sl_harness_destroy(h);
}

Test(sqlite_sink, open_batch_rolls_back_on_destroy)
{
    const char *db = st_path("r.db");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t, batch_size: 10}", db));
    for (int i = 1; i <= 4; i++)
        put(h, st_fmt("{\"id\":%d}", i));
    cr_expect_eq(sl_harness_stored_count(h), 0);
    sl_harness_destroy(h);
    /* The batch never committed: not even the table exists. */
    cr_expect_str_eq(q(db, "select count(*) from sqlite_master where name = 't'"), "0");
}

Test(sqlite_sink, upsert_on_key)
{
    const char *db = st_path("u.db");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: users, key: id}", db));
    put(h, "{\"id\":1,\"name\":\"ann\",\"n\":1}");
    put(h, "{\"id\":2,\"name\":\"bob\",\"n\":1}");
    put(h, "{\"id\":1,\"name\":\"ann2\",\"n\":2}");
    put(h, "{\"n\":3,\"id\":2}");   /* other order, fewer fields */
    put(h, "{\"id\":3}");           /* key only: DO NOTHING on conflict */
    put(h, "{\"id\":3}");
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_stored_count(h), 6);
    cr_expect_str_eq(q(db, "select group_concat(id||'='||coalesce(name,'-')||'/'||coalesce(n,'-'), ' ') "
                           "from (select * from users order by id)"),
                     "1=ann2/2 2=bob/3 3=-/-");
    cr_expect_str_eq(q(db, "select pk from pragma_table_info('users') where name = 'id'"), "1");
    sl_harness_destroy(h);

    /* Running again: same rows. */
    h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: users, key: id}", db));
    put(h, "{\"id\":1,\"name\":\"ann3\",\"n\":9}");
    cr_assert_eq(sl_harness_flush(h), 0);
    sl_harness_destroy(h);
    cr_expect_str_eq(q(db, "select count(*)||name from users where id = 1"), "1ann3");
    cr_expect_str_eq(q(db, "select count(*) from users"), "3");
}

Test(sqlite_sink, key_missing_or_null)
{
    const char *db = st_path("k.db");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t, key: id}", db));
    cr_assert_eq(sl_harness_process(h, st_record_json("{\"name\":\"x\"}")), SL_EINVAL);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("record: %s: table t: the record has no key field 'id'", db));
    put(h, "{\"id\":1,\"name\":\"a\"}");
    cr_assert_eq(sl_harness_process(h, st_record_json("{\"id\":null,\"name\":\"x\"}")), SL_EINVAL);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("record: %s: table t: key field 'id' is null", db));
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_stored_count(h), 1);
    cr_expect_eq(sl_harness_failed_count(h), 2);
    sl_harness_destroy(h);
}

Test(sqlite_sink, hostile_names_are_only_names)
{
    const char *db = st_path("i.db");
    const char *table = "t\"; DROP TABLE keep; --";
    exec(db, "create table keep(x); insert into keep values (1)");
    sl_harness *h = st_harness(&sl_stage_sqlite,
                               st_fmt("{path: %s, table: '%s', key: 'k\"'}", db, table));
    put(h, "{\"k\\\"\":1,\"x\\\"); DROP TABLE keep; --\":\"v1\",\"'q'\":\"it's\"}");
    put(h, "{\"k\\\"\":1,\"x\\\"); DROP TABLE keep; --\":\"v2\",\"new]col\":\"n\"}");
    cr_assert_eq(sl_harness_flush(h), 0, "%s", sl_harness_last_error(h));
    sl_harness_destroy(h);
    cr_expect_str_eq(q(db, "select count(*) from keep"), "1");
    cr_expect_str_eq(q(db, "select \"x\"\"); DROP TABLE keep; --\" || \"'q'\" || \"new]col\" "
                           "from \"t\"\"; DROP TABLE keep; --\""), "v2it'sn");
    cr_expect_str_eq(q(db, "select count(*) from \"t\"\"; DROP TABLE keep; --\""), "1");
}

Test(sqlite_sink, existing_table_keeps_its_columns_and_gains_new_ones)
{
    const char *db = st_path("e.db");
    exec(db, "create table t (ID integer, name text not null default 'none', extra real)");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t}", db));
    put(h, "{\"id\":1,\"name\":\"a\"}");
    put(h, "{\"id\":2,\"added\":4.5,\"more\":[1]}");
    cr_assert_eq(sl_harness_flush(h), 0, "%s", sl_harness_last_error(h));
    sl_harness_destroy(h);
    cr_expect_str_eq(q(db, "select group_concat(name || ':' || type, ',') from pragma_table_info('t')"),
                     "ID:INTEGER,name:TEXT,extra:REAL,added:REAL,more:TEXT");
    cr_expect_str_eq(q(db, "select group_concat(ID||name||coalesce(added,'-')||coalesce(more,'-'), ' ') "
                           "from (select * from t order by ID)"),
                     "1a-- 2none4.5[1]");
}

Test(sqlite_sink, existing_table_without_key_index_gets_one)
{
    const char *db = st_path("x.db");
    exec(db, "create table t (id integer, v text); insert into t values (1, 'old')");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t, key: id}", db));
    put(h, "{\"id\":1,\"v\":\"new\"}");
    cr_assert_eq(sl_harness_flush(h), 0, "%s", sl_harness_last_error(h));
    sl_harness_destroy(h);
    cr_expect_str_eq(q(db, "select count(*)||v from t"), "1new");
    cr_expect_str_eq(q(db, "select name from sqlite_master where type = 'index'"), "sluice_t_id");
}

Test(sqlite_sink, bad_row_costs_only_itself)
{
    /* A NOT NULL violation in the middle of a batch: the batch is rolled
     * back, the bad record is returned with an error naming the table, and
     * the good rows are written again and committed. */
    const char *db = st_path("n.db");
    exec(db, "create table t (id integer primary key, v text not null)");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t, batch_size: 4}", db));
    put(h, "{\"id\":1,\"v\":\"a\"}");
    put(h, "{\"id\":2,\"v\":\"b\"}");
    sl_record *bad = st_record_at("", "in.jsonl", 3);
    cr_assert_eq(sl_record_set(bad, "id", sl_value_int(3)), 0);
    cr_assert_eq(sl_record_set(bad, "v", sl_value_null()), 0);
    cr_assert_eq(sl_harness_process(h, bad), SL_EINVAL);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("in.jsonl line 3: %s: table t: inserting a row: NOT NULL constraint "
                            "failed: t.v", db));
    put(h, "{\"id\":4,\"v\":\"d\"}");
    put(h, "{\"id\":5,\"v\":\"e\"}");
    cr_expect_eq(sl_harness_stored_count(h), 4, "the batch of four good rows committed");
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_str_eq(q(db, "select group_concat(id) from t"), "1,2,4,5");
    cr_expect_eq(sl_harness_failed_count(h), 1);
    sl_harness_destroy(h);
}

Test(sqlite_sink, type_mismatch_on_an_integer_key)
{
    const char *db = st_path("m.db");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t, key: id}", db));
    put(h, "{\"id\":1}");
    cr_assert_eq(sl_harness_process(h, st_record_json("{\"id\":\"abc\"}")), SL_ETYPE);
    cr_expect(strstr(sl_harness_last_error(h), "datatype mismatch") != NULL, "%s",
              sl_harness_last_error(h));
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_str_eq(q(db, "select count(*) from t"), "1");
    sl_harness_destroy(h);
}

Test(sqlite_sink, shapes_change_between_records)
{
    /* More column sets than the statement cache holds. */
    const char *db = st_path("s.db");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t, batch_size: 7}", db));
    for (int i = 0; i < 200; i++)
        put(h, st_fmt("{\"c%d\":%d,\"id\":%d}", i % 40, i, i));
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_str_eq(q(db, "select count(*)||'/'||sum(id) from t"), "200/19900");
    cr_expect_str_eq(q(db, "select count(*) from pragma_table_info('t')"), "41");
    cr_expect_str_eq(q(db, "select c39 from t where id = 199"), "199");
    sl_harness_destroy(h);
}

Test(sqlite_sink, empty_record_is_an_error)
{
    const char *db = st_path("z.db");
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t}", db));
    cr_assert_eq(sl_harness_process(h, st_record_json("{}")), SL_EINVAL);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("record: %s: table t: the record has no fields", db));
    sl_harness_destroy(h);
}

Test(sqlite_sink, missing_directory_is_an_error_naming_the_path)
{
    const char *db = st_path("nope/x.db");
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_sqlite, st_fmt("{path: %s, table: t}", db), &h), 0);
    cr_assert_eq(sl_harness_init(h), SL_ENOTFOUND);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("%s: unable to open database file (no such file or directory)", db));
    sl_harness_destroy(h);
}

Test(sqlite_sink, read_only_directory_is_an_error)
{
    mkdir(st_path("ro"), 0555);
    chmod(st_path("ro"), 0555);
    const char *db = st_path("ro/x.db");
    bool dropped = st_drop_root();
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_sqlite, st_fmt("{path: %s, table: t}", db), &h), 0);
    int rc = sl_harness_init(h);
    cr_expect_str_eq(sl_harness_last_error(h),
                     st_fmt("%s: unable to open database file (permission denied)", db));
    cr_assert_eq(rc, SL_EIO);
    sl_harness_destroy(h);
    st_regain_root(dropped);
}

Test(sqlite_sink, disk_full_keeps_only_whole_batches)
{
    /* A file size limit stands in for a full disk: once it is hit, every
     * committed row belongs to a whole batch, the error says so, and the
     * database is intact. */
    const char *db = st_path("full.db");
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {.rlim_cur = 256 * 1024, .rlim_max = RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    sl_harness *h = st_harness(&sl_stage_sqlite, st_fmt("{path: %s, table: t, batch_size: 50}", db));
    int rc = 0;
    int i = 0;
    while (rc == 0 && i < 100000) {
        rc = sl_harness_process(h, st_record_json(st_fmt("{\"id\":%d,\"pad\":\"%0200d\"}", i, i)));
        i++;
    }
    cr_assert_neq(rc, 0, "the limit was reached");
    cr_expect(rc == SL_ENOSPC || rc == SL_EIO, "%s", sl_error_name(rc));
    cr_expect(strstr(sl_harness_last_error(h), "table t") != NULL, "%s", sl_harness_last_error(h));
    uint64_t stored = sl_harness_stored_count(h);
    cr_expect_eq(stored % 50, 0, "whole batches only: %llu", (unsigned long long)stored);
    sl_harness_destroy(h);
    rl.rlim_cur = RLIM_INFINITY;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    cr_expect_str_eq(q(db, "pragma integrity_check"), "ok");
    cr_expect_str_eq(q(db, "select count(*) from t"), st_fmt("%llu", (unsigned long long)stored));
}

Test(sqlite_sink, options)
{
    sl_harness *h = NULL;
    cr_expect_eq(sl_harness_create(&sl_stage_sqlite, "path: x.db", &h), SL_ECONFIG, "table required");
    sl_harness_destroy(h);
    cr_expect_eq(sl_harness_create(&sl_stage_sqlite, "{path: x.db, table: t, batch_size: 0}", &h),
                 SL_ECONFIG);
    sl_harness_destroy(h);
    cr_expect_eq(sl_harness_create(&sl_stage_sqlite, "{path: x.db, table: t, synchronous: fast}", &h),
                 SL_ECONFIG);
    sl_harness_destroy(h);
    h = st_harness(&sl_stage_sqlite,
                   st_fmt("{path: %s, table: t, synchronous: full, busy_timeout: 250ms}",
                          st_path("o.db")));
    put(h, "{\"a\":1}");
    cr_assert_eq(sl_harness_flush(h), 0);
    sl_harness_destroy(h);
}

Test(sqlite_sink, full_database_says_disk_full)
{
    /* max_size caps the database: SQLite then reports SQLITE_FULL, as on a
     * full disk. */
    const char *db = st_path("cap.db");
    sl_harness *h = st_harness(&sl_stage_sqlite,
                               st_fmt("{path: %s, table: t, batch_size: 20, max_size: 64KiB}", db));
    int rc = 0;
    int i = 0;
    while (rc == 0 && i < 100000) {
        rc = sl_harness_process(h, st_record_json(st_fmt("{\"id\":%d,\"pad\":\"%0200d\"}", i, i)));
        i++;
    }
    cr_assert_eq(rc, SL_ENOSPC, "%s: %s", sl_error_name(rc), sl_harness_last_error(h));
    cr_expect(strstr(sl_harness_last_error(h),
                     st_fmt("%s: table t: inserting a row: disk full (database or disk is full)", db))
                  != NULL, "%s", sl_harness_last_error(h));
    uint64_t stored = sl_harness_stored_count(h);
    cr_expect_gt(stored, 0);
    cr_expect_eq(stored % 20, 0, "whole batches only: %llu", (unsigned long long)stored);
    /* The rows held with the failed one were written again without it; a
     * flush commits them if they fit, and fails as a whole if not. */
    rc = sl_harness_flush(h);
    cr_expect(rc == 0 || rc == SL_ENOSPC, "%s", sl_error_name(rc));
    if (rc == 0)
        cr_expect_eq(sl_harness_stored_count(h), stored + (uint64_t)(i - 1) % 20);
    else
        cr_expect_eq(sl_harness_stored_count(h), stored);
    stored = sl_harness_stored_count(h);
    sl_harness_destroy(h);
    cr_expect_str_eq(q(db, "pragma integrity_check"), "ok");
    cr_expect_str_eq(q(db, "select count(*) from t"), st_fmt("%llu", (unsigned long long)stored));
}

Test(sqlite_sink, failed_batches_go_to_dead_letter_record_by_record)
{
    /* A capped database fills up; under on_error: dead_letter every record
     * ends up either in the table or, once, at on_error: the one in hand
     * when a write fails (returned to the engine), the batch held at a
     * failed flush (sl_record_reject). */
    const char *db = st_path("cap-dl.db");
    sl_harness *h = st_harness(&sl_stage_sqlite,
                               st_fmt("{path: %s, table: t, batch_size: 20, max_size: 64KiB}", db));
    cr_assert_eq(sl_harness_set_on_error(h, "dead_letter"), 0);
    const int n = 600;
    for (int i = 0; i < n; i++) {
        int rc = sl_harness_process(h, st_record_json(st_fmt("{\"id\":%d,\"pad\":\"%0200d\"}", i, i)));
        cr_assert(rc == 0 || rc == SL_ENOSPC, "%s", sl_error_name(rc));
    }
    cr_assert_eq(sl_harness_flush(h), 0, "%s", sl_harness_last_error(h));
    uint64_t stored = sl_harness_stored_count(h);
    size_t failed = sl_harness_failed_count(h), rejected = sl_harness_rejected_count(h);
    cr_expect_gt(failed, 0);
    cr_expect_eq(stored + failed + rejected, (uint64_t)n, "%llu + %zu + %zu",
                 (unsigned long long)stored, failed, rejected);
    cr_expect_eq(sl_harness_error_count(h), (uint64_t)(failed + rejected));
    for (size_t k = 0; k < rejected; k++)
        cr_expect(strstr(sl_harness_rejected_reason(h, k), "disk full") != NULL, "%s",
                  sl_harness_rejected_reason(h, k));
    sl_harness_destroy(h);
    cr_expect_str_eq(q(db, "select count(distinct id) from t"),
                     st_fmt("%llu", (unsigned long long)stored));
}

typedef struct writer_arg {
    sl_harness *h;
    int base;
    int failures;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        /* Every 500 rows a new column: both workers add the same ones. */
        char json[64];   /* st_fmt's buffer is not for two threads */
        snprintf(json, sizeof(json), "{\"id\":%d,\"c%d\":%d}", a->base + i, i / 500, i);
        sl_value *v = NULL;
        sl_json_parse(json, strlen(json), NULL, &v, NULL);
        sl_record *r = sl_record_new();
        sl_record_set_fields(r, v);
        if (sl_harness_process(a->h, r) != 0)
            a->failures++;
    }
    if (sl_harness_flush(a->h) != 0)
        a->failures++;
    return NULL;
}

Test(sqlite_sink, two_workers_share_a_database)
{
    /* Two workers, one connection each: the table is created once, columns
     * added by one are seen by the other, and no row is lost. */
    const char *db = st_path("w.db");
    const char *opts = st_fmt("{path: %s, table: t, batch_size: 100, key: id}", db);
    writer_arg a[2];
    pthread_t t[2];
    for (int k = 0; k < 2; k++) {
        sl_harness *h = NULL;
        cr_assert_eq(sl_harness_create(&sl_stage_sqlite, opts, &h), 0);
        sl_harness_set_worker(h, k, 2);
        cr_assert_eq(sl_harness_init(h), 0);
        a[k] = (writer_arg){h, k * 100000, 0};
    }
    for (int k = 0; k < 2; k++)
        cr_assert_eq(pthread_create(&t[k], NULL, writer, &a[k]), 0);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    for (int k = 0; k < 2; k++) {
        cr_expect_eq(a[k].failures, 0, "worker %d: %s", k, sl_harness_last_error(a[k].h));
        cr_expect_eq(sl_harness_stored_count(a[k].h), 2000);
        sl_harness_destroy(a[k].h);
    }
    cr_expect_str_eq(q(db, "select count(*) from t"), "4000");
    cr_expect_str_eq(q(db, "select count(*) from pragma_table_info('t')"), "5");
}
