/* gemm.c — dj_sgemm and dj_gemm_bf16: split over rows of C on the pool.
 * (A plain row-parallel loop; the packed AVX-512/AVX2 micro-kernels replace
 * its inner loop.) */
#include "dojo/gemm.h"

#include "dojo/tensor.h"

typedef struct dj_gemm_job {
    dj_trans ta, tb;
    int64_t N, K;
    float alpha, beta;
    const float *A;
    const uint16_t *Ab;
    int64_t lda;
    const float *B;
    const uint16_t *Bb;
    int64_t ldb;
    float *C;
    int64_t ldc;
} dj_gemm_job;

static inline float dj_load(const float *f, const uint16_t *b, int64_t i) { return f ? f[i] : dj_bf16_to_f32(b[i]); }

static void dj_gemm_rows(void *arg, int64_t begin, int64_t end, int thread) {
    const dj_gemm_job *g = arg;
    (void)thread;
    for (int64_t i = begin; i < end; i++) {
        float *c = g->C + i * g->ldc;
        for (int64_t j = 0; j < g->N; j++)
            c[j] = g->beta == 0.0f ? 0.0f : g->beta * c[j];
        for (int64_t k = 0; k < g->K; k++) {
            float a = g->alpha * dj_load(g->A, g->Ab, g->ta ? k * g->lda + i : i * g->lda + k);
            if (g->tb) {
                for (int64_t j = 0; j < g->N; j++)
                    c[j] += a * dj_load(g->B, g->Bb, j * g->ldb + k);
            } else {
                const int64_t row = k * g->ldb;
                for (int64_t j = 0; j < g->N; j++)
                    c[j] += a * dj_load(g->B, g->Bb, row + j);
            }
        }
    }
}

static dj_status dj_gemm_run(dj_threadpool *pool, dj_gemm_job *g, int64_t M, const char *who) {
    if (M < 0 || g->N < 0 || g->K < 0)
        return dj_error_set(DJ_ERR_INVALID, who, "negative size");
    if (M == 0 || g->N == 0)
        return DJ_OK;
    dj_parallel_for(pool, M, 4, dj_gemm_rows, g);
    return DJ_OK;
}

dj_status dj_sgemm(dj_threadpool *pool, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    dj_gemm_job g = {ta, tb, N, K, alpha, beta, A, NULL, lda, B, NULL, ldb, C, ldc};
    return dj_gemm_run(pool, &g, M, "dj_sgemm");
}

dj_status dj_gemm_bf16(dj_threadpool *pool, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C,
                       int64_t ldc) {
    dj_gemm_job g = {ta, tb, N, K, alpha, beta, NULL, A, lda, NULL, B, ldb, C, ldc};
    return dj_gemm_run(pool, &g, M, "dj_gemm_bf16");
}
