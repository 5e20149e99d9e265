/* conv3d_direct_avx512.c — the direct convolution of conv3d.c for few input
 * channels (the stems: 3 -> 16..64 channels, (3,7,7) or (1,7,7), stride 2
 * along W). An implicit GEMM gathers Cin*kT*kH*kW values per output
 * position and uses each for only Cout multiply-adds; here the input rows
 * are split once into their stride phases (xp[r][j] = x[sw*j + r - pw]),
 * so that the kW taps of 16 consecutive outputs are plain vector loads, and
 * each of them feeds 8 output channels (forward) or 4 output channels x kW
 * taps (weight gradient) held in registers.
 *   forward  y[co][t][h][w] = b[co] + sum over (ci, kt, kh, kw) in that
 *            order of w[co][ci][kt][kh][kw] * xp(ci, row)[kw % sw][w + kw / sw]
 *   weight   dw[co][ci][kt][kh][kw] += the 16 lanes of the sums over (n, t, h)
 *            in order (in fixed chunks of rows) of dy * xp, added at the end
 * Each output (and each weight gradient element) is one fixed chain of
 * sums: the bits do not depend on the thread count. Called only when
 * dj_cpu_best_isa() says AVX-512 (conv3d.c checks the shapes). */
#include <immintrin.h>
#include <string.h>

#include "nn/conv3d_internal.h"

/* Phase rows of one input row: xp[r][j], r < sw, j < lp (zeros past the row
 * and in the padding). */
static void dj_direct_phases(const dj_conv_geom *g, const float *row, int64_t lp, float *xp) {
    memset(xp, 0, (size_t)(g->sw * lp) * sizeof(float));
    for (int64_t r = 0; r < g->sw; r++)
        for (int64_t j = 0; j < lp; j++) {
            int64_t i = g->sw * j + r - g->pw;
            if (i >= 0 && i < g->W)
                xp[r * lp + j] = row[i];
        }
}

void dj_conv_direct_phases_avx512(const dj_conv_geom *g, const float *x, float *xp, int64_t r0, int64_t r1) {
    int64_t lp = dj_conv_direct_lp(g);
    for (int64_t r = r0; r < r1; r++) /* rows of (n, ci, t, h) */
        dj_direct_phases(g, x + r * g->W, lp, xp + r * g->sw * lp);
}

/* Forward of output rows [r0, r1) of (n, t, h), all output channels. */
void dj_conv_direct_forward_avx512(const dj_conv_geom *g, const float *xp, const float *w, const float *bias, float *y,
                                   int64_t r0, int64_t r1) {
    enum { CB = 8 };
    const int64_t lp = dj_conv_direct_lp(g), rowp = g->sw * lp;
    for (int64_t r = r0; r < r1; r++) {
        int64_t n = r / (g->To * g->Ho), to = (r / g->Ho) % g->To, ho = r % g->Ho;
        for (int64_t co0 = 0; co0 < g->Cout; co0 += CB) {
            int cb = g->Cout - co0 < CB ? (int)(g->Cout - co0) : CB;
            for (int64_t w0 = 0; w0 < g->Wo; w0 += 32) {
                __m512 acc[CB][2];
                for (int c = 0; c < CB; c++)
                    acc[c][0] = acc[c][1] = _mm512_setzero_ps();
                for (int64_t ci = 0; ci < g->Cin; ci++)
                    for (int64_t kt = 0; kt < g->kT; kt++) {
                        int64_t it = to * g->st - g->pt + kt;
                        if (it < 0 || it >= g->T)
                            continue;
                        for (int64_t kh = 0; kh < g->kH; kh++) {
                            int64_t ih = ho * g->sh - g->ph + kh;
                            if (ih < 0 || ih >= g->H)
                                continue;
                            const float *ph = xp + (((n * g->Cin + ci) * g->T + it) * g->H + ih) * rowp + w0;
                            const float *wk = w + ((co0 * g->Cin + ci) * g->kT + kt) * g->kH * g->kW + kh * g->kW;
                            for (int64_t kw = 0; kw < g->kW; kw++) {
                                const float *p = ph + (kw % g->sw) * lp + kw / g->sw;
                                __m512 v0 = _mm512_loadu_ps(p), v1 = _mm512_loadu_ps(p + 16);
                                for (int c = 0; c < CB; c++) {
                                    if (c < cb) {
                                        __m512 wc = _mm512_set1_ps(wk[c * g->K + kw]);
                                        acc[c][0] = _mm512_fmadd_ps(wc, v0, acc[c][0]);
                                        acc[c][1] = _mm512_fmadd_ps(wc, v1, acc[c][1]);
                                    }
                                }
                            }
                        }
                    }
                int64_t left = g->Wo - w0;
                __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
                __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1u);
                for (int c = 0; c < cb; c++) {
                    float *yr = y + (((n * g->Cout + co0 + c) * g->To + to) * g->Ho + ho) * g->Wo + w0;
                    __m512 b = _mm512_set1_ps(bias ? bias[co0 + c] : 0.0f);
                    _mm512_mask_storeu_ps(yr, m0, _mm512_add_ps(acc[c][0], b));
                    _mm512_mask_storeu_ps(yr + 16, m1, _mm512_add_ps(acc[c][1], b));
                }
            }
        }
    }
}

/* Weight gradient of blocks [b0, b1) of 4 output channels. The output
 * rows (n, t, h) are taken in chunks of DJ_DIRECT_ROWS, fixed by nothing
 * but that constant; within a chunk every input row (ci, kt, kh) adds to
 * its kW taps of the 4 channels, 28 registers of 16-lane partial sums
 * kept in acc (dj_conv_direct_acc_floats per block) between chunks, so that the
 * chunk's output gradient and phase rows stay in the first-level cache
 * while all input rows use them. The lanes are added at the end. kW <= 7
 * (conv3d.c checks). */
void dj_conv_direct_wgrad_avx512(const dj_conv_geom *g, const float *xp, const float *dy, float *dw, float *acc_mem,
                                 int64_t b0, int64_t b1) {
    enum { CB = DJ_DIRECT_CB, KW = DJ_DIRECT_KW };
    const int64_t lp = dj_conv_direct_lp(g), rowp = g->sw * lp, rows_in = g->Cin * g->kT * g->kH;
    const int64_t rows_out = g->N * g->To * g->Ho;
    for (int64_t b = b0; b < b1; b++) {
        int64_t co0 = b * CB;
        int cb = g->Cout - co0 < CB ? (int)(g->Cout - co0) : CB;
        float *am = acc_mem + b * dj_conv_direct_acc_floats(g);
        memset(am, 0, (size_t)dj_conv_direct_acc_floats(g) * sizeof(float));
        for (int64_t r0 = 0; r0 < rows_out; r0 += DJ_DIRECT_ROWS) {
            int64_t r1 = r0 + DJ_DIRECT_ROWS < rows_out ? r0 + DJ_DIRECT_ROWS : rows_out;
            for (int64_t rin = 0; rin < rows_in; rin++) {
                int64_t ci = rin / (g->kT * g->kH), kt = (rin / g->kH) % g->kT, kh = rin % g->kH;
                float *ar = am + rin * CB * KW * 16;
                __m512 acc[CB][KW];
                for (int c = 0; c < CB; c++)
                    for (int k = 0; k < KW; k++)
                        acc[c][k] = _mm512_loadu_ps(ar + (c * KW + k) * 16);
                for (int64_t r = r0; r < r1; r++) {
                    int64_t n = r / (g->To * g->Ho), to = (r / g->Ho) % g->To, ho = r % g->Ho;
                    int64_t it = to * g->st - g->pt + kt, ih = ho * g->sh - g->ph + kh;
                    if (it < 0 || it >= g->T || ih < 0 || ih >= g->H)
                        continue;
                    const float *ph = xp + (((n * g->Cin + ci) * g->T + it) * g->H + ih) * rowp;
                    const float *dyr = dy + (((n * g->Cout + co0) * g->To + to) * g->Ho + ho) * g->Wo;
                    for (int64_t w0 = 0; w0 < g->Wo; w0 += 16) {
                        int64_t left = g->Wo - w0;
                        __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
                        __m512 d[CB];
                        for (int c = 0; c < CB; c++)
                            d[c] = c < cb ? _mm512_maskz_loadu_ps(m, dyr + c * g->P + w0) : _mm512_setzero_ps();
                        for (int k = 0; k < KW; k++) {
                            if (k < g->kW) {
                                __m512 v = _mm512_loadu_ps(ph + (k % g->sw) * lp + k / g->sw + w0);
                                for (int c = 0; c < CB; c++)
                                    acc[c][k] = _mm512_fmadd_ps(d[c], v, acc[c][k]);
                            }
                        }
                    }
                }
                for (int c = 0; c < CB; c++)
                    for (int k = 0; k < KW; k++)
                        _mm512_storeu_ps(ar + (c * KW + k) * 16, acc[c][k]);
            }
        }
        for (int64_t rin = 0; rin < rows_in; rin++) {
            int64_t ci = rin / (g->kT * g->kH), kt = (rin / g->kH) % g->kT, kh = rin % g->kH;
            const float *ar = am + rin * CB * KW * 16;
            for (int c = 0; c < cb; c++) {
                float *dwr = dw + (((co0 + c) * g->Cin + ci) * g->kT + kt) * g->kH * g->kW + kh * g->kW;
                for (int k = 0; k < g->kW; k++)
                    dwr[k] += _mm512_reduce_add_ps(_mm512_loadu_ps(ar + (c * KW + k) * 16));
            }
        }
    }
}
