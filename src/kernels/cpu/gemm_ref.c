/* gemm_ref.c — the naive matrix multiply every fast GEMM is checked against. */
#include "dojo/gemm.h"

#include "dojo/tensor.h"

static dj_status dj_gemm_check(const char *who, int64_t M, int64_t N, int64_t K, const void *A, const void *B,
                               const void *C) {
    if (M < 0 || N < 0 || K < 0)
        return dj_error_set(DJ_ERR_INVALID, who, "negative size M=%lld N=%lld K=%lld", (long long)M, (long long)N,
                            (long long)K);
    if ((M && N && !C) || (M && K && !A) || (K && N && !B))
        return dj_error_set(DJ_ERR_INVALID, who, "NULL matrix");
    return DJ_OK;
}

#define DJ_AT(X, ld, trans, r, c) ((trans) ? (X)[(int64_t)(c) * (ld) + (r)] : (X)[(int64_t)(r) * (ld) + (c)])

dj_status dj_sgemm_ref(dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                       int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    DJ_TRY(dj_gemm_check("dj_sgemm_ref", M, N, K, A, B, C));
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)DJ_AT(A, lda, ta, i, k) * (double)DJ_AT(B, ldb, tb, k, j);
            float prev = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
            C[i * ldc + j] = (float)(alpha * acc) + prev;
        }
    return DJ_OK;
}
