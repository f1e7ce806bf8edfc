/*
 * The `http` stages' resilience settings, read from their `retry`,
 * `rate_limit` and `circuit_breaker` options.
 *
 * Those three keys are the pipeline file's reserved keys. The `http`
 * stages declare them in their own option tables (as string maps), which
 * does two things: the config layer hands the stage the blocks as written
 * (after checking them against its own rules, with file:line:col), and the
 * engine leaves the rate limit and breaker to the stage instead of
 * wrapping them around whole records — an HTTP stage limits and breaks
 * per request, retries per request, and shares one bucket between all its
 * requests in flight. The values mean what they mean everywhere else:
 * sl_parse_duration and sl_parse_rate read them, and the defaults are the
 * pipeline file's.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http_common.h"

/* A whole decimal integer in [min, max], or false. */
static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = (int64_t)v;
    return true;
}

static int bad(sl_stage_ctx *sc, const char *block, const char *key,
               const char *value, const char *want)
{
    return sl_stage_error(sc, SL_ECONFIG, "%s: '%s' must be %s, got '%s'",
                          block, key, want, value);
}

static int unknown(sl_stage_ctx *sc, const char *block, const char *key,
                   const char *valid)
{
    return sl_stage_error(sc, SL_ECONFIG, "%s: unknown key '%s' (valid: %s)",
                          block, key, valid);
}

static int read_retry(sl_retry_policy *rp, sl_stage_ctx *sc,
                      const sl_strmap *m)
{
    sl_retry_policy_default(rp);
    rp->max_attempts = 3;
    rp->initial_ns = 100 * SL_NS_PER_MS;
    rp->max_backoff_ns = 10 * SL_NS_PER_S;
    rp->multiplier = SL_RETRY_DEFAULT_MULTIPLIER;
    rp->jitter = SL__HTTP_JITTER;
    for (size_t i = 0; m != NULL && i < m->n; i++) {
        const char *k = m->keys[i], *v = m->values[i];
        if (strcmp(k, "attempts") == 0) {
            int64_t n;
            if (!parse_int(v, 1, 1000, &n))
                return bad(sc, "retry", k, v, "a whole number from 1 to 1000");
            rp->max_attempts = (int)n;
        } else if (strcmp(k, "backoff") == 0) {
            if (sl_parse_duration(v, &rp->initial_ns) != 0)
                return bad(sc, "retry", k, v, "a duration such as 100ms");
        } else if (strcmp(k, "max_backoff") == 0) {
            if (sl_parse_duration(v, &rp->max_backoff_ns) != 0)
                return bad(sc, "retry", k, v, "a duration such as 10s");
        } else {
            return unknown(sc, "retry", k, "attempts, backoff, max_backoff");
        }
    }
    if (rp->max_backoff_ns < rp->initial_ns)
        return sl_stage_error(sc, SL_ECONFIG, "retry: 'max_backoff' must not "
                              "be shorter than 'backoff'");
    if (sl_retry_policy_check(rp) != 0)
        return sl_stage_error(sc, SL_ECONFIG, "retry: invalid settings");
    return 0;
}

static int make_limiter(sl__http_policy *p, sl_stage_ctx *sc,
                        const sl_strmap *m, int share_index, int share_count)
{
    double rate = 0;
    bool have_rate = false;
    int64_t burst = 1;
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->keys[i], *v = m->values[i];
        if (strcmp(k, "rate") == 0) {
            if (sl_parse_rate(v, &rate) != 0 || !(rate >= 1e-9 && rate <= 1e12))
                return bad(sc, "rate_limit", k, v, "a rate such as 50/s");
            have_rate = true;
        } else if (strcmp(k, "burst") == 0) {
            if (!parse_int(v, 1, 1000000000, &burst))
                return bad(sc, "rate_limit", k, v,
                           "a whole number from 1 to 1000000000");
        } else {
            return unknown(sc, "rate_limit", k, "rate, burst");
        }
    }
    if (!have_rate)
        return sl_stage_error(sc, SL_ECONFIG,
                              "rate_limit: missing required key 'rate'");
    if (share_count < 1)
        share_count = 1;
    int64_t share = burst / share_count + (share_index < burst % share_count);
    if (share < 1)
        share = 1;
    int rc = sl_limiter_create(rate / share_count, share, sl_stage_clock(sc),
                               &p->limiter);
    if (rc != 0)
        return sl_stage_error(sc, rc == SL_ENOMEM ? rc : SL_ECONFIG,
                              "rate_limit: cannot make a limiter: %s",
                              sl_strerror(rc));
    return 0;
}

static int make_breaker(sl__http_policy *p, sl_stage_ctx *sc,
                        const sl_strmap *m)
{
    int64_t failures = 5;
    int64_t cooldown = 30 * SL_NS_PER_S;
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->keys[i], *v = m->values[i];
        if (strcmp(k, "failures") == 0) {
            if (!parse_int(v, 1, 1000000, &failures))
                return bad(sc, "circuit_breaker", k, v,
                           "a whole number from 1 to 1000000");
        } else if (strcmp(k, "cooldown") == 0) {
            if (sl_parse_duration(v, &cooldown) != 0)
                return bad(sc, "circuit_breaker", k, v, "a duration such as 30s");
        } else {
            return unknown(sc, "circuit_breaker", k, "failures, cooldown");
        }
    }
    sl_breaker_config bc = {
        .failures = (uint32_t)failures,
        .cooldown_ns = cooldown,
        .clock = sl_stage_clock(sc),
    };
    int rc = sl_breaker_create(&bc, &p->breaker);
    if (rc != 0)
        return sl_stage_error(sc, rc == SL_ENOMEM ? rc : SL_ECONFIG,
                              "circuit_breaker: cannot make a breaker: %s",
                              sl_strerror(rc));
    /* its state in the metrics; it lives until destroy() */
    sl_stage_watch_breaker(sc, p->breaker);
    return 0;
}

/* A map option that was written, even as {} (the option code allocates its
 * arrays then; an option not given stays zeroed). */
static bool given(const sl_strmap *m)
{
    return m != NULL && (m->n > 0 || m->keys != NULL);
}

int sl__http_policy_init(sl__http_policy *p, sl_stage_ctx *sc,
                         const sl_strmap *retry, const sl_strmap *rate_limit,
                         const sl_strmap *breaker, int share_index,
                         int share_count)
{
    memset(p, 0, sizeof(*p));
    int rc = read_retry(&p->retry, sc, retry);
    if (rc != 0)
        return rc;
    if (given(rate_limit)) {
        rc = make_limiter(p, sc, rate_limit, share_index, share_count);
        if (rc != 0)
            return rc;
    }
    if (given(breaker)) {
        rc = make_breaker(p, sc, breaker);
        if (rc != 0)
            goto out_free_limiter;
    }
    return 0;

out_free_limiter:
    sl_limiter_destroy(p->limiter);
    p->limiter = NULL;
    return rc;
}

void sl__http_policy_fini(sl__http_policy *p)
{
    sl_limiter_destroy(p->limiter);
    sl_breaker_destroy(p->breaker);
    p->limiter = NULL;
    p->breaker = NULL;
}

int64_t sl__http_retry_delay(const sl__http_policy *p, int attempt,
                             int64_t retry_after_ns, uint64_t *rng)
{
    if (retry_after_ns > 0) {
        if (p->retry.max_backoff_ns > 0 && retry_after_ns > p->retry.max_backoff_ns)
            return p->retry.max_backoff_ns;
        return retry_after_ns;
    }
    return sl_backoff_delay(&p->retry, attempt, rng);
}
