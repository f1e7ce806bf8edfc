/*
 * A buffered line reader over a file descriptor, shared by the `file` and
 * `stdin` sources.
 *
 * It reads large chunks with read(2) and hands out lines straight from its
 * buffer, so a line costs a memchr and no system call. Lines end at '\n'; a
 * trailing '\r' is removed (CRLF input), and a last line without a newline
 * is still returned. A UTF-8 byte order mark at the very start of the input
 * is skipped. A line longer than max_line bytes is an error (SL_ELIMIT):
 * the buffer never grows past max_line plus the line ending.
 *
 * Thread: owner.
 */
#ifndef SLUICE_STAGES_LINE_READER_H
#define SLUICE_STAGES_LINE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl__line_reader {
    int fd;              /* input; not owned */
    int wake_fd;         /* -1, or a descriptor that turns readable on stop */
    char *buf;           /* read buffer */
    size_t cap;          /* bytes allocated in buf */
    size_t head;         /* start of unread data in buf */
    size_t scan;         /* buf[head..scan) is known to hold no '\n' */
    size_t tail;         /* end of data in buf */
    size_t max_line;     /* longest line accepted, without its ending */
    int64_t consumed;    /* input bytes up to and including the last line */
    int64_t line_no;     /* lines returned so far (blank ones included) */
    int64_t bytes_read;  /* bytes read from fd so far */
    int sys_errno;       /* errno of the last SL_EIO */
    bool eof;            /* read(2) returned 0 */
} sl__line_reader;

/* Prepare lr with an empty buffer (allocated on first use). Reads nothing.
 * wake_fd is -1 for none. */
void sl__line_reader_init(sl__line_reader *lr, size_t max_line, int wake_fd);

/* Start reading fd from the beginning (keeps the buffer). */
void sl__line_reader_reset(sl__line_reader *lr, int fd);

/* Free the buffer. The descriptors are not closed. */
void sl__line_reader_fini(sl__line_reader *lr);

/*
 * The next line: returns 1 with *line (borrowed, valid until the next call,
 * not NUL-terminated) and *len, without its '\n' or "\r\n". Returns 0 at end
 * of input; SL_ELIMIT when line number line_no is longer than max_line (the
 * reader is then spent); SL_EIO when read(2) fails (sys_errno says why); SL_ESTOPPED
 * when wake_fd became readable while waiting for input; SL_ENOMEM.
 */
int sl__line_reader_next(sl__line_reader *lr, const char **line, size_t *len);

#endif
