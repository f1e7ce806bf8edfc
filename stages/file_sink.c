/*
 * `file` as a sink: append records to a file as JSON lines or CSV.
 *
 * Lines are built in memory and written with whole-buffer write(2) calls
 * (see line_writer.h): a crash or a full disk never leaves half a line, and
 * records count as stored once their line is written (and fsync'ed, with
 * `fsync: true`). The directory must exist.
 *
 * CSV: the columns are `columns`, or else the first record's fields in
 * order; a later record with a field outside them is an error (name the
 * columns to keep a subset). Values: strings as is, numbers and booleans as
 * in JSON, null as an empty field, arrays and objects as JSON text; a field
 * holding the delimiter, a quote or a line break is quoted (RFC 4180). The
 * header line is written first unless the file is appended to and already
 * holds data. CSV output needs `workers: 1`, so the header is written once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/plugin.h"

#include "io_errors.h"
#include "line_writer.h"

#define FILE_SINK_BUFFER ((size_t)64 * 1024)

enum { FMT_JSONL = 0, FMT_CSV = 1 };
enum { MODE_APPEND = 0, MODE_TRUNCATE = 1 };

typedef struct file_sink {
    char *path;             /* option: output file */
    int format;             /* option: FMT_* */
    int mode;               /* option: MODE_* */
    bool fsync;             /* option: fsync after every write */
    sl_strlist columns;     /* option: CSV columns */
    int fd;                 /* output; valid when open */
    bool open;              /* fd is open */
    bool header_done;       /* CSV: header written or not wanted */
    char **cols;            /* CSV columns in use (borrowed from columns or a record's keys copy) */
    size_t n_cols;          /* entries in cols */
    bool own_cols;          /* cols[] strings are ours to free */
    sl_buf cell;            /* CSV: one non-string value as text */
    sl__line_writer lw;     /* buffered output */
} file_sink;

static int file_sink_init(void *state, sl_stage_ctx *sc)
{
    file_sink *fk = state;
    char ebuf[128];
    sl_buf_init(&fk->cell);
    if (fk->path == NULL || fk->path[0] == '\0')
        return sl_stage_error(sc, SL_ECONFIG, "'path' must not be empty");
    if (fk->format == FMT_CSV && sl_stage_worker_count(sc) > 1)
        return sl_stage_error(sc, SL_ECONFIG, "format: csv needs workers: 1");
    if (fk->format != FMT_CSV && fk->columns.n > 0)
        return sl_stage_error(sc, SL_ECONFIG, "'columns' applies to format: csv only");
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
    if (fk->mode == MODE_TRUNCATE)
        flags |= O_TRUNC;
    fk->fd = open(fk->path, flags, 0644);
    if (fk->fd < 0) {
        int e = errno;
        return sl_stage_error(sc, sl__errno_code(e), "%s: %s", fk->path,
                              sl__errno_text(e, ebuf, sizeof(ebuf)));
    }
    fk->open = true;
    struct stat st;
    if (fstat(fk->fd, &st) < 0) {
        int e = errno;
        return sl_stage_error(sc, sl__errno_code(e), "%s: %s", fk->path,
                              sl__errno_text(e, ebuf, sizeof(ebuf)));
    }
    if (S_ISDIR(st.st_mode))
        return sl_stage_error(sc, SL_EIO, "%s: is a directory", fk->path);
    /* Appending CSV to a file that has data: its header is already there. */
    fk->header_done = fk->format == FMT_CSV && st.st_size > 0;
    if (fk->columns.n > 0) {
        fk->cols = fk->columns.items;
        fk->n_cols = fk->columns.n;
    }
    sl__line_writer_init(&fk->lw, fk->fd, fk->path, FILE_SINK_BUFFER,
                         S_ISREG(st.st_mode), fk->fsync);
    return 0;
}

/* ---------------------------------------------------------------- CSV */

static bool needs_quotes(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            return true;
    return false;
}

/* Append one CSV cell holding s[0..n), quoted if it must be. */
static int put_cell(sl_buf *out, const char *s, size_t n)
{
    if (!needs_quotes(s, n))
        return sl_buf_append(out, s, n);
    if (sl_buf_putc(out, '"') < 0)
        return SL_ENOMEM;
    const char *end = s + n;
    while (s < end) {
        const char *q = memchr(s, '"', (size_t)(end - s));
        size_t chunk = q != NULL ? (size_t)(q - s) + 1 : (size_t)(end - s);
        if (sl_buf_append(out, s, chunk) < 0)
            return SL_ENOMEM;
        if (q != NULL && sl_buf_putc(out, '"') < 0)  /* the doubled quote */
            return SL_ENOMEM;
        s += chunk;
    }
    return sl_buf_putc(out, '"');
}

/* Append v as a CSV cell. */
static int put_value(file_sink *fk, const sl_value *v)
{
    size_t n;
    const char *s;
    switch (sl_value_type(v)) {
    case SL_TYPE_NULL:
        return 0;
    case SL_TYPE_STRING:
        s = sl_value_get_string(v, &n);
        return put_cell(&fk->lw.buf, s, n);
    default:
        sl_buf_reset(&fk->cell);
        if (sl_json_dump(v, &fk->cell) < 0)
            return SL_ENOMEM;
        return put_cell(&fk->lw.buf, fk->cell.data != NULL ? fk->cell.data : "", fk->cell.len);
    }
}

/* Take the columns from the first record's fields. */
static int columns_from(file_sink *fk, const sl_value *fields)
{
    size_t n = sl_object_len(fields);
    fk->cols = calloc(n > 0 ? n : 1, sizeof(*fk->cols));
    if (fk->cols == NULL)
        return SL_ENOMEM;
    fk->own_cols = true;
    for (void *it = sl_object_iter(fields); it != NULL; it = sl_object_next(fields, it)) {
        fk->cols[fk->n_cols] = strdup(sl_object_iter_key(it));
        if (fk->cols[fk->n_cols] == NULL)
            return SL_ENOMEM;
        fk->n_cols++;
    }
    return 0;
}

static bool is_column(const file_sink *fk, const char *key)
{
    for (size_t i = 0; i < fk->n_cols; i++)
        if (strcmp(fk->cols[i], key) == 0)
            return true;
    return false;
}

/* Append rec's CSV line (after the header, the first time). */
static int csv_line(file_sink *fk, sl_stage_ctx *sc, const sl_record *rec, size_t *mark)
{
    const sl_value *fields = sl_record_fields(rec);
    if (fk->cols == NULL && columns_from(fk, fields) < 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    if (fk->columns.n == 0) {
        size_t matched = 0;
        for (size_t i = 0; i < fk->n_cols; i++)
            if (sl_object_get(fields, fk->cols[i]) != NULL)
                matched++;
        if (matched != sl_object_len(fields)) {
            for (void *it = sl_object_iter(fields); it != NULL; it = sl_object_next(fields, it))
                if (!is_column(fk, sl_object_iter_key(it)))
                    return sl_stage_error(sc, SL_EINVAL,
                                          "%s: field '%s' is not one of the CSV columns "
                                          "(taken from the first record; list them in 'columns')",
                                          fk->path, sl_object_iter_key(it));
        }
    }
    sl_buf *out = &fk->lw.buf;
    if (!fk->header_done) {
        for (size_t i = 0; i < fk->n_cols; i++) {
            if ((i > 0 && sl_buf_putc(out, ',') < 0) ||
                put_cell(out, fk->cols[i], strlen(fk->cols[i])) < 0)
                goto out_nomem;
        }
        if (sl_buf_append(out, "\r\n", 2) < 0)
            goto out_nomem;
        fk->header_done = true;
        *mark = out->len;
    }
    for (size_t i = 0; i < fk->n_cols; i++) {
        if ((i > 0 && sl_buf_putc(out, ',') < 0) ||
            put_value(fk, sl_object_get(fields, fk->cols[i])) < 0)
            goto out_nomem;
    }
    if (sl_buf_append(out, "\r\n", 2) < 0)
        goto out_nomem;
    return 0;
out_nomem:
    sl__line_writer_truncate(&fk->lw, *mark);
    return sl_stage_error(sc, SL_ENOMEM, "out of memory");
}

/* ---------------------------------------------------------------- stage */

static int file_sink_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    file_sink *fk = state;
    size_t mark = fk->lw.buf.len;
    if (fk->format == FMT_CSV) {
        int rc = csv_line(fk, sc, rec, &mark);
        if (rc < 0)
            return rc;
    } else if (sl_json_dump(sl_record_fields(rec), &fk->lw.buf) < 0 ||
               sl_buf_putc(&fk->lw.buf, '\n') < 0) {
        sl__line_writer_truncate(&fk->lw, mark);
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    }
    return sl__line_writer_add(&fk->lw, sc, rec, mark);
}

static int file_sink_flush(void *state, sl_stage_ctx *sc)
{
    file_sink *fk = state;
    return sl__line_writer_flush(&fk->lw, sc);
}

static void file_sink_destroy(void *state)
{
    file_sink *fk = state;
    sl__line_writer_fini(&fk->lw);
    sl_buf_fini(&fk->cell);
    if (fk->own_cols) {
        for (size_t i = 0; i < fk->n_cols; i++)
            free(fk->cols[i]);
        free(fk->cols);
    }
    if (fk->open)
        close(fk->fd);
}

static const sl_option file_sink_options[] = {
    {SL_OPT_STRING, "path", NULL, SL_OPT_REQUIRED, offsetof(file_sink, path), 0, 0, NULL,
     "file to write; its directory must exist"},
    {SL_OPT_ENUM, "format", "jsonl", 0, offsetof(file_sink, format), 0, 0, "jsonl|csv",
     "jsonl: one JSON object per line; csv: a header line, then one line per record"},
    {SL_OPT_ENUM, "mode", "append", 0, offsetof(file_sink, mode), 0, 0, "append|truncate",
     "append to the file, or empty it when the run starts"},
    {SL_OPT_BOOL, "fsync", "false", 0, offsetof(file_sink, fsync), 0, 0, NULL,
     "fsync the file after each write, before its records count as stored"},
    {SL_OPT_STRING_LIST, "columns", NULL, 0, offsetof(file_sink, columns), 0, 0, NULL,
     "CSV columns in order (default: the first record's fields); other fields are left out"},
    SL_OPTIONS_END,
};

const sl_stage_desc sl_stage_file_sink = {
    SL_STAGE_DESC_HEADER,
    .name = "file",
    .kind = SL_STAGE_SINK,
    .summary = "append records to a file as JSON lines or CSV, whole lines only",
    .options = file_sink_options,
    .state_size = sizeof(file_sink),
    .init = file_sink_init,
    .process = file_sink_process,
    .flush = file_sink_flush,
    .destroy = file_sink_destroy,
};
