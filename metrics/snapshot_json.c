/*
 * A snapshot as JSON (DESIGN.md "Metrics — contract", every field in
 * docs/metrics.md), written atomically to metrics.file or appended as one
 * line to metrics.history.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/registry.h"
#include "metrics/snapshot.h"
#include "metrics/text.h"
#include "sluice/error.h"

/*
 * ,"extra":{NAME:VALUE, NAME:{LABEL_VALUE:VALUE,...}}: each name once, in
 * the order first declared; a labelled metric's values gathered under it.
 */
static int extra_json(const sl__stage_snapshot *t, sl_buf *b)
{
    int rc = sl__mput(b, ",\"extra\":{");
    bool first = true;
    for (size_t i = 0; i < t->n_extra; i++) {
        const sl__extra_metric *m = &t->extra[i];
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(t->extra[k].name, m->name) == 0;
        if (seen)
            continue;
        if (!first)
            rc |= sl__mput(b, ",");
        first = false;
        rc |= sl__mput_json_str(b, m->name);
        rc |= sl__mput(b, ":");
        if (m->label_key == NULL) {
            rc |= sl__mputf(b, "%lld", (long long)m->value);
            continue;
        }
        rc |= sl__mput(b, "{");
        bool first_label = true;
        for (size_t k = i; k < t->n_extra; k++) {
            if (strcmp(t->extra[k].name, m->name) != 0)
                continue;
            if (!first_label)
                rc |= sl__mput(b, ",");
            first_label = false;
            rc |= sl__mput_json_str(b, t->extra[k].label_value);
            rc |= sl__mputf(b, ":%lld", (long long)t->extra[k].value);
        }
        rc |= sl__mput(b, "}");
    }
    rc |= sl__mput(b, "}");
    return rc;
}

static int stage_json(const sl__run_snapshot *snap, const sl__stage_snapshot *t,
                      sl_buf *b)
{
    int rc = 0;
    rc |= sl__mput(b, "{\"name\":");
    rc |= sl__mput_json_str(b, t->name);
    rc |= sl__mput(b, ",\"type\":");
    rc |= sl__mput_json_str(b, t->type);
    rc |= sl__mput(b, ",\"kind\":");
    rc |= sl__mput_json_str(b, sl__stage_kind_name(t->kind));
    rc |= sl__mput(b, ",\"state\":");
    rc |= sl__mput_json_str(b, t->state != NULL ? t->state : "running");
    rc |= sl__mputf(b, ",\"workers\":%d,\"inputs\":[", t->workers);
    for (size_t k = 0; k < t->n_inputs; k++) {
        if (k > 0)
            rc |= sl__mput(b, ",");
        size_t j = t->inputs[k];
        rc |= sl__mput_json_str(b, j < snap->n_stages ? snap->stages[j].name
                                                      : "");
    }
    rc |= sl__mputf(b, "],\"records_in\":%llu,\"records_out\":%llu"
                       ",\"errors\":%llu,\"dropped\":%llu,\"retries\":%llu"
                       ",\"bytes_in\":%llu,\"bytes_out\":%llu",
                    (unsigned long long)t->records_in,
                    (unsigned long long)t->records_out,
                    (unsigned long long)t->errors,
                    (unsigned long long)t->dropped,
                    (unsigned long long)t->retries,
                    (unsigned long long)t->bytes_in,
                    (unsigned long long)t->bytes_out);
    rc |= sl__mputf(b, ",\"queue_depth\":%zu,\"queue_capacity\":%zu"
                       ",\"queue_max_depth\":%zu",
                    t->queue_depth, t->queue_capacity, t->queue_max_depth);
    rc |= sl__mput(b, ",\"queue_full_s\":");
    rc |= sl__mput_num(b, t->queue_full_s);
    rc |= sl__mput(b, ",\"active_s\":");
    rc |= sl__mput_num(b, t->active_s);
    rc |= sl__mput(b, ",\"blocked_send_s\":");
    rc |= sl__mput_num(b, t->blocked_send_s);
    rc |= sl__mput(b, ",\"idle_recv_s\":");
    rc |= sl__mput_num(b, t->idle_recv_s);
    rc |= sl__mput(b, ",\"latency_us\":{\"p50\":");
    rc |= sl__mput_num(b, t->latency_p50_us);
    rc |= sl__mput(b, ",\"p90\":");
    rc |= sl__mput_num(b, t->latency_p90_us);
    rc |= sl__mput(b, ",\"p99\":");
    rc |= sl__mput_num(b, t->latency_p99_us);
    rc |= sl__mput(b, ",\"max\":");
    rc |= sl__mput_num(b, t->latency_max_us);
    rc |= sl__mputf(b, ",\"count\":%llu", (unsigned long long)t->latency_count);
    rc |= sl__mput(b, "},\"throughput_rps\":");
    rc |= sl__mput_num(b, t->throughput_rps);
    if (t->has_breaker) {
        rc |= sl__mput(b, ",\"breaker\":{\"state\":");
        rc |= sl__mput_json_str(b, t->breaker_state);
        rc |= sl__mputf(b, ",\"opens\":%llu,\"rejections\":%llu}",
                        (unsigned long long)t->breaker_opens,
                        (unsigned long long)t->breaker_rejections);
    }
    if (t->n_extra > 0)
        rc |= extra_json(t, b);
    rc |= sl__mput(b, "}");
    return rc != 0 ? SL_ENOMEM : 0;
}

int sl__run_snapshot_json(const sl__run_snapshot *s, sl_buf *b)
{
    int rc = 0;
    rc |= sl__mput(b, "{\"pipeline\":");
    rc |= sl__mput_json_str(b, s->pipeline);
    rc |= sl__mput(b, ",\"status\":");
    rc |= sl__mput_json_str(b, sl__run_status_name(s->status));
    rc |= sl__mput(b, ",\"elapsed_s\":");
    rc |= sl__mput_num(b, s->elapsed_s);
    if (s->cause != NULL && s->cause[0] != '\0') {
        rc |= sl__mput(b, ",\"cause\":");
        rc |= sl__mput_json_str(b, s->cause);
    }
    rc |= sl__mput(b, ",\"stages\":[");
    for (size_t i = 0; i < s->n_stages; i++) {
        if (i > 0)
            rc |= sl__mput(b, ",");
        rc |= stage_json(s, &s->stages[i], b);
    }
    rc |= sl__mput(b, "]}");
    return rc != 0 ? SL_ENOMEM : 0;
}

/* Write all of data to fd; false on error (errno set). */
static bool write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static int json_line(const sl__run_snapshot *s, sl_buf *b)
{
    int rc = sl__run_snapshot_json(s, b);
    if (rc == 0 && sl_buf_putc(b, '\n') != 0)
        rc = SL_ENOMEM;
    return rc;
}

/*
 * Readers never see a half-written file: the data goes to a temporary
 * file next to path, which then replaces path in one rename.
 */
int sl__file_write_atomic(const char *path, const char *data, size_t len)
{
    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (tmp == NULL)
        return SL_ENOMEM;
    int rc = 0;
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        rc = SL_EIO;
        goto out_free_tmp;
    }
    bool ok = write_all(fileno(f), data, len);
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        errno = saved;
        rc = SL_EIO;
    }
out_free_tmp:
    free(tmp);
    return rc;
}

int sl__run_snapshot_write(const sl__run_snapshot *s, const char *path)
{
    sl_buf b;
    sl_buf_init(&b);
    int rc = json_line(s, &b);
    if (rc == 0)
        rc = sl__file_write_atomic(path, b.data, b.len);
    int saved = errno;
    sl_buf_fini(&b);
    errno = saved;
    return rc;
}

int sl__run_snapshot_append(const sl__run_snapshot *s, const char *path)
{
    sl_buf b;
    sl_buf_init(&b);
    int rc = json_line(s, &b);
    if (rc != 0)
        goto out;
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        rc = SL_EIO;
        goto out;
    }
    /* one write of the whole line: O_APPEND keeps lines whole */
    bool ok = write_all(fileno(f), b.data, b.len);
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        errno = saved;
        rc = SL_EIO;
    }
out:
    sl_buf_fini(&b);
    return rc;
}
