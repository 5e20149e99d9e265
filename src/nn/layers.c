/* layers.c — graph nodes for every operator (infer / forward / backward
 * adapters over ops_spatial.h and ops_pointwise.h) and the dj_layer_*
 * helpers that declare parameters with torchvision's names. */
#include "dojo/layers.h"

#include <stdio.h>
#include <string.h>

static char *dj_join(char *buf, size_t size, const char *name, const char *suffix) {
    snprintf(buf, size, "%s.%s", name, suffix);
    return buf;
}

static dj_status dj_same_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    return dj_tensor_view(in[0]->dtype, in[0]->ndim, in[0]->shape, NULL, &out[0]);
}

/* ---- conv3d ---- */

static int64_t dj_numel(const dj_tensor *t) { return dj_tensor_numel(t); }

static dj_status dj_conv_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    if (in[0]->ndim != 5 || in[1]->ndim != 5)
        return dj_error_set(DJ_ERR_INVALID, "conv3d", "input and weight must be 5-D (N,C,T,H,W)");
    int64_t shape[5];
    DJ_TRY(dj_conv3d_output_shape(p, in[0]->shape, in[1]->shape, shape));
    return dj_tensor_view(DJ_DTYPE_F32, 5, shape, NULL, &out[0]);
}
/* the node's parameters with the graph's algorithm, if it sets one */
static dj_conv3d_params dj_conv_params(const dj_node_io *io) {
    dj_conv3d_params p = *(const dj_conv3d_params *)io->params;
    if (io->conv_algo != DJ_CONV_AUTO)
        p.algo = io->conv_algo;
    return p;
}

/* mixed precision when the graph gave the weight a bf16 copy */
static const dj_tensor *dj_bf16_weight(const dj_node_io *io) { return io->bf16 ? io->in_bf16[1] : NULL; }

/* The same for conv3d, except for convolutions that run the direct path in
 * float32, or Winograd where it saves at least DJ_BF16_OVER_WINOGRAD times
 * the GEMM's products: those run faster in float32 (r3d_18's layer-1 conv:
 * 4x the float32 GEMM, the bf16 one 1.8x), and Winograd with bf16 operands
 * is not accurate enough (F(4,3) tiles: 2.8e-2 of the outputs' RMS against
 * 2.3e-3 for the bf16 GEMM, measured). Where Winograd saves less (small
 * tiles over few frames, deep layers, (3,1,1) kernels) the bf16 GEMM is
 * faster, forward + backward at 8x3x8x112x112 on 2 threads (`dojo bench ops
 * --bf16`): r3d_18's layer-3 convs (saving 3.4) 1.21x, layer 4 (1.7) 2.38x;
 * r2plus1d_18's (3,1,1) convs (2.0) 1.09-2.31x, its 14x14 (1,3,3) ones
 * (2.25-3.1) 0.99-1.05x; at 4.0 and 6 Winograd's float32 was 1.8-2.4x
 * faster than bf16. */
enum { DJ_BF16_OVER_WINOGRAD = 4 };

static const dj_tensor *dj_conv_bf16_weight(const dj_node_io *io) {
    if (!dj_bf16_weight(io))
        return NULL;
    dj_conv3d_params p = dj_conv_params(io);
    dj_conv_path path = dj_conv3d_path(&p, io->in[0]->shape, io->in[1]->shape);
    if (path == DJ_CONV_PATH_DIRECT ||
        (path == DJ_CONV_PATH_WINOGRAD &&
         dj_conv3d_winograd_saving(&p, io->in[0]->shape, io->in[1]->shape) >= DJ_BF16_OVER_WINOGRAD))
        return NULL;
    return io->in_bf16[1];
}

static dj_status dj_conv_fwd(const dj_exec *ex, dj_node_io *io) {
    const dj_tensor *bias = io->n_in > 2 ? io->in[2] : NULL;
    dj_conv3d_params p = dj_conv_params(io);
    const dj_tensor *wb = dj_conv_bf16_weight(io);
    if (wb)
        return dj_conv3d_forward_bf16(ex, &p, io->in[0], io->in[1], wb, bias, io->out[0]);
    return dj_conv3d_forward(ex, &p, io->in[0], io->in[1], bias, io->out[0]);
}
static dj_status dj_conv_bwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor *dbias = io->n_in > 2 ? io->din[2] : NULL;
    dj_conv3d_params p = dj_conv_params(io);
    const dj_tensor *wb = dj_conv_bf16_weight(io);
    if (wb)
        return dj_conv3d_backward_bf16(ex, &p, io->in[0], io->in[1], wb, io->dout[0], io->din[0], io->din[1], dbias);
    return dj_conv3d_backward(ex, &p, io->in[0], io->in[1], io->dout[0], io->din[0], io->din[1], dbias);
}
static size_t dj_conv_scratch(const dj_node_io *io) {
    dj_conv3d_params p = dj_conv_params(io);
    if (dj_conv_bf16_weight(io))
        return dj_conv3d_scratch_bytes_bf16(&p, io->in[0], io->in[1]);
    return dj_conv3d_scratch_bytes(&p, io->in[0], io->in[1], io->threads);
}
static double dj_conv_flops(const dj_node_io *io) {
    const dj_tensor *w = io->in[1];
    return 2.0 * (double)dj_numel(io->out[0]) * (double)(w->shape[1] * w->shape[2] * w->shape[3] * w->shape[4]);
}
const dj_op_def dj_op_conv3d = {"conv3d", dj_conv_infer, dj_conv_fwd, dj_conv_bwd, dj_conv_scratch, NULL,
                                dj_conv_flops, 3, 0, NULL, 0};

dj_conv_spec dj_conv_same(int kt, int kh, int kw) {
    dj_conv_spec s;
    memset(&s, 0, sizeof s);
    s.kernel[0] = kt, s.kernel[1] = kh, s.kernel[2] = kw;
    s.stride[0] = s.stride[1] = s.stride[2] = 1;
    s.padding[0] = kt / 2, s.padding[1] = kh / 2, s.padding[2] = kw / 2;
    s.dilation[0] = s.dilation[1] = s.dilation[2] = 1;
    s.groups = 1;
    return s;
}

int dj_layer_conv3d(dj_graph *g, const char *name, int x, int64_t cout, dj_conv_spec spec) {
    char buf[512];
    if (dj_graph_status(g) != DJ_OK || x < 0)
        return -1;
    const dj_tensor *in = dj_graph_tensor(g, x);
    int groups = spec.groups > 0 ? spec.groups : 1;
    if (in->ndim != 5 || in->shape[1] % groups || cout % groups) {
        return dj_graph_error(g, dj_error_set(DJ_ERR_INVALID, name,
                                              "conv3d needs a 5-D input whose channels (%lld) and outputs (%lld) "
                                              "divide by groups (%d)",
                                              (long long)in->shape[1], (long long)cout, groups));
    }
    int64_t wshape[5] = {cout, in->shape[1] / groups, spec.kernel[0], spec.kernel[1], spec.kernel[2]};
    int ids[3] = {x, dj_graph_param(g, dj_join(buf, sizeof buf, name, "weight"), 5, wshape), -1};
    if (wshape[1] > 1) /* a matrix product (depthwise-style ones run float32) */
        dj_graph_param_bf16(g, ids[1]);
    int n = 2;
    if (spec.bias) {
        int64_t bshape[1] = {cout};
        ids[n++] = dj_graph_param(g, dj_join(buf, sizeof buf, name, "bias"), 1, bshape);
    }
    dj_conv3d_params p;
    memset(&p, 0, sizeof p);
    for (int a = 0; a < 3; a++) {
        p.stride[a] = spec.stride[a];
        p.padding[a] = spec.padding[a];
        p.dilation[a] = spec.dilation[a];
    }
    p.groups = groups;
    return dj_graph_add(g, name, &dj_op_conv3d, &p, sizeof p, ids, n, NULL, 1);
}

/* ---- batch norm ---- */

typedef struct dj_bn_node {
    float momentum, eps;
} dj_bn_node;

static void dj_bn_saved_views(dj_node_io *io, dj_tensor *mean, dj_tensor *invstd) {
    int64_t c = io->in[0]->shape[1];
    float *s = io->saved;
    dj_tensor_view(DJ_DTYPE_F32, 1, &c, s, mean);
    dj_tensor_view(DJ_DTYPE_F32, 1, &c, s + c, invstd);
}
static dj_status dj_bn_fwd(const dj_exec *ex, dj_node_io *io) {
    const dj_bn_node *n = io->params;
    dj_batchnorm_params p = {io->training, n->momentum, n->eps};
    dj_tensor mean, invstd;
    dj_bn_saved_views(io, &mean, &invstd);
    return dj_batchnorm_forward_sync(ex, &p, io->sync, io->in[0], io->in[1], io->in[2], io->in[3], io->in[4],
                                     io->out[0], &mean, &invstd);
}
static dj_status dj_bn_bwd(const dj_exec *ex, dj_node_io *io) {
    const dj_bn_node *n = io->params;
    dj_batchnorm_params p = {1, n->momentum, n->eps};
    dj_tensor mean, invstd;
    dj_bn_saved_views(io, &mean, &invstd);
    return dj_batchnorm_backward_sync(ex, &p, io->sync, io->in[0], io->in[1], &mean, &invstd, io->dout[0],
                                      io->din[0], io->din[1], io->din[2]);
}
static size_t dj_bn_saved(const dj_node_io *io) { return 2 * sizeof(float) * (size_t)io->in[0]->shape[1]; }
const dj_op_def dj_op_batchnorm = {"batch_norm", dj_same_infer, dj_bn_fwd, dj_bn_bwd,
                                   NULL, dj_bn_saved, NULL, 3, 0, NULL, 1};

/* A batch norm node (op: batch_norm or batch_norm_relu) with its
 * parameters and running statistics, named as torchvision names them. */
static int dj_layer_bn_node(dj_graph *g, const dj_op_def *op, const char *name, int x, float momentum, float eps) {
    char buf[512];
    if (dj_graph_status(g) != DJ_OK || x < 0)
        return -1;
    int64_t c[1] = {dj_graph_tensor(g, x)->shape[1]};
    int ids[5] = {x, dj_graph_param(g, dj_join(buf, sizeof buf, name, "weight"), 1, c),
                  dj_graph_param(g, dj_join(buf, sizeof buf, name, "bias"), 1, c),
                  dj_graph_buffer(g, dj_join(buf, sizeof buf, name, "running_mean"), 1, c),
                  dj_graph_buffer(g, dj_join(buf, sizeof buf, name, "running_var"), 1, c)};
    dj_bn_node p = {momentum, eps};
    return dj_graph_add(g, name, op, &p, sizeof p, ids, 5, NULL, 1);
}

int dj_layer_batchnorm(dj_graph *g, const char *name, int x, float momentum, float eps) {
    return dj_layer_bn_node(g, &dj_op_batchnorm, name, x, momentum, eps);
}

/* ---- batch norm + ReLU, the output recomputed for the backward pass ----
 * Keeps the input (the conv output before it) and per channel the mean,
 * 1/std, scale and shift; the output, which the next conv's backward reads,
 * is recomputed from them instead of being kept through the step. */

enum { DJ_BNR_MEAN, DJ_BNR_INVSTD, DJ_BNR_SCALE, DJ_BNR_SHIFT, DJ_BNR_SAVED };

static void dj_bnr_saved_view(dj_node_io *io, int which, dj_tensor *t) {
    int64_t c = io->in[0]->shape[1];
    dj_tensor_view(DJ_DTYPE_F32, 1, &c, (float *)io->saved + which * c, t);
}
static dj_status dj_bnr_fwd(const dj_exec *ex, dj_node_io *io) {
    const dj_bn_node *n = io->params;
    dj_batchnorm_params p = {io->training, n->momentum, n->eps};
    dj_tensor s[DJ_BNR_SAVED];
    for (int k = 0; k < DJ_BNR_SAVED; k++)
        dj_bnr_saved_view(io, k, &s[k]);
    return dj_batchnorm_relu_forward(ex, &p, io->sync, io->in[0], io->in[1], io->in[2], io->in[3], io->in[4],
                                     io->out[0], &s[DJ_BNR_MEAN], &s[DJ_BNR_INVSTD], &s[DJ_BNR_SCALE],
                                     &s[DJ_BNR_SHIFT]);
}
static dj_status dj_bnr_recompute(const dj_exec *ex, dj_node_io *io) {
    dj_tensor mean, scale, shift;
    dj_bnr_saved_view(io, DJ_BNR_MEAN, &mean);
    dj_bnr_saved_view(io, DJ_BNR_SCALE, &scale);
    dj_bnr_saved_view(io, DJ_BNR_SHIFT, &shift);
    return dj_batchnorm_relu_recompute(ex, io->in[0], &mean, &scale, &shift, io->out[0]);
}
static dj_status dj_bnr_bwd(const dj_exec *ex, dj_node_io *io) {
    const dj_bn_node *n = io->params;
    dj_batchnorm_params p = {1, n->momentum, n->eps};
    dj_tensor mean, invstd;
    dj_bnr_saved_view(io, DJ_BNR_MEAN, &mean);
    dj_bnr_saved_view(io, DJ_BNR_INVSTD, &invstd);
    return dj_batchnorm_relu_backward(ex, &p, io->sync, io->in[0], io->in[1], &mean, &invstd, io->out[0],
                                      io->dout[0], io->din[0], io->din[1], io->din[2]);
}
static size_t dj_bnr_saved(const dj_node_io *io) {
    return DJ_BNR_SAVED * sizeof(float) * (size_t)io->in[0]->shape[1];
}
/* backward reads the input, the weight and the output (the ReLU's mask) */
const dj_op_def dj_op_batchnorm_relu = {"batch_norm_relu", dj_same_infer, dj_bnr_fwd, dj_bnr_bwd,
                                        NULL, dj_bnr_saved, NULL, 3, 1, dj_bnr_recompute, 1};

int dj_layer_batchnorm_relu(dj_graph *g, const char *name, int x, float momentum, float eps) {
    return dj_layer_bn_node(g, &dj_op_batchnorm_relu, name, x, momentum, eps);
}

/* ---- layer norm ---- */

static void dj_ln_saved_views(dj_node_io *io, dj_tensor *mean, dj_tensor *invstd) {
    int64_t rows = dj_numel(io->in[0]) / io->in[0]->shape[io->in[0]->ndim - 1];
    float *s = io->saved;
    dj_tensor_view(DJ_DTYPE_F32, 1, &rows, s, mean);
    dj_tensor_view(DJ_DTYPE_F32, 1, &rows, s + rows, invstd);
}
static dj_status dj_ln_fwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor mean, invstd;
    dj_ln_saved_views(io, &mean, &invstd);
    return dj_layernorm_forward(ex, 1, *(const float *)io->params, io->in[0], io->in[1], io->in[2], io->out[0], &mean,
                                &invstd);
}
static dj_status dj_ln_bwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor mean, invstd;
    dj_ln_saved_views(io, &mean, &invstd);
    return dj_layernorm_backward(ex, 1, io->in[0], io->in[1], &mean, &invstd, io->dout[0], io->din[0], io->din[1],
                                 io->din[2]);
}
static size_t dj_ln_saved(const dj_node_io *io) {
    return 2 * sizeof(float) * (size_t)(dj_numel(io->in[0]) / io->in[0]->shape[io->in[0]->ndim - 1]);
}
const dj_op_def dj_op_layernorm = {"layer_norm", dj_same_infer, dj_ln_fwd, dj_ln_bwd,
                                   NULL, dj_ln_saved, NULL, 3, 0, NULL, 0};

int dj_layer_layernorm(dj_graph *g, const char *name, int x, float eps) {
    char buf[512];
    if (dj_graph_status(g) != DJ_OK || x < 0)
        return -1;
    const dj_tensor *in = dj_graph_tensor(g, x);
    int64_t d[1] = {in->shape[in->ndim - 1]};
    int ids[3] = {x, dj_graph_param(g, dj_join(buf, sizeof buf, name, "weight"), 1, d),
                  dj_graph_param(g, dj_join(buf, sizeof buf, name, "bias"), 1, d)};
    return dj_graph_add(g, name, &dj_op_layernorm, &eps, sizeof eps, ids, 3, NULL, 1);
}

/* ---- activations ---- */

static dj_status dj_act_fwd(const dj_exec *ex, dj_node_io *io) {
    return dj_act_forward(ex, *(const dj_act *)io->params, io->in[0], io->out[0]);
}
static dj_status dj_act_bwd(const dj_exec *ex, dj_node_io *io) {
    return dj_act_backward(ex, *(const dj_act *)io->params, io->in[0], io->dout[0], io->din[0]);
}
const dj_op_def dj_op_act = {"activation", dj_same_infer, dj_act_fwd, dj_act_bwd, NULL, NULL, NULL, 1, 0, NULL, 0};

int dj_layer_act(dj_graph *g, const char *name, int x, dj_act act) {
    return dj_graph_add(g, name, &dj_op_act, &act, sizeof act, &x, 1, NULL, 1);
}

/* ---- broadcasting add / mul ---- */

static dj_status dj_bcast_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    const dj_tensor *a = in[0], *b = in[1];
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t shape[DJ_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char x[128], y[128];
            return dj_error_set(DJ_ERR_INVALID, "broadcast", "shapes %s and %s do not broadcast",
                                dj_shape_string(a->ndim, a->shape, x, sizeof x),
                                dj_shape_string(b->ndim, b->shape, y, sizeof y));
        }
        shape[i] = sa == 1 ? sb : sa;
    }
    return dj_tensor_view(DJ_DTYPE_F32, nd, shape, NULL, &out[0]);
}
static dj_status dj_addn_fwd(const dj_exec *ex, dj_node_io *io) {
    return dj_add_forward(ex, io->in[0], io->in[1], io->out[0]);
}
static dj_status dj_addn_bwd(const dj_exec *ex, dj_node_io *io) {
    return dj_add_backward(ex, io->in[0], io->in[1], io->dout[0], io->din[0], io->din[1]);
}
static dj_status dj_muln_fwd(const dj_exec *ex, dj_node_io *io) {
    return dj_mul_forward(ex, io->in[0], io->in[1], io->out[0]);
}
static dj_status dj_muln_bwd(const dj_exec *ex, dj_node_io *io) {
    return dj_mul_backward(ex, io->in[0], io->in[1], io->dout[0], io->din[0], io->din[1]);
}
/* add's backward reads the inputs' shapes only, which stay valid: it saves nothing */
const dj_op_def dj_op_add = {"add", dj_bcast_infer, dj_addn_fwd, dj_addn_bwd, NULL, NULL, NULL, 0, 0, NULL, 0};
const dj_op_def dj_op_mul = {"mul", dj_bcast_infer, dj_muln_fwd, dj_muln_bwd, NULL, NULL, NULL, 3, 0, NULL, 0};

int dj_layer_add(dj_graph *g, const char *name, int a, int b) {
    int ids[2] = {a, b};
    return dj_graph_add(g, name, &dj_op_add, NULL, 0, ids, 2, NULL, 1);
}
int dj_layer_mul(dj_graph *g, const char *name, int a, int b) {
    int ids[2] = {a, b};
    return dj_graph_add(g, name, &dj_op_mul, NULL, 0, ids, 2, NULL, 1);
}

/* ---- residual add + ReLU ---- */

static dj_status dj_addrelu_fwd(const dj_exec *ex, dj_node_io *io) {
    return dj_add_relu_forward(ex, io->in[0], io->in[1], io->out[0]);
}
static dj_status dj_addrelu_bwd(const dj_exec *ex, dj_node_io *io) {
    return dj_add_relu_backward(ex, io->out[0], io->dout[0], io->din[0], io->din[1]);
}
const dj_op_def dj_op_add_relu = {"add_relu", dj_same_infer, dj_addrelu_fwd, dj_addrelu_bwd,
                                  NULL, NULL, NULL, 0, 1, NULL, 1};

int dj_layer_add_relu(dj_graph *g, const char *name, int x, int res) {
    int ids[2] = {x, res};
    return dj_graph_add(g, name, &dj_op_add_relu, NULL, 0, ids, 2, NULL, 1);
}

/* ---- pooling ---- */

static dj_status dj_gap_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    if (in[0]->ndim != 5)
        return dj_error_set(DJ_ERR_INVALID, "global_avgpool", "input must be 5-D (N,C,T,H,W)");
    int64_t s[2] = {in[0]->shape[0], in[0]->shape[1]};
    return dj_tensor_view(DJ_DTYPE_F32, 2, s, NULL, &out[0]);
}
static dj_tensor dj_as_5d(const dj_tensor *t) {
    int64_t s[5] = {t->shape[0], t->shape[1], 1, 1, 1};
    dj_tensor v;
    dj_tensor_view(t->dtype, 5, s, t->data, &v);
    return v;
}
static dj_status dj_gap_fwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor o = dj_as_5d(io->out[0]);
    return dj_adaptive_avgpool3d_forward(ex, io->in[0], &o);
}
static dj_status dj_gap_bwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor d = dj_as_5d(io->dout[0]);
    return dj_adaptive_avgpool3d_backward(ex, &d, io->din[0]);
}
const dj_op_def dj_op_global_avgpool = {"global_avgpool", dj_gap_infer, dj_gap_fwd, dj_gap_bwd,
                                        NULL, NULL, NULL, 0, 0, NULL, 0};

int dj_layer_global_avgpool(dj_graph *g, const char *name, int x) {
    return dj_graph_add(g, name, &dj_op_global_avgpool, NULL, 0, &x, 1, NULL, 1);
}

static dj_status dj_aap_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    const int64_t *o = p;
    if (in[0]->ndim != 5 || o[0] < 1 || o[1] < 1 || o[2] < 1)
        return dj_error_set(DJ_ERR_INVALID, "adaptive_avgpool", "needs a 5-D input and output sizes >= 1");
    int64_t s[5] = {in[0]->shape[0], in[0]->shape[1], o[0], o[1], o[2]};
    return dj_tensor_view(DJ_DTYPE_F32, 5, s, NULL, &out[0]);
}
static dj_status dj_aap_fwd(const dj_exec *ex, dj_node_io *io) {
    return dj_adaptive_avgpool3d_forward(ex, io->in[0], io->out[0]);
}
static dj_status dj_aap_bwd(const dj_exec *ex, dj_node_io *io) {
    return dj_adaptive_avgpool3d_backward(ex, io->dout[0], io->din[0]);
}
const dj_op_def dj_op_adaptive_avgpool = {"adaptive_avgpool", dj_aap_infer, dj_aap_fwd, dj_aap_bwd, NULL, NULL, NULL,
                                          0, 0, NULL, 0};

int dj_layer_adaptive_avgpool(dj_graph *g, const char *name, int x, const int64_t out_thw[3]) {
    return dj_graph_add(g, name, &dj_op_adaptive_avgpool, out_thw, 3 * sizeof(int64_t), &x, 1, NULL, 1);
}

static dj_status dj_maxpool_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    if (in[0]->ndim != 5)
        return dj_error_set(DJ_ERR_INVALID, "max_pool3d", "input must be 5-D (N,C,T,H,W)");
    int64_t s[5];
    DJ_TRY(dj_pool3d_output_shape(p, in[0]->shape, s));
    return dj_tensor_view(DJ_DTYPE_F32, 5, s, NULL, &out[0]);
}
static dj_tensor dj_maxpool_indices(dj_node_io *io) {
    dj_tensor t;
    dj_tensor_view(DJ_DTYPE_I64, 5, io->out[0]->shape, io->saved, &t);
    return t;
}
static dj_status dj_maxpool_fwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor idx = dj_maxpool_indices(io);
    return dj_maxpool3d_forward(ex, io->params, io->in[0], io->out[0], &idx);
}
static dj_status dj_maxpool_bwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor idx = dj_maxpool_indices(io);
    return dj_maxpool3d_backward(ex, io->params, &idx, io->dout[0], io->din[0]);
}
static size_t dj_maxpool_saved(const dj_node_io *io) { return sizeof(int64_t) * (size_t)dj_numel(io->out[0]); }
const dj_op_def dj_op_maxpool3d = {"max_pool3d", dj_maxpool_infer, dj_maxpool_fwd, dj_maxpool_bwd, NULL,
                                   dj_maxpool_saved, NULL, 0, 0, NULL, 0};

int dj_layer_maxpool3d(dj_graph *g, const char *name, int x, dj_pool3d_params p) {
    return dj_graph_add(g, name, &dj_op_maxpool3d, &p, sizeof p, &x, 1, NULL, 1);
}

/* ---- linear ---- */

static dj_status dj_linear_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    const dj_tensor *x = in[0], *w = in[1];
    if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1]) {
        char a[128], b[128];
        return dj_error_set(DJ_ERR_INVALID, "linear", "input %s does not match weight %s",
                            dj_shape_string(x->ndim, x->shape, a, sizeof a),
                            dj_shape_string(w->ndim, w->shape, b, sizeof b));
    }
    int64_t s[DJ_MAX_DIMS];
    memcpy(s, x->shape, sizeof s);
    s[x->ndim - 1] = w->shape[0];
    return dj_tensor_view(DJ_DTYPE_F32, x->ndim, s, NULL, &out[0]);
}
static dj_status dj_linear_fwd(const dj_exec *ex, dj_node_io *io) {
    const dj_tensor *bias = io->n_in > 2 ? io->in[2] : NULL;
    if (dj_bf16_weight(io))
        return dj_linear_forward_bf16(ex, io->in[0], io->in[1], dj_bf16_weight(io), bias, io->out[0]);
    return dj_linear_forward(ex, io->in[0], io->in[1], bias, io->out[0]);
}
static dj_status dj_linear_bwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor *dbias = io->n_in > 2 ? io->din[2] : NULL;
    if (dj_bf16_weight(io))
        return dj_linear_backward_bf16(ex, io->in[0], io->in[1], dj_bf16_weight(io), io->dout[0], io->din[0],
                                       io->din[1], dbias);
    return dj_linear_backward(ex, io->in[0], io->in[1], io->dout[0], io->din[0], io->din[1], dbias);
}
static size_t dj_linear_scratch(const dj_node_io *io) {
    return dj_bf16_weight(io) ? dj_linear_scratch_bytes_bf16(io->in[0], io->in[1]) : 0;
}
static double dj_linear_flops(const dj_node_io *io) {
    return 2.0 * (double)dj_numel(io->out[0]) * (double)io->in[1]->shape[1];
}
const dj_op_def dj_op_linear = {"linear", dj_linear_infer, dj_linear_fwd, dj_linear_bwd, dj_linear_scratch, NULL,
                                dj_linear_flops, 3, 0, NULL, 0};

int dj_layer_linear(dj_graph *g, const char *name, int x, int64_t out, int bias) {
    char buf[512];
    if (dj_graph_status(g) != DJ_OK || x < 0)
        return -1;
    const dj_tensor *in = dj_graph_tensor(g, x);
    int64_t ws[2] = {out, in->shape[in->ndim - 1]}, bs[1] = {out};
    int ids[3] = {x, dj_graph_param(g, dj_join(buf, sizeof buf, name, "weight"), 2, ws), -1};
    dj_graph_param_bf16(g, ids[1]);
    if (bias)
        ids[2] = dj_graph_param(g, dj_join(buf, sizeof buf, name, "bias"), 1, bs);
    return dj_graph_add(g, name, &dj_op_linear, NULL, 0, ids, bias ? 3 : 2, NULL, 1);
}

/* ---- reshape (a copy: every graph tensor owns its planned memory) ---- */

typedef struct dj_reshape_node {
    int ndim;
    int64_t shape[DJ_MAX_DIMS];
} dj_reshape_node;

static dj_status dj_reshape_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    const dj_reshape_node *r = p;
    dj_tensor v;
    dj_tensor src = *in[0];
    src.data = (void *)&src; /* any non-NULL pointer: only the shape is used */
    DJ_TRY(dj_reshape(&src, r->ndim, r->shape, &v));
    return dj_tensor_view(in[0]->dtype, v.ndim, v.shape, NULL, &out[0]);
}
static dj_status dj_reshape_fwd(const dj_exec *ex, dj_node_io *io) {
    memcpy(io->out[0]->data, io->in[0]->data, dj_tensor_nbytes(io->in[0]));
    return DJ_OK;
}
static dj_status dj_reshape_bwd(const dj_exec *ex, dj_node_io *io) {
    float *dx = io->din[0]->data;
    const float *dy = io->dout[0]->data;
    int64_t n = dj_numel(io->in[0]);
    for (int64_t i = 0; i < n; i++)
        dx[i] += dy[i];
    return DJ_OK;
}
const dj_op_def dj_op_reshape = {"reshape", dj_reshape_infer, dj_reshape_fwd, dj_reshape_bwd,
                                 NULL, NULL, NULL, 0, 0, NULL, 0};

int dj_layer_reshape(dj_graph *g, const char *name, int x, int ndim, const int64_t *shape) {
    dj_reshape_node r;
    memset(&r, 0, sizeof r);
    if (ndim < 0 || ndim > DJ_MAX_DIMS)
        ndim = DJ_MAX_DIMS + 1; /* rejected by dj_reshape in infer */
    else
        memcpy(r.shape, shape, (size_t)ndim * sizeof *shape);
    r.ndim = ndim;
    return dj_graph_add(g, name, &dj_op_reshape, &r, sizeof r, &x, 1, NULL, 1);
}

/* ---- permute ---- */

typedef struct dj_permute_node {
    int perm[DJ_MAX_DIMS];
} dj_permute_node;

static dj_status dj_permute_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    const dj_permute_node *r = p;
    int64_t s[DJ_MAX_DIMS];
    int seen[DJ_MAX_DIMS] = {0};
    for (int i = 0; i < in[0]->ndim; i++) {
        int k = r->perm[i];
        if (k < 0 || k >= in[0]->ndim || seen[k]++)
            return dj_error_set(DJ_ERR_INVALID, "permute", "not a permutation of %d dimensions", in[0]->ndim);
        s[i] = in[0]->shape[k];
    }
    return dj_tensor_view(in[0]->dtype, in[0]->ndim, s, NULL, &out[0]);
}
static dj_status dj_permute_fwd(const dj_exec *ex, dj_node_io *io) {
    return dj_permute_forward(ex, ((const dj_permute_node *)io->params)->perm, io->in[0], io->out[0]);
}
static dj_status dj_permute_bwd(const dj_exec *ex, dj_node_io *io) {
    return dj_permute_backward(ex, ((const dj_permute_node *)io->params)->perm, io->dout[0], io->din[0]);
}
const dj_op_def dj_op_permute = {"permute", dj_permute_infer, dj_permute_fwd, dj_permute_bwd,
                                 NULL, NULL, NULL, 0, 0, NULL, 0};

int dj_layer_permute(dj_graph *g, const char *name, int x, int ndim, const int *perm) {
    dj_permute_node r;
    for (int i = 0; i < DJ_MAX_DIMS; i++)
        r.perm[i] = i < ndim ? perm[i] : -1;
    return dj_graph_add(g, name, &dj_op_permute, &r, sizeof r, &x, 1, NULL, 1);
}

/* ---- dropout ---- */

typedef struct dj_dropout_node {
    float p;
    uint64_t site;
} dj_dropout_node;

static dj_dropout_params dj_dropout_for(const dj_node_io *io, int training) {
    const dj_dropout_node *n = io->params;
    dj_dropout_params p = {n->p, training, io->seed ^ (n->site * 0x9e3779b97f4a7c15ull), io->step};
    return p;
}
static dj_status dj_dropout_fwd(const dj_exec *ex, dj_node_io *io) {
    dj_dropout_params p = dj_dropout_for(io, io->training);
    return dj_dropout_forward(ex, &p, io->in[0], io->out[0]);
}
static dj_status dj_dropout_bwd(const dj_exec *ex, dj_node_io *io) {
    dj_dropout_params p = dj_dropout_for(io, 1);
    return dj_dropout_backward(ex, &p, io->dout[0], io->din[0]);
}
const dj_op_def dj_op_dropout = {"dropout", dj_same_infer, dj_dropout_fwd, dj_dropout_bwd,
                                 NULL, NULL, NULL, 0, 0, NULL, 0};

int dj_layer_dropout(dj_graph *g, const char *name, int x, float p, uint64_t site) {
    dj_dropout_node n = {p, site};
    return dj_graph_add(g, name, &dj_op_dropout, &n, sizeof n, &x, 1, NULL, 1);
}

/* ---- tubelet embedding ---- */

static dj_status dj_patch_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    const dj_tensor *x = in[0], *w = in[1];
    if (x->ndim != 5 || w->ndim != 5 || x->shape[1] != w->shape[1])
        return dj_error_set(DJ_ERR_INVALID, "patch_embed", "input (N,C,T,H,W) and weight (D,C,kT,kH,kW) disagree");
    int64_t tokens = (x->shape[2] / w->shape[2]) * (x->shape[3] / w->shape[3]) * (x->shape[4] / w->shape[4]);
    int64_t s[3] = {x->shape[0], tokens, w->shape[0]};
    return dj_tensor_view(DJ_DTYPE_F32, 3, s, NULL, &out[0]);
}
static dj_status dj_patch_fwd(const dj_exec *ex, dj_node_io *io) {
    return dj_patch_embed_forward(ex, io->in[0], io->in[1], io->in[2], io->out[0]);
}
static dj_status dj_patch_bwd(const dj_exec *ex, dj_node_io *io) {
    return dj_patch_embed_backward(ex, io->in[0], io->in[1], io->dout[0], io->din[0], io->din[1], io->din[2]);
}
static size_t dj_patch_scratch(const dj_node_io *io) { return dj_patch_embed_scratch_bytes(io->in[0], io->in[1]); }
static double dj_patch_flops(const dj_node_io *io) {
    const dj_tensor *w = io->in[1];
    return 2.0 * (double)dj_numel(io->out[0]) * (double)(w->shape[1] * w->shape[2] * w->shape[3] * w->shape[4]);
}
const dj_op_def dj_op_patch_embed = {"patch_embed", dj_patch_infer, dj_patch_fwd, dj_patch_bwd, dj_patch_scratch,
                                     NULL, dj_patch_flops, 3, 0, NULL, 0};

int dj_layer_patch_embed(dj_graph *g, const char *name, int x, int64_t dim, int kt, int kh, int kw) {
    char buf[512];
    if (dj_graph_status(g) != DJ_OK || x < 0)
        return -1;
    int64_t ws[5] = {dim, dj_graph_tensor(g, x)->shape[1], kt, kh, kw}, bs[1] = {dim};
    int ids[3] = {x, dj_graph_param(g, dj_join(buf, sizeof buf, name, "weight"), 5, ws),
                  dj_graph_param(g, dj_join(buf, sizeof buf, name, "bias"), 1, bs)};
    return dj_graph_add(g, name, &dj_op_patch_embed, NULL, 0, ids, 3, NULL, 1);
}

/* ---- attention ---- */

static dj_status dj_attn_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    for (int i = 1; i < 3; i++)
        if (in[i]->ndim != 4 || memcmp(in[i]->shape, in[0]->shape, 4 * sizeof(int64_t)) != 0)
            return dj_error_set(DJ_ERR_INVALID, "attention", "q, k and v must have the same (B,T,S,D) shape");
    if (dj_attention_probs_numel(p, in[0]->shape) <= 0)
        return dj_error_set(DJ_ERR_INVALID, "attention", "heads do not divide the channels, or a bad axis");
    return dj_same_infer(p, in, n_in, out, n_out);
}
static dj_tensor dj_attn_probs(dj_node_io *io) {
    int64_t n = dj_attention_probs_numel(io->params, io->in[0]->shape);
    dj_tensor t;
    dj_tensor_view(DJ_DTYPE_F32, 1, &n, io->saved, &t);
    return t;
}
static dj_status dj_attn_fwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor probs = dj_attn_probs(io);
    return dj_attention_forward(ex, io->params, io->in[0], io->in[1], io->in[2], &probs, io->out[0]);
}
static dj_status dj_attn_bwd(const dj_exec *ex, dj_node_io *io) {
    dj_tensor probs = dj_attn_probs(io);
    return dj_attention_backward(ex, io->params, io->in[0], io->in[1], io->in[2], &probs, io->dout[0], io->din[0],
                                 io->din[1], io->din[2]);
}
static size_t dj_attn_saved(const dj_node_io *io) {
    return sizeof(float) * (size_t)dj_attention_probs_numel(io->params, io->in[0]->shape);
}
static size_t dj_attn_scratch(const dj_node_io *io) {
    return dj_attention_scratch_bytes(io->params, io->in[0]->shape, io->threads);
}
static double dj_attn_flops(const dj_node_io *io) {
    const dj_attention_params *p = io->params;
    const int64_t *s = io->in[0]->shape; /* B,T,S,D */
    double len = (double)(p->axis == DJ_ATTN_TIME ? s[1] : s[2]);
    return 4.0 * (double)(s[0] * s[1] * s[2] * s[3]) * len; /* QK^T and PV */
}
const dj_op_def dj_op_attention = {"attention", dj_attn_infer, dj_attn_fwd, dj_attn_bwd, dj_attn_scratch,
                                   dj_attn_saved, dj_attn_flops, 7, 0, NULL, 0};

int dj_layer_attention(dj_graph *g, const char *name, int q, int k, int v, int heads, dj_attn_axis axis) {
    dj_attention_params p = {heads, axis, 0.0f};
    int ids[3] = {q, k, v};
    return dj_graph_add(g, name, &dj_op_attention, &p, sizeof p, ids, 3, NULL, 1);
}

/* ---- mean over tokens: (B,L,D) -> (B,D) ---- */

static dj_status dj_meantok_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    if (in[0]->ndim != 3 || in[0]->shape[1] < 1)
        return dj_error_set(DJ_ERR_INVALID, "mean_tokens", "input must be (B,L,D) with L >= 1");
    int64_t s[2] = {in[0]->shape[0], in[0]->shape[2]};
    return dj_tensor_view(DJ_DTYPE_F32, 2, s, NULL, &out[0]);
}
typedef struct dj_meantok_job {
    const float *x;
    float *y;
    int64_t L, D;
    int backward;
} dj_meantok_job;
static void dj_meantok_rows(void *arg, int64_t begin, int64_t end, int thread) {
    const dj_meantok_job *j = arg;
    for (int64_t b = begin; b < end; b++) {
        if (!j->backward) {
            float *y = j->y + b * j->D;
            for (int64_t d = 0; d < j->D; d++) {
                double s = 0;
                for (int64_t l = 0; l < j->L; l++)
                    s += j->x[(b * j->L + l) * j->D + d];
                y[d] = (float)(s / (double)j->L);
            }
        } else { /* x is dy (B,D), y is dx (B,L,D) */
            const float *dy = j->x + b * j->D;
            float inv = 1.0f / (float)j->L;
            for (int64_t l = 0; l < j->L; l++)
                for (int64_t d = 0; d < j->D; d++)
                    j->y[(b * j->L + l) * j->D + d] += dy[d] * inv;
        }
    }
}
static dj_status dj_meantok_fwd(const dj_exec *ex, dj_node_io *io) {
    dj_meantok_job j = {io->in[0]->data, io->out[0]->data, io->in[0]->shape[1], io->in[0]->shape[2], 0};
    dj_parallel_for(ex ? ex->pool : NULL, io->in[0]->shape[0], 1, dj_meantok_rows, &j);
    return DJ_OK;
}
static dj_status dj_meantok_bwd(const dj_exec *ex, dj_node_io *io) {
    dj_meantok_job j = {io->dout[0]->data, io->din[0]->data, io->in[0]->shape[1], io->in[0]->shape[2], 1};
    dj_parallel_for(ex ? ex->pool : NULL, io->in[0]->shape[0], 1, dj_meantok_rows, &j);
    return DJ_OK;
}
const dj_op_def dj_op_mean_tokens = {"mean_tokens", dj_meantok_infer, dj_meantok_fwd, dj_meantok_bwd, NULL, NULL,
                                     NULL, 0, 0, NULL, 0};

int dj_layer_mean_tokens(dj_graph *g, const char *name, int x) {
    return dj_graph_add(g, name, &dj_op_mean_tokens, NULL, 0, &x, 1, NULL, 1);
}

/* ---- cross-entropy ---- */

static dj_status dj_ce_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    if (in[0]->ndim != 2 || in[1]->ndim != 1 || in[1]->dtype != DJ_DTYPE_I64 || in[1]->shape[0] != in[0]->shape[0])
        return dj_error_set(DJ_ERR_INVALID, "cross_entropy", "needs logits (N,K) and int64 labels (N)");
    return dj_tensor_view(DJ_DTYPE_F32, 0, NULL, NULL, &out[0]);
}
static dj_status dj_ce_fwd(const dj_exec *ex, dj_node_io *io) {
    return dj_cross_entropy_forward(ex, io->params, io->in[0], io->in[1], (float *)io->out[0]->data);
}
static dj_status dj_ce_bwd(const dj_exec *ex, dj_node_io *io) {
    return dj_cross_entropy_backward(ex, io->params, io->in[0], io->in[1], *(const float *)io->dout[0]->data,
                                     io->din[0]);
}
const dj_op_def dj_op_cross_entropy = {"cross_entropy", dj_ce_infer, dj_ce_fwd, dj_ce_bwd,
                                       NULL, NULL, NULL, 3, 0, NULL, 0};

int dj_layer_cross_entropy(dj_graph *g, const char *name, int logits, int labels, float label_smoothing) {
    dj_cross_entropy_params p = {label_smoothing};
    int ids[2] = {logits, labels};
    return dj_graph_add(g, name, &dj_op_cross_entropy, &p, sizeof p, ids, 2, NULL, 1);
}
