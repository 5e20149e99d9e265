/* test_memory_saving.c — the graph's memory saving: batch norm + ReLU whose
 * output the backward pass recomputes instead of keeping, and gradients
 * passed in place. The fused kernels give the bits of batch norm followed
 * by ReLU (forward, recomputation, backward, synchronised statistics, any
 * thread count); gradients in place (the input gradient over the output's)
 * give the bits of a zeroed buffer; a graph with the fused node gives the
 * gradients of the graph with two nodes; saving on and off give the same
 * bits on r3d_mini, r2plus1d_mini and x3d_xs; and r3d_mini's plan shrinks
 * to the size derived from its shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "dojo/layers.h"
#include "dojo/model.h"
#include "support/test.h"

/* ---- helpers ---- */

static dj_tensor tensor(int ndim, const int64_t *shape) {
    dj_tensor t;
    memset(&t, 0, sizeof t);
    if (dj_tensor_create(DJ_DTYPE_F32, ndim, shape, &t) != DJ_OK)
        dj_test_fail_at(__FILE__, __LINE__, "cannot create a tensor: %s", dj_error_message());
    return t;
}

static dj_tensor vec(int64_t c) { return tensor(1, &c); }

static void fill_normal(dj_tensor *t, dj_rng *r, double scale, double offset) {
    float *d = t->data;
    for (int64_t i = 0, n = dj_tensor_numel(t); i < n; i++)
        d[i] = (float)(scale * dj_rng_normal(r) + offset);
}

static dj_tensor copy_of(const dj_tensor *t) {
    dj_tensor c = tensor(t->ndim, t->shape);
    memcpy(c.data, t->data, dj_tensor_nbytes(t));
    return c;
}

static int same_bits(const dj_tensor *a, const dj_tensor *b) {
    return dj_tensor_nbytes(a) == dj_tensor_nbytes(b) && memcmp(a->data, b->data, dj_tensor_nbytes(a)) == 0;
}

/* One replica's statistics "exchange": the sums stay as they are. */
static dj_status sum_alone(void *ctx, double *buf, size_t n) {
    (void)buf, (void)n;
    ++*(int *)ctx;
    return DJ_OK;
}

/* ---- kernels: fused against batch norm then ReLU ---- */

typedef struct bn_case {
    dj_tensor x, w, b, rm, rv, dy, dx0; /* inputs; dx0: what dx holds before (backward accumulates) */
} bn_case;

/* x (shape) with a large mean, weights with an exact 0 and a -0 shift in
 * channel 1 (outputs of exactly +-0), dy with -0 entries. */
static bn_case bn_case_make(const int64_t shape[5], uint64_t seed) {
    bn_case k;
    dj_rng r;
    dj_rng_seed(&r, seed, 0);
    int64_t c = shape[1];
    k.x = tensor(5, shape), k.dy = tensor(5, shape), k.dx0 = tensor(5, shape);
    k.w = vec(c), k.b = vec(c), k.rm = vec(c), k.rv = vec(c);
    fill_normal(&k.x, &r, 3.0, 20.0);
    fill_normal(&k.dy, &r, 1.0, 0.0);
    fill_normal(&k.dx0, &r, 1.0, 0.0);
    fill_normal(&k.w, &r, 0.5, 1.0);
    fill_normal(&k.b, &r, 0.5, 0.0);
    fill_normal(&k.rm, &r, 0.1, 0.0);
    fill_normal(&k.rv, &r, 0.1, 1.0);
    ((float *)k.w.data)[1] = 0.0f;
    ((float *)k.b.data)[1] = -0.0f;
    float *dy = k.dy.data;
    for (int64_t i = 0; i < dj_tensor_numel(&k.dy); i += 7)
        dy[i] = -0.0f;
    return k;
}

static void bn_case_free(bn_case *k) {
    dj_tensor *all[] = {&k->x, &k->w, &k->b, &k->rm, &k->rv, &k->dy, &k->dx0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dj_tensor_free(all[i]);
}

/* Every output of one forward + backward, by either path. */
typedef struct bn_run {
    dj_tensor y, rm, rv, mean, invstd, scale, shift, dx, dw, db, again;
} bn_run;

static void bn_run_alloc(bn_run *o, const bn_case *k) {
    int64_t c = k->x.shape[1];
    o->y = tensor(5, k->x.shape), o->again = tensor(5, k->x.shape);
    o->rm = copy_of(&k->rm), o->rv = copy_of(&k->rv), o->dx = copy_of(&k->dx0);
    o->mean = vec(c), o->invstd = vec(c), o->scale = vec(c), o->shift = vec(c), o->dw = vec(c), o->db = vec(c);
    memset(o->dw.data, 0, dj_tensor_nbytes(&o->dw));
    memset(o->db.data, 0, dj_tensor_nbytes(&o->db));
    float *a = o->again.data;
    for (int64_t i = 0; i < dj_tensor_numel(&o->again); i++)
        a[i] = NAN; /* recomputation must overwrite all of it */
}

static void bn_run_free(bn_run *o) {
    dj_tensor *all[] = {&o->y, &o->rm, &o->rv, &o->mean, &o->invstd, &o->scale, &o->shift, &o->dx, &o->dw, &o->db,
                        &o->again};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dj_tensor_free(all[i]);
}

/* batch norm, then ReLU, as two operators with a buffer between */
static void run_pair(const dj_exec *ex, const dj_stats_sync *sync, const bn_case *k, bn_run *o) {
    dj_batchnorm_params p = dj_batchnorm_defaults();
    dj_tensor bn = tensor(5, k->x.shape), dbn = tensor(5, k->x.shape);
    memset(dbn.data, 0, dj_tensor_nbytes(&dbn));
    CHECK(dj_batchnorm_forward_sync(ex, &p, sync, &k->x, &k->w, &k->b, &o->rm, &o->rv, &bn, &o->mean, &o->invstd) ==
          DJ_OK);
    CHECK(dj_act_forward(ex, DJ_ACT_RELU, &bn, &o->y) == DJ_OK);
    CHECK(dj_act_backward(ex, DJ_ACT_RELU, &bn, &k->dy, &dbn) == DJ_OK);
    CHECK(dj_batchnorm_backward_sync(ex, &p, sync, &k->x, &k->w, &o->mean, &o->invstd, &dbn, &o->dx, &o->dw, &o->db) ==
          DJ_OK);
    dj_tensor_free(&bn);
    dj_tensor_free(&dbn);
}

/* the fused node's kernels; the output is recomputed into o->again */
static void run_fused(const dj_exec *ex, const dj_stats_sync *sync, const bn_case *k, bn_run *o) {
    dj_batchnorm_params p = dj_batchnorm_defaults();
    dj_tensor dy = copy_of(&k->dy);
    CHECK_MSG(dj_batchnorm_relu_forward(ex, &p, sync, &k->x, &k->w, &k->b, &o->rm, &o->rv, &o->y, &o->mean,
                                        &o->invstd, &o->scale, &o->shift) == DJ_OK,
              "%s", dj_error_message());
    CHECK(dj_batchnorm_relu_recompute(ex, &k->x, &o->mean, &o->scale, &o->shift, &o->again) == DJ_OK);
    CHECK(dj_batchnorm_relu_backward(ex, &p, sync, &k->x, &k->w, &o->mean, &o->invstd, &o->again, &dy, &o->dx,
                                     &o->dw, &o->db) == DJ_OK);
    dj_tensor_free(&dy);
}

static void expect_same_run(const bn_run *a, const bn_run *b, const char *what) {
    CHECK_MSG(same_bits(&a->y, &b->y), "%s: output", what);
    CHECK_MSG(same_bits(&a->rm, &b->rm) && same_bits(&a->rv, &b->rv), "%s: running statistics", what);
    CHECK_MSG(same_bits(&a->mean, &b->mean) && same_bits(&a->invstd, &b->invstd), "%s: saved statistics", what);
    CHECK_MSG(same_bits(&a->dx, &b->dx), "%s: input gradient", what);
    CHECK_MSG(same_bits(&a->dw, &b->dw) && same_bits(&a->db, &b->db), "%s: weight and bias gradients", what);
}

static void test_fused_kernels_give_the_pairs_bits(void) {
    /* R = 60 (a tail after the 8 lanes) and R = 1200 (several 512-value blocks) */
    const int64_t shapes[][5] = {{2, 5, 3, 4, 5}, {3, 3, 2, 20, 30}};
    int calls = 0;
    dj_stats_sync alone = {sum_alone, &calls};
    for (size_t s = 0; s < 2; s++)
        for (int synced = 0; synced < 2; synced++) {
            bn_case k = bn_case_make(shapes[s], 11 + s);
            bn_run pair, fused;
            bn_run_alloc(&pair, &k);
            bn_run_alloc(&fused, &k);
            dj_exec ex = {NULL, NULL, 0};
            run_pair(&ex, synced ? &alone : NULL, &k, &pair);
            run_fused(&ex, synced ? &alone : NULL, &k, &fused);
            char what[64];
            snprintf(what, sizeof what, "shape %zu%s", s, synced ? ", synchronised" : "");
            expect_same_run(&pair, &fused, what);
            CHECK_MSG(same_bits(&fused.again, &fused.y), "%s: the recomputed output differs", what);
            /* the exact zeros of channel 1 come out +0, as ReLU writes them */
            const float *y = fused.y.data;
            CHECK(signbit(y[k.x.shape[2] * k.x.shape[3] * k.x.shape[4]]) == 0);
            bn_run_free(&pair);
            bn_run_free(&fused);
            bn_case_free(&k);
        }
    CHECK(calls > 0); /* the synchronised runs exchanged their sums */
}

static void test_fused_kernels_thread_count(void) {
    const int64_t shape[5] = {2, 7, 2, 9, 11};
    bn_case k = bn_case_make(shape, 5);
    bn_run one, two;
    bn_run_alloc(&one, &k);
    bn_run_alloc(&two, &k);
    dj_threadpool *pool = NULL;
    CHECK(dj_threadpool_create(2, &pool) == DJ_OK);
    dj_exec e1 = {NULL, NULL, 0}, e2 = {pool, NULL, 0};
    run_fused(&e1, NULL, &k, &one);
    run_fused(&e2, NULL, &k, &two);
    expect_same_run(&one, &two, "1 against 2 threads");
    CHECK(same_bits(&one.again, &two.again));
    dj_threadpool_free(pool);
    bn_run_free(&one);
    bn_run_free(&two);
    bn_case_free(&k);
}

static void test_fused_kernels_bad_arguments(void) {
    const int64_t shape[5] = {2, 3, 2, 3, 3}, other[5] = {2, 3, 2, 3, 4};
    bn_case k = bn_case_make(shape, 3);
    bn_run o;
    bn_run_alloc(&o, &k);
    dj_exec ex = {NULL, NULL, 0};
    dj_batchnorm_params p = dj_batchnorm_defaults();
    dj_tensor short_vec = vec(2), wrong = tensor(5, other);
    CHECK_EQ_INT(dj_batchnorm_relu_forward(&ex, &p, NULL, &k.x, &k.w, &k.b, &o.rm, &o.rv, &o.y, &o.mean, &o.invstd,
                                           &short_vec, &o.shift),
                 DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "save_scale");
    CHECK_EQ_INT(dj_batchnorm_relu_recompute(&ex, &k.x, &o.mean, &o.scale, &short_vec, &o.again), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "save_shift");
    CHECK_EQ_INT(dj_batchnorm_relu_recompute(&ex, &k.x, &o.mean, &o.scale, &o.shift, &wrong), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_batchnorm_relu_recompute");
    CHECK_EQ_INT(dj_batchnorm_relu_backward(&ex, &p, NULL, &k.x, &k.w, &o.mean, &o.invstd, &wrong, &k.dy, &o.dx,
                                            &o.dw, &o.db),
                 DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "output");
    dj_tensor_free(&short_vec);
    dj_tensor_free(&wrong);
    bn_run_free(&o);
    bn_case_free(&k);
}

/* ---- gradients in place: din is dout's own buffer ---- */

static dj_tensor zeros_like(const dj_tensor *t) {
    dj_tensor z = tensor(t->ndim, t->shape);
    memset(z.data, 0, dj_tensor_nbytes(&z));
    return z;
}

static void test_backward_in_place(void) {
    const int64_t shape[5] = {2, 5, 3, 4, 5};
    bn_case k = bn_case_make(shape, 21);
    bn_run o;
    bn_run_alloc(&o, &k);
    dj_exec ex = {NULL, NULL, 0};
    int calls = 0;
    dj_stats_sync alone = {sum_alone, &calls};
    dj_batchnorm_params p = dj_batchnorm_defaults();
    CHECK(dj_batchnorm_relu_forward(&ex, &p, NULL, &k.x, &k.w, &k.b, &o.rm, &o.rv, &o.y, &o.mean, &o.invstd,
                                    &o.scale, &o.shift) == DJ_OK);
    for (int relu = 0; relu < 2; relu++)
        for (int synced = 0; synced < 2; synced++) {
            const dj_stats_sync *sync = synced ? &alone : NULL;
            dj_tensor dx = zeros_like(&k.x), dw = zeros_like(&o.dw), db = zeros_like(&o.db);
            dj_tensor g = copy_of(&k.dy), dw2 = zeros_like(&o.dw), db2 = zeros_like(&o.db);
            if (relu) {
                CHECK(dj_batchnorm_relu_backward(&ex, &p, sync, &k.x, &k.w, &o.mean, &o.invstd, &o.y, &k.dy, &dx, &dw,
                                                 &db) == DJ_OK);
                CHECK(dj_batchnorm_relu_backward(&ex, &p, sync, &k.x, &k.w, &o.mean, &o.invstd, &o.y, &g, &g, &dw2,
                                                 &db2) == DJ_OK);
            } else {
                CHECK(dj_batchnorm_backward_sync(&ex, &p, sync, &k.x, &k.w, &o.mean, &o.invstd, &k.dy, &dx, &dw, &db) ==
                      DJ_OK);
                CHECK(dj_batchnorm_backward_sync(&ex, &p, sync, &k.x, &k.w, &o.mean, &o.invstd, &g, &g, &dw2, &db2) ==
                      DJ_OK);
            }
            CHECK_MSG(same_bits(&g, &dx), "batch norm%s%s in place: input gradient", relu ? " + ReLU" : "",
                      synced ? ", synchronised" : "");
            CHECK(same_bits(&dw, &dw2) && same_bits(&db, &db2));
            dj_tensor *all[] = {&dx, &dw, &db, &g, &dw2, &db2};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                dj_tensor_free(all[i]);
        }
    /* add + ReLU: dx over dy, the residual's gradient still added */
    dj_tensor dx = zeros_like(&k.x), dres = copy_of(&k.dx0), g = copy_of(&k.dy), dres2 = copy_of(&k.dx0);
    CHECK(dj_add_relu_backward(&ex, &o.y, &k.dy, &dx, &dres) == DJ_OK);
    CHECK(dj_add_relu_backward(&ex, &o.y, &g, &g, &dres2) == DJ_OK);
    CHECK_MSG(same_bits(&g, &dx), "add + ReLU in place: input gradient");
    CHECK_MSG(same_bits(&dres, &dres2), "add + ReLU in place: residual gradient");
    dj_tensor_free(&dx), dj_tensor_free(&dres), dj_tensor_free(&g), dj_tensor_free(&dres2);
    bn_run_free(&o);
    bn_case_free(&k);
}

/* ---- a graph: the fused node against two nodes ---- */

enum { NET_PAIR, NET_FUSED, NET_FUSED_KEPT }; /* two nodes; fused, recomputed; fused, kept */

typedef struct net {
    dj_graph *g;
    int x, y, loss;
    void *scratch;
    dj_exec ex;
    dj_threadpool *pool;
} net;

static int bn_relu(dj_graph *g, const char *name, int h, int kind) {
    if (kind != NET_PAIR)
        return dj_layer_batchnorm_relu(g, name, h, 0.1f, 1e-5f);
    char relu[64];
    snprintf(relu, sizeof relu, "%s.relu", name);
    return dj_layer_act(g, relu, dj_layer_batchnorm(g, name, h, 0.1f, 1e-5f), DJ_ACT_RELU);
}

/* conv -> bn+relu -> conv -> bn+relu (+ the first: a residual) -> bn+relu
 * -> pool -> linear -> cross-entropy, with seeded parameters and inputs */
static int net_build(net *n, int kind, int threads) {
    memset(n, 0, sizeof *n);
    if (dj_graph_create(&n->g) != DJ_OK)
        return -1;
    dj_graph *g = n->g;
    int64_t xs[5] = {2, 3, 4, 6, 6}, ys[1] = {2};
    n->x = dj_graph_input(g, "x", DJ_DTYPE_F32, 5, xs);
    n->y = dj_graph_input(g, "y", DJ_DTYPE_I64, 1, ys);
    int a = bn_relu(g, "bn1", dj_layer_conv3d(g, "conv1", n->x, 8, dj_conv_same(3, 3, 3)), kind);
    int b = bn_relu(g, "bn2", dj_layer_conv3d(g, "conv2", a, 8, dj_conv_same(3, 3, 3)), kind);
    int c = bn_relu(g, "bn3", dj_layer_add(g, "res", b, a), kind);
    int logits = dj_layer_linear(g, "fc", dj_layer_global_avgpool(g, "pool", c), 4, 1);
    n->loss = dj_layer_cross_entropy(g, "loss", logits, n->y, 0.0f);
    dj_graph_set_threads(g, threads);
    dj_graph_set_memory_saving(g, kind != NET_FUSED_KEPT);
    if (dj_graph_plan(g, 1) != DJ_OK)
        return -1;
    dj_rng r;
    dj_rng_seed(&r, 9, 0);
    for (int id = 0; id < dj_graph_num_tensors(g); id++) {
        dj_tensor_kind k = dj_graph_kind(g, id);
        if (k == DJ_KIND_PARAM || k == DJ_KIND_BUFFER || id == n->x)
            fill_normal(dj_graph_tensor(g, id), &r, k == DJ_KIND_BUFFER ? 0.0 : 0.4,
                        strstr(dj_graph_name(g, id), "running_var") ? 1.0 : 0.0);
    }
    int64_t *labels = dj_graph_tensor(g, n->y)->data;
    labels[0] = 1, labels[1] = 3;
    size_t bytes = dj_graph_scratch_bytes(g);
    n->scratch = bytes ? malloc(bytes) : NULL;
    if (threads > 1 && dj_threadpool_create(threads, &n->pool) != DJ_OK)
        return -1;
    n->ex = (dj_exec){n->pool, n->scratch, bytes};
    return 0;
}

static void net_free(net *n) {
    dj_graph_free(n->g);
    free(n->scratch);
    dj_threadpool_free(n->pool);
}

/* Two forward + backward passes, the gradients accumulating. */
static int net_steps(net *n) {
    dj_graph_zero_grads(n->g);
    for (int s = 0; s < 2; s++)
        if (dj_graph_forward(n->g, &n->ex, 1) != DJ_OK || dj_graph_backward(n->g, &n->ex, n->loss, 1.0f) != DJ_OK)
            return -1;
    return 0;
}

/* Every parameter, gradient and buffer of a and b, by name, bit for bit. */
static void expect_same_state(dj_graph *a, dj_graph *b, const char *what) {
    int compared = 0;
    for (int id = 0; id < dj_graph_num_tensors(a); id++) {
        dj_tensor_kind k = dj_graph_kind(a, id);
        if (k != DJ_KIND_PARAM && k != DJ_KIND_BUFFER)
            continue;
        int other = dj_graph_find(b, dj_graph_name(a, id));
        CHECK_MSG(other >= 0, "%s: %s missing", what, dj_graph_name(a, id));
        if (other < 0)
            continue;
        CHECK_MSG(same_bits(dj_graph_tensor(a, id), dj_graph_tensor(b, other)), "%s: %s differs", what,
                  dj_graph_name(a, id));
        if (k == DJ_KIND_PARAM)
            CHECK_MSG(same_bits(dj_graph_grad(a, id), dj_graph_grad(b, other)), "%s: gradient of %s differs", what,
                      dj_graph_name(a, id));
        compared++;
    }
    CHECK(compared > 0);
}

static void test_fused_node_gives_the_pairs_gradients(void) {
    net pair, fused, kept, fused2;
    CHECK(net_build(&pair, NET_PAIR, 1) == 0);
    CHECK(net_build(&fused, NET_FUSED, 1) == 0);
    CHECK(net_build(&kept, NET_FUSED_KEPT, 1) == 0);
    CHECK(net_build(&fused2, NET_FUSED, 2) == 0);
    CHECK(net_steps(&pair) == 0 && net_steps(&fused) == 0 && net_steps(&kept) == 0 && net_steps(&fused2) == 0);
    CHECK(same_bits(dj_graph_tensor(pair.g, pair.loss), dj_graph_tensor(fused.g, fused.loss)));
    expect_same_state(pair.g, fused.g, "two nodes against fused, recomputed");
    expect_same_state(kept.g, fused.g, "fused, kept against recomputed");
    expect_same_state(fused.g, fused2.g, "1 against 2 threads");
    dj_graph_memory mp, mf, mk;
    CHECK(dj_graph_memory_report(pair.g, &mp) == DJ_OK && dj_graph_memory_report(fused.g, &mf) == DJ_OK &&
          dj_graph_memory_report(kept.g, &mk) == DJ_OK);
    /* bn1's and bn2's outputs (2x8x4x6x6 floats each) are recomputed; bn3's
     * output goes to the pool, whose backward reads only shapes, and its
     * producer reads it: it is recomputed too */
    CHECK_EQ_INT(mf.recomputed, 3 * 2 * 8 * 4 * 6 * 6 * 4);
    CHECK_EQ_INT(mk.recomputed, 0);
    CHECK_EQ_INT(mp.recomputed, 0);
    CHECK(mf.activations < mk.activations && mk.activations < mp.activations);
    net_free(&pair);
    net_free(&fused);
    net_free(&kept);
    net_free(&fused2);
}

static void test_recompute_is_set_before_planning(void) {
    net n;
    CHECK(net_build(&n, NET_FUSED, 1) == 0);
    dj_graph_set_memory_saving(n.g, 0);
    CHECK_EQ_INT(dj_graph_status(n.g), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "before planning");
    net_free(&n);
}

/* ---- the mini models: recomputation on and off, bit for bit ---- */

static dj_model *model_build(const char *name, int recompute, int threads) {
    char path[1024];
    dj_config *c = NULL;
    dj_model *m = NULL;
    dj_model_shape shape = {2, 8, 32, 32, 5, 0.0f, threads};
    if (dj_model_find(name, path, sizeof path) != DJ_OK || dj_config_load(path, &c) != DJ_OK ||
        dj_model_create(c, &shape, &m) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "building %s: %s", name, dj_error_message());
        dj_config_free(c);
        return NULL;
    }
    dj_config_free(c);
    dj_graph *g = dj_model_graph(m);
    dj_graph_set_memory_saving(g, recompute);
    if (dj_graph_plan(g, 1) != DJ_OK || dj_model_init(m, 3) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "planning %s: %s", name, dj_error_message());
        dj_model_free(m);
        return NULL;
    }
    dj_rng r;
    dj_rng_seed(&r, 4, 0);
    fill_normal(dj_graph_tensor(g, dj_model_input(m)), &r, 1.0, 0.0);
    int64_t *labels = dj_graph_tensor(g, dj_model_labels(m))->data;
    labels[0] = 1, labels[1] = 4;
    return m;
}

/* Two training steps (forward, backward, plain SGD on every parameter). */
static int model_steps(dj_model *m, int threads) {
    dj_graph *g = dj_model_graph(m);
    size_t bytes = dj_graph_scratch_bytes(g);
    void *scratch = bytes ? malloc(bytes) : NULL;
    dj_threadpool *pool = NULL;
    int rc = threads > 1 && dj_threadpool_create(threads, &pool) != DJ_OK ? -1 : 0;
    dj_exec ex = {pool, scratch, bytes};
    for (int s = 0; s < 2 && rc == 0; s++) {
        dj_graph_zero_grads(g);
        if (dj_graph_forward(g, &ex, 1) != DJ_OK || dj_graph_backward(g, &ex, dj_model_loss(m), 1.0f) != DJ_OK) {
            rc = -1;
            break;
        }
        for (int id = 0; id < dj_graph_num_tensors(g); id++)
            if (dj_graph_kind(g, id) == DJ_KIND_PARAM) {
                float *w = dj_graph_tensor(g, id)->data;
                const float *d = dj_graph_grad(g, id)->data;
                for (int64_t i = 0, n = dj_tensor_numel(dj_graph_grad(g, id)); i < n; i++)
                    w[i] -= 0.05f * d[i];
            }
    }
    dj_threadpool_free(pool);
    free(scratch);
    return rc;
}

static void test_models_same_bits_with_and_without(void) {
    const char *names[] = {"r3d_mini", "r2plus1d_mini", "x3d_xs"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        dj_model *on = model_build(names[i], 1, 1), *off = model_build(names[i], 0, 1), *on2 = model_build(names[i], 1, 2);
        if (!on || !off || !on2) {
            dj_model_free(on), dj_model_free(off), dj_model_free(on2);
            continue;
        }
        CHECK_MSG(model_steps(on, 1) == 0 && model_steps(off, 1) == 0 && model_steps(on2, 2) == 0, "%s: %s",
                  names[i], dj_error_message());
        CHECK_MSG(same_bits(dj_graph_tensor(dj_model_graph(on), dj_model_loss(on)),
                            dj_graph_tensor(dj_model_graph(off), dj_model_loss(off))),
                  "%s: loss", names[i]);
        expect_same_state(dj_model_graph(on), dj_model_graph(off), names[i]);
        expect_same_state(dj_model_graph(on), dj_model_graph(on2), names[i]);
        dj_graph_memory mon, moff;
        CHECK(dj_graph_memory_report(dj_model_graph(on), &mon) == DJ_OK);
        CHECK(dj_graph_memory_report(dj_model_graph(off), &moff) == DJ_OK);
        CHECK_MSG(mon.recomputed > 0 && mon.activations < moff.activations, "%s: %zu against %zu bytes", names[i],
                  mon.activations, moff.activations);
        dj_model_free(on);
        dj_model_free(off);
        dj_model_free(on2);
    }
}

/* r3d_mini's plan, in units of S = the stem's output (N x 16 x T x H/2 x
 * W/2 floats); stage i's tensors are S / 4^i (twice the channels, half of
 * T, H and W). The peak is in layer1's add+ReLU backward. Live there: what
 * the rest of the backward pass still reads — the stem's conv output,
 * layer1's conv1 and conv2 outputs, the add+ReLU output (4 S) and, when
 * BN+ReLU outputs are kept (as PyTorch keeps them, its ReLU in place), the
 * stem's and conv1's BN+ReLU outputs (2 S) — and the gradients of the
 * add's output and of its two inputs (3 S), of which the first two share
 * one buffer when gradients pass in place (2 S). Kept, nothing in place:
 * 9 S; saving memory: 6 S. The outputs recomputed: stem and layer1 (2 S),
 * layers 2-4 (S / 4^i): 2.328 S. */
static void test_r3d_mini_plan_bound(void) {
    dj_model *on = model_build("r3d_mini", 1, 1), *off = model_build("r3d_mini", 0, 1);
    if (on && off) {
        dj_graph *g = dj_model_graph(on);
        const double S = (double)dj_tensor_nbytes(dj_graph_tensor(g, dj_graph_find(g, "stem.0.out")));
        CHECK_EQ_INT((int64_t)S, 2 * 16 * 8 * 16 * 16 * 4);
        dj_graph_memory mon, moff;
        CHECK(dj_graph_memory_report(g, &mon) == DJ_OK);
        CHECK(dj_graph_memory_report(dj_model_graph(off), &moff) == DJ_OK);
        const double small = S / 16; /* pooled features, logits, statistics, alignment */
        CHECK_MSG(moff.activations >= 9.0 * S, "not saving: %.3f S, derived 9 S", moff.activations / S);
        CHECK_MSG(mon.activations <= 6.0 * S + small, "saving: %.3f S, derived 6 S", mon.activations / S);
        CHECK_MSG(fabs(mon.recomputed - 2.328125 * S) < 1024, "recomputed %.4f S, derived 2.33 S",
                  mon.recomputed / S);
    }
    dj_model_free(on);
    dj_model_free(off);
}

int main(void) {
    DJ_RUN(test_fused_kernels_give_the_pairs_bits);
    DJ_RUN(test_fused_kernels_thread_count);
    DJ_RUN(test_fused_kernels_bad_arguments);
    DJ_RUN(test_backward_in_place);
    DJ_RUN(test_fused_node_gives_the_pairs_gradients);
    DJ_RUN(test_recompute_is_set_before_planning);
    DJ_RUN(test_models_same_bits_with_and_without);
    DJ_RUN(test_r3d_mini_plan_bound);
    return dj_test_finish();
}
