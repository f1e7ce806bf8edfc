/*
 * The one header a stage plugin needs.
 *
 * A plugin is a shared object exporting
 *
 *     const sl_plugin *sluice_plugin(void);
 *
 * (write it with SL_PLUGIN_EXPORT). The engine checks abi_major equals its
 * own and struct_size is at least the 1.0 size, then copies what it knows
 * into zeroed memory, so fields a newer plugin adds are ignored and fields an
 * older one lacks read as zero/NULL. Built-in stages use this same API.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "clock.h"
#include "context.h"
#include "error.h"
#include "expr.h"
#include "record.h"
#include "stage.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SL_ABI_MAJOR 1
#define SL_ABI_MINOR 0

typedef struct sl_plugin {
    /* --- ABI 1.0 --- */
    uint16_t abi_major;            /* SL_ABI_MAJOR */
    uint16_t abi_minor;            /* SL_ABI_MINOR */
    uint32_t struct_size;          /* sizeof(sl_plugin) */
    const char *name;              /* the plugin's name, for messages */
    size_t n_stages;
    const sl_stage_desc *const *stages;
    /* --- end of ABI 1.0 --- */
} sl_plugin;

#define SL_PLUGIN_SYMBOL "sluice_plugin"

/* Fill in the ABI fields of a stage descriptor. */
#define SL_STAGE_DESC_HEADER \
    .abi_major = SL_ABI_MAJOR, .abi_minor = SL_ABI_MINOR, \
    .struct_size = (uint32_t)sizeof(sl_stage_desc)

/*
 * SL_PLUGIN_EXPORT(name, &desc_a, &desc_b, ...) defines sluice_plugin().
 */
#define SL_PLUGIN_EXPORT(plugin_name, ...)                                  \
    static const sl_stage_desc *const sl__plugin_stages[] = {__VA_ARGS__};  \
    __attribute__((visibility("default"))) const sl_plugin *sluice_plugin(void); \
    const sl_plugin *sluice_plugin(void)                                    \
    {                                                                       \
        static const sl_plugin p = {                                        \
            SL_ABI_MAJOR, SL_ABI_MINOR, (uint32_t)sizeof(sl_plugin),        \
            plugin_name,                                                    \
            sizeof(sl__plugin_stages) / sizeof(sl__plugin_stages[0]),       \
            sl__plugin_stages};                                             \
        return &p;                                                          \
    }

#ifdef __cplusplus
}
#endif
#endif
