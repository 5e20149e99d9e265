/* test_fixtures.c — the committed PyTorch fixtures are complete and
 * well-formed (the names and keys tools/README.md promises), the C hash init
 * equals the Python one bit for bit, and the simplest operator fixtures
 * agree with their definitions (so the tensor roles are what the README says). */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dojo/safetensors.h"
#include "support/fixture.h"
#include "support/test.h"

static const char *const OP_CASES[] = {
    "conv3d_k3_pad1", "conv3d_stride2", "conv3d_k133", "conv3d_k311", "conv3d_stem7", "conv3d_dilation2",
    "conv3d_groups2", "conv3d_depthwise", "batch_norm_train", "batch_norm_eval", "layer_norm", "group_norm",
    "relu", "gelu", "gelu_tanh", "silu", "sigmoid", "softmax", "dropout_eval", "max_pool3d_k2s2",
    "max_pool3d_k3s2p1", "max_pool3d_k133", "avg_pool3d_k2s2", "avg_pool3d_k3s2p1",
    "adaptive_avg_pool3d_global", "adaptive_avg_pool3d_233", "add_broadcast", "mul_broadcast", "concat",
    "permute", "linear", "attention_over_t", "attention_over_s", "cross_entropy_ls", "mse_masked",
};
enum { N_OP_CASES = sizeof OP_CASES / sizeof OP_CASES[0] };

static const char *const NETS[] = {"r3d_18", "mc3_18", "r2plus1d_18"};

/* ------------------------------------------------------------------ */
/* hash init parity                                                     */

static void test_hash_known_values(void) {
    /* FNV-1a 64 of "" and "a" are published constants */
    CHECK(dj_fixture_fnv1a64("") == 0xCBF29CE484222325ull);
    CHECK(dj_fixture_fnv1a64("a") == 0xAF63DC4C8601EC8Cull);
    float v[64];
    dj_fixture_hash_init("w", v, 64, 0.5f);
    int distinct = 0;
    for (int i = 0; i < 64; i++) {
        CHECK(v[i] >= -0.5f && v[i] < 0.5f);
        CHECK(v[i] == dj_fixture_hash_value("w", i, 0.5f));
        distinct += i > 0 && v[i] != v[i - 1];
    }
    CHECK(distinct > 60);
    float other[4];
    dj_fixture_hash_init("w2", other, 4, 0.5f);
    CHECK(memcmp(v, other, sizeof other) != 0);
}

static void test_hash_init_matches_python(void) {
    dj_safetensors *st = dj_fixture_open("hash_init.safetensors");
    if (!st)
        return;
    cJSON *names = cJSON_Parse(dj_safetensors_metadata_get(st, "names") ? dj_safetensors_metadata_get(st, "names") : "");
    cJSON *scales = cJSON_Parse(dj_safetensors_metadata_get(st, "scales") ? dj_safetensors_metadata_get(st, "scales") : "");
    CHECK(cJSON_GetArraySize(names) == 4 && cJSON_GetArraySize(scales) == 4);
    const cJSON *s = scales ? scales->child : NULL;
    for (const cJSON *n = names ? names->child : NULL; n && s; n = n->next, s = s->next) {
        float scale = strtof(s->valuestring, NULL);
        float want[1000], got[1000];
        int64_t wpos[DJ_FIXTURE_NPOS], gpos[DJ_FIXTURE_NPOS], shape[1] = {1000}, pshape[1] = {DJ_FIXTURE_NPOS};
        char key[256];
        snprintf(key, sizeof key, "values/%s", n->valuestring);
        CHECK(dj_safetensors_read_f32(st, key, 1, shape, want) == DJ_OK);
        dj_fixture_hash_init(n->valuestring, got, 1000, scale);
        CHECK_MSG(memcmp(want, got, sizeof got) == 0, "hash init of %s differs from Python", n->valuestring);
        snprintf(key, sizeof key, "pos/%s", n->valuestring);
        CHECK(dj_safetensors_read_i64(st, key, 1, pshape, wpos) == DJ_OK);
        dj_fixture_hash_positions(n->valuestring, 1000, gpos);
        CHECK_MSG(memcmp(wpos, gpos, sizeof gpos) == 0, "hash positions of %s differ", n->valuestring);
    }
    cJSON_Delete(names);
    cJSON_Delete(scales);
    dj_safetensors_close(st);
}

/* Every hash-initialised state entry of every network: positions and the
 * values there equal C's, the scale follows the documented rule, and the
 * input is C's hash init of "input". */
static void test_net_hash_init_parity(void) {
    for (int k = 0; k < 3; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "nets/%s.safetensors", NETS[k]);
        dj_safetensors *st = dj_fixture_open(rel);
        if (!st)
            continue;
        int n;
        dj_fixture_param *params = dj_fixture_params(st, &n);
        int hashed = 0;
        for (int i = 0; i < n; i++) {
            const dj_fixture_param *p = &params[i];
            if (strcmp(p->init, "hash") != 0)
                continue;
            hashed++;
            if (p->ndim >= 2 && strstr(p->name, "weight"))
                CHECK_MSG(p->scale == dj_fixture_fan_in_scale(p->numel / p->shape[0]), "%s: scale %.9g", p->name,
                          p->scale);
            char key[256];
            int64_t want_pos[DJ_FIXTURE_NPOS], pos[DJ_FIXTURE_NPOS], shape[1] = {DJ_FIXTURE_NPOS};
            float want[DJ_FIXTURE_NPOS];
            snprintf(key, sizeof key, "pos/%s", p->name);
            CHECK(dj_safetensors_read_i64(st, key, 1, shape, want_pos) == DJ_OK);
            snprintf(key, sizeof key, "init/%s/at", p->name);
            CHECK(dj_safetensors_read_f32(st, key, 1, shape, want) == DJ_OK);
            dj_fixture_hash_positions(p->name, p->numel, pos);
            int same = memcmp(pos, want_pos, sizeof pos) == 0;
            for (int j = 0; same && j < DJ_FIXTURE_NPOS; j++)
                same = dj_fixture_hash_value(p->name, pos[j], p->scale) == want[j];
            CHECK_MSG(same, "%s %s: C hash init differs from the fixture", NETS[k], p->name);
        }
        CHECK(hashed > 60);
        /* the input is hash init "input" with scale 1, every element */
        int64_t ishape[5] = {2, 3, 8, 32, 32};
        float *want = malloc(sizeof(float) * 49152), *got = malloc(sizeof(float) * 49152);
        CHECK(dj_safetensors_read_f32(st, "input", 5, ishape, want) == DJ_OK);
        dj_fixture_hash_init("input", got, 49152, 1.0f);
        CHECK(memcmp(want, got, sizeof(float) * 49152) == 0);
        free(want);
        free(got);
        free(params);
        dj_safetensors_close(st);
    }
}

/* ------------------------------------------------------------------ */
/* well-formedness                                                      */

static int has(const dj_safetensors *st, const char *fmt, const char *name) {
    char key[300];
    snprintf(key, sizeof key, fmt, name);
    int ok = dj_safetensors_has(st, key);
    if (!ok)
        dj_test_fail_at(__FILE__, __LINE__, "%s: no tensor %s", dj_safetensors_path(st), key);
    return ok;
}

static double scalar(const dj_safetensors *st, const char *fmt, const char *name) {
    char key[300];
    double v = NAN;
    snprintf(key, sizeof key, fmt, name);
    if (dj_safetensors_read_f64(st, key, 0, NULL, &v) != DJ_OK)
        dj_test_fail_at(__FILE__, __LINE__, "%s", dj_error_message());
    return v;
}

static const dj_fixture_param *find_param(const dj_fixture_param *p, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0)
            return &p[i];
    return NULL;
}

static void check_net_file(const char *arch, int expect_entries) {
    char rel[128];
    snprintf(rel, sizeof rel, "nets/%s.safetensors", arch);
    dj_safetensors *st = dj_fixture_open(rel);
    if (!st)
        return;
    static const char *const keys[] = {"model", "num_classes", "input_shape", "labels", "params", "sgd", "loss",
                                       "precision", "hash_init", "torch_version"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK_MSG(dj_safetensors_metadata_get(st, keys[i]) != NULL, "%s: no metadata %s", arch, keys[i]);
    int64_t ishape[5] = {2, 3, 8, 32, 32}, lshape[2] = {2, 10}, two[1] = {2}, three[1] = {3};
    float logits[20], logits_eval[20];
    int64_t labels[2];
    double losses[3];
    dj_st_view iv;
    CHECK(dj_safetensors_find(st, "input", &iv) == DJ_OK && iv.ndim == 5 && iv.dtype == DJ_ST_F32 &&
          memcmp(iv.shape, ishape, sizeof ishape) == 0);
    CHECK(dj_safetensors_read_f32(st, "logits", 2, lshape, logits) == DJ_OK);
    CHECK(dj_safetensors_read_f32(st, "logits_eval", 2, lshape, logits_eval) == DJ_OK);
    CHECK(dj_safetensors_read_i64(st, "labels", 1, two, labels) == DJ_OK && labels[0] == 3 && labels[1] == 7);
    CHECK(dj_safetensors_read_f64(st, "losses", 1, three, losses) == DJ_OK);
    double loss = scalar(st, "%s", "loss");
    CHECK(loss == losses[0]);
    /* the loss is the cross-entropy of the stored logits (float32-rounded) */
    double ce = 0;
    for (int b = 0; b < 2; b++) {
        double m = -INFINITY, z = 0;
        for (int c = 0; c < 10; c++)
            m = fmax(m, logits[b * 10 + c]);
        for (int c = 0; c < 10; c++)
            z += exp(logits[b * 10 + c] - m);
        ce += (m + log(z) - logits[b * 10 + labels[b]]) / 2;
    }
    CHECK_CLOSE(ce, loss, 1e-5, 1e-6);
    CHECK(losses[2] < losses[1] && losses[1] < losses[0]);
    CHECK_EQ_INT(dj_fixture_check_close(st, "logits", logits, 20, 0.0, 0.0), 0);
    /* train and eval logits differ (batch vs running statistics) */
    CHECK(fabsf(logits[0] - logits_eval[0]) > 1e-3f);
    int n;
    dj_fixture_param *params = dj_fixture_params(st, &n);
    CHECK_EQ_INT(n, expect_entries);
    int trainable = 0;
    for (int i = 0; i < n; i++) {
        const dj_fixture_param *p = &params[i];
        has(st, "step3/%s/norm", p->name);
        has(st, "step3/%s/sum", p->name);
        has(st, "step3/%s/at", p->name);
        if (p->trainable) {
            trainable++;
            has(st, "grad/%s/norm", p->name);
            has(st, "grad/%s/sum", p->name);
            has(st, "grad/%s/at", p->name);
            CHECK_MSG(scalar(st, "grad/%s/norm", p->name) > 0, "%s: zero gradient for %s", arch, p->name);
        }
        if (strcmp(p->init, "hash") == 0) {
            has(st, "pos/%s", p->name);
            has(st, "init/%s/at", p->name);
        }
        if (strstr(p->name, "num_batches_tracked"))
            CHECK(p->is_int && scalar(st, "step3/%s/sum", p->name) == 3.0); /* three train forwards */
        if (strstr(p->name, "running_var"))
            CHECK(strcmp(p->init, "ones") == 0 && scalar(st, "step3/%s/sum", p->name) > 0);
    }
    CHECK(trainable > 30);
    const dj_fixture_param *fc = find_param(params, n, "fc.weight");
    CHECK(fc && fc->ndim == 2 && fc->shape[0] == 10 && fc->shape[1] == 512 && fc->trainable);
    const dj_fixture_param *stem = find_param(params, n, "stem.0.weight");
    CHECK(stem && stem->ndim == 5 && stem->shape[1] == 3);
    CHECK(find_param(params, n, "layer4.1.conv2.1.running_mean") || find_param(params, n, "layer4.1.conv2.1.bias"));
    CHECK(find_param(params, n, "layer2.0.downsample.0.weight") != NULL);
    free(params);
    dj_safetensors_close(st);
}

static void test_net_fixtures_well_formed(void) {
    check_net_file("r3d_18", 122);
    check_net_file("mc3_18", 122);
    check_net_file("r2plus1d_18", 224);
}

/* Per-op required tensors beyond inputs, out, dout and gradients. */
static void check_op_extras(const dj_safetensors *st, const char *op) {
    if (strcmp(op, "batch_norm") == 0) {
        has(st, "%s_before", "running_mean");
        has(st, "%s_before", "running_var");
        has(st, "%s_after", "running_mean");
        has(st, "%s_after", "running_var");
    }
    dj_st_view out, v;
    CHECK(dj_safetensors_find(st, "out", &out) == DJ_OK);
    if (strcmp(op, "cross_entropy") == 0 || strcmp(op, "mse_masked") == 0)
        CHECK_MSG(out.ndim == 0, "%s: a loss is a 0-d tensor", dj_safetensors_path(st));
    if (strcmp(op, "cross_entropy") == 0)
        CHECK(dj_safetensors_find(st, "labels", &v) == DJ_OK && v.dtype == DJ_ST_I64 && v.ndim == 1);
    if (strcmp(op, "attention") == 0 || strcmp(op, "gelu") == 0 || strcmp(op, "dropout") == 0) {
        CHECK(dj_safetensors_find(st, strcmp(op, "attention") == 0 ? "q" : "x", &v) == DJ_OK);
        CHECK(v.ndim == out.ndim && memcmp(v.shape, out.shape, sizeof v.shape) == 0);
    }
}

static void check_op_file(const char *case_name) {
    char rel[200];
    snprintf(rel, sizeof rel, "ops/%s.safetensors", case_name);
    dj_safetensors *st = dj_fixture_open(rel);
    if (!st)
        return;
    const char *op = dj_safetensors_metadata_get(st, "op");
    const char *cs = dj_safetensors_metadata_get(st, "case");
    CHECK_MSG(op && cs && strcmp(cs, case_name) == 0, "%s: metadata op/case", case_name);
    CHECK(dj_safetensors_metadata_get(st, "seed") && dj_safetensors_metadata_get(st, "reference"));
    cJSON *params = cJSON_Parse(dj_safetensors_metadata_get(st, "params") ? dj_safetensors_metadata_get(st, "params") : "");
    CHECK_MSG(cJSON_IsObject(params), "%s: params is not a JSON object", case_name);
    cJSON_Delete(params);
    cJSON *inputs = cJSON_Parse(dj_safetensors_metadata_get(st, "inputs") ? dj_safetensors_metadata_get(st, "inputs") : "");
    cJSON *grads = cJSON_Parse(dj_safetensors_metadata_get(st, "grads") ? dj_safetensors_metadata_get(st, "grads") : "");
    CHECK_MSG(cJSON_IsArray(inputs) && cJSON_GetArraySize(inputs) > 0 && cJSON_IsObject(grads), "%s: inputs/grads",
              case_name);
    dj_st_view out, dout, in, g;
    CHECK(dj_safetensors_find(st, "out", &out) == DJ_OK && dj_safetensors_find(st, "dout", &dout) == DJ_OK);
    CHECK(out.ndim == dout.ndim && out.numel == dout.numel && out.dtype == DJ_ST_F32);
    for (const cJSON *i = inputs ? inputs->child : NULL; i; i = i->next)
        CHECK_MSG(cJSON_IsString(i) && dj_safetensors_has(st, i->valuestring), "%s: input missing", case_name);
    int ngrads = 0;
    for (const cJSON *m = grads ? grads->child : NULL; m; m = m->next, ngrads++) {
        CHECK(cJSON_IsString(m));
        if (!cJSON_IsString(m) || dj_safetensors_find(st, m->string, &in) != DJ_OK ||
            dj_safetensors_find(st, m->valuestring, &g) != DJ_OK) {
            dj_test_fail_at(__FILE__, __LINE__, "%s: gradient %s missing", case_name, m->string);
            continue;
        }
        CHECK_MSG(in.ndim == g.ndim && memcmp(in.shape, g.shape, sizeof in.shape) == 0, "%s: %s shape", case_name,
                  m->valuestring);
    }
    CHECK_MSG(ngrads > 0, "%s: no gradients", case_name);
    CHECK_EQ_INT(dj_safetensors_count(st), 2 + cJSON_GetArraySize(inputs) + ngrads +
                                               (op && strcmp(op, "batch_norm") == 0 ? 4 : 0));
    if (op)
        check_op_extras(st, op);
    cJSON_Delete(inputs);
    cJSON_Delete(grads);
    dj_safetensors_close(st);
}

static void test_op_fixtures_well_formed(void) {
    for (int i = 0; i < N_OP_CASES; i++)
        check_op_file(OP_CASES[i]);
    /* and no stray file that the list (and the README) does not know */
    char dir[1200];
    if (!dj_fixture_path("ops", dir, sizeof dir))
        return;
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int files = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        int known = 0;
        for (int i = 0; i < N_OP_CASES; i++) {
            char want[200];
            snprintf(want, sizeof want, "%s.safetensors", OP_CASES[i]);
            known |= strcmp(want, e->d_name) == 0;
        }
        CHECK_MSG(known, "unexpected fixture ops/%s", e->d_name);
    }
    if (d)
        closedir(d);
    CHECK_EQ_INT(files, N_OP_CASES);
}

/* ------------------------------------------------------------------ */
/* the simplest cases agree with their definitions                      */

static float *load(const dj_safetensors *st, const char *name, int64_t *n) {
    dj_st_view v;
    *n = 0;
    if (dj_safetensors_find(st, name, &v) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "%s", dj_error_message());
        return calloc(1, sizeof(float));
    }
    float *x = malloc(sizeof(float) * (size_t)(v.numel ? v.numel : 1));
    CHECK(dj_safetensors_read_f32(st, name, v.ndim, v.shape, x) == DJ_OK);
    *n = v.numel;
    return x;
}

static void test_relu_and_dropout_fixtures_match_definition(void) {
    const char *cases[2] = {"ops/relu.safetensors", "ops/dropout_eval.safetensors"};
    for (int c = 0; c < 2; c++) {
        dj_safetensors *st = dj_fixture_open(cases[c]);
        if (!st)
            continue;
        int64_t n, n2;
        float *x = load(st, "x", &n), *out = load(st, "out", &n2), *dout = load(st, "dout", &n2);
        float *dx = load(st, "dx", &n2);
        CHECK(n == 120 && n2 == n);
        for (int64_t i = 0; i < n; i++) {
            float y = c == 0 ? (x[i] > 0 ? x[i] : 0) : x[i];
            float g = c == 0 ? (x[i] > 0 ? dout[i] : 0) : dout[i];
            CHECK(out[i] == y && dx[i] == g);
        }
        free(x), free(out), free(dout), free(dx);
        dj_safetensors_close(st);
    }
}

static void test_permute_and_concat_fixtures_match_definition(void) {
    dj_safetensors *st = dj_fixture_open("ops/permute.safetensors");
    if (st) {
        int64_t n;
        float *x = load(st, "x", &n), *out = load(st, "out", &n), *dout = load(st, "dout", &n), *dx = load(st, "dx", &n);
        /* x (2,3,4,5) -> out (2,4,5,1->3): out[a][c][d][b] = x[a][b][c][d] */
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 4; c++)
                    for (int d = 0; d < 5; d++) {
                        int xi = ((a * 3 + b) * 4 + c) * 5 + d, oi = ((a * 4 + c) * 5 + d) * 3 + b;
                        CHECK(out[oi] == x[xi] && dx[xi] == dout[oi]);
                    }
        free(x), free(out), free(dout), free(dx);
        dj_safetensors_close(st);
    }
    st = dj_fixture_open("ops/concat.safetensors");
    if (st) {
        int64_t n;
        float *a = load(st, "a", &n), *b = load(st, "b", &n), *out = load(st, "out", &n);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 8; j++)
                for (int k = 0; k < 4; k++)
                    CHECK(out[(i * 8 + j) * 4 + k] == (j < 3 ? a[(i * 3 + j) * 4 + k] : b[(i * 5 + j - 3) * 4 + k]));
        free(a), free(b), free(out);
        dj_safetensors_close(st);
    }
}

static void test_batch_norm_running_stats_match_definition(void) {
    dj_safetensors *st = dj_fixture_open("ops/batch_norm_train.safetensors");
    if (!st)
        return;
    int64_t n;
    float *x = load(st, "x", &n), *m0 = load(st, "running_mean_before", &n), *v0 = load(st, "running_var_before", &n);
    float *m1 = load(st, "running_mean_after", &n), *v1 = load(st, "running_var_after", &n);
    /* x (3,4,2,3,3): per channel over 3*18 = 54 values; unbiased variance */
    for (int c = 0; c < 4; c++) {
        double s = 0, s2 = 0;
        for (int b = 0; b < 3; b++)
            for (int i = 0; i < 18; i++)
                s += x[(b * 4 + c) * 18 + i];
        double mean = s / 54;
        for (int b = 0; b < 3; b++)
            for (int i = 0; i < 18; i++)
                s2 += pow(x[(b * 4 + c) * 18 + i] - mean, 2);
        CHECK_CLOSE(m1[c], 0.9 * m0[c] + 0.1 * mean, 1e-6, 1e-7);
        CHECK_CLOSE(v1[c], 0.9 * v0[c] + 0.1 * s2 / 53, 1e-6, 1e-7);
    }
    free(x), free(m0), free(v0), free(m1), free(v1);
    dj_safetensors_close(st);
}

int main(void) {
    DJ_RUN(test_hash_known_values);
    DJ_RUN(test_hash_init_matches_python);
    DJ_RUN(test_net_hash_init_parity);
    DJ_RUN(test_net_fixtures_well_formed);
    DJ_RUN(test_op_fixtures_well_formed);
    DJ_RUN(test_relu_and_dropout_fixtures_match_definition);
    DJ_RUN(test_permute_and_concat_fixtures_match_definition);
    DJ_RUN(test_batch_norm_running_stats_match_definition);
    return dj_test_finish();
}
