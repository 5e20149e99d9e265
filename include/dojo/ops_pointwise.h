/* dojo/ops_pointwise.h — point-wise and sequence operators: activations,
 * softmax, dropout, broadcasting add/mul, fused bias+activation, residual
 * add+ReLU, concat/permute/reshape, multi-head attention over a chosen token
 * axis, cross-entropy and masked MSE losses.
 *
 * Conventions (see dojo/ops.h): float32 tensors; forward OVERWRITES its
 * outputs; backward ACCUMULATES (+=) into the gradients it is given, NULL =
 * not wanted; shapes are checked with errors naming the operator and shapes;
 * nothing allocates; ex may be NULL (one thread, no scratch); results are
 * bit-identical for any number of threads (reductions run in a fixed order
 * that does not depend on how the work is split).
 *
 * Semantics follow PyTorch exactly (so PyTorch fixtures match); every choice
 * is stated beside the function. Each operator has a double-precision naive
 * reference (dj_ref_*, same arguments on DJ_DTYPE_F64 tensors, no ex) used
 * by the tests and the finite-difference gradient checks.
 *
 * Numerics: exp, sigmoid and the normal CDF are computed with branch-free
 * float32 approximations that vectorise (exp within 2 ulp; Phi from an erfc
 * fit (1.2e-7) evaluated in float: ~1e-6 relative on [-3,3], ~1e-5 far in the tail,
 * so GELU's tail keeps its relative precision instead of cancelling); results agree with float64 to ~1e-5 relative over [-30, 30]
 * and differ from torch's libm by a few ulps. The row kernels are built
 * three times (generic, AVX2, AVX-512) and picked per call by
 * dj_cpu_best_isa() (DOJO_CPU caps it), so bits may differ between CPUs
 * but never between thread counts. Reductions (softmax sums, bias and
 * broadcast gradients, losses) add fixed blocks of 64 in float and the block
 * sums in double, in an order fixed by the shapes alone. */
#ifndef DOJO_OPS_POINTWISE_H
#define DOJO_OPS_POINTWISE_H

#include <stdint.h>

#include "dojo/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- activations --------------------------------------------------------
 * y = f(x), element-wise, any shape, y may alias x in forward.
 * RELU: max(x,0); derivative at exactly 0 is 0 (as torch); NaN in, NaN out
 * (gradient 0 there, as torch's threshold_backward). All propagate NaN.
 * GELU: x*Phi(x) with erf (torch approximate='none').
 * GELU_TANH: 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) (approximate='tanh').
 * SILU: x*sigmoid(x). SIGMOID: 1/(1+exp(-x)). NONE: identity. */
typedef enum dj_act {
    DJ_ACT_NONE = 0,
    DJ_ACT_RELU = 1,
    DJ_ACT_GELU = 2,
    DJ_ACT_GELU_TANH = 3,
    DJ_ACT_SILU = 4,
    DJ_ACT_SIGMOID = 5,
} dj_act;

const char *dj_act_name(dj_act act);

/* x (any) -> y (same shape) */
dj_status dj_act_forward(const dj_exec *ex, dj_act act, const dj_tensor *x, dj_tensor *y);
/* x: the forward input; dx += dy * f'(x) */
dj_status dj_act_backward(const dj_exec *ex, dj_act act, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx);

/* Named shorthands for dj_act_*. approximate: 0 = erf form, 1 = tanh. */
dj_status dj_relu_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y);
dj_status dj_relu_backward(const dj_exec *ex, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx);
dj_status dj_gelu_forward(const dj_exec *ex, int approximate, const dj_tensor *x, dj_tensor *y);
dj_status dj_gelu_backward(const dj_exec *ex, int approximate, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx);
dj_status dj_silu_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y);
dj_status dj_silu_backward(const dj_exec *ex, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx);
dj_status dj_sigmoid_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y);
dj_status dj_sigmoid_backward(const dj_exec *ex, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx);

/* ---- softmax over the last dimension ------------------------------------
 * x (..., K) -> y (..., K); max-subtracted, fixed-order block sums. Backward uses the
 * forward OUTPUT y: softmax dx += y*(dy - sum(dy*y)); log-softmax
 * dx += dy - exp(y)*sum(dy). */
dj_status dj_softmax_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y);
dj_status dj_softmax_backward(const dj_exec *ex, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx);
dj_status dj_log_softmax_forward(const dj_exec *ex, const dj_tensor *x, dj_tensor *y);
dj_status dj_log_softmax_backward(const dj_exec *ex, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx);

/* ---- dropout ------------------------------------------------------------
 * torch.nn.functional.dropout: in training each element is kept with
 * probability 1-p and scaled by 1/(1-p); p == 1 zeroes everything; eval (or
 * p == 0) copies. Element i is kept iff dj_hash_float(seed, step, i) >= p, so
 * the mask depends only on (seed, step, i): backward recomputes it (no mask
 * memory) and threads never change it. Use a distinct seed per dropout site
 * (e.g. run seed ^ site id) and the training step as `step`. The masks are
 * not torch's (another generator): fixtures can match eval mode, p = 0 and
 * p = 1 exactly, and in training the kept values x/(1-p) and the drop rate. */
typedef struct dj_dropout_params {
    float p;          /* drop probability in [0, 1] */
    int training;     /* 0: identity */
    uint64_t seed;
    uint64_t step;
} dj_dropout_params;

/* x (any) -> y (same) */
dj_status dj_dropout_forward(const dj_exec *ex, const dj_dropout_params *p, const dj_tensor *x, dj_tensor *y);
/* dx += mask * dy / (1-p) */
dj_status dj_dropout_backward(const dj_exec *ex, const dj_dropout_params *p, const dj_tensor *dy, dj_tensor *dx);

/* ---- broadcasting element-wise ------------------------------------------
 * NumPy/PyTorch broadcasting over up to 5 dims: shapes are right-aligned,
 * each pair of sizes must be equal or one of them 1; out must have exactly
 * the broadcast shape (and ndim = max(a.ndim, b.ndim)). Backward reduces
 * the gradient of a broadcast input over its broadcast dims, each element of
 * da/db summed in a fixed order (dims outer to inner; blocks of 64 in
 * float, block sums in double). */
/* a, b -> out = a + b */
dj_status dj_add_forward(const dj_exec *ex, const dj_tensor *a, const dj_tensor *b, dj_tensor *out);
/* da += reduce(dout), db += reduce(dout) */
dj_status dj_add_backward(const dj_exec *ex, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                          dj_tensor *da, dj_tensor *db);
/* a, b -> out = a * b */
dj_status dj_mul_forward(const dj_exec *ex, const dj_tensor *a, const dj_tensor *b, dj_tensor *out);
/* da += reduce(dout * b), db += reduce(dout * a) */
dj_status dj_mul_backward(const dj_exec *ex, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                          dj_tensor *da, dj_tensor *db);
/* x (any) -> y = alpha * x; backward dx += alpha * dy */
dj_status dj_scale_forward(const dj_exec *ex, float alpha, const dj_tensor *x, dj_tensor *y);
dj_status dj_scale_backward(const dj_exec *ex, float alpha, const dj_tensor *dy, dj_tensor *dx);

/* ---- fused bias + activation --------------------------------------------
 * x (N,C,...) with ndim >= 2, bias (C) -> y = f(x + bias[c]) (channel = dim
 * 1; for tokens (B,L,D) reshape to (B*L,D)). Backward recomputes x + bias:
 * dx += dy*f'(z); dbias[c] += sum over n, then positions (fixed order). */
dj_status dj_bias_act_forward(const dj_exec *ex, dj_act act, const dj_tensor *x, const dj_tensor *bias, dj_tensor *y);
dj_status dj_bias_act_backward(const dj_exec *ex, dj_act act, const dj_tensor *x, const dj_tensor *bias,
                               const dj_tensor *dy, dj_tensor *dx, dj_tensor *dbias);

/* ---- residual add + ReLU --------------------------------------------------
 * x, res (same shape) -> y = max(x + res, 0). Backward uses the forward
 * OUTPUT y (gradient passes where y > 0): dx += g, dres += g. dx may be dy
 * itself (in place: dx = 0 + g). */
dj_status dj_add_relu_forward(const dj_exec *ex, const dj_tensor *x, const dj_tensor *res, dj_tensor *y);
dj_status dj_add_relu_backward(const dj_exec *ex, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx,
                               dj_tensor *dres);

/* ---- shapes ----------------------------------------------------------------
 * torch.cat(inputs, dim=axis): all inputs have out's ndim and shape except
 * along axis (negative axis counts from the end); out's size along axis is
 * their sum. Backward is the split: dinputs[i] += its slice of dout; every
 * dinputs[i] must be given (their shapes locate the slices; pass a scratch
 * tensor for an input that needs no gradient). */
dj_status dj_concat_forward(const dj_exec *ex, int axis, int n, const dj_tensor *const *inputs, dj_tensor *out);
dj_status dj_concat_backward(const dj_exec *ex, int axis, int n, const dj_tensor *dout, dj_tensor *const *dinputs);

/* x.permute(perm): y.shape[i] = x.shape[perm[i]], perm a permutation of
 * 0..ndim-1 (ndim = x.ndim <= 5). (N,C,T,H,W) -> tokens (N,T,H,W,C) is
 * perm {0,2,3,4,1} followed by a reshape to (N,T,H*W,C). Backward applies
 * the inverse permutation: dx += permute(dy, inverse(perm)). */
dj_status dj_permute_forward(const dj_exec *ex, const int *perm, const dj_tensor *x, dj_tensor *y);
dj_status dj_permute_backward(const dj_exec *ex, const int *perm, const dj_tensor *dy, dj_tensor *dx);

/* torch.reshape on a contiguous tensor: a view of the same data (no copy,
 * so its backward is the same reshape of the gradient). At most one entry
 * of shape may be -1 (inferred). */
dj_status dj_reshape(const dj_tensor *x, int ndim, const int64_t *shape, dj_tensor *out);

/* ---- multi-head self-attention over a chosen token axis -------------------
 * q, k, v, out (B,T,S,D), D = heads*head_dim, already projected (the caller
 * applies the linear layers). axis DJ_ATTN_TIME: for each (b,s) the T tokens
 * q[b,:,s,:] attend to each other; DJ_ATTN_SPACE: for each (b,t) the S tokens
 * q[b,t,:,:] do. Divided space-time attention (TimeSformer) is one call of
 * each. Per head h (channels h*head_dim ..): out = softmax(scale*Q K^T) V,
 * no mask, no dropout, as torch's scaled_dot_product_attention with the heads
 * split from D. scale <= 0 means 1/sqrt(head_dim).
 * probs (caller memory, float32, dj_attention_probs_numel elements in any
 * shape) receives the softmax probabilities in forward and is read back in
 * backward; layout [sequence][head][query][key] with sequence = b*S + s
 * (TIME) or b*T + t (SPACE). Backward needs ex->scratch of
 * dj_attention_scratch_bytes() when dq or dk is wanted (dv alone: none).
 * The matmuls of each (sequence, head) run on one thread (pairs are split
 * over the pool), reading q/k/v in place: dj_sgemm above 32 tokens, direct
 * vectorised loops up to 32 (e.g. T = 8), where a GEMM call does not pay. */
typedef enum dj_attn_axis { DJ_ATTN_TIME = 1, DJ_ATTN_SPACE = 2 } dj_attn_axis;

typedef struct dj_attention_params {
    int heads;
    dj_attn_axis axis;
    float scale;
} dj_attention_params;

/* shape: the (B,T,S,D) of q. Number of floats of probs: B*S*heads*T*T for
 * TIME, B*T*heads*S*S for SPACE; 0 for an invalid shape. */
int64_t dj_attention_probs_numel(const dj_attention_params *p, const int64_t *shape);
/* Scratch of backward for a pool of nthreads: nthreads * L*L floats. */
size_t dj_attention_scratch_bytes(const dj_attention_params *p, const int64_t *shape, int nthreads);

dj_status dj_attention_forward(const dj_exec *ex, const dj_attention_params *p, const dj_tensor *q,
                               const dj_tensor *k, const dj_tensor *v, dj_tensor *probs, dj_tensor *out);
/* dq, dk, dv += (each may be NULL) */
dj_status dj_attention_backward(const dj_exec *ex, const dj_attention_params *p, const dj_tensor *q,
                                const dj_tensor *k, const dj_tensor *v, const dj_tensor *probs,
                                const dj_tensor *dout, dj_tensor *dq, dj_tensor *dk, dj_tensor *dv);

/* ---- losses -----------------------------------------------------------------
 * Softmax cross-entropy, torch.nn.functional.cross_entropy(logits, labels,
 * label_smoothing=eps, reduction='mean'): with q = (1-eps)*onehot + eps/K,
 * loss = mean_n( -sum_k q_k log_softmax(logits_n)_k ). logits (N,K), labels
 * int64 (N). Labels outside [0,K) are rejected with an error naming the row
 * (no ignore_index). N == 0 is rejected (torch would give NaN).
 * Backward: dlogits += dloss/N * (softmax - q). */
typedef struct dj_cross_entropy_params {
    float label_smoothing; /* eps in [0, 1] */
} dj_cross_entropy_params;

dj_status dj_cross_entropy_forward(const dj_exec *ex, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                   const dj_tensor *labels, float *loss);
dj_status dj_cross_entropy_backward(const dj_exec *ex, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                    const dj_tensor *labels, float dloss, dj_tensor *dlogits);

/* Rows whose label is among the top k logits: a label counts when fewer than
 * k logits of its row are strictly greater than its own (ties favour the
 * label). Writes the count; accuracy = *correct / N. */
dj_status dj_topk_correct(const dj_tensor *logits, const dj_tensor *labels, int k, int64_t *correct);

/* Mean-squared error with an optional mask (VideoMAE: loss on the masked
 * tokens only). pred, target same shape; mask NULL (plain mean over all
 * elements, as torch mse_loss) or float32 weights either of pred's shape or
 * of pred's shape without its last dim (one weight per token, applied to the
 * whole row). loss = sum(m * (pred-target)^2) / sum(m expanded to pred).
 * A mask summing to zero gives loss 0 and zero gradients (defined here; torch
 * would give NaN). Backward: dpred += dloss*2m(pred-target)/den, dtarget -= same. */
dj_status dj_mse_forward(const dj_exec *ex, const dj_tensor *pred, const dj_tensor *target, const dj_tensor *mask,
                         float *loss);
dj_status dj_mse_backward(const dj_exec *ex, const dj_tensor *pred, const dj_tensor *target, const dj_tensor *mask,
                          float dloss, dj_tensor *dpred, dj_tensor *dtarget);

/* ---- double-precision references (plain loops, tests only) ----------------
 * Same arguments as the operators without ex, on DJ_DTYPE_F64 tensors
 * (labels stay int64; losses in double). Same accumulate convention. */
dj_status dj_ref_act_forward(dj_act act, const dj_tensor *x, dj_tensor *y);
dj_status dj_ref_act_backward(dj_act act, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx);
dj_status dj_ref_softmax_forward(int log, const dj_tensor *x, dj_tensor *y);
dj_status dj_ref_softmax_backward(int log, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx);
dj_status dj_ref_dropout_forward(const dj_dropout_params *p, const dj_tensor *x, dj_tensor *y);
dj_status dj_ref_dropout_backward(const dj_dropout_params *p, const dj_tensor *dy, dj_tensor *dx);
/* mul: 0 = add, 1 = mul */
dj_status dj_ref_binary_forward(int mul, const dj_tensor *a, const dj_tensor *b, dj_tensor *out);
dj_status dj_ref_binary_backward(int mul, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                                 dj_tensor *da, dj_tensor *db);
dj_status dj_ref_bias_act_forward(dj_act act, const dj_tensor *x, const dj_tensor *bias, dj_tensor *y);
dj_status dj_ref_bias_act_backward(dj_act act, const dj_tensor *x, const dj_tensor *bias, const dj_tensor *dy,
                                   dj_tensor *dx, dj_tensor *dbias);
dj_status dj_ref_add_relu_forward(const dj_tensor *x, const dj_tensor *res, dj_tensor *y);
dj_status dj_ref_add_relu_backward(const dj_tensor *x, const dj_tensor *res, const dj_tensor *dy, dj_tensor *dx,
                                   dj_tensor *dres);
dj_status dj_ref_concat_forward(int axis, int n, const dj_tensor *const *inputs, dj_tensor *out);
dj_status dj_ref_concat_backward(int axis, int n, const dj_tensor *dout, dj_tensor *const *dinputs);
dj_status dj_ref_permute_forward(const int *perm, const dj_tensor *x, dj_tensor *y);
dj_status dj_ref_permute_backward(const int *perm, const dj_tensor *dy, dj_tensor *dx);
dj_status dj_ref_attention_forward(const dj_attention_params *p, const dj_tensor *q, const dj_tensor *k,
                                   const dj_tensor *v, dj_tensor *out);
dj_status dj_ref_attention_backward(const dj_attention_params *p, const dj_tensor *q, const dj_tensor *k,
                                    const dj_tensor *v, const dj_tensor *dout, dj_tensor *dq, dj_tensor *dk,
                                    dj_tensor *dv);
dj_status dj_ref_cross_entropy_forward(const dj_cross_entropy_params *p, const dj_tensor *logits,
                                       const dj_tensor *labels, double *loss);
dj_status dj_ref_cross_entropy_backward(const dj_cross_entropy_params *p, const dj_tensor *logits,
                                        const dj_tensor *labels, double dloss, dj_tensor *dlogits);
dj_status dj_ref_mse_forward(const dj_tensor *pred, const dj_tensor *target, const dj_tensor *mask, double *loss);
dj_status dj_ref_mse_backward(const dj_tensor *pred, const dj_tensor *target, const dj_tensor *mask, double dloss,
                              dj_tensor *dpred, dj_tensor *dtarget);

#ifdef __cplusplus
}
#endif
#endif
