/*
 * JSON text <-> values, and the growable byte buffer serialisers write to.
 *
 * Parsing is jansson's (json_loadb), strict: one document per call, any
 * value at the top, trailing non-whitespace is an error, strings must be
 * valid UTF-8 and may hold "\u0000". We add the size and depth limits of
 * sl_json_limits in front of it. jansson refuses documents nested deeper
 * than 2047 levels whatever the limit says, so a larger max_depth acts as
 * 2047; both are reported as SL_ELIMIT. jansson also refuses NUL in object
 * keys ("NUL byte in object key not supported") — our object keys are C
 * strings, so such a key could not be addressed anyway — and integers
 * outside int64 ("too big integer"), which RFC 8259 section 9 allows a
 * parser to do; both are SL_EPARSE.
 *
 * Serialising is ours, walking the jansson tree straight into an sl_buf:
 * jansson's encoder fails on strings that are not valid UTF-8, which values
 * built from raw payloads may hold (we write each bad byte as U+FFFD, so the
 * output is always valid JSON and sl_json_dump fails only on out of
 * memory), and it prints doubles with 17 significant digits (0.1 becomes
 * 0.10000000000000001) where we print the shortest text that reads back as
 * the same double. Measurements are in docs/decisions/0001.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/value.h"

#define SL__JSON_DEFAULT_MAX_DEPTH 512
#define SL__JSON_DEFAULT_MAX_BYTES ((size_t)16 << 20)
/* Container levels jansson always accepts: its JSON_PARSER_MAX_DEPTH (2048,
 * not configurable) counts the innermost scalar as a level too. */
#define SL__PARSER_MAX_DEPTH 2047

/* ------------------------------------------------------------ sl_buf */

void sl_buf_init(sl_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sl_buf_fini(sl_buf *b)
{
    free(b->data);
    sl_buf_init(b);
}

/* Make room for extra more bytes plus the terminating NUL. */
static int buf_reserve(sl_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return SL_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return SL_ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Append len bytes; the buffer stays NUL-terminated. Returns 0 or
 * SL_ENOMEM (the buffer is then unchanged). */
int sl_buf_append(sl_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (buf_reserve(b, len) != 0)
        return SL_ENOMEM;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int sl_buf_putc(sl_buf *b, char c)
{
    if (buf_reserve(b, 1) != 0)
        return SL_ENOMEM;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
}

void sl_buf_reset(sl_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* ------------------------------------------------------------ parsing */

static void error_set(sl_json_error *err, int line, int column, size_t position,
                      const char *text)
{
    if (err == NULL)
        return;
    err->line = line;
    err->column = column;
    err->position = position;
    snprintf(err->text, sizeof(err->text), "%s", text);
}

/* 1-based line and column of byte offset pos in buf. */
static void locate(const char *buf, size_t pos, int *line, int *column)
{
    int l = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < pos; i++) {
        if (buf[i] == '\n') {
            l++;
            line_start = i + 1;
        }
    }
    *line = l;
    *column = (int)(pos - line_start) + 1;
}

/*
 * The byte offset of the first '[' or '{' nested deeper than max_depth, or
 * len if there is none. Brackets inside strings do not count. Invalid JSON
 * may fool the count, but jansson rejects such text afterwards anyway.
 */
static size_t depth_exceeded_at(const char *buf, size_t len, size_t max_depth)
{
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            if (++depth > max_depth)
                return i;
            break;
        case ']':
        case '}':
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
    }
    return len;
}

/*
 * Parse exactly one JSON document from buf[0..len). Returns 0 with *out a
 * new reference; SL_EPARSE with err saying where (jansson's line and column
 * of the character where parsing stopped, and the byte count read up to
 * there); SL_ELIMIT for a document over max_bytes or nested deeper than
 * max_depth (err points at the offending bracket); SL_ENOMEM; SL_EINVAL for
 * a NULL out, or a NULL buf with len > 0. *out is untouched on failure.
 */
int sl_json_parse(const char *buf, size_t len, const sl_json_limits *limits,
                  sl_value **out, sl_json_error *err)
{
    size_t max_depth = SL__JSON_DEFAULT_MAX_DEPTH;
    size_t max_bytes = SL__JSON_DEFAULT_MAX_BYTES;
    char text[128];

    error_set(err, 0, 0, 0, "");
    if (out == NULL || (buf == NULL && len > 0)) {
        error_set(err, 0, 0, 0, "invalid argument");
        return SL_EINVAL;
    }
    if (buf == NULL)
        buf = "";
    if (limits != NULL) {
        if (limits->max_depth > 0)
            max_depth = limits->max_depth;
        if (limits->max_bytes > 0)
            max_bytes = limits->max_bytes;
    }
    if (len > max_bytes) {
        snprintf(text, sizeof(text), "document of %zu bytes exceeds the limit of %zu bytes",
                 len, max_bytes);
        error_set(err, 0, 0, max_bytes, text);
        return SL_ELIMIT;
    }
    /* Nesting needs at least one byte per level, so short documents cannot
     * exceed the limit and skip the scan. */
    if (max_depth <= SL__PARSER_MAX_DEPTH && len > max_depth) {
        size_t at = depth_exceeded_at(buf, len, max_depth);
        if (at < len) {
            int line, column;
            locate(buf, at, &line, &column);
            snprintf(text, sizeof(text), "nesting deeper than the limit of %zu levels",
                     max_depth);
            error_set(err, line, column, at, text);
            return SL_ELIMIT;
        }
    }

    /* jansson stops reading at a NUL byte as if the text ended there; in
     * JSON text a raw NUL is never valid (inside strings it is "\u0000"). */
    const char *nul = memchr(buf, '\0', len);
    if (nul != NULL) {
        int line, column;
        size_t at = (size_t)(nul - buf);
        locate(buf, at, &line, &column);
        error_set(err, line, column, at, "NUL byte in JSON text");
        return SL_EPARSE;
    }

    json_error_t jerr;
    json_t *doc = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (doc != NULL) {
        *out = (sl_value *)doc;
        return 0;
    }

    int rc;
    switch (json_error_code(&jerr)) {
    case json_error_out_of_memory:
        rc = SL_ENOMEM;
        break;
    case json_error_stack_overflow:
        rc = SL_ELIMIT;
        snprintf(jerr.text, sizeof(jerr.text) - 1,
                 "nesting deeper than the parser maximum of %d levels", SL__PARSER_MAX_DEPTH);
        break;
    default:
        rc = SL_EPARSE;
        break;
    }
    /* jansson keeps its error code in the last byte of text. */
    jerr.text[sizeof(jerr.text) - 1] = '\0';
    int line = jerr.line > 0 ? jerr.line : 1;
    int column = jerr.column > 0 ? jerr.column : 1;
    error_set(err, line, column, jerr.position > 0 ? (size_t)jerr.position : 0, jerr.text);
    return rc;
}

/* ------------------------------------------------------------ serialising */

/* Per byte: 0 copied as is, 1 escaped, 2 starts a multi-byte sequence. */
static const unsigned char byte_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,   /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (s[0] >= 0x80), or 0
 * if it is not one: overlong forms, surrogates and code points past
 * U+10FFFF are rejected, as RFC 3629 says.
 */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;   /* range of the second byte */

    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return need;
}

/*
 * The serialiser reserves room first and then writes bytes directly; the
 * terminating NUL is written once, at the end of sl_json_dump.
 */
static inline int room(sl_buf *b, size_t extra)
{
    if (b->cap - b->len > extra)
        return 0;
    return buf_reserve(b, extra);
}

static inline void put(sl_buf *b, const void *p, size_t n)
{
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline int put_checked(sl_buf *b, const void *p, size_t n)
{
    if (room(b, n) != 0)
        return SL_ENOMEM;
    put(b, p, n);
    return 0;
}

/* Write s[0..n) as a JSON string literal. */
static int dump_string(const char *str, size_t n, sl_buf *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    /* Room for the common case: nothing to escape. */
    if (room(out, n + 2) != 0)
        return SL_ENOMEM;
    out->data[out->len++] = '"';
    while (i < n) {
        size_t run = i;
        while (run < n && byte_class[s[run]] == 0)
            run++;
        if (run > i && put_checked(out, s + i, run - i) != 0)
            return SL_ENOMEM;
        i = run;
        if (i == n)
            break;
        unsigned char c = s[i];
        if (byte_class[c] == 2) {
            size_t seq = utf8_sequence(s + i, n - i);
            if (seq > 0) {
                if (put_checked(out, s + i, seq) != 0)
                    return SL_ENOMEM;
                i += seq;
            } else {
                if (put_checked(out, "\xEF\xBF\xBD", 3) != 0)   /* U+FFFD */
                    return SL_ENOMEM;
                i++;
            }
            continue;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t esc_len = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            esc_len = 6;
            break;
        }
        if (put_checked(out, esc, esc_len) != 0)
            return SL_ENOMEM;
        i++;
    }
    return put_checked(out, "\"", 1);
}

/* Decimal digits of u into p (room for 20 bytes); returns the length. */
static size_t format_uint(uint64_t u, char *p)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* Decimal digits of i into p (room for 21 bytes); returns the length. */
static size_t format_int(int64_t i, char *p)
{
    if (i >= 0)
        return format_uint((uint64_t)i, p);
    /* In unsigned, so INT64_MIN negates without overflow. */
    p[0] = '-';
    return 1 + format_uint((uint64_t)0 - (uint64_t)i, p + 1);
}

static const double pow10_table[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

/*
 * Fast path for doubles with few decimals (12.5, 0.001): the first k
 * for which m = d * 10^k is an integer below 2^53 and m / 10^k == d.
 * Both m and 10^k are exact, so that division is correctly rounded — it
 * is exactly what reading "m e-k" back gives — and the text round-trips.
 * Returns the length written to p, or 0 if no such k <= 9 exists.
 */
static size_t format_short_decimal(double d, char *p)
{
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (int k = 1; k < 10; k++) {
        double m = a * pow10_table[k];
        if (m >= 9007199254740992.0)
            return 0;
        if (m != trunc(m) || m / pow10_table[k] != a)
            continue;
        char digits[20];
        size_t nd = format_uint((uint64_t)m, digits), len = 0;
        /* m may carry trailing zeros when a smaller k missed by rounding
         * (1.0452 * 1e4 is 10451.999...); the same decimal without them. */
        while (k > 1 && digits[nd - 1] == '0') {
            nd--;
            k--;
        }
        if (d < 0)
            p[len++] = '-';
        if (nd <= (size_t)k) {
            /* 0.00ddd */
            p[len++] = '0';
            p[len++] = '.';
            for (size_t z = nd; z < (size_t)k; z++)
                p[len++] = '0';
            memcpy(p + len, digits, nd);
            return len + nd;
        }
        memcpy(p + len, digits, nd - (size_t)k);
        len += nd - (size_t)k;
        p[len++] = '.';
        memcpy(p + len, digits + nd - k, (size_t)k);
        return len + (size_t)k;
    }
    return 0;
}

/*
 * The shortest text that reads back as d, with ".0" added when it would
 * otherwise look like an integer, so a double stays a double through a
 * round trip. d is finite (values never hold NaN or infinity). p has room
 * for 32 bytes; returns the length.
 */
static size_t format_double(double d, char *p)
{
    /* Integral values within 2^53 print exactly as integers. */
    if (d == trunc(d) && fabs(d) < 9007199254740992.0) {
        size_t n = 0;
        if (d == 0.0 && signbit(d))
            p[n++] = '-';
        n += format_int((int64_t)d, p + n);
        memcpy(p + n, ".0", 2);
        return n + 2;
    }
    size_t n = format_short_decimal(d, p);
    if (n > 0)
        return n;
    /* General case: the fewest of 15, 16, 17 significant digits. */
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(p, 32, "%.*g", prec, d);
        if (prec == 17 || strtod(p, NULL) == d)
            break;
    }
    bool has_mark = false;
    for (int i = 0; i < len; i++) {
        if (p[i] == ',')
            p[i] = '.';   /* a locale's decimal comma */
        if (p[i] == '.' || p[i] == 'e')
            has_mark = true;
    }
    if (!has_mark) {
        memcpy(p + len, ".0", 2);
        len += 2;
    }
    return (size_t)len;
}

static int dump(const json_t *j, sl_buf *out)
{
    char num[32];
    size_t n;

    switch (json_typeof(j)) {
    case JSON_NULL:
        return put_checked(out, "null", 4);
    case JSON_TRUE:
        return put_checked(out, "true", 4);
    case JSON_FALSE:
        return put_checked(out, "false", 5);
    case JSON_INTEGER:
        n = format_int((int64_t)json_integer_value(j), num);
        return put_checked(out, num, n);
    case JSON_REAL:
        n = format_double(json_real_value(j), num);
        return put_checked(out, num, n);
    case JSON_STRING:
        return dump_string(json_string_value(j), json_string_length(j), out);
    case JSON_ARRAY: {
        size_t len = json_array_size(j);
        if (put_checked(out, "[", 1) != 0)
            return SL_ENOMEM;
        for (size_t i = 0; i < len; i++) {
            if (i > 0 && put_checked(out, ",", 1) != 0)
                return SL_ENOMEM;
            if (dump(json_array_get(j, i), out) != 0)
                return SL_ENOMEM;
        }
        return put_checked(out, "]", 1);
    }
    case JSON_OBJECT: {
        const char *sep = "{";
        for (void *it = json_object_iter((json_t *)j); it != NULL;
             it = json_object_iter_next((json_t *)j, it)) {
            if (put_checked(out, sep, 1) != 0)
                return SL_ENOMEM;
            sep = ",";
            if (dump_string(json_object_iter_key(it), json_object_iter_key_len(it), out) != 0 ||
                put_checked(out, ":", 1) != 0 ||
                dump(json_object_iter_value(it), out) != 0)
                return SL_ENOMEM;
        }
        if (sep[0] == '{')
            return put_checked(out, "{}", 2);
        return put_checked(out, "}", 1);
    }
    }
    return SL_EINVAL;
}

/*
 * Append v as compact JSON: no spaces, object keys in insertion order,
 * non-ASCII text as UTF-8 (not \u escapes), bytes that are not UTF-8 as
 * U+FFFD. NULL is written as null. On SL_ENOMEM out is left as it was.
 */
int sl_json_dump(const sl_value *v, sl_buf *out)
{
    size_t start = out->len;
    int rc = dump(v != NULL ? (const json_t *)v : json_null(), out);
    if (rc != 0)
        out->len = start;
    /* Every write reserved a byte beyond it, so there is room for the NUL. */
    if (out->data != NULL)
        out->data[out->len] = '\0';
    return rc;
}
