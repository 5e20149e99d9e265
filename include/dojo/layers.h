/* dojo/layers.h — building blocks that put operators into a graph.
 *
 * Each dj_layer_* declares the layer's parameters under the given name
 * (torchvision's naming: "<name>.weight", "<name>.bias",
 * "<name>.running_mean", ...) and adds the operator node; it returns the id
 * of the output tensor, or -1 once the graph has an error (sticky, see
 * dojo/graph.h). The operator definitions themselves (dj_op_conv3d, ...)
 * are exported for tests and for builders that need a custom wiring. */
#ifndef DOJO_LAYERS_H
#define DOJO_LAYERS_H

#include <stdint.h>

#include "dojo/graph.h"
#include "dojo/ops_pointwise.h"
#include "dojo/ops_spatial.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Convolution geometry: kernel, stride, padding, dilation per (T,H,W). */
typedef struct dj_conv_spec {
    int kernel[3];
    int stride[3];
    int padding[3];
    int dilation[3];
    int groups;
    int bias;
} dj_conv_spec;

/* A kernel with stride 1 and "same" padding (k/2). */
dj_conv_spec dj_conv_same(int kt, int kh, int kw);

/* x (N,Cin,T,H,W) -> (N,cout,To,Ho,Wo); params name.weight (cout,Cin/g,kT,kH,kW) [+ name.bias] */
int dj_layer_conv3d(dj_graph *g, const char *name, int x, int64_t cout, dj_conv_spec spec);
/* x (N,C,...) -> same; params name.weight/.bias (C), buffers name.running_mean/.running_var (C) */
int dj_layer_batchnorm(dj_graph *g, const char *name, int x, float momentum, float eps);
/* Batch norm then ReLU as one node with the same parameters and buffers
 * (name.weight, ...): the same bits as dj_layer_batchnorm followed by
 * dj_layer_act(RELU), but a training plan keeps only its input and four
 * floats per channel for the backward pass; the output is recomputed. */
int dj_layer_batchnorm_relu(dj_graph *g, const char *name, int x, float momentum, float eps);
/* x (...,D) -> same; params name.weight/.bias (D) */
int dj_layer_layernorm(dj_graph *g, const char *name, int x, float eps);
int dj_layer_act(dj_graph *g, const char *name, int x, dj_act act);
/* Broadcasting a + b and a * b. */
int dj_layer_add(dj_graph *g, const char *name, int a, int b);
int dj_layer_mul(dj_graph *g, const char *name, int a, int b);
/* max(x + res, 0) */
int dj_layer_add_relu(dj_graph *g, const char *name, int x, int res);
/* (N,C,T,H,W) -> (N,C,1,1,1) */
int dj_layer_global_avgpool(dj_graph *g, const char *name, int x);
/* (N,C,T,H,W) -> (N,C,oT,oH,oW) */
int dj_layer_adaptive_avgpool(dj_graph *g, const char *name, int x, const int64_t out_thw[3]);
int dj_layer_maxpool3d(dj_graph *g, const char *name, int x, dj_pool3d_params p);
/* x (..., In) -> (..., out); params name.weight (out, In) [+ name.bias (out)] */
int dj_layer_linear(dj_graph *g, const char *name, int x, int64_t out, int bias);
/* A copy with a new shape of the same number of elements (-1 infers one). */
int dj_layer_reshape(dj_graph *g, const char *name, int x, int ndim, const int64_t *shape);
int dj_layer_permute(dj_graph *g, const char *name, int x, int ndim, const int *perm);
int dj_layer_dropout(dj_graph *g, const char *name, int x, float p, uint64_t site);
/* (N,C,T,H,W) -> tokens (N, T'*H'*W', dim); params name.weight (dim,C,kt,kh,kw), name.bias (dim) */
int dj_layer_patch_embed(dj_graph *g, const char *name, int x, int64_t dim, int kt, int kh, int kw);
/* q, k, v (B,T,S,D) -> (B,T,S,D), attention over time or space */
int dj_layer_attention(dj_graph *g, const char *name, int q, int k, int v, int heads, dj_attn_axis axis);
/* (B,L,D) -> (B,D): the mean over tokens */
int dj_layer_mean_tokens(dj_graph *g, const char *name, int x);
/* logits (N,K), labels int64 (N) -> scalar loss (mean, label smoothing) */
int dj_layer_cross_entropy(dj_graph *g, const char *name, int logits, int labels, float label_smoothing);

#ifdef __cplusplus
}
#endif
#endif
