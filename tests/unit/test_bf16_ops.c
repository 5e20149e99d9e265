/* test_bf16_ops.c — mixed precision (bf16 operands, float32 sums) in conv3d
 * and linear, forward and every gradient, against double references:
 *  - on the operands rounded to bf16 the result is the float32 sum of the
 *    exact products: |got - ref(rounded)| <= 1e-5 * sum|a||b| (+1e-6);
 *  - against the unrounded operands the error is that of rounding two
 *    factors to 8 significant bits: |got - ref| <= 2^-8 (1 + 1/8) *
 *    sum|a||b| (+1e-6), the worst case whatever K (typical errors are
 *    ~2^-9 sqrt(K) times an average product, far below);
 *  - the bias gradient stays float32 (no rounding);
 * plus: gradients accumulate, results bit-identical for 1, 2 and 3 threads
 * and on the converted path (DOJO_CPU=avx2, avx512-nobf16) where this CPU
 * has avx512_bf16, depthwise-style convs run float32, the graph keeps bf16
 * weight copies fresh after every parameter change, and clear errors. */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "nn/bf16_internal.h"
#include "support/test.h"

static dj_threadpool *pools[3];

static dj_tensor mk(dj_dtype dt, int nd, const int64_t *shape) {
    dj_tensor t;
    memset(&t, 0, sizeof t);
    CHECK_EQ_INT(dj_tensor_create(dt, nd, shape, &t), DJ_OK);
    return t;
}

static dj_tensor mk_like(dj_dtype dt, const dj_tensor *t) { return mk(dt, t->ndim, t->shape); }

static void fill(dj_tensor *t, uint64_t seed, float scale) {
    dj_rng r;
    dj_rng_seed(&r, seed, 0);
    float *x = t->data;
    for (int64_t i = 0; i < dj_tensor_numel(t); i++)
        x[i] = scale * (2.0f * dj_rng_float(&r) - 1.0f);
}

static void set_all(dj_tensor *t, double v) {
    for (int64_t i = 0; i < dj_tensor_numel(t); i++) {
        if (t->dtype == DJ_DTYPE_F64)
            ((double *)t->data)[i] = v;
        else
            ((float *)t->data)[i] = (float)v;
    }
}

enum { AS_IS = 0, ROUNDED = 1, ABS = 2 };

/* A double copy of a float tensor: as is, rounded to bf16, or |x|. */
static dj_tensor to64(const dj_tensor *f, int how) {
    dj_tensor d = mk_like(DJ_DTYPE_F64, f);
    const float *x = f->data;
    double *y = d.data;
    for (int64_t i = 0; i < dj_tensor_numel(f); i++)
        y[i] = how == ROUNDED ? dj_bf16_to_f32(dj_f32_to_bf16(x[i])) : how == ABS ? fabs(x[i]) : x[i];
    return d;
}

static dj_tensor to_bf16(const dj_tensor *f) {
    dj_tensor b = mk_like(DJ_DTYPE_BF16, f);
    for (int64_t i = 0; i < dj_tensor_numel(f); i++)
        ((uint16_t *)b.data)[i] = dj_f32_to_bf16(((const float *)f->data)[i]);
    return b;
}

/* got (float) against want and want_exact (double) with magnitudes mag;
 * returns 1 when every element holds both bounds. */
static int close_to(const char *what, const dj_tensor *got, const dj_tensor *want, const dj_tensor *exact,
                    const dj_tensor *mag) {
    const float *g = got->data;
    const double *w = want->data, *e = exact ? exact->data : NULL, *m = mag->data;
    int64_t bad = 0;
    for (int64_t i = 0; i < dj_tensor_numel(got); i++) {
        double t1 = 1e-5 * m[i] + 1e-6, t2 = 0.0044 * m[i] + 1e-6;
        int ok = fabs(g[i] - w[i]) <= t1 && (!e || fabs(g[i] - e[i]) <= t2);
        if (!ok && bad++ == 0)
            dj_test_fail_at(__FILE__, __LINE__, "%s[%lld] = %.8g, want %.8g (rounded operands) / %.8g (exact), "
                            "sum|a||b| = %.4g", what, (long long)i, g[i], w[i], e ? e[i] : 0.0, m[i]);
    }
    return bad == 0;
}

static int differs(const dj_tensor *a, const dj_tensor *b) {
    return memcmp(a->data, b->data, dj_tensor_nbytes(a)) != 0;
}

static void free_all(dj_tensor *t, int n) {
    for (int i = 0; i < n; i++)
        dj_tensor_free(&t[i]);
}

/* ---------------------------------------------------------------- rounding */

/* The AVX-512 row rounder against the plain loop and dj_f32_to_bf16: ties
 * both ways, the largest finite values (to infinity), infinities, NaNs of
 * either sign and payload, denormals, zeros, random bit patterns; every
 * length up to 40 (masked tails). */
static void test_bf16_round_rows(void) {
    enum { N = 4096 };
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x00008000u,
                                       0x00018000u, 0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x7f7fffffu,
                                       0xff7f8000u, 0x7f800000u, 0xff800000u, 0x7f800001u, 0xffc00000u,
                                       0x7fffffffu, 0x7f80ffffu, 0x477fe000u, 0xc0490fdbu, 0x3f7fffffu};
    float *x = malloc(N * sizeof(float));
    uint16_t *want = malloc(N * 2), *got = malloc(N * 2);
    dj_rng r;
    dj_rng_seed(&r, 12, 0);
    for (int i = 0; i < N; i++) {
        uint32_t u = i < (int)(sizeof special / sizeof special[0]) ? special[i]
                                                                    : (uint32_t)dj_rng_u64(&r);
        memcpy(&x[i], &u, 4);
    }
    dj_bf16_round_ref(x, N, want);
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += want[i] != dj_f32_to_bf16(x[i]);
    CHECK_MSG(bad == 0, "dj_bf16_round_ref differs from dj_f32_to_bf16 on %d values", bad);
    dj_bf16_round_fn fast = dj_bf16_round_pick();
    if (fast == dj_bf16_round_ref) {
        SKIP("no AVX-512 on this CPU: only the plain loop runs");
    } else {
        for (int n = 0; n <= 40; n++) {
            memset(got, 0xab, N * 2);
            fast(x + 3, n, got);
            CHECK_MSG(memcmp(got, want + 3, (size_t)n * 2) == 0 && got[n] == 0xabab, "length %d", n);
        }
        fast(x, N, got);
        CHECK_MSG(memcmp(got, want, N * 2) == 0, "AVX-512 rounding differs from the plain loop");
    }
    free(x), free(want), free(got);
}

/* ---------------------------------------------------------------- conv3d */

typedef struct conv_case {
    const char *name;
    int64_t in[5], w[5];
    dj_conv3d_params p;
} conv_case;

static const conv_case conv_cases[] = {
    {"3x3x3 pad 1", {2, 4, 4, 6, 6}, {8, 4, 3, 3, 3}, {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1, 0}},
    {"1x3x3 stride 2", {1, 3, 4, 9, 9}, {5, 3, 1, 3, 3}, {{1, 2, 2}, {0, 1, 1}, {1, 1, 1}, 1, 0}},
    {"pointwise", {2, 16, 2, 5, 5}, {12, 16, 1, 1, 1}, {{1, 1, 1}, {0, 0, 0}, {1, 1, 1}, 1, 0}},
    {"groups 2, 3x1x1", {1, 4, 5, 3, 3}, {6, 2, 3, 1, 1}, {{1, 1, 1}, {1, 0, 0}, {1, 1, 1}, 2, 0}},
    {"K 1296 (two K blocks)", {1, 48, 3, 4, 4}, {4, 48, 3, 3, 3}, {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1, 0}},
    {"3 position blocks", {1, 76, 8, 16, 16}, {3, 76, 3, 3, 3}, {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1, 0}},
    /* the implicit-GEMM paths: batched forward (N > 1, P < 256), stride-1
     * input gradient through the flipped weight (dilated, uneven padding,
     * groups), its col2vol fallback (Cout_g > Cin_g; padding past
     * dilation*(k-1)), odd strides, runs cut by samples and panels */
    {"batched 3x3x3, 3 samples", {3, 5, 2, 5, 7}, {9, 5, 3, 3, 3}, {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1, 0}},
    {"dilation 2, pad (2,1,0)", {2, 6, 6, 7, 9}, {4, 6, 3, 3, 2}, {{1, 1, 1}, {2, 1, 0}, {2, 2, 3}, 1, 0}},
    {"groups 3 3x3x3, Cout_g > Cin_g", {2, 6, 3, 6, 5}, {9, 2, 3, 3, 3}, {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 3, 0}},
    {"stride (2,1,3) pad (1,0,2)", {2, 5, 5, 6, 11}, {7, 5, 2, 3, 4}, {{2, 1, 3}, {1, 0, 2}, {1, 1, 1}, 1, 0}},
    {"pad 2 > k-1 (col2vol)", {1, 3, 3, 5, 6}, {4, 3, 1, 3, 3}, {{1, 1, 1}, {0, 2, 2}, {1, 1, 1}, 1, 0}},
    {"1x1x1 stride 2", {2, 12, 3, 5, 5}, {10, 12, 1, 1, 1}, {{2, 2, 2}, {0, 0, 0}, {1, 1, 1}, 1, 0}},
    {"(1,7,7) s(1,2,2), K odd", {1, 3, 2, 23, 23}, {5, 3, 1, 7, 7}, {{1, 2, 2}, {0, 3, 3}, {1, 1, 1}, 1, 0}},
    {"long rows, batched groups 2", {4, 4, 1, 3, 70}, {6, 2, 1, 3, 3}, {{1, 1, 1}, {0, 1, 1}, {1, 1, 1}, 2, 0}},
    /* dead taps: the live block of the kernel runs (dj_conv_trim) */
    {"(3,1,1) on T=1, dead taps (pointwise)", {2, 8, 1, 4, 5}, {6, 8, 3, 1, 1}, {{1, 1, 1}, {1, 0, 0}, {1, 1, 1}, 1, 0}},
    {"3x3x3 s2 on T=1, groups 2", {2, 8, 1, 5, 6}, {8, 4, 3, 3, 3}, {{2, 2, 2}, {1, 1, 1}, {1, 1, 1}, 2, 0}},
};

/* Everything one conv case needs: x, w, b, dy (float) and the bf16 weight. */
typedef struct conv_io {
    dj_tensor x, w, b, dy, wb, y, dx, dw, db;
    void *scratch;
    size_t scratch_bytes;
} conv_io;

static void conv_io_make(const conv_case *c, conv_io *io, uint64_t seed) {
    int64_t bs[1] = {c->w[0]}, os[5];
    CHECK_EQ_INT(dj_conv3d_output_shape(&c->p, c->in, c->w, os), DJ_OK);
    io->x = mk(DJ_DTYPE_F32, 5, c->in), io->w = mk(DJ_DTYPE_F32, 5, c->w), io->b = mk(DJ_DTYPE_F32, 1, bs);
    io->dy = mk(DJ_DTYPE_F32, 5, os), io->y = mk(DJ_DTYPE_F32, 5, os);
    io->dx = mk_like(DJ_DTYPE_F32, &io->x), io->dw = mk_like(DJ_DTYPE_F32, &io->w), io->db = mk(DJ_DTYPE_F32, 1, bs);
    fill(&io->x, seed, 1.0f), fill(&io->w, seed + 1, 0.3f), fill(&io->b, seed + 2, 0.5f), fill(&io->dy, seed + 3, 1.0f);
    io->wb = to_bf16(&io->w);
    io->scratch_bytes = dj_conv3d_scratch_bytes_bf16(&c->p, &io->x, &io->w);
    io->scratch = io->scratch_bytes ? malloc(io->scratch_bytes) : NULL;
}

static void conv_io_free(conv_io *io) {
    dj_tensor *t[] = {&io->x, &io->w, &io->b, &io->dy, &io->wb, &io->y, &io->dx, &io->dw, &io->db};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        dj_tensor_free(t[i]);
    free(io->scratch);
}

/* bf16 forward and backward (gradients pre-filled with 0.5) on a pool. */
static dj_status conv_run(const conv_case *c, conv_io *io, dj_threadpool *pool) {
    dj_exec ex = {pool, io->scratch, io->scratch_bytes};
    set_all(&io->dx, 0.5), set_all(&io->dw, 0.5), set_all(&io->db, 0.5);
    DJ_TRY(dj_conv3d_forward_bf16(&ex, &c->p, &io->x, &io->w, &io->wb, &io->b, &io->y));
    return dj_conv3d_backward_bf16(&ex, &c->p, &io->x, &io->w, &io->wb, &io->dy, &io->dx, &io->dw, &io->db);
}

/* References: forward and backward of (x, w, dy) taken `how`, gradients
 * pre-filled with `init`. r[0] y, r[1] dx, r[2] dw, r[3] db. */
static void conv_ref(const conv_case *c, const conv_io *io, int how, int with_bias, double init, dj_tensor r[4]) {
    dj_tensor x = to64(&io->x, how), w = to64(&io->w, how), dy = to64(&io->dy, how == ROUNDED ? AS_IS : how);
    dj_tensor dyr = to64(&io->dy, how), b = to64(&io->b, how == ABS ? ABS : AS_IS);
    r[0] = mk_like(DJ_DTYPE_F64, &io->y), r[1] = mk_like(DJ_DTYPE_F64, &io->x);
    r[2] = mk_like(DJ_DTYPE_F64, &io->w), r[3] = mk_like(DJ_DTYPE_F64, &io->b);
    set_all(&r[1], init), set_all(&r[2], init), set_all(&r[3], init);
    CHECK_EQ_INT(dj_conv3d_ref_forward(&c->p, &x, &w, with_bias ? &b : NULL, &r[0]), DJ_OK);
    CHECK_EQ_INT(dj_conv3d_ref_backward(&c->p, &x, &w, &dyr, &r[1], &r[2], NULL), DJ_OK);
    /* the bias gradient is the float32 dy summed, never rounded */
    CHECK_EQ_INT(dj_conv3d_ref_backward(&c->p, &x, &w, &dy, NULL, NULL, &r[3]), DJ_OK);
    dj_tensor_free(&x), dj_tensor_free(&w), dj_tensor_free(&dy), dj_tensor_free(&dyr), dj_tensor_free(&b);
}

static void test_conv3d_bf16_against_reference(void) {
    for (size_t k = 0; k < sizeof conv_cases / sizeof conv_cases[0]; k++) {
        const conv_case *c = &conv_cases[k];
        conv_io io;
        conv_io_make(c, &io, 100 + k);
        CHECK_MSG(conv_run(c, &io, pools[1]) == DJ_OK, "%s: %s", c->name, dj_error_message());
        dj_tensor want[4], exact[4], mag[4];
        conv_ref(c, &io, ROUNDED, 1, 0.5, want);
        conv_ref(c, &io, AS_IS, 1, 0.5, exact);
        conv_ref(c, &io, ABS, 1, 0.0, mag);
        char what[128];
        const char *names[4] = {"out", "dinp", "dweight", "dbias"};
        const dj_tensor *got[4] = {&io.y, &io.dx, &io.dw, &io.db};
        for (int i = 0; i < 4; i++) {
            snprintf(what, sizeof what, "%s %s", c->name, names[i]);
            close_to(what, got[i], &want[i], &exact[i], &mag[i]);
        }
        /* it is not the float32 result */
        dj_tensor yf = mk_like(DJ_DTYPE_F32, &io.y);
        size_t fb = dj_conv3d_scratch_bytes(&c->p, &io.x, &io.w, 1);
        void *fs = fb ? malloc(fb) : NULL;
        dj_exec ex = {NULL, fs, fb};
        CHECK_EQ_INT(dj_conv3d_forward(&ex, &c->p, &io.x, &io.w, &io.b, &yf), DJ_OK);
        CHECK_MSG(differs(&yf, &io.y), "%s: bf16 forward equals float32", c->name);
        free(fs);
        dj_tensor_free(&yf);
        free_all(want, 4), free_all(exact, 4), free_all(mag, 4);
        conv_io_free(&io);
    }
}

/* 1, 2 and 3 threads, and the converted path, give the same bits. */
static void test_conv3d_bf16_bit_identical(void) {
    static const char *paths[] = {"avx512-nobf16", "avx2", "scalar"};
    for (size_t k = 0; k < sizeof conv_cases / sizeof conv_cases[0]; k++) {
        const conv_case *c = &conv_cases[k];
        conv_io a, b;
        conv_io_make(c, &a, 7 + k);
        conv_io_make(c, &b, 7 + k);
        CHECK_EQ_INT(conv_run(c, &a, pools[0]), DJ_OK);
        int runs = 2 + (dj_cpu_bf16_native() ? 3 : 0);
        for (int r = 0; r < runs; r++) {
            if (r >= 2)
                setenv("DOJO_CPU", paths[r - 2], 1);
            CHECK_EQ_INT(conv_run(c, &b, pools[r < 2 ? r + 1 : 1]), DJ_OK);
            unsetenv("DOJO_CPU");
            const char *how = r < 2 ? (r == 0 ? "2 threads" : "3 threads") : paths[r - 2];
            CHECK_MSG(!differs(&a.y, &b.y) && !differs(&a.dx, &b.dx) && !differs(&a.dw, &b.dw) &&
                          !differs(&a.db, &b.db),
                      "%s: %s differs from 1 thread on the native path", c->name, how);
        }
        conv_io_free(&a);
        conv_io_free(&b);
    }
}

/* Cin/groups == 1 has no matrix product: the float32 path, bit for bit,
 * and no bf16 weight is needed. */
static void test_conv3d_bf16_depthwise_is_float32(void) {
    conv_case c = {"depthwise", {2, 4, 3, 5, 5}, {8, 1, 3, 3, 3}, {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 4, 0}};
    conv_io io;
    conv_io_make(&c, &io, 9);
    CHECK(io.scratch_bytes == 0);
    dj_tensor y = mk_like(DJ_DTYPE_F32, &io.y), dx = mk_like(DJ_DTYPE_F32, &io.x);
    CHECK_EQ_INT(dj_conv3d_forward_bf16(NULL, &c.p, &io.x, &io.w, NULL, &io.b, &io.y), DJ_OK);
    CHECK_EQ_INT(dj_conv3d_forward(NULL, &c.p, &io.x, &io.w, &io.b, &y), DJ_OK);
    CHECK(!differs(&y, &io.y));
    CHECK_EQ_INT(dj_conv3d_backward_bf16(NULL, &c.p, &io.x, &io.w, NULL, &io.dy, &io.dx, NULL, NULL), DJ_OK);
    CHECK_EQ_INT(dj_conv3d_backward(NULL, &c.p, &io.x, &io.w, &io.dy, &dx, NULL, NULL), DJ_OK);
    CHECK(!differs(&dx, &io.dx));
    dj_tensor_free(&y), dj_tensor_free(&dx);
    conv_io_free(&io);
}

/* Each gradient alone (the other NULL) is the same bits as both together,
 * and a scratch of exactly dj_conv3d_scratch_bytes_bf16 bytes (no slack,
 * under ASan) is enough for every path. */
static void test_conv3d_bf16_gradients_alone(void) {
    for (size_t k = 0; k < sizeof conv_cases / sizeof conv_cases[0]; k++) {
        const conv_case *c = &conv_cases[k];
        conv_io io;
        conv_io_make(c, &io, 60 + k);
        CHECK_EQ_INT(conv_run(c, &io, pools[1]), DJ_OK);
        dj_tensor dx = mk_like(DJ_DTYPE_F32, &io.x), dw = mk_like(DJ_DTYPE_F32, &io.w);
        set_all(&dx, 0.5), set_all(&dw, 0.5);
        dj_exec ex = {pools[2], io.scratch, io.scratch_bytes};
        CHECK_EQ_INT(dj_conv3d_backward_bf16(&ex, &c->p, &io.x, &io.w, &io.wb, &io.dy, &dx, NULL, NULL), DJ_OK);
        CHECK_EQ_INT(dj_conv3d_backward_bf16(&ex, &c->p, &io.x, &io.w, &io.wb, &io.dy, NULL, &dw, NULL), DJ_OK);
        CHECK_MSG(!differs(&dx, &io.dx), "%s: input gradient alone differs", c->name);
        CHECK_MSG(!differs(&dw, &io.dw), "%s: weight gradient alone differs", c->name);
        dj_tensor_free(&dx), dj_tensor_free(&dw);
        conv_io_free(&io);
    }
}

static void test_conv3d_bf16_errors(void) {
    const conv_case *c = &conv_cases[0];
    conv_io io;
    conv_io_make(c, &io, 1);
    dj_exec ex = {NULL, io.scratch, io.scratch_bytes};
    /* the float32 weight where the bf16 copy belongs */
    CHECK_EQ_INT(dj_conv3d_forward_bf16(&ex, &c->p, &io.x, &io.w, &io.w, NULL, &io.y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "bf16 weight");
    CHECK_EQ_INT(dj_conv3d_forward_bf16(&ex, &c->p, &io.x, &io.w, NULL, NULL, &io.y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_conv3d_forward_bf16");
    /* one part (64 bytes) short of the bf16 scratch size */
    CHECK(io.scratch_bytes >= 64);
    dj_exec small = {NULL, io.scratch, io.scratch_bytes - 64};
    CHECK_EQ_INT(dj_conv3d_backward_bf16(&small, &c->p, &io.x, &io.w, &io.wb, &io.dy, &io.dx, &io.dw, NULL),
                 DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_conv3d_scratch_bytes_bf16");
    /* a wrong output gradient shape */
    CHECK_EQ_INT(dj_conv3d_backward_bf16(&ex, &c->p, &io.x, &io.w, &io.wb, &io.x, &io.dx, NULL, NULL), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "output gradient");
    conv_io_free(&io);
}

/* ---------------------------------------------------------------- linear */

static void linear_case(int nd, const int64_t *xs, int64_t out, uint64_t seed) {
    int64_t in = xs[nd - 1], ws[2] = {out, in}, bs[1] = {out}, ys[DJ_MAX_DIMS];
    memcpy(ys, xs, sizeof(int64_t) * (size_t)nd);
    ys[nd - 1] = out;
    dj_tensor x = mk(DJ_DTYPE_F32, nd, xs), w = mk(DJ_DTYPE_F32, 2, ws), b = mk(DJ_DTYPE_F32, 1, bs);
    dj_tensor dy = mk(DJ_DTYPE_F32, nd, ys), y = mk(DJ_DTYPE_F32, nd, ys);
    dj_tensor dx = mk_like(DJ_DTYPE_F32, &x), dw = mk_like(DJ_DTYPE_F32, &w), db = mk_like(DJ_DTYPE_F32, &b);
    fill(&x, seed, 1.0f), fill(&w, seed + 1, 0.2f), fill(&b, seed + 2, 0.5f), fill(&dy, seed + 3, 1.0f);
    dj_tensor wb = to_bf16(&w);
    size_t bytes = dj_linear_scratch_bytes_bf16(&x, &w);
    void *scratch = malloc(bytes);
    dj_exec ex = {pools[1], scratch, bytes};
    set_all(&dx, 0.5), set_all(&dw, 0.5), set_all(&db, 0.5);
    CHECK_MSG(dj_linear_forward_bf16(&ex, &x, &w, &wb, &b, &y) == DJ_OK, "%s", dj_error_message());
    CHECK_MSG(dj_linear_backward_bf16(&ex, &x, &w, &wb, &dy, &dx, &dw, &db) == DJ_OK, "%s", dj_error_message());
    dj_tensor r[3][4]; /* rounded, exact, magnitude x (y, dx, dw, db) */
    for (int how = 0; how < 3; how++) {
        int h = how == 0 ? ROUNDED : how == 1 ? AS_IS : ABS;
        dj_tensor x6 = to64(&x, h), w6 = to64(&w, h), dy6 = to64(&dy, h), dyf = to64(&dy, h == ABS ? ABS : AS_IS);
        dj_tensor b6 = to64(&b, h == ABS ? ABS : AS_IS);
        r[how][0] = mk_like(DJ_DTYPE_F64, &y), r[how][1] = mk_like(DJ_DTYPE_F64, &x);
        r[how][2] = mk_like(DJ_DTYPE_F64, &w), r[how][3] = mk_like(DJ_DTYPE_F64, &b);
        for (int i = 1; i < 4; i++)
            set_all(&r[how][i], h == ABS ? 0.0 : 0.5);
        CHECK_EQ_INT(dj_linear_ref_forward(&x6, &w6, &b6, &r[how][0]), DJ_OK);
        CHECK_EQ_INT(dj_linear_ref_backward(&x6, &w6, &dy6, &r[how][1], &r[how][2], NULL), DJ_OK);
        CHECK_EQ_INT(dj_linear_ref_backward(&x6, &w6, &dyf, NULL, NULL, &r[how][3]), DJ_OK);
        dj_tensor_free(&x6), dj_tensor_free(&w6), dj_tensor_free(&dy6), dj_tensor_free(&dyf), dj_tensor_free(&b6);
    }
    const dj_tensor *got[4] = {&y, &dx, &dw, &db};
    const char *names[4] = {"linear out", "linear dinp", "linear dweight", "linear dbias"};
    for (int i = 0; i < 4; i++)
        close_to(names[i], got[i], &r[0][i], &r[1][i], &r[2][i]);
    /* bit-identical on 1 and 3 threads */
    dj_tensor y1 = mk_like(DJ_DTYPE_F32, &y), dw1 = mk_like(DJ_DTYPE_F32, &w);
    set_all(&dw1, 0.5);
    dj_exec ex1 = {pools[0], scratch, bytes}, ex3 = {pools[2], scratch, bytes};
    CHECK_EQ_INT(dj_linear_forward_bf16(&ex1, &x, &w, &wb, &b, &y1), DJ_OK);
    CHECK_EQ_INT(dj_linear_backward_bf16(&ex3, &x, &w, &wb, &dy, NULL, &dw1, NULL), DJ_OK);
    CHECK(!differs(&y1, &y) && !differs(&dw1, &dw));
    /* errors */
    dj_exec small = {NULL, scratch, bytes - 64};
    CHECK_EQ_INT(dj_linear_forward_bf16(&small, &x, &w, &wb, &b, &y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_linear_scratch_bytes_bf16");
    CHECK_EQ_INT(dj_linear_backward_bf16(&ex, &x, &w, &w, &dy, &dx, NULL, NULL), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "bf16 weight");
    for (int how = 0; how < 3; how++)
        free_all(r[how], 4);
    dj_tensor t[] = {x, w, b, dy, y, dx, dw, db, wb, y1, dw1};
    free_all(t, (int)(sizeof t / sizeof t[0]));
    free(scratch);
}

static void test_linear_bf16(void) {
    int64_t a[2] = {7, 37}, b[3] = {2, 5, 1100};
    linear_case(2, a, 11, 40);
    linear_case(3, b, 9, 50); /* In 1100: two K blocks of the forward product */
}

/* ---------------------------------------------------------------- the graph */

/* x (2,3,4,6,6) -> conv3d c (4, 3x3x3 same, bias) -> linear fc over W (6 -> 5) */
static dj_graph *small_graph(int bf16, int *x, int *out) {
    dj_graph *g = NULL;
    CHECK_EQ_INT(dj_graph_create(&g), DJ_OK);
    int64_t xs[5] = {2, 3, 4, 6, 6};
    *x = dj_graph_input(g, "x", DJ_DTYPE_F32, 5, xs);
    dj_conv_spec s = dj_conv_same(3, 3, 3);
    s.bias = 1;
    int c = dj_layer_conv3d(g, "c", *x, 4, s);
    *out = dj_layer_linear(g, "fc", c, 5, 1);
    dj_graph_mark_output(g, *out);
    dj_graph_set_bf16(g, bf16);
    CHECK_MSG(dj_graph_plan(g, 1) == DJ_OK, "%s", dj_error_message());
    return g;
}

/* The graph's output against the operators called by hand on weights
 * converted here. w[]: conv weight, conv bias, fc weight, fc bias, read
 * through pointers kept from before (so that this check itself never tells
 * the graph that a parameter changed). */
static void graph_expect(dj_graph *g, const dj_exec *ex, dj_tensor *const w[4], const dj_tensor *x,
                         const dj_tensor *out) {
    dj_tensor wb = to_bf16(w[0]), fwb = to_bf16(w[2]);
    int64_t ys[5] = {2, 4, 4, 6, 6};
    dj_tensor y = mk(DJ_DTYPE_F32, 5, ys), z = mk_like(DJ_DTYPE_F32, out);
    dj_conv3d_params p = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1, 0};
    CHECK_EQ_INT(dj_graph_forward(g, ex, 1), DJ_OK);
    CHECK_EQ_INT(dj_conv3d_forward_bf16(ex, &p, x, w[0], &wb, w[1], &y), DJ_OK);
    CHECK_EQ_INT(dj_linear_forward_bf16(ex, &y, w[2], &fwb, w[3], &z), DJ_OK);
    CHECK_MSG(!differs(&z, out), "the graph's bf16 output is not the operators' on fresh weights");
    dj_tensor_free(&wb), dj_tensor_free(&fwb), dj_tensor_free(&y), dj_tensor_free(&z);
}

static void test_graph_bf16_copies(void) {
    int x, out;
    dj_graph *f = small_graph(0, &x, &out), *g = small_graph(1, &x, &out);
    dj_graph_memory mf, mg;
    dj_graph_memory_report(f, &mf);
    dj_graph_memory_report(g, &mg);
    CHECK(mf.params_bf16 == 0);
    CHECK(mg.params_bf16 == 64 * ((4 * 3 * 27 * 2 + 63) / 64) + 64 * ((5 * 6 * 2 + 63) / 64));
    CHECK(dj_graph_bf16(g) && !dj_graph_bf16(f));
    size_t bytes = dj_graph_scratch_bytes(g);
    void *scratch = malloc(bytes);
    dj_exec ex = {pools[1], scratch, bytes};
    const char *names[4] = {"c.weight", "c.bias", "fc.weight", "fc.bias"};
    dj_tensor *w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = dj_graph_tensor(g, dj_graph_find(g, names[i]));
        fill(w[i], 60 + (uint64_t)i, 0.3f);
    }
    const dj_tensor *xt = dj_graph_tensor(g, x), *ot = dj_graph_tensor(g, out);
    fill(dj_graph_tensor(g, x), 70, 1.0f);
    graph_expect(g, &ex, w, xt, ot);
    /* a change through dj_graph_tensor (loading, initialising) */
    fill(dj_graph_tensor(g, dj_graph_find(g, "c.weight")), 80, 0.3f);
    graph_expect(g, &ex, w, xt, ot);
    /* an optimizer step changes the weights in place and says so */
    dj_optim_config oc = dj_optim_defaults(DJ_OPTIM_SGD);
    dj_optimizer *opt = NULL;
    CHECK_EQ_INT(dj_optimizer_create(g, &oc, &opt), DJ_OK);
    graph_expect(g, &ex, w, xt, ot);
    set_all(dj_graph_grad(g, dj_graph_find(g, "fc.weight")), 1.0);
    set_all(dj_graph_grad(g, dj_graph_find(g, "c.weight")), 1.0);
    CHECK_EQ_INT(dj_optimizer_step(opt, &ex, 0.5, NULL), DJ_OK);
    graph_expect(g, &ex, w, xt, ot);
    dj_optimizer_free(opt);
    /* bf16 is chosen before planning */
    dj_graph_set_bf16(f, 1);
    CHECK(dj_graph_status(f) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "before planning");
    free(scratch);
    dj_graph_free(f);
    dj_graph_free(g);
}

/* In a bf16 graph a convolution runs the bf16 GEMM unless Winograd saves at
 * least 4x its products in float32: the graph's output is, bit for bit,
 * the float32 operator's where the saving is 6 (F(2,3) x F(4,3)^2 tiles), and
 * the bf16 operator's where it is 2.25 (F(2,3) tiles over a 6x6 frame, one
 * live temporal tap) or 2 (a (3,1,1) kernel over 8 frames). */
static void test_graph_bf16_conv_choice(void) {
    struct {
        int64_t x[5];
        int k[3];
        double saving;
    } cases[3] = {{{1, 16, 4, 16, 16}, {3, 3, 3}, 6.0}, {{4, 16, 1, 6, 6}, {3, 3, 3}, 2.25}, {{2, 16, 8, 4, 4}, {3, 1, 1}, 2.0}};
    int checked = 0;
    for (int c = 0; c < 3; c++) {
        dj_conv3d_params p = {{1, 1, 1}, {cases[c].k[0] / 2, cases[c].k[1] / 2, cases[c].k[2] / 2}, {1, 1, 1}, 1, 0};
        int64_t ws[5] = {16, 16, cases[c].k[0], cases[c].k[1], cases[c].k[2]};
        if (dj_conv3d_path(&p, cases[c].x, ws) != DJ_CONV_PATH_WINOGRAD)
            continue; /* no AVX-512: no Winograd to choose against */
        CHECK_CLOSE(dj_conv3d_winograd_saving(&p, cases[c].x, ws), cases[c].saving, 1e-12, 0);
        dj_graph *g = NULL;
        CHECK_EQ_INT(dj_graph_create(&g), DJ_OK);
        int x = dj_graph_input(g, "x", DJ_DTYPE_F32, 5, cases[c].x);
        int out = dj_layer_conv3d(g, "c", x, 16, dj_conv_same(cases[c].k[0], cases[c].k[1], cases[c].k[2]));
        dj_graph_mark_output(g, out);
        dj_graph_set_bf16(g, 1);
        CHECK_MSG(dj_graph_plan(g, 1) == DJ_OK, "%s", dj_error_message());
        size_t bytes = dj_graph_scratch_bytes(g);
        void *scratch = malloc(bytes ? bytes : 1);
        dj_exec ex = {pools[1], scratch, bytes};
        dj_tensor *w = dj_graph_tensor(g, dj_graph_find(g, "c.weight")), *xt = dj_graph_tensor(g, x);
        fill(w, 90 + (uint64_t)c, 0.2f);
        fill(xt, 95 + (uint64_t)c, 1.0f);
        CHECK_EQ_INT(dj_graph_forward(g, &ex, 1), DJ_OK);
        const dj_tensor *got = dj_graph_tensor(g, out);
        dj_tensor f32 = mk_like(DJ_DTYPE_F32, got), b16 = mk_like(DJ_DTYPE_F32, got), wb = to_bf16(w);
        size_t sb = dj_conv3d_scratch_bytes(&p, xt, w, 2), sb16 = dj_conv3d_scratch_bytes_bf16(&p, xt, w);
        void *own = malloc((sb > sb16 ? sb : sb16) + 1);
        dj_exec ox = {pools[1], own, sb > sb16 ? sb : sb16};
        CHECK_EQ_INT(dj_conv3d_forward(&ox, &p, xt, w, NULL, &f32), DJ_OK);
        CHECK_EQ_INT(dj_conv3d_forward_bf16(&ox, &p, xt, w, &wb, NULL, &b16), DJ_OK);
        int wino = cases[c].saving >= 4;
        CHECK_MSG(!differs(got, wino ? &f32 : &b16), "case %d: the graph did not run the %s conv", c,
                  wino ? "float32 Winograd" : "bf16");
        CHECK_MSG(differs(&f32, &b16), "case %d: float32 and bf16 agree bit for bit: the check is blind", c);
        free(own);
        dj_tensor_free(&f32), dj_tensor_free(&b16), dj_tensor_free(&wb);
        free(scratch);
        dj_graph_free(g);
        checked++;
    }
    if (!checked)
        SKIP("conv3d runs no Winograd on this CPU (AVX-512 needed)");
}

/* After a first pass, bf16 forward passes with weight refreshes allocate
 * nothing (the copies live in the arena, the scratch is planned). */
static void test_graph_bf16_allocates_nothing(void) {
#if defined(__SANITIZE_ADDRESS__)
    SKIP("malloc statistics are not meaningful under AddressSanitizer");
#else
    int x, out;
    dj_graph *g = small_graph(1, &x, &out);
    size_t bytes = dj_graph_scratch_bytes(g);
    void *scratch = malloc(bytes);
    dj_exec ex = {NULL, scratch, bytes};
    dj_tensor *w = dj_graph_tensor(g, dj_graph_find(g, "c.weight"));
    fill(dj_graph_tensor(g, x), 70, 1.0f);
    CHECK_EQ_INT(dj_graph_forward(g, &ex, 1), DJ_OK);
    struct mallinfo2 before = mallinfo2();
    for (int step = 0; step < 5; step++) {
        ((float *)w->data)[step] += 0.25f;
        dj_graph_params_changed(g);
        CHECK_EQ_INT(dj_graph_forward(g, &ex, 1), DJ_OK);
    }
    struct mallinfo2 after = mallinfo2();
    CHECK_EQ_INT(after.uordblks, before.uordblks);
    CHECK_EQ_INT(after.hblkhd, before.hblkhd);
    free(scratch);
    dj_graph_free(g);
#endif
}

int main(void) {
    for (int i = 0; i < 3; i++)
        if (dj_threadpool_create(i + 1, &pools[i]) != DJ_OK)
            return 1;
    printf("# bf16 products: %s\n", dj_cpu_bf16_native() ? "avx512_bf16" : "converted");
    DJ_RUN(test_bf16_round_rows);
    DJ_RUN(test_conv3d_bf16_against_reference);
    DJ_RUN(test_conv3d_bf16_bit_identical);
    DJ_RUN(test_conv3d_bf16_depthwise_is_float32);
    DJ_RUN(test_conv3d_bf16_gradients_alone);
    DJ_RUN(test_conv3d_bf16_errors);
    DJ_RUN(test_linear_bf16);
    DJ_RUN(test_graph_bf16_copies);
    DJ_RUN(test_graph_bf16_allocates_nothing);
    DJ_RUN(test_graph_bf16_conv_choice);
    for (int i = 0; i < 3; i++)
        dj_threadpool_free(pools[i]);
    return dj_test_finish();
}
