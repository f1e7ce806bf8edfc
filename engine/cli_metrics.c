/*
 * `sluice metrics SNAPSHOT`: a metrics snapshot (metrics.file, the last
 * line of a metrics.history file, or what /snapshot served) as a readable
 * report naming the bottleneck; --json passes the snapshot through.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli.h"
#include "metrics/snapshot.h"
#include "sluice/error.h"

static const char metrics_usage[] =
    "Usage: sluice metrics SNAPSHOT [--json]\n"
    "\n"
    "Show a metrics snapshot as tables: per stage the counts, rates and\n"
    "latencies, then how each stage spent its time (busy, blocked on a full\n"
    "output, idle waiting for input, how full its input queue was kept), and\n"
    "the bottleneck: the stage that is busy while its input queue is full\n"
    "and its output waits on nobody (docs/metrics.md gives the exact rule).\n"
    "\n"
    "SNAPSHOT is a metrics.file, a metrics.history file (its last line is\n"
    "used), or - for standard input.\n"
    "\n"
    "Options:\n"
    "  --json      print the snapshot's JSON (one line) instead, for scripts\n"
    "  -h, --help  show this help\n"
    "\n"
    "Exit codes: 0 shown, 2 usage error or not a snapshot.\n";

/* Snapshots are small; this only stops a wrong file from eating memory. */
#define MAX_SNAPSHOT_FILE (256u << 20)

/* Read all of path ("-": stdin). Returns a NUL-terminated buffer or NULL
 * with a message printed. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        sl__cli_error("metrics: cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n + 1 >= cap) {
            if (cap >= MAX_SNAPSHOT_FILE) {
                sl__cli_error("metrics: %s is larger than %u MiB: not a "
                              "snapshot", path, MAX_SNAPSHOT_FILE >> 20);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                sl__cli_error("metrics: cannot read %s: %s", path,
                              strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf == NULL)
        return NULL;
    buf[n] = '\0';
    *len = n;
    return buf;
}

/*
 * The snapshot in text: the whole text when it is one JSON document (a
 * metrics.file, even pretty-printed), else its last non-blank line (a
 * history file). Returns 0 with *out filled and [*start, *start + *len)
 * the snapshot's text, or prints why not and returns 2.
 */
static int pick(const char *path, const char *text, size_t len,
                sl__run_snapshot *out, const char **start, size_t *n)
{
    char err[256];
    int rc = sl__run_snapshot_read(text, len, out, err, sizeof(err));
    if (rc == 0) {
        *start = text;
        *n = len;
        return 0;
    }
    if (rc == SL_ENOMEM) {
        sl__cli_error("out of memory");
        return SL__EXIT_USAGE;
    }
    /* the last non-blank line */
    size_t end = len;
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' ||
                       text[end - 1] == ' ' || text[end - 1] == '\t'))
        end--;
    size_t begin = end;
    while (begin > 0 && text[begin - 1] != '\n')
        begin--;
    if (end == 0) {
        sl__cli_error("metrics: %s is empty", path);
        return SL__EXIT_USAGE;
    }
    bool several = begin > 0;
    if (several) {
        char err2[256];
        rc = sl__run_snapshot_read(text + begin, end - begin, out, err2,
                                   sizeof(err2));
        if (rc == 0) {
            *start = text + begin;
            *n = end - begin;
            return 0;
        }
        if (rc == SL_ENOMEM) {
            sl__cli_error("out of memory");
            return SL__EXIT_USAGE;
        }
        snprintf(err, sizeof(err), "%s", err2);
    }
    sl__cli_error("metrics: %s%s is not a metrics snapshot: %s", path,
                  several ? " (its last line)" : "", err);
    return SL__EXIT_USAGE;
}

int sl__cli_metrics(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (sl__cli_is_help(a)) {
            fputs(metrics_usage, stdout);
            return SL__EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            sl__cli_error("metrics: unknown option '%s' (see sluice metrics "
                          "--help)", a);
            return SL__EXIT_USAGE;
        }
        if (path != NULL) {
            sl__cli_error("metrics: one snapshot at a time ('%s' and '%s')",
                          path, a);
            return SL__EXIT_USAGE;
        }
        path = a;
    }
    if (path == NULL) {
        sl__cli_error("metrics: which snapshot? (sluice metrics "
                      "out/metrics.json)");
        return SL__EXIT_USAGE;
    }
    size_t len = 0;
    char *text = slurp(path, &len);
    if (text == NULL)
        return SL__EXIT_USAGE;
    sl__run_snapshot snap;
    const char *start = NULL;
    size_t n = 0;
    int exit_code = pick(path, text, len, &snap, &start, &n);
    if (exit_code == 0) {
        if (json) {
            /* one line, as the history keeps it */
            sl_buf b;
            sl_buf_init(&b);
            if (start == text && memchr(text, '\n', n) != NULL &&
                memchr(text, '\n', n) != text + n - 1) {
                /* a pretty-printed file: pass the document, not its layout */
                sl_json_dump(snap.doc, &b);
                fwrite(b.data, 1, b.len, stdout);
            } else {
                while (n > 0 && (start[n - 1] == '\n' || start[n - 1] == '\r'))
                    n--;
                fwrite(start, 1, n, stdout);
            }
            fputc('\n', stdout);
            sl_buf_fini(&b);
        } else {
            sl__metrics_print_report(&snap, stdout);
        }
        sl__run_snapshot_fini(&snap);
    }
    free(text);
    return exit_code;
}
