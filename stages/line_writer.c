/* Whole-line buffered output for the `file` and `stdout` sinks. */
#include "line_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io_errors.h"

void sl__line_writer_init(sl__line_writer *lw, int fd, const char *name,
                          size_t flush_at, bool rollback, bool do_fsync)
{
    memset(lw, 0, sizeof(*lw));
    lw->fd = fd;
    lw->name = name;
    lw->flush_at = flush_at;
    lw->rollback = rollback;
    lw->fsync = do_fsync;
    sl_buf_init(&lw->buf);
}

void sl__line_writer_fini(sl__line_writer *lw)
{
    for (size_t i = 0; i < lw->n_held; i++)
        sl_record_free(lw->held[i]);
    free(lw->held);
    lw->held = NULL;
    lw->n_held = lw->cap_held = 0;
    sl_buf_fini(&lw->buf);
}

void sl__line_writer_truncate(sl__line_writer *lw, size_t mark)
{
    if (mark >= lw->buf.len)
        return;
    lw->buf.len = mark;
    if (lw->buf.data != NULL)
        lw->buf.data[mark] = '\0';
}

/* Report a failed system call on the output (the text kept in lw->why
 * for records given up on later). */
static int io_error(sl__line_writer *lw, sl_stage_ctx *sc, int e)
{
    char ebuf[128];
    snprintf(lw->why, sizeof(lw->why), "%s: %s", lw->name,
             sl__errno_text(e, ebuf, sizeof(ebuf)));
    return sl_stage_error(sc, sl__errno_code(e), "%s", lw->why);
}

/*
 * write(2) buf[0..len) completely. If that fails part-way and rollback is
 * on, the file is truncated to its size before the call. Returns 0 or an
 * error after sl_stage_error.
 */
static int write_all(sl__line_writer *lw, sl_stage_ctx *sc, size_t len)
{
    off_t start = -1;
    if (lw->rollback) {
        start = lseek(lw->fd, 0, SEEK_END);
        if (start < 0)
            return io_error(lw, sc, errno);
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(lw->fd, lw->buf.data + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        int e = n < 0 ? errno : ENOSPC;   /* 0 bytes written: no room */
        if (done > 0 && start >= 0 && ftruncate(lw->fd, start) < 0)
            sl_stage_log(sc, SL_LOG_WARN, "%s: could not remove a partly written buffer",
                         lw->name);
        return io_error(lw, sc, e);
    }
    return 0;
}

/*
 * Write the buffer, fsync if asked, then count the held records as stored
 * (bytes_out: the bytes written) and free them. When the write fails,
 * buffer and records stay for another attempt. When the fsync fails, the
 * lines are in the file but perhaps not on disk: the buffer is spent, the
 * records stay held and *written is set, for the caller to give up on.
 */
static int commit_out(sl__line_writer *lw, sl_stage_ctx *sc, bool *written)
{
    uint64_t bytes = lw->buf.len;
    *written = false;
    if (lw->buf.len > 0) {
        int rc = write_all(lw, sc, lw->buf.len);
        if (rc < 0)
            return rc;
        sl_buf_reset(&lw->buf);
    }
    if (lw->fsync && fsync(lw->fd) < 0) {
        *written = true;
        return io_error(lw, sc, errno);
    }
    sl_stage_count_stored(sc, lw->n_held, bytes);
    for (size_t i = 0; i < lw->n_held; i++)
        sl_record_free(lw->held[i]);
    lw->n_held = 0;
    return 0;
}

/*
 * Give up on held records from..n_held-1 - their lines failed - handing
 * each to the stage's on_error with the reason (sl_record_reject). Returns
 * 0 when the policy dealt with them all, else the first failure.
 */
static int give_up(sl__line_writer *lw, sl_stage_ctx *sc, size_t from, int code)
{
    int first = 0;
    for (size_t i = from; i < lw->n_held; i++) {
        int rc = sl_record_reject(sc, lw->held[i], code, "%s", lw->why);
        if (rc != 0 && first == 0)
            first = rc;
    }
    lw->n_held = from;
    return first;
}

int sl__line_writer_add(sl__line_writer *lw, sl_stage_ctx *sc, sl_record *rec,
                        size_t mark)
{
    if (lw->n_held == lw->cap_held) {
        size_t ncap = lw->cap_held == 0 ? 256 : lw->cap_held * 2;
        sl_record **nh = realloc(lw->held, ncap * sizeof(*nh));
        if (nh == NULL) {
            sl__line_writer_truncate(lw, mark);
            return sl_stage_error(sc, SL_ENOMEM, "out of memory");
        }
        lw->held = nh;
        lw->cap_held = ncap;
    }
    lw->held[lw->n_held++] = rec;
    if (lw->buf.len < lw->flush_at)
        return 0;
    bool written;
    int rc = commit_out(lw, sc, &written);
    if (rc < 0) {
        lw->n_held--;   /* rec goes back to the caller */
        if (written) {
            /* The others' lines are out but not durable: on_error. */
            (void)give_up(lw, sc, 0, rc);
            sl_stage_error(sc, rc, "%s", lw->why);
        } else {
            sl__line_writer_truncate(lw, mark);
        }
    }
    return rc;
}

/* A failed flush ends the batch: its records meet on_error. */
int sl__line_writer_flush(sl__line_writer *lw, sl_stage_ctx *sc)
{
    if (lw->buf.len == 0 && lw->n_held == 0)
        return 0;
    bool written;
    int rc = commit_out(lw, sc, &written);
    if (rc == 0)
        return 0;
    sl__line_writer_truncate(lw, 0);
    return give_up(lw, sc, 0, rc);
}
