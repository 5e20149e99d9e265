/* dojo/gemm.h — matrix multiply, the kernel under every conv and linear.
 *
 * Row-major: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, where
 * op(X) is X or X transposed (then A is stored K x M with leading dimension
 * lda, and so on, as in cblas with CblasRowMajor). beta == 0 ignores what C
 * held (NaN included). The fast kernels (packed, cache-blocked, AVX-512 or
 * AVX2 chosen at run time, scalar otherwise) split work over M and N only,
 * never over K, so the result is bit-identical for any number of threads. */
#ifndef DOJO_GEMM_H
#define DOJO_GEMM_H

#include <stdint.h>

#include "dojo/error.h"
#include "dojo/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dj_trans {
    DJ_NO_TRANS = 0,
    DJ_TRANS = 1,
} dj_trans;

/* float32 GEMM with the best kernel for this CPU. */
dj_status dj_sgemm(dj_threadpool *pool, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Packs the block op(B)[k0:k0+kc, j0:j0+nc] in the layout of the micro-
 * kernels: dst[ceil(nc/nr)][kc][nr], for each k the nr columns of one panel
 * side by side, columns past nc zero. tmp holds 32 * kc floats for the
 * packer's own use. Called from several threads at once, on different
 * blocks; must not fail. */
typedef void (*dj_sgemm_pack_fn)(void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float *dst,
                                 float *tmp);

/* dj_sgemm with B given by a packing function instead of a matrix: an
 * implicit GEMM, e.g. a convolution whose columns are gathered straight
 * into the kernel's panels. Same blocking, threads and sums as dj_sgemm. */
dj_status dj_sgemm_packed_b(dj_threadpool *pool, dj_trans ta, int64_t M, int64_t N, int64_t K, float alpha,
                            const float *A, int64_t lda, dj_sgemm_pack_fn pack_b, void *ctx, float beta, float *C,
                            int64_t ldc);

/* For packing functions: the n rows X[j*ld + k] (k < kc) as the columns of
 * panels of nr, in the layout above (rows past n zero). */
void dj_sgemm_pack_rows(const float *X, int64_t ld, int64_t n, int64_t kc, int nr, float *dst);

/* The naive triple loop (accumulates in double): the reference every fast
 * kernel is tested against. */
dj_status dj_sgemm_ref(dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                       int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* bfloat16 inputs, float32 accumulation and output (AVX512_BF16 dot
 * products where the CPU has them, converted to float32 otherwise). */
dj_status dj_gemm_bf16(dj_threadpool *pool, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C,
                       int64_t ldc);

/* Bytes of the `tmp` buffer every bf16 packing function gets. */
enum { DJ_GEMM_BF16_PACK_TMP = 131072 };

/* Packs the block op(B)[k0:k0+kc, j0:j0+nc] of a bf16 B in k pairs:
 * dst[ceil(nc/nr)][kcp/2][nr][2] bf16, kcp = kc rounded up to even; for
 * pair q and panel column c the two values (B[k0+2q, j], B[k0+2q+1, j]),
 * zero past kc and past nc. tmp holds DJ_GEMM_BF16_PACK_TMP bytes for the
 * packer's own use. Called from several threads at once, on different
 * blocks; must not fail. (Where the CPU lacks vdpbf16ps the driver converts
 * this layout to float32 panels itself, so one packer serves both paths.) */
typedef void (*dj_gemm_bf16_pack_fn)(void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr,
                                     uint16_t *dst, void *tmp);

/* dj_gemm_bf16 with B given by a packing function (an implicit GEMM): the
 * same blocking, threads and sums as dj_gemm_bf16 on the stored matrix, so
 * the same bits on every path. */
dj_status dj_gemm_bf16_packed_b(dj_threadpool *pool, dj_trans ta, int64_t M, int64_t N, int64_t K, float alpha,
                                const uint16_t *A, int64_t lda, dj_gemm_bf16_pack_fn pack_b, void *ctx, float beta,
                                float *C, int64_t ldc);

/* For bf16 packing functions: the n rows X[j*ld + k] (k < kc) as the columns
 * of panels of nr, in the pair layout above (rows past n zero). */
void dj_gemm_bf16_pack_rows(const uint16_t *X, int64_t ld, int64_t n, int64_t kc, int nr, uint16_t *dst);

/* For bf16 packing functions: rows [k, k+rows) of a block of kc x nc (k
 * even; rows even unless k+rows == kc) from lines L[i*ld + c], c < nc, into
 * the block's panels (panel columns past nc zero). */
void dj_gemm_bf16_pack_lines(const uint16_t *L, int64_t ld, int64_t k, int64_t rows, int64_t nc, int64_t kc, int nr,
                             uint16_t *dst);

#ifdef __cplusplus
}
#endif
#endif
