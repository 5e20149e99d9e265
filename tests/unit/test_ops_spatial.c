/* test_ops_spatial.c — the fast float32 spatial operators against their
 * double references over the case table (forward and every gradient, with
 * gradients pre-filled to check that backward accumulates), bit-identical
 * results for 1, 2 and 3 threads, PyTorch semantics on hand-computed
 * examples, and clear errors on bad shapes. */
#include <stdlib.h>

#include "dojo/dojo.h"
#include "spatial_cases.h"
#include "support/test.h"

static dj_threadpool *sp_pool1, *sp_pool2, *sp_pool3;

/* The fast run of one case: a float set with its gradients. */
typedef struct sp_run {
    sp_set s;
    dj_tensor dout, g[3];
} sp_run;

static void sp_run_free(sp_run *r) {
    sp_set_free(&r->s);
    dj_tensor_free(&r->dout);
    for (int k = 0; k < 3; k++)
        dj_tensor_free(&r->g[k]);
}

static double sp_grad_init(uint64_t k, int64_t i) { return 0.25 * sp_uniform(31, 10 + k, (uint64_t)i); }

/* Copies double data into a float tensor, rounding, and rounds the double
 * copy too so both sides see the very same numbers. */
static void sp_to_float(dj_tensor *d, dj_tensor *f) {
    double *a = d->data;
    float *b = f->data;
    for (int64_t i = 0; i < dj_tensor_numel(d); i++) {
        b[i] = (float)a[i];
        a[i] = b[i];
    }
}

/* Builds matching double (ref) and float (fast) inputs, dout and pre-filled
 * gradients for a case. */
static dj_status sp_prepare(const sp_case *c, sp_set *ref, dj_tensor *rdout, dj_tensor rg[3], sp_run *fast) {
    memset(fast, 0, sizeof *fast);
    DJ_TRY(sp_set_create(c, DJ_DTYPE_F64, ref));
    DJ_TRY(sp_set_create(c, DJ_DTYPE_F32, &fast->s));
    DJ_TRY(dj_tensor_create(DJ_DTYPE_F64, ref->out.ndim, ref->out.shape, rdout));
    DJ_TRY(dj_tensor_create(DJ_DTYPE_F32, ref->out.ndim, ref->out.shape, &fast->dout));
    for (int64_t i = 0; i < dj_tensor_numel(rdout); i++)
        ((double *)rdout->data)[i] = sp_uniform(55, 3, (uint64_t)i);
    sp_to_float(rdout, &fast->dout);
    for (int k = 0; k < 3; k++) {
        sp_fill(c, ref, k, 4321 + (uint64_t)k);
        if (!ref->in[k].data)
            continue;
        sp_to_float(&ref->in[k], &fast->s.in[k]);
        DJ_TRY(dj_tensor_create(DJ_DTYPE_F64, ref->in[k].ndim, ref->in[k].shape, &rg[k]));
        DJ_TRY(dj_tensor_create(DJ_DTYPE_F32, ref->in[k].ndim, ref->in[k].shape, &fast->g[k]));
        for (int64_t i = 0; i < dj_tensor_numel(&rg[k]); i++)
            ((double *)rg[k].data)[i] = sp_grad_init((uint64_t)k, i);
        sp_to_float(&rg[k], &fast->g[k]);
    }
    return DJ_OK;
}

/* Forward + backward of the fast operators on `pool`. */
static dj_status sp_run_fast(const sp_case *c, dj_threadpool *pool, sp_run *r) {
    size_t bytes = sp_scratch_bytes(c, &r->s, dj_threadpool_size(pool));
    void *scratch = malloc(bytes + 64);
    if (!scratch)
        return DJ_ERR_NOMEM;
    dj_exec ex = {pool, scratch, bytes};
    float *y = r->s.out.data; /* forward must overwrite every output */
    for (int64_t i = 0; i < dj_tensor_numel(&r->s.out); i++)
        y[i] = NAN;
    dj_status st = sp_forward(c, &ex, &r->s);
    if (st == DJ_OK)
        st = sp_backward(c, &ex, &r->s, &r->dout, r->g);
    free(scratch);
    return st;
}

/* |fast - ref| <= rtol * (|ref| + mean |ref|), elementwise; returns mismatches. */
static int sp_compare(const char *name, const char *what, const dj_tensor *f, const dj_tensor *d, double rtol) {
    const float *a = f->data;
    const double *b = d->data;
    int64_t n = dj_tensor_numel(d);
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++)
        mean += fabs(b[i]);
    mean = n ? mean / (double)n : 0.0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= rtol * (fabs(b[i]) + mean) + 1e-30)) {
            if (bad++ < 3)
                dj_test_fail_at(__FILE__, __LINE__, "%s: %s[%lld] = %.9g, reference %.9g", name, what, (long long)i,
                                a[i], b[i]);
        }
    return bad;
}

static void sp_check_case_against_ref(const sp_case *c) {
    sp_set ref;
    dj_tensor rdout = {0}, rg[3] = {{0}, {0}, {0}};
    sp_run fast;
    dj_status st = sp_prepare(c, &ref, &rdout, rg, &fast);
    CHECK_MSG(st == DJ_OK, "%s: setup failed: %s", c->name, dj_error_message());
    if (st == DJ_OK) {
        st = sp_backward(c, NULL, &ref, &rdout, rg); /* runs the forward too */
        CHECK_MSG(st == DJ_OK, "%s: reference failed: %s", c->name, dj_error_message());
        st = sp_run_fast(c, sp_pool2, &fast);
        CHECK_MSG(st == DJ_OK, "%s: fast operator failed: %s", c->name, dj_error_message());
    }
    if (st == DJ_OK) {
        static const char *const slot[3] = {"input gradient", "weight gradient", "bias gradient"};
        sp_compare(c->name, "output", &fast.s.out, &ref.out, c->rtol);
        for (int k = 0; k < 3; k++)
            if (rg[k].data)
                sp_compare(c->name, slot[k], &fast.g[k], &rg[k], c->rtol);
    }
    sp_set_free(&ref);
    dj_tensor_free(&rdout);
    for (int k = 0; k < 3; k++)
        dj_tensor_free(&rg[k]);
    sp_run_free(&fast);
}

static void test_every_op_has_cases(void) {
    int count[SP_OP_COUNT] = {0};
    for (int i = 0; i < SP_NCASES; i++)
        count[sp_cases[i].op]++;
    for (int op = 0; op < SP_OP_COUNT; op++)
        CHECK_MSG(count[op] > 0, "operator %s has no case in the table", sp_op_names[op]);
}

static void test_fast_matches_reference(void) {
    const char *f = getenv("DOJO_CASE");
    for (int i = 0; i < SP_NCASES; i++)
        if (!f || strstr(sp_cases[i].name, f))
            sp_check_case_against_ref(&sp_cases[i]);
}

static int sp_same_bits(const dj_tensor *a, const dj_tensor *b) {
    return !a->data || memcmp(a->data, b->data, dj_tensor_nbytes(a)) == 0;
}

static void test_thread_counts_give_identical_bits(void) {
    dj_threadpool *pools[3] = {sp_pool1, sp_pool2, sp_pool3};
    for (int i = 0; i < SP_NCASES; i++) {
        const sp_case *c = &sp_cases[i];
        sp_run runs[3];
        sp_set ref[3];
        dj_tensor rdout[3] = {{0}}, rg[3][3];
        memset(rg, 0, sizeof rg);
        int ok = 1;
        for (int t = 0; t < 3; t++) {
            ok &= sp_prepare(c, &ref[t], &rdout[t], rg[t], &runs[t]) == DJ_OK;
            ok &= sp_run_fast(c, pools[t], &runs[t]) == DJ_OK;
        }
        CHECK_MSG(ok, "%s: %s", c->name, dj_error_message());
        for (int t = 1; ok && t < 3; t++) {
            CHECK_MSG(sp_same_bits(&runs[0].s.out, &runs[t].s.out), "%s: output differs with %d threads", c->name, t + 1);
            for (int k = 0; k < 3; k++)
                CHECK_MSG(sp_same_bits(&runs[0].g[k], &runs[t].g[k]), "%s: gradient %d differs with %d threads",
                          c->name, k, t + 1);
        }
        for (int t = 0; t < 3; t++) {
            sp_run_free(&runs[t]);
            sp_set_free(&ref[t]);
            dj_tensor_free(&rdout[t]);
            for (int k = 0; k < 3; k++)
                dj_tensor_free(&rg[t][k]);
        }
    }
}

/* ---------------------------------------------------------------- PyTorch semantics by hand */

static dj_tensor sp_f32(int ndim, const int64_t *shape, const float *values) {
    dj_tensor t;
    CHECK(dj_tensor_create(DJ_DTYPE_F32, ndim, shape, &t) == DJ_OK);
    if (values)
        memcpy(t.data, values, dj_tensor_nbytes(&t));
    return t;
}

static void test_conv_output_shapes_of_r3d(void) {
    int64_t in[5] = {8, 3, 8, 112, 112}, w[5] = {64, 3, 3, 7, 7}, out[5];
    dj_conv3d_params stem = {{1, 2, 2}, {1, 3, 3}, {0}, 0, 0};
    CHECK(dj_conv3d_output_shape(&stem, in, w, out) == DJ_OK);
    CHECK(out[0] == 8 && out[1] == 64 && out[2] == 8 && out[3] == 56 && out[4] == 56);
    int64_t in2[5] = {8, 64, 8, 56, 56}, w2[5] = {128, 64, 3, 3, 3};
    dj_conv3d_params down = {{2, 2, 2}, {1, 1, 1}, {0}, 0, 0};
    CHECK(dj_conv3d_output_shape(&down, in2, w2, out) == DJ_OK);
    CHECK(out[1] == 128 && out[2] == 4 && out[3] == 28 && out[4] == 28);
    int64_t w3[5] = {128, 64, 1, 1, 1};
    dj_conv3d_params ds = {{2, 2, 2}, {0}, {0}, 0, 0};
    CHECK(dj_conv3d_output_shape(&ds, in2, w3, out) == DJ_OK);
    CHECK(out[2] == 4 && out[3] == 28 && out[4] == 28);
}

static void test_conv_known_values(void) {
    /* 1-D: x = [1,2,3,4], w = [1,0,-1], pad 1 -> [-2, -2, -2, 3] (cross-correlation) */
    int64_t xs[5] = {1, 1, 1, 1, 4}, ws[5] = {1, 1, 1, 1, 3}, os[5] = {1, 1, 1, 1, 4}, bs = 1;
    float xv[4] = {1, 2, 3, 4}, wv[3] = {1, 0, -1}, bv[1] = {0.5f};
    dj_tensor x = sp_f32(5, xs, xv), w = sp_f32(5, ws, wv), b = sp_f32(1, &bs, bv), y = sp_f32(5, os, NULL);
    dj_conv3d_params p = {{0}, {0, 0, 1}, {0}, 0, 0};
    float scratch[64];
    dj_exec ex = {NULL, scratch, sizeof scratch};
    CHECK(dj_conv3d_scratch_bytes(&p, &x, &w, 1) <= sizeof scratch);
    CHECK(dj_conv3d_forward(&ex, &p, &x, &w, &b, &y) == DJ_OK);
    const float *yv = y.data;
    CHECK_CLOSE(yv[0], -1.5, 0, 1e-6);
    CHECK_CLOSE(yv[1], -1.5, 0, 1e-6);
    CHECK_CLOSE(yv[2], -1.5, 0, 1e-6);
    CHECK_CLOSE(yv[3], 3.5, 0, 1e-6);
    dj_tensor_free(&x), dj_tensor_free(&w), dj_tensor_free(&b), dj_tensor_free(&y);
}

static void test_batchnorm_running_stats_pytorch_rule(void) {
    /* (N=2, C=1, 2): values 1,2,3,6: mean 3, biased var 3.5, unbiased 14/3 */
    int64_t xs[3] = {2, 1, 2}, c1 = 1;
    float xv[4] = {1, 2, 3, 6}, rmv[1] = {1.0f}, rvv[1] = {2.0f};
    dj_tensor x = sp_f32(3, xs, xv), y = sp_f32(3, xs, NULL), rm = sp_f32(1, &c1, rmv), rv = sp_f32(1, &c1, rvv);
    dj_tensor sm = sp_f32(1, &c1, NULL), si = sp_f32(1, &c1, NULL);
    dj_batchnorm_params p = dj_batchnorm_defaults();
    CHECK(p.training == 1 && fabs(p.momentum - 0.1f) < 1e-9 && fabs(p.eps - 1e-5f) < 1e-12);
    CHECK(dj_batchnorm_forward(NULL, &p, &x, NULL, NULL, &rm, &rv, &y, &sm, &si) == DJ_OK);
    CHECK_CLOSE(((float *)rm.data)[0], 0.9 * 1.0 + 0.1 * 3.0, 1e-6, 0);
    CHECK_CLOSE(((float *)rv.data)[0], 0.9 * 2.0 + 0.1 * 14.0 / 3.0, 1e-6, 0);
    CHECK_CLOSE(((float *)sm.data)[0], 3.0, 1e-6, 0);
    CHECK_CLOSE(((float *)si.data)[0], 1.0 / sqrt(3.5 + 1e-5), 1e-6, 0);
    CHECK_CLOSE(((float *)y.data)[3], 3.0 / sqrt(3.5 + 1e-5), 1e-5, 0);
    /* eval uses the running statistics */
    p.training = 0;
    CHECK(dj_batchnorm_forward(NULL, &p, &x, NULL, NULL, &rm, &rv, &y, &sm, &si) == DJ_OK);
    double m = 0.9 + 0.3, v = 1.8 + 1.4 / 3.0 * 1.0;
    CHECK_CLOSE(((float *)y.data)[0], (1.0 - m) / sqrt(v + 1e-5), 1e-5, 0);
    dj_tensor_free(&x), dj_tensor_free(&y), dj_tensor_free(&rm), dj_tensor_free(&rv);
    dj_tensor_free(&sm), dj_tensor_free(&si);
}

static void test_batchnorm_relu_eval_matches_unfused(void) {
    int64_t xs[5] = {2, 3, 2, 3, 4}, c3 = 3;
    dj_tensor x = sp_f32(5, xs, NULL), y1 = sp_f32(5, xs, NULL), y2 = sp_f32(5, xs, NULL);
    float wv[3] = {1.5f, -0.5f, 1.0f}, bv[3] = {0.1f, 0.2f, -0.3f}, mv[3] = {0.1f, -0.2f, 0.0f}, vv[3] = {1, 2, 0.5f};
    dj_tensor w = sp_f32(1, &c3, wv), b = sp_f32(1, &c3, bv), rm = sp_f32(1, &c3, mv), rv = sp_f32(1, &c3, vv);
    dj_tensor sm = sp_f32(1, &c3, NULL), si = sp_f32(1, &c3, NULL);
    for (int64_t i = 0; i < dj_tensor_numel(&x); i++)
        ((float *)x.data)[i] = (float)sp_uniform(3, 3, (uint64_t)i);
    dj_batchnorm_params p = {0, 0.1f, 1e-5f};
    CHECK(dj_batchnorm_forward(NULL, &p, &x, &w, &b, &rm, &rv, &y1, &sm, &si) == DJ_OK);
    dj_exec ex = {sp_pool2, NULL, 0};
    CHECK(dj_batchnorm_relu_eval_forward(&ex, 1e-5f, &x, &w, &b, &rm, &rv, &y2) == DJ_OK);
    int zeros = 0;
    for (int64_t i = 0; i < dj_tensor_numel(&x); i++) {
        float a = ((float *)y1.data)[i];
        CHECK(((float *)y2.data)[i] == (a > 0 ? a : 0.0f));
        zeros += a <= 0;
    }
    CHECK(zeros > 0);
    dj_tensor_free(&x), dj_tensor_free(&y1), dj_tensor_free(&y2), dj_tensor_free(&w), dj_tensor_free(&b);
    dj_tensor_free(&rm), dj_tensor_free(&rv), dj_tensor_free(&sm), dj_tensor_free(&si);
}

/* Inputs with a mean far larger than their spread (1000 +- 1): training
 * forward and backward stay within float rounding of the double reference. */
static void test_batchnorm_large_mean_keeps_precision(void) {
    int64_t xs[3] = {4, 2, 9}, c2 = 2;
    dj_tensor xf = sp_f32(3, xs, NULL), yf = sp_f32(3, xs, NULL), dyf = sp_f32(3, xs, NULL), dxf = sp_f32(3, xs, NULL);
    dj_tensor smf = sp_f32(1, &c2, NULL), sif = sp_f32(1, &c2, NULL);
    dj_tensor xd, yd, dyd, dxd, smd, sid;
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 3, xs, &xd) == DJ_OK && dj_tensor_create(DJ_DTYPE_F64, 3, xs, &yd) == DJ_OK);
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 3, xs, &dyd) == DJ_OK && dj_tensor_create(DJ_DTYPE_F64, 3, xs, &dxd) == DJ_OK);
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 1, &c2, &smd) == DJ_OK && dj_tensor_create(DJ_DTYPE_F64, 1, &c2, &sid) == DJ_OK);
    for (int64_t i = 0; i < 72; i++) {
        float v = 1000.0f + (float)sp_uniform(8, 1, (uint64_t)i), g = (float)sp_uniform(8, 2, (uint64_t)i);
        ((float *)xf.data)[i] = v, ((double *)xd.data)[i] = v;
        ((float *)dyf.data)[i] = g, ((double *)dyd.data)[i] = g;
    }
    dj_batchnorm_params p = dj_batchnorm_defaults();
    CHECK(dj_batchnorm_forward(NULL, &p, &xf, NULL, NULL, NULL, NULL, &yf, &smf, &sif) == DJ_OK);
    CHECK(dj_batchnorm_backward(NULL, &p, &xf, NULL, &smf, &sif, &dyf, &dxf, NULL, NULL) == DJ_OK);
    CHECK(dj_batchnorm_ref_forward(&p, &xd, NULL, NULL, NULL, NULL, &yd, &smd, &sid) == DJ_OK);
    CHECK(dj_batchnorm_ref_backward(&p, &xd, NULL, &smd, &sid, &dyd, &dxd, NULL, NULL) == DJ_OK);
    CHECK(sp_compare("batchnorm mean 1000", "output", &yf, &yd, 2e-3) == 0);
    CHECK(sp_compare("batchnorm mean 1000", "input gradient", &dxf, &dxd, 2e-3) == 0);
    dj_tensor *all[] = {&xf, &yf, &dyf, &dxf, &smf, &sif, &xd, &yd, &dyd, &dxd, &smd, &sid};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dj_tensor_free(all[i]);
}

static void test_avgpool_count_include_pad(void) {
    /* x = [1,2,3,4], k 3, s 2, p 1: windows [-1,2) and [1,4) */
    int64_t xs[5] = {1, 1, 1, 1, 4}, os[5] = {1, 1, 1, 1, 2}, got[5];
    float xv[4] = {1, 2, 3, 4};
    dj_tensor x = sp_f32(5, xs, xv), y = sp_f32(5, os, NULL);
    dj_pool3d_params p = {{1, 1, 3}, {1, 1, 2}, {0, 0, 1}, {0}, 0, 0};
    CHECK(dj_pool3d_output_shape(&p, xs, got) == DJ_OK && got[4] == 2);
    CHECK(dj_avgpool3d_forward(NULL, &p, &x, &y) == DJ_OK);
    CHECK_CLOSE(((float *)y.data)[0], 1.0, 1e-6, 0); /* (0+1+2)/3 */
    CHECK_CLOSE(((float *)y.data)[1], 3.0, 1e-6, 0);
    p.exclude_pad = 1;
    CHECK(dj_avgpool3d_forward(NULL, &p, &x, &y) == DJ_OK);
    CHECK_CLOSE(((float *)y.data)[0], 1.5, 1e-6, 0);
    /* ceil mode: k 2, s 2 over 5 -> 3 outputs, the last window clipped to [4,5) */
    int64_t xs5[5] = {1, 1, 1, 1, 5}, os3[5] = {1, 1, 1, 1, 3};
    float xv5[5] = {1, 2, 3, 4, 5};
    dj_tensor x5 = sp_f32(5, xs5, xv5), y3 = sp_f32(5, os3, NULL);
    dj_pool3d_params pc = {{1, 1, 2}, {0}, {0}, {0}, 1, 0};
    CHECK(dj_pool3d_output_shape(&pc, xs5, got) == DJ_OK && got[4] == 3);
    CHECK(dj_avgpool3d_forward(NULL, &pc, &x5, &y3) == DJ_OK);
    CHECK_CLOSE(((float *)y3.data)[2], 5.0, 1e-6, 0); /* PyTorch divides by the clipped window here */
    pc.ceil_mode = 0;
    CHECK(dj_pool3d_output_shape(&pc, xs5, got) == DJ_OK && got[4] == 2);
    dj_tensor_free(&x), dj_tensor_free(&y), dj_tensor_free(&x5), dj_tensor_free(&y3);
}

static void test_adaptive_windows(void) {
    /* In 5 -> Out 3: [0,2) [1,4) [3,5) */
    int64_t xs[5] = {1, 1, 1, 1, 5}, os[5] = {1, 1, 1, 1, 3};
    float xv[5] = {1, 2, 3, 4, 5};
    dj_tensor x = sp_f32(5, xs, xv), y = sp_f32(5, os, NULL), dx = sp_f32(5, xs, NULL);
    CHECK(dj_adaptive_avgpool3d_forward(NULL, &x, &y) == DJ_OK);
    CHECK_CLOSE(((float *)y.data)[0], 1.5, 1e-6, 0);
    CHECK_CLOSE(((float *)y.data)[1], 3.0, 1e-6, 0);
    CHECK_CLOSE(((float *)y.data)[2], 4.5, 1e-6, 0);
    float ones[3] = {1, 1, 1};
    dj_tensor dy = sp_f32(5, os, ones);
    CHECK(dj_adaptive_avgpool3d_backward(NULL, &dy, &dx) == DJ_OK);
    CHECK_CLOSE(((float *)dx.data)[1], 0.5 + 1.0 / 3.0, 1e-6, 0);
    CHECK_CLOSE(((float *)dx.data)[2], 1.0 / 3.0, 1e-6, 0);
    dj_tensor_free(&x), dj_tensor_free(&y), dj_tensor_free(&dx), dj_tensor_free(&dy);
}

static void test_maxpool_indices_and_nan(void) {
    int64_t xs[5] = {1, 1, 1, 2, 3}, os[5] = {1, 1, 1, 1, 2};
    float xv[6] = {1, 9, 2, 7, 3, NAN};
    dj_tensor x = sp_f32(5, xs, xv), y = sp_f32(5, os, NULL), idx, dx = sp_f32(5, xs, NULL);
    CHECK(dj_tensor_create(DJ_DTYPE_I64, 5, os, &idx) == DJ_OK);
    dj_pool3d_params p = {{1, 2, 2}, {1, 1, 1}, {0}, {0}, 0, 0};
    CHECK(dj_maxpool3d_forward(NULL, &p, &x, &y, &idx) == DJ_OK);
    CHECK(((float *)y.data)[0] == 9.0f && ((int64_t *)idx.data)[0] == 1);
    CHECK(isnan(((float *)y.data)[1]) && ((int64_t *)idx.data)[1] == 5);
    float g[2] = {1.0f, 2.0f};
    dj_tensor dy = sp_f32(5, os, g);
    CHECK(dj_maxpool3d_backward(NULL, &p, &idx, &dy, &dx) == DJ_OK);
    CHECK(((float *)dx.data)[1] == 1.0f && ((float *)dx.data)[5] == 2.0f && ((float *)dx.data)[0] == 0.0f);
    ((int64_t *)idx.data)[1] = 6; /* hostile index */
    CHECK(dj_maxpool3d_backward(NULL, &p, &idx, &dy, &dx) == DJ_ERR_RANGE);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_maxpool3d_backward");
    dj_tensor_free(&x), dj_tensor_free(&y), dj_tensor_free(&idx), dj_tensor_free(&dx), dj_tensor_free(&dy);
}

/* Max pooling's unclipped runs (taps outermost, outputs innermost, in each
 * build the CPU has) against the reference on wide rows full of ties, NaNs
 * and -inf: the same values and the same winning indices (the first maximum,
 * a NaN wins), for several geometries. */
static void test_maxpool_runs_match_reference(void) {
    const dj_pool3d_params ps[4] = {{{1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0}, 0, 0},
                                    {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {0}, 0, 0},
                                    {{2, 2, 2}, {1, 1, 1}, {0}, {1, 2, 2}, 0, 0},
                                    {{1, 2, 3}, {1, 1, 3}, {0, 1, 1}, {0}, 1, 0}};
    const char *caps[3] = {"scalar", "avx2", "avx512"};
    int best = (int)dj_cpu_best_isa(), bad = 0;
    int64_t xs[5] = {1, 2, 5, 9, 70};
    dj_tensor x = sp_f32(5, xs, NULL), xd;
    CHECK(dj_tensor_create(DJ_DTYPE_F64, 5, xs, &xd) == DJ_OK); /* the reference's input */
    float *xv = x.data;
    for (int64_t i = 0; i < dj_tensor_numel(&x); i++) {
        uint64_t r = (uint64_t)((sp_uniform(7, 1, (uint64_t)i) + 1) * 1000);
        xv[i] = r % 37 == 0 ? NAN : r % 41 == 0 ? -INFINITY : (float)(r % 5); /* ties everywhere */
        ((double *)xd.data)[i] = xv[i];
    }
    for (int k = 0; k <= best && k < 3; k++) {
        setenv("DOJO_CPU", caps[k], 1);
        for (int c = 0; c < 4; c++) {
            int64_t os[5];
            CHECK(dj_pool3d_output_shape(&ps[c], xs, os) == DJ_OK);
            dj_tensor y = sp_f32(5, os, NULL), yr, ix, ixr;
            CHECK(dj_tensor_create(DJ_DTYPE_F64, 5, os, &yr) == DJ_OK);
            CHECK(dj_tensor_create(DJ_DTYPE_I64, 5, os, &ix) == DJ_OK && dj_tensor_create(DJ_DTYPE_I64, 5, os, &ixr) == DJ_OK);
            CHECK(dj_maxpool3d_forward(NULL, &ps[c], &x, &y, &ix) == DJ_OK);
            CHECK(dj_maxpool3d_ref_forward(&ps[c], &xd, &yr, &ixr) == DJ_OK);
            const float *a = y.data;
            const double *b = yr.data;
            const int64_t *ia = ix.data, *ib = ixr.data;
            for (int64_t i = 0; i < dj_tensor_numel(&y); i++)
                if (ia[i] != ib[i] || !(a[i] == b[i] || (isnan(a[i]) && isnan(b[i])))) {
                    bad++;
                    if (bad < 5)
                        dj_test_fail_at(__FILE__, __LINE__, "DOJO_CPU=%s geometry %d output %lld: %g at %lld, want %g at %lld",
                                        caps[k], c, (long long)i, a[i], (long long)ia[i], b[i], (long long)ib[i]);
                }
            dj_tensor_free(&y), dj_tensor_free(&yr), dj_tensor_free(&ix), dj_tensor_free(&ixr);
        }
    }
    unsetenv("DOJO_CPU");
    CHECK_EQ_INT(bad, 0);
    dj_tensor_free(&x), dj_tensor_free(&xd);
}

static void test_patch_embed_is_conv_then_flatten(void) {
    int64_t xs[5] = {2, 3, 4, 8, 8}, ws[5] = {5, 3, 2, 4, 4}, bs = 5, cs[5] = {2, 5, 2, 2, 2}, ts[3] = {2, 8, 5};
    dj_tensor x = sp_f32(5, xs, NULL), w = sp_f32(5, ws, NULL), b = sp_f32(1, &bs, NULL);
    dj_tensor yc = sp_f32(5, cs, NULL), yt = sp_f32(3, ts, NULL);
    for (int64_t i = 0; i < dj_tensor_numel(&x); i++)
        ((float *)x.data)[i] = (float)sp_uniform(1, 1, (uint64_t)i);
    for (int64_t i = 0; i < dj_tensor_numel(&w); i++)
        ((float *)w.data)[i] = (float)sp_uniform(1, 2, (uint64_t)i);
    for (int64_t i = 0; i < 5; i++)
        ((float *)b.data)[i] = (float)i;
    dj_conv3d_params p = {{2, 4, 4}, {0}, {0}, 0, 0};
    size_t need = dj_conv3d_scratch_bytes(&p, &x, &w, dj_threadpool_size(sp_pool3)), need2 = dj_patch_embed_scratch_bytes(&x, &w);
    void *scratch = malloc((need > need2 ? need : need2) + 64);
    dj_exec ex = {sp_pool3, scratch, need > need2 ? need : need2};
    CHECK(dj_conv3d_forward(&ex, &p, &x, &w, &b, &yc) == DJ_OK);
    CHECK(dj_patch_embed_forward(&ex, &x, &w, &b, &yt) == DJ_OK);
    for (int64_t n = 0; n < 2; n++)
        for (int64_t d = 0; d < 5; d++)
            for (int64_t l = 0; l < 8; l++)
                CHECK_CLOSE(((float *)yt.data)[(n * 8 + l) * 5 + d], ((float *)yc.data)[(n * 5 + d) * 8 + l], 1e-5, 1e-6);
    free(scratch);
    dj_tensor_free(&x), dj_tensor_free(&w), dj_tensor_free(&b), dj_tensor_free(&yc), dj_tensor_free(&yt);
}

/* ---------------------------------------------------------------- errors */

static void test_bad_shapes_are_clear_errors(void) {
    int64_t xs[5] = {2, 4, 3, 5, 5}, ws[5] = {6, 3, 3, 3, 3}, os[5] = {2, 6, 3, 5, 5}, bs = 5;
    dj_tensor x = sp_f32(5, xs, NULL), w = sp_f32(5, ws, NULL), y = sp_f32(5, os, NULL), b = sp_f32(1, &bs, NULL);
    dj_conv3d_params p = {{0}, {1, 1, 1}, {0}, 0, 0};
    char big[1 << 16];
    dj_exec ex = {NULL, big, sizeof big};
    /* weight has 3 input channels, the input 4 */
    CHECK_EQ_INT(dj_conv3d_forward(&ex, &p, &x, &w, NULL, &y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_conv3d_forward");
    CHECK_STR_CONTAINS(dj_error_message(), "(6,3,3,3,3)");
    CHECK_STR_CONTAINS(dj_error_message(), "(2,4,3,5,5)");
    /* groups that do not divide the channels */
    p.groups = 3;
    CHECK_EQ_INT(dj_conv3d_forward(&ex, &p, &x, &w, NULL, &y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "groups");
    /* wrong bias and output shapes, scratch too small */
    int64_t ws4[5] = {6, 4, 3, 3, 3}, bad_os[5] = {2, 6, 3, 5, 4};
    dj_tensor w4 = sp_f32(5, ws4, NULL), ybad = sp_f32(5, bad_os, NULL);
    p.groups = 0;
    CHECK_EQ_INT(dj_conv3d_forward(&ex, &p, &x, &w4, &b, &y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "bias");
    CHECK_EQ_INT(dj_conv3d_forward(&ex, &p, &x, &w4, NULL, &ybad), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "output");
    dj_exec small = {NULL, big, 16};
    CHECK_EQ_INT(dj_conv3d_forward(&small, &p, &x, &w4, NULL, &y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "scratch");
    CHECK_EQ_INT(dj_conv3d_backward(&ex, &p, &x, &w4, &ybad, NULL, NULL, NULL), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_conv3d_backward");
    CHECK_STR_CONTAINS(dj_error_message(), "output gradient");
    CHECK_EQ_INT(dj_conv3d_backward(&ex, &p, &x, &w4, &y, NULL, NULL, &b), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "bias gradient");
    CHECK_EQ_INT(dj_conv3d_backward(&ex, &p, &x, &w4, &y, NULL, &w, NULL), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "weight gradient");
    /* kernel larger than the padded input */
    int64_t wbig[5] = {6, 4, 9, 3, 3};
    dj_tensor w9 = sp_f32(5, wbig, NULL);
    CHECK_EQ_INT(dj_conv3d_forward(&ex, &p, &x, &w9, NULL, &y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "larger than padded input");
    /* negative padding, stride or groups */
    dj_conv3d_params neg = {{1, -1, 1}, {0}, {0}, 0, 0};
    CHECK_EQ_INT(dj_conv3d_forward(&ex, &neg, &x, &w4, NULL, &y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "negative");
    neg = (dj_conv3d_params){{0}, {0}, {0}, -2, 0};
    CHECK_EQ_INT(dj_conv3d_forward(&ex, &neg, &x, &w4, NULL, &y), DJ_ERR_INVALID);
    /* 4-D input to conv3d */
    dj_tensor x4;
    int64_t xs4[4] = {2, 4, 15, 5};
    CHECK(dj_tensor_reshape(&x, 4, xs4, &x4) == DJ_OK);
    CHECK_EQ_INT(dj_conv3d_forward(&ex, &p, &x4, &w4, NULL, &y), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "5-D");
    /* linear */
    int64_t ls[2] = {3, 7}, lw[2] = {4, 6}, lo[2] = {3, 4};
    dj_tensor lx = sp_f32(2, ls, NULL), lwt = sp_f32(2, lw, NULL), ly = sp_f32(2, lo, NULL);
    CHECK_EQ_INT(dj_linear_forward(NULL, &lx, &lwt, NULL, &ly), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_linear_forward");
    CHECK_STR_CONTAINS(dj_error_message(), "(4,6)");
    /* batch norm eval without running statistics; group norm groups */
    int64_t c4 = 4;
    dj_tensor sm = sp_f32(1, &c4, NULL), si = sp_f32(1, &c4, NULL), xo = sp_f32(5, xs, NULL);
    dj_batchnorm_params bp = {0, 0.1f, 1e-5f};
    CHECK_EQ_INT(dj_batchnorm_forward(NULL, &bp, &x, NULL, NULL, NULL, NULL, &xo, &sm, &si), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "running_mean");
    int64_t one_s[5] = {1, 4, 1, 1, 1};
    dj_tensor one = sp_f32(5, one_s, NULL), one_y = sp_f32(5, one_s, NULL);
    bp.training = 1;
    CHECK_EQ_INT(dj_batchnorm_forward(NULL, &bp, &one, NULL, NULL, NULL, NULL, &one_y, &sm, &si), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "more than one value per channel");
    dj_tensor_free(&one), dj_tensor_free(&one_y);
    CHECK_EQ_INT(dj_groupnorm_forward(NULL, 3, 1e-5f, &x, NULL, NULL, &xo, &sm, &si), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_groupnorm_forward");
    CHECK_EQ_INT(dj_layernorm_forward(NULL, 1, 1e-5f, &x, &b, NULL, &xo, &sm, &si), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_layernorm_forward");
    /* pooling: padding over half the kernel, dilation in avg pool */
    dj_pool3d_params pp = {{2, 2, 2}, {0}, {0, 0, 2}, {0}, 0, 0};
    int64_t idxs[5] = {2, 4, 1, 2, 3};
    dj_tensor px = sp_f32(5, idxs, NULL), pi;
    CHECK(dj_tensor_create(DJ_DTYPE_I64, 5, idxs, &pi) == DJ_OK);
    CHECK_EQ_INT(dj_maxpool3d_forward(NULL, &pp, &x, &px, &pi), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "padding");
    dj_pool3d_params pd = {{1, 2, 2}, {0}, {0}, {1, 2, 1}, 0, 0};
    int64_t pds[5] = {2, 4, 3, 1, 2};
    dj_tensor pdy = sp_f32(5, pds, NULL);
    CHECK_EQ_INT(dj_avgpool3d_forward(NULL, &pd, &x, &pdy), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dilation");
    /* patch embedding: patch larger than the input */
    int64_t pw[5] = {8, 4, 4, 2, 2};
    dj_tensor pwt = sp_f32(5, pw, NULL);
    int64_t pos[3] = {2, 1, 8};
    dj_tensor pout = sp_f32(3, pos, NULL);
    CHECK_EQ_INT(dj_patch_embed_forward(&ex, &x, &pwt, NULL, &pout), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_patch_embed_forward");
    dj_tensor *all[] = {&x, &w, &y, &b, &w4, &ybad, &w9, &lx, &lwt, &ly, &sm, &si, &xo, &px, &pi, &pdy, &pwt, &pout};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dj_tensor_free(all[i]);
}

/* Which code each conv runs: the stems of the CPU-sized models the direct
 * path (AVX-512), r3d_18's the GEMM, stride-1 3x3x3 Winograd; asking for
 * the GEMM gets the GEMM. */
static void test_conv_paths(void) {
    dj_conv3d_params stem = {{1, 2, 2}, {1, 3, 3}, {0}, 0, 0}, same = {{0}, {1, 1, 1}, {0}, 0, 0};
    int64_t x[5] = {8, 3, 8, 64, 64}, w16[5] = {16, 3, 3, 7, 7}, w64[5] = {64, 3, 3, 7, 7};
    int64_t x2[5] = {8, 64, 8, 56, 56}, w2[5] = {64, 64, 3, 3, 3}, wp[5] = {64, 64, 1, 1, 1}, wd[5] = {64, 1, 3, 3, 3};
    int avx512 = dj_cpu_best_isa() >= DJ_CPU_ISA_AVX512;
    CHECK_EQ_INT(dj_conv3d_path(&stem, x, w16), avx512 ? DJ_CONV_PATH_DIRECT : DJ_CONV_PATH_GEMM);
    CHECK_EQ_INT(dj_conv3d_path(&stem, x, w64), DJ_CONV_PATH_GEMM);
    CHECK_EQ_INT(dj_conv3d_path(&same, x2, w2), avx512 ? DJ_CONV_PATH_WINOGRAD : DJ_CONV_PATH_GEMM);
    dj_conv3d_params pw = {{0}, {0}, {0}, 0, 0}, dw = {{0}, {1, 1, 1}, {0}, 64, 0};
    CHECK_EQ_INT(dj_conv3d_path(&pw, x2, wp), DJ_CONV_PATH_POINTWISE);
    CHECK_EQ_INT(dj_conv3d_path(&dw, x2, wd), DJ_CONV_PATH_DEPTHWISE);
    stem.algo = DJ_CONV_GEMM;
    same.algo = DJ_CONV_GEMM;
    CHECK_EQ_INT(dj_conv3d_path(&stem, x, w16), DJ_CONV_PATH_GEMM);
    CHECK_EQ_INT(dj_conv3d_path(&same, x2, w2), DJ_CONV_PATH_GEMM);
    CHECK_EQ_INT(dj_conv3d_path(&same, x2, wd), DJ_CONV_PATH_INVALID);
    /* taps the GEMM computes: all but where at least half meet only padding */
    dj_conv3d_params t311 = {{0}, {1, 0, 0}, {0}, 0, 0}, s2 = {{2, 2, 2}, {1, 1, 1}, {0}, 0, 0};
    int64_t x1[5] = {8, 64, 1, 7, 7}, xt2[5] = {8, 64, 2, 7, 7}, w311[5] = {32, 64, 3, 1, 1};
    CHECK_EQ_INT(dj_conv3d_gemm_taps(&t311, x1, w311), 1);          /* T = 1: the middle tap */
    CHECK_EQ_INT(dj_conv3d_gemm_taps(&t311, xt2, w311), 3);         /* T = 2: all three meet data */
    CHECK_EQ_INT(dj_conv3d_gemm_taps(&same, x1, w2), 9);            /* 3x3x3 over T = 1: a (1,3,3) block */
    CHECK_EQ_INT(dj_conv3d_gemm_taps(&s2, xt2, w2), 27);            /* two live taps of three: kept */
    CHECK_EQ_INT(dj_conv3d_gemm_taps(&same, x2, wd), 0);            /* invalid */
}

int main(void) {
    DJ_RUN(test_conv_paths);
    if (dj_threadpool_create(1, &sp_pool1) != DJ_OK || dj_threadpool_create(2, &sp_pool2) != DJ_OK ||
        dj_threadpool_create(3, &sp_pool3) != DJ_OK) {
        fprintf(stderr, "cannot create thread pools: %s\n", dj_error_message());
        return 1;
    }
    DJ_RUN(test_every_op_has_cases);
    DJ_RUN(test_fast_matches_reference);
    DJ_RUN(test_thread_counts_give_identical_bits);
    DJ_RUN(test_conv_output_shapes_of_r3d);
    DJ_RUN(test_conv_known_values);
    DJ_RUN(test_batchnorm_running_stats_pytorch_rule);
    DJ_RUN(test_batchnorm_relu_eval_matches_unfused);
    DJ_RUN(test_batchnorm_large_mean_keeps_precision);
    DJ_RUN(test_avgpool_count_include_pad);
    DJ_RUN(test_adaptive_windows);
    DJ_RUN(test_maxpool_indices_and_nan);
    DJ_RUN(test_maxpool_runs_match_reference);
    DJ_RUN(test_patch_embed_is_conv_then_flatten);
    DJ_RUN(test_bad_shapes_are_clear_errors);
    dj_threadpool_free(sp_pool1);
    dj_threadpool_free(sp_pool2);
    dj_threadpool_free(sp_pool3);
    return dj_test_finish();
}
