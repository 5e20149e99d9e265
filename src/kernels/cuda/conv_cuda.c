/* conv_cuda.c — conv3d forward, backward-data and backward-filter on cuDNN
 * (NCDHW, float32 or bfloat16 with float32 accumulation on tensor cores).
 *
 * Descriptors are built per call from the tensors' shapes (cheap next to a
 * convolution); cuDNN's heuristic ranks the algorithms and the first one
 * whose workspace fits the device's is used. float32 asks for FMA math (no
 * TF32) so results match the CPU within float32 rounding. The backward
 * accumulates (beta = 1), as every dojo backward does. The bias is added, and
 * its gradient summed, by dojo's own bias kernels. Uses cuDNN's legacy
 * convolution API, still present in cuDNN 9. */
#include <string.h>

#include "cuda_internal.h"

enum { DJ_CONV_ALGOS = 8 };

typedef struct dj_conv_desc {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} dj_conv_desc;

static void dj_conv_desc_free(dj_conv_desc *c) {
    if (c->conv)
        cudnnDestroyConvolutionDescriptor(c->conv);
    if (c->w)
        cudnnDestroyFilterDescriptor(c->w);
    if (c->y)
        cudnnDestroyTensorDescriptor(c->y);
    if (c->x)
        cudnnDestroyTensorDescriptor(c->x);
}

static dj_status dj_tensor_desc(cudnnTensorDescriptor_t desc, cudnnDataType_t type, const int64_t *shape,
                                const char *w) {
    int dims[5], strides[5];
    for (int i = 0; i < 5; i++) {
        if (shape[i] > 0x7fffffff)
            return dj_error_set(DJ_ERR_UNSUPPORTED, w, "dimension of %lld: cuDNN takes int sizes",
                                (long long)shape[i]);
        dims[i] = (int)shape[i];
    }
    strides[4] = 1;
    for (int i = 3; i >= 0; i--)
        strides[i] = strides[i + 1] * (dims[i + 1] > 0 ? dims[i + 1] : 1);
    return dj_cudnn_check(cudnnSetTensorNdDescriptor(desc, type, 5, dims, strides), w, "tensor descriptor");
}

/* Checks shapes as the CPU conv does and fills the four descriptors. */
static dj_status dj_conv_setup(dj_device *d, const dj_conv3d_params *p, const dj_tensor *inp, const dj_tensor *weight,
                               const int64_t *out_shape, dj_conv_desc *c, const char *w) {
    if (!inp || !weight || (inp->dtype != DJ_DTYPE_F32 && inp->dtype != DJ_DTYPE_BF16))
        return dj_error_set(DJ_ERR_INVALID, w, "inp must be f32 or bf16");
    if (weight->dtype != inp->dtype)
        return dj_error_set(DJ_ERR_INVALID, w, "weight is %s, inp %s: one dtype for both", dj_dtype_name(weight->dtype),
                            dj_dtype_name(inp->dtype));
    if (inp->ndim != 5 || weight->ndim != 5)
        return dj_error_set(DJ_ERR_INVALID, w, "inp and weight must be 5-D (N,C,T,H,W)");
    int64_t want[5];
    DJ_TRY(dj_conv3d_output_shape(p, inp->shape, weight->shape, want));
    if (memcmp(want, out_shape, sizeof want) != 0)
        return dj_error_set(DJ_ERR_INVALID, w, "output shape does not match the convolution");
    int bf = inp->dtype == DJ_DTYPE_BF16;
    cudnnDataType_t type = bf ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    int pad[3], str[3], dil[3], fdim[5];
    for (int a = 0; a < 3; a++) {
        pad[a] = p->padding[a];
        str[a] = p->stride[a] > 0 ? p->stride[a] : 1;
        dil[a] = p->dilation[a] > 0 ? p->dilation[a] : 1;
    }
    for (int i = 0; i < 5; i++)
        fdim[i] = (int)weight->shape[i];
    DJ_TRY(dj_cudnn_check(cudnnCreateTensorDescriptor(&c->x), w, "descriptor"));
    DJ_TRY(dj_cudnn_check(cudnnCreateTensorDescriptor(&c->y), w, "descriptor"));
    DJ_TRY(dj_cudnn_check(cudnnCreateFilterDescriptor(&c->w), w, "descriptor"));
    DJ_TRY(dj_cudnn_check(cudnnCreateConvolutionDescriptor(&c->conv), w, "descriptor"));
    DJ_TRY(dj_tensor_desc(c->x, type, inp->shape, w));
    DJ_TRY(dj_tensor_desc(c->y, type, out_shape, w));
    DJ_TRY(dj_cudnn_check(cudnnSetFilterNdDescriptor(c->w, type, CUDNN_TENSOR_NCHW, 5, fdim), w, "filter descriptor"));
    DJ_TRY(dj_cudnn_check(cudnnSetConvolutionNdDescriptor(c->conv, 3, pad, str, dil, CUDNN_CROSS_CORRELATION,
                                                          CUDNN_DATA_FLOAT),
                          w, "convolution descriptor"));
    DJ_TRY(dj_cudnn_check(cudnnSetConvolutionGroupCount(c->conv, p->groups > 0 ? p->groups : 1), w, "groups"));
    return dj_cudnn_check(cudnnSetConvolutionMathType(c->conv, bf ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH), w,
                          "math type");
}

static dj_status dj_no_algo(const char *w, const char *pass) {
    return dj_error_set(DJ_ERR_UNSUPPORTED, w, "cuDNN has no %s algorithm within the workspace", pass);
}

static dj_status dj_conv_fwd(dj_device *d, dj_conv_desc *c, const dj_tensor *inp, const dj_tensor *weight,
                             dj_tensor *out, const char *w) {
    cudnnConvolutionFwdAlgoPerf_t perf[DJ_CONV_ALGOS];
    int n = 0;
    DJ_TRY(dj_cudnn_check(cudnnGetConvolutionForwardAlgorithm_v7(d->cudnn, c->x, c->w, c->conv, c->y, DJ_CONV_ALGOS,
                                                                 &n, perf),
                          w, "forward heuristic"));
    for (int i = 0; i < n; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > d->workspace_bytes)
            continue;
        float one = 1.f, zero = 0.f;
        return dj_cudnn_check(cudnnConvolutionForward(d->cudnn, &one, c->x, inp->data, c->w, weight->data, c->conv,
                                                      perf[i].algo, d->workspace, d->workspace_bytes, &zero, c->y,
                                                      out->data),
                              w, "cudnnConvolutionForward");
    }
    return dj_no_algo(w, "forward");
}

dj_status dj_cuda_conv3d_forward(dj_device *d, const dj_conv3d_params *p, const dj_tensor *inp,
                                 const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out) {
    const char *w = "dj_cuda_conv3d_forward";
    if (!out || out->dtype != (inp ? inp->dtype : DJ_DTYPE_F32) || out->ndim != 5)
        return dj_error_set(DJ_ERR_INVALID, w, "out must be 5-D of inp's dtype");
    if (bias) {
        int64_t b[1] = {weight ? weight->shape[0] : 0};
        DJ_TRY(dj_tensor_expect(bias, DJ_DTYPE_F32, 1, b, "bias"));
    }
    dj_conv_desc c = {0};
    dj_status st = dj_conv_setup(d, p, inp, weight, out->shape, &c, w);
    if (st == DJ_OK && dj_tensor_numel(out) > 0)
        st = dj_conv_fwd(d, &c, inp, weight, out, w);
    dj_conv_desc_free(&c);
    if (st != DJ_OK || !bias || dj_tensor_numel(out) == 0)
        return st;
    return dj_cuda_bias_act_forward(d, DJ_ACT_NONE, out, bias, out);
}

static dj_status dj_conv_bwd_data(dj_device *d, dj_conv_desc *c, const dj_tensor *weight, const dj_tensor *dout,
                                  dj_tensor *dinp, const char *w) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[DJ_CONV_ALGOS];
    int n = 0;
    DJ_TRY(dj_cudnn_check(cudnnGetConvolutionBackwardDataAlgorithm_v7(d->cudnn, c->w, c->y, c->conv, c->x,
                                                                      DJ_CONV_ALGOS, &n, perf),
                          w, "backward-data heuristic"));
    for (int i = 0; i < n; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > d->workspace_bytes)
            continue;
        float one = 1.f;
        return dj_cudnn_check(cudnnConvolutionBackwardData(d->cudnn, &one, c->w, weight->data, c->y, dout->data,
                                                           c->conv, perf[i].algo, d->workspace, d->workspace_bytes,
                                                           &one, c->x, dinp->data),
                              w, "cudnnConvolutionBackwardData");
    }
    return dj_no_algo(w, "backward-data");
}

static dj_status dj_conv_bwd_filter(dj_device *d, dj_conv_desc *c, const dj_tensor *inp, const dj_tensor *dout,
                                    dj_tensor *dweight, const char *w) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[DJ_CONV_ALGOS];
    int n = 0;
    DJ_TRY(dj_cudnn_check(cudnnGetConvolutionBackwardFilterAlgorithm_v7(d->cudnn, c->x, c->y, c->conv, c->w,
                                                                        DJ_CONV_ALGOS, &n, perf),
                          w, "backward-filter heuristic"));
    for (int i = 0; i < n; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > d->workspace_bytes)
            continue;
        float one = 1.f;
        return dj_cudnn_check(cudnnConvolutionBackwardFilter(d->cudnn, &one, c->x, inp->data, c->y, dout->data,
                                                             c->conv, perf[i].algo, d->workspace, d->workspace_bytes,
                                                             &one, c->w, dweight->data),
                              w, "cudnnConvolutionBackwardFilter");
    }
    return dj_no_algo(w, "backward-filter");
}

dj_status dj_cuda_conv3d_backward(dj_device *d, const dj_conv3d_params *p, const dj_tensor *inp,
                                  const dj_tensor *weight, const dj_tensor *dout, dj_tensor *dinp,
                                  dj_tensor *dweight, dj_tensor *dbias) {
    const char *w = "dj_cuda_conv3d_backward";
    if (!dout || !inp || dout->dtype != inp->dtype || dout->ndim != 5)
        return dj_error_set(DJ_ERR_INVALID, w, "dout must be 5-D of inp's dtype");
    if (dinp)
        DJ_TRY(dj_tensor_expect(dinp, inp->dtype, 5, inp->shape, "dinp"));
    if (dweight && weight)
        DJ_TRY(dj_tensor_expect(dweight, weight->dtype, 5, weight->shape, "dweight"));
    if (dbias) {
        int64_t b[1] = {dout->shape[1]};
        DJ_TRY(dj_tensor_expect(dbias, DJ_DTYPE_F32, 1, b, "dbias"));
    }
    dj_conv_desc c = {0};
    dj_status st = dj_conv_setup(d, p, inp, weight, dout->shape, &c, w);
    int empty = dj_tensor_numel(dout) == 0 || dj_tensor_numel(inp) == 0;
    if (st == DJ_OK && dinp && !empty)
        st = dj_conv_bwd_data(d, &c, weight, dout, dinp, w);
    if (st == DJ_OK && dweight && !empty)
        st = dj_conv_bwd_filter(d, &c, inp, dout, dweight, w);
    dj_conv_desc_free(&c);
    if (st != DJ_OK || !dbias || empty)
        return st;
    /* dbias[c] += sum of dout over n and positions (ACT_NONE: derivative 1, so dout doubles as x and dbias as bias) */
    return dj_cuda_bias_act_backward(d, DJ_ACT_NONE, dout, dbias, dout, NULL, dbias);
}
