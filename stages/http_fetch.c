/*
 * `http` as a fetch stage (no input): one record per URL, in URL order,
 * with up to `workers` requests in flight.
 *
 * Three threads share the work:
 *
 *   fetcher   runs every transfer on one curl multi handle. For each URL,
 *             in order, it makes a one-item channel (the URL's "future"),
 *             sends it to `subs`, and later puts the URL's result in it —
 *             whenever its transfer, retries included, ends.
 *   bridge    (sl_bridge) flattens `subs` into `out`: the results come out
 *             in URL order whatever order the transfers finish in.
 *   worker    the stage's own thread, in run(): receives results from
 *             `out`, counts them and emits the records.
 *
 * Emitting is on its own thread so that backpressure never stalls a
 * transfer in flight: while the output is full, transfers finish into
 * their channels; only starting new URLs waits. The fetcher runs at most
 * `window` (4 x workers) URLs ahead of the last one the bridge has passed
 * on, so memory stays bounded by window response bodies.
 *
 * Each URL is one request (one request ID) of one or more attempts. An
 * attempt waits for a rate-limit token (shared by all transfers), asks the
 * circuit breaker, then runs with the per-attempt timeout. A failed
 * attempt that is worth retrying (connection failure, timeout, 5xx, 429)
 * waits the backoff — or the server's Retry-After on 429/503, capped at
 * max_backoff — and tries again, up to `attempts`. A URL that fails for
 * good, or that the open breaker refuses, becomes an error: `on_error:
 * fail` (and `retry`, once the retries are spent) ends the run with a
 * message naming the URL; `skip` counts it in `errors` and goes on;
 * `dead_letter` also writes a record {"url": URL} (positioned at the URL)
 * with the reason to the dead-letter file.
 *
 * Waits happen on the stage clock: with the real clock, curl_multi_poll
 * waits for transfers and timers at once; with a test clock, time only
 * moves through its sleep, which is used whenever nothing is in flight.
 *
 * Cancellation (a failed or forced-stopped run) and a stop request both
 * cancel the fetch context: its waiter wakes curl_multi_poll, and every
 * transfer in flight is abandoned at once.
 *
 * The stage declares `workers`, so the engine runs one worker thread and
 * leaves the concurrency to the stage: N transfers in flight, one output
 * in URL order.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/patterns.h"

#include "http_common.h"

#define FETCH_WINDOW_PER_WORKER 4   /* URLs ahead of the output, per worker */
#define FETCH_OUT_CAPACITY 16       /* results between the bridge and run() */
#define FETCH_IDLE_WAIT_MS 60000    /* longest single poll; wakeups end it */

static const char *const fetch_methods[] = {"GET", "POST", "PUT", "PATCH",
                                            "DELETE", "HEAD"};

typedef struct http_fetch {
    char *url;                  /* option: one URL template, or NULL */
    sl_strlist urls;            /* option: URL templates */
    int method;                 /* option: index into fetch_methods */
    sl_strmap headers;          /* option: request headers */
    char *body;                 /* option: request body, or NULL */
    int64_t timeout;            /* option: per attempt, ns; 0 = none */
    int64_t workers;            /* option: requests in flight */
    sl_strmap retry;            /* option: {attempts, backoff, max_backoff} */
    sl_strmap rate_limit;       /* option: {rate, burst} */
    sl_strmap breaker;          /* option: {failures, cooldown} */
    int on_error;               /* option: SL__HTTP_ON_ERROR_* */
    int64_t max_body;           /* option: bytes; 0 = no limit */

    bool have_set;              /* set, conf, policy hold resources */
    bool have_conf;
    bool have_policy;
    sl__url_set set;            /* the URLs */
    sl__http_conf conf;         /* how requests are made */
    sl__http_policy policy;     /* retry, limiter, breaker */
} http_fetch;

static const sl_option fetch_options[] = {
    {SL_OPT_STRING, "url", NULL, 0, offsetof(http_fetch, url), 0, 0, NULL,
     "the URL to fetch (http, https or file); {1..N} ranges expand, e.g. "
     "https://api.example.com/page/{1..20}; file:// paths not starting "
     "with / are relative to the working directory"},
    {SL_OPT_STRING_LIST, "urls", NULL, 0, offsetof(http_fetch, urls), 0, 0,
     NULL, "several URLs, fetched and emitted in this order (ranges expand)"},
    {SL_OPT_ENUM, "method", "GET", 0, offsetof(http_fetch, method), 0, 0,
     "GET|POST|PUT|PATCH|DELETE|HEAD", "request method"},
    {SL_OPT_STRING_MAP, "headers", NULL, 0, offsetof(http_fetch, headers), 0,
     0, NULL, "request headers, e.g. {Accept: application/json}; "
     "X-Request-ID is set to the request ID unless given here"},
    {SL_OPT_STRING, "body", NULL, 0, offsetof(http_fetch, body), 0, 0, NULL,
     "request body sent with every request"},
    {SL_OPT_DURATION, "timeout", "30s", 0, offsetof(http_fetch, timeout), 0,
     0, NULL, "limit on each attempt, connecting included; 0 = none"},
    {SL_OPT_INT, "workers", "1", 0, offsetof(http_fetch, workers), 1, 256,
     NULL, "requests in flight at once; records still come out in URL order"},
    {SL_OPT_STRING_MAP, "retry", NULL, 0, offsetof(http_fetch, retry), 0, 0,
     NULL, "{attempts, backoff, max_backoff} (default {3, 100ms, 10s}): "
     "connection failures, timeouts, 5xx and 429 are retried with "
     "exponential backoff and jitter; Retry-After of a 429 or 503 is "
     "waited instead, capped at max_backoff"},
    {SL_OPT_STRING_MAP, "rate_limit", NULL, 0,
     offsetof(http_fetch, rate_limit), 0, 0, NULL,
     "{rate, burst} (burst default 1): requests, retries included, share "
     "one token bucket"},
    {SL_OPT_STRING_MAP, "circuit_breaker", NULL, 0,
     offsetof(http_fetch, breaker), 0, 0, NULL,
     "{failures, cooldown} (default {5, 30s}): after that many failed "
     "attempts in a row no request is sent for cooldown (URLs fail at "
     "once), then one probe decides"},
    {SL_OPT_ENUM, "on_error", "fail", 0, offsetof(http_fetch, on_error), 0,
     0, SL__HTTP_ON_ERROR_CHOICES,
     "a URL that fails for good: fail (and retry, once the stage's own "
     "retries are spent) ends the run naming the URL; skip counts it in "
     "errors and goes on; dead_letter also writes {\"url\": URL} with the "
     "reason to the dead-letter file"},
    {SL_OPT_SIZE, "max_body", "64MiB", 0, offsetof(http_fetch, max_body), 0,
     0, NULL, "largest response body accepted; 0 = no limit"},
    SL_OPTIONS_END,
};

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

/* What one URL came to, carried from the fetcher to run() in URL order. */
typedef struct fetch_result {
    sl_record *rec;             /* the response, or NULL if the URL failed */
    int code;                   /* failure: SL_E* */
    char *msg;                  /* failure: "GET url: ... (attempt n of m)" */
    char *url;                  /* failure: the URL */
    int64_t k;                  /* failure: its number, from 0 */
    uint32_t retries;           /* retries made for this URL */
    uint64_t bytes;             /* body bytes received */
} fetch_result;

static void result_free(void *p)
{
    fetch_result *res = p;
    if (res == NULL)
        return;
    sl_record_free(res->rec);
    free(res->msg);
    free(res->url);
    free(res);
}

/* ------------------------------------------------------------------ */
/* State shared by run(), the fetcher and the bridge                   */
/* ------------------------------------------------------------------ */

typedef struct fetch_slot {
    sl_chan *sub;               /* URL's result channel; owned */
    bool finished;              /* its result is in and it is closed */
} fetch_slot;

typedef struct fetch_run {
    http_fetch *f;              /* options, URLs, policy: read-only */
    const sl_stage_ctx *sc;     /* for log lines only (any thread) */
    const char *name;           /* stage name, for record positions */
    const sl_clock *clock;      /* the stage clock */
    sl_ctx *ctx;                /* the fetch's context; owned by run() */
    sl__http_multi multi;       /* used by the fetcher; woken by anyone */
    sl_chan *subs;              /* per-URL channels in URL order */
    sl_chan *out;               /* results in URL order */
    fetch_slot *ring;           /* ring[k % window]: fetcher only */
    int64_t window;             /* URLs ahead of the bridge, at most */
    _Atomic int64_t released;   /* atomic: sub-channels the bridge is done with
                                   (counted from first) */
    int64_t first;              /* first URL index to fetch (resume) */
    uint64_t rng;               /* backoff jitter: fetcher only */
    uint64_t logged_opens;      /* breaker openings already logged: fetcher only */
    int fatal_code;             /* fetcher's own failure; read after join */
    char fatal_msg[256];        /* its message */
} fetch_run;

/* The bridge is done with a sub-channel: room for one more URL. */
static void on_release(sl_chan *sub, void *arg)
{
    fetch_run *fr = arg;
    (void)sub;
    atomic_fetch_add(&fr->released, 1);
    sl__http_multi_wake(&fr->multi);
}

/* ------------------------------------------------------------------ */
/* The fetcher                                                         */
/* ------------------------------------------------------------------ */

typedef enum job_state {
    JOB_FREE = 0,
    JOB_WAITING,                /* for its time, a token, then the breaker */
    JOB_RUNNING,                /* a transfer on the multi handle */
} job_state;

typedef struct fetch_job {
    job_state state;
    int64_t k;                  /* URL number, from 0 */
    sl__http_req req;           /* the request; its easy handle is reused */
    int64_t ready_ns;           /* stage clock: when it may go on */
    bool token;                 /* holds a token for its next attempt */
    uint32_t retries;           /* retries so far */
} fetch_job;

static void fatal(fetch_run *fr, int code, const char *what)
{
    if (fr->fatal_code == 0) {
        fr->fatal_code = code;
        snprintf(fr->fatal_msg, sizeof(fr->fatal_msg), "%s: %s", what,
                 sl_strerror(code));
    }
    sl_ctx_cancel(fr->ctx, code, "%s", fr->fatal_msg);
}

/* Put URL k's result in its channel and close it. Takes res. */
static void deliver(fetch_run *fr, int64_t k, fetch_result *res)
{
    fetch_slot *slot = &fr->ring[k % fr->window];
    if (sl_chan_try_send(slot->sub, res) != 0)
        result_free(res);       /* cannot happen: one item, capacity one */
    sl_chan_close(slot->sub);
    slot->finished = true;
}

/* A failed URL: its message, to run() and the log. */
static int deliver_failure(fetch_run *fr, fetch_job *job, int code,
                           const char *msg)
{
    fetch_result *res = calloc(1, sizeof(*res));
    char *m = strdup(msg);
    char *u = strdup(job->req.url);
    if (res == NULL || m == NULL || u == NULL) {
        free(res);
        free(m);
        free(u);
        return SL_ENOMEM;
    }
    res->code = code;
    res->msg = m;
    res->url = u;
    res->k = job->k;
    res->retries = job->retries;
    deliver(fr, job->k, res);
    return 0;
}

/* A good response: the record, with url, status and request_id meta. */
static int deliver_record(fetch_run *fr, fetch_job *job, long status)
{
    sl__http_req *r = &job->req;
    fetch_result *res = calloc(1, sizeof(*res));
    if (res == NULL)
        return SL_ENOMEM;
    sl_record *rec = sl_record_new_payload(r->body.data, r->body.len);
    if (rec == NULL)
        goto out_nomem;
    res->rec = rec;
    if (sl_record_set_position(rec, fr->name, r->url, -1, job->k + 1) != 0 ||
        sl_record_set_meta(rec, "url", sl_value_cstring(r->url)) != 0 ||
        sl_record_set_meta(rec, "status", sl_value_int(status)) != 0 ||
        sl_record_set_meta(rec, "request_id", sl_value_cstring(r->id)) != 0)
        goto out_nomem;
    res->retries = job->retries;
    res->bytes = r->body.len;
    deliver(fr, job->k, res);
    return 0;

out_nomem:
    result_free(res);
    return SL_ENOMEM;
}

/* Start URL k on job: its channel goes out to the bridge now, so the
 * output keeps URL order. */
static int begin_url(fetch_run *fr, fetch_job *job, int64_t k)
{
    fetch_slot *slot = &fr->ring[k % fr->window];
    sl_chan_destroy(slot->sub);   /* URL k - window's, released and finished */
    slot->sub = NULL;
    slot->finished = false;
    int rc = sl_chan_create(1, result_free, &slot->sub);
    if (rc != 0)
        return rc;
    char *url = sl__url_set_get(&fr->f->set, k);
    if (url == NULL)
        return SL_ENOMEM;
    rc = sl__http_req_begin(&job->req, &fr->f->conf, url, (uint64_t)k + 1);
    free(url);
    if (rc != 0)
        return rc;
    rc = sl_chan_try_send(fr->subs, slot->sub);
    if (rc != 0)
        return rc == SL_EAGAIN ? SL_EINTERNAL : rc;
    job->state = JOB_WAITING;
    job->k = k;
    job->ready_ns = sl_clock_now(fr->clock);
    job->token = false;
    job->retries = 0;
    return 0;
}

/* A waiting job whose time has come: a token, the breaker, then the
 * transfer. Returns 0 (started, still waiting, or failed fast: see
 * job->state) or a fatal code. */
static int advance(fetch_run *fr, fetch_job *job, int64_t now, int *running)
{
    const sl__http_policy *pol = &fr->f->policy;
    if (pol->limiter != NULL && !job->token) {
        int64_t wait = 0;
        if (sl_limiter_reserve(pol->limiter, 1, &wait) != 0)
            return SL_EINTERNAL;
        job->token = true;
        if (wait > 0) {
            job->ready_ns = now + wait;
            return 0;
        }
    }
    job->token = false;
    if (pol->breaker != NULL && sl_breaker_allow(pol->breaker) != 0) {
        char msg[512];
        double in = (double)sl_breaker_retry_in(pol->breaker) / 1e9;
        snprintf(msg, sizeof(msg), "%s %s: circuit breaker open, not sent "
                 "(next probe in %.1fs)", job->req.conf->method, job->req.url,
                 in);
        /* Once per opening at WARN; the rest of the fail-fast URLs at DEBUG. */
        uint64_t opens = sl_breaker_opens(pol->breaker);
        sl_stage_log(fr->sc, opens != fr->logged_opens ? SL_LOG_WARN : SL_LOG_DEBUG,
                     "request %s: %s", job->req.id, msg);
        fr->logged_opens = opens;
        job->state = JOB_FREE;
        return deliver_failure(fr, job, SL_EBREAKER, msg);
    }
    int rc = sl__http_req_prepare(&job->req, NULL, 0);
    if (rc != 0)
        return rc;
    if (curl_multi_add_handle(fr->multi.multi, job->req.easy) != CURLM_OK)
        return SL_EINTERNAL;
    job->state = JOB_RUNNING;
    (*running)++;
    return 0;
}

/* A transfer ended: keep, retry later, or fail the URL. */
static int finish(fetch_run *fr, fetch_job *job, CURLcode cc)
{
    const sl__http_policy *pol = &fr->f->policy;
    int max = pol->retry.max_attempts;
    sl__http_outcome o;
    sl__http_judge(&job->req, cc, &o);
    if (pol->breaker != NULL)
        sl_breaker_record(pol->breaker, !o.server_failed);
    sl__http_log(fr->sc, &job->req, &o, max);
    if (o.verdict == SL__HTTP_OK) {
        job->state = JOB_FREE;
        return deliver_record(fr, job, o.status);
    }
    if (o.verdict == SL__HTTP_RETRY && job->req.attempt < max) {
        int64_t delay = sl__http_retry_delay(pol, job->req.attempt,
                                             o.retry_after_ns, &fr->rng);
        job->retries++;
        job->state = JOB_WAITING;
        job->ready_ns = sl_clock_now(fr->clock) + delay;
        return 0;
    }
    char msg[1024];
    sl__http_describe(&job->req, &o, max, msg, sizeof(msg));
    job->state = JOB_FREE;
    return deliver_failure(fr, job, o.code, msg);
}

static int ms_until(int64_t ns)
{
    if (ns <= 0)
        return 0;
    int64_t ms = (ns + SL_NS_PER_MS - 1) / SL_NS_PER_MS;
    return ms > FETCH_IDLE_WAIT_MS ? FETCH_IDLE_WAIT_MS : (int)ms;
}

/* The fetcher's loop; returns 0 when every URL has its result, or the
 * context's error, or a fatal code. */
static int fetch_loop(fetch_run *fr, fetch_job *jobs, int64_t n_jobs)
{
    const int64_t total = fr->f->set.total;
    const bool real_clock = fr->clock == sl_clock_real();
    CURLM *multi = fr->multi.multi;
    int64_t next = fr->first;   /* next URL to begin */
    int64_t active = 0;         /* jobs not free */
    int running = 0;            /* jobs with a transfer on the multi */

    while (!sl_ctx_is_done(fr->ctx)) {
        /* Begin URLs while there are free jobs and room in the window. */
        for (int64_t j = 0; j < n_jobs && next < total; j++) {
            if (jobs[j].state != JOB_FREE)
                continue;
            if (next - atomic_load(&fr->released) >= fr->window)
                break;
            fetch_slot *slot = &fr->ring[next % fr->window];
            if (slot->sub != NULL && !slot->finished)
                break;          /* abandoned by a stopping bridge */
            int rc = begin_url(fr, &jobs[j], next);
            if (rc != 0)
                return rc;
            next++;
            active++;
        }
        if (active == 0 && next == total)
            return 0;

        /* Move waiting jobs on. */
        int64_t now = sl_clock_now(fr->clock);
        int64_t next_ready = INT64_MAX;
        for (int64_t j = 0; j < n_jobs; j++) {
            fetch_job *job = &jobs[j];
            if (job->state != JOB_WAITING)
                continue;
            if (job->ready_ns <= now) {
                int rc = advance(fr, job, now, &running);
                if (rc != 0)
                    return rc;
                if (job->state == JOB_FREE)
                    active--;
            }
            if (job->state == JOB_WAITING && job->ready_ns < next_ready)
                next_ready = job->ready_ns;
        }
        if (active == 0 && next == total)
            return 0;

        /* Wait: for transfers, for the next job's time, for room. */
        if (running == 0 && next_ready != INT64_MAX && !real_clock) {
            int rc = sl_clock_sleep(fr->clock, fr->ctx, next_ready - now);
            if (rc != 0)
                return rc;
            continue;
        }
        int timeout = next_ready == INT64_MAX ? FETCH_IDLE_WAIT_MS
                                              : ms_until(next_ready - now);
        if (curl_multi_poll(multi, NULL, 0, timeout, NULL) != CURLM_OK)
            return SL_EINTERNAL;
        int still = 0;
        if (curl_multi_perform(multi, &still) != CURLM_OK)
            return SL_EINTERNAL;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            CURLcode cc = msg->data.result;
            sl__http_req *req = NULL;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
            curl_multi_remove_handle(multi, easy);
            running--;
            fetch_job *job = req->owner;
            int rc = finish(fr, job, cc);
            if (rc != 0)
                return rc;
            if (job->state == JOB_FREE)
                active--;
        }
    }
    return sl_ctx_err(fr->ctx);
}

static void *fetcher_main(void *arg)
{
    fetch_run *fr = arg;
    int64_t n_jobs = fr->f->workers;
    fetch_job *jobs = calloc((size_t)n_jobs, sizeof(*jobs));
    if (jobs == NULL) {
        fatal(fr, SL_ENOMEM, "cannot start fetching");
        return NULL;
    }
    for (int64_t j = 0; j < n_jobs; j++) {
        sl__http_req_init(&jobs[j].req);
        jobs[j].req.owner = &jobs[j];
    }
    int rc = fetch_loop(fr, jobs, n_jobs);
    if (rc == 0)
        sl_chan_close(fr->subs);   /* every URL is in: the bridge ends */
    else if (!sl_ctx_is_done(fr->ctx))
        fatal(fr, rc, "fetching stopped");
    for (int64_t j = 0; j < n_jobs; j++) {
        if (jobs[j].state == JOB_RUNNING)
            curl_multi_remove_handle(fr->multi.multi, jobs[j].req.easy);
        sl__http_req_fini(&jobs[j].req);
    }
    free(jobs);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The stage                                                           */
/* ------------------------------------------------------------------ */

static int fetch_init(void *state, sl_stage_ctx *sc)
{
    http_fetch *f = state;
    int rc = sl__http_global_init(sc);
    if (rc != 0)
        return rc;
    rc = sl__url_set_init(&f->set, sc, f->url, &f->urls);
    if (rc != 0)
        return rc;
    f->have_set = true;
    rc = sl__http_conf_init(&f->conf, sc, fetch_methods[f->method], &f->headers,
                            NULL, f->body, f->timeout, f->max_body);
    if (rc != 0)
        return rc;
    f->have_conf = true;
    rc = sl__http_policy_init(&f->policy, sc, &f->retry, &f->rate_limit,
                              &f->breaker, 0, 1);
    if (rc != 0)
        return rc;
    f->have_policy = true;
    return 0;
}

/* Tear down what run() set up, in reverse order; NULLs are skipped. */
static void run_teardown(fetch_run *fr, pthread_t *fetcher, sl_bridge *bridge)
{
    sl_ctx_cancel(fr->ctx, SL_ECANCELED, "fetch finished");
    if (fetcher != NULL)
        pthread_join(*fetcher, NULL);
    sl_bridge_destroy(bridge);
    if (fr->ring != NULL)
        for (int64_t i = 0; i < fr->window; i++)
            sl_chan_destroy(fr->ring[i].sub);
    free(fr->ring);
    sl_chan_destroy(fr->subs);
    sl_chan_destroy(fr->out);
    sl__http_multi_fini(&fr->multi);
    sl_ctx_destroy(fr->ctx);
}

/*
 * A URL that failed for good under on_error: dead_letter: a record holding
 * just its URL (field `url`; position: the URL and its number) goes to the
 * dead-letter file with the reason. Returns 0, or the error that fails the
 * run (the dead-letter file could not be written; out of memory).
 */
static int reject_url(const http_fetch *f, sl_stage_ctx *sc,
                      const fetch_result *res)
{
    (void)f;
    sl_record *rec = sl_record_new();
    if (rec == NULL ||
        sl_record_set(rec, "url", sl_value_cstring(res->url)) != 0 ||
        sl_record_set_position(rec, sl_stage_name(sc), res->url, -1,
                               res->k + 1) != 0) {
        sl_record_free(rec);
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    }
    return sl_record_reject(sc, rec, res->code, "%s", res->msg);
}

/*
 * settings.state: the index of the first URL not yet delivered, after the
 * saved position (the URL numbered seq, from 1). A saved URL that is not
 * the one at that place in the list any more means the list changed: it is
 * reported and every URL is fetched.
 */
static int64_t resume_first(http_fetch *f, sl_stage_ctx *sc)
{
    sl_resume rp;
    if (sl_stage_resume_point(sc, &rp) != 0 || rp.seq <= 0)
        return 0;
    char *url = rp.seq <= f->set.total ? sl__url_set_get(&f->set, rp.seq - 1)
                                       : NULL;
    bool same = url != NULL && rp.locator != NULL &&
                strcmp(url, rp.locator) == 0;
    free(url);
    if (!same) {
        sl_stage_log(sc, SL_LOG_WARN, "the saved position (URL %lld, %s) is "
                     "not in the URL list any more: fetching every URL",
                     (long long)rp.seq, rp.locator != NULL ? rp.locator : "?");
        sl_stage_resume_reset(sc);
        return 0;
    }
    sl_stage_log(sc, SL_LOG_INFO, "resuming after URL %lld of %lld (%s)",
                 (long long)rp.seq, (long long)f->set.total, rp.locator);
    return rp.seq;
}

/*
 * Receive the results in URL order and emit them. Returns 0 once every URL
 * is accounted for (or the stage was asked to stop), the first failure
 * under on_error: fail, or SL_ECANCELED when the run is torn down.
 */
static int fetch_run_stage(void *state, sl_stage_ctx *sc)
{
    http_fetch *f = state;
    fetch_run fr;
    memset(&fr, 0, sizeof(fr));
    fr.f = f;
    fr.sc = sc;
    fr.name = sl_stage_name(sc);
    fr.clock = sl_stage_clock(sc);
    fr.window = f->workers * FETCH_WINDOW_PER_WORKER;
    fr.rng = (uint64_t)sl_clock_now(sl_clock_real()) ^ (uintptr_t)f;
    pthread_t fetcher;
    sl_bridge *bridge = NULL;
    bool fetcher_started = false;

    fr.first = resume_first(f, sc);
    atomic_init(&fr.released, fr.first);
    int rc = sl_ctx_create_child(sl_stage_source_context(sc), &fr.ctx);
    if (rc != 0)
        return sl_stage_error(sc, rc, "cannot make a context");
    rc = sl__http_multi_init(&fr.multi, fr.ctx);
    if (rc == 0)
        rc = sl_chan_create((size_t)fr.window + 1, NULL, &fr.subs);
    if (rc == 0)
        rc = sl_chan_create(FETCH_OUT_CAPACITY, result_free, &fr.out);
    if (rc == 0) {
        fr.ring = calloc((size_t)fr.window, sizeof(*fr.ring));
        if (fr.ring == NULL)
            rc = SL_ENOMEM;
    }
    if (rc == 0)
        rc = sl_bridge_start(fr.ctx, fr.subs, fr.out, on_release, &fr, &bridge);
    if (rc == 0) {
        if (pthread_create(&fetcher, NULL, fetcher_main, &fr) != 0)
            rc = SL_EAGAIN;
        else
            fetcher_started = true;
    }
    if (rc != 0) {
        run_teardown(&fr, NULL, bridge);
        return sl_stage_error(sc, rc, "cannot start fetching: %s",
                              sl_strerror(rc));
    }

    int64_t received = 0;
    int result = 0;
    for (;;) {
        void *item = NULL;
        rc = sl_chan_recv(fr.out, fr.ctx, &item);
        if (rc != 0)
            break;
        fetch_result *res = item;
        received++;
        for (uint32_t i = 0; i < res->retries; i++)
            sl_stage_count_retry(sc);
        sl_stage_count_bytes_in(sc, res->bytes);
        if (res->rec != NULL) {
            sl_record *rec = res->rec;
            res->rec = NULL;
            result_free(res);
            if (sl_emit(sc, rec) != 0) {
                result = SL_ECANCELED;
                break;
            }
            continue;
        }
        if (f->on_error == SL__HTTP_ON_ERROR_DEAD_LETTER) {
            rc = reject_url(f, sc, res);
            result_free(res);
            if (rc != 0) {
                result = rc;
                break;
            }
            continue;
        }
        sl_stage_count_error(sc);
        if (f->on_error == SL__HTTP_ON_ERROR_SKIP) {
            result_free(res);
            continue;
        }
        result = sl_stage_error(sc, res->code, "%s", res->msg);
        result_free(res);
        break;
    }

    run_teardown(&fr, fetcher_started ? &fetcher : NULL, bridge);
    if (result != 0)
        return result;
    if (received == f->set.total - fr.first)
        return 0;
    /* Ended early: a stop request, a cancelled run, or the fetcher failed. */
    if (fr.fatal_code != 0 && !sl_stage_stopping(sc))
        return sl_stage_error(sc, fr.fatal_code, "%s", fr.fatal_msg);
    if (sl_stage_stopping(sc) && !sl_ctx_is_done(sl_stage_context(sc)))
        return 0;
    return sl_stage_error(sc, SL_ECANCELED, "fetch cancelled");
}

static void fetch_destroy(void *state)
{
    http_fetch *f = state;
    if (f->have_policy)
        sl__http_policy_fini(&f->policy);
    if (f->have_conf)
        sl__http_conf_fini(&f->conf);
    if (f->have_set)
        sl__url_set_fini(&f->set);
    f->have_policy = f->have_conf = f->have_set = false;
}

const sl_stage_desc sl_stage_http_fetch = {
    SL_STAGE_DESC_HEADER,
    .name = "http",
    .kind = SL_STAGE_SOURCE,
    .summary = "fetch URLs (http, https, file) concurrently, one record per "
               "response, in URL order",
    .options = fetch_options,
    .state_size = sizeof(http_fetch),
    .init = fetch_init,
    .run = fetch_run_stage,
    .destroy = fetch_destroy,
};
