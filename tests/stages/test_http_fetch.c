/*
 * The `http` fetch stage against a loopback server (tests/support) and
 * local files: order under concurrency, retries, Retry-After, the circuit
 * breaker, the rate limit, timeouts, cancellation, request IDs, options.
 *
 * Time-dependent checks run on a fake clock where the stage waits on the
 * stage clock (backoff, Retry-After, rate limit, breaker cooldown): every
 * wait is then exact and instant. Waiting for the server uses its hit
 * counter and a condition variable, never a sleep.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "stages/stage_test.h"
#include "support/http_server.h"

extern const sl_stage_desc sl_stage_http_fetch;

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

TestSuite(http_fetch, .init = setup, .fini = teardown, .timeout = 60);

/* The server's URL for path (printf-style), in a rotating buffer. */
static const char *url(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *url(const char *fmt, ...)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
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
    return st_harness(&sl_stage_http_fetch, yaml);
}

/* A harness on a fake clock starting at 1000 s. */
static sl_harness *make_fake(const char *yaml, sl_fake_clock *fc)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_http_fetch, yaml, &h), 0, "%s",
                 h != NULL ? sl_harness_config_error(h) : "");
    sl_fake_clock_init(fc, 1000 * SL_NS_PER_S);
    sl_harness_set_clock(h, &fc->clock);
    int rc = sl_harness_init(h);
    cr_assert_eq(rc, 0, "init: %s", sl_harness_last_error(h));
    return h;
}

/* The fake clock moved by want, to within a microsecond (the limiter
 * computes its waits in floating point). */
static void expect_waited(sl_fake_clock *fc, int64_t want)
{
    int64_t waited = atomic_load(&fc->now) - 1000 * SL_NS_PER_S;
    cr_assert(waited >= want - SL_NS_PER_US && waited <= want + SL_NS_PER_US,
              "waited %lld ns, want %lld", (long long)waited, (long long)want);
}

static void run_ok(sl_harness *h)
{
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, 0, "run: %s (%s)", sl_error_name(rc), sl_harness_last_error(h));
}

static const char *meta_str(sl_record *r, const char *key)
{
    sl_value *v = sl_record_meta(r, key);
    cr_assert_not_null(v, "meta %s", key);
    const char *s = sl_value_get_string(v, NULL);
    cr_assert_not_null(s, "meta %s is a string", key);
    return s;
}

static int64_t meta_int(sl_record *r, const char *key)
{
    sl_value *v = sl_record_meta(r, key);
    cr_assert_not_null(v, "meta %s", key);
    return sl_value_get_int(v);
}

/* ------------------------------------------------------------------ */
/* Basics                                                              */
/* ------------------------------------------------------------------ */

Test(http_fetch, one_record_per_response_with_meta)
{
    const char *u = url("/hello");
    sl_harness *h = make(st_fmt("url: '%s'", u));
    run_ok(h);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_assert_str_eq(st_payload(h, 0), "{\"path\":\"/hello\",\"hit\":1}");
    sl_record *r = sl_harness_emitted(h, 0);
    cr_assert_str_eq(meta_str(r, "url"), u);
    cr_assert_eq(meta_int(r, "status"), 200);
    const sl_position *pos = sl_record_position(r);
    cr_assert_str_eq(pos->locator, u);
    cr_assert_eq(pos->seq, 1);
    cr_assert_str_eq(pos->source, "test");
    cr_assert_eq(sl_harness_bytes_in(h), strlen("{\"path\":\"/hello\",\"hit\":1}"));
    cr_assert_eq(sl_harness_retry_count(h), 0);
    cr_assert_eq(sl_harness_error_count(h), 0);
    sl_harness_destroy(h);
}

Test(http_fetch, ranges_expand_in_order)
{
    sl_harness *h = make(st_fmt("urls: ['%s', '%s']", url("/r/{08..10}/{2..1}"),
                                url("/s/{3..3}")));
    run_ok(h);
    const char *want[] = {"/r/08/2", "/r/08/1", "/r/09/2", "/r/09/1",
                          "/r/10/2", "/r/10/1", "/s/3"};
    cr_assert_eq(sl_harness_emitted_count(h), 7);
    for (size_t i = 0; i < 7; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"path\":\"%s\",\"hit\":1}", want[i]);
        cr_assert_str_eq(st_payload(h, i), body, "record %zu", i);
        cr_assert_eq(sl_record_position(sl_harness_emitted(h, i))->seq,
                     (int64_t)i + 1);
    }
    sl_harness_destroy(h);
}

Test(http_fetch, not_a_range_is_kept_as_written)
{
    sl_harness *h = make(st_fmt("url: '%s'", url("/q/{a..b}/{1..}")));
    run_ok(h);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    char path[256];
    cr_assert_str_eq(http_server_hit_path(srv, 0, path, sizeof(path)),
                     "/q/{a..b}/{1..}");
    sl_harness_destroy(h);
}

Test(http_fetch, file_urls_relative_and_absolute)
{
    st_write_str("a.txt", "alpha\n");
    st_write_str("b.txt", "beta\n");
    cr_assert_eq(chdir(st_dir), 0);
    char abs[600];
    snprintf(abs, sizeof(abs), "file://%s/b.txt", st_dir);
    sl_harness *h = make(st_fmt("urls: ['file://a.txt', '%s']", abs));
    run_ok(h);
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_assert_str_eq(st_payload(h, 0), "alpha\n");
    cr_assert_str_eq(st_payload(h, 1), "beta\n");
    char want[600];
    snprintf(want, sizeof(want), "file://%s/a.txt", st_dir);
    cr_assert_str_eq(meta_str(sl_harness_emitted(h, 0), "url"), want);
    cr_assert_eq(meta_int(sl_harness_emitted(h, 0), "status"), 0);
    sl_harness_destroy(h);
}

Test(http_fetch, missing_file_fails_without_retry)
{
    cr_assert_eq(chdir(st_dir), 0);
    sl_harness *h = make("url: file://nope.txt\nretry: {attempts: 3, backoff: 1ms}");
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, SL_ENOTFOUND, "%s", sl_error_name(rc));
    cr_assert(strstr(sl_harness_last_error(h), "nope.txt") != NULL, "%s",
              sl_harness_last_error(h));
    cr_assert(strstr(sl_harness_last_error(h), "attempt 1 of 3") != NULL, "%s",
              sl_harness_last_error(h));
    cr_assert_eq(sl_harness_retry_count(h), 0);
    sl_harness_destroy(h);
}

Test(http_fetch, post_with_body_and_headers)
{
    sl_harness *h = make(st_fmt("url: '%s'\nmethod: POST\nbody: '{\"q\":1}'\n"
                                "headers: {X-Request-ID: fixed-id, Accept: text/plain}",
                                url("/search")));
    run_ok(h);
    cr_assert_eq(http_server_bodies(srv), 1);
    char *b = http_server_body(srv, 0, NULL, NULL);
    cr_assert_str_eq(b, "{\"q\":1}");
    free(b);
    char rid[64];
    cr_assert_str_eq(http_server_hit_request_id(srv, 0, rid, sizeof(rid)), "fixed-id");
    sl_harness_destroy(h);
}

Test(http_fetch, request_id_sent_logged_and_kept_across_retries)
{
    sl_harness *h = make(st_fmt("urls: ['%s', '%s']\nretry: {attempts: 3, backoff: 1ms}",
                                url("/a?fail=1"), url("/b")));
    run_ok(h);
    cr_assert_eq(http_server_hits(srv), 3);
    char r0[64], r1[64], r2[64];
    http_server_hit_request_id(srv, 0, r0, sizeof(r0));
    http_server_hit_request_id(srv, 1, r1, sizeof(r1));
    http_server_hit_request_id(srv, 2, r2, sizeof(r2));
    cr_assert_neq(r0[0], '\0');
    cr_assert_str_eq(r0, r1, "a retry keeps its request ID");
    cr_assert_str_neq(r1, r2, "each request has its own ID");
    cr_assert_str_eq(meta_str(sl_harness_emitted(h, 0), "request_id"), r1);
    cr_assert_str_eq(meta_str(sl_harness_emitted(h, 1), "request_id"), r2);
    sl_harness_destroy(h);
}

/* ------------------------------------------------------------------ */
/* Order under concurrency                                             */
/* ------------------------------------------------------------------ */

Test(http_fetch, ordered_output_with_workers_and_random_delays)
{
    enum { N = 60 };
    srand(12345);
    char yaml[N * 80 + 64];
    int at = snprintf(yaml, sizeof(yaml), "workers: 8\nurls:\n");
    for (int i = 0; i < N; i++)
        at += snprintf(yaml + at, sizeof(yaml) - (size_t)at, "  - '%s'\n",
                       url("/item/%d?delay_ms=%d", i, rand() % 40));
    sl_harness *h = make(yaml);
    run_ok(h);
    cr_assert_eq(sl_harness_emitted_count(h), N);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof(want), "{\"path\":\"/item/%d\",\"hit\":1}", i);
        cr_assert_str_eq(st_payload(h, (size_t)i), want, "record %d", i);
        cr_assert_eq(sl_record_position(sl_harness_emitted(h, (size_t)i))->seq, i + 1);
    }
    size_t conc = http_server_max_concurrent(srv);
    cr_assert_gt(conc, 1, "requests overlapped");
    cr_assert_leq(conc, 8, "never more than workers in flight");
    sl_harness_destroy(h);
}

Test(http_fetch, a_slow_first_url_does_not_hold_up_the_others)
{
    /* The first URL takes 2 s; the 15 others (4 workers, window 16)
     * are fetched meanwhile and wait for it in order. */
    char yaml[4096];
    int at = snprintf(yaml, sizeof(yaml), "workers: 4\nurls:\n  - '%s'\n",
                      url("/slow?delay_ms=2000"));
    for (int i = 0; i < 15; i++)
        at += snprintf(yaml + at, sizeof(yaml) - (size_t)at, "  - '%s'\n",
                       url("/fast/%d", i));
    sl_harness *h = make(yaml);
    int64_t t0 = mono_ns();
    run_ok(h);
    int64_t took = mono_ns() - t0;
    cr_assert_eq(sl_harness_emitted_count(h), 16);
    cr_assert(strstr(st_payload(h, 0), "/slow") != NULL);
    /* All 16 hits arrived before the slow answer came back. */
    int64_t slow_start = http_server_hit_time(srv, 0);
    int64_t last_hit = http_server_hit_time(srv, 15);
    cr_assert_lt(last_hit - slow_start, 2000 * SL_NS_PER_MS,
                 "the fast URLs were fetched while the slow one ran");
    cr_assert_lt(took, 15 * SL_NS_PER_S);
    sl_harness_destroy(h);
}

/* ------------------------------------------------------------------ */
/* Retries                                                             */
/* ------------------------------------------------------------------ */

Test(http_fetch, retries_5xx_exactly_then_succeeds)
{
    sl_harness *h = make(st_fmt("url: '%s'\nretry: {attempts: 3, backoff: 1ms}",
                                url("/flaky?fail=2")));
    run_ok(h);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_assert_eq(http_server_path_hits(srv, "/flaky"), 3);
    cr_assert_eq(sl_harness_retry_count(h), 2);
    cr_assert_str_eq(st_payload(h, 0), "{\"path\":\"/flaky\",\"hit\":3}");
    sl_harness_destroy(h);
}

Test(http_fetch, gives_up_after_attempts_naming_url_and_status)
{
    const char *u = url("/down?fail=100&fail_status=502");
    sl_harness *h = make(st_fmt("url: '%s'\nretry: {attempts: 4, backoff: 1ms}", u));
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, SL_EHTTP, "%s", sl_error_name(rc));
    cr_assert_eq(http_server_path_hits(srv, "/down"), 4);
    cr_assert_eq(sl_harness_retry_count(h), 3);
    cr_assert_eq(sl_harness_error_count(h), 1);
    const char *e = sl_harness_last_error(h);
    cr_assert(strstr(e, u) != NULL, "%s", e);
    cr_assert(strstr(e, "HTTP 502") != NULL, "%s", e);
    cr_assert(strstr(e, "attempt 4 of 4") != NULL, "%s", e);
    sl_harness_destroy(h);
}

Test(http_fetch, client_errors_are_not_retried)
{
    sl_harness *h = make(st_fmt("url: '%s'\nretry: {attempts: 5, backoff: 1ms}",
                                url("/missing?status=404")));
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, SL_EHTTP);
    cr_assert_eq(http_server_hits(srv), 1);
    cr_assert_eq(sl_harness_retry_count(h), 0);
    cr_assert(strstr(sl_harness_last_error(h), "HTTP 404") != NULL);
    sl_harness_destroy(h);
}

Test(http_fetch, too_many_requests_is_retried)
{
    sl_harness *h = make(st_fmt("url: '%s'\nretry: {attempts: 2, backoff: 1ms}",
                                url("/busy?fail=1&fail_status=429")));
    run_ok(h);
    cr_assert_eq(http_server_hits(srv), 2);
    cr_assert_eq(sl_harness_retry_count(h), 1);
    sl_harness_destroy(h);
}

Test(http_fetch, connection_reset_is_retried)
{
    sl_harness *h = make(st_fmt("url: '%s'\nretry: {attempts: 3, backoff: 1ms}",
                                url("/reset?reset=2")));
    run_ok(h);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_assert_eq(http_server_path_hits(srv, "/reset"), 3);
    cr_assert_eq(sl_harness_retry_count(h), 2);
    sl_harness_destroy(h);
}

/* A loopback port nobody listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

Test(http_fetch, connection_refused_is_retried_then_reported)
{
    int port = closed_port();
    sl_harness *h = make(st_fmt("url: http://127.0.0.1:%d/x\n"
                                "retry: {attempts: 3, backoff: 1ms}", port));
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, SL_EIO, "%s", sl_error_name(rc));
    cr_assert_eq(sl_harness_retry_count(h), 2);
    const char *e = sl_harness_last_error(h);
    cr_assert(strstr(e, "connect") != NULL, "%s", e);
    cr_assert(strstr(e, st_fmt("127.0.0.1:%d/x", port)) != NULL, "%s", e);
    sl_harness_destroy(h);
}

Test(http_fetch, backoff_grows_exponentially_with_jitter)
{
    sl_fake_clock fc;
    sl_harness *h = make_fake(st_fmt("url: '%s'\nretry: {attempts: 4, backoff: 100ms, "
                                     "max_backoff: 10s}", url("/f?fail=3")), &fc);
    run_ok(h);
    cr_assert_eq(http_server_hits(srv), 4);
    /* 100 + 200 + 400 ms, each within +-20% */
    int64_t waited = atomic_load(&fc.now) - 1000 * SL_NS_PER_S;
    cr_assert_geq(waited, 560 * SL_NS_PER_MS, "%lld", (long long)waited);
    cr_assert_leq(waited, 840 * SL_NS_PER_MS, "%lld", (long long)waited);
    sl_harness_destroy(h);
}

Test(http_fetch, backoff_is_capped_by_max_backoff)
{
    sl_fake_clock fc;
    sl_harness *h = make_fake(st_fmt("url: '%s'\nretry: {attempts: 4, backoff: 1s, "
                                     "max_backoff: 1s}", url("/f?fail=3")), &fc);
    run_ok(h);
    /* base 1 s each time; jitter only shortens a capped wait */
    int64_t waited = atomic_load(&fc.now) - 1000 * SL_NS_PER_S;
    cr_assert_geq(waited, 2400 * SL_NS_PER_MS, "%lld", (long long)waited);
    cr_assert_leq(waited, 3 * SL_NS_PER_S, "%lld", (long long)waited);
    sl_harness_destroy(h);
}

Test(http_fetch, retry_after_is_honoured)
{
    sl_fake_clock fc;
    sl_harness *h = make_fake(st_fmt("url: '%s'\nretry: {attempts: 2, backoff: 10ms, "
                                     "max_backoff: 30s}",
                                     url("/ra?fail=1&fail_status=503&retry_after=7")),
                              &fc);
    run_ok(h);
    cr_assert_eq(http_server_hits(srv), 2);
    cr_assert_eq(atomic_load(&fc.now) - 1000 * SL_NS_PER_S, 7 * SL_NS_PER_S,
                 "waited exactly Retry-After");
    sl_harness_destroy(h);
}

Test(http_fetch, retry_after_on_429_is_capped_at_max_backoff)
{
    sl_fake_clock fc;
    sl_harness *h = make_fake(st_fmt("url: '%s'\nretry: {attempts: 2, backoff: 10ms, "
                                     "max_backoff: 2s}",
                                     url("/ra?fail=1&fail_status=429&retry_after=3600")),
                              &fc);
    run_ok(h);
    cr_assert_eq(atomic_load(&fc.now) - 1000 * SL_NS_PER_S, 2 * SL_NS_PER_S);
    sl_harness_destroy(h);
}

Test(http_fetch, retry_after_on_real_clock_waits)
{
    sl_harness *h = make(st_fmt("url: '%s'\nretry: {attempts: 2, backoff: 1ms}",
                                url("/ra?fail=1&fail_status=503&retry_after=1")));
    int64_t t0 = mono_ns();
    run_ok(h);
    int64_t gap = http_server_hit_time(srv, 1) - http_server_hit_time(srv, 0);
    cr_assert_geq(gap, 950 * SL_NS_PER_MS, "second try came after Retry-After");
    cr_assert_lt(mono_ns() - t0, 15 * SL_NS_PER_S);
    sl_harness_destroy(h);
}

/* ------------------------------------------------------------------ */
/* Circuit breaker                                                     */
/* ------------------------------------------------------------------ */

Test(http_fetch, breaker_opens_after_failures_and_fails_fast)
{
    sl_harness *h = make(st_fmt("url: '%s'\nretry: {attempts: 1}\n"
                                "circuit_breaker: {failures: 3, cooldown: 30s}\n"
                                "on_error: skip", url("/down/{1..10}?fail=100")));
    run_ok(h);
    cr_assert_eq(http_server_hits(srv), 3, "the server saw only the first 3");
    cr_assert_eq(sl_harness_emitted_count(h), 0);
    cr_assert_eq(sl_harness_error_count(h), 10, "every URL counted as an error");
    sl_harness_destroy(h);
}

Test(http_fetch, breaker_open_fails_the_run_under_on_error_fail)
{
    sl_harness *h = make(st_fmt("urls: ['%s', '%s']\nretry: {attempts: 3, backoff: 1ms}\n"
                                "circuit_breaker: {failures: 2, cooldown: 30s}",
                                url("/d1?fail=100"), url("/d2")));
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, SL_EBREAKER, "%s: %s", sl_error_name(rc), sl_harness_last_error(h));
    cr_assert_eq(http_server_hits(srv), 2, "third attempt refused by the breaker");
    cr_assert(strstr(sl_harness_last_error(h), "circuit breaker open") != NULL);
    sl_harness_destroy(h);
}

Test(http_fetch, breaker_half_opens_after_cooldown)
{
    /* One request per fake second (rate limit). U1 and U2 fail: open at
     * t=1. U3 (t=2) and U4 (t=3) are refused; U5 (t=4, cooldown 2.5 s
     * passed) is the probe, succeeds and closes it; U6..U8 go through. */
    sl_fake_clock fc;
    sl_harness *h = make_fake(st_fmt("urls: ['%s', '%s', '%s']\nretry: {attempts: 1}\n"
                                     "rate_limit: {rate: 1/s, burst: 1}\n"
                                     "circuit_breaker: {failures: 2, cooldown: 2500ms}\n"
                                     "on_error: skip",
                                     url("/h1?fail=1"), url("/h2?fail=1"),
                                     url("/ok/{3..8}")), &fc);
    run_ok(h);
    cr_assert_eq(http_server_hits(srv), 2 + 4);
    cr_assert_eq(http_server_path_hits(srv, "/ok/3"), 0);
    cr_assert_eq(http_server_path_hits(srv, "/ok/4"), 0);
    cr_assert_eq(http_server_path_hits(srv, "/ok/5"), 1);
    cr_assert_eq(sl_harness_emitted_count(h), 4);
    cr_assert(strstr(st_payload(h, 0), "/ok/5") != NULL);
    cr_assert_eq(sl_harness_error_count(h), 4);
    expect_waited(&fc, 7 * SL_NS_PER_S);
    sl_harness_destroy(h);
}

/* ------------------------------------------------------------------ */
/* Rate limit                                                          */
/* ------------------------------------------------------------------ */

Test(http_fetch, rate_limit_spreads_requests_on_the_stage_clock)
{
    sl_fake_clock fc;
    sl_harness *h = make_fake(st_fmt("url: '%s'\nworkers: 3\n"
                                     "rate_limit: {rate: 10/s, burst: 1}",
                                     url("/p/{1..5}")), &fc);
    run_ok(h);
    cr_assert_eq(sl_harness_emitted_count(h), 5);
    expect_waited(&fc, 400 * SL_NS_PER_MS);   /* 5 at 10/s, burst 1 */
    sl_harness_destroy(h);
}

Test(http_fetch, rate_limit_spreads_requests_in_real_time)
{
    int64_t t0 = mono_ns();
    sl_harness *h = make(st_fmt("url: '%s'\nworkers: 4\n"
                                "rate_limit: {rate: 20/s, burst: 2}",
                                url("/p/{1..6}")));
    run_ok(h);
    cr_assert_eq(http_server_hits(srv), 6);
    /* burst 2: two at once, then one every 50 ms */
    for (size_t k = 2; k < 6; k++) {
        int64_t at = http_server_hit_time(srv, k) - t0;
        cr_assert_geq(at, (int64_t)(k - 1) * 50 * SL_NS_PER_MS, "hit %zu at %lld ns",
                      k, (long long)at);
    }
    sl_harness_destroy(h);
}

Test(http_fetch, retries_take_tokens_too)
{
    sl_fake_clock fc;
    sl_harness *h = make_fake(st_fmt("url: '%s'\nretry: {attempts: 3, backoff: 1ms, "
                                     "max_backoff: 1ms}\n"
                                     "rate_limit: {rate: 1/s, burst: 1}",
                                     url("/r?fail=2")), &fc);
    run_ok(h);
    cr_assert_eq(http_server_hits(srv), 3);
    expect_waited(&fc, 2 * SL_NS_PER_S);
    sl_harness_destroy(h);
}

/* ------------------------------------------------------------------ */
/* Timeouts and cancellation                                           */
/* ------------------------------------------------------------------ */

Test(http_fetch, timeout_names_the_url)
{
    const char *u = url("/slow?delay_ms=20000");
    sl_harness *h = make(st_fmt("url: '%s'\ntimeout: 150ms\nretry: {attempts: 1}", u));
    int64_t t0 = mono_ns();
    int rc = sl_harness_run(h);
    int64_t took = mono_ns() - t0;
    cr_assert_eq(rc, SL_ETIMEDOUT, "%s", sl_error_name(rc));
    const char *e = sl_harness_last_error(h);
    cr_assert(strstr(e, "timed out after 150ms") != NULL, "%s", e);
    cr_assert(strstr(e, u) != NULL, "%s", e);
    cr_assert(strstr(e, "GET ") == e, "%s", e);
    cr_assert_lt(took, 10 * SL_NS_PER_S, "ended at the timeout, not the answer");
    sl_harness_destroy(h);
}

Test(http_fetch, timeouts_are_retried)
{
    sl_harness *h = make(st_fmt("url: '%s'\ntimeout: 100ms\nretry: {attempts: 2, backoff: 1ms}",
                                url("/slow?delay_ms=3000")));
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, SL_ETIMEDOUT);
    cr_assert_eq(http_server_hits(srv), 2);
    cr_assert(strstr(sl_harness_last_error(h), "attempt 2 of 2") != NULL);
    sl_harness_destroy(h);
}

typedef struct canceller {
    sl_harness *h;
    bool stop;              /* stop (graceful) instead of cancel */
    int64_t at;             /* when it acted */
} canceller;

static void *cancel_after_hit(void *arg)
{
    canceller *c = arg;
    if (http_server_wait_hits(srv, 1, 10000) != 0)
        return NULL;
    c->at = mono_ns();
    if (c->stop)
        sl_harness_stop(c->h);
    else
        sl_harness_cancel(c->h, "test cancels");
    return NULL;
}

Test(http_fetch, cancellation_aborts_a_hanging_request_at_once)
{
    sl_harness *h = make(st_fmt("url: '%s'\ntimeout: 60s", url("/hang?hang=1")));
    canceller c = {.h = h};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, cancel_after_hit, &c), 0);
    int rc = sl_harness_run(h);
    int64_t end = mono_ns();
    pthread_join(t, NULL);
    cr_assert_neq(c.at, 0, "the server saw the request");
    cr_assert_eq(rc, SL_ECANCELED, "%s", sl_error_name(rc));
    cr_assert_lt(end - c.at, 500 * SL_NS_PER_MS, "took %lld ns",
                 (long long)(end - c.at));
    cr_assert_eq(sl_harness_emitted_count(h), 0);
    sl_harness_destroy(h);
}

Test(http_fetch, stop_request_ends_the_fetch_cleanly)
{
    sl_harness *h = make(st_fmt("urls: ['%s', '%s']\nworkers: 2\ntimeout: 60s",
                                url("/hang?hang=1"), url("/hang2?hang=1")));
    canceller c = {.h = h, .stop = true};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, cancel_after_hit, &c), 0);
    int rc = sl_harness_run(h);
    int64_t end = mono_ns();
    pthread_join(t, NULL);
    cr_assert_eq(rc, 0, "a stop is a clean end: %s", sl_harness_last_error(h));
    cr_assert_lt(end - c.at, 500 * SL_NS_PER_MS);
    sl_harness_destroy(h);
}

Test(http_fetch, cancellation_ends_a_backoff_wait)
{
    sl_harness *h = make(st_fmt("url: '%s'\nretry: {attempts: 2, backoff: 60s, "
                                "max_backoff: 60s}", url("/f?fail=5")));
    canceller c = {.h = h};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, cancel_after_hit, &c), 0);
    int rc = sl_harness_run(h);
    int64_t end = mono_ns();
    pthread_join(t, NULL);
    cr_assert_eq(rc, SL_ECANCELED);
    cr_assert_lt(end - c.at, 1000 * SL_NS_PER_MS);
    sl_harness_destroy(h);
}

/* ------------------------------------------------------------------ */
/* on_error and limits                                                 */
/* ------------------------------------------------------------------ */

Test(http_fetch, skip_counts_failures_and_keeps_going)
{
    sl_harness *h = make(st_fmt("urls: ['%s', '%s', '%s']\non_error: skip",
                                url("/a"), url("/b?status=404"), url("/c")));
    run_ok(h);
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_assert(strstr(st_payload(h, 0), "/a") != NULL);
    cr_assert(strstr(st_payload(h, 1), "/c") != NULL);
    cr_assert_eq(sl_harness_error_count(h), 1);
    sl_harness_destroy(h);
}

Test(http_fetch, dead_letter_writes_the_failed_url)
{
    const char *bad = url("/b?status=410");
    sl_harness *h = make(st_fmt("urls: ['%s', '%s']\non_error: dead_letter", bad, url("/c")));
    run_ok(h);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_assert_eq(sl_harness_error_count(h), 1);
    cr_assert_eq(sl_harness_rejected_count(h), 1);
    sl_record *r = sl_harness_rejected(h, 0);
    cr_assert_str_eq(sl_value_get_string(sl_record_get(r, "url"), NULL), bad);
    const sl_position *pos = sl_record_position(r);
    cr_assert_not_null(pos);
    cr_assert_str_eq(pos->locator, bad);
    cr_assert_eq(pos->seq, 1);
    const char *why = sl_harness_rejected_reason(h, 0);
    cr_assert(strstr(why, "HTTP 410") != NULL, "%s", why);
    cr_assert(strstr(why, bad) != NULL, "%s", why);
    sl_harness_destroy(h);
}

Test(http_fetch, body_larger_than_max_body_fails)
{
    sl_harness *h = make(st_fmt("url: '%s'\nmax_body: 1KiB", url("/big?size=5000")));
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, SL_ELIMIT, "%s", sl_error_name(rc));
    cr_assert(strstr(sl_harness_last_error(h), "max_body") != NULL);
    cr_assert_eq(http_server_hits(srv), 1);
    sl_harness_destroy(h);
}

Test(http_fetch, large_bodies_arrive_whole)
{
    sl_harness *h = make(st_fmt("url: '%s'", url("/big?size=300000")));
    run_ok(h);
    size_t len = 0;
    const char *p = sl_record_payload(sl_harness_emitted(h, 0), &len);
    cr_assert_eq(len, 300000);
    cr_assert_eq(p[0], 'x');
    cr_assert_eq(p[299999], 'x');
    sl_harness_destroy(h);
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

static void init_fails(const char *yaml, int code, const char *needle)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_http_fetch, yaml, &h), 0, "%s",
                 h != NULL ? sl_harness_config_error(h) : "");
    int rc = sl_harness_init(h);
    cr_assert_eq(rc, code, "%s: got %s", yaml, sl_error_name(rc));
    cr_assert(strstr(sl_harness_last_error(h), needle) != NULL, "%s: %s", yaml,
              sl_harness_last_error(h));
    sl_harness_destroy(h);
}

Test(http_fetch, config_errors)
{
    init_fails("{}", SL_ECONFIG, "needs 'url' or 'urls'");
    init_fails("url: http://a\nurls: [http://b]", SL_ECONFIG, "not both");
    init_fails("url: ''", SL_ECONFIG, "empty URL");
    init_fails("url: http://a\nretry: {attempts: 0}", SL_ECONFIG, "'attempts'");
    init_fails("url: http://a\nretry: {atempts: 2}", SL_ECONFIG, "unknown key 'atempts'");
    init_fails("url: http://a\nretry: {backoff: 2s, max_backoff: 1s}", SL_ECONFIG,
               "max_backoff");
    init_fails("url: http://a\nrate_limit: {burst: 2}", SL_ECONFIG, "'rate'");
    init_fails("url: http://a\nrate_limit: {rate: fast}", SL_ECONFIG, "'rate'");
    init_fails("url: http://a\ncircuit_breaker: {cooldown: soon}", SL_ECONFIG,
               "'cooldown'");
    init_fails("url: http://a\nheaders: {'Bad Name': x}", SL_ECONFIG, "header name");
    init_fails("url: 'http://a/{1..999999999}/{1..9}'", SL_ECONFIG, "more than");
}

Test(http_fetch, bad_option_values_are_config_errors)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_http_fetch, "url: x\nmethod: FETCH", &h),
                 SL_ECONFIG);
    cr_assert(strstr(sl_harness_config_error(h), "method") != NULL);
    sl_harness_destroy(h);
    cr_assert_eq(sl_harness_create(&sl_stage_http_fetch, "url: x\nworkers: 0", &h),
                 SL_ECONFIG);
    sl_harness_destroy(h);
}

Test(http_fetch, unsupported_scheme_is_not_retried)
{
    sl_harness *h = make("url: ftp://127.0.0.1/x\nretry: {attempts: 3, backoff: 1ms}");
    int rc = sl_harness_run(h);
    cr_assert_eq(rc, SL_EINVAL, "%s: %s", sl_error_name(rc), sl_harness_last_error(h));
    cr_assert_eq(sl_harness_retry_count(h), 0);
    sl_harness_destroy(h);
}
