/*
 * `stdout`: write records to standard output as JSON lines, buffered and
 * written in whole lines on flush (or when 64 KiB are waiting). Logs go to
 * stderr, so stdout carries only records.
 */
#include <unistd.h>

#include "sluice/plugin.h"

#include "line_writer.h"

#define STDOUT_BUFFER ((size_t)64 * 1024)

typedef struct stdout_sink {
    sl__line_writer lw;     /* buffered output on fd 1 */
} stdout_sink;

static int stdout_init(void *state, sl_stage_ctx *sc)
{
    stdout_sink *so = state;
    (void)sc;
    /* A pipe or terminal cannot be truncated back: no rollback. */
    sl__line_writer_init(&so->lw, STDOUT_FILENO, "stdout", STDOUT_BUFFER, false, false);
    return 0;
}

static int stdout_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    stdout_sink *so = state;
    size_t mark = so->lw.buf.len;
    if (sl_json_dump(sl_record_fields(rec), &so->lw.buf) < 0 ||
        sl_buf_putc(&so->lw.buf, '\n') < 0) {
        sl__line_writer_truncate(&so->lw, mark);
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    }
    return sl__line_writer_add(&so->lw, sc, rec, mark);
}

static int stdout_flush(void *state, sl_stage_ctx *sc)
{
    stdout_sink *so = state;
    return sl__line_writer_flush(&so->lw, sc);
}

static void stdout_destroy(void *state)
{
    stdout_sink *so = state;
    sl__line_writer_fini(&so->lw);
}

const sl_stage_desc sl_stage_stdout = {
    SL_STAGE_DESC_HEADER,
    .name = "stdout",
    .kind = SL_STAGE_SINK,
    .summary = "write records to standard output as JSON lines",
    .options = NULL,
    .state_size = sizeof(stdout_sink),
    .init = stdout_init,
    .process = stdout_process,
    .flush = stdout_flush,
    .destroy = stdout_destroy,
};
