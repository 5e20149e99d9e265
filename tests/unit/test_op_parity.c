/* test_op_parity.c — every operator against PyTorch: the 35 cases of
 * tests/fixtures/ops (inputs, output, upstream gradient and every input
 * gradient computed by torch in float64, tools/README.md) run through dojo's
 * float32 operators, forward and backward. One table row per case. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dojo/dojo.h"
#include "dojo/ops_pointwise.h"
#include "dojo/ops_spatial.h"
#include "support/fixture.h"
#include "support/test.h"

enum { MAXT = 24 };

typedef struct pcase {
    dj_safetensors *st;
    cJSON *params;
    dj_tensor t[MAXT]; /* loaded inputs, by name order of the call */
    int nt;
    dj_exec ex;
    char scratch[1 << 20];
} pcase;

static pcase pc;

static dj_tensor *next_tensor(void) {
    if (pc.nt == MAXT) { /* a runner needing more is a bug in this file */
        fprintf(stderr, "test_op_parity: more than %d tensors in one case\n", MAXT);
        abort();
    }
    return &pc.t[pc.nt++];
}

static dj_tensor *load(const char *name) {
    dj_tensor *t = next_tensor();
    dj_dtype dt = strcmp(name, "labels") == 0 ? DJ_DTYPE_I64 : DJ_DTYPE_F32;
    if (dj_safetensors_load_tensor(pc.st, name, dt, t) != DJ_OK)
        dj_test_fail_at(__FILE__, __LINE__, "fixture tensor %s: %s", name, dj_error_message());
    return t;
}

static dj_tensor *zeros_like(const dj_tensor *x) {
    dj_tensor *t = next_tensor();
    dj_tensor_create(DJ_DTYPE_F32, x->ndim, x->shape, t);
    return t;
}

static void expect(const char *name, const dj_tensor *got) {
    dj_fixture_check_close(pc.st, name, got->data, dj_tensor_numel(got), 1e-4, 2e-5);
}

static int ints(const char *key, int *out, int n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(pc.params, key);
    for (int i = 0; i < n; i++)
        out[i] = cJSON_IsArray(a) ? (int)cJSON_GetArrayItem(a, i)->valuedouble : 0;
    return cJSON_IsArray(a);
}

static double num(const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pc.params, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* ---- one runner per operator family ---- */

static void run_conv3d(void) {
    dj_conv3d_params p;
    memset(&p, 0, sizeof p);
    ints("stride", p.stride, 3);
    ints("padding", p.padding, 3);
    ints("dilation", p.dilation, 3);
    p.groups = (int)num("groups");
    dj_tensor *x = load("x"), *w = load("weight");
    int has_bias = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pc.params, "bias"));
    dj_tensor *b = has_bias ? load("bias") : NULL;
    dj_tensor *dout = load("dout"), *out = zeros_like(dout);
    CHECK(dj_conv3d_scratch_bytes(&p, x, w, dj_threadpool_size(pc.ex.pool)) <= sizeof pc.scratch);
    CHECK(dj_conv3d_forward(&pc.ex, &p, x, w, b, out) == DJ_OK);
    expect("out", out);
    dj_tensor *dx = zeros_like(x), *dw = zeros_like(w), *db = b ? zeros_like(b) : NULL;
    CHECK(dj_conv3d_backward(&pc.ex, &p, x, w, dout, dx, dw, db) == DJ_OK);
    expect("dx", dx);
    expect("dweight", dw);
    if (db)
        expect("dbias", db);
}

static void run_linear(void) {
    dj_tensor *x = load("x"), *w = load("weight"), *b = load("bias"), *dout = load("dout"), *out = zeros_like(dout);
    CHECK(dj_linear_forward(&pc.ex, x, w, b, out) == DJ_OK);
    expect("out", out);
    dj_tensor *dx = zeros_like(x), *dw = zeros_like(w), *db = zeros_like(b);
    CHECK(dj_linear_backward(&pc.ex, x, w, dout, dx, dw, db) == DJ_OK);
    expect("dx", dx);
    expect("dweight", dw);
    expect("dbias", db);
}

static void run_batch_norm(void) {
    dj_tensor *x = load("x"), *w = load("weight"), *b = load("bias");
    dj_tensor *rm = load("running_mean_before"), *rv = load("running_var_before"), *dout = load("dout");
    dj_batchnorm_params p = {cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pc.params, "training")),
                             (float)num("momentum"), (float)num("eps")};
    dj_tensor *out = zeros_like(x), *sm = zeros_like(w), *si = zeros_like(w);
    CHECK(dj_batchnorm_forward(&pc.ex, &p, x, w, b, rm, rv, out, sm, si) == DJ_OK);
    expect("out", out);
    expect("running_mean_after", rm);
    expect("running_var_after", rv);
    dj_tensor *dx = zeros_like(x), *dw = zeros_like(w), *db = zeros_like(b);
    CHECK(dj_batchnorm_backward(&pc.ex, &p, x, w, sm, si, dout, dx, dw, db) == DJ_OK);
    expect("dx", dx);
    expect("dweight", dw);
    expect("dbias", db);
}

static void run_layer_norm(void) {
    dj_tensor *x = load("x"), *w = load("weight"), *b = load("bias"), *dout = load("dout");
    int64_t rows = dj_tensor_numel(x) / x->shape[x->ndim - 1];
    dj_tensor *out = zeros_like(x), *sm = next_tensor(), *si = next_tensor();
    dj_tensor_create(DJ_DTYPE_F32, 1, &rows, sm);
    dj_tensor_create(DJ_DTYPE_F32, 1, &rows, si);
    CHECK(dj_layernorm_forward(&pc.ex, 1, (float)num("eps"), x, w, b, out, sm, si) == DJ_OK);
    expect("out", out);
    dj_tensor *dx = zeros_like(x), *dw = zeros_like(w), *db = zeros_like(b);
    CHECK(dj_layernorm_backward(&pc.ex, 1, x, w, sm, si, dout, dx, dw, db) == DJ_OK);
    expect("dx", dx);
    expect("dweight", dw);
    expect("dbias", db);
}

static void run_group_norm(void) {
    dj_tensor *x = load("x"), *w = load("weight"), *b = load("bias"), *dout = load("dout");
    int groups = (int)num("groups");
    int64_t s[2] = {x->shape[0], groups};
    dj_tensor *out = zeros_like(x), *sm = next_tensor(), *si = next_tensor();
    dj_tensor_create(DJ_DTYPE_F32, 2, s, sm);
    dj_tensor_create(DJ_DTYPE_F32, 2, s, si);
    CHECK(dj_groupnorm_forward(&pc.ex, groups, (float)num("eps"), x, w, b, out, sm, si) == DJ_OK);
    expect("out", out);
    dj_tensor *dx = zeros_like(x), *dw = zeros_like(w), *db = zeros_like(b);
    CHECK(dj_groupnorm_backward(&pc.ex, groups, x, w, sm, si, dout, dx, dw, db) == DJ_OK);
    expect("dx", dx);
    expect("dweight", dw);
    expect("dbias", db);
}

static void run_act(dj_act act) {
    dj_tensor *x = load("x"), *dout = load("dout"), *out = zeros_like(x), *dx = zeros_like(x);
    CHECK(dj_act_forward(&pc.ex, act, x, out) == DJ_OK);
    expect("out", out);
    CHECK(dj_act_backward(&pc.ex, act, x, dout, dx) == DJ_OK);
    expect("dx", dx);
}
static void run_relu(void) { run_act(DJ_ACT_RELU); }
static void run_silu(void) { run_act(DJ_ACT_SILU); }
static void run_sigmoid(void) { run_act(DJ_ACT_SIGMOID); }
static void run_gelu(void) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(pc.params, "approximate");
    run_act(cJSON_IsString(a) && !strcmp(a->valuestring, "tanh") ? DJ_ACT_GELU_TANH : DJ_ACT_GELU);
}

static void run_softmax(void) {
    dj_tensor *x = load("x"), *dout = load("dout"), *out = zeros_like(x), *dx = zeros_like(x);
    CHECK(dj_softmax_forward(&pc.ex, x, out) == DJ_OK);
    expect("out", out);
    CHECK(dj_softmax_backward(&pc.ex, out, dout, dx) == DJ_OK);
    expect("dx", dx);
}

static void run_dropout(void) {
    dj_tensor *x = load("x"), *dout = load("dout"), *out = zeros_like(x), *dx = zeros_like(x);
    dj_dropout_params p = {(float)num("p"), 0, 1, 0};
    CHECK(dj_dropout_forward(&pc.ex, &p, x, out) == DJ_OK);
    expect("out", out);
    CHECK(dj_dropout_backward(&pc.ex, &p, dout, dx) == DJ_OK);
    expect("dx", dx);
}

static void pool_params(dj_pool3d_params *p) {
    memset(p, 0, sizeof *p);
    ints("kernel", p->kernel, 3);
    ints("stride", p->stride, 3);
    ints("padding", p->padding, 3);
}

static void run_max_pool(void) {
    dj_pool3d_params p;
    pool_params(&p);
    dj_tensor *x = load("x"), *dout = load("dout"), *out = zeros_like(dout), *idx = next_tensor();
    dj_tensor_create(DJ_DTYPE_I64, 5, dout->shape, idx);
    CHECK(dj_maxpool3d_forward(&pc.ex, &p, x, out, idx) == DJ_OK);
    expect("out", out);
    dj_tensor *dx = zeros_like(x);
    CHECK(dj_maxpool3d_backward(&pc.ex, &p, idx, dout, dx) == DJ_OK);
    expect("dx", dx);
}

static void run_avg_pool(void) {
    dj_pool3d_params p;
    pool_params(&p);
    p.exclude_pad = !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pc.params, "count_include_pad"));
    dj_tensor *x = load("x"), *dout = load("dout"), *out = zeros_like(dout), *dx = zeros_like(x);
    CHECK(dj_avgpool3d_forward(&pc.ex, &p, x, out) == DJ_OK);
    expect("out", out);
    CHECK(dj_avgpool3d_backward(&pc.ex, &p, dout, dx) == DJ_OK);
    expect("dx", dx);
}

static void run_adaptive(void) {
    dj_tensor *x = load("x"), *dout = load("dout"), *out = zeros_like(dout), *dx = zeros_like(x);
    CHECK(dj_adaptive_avgpool3d_forward(&pc.ex, x, out) == DJ_OK);
    expect("out", out);
    CHECK(dj_adaptive_avgpool3d_backward(&pc.ex, dout, dx) == DJ_OK);
    expect("dx", dx);
}

static void run_binary(int mul) {
    dj_tensor *a = load("a"), *b = load("b"), *dout = load("dout"), *out = zeros_like(dout);
    CHECK((mul ? dj_mul_forward : dj_add_forward)(&pc.ex, a, b, out) == DJ_OK);
    expect("out", out);
    dj_tensor *da = zeros_like(a), *db = zeros_like(b);
    CHECK((mul ? dj_mul_backward : dj_add_backward)(&pc.ex, a, b, dout, da, db) == DJ_OK);
    expect("da", da);
    expect("db", db);
}
static void run_add(void) { run_binary(0); }
static void run_mul(void) { run_binary(1); }

static void run_concat(void) {
    dj_tensor *a = load("a"), *b = load("b"), *dout = load("dout"), *out = zeros_like(dout);
    const dj_tensor *in[2] = {a, b};
    CHECK(dj_concat_forward(&pc.ex, (int)num("dim"), 2, in, out) == DJ_OK);
    expect("out", out);
    dj_tensor *da = zeros_like(a), *db = zeros_like(b);
    dj_tensor *d[2] = {da, db};
    CHECK(dj_concat_backward(&pc.ex, (int)num("dim"), 2, dout, d) == DJ_OK);
    expect("da", da);
    expect("db", db);
}

static void run_permute(void) {
    int perm[5];
    ints("dims", perm, 4);
    dj_tensor *x = load("x"), *dout = load("dout"), *out = zeros_like(dout), *dx = zeros_like(x);
    CHECK(dj_permute_forward(&pc.ex, perm, x, out) == DJ_OK);
    expect("out", out);
    CHECK(dj_permute_backward(&pc.ex, perm, dout, dx) == DJ_OK);
    expect("dx", dx);
}

static void run_attention(void) {
    const cJSON *axis = cJSON_GetObjectItemCaseSensitive(pc.params, "axis");
    dj_attention_params p = {(int)num("heads"), !strcmp(axis->valuestring, "T") ? DJ_ATTN_TIME : DJ_ATTN_SPACE, 0};
    dj_tensor *q = load("q"), *k = load("k"), *v = load("v"), *dout = load("dout"), *out = zeros_like(q);
    int64_t np = dj_attention_probs_numel(&p, q->shape);
    dj_tensor *probs = next_tensor();
    dj_tensor_create(DJ_DTYPE_F32, 1, &np, probs);
    CHECK(dj_attention_scratch_bytes(&p, q->shape, 1) <= sizeof pc.scratch);
    CHECK(dj_attention_forward(&pc.ex, &p, q, k, v, probs, out) == DJ_OK);
    expect("out", out);
    dj_tensor *dq = zeros_like(q), *dk = zeros_like(k), *dv = zeros_like(v);
    CHECK(dj_attention_backward(&pc.ex, &p, q, k, v, probs, dout, dq, dk, dv) == DJ_OK);
    expect("dq", dq);
    expect("dk", dk);
    expect("dv", dv);
}

static void run_cross_entropy(void) {
    dj_tensor *logits = load("logits"), *labels = load("labels"), *dout = load("dout");
    dj_cross_entropy_params p = {(float)num("label_smoothing")};
    float loss = 0;
    CHECK(dj_cross_entropy_forward(&pc.ex, &p, logits, labels, &loss) == DJ_OK);
    dj_fixture_check_close(pc.st, "out", &loss, 1, 1e-5, 1e-6);
    dj_tensor *dl = zeros_like(logits);
    CHECK(dj_cross_entropy_backward(&pc.ex, &p, logits, labels, *(const float *)dout->data, dl) == DJ_OK);
    expect("dlogits", dl);
}

static void run_mse(void) {
    dj_tensor *pred = load("pred"), *target = load("target"), *mask = load("mask"), *dout = load("dout");
    float loss = 0;
    CHECK(dj_mse_forward(&pc.ex, pred, target, mask, &loss) == DJ_OK);
    dj_fixture_check_close(pc.st, "out", &loss, 1, 1e-5, 1e-6);
    dj_tensor *dp = zeros_like(pred);
    CHECK(dj_mse_backward(&pc.ex, pred, target, mask, *(const float *)dout->data, dp, NULL) == DJ_OK);
    expect("dpred", dp);
}

static const struct {
    const char *op;
    void (*run)(void);
} runners[] = {
    {"conv3d", run_conv3d},         {"linear", run_linear},       {"batch_norm", run_batch_norm},
    {"layer_norm", run_layer_norm}, {"group_norm", run_group_norm}, {"relu", run_relu},
    {"silu", run_silu},             {"sigmoid", run_sigmoid},     {"gelu", run_gelu},
    {"softmax", run_softmax},       {"dropout", run_dropout},     {"max_pool3d", run_max_pool},
    {"avg_pool3d", run_avg_pool},   {"adaptive_avg_pool3d", run_adaptive}, {"add", run_add},
    {"mul", run_mul},               {"concat", run_concat},       {"permute", run_permute},
    {"attention", run_attention},   {"cross_entropy", run_cross_entropy}, {"mse_masked", run_mse},
};

static const char *cases[] = {
    "adaptive_avg_pool3d_233", "adaptive_avg_pool3d_global", "add_broadcast", "attention_over_s", "attention_over_t",
    "avg_pool3d_k2s2", "avg_pool3d_k3s2p1", "batch_norm_eval", "batch_norm_train", "concat", "conv3d_depthwise",
    "conv3d_dilation2", "conv3d_groups2", "conv3d_k133", "conv3d_k311", "conv3d_k3_pad1", "conv3d_stem7",
    "conv3d_stride2", "cross_entropy_ls", "dropout_eval", "gelu", "gelu_tanh", "group_norm", "layer_norm", "linear",
    "max_pool3d_k133", "max_pool3d_k2s2", "max_pool3d_k3s2p1", "mse_masked", "mul_broadcast", "permute", "relu",
    "sigmoid", "silu", "softmax",
};

static void run_case(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "ops/%s.safetensors", name);
    memset(&pc.t, 0, sizeof pc.t);
    pc.nt = 0;
    pc.st = dj_fixture_open(rel);
    if (!pc.st)
        return;
    const char *op = dj_safetensors_metadata_get(pc.st, "op");
    const char *params = dj_safetensors_metadata_get(pc.st, "params");
    pc.params = params ? cJSON_Parse(params) : NULL;
    pc.ex = (dj_exec){NULL, pc.scratch, sizeof pc.scratch};
    int found = 0;
    for (size_t i = 0; op && pc.params && i < sizeof runners / sizeof runners[0]; i++)
        if (!strcmp(runners[i].op, op)) {
            runners[i].run();
            found = 1;
        }
    CHECK_MSG(found, "%s: no runner for operator '%s'", name, op ? op : "?");
    for (int i = 0; i < pc.nt; i++)
        dj_tensor_free(&pc.t[i]);
    cJSON_Delete(pc.params);
    dj_safetensors_close(pc.st);
}

static void test_every_fixture_case(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("  case %s\n", cases[i]); /* names the case of any failure below it */
        run_case(cases[i]);
    }
}

int main(void) {
    DJ_RUN(test_every_fixture_case);
    return dj_test_finish();
}
