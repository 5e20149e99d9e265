/* conv3d_gather_avx512.c — the strided reads of the float32 implicit GEMM
 * (conv3d.c): a row of the column matrix of a stride-2 convolution takes
 * every second input value, which the portable loop moves one float at a
 * time; here two vectors and one permute give sixteen. The stem of the
 * VideoResNets (3 -> 64 or 16 channels, (3,7,7) stride (1,2,2)) spends most
 * of its time in these reads: 16-64 output channels amortise each gathered
 * value over few multiply-adds. Masked loads never touch memory past the
 * last value used. Called when dj_cpu_best_isa() says AVX-512. */
#include <immintrin.h>

#include "nn/conv3d_internal.h"

void dj_conv_gather2_avx512(const float *src, int64_t n, float *dst) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int64_t q = 0;
    /* src[2q .. 2q + 30] per 16 outputs; the 32nd float only while more follow */
    for (; q + 16 < n; q += 16)
        _mm512_storeu_ps(dst + q, _mm512_permutex2var_ps(_mm512_loadu_ps(src + 2 * q), even,
                                                         _mm512_loadu_ps(src + 2 * q + 16)));
    if (q < n) {
        int64_t used = 2 * (n - q) - 1; /* floats read: src[2q .. 2n - 2] */
        __mmask16 lo = (__mmask16)(used >= 16 ? 0xFFFF : (1u << used) - 1u);
        __mmask16 hi = (__mmask16)(used <= 16 ? 0 : (1u << (used - 16)) - 1u);
        __m512 v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, src + 2 * q), even,
                                          _mm512_maskz_loadu_ps(hi, src + 2 * q + 16));
        _mm512_mask_storeu_ps(dst + q, (__mmask16)((1u << (n - q)) - 1u), v);
    }
}
