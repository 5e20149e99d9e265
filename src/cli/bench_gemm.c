/* bench_gemm.c — `dojo bench gemm`: GEMM throughput against the machine's
 * fused-multiply-add peak measured in the same run.
 *
 * GFLOP/s = 2*M*N*K / time, the median of --repeat timed runs after one
 * warm-up. The peak is a tight loop of independent FMAs on registers with
 * the ISA the GEMM uses, on the same number of threads (best of 3); a short
 * peak run also precedes every timed run, for a "paired" fraction that
 * stays meaningful when other work shares the cores. With --bf16 the
 * bfloat16 GEMM is timed too, and its speed-up over float32. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "kernels/cpu/peak.h"
#include "dojo/cpu.h"
#include "dojo/gemm.h"
#include "dojo/rng.h"
#include "dojo/tensor.h"
#include "kernels/cpu/gemm_kernels.h"

static int64_t dj_bg_m, dj_bg_n, dj_bg_k, dj_bg_threads, dj_bg_repeat;
static int dj_bg_bf16, dj_bg_json;

static const dj_option dj_bg_options[] = {
    {"m", DJ_OPT_INT, &dj_bg_m, "M", "rows of C (default 2048)", 1, 65536},
    {"n", DJ_OPT_INT, &dj_bg_n, "N", "columns of C (default 2048)", 1, 65536},
    {"k", DJ_OPT_INT, &dj_bg_k, "K", "inner dimension (default 2048)", 1, 65536},
    {"threads", DJ_OPT_INT, &dj_bg_threads, "T", "compute threads (0: one per core)", 0, 1024},
    {"repeat", DJ_OPT_INT, &dj_bg_repeat, "R", "timed runs; the median is reported (default 5)", 1, 1000},
    {"bf16", DJ_OPT_FLAG, &dj_bg_bf16, NULL, "also time the bfloat16 GEMM and report it", 0, 0},
    {"json", DJ_OPT_FLAG, &dj_bg_json, NULL, "print one JSON object", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_bg_spec = {
    "bench gemm", "[--m M] [--n N] [--k K] [--threads T] [--bf16] [--repeat R] [--json]",
    "Times C = A.B (row-major float32, or bfloat16 inputs with --bf16) and the\n"
    "fused-multiply-add peak of this machine on the same threads and ISA, and\n"
    "prints GFLOP/s and the fraction of the peak reached.",
    dj_bg_options, 0, 0,
};

static double dj_bg_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct dj_bg_mats {
    int64_t m, n, k;
    float *a, *b, *c;
    uint16_t *ab, *bb;
} dj_bg_mats;

/* Median GFLOP/s of `repeat` runs after one warm-up; *best gets the best.
 * A short FMA peak run precedes each timed run, and *paired gets the median
 * of the ratios of each run to its own peak: on a shared machine the two
 * then see about the same load. */
static int dj_bg_time(dj_threadpool *pool, const dj_bg_mats *x, int bf16, int64_t repeat, dj_cpu_isa isa,
                      double *median, double *best, double *paired) {
    double *times = malloc((size_t)repeat * sizeof *times), *ratios = malloc((size_t)repeat * sizeof *ratios);
    if (!times || !ratios) {
        free(times);
        free(ratios);
        return -1;
    }
    double flops = 2.0 * (double)x->m * (double)x->n * (double)x->k;
    int bad = 0;
    for (int64_t r = -1; r < repeat && !bad; r++) {
        double peak = dj_cpu_peak_gflops_n(pool, isa, 0, 1, 2000000);
        double t0 = dj_bg_now();
        dj_status s = bf16 ? dj_gemm_bf16(pool, DJ_NO_TRANS, DJ_NO_TRANS, x->m, x->n, x->k, 1.0f, x->ab, x->k,
                                          x->bb, x->n, 0.0f, x->c, x->n)
                           : dj_sgemm(pool, DJ_NO_TRANS, DJ_NO_TRANS, x->m, x->n, x->k, 1.0f, x->a, x->k, x->b,
                                      x->n, 0.0f, x->c, x->n);
        double dt = dj_bg_now() - t0;
        bad = s != DJ_OK;
        if (r >= 0) {
            times[r] = dt;
            ratios[r] = flops / dt * 1e-9 / peak;
        }
    }
    if (!bad) {
        qsort(times, (size_t)repeat, sizeof *times, dj_bench_cmp_double);
        qsort(ratios, (size_t)repeat, sizeof *ratios, dj_bench_cmp_double);
        *median = flops / times[repeat / 2] * 1e-9;
        *best = flops / times[0] * 1e-9;
        *paired = ratios[repeat / 2];
    }
    free(times);
    free(ratios);
    return bad ? -1 : 0;
}

static int dj_bg_alloc(dj_bg_mats *x) {
    size_t na = (size_t)(x->m * x->k), nb = (size_t)(x->k * x->n), nc = (size_t)(x->m * x->n);
    x->a = malloc(na * sizeof(float));
    x->b = malloc(nb * sizeof(float));
    x->c = malloc(nc * sizeof(float));
    x->ab = malloc(na * sizeof(uint16_t));
    x->bb = malloc(nb * sizeof(uint16_t));
    if (!x->a || !x->b || !x->c || !x->ab || !x->bb)
        return -1;
    dj_rng r;
    dj_rng_seed(&r, 1, 0);
    for (size_t i = 0; i < na; i++) {
        x->a[i] = dj_rng_float(&r) - 0.5f;
        x->ab[i] = dj_f32_to_bf16(x->a[i]);
    }
    for (size_t i = 0; i < nb; i++) {
        x->b[i] = dj_rng_float(&r) - 0.5f;
        x->bb[i] = dj_f32_to_bf16(x->b[i]);
    }
    return 0;
}

static void dj_bg_free(dj_bg_mats *x) {
    free(x->a);
    free(x->b);
    free(x->c);
    free(x->ab);
    free(x->bb);
}

typedef struct dj_bg_result {
    double f32, f32_best, bf16, bf16_best, peak, bf16_peak;
    double f32_paired, bf16_paired; /* median of per-run ratios to a peak run just before */
    double loadavg; /* 1-minute load average before the run, -1 unknown */
} dj_bg_result;

static void dj_bg_print(const dj_bg_result *r, const char *isa, int threads, int bf16_native) {
    double g = dj_bg_bf16 ? r->bf16 : r->f32;
    if (dj_bg_json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dtype", dj_bg_bf16 ? "bf16" : "float32");
        cJSON_AddNumberToObject(o, "gflops", g);
        cJSON_AddNumberToObject(o, "peak_gflops", r->peak);
        cJSON_AddNumberToObject(o, "fraction", g / r->peak);
        cJSON_AddNumberToObject(o, "fraction_best", (dj_bg_bf16 ? r->bf16_best : r->f32_best) / r->peak);
        cJSON_AddNumberToObject(o, "fraction_paired", dj_bg_bf16 ? r->bf16_paired : r->f32_paired);
        cJSON_AddNumberToObject(o, "f32_fraction_paired", r->f32_paired);
        cJSON_AddStringToObject(o, "isa", isa);
        cJSON_AddNumberToObject(o, "threads", threads);
        cJSON_AddNumberToObject(o, "m", (double)dj_bg_m);
        cJSON_AddNumberToObject(o, "n", (double)dj_bg_n);
        cJSON_AddNumberToObject(o, "k", (double)dj_bg_k);
        cJSON_AddNumberToObject(o, "repeat", (double)dj_bg_repeat);
        cJSON_AddNumberToObject(o, "loadavg", r->loadavg);
        cJSON_AddNumberToObject(o, "f32_gflops", r->f32);
        cJSON_AddNumberToObject(o, "f32_best_gflops", r->f32_best);
        if (dj_bg_bf16) {
            cJSON_AddBoolToObject(o, "bf16_native", bf16_native);
            cJSON_AddNumberToObject(o, "bf16_gflops", r->bf16);
            cJSON_AddNumberToObject(o, "bf16_best_gflops", r->bf16_best);
            cJSON_AddNumberToObject(o, "bf16_vs_f32", r->bf16 / r->f32);
            if (bf16_native)
                cJSON_AddNumberToObject(o, "bf16_peak_gflops", r->bf16_peak);
        }
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (text)
            printf("%s\n", text);
        free(text);
        return;
    }
    printf("gemm %lldx%lldx%lld, %s kernels, %d thread%s, median of %lld\n", (long long)dj_bg_m, (long long)dj_bg_n,
           (long long)dj_bg_k, isa, threads, threads == 1 ? "" : "s", (long long)dj_bg_repeat);
    if (r->loadavg >= 0)
        printf("  load average %8.2f before the run (other work lowers the figures)\n", r->loadavg);
    printf("  fma peak     %8.1f GFLOP/s\n", r->peak);
    printf("  float32      %8.1f GFLOP/s (best %.1f)  %5.1f%% of peak (best %.1f%%, paired %.1f%%)\n", r->f32,
           r->f32_best, 100.0 * r->f32 / r->peak, 100.0 * r->f32_best / r->peak, 100.0 * r->f32_paired);
    if (dj_bg_bf16) {
        printf("  %-12s %8.1f GFLOP/s (best %.1f)  %.2fx float32, %5.1f%% of fma peak\n",
               bf16_native ? "bf16 dpbf16" : "bf16 cvt", r->bf16, r->bf16_best, r->bf16 / r->f32, 100.0 * r->bf16 / r->peak);
        if (bf16_native)
            printf("  dpbf16 peak  %8.1f GFLOP/s\n", r->bf16_peak);
    }
}

int dj_bench_gemm(int argc, char **argv) {
    int np = 0;
    dj_bg_m = dj_bg_n = dj_bg_k = 2048;
    dj_bg_threads = 0;
    dj_bg_repeat = 5;
    dj_bg_bf16 = dj_bg_json = 0;
    int rc = dj_cli_parse(&dj_bg_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    dj_threadpool *pool = NULL;
    if (dj_threadpool_create((int)dj_bg_threads, &pool) != DJ_OK)
        return dj_cli_fail();
    dj_bg_mats x = {dj_bg_m, dj_bg_n, dj_bg_k, NULL, NULL, NULL, NULL, NULL};
    if (dj_bg_alloc(&x) != 0) {
        dj_bg_free(&x);
        dj_threadpool_free(pool);
        fprintf(stderr, "dojo: error: cannot allocate the matrices (bench gemm --m --n --k)\n");
        return DJ_EXIT_FAIL;
    }
    dj_cpu_isa isa = dj_cpu_best_isa();
    int bf16_native = isa == DJ_CPU_ISA_AVX512 && dj_cpu_bf16_native();
    dj_bg_result r = {0};
    r.loadavg = dj_bench_loadavg();
    r.peak = dj_cpu_peak_gflops_n(pool, isa, 0, 3, 10000000);
    if (dj_bg_bf16 && bf16_native)
        r.bf16_peak = dj_cpu_peak_gflops_n(pool, isa, 1, 3, 10000000);
    int bad = dj_bg_time(pool, &x, 0, dj_bg_repeat, isa, &r.f32, &r.f32_best, &r.f32_paired) != 0;
    if (!bad && dj_bg_bf16)
        bad = dj_bg_time(pool, &x, 1, dj_bg_repeat, isa, &r.bf16, &r.bf16_best, &r.bf16_paired) != 0;
    if (!bad)
        dj_bg_print(&r, dj_cpu_isa_name(isa), dj_threadpool_size(pool), bf16_native);
    dj_bg_free(&x);
    dj_threadpool_free(pool);
    return bad ? dj_cli_fail() : DJ_EXIT_OK;
}
