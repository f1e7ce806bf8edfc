/*
 * Stage harness: one stage worker driven on the calling thread, with the
 * same option code and the same stage context as a real run. Its emit
 * target collects records in a list instead of sending them downstream.
 */
#include "engine/harness.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/diag.h"
#include "engine/options.h"
#include "engine/stage_ctx.h"
#include "sluice/error.h"

struct sl_harness {
    const sl_stage_desc *desc;    /* borrowed; immutable */
    void *state;                  /* state_size zeroed bytes, options filled */
    bool options_filled;          /* sl__options_free is owed */
    bool init_called;             /* init() ran (destroy() is owed) */
    bool init_ok;                 /* init() returned 0 */
    sl_ctx *ctx;                  /* the "run" context */
    sl_ctx *source_ctx;           /* child of ctx, cancelled by stop */
    sl__stage_counters counters;  /* what the stage counted */
    sl_stage_ctx sc;              /* handed to the callbacks */
    sl_record **emitted;          /* records the stage emitted, owned */
    size_t n_emitted;
    size_t cap_emitted;
    sl_record **failed;           /* records process() failed on, owned */
    size_t n_failed;
    size_t cap_failed;
    int on_error;                 /* policy for sl_record_reject: REJECT_* */
    sl_record **rejected;         /* records given to sl_record_reject, owned */
    char **reasons;               /* their reasons, owned; same indexes */
    size_t n_rejected;
    size_t cap_rejected;
    char *config_error;           /* diag messages, '\n'-joined; owned */
    char last_error[SL__STAGE_ERR_MAX]; /* "" if none */
};

/* Append rec to a growable list; frees rec on allocation failure. */
static int list_push(sl_record ***list, size_t *n, size_t *cap, sl_record *rec)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        sl_record **nl = realloc(*list, ncap * sizeof(*nl));
        if (nl == NULL) {
            sl_record_free(rec);
            return SL_ENOMEM;
        }
        *list = nl;
        *cap = ncap;
    }
    (*list)[(*n)++] = rec;
    return 0;
}

/* The harness's emit target: keep the record for inspection. */
static int harness_emit(sl_stage_ctx *sc, sl_record *rec)
{
    sl_harness *h = sc->target;
    if (sl_ctx_is_done(h->ctx)) {
        sl_record_free(rec);
        return SL_ECANCELED;
    }
    return list_push(&h->emitted, &h->n_emitted, &h->cap_emitted, rec);
}

/* The on_error names sl_harness_set_on_error takes, in their order. */
enum { REJECT_FAIL = 0, REJECT_SKIP, REJECT_DEAD_LETTER, REJECT_RETRY };
static const char *const reject_policies[] = {"fail", "skip", "dead_letter",
                                              "retry"};

/*
 * The harness's target for sl_record_reject: keep the record and its
 * reason, whatever the policy, and answer as the runtime would.
 */
static int harness_reject(sl_stage_ctx *sc, sl_record *rec, int code,
                          const char *reason)
{
    sl_harness *h = sc->target;
    if (h->n_rejected == h->cap_rejected) {
        size_t ncap = h->cap_rejected ? h->cap_rejected * 2 : 16;
        sl_record **nr = realloc(h->rejected, ncap * sizeof(*nr));
        if (nr != NULL)
            h->rejected = nr;
        char **ns = realloc(h->reasons, ncap * sizeof(*ns));
        if (ns != NULL)
            h->reasons = ns;
        if (nr == NULL || ns == NULL) {
            sl_record_free(rec);
            return sl_stage_error(sc, SL_ENOMEM, "harness: out of memory");
        }
        h->cap_rejected = ncap;
    }
    char *why = strdup(reason);
    if (why == NULL) {
        sl_record_free(rec);
        return sl_stage_error(sc, SL_ENOMEM, "harness: out of memory");
    }
    h->rejected[h->n_rejected] = rec;
    h->reasons[h->n_rejected++] = why;
    if (h->on_error == REJECT_SKIP || h->on_error == REJECT_DEAD_LETTER)
        return 0;
    return sl_stage_error(sc, code, "%s", reason);
}

/*
 * In a pipeline file on_error is one key, read by the engine and, when the
 * stage declares it too, by the stage: a stage that declares it gets the
 * same policy from sl_record_reject here.
 */
static void policy_from_options(sl_harness *h)
{
    for (const sl_option *o = h->desc->options; o->key != NULL; o++) {
        if (o->type == SL_OPT_ENUM && strcmp(o->key, "on_error") == 0 &&
            o->choices != NULL &&
            strcmp(o->choices, "fail|skip|dead_letter|retry") == 0) {
            int v;
            memcpy(&v, (const char *)h->state + o->offset, sizeof(v));
            if (v >= REJECT_FAIL && v <= REJECT_RETRY)
                h->on_error = v;
        }
    }
}

/* Join the diag messages into one string owned by h. */
static void keep_config_error(sl_harness *h, const sl_diag *diag)
{
    size_t total = 1;
    for (size_t i = 0; i < sl__diag_count(diag); i++)
        total += strlen(sl__diag_message(diag, i)) + 1;
    h->config_error = malloc(total);
    if (h->config_error == NULL)
        return;
    h->config_error[0] = '\0';
    for (size_t i = 0; i < sl__diag_count(diag); i++) {
        if (i > 0)
            strcat(h->config_error, "\n");
        strcat(h->config_error, sl__diag_message(diag, i));
    }
}

static void note_error(sl_harness *h, int code)
{
    snprintf(h->last_error, sizeof(h->last_error), "%s",
             sl__stage_ctx_reason(&h->sc, code));
}

int sl_harness_create(const sl_stage_desc *desc, const char *options_yaml,
                      sl_harness **out)
{
    if (desc == NULL || out == NULL)
        return SL_EINVAL;
    sl_harness *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return SL_ENOMEM;
    h->desc = desc;
    h->state = calloc(1, desc->state_size > 0 ? desc->state_size : 1);
    if (h->state == NULL)
        goto out_free_h;
    if (sl_ctx_create(&h->ctx) != 0)
        goto out_free_state;
    if (sl_ctx_create_child(h->ctx, &h->source_ctx) != 0)
        goto out_free_ctx;

    sl__stage_ctx_init(&h->sc, "test", desc->name, desc->kind, 0, 1, NULL,
                       h->ctx, h->source_ctx, &h->counters);
    h->sc.target = h;
    h->sc.reject = harness_reject;
    if (desc->kind != SL_STAGE_SINK)
        h->sc.emit = harness_emit;

    int rc = 0;
    if (desc->options != NULL) {
        sl_diag *diag = sl__diag_create();
        if (diag == NULL)
            goto out_free_source_ctx;
        h->options_filled = true;
        rc = sl__options_apply_text(desc->options,
                                    options_yaml != NULL ? options_yaml : "{}",
                                    "<options>", h->state, diag);
        if (rc != 0)
            keep_config_error(h, diag);
        else
            policy_from_options(h);
        sl__diag_destroy(diag);
    } else if (options_yaml != NULL && strspn(options_yaml, " \t\r\n{}") !=
                                           strlen(options_yaml)) {
        h->config_error = strdup("<options>: stage takes no options");
        rc = SL_ECONFIG;
    }
    *out = h;
    return rc;

out_free_source_ctx:
    sl_ctx_destroy(h->source_ctx);
out_free_ctx:
    sl_ctx_destroy(h->ctx);
out_free_state:
    free(h->state);
out_free_h:
    free(h);
    return SL_ENOMEM;
}

void sl_harness_destroy(sl_harness *h)
{
    if (h == NULL)
        return;
    if (h->init_called && h->desc->destroy != NULL)
        h->desc->destroy(h->state);
    if (h->options_filled)
        sl__options_free(h->desc->options, h->state);
    free(h->state);
    for (size_t i = 0; i < h->n_emitted; i++)
        sl_record_free(h->emitted[i]);
    free(h->emitted);
    for (size_t i = 0; i < h->n_failed; i++)
        sl_record_free(h->failed[i]);
    free(h->failed);
    for (size_t i = 0; i < h->n_rejected; i++) {
        sl_record_free(h->rejected[i]);
        free(h->reasons[i]);
    }
    free(h->rejected);
    free(h->reasons);
    free(h->config_error);
    sl_ctx_destroy(h->source_ctx);
    sl_ctx_destroy(h->ctx);
    free(h);
}

const char *sl_harness_config_error(const sl_harness *h)
{
    return (h != NULL && h->config_error != NULL) ? h->config_error : "";
}

void sl_harness_set_clock(sl_harness *h, const sl_clock *clock)
{
    h->sc.clock = clock != NULL ? clock : sl_clock_real();
}

void sl_harness_set_worker(sl_harness *h, int index, int count)
{
    h->sc.worker_index = index;
    h->sc.worker_count = count;
}

int sl_harness_set_on_error(sl_harness *h, const char *policy)
{
    for (size_t i = 0; i < sizeof(reject_policies) / sizeof(*reject_policies);
         i++) {
        if (policy != NULL && strcmp(policy, reject_policies[i]) == 0) {
            h->on_error = (int)i;
            return 0;
        }
    }
    return SL_EINVAL;
}

int64_t sl_harness_metric(const sl_harness *h, const char *name,
                          const char *label_value)
{
    size_t n = atomic_load_explicit(&h->counters.n_extra, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        const struct sl_stage_metric *m = &h->counters.extra[i];
        if (strcmp(m->name, name) == 0 &&
            strcmp(m->label_value, label_value != NULL ? label_value : "") == 0)
            return atomic_load_explicit(&m->value, memory_order_relaxed);
    }
    return -1;
}

size_t sl_harness_rejected_count(const sl_harness *h)
{
    return h->n_rejected;
}

sl_record *sl_harness_rejected(const sl_harness *h, size_t i)
{
    return i < h->n_rejected ? h->rejected[i] : NULL;
}

const char *sl_harness_rejected_reason(const sl_harness *h, size_t i)
{
    return i < h->n_rejected ? h->reasons[i] : NULL;
}

sl_ctx *sl_harness_context(sl_harness *h)
{
    return h->ctx;
}

void sl_harness_cancel(sl_harness *h, const char *cause)
{
    sl_ctx_cancel(h->ctx, SL_ECANCELED, "%s", cause != NULL ? cause : "");
}

/*
 * init() runs once: a second call returns SL_EINVAL. destroy() is owed
 * from here on even if init fails, as in a real run.
 */
int sl_harness_init(sl_harness *h)
{
    if (h->init_called || h->config_error != NULL)
        return SL_EINVAL;
    h->init_called = true;
    if (h->desc->init == NULL) {
        h->init_ok = true;
        return 0;
    }
    sl__stage_ctx_clear_error(&h->sc);
    int rc = h->desc->init(h->state, &h->sc);
    if (rc < 0)
        note_error(h, rc);
    else
        h->init_ok = true;
    return rc;
}

/*
 * As the runtime does: records_in counts the record, the time process()
 * takes goes to the latency histogram, and a failure keeps the record
 * (unless the stage handed it on before failing, e.g. `return sl_emit()`).
 */
int sl_harness_process(sl_harness *h, sl_record *rec)
{
    if (rec == NULL)
        return SL_EINVAL;
    if (!h->init_ok || h->desc->process == NULL) {
        sl_record_free(rec);
        return SL_EINVAL;
    }
    sl__stage_ctx_begin_record(&h->sc, rec);
    sl__count(&h->counters.records_in, 1);
    sl__count(&h->counters.bytes_in, 
              sl__record_bytes(&h->sc.size_in, rec));
    int64_t t0 = sl_clock_now(h->sc.clock);
    int rc = h->desc->process(h->state, &h->sc, rec);
    sl__hist_record(&h->counters.latency, sl_clock_now(h->sc.clock) - t0);
    bool consumed = sl__stage_ctx_end_record(&h->sc);
    if (rc < 0) {
        sl__count(&h->counters.errors, 1);
        note_error(h, rc);
        /* A record the stage handed on before failing is not ours. */
        if (!consumed)
            list_push(&h->failed, &h->n_failed, &h->cap_failed, rec);
    }
    return rc;
}

int sl_harness_process_text(sl_harness *h, const char *payload)
{
    sl_record *rec = sl_record_new_payload(payload, strlen(payload));
    if (rec == NULL)
        return SL_ENOMEM;
    return sl_harness_process(h, rec);
}

int sl_harness_process_json(sl_harness *h, const char *json)
{
    sl_value *v = NULL;
    sl_json_error jerr;
    int rc = sl_json_parse(json, strlen(json), NULL, &v, &jerr);
    if (rc != 0) {
        snprintf(h->last_error, sizeof(h->last_error),
                 "harness: bad test JSON: %s", jerr.text);
        return rc;
    }
    sl_record *rec = sl_record_new();
    if (rec == NULL) {
        sl_value_unref(v);
        return SL_ENOMEM;
    }
    rc = sl_record_set_fields(rec, v);
    if (rc != 0) {
        sl_record_free(rec);
        return rc;
    }
    return sl_harness_process(h, rec);
}

int sl_harness_flush(sl_harness *h)
{
    if (!h->init_ok)
        return SL_EINVAL;
    if (h->desc->flush == NULL)
        return 0;
    sl__stage_ctx_clear_error(&h->sc);
    int rc = h->desc->flush(h->state, &h->sc);
    if (rc < 0)
        note_error(h, rc);
    return rc;
}

int sl_harness_run(sl_harness *h)
{
    if (!h->init_ok || h->desc->run == NULL)
        return SL_EINVAL;
    sl__stage_ctx_clear_error(&h->sc);
    int rc = h->desc->run(h->state, &h->sc);
    if (rc < 0)
        note_error(h, rc);
    return rc;
}

void sl_harness_stop(sl_harness *h)
{
    sl_ctx_cancel(h->source_ctx, SL_ESTOPPED, "stop requested");
}

size_t sl_harness_emitted_count(const sl_harness *h)
{
    return h->n_emitted;
}

sl_record *sl_harness_emitted(const sl_harness *h, size_t i)
{
    return i < h->n_emitted ? h->emitted[i] : NULL;
}

size_t sl_harness_dropped_count(const sl_harness *h)
{
    return (size_t)sl__counter_get(&h->counters.dropped);
}

uint64_t sl_harness_stored_count(const sl_harness *h)
{
    return sl__counter_get(&h->counters.stored);
}

uint64_t sl_harness_error_count(const sl_harness *h)
{
    return sl__counter_get(&h->counters.errors);
}

uint64_t sl_harness_retry_count(const sl_harness *h)
{
    return sl__counter_get(&h->counters.retries);
}

uint64_t sl_harness_bytes_in(const sl_harness *h)
{
    return sl__counter_get(&h->counters.bytes_in);
}

size_t sl_harness_failed_count(const sl_harness *h)
{
    return h->n_failed;
}

sl_record *sl_harness_failed(const sl_harness *h, size_t i)
{
    return i < h->n_failed ? h->failed[i] : NULL;
}

const char *sl_harness_last_error(const sl_harness *h)
{
    return h->last_error;
}

void *sl_harness_state(sl_harness *h)
{
    return h->state;
}
