/* pointwise_internal.h — argument checks and loop helpers shared by the
 * point-wise operators (src/nn/) and their double references (*_ref.c). */
#ifndef DOJO_NN_POINTWISE_INTERNAL_H
#define DOJO_NN_POINTWISE_INTERNAL_H

#include <math.h>
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

/* Activation value and derivative in double (references and fused ops). */
static inline double dj_act_f64(dj_act act, double x) {
    switch (act) {
    case DJ_ACT_NONE: return x;
    case DJ_ACT_RELU: return x > 0 ? x : 0;
    case DJ_ACT_GELU: return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440));
    case DJ_ACT_GELU_TANH: {
        double u = 0.79788456080286535588 * (x + 0.044715 * x * x * x);
        return 0.5 * x * (1.0 + tanh(u));
    }
    case DJ_ACT_SILU: return x / (1.0 + exp(-x));
    case DJ_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    }
    return x;
}

static inline double dj_act_grad_f64(dj_act act, double x) {
    switch (act) {
    case DJ_ACT_NONE: return 1;
    case DJ_ACT_RELU: return x > 0 ? 1 : 0;
    case DJ_ACT_GELU: {
        double cdf = 0.5 * (1.0 + erf(x * 0.70710678118654752440));
        double pdf = 0.39894228040143267794 * exp(-0.5 * x * x);
        return cdf + x * pdf;
    }
    case DJ_ACT_GELU_TANH: {
        double c = 0.79788456080286535588;
        double u = c * (x + 0.044715 * x * x * x);
        double t = tanh(u);
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
    }
    case DJ_ACT_SILU: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1.0 + x * (1.0 - s));
    }
    case DJ_ACT_SIGMOID: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1.0 - s);
    }
    }
    return 1;
}

/* float32 activation and derivative (the fast operators). */
static inline float dj_act_f32(dj_act act, float x) {
    switch (act) {
    case DJ_ACT_NONE: return x;
    case DJ_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case DJ_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678f));
    case DJ_ACT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.79788456f * (x + 0.044715f * x * x * x)));
    case DJ_ACT_SILU: return x / (1.0f + expf(-x));
    case DJ_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    }
    return x;
}

static inline float dj_act_grad_f32(dj_act act, float x) {
    switch (act) {
    case DJ_ACT_NONE: return 1.0f;
    case DJ_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case DJ_ACT_GELU:
        return 0.5f * (1.0f + erff(x * 0.70710678f)) + x * 0.39894228f * expf(-0.5f * x * x);
    case DJ_ACT_GELU_TANH: {
        float t = tanhf(0.79788456f * (x + 0.044715f * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * 0.79788456f * (1.0f + 0.134145f * x * x);
    }
    case DJ_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    case DJ_ACT_SIGMOID: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f - s);
    }
    }
    return 1.0f;
}

#endif
