/*
 * The expression lexer: text -> tokens, with byte offsets for messages.
 *
 * Numbers: decimal integers (64-bit) and decimals with '.' and/or an
 * exponent (1.5, 2e3, 1.5e-3). Strings: "..." or '...' with the escapes
 * \" \' \\ \/ \n \t \r \b \f \0 \xHH \uXXXX (UTF-8 encoded, surrogate pairs
 * combined). Identifiers: [A-Za-z_][A-Za-z0-9_]*; true, false and null are
 * keywords.
 */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/expr_internal.h"
#include "sluice/error.h"

/* ------------------------------------------------------------------ */
/* Positions and messages                                              */
/* ------------------------------------------------------------------ */

/* Characters, not bytes: a UTF-8 continuation byte does not start one. */
int sl__xcolumn(const char *src, size_t len, size_t pos)
{
    if (pos > len)
        pos = len;
    int col = 1;
    for (size_t i = 0; i < pos; i++)
        if (((unsigned char)src[i] & 0xC0) != 0x80)
            col++;
    return col;
}

int sl__xerror(sl_expr_error *err, const char *src, size_t len, size_t pos,
               int code, const char *fmt, ...)
{
    err->column = sl__xcolumn(src, len, pos);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
    return code;
}

const char *sl__xtok_describe(sl__xtok_kind k)
{
    switch (k) {
    case SL__T_EOF: return "end of expression";
    case SL__T_INT: return "a number";
    case SL__T_DOUBLE: return "a number";
    case SL__T_STRING: return "a string";
    case SL__T_IDENT: return "a name";
    case SL__T_TRUE: return "'true'";
    case SL__T_FALSE: return "'false'";
    case SL__T_NULL: return "'null'";
    case SL__T_DOLLAR: return "'$'";
    case SL__T_LPAREN: return "'('";
    case SL__T_RPAREN: return "')'";
    case SL__T_LBRACK: return "'['";
    case SL__T_RBRACK: return "']'";
    case SL__T_DOT: return "'.'";
    case SL__T_COMMA: return "','";
    case SL__T_QUESTION: return "'?'";
    case SL__T_COLON: return "':'";
    case SL__T_PLUS: return "'+'";
    case SL__T_MINUS: return "'-'";
    case SL__T_STAR: return "'*'";
    case SL__T_SLASH: return "'/'";
    case SL__T_PERCENT: return "'%'";
    case SL__T_EQ: return "'=='";
    case SL__T_NE: return "'!='";
    case SL__T_LT: return "'<'";
    case SL__T_LE: return "'<='";
    case SL__T_GT: return "'>'";
    case SL__T_GE: return "'>='";
    case SL__T_MATCH: return "'=~'";
    case SL__T_NMATCH: return "'!~'";
    case SL__T_AND: return "'&&'";
    case SL__T_OR: return "'||'";
    case SL__T_NOT: return "'!'";
    }
    return "a token";
}

/* ------------------------------------------------------------------ */
/* Numbers                                                             */
/* ------------------------------------------------------------------ */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_ident(char c) { return is_ident_start(c) || is_digit(c); }

/* strtod in the "C" locale whatever the process's locale is. */
double sl__xstrtod(const char *s, char **end);

/*
 * A number starting at lx->pos. Integers accumulate exactly (a magnitude of
 * 2^63 is let through for the parser to negate into INT64_MIN); anything
 * with a fraction or exponent goes to strtod on a bounded copy.
 */
static int lex_number(sl__xlexer *lx, sl__xtok *tok)
{
    const char *s = lx->src;
    size_t i = lx->pos;
    bool is_double = false;
    while (i < lx->len && is_digit(s[i]))
        i++;
    if (i + 1 < lx->len && s[i] == '.' && is_digit(s[i + 1])) {
        is_double = true;
        i++;
        while (i < lx->len && is_digit(s[i]))
            i++;
    }
    if (i < lx->len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < lx->len && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < lx->len && is_digit(s[j])) {
            is_double = true;
            i = j;
            while (i < lx->len && is_digit(s[i]))
                i++;
        }
    }
    if (i < lx->len && s[i] == '.')
        return sl__xerror(lx->err, lx->src, lx->len, i, SL_EPARSE,
                          "expected a digit after '.' in number");
    if (i < lx->len && is_ident(s[i]))
        return sl__xerror(lx->err, lx->src, lx->len, i, SL_EPARSE,
                          "unexpected '%c' after number", s[i]);
    tok->pos = lx->pos;
    tok->end = i;
    if (is_double) {
        char buf[128];
        size_t n = i - lx->pos;
        if (n >= sizeof(buf))
            return sl__xerror(lx->err, lx->src, lx->len, lx->pos, SL_EPARSE,
                              "number is too long");
        memcpy(buf, s + lx->pos, n);
        buf[n] = '\0';
        tok->kind = SL__T_DOUBLE;
        tok->d = sl__xstrtod(buf, NULL);
    } else {
        uint64_t v = 0;
        for (size_t k = lx->pos; k < i; k++) {
            uint64_t digit = (uint64_t)(s[k] - '0');
            if (v > (UINT64_C(1) << 63) / 10 ||
                (v * 10 + digit) > (UINT64_C(1) << 63))
                return sl__xerror(lx->err, lx->src, lx->len, lx->pos,
                                  SL_EPARSE,
                                  "integer literal is too large (the limit "
                                  "is 9223372036854775807)");
            v = v * 10 + digit;
        }
        tok->kind = SL__T_INT;
        tok->u64 = v;
    }
    lx->pos = i;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Strings                                                             */
/* ------------------------------------------------------------------ */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* n hex digits at s[at..]; -1 if any is missing or not hex. */
static long read_hex(const sl__xlexer *lx, size_t at, int n)
{
    long v = 0;
    for (int k = 0; k < n; k++) {
        if (at + (size_t)k >= lx->len)
            return -1;
        int h = hex_value(lx->src[at + (size_t)k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * A quoted string starting at lx->pos (the quote). Decoded into the arena:
 * the decoded form is never longer than the source span, so one allocation
 * of the remaining length suffices.
 */
static int lex_string(sl__xlexer *lx, sl__xtok *tok)
{
    const char *s = lx->src;
    char quote = s[lx->pos];
    size_t start = lx->pos;
    char *out = sl__xarena_alloc(lx->arena, lx->len - start + 1);
    if (out == NULL)
        return SL_ENOMEM;
    size_t n = 0;
    size_t i = start + 1;
    for (;;) {
        if (i >= lx->len)
            return sl__xerror(lx->err, lx->src, lx->len, start, SL_EPARSE,
                              "unterminated string (missing closing %c)",
                              quote);
        char c = s[i];
        if (c == quote) {
            i++;
            break;
        }
        if (c != '\\') {
            out[n++] = c;
            i++;
            continue;
        }
        if (i + 1 >= lx->len)
            return sl__xerror(lx->err, lx->src, lx->len, start, SL_EPARSE,
                              "unterminated string (missing closing %c)",
                              quote);
        char e = s[i + 1];
        switch (e) {
        case '"': out[n++] = '"'; i += 2; continue;
        case '\'': out[n++] = '\''; i += 2; continue;
        case '\\': out[n++] = '\\'; i += 2; continue;
        case '/': out[n++] = '/'; i += 2; continue;
        case 'n': out[n++] = '\n'; i += 2; continue;
        case 't': out[n++] = '\t'; i += 2; continue;
        case 'r': out[n++] = '\r'; i += 2; continue;
        case 'b': out[n++] = '\b'; i += 2; continue;
        case 'f': out[n++] = '\f'; i += 2; continue;
        case '0': out[n++] = '\0'; i += 2; continue;
        case 'x': {
            long v = read_hex(lx, i + 2, 2);
            if (v < 0)
                return sl__xerror(lx->err, lx->src, lx->len, i, SL_EPARSE,
                                  "\\x needs two hex digits");
            out[n++] = (char)v;
            i += 4;
            continue;
        }
        case 'u': {
            long v = read_hex(lx, i + 2, 4);
            if (v < 0)
                return sl__xerror(lx->err, lx->src, lx->len, i, SL_EPARSE,
                                  "\\u needs four hex digits");
            size_t esc = i;
            i += 6;
            unsigned long cp = (unsigned long)v;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = (i + 1 < lx->len && s[i] == '\\' && s[i + 1] == 'u')
                              ? read_hex(lx, i + 2, 4)
                              : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return sl__xerror(lx->err, lx->src, lx->len, esc,
                                      SL_EPARSE,
                                      "\\u%04lX is half of a surrogate pair "
                                      "with no low half after it", cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) +
                     ((unsigned long)lo - 0xDC00);
                i += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return sl__xerror(lx->err, lx->src, lx->len, esc, SL_EPARSE,
                                  "\\u%04lX is a lone low surrogate", cp);
            }
            /* An escape never decodes longer than its source (6 or 12 bytes). */
            n += put_utf8(out + n, cp);
            continue;
        }
        default:
            if ((unsigned char)e < 0x20 || (unsigned char)e >= 0x7F)
                return sl__xerror(lx->err, lx->src, lx->len, i, SL_EPARSE,
                                  "unknown escape after '\\' (write \\\\ for "
                                  "a backslash)");
            return sl__xerror(lx->err, lx->src, lx->len, i, SL_EPARSE,
                              "unknown escape '\\%c' (write '\\\\%c' for a "
                              "backslash followed by '%c')", e, e, e);
        }
    }
    out[n] = '\0';
    tok->kind = SL__T_STRING;
    tok->pos = start;
    tok->end = i;
    tok->str = out;
    tok->len = n;
    lx->pos = i;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Tokens                                                              */
/* ------------------------------------------------------------------ */

static int lex_unexpected(sl__xlexer *lx, size_t at)
{
    unsigned char c = (unsigned char)lx->src[at];
    switch (c) {
    case '=':
        return sl__xerror(lx->err, lx->src, lx->len, at, SL_EPARSE,
                          "unexpected '=' (use == to compare)");
    case '&':
        return sl__xerror(lx->err, lx->src, lx->len, at, SL_EPARSE,
                          "unexpected '&' (use && for a logical and)");
    case '|':
        return sl__xerror(lx->err, lx->src, lx->len, at, SL_EPARSE,
                          "unexpected '|' (use || for a logical or)");
    default:
        break;
    }
    if (c < 0x20 || c == 0x7F)
        return sl__xerror(lx->err, lx->src, lx->len, at, SL_EPARSE,
                          "unexpected control character 0x%02X", c);
    if (c >= 0x80)
        return sl__xerror(lx->err, lx->src, lx->len, at, SL_EPARSE,
                          "unexpected non-ASCII character (quote it: "
                          "a[\"name\"])");
    return sl__xerror(lx->err, lx->src, lx->len, at, SL_EPARSE,
                      "unexpected character '%c'", c);
}

static bool ident_is(const char *p, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(p, word, n) == 0;
}

/*
 * The next token after whitespace. Two-character operators are matched
 * before their one-character prefixes. A '.' right after a token is a
 * member access; the parser decides whether that makes sense.
 */
int sl__xlex_next(sl__xlexer *lx, sl__xtok *tok)
{
    const char *s = lx->src;
    while (lx->pos < lx->len &&
           (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\n' ||
            s[lx->pos] == '\r' || s[lx->pos] == '\f' || s[lx->pos] == '\v'))
        lx->pos++;
    memset(tok, 0, sizeof(*tok));
    tok->pos = lx->pos;
    if (lx->pos >= lx->len) {
        tok->kind = SL__T_EOF;
        tok->end = lx->pos;
        return 0;
    }
    char c = s[lx->pos];
    char d = lx->pos + 1 < lx->len ? s[lx->pos + 1] : '\0';
    if (is_digit(c))
        return lex_number(lx, tok);
    if (c == '"' || c == '\'')
        return lex_string(lx, tok);
    if (is_ident_start(c)) {
        size_t i = lx->pos;
        while (i < lx->len && is_ident(s[i]))
            i++;
        tok->str = s + lx->pos;
        tok->len = i - lx->pos;
        tok->kind = SL__T_IDENT;
        if (ident_is(tok->str, tok->len, "true"))
            tok->kind = SL__T_TRUE;
        else if (ident_is(tok->str, tok->len, "false"))
            tok->kind = SL__T_FALSE;
        else if (ident_is(tok->str, tok->len, "null"))
            tok->kind = SL__T_NULL;
        tok->end = i;
        lx->pos = i;
        return 0;
    }
    size_t width = 1;
    switch (c) {
    case '$': tok->kind = SL__T_DOLLAR; break;
    case '(': tok->kind = SL__T_LPAREN; break;
    case ')': tok->kind = SL__T_RPAREN; break;
    case '[': tok->kind = SL__T_LBRACK; break;
    case ']': tok->kind = SL__T_RBRACK; break;
    case ',': tok->kind = SL__T_COMMA; break;
    case '?': tok->kind = SL__T_QUESTION; break;
    case ':': tok->kind = SL__T_COLON; break;
    case '+': tok->kind = SL__T_PLUS; break;
    case '-': tok->kind = SL__T_MINUS; break;
    case '*': tok->kind = SL__T_STAR; break;
    case '/': tok->kind = SL__T_SLASH; break;
    case '%': tok->kind = SL__T_PERCENT; break;
    case '.':
        if (is_digit(d)) {
            bool member = lx->pos > 0 && (is_ident(s[lx->pos - 1]) ||
                                          s[lx->pos - 1] == ']' ||
                                          s[lx->pos - 1] == ')');
            return sl__xerror(lx->err, lx->src, lx->len, lx->pos, SL_EPARSE,
                              member ? "expected a name after '.' (write "
                                       "a[0] for an array element)"
                                     : "a number must start with a digit "
                                       "(write 0.5, not .5)");
        }
        tok->kind = SL__T_DOT;
        break;
    case '=':
        if (d == '=') { tok->kind = SL__T_EQ; width = 2; break; }
        if (d == '~') { tok->kind = SL__T_MATCH; width = 2; break; }
        return lex_unexpected(lx, lx->pos);
    case '!':
        if (d == '=') { tok->kind = SL__T_NE; width = 2; break; }
        if (d == '~') { tok->kind = SL__T_NMATCH; width = 2; break; }
        tok->kind = SL__T_NOT;
        break;
    case '<':
        if (d == '=') { tok->kind = SL__T_LE; width = 2; break; }
        tok->kind = SL__T_LT;
        break;
    case '>':
        if (d == '=') { tok->kind = SL__T_GE; width = 2; break; }
        tok->kind = SL__T_GT;
        break;
    case '&':
        if (d == '&') { tok->kind = SL__T_AND; width = 2; break; }
        return lex_unexpected(lx, lx->pos);
    case '|':
        if (d == '|') { tok->kind = SL__T_OR; width = 2; break; }
        return lex_unexpected(lx, lx->pos);
    default:
        return lex_unexpected(lx, lx->pos);
    }
    lx->pos += width;
    tok->end = lx->pos;
    return 0;
}
