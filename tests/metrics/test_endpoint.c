/*
 * The metrics endpoint on loopback: addresses, errors, routes, status
 * codes and bodies, with a snapshot function the test controls.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/endpoint.h"
#include "sluice/error.h"

static sl__stage_snapshot stage = {
    .name = "only", .type = "null", .kind = SL_STAGE_SINK, .state = "running",
    .workers = 1, .records_in = 42, .records_out = 42, .queue_capacity = 8,
};
static _Atomic int calls;   /* bumped on the server's thread */
static int fail_with;

static int fake_snapshot(void *arg, sl__run_snapshot *out)
{
    calls++;
    if (fail_with != 0)
        return fail_with;
    memset(out, 0, sizeof(*out));
    out->pipeline = arg;
    out->status = SL__RUN_RUNNING;
    out->elapsed_s = 2.5;
    out->cause = "";
    out->n_stages = 1;
    out->stages = calloc(1, sizeof(*out->stages));  /* freed by fini */
    cr_assert_not_null(out->stages);
    out->stages[0] = stage;
    return 0;
}

typedef struct reply {
    long code;
    char type[128];
    char body[65536];
    size_t len;
} reply;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    size_t len = size * n;
    if (r->len + len >= sizeof(r->body))
        return 0;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

static void get(const char *addr, const char *path, const char *method,
                reply *r)
{
    memset(r, 0, sizeof(*r));
    char url[256];
    snprintf(url, sizeof(url), "http://%s%s", addr, path);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (method != NULL) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    }
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "GET %s", url);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
    char *type = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
    snprintf(r->type, sizeof(r->type), "%s", type != NULL ? type : "");
    curl_easy_cleanup(c);
}

static sl__metrics_server *start(const char *addr)
{
    char err[256] = "";
    sl__metrics_server *srv = NULL;
    int rc = sl__metrics_server_start(addr, fake_snapshot, "demo", err,
                                      sizeof(err), &srv);
    cr_assert_eq(rc, 0, "%s: %s", addr, err);
    return srv;
}

Test(endpoint, routes)
{
    sl__metrics_server *srv = start("127.0.0.1:0");
    const char *addr = sl__metrics_server_address(srv);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", sl__metrics_server_port(srv));
    cr_expect_str_eq(addr, want);
    cr_expect_gt(sl__metrics_server_port(srv), 0);

    reply r;
    get(addr, "/metrics", NULL, &r);
    cr_expect_eq(r.code, 200);
    cr_expect_str_eq(r.type, "text/plain; version=0.0.4; charset=utf-8");
    cr_expect(strstr(r.body, "sluice_stage_records_in_total{pipeline=\"demo\","
                             "stage=\"only\"} 42\n") != NULL, "%s", r.body);

    get(addr, "/snapshot", NULL, &r);
    cr_expect_eq(r.code, 200);
    cr_expect_str_eq(r.type, "application/json");
    cr_expect(strncmp(r.body, "{\"pipeline\":\"demo\",\"status\":\"running\","
                              "\"elapsed_s\":2.5,", 54) == 0, "%s", r.body);

    get(addr, "/health", NULL, &r);
    cr_expect_eq(r.code, 200);
    cr_expect(strstr(r.body, "\"status\":\"running\"") != NULL, "%s", r.body);
    stage.state = "done";
    stage.has_breaker = true;
    stage.breaker_state = "open";
    get(addr, "/health", NULL, &r);
    cr_expect_eq(r.code, 200);
    cr_expect(strstr(r.body, "\"status\":\"degraded\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "\"breaker\":\"open\",\"degraded\":true") != NULL,
              "%s", r.body);

    get(addr, "/", NULL, &r);
    cr_expect_eq(r.code, 200);
    cr_expect(strstr(r.body, "/metrics") != NULL);
    get(addr, "/metrics/x", NULL, &r);
    cr_expect_eq(r.code, 404);
    get(addr, "/metrics", "POST", &r);
    cr_expect_eq(r.code, 405);
    get(addr, "/metrics", "DELETE", &r);
    cr_expect_eq(r.code, 405);

    fail_with = SL_ENOMEM;
    get(addr, "/snapshot", NULL, &r);
    cr_expect_eq(r.code, 500);
    fail_with = 0;
    cr_expect_eq(calls, 5, "one snapshot per /metrics, /snapshot, /health");
    sl__metrics_server_stop(srv);
    sl__metrics_server_stop(NULL);
}

static int debug_fail;

static int fake_stages(void *arg, sl_buf *out)
{
    if (debug_fail != 0)
        return debug_fail;
    const char *text = "sluice: pipeline demo, 1.0s, running\n";
    cr_assert_str_eq(arg, "demo");
    return sl_buf_append(out, text, strlen(text));
}

Test(endpoint, debug_stages)
{
    char err[256] = "";
    sl__metrics_server *srv = NULL;
    cr_assert_eq(sl__metrics_server_start_debug("127.0.0.1:0", fake_snapshot,
                                                fake_stages, "demo", err,
                                                sizeof(err), &srv), 0, "%s",
                 err);
    const char *addr = sl__metrics_server_address(srv);
    reply r;
    get(addr, "/debug/stages", NULL, &r);
    cr_expect_eq(r.code, 200);
    cr_expect_str_eq(r.type, "text/plain; charset=utf-8");
    cr_expect_str_eq(r.body, "sluice: pipeline demo, 1.0s, running\n");
    get(addr, "/debug/stages", "POST", &r);
    cr_expect_eq(r.code, 405);
    debug_fail = SL_ENOMEM;
    get(addr, "/debug/stages", NULL, &r);
    cr_expect_eq(r.code, 500);
    debug_fail = 0;
    get(addr, "/", NULL, &r);
    cr_expect(strstr(r.body, "/debug/stages") != NULL, "%s", r.body);
    cr_expect_eq(calls, 0, "no snapshot is taken for /debug/stages");
    sl__metrics_server_stop(srv);

    /* without a text function the path does not exist */
    srv = start("127.0.0.1:0");
    get(sl__metrics_server_address(srv), "/debug/stages", NULL, &r);
    cr_expect_eq(r.code, 404);
    sl__metrics_server_stop(srv);
}

Test(endpoint, empty_host_is_loopback)
{
    sl__metrics_server *srv = start(":0");
    cr_expect(strncmp(sl__metrics_server_address(srv), "127.0.0.1:", 10) == 0,
              "%s", sl__metrics_server_address(srv));
    sl__metrics_server_stop(srv);
}

Test(endpoint, ipv6_loopback)
{
    sl__metrics_server *srv = start("[::1]:0");
    const char *addr = sl__metrics_server_address(srv);
    cr_expect(strncmp(addr, "[::1]:", 6) == 0, "%s", addr);
    reply r;
    get(addr, "/health", NULL, &r);
    cr_expect_eq(r.code, 200);
    sl__metrics_server_stop(srv);
}

static int start_err(const char *addr, char *err, size_t size)
{
    static int marker;
    sl__metrics_server *srv = (sl__metrics_server *)&marker;  /* untouched */
    int rc = sl__metrics_server_start(addr, fake_snapshot, "demo", err, size,
                                      &srv);
    cr_expect_eq((void *)srv, (void *)&marker, "*out untouched on failure");
    return rc;
}

Test(endpoint, bad_addresses)
{
    char err[256];
    cr_expect_eq(start_err("nonsense", err, sizeof(err)), SL_EINVAL);
    cr_expect_str_eq(err, "'nonsense' is not HOST:PORT (e.g. 127.0.0.1:9464)");
    cr_expect_eq(start_err("127.0.0.1:", err, sizeof(err)), SL_EINVAL);
    cr_expect_eq(start_err("127.0.0.1:70000", err, sizeof(err)), SL_EINVAL);
    cr_expect_eq(start_err("127.0.0.1:9x", err, sizeof(err)), SL_EINVAL);
    cr_expect_eq(start_err("::1:9464", err, sizeof(err)), SL_EINVAL,
                 "a bare IPv6 address needs brackets");
}

Test(endpoint, busy_port)
{
    sl__metrics_server *srv = start("127.0.0.1:0");
    char addr[64], err[256], want[128];
    snprintf(addr, sizeof(addr), "%s", sl__metrics_server_address(srv));
    cr_expect_eq(start_err(addr, err, sizeof(err)), SL_EIO);
    snprintf(want, sizeof(want), "cannot listen on %s: Address already in use",
             addr);
    cr_expect_str_eq(err, want);
    sl__metrics_server_stop(srv);
    /* stopping released the port */
    sl__metrics_server *again = start(addr);
    sl__metrics_server_stop(again);
}
