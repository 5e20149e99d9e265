/* models.c — the video architectures, built into a graph from a model file:
 * torchvision's VideoResNet family (r3d, mc3, r(2+1)d), X3D and a
 * TimeSformer-style transformer with divided space-time attention. */
#define _GNU_SOURCE
#include "dojo/model.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dojo/layers.h"
#include "dojo/rng.h"

enum { DJ_MAX_STAGES = 8 };

struct dj_model {
    dj_graph *g;
    int input, labels, logits, loss;
    char arch[32];
    int64_t num_classes;
    int transformer; /* init rule for linear layers */
};

/* ---- finding model files ---- */

static int dj_is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int dj_configs_dir(int which, char *dir, size_t size) {
    if (which == 0) {
        const char *env = getenv("DOJO_CONFIGS");
        if (!env || !env[0])
            return 0;
        snprintf(dir, size, "%s", env);
        return 1;
    }
    if (which == 1) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            return 0;
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (!slash)
            return 0;
        *slash = '\0';
        /* build/dojo and build/tests/x both reach the repository's configs */
        snprintf(dir, size, "%s/../configs", exe);
        char probe[PATH_MAX + 32];
        snprintf(probe, sizeof probe, "%s/models", dir);
        struct stat st;
        if (stat(probe, &st) != 0)
            snprintf(dir, size, "%s/../../configs", exe);
        return 1;
    }
    if (which == 2) {
        snprintf(dir, size, "configs");
        return 1;
    }
    return 0;
}

dj_status dj_model_find(const char *name, char *path, size_t size) {
    if (!name || !name[0])
        return dj_error_set(DJ_ERR_INVALID, "--model", "empty model name");
    size_t len = strlen(name);
    if (strchr(name, '/') || (len > 5 && (!strcmp(name + len - 5, ".yaml") || !strcmp(name + len - 5, ".json"))) ||
        (len > 4 && !strcmp(name + len - 4, ".yml"))) {
        if (!dj_is_file(name))
            return dj_error_set(DJ_ERR_NOT_FOUND, name, "model file not found");
        snprintf(path, size, "%s", name);
        return DJ_OK;
    }
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return dj_error_set(DJ_ERR_INVALID, name, "a model name has only a-z, 0-9, '_' and '-'");
    char dir[PATH_MAX];
    for (int w = 0; w < 3; w++) {
        if (!dj_configs_dir(w, dir, sizeof dir))
            continue;
        snprintf(path, size, "%s/models/%s.yaml", dir, name);
        if (dj_is_file(path))
            return DJ_OK;
    }
    char known[1024];
    dj_model_list(known, sizeof known);
    return dj_error_set(DJ_ERR_NOT_FOUND, name, "unknown model; known models: %s", known[0] ? known : "(none found)");
}

static int dj_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void dj_model_list(char *buf, size_t size) {
    char dir[PATH_MAX];
    buf[0] = '\0';
    for (int w = 0; w < 3; w++) {
        if (!dj_configs_dir(w, dir, sizeof dir))
            continue;
        char models[PATH_MAX + 16];
        snprintf(models, sizeof models, "%s/models", dir);
        DIR *d = opendir(models);
        if (!d)
            continue;
        char *names[128];
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) && n < 128) {
            size_t l = strlen(e->d_name);
            if (l > 5 && !strcmp(e->d_name + l - 5, ".yaml") && e->d_name[0] != '.' && (names[n] = strndup(e->d_name, l - 5)))
                n++;
        }
        closedir(d);
        qsort(names, (size_t)n, sizeof names[0], dj_cmp_str);
        size_t used = 0;
        for (int i = 0; i < n; i++) {
            if (used < size)
                used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
            free(names[i]);
        }
        return;
    }
}

/* ---- reading the model file ---- */

static dj_status dj_read_ints(dj_config *c, const char *key, int64_t *out, int max, int *count, int64_t lo,
                              int64_t hi) {
    double v[DJ_MAX_STAGES * 2];
    int n = 0;
    if (max > (int)(sizeof v / sizeof v[0]))
        max = (int)(sizeof v / sizeof v[0]);
    DJ_TRY(dj_config_get_doubles(c, key, v, max, &n));
    for (int i = 0; i < n; i++) {
        if (v[i] != floor(v[i]) || v[i] < (double)lo || v[i] > (double)hi)
            return dj_error_set(DJ_ERR_INVALID, key, "model file: values must be whole numbers in [%lld, %lld]",
                                (long long)lo, (long long)hi);
        out[i] = (int64_t)v[i];
    }
    *count = n;
    return DJ_OK;
}

static dj_status dj_read_int(dj_config *c, const char *key, int64_t *v, int64_t lo, int64_t hi) {
    DJ_TRY(dj_config_get_int(c, key, v));
    if (*v < lo || *v > hi)
        return dj_error_set(DJ_ERR_INVALID, key, "model file: %lld is outside [%lld, %lld]", (long long)*v,
                            (long long)lo, (long long)hi);
    return DJ_OK;
}

/* ---- VideoResNet (torchvision.models.video) ---- */

typedef enum dj_vr_block { DJ_VR_CONV3D, DJ_VR_NO_TEMPORAL, DJ_VR_2PLUS1D } dj_vr_block;

typedef struct dj_vr_spec {
    int r2plus1d_stem;
    int64_t stem_width, stem_mid;
    int n_stages;
    dj_vr_block block[DJ_MAX_STAGES];
    int64_t layers[DJ_MAX_STAGES], widths[DJ_MAX_STAGES];
    float bn_momentum, bn_eps;
} dj_vr_spec;

static dj_conv_spec dj_conv_k(int kt, int kh, int kw, int st, int sh, int sw, int pt, int ph, int pw) {
    dj_conv_spec s = dj_conv_same(kt, kh, kw);
    s.stride[0] = st, s.stride[1] = sh, s.stride[2] = sw;
    s.padding[0] = pt, s.padding[1] = ph, s.padding[2] = pw;
    return s;
}

/* torchvision's BatchNorm3d + ReLU pair as one node (its parameters keep
 * the batch norm's name; the backward pass recomputes its output). */
static int dj_bn_relu(dj_graph *g, const char *bn_name, int x, const dj_vr_spec *s) {
    return dj_layer_batchnorm_relu(g, bn_name, x, s->bn_momentum, s->bn_eps);
}

/* torchvision's conv builders: Conv3DSimple, Conv3DNoTemporal, Conv2Plus1D */
static int dj_vr_conv(dj_graph *g, const char *name, int x, dj_vr_block kind, int64_t cout, int64_t mid, int s,
                      const dj_vr_spec *spec) {
    char a[256], b[256];
    switch (kind) {
    case DJ_VR_CONV3D:
        return dj_layer_conv3d(g, name, x, cout, dj_conv_k(3, 3, 3, s, s, s, 1, 1, 1));
    case DJ_VR_NO_TEMPORAL:
        return dj_layer_conv3d(g, name, x, cout, dj_conv_k(1, 3, 3, 1, s, s, 0, 1, 1));
    case DJ_VR_2PLUS1D:
        snprintf(a, sizeof a, "%s.0", name);
        snprintf(b, sizeof b, "%s.1", name);
        x = dj_layer_conv3d(g, a, x, mid, dj_conv_k(1, 3, 3, 1, s, s, 0, 1, 1));
        x = dj_bn_relu(g, b, x, spec); /* and ReLU (torchvision's name.2) */
        snprintf(a, sizeof a, "%s.3", name);
        return dj_layer_conv3d(g, a, x, cout, dj_conv_k(3, 1, 1, s, 1, 1, 1, 0, 0));
    }
    return -1;
}

static int dj_vr_build(dj_graph *g, int x, const dj_vr_spec *s) {
    char n1[256], n3[256];
    if (s->r2plus1d_stem) {
        x = dj_layer_conv3d(g, "stem.0", x, s->stem_mid, dj_conv_k(1, 7, 7, 1, 2, 2, 0, 3, 3));
        x = dj_bn_relu(g, "stem.1", x, s);
        x = dj_layer_conv3d(g, "stem.3", x, s->stem_width, dj_conv_k(3, 1, 1, 1, 1, 1, 1, 0, 0));
        x = dj_bn_relu(g, "stem.4", x, s);
    } else {
        x = dj_layer_conv3d(g, "stem.0", x, s->stem_width, dj_conv_k(3, 7, 7, 1, 2, 2, 1, 3, 3));
        x = dj_bn_relu(g, "stem.1", x, s);
    }
    int64_t inplanes = s->stem_width;
    for (int li = 0; li < s->n_stages; li++) {
        int64_t planes = s->widths[li];
        for (int64_t bi = 0; bi < s->layers[li]; bi++) {
            int stride = bi == 0 && li > 0 ? 2 : 1;
            int64_t mid = (inplanes * planes * 27) / (inplanes * 9 + 3 * planes);
            char base[64];
            snprintf(base, sizeof base, "layer%d.%lld", li + 1, (long long)bi);
            snprintf(n1, sizeof n1, "%s.conv1.0", base);
            int h = dj_vr_conv(g, n1, x, s->block[li], planes, mid, stride, s);
            snprintf(n1, sizeof n1, "%s.conv1.1", base);
            h = dj_bn_relu(g, n1, h, s);
            snprintf(n1, sizeof n1, "%s.conv2.0", base);
            h = dj_vr_conv(g, n1, h, s->block[li], planes, mid, 1, s);
            snprintf(n1, sizeof n1, "%s.conv2.1", base);
            h = dj_layer_batchnorm(g, n1, h, s->bn_momentum, s->bn_eps);
            int res = x;
            if (stride != 1 || inplanes != planes) {
                int ts = s->block[li] == DJ_VR_NO_TEMPORAL ? 1 : stride;
                snprintf(n1, sizeof n1, "%s.downsample.0", base);
                res = dj_layer_conv3d(g, n1, x, planes, dj_conv_k(1, 1, 1, ts, stride, stride, 0, 0, 0));
                snprintf(n1, sizeof n1, "%s.downsample.1", base);
                res = dj_layer_batchnorm(g, n1, res, s->bn_momentum, s->bn_eps);
            }
            snprintf(n3, sizeof n3, "%s.relu", base);
            x = dj_layer_add_relu(g, n3, h, res);
            inplanes = planes;
        }
    }
    return dj_layer_global_avgpool(g, "avgpool", x);
}

static dj_status dj_vr_read(dj_config *c, dj_vr_spec *s) {
    memset(s, 0, sizeof *s);
    const char *stem = "basic";
    DJ_TRY(dj_config_get_string(c, "stem", &stem));
    if (strcmp(stem, "basic") && strcmp(stem, "r2plus1d"))
        return dj_error_set(DJ_ERR_INVALID, "stem", "model file: stem must be basic or r2plus1d, not '%s'", stem);
    s->r2plus1d_stem = !strcmp(stem, "r2plus1d");
    s->stem_width = 64;
    s->stem_mid = 45;
    DJ_TRY(dj_read_int(c, "stem_width", &s->stem_width, 1, 65536));
    DJ_TRY(dj_read_int(c, "stem_mid", &s->stem_mid, 1, 65536));
    int nl = 0, nw = 0;
    DJ_TRY(dj_read_ints(c, "layers", s->layers, DJ_MAX_STAGES, &nl, 1, 64));
    DJ_TRY(dj_read_ints(c, "widths", s->widths, DJ_MAX_STAGES, &nw, 1, 65536));
    if (nl == 0 || nl != nw)
        return dj_error_set(DJ_ERR_INVALID, "layers", "model file: 'layers' and 'widths' need the same count (>= 1)");
    s->n_stages = nl;
    /* `block` for every stage, `first_block` for stage 1 when it differs (mc3) */
    const char *names[2] = {"conv3d", NULL};
    DJ_TRY(dj_config_get_string(c, "block", &names[0]));
    DJ_TRY(dj_config_get_string(c, "first_block", &names[1]));
    dj_vr_block kinds[2] = {DJ_VR_CONV3D, DJ_VR_CONV3D};
    for (int k = 0; k < 2; k++) {
        if (!names[k])
            continue;
        if (!strcmp(names[k], "conv3d"))
            kinds[k] = DJ_VR_CONV3D;
        else if (!strcmp(names[k], "no_temporal"))
            kinds[k] = DJ_VR_NO_TEMPORAL;
        else if (!strcmp(names[k], "conv2plus1d"))
            kinds[k] = DJ_VR_2PLUS1D;
        else
            return dj_error_set(DJ_ERR_INVALID, k ? "first_block" : "block",
                                "model file: a block is conv3d, no_temporal or conv2plus1d, not '%s'", names[k]);
    }
    for (int i = 0; i < nl; i++)
        s->block[i] = kinds[0];
    if (names[1])
        s->block[0] = kinds[1];
    double mom = 0.1, eps = 1e-5;
    DJ_TRY(dj_config_get_double(c, "bn_momentum", &mom));
    DJ_TRY(dj_config_get_double(c, "bn_eps", &eps));
    if (!(mom >= 0 && mom <= 1) || !(eps > 0))
        return dj_error_set(DJ_ERR_INVALID, "bn_momentum", "model file: bn_momentum in [0, 1] and bn_eps > 0");
    s->bn_momentum = (float)mom;
    s->bn_eps = (float)eps;
    return DJ_OK;
}

/* ---- X3D ---- */

typedef struct dj_x3d_spec {
    int64_t stem_width, temporal_kernel, head_width, fc_width;
    int n_stages;
    int64_t layers[DJ_MAX_STAGES], widths[DJ_MAX_STAGES];
    double expansion, se_ratio, dropout;
    float bn_momentum, bn_eps;
} dj_x3d_spec;

static int64_t dj_round8(double v) {
    int64_t r = (int64_t)((v + 4.0) / 8.0) * 8;
    return r < 8 ? 8 : r;
}

static int dj_x3d_bn(dj_graph *g, const char *base, const char *suffix, int x, const dj_x3d_spec *s) {
    char n[256];
    snprintf(n, sizeof n, "%s.%s", base, suffix);
    return dj_layer_batchnorm(g, n, x, s->bn_momentum, s->bn_eps);
}

static int dj_x3d_block(dj_graph *g, const char *base, int x, int64_t in, int64_t out, int stride, int se,
                        const dj_x3d_spec *s) {
    char n[256], m[256];
    int64_t inner = (int64_t)llround((double)out * s->expansion);
    snprintf(n, sizeof n, "%s.conv_a", base);
    int h = dj_layer_conv3d(g, n, x, inner, dj_conv_k(1, 1, 1, 1, 1, 1, 0, 0, 0));
    snprintf(n, sizeof n, "%s.norm_a", base); /* and relu_a: one node, its output recomputed */
    h = dj_layer_batchnorm_relu(g, n, h, s->bn_momentum, s->bn_eps);
    dj_conv_spec dw = dj_conv_k(3, 3, 3, 1, stride, stride, 1, 1, 1);
    dw.groups = (int)inner;
    snprintf(n, sizeof n, "%s.conv_b", base);
    h = dj_layer_conv3d(g, n, h, inner, dw);
    h = dj_x3d_bn(g, base, "norm_b", h, s);
    if (se) {
        int64_t one[3] = {1, 1, 1};
        dj_conv_spec fc = dj_conv_k(1, 1, 1, 1, 1, 1, 0, 0, 0);
        fc.bias = 1;
        snprintf(n, sizeof n, "%s.se.pool", base);
        int z = dj_layer_adaptive_avgpool(g, n, h, one);
        snprintf(n, sizeof n, "%s.se.fc1", base);
        z = dj_layer_conv3d(g, n, z, dj_round8((double)inner * s->se_ratio), fc);
        snprintf(n, sizeof n, "%s.se.relu", base);
        z = dj_layer_act(g, n, z, DJ_ACT_RELU);
        snprintf(n, sizeof n, "%s.se.fc2", base);
        z = dj_layer_conv3d(g, n, z, inner, fc);
        snprintf(n, sizeof n, "%s.se.gate", base);
        z = dj_layer_act(g, n, z, DJ_ACT_SIGMOID);
        snprintf(n, sizeof n, "%s.se.scale", base);
        h = dj_layer_mul(g, n, h, z);
    }
    snprintf(n, sizeof n, "%s.swish", base);
    h = dj_layer_act(g, n, h, DJ_ACT_SILU);
    snprintf(n, sizeof n, "%s.conv_c", base);
    h = dj_layer_conv3d(g, n, h, out, dj_conv_k(1, 1, 1, 1, 1, 1, 0, 0, 0));
    h = dj_x3d_bn(g, base, "norm_c", h, s);
    int res = x;
    if (in != out || stride != 1) {
        snprintf(n, sizeof n, "%s.branch1_conv", base);
        res = dj_layer_conv3d(g, n, x, out, dj_conv_k(1, 1, 1, 1, stride, stride, 0, 0, 0));
        res = dj_x3d_bn(g, base, "branch1_norm", res, s);
    }
    snprintf(m, sizeof m, "%s.relu", base);
    return dj_layer_add_relu(g, m, h, res);
}

static int dj_x3d_build(dj_graph *g, int x, const dj_x3d_spec *s, int64_t classes) {
    x = dj_layer_conv3d(g, "stem.conv_xy", x, s->stem_width, dj_conv_k(1, 3, 3, 1, 2, 2, 0, 1, 1));
    dj_conv_spec t = dj_conv_k((int)s->temporal_kernel, 1, 1, 1, 1, 1, (int)s->temporal_kernel / 2, 0, 0);
    t.groups = (int)s->stem_width;
    x = dj_layer_conv3d(g, "stem.conv_t", x, s->stem_width, t);
    x = dj_layer_batchnorm_relu(g, "stem.norm", x, s->bn_momentum, s->bn_eps); /* and stem.relu */
    int64_t in = s->stem_width;
    for (int i = 0; i < s->n_stages; i++)
        for (int64_t j = 0; j < s->layers[i]; j++) {
            char base[64];
            snprintf(base, sizeof base, "stages.%d.%lld", i, (long long)j);
            x = dj_x3d_block(g, base, x, in, s->widths[i], j == 0 ? 2 : 1, s->se_ratio > 0 && j % 2 == 0, s);
            in = s->widths[i];
        }
    x = dj_layer_conv3d(g, "head.conv_5", x, s->head_width, dj_conv_k(1, 1, 1, 1, 1, 1, 0, 0, 0));
    x = dj_layer_batchnorm_relu(g, "head.norm_5", x, s->bn_momentum, s->bn_eps); /* and head.relu_5 */
    x = dj_layer_global_avgpool(g, "head.pool", x);
    x = dj_layer_linear(g, "head.fc1", x, s->fc_width, 0);
    x = dj_layer_act(g, "head.relu", x, DJ_ACT_RELU);
    if (s->dropout > 0)
        x = dj_layer_dropout(g, "head.dropout", x, (float)s->dropout, 1);
    return dj_layer_linear(g, "head.proj", x, classes, 1);
}

static dj_status dj_x3d_read(dj_config *c, dj_x3d_spec *s) {
    memset(s, 0, sizeof *s);
    s->stem_width = 24;
    s->temporal_kernel = 5;
    s->head_width = 432;
    s->fc_width = 2048;
    s->expansion = 2.25;
    s->se_ratio = 0.0625;
    s->dropout = 0.5;
    DJ_TRY(dj_read_int(c, "stem_width", &s->stem_width, 1, 65536));
    DJ_TRY(dj_read_int(c, "temporal_kernel", &s->temporal_kernel, 1, 15));
    DJ_TRY(dj_read_int(c, "head_width", &s->head_width, 1, 65536));
    DJ_TRY(dj_read_int(c, "fc_width", &s->fc_width, 1, 65536));
    DJ_TRY(dj_config_get_double(c, "expansion", &s->expansion));
    DJ_TRY(dj_config_get_double(c, "se_ratio", &s->se_ratio));
    DJ_TRY(dj_config_get_double(c, "dropout", &s->dropout));
    int nl = 0, nw = 0;
    DJ_TRY(dj_read_ints(c, "layers", s->layers, DJ_MAX_STAGES, &nl, 1, 64));
    DJ_TRY(dj_read_ints(c, "widths", s->widths, DJ_MAX_STAGES, &nw, 1, 65536));
    if (nl == 0 || nl != nw)
        return dj_error_set(DJ_ERR_INVALID, "layers", "model file: 'layers' and 'widths' need the same count (>= 1)");
    s->n_stages = nl;
    if (!(s->expansion > 0 && s->expansion < 64) || !(s->se_ratio >= 0 && s->se_ratio <= 1) ||
        !(s->dropout >= 0 && s->dropout < 1) || s->temporal_kernel % 2 == 0)
        return dj_error_set(DJ_ERR_INVALID, "expansion", "model file: expansion in (0, 64), se_ratio in [0, 1], "
                                                         "dropout in [0, 1), an odd temporal_kernel");
    double mom = 0.1, eps = 1e-5;
    DJ_TRY(dj_config_get_double(c, "bn_momentum", &mom));
    DJ_TRY(dj_config_get_double(c, "bn_eps", &eps));
    s->bn_momentum = (float)mom;
    s->bn_eps = (float)eps;
    return DJ_OK;
}

/* ---- TimeSformer (divided space-time attention) ---- */

typedef struct dj_tsf_spec {
    int64_t patch[3], dim, depth, heads, mlp_ratio;
    double dropout;
} dj_tsf_spec;

static int dj_tsf_attention(dj_graph *g, const char *base, int x, dj_attn_axis axis, const dj_tsf_spec *s) {
    char n[256];
    const char *tag = axis == DJ_ATTN_TIME ? "t" : "s";
    snprintf(n, sizeof n, "%s.norm_%s", base, tag);
    int h = dj_layer_layernorm(g, n, x, 1e-6f);
    int qkv[3];
    const char *which[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "%s.attn_%s.%s", base, tag, which[i]);
        qkv[i] = dj_layer_linear(g, n, h, s->dim, 1);
    }
    snprintf(n, sizeof n, "%s.attn_%s", base, tag);
    h = dj_layer_attention(g, n, qkv[0], qkv[1], qkv[2], (int)s->heads, axis);
    snprintf(n, sizeof n, "%s.attn_%s.proj", base, tag);
    h = dj_layer_linear(g, n, h, s->dim, 1);
    snprintf(n, sizeof n, "%s.residual_%s", base, tag);
    return dj_layer_add(g, n, x, h);
}

static int dj_tsf_build(dj_graph *g, int x, const dj_tsf_spec *s, int64_t classes) {
    int64_t in_shape[5]; /* copied: adding tensors may move the graph's table */
    memcpy(in_shape, dj_graph_tensor(g, x)->shape, sizeof in_shape);
    int64_t t = in_shape[2] / s->patch[0], sp = (in_shape[3] / s->patch[1]) * (in_shape[4] / s->patch[2]);
    x = dj_layer_patch_embed(g, "patch_embed.proj", x, s->dim, (int)s->patch[0], (int)s->patch[1], (int)s->patch[2]);
    int64_t grid[4] = {in_shape[0], t, sp, s->dim};
    x = dj_layer_reshape(g, "patch_embed.grid", x, 4, grid);
    int64_t ps[4] = {1, 1, sp, s->dim}, ts[4] = {1, t, 1, s->dim};
    int pos = dj_graph_param(g, "pos_embed", 4, ps);
    int tim = dj_graph_param(g, "time_embed", 4, ts);
    x = dj_layer_add(g, "pos_embed.add", x, pos);
    x = dj_layer_add(g, "time_embed.add", x, tim);
    for (int64_t b = 0; b < s->depth; b++) {
        char base[64], n[256];
        snprintf(base, sizeof base, "blocks.%lld", (long long)b);
        x = dj_tsf_attention(g, base, x, DJ_ATTN_TIME, s);
        x = dj_tsf_attention(g, base, x, DJ_ATTN_SPACE, s);
        snprintf(n, sizeof n, "%s.norm_mlp", base);
        int h = dj_layer_layernorm(g, n, x, 1e-6f);
        snprintf(n, sizeof n, "%s.mlp.fc1", base);
        h = dj_layer_linear(g, n, h, s->dim * s->mlp_ratio, 1);
        snprintf(n, sizeof n, "%s.mlp.act", base);
        h = dj_layer_act(g, n, h, DJ_ACT_GELU);
        if (s->dropout > 0) {
            snprintf(n, sizeof n, "%s.mlp.drop", base);
            h = dj_layer_dropout(g, n, h, (float)s->dropout, (uint64_t)(100 + b));
        }
        snprintf(n, sizeof n, "%s.mlp.fc2", base);
        h = dj_layer_linear(g, n, h, s->dim, 1);
        snprintf(n, sizeof n, "%s.residual_mlp", base);
        x = dj_layer_add(g, n, x, h);
    }
    x = dj_layer_layernorm(g, "norm", x, 1e-6f);
    int64_t flat[3] = {in_shape[0], t * sp, s->dim};
    x = dj_layer_reshape(g, "tokens", x, 3, flat);
    x = dj_layer_mean_tokens(g, "pool", x);
    return dj_layer_linear(g, "head", x, classes, 1);
}

static dj_status dj_tsf_read(dj_config *c, const dj_model_shape *shape, dj_tsf_spec *s) {
    memset(s, 0, sizeof *s);
    s->patch[0] = 1, s->patch[1] = 16, s->patch[2] = 16;
    s->dim = 192, s->depth = 4, s->heads = 3, s->mlp_ratio = 4;
    int np = 3;
    DJ_TRY(dj_read_ints(c, "patch", s->patch, 3, &np, 1, 256));
    if (np != 3)
        return dj_error_set(DJ_ERR_INVALID, "patch", "model file: patch is [t, h, w]");
    DJ_TRY(dj_read_int(c, "dim", &s->dim, 1, 65536));
    DJ_TRY(dj_read_int(c, "depth", &s->depth, 1, 256));
    DJ_TRY(dj_read_int(c, "heads", &s->heads, 1, 1024));
    DJ_TRY(dj_read_int(c, "mlp_ratio", &s->mlp_ratio, 1, 64));
    DJ_TRY(dj_config_get_double(c, "dropout", &s->dropout));
    if (s->dim % s->heads)
        return dj_error_set(DJ_ERR_INVALID, "heads", "model file: heads (%lld) must divide dim (%lld)",
                            (long long)s->heads, (long long)s->dim);
    if (!(s->dropout >= 0 && s->dropout < 1))
        return dj_error_set(DJ_ERR_INVALID, "dropout", "model file: dropout in [0, 1)");
    if (shape->frames % s->patch[0] || shape->height % s->patch[1] || shape->width % s->patch[2])
        return dj_error_set(DJ_ERR_INVALID, "patch",
                            "input %lldx%lldx%lld (TxHxW) is not a whole number of %lldx%lldx%lld patches",
                            (long long)shape->frames, (long long)shape->height, (long long)shape->width,
                            (long long)s->patch[0], (long long)s->patch[1], (long long)s->patch[2]);
    return DJ_OK;
}

/* ---- the model ---- */

dj_status dj_model_create(dj_config *c, const dj_model_shape *shape, dj_model **out) {
    *out = NULL;
    if (shape->batch < 1 || shape->frames < 1 || shape->height < 1 || shape->width < 1)
        return dj_error_set(DJ_ERR_INVALID, "model", "input shape %lldx3x%lldx%lldx%lld has an empty dimension",
                            (long long)shape->batch, (long long)shape->frames, (long long)shape->height,
                            (long long)shape->width);
    const char *arch = NULL, *description = NULL;
    int64_t classes = 400;
    DJ_TRY(dj_config_get_string(c, "arch", &arch));
    DJ_TRY(dj_config_get_string(c, "description", &description));
    DJ_TRY(dj_read_int(c, "num_classes", &classes, 1, 1 << 20));
    if (shape->num_classes > 0)
        classes = shape->num_classes;
    if (!arch)
        return dj_error_set(DJ_ERR_INVALID, "arch", "model file has no 'arch' (video_resnet, x3d or timesformer)");
    dj_vr_spec vr;
    dj_x3d_spec x3;
    dj_tsf_spec tf;
    int kind;
    if (!strcmp(arch, "video_resnet")) {
        kind = 0;
        DJ_TRY(dj_vr_read(c, &vr));
    } else if (!strcmp(arch, "x3d")) {
        kind = 1;
        DJ_TRY(dj_x3d_read(c, &x3));
    } else if (!strcmp(arch, "timesformer")) {
        kind = 2;
        DJ_TRY(dj_tsf_read(c, shape, &tf));
    } else {
        return dj_error_set(DJ_ERR_INVALID, "arch", "unknown architecture '%s' (video_resnet, x3d or timesformer)",
                            arch);
    }
    DJ_TRY(dj_config_check_unused(c));

    dj_model *m = calloc(1, sizeof *m);
    if (!m)
        return dj_error_set(DJ_ERR_NOMEM, "model", "cannot allocate");
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    m->num_classes = classes;
    m->transformer = kind == 2;
    dj_status s = dj_graph_create(&m->g);
    if (s != DJ_OK) {
        free(m);
        return s;
    }
    /* 0 threads: one per core, as dj_threadpool_create counts them (the
     * scratch of Winograd convolutions grows with the threads) */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    dj_graph_set_threads(m->g, shape->threads > 0 ? shape->threads : (int)(cores > 0 ? cores : 1));
    int64_t in_shape[5] = {shape->batch, 3, shape->frames, shape->height, shape->width};
    int64_t label_shape[1] = {shape->batch};
    m->input = dj_graph_input(m->g, "input", DJ_DTYPE_F32, 5, in_shape);
    m->labels = dj_graph_input(m->g, "labels", DJ_DTYPE_I64, 1, label_shape);
    if (kind == 0)
        m->logits = dj_layer_linear(m->g, "fc", dj_vr_build(m->g, m->input, &vr), classes, 1);
    else if (kind == 1)
        m->logits = dj_x3d_build(m->g, m->input, &x3, classes);
    else
        m->logits = dj_tsf_build(m->g, m->input, &tf, classes);
    dj_graph_mark_output(m->g, m->logits);
    m->loss = dj_layer_cross_entropy(m->g, "loss", m->logits, m->labels, shape->label_smoothing);
    s = dj_graph_status(m->g);
    if (s != DJ_OK) {
        dj_error_prefix("building %s", arch);
        dj_model_free(m);
        return s;
    }
    *out = m;
    return DJ_OK;
}

void dj_model_free(dj_model *m) {
    if (!m)
        return;
    dj_graph_free(m->g);
    free(m);
}

dj_graph *dj_model_graph(dj_model *m) { return m->g; }
int dj_model_input(const dj_model *m) { return m->input; }
int dj_model_labels(const dj_model *m) { return m->labels; }
int dj_model_logits(const dj_model *m) { return m->logits; }
int dj_model_loss(const dj_model *m) { return m->loss; }
const char *dj_model_arch(const dj_model *m) { return m->arch; }
int64_t dj_model_num_classes(const dj_model *m) { return m->num_classes; }

int64_t dj_model_num_params(dj_model *m) {
    int64_t n = 0;
    for (int i = 0; i < dj_graph_num_tensors(m->g); i++)
        if (dj_graph_kind(m->g, i) == DJ_KIND_PARAM)
            n += dj_tensor_numel(dj_graph_tensor(m->g, i));
    return n;
}

static uint64_t dj_name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int dj_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

dj_status dj_model_init(dj_model *m, uint64_t seed) {
    for (int id = 0; id < dj_graph_num_tensors(m->g); id++) {
        dj_tensor_kind kind = dj_graph_kind(m->g, id);
        if (kind != DJ_KIND_PARAM && kind != DJ_KIND_BUFFER)
            continue;
        dj_tensor *t = dj_graph_tensor(m->g, id);
        const char *name = dj_graph_name(m->g, id);
        if (!t->data)
            return dj_error_set(DJ_ERR_INVALID, name, "model not planned: plan the graph before initialising");
        float *w = t->data;
        int64_t n = dj_tensor_numel(t);
        dj_rng r;
        dj_rng_seed(&r, seed, dj_name_hash(name));
        if (kind == DJ_KIND_BUFFER || t->ndim == 1) {
            float v = dj_ends_with(name, "running_var") || (t->ndim == 1 && dj_ends_with(name, ".weight")) ? 1.0f : 0.0f;
            for (int64_t i = 0; i < n; i++)
                w[i] = v;
        } else if (t->ndim == 5) { /* conv: kaiming normal, fan_out, ReLU gain */
            double fan_out = (double)(t->shape[0] * t->shape[2] * t->shape[3] * t->shape[4]);
            double std = sqrt(2.0 / fan_out);
            for (int64_t i = 0; i < n; i++)
                w[i] = (float)(std * dj_rng_normal(&r));
        } else { /* linear weights and position embeddings */
            double std = m->transformer ? 0.02 : 0.01;
            for (int64_t i = 0; i < n; i++) {
                double z;
                do
                    z = dj_rng_normal(&r);
                while (m->transformer && fabs(z) > 2.0);
                w[i] = (float)(std * z);
            }
        }
    }
    return DJ_OK;
}
