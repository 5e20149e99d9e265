/* tensor.c — creating, viewing and checking dense tensors. */
#include "dojo/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t dj_dtype_size(dj_dtype dtype) {
    switch (dtype) {
    case DJ_DTYPE_F32: return 4;
    case DJ_DTYPE_BF16: return 2;
    case DJ_DTYPE_F64: return 8;
    case DJ_DTYPE_U8: return 1;
    case DJ_DTYPE_I64: return 8;
    case DJ_DTYPE_I32: return 4;
    }
    return 0;
}

const char *dj_dtype_name(dj_dtype dtype) {
    switch (dtype) {
    case DJ_DTYPE_F32: return "float32";
    case DJ_DTYPE_BF16: return "bfloat16";
    case DJ_DTYPE_F64: return "float64";
    case DJ_DTYPE_U8: return "uint8";
    case DJ_DTYPE_I64: return "int64";
    case DJ_DTYPE_I32: return "int32";
    }
    return "unknown";
}

int64_t dj_tensor_numel(const dj_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t dj_tensor_nbytes(const dj_tensor *t) { return (size_t)dj_tensor_numel(t) * dj_dtype_size(t->dtype); }

char *dj_shape_string(int ndim, const int64_t *shape, char *buf, size_t size) {
    size_t used = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, ")");
    return buf;
}

/* Validates dtype/ndim/shape and computes the byte size without overflow. */
static dj_status dj_tensor_describe(dj_dtype dtype, int ndim, const int64_t *shape, dj_tensor *out, size_t *bytes) {
    if (dj_dtype_size(dtype) == 0)
        return dj_error_set(DJ_ERR_INVALID, "dj_tensor", "unknown dtype %d", (int)dtype);
    if (ndim < 0 || ndim > DJ_MAX_DIMS)
        return dj_error_set(DJ_ERR_INVALID, "dj_tensor", "%d dimensions, at most %d supported", ndim, DJ_MAX_DIMS);
    memset(out, 0, sizeof *out);
    out->dtype = dtype;
    out->ndim = ndim;
    for (int i = 0; i < DJ_MAX_DIMS; i++)
        out->shape[i] = 1;
    size_t n = dj_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char s[128];
            return dj_error_set(DJ_ERR_INVALID, "dj_tensor", "negative size in shape %s",
                                dj_shape_string(ndim, shape, s, sizeof s));
        }
        if (shape[i] > 0 && n > ((size_t)1 << 48) / (size_t)shape[i]) {
            char s[128];
            return dj_error_set(DJ_ERR_RANGE, "dj_tensor", "shape %s is too large",
                                dj_shape_string(ndim, shape, s, sizeof s));
        }
        n *= (size_t)shape[i];
        out->shape[i] = shape[i];
    }
    *bytes = n;
    return DJ_OK;
}

dj_status dj_tensor_create(dj_dtype dtype, int ndim, const int64_t *shape, dj_tensor *out) {
    size_t bytes = 0;
    DJ_TRY(dj_tensor_describe(dtype, ndim, shape, out, &bytes));
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p)
        return dj_error_set(DJ_ERR_NOMEM, "dj_tensor_create", "cannot allocate %zu bytes", bytes);
    memset(p, 0, rounded ? rounded : 64);
    out->data = p;
    out->owns_data = 1;
    return DJ_OK;
}

dj_status dj_tensor_view(dj_dtype dtype, int ndim, const int64_t *shape, void *data, dj_tensor *out) {
    size_t bytes = 0;
    DJ_TRY(dj_tensor_describe(dtype, ndim, shape, out, &bytes));
    out->data = data;
    out->owns_data = 0;
    return DJ_OK;
}

void dj_tensor_free(dj_tensor *t) {
    if (!t)
        return;
    if (t->owns_data)
        free(t->data);
    memset(t, 0, sizeof *t);
}

dj_status dj_tensor_reshape(const dj_tensor *t, int ndim, const int64_t *shape, dj_tensor *out) {
    dj_tensor v;
    size_t bytes = 0;
    DJ_TRY(dj_tensor_describe(t->dtype, ndim, shape, &v, &bytes));
    if (bytes != dj_tensor_nbytes(t)) {
        char a[128], b[128];
        return dj_error_set(DJ_ERR_INVALID, t->name ? t->name : "reshape", "cannot reshape %s to %s",
                            dj_shape_string(t->ndim, t->shape, a, sizeof a), dj_shape_string(ndim, shape, b, sizeof b));
    }
    v.data = t->data;
    v.owns_data = 0;
    v.name = t->name;
    *out = v;
    return DJ_OK;
}

dj_status dj_tensor_expect(const dj_tensor *t, dj_dtype dtype, int ndim, const int64_t *shape, const char *what) {
    int ok = t && t->dtype == dtype && t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        if (shape[i] >= 0 && t->shape[i] != shape[i])
            ok = 0;
    if (ok)
        return DJ_OK;
    char want[128], got[128];
    dj_shape_string(ndim, shape, want, sizeof want);
    if (!t)
        return dj_error_set(DJ_ERR_INVALID, what, "missing tensor, expected %s %s", dj_dtype_name(dtype), want);
    dj_shape_string(t->ndim, t->shape, got, sizeof got);
    return dj_error_set(DJ_ERR_INVALID, what, "expected %s %s (-1: any), got %s %s", dj_dtype_name(dtype), want,
                        dj_dtype_name(t->dtype), got);
}

uint16_t dj_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))
        return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)((u + rounding) >> 16);
}

float dj_bf16_to_f32(uint16_t x) {
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
