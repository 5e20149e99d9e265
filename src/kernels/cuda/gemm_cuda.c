/* gemm_cuda.c — row-major GEMM on cuBLASLt, and linear layers on it.
 *
 * cuBLASLt is column-major: a row-major (r x c) matrix with leading
 * dimension ld is the column-major (c x r) matrix with the same ld, so
 * C = op(A) op(B) (row-major, M x N) is computed as the column-major
 * C^T (N x M) = op(B)^T op(A)^T: cuBLASLt's "A" is our B with transa = tb,
 * its "B" is our A with transb = ta. float32 runs in CUBLAS_COMPUTE_32F (no
 * TF32, to match the CPU within float32 rounding); bf16 inputs use the tensor
 * cores with float32 accumulation and a float32 C. */
#include "cuda_internal.h"

typedef struct dj_lt_call {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulPreference_t pref;
} dj_lt_call;

static void dj_lt_call_free(const dj_cublaslt_api *lt, dj_lt_call *k) {
    if (k->pref)
        lt->pref_destroy(k->pref);
    if (k->c)
        lt->layout_destroy(k->c);
    if (k->b)
        lt->layout_destroy(k->b);
    if (k->a)
        lt->layout_destroy(k->a);
    if (k->op)
        lt->desc_destroy(k->op);
}

static dj_status dj_lt_setup(dj_device *d, dj_lt_call *k, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K,
                             cudaDataType_t ab, const char *w, int64_t lda, int64_t ldb, int64_t ldc) {
    const dj_cublaslt_api *lt = d->lt_api;
    cublasOperation_t opa = tb == DJ_TRANS ? CUBLAS_OP_T : CUBLAS_OP_N; /* cuBLASLt's A is our B */
    cublasOperation_t opb = ta == DJ_TRANS ? CUBLAS_OP_T : CUBLAS_OP_N;
    DJ_TRY(dj_cublaslt_check(lt->desc_create(&k->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), w, "matmul descriptor"));
    DJ_TRY(dj_cublaslt_check(lt->desc_set(k->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa), w, "transa"));
    DJ_TRY(dj_cublaslt_check(lt->desc_set(k->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb), w, "transb"));
    /* column-major shapes as stored: our B is (K x N) row-major -> (N x K), or (N x K) -> (K x N) when transposed */
    DJ_TRY(dj_cublaslt_check(lt->layout_create(&k->a, ab, tb == DJ_TRANS ? K : N, tb == DJ_TRANS ? N : K, ldb), w,
                             "layout of B"));
    DJ_TRY(dj_cublaslt_check(lt->layout_create(&k->b, ab, ta == DJ_TRANS ? M : K, ta == DJ_TRANS ? K : M, lda), w,
                             "layout of A"));
    DJ_TRY(dj_cublaslt_check(lt->layout_create(&k->c, CUDA_R_32F, N, M, ldc), w, "layout of C"));
    DJ_TRY(dj_cublaslt_check(lt->pref_create(&k->pref), w, "preference"));
    uint64_t ws = d->workspace_bytes;
    return dj_cublaslt_check(lt->pref_set(k->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws), w,
                             "workspace preference");
}

dj_status dj_cuda_gemm(dj_device *d, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                       dj_dtype ab_type, const void *A, int64_t lda, const void *B, int64_t ldb, float beta,
                       float *C, int64_t ldc) {
    const char *w = "dj_cuda_gemm";
    if (M < 0 || N < 0 || K < 0)
        return dj_error_set(DJ_ERR_INVALID, w, "negative size %lldx%lldx%lld", (long long)M, (long long)N,
                            (long long)K);
    if (ab_type != DJ_DTYPE_F32 && ab_type != DJ_DTYPE_BF16)
        return dj_error_set(DJ_ERR_INVALID, w, "A and B must be f32 or bf16, not %s", dj_dtype_name(ab_type));
    if (lda < (ta == DJ_TRANS ? M : K) || ldb < (tb == DJ_TRANS ? K : N) || ldc < N)
        return dj_error_set(DJ_ERR_INVALID, w, "leading dimension too small");
    if (M == 0 || N == 0)
        return DJ_OK;
    if (K == 0) /* C = beta * C: let cuBLASLt do it with a zero-sized product is not allowed; scale by hand */
        return dj_error_set(DJ_ERR_UNSUPPORTED, w, "K = 0 is not supported on the GPU");
    cudaDataType_t ab = ab_type == DJ_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    dj_lt_call k = {0};
    dj_status st = dj_lt_setup(d, &k, ta, tb, M, N, K, ab, w, lda, ldb, ldc);
    cublasLtMatmulHeuristicResult_t h;
    int found = 0;
    if (st == DJ_OK)
        st = dj_cublaslt_check(d->lt_api->heuristic(d->lt, k.op, k.a, k.b, k.c, k.c, k.pref, 1, &h, &found), w,
                               "algorithm heuristic");
    if (st == DJ_OK && found < 1)
        st = dj_error_set(DJ_ERR_UNSUPPORTED, w, "cuBLASLt has no algorithm for %lldx%lldx%lld %s",
                          (long long)M, (long long)N, (long long)K, dj_dtype_name(ab_type));
    if (st == DJ_OK)
        st = dj_cublaslt_check(d->lt_api->matmul(d->lt, k.op, &alpha, B, k.a, A, k.b, &beta, C, k.c, C, k.c,
                                                 &h.algo, d->workspace, d->workspace_bytes, d->stream),
                               w, "cublasLtMatmul");
    dj_lt_call_free(d->lt_api, &k);
    return st;
}

/* inp (..., In) -> M rows; weight (Out, In) */
static dj_status dj_linear_dims(const dj_tensor *inp, const dj_tensor *weight, const char *w, int64_t *M,
                                int64_t *In, int64_t *Out) {
    if (!inp || !weight || inp->dtype != DJ_DTYPE_F32 || weight->dtype != DJ_DTYPE_F32 || weight->ndim != 2 ||
        inp->ndim < 1)
        return dj_error_set(DJ_ERR_INVALID, w, "inp (..., In) and weight (Out, In) must be f32");
    *In = weight->shape[1];
    *Out = weight->shape[0];
    if (inp->shape[inp->ndim - 1] != *In)
        return dj_error_set(DJ_ERR_INVALID, w, "input's last dim %lld does not match weight's In %lld",
                            (long long)inp->shape[inp->ndim - 1], (long long)*In);
    *M = *In ? dj_tensor_numel(inp) / *In : 0;
    return DJ_OK;
}

static dj_status dj_out_like(const dj_tensor *inp, int64_t Out, const dj_tensor *out, const char *what) {
    int64_t shape[DJ_MAX_DIMS];
    for (int i = 0; i < inp->ndim; i++)
        shape[i] = inp->shape[i];
    shape[inp->ndim - 1] = Out;
    return dj_tensor_expect(out, DJ_DTYPE_F32, inp->ndim, shape, what);
}

dj_status dj_cuda_linear_forward(dj_device *d, const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                                 dj_tensor *out) {
    const char *w = "dj_cuda_linear_forward";
    int64_t M = 0, In = 0, Out = 0;
    DJ_TRY(dj_linear_dims(inp, weight, w, &M, &In, &Out));
    DJ_TRY(dj_out_like(inp, Out, out, "out"));
    if (bias) {
        int64_t b[1] = {Out};
        DJ_TRY(dj_tensor_expect(bias, DJ_DTYPE_F32, 1, b, "bias"));
    }
    /* out (M,Out) = inp (M,In) . weight^T */
    DJ_TRY(dj_cuda_gemm(d, DJ_NO_TRANS, DJ_TRANS, M, Out, In, 1.f, DJ_DTYPE_F32, inp->data, In, weight->data, In, 0.f,
                        out->data, Out));
    if (!bias)
        return DJ_OK;
    dj_tensor o2;
    int64_t s2[2] = {M, Out};
    DJ_TRY(dj_tensor_view(DJ_DTYPE_F32, 2, s2, out->data, &o2));
    return dj_cuda_bias_act_forward(d, DJ_ACT_NONE, &o2, bias, &o2);
}

dj_status dj_cuda_linear_backward(dj_device *d, const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *dout,
                                  dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    const char *w = "dj_cuda_linear_backward";
    int64_t M = 0, In = 0, Out = 0;
    DJ_TRY(dj_linear_dims(inp, weight, w, &M, &In, &Out));
    DJ_TRY(dj_out_like(inp, Out, dout, "dout"));
    if (dinp) {
        DJ_TRY(dj_tensor_expect(dinp, DJ_DTYPE_F32, inp->ndim, inp->shape, "dinp"));
        /* dinp (M,In) += dout (M,Out) . weight (Out,In) */
        DJ_TRY(dj_cuda_gemm(d, DJ_NO_TRANS, DJ_NO_TRANS, M, In, Out, 1.f, DJ_DTYPE_F32, dout->data, Out, weight->data,
                            In, 1.f, dinp->data, In));
    }
    if (dweight) {
        DJ_TRY(dj_tensor_expect(dweight, DJ_DTYPE_F32, 2, weight->shape, "dweight"));
        /* dweight (Out,In) += dout^T (Out,M) . inp (M,In) */
        DJ_TRY(dj_cuda_gemm(d, DJ_TRANS, DJ_NO_TRANS, Out, In, M, 1.f, DJ_DTYPE_F32, dout->data, Out, inp->data, In,
                            1.f, dweight->data, In));
    }
    if (dbias) {
        /* dbias[o] += sum over rows: the bias-activation backward over (M, Out) */
        dj_tensor x2, b2;
        int64_t s2[2] = {M, Out}, s1[1] = {Out};
        DJ_TRY(dj_tensor_expect(dbias, DJ_DTYPE_F32, 1, s1, "dbias"));
        DJ_TRY(dj_tensor_view(DJ_DTYPE_F32, 2, s2, dout->data, &x2));
        DJ_TRY(dj_tensor_view(DJ_DTYPE_F32, 1, s1, dbias->data, &b2));
        /* with ACT_NONE the derivative is 1 whatever x and bias are: x = dout, bias = dbias serve as inputs */
        DJ_TRY(dj_cuda_bias_act_backward(d, DJ_ACT_NONE, &x2, &b2, &x2, NULL, dbias));
    }
    return DJ_OK;
}
