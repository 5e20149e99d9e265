/* test_gemm.c — dj_sgemm and dj_gemm_bf16 against the naive reference: every
 * kernel family (scalar, AVX2, AVX-512, forced with DOJO_CPU), odd shapes,
 * the four transpose combinations, alpha/beta (beta == 0 over NaN), wide
 * leading dimensions, bit-identical results for 1, 2 and 3 threads, bf16
 * (the converted path bit-identical to vdpbf16ps), the implicit-GEMM entries
 * (dj_sgemm_packed_b, dj_gemm_bf16_packed_b: the stored matrix's bits), and
 * the error cases. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "kernels/cpu/gemm_kernels.h"
#include "support/test.h"

#define DJ_GUARD 12345.0f /* C entries between rows (ldc > N) must keep it */

static const char *dj_isas[] = {"scalar", "avx2", "avx512"};

/* Caps the kernel family; returns 0 when this CPU lacks it. */
static int dj_use_isa(const char *isa) {
    setenv("DOJO_CPU", isa, 1);
    return strcmp(dj_cpu_isa_name(dj_cpu_best_isa()), isa) == 0;
}

static void dj_fill(dj_rng *r, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        x[i] = 2.0f * dj_rng_float(r) - 1.0f;
}

typedef struct dj_case {
    int ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    float *A, *B, *C0, *C, *R, *absA, *absB, *mag;
} dj_case;

/* Allocates A, B and C for a case with leading dimensions `pad` wider than
 * needed; C gets random values (or NaN when beta == 0) and guards. */
static void dj_case_make(dj_case *c, dj_rng *r, int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t pad,
                         float alpha, float beta) {
    memset(c, 0, sizeof *c);
    c->ta = ta, c->tb = tb, c->M = M, c->N = N, c->K = K, c->alpha = alpha, c->beta = beta;
    int64_t arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
    c->lda = acols + pad, c->ldb = bcols + pad, c->ldc = N + pad;
    size_t na = (size_t)(arows * c->lda + 1), nb = (size_t)(brows * c->ldb + 1), nc = (size_t)(M * c->ldc + 1);
    c->A = malloc(na * sizeof(float)), c->absA = malloc(na * sizeof(float));
    c->B = malloc(nb * sizeof(float)), c->absB = malloc(nb * sizeof(float));
    c->C0 = malloc(nc * sizeof(float)), c->C = malloc(nc * sizeof(float));
    c->R = malloc(nc * sizeof(float)), c->mag = malloc(nc * sizeof(float));
    dj_fill(r, c->A, (int64_t)na);
    dj_fill(r, c->B, (int64_t)nb);
    for (size_t i = 0; i < na; i++)
        c->absA[i] = fabsf(c->A[i]);
    for (size_t i = 0; i < nb; i++)
        c->absB[i] = fabsf(c->B[i]);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < c->ldc; j++)
            c->C0[i * c->ldc + j] = j >= N ? DJ_GUARD : beta == 0.0f ? NAN : 2.0f * dj_rng_float(r) - 1.0f;
    c->C0[nc - 1] = DJ_GUARD;
    memcpy(c->R, c->C0, nc * sizeof(float));
    dj_sgemm_ref(ta, tb, M, N, K, alpha, c->A, c->lda, c->B, c->ldb, beta, c->R, c->ldc);
    /* sum |alpha a b| + |beta c|: the scale of each entry's rounding error */
    dj_sgemm_ref(ta, tb, M, N, K, fabsf(alpha), c->absA, c->lda, c->absB, c->ldb, 0.0f, c->mag, c->ldc);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            c->mag[i * c->ldc + j] += beta == 0.0f ? 0.0f : fabsf(beta * c->C0[i * c->ldc + j]);
}

static void dj_case_free(dj_case *c) {
    free(c->A), free(c->B), free(c->C0), free(c->C), free(c->R), free(c->absA), free(c->absB), free(c->mag);
}

/* Compares C with the reference; returns the number of bad entries (and
 * reports the first). Guards between rows must be untouched. */
static int dj_case_check(const dj_case *c, double rtol, const char *what) {
    int bad = 0;
    for (int64_t i = 0; i < c->M; i++)
        for (int64_t j = 0; j < c->ldc; j++) {
            int64_t at = i * c->ldc + j;
            double got = c->C[at], want = c->R[at];
            int ok = j >= c->N ? got == DJ_GUARD : fabs(got - want) <= rtol * c->mag[at] + 1e-6;
            if (!ok && bad++ == 0)
                CHECK_MSG(0, "%s ta=%d tb=%d M=%lld N=%lld K=%lld alpha=%g beta=%g: C[%lld,%lld] = %.9g, want %.9g",
                          what, c->ta, c->tb, (long long)c->M, (long long)c->N, (long long)c->K, c->alpha, c->beta,
                          (long long)i, (long long)j, got, want);
        }
    CHECK(c->C[c->M * c->ldc] == DJ_GUARD);
    return bad;
}

static double dj_rtol(int64_t K) { return 1e-5 * sqrt((double)(K > 1 ? K : 1)) + 1e-6; }

static void dj_check_sgemm(dj_threadpool *pool, dj_rng *r, const char *isa, int ta, int tb, int64_t M, int64_t N,
                           int64_t K, int64_t pad, float alpha, float beta) {
    dj_case c;
    dj_case_make(&c, r, ta, tb, M, N, K, pad, alpha, beta);
    memcpy(c.C, c.C0, (size_t)(M * c.ldc + 1) * sizeof(float));
    CHECK_EQ_INT(dj_sgemm(pool, ta, tb, M, N, K, alpha, c.A, c.lda, c.B, c.ldb, beta, c.C, c.ldc), DJ_OK);
    dj_case_check(&c, dj_rtol(K), isa);
    dj_case_free(&c);
}

static const int64_t dj_odd[] = {1, 3, 17, 31, 33, 65, 127, 129};
#define DJ_NODD ((int)(sizeof dj_odd / sizeof dj_odd[0]))

/* every ISA x transpose combination over random odd shapes */
static void test_sgemm_odd_shapes_every_kernel(void) {
    dj_rng r;
    dj_rng_seed(&r, 42, 0);
    for (int s = 0; s < 3; s++) {
        if (!dj_use_isa(dj_isas[s])) {
            printf("# %s kernels not available here: skipped\n", dj_isas[s]);
            continue;
        }
        for (int t = 0; t < 4; t++)
            for (int rep = 0; rep < 10; rep++) {
                int64_t M = dj_odd[dj_rng_below(&r, DJ_NODD)], N = dj_odd[dj_rng_below(&r, DJ_NODD)];
                int64_t K = dj_odd[dj_rng_below(&r, DJ_NODD)];
                dj_check_sgemm(NULL, &r, dj_isas[s], t & 1, t >> 1, M, N, K, rep % 3 ? 0 : 5, 1.0f, 0.0f);
            }
    }
    unsetenv("DOJO_CPU");
}

/* all sizes in dj_odd on each axis, the others small: every edge case of
 * every tile width */
static void test_sgemm_each_axis_every_size(void) {
    dj_rng r;
    dj_rng_seed(&r, 7, 0);
    for (int s = 0; s < 3; s++) {
        if (!dj_use_isa(dj_isas[s]))
            continue;
        for (int i = 0; i < DJ_NODD; i++) {
            int64_t v = dj_odd[i];
            dj_check_sgemm(NULL, &r, dj_isas[s], 0, 0, v, 13, 9, 0, 1.0f, 0.0f);
            dj_check_sgemm(NULL, &r, dj_isas[s], 1, 0, 11, v, 5, 2, 1.0f, 0.0f);
            dj_check_sgemm(NULL, &r, dj_isas[s], 0, 1, 7, 15, v, 1, 1.0f, 0.0f);
        }
    }
    unsetenv("DOJO_CPU");
}

/* K over several KC blocks, N over several NC blocks, M over several MC */
static void test_sgemm_multiple_cache_blocks(void) {
    dj_rng r;
    dj_rng_seed(&r, 9, 0);
    for (int s = 0; s < 3; s++) {
        if (!dj_use_isa(dj_isas[s]))
            continue;
        dj_check_sgemm(NULL, &r, dj_isas[s], 0, 0, 13, 17, 600, 3, 0.5f, -1.25f);
        dj_check_sgemm(NULL, &r, dj_isas[s], 1, 1, 9, 1100, 40, 0, 1.0f, 1.0f);
        dj_check_sgemm(NULL, &r, dj_isas[s], 0, 1, 257, 33, 31, 4, -2.0f, 0.0f);
        dj_check_sgemm(NULL, &r, dj_isas[s], 1, 0, 100, 70, 1030, 0, 1.0f, 0.5f);
    }
    unsetenv("DOJO_CPU");
}

static void test_sgemm_alpha_beta(void) {
    dj_rng r;
    dj_rng_seed(&r, 11, 0);
    const float ab[][2] = {{1, 0}, {1, 1}, {0.5f, -1.25f}, {-3, 0}, {0, 2}, {0, 0}, {2, 1e-3f}};
    for (int s = 0; s < 3; s++) {
        if (!dj_use_isa(dj_isas[s]))
            continue;
        for (int i = 0; i < (int)(sizeof ab / sizeof ab[0]); i++)
            for (int t = 0; t < 4; t++)
                dj_check_sgemm(NULL, &r, dj_isas[s], t & 1, t >> 1, 29, 45, 37, 3, ab[i][0], ab[i][1]);
    }
    unsetenv("DOJO_CPU");
}

/* beta == 0 must not read C: NaN there does not leak into the result */
static void test_sgemm_beta_zero_ignores_nan(void) {
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}; /* A 2x3, B 3x2 */
    for (int s = 0; s < 3; s++) {
        if (!dj_use_isa(dj_isas[s]))
            continue;
        float C[4] = {NAN, NAN, INFINITY, NAN};
        CHECK_EQ_INT(dj_sgemm(NULL, DJ_NO_TRANS, DJ_NO_TRANS, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2), DJ_OK);
        CHECK(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11);
    }
    unsetenv("DOJO_CPU");
}

/* K == 0: C = beta * C (beta == 0: zeros, NaN ignored); M or N == 0: no-op */
static void test_sgemm_degenerate_sizes(void) {
    float C[4] = {1, 2, NAN, 4}, A[1] = {1}, B[1] = {1};
    CHECK_EQ_INT(dj_sgemm(NULL, DJ_NO_TRANS, DJ_NO_TRANS, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.0f, C, 2), DJ_OK);
    CHECK(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0);
    float D[2] = {1, 2};
    CHECK_EQ_INT(dj_sgemm(NULL, DJ_NO_TRANS, DJ_NO_TRANS, 1, 2, 0, 1.0f, A, 1, B, 2, 3.0f, D, 2), DJ_OK);
    CHECK(D[0] == 3 && D[1] == 6);
    CHECK_EQ_INT(dj_sgemm(NULL, DJ_NO_TRANS, DJ_NO_TRANS, 0, 2, 3, 1.0f, NULL, 3, B, 2, 0.0f, NULL, 2), DJ_OK);
    CHECK_EQ_INT(dj_sgemm(NULL, DJ_NO_TRANS, DJ_NO_TRANS, 2, 0, 3, 1.0f, A, 3, NULL, 0, 0.0f, NULL, 0), DJ_OK);
    /* 1x1x1 */
    float a = 3, b = -2, c = 5;
    CHECK_EQ_INT(dj_sgemm(NULL, DJ_TRANS, DJ_TRANS, 1, 1, 1, 2.0f, &a, 1, &b, 1, 1.0f, &c, 1), DJ_OK);
    CHECK(c == -7);
}

static void test_sgemm_errors(void) {
    float x[16] = {0};
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, -1, 2, 2, 1, x, 2, x, 2, 0, x, 2), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_sgemm");
    CHECK_STR_CONTAINS(dj_error_message(), "negative");
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, 2, -2, 2, 1, x, 2, x, 2, 0, x, 2), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, 2, 2, -5, 1, x, 2, x, 2, 0, x, 2), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, 2, 2, 2, 1, NULL, 2, x, 2, 0, x, 2), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "NULL");
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, 2, 2, 2, 1, x, 2, NULL, 2, 0, x, 2), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, 2, 2, 2, 1, x, 2, x, 2, 0, NULL, 2), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, 2, 3, 4, 1, x, 3, x, 3, 0, x, 3), DJ_ERR_INVALID); /* lda < K */
    CHECK_STR_CONTAINS(dj_error_message(), "lda");
    CHECK_EQ_INT(dj_sgemm(NULL, 1, 0, 2, 3, 4, 1, x, 1, x, 3, 0, x, 3), DJ_ERR_INVALID); /* lda < M */
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, 2, 3, 4, 1, x, 4, x, 2, 0, x, 3), DJ_ERR_INVALID); /* ldb < N */
    CHECK_STR_CONTAINS(dj_error_message(), "ldb");
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 1, 2, 3, 4, 1, x, 4, x, 3, 0, x, 3), DJ_ERR_INVALID); /* ldb < K */
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, 2, 3, 4, 1, x, 4, x, 3, 0, x, 2), DJ_ERR_INVALID); /* ldc < N */
    CHECK_STR_CONTAINS(dj_error_message(), "ldc");
    uint16_t h[16] = {0};
    CHECK_EQ_INT(dj_gemm_bf16(NULL, 0, 0, 2, 2, -1, 1, h, 2, h, 2, 0, x, 2), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_gemm_bf16");
    CHECK_EQ_INT(dj_gemm_bf16(NULL, 0, 0, 2, 2, 2, 1, h, 2, NULL, 2, 0, x, 2), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_gemm_bf16(NULL, 0, 0, 2, 2, 2, 1, h, 1, h, 2, 0, x, 2), DJ_ERR_INVALID);
}

/* the same product on pools of 1, 2 and 3 threads (and NULL): equal bits */
static void test_sgemm_bit_identical_across_threads(void) {
    dj_threadpool *pools[3] = {NULL, NULL, NULL};
    for (int p = 0; p < 3; p++)
        CHECK_EQ_INT(dj_threadpool_create(p + 1, &pools[p]), DJ_OK);
    dj_rng r;
    dj_rng_seed(&r, 5, 0);
    const int64_t shapes[][3] = {{200, 150, 300}, {37, 530, 70}, {301, 19, 260}, {128, 96, 600}};
    for (int s = 0; s < 3; s++) {
        if (!dj_use_isa(dj_isas[s]))
            continue;
        for (int i = 0; i < 4; i++) {
            int ta = i & 1, tb = (i >> 1) & 1;
            dj_case c;
            dj_case_make(&c, &r, ta, tb, shapes[i][0], shapes[i][1], shapes[i][2], 1, 1.5f, 0.25f);
            size_t nc = (size_t)(c.M * c.ldc + 1);
            float *first = malloc(nc * sizeof(float));
            /* NULL, 1 thread, then 2 and 3 threads 4 times each: tasks go to whichever
             * thread is free, which must not matter either */
            for (int run = 0; run < 10; run++) {
                int p = run < 2 ? run - 1 : 1 + (run - 2) / 4 % 2;
                memcpy(c.C, c.C0, nc * sizeof(float));
                CHECK_EQ_INT(dj_sgemm(p < 0 ? NULL : pools[p], ta, tb, c.M, c.N, c.K, c.alpha, c.A, c.lda, c.B,
                                      c.ldb, c.beta, c.C, c.ldc),
                             DJ_OK);
                if (p < 0) {
                    memcpy(first, c.C, nc * sizeof(float));
                    dj_case_check(&c, dj_rtol(c.K), dj_isas[s]);
                } else {
                    CHECK_MSG(memcmp(first, c.C, nc * sizeof(float)) == 0, "%s %d threads differ", dj_isas[s],
                              p + 1);
                }
            }
            free(first);
            dj_case_free(&c);
        }
    }
    unsetenv("DOJO_CPU");
    for (int p = 0; p < 3; p++)
        dj_threadpool_free(pools[p]);
}

/* a pooled run is also correct (not only equal to the serial one) */
static void test_sgemm_pool_correct(void) {
    dj_threadpool *pool = NULL;
    CHECK_EQ_INT(dj_threadpool_create(2, &pool), DJ_OK);
    dj_rng r;
    dj_rng_seed(&r, 77, 0);
    dj_check_sgemm(pool, &r, "pool", 1, 1, 150, 260, 280, 3, 1.0f, -1.0f);
    dj_check_sgemm(pool, &r, "pool", 0, 0, 2, 1000, 300, 0, 1.0f, 0.0f);
    dj_threadpool_free(pool);
}

/* bf16 GEMM: against the reference on the same bf16 values in float32 */
static void dj_check_bf16(dj_threadpool *pool, dj_rng *r, const char *isa, int ta, int tb, int64_t M, int64_t N,
                          int64_t K, int64_t pad, float alpha, float beta, float *out) {
    dj_case c;
    dj_case_make(&c, r, ta, tb, M, N, K, pad, 1.0f, beta);
    int64_t arows = ta ? K : M, brows = tb ? N : K;
    size_t na = (size_t)(arows * c.lda), nb = (size_t)(brows * c.ldb);
    uint16_t *Ab = malloc(na * sizeof(uint16_t)), *Bb = malloc(nb * sizeof(uint16_t));
    for (size_t i = 0; i < na; i++) {
        Ab[i] = dj_f32_to_bf16(c.A[i]);
        c.A[i] = dj_bf16_to_f32(Ab[i]);
        c.absA[i] = fabsf(c.A[i]);
    }
    for (size_t i = 0; i < nb; i++) {
        Bb[i] = dj_f32_to_bf16(c.B[i]);
        c.B[i] = dj_bf16_to_f32(Bb[i]);
        c.absB[i] = fabsf(c.B[i]);
    }
    /* redo the reference on the rounded values */
    size_t ncn = (size_t)(M * c.ldc + 1);
    c.alpha = alpha;
    memcpy(c.R, c.C0, ncn * sizeof(float));
    dj_sgemm_ref(ta, tb, M, N, K, alpha, c.A, c.lda, c.B, c.ldb, beta, c.R, c.ldc);
    dj_sgemm_ref(ta, tb, M, N, K, fabsf(alpha), c.absA, c.lda, c.absB, c.ldb, 0.0f, c.mag, c.ldc);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            c.mag[i * c.ldc + j] += beta == 0.0f ? 0.0f : fabsf(beta * c.C0[i * c.ldc + j]);
    memcpy(c.C, c.C0, ncn * sizeof(float));
    CHECK_EQ_INT(dj_gemm_bf16(pool, ta, tb, M, N, K, alpha, Ab, c.lda, Bb, c.ldb, beta, c.C, c.ldc), DJ_OK);
    dj_case_check(&c, dj_rtol(K), isa);
    if (out)
        memcpy(out, c.C, ncn * sizeof(float));
    free(Ab), free(Bb);
    dj_case_free(&c);
}

static void test_bf16_every_kernel(void) {
    dj_rng r;
    dj_rng_seed(&r, 21, 0);
    printf("# avx512_bf16 on this CPU: %s\n", dj_cpu_detect()->avx512_bf16 ? "yes" : "no (converted)");
    for (int s = 0; s < 3; s++) {
        if (!dj_use_isa(dj_isas[s]))
            continue;
        for (int t = 0; t < 4; t++)
            for (int rep = 0; rep < 6; rep++) {
                int64_t M = dj_odd[dj_rng_below(&r, DJ_NODD)], N = dj_odd[dj_rng_below(&r, DJ_NODD)];
                int64_t K = dj_odd[dj_rng_below(&r, DJ_NODD)];
                dj_check_bf16(NULL, &r, dj_isas[s], t & 1, t >> 1, M, N, K, rep % 2 ? 3 : 0, rep % 3 ? 1.0f : -0.5f,
                              rep % 2 ? 0.0f : 0.75f, NULL);
            }
        /* K odd and over several k blocks (pairs padding) */
        dj_check_bf16(NULL, &r, dj_isas[s], 0, 0, 13, 40, 1025, 0, 1.0f, 0.0f, NULL);
        dj_check_bf16(NULL, &r, dj_isas[s], 1, 1, 30, 600, 3, 1, 1.0f, 1.0f, NULL);
    }
    unsetenv("DOJO_CPU");
}

static void test_bf16_bit_identical_across_threads(void) {
    dj_threadpool *pools[3] = {NULL, NULL, NULL};
    for (int p = 0; p < 3; p++)
        CHECK_EQ_INT(dj_threadpool_create(p + 1, &pools[p]), DJ_OK);
    int64_t M = 150, N = 300, K = 301;
    size_t nc = (size_t)(M * N + 1);
    float *first = malloc(nc * sizeof(float)), *next = malloc(nc * sizeof(float));
    for (int p = 0; p < 3; p++) {
        dj_rng r;
        dj_rng_seed(&r, 3, 0); /* same data each time */
        dj_check_bf16(pools[p], &r, "bf16 pool", 0, 1, M, N, K, 0, 1.0f, 0.0f, p == 0 ? first : next);
        if (p > 0)
            CHECK_MSG(memcmp(first, next, nc * sizeof(float)) == 0, "bf16: %d threads differ from 1", p + 1);
    }
    free(first), free(next);
    for (int p = 0; p < 3; p++)
        dj_threadpool_free(pools[p]);
}

/* Random bf16 values; `wide` spreads exponents over [2^-126, 2^53]
 * (denormal products and inputs included, sums that stay finite), otherwise
 * |x| in [2^-8, 2^8). */
static uint16_t dj_rand_bf16(dj_rng *r, int wide) {
    uint32_t sign = dj_rng_below(r, 2), mant = dj_rng_below(r, 128);
    uint32_t e = wide ? 1 + dj_rng_below(r, 180) : 119 + dj_rng_below(r, 16);
    if (wide && dj_rng_below(r, 50) == 0)
        e = 0; /* a denormal input */
    return (uint16_t)(sign << 15 | e << 7 | mant);
}

/* C for one product on the kernel family `isa` ("native" = vdpbf16ps). */
static void dj_bf16_run(const char *isa, int ta, int tb, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                        const uint16_t *B, float beta, float *C) {
    setenv("DOJO_CPU", isa, 1);
    for (int64_t i = 0; i < M * N; i++)
        C[i] = beta == 0.0f ? NAN : (float)(i % 7) - 3.0f;
    CHECK_EQ_INT(dj_gemm_bf16(NULL, ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, beta, C, N), DJ_OK);
}

/* The converted path (AVX-512 without vdpbf16ps, AVX2, portable) gives the
 * same bits as the native kernel: same pairs, order and K blocks. The
 * portable kernel multiplies and adds in two steps (no FMA on baseline
 * x86-64), so it agrees only while every product is a normal float32: it is
 * compared on the narrow range only. */
static void test_bf16_converted_equals_native(void) {
    if (!dj_cpu_bf16_native()) {
        SKIP("this CPU has no avx512_bf16: the native kernel cannot be compared");
        return;
    }
    static const char *conv[] = {"avx512-nobf16", "avx2", "scalar"};
    static const int64_t shapes[][3] = {{13, 40, 1025}, {30, 70, 3}, {50, 33, 2100}, {7, 100, 64}, {1, 1, 1}};
    dj_rng r;
    dj_rng_seed(&r, 5, 0);
    for (int wide = 0; wide < 2; wide++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 4; t++) {
                int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                uint16_t *A = malloc((size_t)(M * K) * 2), *B = malloc((size_t)(K * N) * 2);
                float *want = malloc((size_t)(M * N) * 4), *got = malloc((size_t)(M * N) * 4);
                for (int64_t i = 0; i < M * K; i++)
                    A[i] = dj_rand_bf16(&r, wide);
                for (int64_t i = 0; i < K * N; i++)
                    B[i] = dj_rand_bf16(&r, wide);
                float beta = t == 3 ? 1.0f : 0.0f;
                dj_bf16_run("avx512", t & 1, t >> 1, M, N, K, A, B, beta, want);
                for (int c = 0; c < (wide ? 2 : 3); c++) {
                    dj_bf16_run(conv[c], t & 1, t >> 1, M, N, K, A, B, beta, got);
                    int64_t bad = 0, first = -1;
                    for (int64_t i = 0; i < M * N; i++)
                        if (memcmp(&got[i], &want[i], 4) != 0 && !(isnan(got[i]) && isnan(want[i])))
                            bad++, first = first < 0 ? i : first;
                    CHECK_MSG(bad == 0, "%s vs native, %lldx%lldx%lld trans %d wide %d: %lld differ (first %g vs %g)",
                              conv[c], (long long)M, (long long)N, (long long)K, t, wide, (long long)bad,
                              bad ? got[first] : 0.0, bad ? want[first] : 0.0);
                }
                free(A), free(B), free(want), free(got);
            }
    unsetenv("DOJO_CPU");
}

/* the reference itself, on a product worked by hand */
static void test_reference_by_hand(void) {
    float A[6] = {1, 2, 3, 4, 5, 6};        /* 2x3 */
    float B[6] = {7, 8, 9, 10, 11, 12};     /* 3x2 */
    float C[4] = {1, 1, 1, 1};
    CHECK_EQ_INT(dj_sgemm_ref(0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 2.0f, C, 2), DJ_OK);
    CHECK(C[0] == 60 && C[1] == 66 && C[2] == 141 && C[3] == 156);
    float D[4];
    CHECK_EQ_INT(dj_sgemm(NULL, 0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, D, 2), DJ_OK);
    CHECK(D[0] == 58 && D[1] == 64 && D[2] == 139 && D[3] == 154);
}

/* 64-byte aligned memory (packed panels are loaded with aligned loads) */
static void *dj_alloc64(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

/* One micro-kernel on packed panels a[kc][mr], b[kc][nr] (float32) or k-pair
 * panels (bf16) against a direct sum, for beta 0 (C holds NaN) and beta 1.5. */
static void dj_check_micro(const char *name, dj_gemm_micro_fn fn, int mr, int nr, int bf16) {
    enum { KC = 37 * 2 };
    dj_rng r;
    dj_rng_seed(&r, 99, 0);
    float *a = dj_alloc64(sizeof(float) * KC * DJ_GEMM_MAX_MR);
    float *b = dj_alloc64(sizeof(float) * KC * DJ_GEMM_MAX_NR);
    uint16_t *ah = dj_alloc64(sizeof(uint16_t) * KC * DJ_GEMM_MAX_MR);
    uint16_t *bh = dj_alloc64(sizeof(uint16_t) * KC * DJ_GEMM_MAX_NR);
    float c[DJ_GEMM_MAX_MR * 40], want[DJ_GEMM_MAX_MR * 40];
    dj_fill(&r, a, KC * mr);
    dj_fill(&r, b, KC * nr);
    if (bf16) { /* round, then lay out as pairs: a[p][i][2], b[p][j][2] */
        for (int k = 0; k < KC; k++) {
            for (int i = 0; i < mr; i++) {
                a[k * mr + i] = dj_bf16_to_f32(dj_f32_to_bf16(a[k * mr + i]));
                ah[(k / 2) * 2 * mr + 2 * i + k % 2] = dj_f32_to_bf16(a[k * mr + i]);
            }
            for (int j = 0; j < nr; j++) {
                b[k * nr + j] = dj_bf16_to_f32(dj_f32_to_bf16(b[k * nr + j]));
                bh[(k / 2) * 2 * nr + 2 * j + k % 2] = dj_f32_to_bf16(b[k * nr + j]);
            }
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        float beta = pass ? 1.5f : 0.0f;
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < 40; j++) {
                c[i * 40 + j] = pass ? (float)(i - j) : NAN;
                double acc = 0.0;
                for (int k = 0; k < KC && j < nr; k++)
                    acc += (double)a[k * mr + i] * b[k * nr + j];
                want[i * 40 + j] = j < nr ? (float)(-0.5 * acc + (pass ? beta * (i - j) : 0.0)) : c[i * 40 + j];
            }
        fn(KC, bf16 ? (const void *)ah : a, bf16 ? (const void *)bh : b, c, 40, -0.5f, beta);
        int bad = 0;
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < 40; j++) {
                float got = c[i * 40 + j], w = want[i * 40 + j];
                int ok = j < nr ? fabsf(got - w) <= 1e-4f * (1.0f + fabsf(w)) : (isnan(w) ? isnan(got) : got == w);
                if (!ok && bad++ == 0)
                    CHECK_MSG(0, "%s beta=%g: c[%d,%d] = %g, want %g", name, beta, i, j, got, w);
            }
    }
    free(a), free(b), free(ah), free(bh);
}

/* each micro-kernel directly: tile shape, alpha, beta, row stride of C
 * (columns past the tile stay untouched) */
static void test_micro_kernels(void) {
    dj_check_micro("scalar", dj_sgemm_micro_scalar, DJ_GEMM_SCALAR_MR, DJ_GEMM_SCALAR_NR, 0);
#if defined(__x86_64__)
    const dj_cpu_features *f = dj_cpu_detect();
    if (f->avx2 && f->fma)
        dj_check_micro("avx2", dj_sgemm_micro_avx2, DJ_GEMM_AVX2_MR, DJ_GEMM_AVX2_NR, 0);
    if (f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl)
        dj_check_micro("avx512", dj_sgemm_micro_avx512, DJ_GEMM_AVX512_MR, DJ_GEMM_AVX512_NR, 0);
    if (f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl)
        dj_check_micro("avx512 8x32", dj_sgemm_micro_avx512_8, DJ_GEMM_AVX512_MR8, DJ_GEMM_AVX512_NR, 0);
    if (f->avx512f && f->avx512_bf16)
        dj_check_micro("avx512 bf16", dj_bgemm_micro_avx512, DJ_GEMM_BF16_MR, DJ_GEMM_BF16_NR, 1);
    if (f->avx512f && f->avx512_bf16)
        dj_check_micro("avx512 bf16 8x32", dj_bgemm_micro_avx512_8, DJ_GEMM_BF16_MR8, DJ_GEMM_BF16_NR, 1);
#endif
}

/* ---- dj_sgemm_packed_b: B given by a packing function ---- */

/* A packer over a stored matrix, op(B) = B or B^T (ld ldb): the test
 * double of a convolution's column gatherer. Transposed B goes through
 * dj_sgemm_pack_rows (its rows are the panels' columns); plain B is
 * written element by element, which also checks the documented layout. */
typedef struct dj_packer {
    const float *B;
    int64_t ldb;
    int tb;
    int calls; /* atomic: how many blocks were packed */
} dj_packer;

static void dj_packer_fn(void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float *dst, float *tmp) {
    dj_packer *p = ctx;
    __atomic_fetch_add(&p->calls, 1, __ATOMIC_RELAXED);
    if (p->tb) {
        /* rows j of B^T are B[j, k0..]: copied to tmp first, as a gatherer would */
        for (int64_t jr = 0; jr < nc; jr += nr) {
            int64_t n = nc - jr < nr ? nc - jr : nr;
            for (int64_t i = 0; i < n; i++)
                memcpy(tmp + i * kc, p->B + (j0 + jr + i) * p->ldb + k0, (size_t)kc * sizeof(float));
            dj_sgemm_pack_rows(tmp, kc, n, kc, nr, dst + jr * kc);
        }
        return;
    }
    int64_t padded = (nc + nr - 1) / nr * nr;
    for (int64_t j = 0; j < padded; j++)
        for (int64_t k = 0; k < kc; k++)
            dst[(j / nr) * kc * nr + k * nr + j % nr] = j < nc ? p->B[(k0 + k) * p->ldb + j0 + j] : 0.0f;
}

static void dj_check_packed(dj_threadpool *pool, dj_rng *r, const char *isa, int ta, int tb, int64_t M, int64_t N,
                            int64_t K, float alpha, float beta) {
    dj_case c;
    dj_case_make(&c, r, ta, tb, M, N, K, 3, alpha, beta);
    memcpy(c.C, c.C0, (size_t)(M * c.ldc + 1) * sizeof(float));
    dj_packer pk = {c.B, c.ldb, tb, 0};
    CHECK_EQ_INT(dj_sgemm_packed_b(pool, ta, M, N, K, alpha, c.A, c.lda, dj_packer_fn, &pk, beta, c.C, c.ldc), DJ_OK);
    CHECK(pk.calls > 0);
    dj_case_check(&c, dj_rtol(K), isa);
    /* the same bits as dj_sgemm on the stored matrix */
    float *again = malloc((size_t)(M * c.ldc + 1) * sizeof(float));
    memcpy(again, c.C0, (size_t)(M * c.ldc + 1) * sizeof(float));
    CHECK_EQ_INT(dj_sgemm(pool, ta, tb, M, N, K, alpha, c.A, c.lda, c.B, c.ldb, beta, again, c.ldc), DJ_OK);
    CHECK_MSG(memcmp(again, c.C, (size_t)(M * c.ldc + 1) * sizeof(float)) == 0,
              "%s packed_b M=%lld N=%lld K=%lld differs from dj_sgemm", isa, (long long)M, (long long)N, (long long)K);
    free(again);
    dj_case_free(&c);
}

/* every ISA, odd sizes, M multiples of 8 (the 8-row AVX-512 tile) and
 * not, K past one KC block, both kinds of packer, both op(A) */
static void test_packed_b_matches_reference(void) {
    dj_rng r;
    dj_rng_seed(&r, 21, 0);
    const int64_t shapes[][3] = {{1, 1, 1},   {8, 33, 17},  {64, 100, 70}, {13, 31, 600},
                                 {136, 65, 9}, {40, 129, 3}, {96, 40, 513}, {7, 1100, 5}};
    for (int s = 0; s < 3; s++) {
        if (!dj_use_isa(dj_isas[s]))
            continue;
        for (int i = 0; i < 8; i++)
            for (int t = 0; t < 4; t++)
                dj_check_packed(NULL, &r, dj_isas[s], t & 1, (t >> 1) & 1, shapes[i][0], shapes[i][1],
                                shapes[i][2], t == 3 ? -0.5f : 1.0f, t >= 2 ? 0.75f : 0.0f);
    }
    unsetenv("DOJO_CPU");
}

/* M = 64 and 40 (8-row tiles) and packed B: the same bits for 1, 2 and 3
 * threads */
static void test_packed_b_and_8row_bit_identical_across_threads(void) {
    dj_threadpool *pools[3] = {NULL, NULL, NULL};
    for (int p = 0; p < 3; p++)
        CHECK_EQ_INT(dj_threadpool_create(p + 1, &pools[p]), DJ_OK);
    dj_rng r;
    dj_rng_seed(&r, 8, 0);
    const int64_t shapes[][3] = {{64, 700, 530}, {40, 333, 1100}, {136, 250, 40}};
    for (int i = 0; i < 3; i++)
        for (int packed = 0; packed < 2; packed++) {
            dj_case c;
            dj_case_make(&c, &r, 0, i == 1, shapes[i][0], shapes[i][1], shapes[i][2], 1, 1.0f, 1.0f);
            size_t nc = (size_t)(c.M * c.ldc + 1);
            float *first = malloc(nc * sizeof(float));
            for (int run = 0; run < 6; run++) {
                dj_threadpool *pool = run == 0 ? NULL : pools[(run - 1) % 3];
                dj_packer pk = {c.B, c.ldb, c.tb, 0};
                memcpy(c.C, c.C0, nc * sizeof(float));
                if (packed)
                    CHECK_EQ_INT(dj_sgemm_packed_b(pool, 0, c.M, c.N, c.K, c.alpha, c.A, c.lda, dj_packer_fn, &pk,
                                                   c.beta, c.C, c.ldc),
                                 DJ_OK);
                else
                    CHECK_EQ_INT(dj_sgemm(pool, 0, c.tb, c.M, c.N, c.K, c.alpha, c.A, c.lda, c.B, c.ldb, c.beta, c.C,
                                          c.ldc),
                                 DJ_OK);
                if (run == 0) {
                    memcpy(first, c.C, nc * sizeof(float));
                    dj_case_check(&c, dj_rtol(c.K), "8-row / packed");
                } else {
                    CHECK_MSG(memcmp(first, c.C, nc * sizeof(float)) == 0, "M=%lld packed=%d: %d threads differ",
                              (long long)c.M, packed, (run - 1) % 3 + 1);
                }
            }
            free(first);
            dj_case_free(&c);
        }
    for (int p = 0; p < 3; p++)
        dj_threadpool_free(pools[p]);
}

static void test_packed_b_errors(void) {
    float a[4] = {1, 2, 3, 4}, c[4] = {0};
    CHECK_EQ_INT(dj_sgemm_packed_b(NULL, 0, 2, 2, 2, 1.0f, a, 2, NULL, NULL, 0.0f, c, 2), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_sgemm_packed_b");
    dj_packer pk = {a, 2, 0, 0};
    CHECK_EQ_INT(dj_sgemm_packed_b(NULL, 0, 2, 2, 2, 1.0f, a, 1, dj_packer_fn, &pk, 0.0f, c, 2), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "lda");
    CHECK_EQ_INT(dj_sgemm_packed_b(NULL, 0, 2, 3, 2, 1.0f, a, 2, dj_packer_fn, &pk, 0.0f, c, 2), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "ldc");
    CHECK_EQ_INT(pk.calls, 0);
}

/* ---- dj_gemm_bf16_packed_b: bf16 B given by a packing function ---- */

/* A bf16 packer over a stored matrix, three ways: element by element from
 * the documented pair layout (B stored K x N), through
 * dj_gemm_bf16_pack_rows (B^T stored N x K, rows copied to tmp first as a
 * gatherer would), and through dj_gemm_bf16_pack_lines (B stored K x N, in
 * groups of 6 lines, an odd group last when kc is odd). */
typedef struct dj_bpacker {
    const uint16_t *B;
    int64_t ldb;
    int mode;
    int calls; /* atomic */
} dj_bpacker;

static void dj_bpacker_fn(void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, uint16_t *dst,
                          void *tmp) {
    dj_bpacker *p = ctx;
    __atomic_fetch_add(&p->calls, 1, __ATOMIC_RELAXED);
    int64_t kp = (kc + 1) / 2, padded = (nc + nr - 1) / nr * nr;
    if (p->mode == 0) {
        for (int64_t j = 0; j < padded; j++)
            for (int64_t k = 0; k < 2 * kp; k++)
                dst[(j / nr) * 2 * kp * nr + (k / 2) * 2 * nr + (j % nr) * 2 + k % 2] =
                    j < nc && k < kc ? p->B[(k0 + k) * p->ldb + j0 + j] : 0;
    } else if (p->mode == 1) {
        uint16_t *t = tmp;
        CHECK((size_t)(nr * kc) * sizeof(uint16_t) <= DJ_GEMM_BF16_PACK_TMP);
        for (int64_t jr = 0; jr < nc; jr += nr) {
            int64_t n = nc - jr < nr ? nc - jr : nr;
            for (int64_t i = 0; i < n; i++)
                memcpy(t + i * kc, p->B + (j0 + jr + i) * p->ldb + k0, (size_t)kc * sizeof(uint16_t));
            dj_gemm_bf16_pack_rows(t, kc, n, kc, nr, dst + jr * 2 * kp);
        }
    } else {
        for (int64_t k = 0; k < kc; k += 6)
            dj_gemm_bf16_pack_lines(p->B + (k0 + k) * p->ldb + j0, p->ldb, k, kc - k < 6 ? kc - k : 6, nc, kc, nr,
                                    dst);
    }
}

/* C by the packer and by dj_gemm_bf16 on the same stored matrix, on the
 * path `isa` ("avx512": native where the CPU has vdpbf16ps); returns 1 when
 * the two agree bit for bit (want gets the stored-matrix result). */
static int dj_bpacked_run(dj_threadpool *pool, const char *isa, int mode, int ta, int64_t M, int64_t N, int64_t K,
                          const uint16_t *A, const uint16_t *B, float beta, float *want, float *got) {
    setenv("DOJO_CPU", isa, 1);
    int tb = mode == 1;
    for (int64_t i = 0; i < M * N; i++)
        want[i] = got[i] = beta == 0.0f ? NAN : (float)(i % 7) - 3.0f;
    dj_bpacker pk = {B, tb ? K : N, mode, 0};
    CHECK_EQ_INT(dj_gemm_bf16(pool, ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, beta, want, N), DJ_OK);
    CHECK_EQ_INT(dj_gemm_bf16_packed_b(pool, ta, M, N, K, 0.5f, A, ta ? M : K, dj_bpacker_fn, &pk, beta, got, N),
                 DJ_OK);
    CHECK(pk.calls > 0 || M == 0 || N == 0 || K == 0);
    unsetenv("DOJO_CPU");
    return memcmp(want, got, (size_t)(M * N) * sizeof(float)) == 0;
}

/* every path, odd shapes, K odd and past one KC block, every packer mode,
 * both op(A), 1 and 2 threads: the stored-matrix bits; and the converted
 * paths the native bits */
static void test_bf16_packed_b_matches_stored(void) {
    static const char *paths[] = {"avx512", "avx512-nobf16", "avx2", "scalar"};
    static const int64_t shapes[][3] = {{1, 1, 1},     {8, 33, 17},   {64, 100, 71}, {13, 31, 600},
                                        {12, 65, 1025}, {40, 129, 3}, {7, 1100, 5},  {64, 70, 2100}};
    dj_threadpool *pool = NULL;
    CHECK_EQ_INT(dj_threadpool_create(2, &pool), DJ_OK);
    dj_rng r;
    dj_rng_seed(&r, 31, 0);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        uint16_t *A = malloc((size_t)(M * K) * 2), *B = malloc((size_t)(K * N) * 2);
        float *want = malloc((size_t)(M * N) * 4), *got = malloc((size_t)(M * N) * 4);
        float *native = malloc((size_t)(M * N) * 4);
        for (int64_t i = 0; i < M * K; i++)
            A[i] = dj_rand_bf16(&r, 0);
        for (int64_t i = 0; i < K * N; i++)
            B[i] = dj_rand_bf16(&r, 0);
        for (int mode = 0; mode < 3; mode++)
            for (int ta = 0; ta < 2; ta++)
                for (int pth = 0; pth < 4; pth++) {
                    float beta = (mode + ta) % 2 ? 0.75f : 0.0f;
                    int same = dj_bpacked_run(pth % 2 ? pool : NULL, paths[pth], mode, ta, M, N, K, A, B, beta, want,
                                              got);
                    CHECK_MSG(same, "%s mode %d ta %d %lldx%lldx%lld: packed B differs from the stored matrix",
                              paths[pth], mode, ta, (long long)M, (long long)N, (long long)K);
                    if (pth == 0)
                        memcpy(native, got, (size_t)(M * N) * 4);
                    else if (dj_cpu_bf16_native())
                        CHECK_MSG(memcmp(native, got, (size_t)(M * N) * 4) == 0,
                                  "%s mode %d ta %d %lldx%lldx%lld: differs from the native path", paths[pth], mode,
                                  ta, (long long)M, (long long)N, (long long)K);
                }
        free(A), free(B), free(want), free(got), free(native);
    }
    dj_threadpool_free(pool);
}

static void test_bf16_packed_b_errors(void) {
    uint16_t a[4] = {0x3f80, 0x3f80, 0x3f80, 0x3f80};
    float c[4] = {0};
    CHECK_EQ_INT(dj_gemm_bf16_packed_b(NULL, 0, 2, 2, 2, 1.0f, a, 2, NULL, NULL, 0.0f, c, 2), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dj_gemm_bf16_packed_b");
    dj_bpacker pk = {a, 2, 0, 0};
    CHECK_EQ_INT(dj_gemm_bf16_packed_b(NULL, 0, 2, 2, 2, 1.0f, a, 1, dj_bpacker_fn, &pk, 0.0f, c, 2), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "lda");
    CHECK_EQ_INT(dj_gemm_bf16_packed_b(NULL, 0, 2, 3, 2, 1.0f, a, 2, dj_bpacker_fn, &pk, 0.0f, c, 2), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "ldc");
    CHECK_EQ_INT(pk.calls, 0);
    /* K == 0: C = beta * C, the packer never called */
    float c2[4] = {1, 2, 3, 4};
    CHECK_EQ_INT(dj_gemm_bf16_packed_b(NULL, 0, 2, 2, 0, 1.0f, a, 1, dj_bpacker_fn, &pk, 0.5f, c2, 2), DJ_OK);
    CHECK(c2[0] == 0.5f && c2[3] == 2.0f);
    CHECK_EQ_INT(pk.calls, 0);
}

int main(void) {
    DJ_RUN(test_micro_kernels);
    DJ_RUN(test_reference_by_hand);
    DJ_RUN(test_sgemm_odd_shapes_every_kernel);
    DJ_RUN(test_sgemm_each_axis_every_size);
    DJ_RUN(test_sgemm_multiple_cache_blocks);
    DJ_RUN(test_sgemm_alpha_beta);
    DJ_RUN(test_sgemm_beta_zero_ignores_nan);
    DJ_RUN(test_sgemm_degenerate_sizes);
    DJ_RUN(test_sgemm_errors);
    DJ_RUN(test_sgemm_bit_identical_across_threads);
    DJ_RUN(test_sgemm_pool_correct);
    DJ_RUN(test_bf16_every_kernel);
    DJ_RUN(test_bf16_bit_identical_across_threads);
    DJ_RUN(test_bf16_converted_equals_native);
    DJ_RUN(test_packed_b_matches_reference);
    DJ_RUN(test_packed_b_and_8row_bit_identical_across_threads);
    DJ_RUN(test_packed_b_errors);
    DJ_RUN(test_bf16_packed_b_matches_stored);
    DJ_RUN(test_bf16_packed_b_errors);
    return dj_test_finish();
}
