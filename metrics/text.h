/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Small writers shared by the metrics exporters: text, printf-style text,
 * JSON string literals and numbers into an sl_buf. Each returns 0 or
 * SL_ENOMEM, so a caller may OR a run of them together and check once.
 *
 * Thread: any (on the caller's own buffer).
 */
#ifndef SLUICE_METRICS_TEXT_H
#define SLUICE_METRICS_TEXT_H

#include "sluice/value.h"

int sl__mput(sl_buf *b, const char *s);
int sl__mputf(sl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A JSON string literal: quotes, backslashes and control characters
 * escaped; bytes >= 0x80 pass through (names are UTF-8). */
int sl__mput_json_str(sl_buf *b, const char *s);
/* A finite number with at most 3 decimals, trailing zeros dropped ("12",
 * "0.5", "1234.568"); NaN and infinities are written as 0. */
int sl__mput_num(sl_buf *b, double v);

#endif
