/*
 * The `http_server` source, driven by real HTTP clients (libcurl) on an
 * ephemeral loopback port. The stage's run() goes on a thread of its own;
 * what it emitted is read after it returns.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "stages/http_server.h"
#include "stages/stage_test.h"

extern const sl_stage_desc sl_stage_http_server;

TestSuite(http_server, .init = st_setup, .fini = st_teardown);

typedef struct server {
    sl_harness *h;
    pthread_t thread;
    int rc;
    int port;
} server;

static void *server_main(void *arg)
{
    server *s = arg;
    s->rc = sl_harness_run(s->h);
    return NULL;
}

/* Start the stage with these options (listen is added). The socket is
 * bound by init, so clients may connect at once. */
static void server_start(server *s, const char *yaml, const sl_clock *clock)
{
    char opts[1024];
    snprintf(opts, sizeof(opts), "listen: 127.0.0.1:0\n%s", yaml != NULL ? yaml : "");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = sl_harness_create(&sl_stage_http_server, opts, &s->h);
    cr_assert_eq(rc, 0, "create: %s", sl_harness_config_error(s->h));
    if (clock != NULL)
        sl_harness_set_clock(s->h, clock);
    rc = sl_harness_init(s->h);
    cr_assert_eq(rc, 0, "init: %s", sl_harness_last_error(s->h));
    s->port = sl__http_server_port(sl_harness_state(s->h));
    cr_assert_gt(s->port, 0);
    cr_assert_eq(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(server *s)
{
    sl_harness_stop(s->h);
    cr_assert_eq(pthread_join(s->thread, NULL), 0);
    cr_assert_eq(s->rc, 0, "run: %s", sl_harness_last_error(s->h));
}

typedef struct reply {
    long status;
    char body[512];
    size_t len;
    long retry_after;   /* -1: none */
    bool allow_post;
} reply;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    size_t len = size * n;
    size_t room = sizeof(r->body) - 1 - r->len;
    size_t take = len < room ? len : room;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        r->retry_after = strtol(p + 12, NULL, 10);
    if (len > 6 && strncasecmp(p, "Allow:", 6) == 0 && strstr(p, "POST") != NULL)
        r->allow_post = true;
    return len;
}

/* One request. method NULL: POST when body is given, else GET. Returns
 * false when no HTTP answer came (connection refused or reset). */
static bool http(int port, const char *method, const char *path,
                 const char *content_type, const char *extra_header,
                 const char *body, size_t body_len, reply *out)
{
    memset(out, 0, sizeof(*out));
    out->retry_after = -1;
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *hdrs = NULL;
    char ct[128];
    if (content_type != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        hdrs = curl_slist_append(hdrs, ct);
    } else {
        hdrs = curl_slist_append(hdrs, "Content-Type:");
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (extra_header != NULL)
        hdrs = curl_slist_append(hdrs, extra_header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    if (method != NULL)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return cc == CURLE_OK;
}

static long post(int port, const char *body, reply *out)
{
    cr_assert(http(port, NULL, "/", "application/x-ndjson", NULL, body, strlen(body), out),
              "no answer");
    return out->status;
}

/* --- many clients, every record once --- */

#define CLIENTS 6
#define REQUESTS 15
#define PER_REQUEST 10

typedef struct client_arg {
    int port;
    int client;
    int ok;
} client_arg;

static void *client_main(void *arg)
{
    client_arg *a = arg;
    for (int r = 0; r < REQUESTS; r++) {
        char body[2048];
        size_t n = 0;
        for (int k = 0; k < PER_REQUEST; k++)
            n += (size_t)snprintf(body + n, sizeof(body) - n,
                                  "{\"c\":%d,\"r\":%d,\"k\":%d}\n", a->client, r, k);
        reply rep;
        if (http(a->port, NULL, "/", "application/x-ndjson", NULL, body, n, &rep) &&
            rep.status == 200 && strcmp(rep.body, "{\"accepted\":10}") == 0)
            a->ok++;
    }
    return NULL;
}

Test(http_server, concurrent_clients_records_arrive_exactly_once)
{
    server s;
    server_start(&s, NULL, NULL);
    pthread_t t[CLIENTS];
    client_arg args[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        args[i] = (client_arg){.port = s.port, .client = i, .ok = 0};
        cr_assert_eq(pthread_create(&t[i], NULL, client_main, &args[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(args[i].ok, REQUESTS, "client %d: %d of %d accepted", i, args[i].ok, REQUESTS);
    }
    server_stop(&s);
    size_t total = CLIENTS * REQUESTS * PER_REQUEST;
    cr_assert_eq(sl_harness_emitted_count(s.h), total);
    static unsigned char seen[CLIENTS][REQUESTS][PER_REQUEST];
    for (size_t i = 0; i < total; i++) {
        sl_record *rec = sl_harness_emitted(s.h, i);
        int64_t c = sl_value_get_int(sl_record_get(rec, "c"));
        int64_t r = sl_value_get_int(sl_record_get(rec, "r"));
        int64_t k = sl_value_get_int(sl_record_get(rec, "k"));
        cr_assert(c >= 0 && c < CLIENTS && r >= 0 && r < REQUESTS && k >= 0 && k < PER_REQUEST);
        cr_assert_eq(seen[c][r][k]++, 0, "record %lld/%lld/%lld twice", (long long)c,
                     (long long)r, (long long)k);
        cr_assert_str_eq(sl_value_get_string(sl_record_meta(rec, "client"), NULL), "127.0.0.1");
        cr_assert_not_null(sl_record_meta(rec, "request_id"));
        cr_assert_gt(sl_value_get_int(sl_record_meta(rec, "received_ns")), 0);
    }
    sl_harness_destroy(s.h);
}

/* --- bodies --- */

Test(http_server, array_and_single_object_bodies)
{
    server s;
    server_start(&s, "path: /ingest", NULL);
    reply r;
    cr_assert(http(s.port, NULL, "/ingest", "application/json", NULL,
                   "[{\"a\":1},{\"a\":2}]", 17, &r));
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"accepted\":2}");
    const char *pretty = "{\n  \"a\": 3,\n  \"b\": [1, 2]\n}\n";
    cr_assert(http(s.port, NULL, "/ingest", "application/json; charset=utf-8", NULL,
                   pretty, strlen(pretty), &r));
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"accepted\":1}");
    server_stop(&s);
    cr_assert_eq(sl_harness_emitted_count(s.h), 3);
    cr_assert_str_eq(st_fields(s.h, 2), "{\"a\":3,\"b\":[1,2]}");
    sl_harness_destroy(s.h);
}

Test(http_server, bad_json_is_400_with_the_line_and_nothing_is_kept)
{
    server s;
    server_start(&s, NULL, NULL);
    reply r;
    cr_assert_eq(post(s.port, "{\"a\":1}\n\n{\"a\":2}\n{\"a\": oops}\n{\"a\":4}\n", &r), 400);
    cr_assert_not_null(strstr(r.body, "\"line\":4"), "%s", r.body);
    cr_assert_eq(post(s.port, "{\"a\":1}\n[1,2]\n", &r), 400);
    cr_assert_not_null(strstr(r.body, "\"line\":2"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "JSON object"), "%s", r.body);
    cr_assert_eq(post(s.port, "{\"ok\":true}\n", &r), 200);
    server_stop(&s);
    cr_assert_eq(sl_harness_emitted_count(s.h), 1, "only the good request's record");
    cr_assert_str_eq(st_fields(s.h, 0), "{\"ok\":true}");
    sl_harness_destroy(s.h);
}

Test(http_server, body_parser_reports_lines)
{
    sl_value *v = NULL;
    sl__hs_body_error e;
    const char *pretty_bad = "{\n \"a\": 1,\n \"b\": ?\n}";
    cr_assert_eq(sl__hs_parse_body(pretty_bad, strlen(pretty_bad), &v, &e), SL_EPARSE);
    cr_assert_eq(e.line, 3);
    cr_assert_eq(sl__hs_parse_body("[{\"a\":1},\n 7]", 13, &v, &e), SL_EPARSE);
    cr_assert_not_null(strstr(e.text, "element 2"));
    cr_assert_eq(sl__hs_parse_body("  \n", 3, &v, &e), 0);
    cr_assert_eq(sl_array_len(v), 0);
    sl_value_unref(v);
}

/* --- refusals --- */

Test(http_server, wrong_method_type_path_and_oversize_are_refused)
{
    server s;
    server_start(&s, "max_body: 100", NULL);
    reply r;
    cr_assert(http(s.port, "GET", "/", NULL, NULL, NULL, 0, &r));
    cr_assert_eq(r.status, 405);
    cr_assert(r.allow_post);
    cr_assert(http(s.port, "PUT", "/", "application/json", NULL, "{}", 2, &r));
    cr_assert_eq(r.status, 405);
    cr_assert(http(s.port, NULL, "/", "text/csv", NULL, "a,b", 3, &r));
    cr_assert_eq(r.status, 415);
    cr_assert(http(s.port, NULL, "/", "application/x-www-form-urlencoded", NULL, "a=b", 3, &r));
    cr_assert_eq(r.status, 415);
    cr_assert(http(s.port, NULL, "/elsewhere", "application/json", NULL, "{}", 2, &r));
    cr_assert_eq(r.status, 404);
    char big[300];
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"a\":1}", 7);
    cr_assert(http(s.port, NULL, "/", "application/json", NULL, big, sizeof(big), &r));
    cr_assert_eq(r.status, 413);
    /* Chunked: no Content-Length, the limit applies as the body arrives. */
    cr_assert(http(s.port, NULL, "/", "application/json", "Transfer-Encoding: chunked",
                   big, sizeof(big), &r));
    cr_assert_eq(r.status, 413);
    cr_assert(http(s.port, NULL, "/health", NULL, NULL, NULL, 0, &r));
    cr_assert_eq(r.status, 200);
    cr_assert_eq(post(s.port, "{\"a\":1}", &r), 200);
    server_stop(&s);
    cr_assert_eq(sl_harness_emitted_count(s.h), 1);
    /* the stage's own metrics: every answer by code */
    cr_assert_eq(sl_harness_metric(s.h, "requests", "405"), 2);
    cr_assert_eq(sl_harness_metric(s.h, "requests", "415"), 2);
    cr_assert_eq(sl_harness_metric(s.h, "requests", "404"), 1);
    cr_assert_eq(sl_harness_metric(s.h, "requests", "413"), 2);
    cr_assert_eq(sl_harness_metric(s.h, "requests", "200"), 2, "/health and the POST");
    cr_assert_eq(sl_harness_metric(s.h, "records_accepted", NULL), 1);
    cr_assert_eq(sl_harness_metric(s.h, "in_flight_requests", NULL), 0);
    /* bodies read: the chunked one (refused as it grew) and the good one;
     * the others were answered from their headers */
    cr_assert_eq(sl_harness_metric(s.h, "bytes_received", NULL), 300 + 7);
    sl_harness_destroy(s.h);
}

Test(http_server, bad_options_fail_init)
{
    const char *bad[] = {
        "listen: nowhere",
        "path: ingest",
        "client_rate: 5/s\nclient_key: cookie",
        "auth_header: X-Api-Key",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_harness *h = NULL;
        cr_assert_eq(sl_harness_create(&sl_stage_http_server, bad[i], &h), 0);
        cr_assert_eq(sl_harness_init(h), SL_ECONFIG, "%s", bad[i]);
        sl_harness_destroy(h);
    }
}

Test(http_server, unknown_keys_get_401)
{
    st_write_str("keys", "# clients\nalpha\n\nbeta\n");
    server s;
    server_start(&s, st_fmt("auth_header: X-Api-Key\nauth_keys_file: %s", st_path("keys")), NULL);
    reply r;
    cr_assert(http(s.port, NULL, "/", "application/json", NULL, "{}", 2, &r));
    cr_assert_eq(r.status, 401);
    cr_assert(http(s.port, NULL, "/", "application/json", "X-Api-Key: gamma", "{}", 2, &r));
    cr_assert_eq(r.status, 401);
    cr_assert(http(s.port, NULL, "/", "application/json", "X-Api-Key: beta", "{}", 2, &r));
    cr_assert_eq(r.status, 200);
    server_stop(&s);
    cr_assert_eq(sl_harness_emitted_count(s.h), 1);
    sl_harness_destroy(s.h);
}

/* The limiter reads a fake clock that never moves: a bucket never refills,
 * so the counts are exact. */
Test(http_server, per_client_limit_holds_a_noisy_client_not_a_quiet_one)
{
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    server s;
    server_start(&s, "client_rate: 2/s\nclient_burst: 3\nclient_key: header:X-Api-Key",
                 &fc.clock);
    reply r;
    int ok = 0, limited = 0;
    for (int i = 0; i < 10; i++) {
        cr_assert(http(s.port, NULL, "/", "application/json", "X-Api-Key: noisy",
                       "{\"who\":\"noisy\"}", 15, &r));
        if (r.status == 200) {
            ok++;
        } else {
            cr_assert_eq(r.status, 429);
            cr_assert_eq(r.retry_after, 1, "Retry-After %ld", r.retry_after);
            limited++;
        }
    }
    cr_assert_eq(ok, 3);
    cr_assert_eq(limited, 7);
    for (int i = 0; i < 3; i++) {
        cr_assert(http(s.port, NULL, "/", "application/json", "X-Api-Key: quiet",
                       "{\"who\":\"quiet\"}", 15, &r));
        cr_assert_eq(r.status, 200, "quiet client request %d: %ld", i, r.status);
    }
    /* Time passes: the noisy client's bucket holds one token again. */
    sl_fake_clock_advance(&fc, SL_NS_PER_S / 2);
    cr_assert(http(s.port, NULL, "/", "application/json", "X-Api-Key: noisy", "{}", 2, &r));
    cr_assert_eq(r.status, 200);
    server_stop(&s);
    cr_assert_eq(sl_harness_emitted_count(s.h), 7);
    cr_assert_eq(sl_harness_error_count(s.h), 7, "429s counted as errors");
    cr_assert_eq(sl_harness_metric(s.h, "requests", "429"), 7);
    cr_assert_eq(sl_harness_metric(s.h, "refused", "rate_limit"), 7);
    cr_assert_eq(sl_harness_metric(s.h, "requests", "200"), 7);
    cr_assert_eq(sl_harness_metric(s.h, "client_limiters", NULL), 2, "noisy and quiet");
    sl_harness_destroy(s.h);
}

/* --- stopping --- */

typedef struct loader {
    int port;
    atomic_int *accepted;
    atomic_bool *go_on;
    int mine;
} loader;

static void *loader_main(void *arg)
{
    loader *l = arg;
    const char *body = "{\"x\":1}\n{\"x\":2}\n{\"x\":3}\n{\"x\":4}\n{\"x\":5}\n";
    while (atomic_load(l->go_on)) {
        reply r;
        if (!http(l->port, NULL, "/", "application/x-ndjson", NULL, body, strlen(body), &r))
            break;   /* the listener is gone */
        if (r.status == 200) {
            l->mine += 5;
            atomic_fetch_add(l->accepted, 5);
        } else {
            cr_assert_eq(r.status, 503);
            cr_assert_geq(r.retry_after, 1);
            break;
        }
    }
    return NULL;
}

Test(http_server, stop_during_uploads_loses_no_accepted_record)
{
    server s;
    server_start(&s, NULL, NULL);
    atomic_int accepted = 0;
    atomic_bool go_on = true;
    loader l[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        l[i] = (loader){.port = s.port, .accepted = &accepted, .go_on = &go_on, .mine = 0};
        cr_assert_eq(pthread_create(&t[i], NULL, loader_main, &l[i]), 0);
    }
    while (atomic_load(&accepted) < 200)
        sched_yield();
    server_stop(&s);                   /* while the loaders still post */
    atomic_store(&go_on, false);
    int sum = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        sum += l[i].mine;
    }
    cr_assert_geq(sum, 200);
    cr_assert_eq(sl_harness_emitted_count(s.h), (size_t)sum,
                 "every record answered 200 was emitted (%d)", sum);
    sl_harness_destroy(s.h);
}

/* --- a blocked pipeline: the engine's channels fill, clients get 503 --- */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "engine/diag.h"
#include "engine/run.h"

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;

/* A sink that stores nothing until the gate opens. */
static int gate_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    sl_record_stored(sc, rec);
    return 0;
}

static const sl_stage_desc gate_desc = {
    SL_STAGE_DESC_HEADER, .name = "gate", .kind = SL_STAGE_SINK,
    .state_size = 8, .process = gate_process,
};

/* A loopback port nothing listens on now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Workers run init() on their own threads after sl__run_start: wait until
 * the stage's socket accepts connections. */
static void wait_listening(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (long tries = 0;; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (rc == 0)
            return;
        cr_assert_lt(tries, 1000000, "port %d never listened", port);
        sched_yield();
    }
}

Test(http_server, blocked_pipeline_answers_503_and_keeps_every_accepted_record)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int port = free_port();
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "test";
    cfg.name = "test";
    cfg.settings.channel_capacity = 1;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    sl_stage_conf conf[2];
    memset(conf, 0, sizeof(conf));
    conf[0].name = "receive";
    conf[0].desc = &sl_stage_http_server;
    conf[0].workers = 1;
    conf[1].name = "gate";
    conf[1].desc = &gate_desc;
    conf[1].workers = 1;
    size_t in_gate[1] = {0};
    sl__run_stage st[2];
    memset(st, 0, sizeof(st));
    char opts[128];
    snprintf(opts, sizeof(opts), "listen: 127.0.0.1:%d\nqueue: 1\naccept_timeout: 100ms", port);
    st[0].conf = &conf[0];
    st[0].options_yaml = opts;
    st[1].conf = &conf[1];
    st[1].n_inputs = 1;
    st[1].inputs = in_gate;
    sl__run_opts o = {.cfg = &cfg, .n_stages = 2, .stages = st};
    sl_diag *diag = sl__diag_create();
    sl__run *run = NULL;
    int rc = sl__run_create(&o, diag, &run);
    if (rc != 0)
        sl__diag_print(diag, stderr);
    cr_assert_eq(rc, 0);
    cr_assert_eq(sl__run_start(run), 0);
    wait_listening(port);

    char body[100 * 16];
    size_t n = 0;
    for (int k = 0; k < 100; k++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"k\":%d}\n", k);
    int accepted = 0, refused = 0;
    for (int i = 0; i < 200 && refused == 0; i++) {
        reply r;
        cr_assert(http(port, NULL, "/", "application/x-ndjson", NULL, body, n, &r));
        if (r.status == 200) {
            accepted += 100;
        } else {
            cr_assert_eq(r.status, 503);
            cr_assert_geq(r.retry_after, 1);
            refused++;
        }
    }
    cr_assert_eq(refused, 1, "a blocked pipeline never answered 503");
    reply h;
    cr_assert(http(port, "GET", "/health", NULL, NULL, NULL, 0, &h));
    cr_assert_eq(h.status, 503);
    cr_assert_str_eq(h.body, "{\"status\":\"degraded\"}");

    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    sl__run_stop(run, false);
    sl__run_result res;
    sl__run_wait(run, &res);
    cr_assert_eq(res.exit_code, 0, "%s", res.cause);
    cr_assert_eq(SL__RUN_COUNTER(run, 1, stored), (uint64_t)accepted,
                 "%d records answered 200", accepted);
    cr_assert_geq(SL__RUN_COUNTER(run, 0, errors), 1, "the 503 is counted");
    sl__run_destroy(run);
    sl__diag_destroy(diag);
}

Test(http_server, nested_rate_limit_and_auth_options)
{
    st_write_str("keys", "k1\nk2\n");
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    server s;
    server_start(&s, st_fmt("rate_limit_per_client: {rate: 1/s, burst: 2, key: \"header:X-Api-Key\"}\n"
                            "auth: {header: X-Api-Key, keys_file: %s}", st_path("keys")),
                 &fc.clock);
    reply r;
    cr_assert(http(s.port, NULL, "/", "application/json", "X-Api-Key: nope", "{}", 2, &r));
    cr_assert_eq(r.status, 401);
    long want[] = {200, 200, 429};
    for (int i = 0; i < 3; i++) {
        cr_assert(http(s.port, NULL, "/", "application/json", "X-Api-Key: k1", "{}", 2, &r));
        cr_assert_eq(r.status, want[i], "request %d: %ld", i, r.status);
    }
    cr_assert(http(s.port, NULL, "/", "application/json", "X-Api-Key: k2", "{}", 2, &r));
    cr_assert_eq(r.status, 200);
    server_stop(&s);
    cr_assert_eq(sl_harness_emitted_count(s.h), 3);
    sl_harness_destroy(s.h);

    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_http_server,
                                   "rate_limit_per_client: {burst: 2, colour: red}", &h), 0);
    cr_assert_eq(sl_harness_init(h), SL_ECONFIG);
    sl_harness_destroy(h);
}

/* --- hostile clients: huge headers, slow bodies --- */

/* A raw TCP connection to the server. */
static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void raw_send(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;   /* the server may close early: that is its answer */
        data += n;
        len -= (size_t)n;
    }
}

/* Read until the server closes the connection; the status line's code,
 * or 0 when it closed without answering. */
static int raw_answer(int fd)
{
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof(buf) - 1)
            got = 64;   /* keep the status line, drop the rest */
    }
    buf[got] = '\0';
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
        code = 0;
    return code;
}

Test(http_server, huge_headers_are_refused_and_others_go_on)
{
    server s;
    server_start(&s, NULL, NULL);
    int fd = raw_connect(s.port);
    size_t big = 256 * 1024;
    char *req = malloc(big + 256);
    cr_assert_not_null(req);
    int n = snprintf(req, 256, "POST / HTTP/1.1\r\nHost: x\r\nX-Junk: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    raw_send(fd, req, (size_t)n + big + 4);
    int code = raw_answer(fd);
    close(fd);
    free(req);
    cr_assert(code == 431 || code == 413 || code == 400 || code == 0,
              "huge headers answered %d", code);
    reply r;
    cr_assert_eq(post(s.port, "{\"after\":1}", &r), 200, "a normal client still served");
    server_stop(&s);
    cr_assert_eq(sl_harness_emitted_count(s.h), 1);
    sl_harness_destroy(s.h);
}

/* Clients that send their headers and a little of the body, then stall,
 * hold a connection each — not the server: others are served meanwhile,
 * and idle_timeout closes the stalled ones. */
Test(http_server, slow_bodies_do_not_hold_up_other_clients)
{
    server s;
    server_start(&s, "idle_timeout: 1s\nmax_connections: 32", NULL);
    enum { SLOW = 8 };
    int slow[SLOW];
    const char *head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 1000\r\n\r\n{\"slow\":";
    for (int i = 0; i < SLOW; i++) {
        slow[i] = raw_connect(s.port);
        raw_send(slow[i], head, strlen(head));
    }
    reply r;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(post(s.port, "{\"quick\":1}", &r), 200, "quick client %d", i);
    /* The stalled clients get no record in; the server closes them. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < SLOW; i++) {
        struct timeval tv = {.tv_sec = 20};
        setsockopt(slow[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        int code = raw_answer(slow[i]);
        cr_assert(code == 0 || code >= 400, "stalled client %d answered %d", i, code);
        close(slow[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 15, "stalled connections closed by idle_timeout");
    server_stop(&s);
    cr_assert_eq(sl_harness_emitted_count(s.h), 5, "only the quick clients' records");
    sl_harness_destroy(s.h);
}

/* Many clients do not grow the limiter without bound: a bucket idle
 * longer than it takes to refill is forgotten (fake clock: exact). */
Test(http_server, idle_client_buckets_are_evicted)
{
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    server s;
    server_start(&s, "client_rate: 10/s\nclient_burst: 1\nclient_key: header:X-Api-Key",
                 &fc.clock);
    reply r;
    for (int i = 0; i < 40; i++) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "X-Api-Key: client-%d", i);
        cr_assert(http(s.port, NULL, "/", "application/json", hdr, "{}", 2, &r));
        cr_assert_eq(r.status, 200);
    }
    cr_assert_eq(sl_harness_metric(s.h, "client_limiters", NULL), 40);
    sl_fake_clock_advance(&fc, SL_NS_PER_S);   /* every bucket full again */
    cr_assert(http(s.port, NULL, "/", "application/json", "X-Api-Key: late", "{}", 2, &r));
    cr_assert_eq(r.status, 200);
    cr_assert_eq(sl_harness_metric(s.h, "client_limiters", NULL), 1, "idle buckets evicted");
    server_stop(&s);
    sl_harness_destroy(s.h);
}
