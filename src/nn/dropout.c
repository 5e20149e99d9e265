/* dropout.c — inverted dropout whose mask is a pure function of (seed, step,
 * element index): element i is kept iff dj_hash_float(seed, step, i) >= p
 * (evaluated inline by the row kernels of pw_rows.inc), so backward
 * recomputes it and the thread count never changes it. */
#include <string.h>

#include "nn/pointwise_internal.h"

typedef struct dj_dropout_job {
    dj_pw_rows rows;
    uint64_t key, threshold;
    float scale;
    const float *x;
    float *y;
    int accumulate;
} dj_dropout_job;

static void dj_dropout_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_dropout_job *j = arg;
    (void)thread;
    j->rows.dropout(j->key, j->threshold, j->scale, j->x + b, j->y + b, b, e - b, j->accumulate);
}

static dj_status dj_dropout_check(const char *op, const dj_dropout_params *p) {
    if (!p)
        return dj_error_set(DJ_ERR_INVALID, op, "params are NULL");
    if (!(p->p >= 0.0f && p->p <= 1.0f))
        return dj_error_set(DJ_ERR_INVALID, op, "p = %g, must be in [0, 1]", (double)p->p);
    return DJ_OK;
}

static void dj_dropout_run(const dj_exec *ex, const dj_dropout_params *p, const float *x, float *y, int64_t n,
                           int accumulate) {
    /* p == 1: every element dropped (torch gives zeros), scale unused */
    float scale = p->p < 1.0f ? 1.0f / (1.0f - p->p) : 0.0f;
    /* hash/2^24 >= p  <=>  top 24 bits >= ceil(p * 2^24) (both exact) */
    uint64_t threshold = (uint64_t)ceil((double)p->p * 16777216.0);
    dj_dropout_job j = {dj_pw_rows_select(), dj_dropout_key(p->seed, p->step), threshold, scale, x, y, accumulate};
    dj_parallel_for(dj_pw_pool(ex), n, DJ_PW_GRAIN / 4, dj_dropout_range, &j);
}

dj_status dj_dropout_forward(const dj_exec *ex, const dj_dropout_params *p, const dj_tensor *x, dj_tensor *y) {
    const char *op = "dj_dropout_forward";
    DJ_TRY(dj_dropout_check(op, p));
    DJ_TRY(dj_pw_check(op, "x", x, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "x", x, "y", y, 0));
    int64_t n = dj_tensor_numel(x);
    if (!p->training || p->p == 0.0f) {
        if (y->data != x->data)
            memmove(y->data, x->data, (size_t)n * sizeof(float));
        return DJ_OK;
    }
    dj_dropout_run(ex, p, x->data, y->data, n, 0);
    return DJ_OK;
}

typedef struct dj_add_job {
    const float *x;
    float *y;
} dj_add_job;

static void dj_add_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_add_job *j = arg;
    (void)thread;
    for (int64_t i = b; i < e; i++)
        j->y[i] += j->x[i];
}

dj_status dj_dropout_backward(const dj_exec *ex, const dj_dropout_params *p, const dj_tensor *dy, dj_tensor *dx) {
    const char *op = "dj_dropout_backward";
    DJ_TRY(dj_dropout_check(op, p));
    DJ_TRY(dj_pw_check(op, "dy", dy, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "dy", dy, "dx", dx, 1));
    if (!dx)
        return DJ_OK;
    int64_t n = dj_tensor_numel(dy);
    if (!p->training || p->p == 0.0f) {
        dj_add_job j = {dy->data, dx->data};
        dj_parallel_for(dj_pw_pool(ex), n, DJ_PW_GRAIN, dj_add_range, &j);
        return DJ_OK;
    }
    dj_dropout_run(ex, p, dy->data, dx->data, n, 1);
    return DJ_OK;
}
