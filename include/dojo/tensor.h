/* dojo/tensor.h — dense tensors of up to 5 dimensions.
 *
 * A tensor is a small transparent struct (shape + data pointer), always
 * contiguous in row-major order: for video activations the layout is
 * N·C·T·H·W, for tokens (B, L, D). A tensor either owns its data (created by
 * dj_tensor_create, freed by dj_tensor_free) or views memory owned by
 * someone else, usually the model's arena (dj_tensor_view). Operators never
 * allocate: they read and write the data of tensors handed to them. */
#ifndef DOJO_TENSOR_H
#define DOJO_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { DJ_MAX_DIMS = 5 };

typedef enum dj_dtype {
    DJ_DTYPE_F32 = 0,
    DJ_DTYPE_BF16 = 1, /* stored as uint16_t: the high half of a float32 */
    DJ_DTYPE_F64 = 2,  /* references and gradient checks */
    DJ_DTYPE_U8 = 3,   /* decoded pixels */
    DJ_DTYPE_I64 = 4,  /* labels */
    DJ_DTYPE_I32 = 5,
} dj_dtype;

typedef struct dj_tensor {
    dj_dtype dtype;
    int ndim;                   /* 0..5; unused dims of shape[] are 1 */
    int64_t shape[DJ_MAX_DIMS]; /* e.g. {N, C, T, H, W} */
    void *data;
    int owns_data;              /* 1 when dj_tensor_free releases data */
    const char *name;           /* for messages; may be NULL; not owned */
} dj_tensor;

size_t dj_dtype_size(dj_dtype dtype);
const char *dj_dtype_name(dj_dtype dtype);

/* Number of elements (product of the shape; 1 for ndim 0). */
int64_t dj_tensor_numel(const dj_tensor *t);
size_t dj_tensor_nbytes(const dj_tensor *t);

/* Allocates a zero-filled tensor (64-byte aligned). Fails on a negative or
 * overflowing shape. */
dj_status dj_tensor_create(dj_dtype dtype, int ndim, const int64_t *shape, dj_tensor *out);
/* Describes memory owned elsewhere; data must hold nbytes. data may be NULL
 * for a shape-only descriptor (operators' shape inference). */
dj_status dj_tensor_view(dj_dtype dtype, int ndim, const int64_t *shape, void *data, dj_tensor *out);
/* Frees owned data and clears the struct; safe on a zeroed or view tensor. */
void dj_tensor_free(dj_tensor *t);

/* Same data, new shape of the same number of elements (a view). */
dj_status dj_tensor_reshape(const dj_tensor *t, int ndim, const int64_t *shape, dj_tensor *out);

/* Checks that t has dtype and the given shape (-1 in shape: any size);
 * returns DJ_ERR_INVALID naming `what` and both shapes otherwise. */
dj_status dj_tensor_expect(const dj_tensor *t, dj_dtype dtype, int ndim, const int64_t *shape, const char *what);

/* "(8,3,8,112,112)" into buf; returns buf. */
char *dj_shape_string(int ndim, const int64_t *shape, char *buf, size_t size);

/* bfloat16 conversion, round-to-nearest-even (NaN stays NaN). */
uint16_t dj_f32_to_bf16(float x);
float dj_bf16_to_f32(uint16_t x);

#ifdef __cplusplus
}
#endif
#endif
