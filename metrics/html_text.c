/*
 * Text for the HTML report: escaping for element content and quoted
 * attributes alike (see metrics/report.h).
 */
#include <string.h>

#include "metrics/report.h"
#include "metrics/text.h"
#include "sluice/error.h"

/* Bytes of the UTF-8 sequence starting with lead byte c (1 for anything
 * that is not a lead byte: it is copied alone). */
static size_t utf8_len(unsigned char c)
{
    if (c >= 0xf0 && c < 0xf8)
        return 4;
    if (c >= 0xe0)
        return c < 0xf0 ? 3 : 1;
    if (c >= 0xc0)
        return 2;
    return 1;
}

/*
 * Escape s into b, at most max_chars characters (SIZE_MAX: all). A cut
 * string ends in "…". Multi-byte sequences are copied whole; a sequence
 * cut short by the end of the string is copied as far as it goes (the
 * browser shows U+FFFD for it).
 */
static int put_html(sl_buf *b, const char *s, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t chars = 0;
    int rc = 0;
    while (*p != '\0' && rc == 0) {
        if (chars == max_chars) {
            rc = sl__mput(b, "\xe2\x80\xa6");
            break;
        }
        chars++;
        switch (*p) {
        case '&':
            rc = sl__mput(b, "&amp;");
            break;
        case '<':
            rc = sl__mput(b, "&lt;");
            break;
        case '>':
            rc = sl__mput(b, "&gt;");
            break;
        case '"':
            rc = sl__mput(b, "&quot;");
            break;
        case '\'':
            rc = sl__mput(b, "&#39;");
            break;
        case '\t':
        case '\n':
            rc = sl_buf_putc(b, (char)*p) != 0 ? SL_ENOMEM : 0;
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                rc = sl__mput(b, "&#xFFFD;");
                break;
            }
            size_t n = utf8_len(*p);
            size_t k = 1;
            while (k < n && p[k] != '\0')
                k++;
            rc = sl_buf_append(b, p, k) != 0 ? SL_ENOMEM : 0;
            p += k;
            continue;
        }
        p++;
    }
    return rc;
}

/* All of s. */
int sl__mput_html(sl_buf *b, const char *s)
{
    return put_html(b, s, SIZE_MAX);
}

/* At most max_chars characters of s. */
int sl__mput_html_cut(sl_buf *b, const char *s, size_t max_chars)
{
    return put_html(b, s, max_chars);
}
