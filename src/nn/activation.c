/* activation.c — ReLU, GELU (erf and tanh forms), SiLU and sigmoid, forward
 * and backward, as element-wise loops split over the pool. ReLU's loops are
 * branch-free so the compiler vectorises them at -O3. */
#include <string.h>

#include "nn/pointwise_internal.h"

const char *dj_act_name(dj_act act) {
    switch (act) {
    case DJ_ACT_NONE: return "none";
    case DJ_ACT_RELU: return "relu";
    case DJ_ACT_GELU: return "gelu";
    case DJ_ACT_GELU_TANH: return "gelu_tanh";
    case DJ_ACT_SILU: return "silu";
    case DJ_ACT_SIGMOID: return "sigmoid";
    }
    return "unknown";
}

typedef struct dj_act_job {
    dj_act act;
    const float *x, *dy;
    float *y;
} dj_act_job;

static void dj_act_fwd_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_act_job *j = arg;
    const float *x = j->x;
    float *y = j->y;
    (void)thread;
    switch (j->act) {
    case DJ_ACT_RELU:
        for (int64_t i = b; i < e; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case DJ_ACT_NONE:
        if (y != x)
            memmove(y + b, x + b, (size_t)(e - b) * sizeof *y);
        break;
    default:
        for (int64_t i = b; i < e; i++)
            y[i] = dj_act_f32(j->act, x[i]);
    }
}

/* j->y is dx here: dx += dy * f'(x) */
static void dj_act_bwd_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_act_job *j = arg;
    const float *x = j->x, *dy = j->dy;
    float *dx = j->y;
    (void)thread;
    switch (j->act) {
    case DJ_ACT_RELU:
        /* dy is loaded whatever the sign so that the select is branch-free
         * and vectorises (a branch on the sign mispredicts half the time) */
        for (int64_t i = b; i < e; i++) {
            float g = dy[i];
            dx[i] += x[i] > 0.0f ? g : 0.0f;
        }
        break;
    case DJ_ACT_NONE:
        for (int64_t i = b; i < e; i++)
            dx[i] += dy[i];
        break;
    default:
        for (int64_t i = b; i < e; i++)
            dx[i] += dy[i] * dj_act_grad_f32(j->act, x[i]);
    }
}

dj_status dj_act_forward(const dj_exec *ex, dj_act act, const dj_tensor *x, dj_tensor *y) {
    const char *op = "dj_act_forward";
    DJ_TRY(dj_pw_act_valid(op, act));
    DJ_TRY(dj_pw_check(op, "x", x, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "x", x, "y", y, 0));
    dj_act_job j = {act, x->data, NULL, y->data};
    dj_parallel_for(dj_pw_pool(ex), dj_tensor_numel(x), DJ_PW_GRAIN, dj_act_fwd_range, &j);
    return DJ_OK;
}

dj_status dj_act_backward(const dj_exec *ex, dj_act act, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx) {
    const char *op = "dj_act_backward";
    DJ_TRY(dj_pw_act_valid(op, act));
    DJ_TRY(dj_pw_check(op, "x", x, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "x", x, "dy", dy, 0));
    DJ_TRY(dj_pw_same(op, "x", x, "dx", dx, 1));
    if (!dx)
        return DJ_OK;
    dj_act_job j = {act, x->data, dy->data, dx->data};
    dj_parallel_for(dj_pw_pool(ex), dj_tensor_numel(x), DJ_PW_GRAIN, dj_act_bwd_range, &j);
    return DJ_OK;
}

dj_status dj_relu_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y) {
    return dj_act_forward(ex, DJ_ACT_RELU, x, y);
}
dj_status dj_relu_backward(const dj_exec *ex, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx) {
    return dj_act_backward(ex, DJ_ACT_RELU, x, dy, dx);
}
dj_status dj_gelu_forward(const dj_exec *ex, int approximate, const dj_tensor *x, dj_tensor *y) {
    return dj_act_forward(ex, approximate ? DJ_ACT_GELU_TANH : DJ_ACT_GELU, x, y);
}
dj_status dj_gelu_backward(const dj_exec *ex, int approximate, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx) {
    return dj_act_backward(ex, approximate ? DJ_ACT_GELU_TANH : DJ_ACT_GELU, x, dy, dx);
}
dj_status dj_silu_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y) {
    return dj_act_forward(ex, DJ_ACT_SILU, x, y);
}
dj_status dj_silu_backward(const dj_exec *ex, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx) {
    return dj_act_backward(ex, DJ_ACT_SILU, x, dy, dx);
}
dj_status dj_sigmoid_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y) {
    return dj_act_forward(ex, DJ_ACT_SIGMOID, x, y);
}
dj_status dj_sigmoid_backward(const dj_exec *ex, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx) {
    return dj_act_backward(ex, DJ_ACT_SIGMOID, x, dy, dx);
}
