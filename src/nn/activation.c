/* activation.c — ReLU, GELU (erf and tanh forms), SiLU and sigmoid, forward
 * and backward, as element-wise loops split over the pool. ReLU's loops are
 * branch-free so the compiler vectorises them at -O3. */
#include "dojo/cpu.h"
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

/* The generic row kernels; activation_avx2.c / activation_avx512.c compile
 * the same loops with wider vectors. */
#define DJ_ACT_ROWS_SUFFIX _generic
#include "nn/pw_rows.inc"

#if defined(__x86_64__)
void dj_act_row_forward_avx2(dj_act act, const float *x, float bias, float *y, int64_t n);
void dj_act_row_backward_avx2(dj_act act, const float *x, float bias, const float *dy, float *dx, int64_t n);
void dj_act_row_forward_avx512(dj_act act, const float *x, float bias, float *y, int64_t n);
void dj_act_row_backward_avx512(dj_act act, const float *x, float bias, const float *dy, float *dx, int64_t n);
void dj_dropout_row_avx2(uint64_t key, uint64_t threshold, float scale, const float *x, float *y, int64_t first,
                         int64_t n, int accumulate);
void dj_dropout_row_avx512(uint64_t key, uint64_t threshold, float scale, const float *x, float *y, int64_t first,
                           int64_t n, int accumulate);
void dj_softmax_row_forward_avx2(int log, const float *x, float *y, int64_t K);
void dj_softmax_row_backward_avx2(int log, const float *y, const float *dy, float *dx, int64_t K);
void dj_softmax_row_forward_avx512(int log, const float *x, float *y, int64_t K);
void dj_softmax_row_backward_avx512(int log, const float *y, const float *dy, float *dx, int64_t K);
#define DJ_ATTN_SMALL_DECL(sfx)                                                                                       \
    void dj_attn_small_nt##sfx(int64_t L, int64_t hd, float alpha, const float *X, const float *Y, int64_t ld,       \
                               float *C);                                                                             \
    void dj_attn_small_nn##sfx(int64_t L, int64_t hd, float alpha, const float *P, const float *Y, int64_t ld,       \
                               float beta, float *C);                                                                 \
    void dj_attn_small_tn##sfx(int64_t L, int64_t hd, float alpha, const float *P, const float *Y, int64_t ld, float *C);
DJ_ATTN_SMALL_DECL(_avx2)
DJ_ATTN_SMALL_DECL(_avx512)
#undef DJ_ATTN_SMALL_DECL
#endif

dj_pw_rows dj_pw_rows_select(void) {
    dj_pw_rows r = {dj_act_row_forward_generic,  dj_act_row_backward_generic, dj_softmax_row_forward_generic,
                    dj_softmax_row_backward_generic, dj_dropout_row_generic,    dj_attn_small_nt_generic,
                    dj_attn_small_nn_generic,        dj_attn_small_tn_generic};
#if defined(__x86_64__)
    dj_cpu_isa isa = dj_cpu_best_isa();
    if (isa == DJ_CPU_ISA_AVX512) {
        r.forward = dj_act_row_forward_avx512;
        r.backward = dj_act_row_backward_avx512;
        r.softmax_forward = dj_softmax_row_forward_avx512;
        r.softmax_backward = dj_softmax_row_backward_avx512;
        r.dropout = dj_dropout_row_avx512;
        r.attn_nt = dj_attn_small_nt_avx512, r.attn_nn = dj_attn_small_nn_avx512, r.attn_tn = dj_attn_small_tn_avx512;
    } else if (isa == DJ_CPU_ISA_AVX2) {
        r.forward = dj_act_row_forward_avx2;
        r.backward = dj_act_row_backward_avx2;
        r.softmax_forward = dj_softmax_row_forward_avx2;
        r.softmax_backward = dj_softmax_row_backward_avx2;
        r.dropout = dj_dropout_row_avx2;
        r.attn_nt = dj_attn_small_nt_avx2, r.attn_nn = dj_attn_small_nn_avx2, r.attn_tn = dj_attn_small_tn_avx2;
    }
#endif
    return r;
}

typedef struct dj_act_job {
    dj_pw_rows rows;
    dj_act act;
    const float *x, *dy;
    float *y;
} dj_act_job;

static void dj_act_fwd_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_act_job *j = arg;
    (void)thread;
    if (j->act == DJ_ACT_NONE && j->y == j->x)
        return;
    j->rows.forward(j->act, j->x + b, 0.0f, j->y + b, e - b);
}

/* j->y is dx here: dx += dy * f'(x) */
static void dj_act_bwd_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_act_job *j = arg;
    (void)thread;
    j->rows.backward(j->act, j->x + b, 0.0f, j->dy + b, j->y + b, e - b);
}

dj_status dj_act_forward(const dj_exec *ex, dj_act act, const dj_tensor *x, dj_tensor *y) {
    const char *op = "dj_act_forward";
    DJ_TRY(dj_pw_act_valid(op, act));
    DJ_TRY(dj_pw_check(op, "x", x, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "x", x, "y", y, 0));
    dj_act_job j = {dj_pw_rows_select(), act, x->data, NULL, y->data};
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
    dj_act_job j = {dj_pw_rows_select(), act, x->data, dy->data, dx->data};
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
