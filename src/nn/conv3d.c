/* conv3d.c — 3-D convolution (torch.nn.functional.conv3d), forward and
 * backward, float32.
 *
 * Three paths chosen from the shapes alone (never from the thread count):
 * - pointwise (1x1x1, stride 1, no padding): the input of one sample and
 *   group already is the (Cin_g, T*H*W) matrix the GEMM wants (with few
 *   positions the forward gathers all samples into one GEMM instead);
 * - depthwise-style (Cin/groups == 1): direct loops, im2col would only copy;
 * - general: implicit GEMM over the column matrix col (K = Cin_g*kT*kH*kW,
 *   P) of each sample n and group g, whose entries are gathered straight
 *   into the GEMM's packed panels (dj_sgemm_packed_b), never stored whole:
 *     forward   out         = W_g (Cout_g, K) @ col
 *     weight    dW_g       += dout (Cout_g, P) @ col^T     (n in order)
 *     input     stride 1, padding <= dilation*(k-1): dinp += the conv of
 *               dout with the flipped, transposed weight (implicit GEMM too);
 *               otherwise per block of `pblock` positions dcol = W_g^T @
 *               dout[:, blk] into the scratch, and col2vol adds it into dinp.
 * - direct (conv3d_direct_avx512.c): few input channels (the stems, Cin <= 4),
 *   forward and weight gradient; its input gradient takes the paths above;
 * - Winograd (conv3d_winograd.c): stride-1 convs whose axes have 1 or 3
 *   taps, where dj_wino_plan finds it worth it (AVX-512 only): all three
 *   passes.
 * Kernel taps that only ever meet padding (a (3,1,1) kernel over T = 1) are
 * dropped before the GEMM paths: see "dead taps" below.
 * dj_sgemm never splits K over threads and col2vol runs over input channels,
 * so every sum runs in a fixed order whatever the thread count.
 * Mixed precision (bf16 operands, float32 sums): conv3d_bf16.c, the same
 * design on dj_gemm_bf16_packed_b. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/cpu.h"
#include "dojo/gemm.h"
#include "nn/conv3d_internal.h"
#include "nn/conv3d_winograd.h"

/* Column buffer budget in floats: the block of positions is sized so that
 * K * pblock stays near this (8 MiB). */
enum { DJ_CONV_COL_FLOATS = 1 << 21 };

static int64_t dj_def1(int v) { return v == 0 ? 1 : v; }

static const char *const dj_conv_algo_names[] = {"auto", "gemm", "winograd"};

int dj_conv_algo_from_name(const char *name) {
    for (int a = DJ_CONV_AUTO; name && a <= DJ_CONV_WINOGRAD; a++)
        if (strcmp(name, dj_conv_algo_names[a]) == 0)
            return a;
    return -1;
}

const char *dj_conv_algo_name(int algo) {
    return algo >= DJ_CONV_AUTO && algo <= DJ_CONV_WINOGRAD ? dj_conv_algo_names[algo] : NULL;
}

/* DOJO_CONV=gemm, read once (a race writes the same value) */
static int dj_conv_env_gemm(void) {
    static int gemm = -1;
    if (gemm < 0) {
        const char *e = getenv("DOJO_CONV");
        gemm = e && strcmp(e, "gemm") == 0;
    }
    return gemm;
}

dj_status dj_conv_geom_init(const dj_conv3d_params *p, const int64_t in[5], const int64_t w[5], dj_conv_geom *g,
                            const char *who) {
    static const dj_conv3d_params zero = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}, 0, 0};
    if (!p)
        p = &zero;
    memset(g, 0, sizeof *g);
    char si[128], sw[128];
    dj_shape_string(5, in, si, sizeof si);
    dj_shape_string(5, w, sw, sizeof sw);
    for (int a = 0; a < 3; a++)
        if (p->stride[a] < 0 || p->padding[a] < 0 || p->dilation[a] < 0)
            return dj_error_set(DJ_ERR_INVALID, who, "negative stride, padding or dilation on axis %d", a);
    if (p->groups < 0)
        return dj_error_set(DJ_ERR_INVALID, who, "negative groups %d", p->groups);
    g->N = in[0], g->Cin = in[1], g->T = in[2], g->H = in[3], g->W = in[4];
    g->Cout = w[0], g->kT = w[2], g->kH = w[3], g->kW = w[4];
    g->st = dj_def1(p->stride[0]), g->sh = dj_def1(p->stride[1]), g->sw = dj_def1(p->stride[2]);
    g->pt = p->padding[0], g->ph = p->padding[1], g->pw = p->padding[2];
    g->dt = dj_def1(p->dilation[0]), g->dh = dj_def1(p->dilation[1]), g->dw = dj_def1(p->dilation[2]);
    g->G = dj_def1(p->groups);
    g->algo = p->algo;
    if (p->algo < DJ_CONV_AUTO || p->algo > DJ_CONV_WINOGRAD)
        return dj_error_set(DJ_ERR_INVALID, who, "unknown convolution algorithm %d", p->algo);
    if (g->algo == DJ_CONV_AUTO && dj_conv_env_gemm())
        g->algo = DJ_CONV_GEMM; /* DOJO_CONV=gemm: AUTO means the implicit GEMM everywhere */
    if (g->Cin <= 0 || g->Cout <= 0 || g->kT <= 0 || g->kH <= 0 || g->kW <= 0 || g->N < 0)
        return dj_error_set(DJ_ERR_INVALID, who, "empty input %s or weight %s", si, sw);
    if (g->Cin % g->G || g->Cout % g->G)
        return dj_error_set(DJ_ERR_INVALID, who, "groups %lld must divide Cin and Cout: input %s, weight %s",
                            (long long)g->G, si, sw);
    g->Cin_g = g->Cin / g->G, g->Cout_g = g->Cout / g->G;
    if (w[1] != g->Cin_g)
        return dj_error_set(DJ_ERR_INVALID, who, "weight %s needs Cin/groups = %lld channels for input %s", sw,
                            (long long)g->Cin_g, si);
    int64_t span_t = g->dt * (g->kT - 1) + 1, span_h = g->dh * (g->kH - 1) + 1, span_w = g->dw * (g->kW - 1) + 1;
    int64_t et = g->T + 2 * g->pt - span_t, eh = g->H + 2 * g->ph - span_h, ew = g->W + 2 * g->pw - span_w;
    if (et < 0 || eh < 0 || ew < 0)
        return dj_error_set(DJ_ERR_INVALID, who, "kernel of weight %s larger than padded input %s", sw, si);
    g->To = et / g->st + 1, g->Ho = eh / g->sh + 1, g->Wo = ew / g->sw + 1;
    g->kvol = g->kT * g->kH * g->kW;
    g->K = g->Cin_g * g->kvol;
    g->S = g->T * g->H * g->W;
    g->P = g->To * g->Ho * g->Wo;
    g->pointwise = g->kvol == 1 && g->st == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->ph == 0 && g->pw == 0;
    g->depthwise = !g->pointwise && g->Cin_g == 1;
    int64_t pb = DJ_CONV_COL_FLOATS / g->K;
    if (pb < 64)
        pb = 64;
    g->pblock = pb < g->P ? pb : g->P;
    return DJ_OK;
}

dj_status dj_conv_check(const dj_conv_geom *g, dj_dtype dt, const dj_tensor *inp, const dj_tensor *weight,
                        const dj_tensor *bias, const dj_tensor *out, const char *who) {
    char where[160];
    int64_t in_shape[5] = {g->N, g->Cin, g->T, g->H, g->W};
    int64_t w_shape[5] = {g->Cout, g->Cin_g, g->kT, g->kH, g->kW};
    int64_t o_shape[5] = {g->N, g->Cout, g->To, g->Ho, g->Wo};
    snprintf(where, sizeof where, "%s input", who);
    DJ_TRY(dj_tensor_expect(inp, dt, 5, in_shape, where));
    snprintf(where, sizeof where, "%s weight", who);
    DJ_TRY(dj_tensor_expect(weight, dt, 5, w_shape, where));
    DJ_TRY(dj_expect_vec(bias, dt, g->Cout, 1, who, "bias"));
    if (out) {
        snprintf(where, sizeof where, "%s output", who);
        DJ_TRY(dj_tensor_expect(out, dt, 5, o_shape, where));
    }
    return DJ_OK;
}

dj_status dj_conv_setup(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                               dj_conv_geom *g, const char *who) {
    if (!inp || !weight)
        return dj_error_set(DJ_ERR_INVALID, who, "missing input or weight");
    if (inp->ndim != 5 || weight->ndim != 5) {
        char si[128], sw[128];
        return dj_error_set(DJ_ERR_INVALID, who, "input %s and weight %s must both be 5-D (N,C,T,H,W)",
                            dj_shape_string(inp->ndim, inp->shape, si, sizeof si),
                            dj_shape_string(weight->ndim, weight->shape, sw, sizeof sw));
    }
    return dj_conv_geom_init(p, inp->shape, weight->shape, g, who);
}

dj_status dj_conv3d_output_shape(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5],
                                 int64_t out_shape[5]) {
    dj_conv_geom g;
    DJ_TRY(dj_conv_geom_init(p, in_shape, w_shape, &g, "dj_conv3d_output_shape"));
    out_shape[0] = g.N, out_shape[1] = g.Cout, out_shape[2] = g.To, out_shape[3] = g.Ho, out_shape[4] = g.Wo;
    return DJ_OK;
}

int dj_conv3d_winograd_tiles(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5], int m[3]) {
    dj_conv_geom g;
    dj_wino_conv f;
    if (dj_conv_geom_init(p, in_shape, w_shape, &g, "dj_conv3d_winograd_tiles") != DJ_OK) {
        dj_error_clear();
        return 0;
    }
    if (!dj_wino_plan(&g, &f, NULL))
        return 0;
    if (m)
        for (int a = 0; a < 3; a++)
            m[a] = f.ax[a].m;
    return 1;
}

double dj_conv3d_winograd_saving(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5]) {
    dj_conv_geom g, gt;
    dj_wino_conv f;
    int64_t lo[3];
    if (dj_conv_geom_init(p, in_shape, w_shape, &g, "dj_conv3d_winograd_saving") != DJ_OK) {
        dj_error_clear();
        return 0;
    }
    if (!dj_wino_plan(&g, &f, NULL))
        return 0;
    double gemm = (double)g.To * g.Ho * g.Wo * (dj_conv_trim(&g, &gt, lo) ? gt.kvol : g.kvol), tiled = 1;
    for (int a = 0; a < 3; a++)
        tiled *= (double)f.ax[a].tiles * f.ax[a].a;
    return gemm / tiled;
}

static int dj_conv_direct_ok(const dj_conv_geom *g);

dj_conv_path dj_conv3d_path(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5]) {
    dj_conv_geom g;
    if (dj_conv_geom_init(p, in_shape, w_shape, &g, "dj_conv3d_path") != DJ_OK) {
        dj_error_clear();
        return DJ_CONV_PATH_INVALID;
    }
    if (g.pointwise)
        return DJ_CONV_PATH_POINTWISE;
    if (g.depthwise)
        return DJ_CONV_PATH_DEPTHWISE;
    if (dj_wino_plan(&g, NULL, NULL))
        return DJ_CONV_PATH_WINOGRAD;
    if (dj_conv_direct_ok(&g))
        return DJ_CONV_PATH_DIRECT;
    return DJ_CONV_PATH_GEMM;
}

/* Few output positions per sample (deep layers: P = 49 at 7x7): the
 * forward runs one GEMM over all samples (see dj_conv_forward_batch). */
int dj_conv_forward_batched(const dj_conv_geom *g) {
    return !g->pointwise && !g->depthwise && g->N > 1 && g->P < 256;
}

static int dj_conv_gather2_fast(void);

/* The direct path (AVX-512): few input channels, W stride 1 or 2, kW <= 7,
 * rows of 16+ outputs; not when the caller insists on the GEMM. Up to 32
 * output channels: measured on stems (2 threads), 3 -> 16 channels (r3d_mini)
 * forward 14-23 -> 8-10 ms and backward 15-22 -> 10-13 ms per batch of 8,
 * 3 -> 45 (r2plus1d_18) even, 3 -> 64 (r3d_18) 1.3x slower than the GEMM,
 * whose column panels then feed 64 rows. */
static int dj_conv_direct_ok(const dj_conv_geom *g) {
#if defined(__x86_64__)
    return g->algo != DJ_CONV_GEMM && dj_conv_gather2_fast() && g->G == 1 && g->Cin <= 4 && g->Cout <= 32 && !g->pointwise &&
           !g->depthwise && g->dt == 1 && g->dh == 1 && g->dw == 1 && (g->sw == 1 || g->sw == 2) && g->kW <= 7 &&
           g->Wo >= 16;
#else
    (void)g;
    return 0;
#endif
}

/* floats of the direct path's phase rows and weight-gradient partial sums */
static int64_t dj_conv_direct_xp_floats(const dj_conv_geom *g) {
    return (g->N * g->Cin * g->T * g->H * g->sw * dj_conv_direct_lp(g) + 15) / 16 * 16;
}

static int64_t dj_conv_direct_floats(const dj_conv_geom *g) {
    return dj_conv_direct_xp_floats(g) + (g->Cout + DJ_DIRECT_CB - 1) / DJ_DIRECT_CB * dj_conv_direct_acc_floats(g);
}

/* ---------------------------------------------------------------- dead taps
 * Kernel taps that meet only padding, for every output, multiply zeros: a
 * (3,1,1) kernel over T = 1 with padding 1 (r(2+1)d's layer 4) has one live
 * tap in three, a 3x3x3 kernel over 1x1 frames one in nine. Where at least
 * half the taps are dead, the GEMM paths drop them:
 * they run the convolution of the live block of the kernel (padding shifted
 * to match), whose weight is copied into the scratch and whose weight
 * gradient is added back into the live block. Dropped products are exact
 * zeros, so the results are those of the full kernel up to the order of the
 * sums. */

/* The live taps [*lo, *hi] of one axis: tap j reads o*s - pad + j*d. */
static void dj_live_taps(int64_t k, int64_t s, int64_t d, int64_t pad, int64_t in, int64_t out, int64_t *lo,
                         int64_t *hi) {
    *lo = k, *hi = -1;
    for (int64_t j = 0; j < k; j++) {
        int64_t pos = j * d - pad, o = 0; /* the first output whose read is >= 0 */
        if (pos < 0)
            o = (-pos + s - 1) / s, pos += o * s;
        if (o < out && pos < in) {
            if (j < *lo)
                *lo = j;
            *hi = j;
        }
    }
}

/* 1 when g has dead taps on some axis: gt the convolution of its live taps
 * (same input and output shapes), lo the first live tap per axis. */
int dj_conv_trim(const dj_conv_geom *g, dj_conv_geom *gt, int64_t lo[3]) {
    int64_t k[3] = {g->kT, g->kH, g->kW}, s[3] = {g->st, g->sh, g->sw}, d[3] = {g->dt, g->dh, g->dw};
    int64_t pad[3] = {g->pt, g->ph, g->pw}, in[3] = {g->T, g->H, g->W}, out[3] = {g->To, g->Ho, g->Wo};
    dj_conv3d_params q = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}, (int)g->G, DJ_CONV_GEMM};
    int64_t wshape[5] = {g->Cout, g->Cin_g, 0, 0, 0}, xshape[5] = {g->N, g->Cin, g->T, g->H, g->W};
    int dead = 0;
    for (int a = 0; a < 3; a++) {
        int64_t hi;
        dj_live_taps(k[a], s[a], d[a], pad[a], in[a], out[a], &lo[a], &hi);
        if (hi < lo[a] || pad[a] - lo[a] * d[a] < 0)
            return 0; /* (every tap dead cannot happen for a valid shape) */
        dead |= lo[a] > 0 || hi < k[a] - 1;
        wshape[2 + a] = hi - lo[a] + 1;
        q.stride[a] = (int)s[a], q.dilation[a] = (int)d[a], q.padding[a] = (int)(pad[a] - lo[a] * d[a]);
    }
    /* at least half the taps dead: below that, copying the weight's block
     * and adding its gradient back cost about what the dropped products
     * save (measured on deep layers: 921 -> 512 (3,1,1) stride 2 into T = 1,
     * two live taps of three, ran no faster) */
    if (!dead || 2 * wshape[2] * wshape[3] * wshape[4] > g->kvol)
        return 0;
    if (dj_conv_geom_init(&q, xshape, wshape, gt, "conv3d live taps") != DJ_OK) {
        dj_error_clear();
        return 0;
    }
    return gt->To == g->To && gt->Ho == g->Ho && gt->Wo == g->Wo;
}

int64_t dj_conv3d_gemm_taps(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5]) {
    dj_conv_geom g, gt;
    int64_t lo[3];
    if (dj_conv_geom_init(p, in_shape, w_shape, &g, "dj_conv3d_gemm_taps") != DJ_OK) {
        dj_error_clear();
        return 0;
    }
    return dj_conv_trim(&g, &gt, lo) ? gt.kvol : g.kvol;
}

/* floats of the live block's weight and of its gradient (64-byte multiples) */
static int64_t dj_conv_trim_wfloats(const dj_conv_geom *gt) { return (gt->Cout * gt->K + 15) / 16 * 16; }

typedef struct dj_trim_job {
    const dj_conv_geom *g, *gt;
    const int64_t *lo;
    char *w, *wt;
    size_t esize;
    int to_full;
} dj_trim_job;

/* rows [r0, r1) of (Cout * Cin_g), in runs of consecutive taps: the whole
 * live block where only T is trimmed, (kH, kW) planes where T and H are,
 * kW rows otherwise */
static void dj_conv_trim_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_trim_job *j = arg;
    const dj_conv_geom *g = j->g, *gt = j->gt;
    int planes = gt->kW == g->kW, whole = planes && gt->kH == g->kH;
    int64_t per_t = planes ? 1 : gt->kH;                          /* runs per T tap */
    int64_t runs = whole ? 1 : gt->kT * per_t;                    /* runs per r */
    int64_t run = whole ? gt->kvol : planes ? gt->kH * g->kW : gt->kW; /* taps per run */
    (void)thread;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t i = 0; i < runs; i++) {
            int64_t kt = i / per_t, kh = i % per_t; /* the run's first tap */
            int64_t f = r * g->kvol + ((kt + j->lo[0]) * g->kH + kh + j->lo[1]) * g->kW + j->lo[2];
            int64_t l = r * gt->kvol + (kt * gt->kH + kh) * gt->kW;
            if (j->to_full) {
                float *full = (float *)j->w + f;
                const float *live = (const float *)j->wt + l;
                for (int64_t q = 0; q < run; q++)
                    full[q] += live[q];
            } else if (j->esize == sizeof(float)) {
                const float *full = (const float *)j->w + f;
                float *live = (float *)j->wt + l;
                for (int64_t q = 0; q < run; q++)
                    live[q] = full[q];
            } else {
                const uint16_t *full = (const uint16_t *)j->w + f;
                uint16_t *live = (uint16_t *)j->wt + l;
                for (int64_t q = 0; q < run; q++)
                    live[q] = full[q];
            }
        }
}

void dj_conv_trim_copy(dj_threadpool *pool, const dj_conv_geom *g, const dj_conv_geom *gt, const int64_t lo[3],
                       const void *w, void *wt, size_t esize) {
    dj_trim_job j = {g, gt, lo, (char *)w, wt, esize, 0};
    dj_parallel_for(pool, g->Cout * g->Cin_g, 256, dj_conv_trim_rows, &j);
}

void dj_conv_trim_add(dj_threadpool *pool, const dj_conv_geom *g, const dj_conv_geom *gt, const int64_t lo[3],
                      float *dw, const float *dwt) {
    dj_trim_job j = {g, gt, lo, (char *)dw, (char *)dwt, sizeof(float), 1};
    dj_parallel_for(pool, g->Cout * g->Cin_g, 256, dj_conv_trim_rows, &j);
}

/* The float32 forward also batches pointwise convolutions with few
 * positions (r(2+1)d's (3,1,1) convs over T = 1, once trimmed to their live
 * tap: P = 49 at 7x7): per-sample GEMMs of 49 columns fill few panels. */
static int dj_conv_forward_batched_f32(const dj_conv_geom *g) {
    return dj_conv_forward_batched(g) || (g->pointwise && g->N > 1 && g->P < 256);
}

/* bytes of the GEMM paths' scratch: the column block (K, pblock) of the
 * input gradient's col2vol path, or the flipped weight (Cin_g, Cout_g*kvol)
 * of its implicit path (<= that, see dj_conv_dgrad_geom), or the batched
 * forward's output. */
static size_t dj_conv_gemm_scratch(const dj_conv_geom *g) {
    int64_t floats = g->pointwise ? 0 : g->K * g->pblock;
    if (dj_conv_forward_batched_f32(g) && g->Cout_g * g->N * g->P > floats)
        floats = g->Cout_g * g->N * g->P;
    return (size_t)floats * sizeof(float);
}

static size_t dj_conv_scratch_for(const dj_conv_geom *g, int threads) {
    if (g->depthwise)
        return 0;
    if (g->pointwise)
        return dj_conv_gemm_scratch(g);
    size_t wino = dj_wino_scratch_bytes(g, threads);
    size_t direct = dj_conv_direct_ok(g) ? (size_t)dj_conv_direct_floats(g) * sizeof(float) : 0;
    if (wino)
        return wino > direct ? wino : direct; /* every pass is Winograd (or direct): no column block */
    dj_conv_geom gt;
    int64_t lo[3];
    size_t bytes = dj_conv_trim(g, &gt, lo)
                       ? 2 * (size_t)dj_conv_trim_wfloats(&gt) * sizeof(float) + dj_conv_gemm_scratch(&gt)
                       : dj_conv_gemm_scratch(g);
    return direct > bytes ? direct : bytes;
}

/* The geometry for the scratch-size queries: 0 (and no error left set) when
 * the shapes are not a valid convolution; the operator itself reports why. */
int dj_conv_geom_quiet(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                              dj_conv_geom *g, const char *who) {
    if (!inp || !weight || inp->ndim != 5 || weight->ndim != 5)
        return 0;
    if (dj_conv_geom_init(p, inp->shape, weight->shape, g, who) != DJ_OK) {
        dj_error_clear();
        return 0;
    }
    return 1;
}

size_t dj_conv3d_scratch_bytes(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                               int threads) {
    dj_conv_geom g;
    return dj_conv_geom_quiet(p, inp, weight, &g, "dj_conv3d_scratch_bytes") ? dj_conv_scratch_for(&g, threads) : 0;
}

static dj_status dj_conv_scratch(const dj_exec *ex, const dj_conv_geom *g, float **col, const char *who) {
    size_t need = dj_conv_scratch_for(g, 1); /* Winograd: less than a slot per thread runs on fewer */
    *col = NULL;
    if (need == 0)
        return DJ_OK;
    if (!ex || !ex->scratch || ex->scratch_bytes < need)
        return dj_error_set(DJ_ERR_INVALID, who, "scratch of %zu bytes given, %zu needed (dj_conv3d_scratch_bytes)",
                            ex && ex->scratch ? ex->scratch_bytes : (size_t)0, need);
    *col = ex->scratch;
    return DJ_OK;
}

/* ---------------------------------------------------------------- vol2col / col2vol */

/* 1 where the stride-2 reads may use AVX-512 (read once: DOJO_CPU is fixed
 * for a process; a race writes the same value) */
static int dj_conv_gather2_fast(void) {
    static int fast = -1;
    if (fast < 0)
        fast = dj_cpu_best_isa() >= DJ_CPU_ISA_AVX512;
    return fast;
}

/* dst[q] = src[q * stride], q < n */
static inline void dj_gather(const float *src, int64_t stride, int64_t n, float *dst) {
#if defined(__x86_64__)
    if (stride == 2 && n >= 8 && dj_conv_gather2_fast()) {
        dj_conv_gather2_avx512(src, n, dst);
        return;
    }
#endif
    for (int64_t q = 0; q < n; q++)
        dst[q] = src[q * stride];
}

/* dst[0, pb) = column row r of x for output positions [p0, p0+pb). */
static void dj_vol2col_row(const dj_conv_geom *g, const float *x, int64_t r, int64_t p0, int64_t pb, float *dst) {
    DJ_COL_ROW_WALK(g, r, p0, pb, {
        float *d = dst + j0;
        for (int64_t q = 0; q < lo; q++)
            d[q] = 0.0f;
        if (hi > lo) {
            const float *src = x + plane + iw0;
            if (g->sw == 1)
                memcpy(d + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
            else
                dj_gather(src + lo * g->sw, g->sw, hi - lo, d + lo);
        }
        for (int64_t q = hi; q < seg; q++)
            d[q] = 0.0f;
    });
}

void dj_conv_col2vol_channels(void *arg, int64_t c0, int64_t c1, int thread) {
    const dj_col_job *j = arg;
    const dj_conv_geom *g = j->g;
    (void)thread;
    for (int64_t r = c0 * g->kvol; r < c1 * g->kvol; r++) {
        const float *srow = j->col + r * j->pb;
        DJ_COL_ROW_WALK(g, r, j->p0, j->pb, {
            if (hi > lo) {
                float *dst = j->dx + plane + iw0;
                const float *s = srow + j0;
                if (g->sw == 1) {
                    for (int64_t q = lo; q < hi; q++)
                        dst[q] += s[q];
                } else {
                    for (int64_t q = lo; q < hi; q++)
                        dst[q * g->sw] += s[q];
                }
            }
        });
    }
}

/* ---------------------------------------------------------------- implicit GEMM
 * The packing functions of dj_sgemm_packed_b: they gather the column matrix
 * col (K, P) of one sample and group straight into the GEMM's panels, so no
 * column buffer is written and read back (the values, and so the results,
 * are those of vol2col + dj_sgemm). */

/* Where the next column of one panel row goes: panel row `d` (nr floats;
 * the same row of the next panel is `step` floats on), column `lane`. */
typedef struct dj_panel_cursor {
    float *d;
    int64_t step;
    int lane, nr;
} dj_panel_cursor;

/* Appends len values src[q * stride] (zeros for src NULL) to the row. Runs
 * are short (a row of the output, cut at panel edges): plain loops, no
 * library calls, no divisions. */
static inline void dj_panel_put(dj_panel_cursor *c, const float *src, int64_t stride, int64_t len) {
    while (len > 0) {
        int n = c->nr - c->lane < len ? c->nr - c->lane : (int)len;
        float *d = c->d + c->lane;
        if (!src)
            for (int q = 0; q < n; q++)
                d[q] = 0.0f;
        else if (stride == 1)
            for (int q = 0; q < n; q++)
                d[q] = src[q];
        else
            dj_gather(src, stride, n, d);
        if (src)
            src += n * stride;
        len -= n, c->lane += n;
        if (c->lane == c->nr)
            c->lane = 0, c->d += c->step;
    }
}

/* Forward, B = col: rows k0.. of col (channel and kernel offset), columns
 * c0..c0+nc as the panel columns. Column c is output position c % P of
 * sample c / P (x + (c / P) * xs), so one GEMM can span several samples. */
static void dj_conv_pack_col(void *ctx, int64_t k0, int64_t kc, int64_t c0, int64_t nc, int nr, float *dst,
                             float *tmp) {
    const dj_col_job *j = ctx;
    const dj_conv_geom *g = j->g;
    (void)tmp;
    int64_t padded = (nc + nr - 1) / nr * nr;
    for (int64_t r = k0; r < k0 + kc; r++) {
        dj_panel_cursor c = {dst + (r - k0) * nr, kc * nr, 0, nr};
        for (int64_t col = c0; col < c0 + nc;) {
            int64_t p0 = col % g->P, np = g->P - p0 < c0 + nc - col ? g->P - p0 : c0 + nc - col;
            const float *x = j->x + col / g->P * j->xs;
            DJ_COL_ROW_WALK(g, r, p0, np, {
                (void)j0;
                dj_panel_put(&c, NULL, 0, lo);
                if (hi > lo)
                    dj_panel_put(&c, x + plane + iw0 + lo * g->sw, g->sw, hi - lo);
                dj_panel_put(&c, NULL, 0, seg - hi);
            });
            col += np;
        }
        dj_panel_put(&c, NULL, 0, padded - nc);
    }
}

/* Weight gradient, B = col^T: output positions k0..k0+kc are the k of the
 * GEMM, rows r0..r0+nr of col the panel columns; each panel's rows are
 * gathered into tmp (nr x kc) and transposed into place. */
static void dj_conv_pack_colt(void *ctx, int64_t k0, int64_t kc, int64_t r0, int64_t nrows, int nr, float *dst,
                              float *tmp) {
    const dj_col_job *j = ctx;
    for (int64_t jr = 0; jr < nrows; jr += nr) {
        int64_t n = nrows - jr < nr ? nrows - jr : nr;
        for (int64_t i = 0; i < n; i++)
            dj_vol2col_row(j->g, j->x, r0 + jr + i, k0, kc, tmp + i * kc);
        dj_sgemm_pack_rows(tmp, kc, n, kc, nr, dst + jr * kc);
    }
}

/* ---------------------------------------------------------------- depthwise (Cin_g == 1) */

typedef struct dj_dw_job {
    const dj_conv_geom *g;
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw;
} dj_dw_job;

/* Walks every (kernel offset k, output row (to,ho)) pair with a valid input
 * row; BODY sees k, the output row offset orow, the input row offset irow
 * (into one channel plane), iw0 and the valid output range [lo, hi). */
#define DJ_DW_WALK(g, BODY)                                                                \
    for (int64_t kt = 0; kt < (g)->kT; kt++)                                               \
        for (int64_t kh = 0; kh < (g)->kH; kh++)                                           \
            for (int64_t kw = 0; kw < (g)->kW; kw++) {                                     \
                int64_t k = (kt * (g)->kH + kh) * (g)->kW + kw;                            \
                int64_t iw0 = kw * (g)->dw - (g)->pw, lo, hi;                              \
                dj_valid_range(iw0, (g)->sw, (g)->W, (g)->Wo, &lo, &hi);                   \
                if (hi <= lo)                                                              \
                    continue;                                                              \
                for (int64_t to = 0; to < (g)->To; to++) {                                 \
                    int64_t it = to * (g)->st - (g)->pt + kt * (g)->dt;                    \
                    if (it < 0 || it >= (g)->T)                                            \
                        continue;                                                          \
                    for (int64_t ho = 0; ho < (g)->Ho; ho++) {                             \
                        int64_t ih = ho * (g)->sh - (g)->ph + kh * (g)->dh;                \
                        if (ih < 0 || ih >= (g)->H)                                        \
                            continue;                                                      \
                        int64_t orow = (to * (g)->Ho + ho) * (g)->Wo;                      \
                        int64_t irow = (it * (g)->H + ih) * (g)->W + iw0;                  \
                        BODY;                                                              \
                    }                                                                      \
                }                                                                          \
            }

/* rows = n*Cout + oc */
static void dj_dw_forward_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_dw_job *j = arg;
    const dj_conv_geom *g = j->g;
    (void)thread;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->Cout, oc = r % g->Cout, ic = oc / g->Cout_g;
        float *y = j->y + r * g->P;
        const float *x = j->x + (n * g->Cin + ic) * g->S;
        const float *w = j->w + oc * g->kvol;
        float b = j->b ? j->b[oc] : 0.0f;
        for (int64_t q = 0; q < g->P; q++)
            y[q] = b;
        DJ_DW_WALK(g, {
            float wk = w[k];
            float *yo = y + orow;
            const float *xi = x + irow;
            for (int64_t q = lo; q < hi; q++)
                yo[q] += wk * xi[q * g->sw];
        });
    }
}

/* rows = n*Cin + ic; sums the Cout_g output channels of the group in order. */
static void dj_dw_dinput_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_dw_job *j = arg;
    const dj_conv_geom *g = j->g;
    (void)thread;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / g->Cin, ic = r % g->Cin;
        float *dx = j->dx + r * g->S;
        for (int64_t m = 0; m < g->Cout_g; m++) {
            int64_t oc = ic * g->Cout_g + m;
            const float *dy = j->dy + (n * g->Cout + oc) * g->P;
            const float *w = j->w + oc * g->kvol;
            DJ_DW_WALK(g, {
                float wk = w[k];
                const float *d = dy + orow;
                float *xi = dx + irow;
                for (int64_t q = lo; q < hi; q++)
                    xi[q * g->sw] += wk * d[q];
            });
        }
    }
}

/* rows = oc; sums over n in order. */
static void dj_dw_dweight_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_dw_job *j = arg;
    const dj_conv_geom *g = j->g;
    (void)thread;
    for (int64_t oc = r0; oc < r1; oc++) {
        int64_t ic = oc / g->Cout_g;
        float *dw = j->dw + oc * g->kvol;
        for (int64_t n = 0; n < g->N; n++) {
            const float *dy = j->dy + (n * g->Cout + oc) * g->P;
            const float *x = j->x + (n * g->Cin + ic) * g->S;
            DJ_DW_WALK(g, {
                const float *d = dy + orow;
                const float *xi = x + irow;
                float acc = 0.0f;
                for (int64_t q = lo; q < hi; q++)
                    acc += d[q] * xi[q * g->sw];
                dw[k] += acc;
            });
        }
    }
}

/* ---------------------------------------------------------------- bias */

void dj_conv_bias_add_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_bias_job *j = arg;
    (void)thread;
    for (int64_t r = r0; r < r1; r++) {
        float b = j->b[r % j->g->Cout];
        float *y = j->y + r * j->g->P;
        for (int64_t q = 0; q < j->g->P; q++)
            y[q] += b;
    }
}

void dj_conv_bias_grad_rows(void *arg, int64_t c0, int64_t c1, int thread) {
    const dj_bias_job *j = arg;
    const dj_conv_geom *g = j->g;
    (void)thread;
    for (int64_t c = c0; c < c1; c++) {
        double acc = 0.0;
        for (int64_t n = 0; n < g->N; n++) {
            acc += dj_sum_f32(j->dy + (n * g->Cout + c) * g->P, g->P, 0.0f, NULL);
        }
        j->db[c] += (float)acc;
    }
}

/* ---------------------------------------------------------------- direct (few input channels) */

typedef struct dj_direct_job {
    const dj_conv_geom *g;
    const float *x, *w, *b, *dy;
    float *y, *dw, *xp;
} dj_direct_job;

static void dj_direct_phase_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_direct_job *j = arg;
    (void)thread;
#if defined(__x86_64__)
    dj_conv_direct_phases_avx512(j->g, j->x, j->xp, r0, r1);
#else
    (void)j, (void)r0, (void)r1;
#endif
}

static void dj_direct_forward_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_direct_job *j = arg;
    (void)thread;
#if defined(__x86_64__)
    dj_conv_direct_forward_avx512(j->g, j->xp, j->w, j->b, j->y, r0, r1);
#else
    (void)j, (void)r0, (void)r1;
#endif
}

static void dj_direct_wgrad_units(void *arg, int64_t u0, int64_t u1, int thread) {
    const dj_direct_job *j = arg;
    (void)thread;
#if defined(__x86_64__)
    dj_conv_direct_wgrad_avx512(j->g, j->xp, j->dy, j->dw, j->xp + dj_conv_direct_xp_floats(j->g), u0, u1);
#else
    (void)j, (void)u0, (void)u1;
#endif
}

/* ---------------------------------------------------------------- forward */

/* One GEMM over all samples, ybuf (Cout_g, N*P) = W_g @ col of every
 * sample, so the GEMM's columns fill whole panels; then ybuf is laid out
 * into y. Each output element is the same sum as in a per-sample GEMM.
 * ybuf is the scratch (dj_conv_scratch_for sizes it). */
static dj_status dj_conv_forward_batch(dj_threadpool *pool, const dj_conv_geom *g, const float *x, const float *w,
                                       float *y, float *ybuf) {
    for (int64_t gi = 0; gi < g->G; gi++) {
        dj_col_job cj = {g, x + gi * g->Cin_g * g->S, NULL, NULL, 0, g->P, g->Cin * g->S};
        DJ_TRY(dj_sgemm_packed_b(pool, DJ_NO_TRANS, g->Cout_g, g->N * g->P, g->K, 1.0f, w + gi * g->Cout_g * g->K,
                                 g->K, dj_conv_pack_col, &cj, 0.0f, ybuf, g->N * g->P));
        for (int64_t n = 0; n < g->N; n++)
            for (int64_t c = 0; c < g->Cout_g; c++)
                memcpy(y + (n * g->Cout + gi * g->Cout_g + c) * g->P, ybuf + c * g->N * g->P + n * g->P,
                       (size_t)g->P * sizeof(float));
    }
    return DJ_OK;
}

static dj_status dj_conv_forward_gemm(const dj_exec *ex, const dj_conv_geom *g, const float *x, const float *w,
                                      float *y, float *col) {
    dj_threadpool *pool = ex ? ex->pool : NULL;
    if (dj_conv_forward_batched_f32(g))
        return dj_conv_forward_batch(pool, g, x, w, y, col);
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t gi = 0; gi < g->G; gi++) {
            const float *xg = x + (n * g->Cin + gi * g->Cin_g) * g->S;
            const float *wg = w + gi * g->Cout_g * g->K;
            float *yg = y + (n * g->Cout + gi * g->Cout_g) * g->P;
            if (g->pointwise) {
                DJ_TRY(dj_sgemm(pool, DJ_NO_TRANS, DJ_NO_TRANS, g->Cout_g, g->P, g->K, 1.0f, wg, g->K, xg, g->P, 0.0f,
                                yg, g->P));
                continue;
            }
            dj_col_job cj = {g, xg, NULL, NULL, 0, g->P, 0};
            DJ_TRY(dj_sgemm_packed_b(pool, DJ_NO_TRANS, g->Cout_g, g->P, g->K, 1.0f, wg, g->K, dj_conv_pack_col, &cj,
                                     0.0f, yg, g->P));
        }
    (void)col;
    return DJ_OK;
}

dj_status dj_conv3d_forward(const dj_exec *ex, const dj_conv3d_params *p, const dj_tensor *inp,
                            const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out) {
    static const char who[] = "dj_conv3d_forward";
    dj_conv_geom g;
    float *col = NULL;
    DJ_TRY(dj_conv_setup(p, inp, weight, &g, who));
    DJ_TRY(dj_conv_check(&g, DJ_DTYPE_F32, inp, weight, bias, out, who));
    DJ_TRY(dj_conv_scratch(ex, &g, &col, who));
    dj_threadpool *pool = ex ? ex->pool : NULL;
    const float *x = inp->data, *w = weight->data, *b = bias ? bias->data : NULL;
    float *y = out->data;
    if (g.N == 0)
        return DJ_OK;
    if (g.depthwise) {
        dj_dw_job j = {&g, x, w, b, NULL, y, NULL, NULL};
        dj_parallel_for(pool, g.N * g.Cout, 1, dj_dw_forward_rows, &j);
        return DJ_OK;
    }
    if (dj_wino_plan(&g, NULL, NULL))
        return dj_wino_forward(pool, &g, x, w, b, y, col, ex->scratch_bytes);
    if (dj_conv_direct_ok(&g)) {
        dj_direct_job dj = {&g, x, w, b, NULL, y, NULL, col};
        dj_parallel_for(pool, g.N * g.Cin * g.T * g.H, 16, dj_direct_phase_rows, &dj);
        dj_parallel_for(pool, g.N * g.To * g.Ho, 1, dj_direct_forward_rows, &dj);
        return DJ_OK;
    }
    dj_conv_geom gt;
    int64_t lo[3];
    if (dj_conv_trim(&g, &gt, lo)) {
        float *wt = col;
        dj_conv_trim_copy(pool, &g, &gt, lo, w, wt, sizeof(float));
        DJ_TRY(dj_conv_forward_gemm(ex, &gt, x, wt, y, col + 2 * dj_conv_trim_wfloats(&gt)));
    } else {
        DJ_TRY(dj_conv_forward_gemm(ex, &g, x, w, y, col));
    }
    if (b) {
        dj_bias_job bj = {&g, b, NULL, y, NULL};
        dj_parallel_for(pool, g.N * g.Cout, 4, dj_conv_bias_add_rows, &bj);
    }
    return DJ_OK;
}

/* ---------------------------------------------------------------- backward */

/* Input gradient of a stride-1 conv as a convolution itself: dx = dy
 * convolved with the weight flipped on all three axes and Cin/Cout swapped,
 * padding d*(k-1) - p on each axis (which must be >= 0). The GEMM
 *   dx_g (Cin_g, S) += W'_g (Cin_g, Cout_g*kvol) @ col(dy_g) (Cout_g*kvol, S)
 * gathers col(dy) into its panels: no column buffer, no col2vol pass.
 * g2 gets that convolution's geometry; 0 when the shape does not allow it.
 * (The float32 caller also chooses by channel counts and needs W' to fit
 * in its scratch, see dj_conv_backward_gemm.) */
int dj_conv_dgrad_geom(const dj_conv_geom *g, dj_conv_geom *g2) {
    int64_t k[3] = {g->kT, g->kH, g->kW}, d[3] = {g->dt, g->dh, g->dw}, pad[3] = {g->pt, g->ph, g->pw};
    dj_conv3d_params q = {{1, 1, 1}, {0, 0, 0}, {0, 0, 0}, 1, 0};
    if (g->st != 1 || g->sh != 1 || g->sw != 1)
        return 0;
    for (int a = 0; a < 3; a++) {
        int64_t p2 = d[a] * (k[a] - 1) - pad[a];
        if (p2 < 0 || p2 > 1 << 20)
            return 0;
        q.padding[a] = (int)p2, q.dilation[a] = (int)d[a];
    }
    int64_t in[5] = {1, g->Cout_g, g->To, g->Ho, g->Wo}, w[5] = {g->Cin_g, g->Cout_g, g->kT, g->kH, g->kW};
    if (dj_conv_geom_init(&q, in, w, g2, "conv3d input gradient") != DJ_OK) {
        dj_error_clear();
        return 0;
    }
    return g2->To == g->T && g2->Ho == g->H && g2->Wo == g->W;
}

/* wt (Cin_g, Cout_g*kvol) = the weight of group gi, kernel flipped:
 * wt[c][oc*kvol + k] = w[oc][c][kvol-1-k]. */
static void dj_conv_flip_weight(const dj_conv_geom *g, const float *wg, float *wt) {
    for (int64_t c = 0; c < g->Cin_g; c++)
        for (int64_t oc = 0; oc < g->Cout_g; oc++) {
            const float *src = wg + oc * g->K + c * g->kvol;
            float *dst = wt + c * g->Cout_g * g->kvol + oc * g->kvol;
            for (int64_t k = 0; k < g->kvol; k++)
                dst[k] = src[g->kvol - 1 - k];
        }
}

static dj_status dj_conv_dgrad_implicit(dj_threadpool *pool, const dj_conv_geom *g, const dj_conv_geom *g2,
                                        const float *w, const float *dy, float *dx, float *wt) {
    int64_t K2 = g->Cout_g * g->kvol;
    for (int64_t gi = 0; gi < g->G; gi++) {
        dj_conv_flip_weight(g, w + gi * g->Cout_g * g->K, wt);
        for (int64_t n = 0; n < g->N; n++) {
            dj_col_job cj = {g2, dy + (n * g->Cout + gi * g->Cout_g) * g->P, NULL, NULL, 0, g->S, 0};
            DJ_TRY(dj_sgemm_packed_b(pool, DJ_NO_TRANS, g->Cin_g, g->S, K2, 1.0f, wt, K2, dj_conv_pack_col, &cj,
                                     1.0f, dx + (n * g->Cin + gi * g->Cin_g) * g->S, g->S));
        }
    }
    return DJ_OK;
}

static dj_status dj_conv_backward_gemm(const dj_exec *ex, const dj_conv_geom *g, const float *x, const float *w,
                                       const float *dy, float *dx, float *dw, float *col) {
    dj_threadpool *pool = ex ? ex->pool : NULL;
    dj_conv_geom g2;
    /* Cout_g <= Cin_g: measured on r3d_18 / r2plus1d_18 shapes (Zen 4), the
     * implicit GEMM (M = Cin_g rows) wins there; with more output than input
     * channels ((1,3,3) 64->144) the column GEMM (M = Cin_g*kvol) + col2vol
     * was faster. col (K * pblock) holds W' (Cin_g * Cout_g * kvol) when
     * Cout_g <= pblock. */
    if (dx && !g->pointwise && g->Cout_g <= g->Cin_g && g->Cout_g <= g->pblock && dj_conv_dgrad_geom(g, &g2)) {
        DJ_TRY(dj_conv_dgrad_implicit(pool, g, &g2, w, dy, dx, col));
        dx = NULL;
    }
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t gi = 0; gi < g->G; gi++) {
            const float *xg = x + (n * g->Cin + gi * g->Cin_g) * g->S;
            const float *wg = w + gi * g->Cout_g * g->K;
            const float *dyg = dy + (n * g->Cout + gi * g->Cout_g) * g->P;
            float *dwg = dw ? dw + gi * g->Cout_g * g->K : NULL;
            float *dxg = dx ? dx + (n * g->Cin + gi * g->Cin_g) * g->S : NULL;
            if (g->pointwise) {
                if (dwg)
                    DJ_TRY(dj_sgemm(pool, DJ_NO_TRANS, DJ_TRANS, g->Cout_g, g->K, g->P, 1.0f, dyg, g->P, xg, g->P,
                                    1.0f, dwg, g->K));
                if (dxg)
                    DJ_TRY(dj_sgemm(pool, DJ_TRANS, DJ_NO_TRANS, g->K, g->P, g->Cout_g, 1.0f, wg, g->K, dyg, g->P,
                                    1.0f, dxg, g->P));
                continue;
            }
            if (dwg) { /* dW_g += dy (Cout_g, P) @ col^T (P, K), col gathered into the panels */
                dj_col_job cj = {g, xg, NULL, NULL, 0, g->P, 0};
                DJ_TRY(dj_sgemm_packed_b(pool, DJ_NO_TRANS, g->Cout_g, g->K, g->P, 1.0f, dyg, g->P, dj_conv_pack_colt,
                                         &cj, 1.0f, dwg, g->K));
            }
            for (int64_t p0 = 0; dxg && p0 < g->P; p0 += g->pblock) {
                int64_t pb = g->P - p0 < g->pblock ? g->P - p0 : g->pblock;
                dj_col_job cj = {g, xg, dxg, col, p0, pb, 0};
                DJ_TRY(dj_sgemm(pool, DJ_TRANS, DJ_NO_TRANS, g->K, pb, g->Cout_g, 1.0f, wg, g->K, dyg + p0, g->P, 0.0f,
                                col, pb));
                dj_parallel_for(pool, g->Cin_g, 1, dj_conv_col2vol_channels, &cj);
            }
        }
    return DJ_OK;
}

/* The backward's gradient tensors against the geometry (float32; dinp,
 * dweight and dbias may be NULL). */
dj_status dj_conv_check_grads(const dj_conv_geom *g, const dj_tensor *inp, const dj_tensor *weight,
                                     const dj_tensor *dout, const dj_tensor *dinp, const dj_tensor *dweight,
                                     const dj_tensor *dbias, const char *who) {
    int64_t o_shape[5] = {g->N, g->Cout, g->To, g->Ho, g->Wo};
    char what[96];
    snprintf(what, sizeof what, "%s output gradient", who);
    DJ_TRY(dj_tensor_expect(dout, DJ_DTYPE_F32, 5, o_shape, what));
    DJ_TRY(dj_expect_vec(dbias, DJ_DTYPE_F32, g->Cout, 1, who, "bias gradient"));
    if (dinp)
        DJ_TRY(dj_expect_like(dinp, DJ_DTYPE_F32, inp, who, "input gradient"));
    if (dweight)
        DJ_TRY(dj_expect_like(dweight, DJ_DTYPE_F32, weight, who, "weight gradient"));
    return DJ_OK;
}

dj_status dj_conv3d_backward(const dj_exec *ex, const dj_conv3d_params *p, const dj_tensor *inp,
                             const dj_tensor *weight, const dj_tensor *dout, dj_tensor *dinp, dj_tensor *dweight,
                             dj_tensor *dbias) {
    static const char who[] = "dj_conv3d_backward";
    dj_conv_geom g;
    float *col = NULL;
    DJ_TRY(dj_conv_setup(p, inp, weight, &g, who));
    DJ_TRY(dj_conv_check(&g, DJ_DTYPE_F32, inp, weight, NULL, NULL, who));
    DJ_TRY(dj_conv_check_grads(&g, inp, weight, dout, dinp, dweight, dbias, who));
    DJ_TRY(dj_conv_scratch(ex, &g, &col, who));
    dj_threadpool *pool = ex ? ex->pool : NULL;
    const float *x = inp->data, *w = weight->data, *dy = dout->data;
    float *dx = dinp ? dinp->data : NULL, *dw = dweight ? dweight->data : NULL;
    if (g.N == 0)
        return DJ_OK;
    if (dbias) {
        dj_bias_job bj = {&g, NULL, dy, NULL, dbias->data};
        dj_parallel_for(pool, g.Cout, 1, dj_conv_bias_grad_rows, &bj);
    }
    if (g.depthwise) {
        dj_dw_job j = {&g, x, w, NULL, dy, NULL, dx, dw};
        if (dx)
            dj_parallel_for(pool, g.N * g.Cin, 1, dj_dw_dinput_rows, &j);
        if (dw)
            dj_parallel_for(pool, g.Cout, 1, dj_dw_dweight_rows, &j);
        return DJ_OK;
    }
    if (!dx && !dw)
        return DJ_OK;
    if (dw && dj_conv_direct_ok(&g)) {
        dj_direct_job dj = {&g, x, w, NULL, dy, NULL, dw, col};
        dj_parallel_for(pool, g.N * g.Cin * g.T * g.H, 16, dj_direct_phase_rows, &dj);
        dj_parallel_for(pool, (g.Cout + DJ_DIRECT_CB - 1) / DJ_DIRECT_CB, 1, dj_direct_wgrad_units, &dj);
        dw = NULL;
        if (!dx)
            return DJ_OK;
    }
    if (dj_wino_plan(&g, NULL, NULL))
        return dj_wino_backward(pool, &g, x, w, dy, dx, dw, col, ex->scratch_bytes);
    dj_conv_geom gt;
    int64_t lo[3];
    if (!dj_conv_trim(&g, &gt, lo))
        return dj_conv_backward_gemm(ex, &g, x, w, dy, dx, dw, col);
    float *wt = col, *dwt = col + dj_conv_trim_wfloats(&gt);
    if (dx) /* the weight gradient does not read the weight */
        dj_conv_trim_copy(pool, &g, &gt, lo, w, wt, sizeof(float));
    if (dw)
        memset(dwt, 0, (size_t)gt.Cout * (size_t)gt.K * sizeof(float));
    DJ_TRY(dj_conv_backward_gemm(ex, &gt, x, wt, dy, dx, dw ? dwt : NULL, col + 2 * dj_conv_trim_wfloats(&gt)));
    if (dw)
        dj_conv_trim_add(pool, &g, &gt, lo, dw, dwt);
    return DJ_OK;
}
