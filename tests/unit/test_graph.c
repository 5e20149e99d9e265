/* test_graph.c — the operator graph: gradients through reused memory,
 * accumulation, sticky build errors, inference plans, no allocation in a step.
 * The operators here are tiny ones defined for the test, so the graph is
 * tested apart from the real operators. */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "dojo/arena.h"
#include "dojo/graph.h"
#include "support/test.h"

/* ---- test operators ---- */

static dj_status same_shape_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    (void)p;
    (void)n_in;
    (void)n_out;
    return dj_tensor_view(in[0]->dtype, in[0]->ndim, in[0]->shape, NULL, &out[0]);
}

/* out[i] = x[i] * w[i % nw] */
static dj_status mulp_forward(const dj_exec *ex, dj_node_io *io) {
    const float *x = io->in[0]->data, *w = io->in[1]->data;
    float *y = io->out[0]->data;
    int64_t n = dj_tensor_numel(io->in[0]), nw = dj_tensor_numel(io->in[1]);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * w[i % nw];
    return DJ_OK;
}
static dj_status mulp_backward(const dj_exec *ex, dj_node_io *io) {
    const float *x = io->in[0]->data, *w = io->in[1]->data, *dy = io->dout[0]->data;
    int64_t n = dj_tensor_numel(io->in[0]), nw = dj_tensor_numel(io->in[1]);
    float *dx = io->din[0] ? io->din[0]->data : NULL, *dw = io->din[1] ? io->din[1]->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        if (dx)
            dx[i] += dy[i] * w[i % nw];
        if (dw)
            dw[i % nw] += dy[i] * x[i];
    }
    return DJ_OK;
}
static const dj_op_def mulp_op = {"mulp", same_shape_infer, mulp_forward, mulp_backward, NULL, NULL, NULL, 3, 0, NULL, 0};

static dj_status tanh_forward(const dj_exec *ex, dj_node_io *io) {
    const float *x = io->in[0]->data;
    float *y = io->out[0]->data;
    for (int64_t i = 0; i < dj_tensor_numel(io->in[0]); i++)
        y[i] = tanhf(x[i]);
    return DJ_OK;
}
static dj_status tanh_backward(const dj_exec *ex, dj_node_io *io) {
    const float *y = io->out[0]->data, *dy = io->dout[0]->data;
    float *dx = io->din[0]->data;
    for (int64_t i = 0; i < dj_tensor_numel(io->in[0]); i++)
        dx[i] += dy[i] * (1.0f - y[i] * y[i]);
    return DJ_OK;
}
static const dj_op_def tanh_op = {"tanh", same_shape_infer, tanh_forward, tanh_backward, NULL, NULL, NULL, 0, 1, NULL, 0};

static dj_status add_forward(const dj_exec *ex, dj_node_io *io) {
    const float *a = io->in[0]->data, *b = io->in[1]->data;
    float *y = io->out[0]->data;
    for (int64_t i = 0; i < dj_tensor_numel(io->in[0]); i++)
        y[i] = a[i] + b[i];
    return DJ_OK;
}
static dj_status add_backward(const dj_exec *ex, dj_node_io *io) {
    const float *dy = io->dout[0]->data;
    for (int k = 0; k < 2; k++)
        if (io->din[k]) {
            float *d = io->din[k]->data;
            for (int64_t i = 0; i < dj_tensor_numel(io->in[0]); i++)
                d[i] += dy[i];
        }
    return DJ_OK;
}
static const dj_op_def add_op = {"add", same_shape_infer, add_forward, add_backward, NULL, NULL, NULL, 0, 0, NULL, 0};

/* loss = 0.5 * sum(x^2); saves a copy of x in its saved state to exercise it */
static dj_status sumsq_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    return dj_tensor_view(DJ_DTYPE_F32, 0, NULL, NULL, &out[0]);
}
static size_t sumsq_saved(const dj_node_io *io) { return dj_tensor_nbytes(io->in[0]); }
static size_t sumsq_scratch(const dj_node_io *io) { return 128; }
static dj_status sumsq_forward(const dj_exec *ex, dj_node_io *io) {
    const float *x = io->in[0]->data;
    float *saved = io->saved;
    double acc = 0;
    for (int64_t i = 0; i < dj_tensor_numel(io->in[0]); i++) {
        acc += 0.5 * (double)x[i] * x[i];
        saved[i] = x[i];
    }
    *(float *)io->out[0]->data = (float)acc;
    return DJ_OK;
}
static dj_status sumsq_backward(const dj_exec *ex, dj_node_io *io) {
    const float *saved = io->saved;
    float g = *(const float *)io->dout[0]->data;
    float *dx = io->din[0]->data;
    for (int64_t i = 0; i < dj_tensor_numel(io->in[0]); i++)
        dx[i] += g * saved[i];
    return DJ_OK;
}
static const dj_op_def sumsq_op = {"sumsq", sumsq_infer, sumsq_forward, sumsq_backward, sumsq_scratch, sumsq_saved,
                                   NULL, 0, 0, NULL, 0};

/* ---- a deep residual chain, and the same in double for reference ---- */

enum { ROWS = 3, COLS = 7, DEPTH = 12 };

typedef struct chain {
    dj_graph *g;
    int x, w[DEPTH], loss, logits;
} chain;

static int build_chain(chain *c) {
    if (dj_graph_create(&c->g) != DJ_OK)
        return -1;
    int64_t xs[2] = {ROWS, COLS}, ws[1] = {COLS};
    c->x = dj_graph_input(c->g, "x", DJ_DTYPE_F32, 2, xs);
    int h = c->x;
    for (int l = 0; l < DEPTH; l++) {
        char name[32];
        snprintf(name, sizeof name, "layer%d.weight", l);
        c->w[l] = dj_graph_param(c->g, name, 1, ws);
        int in[2] = {h, c->w[l]};
        snprintf(name, sizeof name, "layer%d.mul", l);
        int m = dj_graph_add(c->g, name, &mulp_op, NULL, 0, in, 2, NULL, 1);
        snprintf(name, sizeof name, "layer%d.tanh", l);
        int t = dj_graph_add(c->g, name, &tanh_op, NULL, 0, &m, 1, NULL, 1);
        int r[2] = {t, h};
        snprintf(name, sizeof name, "layer%d.add", l);
        h = l > 0 ? dj_graph_add(c->g, name, &add_op, NULL, 0, r, 2, NULL, 1) : t;
    }
    c->logits = h;
    dj_graph_mark_output(c->g, h);
    c->loss = dj_graph_add(c->g, "loss", &sumsq_op, NULL, 0, &h, 1, NULL, 1);
    return dj_graph_status(c->g) == DJ_OK ? 0 : -1;
}

static double chain_ref(const double *x, double w[DEPTH][COLS]) {
    double h[ROWS * COLS];
    memcpy(h, x, sizeof h);
    for (int l = 0; l < DEPTH; l++)
        for (int i = 0; i < ROWS * COLS; i++) {
            double t = tanh(h[i] * w[l][i % COLS]);
            h[i] = l > 0 ? t + h[i] : t;
        }
    double loss = 0;
    for (int i = 0; i < ROWS * COLS; i++)
        loss += 0.5 * h[i] * h[i];
    return loss;
}

static void fill_chain(chain *c, double *x, double w[DEPTH][COLS]) {
    dj_rng r;
    dj_rng_seed(&r, 3, 0);
    float *xf = dj_graph_tensor(c->g, c->x)->data;
    for (int i = 0; i < ROWS * COLS; i++) {
        xf[i] = (float)(dj_rng_double(&r) * 2 - 1);
        x[i] = xf[i];
    }
    for (int l = 0; l < DEPTH; l++) {
        float *wf = dj_graph_tensor(c->g, c->w[l])->data;
        for (int i = 0; i < COLS; i++) {
            wf[i] = (float)(dj_rng_double(&r) * 1.6 - 0.8);
            w[l][i] = wf[i];
        }
    }
}

static void test_gradients_match_finite_differences(void) {
    chain c;
    CHECK(build_chain(&c) == 0);
    CHECK(dj_graph_plan(c.g, 1) == DJ_OK);
    double x[ROWS * COLS], w[DEPTH][COLS];
    fill_chain(&c, x, w);
    char scratch[128];
    dj_exec ex = {NULL, scratch, sizeof scratch};
    dj_graph_zero_grads(c.g);
    CHECK(dj_graph_forward(c.g, &ex, 1) == DJ_OK);
    float loss = *(float *)dj_graph_tensor(c.g, c.loss)->data;
    CHECK_CLOSE(loss, chain_ref(x, w), 1e-5, 0);
    CHECK(dj_graph_backward(c.g, &ex, c.loss, 1.0f) == DJ_OK);
    for (int l = 0; l < DEPTH; l++) {
        const float *gw = dj_graph_grad(c.g, c.w[l])->data;
        for (int i = 0; i < COLS; i++) {
            double keep = w[l][i], h = 1e-6;
            w[l][i] = keep + h;
            double up = chain_ref(x, w);
            w[l][i] = keep - h;
            double down = chain_ref(x, w);
            w[l][i] = keep;
            CHECK_CLOSE(gw[i], (up - down) / (2 * h), 2e-4, 1e-4);
        }
    }
    /* the input needs no gradient: the first layer is told so */
    CHECK(dj_graph_grad(c.g, c.x) == NULL);
    dj_graph_free(c.g);
}

static void test_memory_is_reused(void) {
    chain c;
    CHECK(build_chain(&c) == 0);
    CHECK(dj_graph_plan(c.g, 1) == DJ_OK);
    dj_graph_memory m;
    CHECK(dj_graph_memory_report(c.g, &m) == DJ_OK);
    CHECK_EQ_INT(m.params, DEPTH * 64); /* each 7-float weight is aligned to 64 bytes */
    CHECK_EQ_INT(m.grads, m.params);
    CHECK(m.activations > 0);
    CHECK(m.activations < m.activations_naive);
    CHECK(m.scratch >= 128);
    /* the arena holds all but the scratch, which the caller gives (dj_exec) */
    CHECK_EQ_INT(m.total, m.params + m.grads + m.buffers + m.inputs + m.activations + m.params_bf16);
    dj_graph_free(c.g);

    /* inference needs far less: values die after their last forward use */
    CHECK(build_chain(&c) == 0);
    CHECK(dj_graph_plan(c.g, 0) == DJ_OK);
    dj_graph_memory mi;
    CHECK(dj_graph_memory_report(c.g, &mi) == DJ_OK);
    CHECK_EQ_INT(mi.grads, 0);
    CHECK(mi.activations < m.activations);
    dj_graph_free(c.g);
}

static void test_accumulation_and_zeroing(void) {
    chain c;
    CHECK(build_chain(&c) == 0);
    CHECK(dj_graph_plan(c.g, 1) == DJ_OK);
    double x[ROWS * COLS], w[DEPTH][COLS];
    fill_chain(&c, x, w);
    char scratch[128];
    dj_exec ex = {NULL, scratch, sizeof scratch};
    dj_graph_zero_grads(c.g);
    CHECK(dj_graph_forward(c.g, &ex, 1) == DJ_OK);
    CHECK(dj_graph_backward(c.g, &ex, c.loss, 1.0f) == DJ_OK);
    float once[COLS];
    memcpy(once, dj_graph_grad(c.g, c.w[0])->data, sizeof once);
    CHECK(dj_graph_forward(c.g, &ex, 1) == DJ_OK);
    CHECK(dj_graph_backward(c.g, &ex, c.loss, 0.5f) == DJ_OK);
    const float *twice = dj_graph_grad(c.g, c.w[0])->data;
    for (int i = 0; i < COLS; i++)
        CHECK_CLOSE(twice[i], 1.5f * once[i], 1e-5, 1e-7);
    dj_graph_zero_grads(c.g);
    for (int i = 0; i < COLS; i++)
        CHECK(((const float *)dj_graph_grad(c.g, c.w[0])->data)[i] == 0.0f);
    /* the marked output (logits) is still readable after backward */
    double h[ROWS * COLS];
    memcpy(h, x, sizeof h);
    for (int l = 0; l < DEPTH; l++)
        for (int i = 0; i < ROWS * COLS; i++) {
            double t = tanh(h[i] * w[l][i % COLS]);
            h[i] = l > 0 ? t + h[i] : t;
        }
    const float *logits = dj_graph_tensor(c.g, c.logits)->data;
    for (int i = 0; i < ROWS * COLS; i++)
        CHECK_CLOSE(logits[i], h[i], 1e-5, 1e-6);
    dj_graph_free(c.g);
}

/* The backward hook: called once per node in backward order, and a
 * parameter's gradient is already final when the hook reports the node of
 * dj_graph_first_use(). */
typedef struct hook_log {
    chain *c;
    int calls, order_ok, nodes[4 * DEPTH + 8];
    float snap[DEPTH][COLS]; /* each weight's gradient when its first use finished */
} hook_log;

static void hook_record(void *arg, int node) {
    hook_log *h = arg;
    if (h->calls > 0 && node != h->nodes[h->calls - 1] - 1)
        h->order_ok = 0;
    h->nodes[h->calls++] = node;
    for (int l = 0; l < DEPTH; l++)
        if (dj_graph_first_use(h->c->g, h->c->w[l]) == node)
            memcpy(h->snap[l], dj_graph_grad(h->c->g, h->c->w[l])->data, sizeof h->snap[l]);
}

static void test_backward_hook(void) {
    chain c;
    CHECK(build_chain(&c) == 0);
    CHECK(dj_graph_plan(c.g, 1) == DJ_OK);
    double x[ROWS * COLS], w[DEPTH][COLS];
    fill_chain(&c, x, w);
    char scratch[128];
    dj_exec ex = {NULL, scratch, sizeof scratch};
    hook_log h;
    memset(&h, 0, sizeof h);
    h.c = &c;
    h.order_ok = 1;
    /* first uses: layer l's weight is read by its "mul" node only; inputs and
     * the loss have their own */
    CHECK_EQ_INT(dj_graph_first_use(c.g, c.w[0]), 0);
    CHECK_EQ_INT(dj_graph_first_use(c.g, c.w[1]), 2);
    CHECK_EQ_INT(dj_graph_first_use(c.g, c.x), 0);
    CHECK_EQ_INT(dj_graph_first_use(c.g, c.loss), -1);
    CHECK_EQ_INT(dj_graph_first_use(c.g, -5), -1);
    dj_graph_set_backward_hook(c.g, hook_record, &h);
    dj_graph_zero_grads(c.g);
    CHECK(dj_graph_forward(c.g, &ex, 1) == DJ_OK);
    CHECK(dj_graph_backward(c.g, &ex, c.loss, 1.0f) == DJ_OK);
    const int n = dj_graph_num_nodes(c.g);
    CHECK_EQ_INT(h.calls, n);
    CHECK(h.order_ok);
    CHECK_EQ_INT(h.nodes[0], n - 1);
    for (int l = 0; l < DEPTH; l++) {
        const float *final = dj_graph_grad(c.g, c.w[l])->data;
        CHECK(memcmp(h.snap[l], final, sizeof h.snap[l]) == 0);
        CHECK(final[0] != 0.0f);
    }
    /* removed: no more calls */
    dj_graph_set_backward_hook(c.g, NULL, NULL);
    CHECK(dj_graph_forward(c.g, &ex, 1) == DJ_OK);
    CHECK(dj_graph_backward(c.g, &ex, c.loss, 1.0f) == DJ_OK);
    CHECK_EQ_INT(h.calls, n);
    dj_graph_free(c.g);
}

static void test_step_allocates_nothing(void) {
#if defined(__SANITIZE_ADDRESS__)
    SKIP("malloc statistics are not meaningful under AddressSanitizer");
#else
    chain c;
    CHECK(build_chain(&c) == 0);
    CHECK(dj_graph_plan(c.g, 1) == DJ_OK);
    double x[ROWS * COLS], w[DEPTH][COLS];
    fill_chain(&c, x, w);
    char scratch[128];
    dj_exec ex = {NULL, scratch, sizeof scratch};
    struct mallinfo2 before = mallinfo2();
    for (int step = 0; step < 5; step++) {
        dj_graph_zero_grads(c.g);
        CHECK(dj_graph_forward(c.g, &ex, 1) == DJ_OK);
        CHECK(dj_graph_backward(c.g, &ex, c.loss, 1.0f) == DJ_OK);
    }
    struct mallinfo2 after = mallinfo2();
    CHECK_EQ_INT(after.uordblks, before.uordblks);
    CHECK_EQ_INT(after.hblkhd, before.hblkhd);
    dj_graph_free(c.g);
#endif
}

static void test_sticky_build_errors(void) {
    dj_graph *g;
    CHECK(dj_graph_create(&g) == DJ_OK);
    int64_t s[1] = {4};
    int x = dj_graph_input(g, "x", DJ_DTYPE_F32, 1, s);
    CHECK(x >= 0);
    CHECK(dj_graph_param(g, "x", 1, s) == -1); /* duplicate name */
    int bad[2] = {x, 99};
    CHECK(dj_graph_add(g, "mul", &mulp_op, NULL, 0, bad, 2, NULL, 1) == -1);
    CHECK(dj_graph_add(g, "tanh", &tanh_op, NULL, 0, &x, 1, NULL, 1) == -1); /* sticky */
    CHECK(dj_graph_status(g) == DJ_ERR_INVALID);
    CHECK(dj_graph_plan(g, 1) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "already exists (x)");
    dj_graph_free(g);

    CHECK(dj_graph_create(&g) == DJ_OK);
    int64_t neg[1] = {-2};
    CHECK(dj_graph_param(g, "w", 1, neg) == -1);
    CHECK(dj_graph_plan(g, 1) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), "w");
    dj_graph_free(g);

    CHECK(dj_graph_create(&g) == DJ_OK);
    CHECK(dj_graph_plan(g, 1) == DJ_ERR_INVALID); /* no nodes */
    dj_graph_free(g);
}

static void test_run_errors(void) {
    chain c;
    CHECK(build_chain(&c) == 0);
    dj_exec ex = {NULL, NULL, 0};
    CHECK(dj_graph_forward(c.g, &ex, 1) == DJ_ERR_INVALID); /* not planned */
    CHECK(dj_graph_plan(c.g, 0) == DJ_OK);
    CHECK(dj_graph_forward(c.g, &ex, 0) == DJ_ERR_INVALID); /* scratch too small */
    CHECK_STR_CONTAINS(dj_error_message(), "scratch");
    char scratch[128];
    ex.scratch = scratch;
    ex.scratch_bytes = sizeof scratch;
    CHECK(dj_graph_forward(c.g, &ex, 0) == DJ_OK);
    CHECK(dj_graph_backward(c.g, &ex, c.loss, 1.0f) == DJ_ERR_INVALID); /* inference plan */
    dj_graph_free(c.g);
}

static void test_arena(void) {
    dj_arena *a;
    CHECK(dj_arena_create(3 << 20, &a) == DJ_OK);
    CHECK(dj_arena_size(a) >= (size_t)(3 << 20));
    CHECK(dj_arena_size(a) % (2 << 20) == 0);
    const unsigned char *p = dj_arena_base(a);
    CHECK(p[0] == 0 && p[dj_arena_size(a) - 1] == 0);
    dj_arena_free(a);
    CHECK(dj_arena_create((size_t)1 << 50, &a) == DJ_ERR_RANGE);
    dj_arena_free(NULL);
}

int main(void) {
    DJ_RUN(test_gradients_match_finite_differences);
    DJ_RUN(test_memory_is_reused);
    DJ_RUN(test_accumulation_and_zeroing);
    DJ_RUN(test_backward_hook);
    DJ_RUN(test_step_allocates_nothing);
    DJ_RUN(test_sticky_build_errors);
    DJ_RUN(test_run_errors);
    DJ_RUN(test_arena);
    return dj_test_finish();
}
