/* Wiring: implicit and explicit inputs, merge, tee, errors, order, DOT. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/diag.h"
#include "engine/graph.h"
#include "engine/fake_stages.h"
#include "sluice/error.h"

static sl_diag *diag;
static sl_config *cfg;
static sl_graph *graph;

static void setup(void)
{
    diag = sl__diag_create();
    cfg = NULL;
    graph = NULL;
}

static void teardown(void)
{
    sl__graph_destroy(graph);
    sl__config_destroy(cfg);
    sl__diag_destroy(diag);
}

TestSuite(graph, .init = setup, .fini = teardown);

static const char *all_messages(void)
{
    static char buf[8192];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sl__diag_count(diag) && off < sizeof(buf); i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\n",
                                sl__diag_message(diag, i));
    return buf;
}

static bool has_message(const char *needle)
{
    for (size_t i = 0; i < sl__diag_count(diag); i++) {
        if (strstr(sl__diag_message(diag, i), needle) != NULL)
            return true;
    }
    return false;
}

/* Load text (must succeed) and build its graph; returns build's result. */
static int build(const char *text)
{
    sl_config_opts o = {.registry = &fake_registry, .no_env = true};
    int rc = sl__config_load_text(text, strlen(text), "g.yaml", &o, diag, &cfg);
    cr_assert_eq(rc, 0, "%s", all_messages());
    return sl__graph_build(cfg, diag, &graph);
}

static size_t idx(const char *name)
{
    long i = sl__config_find_stage(cfg, name);
    cr_assert_geq(i, 0, "no stage %s", name);
    return (size_t)i;
}

/* Position of stage name in the topological order. */
static size_t rank(const char *name)
{
    size_t i = idx(name);
    for (size_t k = 0; k < graph->n; k++) {
        if (graph->order[k] == i)
            return k;
    }
    cr_assert_fail("%s not in order", name);
    return 0;
}

Test(graph, linear_chain)
{
    cr_assert_eq(build("name: p\nstages:\n"
                       "  - {name: read, type: file, path: in}\n"
                       "  - {name: parse, type: json}\n"
                       "  - {name: keep, type: filter, where: x > 1}\n"
                       "  - {name: out, type: stdout}\n"),
                 0, "%s", all_messages());
    cr_assert_eq(graph->n, 4);
    const sl_graph_node *read = &graph->nodes[0];
    cr_assert_eq(read->kind, SL_STAGE_SOURCE);
    cr_assert_eq(read->n_inputs, 0);
    cr_assert_eq(read->n_readers, 1);
    cr_assert_eq(read->readers[0], 1);
    const sl_graph_node *keep = &graph->nodes[2];
    cr_assert_eq(keep->n_inputs, 1);
    cr_assert_eq(keep->inputs[0], 1);
    cr_assert_eq(keep->capacity, 1024);
    cr_assert_eq(graph->nodes[3].kind, SL_STAGE_SINK);
    for (size_t k = 0; k < 4; k++)
        cr_assert_eq(graph->order[k], k);
    cr_assert_eq(sl__diag_warning_count(diag), 0);
}

Test(graph, merge_and_tee)
{
    cr_assert_eq(build("name: p\nsettings: {channel_capacity: 64}\nstages:\n"
                       "  - {name: a, type: generate}\n"
                       "  - {name: b, type: stdin}\n"
                       "  - {name: parse, type: json, inputs: [a, b], capacity: 8}\n"
                       "  - {name: db, type: sqlite, path: x, table: t}\n"
                       "  - {name: out, type: stdout, inputs: parse}\n"),
                 0, "%s", all_messages());
    const sl_graph_node *parse = &graph->nodes[idx("parse")];
    cr_assert_eq(parse->n_inputs, 2);
    cr_assert_eq(parse->inputs[0], idx("a"));
    cr_assert_eq(parse->inputs[1], idx("b"));
    cr_assert_eq(parse->capacity, 8);
    cr_assert_eq(parse->n_readers, 2);
    cr_assert_eq(parse->readers[0], idx("db"));
    cr_assert_eq(parse->readers[1], idx("out"));
    cr_assert_eq(graph->nodes[idx("db")].capacity, 64);
    cr_assert_eq(graph->nodes[idx("b")].n_inputs, 0);
}

Test(graph, order_puts_inputs_first)
{
    /* Stages listed before the stage they read from. */
    cr_assert_eq(build("name: p\nstages:\n"
                       "  - {name: out, type: stdout, inputs: [mid]}\n"
                       "  - {name: mid, type: json, inputs: [src]}\n"
                       "  - {name: src, type: stdin}\n"),
                 0, "%s", all_messages());
    cr_assert_lt(rank("src"), rank("mid"));
    cr_assert_lt(rank("mid"), rank("out"));
}

Test(graph, order_is_file_order_when_free)
{
    cr_assert_eq(build("name: p\nstages:\n"
                       "  - {name: s1, type: stdin}\n"
                       "  - {name: s2, type: generate}\n"
                       "  - {name: o1, type: stdout, inputs: [s1]}\n"
                       "  - {name: o2, type: stdout, inputs: [s2]}\n"),
                 0, "%s", all_messages());
    cr_assert_eq(rank("s1"), 0);
    cr_assert_eq(rank("s2"), 1);
    cr_assert_eq(rank("o1"), 2);
    cr_assert_eq(rank("o2"), 3);
}

Test(graph, unread_output_warns)
{
    cr_assert_eq(build("name: p\nstages:\n"
                       "  - {name: read, type: stdin}\n"
                       "  - {name: parse, type: json}\n"),
                 0, "%s", all_messages());
    cr_assert(graph->nodes[1].discarded);
    cr_assert_not(graph->nodes[0].discarded);
    cr_assert_eq(sl__diag_warning_count(diag), 1);
    cr_assert_str_eq(sl__diag_warning(diag, 0),
                     "g.yaml:4:5: stage 'parse' (json transform): nothing "
                     "reads its output, so its records are discarded");
    cr_assert_eq(sl__diag_count(diag), 0);
}

Test(graph, unknown_input_suggests)
{
    cr_assert_eq(build("name: p\nstages:\n"
                       "  - {name: reader, type: stdin}\n"
                       "  - {name: out, type: stdout, inputs: [raeder, zzz]}\n"),
                 SL_ECONFIG);
    cr_assert(has_message("g.yaml:4:40: stage 'out': unknown input 'raeder' "
                          "(did you mean 'reader'?)"), "%s", all_messages());
    cr_assert(has_message("g.yaml:4:48: stage 'out': unknown input 'zzz' (no "
                          "stage has that name)"));
    cr_assert_null(graph);
}

Test(graph, sink_as_input)
{
    cr_assert_eq(build("name: p\nstages:\n"
                       "  - {name: read, type: stdin}\n"
                       "  - {name: db, type: sqlite, path: x, table: t}\n"
                       "  - {name: more, type: json, inputs: [db]}\n"
                       "  - {name: out, type: stdout}\n"),
                 SL_ECONFIG);
    cr_assert(has_message("g.yaml:5:39: stage 'more': input 'db' is a sink "
                          "(type sqlite) and has no output"), "%s",
              all_messages());
}

Test(graph, implicit_input_from_sink)
{
    cr_assert_eq(build("name: p\nstages:\n"
                       "  - {name: read, type: stdin}\n"
                       "  - {name: a, type: stdout}\n"
                       "  - {name: b, type: file, path: out}\n"),
                 SL_ECONFIG);
    cr_assert(has_message("g.yaml:5:5: stage 'b' reads from the stage before "
                          "it, 'a', which is a sink (type stdout) and has no "
                          "output; give 'b' an 'inputs:' list"), "%s",
              all_messages());
}

Test(graph, cycles_named)
{
    cr_assert_eq(build("name: p\nstages:\n"
                       "  - {name: src, type: stdin}\n"
                       "  - {name: a, type: json, inputs: [src, c]}\n"
                       "  - {name: b, type: json, inputs: [a]}\n"
                       "  - {name: c, type: json, inputs: [b]}\n"
                       "  - {name: self, type: json, inputs: [self]}\n"
                       "  - {name: out, type: stdout, inputs: [c]}\n"),
                 SL_ECONFIG);
    cr_assert(has_message("g.yaml:5:36: stages form a cycle: a -> b -> c -> a"),
              "%s", all_messages());
    cr_assert(has_message("g.yaml:7:39: stages form a cycle: self -> self"));
    cr_assert_eq(sl__diag_errors(diag), 2, "%s", all_messages());
}

Test(graph, many_errors_all_reported)
{
    cr_assert_eq(build("name: p\nstages:\n"
                       "  - {name: s, type: stdin}\n"
                       "  - {name: a, type: json, inputs: [x1]}\n"
                       "  - {name: b, type: json, inputs: [x2]}\n"
                       "  - {name: c, type: stdout, inputs: [x3]}\n"),
                 SL_ECONFIG);
    cr_assert_eq(sl__diag_errors(diag), 3, "%s", all_messages());
}

Test(graph, no_registry_kinds_from_wiring)
{
    const char *t = "name: p\nstages:\n  - {name: a, type: x}\n"
                    "  - {name: b, type: y, inputs: [a]}\n";
    cr_assert_eq(sl__config_load_text(t, strlen(t), "g.yaml", NULL, diag, &cfg),
                 0);
    cr_assert_eq(sl__graph_build(cfg, diag, &graph), 0, "%s", all_messages());
    cr_assert_eq(graph->nodes[0].kind, SL_STAGE_SOURCE);
    cr_assert_eq(graph->nodes[1].kind, SL_STAGE_TRANSFORM);
    cr_assert_null(graph->nodes[0].desc);
}

Test(graph, dot_output)
{
    cr_assert_eq(build("name: 'demo \"x\"'\nstages:\n"
                       "  - {name: read, type: file, path: in}\n"
                       "  - {name: parse, type: json, workers: 4}\n"
                       "  - {name: db, type: sqlite, path: x, table: t}\n"
                       "  - {name: out, type: stdout, inputs: [parse]}\n"),
                 0, "%s", all_messages());
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    cr_assert_eq(sl__graph_to_dot(graph, fp), 0);
    fclose(fp);
    cr_assert_str_eq(buf,
        "digraph \"demo \\\"x\\\"\" {\n"
        "  rankdir=LR;\n"
        "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
        "  edge [fontname=\"Helvetica\", fontsize=10];\n"
        "  \"read\" [label=\"read\\nfile\", shape=house, orientation=270];\n"
        "  \"parse\" [label=\"parse\\njson x4\", shape=box];\n"
        "  \"db\" [label=\"db\\nsqlite\", shape=cylinder];\n"
        "  \"out\" [label=\"out\\nstdout\", shape=cylinder];\n"
        "  \"read\" -> \"parse\";\n"
        "  \"parse\" -> \"db\";\n"
        "  \"parse\" -> \"out\";\n"
        "}\n");
    free(buf);
}

Test(graph, destroy_null)
{
    sl__graph_destroy(NULL);
    sl__config_destroy(NULL);
    sl__yaml_destroy(NULL);
}
