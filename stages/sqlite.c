/*
 * `sqlite`: store records as rows of a SQLite table, in batched
 * transactions.
 *
 * The database is opened in WAL mode with a busy timeout. Rows go in
 * through one prepared INSERT per set of field names (cached), with every
 * value a bound parameter and every identifier double-quoted, so field and
 * table names cannot inject SQL. Records are held until their batch
 * commits — BEGIN IMMEDIATE, up to batch_size rows, COMMIT, and on flush —
 * and only then counted as stored: only whole batches are ever committed.
 * When the file is settings.state (exactly-once), a transaction holds whole
 * source records only: rows whose source record is not complete yet (more
 * elements of a split line on their way) are carried into the next one.
 *
 * Table and columns: when the table is missing it is created from the first
 * record's fields, typed by their values (int and bool INTEGER, double
 * REAL, string TEXT, array and object TEXT holding JSON, null untyped), the
 * `key` column being the PRIMARY KEY. An existing table keeps its columns;
 * a field it lacks is added with ALTER TABLE ADD COLUMN, typed the same way.
 * With `key`, rows are upserted (INSERT ... ON CONFLICT(key) DO UPDATE SET
 * the record's other fields); an existing table without a unique index on
 * the key gets one (named sluice_<table>_<key>). Column names match fields
 * case-insensitively, as SQLite does.
 *
 * Failures: a row that cannot be written rolls the whole open batch back;
 * the stage reports the row's error (naming the table and SQLite's message)
 * and writes the rest of the batch again, so one bad record costs only
 * itself. When the database itself fails (disk full, I/O error) the batch
 * stays held and is written again on the next record (which, failing,
 * goes to on_error); when it fails on flush, the batch is over and each
 * of its records goes to on_error (sl_record_reject) with the reason.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sluice/plugin.h"

#include "io_errors.h"
#include "record_where.h"

#define SQ_CACHE 16            /* prepared INSERTs kept, least recently used out */

enum { SYNC_OFF = 0, SYNC_NORMAL = 1, SYNC_FULL = 2 };

typedef struct sq_stmt {
    sqlite3_stmt *stmt;         /* the INSERT; NULL when the slot is free */
    char **names;               /* field names in record order (owned) */
    size_t n;                   /* entries in names */
    long key_col;               /* index of the key in names, or -1 */
    uint64_t used;              /* last use, for eviction */
} sq_stmt;

typedef struct sq_json {
    int param;                  /* 1-based parameter */
    size_t off;                 /* JSON text in the json buffer */
    size_t len;
} sq_json;

typedef struct sqlite_sink {
    char *path;                 /* option: database file */
    char *table;                /* option: table name */
    int64_t batch_size;         /* option: rows per transaction */
    char *key;                  /* option: upsert column, or NULL */
    int synchronous;            /* option: SYNC_* */
    int64_t busy_timeout;       /* option: ns to wait for a lock */
    int64_t max_size;           /* option: database size cap in bytes, 0 = none */
    const char *ukey;           /* key, or NULL when none (or empty) */

    sqlite3 *db;                /* the connection; NULL until open */
    sqlite3_stmt *begin;        /* BEGIN IMMEDIATE */
    sqlite3_stmt *commit;       /* COMMIT */
    sqlite3_stmt *rollback;     /* ROLLBACK */
    bool in_txn;                /* a batch transaction is open */
    bool exact;                 /* the file is settings.state: rows and the
                                   source positions they complete commit
                                   together (exactly-once) */
    bool need_replay;           /* pending rows must be written again */

    bool table_known;           /* tcols reflects the table */
    char **tcols;               /* the table's column names (owned) */
    size_t n_tcols;             /* entries in tcols */

    sq_stmt cache[SQ_CACHE];    /* prepared INSERTs */
    sq_stmt *last;              /* the entry used for the previous row */
    uint64_t tick;              /* use counter */

    sl_record **pending;        /* rows of the open batch, held until commit */
    size_t n_pending;           /* entries in pending */
    size_t cap_pending;         /* entries allocated in pending */
    size_t held;                /* of them, carried from the last commit
                                   (exact: their source records were not
                                   complete yet) */
    uint64_t pending_bytes;     /* bytes bound for them */
    uint64_t row_bytes;         /* bytes bound for the last row */

    sl_buf sql;                 /* statement text being built */
    sl_buf json;                /* JSON of the current row's arrays/objects */
    sq_json *jsons;             /* their parameters */
    size_t cap_jsons;           /* entries allocated in jsons */
    char msg[1024];             /* why the last internal call failed */
    bool db_failed;             /* it was SQLite that failed (vs. the record) */
    bool msg_set;               /* msg describes the last failure */
} sqlite_sink;

/* ---------------------------------------------------------------- errors */

/* The sluice code for a SQLite result code. */
static int sq_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return SL_ENOSPC;
    case SQLITE_NOMEM:
        return SL_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return SL_EAGAIN;
    case SQLITE_MISMATCH:
        return SL_ETYPE;
    case SQLITE_TOOBIG:
        return SL_ELIMIT;
    case SQLITE_CONSTRAINT:
        return SL_EINVAL;
    case SQLITE_CANTOPEN:
    case SQLITE_NOTFOUND:
        return SL_EIO;
    default:
        return SL_EIO;
    }
}

/* Note a SQLite failure in sq->msg, naming the table; returns the code. */
static int sq_fail(sqlite_sink *sq, int rc, const char *doing)
{
    const char *m = sq->db != NULL ? sqlite3_errmsg(sq->db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_FULL)
        snprintf(sq->msg, sizeof(sq->msg), "%s: table %s: %s: disk full (%s)", sq->path,
                 sq->table, doing, m);
    else
        snprintf(sq->msg, sizeof(sq->msg), "%s: table %s: %s: %s", sq->path, sq->table,
                 doing, m);
    sq->db_failed = true;
    sq->msg_set = true;
    return sq_code(rc);
}

/* Note a record the table cannot take (nothing was written); returns
 * SL_EINVAL. */
static int sq_invalid(sqlite_sink *sq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int sq_invalid(sqlite_sink *sq, const char *fmt, ...)
{
    int n = snprintf(sq->msg, sizeof(sq->msg), "%s: table %s: ", sq->path, sq->table);
    if (n > 0 && (size_t)n < sizeof(sq->msg)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sq->msg + n, sizeof(sq->msg) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    sq->db_failed = false;
    sq->msg_set = true;
    return SL_EINVAL;
}

/* The description of the last failure; one that left none was a failed
 * allocation. */
static const char *sq_message(sqlite_sink *sq)
{
    if (!sq->msg_set) {
        snprintf(sq->msg, sizeof(sq->msg), "%s: table %s: out of memory", sq->path, sq->table);
        sq->msg_set = true;
    }
    return sq->msg;
}

/* ---------------------------------------------------------------- SQL text */

/* Append name as a quoted identifier: "name", with " doubled. */
static int put_ident(sl_buf *b, const char *name)
{
    if (sl_buf_putc(b, '"') < 0)
        return SL_ENOMEM;
    for (const char *p = name; *p != '\0'; p++) {
        const char *q = strchr(p, '"');
        size_t n = q != NULL ? (size_t)(q - p) + 1 : strlen(p);
        if (sl_buf_append(b, p, n) < 0 || (q != NULL && sl_buf_putc(b, '"') < 0))
            return SL_ENOMEM;
        p += n - 1;
    }
    return sl_buf_putc(b, '"');
}

static int put_str(sl_buf *b, const char *s)
{
    return sl_buf_append(b, s, strlen(s));
}

/* The declared type for a column first seen holding v ("" = untyped). */
static const char *type_for(const sl_value *v)
{
    switch (sl_value_type(v)) {
    case SL_TYPE_BOOL:
    case SL_TYPE_INT:
        return "INTEGER";
    case SL_TYPE_DOUBLE:
        return "REAL";
    case SL_TYPE_STRING:
    case SL_TYPE_ARRAY:
    case SL_TYPE_OBJECT:
        return "TEXT";
    default:
        return "";
    }
}

/* Run one statement with no results. Returns 0 or a code (msg filled). */
static int exec_sql(sqlite_sink *sq, const char *sql, const char *doing)
{
    int rc = sqlite3_exec(sq->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_fail(sq, rc, doing);
}

/* Step a statement with no results, then reset it. */
static int step_done(sqlite_sink *sq, sqlite3_stmt *st, const char *doing)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE ? 0 : sq_fail(sq, rc, doing);
    sqlite3_reset(st);
    return code;
}

/* ---------------------------------------------------------------- schema */

static void forget_table(sqlite_sink *sq)
{
    for (size_t i = 0; i < sq->n_tcols; i++)
        free(sq->tcols[i]);
    free(sq->tcols);
    sq->tcols = NULL;
    sq->n_tcols = 0;
    sq->table_known = false;
}

static void free_entry(sq_stmt *e)
{
    sqlite3_finalize(e->stmt);
    for (size_t i = 0; i < e->n; i++)
        free(e->names[i]);
    free(e->names);
    memset(e, 0, sizeof(*e));
}

/* Drop every cached statement and what we know of the table (after a
 * rollback, which may have undone a CREATE or ALTER). */
static void forget_schema(sqlite_sink *sq)
{
    for (size_t i = 0; i < SQ_CACHE; i++)
        if (sq->cache[i].stmt != NULL)
            free_entry(&sq->cache[i]);
    sq->last = NULL;
    forget_table(sq);
}

/* Read the table's columns (none: it does not exist). */
static int load_table(sqlite_sink *sq)
{
    forget_table(sq);
    sl_buf_reset(&sq->sql);
    if (put_str(&sq->sql, "PRAGMA table_info(") < 0 || put_ident(&sq->sql, sq->table) < 0 ||
        sl_buf_putc(&sq->sql, ')') < 0)
        return SL_ENOMEM;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(sq->db, sq->sql.data, (int)sq->sql.len, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(sq, rc, "reading the table's columns");
    size_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        if (sq->n_tcols == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            char **nc = realloc(sq->tcols, cap * sizeof(*nc));
            if (nc == NULL)
                goto out_nomem;
            sq->tcols = nc;
        }
        if ((sq->tcols[sq->n_tcols] = strdup(name != NULL ? name : "")) == NULL)
            goto out_nomem;
        sq->n_tcols++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sq_fail(sq, rc, "reading the table's columns");
    sq->table_known = sq->n_tcols > 0;
    return 0;
out_nomem:
    sqlite3_finalize(st);
    return SL_ENOMEM;
}

static bool has_column(const sqlite_sink *sq, const char *name)
{
    for (size_t i = 0; i < sq->n_tcols; i++)
        if (sqlite3_stricmp(sq->tcols[i], name) == 0)
            return true;
    return false;
}

/* CREATE TABLE from the fields of the first record. */
static int create_table(sqlite_sink *sq, const sl_value *fields)
{
    sl_buf *b = &sq->sql;
    sl_buf_reset(b);
    if (put_str(b, "CREATE TABLE IF NOT EXISTS ") < 0 || put_ident(b, sq->table) < 0 ||
        put_str(b, " (") < 0)
        return SL_ENOMEM;
    size_t i = 0;
    for (void *it = sl_object_iter(fields); it != NULL; it = sl_object_next(fields, it), i++) {
        const char *name = sl_object_iter_key(it);
        const char *type = type_for(sl_object_iter_value(it));
        if ((i > 0 && put_str(b, ", ") < 0) || put_ident(b, name) < 0 ||
            (type[0] != '\0' && (sl_buf_putc(b, ' ') < 0 || put_str(b, type) < 0)))
            return SL_ENOMEM;
        if (sq->ukey != NULL && strcmp(name, sq->ukey) == 0) {
            if (put_str(b, " PRIMARY KEY") < 0)
                return SL_ENOMEM;
        }
    }
    if (sl_buf_putc(b, ')') < 0)
        return SL_ENOMEM;
    int rc = exec_sql(sq, b->data, "creating the table");
    if (rc < 0)
        return rc;
    return load_table(sq);
}

/* ALTER TABLE ADD COLUMN for each field the table lacks. */
static int add_columns(sqlite_sink *sq, const sl_value *fields)
{
    for (void *it = sl_object_iter(fields); it != NULL; it = sl_object_next(fields, it)) {
        const char *name = sl_object_iter_key(it);
        if (has_column(sq, name))
            continue;
        const char *type = type_for(sl_object_iter_value(it));
        sl_buf *b = &sq->sql;
        sl_buf_reset(b);
        if (put_str(b, "ALTER TABLE ") < 0 || put_ident(b, sq->table) < 0 ||
            put_str(b, " ADD COLUMN ") < 0 || put_ident(b, name) < 0 ||
            (type[0] != '\0' && (sl_buf_putc(b, ' ') < 0 || put_str(b, type) < 0)))
            return SL_ENOMEM;
        int rc = exec_sql(sq, b->data, "adding a column");
        if (rc < 0) {
            /* Another writer may have added it meanwhile. */
            int lrc = load_table(sq);
            if (lrc < 0)
                return lrc;
            if (!has_column(sq, name))
                return rc;
            continue;
        }
        char **nc = realloc(sq->tcols, (sq->n_tcols + 1) * sizeof(*nc));
        if (nc == NULL)
            return SL_ENOMEM;
        sq->tcols = nc;
        if ((sq->tcols[sq->n_tcols] = strdup(name)) == NULL)
            return SL_ENOMEM;
        sq->n_tcols++;
    }
    return 0;
}

/* CREATE UNIQUE INDEX on the key of an existing table that lacks one. */
static int add_key_index(sqlite_sink *sq)
{
    sl_buf *b = &sq->sql;
    sl_buf_reset(b);
    size_t nlen = strlen(sq->table) + strlen(sq->ukey) + 16;
    char *iname = malloc(nlen);
    if (iname == NULL)
        return SL_ENOMEM;
    snprintf(iname, nlen, "sluice_%s_%s", sq->table, sq->ukey);
    int rc = SL_ENOMEM;
    if (put_str(b, "CREATE UNIQUE INDEX IF NOT EXISTS ") == 0 && put_ident(b, iname) == 0 &&
        put_str(b, " ON ") == 0 && put_ident(b, sq->table) == 0 && sl_buf_putc(b, '(') == 0 &&
        put_ident(b, sq->ukey) == 0 && sl_buf_putc(b, ')') == 0)
        rc = exec_sql(sq, b->data, "creating a unique index on the key");
    free(iname);
    return rc;
}

/* ---------------------------------------------------------------- INSERTs */

/* The INSERT text for the record's field names. */
static int build_insert(sqlite_sink *sq, const sq_stmt *e)
{
    sl_buf *b = &sq->sql;
    sl_buf_reset(b);
    if (put_str(b, "INSERT INTO ") < 0 || put_ident(b, sq->table) < 0 || put_str(b, " (") < 0)
        return SL_ENOMEM;
    for (size_t i = 0; i < e->n; i++)
        if ((i > 0 && sl_buf_putc(b, ',') < 0) || put_ident(b, e->names[i]) < 0)
            return SL_ENOMEM;
    if (put_str(b, ") VALUES (") < 0)
        return SL_ENOMEM;
    for (size_t i = 0; i < e->n; i++)
        if (put_str(b, i > 0 ? ",?" : "?") < 0)
            return SL_ENOMEM;
    if (sl_buf_putc(b, ')') < 0)
        return SL_ENOMEM;
    if (sq->ukey == NULL)
        return 0;
    if (put_str(b, " ON CONFLICT(") < 0 || put_ident(b, sq->ukey) < 0 || put_str(b, ") DO ") < 0)
        return SL_ENOMEM;
    if (e->n == 1)
        return put_str(b, "NOTHING");
    if (put_str(b, "UPDATE SET ") < 0)
        return SL_ENOMEM;
    bool first = true;
    for (size_t i = 0; i < e->n; i++) {
        if ((long)i == e->key_col)
            continue;
        if ((!first && sl_buf_putc(b, ',') < 0) || put_ident(b, e->names[i]) < 0 ||
            put_str(b, "=excluded.") < 0 || put_ident(b, e->names[i]) < 0)
            return SL_ENOMEM;
        first = false;
    }
    return 0;
}

/* Does cache entry e hold exactly fields' names, in order? */
static bool entry_matches(const sq_stmt *e, const sl_value *fields)
{
    if (e->stmt == NULL || sl_object_len(fields) != e->n)
        return false;
    size_t i = 0;
    for (void *it = sl_object_iter(fields); it != NULL; it = sl_object_next(fields, it), i++)
        if (strcmp(sl_object_iter_key(it), e->names[i]) != 0)
            return false;
    return true;
}

/* Prepare and cache the INSERT for fields' names, creating or extending the
 * table first. *out is the entry. */
static int make_entry(sqlite_sink *sq, const sl_value *fields, sq_stmt **out)
{
    int rc;
    if (sq->ukey != NULL && sl_object_get(fields, sq->ukey) == NULL) {
        return sq_invalid(sq, "the record has no key field '%s'", sq->ukey);
    }
    if (!sq->table_known && (rc = load_table(sq)) < 0)
        return rc;
    if (!sq->table_known)
        rc = create_table(sq, fields);
    else
        rc = add_columns(sq, fields);
    if (rc < 0)
        return rc;

    sq_stmt *e = &sq->cache[0];
    for (size_t i = 0; i < SQ_CACHE; i++) {
        if (sq->cache[i].stmt == NULL) {
            e = &sq->cache[i];
            break;
        }
        if (sq->cache[i].used < e->used)
            e = &sq->cache[i];
    }
    if (e->stmt != NULL) {
        if (sq->last == e)
            sq->last = NULL;
        free_entry(e);
    }
    size_t n = sl_object_len(fields);
    sq_stmt ne = {.key_col = -1};
    ne.names = calloc(n, sizeof(*ne.names));
    if (ne.names == NULL)
        return SL_ENOMEM;
    for (void *it = sl_object_iter(fields); it != NULL; it = sl_object_next(fields, it)) {
        const char *name = sl_object_iter_key(it);
        if (sq->ukey != NULL && strcmp(name, sq->ukey) == 0)
            ne.key_col = (long)ne.n;
        if ((ne.names[ne.n] = strdup(name)) == NULL) {
            free_entry(&ne);
            return SL_ENOMEM;
        }
        ne.n++;
    }
    if ((rc = build_insert(sq, &ne)) < 0) {
        free_entry(&ne);
        return rc;
    }
    int src = sqlite3_prepare_v3(sq->db, sq->sql.data, (int)sq->sql.len,
                                 SQLITE_PREPARE_PERSISTENT, &ne.stmt, NULL);
    if (src != SQLITE_OK && sq->ukey != NULL &&
        strstr(sqlite3_errmsg(sq->db), "ON CONFLICT") != NULL) {
        /* An existing table without a unique index on the key. */
        if ((rc = add_key_index(sq)) < 0) {
            free_entry(&ne);
            return rc;
        }
        if ((rc = build_insert(sq, &ne)) < 0) {
            free_entry(&ne);
            return rc;
        }
        src = sqlite3_prepare_v3(sq->db, sq->sql.data, (int)sq->sql.len,
                                 SQLITE_PREPARE_PERSISTENT, &ne.stmt, NULL);
    }
    if (src != SQLITE_OK) {
        rc = sq_fail(sq, src, "preparing the insert");
        free_entry(&ne);
        return rc;
    }
    *e = ne;
    *out = e;
    return 0;
}

/* Room for n JSON parameters. */
static int reserve_jsons(sqlite_sink *sq, size_t n)
{
    if (n <= sq->cap_jsons)
        return 0;
    sq_json *nj = realloc(sq->jsons, n * sizeof(*nj));
    if (nj == NULL)
        return SL_ENOMEM;
    sq->jsons = nj;
    sq->cap_jsons = n;
    return 0;
}

/*
 * Bind fields to e's parameters. With check, stop with 1 at the first name
 * that differs from e's (the record has another shape). Returns 0, 1, or a
 * negative code (msg filled).
 */
static int bind_row(sqlite_sink *sq, sq_stmt *e, const sl_value *fields, bool check)
{
    sqlite3_stmt *st = e->stmt;
    size_t n_json = 0;
    int i = 0;
    int rc = SQLITE_OK;
    uint64_t bytes = 0;
    sl_buf_reset(&sq->json);
    for (void *it = sl_object_iter(fields); it != NULL; it = sl_object_next(fields, it), i++) {
        if (check && strcmp(sl_object_iter_key(it), e->names[i]) != 0)
            return 1;
        const sl_value *v = sl_object_iter_value(it);
        const char *s;
        size_t len;
        switch (sl_value_type(v)) {
        case SL_TYPE_NULL:
            if (i == e->key_col) {
                return sq_invalid(sq, "key field '%s' is null", sq->ukey);
            }
            rc = sqlite3_bind_null(st, i + 1);
            break;
        case SL_TYPE_BOOL:
            rc = sqlite3_bind_int(st, i + 1, sl_value_get_bool(v) ? 1 : 0);
            break;
        case SL_TYPE_INT:
            rc = sqlite3_bind_int64(st, i + 1, sl_value_get_int(v));
            break;
        case SL_TYPE_DOUBLE:
            rc = sqlite3_bind_double(st, i + 1, sl_value_get_double(v));
            break;
        case SL_TYPE_STRING:
            /* The record outlives the step: no copy. */
            s = sl_value_get_string(v, &len);
            rc = sqlite3_bind_text64(st, i + 1, s, len, SQLITE_STATIC, SQLITE_UTF8);
            bytes += len;
            break;
        default:
            if (reserve_jsons(sq, n_json + 1) < 0)
                return SL_ENOMEM;
            sq->jsons[n_json].param = i + 1;
            sq->jsons[n_json].off = sq->json.len;
            if (sl_json_dump(v, &sq->json) < 0)
                return SL_ENOMEM;
            sq->jsons[n_json].len = sq->json.len - sq->jsons[n_json].off;
            n_json++;
            break;
        }
        if (rc != SQLITE_OK)
            return sq_fail(sq, rc, "binding a value");
        bytes += 8;   /* a number, or the cost of a column */
    }
    sq->row_bytes = bytes + sq->json.len;
    /* Bound last: the buffer may have moved while it grew. */
    for (size_t j = 0; j < n_json; j++) {
        rc = sqlite3_bind_text64(st, sq->jsons[j].param, sq->json.data + sq->jsons[j].off,
                                 sq->jsons[j].len, SQLITE_STATIC, SQLITE_UTF8);
        if (rc != SQLITE_OK)
            return sq_fail(sq, rc, "binding a value");
    }
    return 0;
}

/* Insert one record inside the open transaction. 0 or a code (msg filled). */
static int insert_row(sqlite_sink *sq, const sl_record *rec)
{
    const sl_value *fields = sl_record_fields(rec);
    sq->msg_set = false;
    sq->db_failed = false;
    if (sl_object_len(fields) == 0) {
        return sq_invalid(sq, "the record has no fields");
    }
    sq_stmt *e = sq->last;
    int rc = 1;
    if (e != NULL && e->n == sl_object_len(fields))
        rc = bind_row(sq, e, fields, true);
    if (rc == 1) {
        e = NULL;
        for (size_t i = 0; i < SQ_CACHE && e == NULL; i++)
            if (entry_matches(&sq->cache[i], fields))
                e = &sq->cache[i];
        if (e == NULL && (rc = make_entry(sq, fields, &e)) < 0)
            return rc;
        rc = bind_row(sq, e, fields, false);
    }
    if (rc < 0) {
        sqlite3_reset(e->stmt);
        return rc;
    }
    e->used = ++sq->tick;
    sq->last = e;
    return step_done(sq, e->stmt, "inserting a row");
}

/* ---------------------------------------------------------------- batches */

static int begin_batch(sqlite_sink *sq)
{
    int rc = step_done(sq, sq->begin, "beginning a transaction");
    if (rc == 0)
        sq->in_txn = true;
    return rc;
}

/* Roll the open transaction back, and forget the schema it may have
 * changed. The pending records are kept for a replay. */
static void abort_batch(sqlite_sink *sq)
{
    if (!sqlite3_get_autocommit(sq->db)) {
        /* Keep the description of the failure that brought us here. */
        char keep[sizeof(sq->msg)];
        bool db_failed = sq->db_failed, msg_set = sq->msg_set;
        memcpy(keep, sq->msg, sizeof(keep));
        (void)step_done(sq, sq->rollback, "rolling back");
        memcpy(sq->msg, keep, sizeof(keep));
        sq->db_failed = db_failed;
        sq->msg_set = msg_set;
    }
    sq->in_txn = false;
    forget_schema(sq);
}

/* Open a transaction and write the pending records into it again. */
static int replay(sqlite_sink *sq)
{
    int rc = begin_batch(sq);
    sq->pending_bytes = 0;
    for (size_t i = 0; rc == 0 && i < sq->n_pending; i++) {
        rc = insert_row(sq, sq->pending[i]);
        sq->pending_bytes += sq->row_bytes;
    }
    if (rc < 0) {
        abort_batch(sq);
        return rc;
    }
    sq->need_replay = false;
    return 0;
}

/*
 * COMMIT, then count the committed rows as stored (bytes_out: the bytes
 * bound) and free their records. When the file is settings.state, the
 * source positions the rows complete go into the same transaction first,
 * and only rows whose source records are complete commit
 * (sl_stage_acks_ready): the first k pending rows. The others (the rest of
 * a `json` split line is still on its way) stay pending — carried into
 * the next transaction, written again there — so every transaction covers
 * whole source records and a crash repeats none of its rows. With k == 0
 * nothing commits and the transaction goes on. On failure every row is
 * still pending (the transaction may hold fewer: replay it).
 */
static int commit_batch(sqlite_sink *sq, sl_stage_ctx *sc)
{
    size_t n = sq->n_pending, k = n;
    uint64_t pb = sq->pending_bytes, rb = sq->row_bytes;
    int rc = 0;
    if (sq->exact) {
        k = sl_stage_acks_ready(sc, sq->pending, n);
        if (k == 0) {
            sq->held = n;
            return 0;
        }
        if (k < n) {
            /* The transaction holds every row: write the whole records
             * alone into a new one. */
            abort_batch(sq);
            sq->n_pending = k;
            rc = replay(sq);
            sq->n_pending = n;
            if (rc < 0)
                goto out_fail;
        }
        rc = sl_stage_acks_prepare(sc, sq->db, sq->pending, k);
        if (rc < 0) {
            snprintf(sq->msg, sizeof(sq->msg), "%s: saving source positions: %s",
                     sq->path, sqlite3_errmsg(sq->db));
            sq->db_failed = true;
            sq->msg_set = true;
            goto out_fail;
        }
    }
    rc = step_done(sq, sq->commit, "committing");
    if (sq->exact)
        sl_stage_acks_finish(sc, sq->pending, k, rc == 0);
    if (rc < 0)
        goto out_fail;
    sq->in_txn = false;
    sl_stage_count_stored(sc, k, sq->pending_bytes);
    for (size_t i = 0; i < k; i++)
        sl_record_free(sq->pending[i]);
    memmove(sq->pending, sq->pending + k, (n - k) * sizeof(*sq->pending));
    sq->n_pending = sq->held = n - k;
    sq->pending_bytes = 0;
    /* The carried rows go into the next transaction. */
    sq->need_replay = sq->n_pending > 0;
    return 0;
out_fail:
    sq->pending_bytes = pb;
    sq->row_bytes = rb;
    return rc;
}

/* Room for one more pending row. 0 or SL_ENOMEM. */
static int reserve_pending(sqlite_sink *sq)
{
    if (sq->n_pending < sq->cap_pending)
        return 0;
    size_t ncap = sq->cap_pending * 2;
    sl_record **np = realloc(sq->pending, ncap * sizeof(*np));
    if (np == NULL)
        return SL_ENOMEM;
    sq->pending = np;
    sq->cap_pending = ncap;
    return 0;
}

/* Bring the connection to "transaction open with every pending row in it". */
static int ready_batch(sqlite_sink *sq)
{
    if (sq->need_replay)
        return replay(sq);
    if (!sq->in_txn)
        return begin_batch(sq);
    return 0;
}

static int sqlite_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    sqlite_sink *sq = state;
    char where[512];
    if (reserve_pending(sq) < 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    int rc = ready_batch(sq);
    if (rc < 0) {
        if (sq->in_txn)
            abort_batch(sq);
        sq->need_replay = sq->n_pending > 0;
        return sl_stage_error(sc, rc, "%s", sq_message(sq));
    }
    rc = insert_row(sq, rec);
    if (rc < 0 && !sq->db_failed)   /* refused before SQLite saw it */
        return sl_stage_error(sc, rc, "%s: %s", sl__record_where(rec, where, sizeof(where)),
                              sq_message(sq));
    if (rc < 0) {
        int code = rc;
        char msg[sizeof(sq->msg)];
        memcpy(msg, sq_message(sq), sizeof(msg));
        abort_batch(sq);
        /* Write the good rows again now; if that fails too, next time. */
        if (sq->n_pending > 0 && replay(sq) < 0) {
            sq->need_replay = true;
            sl_stage_log(sc, SL_LOG_WARN, "%s (the batch is held and retried)",
                         sq_message(sq));
        }
        return sl_stage_error(sc, code, "%s: %s",
                              sl__record_where(rec, where, sizeof(where)), msg);
    }
    sq->pending[sq->n_pending++] = rec;
    sq->pending_bytes += sq->row_bytes;
    if (sq->n_pending < sq->held + (size_t)sq->batch_size)
        return 0;
    rc = commit_batch(sq, sc);
    if (rc < 0) {
        sq->n_pending--;   /* rec goes back to the engine */
        sq->pending_bytes -= sq->row_bytes;
        if (sq->held > sq->n_pending)
            sq->held = sq->n_pending;
        abort_batch(sq);
        sq->need_replay = sq->n_pending > 0;
        return sl_stage_error(sc, rc, "%s", sq_message(sq));
    }
    return 0;
}

static int sqlite_flush(void *state, sl_stage_ctx *sc)
{
    sqlite_sink *sq = state;
    if (sq->n_pending == 0) {
        if (sq->in_txn) {
            int rc = step_done(sq, sq->commit, "committing");
            sq->in_txn = false;
            if (rc < 0)
                return sl_stage_error(sc, rc, "%s", sq_message(sq));
        }
        return 0;
    }
    int rc = ready_batch(sq);
    if (rc == 0)
        rc = commit_batch(sq, sc);
    if (rc < 0) {
        /* The batch is over: its rows meet on_error. */
        char msg[sizeof(sq->msg)];
        memcpy(msg, sq_message(sq), sizeof(msg));
        abort_batch(sq);
        int first = 0;
        for (size_t i = 0; i < sq->n_pending; i++) {
            int rrc = sl_record_reject(sc, sq->pending[i], rc, "%s", msg);
            if (rrc != 0 && first == 0)
                first = rrc;
        }
        sq->n_pending = sq->held = 0;
        sq->pending_bytes = 0;
        sq->need_replay = false;
        return first;   /* set the stage error when not 0 */
    }
    return 0;
}

/* ---------------------------------------------------------------- life */

static int prepare(sqlite_sink *sq, const char *sql, sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v3(sq->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    return rc == SQLITE_OK ? 0 : sq_fail(sq, rc, sql);
}

/* PRAGMA max_page_count from max_size (rounded down to whole pages). */
static int set_max_size(sqlite_sink *sq)
{
    if (sq->max_size <= 0)
        return 0;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(sq->db, "PRAGMA page_size", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(sq, rc, "reading the page size");
    int64_t page = 4096;
    if (sqlite3_step(st) == SQLITE_ROW)
        page = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%lld",
             (long long)(sq->max_size / (page > 0 ? page : 4096)));
    return exec_sql(sq, sql, "setting max_size");
}

/*
 * Why the database file cannot be opened, as an errno (0 if it can):
 * SQLite's own system errno often names a later, unrelated call.
 */
static int open_errno(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
            unlink(path);
    }
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

/* Do paths a (may be NULL) and b name one existing file? */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a != NULL && stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int sqlite_init(void *state, sl_stage_ctx *sc)
{
    sqlite_sink *sq = state;
    char ebuf[128];
    sl_buf_init(&sq->sql);
    sl_buf_init(&sq->json);
    sq->ukey = sq->key != NULL && sq->key[0] != '\0' ? sq->key : NULL;
    if (sq->path == NULL || sq->path[0] == '\0' || sq->table == NULL || sq->table[0] == '\0')
        return sl_stage_error(sc, SL_ECONFIG, "'path' and 'table' must not be empty");
    sq->cap_pending = (size_t)sq->batch_size;
    sq->pending = calloc(sq->cap_pending, sizeof(*sq->pending));
    if (sq->pending == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");

    int rc = sqlite3_open_v2(sq->path, &sq->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        int e = open_errno(sq->path);
        const char *m = sq->db != NULL ? sqlite3_errmsg(sq->db) : sqlite3_errstr(rc);
        if (e != 0)
            return sl_stage_error(sc, sl__errno_code(e), "%s: %s (%s)", sq->path, m,
                                  sl__errno_text(e, ebuf, sizeof(ebuf)));
        return sl_stage_error(sc, sq_code(rc), "%s: %s", sq->path, m);
    }
    sqlite3_extended_result_codes(sq->db, 1);
    sq->exact = same_file(sl_stage_state_path(sc), sq->path);
    sqlite3_busy_timeout(sq->db, (int)(sq->busy_timeout / SL_NS_PER_MS));

    static const char *const sync_sql[] = {
        "PRAGMA synchronous=OFF", "PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL"};
    if ((rc = exec_sql(sq, "PRAGMA journal_mode=WAL", "enabling WAL")) < 0 ||
        (rc = exec_sql(sq, sync_sql[sq->synchronous], "setting synchronous")) < 0 ||
        (rc = set_max_size(sq)) < 0 ||
        (rc = prepare(sq, "BEGIN IMMEDIATE", &sq->begin)) < 0 ||
        (rc = prepare(sq, "COMMIT", &sq->commit)) < 0 ||
        (rc = prepare(sq, "ROLLBACK", &sq->rollback)) < 0) {
        int e = sqlite3_system_errno(sq->db);
        if (e != 0 && rc == SL_EIO)
            return sl_stage_error(sc, sl__errno_code(e), "%s (%s)", sq->msg,
                                  sl__errno_text(e, ebuf, sizeof(ebuf)));
        return sl_stage_error(sc, rc, "%s", sq_message(sq));
    }
    return 0;
}

static void sqlite_destroy(void *state)
{
    sqlite_sink *sq = state;
    if (sq->db != NULL) {
        if (!sqlite3_get_autocommit(sq->db) && sq->rollback != NULL)
            (void)step_done(sq, sq->rollback, "rolling back");
        forget_schema(sq);
        sqlite3_finalize(sq->begin);
        sqlite3_finalize(sq->commit);
        sqlite3_finalize(sq->rollback);
        sqlite3_close_v2(sq->db);
        sq->db = NULL;
    }
    for (size_t i = 0; i < sq->n_pending; i++)
        sl_record_free(sq->pending[i]);
    free(sq->pending);
    free(sq->jsons);
    sl_buf_fini(&sq->sql);
    sl_buf_fini(&sq->json);
}

static const sl_option sqlite_options[] = {
    {SL_OPT_STRING, "path", NULL, SL_OPT_REQUIRED, offsetof(sqlite_sink, path), 0, 0, NULL,
     "database file (created if missing; its directory must exist)"},
    {SL_OPT_STRING, "table", NULL, SL_OPT_REQUIRED, offsetof(sqlite_sink, table), 0, 0, NULL,
     "table to write; created from the first record's fields if missing"},
    {SL_OPT_INT, "batch_size", "1000", 0, offsetof(sqlite_sink, batch_size), 1, 1000000, NULL,
     "rows per transaction; records count as stored when their batch commits"},
    {SL_OPT_STRING, "key", NULL, 0, offsetof(sqlite_sink, key), 0, 0, NULL,
     "upsert on this field: a row with the same key is updated, not added"},
    {SL_OPT_ENUM, "synchronous", "normal", 0, offsetof(sqlite_sink, synchronous), 0, 0,
     "off|normal|full", "SQLite's synchronous setting: durability against speed"},
    {SL_OPT_DURATION, "busy_timeout", "5s", 0, offsetof(sqlite_sink, busy_timeout), 0, 0, NULL,
     "how long to wait for another writer's lock before failing"},
    {SL_OPT_SIZE, "max_size", "0", 0, offsetof(sqlite_sink, max_size), 0, 0, NULL,
     "largest the database may grow (0: no limit); reaching it fails like a full disk"},
    SL_OPTIONS_END,
};

const sl_stage_desc sl_stage_sqlite = {
    SL_STAGE_DESC_HEADER,
    .name = "sqlite",
    .kind = SL_STAGE_SINK,
    .summary = "store records in a SQLite table in batched transactions (WAL, upsert on key)",
    .options = sqlite_options,
    .state_size = sizeof(sqlite_sink),
    .init = sqlite_init,
    .process = sqlite_process,
    .flush = sqlite_flush,
    .destroy = sqlite_destroy,
};
