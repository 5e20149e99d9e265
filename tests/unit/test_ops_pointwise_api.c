/* test_ops_pointwise_api.c — semantics and errors of the point-wise
 * operators beyond the reference table: values PyTorch gives for known
 * inputs, dropout statistics and mask determinism, reshape/permute for the
 * NCTHW <-> tokens round trip, divided space-time attention, loss edge cases,
 * and clear errors (naming operator and shapes) for bad arguments. */
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "dojo/ops_pointwise.h"
#include "support/test.h"

/* A float32 tensor of the given shape filled from vals (or zeros). */
static dj_tensor t_make(int nd, const int64_t *shape, const float *vals) {
    dj_tensor t;
    if (dj_tensor_create(DJ_DTYPE_F32, nd, shape, &t) != DJ_OK)
        memset(&t, 0, sizeof t);
    if (vals && t.data)
        memcpy(t.data, vals, dj_tensor_nbytes(&t));
    return t;
}

static float *F(dj_tensor *t) { return t->data; }

static void fill_rand(dj_tensor *t, uint64_t seed) {
    dj_rng r;
    dj_rng_seed(&r, seed, 1);
    for (int64_t i = 0; i < dj_tensor_numel(t); i++)
        F(t)[i] = 2.0f * dj_rng_float(&r) - 1.0f;
}

/* ---- values -------------------------------------------------------------- */

static void test_activation_values_match_torch(void) {
    int64_t n = 3;
    float xs[3] = {1.0f, -1.0f, 0.0f};
    dj_tensor x = t_make(1, &n, xs), y = t_make(1, &n, NULL);
    CHECK(dj_gelu_forward(NULL, 0, &x, &y) == DJ_OK);
    CHECK_CLOSE(F(&y)[0], 0.8413447460685429, 1e-6, 0);
    CHECK_CLOSE(F(&y)[1], -0.15865525393145707, 1e-6, 0);
    CHECK(dj_gelu_forward(NULL, 1, &x, &y) == DJ_OK);
    CHECK_CLOSE(F(&y)[0], 0.8411919906082768, 1e-6, 0);
    CHECK(dj_silu_forward(NULL, &x, &y) == DJ_OK);
    CHECK_CLOSE(F(&y)[0], 0.7310585786300049, 1e-6, 0);
    CHECK(dj_sigmoid_forward(NULL, &x, &y) == DJ_OK);
    CHECK_CLOSE(F(&y)[2], 0.5, 0, 0);
    CHECK(dj_relu_forward(NULL, &x, &y) == DJ_OK);
    CHECK(F(&y)[0] == 1.0f && F(&y)[1] == 0.0f && F(&y)[2] == 0.0f);
    /* torch: ReLU's gradient at exactly 0 is 0 */
    float ones[3] = {1, 1, 1};
    dj_tensor dy = t_make(1, &n, ones), dx = t_make(1, &n, NULL);
    CHECK(dj_relu_backward(NULL, &x, &dy, &dx) == DJ_OK);
    CHECK(F(&dx)[0] == 1.0f && F(&dx)[1] == 0.0f && F(&dx)[2] == 0.0f);
    /* in place forward */
    CHECK(dj_relu_forward(NULL, &x, &x) == DJ_OK);
    CHECK(F(&x)[1] == 0.0f);
    CHECK(dj_act_forward(NULL, (dj_act)42, &x, &y) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "unknown activation");
    dj_tensor_free(&x);
    dj_tensor_free(&y);
    dj_tensor_free(&dy);
    dj_tensor_free(&dx);
}

/* NaN propagates through every activation (torch.relu(nan) is nan too) and
 * through the fused ReLUs. */
static void test_activations_propagate_nan(void) {
    int64_t n = 19; /* odd: vector body and scalar tail */
    dj_tensor x = t_make(1, &n, NULL), y = t_make(1, &n, NULL), b = t_make(1, &n, NULL);
    for (int64_t i = 0; i < n; i++)
        F(&x)[i] = NAN;
    for (int a = DJ_ACT_NONE; a <= DJ_ACT_SIGMOID; a++) {
        CHECK(dj_act_forward(NULL, (dj_act)a, &x, &y) == DJ_OK);
        int all = 1;
        for (int64_t i = 0; i < n; i++)
            all &= isnan(F(&y)[i]);
        CHECK_MSG(all, "%s does not propagate NaN", dj_act_name((dj_act)a));
    }
    CHECK(dj_add_relu_forward(NULL, &x, &b, &y) == DJ_OK);
    CHECK(isnan(F(&y)[0]) && isnan(F(&y)[n - 1]));
    int64_t s2[2] = {1, 19}, one = 19;
    dj_tensor x2, y2, bias = t_make(1, &one, NULL);
    CHECK(dj_reshape(&x, 2, s2, &x2) == DJ_OK);
    CHECK(dj_reshape(&y, 2, s2, &y2) == DJ_OK);
    memset(y.data, 0, dj_tensor_nbytes(&y));
    CHECK(dj_bias_act_forward(NULL, DJ_ACT_RELU, &x2, &bias, &y2) == DJ_OK);
    CHECK(isnan(F(&y)[0]) && isnan(F(&y)[n - 1]));
    dj_tensor_free(&x);
    dj_tensor_free(&y);
    dj_tensor_free(&b);
    dj_tensor_free(&bias);
}

/* Empty tensors (a zero in the shape) are valid and touch nothing. */
static void test_empty_tensors_are_handled(void) {
    int64_t s[3] = {2, 0, 5}, c = 0, one = 1;
    dj_tensor x = t_make(3, s, NULL), y = t_make(3, s, NULL), b1 = t_make(1, &one, NULL), bias = t_make(1, &c, NULL);
    CHECK(dj_act_forward(NULL, DJ_ACT_GELU, &x, &y) == DJ_OK);
    CHECK(dj_act_backward(NULL, DJ_ACT_GELU, &x, &y, &y) == DJ_OK);
    CHECK(dj_softmax_forward(NULL, &x, &y) == DJ_OK);
    CHECK(dj_softmax_backward(NULL, &x, &y, &y) == DJ_OK);
    CHECK(dj_add_forward(NULL, &x, &b1, &y) == DJ_OK);
    CHECK(dj_add_backward(NULL, &x, &b1, &y, &y, &b1) == DJ_OK);
    CHECK(F(&b1)[0] == 0.0f);
    CHECK(dj_mul_forward(NULL, &x, &x, &y) == DJ_OK);
    CHECK(dj_bias_act_forward(NULL, DJ_ACT_RELU, &x, &bias, &y) == DJ_OK);
    CHECK(dj_bias_act_backward(NULL, DJ_ACT_SILU, &x, &bias, &y, &y, &bias) == DJ_OK);
    dj_dropout_params p = {0.5f, 1, 1, 1};
    CHECK(dj_dropout_forward(NULL, &p, &x, &y) == DJ_OK);
    int perm[3] = {2, 0, 1};
    int64_t ps[3] = {5, 2, 0};
    dj_tensor yp = t_make(3, ps, NULL);
    CHECK(dj_permute_forward(NULL, perm, &x, &yp) == DJ_OK);
    CHECK(dj_permute_backward(NULL, perm, &yp, &x) == DJ_OK);
    const dj_tensor *in[2] = {&x, &x};
    CHECK(dj_concat_forward(NULL, 1, 2, in, &y) == DJ_OK);
    float loss = -1;
    CHECK(dj_mse_forward(NULL, &x, &x, NULL, &loss) == DJ_OK);
    CHECK(loss == 0.0f);
    dj_tensor *all[] = {&x, &y, &b1, &bias, &yp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dj_tensor_free(all[i]);
}

static void test_softmax_values_and_stability(void) {
    int64_t s[2] = {2, 3};
    float xs[6] = {1, 2, 3, 1000, 1001, 1002};
    dj_tensor x = t_make(2, s, xs), y = t_make(2, s, NULL);
    CHECK(dj_softmax_forward(NULL, &x, &y) == DJ_OK);
    CHECK_CLOSE(F(&y)[0], 0.09003057317038043, 1e-6, 0);
    CHECK_CLOSE(F(&y)[2], 0.6652409557748218, 1e-6, 0);
    CHECK_CLOSE(F(&y)[3], 0.09003057317038043, 1e-6, 0); /* shift invariant, no overflow */
    CHECK(dj_log_softmax_forward(NULL, &x, &y) == DJ_OK);
    CHECK_CLOSE(F(&y)[0], -2.4076059644443806, 1e-6, 0);
    CHECK_CLOSE(F(&y)[5], -0.40760596444438, 1e-5, 0);
    dj_tensor_free(&x);
    dj_tensor_free(&y);
}

static void test_cross_entropy_values_match_torch(void) {
    int64_t s[2] = {1, 3}, n = 1;
    float xs[3] = {1, 2, 3};
    dj_tensor x = t_make(2, s, xs), lab, g = t_make(2, s, NULL);
    CHECK(dj_tensor_create(DJ_DTYPE_I64, 1, &n, &lab) == DJ_OK);
    float loss = 0;
    dj_cross_entropy_params p = {0.0f};
    CHECK(dj_cross_entropy_forward(NULL, &p, &x, &lab, &loss) == DJ_OK);
    CHECK_CLOSE(loss, 2.4076059644443806, 1e-6, 0);
    p.label_smoothing = 0.1f;
    CHECK(dj_cross_entropy_forward(NULL, &p, &x, &lab, &loss) == DJ_OK);
    CHECK_CLOSE(loss, 2.3076059644443805, 1e-6, 0);
    /* gradient: softmax - smoothed one-hot */
    CHECK(dj_cross_entropy_backward(NULL, &p, &x, &lab, 1.0f, &g) == DJ_OK);
    CHECK_CLOSE(F(&g)[0], 0.09003057317038043 - 0.9 - 0.1 / 3, 1e-5, 1e-7);
    CHECK_CLOSE(F(&g)[2], 0.6652409557748218 - 0.1 / 3, 1e-5, 1e-7);
    dj_tensor_free(&x);
    dj_tensor_free(&lab);
    dj_tensor_free(&g);
}

static void test_cross_entropy_rejects_bad_labels(void) {
    int64_t s[2] = {3, 4}, n = 3;
    dj_tensor x = t_make(2, s, NULL), lab;
    CHECK(dj_tensor_create(DJ_DTYPE_I64, 1, &n, &lab) == DJ_OK);
    int64_t *l = lab.data;
    l[1] = 4;
    float loss;
    dj_cross_entropy_params p = {0.0f};
    CHECK(dj_cross_entropy_forward(NULL, &p, &x, &lab, &loss) == DJ_ERR_RANGE);
    CHECK_STR_CONTAINS(dj_error_message(), "label 4 of row 1 is outside [0, 4)");
    CHECK_STR_CONTAINS(dj_error_message(), "dj_cross_entropy_forward");
    l[1] = -100; /* torch's ignore_index is not supported: rejected too */
    CHECK(dj_cross_entropy_backward(NULL, &p, &x, &lab, 1.0f, &x) == DJ_ERR_RANGE);
    l[1] = 0;
    p.label_smoothing = 1.5f;
    CHECK(dj_cross_entropy_forward(NULL, &p, &x, &lab, &loss) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "label_smoothing");
    p.label_smoothing = 0;
    int64_t wrong = 2;
    dj_tensor lab2;
    CHECK(dj_tensor_create(DJ_DTYPE_I64, 1, &wrong, &lab2) == DJ_OK);
    CHECK(dj_cross_entropy_forward(NULL, &p, &x, &lab2, &loss) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "logits (3,4) and labels (2)");
    dj_tensor_free(&x);
    dj_tensor_free(&lab);
    dj_tensor_free(&lab2);
}

static void test_topk_counts_ties_for_the_label(void) {
    int64_t s[2] = {3, 4}, n = 3;
    float xs[12] = {0.1f, 0.5f, 0.2f, 0.9f, /* label 3: top-1 */
                    1.0f, 0.0f, 1.0f, 0.3f, /* label 0 tied with 2: counted */
                    0.4f, 0.3f, 0.2f, 0.1f}; /* label 2: rank 3 */
    dj_tensor x = t_make(2, s, xs), lab;
    CHECK(dj_tensor_create(DJ_DTYPE_I64, 1, &n, &lab) == DJ_OK);
    int64_t *l = lab.data, c = -1;
    l[0] = 3, l[1] = 0, l[2] = 2;
    CHECK(dj_topk_correct(&x, &lab, 1, &c) == DJ_OK);
    CHECK_EQ_INT(c, 2);
    CHECK(dj_topk_correct(&x, &lab, 2, &c) == DJ_OK);
    CHECK_EQ_INT(c, 2);
    CHECK(dj_topk_correct(&x, &lab, 3, &c) == DJ_OK);
    CHECK_EQ_INT(c, 3);
    CHECK(dj_topk_correct(&x, &lab, 0, &c) == DJ_ERR_INVALID);
    dj_tensor_free(&x);
    dj_tensor_free(&lab);
}

static void test_mse_values_and_zero_mask(void) {
    int64_t s[2] = {2, 2}, ms = 2;
    float p[4] = {1, 2, 3, 4}, t[4] = {0, 0, 0, 0}, m[2] = {0, 1};
    dj_tensor P = t_make(2, s, p), T = t_make(2, s, t), M = t_make(1, &ms, m), G = t_make(2, s, NULL);
    float loss;
    CHECK(dj_mse_forward(NULL, &P, &T, NULL, &loss) == DJ_OK);
    CHECK_CLOSE(loss, 30.0 / 4, 1e-7, 0);
    CHECK(dj_mse_forward(NULL, &P, &T, &M, &loss) == DJ_OK); /* row 1 only */
    CHECK_CLOSE(loss, 25.0 / 2, 1e-7, 0);
    CHECK(dj_mse_backward(NULL, &P, &T, &M, 1.0f, &G, NULL) == DJ_OK);
    CHECK(F(&G)[0] == 0.0f && F(&G)[1] == 0.0f);
    CHECK_CLOSE(F(&G)[3], 2.0 * 4 / 2, 1e-7, 0);
    F(&M)[1] = 0;
    memset(G.data, 0, dj_tensor_nbytes(&G));
    CHECK(dj_mse_forward(NULL, &P, &T, &M, &loss) == DJ_OK);
    CHECK(loss == 0.0f);
    CHECK(dj_mse_backward(NULL, &P, &T, &M, 1.0f, &G, NULL) == DJ_OK);
    for (int i = 0; i < 4; i++)
        CHECK(F(&G)[i] == 0.0f);
    int64_t bad = 3;
    dj_tensor B = t_make(1, &bad, NULL);
    CHECK(dj_mse_forward(NULL, &P, &T, &B, &loss) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "mask (3) must have pred's shape (2,2)");
    dj_tensor_free(&P);
    dj_tensor_free(&T);
    dj_tensor_free(&M);
    dj_tensor_free(&G);
    dj_tensor_free(&B);
}

/* The vectorised float32 math (exp, erfc fit) against double over a wide
 * range, tails included: |err| <= 1e-5 |ref| + 1e-30 for values, gradients
 * likewise plus 1e-7 absolute. Also no NaN or Inf for huge inputs. */
static void test_activation_accuracy_over_range(void) {
    int64_t n = 20001;
    dj_tensor x = t_make(1, &n, NULL), y = t_make(1, &n, NULL), dy = t_make(1, &n, NULL), dx = t_make(1, &n, NULL);
    dj_tensor xd, yd, dyd, dxd;
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 1, &n, &xd) == DJ_OK);
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 1, &n, &yd) == DJ_OK);
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 1, &n, &dyd) == DJ_OK);
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 1, &n, &dxd) == DJ_OK);
    for (int64_t i = 0; i < n; i++) {
        F(&x)[i] = -30.0f + 60.0f * (float)i / (float)(n - 1);
        ((double *)xd.data)[i] = F(&x)[i];
        F(&dy)[i] = 1.0f;
        ((double *)dyd.data)[i] = 1.0;
    }
    for (int a = DJ_ACT_GELU; a <= DJ_ACT_SIGMOID; a++) {
        memset(dx.data, 0, dj_tensor_nbytes(&dx));
        memset(dxd.data, 0, dj_tensor_nbytes(&dxd));
        CHECK(dj_act_forward(NULL, (dj_act)a, &x, &y) == DJ_OK);
        CHECK(dj_act_backward(NULL, (dj_act)a, &x, &dy, &dx) == DJ_OK);
        CHECK(dj_ref_act_forward((dj_act)a, &xd, &yd) == DJ_OK);
        CHECK(dj_ref_act_backward((dj_act)a, &xd, &dyd, &dxd) == DJ_OK);
        double worst = 0, worst_g = 0;
        for (int64_t i = 0; i < n; i++) {
            double r = ((double *)yd.data)[i], g = ((double *)dxd.data)[i];
            double e = fabs(F(&y)[i] - r) / (1e-5 * fabs(r) + 1e-30);
            double eg = fabs(F(&dx)[i] - g) / (1e-5 * fabs(g) + 1e-7);
            worst = e > worst ? e : worst;
            worst_g = eg > worst_g ? eg : worst_g;
        }
        CHECK_MSG(worst <= 1.0, "%s: value error %.3g of the tolerance", dj_act_name((dj_act)a), worst);
        CHECK_MSG(worst_g <= 1.0, "%s: gradient error %.3g of the tolerance", dj_act_name((dj_act)a), worst_g);
    }
    float big[4] = {1e30f, -1e30f, 100.0f, -100.0f};
    int64_t four = 4;
    dj_tensor b = t_make(1, &four, big), by = t_make(1, &four, NULL);
    for (int a = DJ_ACT_GELU; a <= DJ_ACT_SIGMOID; a++) {
        CHECK(dj_act_forward(NULL, (dj_act)a, &b, &by) == DJ_OK);
        for (int i = 0; i < 4; i++)
            CHECK_MSG(isfinite(F(&by)[i]), "%s(%g) = %g", dj_act_name((dj_act)a), big[i], F(&by)[i]);
    }
    dj_tensor *all[] = {&x, &y, &dy, &dx, &xd, &yd, &dyd, &dxd, &b, &by};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dj_tensor_free(all[i]);
}

/* ---- dropout ------------------------------------------------------------------ */

static void test_dropout_mask_statistics_and_determinism(void) {
    int64_t n = 100000;
    dj_tensor x = t_make(1, &n, NULL), y = t_make(1, &n, NULL), y2 = t_make(1, &n, NULL);
    for (int64_t i = 0; i < n; i++)
        F(&x)[i] = 1.0f;
    dj_dropout_params p = {0.25f, 1, 42, 3};
    CHECK(dj_dropout_forward(NULL, &p, &x, &y) == DJ_OK);
    int64_t kept = 0;
    int values_ok = 1, mask_ok = 1;
    for (int64_t i = 0; i < n; i++) {
        kept += F(&y)[i] != 0.0f;
        values_ok &= F(&y)[i] == 0.0f || F(&y)[i] == 1.0f / 0.75f;
        mask_ok &= (F(&y)[i] != 0.0f) == (dj_hash_float(42, 3, (uint64_t)i) >= 0.25f);
    }
    CHECK(values_ok && mask_ok);
    CHECK_CLOSE((double)kept / n, 0.75, 0, 0.01);
    /* same (seed, step): same mask; another step: another mask */
    CHECK(dj_dropout_forward(NULL, &p, &x, &y2) == DJ_OK);
    CHECK(memcmp(y.data, y2.data, (size_t)n * 4) == 0);
    p.step = 4;
    CHECK(dj_dropout_forward(NULL, &p, &x, &y2) == DJ_OK);
    CHECK(memcmp(y.data, y2.data, (size_t)n * 4) != 0);
    /* eval copies */
    p.training = 0;
    CHECK(dj_dropout_forward(NULL, &p, &x, &y2) == DJ_OK);
    CHECK(memcmp(x.data, y2.data, (size_t)n * 4) == 0);
    p.p = -0.1f;
    CHECK(dj_dropout_forward(NULL, &p, &x, &y2) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "p = -0.1, must be in [0, 1] (dj_dropout_forward)");
    dj_tensor_free(&x);
    dj_tensor_free(&y);
    dj_tensor_free(&y2);
}

/* ---- shapes --------------------------------------------------------------------- */

static void test_reshape_infers_and_rejects(void) {
    int64_t s[5] = {2, 3, 4, 5, 6};
    dj_tensor x = t_make(5, s, NULL), v;
    int64_t want[4] = {2, 4, -1, 3};
    CHECK(dj_reshape(&x, 4, want, &v) == DJ_OK);
    CHECK_EQ_INT(v.shape[2], 30);
    CHECK(v.data == x.data && !v.owns_data);
    int64_t two[2] = {-1, -1};
    CHECK(dj_reshape(&x, 2, two, &v) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "more than one -1");
    int64_t odd[2] = {-1, 7};
    CHECK(dj_reshape(&x, 2, odd, &v) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "not a multiple of 7");
    int64_t wrong[2] = {5, 7};
    CHECK(dj_reshape(&x, 2, wrong, &v) != DJ_OK);
    dj_tensor_free(&x);
}

/* N·C·T·H·W -> (N, T, H*W, C) tokens -> back: the identity, and token
 * (n, t, h*W+w) holds channel c of pixel (n, c, t, h, w). */
static void test_permute_video_to_tokens_round_trip(void) {
    int64_t s[5] = {2, 5, 3, 4, 6}, ts[5] = {2, 3, 4, 6, 5}, tok[4] = {2, 3, 24, 5};
    dj_tensor x = t_make(5, s, NULL), t = t_make(5, ts, NULL), back = t_make(5, s, NULL), view;
    fill_rand(&x, 3);
    int perm[5] = {0, 2, 3, 4, 1}, inv[5] = {0, 4, 1, 2, 3};
    CHECK(dj_permute_forward(NULL, perm, &x, &t) == DJ_OK);
    CHECK(dj_reshape(&t, 4, tok, &view) == DJ_OK);
    int64_t n = 1, c = 4, tt = 2, h = 3, w = 1;
    float pixel = F(&x)[(((n * 5 + c) * 3 + tt) * 4 + h) * 6 + w];
    float token = F(&view)[((n * 3 + tt) * 24 + h * 6 + w) * 5 + c];
    CHECK(pixel == token);
    CHECK(dj_permute_forward(NULL, inv, &t, &back) == DJ_OK);
    CHECK(memcmp(x.data, back.data, dj_tensor_nbytes(&x)) == 0);
    /* backward of the permute is the inverse permute (accumulating) */
    memset(back.data, 0, dj_tensor_nbytes(&back));
    CHECK(dj_permute_backward(NULL, perm, &t, &back) == DJ_OK);
    CHECK(memcmp(x.data, back.data, dj_tensor_nbytes(&x)) == 0);
    int bad[5] = {0, 2, 2, 4, 1};
    CHECK(dj_permute_forward(NULL, bad, &x, &t) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "not a permutation");
    CHECK(dj_permute_forward(NULL, perm, &x, &back) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "y (2,5,3,4,6) is not x (2,5,3,4,6) permuted (expected (2,3,4,6,5))");
    dj_tensor_free(&x);
    dj_tensor_free(&t);
    dj_tensor_free(&back);
}

static void test_concat_errors_name_shapes(void) {
    int64_t a[2] = {2, 3}, b[2] = {3, 3}, o[2] = {2, 6};
    dj_tensor A = t_make(2, a, NULL), B = t_make(2, b, NULL), O = t_make(2, o, NULL);
    const dj_tensor *in[2] = {&A, &B};
    CHECK(dj_concat_forward(NULL, 1, 2, in, &O) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "input 1 (3,3) does not match out (2,6) except along axis 1");
    CHECK(dj_concat_forward(NULL, 2, 2, in, &O) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "axis 2 out of range");
    const dj_tensor *in2[2] = {&A, &A};
    CHECK(dj_concat_forward(NULL, -1, 2, in2, &O) == DJ_OK);
    CHECK(dj_concat_forward(NULL, 0, 2, in2, &O) == DJ_ERR_INVALID);
    dj_tensor_free(&A);
    dj_tensor_free(&B);
    dj_tensor_free(&O);
}

static void test_broadcast_and_shape_errors(void) {
    int64_t a[3] = {2, 3, 4}, b[2] = {5, 4}, o[3] = {2, 3, 4}, bias[1] = {4};
    dj_tensor A = t_make(3, a, NULL), B = t_make(2, b, NULL), O = t_make(3, o, NULL), Bi = t_make(1, bias, NULL);
    CHECK(dj_add_forward(NULL, &A, &B, &O) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "shapes (2,3,4) and (5,4) do not broadcast (dj_add_forward)");
    int64_t o2[2] = {3, 4};
    dj_tensor O2 = t_make(2, o2, NULL);
    CHECK(dj_mul_forward(NULL, &A, &A, &O2) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "out (3,4) is not the broadcast shape");
    CHECK(dj_act_forward(NULL, DJ_ACT_RELU, &A, &O2) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "y (3,4) does not match x (2,3,4) (dj_act_forward)");
    CHECK(dj_bias_act_forward(NULL, DJ_ACT_RELU, &A, &Bi, &O) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "bias (4) does not match the channels of x (2,3,4)");
    CHECK(dj_add_relu_forward(NULL, &A, NULL, &O) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "res is NULL");
    dj_tensor I;
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 3, a, &I) == DJ_OK);
    CHECK(dj_softmax_forward(NULL, &I, &O) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "x is float64, expected float32");
    /* NULL gradients are "not wanted": no error, nothing written */
    CHECK(dj_add_backward(NULL, &A, &A, &O, NULL, NULL) == DJ_OK);
    CHECK(dj_act_backward(NULL, DJ_ACT_GELU, &A, &O, NULL) == DJ_OK);
    dj_tensor_free(&A);
    dj_tensor_free(&B);
    dj_tensor_free(&O);
    dj_tensor_free(&O2);
    dj_tensor_free(&Bi);
    dj_tensor_free(&I);
}

/* bias+activation backward gives the same bits whichever gradients are
 * asked for (dx alone takes another path than dx with dbias). */
static void test_bias_act_optional_gradients_agree(void) {
    int64_t s[4] = {2, 5, 3, 37}, c = 5;
    dj_tensor x = t_make(4, s, NULL), dy = t_make(4, s, NULL), b = t_make(1, &c, NULL);
    dj_tensor dx1 = t_make(4, s, NULL), dx2 = t_make(4, s, NULL), db1 = t_make(1, &c, NULL), db2 = t_make(1, &c, NULL);
    fill_rand(&x, 11);
    fill_rand(&dy, 12);
    fill_rand(&b, 13);
    for (int a = DJ_ACT_NONE; a <= DJ_ACT_SIGMOID; a++) {
        memset(dx1.data, 0, dj_tensor_nbytes(&dx1));
        memset(dx2.data, 0, dj_tensor_nbytes(&dx2));
        memset(db1.data, 0, dj_tensor_nbytes(&db1));
        memset(db2.data, 0, dj_tensor_nbytes(&db2));
        CHECK(dj_bias_act_backward(NULL, (dj_act)a, &x, &b, &dy, &dx1, &db1) == DJ_OK);
        CHECK(dj_bias_act_backward(NULL, (dj_act)a, &x, &b, &dy, &dx2, NULL) == DJ_OK);
        CHECK(dj_bias_act_backward(NULL, (dj_act)a, &x, &b, &dy, NULL, &db2) == DJ_OK);
        CHECK_MSG(memcmp(dx1.data, dx2.data, dj_tensor_nbytes(&dx1)) == 0, "%s dx", dj_act_name((dj_act)a));
        CHECK_MSG(memcmp(db1.data, db2.data, dj_tensor_nbytes(&db1)) == 0, "%s dbias", dj_act_name((dj_act)a));
        CHECK(F(&db1)[0] != 0.0f);
    }
    dj_tensor *all[] = {&x, &dy, &b, &dx1, &dx2, &db1, &db2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dj_tensor_free(all[i]);
}

/* ---- attention ---------------------------------------------------------------------- */

/* With q = 0 every token attends uniformly: out = mean of v over the axis. */
static void test_attention_uniform_is_mean(void) {
    int64_t s[4] = {1, 3, 2, 4};
    dj_tensor q = t_make(4, s, NULL), k = t_make(4, s, NULL), v = t_make(4, s, NULL), o = t_make(4, s, NULL);
    fill_rand(&k, 1);
    fill_rand(&v, 2);
    dj_attention_params p = {2, DJ_ATTN_TIME, 0};
    int64_t np = dj_attention_probs_numel(&p, s);
    CHECK_EQ_INT(np, 1 * 2 * 2 * 3 * 3);
    dj_tensor pr = t_make(1, &np, NULL);
    CHECK(dj_attention_forward(NULL, &p, &q, &k, &v, &pr, &o) == DJ_OK);
    for (int64_t sp = 0; sp < 2; sp++)
        for (int64_t c = 0; c < 4; c++) {
            double mean = 0;
            for (int64_t t = 0; t < 3; t++)
                mean += F(&v)[(t * 2 + sp) * 4 + c] / 3.0;
            for (int64_t t = 0; t < 3; t++)
                CHECK_CLOSE(F(&o)[(t * 2 + sp) * 4 + c], mean, 1e-5, 1e-6);
        }
    p.axis = DJ_ATTN_SPACE;
    CHECK_EQ_INT(dj_attention_probs_numel(&p, s), 1 * 3 * 2 * 2 * 2);
    dj_tensor_free(&q);
    dj_tensor_free(&k);
    dj_tensor_free(&v);
    dj_tensor_free(&o);
    dj_tensor_free(&pr);
}

/* TimeSformer's divided attention: time then space, each a plain call;
 * probabilities sum to 1 per row. */
static void test_divided_space_time_attention(void) {
    int64_t s[4] = {2, 4, 5, 6};
    dj_tensor x = t_make(4, s, NULL), a = t_make(4, s, NULL), b = t_make(4, s, NULL);
    fill_rand(&x, 4);
    dj_attention_params pt = {3, DJ_ATTN_TIME, 0}, ps = {3, DJ_ATTN_SPACE, 0};
    int64_t nt = dj_attention_probs_numel(&pt, s), ns = dj_attention_probs_numel(&ps, s);
    dj_tensor prt = t_make(1, &nt, NULL), prs = t_make(1, &ns, NULL);
    CHECK(dj_attention_forward(NULL, &pt, &x, &x, &x, &prt, &a) == DJ_OK);
    CHECK(dj_attention_forward(NULL, &ps, &a, &a, &a, &prs, &b) == DJ_OK);
    int rows_ok = 1;
    for (int64_t r = 0; r < ns / 5; r++) {
        double sum = 0;
        for (int i = 0; i < 5; i++)
            sum += F(&prs)[r * 5 + i];
        rows_ok &= fabs(sum - 1.0) < 1e-5;
    }
    CHECK(rows_ok);
    /* backward without scratch is refused with the size to provide */
    dj_tensor g = t_make(4, s, NULL);
    CHECK(dj_attention_backward(NULL, &ps, &a, &a, &a, &prs, &b, &g, NULL, NULL) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_attention_scratch_bytes");
    /* dv only needs no scratch */
    CHECK(dj_attention_backward(NULL, &ps, &a, &a, &a, &prs, &b, NULL, NULL, &g) == DJ_OK);
    dj_attention_params bad = {4, DJ_ATTN_TIME, 0};
    CHECK(dj_attention_forward(NULL, &bad, &x, &x, &x, &prt, &a) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "D = 6 is not divisible into 4 heads");
    CHECK(dj_attention_forward(NULL, &ps, &x, &x, &x, &prt, &a) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "probs has");
    dj_tensor_free(&x);
    dj_tensor_free(&a);
    dj_tensor_free(&b);
    dj_tensor_free(&g);
    dj_tensor_free(&prt);
    dj_tensor_free(&prs);
}

int main(void) {
    DJ_RUN(test_activation_values_match_torch);
    DJ_RUN(test_activation_accuracy_over_range);
    DJ_RUN(test_activations_propagate_nan);
    DJ_RUN(test_empty_tensors_are_handled);
    DJ_RUN(test_softmax_values_and_stability);
    DJ_RUN(test_cross_entropy_values_match_torch);
    DJ_RUN(test_cross_entropy_rejects_bad_labels);
    DJ_RUN(test_topk_counts_ties_for_the_label);
    DJ_RUN(test_mse_values_and_zero_mask);
    DJ_RUN(test_dropout_mask_statistics_and_determinism);
    DJ_RUN(test_reshape_infers_and_rejects);
    DJ_RUN(test_permute_video_to_tokens_round_trip);
    DJ_RUN(test_concat_errors_name_shapes);
    DJ_RUN(test_broadcast_and_shape_errors);
    DJ_RUN(test_bias_act_optional_gradients_agree);
    DJ_RUN(test_attention_uniform_is_mean);
    DJ_RUN(test_divided_space_time_attention);
    return dj_test_finish();
}
