/*
 * The state file: saved source positions (see state_store.h).
 */
#include "engine/state_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

#define STATE_BUSY_MS 10000   /* a store may hold the write lock a while */

static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS sluice_positions ("
    " pipeline TEXT NOT NULL, source TEXT NOT NULL,"
    " worker INTEGER NOT NULL, sink TEXT NOT NULL,"
    " ordinal INTEGER NOT NULL, locator TEXT, offset INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, file_dev INTEGER NOT NULL DEFAULT 0,"
    " file_ino INTEGER NOT NULL DEFAULT 0, updated TEXT,"
    " PRIMARY KEY (pipeline, source, worker, sink))";

static const char put_sql[] =
    "INSERT INTO sluice_positions (pipeline, source, worker, sink, ordinal,"
    " locator, offset, seq, file_dev, file_ino, updated)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
    " strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
    " ON CONFLICT (pipeline, source, worker, sink) DO UPDATE SET"
    " ordinal = excluded.ordinal, locator = excluded.locator,"
    " offset = excluded.offset, seq = excluded.seq,"
    " file_dev = excluded.file_dev, file_ino = excluded.file_ino,"
    " updated = excluded.updated"
    " WHERE excluded.ordinal > sluice_positions.ordinal";

static int fail(sqlite3 *db, const char *doing, char *err, size_t err_len)
{
    snprintf(err, err_len, "state file: %s: %s", doing,
             db != NULL ? sqlite3_errmsg(db) : "out of memory");
    return SL_EIO;
}

int sl__state_open(const char *path, sqlite3 **out, char *err, size_t err_len)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, err_len, "state file %s: %s", path,
                 db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return SL_EIO;
    }
    sqlite3_busy_timeout(db, STATE_BUSY_MS);
    /* NORMAL in WAL mode: a commit survives the process being killed; a
     * power loss may lose the last ones, which only means reading those
     * records again (positions are at-least-once by themselves). */
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, create_sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, err_len, "state file %s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return SL_EIO;
    }
    *out = db;
    return 0;
}

void sl__state_close(sqlite3 *db)
{
    sqlite3_close(db);
}

static char *dup_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? strdup((const char *)t) : NULL;
}

void sl__state_rows_free(sl__state_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].source);
        free(rows[i].sink);
        free(rows[i].locator);
    }
    free(rows);
}

int sl__state_load(sqlite3 *db, const char *pipeline, sl__state_row **rows,
                   size_t *n, char *err, size_t err_len)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
            "SELECT source, worker, sink, ordinal, locator, offset, seq,"
            " file_dev, file_ino FROM sluice_positions WHERE pipeline = ?1",
            -1, &st, NULL) != SQLITE_OK)
        return fail(db, "reading positions", err, err_len);
    sqlite3_bind_text(st, 1, pipeline, -1, SQLITE_STATIC);
    sl__state_row *out = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap > 0 ? cap * 2 : 8;
            sl__state_row *nr = realloc(out, ncap * sizeof(*nr));
            if (nr == NULL)
                goto out_nomem;
            out = nr;
            cap = ncap;
        }
        sl__state_row *r = &out[len++];
        memset(r, 0, sizeof(*r));
        r->source = dup_text(st, 0);
        r->worker = sqlite3_column_int(st, 1);
        r->sink = dup_text(st, 2);
        r->ordinal = sqlite3_column_int64(st, 3);
        if (sqlite3_column_type(st, 4) != SQLITE_NULL &&
            (r->locator = dup_text(st, 4)) == NULL)
            goto out_nomem;
        r->offset = sqlite3_column_int64(st, 5);
        r->seq = sqlite3_column_int64(st, 6);
        r->file_dev = (uint64_t)sqlite3_column_int64(st, 7);
        r->file_ino = (uint64_t)sqlite3_column_int64(st, 8);
        if (r->source == NULL || r->sink == NULL)
            goto out_nomem;
    }
    if (rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        sl__state_rows_free(out, len);
        return fail(db, "reading positions", err, err_len);
    }
    sqlite3_finalize(st);
    *rows = out;
    *n = len;
    return 0;
out_nomem:
    sqlite3_finalize(st);
    sl__state_rows_free(out, len);
    return SL_ENOMEM;
}

int sl__state_put(sqlite3 *db, const char *pipeline, const sl__state_row *rows,
                  size_t n, char *err, size_t err_len)
{
    if (n == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, put_sql, -1, &st, NULL) != SQLITE_OK)
        return fail(db, "saving positions", err, err_len);
    for (size_t i = 0; i < n; i++) {
        const sl__state_row *r = &rows[i];
        sqlite3_bind_text(st, 1, pipeline, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->source, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, r->worker);
        sqlite3_bind_text(st, 4, r->sink, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, r->ordinal);
        if (r->locator != NULL)
            sqlite3_bind_text(st, 6, r->locator, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 6);
        sqlite3_bind_int64(st, 7, r->offset);
        sqlite3_bind_int64(st, 8, r->seq);
        sqlite3_bind_int64(st, 9, (sqlite3_int64)r->file_dev);
        sqlite3_bind_int64(st, 10, (sqlite3_int64)r->file_ino);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_DONE) {
            int ret = fail(db, "saving positions", err, err_len);
            sqlite3_finalize(st);
            return ret;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int sl__state_save(sqlite3 *db, const char *pipeline, const sl__state_row *rows,
                   size_t n, char *err, size_t err_len)
{
    if (n == 0)
        return 0;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return fail(db, "beginning a transaction", err, err_len);
    int rc = sl__state_put(db, pipeline, rows, n, err, err_len);
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = fail(db, "committing", err, err_len);
    if (rc != 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}
