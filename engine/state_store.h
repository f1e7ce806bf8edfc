/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The state file (settings.state): a SQLite database with one table,
 *
 *   sluice_positions(pipeline, source, worker, sink,   -- the key
 *                    ordinal, locator, offset, seq,    -- the position
 *                    file_dev, file_ino, updated)
 *
 * one row per lane (source worker, sink): the lane's acknowledged
 * watermark and the position of the record at it. Rows only move forward:
 * a write with a lower ordinal than the row holds changes nothing, so
 * writers that race (the committer, an exactly-once store) cannot undo
 * each other. The file may be the same database a `sqlite` store writes
 * to; the table lives beside the store's tables.
 *
 * Thread: a connection belongs to one thread at a time.
 */
#ifndef SLUICE_ENGINE_STATE_STORE_H
#define SLUICE_ENGINE_STATE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;

/* One saved lane. Strings are owned by the row (or borrowed when writing). */
typedef struct sl__state_row {
    char *source;           /* source stage name */
    int worker;             /* source worker index */
    char *sink;             /* terminal stage name */
    int64_t ordinal;        /* acknowledged watermark, from 1 */
    char *locator;          /* file path or URL at it; NULL for none */
    int64_t offset;         /* byte offset after the record, or -1 */
    int64_t seq;            /* the source's sequence number */
    uint64_t file_dev;      /* identity of the file at locator; 0 unknown */
    uint64_t file_ino;
} sl__state_row;

/*
 * Open path (created if missing) in WAL mode with a busy timeout, and make
 * sure the table exists. Returns 0 or SL_EIO with a message in err.
 */
int sl__state_open(const char *path, sqlite3 **out, char *err, size_t err_len);

/* Close a connection from sl__state_open. NULL: no-op. */
void sl__state_close(sqlite3 *db);

/* Every row of pipeline into *rows (*n of them; free with
 * sl__state_rows_free). 0, SL_EIO (message in err) or SL_ENOMEM. */
int sl__state_load(sqlite3 *db, const char *pipeline, sl__state_row **rows,
                   size_t *n, char *err, size_t err_len);
void sl__state_rows_free(sl__state_row *rows, size_t n);

/*
 * Write rows (moving each forward only) with db, inside the caller's open
 * transaction if there is one. db may be any connection to the state file,
 * e.g. an exactly-once store's. 0 or SL_EIO (message in err).
 */
int sl__state_put(sqlite3 *db, const char *pipeline, const sl__state_row *rows,
                  size_t n, char *err, size_t err_len);

/* sl__state_put in a transaction of its own (BEGIN IMMEDIATE .. COMMIT). */
int sl__state_save(sqlite3 *db, const char *pipeline, const sl__state_row *rows,
                   size_t n, char *err, size_t err_len);

#endif
