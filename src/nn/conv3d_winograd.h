/* conv3d_winograd.h — private: stride-1 convolutions with 3-tap (or 1-tap)
 * axes by Winograd's minimal filtering, for conv3d.c.
 *
 * Along each axis a tile of m outputs of a 3-tap correlation is
 *   y = A^T [ (G g) . (B^T d) ]      F(m, 3), m = 2 or 4 (tile input a = m+2)
 * and a 1-tap axis is the identity (m = a = 1). A 3-D tile applies the
 * three 1-D transforms one axis after the other, so a 3x3x3 conv with
 * m = (2, 4, 4) turns 27 * 32 multiply-adds per output tile, per input and
 * output channel, into 4 * 6 * 6 = 144: per "frequency" xi of the tile, one
 * matrix product over the channels,
 *   M[xi] (tiles, Cout) = V[xi] (tiles, Cin) @ U[xi] (Cin, Cout),
 * with V the transformed input tiles and U the transformed weights. The
 * three passes of training all take this form:
 *   forward       y  = A^T (V(x) @ U(w))
 *   input grad    dx = the same with dy as input and the weight flipped and
 *                      transposed (the stride-1 input gradient is a
 *                      convolution with padding 2 - p on 3-tap axes)
 *   weight grad   dw = G^T (sum over tiles of V(x)^T @ A(dy)) — the exact
 *                      adjoint of the forward's computation.
 * Sums: each output of the forward and the input gradient is computed by
 * one tile whatever the blocking and the thread count; the weight gradient
 * sums tiles in blocks fixed by the shape (dj_wino_plan), and its per-xi
 * products are split over threads by xi, never over tiles, so the bits do
 * not depend on the number of threads.
 * Accuracy: F(4,3) scales values by up to 8 and 1/24 inside the tile, so
 * results differ from the direct sum by a few float32 roundings more (the
 * tests bound it against the double reference); `DOJO_CONV=gemm` or
 * dj_conv3d_params.algo selects the implicit GEMM instead.
 *
 * Runs on AVX-512 (16 channels per vector); elsewhere conv3d.c keeps its
 * implicit GEMM. The kernels are in conv3d_winograd_avx512.c. */
#ifndef DOJO_NN_CONV3D_WINOGRAD_H
#define DOJO_NN_CONV3D_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/threadpool.h"
#include "nn/spatial_internal.h"

enum { DJ_WINO_VEC = 16, DJ_WINO_MAX_A = 6 };

/* One axis of a tiled convolution. Output o of the axis reads inputs
 * o + off + j, j < r (zero outside [0, in)); tile i covers outputs
 * [i*m, i*m + m) and reads the a inputs from i*m + off. */
typedef struct dj_wino_axis {
    int r, m, a;   /* taps (1 or 3), outputs per tile, tile input m + r - 1 */
    int k0;        /* the first kernel tap used: a 3-tap axis whose other taps
                    * only ever meet padding (T = 1, padding 1) is trimmed to
                    * its middle tap, k0 = 1, r = 1 */
    int64_t off;   /* k0 - padding */
    int64_t in, out, tiles;
} dj_wino_axis;

/* One Winograd convolution (a forward, or the input gradient's). */
typedef struct dj_wino_conv {
    dj_wino_axis ax[3];          /* T, H, W */
    int64_t N, Cin, Cout;        /* channels in and out of this convolution */
    int64_t Cin_p, Cout_p;       /* rounded up to DJ_WINO_VEC */
    int64_t xi;                  /* a_T * a_H * a_W */
    int64_t rows;                /* tile rows (n, tile t, tile h): N * tiles_T * tiles_H */
    int64_t nw;                  /* tiles per row (tiles_W) */
    int64_t wp;                  /* staged input row: nw * m_W + a_W - m_W */
    int64_t rows_per_block;      /* tile rows per block of the per-thread passes */
} dj_wino_conv;

/* The Winograd form of a convolution (geometry g after dj_conv_geom_init):
 * fw for the forward (and weight gradient), dg for the input gradient.
 * Returns 0 when the shape does not take it (strides, dilations, groups,
 * kernel sizes other than 1 and 3, too few channels or outputs to gain) or
 * the CPU lacks AVX-512. Depends on the shape and the CPU only. */
int dj_wino_plan(const dj_conv_geom *g, dj_wino_conv *fw, dj_wino_conv *dg);
/* Scratch bytes for forward and backward with up to `threads` threads (a
 * smaller scratch, down to one thread's, runs on fewer threads). */
size_t dj_wino_scratch_bytes(const dj_conv_geom *g, int threads);

/* y (N, Cout, To, Ho, Wo) = conv(x, w) + b (b may be NULL). */
dj_status dj_wino_forward(dj_threadpool *pool, const dj_conv_geom *g, const float *x, const float *w, const float *b,
                          float *y, void *scratch, size_t scratch_bytes);
/* dx += input gradient, dw += weight gradient (either may be NULL; dW
 * uses U's budget, DJ_WINO_U_MAX, which the plan checks). */
dj_status dj_wino_backward(dj_threadpool *pool, const dj_conv_geom *g, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, void *scratch, size_t scratch_bytes);

/* ---- kernels (conv3d_winograd_avx512.c), called only on AVX-512 ---- */
#if defined(__x86_64__)
/* U[xi][ci][co] (Cin_p x Cout_p per xi, zero past the real channels) from
 * the weight w (Cout, Cin, kT, kH, kW) of the forward convolution c (fwd:
 * ci = input channel, co = output channel) or, flip = 1, of its input
 * gradient (ci = the forward's output channel, co = its input channel,
 * taps reversed). Rows co in [co0, co1) of 16 (multiples of 16). */
void dj_wino_weights_avx512(const dj_wino_conv *c, const dj_conv_geom *g, const float *w, int flip, float *U,
                            int64_t co0, int64_t co1);
/* dw (Cout, Cin, kT, kH, kW) += G^T dU for output channels [co0, co1) (of
 * 16; c is the forward's convolution). */
void dj_wino_weights_grad_avx512(const dj_wino_conv *c, const dj_conv_geom *g, const float *dU, float *dw,
                                 int64_t co0, int64_t co1);
/* The per-thread passes of one block of tile rows [r0, r0 + nrows): input
 * tiles into V[xi][tile][Cin_p] (stage: this thread's staging buffer). */
void dj_wino_input_tiles_avx512(const dj_wino_conv *c, const float *x, int64_t r0, int64_t nrows, int64_t vtiles,
                                int64_t vtile0, float *V, float *stage);
/* A(dy) tiles of the weight gradient: dM[xi][tile][Cout_p] from the output
 * gradient dy (N, Cout, To, Ho, Wo) of the forward convolution c. */
void dj_wino_output_grad_tiles_avx512(const dj_wino_conv *c, const float *dy, int64_t r0, int64_t nrows,
                                      int64_t mtiles, int64_t mtile0, float *dM, float *stage);
/* M[xi][tile][Cout_p] -> y rows (N, Cout, To, Ho, Wo): y = A^T M (+ bias),
 * or y += A^T M when accumulate. */
void dj_wino_output_tiles_avx512(const dj_wino_conv *c, const float *M, int64_t r0, int64_t nrows, float *y,
                                 const float *bias, int accumulate, float *stage);
/* C[i][j] (i < rows, j < cols; cols a multiple of 16) (+)= sum over k < K of
 * A[i*ars + k*aks] * B[k*ldb + j]. */
void dj_wino_gemm_avx512(int64_t rows, int64_t cols, int64_t K, const float *A, int64_t ars, int64_t aks,
                         const float *B, int64_t ldb, float *C, int64_t ldc, int accumulate);
#endif

#endif
