/*
 * `sluice stages [TYPE]`: the stage types and their options, straight from
 * each descriptor's option table — the same table that validates pipeline
 * files. `sluice stages --markdown DIR` writes the stage reference pages
 * (one page per type, for docs/stages/) from those tables too.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/cli.h"
#include "engine/options.h"
#include "sluice/error.h"

static const char stages_usage[] =
    "Usage: sluice stages [TYPE] [--plugin PATH]...\n"
    "       sluice stages --markdown DIR [--plugin PATH]...\n"
    "\n"
    "Without TYPE, list every stage type with its kind and summary. With\n"
    "TYPE, show its options: key, type, default, whether required, range and\n"
    "description. --markdown writes one reference page per type into DIR\n"
    "(how docs/stages/ is made).\n";

/* Keys every stage takes, applied by the engine (see docs/pipelines.md). */
static const char engine_keys[] =
    "name, type, inputs, workers, ordered, capacity, on_error, retry, "
    "rate_limit, circuit_breaker, timeout";

static const char *kind_word(const sl_stage_desc *d)
{
    switch (d->kind) {
    case SL_STAGE_SOURCE:
        return "fetch";
    case SL_STAGE_TRANSFORM:
        return "transform";
    case SL_STAGE_SINK:
        return "store";
    }
    return "?";
}

/* A bound as written: whole numbers in full ("1073741824"), else "%g". */
static void bound_text(double v, char *buf, size_t size)
{
    if (v == (double)(long long)v && v > -1e18 && v < 1e18)
        snprintf(buf, size, "%lld", (long long)v);
    else
        snprintf(buf, size, "%g", v);
}

/* "1..100", "jsonl|csv", or "" */
static void range_text(const sl_option *o, char *buf, size_t size)
{
    buf[0] = '\0';
    if (o->type == SL_OPT_ENUM && o->choices != NULL) {
        snprintf(buf, size, "%s", o->choices);
    } else if (o->min != o->max) {
        char lo[32], hi[32];
        if (o->type == SL_OPT_DURATION) {
            sl__format_duration((int64_t)o->min, lo, sizeof(lo));
            sl__format_duration((int64_t)o->max, hi, sizeof(hi));
        } else {
            bound_text(o->min, lo, sizeof(lo));
            bound_text(o->max, hi, sizeof(hi));
        }
        snprintf(buf, size, "%s..%s", lo, hi);
    }
}

static void list_types(const sl_registry *r)
{
    size_t w = 4;
    for (size_t i = 0; i < sl__registry_count(r); i++) {
        size_t n = strlen(sl__registry_at(r, i)->name);
        if (n > w)
            w = n;
    }
    printf("%-*s  %-9s  %s\n", (int)w, "type", "kind", "summary");
    for (size_t i = 0; i < sl__registry_count(r); i++) {
        const sl_stage_desc *d = sl__registry_at(r, i);
        const char *origin = sl__registry_origin(r, i);
        bool plugin = strcmp(origin, "built-in") != 0;
        printf("%-*s  %-9s  %s%s%s%s\n", (int)w, d->name, kind_word(d),
               d->summary != NULL ? d->summary : "", plugin ? " [plugin " : "",
               plugin ? origin : "", plugin ? "]" : "");
    }
}

static void show_form(const sl_stage_desc *d, const char *origin)
{
    printf("%s (%s)%s%s\n", d->name, kind_word(d),
           d->summary != NULL ? ": " : "", d->summary != NULL ? d->summary : "");
    if (strcmp(origin, "built-in") != 0)
        printf("  from plugin %s\n", origin);
    if (d->options == NULL || d->options[0].key == NULL) {
        printf("  no options of its own\n");
        return;
    }
    size_t wk = 3, wt = 4, wd = 7, wr = 5;
    for (const sl_option *o = d->options; o->key != NULL; o++) {
        char range[128];
        range_text(o, range, sizeof(range));
        if (strlen(o->key) > wk)
            wk = strlen(o->key);
        if (strlen(sl__opt_type_name(o->type)) > wt)
            wt = strlen(sl__opt_type_name(o->type));
        if (o->default_yaml != NULL && strlen(o->default_yaml) > wd)
            wd = strlen(o->default_yaml);
        if (strlen(range) > wr)
            wr = strlen(range);
    }
    if (wd > 24)
        wd = 24;
    printf("  %-*s  %-*s  %-*s  %-8s  %-*s  %s\n", (int)wk, "key", (int)wt,
           "type", (int)wd, "default", "required", (int)wr, "range",
           "description");
    for (const sl_option *o = d->options; o->key != NULL; o++) {
        char range[128];
        range_text(o, range, sizeof(range));
        printf("  %-*s  %-*s  %-*.*s  %-8s  %-*s  %s\n", (int)wk, o->key,
               (int)wt, sl__opt_type_name(o->type), (int)wd, (int)wd,
               o->default_yaml != NULL ? o->default_yaml : "-",
               (o->flags & SL_OPT_REQUIRED) ? "yes" : "no", (int)wr, range,
               o->description != NULL ? o->description : "");
    }
}

static int show_type(const sl_registry *r, const char *type)
{
    const sl_stage_desc *src = NULL, *con = NULL;
    if (!sl__registry_forms(r, type, &src, &con)) {
        const char *near = sl__diag_suggest(type, sl__registry_names(r),
                                            SIZE_MAX);
        if (near != NULL)
            sl__cli_error("unknown stage type '%s' (did you mean '%s'?)", type,
                          near);
        else
            sl__cli_error("unknown stage type '%s' (sluice stages lists them)",
                          type);
        return SL__EXIT_USAGE;
    }
    for (size_t i = 0; i < sl__registry_count(r); i++) {
        const sl_stage_desc *d = sl__registry_at(r, i);
        if (d != src && d != con)
            continue;
        if (d == con && src != NULL)
            printf("\n");
        show_form(d, sl__registry_origin(r, i));
    }
    printf("\nEvery stage also takes the engine keys: %s.\n", engine_keys);
    return SL__EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Markdown reference pages                                            */
/* ------------------------------------------------------------------ */

/* Write text with '|' escaped (table cells) and newlines flattened. */
static void md_cell(FILE *f, const char *s)
{
    for (; s != NULL && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

static void md_form(FILE *f, const sl_stage_desc *d, const char *origin,
                    bool two_forms)
{
    if (two_forms)
        fprintf(f, "## As a %s stage (%s)\n\n", kind_word(d),
                d->kind == SL_STAGE_SOURCE ? "no input" : "with an input");
    if (d->summary != NULL && d->summary[0] != '\0') {
        size_t n = strlen(d->summary);
        fprintf(f, "%c%s%s\n\n", toupper((unsigned char)d->summary[0]),
                d->summary + 1, d->summary[n - 1] == '.' ? "" : ".");
    }
    if (strcmp(origin, "built-in") != 0)
        fprintf(f, "Provided by the plugin `%s`.\n\n", origin);
    if (d->options == NULL || d->options[0].key == NULL) {
        fprintf(f, "No options of its own.\n\n");
        return;
    }
    fprintf(f, "| option | type | default | required | range | description |\n"
               "|---|---|---|---|---|---|\n");
    for (const sl_option *o = d->options; o->key != NULL; o++) {
        char range[128];
        range_text(o, range, sizeof(range));
        fprintf(f, "| `%s` | %s | ", o->key, sl__opt_type_name(o->type));
        if (o->default_yaml != NULL) {
            fputc('`', f);
            md_cell(f, o->default_yaml);
            fputc('`', f);
        }
        fprintf(f, " | %s | ", (o->flags & SL_OPT_REQUIRED) ? "yes" : "no");
        if (range[0] != '\0') {
            fputc('`', f);
            md_cell(f, range);
            fputc('`', f);
        }
        fputs(" | ", f);
        md_cell(f, o->description);
        fputs(" |\n", f);
    }
    fputc('\n', f);
}

static int write_markdown(const sl_registry *r, const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        sl__cli_error("stages --markdown: cannot create %s: %s", dir,
                      strerror(errno));
        return SL__EXIT_FAILED;
    }
    size_t plen = strlen(dir) + 80;
    char *path = malloc(plen);
    if (path == NULL)
        return SL__EXIT_FAILED;
    snprintf(path, plen, "%s/README.md", dir);
    FILE *index = fopen(path, "w");
    if (index == NULL) {
        sl__cli_error("stages --markdown: cannot write %s: %s", path,
                      strerror(errno));
        free(path);
        return SL__EXIT_FAILED;
    }
    fprintf(index, "# Stage reference\n\n"
                   "Generated by `sluice stages --markdown` from each stage "
                   "type's option table; do not edit by hand.\n\n"
                   "Every stage also takes the engine keys %s (see "
                   "[the pipeline guide](../pipelines.md)).\n\n"
                   "| type | kind | summary |\n|---|---|---|\n",
            engine_keys);
    int code = SL__EXIT_OK;
    for (const char *const *name = sl__registry_names(r); *name != NULL; name++) {
        const sl_stage_desc *src = NULL, *con = NULL;
        sl__registry_forms(r, *name, &src, &con);
        fprintf(index, "| [`%s`](%s.md) | %s%s%s | ", *name, *name,
                src != NULL ? kind_word(src) : "",
                src != NULL && con != NULL ? ", " : "",
                con != NULL ? kind_word(con) : "");
        md_cell(index, (src != NULL ? src : con)->summary);
        fputs(" |\n", index);

        snprintf(path, plen, "%s/%s.md", dir, *name);
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            sl__cli_error("stages --markdown: cannot write %s: %s", path,
                          strerror(errno));
            code = SL__EXIT_FAILED;
            continue;
        }
        fprintf(f, "# `%s`\n\n", *name);
        fprintf(f, "<!-- Generated by `sluice stages --markdown` from the "
                   "option table; do not edit. -->\n\n");
        for (size_t i = 0; i < sl__registry_count(r); i++) {
            const sl_stage_desc *d = sl__registry_at(r, i);
            if (d == src || d == con)
                md_form(f, d, sl__registry_origin(r, i),
                        src != NULL && con != NULL);
        }
        fprintf(f, "Every stage also takes the engine keys %s (see "
                   "[the pipeline guide](../pipelines.md)).\n", engine_keys);
        if (fclose(f) != 0)
            code = SL__EXIT_FAILED;
    }
    if (fclose(index) != 0)
        code = SL__EXIT_FAILED;
    free(path);
    return code;
}

int sl__cli_stages(int argc, char **argv)
{
    const char *type = NULL, *markdown = NULL;
    sl__strvec plugins = {0};
    int code = -1;
    for (int i = 0; i < argc && code < 0; i++) {
        bool m;
        const char *v;
        if (sl__cli_is_help(argv[i])) {
            fputs(stages_usage, stdout);
            code = SL__EXIT_OK;
        } else if ((v = sl__cli_opt_value(argc, argv, &i, "--plugin", &m)) !=
                       NULL || m) {
            if (v == NULL)
                code = SL__EXIT_USAGE;
            else
                sl__strvec_push(&plugins, v);
        } else if ((v = sl__cli_opt_value(argc, argv, &i, "--markdown", &m)) !=
                       NULL || m) {
            if (v == NULL)
                code = SL__EXIT_USAGE;
            markdown = v;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            sl__cli_error("stages: unknown option '%s'", argv[i]);
            code = SL__EXIT_USAGE;
        } else if (type != NULL) {
            sl__cli_error("stages: one type at a time");
            code = SL__EXIT_USAGE;
        } else {
            type = argv[i];
        }
    }
    if (code >= 0)
        goto out;
    sl_diag *diag = sl__diag_create();
    sl_registry *r = NULL;
    code = SL__EXIT_USAGE;
    if (diag != NULL && sl__registry_create(diag, &r) == 0) {
        bool ok = true;
        for (size_t i = 0; i < plugins.n; i++)
            if (sl__registry_load_plugin(r, plugins.items[i], NULL, 0, 0,
                                         diag) != 0)
                ok = false;
        if (ok) {
            if (markdown != NULL)
                code = write_markdown(r, markdown);
            else if (type != NULL)
                code = show_type(r, type);
            else {
                list_types(r);
                code = SL__EXIT_OK;
            }
        }
    }
    if (diag != NULL)
        sl__diag_print(diag, stderr);
    sl__registry_destroy(r);
    sl__diag_destroy(diag);
out:
    sl__strvec_fini(&plugins);
    return code;
}
