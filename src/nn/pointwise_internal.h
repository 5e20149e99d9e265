/* pointwise_internal.h — argument checks and loop helpers shared by the
 * point-wise operators (src/nn/) and their double references (*_ref.c). */
#ifndef DOJO_NN_POINTWISE_INTERNAL_H
#define DOJO_NN_POINTWISE_INTERNAL_H

/* The point-wise loops select with comparisons (ReLU masks, clamps); GCC
 * if-converts, and so vectorises, those only when it may assume comparisons
 * raise no floating-point exception. dojo never reads the exception flags,
 * so the files of these operators are compiled that way (values are
 * unchanged: this only allows selects). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "dojo/ops_pointwise.h"

/* Elements per parallel range for streaming loops (enough to amortise the
 * hand-off, small enough to split a 1 MB tensor). */
enum { DJ_PW_GRAIN = 16384 };

static inline dj_threadpool *dj_pw_pool(const dj_exec *ex) { return ex ? ex->pool : NULL; }

/* t present with dtype. */
static inline dj_status dj_pw_check(const char *op, const char *name, const dj_tensor *t, dj_dtype dtype) {
    if (!t)
        return dj_error_set(DJ_ERR_INVALID, op, "%s is NULL", name);
    if (t->dtype != dtype)
        return dj_error_set(DJ_ERR_INVALID, op, "%s is %s, expected %s", name, dj_dtype_name(t->dtype),
                            dj_dtype_name(dtype));
    if (!t->data && dj_tensor_numel(t) > 0)
        return dj_error_set(DJ_ERR_INVALID, op, "%s has no data", name);
    return DJ_OK;
}

/* b present (unless optional and NULL), same dtype and shape as a. */
static inline dj_status dj_pw_same(const char *op, const char *an, const dj_tensor *a, const char *bn,
                                   const dj_tensor *b, int optional) {
    if (!b && optional)
        return DJ_OK;
    DJ_TRY(dj_pw_check(op, bn, b, a->dtype));
    int ok = a->ndim == b->ndim;
    for (int i = 0; ok && i < a->ndim; i++)
        ok = a->shape[i] == b->shape[i];
    if (!ok) {
        char s1[96], s2[96];
        return dj_error_set(DJ_ERR_INVALID, op, "%s %s does not match %s %s", bn,
                            dj_shape_string(b->ndim, b->shape, s2, sizeof s2), an,
                            dj_shape_string(a->ndim, a->shape, s1, sizeof s1));
    }
    return DJ_OK;
}

static inline dj_status dj_pw_act_valid(const char *op, dj_act act) {
    if ((int)act < DJ_ACT_NONE || (int)act > DJ_ACT_SIGMOID)
        return dj_error_set(DJ_ERR_INVALID, op, "unknown activation %d", (int)act);
    return DJ_OK;
}

/* Broadcast geometry of two operands against an output, padded to 5 dims
 * (leading 1s): stride 0 along a broadcast dim. */
typedef struct dj_bcast {
    int64_t out[DJ_MAX_DIMS];
    int64_t sa[DJ_MAX_DIMS], sb[DJ_MAX_DIMS]; /* element strides, 0 = broadcast */
    int64_t na, nb, nout;
} dj_bcast;

dj_status dj_bcast_plan(const char *op, const dj_tensor *a, const dj_tensor *b, const dj_tensor *out, dj_bcast *g);

/* Activation value and derivative in double (the references). Written in
 * the forms without cancellation: Phi(x) = erfc(-x/sqrt2)/2 and
 * 0.5(1 + tanh(u)) = sigmoid(2u), so the negative tails keep their relative
 * precision. */
static inline double dj_sigmoid_f64(double x) { return 1.0 / (1.0 + exp(-x)); }

static inline double dj_act_f64(dj_act act, double x) {
    switch (act) {
    case DJ_ACT_NONE: return x;
    case DJ_ACT_RELU: return x < 0 ? 0 : x; /* NaN propagates, as torch.relu */
    case DJ_ACT_GELU: return 0.5 * x * erfc(-x * 0.70710678118654752440);
    case DJ_ACT_GELU_TANH: return x * dj_sigmoid_f64(1.59576912160573071176 * (x + 0.044715 * x * x * x));
    case DJ_ACT_SILU: return x * dj_sigmoid_f64(x);
    case DJ_ACT_SIGMOID: return dj_sigmoid_f64(x);
    }
    return x;
}

static inline double dj_act_grad_f64(dj_act act, double x) {
    switch (act) {
    case DJ_ACT_NONE: return 1;
    case DJ_ACT_RELU: return x > 0 ? 1 : 0;
    case DJ_ACT_GELU:
        return 0.5 * erfc(-x * 0.70710678118654752440) + x * 0.39894228040143267794 * exp(-0.5 * x * x);
    case DJ_ACT_GELU_TANH: {
        double c = 1.59576912160573071176; /* 2 sqrt(2/pi) */
        double s = dj_sigmoid_f64(c * (x + 0.044715 * x * x * x));
        return s + x * s * (1.0 - s) * c * (1.0 + 3.0 * 0.044715 * x * x);
    }
    case DJ_ACT_SILU: {
        double s = dj_sigmoid_f64(x);
        return s * (1.0 + x * (1.0 - s));
    }
    case DJ_ACT_SIGMOID: {
        double s = dj_sigmoid_f64(x);
        return s * (1.0 - s);
    }
    }
    return 1;
}

/* ---- float32 math the compiler can vectorise -------------------------------
 * Branch-free, no libm calls, so plain loops over them auto-vectorise at -O3.
 * dj_exp_f32: range reduction x = n ln2 + r (ln2 split in two), a degree-6
 * polynomial for e^r (Cephes' coefficients, about 1 ulp), 2^n through the
 * exponent bits; inputs are clamped to [-87.3, 88.7] so the result is finite
 * and normal (e^x below e^-87.3 returns e^-87.3 ~ 1.2e-38, not 0). */
static inline float dj_exp_f32(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.7f ? 88.7f : x;
    /* round x/ln2 to an integer with the 1.5*2^23 trick: t's low mantissa
     * bits then hold n (bit arithmetic only, so a NaN input stays defined) */
    union { float f; uint32_t u; } t = {x * 1.44269504f + 12582912.0f};
    float n = t.f - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n: n in [-126, 128]; split so each factor is a normal float */
    int32_t ni = (int32_t)(t.u - 0x4B400000u);
    int32_t n1 = ni >> 1, n2 = ni - n1;
    union { uint32_t u; float f; } s1 = {(uint32_t)(n1 + 127) << 23}, s2 = {(uint32_t)(n2 + 127) << 23};
    return p * s1.f * s2.f;
}

static inline float dj_sigmoid_f32(float x) { return 1.0f / (1.0f + dj_exp_f32(-x)); }

/* Phi(x) = 0.5 erfc(-x/sqrt2) from the Chebyshev fit of erfc in Numerical
 * Recipes (fractional error < 1.2e-7), so the negative tail keeps its
 * relative precision. */
static inline float dj_phi_f32(float x) {
    float z = (x < 0.0f ? -x : x) * 0.70710678f;
    float t = 1.0f / (1.0f + 0.5f * z);
    float q = 0.17087277f;
    q = q * t - 0.82215223f;
    q = q * t + 1.48851587f;
    q = q * t - 1.13520398f;
    q = q * t + 0.27886807f;
    q = q * t - 0.18628806f;
    q = q * t + 0.09678418f;
    q = q * t + 0.37409196f;
    q = q * t + 1.00002368f;
    q = q * t - 1.26551223f;
    float half_erfc = 0.5f * t * dj_exp_f32(q - z * z);
    return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}

/* float32 activation and derivative (the fast operators). GELU_TANH uses
 * 0.5(1 + tanh(u)) = sigmoid(2u), which avoids cancellation. */
static inline float dj_act_f32(dj_act act, float x) {
    switch (act) {
    case DJ_ACT_NONE: return x;
    case DJ_ACT_RELU: return x < 0.0f ? 0.0f : x;
    case DJ_ACT_GELU: return x * dj_phi_f32(x);
    case DJ_ACT_GELU_TANH: return x * dj_sigmoid_f32(1.59576912f * (x + 0.044715f * x * x * x));
    case DJ_ACT_SILU: return x * dj_sigmoid_f32(x);
    case DJ_ACT_SIGMOID: return dj_sigmoid_f32(x);
    }
    return x;
}

static inline float dj_act_grad_f32(dj_act act, float x) {
    switch (act) {
    case DJ_ACT_NONE: return 1.0f;
    case DJ_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case DJ_ACT_GELU: return dj_phi_f32(x) + x * 0.39894228f * dj_exp_f32(-0.5f * x * x);
    case DJ_ACT_GELU_TANH: {
        float s = dj_sigmoid_f32(1.59576912f * (x + 0.044715f * x * x * x));
        return s + x * s * (1.0f - s) * 1.59576912f * (1.0f + 0.134145f * x * x);
    }
    case DJ_ACT_SILU: {
        float s = dj_sigmoid_f32(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case DJ_ACT_SIGMOID: {
        float s = dj_sigmoid_f32(x);
        return s * (1.0f - s);
    }
    }
    return 1.0f;
}

/* Row kernels (pw_rows.inc), one branch-free vectorisable loop per
 * activation: y[i] = f(x[i] + bias); dx[i] += dy[i] * f'(x[i] + bias);
 * softmax / log-softmax of one row of K and its backward (accumulating).
 * dj_pw_rows_select() picks the widest build for this CPU (dj_cpu_best_isa,
 * so DOJO_CPU=scalar|avx2 caps it); an operator selects once per call so
 * every thread runs the same code and results stay thread-count independent. */
typedef struct dj_pw_rows {
    void (*forward)(dj_act act, const float *x, float bias, float *y, int64_t n);
    void (*backward)(dj_act act, const float *x, float bias, const float *dy, float *dx, int64_t n);
    void (*softmax_forward)(int log, const float *x, float *y, int64_t K);
    void (*softmax_backward)(int log, const float *y, const float *dy, float *dx, int64_t K);
    void (*dropout)(uint64_t key, uint64_t threshold, float scale, const float *x, float *y, int64_t first, int64_t n,
                    int accumulate);
    /* attention's products over short sequences (pw_rows.inc) */
    void (*attn_nt)(int64_t L, int64_t hd, float alpha, const float *X, const float *Y, int64_t ld, float *C);
    void (*attn_nn)(int64_t L, int64_t hd, float alpha, const float *P, const float *Y, int64_t ld, float beta,
                    float *C);
    void (*attn_tn)(int64_t L, int64_t hd, float alpha, const float *P, const float *Y, int64_t ld, float *C);
} dj_pw_rows;

dj_pw_rows dj_pw_rows_select(void);

/* The mixer of dj_hash_u64 (rng.c: splitmix64's finaliser), inlined so the
 * dropout loop vectorises: dj_hash_u64(seed, stream, i) ==
 * dj_mix64_inline(dj_dropout_key(seed, stream) ^ dj_mix64_inline(i + C)).
 * test_ops_pointwise_api checks the mask against dj_hash_float itself. */
static inline uint64_t dj_mix64_inline(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t dj_dropout_key(uint64_t seed, uint64_t stream) {
    return dj_mix64_inline(seed + 0x9e3779b97f4a7c15ull * (stream + 1));
}

/* Sum of n floats in double, in a fixed order: blocks of 64 summed in float
 * over 8 independent lanes (vectorisable), block sums added in double. */
static inline double dj_sum_f32(const float *x, int64_t n) {
    double s = 0.0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        float lane[8] = {0};
        for (int k = 0; k < 64; k += 8)
            for (int l = 0; l < 8; l++)
                lane[l] += x[i + k + l];
        s += (double)(((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
    }
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* Maximum of n floats (-inf for n == 0; NaNs are skipped), over 8 lanes so
 * it vectorises; the max is exact in any order. */
static inline float dj_max_f32(const float *x, int64_t n) {
    float lane[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
    for (; i < n; i++)
        lane[0] = x[i] > lane[0] ? x[i] : lane[0];
    float m = lane[0];
    for (int l = 1; l < 8; l++)
        m = lane[l] > m ? lane[l] : m;
    return m;
}

/* Sum of x[i]*y[i] the same way. */
static inline double dj_dot_f32(const float *x, const float *y, int64_t n) {
    double s = 0.0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        float lane[8] = {0};
        for (int k = 0; k < 64; k += 8)
            for (int l = 0; l < 8; l++)
                lane[l] += x[i + k + l] * y[i + k + l];
        s += (double)(((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
    }
    for (; i < n; i++)
        s += (double)x[i] * y[i];
    return s;
}

#endif
