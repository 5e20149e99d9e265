/* gemm_bf16_pack.c — the converted bf16 GEMM path: packing bf16 operands into
 * float32 panels in vdpbf16ps's order of summation (also from the pair
 * layout of an implicit GEMM's packer), and the flush-to-zero
 * mode the instruction works in, so that a CPU without avx512_bf16 gives the
 * same bits as one with it (see gemm_kernels.h). */
#include <string.h>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "gemm_kernels.h"

static inline float dj_bf16_as_f32(uint16_t x) {
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* op(X)[i, k] for the packer: X[i*ld + k], or X[k*ld + i] when trans. */
static inline float dj_bf16_at(const uint16_t *X, int64_t ld, int trans, int64_t i, int64_t k) {
    return dj_bf16_as_f32(trans ? X[k * ld + i] : X[i * ld + k]);
}

void dj_pack_bf16_swapped(const uint16_t *X, int64_t ld, int trans, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                          int mr, float *dst) {
    int64_t kcp = (kc + 1) / 2 * 2;
    for (int64_t ir = 0; ir < mc; ir += mr) {
        int m = mc - ir < mr ? (int)(mc - ir) : mr;
        float *d = dst + ir * kcp; /* (kcp, mr) */
        for (int64_t q = 0; q < kcp; q++, d += mr) {
            int64_t k = q ^ 1; /* k+1 of the pair first, then k */
            int r = 0;
            if (k < kc)
                for (; r < m; r++)
                    d[r] = dj_bf16_at(X, ld, trans, i0 + ir + r, k0 + k);
            for (; r < mr; r++)
                d[r] = 0.0f;
        }
    }
}

void dj_bf16_pairs_expand(const uint16_t *src, int64_t nc, int64_t kc, int nr, float *dst) {
    int64_t kp = (kc + 1) / 2;
    for (int64_t jr = 0; jr < nc; jr += nr) {
        const uint16_t *s = src + jr * 2 * kp; /* (kp, nr, 2) */
        float *d = dst + jr * 2 * kp;          /* (2 kp, nr) */
        for (int64_t q = 0; q < kp; q++, s += 2 * nr, d += 2 * nr)
            for (int c = 0; c < nr; c++) {
                d[c] = dj_bf16_as_f32(s[2 * c + 1]); /* k+1 of the pair first, then k */
                d[nr + c] = dj_bf16_as_f32(s[2 * c]);
            }
    }
}

unsigned dj_bf16_ftz_begin(void) {
#if defined(__x86_64__)
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040u); /* FTZ (bit 15) and DAZ (bit 6) */
    return saved;
#else
    return 0;
#endif
}

void dj_bf16_ftz_end(unsigned saved) {
#if defined(__x86_64__)
    _mm_setcsr(saved);
#else
    (void)saved;
#endif
}
