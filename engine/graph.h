/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The stage graph: a loaded sl_config with its wiring resolved
 * (DESIGN.md "Wiring").
 *
 *   - a stage reads the stages named in its `inputs`, or, without `inputs`,
 *     the stage before it in the file (config.c decides that, and whether a
 *     `file`/`http` stage fetches or stores);
 *   - several inputs = merge; a stage read by several stages = tee, each
 *     reader getting every record;
 *   - an unknown input name, reading from a sink, and cycles are errors;
 *   - a stage that is not a sink and that nothing reads is allowed — its
 *     records are discarded once counted — and gets a warning, since it is
 *     usually a forgotten sink.
 *
 * Thread: owner. A built graph is immutable and may be read from any thread
 * while its config lives.
 */
#ifndef SLUICE_ENGINE_GRAPH_H
#define SLUICE_ENGINE_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/config.h"
#include "engine/diag.h"

typedef struct sl_graph_node {
    const sl_stage_conf *conf;   /* the stage, borrowed from the config */
    const sl_stage_desc *desc;   /* conf->desc; NULL if loaded without a
                                    registry */
    sl_stage_kind kind;          /* desc->kind; without desc: source when it
                                    has no inputs, else transform */
    size_t n_inputs;             /* stages this one reads (merge if > 1) */
    size_t *inputs;              /* their indices, in `inputs:` order */
    size_t n_readers;            /* stages reading this one (tee if > 1) */
    size_t *readers;             /* their indices, in file order */
    int64_t capacity;            /* records per input channel: the stage's
                                    `capacity` or settings.channel_capacity */
    bool discarded;              /* not a sink, nobody reads it */
} sl_graph_node;

typedef struct sl_graph {
    const sl_config *cfg;        /* borrowed; must outlive the graph */
    size_t n;                    /* stages */
    sl_graph_node *nodes;        /* indexed like cfg->stages (file order) */
    size_t *order;               /* every index once, each stage after all
                                    of its inputs; otherwise file order */
} sl_graph;

/*
 * Resolve cfg's wiring. Every problem is reported (unknown inputs with a
 * suggestion and position, sinks used as inputs, each cycle named as
 * "a -> b -> a"); warnings for discarded outputs. Returns 0 with *out,
 * SL_ECONFIG (*out untouched) or SL_ENOMEM.
 */
int sl__graph_build(const sl_config *cfg, sl_diag *diag, sl_graph **out);
void sl__graph_destroy(sl_graph *g);                 /* NULL: no-op */

/*
 * Write the graph as Graphviz DOT (for `sluice graph`): one node per stage
 * labelled with its name, type and workers — sources as houses, sinks as
 * cylinders — and one edge per input. Returns 0 or SL_EIO.
 */
int sl__graph_to_dot(const sl_graph *g, FILE *out);

#endif
