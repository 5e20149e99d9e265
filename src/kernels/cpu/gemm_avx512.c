/* gemm_avx512.c — AVX-512 GEMM micro-kernels: a 12x32 float32 tile (24 zmm
 * accumulators, one broadcast of A times two zmm rows of B per k) and the
 * same tile in bfloat16 with vdpbf16ps (two k per instruction); plus the
 * FMA peak probes of `dojo bench gemm`. Compiled with -mavx512*; called only
 * when cpuid says the CPU has them. */
#include <immintrin.h>

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

void dj_sgemm_micro_avx512(int64_t kc, const void *ap, const void *bp, float *c, int64_t ldc, float alpha,
                           float beta) {
    const float *a = ap; /* kc x 12 */
    const float *b = bp; /* kc x 32 */
    DJ_ROWS12(DJ_DECL)
    DJ_ROWS12(DJ_PREFETCH_C)
#define DJ_FMA(i)                                       \
    {                                                   \
        __m512 ai = _mm512_set1_ps(a[i]);               \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);     \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);     \
    }
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        DJ_ROWS12(DJ_FMA)
        a += DJ_GEMM_AVX512_MR;
        b += DJ_GEMM_AVX512_NR;
    }
#undef DJ_FMA
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    DJ_ROWS12(DJ_STORE)
}

void dj_bgemm_micro_avx512(int64_t kc, const void *ap, const void *bp, float *c, int64_t ldc, float alpha,
                           float beta) {
    const uint32_t *a = ap; /* kc/2 x 12 pairs (A[i,k], A[i,k+1]) */
    const uint16_t *b = bp; /* kc/2 x 32 x 2 interleaved (B[k,j], B[k+1,j]) */
    DJ_ROWS12(DJ_DECL)
    DJ_ROWS12(DJ_PREFETCH_C)
#define DJ_DOT(i)                                                        \
    {                                                                    \
        __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);            \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, ai, b0);                     \
        c##i##1 = _mm512_dpbf16_ps(c##i##1, ai, b1);                     \
    }
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k += 2) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 32);
        DJ_ROWS12(DJ_DOT)
        a += DJ_GEMM_BF16_MR;
        b += 2 * DJ_GEMM_BF16_NR;
    }
#undef DJ_DOT
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    DJ_ROWS12(DJ_STORE)
}

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
