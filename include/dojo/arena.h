/* dojo/arena.h — one block of memory mapped once for a whole model.
 *
 * Every activation, gradient and optimizer buffer of a training run is placed
 * at a planned offset inside an arena, so the training step allocates
 * nothing. The arena is mapped once, asks for transparent huge pages and is
 * touched before the first step: on the virtual machines dojo was measured on,
 * the first touch of a 4 KiB page cost about 11 µs, so paying it once at start
 * instead of in every step matters. */
#ifndef DOJO_ARENA_H
#define DOJO_ARENA_H

#include <stddef.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_arena dj_arena;

/* Maps `bytes` (rounded up to 2 MiB), advises huge pages, zero-fills and
 * touches every page. */
dj_status dj_arena_create(size_t bytes, dj_arena **out);
void dj_arena_free(dj_arena *a);
void *dj_arena_base(const dj_arena *a);
size_t dj_arena_size(const dj_arena *a);

#ifdef __cplusplus
}
#endif
#endif
