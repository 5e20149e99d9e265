/* softmax.c — softmax and log-softmax over the last dimension, forward and
 * backward, one row per iteration of the pool (rows are independent, so
 * results do not depend on the split). Max-subtracted; fixed-order block sums in double. The row kernels live
 * in pw_rows.inc (generic, AVX2 and AVX-512 builds). */
#include "nn/pointwise_internal.h"

typedef struct dj_softmax_job {
    dj_pw_rows rows;
    int log;
    int64_t K;
    const float *x, *dy;
    float *y;
} dj_softmax_job;

static void dj_softmax_fwd_rows(void *arg, int64_t b, int64_t e, int thread) {
    const dj_softmax_job *j = arg;
    (void)thread;
    for (int64_t r = b; r < e; r++)
        j->rows.softmax_forward(j->log, j->x + r * j->K, j->y + r * j->K, j->K);
}

/* j->x is y, j->y is dx */
static void dj_softmax_bwd_rows(void *arg, int64_t b, int64_t e, int thread) {
    const dj_softmax_job *j = arg;
    (void)thread;
    for (int64_t r = b; r < e; r++)
        j->rows.softmax_backward(j->log, j->x + r * j->K, j->dy + r * j->K, j->y + r * j->K, j->K);
}

static dj_status dj_softmax_fwd(const dj_exec *ex, int log, const dj_tensor *x, dj_tensor *y) {
    const char *op = log ? "dj_log_softmax_forward" : "dj_softmax_forward";
    DJ_TRY(dj_pw_check(op, "x", x, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "x", x, "y", y, 0));
    if (x->ndim < 1)
        return dj_error_set(DJ_ERR_INVALID, op, "x must have at least one dimension");
    int64_t K = x->shape[x->ndim - 1];
    if (K == 0)
        return DJ_OK;
    dj_softmax_job j = {dj_pw_rows_select(), log, K, x->data, NULL, y->data};
    dj_parallel_for(dj_pw_pool(ex), dj_tensor_numel(x) / K, 1 + DJ_PW_GRAIN / K, dj_softmax_fwd_rows, &j);
    return DJ_OK;
}

static dj_status dj_softmax_bwd(const dj_exec *ex, int log, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx) {
    const char *op = log ? "dj_log_softmax_backward" : "dj_softmax_backward";
    DJ_TRY(dj_pw_check(op, "y", y, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "y", y, "dy", dy, 0));
    DJ_TRY(dj_pw_same(op, "y", y, "dx", dx, 1));
    if (y->ndim < 1)
        return dj_error_set(DJ_ERR_INVALID, op, "y must have at least one dimension");
    int64_t K = y->shape[y->ndim - 1];
    if (!dx || K == 0)
        return DJ_OK;
    dj_softmax_job j = {dj_pw_rows_select(), log, K, y->data, dy->data, dx->data};
    dj_parallel_for(dj_pw_pool(ex), dj_tensor_numel(y) / K, 1 + DJ_PW_GRAIN / K, dj_softmax_bwd_rows, &j);
    return DJ_OK;
}

dj_status dj_softmax_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y) { return dj_softmax_fwd(ex, 0, x, y); }
dj_status dj_log_softmax_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y) {
    return dj_softmax_fwd(ex, 1, x, y);
}
dj_status dj_softmax_backward(const dj_exec *ex, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx) {
    return dj_softmax_bwd(ex, 0, y, dy, dx);
}
dj_status dj_log_softmax_backward(const dj_exec *ex, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx) {
    return dj_softmax_bwd(ex, 1, y, dy, dx);
}
