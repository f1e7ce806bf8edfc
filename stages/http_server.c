/*
 * http_server: a source that receives records pushed over HTTP.
 *
 * `POST <path>` with a body of JSON lines, a JSON array of objects, or one
 * JSON object. The whole body is checked before any of it is kept: 200
 * {"accepted": n} means every record is in the pipeline, 400 (with the
 * line of the first bad record) means none is. Each record carries
 * metadata: client (address), request_id, received_ns (wall clock).
 *
 * Threads. libmicrohttpd runs one thread per connection
 * (MHD_USE_THREAD_PER_CONNECTION, at most max_connections of them). A
 * request's records are handed to run() — the stage's own thread, the only
 * one that emits — through a bounded channel of request batches, and the
 * hand-over may wait up to accept_timeout when the pipeline is behind. A
 * thread per connection keeps one waiting request from stalling the
 * others, which a shared polling thread would not. Memory stays bounded:
 * at most `queue` bodies wait in the channel and max_connections are read,
 * each at most max_body bytes.
 *
 * Answers: 200 accepted; 400 bad JSON; 401 unknown key (auth_header +
 * auth_keys_file); 404 other paths; 405 other methods; 413 body above
 * max_body; 415 a content type other than JSON / JSON lines / text; 429
 * over the client's rate; 503 with Retry-After when the pipeline could not
 * take the records within accept_timeout or the server is shutting down.
 * GET /health answers 200 {"status":"ok"}, or 503 {"status":"degraded"}
 * while the queue is full or the server is draining.
 *
 * Per-client rate limits (`rate_limit_per_client: {rate, burst, key}`, or
 * the same as flat options client_rate, client_burst, client_key): client_rate requests per second with
 * bursts of client_burst, one token bucket per client keyed by
 * client_key — "ip" (the peer address) or "header:NAME" (that header's
 * value; clients without it are keyed by address). Idle buckets are
 * evicted, so many clients do not grow memory without bound.
 *
 * Metrics of its own (docs/metrics.md): requests by status code, records
 * accepted, body bytes received, refusals (429, 503 busy, 503 draining),
 * requests in flight, per-client buckets held.
 *
 * Allocation: a keep-alive connection keeps its body buffer between
 * requests (up to HS_KEEP_BUFFER), and a request's records share one
 * metadata object, so a steady stream allocates little besides the
 * records and their fields.
 *
 * Stopping: when the pipeline asks sources to stop, the listener closes
 * (no new connections), requests already being served finish and their
 * records flow on, requests that arrive meanwhile on open connections get
 * 503, and run() returns once nothing is in flight.
 *
 * The listening socket is bound in init(), so a bad or busy address fails
 * the run before it starts; requests are served only while run() runs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sluice/plugin.h"
#include "sluice/ratelimit.h"

#include "http_server.h"

#define HS_BACKLOG 128
#define HS_N_CODES 10

/* One request's records on their way from a connection thread to run(). */
typedef struct hs_batch {
    size_t n;
    sl_record **recs;
    uint64_t bytes;
} hs_batch;

/*
 * One connection: a body buffer kept between the requests of a keep-alive
 * connection, so that a steady stream of requests allocates no large
 * buffers (one that grew past HS_KEEP_BUFFER is let go).
 */
typedef struct hs_conn {
    sl_buf spare;
} hs_conn;

#define HS_KEEP_BUFFER ((size_t)256 * 1024)

/* One request, from its headers to its completion. */
typedef struct http_server http_server;

typedef struct hs_request {
    http_server *st;     /* the stage */
    char id[40];
    char client[64];
    int64_t start_ns;
    bool counted;        /* counts in in_flight */
    bool post;           /* a POST being read */
    bool too_big;        /* body went past max_body */
    bool answered;       /* a response is queued */
    unsigned status;
    size_t records;
    sl_buf body;
} hs_request;

struct http_server {
    /* options; immutable */
    char *listen;
    char *path;
    int64_t max_body;
    int64_t accept_timeout;
    int64_t queue;
    int64_t max_connections;
    int64_t idle_timeout;
    double client_rate;
    int64_t client_burst;
    char *client_key;
    char *auth_header;
    char *auth_keys_file;
    sl_strmap rate_map;       /* rate_limit_per_client: {rate, burst, key} */
    sl_strmap auth_map;       /* auth: {header, keys_file} */
    /* set in init */
    sl_stage_ctx *sc;         /* for sl_stage_log (any thread) */
    const char *name;         /* the stage name, for record positions */
    sl_ctx *run_ctx;
    int lfd;                  /* listening socket until MHD owns it; -1 */
    bool lfd_open;
    bool ipv6;
    int port;
    char host[64];
    sl_chan *ch;
    sl_keyed_limiter *limiter;
    const char *key_header;   /* into client_key, or NULL: key by address */
    char **keys;              /* sorted accepted auth keys */
    size_t n_keys;
    uint32_t boot;            /* request id prefix */
    /* shared with connection threads */
    pthread_mutex_t mu;
    bool mu_ok;
    bool draining;            /* under mu */
    int64_t in_flight;        /* under mu */
    atomic_uint_fast64_t next_request;
    atomic_int_fast64_t next_seq;
    atomic_uint_fast64_t refused;   /* 429 and 503 answers */
    uint64_t refused_reported;      /* run()'s thread */
    /* the stage's own metrics (any thread); NULL entries: not declared */
    sl_stage_metric *m_status[HS_N_CODES];  /* requests by status code */
    sl_stage_metric *m_records;     /* records accepted */
    sl_stage_metric *m_bytes;       /* request body bytes received */
    sl_stage_metric *m_rate_limited;/* 429s */
    sl_stage_metric *m_busy;        /* 503s: the pipeline was full */
    sl_stage_metric *m_draining;    /* 503s: shutting down */
    sl_stage_metric *m_in_flight;   /* requests being served */
    sl_stage_metric *m_limiters;    /* per-client buckets held */
};

/* The status codes the stage answers, for the requests{code} metric. */
static const unsigned hs_codes[HS_N_CODES] = {200, 400, 401, 404, 405,
                                              413, 415, 429, 500, 503};

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_S + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_S + ts.tv_nsec;
}

/* Declare the stage's own metrics (docs/metrics.md, "http_server"). */
static int declare_metrics(http_server *st, sl_stage_ctx *sc)
{
    int rc = 0;
    char code[8];
    for (size_t i = 0; i < HS_N_CODES && rc == 0; i++) {
        snprintf(code, sizeof(code), "%u", hs_codes[i]);
        rc = sl_stage_metric_add(sc, SL_METRIC_COUNTER, "requests", "code", code,
                                 "Requests answered, by status code.",
                                 &st->m_status[i]);
    }
    if (rc == 0)
        rc = sl_stage_metric_add(sc, SL_METRIC_COUNTER, "records_accepted", NULL,
                                 NULL, "Records accepted (answered 200).",
                                 &st->m_records);
    if (rc == 0)
        rc = sl_stage_metric_add(sc, SL_METRIC_COUNTER, "bytes_received", NULL,
                                 NULL, "Request body bytes read.", &st->m_bytes);
    if (rc == 0)
        rc = sl_stage_metric_add(sc, SL_METRIC_COUNTER, "refused", "reason",
                                 "rate_limit", "Requests refused: rate_limit "
                                 "(429), busy (503, the pipeline was full), "
                                 "draining (503, stopping).", &st->m_rate_limited);
    if (rc == 0)
        rc = sl_stage_metric_add(sc, SL_METRIC_COUNTER, "refused", "reason",
                                 "busy", "Requests refused: rate_limit (429), "
                                 "busy (503, the pipeline was full), draining "
                                 "(503, stopping).", &st->m_busy);
    if (rc == 0)
        rc = sl_stage_metric_add(sc, SL_METRIC_COUNTER, "refused", "reason",
                                 "draining", "Requests refused: rate_limit "
                                 "(429), busy (503, the pipeline was full), "
                                 "draining (503, stopping).", &st->m_draining);
    if (rc == 0)
        rc = sl_stage_metric_add(sc, SL_METRIC_GAUGE, "in_flight_requests", NULL,
                                 NULL, "Requests being served now.",
                                 &st->m_in_flight);
    if (rc == 0)
        rc = sl_stage_metric_add(sc, SL_METRIC_GAUGE, "client_limiters", NULL,
                                 NULL, "Per-client rate-limit buckets held "
                                 "(idle ones are evicted).", &st->m_limiters);
    return rc == 0 ? 0 : sl_stage_error(sc, rc, "cannot declare metrics");
}

static void count_status(http_server *st, unsigned status)
{
    for (size_t i = 0; i < HS_N_CODES; i++) {
        if (hs_codes[i] == status) {
            sl_stage_metric_add_n(st->m_status[i], 1);
            return;
        }
    }
}

static void batch_free(void *item)
{
    hs_batch *b = item;
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        sl_record_free(b->recs[i]);
    free(b->recs);
    free(b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read auth_keys_file: one key per line; blank lines and '#' comments are
 * skipped. */
static int load_keys(http_server *st, sl_stage_ctx *sc)
{
    FILE *f = fopen(st->auth_keys_file, "r");
    if (f == NULL)
        return sl_stage_error(sc, SL_ECONFIG, "auth_keys_file %s: %s",
                              st->auth_keys_file, strerror(errno));
    char line[1024];
    size_t cap = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
                         line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        if (st->n_keys == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nk = realloc(st->keys, ncap * sizeof(*nk));
            if (nk == NULL) {
                rc = sl_stage_error(sc, SL_ENOMEM, "out of memory");
                goto out;
            }
            st->keys = nk;
            cap = ncap;
        }
        st->keys[st->n_keys] = strdup(s);
        if (st->keys[st->n_keys] == NULL) {
            rc = sl_stage_error(sc, SL_ENOMEM, "out of memory");
            goto out;
        }
        st->n_keys++;
    }
    if (st->n_keys == 0)
        rc = sl_stage_error(sc, SL_ECONFIG, "auth_keys_file %s holds no keys",
                            st->auth_keys_file);
    else
        qsort(st->keys, st->n_keys, sizeof(*st->keys), cmp_str);
out:
    fclose(f);
    return rc;
}

/* Bind and listen on `listen` (HOST:PORT, [v6]:PORT). */
static int open_listener(http_server *st, sl_stage_ctx *sc)
{
    const char *colon = strrchr(st->listen, ':');
    if (colon == NULL || colon[1] == '\0')
        return sl_stage_error(sc, SL_ECONFIG, "listen %s: expected HOST:PORT", st->listen);
    size_t hlen = (size_t)(colon - st->listen);
    const char *h = st->listen;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(st->host))
        return sl_stage_error(sc, SL_ECONFIG, "listen %s: expected HOST:PORT", st->listen);
    memcpy(st->host, h, hlen);
    st->host[hlen] = '\0';
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int g = getaddrinfo(st->host, colon + 1, &hints, &ai);
    if (g != 0)
        return sl_stage_error(sc, SL_ECONFIG, "listen %s: %s", st->listen, gai_strerror(g));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        freeaddrinfo(ai);
        return sl_stage_error(sc, SL_EIO, "listen %s: socket: %s", st->listen, strerror(e));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    st->ipv6 = ai->ai_family == AF_INET6;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, HS_BACKLOG) < 0) {
        int e = errno;
        freeaddrinfo(ai);
        close(fd);
        return sl_stage_error(sc, SL_EIO, "listen %s: %s", st->listen, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        st->port = ss.ss_family == AF_INET6
                       ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    st->lfd = fd;
    st->lfd_open = true;
    return 0;
}

/* Replace *slot (an engine-owned option string, or NULL) with a copy of
 * v; the engine frees string options with free(). */
static int set_string(char **slot, const char *v)
{
    char *copy = strdup(v);
    if (copy == NULL)
        return SL_ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

/* The nested forms of the YAML — rate_limit_per_client: {rate,
 * burst, key} and auth: {header, keys_file} — override the flat options. */
static int apply_maps(http_server *st, sl_stage_ctx *sc)
{
    for (size_t i = 0; i < st->rate_map.n; i++) {
        const char *k = st->rate_map.keys[i], *v = st->rate_map.values[i];
        if (strcmp(k, "rate") == 0) {
            if (sl_parse_rate(v, &st->client_rate) < 0 || st->client_rate <= 0)
                return sl_stage_error(sc, SL_ECONFIG, "rate_limit_per_client.rate: bad rate \"%s\"", v);
        } else if (strcmp(k, "burst") == 0) {
            char *end = NULL;
            long long b = strtoll(v, &end, 10);
            if (end == v || *end != '\0' || b < 1)
                return sl_stage_error(sc, SL_ECONFIG, "rate_limit_per_client.burst: bad count \"%s\"", v);
            st->client_burst = b;
        } else if (strcmp(k, "key") == 0) {
            if (set_string(&st->client_key, v) < 0)
                return sl_stage_error(sc, SL_ENOMEM, "out of memory");
        } else {
            return sl_stage_error(sc, SL_ECONFIG, "rate_limit_per_client: unknown key \"%s\" (rate, burst, key)", k);
        }
    }
    if (st->rate_map.n > 0 && st->client_rate <= 0)
        return sl_stage_error(sc, SL_ECONFIG, "rate_limit_per_client needs a rate");
    for (size_t i = 0; i < st->auth_map.n; i++) {
        const char *k = st->auth_map.keys[i], *v = st->auth_map.values[i];
        char **slot = strcmp(k, "header") == 0      ? &st->auth_header
                      : strcmp(k, "keys_file") == 0 ? &st->auth_keys_file
                                                    : NULL;
        if (slot == NULL)
            return sl_stage_error(sc, SL_ECONFIG, "auth: unknown key \"%s\" (header, keys_file)", k);
        if (set_string(slot, v) < 0)
            return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    }
    return 0;
}

static int http_server_init(void *state, sl_stage_ctx *sc)
{
    http_server *st = state;
    int mrc = apply_maps(st, sc);
    if (mrc < 0)
        return mrc;
    st->sc = sc;
    st->name = sl_stage_name(sc);
    st->run_ctx = sl_stage_context(sc);
    if (sl_stage_worker_count(sc) > 1)
        return sl_stage_error(sc, SL_ECONFIG, "http_server listens with one worker (workers: 1)");
    if (st->path == NULL || st->path[0] != '/')
        return sl_stage_error(sc, SL_ECONFIG, "path must start with '/'");
    if ((st->auth_header == NULL) != (st->auth_keys_file == NULL))
        return sl_stage_error(sc, SL_ECONFIG, "auth_header and auth_keys_file go together");
    if (st->client_key != NULL && strcmp(st->client_key, "ip") != 0) {
        if (strncmp(st->client_key, "header:", 7) != 0 || st->client_key[7] == '\0')
            return sl_stage_error(sc, SL_ECONFIG,
                                  "client_key must be \"ip\" or \"header:NAME\", not \"%s\"",
                                  st->client_key);
        st->key_header = st->client_key + 7;
    }
    if (st->idle_timeout < SL_NS_PER_S)
        return sl_stage_error(sc, SL_ECONFIG, "idle_timeout must be at least 1s");
    if (pthread_mutex_init(&st->mu, NULL) != 0)
        return sl_stage_error(sc, SL_ENOMEM, "mutex");
    st->mu_ok = true;
    int mrc2 = declare_metrics(st, sc);
    if (mrc2 < 0)
        return mrc2;
    atomic_init(&st->next_request, 1);
    atomic_init(&st->next_seq, 1);
    atomic_init(&st->refused, 0);
    unsigned char rnd[4] = {0};
    FILE *ur = fopen("/dev/urandom", "rb");
    if (ur != NULL) {
        if (fread(rnd, 1, sizeof(rnd), ur) != sizeof(rnd))
            memset(rnd, 0, sizeof(rnd));
        fclose(ur);
    }
    st->boot = ((uint32_t)rnd[0] << 24 | (uint32_t)rnd[1] << 16 |
                (uint32_t)rnd[2] << 8 | rnd[3]) ^ (uint32_t)mono_ns();
    int rc = sl_chan_create((size_t)st->queue, batch_free, &st->ch);
    if (rc < 0)
        return sl_stage_error(sc, rc, "out of memory");
    if (st->client_rate > 0) {
        sl_keyed_limiter_config cfg = {
            .rate = st->client_rate,
            .burst = st->client_burst,
            .idle_ttl_ns = 0,
            .max_keys = 0,
            .clock = sl_stage_clock(sc),
        };
        rc = sl_keyed_limiter_create(&cfg, &st->limiter);
        if (rc < 0)
            return sl_stage_error(sc, SL_ECONFIG, "client_rate/client_burst: %s",
                                  sl_error_name(rc));
    }
    if (st->auth_keys_file != NULL && (rc = load_keys(st, sc)) < 0)
        return rc;
    return open_listener(st, sc);
}

int sl__http_server_port(const void *state)
{
    return ((const http_server *)state)->port;
}

/* --- answering --- */

static enum MHD_Result respond(struct MHD_Connection *c, hs_request *rq,
                               unsigned status, const char *body,
                               int64_t retry_after_s, bool close_conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "X-Request-Id", rq->id);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "POST");
    if (retry_after_s > 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%lld", (long long)retry_after_s);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    if (close_conn)
        MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    count_status(rq->st, status);
    rq->status = status;
    rq->answered = true;
    return ok;
}

static enum MHD_Result respond_error(struct MHD_Connection *c, hs_request *rq,
                                     unsigned status, const char *text,
                                     int64_t retry_after_s)
{
    char body[320];
    snprintf(body, sizeof(body), "{\"error\":\"%s\"}", text);
    return respond(c, rq, status, body, retry_after_s, false);
}

static bool content_type_ok(const char *ct)
{
    if (ct == NULL)
        return true;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    static const char *const ok[] = {
        "application/json", "application/x-ndjson", "application/jsonl",
        "application/x-jsonlines", "application/jsonlines", "text/plain",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strlen(ok[i]) == n && strncasecmp(ct, ok[i], n) == 0)
            return true;
    return false;
}

static bool key_known(const http_server *st, const char *key)
{
    return key != NULL &&
           bsearch(&key, st->keys, st->n_keys, sizeof(*st->keys), cmp_str) != NULL;
}

static void client_address(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, cap, "unknown");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)cap);
}

/* Turn the parsed objects into records and hand them to run(). */
static enum MHD_Result accept_body(http_server *st, struct MHD_Connection *c,
                                   hs_request *rq)
{
    sl_value *objs = NULL;
    sl__hs_body_error perr;
    int rc = sl__hs_parse_body(rq->body.data != NULL ? rq->body.data : "",
                               rq->body.len, &objs, &perr);
    if (rc == SL_ENOMEM)
        return respond_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", 0);
    if (rc < 0) {
        sl_buf b;
        sl_buf_init(&b);
        sl_value *o = sl_value_object();
        char body[400];
        if (o != NULL && sl_object_set(o, "error", sl_value_cstring(perr.text)) == 0 &&
            (perr.line == 0 || sl_object_set(o, "line", sl_value_int(perr.line)) == 0) &&
            sl_json_dump(o, &b) == 0 && b.len < sizeof(body)) {
            memcpy(body, b.data, b.len);
            body[b.len] = '\0';
        } else {
            snprintf(body, sizeof(body), "{\"error\":\"bad JSON\",\"line\":%lld}",
                     (long long)perr.line);
        }
        sl_value_unref(o);
        sl_buf_fini(&b);
        return respond(c, rq, MHD_HTTP_BAD_REQUEST, body, 0, false);
    }
    size_t n = sl_array_len(objs);
    hs_batch *batch = calloc(1, sizeof(*batch));
    if (batch == NULL || (n > 0 && (batch->recs = calloc(n, sizeof(sl_record *))) == NULL)) {
        free(batch);
        sl_value_unref(objs);
        return respond_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", 0);
    }
    batch->bytes = rq->body.len;
    /* The request's records share one metadata object (copy-on-write):
     * the first gets it, the others are copies of the first with their own
     * fields and sequence number. Position: the stage, and the number of
     * the record among all the stage received. */
    int64_t seq = atomic_fetch_add(&st->next_seq, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        sl_record *rec = i == 0 ? sl_record_new() : sl_record_copy(batch->recs[0]);
        if (rec == NULL)
            goto oom;
        batch->recs[batch->n++] = rec;
        if (i == 0 &&
            (sl_record_set_meta(rec, "client", sl_value_cstring(rq->client)) < 0 ||
             sl_record_set_meta(rec, "request_id", sl_value_cstring(rq->id)) < 0 ||
             sl_record_set_meta(rec, "received_ns", sl_value_int(wall_ns())) < 0))
            goto oom;
        if (sl_record_set_fields(rec, sl_value_ref(sl_array_get(objs, i))) < 0 ||
            sl_record_set_position(rec, st->name, NULL, -1, seq + (int64_t)i) < 0)
            goto oom;
    }
    sl_value_unref(objs);
    objs = NULL;
    rc = sl_chan_try_send(st->ch, batch);
    if (rc == SL_EAGAIN) {
        sl_ctx *wait = NULL;
        rc = sl_ctx_create_timeout(st->run_ctx, st->accept_timeout, &wait);
        if (rc == 0) {
            rc = sl_chan_send(st->ch, wait, batch);   /* takes batch */
            sl_ctx_destroy(wait);
        } else {
            batch_free(batch);
        }
    } else if (rc < 0) {
        batch_free(batch);
    }
    if (rc < 0) {
        atomic_fetch_add(&st->refused, 1);
        sl_stage_metric_add_n(rc == SL_EDEADLINE ? st->m_busy : st->m_draining, 1);
        int64_t ra = st->accept_timeout / SL_NS_PER_S + 1;
        return respond_error(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE,
                             rc == SL_EDEADLINE ? "pipeline busy, retry later"
                                                : "shutting down", ra);
    }
    rq->records = n;
    sl_stage_metric_add_n(st->m_records, (int64_t)n);
    char body[64];
    snprintf(body, sizeof(body), "{\"accepted\":%zu}", n);
    return respond(c, rq, MHD_HTTP_OK, body, 0, false);
oom:
    sl_value_unref(objs);
    batch_free(batch);
    return respond_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", 0);
}

/* Everything decided from the request line and headers. MHD_YES without
 * an answer: read the body. */
static enum MHD_Result on_headers(http_server *st, struct MHD_Connection *c,
                                  hs_request *rq, const char *url,
                                  const char *method)
{
    if (strcmp(method, "GET") == 0 && strcmp(url, "/health") == 0) {
        bool degraded = sl_chan_len(st->ch) >= sl_chan_cap(st->ch);
        return respond(c, rq, degraded ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
                       degraded ? "{\"status\":\"degraded\"}" : "{\"status\":\"ok\"}",
                       degraded ? 1 : 0, false);
    }
    if (strcmp(url, st->path) != 0)
        return respond_error(c, rq, MHD_HTTP_NOT_FOUND, "not found", 0);
    if (strcmp(method, "POST") != 0)
        return respond_error(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", 0);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (!content_type_ok(ct))
        return respond_error(c, rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                             "content type must be JSON or JSON lines", 0);
    if (st->auth_header != NULL &&
        !key_known(st, MHD_lookup_connection_value(c, MHD_HEADER_KIND, st->auth_header)))
        return respond_error(c, rq, MHD_HTTP_UNAUTHORIZED, "unknown key", 0);
    if (st->limiter != NULL) {
        const char *key = NULL;
        if (st->key_header != NULL)
            key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, st->key_header);
        if (key == NULL)
            key = rq->client;
        int64_t retry = 0;
        int rc = sl_keyed_limiter_try(st->limiter, key, strlen(key), 1, &retry);
        sl_stage_metric_set(st->m_limiters,
                            (int64_t)sl_keyed_limiter_count(st->limiter));
        if (rc == SL_ELIMIT) {
            atomic_fetch_add(&st->refused, 1);
            sl_stage_metric_add_n(st->m_rate_limited, 1);
            return respond_error(c, rq, MHD_HTTP_TOO_MANY_REQUESTS, "rate limit exceeded",
                                 (retry + SL_NS_PER_S - 1) / SL_NS_PER_S);
        }
        if (rc < 0)
            return respond_error(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", 1);
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl != NULL && strtoll(cl, NULL, 10) > st->max_body)
        return respond_error(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "body larger than max_body", 0);
    rq->post = true;
    return MHD_YES;
}

/* MHD's connection callback: a connection's state comes and goes. */
static void hs_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)c;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        hs_conn *hc = calloc(1, sizeof(*hc));
        if (hc != NULL)
            sl_buf_init(&hc->spare);
        *socket_context = hc;   /* NULL: requests allocate their own */
        return;
    }
    hs_conn *hc = *socket_context;
    *socket_context = NULL;
    if (hc != NULL) {
        sl_buf_fini(&hc->spare);
        free(hc);
    }
}

static hs_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

static enum MHD_Result hs_access(void *cls, struct MHD_Connection *c,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    http_server *st = cls;
    hs_request *rq = *con_cls;
    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL)
            return MHD_NO;
        *con_cls = rq;
        rq->st = st;
        rq->start_ns = mono_ns();
        hs_conn *hc = conn_of(c);
        if (hc != NULL) {
            rq->body = hc->spare;   /* the connection's buffer, if any */
            sl_buf_init(&hc->spare);
        } else {
            sl_buf_init(&rq->body);
        }
        snprintf(rq->id, sizeof(rq->id), "%08x-%llu", (unsigned)st->boot,
                 (unsigned long long)atomic_fetch_add(&st->next_request, 1));
        client_address(c, rq->client, sizeof(rq->client));
        pthread_mutex_lock(&st->mu);
        bool draining = st->draining;
        if (!draining) {
            st->in_flight++;
            rq->counted = true;
            sl_stage_metric_add_n(st->m_in_flight, 1);
        }
        pthread_mutex_unlock(&st->mu);
        if (draining) {
            atomic_fetch_add(&st->refused, 1);
            sl_stage_metric_add_n(st->m_draining, 1);
            return respond(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "{\"error\":\"shutting down\"}", 1, true);
        }
        return on_headers(st, c, rq, url, method);
    }
    if (rq->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        sl_stage_metric_add_n(st->m_bytes, (int64_t)n);
        if (rq->too_big)
            return MHD_YES;
        if (rq->body.len + n > (size_t)st->max_body) {
            rq->too_big = true;
            sl_buf_fini(&rq->body);
            return MHD_YES;
        }
        if (sl_buf_append(&rq->body, upload_data, n) < 0)
            return MHD_NO;
        return MHD_YES;
    }
    if (rq->too_big)
        return respond_error(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "body larger than max_body", 0);
    return accept_body(st, c, rq);
}

/* MHD's completion callback: log the request, end its in-flight count. */
static void hs_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *st = cls;
    hs_request *rq = *con_cls;
    if (rq == NULL)
        return;
    *con_cls = NULL;
    double ms = (double)(mono_ns() - rq->start_ns) / 1e6;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || rq->answered)
        sl_stage_log(st->sc, SL_LOG_INFO,
                     "request id=%s client=%s status=%u records=%zu duration_ms=%.3f",
                     rq->id, rq->client, rq->status, rq->records, ms);
    else
        sl_stage_log(st->sc, SL_LOG_INFO,
                     "request id=%s client=%s status=aborted records=0 duration_ms=%.3f",
                     rq->id, rq->client, ms);
    if (rq->counted) {
        sl_stage_metric_add_n(st->m_in_flight, -1);
        pthread_mutex_lock(&st->mu);
        if (--st->in_flight == 0 && st->draining)
            sl_chan_close(st->ch);
        pthread_mutex_unlock(&st->mu);
    }
    hs_conn *hc = conn_of(c);
    if (hc != NULL && hc->spare.data == NULL && rq->body.cap <= HS_KEEP_BUFFER) {
        hc->spare = rq->body;   /* for the connection's next request */
        sl_buf_reset(&hc->spare);
    } else {
        sl_buf_fini(&rq->body);
    }
    free(rq);
}

/* --- the stage thread --- */

static void report_refused(http_server *st, sl_stage_ctx *sc)
{
    uint64_t now = atomic_load(&st->refused);
    for (; st->refused_reported < now; st->refused_reported++)
        sl_stage_count_error(sc);
}

/* Emit one batch's records; 0, or SL_ECANCELED when the run is torn down
 * (the rest of the batch is freed). */
static int emit_batch(http_server *st, sl_stage_ctx *sc, hs_batch *b)
{
    int rc = 0;
    sl_stage_count_bytes_in(sc, b->bytes);
    for (size_t i = 0; i < b->n; i++) {
        sl_record *rec = b->recs[i];
        b->recs[i] = NULL;
        if (rc == 0)
            rc = sl_emit(sc, rec);
        else
            sl_record_free(rec);
    }
    b->n = 0;
    batch_free(b);
    report_refused(st, sc);
    return rc;
}

static int http_server_run(void *state, sl_stage_ctx *sc)
{
    http_server *st = state;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ITC | (st->ipv6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, hs_access, st,
        MHD_OPTION_LISTEN_SOCKET, st->lfd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)st->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(st->idle_timeout / SL_NS_PER_S),
        MHD_OPTION_NOTIFY_COMPLETED, hs_completed, st,
        MHD_OPTION_NOTIFY_CONNECTION, hs_connection, st,
        MHD_OPTION_END);
    if (d == NULL)
        return sl_stage_error(sc, SL_EIO, "listen %s: cannot start the HTTP server", st->listen);
    st->lfd_open = false;   /* the daemon owns it now */
    sl_stage_log(sc, SL_LOG_INFO, "listening on http://%s%s%s:%d%s",
                 st->ipv6 ? "[" : "", st->host, st->ipv6 ? "]" : "", st->port, st->path);

    sl_ctx *src = sl_stage_source_context(sc);
    int rc = 0;
    for (;;) {
        void *item = NULL;
        rc = sl_chan_recv(st->ch, src, &item);
        if (rc < 0)
            break;
        rc = emit_batch(st, sc, item);
        if (rc < 0)
            break;
    }
    bool torn_down = sl_ctx_is_done(st->run_ctx);

    pthread_mutex_lock(&st->mu);
    st->draining = true;
    int64_t busy = st->in_flight;
    if (busy == 0 || torn_down)
        sl_chan_close(st->ch);
    pthread_mutex_unlock(&st->mu);
    int qfd = MHD_quiesce_daemon(d);
    if (qfd >= 0)
        close(qfd);
    sl_stage_log(sc, SL_LOG_INFO, "stopping: listener closed, %lld request(s) in flight",
                 (long long)busy);
    uint64_t drained = 0;
    if (!torn_down) {
        for (;;) {
            void *item = NULL;
            if (sl_chan_recv(st->ch, st->run_ctx, &item) < 0)
                break;
            drained += ((hs_batch *)item)->n;
            if (emit_batch(st, sc, item) < 0)
                break;
        }
    }
    MHD_stop_daemon(d);
    report_refused(st, sc);
    sl_stage_log(sc, SL_LOG_INFO, "stopped: %llu record(s) from in-flight requests passed on",
                 (unsigned long long)drained);
    return 0;
}

static void http_server_destroy(void *state)
{
    http_server *st = state;
    if (st->lfd_open)
        close(st->lfd);
    st->lfd_open = false;
    sl_chan_destroy(st->ch);
    st->ch = NULL;
    sl_keyed_limiter_destroy(st->limiter);
    st->limiter = NULL;
    for (size_t i = 0; i < st->n_keys; i++)
        free(st->keys[i]);
    free(st->keys);
    st->keys = NULL;
    st->n_keys = 0;
    if (st->mu_ok)
        pthread_mutex_destroy(&st->mu);
    st->mu_ok = false;
}

static const sl_option http_server_options[] = {
    {SL_OPT_STRING, "listen", "127.0.0.1:8080", 0, offsetof(http_server, listen), 0, 0, NULL,
     "HOST:PORT to listen on (port 0: any free port, logged at start)"},
    {SL_OPT_STRING, "path", "/", 0, offsetof(http_server, path), 0, 0, NULL,
     "the path records are POSTed to"},
    {SL_OPT_SIZE, "max_body", "10MiB", 0, offsetof(http_server, max_body), 1, 1e12, NULL,
     "largest request body; a larger one is answered 413"},
    {SL_OPT_DURATION, "accept_timeout", "1s", 0, offsetof(http_server, accept_timeout), 0, 0, NULL,
     "how long a request waits for room in the pipeline before 503 + Retry-After"},
    {SL_OPT_INT, "queue", "16", 0, offsetof(http_server, queue), 1, 65536, NULL,
     "request bodies buffered between the server and the pipeline"},
    {SL_OPT_INT, "max_connections", "128", 0, offsetof(http_server, max_connections), 1, 65536, NULL,
     "connections served at once (one thread each); more wait to be accepted"},
    {SL_OPT_DURATION, "idle_timeout", "30s", 0, offsetof(http_server, idle_timeout), 0, 0, NULL,
     "close a connection silent this long (slow or stalled clients)"},
    {SL_OPT_RATE, "client_rate", NULL, 0, offsetof(http_server, client_rate), 0, 1e9, NULL,
     "requests per second per client (rate_limit_per_client.rate); no limit when absent"},
    {SL_OPT_INT, "client_burst", "10", 0, offsetof(http_server, client_burst), 1, 1e9, NULL,
     "requests a client may send at once (rate_limit_per_client.burst)"},
    {SL_OPT_STRING, "client_key", "ip", 0, offsetof(http_server, client_key), 0, 0, NULL,
     "what identifies a client for client_rate: ip, or header:NAME (e.g. header:X-Api-Key)"},
    {SL_OPT_STRING, "auth_header", NULL, 0, offsetof(http_server, auth_header), 0, 0, NULL,
     "header carrying the API key (e.g. X-Api-Key); with auth_keys_file, unknown keys get 401"},
    {SL_OPT_STRING, "auth_keys_file", NULL, 0, offsetof(http_server, auth_keys_file), 0, 0, NULL,
     "file of accepted keys, one per line ('#' comments)"},
    {SL_OPT_STRING_MAP, "rate_limit_per_client", NULL, 0, offsetof(http_server, rate_map), 0, 0, NULL,
     "{rate, burst, key}: the nested form of client_rate, client_burst, client_key"},
    {SL_OPT_STRING_MAP, "auth", NULL, 0, offsetof(http_server, auth_map), 0, 0, NULL,
     "{header, keys_file}: the nested form of auth_header, auth_keys_file"},
    SL_OPTIONS_END,
};

const sl_stage_desc sl_stage_http_server = {
    SL_STAGE_DESC_HEADER,
    .name = "http_server",
    .kind = SL_STAGE_SOURCE,
    .summary = "receive JSON records POSTed over HTTP, all of a body or none (400 names "
               "the first bad line), with backpressure, rate limits and graceful stop",
    .options = http_server_options,
    .state_size = sizeof(http_server),
    .init = http_server_init,
    .run = http_server_run,
    .destroy = http_server_destroy,
};
