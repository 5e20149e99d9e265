/* conv3d_bf16_avx512.c — AVX-512 gatherers of the bf16 conv3d packers
 * (conv3d_bf16.c): rows of the column matrix read from the bf16 volume up
 * to 32 values at a time with masked loads (masked-off lanes, the padding,
 * read as zeros and are never touched in memory), and for the forward
 * packer two rows at a time interleaved into k pairs and stored straight
 * into the GEMM's panels, with no staging lines. The values are those of
 * dj_colb_row (the portable gatherer), only moved differently. Uses
 * AVX-512BW only (no bf16 arithmetic); called when dj_cpu_best_isa() says
 * AVX-512. */
#include <immintrin.h>

#include "nn/conv3d_internal.h"

/* lanes [a, b) of 32, clipped to [0, 32) */
static inline __mmask32 dj_lanes(int64_t a, int64_t b) {
    if (a < 0)
        a = 0;
    if (b > 32)
        b = 32;
    if (b <= a)
        return 0;
    return (__mmask32)((((uint64_t)1 << b) - 1) & ~(((uint64_t)1 << a) - 1));
}

/* bits [a, b) of 64 (0 <= a, b <= 64) */
static inline uint64_t dj_lanes64(int64_t a, int64_t b) {
    if (b <= a)
        return 0;
    uint64_t upto = b >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << b) - 1;
    return upto & ~(((uint64_t)1 << a) - 1);
}

/* One row of col at one run: the input row and the valid outputs [lo, hi)
 * (lo = hi = 0 when the input row is padding). */
typedef struct dj_colb_src {
    const uint16_t *s;
    int64_t lo, hi;
} dj_colb_src;

static inline dj_colb_src dj_colb_src_at(const dj_colb_job *j, const dj_colb_run *u, const dj_colb_rowpos *q) {
    const dj_conv_geom *g = j->g;
    dj_colb_src r = {NULL, 0, 0};
    if (!q)
        return r;
    int64_t it = u->it + q->kt * g->dt, ih = u->ih + q->kh * g->dh, iw0 = u->iw + q->kw * g->dw;
    if (it < 0 || it >= g->T || ih < 0 || ih >= g->H)
        return r;
    dj_valid_range(iw0, g->sw, g->W, u->seg, &r.lo, &r.hi);
    if (r.hi > r.lo)
        r.s = u->x + q->c * j->cs + (it * g->H + ih) * g->W + iw0;
    return r;
}

/* Outputs k..k+32 of the row (zeros outside [lo, hi)). */
static inline __m512i dj_colb_chunk(const dj_conv_geom *g, const dj_colb_src *r, int64_t k) {
    __mmask32 m = r->s ? dj_lanes(r->lo - k, r->hi - k) : 0;
    if (!m)
        return _mm512_setzero_si512();
    if (g->sw == 1)
        return _mm512_maskz_loadu_epi16(m, r->s + k);
    if (g->sw == 2) { /* the even lanes of 64 values: lane i reads s[2(k+i)] */
        const __m512i even = _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32, 30, 28,
                                              26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        int64_t a = r->lo - k > 0 ? r->lo - k : 0, b = r->hi - k < 32 ? r->hi - k : 32;
        uint64_t wide = dj_lanes64(2 * a, 2 * b - 1); /* values 2a .. 2(b-1) */
        __m512i lo = _mm512_maskz_loadu_epi16((__mmask32)wide, r->s + 2 * k);
        __m512i hi = _mm512_maskz_loadu_epi16((__mmask32)(wide >> 32), r->s + 2 * k + 32);
        return _mm512_permutex2var_epi16(lo, even, hi);
    }
    uint16_t t[32];
    for (int i = 0; i < 32; i++)
        t[i] = (m >> i & 1) ? r->s[(k + i) * g->sw] : 0;
    return _mm512_loadu_si512(t);
}

/* words w0 (lanes 0-15), w1 (lanes 16-31) to d[lane] for the lanes in m */
static inline void dj_store_words(uint32_t *d, __mmask32 m, __m512i w0, __m512i w1) {
    _mm512_mask_storeu_epi32(d, (__mmask16)(m & 0xffff), w0);
    _mm512_mask_storeu_epi32(d + 16, (__mmask16)(m >> 16), w1);
}

void dj_colb_pair_avx512(const dj_colb_job *j, const dj_colb_run *runs, int64_t nruns, dj_colb_rowpos qa,
                         const dj_colb_rowpos *qb, int64_t nc, int64_t kc, int64_t p, uint16_t *dst) {
    /* word c of the result = (a[c], b[c]) for c < 16; hi: c + 16 */
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                                        37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    int64_t ps = (kc + 1) / 2 * 32; /* words per panel */
    uint32_t *words = (uint32_t *)dst + p * 32;
    for (int64_t i = 0; i < nruns; i++) {
        const dj_colb_run *u = &runs[i];
        dj_colb_src a = dj_colb_src_at(j, u, &qa), b = dj_colb_src_at(j, u, qb);
        for (int64_t k = 0; k < u->seg; k += 32) {
            int64_t n = u->seg - k < 32 ? u->seg - k : 32;
            __m512i va = dj_colb_chunk(j->g, &a, k), vb = dj_colb_chunk(j->g, &b, k);
            __m512i w0 = _mm512_permutex2var_epi16(va, lo, vb), w1 = _mm512_permutex2var_epi16(va, hi, vb);
            int64_t c = u->j0 + k, off = c % 32, m = 32 - off; /* m lanes fit in this panel */
            uint32_t *d = words + c / 32 * ps + off;
            dj_store_words(d, dj_lanes(0, n < m ? n : m), w0, w1);
            if (n > m) /* the rest starts the next panel: lane m at its column 0 */
                dj_store_words(d + ps - 32, dj_lanes(m, n), w0, w1);
        }
    }
    if (nc % 32) /* columns past nc in the last panel */
        dj_store_words(words + nc / 32 * ps + nc % 32, dj_lanes(0, 32 - nc % 32), _mm512_setzero_si512(),
                       _mm512_setzero_si512());
}

void dj_colb_row_avx512(const dj_colb_job *j, const dj_colb_run *runs, int64_t nruns, dj_colb_rowpos q,
                        uint16_t *line) {
    for (int64_t i = 0; i < nruns; i++) {
        const dj_colb_run *u = &runs[i];
        dj_colb_src a = dj_colb_src_at(j, u, &q);
        for (int64_t k = 0; k < u->seg; k += 32) {
            int64_t n = u->seg - k < 32 ? u->seg - k : 32;
            _mm512_mask_storeu_epi16(line + u->j0 + k, dj_lanes(0, n), dj_colb_chunk(j->g, &a, k));
        }
    }
}
