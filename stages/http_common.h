/*
 * What the `http` fetch and store stages share: libcurl set-up, the
 * resilience settings (retry, rate_limit, circuit_breaker) read from the
 * stage's string-map options, request preparation and request IDs, the
 * verdict on a finished attempt, a multi handle that a cancelled context
 * wakes, and URL lists with {M..N} ranges.
 *
 *   http_policy.c   retry / rate_limit / circuit_breaker maps -> policy
 *   http_request.c  easy handles, verdicts, cancellable multi handle
 *   http_urls.c     url / urls -> the expanded list, relative file://
 *
 * Thread: owner, unless noted.
 */
#ifndef SLUICE_STAGES_HTTP_COMMON_H
#define SLUICE_STAGES_HTTP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "sluice/breaker.h"
#include "sluice/plugin.h"
#include "sluice/ratelimit.h"
#include "sluice/retry.h"

/* on_error choices, in the order of the option's enum (and sl_on_error). */
enum { SL__HTTP_ON_ERROR_FAIL = 0, SL__HTTP_ON_ERROR_SKIP,
       SL__HTTP_ON_ERROR_DEAD_LETTER, SL__HTTP_ON_ERROR_RETRY };

#define SL__HTTP_ON_ERROR_CHOICES "fail|skip|dead_letter|retry"

/* Jitter applied to every backoff: each wait is within +-20% of its base. */
#define SL__HTTP_JITTER 0.2

/*
 * curl_global_init, once per process however many stages start at once
 * (curl_global_init itself is not safe to race). 0, or SL_EINTERNAL after
 * sl_stage_error. Thread: any.
 */
int sl__http_global_init(sl_stage_ctx *sc);

/* ------------------------------------------------------------------ */
/* Resilience settings                                                 */
/* ------------------------------------------------------------------ */

typedef struct sl__http_policy {
    sl_retry_policy retry;    /* attempts, backoff, max_backoff, jitter */
    sl_limiter *limiter;      /* owned; NULL = no rate limit */
    sl_breaker *breaker;      /* owned; NULL = no circuit breaker */
} sl__http_policy;

/*
 * Read the stage's `retry`, `rate_limit` and `circuit_breaker` maps (each
 * may be empty: not given) with the defaults of the pipeline file
 * (attempts 3, backoff 100ms, max_backoff 10s; burst 1; failures 5,
 * cooldown 30s). The limiter gets 1/share_count of the rate and its share
 * of the burst, so that share_count workers holding one each keep to the
 * rate together; the limiter and breaker run on the stage's clock.
 * Returns 0, SL_ECONFIG (unknown key or bad value, named in the stage
 * error) or SL_ENOMEM. On failure p holds nothing to release.
 */
int sl__http_policy_init(sl__http_policy *p, sl_stage_ctx *sc,
                         const sl_strmap *retry, const sl_strmap *rate_limit,
                         const sl_strmap *breaker, int share_index,
                         int share_count);
void sl__http_policy_fini(sl__http_policy *p);

/* The wait before the attempt after failed attempt `attempt`: the
 * server's Retry-After (retry_after_ns > 0) capped at max_backoff, else the
 * jittered backoff. */
int64_t sl__http_retry_delay(const sl__http_policy *p, int attempt,
                             int64_t retry_after_ns, uint64_t *rng);

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* How every request of a stage is made. */
typedef struct sl__http_conf {
    const char *method;            /* "GET", "POST", ...; static */
    struct curl_slist *headers;    /* the stage's headers as "K: V"; owned */
    bool has_request_id;           /* the stage sets X-Request-ID itself */
    const char *body;              /* request body, or NULL; borrowed */
    size_t body_len;
    int64_t timeout_ns;            /* per attempt; 0 = none */
    int64_t max_body;              /* largest response body kept; 0 = none */
    bool only_2xx;                 /* no redirects; any status but 2xx fails */
    char id_prefix[12];            /* request IDs are "<prefix>-<n>" */
} sl__http_conf;

/*
 * Fill c from the options: method (static string), headers (copied into a
 * list; Content-Type default_type is added unless given, when non-NULL),
 * body (borrowed, may be NULL), timeout and body cap. Returns 0, SL_ECONFIG
 * (a header name that is empty or holds ':' or a line break) or SL_ENOMEM,
 * after sl_stage_error.
 */
int sl__http_conf_init(sl__http_conf *c, sl_stage_ctx *sc, const char *method,
                       const sl_strmap *headers, const char *default_type,
                       const char *body, int64_t timeout_ns, int64_t max_body);
void sl__http_conf_fini(sl__http_conf *c);

/* One request: its easy handle (reused across attempts and requests), its
 * response, and what the log lines say about it. */
typedef struct sl__http_req {
    CURL *easy;                    /* owned; NULL until first prepared */
    struct curl_slist *headers;    /* conf headers + X-Request-ID; owned */
    const sl__http_conf *conf;     /* borrowed */
    char *url;                     /* owned */
    sl_buf body;                   /* the response body */
    bool too_big;                  /* the body passed conf->max_body */
    char errbuf[CURL_ERROR_SIZE];  /* curl's detail on failure */
    char id[40];                   /* request ID, same for every attempt */
    int attempt;                   /* 1 for the first try */
    int64_t started_ns;            /* when the attempt started (real clock) */
    void *owner;                   /* for the caller's use */
} sl__http_req;

/* Zero r. */
void sl__http_req_init(sl__http_req *r);
/* Free everything r holds (not r). */
void sl__http_req_fini(sl__http_req *r);

/*
 * Set r up for a new request of url (copied) under ID number seq: forget
 * the previous request's state and give it the next request ID. Returns 0
 * or SL_ENOMEM.
 */
int sl__http_req_begin(sl__http_req *r, const sl__http_conf *c,
                       const char *url, uint64_t seq);

/*
 * Prepare the easy handle for the next attempt of r's request: URL,
 * method, headers, body (data[0..len), borrowed until the attempt ends;
 * NULL: the conf's body), timeout, allowed protocols (http, https, file;
 * redirects to http and https only). Clears the previous attempt's response
 * and counts the attempt. Returns 0, SL_ENOMEM or SL_EINTERNAL.
 */
int sl__http_req_prepare(sl__http_req *r, const char *data, size_t len);

typedef enum sl__http_verdict {
    SL__HTTP_OK = 0,    /* a response to keep (status < 400, or a file) */
    SL__HTTP_RETRY,     /* failed, and worth another attempt */
    SL__HTTP_FAIL,      /* failed for good */
} sl__http_verdict;

typedef struct sl__http_outcome {
    sl__http_verdict verdict;
    long status;               /* HTTP status; 0 for file:// or no answer */
    int code;                  /* failure: SL_ETIMEDOUT, SL_EHTTP, SL_EIO,
                                  SL_ELIMIT, SL_EINVAL; 0 when OK */
    bool server_failed;        /* a failure of the server or the network:
                                  counts against the circuit breaker */
    int64_t retry_after_ns;    /* Retry-After of a 429 or 503; 0 = none */
    int64_t elapsed_ns;        /* the attempt's duration */
    char what[CURL_ERROR_SIZE + 64]; /* "HTTP 503", "timed out after 2s" */
} sl__http_outcome;

/*
 * Judge a finished attempt (cc: its CURLcode). Kept: a status below 400
 * (below 300 with only_2xx), or a file read. Retried: connection failures,
 * timeouts, resets, 5xx and 429. Not retried: other 4xx (and 3xx with
 * only_2xx), malformed URLs, unreadable files, a body over max_body.
 */
void sl__http_judge(const sl__http_req *r, CURLcode cc,
                    sl__http_outcome *out);

/* Log the attempt's line: request ID, method, URL, status or failure,
 * duration, attempt. level: DEBUG for a success, WARN for a retry, ERROR
 * for a final failure. Thread: any. */
void sl__http_log(const sl_stage_ctx *sc, const sl__http_req *r,
                  const sl__http_outcome *o, int max_attempts);

/* "GET http://host/x: <what> (attempt 2 of 3)" into buf. */
void sl__http_describe(const sl__http_req *r, const sl__http_outcome *o,
                       int max_attempts, char *buf, size_t size);

/* ------------------------------------------------------------------ */
/* A multi handle that a context wakes                                 */
/* ------------------------------------------------------------------ */

typedef struct sl__http_multi {
    CURLM *multi;              /* owned */
    sl_ctx *ctx;               /* borrowed: done ends every wait */
    sl_ctx_waiter waiter;      /* wakes a curl_multi_poll on cancel */
    bool waiting;              /* waiter registered */
} sl__http_multi;

/* Create the multi handle and register the waiter on ctx (an already done
 * ctx is fine: every wait then returns at once). 0 or SL_ENOMEM. */
int sl__http_multi_init(sl__http_multi *m, sl_ctx *ctx);
/* Unregister, clean up. No transfer may still be added. */
void sl__http_multi_fini(sl__http_multi *m);
/* Interrupt a curl_multi_poll on m. Thread: any, while m lives. */
void sl__http_multi_wake(sl__http_multi *m);

/*
 * Run r's prepared attempt to its end on m, returning its CURLcode, or
 * CURLE_ABORTED_BY_CALLBACK as soon as m's context is done (the transfer
 * is then abandoned at once). Thread: owner.
 */
CURLcode sl__http_multi_perform(sl__http_multi *m, sl__http_req *r);

/* ------------------------------------------------------------------ */
/* URL lists                                                           */
/* ------------------------------------------------------------------ */

typedef struct sl__url_part sl__url_part;

typedef struct sl__url_template {
    size_t n_parts;            /* literal text and ranges, in order */
    sl__url_part *parts;       /* owned */
    int64_t count;             /* URLs this template expands to */
} sl__url_template;

typedef struct sl__url_set {
    size_t n;                  /* templates */
    sl__url_template *t;       /* owned */
    int64_t total;             /* URLs in all */
    char *cwd;                 /* percent-encoded working directory, for
                                  relative file:// URLs; owned */
} sl__url_set;

/* Most URLs one stage may expand to. */
#define SL__URL_MAX INT64_C(1000000000)

/*
 * Parse url (may be NULL) and urls: exactly one must be given, and no URL
 * may be empty. "{M..N}" (M, N decimal, either order, at most 9 digits)
 * expands to each number from M to N, zero-padded to the wider bound when
 * a bound is written with a leading zero ("{01..10}"); several ranges in a
 * URL vary rightmost fastest. "file://" not followed by "/" or
 * "localhost/" is relative to the working directory at start.
 * Returns 0, SL_ECONFIG or SL_ENOMEM after sl_stage_error.
 */
int sl__url_set_init(sl__url_set *s, sl_stage_ctx *sc, const char *url,
                     const sl_strlist *urls);
void sl__url_set_fini(sl__url_set *s);

/* URL number k (0-based, < total), malloc'd; NULL on out of memory.
 * Thread: any (the set is read-only once made). */
char *sl__url_set_get(const sl__url_set *s, int64_t k);

#endif
