/* arena.c — a model's memory: mapped once, huge pages, touched up front. */
#define _GNU_SOURCE
#include "dojo/arena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct dj_arena {
    void *base;
    size_t size;
};

enum { DJ_HUGE_PAGE = 2 << 20 };

dj_status dj_arena_create(size_t bytes, dj_arena **out) {
    *out = NULL;
    if (bytes == 0)
        bytes = 1;
    if (bytes > ((size_t)1 << 46))
        return dj_error_set(DJ_ERR_RANGE, "arena", "%zu bytes requested, more than any machine has", bytes);
    size_t size = (bytes + DJ_HUGE_PAGE - 1) / DJ_HUGE_PAGE * DJ_HUGE_PAGE;
    dj_arena *a = calloc(1, sizeof *a);
    if (!a)
        return dj_error_set(DJ_ERR_NOMEM, "arena", "cannot allocate the arena descriptor");
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        free(a);
        return dj_error_set(DJ_ERR_NOMEM, "arena", "cannot map %zu MiB: %s", size >> 20, strerror(e));
    }
#ifdef MADV_HUGEPAGE
    madvise(p, size, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    memset(p, 0, size); /* first touch now, not inside the training step */
    a->base = p;
    a->size = size;
    *out = a;
    return DJ_OK;
}

void dj_arena_free(dj_arena *a) {
    if (!a)
        return;
    if (a->base)
        munmap(a->base, a->size);
    free(a);
}

void *dj_arena_base(const dj_arena *a) { return a ? a->base : NULL; }
size_t dj_arena_size(const dj_arena *a) { return a ? a->size : 0; }
