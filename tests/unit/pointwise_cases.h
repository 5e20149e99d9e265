/* pointwise_cases.h — the table of point-wise operator cases shared by
 * test_ops_pointwise.c (fast float32 vs double reference, thread counts) and
 * test_gradcheck_pointwise.c (finite differences on the references), in the
 * style of ggml's test-backend-ops: one row per (operator, shapes, params,
 * tolerances, finite-difference step), so an operator without a row is
 * visibly missing. Included by both test files (not a test binary itself). */
#ifndef DOJO_TEST_POINTWISE_CASES_H
#define DOJO_TEST_POINTWISE_CASES_H

#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "dojo/ops_pointwise.h"
#include "support/test.h"

typedef enum pw_op {
    PW_ACT, PW_SOFTMAX, PW_LOGSOFTMAX, PW_DROPOUT, PW_ADD, PW_MUL, PW_SCALE, PW_BIAS_ACT, PW_ADD_RELU,
    PW_CONCAT, PW_PERMUTE, PW_ATTN, PW_CE, PW_MSE, PW_NOPS
} pw_op;

__attribute__((unused)) static const char *const pw_op_names[PW_NOPS] = {
    "act", "softmax", "log_softmax", "dropout", "add", "mul", "scale", "bias_act", "add_relu",
    "concat", "permute", "attention", "cross_entropy", "mse",
};

typedef struct pw_case {
    const char *name;
    pw_op op;
    int nin;                  /* inputs (labels and masks included) */
    int ndim[3];
    int64_t shape[3][5];
    dj_act act;               /* PW_ACT, PW_BIAS_ACT */
    int axis;                 /* concat axis; attention DJ_ATTN_TIME/SPACE */
    int perm[5];              /* permute */
    float p;                  /* dropout p; scale alpha; label smoothing; attention scale */
    int flag;                 /* dropout training; attention heads; mse mask 0 none, 1 full, 2 per token */
    double rtol, atol;        /* fast float32 vs double reference */
    double h, fd_tol;         /* finite-difference step and tolerance */
} pw_case;

#define SH1(a) {1}, {{a}}
#define SH2(a, b) {2}, {{a, b}}
#define SH3(a, b, c) {3}, {{a, b, c}}
#define SH5(a, b, c, d, e) {5}, {{a, b, c, d, e}}

/* Tolerances: float32 element-wise math against double is ~1e-6 relative;
 * reductions (softmax, losses, attention) carry a few more ulps. */
static const pw_case pw_cases[] = {
    {"relu odd", PW_ACT, 1, SH1(1037), .act = DJ_ACT_RELU, .rtol = 0, .atol = 0, .h = 1e-6, .fd_tol = 1e-7},
    {"relu 5d big", PW_ACT, 1, SH5(2, 3, 5, 37, 41), .act = DJ_ACT_RELU, .rtol = 0, .atol = 0, .h = 1e-6, .fd_tol = 1e-7},
    {"gelu erf", PW_ACT, 1, SH3(3, 7, 11), .act = DJ_ACT_GELU, .rtol = 2e-6, .atol = 2e-7, .h = 1e-5, .fd_tol = 1e-7},
    {"gelu erf big", PW_ACT, 1, SH2(201, 203), .act = DJ_ACT_GELU, .rtol = 2e-6, .atol = 2e-7, .h = 1e-5, .fd_tol = 1e-7},
    {"gelu tanh", PW_ACT, 1, SH3(2, 9, 13), .act = DJ_ACT_GELU_TANH, .rtol = 2e-6, .atol = 2e-7, .h = 1e-5, .fd_tol = 1e-7},
    {"silu", PW_ACT, 1, SH2(17, 19), .act = DJ_ACT_SILU, .rtol = 2e-6, .atol = 2e-7, .h = 1e-5, .fd_tol = 1e-7},
    {"sigmoid", PW_ACT, 1, SH1(333), .act = DJ_ACT_SIGMOID, .rtol = 2e-6, .atol = 2e-7, .h = 1e-5, .fd_tol = 1e-7},
    {"identity", PW_ACT, 1, SH1(65), .act = DJ_ACT_NONE, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"softmax rows", PW_SOFTMAX, 1, SH2(7, 13), .rtol = 1e-5, .atol = 1e-7, .h = 1e-5, .fd_tol = 1e-7},
    {"softmax 3d wide", PW_SOFTMAX, 1, SH3(3, 5, 1001), .rtol = 1e-5, .atol = 1e-8, .h = 1e-5, .fd_tol = 1e-7},
    {"softmax K=1", PW_SOFTMAX, 1, SH2(5, 1), .rtol = 1e-6, .atol = 1e-7, .h = 1e-5, .fd_tol = 1e-7},
    {"log_softmax", PW_LOGSOFTMAX, 1, SH2(9, 31), .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"log_softmax big", PW_LOGSOFTMAX, 1, SH2(100, 400), .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"dropout p=0.3", PW_DROPOUT, 1, SH3(4, 5, 7), .p = 0.3f, .flag = 1, .rtol = 1e-6, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"dropout big", PW_DROPOUT, 1, SH5(2, 4, 3, 29, 31), .p = 0.5f, .flag = 1, .rtol = 1e-6, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"dropout eval", PW_DROPOUT, 1, SH1(77), .p = 0.5f, .flag = 0, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"dropout p=1", PW_DROPOUT, 1, SH1(50), .p = 1.0f, .flag = 1, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"add same", PW_ADD, 2, {3, 3}, {{2, 3, 5}, {2, 3, 5}}, .rtol = 1e-6, .atol = 1e-7, .h = 1e-5, .fd_tol = 1e-7},
    {"add bias (C,1,1)", PW_ADD, 2, {4, 3}, {{2, 3, 4, 5}, {3, 1, 1}}, .rtol = 1e-6, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"add both ways", PW_ADD, 2, {3, 3}, {{4, 1, 6}, {1, 5, 1}}, .rtol = 1e-6, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"add scalar", PW_ADD, 2, {5, 0}, {{2, 2, 3, 2, 3}, {1}}, .rtol = 1e-6, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"add 5d big", PW_ADD, 2, {5, 5}, {{2, 8, 3, 31, 29}, {1, 8, 1, 1, 29}}, .rtol = 1e-6, .atol = 1e-5, .h = 1e-5, .fd_tol = 1e-6},
    {"mul same big", PW_MUL, 2, {2, 2}, {{131, 257}, {131, 257}}, .rtol = 1e-6, .atol = 1e-7, .h = 1e-5, .fd_tol = 1e-7},
    {"mul bcast", PW_MUL, 2, {4, 3}, {{3, 1, 4, 7}, {5, 1, 7}}, .rtol = 1e-6, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"mul 5d", PW_MUL, 2, {5, 4}, {{1, 3, 1, 4, 5}, {1, 6, 4, 1}}, .rtol = 1e-6, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"scale", PW_SCALE, 1, SH3(3, 4, 17), .p = -1.75f, .rtol = 1e-6, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"scale 5d big", PW_SCALE, 1, SH5(2, 3, 4, 41, 43), .p = 0.125f, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"bias relu", PW_BIAS_ACT, 2, {5, 1}, {{2, 3, 2, 5, 7}, {3}}, .act = DJ_ACT_RELU, .rtol = 1e-5, .atol = 1e-5, .h = 1e-6, .fd_tol = 1e-7},
    {"bias silu", PW_BIAS_ACT, 2, {3, 1}, {{3, 5, 11}, {5}}, .act = DJ_ACT_SILU, .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"bias gelu tokens", PW_BIAS_ACT, 2, {2, 1}, {{13, 24}, {24}}, .act = DJ_ACT_GELU, .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"bias gelu big", PW_BIAS_ACT, 2, {5, 1}, {{2, 16, 4, 23, 25}, {16}}, .act = DJ_ACT_GELU_TANH, .rtol = 1e-5, .atol = 1e-5, .h = 1e-5, .fd_tol = 1e-6},
    {"add relu", PW_ADD_RELU, 2, {3, 3}, {{3, 4, 9}, {3, 4, 9}}, .rtol = 1e-6, .atol = 1e-7, .h = 1e-6, .fd_tol = 1e-7},
    {"add relu big", PW_ADD_RELU, 2, {2, 2}, {{211, 223}, {211, 223}}, .rtol = 1e-6, .atol = 1e-7, .h = 1e-6, .fd_tol = 1e-7},
    {"concat axis 1", PW_CONCAT, 3, {3, 3, 3}, {{2, 3, 4}, {2, 1, 4}, {2, 5, 4}}, .axis = 1, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"concat axis -1", PW_CONCAT, 2, {4, 4}, {{2, 3, 2, 3}, {2, 3, 2, 7}}, .axis = -1, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"concat axis 0", PW_CONCAT, 2, {2, 2}, {{1, 5}, {3, 5}}, .axis = 0, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"permute ncthw->tokens", PW_PERMUTE, 1, SH5(2, 6, 3, 4, 5), .perm = {0, 2, 3, 4, 1}, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"permute tokens->ncthw", PW_PERMUTE, 1, SH5(2, 3, 4, 5, 6), .perm = {0, 4, 1, 2, 3}, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"permute 3d", PW_PERMUTE, 1, SH3(7, 3, 5), .perm = {2, 0, 1}, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"permute big", PW_PERMUTE, 1, SH5(2, 16, 4, 23, 25), .perm = {4, 2, 0, 3, 1}, .rtol = 0, .atol = 0, .h = 1e-5, .fd_tol = 1e-7},
    {"attn time", PW_ATTN, 3, {4, 4, 4}, {{2, 5, 3, 8}, {2, 5, 3, 8}, {2, 5, 3, 8}}, .axis = DJ_ATTN_TIME, .flag = 2, .rtol = 1e-4, .atol = 1e-5, .h = 1e-5, .fd_tol = 1e-7},
    {"attn space", PW_ATTN, 3, {4, 4, 4}, {{2, 3, 7, 6}, {2, 3, 7, 6}, {2, 3, 7, 6}}, .axis = DJ_ATTN_SPACE, .flag = 3, .rtol = 1e-4, .atol = 1e-5, .h = 1e-5, .fd_tol = 1e-7},
    {"attn time 1 head scale", PW_ATTN, 3, {4, 4, 4}, {{1, 4, 2, 5}, {1, 4, 2, 5}, {1, 4, 2, 5}}, .axis = DJ_ATTN_TIME, .flag = 1, .p = 0.3f, .rtol = 1e-4, .atol = 1e-5, .h = 1e-5, .fd_tol = 1e-7},
    {"attn space 40 tokens (GEMM path)", PW_ATTN, 3, {4, 4, 4}, {{1, 2, 40, 8}, {1, 2, 40, 8}, {1, 2, 40, 8}}, .axis = DJ_ATTN_SPACE, .flag = 2, .rtol = 1e-4, .atol = 1e-5, .h = 1e-5, .fd_tol = 1e-7},
    {"attn time T=8 head_dim 20 (8-lane blocks and a tail)", PW_ATTN, 3, {4, 4, 4}, {{1, 8, 2, 40}, {1, 8, 2, 40}, {1, 8, 2, 40}}, .axis = DJ_ATTN_TIME, .flag = 2, .rtol = 1e-4, .atol = 1e-5, .h = 1e-5, .fd_tol = 1e-7},
    {"attn space L=1", PW_ATTN, 3, {4, 4, 4}, {{2, 2, 1, 4}, {2, 2, 1, 4}, {2, 2, 1, 4}}, .axis = DJ_ATTN_SPACE, .flag = 2, .rtol = 1e-4, .atol = 1e-5, .h = 1e-5, .fd_tol = 1e-7},
    {"cross entropy", PW_CE, 2, {2, 1}, {{6, 10}, {6}}, .p = 0.0f, .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"cross entropy smooth", PW_CE, 2, {2, 1}, {{9, 17}, {9}}, .p = 0.1f, .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"cross entropy big", PW_CE, 2, {2, 1}, {{200, 400}, {200}}, .p = 0.2f, .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"mse", PW_MSE, 2, {3, 3}, {{2, 5, 7}, {2, 5, 7}}, .flag = 0, .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"mse full mask", PW_MSE, 3, {2, 2, 2}, {{9, 11}, {9, 11}, {9, 11}}, .flag = 1, .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"mse token mask", PW_MSE, 3, {3, 3, 2}, {{2, 13, 12}, {2, 13, 12}, {2, 13}}, .flag = 2, .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-7},
    {"mse token mask big", PW_MSE, 3, {3, 3, 2}, {{4, 98, 192}, {4, 98, 192}, {4, 98}}, .flag = 2, .rtol = 1e-5, .atol = 1e-6, .h = 1e-5, .fd_tol = 1e-6},
};

enum { PW_NCASES = (int)(sizeof pw_cases / sizeof pw_cases[0]) };

/* ---- tensors of one case ------------------------------------------------- */

typedef struct pw_set {
    dj_dtype dtype;          /* F64 (reference) or F32 (fast) */
    dj_tensor in[3], din[3]; /* din[i] empty when input i has no gradient */
    dj_tensor out, dout;     /* losses: shape (1) */
    dj_tensor probs;         /* attention, F32 only */
} pw_set;

static inline int pw_is_diff(const pw_case *c, int i) {
    return !((c->op == PW_CE && i == 1) || (c->op == PW_MSE && i == 2));
}

static inline void pw_out_shape(const pw_case *c, int *nd, int64_t *s) {
    *nd = c->ndim[0];
    memcpy(s, c->shape[0], sizeof c->shape[0]);
    switch (c->op) {
    case PW_ADD:
    case PW_MUL: {
        int n = c->ndim[0] > c->ndim[1] ? c->ndim[0] : c->ndim[1];
        for (int d = 0; d < n; d++) {
            int da = d - (n - c->ndim[0]), db = d - (n - c->ndim[1]);
            int64_t a = da >= 0 ? c->shape[0][da] : 1, b = db >= 0 ? c->shape[1][db] : 1;
            s[d] = a == 1 ? b : a;
        }
        *nd = n;
        break;
    }
    case PW_CONCAT: {
        int ax = c->axis < 0 ? c->axis + c->ndim[0] : c->axis;
        for (int i = 1; i < c->nin; i++)
            s[ax] += c->shape[i][ax];
        break;
    }
    case PW_PERMUTE:
        for (int d = 0; d < c->ndim[0]; d++)
            s[d] = c->shape[0][c->perm[d]];
        break;
    case PW_CE:
    case PW_MSE:
        *nd = 1;
        s[0] = 1;
        break;
    default: break;
    }
}

static inline void pw_set_free(pw_set *s) {
    for (int i = 0; i < 3; i++) {
        dj_tensor_free(&s->in[i]);
        dj_tensor_free(&s->din[i]);
    }
    dj_tensor_free(&s->out);
    dj_tensor_free(&s->dout);
    dj_tensor_free(&s->probs);
}

/* Uniform in [-2, 2), rounded to float so both precisions see equal inputs. */
static inline double pw_rand(dj_rng *r) { return (double)(float)(4.0 * dj_rng_double(r) - 2.0); }

/* Moves inputs away from the kinks of ReLU-like ops (as Caffe does), so a
 * finite difference never straddles one. */
static inline void pw_avoid_kinks(const pw_case *c, pw_set *s) {
    double *x = s->in[0].data;
    int64_t n = dj_tensor_numel(&s->in[0]);
    if ((c->op == PW_ACT && c->act == DJ_ACT_RELU))
        for (int64_t i = 0; i < n; i++)
            if (fabs(x[i]) < 1e-2)
                x[i] = (double)(float)(x[i] + 0.05);
    if (c->op == PW_ADD_RELU) {
        const double *r = s->in[1].data;
        for (int64_t i = 0; i < n; i++)
            if (fabs(x[i] + r[i]) < 1e-2)
                x[i] = (double)(float)(x[i] + 0.05);
    }
    if (c->op == PW_BIAS_ACT && c->act == DJ_ACT_RELU) {
        const double *b = s->in[1].data;
        int64_t C = c->shape[0][1], P = n / (c->shape[0][0] * C);
        for (int64_t i = 0; i < n; i++)
            if (fabs(x[i] + b[(i / P) % C]) < 1e-2)
                x[i] = (double)(float)(x[i] + 0.05);
    }
}

/* Makes the double set: random inputs (labels in [0,K), 0/1 masks with at
 * least one 1), random dout, gradients pre-filled with random values so
 * that accumulation (+=) is checked too. */
static inline void pw_set_make(const pw_case *c, uint64_t seed, pw_set *s) {
    dj_rng r;
    dj_rng_seed(&r, seed, 7);
    memset(s, 0, sizeof *s);
    s->dtype = DJ_DTYPE_F64;
    for (int i = 0; i < c->nin; i++) {
        int lab = c->op == PW_CE && i == 1;
        CHECK(dj_tensor_create(lab ? DJ_DTYPE_I64 : DJ_DTYPE_F64, c->ndim[i], c->shape[i], &s->in[i]) == DJ_OK);
        int64_t n = dj_tensor_numel(&s->in[i]);
        for (int64_t e = 0; e < n; e++) {
            if (lab)
                ((int64_t *)s->in[i].data)[e] = (int64_t)dj_rng_below(&r, (uint64_t)c->shape[0][1]);
            else if (c->op == PW_MSE && i == 2)
                ((double *)s->in[i].data)[e] = e == 0 || dj_rng_double(&r) < 0.5 ? 1.0 : 0.0;
            else
                ((double *)s->in[i].data)[e] = pw_rand(&r);
        }
        if (pw_is_diff(c, i)) {
            CHECK(dj_tensor_create(DJ_DTYPE_F64, c->ndim[i], c->shape[i], &s->din[i]) == DJ_OK);
            for (int64_t e = 0; e < n; e++)
                ((double *)s->din[i].data)[e] = pw_rand(&r);
        }
    }
    pw_avoid_kinks(c, s);
    int nd;
    int64_t os[5];
    pw_out_shape(c, &nd, os);
    CHECK(dj_tensor_create(DJ_DTYPE_F64, nd, os, &s->out) == DJ_OK);
    CHECK(dj_tensor_create(DJ_DTYPE_F64, nd, os, &s->dout) == DJ_OK);
    for (int64_t e = 0; e < dj_tensor_numel(&s->dout); e++)
        ((double *)s->dout.data)[e] = pw_rand(&r);
}

/* The float32 copy of a double set (same values: inputs are floats). */
static inline void pw_tensor_to_f32(const dj_tensor *src, dj_tensor *dst) {
    memset(dst, 0, sizeof *dst);
    if (!src->data && src->ndim == 0 && !src->owns_data)
        return;
    dj_dtype dt = src->dtype == DJ_DTYPE_I64 ? DJ_DTYPE_I64 : DJ_DTYPE_F32;
    CHECK(dj_tensor_create(dt, src->ndim, src->shape, dst) == DJ_OK);
    int64_t n = dj_tensor_numel(src);
    if (dt == DJ_DTYPE_I64)
        memcpy(dst->data, src->data, (size_t)n * 8);
    else
        for (int64_t e = 0; e < n; e++)
            ((float *)dst->data)[e] = (float)((const double *)src->data)[e];
}

static inline void pw_set_to_f32(const pw_case *c, const pw_set *d, pw_set *f) {
    memset(f, 0, sizeof *f);
    f->dtype = DJ_DTYPE_F32;
    for (int i = 0; i < c->nin; i++) {
        pw_tensor_to_f32(&d->in[i], &f->in[i]);
        if (pw_is_diff(c, i))
            pw_tensor_to_f32(&d->din[i], &f->din[i]);
    }
    pw_tensor_to_f32(&d->out, &f->out);
    pw_tensor_to_f32(&d->dout, &f->dout);
    if (c->op == PW_ATTN) {
        dj_attention_params p = {c->flag, (dj_attn_axis)c->axis, c->p};
        int64_t n = dj_attention_probs_numel(&p, c->shape[0]);
        CHECK(dj_tensor_create(DJ_DTYPE_F32, 1, &n, &f->probs) == DJ_OK);
    }
}

static dj_tensor *pw_din(pw_set *s, int i) { return s->din[i].data ? &s->din[i] : NULL; }

/* ---- running a case --------------------------------------------------------- */

static inline dj_status pw_ref_forward(const pw_case *c, pw_set *s) {
    double *o = s->out.data;
    switch (c->op) {
    case PW_ACT: return dj_ref_act_forward(c->act, &s->in[0], &s->out);
    case PW_SOFTMAX: return dj_ref_softmax_forward(0, &s->in[0], &s->out);
    case PW_LOGSOFTMAX: return dj_ref_softmax_forward(1, &s->in[0], &s->out);
    case PW_DROPOUT: {
        dj_dropout_params p = {c->p, c->flag, 1234, 5};
        return dj_ref_dropout_forward(&p, &s->in[0], &s->out);
    }
    case PW_ADD: return dj_ref_binary_forward(0, &s->in[0], &s->in[1], &s->out);
    case PW_MUL: return dj_ref_binary_forward(1, &s->in[0], &s->in[1], &s->out);
    case PW_SCALE:
        for (int64_t i = 0; i < dj_tensor_numel(&s->out); i++)
            o[i] = (double)c->p * ((double *)s->in[0].data)[i];
        return DJ_OK;
    case PW_BIAS_ACT: return dj_ref_bias_act_forward(c->act, &s->in[0], &s->in[1], &s->out);
    case PW_ADD_RELU: return dj_ref_add_relu_forward(&s->in[0], &s->in[1], &s->out);
    case PW_CONCAT: {
        const dj_tensor *in[3] = {&s->in[0], &s->in[1], &s->in[2]};
        return dj_ref_concat_forward(c->axis, c->nin, in, &s->out);
    }
    case PW_PERMUTE: return dj_ref_permute_forward(c->perm, &s->in[0], &s->out);
    case PW_ATTN: {
        dj_attention_params p = {c->flag, (dj_attn_axis)c->axis, c->p};
        return dj_ref_attention_forward(&p, &s->in[0], &s->in[1], &s->in[2], &s->out);
    }
    case PW_CE: {
        dj_cross_entropy_params p = {c->p};
        return dj_ref_cross_entropy_forward(&p, &s->in[0], &s->in[1], o);
    }
    case PW_MSE: return dj_ref_mse_forward(&s->in[0], &s->in[1], c->nin > 2 ? &s->in[2] : NULL, o);
    case PW_NOPS: break;
    }
    return DJ_ERR_INTERNAL;
}

static inline dj_status pw_ref_backward(const pw_case *c, pw_set *s) {
    double g = ((double *)s->dout.data)[0];
    switch (c->op) {
    case PW_ACT: return dj_ref_act_backward(c->act, &s->in[0], &s->dout, &s->din[0]);
    case PW_SOFTMAX: return dj_ref_softmax_backward(0, &s->out, &s->dout, &s->din[0]);
    case PW_LOGSOFTMAX: return dj_ref_softmax_backward(1, &s->out, &s->dout, &s->din[0]);
    case PW_DROPOUT: {
        dj_dropout_params p = {c->p, c->flag, 1234, 5};
        return dj_ref_dropout_backward(&p, &s->dout, &s->din[0]);
    }
    case PW_ADD: return dj_ref_binary_backward(0, &s->in[0], &s->in[1], &s->dout, &s->din[0], &s->din[1]);
    case PW_MUL: return dj_ref_binary_backward(1, &s->in[0], &s->in[1], &s->dout, &s->din[0], &s->din[1]);
    case PW_SCALE:
        for (int64_t i = 0; i < dj_tensor_numel(&s->dout); i++)
            ((double *)s->din[0].data)[i] += (double)c->p * ((double *)s->dout.data)[i];
        return DJ_OK;
    case PW_BIAS_ACT: return dj_ref_bias_act_backward(c->act, &s->in[0], &s->in[1], &s->dout, &s->din[0], &s->din[1]);
    case PW_ADD_RELU: return dj_ref_add_relu_backward(&s->in[0], &s->in[1], &s->dout, &s->din[0], &s->din[1]);
    case PW_CONCAT: {
        dj_tensor *d[3] = {&s->din[0], &s->din[1], &s->din[2]};
        return dj_ref_concat_backward(c->axis, c->nin, &s->dout, d);
    }
    case PW_PERMUTE: return dj_ref_permute_backward(c->perm, &s->dout, &s->din[0]);
    case PW_ATTN: {
        dj_attention_params p = {c->flag, (dj_attn_axis)c->axis, c->p};
        return dj_ref_attention_backward(&p, &s->in[0], &s->in[1], &s->in[2], &s->dout, &s->din[0], &s->din[1],
                                         &s->din[2]);
    }
    case PW_CE: {
        dj_cross_entropy_params p = {c->p};
        return dj_ref_cross_entropy_backward(&p, &s->in[0], &s->in[1], g, &s->din[0]);
    }
    case PW_MSE: return dj_ref_mse_backward(&s->in[0], &s->in[1], c->nin > 2 ? &s->in[2] : NULL, g, &s->din[0], &s->din[1]);
    case PW_NOPS: break;
    }
    return DJ_ERR_INTERNAL;
}

static inline dj_status pw_fast_forward(const dj_exec *ex, const pw_case *c, pw_set *s) {
    float *o = s->out.data;
    switch (c->op) {
    case PW_ACT: return dj_act_forward(ex, c->act, &s->in[0], &s->out);
    case PW_SOFTMAX: return dj_softmax_forward(ex, &s->in[0], &s->out);
    case PW_LOGSOFTMAX: return dj_log_softmax_forward(ex, &s->in[0], &s->out);
    case PW_DROPOUT: {
        dj_dropout_params p = {c->p, c->flag, 1234, 5};
        return dj_dropout_forward(ex, &p, &s->in[0], &s->out);
    }
    case PW_ADD: return dj_add_forward(ex, &s->in[0], &s->in[1], &s->out);
    case PW_MUL: return dj_mul_forward(ex, &s->in[0], &s->in[1], &s->out);
    case PW_SCALE: return dj_scale_forward(ex, c->p, &s->in[0], &s->out);
    case PW_BIAS_ACT: return dj_bias_act_forward(ex, c->act, &s->in[0], &s->in[1], &s->out);
    case PW_ADD_RELU: return dj_add_relu_forward(ex, &s->in[0], &s->in[1], &s->out);
    case PW_CONCAT: {
        const dj_tensor *in[3] = {&s->in[0], &s->in[1], &s->in[2]};
        return dj_concat_forward(ex, c->axis, c->nin, in, &s->out);
    }
    case PW_PERMUTE: return dj_permute_forward(ex, c->perm, &s->in[0], &s->out);
    case PW_ATTN: {
        dj_attention_params p = {c->flag, (dj_attn_axis)c->axis, c->p};
        return dj_attention_forward(ex, &p, &s->in[0], &s->in[1], &s->in[2], &s->probs, &s->out);
    }
    case PW_CE: {
        dj_cross_entropy_params p = {c->p};
        return dj_cross_entropy_forward(ex, &p, &s->in[0], &s->in[1], o);
    }
    case PW_MSE: return dj_mse_forward(ex, &s->in[0], &s->in[1], c->nin > 2 ? &s->in[2] : NULL, o);
    case PW_NOPS: break;
    }
    return DJ_ERR_INTERNAL;
}

static inline dj_status pw_fast_backward(const dj_exec *ex, const pw_case *c, pw_set *s) {
    float g = ((float *)s->dout.data)[0];
    switch (c->op) {
    case PW_ACT: return dj_act_backward(ex, c->act, &s->in[0], &s->dout, pw_din(s, 0));
    case PW_SOFTMAX: return dj_softmax_backward(ex, &s->out, &s->dout, pw_din(s, 0));
    case PW_LOGSOFTMAX: return dj_log_softmax_backward(ex, &s->out, &s->dout, pw_din(s, 0));
    case PW_DROPOUT: {
        dj_dropout_params p = {c->p, c->flag, 1234, 5};
        return dj_dropout_backward(ex, &p, &s->dout, pw_din(s, 0));
    }
    case PW_ADD: return dj_add_backward(ex, &s->in[0], &s->in[1], &s->dout, pw_din(s, 0), pw_din(s, 1));
    case PW_MUL: return dj_mul_backward(ex, &s->in[0], &s->in[1], &s->dout, pw_din(s, 0), pw_din(s, 1));
    case PW_SCALE: return dj_scale_backward(ex, c->p, &s->dout, pw_din(s, 0));
    case PW_BIAS_ACT:
        return dj_bias_act_backward(ex, c->act, &s->in[0], &s->in[1], &s->dout, pw_din(s, 0), pw_din(s, 1));
    case PW_ADD_RELU: return dj_add_relu_backward(ex, &s->out, &s->dout, pw_din(s, 0), pw_din(s, 1));
    case PW_CONCAT: {
        dj_tensor *d[3] = {&s->din[0], &s->din[1], &s->din[2]};
        return dj_concat_backward(ex, c->axis, c->nin, &s->dout, d);
    }
    case PW_PERMUTE: return dj_permute_backward(ex, c->perm, &s->dout, pw_din(s, 0));
    case PW_ATTN: {
        dj_attention_params p = {c->flag, (dj_attn_axis)c->axis, c->p};
        return dj_attention_backward(ex, &p, &s->in[0], &s->in[1], &s->in[2], &s->probs, &s->dout, pw_din(s, 0),
                                     pw_din(s, 1), pw_din(s, 2));
    }
    case PW_CE: {
        dj_cross_entropy_params p = {c->p};
        return dj_cross_entropy_backward(ex, &p, &s->in[0], &s->in[1], g, pw_din(s, 0));
    }
    case PW_MSE:
        return dj_mse_backward(ex, &s->in[0], &s->in[1], c->nin > 2 ? &s->in[2] : NULL, g, pw_din(s, 0), pw_din(s, 1));
    case PW_NOPS: break;
    }
    return DJ_ERR_INTERNAL;
}

#endif
