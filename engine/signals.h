/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Signals during `sluice run`: one dedicated thread takes SIGINT, SIGTERM
 * and SIGUSR1 with sigwait(); every other thread has them blocked, so no
 * handler ever runs in the middle of a stage. The first SIGINT/SIGTERM asks
 * the run to stop gracefully, the second forces it; SIGUSR1 dumps each
 * stage's state to stderr.
 *
 * Thread: main thread.
 */
#ifndef SLUICE_ENGINE_SIGNALS_H
#define SLUICE_ENGINE_SIGNALS_H

#include "engine/run.h"

typedef struct sl__signals sl__signals;

/*
 * Block SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 in the calling thread (threads
 * started afterwards inherit the mask) and ignore SIGPIPE, so that writing
 * to a closed pipe is an EPIPE error for the stage that did it. Call first
 * thing in main. Returns 0 or SL_EINTERNAL.
 */
int sl__signals_block(void);

/* Start the signal thread for run. Returns 0, SL_ENOMEM or SL_EINTERNAL. */
int sl__signals_start(sl__run *run, sl__signals **out);

/* Stop and join the signal thread. NULL: no-op. */
void sl__signals_stop(sl__signals *s);

#endif
