/* test_winograd.c — conv3d by Winograd's minimal filtering
 * (src/nn/conv3d_winograd.c): which convolutions take it and with which
 * tiles; its accuracy against the double reference on a layer-sized
 * convolution, next to the implicit GEMM's; bits independent of the thread
 * count and of the scratch given; the algorithm switches (parameters, graph,
 * errors). The case table of test_ops_spatial.c checks it against the
 * reference on odd shapes (every pad, 1-tap and trimmed axes, channel tails,
 * several blocks) and gradient accumulation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "nn/conv3d_winograd.h"
#include "support/test.h"

static int have_avx512(void) { return dj_cpu_best_isa() >= DJ_CPU_ISA_AVX512; }

static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
}

/* A convolution's float tensors, random, and their double copies. */
typedef struct conv_io {
    dj_tensor x, w, dy, y, dx, dw;       /* float32 */
    dj_tensor xd, wd, dyd, yd, dxd, dwd; /* float64 */
} conv_io;

static void conv_io_free(conv_io *c) {
    dj_tensor *t[] = {&c->x, &c->w, &c->dy, &c->y, &c->dx, &c->dw, &c->xd, &c->wd, &c->dyd, &c->yd, &c->dxd, &c->dwd};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        dj_tensor_free(t[i]);
}

static void fill(dj_tensor *f, dj_tensor *d, uint64_t seed, double scale, int relu) {
    uint64_t s = seed;
    for (int64_t i = 0; i < dj_tensor_numel(f); i++) {
        double v = urand(&s) * scale;
        if (relu && v < 0)
            v = 0; /* activations after a ReLU, as in the networks */
        ((float *)f->data)[i] = (float)v;
        if (d)
            ((double *)d->data)[i] = ((float *)f->data)[i];
    }
}

static int conv_io_create(conv_io *c, const dj_conv3d_params *p, const int64_t xs[5], const int64_t ws[5]) {
    memset(c, 0, sizeof *c);
    int64_t os[5];
    if (dj_conv3d_output_shape(p, xs, ws, os) != DJ_OK)
        return 0;
    int ok = dj_tensor_create(DJ_DTYPE_F32, 5, xs, &c->x) == DJ_OK && dj_tensor_create(DJ_DTYPE_F32, 5, ws, &c->w) == DJ_OK &&
             dj_tensor_create(DJ_DTYPE_F32, 5, os, &c->dy) == DJ_OK && dj_tensor_create(DJ_DTYPE_F32, 5, os, &c->y) == DJ_OK &&
             dj_tensor_create(DJ_DTYPE_F32, 5, xs, &c->dx) == DJ_OK && dj_tensor_create(DJ_DTYPE_F32, 5, ws, &c->dw) == DJ_OK &&
             dj_tensor_create(DJ_DTYPE_F64, 5, xs, &c->xd) == DJ_OK && dj_tensor_create(DJ_DTYPE_F64, 5, ws, &c->wd) == DJ_OK &&
             dj_tensor_create(DJ_DTYPE_F64, 5, os, &c->dyd) == DJ_OK && dj_tensor_create(DJ_DTYPE_F64, 5, os, &c->yd) == DJ_OK &&
             dj_tensor_create(DJ_DTYPE_F64, 5, xs, &c->dxd) == DJ_OK && dj_tensor_create(DJ_DTYPE_F64, 5, ws, &c->dwd) == DJ_OK;
    if (!ok)
        return 0;
    fill(&c->x, &c->xd, 1, 1.0, 1);
    fill(&c->w, &c->wd, 2, 1.0 / sqrt((double)(ws[1] * ws[2] * ws[3] * ws[4])), 0);
    fill(&c->dy, &c->dyd, 3, 1.0, 0);
    return 1;
}

/* Forward, then backward into zeroed gradients, with algo on `threads`
 * threads and a scratch of `bytes` (0: what dj_conv3d_scratch_bytes asks). */
static dj_status run(conv_io *c, int algo, int threads, size_t bytes) {
    dj_conv3d_params p = {{0}, {1, 1, 1}, {0}, 0, algo};
    dj_threadpool *pool = NULL;
    DJ_TRY(dj_threadpool_create(threads, &pool));
    if (!bytes)
        bytes = dj_conv3d_scratch_bytes(&p, &c->x, &c->w, threads);
    void *scratch = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    dj_exec ex = {pool, scratch, bytes};
    memset(c->dx.data, 0, dj_tensor_nbytes(&c->dx));
    memset(c->dw.data, 0, dj_tensor_nbytes(&c->dw));
    dj_status st = dj_conv3d_forward(&ex, &p, &c->x, &c->w, NULL, &c->y);
    if (st == DJ_OK)
        st = dj_conv3d_backward(&ex, &p, &c->x, &c->w, &c->dy, &c->dx, &c->dw, NULL);
    free(scratch);
    dj_threadpool_free(pool);
    return st;
}

/* RMS and largest error of f against d, relative to d's RMS. */
static void errors(const dj_tensor *f, const dj_tensor *d, double *rms, double *max) {
    double s2 = 0, e2 = 0, m = 0;
    int64_t n = dj_tensor_numel(d);
    for (int64_t i = 0; i < n; i++) {
        double r = ((const double *)d->data)[i], e = ((const float *)f->data)[i] - r;
        s2 += r * r, e2 += e * e;
        if (fabs(e) > m)
            m = fabs(e);
    }
    double ref = sqrt(s2 / (double)n);
    *rms = sqrt(e2 / (double)n) / ref;
    *max = m / ref;
}

static int same_bits(const dj_tensor *a, const dj_tensor *b) {
    return dj_tensor_nbytes(a) == dj_tensor_nbytes(b) && memcmp(a->data, b->data, dj_tensor_nbytes(a)) == 0;
}

/* ---------------------------------------------------------------- the plan */

static int plan(int64_t cin, int64_t cout, int64_t t, int64_t hw, int kt, int kh, int pt, int ph, int stride,
                dj_wino_conv *f) {
    dj_conv3d_params p = {{stride, stride, stride}, {pt, ph, ph}, {0}, 0, DJ_CONV_AUTO};
    int64_t in[5] = {8, cin, t, hw, hw}, w[5] = {cout, cin, kt, kh, kh};
    dj_conv_geom g;
    if (dj_conv_geom_init(&p, in, w, &g, "test") != DJ_OK)
        return -1;
    return dj_wino_plan(&g, f, NULL);
}

static void test_plan_on_network_layers(void) {
    if (!have_avx512()) {
        SKIP("Winograd runs on AVX-512 only; this CPU (or DOJO_CPU) has no AVX-512");
        return;
    }
    dj_wino_conv f;
    /* r3d_18 layer1 (8 x 56 x 56): F(2,3) in time, F(4,3) in space */
    CHECK_EQ_INT(plan(64, 64, 8, 56, 3, 3, 1, 1, 1, &f), 1);
    CHECK(f.ax[0].m == 2 && f.ax[1].m == 4 && f.ax[2].m == 4 && f.xi == 144);
    CHECK(f.ax[0].tiles == 4 && f.ax[1].tiles == 14 && f.nw == 14);
    /* layer3 (256 channels, 2 x 14 x 14): U with F(4,3) would be 37.7 MB;
     * F(2,3) everywhere keeps it at 16.8 */
    CHECK_EQ_INT(plan(256, 256, 2, 14, 3, 3, 1, 1, 1, &f), 1);
    CHECK(f.ax[0].m == 2 && f.ax[1].m == 2 && f.ax[2].m == 2 && f.xi == 64);
    CHECK(f.xi * f.Cin_p * f.Cout_p <= 5 << 20); /* U (and dU) within the 20 MB budget */
    /* layer4 (1 x 7 x 7): time has one frame, its outer taps only meet the
     * padding: trimmed to the middle tap */
    CHECK_EQ_INT(plan(512, 512, 1, 7, 3, 3, 1, 1, 1, &f), 1);
    CHECK(f.ax[0].r == 1 && f.ax[0].k0 == 1 && f.ax[0].m == 1 && f.xi == 16);
    /* r(2+1)d: spatial (1,3,3) and temporal (3,1,1) factors */
    CHECK_EQ_INT(plan(64, 144, 8, 56, 1, 3, 0, 1, 1, &f), 1);
    CHECK(f.ax[0].r == 1 && f.ax[1].m == 4 && f.xi == 36);
    CHECK_EQ_INT(plan(144, 64, 8, 56, 3, 1, 1, 0, 1, &f), 1);
    CHECK(f.ax[0].m == 4 && f.ax[1].r == 1 && f.xi == 6);
    /* 2 frames of a (3,1,1) conv: 6 products per output pair become 4,
     * too little to pay for the transforms */
    CHECK_EQ_INT(plan(576, 256, 2, 14, 3, 1, 1, 0, 1, &f), 0);
    /* not Winograd: strides, the stem's 7x7, pointwise, too few channels */
    CHECK_EQ_INT(plan(64, 128, 8, 56, 3, 3, 1, 1, 2, &f), 0);
    CHECK_EQ_INT(plan(3, 64, 8, 112, 3, 7, 1, 3, 1, &f), 0);
    CHECK_EQ_INT(plan(64, 64, 8, 56, 1, 1, 0, 0, 1, &f), 0);
    CHECK_EQ_INT(plan(8, 64, 8, 56, 3, 3, 1, 1, 1, &f), 0);
    /* too few tiles for the weight transform to pay: 8 clips of 1 x 4 x 4 */
    CHECK_EQ_INT(plan(128, 128, 1, 4, 3, 3, 1, 1, 1, &f), 0);
}

/* The case table's "AUTO takes Winograd" row really does. */
static void test_auto_case_is_winograd(void) {
    if (!have_avx512()) {
        SKIP("Winograd runs on AVX-512 only");
        return;
    }
    dj_conv3d_params p = {{0}, {1, 1, 1}, {0}, 0, DJ_CONV_AUTO};
    int64_t in[5] = {2, 32, 4, 16, 16}, w[5] = {48, 32, 3, 3, 3};
    int m[3];
    CHECK_EQ_INT(dj_conv3d_winograd_tiles(&p, in, w, m), 1);
    CHECK(m[0] == 2 && m[1] == 4 && m[2] == 4);
}

static void test_gemm_never_takes_winograd(void) {
    dj_conv3d_params p = {{0}, {1, 1, 1}, {0}, 0, DJ_CONV_GEMM};
    int64_t in[5] = {8, 64, 8, 56, 56}, w[5] = {64, 64, 3, 3, 3};
    dj_conv_geom g;
    CHECK_EQ_INT(dj_conv_geom_init(&p, in, w, &g, "test"), DJ_OK);
    CHECK_EQ_INT(dj_wino_plan(&g, NULL, NULL), 0);
    CHECK(dj_wino_scratch_bytes(&g, 2) == 0);
}

/* ---------------------------------------------------------------- accuracy */

/* A layer-1-like convolution (64 -> 64, 3x3x3, F(2,3) x F(4,3) x F(4,3)):
 * Winograd's errors against the double reference, next to the GEMM's.
 * Measured (2 x 64 x 8 x 24 x 24): rms 1.8e-6 / 2.3e-6 / 1.8e-6 (y / dx /
 * dw) of the outputs' RMS, largest 3.5e-5 / 5.2e-5 / 1.9e-5; the GEMM's rms
 * 2.7e-7 / 3.7e-7 / 3e-7. The test runs 2 x 64 x 4 x 16 x 16 (the double
 * reference is slow under the sanitizers). */
static void test_accuracy_against_double(void) {
    if (!have_avx512()) {
        SKIP("Winograd runs on AVX-512 only");
        return;
    }
    conv_io c;
    dj_conv3d_params p = {{0}, {1, 1, 1}, {0}, 0, 0};
    int64_t xs[5] = {2, 64, 4, 16, 16}, ws[5] = {64, 64, 3, 3, 3};
    CHECK(conv_io_create(&c, &p, xs, ws));
    CHECK_EQ_INT(dj_conv3d_ref_forward(&p, &c.xd, &c.wd, NULL, &c.yd), DJ_OK);
    memset(c.dxd.data, 0, dj_tensor_nbytes(&c.dxd));
    memset(c.dwd.data, 0, dj_tensor_nbytes(&c.dwd));
    CHECK_EQ_INT(dj_conv3d_ref_backward(&p, &c.xd, &c.wd, &c.dyd, &c.dxd, &c.dwd, NULL), DJ_OK);
    const char *names[3] = {"output", "input gradient", "weight gradient"};
    dj_tensor *f[3] = {&c.y, &c.dx, &c.dw}, *d[3] = {&c.yd, &c.dxd, &c.dwd};
    double gemm_rms[3], rms, max;
    CHECK_EQ_INT(run(&c, DJ_CONV_GEMM, 2, 0), DJ_OK);
    for (int k = 0; k < 3; k++)
        errors(f[k], d[k], &gemm_rms[k], &max);
    CHECK_EQ_INT(run(&c, DJ_CONV_WINOGRAD, 2, 0), DJ_OK);
    for (int k = 0; k < 3; k++) {
        errors(f[k], d[k], &rms, &max);
        CHECK_MSG(rms < 5e-6 && max < 1.5e-4, "%s: Winograd rms %.2e, largest %.2e of the RMS", names[k], rms, max);
        if (getenv("DOJO_TEST_VERBOSE"))
            printf("# %s: Winograd rms %.2e, largest %.2e; GEMM rms %.2e\n", names[k], rms, max, gemm_rms[k]);
        /* and not the GEMM's result under another name */
        CHECK_MSG(rms > gemm_rms[k], "%s: Winograd rms %.2e not above the GEMM's %.2e", names[k], rms, gemm_rms[k]);
    }
    conv_io_free(&c);
}

/* ---------------------------------------------------------------- determinism */

static void test_bits_independent_of_threads_and_scratch(void) {
    if (!have_avx512()) {
        SKIP("Winograd runs on AVX-512 only");
        return;
    }
    conv_io a, b;
    dj_conv3d_params p = {{0}, {1, 1, 1}, {0}, 0, 0};
    /* 40 -> 36 channels (tails), enough tile rows for several blocks of
     * the weight gradient and for every thread */
    int64_t xs[5] = {3, 40, 6, 20, 22}, ws[5] = {36, 40, 3, 3, 3};
    CHECK(conv_io_create(&a, &p, xs, ws) && conv_io_create(&b, &p, xs, ws));
    CHECK_EQ_INT(run(&a, DJ_CONV_WINOGRAD, 1, 0), DJ_OK);
    int threads[] = {2, 3};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(run(&b, DJ_CONV_WINOGRAD, threads[i], 0), DJ_OK);
        CHECK_MSG(same_bits(&a.y, &b.y) && same_bits(&a.dx, &b.dx) && same_bits(&a.dw, &b.dw),
                  "%d threads differ from 1", threads[i]);
    }
    /* a scratch for one thread on a pool of three: runs on one, same bits */
    dj_conv3d_params pw = {{0}, {1, 1, 1}, {0}, 0, DJ_CONV_WINOGRAD};
    size_t one = dj_conv3d_scratch_bytes(&pw, &a.x, &a.w, 1), three = dj_conv3d_scratch_bytes(&pw, &a.x, &a.w, 3);
    CHECK(one < three);
    CHECK_EQ_INT(run(&b, DJ_CONV_WINOGRAD, 3, one), DJ_OK);
    CHECK(same_bits(&a.y, &b.y) && same_bits(&a.dx, &b.dx) && same_bits(&a.dw, &b.dw));
    /* AUTO takes Winograd here, bit for bit; the GEMM sums otherwise */
    CHECK_EQ_INT(run(&b, DJ_CONV_AUTO, 2, 0), DJ_OK);
    CHECK(same_bits(&a.y, &b.y) && same_bits(&a.dw, &b.dw));
    CHECK_EQ_INT(run(&b, DJ_CONV_GEMM, 2, 0), DJ_OK);
    CHECK(!same_bits(&a.y, &b.y));
    conv_io_free(&a);
    conv_io_free(&b);
}

/* ---------------------------------------------------------------- errors */

/* The names of the algorithms, as recipes and flags spell them. */
static void test_algorithm_names(void) {
    const char *names[] = {"auto", "gemm", "winograd"};
    for (int a = DJ_CONV_AUTO; a <= DJ_CONV_WINOGRAD; a++) {
        CHECK_EQ_INT(dj_conv_algo_from_name(names[a]), a);
        CHECK(dj_conv_algo_name(a) && strcmp(dj_conv_algo_name(a), names[a]) == 0);
    }
    CHECK_EQ_INT(dj_conv_algo_from_name("fft"), -1);
    CHECK_EQ_INT(dj_conv_algo_from_name(NULL), -1);
    CHECK(dj_conv_algo_name(3) == NULL && dj_conv_algo_name(-1) == NULL);
}

static void test_bad_algorithm_and_short_scratch(void) {
    conv_io c;
    dj_conv3d_params p = {{0}, {1, 1, 1}, {0}, 0, 0};
    int64_t xs[5] = {1, 16, 4, 8, 8}, ws[5] = {16, 16, 3, 3, 3};
    CHECK(conv_io_create(&c, &p, xs, ws));
    dj_conv3d_params bad = {{0}, {1, 1, 1}, {0}, 0, 7};
    float scratch[16];
    dj_exec ex = {NULL, scratch, sizeof scratch};
    CHECK_EQ_INT(dj_conv3d_forward(&ex, &bad, &c.x, &c.w, NULL, &c.y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "unknown convolution algorithm 7");
    if (have_avx512()) {
        dj_conv3d_params pw = {{0}, {1, 1, 1}, {0}, 0, DJ_CONV_WINOGRAD};
        size_t need = dj_conv3d_scratch_bytes(&pw, &c.x, &c.w, 1);
        void *s = malloc(need);
        dj_exec small = {NULL, s, need - 64};
        CHECK_EQ_INT(dj_conv3d_forward(&small, &pw, &c.x, &c.w, NULL, &c.y), DJ_ERR_INVALID);
        CHECK_STR_CONTAINS(dj_error_message(), "dj_conv3d_scratch_bytes");
        CHECK_EQ_INT(dj_conv3d_backward(&small, &pw, &c.x, &c.w, &c.dy, &c.dx, &c.dw, NULL), DJ_ERR_INVALID);
        free(s);
    }
    conv_io_free(&c);
}

/* The graph's switch: every conv3d node takes it; set after planning or
 * out of range, it is an error. */
static void test_graph_conv_algo(void) {
    dj_graph *g = NULL;
    CHECK_EQ_INT(dj_graph_create(&g), DJ_OK);
    int64_t xs[5] = {2, 16, 4, 8, 8};
    int x = dj_graph_input(g, "x", DJ_DTYPE_F32, 5, xs);
    int y = dj_layer_conv3d(g, "conv", x, 16, dj_conv_same(3, 3, 3));
    CHECK(y >= 0);
    dj_graph_mark_output(g, y);
    dj_graph_set_conv_algo(g, 9);
    CHECK_EQ_INT(dj_graph_status(g), DJ_ERR_INVALID);
    dj_graph_free(g);

    dj_tensor out[2];
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_INT(dj_graph_create(&g), DJ_OK);
        x = dj_graph_input(g, "x", DJ_DTYPE_F32, 5, xs);
        y = dj_layer_conv3d(g, "conv", x, 16, dj_conv_same(3, 3, 3));
        dj_graph_mark_output(g, y);
        dj_graph_set_conv_algo(g, k == 0 ? DJ_CONV_GEMM : DJ_CONV_WINOGRAD);
        CHECK_EQ_INT(dj_graph_plan(g, 0), DJ_OK);
        dj_graph_set_conv_algo(g, DJ_CONV_GEMM);
        CHECK_STR_CONTAINS(dj_error_message(), "before planning");
        fill(dj_graph_tensor(g, x), NULL, 5, 1.0, 0);
        dj_tensor *w = dj_graph_tensor(g, dj_graph_find(g, "conv.weight"));
        CHECK(w != NULL);
        if (w)
            fill(w, NULL, 6, 0.1, 0);
        size_t bytes = dj_graph_scratch_bytes(g);
        void *s = bytes ? malloc(bytes) : NULL;
        dj_exec ex = {NULL, s, bytes};
        CHECK_EQ_INT(dj_graph_forward(g, &ex, 0), DJ_OK);
        dj_tensor *t = dj_graph_tensor(g, y);
        CHECK_EQ_INT(dj_tensor_create(DJ_DTYPE_F32, t->ndim, t->shape, &out[k]), DJ_OK);
        memcpy(out[k].data, t->data, dj_tensor_nbytes(t));
        free(s);
        dj_graph_free(g);
    }
    /* the two algorithms really ran (different sums), to within rounding */
    if (have_avx512())
        CHECK(!same_bits(&out[0], &out[1]));
    double m = 0, e = 0;
    for (int64_t i = 0; i < dj_tensor_numel(&out[0]); i++) {
        float a = ((float *)out[0].data)[i], b = ((float *)out[1].data)[i];
        m = fmax(m, fabs(a));
        e = fmax(e, fabs(a - b));
    }
    CHECK_MSG(e <= 1e-5 * m, "GEMM and Winograd differ by %.3g (largest output %.3g)", e, m);
    dj_tensor_free(&out[0]);
    dj_tensor_free(&out[1]);
}

int main(void) {
    DJ_RUN(test_plan_on_network_layers);
    DJ_RUN(test_gemm_never_takes_winograd);
    DJ_RUN(test_auto_case_is_winograd);
    DJ_RUN(test_accuracy_against_double);
    DJ_RUN(test_bits_independent_of_threads_and_scratch);
    DJ_RUN(test_algorithm_names);
    DJ_RUN(test_bad_algorithm_and_short_scratch);
    DJ_RUN(test_graph_conv_algo);
    return dj_test_finish();
}
