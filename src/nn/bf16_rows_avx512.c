/* bf16_rows_avx512.c — the AVX-512 body of dj_bf16_rows (bf16_rows.c): 16
 * floats at a time rounded to bf16 with the integer steps of dj_bf16_round
 * (round to nearest even, NaN kept quiet), so the same bits as the scalar
 * loop. AVX-512F/BW only (no bf16 instruction: vcvtneps2bf16 treats
 * denormals as zero); called when dj_cpu_best_isa() says AVX-512. */
#include <immintrin.h>

#include "nn/bf16_internal.h"

void dj_bf16_round_avx512(const float *src, int64_t n, uint16_t *dst) {
    const __m512i abs = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    const __m512i half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512i u = _mm512_maskz_loadu_epi32(m, src + i);
        __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(half, odd)), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs), inf);
        r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), quiet);
        _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtepi32_epi16(r));
    }
}
