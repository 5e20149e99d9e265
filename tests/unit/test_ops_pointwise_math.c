/* test_ops_pointwise_math.c — the vectorisable float32 helpers under the
 * point-wise operators (src/nn/pointwise_internal.h): exp, sigmoid, Phi,
 * the fixed-order block sums and the row maximum, against double. */
#include <float.h>
#include <stdlib.h>

#include "dojo/dojo.h"
#include "nn/pointwise_internal.h"
#include "support/test.h"

/* exp within 2 ulp (relative 2.4e-7) over the whole clamped range, finite
 * and positive outside it, and exact at 0. */
static void test_exp_accuracy(void) {
    double worst = 0;
    for (float x = -87.0f; x <= 88.5f; x += 0.0137f) {
        double r = exp((double)x), e = fabs(dj_exp_f32(x) - r) / r;
        worst = e > worst ? e : worst;
    }
    CHECK_MSG(worst < 2.4e-7, "exp relative error %.3g", worst);
    CHECK(dj_exp_f32(0.0f) == 1.0f);
    CHECK(dj_exp_f32(-1000.0f) > 0.0f && dj_exp_f32(-1000.0f) < 1.2e-37f);
    CHECK(isfinite(dj_exp_f32(1000.0f)) && dj_exp_f32(1000.0f) > 3e38f);
    CHECK(isnan(dj_exp_f32(NAN)));
}

/* sigmoid and Phi in the tails keep relative precision (no 1 - 1): Phi
 * within 2e-6 relative on [-3, 3] and 2e-5 down to -13 (float rounding of
 * x^2 inside exp grows with x^2). */
static void test_sigmoid_and_phi_tails(void) {
    double ws = 0, wp = 0, wc = 0;
    for (float x = -80.0f; x <= 80.0f; x += 0.01f) {
        double s = 1.0 / (1.0 + exp(-(double)x)), p = 0.5 * erfc(-(double)x / sqrt(2.0));
        double es = fabs(dj_sigmoid_f32(x) - s) / s, ep = p > 1e-37 ? fabs(dj_phi_f32(x) - p) / p : 0;
        ws = es > ws ? es : ws;
        if (x > -13.0f) /* below, Phi itself leaves the normal float range */
            wp = ep > wp ? ep : wp;
        if (fabsf(x) <= 3.0f)
            wc = ep > wc ? ep : wc;
    }
    CHECK_MSG(ws < 1e-6, "sigmoid relative error %.3g", ws);
    CHECK_MSG(wp < 2e-5, "Phi relative error %.3g", wp);
    CHECK_MSG(wc < 2e-6, "Phi relative error on [-3,3] %.3g", wc);
    CHECK(dj_phi_f32(0.0f) == 0.5f);
    CHECK(dj_phi_f32(10.0f) == 1.0f);
}

/* Block sums equal a double sum closely, and their order is fixed: the same
 * data gives the same bits whatever the alignment of the call. */
static void test_block_sums(void) {
    enum { N = 1000 };
    float *x = malloc((N + 8) * sizeof *x), *y = malloc(N * sizeof *y);
    dj_rng r;
    dj_rng_seed(&r, 3, 0);
    double ref = 0, dot = 0;
    for (int i = 0; i < N; i++) {
        x[i] = (float)(dj_rng_double(&r) * 2 - 1);
        y[i] = (float)(dj_rng_double(&r) * 2 - 1);
        ref += x[i];
        dot += (double)x[i] * y[i];
    }
    CHECK_CLOSE(dj_sum_f32(x, N), ref, 0, 1e-5);
    CHECK_CLOSE(dj_dot_f32(x, y, N), dot, 0, 1e-5);
    double a = dj_sum_f32(x, N);
    memmove(x + 3, x, N * sizeof *x); /* misaligned copy of the same data */
    CHECK(dj_sum_f32(x + 3, N) == a);
    CHECK(dj_sum_f32(x, 0) == 0.0);
    CHECK_CLOSE(dj_sum_f32(x + 3, 63), dj_sum_f32(x + 3, 63), 0, 0);
    free(x);
    free(y);
}

static void test_row_max(void) {
    float v[21];
    for (int i = 0; i < 21; i++)
        v[i] = (float)((i * 8) % 21) - 10.0f; /* -10..10, shuffled */
    CHECK(dj_max_f32(v, 21) == 10.0f);
    CHECK(dj_max_f32(v, 3) == 6.0f); /* -10, -2, 6 */
    CHECK(isinf(dj_max_f32(v, 0)) && dj_max_f32(v, 0) < 0);
    v[5] = NAN; /* skipped */
    CHECK(dj_max_f32(v, 21) == 10.0f);
    v[20] = INFINITY;
    CHECK(isinf(dj_max_f32(v, 21)));
}

/* The float and double activations agree (the reference is not a copy: a
 * different formula for each), and the derivative matches a difference. */
static void test_activation_derivatives(void) {
    for (int a = DJ_ACT_GELU; a <= DJ_ACT_SIGMOID; a++)
        for (double x = -6; x <= 6; x += 0.37) {
            double h = 1e-6;
            double fd = (dj_act_f64((dj_act)a, x + h) - dj_act_f64((dj_act)a, x - h)) / (2 * h);
            CHECK_CLOSE(dj_act_grad_f64((dj_act)a, x), fd, 1e-6, 1e-8);
            CHECK_CLOSE(dj_act_grad_f32((dj_act)a, (float)x), dj_act_grad_f64((dj_act)a, (float)x), 1e-5, 1e-6);
            CHECK_CLOSE(dj_act_f32((dj_act)a, (float)x), dj_act_f64((dj_act)a, (float)x), 1e-5, 1e-7);
        }
}

int main(void) {
    DJ_RUN(test_exp_accuracy);
    DJ_RUN(test_sigmoid_and_phi_tails);
    DJ_RUN(test_block_sums);
    DJ_RUN(test_row_max);
    DJ_RUN(test_activation_derivatives);
    return dj_test_finish();
}
