/*
 * The activity trace: per-worker span buffers, the monitor's sampler and
 * the Chrome trace-event JSON writer. See trace.h for the model and the
 * size bound.
 *
 * Events live in chunks owned by whoever writes them: a worker's spans
 * and error instants in its own list (no lock), the sampler's counters
 * and instants in the monitor's list (no lock: one thread), and the rare
 * notes from any thread (signals, the watchdog) in a list guarded by
 * notes_mu. The file is written once, after every worker has ended.
 */
#include "engine/trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/run_internal.h"
#include "sluice/error.h"

/* ================================================================== */
/* Event buffers                                                       */
/* ================================================================== */

enum ev_type {
    EV_SPAN = 0,     /* kind: sl__trace_kind; part[]: ns of each inside */
    EV_COUNTER,      /* stage: the channel's reader; value: depth */
    EV_INSTANT,      /* name, text, value: a count (0 = none) */
};

typedef struct tr_event {
    int64_t ts;          /* ns since the trace's start */
    int64_t dur;         /* span: ns */
    int64_t value;       /* counter value, instant count */
    int64_t part[SL__TRACE_KINDS]; /* span: ns of each kind inside it */
    const char *name;    /* instant: static name; counter: stage name */
    char *text;          /* instant: owned detail, or NULL */
    uint32_t tid;        /* track: 0 = the process */
    uint8_t type;        /* enum ev_type */
    uint8_t kind;        /* span: sl__trace_kind */
    bool mixed;          /* span: merged from several kinds */
} tr_event;

#define CHUNK_EVENTS 512

typedef struct tr_chunk {
    struct tr_chunk *next;        /* owner */
    size_t n;                     /* owner: events used */
    tr_event ev[CHUNK_EVENTS];    /* owner */
} tr_chunk;

typedef struct tr_buf {
    tr_chunk *head;               /* owner: first chunk */
    tr_chunk *tail;               /* owner: chunk being filled */
    uint64_t n;                   /* owner: events kept */
    uint64_t lost;                /* owner: events lost to ENOMEM */
} tr_buf;

/* A free slot at the end of b, or NULL (counted as lost). */
static tr_event *buf_add(tr_buf *b)
{
    if (b->tail == NULL || b->tail->n == CHUNK_EVENTS) {
        tr_chunk *c = malloc(sizeof(*c));
        if (c == NULL) {
            b->lost++;
            return NULL;
        }
        c->next = NULL;
        c->n = 0;
        if (b->tail != NULL)
            b->tail->next = c;
        else
            b->head = c;
        b->tail = c;
    }
    tr_event *e = &b->tail->ev[b->tail->n++];
    memset(e, 0, sizeof(*e));
    b->n++;
    return e;
}

static void buf_fini(tr_buf *b)
{
    tr_chunk *c = b->head;
    while (c != NULL) {
        tr_chunk *next = c->next;
        for (size_t i = 0; i < c->n; i++)
            free(c->ev[i].text);
        free(c);
        c = next;
    }
    memset(b, 0, sizeof(*b));
}

/* ================================================================== */
/* The trace                                                           */
/* ================================================================== */

struct sl__trace_worker {
    sl__trace *tr;              /* immutable */
    const char *stage;          /* immutable; borrowed */
    int index;                  /* immutable: worker index */
    uint32_t tid;               /* immutable: its track */
    /* the worker's own (worker thread) */
    tr_buf buf;                 /* its spans and error instants */
    int64_t last;               /* end of the last segment */
    int64_t ws;                 /* start of the open window */
    int64_t acc[SL__TRACE_KINDS]; /* ns of each kind in the window */
    int64_t res;                /* resolution now */
    uint64_t spans;             /* spans written */
    int64_t err_ts;             /* when the last error instant was kept */
    int64_t err_skipped;        /* errors since, not written */
    bool begun;                 /* begin was called */
    _Atomic uint64_t traced_errors; /* atomic: errors given an instant */
    /* the sampler's (monitor thread) */
    uint64_t seen_retries;      /* retries counter already reported */
    uint64_t seen_errors;       /* stage-counted errors already reported */
    int breaker_state;          /* watched breaker: last state, -1 none */
    uint64_t breaker_opens;     /* watched breaker: opens last seen */
    struct sl__trace_worker *next; /* owner: the trace's list */
};

struct sl__trace {
    FILE *f;                    /* owner; NULL after finish */
    char *pipeline;             /* owned */
    int64_t start_ns;           /* immutable after start */
    uint32_t next_tid;          /* owner: before start */
    sl__trace_worker *workers;  /* owner: list, in creation order */
    /* sampler (monitor thread) */
    tr_buf samples;             /* counters and sampled instants */
    int64_t *depth;             /* last depth per stage; -1 never */
    int *breaker_state;         /* engine breaker per stage; -1 none */
    uint64_t *breaker_opens;    /* engine breaker per stage */
    size_t n_stages;            /* entries in the three arrays */
    bool sampler_ready;         /* the arrays are allocated */
    bool sampler_failed;        /* they could not be */
    int64_t period;             /* sampling period now */
    uint64_t ticks;             /* samples taken */
    /* notes from any thread */
    pthread_mutex_t notes_mu;   /* guards notes */
    tr_buf notes;               /* guarded by notes_mu */
    uint64_t written;           /* owner: events in the file */
};

int sl__trace_create(const char *path, const char *pipeline, char *err,
                     size_t err_size, sl__trace **out)
{
    sl__trace *tr = calloc(1, sizeof(*tr));
    if (tr == NULL)
        return SL_ENOMEM;
    tr->pipeline = strdup(pipeline != NULL ? pipeline : "pipeline");
    if (tr->pipeline == NULL)
        goto out_free_tr;
    tr->f = fopen(path, "w");
    if (tr->f == NULL) {
        snprintf(err, err_size, "cannot open trace file %s: %s", path,
                 strerror(errno));
        free(tr->pipeline);
        free(tr);
        return SL_EIO;
    }
    tr->next_tid = 1;
    tr->period = SL__TRACE_SAMPLE0_NS;
    pthread_mutex_init(&tr->notes_mu, NULL);
    *out = tr;
    return 0;
out_free_tr:
    free(tr);
    return SL_ENOMEM;
}

sl__trace_worker *sl__trace_add_worker(sl__trace *tr, const char *stage,
                                       int index)
{
    sl__trace_worker *tw = calloc(1, sizeof(*tw));
    if (tw == NULL)
        return NULL;
    tw->tr = tr;
    tw->stage = stage;
    tw->index = index;
    tw->tid = tr->next_tid++;
    tw->res = SL__TRACE_RES0_NS;
    tw->breaker_state = -1;
    atomic_init(&tw->traced_errors, 0);
    /* append, so tracks come out in stage order */
    sl__trace_worker **p = &tr->workers;
    while (*p != NULL)
        p = &(*p)->next;
    *p = tw;
    return tw;
}

void sl__trace_start(sl__trace *tr, int64_t now)
{
    tr->start_ns = now;
}

/* ================================================================== */
/* Worker side                                                         */
/* ================================================================== */

static void emit_span(sl__trace_worker *tw, int64_t from, int64_t to,
                      const int64_t *part)
{
    if (to <= from)
        return;
    tr_event *e = buf_add(&tw->buf);
    if (e == NULL)
        return;
    int kinds = 0, top = 0;
    for (int k = 0; k < SL__TRACE_KINDS; k++) {
        e->part[k] = part[k];
        if (part[k] > 0)
            kinds++;
        if (part[k] > part[top])
            top = k;
    }
    e->type = EV_SPAN;
    e->tid = tw->tid;
    e->ts = from - tw->tr->start_ns;
    e->dur = to - from;
    e->kind = (uint8_t)top;
    e->mixed = kinds > 1;
    if (++tw->spans % SL__TRACE_LEVEL_SPANS == 0)
        tw->res *= 2;
}

/* Close the open window [ws, to) as one span. */
static void close_window(sl__trace_worker *tw, int64_t to)
{
    int64_t sum = 0;
    for (int k = 0; k < SL__TRACE_KINDS; k++)
        sum += tw->acc[k];
    if (sum > 0)
        emit_span(tw, tw->ws, to, tw->acc);
    memset(tw->acc, 0, sizeof(tw->acc));
    tw->ws = to;
}

/*
 * One stretch [t0, t1) of one kind. A stretch at least as long as the
 * resolution is a span of its own: the window before it is closed first
 * if it spans the resolution too, else folded into it. A shorter stretch
 * joins the window, which closes once it spans the resolution. So every
 * span but a worker's last is at least the resolution long.
 */
static void add_stretch(sl__trace_worker *tw, sl__trace_kind kind, int64_t t0,
                        int64_t t1)
{
    int64_t d = t1 - t0;
    if (d <= 0)
        return;
    if (d >= tw->res) {
        if (t0 - tw->ws >= tw->res)
            close_window(tw, t0);
        tw->acc[kind] += d;
        close_window(tw, t1);
        return;
    }
    tw->acc[kind] += d;
    if (t1 - tw->ws >= tw->res)
        close_window(tw, t1);
}

void sl__trace_worker_begin(sl__trace_worker *tw, int64_t now)
{
    if (tw == NULL)
        return;
    tw->last = now;
    tw->ws = now;
    tw->begun = true;
}

void sl__trace_segment(sl__trace_worker *tw, sl__trace_kind kind, int64_t t0,
                       int64_t t1)
{
    if (!tw->begun)
        sl__trace_worker_begin(tw, t0);
    if (t0 < tw->last)
        t0 = tw->last;
    if (t1 < t0)
        t1 = t0;
    add_stretch(tw, SL__TRACE_BUSY, tw->last, t0);
    add_stretch(tw, kind, t0, t1);
    tw->last = t1;
}

void sl__trace_worker_end(sl__trace_worker *tw, int64_t now)
{
    if (tw == NULL || !tw->begun)
        return;
    if (now > tw->last)
        add_stretch(tw, SL__TRACE_BUSY, tw->last, now);
    tw->last = now > tw->last ? now : tw->last;
    close_window(tw, tw->last);
}

void sl__trace_error(sl__trace_worker *tw, int64_t now, const char *reason)
{
    if (tw == NULL)
        return;
    if (tw->err_ts != 0 && now - tw->err_ts < tw->res) {
        tw->err_skipped++;
        return;
    }
    tr_event *e = buf_add(&tw->buf);
    if (e == NULL)
        return;
    e->type = EV_INSTANT;
    e->tid = tw->tid;
    e->ts = now - tw->tr->start_ns;
    e->name = "error";
    e->value = tw->err_skipped + 1;
    e->text = reason != NULL ? strdup(reason) : NULL;
    atomic_store_explicit(
        &tw->traced_errors,
        atomic_load_explicit(&tw->traced_errors, memory_order_relaxed) +
            (uint64_t)e->value,
        memory_order_relaxed);
    tw->err_ts = now;
    tw->err_skipped = 0;
}

/* ================================================================== */
/* Monitor side                                                        */
/* ================================================================== */

static void sample_instant(sl__trace *tr, int64_t now, uint32_t tid,
                           const char *name, int64_t count, const char *text)
{
    tr_event *e = buf_add(&tr->samples);
    if (e == NULL)
        return;
    e->type = EV_INSTANT;
    e->tid = tid;
    e->ts = now - tr->start_ns;
    e->name = name;
    e->value = count;
    e->text = text != NULL ? strdup(text) : NULL;
}

static bool sampler_setup(sl__trace *tr, size_t n)
{
    if (tr->sampler_ready)
        return true;
    if (tr->sampler_failed)
        return false;
    tr->depth = malloc(n * sizeof(*tr->depth));
    tr->breaker_state = malloc(n * sizeof(*tr->breaker_state));
    tr->breaker_opens = calloc(n, sizeof(*tr->breaker_opens));
    if (tr->depth == NULL || tr->breaker_state == NULL ||
        tr->breaker_opens == NULL) {
        tr->sampler_failed = true;
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        tr->depth[i] = -1;
        tr->breaker_state[i] = -1;
    }
    tr->n_stages = n;
    tr->sampler_ready = true;
    return true;
}

/* A breaker's state and opens against what was seen last: an instant
 * "breaker" with "from -> to" when the state moved, or it reopened. */
static void sample_breaker(sl__trace *tr, int64_t now, uint32_t tid,
                           const char *stage, sl_breaker_state state,
                           uint64_t opens, int *seen_state,
                           uint64_t *seen_opens)
{
    if (*seen_state < 0) {
        *seen_state = (int)state;
        *seen_opens = opens;
        return;
    }
    if ((int)state != *seen_state || opens != *seen_opens) {
        char text[160];
        snprintf(text, sizeof(text), "stage %s: %s -> %s (opened %llu times)",
                 stage, sl_breaker_state_name((sl_breaker_state)*seen_state),
                 sl_breaker_state_name(state), (unsigned long long)opens);
        sample_instant(tr, now, tid, "breaker", 0, text);
        *seen_state = (int)state;
        *seen_opens = opens;
    }
}

int64_t sl__trace_sample(sl__run *run, int64_t now)
{
    sl__trace *tr = run->trace;
    if (tr == NULL)
        return INT64_MAX;
    if (!sampler_setup(tr, run->n_stages))
        return INT64_MAX;
    for (size_t s = 0; s < run->n_stages; s++) {
        run_stage *st = &run->stages[s];
        if (st->in != NULL) {
            int64_t d = (int64_t)sl_chan_len(st->in);
            if (d != tr->depth[s]) {
                tr_event *e = buf_add(&tr->samples);
                if (e != NULL) {
                    e->type = EV_COUNTER;
                    e->ts = now - tr->start_ns;
                    e->name = st->conf->name;
                    e->value = d;
                }
                tr->depth[s] = d;
            }
        }
        uint32_t first_tid = st->workers[0].trace != NULL
                                 ? st->workers[0].trace->tid : 0;
        if (st->breaker != NULL)
            sample_breaker(tr, now, first_tid, st->conf->name,
                           sl_breaker_get_state(st->breaker),
                           sl_breaker_opens(st->breaker),
                           &tr->breaker_state[s], &tr->breaker_opens[s]);
        for (int i = 0; i < st->n_workers; i++) {
            run_worker *w = &st->workers[i];
            sl__trace_worker *tw = w->trace;
            if (tw == NULL)
                continue;
            uint64_t retries = sl__counter_get(&w->counters.retries);
            if (retries > tw->seen_retries) {
                sample_instant(tr, now, tw->tid, "retry",
                               (int64_t)(retries - tw->seen_retries), NULL);
                tw->seen_retries = retries;
            }
            /* errors a stage counted itself (sl_stage_count_error) */
            uint64_t errors = sl__counter_get(&w->counters.errors);
            uint64_t traced = atomic_load_explicit(&tw->traced_errors,
                                                   memory_order_relaxed);
            uint64_t own = errors > traced ? errors - traced : 0;
            if (own > tw->seen_errors) {
                sample_instant(tr, now, tw->tid, "errors",
                               (int64_t)(own - tw->seen_errors), NULL);
                tw->seen_errors = own;
            }
            pthread_mutex_lock(&run->breaker_mu);
            sl_breaker *b = atomic_load(&w->counters.breaker);
            if (b != NULL)
                sample_breaker(tr, now, tw->tid, st->conf->name,
                               sl_breaker_get_state(b), sl_breaker_opens(b),
                               &tw->breaker_state, &tw->breaker_opens);
            else if (w->breaker_detached)
                sample_breaker(tr, now, tw->tid, st->conf->name,
                               w->breaker_state, w->breaker_opens,
                               &tw->breaker_state, &tw->breaker_opens);
            pthread_mutex_unlock(&run->breaker_mu);
        }
    }
    if (++tr->ticks % SL__TRACE_LEVEL_SAMPLES == 0)
        tr->period *= 2;
    return now + tr->period;
}

void sl__run_trace_note(sl__run *run, const char *name, const char *stage,
                        int worker, const char *detail)
{
    sl__trace *tr = run != NULL ? run->trace : NULL;
    if (tr == NULL)
        return;
    uint32_t tid = 0;
    if (stage != NULL) {
        for (sl__trace_worker *tw = tr->workers; tw != NULL; tw = tw->next)
            if (tw->index == worker && strcmp(tw->stage, stage) == 0)
                tid = tw->tid;
    }
    int64_t now = sl__run_now();
    pthread_mutex_lock(&tr->notes_mu);
    tr_event *e = buf_add(&tr->notes);
    if (e != NULL) {
        e->type = EV_INSTANT;
        e->tid = tid;
        e->ts = now - tr->start_ns;
        e->name = name;
        e->text = detail != NULL ? strdup(detail) : NULL;
    }
    pthread_mutex_unlock(&tr->notes_mu);
}

/* ================================================================== */
/* Writing                                                             */
/* ================================================================== */

/*
 * Events are formatted by hand into a line buffer and written with one
 * fwrite each: fprintf's format parsing made writing the file the larger
 * part of the trace's cost on short runs.
 */
typedef struct line {
    char buf[2048];              /* the event being formatted */
    size_t len;                  /* bytes used */
} line;

static void put_raw(line *l, const char *s, size_t n)
{
    if (n > sizeof(l->buf) - l->len)
        n = sizeof(l->buf) - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_lit(line *l, const char *s)
{
    put_raw(l, s, strlen(s));
}

static void put_uint(line *l, uint64_t v)
{
    char d[24];
    size_t n = 0;
    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    put_raw(l, d + sizeof(d) - n, n);
}

/* ns as microseconds with three decimals (the format's unit). */
static void put_us(line *l, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    put_uint(l, (uint64_t)(ns / 1000));
    char frac[4] = {'.', (char)('0' + ns % 1000 / 100),
                    (char)('0' + ns % 100 / 10), (char)('0' + ns % 10)};
    put_raw(l, frac, 4);
}

/* s as a JSON string (cut to fit the line). */
static void put_string(line *l, const char *s)
{
    put_lit(l, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (l->len + 16 >= sizeof(l->buf))
            break;   /* keep room for what closes the event */
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            put_raw(l, e, 2);
        } else if (*p < 0x20) {
            static const char hex[] = "0123456789abcdef";
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            put_raw(l, e, 6);
        } else {
            put_raw(l, (const char *)p, 1);
        }
    }
    put_lit(l, "\"");
}

static void line_out(line *l, FILE *f)
{
    fwrite(l->buf, 1, l->len, f);
    l->len = 0;
}

static const char *const kind_names[SL__TRACE_KINDS] = {"busy", "blocked",
                                                        "idle"};
/* chrome://tracing colour names; Perfetto colours by name. */
static const char *const kind_colours[SL__TRACE_KINDS] = {
    "thread_state_running", "terrible", "thread_state_sleeping"};

static void put_event(line *l, const tr_event *e)
{
    switch (e->type) {
    case EV_SPAN:
        put_lit(l, "{\"ph\":\"X\",\"pid\":1,\"tid\":");
        put_uint(l, e->tid);
        put_lit(l, ",\"name\":\"");
        put_lit(l, kind_names[e->kind]);
        put_lit(l, "\",\"cat\":\"worker\",\"cname\":\"");
        put_lit(l, kind_colours[e->kind]);
        put_lit(l, "\",\"ts\":");
        put_us(l, e->ts);
        put_lit(l, ",\"dur\":");
        put_us(l, e->dur);
        if (e->mixed) {
            put_lit(l, ",\"args\":{\"merged\":true");
            for (int k = 0; k < SL__TRACE_KINDS; k++) {
                put_lit(l, ",\"");
                put_lit(l, kind_names[k]);
                put_lit(l, "_us\":");
                put_us(l, e->part[k]);
            }
            put_lit(l, "}");
        }
        put_lit(l, "}");
        break;
    case EV_COUNTER:
        put_lit(l, "{\"ph\":\"C\",\"pid\":1,\"name\":");
        char name[200];
        snprintf(name, sizeof(name), "queue %s", e->name);
        put_string(l, name);
        put_lit(l, ",\"ts\":");
        put_us(l, e->ts);
        put_lit(l, ",\"args\":{\"depth\":");
        put_uint(l, (uint64_t)(e->value > 0 ? e->value : 0));
        put_lit(l, "}}");
        break;
    case EV_INSTANT:
        put_lit(l, "{\"ph\":\"i\",\"pid\":1,\"tid\":");
        put_uint(l, e->tid);
        put_lit(l, e->tid == 0 ? ",\"s\":\"g\",\"name\":" : ",\"s\":\"t\",\"name\":");
        put_string(l, e->name);
        put_lit(l, ",\"cat\":\"event\",\"ts\":");
        put_us(l, e->ts);
        put_lit(l, ",\"args\":{");
        bool comma = false;
        if (e->value > 0) {
            put_lit(l, "\"count\":");
            put_uint(l, (uint64_t)e->value);
            comma = true;
        }
        if (e->text != NULL) {
            put_lit(l, comma ? ",\"detail\":" : "\"detail\":");
            put_string(l, e->text);
        }
        put_lit(l, "}}");
        break;
    }
}

static void put_buf(FILE *f, line *l, const tr_buf *b, uint64_t *written)
{
    for (const tr_chunk *c = b->head; c != NULL; c = c->next) {
        for (size_t i = 0; i < c->n; i++) {
            put_lit(l, ",\n");
            put_event(l, &c->ev[i]);
            line_out(l, f);
            (*written)++;
        }
    }
}

int sl__trace_finish(sl__trace *tr, int64_t end_ns, const char *status,
                     const char *cause)
{
    FILE *f = tr->f;
    if (f == NULL)
        return SL_EINVAL;
    char *iobuf = malloc(1 << 16);
    if (iobuf != NULL)
        setvbuf(f, iobuf, _IOFBF, 1 << 16);
    line l = {.len = 0};
    uint64_t lost = tr->samples.lost + tr->notes.lost;
    uint64_t n = 0;
    for (sl__trace_worker *tw = tr->workers; tw != NULL; tw = tw->next)
        lost += tw->buf.lost;
    put_lit(&l, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"pipeline\":");
    put_string(&l, tr->pipeline);
    put_lit(&l, ",\"producer\":\"sluice run --trace\",\"span_resolution_us\":");
    put_us(&l, SL__TRACE_RES0_NS);
    put_lit(&l, ",\"events_lost\":");
    put_uint(&l, lost);
    put_lit(&l, "},\n\"traceEvents\":[\n");
    put_lit(&l, "{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":"
                "{\"name\":");
    char label[300];
    snprintf(label, sizeof(label), "sluice %s", tr->pipeline);
    put_string(&l, label);
    put_lit(&l, "}}");
    line_out(&l, f);
    for (sl__trace_worker *tw = tr->workers; tw != NULL; tw = tw->next) {
        snprintf(label, sizeof(label), "%s #%d", tw->stage, tw->index);
        put_lit(&l, ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":");
        put_uint(&l, tw->tid);
        put_lit(&l, ",\"name\":\"thread_name\",\"args\":{\"name\":");
        put_string(&l, label);
        put_lit(&l, "}},\n{\"ph\":\"M\",\"pid\":1,\"tid\":");
        put_uint(&l, tw->tid);
        put_lit(&l, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":");
        put_uint(&l, tw->tid);
        put_lit(&l, "}}");
        line_out(&l, f);
    }
    for (sl__trace_worker *tw = tr->workers; tw != NULL; tw = tw->next)
        put_buf(f, &l, &tw->buf, &n);
    put_buf(f, &l, &tr->samples, &n);
    pthread_mutex_lock(&tr->notes_mu);
    put_buf(f, &l, &tr->notes, &n);
    pthread_mutex_unlock(&tr->notes_mu);
    put_lit(&l, ",\n{\"ph\":\"i\",\"pid\":1,\"tid\":0,\"s\":\"g\",\"name\":\"end\","
                "\"cat\":\"event\",\"ts\":");
    put_us(&l, end_ns - tr->start_ns);
    put_lit(&l, ",\"args\":{\"status\":");
    put_string(&l, status != NULL ? status : "");
    if (cause != NULL && cause[0] != '\0') {
        put_lit(&l, ",\"cause\":");
        put_string(&l, cause);
    }
    put_lit(&l, "}}\n]}\n");
    line_out(&l, f);
    n++;
    tr->written = n;
    int rc = ferror(f) ? SL_EIO : 0;
    if (fclose(f) != 0)
        rc = SL_EIO;
    free(iobuf);
    tr->f = NULL;
    return rc;
}

uint64_t sl__trace_events(const sl__trace *tr)
{
    return tr != NULL ? tr->written : 0;
}

void sl__trace_destroy(sl__trace *tr)
{
    if (tr == NULL)
        return;
    if (tr->f != NULL)
        fclose(tr->f);
    sl__trace_worker *tw = tr->workers;
    while (tw != NULL) {
        sl__trace_worker *next = tw->next;
        buf_fini(&tw->buf);
        free(tw);
        tw = next;
    }
    buf_fini(&tr->samples);
    buf_fini(&tr->notes);
    pthread_mutex_destroy(&tr->notes_mu);
    free(tr->depth);
    free(tr->breaker_state);
    free(tr->breaker_opens);
    free(tr->pipeline);
    free(tr);
}
