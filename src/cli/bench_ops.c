/* bench_ops.c — `dojo bench ops`: forward and backward speed of the spatial
 * operators on the layer shapes of torchvision's r3d_18 and r2plus1d_18
 * (input N x 3 x 8 x 112 x 112).
 *
 * For each distinct conv shape it reports the time per call, GFLOP/s
 * (2*N*Cout*K*To*Ho*Wo per pass, the direct convolution's count also for
 * Winograd, which does fewer; backward = input + weight gradients, twice
 * the forward) and the algorithm that ran (the implicit GEMM, the direct
 * convolution of few input channels, or Winograd with its outputs per tile
 * along T, H and W). A square dj_sgemm measured
 * in the same run is the peer the convs are compared to.
 * Memory-bound operators (batch norm, pools, linear) report GB/s of the
 * tensors read and written. Nothing is asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/dojo.h"

static int64_t dj_bo_threads = 0, dj_bo_batch = 8, dj_bo_frames = 8, dj_bo_size = 112, dj_bo_reps = 1;
static int dj_bo_json, dj_bo_cpu_time, dj_bo_bf16;
static const char *dj_bo_model = "all", *dj_bo_algo = "auto";

static const dj_option dj_bo_options[] = {
    {"threads", DJ_OPT_INT, &dj_bo_threads, "N", "compute threads (0: one per core)", 0, 1024},
    {"batch", DJ_OPT_INT, &dj_bo_batch, "N", "clips per batch (default 8)", 1, 256},
    {"frames", DJ_OPT_INT, &dj_bo_frames, "T", "frames per clip (default 8)", 1, 64},
    {"size", DJ_OPT_INT, &dj_bo_size, "S", "frame height and width (default 112)", 16, 448},
    {"reps", DJ_OPT_INT, &dj_bo_reps, "R", "timed repetitions, the best is kept (default 1)", 1, 100},
    {"model", DJ_OPT_STRING, &dj_bo_model, "NAME", "r3d_18, r2plus1d_18, all (default) or none (no convs)", 0, 0},
    {"bf16", DJ_OPT_FLAG, &dj_bo_bf16, NULL, "also time each conv in bf16 mixed precision (dj_conv3d_*_bf16)", 0, 0},
    {"conv-algo", DJ_OPT_STRING, &dj_bo_algo, "A", "float32 conv3d: auto (default), gemm or winograd", 0, 0},
    {"json", DJ_OPT_FLAG, &dj_bo_json, NULL, "print one JSON object", 0, 0},
    {"cpu-time", DJ_OPT_FLAG, &dj_bo_cpu_time, NULL,
     "time with the process's CPU time, not wall time (other programs then do not count; use --threads 1)", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_bo_spec = {
    "bench ops", "[--threads N] [--batch N] [--frames T] [--size S] [--model NAME] [--bf16] [--json]",
    "Times conv3d forward and backward on every distinct layer shape of r3d_18\n"
    "and r2plus1d_18 (GFLOP/s, share of time outside the GEMM), and batch norm,\n"
    "pooling and the classifier (GB/s), against a square dj_sgemm measured in\n"
    "the same run; with --bf16 also the mixed-precision conv (bf16 operands,\n"
    "float32 sums) and its speed-up over float32 on the same layer. The\n"
    "defaults are torchvision's 8x3x8x112x112 input; smaller\n"
    "--batch/--size give a quick run on a small machine.",
    dj_bo_options, 0, 0,
};

/* One conv layer: input channels, output channels, kernel, stride, padding
 * (per axis), how many times the model runs this shape, at what input
 * resolution divisor (spatial /1, /2, /4, /8 and temporal /1, /2, /4, /8). */
typedef struct dj_bo_conv {
    const char *model, *name;
    int cin, cout, k[3], s[3], p[3], count;
    int tdiv, sdiv; /* input T and H,W are frames/tdiv and size/sdiv */
} dj_bo_conv;

/* r2plus1d midplanes = (in*out*27) / (in*9 + 3*out):
 * 64,64 -> 144; 64,128 -> 230; 128,128 -> 288; 128,256 -> 460; 256,256 -> 576;
 * 256,512 -> 921; 512,512 -> 1152. */
static const dj_bo_conv dj_bo_convs[] = {
    {"r3d_18", "stem 3->64 (3,7,7) s(1,2,2)", 3, 64, {3, 7, 7}, {1, 2, 2}, {1, 3, 3}, 1, 1, 1},
    {"r3d_18", "layer1 64->64 3x3x3", 64, 64, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 4, 1, 2},
    {"r3d_18", "layer2 64->128 3x3x3 s2", 64, 128, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, 1, 1, 2},
    {"r3d_18", "layer2 down 64->128 1x1x1 s2", 64, 128, {1, 1, 1}, {2, 2, 2}, {0, 0, 0}, 1, 1, 2},
    {"r3d_18", "layer2 128->128 3x3x3", 128, 128, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 3, 2, 4},
    {"r3d_18", "layer3 128->256 3x3x3 s2", 128, 256, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, 1, 2, 4},
    {"r3d_18", "layer3 down 128->256 1x1x1 s2", 128, 256, {1, 1, 1}, {2, 2, 2}, {0, 0, 0}, 1, 2, 4},
    {"r3d_18", "layer3 256->256 3x3x3", 256, 256, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 3, 4, 8},
    {"r3d_18", "layer4 256->512 3x3x3 s2", 256, 512, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, 1, 4, 8},
    {"r3d_18", "layer4 down 256->512 1x1x1 s2", 256, 512, {1, 1, 1}, {2, 2, 2}, {0, 0, 0}, 1, 4, 8},
    {"r3d_18", "layer4 512->512 3x3x3", 512, 512, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, 3, 8, 16},
    {"r2plus1d_18", "stem 3->45 (1,7,7) s(1,2,2)", 3, 45, {1, 7, 7}, {1, 2, 2}, {0, 3, 3}, 1, 1, 1},
    {"r2plus1d_18", "stem 45->64 (3,1,1)", 45, 64, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, 1, 1, 2},
    {"r2plus1d_18", "layer1 64->144 (1,3,3)", 64, 144, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 4, 1, 2},
    {"r2plus1d_18", "layer1 144->64 (3,1,1)", 144, 64, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, 4, 1, 2},
    {"r2plus1d_18", "layer2 64->230 (1,3,3) s(1,2,2)", 64, 230, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, 1, 1, 2},
    {"r2plus1d_18", "layer2 230->128 (3,1,1) s(2,1,1)", 230, 128, {3, 1, 1}, {2, 1, 1}, {1, 0, 0}, 1, 1, 4},
    {"r2plus1d_18", "layer2 down 64->128 1x1x1 s2", 64, 128, {1, 1, 1}, {2, 2, 2}, {0, 0, 0}, 1, 1, 2},
    {"r2plus1d_18", "layer2 128->230 (1,3,3)", 128, 230, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 1, 2, 4},
    {"r2plus1d_18", "layer2 230->128 (3,1,1)", 230, 128, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, 1, 2, 4},
    {"r2plus1d_18", "layer2 128->288 (1,3,3)", 128, 288, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 2, 2, 4},
    {"r2plus1d_18", "layer2 288->128 (3,1,1)", 288, 128, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, 2, 2, 4},
    {"r2plus1d_18", "layer3 128->460 (1,3,3) s(1,2,2)", 128, 460, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, 1, 2, 4},
    {"r2plus1d_18", "layer3 460->256 (3,1,1) s(2,1,1)", 460, 256, {3, 1, 1}, {2, 1, 1}, {1, 0, 0}, 1, 2, 8},
    {"r2plus1d_18", "layer3 down 128->256 1x1x1 s2", 128, 256, {1, 1, 1}, {2, 2, 2}, {0, 0, 0}, 1, 2, 4},
    {"r2plus1d_18", "layer3 256->460 (1,3,3)", 256, 460, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 1, 4, 8},
    {"r2plus1d_18", "layer3 460->256 (3,1,1)", 460, 256, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, 1, 4, 8},
    {"r2plus1d_18", "layer3 256->576 (1,3,3)", 256, 576, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 2, 4, 8},
    {"r2plus1d_18", "layer3 576->256 (3,1,1)", 576, 256, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, 2, 4, 8},
    {"r2plus1d_18", "layer4 256->921 (1,3,3) s(1,2,2)", 256, 921, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, 1, 4, 8},
    {"r2plus1d_18", "layer4 921->512 (3,1,1) s(2,1,1)", 921, 512, {3, 1, 1}, {2, 1, 1}, {1, 0, 0}, 1, 4, 16},
    {"r2plus1d_18", "layer4 down 256->512 1x1x1 s2", 256, 512, {1, 1, 1}, {2, 2, 2}, {0, 0, 0}, 1, 4, 8},
    {"r2plus1d_18", "layer4 512->921 (1,3,3)", 512, 921, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 1, 8, 16},
    {"r2plus1d_18", "layer4 921->512 (3,1,1)", 921, 512, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, 1, 8, 16},
    {"r2plus1d_18", "layer4 512->1152 (1,3,3)", 512, 1152, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 2, 8, 16},
    {"r2plus1d_18", "layer4 1152->512 (3,1,1)", 1152, 512, {3, 1, 1}, {1, 1, 1}, {1, 0, 0}, 2, 8, 16},
};

/* Wall time, or with --cpu-time the CPU time of the whole process (all its
 * threads): on a machine shared with other work the time this process
 * actually ran, which with one thread compares kernels fairly. */
static double dj_bo_now(void) {
    struct timespec ts;
    clock_gettime(dj_bo_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static dj_status dj_bo_tensor(int ndim, const int64_t *shape, float value_scale, uint64_t stream, dj_tensor *t) {
    DJ_TRY(dj_tensor_create(DJ_DTYPE_F32, ndim, shape, t));
    float *d = t->data;
    for (int64_t i = 0; i < dj_tensor_numel(t); i++)
        d[i] = value_scale * (2.0f * dj_hash_float(7, stream, (uint64_t)i) - 1.0f);
    return DJ_OK;
}

typedef struct dj_bo_result {
    double fwd_s, bwd_s, gflop;
    char algo[16]; /* "gemm" or "wino 2x4x4" */
    double bf16_fwd_s, bf16_bwd_s; /* --bf16 */
} dj_bo_result;

/* --bf16: best forward and backward times of the mixed-precision conv on
 * the same tensors (w's bf16 copy made here). */
static dj_status dj_bo_time_bf16(dj_threadpool *pool, const dj_conv3d_params *p, dj_tensor *x, dj_tensor *w,
                                 dj_tensor *b, dj_tensor *y, dj_tensor *dx, dj_tensor *dw, dj_tensor *db,
                                 dj_bo_result *r) {
    dj_tensor wb = {0};
    void *scratch = NULL;
    dj_status st = dj_tensor_create(DJ_DTYPE_BF16, 5, w->shape, &wb);
    for (int64_t i = 0; st == DJ_OK && i < dj_tensor_numel(w); i++)
        ((uint16_t *)wb.data)[i] = dj_f32_to_bf16(((const float *)w->data)[i]);
    size_t bytes = dj_conv3d_scratch_bytes_bf16(p, x, w);
    if (st == DJ_OK && bytes && !(scratch = calloc(1, bytes)))
        st = dj_error_set(DJ_ERR_NOMEM, "bench ops", "cannot allocate %zu bytes of bf16 scratch", bytes);
    dj_exec ex = {pool, scratch, bytes};
    r->bf16_fwd_s = r->bf16_bwd_s = 1e30;
    for (int64_t rep = 0; st == DJ_OK && rep < dj_bo_reps; rep++) {
        double t0 = dj_bo_now();
        st = dj_conv3d_forward_bf16(&ex, p, x, w, &wb, b, y);
        double t1 = dj_bo_now();
        if (st == DJ_OK)
            st = dj_conv3d_backward_bf16(&ex, p, x, w, &wb, y, dx, dw, db);
        double t2 = dj_bo_now();
        r->bf16_fwd_s = t1 - t0 < r->bf16_fwd_s ? t1 - t0 : r->bf16_fwd_s;
        r->bf16_bwd_s = t2 - t1 < r->bf16_bwd_s ? t2 - t1 : r->bf16_bwd_s;
    }
    free(scratch);
    dj_tensor_free(&wb);
    return st;
}

static dj_status dj_bo_run_conv(dj_threadpool *pool, const dj_bo_conv *c, dj_bo_result *r) {
    int64_t T = dj_bo_frames / c->tdiv, S = dj_bo_size / c->sdiv;
    if (T < 1)
        T = 1;
    int64_t xs[5] = {dj_bo_batch, c->cin, T, S, S}, ws[5] = {c->cout, c->cin, c->k[0], c->k[1], c->k[2]}, ys[5];
    dj_conv3d_params p = {{c->s[0], c->s[1], c->s[2]}, {c->p[0], c->p[1], c->p[2]}, {1, 1, 1}, 1, dj_conv_algo_from_name(dj_bo_algo)};
    dj_tensor x = {0}, w = {0}, b = {0}, y = {0}, dx = {0}, dw = {0}, db = {0};
    int m[3];
    static const char *const paths[] = {"gemm", "pointwise", "depthwise", "direct", "wino"};
    dj_conv_path path = dj_conv3d_path(&p, xs, ws);
    int64_t taps = dj_conv3d_gemm_taps(&p, xs, ws), kvol = ws[2] * ws[3] * ws[4];
    if (path == DJ_CONV_PATH_WINOGRAD && dj_conv3d_winograd_tiles(&p, xs, ws, m))
        snprintf(r->algo, sizeof r->algo, "wino %dx%dx%d", m[0], m[1], m[2]);
    else if (path == DJ_CONV_PATH_GEMM && taps < kvol) /* dead taps dropped */
        snprintf(r->algo, sizeof r->algo, "gemm %lld/%lld", (long long)taps, (long long)kvol);
    else
        snprintf(r->algo, sizeof r->algo, "%s", path >= 0 ? paths[path] : "?");
    int64_t cout = c->cout;
    void *scratch = NULL;
    dj_status st = dj_conv3d_output_shape(&p, xs, ws, ys);
    if (st == DJ_OK)
        st = dj_bo_tensor(5, xs, 1.0f, 1, &x);
    if (st == DJ_OK)
        st = dj_bo_tensor(5, ws, 0.05f, 2, &w);
    if (st == DJ_OK)
        st = dj_bo_tensor(1, &cout, 0.1f, 3, &b);
    if (st == DJ_OK)
        st = dj_bo_tensor(5, ys, 0.0f, 4, &y);
    if (st == DJ_OK)
        st = dj_bo_tensor(5, xs, 0.0f, 5, &dx);
    if (st == DJ_OK)
        st = dj_bo_tensor(5, ws, 0.0f, 6, &dw);
    if (st == DJ_OK)
        st = dj_bo_tensor(1, &cout, 0.0f, 7, &db);
    size_t bytes = dj_conv3d_scratch_bytes(&p, &x, &w, dj_threadpool_size(pool));
    if (st == DJ_OK && bytes && !(scratch = malloc(bytes)))
        st = dj_error_set(DJ_ERR_NOMEM, "bench ops", "cannot allocate %zu bytes of scratch", bytes);
    if (st == DJ_OK && scratch)
        memset(scratch, 0, bytes);
    dj_exec ex = {pool, scratch, bytes};
    int64_t K = c->cin * c->k[0] * c->k[1] * c->k[2];
    r->gflop = 2.0 * (double)(dj_tensor_numel(&y) * K) * 1e-9;
    r->fwd_s = r->bwd_s = 1e30;
    for (int64_t rep = 0; st == DJ_OK && rep < dj_bo_reps; rep++) {
        double t0 = dj_bo_now();
        st = dj_conv3d_forward(&ex, &p, &x, &w, &b, &y);
        double t1 = dj_bo_now();
        if (st == DJ_OK)
            st = dj_conv3d_backward(&ex, &p, &x, &w, &y, &dx, &dw, &db);
        double t2 = dj_bo_now();
        if (t1 - t0 < r->fwd_s) r->fwd_s = t1 - t0;
        if (t2 - t1 < r->bwd_s) r->bwd_s = t2 - t1;
    }
    free(scratch);
    if (st == DJ_OK && dj_bo_bf16)
        st = dj_bo_time_bf16(pool, &p, &x, &w, &b, &y, &dx, &dw, &db, r);
    dj_tensor *all[] = {&x, &w, &b, &y, &dx, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        dj_tensor_free(all[i]);
    return st;
}

/* Square GEMM peer: GFLOP/s of dj_sgemm at n x n x n. */
static dj_status dj_bo_gemm_peer(dj_threadpool *pool, int64_t n, double *gflops) {
    int64_t s[2] = {n, n};
    dj_tensor a = {0}, b = {0}, c = {0};
    dj_status st = dj_bo_tensor(2, s, 1.0f, 11, &a);
    if (st == DJ_OK)
        st = dj_bo_tensor(2, s, 1.0f, 12, &b);
    if (st == DJ_OK)
        st = dj_bo_tensor(2, s, 0.0f, 13, &c);
    double best = 1e30;
    for (int64_t rep = 0; st == DJ_OK && rep < dj_bo_reps; rep++) {
        double t0 = dj_bo_now();
        st = dj_sgemm(pool, DJ_NO_TRANS, DJ_NO_TRANS, n, n, n, 1.0f, a.data, n, b.data, n, 0.0f, c.data, n);
        double t = dj_bo_now() - t0;
        if (t < best)
            best = t;
    }
    *gflops = 2.0 * (double)n * (double)n * (double)n * 1e-9 / best;
    dj_tensor_free(&a), dj_tensor_free(&b), dj_tensor_free(&c);
    return st;
}

/* A nominal FMA peak in GFLOP/s: threads x clock (the first "cpu MHz" of
 * /proc/cpuinfo) x 2 FMA units x 2 FLOP x the float lanes of the widest
 * vector ISA found. 0 when the clock is unknown. Only a yardstick for the
 * "70% of peak" target: turbo, AVX frequency drops and core types vary. */
static double dj_bo_nominal_peak(int threads) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    double mhz = 0.0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "cpu MHz", 7) == 0) {
            const char *colon = strchr(line, ':');
            mhz = colon ? atof(colon + 1) : 0.0;
            break;
        }
    if (f)
        fclose(f);
    const dj_cpu_features *c = dj_cpu_detect();
    int lanes = c->avx512f ? 16 : (c->avx2 && c->fma) ? 8 : 4;
    return (double)threads * mhz * 1e-3 * 2.0 * 2.0 * lanes;
}

/* Memory-bound ops on r3d_18 shapes: batch norm after the stem, the global
 * average pool and the classifier, and a (1,3,3) s(1,2,2) max pool. */
typedef struct dj_bo_mem {
    const char *name;
    double fwd_s, bwd_s, bytes_fwd, bytes_bwd;
} dj_bo_mem;

static double dj_bo_min(double a, double b) { return a < b ? a : b; }

static dj_status dj_bo_run_memops(dj_threadpool *pool, dj_bo_mem out[4]) {
    int64_t S = dj_bo_size / 2, T = dj_bo_frames, N = dj_bo_batch, C = 64;
    int64_t xs[5] = {N, C, T, S, S}, cs = C, ps[5], gs[5] = {N, 512, 1, 1, 1};
    int64_t g_in[5] = {N, 512, T / 8 > 0 ? T / 8 : 1, dj_bo_size / 16, dj_bo_size / 16};
    int64_t ls[2] = {N, 512}, lw[2] = {400, 512}, lo[2] = {N, 400}, lb = 400;
    dj_pool3d_params mp = {{1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0}, 0, 0};
    dj_tensor t[20];
    memset(t, 0, sizeof t);
    dj_status st = dj_pool3d_output_shape(&mp, xs, ps);
    /* 0 x, 1 y, 2 dy, 3 dx, 4 w, 5 b, 6 mean, 7 invstd, 8 dw, 9 db, 10 pooled, 11 idx, 12 gx, 13 gy,
     * 14 lx, 15 lw, 16 ly, 17 lb, 18 ldx, 19 ldw */
    if (st == DJ_OK) st = dj_bo_tensor(5, xs, 1.0f, 21, &t[0]);
    if (st == DJ_OK) st = dj_bo_tensor(5, xs, 0.0f, 22, &t[1]);
    if (st == DJ_OK) st = dj_bo_tensor(5, xs, 1.0f, 23, &t[2]);
    if (st == DJ_OK) st = dj_bo_tensor(5, xs, 0.0f, 24, &t[3]);
    for (int i = 4; st == DJ_OK && i < 10; i++)
        st = dj_bo_tensor(1, &cs, 1.0f, 20 + (uint64_t)i, &t[i]);
    if (st == DJ_OK) st = dj_bo_tensor(5, ps, 0.0f, 30, &t[10]);
    if (st == DJ_OK) st = dj_tensor_create(DJ_DTYPE_I64, 5, ps, &t[11]);
    if (st == DJ_OK) st = dj_bo_tensor(5, g_in, 1.0f, 31, &t[12]);
    if (st == DJ_OK) st = dj_bo_tensor(5, gs, 0.0f, 32, &t[13]);
    if (st == DJ_OK) st = dj_bo_tensor(2, ls, 1.0f, 33, &t[14]);
    if (st == DJ_OK) st = dj_bo_tensor(2, lw, 0.05f, 34, &t[15]);
    if (st == DJ_OK) st = dj_bo_tensor(2, lo, 0.0f, 35, &t[16]);
    if (st == DJ_OK) st = dj_bo_tensor(1, &lb, 0.0f, 36, &t[17]);
    if (st == DJ_OK) st = dj_bo_tensor(2, ls, 0.0f, 37, &t[18]);
    if (st == DJ_OK) st = dj_bo_tensor(2, lw, 0.0f, 38, &t[19]);
    dj_exec ex = {pool, NULL, 0};
    dj_batchnorm_params bp = dj_batchnorm_defaults();
    double xb = (double)dj_tensor_nbytes(&t[0]), pb = (double)dj_tensor_nbytes(&t[10]);
    double gb = (double)dj_tensor_nbytes(&t[12]), lwb = (double)dj_tensor_nbytes(&t[15]);
    out[0] = (dj_bo_mem){"batchnorm3d train 64ch (after stem)", 1e30, 1e30, 2 * xb, 5 * xb};
    out[1] = (dj_bo_mem){"maxpool3d (1,3,3) s(1,2,2) 64ch", 1e30, 1e30, xb + 3 * pb, 2 * xb + 2 * pb};
    out[2] = (dj_bo_mem){"adaptive avgpool3d global 512ch", 1e30, 1e30, gb, 2 * gb};
    out[3] = (dj_bo_mem){"linear 512->400 (fc)", 1e30, 1e30, lwb, 2 * lwb};
    for (int64_t rep = 0; st == DJ_OK && rep < dj_bo_reps; rep++) {
        double a = dj_bo_now();
        st = dj_batchnorm_forward(&ex, &bp, &t[0], &t[4], &t[5], NULL, NULL, &t[1], &t[6], &t[7]);
        double b = dj_bo_now();
        if (st == DJ_OK) st = dj_batchnorm_backward(&ex, &bp, &t[0], &t[4], &t[6], &t[7], &t[2], &t[3], &t[8], &t[9]);
        double c = dj_bo_now();
        if (st == DJ_OK) st = dj_maxpool3d_forward(&ex, &mp, &t[0], &t[10], &t[11]);
        double d = dj_bo_now();
        if (st == DJ_OK) st = dj_maxpool3d_backward(&ex, &mp, &t[11], &t[10], &t[3]);
        double e = dj_bo_now();
        if (st == DJ_OK) st = dj_adaptive_avgpool3d_forward(&ex, &t[12], &t[13]);
        double f = dj_bo_now();
        if (st == DJ_OK) st = dj_adaptive_avgpool3d_backward(&ex, &t[13], &t[12]);
        double g = dj_bo_now();
        if (st == DJ_OK) st = dj_linear_forward(&ex, &t[14], &t[15], &t[17], &t[16]);
        double h = dj_bo_now();
        if (st == DJ_OK) st = dj_linear_backward(&ex, &t[14], &t[15], &t[16], &t[18], &t[19], &t[17]);
        double i = dj_bo_now();
        double tf[4] = {b - a, d - c, f - e, h - g}, tb[4] = {c - b, e - d, g - f, i - h};
        for (int k = 0; k < 4; k++)
            out[k].fwd_s = dj_bo_min(out[k].fwd_s, tf[k]), out[k].bwd_s = dj_bo_min(out[k].bwd_s, tb[k]);
    }
    for (int i = 0; i < 20; i++)
        dj_tensor_free(&t[i]);
    return st;
}

int dj_bench_ops(int argc, char **argv) {
    int np = 0;
    int rc = dj_cli_parse(&dj_bo_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    if (strcmp(dj_bo_model, "all") && strcmp(dj_bo_model, "r3d_18") && strcmp(dj_bo_model, "r2plus1d_18") &&
        strcmp(dj_bo_model, "none"))
        return dj_cli_usage_error("bench ops", "--model must be r3d_18, r2plus1d_18, all or none, not '%s'",
                                  dj_bo_model);
    if (dj_conv_algo_from_name(dj_bo_algo) < 0)
        return dj_cli_usage_error("bench ops", "--conv-algo must be auto, gemm or winograd, not '%s'", dj_bo_algo);
    dj_threadpool *pool = NULL;
    if (dj_threadpool_create((int)dj_bo_threads, &pool) != DJ_OK)
        return dj_cli_fail();
    double peer = 0.0;
    if (dj_bo_gemm_peer(pool, 512, &peer) != DJ_OK) {
        dj_threadpool_free(pool);
        return dj_cli_fail();
    }
    cJSON *root = cJSON_CreateObject(), *convs = cJSON_AddArrayToObject(root, "conv3d");
    cJSON_AddNumberToObject(root, "threads", dj_threadpool_size(pool));
    char shape[96];
    snprintf(shape, sizeof shape, "%lldx3x%lldx%lldx%lld", (long long)dj_bo_batch, (long long)dj_bo_frames,
             (long long)dj_bo_size, (long long)dj_bo_size);
    cJSON_AddStringToObject(root, "input", shape);
    cJSON_AddStringToObject(root, "conv_algo", dj_bo_algo);
    cJSON_AddNumberToObject(root, "sgemm_512_gflops", peer);
    const double peak = dj_bo_nominal_peak(dj_threadpool_size(pool));
    cJSON_AddNumberToObject(root, "nominal_fma_peak_gflops", peak);
    if (!dj_bo_json) {
        printf("dojo bench ops: input %s, %d threads, %s time, dj_sgemm 512^3 peer %.2f GFLOP/s, nominal FMA peak %.0f "
               "GFLOP/s\n",
               shape, dj_threadpool_size(pool), dj_bo_cpu_time ? "CPU" : "wall", peer, peak);
        printf("%-12s %-36s %3s %9s %9s %8s %8s %-11s %6s", "model", "conv3d layer", "x", "fwd ms", "bwd ms",
               "fwd GF/s", "bwd GF/s", "algorithm", "/peer");
        if (dj_bo_bf16)
            printf(" %8s %8s %8s %8s %6s", "bf16 fwd", "bf16 bwd", "fwd GF/s", "bwd GF/s", "x f32");
        printf("\n");
    }
    double tot_flop = 0.0, tot_s = 0.0, tot_bf16_s = 0.0;
    dj_status st = DJ_OK;
    for (size_t i = 0; st == DJ_OK && i < sizeof dj_bo_convs / sizeof dj_bo_convs[0]; i++) {
        const dj_bo_conv *c = &dj_bo_convs[i];
        if (strcmp(dj_bo_model, "all") && strcmp(dj_bo_model, c->model))
            continue;
        dj_bo_result r = {0};
        st = dj_bo_run_conv(pool, c, &r);
        if (st != DJ_OK)
            break;
        double fg = r.gflop / r.fwd_s, bg = 2.0 * r.gflop / r.bwd_s;
        tot_flop += 3.0 * r.gflop * c->count;
        tot_s += (r.fwd_s + r.bwd_s) * c->count;
        tot_bf16_s += dj_bo_bf16 ? (r.bf16_fwd_s + r.bf16_bwd_s) * c->count : 0.0;
        if (!dj_bo_json) {
            printf("%-12s %-36s %3d %9.2f %9.2f %8.2f %8.2f %-11s %6.2f", c->model, c->name, c->count, 1e3 * r.fwd_s,
                   1e3 * r.bwd_s, fg, bg, r.algo, (3.0 * r.gflop / (r.fwd_s + r.bwd_s)) / peer);
            if (dj_bo_bf16)
                printf(" %8.2f %8.2f %8.2f %8.2f %5.2fx", 1e3 * r.bf16_fwd_s, 1e3 * r.bf16_bwd_s,
                       r.gflop / r.bf16_fwd_s, 2.0 * r.gflop / r.bf16_bwd_s,
                       (r.fwd_s + r.bwd_s) / (r.bf16_fwd_s + r.bf16_bwd_s));
            printf("\n");
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", c->model);
        cJSON_AddStringToObject(o, "layer", c->name);
        cJSON_AddNumberToObject(o, "count", c->count);
        cJSON_AddNumberToObject(o, "gflop_forward", r.gflop);
        cJSON_AddNumberToObject(o, "forward_ms", 1e3 * r.fwd_s);
        cJSON_AddNumberToObject(o, "backward_ms", 1e3 * r.bwd_s);
        cJSON_AddNumberToObject(o, "forward_gflops", fg);
        cJSON_AddNumberToObject(o, "backward_gflops", bg);
        cJSON_AddStringToObject(o, "algo", r.algo);
        if (dj_bo_bf16) {
            cJSON_AddNumberToObject(o, "bf16_forward_ms", 1e3 * r.bf16_fwd_s);
            cJSON_AddNumberToObject(o, "bf16_backward_ms", 1e3 * r.bf16_bwd_s);
            cJSON_AddNumberToObject(o, "bf16_speedup", (r.fwd_s + r.bwd_s) / (r.bf16_fwd_s + r.bf16_bwd_s));
        }
        cJSON_AddItemToArray(convs, o);
    }
    dj_bo_mem mem[4];
    if (st == DJ_OK)
        st = dj_bo_run_memops(pool, mem);
    if (st != DJ_OK) {
        cJSON_Delete(root);
        dj_threadpool_free(pool);
        return dj_cli_fail();
    }
    if (tot_bf16_s > 0) {
        cJSON_AddNumberToObject(root, "conv3d_bf16_fwd_bwd_gflops", tot_flop / tot_bf16_s);
        cJSON_AddNumberToObject(root, "conv3d_bf16_speedup", tot_s / tot_bf16_s);
        if (!dj_bo_json)
            printf("conv3d bf16 fwd+bwd over all layers (weighted by count): %.2f GFLOP/s, %.2fx the float32 convs\n",
                   tot_flop / tot_bf16_s, tot_s / tot_bf16_s);
    }
    if (tot_s > 0) {
        cJSON_AddNumberToObject(root, "conv3d_fwd_bwd_gflops", tot_flop / tot_s);
        cJSON_AddNumberToObject(root, "conv3d_fwd_bwd_over_peer", tot_flop / tot_s / peer);
        if (peak > 0)
            cJSON_AddNumberToObject(root, "conv3d_fwd_bwd_share_of_peak", tot_flop / tot_s / peak);
    }
    cJSON *ms = cJSON_AddArrayToObject(root, "memory_bound");
    if (!dj_bo_json && tot_s > 0)
        printf("conv3d fwd+bwd over all layers (weighted by count): %.2f GFLOP/s = %.2f x the sgemm peer"
               " = %.1f%% of the nominal FMA peak\n",
               tot_flop / tot_s, tot_flop / tot_s / peer, peak > 0 ? 100.0 * tot_flop / tot_s / peak : 0.0);
    if (!dj_bo_json) {
        printf("%-40s %9s %9s %9s %9s\n", "memory-bound op", "fwd ms", "bwd ms", "fwd GB/s", "bwd GB/s");
    }
    for (int k = 0; k < 4; k++) {
        double fgb = mem[k].bytes_fwd / mem[k].fwd_s * 1e-9, bgb = mem[k].bytes_bwd / mem[k].bwd_s * 1e-9;
        if (!dj_bo_json)
            printf("%-40s %9.3f %9.3f %9.2f %9.2f\n", mem[k].name, 1e3 * mem[k].fwd_s, 1e3 * mem[k].bwd_s, fgb, bgb);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "op", mem[k].name);
        cJSON_AddNumberToObject(o, "forward_ms", 1e3 * mem[k].fwd_s);
        cJSON_AddNumberToObject(o, "backward_ms", 1e3 * mem[k].bwd_s);
        cJSON_AddNumberToObject(o, "forward_gbs", fgb);
        cJSON_AddNumberToObject(o, "backward_gbs", bgb);
        cJSON_AddItemToArray(ms, o);
    }
    if (dj_bo_json) {
        char *text = cJSON_PrintUnformatted(root);
        if (text)
            printf("%s\n", text);
        free(text);
    }
    cJSON_Delete(root);
    dj_threadpool_free(pool);
    return DJ_EXIT_OK;
}
