/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Stage types: the built-in table (stages/builtin.def) and stage plugins
 * loaded from shared objects (include/sluice/plugin.h).
 *
 * Every descriptor — built-in or plugin — is checked the same way (ABI
 * major, struct_size, name, kind and callbacks, option table) and copied
 * into zeroed memory the registry owns, so fields a newer stage adds are
 * ignored and fields an older one lacks read as zero. A type name may have
 * two forms: a fetch form (SL_STAGE_SOURCE) and a consuming form (transform
 * or sink), as `file` and `http` do; lookups pick the form by whether the
 * stage has an input.
 *
 * Thread: owner while loading; lookups from any thread once loading is
 * done.
 */
#ifndef SLUICE_ENGINE_REGISTRY_H
#define SLUICE_ENGINE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/config.h"
#include "engine/diag.h"
#include "sluice/plugin.h"

typedef struct sl_registry sl_registry;

/*
 * A registry holding the built-in stage types. A built-in descriptor that
 * fails the checks is a build mistake: SL_EINTERNAL with the reason in
 * diag (may be NULL). SL_ENOMEM. On failure *out is untouched.
 */
int sl__registry_create(sl_diag *diag, sl_registry **out);

/* Free the registry and close its plugins. No descriptor from it may be in
 * use. NULL: no-op. */
void sl__registry_destroy(sl_registry *r);

/*
 * Load the plugin at path (dlopen, then the sluice_plugin symbol). Every
 * problem is reported to diag as "FILE:LINE:COL: plugin PATH: reason" when
 * file is given (the position of the `plugins:` entry), else
 * "plugin PATH: reason". Returns
 *   0            loaded (or the same object was loaded already)
 *   SL_ENOTFOUND the file cannot be opened, or has no sluice_plugin symbol
 *   SL_EABI      a different ABI major, or a descriptor/plugin struct
 *                smaller than ABI 1.0's
 *   SL_EINVAL    a malformed descriptor (no name, wrong callbacks, ...)
 *   SL_EEXISTS   a stage type clashes with a built-in or loaded one
 *   SL_ENOMEM
 * On failure nothing from the plugin is registered.
 */
int sl__registry_load_plugin(sl_registry *r, const char *path,
                             const char *file, int line, int col,
                             sl_diag *diag);

/*
 * The same checks on a plugin table already in memory (what dlopen found),
 * with origin naming it in messages. The registry does not own p; it copies
 * what it needs. Used by sl__registry_load_plugin and by tests.
 */
int sl__registry_add_plugin(sl_registry *r, const sl_plugin *p,
                            const char *origin, sl_diag *diag);

/*
 * The form of type to use: with has_input the consuming form, else the
 * fetch form; a type with only one form returns that one whatever has_input
 * says (the caller reports the mismatch). NULL for an unknown type.
 */
const sl_stage_desc *sl__registry_find(const sl_registry *r, const char *type,
                                       bool has_input);

/* Both forms of type (either may be NULL); false if type is unknown. */
bool sl__registry_forms(const sl_registry *r, const char *type,
                        const sl_stage_desc **source,
                        const sl_stage_desc **consumer);

/* Every descriptor, sorted by name, the fetch form before the consuming
 * one. */
size_t sl__registry_count(const sl_registry *r);
const sl_stage_desc *sl__registry_at(const sl_registry *r, size_t i);
/* "built-in" or the plugin's path for the i-th descriptor. */
const char *sl__registry_origin(const sl_registry *r, size_t i);

/* Every distinct type name, NULL-terminated, sorted. */
const char *const *sl__registry_names(const sl_registry *r);

/*
 * The adapter config.c asks stage-type questions through. Its
 * load_plugins loads the config's `plugins:` entries, reporting problems
 * at their positions. The registry must outlive the adapter's use.
 */
void sl__registry_adapter(sl_registry *r, sl_stage_registry *out);

/* "source" / "transform" / "sink". */
const char *sl__stage_kind_name(sl_stage_kind kind);

/* "bool", "int", "duration", ... as shown by `sluice stages TYPE`. */
const char *sl__opt_type_name(sl_opt_type type);

#endif
