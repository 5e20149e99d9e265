/* test_gradcheck_spatial.c — finite-difference gradient checks, in double
 * precision, of the reference (naive) spatial operators: for every row of
 * the case table, the loss L = sum(out * R) with a random projection R is
 * differentiated by central differences for a sample of the elements of x,
 * weight and bias and compared with the reference backward. */
#include "dojo/dojo.h"
#include "spatial_cases.h"
#include "support/test.h"

enum { SP_FD_SAMPLES = 64 }; /* elements checked per input slot */

static double sp_loss(const sp_case *c, sp_set *s, const dj_tensor *R) {
    if (sp_forward(c, NULL, s) != DJ_OK)
        return NAN;
    const double *y = s->out.data, *r = R->data;
    double L = 0.0;
    for (int64_t i = 0; i < dj_tensor_numel(&s->out); i++)
        L += y[i] * r[i];
    return L;
}

static int64_t sp_checked; /* elements compared, all cases */
static double sp_worst;    /* largest relative error seen */

/* Checks one case; returns the number of mismatches. */
static int sp_gradcheck_case(const sp_case *c) {
    sp_set s;
    dj_tensor R = {0}, g[3] = {{0}, {0}, {0}};
    int bad = 0;
    if (sp_set_create(c, DJ_DTYPE_F64, &s) != DJ_OK || dj_tensor_create(DJ_DTYPE_F64, s.out.ndim, s.out.shape, &R) != DJ_OK) {
        CHECK_MSG(0, "%s: cannot create tensors: %s", c->name, dj_error_message());
        sp_set_free(&s);
        return 1;
    }
    for (int k = 0; k < 3; k++) {
        sp_fill(c, &s, k, 1234 + (uint64_t)k);
        if (s.in[k].data)
            dj_tensor_create(DJ_DTYPE_F64, s.in[k].ndim, s.in[k].shape, &g[k]);
    }
    for (int64_t i = 0; i < dj_tensor_numel(&R); i++)
        ((double *)R.data)[i] = sp_uniform(77, 5, (uint64_t)i);
    dj_status st = sp_backward(c, NULL, &s, &R, g);
    CHECK_MSG(st == DJ_OK, "%s: reference backward failed: %s", c->name, dj_error_message());
    for (int k = 0; st == DJ_OK && k < 3; k++) {
        if (!s.in[k].data)
            continue;
        double *v = s.in[k].data;
        const double *an = g[k].data;
        int64_t n = dj_tensor_numel(&s.in[k]);
        int64_t step = n > SP_FD_SAMPLES ? n / SP_FD_SAMPLES : 1;
        for (int64_t i = (int64_t)(dj_hash_u64(9, (uint64_t)k, 0) % (uint64_t)step); i < n; i += step) {
            double keep = v[i];
            v[i] = keep + c->fd_step;
            double lp = sp_loss(c, &s, &R);
            v[i] = keep - c->fd_step;
            double lm = sp_loss(c, &s, &R);
            v[i] = keep;
            double fd = (lp - lm) / (2.0 * c->fd_step);
            double scale = fabs(fd) > fabs(an[i]) ? fabs(fd) : fabs(an[i]);
            sp_checked++;
            if (scale > 1e-6 && fabs(fd - an[i]) / scale > sp_worst)
                sp_worst = fabs(fd - an[i]) / scale;
            if (!(fabs(fd - an[i]) <= c->fd_rtol * scale + 1e-8)) {
                if (bad++ < 5)
                    dj_test_fail_at(__FILE__, __LINE__, "%s: slot %d element %lld: finite difference %.12g vs backward %.12g",
                                    c->name, k, (long long)i, fd, an[i]);
            }
        }
    }
    for (int k = 0; k < 3; k++)
        dj_tensor_free(&g[k]);
    dj_tensor_free(&R);
    sp_set_free(&s);
    return bad;
}

static void test_gradcheck_all_cases(void) {
    int checked = 0;
    for (int i = 0; i < SP_NCASES; i++) {
        if (sp_cases[i].fd_step == 0.0)
            continue;
        const char *f = getenv("DOJO_CASE");
        if (f && !strstr(sp_cases[i].name, f))
            continue;
        sp_gradcheck_case(&sp_cases[i]);
        checked++;
    }
    CHECK(checked > 0);
    CHECK(sp_checked > 20 * checked);
    printf("# %d cases, %lld gradient elements checked, worst relative error %.3g\n", checked,
           (long long)sp_checked, sp_worst);
}

/* The check can fail: a reference backward with a wrong gradient (the
 * projection R used for the analytic side differs) is caught. */
static void test_gradcheck_detects_a_wrong_gradient(void) {
    const sp_case *c = &sp_cases[0];
    sp_set s;
    dj_tensor R = {0}, R2 = {0}, g[3] = {{0}, {0}, {0}};
    CHECK(sp_set_create(c, DJ_DTYPE_F64, &s) == DJ_OK);
    CHECK(dj_tensor_create(DJ_DTYPE_F64, s.out.ndim, s.out.shape, &R) == DJ_OK);
    CHECK(dj_tensor_create(DJ_DTYPE_F64, s.out.ndim, s.out.shape, &R2) == DJ_OK);
    sp_fill(c, &s, 0, 1), sp_fill(c, &s, 1, 2), sp_fill(c, &s, 2, 3);
    dj_tensor_create(DJ_DTYPE_F64, s.in[0].ndim, s.in[0].shape, &g[0]);
    for (int64_t i = 0; i < dj_tensor_numel(&R); i++) {
        ((double *)R.data)[i] = sp_uniform(77, 5, (uint64_t)i);
        ((double *)R2.data)[i] = sp_uniform(77, 5, (uint64_t)i) * (i == 3 ? 1.5 : 1.0);
    }
    CHECK(sp_backward(c, NULL, &s, &R2, g) == DJ_OK);
    int mismatches = 0;
    double *v = s.in[0].data;
    for (int64_t i = 0; i < dj_tensor_numel(&s.in[0]); i++) {
        double keep = v[i];
        v[i] = keep + 1e-6;
        double lp = sp_loss(c, &s, &R);
        v[i] = keep - 1e-6;
        double lm = sp_loss(c, &s, &R);
        v[i] = keep;
        double fd = (lp - lm) / 2e-6, an = ((double *)g[0].data)[i];
        mismatches += fabs(fd - an) > 1e-6 * fabs(fd) + 1e-8;
    }
    CHECK(mismatches > 0);
    dj_tensor_free(&g[0]);
    dj_tensor_free(&R);
    dj_tensor_free(&R2);
    sp_set_free(&s);
}

int main(void) {
    DJ_RUN(test_gradcheck_all_cases);
    DJ_RUN(test_gradcheck_detects_a_wrong_gradient);
    return dj_test_finish();
}
