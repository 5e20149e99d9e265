/* dojo/ops_cuda.h — the CUDA backend's operators.
 *
 * Each function mirrors the CPU operator of the same name (dojo/ops.h,
 * ops_pointwise.h, ops_spatial.h): the same arguments with the dj_exec
 * replaced by an opened dj_device, the same shape checks and messages, the
 * same conventions (forward overwrites, backward ACCUMULATES into gradients,
 * NULL gradient = not wanted, nothing allocated). Tensor data are DEVICE
 * pointers; work is queued on the device's stream and these functions return
 * without waiting, except the losses, whose value is read back.
 *
 * Types: every operator takes float32; the point-wise operators, the GEMM
 * and conv3d also take bfloat16 (dj_tensor dtype DJ_DTYPE_BF16), computing
 * in float32 (tensor cores with float32 accumulation for GEMM and conv).
 * Normalisation, softmax and losses stay float32 (as under torch autocast).
 *
 * Tolerances against the CPU references (tests/unit/test_cuda_ops.c):
 * float32 element-wise ops rtol 1e-5; reductions (softmax, norms, losses,
 * GEMM, conv) rtol 1e-4 / atol 1e-5 (a different summation order); bf16
 * inputs rtol 2e-2 / atol 1e-2 against the float32 reference of the rounded
 * inputs.
 *
 * dj_cuda_op_table lists every operator of the CPU graph (dojo/layers.h) with
 * what the CUDA backend has for it, so a new CPU operator without a CUDA
 * entry fails a test. */
#ifndef DOJO_OPS_CUDA_H
#define DOJO_OPS_CUDA_H

#include <stdint.h>

#include "dojo/device.h"
#include "dojo/gemm.h"
#include "dojo/ops_pointwise.h"
#include "dojo/ops_spatial.h"
#include "dojo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the operator table ---- */
typedef struct dj_cuda_op_entry {
    const char *name;  /* the dj_op_def name of the CPU graph operator */
    const char *cuda;  /* the CUDA functions implementing it, or NULL: CPU only so far */
} dj_cuda_op_entry;
/* Terminated by an entry with name NULL. */
extern const dj_cuda_op_entry dj_cuda_op_table[];

/* ---- point-wise (f32 or bf16; y, dx, out of the same dtype as x) ---- */
dj_status dj_cuda_act_forward(dj_device *d, dj_act act, const dj_tensor *x, dj_tensor *y);
dj_status dj_cuda_act_backward(dj_device *d, dj_act act, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx);
/* a, b, out of one shape (no broadcasting on the GPU yet: DJ_ERR_UNSUPPORTED) */
dj_status dj_cuda_add_forward(dj_device *d, const dj_tensor *a, const dj_tensor *b, dj_tensor *out);
dj_status dj_cuda_add_backward(dj_device *d, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                               dj_tensor *da, dj_tensor *db);
dj_status dj_cuda_mul_forward(dj_device *d, const dj_tensor *a, const dj_tensor *b, dj_tensor *out);
dj_status dj_cuda_mul_backward(dj_device *d, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                               dj_tensor *da, dj_tensor *db);
/* x (N,C,...) f32/bf16, bias (C) f32 -> y = f(x + bias[c]); dbias f32 */
dj_status dj_cuda_bias_act_forward(dj_device *d, dj_act act, const dj_tensor *x, const dj_tensor *bias, dj_tensor *y);
dj_status dj_cuda_bias_act_backward(dj_device *d, dj_act act, const dj_tensor *x, const dj_tensor *bias,
                                    const dj_tensor *dy, dj_tensor *dx, dj_tensor *dbias);
dj_status dj_cuda_add_relu_forward(dj_device *d, const dj_tensor *x, const dj_tensor *res, dj_tensor *y);
dj_status dj_cuda_add_relu_backward(dj_device *d, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx,
                                    dj_tensor *dres);
/* float32 <-> bfloat16 copies (round to nearest even), same shape */
dj_status dj_cuda_convert(dj_device *d, const dj_tensor *x, dj_tensor *y);

/* ---- softmax over the last dimension, losses (f32) ---- */
dj_status dj_cuda_softmax_forward(dj_device *d, int log, const dj_tensor *x, dj_tensor *y);
dj_status dj_cuda_softmax_backward(dj_device *d, int log, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx);
/* logits (N,K) f32, labels (N) int64 on the device -> *loss (read back: synchronises) */
dj_status dj_cuda_cross_entropy_forward(dj_device *d, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                        const dj_tensor *labels, float *loss);
/* The same without waiting (CUDA-graph capture): loss2 is 2 device floats,
 * [0] the mean loss, [1] the first row whose label is out of range or -1. */
dj_status dj_cuda_cross_entropy_forward_async(dj_device *d, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                              const dj_tensor *labels, float *loss2);
dj_status dj_cuda_cross_entropy_backward(dj_device *d, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                         const dj_tensor *labels, float dloss, dj_tensor *dlogits);

/* ---- normalisation (f32) ---- */
dj_status dj_cuda_batchnorm_forward(dj_device *d, const dj_batchnorm_params *p, const dj_tensor *inp,
                                    const dj_tensor *weight, const dj_tensor *bias, dj_tensor *running_mean,
                                    dj_tensor *running_var, dj_tensor *out, dj_tensor *save_mean,
                                    dj_tensor *save_invstd);
dj_status dj_cuda_batchnorm_backward(dj_device *d, const dj_batchnorm_params *p, const dj_tensor *inp,
                                     const dj_tensor *weight, const dj_tensor *save_mean,
                                     const dj_tensor *save_invstd, const dj_tensor *dout, dj_tensor *dinp,
                                     dj_tensor *dweight, dj_tensor *dbias);
dj_status dj_cuda_layernorm_forward(dj_device *d, int norm_dims, float eps, const dj_tensor *inp,
                                    const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out,
                                    dj_tensor *save_mean, dj_tensor *save_invstd);
dj_status dj_cuda_layernorm_backward(dj_device *d, int norm_dims, const dj_tensor *inp, const dj_tensor *weight,
                                     const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                     dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);

/* ---- pooling (f32, NCTHW) ---- */
dj_status dj_cuda_maxpool3d_forward(dj_device *d, const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out,
                                    dj_tensor *indices);
dj_status dj_cuda_maxpool3d_backward(dj_device *d, const dj_pool3d_params *p, const dj_tensor *indices,
                                     const dj_tensor *dout, dj_tensor *dinp);
dj_status dj_cuda_avgpool3d_forward(dj_device *d, const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out);
dj_status dj_cuda_avgpool3d_backward(dj_device *d, const dj_pool3d_params *p, const dj_tensor *dout,
                                     dj_tensor *dinp);
dj_status dj_cuda_adaptive_avgpool3d_forward(dj_device *d, const dj_tensor *inp, dj_tensor *out);
dj_status dj_cuda_adaptive_avgpool3d_backward(dj_device *d, const dj_tensor *dout, dj_tensor *dinp);

/* ---- GEMM (cuBLASLt), row-major like dj_sgemm ----
 * C (M,N) f32 = alpha * op(A) op(B) + beta * C, A and B both f32 (exact
 * float32, no TF32) or both bf16 (tensor cores, float32 accumulation). */
dj_status dj_cuda_gemm(dj_device *d, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                       dj_dtype ab_type, const void *A, int64_t lda, const void *B, int64_t ldb, float beta,
                       float *C, int64_t ldc);
/* inp (..., In), weight (Out, In) f32, bias (Out) or NULL -> out (..., Out) */
dj_status dj_cuda_linear_forward(dj_device *d, const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                                 dj_tensor *out);
dj_status dj_cuda_linear_backward(dj_device *d, const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *dout,
                                  dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);

/* ---- conv3d (cuDNN; NCDHW; f32 or bf16 with inp, weight, out all one dtype;
 * bias and dbias f32; workspace: the device's) ---- */
dj_status dj_cuda_conv3d_forward(dj_device *d, const dj_conv3d_params *p, const dj_tensor *inp,
                                 const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out);
dj_status dj_cuda_conv3d_backward(dj_device *d, const dj_conv3d_params *p, const dj_tensor *inp,
                                  const dj_tensor *weight, const dj_tensor *dout, dj_tensor *dinp,
                                  dj_tensor *dweight, dj_tensor *dbias);

/* ---- optimizer updates (float32 master weights), PyTorch's rules ---- */
typedef struct dj_cuda_sgd_params {
    float lr, momentum, dampening, weight_decay;
    int nesterov;
    int first_step;   /* 1: the momentum buffer starts as the gradient */
    float grad_scale; /* gradients are multiplied by it first (clipping); 1 normally */
} dj_cuda_sgd_params;
typedef struct dj_cuda_adamw_params {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;     /* 1-based, for the bias corrections */
    float grad_scale;
} dj_cuda_adamw_params;
/* w, g, buf (n) f32; buf may be NULL when momentum is 0 */
dj_status dj_cuda_sgd_update(dj_device *d, const dj_cuda_sgd_params *p, dj_tensor *w, const dj_tensor *g,
                             dj_tensor *buf);
dj_status dj_cuda_adamw_update(dj_device *d, const dj_cuda_adamw_params *p, dj_tensor *w, const dj_tensor *g,
                               dj_tensor *exp_avg, dj_tensor *exp_avg_sq);

#ifdef __cplusplus
}
#endif
#endif
