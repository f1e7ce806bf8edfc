/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Plugin files: where a plugin named in `plugins:` or by --plugin lives, and
 * whether that file can be a shared object at all, decided before dlopen()
 * so that each refusal gets a plain reason instead of the dynamic loader's.
 *
 * Names:
 *   - a name with a '/' ("./libupper.so", "/opt/p/libupper.so") is that
 *     file, relative to the current directory;
 *   - a bare name ("libupper.so", "upper") is looked up in each directory
 *     of SLUICE_PLUGIN_PATH in order (colon-separated; an empty entry is
 *     the current directory), or in the current directory when the
 *     variable is unset or empty. In each directory the candidates are
 *     NAME, then — for a name without ".so" — libNAME.so and NAME.so; the
 *     first regular file wins.
 *
 * Thread: owner (the loading thread).
 */
#ifndef SLUICE_ENGINE_PLUGIN_FILE_H
#define SLUICE_ENGINE_PLUGIN_FILE_H

#include <stddef.h>

/* The environment variable holding the plugin search path. */
#define SL__PLUGIN_PATH_ENV "SLUICE_PLUGIN_PATH"

/*
 * Find the file for name and check it: it exists, is a regular file, and
 * starts with an ELF header of a shared object. Returns 0 with *path a new
 * malloc'd string holding a '/' (what dlopen must be given so it does not
 * search the library path); SL_ENOTFOUND (no such file, or a bare name
 * found nowhere) or SL_EINVAL (not a shared object) with a reason for
 * people in why[0..n), e.g. "not a shared object (no ELF header)";
 * SL_ENOMEM. On failure *path is untouched.
 */
int sl__plugin_locate(const char *name, char **path, char *why, size_t n);

/*
 * dlerror()'s text for a file that failed to load, made to read well after
 * "plugin PATH: ": without the "PATH: " prefix the loader repeats, and for
 * an undefined sl_* symbol with the likely cause (a plugin built against a
 * newer sluice). err may be NULL.
 */
void sl__plugin_dlerror_text(const char *path, const char *err, char *buf,
                             size_t n);

#endif
