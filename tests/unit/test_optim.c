/* test_optim.c — SGD and AdamW follow PyTorch's rules step by step; weight
 * decay skipping; clipping; schedules. References are written in double. */
#include <math.h>
#include <string.h>

#include "dojo/dojo.h"
#include "dojo/optim.h"
#include "support/test.h"

static dj_status id_infer(const void *p, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out) {
    return dj_tensor_view(DJ_DTYPE_F32, 0, NULL, NULL, &out[0]);
}
static dj_status id_forward(const dj_exec *ex, dj_node_io *io) { return DJ_OK; }
static dj_status id_backward(const dj_exec *ex, dj_node_io *io) { return DJ_OK; }
static const dj_op_def sink_op = {"sink", id_infer, id_forward, id_backward, NULL, NULL, NULL, 0, 0, NULL, 0};

enum { NW = 6, NB = 3 };

typedef struct fixture {
    dj_graph *g;
    int w, b;
} fixture;

static void make_graph(fixture *f) {
    CHECK(dj_graph_create(&f->g) == DJ_OK);
    int64_t ws[2] = {2, 3}, bs[1] = {3};
    f->w = dj_graph_param(f->g, "fc.weight", 2, ws);
    f->b = dj_graph_param(f->g, "fc.bias", 1, bs);
    int in[2] = {f->w, f->b};
    dj_graph_add(f->g, "sink", &sink_op, NULL, 0, in, 2, NULL, 1);
    CHECK(dj_graph_plan(f->g, 1) == DJ_OK);
}

static void set_grads(fixture *f, int step, double *gw, double *gb) {
    float *w = dj_graph_grad(f->g, f->w)->data, *b = dj_graph_grad(f->g, f->b)->data;
    for (int i = 0; i < NW; i++)
        w[i] = (float)(gw[i] = sin(1.0 + i + 3.0 * step));
    for (int i = 0; i < NB; i++)
        b[i] = (float)(gb[i] = cos(2.0 + i + 5.0 * step));
}

static void set_params(fixture *f, double *w, double *b) {
    float *wf = dj_graph_tensor(f->g, f->w)->data, *bf = dj_graph_tensor(f->g, f->b)->data;
    for (int i = 0; i < NW; i++)
        wf[i] = (float)(w[i] = 0.1 * (i - 2));
    for (int i = 0; i < NB; i++)
        bf[i] = (float)(b[i] = 0.05 * (i + 1));
}

static void sgd_ref(double *p, const double *g, double *buf, int n, int first, double lr, double mom, double wd,
                    int nesterov) {
    for (int i = 0; i < n; i++) {
        double d = g[i] + wd * p[i];
        if (mom > 0) {
            buf[i] = first ? d : mom * buf[i] + d;
            d = nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

static void run_sgd(int nesterov, int decay_all) {
    fixture f;
    make_graph(&f);
    dj_optim_config c = dj_optim_defaults(DJ_OPTIM_SGD);
    c.momentum = 0.9;
    c.nesterov = nesterov;
    c.weight_decay = 1e-2;
    c.decay_norms_and_biases = decay_all;
    dj_optimizer *opt;
    CHECK(dj_optimizer_create(f.g, &c, &opt) == DJ_OK);
    CHECK_EQ_INT(dj_optimizer_num_states(opt), 2);
    const char *name;
    dj_optimizer_state(opt, 0, &name);
    CHECK(strcmp(name, "fc.weight.momentum_buffer") == 0);
    double w[NW], b[NB], gw[NW], gb[NB], bw[NW] = {0}, bb[NB] = {0};
    set_params(&f, w, b);
    for (int step = 0; step < 4; step++) {
        set_grads(&f, step, gw, gb);
        double lr = 0.1 / (step + 1);
        CHECK(dj_optimizer_step(opt, NULL, lr, NULL) == DJ_OK);
        sgd_ref(w, gw, bw, NW, step == 0, lr, 0.9, 1e-2, nesterov);
        sgd_ref(b, gb, bb, NB, step == 0, lr, 0.9, decay_all ? 1e-2 : 0.0, nesterov);
    }
    const float *wf = dj_graph_tensor(f.g, f.w)->data, *bf = dj_graph_tensor(f.g, f.b)->data;
    for (int i = 0; i < NW; i++)
        CHECK_CLOSE(wf[i], w[i], 1e-5, 1e-6);
    for (int i = 0; i < NB; i++)
        CHECK_CLOSE(bf[i], b[i], 1e-5, 1e-6);
    CHECK_EQ_INT(dj_optimizer_steps(opt), 4);
    dj_optimizer_free(opt);
    dj_graph_free(f.g);
}

static void test_sgd_momentum(void) { run_sgd(0, 1); }
static void test_sgd_nesterov(void) { run_sgd(1, 1); }
static void test_sgd_skips_decay_on_biases(void) { run_sgd(0, 0); }

static void test_adamw(void) {
    fixture f;
    make_graph(&f);
    dj_optim_config c = dj_optim_defaults(DJ_OPTIM_ADAMW);
    c.weight_decay = 0.05;
    dj_optimizer *opt;
    CHECK(dj_optimizer_create(f.g, &c, &opt) == DJ_OK);
    CHECK_EQ_INT(dj_optimizer_num_states(opt), 4);
    const char *name;
    dj_optimizer_state(opt, 3, &name);
    CHECK(strcmp(name, "fc.bias.exp_avg_sq") == 0);
    double w[NW], b[NB], gw[NW], gb[NB], m[NW] = {0}, v[NW] = {0};
    set_params(&f, w, b);
    for (int step = 1; step <= 5; step++) {
        set_grads(&f, step, gw, gb);
        double lr = 1e-3;
        CHECK(dj_optimizer_step(opt, NULL, lr, NULL) == DJ_OK);
        for (int i = 0; i < NW; i++) {
            w[i] *= 1 - lr * 0.05;
            m[i] = 0.9 * m[i] + 0.1 * gw[i];
            v[i] = 0.999 * v[i] + 0.001 * gw[i] * gw[i];
            double mh = m[i] / (1 - pow(0.9, step)), vh = v[i] / (1 - pow(0.999, step));
            w[i] -= lr * mh / (sqrt(vh) + 1e-8);
        }
    }
    const float *wf = dj_graph_tensor(f.g, f.w)->data;
    for (int i = 0; i < NW; i++)
        CHECK_CLOSE(wf[i], w[i], 1e-5, 1e-7);
    dj_optimizer_free(opt);
    dj_graph_free(f.g);
}

static void test_clipping_and_non_finite(void) {
    fixture f;
    make_graph(&f);
    dj_optim_config c = dj_optim_defaults(DJ_OPTIM_SGD);
    c.clip_grad_norm = 0.5;
    dj_optimizer *opt;
    CHECK(dj_optimizer_create(f.g, &c, &opt) == DJ_OK);
    double w[NW], b[NB], gw[NW], gb[NB];
    set_params(&f, w, b);
    set_grads(&f, 0, gw, gb);
    double norm2 = 0;
    for (int i = 0; i < NW; i++)
        norm2 += gw[i] * gw[i];
    for (int i = 0; i < NB; i++)
        norm2 += gb[i] * gb[i];
    double norm;
    CHECK(dj_optimizer_step(opt, NULL, 1.0, &norm) == DJ_OK);
    CHECK_CLOSE(norm, sqrt(norm2), 1e-6, 0);
    double scale = 0.5 / (sqrt(norm2) + 1e-6);
    const float *wf = dj_graph_tensor(f.g, f.w)->data;
    for (int i = 0; i < NW; i++)
        CHECK_CLOSE(wf[i], w[i] - scale * gw[i], 1e-5, 1e-6);
    /* a NaN gradient skips the update and says so */
    ((float *)dj_graph_grad(f.g, f.b)->data)[1] = NAN;
    float before = wf[0];
    CHECK(dj_optimizer_step(opt, NULL, 1.0, &norm) == DJ_ERR_RANGE);
    CHECK(wf[0] == before);
    CHECK(dj_optimizer_step(opt, NULL, -1.0, NULL) == DJ_ERR_INVALID);
    dj_optimizer_free(opt);
    dj_graph_free(f.g);
}

static void test_bad_configs(void) {
    fixture f;
    make_graph(&f);
    dj_optimizer *opt;
    dj_optim_config c = dj_optim_defaults(DJ_OPTIM_SGD);
    c.nesterov = 1; /* without momentum */
    CHECK(dj_optimizer_create(f.g, &c, &opt) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "nesterov");
    c = dj_optim_defaults(DJ_OPTIM_ADAMW);
    c.beta2 = 1.0;
    CHECK(dj_optimizer_create(f.g, &c, &opt) == DJ_ERR_INVALID);
    c = dj_optim_defaults(DJ_OPTIM_SGD);
    c.momentum = 1.5;
    CHECK(dj_optimizer_create(f.g, &c, &opt) == DJ_ERR_INVALID);
    dj_graph_free(f.g);
}

static void test_threads_do_not_change_bits(void) {
    float results[2][NW];
    for (int r = 0; r < 2; r++) {
        fixture f;
        make_graph(&f);
        dj_threadpool *pool = NULL;
        if (r == 1)
            CHECK(dj_threadpool_create(3, &pool) == DJ_OK);
        dj_exec ex = {pool, NULL, 0};
        dj_optim_config c = dj_optim_defaults(DJ_OPTIM_ADAMW);
        dj_optimizer *opt;
        CHECK(dj_optimizer_create(f.g, &c, &opt) == DJ_OK);
        double w[NW], b[NB], gw[NW], gb[NB];
        set_params(&f, w, b);
        for (int step = 0; step < 3; step++) {
            set_grads(&f, step, gw, gb);
            CHECK(dj_optimizer_step(opt, &ex, 1e-2, NULL) == DJ_OK);
        }
        memcpy(results[r], dj_graph_tensor(f.g, f.w)->data, sizeof results[r]);
        dj_optimizer_free(opt);
        dj_threadpool_free(pool);
        dj_graph_free(f.g);
    }
    CHECK(memcmp(results[0], results[1], sizeof results[0]) == 0);
}

static void test_schedules(void) {
    dj_schedule s = {DJ_SCHEDULE_COSINE, 0.4, 10, 0.1, 110, 0, 0, 0.0};
    CHECK(dj_schedule_check(&s) == DJ_OK);
    CHECK_CLOSE(dj_schedule_lr(&s, 0), 0.04, 1e-12, 0);
    CHECK_CLOSE(dj_schedule_lr(&s, 5), 0.04 + 0.36 * 0.5, 1e-12, 0);
    CHECK_CLOSE(dj_schedule_lr(&s, 10), 0.4, 1e-12, 0);
    CHECK_CLOSE(dj_schedule_lr(&s, 60), 0.2, 1e-12, 0);
    CHECK_CLOSE(dj_schedule_lr(&s, 110), 0.0, 0, 1e-15);
    CHECK_CLOSE(dj_schedule_lr(&s, 500), 0.0, 0, 1e-15);
    dj_schedule st = {DJ_SCHEDULE_STEP, 1.0, 0, 1.0, 0, 30, 0.1, 0};
    CHECK(dj_schedule_check(&st) == DJ_OK);
    CHECK_CLOSE(dj_schedule_lr(&st, 29), 1.0, 1e-12, 0);
    CHECK_CLOSE(dj_schedule_lr(&st, 30), 0.1, 1e-12, 0);
    CHECK_CLOSE(dj_schedule_lr(&st, 65), 0.01, 1e-12, 0);
    dj_schedule k = {DJ_SCHEDULE_CONSTANT, 0.3, 0, 1.0, 0, 0, 0, 0};
    CHECK_CLOSE(dj_schedule_lr(&k, 1000), 0.3, 1e-12, 0);
    st.step_size = 0;
    CHECK(dj_schedule_check(&st) == DJ_ERR_INVALID);
    s.total_steps = 0;
    CHECK(dj_schedule_check(&s) == DJ_ERR_INVALID);
    CHECK(strcmp(dj_schedule_name(DJ_SCHEDULE_COSINE), "cosine") == 0);
}

int main(void) {
    DJ_RUN(test_sgd_momentum);
    DJ_RUN(test_sgd_nesterov);
    DJ_RUN(test_sgd_skips_decay_on_biases);
    DJ_RUN(test_adamw);
    DJ_RUN(test_clipping_and_non_finite);
    DJ_RUN(test_bad_configs);
    DJ_RUN(test_threads_do_not_change_bits);
    DJ_RUN(test_schedules);
    return dj_test_finish();
}
