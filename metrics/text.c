/*
 * Text writers for the metrics exporters (see metrics/text.h).
 */
#include "metrics/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

int sl__mput(sl_buf *b, const char *s)
{
    return sl_buf_append(b, s, strlen(s)) != 0 ? SL_ENOMEM : 0;
}

int sl__mputf(sl_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return SL_ENOMEM;
    if ((size_t)n < sizeof(small))
        return sl_buf_append(b, small, (size_t)n) != 0 ? SL_ENOMEM : 0;
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return SL_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = sl_buf_append(b, big, (size_t)n) != 0 ? SL_ENOMEM : 0;
    free(big);
    return rc;
}

int sl__mput_json_str(sl_buf *b, const char *s)
{
    int rc = sl_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
         *p && rc == 0; p++) {
        switch (*p) {
        case '"':
            rc = sl__mput(b, "\\\"");
            break;
        case '\\':
            rc = sl__mput(b, "\\\\");
            break;
        case '\n':
            rc = sl__mput(b, "\\n");
            break;
        case '\r':
            rc = sl__mput(b, "\\r");
            break;
        case '\t':
            rc = sl__mput(b, "\\t");
            break;
        default:
            if (*p < 0x20)
                rc = sl__mputf(b, "\\u%04x", *p);
            else
                rc = sl_buf_putc(b, (char)*p);
        }
    }
    if (rc == 0)
        rc = sl_buf_putc(b, '"');
    return rc != 0 ? SL_ENOMEM : 0;
}

int sl__mput_num(sl_buf *b, double v)
{
    if (v != v || v > 1e300 || v < -1e300)
        v = 0;
    char tmp[400];
    if (v >= 1e18 || v <= -1e18) {
        /* in full, such a number reads back as an integer out of int64's
         * range; an exponent keeps it a real number */
        snprintf(tmp, sizeof(tmp), "%.17g", v);
        return sl__mput(b, tmp);
    }
    snprintf(tmp, sizeof(tmp), "%.3f", v);
    char *dot = strchr(tmp, '.');
    if (dot != NULL) {
        char *end = tmp + strlen(tmp) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
    if (strcmp(tmp, "-0") == 0)
        strcpy(tmp, "0");
    return sl__mput(b, tmp);
}
