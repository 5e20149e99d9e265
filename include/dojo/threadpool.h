/* dojo/threadpool.h — dojo's compute threads, sized once.
 *
 * One pool per process runs every parallel kernel, so compute threads and
 * the loader's decode threads are budgeted together and never oversubscribe
 * the cores. Work is split into ranges by a fixed rule that does not depend
 * on timing; kernels that reduce must also reduce in an order that does not
 * depend on the number of threads (results are bit-identical for 1..N). */
#ifndef DOJO_THREADPOOL_H
#define DOJO_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_threadpool dj_threadpool;

/* Creates a pool of nthreads threads in all, the calling thread included
 * (nthreads - 1 workers are started). nthreads <= 0 means one per core. */
dj_status dj_threadpool_create(int nthreads, dj_threadpool **out);
void dj_threadpool_free(dj_threadpool *pool);
/* Number of threads, the caller included; 1 for a NULL pool. */
int dj_threadpool_size(const dj_threadpool *pool);

/* A range [begin, end) of the iteration space, run on thread `thread`
 * (0 .. size-1). */
typedef void (*dj_range_fn)(void *arg, int64_t begin, int64_t end, int thread);

/* Splits [0, n) into contiguous ranges of at least `grain` iterations, runs
 * them on the pool and returns when all are done. A NULL pool runs
 * fn(arg, 0, n, 0) on the caller. Not reentrant: fn must not call
 * dj_parallel_for on the same pool. */
void dj_parallel_for(dj_threadpool *pool, int64_t n, int64_t grain, dj_range_fn fn, void *arg);

/* Per-thread scratch memory owned by the pool, allocated once when first
 * reserved (outside the training step) and reused: returns thread t's
 * buffer of at least `bytes` (64-byte aligned) or NULL if never reserved. */
dj_status dj_threadpool_reserve_scratch(dj_threadpool *pool, size_t bytes_per_thread);
void *dj_threadpool_scratch(dj_threadpool *pool, int thread, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
