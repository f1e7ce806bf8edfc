/*
 * Private to the http_server stage: the request body parser and the hook
 * tests use to learn the bound port.
 */
#ifndef SLUICE_STAGES_HTTP_SERVER_H
#define SLUICE_STAGES_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/record.h"
#include "sluice/value.h"

/* Why a body was refused: the 1-based line of the first bad record (0 when
 * not known), and a short text. */
typedef struct sl__hs_body_error {
    int64_t line;
    char text[200];
} sl__hs_body_error;

/*
 * Parse a request body into JSON objects: a JSON array of objects, one JSON
 * object (possibly spread over several lines), or JSON lines (one object
 * per non-blank line). All or nothing: on success *out is a new array
 * holding every object (caller unrefs); on SL_EPARSE err says where the
 * first bad record is and *out is untouched. SL_ENOMEM on allocation
 * failure. An empty body is an array of none.
 * Thread: any.
 */
int sl__hs_parse_body(const char *body, size_t len, sl_value **out,
                      sl__hs_body_error *err);

/* The TCP port the stage's listener is bound to (after a successful
 * init), for tests that listen on port 0. state is the stage state. */
int sl__http_server_port(const void *state);

#endif
