/*
 * Requests for the `http` stages: libcurl's global set-up, the stage-wide
 * request settings, easy handles prepared per attempt, the verdict on an
 * attempt (keep, retry, give up), log lines with request IDs, and a multi
 * handle whose waits end the moment a context is cancelled.
 *
 * Every transfer runs on a multi handle, even a lone one: curl_multi_poll
 * can be interrupted from another thread (curl_multi_wakeup, called by a
 * context waiter), so a cancelled run abandons a transfer to a server that
 * never answers at once instead of at its timeout.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http_common.h"

/* ------------------------------------------------------------------ */
/* Global set-up                                                       */
/* ------------------------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;   /* written once under global_once */

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int sl__http_global_init(sl_stage_ctx *sc)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return sl_stage_error(sc, SL_EINTERNAL, "cannot initialise libcurl: %s",
                              curl_easy_strerror(global_rc));
    return 0;
}

static int64_t real_now(void)
{
    return sl_clock_now(sl_clock_real());
}

/* ------------------------------------------------------------------ */
/* Durations in messages                                               */
/* ------------------------------------------------------------------ */

/* "250ms", "2s", "1.5s", "2m30s", "1h" — enough for timeouts and waits. */
static void format_duration(int64_t ns, char *buf, size_t size)
{
    if (ns < SL_NS_PER_MS) {
        snprintf(buf, size, "%" PRId64 "us", ns / SL_NS_PER_US);
    } else if (ns < SL_NS_PER_S) {
        snprintf(buf, size, "%" PRId64 "ms", (ns + SL_NS_PER_MS / 2) / SL_NS_PER_MS);
    } else if (ns < 60 * SL_NS_PER_S) {
        int64_t ms = (ns + SL_NS_PER_MS / 2) / SL_NS_PER_MS;
        if (ms % 1000 == 0)
            snprintf(buf, size, "%" PRId64 "s", ms / 1000);
        else
            snprintf(buf, size, "%.3gs", (double)ms / 1000.0);
    } else {
        int64_t s = (ns + SL_NS_PER_S / 2) / SL_NS_PER_S;
        if (s >= 3600 && s % 3600 == 0)
            snprintf(buf, size, "%" PRId64 "h", s / 3600);
        else if (s % 60 == 0)
            snprintf(buf, size, "%" PRId64 "m", s / 60);
        else
            snprintf(buf, size, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    }
}

/* ------------------------------------------------------------------ */
/* Stage-wide request settings                                         */
/* ------------------------------------------------------------------ */

static bool header_name_ok(const char *k)
{
    if (*k == '\0')
        return false;
    for (const char *p = k; *p != '\0'; p++)
        if (*p == ':' || *p == '\r' || *p == '\n' || *p == ' ' || *p == '\t')
            return false;
    return true;
}

static bool header_value_ok(const char *v)
{
    return strpbrk(v, "\r\n") == NULL;
}

/* Append "name: value" to *list. false on out of memory. */
static bool add_header(struct curl_slist **list, const char *name,
                       const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (line == NULL)
        return false;
    if (*value == '\0')
        snprintf(line, n, "%s;", name);   /* curl's way to send it empty */
    else
        snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *nl = curl_slist_append(*list, line);
    free(line);
    if (nl == NULL)
        return false;
    *list = nl;
    return true;
}

/* A short random hex prefix, different per stage worker and per run. */
static void make_id_prefix(char *buf, size_t size)
{
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                 ((uint64_t)getpid() << 16) ^
                 (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15u);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    snprintf(buf, size, "%08" PRIx32, (uint32_t)x);
}

int sl__http_conf_init(sl__http_conf *c, sl_stage_ctx *sc, const char *method,
                       const sl_strmap *headers, const char *default_type,
                       const char *body, int64_t timeout_ns, int64_t max_body)
{
    memset(c, 0, sizeof(*c));
    c->method = method;
    c->body = body;
    c->body_len = body != NULL ? strlen(body) : 0;
    c->timeout_ns = timeout_ns;
    c->max_body = max_body;
    make_id_prefix(c->id_prefix, sizeof(c->id_prefix));

    bool has_type = false;
    for (size_t i = 0; headers != NULL && i < headers->n; i++) {
        const char *k = headers->keys[i], *v = headers->values[i];
        if (!header_name_ok(k)) {
            sl__http_conf_fini(c);
            return sl_stage_error(sc, SL_ECONFIG, "headers: '%s' is not a "
                                  "header name", k);
        }
        if (!header_value_ok(v)) {
            sl__http_conf_fini(c);
            return sl_stage_error(sc, SL_ECONFIG, "headers: the value of '%s' "
                                  "must not contain a line break", k);
        }
        if (strcasecmp(k, "X-Request-ID") == 0)
            c->has_request_id = true;
        if (strcasecmp(k, "Content-Type") == 0)
            has_type = true;
        if (!add_header(&c->headers, k, v))
            goto out_nomem;
    }
    if (default_type != NULL && !has_type &&
        !add_header(&c->headers, "Content-Type", default_type))
        goto out_nomem;
    /* No "Expect: 100-continue" round trip before large bodies. */
    struct curl_slist *nl = curl_slist_append(c->headers, "Expect:");
    if (nl == NULL)
        goto out_nomem;
    c->headers = nl;
    return 0;

out_nomem:
    sl__http_conf_fini(c);
    return sl_stage_error(sc, SL_ENOMEM, "out of memory");
}

void sl__http_conf_fini(sl__http_conf *c)
{
    curl_slist_free_all(c->headers);
    c->headers = NULL;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

void sl__http_req_init(sl__http_req *r)
{
    memset(r, 0, sizeof(*r));
    sl_buf_init(&r->body);
}

void sl__http_req_fini(sl__http_req *r)
{
    if (r->easy != NULL)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->url);
    sl_buf_fini(&r->body);
    r->easy = NULL;
    r->headers = NULL;
    r->url = NULL;
}

int sl__http_req_begin(sl__http_req *r, const sl__http_conf *c,
                       const char *url, uint64_t seq)
{
    char *u = strdup(url);
    if (u == NULL)
        return SL_ENOMEM;
    free(r->url);
    r->url = u;
    r->conf = c;
    r->attempt = 0;
    r->too_big = false;
    sl_buf_reset(&r->body);
    snprintf(r->id, sizeof(r->id), "%s-%" PRIu64, c->id_prefix, seq);

    curl_slist_free_all(r->headers);
    r->headers = NULL;
    for (const struct curl_slist *h = c->headers; h != NULL; h = h->next) {
        struct curl_slist *nl = curl_slist_append(r->headers, h->data);
        if (nl == NULL)
            return SL_ENOMEM;
        r->headers = nl;
    }
    if (!c->has_request_id && !add_header(&r->headers, "X-Request-ID", r->id))
        return SL_ENOMEM;
    return 0;
}

/* curl's write callback: keep the body, up to max_body. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    sl__http_req *r = arg;
    size_t n = size * nmemb;
    if (r->conf->max_body > 0 &&
        r->body.len + n > (uint64_t)r->conf->max_body) {
        r->too_big = true;
        return 0;   /* CURLE_WRITE_ERROR ends the transfer */
    }
    if (sl_buf_append(&r->body, data, n) != 0)
        return 0;
    return n;
}

int sl__http_req_prepare(sl__http_req *r, const char *data, size_t len)
{
    const sl__http_conf *c = r->conf;
    if (r->easy == NULL) {
        r->easy = curl_easy_init();
        if (r->easy == NULL)
            return SL_ENOMEM;
    } else {
        curl_easy_reset(r->easy);
    }
    sl_buf_reset(&r->body);
    r->too_big = false;
    r->errbuf[0] = '\0';
    r->attempt++;
    if (data == NULL) {
        data = c->body;
        len = c->body_len;
    }

    CURL *e = r->easy;
    CURLcode cc = CURLE_OK;
#define SET(opt, val) do { if (cc == CURLE_OK) cc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (!c->only_2xx) {
        SET(CURLOPT_FOLLOWLOCATION, 1L);
        SET(CURLOPT_MAXREDIRS, 10L);
    }
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_USERAGENT, "sluice");
    SET(CURLOPT_HTTPHEADER, r->headers);
    if (c->timeout_ns > 0) {
        long ms = (long)((c->timeout_ns + SL_NS_PER_MS - 1) / SL_NS_PER_MS);
        SET(CURLOPT_TIMEOUT_MS, ms);
    }
    if (strcmp(c->method, "GET") == 0 && data == NULL) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(c->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(c->method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, c->method);
        if (data != NULL || strcmp(c->method, "POST") == 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(data != NULL ? len : 0));
            SET(CURLOPT_POSTFIELDS, data != NULL ? data : "");
        }
    }
#undef SET
    r->started_ns = real_now();
    return cc == CURLE_OK ? 0 : SL_EINTERNAL;
}

/* Transport failures worth another attempt: the server or the network may
 * do better next time. */
static bool transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP3:
        return true;
    default:
        return false;
    }
}

void sl__http_judge(const sl__http_req *r, CURLcode cc, sl__http_outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->elapsed_ns = real_now() - r->started_ns;
    long status = 0;
    if (r->easy != NULL)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    o->status = status;

    if (cc == CURLE_OK) {
        if (status < (r->conf->only_2xx ? 300 : 400)) {
            o->verdict = SL__HTTP_OK;
            return;
        }
        o->code = SL_EHTTP;
        snprintf(o->what, sizeof(o->what), "HTTP %ld", status);
        if (status == 429 || status >= 500) {
            o->verdict = SL__HTTP_RETRY;
            o->server_failed = true;
            if (status == 429 || status == 503) {
                curl_off_t secs = 0;
                if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &secs) ==
                        CURLE_OK && secs > 0) {
                    if (secs > INT64_MAX / SL_NS_PER_S)
                        secs = INT64_MAX / SL_NS_PER_S;
                    o->retry_after_ns = (int64_t)secs * SL_NS_PER_S;
                }
            }
        } else {
            o->verdict = SL__HTTP_FAIL;
        }
        return;
    }

    if (r->too_big) {
        o->verdict = SL__HTTP_FAIL;
        o->code = SL_ELIMIT;
        snprintf(o->what, sizeof(o->what),
                 "response larger than max_body (%" PRId64 " bytes)",
                 r->conf->max_body);
        return;
    }
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        char d[32];
        format_duration(r->conf->timeout_ns, d, sizeof(d));
        o->verdict = SL__HTTP_RETRY;
        o->server_failed = true;
        o->code = SL_ETIMEDOUT;
        snprintf(o->what, sizeof(o->what), "timed out after %s", d);
        return;
    }
    /* curl's detail names the host, port or file; its generic text is the
     * fallback. */
    snprintf(o->what, sizeof(o->what), "%s",
             r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(cc));
    if (transient(cc)) {
        o->verdict = SL__HTTP_RETRY;
        o->server_failed = true;
        o->code = SL_EIO;
        return;
    }
    o->verdict = SL__HTTP_FAIL;
    switch (cc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        o->code = SL_EINVAL;
        break;
    case CURLE_FILE_COULDNT_READ_FILE:
        o->code = SL_ENOTFOUND;
        break;
    case CURLE_OUT_OF_MEMORY:
        o->code = SL_ENOMEM;
        break;
    default:
        o->code = SL_EIO;
        break;
    }
}

void sl__http_describe(const sl__http_req *r, const sl__http_outcome *o,
                       int max_attempts, char *buf, size_t size)
{
    snprintf(buf, size, "%s %s: %s (attempt %d of %d)", r->conf->method,
             r->url, o->what, r->attempt, max_attempts);
}

void sl__http_log(const sl_stage_ctx *sc, const sl__http_req *r,
                  const sl__http_outcome *o, int max_attempts)
{
    double ms = (double)o->elapsed_ns / 1e6;
    if (o->verdict == SL__HTTP_OK) {
        sl_stage_log(sc, SL_LOG_DEBUG,
                     "request %s: %s %s -> %ld, %zu bytes in %.1fms "
                     "(attempt %d of %d)", r->id, r->conf->method, r->url,
                     o->status, r->body.len, ms, r->attempt, max_attempts);
        return;
    }
    bool again = o->verdict == SL__HTTP_RETRY && r->attempt < max_attempts;
    sl_stage_log(sc, SL_LOG_WARN,
                 "request %s: %s %s -> %s in %.1fms (attempt %d of %d)%s",
                 r->id, r->conf->method, r->url, o->what, ms, r->attempt,
                 max_attempts, again ? ", will retry" : "");
}

/* ------------------------------------------------------------------ */
/* A multi handle that a context wakes                                 */
/* ------------------------------------------------------------------ */

/* The context's waiter: runs on the cancelling thread; only writes to
 * curl's wakeup pipe. */
static void multi_wake(sl_ctx_waiter *w)
{
    sl__http_multi *m = w->arg;
    curl_multi_wakeup(m->multi);
}

int sl__http_multi_init(sl__http_multi *m, sl_ctx *ctx)
{
    memset(m, 0, sizeof(*m));
    m->multi = curl_multi_init();
    if (m->multi == NULL)
        return SL_ENOMEM;
    m->ctx = ctx;
    m->waiter.wake = multi_wake;
    m->waiter.arg = m;
    m->waiting = ctx != NULL && sl_ctx_add_waiter(ctx, &m->waiter);
    return 0;
}

void sl__http_multi_fini(sl__http_multi *m)
{
    if (m->waiting)
        sl_ctx_remove_waiter(m->ctx, &m->waiter);
    m->waiting = false;
    if (m->multi != NULL)
        curl_multi_cleanup(m->multi);
    m->multi = NULL;
}

void sl__http_multi_wake(sl__http_multi *m)
{
    curl_multi_wakeup(m->multi);
}

CURLcode sl__http_multi_perform(sl__http_multi *m, sl__http_req *r)
{
    if (m->ctx != NULL && sl_ctx_is_done(m->ctx))
        return CURLE_ABORTED_BY_CALLBACK;
    if (curl_multi_add_handle(m->multi, r->easy) != CURLM_OK)
        return CURLE_FAILED_INIT;
    CURLcode result = CURLE_ABORTED_BY_CALLBACK;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(m->multi, &running) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
        bool done = false;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == r->easy) {
                result = msg->data.result;
                done = true;
            }
        }
        if (done)
            break;
        if (m->ctx != NULL && sl_ctx_is_done(m->ctx))
            break;
        /* Returns on activity, on curl's own timers, or on a wakeup. */
        curl_multi_poll(m->multi, NULL, 0, 1000, NULL);
    }
    curl_multi_remove_handle(m->multi, r->easy);
    return result;
}
