/* softmax.c — softmax and log-softmax over the last dimension, forward and
 * backward, one row per iteration of the pool (rows are independent, so
 * results do not depend on the split). Max-subtracted; sums in double. */
#include "nn/pointwise_internal.h"

typedef struct dj_softmax_job {
    int log;
    int64_t K;
    const float *x, *dy;
    float *y;
} dj_softmax_job;

/* Row maximum (exact in any order). */
static float dj_row_max(const float *x, int64_t K) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < K; i++)
        mx = x[i] > mx ? x[i] : mx;
    return mx;
}

static void dj_softmax_fwd_rows(void *arg, int64_t b, int64_t e, int thread) {
    const dj_softmax_job *j = arg;
    int64_t K = j->K;
    (void)thread;
    for (int64_t r = b; r < e; r++) {
        const float *x = j->x + r * K;
        float *y = j->y + r * K;
        float mx = dj_row_max(x, K);
        for (int64_t i = 0; i < K; i++)
            y[i] = dj_exp_f32(x[i] - mx);
        double sum = dj_sum_f32(y, K);
        if (j->log) {
            float lse = (float)log(sum); /* (x - max) first: exact, keeps precision */
            for (int64_t i = 0; i < K; i++)
                y[i] = (x[i] - mx) - lse;
        } else {
            float inv = (float)(1.0 / sum);
            for (int64_t i = 0; i < K; i++)
                y[i] *= inv;
        }
    }
}

/* j->y is dx: softmax dx += y*(dy - <dy,y>); log-softmax dx += dy - exp(y)*sum(dy) */
static void dj_softmax_bwd_rows(void *arg, int64_t b, int64_t e, int thread) {
    const dj_softmax_job *j = arg;
    int64_t K = j->K;
    (void)thread;
    for (int64_t r = b; r < e; r++) {
        const float *y = j->x + r * K, *dy = j->dy + r * K;
        float *dx = j->y + r * K;
        if (j->log) {
            float s = (float)dj_sum_f32(dy, K);
            for (int64_t i = 0; i < K; i++)
                dx[i] += dy[i] - dj_exp_f32(y[i]) * s;
        } else {
            float s = (float)dj_dot_f32(dy, y, K);
            for (int64_t i = 0; i < K; i++)
                dx[i] += y[i] * (dy[i] - s);
        }
    }
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
    dj_softmax_job j = {log, K, x->data, NULL, y->data};
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
    dj_softmax_job j = {log, K, y->data, dy->data, dx->data};
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
