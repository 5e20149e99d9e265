/* conv3d_winograd_avx512.c — the AVX-512 kernels of the Winograd
 * convolution (conv3d_winograd.h): the 1-D transforms F(2,3) and F(4,3)
 * (input B^T, output A^T and its adjoint A, weight G and its adjoint G^T)
 * applied axis by axis to tiles of 16-channel vectors; the staging of rows
 * between the (C, T, H, W) tensors and channel-last tiles (16 x 16
 * transposes); and the per-xi matrix product. Compiled with -mavx512*,
 * called only when cpuid says the CPU has AVX-512. */
#include <immintrin.h>
#include <string.h>

#include "nn/conv3d_winograd.h"

typedef __m512 v16;

#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps
#define MUL _mm512_mul_ps
#define FMA _mm512_fmadd_ps   /* a*b + c */
#define FNMA _mm512_fnmadd_ps /* c - a*b */
#define SET1 _mm512_set1_ps
#define LD _mm512_loadu_ps
#define ST _mm512_storeu_ps

/* ---------------------------------------------------------------- 1-D transforms
 * A line of vectors in + j * is -> out + i * os (strides in floats, so the
 * first pass reads the staged rows and the last writes the tiles' home
 * without a copy); m selects the transform:
 * 1 the identity (a 1-tap axis), 2 F(2,3) (a = 4), 4 F(4,3) (a = 6; points
 * 0, 1, -1, 2, -2 and infinity). */

/* input: v = B^T d (a -> a) */
static inline void dj_tr_in(int m, const float *in, ptrdiff_t is, float *out, ptrdiff_t os) {
    if (m == 1) {
        ST(out, LD(in));
    } else if (m == 2) {
        v16 d0 = LD(in), d1 = LD(in + is), d2 = LD(in + 2 * is), d3 = LD(in + 3 * is);
        ST(out, SUB(d0, d2));
        ST(out + os, ADD(d1, d2));
        ST(out + 2 * os, SUB(d2, d1));
        ST(out + 3 * os, SUB(d1, d3));
    } else {
        v16 d0 = LD(in), d1 = LD(in + is), d2 = LD(in + 2 * is), d3 = LD(in + 3 * is), d4 = LD(in + 4 * is), d5 = LD(in + 5 * is);
        v16 four = SET1(4.0f), five = SET1(5.0f), two = SET1(2.0f);
        ST(out, FMA(four, d0, FNMA(five, d2, d4)));          /* 4 d0 - 5 d2 + d4 */
        ST(out + os, FNMA(four, ADD(d1, d2), ADD(d3, d4)));      /* -4 d1 - 4 d2 + d3 + d4 */
        ST(out + 2 * os, FMA(four, SUB(d1, d2), SUB(d4, d3)));   /* 4 d1 - 4 d2 - d3 + d4 */
        v16 t = SUB(d4, d2), u = SUB(d3, d1);
        ST(out + 3 * os, FMA(two, u, t));                        /* -2 d1 - d2 + 2 d3 + d4 */
        ST(out + 4 * os, FNMA(two, u, t));                       /* 2 d1 - d2 - 2 d3 + d4 */
        ST(out + 5 * os, FMA(four, d1, FNMA(five, d3, d5)));     /* 4 d1 - 5 d3 + d5 */
    }
}

/* output: y = A^T M (a -> m) */
static inline void dj_tr_out(int m, const float *in, ptrdiff_t is, float *out, ptrdiff_t os) {
    if (m == 1) {
        ST(out, LD(in));
    } else if (m == 2) {
        v16 m0 = LD(in), m1 = LD(in + is), m2 = LD(in + 2 * is), m3 = LD(in + 3 * is);
        ST(out, ADD(ADD(m0, m1), m2));
        ST(out + os, SUB(SUB(m1, m2), m3));
    } else {
        v16 m0 = LD(in), m1 = LD(in + is), m2 = LD(in + 2 * is), m3 = LD(in + 3 * is), m4 = LD(in + 4 * is), m5 = LD(in + 5 * is);
        v16 a = ADD(m1, m2), b = SUB(m1, m2), c = ADD(m3, m4), e = SUB(m3, m4);
        ST(out, ADD(ADD(m0, a), c));
        ST(out + os, FMA(SET1(2.0f), e, b));
        ST(out + 2 * os, FMA(SET1(4.0f), c, a));
        ST(out + 3 * os, ADD(FMA(SET1(8.0f), e, b), m5));
    }
}

/* the output transform's adjoint: dM = A dy (m -> a) */
static inline void dj_tr_out_adj(int m, const float *in, ptrdiff_t is, float *out, ptrdiff_t os) {
    if (m == 1) {
        ST(out, LD(in));
    } else if (m == 2) {
        v16 y0 = LD(in), y1 = LD(in + is);
        ST(out, y0);
        ST(out + os, ADD(y0, y1));
        ST(out + 2 * os, SUB(y0, y1));
        ST(out + 3 * os, SUB(_mm512_setzero_ps(), y1));
    } else {
        v16 y0 = LD(in), y1 = LD(in + is), y2 = LD(in + 2 * is), y3 = LD(in + 3 * is);
        v16 s02 = ADD(y0, y2), s13 = ADD(y1, y3);
        v16 p = FMA(SET1(4.0f), y2, y0), q = FMA(SET1(8.0f), y3, MUL(SET1(2.0f), y1));
        ST(out, y0);
        ST(out + os, ADD(s02, s13));
        ST(out + 2 * os, SUB(s02, s13));
        ST(out + 3 * os, ADD(p, q));
        ST(out + 4 * os, SUB(p, q));
        ST(out + 5 * os, y3);
    }
}

/* weights: u = G g (r -> a) */
static inline void dj_tr_w(int m, const float *in, ptrdiff_t is, float *out, ptrdiff_t os) {
    if (m == 1) {
        ST(out, LD(in));
    } else if (m == 2) {
        v16 g0 = LD(in), g1 = LD(in + is), g2 = LD(in + 2 * is);
        v16 half = SET1(0.5f), s = ADD(g0, g2);
        ST(out, g0);
        ST(out + os, MUL(half, ADD(s, g1)));
        ST(out + 2 * os, MUL(half, SUB(s, g1)));
        ST(out + 3 * os, g2);
    } else {
        v16 g0 = LD(in), g1 = LD(in + is), g2 = LD(in + 2 * is);
        v16 s = ADD(g0, g2), sixth = SET1(-1.0f / 6.0f);
        v16 t = FMA(SET1(1.0f / 24.0f), g0, MUL(SET1(1.0f / 6.0f), g2)), g12 = MUL(SET1(1.0f / 12.0f), g1);
        ST(out, MUL(SET1(0.25f), g0));
        ST(out + os, MUL(sixth, ADD(s, g1)));
        ST(out + 2 * os, MUL(sixth, SUB(s, g1)));
        ST(out + 3 * os, ADD(t, g12));
        ST(out + 4 * os, SUB(t, g12));
        ST(out + 5 * os, g2);
    }
}

/* the weight transform's adjoint: dg = G^T du (a -> r) */
static inline void dj_tr_w_adj(int m, const float *in, ptrdiff_t is, float *out, ptrdiff_t os) {
    if (m == 1) {
        ST(out, LD(in));
    } else if (m == 2) {
        v16 u0 = LD(in), u1 = LD(in + is), u2 = LD(in + 2 * is), u3 = LD(in + 3 * is);
        v16 half = SET1(0.5f), s = MUL(half, ADD(u1, u2));
        ST(out, ADD(u0, s));
        ST(out + os, MUL(half, SUB(u1, u2)));
        ST(out + 2 * os, ADD(s, u3));
    } else {
        v16 u0 = LD(in), u1 = LD(in + is), u2 = LD(in + 2 * is), u3 = LD(in + 3 * is), u4 = LD(in + 4 * is), u5 = LD(in + 5 * is);
        v16 s12 = ADD(u1, u2), d12 = SUB(u2, u1), s34 = ADD(u3, u4), d34 = SUB(u3, u4);
        v16 sixth = SET1(1.0f / 6.0f);
        ST(out, FMA(SET1(1.0f / 24.0f), s34, FMA(SET1(0.25f), u0, MUL(SET1(-1.0f / 6.0f), s12))));
        ST(out + os, FMA(SET1(1.0f / 12.0f), d34, MUL(sixth, d12)));
        ST(out + 2 * os, ADD(MUL(sixth, SUB(s34, s12)), u5));
    }
}

typedef void (*dj_line_fn)(int m, const float *in, ptrdiff_t is, float *out, ptrdiff_t os);

/* Applies a line transform along each axis of a tile of vectors, W first,
 * then H, then T: in (lengths n per axis, element (t, h, w) at
 * in + t*is[0] + h*is[1] + w*is[2] floats) -> out (lengths o, strides os),
 * m per axis selecting the transform. b1, b2: scratch of DJ_TILE_MAX
 * vectors each. Always inlined with a constant fn. */
static inline __attribute__((always_inline)) void dj_tile3(dj_line_fn fn, const int m[3], const int n[3],
                                                           const int o[3], const float *in, const ptrdiff_t is[3],
                                                           float *b1, float *b2, float *out, const ptrdiff_t os[3]) {
    /* W: in[t][h][:n2] -> b1[t][h][:o2] */
    for (int t = 0; t < n[0]; t++)
        for (int h = 0; h < n[1]; h++)
            fn(m[2], in + t * is[0] + h * is[1], is[2], b1 + (t * n[1] + h) * o[2] * 16, 16);
    /* H: b1[t][:n1][w] -> b2[t][:o1][w] */
    for (int t = 0; t < n[0]; t++)
        for (int w = 0; w < o[2]; w++)
            fn(m[1], b1 + (t * n[1] * o[2] + w) * 16, o[2] * 16, b2 + (t * o[1] * o[2] + w) * 16, o[2] * 16);
    /* T: b2[:n0][h][w] -> out[:o0][h][w] */
    for (int h = 0; h < o[1]; h++)
        for (int w = 0; w < o[2]; w++)
            fn(m[0], b2 + (h * o[2] + w) * 16, o[1] * o[2] * 16, out + h * os[1] + w * os[2], os[0]);
}

enum { DJ_TILE_MAX = DJ_WINO_MAX_A * DJ_WINO_MAX_A * DJ_WINO_MAX_A };

/* per axis: outputs per tile (also the transform's selector), tile input, taps */
static void dj_axis_lens(const dj_wino_conv *c, int m[3], int a[3], int r[3]) {
    for (int i = 0; i < 3; i++)
        m[i] = c->ax[i].m, a[i] = c->ax[i].a, r[i] = c->ax[i].r;
}

/* ---------------------------------------------------------------- 16 x 16 transposes */

/* r[i] (row i) -> r[j] = column j */
static inline void dj_tr16(v16 r[16]) {
    v16 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4g + c], lane L = column 4L + c of rows 4g..4g+3 */
    for (int g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    /* column 4L + c = lanes L of u[0*4+c], u[1*4+c], u[2*4+c], u[3*4+c] */
    for (int c = 0; c < 4; c++) {
        v16 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), x1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
        v16 x2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44), x3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[0 + c] = _mm512_shuffle_f32x4(x0, x2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(x0, x2, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(x1, x3, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(x1, x3, 0xDD);
    }
}

static inline __mmask16 dj_mask(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* stage[lt][lh][wl][Cp] = src[c][t0+lt][h0+lh][w0+wl] for lt < nt, lh < nh,
 * wl < wlen, c < Cp: zero outside the volume (T, H, W) and for c >= C.
 * src is one sample (C, T, H, W). */
static __attribute__((noinline)) void dj_stage_in(const float *src, int64_t C, int64_t T, int64_t H, int64_t W, int64_t Cp, int64_t t0, int nt,
                        int64_t h0, int nh, int64_t w0, int64_t wlen, float *stage) {
    int64_t HW = H * W, TS = T * HW;
    int64_t wlo = w0 < 0 ? -w0 : 0, whi = W - w0 < wlen ? W - w0 : wlen; /* inside: wl in [wlo, whi) */
    for (int lt = 0; lt < nt; lt++)
        for (int lh = 0; lh < nh; lh++) {
            float *row = stage + (lt * nh + lh) * wlen * Cp;
            int64_t t = t0 + lt, h = h0 + lh;
            if (t < 0 || t >= T || h < 0 || h >= H || whi <= wlo) {
                memset(row, 0, (size_t)(wlen * Cp) * sizeof(float));
                continue;
            }
            if (wlo > 0)
                memset(row, 0, (size_t)(wlo * Cp) * sizeof(float));
            if (whi < wlen)
                memset(row + whi * Cp, 0, (size_t)((wlen - whi) * Cp) * sizeof(float));
            const float *s = src + t * HW + h * W + w0;
            for (int64_t c0 = 0; c0 < Cp; c0 += 16)
                for (int64_t wl = wlo; wl < whi; wl += 16) {
                    int64_t nw = whi - wl < 16 ? whi - wl : 16;
                    __mmask16 k = dj_mask(nw);
                    v16 r[16];
                    for (int i = 0; i < 16; i++) {
                        const float *p = s + (c0 + i) * TS + wl;
                        r[i] = c0 + i < C ? _mm512_maskz_loadu_ps(k, p) : _mm512_setzero_ps();
                        /* the next row of the same planes, read in a while:
                         * sixteen planes at once are more streams than the
                         * hardware prefetcher follows */
                        if (c0 + i < C && h + 1 < H)
                            _mm_prefetch((const char *)(p + W), _MM_HINT_T0);
                    }
                    dj_tr16(r);
                    for (int j = 0; j < nw; j++)
                        _mm512_storeu_ps(row + (wl + j) * Cp + c0, r[j]);
                }
        }
}

/* dst[c][t0+lt][h0+lh][wl] = (or +=) stage[lt][lh][wl][Cp] (+ bias[c]) for
 * the positions inside (T, H, W) and c < C; dst is one sample (C, T, H, W). */
static void dj_unstage_out(const float *stage, int64_t Cp, int nt, int nh, int64_t wlen, float *dst, int64_t C,
                           int64_t T, int64_t H, int64_t W, int64_t t0, int64_t h0, const float *bias, int accumulate) {
    int64_t HW = H * W, TS = T * HW;
    int64_t wn = W < wlen ? W : wlen;
    for (int lt = 0; lt < nt; lt++)
        for (int lh = 0; lh < nh; lh++) {
            int64_t t = t0 + lt, h = h0 + lh;
            if (t >= T || h >= H)
                continue;
            const float *row = stage + (lt * nh + lh) * wlen * Cp;
            float *d = dst + t * HW + h * W;
            for (int64_t c0 = 0; c0 < C; c0 += 16)
                for (int64_t w = 0; w < wn; w += 16) {
                    int64_t nw = wn - w < 16 ? wn - w : 16;
                    __mmask16 k = dj_mask(nw);
                    v16 r[16];
                    for (int j = 0; j < 16; j++)
                        r[j] = j < nw ? _mm512_loadu_ps(row + (w + j) * Cp + c0) : _mm512_setzero_ps();
                    dj_tr16(r);
                    for (int i = 0; i < 16 && c0 + i < C; i++) {
                        float *p = d + (c0 + i) * TS + w;
                        v16 v = r[i];
                        if (accumulate)
                            v = ADD(_mm512_maskz_loadu_ps(k, p), v);
                        else if (bias)
                            v = ADD(v, SET1(bias[c0 + i]));
                        _mm512_mask_storeu_ps(p, k, v);
                    }
                }
        }
}

/* ---------------------------------------------------------------- tiles */

static inline void dj_row_pos(const dj_wino_conv *c, int64_t R, int64_t *n, int64_t *tt, int64_t *th) {
    int64_t per = c->ax[0].tiles * c->ax[1].tiles;
    *n = R / per;
    *tt = (R / c->ax[1].tiles) % c->ax[0].tiles;
    *th = R % c->ax[1].tiles;
}

void dj_wino_input_tiles_avx512(const dj_wino_conv *c, const float *x, int64_t r0, int64_t nrows, int64_t vtiles,
                                int64_t vtile0, float *V, float *stage) {
    int m[3], a[3], r[3];
    dj_axis_lens(c, m, a, r);
    const dj_wino_axis *T = &c->ax[0], *H = &c->ax[1], *W = &c->ax[2];
    int64_t Cp = c->Cin_p, wp = c->wp, xs = vtiles * Cp;
    const ptrdiff_t is[3] = {a[1] * wp * Cp, wp * Cp, Cp}, os[3] = {a[1] * a[2] * xs, a[2] * xs, xs};
    float b1[DJ_TILE_MAX * 16] __attribute__((aligned(64))), b2[DJ_TILE_MAX * 16] __attribute__((aligned(64)));
    for (int64_t ri = 0; ri < nrows; ri++) {
        int64_t n, tt, th;
        dj_row_pos(c, r0 + ri, &n, &tt, &th);
        dj_stage_in(x + n * c->Cin * T->in * H->in * W->in, c->Cin, T->in, H->in, W->in, Cp, tt * T->m + T->off, a[0],
                    th * H->m + H->off, a[1], W->off, wp, stage);
        for (int64_t tw = 0; tw < c->nw; tw++)
            for (int64_t c0 = 0; c0 < Cp; c0 += 16)
                dj_tile3(dj_tr_in, m, a, a, stage + tw * W->m * Cp + c0, is, b1, b2,
                         V + (vtile0 + ri * c->nw + tw) * Cp + c0, os);
    }
}

void dj_wino_output_grad_tiles_avx512(const dj_wino_conv *c, const float *dy, int64_t r0, int64_t nrows,
                                      int64_t mtiles, int64_t mtile0, float *dM, float *stage) {
    int m[3], a[3], r[3];
    dj_axis_lens(c, m, a, r);
    const dj_wino_axis *T = &c->ax[0], *H = &c->ax[1], *W = &c->ax[2];
    int64_t Cp = c->Cout_p, wl = c->nw * W->m, xs = mtiles * Cp;
    const ptrdiff_t is[3] = {m[1] * wl * Cp, wl * Cp, Cp}, os[3] = {a[1] * a[2] * xs, a[2] * xs, xs};
    float b1[DJ_TILE_MAX * 16] __attribute__((aligned(64))), b2[DJ_TILE_MAX * 16] __attribute__((aligned(64)));
    for (int64_t ri = 0; ri < nrows; ri++) {
        int64_t n, tt, th;
        dj_row_pos(c, r0 + ri, &n, &tt, &th);
        dj_stage_in(dy + n * c->Cout * T->out * H->out * W->out, c->Cout, T->out, H->out, W->out, Cp, tt * T->m, m[0],
                    th * H->m, m[1], 0, wl, stage);
        for (int64_t tw = 0; tw < c->nw; tw++)
            for (int64_t c0 = 0; c0 < Cp; c0 += 16)
                dj_tile3(dj_tr_out_adj, m, m, a, stage + tw * W->m * Cp + c0, is, b1, b2,
                         dM + (mtile0 + ri * c->nw + tw) * Cp + c0, os);
    }
}

void dj_wino_output_tiles_avx512(const dj_wino_conv *c, const float *M, int64_t r0, int64_t nrows, float *y,
                                 const float *bias, int accumulate, float *stage) {
    int m[3], a[3], r[3];
    dj_axis_lens(c, m, a, r);
    const dj_wino_axis *T = &c->ax[0], *H = &c->ax[1], *W = &c->ax[2];
    int64_t Cp = c->Cout_p, wl = c->nw * W->m, mtiles = nrows * c->nw, xs = mtiles * Cp;
    const ptrdiff_t is[3] = {a[1] * a[2] * xs, a[2] * xs, xs}, os[3] = {m[1] * wl * Cp, wl * Cp, Cp};
    float b1[DJ_TILE_MAX * 16] __attribute__((aligned(64))), b2[DJ_TILE_MAX * 16] __attribute__((aligned(64)));
    for (int64_t ri = 0; ri < nrows; ri++) {
        int64_t n, tt, th;
        dj_row_pos(c, r0 + ri, &n, &tt, &th);
        for (int64_t tw = 0; tw < c->nw; tw++)
            for (int64_t c0 = 0; c0 < Cp; c0 += 16)
                dj_tile3(dj_tr_out, m, a, m, M + (ri * c->nw + tw) * Cp + c0, is, b1, b2,
                         stage + tw * W->m * Cp + c0, os);
        dj_unstage_out(stage, Cp, m[0], m[1], wl, y + n * c->Cout * T->out * H->out * W->out, c->Cout, T->out,
                       H->out, W->out, tt * T->m, th * H->m, bias, accumulate);
    }
}

/* ---------------------------------------------------------------- weights */

/* taps[q]: the flat index in the weight's (kT, kH, kW) kernel of tap q =
 * (jt * r_H + jh) * r_W + jw of the used window (taps k0 + j, reversed when
 * flip); returns the number of taps. */
static int dj_taps(const dj_wino_conv *c, const dj_conv_geom *g, int flip, int64_t taps[27]) {
    int rt = c->ax[0].r, rh = c->ax[1].r, rw = c->ax[2].r;
    for (int jt = 0; jt < rt; jt++)
        for (int jh = 0; jh < rh; jh++)
            for (int jw = 0; jw < rw; jw++) {
                int64_t kt = c->ax[0].k0 + jt, kh = c->ax[1].k0 + jh, kw = c->ax[2].k0 + jw;
                if (flip)
                    kt = g->kT - 1 - kt, kh = g->kH - 1 - kh, kw = g->kW - 1 - kw;
                taps[(jt * rh + jh) * rw + jw] = (kt * g->kH + kh) * g->kW + kw;
            }
    return rt * rh * rw;
}

void dj_wino_weights_avx512(const dj_wino_conv *c, const dj_conv_geom *g, const float *w, int flip, float *U,
                            int64_t co0, int64_t co1) {
    int m[3], a[3], r[3];
    dj_axis_lens(c, m, a, r);
    int64_t taps[27];
    int ntap = dj_taps(c, g, flip, taps);
    float tmp[27][16] __attribute__((aligned(64)));
    float b1[DJ_TILE_MAX * 16] __attribute__((aligned(64))), b2[DJ_TILE_MAX * 16] __attribute__((aligned(64)));
    const ptrdiff_t is[3] = {r[1] * r[2] * 16, r[2] * 16, 16};
    const ptrdiff_t xs = c->Cin_p * c->Cout_p, os[3] = {a[1] * a[2] * xs, a[2] * xs, xs};
    for (int64_t co = co0; co < co1; co += 16)
        for (int64_t ci = 0; ci < c->Cin_p; ci++) {
            /* lane l: output channel co + l of this convolution, input channel ci */
            for (int l = 0; l < 16; l++) {
                int64_t o = co + l;
                const float *src = NULL;
                if (o < c->Cout && ci < c->Cin) /* forward: w[o][ci]; input gradient: w[ci][o] */
                    src = flip ? w + (ci * g->Cin_g + o) * g->kvol : w + (o * g->Cin_g + ci) * g->kvol;
                for (int q = 0; q < ntap; q++)
                    tmp[q][l] = src ? src[taps[q]] : 0.0f;
            }
            dj_tile3(dj_tr_w, m, r, a, tmp[0], is, b1, b2, U + ci * c->Cout_p + co, os);
        }
}

void dj_wino_weights_grad_avx512(const dj_wino_conv *c, const dj_conv_geom *g, const float *dU, float *dw,
                                 int64_t co0, int64_t co1) {
    int m[3], a[3], r[3];
    dj_axis_lens(c, m, a, r);
    int64_t taps[27];
    int ntap = dj_taps(c, g, 0, taps);
    float tmp[27][16] __attribute__((aligned(64)));
    float b1[DJ_TILE_MAX * 16] __attribute__((aligned(64))), b2[DJ_TILE_MAX * 16] __attribute__((aligned(64)));
    const ptrdiff_t xs = c->Cin_p * c->Cout_p, is[3] = {a[1] * a[2] * xs, a[2] * xs, xs};
    const ptrdiff_t os[3] = {r[1] * r[2] * 16, r[2] * 16, 16};
    for (int64_t co = co0; co < co1; co += 16)
        for (int64_t ci = 0; ci < c->Cin; ci++) {
            dj_tile3(dj_tr_w_adj, m, a, r, dU + ci * c->Cout_p + co, is, b1, b2, tmp[0], os);
            for (int l = 0; l < 16 && co + l < c->Cout; l++) {
                float *d = dw + ((co + l) * g->Cin_g + ci) * g->kvol;
                for (int q = 0; q < ntap; q++)
                    d[taps[q]] += tmp[q][l];
            }
        }
}

/* ---------------------------------------------------------------- the per-xi product
 * C[MR rows][NV * 16 columns] from MR rows of A (element (i, k) at
 * a[i*ars + k*aks], broadcast) and rows of B (NV vectors each): MR * NV
 * accumulators in registers, one chain of fused multiply-adds over k per
 * element. */
static inline __attribute__((always_inline)) void dj_wino_micro(int64_t K, const float *a, int64_t ars, int64_t aks,
                                                                const float *b, int64_t ldb, float *c, int64_t ldc,
                                                                int accumulate, const int MR, const int NV) {
    v16 s[6][4];
    const float *ap[6];
    for (int i = 0; i < MR; i++) {
        ap[i] = a + i * ars;
        for (int v = 0; v < NV; v++)
            s[i][v] = _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < K; k++) {
        v16 bv[4];
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_loadu_ps(b + v * 16);
        for (int i = 0; i < MR; i++) {
            v16 ai = SET1(*ap[i]);
            for (int v = 0; v < NV; v++)
                s[i][v] = FMA(ai, bv[v], s[i][v]);
            ap[i] += aks;
        }
        b += ldb;
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) {
            float *p = c + i * ldc + v * 16;
            _mm512_storeu_ps(p, accumulate ? ADD(_mm512_loadu_ps(p), s[i][v]) : s[i][v]);
        }
}

#define DJ_WINO_MICRO(MR, NV)                                                                                   \
    static void dj_wino_micro_##MR##_##NV(int64_t K, const float *a, int64_t ars, int64_t aks, const float *b,  \
                                          int64_t ldb, float *c, int64_t ldc, int acc) {                      \
        dj_wino_micro(K, a, ars, aks, b, ldb, c, ldc, acc, MR, NV);                                            \
    }
#define DJ_WINO_MICRO_NV(MR) DJ_WINO_MICRO(MR, 1) DJ_WINO_MICRO(MR, 2) DJ_WINO_MICRO(MR, 3) DJ_WINO_MICRO(MR, 4)
DJ_WINO_MICRO_NV(1)
DJ_WINO_MICRO_NV(2)
DJ_WINO_MICRO_NV(3)
DJ_WINO_MICRO_NV(4)
DJ_WINO_MICRO_NV(5)
DJ_WINO_MICRO_NV(6)

typedef void (*dj_wino_micro_fn)(int64_t, const float *, int64_t, int64_t, const float *, int64_t, float *, int64_t,
                                 int);
#define DJ_WINO_ROW(MR) {dj_wino_micro_##MR##_1, dj_wino_micro_##MR##_2, dj_wino_micro_##MR##_3, dj_wino_micro_##MR##_4}
static const dj_wino_micro_fn dj_wino_micros[6][4] = {DJ_WINO_ROW(1), DJ_WINO_ROW(2), DJ_WINO_ROW(3),
                                                      DJ_WINO_ROW(4), DJ_WINO_ROW(5), DJ_WINO_ROW(6)};

void dj_wino_gemm_avx512(int64_t rows, int64_t cols, int64_t K, const float *A, int64_t ars, int64_t aks,
                         const float *B, int64_t ldb, float *C, int64_t ldc, int accumulate) {
    for (int64_t j0 = 0; j0 < cols; j0 += 64) {
        int nv = cols - j0 >= 64 ? 4 : (int)((cols - j0) / 16);
        for (int64_t i0 = 0; i0 < rows; i0 += 6) {
            int mr = rows - i0 >= 6 ? 6 : (int)(rows - i0);
            dj_wino_micros[mr - 1][nv - 1](K, A + i0 * ars, ars, aks, B + j0, ldb, C + i0 * ldc + j0, ldc, accumulate);
        }
    }
}
