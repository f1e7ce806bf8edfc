/*
 * `stdin`: read standard input line by line, one record per non-blank line,
 * with the same line rules as the `file` source (CRLF, no trailing newline,
 * max_line). The position's locator is "<stdin>".
 *
 * Waiting for input on a terminal or pipe must not delay shutdown, so the
 * reader also polls a pipe that a waiter on the stage's source context
 * writes to when the run asks sources to stop: no timeout loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/plugin.h"

#include "io_errors.h"
#include "line_reader.h"

#define STDIN_LOCATOR "<stdin>"
#define STDIN_STOP_EVERY 64   /* lines between checks of sl_stage_stopping */

typedef struct stdin_source {
    int64_t max_line;       /* option: longest line in bytes */
    sl__line_reader lr;     /* reader over fd 0 */
    int wake[2];            /* pipe written on stop; valid when have_pipe */
    bool have_pipe;         /* wake[] is open */
    sl_ctx_waiter waiter;   /* on the source context while run() waits */
} stdin_source;

/* Waiter callback, on the cancelling thread: make wake[0] readable. It
 * must not block: the pipe is non-blocking and one byte is enough. */
static void stdin_wake(sl_ctx_waiter *w)
{
    int fd = *(int *)w->arg;
    ssize_t n = write(fd, "x", 1);
    (void)n;
}

static int stdin_init(void *state, sl_stage_ctx *sc)
{
    stdin_source *st = state;
    char ebuf[128];
    if (sl_stage_worker_count(sc) > 1)
        return sl_stage_error(sc, SL_ECONFIG, "stdin is read by one worker (workers: 1)");
    if (st->max_line < 1)
        return sl_stage_error(sc, SL_ECONFIG, "max_line must be at least 1 byte");
    if (pipe2(st->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        int e = errno;
        return sl_stage_error(sc, sl__errno_code(e), "pipe: %s",
                              sl__errno_text(e, ebuf, sizeof(ebuf)));
    }
    st->have_pipe = true;
    sl__line_reader_init(&st->lr, (size_t)st->max_line, st->wake[0]);
    return 0;
}

static int stdin_run(void *state, sl_stage_ctx *sc)
{
    stdin_source *st = state;
    char ebuf[128];
    sl_ctx *ctx = sl_stage_source_context(sc);
    sl__line_reader *lr = &st->lr;
    sl__line_reader_reset(lr, STDIN_FILENO);
    if (ctx != NULL) {
        st->waiter.wake = stdin_wake;
        st->waiter.arg = &st->wake[1];
        if (!sl_ctx_add_waiter(ctx, &st->waiter))
            return 0;   /* already asked to stop */
    } else {
        lr->wake_fd = -1;
    }
    if (sl_stage_state_path(sc) != NULL) {
        /* Standard input cannot be read again: nothing to resume after,
         * and no store may skip what arrives as already stored. */
        sl_stage_log(sc, SL_LOG_WARN, "settings.state: standard input "
                     "cannot be resumed; it is read from its start and "
                     "every record is delivered (at least once)");
        sl_stage_resume_reset(sc);
    }
    const char *name = sl_stage_name(sc);
    int64_t counted = 0;
    unsigned since_check = 0;
    int rc;
    for (;;) {
        if (++since_check >= STDIN_STOP_EVERY) {
            since_check = 0;
            sl_stage_count_bytes_in(sc, (uint64_t)(lr->consumed - counted));
            counted = lr->consumed;
            if (sl_stage_stopping(sc)) {
                rc = 0;
                break;
            }
        }
        const char *line;
        size_t len;
        rc = sl__line_reader_next(lr, &line, &len);
        if (rc <= 0)
            break;
        if (len == 0)
            continue;
        sl_record *rec = sl_record_new_payload(line, len);
        if (rec == NULL ||
            sl_record_set_position(rec, name, STDIN_LOCATOR, lr->consumed, lr->line_no) < 0) {
            sl_record_free(rec);
            rc = sl_stage_error(sc, SL_ENOMEM, "line %lld: out of memory",
                                (long long)lr->line_no);
            break;
        }
        int erc = sl_emit(sc, rec);
        if (erc < 0) {
            /* 0 when the run is being torn down; a real failure otherwise */
            rc = sl_ctx_is_done(sl_stage_context(sc)) ? 0 : erc;
            break;
        }
    }
    if (ctx != NULL)
        sl_ctx_remove_waiter(ctx, &st->waiter);
    if (rc == SL_ESTOPPED)
        rc = 0;
    else if (rc == SL_ELIMIT)
        rc = sl_stage_error(sc, SL_ELIMIT, STDIN_LOCATOR ":%lld: line longer than max_line (%lld bytes)",
                            (long long)lr->line_no, (long long)st->max_line);
    else if (rc == SL_EIO)
        rc = sl_stage_error(sc, sl__errno_code(lr->sys_errno), STDIN_LOCATOR ": %s",
                            sl__errno_text(lr->sys_errno, ebuf, sizeof(ebuf)));
    else if (rc == SL_ENOMEM)
        rc = sl_stage_error(sc, SL_ENOMEM, STDIN_LOCATOR ":%lld: out of memory",
                            (long long)lr->line_no + 1);
    if (lr->consumed > counted)
        sl_stage_count_bytes_in(sc, (uint64_t)(lr->consumed - counted));
    return rc;
}

static void stdin_destroy(void *state)
{
    stdin_source *st = state;
    sl__line_reader_fini(&st->lr);
    if (st->have_pipe) {
        close(st->wake[0]);
        close(st->wake[1]);
        st->have_pipe = false;
    }
}

static const sl_option stdin_options[] = {
    {SL_OPT_SIZE, "max_line", "16MiB", 0, offsetof(stdin_source, max_line), 0, 0, NULL,
     "longest line accepted; a longer one fails the run"},
    SL_OPTIONS_END,
};

const sl_stage_desc sl_stage_stdin = {
    SL_STAGE_DESC_HEADER,
    .name = "stdin",
    .kind = SL_STAGE_SOURCE,
    .summary = "read standard input line by line, one record per non-blank line",
    .options = stdin_options,
    .state_size = sizeof(stdin_source),
    .init = stdin_init,
    .run = stdin_run,
    .destroy = stdin_destroy,
};
