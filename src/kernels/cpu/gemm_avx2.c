/* gemm_avx2.c — AVX2+FMA GEMM micro-kernel: a 6x16 float32 tile (12 ymm
 * accumulators, one broadcast of A times two ymm rows of B per k), and the
 * AVX2 FMA peak probe of `dojo bench gemm`. Compiled with -mavx2 -mfma;
 * called only when cpuid says the CPU has them. */
#include <immintrin.h>

#include "gemm_kernels.h"

#define DJ_ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define DJ_ROWS12(X) DJ_ROWS6(X) X(6) X(7) X(8) X(9) X(10) X(11)

void dj_sgemm_micro_avx2(int64_t kc, const void *ap, const void *bp, float *c, int64_t ldc, float alpha,
                         float beta) {
    const float *a = ap; /* kc x 6 */
    const float *b = bp; /* kc x 16 */
#define DJ_DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
    DJ_ROWS6(DJ_DECL)
#undef DJ_DECL
#define DJ_FMA(i)                                       \
    {                                                   \
        __m256 ai = _mm256_broadcast_ss(a + (i));       \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);     \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);     \
    }
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        DJ_ROWS6(DJ_FMA)
        a += DJ_GEMM_AVX2_MR;
        b += DJ_GEMM_AVX2_NR;
    }
#undef DJ_FMA
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#define DJ_STORE(i)                                                                          \
    {                                                                                        \
        float *cr = c + (i) * ldc;                                                           \
        if (beta == 0.0f) {                                                                  \
            _mm256_storeu_ps(cr, _mm256_mul_ps(c##i##0, va));                                \
            _mm256_storeu_ps(cr + 8, _mm256_mul_ps(c##i##1, va));                            \
        } else {                                                                             \
            __m256 o0 = _mm256_mul_ps(_mm256_loadu_ps(cr), vb);                              \
            __m256 o1 = _mm256_mul_ps(_mm256_loadu_ps(cr + 8), vb);                          \
            _mm256_storeu_ps(cr, _mm256_fmadd_ps(c##i##0, va, o0));                          \
            _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(c##i##1, va, o1));                      \
        }                                                                                    \
    }
    DJ_ROWS6(DJ_STORE)
#undef DJ_STORE
}

double dj_fma_peak_avx2(int64_t iters) {
#define DJ_PEAK_DECL(i) __m256 x##i = _mm256_set1_ps(1.0f + 0.001f * (i));
    DJ_ROWS12(DJ_PEAK_DECL)
    __m256 m = _mm256_set1_ps(0.999999f), s = _mm256_set1_ps(1e-7f);
    for (int64_t it = 0; it < iters; it++) {
#define DJ_PEAK_STEP(i) x##i = _mm256_fmadd_ps(x##i, m, s);
        DJ_ROWS12(DJ_PEAK_STEP)
        __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3), "+x"(x4), "+x"(x5));
    }
    __m256 acc = _mm256_setzero_ps();
#define DJ_PEAK_SUM(i) acc = _mm256_add_ps(acc, x##i);
    DJ_ROWS12(DJ_PEAK_SUM)
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    volatile float sink = lanes[0] + lanes[7];
    (void)sink;
    return (double)iters * 12 * 8 * 2;
}
