/* spatial_internal.h — shape checking and geometry shared by the spatial
 * operators (src/nn/conv3d.c, pool.c, norm.c, linear.c) and their double
 * references (*_ref.c). Not a public header. */
#ifndef DOJO_NN_SPATIAL_INTERNAL_H
#define DOJO_NN_SPATIAL_INTERNAL_H

#include <stdint.h>

#include "dojo/ops_spatial.h"

/* Everything about one conv3d, with defaults applied (stride/dilation/groups
 * 0 -> 1). */
typedef struct dj_conv_geom {
    int64_t N, Cin, T, H, W;    /* input */
    int64_t Cout, kT, kH, kW;   /* weight */
    int64_t To, Ho, Wo;         /* output */
    int64_t st, sh, sw, pt, ph, pw, dt, dh, dw;
    int64_t G, Cin_g, Cout_g;   /* groups, channels per group */
    int64_t kvol, K, S, P;      /* kT*kH*kW, Cin_g*kvol, T*H*W, To*Ho*Wo */
    int pointwise;              /* 1x1x1, stride 1, no padding: no im2col */
    int depthwise;              /* Cin_g == 1: direct loops */
    int64_t pblock;             /* output positions per column block */
    int algo;                   /* dj_conv_algo asked for */
} dj_conv_geom;

/* Validates the parameters and shapes; `who` names the operator. */
dj_status dj_conv_geom_init(const dj_conv3d_params *p, const int64_t in[5], const int64_t w[5], dj_conv_geom *g,
                            const char *who);
/* Checks inp/weight/bias/out (out may be NULL) against g, all of dtype dt. */
dj_status dj_conv_check(const dj_conv_geom *g, dj_dtype dt, const dj_tensor *inp, const dj_tensor *weight,
                        const dj_tensor *bias, const dj_tensor *out, const char *who);

/* Pooling geometry (defaults applied: stride 0 -> kernel, dilation 0 -> 1). */
typedef struct dj_pool_geom {
    int64_t N, C, T, H, W, To, Ho, Wo;
    int64_t k[3], s[3], pad[3], d[3];
    int ceil_mode, exclude_pad;
} dj_pool_geom;

dj_status dj_pool_geom_init(const dj_pool3d_params *p, const int64_t in[5], dj_pool_geom *g, const char *who);

/* The avg-pool window of output index o along an axis: [*lo, *hi) clipped
 * to the input, and the PyTorch divisor for it. */
void dj_avgpool_window(const dj_pool_geom *g, int axis, int64_t in, int64_t o, int64_t *lo, int64_t *hi,
                       int64_t *padded_count);

/* Adaptive pooling window along an axis: [floor(o*In/Out), ceil((o+1)*In/Out)). */
static inline int64_t dj_adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
static inline int64_t dj_adaptive_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

/* Checks that t exists, has dtype dt and the same shape as like. */
dj_status dj_expect_like(const dj_tensor *t, dj_dtype dt, const dj_tensor *like, const char *who, const char *what);
/* Checks that t is NULL (when optional) or a 1-D tensor of n elements. */
dj_status dj_expect_vec(const dj_tensor *t, dj_dtype dt, int64_t n, int optional, const char *who, const char *what);

/* out[c] += sum over rows r (in order) of a[r * cols + c], for c in [c0, c1):
 * the bias gradient of row-major (rows, cols) activations. Reads rows
 * contiguously, 64 columns at a time, sums in double. */
void dj_colsum_add(const float *a, int64_t rows, int64_t cols, int64_t c0, int64_t c1, float *out);

/* sum of x[0..n) in a fixed, vectorisable order (8 float lanes over blocks
 * of 512 values, blocks added in double); when dev is given it also
 * receives sum (x[i] - m)^2. */
double dj_sum_f32(const float *x, int64_t n, float m, double *dev);

/* (N, C, rest): the batch, channel and per-channel sizes of an (N,C,...) tensor. */
void dj_nc_rest(const dj_tensor *t, int64_t *N, int64_t *C, int64_t *rest);

#endif
