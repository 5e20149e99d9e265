/* conv3d_bf16.c — 3-D convolution in mixed precision: bf16 operands, float32
 * sums and outputs (dj_conv3d_forward_bf16 / dj_conv3d_backward_bf16), the
 * design of the float32 conv3d.c on the bf16 GEMM (dj_gemm_bf16_packed_b):
 * - the input (and the output gradient) of one sample and group is rounded
 *   to bf16 once (round to nearest even, as PyTorch), then the column
 *   matrix col (K = Cin_g*kvol, P) is gathered from that bf16 volume
 *   straight into the GEMM's k-pair panels, never stored whole:
 *     forward   out  = W_g (Cout_g, K) @ col
 *     weight    dW_g += dout_g (Cout_g, nb*P) @ col^T  (batches in order)
 *     input     stride 1: dinp += the conv of dout with the flipped bf16
 *               weight (Cin_g, Cout_g*kvol), an implicit GEMM too;
 *               otherwise dcol = W_g^T @ dout_g per block of positions, and
 *               col2vol adds it into dinp.
 *   Each GEMM spans nb samples: all of them for deep layers (P < 256, so
 *   that the GEMM's columns fill its panels), one otherwise. The gatherers
 *   have a portable form here and an AVX-512 one (conv3d_bf16_avx512.c)
 *   that gives the same values.
 * - pointwise convolutions use the rounded volume as the matrix itself;
 *   depthwise-style ones (Cin_g == 1) have no GEMM and stay float32.
 * The weight's bf16 copy comes from the caller (the graph refreshes it once
 * per step). dj_gemm_bf16 never splits K over threads and rounding is per
 * element, so results are bit-identical for any thread count, and the
 * converted GEMM path (no avx512_bf16) gives the native bits.
 *
 * Scratch (dj_conv3d_scratch_bytes_bf16), 64-byte aligned parts:
 *   xb   bf16 (nb, Cin_g, S)            input of nb samples
 *   dyb  bf16 (Cout_g, nb*P)            output gradient (backward)
 *   wt   bf16 (G, Cin_g, Cout_g*kvol)   flipped weight (stride-1 input grad)
 *   work float (Cout_g, nb*P) batched forward output; backward: the batch's
 *        input gradient (Cin_g, nb*S), or dcol (K, pblock) */
#include <string.h>

#include "dojo/cpu.h"
#include "dojo/gemm.h"
#include "nn/bf16_internal.h"
#include "nn/conv3d_internal.h"

/* ---------------------------------------------------------------- scratch */

typedef struct dj_convb_parts {
    size_t xb, dyb, wt, work; /* bytes of each part, each a multiple of 64 */
} dj_convb_parts;

static dj_convb_parts dj_convb_parts_for(const dj_conv_geom *g, int backward) {
    dj_convb_parts q = {0, 0, 0, 0};
    if (g->depthwise)
        return q;
    int64_t nb = dj_conv_forward_batched(g) ? g->N : 1; /* samples per GEMM */
    dj_conv_geom g2;
    int implicit = !g->pointwise && dj_conv_dgrad_geom(g, &g2);
    size_t work = 0;
    q.xb = dj_bf16_align((size_t)(g->Cin_g * g->S * nb) * sizeof(uint16_t));
    if (!backward) {
        if (nb > 1)
            work = (size_t)(g->Cout_g * nb * g->P) * sizeof(float);
    } else {
        q.dyb = dj_bf16_align((size_t)(g->Cout_g * nb * g->P) * sizeof(uint16_t));
        if (implicit)
            q.wt = dj_bf16_align((size_t)(g->Cout * g->K) * sizeof(uint16_t));
        if (implicit && nb > 1)
            work = (size_t)(g->Cin_g * nb * g->S) * sizeof(float);
        else if (!implicit && !g->pointwise)
            work = (size_t)(g->K * g->pblock) * sizeof(float);
    }
    q.work = dj_bf16_align(work);
    return q;
}

static size_t dj_convb_bytes(dj_convb_parts q) { return q.xb + q.dyb + q.wt + q.work; }

/* A convolution with dead taps (dj_conv_trim) runs its live block: the
 * block's bf16 weight and float32 weight gradient come first. */
static size_t dj_convb_trim_bytes(const dj_conv_geom *gt) {
    return dj_bf16_align((size_t)(gt->Cout * gt->K) * sizeof(uint16_t)) +
           dj_bf16_align((size_t)(gt->Cout * gt->K) * sizeof(float));
}

/* One buffer serves both passes: the larger of the two layouts. */
static size_t dj_conv_bf16_scratch_for(const dj_conv_geom *g) {
    dj_conv_geom gt;
    int64_t lo[3];
    size_t trim = 0;
    if (!g->depthwise && dj_conv_trim(g, &gt, lo))
        trim = dj_convb_trim_bytes(&gt), g = &gt;
    size_t f = dj_convb_bytes(dj_convb_parts_for(g, 0)), b = dj_convb_bytes(dj_convb_parts_for(g, 1));
    return trim + (f > b ? f : b);
}

size_t dj_conv3d_scratch_bytes_bf16(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight) {
    dj_conv_geom g;
    return dj_conv_geom_quiet(p, inp, weight, &g, "dj_conv3d_scratch_bytes_bf16") ? dj_conv_bf16_scratch_for(&g) : 0;
}

/* ---------------------------------------------------------------- packing
 * The packing functions of dj_gemm_bf16_packed_b: they gather col of a bf16
 * volume (the values vol2col would write) into the GEMM's panels. */

/* The runs of columns c0..c0+nc (column c: output position c % P of sample
 * c / P); at most nc of them. Returns how many. */
static int64_t dj_colb_runs(const dj_colb_job *j, int64_t c0, int64_t nc, dj_colb_run *runs) {
    const dj_conv_geom *g = j->g;
    int64_t n = 0, s = c0 / g->P, p = c0 % g->P;
    int64_t to = p / (g->Ho * g->Wo), ho = (p / g->Wo) % g->Ho, wo = p % g->Wo;
    for (int64_t col = c0; col < c0 + nc;) {
        int64_t seg = g->Wo - wo < c0 + nc - col ? g->Wo - wo : c0 + nc - col;
        runs[n++] = (dj_colb_run){j->x + s * j->xs, (int32_t)(col - c0), (int32_t)seg,
                                  (int32_t)(to * g->st - g->pt), (int32_t)(ho * g->sh - g->ph),
                                  (int32_t)(wo * g->sw - g->pw)};
        col += seg, wo += seg;
        if (wo == g->Wo && (wo = 0, ++ho == g->Ho) && (ho = 0, ++to == g->To))
            to = 0, s++;
    }
    return n;
}

static dj_colb_rowpos dj_colb_rowpos_at(const dj_conv_geom *g, int64_t r) {
    int64_t k = r % g->kvol;
    return (dj_colb_rowpos){r / g->kvol, k / (g->kH * g->kW), (k / g->kW) % g->kH, k % g->kW};
}

static void dj_colb_rowpos_next(const dj_conv_geom *g, dj_colb_rowpos *q) {
    if (++q->kw < g->kW)
        return;
    q->kw = 0;
    if (++q->kh < g->kH)
        return;
    q->kh = 0;
    if (++q->kt < g->kT)
        return;
    q->kt = 0, q->c++;
}

/* line[run.j0 + q] = col row q (channel, kernel offset) at each run's
 * columns: a copy of an input row (strided when sw > 1), zeros in padding.
 * Plain loops (no library calls) over short runs. */
static void dj_colb_row(const dj_colb_job *j, const dj_colb_run *runs, int64_t nruns, dj_colb_rowpos q,
                        uint16_t *line) {
    const dj_conv_geom *g = j->g;
    int64_t toff = q.kt * g->dt, hoff = q.kh * g->dh, woff = q.kw * g->dw, coff = q.c * j->cs;
    for (int64_t i = 0; i < nruns; i++) {
        const dj_colb_run *u = &runs[i];
        uint16_t *d = line + u->j0;
        int64_t it = u->it + toff, ih = u->ih + hoff, iw0 = u->iw + woff, seg = u->seg, lo = 0, hi = 0;
        if (it >= 0 && it < g->T && ih >= 0 && ih < g->H)
            dj_valid_range(iw0, g->sw, g->W, seg, &lo, &hi);
        for (int64_t k = 0; k < lo; k++)
            d[k] = 0;
        if (hi > lo) {
            const uint16_t *src = u->x + coff + (it * g->H + ih) * g->W + iw0;
            if (g->sw == 1)
                for (int64_t k = lo; k < hi; k++)
                    d[k] = src[k];
            else
                for (int64_t k = lo; k < hi; k++)
                    d[k] = src[k * g->sw];
        }
        for (int64_t k = hi; k < seg; k++)
            d[k] = 0;
    }
}

/* Parts of the packers' tmp (DJ_GEMM_BF16_PACK_TMP = 128 KiB): gathered
 * rows first (at most 64 KiB), then the runs (at most 1024 x 32 bytes, as
 * nc and kc are at most the bf16 plans' 1024). */
enum { DJ_COLB_RUNS_AT = 65536 };
_Static_assert(DJ_COLB_RUNS_AT + 1024 * sizeof(dj_colb_run) <= DJ_GEMM_BF16_PACK_TMP, "packer tmp too small");

/* B = col: rows k0..k0+kc of col, columns c0..c0+nc. Gathers 8 rows at a
 * time into lines (8 x 1024 bf16 at most: nc <= the plan's NC = 1024),
 * then interleaves them into pairs. */
static void dj_colb_pack_col(void *ctx, int64_t k0, int64_t kc, int64_t c0, int64_t nc, int nr, uint16_t *dst,
                             void *tmp) {
    const dj_colb_job *j = ctx;
    uint16_t *lines = tmp;
    dj_colb_run *runs = (dj_colb_run *)((char *)tmp + DJ_COLB_RUNS_AT);
    int64_t nruns = dj_colb_runs(j, c0, nc, runs), ld = (nc + 31) / 32 * 32;
    dj_colb_rowpos q = dj_colb_rowpos_at(j->g, k0);
#if defined(__x86_64__)
    if (nr == 32 && dj_cpu_best_isa() == DJ_CPU_ISA_AVX512) { /* two rows at a time, straight into the panels */
        for (int64_t k = 0; k < kc; k += 2) {
            dj_colb_rowpos qa = q;
            dj_colb_rowpos_next(j->g, &q);
            dj_colb_pair_avx512(j, runs, nruns, qa, k + 1 < kc ? &q : NULL, nc, kc, k / 2, dst);
            dj_colb_rowpos_next(j->g, &q);
        }
        return;
    }
#endif
    for (int64_t k = 0; k < kc; k += 8) {
        int64_t rows = kc - k < 8 ? kc - k : 8;
        for (int64_t i = 0; i < rows; i++, dj_colb_rowpos_next(j->g, &q))
            dj_colb_row(j, runs, nruns, q, lines + i * ld);
        dj_gemm_bf16_pack_lines(lines, ld, k, rows, nc, kc, nr, dst);
    }
}

/* B = col^T (weight gradient): output positions k0..k0+kc of one sample are
 * the k of the GEMM, rows r0.. of col the panel columns; each panel's rows
 * are gathered into tmp (nr x kc bf16 <= 64 KiB) and transposed in pairs. */
static void dj_colb_pack_colt(void *ctx, int64_t k0, int64_t kc, int64_t r0, int64_t nrows, int nr, uint16_t *dst,
                              void *tmp) {
    const dj_colb_job *j = ctx;
    uint16_t *rows = tmp;
    dj_colb_run *runs = (dj_colb_run *)((char *)tmp + DJ_COLB_RUNS_AT);
    int64_t nruns = dj_colb_runs(j, k0, kc, runs), kcp = (kc + 1) / 2 * 2;
    dj_colb_rowpos q = dj_colb_rowpos_at(j->g, r0);
    void (*row)(const dj_colb_job *, const dj_colb_run *, int64_t, dj_colb_rowpos, uint16_t *) = dj_colb_row;
#if defined(__x86_64__)
    if (dj_cpu_best_isa() == DJ_CPU_ISA_AVX512)
        row = dj_colb_row_avx512;
#endif
    for (int64_t jr = 0; jr < nrows; jr += nr) {
        int64_t n = nrows - jr < nr ? nrows - jr : nr;
        for (int64_t i = 0; i < n; i++, dj_colb_rowpos_next(j->g, &q))
            row(j, runs, nruns, q, rows + i * kc);
        dj_gemm_bf16_pack_rows(rows, kc, n, kc, nr, dst + jr * kcp);
    }
}

/* ---------------------------------------------------------------- setup */

static dj_status dj_conv_bf16_setup(const dj_exec *ex, const dj_conv3d_params *p, const dj_tensor *inp,
                                    const dj_tensor *weight, const dj_tensor *weight_bf16, dj_conv_geom *g,
                                    char **scratch, const char *who) {
    DJ_TRY(dj_conv_setup(p, inp, weight, g, who));
    DJ_TRY(dj_conv_check(g, DJ_DTYPE_F32, inp, weight, NULL, NULL, who));
    if (!g->depthwise)
        DJ_TRY(dj_expect_like(weight_bf16, DJ_DTYPE_BF16, weight, who, "bf16 weight"));
    size_t need = dj_conv_bf16_scratch_for(g);
    *scratch = NULL;
    if (need && (!ex || !ex->scratch || ex->scratch_bytes < need))
        return dj_error_set(DJ_ERR_INVALID, who,
                            "scratch of %zu bytes given, %zu needed (dj_conv3d_scratch_bytes_bf16)",
                            ex && ex->scratch ? ex->scratch_bytes : (size_t)0, need);
    if (need)
        *scratch = ex->scratch;
    return DJ_OK;
}

/* xb (Cin_g, S) = bf16 of the input of sample n, group gi. */
static void dj_convb_round_input(dj_threadpool *pool, const dj_conv_geom *g, const float *x, int64_t n, int64_t gi,
                                 uint16_t *xb) {
    dj_bf16_rows(pool, x + (n * g->Cin + gi * g->Cin_g) * g->S, g->S, g->Cin_g, g->S, xb);
}

/* ---------------------------------------------------------------- forward */

/* One GEMM over all samples of group gi: ybuf (Cout_g, N*P) = W_g @ col of
 * every sample (xb holds them all, (N, Cin_g, S)), then laid out into y.
 * Each output element is the same sum as in a per-sample GEMM. */
static dj_status dj_convb_forward_batch(dj_threadpool *pool, const dj_conv_geom *g, const float *x,
                                        const uint16_t *wg, int64_t gi, float *y, uint16_t *xb, float *ybuf) {
    for (int64_t n = 0; n < g->N; n++)
        dj_convb_round_input(pool, g, x, n, gi, xb + n * g->Cin_g * g->S);
    dj_colb_job cj = {g, xb, g->Cin_g * g->S, g->S};
    DJ_TRY(dj_gemm_bf16_packed_b(pool, DJ_NO_TRANS, g->Cout_g, g->N * g->P, g->K, 1.0f, wg, g->K, dj_colb_pack_col,
                                 &cj, 0.0f, ybuf, g->N * g->P));
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t c = 0; c < g->Cout_g; c++)
            memcpy(y + (n * g->Cout + gi * g->Cout_g + c) * g->P, ybuf + c * g->N * g->P + n * g->P,
                   (size_t)g->P * sizeof(float));
    return DJ_OK;
}

static dj_status dj_convb_forward_gemm(dj_threadpool *pool, const dj_conv_geom *g, const float *x,
                                       const uint16_t *wb, float *y, char *scratch) {
    dj_convb_parts q = dj_convb_parts_for(g, 0);
    uint16_t *xb = (uint16_t *)scratch;
    for (int64_t gi = 0; gi < g->G; gi++) {
        const uint16_t *wg = wb + gi * g->Cout_g * g->K;
        if (dj_conv_forward_batched(g)) {
            DJ_TRY(dj_convb_forward_batch(pool, g, x, wg, gi, y, xb, (float *)(scratch + q.xb)));
            continue;
        }
        for (int64_t n = 0; n < g->N; n++) {
            float *yg = y + (n * g->Cout + gi * g->Cout_g) * g->P;
            dj_convb_round_input(pool, g, x, n, gi, xb);
            if (g->pointwise) {
                DJ_TRY(dj_gemm_bf16(pool, DJ_NO_TRANS, DJ_NO_TRANS, g->Cout_g, g->P, g->K, 1.0f, wg, g->K, xb, g->P,
                                    0.0f, yg, g->P));
                continue;
            }
            dj_colb_job cj = {g, xb, 0, g->S};
            DJ_TRY(dj_gemm_bf16_packed_b(pool, DJ_NO_TRANS, g->Cout_g, g->P, g->K, 1.0f, wg, g->K, dj_colb_pack_col,
                                         &cj, 0.0f, yg, g->P));
        }
    }
    return DJ_OK;
}

dj_status dj_conv3d_forward_bf16(const dj_exec *ex, const dj_conv3d_params *p, const dj_tensor *inp,
                                 const dj_tensor *weight, const dj_tensor *weight_bf16, const dj_tensor *bias,
                                 dj_tensor *out) {
    static const char who[] = "dj_conv3d_forward_bf16";
    dj_conv_geom g;
    char *scratch;
    DJ_TRY(dj_conv_bf16_setup(ex, p, inp, weight, weight_bf16, &g, &scratch, who));
    if (g.depthwise)
        return dj_conv3d_forward(ex, p, inp, weight, bias, out);
    DJ_TRY(dj_conv_check(&g, DJ_DTYPE_F32, inp, weight, bias, out, who));
    if (g.N == 0)
        return DJ_OK;
    dj_threadpool *pool = ex->pool;
    float *y = out->data;
    dj_conv_geom gt;
    int64_t lo[3];
    if (dj_conv_trim(&g, &gt, lo)) {
        uint16_t *wt = (uint16_t *)scratch;
        dj_conv_trim_copy(pool, &g, &gt, lo, weight_bf16->data, wt, sizeof(uint16_t));
        DJ_TRY(dj_convb_forward_gemm(pool, &gt, inp->data, wt, y, scratch + dj_convb_trim_bytes(&gt)));
    } else {
        DJ_TRY(dj_convb_forward_gemm(pool, &g, inp->data, weight_bf16->data, y, scratch));
    }
    if (bias) {
        dj_bias_job bj = {&g, bias->data, NULL, y, NULL};
        dj_parallel_for(pool, g.N * g.Cout, 4, dj_conv_bias_add_rows, &bj);
    }
    return DJ_OK;
}

/* ---------------------------------------------------------------- backward */

/* wt (G, Cin_g, Cout_g*kvol) = the bf16 weight of each group, kernel
 * flipped: wt[gi][c][oc*kvol + k] = w[gi*Cout_g + oc][c][kvol-1-k]. Pure
 * moves, so the same bits as rounding the flipped float32 weight. */
static void dj_convb_flip_weight(const dj_conv_geom *g, const uint16_t *w, uint16_t *wt) {
    for (int64_t gi = 0; gi < g->G; gi++)
        for (int64_t c = 0; c < g->Cin_g; c++)
            for (int64_t oc = 0; oc < g->Cout_g; oc++) {
                const uint16_t *src = w + (gi * g->Cout_g + oc) * g->K + c * g->kvol;
                uint16_t *dst = wt + gi * g->Cout_g * g->K + (c * g->Cout_g + oc) * g->kvol;
                for (int64_t k = 0; k < g->kvol; k++)
                    dst[k] = src[g->kvol - 1 - k];
            }
}

/* Where the backward works: nb samples per GEMM (all of them for deep
 * layers, P < 256, as in the forward; otherwise one). */
typedef struct dj_convb_bwd {
    const dj_conv_geom *g;
    dj_conv_geom g2;   /* the input gradient's convolution (implicit path) */
    int implicit;      /* stride-1 input gradient through wt */
    int64_t nb;        /* samples per GEMM */
    const float *x, *dy;
    const uint16_t *wb;
    float *dx, *dw;
    uint16_t *xb;      /* (nb, Cin_g, S) */
    uint16_t *dyb;     /* (Cout_g, nb*P): row c holds the samples' channel c side by side */
    uint16_t *wt;      /* (G, Cin_g, Cout_g*kvol) */
    float *work;       /* dcol (K, pblock), or the batch's input gradient (Cin_g, nb*S) */
} dj_convb_bwd;

typedef struct dj_convb_dy_job {
    const dj_convb_bwd *b;
    int64_t n0, gi;
} dj_convb_dy_job;

/* rows r = c*nb + s of dyb: bf16 of dy of sample n0+s, channel gi*Cout_g + c */
static void dj_convb_round_dy_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_convb_dy_job *j = arg;
    const dj_conv_geom *g = j->b->g;
    (void)thread;
    dj_bf16_round_fn round = dj_bf16_round_pick();
    for (int64_t r = r0; r < r1; r++) {
        int64_t c = r / j->b->nb, s = r % j->b->nb;
        round(j->b->dy + ((j->n0 + s) * g->Cout + j->gi * g->Cout_g + c) * g->P, g->P, j->b->dyb + r * g->P);
    }
}

/* dW_g += dyb (Cout_g, nb*P) @ col^T (nb*P, K), col gathered from xb. */
static dj_status dj_convb_dweight(dj_threadpool *pool, const dj_convb_bwd *b, int64_t n0, int64_t gi) {
    const dj_conv_geom *g = b->g;
    float *dwg = b->dw + gi * g->Cout_g * g->K;
    for (int64_t s = 0; s < b->nb; s++)
        dj_convb_round_input(pool, g, b->x, n0 + s, gi, b->xb + s * g->Cin_g * g->S);
    if (g->pointwise) /* nb == 1 */
        return dj_gemm_bf16(pool, DJ_NO_TRANS, DJ_TRANS, g->Cout_g, g->K, g->P, 1.0f, b->dyb, g->P, b->xb, g->P, 1.0f,
                            dwg, g->K);
    dj_colb_job cj = {g, b->xb, g->Cin_g * g->S, g->S};
    return dj_gemm_bf16_packed_b(pool, DJ_NO_TRANS, g->Cout_g, g->K, b->nb * g->P, 1.0f, b->dyb, b->nb * g->P,
                                 dj_colb_pack_colt, &cj, 1.0f, dwg, g->K);
}

/* dx_g (Cin_g, S) += wt_g (Cin_g, Cout_g*kvol) @ col(dyb) for the batch:
 * straight into dx for one sample, through work (Cin_g, nb*S) for more. */
static dj_status dj_convb_dinput_implicit(dj_threadpool *pool, const dj_convb_bwd *b, int64_t n0, int64_t gi) {
    const dj_conv_geom *g = b->g;
    int64_t K2 = g->Cout_g * g->kvol, nS = b->nb * g->S;
    const uint16_t *wt = b->wt + gi * g->Cout_g * g->K;
    float *dxg = b->dx + (n0 * g->Cin + gi * g->Cin_g) * g->S;
    dj_colb_job cj = {&b->g2, b->dyb, g->P, b->nb * g->P}; /* samples side by side in each channel row */
    if (b->nb == 1)
        return dj_gemm_bf16_packed_b(pool, DJ_NO_TRANS, g->Cin_g, g->S, K2, 1.0f, wt, K2, dj_colb_pack_col, &cj, 1.0f,
                                     dxg, g->S);
    DJ_TRY(dj_gemm_bf16_packed_b(pool, DJ_NO_TRANS, g->Cin_g, nS, K2, 1.0f, wt, K2, dj_colb_pack_col, &cj, 0.0f,
                                 b->work, nS));
    for (int64_t s = 0; s < b->nb; s++)
        for (int64_t c = 0; c < g->Cin_g; c++) {
            float *d = dxg + (s * g->Cin + c) * g->S;
            const float *w = b->work + c * nS + s * g->S;
            for (int64_t q = 0; q < g->S; q++)
                d[q] += w[q];
        }
    return DJ_OK;
}

/* dx_g += W_g^T @ dyb, by the path the shape allows. */
static dj_status dj_convb_dinput(dj_threadpool *pool, const dj_convb_bwd *b, int64_t n0, int64_t gi) {
    const dj_conv_geom *g = b->g;
    const uint16_t *wg = b->wb + gi * g->Cout_g * g->K;
    if (g->pointwise) /* nb == 1 */
        return dj_gemm_bf16(pool, DJ_TRANS, DJ_NO_TRANS, g->K, g->P, g->Cout_g, 1.0f, wg, g->K, b->dyb, g->P, 1.0f,
                            b->dx + (n0 * g->Cin + gi * g->Cin_g) * g->S, g->P);
    if (b->implicit)
        return dj_convb_dinput_implicit(pool, b, n0, gi);
    for (int64_t s = 0; s < b->nb; s++) { /* dcol = W_g^T @ dyb, one block of positions at a time; col2vol */
        float *dxg = b->dx + ((n0 + s) * g->Cin + gi * g->Cin_g) * g->S;
        for (int64_t p0 = 0; p0 < g->P; p0 += g->pblock) {
            int64_t pb = g->P - p0 < g->pblock ? g->P - p0 : g->pblock;
            DJ_TRY(dj_gemm_bf16(pool, DJ_TRANS, DJ_NO_TRANS, g->K, pb, g->Cout_g, 1.0f, wg, g->K,
                                b->dyb + s * g->P + p0, b->nb * g->P, 0.0f, b->work, pb));
            dj_col_job cj = {g, NULL, dxg, b->work, p0, pb, 0};
            dj_parallel_for(pool, g->Cin_g, 1, dj_conv_col2vol_channels, &cj);
        }
    }
    return DJ_OK;
}

static dj_status dj_convb_backward_gemm(dj_threadpool *pool, dj_convb_bwd *b, char *scratch) {
    const dj_conv_geom *g = b->g;
    dj_convb_parts q = dj_convb_parts_for(g, 1);
    b->nb = dj_conv_forward_batched(g) ? g->N : 1;
    b->xb = (uint16_t *)scratch;
    b->dyb = (uint16_t *)(scratch + q.xb);
    b->wt = (uint16_t *)(scratch + q.xb + q.dyb);
    b->work = (float *)(scratch + q.xb + q.dyb + q.wt);
    b->implicit = b->dx && !g->pointwise && dj_conv_dgrad_geom(g, &b->g2);
    if (b->implicit)
        dj_convb_flip_weight(g, b->wb, b->wt);
    for (int64_t n0 = 0; n0 < g->N; n0 += b->nb)
        for (int64_t gi = 0; gi < g->G; gi++) {
            dj_convb_dy_job dj = {b, n0, gi};
            dj_parallel_for(pool, g->Cout_g * b->nb, 1 + 16384 / g->P, dj_convb_round_dy_rows, &dj);
            if (b->dw)
                DJ_TRY(dj_convb_dweight(pool, b, n0, gi));
            if (b->dx)
                DJ_TRY(dj_convb_dinput(pool, b, n0, gi));
        }
    return DJ_OK;
}

dj_status dj_conv3d_backward_bf16(const dj_exec *ex, const dj_conv3d_params *p, const dj_tensor *inp,
                                  const dj_tensor *weight, const dj_tensor *weight_bf16, const dj_tensor *dout,
                                  dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_conv3d_backward_bf16";
    dj_conv_geom g;
    char *scratch;
    DJ_TRY(dj_conv_bf16_setup(ex, p, inp, weight, weight_bf16, &g, &scratch, who));
    if (g.depthwise)
        return dj_conv3d_backward(ex, p, inp, weight, dout, dinp, dweight, dbias);
    DJ_TRY(dj_conv_check_grads(&g, inp, weight, dout, dinp, dweight, dbias, who));
    dj_threadpool *pool = ex->pool;
    if (g.N == 0)
        return DJ_OK;
    if (dbias) {
        dj_bias_job bj = {&g, NULL, dout->data, NULL, dbias->data};
        dj_parallel_for(pool, g.Cout, 1, dj_conv_bias_grad_rows, &bj);
    }
    if (!dinp && !dweight)
        return DJ_OK;
    dj_convb_bwd b = {.g = &g, .x = inp->data, .dy = dout->data, .wb = weight_bf16->data,
                      .dx = dinp ? dinp->data : NULL, .dw = dweight ? dweight->data : NULL};
    dj_conv_geom gt;
    int64_t lo[3];
    if (!dj_conv_trim(&g, &gt, lo))
        return dj_convb_backward_gemm(pool, &b, scratch);
    uint16_t *wt = (uint16_t *)scratch;
    float *dwt = (float *)(scratch + dj_bf16_align((size_t)(gt.Cout * gt.K) * sizeof(uint16_t)));
    if (b.dx) /* the weight gradient does not read the weight */
        dj_conv_trim_copy(pool, &g, &gt, lo, weight_bf16->data, wt, sizeof(uint16_t));
    if (b.dw)
        memset(dwt, 0, (size_t)(gt.Cout * gt.K) * sizeof(float));
    b.g = &gt, b.wb = wt, b.dw = b.dw ? dwt : NULL;
    DJ_TRY(dj_convb_backward_gemm(pool, &b, scratch + dj_convb_trim_bytes(&gt)));
    if (dweight)
        dj_conv_trim_add(pool, &g, &gt, lo, dweight->data, dwt);
    return DJ_OK;
}
