/* bf16_internal.h — rounding float32 activations to bfloat16 inside the
 * mixed-precision operators (conv3d, linear). Not a public header. */
#ifndef DOJO_NN_BF16_INTERNAL_H
#define DOJO_NN_BF16_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "dojo/threadpool.h"

/* float32 -> bf16, round to nearest even, NaN kept quiet (as dj_f32_to_bf16
 * and PyTorch); inline so that conversion loops vectorise. */
static inline uint16_t dj_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* dst (rows, cols), dense = bf16 of src (rows, cols) with row stride ld;
 * parallel over rows. */
void dj_bf16_rows(dj_threadpool *pool, const float *src, int64_t ld, int64_t rows, int64_t cols, uint16_t *dst);

/* dst[0, n) = dj_bf16_round(src[i]): the plain loop (the reference), and
 * the AVX-512 one (bf16_rows_avx512.c; only when dj_cpu_best_isa() says
 * AVX-512), which gives the same bits. */
void dj_bf16_round_ref(const float *src, int64_t n, uint16_t *dst);
#if defined(__x86_64__)
void dj_bf16_round_avx512(const float *src, int64_t n, uint16_t *dst);
#endif

/* The better of the two for this CPU (pick once per loop: it reads
 * DOJO_CPU). */
typedef void (*dj_bf16_round_fn)(const float *src, int64_t n, uint16_t *dst);
dj_bf16_round_fn dj_bf16_round_pick(void);

/* Bytes rounded up to 64 (the parts of a mixed-precision scratch buffer). */
static inline size_t dj_bf16_align(size_t n) { return (n + 63) / 64 * 64; }

#endif
