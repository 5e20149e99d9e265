/* conv3d_internal.h — what the float32 conv3d (conv3d.c) shares with its
 * mixed-precision twin (conv3d_bf16.c): setup and checks, the walk over a
 * column row, col2vol, bias loops, the geometry of the stride-1 input
 * gradient. Not a public header. */
#ifndef DOJO_NN_CONV3D_INTERNAL_H
#define DOJO_NN_CONV3D_INTERNAL_H

#include <stdint.h>

#include "dojo/ops.h"
#include "nn/spatial_internal.h"

/* The output positions j in [0, n) of a row whose input index
 * j*stride + off lies in [0, len): [*lo, *hi). */
static inline void dj_valid_range(int64_t off, int64_t stride, int64_t len, int64_t n, int64_t *lo, int64_t *hi) {
    int64_t a, b;
    if (stride == 1) { /* the common case, without divisions */
        a = off >= 0 ? 0 : -off;
        b = off >= len ? 0 : len - off;
    } else {
        a = off >= 0 ? 0 : (-off + stride - 1) / stride;
        b = off >= len ? 0 : (len - off + stride - 1) / stride;
    }
    if (a > n)
        a = n;
    if (b > n)
        b = n;
    if (b < a)
        b = a;
    *lo = a, *hi = b;
}

typedef struct dj_col_job {
    const dj_conv_geom *g;
    const float *x; /* (Cin_g, T, H, W) of one sample and group */
    float *dx;      /* same, for col2vol */
    float *col;     /* (K, pb) */
    int64_t p0, pb;
    int64_t xs;     /* implicit GEMM over several samples: x's sample stride */
} dj_col_job;

/* Walks the block [p0, p0+pb) of output positions of column row r
 * (channel c, kernel offset kt,kh,kw) as runs along W; calls back per run. */
#define DJ_COL_ROW_WALK(g, r, p0, pb, BODY)                                                           \
    do {                                                                                              \
        int64_t c_ = (r) / (g)->kvol, k_ = (r) % (g)->kvol;                                           \
        int64_t kt_ = k_ / ((g)->kH * (g)->kW), kh_ = (k_ / (g)->kW) % (g)->kH, kw_ = k_ % (g)->kW;    \
        int64_t to_ = (p0) / ((g)->Ho * (g)->Wo), ho_ = ((p0) / (g)->Wo) % (g)->Ho, wo_ = (p0) % (g)->Wo; \
        int64_t left_ = (pb), j0_ = 0;                                                                \
        int64_t iw_off_ = kw_ * (g)->dw - (g)->pw;                                                    \
        while (left_ > 0) {                                                                           \
            int64_t seg = (g)->Wo - wo_ < left_ ? (g)->Wo - wo_ : left_;                              \
            int64_t it = to_ * (g)->st - (g)->pt + kt_ * (g)->dt;                                     \
            int64_t ih = ho_ * (g)->sh - (g)->ph + kh_ * (g)->dh;                                     \
            int64_t iw0 = wo_ * (g)->sw + iw_off_, lo = 0, hi = 0;                                    \
            int inside = it >= 0 && it < (g)->T && ih >= 0 && ih < (g)->H;                            \
            if (inside)                                                                               \
                dj_valid_range(iw0, (g)->sw, (g)->W, seg, &lo, &hi);                                  \
            int64_t plane = c_ * (g)->S + (it * (g)->H + ih) * (g)->W;                                \
            int64_t j0 = j0_;                                                                         \
            BODY;                                                                                     \
            j0_ += seg, left_ -= seg, wo_ = 0;                                                        \
            if (++ho_ == (g)->Ho)                                                                     \
                ho_ = 0, to_++;                                                                       \
        }                                                                                             \
    } while (0)

typedef struct dj_bias_job {
    const dj_conv_geom *g;
    const float *b, *dy;
    float *y, *db;
} dj_bias_job;

/* Geometry of (inp, weight) after the 5-D checks. */
dj_status dj_conv_setup(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight, dj_conv_geom *g,
                        const char *who);
/* The geometry for the scratch-size queries: 0 (and no error left set) when
 * the shapes are not a valid convolution; the operator itself reports why. */
int dj_conv_geom_quiet(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight, dj_conv_geom *g,
                       const char *who);
/* Few output positions per sample (P < 256, N > 1): one forward GEMM over
 * the whole batch. */
int dj_conv_forward_batched(const dj_conv_geom *g);
/* The stride-1 input gradient as a convolution of dout with the flipped
 * weight: its geometry in g2; 0 when the shape does not allow it. */
int dj_conv_dgrad_geom(const dj_conv_geom *g, dj_conv_geom *g2);
/* The backward's gradient tensors against the geometry (float32; dinp,
 * dweight and dbias may be NULL). */
dj_status dj_conv_check_grads(const dj_conv_geom *g, const dj_tensor *inp, const dj_tensor *weight,
                              const dj_tensor *dout, const dj_tensor *dinp, const dj_tensor *dweight,
                              const dj_tensor *dbias, const char *who);
/* Dead taps (conv3d.c): 1 when some kernel taps of g meet only padding for
 * every output; gt is then the convolution of the live block (first live
 * tap lo per axis; same input and output shapes, padding shifted). copy:
 * wt = the live block of w (float32 or bf16: esize 4 or 2); add: dw's live block +=
 * dwt (float32). */
int dj_conv_trim(const dj_conv_geom *g, dj_conv_geom *gt, int64_t lo[3]);
void dj_conv_trim_copy(dj_threadpool *pool, const dj_conv_geom *g, const dj_conv_geom *gt, const int64_t lo[3],
                       const void *w, void *wt, size_t esize);
void dj_conv_trim_add(dj_threadpool *pool, const dj_conv_geom *g, const dj_conv_geom *gt, const int64_t lo[3],
                      float *dw, const float *dwt);
/* dj_parallel_for bodies: col2vol of a dj_col_job over input channels;
 * bias added over rows n*Cout + c, and the bias gradient over channels
 * (dj_bias_job). */
void dj_conv_col2vol_channels(void *arg, int64_t c0, int64_t c1, int thread);
void dj_conv_bias_add_rows(void *arg, int64_t r0, int64_t r1, int thread);
void dj_conv_bias_grad_rows(void *arg, int64_t c0, int64_t c1, int thread);

/* ---- the bf16 packers (conv3d_bf16.c, conv3d_bf16_avx512.c) ---- */

typedef struct dj_colb_job {
    const dj_conv_geom *g;
    const uint16_t *x; /* bf16 (Cin_g, T, H, W) of sample 0 */
    int64_t xs;        /* sample stride of x when the columns span samples */
    int64_t cs;        /* channel stride of x (S, or N*S for channel-major batches) */
} dj_colb_job;

/* A run: consecutive columns of col that are consecutive outputs of one
 * output row of one sample, so that each row of col reads them from one
 * input row. Both packers cut their block into runs once and then gather
 * every row of col run by run, without divisions. */
typedef struct dj_colb_run {
    const uint16_t *x;  /* the sample's volume */
    int32_t j0, seg;    /* offset in the line, length */
    int32_t it, ih, iw; /* input (t, h, w) of the first output, kernel offset 0 */
} dj_colb_run;

/* A row of col: channel c and kernel offset (kt, kh, kw), stepped in order
 * without divisions. */
typedef struct dj_colb_rowpos {
    int64_t c, kt, kh, kw;
} dj_colb_rowpos;

/* The direct convolution's sizes (conv3d_direct_avx512.c): weight-gradient
 * blocks of 4 output channels x 7 taps, chunks of 16 output rows; the
 * length of a phase row (the forward reads 32 outputs at a time, each kW
 * taps on); the floats of one block's partial sums. */
enum { DJ_DIRECT_CB = 4, DJ_DIRECT_KW = 7, DJ_DIRECT_ROWS = 16 };

static inline int64_t dj_conv_direct_lp(const dj_conv_geom *g) {
    int64_t wv = (g->Wo + 31) / 32 * 32;
    return (wv + (g->kW - 1) / g->sw + 1 + 15) / 16 * 16;
}

static inline int64_t dj_conv_direct_acc_floats(const dj_conv_geom *g) {
    return g->Cin * g->kT * g->kH * DJ_DIRECT_CB * DJ_DIRECT_KW * 16;
}

#if defined(__x86_64__)
/* The direct convolution for few input channels (conv3d_direct_avx512.c):
 * phase rows of the input, xp[(n, ci, t, h)][r][lp] for input rows [r0, r1);
 * the forward of output rows [r0, r1) of (n, t, h); the weight gradient of
 * blocks [b0, b1) of 4 output channels, each with acc_floats() of partial
 * sums in acc. */
void dj_conv_direct_phases_avx512(const dj_conv_geom *g, const float *x, float *xp, int64_t r0, int64_t r1);
void dj_conv_direct_forward_avx512(const dj_conv_geom *g, const float *xp, const float *w, const float *bias, float *y,
                                   int64_t r0, int64_t r1);
void dj_conv_direct_wgrad_avx512(const dj_conv_geom *g, const float *xp, const float *dy, float *dw, float *acc,
                                 int64_t b0, int64_t b1);

/* dst[q] = src[2q] for q < n (float32, stride-2 column rows; reads nothing
 * past src[2n - 2]). */
void dj_conv_gather2_avx512(const float *src, int64_t n, float *dst);

/* AVX-512 (BW) gatherers, called only when dj_cpu_best_isa() allows:
 * pair: rows qa and qb (NULL: zeros) of col at the runs, interleaved into k
 * pair p of every panel of 32 columns of a block of nc columns packed with
 * kc (columns past nc zero), straight into dst; row: one row of col into a
 * line, as dj_colb_row. */
void dj_colb_pair_avx512(const dj_colb_job *j, const dj_colb_run *runs, int64_t nruns, dj_colb_rowpos qa,
                         const dj_colb_rowpos *qb, int64_t nc, int64_t kc, int64_t p, uint16_t *dst);
void dj_colb_row_avx512(const dj_colb_job *j, const dj_colb_run *runs, int64_t nruns, dj_colb_rowpos q,
                        uint16_t *line);
#endif

#endif
