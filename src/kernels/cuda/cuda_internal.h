/* cuda_internal.h — what the CUDA backend's host files share: the opened
 * device, error conversion of CUDA/cuDNN/cuBLASLt codes into dj_status with
 * the library's own message, the cuBLASLt entry points (opened with dlopen,
 * see the Makefile) and the kernel launchers of kernels_*.cu. */
#ifndef DJ_CUDA_INTERNAL_H
#define DJ_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "dojo/device.h"
#include "dojo/error.h"
#include "dojo/ops_cuda.h"

#define DJ_STR_(x) #x
#define DJ_STR(x) DJ_STR_(x)

#ifdef __cplusplus
extern "C" {
#endif

/* cuBLASLt functions, typed from its header. */
typedef struct dj_cublaslt_api {
    __typeof__(&cublasLtCreate) create;
    __typeof__(&cublasLtDestroy) destroy;
    __typeof__(&cublasLtGetVersion) get_version;
    __typeof__(&cublasLtGetStatusString) status_string;
    __typeof__(&cublasLtMatmulDescCreate) desc_create;
    __typeof__(&cublasLtMatmulDescDestroy) desc_destroy;
    __typeof__(&cublasLtMatmulDescSetAttribute) desc_set;
    __typeof__(&cublasLtMatrixLayoutCreate) layout_create;
    __typeof__(&cublasLtMatrixLayoutDestroy) layout_destroy;
    __typeof__(&cublasLtMatmulPreferenceCreate) pref_create;
    __typeof__(&cublasLtMatmulPreferenceDestroy) pref_destroy;
    __typeof__(&cublasLtMatmulPreferenceSetAttribute) pref_set;
    __typeof__(&cublasLtMatmulAlgoGetHeuristic) heuristic;
    __typeof__(&cublasLtMatmul) matmul;
} dj_cublaslt_api;

/* Opens libcublasLt once per process; NULL with the error set when it cannot. */
const dj_cublaslt_api *dj_cublaslt(void);

struct dj_device {
    int index;
    cudaStream_t stream;      /* every kernel and library call of dojo */
    cudaStream_t copy_stream; /* the pinned ring's host-to-device copies */
    cudnnHandle_t cudnn;
    cublasLtHandle_t lt;
    const dj_cublaslt_api *lt_api;
    void *workspace; /* cuBLASLt / cuDNN workspace */
    size_t workspace_bytes;
    float *scalar;   /* one device float: losses read back by the host */
};

/* CUDA/cuDNN/cuBLASLt codes to dj_status (DJ_OK on success), naming `where`
 * and quoting the library's message. */
dj_status dj_cuda_check(cudaError_t e, const char *where, const char *what);
dj_status dj_cudnn_check(cudnnStatus_t s, const char *where, const char *what);
dj_status dj_cublaslt_check(cublasStatus_t s, const char *where, const char *what);
/* The last kernel launch's error, if any. */
dj_status dj_cuda_launched(const char *where);

/* Kernel launchers (kernels_*.cu). n counts elements; `bf16` selects the
 * storage type of the tensors marked T (uint16 bf16 or float); math is float. */
void dj_k_act_forward(cudaStream_t s, int act, int bf16, int64_t n, const void *x, void *y);
void dj_k_act_backward(cudaStream_t s, int act, int bf16, int64_t n, const void *x, const void *dy, void *dx);
void dj_k_binary_forward(cudaStream_t s, int mul, int bf16, int64_t n, const void *a, const void *b, void *out);
void dj_k_binary_backward(cudaStream_t s, int mul, int bf16, int64_t n, const void *a, const void *b,
                          const void *dout, void *da, void *db);
void dj_k_bias_act_forward(cudaStream_t s, int act, int bf16, int64_t n, int64_t C, int64_t inner, const void *x,
                           const float *bias, void *y);
void dj_k_bias_act_backward(cudaStream_t s, int act, int bf16, int64_t N, int64_t C, int64_t inner, const void *x,
                            const float *bias, const void *dy, void *dx, float *dbias);
void dj_k_add_relu_forward(cudaStream_t s, int bf16, int64_t n, const void *x, const void *res, void *y);
void dj_k_add_relu_backward(cudaStream_t s, int bf16, int64_t n, const void *y, const void *dy, void *dx, void *dres);
void dj_k_softmax_forward(cudaStream_t s, int log, int64_t rows, int64_t cols, const float *x, float *y);
void dj_k_softmax_backward(cudaStream_t s, int log, int64_t rows, int64_t cols, const float *y, const float *dy,
                           float *dx);
void dj_k_cross_entropy_forward(cudaStream_t s, float smoothing, int64_t N, int64_t K, const float *logits,
                                const int64_t *labels, float *loss);
void dj_k_cross_entropy_backward(cudaStream_t s, float smoothing, float scale, int64_t N, int64_t K,
                                 const float *logits, const int64_t *labels, float *dlogits);
void dj_k_labels_check(cudaStream_t s, int64_t N, int64_t K, const int64_t *labels, float *bad);
void dj_k_batchnorm_stats(cudaStream_t s, int64_t N, int64_t C, int64_t inner, float eps, const float *x,
                          float *mean, float *invstd, float momentum, float *run_mean, float *run_var);
void dj_k_batchnorm_apply(cudaStream_t s, int64_t N, int64_t C, int64_t inner, const float *x, const float *mean,
                          const float *invstd, const float *w, const float *b, float *y);
void dj_k_batchnorm_eval_invstd(cudaStream_t s, int64_t C, float eps, const float *run_var, float *invstd);
void dj_k_batchnorm_backward(cudaStream_t s, int training, int64_t N, int64_t C, int64_t inner, const float *x,
                             const float *w, const float *mean, const float *invstd, const float *dy, float *dx,
                             float *dw, float *db);
void dj_k_layernorm_forward(cudaStream_t s, int64_t rows, int64_t D, float eps, const float *x, const float *w,
                            const float *b, float *y, float *mean, float *invstd);
void dj_k_layernorm_backward(cudaStream_t s, int64_t rows, int64_t D, const float *x, const float *w,
                             const float *mean, const float *invstd, const float *dy, float *dx, float *dw,
                             float *db);
/* Pooling over (N*C) planes of (T,H,W) -> (To,Ho,Wo); k/st/pd/dl hold the 3 axes. */
typedef struct dj_k_pool {
    int64_t planes, in[3], out[3];
    int k[3], st[3], pd[3], dl[3];
    int exclude_pad;
} dj_k_pool;
void dj_k_maxpool_forward(cudaStream_t s, const dj_k_pool *p, const float *x, float *y, int64_t *idx);
void dj_k_maxpool_backward(cudaStream_t s, const dj_k_pool *p, const int64_t *idx, const float *dy, float *dx,
                           int *bad);
void dj_k_avgpool_forward(cudaStream_t s, const dj_k_pool *p, const float *x, float *y);
void dj_k_avgpool_backward(cudaStream_t s, const dj_k_pool *p, const float *dy, float *dx);
void dj_k_adaptive_avgpool_forward(cudaStream_t s, const dj_k_pool *p, const float *x, float *y);
void dj_k_adaptive_avgpool_backward(cudaStream_t s, const dj_k_pool *p, const float *dy, float *dx);
void dj_k_f32_to_bf16(cudaStream_t s, int64_t n, const float *x, uint16_t *y);
void dj_k_bf16_to_f32(cudaStream_t s, int64_t n, const uint16_t *x, float *y);
void dj_k_sgd(cudaStream_t s, int64_t n, const dj_cuda_sgd_params *p, float *w, const float *g, float *buf);
void dj_k_adamw(cudaStream_t s, int64_t n, const dj_cuda_adamw_params *p, float *w, const float *g, float *m,
                float *v);

#ifdef __cplusplus
}
#endif
#endif
