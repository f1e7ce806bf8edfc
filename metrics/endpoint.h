/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The metrics endpoint (metrics.listen, --metrics-listen): a small HTTP
 * server (libmicrohttpd, on its own thread) answering
 *
 *   GET /metrics    the Prometheus text format (metrics/prometheus.c)
 *   GET /health     200 while the run goes (degraded included), 503 once
 *                   it stops; JSON body with each stage's state
 *   GET /snapshot   the JSON snapshot, as metrics.file holds it
 *   GET /debug/stages  every stage and worker as text, what SIGUSR1
 *                   prints (when the server was given a text function)
 *   GET /           a short index of the above
 *
 * Every request takes a fresh snapshot through the caller's function, on
 * the server's thread. Other methods get 405, other paths 404.
 *
 * Thread: start and stop on the owner's thread; the snapshot function is
 * called on the server's thread while the server runs.
 */
#ifndef SLUICE_METRICS_ENDPOINT_H
#define SLUICE_METRICS_ENDPOINT_H

#include <stddef.h>

#include "metrics/snapshot.h"

typedef struct sl__metrics_server sl__metrics_server;

/* Fill *out with a snapshot of now (freed by the server with
 * sl__run_snapshot_fini). Returns 0 or a negative SL_E* code. */
typedef int (*sl__snapshot_fn)(void *arg, sl__run_snapshot *out);

/*
 * Listen on `listen`, "HOST:PORT": HOST empty means 127.0.0.1 (loopback
 * unless told otherwise: "0.0.0.0:9464" or "[::]:9464" listen on every
 * interface), "[v6]" for an IPv6 address, a name is resolved (first
 * address); PORT 0 picks a free port. Returns 0, SL_EINVAL (a malformed
 * address), SL_EIO (cannot resolve, bind or listen; err says why) or
 * SL_ENOMEM; *out untouched on failure.
 */
int sl__metrics_server_start(const char *listen, sl__snapshot_fn fn,
                             void *arg, char *err, size_t err_size,
                             sl__metrics_server **out);

/* Fill out with a text (appended). Returns 0 or a negative SL_E* code. */
typedef int (*sl__text_fn)(void *arg, sl_buf *out);

/*
 * The same, also serving GET /debug/stages from debug_fn (called with
 * arg on the server's thread). debug_fn NULL: /debug/stages is 404.
 */
int sl__metrics_server_start_debug(const char *listen, sl__snapshot_fn fn,
                                   sl__text_fn debug_fn, void *arg,
                                   char *err, size_t err_size,
                                   sl__metrics_server **out);

/* The address it listens on, port resolved: "127.0.0.1:9464",
 * "[::1]:9464". */
const char *sl__metrics_server_address(const sl__metrics_server *s);

/* The port it listens on. */
int sl__metrics_server_port(const sl__metrics_server *s);

/* Stop: no new connections; requests in progress finish first. NULL:
 * no-op. */
void sl__metrics_server_stop(sl__metrics_server *s);

#endif
