/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * Memory for the per-record hot path: values and records (engine/mem.c).
 *
 * A record is made on one thread (a source, a parse stage) and freed on
 * another (a sink), a million times a second. glibc's per-thread caches
 * do not help that flow: the freeing thread's cache fills, every further
 * free goes to the allocating thread's arena under its lock, and the
 * allocating thread's cache is always empty. Here each thread keeps free
 * blocks per size class, and hands them on in batches of 64 through a
 * global list per class: one lock per 64 blocks instead of two arena
 * operations per block (docs/decisions/0013).
 *
 * Blocks up to SL__MEM_MAX_CLASS bytes are pooled, larger ones go to
 * malloc. Pooled memory is kept for reuse (up to a bound per class; past
 * it, batches go back to malloc), so a process's footprint follows its
 * peak of records in flight. Built with AddressSanitizer, every block goes
 * straight to malloc and free, so the sanitizer still sees each one.
 *
 * Thread: any; a block may be freed by a thread other than the one that
 * allocated it.
 */
#ifndef SLUICE_ENGINE_MEM_H
#define SLUICE_ENGINE_MEM_H

#include <stddef.h>

#define SL__MEM_MAX_CLASS 2048

/* size bytes, 16-aligned; NULL on out of memory. */
void *sl__mem_alloc(size_t size);
/* Free p from sl__mem_alloc (NULL is a no-op). */
void sl__mem_free(void *p);

#endif
