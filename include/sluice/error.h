/*
 * sluice error codes.
 *
 * Every int-returning function in the public API returns 0 on success or one
 * of the negative SL_E* codes below. One X-macro list makes the enum, the
 * names and the strings, so a new code cannot be half-added.
 *
 * Thread: any.
 */
#ifndef SLUICE_ERROR_H
#define SLUICE_ERROR_H

#include <stdbool.h>

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, value, message) — values are stable ABI: only ever append. */
#define SL_ERROR_MAP(X)                                                 \
    X(NOMEM,     -1,  "out of memory")                                  \
    X(INVAL,     -2,  "invalid argument")                               \
    X(CLOSED,    -3,  "channel closed")                                 \
    X(CANCELED,  -4,  "canceled")                                       \
    X(DEADLINE,  -5,  "deadline exceeded")                              \
    X(TIMEDOUT,  -6,  "timed out")                                      \
    X(AGAIN,     -7,  "resource temporarily unavailable")               \
    X(IO,        -8,  "input/output error")                             \
    X(PARSE,     -9,  "parse error")                                    \
    X(CONFIG,    -10, "configuration error")                            \
    X(BREAKER,   -11, "circuit breaker open")                           \
    X(NOTFOUND,  -12, "not found")                                      \
    X(RANGE,     -13, "value out of range")                             \
    X(TYPE,      -14, "wrong type")                                     \
    X(EXISTS,    -15, "already exists")                                 \
    X(NOSPC,     -16, "no space left on device")                        \
    X(ABI,       -17, "incompatible plugin ABI")                        \
    X(HTTP,      -18, "HTTP error")                                     \
    X(LIMIT,     -19, "limit exceeded")                                 \
    X(STOPPED,   -20, "stopped")                                        \
    X(INTERNAL,  -21, "internal error")

typedef enum sl_error {
    SL_OK = 0,
#define SL__ERR_ENUM(name, value, msg) SL_E##name = (value),
    SL_ERROR_MAP(SL__ERR_ENUM)
#undef SL__ERR_ENUM
} sl_error;

/* A static, human-readable message for code; "unknown error" otherwise. */
const char *sl_strerror(int code);

/* The code's name without prefix ("CANCELED"); "UNKNOWN" otherwise. */
const char *sl_error_name(int code);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
