/*
 * A small HTTP server for tests, on 127.0.0.1 and an ephemeral port
 * (libmicrohttpd, one thread per connection, so a slow answer holds up only
 * its own connection).
 *
 * What it answers is chosen by the request's query string, so a test writes
 * the behaviour it wants into the URL:
 *
 *   delay_ms=N      wait N ms before answering
 *   fail=N          the first N hits on this path answer fail_status
 *   fail_status=S   the status of those failures (default 500)
 *   retry_after=V   a Retry-After: V header on those failures
 *   reset=N         the first N hits on this path close the connection
 *                   without any answer
 *   hang=1          never answer (until the server stops)
 *   status=S        the status of a normal answer (default 200)
 *   size=N          a body of N 'x' bytes instead of the default
 *
 * The default body is {"path":"<path>","hit":<n>}, n counting the hits on
 * that path from 1. Hits are counted as requests arrive (before any delay);
 * the bodies of POST/PUT/PATCH requests are kept, as are each hit's time
 * and X-Request-ID header. Waiting for hits uses a condition variable, so
 * tests never sleep to synchronise.
 *
 * Thread: any.
 */
#ifndef SLUICE_TESTS_HTTP_SERVER_H
#define SLUICE_TESTS_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct http_server http_server;

/* Start a server. Returns 0, or -1 (nothing started). */
int http_server_start(http_server **out);

/* Stop answering (wakes hanging and delayed requests), join, free.
 * NULL: no-op. */
void http_server_stop(http_server *s);

int http_server_port(const http_server *s);

/* "http://127.0.0.1:PORT" followed by the printf-formatted path, in buf. */
const char *http_server_url(const http_server *s, char *buf, size_t size,
                            const char *path_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Requests seen, all paths together / on one path (no query string). */
uint64_t http_server_hits(http_server *s);
uint64_t http_server_path_hits(http_server *s, const char *path);

/* Wait until at least n requests have arrived: 0, or -1 after timeout_ms. */
int http_server_wait_hits(http_server *s, uint64_t n, int timeout_ms);

/* The most requests that were being answered at the same time. */
size_t http_server_max_concurrent(http_server *s);

/* Hit i (0-based, in arrival order): its CLOCK_MONOTONIC time in ns, its
 * path, and its X-Request-ID header ("" if none). Copies into buf. */
int64_t http_server_hit_time(http_server *s, size_t i);
const char *http_server_hit_path(http_server *s, size_t i, char *buf,
                                 size_t size);
const char *http_server_hit_request_id(http_server *s, size_t i, char *buf,
                                       size_t size);

/* Request bodies received (POST, PUT, PATCH), in the order the requests
 * were answered, with the status each was answered with (0: the
 * connection was closed instead). The returned copy is malloc'd and
 * NUL-terminated; caller frees. NULL when i is out of range. len and status
 * may be NULL. */
size_t http_server_bodies(http_server *s);
char *http_server_body(http_server *s, size_t i, size_t *len, int *status);

#endif
