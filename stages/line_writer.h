/*
 * A buffered writer of whole lines, shared by the `file` and `stdout` sinks.
 *
 * Stages append complete lines to `buf` and hand the writer the record each
 * line came from. The writer write(2)s the buffer (and fsyncs, if asked)
 * once it holds flush_at bytes, and on flush; only then are the records
 * counted as stored, with the bytes written as bytes_out. A
 * buffer holds only whole lines, and when a write fails part-way on a file
 * the file is truncated back to where it was, so a reader never sees half a
 * line. When a write fails while records keep coming, the lines stay
 * buffered (and their records held) for the next attempt; when a flush
 * fails, or an fsync (the lines may not be durable), the batch is over:
 * its records go to the stage's on_error (sl_record_reject) with the
 * reason.
 *
 * Thread: owner.
 */
#ifndef SLUICE_STAGES_LINE_WRITER_H
#define SLUICE_STAGES_LINE_WRITER_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/plugin.h"

typedef struct sl__line_writer {
    int fd;                 /* output; not owned */
    const char *name;       /* for messages: the path, or "stdout"; borrowed */
    bool rollback;          /* truncate the file back after a failed write */
    bool fsync;             /* fsync(2) after every write */
    size_t flush_at;        /* write once buf holds this many bytes */
    sl_buf buf;             /* whole lines not yet written */
    sl_record **held;       /* the records of those lines, in order */
    size_t n_held;          /* entries in held */
    size_t cap_held;        /* entries allocated in held */
    char why[256];          /* the last failure, for records given up on */
} sl__line_writer;

/* Set up lw over fd (not owned). name must outlive lw. */
void sl__line_writer_init(sl__line_writer *lw, int fd, const char *name,
                          size_t flush_at, bool rollback, bool do_fsync);

/* Free the buffer and any held records (which were not stored). */
void sl__line_writer_fini(sl__line_writer *lw);

/*
 * The caller appended rec's line (or lines) to lw->buf from offset mark to
 * the end. The writer takes rec, and writes the buffer out if it is full.
 * Returns 0 (rec now belongs to the writer) or a negative code after
 * sl_stage_error: rec's bytes are then removed from the buffer and rec
 * stays with the caller. (After a failed fsync the other held records go
 * to on_error.)
 */
int sl__line_writer_add(sl__line_writer *lw, sl_stage_ctx *sc, sl_record *rec,
                        size_t mark);

/* Write out everything buffered (and fsync if asked), then count the held
 * records as stored. If that fails, every held record goes to on_error
 * (sl_record_reject) and the buffer is dropped: returns 0 when the policy
 * dealt with them (skip, dead_letter), else a negative code after
 * sl_stage_error. */
int sl__line_writer_flush(sl__line_writer *lw, sl_stage_ctx *sc);

/* Drop buf's bytes from mark on (mark <= buf.len). */
void sl__line_writer_truncate(sl__line_writer *lw, size_t mark);

#endif
