/*
 * `regex`: match each payload (or a field) against a POSIX extended regular
 * expression; named groups become string fields.
 *
 * POSIX ERE has no named groups, so the pattern is rewritten before
 * regcomp(3): `(?<name>...)` (or `(?P<name>...)`) loses its `?<name>` and
 * the group's number is remembered under that name; `(?:...)` becomes a
 * plain group whose text is not kept. Other `(?` forms (look-around, flags)
 * are configuration errors, as are a pattern with no named group and a name
 * used twice. The pattern matches anywhere in the text unless anchored with
 * ^ and $. A named group that did not take part in the match gives null.
 *
 * Input: the payload by default (which is then cleared), or the string
 * field named by `field`. The new fields are added to the record's fields.
 * A text that does not match is an error (on_error decides), or dropped
 * with `on_mismatch: drop`.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/plugin.h"

#include "record_where.h"

enum { MISMATCH_ERROR = 0, MISMATCH_DROP = 1 };

typedef struct regex_group {
    size_t index;           /* group number in the compiled pattern */
    char *name;             /* field name (owned) */
} regex_group;

typedef struct regex_stage {
    char *pattern;          /* option: the expression */
    char *field;            /* option: source field; NULL = payload */
    int on_mismatch;        /* option: MISMATCH_* */
    regex_t re;             /* compiled; valid when compiled */
    bool compiled;          /* re holds a compiled pattern */
    regex_group *groups;    /* named groups in pattern order */
    size_t n_groups;        /* entries in groups */
    regmatch_t *match;      /* re_nsub + 1 entries */
    sl_buf text;            /* NUL-terminated copy of the input, when needed */
} regex_stage;

static bool is_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* Copy a bracket expression starting at pat[i] == '[' to out; returns the
 * index after it (or the end of the pattern if unterminated: regcomp will
 * report that). */
static size_t copy_bracket(const char *pat, size_t i, sl_buf *out, int *rc)
{
    size_t j = i + 1;
    if (pat[j] == '^')
        j++;
    if (pat[j] == ']')
        j++;
    while (pat[j] != '\0' && pat[j] != ']') {
        if (pat[j] == '[' && (pat[j + 1] == ':' || pat[j + 1] == '.' || pat[j + 1] == '=')) {
            char kind = pat[j + 1];
            const char *end = NULL;
            for (const char *q = pat + j + 2; *q != '\0'; q++) {
                if (q[0] == kind && q[1] == ']') {
                    end = q;
                    break;
                }
            }
            if (end != NULL) {
                j = (size_t)(end - pat) + 2;
                continue;
            }
        }
        j++;
    }
    if (pat[j] == ']')
        j++;
    if (sl_buf_append(out, pat + i, j - i) < 0)
        *rc = SL_ENOMEM;
    return j;
}

/*
 * Rewrite pat into out (see the top of the file), filling rs->groups.
 * Returns 0, SL_ENOMEM, or SL_ECONFIG after sl_stage_error.
 */
static int translate(regex_stage *rs, sl_stage_ctx *sc, const char *pat, sl_buf *out)
{
    size_t group = 0;
    size_t i = 0;
    int rc = 0;
    while (pat[i] != '\0' && rc == 0) {
        char c = pat[i];
        if (c == '\\') {
            size_t n = pat[i + 1] != '\0' ? 2 : 1;
            rc = sl_buf_append(out, pat + i, n);
            i += n;
            continue;
        }
        if (c == '[') {
            i = copy_bracket(pat, i, out, &rc);
            continue;
        }
        if (c != '(') {
            rc = sl_buf_putc(out, c);
            i++;
            continue;
        }
        group++;
        if (pat[i + 1] != '?') {
            rc = sl_buf_putc(out, '(');
            i++;
            continue;
        }
        size_t k = i + 2;
        if (pat[k] == ':') {
            rc = sl_buf_putc(out, '(');
            i = k + 1;
            continue;
        }
        if (pat[k] == 'P')
            k++;
        if (pat[k] != '<' || !is_name_char(pat[k + 1], true))
            return sl_stage_error(sc, SL_ECONFIG,
                                  "pattern: unsupported group '(?%c' at offset %zu "
                                  "(POSIX extended syntax with (?<name>...) groups)",
                                  pat[i + 2] != '\0' ? pat[i + 2] : ' ', i);
        size_t name_start = k + 1;
        size_t e = name_start;
        while (is_name_char(pat[e], false))
            e++;
        if (pat[e] != '>')
            return sl_stage_error(sc, SL_ECONFIG,
                                  "pattern: group name at offset %zu must be letters, digits "
                                  "or '_' followed by '>'", name_start);
        size_t nlen = e - name_start;
        for (size_t g = 0; g < rs->n_groups; g++)
            if (strlen(rs->groups[g].name) == nlen &&
                memcmp(rs->groups[g].name, pat + name_start, nlen) == 0)
                return sl_stage_error(sc, SL_ECONFIG, "pattern: group name '%.*s' used twice",
                                      (int)nlen, pat + name_start);
        regex_group *ng = realloc(rs->groups, (rs->n_groups + 1) * sizeof(*ng));
        if (ng == NULL)
            return SL_ENOMEM;
        rs->groups = ng;
        char *name = strndup(pat + name_start, nlen);
        if (name == NULL)
            return SL_ENOMEM;
        rs->groups[rs->n_groups++] = (regex_group){group, name};
        rc = sl_buf_putc(out, '(');
        i = e + 1;
    }
    return rc;
}

static int regex_init(void *state, sl_stage_ctx *sc)
{
    regex_stage *rs = state;
    sl_buf_init(&rs->text);
    if (rs->pattern == NULL || rs->pattern[0] == '\0')
        return sl_stage_error(sc, SL_ECONFIG, "'pattern' must not be empty");
    sl_buf out;
    sl_buf_init(&out);
    int rc = translate(rs, sc, rs->pattern, &out);
    if (rc == 0 && out.len == 0)
        rc = sl_buf_putc(&out, '\0');  /* keep data non-NULL */
    if (rc == SL_ENOMEM)
        rc = sl_stage_error(sc, SL_ENOMEM, "out of memory");
    if (rc < 0)
        goto out_fini;
    if (rs->n_groups == 0) {
        rc = sl_stage_error(sc, SL_ECONFIG, "pattern has no named group (?<name>...)");
        goto out_fini;
    }
    int rerr = regcomp(&rs->re, out.data, REG_EXTENDED);
    if (rerr != 0) {
        char msg[256];
        regerror(rerr, &rs->re, msg, sizeof(msg));
        rc = sl_stage_error(sc, SL_ECONFIG, "pattern: %s", msg);
        goto out_fini;
    }
    rs->compiled = true;
    for (size_t g = 0; g < rs->n_groups; g++) {
        if (rs->groups[g].index > rs->re.re_nsub) {
            rc = sl_stage_error(sc, SL_ECONFIG, "pattern: group '%s' not found after compiling",
                                rs->groups[g].name);
            goto out_fini;
        }
    }
    rs->match = calloc(rs->re.re_nsub + 1, sizeof(*rs->match));
    if (rs->match == NULL)
        rc = sl_stage_error(sc, SL_ENOMEM, "out of memory");
out_fini:
    sl_buf_fini(&out);
    return rc;
}

/*
 * Run the expression over s[0..len). Returns 1 on a match (rs->match
 * filled, offsets relative to s), 0 otherwise, SL_ENOMEM.
 */
static int run_match(regex_stage *rs, const char *s, size_t len)
{
    size_t nmatch = rs->re.re_nsub + 1;
#ifdef REG_STARTEND
    rs->match[0].rm_so = 0;
    rs->match[0].rm_eo = (regoff_t)len;
    return regexec(&rs->re, s, nmatch, rs->match, REG_STARTEND) == 0 ? 1 : 0;
#else
    sl_buf_reset(&rs->text);
    if (sl_buf_append(&rs->text, s, len) < 0 || sl_buf_putc(&rs->text, '\0') < 0)
        return SL_ENOMEM;
    return regexec(&rs->re, rs->text.data, nmatch, rs->match, 0) == 0 ? 1 : 0;
#endif
}

static int regex_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    regex_stage *rs = state;
    char where[512];
    const char *s;
    size_t len;
    bool from_payload = rs->field == NULL || rs->field[0] == '\0';
    if (from_payload) {
        s = sl_record_payload(rec, &len);
        if (s == NULL) {
            s = "";
            len = 0;
        }
    } else {
        sl_value *fv = sl_record_get(rec, rs->field);
        s = sl_value_get_string(fv, &len);
        if (s == NULL)
            return sl_stage_error(sc, SL_ETYPE, "%s: field '%s' is %s, not a string",
                                  sl__record_where(rec, where, sizeof(where)), rs->field,
                                  fv == NULL ? "missing" : sl_type_name(sl_value_type(fv)));
    }
    int m = run_match(rs, s, len);
    if (m < 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    if (m == 0) {
        if (rs->on_mismatch == MISMATCH_DROP) {
            sl_record_drop(sc, rec);
            return 0;
        }
        return sl_stage_error(sc, SL_EPARSE, "%s: does not match the pattern",
                              sl__record_where(rec, where, sizeof(where)));
    }
    /* Build the values first: setting a field may move s (it may point
     * into the fields). */
    sl_value *vals[64];
    sl_value **v = rs->n_groups <= 64 ? vals : calloc(rs->n_groups, sizeof(*v));
    if (v == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t g = 0; g < rs->n_groups; g++) {
        const regmatch_t *mt = &rs->match[rs->groups[g].index];
        v[g] = mt->rm_so < 0 ? sl_value_null()
                             : sl_value_string(s + mt->rm_so, (size_t)(mt->rm_eo - mt->rm_so));
        if (v[g] == NULL)
            rc = SL_ENOMEM;
    }
    for (size_t g = 0; g < rs->n_groups; g++) {
        if (rc == 0)
            rc = sl_record_set(rec, rs->groups[g].name, v[g]);
        else
            sl_value_unref(v[g]);
    }
    if (v != vals)
        free(v);
    if (rc < 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    if (from_payload)
        sl_record_clear_payload(rec);
    sl_emit(sc, rec);
    return 0;
}

static void regex_destroy(void *state)
{
    regex_stage *rs = state;
    if (rs->compiled)
        regfree(&rs->re);
    for (size_t g = 0; g < rs->n_groups; g++)
        free(rs->groups[g].name);
    free(rs->groups);
    free(rs->match);
    sl_buf_fini(&rs->text);
}

static const sl_option regex_options[] = {
    {SL_OPT_STRING, "pattern", NULL, SL_OPT_REQUIRED, offsetof(regex_stage, pattern), 0, 0, NULL,
     "POSIX extended regular expression; (?<name>...) groups become fields"},
    {SL_OPT_STRING, "field", NULL, 0, offsetof(regex_stage, field), 0, 0, NULL,
     "match this string field instead of the payload"},
    {SL_OPT_ENUM, "on_mismatch", "error", 0, offsetof(regex_stage, on_mismatch), 0, 0, "error|drop",
     "a text that does not match: error (on_error decides) or drop"},
    SL_OPTIONS_END,
};

const sl_stage_desc sl_stage_regex = {
    SL_STAGE_DESC_HEADER,
    .name = "regex",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "match each payload against a regular expression; named groups become fields",
    .options = regex_options,
    .state_size = sizeof(regex_stage),
    .init = regex_init,
    .process = regex_process,
    .destroy = regex_destroy,
};
