/* activation.c — ReLU, GELU (erf and tanh forms), SiLU and sigmoid, forward
 * and backward, as element-wise loops split over the pool. ReLU's loops are
 * branch-free so the compiler vectorises them at -O3. */
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

/* One loop per activation so each vectorises (the switch is outside). */
#define DJ_ACT_LOOP(EXPR)                \
    for (int64_t i = 0; i < n; i++) {    \
        float z = x[i] + bias;           \
        y[i] = (EXPR);                   \
    }

void dj_act_row_forward(dj_act act, const float *x, float bias, float *y, int64_t n) {
    switch (act) {
    case DJ_ACT_NONE: DJ_ACT_LOOP(z) break;
    case DJ_ACT_RELU: DJ_ACT_LOOP(z > 0.0f ? z : 0.0f) break;
    case DJ_ACT_GELU: DJ_ACT_LOOP(z * dj_phi_f32(z)) break;
    case DJ_ACT_GELU_TANH: DJ_ACT_LOOP(dj_act_f32(DJ_ACT_GELU_TANH, z)) break;
    case DJ_ACT_SILU: DJ_ACT_LOOP(z * dj_sigmoid_f32(z)) break;
    case DJ_ACT_SIGMOID: DJ_ACT_LOOP(dj_sigmoid_f32(z)) break;
    }
}

/* dy is loaded unconditionally so the ReLU select vectorises. */
#define DJ_ACT_GRAD_LOOP(EXPR)           \
    for (int64_t i = 0; i < n; i++) {    \
        float z = x[i] + bias, g = dy[i]; \
        dx[i] += (EXPR);                 \
    }

void dj_act_row_backward(dj_act act, const float *x, float bias, const float *dy, float *dx, int64_t n) {
    switch (act) {
    case DJ_ACT_NONE: DJ_ACT_GRAD_LOOP(g + 0.0f * z) break;
    case DJ_ACT_RELU: DJ_ACT_GRAD_LOOP(z > 0.0f ? g : 0.0f) break;
    case DJ_ACT_GELU: DJ_ACT_GRAD_LOOP(g * dj_act_grad_f32(DJ_ACT_GELU, z)) break;
    case DJ_ACT_GELU_TANH: DJ_ACT_GRAD_LOOP(g * dj_act_grad_f32(DJ_ACT_GELU_TANH, z)) break;
    case DJ_ACT_SILU: DJ_ACT_GRAD_LOOP(g * dj_act_grad_f32(DJ_ACT_SILU, z)) break;
    case DJ_ACT_SIGMOID: DJ_ACT_GRAD_LOOP(g * dj_act_grad_f32(DJ_ACT_SIGMOID, z)) break;
    }
}

typedef struct dj_act_job {
    dj_act act;
    const float *x, *dy;
    float *y;
} dj_act_job;

static void dj_act_fwd_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_act_job *j = arg;
    (void)thread;
    if (j->act == DJ_ACT_NONE && j->y == j->x)
        return;
    dj_act_row_forward(j->act, j->x + b, 0.0f, j->y + b, e - b);
}

/* j->y is dx here: dx += dy * f'(x) */
static void dj_act_bwd_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_act_job *j = arg;
    (void)thread;
    dj_act_row_backward(j->act, j->x + b, 0.0f, j->dy + b, j->y + b, e - b);
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
