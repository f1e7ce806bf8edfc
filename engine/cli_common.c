/*
 * What the commands share: option parsing helpers and loading a pipeline
 * (registry, plugins, config, graph) with its messages printed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli.h"
#include "sluice/error.h"

int sl__strvec_push(sl__strvec *v, const char *s)
{
    if (v->n + 2 > v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 8;
        const char **ni = realloc(v->items, ncap * sizeof(*ni));
        if (ni == NULL)
            return SL_ENOMEM;
        v->items = ni;
        v->cap = ncap;
    }
    v->items[v->n++] = s;
    v->items[v->n] = NULL;
    return 0;
}

void sl__strvec_fini(sl__strvec *v)
{
    free(v->items);
    memset(v, 0, sizeof(*v));
}

void sl__cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sluice: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool sl__cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

const char *sl__cli_opt_value(int argc, char **argv, int *i, const char *opt,
                              bool *matched)
{
    const char *a = argv[*i];
    size_t len = strlen(opt);
    *matched = false;
    if (strncmp(a, opt, len) != 0)
        return NULL;
    if (a[len] == '=') {
        *matched = true;
        return a + len + 1;
    }
    if (a[len] != '\0')
        return NULL;
    *matched = true;
    if (*i + 1 >= argc) {
        sl__cli_error("%s needs a value", opt);
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

static void print_diag(const sl_diag *d)
{
    sl__diag_print(d, stderr);
}

int sl__cli_load(const char *path, const sl__strvec *sets,
                 const sl__strvec *plugins, sl__loaded *out)
{
    memset(out, 0, sizeof(*out));
    sl_diag *diag = sl__diag_create();
    if (diag == NULL) {
        sl__cli_error("out of memory");
        return SL__EXIT_USAGE;
    }
    int exit_code = SL__EXIT_USAGE;
    int rc = sl__registry_create(diag, &out->registry);
    if (rc != 0)
        goto out_print;
    bool plugin_failed = false;
    for (size_t i = 0; plugins != NULL && i < plugins->n; i++) {
        if (sl__registry_load_plugin(out->registry, plugins->items[i], NULL, 0,
                                     0, diag) != 0)
            plugin_failed = true;
    }
    if (plugin_failed)
        goto out_print;

    sl_stage_registry adapter;
    sl__registry_adapter(out->registry, &adapter);
    sl_config_opts opts = {
        .set = sets != NULL && sets->n > 0 ? sets->items : NULL,
        .registry = &adapter,
    };
    rc = sl__config_load_file(path, &opts, diag, &out->cfg);
    if (rc != 0)
        goto out_print;
    rc = sl__graph_build(out->cfg, diag, &out->graph);
    if (rc != 0)
        goto out_print;
    exit_code = 0;
out_print:
    if (rc == SL_ENOMEM)
        sl__cli_error("out of memory");
    print_diag(diag);
    sl__diag_destroy(diag);
    if (exit_code != 0)
        sl__cli_unload(out);
    return exit_code;
}

void sl__cli_unload(sl__loaded *l)
{
    sl__graph_destroy(l->graph);
    sl__config_destroy(l->cfg);
    sl__registry_destroy(l->registry);
    memset(l, 0, sizeof(*l));
}
