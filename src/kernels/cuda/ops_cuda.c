/* ops_cuda.c — the host side of the CUDA operators of dojo/ops_cuda.h
 * except GEMM and conv3d (gemm_cuda.c, conv_cuda.c): shape and type checks
 * with the CPU operators' messages, then one kernel launch (or two) on the
 * device's stream, and the launch error turned into a dj_status. */
#include <string.h>

#include "cuda_internal.h"

/* ---- checks ---- */
static int dj_is_bf16(const dj_tensor *t) { return t->dtype == DJ_DTYPE_BF16; }

static dj_status dj_fb(const dj_tensor *t, const char *op, const char *what) {
    if (!t || !t->data)
        return dj_error_set(DJ_ERR_INVALID, op, "%s is missing", what);
    if (t->dtype != DJ_DTYPE_F32 && t->dtype != DJ_DTYPE_BF16)
        return dj_error_set(DJ_ERR_INVALID, op, "%s is %s: expected f32 or bf16", what, dj_dtype_name(t->dtype));
    return DJ_OK;
}

/* b exists and has a's dtype and shape (NULL b passes when optional). */
static dj_status dj_like(const dj_tensor *a, const dj_tensor *b, int optional, const char *op, const char *what) {
    if (!b && optional)
        return DJ_OK;
    if (!b || !b->data)
        return dj_error_set(DJ_ERR_INVALID, op, "%s is missing", what);
    return dj_tensor_expect(b, a->dtype, a->ndim, a->shape, what);
}

static dj_status dj_f32(const dj_tensor *t, const char *op, const char *what) {
    if (!t || !t->data)
        return dj_error_set(DJ_ERR_INVALID, op, "%s is missing", what);
    if (t->dtype != DJ_DTYPE_F32)
        return dj_error_set(DJ_ERR_INVALID, op, "%s is %s: expected f32", what, dj_dtype_name(t->dtype));
    return DJ_OK;
}

/* A (C) float32 vector, or NULL when optional. */
static dj_status dj_vec(const dj_tensor *t, int64_t C, int optional, const char *what) {
    if (!t && optional)
        return DJ_OK;
    int64_t shape[1] = {C};
    if (!t || !t->data)
        return dj_error_set(DJ_ERR_INVALID, what, "missing");
    return dj_tensor_expect(t, DJ_DTYPE_F32, 1, shape, what);
}

static void *dj_ptr(dj_tensor *t) { return t ? t->data : NULL; }
static const void *dj_cptr(const dj_tensor *t) { return t ? t->data : NULL; }

/* ---- point-wise ---- */
dj_status dj_cuda_act_forward(dj_device *d, dj_act act, const dj_tensor *x, dj_tensor *y) {
    const char *op = "dj_cuda_act_forward";
    DJ_TRY(dj_fb(x, op, "x"));
    DJ_TRY(dj_like(x, y, 0, op, "y"));
    dj_k_act_forward(d->stream, (int)act, dj_is_bf16(x), dj_tensor_numel(x), x->data, y->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_act_backward(dj_device *d, dj_act act, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx) {
    const char *op = "dj_cuda_act_backward";
    DJ_TRY(dj_fb(x, op, "x"));
    DJ_TRY(dj_like(x, dy, 0, op, "dy"));
    DJ_TRY(dj_like(x, dx, 1, op, "dx"));
    if (!dx)
        return DJ_OK;
    dj_k_act_backward(d->stream, (int)act, dj_is_bf16(x), dj_tensor_numel(x), x->data, dy->data, dx->data);
    return dj_cuda_launched(op);
}

static dj_status dj_binary_check(const dj_tensor *a, const dj_tensor *b, const dj_tensor *out, const char *op) {
    DJ_TRY(dj_fb(a, op, "a"));
    if (b && b->data && b->dtype == a->dtype && (b->ndim != a->ndim || memcmp(b->shape, a->shape, sizeof a->shape)))
        return dj_error_set(DJ_ERR_UNSUPPORTED, op, "broadcasting is not implemented on the GPU yet");
    DJ_TRY(dj_like(a, b, 0, op, "b"));
    return dj_like(a, out, 0, op, "out");
}

static dj_status dj_binary_fwd(dj_device *d, int mul, const dj_tensor *a, const dj_tensor *b, dj_tensor *out,
                               const char *op) {
    DJ_TRY(dj_binary_check(a, b, out, op));
    dj_k_binary_forward(d->stream, mul, dj_is_bf16(a), dj_tensor_numel(a), a->data, b->data, out->data);
    return dj_cuda_launched(op);
}

static dj_status dj_binary_bwd(dj_device *d, int mul, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                               dj_tensor *da, dj_tensor *db, const char *op) {
    DJ_TRY(dj_binary_check(a, b, dout, op));
    DJ_TRY(dj_like(a, da, 1, op, "da"));
    DJ_TRY(dj_like(a, db, 1, op, "db"));
    if (!da && !db)
        return DJ_OK;
    dj_k_binary_backward(d->stream, mul, dj_is_bf16(a), dj_tensor_numel(a), a->data, b->data, dout->data, dj_ptr(da),
                         dj_ptr(db));
    return dj_cuda_launched(op);
}

dj_status dj_cuda_add_forward(dj_device *d, const dj_tensor *a, const dj_tensor *b, dj_tensor *out) {
    return dj_binary_fwd(d, 0, a, b, out, "dj_cuda_add_forward");
}
dj_status dj_cuda_add_backward(dj_device *d, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                               dj_tensor *da, dj_tensor *db) {
    return dj_binary_bwd(d, 0, a, b, dout, da, db, "dj_cuda_add_backward");
}
dj_status dj_cuda_mul_forward(dj_device *d, const dj_tensor *a, const dj_tensor *b, dj_tensor *out) {
    return dj_binary_fwd(d, 1, a, b, out, "dj_cuda_mul_forward");
}
dj_status dj_cuda_mul_backward(dj_device *d, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                               dj_tensor *da, dj_tensor *db) {
    return dj_binary_bwd(d, 1, a, b, dout, da, db, "dj_cuda_mul_backward");
}

/* x (N,C,inner...) -> N, C, inner */
static dj_status dj_nc_inner(const dj_tensor *x, const char *op, int64_t *N, int64_t *C, int64_t *inner) {
    if (x->ndim < 2)
        return dj_error_set(DJ_ERR_INVALID, op, "x needs at least 2 dims (N,C,...), got %d", x->ndim);
    *N = x->shape[0];
    *C = x->shape[1];
    *inner = 1;
    for (int i = 2; i < x->ndim; i++)
        *inner *= x->shape[i];
    return DJ_OK;
}

dj_status dj_cuda_bias_act_forward(dj_device *d, dj_act act, const dj_tensor *x, const dj_tensor *bias, dj_tensor *y) {
    const char *op = "dj_cuda_bias_act_forward";
    int64_t N = 0, C = 0, inner = 0;
    DJ_TRY(dj_fb(x, op, "x"));
    DJ_TRY(dj_nc_inner(x, op, &N, &C, &inner));
    DJ_TRY(dj_vec(bias, C, 0, "bias"));
    DJ_TRY(dj_like(x, y, 0, op, "y"));
    dj_k_bias_act_forward(d->stream, (int)act, dj_is_bf16(x), dj_tensor_numel(x), C, inner, x->data, bias->data,
                          y->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_bias_act_backward(dj_device *d, dj_act act, const dj_tensor *x, const dj_tensor *bias,
                                    const dj_tensor *dy, dj_tensor *dx, dj_tensor *dbias) {
    const char *op = "dj_cuda_bias_act_backward";
    int64_t N = 0, C = 0, inner = 0;
    DJ_TRY(dj_fb(x, op, "x"));
    DJ_TRY(dj_nc_inner(x, op, &N, &C, &inner));
    DJ_TRY(dj_vec(bias, C, 0, "bias"));
    DJ_TRY(dj_like(x, dy, 0, op, "dy"));
    DJ_TRY(dj_like(x, dx, 1, op, "dx"));
    DJ_TRY(dj_vec(dbias, C, 1, "dbias"));
    if ((!dx && !dbias) || C == 0)
        return DJ_OK;
    dj_k_bias_act_backward(d->stream, (int)act, dj_is_bf16(x), N, C, inner, x->data, bias->data, dy->data, dj_ptr(dx),
                           dj_ptr(dbias));
    return dj_cuda_launched(op);
}

dj_status dj_cuda_add_relu_forward(dj_device *d, const dj_tensor *x, const dj_tensor *res, dj_tensor *y) {
    const char *op = "dj_cuda_add_relu_forward";
    DJ_TRY(dj_fb(x, op, "x"));
    DJ_TRY(dj_like(x, res, 0, op, "res"));
    DJ_TRY(dj_like(x, y, 0, op, "y"));
    dj_k_add_relu_forward(d->stream, dj_is_bf16(x), dj_tensor_numel(x), x->data, res->data, y->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_add_relu_backward(dj_device *d, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx,
                                    dj_tensor *dres) {
    const char *op = "dj_cuda_add_relu_backward";
    DJ_TRY(dj_fb(y, op, "y"));
    DJ_TRY(dj_like(y, dy, 0, op, "dy"));
    DJ_TRY(dj_like(y, dx, 1, op, "dx"));
    DJ_TRY(dj_like(y, dres, 1, op, "dres"));
    if (!dx && !dres)
        return DJ_OK;
    dj_k_add_relu_backward(d->stream, dj_is_bf16(y), dj_tensor_numel(y), y->data, dy->data, dj_ptr(dx), dj_ptr(dres));
    return dj_cuda_launched(op);
}

dj_status dj_cuda_convert(dj_device *d, const dj_tensor *x, dj_tensor *y) {
    const char *op = "dj_cuda_convert";
    DJ_TRY(dj_fb(x, op, "x"));
    dj_dtype to = dj_is_bf16(x) ? DJ_DTYPE_F32 : DJ_DTYPE_BF16;
    DJ_TRY(dj_tensor_expect(y, to, x->ndim, x->shape, "y"));
    if (dj_is_bf16(x))
        dj_k_bf16_to_f32(d->stream, dj_tensor_numel(x), x->data, y->data);
    else
        dj_k_f32_to_bf16(d->stream, dj_tensor_numel(x), x->data, y->data);
    return dj_cuda_launched(op);
}

/* ---- softmax and cross-entropy ---- */
static dj_status dj_rows_cols(const dj_tensor *x, const char *op, int64_t *rows, int64_t *cols) {
    DJ_TRY(dj_f32(x, op, "x"));
    if (x->ndim < 1)
        return dj_error_set(DJ_ERR_INVALID, op, "x needs at least 1 dim");
    *cols = x->shape[x->ndim - 1];
    *rows = *cols ? dj_tensor_numel(x) / *cols : 0;
    if (*rows > 0x7fffffff)
        return dj_error_set(DJ_ERR_UNSUPPORTED, op, "%lld rows: at most 2^31-1 on the GPU", (long long)*rows);
    return DJ_OK;
}

dj_status dj_cuda_softmax_forward(dj_device *d, int log, const dj_tensor *x, dj_tensor *y) {
    const char *op = "dj_cuda_softmax_forward";
    int64_t rows = 0, cols = 0;
    DJ_TRY(dj_rows_cols(x, op, &rows, &cols));
    DJ_TRY(dj_like(x, y, 0, op, "y"));
    if (rows == 0 || cols == 0)
        return DJ_OK;
    dj_k_softmax_forward(d->stream, log, rows, cols, x->data, y->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_softmax_backward(dj_device *d, int log, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx) {
    const char *op = "dj_cuda_softmax_backward";
    int64_t rows = 0, cols = 0;
    DJ_TRY(dj_rows_cols(y, op, &rows, &cols));
    DJ_TRY(dj_like(y, dy, 0, op, "dy"));
    DJ_TRY(dj_like(y, dx, 1, op, "dx"));
    if (!dx || rows == 0 || cols == 0)
        return DJ_OK;
    dj_k_softmax_backward(d->stream, log, rows, cols, y->data, dy->data, dx->data);
    return dj_cuda_launched(op);
}

static dj_status dj_ce_check(const dj_cross_entropy_params *p, const dj_tensor *logits, const dj_tensor *labels,
                             const char *op) {
    DJ_TRY(dj_f32(logits, op, "logits"));
    if (logits->ndim != 2 || logits->shape[0] == 0 || logits->shape[1] == 0)
        return dj_error_set(DJ_ERR_INVALID, op, "logits must be (N,K) with N, K > 0");
    int64_t n[1] = {logits->shape[0]};
    if (!labels || !labels->data)
        return dj_error_set(DJ_ERR_INVALID, op, "labels are missing");
    DJ_TRY(dj_tensor_expect(labels, DJ_DTYPE_I64, 1, n, "labels"));
    if (!(p->label_smoothing >= 0.f && p->label_smoothing <= 1.f))
        return dj_error_set(DJ_ERR_INVALID, op, "label_smoothing %g outside [0, 1]", p->label_smoothing);
    return DJ_OK;
}

dj_status dj_cuda_cross_entropy_forward(dj_device *d, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                        const dj_tensor *labels, float *loss) {
    const char *op = "dj_cuda_cross_entropy_forward";
    DJ_TRY(dj_ce_check(p, logits, labels, op));
    dj_k_cross_entropy_forward(d->stream, p->label_smoothing, logits->shape[0], logits->shape[1], logits->data,
                               labels->data, d->scalar);
    DJ_TRY(dj_cuda_launched(op));
    float r[2];
    DJ_TRY(dj_device_download(d, r, d->scalar, sizeof r));
    if (r[1] >= 0)
        return dj_error_set(DJ_ERR_RANGE, op, "label of row %lld out of range [0, %lld)", (long long)r[1],
                            (long long)logits->shape[1]);
    *loss = r[0];
    return DJ_OK;
}

dj_status dj_cuda_cross_entropy_forward_async(dj_device *d, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                              const dj_tensor *labels, float *loss2) {
    const char *op = "dj_cuda_cross_entropy_forward_async";
    DJ_TRY(dj_ce_check(p, logits, labels, op));
    dj_k_cross_entropy_forward(d->stream, p->label_smoothing, logits->shape[0], logits->shape[1], logits->data,
                               labels->data, loss2);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_cross_entropy_backward(dj_device *d, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                         const dj_tensor *labels, float dloss, dj_tensor *dlogits) {
    const char *op = "dj_cuda_cross_entropy_backward";
    DJ_TRY(dj_ce_check(p, logits, labels, op));
    DJ_TRY(dj_like(logits, dlogits, 1, op, "dlogits"));
    if (!dlogits)
        return DJ_OK;
    int64_t N = logits->shape[0];
    dj_k_cross_entropy_backward(d->stream, p->label_smoothing, dloss / (float)N, N, logits->shape[1], logits->data,
                                labels->data, dlogits->data);
    return dj_cuda_launched(op);
}

/* ---- batch norm ---- */
dj_status dj_cuda_batchnorm_forward(dj_device *d, const dj_batchnorm_params *p, const dj_tensor *inp,
                                    const dj_tensor *weight, const dj_tensor *bias, dj_tensor *running_mean,
                                    dj_tensor *running_var, dj_tensor *out, dj_tensor *save_mean,
                                    dj_tensor *save_invstd) {
    const char *op = "dj_cuda_batchnorm_forward";
    int64_t N = 0, C = 0, inner = 0;
    DJ_TRY(dj_f32(inp, op, "inp"));
    DJ_TRY(dj_nc_inner(inp, op, &N, &C, &inner));
    DJ_TRY(dj_vec(weight, C, 1, "weight"));
    DJ_TRY(dj_vec(bias, C, 1, "bias"));
    DJ_TRY(dj_vec(running_mean, C, 1, "running_mean"));
    DJ_TRY(dj_vec(running_var, C, 1, "running_var"));
    DJ_TRY(dj_vec(save_mean, C, 0, "save_mean"));
    DJ_TRY(dj_vec(save_invstd, C, 0, "save_invstd"));
    DJ_TRY(dj_like(inp, out, 0, op, "out"));
    if ((running_mean == NULL) != (running_var == NULL))
        return dj_error_set(DJ_ERR_INVALID, op, "running_mean and running_var go together");
    if (p->training && N * inner < 2 && running_var)
        return dj_error_set(DJ_ERR_INVALID, op, "training needs more than one value per channel");
    if (!p->training && !running_mean)
        return dj_error_set(DJ_ERR_INVALID, op, "eval mode needs running statistics");
    if (C == 0)
        return DJ_OK;
    if (p->training) {
        dj_k_batchnorm_stats(d->stream, N, C, inner, p->eps, inp->data, save_mean->data, save_invstd->data,
                             p->momentum, dj_ptr(running_mean), dj_ptr(running_var));
    } else {
        DJ_TRY(dj_cuda_check(cudaMemcpyAsync(save_mean->data, running_mean->data, (size_t)C * sizeof(float),
                                             cudaMemcpyDeviceToDevice, d->stream),
                             op, "copy"));
        dj_k_batchnorm_eval_invstd(d->stream, C, p->eps, running_var->data, save_invstd->data);
    }
    dj_k_batchnorm_apply(d->stream, N, C, inner, inp->data, save_mean->data, save_invstd->data, dj_cptr(weight),
                         dj_cptr(bias), out->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_batchnorm_backward(dj_device *d, const dj_batchnorm_params *p, const dj_tensor *inp,
                                     const dj_tensor *weight, const dj_tensor *save_mean,
                                     const dj_tensor *save_invstd, const dj_tensor *dout, dj_tensor *dinp,
                                     dj_tensor *dweight, dj_tensor *dbias) {
    const char *op = "dj_cuda_batchnorm_backward";
    int64_t N = 0, C = 0, inner = 0;
    DJ_TRY(dj_f32(inp, op, "inp"));
    DJ_TRY(dj_nc_inner(inp, op, &N, &C, &inner));
    DJ_TRY(dj_vec(weight, C, 1, "weight"));
    DJ_TRY(dj_vec(save_mean, C, 0, "save_mean"));
    DJ_TRY(dj_vec(save_invstd, C, 0, "save_invstd"));
    DJ_TRY(dj_like(inp, dout, 0, op, "dout"));
    DJ_TRY(dj_like(inp, dinp, 1, op, "dinp"));
    DJ_TRY(dj_vec(dweight, C, 1, "dweight"));
    DJ_TRY(dj_vec(dbias, C, 1, "dbias"));
    if (C == 0 || (!dinp && !dweight && !dbias))
        return DJ_OK;
    dj_k_batchnorm_backward(d->stream, p->training, N, C, inner, inp->data, dj_cptr(weight), save_mean->data,
                            save_invstd->data, dout->data, dj_ptr(dinp), dj_ptr(dweight), dj_ptr(dbias));
    return dj_cuda_launched(op);
}

/* ---- layer norm ---- */
static dj_status dj_ln_shape(int norm_dims, const dj_tensor *inp, const dj_tensor *weight, const char *op,
                             int64_t *rows, int64_t *D) {
    DJ_TRY(dj_f32(inp, op, "inp"));
    if (norm_dims < 1 || norm_dims > inp->ndim)
        return dj_error_set(DJ_ERR_INVALID, op, "norm_dims %d for a %d-dim input", norm_dims, inp->ndim);
    *D = 1;
    for (int i = inp->ndim - norm_dims; i < inp->ndim; i++)
        *D *= inp->shape[i];
    *rows = *D ? dj_tensor_numel(inp) / *D : 0;
    if (weight)
        DJ_TRY(dj_tensor_expect(weight, DJ_DTYPE_F32, norm_dims, inp->shape + inp->ndim - norm_dims, "weight"));
    return DJ_OK;
}

dj_status dj_cuda_layernorm_forward(dj_device *d, int norm_dims, float eps, const dj_tensor *inp,
                                    const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out,
                                    dj_tensor *save_mean, dj_tensor *save_invstd) {
    const char *op = "dj_cuda_layernorm_forward";
    int64_t rows = 0, D = 0;
    DJ_TRY(dj_ln_shape(norm_dims, inp, weight, op, &rows, &D));
    if (bias)
        DJ_TRY(dj_tensor_expect(bias, DJ_DTYPE_F32, norm_dims, inp->shape + inp->ndim - norm_dims, "bias"));
    DJ_TRY(dj_like(inp, out, 0, op, "out"));
    DJ_TRY(dj_vec(save_mean, rows, 0, "save_mean"));
    DJ_TRY(dj_vec(save_invstd, rows, 0, "save_invstd"));
    if (rows == 0 || D == 0)
        return DJ_OK;
    dj_k_layernorm_forward(d->stream, rows, D, eps, inp->data, dj_cptr(weight), dj_cptr(bias), out->data,
                           save_mean->data, save_invstd->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_layernorm_backward(dj_device *d, int norm_dims, const dj_tensor *inp, const dj_tensor *weight,
                                     const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                     dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    const char *op = "dj_cuda_layernorm_backward";
    int64_t rows = 0, D = 0;
    DJ_TRY(dj_ln_shape(norm_dims, inp, weight, op, &rows, &D));
    DJ_TRY(dj_vec(save_mean, rows, 0, "save_mean"));
    DJ_TRY(dj_vec(save_invstd, rows, 0, "save_invstd"));
    DJ_TRY(dj_like(inp, dout, 0, op, "dout"));
    DJ_TRY(dj_like(inp, dinp, 1, op, "dinp"));
    const int64_t *wshape = inp->shape + inp->ndim - norm_dims;
    if (dweight)
        DJ_TRY(dj_tensor_expect(dweight, DJ_DTYPE_F32, norm_dims, wshape, "dweight"));
    if (dbias)
        DJ_TRY(dj_tensor_expect(dbias, DJ_DTYPE_F32, norm_dims, wshape, "dbias"));
    if (rows == 0 || D == 0)
        return DJ_OK;
    dj_k_layernorm_backward(d->stream, rows, D, inp->data, dj_cptr(weight), save_mean->data, save_invstd->data,
                            dout->data, dj_ptr(dinp), dj_ptr(dweight), dj_ptr(dbias));
    return dj_cuda_launched(op);
}

/* ---- pooling ---- */
static dj_status dj_pool_desc(const dj_pool3d_params *p, const dj_tensor *inp, const dj_tensor *out, const char *op,
                              dj_k_pool *k) {
    DJ_TRY(dj_f32(inp, op, "inp"));
    DJ_TRY(dj_f32(out, op, "out"));
    if (inp->ndim != 5 || out->ndim != 5)
        return dj_error_set(DJ_ERR_INVALID, op, "pooling takes (N,C,T,H,W) tensors");
    if (p) {
        int64_t want[5];
        DJ_TRY(dj_pool3d_output_shape(p, inp->shape, want));
        DJ_TRY(dj_tensor_expect(out, DJ_DTYPE_F32, 5, want, "out"));
    } else if (out->shape[0] != inp->shape[0] || out->shape[1] != inp->shape[1]) {
        return dj_error_set(DJ_ERR_INVALID, op, "out's N and C differ from inp's");
    }
    memset(k, 0, sizeof *k);
    k->planes = inp->shape[0] * inp->shape[1];
    for (int a = 0; a < 3; a++) {
        k->in[a] = inp->shape[2 + a];
        k->out[a] = out->shape[2 + a];
        if (p) {
            k->k[a] = p->kernel[a];
            k->st[a] = p->stride[a] > 0 ? p->stride[a] : p->kernel[a];
            k->pd[a] = p->padding[a];
            k->dl[a] = p->dilation[a] > 0 ? p->dilation[a] : 1;
        } else if (k->out[a] < 1 || k->in[a] < 1) {
            return dj_error_set(DJ_ERR_INVALID, op, "adaptive pooling needs sizes >= 1");
        }
    }
    if (p)
        k->exclude_pad = p->exclude_pad;
    return DJ_OK;
}

dj_status dj_cuda_maxpool3d_forward(dj_device *d, const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out,
                                    dj_tensor *indices) {
    const char *op = "dj_cuda_maxpool3d_forward";
    dj_k_pool k;
    DJ_TRY(dj_pool_desc(p, inp, out, op, &k));
    DJ_TRY(dj_tensor_expect(indices, DJ_DTYPE_I64, 5, out->shape, "indices"));
    if (dj_tensor_numel(out) == 0)
        return DJ_OK;
    dj_k_maxpool_forward(d->stream, &k, inp->data, out->data, indices->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_maxpool3d_backward(dj_device *d, const dj_pool3d_params *p, const dj_tensor *indices,
                                     const dj_tensor *dout, dj_tensor *dinp) {
    const char *op = "dj_cuda_maxpool3d_backward";
    dj_k_pool k;
    if (!dinp)
        return DJ_OK;
    DJ_TRY(dj_pool_desc(p, dinp, dout, op, &k));
    DJ_TRY(dj_tensor_expect(indices, DJ_DTYPE_I64, 5, dout->shape, "indices"));
    if (dj_tensor_numel(dout) == 0 || dj_tensor_numel(dinp) == 0)
        return DJ_OK;
    int *bad = (int *)d->scalar;
    DJ_TRY(dj_device_memset(d, bad, 0, sizeof(int)));
    dj_k_maxpool_backward(d->stream, &k, indices->data, dout->data, dinp->data, bad);
    DJ_TRY(dj_cuda_launched(op));
    int flag = 0;
    DJ_TRY(dj_device_download(d, &flag, bad, sizeof flag));
    if (flag)
        return dj_error_set(DJ_ERR_RANGE, op, "an index lies outside its (T,H,W) plane");
    return DJ_OK;
}

dj_status dj_cuda_avgpool3d_forward(dj_device *d, const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out) {
    const char *op = "dj_cuda_avgpool3d_forward";
    dj_k_pool k;
    DJ_TRY(dj_pool_desc(p, inp, out, op, &k));
    for (int a = 0; a < 3; a++)
        if (k.dl[a] != 1)
            return dj_error_set(DJ_ERR_INVALID, op, "dilation must be 1 for average pooling");
    if (dj_tensor_numel(out) == 0)
        return DJ_OK;
    dj_k_avgpool_forward(d->stream, &k, inp->data, out->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_avgpool3d_backward(dj_device *d, const dj_pool3d_params *p, const dj_tensor *dout,
                                     dj_tensor *dinp) {
    const char *op = "dj_cuda_avgpool3d_backward";
    dj_k_pool k;
    if (!dinp)
        return DJ_OK;
    DJ_TRY(dj_pool_desc(p, dinp, dout, op, &k));
    for (int a = 0; a < 3; a++)
        if (k.dl[a] != 1)
            return dj_error_set(DJ_ERR_INVALID, op, "dilation must be 1 for average pooling");
    if (dj_tensor_numel(dinp) == 0)
        return DJ_OK;
    dj_k_avgpool_backward(d->stream, &k, dout->data, dinp->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_adaptive_avgpool3d_forward(dj_device *d, const dj_tensor *inp, dj_tensor *out) {
    const char *op = "dj_cuda_adaptive_avgpool3d_forward";
    dj_k_pool k;
    DJ_TRY(dj_pool_desc(NULL, inp, out, op, &k));
    if (dj_tensor_numel(out) == 0)
        return DJ_OK;
    dj_k_adaptive_avgpool_forward(d->stream, &k, inp->data, out->data);
    return dj_cuda_launched(op);
}

dj_status dj_cuda_adaptive_avgpool3d_backward(dj_device *d, const dj_tensor *dout, dj_tensor *dinp) {
    const char *op = "dj_cuda_adaptive_avgpool3d_backward";
    dj_k_pool k;
    if (!dinp)
        return DJ_OK;
    DJ_TRY(dj_pool_desc(NULL, dinp, dout, op, &k));
    if (dj_tensor_numel(dinp) == 0)
        return DJ_OK;
    dj_k_adaptive_avgpool_backward(d->stream, &k, dout->data, dinp->data);
    return dj_cuda_launched(op);
}

/* ---- optimizers ---- */
dj_status dj_cuda_sgd_update(dj_device *d, const dj_cuda_sgd_params *p, dj_tensor *w, const dj_tensor *g,
                             dj_tensor *buf) {
    const char *op = "dj_cuda_sgd_update";
    DJ_TRY(dj_f32(w, op, "w"));
    DJ_TRY(dj_like(w, g, 0, op, "grad"));
    DJ_TRY(dj_like(w, buf, p->momentum == 0.f, op, "momentum_buffer"));
    if (dj_tensor_numel(w) == 0)
        return DJ_OK;
    dj_k_sgd(d->stream, dj_tensor_numel(w), p, w->data, g->data, dj_ptr(buf));
    return dj_cuda_launched(op);
}

dj_status dj_cuda_adamw_update(dj_device *d, const dj_cuda_adamw_params *p, dj_tensor *w, const dj_tensor *g,
                               dj_tensor *exp_avg, dj_tensor *exp_avg_sq) {
    const char *op = "dj_cuda_adamw_update";
    DJ_TRY(dj_f32(w, op, "w"));
    DJ_TRY(dj_like(w, g, 0, op, "grad"));
    DJ_TRY(dj_like(w, exp_avg, 0, op, "exp_avg"));
    DJ_TRY(dj_like(w, exp_avg_sq, 0, op, "exp_avg_sq"));
    if (p->step < 1)
        return dj_error_set(DJ_ERR_INVALID, op, "step %lld: AdamW steps count from 1", (long long)p->step);
    if (dj_tensor_numel(w) == 0)
        return DJ_OK;
    dj_k_adamw(d->stream, dj_tensor_numel(w), p, w->data, g->data, exp_avg->data, exp_avg_sq->data);
    return dj_cuda_launched(op);
}
