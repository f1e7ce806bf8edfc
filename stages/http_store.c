/*
 * `http` as a store stage (with an input): records are sent as JSON lines
 * (each record's fields, one line each), `batch_size` records per request,
 * by POST (or `method`), and count as stored once the server answers 2xx.
 *
 * Records are held until their batch is acknowledged: a batch goes out
 * when it is full and on every flush (when the input runs dry, and at its
 * end), so nothing waits long in a slow stream. Each batch is one request
 * (one request ID) of up to `attempts` attempts with the same machinery
 * as the fetch: a rate-limit token per attempt, the circuit breaker,
 * the per-attempt timeout, retries on connection failures, timeouts, 5xx
 * and 429 with backoff and jitter or the server's Retry-After (capped at
 * max_backoff). The server must answer 2xx: redirects are not followed,
 * since following one would drop the body.
 *
 * A batch that fails for good goes to on_error:
 *   fail       the run fails with the reason; nothing of the batch is
 *              counted as stored.
 *   retry      the record that completed the batch goes back to the engine,
 *              which retries it after a backoff — sending the batch, still
 *              held, again with it; when those retries run out the run fails.
 *   skip       every record of the batch counts in `errors` and is dropped.
 *   dead_letter  every record of the batch goes to the dead-letter file
 *              with the reason (the held ones through sl_record_reject, the
 *              one in hand through the engine) and counts in `errors`.
 *
 * A cancelled run abandons a request in flight at once. With `workers: N`,
 * each worker sends its own batches and keeps its own breaker; the rate is
 * split between them so that together they keep to it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_common.h"

static const char *const store_methods[] = {"POST", "PUT", "PATCH"};

typedef struct http_store {
    char *url;                  /* option: where batches go */
    int method;                 /* option: index into store_methods */
    sl_strmap headers;          /* option: request headers */
    int64_t batch_size;         /* option: records per request */
    int64_t timeout;            /* option: per attempt, ns; 0 = none */
    sl_strmap retry;            /* option: {attempts, backoff, max_backoff} */
    sl_strmap rate_limit;       /* option: {rate, burst} */
    sl_strmap breaker;          /* option: {failures, cooldown} */
    int on_error;               /* option: SL__HTTP_ON_ERROR_* */

    bool have_conf;             /* conf, policy, multi hold resources */
    bool have_policy;
    bool have_multi;
    sl__http_conf conf;         /* how requests are made */
    sl__http_policy policy;     /* retry, limiter, breaker */
    sl__http_multi multi;       /* runs the requests, cancellably */
    sl__http_req req;           /* the request; its handle is reused */
    sl_ctx *ctx;                /* the run context; borrowed */
    uint64_t seq;               /* requests made, for request IDs */
    uint64_t rng;               /* backoff jitter */
    uint64_t logged_opens;      /* breaker openings already logged */
    sl_buf batch;               /* the held records' JSON lines */
    size_t last_mark;           /* where the last held record's line starts */
    sl_record **held;           /* records in batch, in order; owned */
    size_t n_held;
    size_t cap_held;
    char why[1024];             /* why the last batch failed */
} http_store;

static const sl_option store_options[] = {
    {SL_OPT_STRING, "url", NULL, SL_OPT_REQUIRED, offsetof(http_store, url),
     0, 0, NULL, "http or https URL the batches are sent to"},
    {SL_OPT_ENUM, "method", "POST", 0, offsetof(http_store, method), 0, 0,
     "POST|PUT|PATCH", "request method"},
    {SL_OPT_STRING_MAP, "headers", NULL, 0, offsetof(http_store, headers), 0,
     0, NULL, "request headers (Content-Type defaults to "
     "application/x-ndjson); X-Request-ID is set unless given here"},
    {SL_OPT_INT, "batch_size", "100", 0, offsetof(http_store, batch_size), 1,
     1000000, NULL, "records per request, one JSON line each; a partial "
     "batch is sent whenever the input runs dry"},
    {SL_OPT_DURATION, "timeout", "30s", 0, offsetof(http_store, timeout), 0,
     0, NULL, "limit on each attempt, connecting included; 0 = none"},
    {SL_OPT_STRING_MAP, "retry", NULL, 0, offsetof(http_store, retry), 0, 0,
     NULL, "{attempts, backoff, max_backoff} (default {3, 100ms, 10s}): "
     "connection failures, timeouts, 5xx and 429 are retried with "
     "exponential backoff and jitter; Retry-After of a 429 or 503 is "
     "waited instead, capped at max_backoff"},
    {SL_OPT_STRING_MAP, "rate_limit", NULL, 0,
     offsetof(http_store, rate_limit), 0, 0, NULL,
     "{rate, burst} (burst default 1): requests per second, retries "
     "included; with several workers each takes its share of the rate"},
    {SL_OPT_STRING_MAP, "circuit_breaker", NULL, 0,
     offsetof(http_store, breaker), 0, 0, NULL,
     "{failures, cooldown} (default {5, 30s}): after that many failed "
     "attempts in a row no request is sent for cooldown (batches fail at "
     "once), then one probe decides"},
    {SL_OPT_ENUM, "on_error", "fail", 0, offsetof(http_store, on_error), 0,
     0, SL__HTTP_ON_ERROR_CHOICES,
     "a batch that fails for good: fail ends the run; retry resends it "
     "with the engine's retries; skip drops its records, dead_letter "
     "writes each of them to the dead-letter file with the reason (both "
     "count them in errors)"},
    SL_OPTIONS_END,
};

static bool http_url(const char *u)
{
    return strncasecmp(u, "http://", 7) == 0 ||
           strncasecmp(u, "https://", 8) == 0;
}

static int store_init(void *state, sl_stage_ctx *sc)
{
    http_store *st = state;
    sl_buf_init(&st->batch);
    sl__http_req_init(&st->req);
    st->ctx = sl_stage_context(sc);
    st->rng = (uint64_t)sl_clock_now(sl_clock_real()) ^ (uintptr_t)st;
    if (!http_url(st->url))
        return sl_stage_error(sc, SL_ECONFIG, "url '%s': the http store "
                              "sends to http:// or https:// URLs only",
                              st->url);
    int rc = sl__http_global_init(sc);
    if (rc != 0)
        return rc;
    rc = sl__http_conf_init(&st->conf, sc, store_methods[st->method],
                            &st->headers, "application/x-ndjson", NULL,
                            st->timeout, 0);
    if (rc != 0)
        return rc;
    st->have_conf = true;
    st->conf.only_2xx = true;
    /* Response bodies are not kept beyond a short error text. */
    st->conf.max_body = 1 << 20;
    rc = sl__http_policy_init(&st->policy, sc, &st->retry, &st->rate_limit,
                              &st->breaker, sl_stage_worker_index(sc),
                              sl_stage_worker_count(sc));
    if (rc != 0)
        return rc;
    st->have_policy = true;
    rc = sl__http_multi_init(&st->multi, st->ctx);
    if (rc != 0)
        return sl_stage_error(sc, rc, "cannot make a curl multi handle");
    st->have_multi = true;
    return 0;
}

/* The context's error once it is done, SL_ECANCELED if it has none. */
static int ctx_error(const http_store *st)
{
    int e = sl_ctx_err(st->ctx);
    return e != 0 ? e : SL_ECANCELED;
}

/* Describe why the batch failed in st->why; returns code. */
static int batch_error(http_store *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int batch_error(http_store *st, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof(st->why), fmt, ap);
    va_end(ap);
    return code;
}

/*
 * Send the batch: one request, attempts as the policy allows. Returns 0
 * when the server took it, else the failure's code with the reason
 * (naming method, URL and attempts) in st->why.
 */
static int send_batch(http_store *st, sl_stage_ctx *sc)
{
    const sl__http_policy *pol = &st->policy;
    int max = pol->retry.max_attempts;
    int rc = sl__http_req_begin(&st->req, &st->conf, st->url, ++st->seq);
    if (rc != 0)
        return batch_error(st, rc, "out of memory");
    for (;;) {
        if (pol->limiter != NULL) {
            rc = sl_limiter_wait(pol->limiter, st->ctx, 1);
            if (rc != 0)
                return batch_error(st, rc, "%s %s: stopped while waiting "
                                      "for the rate limit", st->conf.method,
                                      st->url);
        }
        if (pol->breaker != NULL && sl_breaker_allow(pol->breaker) != 0) {
            double in = (double)sl_breaker_retry_in(pol->breaker) / 1e9;
            uint64_t opens = sl_breaker_opens(pol->breaker);
            sl_stage_log(sc, opens != st->logged_opens ? SL_LOG_WARN : SL_LOG_DEBUG,
                         "request %s: %s %s: circuit breaker open, not sent",
                         st->req.id, st->conf.method, st->url);
            st->logged_opens = opens;
            return batch_error(st, SL_EBREAKER, "%s %s: circuit breaker "
                                  "open, batch of %zu records not sent (next "
                                  "probe in %.1fs)", st->conf.method, st->url,
                                  st->n_held, in);
        }
        rc = sl__http_req_prepare(&st->req, st->batch.data, st->batch.len);
        if (rc != 0)
            return batch_error(st, rc, "cannot prepare the request: %s",
                                  sl_strerror(rc));
        CURLcode cc = sl__http_multi_perform(&st->multi, &st->req);
        if (cc == CURLE_ABORTED_BY_CALLBACK && sl_ctx_is_done(st->ctx)) {
            if (pol->breaker != NULL)
                sl_breaker_record(pol->breaker, true);   /* not its fault */
            return batch_error(st, ctx_error(st), "%s %s: cancelled",
                                  st->conf.method, st->url);
        }
        sl__http_outcome o;
        sl__http_judge(&st->req, cc, &o);
        if (pol->breaker != NULL)
            sl_breaker_record(pol->breaker, !o.server_failed);
        sl__http_log(sc, &st->req, &o, max);
        if (o.verdict == SL__HTTP_OK)
            return 0;
        if (o.verdict != SL__HTTP_RETRY || st->req.attempt >= max) {
            char msg[1024];
            sl__http_describe(&st->req, &o, max, msg, sizeof(msg));
            return batch_error(st, o.code, "%s, batch of %zu records", msg,
                                  st->n_held);
        }
        int64_t delay = sl__http_retry_delay(pol, st->req.attempt,
                                             o.retry_after_ns, &st->rng);
        sl_stage_count_retry(sc);
        rc = sl_clock_sleep(sl_stage_clock(sc), st->ctx, delay);
        if (rc != 0)
            return batch_error(st, rc, "%s %s: cancelled while waiting to "
                                  "retry", st->conf.method, st->url);
    }
}

/* Forget the batch's bytes from mark on. */
static void truncate_batch(http_store *st, size_t mark)
{
    st->batch.len = mark;
    if (st->batch.data != NULL)
        st->batch.data[mark] = '\0';
}

/*
 * Send what is held. current is the record process() just added (the last
 * one held), or NULL from flush(). On failure current, if any, goes back
 * to the engine (its line removed) with the failure's code; the others
 * meet on_error here: under skip and dead_letter each is handed to the
 * engine with sl_record_reject and the reason, under fail and retry they
 * stay held (fail ends the run; retry sends them again with current).
 * Returns 0, or the code when the engine has something to do (current, or
 * a fatal failure).
 */
static int commit(http_store *st, sl_stage_ctx *sc, sl_record *current)
{
    int rc = send_batch(st, sc);
    if (rc != 0)
        sl_stage_error(sc, rc, "%s", st->why);
    if (rc == 0) {
        sl_stage_count_stored(sc, st->n_held, st->batch.len);
        for (size_t i = 0; i < st->n_held; i++)
            sl_record_free(st->held[i]);
        st->n_held = 0;
        sl_buf_reset(&st->batch);
        return 0;
    }
    if (current != NULL) {
        st->n_held--;                 /* current is the last one held */
        truncate_batch(st, st->last_mark);
    }
    if (sl_ctx_is_done(st->ctx))
        return rc;
    if (st->on_error != SL__HTTP_ON_ERROR_SKIP &&
        st->on_error != SL__HTTP_ON_ERROR_DEAD_LETTER)
        return rc;                    /* fail, or retry through the engine */
    const char *reason = st->why;
    size_t n = st->n_held;
    st->n_held = 0;
    sl_buf_reset(&st->batch);
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        int rrc = sl_record_reject(sc, st->held[i], rc, "%s", reason);
        if (rrc != 0 && first == 0)
            first = rrc;
    }
    if (first != 0)
        return first;                 /* the dead-letter file failed */
    /* The stage error is current's reason (the engine's dead letter). */
    if (current != NULL)
        return sl_stage_error(sc, rc, "%s", reason);
    return 0;
}

static int store_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    http_store *st = state;
    size_t mark = st->batch.len;
    if (st->n_held == st->cap_held) {
        size_t nc = st->cap_held ? st->cap_held * 2 : 64;
        sl_record **nh = realloc(st->held, nc * sizeof(*nh));
        if (nh == NULL)
            return sl_stage_error(sc, SL_ENOMEM, "out of memory");
        st->held = nh;
        st->cap_held = nc;
    }
    if (sl_json_dump(sl_record_fields(rec), &st->batch) != 0 ||
        sl_buf_putc(&st->batch, '\n') != 0) {
        truncate_batch(st, mark);
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    }
    st->last_mark = mark;
    st->held[st->n_held++] = rec;
    if ((int64_t)st->n_held < st->batch_size)
        return 0;
    return commit(st, sc, rec);
}

static int store_flush(void *state, sl_stage_ctx *sc)
{
    http_store *st = state;
    if (st->n_held == 0)
        return 0;
    return commit(st, sc, NULL);
}

static void store_destroy(void *state)
{
    http_store *st = state;
    for (size_t i = 0; i < st->n_held; i++)
        sl_record_free(st->held[i]);
    free(st->held);
    st->held = NULL;
    st->n_held = 0;
    sl_buf_fini(&st->batch);
    sl__http_req_fini(&st->req);
    if (st->have_multi)
        sl__http_multi_fini(&st->multi);
    if (st->have_policy)
        sl__http_policy_fini(&st->policy);
    if (st->have_conf)
        sl__http_conf_fini(&st->conf);
    st->have_multi = st->have_policy = st->have_conf = false;
}

const sl_stage_desc sl_stage_http_store = {
    SL_STAGE_DESC_HEADER,
    .name = "http",
    .kind = SL_STAGE_SINK,
    .summary = "send records as JSON lines in batches by POST, with retries, "
               "rate limit and circuit breaker",
    .options = store_options,
    .state_size = sizeof(http_store),
    .init = store_init,
    .process = store_process,
    .flush = store_flush,
    .destroy = store_destroy,
};
