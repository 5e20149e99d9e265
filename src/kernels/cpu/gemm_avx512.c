/* gemm_avx512.c — AVX-512 GEMM micro-kernels: a 12x32 float32 tile (24 zmm
 * accumulators, one broadcast of A times two zmm rows of B per k), an 8x32
 * one for row counts that are multiples of 8 but not of 12, and the
 * same tile in bfloat16 with vdpbf16ps (two k per instruction); plus the
 * FMA peak probes of `dojo bench gemm`. Compiled with -mavx512*; called only
 * when cpuid says the CPU has them. */
#include <immintrin.h>
#include <string.h>

#include "gemm_kernels.h"

/* the 12 rows of the tile, unrolled by the preprocessor so that the 24
 * accumulators live in registers */
#define DJ_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

#define DJ_DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();

/* C row i = alpha * acc + beta * C (beta == 0: C not read) */
#define DJ_STORE(i)                                                                          \
    {                                                                                        \
        float *cr = c + (i) * ldc;                                                           \
        if (beta == 0.0f) {                                                                  \
            _mm512_storeu_ps(cr, _mm512_mul_ps(c##i##0, va));                                \
            _mm512_storeu_ps(cr + 16, _mm512_mul_ps(c##i##1, va));                           \
        } else {                                                                             \
            __m512 o0 = _mm512_mul_ps(_mm512_loadu_ps(cr), vb);                              \
            __m512 o1 = _mm512_mul_ps(_mm512_loadu_ps(cr + 16), vb);                         \
            _mm512_storeu_ps(cr, _mm512_fmadd_ps(c##i##0, va, o0));                          \
            _mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(c##i##1, va, o1));                     \
        }                                                                                    \
    }

#define DJ_PREFETCH_C(i)                                 \
    _mm_prefetch((const char *)(c + (i) * ldc), _MM_HINT_T0); \
    _mm_prefetch((const char *)(c + (i) * ldc + 16), _MM_HINT_T0);

/* A broadcast from memory inside each FMA ({1to16}): measured ~1% faster
 * on Zen 4 than a separate vbroadcastss feeding two FMAs */
#define DJ_FMA(i)                                                                                     \
    __asm__("vfmadd231ps %[x]%{1to16%}, %[b], %[c]" : [c] "+v"(c##i##0) : [b] "v"(b0), [x] "m"(a[i])); \
    __asm__("vfmadd231ps %[x]%{1to16%}, %[b], %[c]" : [c] "+v"(c##i##1) : [b] "v"(b1), [x] "m"(a[i]));

/* One float32 tile of ROWS x 32 (ROWS(X) lists its rows, MR is its height):
 * one FMA chain over k from zero per element, whatever the height. */
#define DJ_SGEMM_TILE(name, ROWS, MR)                                                                  \
    void name(int64_t kc, const void *ap, const void *bp, float *c, int64_t ldc, float alpha, float beta) { \
        const float *a = ap; /* kc x MR */                                                             \
        const float *b = bp; /* kc x 32 */                                                             \
        ROWS(DJ_DECL)                                                                                  \
        ROWS(DJ_PREFETCH_C)                                                                            \
        _Pragma("GCC unroll 4") for (int64_t k = 0; k < kc; k++) {                                     \
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);                                \
            ROWS(DJ_FMA)                                                                               \
            a += MR;                                                                                   \
            b += DJ_GEMM_AVX512_NR;                                                                    \
        }                                                                                              \
        __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                                  \
        ROWS(DJ_STORE)                                                                                 \
    }

/* The 8x32 tiles (16 accumulators): for M = 64, 128, 256, 512 (the channel
 * counts of video ResNets), which 12-row tiles cover only with a partly
 * empty last tile (M = 64: 72 rows computed for 64). */
#define DJ_ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

DJ_SGEMM_TILE(dj_sgemm_micro_avx512, DJ_ROWS12, DJ_GEMM_AVX512_MR)
DJ_SGEMM_TILE(dj_sgemm_micro_avx512_8, DJ_ROWS8, DJ_GEMM_AVX512_MR8)
#undef DJ_FMA

/* bf16 tiles: A's word (A[i,k], A[i,k+1]) broadcast from memory inside
 * each vdpbf16ps ({1to16}), as the float32 kernels do. One pair of k per
 * instruction; the same order of sums whatever the tile height. */
#define DJ_DOT(i)                                                                                              \
    __asm__("vdpbf16ps %[x]%{1to16%}, %[b], %[c]" : [c] "+v"(c##i##0) : [b] "v"(b0), [x] "m"(a[i]));           \
    __asm__("vdpbf16ps %[x]%{1to16%}, %[b], %[c]" : [c] "+v"(c##i##1) : [b] "v"(b1), [x] "m"(a[i]));

#define DJ_BGEMM_TILE(name, ROWS, MR)                                                                  \
    void name(int64_t kc, const void *ap, const void *bp, float *c, int64_t ldc, float alpha, float beta) { \
        const uint32_t *a = ap; /* kc/2 x MR pairs (A[i,k], A[i,k+1]) */                               \
        const uint16_t *b = bp; /* kc/2 x 32 x 2 interleaved (B[k,j], B[k+1,j]) */                     \
        ROWS(DJ_DECL)                                                                                  \
        ROWS(DJ_PREFETCH_C)                                                                            \
        _Pragma("GCC unroll 4") for (int64_t k = 0; k < kc; k += 2) {                                  \
            __m512 b0 = _mm512_castsi512_ps(_mm512_load_si512(b));                                     \
            __m512 b1 = _mm512_castsi512_ps(_mm512_load_si512(b + 32));                                \
            ROWS(DJ_DOT)                                                                               \
            a += MR;                                                                                   \
            b += 2 * DJ_GEMM_BF16_NR;                                                                  \
        }                                                                                              \
        __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                                  \
        ROWS(DJ_STORE)                                                                                 \
    }

DJ_BGEMM_TILE(dj_bgemm_micro_avx512, DJ_ROWS12, DJ_GEMM_BF16_MR)
DJ_BGEMM_TILE(dj_bgemm_micro_avx512_8, DJ_ROWS8, DJ_GEMM_BF16_MR8)
#undef DJ_DOT

/* 12 independent chains: more than latency (4) x throughput of any current
 * core, so the loop runs at the FMA units' rate. */
#define DJ_PEAK_DECL(i) __m512 x##i = _mm512_set1_ps(1.0f + 0.001f * (i));
#define DJ_PEAK_STEP(i) x##i = _mm512_fmadd_ps(x##i, m, s);
#define DJ_PEAK_SUM(i) acc = _mm512_add_ps(acc, x##i);

double dj_fma_peak_avx512(int64_t iters) {
    DJ_ROWS12(DJ_PEAK_DECL)
    __m512 m = _mm512_set1_ps(0.999999f), s = _mm512_set1_ps(1e-7f);
    for (int64_t it = 0; it < iters; it++) {
        DJ_ROWS12(DJ_PEAK_STEP)
        __asm__ volatile("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5));
    }
    __m512 acc = _mm512_setzero_ps();
    DJ_ROWS12(DJ_PEAK_SUM)
    volatile float sink = _mm512_reduce_add_ps(acc);
    (void)sink;
    return (double)iters * 12 * 16 * 2;
}

#define DJ_BPEAK_STEP(i) x##i = _mm512_dpbf16_ps(x##i, m, s);

double dj_bf16_peak_avx512(int64_t iters) {
    DJ_ROWS12(DJ_PEAK_DECL)
    __m512bh m = (__m512bh)_mm512_set1_epi32(0x3f803f80), s = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (int64_t it = 0; it < iters; it++) {
        DJ_ROWS12(DJ_BPEAK_STEP)
        __asm__ volatile("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5));
    }
    __m512 acc = _mm512_setzero_ps();
    DJ_ROWS12(DJ_PEAK_SUM)
    volatile float sink = _mm512_reduce_add_ps(acc);
    (void)sink;
    return (double)iters * 12 * 16 * 4;
}

/* ---- packing helpers ------------------------------------------------------ */

/* In-register transpose of a 16x16 block of 32-bit values: r[i] lane j
 * becomes r[j] lane i. Pure bit moves (no arithmetic), so it serves bf16
 * pairs as well as floats. */
static inline void dj_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) {
        __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
        __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
        r[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c)); /* column 4L+0 of rows 4g..4g+3 */
        r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int j = 0; j < 4; j++) {
        t[4 * j + 0] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 * j + 1] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        t[4 * j + 2] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[4 * j + 3] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[4 * j + 0], t[4 * j + 2], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[4 * j + 0], t[4 * j + 2], 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 * j + 1], t[4 * j + 3], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 * j + 1], t[4 * j + 3], 0xdd);
    }
}

void dj_pack_rows32_avx512(const void *src, int64_t ld_bytes, int m, int64_t n, int mr, void *dstp) {
    const char *s = src;
    uint32_t *dst = dstp;
    for (int h = 0; h < mr; h += 16) { /* 16 rows at a time */
        int rows = m - h < 16 ? (m - h > 0 ? m - h : 0) : 16;
        int lanes = mr - h < 16 ? mr - h : 16;
        __mmask16 store = (__mmask16)((1u << lanes) - 1);
        int64_t k = 0;
        for (; k + 16 <= n; k += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? _mm512_loadu_ps(s + (h + i) * ld_bytes + 4 * k) : _mm512_setzero_ps();
            dj_transpose16(r);
            for (int j = 0; j < 16; j++)
                _mm512_mask_storeu_ps(dst + (k + j) * mr + h, store, r[j]);
        }
        for (; k < n; k++)
            for (int i = 0; i < lanes; i++) {
                uint32_t v = 0;
                if (i < rows)
                    memcpy(&v, s + (h + i) * ld_bytes + 4 * k, 4);
                dst[k * mr + h + i] = v;
            }
    }
}

void dj_pack_interleave_avx512(const uint16_t *s0, const uint16_t *s1, int n, uint16_t *d) {
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                                        37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    __mmask32 mask = n >= 32 ? 0xffffffffu : (__mmask32)((1u << n) - 1);
    __m512i a = _mm512_maskz_loadu_epi16(mask, s0);
    __m512i b = s1 ? _mm512_maskz_loadu_epi16(mask, s1) : _mm512_setzero_si512();
    _mm512_storeu_si512(d, _mm512_permutex2var_epi16(a, lo, b));
    _mm512_storeu_si512(d + 32, _mm512_permutex2var_epi16(a, hi, b));
}
