/* test_ops_pointwise.c — the fast float32 point-wise operators against their
 * double references over every case of pointwise_cases.h (forward and
 * accumulating backward), bit-identical results for 1, 2 and 3 threads, and
 * a check that every operator has cases in the table. */
#include "pointwise_cases.h"

static dj_threadpool *pw_pools[3];
static void *pw_scratch;
static const size_t pw_scratch_bytes = (size_t)1 << 20;

/* Counts elements of f (float32) not within tolerance of d (double). */
static int pw_compare_report(const char *what, const char *name, const dj_tensor *f, const dj_tensor *d, double rtol,
                             double atol, int report) {
    int bad = 0;
    for (int64_t i = 0; i < dj_tensor_numel(d); i++) {
        double a = ((const float *)f->data)[i], b = ((const double *)d->data)[i];
        if (!(fabs(a - b) <= atol + rtol * fabs(b))) {
            if (report && bad < 3)
                dj_test_fail_at(__FILE__, __LINE__, "%s %s[%lld]: float32 %.9g, reference %.9g", name, what,
                                (long long)i, a, b);
            bad++;
        }
    }
    return bad;
}

static int pw_compare(const char *what, const char *name, const dj_tensor *f, const dj_tensor *d, double rtol,
                      double atol) {
    return pw_compare_report(what, name, f, d, rtol, atol, 1);
}

static int pw_same_bits(const dj_tensor *a, const dj_tensor *b) {
    return !a->data || memcmp(a->data, b->data, dj_tensor_nbytes(a)) == 0;
}

static void pw_run_fast(const pw_case *c, int threads, pw_set *f) {
    dj_exec ex = {pw_pools[threads - 1], pw_scratch, pw_scratch_bytes};
    dj_status s = pw_fast_forward(&ex, c, f);
    CHECK_MSG(s == DJ_OK, "%s forward (%d threads): %s", c->name, threads, dj_error_message());
    s = pw_fast_backward(&ex, c, f);
    CHECK_MSG(s == DJ_OK, "%s backward (%d threads): %s", c->name, threads, dj_error_message());
}

static int pw_check_case(int ci) {
    const pw_case *c = &pw_cases[ci];
    pw_set d, f[3];
    pw_set_make(c, 500 + (uint64_t)ci, &d);
    for (int t = 0; t < 3; t++)
        pw_set_to_f32(c, &d, &f[t]);
    CHECK(pw_ref_forward(c, &d) == DJ_OK);
    CHECK(pw_ref_backward(c, &d) == DJ_OK);
    for (int t = 0; t < 3; t++)
        pw_run_fast(c, t + 1, &f[t]);
    int bad = pw_compare("out", c->name, &f[0].out, &d.out, c->rtol, c->atol);
    for (int i = 0; i < c->nin; i++)
        if (pw_is_diff(c, i))
            bad += pw_compare("grad", c->name, &f[0].din[i], &d.din[i], fmax(c->rtol, 2e-6), fmax(c->atol, 1e-6));
    for (int t = 1; t < 3; t++) {
        int same = pw_same_bits(&f[0].out, &f[t].out) && pw_same_bits(&f[0].probs, &f[t].probs);
        for (int i = 0; i < c->nin; i++)
            same = same && pw_same_bits(&f[0].din[i], &f[t].din[i]);
        CHECK_MSG(same, "%s: %d threads differ from 1 thread", c->name, t + 1);
        bad += !same;
    }
    pw_set_free(&d);
    for (int t = 0; t < 3; t++)
        pw_set_free(&f[t]);
    return bad;
}

/* Every case under each kernel family this CPU has (DOJO_CPU caps the
 * choice: the scalar, AVX2 and AVX-512 builds of the row kernels). */
static void test_fast_matches_reference_every_case(void) {
    const char *caps[3] = {"scalar", "avx2", "avx512"};
    int failed = 0, best = (int)dj_cpu_best_isa(), runs = 0; /* before DOJO_CPU is changed below */
    for (int k = 0; k <= best; k++, runs++) {
        setenv("DOJO_CPU", caps[k], 1);
        for (int ci = 0; ci < PW_NCASES; ci++) {
            int bad = pw_check_case(ci);
            if (bad)
                dj_test_fail_at(__FILE__, __LINE__, "case '%s' failed with DOJO_CPU=%s", pw_cases[ci].name, caps[k]);
            failed += bad > 0;
        }
    }
    unsetenv("DOJO_CPU");
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(runs, best + 1);
}

/* Every operator has at least two cases (so a missing one is visible). */
static void test_every_operator_has_cases(void) {
    int count[PW_NOPS] = {0};
    for (int ci = 0; ci < PW_NCASES; ci++)
        count[pw_cases[ci].op]++;
    for (int op = 0; op < PW_NOPS; op++)
        CHECK_MSG(count[op] >= 2, "operator %s has %d cases", pw_op_names[op], count[op]);
    int acts[DJ_ACT_SIGMOID + 1] = {0};
    for (int ci = 0; ci < PW_NCASES; ci++)
        if (pw_cases[ci].op == PW_ACT)
            acts[pw_cases[ci].act]++;
    for (int a = 0; a <= DJ_ACT_SIGMOID; a++)
        CHECK_MSG(acts[a] >= 1, "activation %s has no case", dj_act_name((dj_act)a));
}

/* The comparison must be able to fail: a perturbed output is caught. */
static void test_comparison_detects_an_error(void) {
    const pw_case *c = &pw_cases[2];
    pw_set d, f;
    pw_set_make(c, 9, &d);
    pw_set_to_f32(c, &d, &f);
    CHECK(pw_ref_forward(c, &d) == DJ_OK);
    dj_exec ex = {NULL, NULL, 0};
    CHECK(pw_fast_forward(&ex, c, &f) == DJ_OK);
    ((float *)f.out.data)[3] *= 1.001f;
    ((float *)f.out.data)[3] += 1e-3f;
    CHECK_EQ_INT(pw_compare_report("out", c->name, &f.out, &d.out, c->rtol, c->atol, 0), 1);
    pw_set_free(&d);
    pw_set_free(&f);
}

int main(void) {
    for (int t = 0; t < 3; t++)
        if (dj_threadpool_create(t + 1, &pw_pools[t]) != DJ_OK)
            return 1;
    pw_scratch = aligned_alloc(64, pw_scratch_bytes);
    DJ_RUN(test_every_operator_has_cases);
    DJ_RUN(test_fast_matches_reference_every_case);
    DJ_RUN(test_comparison_detects_an_error);
    free(pw_scratch);
    for (int t = 0; t < 3; t++)
        dj_threadpool_free(pw_pools[t]);
    return dj_test_finish();
}
