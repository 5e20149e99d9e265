/* gemm_kernels.h — private: the GEMM micro-kernels of each instruction set
 * and the constants the packed driver (gemm.c) shares with them.
 *
 * A micro-kernel computes one MR x NR tile of C from packed panels:
 *   a: MR x kc, k-major (for each k, MR consecutive values of a column of A)
 *   b: kc x NR, k-major (for each k, NR consecutive values of a row of B)
 *   C[MR,NR] (row stride ldc) = alpha * a.b + beta * C, beta == 0: C not read.
 * The bf16 kernel takes k in pairs: a holds, for each pair, MR uint32 words
 * (A[i,k] low, A[i,k+1] high) and b holds, for each pair, NR interleaved
 * (B[k,j], B[k+1,j]) couples; kc counts bf16 values (even).
 * Kernels are called only after dj_cpu_best_isa() allows their ISA. */
#ifndef DOJO_GEMM_KERNELS_H
#define DOJO_GEMM_KERNELS_H

#include <stdint.h>

typedef void (*dj_gemm_micro_fn)(int64_t kc, const void *a, const void *b, float *c, int64_t ldc, float alpha,
                                 float beta);

/* tiles (rows x columns of C) */
enum {
    DJ_GEMM_SCALAR_MR = 4, DJ_GEMM_SCALAR_NR = 8,
    DJ_GEMM_AVX2_MR = 6, DJ_GEMM_AVX2_NR = 16,
    DJ_GEMM_AVX512_MR = 12, DJ_GEMM_AVX512_NR = 32, DJ_GEMM_AVX512_MR8 = 8,
    DJ_GEMM_BF16_MR = 12, DJ_GEMM_BF16_NR = 32, DJ_GEMM_BF16_MR8 = 8,
    DJ_GEMM_MAX_MR = 12, DJ_GEMM_MAX_NR = 32,
};

/* K block of every bf16 plan (bf16 values, even): the native kernel and the
 * converted path sum over the same blocks, so they agree bit for bit. */
enum { DJ_GEMM_BF16_KC = 1024 };

/* ---- the converted bf16 path (gemm_bf16_pack.c) ----
 * Where the CPU lacks vdpbf16ps, bf16 operands are converted to float32 while
 * packing, in the order vdpbf16ps sums them: within each k pair, k+1 first,
 * then k (so the float32 micro-kernel's chain of fused multiply-adds is the
 * instruction's), kc rounded up to even with zeros. The products of two bf16
 * values are exact in float32, so each step is one rounding, as in
 * vdpbf16ps; with flush-to-zero and denormals-are-zero set around the
 * kernels (vdpbf16ps works that way) even tiny values give the same bits.
 * Packs rows [i0, i0+mc) x k [k0, k0+kc) of op(X) into dst[mc/mr][kcp][mr]. */
void dj_pack_bf16_swapped(const uint16_t *X, int64_t ld, int trans, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                          int mr, float *dst);
/* The pair layout of a bf16 packing function (dj_gemm_bf16_pack_fn) as the
 * converted path's float32 panels: src[ceil(nc/nr)][kcp/2][nr][2] bf16 ->
 * dst[ceil(nc/nr)][kcp][nr], each pair swapped as above. */
void dj_bf16_pairs_expand(const uint16_t *src, int64_t nc, int64_t kc, int nr, float *dst);
/* Sets FTZ and DAZ on this thread (x86-64; nothing elsewhere) and returns
 * the previous control word for dj_bf16_ftz_end. */
unsigned dj_bf16_ftz_begin(void);
void dj_bf16_ftz_end(unsigned saved);

void dj_sgemm_micro_scalar(int64_t kc, const void *a, const void *b, float *c, int64_t ldc, float alpha, float beta);
#if defined(__x86_64__)
void dj_sgemm_micro_avx2(int64_t kc, const void *a, const void *b, float *c, int64_t ldc, float alpha, float beta);
void dj_sgemm_micro_avx512(int64_t kc, const void *a, const void *b, float *c, int64_t ldc, float alpha, float beta);
/* 8 x 32 tile (DJ_GEMM_AVX512_MR8 rows) */
void dj_sgemm_micro_avx512_8(int64_t kc, const void *a, const void *b, float *c, int64_t ldc, float alpha,
                             float beta);
/* needs avx512_bf16 as well */
void dj_bgemm_micro_avx512(int64_t kc, const void *a, const void *b, float *c, int64_t ldc, float alpha, float beta);
/* 8 x 32 bf16 tile (DJ_GEMM_BF16_MR8 rows) */
void dj_bgemm_micro_avx512_8(int64_t kc, const void *a, const void *b, float *c, int64_t ldc, float alpha,
                             float beta);
/* Packing helpers. rows32: copies n 32-bit words from each of m rows
 * (ld_bytes apart) into dst[n][mr], rows m..mr-1 zero (m <= mr <= 32): the
 * transpose behind the A panels (floats, or bf16 pairs as words).
 * interleave: d[2c] = s0[c], d[2c+1] = s1[c] for c < 32 (0 past n, and for
 * s1 NULL): one k-pair of a bf16 B panel. */
void dj_pack_rows32_avx512(const void *src, int64_t ld_bytes, int m, int64_t n, int mr, void *dst);
void dj_pack_interleave_avx512(const uint16_t *s0, const uint16_t *s1, int n, uint16_t *d);
/* bf16 A panels in k pairs from a transposed A (X[k*ld + i]): rows
 * [i0, i0+mc) x k [k0, k0+kc) into dst[mc/mr][kcp/2][mr] words (k low, k+1
 * high; zeros past mc and kc); mr <= 32 (gemm_bf16_pack_avx512.c). */
void dj_pack_pairs_at_avx512(const uint16_t *X, int64_t ld, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int mr,
                             uint32_t *dst);
#endif

/* Fused multiply-add peak probes for `dojo bench gemm`: run `iters` steps of
 * independent FMA chains on registers with that ISA and return the number of
 * floating-point operations done (2 per lane per FMA). */
double dj_fma_peak_scalar(int64_t iters);
#if defined(__x86_64__)
double dj_fma_peak_avx2(int64_t iters);
double dj_fma_peak_avx512(int64_t iters);
/* vdpbf16ps: 4 flops per float32 lane per instruction */
double dj_bf16_peak_avx512(int64_t iters);
#endif

#endif
