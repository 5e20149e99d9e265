/* test_cuda_ops.c — every CUDA operator against the CPU reference on random
 * shapes (odd sizes), float32 and, where the operator takes it, bfloat16;
 * and the device arena and pinned ring moving real data. Needs a GPU: SKIPs
 * with "no CUDA device: <reason>" (or "built without CUDA") otherwise.
 *
 * The CPU side is the CPU backend's float32 operators (themselves checked
 * against the double-precision references by the CPU tests); dj_sgemm_ref
 * for GEMM. Tolerances (documented in dojo/ops_cuda.h): element-wise
 * float32 rtol 1e-5; reductions rtol 1e-4 / atol 1e-5; bf16 rtol 2e-2 /
 * atol 1e-2, the CPU running on the same bf16-rounded inputs in float32. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/device.h"
#include "dojo/gemm.h"
#include "dojo/ops_cuda.h"
#include "dojo/rng.h"
#include "support/test.h"

#ifdef DJ_HAVE_CUDA

static dj_device *g_dev;
static char g_why[512];
/* The CPU side: the float32 operators of the CPU backend (each checked
 * against its double-precision reference by the CPU tests), one thread. */
static dj_exec g_ex;

#define NEED_GPU()          \
    do {                    \
        if (!g_dev)         \
            SKIP(g_why);    \
    } while (0)

/* A host float32 tensor and its device copy (f32 or bf16; for bf16 the host
 * values are rounded to bf16 first, so both sides see the same inputs). */
typedef struct pair {
    dj_tensor h, d;
} pair;

static void pair_make(pair *p, dj_dtype dt, int ndim, const int64_t *shape, uint64_t seed, float scale) {
    memset(p, 0, sizeof *p);
    CHECK_EQ_INT(dj_tensor_create(DJ_DTYPE_F32, ndim, shape, &p->h), DJ_OK);
    dj_rng r;
    dj_rng_seed(&r, seed, 0);
    float *x = p->h.data;
    int64_t n = dj_tensor_numel(&p->h);
    for (int64_t i = 0; i < n; i++) {
        x[i] = (float)(dj_rng_normal(&r) * scale);
        if (dt == DJ_DTYPE_BF16)
            x[i] = dj_bf16_to_f32(dj_f32_to_bf16(x[i]));
    }
    void *dptr = NULL;
    size_t bytes = (size_t)n * dj_dtype_size(dt);
    CHECK_EQ_INT(dj_device_malloc(g_dev, bytes, &dptr), DJ_OK);
    CHECK_EQ_INT(dj_tensor_view(dt, ndim, shape, dptr, &p->d), DJ_OK);
    if (dt == DJ_DTYPE_BF16) {
        uint16_t *tmp = malloc(bytes ? bytes : 1);
        for (int64_t i = 0; i < n; i++)
            tmp[i] = dj_f32_to_bf16(x[i]);
        CHECK_EQ_INT(dj_device_upload(g_dev, dptr, tmp, bytes), DJ_OK);
        free(tmp);
    } else {
        CHECK_EQ_INT(dj_device_upload(g_dev, dptr, x, bytes), DJ_OK);
    }
}

static void pair_free(pair *p) {
    dj_tensor_free(&p->h);
    dj_device_mfree(g_dev, p->d.data);
}

/* Labels on both sides. */
static void labels_make(pair *p, int64_t N, int64_t K, uint64_t seed) {
    memset(p, 0, sizeof *p);
    int64_t s[1] = {N};
    CHECK_EQ_INT(dj_tensor_create(DJ_DTYPE_I64, 1, s, &p->h), DJ_OK);
    dj_rng r;
    dj_rng_seed(&r, seed, 1);
    int64_t *l = p->h.data;
    for (int64_t i = 0; i < N; i++)
        l[i] = (int64_t)(dj_rng_double(&r) * (double)K) % K;
    void *dptr = NULL;
    CHECK_EQ_INT(dj_device_malloc(g_dev, (size_t)N * 8, &dptr), DJ_OK);
    CHECK_EQ_INT(dj_tensor_view(DJ_DTYPE_I64, 1, s, dptr, &p->d), DJ_OK);
    CHECK_EQ_INT(dj_device_upload(g_dev, dptr, l, (size_t)N * 8), DJ_OK);
}

/* Compares the device tensor (f32 or bf16) with a host float32 reference. */
static void expect_close(const dj_tensor *dev, const dj_tensor *ref, double rtol, double atol, const char *what) {
    CHECK_EQ_INT(dj_device_sync(g_dev), DJ_OK);
    int64_t n = dj_tensor_numel(ref);
    CHECK(dj_tensor_numel(dev) == n);
    size_t es = dj_dtype_size(dev->dtype);
    void *buf = malloc((size_t)n * es + 1);
    CHECK_EQ_INT(dj_device_download(g_dev, buf, dev->data, (size_t)n * es), DJ_OK);
    const float *r = ref->data;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        double g = dev->dtype == DJ_DTYPE_BF16 ? dj_bf16_to_f32(((uint16_t *)buf)[i]) : ((float *)buf)[i];
        int ok = fabs(g - r[i]) <= atol + rtol * fabs((double)r[i]) || (isnan(g) && isnan(r[i]));
        if (!ok && first < 0)
            first = i;
        bad += !ok;
    }
    if (bad) {
        double g = dev->dtype == DJ_DTYPE_BF16 ? dj_bf16_to_f32(((uint16_t *)buf)[first]) : ((float *)buf)[first];
        CHECK_MSG(0, "%s: %lld of %lld differ; first [%lld] gpu %.9g cpu %.9g", what, (long long)bad, (long long)n,
                  (long long)first, g, r[first]);
    }
    free(buf);
}


/* ---- point-wise ---- */
static void check_acts(dj_dtype dt) {
    int64_t shape[4] = {3, 5, 7, 11};
    double rtol = dt == DJ_DTYPE_BF16 ? 2e-2 : 1e-5, atol = dt == DJ_DTYPE_BF16 ? 1e-2 : 1e-6;
    for (int act = DJ_ACT_NONE; act <= DJ_ACT_SIGMOID; act++) {
        pair x, y, dy, dx;
        pair_make(&x, dt, 4, shape, 10 + act, 2.f);
        pair_make(&y, dt, 4, shape, 20, 1.f);
        pair_make(&dy, dt, 4, shape, 30 + act, 1.f);
        pair_make(&dx, dt, 4, shape, 40 + act, 1.f); /* accumulates into existing values */
        CHECK_EQ_INT(dj_cuda_act_forward(g_dev, act, &x.d, &y.d), DJ_OK);
        CHECK_EQ_INT(dj_act_forward(&g_ex, act, &x.h, &y.h), DJ_OK);
        expect_close(&y.d, &y.h, rtol, atol, dj_act_name(act));
        CHECK_EQ_INT(dj_cuda_act_backward(g_dev, act, &x.d, &dy.d, &dx.d), DJ_OK);
        CHECK_EQ_INT(dj_act_backward(&g_ex, act, &x.h, &dy.h, &dx.h), DJ_OK);
        expect_close(&dx.d, &dx.h, rtol, atol * 10, dj_act_name(act));
        pair_free(&x), pair_free(&y), pair_free(&dy), pair_free(&dx);
    }
}

static void test_act_f32(void) {
    NEED_GPU();
    check_acts(DJ_DTYPE_F32);
}

static void test_act_bf16(void) {
    NEED_GPU();
    check_acts(DJ_DTYPE_BF16);
}

static void test_add_mul(void) {
    NEED_GPU();
    int64_t s[3] = {4, 9, 13};
    for (int mul = 0; mul <= 1; mul++) {
        pair a, b, o, g, da, db;
        pair_make(&a, DJ_DTYPE_F32, 3, s, 1, 1.f);
        pair_make(&b, DJ_DTYPE_F32, 3, s, 2, 1.f);
        pair_make(&o, DJ_DTYPE_F32, 3, s, 3, 1.f);
        pair_make(&g, DJ_DTYPE_F32, 3, s, 4, 1.f);
        pair_make(&da, DJ_DTYPE_F32, 3, s, 5, 1.f);
        pair_make(&db, DJ_DTYPE_F32, 3, s, 6, 1.f);
        CHECK_EQ_INT((mul ? dj_cuda_mul_forward : dj_cuda_add_forward)(g_dev, &a.d, &b.d, &o.d), DJ_OK);
        CHECK_EQ_INT((mul ? dj_mul_forward : dj_add_forward)(&g_ex, &a.h, &b.h, &o.h), DJ_OK);
        expect_close(&o.d, &o.h, 1e-6, 1e-7, mul ? "mul" : "add");
        CHECK_EQ_INT((mul ? dj_cuda_mul_backward : dj_cuda_add_backward)(g_dev, &a.d, &b.d, &g.d, &da.d, &db.d), DJ_OK);
        CHECK_EQ_INT((mul ? dj_mul_backward : dj_add_backward)(&g_ex, &a.h, &b.h, &g.h, &da.h, &db.h), DJ_OK);
        expect_close(&da.d, &da.h, 1e-6, 1e-6, "da");
        expect_close(&db.d, &db.h, 1e-6, 1e-6, "db");
        pair_free(&a), pair_free(&b), pair_free(&o), pair_free(&g), pair_free(&da), pair_free(&db);
    }
    /* broadcasting is refused with a clear error, not computed wrongly */
    int64_t s2[3] = {4, 1, 13};
    pair a, b;
    pair_make(&a, DJ_DTYPE_F32, 3, s, 1, 1.f);
    pair_make(&b, DJ_DTYPE_F32, 3, s2, 2, 1.f);
    CHECK_EQ_INT(dj_cuda_add_forward(g_dev, &a.d, &b.d, &a.d), DJ_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(dj_error_message(), "broadcasting");
    pair_free(&a), pair_free(&b);
}

static void check_bias_act(dj_dtype dt, dj_act act) {
    int64_t s[5] = {2, 6, 3, 5, 7}, c[1] = {6};
    double rtol = dt == DJ_DTYPE_BF16 ? 2e-2 : 1e-4, atol = dt == DJ_DTYPE_BF16 ? 2e-2 : 1e-5;
    pair x, bias, y, dy, dx, db;
    pair_make(&x, dt, 5, s, 1, 1.f);
    pair_make(&bias, DJ_DTYPE_F32, 1, c, 2, 1.f);
    pair_make(&y, dt, 5, s, 3, 1.f);
    pair_make(&dy, dt, 5, s, 4, 1.f);
    pair_make(&dx, dt, 5, s, 5, 1.f);
    pair_make(&db, DJ_DTYPE_F32, 1, c, 6, 1.f);
    CHECK_EQ_INT(dj_cuda_bias_act_forward(g_dev, act, &x.d, &bias.d, &y.d), DJ_OK);
    CHECK_EQ_INT(dj_bias_act_forward(&g_ex, act, &x.h, &bias.h, &y.h), DJ_OK);
    expect_close(&y.d, &y.h, rtol, atol, "bias_act y");
    CHECK_EQ_INT(dj_cuda_bias_act_backward(g_dev, act, &x.d, &bias.d, &dy.d, &dx.d, &db.d), DJ_OK);
    CHECK_EQ_INT(dj_bias_act_backward(&g_ex, act, &x.h, &bias.h, &dy.h, &dx.h, &db.h), DJ_OK);
    expect_close(&dx.d, &dx.h, rtol, atol, "bias_act dx");
    expect_close(&db.d, &db.h, 1e-4, dt == DJ_DTYPE_BF16 ? 0.2 : 1e-4, "bias_act dbias");
    pair_free(&x), pair_free(&bias), pair_free(&y), pair_free(&dy), pair_free(&dx), pair_free(&db);
}

static void test_bias_act(void) {
    NEED_GPU();
    check_bias_act(DJ_DTYPE_F32, DJ_ACT_RELU);
    check_bias_act(DJ_DTYPE_F32, DJ_ACT_GELU);
    check_bias_act(DJ_DTYPE_BF16, DJ_ACT_SILU);
}

static void test_add_relu(void) {
    NEED_GPU();
    int64_t s[5] = {2, 3, 4, 5, 6};
    pair x, r, y, dy, dx, dr;
    pair_make(&x, DJ_DTYPE_F32, 5, s, 1, 1.f);
    pair_make(&r, DJ_DTYPE_F32, 5, s, 2, 1.f);
    pair_make(&y, DJ_DTYPE_F32, 5, s, 3, 1.f);
    pair_make(&dy, DJ_DTYPE_F32, 5, s, 4, 1.f);
    pair_make(&dx, DJ_DTYPE_F32, 5, s, 5, 1.f);
    pair_make(&dr, DJ_DTYPE_F32, 5, s, 6, 1.f);
    CHECK_EQ_INT(dj_cuda_add_relu_forward(g_dev, &x.d, &r.d, &y.d), DJ_OK);
    CHECK_EQ_INT(dj_add_relu_forward(&g_ex, &x.h, &r.h, &y.h), DJ_OK);
    expect_close(&y.d, &y.h, 1e-6, 1e-7, "add_relu y");
    CHECK_EQ_INT(dj_cuda_add_relu_backward(g_dev, &y.d, &dy.d, &dx.d, &dr.d), DJ_OK);
    CHECK_EQ_INT(dj_add_relu_backward(&g_ex, &y.h, &dy.h, &dx.h, &dr.h), DJ_OK);
    expect_close(&dx.d, &dx.h, 1e-6, 1e-7, "add_relu dx");
    expect_close(&dr.d, &dr.h, 1e-6, 1e-7, "add_relu dres");
    pair_free(&x), pair_free(&r), pair_free(&y), pair_free(&dy), pair_free(&dx), pair_free(&dr);
}

static void test_convert(void) {
    NEED_GPU();
    int64_t s[2] = {37, 29};
    pair x, y;
    pair_make(&x, DJ_DTYPE_F32, 2, s, 1, 3.f);
    pair_make(&y, DJ_DTYPE_BF16, 2, s, 2, 1.f);
    CHECK_EQ_INT(dj_cuda_convert(g_dev, &x.d, &y.d), DJ_OK);
    float *h = x.h.data;
    for (int64_t i = 0; i < dj_tensor_numel(&x.h); i++)
        h[i] = dj_bf16_to_f32(dj_f32_to_bf16(h[i])); /* the CPU's rounding, exactly */
    expect_close(&y.d, &x.h, 0, 0, "f32 -> bf16");
    pair_free(&x), pair_free(&y);
}

/* ---- softmax and cross-entropy ---- */
static void test_softmax(void) {
    NEED_GPU();
    int64_t shapes[2][3] = {{7, 1000, 1}, {3, 5, 33}};
    for (int k = 0; k < 2; k++)
        for (int log = 0; log <= 1; log++) {
            int nd = k == 0 ? 2 : 3;
            pair x, y, dy, dx;
            pair_make(&x, DJ_DTYPE_F32, nd, shapes[k], 1, 3.f);
            pair_make(&y, DJ_DTYPE_F32, nd, shapes[k], 2, 1.f);
            pair_make(&dy, DJ_DTYPE_F32, nd, shapes[k], 3, 1.f);
            pair_make(&dx, DJ_DTYPE_F32, nd, shapes[k], 4, 1.f);
            CHECK_EQ_INT(dj_cuda_softmax_forward(g_dev, log, &x.d, &y.d), DJ_OK);
            CHECK_EQ_INT((log ? dj_log_softmax_forward : dj_softmax_forward)(&g_ex, &x.h, &y.h), DJ_OK);
            expect_close(&y.d, &y.h, 1e-4, 1e-6, "softmax y");
            CHECK_EQ_INT(dj_cuda_softmax_backward(g_dev, log, &y.d, &dy.d, &dx.d), DJ_OK);
            CHECK_EQ_INT((log ? dj_log_softmax_backward : dj_softmax_backward)(&g_ex, &y.h, &dy.h, &dx.h), DJ_OK);
            expect_close(&dx.d, &dx.h, 1e-4, 1e-5, "softmax dx");
            pair_free(&x), pair_free(&y), pair_free(&dy), pair_free(&dx);
        }
}

static void test_cross_entropy(void) {
    NEED_GPU();
    int64_t s[2] = {9, 401};
    dj_cross_entropy_params p = {0.1f};
    pair x, lab, dx;
    pair_make(&x, DJ_DTYPE_F32, 2, s, 1, 2.f);
    pair_make(&dx, DJ_DTYPE_F32, 2, s, 2, 1.f);
    labels_make(&lab, 9, 401, 3);
    float loss = 0;
    float ref = 0;
    CHECK_EQ_INT(dj_cuda_cross_entropy_forward(g_dev, &p, &x.d, &lab.d, &loss), DJ_OK);
    CHECK_EQ_INT(dj_cross_entropy_forward(&g_ex, &p, &x.h, &lab.h, &ref), DJ_OK);
    CHECK_CLOSE(loss, ref, 1e-5, 1e-6);
    CHECK_EQ_INT(dj_cuda_cross_entropy_backward(g_dev, &p, &x.d, &lab.d, 0.5f, &dx.d), DJ_OK);
    CHECK_EQ_INT(dj_cross_entropy_backward(&g_ex, &p, &x.h, &lab.h, 0.5f, &dx.h), DJ_OK);
    expect_close(&dx.d, &dx.h, 1e-4, 1e-6, "cross-entropy dlogits");
    /* a label out of range names the row */
    int64_t badl = 401;
    CHECK_EQ_INT(dj_device_upload(g_dev, (int64_t *)lab.d.data + 4, &badl, 8), DJ_OK);
    CHECK_EQ_INT(dj_cuda_cross_entropy_forward(g_dev, &p, &x.d, &lab.d, &loss), DJ_ERR_RANGE);
    CHECK_STR_CONTAINS(dj_error_message(), "row 4");
    pair_free(&x), pair_free(&dx), pair_free(&lab);
}

/* ---- normalisation ---- */
static void check_batchnorm(int training) {
    int64_t s[5] = {3, 5, 2, 7, 9}, c[1] = {5};
    dj_batchnorm_params p = dj_batchnorm_defaults();
    p.training = training;
    pair x, w, b, rm, rv, y, sm, si, dy, dx, dw, db;
    pair_make(&x, DJ_DTYPE_F32, 5, s, 1, 2.f);
    pair_make(&w, DJ_DTYPE_F32, 1, c, 2, 1.f);
    pair_make(&b, DJ_DTYPE_F32, 1, c, 3, 1.f);
    pair_make(&rm, DJ_DTYPE_F32, 1, c, 4, 0.1f);
    pair_make(&rv, DJ_DTYPE_F32, 1, c, 5, 0.1f);
    float *v = rv.h.data; /* positive running variances on both sides */
    for (int i = 0; i < 5; i++)
        v[i] = 0.5f + (float)i;
    CHECK_EQ_INT(dj_device_upload(g_dev, rv.d.data, v, 5 * sizeof(float)), DJ_OK);
    pair_make(&y, DJ_DTYPE_F32, 5, s, 6, 1.f);
    pair_make(&sm, DJ_DTYPE_F32, 1, c, 7, 1.f);
    pair_make(&si, DJ_DTYPE_F32, 1, c, 8, 1.f);
    pair_make(&dy, DJ_DTYPE_F32, 5, s, 9, 1.f);
    pair_make(&dx, DJ_DTYPE_F32, 5, s, 10, 1.f);
    pair_make(&dw, DJ_DTYPE_F32, 1, c, 11, 1.f);
    pair_make(&db, DJ_DTYPE_F32, 1, c, 12, 1.f);
    CHECK_EQ_INT(dj_cuda_batchnorm_forward(g_dev, &p, &x.d, &w.d, &b.d, &rm.d, &rv.d, &y.d, &sm.d, &si.d), DJ_OK);
    CHECK_EQ_INT(dj_batchnorm_forward(&g_ex, &p, &x.h, &w.h, &b.h, &rm.h, &rv.h, &y.h, &sm.h, &si.h), DJ_OK);
    expect_close(&y.d, &y.h, 1e-4, 1e-5, "batchnorm y");
    expect_close(&sm.d, &sm.h, 1e-4, 1e-6, "batchnorm save_mean");
    expect_close(&si.d, &si.h, 1e-4, 1e-6, "batchnorm save_invstd");
    expect_close(&rm.d, &rm.h, 1e-5, 1e-6, "batchnorm running_mean");
    expect_close(&rv.d, &rv.h, 1e-5, 1e-6, "batchnorm running_var");
    CHECK_EQ_INT(dj_cuda_batchnorm_backward(g_dev, &p, &x.d, &w.d, &sm.d, &si.d, &dy.d, &dx.d, &dw.d, &db.d), DJ_OK);
    CHECK_EQ_INT(dj_batchnorm_backward(&g_ex, &p, &x.h, &w.h, &sm.h, &si.h, &dy.h, &dx.h, &dw.h, &db.h), DJ_OK);
    expect_close(&dx.d, &dx.h, 1e-4, 1e-5, "batchnorm dx");
    expect_close(&dw.d, &dw.h, 1e-4, 1e-4, "batchnorm dweight");
    expect_close(&db.d, &db.h, 1e-4, 1e-4, "batchnorm dbias");
    pair *all[] = {&x, &w, &b, &rm, &rv, &y, &sm, &si, &dy, &dx, &dw, &db};
    for (int i = 0; i < 12; i++)
        pair_free(all[i]);
}

static void test_batchnorm(void) {
    NEED_GPU();
    check_batchnorm(1);
    check_batchnorm(0);
}

static void test_layernorm(void) {
    NEED_GPU();
    int64_t s[3] = {4, 7, 96};
    pair x, w, b, y, sm, si, dy, dx, dw, db;
    int64_t d1[1] = {96}, r1[1] = {28};
    pair_make(&x, DJ_DTYPE_F32, 3, s, 1, 2.f);
    pair_make(&w, DJ_DTYPE_F32, 1, d1, 2, 1.f);
    pair_make(&b, DJ_DTYPE_F32, 1, d1, 3, 1.f);
    pair_make(&y, DJ_DTYPE_F32, 3, s, 4, 1.f);
    pair_make(&sm, DJ_DTYPE_F32, 1, r1, 5, 1.f);
    pair_make(&si, DJ_DTYPE_F32, 1, r1, 6, 1.f);
    pair_make(&dy, DJ_DTYPE_F32, 3, s, 7, 1.f);
    pair_make(&dx, DJ_DTYPE_F32, 3, s, 8, 1.f);
    pair_make(&dw, DJ_DTYPE_F32, 1, d1, 9, 1.f);
    pair_make(&db, DJ_DTYPE_F32, 1, d1, 10, 1.f);
    CHECK_EQ_INT(dj_cuda_layernorm_forward(g_dev, 1, 1e-5f, &x.d, &w.d, &b.d, &y.d, &sm.d, &si.d), DJ_OK);
    CHECK_EQ_INT(dj_layernorm_forward(&g_ex, 1, 1e-5f, &x.h, &w.h, &b.h, &y.h, &sm.h, &si.h), DJ_OK);
    expect_close(&y.d, &y.h, 1e-4, 1e-5, "layernorm y");
    CHECK_EQ_INT(dj_cuda_layernorm_backward(g_dev, 1, &x.d, &w.d, &sm.d, &si.d, &dy.d, &dx.d, &dw.d, &db.d), DJ_OK);
    CHECK_EQ_INT(dj_layernorm_backward(&g_ex, 1, &x.h, &w.h, &sm.h, &si.h, &dy.h, &dx.h, &dw.h, &db.h), DJ_OK);
    expect_close(&dx.d, &dx.h, 1e-4, 1e-5, "layernorm dx");
    expect_close(&dw.d, &dw.h, 1e-4, 1e-4, "layernorm dweight");
    expect_close(&db.d, &db.h, 1e-4, 1e-4, "layernorm dbias");
    pair *all[] = {&x, &w, &b, &y, &sm, &si, &dy, &dx, &dw, &db};
    for (int i = 0; i < 10; i++)
        pair_free(all[i]);
}

/* ---- pooling ---- */
static void check_pool(const dj_pool3d_params *p, int maxpool) {
    int64_t s[5] = {2, 3, 5, 9, 11}, o[5];
    CHECK_EQ_INT(dj_pool3d_output_shape(p, s, o), DJ_OK);
    pair x, y, dy, dx;
    pair_make(&x, DJ_DTYPE_F32, 5, s, 1, 1.f);
    pair_make(&y, DJ_DTYPE_F32, 5, o, 2, 1.f);
    pair_make(&dy, DJ_DTYPE_F32, 5, o, 3, 1.f);
    pair_make(&dx, DJ_DTYPE_F32, 5, s, 4, 1.f);
    if (maxpool) {
        dj_tensor ih, id;
        void *ip = NULL;
        CHECK_EQ_INT(dj_tensor_create(DJ_DTYPE_I64, 5, o, &ih), DJ_OK);
        CHECK_EQ_INT(dj_device_malloc(g_dev, dj_tensor_nbytes(&ih), &ip), DJ_OK);
        CHECK_EQ_INT(dj_tensor_view(DJ_DTYPE_I64, 5, o, ip, &id), DJ_OK);
        CHECK_EQ_INT(dj_cuda_maxpool3d_forward(g_dev, p, &x.d, &y.d, &id), DJ_OK);
        CHECK_EQ_INT(dj_maxpool3d_forward(&g_ex, p, &x.h, &y.h, &ih), DJ_OK);
        expect_close(&y.d, &y.h, 0, 0, "maxpool y");
        CHECK_EQ_INT(dj_cuda_maxpool3d_backward(g_dev, p, &id, &dy.d, &dx.d), DJ_OK);
        CHECK_EQ_INT(dj_maxpool3d_backward(&g_ex, p, &ih, &dy.h, &dx.h), DJ_OK);
        expect_close(&dx.d, &dx.h, 1e-5, 1e-6, "maxpool dx");
        int64_t bad = 1 << 20;
        CHECK_EQ_INT(dj_device_upload(g_dev, ip, &bad, 8), DJ_OK);
        CHECK_EQ_INT(dj_cuda_maxpool3d_backward(g_dev, p, &id, &dy.d, &dx.d), DJ_ERR_RANGE);
        dj_tensor_free(&ih);
        dj_device_mfree(g_dev, ip);
    } else {
        CHECK_EQ_INT(dj_cuda_avgpool3d_forward(g_dev, p, &x.d, &y.d), DJ_OK);
        CHECK_EQ_INT(dj_avgpool3d_forward(&g_ex, p, &x.h, &y.h), DJ_OK);
        expect_close(&y.d, &y.h, 1e-5, 1e-6, "avgpool y");
        CHECK_EQ_INT(dj_cuda_avgpool3d_backward(g_dev, p, &dy.d, &dx.d), DJ_OK);
        CHECK_EQ_INT(dj_avgpool3d_backward(&g_ex, p, &dy.h, &dx.h), DJ_OK);
        expect_close(&dx.d, &dx.h, 1e-5, 1e-6, "avgpool dx");
    }
    pair_free(&x), pair_free(&y), pair_free(&dy), pair_free(&dx);
}

static void test_pooling(void) {
    NEED_GPU();
    dj_pool3d_params a = {{1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0, 0, 0}, 0, 0};
    dj_pool3d_params b = {{3, 3, 2}, {2, 2, 2}, {1, 1, 1}, {1, 2, 1}, 1, 0}; /* dilation, ceil mode */
    check_pool(&a, 1);
    check_pool(&b, 1);
    dj_pool3d_params c = {{2, 3, 3}, {2, 2, 2}, {1, 1, 1}, {0, 0, 0}, 1, 0};
    check_pool(&c, 0);
    c.exclude_pad = 1;
    check_pool(&c, 0);
}

static void test_adaptive_pool(void) {
    NEED_GPU();
    int64_t s[5] = {2, 3, 5, 7, 9}, outs[2][5] = {{2, 3, 1, 1, 1}, {2, 3, 2, 3, 4}};
    for (int k = 0; k < 2; k++) {
        pair x, y, dy, dx;
        pair_make(&x, DJ_DTYPE_F32, 5, s, 1, 1.f);
        pair_make(&y, DJ_DTYPE_F32, 5, outs[k], 2, 1.f);
        pair_make(&dy, DJ_DTYPE_F32, 5, outs[k], 3, 1.f);
        pair_make(&dx, DJ_DTYPE_F32, 5, s, 4, 1.f);
        CHECK_EQ_INT(dj_cuda_adaptive_avgpool3d_forward(g_dev, &x.d, &y.d), DJ_OK);
        CHECK_EQ_INT(dj_adaptive_avgpool3d_forward(&g_ex, &x.h, &y.h), DJ_OK);
        expect_close(&y.d, &y.h, 1e-5, 1e-6, "adaptive y");
        CHECK_EQ_INT(dj_cuda_adaptive_avgpool3d_backward(g_dev, &dy.d, &dx.d), DJ_OK);
        CHECK_EQ_INT(dj_adaptive_avgpool3d_backward(&g_ex, &dy.h, &dx.h), DJ_OK);
        expect_close(&dx.d, &dx.h, 1e-5, 1e-6, "adaptive dx");
        pair_free(&x), pair_free(&y), pair_free(&dy), pair_free(&dx);
    }
}

/* ---- GEMM, linear ---- */
static void check_gemm(dj_dtype dt, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K) {
    int64_t sa[2] = {ta ? K : M, ta ? M : K}, sb[2] = {tb ? N : K, tb ? K : N}, sc[2] = {M, N};
    pair a, b, c;
    pair_make(&a, dt, 2, sa, 1, 1.f);
    pair_make(&b, dt, 2, sb, 2, 1.f);
    pair_make(&c, DJ_DTYPE_F32, 2, sc, 3, 1.f);
    CHECK_EQ_INT(dj_cuda_gemm(g_dev, ta, tb, M, N, K, 0.5f, dt, a.d.data, sa[1], b.d.data, sb[1], 0.25f, c.d.data, N),
                 DJ_OK);
    CHECK_EQ_INT(dj_sgemm_ref(ta, tb, M, N, K, 0.5f, a.h.data, sa[1], b.h.data, sb[1], 0.25f, c.h.data, N), DJ_OK);
    char what[64];
    snprintf(what, sizeof what, "gemm %s %c%c %lldx%lldx%lld", dj_dtype_name(dt), ta ? 'T' : 'N', tb ? 'T' : 'N',
             (long long)M, (long long)N, (long long)K);
    expect_close(&c.d, &c.h, dt == DJ_DTYPE_BF16 ? 1e-3 : 1e-4, 1e-4, what); /* bf16 inputs exact, f32 sums */
    pair_free(&a), pair_free(&b), pair_free(&c);
}

static void test_gemm(void) {
    NEED_GPU();
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++) {
            check_gemm(DJ_DTYPE_F32, ta, tb, 37, 53, 71);
            check_gemm(DJ_DTYPE_BF16, ta, tb, 64, 40, 96);
        }
    check_gemm(DJ_DTYPE_F32, DJ_NO_TRANS, DJ_NO_TRANS, 1, 1, 1);
    check_gemm(DJ_DTYPE_F32, DJ_NO_TRANS, DJ_TRANS, 513, 257, 129);
}

static void test_linear(void) {
    NEED_GPU();
    int64_t si[3] = {3, 5, 24}, sw[2] = {17, 24}, sb[1] = {17}, so[3] = {3, 5, 17};
    pair x, w, b, y, dy, dx, dw, db;
    pair_make(&x, DJ_DTYPE_F32, 3, si, 1, 1.f);
    pair_make(&w, DJ_DTYPE_F32, 2, sw, 2, 0.3f);
    pair_make(&b, DJ_DTYPE_F32, 1, sb, 3, 1.f);
    pair_make(&y, DJ_DTYPE_F32, 3, so, 4, 1.f);
    pair_make(&dy, DJ_DTYPE_F32, 3, so, 5, 1.f);
    pair_make(&dx, DJ_DTYPE_F32, 3, si, 6, 1.f);
    pair_make(&dw, DJ_DTYPE_F32, 2, sw, 7, 1.f);
    pair_make(&db, DJ_DTYPE_F32, 1, sb, 8, 1.f);
    CHECK_EQ_INT(dj_cuda_linear_forward(g_dev, &x.d, &w.d, &b.d, &y.d), DJ_OK);
    CHECK_EQ_INT(dj_linear_forward(&g_ex, &x.h, &w.h, &b.h, &y.h), DJ_OK);
    expect_close(&y.d, &y.h, 1e-4, 1e-5, "linear y");
    CHECK_EQ_INT(dj_cuda_linear_backward(g_dev, &x.d, &w.d, &dy.d, &dx.d, &dw.d, &db.d), DJ_OK);
    CHECK_EQ_INT(dj_linear_backward(&g_ex, &x.h, &w.h, &dy.h, &dx.h, &dw.h, &db.h), DJ_OK);
    expect_close(&dx.d, &dx.h, 1e-4, 1e-5, "linear dx");
    expect_close(&dw.d, &dw.h, 1e-4, 1e-5, "linear dweight");
    expect_close(&db.d, &db.h, 1e-4, 1e-5, "linear dbias");
    pair *all[] = {&x, &w, &b, &y, &dy, &dx, &dw, &db};
    for (int i = 0; i < 8; i++)
        pair_free(all[i]);
}

/* ---- conv3d ---- */
static void check_conv(dj_dtype dt, const dj_conv3d_params *p, const int64_t *si, const int64_t *sw) {
    int64_t so[5], sb[1] = {sw[0]};
    CHECK_EQ_INT(dj_conv3d_output_shape(p, si, sw, so), DJ_OK);
    double rtol = dt == DJ_DTYPE_BF16 ? 2e-2 : 1e-4, atol = dt == DJ_DTYPE_BF16 ? 5e-2 : 1e-4;
    pair x, w, b, y, dy, dx, dw, db;
    pair_make(&x, dt, 5, si, 1, 1.f);
    pair_make(&w, dt, 5, sw, 2, 0.2f);
    pair_make(&b, DJ_DTYPE_F32, 1, sb, 3, 1.f);
    pair_make(&y, dt, 5, so, 4, 1.f);
    pair_make(&dy, dt, 5, so, 5, 1.f);
    pair_make(&dx, dt, 5, si, 6, 1.f);
    pair_make(&dw, dt, 5, sw, 7, 1.f);
    pair_make(&db, DJ_DTYPE_F32, 1, sb, 8, 1.f);
    CHECK_EQ_INT(dj_cuda_conv3d_forward(g_dev, p, &x.d, &w.d, &b.d, &y.d), DJ_OK);
    CHECK_EQ_INT(dj_conv3d_forward(&g_ex, p, &x.h, &w.h, &b.h, &y.h), DJ_OK);
    expect_close(&y.d, &y.h, rtol, atol, "conv3d y");
    CHECK_EQ_INT(dj_cuda_conv3d_backward(g_dev, p, &x.d, &w.d, &dy.d, &dx.d, &dw.d, &db.d), DJ_OK);
    CHECK_EQ_INT(dj_conv3d_backward(&g_ex, p, &x.h, &w.h, &dy.h, &dx.h, &dw.h, &db.h), DJ_OK);
    expect_close(&dx.d, &dx.h, rtol, atol, "conv3d dinp");
    expect_close(&dw.d, &dw.h, rtol, dt == DJ_DTYPE_BF16 ? 0.5 : 1e-3, "conv3d dweight");
    expect_close(&db.d, &db.h, 1e-4, 1e-3, "conv3d dbias");
    pair *all[] = {&x, &w, &b, &y, &dy, &dx, &dw, &db};
    for (int i = 0; i < 8; i++)
        pair_free(all[i]);
}

static void test_conv3d(void) {
    NEED_GPU();
    dj_conv3d_params same = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1, 0};
    dj_conv3d_params strided = {{1, 2, 2}, {0, 1, 1}, {1, 1, 1}, 2, 0};
    int64_t si[5] = {2, 4, 5, 9, 11}, sw[5] = {6, 4, 3, 3, 3}, swg[5] = {6, 2, 1, 3, 3};
    check_conv(DJ_DTYPE_F32, &same, si, sw);
    check_conv(DJ_DTYPE_F32, &strided, si, swg);
    check_conv(DJ_DTYPE_BF16, &same, si, sw);
}

/* ---- optimizers: torch's update rules, written out in double ---- */
static void test_sgd_adamw(void) {
    NEED_GPU();
    int64_t s[1] = {1001};
    pair w, g, m, v;
    pair_make(&w, DJ_DTYPE_F32, 1, s, 1, 1.f);
    pair_make(&g, DJ_DTYPE_F32, 1, s, 2, 1.f);
    pair_make(&m, DJ_DTYPE_F32, 1, s, 3, 0.f);
    pair_make(&v, DJ_DTYPE_F32, 1, s, 4, 0.f);
    float *W = w.h.data, *G = g.h.data, *M = m.h.data, *V = v.h.data;
    for (int step = 1; step <= 3; step++) {
        dj_cuda_sgd_params p = {0.1f, 0.9f, 0.1f, 1e-2f, step == 2, step == 1, 0.5f};
        CHECK_EQ_INT(dj_cuda_sgd_update(g_dev, &p, &w.d, &g.d, &m.d), DJ_OK);
        for (int i = 0; i < 1001; i++) {
            double d = (double)G[i] * p.grad_scale + (double)p.weight_decay * W[i];
            double b = p.first_step ? d : p.momentum * (double)M[i] + (1.0 - p.dampening) * d;
            M[i] = (float)b;
            d = p.nesterov ? d + p.momentum * b : b;
            W[i] = (float)(W[i] - p.lr * d);
        }
    }
    expect_close(&w.d, &w.h, 1e-5, 1e-6, "sgd weights");
    expect_close(&m.d, &m.h, 1e-5, 1e-6, "sgd momentum");
    for (int step = 1; step <= 3; step++) {
        dj_cuda_adamw_params p = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, step, 1.f};
        CHECK_EQ_INT(dj_cuda_adamw_update(g_dev, &p, &w.d, &g.d, &m.d, &v.d), DJ_OK);
        for (int i = 0; i < 1001; i++) {
            double gi = G[i], wi = W[i] * (1.0 - (double)p.lr * p.weight_decay);
            double mi = p.beta1 * (double)M[i] + (1 - p.beta1) * gi, vi = p.beta2 * (double)V[i] + (1 - p.beta2) * gi * gi;
            double bc1 = 1 - pow(p.beta1, step), bc2 = 1 - pow(p.beta2, step);
            M[i] = (float)mi, V[i] = (float)vi;
            W[i] = (float)(wi - (p.lr / bc1) * mi / (sqrt(vi) / sqrt(bc2) + p.eps));
        }
    }
    expect_close(&w.d, &w.h, 1e-5, 1e-6, "adamw weights");
    expect_close(&v.d, &v.h, 1e-5, 1e-9, "adamw exp_avg_sq");
    dj_cuda_adamw_params bad = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 0, 1.f};
    CHECK_EQ_INT(dj_cuda_adamw_update(g_dev, &bad, &w.d, &g.d, &m.d, &v.d), DJ_ERR_INVALID);
    pair_free(&w), pair_free(&g), pair_free(&m), pair_free(&v);
}

/* ---- device arena and pinned ring ---- */
static void test_arena_and_ring(void) {
    NEED_GPU();
    dj_mem_plan plan = {0};
    size_t off[5];
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(dj_mem_plan_add(&plan, 1000 * sizeof(float), "batch", &off[i]), DJ_OK);
    dj_device_arena *arena = NULL;
    CHECK_EQ_INT(dj_device_arena_create(g_dev, plan.total, &arena), DJ_OK);
    void *p = NULL;
    CHECK_EQ_INT(dj_device_arena_at(arena, off[4], 1000 * sizeof(float) + 1, &p), DJ_ERR_RANGE);
    dj_pinned_ring *ring = NULL;
    CHECK_EQ_INT(dj_pinned_ring_create(g_dev, 2, 1000 * sizeof(float), &ring), DJ_OK);
    for (int b = 0; b < 5; b++) {
        void *host = NULL;
        int slot = -1;
        CHECK_EQ_INT(dj_pinned_ring_acquire(ring, &host, &slot), DJ_OK);
        CHECK_EQ_INT(slot, b % 2);
        for (int i = 0; i < 1000; i++)
            ((float *)host)[i] = (float)(b * 1000 + i);
        CHECK_EQ_INT(dj_device_arena_at(arena, off[b], 1000 * sizeof(float), &p), DJ_OK);
        CHECK_EQ_INT(dj_pinned_ring_submit(ring, slot, p, 1000 * sizeof(float)), DJ_OK);
    }
    CHECK_EQ_INT(dj_pinned_ring_submit(ring, 0, p, 1000 * sizeof(float) + 4), DJ_ERR_RANGE);
    CHECK_EQ_INT(dj_device_sync(g_dev), DJ_OK);
    float *back = malloc(5000 * sizeof(float));
    for (int b = 0; b < 5; b++) {
        CHECK_EQ_INT(dj_device_arena_at(arena, off[b], 1000 * sizeof(float), &p), DJ_OK);
        CHECK_EQ_INT(dj_device_download(g_dev, back + b * 1000, p, 1000 * sizeof(float)), DJ_OK);
    }
    int bad = 0;
    for (int i = 0; i < 5000; i++)
        bad += back[i] != (float)i;
    CHECK_EQ_INT(bad, 0);
    free(back);
    dj_pinned_ring_free(ring);
    dj_device_arena_free(arena);
}

/* A captured sequence replays with new inputs copied into place. */
static void test_graph_capture(void) {
    NEED_GPU();
    int64_t s[2] = {33, 65};
    pair x, y, z;
    pair_make(&x, DJ_DTYPE_F32, 2, s, 1, 1.f);
    pair_make(&y, DJ_DTYPE_F32, 2, s, 2, 1.f);
    pair_make(&z, DJ_DTYPE_F32, 2, s, 3, 1.f);
    pair lab;
    labels_make(&lab, 33, 65, 4);
    float *loss2 = NULL;
    CHECK_EQ_INT(dj_device_malloc(g_dev, 2 * sizeof(float), (void **)&loss2), DJ_OK);
    dj_cross_entropy_params cp = {0.f};
    dj_step_graph *graph = NULL;
    CHECK_EQ_INT(dj_device_capture_begin(g_dev), DJ_OK);
    CHECK_EQ_INT(dj_cuda_act_forward(g_dev, DJ_ACT_GELU, &x.d, &y.d), DJ_OK);
    CHECK_EQ_INT(dj_cuda_add_forward(g_dev, &x.d, &y.d, &z.d), DJ_OK);
    CHECK_EQ_INT(dj_cuda_cross_entropy_forward_async(g_dev, &cp, &z.d, &lab.d, loss2), DJ_OK);
    CHECK_EQ_INT(dj_device_capture_end(g_dev, &graph), DJ_OK);
    for (int round = 0; round < 3; round++) {
        float *hx = x.h.data;
        for (int64_t i = 0; i < 33 * 65; i++)
            hx[i] = (float)((i * 7 + round * 13) % 29) / 7.f - 2.f;
        CHECK_EQ_INT(dj_device_upload(g_dev, x.d.data, hx, dj_tensor_nbytes(&x.h)), DJ_OK);
        CHECK_EQ_INT(dj_step_graph_launch(graph), DJ_OK);
        CHECK_EQ_INT(dj_act_forward(&g_ex, DJ_ACT_GELU, &x.h, &y.h), DJ_OK);
        CHECK_EQ_INT(dj_add_forward(&g_ex, &x.h, &y.h, &z.h), DJ_OK);
        expect_close(&z.d, &z.h, 1e-5, 1e-6, "replayed graph");
        float ref = 0, got[2];
        CHECK_EQ_INT(dj_cross_entropy_forward(&g_ex, &cp, &z.h, &lab.h, &ref), DJ_OK);
        CHECK_EQ_INT(dj_device_download(g_dev, got, loss2, sizeof got), DJ_OK);
        CHECK_CLOSE(got[0], ref, 1e-5, 1e-6);
        CHECK(got[1] == -1.f);
    }
    dj_step_graph_free(graph);
    dj_device_mfree(g_dev, loss2);
    pair_free(&x), pair_free(&y), pair_free(&z), pair_free(&lab);
}

static void test_shape_errors(void) {
    NEED_GPU();
    int64_t s[2] = {3, 4}, t[2] = {4, 3};
    pair a, b;
    pair_make(&a, DJ_DTYPE_F32, 2, s, 1, 1.f);
    pair_make(&b, DJ_DTYPE_F32, 2, t, 2, 1.f);
    CHECK_EQ_INT(dj_cuda_act_forward(g_dev, DJ_ACT_RELU, &a.d, &b.d), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "y");
    CHECK_EQ_INT(dj_cuda_softmax_forward(g_dev, 0, &a.d, &b.d), DJ_ERR_INVALID);
    pair_free(&a), pair_free(&b);
}

int main(void) {
    static float scratch[(16u << 20) / sizeof(float)]; /* 16 MiB: the largest conv3d scratch here */
    g_ex.scratch = scratch;
    g_ex.scratch_bytes = sizeof scratch;
    dj_device_spec spec = {DJ_DEVICE_CUDA, 0};
    if (dj_device_open(&spec, 64u << 20, "test_cuda_ops", &g_dev) != DJ_OK)
        snprintf(g_why, sizeof g_why, "%s", dj_error_message());
    DJ_RUN(test_act_f32);
    DJ_RUN(test_act_bf16);
    DJ_RUN(test_add_mul);
    DJ_RUN(test_bias_act);
    DJ_RUN(test_add_relu);
    DJ_RUN(test_convert);
    DJ_RUN(test_softmax);
    DJ_RUN(test_cross_entropy);
    DJ_RUN(test_batchnorm);
    DJ_RUN(test_layernorm);
    DJ_RUN(test_pooling);
    DJ_RUN(test_adaptive_pool);
    DJ_RUN(test_gemm);
    DJ_RUN(test_linear);
    DJ_RUN(test_conv3d);
    DJ_RUN(test_sgd_adamw);
    DJ_RUN(test_arena_and_ring);
    DJ_RUN(test_graph_capture);
    DJ_RUN(test_shape_errors);
    dj_device_free(g_dev);
    return dj_test_finish();
}

#else

static void test_cuda_ops(void) { SKIP("built without CUDA"); }

int main(void) {
    DJ_RUN(test_cuda_ops);
    return dj_test_finish();
}

#endif
