/*
 * What acknowledgements cost: the same pipelines with settings.state on
 * and off, run alternately in one process, medians compared.
 *
 *   bench_acks [N] [runs] [parts|typical|sqlite]
 *                              default N = 1000000, runs = 9, both
 *
 * Pipelines:
 *   typical   generate (3 fields) -> filter (drops 10%) -> map -> null:
 *             built-in stages doing little work, so the per-record cost of
 *             the acknowledgement (a ring slot, a reference dropped per
 *             record, lanes advanced in batches, positions saved every
 *             100 ms) shows
 *   sqlite    file (N JSON lines) -> json -> filter -> sqlite: with state
 *             on, the store is in the state file (exactly-once: positions
 *             commit in each batch's transaction)
 *
 * and, steadier than whole runs on a shared machine, the hot path alone
 * on one thread (thread CPU time, best of 5): a record given a slot and
 * freed (one store), and a record teed into two stores.
 *
 * With state on, the state file is removed before every run so each run
 * starts afresh (a kept one would resume after the end and read nothing).
 * Prints per pipeline and mode the median records/s (wall clock) and the
 * median and smallest process CPU time per record, and "on" over "off".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine/acks.h"
#include "engine/cli.h"
#include "engine/record_internal.h"
#include "engine/diag.h"
#include "engine/run.h"
#include "sluice/plugin.h"

#include "bench_common.h"

static void remove_db(const char *path)
{
    char p[512];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

/* One run of l; wall and CPU seconds and the records the last stage took. */
static int run_loaded(const sl__loaded *l, double *wall, double *cpu,
                      uint64_t *last_in)
{
    const sl_graph *g = l->graph;
    sl__run_stage st[8];
    if (g->n > 8)
        return 1;
    for (size_t i = 0; i < g->n; i++) {
        memset(&st[i], 0, sizeof(st[i]));
        st[i].conf = &l->cfg->stages[i];
        st[i].n_inputs = g->nodes[i].n_inputs;
        st[i].inputs = g->nodes[i].inputs;
    }
    sl__run_opts o = {.cfg = l->cfg, .n_stages = g->n, .stages = st};
    return timed_run(&o, g->n - 1, wall, cpu, last_in);
}

/*
 * ns per record of the acknowledgement hot path: a source record created
 * and positioned, given a slot (tracked) or not, copied for a tee when
 * tee, and freed; lanes advanced as the source does (a quarter ring at a
 * time). The difference tracked - untracked is the cost.
 */
static double hot_path(const char *dir, bool tee, bool tracked)
{
    static const size_t src_outs[] = {1}, tee_outs[] = {2, 3};
    sl__acks_stage line[] = {{"src", true, 1, 1, src_outs},
                             {"sink", false, 1, 0, NULL}};
    sl__acks_stage teed[] = {{"src", true, 1, 1, src_outs},
                             {"t", false, 1, 2, tee_outs},
                             {"a", false, 1, 0, NULL},
                             {"b", false, 1, 0, NULL}};
    char state[300], err[512];
    snprintf(state, sizeof(state), "%s/hot.db", dir);
    double best = 1e99;
    for (int rep = 0; rep < 5; rep++) {
        remove_db(state);
        sl_ctx *root;
        sl__acks *acks = NULL;
        if (sl_ctx_create(&root) != 0 ||
            sl__acks_create(state, "hot", tee ? teed : line, tee ? 4 : 2,
                            root, err, sizeof(err), &acks) != 0) {
            fprintf(stderr, "hot path: %s\n", err);
            exit(1);
        }
        sl__ack_source *as = sl__acks_source(acks, 0, 0);
        const long n = 2000000;
        double t0 = thread_cpu_s();
        for (long i = 1; i <= n; i++) {
            sl_record *r = sl_record_new();
            sl_record_set_position(r, "src", NULL, -1, i);
            if (tracked) {
                if (sl__acks_full(as))
                    sl__acks_wait_room(as, root);
                sl__acks_attach(as, r);
            }
            if (tee) {
                sl_record *c = sl_record_copy(r);
                if (tracked) {
                    sl__record_ack_narrow(c, 1u);
                    sl__record_ack_narrow(r, 2u);
                }
                sl_record_free(c);
            }
            sl_record_free(r);
        }
        double ns = (thread_cpu_s() - t0) * 1e9 / (double)n;
        if (ns < best)
            best = ns;
        sl__acks_destroy(acks);
        sl_ctx_destroy(root);
    }
    return best;
}

static int load_text(const char *dir, const char *name, const char *text,
                     sl__loaded *l)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.yaml", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 1;
    fputs(text, f);
    fclose(f);
    return sl__cli_load(path, NULL, NULL, l) != 0;
}

/* Runs of l alternating state off and on; prints the comparison. */
static int compare(const char *name, sl__loaded *l, const char *state, long n,
                   uint64_t expect, int runs)
{
    double wall[2][99], cpu[2][99];
    for (int r = 0; r < runs; r++) {
        for (int mode = 0; mode < 2; mode++) {
            l->cfg->settings.state = mode == 1 ? (char *)state : NULL;
            remove_db(state);
            uint64_t got = 0;
            if (run_loaded(l, &wall[mode][r], &cpu[mode][r], &got) != 0)
                return 1;
            if (got != expect) {
                fprintf(stderr, "%s: %llu records reached the last stage, "
                        "expected %llu\n", name, (unsigned long long)got,
                        (unsigned long long)expect);
                return 1;
            }
        }
    }
    l->cfg->settings.state = NULL;
    double cmed[2], cmin[2], wmed[2];
    for (int m = 0; m < 2; m++) {
        wmed[m] = median(wall[m], runs);
        cmed[m] = median(cpu[m], runs) * 1e9 / (double)n;
        cmin[m] = cpu[m][0] * 1e9 / (double)n;
        printf("%-8s state %-3s %10.0f rec/s  cpu/rec median %8.1f ns  "
               "min %8.1f ns\n", name, m == 1 ? "on" : "off",
               (double)n / wmed[m], cmed[m], cmin[m]);
    }
    printf("%-8s acknowledgements cost %+.1f%% wall (medians), %+.1f%% CPU "
           "per record (medians), %+.1f%% (minima)\n", name,
           100.0 * (wmed[1] / wmed[0] - 1.0),
           100.0 * (cmed[1] / cmed[0] - 1.0), 100.0 * (cmin[1] / cmin[0] - 1.0));
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int runs = argc > 2 ? atoi(argv[2]) : 9;
    const char *only = argc > 3 ? argv[3] : NULL;
    if (n < 10 || runs < 1 || runs > 99) {
        fprintf(stderr, "usage: bench_acks [N >= 10] [runs 1..99] "
                "[parts|typical|sqlite]\n");
        return 2;
    }
    char dir[] = "/tmp/sluice-bench-acks-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    char state[256], text[2048];
    int rc = 0;
    printf("%ld records per run, %d runs per mode (alternating), medians\n",
           n, runs);

    if (only == NULL || strcmp(only, "parts") == 0) {
        for (int tee = 0; tee < 2; tee++) {
            double off = hot_path(dir, tee, false), on = hot_path(dir, tee, true);
            printf("hot path %-9s untracked %6.1f ns/record, tracked %6.1f: "
                   "acknowledgement %+.1f ns per source record\n",
                   tee ? "(tee 2)" : "(1 store)", off, on, on - off);
        }
    }
    if (only == NULL || strcmp(only, "typical") == 0) {
        snprintf(state, sizeof(state), "%s/typical-state.db", dir);
        sl__loaded l;
        rc = load_typical(n, &l);
        if (rc == 0) {
            rc = compare("typical", &l, state, n, (uint64_t)n * 9 / 10, runs);
            sl__cli_unload(&l);
        }
    }
    if (rc == 0 && (only == NULL || strcmp(only, "sqlite") == 0)) {
        char input[300];
        snprintf(input, sizeof(input), "%s/in.jsonl", dir);
        FILE *f = fopen(input, "w");
        if (f == NULL)
            return 1;
        for (long i = 1; i <= n; i++)
            fprintf(f, "{\"id\":%ld,\"user\":\"u%ld\",\"status\":%d}\n", i,
                    i % 100, i % 10 == 0 ? 500 : 200);
        fclose(f);
        snprintf(state, sizeof(state), "%s/out.db", dir);
        snprintf(text, sizeof(text),
                 "name: sqlite\n"
                 "stages:\n"
                 "  - {name: read, type: file, path: %s}\n"
                 "  - {name: parse, type: json}\n"
                 "  - {name: ok, type: filter, where: status < 500}\n"
                 "  - {name: db, type: sqlite, path: %s, table: t,"
                 " batch_size: 1000}\n", input, state);
        sl__loaded l;
        rc = load_text(dir, "sqlite", text, &l);
        if (rc == 0) {
            rc = compare("sqlite", &l, state, n, (uint64_t)n * 9 / 10, runs);
            sl__cli_unload(&l);
        }
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return rc;
}
