/* yuv_rows_avx512.c — the 4:2:0 row kernels of yuv_rows.h written with
 * AVX-512 intrinsics (the Makefile adds the flags for *_avx512.c); called
 * only after dj_cpu_best_isa() reports AVX512. Same arithmetic as the
 * generic loops of yuv_rows.inc, 16 pixels per step with masked tails: the
 * compiler left to itself vectorises the byte loops 64 wide, and rows of
 * about 100 pixels then ran mostly in scalar remainders (the same-size path
 * measured 22 us per 112x112 float frame built from yuv_rows.inc, 10 us
 * here; one thread, best of 5 rounds). */
#include <immintrin.h>

#include "video/yuv_rows.h"

static inline __mmask16 dj_tail(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/* 16 chroma samples blended vertically (3 near + far), as floats. */
static inline __m512 dj_vblend(const uint8_t *near, const uint8_t *far, __mmask16 m) {
    __m512i a = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, near));
    __m512i b = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, far));
    return _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_add_epi32(a, _mm512_add_epi32(a, a)), b));
}

/* Pixels j..j+n of a row (n <= 16) from Y' (luma already offset and
 * scaled), U', V': the matrix, rounding, clamping and the store, mirrored
 * when flip (a short block's lanes land at the row's start). */
static inline void dj_rgb16(const dj_yuv_coef *k, __m512 Y, __m512 U, __m512 V, int j, int n, int w, int flip,
                            uint8_t *const o8[3], float *const o32[3]) {
    const __m512i zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
    const __m512i rev = _mm512_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512 half = _mm512_set1_ps(0.5f);
    __mmask16 m = dj_tail(n);
    __m512 rgb[3] = {_mm512_add_ps(Y, _mm512_mul_ps(_mm512_set1_ps(k->rv), V)),
                     _mm512_sub_ps(_mm512_sub_ps(Y, _mm512_mul_ps(_mm512_set1_ps(k->gu), U)),
                                   _mm512_mul_ps(_mm512_set1_ps(k->gv), V)),
                     _mm512_add_ps(Y, _mm512_mul_ps(_mm512_set1_ps(k->bu), U))};
    for (int c = 0; c < 3; c++) {
        __m512i q = _mm512_cvttps_epi32(_mm512_add_ps(rgb[c], half));
        q = _mm512_min_epi32(_mm512_max_epi32(q, zero), top);
        int at = j;
        if (flip) { /* lanes reversed, stored at the mirrored place */
            q = _mm512_permutexvar_epi32(rev, q);
            at = w - j - 16;
            if (n < 16) { /* a short last block sits in the top lanes after the reversal */
                q = _mm512_maskz_compress_epi32((__mmask16)(0xFFFFu << (16 - n)), q);
                at = 0;
            }
        }
        if (o8)
            _mm_mask_storeu_epi8(o8[c] + at, m, _mm512_cvtepi32_epi8(q));
        else
            _mm512_mask_storeu_ps(o32[c] + at, m,
                                  _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(k->scale[c])),
                                                _mm512_set1_ps(k->bias[c])));
    }
}

void dj_yuv_row_avx512(const dj_yuv_coef *k, const uint8_t *y, const uint8_t *const chroma[4], int cw, int x0, int w,
                       int flip, uint8_t *const o8[3], float *const o32[3], float *work) {
    int c0 = x0 >> 1, c1 = (x0 + w - 1) >> 1, nc = c1 - c0 + 1;
    float *uu = work, *vv = uu + 2 * nc + 32; /* 32 spare: the last block may write past 2 nc */
    /* chroma columns c0..c1 blended vertically (3 near + far), 16 at a time;
     * each block's neighbours come from the blocks beside it (valignd), the
     * columns beyond the row from the rows (or the frame's edge column
     * again). Luma column 2c blends 3 mid + left, 2c+1 3 mid + right; the
     * two interleave. */
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 three = _mm512_set1_ps(3.0f);
    int l = c0 > 0 ? c0 - 1 : 0, r = c1 + 1 < cw ? c1 + 1 : c1;
    for (int p = 0; p < 2; p++) {
        const uint8_t *near = chroma[2 * p], *far = chroma[2 * p + 1];
        float *o = p ? vv : uu;
        __m512 prev = _mm512_set1_ps((float)(3 * near[l] + far[l]));
        __m512 cur = dj_vblend(near + c0, far + c0, dj_tail(nc));
        const __m512 edge_r = _mm512_set1_ps((float)(3 * near[r] + far[r]));
        for (int i = 0; i < nc; i += 16) {
            int n = nc - i < 16 ? nc - i : 16;
            __m512 next = i + 16 < nc ? dj_vblend(near + c0 + i + 16, far + c0 + i + 16, dj_tail(nc - i - 16))
                                      : _mm512_setzero_ps();
            __m512 left = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(cur), _mm512_castps_si512(prev), 15));
            __m512 right = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(cur), 1));
            if (i + n == nc) /* the last column's right neighbour */
                right = _mm512_mask_mov_ps(right, (__mmask16)(1u << (n - 1)), edge_r);
            __m512 m3 = _mm512_mul_ps(three, cur);
            __m512 ev = _mm512_add_ps(m3, left), od = _mm512_add_ps(m3, right);
            _mm512_storeu_ps(o + 2 * i, _mm512_permutex2var_ps(ev, lo, od));
            _mm512_storeu_ps(o + 2 * i + 16, _mm512_permutex2var_ps(ev, hi, od));
            prev = cur, cur = next;
        }
    }
    const float *u = uu + (x0 & 1), *v = vv + (x0 & 1);
    const __m512 yo = _mm512_set1_ps(k->y_off), ys = _mm512_set1_ps(k->y_scale), s16 = _mm512_set1_ps(1.0f / 16),
                 c128 = _mm512_set1_ps(128.0f);
    for (int j = 0; j < w; j += 16) {
        int n = w - j < 16 ? w - j : 16;
        __mmask16 m = dj_tail(n);
        __m512 Y = _mm512_mul_ps(
            _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, y + j))), yo), ys);
        __m512 U = _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, u + j), s16), c128);
        __m512 V = _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + j), s16), c128);
        dj_rgb16(k, Y, U, V, j, n, w, flip, o8, o32);
    }
}

/* 16 outputs of a strong downscale's horizontal taps, lane l being output
 * j + l (past W: output W - 1 again): each output's taps are contiguous, so
 * they are loaded as one vector per 16 taps, multiplied by its weights, and
 * the 16 products reduced together. A gather per tap instead measured 36%
 * of the kernel on 1280x720 -> 224x224 (one gather per 16 products).
 * The reduction adds halves of vector pairs: 16 -> 8 -> 4 -> 2 -> 1 vectors
 * in 15 adds and 30 shuffles, after which lane 4k + e holds the vector put
 * in slot k + 4e; outputs are put in the slots that land them in order. */
static inline __m512 dj_htaps_reduced(const float *tmp, const dj_yuv_taps *h, int j, int W) {
    __m512 v[16];
    int T = h->taps;
    for (int s = 0; s < 16; s++) {
        int o = j + 4 * (s & 3) + (s >> 2); /* the output whose sum lands in lane s's place */
        o = o < W ? o : W - 1;
        const float *a = tmp + h->start[o], *wt = h->w + (size_t)o * T;
        __m512 acc = _mm512_setzero_ps();
        for (int t = 0; t < T; t += 16) {
            __mmask16 m = dj_tail(T - t);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, wt + t), _mm512_maskz_loadu_ps(m, a + t), acc);
        }
        v[s] = acc;
    }
    for (int i = 0; i < 8; i++) /* 128-bit blocks 0, 1 of v[2i] + its 2, 3; blocks 2, 3 likewise of v[2i + 1] */
        v[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; i++) /* block b: the 4 partial sums of slot 4i + b */
        v[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++) /* block b: 2 partials of slot 8i + b, 2 of slot 8i + 4 + b */
        v[i] = _mm512_add_ps(_mm512_shuffle_ps(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(v[2 * i], v[2 * i + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], 0x88), _mm512_shuffle_ps(v[0], v[1], 0xDD));
}

/* The resized row of yuv_rows.h: the vertical taps 64 columns at a time, the
 * horizontal ones for 16 outputs at a time, their inputs picked from
 * registers by permutes, or, when 16 outputs span over 64 inputs, loaded per
 * output and reduced (dj_htaps_reduced). */
void dj_yuv_resize_row_avx512(const dj_yuv_coef *k, const dj_yuv_resize_src *s, int W, int flip,
                              uint8_t *const o8[3], float *const o32[3], float *work) {
    float *tmp = work, *out = work + s->in_w[0] + 96; /* tmp: in_w + 80 read by the permutes; out: [3][W + 16] */
    int ow = W + 16;
    for (int p = 0; p < 3; p++) {
        int n = s->in_w[p];
        for (int x = 0; x < n; x += 64) { /* four independent sums: the taps' chain is latency-bound alone */
            __mmask16 m[4];
            __m512 acc[4];
            for (int g = 0; g < 4; g++)
                m[g] = x + 16 * g < n ? dj_tail(n - x - 16 * g) : 0, acc[g] = _mm512_setzero_ps();
            for (int t = 0; t < s->vtaps[p]; t++) {
                __m512 wt = _mm512_set1_ps(s->vw[p][t]);
                const uint8_t *r = s->rows[p][t] + x;
                for (int g = 0; g < 4; g++)
                    acc[g] = _mm512_fmadd_ps(
                        wt, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m[g], r + 16 * g))), acc[g]);
            }
            for (int g = 0; g < 4 && x + 16 * g < n; g++)
                _mm512_storeu_ps(tmp + x + 16 * g, acc[g]);
        }
        for (int x = (n + 15) & ~15; x < n + 80; x += 16) /* what the permutes may read past n is defined */
            _mm512_storeu_ps(tmp + x, _mm512_setzero_ps());
        const dj_yuv_taps *h = &s->h[p];
        for (int j = 0, b = 0; j < W; j += 16, b++) {
            const float *src = tmp + h->base[b], *bw = h->bw + (size_t)b * h->taps * 16;
            __m512i off = _mm512_loadu_si512(h->off + 16 * b);
            __m512 acc = _mm512_setzero_ps();
            if (h->span <= 32) { /* the inputs of 16 outputs in two registers: one permute per tap */
                __m512 t0 = _mm512_loadu_ps(src), t1 = _mm512_loadu_ps(src + 16);
                for (int t = 0; t < h->taps; t++, off = _mm512_add_epi32(off, _mm512_set1_epi32(1)))
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(bw + 16 * t), _mm512_permutex2var_ps(t0, off, t1), acc);
            } else if (h->span <= 64) { /* in four: two permutes and a blend */
                __m512 t0 = _mm512_loadu_ps(src), t1 = _mm512_loadu_ps(src + 16), t2 = _mm512_loadu_ps(src + 32),
                       t3 = _mm512_loadu_ps(src + 48);
                for (int t = 0; t < h->taps; t++, off = _mm512_add_epi32(off, _mm512_set1_epi32(1))) {
                    __mmask16 upper = _mm512_cmpge_epi32_mask(off, _mm512_set1_epi32(32));
                    __m512 a = _mm512_mask_blend_ps(upper, _mm512_permutex2var_ps(t0, off, t1),
                                                    _mm512_permutex2var_ps(t2, off, t3));
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(bw + 16 * t), a, acc);
                }
            } else { /* strong downscales */
                acc = dj_htaps_reduced(tmp, h, j, W);
            }
            _mm512_storeu_ps(out + p * ow + j, acc);
        }
    }
    const __m512 yo = _mm512_set1_ps(k->y_off), ys = _mm512_set1_ps(k->y_scale), c128 = _mm512_set1_ps(128.0f);
    for (int j = 0; j < W; j += 16) {
        int n = W - j < 16 ? W - j : 16;
        __m512 Y = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(out + j), yo), ys);
        __m512 U = _mm512_sub_ps(_mm512_loadu_ps(out + ow + j), c128);
        __m512 V = _mm512_sub_ps(_mm512_loadu_ps(out + 2 * ow + j), c128);
        dj_rgb16(k, Y, U, V, j, n, W, flip, o8, o32);
    }
}
