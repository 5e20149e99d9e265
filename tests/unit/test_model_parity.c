/* test_model_parity.c — whole-network parity with torchvision: r3d_18,
 * mc3_18 and r2plus1d_18 built by dojo from configs/models, initialised with
 * the fixtures' hash init, must give torchvision's eval and train logits,
 * loss, every parameter gradient (norm, sum, 32 sampled values), and after
 * three SGD steps (momentum, weight decay) the same losses, weights and
 * batch-norm running statistics (tests/fixtures/nets, tools/README.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "dojo/model.h"
#include "dojo/safetensors.h"
#include "support/fixture.h"
#include "support/test.h"

enum { NPOS = DJ_FIXTURE_NPOS };

static double scalar(const dj_safetensors *st, const char *name) {
    double v = NAN;
    if (dj_safetensors_read_f64(st, name, 0, NULL, &v) != DJ_OK)
        dj_test_fail_at(__FILE__, __LINE__, "fixture tensor %s: %s", name, dj_error_message());
    return v;
}

/* The yardstick: how well float32 itself determines each compared
 * quantity. The fixture holds, per quantity, f32dev/KEY: the largest
 * distance from the float64 reference of float32 runs of PyTorch (its
 * default kernels, without oneDNN, the input scaled by 1 +- 1e-7 ... 3e-7
 * for the first step's quantities, up to 1 +- 1e-6 for the later steps;
 * tools/make_fixtures.py, f32_spread). Where float32 cannot meet a
 * tolerance (sums that cancel, batch norm over a few values, ReLU masks
 * that rounding flips, steps that amplify all of it) those runs scatter,
 * and dojo is held to YARD times the scatter instead; elsewhere the
 * relative tolerances hold. */
enum { YARD = 4 };

/* n values of a float64 or float32 fixture tensor (scalars: n = 1) as
 * doubles; 0 after a test failure */
static int read_values(const dj_safetensors *st, const char *key, int64_t n, double *out) {
    float f[64];
    int64_t shape[8] = {-1, -1, -1, -1, -1, -1, -1, -1}; /* any shape of n values */
    dj_st_view v;
    if (n > 64 || dj_safetensors_find(st, key, &v) != DJ_OK || v.numel != n || v.ndim > 8) {
        dj_test_fail_at(__FILE__, __LINE__, "fixture tensor %s: missing or not %lld values", key, (long long)n);
        return 0;
    }
    if (dj_safetensors_read_f64(st, key, v.ndim, shape, out) == DJ_OK)
        return 1;
    dj_error_clear();
    if (dj_safetensors_read_f32(st, key, v.ndim, shape, f) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "fixture tensor %s: %s", key, dj_error_message());
        return 0;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = f[i];
    return 1;
}

/* YARD * the largest f32dev/key over its n values (0 when the fixture has
 * no float32 runs) */
static double yard(const dj_safetensors *st, const char *key, int64_t n) {
    char dev[320];
    double d[64], m = 0;
    snprintf(dev, sizeof dev, "f32dev/%s", key);
    if (!dj_safetensors_has(st, dev) || !read_values(st, dev, n, d))
        return 0;
    for (int64_t i = 0; i < n; i++)
        m = d[i] > m ? d[i] : m;
    return YARD * m;
}

static double max2(double a, double b) { return a > b ? a : b; }

/* norm, sum and sampled values of `data` against fixture entries prefix/... */
static void check_summary(const dj_safetensors *st, const char *prefix, const char *name, const float *data,
                          int64_t n, double rtol, double value_tol) {
    char key[300];
    double norm = 0, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        norm += (double)data[i] * data[i];
        sum += data[i];
    }
    norm = sqrt(norm);
    snprintf(key, sizeof key, "%s/%s/norm", prefix, name);
    double want_norm = scalar(st, key);
    CHECK_MSG(fabs(norm - want_norm) <= max2(rtol * fabs(want_norm) + 1e-7, yard(st, key, 1)),
              "%s: %.9g vs torch %.9g", key, norm, want_norm);
    snprintf(key, sizeof key, "%s/%s/sum", prefix, name);
    double want_sum = scalar(st, key);
    /* a sum can cancel to ~0: compare it against the norm's scale */
    CHECK_MSG(fabs(sum - want_sum) <= max2(rtol * (fabs(want_norm) * sqrt((double)n)) + 1e-6, yard(st, key, 1)),
              "%s: %.9g vs torch %.9g", key, sum, want_sum);
    int64_t pos[NPOS];
    dj_fixture_hash_positions(name, n, pos);
    float at[NPOS];
    for (int j = 0; j < NPOS; j++)
        at[j] = data[pos[j]];
    snprintf(key, sizeof key, "%s/%s/at", prefix, name);
    /* single values: relative to the tensor's typical magnitude */
    double scale = want_norm / sqrt((double)n);
    dj_fixture_check_close(st, key, at, NPOS, value_tol, max2(value_tol * scale + 1e-7, yard(st, key, NPOS)));
}

/* Tolerances (parity_tol), relative, or YARD times the float32 scatter
 * where that is larger: 1e-4 (single sampled values at 10x that, against
 * the tensor's RMS), everything compared, three SGD steps included.
 * r2plus1d_18 is where the scatter matters: on this fixture's input it is
 * ill-conditioned in float32. The biases of the batch norms between its
 * factored convolutions get gradients that are sums cancelling to near
 * zero, batch norm over 8 values in layer 4 amplifies rounding, and from the
 * second step on its float32 trajectories part chaotically (PyTorch's own
 * runs: step-3 losses 0.78-0.84 against 0.888; a larger input or a 10x
 * smaller learning rate measured the same). So the scatter, not 1e-4, sets
 * 103 of its 113 gradient norms' tolerances and 162 of 187 step-3 ones.
 * dojo's distances measured 0.22x the scatter at the median gradient norm
 * (2.0x at most) and 0.47x at the median step-3 norm (1.9x at most). */
/* Logits near zero are compared against the logits' RMS: rtol of it (at
 * least 1e-5). */
static double logits_atol(const dj_safetensors *st, const char *name, double rtol) {
    float v[20];
    double s2 = 0;
    if (dj_safetensors_read_f32(st, name, 2, (int64_t[]){2, 10}, v) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "fixture tensor %s: %s", name, dj_error_message());
        return 1e-5;
    }
    for (int i = 0; i < 20; i++)
        s2 += (double)v[i] * v[i];
    double a = rtol * sqrt(s2 / 20);
    return a > 1e-5 ? a : 1e-5;
}

typedef struct parity_tol {
    double rtol;       /* logits, the first loss */
    double grad_rtol;  /* gradient and step-3 norms and sums, the losses */
    double value_tol;  /* single sampled values, relative to the tensor's RMS */
    int compare_steps; /* compare the three SGD steps */
} parity_tol;

static void parity(const char *net, int algo, parity_tol tol) {
    double rtol = tol.rtol, value_tol = tol.value_tol;
    int compare_steps = tol.compare_steps;
    char rel[64];
    snprintf(rel, sizeof rel, "nets/%s.safetensors", net);
    dj_safetensors *st = dj_fixture_open(rel);
    if (!st)
        return;
    int nparams = 0;
    dj_fixture_param *params = dj_fixture_params(st, &nparams);
    char path[1024];
    dj_config *cfg = NULL;
    dj_model *m = NULL;
    dj_model_shape shape = {2, 8, 32, 32, 10, 0.0f, 1};
    if (dj_model_find(net, path, sizeof path) != DJ_OK || dj_config_load(path, &cfg) != DJ_OK ||
        dj_model_create(cfg, &shape, &m) != DJ_OK ||
        (dj_graph_set_conv_algo(dj_model_graph(m), algo), dj_graph_plan(dj_model_graph(m), 1)) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "%s: %s", net, dj_error_message());
        goto done;
    }
    dj_graph *g = dj_model_graph(m);
    /* every torchvision entry exists with its shape, and nothing else */
    int ours = 0;
    for (int id = 0; id < dj_graph_num_tensors(g); id++)
        ours += dj_graph_kind(g, id) == DJ_KIND_PARAM || dj_graph_kind(g, id) == DJ_KIND_BUFFER;
    int theirs = 0;
    for (int i = 0; i < nparams; i++) {
        const dj_fixture_param *p = &params[i];
        if (p->is_int)
            continue; /* num_batches_tracked: dojo keeps no counter per layer */
        theirs++;
        int id = dj_graph_find(g, p->name);
        CHECK_MSG(id >= 0, "%s: no tensor %s", net, p->name);
        if (id < 0)
            continue;
        dj_tensor *t = dj_graph_tensor(g, id);
        CHECK_MSG(dj_tensor_expect(t, DJ_DTYPE_F32, p->ndim, p->shape, p->name) == DJ_OK, "%s", dj_error_message());
        float *w = t->data;
        if (!strcmp(p->init, "hash"))
            dj_fixture_hash_init(p->name, w, p->numel, p->scale);
        else
            for (int64_t k = 0; k < p->numel; k++)
                w[k] = !strcmp(p->init, "ones") ? 1.0f : 0.0f;
    }
    CHECK_EQ_INT(ours, theirs);
    dj_tensor *x = dj_graph_tensor(g, dj_model_input(m));
    dj_fixture_hash_init("input", x->data, dj_tensor_numel(x), 1.0f);
    CHECK(dj_safetensors_read_i64(st, "labels", 1, (int64_t[]){2}, dj_graph_tensor(g, dj_model_labels(m))->data) ==
          DJ_OK);

    size_t scratch_bytes = dj_graph_scratch_bytes(g);
    void *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
    dj_threadpool *pool = NULL;
    CHECK(dj_threadpool_create(2, &pool) == DJ_OK);
    dj_exec ex = {pool, scratch, scratch_bytes};
    const float *logits = dj_graph_tensor(g, dj_model_logits(m))->data;

    CHECK(dj_graph_forward(g, &ex, 0) == DJ_OK);
    dj_fixture_check_close(st, "logits_eval", logits, 20, rtol,
                           max2(logits_atol(st, "logits_eval", rtol), yard(st, "logits_eval", 20)));

    dj_optim_config oc = dj_optim_defaults(DJ_OPTIM_SGD);
    oc.momentum = 0.9;
    oc.weight_decay = 1e-4;
    dj_optimizer *opt = NULL;
    CHECK(dj_optimizer_create(g, &oc, &opt) == DJ_OK);
    double losses[3];
    for (int step = 0; step < 3 && opt; step++) {
        dj_graph_zero_grads(g);
        CHECK(dj_graph_forward(g, &ex, 1) == DJ_OK);
        losses[step] = *(const float *)dj_graph_tensor(g, dj_model_loss(m))->data;
        if (step == 0) {
            dj_fixture_check_close(st, "logits", logits, 20, rtol,
                                   max2(logits_atol(st, "logits", rtol), yard(st, "logits", 20)));
            CHECK_CLOSE(losses[0], scalar(st, "loss"), 1e-5, yard(st, "loss", 1));
        }
        CHECK(dj_graph_backward(g, &ex, dj_model_loss(m), 1.0f) == DJ_OK);
        if (step == 0)
            for (int i = 0; i < nparams; i++)
                if (params[i].trainable) {
                    dj_tensor *gr = dj_graph_grad(g, dj_graph_find(g, params[i].name));
                    if (gr)
                        check_summary(st, "grad", params[i].name, gr->data, params[i].numel, tol.grad_rtol,
                                      value_tol);
                }
        CHECK(dj_optimizer_step(opt, &ex, 0.01, NULL) == DJ_OK);
    }
    double want[3];
    CHECK(dj_safetensors_read_f64(st, "losses", 1, (int64_t[]){3}, want) == DJ_OK);
    if (!compare_steps)
        goto cleanup;
    double dev[3] = {0, 0, 0};
    if (dj_safetensors_has(st, "f32dev/losses"))
        read_values(st, "f32dev/losses", 3, dev);
    for (int s = 0; s < 3; s++)
        CHECK_MSG(fabs(losses[s] - want[s]) <= max2(tol.grad_rtol * fabs(want[s]), YARD * dev[s]),
                  "%s: loss %d: %.9g vs torch %.9g (float32 scatter %.3g)", net, s, losses[s], want[s], dev[s]);
    for (int i = 0; i < nparams; i++) {
        if (params[i].is_int)
            continue;
        int id = dj_graph_find(g, params[i].name);
        if (id >= 0)
            check_summary(st, "step3", params[i].name, dj_graph_tensor(g, id)->data, params[i].numel, tol.grad_rtol,
                          value_tol);
    }
cleanup:
    dj_optimizer_free(opt);
    dj_threadpool_free(pool);
    free(scratch);
done:
    dj_model_free(m);
    dj_config_free(cfg);
    free(params);
    dj_safetensors_close(st);
}

/* With the implicit GEMM (the direct sum, as PyTorch's float64 reference
 * computes it) everything is compared at the tolerances above. */
static void test_r3d_18(void) { parity("r3d_18", DJ_CONV_GEMM, (parity_tol){1e-4, 1e-4, 1e-3, 1}); }
static void test_mc3_18(void) { parity("mc3_18", DJ_CONV_GEMM, (parity_tol){1e-4, 1e-4, 1e-3, 1}); }
static void test_r2plus1d_18(void) { parity("r2plus1d_18", DJ_CONV_GEMM, (parity_tol){1e-4, 1e-4, 1e-3, 1}); }

/* With Winograd (dojo's default where it pays: every 3x3x3 stride-1 conv of
 * these networks but the stem) the forward pass, a continuous function of
 * the rounding, keeps the tolerances above; the gradients do not have to.
 * Winograd's float32 results differ from the exact sums by ~2e-6 of their
 * RMS (tested in test_winograd.c) instead of ~3e-7, and on this fixture's
 * 2 x 64 x 8 x 16 x 16 layer-1 activations some pre-activations lie that
 * close to zero: their ReLU masks flip, a step change in the gradient.
 * Measured: sampled gradient values within 2.8e-3 (r3d_18) and 5.0e-3
 * (mc3_18) of their tensor's RMS, norms within 3.5e-4, step-3 weights
 * within 5.5e-3 and 1.5e-4 (PyTorch's own float32 run stays within 3e-5 of
 * the reference on r3d_18). The gradients and steps are compared at twice
 * that scale. */
static void test_r3d_18_winograd(void) { parity("r3d_18", DJ_CONV_AUTO, (parity_tol){1e-4, 2e-3, 1e-2, 1}); }
static void test_mc3_18_winograd(void) { parity("mc3_18", DJ_CONV_AUTO, (parity_tol){1e-4, 2e-3, 1e-2, 1}); }
static void test_r2plus1d_18_winograd(void) {
    parity("r2plus1d_18", DJ_CONV_AUTO, (parity_tol){1e-4, 2e-3, 1e-2, 1});
}

int main(void) {
    DJ_RUN(test_r3d_18);
    DJ_RUN(test_mc3_18);
    DJ_RUN(test_r2plus1d_18);
    DJ_RUN(test_r3d_18_winograd);
    DJ_RUN(test_mc3_18_winograd);
    DJ_RUN(test_r2plus1d_18_winograd);
    return dj_test_finish();
}
