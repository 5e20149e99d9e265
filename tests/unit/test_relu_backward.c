/* test_relu_backward.c — the ReLU gradients (relu, residual add + ReLU,
 * bias + ReLU) against their definition, bit for bit: dx += (x > 0 ? dy :
 * 0), computed here in the same float arithmetic. The kernels select dy
 * without a branch so that they vectorise; these tests pin what must not
 * change with that: accumulation into existing gradients, zero and -0 and
 * NaN inputs (no gradient), infinite dy where the gradient is masked (must
 * stay masked, never 0 * inf = NaN), odd sizes (vector tails), the thread
 * count, and NULL gradients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/ops_pointwise.h"
#include "dojo/rng.h"
#include "support/test.h"

/* Sizes around the vector widths and the parallel grain (16384). */
static const int64_t sizes[] = {1, 7, 16, 33, 16384 + 5, 70001};
enum { N_SIZES = sizeof sizes / sizeof sizes[0] };

/* x: signs mixed, with 0, -0 and NaN; dy: values, with +-inf and huge where
 * x <= 0 (masked); acc: existing gradients (accumulation). */
static void fill(uint64_t seed, int64_t n, float *x, float *dy, float *acc) {
    dj_rng r;
    dj_rng_seed(&r, seed, 0);
    for (int64_t i = 0; i < n; i++) {
        x[i] = dj_rng_float(&r) - 0.5f;
        dy[i] = 4.0f * (dj_rng_float(&r) - 0.5f);
        acc[i] = dj_rng_float(&r) - 0.5f;
        switch (dj_rng_below(&r, 12)) {
        case 0: x[i] = 0.0f; break;
        case 1: x[i] = -0.0f; break;
        case 2: x[i] = NAN; break;
        case 3: x[i] = -1.0f; dy[i] = INFINITY; break;
        case 4: x[i] = -2.0f; dy[i] = -INFINITY; break;
        case 5: x[i] = -3.0f; dy[i] = 3e38f; break;
        case 6: acc[i] = -0.0f; break;
        default: break;
        }
    }
}

/* The definition, in float: d[i] += x[i] > 0 ? dy[i] : 0. */
static void expected(int64_t n, const float *x, const float *dy, float *d) {
    for (int64_t i = 0; i < n; i++) {
        float g = 0.0f;
        if (x[i] > 0.0f)
            g = dy[i];
        d[i] += g;
    }
}

typedef struct bufs {
    float *x, *dy, *d1, *d2, *want;
} bufs;

static int bufs_alloc(bufs *b, int64_t n) {
    size_t sz = (size_t)n * sizeof(float);
    b->x = malloc(sz);
    b->dy = malloc(sz);
    b->d1 = malloc(sz);
    b->d2 = malloc(sz);
    b->want = malloc(sz);
    return b->x && b->dy && b->d1 && b->d2 && b->want;
}

static void bufs_free(bufs *b) {
    free(b->x);
    free(b->dy);
    free(b->d1);
    free(b->d2);
    free(b->want);
}

static int same_bits(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

/* Runs fn on 1 thread (NULL pool) and on a pool of 3 threads. */
static dj_threadpool *pool3;
static const dj_exec *execs(int k) {
    static dj_exec ex[2];
    ex[0] = (dj_exec){NULL, NULL, 0};
    ex[1] = (dj_exec){pool3, NULL, 0};
    return &ex[k];
}

static void test_relu_backward_matches_definition(void) {
    for (int s = 0; s < N_SIZES; s++) {
        int64_t n = sizes[s], shape[2] = {1, n};
        bufs b;
        CHECK(bufs_alloc(&b, n));
        fill(10 + (uint64_t)s, n, b.x, b.dy, b.want);
        memcpy(b.d1, b.want, (size_t)n * sizeof(float)); /* the same start for both runs */
        memcpy(b.d2, b.want, (size_t)n * sizeof(float));
        expected(n, b.x, b.dy, b.want);
        for (int k = 0; k < 2; k++) {
            float *d = k ? b.d2 : b.d1;
            dj_tensor x, dy, dx;
            dj_tensor_view(DJ_DTYPE_F32, 2, shape, b.x, &x);
            dj_tensor_view(DJ_DTYPE_F32, 2, shape, b.dy, &dy);
            dj_tensor_view(DJ_DTYPE_F32, 2, shape, d, &dx);
            CHECK(dj_relu_backward(execs(k), &x, &dy, &dx) == DJ_OK);
            CHECK_MSG(same_bits(d, b.want, n), "relu backward, n=%lld, %s", (long long)n, k ? "3 threads" : "1 thread");
        }
        for (int64_t i = 0; i < n; i++)
            CHECK_MSG(!isnan(b.d1[i]) || isnan(b.want[i]), "NaN at %lld", (long long)i);
        bufs_free(&b);
    }
}

static void test_relu_backward_null_gradient(void) {
    float x[3] = {1, -1, 2}, dy[3] = {1, 2, 3};
    int64_t shape[1] = {3};
    dj_tensor tx, tdy;
    dj_tensor_view(DJ_DTYPE_F32, 1, shape, x, &tx);
    dj_tensor_view(DJ_DTYPE_F32, 1, shape, dy, &tdy);
    CHECK(dj_relu_backward(execs(1), &tx, &tdy, NULL) == DJ_OK);
}

/* add_relu: both gradients, or one of them, from the forward output y. */
static void test_add_relu_backward_matches_definition(void) {
    for (int s = 0; s < N_SIZES; s++) {
        int64_t n = sizes[s], shape[3] = {1, 1, n};
        bufs b;
        CHECK(bufs_alloc(&b, n));
        float *start = malloc((size_t)n * sizeof(float));
        CHECK(start != NULL);
        fill(100 + (uint64_t)s, n, b.x, b.dy, start);
        memcpy(b.want, start, (size_t)n * sizeof(float));
        expected(n, b.x, b.dy, b.want);
        for (int k = 0; k < 2; k++)
            for (int which = 0; which < 3; which++) { /* 0: both, 1: dx only, 2: dres only */
                memcpy(b.d1, start, (size_t)n * sizeof(float));
                memcpy(b.d2, start, (size_t)n * sizeof(float));
                dj_tensor y, dy, dx, dres;
                dj_tensor_view(DJ_DTYPE_F32, 3, shape, b.x, &y);
                dj_tensor_view(DJ_DTYPE_F32, 3, shape, b.dy, &dy);
                dj_tensor_view(DJ_DTYPE_F32, 3, shape, b.d1, &dx);
                dj_tensor_view(DJ_DTYPE_F32, 3, shape, b.d2, &dres);
                CHECK(dj_add_relu_backward(execs(k), &y, &dy, which == 2 ? NULL : &dx, which == 1 ? NULL : &dres) ==
                      DJ_OK);
                CHECK_MSG(same_bits(b.d1, which == 2 ? start : b.want, n), "add_relu dx, n=%lld, case %d",
                          (long long)n, which);
                CHECK_MSG(same_bits(b.d2, which == 1 ? start : b.want, n), "add_relu dres, n=%lld, case %d",
                          (long long)n, which);
            }
        free(start);
        bufs_free(&b);
    }
}

/* bias + ReLU: z = x + bias[c]; dx += (z > 0 ? dy : 0) bit for bit; dbias[c]
 * += the sum of those gradients (within rounding: the kernel's order). */
static void test_bias_relu_backward_matches_definition(void) {
    const int64_t N = 3, C = 5, P = 16384 / 4 + 3; /* rows longer than a vector, with a tail */
    int64_t n = N * C * P, shape[3] = {N, C, P}, bshape[1] = {C};
    bufs b;
    CHECK(bufs_alloc(&b, n));
    float bias[5] = {0.25f, -0.25f, 0.0f, 0.5f, -1.0f}, db1[5], db2[5], dbw[5];
    fill(7, n, b.x, b.dy, b.want);
    memcpy(b.d1, b.want, (size_t)n * sizeof(float));
    for (int64_t c = 0; c < C; c++)
        db1[c] = dbw[c] = 0.125f * (float)c;
    for (int64_t c = 0; c < C; c++) {
        double sum = 0.0;
        for (int64_t i = 0; i < N; i++) {
            float part = 0.0f;
            for (int64_t p = 0; p < P; p++) {
                int64_t at = (i * C + c) * P + p;
                float g = b.x[at] + bias[c] > 0.0f ? b.dy[at] : 0.0f;
                b.want[at] += g;
                part += g;
            }
            sum += part;
        }
        dbw[c] += (float)sum;
    }
    for (int k = 0; k < 2; k++) {
        float *d = k ? b.d2 : b.d1;
        if (k == 0) /* the same start for both runs */
            memcpy(b.d2, b.d1, (size_t)n * sizeof(float));
        memcpy(db2, db1, sizeof db2);
        dj_tensor x, tb, dy, dx, dbias;
        dj_tensor_view(DJ_DTYPE_F32, 3, shape, b.x, &x);
        dj_tensor_view(DJ_DTYPE_F32, 1, bshape, bias, &tb);
        dj_tensor_view(DJ_DTYPE_F32, 3, shape, b.dy, &dy);
        dj_tensor_view(DJ_DTYPE_F32, 3, shape, d, &dx);
        dj_tensor_view(DJ_DTYPE_F32, 1, bshape, db2, &dbias);
        CHECK(dj_bias_act_backward(execs(k), DJ_ACT_RELU, &x, &tb, &dy, &dx, &dbias) == DJ_OK);
        CHECK_MSG(same_bits(d, b.want, n), "bias relu dx, %s", k ? "3 threads" : "1 thread");
        /* the order of the bias sum is the kernel's (ops_pointwise.h: in double); compare values */
        for (int64_t c = 0; c < C; c++)
            CHECK_CLOSE(db2[c], dbw[c], 1e-5, 1e-4);
    }
    bufs_free(&b);
}

int main(void) {
    if (dj_threadpool_create(3, &pool3) != DJ_OK)
        return 1;
    DJ_RUN(test_relu_backward_matches_definition);
    DJ_RUN(test_relu_backward_null_gradient);
    DJ_RUN(test_add_relu_backward_matches_definition);
    DJ_RUN(test_bias_relu_backward_matches_definition);
    dj_threadpool_free(pool3);
    return dj_test_finish();
}
