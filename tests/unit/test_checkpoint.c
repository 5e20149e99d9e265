/* test_checkpoint.c — checkpoints: a resumed run continues bit for bit,
 * metadata round-trips exactly, damaged/hostile/mismatched files are refused
 * with errors naming file and tensor (and change nothing), saving is atomic,
 * rotation keeps the newest by step number, and `dojo forward`'s code path
 * matches torchvision on committed state dicts. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dojo/checkpoint.h"
#include "dojo/dojo.h"
#include "dojo/model.h"
#include "support/fixture.h"
#include "support/test.h"

/* ---- helpers: a model with an optimizer ---- */

typedef struct run {
    dj_model *m;
    dj_graph *g;
    dj_optimizer *opt;
    void *scratch;
    dj_exec ex;
} run;

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

static const dj_model_shape tiny_shape = {2, 4, 16, 16, 3, 0.0f, 1};

/* Builds, plans (training when optim_kind >= 0), initialises from seed and
 * creates the optimizer of kind optim_kind (-1: none). */
static int run_create(run *r, const char *name, uint64_t seed, int optim_kind) {
    memset(r, 0, sizeof *r);
    r->m = build(name, tiny_shape);
    if (!r->m)
        return -1;
    r->g = dj_model_graph(r->m);
    if (dj_graph_plan(r->g, optim_kind >= 0) != DJ_OK || dj_model_init(r->m, seed) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "%s", dj_error_message());
        return -1;
    }
    if (optim_kind >= 0) {
        dj_optim_config oc = dj_optim_defaults((dj_optim_kind)optim_kind);
        oc.momentum = 0.9;
        oc.weight_decay = 1e-4;
        if (dj_optimizer_create(r->g, &oc, &r->opt) != DJ_OK) {
            dj_test_fail_at(__FILE__, __LINE__, "%s", dj_error_message());
            return -1;
        }
    }
    size_t bytes = dj_graph_scratch_bytes(r->g);
    r->scratch = bytes ? malloc(bytes) : NULL;
    r->ex = (dj_exec){NULL, r->scratch, bytes};
    return 0;
}

static void run_free(run *r) {
    dj_optimizer_free(r->opt);
    dj_model_free(r->m);
    free(r->scratch);
    memset(r, 0, sizeof *r);
}

/* A batch drawn from seed: the same seed gives the same bytes. */
static void fill_batch(run *r, uint64_t seed) {
    dj_tensor *x = dj_graph_tensor(r->g, dj_model_input(r->m));
    int64_t *y = dj_graph_tensor(r->g, dj_model_labels(r->m))->data;
    dj_rng rng;
    dj_rng_seed(&rng, seed, 0);
    float *xf = x->data;
    for (int64_t i = 0; i < dj_tensor_numel(x); i++)
        xf[i] = (float)dj_rng_normal(&rng);
    for (int64_t i = 0; i < x->shape[0]; i++)
        y[i] = i % dj_model_num_classes(r->m);
}

static void train_step(run *r) {
    CHECK(dj_graph_forward(r->g, &r->ex, 1) == DJ_OK);
    dj_graph_zero_grads(r->g);
    CHECK(dj_graph_backward(r->g, &r->ex, dj_model_loss(r->m), 1.0f) == DJ_OK);
    CHECK_MSG(dj_optimizer_step(r->opt, &r->ex, 0.05, NULL) == DJ_OK, "%s", dj_error_message());
}

static int is_saved(dj_graph *g, int id) {
    return dj_graph_kind(g, id) == DJ_KIND_PARAM || dj_graph_kind(g, id) == DJ_KIND_BUFFER;
}

/* Number of parameters/buffers whose bytes differ between a and b. */
static int count_differing(run *a, run *b, int report) {
    int differ = 0;
    for (int id = 0; id < dj_graph_num_tensors(a->g); id++) {
        if (!is_saved(a->g, id))
            continue;
        const char *name = dj_graph_name(a->g, id);
        int jd = dj_graph_find(b->g, name);
        dj_tensor *ta = dj_graph_tensor(a->g, id), *tb = jd >= 0 ? dj_graph_tensor(b->g, jd) : NULL;
        if (!tb || dj_tensor_nbytes(ta) != dj_tensor_nbytes(tb) ||
            memcmp(ta->data, tb->data, dj_tensor_nbytes(ta)) != 0) {
            if (report)
                dj_test_fail_at(__FILE__, __LINE__, "tensor %s differs", name);
            differ++;
        }
    }
    return differ;
}

static void check_same_optimizer(run *a, run *b) {
    CHECK_EQ_INT(dj_optimizer_num_states(a->opt), dj_optimizer_num_states(b->opt));
    CHECK_EQ_INT(dj_optimizer_steps(a->opt), dj_optimizer_steps(b->opt));
    for (int i = 0; i < dj_optimizer_num_states(a->opt) && i < dj_optimizer_num_states(b->opt); i++) {
        const char *na, *nb;
        dj_tensor *ta = dj_optimizer_state(a->opt, i, &na), *tb = dj_optimizer_state(b->opt, i, &nb);
        CHECK(strcmp(na, nb) == 0);
        CHECK_MSG(memcmp(ta->data, tb->data, dj_tensor_nbytes(ta)) == 0, "optimizer state %s differs", na);
    }
}

static void tmp_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", dj_test_tmpdir(), name);
}

/* ---- round trip and resume ---- */

static dj_checkpoint_state sample_state(void) {
    dj_checkpoint_state st = {3, 2, 1, UINT64_MAX, 0.1 + 1e-17, NULL, NULL, 3, NULL};
    st.best_metric = 0.30000000000000004; /* needs 17 digits */
    st.config_json = (char *)"{\"model\": \"r3d_mini\", \"lr\": 0.05, \"note\": \"\xc3\xa9t\xc3\xa9 \\\"quoted\\\"\"}";
    st.model = (char *)"r3d_mini";
    st.classes_json = (char *)"[\"a\", \"b\", \"c\"]";
    return st;
}

static void check_state(const dj_checkpoint_state *got, const dj_checkpoint_state *want) {
    CHECK_EQ_INT(got->epoch, want->epoch);
    CHECK_EQ_INT(got->step, want->step);
    CHECK_EQ_INT(got->batch_in_epoch, want->batch_in_epoch);
    CHECK(got->seed == want->seed);
    CHECK_MSG(got->best_metric == want->best_metric, "best_metric %.17g != %.17g", got->best_metric,
              want->best_metric);
    CHECK_EQ_INT(got->num_classes, want->num_classes);
    CHECK(got->model && strcmp(got->model, want->model) == 0);
    CHECK(got->config_json && strcmp(got->config_json, want->config_json) == 0);
    CHECK(got->classes_json && strcmp(got->classes_json, want->classes_json) == 0);
}

static void test_resume_continues_bit_for_bit(void) {
    run a, b;
    if (run_create(&a, "r3d_mini", 1, DJ_OPTIM_SGD) || run_create(&b, "r3d_mini", 99, DJ_OPTIM_SGD)) {
        run_free(&a);
        run_free(&b);
        return;
    }
    fill_batch(&a, 11);
    train_step(&a);
    fill_batch(&a, 12);
    train_step(&a);
    char path[1024];
    tmp_path(path, sizeof path, "resume.safetensors");
    dj_checkpoint_state st = sample_state();
    CHECK_MSG(dj_checkpoint_save(path, a.g, a.opt, &st) == DJ_OK, "%s", dj_error_message());

    CHECK(count_differing(&a, &b, 0) > 0); /* the comparison can fail */
    dj_checkpoint_state got;
    memset(&got, 0, sizeof got);
    CHECK_MSG(dj_checkpoint_load(path, b.g, b.opt, &got) == DJ_OK, "%s", dj_error_message());
    CHECK_EQ_INT(count_differing(&a, &b, 1), 0);
    check_same_optimizer(&a, &b);
    CHECK_EQ_INT(dj_optimizer_steps(b.opt), 2);
    check_state(&got, &st);
    dj_checkpoint_state_free(&got);
    CHECK(got.model == NULL && got.config_json == NULL);

    /* one more step on the same batch in both */
    fill_batch(&a, 13);
    fill_batch(&b, 13);
    train_step(&a);
    train_step(&b);
    CHECK_EQ_INT(count_differing(&a, &b, 1), 0);
    check_same_optimizer(&a, &b);
    run_free(&a);
    run_free(&b);
}

static void test_adamw_state_round_trip(void) {
    run a, b;
    if (run_create(&a, "r3d_mini", 1, DJ_OPTIM_ADAMW) || run_create(&b, "r3d_mini", 2, DJ_OPTIM_ADAMW)) {
        run_free(&a);
        run_free(&b);
        return;
    }
    fill_batch(&a, 5);
    train_step(&a);
    char path[1024];
    tmp_path(path, sizeof path, "adamw.safetensors");
    dj_checkpoint_state st = sample_state();
    CHECK(dj_checkpoint_save(path, a.g, a.opt, &st) == DJ_OK);
    CHECK_MSG(dj_checkpoint_load(path, b.g, b.opt, NULL) == DJ_OK, "%s", dj_error_message());
    check_same_optimizer(&a, &b);
    fill_batch(&a, 6);
    fill_batch(&b, 6);
    train_step(&a);
    train_step(&b);
    CHECK_EQ_INT(count_differing(&a, &b, 1), 0);
    run_free(&a);
    run_free(&b);
}

static void test_peek_and_minimal_state(void) {
    run a;
    if (run_create(&a, "r3d_mini", 1, -1))
        return;
    char path[1024];
    tmp_path(path, sizeof path, "peek.safetensors");
    dj_checkpoint_state st = sample_state();
    CHECK(dj_checkpoint_save(path, a.g, NULL, &st) == DJ_OK);
    dj_checkpoint_state got;
    CHECK_MSG(dj_checkpoint_peek(path, &got) == DJ_OK, "%s", dj_error_message());
    check_state(&got, &st);
    dj_checkpoint_state_free(&got);

    /* NULL strings are absent and come back NULL; zero seed, -1 metric */
    dj_checkpoint_state bare = {0, 0, 0, 0, -1, NULL, NULL, 3, NULL};
    CHECK(dj_checkpoint_save(path, a.g, NULL, &bare) == DJ_OK);
    CHECK(dj_checkpoint_peek(path, &got) == DJ_OK);
    CHECK(got.model == NULL && got.config_json == NULL && got.classes_json == NULL);
    CHECK(got.seed == 0 && got.best_metric == -1 && got.num_classes == 3);
    dj_checkpoint_state_free(&got);

    /* a torchvision state dict: no dojo metadata, classes from fc.weight */
    char tv[1200];
    if (dj_fixture_path("checkpoint/r2plus1d_tiny_tv.safetensors", tv, sizeof tv)) {
        CHECK_MSG(dj_checkpoint_peek(tv, &got) == DJ_OK, "%s", dj_error_message());
        CHECK_EQ_INT(got.num_classes, 5);
        CHECK(got.model == NULL && got.epoch == 0 && got.step == 0 && got.best_metric == -1);
        dj_checkpoint_state_free(&got);
    }
    run_free(&a);
}

/* ---- refusals ---- */

/* A copy of src with one change, for the refusal cases. */
typedef struct edit {
    const char *skip;      /* leave this tensor out */
    const char *grow;      /* this tensor with its first dimension + 1 */
    const char *as_i64;    /* this tensor stored as I64 zeros */
    const char *as_bf16;   /* this tensor converted to BF16 */
    const char *extra;     /* add a (2,2) F32 tensor of this name */
    const char *meta_key;  /* set (or, with meta_value NULL, drop) this metadata key */
    const char *meta_value;
} edit;

static void add_edited(dj_st_writer *w, const dj_st_view *v, const edit *e) {
    int64_t shape[DJ_ST_MAX_DIMS];
    memcpy(shape, v->shape, sizeof shape);
    if (e->grow && strcmp(v->name, e->grow) == 0) {
        shape[0] += 1;
        float *z = calloc((size_t)(v->numel / v->shape[0] * shape[0]), sizeof *z);
        CHECK(dj_safetensors_writer_add(w, v->name, DJ_ST_F32, v->ndim, shape, z, DJ_ST_COPY) == DJ_OK);
        free(z);
    } else if (e->as_i64 && strcmp(v->name, e->as_i64) == 0) {
        int64_t *z = calloc((size_t)v->numel, sizeof *z);
        CHECK(dj_safetensors_writer_add(w, v->name, DJ_ST_I64, v->ndim, shape, z, DJ_ST_COPY) == DJ_OK);
        free(z);
    } else if (e->as_bf16 && strcmp(v->name, e->as_bf16) == 0) {
        uint16_t *h = malloc((size_t)v->numel * sizeof *h);
        for (int64_t i = 0; i < v->numel; i++) {
            float x;
            memcpy(&x, (const char *)v->data + 4 * i, 4);
            h[i] = dj_f32_to_bf16(x);
        }
        CHECK(dj_safetensors_writer_add(w, v->name, DJ_ST_BF16, v->ndim, shape, h, DJ_ST_COPY) == DJ_OK);
        free(h);
    } else {
        CHECK(dj_safetensors_writer_add(w, v->name, v->dtype, v->ndim, shape, v->data, DJ_ST_COPY) == DJ_OK);
    }
}

static void rewrite(const char *src, const char *dst, edit e) {
    dj_safetensors *f = NULL;
    dj_st_writer *w = NULL;
    CHECK(dj_safetensors_open(src, &f) == DJ_OK);
    CHECK(dj_safetensors_writer_create(&w) == DJ_OK);
    if (!f || !w)
        goto done;
    for (int i = 0; i < dj_safetensors_metadata_count(f); i++) {
        const char *k, *v;
        dj_safetensors_metadata_at(f, i, &k, &v);
        if (!e.meta_key || strcmp(k, e.meta_key) != 0)
            dj_safetensors_writer_set_metadata(w, k, v);
    }
    if (e.meta_key && e.meta_value)
        dj_safetensors_writer_set_metadata(w, e.meta_key, e.meta_value);
    for (int i = 0; i < dj_safetensors_count(f); i++) {
        dj_st_view v;
        dj_safetensors_at(f, i, &v);
        if (!e.skip || strcmp(v.name, e.skip) != 0)
            add_edited(w, &v, &e);
    }
    if (e.extra) {
        float z[4] = {0};
        CHECK(dj_safetensors_writer_add_f32(w, e.extra, 2, (int64_t[]){2, 2}, z, DJ_ST_COPY) == DJ_OK);
    }
    CHECK_MSG(dj_safetensors_write_atomic(w, dst) == DJ_OK, "%s", dj_error_message());
done:
    dj_safetensors_writer_free(w);
    dj_safetensors_close(f);
}

static void *read_all(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    void *buf = malloc((size_t)n + 1);
    *size = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    return buf;
}

static void write_all(const char *path, const void *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (fp) {
        CHECK(fwrite(data, 1, size, fp) == size);
        fclose(fp);
    }
}

/* Every parameter and buffer of g, concatenated (to see that nothing moved). */
static void *snapshot(dj_graph *g, size_t *size) {
    size_t n = 0;
    for (int id = 0; id < dj_graph_num_tensors(g); id++)
        if (is_saved(g, id))
            n += dj_tensor_nbytes(dj_graph_tensor(g, id));
    char *buf = malloc(n), *at = buf;
    for (int id = 0; id < dj_graph_num_tensors(g); id++)
        if (is_saved(g, id)) {
            dj_tensor *t = dj_graph_tensor(g, id);
            memcpy(at, t->data, dj_tensor_nbytes(t));
            at += dj_tensor_nbytes(t);
        }
    *size = n;
    return buf;
}

/* Loading path must fail naming the file and each of the `needles`, and
 * leave the graph (and optimizer state) exactly as it was. */
static void expect_refused(run *r, dj_optimizer *opt, const char *path, const char *n1, const char *n2) {
    size_t before_n, after_n;
    void *before = snapshot(r->g, &before_n);
    dj_status s = dj_checkpoint_load(path, r->g, opt, NULL);
    CHECK_MSG(s != DJ_OK, "%s was accepted", path);
    const char *msg = dj_error_message();
    CHECK_STR_CONTAINS(msg, path);
    if (n1)
        CHECK_STR_CONTAINS(msg, n1);
    if (n2)
        CHECK_STR_CONTAINS(msg, n2);
    void *after = snapshot(r->g, &after_n);
    CHECK_MSG(before_n == after_n && memcmp(before, after, before_n) == 0, "a refused load changed the graph (%s)",
              msg);
    free(before);
    free(after);
}

static void test_refuses_mismatched_tensors(void) {
    run src, dst, other;
    if (run_create(&src, "r3d_mini", 1, DJ_OPTIM_SGD) || run_create(&dst, "r3d_mini", 2, DJ_OPTIM_SGD) ||
        run_create(&other, "r2plus1d_mini", 3, -1)) {
        run_free(&src);
        run_free(&dst);
        run_free(&other);
        return;
    }
    char good[1024], bad[1024], foreign[1024];
    tmp_path(good, sizeof good, "good.safetensors");
    tmp_path(bad, sizeof bad, "bad.safetensors");
    tmp_path(foreign, sizeof foreign, "r2plus1d.safetensors");
    dj_checkpoint_state st = sample_state();
    CHECK(dj_checkpoint_save(good, src.g, src.opt, &st) == DJ_OK);
    st.model = (char *)"r2plus1d_mini";
    CHECK(dj_checkpoint_save(foreign, other.g, NULL, &st) == DJ_OK);

    /* a checkpoint of another model */
    expect_refused(&dst, NULL, foreign, "stem.0.weight", "r2plus1d_mini");
    /* a missing tensor */
    rewrite(good, bad, (edit){.skip = "layer2.0.conv1.1.running_var"});
    expect_refused(&dst, NULL, bad, "'layer2.0.conv1.1.running_var' (32) is missing", NULL);
    /* an extra tensor */
    rewrite(good, bad, (edit){.extra = "layer9.0.conv1.0.weight"});
    expect_refused(&dst, NULL, bad, "unexpected tensor 'layer9.0.conv1.0.weight' (2,2)", NULL);
    /* a wrong shape: both shapes named */
    rewrite(good, bad, (edit){.grow = "fc.weight"});
    expect_refused(&dst, NULL, bad, "'fc.weight' has shape (4,128) in the checkpoint but (3,128)", NULL);
    /* a wrong dtype */
    rewrite(good, bad, (edit){.as_i64 = "fc.bias"});
    expect_refused(&dst, NULL, bad, "'fc.bias' has dtype I64", NULL);
    /* optimizer state: wanted but absent; one tensor missing; wrong kind */
    CHECK(dj_checkpoint_save(bad, src.g, NULL, &st) == DJ_OK);
    expect_refused(&dst, dst.opt, bad, "no optimizer state", NULL);
    rewrite(good, bad, (edit){.skip = "optim/fc.bias.momentum_buffer"});
    expect_refused(&dst, dst.opt, bad, "optim/fc.bias.momentum_buffer", "missing");
    rewrite(good, bad, (edit){.extra = "optim/fc.bias.exp_avg"});
    expect_refused(&dst, dst.opt, bad, "optimizer state 'optim/fc.bias.exp_avg'", NULL);
    /* ... which is ignored when no optimizer is given */
    CHECK_MSG(dj_checkpoint_load(bad, dst.g, NULL, NULL) == DJ_OK, "%s", dj_error_message());
    run_free(&src);
    run_free(&dst);
    run_free(&other);
}

static void test_refuses_bad_metadata(void) {
    run src, dst;
    if (run_create(&src, "r3d_mini", 1, -1) || run_create(&dst, "r3d_mini", 2, -1)) {
        run_free(&src);
        run_free(&dst);
        return;
    }
    char good[1024], bad[1024];
    tmp_path(good, sizeof good, "meta_good.safetensors");
    tmp_path(bad, sizeof bad, "meta_bad.safetensors");
    dj_checkpoint_state st = sample_state();
    CHECK(dj_checkpoint_save(good, src.g, NULL, &st) == DJ_OK);
    struct {
        const char *key, *value, *needle;
    } cases[] = {
        {"epoch", "12a", "'epoch' is '12a'"},
        {"epoch", "-1", "'epoch' is '-1'"},
        {"epoch", "", "'epoch' is ''"},
        {"step", " 7", "'step' is ' 7'"},
        {"step", "99999999999999999999", "'step'"},
        {"seed", "-1", "'seed' is '-1'"},
        {"seed", "18446744073709551616", "'seed'"}, /* 2^64 */
        {"seed", NULL, "'seed' is missing"},
        {"best_metric", "nan", "'best_metric' is 'nan'"},
        {"best_metric", "0.5x", "'best_metric'"},
        {"best_metric", "1e999", "'best_metric'"},
        {"num_classes", "+3", "'num_classes'"},
        {"batch_in_epoch", NULL, "'batch_in_epoch' is missing"},
        {"config", "{not json", "'config' is not a JSON object"},
        {"config", "[1, 2]", "'config' is not a JSON object"},
        {"classes", "[\"a\", \"b\"]", "'classes' must be a list of 3"},
        {"classes", "[1, 2, 3]", "'classes' must be a list of 3"},
        {"dojo.format", "checkpoint-v9", "dojo.format is 'checkpoint-v9'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rewrite(good, bad, (edit){.meta_key = cases[i].key, .meta_value = cases[i].value});
        expect_refused(&dst, NULL, bad, cases[i].needle, NULL);
        dj_checkpoint_state got;
        CHECK_MSG(dj_checkpoint_peek(bad, &got) != DJ_OK, "peek accepted case %zu", i);
    }
    /* the untouched file still loads */
    CHECK_MSG(dj_checkpoint_load(good, dst.g, NULL, NULL) == DJ_OK, "%s", dj_error_message());
    run_free(&src);
    run_free(&dst);
}

static void test_refuses_damaged_files(void) {
    run src, dst;
    if (run_create(&src, "r3d_mini", 1, -1) || run_create(&dst, "r3d_mini", 2, -1)) {
        run_free(&src);
        run_free(&dst);
        return;
    }
    char good[1024], bad[1024];
    tmp_path(good, sizeof good, "damage_good.safetensors");
    tmp_path(bad, sizeof bad, "damage_bad.safetensors");
    dj_checkpoint_state st = sample_state();
    CHECK(dj_checkpoint_save(good, src.g, NULL, &st) == DJ_OK);
    size_t n = 0;
    unsigned char *bytes = read_all(good, &n);
    CHECK(bytes && n > 4096);
    if (!bytes) {
        run_free(&src);
        run_free(&dst);
        return;
    }
    /* truncated: in the data, in the header, in the length */
    size_t cuts[] = {n - 1, n / 2, 100, 5, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(bad, bytes, cuts[i]);
        expect_refused(&dst, NULL, bad, NULL, NULL);
    }
    /* corrupted header: not JSON, a huge length, offsets past the end */
    unsigned char *copy = malloc(n);
    memcpy(copy, bytes, n);
    copy[8] = 'x';
    write_all(bad, copy, n);
    expect_refused(&dst, NULL, bad, NULL, NULL);
    memcpy(copy, bytes, n);
    copy[7] = 0x7f;
    write_all(bad, copy, n);
    expect_refused(&dst, NULL, bad, NULL, NULL);
    memcpy(copy, bytes, n);
    char *hit = memmem(copy, n, "\"data_offsets\":[", 16);
    CHECK(hit != NULL);
    if (hit) {
        hit[16] = '9'; /* the first offset grows by orders of magnitude */
        write_all(bad, copy, n);
        expect_refused(&dst, NULL, bad, NULL, NULL);
    }
    /* a missing file */
    tmp_path(bad, sizeof bad, "no_such.safetensors");
    expect_refused(&dst, NULL, bad, NULL, NULL);
    free(copy);
    free(bytes);
    run_free(&src);
    run_free(&dst);
}

static void test_converts_float_dtypes(void) {
    run src, dst;
    if (run_create(&src, "r3d_mini", 1, -1) || run_create(&dst, "r3d_mini", 2, -1)) {
        run_free(&src);
        run_free(&dst);
        return;
    }
    char good[1024], half[1024];
    tmp_path(good, sizeof good, "f32.safetensors");
    tmp_path(half, sizeof half, "bf16.safetensors");
    dj_checkpoint_state st = sample_state();
    CHECK(dj_checkpoint_save(good, src.g, NULL, &st) == DJ_OK);
    rewrite(good, half, (edit){.as_bf16 = "fc.weight", .extra = "fc.num_batches_tracked"});
    CHECK_MSG(dj_checkpoint_load(half, dst.g, NULL, NULL) == DJ_OK, "%s", dj_error_message());
    dj_tensor *a = dj_graph_tensor(src.g, dj_graph_find(src.g, "fc.weight"));
    dj_tensor *b = dj_graph_tensor(dst.g, dj_graph_find(dst.g, "fc.weight"));
    const float *fa = a->data, *fb = b->data;
    int64_t bad = 0;
    for (int64_t i = 0; i < dj_tensor_numel(a); i++)
        bad += fb[i] != dj_bf16_to_f32(dj_f32_to_bf16(fa[i]));
    CHECK_EQ_INT(bad, 0);
    run_free(&src);
    run_free(&dst);
}

/* ---- atomic saving ---- */

static int count_entries(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static void test_save_is_atomic(void) {
    run a;
    if (run_create(&a, "r3d_mini", 1, DJ_OPTIM_SGD))
        return;
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/atomic", dj_test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    dj_checkpoint_state st = sample_state();
    CHECK(dj_checkpoint_save(path, a.g, a.opt, &st) == DJ_OK);
    size_t n0 = 0, n1 = 0;
    void *old = read_all(path, &n0);
    st.epoch = 4;
    fill_batch(&a, 1);
    train_step(&a);

    /* a disk too full for the new file: a tmpfs with room for one checkpoint
     * and a half (the temporary file is written beside the old one) */
    char full[1100], full_path[1200];
    snprintf(full, sizeof full, "%s/full", dj_test_tmpdir());
    CHECK(mkdir(full, 0755) == 0);
    char opts[64];
    snprintf(opts, sizeof opts, "size=%zu", (n0 + n0 / 2 + 4095) / 4096 * 4096);
    if (mount("tmpfs", full, "tmpfs", 0, opts) == 0) {
        snprintf(full_path, sizeof full_path, "%s/last.safetensors", full);
        dj_checkpoint_state first = sample_state();
        CHECK(dj_checkpoint_save(full_path, a.g, a.opt, &first) == DJ_OK);
        size_t f0 = 0, f1 = 0;
        void *before = read_all(full_path, &f0);
        CHECK(dj_checkpoint_save(full_path, a.g, a.opt, &st) != DJ_OK);
        CHECK_STR_CONTAINS(dj_error_message(), full_path);
        void *after = read_all(full_path, &f1);
        CHECK(before && after && f1 == f0 && memcmp(before, after, f0) == 0);
        CHECK_EQ_INT(count_entries(full), 1); /* no temporary file left behind */
        free(before);
        free(after);
        CHECK(umount2(full, 0) == 0);
    } else {
        printf("  (no tmpfs here: the full-disk case needs root and CAP_SYS_ADMIN)\n");
    }
    void *now = NULL;

    /* an unwritable folder (permissions do not bind root) */
    if (geteuid() != 0) {
        CHECK(chmod(dir, 0555) == 0);
        CHECK(dj_checkpoint_save(path, a.g, a.opt, &st) != DJ_OK);
        CHECK_STR_CONTAINS(dj_error_message(), path);
        chmod(dir, 0755);
        now = read_all(path, &n1);
        CHECK(now && n1 == n0 && memcmp(old, now, n0) == 0);
        free(now);
        CHECK_EQ_INT(count_entries(dir), 1);
    }
    /* a folder that does not exist */
    char missing[1300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.safetensors", dir);
    CHECK(dj_checkpoint_save(missing, a.g, a.opt, &st) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), missing);

    /* and the old file is still a good checkpoint; a later save replaces it */
    dj_checkpoint_state got;
    CHECK(dj_checkpoint_peek(path, &got) == DJ_OK && got.epoch == 3);
    dj_checkpoint_state_free(&got);
    CHECK(dj_checkpoint_save(path, a.g, a.opt, &st) == DJ_OK);
    CHECK(dj_checkpoint_peek(path, &got) == DJ_OK && got.epoch == 4);
    dj_checkpoint_state_free(&got);
    CHECK_EQ_INT(count_entries(dir), 1);
    free(old);
    run_free(&a);
}

/* ---- rotation ---- */

static int exists(const char *dir, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void test_rotate_keeps_newest_by_step(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/rotate", dj_test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    const char *names[] = {"step-1.safetensors", "step-2.safetensors", "step-9.safetensors", "step-10.safetensors",
                           "step-100.safetensors", "step-007.safetensors", "step-x.safetensors", "best.safetensors",
                           "step-5.safetensors.tmp.12", "step-.safetensors", "step--3.safetensors",
                           "step-99999999999999999999999.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        write_all(p, "x", 1);
    }
    CHECK(dj_checkpoint_rotate(dir, 0) == DJ_OK); /* keeps all */
    CHECK(exists(dir, "step-1.safetensors"));
    CHECK(dj_checkpoint_rotate(dir, 3) == DJ_OK);
    CHECK(exists(dir, "step-100.safetensors") && exists(dir, "step-10.safetensors") &&
          exists(dir, "step-9.safetensors"));
    CHECK(!exists(dir, "step-007.safetensors") && !exists(dir, "step-2.safetensors") &&
          !exists(dir, "step-1.safetensors"));
    /* names that are not step files are never touched */
    for (size_t i = 6; i < sizeof names / sizeof names[0]; i++)
        CHECK_MSG(exists(dir, names[i]), "%s was deleted", names[i]);
    CHECK(dj_checkpoint_rotate(dir, 1) == DJ_OK);
    CHECK(exists(dir, "step-100.safetensors") && !exists(dir, "step-10.safetensors"));
    char name[64];
    dj_checkpoint_step_name(42, name, sizeof name);
    CHECK(strcmp(name, "step-42.safetensors") == 0);
    char missing[1200];
    snprintf(missing, sizeof missing, "%s/none", dir);
    CHECK(dj_checkpoint_rotate(missing, 2) == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), missing);
}

/* a process that has exited (its pid is free until reused) */
static long dead_pid(void) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    int status;
    waitpid(pid, &status, 0);
    return (long)pid;
}

static void test_rotate_removes_temporaries_of_crashed_writers(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/stale", dj_test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    long gone = dead_pid();
    char stale[128], stale2[128], mine[128], parent[128];
    snprintf(stale, sizeof stale, "last.safetensors.tmp.%ld.0", gone);
    snprintf(stale2, sizeof stale2, "step-3.safetensors.tmp.%ld.17", gone);
    snprintf(mine, sizeof mine, "last.safetensors.tmp.%ld.2", (long)getpid()); /* a write in progress here */
    snprintf(parent, sizeof parent, "best.safetensors.tmp.%ld.0", (long)getppid()); /* a live writer */
    const char *keep[] = {mine, parent, "last.safetensors", "last.safetensors.tmp.", "last.safetensors.tmp.12",
                          "last.safetensors.tmp.12.", "last.safetensors.tmp.x.1", "last.safetensors.tmp.-5.1",
                          "notes.tmp.1.2"};
    const char *drop[] = {stale, stale2};
    char p[1200];
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, keep[i]);
        write_all(p, "x", 1);
    }
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, drop[i]);
        write_all(p, "x", 1);
    }
    CHECK(dj_checkpoint_rotate(dir, 0) == DJ_OK); /* also with keep = all */
    for (size_t i = 0; i < 2; i++)
        CHECK_MSG(!exists(dir, drop[i]), "%s was kept", drop[i]);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        CHECK_MSG(exists(dir, keep[i]), "%s was deleted", keep[i]);
}

/* ---- torchvision parity (the code path of `dojo forward`) ---- */

static void check_forward(const char *kind, int threads, float *logits_out) {
    char model[1200], weights[1200], input[1200], out[1200], rel[128];
    snprintf(rel, sizeof rel, "checkpoint/%s_tiny.yaml", kind);
    if (!dj_fixture_path(rel, model, sizeof model)) {
        dj_test_fail_at(__FILE__, __LINE__, "tests/fixtures not found");
        return;
    }
    snprintf(rel, sizeof rel, "checkpoint/%s_tiny_tv.safetensors", kind);
    dj_fixture_path(rel, weights, sizeof weights);
    dj_fixture_path("checkpoint/input.safetensors", input, sizeof input);
    snprintf(out, sizeof out, "%s/%s_logits_%d.safetensors", dj_test_tmpdir(), kind, threads);
    CHECK_MSG(dj_checkpoint_forward(model, weights, input, out, threads) == DJ_OK, "%s", dj_error_message());
    dj_safetensors *got = NULL, *want = dj_fixture_open("checkpoint/expected.safetensors");
    CHECK_MSG(dj_safetensors_open(out, &got) == DJ_OK, "%s", dj_error_message());
    if (got && want) {
        char name[128];
        snprintf(name, sizeof name, "%s_tiny/logits", kind);
        float logits[10], ref[10], amax = 0;
        CHECK_MSG(dj_safetensors_read_f32(got, "logits", 2, (int64_t[]){2, 5}, logits) == DJ_OK, "%s",
                  dj_error_message());
        CHECK(dj_safetensors_read_f32(want, name, 2, (int64_t[]){2, 5}, ref) == DJ_OK);
        for (int i = 0; i < 10; i++)
            amax = fabsf(ref[i]) > amax ? fabsf(ref[i]) : amax;
        CHECK(amax > 0.1f); /* logits worth comparing */
        dj_fixture_check_close(want, name, logits, 10, 1e-4, 1e-4 * amax);
        memcpy(logits_out, logits, sizeof logits);
    }
    dj_safetensors_close(got);
    dj_safetensors_close(want);
}

static void test_forward_matches_torchvision(void) {
    float one[10] = {0}, three[10] = {1};
    check_forward("r3d", 1, one); /* state dict with num_batches_tracked */
    check_forward("r3d", 3, three);
    CHECK_MSG(memcmp(one, three, sizeof one) == 0, "logits depend on the thread count");
    check_forward("r2plus1d", 2, one); /* without num_batches_tracked */
}

static void test_torchvision_weights_of_another_model(void) {
    char model[1200], weights[1200], input[1200], out[1200];
    if (!dj_fixture_path("checkpoint/r3d_tiny.yaml", model, sizeof model))
        SKIP("tests/fixtures not found");
    dj_fixture_path("checkpoint/r2plus1d_tiny_tv.safetensors", weights, sizeof weights);
    dj_fixture_path("checkpoint/input.safetensors", input, sizeof input);
    snprintf(out, sizeof out, "%s/never.safetensors", dj_test_tmpdir());
    CHECK(dj_checkpoint_forward(model, weights, input, out, 1) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), weights);
    CHECK_STR_CONTAINS(dj_error_message(), "stem.0.weight");
    CHECK(access(out, F_OK) != 0);
    /* weights as input: no tensor "input" */
    dj_fixture_path("checkpoint/r3d_tiny_tv.safetensors", weights, sizeof weights);
    CHECK(dj_checkpoint_forward(model, weights, weights, out, 1) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), "input");
    /* no model given and none named in a torchvision file */
    CHECK(dj_checkpoint_forward(NULL, weights, input, out, 1) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), "--model");
}

/* A dojo checkpoint names its model: forward needs no --model, and gives
 * the logits of the same network run directly in eval mode, bit for bit. */
static void test_forward_on_a_dojo_checkpoint(void) {
    char input[1200], ckpt[1200], out[1200];
    if (!dj_fixture_path("checkpoint/input.safetensors", input, sizeof input))
        SKIP("tests/fixtures not found");
    run a;
    if (run_create(&a, "r3d_mini", 4, DJ_OPTIM_SGD))
        return;
    fill_batch(&a, 1);
    train_step(&a); /* running statistics move away from 0 and 1 */
    tmp_path(ckpt, sizeof ckpt, "forward_ckpt.safetensors");
    tmp_path(out, sizeof out, "forward_out.safetensors");
    dj_checkpoint_state st = sample_state();
    CHECK(dj_checkpoint_save(ckpt, a.g, a.opt, &st) == DJ_OK);
    CHECK_MSG(dj_checkpoint_forward(NULL, ckpt, input, out, 2) == DJ_OK, "%s", dj_error_message());

    /* the same network at the input's shape, loaded and run here */
    dj_model_shape shape = {2, 4, 32, 32, 3, 0.0f, 1};
    dj_model *m = build("r3d_mini", shape);
    dj_safetensors *in = NULL, *got = NULL;
    if (m && dj_graph_plan(dj_model_graph(m), 0) == DJ_OK && dj_safetensors_open(input, &in) == DJ_OK &&
        dj_safetensors_open(out, &got) == DJ_OK) {
        dj_graph *g = dj_model_graph(m);
        CHECK_MSG(dj_checkpoint_load(ckpt, g, NULL, NULL) == DJ_OK, "%s", dj_error_message());
        dj_tensor *x = dj_graph_tensor(g, dj_model_input(m));
        CHECK(dj_safetensors_read_f32(in, "input", 5, x->shape, x->data) == DJ_OK);
        memset(dj_graph_tensor(g, dj_model_labels(m))->data, 0, 2 * sizeof(int64_t));
        size_t bytes = dj_graph_scratch_bytes(g);
        void *scratch = bytes ? malloc(bytes) : NULL;
        dj_exec ex = {NULL, scratch, bytes};
        CHECK(dj_graph_forward(g, &ex, 0) == DJ_OK);
        float logits[6] = {0};
        CHECK_MSG(dj_safetensors_read_f32(got, "logits", 2, (int64_t[]){2, 3}, logits) == DJ_OK, "%s",
                  dj_error_message());
        CHECK(memcmp(logits, dj_graph_tensor(g, dj_model_logits(m))->data, sizeof logits) == 0);
        CHECK(strcmp(dj_safetensors_metadata_get(got, "model"), "r3d_mini") == 0);
        free(scratch);
    } else {
        dj_test_fail_at(__FILE__, __LINE__, "%s", dj_error_message());
    }
    dj_safetensors_close(in);
    dj_safetensors_close(got);
    dj_model_free(m);
    run_free(&a);
}

int main(void) {
    DJ_RUN(test_resume_continues_bit_for_bit);
    DJ_RUN(test_adamw_state_round_trip);
    DJ_RUN(test_peek_and_minimal_state);
    DJ_RUN(test_refuses_mismatched_tensors);
    DJ_RUN(test_refuses_bad_metadata);
    DJ_RUN(test_refuses_damaged_files);
    DJ_RUN(test_converts_float_dtypes);
    DJ_RUN(test_save_is_atomic);
    DJ_RUN(test_rotate_keeps_newest_by_step);
    DJ_RUN(test_rotate_removes_temporaries_of_crashed_writers);
    DJ_RUN(test_forward_matches_torchvision);
    DJ_RUN(test_torchvision_weights_of_another_model);
    DJ_RUN(test_forward_on_a_dojo_checkpoint);
    return dj_test_finish();
}
