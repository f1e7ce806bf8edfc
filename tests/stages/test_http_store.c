/*
 * The `http` store stage against the loopback test server: batches of
 * JSON lines, exactly-once delivery of what is counted as stored, retries,
 * on_error, the breaker, Retry-After, timeouts and cancellation.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "stages/stage_test.h"
#include "support/http_server.h"

extern const sl_stage_desc sl_stage_http_store;

static http_server *srv;

static void setup(void)
{
    st_setup();
    cr_assert_eq(http_server_start(&srv), 0, "test server");
}

static void teardown(void)
{
    http_server_stop(srv);
    srv = NULL;
    st_teardown();
}

TestSuite(http_store, .init = setup, .fini = teardown, .timeout = 60);

static const char *url(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *url(const char *fmt, ...)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    char path[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return http_server_url(srv, b, 1024, "%s", path);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static sl_harness *make(const char *yaml)
{
    return st_harness(&sl_stage_http_store, yaml);
}

static int put_id(sl_harness *h, int id)
{
    return sl_harness_process_json(h, st_fmt("{\"id\":%d,\"name\":\"r%d\"}", id, id));
}

/* Count the records (lines with "id":N) of every body the server answered
 * 2xx; each id must appear at most once. Returns how many bodies. */
static size_t delivered(int n, int *seen)
{
    size_t ok_bodies = 0;
    for (int i = 0; i < n; i++)
        seen[i] = 0;
    for (size_t b = 0; b < http_server_bodies(srv); b++) {
        int status = 0;
        char *body = http_server_body(srv, b, NULL, &status);
        cr_assert_not_null(body);
        if (status >= 200 && status < 300) {
            ok_bodies++;
            for (char *line = body; *line != '\0';) {
                char *nl = strchr(line, '\n');
                cr_assert_not_null(nl, "every line ends with a newline");
                int id = -1;
                cr_assert_eq(sscanf(line, "{\"id\":%d,", &id), 1, "%.*s",
                             (int)(nl - line), line);
                cr_assert(id >= 1 && id <= n);
                seen[id - 1]++;
                line = nl + 1;
            }
        }
        free(body);
    }
    return ok_bodies;
}

Test(http_store, every_record_delivered_once_in_batches)
{
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 10", url("/ingest")));
    for (int i = 1; i <= 25; i++)
        cr_assert_eq(put_id(h, i), 0, "%s", sl_harness_last_error(h));
    cr_assert_eq(http_server_hits(srv), 2, "two full batches sent");
    cr_assert_eq(sl_harness_stored_count(h), 20);
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_assert_eq(http_server_hits(srv), 3, "the rest on flush");
    cr_assert_eq(sl_harness_stored_count(h), 25);
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_assert_eq(http_server_hits(srv), 3, "nothing to send: no request");

    int seen[25];
    cr_assert_eq(delivered(25, seen), 3);
    for (int i = 0; i < 25; i++)
        cr_assert_eq(seen[i], 1, "record %d delivered %d times", i + 1, seen[i]);
    char *first = http_server_body(srv, 0, NULL, NULL);
    const char *want = "{\"id\":1,\"name\":\"r1\"}\n{\"id\":2,";
    cr_assert(strncmp(first, want, strlen(want)) == 0, "%s", first);
    free(first);
    sl_harness_destroy(h);
}

Test(http_store, failed_attempts_are_retried_and_stored_once)
{
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 5\n"
                                "retry: {attempts: 3, backoff: 1ms}", url("/in?fail=2")));
    for (int i = 1; i <= 5; i++)
        cr_assert_eq(put_id(h, i), 0, "%s", sl_harness_last_error(h));
    cr_assert_eq(http_server_hits(srv), 3);
    cr_assert_eq(sl_harness_retry_count(h), 2);
    cr_assert_eq(sl_harness_stored_count(h), 5);
    int seen[5];
    cr_assert_eq(delivered(5, seen), 1, "one accepted body");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(seen[i], 1);
    sl_harness_destroy(h);
}

Test(http_store, uses_method_content_type_and_request_id)
{
    sl_harness *h = make(st_fmt("url: '%s'\nmethod: PUT\nbatch_size: 1", url("/put")));
    cr_assert_eq(put_id(h, 1), 0, "%s", sl_harness_last_error(h));
    cr_assert_eq(http_server_bodies(srv), 1, "a PUT body was received");
    char rid[64];
    http_server_hit_request_id(srv, 0, rid, sizeof(rid));
    cr_assert_neq(rid[0], '\0');
    cr_assert_eq(sl_harness_flush(h), 0);
    sl_harness_destroy(h);
}

Test(http_store, batch_failure_fails_under_on_error_fail)
{
    const char *u = url("/down?fail=100&fail_status=503");
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 4\n"
                                "retry: {attempts: 2, backoff: 1ms}", u));
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(put_id(h, i), 0);
    int rc = put_id(h, 4);
    cr_assert_eq(rc, SL_EHTTP, "%s", sl_error_name(rc));
    const char *e = sl_harness_last_error(h);
    cr_assert(strstr(e, "POST ") == e, "%s", e);
    cr_assert(strstr(e, u) != NULL, "%s", e);
    cr_assert(strstr(e, "HTTP 503") != NULL, "%s", e);
    cr_assert(strstr(e, "attempt 2 of 2") != NULL, "%s", e);
    cr_assert(strstr(e, "batch of 4 records") != NULL, "%s", e);
    cr_assert_eq(sl_harness_stored_count(h), 0);
    cr_assert_eq(sl_harness_failed_count(h), 1, "the record is left with the engine");
    cr_assert_eq(http_server_hits(srv), 2);
    sl_harness_destroy(h);
}

Test(http_store, skip_drops_the_failed_batch_counting_errors)
{
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 4\non_error: skip\n"
                                "retry: {attempts: 1}", url("/down?fail=1")));
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(put_id(h, i), 0);
    cr_assert_eq(put_id(h, 4), SL_EHTTP);
    cr_assert_eq(sl_harness_error_count(h), 4, "3 dropped + the one returned");
    /* the next batch goes out on its own */
    for (int i = 5; i <= 8; i++)
        cr_assert_eq(put_id(h, i), 0, "%s", sl_harness_last_error(h));
    cr_assert_eq(sl_harness_stored_count(h), 4);
    int seen[8];
    delivered(8, seen);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(seen[i], i < 4 ? 0 : 1, "record %d", i + 1);
    sl_harness_destroy(h);
}

Test(http_store, skip_on_flush_drops_and_returns_ok)
{
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 10\non_error: skip\n"
                                "retry: {attempts: 1}", url("/down?fail=1")));
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(put_id(h, i), 0);
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_assert_eq(sl_harness_error_count(h), 3);
    cr_assert_eq(sl_harness_stored_count(h), 0);
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_assert_eq(http_server_hits(srv), 1, "dropped records are not sent again");
    sl_harness_destroy(h);
}

Test(http_store, flush_failure_under_fail_is_an_error)
{
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 10\nretry: {attempts: 1}",
                                url("/down?status=400")));
    cr_assert_eq(put_id(h, 1), 0);
    cr_assert_eq(sl_harness_flush(h), SL_EHTTP);
    cr_assert(strstr(sl_harness_last_error(h), "HTTP 400") != NULL);
    cr_assert_eq(http_server_hits(srv), 1, "4xx is not retried");
    sl_harness_destroy(h);
}

/*
 * A server that always fails: N records in batches of B under on_error:
 * dead_letter. Every record meets the policy exactly once, with the reason:
 * the held ones through sl_record_reject, the one completing each full
 * batch through the engine (the harness's failed list).
 */
Test(http_store, dead_letter_gets_every_record_of_a_failed_batch)
{
    const int n = 10, b = 4;
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: %d\n"
                                "on_error: dead_letter\nretry: {attempts: 2, backoff: 1ms}",
                                url("/down?fail=1000"), b));
    int returned = 0;
    for (int i = 1; i <= n; i++) {
        int rc = put_id(h, i);
        if (i % b == 0) {
            cr_assert_eq(rc, SL_EHTTP, "record %d: %s", i, sl_error_name(rc));
            cr_assert(strstr(sl_harness_last_error(h), "HTTP 500") != NULL, "%s",
                      sl_harness_last_error(h));
            returned++;
        } else {
            cr_assert_eq(rc, 0, "record %d: %s", i, sl_harness_last_error(h));
        }
    }
    cr_assert_eq(sl_harness_flush(h), 0, "%s", sl_harness_last_error(h));
    cr_assert_eq(returned, n / b);
    cr_assert_eq(sl_harness_failed_count(h), (size_t)(n / b));
    cr_assert_eq(sl_harness_rejected_count(h), (size_t)(n - n / b));
    cr_assert_eq(sl_harness_error_count(h), (uint64_t)n);
    cr_assert_eq(sl_harness_stored_count(h), 0);
    cr_assert_eq(http_server_hits(srv), 2 * (uint64_t)((n + b - 1) / b),
                 "each batch tried twice");

    int seen[10] = {0};
    for (size_t i = 0; i < sl_harness_rejected_count(h); i++) {
        const char *why = sl_harness_rejected_reason(h, i);
        cr_assert(strstr(why, "HTTP 500") != NULL, "%s", why);
        cr_assert(strstr(why, "attempt 2 of 2") != NULL, "%s", why);
        cr_assert(strstr(why, "batch of") != NULL, "%s", why);
        seen[sl_value_get_int(sl_record_get(sl_harness_rejected(h, i), "id")) - 1]++;
    }
    for (size_t i = 0; i < sl_harness_failed_count(h); i++)
        seen[sl_value_get_int(sl_record_get(sl_harness_failed(h, i), "id")) - 1]++;
    for (int i = 0; i < n; i++)
        cr_assert_eq(seen[i], 1, "record %d met on_error %d times", i + 1, seen[i]);
    /* nothing is held any more: a flush sends nothing */
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_assert_eq(http_server_hits(srv), 2 * (uint64_t)((n + b - 1) / b));
    sl_harness_destroy(h);
}

Test(http_store, on_error_retry_resends_the_held_batch)
{
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 3\non_error: retry\n"
                                "retry: {attempts: 1}", url("/in?fail=1")));
    cr_assert_eq(put_id(h, 1), 0);
    cr_assert_eq(put_id(h, 2), 0);
    cr_assert_eq(put_id(h, 3), SL_EHTTP);
    cr_assert_eq(sl_harness_stored_count(h), 0);
    /* what the engine does under on_error: retry — the same record again */
    sl_record *again = sl_harness_failed(h, 0);
    cr_assert_not_null(again);
    cr_assert_eq(sl_harness_process(h, sl_record_copy(again)), 0, "%s",
                 sl_harness_last_error(h));
    cr_assert_eq(sl_harness_stored_count(h), 3);
    int seen[3];
    cr_assert_eq(delivered(3, seen), 1);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(seen[i], 1);
    sl_harness_destroy(h);
}

Test(http_store, breaker_fails_fast_without_calling_the_server)
{
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 1\non_error: skip\n"
                                "retry: {attempts: 1}\n"
                                "circuit_breaker: {failures: 2, cooldown: 30s}",
                                url("/down?fail=100")));
    for (int i = 1; i <= 6; i++) {
        int rc = put_id(h, i);
        cr_assert_eq(rc, i <= 2 ? SL_EHTTP : SL_EBREAKER, "record %d: %s", i,
                     sl_error_name(rc));
    }
    cr_assert_eq(http_server_hits(srv), 2);
    cr_assert(strstr(sl_harness_last_error(h), "circuit breaker open") != NULL);
    cr_assert_eq(sl_harness_error_count(h), 6);
    sl_harness_destroy(h);
}

Test(http_store, retry_after_is_honoured_on_the_stage_clock)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_http_store,
                                   st_fmt("url: '%s'\nbatch_size: 1\n"
                                          "retry: {attempts: 2, backoff: 10ms, max_backoff: 1m}",
                                          url("/in?fail=1&fail_status=429&retry_after=42")),
                                   &h), 0);
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    sl_harness_set_clock(h, &fc.clock);
    cr_assert_eq(sl_harness_init(h), 0);
    cr_assert_eq(put_id(h, 1), 0, "%s", sl_harness_last_error(h));
    cr_assert_eq(atomic_load(&fc.now), 42 * SL_NS_PER_S);
    cr_assert_eq(sl_harness_retry_count(h), 1);
    sl_harness_destroy(h);
}

Test(http_store, rate_limit_paces_requests)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_http_store,
                                   st_fmt("url: '%s'\nbatch_size: 2\n"
                                          "rate_limit: {rate: 2/s, burst: 1}", url("/in")),
                                   &h), 0);
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    sl_harness_set_clock(h, &fc.clock);
    cr_assert_eq(sl_harness_init(h), 0);
    for (int i = 1; i <= 8; i++)
        cr_assert_eq(put_id(h, i), 0);
    cr_assert_eq(http_server_hits(srv), 4);
    int64_t now = atomic_load(&fc.now);
    cr_assert(now >= 1500 * SL_NS_PER_MS - SL_NS_PER_US &&
              now <= 1500 * SL_NS_PER_MS + SL_NS_PER_US, "%lld", (long long)now);
    sl_harness_destroy(h);
}

Test(http_store, timeout_names_the_url)
{
    const char *u = url("/slow?delay_ms=20000");
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 1\ntimeout: 120ms\n"
                                "retry: {attempts: 1}", u));
    int64_t t0 = mono_ns();
    int rc = put_id(h, 1);
    cr_assert_eq(rc, SL_ETIMEDOUT, "%s", sl_error_name(rc));
    cr_assert_lt(mono_ns() - t0, 10 * SL_NS_PER_S);
    const char *e = sl_harness_last_error(h);
    cr_assert(strstr(e, "timed out after 120ms") != NULL, "%s", e);
    cr_assert(strstr(e, u) != NULL, "%s", e);
    sl_harness_destroy(h);
}

typedef struct canceller {
    sl_harness *h;
    int64_t at;
} canceller;

static void *cancel_after_hit(void *arg)
{
    canceller *c = arg;
    if (http_server_wait_hits(srv, 1, 10000) != 0)
        return NULL;
    c->at = mono_ns();
    sl_harness_cancel(c->h, "test cancels");
    return NULL;
}

Test(http_store, cancellation_aborts_a_hanging_post)
{
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 1\ntimeout: 60s", url("/hang?hang=1")));
    canceller c = {.h = h};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, cancel_after_hit, &c), 0);
    int rc = put_id(h, 1);
    int64_t end = mono_ns();
    pthread_join(t, NULL);
    cr_assert_neq(c.at, 0);
    cr_assert_eq(rc, SL_ECANCELED, "%s", sl_error_name(rc));
    cr_assert_lt(end - c.at, 500 * SL_NS_PER_MS, "took %lld ns", (long long)(end - c.at));
    cr_assert_eq(sl_harness_stored_count(h), 0);
    sl_harness_destroy(h);
}

Test(http_store, only_http_urls_and_a_url_is_required)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_http_store, "batch_size: 2", &h), SL_ECONFIG);
    cr_assert(strstr(sl_harness_config_error(h), "url") != NULL);
    sl_harness_destroy(h);
    cr_assert_eq(sl_harness_create(&sl_stage_http_store, "url: file:///tmp/x", &h), 0);
    cr_assert_eq(sl_harness_init(h), SL_ECONFIG);
    cr_assert(strstr(sl_harness_last_error(h), "http:// or https://") != NULL);
    sl_harness_destroy(h);
    cr_assert_eq(sl_harness_create(&sl_stage_http_store, "url: http://a\nmethod: GET", &h),
                 SL_ECONFIG);
    sl_harness_destroy(h);
}

Test(http_store, redirects_are_failures)
{
    sl_harness *h = make(st_fmt("url: '%s'\nbatch_size: 1\nretry: {attempts: 3}",
                                url("/moved?status=301")));
    cr_assert_eq(put_id(h, 1), SL_EHTTP);
    cr_assert(strstr(sl_harness_last_error(h), "HTTP 301") != NULL);
    cr_assert_eq(http_server_hits(srv), 1);
    sl_harness_destroy(h);
}
