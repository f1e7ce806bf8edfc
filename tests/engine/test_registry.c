/*
 * The stage-type registry: built-ins, plugin tables checked and copied,
 * forms picked by input, and real shared objects loaded with dlopen.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/diag.h"
#include "engine/registry.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

static int noop_run(void *state, sl_stage_ctx *sc)
{
    return 0;
}

static int noop_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    sl_record_drop(sc, rec);
    return 0;
}

typedef struct opt_state {
    int64_t n;
    char *s;
} opt_state;

static const sl_option good_options[] = {
    {SL_OPT_INT, "n", "1", 0, offsetof(opt_state, n), 0, 0, NULL, "a number"},
    {SL_OPT_STRING, "s", NULL, SL_OPT_REQUIRED, offsetof(opt_state, s), 0, 0,
     NULL, "a string"},
    SL_OPTIONS_END,
};

static const sl_stage_desc dual_source = {
    SL_STAGE_DESC_HEADER, .name = "dual", .kind = SL_STAGE_SOURCE,
    .summary = "fetch form", .options = good_options,
    .state_size = sizeof(opt_state), .run = noop_run,
};
static const sl_stage_desc dual_sink = {
    SL_STAGE_DESC_HEADER, .name = "dual", .kind = SL_STAGE_SINK,
    .summary = "store form", .process = noop_process,
};
static const sl_stage_desc only_transform = {
    SL_STAGE_DESC_HEADER, .name = "zeta", .kind = SL_STAGE_TRANSFORM,
    .summary = "transform", .process = noop_process,
};

static const sl_stage_desc *const two[] = {&dual_source, &dual_sink,
                                           &only_transform};
static const sl_plugin good_plugin = {
    SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin), "good", 3, two,
};

static sl_registry *reg;
static sl_diag *diag;

static void setup(void)
{
    diag = sl__diag_create();
    cr_assert_not_null(diag);
    cr_assert_eq(sl__registry_create(diag, &reg), 0);
}

static void teardown(void)
{
    sl__registry_destroy(reg);
    sl__diag_destroy(diag);
}

static bool diag_has(const char *needle)
{
    for (size_t i = 0; i < sl__diag_count(diag); i++)
        if (strstr(sl__diag_message(diag, i), needle) != NULL)
            return true;
    return false;
}

static const char *diag_all(void)
{
    static char buf[4096];
    buf[0] = '\0';
    for (size_t i = 0; i < sl__diag_count(diag); i++) {
        strncat(buf, sl__diag_message(diag, i), sizeof(buf) - strlen(buf) - 2);
        strcat(buf, "\n");
    }
    return buf;
}

TestSuite(registry, .init = setup, .fini = teardown);

Test(registry, builtins_are_sorted_and_named)
{
    size_t n = sl__registry_count(reg);
    const char *const *names = sl__registry_names(reg);
    size_t k = 0;
    while (names[k] != NULL)
        k++;
    cr_expect_leq(k, n);
    for (size_t i = 1; i < n; i++) {
        const sl_stage_desc *a = sl__registry_at(reg, i - 1);
        const sl_stage_desc *b = sl__registry_at(reg, i);
        cr_expect_leq(strcmp(a->name, b->name), 0, "sorted");
        cr_expect_str_eq(sl__registry_origin(reg, i), "built-in");
    }
    cr_expect_null(sl__registry_at(reg, n));
    cr_expect_null(sl__registry_find(reg, "no_such_type", false));
}

Test(registry, plugin_forms_by_input)
{
    size_t before = sl__registry_count(reg);
    cr_assert_eq(sl__registry_add_plugin(reg, &good_plugin, "good.so", diag), 0,
                 "%s", diag_all());
    cr_expect_eq(sl__registry_count(reg), before + 3);

    const sl_stage_desc *s = sl__registry_find(reg, "dual", false);
    const sl_stage_desc *c = sl__registry_find(reg, "dual", true);
    cr_assert_not_null(s);
    cr_assert_not_null(c);
    cr_expect_eq(s->kind, SL_STAGE_SOURCE);
    cr_expect_eq(c->kind, SL_STAGE_SINK);
    cr_expect_neq(s, &dual_source, "the registry keeps its own copy");
    cr_expect_eq(s->run, noop_run);
    cr_expect_eq(s->options, good_options);

    /* one form only: returned whatever has_input says */
    cr_expect_eq(sl__registry_find(reg, "zeta", false)->kind,
                 SL_STAGE_TRANSFORM);
    const sl_stage_desc *src, *con;
    cr_expect(sl__registry_forms(reg, "zeta", &src, &con));
    cr_expect_null(src);
    cr_expect_not_null(con);
    cr_expect_not(sl__registry_forms(reg, "nope", &src, &con));

    /* fetch form listed before the consuming form */
    for (size_t i = 0; i + 1 < sl__registry_count(reg); i++) {
        if (strcmp(sl__registry_at(reg, i)->name, "dual") == 0) {
            cr_expect_eq(sl__registry_at(reg, i)->kind, SL_STAGE_SOURCE);
            cr_expect_eq(sl__registry_at(reg, i + 1)->kind, SL_STAGE_SINK);
            cr_expect_str_eq(sl__registry_origin(reg, i), "good.so");
            break;
        }
    }
    bool listed = false;
    for (const char *const *nm = sl__registry_names(reg); *nm; nm++)
        if (strcmp(*nm, "dual") == 0)
            listed = true;
    cr_expect(listed);
}

Test(registry, wrong_abi_major_is_refused)
{
    sl_plugin p = good_plugin;
    p.abi_major = SL_ABI_MAJOR + 1;
    cr_expect_eq(sl__registry_add_plugin(reg, &p, "future.so", diag), SL_EABI);
    cr_expect(diag_has("plugin future.so: built for sluice plugin ABI 2.0, "
                       "this sluice speaks ABI 1.0"), "%s", diag_all());
    cr_expect_null(sl__registry_find(reg, "dual", false));

    sl_stage_desc d = dual_sink;
    d.abi_major = 0;
    const sl_stage_desc *one[] = {&d};
    sl_plugin q = {SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin), "old", 1, one};
    cr_expect_eq(sl__registry_add_plugin(reg, &q, "old.so", diag), SL_EABI);
    cr_expect(diag_has("stage built for ABI 0.0"), "%s", diag_all());
}

Test(registry, too_small_structs_are_refused)
{
    sl_plugin p = good_plugin;
    p.struct_size = 8;
    cr_expect_eq(sl__registry_add_plugin(reg, &p, "small.so", diag), SL_EABI);

    sl_stage_desc d = dual_sink;
    d.struct_size = 16;
    const sl_stage_desc *one[] = {&d};
    sl_plugin q = {SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin), "q", 1, one};
    cr_expect_eq(sl__registry_add_plugin(reg, &q, "small2.so", diag), SL_EABI);
    cr_expect(diag_has("smaller than ABI 1.0"), "%s", diag_all());
}

/* A descriptor from a newer minor version: larger, with fields we ignore. */
typedef struct future_desc {
    sl_stage_desc base;
    void *later_field;
} future_desc;

Test(registry, larger_descriptor_copied_up_to_what_we_know)
{
    static future_desc fd;
    fd.base = only_transform;
    fd.base.name = "later";
    fd.base.abi_minor = SL_ABI_MINOR + 3;
    fd.base.struct_size = sizeof(future_desc);
    fd.later_field = (void *)0x1;
    const sl_stage_desc *one[] = {&fd.base};
    sl_plugin q = {SL_ABI_MAJOR, SL_ABI_MINOR + 3, sizeof(sl_plugin) + 32,
                   "later", 1, one};
    cr_assert_eq(sl__registry_add_plugin(reg, &q, "later.so", diag), 0, "%s",
                 diag_all());
    const sl_stage_desc *got = sl__registry_find(reg, "later", true);
    cr_assert_not_null(got);
    cr_expect_eq(got->process, noop_process);
}

Test(registry, malformed_descriptors)
{
    struct {
        sl_stage_desc d;
        const char *msg;
    } cases[] = {
        {{SL_STAGE_DESC_HEADER, .name = "Bad-Name", .kind = SL_STAGE_SINK,
          .process = noop_process}, "not a lower-case identifier"},
        {{SL_STAGE_DESC_HEADER, .name = NULL, .kind = SL_STAGE_SINK,
          .process = noop_process}, "(null)"},
        {{SL_STAGE_DESC_HEADER, .name = "nosrc", .kind = SL_STAGE_SOURCE,
          .process = noop_process}, "a source needs a run callback"},
        {{SL_STAGE_DESC_HEADER, .name = "noproc", .kind = SL_STAGE_TRANSFORM,
          .run = noop_run}, "a transform needs a process callback"},
        {{SL_STAGE_DESC_HEADER, .name = "kind", .kind = 9,
          .process = noop_process}, "unknown kind 9"},
        {{SL_STAGE_DESC_HEADER, .name = "outside", .kind = SL_STAGE_SOURCE,
          .run = noop_run, .options = good_options, .state_size = 4},
         "option 'n' lies outside the state"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const sl_stage_desc *one[] = {&cases[i].d};
        sl_plugin q = {SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin), "m", 1,
                       one};
        cr_expect_eq(sl__registry_add_plugin(reg, &q, "m.so", diag), SL_EINVAL,
                     "case %zu", i);
        cr_expect(diag_has(cases[i].msg), "case %zu: %s", i, diag_all());
    }
    sl_plugin empty = {SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin), "e", 0,
                       NULL};
    cr_expect_eq(sl__registry_add_plugin(reg, &empty, "e.so", diag), SL_EINVAL);
    cr_expect(diag_has("declares no stage types"));
    cr_expect_eq(sl__registry_add_plugin(reg, NULL, "n.so", diag), SL_EINVAL);
}

Test(registry, clashes_refused_all_or_nothing)
{
    cr_assert_eq(sl__registry_add_plugin(reg, &good_plugin, "good.so", diag), 0);
    size_t n = sl__registry_count(reg);

    static const sl_stage_desc fresh = {
        SL_STAGE_DESC_HEADER, .name = "fresh", .kind = SL_STAGE_SINK,
        .process = noop_process,
    };
    const sl_stage_desc *both[] = {&fresh, &dual_sink};
    sl_plugin q = {SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin), "q", 2, both};
    cr_expect_eq(sl__registry_add_plugin(reg, &q, "other.so", diag), SL_EEXISTS);
    cr_expect(diag_has("plugin other.so: stage type 'dual' (consuming form) is "
                       "already defined by good.so"), "%s", diag_all());
    cr_expect_eq(sl__registry_count(reg), n, "nothing from other.so kept");
    cr_expect_null(sl__registry_find(reg, "fresh", true));

    const sl_stage_desc *twice[] = {&fresh, &fresh};
    sl_plugin t = {SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin), "t", 2, twice};
    cr_expect_eq(sl__registry_add_plugin(reg, &t, "twice.so", diag), SL_EEXISTS);
    cr_expect(diag_has("is defined twice"));
}

Test(registry, plugin_cannot_replace_builtin)
{
    if (sl__registry_count(reg) == 0 ||
        strcmp(sl__registry_origin(reg, 0), "built-in") != 0)
        cr_skip_test("no built-in stage types in this build");
    sl_stage_desc d = only_transform;
    d.name = sl__registry_at(reg, 0)->name;
    d.kind = sl__registry_at(reg, 0)->kind == SL_STAGE_SOURCE
                 ? SL_STAGE_SINK : SL_STAGE_SOURCE;   /* even the other form */
    d.run = noop_run;
    d.process = noop_process;
    const sl_stage_desc *one[] = {&d};
    sl_plugin q = {SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin), "q", 1, one};
    cr_expect_eq(sl__registry_add_plugin(reg, &q, "evil.so", diag), SL_EEXISTS);
    cr_expect(diag_has("clashes with the built-in"), "%s", diag_all());
}

Test(registry, names_for_messages)
{
    cr_expect_str_eq(sl__stage_kind_name(SL_STAGE_SOURCE), "source");
    cr_expect_str_eq(sl__stage_kind_name(SL_STAGE_SINK), "sink");
    cr_expect_str_eq(sl__opt_type_name(SL_OPT_DURATION), "duration");
    cr_expect_str_eq(sl__opt_type_name(SL_OPT_EXPR_MAP), "map of expressions");
}

/* ------------------------------------------------------------------ */
/* Real shared objects                                                 */
/* ------------------------------------------------------------------ */

static char tmpdir[64];

/* Build src into tmpdir/name.so with the system compiler; false if no
 * compiler is available. */
static bool build_so(const char *name, const char *src)
{
    const char *root = getenv("SLUICE_SOURCE_DIR");
    if (root == NULL)
        return false;
    if (tmpdir[0] == '\0') {
        strcpy(tmpdir, "/tmp/sluice-reg-XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
    }
    char path[256], cmd[1024];
    snprintf(path, sizeof(path), "%s/%s.c", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(src, f);
    fclose(f);
    const char *cc = getenv("CC") != NULL ? getenv("CC") : "cc";
    snprintf(cmd, sizeof(cmd),
             "%s -shared -fPIC -I%s/include -o %s/%s.so %s 2>/dev/null", cc,
             root, tmpdir, name, path);
    return system(cmd) == 0;
}

static void cleanup_tmp(void)
{
    if (tmpdir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        cr_expect_eq(system(cmd), 0);
    }
}

#define PLUGIN_SRC_HEAD                                                   \
    "#include <sluice/plugin.h>\n"                                       \
    "static int proc(void *s, sl_stage_ctx *sc, sl_record *r) { (void)s; " \
    "(void)sc; (void)r; return 0; }\n"

Test(registry, dlopen_good_bad_and_missing, .fini = cleanup_tmp)
{
    sl__registry_destroy(reg);
    sl__diag_destroy(diag);
    setup();
    bool ok = build_so("upper", PLUGIN_SRC_HEAD
        "static const sl_stage_desc d = { SL_STAGE_DESC_HEADER, .name = "
        "\"upper_t\", .kind = SL_STAGE_TRANSFORM, .process = proc };\n"
        "SL_PLUGIN_EXPORT(\"upper\", &d)\n");
    if (!ok)
        cr_skip_test("no C compiler to build a test plugin");
    cr_assert(build_so("future", PLUGIN_SRC_HEAD
        "static const sl_stage_desc d = { SL_STAGE_DESC_HEADER, .name = "
        "\"future_t\", .kind = SL_STAGE_TRANSFORM, .process = proc };\n"
        "static const sl_stage_desc *const s[] = {&d};\n"
        "__attribute__((visibility(\"default\"))) const sl_plugin *"
        "sluice_plugin(void) { static const sl_plugin p = {9, 0, "
        "sizeof(sl_plugin), \"future\", 1, s}; return &p; }\n"));
    cr_assert(build_so("plain", "int not_a_plugin(void) { return 1; }\n"));

    char path[256];
    snprintf(path, sizeof(path), "%s/upper.so", tmpdir);
    cr_assert_eq(sl__registry_load_plugin(reg, path, NULL, 0, 0, diag), 0,
                 "%s", diag_all());
    const sl_stage_desc *d = sl__registry_find(reg, "upper_t", true);
    cr_assert_not_null(d);
    cr_expect_eq(d->kind, SL_STAGE_TRANSFORM);
    /* the same object again: no clash, nothing new */
    size_t n = sl__registry_count(reg);
    cr_expect_eq(sl__registry_load_plugin(reg, path, NULL, 0, 0, diag), 0);
    cr_expect_eq(sl__registry_count(reg), n);

    snprintf(path, sizeof(path), "%s/future.so", tmpdir);
    cr_expect_eq(sl__registry_load_plugin(reg, path, "p.yaml", 4, 5, diag),
                 SL_EABI);
    char want[512];
    snprintf(want, sizeof(want), "p.yaml:4:5: plugin %s: built for sluice "
             "plugin ABI 9.0", path);
    cr_expect(diag_has(want), "%s", diag_all());
    cr_expect_null(sl__registry_find(reg, "future_t", true));

    snprintf(path, sizeof(path), "%s/plain.so", tmpdir);
    cr_expect_eq(sl__registry_load_plugin(reg, path, NULL, 0, 0, diag),
                 SL_ENOTFOUND);
    cr_expect(diag_has("no 'sluice_plugin' function: not a sluice plugin"));

    snprintf(path, sizeof(path), "%s/missing.so", tmpdir);
    cr_expect_eq(sl__registry_load_plugin(reg, path, NULL, 0, 0, diag),
                 SL_ENOTFOUND);
    snprintf(want, sizeof(want), "plugin %s: cannot load: ", path);
    cr_expect(diag_has(want), "%s", diag_all());

    cr_expect_eq(sl__registry_load_plugin(reg, "", NULL, 0, 0, diag),
                 SL_EINVAL);
}

/* ------------------------------------------------------------------ */
/* The adapter config loading asks through                             */
/* ------------------------------------------------------------------ */

#include "engine/config.h"

Test(registry, config_picks_forms_through_the_adapter)
{
    cr_assert_eq(sl__registry_add_plugin(reg, &good_plugin, "good.so", diag), 0);
    sl_stage_registry adapter;
    sl__registry_adapter(reg, &adapter);
    static const char text[] =
        "name: forms\n"
        "stages:\n"
        "  - {name: in, type: dual, s: hello}\n"
        "  - {name: mid, type: zeta}\n"
        "  - {name: out, type: dual}\n";
    sl_config_opts opts = {.no_env = true, .registry = &adapter};
    sl_config *cfg = NULL;
    cr_assert_eq(sl__config_load_text(text, sizeof(text) - 1, "forms.yaml",
                                      &opts, diag, &cfg), 0, "%s", diag_all());
    cr_assert_eq(cfg->n_stages, 3);
    cr_expect_eq(cfg->stages[0].desc->kind, SL_STAGE_SOURCE);
    cr_expect_eq(cfg->stages[1].desc->kind, SL_STAGE_TRANSFORM);
    cr_expect_eq(cfg->stages[2].desc->kind, SL_STAGE_SINK);
    cr_expect_eq(cfg->stages[2].desc, sl__registry_find(reg, "dual", true));
    sl__config_destroy(cfg);
}

Test(registry, config_plugins_are_loaded_and_reported_in_place)
{
    sl_stage_registry adapter;
    sl__registry_adapter(reg, &adapter);
    static const char text[] =
        "name: plugs\n"
        "plugins:\n"
        "  - ./no-such-plugin.so\n"
        "stages:\n"
        "  - {name: out, type: whatever}\n";
    sl_config_opts opts = {.no_env = true, .registry = &adapter};
    sl_config *cfg = NULL;
    cr_expect_eq(sl__config_load_text(text, sizeof(text) - 1, "plugs.yaml",
                                      &opts, diag, &cfg), SL_ECONFIG);
    cr_expect(diag_has("plugs.yaml:3:5: plugin ./no-such-plugin.so: cannot "
                       "load: "), "%s", diag_all());
}
