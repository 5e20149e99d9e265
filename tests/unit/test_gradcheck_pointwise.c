/* test_gradcheck_pointwise.c — finite-difference gradient checks, in double
 * precision, of every reference operator in the table of pointwise_cases.h:
 * L = sum(out * R) for a random R, central differences on a sample of
 * elements of each differentiable input, compared with the reference
 * backward (which must also ACCUMULATE onto what the gradient held). */
#include "pointwise_cases.h"

/* L = sum(out * dout) after a reference forward. */
static double pw_objective(const pw_case *c, pw_set *s) {
    dj_status st = pw_ref_forward(c, s);
    CHECK_MSG(st == DJ_OK, "%s: reference forward failed: %s", c->name, dj_error_message());
    double L = 0;
    const double *o = s->out.data, *r = s->dout.data;
    for (int64_t i = 0; i < dj_tensor_numel(&s->out); i++)
        L += o[i] * r[i];
    return L;
}

/* Returns the number of mismatching elements (prints the first few). */
static int pw_gradcheck_case(int ci) {
    const pw_case *c = &pw_cases[ci];
    pw_set s;
    pw_set_make(c, 1000 + (uint64_t)ci, &s);
    dj_tensor g0[3];
    memset(g0, 0, sizeof g0);
    for (int i = 0; i < c->nin; i++)
        if (pw_is_diff(c, i)) {
            CHECK(dj_tensor_create(DJ_DTYPE_F64, s.din[i].ndim, s.din[i].shape, &g0[i]) == DJ_OK);
            memcpy(g0[i].data, s.din[i].data, dj_tensor_nbytes(&s.din[i]));
        }
    CHECK(pw_ref_forward(c, &s) == DJ_OK);
    dj_status st = pw_ref_backward(c, &s);
    CHECK_MSG(st == DJ_OK, "%s: reference backward failed: %s", c->name, dj_error_message());
    dj_rng r;
    dj_rng_seed(&r, 77, (uint64_t)ci);
    int bad = 0;
    for (int i = 0; i < c->nin; i++) {
        if (!pw_is_diff(c, i))
            continue;
        double *x = s.in[i].data;
        int64_t n = dj_tensor_numel(&s.in[i]);
        int64_t samples = n <= 64 ? n : 40;
        for (int64_t k = 0; k < samples; k++) {
            int64_t e = n <= 64 ? k : (int64_t)dj_rng_below(&r, (uint64_t)n);
            double keep = x[e];
            x[e] = keep + c->h;
            double lp = pw_objective(c, &s);
            x[e] = keep - c->h;
            double lm = pw_objective(c, &s);
            x[e] = keep;
            double fd = (lp - lm) / (2 * c->h);
            double an = ((double *)s.din[i].data)[e] - ((double *)g0[i].data)[e];
            if (!(fabs(fd - an) <= c->fd_tol * (1.0 + fabs(an)))) {
                if (bad++ < 3)
                    dj_test_fail_at(__FILE__, __LINE__, "%s: input %d element %lld: finite difference %.10g, backward %.10g",
                                    c->name, i, (long long)e, fd, an);
            }
        }
    }
    for (int i = 0; i < 3; i++)
        dj_tensor_free(&g0[i]);
    pw_set_free(&s);
    return bad;
}

static void test_gradcheck_every_case(void) {
    int failed = 0;
    for (int ci = 0; ci < PW_NCASES; ci++)
        failed += pw_gradcheck_case(ci) > 0;
    CHECK_EQ_INT(failed, 0);
}

/* The check itself must be able to fail: a wrong derivative is caught. */
static void test_gradcheck_detects_a_wrong_gradient(void) {
    pw_case c = pw_cases[2]; /* gelu erf */
    pw_set s;
    pw_set_make(&c, 5, &s);
    CHECK(pw_ref_backward(&c, &s) == DJ_OK);
    /* compare against the derivative of the tanh form: must differ somewhere */
    c.act = DJ_ACT_GELU_TANH;
    double *x = s.in[0].data;
    int64_t differs = 0;
    for (int64_t e = 0; e < dj_tensor_numel(&s.in[0]); e++) {
        double keep = x[e];
        x[e] = keep + c.h;
        double lp = pw_objective(&c, &s);
        x[e] = keep - c.h;
        double lm = pw_objective(&c, &s);
        x[e] = keep;
        pw_set t;
        pw_set_make(&pw_cases[2], 5, &t);
        double g0 = ((double *)t.din[0].data)[e];
        pw_set_free(&t);
        double an = ((double *)s.din[0].data)[e] - g0;
        differs += fabs((lp - lm) / (2 * c.h) - an) > c.fd_tol * (1 + fabs(an));
        if (e > 20)
            break;
    }
    CHECK(differs > 0);
    pw_set_free(&s);
}

int main(void) {
    DJ_RUN(test_gradcheck_every_case);
    DJ_RUN(test_gradcheck_detects_a_wrong_gradient);
    return dj_test_finish();
}
