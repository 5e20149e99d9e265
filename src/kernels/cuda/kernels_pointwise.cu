// kernels_pointwise.cu — element-wise CUDA kernels: activations, add/mul,
// bias + activation, residual add + ReLU, float32 <-> bfloat16, and the SGD
// and AdamW updates. Grid-stride loops; math in float32 whatever the storage
// type (float or bf16); every per-channel sum is one block reducing in a fixed
// order, so results are the same from run to run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "cuda_internal.h"

typedef __nv_bfloat16 bf16;

static __device__ __forceinline__ float ld(const float *p, int64_t i) { return p[i]; }
static __device__ __forceinline__ float ld(const bf16 *p, int64_t i) { return __bfloat162float(p[i]); }
static __device__ __forceinline__ void st(float *p, int64_t i, float v) { p[i] = v; }
static __device__ __forceinline__ void st(bf16 *p, int64_t i, float v) { p[i] = __float2bfloat16(v); }

static unsigned dj_blocks(int64_t n) {
    int64_t b = (n + 255) / 256;
    return (unsigned)(b < 1 ? 1 : (b > 8192 ? 8192 : b));
}

#define GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

// ---- activations: f(x) and f'(x), the definitions of dojo/ops_pointwise.h ----
static __device__ float act_f(int act, float x) {
    switch (act) {
    case 1: return x > 0.f ? x : (isnan(x) ? x : 0.f);
    case 2: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case 3: {
        float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.f + tanhf(u));
    }
    case 4: return x / (1.f + expf(-x));
    case 5: return 1.f / (1.f + expf(-x));
    default: return x;
    }
}

static __device__ float act_df(int act, float x) {
    switch (act) {
    case 1: return x > 0.f ? 1.f : 0.f;
    case 2: {
        float cdf = 0.5f * (1.f + erff(x * 0.70710678118654752f));
        float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
        return cdf + x * pdf;
    }
    case 3: {
        const float k = 0.7978845608028654f;
        float t = tanhf(k * (x + 0.044715f * x * x * x));
        return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * k * (1.f + 3.f * 0.044715f * x * x);
    }
    case 4: {
        float s = 1.f / (1.f + expf(-x));
        return s * (1.f + x * (1.f - s));
    }
    case 5: {
        float s = 1.f / (1.f + expf(-x));
        return s * (1.f - s);
    }
    default: return 1.f;
    }
}

template <typename T> __global__ void k_act_fwd(int act, int64_t n, const T *x, T *y) {
    GRID_STRIDE(i, n) st(y, i, act_f(act, ld(x, i)));
}

template <typename T> __global__ void k_act_bwd(int act, int64_t n, const T *x, const T *dy, T *dx) {
    GRID_STRIDE(i, n) st(dx, i, ld(dx, i) + ld(dy, i) * act_df(act, ld(x, i)));
}

extern "C" void dj_k_act_forward(cudaStream_t s, int act, int bf, int64_t n, const void *x, void *y) {
    if (bf)
        k_act_fwd<<<dj_blocks(n), 256, 0, s>>>(act, n, (const bf16 *)x, (bf16 *)y);
    else
        k_act_fwd<<<dj_blocks(n), 256, 0, s>>>(act, n, (const float *)x, (float *)y);
}

extern "C" void dj_k_act_backward(cudaStream_t s, int act, int bf, int64_t n, const void *x, const void *dy, void *dx) {
    if (bf)
        k_act_bwd<<<dj_blocks(n), 256, 0, s>>>(act, n, (const bf16 *)x, (const bf16 *)dy, (bf16 *)dx);
    else
        k_act_bwd<<<dj_blocks(n), 256, 0, s>>>(act, n, (const float *)x, (const float *)dy, (float *)dx);
}

// ---- a + b, a * b (same shape) ----
template <typename T> __global__ void k_bin_fwd(int mul, int64_t n, const T *a, const T *b, T *o) {
    GRID_STRIDE(i, n) st(o, i, mul ? ld(a, i) * ld(b, i) : ld(a, i) + ld(b, i));
}

template <typename T>
__global__ void k_bin_bwd(int mul, int64_t n, const T *a, const T *b, const T *g, T *da, T *db) {
    GRID_STRIDE(i, n) {
        float gi = ld(g, i);
        float ga = mul ? gi * ld(b, i) : gi, gb = mul ? gi * ld(a, i) : gi;
        if (da)
            st(da, i, ld(da, i) + ga);
        if (db)
            st(db, i, ld(db, i) + gb);
    }
}

extern "C" void dj_k_binary_forward(cudaStream_t s, int mul, int bf, int64_t n, const void *a, const void *b,
                                    void *o) {
    if (bf)
        k_bin_fwd<<<dj_blocks(n), 256, 0, s>>>(mul, n, (const bf16 *)a, (const bf16 *)b, (bf16 *)o);
    else
        k_bin_fwd<<<dj_blocks(n), 256, 0, s>>>(mul, n, (const float *)a, (const float *)b, (float *)o);
}

extern "C" void dj_k_binary_backward(cudaStream_t s, int mul, int bf, int64_t n, const void *a, const void *b,
                                     const void *g, void *da, void *db) {
    if (bf)
        k_bin_bwd<<<dj_blocks(n), 256, 0, s>>>(mul, n, (const bf16 *)a, (const bf16 *)b, (const bf16 *)g,
                                               (bf16 *)da, (bf16 *)db);
    else
        k_bin_bwd<<<dj_blocks(n), 256, 0, s>>>(mul, n, (const float *)a, (const float *)b, (const float *)g,
                                               (float *)da, (float *)db);
}

// ---- bias + activation over (N, C, inner) ----
template <typename T>
__global__ void k_bias_act_fwd(int act, int64_t n, int64_t C, int64_t inner, const T *x, const float *bias, T *y) {
    GRID_STRIDE(i, n) {
        int64_t c = (i / inner) % C;
        st(y, i, act_f(act, ld(x, i) + bias[c]));
    }
}

// One block per channel: dx for the channel's elements, dbias[c] by a block sum.
template <typename T>
__global__ void k_bias_act_bwd(int act, int64_t N, int64_t C, int64_t inner, const T *x, const float *bias,
                               const T *dy, T *dx, float *dbias) {
    __shared__ float part[256];
    int64_t c = blockIdx.x, m = N * inner;
    float acc = 0.f;
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x) {
        int64_t i = ((j / inner) * C + c) * inner + j % inner;
        float g = ld(dy, i) * act_df(act, ld(x, i) + bias[c]);
        if (dx)
            st(dx, i, ld(dx, i) + g);
        acc += g;
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h /= 2) {
        if ((int)threadIdx.x < h)
            part[threadIdx.x] += part[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0 && dbias)
        dbias[c] += part[0];
}

extern "C" void dj_k_bias_act_forward(cudaStream_t s, int act, int bf, int64_t n, int64_t C, int64_t inner,
                                      const void *x, const float *bias, void *y) {
    if (bf)
        k_bias_act_fwd<<<dj_blocks(n), 256, 0, s>>>(act, n, C, inner, (const bf16 *)x, bias, (bf16 *)y);
    else
        k_bias_act_fwd<<<dj_blocks(n), 256, 0, s>>>(act, n, C, inner, (const float *)x, bias, (float *)y);
}

extern "C" void dj_k_bias_act_backward(cudaStream_t s, int act, int bf, int64_t N, int64_t C, int64_t inner,
                                       const void *x, const float *bias, const void *dy, void *dx, float *dbias) {
    if (bf)
        k_bias_act_bwd<<<(unsigned)C, 256, 0, s>>>(act, N, C, inner, (const bf16 *)x, bias, (const bf16 *)dy,
                                                   (bf16 *)dx, dbias);
    else
        k_bias_act_bwd<<<(unsigned)C, 256, 0, s>>>(act, N, C, inner, (const float *)x, bias, (const float *)dy,
                                                   (float *)dx, dbias);
}

// ---- residual add + ReLU ----
template <typename T> __global__ void k_add_relu_fwd(int64_t n, const T *x, const T *r, T *y) {
    GRID_STRIDE(i, n) st(y, i, act_f(1, ld(x, i) + ld(r, i)));
}

template <typename T> __global__ void k_add_relu_bwd(int64_t n, const T *y, const T *dy, T *dx, T *dr) {
    GRID_STRIDE(i, n) {
        float g = ld(y, i) > 0.f ? ld(dy, i) : 0.f;
        if (dx)
            st(dx, i, ld(dx, i) + g);
        if (dr)
            st(dr, i, ld(dr, i) + g);
    }
}

extern "C" void dj_k_add_relu_forward(cudaStream_t s, int bf, int64_t n, const void *x, const void *r, void *y) {
    if (bf)
        k_add_relu_fwd<<<dj_blocks(n), 256, 0, s>>>(n, (const bf16 *)x, (const bf16 *)r, (bf16 *)y);
    else
        k_add_relu_fwd<<<dj_blocks(n), 256, 0, s>>>(n, (const float *)x, (const float *)r, (float *)y);
}

extern "C" void dj_k_add_relu_backward(cudaStream_t s, int bf, int64_t n, const void *y, const void *dy, void *dx,
                                       void *dr) {
    if (bf)
        k_add_relu_bwd<<<dj_blocks(n), 256, 0, s>>>(n, (const bf16 *)y, (const bf16 *)dy, (bf16 *)dx, (bf16 *)dr);
    else
        k_add_relu_bwd<<<dj_blocks(n), 256, 0, s>>>(n, (const float *)y, (const float *)dy, (float *)dx,
                                                    (float *)dr);
}

// ---- conversions ----
__global__ void k_to_bf16(int64_t n, const float *x, bf16 *y) { GRID_STRIDE(i, n) y[i] = __float2bfloat16(x[i]); }
__global__ void k_to_f32(int64_t n, const bf16 *x, float *y) { GRID_STRIDE(i, n) y[i] = __bfloat162float(x[i]); }

extern "C" void dj_k_f32_to_bf16(cudaStream_t s, int64_t n, const float *x, uint16_t *y) {
    k_to_bf16<<<dj_blocks(n), 256, 0, s>>>(n, x, (bf16 *)y);
}

extern "C" void dj_k_bf16_to_f32(cudaStream_t s, int64_t n, const uint16_t *x, float *y) {
    k_to_f32<<<dj_blocks(n), 256, 0, s>>>(n, (const bf16 *)x, y);
}

// ---- optimizers (torch.optim.SGD, torch.optim.AdamW) ----
__global__ void k_sgd(int64_t n, dj_cuda_sgd_params p, float *w, const float *g, float *buf) {
    GRID_STRIDE(i, n) {
        float d = g[i] * p.grad_scale + p.weight_decay * w[i];
        if (p.momentum != 0.f) {
            float b = p.first_step ? d : p.momentum * buf[i] + (1.f - p.dampening) * d;
            buf[i] = b;
            d = p.nesterov ? d + p.momentum * b : b;
        }
        w[i] -= p.lr * d;
    }
}

__global__ void k_adamw(int64_t n, dj_cuda_adamw_params p, float bc1, float bc2_sqrt, float *w, const float *g,
                        float *m, float *v) {
    GRID_STRIDE(i, n) {
        float gi = g[i] * p.grad_scale;
        float wi = w[i] * (1.f - p.lr * p.weight_decay);
        float mi = p.beta1 * m[i] + (1.f - p.beta1) * gi;
        float vi = p.beta2 * v[i] + (1.f - p.beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - (p.lr / bc1) * mi / (sqrtf(vi) / bc2_sqrt + p.eps);
    }
}

extern "C" void dj_k_sgd(cudaStream_t s, int64_t n, const dj_cuda_sgd_params *p, float *w, const float *g,
                         float *buf) {
    k_sgd<<<dj_blocks(n), 256, 0, s>>>(n, *p, w, g, buf);
}

extern "C" void dj_k_adamw(cudaStream_t s, int64_t n, const dj_cuda_adamw_params *p, float *w, const float *g,
                           float *m, float *v) {
    float bc1 = (float)(1.0 - pow((double)p->beta1, (double)p->step));
    float bc2 = (float)(1.0 - pow((double)p->beta2, (double)p->step));
    k_adamw<<<dj_blocks(n), 256, 0, s>>>(n, *p, bc1, sqrtf(bc2), w, g, m, v);
}
