/* threadpool.c — a fixed set of compute threads that run parallel-for loops.
 *
 * The caller takes part as thread 0; workers 1..n-1 wait for the next loop,
 * spinning a little (DJ_POOL_SPIN) and then asleep on a condition variable;
 * the caller waits for the loop's end the same way. Ranges are assigned
 * statically (thread t gets the t-th contiguous chunk), so which thread
 * computes which range never depends on timing. */
#define _GNU_SOURCE
#include "dojo/threadpool.h"

#include <pthread.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <string.h>
#include <unistd.h>

typedef struct dj_worker {
    struct dj_threadpool *pool;
    int index;
    pthread_t thread;
} dj_worker;

struct dj_threadpool {
    int nthreads;
    dj_worker *workers; /* nthreads - 1 of them */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t done;
    /* the current loop; generation and pending are also read without the
     * lock by spinning threads, so every access to them is atomic */
    uint64_t generation;
    int pending; /* workers still running the current loop */
    int stop;
    dj_range_fn fn;
    void *arg;
    int64_t n;
    int active; /* threads that get a range this loop */
    /* per-thread scratch */
    void **scratch;
    size_t scratch_bytes;
};

static void dj_pool_run_share(dj_threadpool *p, int t) {
    if (t >= p->active)
        return;
    /* balanced: range sizes differ by at most one, and each holds at least
     * n / active >= grain iterations */
    int64_t begin = (int64_t)((__int128)t * p->n / p->active);
    int64_t end = (int64_t)((__int128)(t + 1) * p->n / p->active);
    if (begin < end)
        p->fn(p->arg, begin, end, t);
}

/* Pause instructions a thread spins through, watching for the next loop
 * (workers) or for the loop's end (the caller), before it sleeps on the
 * condition variable. A training step of a small model runs thousands of
 * short loops, and waking a sleeping thread on these virtual machines
 * costs tens of microseconds each time. Measured on the demo (r3d_mini, 2
 * cores, 2 compute threads and a decode worker at nice 19, 7 alternating
 * pairs of 2-epoch runs): 3000 won every pair, 89 against 80.5 clips/s in
 * the quietest three; 10000 starved the decode worker (data wait 2-4%). */
enum { DJ_POOL_SPIN = 3000 };

static inline void dj_pool_pause(void) {
#if defined(__x86_64__)
    _mm_pause();
#endif
}

static void *dj_worker_main(void *arg) {
    dj_worker *w = arg;
    dj_threadpool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < DJ_POOL_SPIN && __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen; i++)
            dj_pool_pause();
        pthread_mutex_lock(&p->lock);
        while (!p->stop && __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        seen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
        pthread_mutex_unlock(&p->lock);

        dj_pool_run_share(p, w->index);

        pthread_mutex_lock(&p->lock);
        if (__atomic_sub_fetch(&p->pending, 1, __ATOMIC_ACQ_REL) == 0)
            pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->lock);
    }
}

dj_status dj_threadpool_create(int nthreads, dj_threadpool **out) {
    *out = NULL;
    if (nthreads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n > 0 ? (int)n : 1;
    }
    if (nthreads > 1024)
        return dj_error_set(DJ_ERR_INVALID, "threads", "%d threads requested, at most 1024", nthreads);
    dj_threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return dj_error_set(DJ_ERR_NOMEM, "dj_threadpool_create", "cannot allocate the pool");
    p->nthreads = nthreads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->workers = calloc((size_t)nthreads, sizeof *p->workers);
    p->scratch = calloc((size_t)nthreads, sizeof *p->scratch);
    if (!p->workers || !p->scratch) {
        dj_threadpool_free(p);
        return dj_error_set(DJ_ERR_NOMEM, "dj_threadpool_create", "cannot allocate %d workers", nthreads);
    }
    for (int i = 1; i < nthreads; i++) {
        dj_worker *w = &p->workers[i];
        w->pool = p;
        w->index = i;
        if (pthread_create(&w->thread, NULL, dj_worker_main, w) != 0) {
            p->nthreads = i; /* only workers 1..i-1 exist */
            dj_threadpool_free(p);
            return dj_error_set(DJ_ERR_NOMEM, "dj_threadpool_create", "cannot start thread %d of %d", i, nthreads);
        }
    }
    *out = p;
    return DJ_OK;
}

void dj_threadpool_free(dj_threadpool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->nthreads; i++)
        pthread_join(p->workers[i].thread, NULL);
    if (p->scratch)
        for (int i = 0; i < p->nthreads; i++)
            free(p->scratch[i]);
    free(p->scratch);
    free(p->workers);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
}

int dj_threadpool_size(const dj_threadpool *pool) { return pool ? pool->nthreads : 1; }

void dj_parallel_for(dj_threadpool *p, int64_t n, int64_t grain, dj_range_fn fn, void *arg) {
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    int64_t max_parts = n / grain; /* every range gets at least grain */
    if (!p || p->nthreads == 1 || max_parts <= 1) {
        fn(arg, 0, n, 0);
        return;
    }
    int active = max_parts < p->nthreads ? (int)max_parts : p->nthreads;
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->active = active;
    __atomic_store_n(&p->pending, p->nthreads - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&p->generation, p->generation + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    dj_pool_run_share(p, 0);

    for (int i = 0; i < DJ_POOL_SPIN && __atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0; i++)
        dj_pool_pause();
    pthread_mutex_lock(&p->lock);
    while (__atomic_load_n(&p->pending, __ATOMIC_ACQUIRE) > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

dj_status dj_threadpool_reserve_scratch(dj_threadpool *p, size_t bytes) {
    if (!p)
        return dj_error_set(DJ_ERR_INVALID, "dj_threadpool_reserve_scratch", "NULL pool");
    if (bytes <= p->scratch_bytes)
        return DJ_OK;
    size_t rounded = (bytes + 63) / 64 * 64;
    for (int i = 0; i < p->nthreads; i++) {
        void *m = aligned_alloc(64, rounded);
        if (!m)
            return dj_error_set(DJ_ERR_NOMEM, "dj_threadpool_reserve_scratch", "cannot allocate %zu bytes", rounded);
        free(p->scratch[i]);
        p->scratch[i] = m;
    }
    p->scratch_bytes = rounded;
    return DJ_OK;
}

void *dj_threadpool_scratch(dj_threadpool *p, int thread, size_t bytes) {
    if (!p || thread < 0 || thread >= p->nthreads || bytes > p->scratch_bytes)
        return NULL;
    return p->scratch[thread];
}
