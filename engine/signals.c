/*
 * The signal thread of `sluice run`. See signals.h.
 *
 * SIGUSR2 is how sl__signals_stop wakes the thread: it sets `quit` first,
 * so a SIGUSR2 from outside is ignored.
 */
#include "engine/signals.h"

#include <pthread.h>
#include <unistd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/stage_ctx.h"
#include "engine/trace.h"
#include "sluice/error.h"

struct sl__signals {
    sl__run *run;             /* borrowed; outlives the thread */
    pthread_t thread;         /* the sigwait thread */
    _Atomic bool quit;        /* atomic: set before the waking SIGUSR2 */
};

static void fill_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
}

int sl__signals_block(void)
{
    sigset_t set;
    fill_set(&set);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return SL_EINTERNAL;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return SL_EINTERNAL;
    return 0;
}

static void *signal_main(void *arg)
{
    sl__signals *s = arg;
    sigset_t set;
    fill_set(&set);
    int stops = 0;
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (atomic_load(&s->quit))
            return NULL;
        switch (sig) {
        case SIGINT:
        case SIGTERM:
            stops++;
            sl__run_trace_note(s->run, "signal", NULL, 0,
                               sig == SIGINT ? "SIGINT" : "SIGTERM");
            if (stops == 1) {
                sl__log(SL_LOG_WARN, NULL,
                        "%s: stopping sources and draining what was read "
                        "(send it again to force a stop)",
                        sig == SIGINT ? "SIGINT" : "SIGTERM");
                sl__run_stop(s->run, false);
            } else if (stops == 2) {
                sl__log(SL_LOG_WARN, NULL, "%s again: forcing a stop "
                        "(a third signal exits at once)",
                        sig == SIGINT ? "SIGINT" : "SIGTERM");
                sl__run_stop(s->run, true);
            } else {
                /* A stage blocked in a call that ignores cancellation (a
                 * write to a pipe nobody reads) would otherwise keep the
                 * process alive: leave without waiting. SQLite's journal
                 * keeps its files whole. */
                static const char msg[] =
                    "sluice: third signal: exiting now without waiting for stages\n";
                ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
                (void)w;
                _exit(3);
            }
            break;
        case SIGUSR1:
            sl__run_trace_note(s->run, "signal", NULL, 0, "SIGUSR1");
            sl__run_dump(s->run, stderr);
            break;
        default:
            break;   /* a SIGUSR2 from outside */
        }
    }
}

int sl__signals_start(sl__run *run, sl__signals **out)
{
    sl__signals *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return SL_ENOMEM;
    s->run = run;
    atomic_init(&s->quit, false);
    if (pthread_create(&s->thread, NULL, signal_main, s) != 0) {
        free(s);
        return SL_EINTERNAL;
    }
    *out = s;
    return 0;
}

void sl__signals_stop(sl__signals *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->quit, true);
    pthread_kill(s->thread, SIGUSR2);
    pthread_join(s->thread, NULL);
    free(s);
}
