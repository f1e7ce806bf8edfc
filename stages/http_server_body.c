/*
 * http_server request bodies: JSON lines, a JSON array, or one object.
 *
 * The whole body is validated before anything is kept, so a request is
 * accepted or refused as a unit: a client that gets 400 can fix the body
 * and send it again without creating duplicates.
 */
#include <stdio.h>
#include <string.h>

#include "sluice/error.h"

#include "http_server.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Line number (1-based) of byte offset pos in body. */
static int64_t line_of(const char *body, size_t pos)
{
    int64_t line = 1;
    for (size_t i = 0; i < pos; i++)
        if (body[i] == '\n')
            line++;
    return line;
}

/* The body as one JSON document (array or object). */
static int parse_document(const char *body, size_t len, size_t start,
                          sl_value *out, sl__hs_body_error *err)
{
    sl_value *doc = NULL;
    sl_json_error jerr;
    sl_json_limits limits = {.max_depth = 0, .max_bytes = len + 1};
    int rc = sl_json_parse(body, len, &limits, &doc, &jerr);
    if (rc == SL_ENOMEM)
        return rc;
    if (rc < 0) {
        err->line = jerr.line > 0 ? jerr.line : line_of(body, start);
        snprintf(err->text, sizeof(err->text), "%s", jerr.text);
        return SL_EPARSE;
    }
    if (sl_value_type(doc) == SL_TYPE_OBJECT) {
        rc = sl_array_append(out, doc);
        return rc;
    }
    if (sl_value_type(doc) != SL_TYPE_ARRAY) {
        sl_value_unref(doc);
        err->line = line_of(body, start);
        snprintf(err->text, sizeof(err->text), "a record must be a JSON object");
        return SL_EPARSE;
    }
    size_t n = sl_array_len(doc);
    for (size_t i = 0; i < n; i++) {
        sl_value *item = sl_array_get(doc, i);
        if (sl_value_type(item) != SL_TYPE_OBJECT) {
            sl_value_unref(doc);
            err->line = 0;
            snprintf(err->text, sizeof(err->text),
                     "array element %zu: a record must be a JSON object", i + 1);
            return SL_EPARSE;
        }
        rc = sl_array_append(out, sl_value_ref(item));
        if (rc < 0) {
            sl_value_unref(doc);
            return rc;
        }
    }
    sl_value_unref(doc);
    return 0;
}

/* One JSON object per non-blank line. */
static int parse_lines(const char *body, size_t len, sl_value *out,
                       sl__hs_body_error *err)
{
    int64_t line_no = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(body + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - body) : len;
        line_no++;
        size_t a = pos, b = end;
        while (a < b && is_space(body[a]))
            a++;
        while (b > a && is_space(body[b - 1]))
            b--;
        pos = end + 1;
        if (a == b)
            continue;
        sl_value *v = NULL;
        sl_json_error jerr;
        sl_json_limits limits = {.max_depth = 0, .max_bytes = b - a + 1};
        int rc = sl_json_parse(body + a, b - a, &limits, &v, &jerr);
        if (rc == SL_ENOMEM)
            return rc;
        if (rc < 0) {
            err->line = line_no;
            snprintf(err->text, sizeof(err->text), "%s", jerr.text);
            return SL_EPARSE;
        }
        if (sl_value_type(v) != SL_TYPE_OBJECT) {
            sl_value_unref(v);
            err->line = line_no;
            snprintf(err->text, sizeof(err->text), "a record must be a JSON object");
            return SL_EPARSE;
        }
        rc = sl_array_append(out, v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * A body starting with '[' is one array. Otherwise it is read as JSON
 * lines; when its first record line does not parse on its own but the
 * whole body is one object (pretty-printed), that object is the record,
 * and a body that is neither reports the whole-document error when its
 * first line is the bad one (the line the parser names is the useful one).
 */
int sl__hs_parse_body(const char *body, size_t len, sl_value **out,
                      sl__hs_body_error *err)
{
    err->line = 0;
    err->text[0] = '\0';
    size_t start = 0;
    while (start < len && is_space(body[start]))
        start++;
    sl_value *arr = sl_value_array();
    if (arr == NULL)
        return SL_ENOMEM;
    int rc;
    if (start < len && body[start] == '[') {
        rc = parse_document(body, len, start, arr, err);
    } else {
        rc = parse_lines(body, len, arr, err);
        if (rc == SL_EPARSE && err->line == line_of(body, start)) {
            sl__hs_body_error doc_err = {0, ""};
            sl_value *one = sl_value_array();
            if (one == NULL) {
                rc = SL_ENOMEM;
            } else {
                int rc2 = parse_document(body, len, start, one, &doc_err);
                if (rc2 == 0) {
                    sl_value_unref(arr);
                    arr = one;
                    rc = 0;
                } else {
                    sl_value_unref(one);
                    if (rc2 == SL_ENOMEM)
                        rc = rc2;
                    else if (doc_err.line > err->line)
                        *err = doc_err;
                }
            }
        }
    }
    if (rc < 0) {
        sl_value_unref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
