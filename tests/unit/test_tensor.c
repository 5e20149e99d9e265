/* test_tensor.c — creating, viewing, reshaping and checking tensors; bf16. */
#include <math.h>
#include <string.h>

#include "dojo/dojo.h"
#include "support/test.h"

static void test_create_is_zeroed_and_aligned(void) {
    dj_tensor t;
    int64_t shape[5] = {2, 3, 4, 5, 6};
    CHECK(dj_tensor_create(DJ_DTYPE_F32, 5, shape, &t) == DJ_OK);
    CHECK_EQ_INT(dj_tensor_numel(&t), 720);
    CHECK_EQ_INT(dj_tensor_nbytes(&t), 2880);
    CHECK(((uintptr_t)t.data & 63) == 0);
    const float *f = t.data;
    for (int i = 0; i < 720; i++)
        CHECK(f[i] == 0.0f);
    dj_tensor_free(&t);
    CHECK(t.data == NULL);
    dj_tensor_free(&t); /* twice is harmless */
}

static void test_bad_shapes_are_refused(void) {
    dj_tensor t;
    int64_t neg[2] = {3, -1};
    CHECK(dj_tensor_create(DJ_DTYPE_F32, 2, neg, &t) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "negative size in shape (3,-1)");
    int64_t huge[3] = {1 << 30, 1 << 30, 1 << 30};
    CHECK(dj_tensor_create(DJ_DTYPE_F32, 3, huge, &t) == DJ_ERR_RANGE);
    int64_t six[6] = {1, 1, 1, 1, 1, 1};
    CHECK(dj_tensor_create(DJ_DTYPE_F32, 6, six, &t) == DJ_ERR_INVALID);
    CHECK(dj_tensor_create((dj_dtype)99, 1, six, &t) == DJ_ERR_INVALID);
}

static void test_zero_dim_and_empty(void) {
    dj_tensor t;
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 0, NULL, &t) == DJ_OK);
    CHECK_EQ_INT(dj_tensor_numel(&t), 1);
    dj_tensor_free(&t);
    int64_t empty[2] = {0, 5};
    CHECK(dj_tensor_create(DJ_DTYPE_F32, 2, empty, &t) == DJ_OK);
    CHECK_EQ_INT(dj_tensor_numel(&t), 0);
    dj_tensor_free(&t);
}

static void test_reshape_and_expect(void) {
    dj_tensor t, v;
    int64_t s[2] = {6, 4};
    CHECK(dj_tensor_create(DJ_DTYPE_F32, 2, s, &t) == DJ_OK);
    t.name = "x";
    int64_t s3[3] = {2, 3, 4};
    CHECK(dj_tensor_reshape(&t, 3, s3, &v) == DJ_OK);
    CHECK(v.data == t.data && !v.owns_data);
    int64_t bad[2] = {5, 5};
    CHECK(dj_tensor_reshape(&t, 2, bad, &v) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "cannot reshape (6,4) to (5,5) (x)");
    int64_t want[2] = {-1, 4};
    CHECK(dj_tensor_expect(&t, DJ_DTYPE_F32, 2, want, "conv3d input") == DJ_OK);
    int64_t want2[2] = {6, 5};
    CHECK(dj_tensor_expect(&t, DJ_DTYPE_F32, 2, want2, "conv3d input") == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "expected float32 (6,5) (-1: any), got float32 (6,4) (conv3d input)");
    CHECK(dj_tensor_expect(&t, DJ_DTYPE_BF16, 2, want, "w") == DJ_ERR_INVALID);
    CHECK(dj_tensor_expect(NULL, DJ_DTYPE_F32, 2, want, "w") == DJ_ERR_INVALID);
    dj_tensor_free(&t);
}

static void test_bf16_round_trip(void) {
    /* exactly representable values survive; others round to nearest even */
    float exact[] = {0.0f, -0.0f, 1.0f, -2.5f, 65536.0f, 1.0f / 128};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        CHECK(dj_bf16_to_f32(dj_f32_to_bf16(exact[i])) == exact[i]);
    /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even -> 1 */
    CHECK(dj_bf16_to_f32(dj_f32_to_bf16(1.0f + 1.0f / 256)) == 1.0f);
    /* 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: -> 1 + 2^-6 */
    CHECK(dj_bf16_to_f32(dj_f32_to_bf16(1.0f + 3.0f / 256)) == 1.0f + 1.0f / 64);
    CHECK(isinf(dj_bf16_to_f32(dj_f32_to_bf16(INFINITY))));
    CHECK(isnan(dj_bf16_to_f32(dj_f32_to_bf16(NAN))));
    /* relative error of a rounding is at most half an ulp: 2^-8 */
    for (float x = -3.0f; x < 3.0f; x += 0.0137f)
        CHECK(fabsf(dj_bf16_to_f32(dj_f32_to_bf16(x)) - x) <= fabsf(x) * (1.0f / 256) + 1e-30f);
}

static void test_names(void) {
    CHECK(strcmp(dj_dtype_name(DJ_DTYPE_BF16), "bfloat16") == 0);
    CHECK_EQ_INT(dj_dtype_size(DJ_DTYPE_I64), 8);
    char buf[8];
    int64_t s[3] = {1000, 1000, 1000};
    dj_shape_string(3, s, buf, sizeof buf); /* truncates safely */
    CHECK(strlen(buf) < sizeof buf);
}

int main(void) {
    DJ_RUN(test_create_is_zeroed_and_aligned);
    DJ_RUN(test_bad_shapes_are_refused);
    DJ_RUN(test_zero_dim_and_empty);
    DJ_RUN(test_reshape_and_expect);
    DJ_RUN(test_bf16_round_trip);
    DJ_RUN(test_names);
    return dj_test_finish();
}
