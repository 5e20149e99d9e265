/* test_syncbn.c — synchronised batch norm without MPI: replicas are threads
 * of this process, each holding a share of the batch rows (uneven shares
 * too), and the statistics hook is an in-process all-reduce between them.
 * Checks: outputs, saved statistics, running statistics, input gradients
 * and (summed over replicas) parameter gradients equal those of one
 * batch-norm call over all rows; no hook = dj_batchnorm_forward/backward bit
 * for bit; eval mode never calls the hook; hook failures are reported. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/ops.h"
#include "dojo/ops_spatial.h"
#include "dojo/threadpool.h"
#include "support/test.h"

enum { MAXR = 4, C = 600, T = 2, H = 3, W = 2, R = T * H * W }; /* C > 512: two exchanges per call */

/* ---- an in-process all-reduce between replica threads ---- */

typedef struct group {
    pthread_barrier_t bar;
    int size;
    double *bufs[MAXR];
    double total[2 * C + 1];
    int calls;
} group;

typedef struct replica {
    group *g;
    int rank;
    int fail_at; /* > 0: the fail_at-th call fails */
    int calls;
} replica;

static dj_status group_sum(void *ctx, double *buf, size_t n) {
    replica *r = ctx;
    group *g = r->g;
    if (++r->calls == r->fail_at)
        return dj_error_set(DJ_ERR_IO, "rank 1", "peer vanished");
    g->bufs[r->rank] = buf;
    pthread_barrier_wait(&g->bar);
    if (r->rank == 0) { /* rank order, as dojo's all-reduce */
        for (size_t i = 0; i < n; i++) {
            double s = g->bufs[0][i];
            for (int p = 1; p < g->size; p++)
                s += g->bufs[p][i];
            g->total[i] = s;
        }
        g->calls++;
    }
    pthread_barrier_wait(&g->bar);
    memcpy(buf, g->total, n * sizeof *buf);
    pthread_barrier_wait(&g->bar); /* nobody overwrites total before all have it */
    return DJ_OK;
}

/* ---- data ---- */

static float value(int64_t i, int salt) {
    uint64_t h = (uint64_t)i * 0x9e3779b97f4a7c15ull + (uint64_t)salt * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 32;
    return (float)((double)(h % 20001) / 10000.0 - 1.0);
}

typedef struct bn_set {
    int64_t rows;
    dj_tensor x, y, dy, dx, mean, invstd, rm, rv, w, b, dw, db;
} bn_set;

/* rows [lo, lo + rows) of the whole batch; all buffers allocated here */
static void set_create(bn_set *s, int64_t lo, int64_t rows) {
    memset(s, 0, sizeof *s);
    s->rows = rows;
    int64_t shape[5] = {rows, C, T, H, W}, c[1] = {C};
    dj_tensor *big[] = {&s->x, &s->y, &s->dy, &s->dx};
    for (int k = 0; k < 4; k++)
        dj_tensor_create(DJ_DTYPE_F32, 5, shape, big[k]);
    dj_tensor *small[] = {&s->mean, &s->invstd, &s->rm, &s->rv, &s->w, &s->b, &s->dw, &s->db};
    for (int k = 0; k < 8; k++)
        dj_tensor_create(DJ_DTYPE_F32, 1, c, small[k]);
    const int64_t per = C * R;
    float *x = s->x.data, *dy = s->dy.data;
    for (int64_t i = 0; i < rows * per; i++) {
        int64_t g = lo * per + i, ch = i / R % C;
        x[i] = value(g, 1) * (1.0f + (float)(ch % 7)) + 0.3f * (float)(ch % 5); /* per-channel scale and offset */
        dy[i] = value(g, 2);
    }
    for (int64_t k = 0; k < C; k++) {
        ((float *)s->w.data)[k] = 0.5f + value(k, 3);
        ((float *)s->b.data)[k] = value(k, 4);
        ((float *)s->rm.data)[k] = 0.1f * value(k, 5);
        ((float *)s->rv.data)[k] = 1.0f + 0.2f * value(k, 6);
    }
    memset(s->dx.data, 0, dj_tensor_nbytes(&s->dx));
}

static void set_free(bn_set *s) {
    dj_tensor *all[] = {&s->x, &s->y, &s->dy, &s->dx, &s->mean, &s->invstd, &s->rm,
                        &s->rv, &s->w, &s->b, &s->dw, &s->db};
    for (int k = 0; k < 12; k++)
        dj_tensor_free(all[k]);
}

typedef struct job {
    bn_set *s;
    replica *rep; /* NULL: no hook */
    dj_threadpool *pool;
    dj_status fwd, bwd;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    bn_set *s = j->s;
    dj_stats_sync sync = {group_sum, j->rep};
    const dj_stats_sync *sp = j->rep ? &sync : NULL;
    dj_exec ex = {j->pool, NULL, 0};
    dj_batchnorm_params p = dj_batchnorm_defaults();
    j->fwd = dj_batchnorm_forward_sync(&ex, &p, sp, &s->x, &s->w, &s->b, &s->rm, &s->rv, &s->y, &s->mean, &s->invstd);
    memset(s->dw.data, 0, dj_tensor_nbytes(&s->dw));
    memset(s->db.data, 0, dj_tensor_nbytes(&s->db));
    j->bwd = j->fwd != DJ_OK ? j->fwd
                             : dj_batchnorm_backward_sync(&ex, &p, sp, &s->x, &s->w, &s->mean, &s->invstd, &s->dy,
                                                          &s->dx, &s->dw, &s->db);
    return NULL;
}

static double rel_diff(const float *a, const float *b, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / fmax(m, 1e-30);
}

/* Runs `size` replicas with the given row shares and compares with one call. */
static void check_replicas(int size, const int64_t *shares, int threads) {
    int64_t total = 0;
    for (int r = 0; r < size; r++)
        total += shares[r];
    bn_set whole, part[MAXR];
    set_create(&whole, 0, total);
    job wj = {&whole, NULL, NULL, 0, 0};
    run_job(&wj);
    CHECK(wj.fwd == DJ_OK && wj.bwd == DJ_OK);
    group g;
    memset(&g, 0, sizeof g);
    g.size = size;
    pthread_barrier_init(&g.bar, NULL, (unsigned)size);
    replica reps[MAXR];
    job jobs[MAXR];
    pthread_t th[MAXR];
    dj_threadpool *pools[MAXR] = {0};
    int64_t lo = 0;
    for (int r = 0; r < size; r++) {
        set_create(&part[r], lo, shares[r]);
        lo += shares[r];
        reps[r] = (replica){&g, r, 0, 0};
        if (threads > 1)
            CHECK(dj_threadpool_create(threads, &pools[r]) == DJ_OK);
        jobs[r] = (job){&part[r], &reps[r], pools[r], 0, 0};
        pthread_create(&th[r], NULL, run_job, &jobs[r]);
    }
    for (int r = 0; r < size; r++)
        pthread_join(th[r], NULL);
    CHECK_EQ_INT(g.calls, 2 * 3); /* 600 channels in 2 chunks: 2 forward + 1 backward exchanges each */
    const int64_t per = C * R;
    double worst_y = 0, worst_dx = 0, worst_stats = 0;
    float dw[C] = {0}, db[C] = {0};
    lo = 0;
    for (int r = 0; r < size; r++) {
        CHECK(jobs[r].fwd == DJ_OK && jobs[r].bwd == DJ_OK);
        worst_y = fmax(worst_y, rel_diff(part[r].y.data, (float *)whole.y.data + lo * per, shares[r] * per));
        worst_dx = fmax(worst_dx, rel_diff(part[r].dx.data, (float *)whole.dx.data + lo * per, shares[r] * per));
        worst_stats = fmax(worst_stats, rel_diff(part[r].mean.data, whole.mean.data, C));
        worst_stats = fmax(worst_stats, rel_diff(part[r].invstd.data, whole.invstd.data, C));
        worst_stats = fmax(worst_stats, rel_diff(part[r].rm.data, whole.rm.data, C));
        worst_stats = fmax(worst_stats, rel_diff(part[r].rv.data, whole.rv.data, C));
        for (int k = 0; k < C; k++) {
            dw[k] += ((float *)part[r].dw.data)[k];
            db[k] += ((float *)part[r].db.data)[k];
        }
        /* running statistics: the same bits on every replica */
        CHECK(memcmp(part[r].rm.data, part[0].rm.data, C * sizeof(float)) == 0);
        CHECK(memcmp(part[r].rv.data, part[0].rv.data, C * sizeof(float)) == 0);
        lo += shares[r];
    }
    printf("# %d replicas (%lld", size, (long long)shares[0]);
    for (int r = 1; r < size; r++)
        printf("/%lld", (long long)shares[r]);
    printf(" rows), %d threads: y %.2g, dx %.2g, statistics %.2g, dw %.2g, db %.2g relative\n", threads, worst_y,
           worst_dx, worst_stats, rel_diff(dw, whole.dw.data, C), rel_diff(db, whole.db.data, C));
    CHECK(worst_y < 1e-5 && worst_dx < 1e-5 && worst_stats < 1e-6);
    CHECK(rel_diff(dw, whole.dw.data, C) < 1e-5 && rel_diff(db, whole.db.data, C) < 1e-5);
    /* a replica normalising its own rows only is far off: the checks can fail */
    if (size > 1) {
        bn_set alone;
        set_create(&alone, 0, shares[0]);
        job aj = {&alone, NULL, NULL, 0, 0};
        run_job(&aj);
        CHECK(rel_diff(alone.mean.data, whole.mean.data, C) > 1e-3);
        CHECK(rel_diff(alone.dx.data, whole.dx.data, shares[0] * per) > 1e-3);
        set_free(&alone);
    }
    for (int r = 0; r < size; r++) {
        set_free(&part[r]);
        dj_threadpool_free(pools[r]);
    }
    pthread_barrier_destroy(&g.bar);
    set_free(&whole);
}

static void test_replicas_equal_one_batch(void) {
    const int64_t even[2] = {2, 2}, uneven[3] = {3, 3, 2}, odd[3] = {1, 2, 1};
    check_replicas(2, even, 1);
    check_replicas(3, uneven, 1);
    check_replicas(3, odd, 2); /* a replica with one row, and a thread pool */
    check_replicas(1, even, 1);
}

/* Without a hook, or in eval mode, the synchronised entry points are the
 * plain ones bit for bit (and eval never calls the hook). */
static void test_no_hook_is_plain_batchnorm(void) {
    bn_set a, b;
    set_create(&a, 0, 3);
    set_create(&b, 0, 3);
    dj_batchnorm_params p = dj_batchnorm_defaults();
    CHECK(dj_batchnorm_forward(NULL, &p, &a.x, &a.w, &a.b, &a.rm, &a.rv, &a.y, &a.mean, &a.invstd) == DJ_OK);
    CHECK(dj_batchnorm_forward_sync(NULL, &p, NULL, &b.x, &b.w, &b.b, &b.rm, &b.rv, &b.y, &b.mean, &b.invstd) ==
          DJ_OK);
    CHECK(memcmp(a.y.data, b.y.data, dj_tensor_nbytes(&a.y)) == 0);
    CHECK(memcmp(a.rv.data, b.rv.data, C * sizeof(float)) == 0);
    CHECK(dj_batchnorm_backward(NULL, &p, &a.x, &a.w, &a.mean, &a.invstd, &a.dy, &a.dx, &a.dw, &a.db) == DJ_OK);
    CHECK(dj_batchnorm_backward_sync(NULL, &p, NULL, &b.x, &b.w, &b.mean, &b.invstd, &b.dy, &b.dx, &b.dw, &b.db) ==
          DJ_OK);
    CHECK(memcmp(a.dx.data, b.dx.data, dj_tensor_nbytes(&a.dx)) == 0);
    /* eval: running statistics, the hook is not called (it would fail) */
    group g;
    memset(&g, 0, sizeof g);
    replica rep = {&g, 0, 1, 0};
    dj_stats_sync sync = {group_sum, &rep};
    p.training = 0;
    CHECK(dj_batchnorm_forward(NULL, &p, &a.x, &a.w, &a.b, &a.rm, &a.rv, &a.y, &a.mean, &a.invstd) == DJ_OK);
    CHECK(dj_batchnorm_forward_sync(NULL, &p, &sync, &b.x, &b.w, &b.b, &b.rm, &b.rv, &b.y, &b.mean, &b.invstd) ==
          DJ_OK);
    CHECK(memcmp(a.y.data, b.y.data, dj_tensor_nbytes(&a.y)) == 0);
    CHECK_EQ_INT(rep.calls, 0);
    set_free(&a);
    set_free(&b);
}

static void test_hook_failure_reported(void) {
    bn_set s;
    set_create(&s, 0, 2);
    group g;
    memset(&g, 0, sizeof g);
    g.size = 1;
    pthread_barrier_init(&g.bar, NULL, 1);
    dj_batchnorm_params p = dj_batchnorm_defaults();
    for (int at = 1; at <= 3; at++) { /* the first sums, the deviations, the second chunk */
        replica rep = {&g, 0, at, 0};
        dj_stats_sync sync = {group_sum, &rep};
        CHECK(dj_batchnorm_forward_sync(NULL, &p, &sync, &s.x, &s.w, &s.b, &s.rm, &s.rv, &s.y, &s.mean,
                                        &s.invstd) == DJ_ERR_IO);
        CHECK_STR_CONTAINS(dj_error_message(), "synchronising statistics");
        CHECK_STR_CONTAINS(dj_error_message(), "peer vanished (rank 1)");
    }
    replica rep = {&g, 0, 1, 0};
    dj_stats_sync sync = {group_sum, &rep};
    CHECK(dj_batchnorm_backward_sync(NULL, &p, &sync, &s.x, &s.w, &s.mean, &s.invstd, &s.dy, &s.dx, &s.dw, &s.db) ==
          DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_batchnorm_backward");
    dj_stats_sync empty = {NULL, NULL};
    CHECK(dj_batchnorm_forward_sync(NULL, &p, &empty, &s.x, &s.w, &s.b, &s.rm, &s.rv, &s.y, &s.mean, &s.invstd) ==
          DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "no sum function");
    /* shapes are still checked first */
    CHECK(dj_batchnorm_forward_sync(NULL, &p, &sync, &s.x, &s.w, &s.b, &s.rm, &s.rv, &s.mean, &s.mean, &s.invstd) ==
          DJ_ERR_INVALID);
    pthread_barrier_destroy(&g.bar);
    set_free(&s);
}

int main(void) {
    DJ_RUN(test_replicas_equal_one_batch);
    DJ_RUN(test_no_hook_is_plain_batchnorm);
    DJ_RUN(test_hook_failure_reported);
    return dj_test_finish();
}
