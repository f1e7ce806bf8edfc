/*
 * The test HTTP server (see http_server.h). Every shared field is guarded
 * by one mutex; the condition variable announces hits and the stop.
 */
#include "support/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct hs_hit {
    int64_t t_ns;             /* arrival, CLOCK_MONOTONIC */
    char *path;               /* owned */
    char *request_id;         /* owned; "" if none */
} hs_hit;

typedef struct hs_path {
    char *path;               /* owned */
    uint64_t hits;            /* requests on this path */
} hs_path;

typedef struct hs_body {
    char *data;               /* owned, NUL-terminated */
    size_t len;
    int status;               /* answered with; 0 = connection closed */
} hs_body;

struct http_server {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cond;      /* hits arrived, or stopping */
    bool stopping;            /* guarded by mu */
    uint64_t hits;            /* guarded by mu */
    size_t active;            /* guarded by mu: requests being answered */
    size_t max_active;        /* guarded by mu */
    hs_hit *hit;              /* guarded by mu */
    size_t n_hit, cap_hit;
    hs_path *paths;           /* guarded by mu */
    size_t n_paths, cap_paths;
    hs_body *bodies;          /* guarded by mu */
    size_t n_bodies, cap_bodies;
};

/* One request in progress. */
typedef struct hs_req {
    uint64_t path_hit;        /* this request's number on its path, from 1 */
    char *body;               /* upload so far */
    size_t len, cap;
} hs_req;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return p;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *np = realloc(p, ncap * elem);
    if (np == NULL) {
        fprintf(stderr, "http_server: out of memory\n");
        abort();
    }
    *cap = ncap;
    return np;
}

static char *dup_str(const char *s)
{
    char *d = strdup(s != NULL ? s : "");
    if (d == NULL) {
        fprintf(stderr, "http_server: out of memory\n");
        abort();
    }
    return d;
}

/* Count a hit on path; returns its number on the path. Lock held. */
static uint64_t count_hit(http_server *s, const char *path, const char *rid)
{
    s->hit = grow(s->hit, &s->cap_hit, s->n_hit, sizeof(*s->hit));
    s->hit[s->n_hit].t_ns = mono_ns();
    s->hit[s->n_hit].path = dup_str(path);
    s->hit[s->n_hit].request_id = dup_str(rid);
    s->n_hit++;
    s->hits++;
    for (size_t i = 0; i < s->n_paths; i++)
        if (strcmp(s->paths[i].path, path) == 0)
            return ++s->paths[i].hits;
    s->paths = grow(s->paths, &s->cap_paths, s->n_paths, sizeof(*s->paths));
    s->paths[s->n_paths].path = dup_str(path);
    s->paths[s->n_paths].hits = 1;
    s->n_paths++;
    return 1;
}

static long arg_long(struct MHD_Connection *c, const char *key, long dflt)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    if (v == NULL || *v == '\0')
        return dflt;
    return strtol(v, NULL, 10);
}

/* Wait until deadline (CLOCK_MONOTONIC ns; INT64_MAX: forever) or the
 * stop. Returns true when stopping. */
static bool wait_until(http_server *s, int64_t deadline)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        if (deadline == INT64_MAX) {
            pthread_cond_wait(&s->cond, &s->mu);
            continue;
        }
        if (mono_ns() >= deadline)
            break;
        struct timespec ts = {(time_t)(deadline / 1000000000),
                              (long)(deadline % 1000000000)};
        pthread_cond_timedwait(&s->cond, &s->mu, &ts);
    }
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return stopping;
}

static void keep_body(http_server *s, hs_req *r, const char *method,
                      int status)
{
    if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0 &&
        strcmp(method, "PATCH") != 0)
        return;
    pthread_mutex_lock(&s->mu);
    s->bodies = grow(s->bodies, &s->cap_bodies, s->n_bodies,
                     sizeof(*s->bodies));
    hs_body *b = &s->bodies[s->n_bodies++];
    b->data = malloc(r->len + 1);
    if (b->data == NULL)
        abort();
    if (r->len > 0)
        memcpy(b->data, r->body, r->len);
    b->data[r->len] = '\0';
    b->len = r->len;
    b->status = status;
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result answer(struct MHD_Connection *c, int status,
                              const char *body, size_t len,
                              const char *retry_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body,
                                        MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (retry_after != NULL)
        MHD_add_response_header(resp, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    http_server *s = cls;
    (void)version;
    hs_req *r = *con_cls;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                      "X-Request-ID");
        pthread_mutex_lock(&s->mu);
        r->path_hit = count_hit(s, url, rid);
        s->active++;
        if (s->active > s->max_active)
            s->max_active = s->active;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        if (r->len + n + 1 > r->cap) {
            size_t ncap = (r->len + n + 1) * 2;
            char *nb = realloc(r->body, ncap);
            if (nb == NULL)
                return MHD_NO;
            r->body = nb;
            r->cap = ncap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        *upload_size = 0;
        return MHD_YES;
    }

    long delay = arg_long(c, "delay_ms", 0);
    if (arg_long(c, "hang", 0) != 0) {
        wait_until(s, INT64_MAX);
        keep_body(s, r, method, 0);
        return MHD_NO;
    }
    if (delay > 0 && wait_until(s, mono_ns() + delay * 1000000)) {
        keep_body(s, r, method, 0);
        return MHD_NO;
    }
    if ((long)r->path_hit <= arg_long(c, "reset", 0)) {
        keep_body(s, r, method, 0);
        return MHD_NO;
    }
    if ((long)r->path_hit <= arg_long(c, "fail", 0)) {
        int st = (int)arg_long(c, "fail_status", 500);
        keep_body(s, r, method, st);
        const char *ra = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                     "retry_after");
        return answer(c, st, "{\"error\":\"failing on purpose\"}", 31, ra);
    }
    int st = (int)arg_long(c, "status", 200);
    keep_body(s, r, method, st);
    long size = arg_long(c, "size", -1);
    if (size >= 0) {
        char *big = malloc((size_t)size + 1);
        if (big == NULL)
            return MHD_NO;
        memset(big, 'x', (size_t)size);
        enum MHD_Result ret = answer(c, st, big, (size_t)size, NULL);
        free(big);
        return ret;
    }
    char text[600];
    int n = snprintf(text, sizeof(text), "{\"path\":\"%.500s\",\"hit\":%llu}",
                     url, (unsigned long long)r->path_hit);
    return answer(c, st, text, (size_t)n, NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    (void)c;
    (void)toe;
    hs_req *r = *con_cls;
    if (r == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->active--;
    pthread_mutex_unlock(&s->mu);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

int http_server_start(http_server **out)
{
    http_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
            MHD_USE_ITC,
        0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (s->daemon == NULL) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? (int)info->port : 0;
    *out = s;
    return 0;
}

void http_server_stop(http_server *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->daemon);
    for (size_t i = 0; i < s->n_hit; i++) {
        free(s->hit[i].path);
        free(s->hit[i].request_id);
    }
    free(s->hit);
    for (size_t i = 0; i < s->n_paths; i++)
        free(s->paths[i].path);
    free(s->paths);
    for (size_t i = 0; i < s->n_bodies; i++)
        free(s->bodies[i].data);
    free(s->bodies);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int http_server_port(const http_server *s)
{
    return s->port;
}

const char *http_server_url(const http_server *s, char *buf, size_t size,
                            const char *path_fmt, ...)
{
    int n = snprintf(buf, size, "http://127.0.0.1:%d", s->port);
    if (n < 0 || (size_t)n >= size)
        return buf;
    va_list ap;
    va_start(ap, path_fmt);
    vsnprintf(buf + n, size - (size_t)n, path_fmt, ap);
    va_end(ap);
    return buf;
}

uint64_t http_server_hits(http_server *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint64_t http_server_path_hits(http_server *s, const char *path)
{
    uint64_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_paths; i++)
        if (strcmp(s->paths[i].path, path) == 0)
            n = s->paths[i].hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int http_server_wait_hits(http_server *s, uint64_t n, int timeout_ms)
{
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (s->hits < n) {
        if (mono_ns() >= deadline) {
            rc = -1;
            break;
        }
        struct timespec ts = {(time_t)(deadline / 1000000000),
                              (long)(deadline % 1000000000)};
        pthread_cond_timedwait(&s->cond, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

size_t http_server_max_concurrent(http_server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->max_active;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int64_t http_server_hit_time(http_server *s, size_t i)
{
    int64_t t = -1;
    pthread_mutex_lock(&s->mu);
    if (i < s->n_hit)
        t = s->hit[i].t_ns;
    pthread_mutex_unlock(&s->mu);
    return t;
}

static const char *hit_field(http_server *s, size_t i, bool rid, char *buf,
                             size_t size)
{
    buf[0] = '\0';
    pthread_mutex_lock(&s->mu);
    if (i < s->n_hit)
        snprintf(buf, size, "%s", rid ? s->hit[i].request_id : s->hit[i].path);
    pthread_mutex_unlock(&s->mu);
    return buf;
}

const char *http_server_hit_path(http_server *s, size_t i, char *buf,
                                 size_t size)
{
    return hit_field(s, i, false, buf, size);
}

const char *http_server_hit_request_id(http_server *s, size_t i, char *buf,
                                       size_t size)
{
    return hit_field(s, i, true, buf, size);
}

size_t http_server_bodies(http_server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_bodies;
    pthread_mutex_unlock(&s->mu);
    return n;
}

char *http_server_body(http_server *s, size_t i, size_t *len, int *status)
{
    char *copy = NULL;
    pthread_mutex_lock(&s->mu);
    if (i < s->n_bodies) {
        copy = malloc(s->bodies[i].len + 1);
        if (copy != NULL) {
            memcpy(copy, s->bodies[i].data, s->bodies[i].len + 1);
            if (len != NULL)
                *len = s->bodies[i].len;
            if (status != NULL)
                *status = s->bodies[i].status;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return copy;
}
