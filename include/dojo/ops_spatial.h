/* dojo/ops_spatial.h — the spatial operators of video networks: conv3d,
 * linear, batch/layer/group norm, max/avg/adaptive-avg pool 3d and the
 * tubelet (patch) embedding, forward and backward, with PyTorch semantics.
 *
 * Conventions of include/dojo/ops.h: float32 tensors, forward overwrites its
 * outputs, backward ACCUMULATES (+=) into the gradients given (NULL = not
 * wanted), shapes are checked (DJ_ERR_INVALID naming the operator and the
 * shapes), no allocation inside (scratch from ex->scratch, sized by
 * *_scratch_bytes()), parallel through ex->pool, bit-identical results for
 * any number of threads (every reduction runs in a fixed order).
 *
 * Each operator has a naive double-precision reference (*_ref_*) over
 * DJ_DTYPE_F64 tensors of the same shapes, used by the tests and the
 * finite-difference gradient checks. */
#ifndef DOJO_OPS_SPATIAL_H
#define DOJO_OPS_SPATIAL_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- conv3d
 * torch.nn.functional.conv3d. Axes are (T,H,W). A zero stride or dilation
 * means 1, zero groups means 1, so {.padding = {1,1,1}} is a 3x3x3 "same"
 * conv. conv2d / conv1d are the cases T = kT = 1 (and H = kH = 1).
 * Output size per axis: (In + 2*pad - dil*(k-1) - 1) / stride + 1.
 * Paths: 1x1x1 stride-1 unpadded convs run as one GEMM per sample and group
 * (no im2col); depthwise-style convs (Cin/groups == 1) run a direct loop;
 * stride-1 convs with 1- or 3-tap axes run Winograd's F(2,3)/F(4,3) per
 * axis (see dj_conv_algo); the rest run implicit GEMMs whose columns are
 * gathered straight into the GEMM's panels. */
typedef struct dj_conv3d_params {
    int stride[3];
    int padding[3];
    int dilation[3];
    int groups;
    int algo; /* dj_conv_algo: DJ_CONV_AUTO (0) unless a caller insists */
} dj_conv3d_params;

/* How conv3d computes (float32). AUTO: Winograd's minimal filtering for
 * stride-1 convolutions whose axes have 1 or 3 taps (3x3x3, 1x3x3, 3x1x1)
 * where it saves at least 1.8x the products and the CPU has AVX-512, the
 * implicit GEMM otherwise; the environment variable DOJO_CONV=gemm turns
 * Winograd off for AUTO. GEMM: always the implicit GEMM. WINOGRAD: Winograd
 * where the shape allows it (the GEMM elsewhere). Winograd sums differently:
 * results differ from the GEMM's by float32 rounding (a few 1e-6 relative).
 * The choice depends on the shape and the CPU, never on the thread count. */
typedef enum dj_conv_algo {
    DJ_CONV_AUTO = 0,
    DJ_CONV_GEMM = 1,
    DJ_CONV_WINOGRAD = 2,
} dj_conv_algo;

/* "auto", "gemm" or "winograd" as a dj_conv_algo, -1 for anything else;
 * and back (NULL for a value out of range). */
int dj_conv_algo_from_name(const char *name);
const char *dj_conv_algo_name(int algo);

/* 1 when the float32 conv3d of these shapes runs Winograd here (this CPU,
 * DOJO_CONV, p->algo), with m[a] outputs per tile along axis a (T, H, W):
 * 2 or 4 for F(2,3) / F(4,3), 1 for a 1-tap (or trimmed) axis; 0 when it
 * runs the implicit GEMM (or the shapes are invalid). */
int dj_conv3d_winograd_tiles(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5], int m[3]);
/* What Winograd saves on these shapes: products of the implicit GEMM
 * (live taps only, see dj_conv3d_gemm_taps) per product of the forward
 * pass's tiles; 0 when they do not run Winograd here. r3d_18 at
 * 8x3x8x112x112: 6 in layers 1-2, 3.4 in layer 3 (F(2,3) tiles over
 * T = 2), 1.7 in layer 4. */
double dj_conv3d_winograd_saving(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5]);
/* Which code the float32 conv3d of these shapes runs here (forward and
 * weight gradient; the input gradient of DIRECT convs runs the GEMM). */
typedef enum dj_conv_path {
    DJ_CONV_PATH_INVALID = -1,  /* not a valid convolution */
    DJ_CONV_PATH_GEMM = 0,      /* implicit GEMM */
    DJ_CONV_PATH_POINTWISE = 1, /* 1x1x1 stride 1: one GEMM per sample */
    DJ_CONV_PATH_DEPTHWISE = 2, /* Cin/groups == 1: direct loops */
    DJ_CONV_PATH_DIRECT = 3,    /* few input channels (stems): AVX-512 direct convolution */
    DJ_CONV_PATH_WINOGRAD = 4,  /* Winograd tiles (dj_conv3d_winograd_tiles) */
} dj_conv_path;
dj_conv_path dj_conv3d_path(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5]);
/* Kernel taps (per input channel) the implicit GEMM computes for these
 * shapes: kT*kH*kW, or fewer where at least half of them meet only padding
 * for every output and are dropped (a (3,1,1) kernel over T = 1: 1); 0 for
 * invalid shapes. */
int64_t dj_conv3d_gemm_taps(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5]);
/* in (N,Cin,T,H,W), weight (Cout,Cin/groups,kT,kH,kW) -> out (N,Cout,To,Ho,Wo). */
dj_status dj_conv3d_output_shape(const dj_conv3d_params *p, const int64_t in_shape[5], const int64_t w_shape[5],
                                 int64_t out_shape[5]);
/* Scratch for forward and backward (the same buffer serves both) on a pool
 * of up to `threads` threads (Winograd keeps a block of tiles per thread;
 * given less, it runs on as many threads as the scratch holds blocks for,
 * with the same bits); 0 when the conv needs none. Shapes are taken from
 * inp and weight. */
size_t dj_conv3d_scratch_bytes(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                               int threads);
/* inp (N,Cin,T,H,W), weight (Cout,Cin/groups,kT,kH,kW), bias (Cout) or NULL
 * -> out (N,Cout,To,Ho,Wo) */
dj_status dj_conv3d_forward(const dj_exec *ex, const dj_conv3d_params *p, const dj_tensor *inp,
                            const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out);
/* dout (N,Cout,To,Ho,Wo) -> dinp += , dweight += , dbias += (each may be NULL).
 * The weight gradient sums over the batch in order n = 0..N-1. */
dj_status dj_conv3d_backward(const dj_exec *ex, const dj_conv3d_params *p, const dj_tensor *inp,
                             const dj_tensor *weight, const dj_tensor *dout, dj_tensor *dinp, dj_tensor *dweight,
                             dj_tensor *dbias);
dj_status dj_conv3d_ref_forward(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                                const dj_tensor *bias, dj_tensor *out);
dj_status dj_conv3d_ref_backward(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                                 const dj_tensor *dout, dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);
/* Mixed precision: as above with the three matrix products on bf16
 * operands (round to nearest even) summed in float32 (dj_gemm_bf16);
 * weight_bf16 is the bf16 copy of weight (same shape, DJ_DTYPE_BF16, kept by
 * the caller); inputs, outputs and gradients are float32. Depthwise-style
 * convolutions (Cin/groups == 1) have no matrix product and run the float32
 * path. Scratch: dj_conv3d_scratch_bytes_bf16 (serves both passes). */
size_t dj_conv3d_scratch_bytes_bf16(const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight);
dj_status dj_conv3d_forward_bf16(const dj_exec *ex, const dj_conv3d_params *p, const dj_tensor *inp,
                                 const dj_tensor *weight, const dj_tensor *weight_bf16, const dj_tensor *bias,
                                 dj_tensor *out);
dj_status dj_conv3d_backward_bf16(const dj_exec *ex, const dj_conv3d_params *p, const dj_tensor *inp,
                                  const dj_tensor *weight, const dj_tensor *weight_bf16, const dj_tensor *dout,
                                  dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);

/* ---------------------------------------------------------------- linear
 * torch.nn.functional.linear: inp (..., In), weight (Out, In), bias (Out) or
 * NULL -> out (..., Out) = inp @ weight^T + bias. */
dj_status dj_linear_forward(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                            dj_tensor *out);
dj_status dj_linear_backward(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *dout,
                             dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);
dj_status dj_linear_ref_forward(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out);
dj_status dj_linear_ref_backward(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *dout,
                                 dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);
/* Mixed precision, as for conv3d: inp and dout rounded to bf16 in scratch
 * (dj_linear_scratch_bytes_bf16: inp (M, In) and dout (M, Out) in bf16,
 * M = the product of inp's leading dims), weight_bf16 the bf16 copy of
 * weight. */
size_t dj_linear_scratch_bytes_bf16(const dj_tensor *inp, const dj_tensor *weight);
dj_status dj_linear_forward_bf16(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight,
                                 const dj_tensor *weight_bf16, const dj_tensor *bias, dj_tensor *out);
dj_status dj_linear_backward_bf16(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight,
                                  const dj_tensor *weight_bf16, const dj_tensor *dout, dj_tensor *dinp,
                                  dj_tensor *dweight, dj_tensor *dbias);

/* ---------------------------------------------------------------- batch norm
 * torch.nn.functional.batch_norm over (N,C,...) (any ndim >= 2).
 * Training: normalises with the batch mean and BIASED variance; when
 * running_mean/running_var are given they are updated as
 * running = (1 - momentum) * running + momentum * stat, with the UNBIASED
 * variance for running_var (needs N*spatial > 1). Eval: uses the running
 * statistics (required). save_mean/save_invstd (C) receive the mean and
 * 1/sqrt(var + eps) used, which the backward needs. */
typedef struct dj_batchnorm_params {
    int training;   /* 1: batch statistics; 0: running statistics */
    float momentum; /* PyTorch default 0.1 */
    float eps;      /* PyTorch default 1e-5 */
} dj_batchnorm_params;

/* {training 1, momentum 0.1, eps 1e-5}: nn.BatchNorm3d's defaults. */
dj_batchnorm_params dj_batchnorm_defaults(void);
/* inp (N,C,...), weight (C) or NULL (= 1), bias (C) or NULL (= 0),
 * running_mean/var (C) or NULL (training only), save_mean/save_invstd (C)
 * -> out (same shape as inp) */
dj_status dj_batchnorm_forward(const dj_exec *ex, const dj_batchnorm_params *p, const dj_tensor *inp,
                               const dj_tensor *weight, const dj_tensor *bias, dj_tensor *running_mean,
                               dj_tensor *running_var, dj_tensor *out, dj_tensor *save_mean,
                               dj_tensor *save_invstd);
/* Training: through the batch statistics; eval: the affine map only. dinp
 * may be dout itself (in place: written as 0 + the gradient). */
dj_status dj_batchnorm_backward(const dj_exec *ex, const dj_batchnorm_params *p, const dj_tensor *inp,
                                const dj_tensor *weight, const dj_tensor *save_mean, const dj_tensor *save_invstd,
                                const dj_tensor *dout, dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);
/* The same with synchronised statistics: in training, when sync is given,
 * the mean and variance are those of every replica's rows together (each
 * replica may hold a different number: the sums carry the counts), the
 * running statistics are updated with them (the same on every replica),
 * and the backward's sums of dy and dy * xhat run over all rows for the
 * input gradient. The weight and bias gradients stay this replica's own
 * sums, for the gradient all-reduce to combine. Forward sums twice (the
 * values, then the squared deviations from the common mean), backward once;
 * at most 512 channels per call of sync. sync NULL or eval mode: exactly
 * dj_batchnorm_forward / dj_batchnorm_backward. */
dj_status dj_batchnorm_forward_sync(const dj_exec *ex, const dj_batchnorm_params *p, const dj_stats_sync *sync,
                                    const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                                    dj_tensor *running_mean, dj_tensor *running_var, dj_tensor *out,
                                    dj_tensor *save_mean, dj_tensor *save_invstd);
dj_status dj_batchnorm_backward_sync(const dj_exec *ex, const dj_batchnorm_params *p, const dj_stats_sync *sync,
                                     const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *save_mean,
                                     const dj_tensor *save_invstd, const dj_tensor *dout, dj_tensor *dinp,
                                     dj_tensor *dweight, dj_tensor *dbias);
/* Eval-mode batch norm and ReLU in one pass (inference):
 * out = max(0, (x - running_mean) / sqrt(running_var + eps) * weight + bias). */
dj_status dj_batchnorm_relu_eval_forward(const dj_exec *ex, float eps, const dj_tensor *inp, const dj_tensor *weight,
                                         const dj_tensor *bias, const dj_tensor *running_mean,
                                         const dj_tensor *running_var, dj_tensor *out);
/* Batch norm then ReLU for a graph that keeps only the input for the
 * backward pass (the output is recomputed when needed): bit for bit
 * dj_batchnorm_forward_sync followed by dj_act_forward(DJ_ACT_RELU), in one
 * pass; also saves each channel's affine map, out = relu((inp - save_mean)
 * * save_scale + save_shift), all (C). */
dj_status dj_batchnorm_relu_forward(const dj_exec *ex, const dj_batchnorm_params *p, const dj_stats_sync *sync,
                                    const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                                    dj_tensor *running_mean, dj_tensor *running_var, dj_tensor *out,
                                    dj_tensor *save_mean, dj_tensor *save_invstd, dj_tensor *save_scale,
                                    dj_tensor *save_shift);
/* Writes out again from inp and the saved map, the same bits the forward
 * pass wrote; touches nothing else (running statistics stay). */
dj_status dj_batchnorm_relu_recompute(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *save_mean,
                                      const dj_tensor *save_scale, const dj_tensor *save_shift, dj_tensor *out);
/* Backward of the pair: dout is the gradient of the ReLU's output `out`.
 * Bit for bit dj_act_backward(DJ_ACT_RELU) into a zeroed buffer followed by
 * dj_batchnorm_backward_sync, without the buffer: dout is overwritten with
 * the gradient through the ReLU (dinp may be dout itself, as in
 * dj_batchnorm_backward). */
dj_status dj_batchnorm_relu_backward(const dj_exec *ex, const dj_batchnorm_params *p, const dj_stats_sync *sync,
                                     const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *save_mean,
                                     const dj_tensor *save_invstd, const dj_tensor *out, dj_tensor *dout,
                                     dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);
dj_status dj_batchnorm_ref_forward(const dj_batchnorm_params *p, const dj_tensor *inp, const dj_tensor *weight,
                                   const dj_tensor *bias, dj_tensor *running_mean, dj_tensor *running_var,
                                   dj_tensor *out, dj_tensor *save_mean, dj_tensor *save_invstd);
dj_status dj_batchnorm_ref_backward(const dj_batchnorm_params *p, const dj_tensor *inp, const dj_tensor *weight,
                                    const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                    dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);

/* ---------------------------------------------------------------- layer norm
 * torch.nn.functional.layer_norm over the last `norm_dims` dimensions of
 * inp: weight/bias (or NULL) have exactly those trailing dimensions;
 * save_mean/save_invstd hold one value per normalised row (numel / D). */
dj_status dj_layernorm_forward(const dj_exec *ex, int norm_dims, float eps, const dj_tensor *inp,
                               const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out, dj_tensor *save_mean,
                               dj_tensor *save_invstd);
dj_status dj_layernorm_backward(const dj_exec *ex, int norm_dims, const dj_tensor *inp, const dj_tensor *weight,
                                const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);
dj_status dj_layernorm_ref_forward(int norm_dims, double eps, const dj_tensor *inp, const dj_tensor *weight,
                                   const dj_tensor *bias, dj_tensor *out, dj_tensor *save_mean,
                                   dj_tensor *save_invstd);
dj_status dj_layernorm_ref_backward(int norm_dims, const dj_tensor *inp, const dj_tensor *weight,
                                    const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                    dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);

/* ---------------------------------------------------------------- group norm
 * torch.nn.functional.group_norm: inp (N,C,...) with C % groups == 0,
 * weight/bias (C) or NULL, save_mean/save_invstd (N, groups). */
dj_status dj_groupnorm_forward(const dj_exec *ex, int groups, float eps, const dj_tensor *inp,
                               const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out, dj_tensor *save_mean,
                               dj_tensor *save_invstd);
dj_status dj_groupnorm_backward(const dj_exec *ex, int groups, const dj_tensor *inp, const dj_tensor *weight,
                                const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);
dj_status dj_groupnorm_ref_forward(int groups, double eps, const dj_tensor *inp, const dj_tensor *weight,
                                   const dj_tensor *bias, dj_tensor *out, dj_tensor *save_mean,
                                   dj_tensor *save_invstd);
dj_status dj_groupnorm_ref_backward(int groups, const dj_tensor *inp, const dj_tensor *weight,
                                    const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                    dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);

/* ---------------------------------------------------------------- pooling
 * torch.nn.functional.max_pool3d / avg_pool3d over (N,C,T,H,W). A zero
 * stride means stride = kernel (PyTorch's default), a zero dilation means 1.
 * padding <= kernel/2 per axis. Output size per axis:
 * floor_or_ceil((In + 2*pad - dil*(k-1) - 1) / stride) + 1, and in ceil mode
 * the last window must start inside the input or left padding.
 * Max pool: padded cells never win; NaN propagates. `indices` (DJ_DTYPE_I64,
 * shape of out) is required: the forward stores the argmax there, as a
 * flat index into the T*H*W plane of its (n,c) (PyTorch's return_indices),
 * and the backward routes the gradient through it (dinp[n,c,idx] += dout;
 * an index outside the plane gives DJ_ERR_RANGE).
 * Avg pool: count_include_pad is PyTorch's default (divide by the window
 * clipped to the padded input) unless exclude_pad is set (divide by the
 * cells inside the input). dilation must be 1 for avg pool. */
typedef struct dj_pool3d_params {
    int kernel[3];
    int stride[3];
    int padding[3];
    int dilation[3];
    int ceil_mode;
    int exclude_pad; /* avg pool: 1 = count_include_pad=False */
} dj_pool3d_params;

dj_status dj_pool3d_output_shape(const dj_pool3d_params *p, const int64_t in_shape[5], int64_t out_shape[5]);
/* inp (N,C,T,H,W) -> out (N,C,To,Ho,Wo), indices (N,C,To,Ho,Wo) int64 */
dj_status dj_maxpool3d_forward(const dj_exec *ex, const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out,
                               dj_tensor *indices);
dj_status dj_maxpool3d_backward(const dj_exec *ex, const dj_pool3d_params *p, const dj_tensor *indices,
                                const dj_tensor *dout, dj_tensor *dinp);
dj_status dj_avgpool3d_forward(const dj_exec *ex, const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out);
dj_status dj_avgpool3d_backward(const dj_exec *ex, const dj_pool3d_params *p, const dj_tensor *dout,
                                dj_tensor *dinp);
/* References in double; the max-pool reference fills `indices` too. */
dj_status dj_maxpool3d_ref_forward(const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out,
                                   dj_tensor *indices);
dj_status dj_maxpool3d_ref_backward(const dj_pool3d_params *p, const dj_tensor *indices, const dj_tensor *dout,
                                    dj_tensor *dinp);
dj_status dj_avgpool3d_ref_forward(const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out);
dj_status dj_avgpool3d_ref_backward(const dj_pool3d_params *p, const dj_tensor *dout, dj_tensor *dinp);

/* torch.nn.functional.adaptive_avg_pool3d: out (N,C,oT,oH,oW) gives the
 * output size; window i of an axis is [floor(i*In/Out), ceil((i+1)*In/Out)).
 * Output 1x1x1 (global average pool) takes a fast path. */
dj_status dj_adaptive_avgpool3d_forward(const dj_exec *ex, const dj_tensor *inp, dj_tensor *out);
dj_status dj_adaptive_avgpool3d_backward(const dj_exec *ex, const dj_tensor *dout, dj_tensor *dinp);
dj_status dj_adaptive_avgpool3d_ref_forward(const dj_tensor *inp, dj_tensor *out);
dj_status dj_adaptive_avgpool3d_ref_backward(const dj_tensor *dout, dj_tensor *dinp);

/* ---------------------------------------------------------------- tubelet embedding
 * A conv3d with stride = kernel and no padding, then flattening to tokens:
 * inp (N,C,T,H,W), weight (D,C,kT,kH,kW), bias (D) or NULL
 * -> out (N, T'*H'*W', D) with T' = T / kT (floor, as the conv), token
 * order t', h', w' (that is conv3d(...).flatten(2).transpose(1, 2)).
 * Runs as one GEMM per sample over the gathered patches. */
size_t dj_patch_embed_scratch_bytes(const dj_tensor *inp, const dj_tensor *weight);
dj_status dj_patch_embed_forward(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight,
                                 const dj_tensor *bias, dj_tensor *out);
dj_status dj_patch_embed_backward(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight,
                                  const dj_tensor *dout, dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);
dj_status dj_patch_embed_ref_forward(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                                     dj_tensor *out);
dj_status dj_patch_embed_ref_backward(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *dout,
                                      dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias);

#ifdef __cplusplus
}
#endif
#endif
