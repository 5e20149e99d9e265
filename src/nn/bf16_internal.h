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

/* Bytes rounded up to 64 (the parts of a mixed-precision scratch buffer). */
static inline size_t dj_bf16_align(size_t n) { return (n + 63) / 64 * 64; }

#endif
