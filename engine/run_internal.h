/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The runtime's structures, shared by run.c (threads, records, stopping),
 * metrics_snapshot.c (reading counters), watchdog.c (stalls, dumps, leaks)
 * and trace.c (sampling). Nothing else includes this.
 */
#ifndef SLUICE_ENGINE_RUN_INTERNAL_H
#define SLUICE_ENGINE_RUN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "engine/run.h"
#include "engine/stage_ctx.h"
#include "engine/trace.h"
#include "engine/watchdog.h"
#include "sluice/breaker.h"
#include "sluice/channel.h"
#include "sluice/ratelimit.h"
#include "sluice/retry.h"

typedef struct run_stage run_stage;

/*
 * Records on their way to one reader's input channel. A source's outboxes
 * are also emptied by the monitor when the source goes quiet, so they are
 * guarded by mu; everyone else's belong to their worker alone.
 */
typedef struct outbox {
    sl_chan *ch;                /* the reader's input channel; borrowed */
    void **items;               /* queued records, oldest first */
    size_t cap;                 /* slots in items */
    _Atomic size_t n;           /* atomic: records queued (monitor peeks) */
    int64_t first_ns;           /* when the oldest arrived (monotonic) */
    bool locked;                /* a source's: guarded by mu */
    pthread_mutex_t mu;         /* guards the above when locked */
} outbox;

typedef struct run_worker {
    run_stage *st;              /* immutable */
    int index;                  /* immutable */
    pthread_t thread;           /* valid when started */
    bool started;               /* owner */
    sl_stage_ctx sc;            /* handed to the callbacks */
    sl__stage_counters counters;/* this worker's metrics */
    _Atomic int64_t blocked_send_ns; /* atomic: time handing records on */
    _Atomic int64_t idle_recv_ns;    /* atomic: time waiting for input */
    _Atomic int64_t done_ns;    /* atomic: when the worker ended, 0 before */
    _Atomic int64_t wait_since_ns; /* atomic: start of the send or receive
                                      it is blocked in now, 0 if none */
    void *state;                /* the stage's state (options filled) */
    bool options_filled;        /* sl__options_free is owed */
    outbox *outs;               /* one per reader of the stage */
    int64_t now_ns;             /* worker thread: last time read */
    bool now_stale;             /* worker thread: records ran since */
    sl__lat_sampler lat;        /* worker thread: which records to time */
    /* a breaker the stage watches (counters.breaker), as last read before
       destroy(): guarded by run->breaker_mu */
    bool breaker_detached;
    sl_breaker_state breaker_state;
    uint64_t breaker_opens;
    uint64_t breaker_rejections;
    uint64_t rng;               /* worker thread: retry jitter */
    bool dirty;                 /* worker thread: processed since flush() */
    sl__watch watch;            /* the record in hand, for the watchdog */
    sl__trace_worker *trace;    /* its trace track, or NULL */
} run_worker;

struct run_stage {
    sl__run *run;               /* immutable */
    size_t index;               /* immutable */
    const sl_stage_conf *conf;  /* immutable */
    const sl_stage_desc *desc;  /* immutable */
    const char *options_yaml;   /* immutable; tests */
    int n_workers;              /* immutable */
    run_worker *workers;        /* immutable array */
    bool ordered;               /* immutable: ordered output, workers > 1 */
    bool source;                /* immutable */
    sl_chan *in;                /* input channel; NULL for a source */
    _Atomic int producers;      /* atomic: upstream workers still running */
    size_t n_in;                /* immutable */
    run_stage **ins;            /* immutable: upstream stages */
    size_t n_out;               /* immutable */
    run_stage **outs;           /* immutable: readers */
    pthread_mutex_t recv_mu;    /* serialises receiving when workers > 1 */
    uint64_t next_ticket;       /* guarded by recv_mu: ordered batches */
    _Atomic uint64_t turn;      /* atomic: ticket whose output goes next */
    _Atomic uint32_t turn_word; /* atomic futex word: bumped on turn/cancel */
    sl_limiter *limiter;        /* engine-applied rate_limit, or NULL */
    sl_breaker *breaker;        /* engine-applied circuit_breaker, or NULL */
    int64_t timeout_ns;         /* engine-applied timeout per record, or 0 */
    sl_retry_policy retry;      /* on_error: retry */
};

enum run_outcome {
    OUTCOME_NONE = 0,
    OUTCOME_FAILED,
    OUTCOME_FORCED,
};

struct sl__run {
    const sl_config *cfg;       /* immutable; borrowed */
    const char *pipeline;       /* immutable */
    const sl_clock *clock;      /* immutable: the stages' clock */
    size_t batch;               /* immutable: records per hand-over, 1..64 */
    size_t n_stages;            /* immutable */
    run_stage *stages;          /* immutable array */
    sl_ctx *root;               /* cancelled on failure / forced stop */
    sl_ctx *sources;            /* child of root: cancelled on stop */
    _Atomic int outcome;        /* atomic: enum run_outcome, set once */
    char cause[512];            /* written once by the outcome's setter */
    _Atomic bool cause_ready;   /* atomic: cause is written */
    _Atomic bool stop_requested;/* atomic */
    _Atomic int64_t stop_ns;    /* atomic: when (monotonic) */
    _Atomic int64_t start_ns;   /* atomic: monotonic start, 0 before */
    _Atomic int64_t end_ns;     /* atomic: monotonic end, 0 while running */
    bool started;               /* owner */
    struct sl__acks *acks;      /* settings.state tracker, or NULL */
    /* dead letters */
    FILE *dl;                   /* NULL when no stage uses dead_letter */
    char *dl_path;              /* owned */
    pthread_mutex_t dl_mu;      /* guards dl: one writer at a time */
    /* metrics */
    pthread_mutex_t breaker_mu; /* guards stages' watched breakers against
                                   their destroy() while a snapshot reads */
    char *metrics_file;         /* owned; NULL = none */
    char *history_file;         /* owned; NULL = none */
    int64_t metrics_interval_ns;/* immutable */
    bool metrics_off;           /* immutable: no timing, no record sizes */
    sl__run_progress_fn progress; /* immutable */
    void *progress_arg;         /* immutable */
    int64_t progress_interval_ns; /* immutable */
    /* monitor */
    pthread_t monitor;          /* valid when monitor_started */
    bool monitor_started;       /* owner */
    _Atomic uint32_t monitor_word;  /* atomic futex word: bumped to wake */
    _Atomic bool monitor_sleeping;  /* atomic: in a long sleep */
    _Atomic int live_workers;   /* atomic: worker threads not yet done */
    sl__run_snapshot last;      /* monitor: previous periodic snapshot */
    bool has_last;              /* monitor */
    /* watchdog and trace */
    bool real_clock;            /* immutable: clock is sl_clock_real() */
    pthread_mutex_t wd_mu;      /* serialises watchdog checks */
    int threads_before;         /* owner: process threads at start, or -1 */
    sl__trace *trace;           /* immutable; NULL = no --trace */
};

/* Monotonic now in ns (the runtime's own timing). */
int64_t sl__run_now(void);

/*
 * A sign of life from w: its heartbeat, on the run's clock. real_now is
 * the monotonic time the worker just read, used as is when the run's clock
 * is the real one (the usual case: no extra clock read). Thread: worker.
 */
static inline void sl__run_pulse(run_worker *w, int64_t real_now)
{
    const sl__run *run = w->st->run;
    atomic_store_explicit(&w->counters.heartbeat_ns,
                          run->real_clock ? real_now : sl_clock_now(run->clock),
                          memory_order_relaxed);
}

#endif
