/* gemm_bf16_pack_avx512.c — an AVX-512 packer for bf16 A panels whose k runs
 * down the stored rows (op(A) = A^T: the weights of conv3d's backward-data
 * product): each k pair is two stored rows interleaved into (k, k+1) words,
 * 12 at a time, instead of one element at a time. Compiled with -mavx512*;
 * called only when the bf16 plan (vdpbf16ps) is in use. */
#include <immintrin.h>

#include "gemm_kernels.h"

void dj_pack_pairs_at_avx512(const uint16_t *X, int64_t ld, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int mr,
                             uint32_t *dst) {
    /* word c of the result = (s0[c], s1[c]) for c < 16 */
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                                        37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    int64_t kp = (kc + 1) / 2;
    for (int64_t ir = 0; ir < mc; ir += mr) {
        int m = mc - ir < mr ? (int)(mc - ir) : mr;
        __mmask32 load = m >= 32 ? 0xffffffffu : (__mmask32)((1u << m) - 1);
        __mmask16 st0 = (__mmask16)(mr >= 16 ? 0xffffu : (1u << mr) - 1);
        __mmask16 st1 = (__mmask16)(mr > 16 ? (1u << (mr - 16)) - 1 : 0);
        uint32_t *d = dst + ir * kp; /* (kp, mr) words */
        for (int64_t p = 0; p < kp; p++, d += mr) {
            const uint16_t *s0 = X + (k0 + 2 * p) * ld + i0 + ir;
            __m512i a = _mm512_maskz_loadu_epi16(load, s0);
            __m512i b = 2 * p + 1 < kc ? _mm512_maskz_loadu_epi16(load, s0 + ld) : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(d, st0, _mm512_permutex2var_epi16(a, lo, b));
            if (st1)
                _mm512_mask_storeu_epi32(d + 16, st1, _mm512_permutex2var_epi16(a, hi, b));
        }
    }
}
