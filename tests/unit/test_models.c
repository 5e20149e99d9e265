/* test_models.c — model files build the right graphs: torchvision's names
 * and shapes and parameter counts, forward/backward of every architecture,
 * a tiny model that learns, and bad model files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "dojo/layers.h"
#include "dojo/model.h"
#include "support/test.h"

static dj_model *build(const char *name, dj_model_shape shape) {
    char path[1024];
    dj_config *c = NULL;
    dj_model *m = NULL;
    if (dj_model_find(name, path, sizeof path) != DJ_OK || dj_config_load(path, &c) != DJ_OK ||
        dj_model_create(c, &shape, &m) != DJ_OK)
        dj_test_fail_at(__FILE__, __LINE__, "building %s: %s", name, dj_error_message());
    dj_config_free(c);
    return m;
}

static void expect_param(dj_model *m, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d,
                         int64_t e) {
    dj_graph *g = dj_model_graph(m);
    int id = dj_graph_find(g, name);
    CHECK_MSG(id >= 0, "missing parameter %s", name);
    if (id < 0)
        return;
    int64_t want[5] = {a, b, c, d, e};
    CHECK_MSG(dj_tensor_expect(dj_graph_tensor(g, id), DJ_DTYPE_F32, ndim, want, name) == DJ_OK, "%s",
              dj_error_message());
}

static void test_torchvision_names_and_counts(void) {
    dj_model_shape shape = {1, 8, 32, 32, 400, 0.0f, 1};
    /* parameter counts of torchvision 0.14's models (400 classes) */
    struct {
        const char *name;
        int64_t params;
    } nets[] = {{"r3d_18", 33371472}, {"mc3_18", 11695440}, {"r2plus1d_18", 31505325}};
    for (size_t i = 0; i < 3; i++) {
        dj_model *m = build(nets[i].name, shape);
        if (!m)
            continue;
        CHECK_MSG(dj_model_num_params(m) == nets[i].params, "%s: %lld parameters, torchvision has %lld",
                  nets[i].name, (long long)dj_model_num_params(m), (long long)nets[i].params);
        expect_param(m, "fc.weight", 2, 400, 512, 0, 0, 0);
        expect_param(m, "fc.bias", 1, 400, 0, 0, 0, 0);
        expect_param(m, "layer4.1.conv2.1.running_var", 1, 512, 0, 0, 0, 0);
        expect_param(m, "layer2.0.downsample.0.weight", 5, 128, 64, 1, 1, 1);
        dj_model_free(m);
    }
    dj_model *r3d = build("r3d_18", shape);
    if (r3d) {
        expect_param(r3d, "stem.0.weight", 5, 64, 3, 3, 7, 7);
        expect_param(r3d, "stem.1.running_mean", 1, 64, 0, 0, 0, 0);
        expect_param(r3d, "layer1.0.conv1.0.weight", 5, 64, 64, 3, 3, 3);
        expect_param(r3d, "layer3.1.conv2.0.weight", 5, 256, 256, 3, 3, 3);
        dj_model_free(r3d);
    }
    dj_model *mc3 = build("mc3_18", shape);
    if (mc3) {
        expect_param(mc3, "layer1.0.conv1.0.weight", 5, 64, 64, 3, 3, 3);
        expect_param(mc3, "layer2.0.conv1.0.weight", 5, 128, 64, 1, 3, 3);
        dj_model_free(mc3);
    }
    dj_model *r21 = build("r2plus1d_18", shape);
    if (r21) {
        expect_param(r21, "stem.0.weight", 5, 45, 3, 1, 7, 7);
        expect_param(r21, "stem.3.weight", 5, 64, 45, 3, 1, 1);
        expect_param(r21, "stem.4.weight", 1, 64, 0, 0, 0, 0);
        /* midplanes = 64*64*27 / (64*9 + 3*64) = 144 */
        expect_param(r21, "layer1.0.conv1.0.0.weight", 5, 144, 64, 1, 3, 3);
        expect_param(r21, "layer1.0.conv1.0.1.running_var", 1, 144, 0, 0, 0, 0);
        expect_param(r21, "layer1.0.conv1.0.3.weight", 5, 64, 144, 3, 1, 1);
        /* layer2.0: 64 -> 128: 64*128*27 / (64*9 + 3*128) = 230 */
        expect_param(r21, "layer2.0.conv1.0.0.weight", 5, 230, 64, 1, 3, 3);
        expect_param(r21, "layer2.0.conv2.0.0.weight", 5, 230, 128, 1, 3, 3);
        dj_model_free(r21);
    }
}

static double run_step(dj_model *m, dj_exec *ex, int training) {
    dj_graph *g = dj_model_graph(m);
    if (dj_graph_forward(g, ex, training) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "forward: %s", dj_error_message());
        return NAN;
    }
    return *(const float *)dj_graph_tensor(g, dj_model_loss(m))->data;
}

static void fill_batch(dj_model *m, uint64_t seed) {
    dj_graph *g = dj_model_graph(m);
    dj_tensor *x = dj_graph_tensor(g, dj_model_input(m));
    dj_tensor *y = dj_graph_tensor(g, dj_model_labels(m));
    dj_rng r;
    dj_rng_seed(&r, seed, 0);
    float *xf = x->data;
    int64_t *yl = y->data;
    int64_t n = x->shape[0], per = dj_tensor_numel(x) / n;
    for (int64_t i = 0; i < n; i++) {
        yl[i] = (int64_t)(i % dj_model_num_classes(m));
        /* class-dependent brightness so the task is learnable */
        for (int64_t k = 0; k < per; k++)
            xf[i * per + k] = (float)(0.5 * dj_rng_normal(&r) + 0.3 * (double)yl[i]);
    }
}

static void test_every_arch_runs_forward_and_backward(void) {
    struct {
        const char *name;
        dj_model_shape shape;
    } cases[] = {
        {"r3d_mini", {2, 4, 32, 32, 5, 0.1f, 1}},
        {"r2plus1d_mini", {2, 4, 32, 32, 5, 0.0f, 1}},
        {"x3d_xs", {2, 4, 32, 32, 5, 0.0f, 1}},
        {"timesformer_tiny", {2, 2, 32, 32, 5, 0.0f, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dj_model *m = build(cases[i].name, cases[i].shape);
        if (!m)
            continue;
        dj_graph *g = dj_model_graph(m);
        CHECK_MSG(dj_graph_plan(g, 1) == DJ_OK, "%s: %s", cases[i].name, dj_error_message());
        CHECK(dj_model_init(m, 1) == DJ_OK);
        fill_batch(m, 2);
        size_t scratch_bytes = dj_graph_scratch_bytes(g);
        void *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
        dj_exec ex = {NULL, scratch, scratch_bytes};
        double loss = run_step(m, &ex, 1);
        CHECK_MSG(isfinite(loss) && loss > 0.5 * log(5.0) && loss < 3.0 * log(5.0), "%s: initial loss %g",
                  cases[i].name, loss);
        dj_graph_zero_grads(g);
        CHECK_MSG(dj_graph_backward(g, &ex, dj_model_loss(m), 1.0f) == DJ_OK, "%s: %s", cases[i].name,
                  dj_error_message());
        double norm = 0;
        int nparams = 0;
        for (int id = 0; id < dj_graph_num_tensors(g); id++) {
            dj_tensor *gr = dj_graph_grad(g, id);
            if (!gr || dj_graph_kind(g, id) != DJ_KIND_PARAM)
                continue;
            nparams++;
            const float *d = gr->data;
            for (int64_t k = 0; k < dj_tensor_numel(gr); k++)
                norm += (double)d[k] * d[k];
        }
        CHECK_MSG(nparams > 0 && isfinite(norm) && norm > 0, "%s: gradient norm %g", cases[i].name, norm);
        free(scratch);
        dj_model_free(m);
    }
}

static void test_tiny_model_learns(void) {
    dj_model_shape shape = {4, 4, 16, 16, 2, 0.0f, 1};
    dj_model *m = build("r3d_mini", shape);
    if (!m)
        return;
    dj_graph *g = dj_model_graph(m);
    CHECK(dj_graph_plan(g, 1) == DJ_OK);
    CHECK(dj_model_init(m, 7) == DJ_OK);
    dj_optim_config oc = dj_optim_defaults(DJ_OPTIM_SGD);
    oc.momentum = 0.9;
    dj_optimizer *opt;
    CHECK(dj_optimizer_create(g, &oc, &opt) == DJ_OK);
    size_t scratch_bytes = dj_graph_scratch_bytes(g);
    void *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
    dj_exec ex = {NULL, scratch, scratch_bytes};
    fill_batch(m, 3);
    double first = 0, last = 0;
    for (int step = 0; step < 25; step++) {
        double loss = run_step(m, &ex, 1);
        if (step == 0)
            first = loss;
        last = loss;
        dj_graph_zero_grads(g);
        CHECK(dj_graph_backward(g, &ex, dj_model_loss(m), 1.0f) == DJ_OK);
        CHECK(dj_optimizer_step(opt, &ex, 0.05, NULL) == DJ_OK);
    }
    CHECK_MSG(last < 0.3 * first, "loss went from %g to %g", first, last);
    dj_optimizer_free(opt);
    free(scratch);
    dj_model_free(m);
}

static void test_bad_model_files(void) {
    char path[1024];
    CHECK(dj_model_find("no_such_model", path, sizeof path) == DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), "r3d_18");
    CHECK(dj_model_find("../etc/passwd", path, sizeof path) == DJ_ERR_NOT_FOUND);
    CHECK(dj_model_find("bad name!", path, sizeof path) == DJ_ERR_INVALID);
    dj_model_shape shape = {1, 4, 32, 32, 0, 0.0f, 1};
    const char *bad[] = {
        "arch: video_resnet\nlayers: [1]\nwidths: [8]\nblok: conv3d\n",  /* misspelt key */
        "arch: resnet\n",                                               /* unknown arch */
        "layers: [1]\n",                                                /* no arch */
        "arch: video_resnet\nlayers: [1, 1]\nwidths: [8]\n",            /* counts differ */
        "arch: video_resnet\nlayers: [1]\nwidths: [8]\nblock: conv4d\n", /* bad block */
        "arch: video_resnet\nlayers: [1.5]\nwidths: [8]\n",             /* not whole */
        "arch: timesformer\ndim: 10\nheads: 3\n",                       /* heads do not divide */
        "arch: timesformer\npatch: [1, 7, 7]\n",                        /* input not whole patches */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dj_config *c;
        CHECK(dj_config_parse(bad[i], strlen(bad[i]), "bad.yaml", &c) == DJ_OK);
        dj_model *m = NULL;
        CHECK_MSG(dj_model_create(c, &shape, &m) == DJ_ERR_INVALID, "case %zu", i);
        CHECK(m == NULL);
        dj_config_free(c);
    }
    dj_config *c;
    CHECK(dj_config_parse(bad[0], strlen(bad[0]), "bad.yaml", &c) == DJ_OK);
    dj_model *m = NULL;
    dj_model_create(c, &shape, &m);
    CHECK_STR_CONTAINS(dj_error_message(), "unknown config key 'blok' (bad.yaml:4)");
    dj_config_free(c);
}

int main(void) {
    DJ_RUN(test_torchvision_names_and_counts);
    DJ_RUN(test_every_arch_runs_forward_and_backward);
    DJ_RUN(test_tiny_model_learns);
    DJ_RUN(test_bad_model_files);
    return dj_test_finish();
}
