/* test_threadpool.c — dj_parallel_for: every index of [0, n) runs exactly
 * once, ranges respect the grain and are fixed by (n, grain, threads) alone,
 * the NULL pool, many loops in a row, and per-thread scratch memory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "support/test.h"

#define DJ_MAXN 5000

typedef struct dj_probe {
    int hits[DJ_MAXN];           /* times each index ran */
    int64_t begin[64], end[64];  /* the range each thread got (-1: none) */
    int calls[64];               /* calls per thread */
    int nthreads;
} dj_probe;

static void dj_probe_fn(void *arg, int64_t begin, int64_t end, int thread) {
    dj_probe *p = arg;
    if (thread < 0 || thread >= p->nthreads) {
        p->nthreads = -1000; /* flagged below */
        return;
    }
    p->begin[thread] = begin;
    p->end[thread] = end;
    p->calls[thread]++;
    for (int64_t i = begin; i < end; i++)
        __atomic_add_fetch(&p->hits[i], 1, __ATOMIC_RELAXED);
}

static void dj_probe_run(dj_threadpool *pool, int64_t n, int64_t grain, dj_probe *p) {
    memset(p, 0, sizeof *p);
    p->nthreads = dj_threadpool_size(pool);
    for (int t = 0; t < 64; t++)
        p->begin[t] = p->end[t] = -1;
    dj_parallel_for(pool, n, grain, dj_probe_fn, p);
}

static void test_ranges_cover_once_and_respect_grain(void) {
    const int64_t ns[] = {0, 1, 2, 3, 7, 10, 64, 100, 1001, DJ_MAXN};
    const int64_t grains[] = {0, 1, 3, 4, 16, 1000, 100000};
    static dj_probe p;
    for (int threads = 1; threads <= 5; threads++) {
        dj_threadpool *pool = NULL;
        CHECK_EQ_INT(dj_threadpool_create(threads, &pool), DJ_OK);
        CHECK_EQ_INT(dj_threadpool_size(pool), threads);
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof grains / sizeof grains[0]; b++) {
                int64_t n = ns[a], grain = grains[b];
                dj_probe_run(pool, n, grain, &p);
                CHECK(p.nthreads == threads);
                int once = 1;
                for (int64_t i = 0; i < n; i++)
                    once &= p.hits[i] == 1;
                CHECK_MSG(once, "threads=%d n=%lld grain=%lld: an index ran not exactly once", threads,
                          (long long)n, (long long)grain);
                int64_t covered = 0;
                int ranges = 0;
                for (int t = 0; t < threads; t++) {
                    CHECK(p.calls[t] <= 1);
                    if (p.calls[t] == 0)
                        continue;
                    int64_t len = p.end[t] - p.begin[t];
                    covered += len;
                    ranges++;
                    /* a range shorter than the grain only when one range takes all */
                    CHECK_MSG(len >= grain || len == n, "threads=%d n=%lld grain=%lld: range of %lld", threads,
                              (long long)n, (long long)grain, (long long)len);
                }
                CHECK_EQ_INT(covered, n);
                if (n == 0)
                    CHECK_EQ_INT(ranges, 0);
                /* work is spread when there is enough of it */
                if (grain <= 1 && n >= threads)
                    CHECK_EQ_INT(ranges, threads);
            }
        dj_threadpool_free(pool);
    }
}

/* the split depends only on (n, grain, threads): two runs give the same ranges
 * on the same threads, and ranges are in thread order */
static void test_ranges_are_static(void) {
    static dj_probe p, q;
    dj_threadpool *pool = NULL;
    CHECK_EQ_INT(dj_threadpool_create(3, &pool), DJ_OK);
    for (int rep = 0; rep < 20; rep++) {
        dj_probe_run(pool, 1000, 7, &p);
        dj_probe_run(pool, 1000, 7, &q);
        CHECK(memcmp(p.begin, q.begin, sizeof p.begin) == 0 && memcmp(p.end, q.end, sizeof p.end) == 0);
    }
    CHECK_EQ_INT(p.begin[0], 0);
    CHECK_EQ_INT(p.end[0], p.begin[1]);
    CHECK_EQ_INT(p.end[1], p.begin[2]);
    CHECK_EQ_INT(p.end[2], 1000);
    /* balanced: sizes differ by at most one */
    for (int t = 0; t < 3; t++)
        CHECK(p.end[t] - p.begin[t] == 333 || p.end[t] - p.begin[t] == 334);
    dj_threadpool_free(pool);
}

static void test_null_pool_runs_on_caller(void) {
    static dj_probe p;
    CHECK_EQ_INT(dj_threadpool_size(NULL), 1);
    dj_probe_run(NULL, 100, 1, &p);
    CHECK_EQ_INT(p.calls[0], 1);
    CHECK_EQ_INT(p.begin[0], 0);
    CHECK_EQ_INT(p.end[0], 100);
    dj_probe_run(NULL, 0, 1, &p);
    CHECK_EQ_INT(p.calls[0], 0);
}

typedef struct dj_sum {
    int64_t part[8];
} dj_sum;

static void dj_sum_fn(void *arg, int64_t begin, int64_t end, int thread) {
    dj_sum *s = arg;
    for (int64_t i = begin; i < end; i++)
        s->part[thread] += i;
}

/* thousands of loops back to back: no lost wake-up, no hang, right sums */
static void test_repeated_loops(void) {
    dj_threadpool *pool = NULL;
    CHECK_EQ_INT(dj_threadpool_create(3, &pool), DJ_OK);
    int bad = 0;
    for (int rep = 0; rep < 3000; rep++) {
        dj_sum s = {{0}};
        int64_t n = rep % 50;
        dj_parallel_for(pool, n, 1 + rep % 4, dj_sum_fn, &s);
        int64_t total = 0;
        for (int t = 0; t < 8; t++)
            total += s.part[t];
        bad += total != n * (n - 1) / 2;
    }
    CHECK_EQ_INT(bad, 0);
    dj_threadpool_free(pool);
}

static void test_create_arguments(void) {
    dj_threadpool *pool = (dj_threadpool *)1;
    CHECK_EQ_INT(dj_threadpool_create(100000, &pool), DJ_ERR_INVALID);
    CHECK(pool == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), "threads");
    CHECK_EQ_INT(dj_threadpool_create(0, &pool), DJ_OK); /* one per core */
    CHECK(dj_threadpool_size(pool) >= 1);
    dj_threadpool_free(pool);
    dj_threadpool_free(NULL);
}

typedef struct dj_scratch_job {
    dj_threadpool *pool;
    size_t bytes;
    void *seen[8];
} dj_scratch_job;

static void dj_scratch_fn(void *arg, int64_t begin, int64_t end, int thread) {
    dj_scratch_job *j = arg;
    unsigned char *m = dj_threadpool_scratch(j->pool, thread, j->bytes);
    j->seen[thread] = m;
    if (m)
        memset(m, thread + 1, j->bytes); /* ASan catches an undersized buffer */
}

static void test_scratch(void) {
    dj_threadpool *pool = NULL;
    CHECK_EQ_INT(dj_threadpool_create(3, &pool), DJ_OK);
    CHECK(dj_threadpool_scratch(pool, 0, 1) == NULL); /* never reserved */
    CHECK_EQ_INT(dj_threadpool_reserve_scratch(pool, 1000), DJ_OK);
    dj_scratch_job j = {pool, 1000, {0}};
    dj_parallel_for(pool, 3, 1, dj_scratch_fn, &j);
    for (int t = 0; t < 3; t++) {
        CHECK(j.seen[t] != NULL);
        CHECK(((uintptr_t)j.seen[t] & 63) == 0);
        for (int u = 0; u < t; u++)
            CHECK(j.seen[t] != j.seen[u]); /* each thread its own */
    }
    unsigned char *m0 = dj_threadpool_scratch(pool, 0, 1000);
    CHECK(m0 && m0[999] == 1);
    CHECK(dj_threadpool_scratch(pool, 0, 1025) == NULL); /* more than reserved */
    CHECK(dj_threadpool_scratch(pool, 3, 10) == NULL);   /* no such thread */
    CHECK(dj_threadpool_scratch(pool, -1, 10) == NULL);
    /* reserving less keeps the buffers; more grows them */
    CHECK_EQ_INT(dj_threadpool_reserve_scratch(pool, 10), DJ_OK);
    CHECK(dj_threadpool_scratch(pool, 0, 1000) == m0);
    CHECK_EQ_INT(dj_threadpool_reserve_scratch(pool, 100000), DJ_OK);
    j.bytes = 100000;
    dj_parallel_for(pool, 3, 1, dj_scratch_fn, &j);
    for (int t = 0; t < 3; t++)
        CHECK(j.seen[t] != NULL);
    CHECK_EQ_INT(dj_threadpool_reserve_scratch(NULL, 10), DJ_ERR_INVALID);
    CHECK(dj_threadpool_scratch(NULL, 0, 10) == NULL);
    dj_threadpool_free(pool);
}

int main(void) {
    DJ_RUN(test_ranges_cover_once_and_respect_grain);
    DJ_RUN(test_ranges_are_static);
    DJ_RUN(test_null_pool_runs_on_caller);
    DJ_RUN(test_repeated_loops);
    DJ_RUN(test_create_arguments);
    DJ_RUN(test_scratch);
    return dj_test_finish();
}
