/* The buffered line reader of the `file` and `stdin` sources. */
#include "line_reader.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/error.h"

#define LR_CHUNK ((size_t)256 * 1024)  /* first buffer size and read size */

void sl__line_reader_init(sl__line_reader *lr, size_t max_line, int wake_fd)
{
    memset(lr, 0, sizeof(*lr));
    lr->fd = -1;
    lr->wake_fd = wake_fd;
    lr->max_line = max_line;
}

void sl__line_reader_reset(sl__line_reader *lr, int fd)
{
    lr->fd = fd;
    lr->head = lr->scan = lr->tail = 0;
    lr->consumed = 0;
    lr->line_no = 0;
    lr->bytes_read = 0;
    lr->sys_errno = 0;
    lr->eof = false;
}

void sl__line_reader_fini(sl__line_reader *lr)
{
    free(lr->buf);
    lr->buf = NULL;
    lr->cap = 0;
}

/*
 * Make room after tail: move the partial line to the front, and grow the
 * buffer when it is full of one line, up to what max_line allows (plus a
 * BOM and "\r\n"). Returns 0, SL_ELIMIT or SL_ENOMEM.
 */
static int lr_make_room(sl__line_reader *lr)
{
    if (lr->head > 0) {
        size_t n = lr->tail - lr->head;
        memmove(lr->buf, lr->buf + lr->head, n);
        lr->scan -= lr->head;
        lr->tail = n;
        lr->head = 0;
    }
    if (lr->tail < lr->cap)
        return 0;
    size_t limit = lr->max_line + 5;  /* BOM, "\r\n" */
    if (lr->cap >= limit) {
        lr->line_no++;  /* the long line's number */
        return SL_ELIMIT;
    }
    size_t ncap = lr->cap == 0 ? LR_CHUNK : lr->cap * 2;
    if (ncap > limit && lr->cap > 0)
        ncap = limit;
    char *nb = realloc(lr->buf, ncap);
    if (nb == NULL)
        return SL_ENOMEM;
    lr->buf = nb;
    lr->cap = ncap;
    return 0;
}

/* Wait until fd is readable or wake_fd fires. 0, SL_ESTOPPED or SL_EIO. */
static int lr_wait(sl__line_reader *lr)
{
    struct pollfd p[2] = {
        {.fd = lr->wake_fd, .events = POLLIN},
        {.fd = lr->fd, .events = POLLIN},
    };
    for (;;) {
        int rc = poll(p, 2, -1);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            lr->sys_errno = errno;
            return SL_EIO;
        }
        if (p[0].revents != 0)
            return SL_ESTOPPED;
        if (p[1].revents != 0)
            return 0;  /* readable, hung up or in error: read() tells */
    }
}

/* Read once into the free space. 0 (data or end of input) or an error. */
static int lr_fill(sl__line_reader *lr)
{
    int rc = lr_make_room(lr);
    if (rc < 0)
        return rc;
    if (lr->wake_fd >= 0) {
        rc = lr_wait(lr);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        ssize_t n = read(lr->fd, lr->buf + lr->tail, lr->cap - lr->tail);
        if (n > 0) {
            lr->tail += (size_t)n;
            lr->bytes_read += n;
            return 0;
        }
        if (n == 0) {
            lr->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        lr->sys_errno = errno;
        return SL_EIO;
    }
}

/* Hand out buf[head..head+len) (line ending of `ending` bytes follows). */
static int lr_take(sl__line_reader *lr, size_t len, size_t ending,
                   const char **line, size_t *out_len)
{
    const char *p = lr->buf + lr->head;
    lr->line_no++;
    lr->consumed += (int64_t)(len + ending);
    lr->head += len + ending;
    lr->scan = lr->head;
    if (len > 0 && p[len - 1] == '\r')
        len--;
    if (lr->line_no == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        len -= 3;
    }
    if (len > lr->max_line)
        return SL_ELIMIT;
    *line = p;
    *out_len = len;
    return 1;
}

int sl__line_reader_next(sl__line_reader *lr, const char **line, size_t *len)
{
    for (;;) {
        if (lr->scan < lr->tail) {
            const char *nl = memchr(lr->buf + lr->scan, '\n', lr->tail - lr->scan);
            if (nl != NULL)
                return lr_take(lr, (size_t)(nl - (lr->buf + lr->head)), 1, line, len);
            lr->scan = lr->tail;
        }
        /* No newline in buf[head..tail): too long already? (A BOM and
         * the '\r' do not count.) */
        if (lr->tail - lr->head > lr->max_line + 4) {
            lr->line_no++;  /* the long line's number */
            return SL_ELIMIT;
        }
        if (lr->eof) {
            if (lr->head == lr->tail)
                return 0;
            return lr_take(lr, lr->tail - lr->head, 0, line, len);
        }
        int rc = lr_fill(lr);
        if (rc < 0)
            return rc;
    }
}
