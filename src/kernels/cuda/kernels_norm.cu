// kernels_norm.cu — CUDA kernels that reduce: softmax and log-softmax over
// rows, softmax cross-entropy with label smoothing, batch norm (batch and
// running statistics), layer norm, and 3-D max/average/adaptive pooling.
// Every sum is computed by one block in a fixed order (float32 data, double
// partial sums), and pooling backward gathers over the windows that contain
// an input cell instead of scattering with atomics, so results repeat
// exactly from run to run. Float32 only.
#include <cuda_runtime.h>
#include <math.h>

#include "cuda_internal.h"

enum { NT = 256 };

static unsigned dj_blocks(int64_t n) {
    int64_t b = (n + NT - 1) / NT;
    return (unsigned)(b < 1 ? 1 : (b > 8192 ? 8192 : b));
}

#define GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

// Sum of v over the block (NT threads), returned to every thread.
static __device__ double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int h = NT / 2; h > 0; h /= 2) {
        if ((int)threadIdx.x < h)
            sh[threadIdx.x] += sh[threadIdx.x + h];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

static __device__ float block_max(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int h = NT / 2; h > 0; h /= 2) {
        if ((int)threadIdx.x < h)
            sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + h]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

// ---- softmax / log-softmax over the last dimension: one block per row ----
__global__ void k_softmax_fwd(int lg, int64_t cols, const float *x, float *y) {
    __shared__ double shd[NT];
    __shared__ float shf[NT];
    const float *xr = x + blockIdx.x * cols;
    float *yr = y + blockIdx.x * cols;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < cols; j += NT)
        m = fmaxf(m, xr[j]);
    m = block_max(m, shf);
    double s = 0;
    for (int64_t j = threadIdx.x; j < cols; j += NT)
        s += exp((double)(xr[j] - m));
    s = block_sum(s, shd);
    float lse = (float)log(s);
    for (int64_t j = threadIdx.x; j < cols; j += NT)
        yr[j] = lg ? xr[j] - m - lse : (float)(exp((double)(xr[j] - m)) / s);
}

__global__ void k_softmax_bwd(int lg, int64_t cols, const float *y, const float *dy, float *dx) {
    __shared__ double shd[NT];
    int64_t o = blockIdx.x * cols;
    double s = 0;
    for (int64_t j = threadIdx.x; j < cols; j += NT)
        s += lg ? (double)dy[o + j] : (double)dy[o + j] * y[o + j];
    s = block_sum(s, shd);
    for (int64_t j = threadIdx.x; j < cols; j += NT) {
        float yj = y[o + j], g = dy[o + j];
        dx[o + j] += lg ? g - expf(yj) * (float)s : yj * (g - (float)s);
    }
}

extern "C" void dj_k_softmax_forward(cudaStream_t s, int log, int64_t rows, int64_t cols, const float *x, float *y) {
    k_softmax_fwd<<<(unsigned)rows, NT, 0, s>>>(log, cols, x, y);
}

extern "C" void dj_k_softmax_backward(cudaStream_t s, int log, int64_t rows, int64_t cols, const float *y,
                                      const float *dy, float *dx) {
    k_softmax_bwd<<<(unsigned)rows, NT, 0, s>>>(log, cols, y, dy, dx);
}

// ---- cross-entropy with label smoothing ----
// One block walks the rows in order: loss[0] = mean loss, loss[1] = the first
// row whose label is outside [0, K) (-1 when none).
__global__ void k_ce_fwd(float eps, int64_t N, int64_t K, const float *x, const int64_t *labels, float *loss) {
    __shared__ double shd[NT];
    __shared__ float shf[NT];
    double total = 0;
    int64_t bad = -1;
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * K;
        int64_t lab = labels[n];
        if (lab < 0 || lab >= K) {
            if (bad < 0)
                bad = n;
            continue;
        }
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < K; j += NT)
            m = fmaxf(m, xr[j]);
        m = block_max(m, shf);
        double se = 0, sx = 0;
        for (int64_t j = threadIdx.x; j < K; j += NT) {
            se += exp((double)(xr[j] - m));
            sx += xr[j];
        }
        se = block_sum(se, shd);
        sx = block_sum(sx, shd);
        double lse = m + log(se);
        total += lse - ((1.0 - eps) * xr[lab] + eps / (double)K * sx);
    }
    if (threadIdx.x == 0) {
        loss[0] = (float)(total / (double)N);
        loss[1] = (float)bad;
    }
}

// dlogits[n,k] += scale * (softmax_k - q_k): one block per row.
__global__ void k_ce_bwd(float eps, float scale, int64_t K, const float *x, const int64_t *labels, float *dx) {
    __shared__ double shd[NT];
    __shared__ float shf[NT];
    int64_t o = blockIdx.x * K, lab = labels[blockIdx.x];
    if (lab < 0 || lab >= K)
        return;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < K; j += NT)
        m = fmaxf(m, x[o + j]);
    m = block_max(m, shf);
    double se = 0;
    for (int64_t j = threadIdx.x; j < K; j += NT)
        se += exp((double)(x[o + j] - m));
    se = block_sum(se, shd);
    for (int64_t j = threadIdx.x; j < K; j += NT) {
        double p = exp((double)(x[o + j] - m)) / se;
        double q = (j == lab ? 1.0 - eps : 0.0) + eps / (double)K;
        dx[o + j] += (float)(scale * (p - q));
    }
}

extern "C" void dj_k_cross_entropy_forward(cudaStream_t s, float eps, int64_t N, int64_t K, const float *x,
                                           const int64_t *labels, float *loss) {
    k_ce_fwd<<<1, NT, 0, s>>>(eps, N, K, x, labels, loss);
}

extern "C" void dj_k_cross_entropy_backward(cudaStream_t s, float eps, float scale, int64_t N, int64_t K,
                                            const float *x, const int64_t *labels, float *dx) {
    k_ce_bwd<<<(unsigned)N, NT, 0, s>>>(eps, scale, K, x, labels, dx);
}

// ---- batch norm over (N, C, inner): one block per channel ----
__global__ void k_bn_stats(int64_t N, int64_t C, int64_t inner, float eps, const float *x, float *mean,
                           float *invstd, float momentum, float *rmean, float *rvar) {
    __shared__ double shd[NT];
    int64_t c = blockIdx.x, m = N * inner;
    double s = 0;
    for (int64_t j = threadIdx.x; j < m; j += NT)
        s += x[((j / inner) * C + c) * inner + j % inner];
    double mu = block_sum(s, shd) / (double)m;
    double q = 0;
    for (int64_t j = threadIdx.x; j < m; j += NT) {
        double d = x[((j / inner) * C + c) * inner + j % inner] - mu;
        q += d * d;
    }
    double var = block_sum(q, shd) / (double)m;
    if (threadIdx.x == 0) {
        mean[c] = (float)mu;
        invstd[c] = (float)(1.0 / sqrt(var + (double)eps));
        if (rmean)
            rmean[c] = (float)((1.0 - momentum) * rmean[c] + momentum * mu);
        if (rvar)
            rvar[c] = (float)((1.0 - momentum) * rvar[c] + momentum * var * (double)m / (double)(m - 1));
    }
}

__global__ void k_bn_apply(int64_t n, int64_t C, int64_t inner, const float *x, const float *mean,
                           const float *invstd, const float *w, const float *b, float *y) {
    GRID_STRIDE(i, n) {
        int64_t c = (i / inner) % C;
        float v = (x[i] - mean[c]) * invstd[c];
        y[i] = v * (w ? w[c] : 1.f) + (b ? b[c] : 0.f);
    }
}

__global__ void k_bn_eval_invstd(int64_t C, float eps, const float *rvar, float *invstd) {
    GRID_STRIDE(c, C) invstd[c] = (float)(1.0 / sqrt((double)rvar[c] + (double)eps));
}

__global__ void k_bn_bwd(int training, int64_t N, int64_t C, int64_t inner, const float *x, const float *w,
                         const float *mean, const float *invstd, const float *dy, float *dx, float *dw, float *db) {
    __shared__ double shd[NT];
    int64_t c = blockIdx.x, m = N * inner;
    float mu = mean[c], is = invstd[c], wc = w ? w[c] : 1.f;
    double sdy = 0, sdyx = 0;
    for (int64_t j = threadIdx.x; j < m; j += NT) {
        int64_t i = ((j / inner) * C + c) * inner + j % inner;
        sdy += dy[i];
        sdyx += (double)dy[i] * ((x[i] - mu) * is);
    }
    sdy = block_sum(sdy, shd);
    sdyx = block_sum(sdyx, shd);
    if (dx) {
        float a = (float)(sdy / (double)m), bq = (float)(sdyx / (double)m);
        for (int64_t j = threadIdx.x; j < m; j += NT) {
            int64_t i = ((j / inner) * C + c) * inner + j % inner;
            float g = training ? dy[i] - a - (x[i] - mu) * is * bq : dy[i];
            dx[i] += wc * is * g;
        }
    }
    if (threadIdx.x == 0) {
        if (dw)
            dw[c] += (float)sdyx;
        if (db)
            db[c] += (float)sdy;
    }
}

extern "C" void dj_k_batchnorm_stats(cudaStream_t s, int64_t N, int64_t C, int64_t inner, float eps, const float *x,
                                     float *mean, float *invstd, float momentum, float *rmean, float *rvar) {
    k_bn_stats<<<(unsigned)C, NT, 0, s>>>(N, C, inner, eps, x, mean, invstd, momentum, rmean, rvar);
}

extern "C" void dj_k_batchnorm_apply(cudaStream_t s, int64_t N, int64_t C, int64_t inner, const float *x,
                                     const float *mean, const float *invstd, const float *w, const float *b,
                                     float *y) {
    int64_t n = N * C * inner;
    k_bn_apply<<<dj_blocks(n), NT, 0, s>>>(n, C, inner, x, mean, invstd, w, b, y);
}

extern "C" void dj_k_batchnorm_eval_invstd(cudaStream_t s, int64_t C, float eps, const float *rvar, float *invstd) {
    k_bn_eval_invstd<<<dj_blocks(C), NT, 0, s>>>(C, eps, rvar, invstd);
}

extern "C" void dj_k_batchnorm_backward(cudaStream_t s, int training, int64_t N, int64_t C, int64_t inner,
                                        const float *x, const float *w, const float *mean, const float *invstd,
                                        const float *dy, float *dx, float *dw, float *db) {
    k_bn_bwd<<<(unsigned)C, NT, 0, s>>>(training, N, C, inner, x, w, mean, invstd, dy, dx, dw, db);
}

// ---- layer norm over rows of D: one block per row; dw/db by column ----
__global__ void k_ln_fwd(int64_t D, float eps, const float *x, const float *w, const float *b, float *y, float *mean,
                         float *invstd) {
    __shared__ double shd[NT];
    int64_t o = blockIdx.x * D;
    double s = 0;
    for (int64_t j = threadIdx.x; j < D; j += NT)
        s += x[o + j];
    double mu = block_sum(s, shd) / (double)D;
    double q = 0;
    for (int64_t j = threadIdx.x; j < D; j += NT)
        q += (x[o + j] - mu) * (x[o + j] - mu);
    double is = 1.0 / sqrt(block_sum(q, shd) / (double)D + (double)eps);
    for (int64_t j = threadIdx.x; j < D; j += NT) {
        float v = (float)((x[o + j] - mu) * is);
        y[o + j] = v * (w ? w[j] : 1.f) + (b ? b[j] : 0.f);
    }
    if (threadIdx.x == 0) {
        mean[blockIdx.x] = (float)mu;
        invstd[blockIdx.x] = (float)is;
    }
}

__global__ void k_ln_bwd_dx(int64_t D, const float *x, const float *w, const float *mean, const float *invstd,
                            const float *dy, float *dx) {
    __shared__ double shd[NT];
    int64_t r = blockIdx.x, o = r * D;
    float mu = mean[r], is = invstd[r];
    double a = 0, bq = 0;
    for (int64_t j = threadIdx.x; j < D; j += NT) {
        double g = (double)dy[o + j] * (w ? w[j] : 1.f);
        a += g;
        bq += g * ((x[o + j] - mu) * is);
    }
    a = block_sum(a, shd) / (double)D;
    bq = block_sum(bq, shd) / (double)D;
    for (int64_t j = threadIdx.x; j < D; j += NT) {
        float g = dy[o + j] * (w ? w[j] : 1.f), xh = (x[o + j] - mu) * is;
        dx[o + j] += is * (g - (float)a - xh * (float)bq);
    }
}

__global__ void k_ln_bwd_dw(int64_t rows, int64_t D, const float *x, const float *mean, const float *invstd,
                            const float *dy, float *dw, float *db) {
    GRID_STRIDE(j, D) {
        double sw = 0, sb = 0;
        for (int64_t r = 0; r < rows; r++) {
            float g = dy[r * D + j];
            sw += (double)g * ((x[r * D + j] - mean[r]) * invstd[r]);
            sb += g;
        }
        if (dw)
            dw[j] += (float)sw;
        if (db)
            db[j] += (float)sb;
    }
}

extern "C" void dj_k_layernorm_forward(cudaStream_t s, int64_t rows, int64_t D, float eps, const float *x,
                                       const float *w, const float *b, float *y, float *mean, float *invstd) {
    k_ln_fwd<<<(unsigned)rows, NT, 0, s>>>(D, eps, x, w, b, y, mean, invstd);
}

extern "C" void dj_k_layernorm_backward(cudaStream_t s, int64_t rows, int64_t D, const float *x, const float *w,
                                        const float *mean, const float *invstd, const float *dy, float *dx,
                                        float *dw, float *db) {
    if (dx)
        k_ln_bwd_dx<<<(unsigned)rows, NT, 0, s>>>(D, x, w, mean, invstd, dy, dx);
    if (dw || db)
        k_ln_bwd_dw<<<dj_blocks(D), NT, 0, s>>>(rows, D, x, mean, invstd, dy, dw, db);
}

// ---- pooling ----
struct pool3 {
    int64_t planes, in[3], out[3];
    int k[3], st[3], pd[3], dl[3];
    int exclude_pad;
};

static pool3 to_pool3(const dj_k_pool *p) {
    pool3 q;
    q.planes = p->planes;
    for (int a = 0; a < 3; a++) {
        q.in[a] = p->in[a];
        q.out[a] = p->out[a];
        q.k[a] = p->k[a];
        q.st[a] = p->st[a];
        q.pd[a] = p->pd[a];
        q.dl[a] = p->dl[a];
    }
    q.exclude_pad = p->exclude_pad;
    return q;
}

// Output index i -> plane and (t, h, w).
static __device__ void out_coords(const pool3 &p, int64_t i, int64_t *plane, int64_t o[3]) {
    o[2] = i % p.out[2];
    o[1] = (i / p.out[2]) % p.out[1];
    o[0] = (i / (p.out[2] * p.out[1])) % p.out[0];
    *plane = i / (p.out[2] * p.out[1] * p.out[0]);
}

__global__ void k_maxpool_fwd(pool3 p, const float *x, float *y, int64_t *idx) {
    int64_t n = p.planes * p.out[0] * p.out[1] * p.out[2], in_plane = p.in[0] * p.in[1] * p.in[2];
    GRID_STRIDE(i, n) {
        int64_t pl, o[3];
        out_coords(p, i, &pl, o);
        const float *xp = x + pl * in_plane;
        float best = -INFINITY;
        int64_t bi = -1;
        for (int a = 0; a < p.k[0]; a++) {
            int64_t t = o[0] * p.st[0] - p.pd[0] + (int64_t)a * p.dl[0];
            if (t < 0 || t >= p.in[0])
                continue;
            for (int b = 0; b < p.k[1]; b++) {
                int64_t h = o[1] * p.st[1] - p.pd[1] + (int64_t)b * p.dl[1];
                if (h < 0 || h >= p.in[1])
                    continue;
                for (int c = 0; c < p.k[2]; c++) {
                    int64_t w = o[2] * p.st[2] - p.pd[2] + (int64_t)c * p.dl[2];
                    if (w < 0 || w >= p.in[2])
                        continue;
                    int64_t f = (t * p.in[1] + h) * p.in[2] + w;
                    float v = xp[f];
                    if (bi < 0 || v > best || isnan(v)) { // as the CPU and PyTorch: the last NaN wins
                        best = v;
                        bi = f;
                    }
                }
            }
        }
        y[i] = best;
        idx[i] = bi;
    }
}

// The outputs along one axis whose window holds input coordinate x at tap
// k: o = (x + pd - k*dl) / st when that divides exactly and is in range.
static __device__ int64_t tap_out(int64_t x, int k, int st, int pd, int dl, int64_t out) {
    int64_t num = x + pd - (int64_t)k * dl;
    if (num < 0 || num % st != 0)
        return -1;
    int64_t o = num / st;
    return o < out ? o : -1;
}

__global__ void k_maxpool_bwd(pool3 p, const int64_t *idx, const float *dy, float *dx) {
    int64_t in_plane = p.in[0] * p.in[1] * p.in[2], out_plane = p.out[0] * p.out[1] * p.out[2];
    int64_t n = p.planes * in_plane;
    GRID_STRIDE(i, n) {
        int64_t pl = i / in_plane, f = i % in_plane;
        int64_t t = f / (p.in[1] * p.in[2]), h = (f / p.in[2]) % p.in[1], w = f % p.in[2];
        float g = 0.f;
        for (int a = 0; a < p.k[0]; a++) {
            int64_t ot = tap_out(t, a, p.st[0], p.pd[0], p.dl[0], p.out[0]);
            if (ot < 0)
                continue;
            for (int b = 0; b < p.k[1]; b++) {
                int64_t oh = tap_out(h, b, p.st[1], p.pd[1], p.dl[1], p.out[1]);
                if (oh < 0)
                    continue;
                for (int c = 0; c < p.k[2]; c++) {
                    int64_t ow = tap_out(w, c, p.st[2], p.pd[2], p.dl[2], p.out[2]);
                    if (ow < 0)
                        continue;
                    int64_t o = pl * out_plane + (ot * p.out[1] + oh) * p.out[2] + ow;
                    if (idx[o] == f)
                        g += dy[o];
                }
            }
        }
        dx[i] += g;
    }
}

// Flags an index outside the plane (the CPU reports DJ_ERR_RANGE for it).
__global__ void k_maxpool_check(int64_t n, int64_t in_plane, const int64_t *idx, int *bad) {
    GRID_STRIDE(i, n) if (idx[i] < 0 || idx[i] >= in_plane) *bad = 1;
}

// The divisor of average-pool output o along all axes.
static __device__ float avg_div(const pool3 &p, const int64_t o[3]) {
    int64_t cnt = 1;
    for (int a = 0; a < 3; a++) {
        int64_t s0 = o[a] * p.st[a] - p.pd[a], e0 = s0 + p.k[a];
        int64_t lo = p.exclude_pad ? (s0 < 0 ? 0 : s0) : s0;
        int64_t lim = p.exclude_pad ? p.in[a] : p.in[a] + p.pd[a];
        int64_t hi = e0 < lim ? e0 : lim;
        cnt *= hi > lo ? hi - lo : 0;
    }
    return (float)(cnt > 0 ? cnt : 1);
}

__global__ void k_avgpool_fwd(pool3 p, const float *x, float *y) {
    int64_t n = p.planes * p.out[0] * p.out[1] * p.out[2], in_plane = p.in[0] * p.in[1] * p.in[2];
    GRID_STRIDE(i, n) {
        int64_t pl, o[3];
        out_coords(p, i, &pl, o);
        const float *xp = x + pl * in_plane;
        double s = 0;
        for (int a = 0; a < p.k[0]; a++) {
            int64_t t = o[0] * p.st[0] - p.pd[0] + a;
            if (t < 0 || t >= p.in[0])
                continue;
            for (int b = 0; b < p.k[1]; b++) {
                int64_t h = o[1] * p.st[1] - p.pd[1] + b;
                if (h < 0 || h >= p.in[1])
                    continue;
                for (int c = 0; c < p.k[2]; c++) {
                    int64_t w = o[2] * p.st[2] - p.pd[2] + c;
                    if (w >= 0 && w < p.in[2])
                        s += xp[(t * p.in[1] + h) * p.in[2] + w];
                }
            }
        }
        y[i] = (float)(s / avg_div(p, o));
    }
}

__global__ void k_avgpool_bwd(pool3 p, const float *dy, float *dx) {
    int64_t in_plane = p.in[0] * p.in[1] * p.in[2], out_plane = p.out[0] * p.out[1] * p.out[2];
    int64_t n = p.planes * in_plane;
    GRID_STRIDE(i, n) {
        int64_t pl = i / in_plane, f = i % in_plane;
        int64_t x3[3] = {f / (p.in[1] * p.in[2]), (f / p.in[2]) % p.in[1], f % p.in[2]};
        double g = 0;
        for (int a = 0; a < p.k[0]; a++) {
            int64_t o[3];
            o[0] = tap_out(x3[0], a, p.st[0], p.pd[0], 1, p.out[0]);
            if (o[0] < 0)
                continue;
            for (int b = 0; b < p.k[1]; b++) {
                o[1] = tap_out(x3[1], b, p.st[1], p.pd[1], 1, p.out[1]);
                if (o[1] < 0)
                    continue;
                for (int c = 0; c < p.k[2]; c++) {
                    o[2] = tap_out(x3[2], c, p.st[2], p.pd[2], 1, p.out[2]);
                    if (o[2] >= 0)
                        g += dy[pl * out_plane + (o[0] * p.out[1] + o[1]) * p.out[2] + o[2]] / avg_div(p, o);
                }
            }
        }
        dx[i] += (float)g;
    }
}

// Adaptive windows along an axis: [floor(i*In/Out), ceil((i+1)*In/Out)).
static __device__ int64_t ad_lo(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
static __device__ int64_t ad_hi(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

__global__ void k_adaptive_fwd(pool3 p, const float *x, float *y) {
    int64_t n = p.planes * p.out[0] * p.out[1] * p.out[2], in_plane = p.in[0] * p.in[1] * p.in[2];
    GRID_STRIDE(i, n) {
        int64_t pl, o[3];
        out_coords(p, i, &pl, o);
        const float *xp = x + pl * in_plane;
        int64_t lo[3], hi[3];
        for (int a = 0; a < 3; a++) {
            lo[a] = ad_lo(o[a], p.in[a], p.out[a]);
            hi[a] = ad_hi(o[a], p.in[a], p.out[a]);
        }
        double s = 0;
        for (int64_t t = lo[0]; t < hi[0]; t++)
            for (int64_t h = lo[1]; h < hi[1]; h++)
                for (int64_t w = lo[2]; w < hi[2]; w++)
                    s += xp[(t * p.in[1] + h) * p.in[2] + w];
        y[i] = (float)(s / (double)((hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2])));
    }
}

__global__ void k_adaptive_bwd(pool3 p, const float *dy, float *dx) {
    int64_t in_plane = p.in[0] * p.in[1] * p.in[2], out_plane = p.out[0] * p.out[1] * p.out[2];
    int64_t n = p.planes * in_plane;
    GRID_STRIDE(i, n) {
        int64_t pl = i / in_plane, f = i % in_plane;
        int64_t x3[3] = {f / (p.in[1] * p.in[2]), (f / p.in[2]) % p.in[1], f % p.in[2]};
        double g = 0;
        for (int64_t a = 0; a < p.out[0]; a++) {
            int64_t la = ad_lo(a, p.in[0], p.out[0]), ha = ad_hi(a, p.in[0], p.out[0]);
            if (x3[0] < la || x3[0] >= ha)
                continue;
            for (int64_t b = 0; b < p.out[1]; b++) {
                int64_t lb = ad_lo(b, p.in[1], p.out[1]), hb = ad_hi(b, p.in[1], p.out[1]);
                if (x3[1] < lb || x3[1] >= hb)
                    continue;
                for (int64_t c = 0; c < p.out[2]; c++) {
                    int64_t lc = ad_lo(c, p.in[2], p.out[2]), hc = ad_hi(c, p.in[2], p.out[2]);
                    if (x3[2] < lc || x3[2] >= hc)
                        continue;
                    g += dy[pl * out_plane + (a * p.out[1] + b) * p.out[2] + c] /
                         (double)((ha - la) * (hb - lb) * (hc - lc));
                }
            }
        }
        dx[i] += (float)g;
    }
}

static int64_t out_numel(const dj_k_pool *p) { return p->planes * p->out[0] * p->out[1] * p->out[2]; }
static int64_t in_numel(const dj_k_pool *p) { return p->planes * p->in[0] * p->in[1] * p->in[2]; }

extern "C" void dj_k_maxpool_forward(cudaStream_t s, const dj_k_pool *p, const float *x, float *y, int64_t *idx) {
    k_maxpool_fwd<<<dj_blocks(out_numel(p)), NT, 0, s>>>(to_pool3(p), x, y, idx);
}

extern "C" void dj_k_maxpool_backward(cudaStream_t s, const dj_k_pool *p, const int64_t *idx, const float *dy,
                                      float *dx, int *bad) {
    k_maxpool_check<<<dj_blocks(out_numel(p)), NT, 0, s>>>(out_numel(p), p->in[0] * p->in[1] * p->in[2], idx, bad);
    k_maxpool_bwd<<<dj_blocks(in_numel(p)), NT, 0, s>>>(to_pool3(p), idx, dy, dx);
}

extern "C" void dj_k_avgpool_forward(cudaStream_t s, const dj_k_pool *p, const float *x, float *y) {
    k_avgpool_fwd<<<dj_blocks(out_numel(p)), NT, 0, s>>>(to_pool3(p), x, y);
}

extern "C" void dj_k_avgpool_backward(cudaStream_t s, const dj_k_pool *p, const float *dy, float *dx) {
    k_avgpool_bwd<<<dj_blocks(in_numel(p)), NT, 0, s>>>(to_pool3(p), dy, dx);
}

extern "C" void dj_k_adaptive_avgpool_forward(cudaStream_t s, const dj_k_pool *p, const float *x, float *y) {
    k_adaptive_fwd<<<dj_blocks(out_numel(p)), NT, 0, s>>>(to_pool3(p), x, y);
}

extern "C" void dj_k_adaptive_avgpool_backward(cudaStream_t s, const dj_k_pool *p, const float *dy, float *dx) {
    k_adaptive_bwd<<<dj_blocks(in_numel(p)), NT, 0, s>>>(to_pool3(p), dy, dx);
}
