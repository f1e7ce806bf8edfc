/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Configuration: from a pipeline YAML file to a checked description of the
 * pipeline (DESIGN.md, "Pipeline file — contract").
 *
 *   yaml_tree.c  YAML text -> a tree of sl_node, each with file:line:col,
 *                hostile input refused early and cheaply; ${VAR}
 *                interpolation on scalar values.
 *   options.c    a mapping node + an sl_option table -> typed stage state.
 *   config.c     the tree -> sl_config (settings, metrics, stages), with
 *                every problem found reported, not just the first.
 *   graph.c      sl_config -> the wired stage graph (graph.h).
 *
 * Every message goes to the caller's sl_diag as "file:line:col: text".
 *
 * Thread: owner. A loaded tree or config is immutable afterwards and may be
 * read from any thread.
 */
#ifndef SLUICE_ENGINE_CONFIG_H
#define SLUICE_ENGINE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/stage.h"
#include "engine/diag.h"

/* ------------------------------------------------------------------ */
/* The YAML tree                                                       */
/* ------------------------------------------------------------------ */

/* Limits on what the loader accepts; beyond them the file is refused. */
#define SL_YAML_MAX_FILE   (16u << 20)  /* bytes of YAML text */
#define SL_YAML_MAX_DEPTH  64           /* nested collections */
#define SL_YAML_MAX_NODES  100000       /* nodes in one document */
#define SL_YAML_MAX_SCALAR (1u << 20)   /* bytes in one scalar value */
#define SL_YAML_MAX_KEY    1024         /* bytes in one mapping key */

typedef enum sl_node_kind {
    SL_NODE_SCALAR = 1,
    SL_NODE_SEQUENCE,
    SL_NODE_MAPPING,
} sl_node_kind;

typedef enum sl_scalar_style {
    SL_SCALAR_PLAIN = 0,   /* unquoted: may mean null, a bool, a number */
    SL_SCALAR_SINGLE,      /* 'text' */
    SL_SCALAR_DOUBLE,      /* "text" */
    SL_SCALAR_LITERAL,     /* | block */
    SL_SCALAR_FOLDED,      /* > block */
} sl_scalar_style;

typedef struct sl_node sl_node;

struct sl_node {
    sl_node_kind kind;       /* scalar, sequence or mapping */
    const char *file;        /* file name for messages (owned by the tree) */
    int line;                /* 1-based line where the node starts */
    int col;                 /* 1-based column where the node starts */
    bool invalid;            /* an error was already reported for this node;
                                consumers skip it without a second message */
    /* scalars */
    char *text;              /* NUL-terminated value after interpolation */
    size_t len;              /* bytes in text (may hold NUL bytes) */
    sl_scalar_style style;   /* how it was written */
    bool interpolated;       /* text differs from what the file says */
    /* sequences (items) and mappings (keys[i] -> items[i]) */
    size_t n;                /* number of items (and of keys) */
    sl_node **items;         /* sequence items / mapping values */
    sl_node **keys;          /* mapping keys: scalar nodes; NULL otherwise */
};

/* A loaded document. Owns every node. */
typedef struct sl_yaml sl_yaml;

/* How to load. Zeroed is a sensible default (interpolate, read env). */
typedef struct sl_yaml_opts {
    const char *const *set;  /* "VAR=value" strings, NULL-terminated, taking
                                precedence over the environment; may be NULL */
    bool no_env;             /* do not read the process environment */
    bool no_interpolate;     /* leave "${...}" and "$$" as written */
    bool allow_empty;        /* an empty document loads with a NULL root
                                instead of "file is empty" */
} sl_yaml_opts;

/*
 * Load YAML text (len bytes, need not be NUL-terminated). file names the
 * text in messages.
 *
 * Hard problems — YAML syntax, invalid UTF-8, more than one document, an
 * empty document (unless allowed), any limit above exceeded — stop loading:
 * SL_ECONFIG, *out untouched. Soft problems — aliases (never expanded),
 * duplicate keys, failed ${VAR} interpolation — are reported and loading
 * continues with the node marked invalid: 0 and a tree, so that callers can
 * go on to report what else is wrong; compare sl__diag_errors() before and
 * after to know whether anything was reported. SL_ENOMEM on out of memory.
 */
int sl__yaml_load_text(const char *text, size_t len, const char *file,
                       const sl_yaml_opts *opts, sl_diag *diag, sl_yaml **out);

/* The same from a file; a file that cannot be read is reported with errno. */
int sl__yaml_load_file(const char *path, const sl_yaml_opts *opts,
                       sl_diag *diag, sl_yaml **out);

void sl__yaml_destroy(sl_yaml *y);                   /* NULL: no-op */
sl_node *sl__yaml_root(const sl_yaml *y);            /* NULL if empty */
size_t sl__yaml_node_count(const sl_yaml *y);

/* The value under key in a mapping, or NULL (also for a non-mapping). */
sl_node *sl__node_get(const sl_node *map, const char *key);
/* "a string", "a list", "a mapping", "null" — for "expected X, got Y". */
const char *sl__node_describe(const sl_node *n);
/* True for a plain scalar spelling null: "", "~", "null", "Null", "NULL". */
bool sl__node_is_null(const sl_node *n);

/*
 * Interpolate "${VAR}", "${VAR:-default}", "${VAR:?message}" and "$$" in
 * in[0..len). Variables come from set first ("VAR=value"), then, unless
 * no_env, the environment. Returns 0 with *out (malloc'd, NUL-terminated,
 * *out_len bytes), SL_ENOMEM, or SL_ECONFIG with a message in err and the
 * 0-based byte offset of the offending "$" in *err_at. A "$" not followed by
 * "{" or "$" is kept as is. The default text is used literally (it is not
 * interpolated again).
 */
int sl__interpolate(const char *in, size_t len, const char *const *set,
                    bool no_env, char **out, size_t *out_len,
                    char *err, size_t err_size, size_t *err_at);

/* ------------------------------------------------------------------ */
/* Stage types                                                         */
/* ------------------------------------------------------------------ */

/*
 * Where stage types come from: the built-in table and loaded plugins, owned
 * by the runtime. The config layer only asks questions through it.
 *
 * forms(): for a type name, its fetch form (kind SL_STAGE_SOURCE) and its
 * consuming form (SL_STAGE_TRANSFORM or SL_STAGE_SINK); either may be NULL
 * (`json` has no fetch form, `generate` no consuming form, `file` and
 * `http` have both). Returns false, with both NULL, for an unknown type.
 *
 * names(): every known type name, NULL-terminated, for "did you mean"; the
 * array stays valid while the registry does.
 *
 * load_plugins(): optional. Called once the top level is read and before
 * any stage type is looked up, with the config's `plugins:` entries, so
 * that plugin stage types are known in time. Reports its own problems to
 * diag (use the entries' positions) and returns 0 or a negative code.
 */
typedef struct sl_config sl_config;

typedef struct sl_stage_registry {
    void *arg;               /* passed to every callback */
    bool (*forms)(void *arg, const char *type, const sl_stage_desc **source,
                  const sl_stage_desc **consumer);
    const char *const *(*names)(void *arg);
    int (*load_plugins)(void *arg, const sl_config *cfg, sl_diag *diag);
} sl_stage_registry;

/* ------------------------------------------------------------------ */
/* The pipeline description                                            */
/* ------------------------------------------------------------------ */

typedef enum sl_on_error {
    SL_ON_ERROR_FAIL = 0,     /* cancel the run (default) */
    SL_ON_ERROR_SKIP,         /* count and drop the record */
    SL_ON_ERROR_DEAD_LETTER,  /* write it to the dead-letter file */
    SL_ON_ERROR_RETRY,        /* retry with backoff, then fail */
} sl_on_error;

typedef enum sl_on_stall {
    SL_ON_STALL_WARN = 0,     /* log the stuck stage (default) */
    SL_ON_STALL_FAIL,         /* fail the run naming the stuck stage */
} sl_on_stall;

/* A position in the file, for messages about a value. */
typedef struct sl_conf_pos {
    int line;                /* 1-based; 0 unknown */
    int col;                 /* 1-based; 0 unknown */
} sl_conf_pos;

typedef struct sl_retry_conf {
    bool set;                /* a retry: block was given */
    int64_t attempts;        /* total tries including the first (default 3) */
    int64_t backoff_ns;      /* first wait (default 100ms), doubling */
    int64_t max_backoff_ns;  /* cap on one wait (default 10s) */
} sl_retry_conf;

typedef struct sl_rate_conf {
    bool set;                /* a rate_limit: block was given */
    double rate;             /* tokens per second (required in the block) */
    int64_t burst;           /* bucket size (default 1) */
} sl_rate_conf;

typedef struct sl_breaker_conf {
    bool set;                /* a circuit_breaker: block was given */
    int64_t failures;        /* consecutive failures that open it (default 5) */
    int64_t cooldown_ns;     /* open -> half-open after this (default 30s) */
} sl_breaker_conf;

typedef struct sl_stage_conf {
    char *name;              /* unique, [A-Za-z0-9_-]{1,64} */
    char *type;              /* the type name as written */
    const sl_stage_desc *desc; /* the chosen form (fetch or consuming) */
    sl_conf_pos pos;         /* the stage's mapping */
    sl_conf_pos type_pos;    /* the type: value */
    /* wiring as written; graph.c resolves the names */
    size_t n_inputs;         /* names this stage reads from */
    char **inputs;           /* the names */
    sl_conf_pos *input_pos;  /* where each name is written (the stage's
                                position for an implicit input) */
    bool inputs_given;       /* `inputs:` was written (possibly `[]`) */
    bool inputs_implicit;    /* inputs = the previous stage, by default */
    /* engine-applied keys (the reserved keys of the contract) */
    int64_t workers;         /* 1..256, default 1 */
    bool ordered;            /* keep input order across workers */
    int64_t capacity;        /* records per input channel; 0 = settings */
    sl_on_error on_error;    /* default fail */
    sl_retry_conf retry;     /* retry: */
    sl_rate_conf rate_limit; /* rate_limit: */
    sl_breaker_conf breaker; /* circuit_breaker: */
    int64_t timeout_ns;      /* timeout: per record / request; 0 = none */
    /* the stage's own options: the whole stage mapping, applied with
       sl__config_stage_options (reserved keys are skipped there) */
    const sl_node *node;     /* owned by the config's tree */
} sl_stage_conf;

typedef struct sl_plugin_conf {
    char *path;              /* as written (relative to the working dir) */
    sl_conf_pos pos;         /* where it is written */
} sl_plugin_conf;

struct sl_config {
    char *file;              /* the file name used in messages */
    char *name;              /* pipeline name (required) */
    struct {
        int64_t channel_capacity;   /* default 1024 */
        int64_t shutdown_timeout_ns;/* default 30s */
        int64_t deadline_ns;        /* 0 = none */
        char *state;                /* NULL = none */
        int64_t stall_timeout_ns;   /* default 30s; 0 = no watchdog */
        sl_on_stall on_stall;       /* default warn */
    } settings;
    size_t n_plugins;        /* plugins: entries */
    sl_plugin_conf *plugins; /* in file order */
    struct {
        char *file;                 /* NULL = no snapshot file */
        int64_t interval_ns;        /* default 1s */
        char *listen;               /* "host:port" or NULL */
        char *history;              /* NULL = none */
    } metrics;
    struct {
        char *path;                 /* NULL = none */
    } dead_letter;
    size_t n_stages;         /* stages in file order */
    sl_stage_conf *stages;   /* the stages */
    sl_yaml *yaml;           /* owns every sl_node the config points to */
};

/* How to load a config. */
typedef struct sl_config_opts {
    const char *const *set;  /* --set "VAR=value" strings, NULL-terminated */
    bool no_env;             /* do not read the environment (tests) */
    const sl_stage_registry *registry; /* stage types; NULL = types and
                                          stage options are not checked,
                                          desc stays NULL and inputs are
                                          only what `inputs:` says */
} sl_config_opts;

/*
 * Load and check a pipeline file. Everything that can be checked from the
 * file alone (and the registry) is checked, and every problem found is
 * reported, not only the first: keys, types, ranges, durations, stage
 * names, stage types and their options (expressions compiled and thrown
 * away). Wiring is checked by sl__graph_build.
 *
 * Returns 0 with *out, SL_ECONFIG (messages in diag, *out untouched) or
 * SL_ENOMEM. Warnings do not fail the load.
 */
int sl__config_load_file(const char *path, const sl_config_opts *opts,
                         sl_diag *diag, sl_config **out);
/* The same from text; file names it in messages. */
int sl__config_load_text(const char *text, size_t len, const char *file,
                         const sl_config_opts *opts, sl_diag *diag,
                         sl_config **out);
void sl__config_destroy(sl_config *cfg);             /* NULL: no-op */

/* Index of the stage called name, or -1. */
long sl__config_find_stage(const sl_config *cfg, const char *name);

/* The stage keys the engine applies itself, NULL-terminated. */
extern const char *const sl__stage_reserved_keys[];

/*
 * Fill a worker's state from the stage's own options (its descriptor's
 * table, defaults applied). A key that is both reserved and declared by the
 * stage's table (`timeout` of `http`) is given to the stage as well.
 * Returns 0 or SL_ECONFIG; free with sl__options_free(desc->options, state)
 * either way.
 */
int sl__config_stage_options(const sl_config *cfg, const sl_stage_conf *st,
                             void *state, sl_diag *diag);

const char *sl__on_error_name(sl_on_error e);

#endif
