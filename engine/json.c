/*
 * JSON text <-> values, and the growable byte buffer serialisers write to.
 *
 * Both directions are ours and work on the value layout directly
 * (engine/value_internal.h); docs/decisions/0013 has the measurements
 * that replaced jansson here.
 *
 * Parsing is strict RFC 8259: one document per call, any value at the
 * top, trailing non-whitespace is an error, strings must be valid UTF-8
 * and may hold "\u0000" (but object keys may not: they are C strings in
 * value.h, so such a key could not be addressed). Integers outside int64
 * are errors ("too big integer"), as RFC 8259 section 9 allows, and so
 * are doubles that overflow. The size and depth limits of sl_json_limits
 * apply; nesting is capped at SL__PARSER_MAX_DEPTH whatever the limit
 * says, both reported as SL_ELIMIT.
 *
 * Serialising writes straight into an sl_buf: strings that are not valid
 * UTF-8 (values built from raw payloads may hold any bytes) get each bad
 * byte written as U+FFFD, so the output is always valid JSON and
 * sl_json_dump fails only on out of memory, and doubles print as the
 * shortest text that reads back as the same double.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/value_internal.h"
#include "sluice/error.h"
#include "sluice/value.h"

#define SL__JSON_DEFAULT_MAX_DEPTH 512
#define SL__JSON_DEFAULT_MAX_BYTES ((size_t)16 << 20)
/* Container levels the parser accepts whatever the limit says. */
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

/* ------------------------------------------------------------ errors */

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

/* ------------------------------------------------------------ UTF-8 */

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

/* UTF-8 encoding of code point cp (<= 0x10FFFF, not a surrogate) into p;
 * returns the length. */
static size_t utf8_encode(uint32_t cp, char *p)
{
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xC0 | (cp >> 6));
        p[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (char)(0xE0 | (cp >> 12));
        p[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        p[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | (cp >> 18));
    p[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    p[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    p[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ------------------------------------------------------------ parsing */

/*
 * The parser is ours (docs/decisions/0013): it builds values directly,
 * with no tree of a library's to convert or free, and is strict RFC 8259
 * — the JSONTestSuite y_ files parse, the n_ files fail
 * (tests/engine/test_json_conformance.c). It is iterative: open containers
 * are frames on an explicit stack, and the values parsed inside them wait
 * on a second stack until the container closes, when it is allocated at
 * its final size in one piece (engine/value_internal.h). Both stacks start
 * on the C stack and move to the heap only for large documents.
 *
 * Error texts and positions follow what the engine reported before
 * (jansson's wording): "unexpected token near '}'", "']' expected near end
 * of file", "invalid token near 'th'", "unable to decode byte 0xff",
 * "too big integer", "real number overflow", "invalid Unicode '\uD800'".
 * The position is the byte count read up to the end of the offending
 * token, the line and column are those of its last byte (1-based).
 */

/* An open container: its items wait on the item stack from start on. */
typedef struct frame {
    bool object;
    size_t start;
} frame;

/* Decoded escaped strings and keys, in chunks that never move, so items
 * can point into them until the document is built. The first chunk is on
 * the C stack. */
typedef struct chunk {
    struct chunk *next;
    char data[];
} chunk;

typedef struct arena {
    char *cur;
    size_t left;
    chunk *heap;        /* chunks to free */
    size_t next_size;
} arena;

typedef struct parser {
    const char *buf;
    size_t len;
    const char *p;          /* next byte */
    const char *end;
    size_t max_depth;       /* effective: at most SL__PARSER_MAX_DEPTH */
    bool depth_is_parser_max;
    sl__item *st;           /* items of the open containers */
    size_t n, cap;
    bool st_heap;
    frame *fr;
    size_t nfr, frcap;
    bool fr_heap;
    arena ar;
    sl_json_error *err;
    int rc;                 /* first error */
} parser;

/* Record an error ending at offset end_at (exclusive) of the input, with
 * the offending token text[0..tlen) (NULL: end of file) after "near". */
static int perr(parser *ps, int rc, size_t end_at, const char *tok, size_t tlen,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int perr(parser *ps, int rc, size_t end_at, const char *tok, size_t tlen,
                const char *fmt, ...)
{
    char msg[96];
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (tok == NULL) {
        snprintf(text, sizeof(text), "%s near end of file", msg);
    } else {
        /* The token, cut short and without bytes that would garble the
         * message. */
        char shown[24];
        size_t k = 0;
        for (size_t i = 0; i < tlen && k + 1 < sizeof(shown); i++)
            shown[k++] = (unsigned char)tok[i] < 0x20 || (unsigned char)tok[i] >= 0x7f ? '?' : tok[i];
        shown[k] = '\0';
        snprintf(text, sizeof(text), "%s near '%s'", msg, shown);
    }
    int line, column;
    locate(ps->buf, end_at > 0 && tok != NULL ? end_at - 1 : end_at, &line, &column);
    error_set(ps->err, line, column, end_at, text);
    ps->rc = rc;
    return rc;
}

static int nomem(parser *ps)
{
    error_set(ps->err, 0, 0, 0, "out of memory");
    ps->rc = SL_ENOMEM;
    return SL_ENOMEM;
}

/* Grow a stack-or-heap array of elem-sized items to hold one more. */
static int grow(void **arr, size_t *cap, bool *heap, size_t elem)
{
    size_t ncap = *cap * 2;
    if (ncap > SIZE_MAX / elem)
        return SL_ENOMEM;
    void *n;
    if (*heap) {
        n = realloc(*arr, ncap * elem);
    } else {
        n = malloc(ncap * elem);
        if (n != NULL)
            memcpy(n, *arr, *cap * elem);
    }
    if (n == NULL)
        return SL_ENOMEM;
    *arr = n;
    *cap = ncap;
    *heap = true;
    return 0;
}

/* n contiguous bytes that stay put until the parse ends; NULL on out of
 * memory. */
static char *arena_take(arena *a, size_t n)
{
    if (a->left < n) {
        size_t size = a->next_size;
        while (size < n) {
            if (size > SIZE_MAX / 4)
                return NULL;
            size *= 2;
        }
        chunk *c = malloc(sizeof(chunk) + size);
        if (c == NULL)
            return NULL;
        c->next = a->heap;
        a->heap = c;
        a->cur = c->data;
        a->left = size;
        a->next_size = size * 2;
    }
    char *p = a->cur;
    a->cur += n;
    a->left -= n;
    return p;
}

static void arena_free(arena *a)
{
    while (a->heap != NULL) {
        chunk *next = a->heap->next;
        free(a->heap);
        a->heap = next;
    }
}

static inline void skip_ws(parser *ps)
{
    const char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

/* Per byte inside a string: 0 plain, 1 needs a look ('"', '\\', control,
 * or a byte >= 0x80). */
static const unsigned char str_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,   /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Eight bytes at p as a word (the tests below look at every byte alike;
 * first_flagged knows the byte order). */
static inline uint64_t load8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

#define ONES   UINT64_C(0x0101010101010101)
#define HIGHS  UINT64_C(0x8080808080808080)

/* The high bit of each byte of w that is '"', '\\', below 0x20, or 0x80
 * and above: the bytes a string scan must stop at. Nonzero exactly when
 * one is there; a borrow only starts at such a byte and runs toward
 * the high end, so on a little-endian machine the first flagged byte is
 * the first such byte (and the byte loop after the word loop checks it
 * anyway). */
static inline uint64_t special8(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"');
    uint64_t b = w ^ (ONES * '\\');
    uint64_t t = ((q - ONES) & ~q) | ((b - ONES) & ~b) | (w - ONES * 0x20) | w;
    return t & HIGHS;
}

/* Index of the first byte (in memory order) whose high bit m has set. */
static inline size_t first_flagged(uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (size_t)__builtin_clzll(m) / 8;
#else
    return (size_t)__builtin_ctzll(m) / 8;
#endif
}

/* Four hex digits at p (room checked by the caller) as a number, or -1. */
static int32_t hex4(const char *p)
{
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decode the escape at p (a backslash, end - p >= 1) into dec; returns its
 * length in the input (0 on error, recorded) and sets *dlen. */
static size_t decode_escape(parser *ps, const char *p, char *dec, size_t *dlen)
{
    const char *end = ps->end;
    if (end - p < 2) {
        perr(ps, SL_EPARSE, ps->len, NULL, 0, "premature end of input");
        return 0;
    }
    *dlen = 1;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        dec[0] = p[1];
        return 2;
    case 'b':
        dec[0] = '\b';
        return 2;
    case 'f':
        dec[0] = '\f';
        return 2;
    case 'n':
        dec[0] = '\n';
        return 2;
    case 'r':
        dec[0] = '\r';
        return 2;
    case 't':
        dec[0] = '\t';
        return 2;
    case 'u':
        break;
    default:
        perr(ps, SL_EPARSE, (size_t)(p - ps->buf) + 2, p, 2, "invalid escape");
        return 0;
    }
    int32_t cp = end - p >= 6 ? hex4(p + 2) : -1;
    if (cp < 0) {
        perr(ps, SL_EPARSE, (size_t)(p - ps->buf) + 2, p, 2, "invalid escape");
        return 0;
    }
    size_t used = 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        perr(ps, SL_EPARSE, (size_t)(p - ps->buf) + 6, p, 6, "invalid Unicode '\\u%04X'",
             (unsigned)cp);
        return 0;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        int32_t lo = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
        if (lo < 0) {
            perr(ps, SL_EPARSE, (size_t)(p - ps->buf) + 6, p, 6, "invalid Unicode '\\u%04X'",
                 (unsigned)cp);
            return 0;
        }
        if (lo < 0xDC00 || lo > 0xDFFF) {
            perr(ps, SL_EPARSE, (size_t)(p - ps->buf) + 12, p, 12,
                 "invalid Unicode '\\u%04X\\u%04X'", (unsigned)cp, (unsigned)lo);
            return 0;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
    }
    *dlen = utf8_encode((uint32_t)cp, dec);
    return used;
}

/*
 * The string whose opening quote is at ps->p, checked (UTF-8, no control
 * characters, valid escapes). Without escapes the result is the input
 * bytes themselves; with escapes it is decoded into the arena (at most as
 * long as the raw text). *out and *out_len describe it; ps->p ends after
 * the closing quote. 0 or an error (recorded).
 */
static int parse_string(parser *ps, const char **out, size_t *out_len)
{
    const char *start = ps->p + 1, *p = start, *end = ps->end;
    char *dst = NULL;           /* decoding: the arena bytes */
    size_t dlen = 0;
    const char *run = start;    /* start of the bytes not yet copied to dst */

    for (;;) {
        while (end - p >= 8) {
            uint64_t m = special8(load8(p));
            if (m != 0) {
                p += first_flagged(m);
                break;
            }
            p += 8;
        }
        while (p < end && str_class[(unsigned char)*p] == 0)
            p++;
        if (p >= end)
            return perr(ps, SL_EPARSE, ps->len, NULL, 0, "premature end of input");
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c >= 0x80) {
            size_t seq = utf8_sequence((const unsigned char *)p, (size_t)(end - p));
            if (seq == 0)
                return perr(ps, SL_EPARSE, (size_t)(p - ps->buf) + 1, p, 1,
                            "unable to decode byte 0x%x", c);
            p += seq;
            continue;
        }
        if (c < 0x20)
            return perr(ps, SL_EPARSE, (size_t)(p - ps->buf) + 1, p, 1,
                        "control character 0x%x", c);
        /* A backslash: decoding needs at most the rest of the input. */
        if (dst == NULL) {
            dst = arena_take(&ps->ar, (size_t)(end - start));
            if (dst == NULL)
                return nomem(ps);
        }
        memcpy(dst + dlen, run, (size_t)(p - run));
        dlen += (size_t)(p - run);
        char dec[4];
        size_t n, used = decode_escape(ps, p, dec, &n);
        if (used == 0)
            return ps->rc;
        memcpy(dst + dlen, dec, n);
        dlen += n;
        p += used;
        run = p;
    }
    if (dst != NULL) {
        memcpy(dst + dlen, run, (size_t)(p - run));
        dlen += (size_t)(p - run);
        *out = dst;
        *out_len = dlen;
    } else {
        *out = start;
        *out_len = (size_t)(p - start);
    }
    ps->p = p + 1;
    return 0;
}

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;   /* set once; (locale_t)0 if it could not be made */

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * A number at ps->p, into it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
 * With neither fraction nor exponent it is an int64 ("too big integer"
 * beyond); otherwise a double, exact: a mantissa below 2^53 scaled by a
 * power of ten up to 1e22 is one correctly rounded operation, and anything
 * else goes to strtod in the C locale. A double that overflows is an
 * error. 0 or an error (recorded).
 */
static int parse_number(parser *ps, sl__item *it)
{
    const char *s = ps->p, *p = s, *end = ps->end;
    bool neg = false;
    uint64_t mant = 0;
    int digits = 0;          /* significant digits gathered into mant */
    int dropped = 0;         /* integer digits that did not fit in mant */
    int frac = 0;            /* fraction digits gathered into mant */
    bool is_real = false, exact = true;
    long exp10 = 0;

    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        goto out_invalid;
    if (*p == '0') {
        p++;
    } else {
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                digits++;
            } else {
                dropped++;
                exact = false;
            }
        }
    }
    if (p < end && *p == '.') {
        is_real = true;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            goto out_invalid;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                if (mant != 0)
                    digits++;
                frac++;
            } else if (*p != '0') {
                exact = false;
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_real = true;
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || *p < '0' || *p > '9')
            goto out_invalid;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (exp10 < 100000)
                exp10 = exp10 * 10 + (*p - '0');
        if (eneg)
            exp10 = -exp10;
    }
    ps->p = p;
    size_t at = (size_t)(p - ps->buf);
    it->v = NULL;

    if (!is_real) {
        if (dropped > 0 || mant > (uint64_t)INT64_MAX + (neg ? 1 : 0))
            return perr(ps, SL_EPARSE, at, s, (size_t)(p - s),
                        neg ? "too big negative integer" : "too big integer");
        it->kind = SL_TYPE_INT;
        it->u.i = neg ? (int64_t)(0 - mant) : (int64_t)mant;
        return 0;
    }

    double d;
    long e = exp10 + dropped - frac;
    if (exact && mant <= (UINT64_C(1) << 53) && e >= -22 && e <= 22) {
        d = (double)mant;
        d = e < 0 ? d / exact_pow10[-e] : d * exact_pow10[e];
        if (neg)
            d = -d;
    } else {
        char tmp[64];
        char *copy = tmp;
        size_t n = (size_t)(p - s);
        if (n >= sizeof(tmp)) {
            copy = malloc(n + 1);
            if (copy == NULL)
                return nomem(ps);
        }
        memcpy(copy, s, n);
        copy[n] = '\0';
        pthread_once(&c_locale_once, c_locale_init);
        d = c_locale != (locale_t)0 ? strtod_l(copy, NULL, c_locale) : strtod(copy, NULL);
        if (copy != tmp)
            free(copy);
        if (isinf(d))
            return perr(ps, SL_EPARSE, at, s, n, "real number overflow");
    }
    it->kind = SL_TYPE_DOUBLE;
    it->u.d = d;
    return 0;

out_invalid:
    /* The token as far as it looks like one. */
    while (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
                       *p == '+' || *p == '-'))
        p++;
    if (p < end && p == s)
        p++;
    return perr(ps, SL_EPARSE, (size_t)(p - ps->buf), s, (size_t)(p - s), "invalid token");
}

/* true, false or null at ps->p; NULL (error recorded) for anything else. */
static sl_value *parse_literal(parser *ps)
{
    const char *p = ps->p;
    size_t left = (size_t)(ps->end - p);
    if (left >= 4 && memcmp(p, "true", 4) == 0) {
        ps->p += 4;
        return &sl__true_value;
    }
    if (left >= 5 && memcmp(p, "false", 5) == 0) {
        ps->p += 5;
        return &sl__false_value;
    }
    if (left >= 4 && memcmp(p, "null", 4) == 0) {
        ps->p += 4;
        return &sl__null_value;
    }
    /* The token: its letters (at least one byte). */
    const char *q = p + 1;
    while (q < ps->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
        q++;
    perr(ps, SL_EPARSE, (size_t)(q - ps->buf), p, (size_t)(q - p), "invalid token");
    return NULL;
}

/* Report what was found at ps->p where msg's token was expected. */
static int expected(parser *ps, const char *msg)
{
    if (ps->p >= ps->end)
        return perr(ps, SL_EPARSE, ps->len, NULL, 0, "%s", msg);
    return perr(ps, SL_EPARSE, (size_t)(ps->p - ps->buf) + 1, ps->p, 1, "%s", msg);
}

/* The container of the top frame, built from its items, which it takes
 * over. A top-level object gets room for a few more fields (a map stage
 * adds some) without growing. NULL on error (recorded). */
static sl_value *close_container(parser *ps)
{
    frame *f = &ps->fr[ps->nfr - 1];
    bool top = ps->nfr == 1;
    sl_value *c = sl__container_build(f->object, ps->st + f->start, ps->n - f->start,
                                      f->object && top ? 4 : 0, f->object && top ? 48 : 0);
    ps->n = f->start;
    ps->nfr--;
    if (c == NULL)
        nomem(ps);
    return c;
}

/* Open a container at ps->p (its bracket). */
static int open_container(parser *ps, bool object)
{
    size_t at = (size_t)(ps->p - ps->buf);
    if (ps->nfr >= ps->max_depth) {
        /* The error points at the bracket itself. */
        char text[96];
        int line, column;
        if (ps->depth_is_parser_max)
            snprintf(text, sizeof(text), "nesting deeper than the parser maximum of %d levels",
                     SL__PARSER_MAX_DEPTH);
        else
            snprintf(text, sizeof(text), "nesting deeper than the limit of %zu levels",
                     ps->max_depth);
        locate(ps->buf, at, &line, &column);
        error_set(ps->err, line, column, at, text);
        ps->rc = SL_ELIMIT;
        return SL_ELIMIT;
    }
    if (ps->nfr == ps->frcap &&
        grow((void **)&ps->fr, &ps->frcap, &ps->fr_heap, sizeof(frame)) != 0)
        return nomem(ps);
    ps->fr[ps->nfr].object = object;
    ps->fr[ps->nfr].start = ps->n;
    ps->nfr++;
    ps->p++;
    return 0;
}

/* A new item on the stack (v NULL), or NULL on out of memory (recorded). */
static sl__item *new_item(parser *ps)
{
    if (ps->n == ps->cap && grow((void **)&ps->st, &ps->cap, &ps->st_heap, sizeof(sl__item)) != 0) {
        nomem(ps);
        return NULL;
    }
    sl__item *it = &ps->st[ps->n++];
    it->v = NULL;
    it->kind = SL_TYPE_NULL;
    it->key = NULL;
    it->klen = 0;
    return it;
}

/* Parse an object key at ps->p (a '"' was seen) and the ':' after it into
 * a new item, whose value comes next. */
static int parse_key(parser *ps)
{
    const char *k;
    size_t klen;
    int rc = parse_string(ps, &k, &klen);
    if (rc != 0)
        return rc;
    /* Only an escape can put a NUL in (raw NULs were refused up front). */
    if ((k < ps->buf || k >= ps->end) && memchr(k, '\0', klen) != NULL)
        return perr(ps, SL_EPARSE, (size_t)(ps->p - ps->buf), ps->p - 1, 1,
                    "NUL byte in object key not supported");
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':')
        return expected(ps, "':' expected");
    ps->p++;
    sl__item *it = new_item(ps);
    if (it == NULL)
        return ps->rc;
    it->key = k;
    it->klen = klen;
    return 0;
}

/* The document; NULL with ps->rc set on error. */
static sl_value *parse_document(parser *ps)
{
    sl__item scalar = {0};   /* a value outside any container */
    for (;;) {
        /* A value: into the top container's item (an object's was made
         * with its key), a new array item, or scalar at the top. */
        skip_ws(ps);
        if (ps->p >= ps->end) {
            expected(ps, "unexpected token");
            return NULL;
        }
        char c = *ps->p;
        if (c == '{' || c == '[') {
            bool object = c == '{';
            if (open_container(ps, object) != 0)
                return NULL;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) {
                ps->p++;
                sl_value *v = close_container(ps);
                if (v == NULL)
                    return NULL;
                scalar.v = v;
                goto have_value;
            }
            if (object) {
                if (ps->p >= ps->end || *ps->p != '"') {
                    expected(ps, "string or '}' expected");
                    return NULL;
                }
                if (parse_key(ps) != 0)
                    return NULL;
            }
            continue;
        }
        scalar.v = NULL;
        switch (c) {
        case '"': {
            const char *s;
            size_t len;
            if (parse_string(ps, &s, &len) != 0)
                return NULL;
            scalar.kind = SL_TYPE_STRING;
            scalar.u.str.s = s;
            scalar.u.str.len = len;
            break;
        }
        case '-':
        case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9':
            if (parse_number(ps, &scalar) != 0)
                return NULL;
            break;
        case 't':
        case 'f':
        case 'n':
            if ((scalar.v = parse_literal(ps)) == NULL)
                return NULL;
            break;
        case ']':
        case '}':
        case ',':
        case ':':
            expected(ps, "unexpected token");
            return NULL;
        default: {
            unsigned char u = (unsigned char)c;
            if (u >= 0x80 && utf8_sequence((const unsigned char *)ps->p,
                                           (size_t)(ps->end - ps->p)) == 0) {
                perr(ps, SL_EPARSE, (size_t)(ps->p - ps->buf) + 1, ps->p, 1,
                     "unable to decode byte 0x%x", u);
                return NULL;
            }
            const char *q = ps->p + 1;
            while (q < ps->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
                q++;
            perr(ps, SL_EPARSE, (size_t)(q - ps->buf), ps->p, (size_t)(q - ps->p), "invalid token");
            return NULL;
        }
        }

have_value:
        /* Place the value, then close containers as far as they end here. */
        for (;;) {
            if (ps->nfr == 0) {
                if (scalar.v != NULL)
                    return scalar.v;
                sl_value *v = scalar.kind == SL_TYPE_INT      ? sl_value_int(scalar.u.i)
                              : scalar.kind == SL_TYPE_DOUBLE ? sl_value_double(scalar.u.d)
                                                              : sl__string_new(scalar.u.str.s,
                                                                               scalar.u.str.len);
                if (v == NULL)
                    nomem(ps);
                return v;
            }
            bool object = ps->fr[ps->nfr - 1].object;
            sl__item *it = object ? &ps->st[ps->n - 1] : new_item(ps);
            if (it == NULL) {
                sl_value_unref(scalar.v);
                return NULL;
            }
            it->v = scalar.v;
            it->kind = scalar.kind;
            it->u = scalar.u;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                if (object) {
                    skip_ws(ps);
                    if (ps->p >= ps->end || *ps->p != '"') {
                        expected(ps, "string expected");
                        return NULL;
                    }
                    if (parse_key(ps) != 0)
                        return NULL;
                }
                break;   /* to the next value */
            }
            if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) {
                ps->p++;
                scalar.v = close_container(ps);
                if (scalar.v == NULL)
                    return NULL;
                continue;
            }
            expected(ps, object ? "'}' expected" : "']' expected");
            return NULL;
        }
    }
}

/*
 * Parse exactly one JSON document from buf[0..len). Returns 0 with *out a
 * new reference; SL_EPARSE with err saying where (line and column of the
 * last byte read, and the byte count read up to there); SL_ELIMIT for a
 * document over max_bytes or nested deeper than max_depth (err points at
 * the offending bracket); SL_ENOMEM; SL_EINVAL for a NULL out, or a NULL
 * buf with len > 0. *out is untouched on failure.
 */
int sl_json_parse(const char *buf, size_t len, const sl_json_limits *limits,
                  sl_value **out, sl_json_error *err)
{
    size_t max_depth = SL__JSON_DEFAULT_MAX_DEPTH;
    size_t max_bytes = SL__JSON_DEFAULT_MAX_BYTES;
    char text[128];

    if (err != NULL) {
        err->line = 0;
        err->column = 0;
        err->position = 0;
        err->text[0] = '\0';
    }
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
    sl__item st[32];
    frame fr[8];
    char first_chunk[256];
    /* Field by field: an initialiser would clear the whole struct first,
     * a measurable share of parsing a short line. */
    parser ps;
    ps.buf = buf;
    ps.len = len;
    ps.p = buf;
    ps.end = buf + len;
    ps.max_depth = max_depth > SL__PARSER_MAX_DEPTH ? SL__PARSER_MAX_DEPTH : max_depth;
    ps.depth_is_parser_max = max_depth > SL__PARSER_MAX_DEPTH;
    ps.st = st;
    ps.n = 0;
    ps.cap = sizeof(st) / sizeof(st[0]);
    ps.st_heap = false;
    ps.fr = fr;
    ps.nfr = 0;
    ps.frcap = sizeof(fr) / sizeof(fr[0]);
    ps.fr_heap = false;
    ps.ar.cur = first_chunk;
    ps.ar.left = sizeof(first_chunk);
    ps.ar.heap = NULL;
    ps.ar.next_size = 4096;
    ps.err = err;
    ps.rc = 0;
    sl_value *doc = parse_document(&ps);
    if (doc != NULL) {
        skip_ws(&ps);
        if (ps.p < ps.end) {
            expected(&ps, "end of file expected");
            sl_value_unref(doc);
            doc = NULL;
        }
    }
    for (size_t i = 0; i < ps.n; i++)
        sl_value_unref(ps.st[i].v);
    if (ps.st_heap)
        free(ps.st);
    if (ps.fr_heap)
        free(ps.fr);
    arena_free(&ps.ar);
    if (doc == NULL) {
        /* In JSON text a raw NUL is never valid (inside strings it is
         * "\u0000"), so a text holding one always fails: looking for it
         * only then gives the one clear message without a pass over every
         * document. A depth limit hit first stays the reason. */
        const char *nul = ps.rc == SL_EPARSE ? memchr(buf, '\0', len) : NULL;
        if (nul != NULL) {
            int line, column;
            size_t at = (size_t)(nul - buf);
            locate(buf, at, &line, &column);
            error_set(err, line, column, at, "NUL byte in JSON text");
        }
        return ps.rc != 0 ? ps.rc : SL_EPARSE;
    }
    *out = doc;
    return 0;
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
    /* Plain ASCII with nothing to escape (keys, most values): one copy. */
    size_t plain = 0;
    while (n - plain >= 8 && special8(load8(str + plain)) == 0)
        plain += 8;
    while (plain < n && byte_class[s[plain]] == 0)
        plain++;
    if (plain == n) {
        char *d = out->data + out->len;
        d[0] = '"';
        memcpy(d + 1, str, n);
        d[n + 1] = '"';
        out->len += n + 2;
        return 0;
    }
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
 * Fast path for doubles with few decimals (12.5, 0.001, 102.2 / 1000): the
 * first k for which m, the integer nearest d * 10^k, is below 2^53 and
 * m / 10^k == d. Both m and 10^k are exact, so that division is correctly
 * rounded — it is exactly what reading "m e-k" back gives — and the text
 * round-trips. (The product itself may be inexact: 0.1022 * 1e4 is
 * 1021.9999999999999, whose nearest integer is the right m.)
 * Returns the length written to p, or 0 if no such k <= 9 exists.
 */
static size_t format_short_decimal(double d, char *p)
{
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (int k = 1; k < 10; k++) {
        double m = nearbyint(a * pow10_table[k]);
        if (m >= 9007199254740992.0)
            return 0;
        if (m / pow10_table[k] != a)
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

static int dump(const sl_value *v, sl_buf *out)
{
    char num[32];
    size_t n;

    switch ((sl_type)v->type) {
    case SL_TYPE_NULL:
        return put_checked(out, "null", 4);
    case SL_TYPE_BOOL:
        if (v == &sl__true_value)
            return put_checked(out, "true", 4);
        return put_checked(out, "false", 5);
    case SL_TYPE_INT:
        n = format_int(SL__INT(v)->i, num);
        return put_checked(out, num, n);
    case SL_TYPE_DOUBLE:
        n = format_double(SL__DOUBLE(v)->d, num);
        return put_checked(out, num, n);
    case SL_TYPE_STRING:
        return dump_string(SL__STRING(v)->bytes, SL__STRING(v)->len, out);
    case SL_TYPE_ARRAY: {
        const sl__array *a = SL__ARRAY(v);
        if (put_checked(out, "[", 1) != 0)
            return SL_ENOMEM;
        for (size_t i = 0; i < a->len; i++) {
            if (i > 0 && put_checked(out, ",", 1) != 0)
                return SL_ENOMEM;
            if (dump(a->items[i], out) != 0)
                return SL_ENOMEM;
        }
        return put_checked(out, "]", 1);
    }
    case SL_TYPE_OBJECT: {
        const sl__object *o = SL__OBJECT(v);
        if (put_checked(out, "{", 1) != 0)
            return SL_ENOMEM;
        for (size_t i = 0; i < o->len; i++) {
            if (i > 0 && put_checked(out, ",", 1) != 0)
                return SL_ENOMEM;
            if (dump_string(o->m[i].key, o->m[i].klen, out) != 0 ||
                put_checked(out, ":", 1) != 0 ||
                dump(o->m[i].value, out) != 0)
                return SL_ENOMEM;
        }
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
    int rc = dump(v != NULL ? v : &sl__null_value, out);
    if (rc != 0)
        out->len = start;
    /* Every write reserved a byte beyond it, so there is room for the NUL. */
    if (out->data != NULL)
        out->data[out->len] = '\0';
    return rc;
}
