/* conv3d_winograd.c — the Winograd convolution's plan, scratch and drivers
 * (conv3d_winograd.h): which convolutions take it and with which tiles, how
 * the scratch is laid out, and how the passes are split over threads. The
 * arithmetic is in conv3d_winograd_avx512.c. */
#include <stdlib.h>
#include <string.h>

#include "dojo/cpu.h"
#include "nn/conv3d_winograd.h"

/* Budgets (floats). U (the transformed weights, or their gradient dU) is
 * shared by the threads; a convolution whose U would exceed DJ_WINO_U_MAX
 * with the smallest tiles keeps the implicit GEMM for all three passes. Each thread's block of
 * tiles (V and M) is sized near DJ_WINO_BLOCK; the weight gradient's block
 * (shared by the threads) near DJ_WINO_WBLOCK. */
enum {
    DJ_WINO_U_MAX = 5 << 20,
    DJ_WINO_BLOCK = 512 << 10,
    DJ_WINO_WBLOCK = 1 << 20,
};

static int64_t dj_rup(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
static int64_t dj_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* One axis of a stride-1, dilation-1 convolution with k taps and padding
 * pad: 0 when it cannot be tiled. m is chosen later (dj_wino_set_m). */
static int dj_wino_axis_init(dj_wino_axis *ax, int64_t in, int64_t k, int64_t pad, int64_t out) {
    memset(ax, 0, sizeof *ax);
    ax->in = in, ax->out = out;
    if (k == 1) {
        if (pad != 0)
            return 0;
        ax->r = ax->m = ax->a = 1;
        ax->tiles = out;
        return 1;
    }
    if (k != 3)
        return 0;
    /* the taps that meet data for some output: tap j for output o reads o - pad + j */
    int lo = -1, hi = -1;
    for (int j = 0; j < 3; j++)
        if (j - pad < in && out - 1 - pad + j >= 0) {
            if (lo < 0)
                lo = j;
            hi = j;
        }
    if (lo < 0)
        return 0;
    if (lo == hi) { /* one tap only (T = 1 with padding 1): a 1-tap axis */
        if (out != in || lo != pad)
            return 0;
        ax->r = ax->m = ax->a = 1;
        ax->k0 = lo;
        ax->tiles = out;
        return 1;
    }
    if (lo != 0 || hi != 2)
        return 0;
    ax->r = 3;
    ax->off = -pad;
    return 1;
}

static void dj_wino_set_m(dj_wino_axis *ax, int m) {
    if (ax->r != 3)
        return;
    ax->m = m, ax->a = m + 2;
    ax->tiles = dj_cdiv(ax->out, m);
}

/* 3-tap axes: m = 4 where it needs fewer products than m = 2 (always but
 * for outputs of 1 or 2), capped at cap. */
static void dj_wino_choose_m(dj_wino_axis ax[3], int cap) {
    for (int i = 0; i < 3; i++) {
        if (ax[i].r != 3)
            continue;
        int64_t c4 = dj_cdiv(ax[i].out, 4) * 6, c2 = dj_cdiv(ax[i].out, 2) * 4;
        dj_wino_set_m(&ax[i], cap >= 4 && c4 < c2 ? 4 : 2);
    }
    /* F(4,3) on all three axes: float32 errors grow to ~5e-6 of the
     * outputs' rms (1e-4 at worst) against ~2e-6 with F(2,3) on T (and
     * 3e-7 for the direct sum), measured on 64 -> 64 channels; keep two */
    if (ax[0].m == 4 && ax[1].m == 4 && ax[2].m == 4)
        dj_wino_set_m(&ax[0], 2);
}

static void dj_wino_finish(dj_wino_conv *c, int64_t N, int64_t Cin, int64_t Cout) {
    c->N = N, c->Cin = Cin, c->Cout = Cout;
    c->Cin_p = dj_rup(Cin, DJ_WINO_VEC), c->Cout_p = dj_rup(Cout, DJ_WINO_VEC);
    c->xi = (int64_t)c->ax[0].a * c->ax[1].a * c->ax[2].a;
    c->nw = c->ax[2].tiles;
    c->rows = N * c->ax[0].tiles * c->ax[1].tiles;
    c->wp = c->nw * c->ax[2].m + c->ax[2].a - c->ax[2].m;
    int64_t per_tile = c->xi * (c->Cin_p + c->Cout_p);
    int64_t rpb = DJ_WINO_BLOCK / (per_tile * c->nw);
    c->rows_per_block = rpb < 1 ? 1 : rpb;
}

/* products of the direct convolution over those of the tiled one */
static double dj_wino_gain(const dj_wino_conv *c, const dj_conv_geom *g) {
    double direct = (double)g->To * g->Ho * g->Wo * g->kvol;
    double tiled = (double)c->ax[0].tiles * c->ax[0].a * c->ax[1].tiles * c->ax[1].a * c->ax[2].tiles * c->ax[2].a;
    return direct / tiled;
}

int dj_wino_plan(const dj_conv_geom *g, dj_wino_conv *fw, dj_wino_conv *dg) {
    int forced = g->algo == DJ_CONV_WINOGRAD; /* (DOJO_CONV=gemm turned AUTO into GEMM in the geometry) */
    if (g->algo == DJ_CONV_GEMM || dj_cpu_best_isa() < DJ_CPU_ISA_AVX512)
        return 0;
    if (g->G != 1 || g->st != 1 || g->sh != 1 || g->sw != 1 || g->dt != 1 || g->dh != 1 || g->dw != 1 || g->N < 1)
        return 0;
    if (!forced && (g->Cin < 16 || g->Cout < 16))
        return 0;
    dj_wino_conv f, d;
    memset(&f, 0, sizeof f);
    memset(&d, 0, sizeof d);
    int64_t k[3] = {g->kT, g->kH, g->kW}, pad[3] = {g->pt, g->ph, g->pw};
    int64_t in[3] = {g->T, g->H, g->W}, out[3] = {g->To, g->Ho, g->Wo};
    for (int a = 0; a < 3; a++) {
        if (!dj_wino_axis_init(&f.ax[a], in[a], k[a], pad[a], out[a]))
            return 0;
        /* the input gradient: dy (out) -> dx (in), padding 2 - p on 3-tap axes */
        int64_t pd = k[a] == 3 ? 2 - pad[a] : 0;
        if (pd < 0 || !dj_wino_axis_init(&d.ax[a], out[a], k[a], pd, in[a]))
            return 0;
        /* a trimmed axis stays trimmed (to the same tap) in both */
        if (f.ax[a].r != d.ax[a].r)
            return 0;
    }
    if (f.ax[0].r == 1 && f.ax[1].r == 1 && f.ax[2].r == 1)
        return 0; /* pointwise: the GEMM path has no column matrix to save */
    for (int cap = 4; cap >= 2; cap -= 2) {
        dj_wino_choose_m(f.ax, cap);
        dj_wino_choose_m(d.ax, cap);
        dj_wino_finish(&f, g->N, g->Cin, g->Cout);
        dj_wino_finish(&d, g->N, g->Cout, g->Cin);
        if (f.xi * f.Cin_p * f.Cout_p <= DJ_WINO_U_MAX)
            break;
    }
    if (f.xi * f.Cin_p * f.Cout_p > DJ_WINO_U_MAX)
        return 0;
    /* fewer than 1.8x fewer products: the transforms and the smaller
     * products would eat the gain; fewer than 32 tiles in the batch: the
     * weight transform (Cin * Cout * xi, the work of a few tiles) would */
    if (!forced && (dj_wino_gain(&f, g) < 1.8 || dj_wino_gain(&d, g) < 1.8 || f.rows * f.nw < 32))
        return 0;
    if (fw)
        *fw = f;
    if (dg)
        *dg = d;
    return 1;
}

/* ---------------------------------------------------------------- scratch
 * [U: xi * Cin_p * Cout_p, the larger of the two convolutions]
 * then either (forward, input gradient) per thread: stage, V, M
 *          or (weight gradient) shared V, dM of a block, per thread: stage */

static int64_t dj_wino_stage_floats(const dj_wino_conv *c) {
    int64_t in = (int64_t)c->ax[0].a * c->ax[1].a * c->wp * c->Cin_p;
    int64_t out = (int64_t)c->ax[0].m * c->ax[1].m * c->nw * c->ax[2].m * c->Cout_p;
    return in > out ? in : out;
}

static int64_t dj_wino_thread_floats(const dj_wino_conv *c) {
    int64_t tiles = c->rows_per_block * c->nw;
    return dj_rup(dj_wino_stage_floats(c), 16) + dj_rup(c->xi * tiles * c->Cin_p, 16) +
           dj_rup(c->xi * tiles * c->Cout_p, 16);
}

/* the weight gradient's block of tile rows (shape only: it sets the order of
 * the sums over tiles) */
static int64_t dj_wino_wrows(const dj_wino_conv *c) {
    int64_t per_row = c->xi * c->nw * (c->Cin_p + c->Cout_p);
    int64_t r = DJ_WINO_WBLOCK / per_row;
    if (r < 1)
        r = 1;
    return r < c->rows ? r : c->rows;
}

static int64_t dj_wino_wgrad_floats(const dj_wino_conv *c, int slots) {
    int64_t tiles = dj_wino_wrows(c) * c->nw;
    return dj_rup(c->xi * tiles * c->Cin_p, 16) + dj_rup(c->xi * tiles * c->Cout_p, 16) +
           slots * dj_rup(dj_wino_stage_floats(c), 16);
}

static int64_t dj_wino_u_floats(const dj_wino_conv *f, const dj_wino_conv *d) {
    int64_t a = f->xi * f->Cin_p * f->Cout_p, b = d->xi * d->Cin_p * d->Cout_p;
    return dj_rup(a > b ? a : b, 16);
}

/* floats for U and `slots` per-thread slots */
static int64_t dj_wino_need(const dj_wino_conv *f, const dj_wino_conv *d, int slots) {
    int64_t rest = slots * dj_wino_thread_floats(f);
    if (slots * dj_wino_thread_floats(d) > rest)
        rest = slots * dj_wino_thread_floats(d);
    if (dj_wino_wgrad_floats(f, slots) > rest)
        rest = dj_wino_wgrad_floats(f, slots);
    return dj_wino_u_floats(f, d) + rest;
}

size_t dj_wino_scratch_bytes(const dj_conv_geom *g, int threads) {
    dj_wino_conv f, d;
    if (!dj_wino_plan(g, &f, &d))
        return 0;
    return (size_t)dj_wino_need(&f, &d, threads < 1 ? 1 : threads) * sizeof(float);
}

/* How many threads can work at once in this scratch: one slot each, at most
 * the pool's threads (a scratch planned for fewer threads runs on fewer;
 * the bits do not change). 0 after an error when not even one fits. */
static int dj_wino_slots(const dj_wino_conv *f, const dj_wino_conv *d, int threads, size_t have, const char *who) {
    int slots = threads < 1 ? 1 : threads;
    while (slots > 0 && (size_t)dj_wino_need(f, d, slots) * sizeof(float) > have)
        slots--;
    if (slots == 0)
        dj_error_set(DJ_ERR_INVALID, who, "scratch of %zu bytes given, %zu needed (dj_conv3d_scratch_bytes)", have,
                     (size_t)dj_wino_need(f, d, 1) * sizeof(float));
    return slots;
}

/* ---------------------------------------------------------------- weights */

typedef struct dj_wino_wjob {
    const dj_wino_conv *c;
    const dj_conv_geom *g;
    const float *w;
    float *U, *dw;
    int flip;
} dj_wino_wjob;

static void dj_wino_weights_range(void *arg, int64_t b0, int64_t b1, int thread) {
    const dj_wino_wjob *j = arg;
    (void)thread;
    dj_wino_weights_avx512(j->c, j->g, j->w, j->flip, j->U, b0 * 16, b1 * 16);
}

static void dj_wino_weights_grad_range(void *arg, int64_t b0, int64_t b1, int thread) {
    const dj_wino_wjob *j = arg;
    (void)thread;
    dj_wino_weights_grad_avx512(j->c, j->g, j->U, j->dw, b0 * 16, b1 * 16);
}

/* ---------------------------------------------------------------- forward and input gradient */

typedef struct dj_wino_job {
    const dj_wino_conv *c;
    const float *x, *U, *bias;
    float *y;
    float *slot_mem; /* per slot: stage, V, M */
    int64_t slot_floats, rpb, nblocks;
    int slots, accumulate;
} dj_wino_job;

/* Slots [s0, s1): slot s runs its share of the blocks of tile rows, each
 * block through input tiles, the per-xi products and output tiles. */
static void dj_wino_blocks(void *arg, int64_t s0, int64_t s1, int thread) {
    const dj_wino_job *j = arg;
    const dj_wino_conv *c = j->c;
    int64_t tiles_max = j->rpb * c->nw;
    (void)thread;
    for (int64_t sl = s0; sl < s1; sl++) {
        float *stage = j->slot_mem + sl * j->slot_floats;
        float *V = stage + dj_rup(dj_wino_stage_floats(c), 16);
        float *M = V + dj_rup(c->xi * tiles_max * c->Cin_p, 16);
        for (int64_t b = sl * j->nblocks / j->slots; b < (sl + 1) * j->nblocks / j->slots; b++) {
            int64_t r0 = b * j->rpb, nrows = c->rows - r0 < j->rpb ? c->rows - r0 : j->rpb, tiles = nrows * c->nw;
            dj_wino_input_tiles_avx512(c, j->x, r0, nrows, tiles, 0, V, stage);
            for (int64_t q = 0; q < c->xi; q++)
                dj_wino_gemm_avx512(tiles, c->Cout_p, c->Cin_p, V + q * tiles * c->Cin_p, c->Cin_p, 1,
                                    j->U + q * c->Cin_p * c->Cout_p, c->Cout_p, M + q * tiles * c->Cout_p, c->Cout_p,
                                    0);
            dj_wino_output_tiles_avx512(c, M, r0, nrows, j->y, j->bias, j->accumulate, stage);
        }
    }
}

/* y (=, or += when accumulate) the convolution c of x with U, in `slots`
 * slots after U. */
static void dj_wino_run(dj_threadpool *pool, const dj_wino_conv *c, const float *x, const float *U, const float *bias,
                        float *y, float *rest, int slots, int accumulate) {
    /* blocks no larger than the planned ones, and at least one per slot
     * when there are enough rows (the bits do not depend on the blocks) */
    int64_t rpb = c->rows_per_block, even = dj_cdiv(c->rows, slots);
    if (even < rpb)
        rpb = even;
    int64_t nblocks = dj_cdiv(c->rows, rpb);
    if (slots > nblocks)
        slots = (int)nblocks;
    dj_wino_job j = {c, x, U, bias, y, rest, dj_wino_thread_floats(c), rpb, nblocks, slots, accumulate};
    dj_parallel_for(pool, slots, 1, dj_wino_blocks, &j);
}

dj_status dj_wino_forward(dj_threadpool *pool, const dj_conv_geom *g, const float *x, const float *w, const float *b,
                          float *y, void *scratch, size_t scratch_bytes) {
    static const char who[] = "dj_conv3d_forward";
    dj_wino_conv f, d;
    if (!dj_wino_plan(g, &f, &d))
        return dj_error_set(DJ_ERR_INVALID, who, "this convolution has no Winograd form");
    int slots = dj_wino_slots(&f, &d, dj_threadpool_size(pool), scratch_bytes, who);
    if (!slots)
        return DJ_ERR_INVALID;
    float *U = scratch, *rest = U + dj_wino_u_floats(&f, &d);
    dj_wino_wjob wj = {&f, g, w, U, NULL, 0};
    dj_parallel_for(pool, f.Cout_p / 16, 1, dj_wino_weights_range, &wj);
    dj_wino_run(pool, &f, x, U, b, y, rest, slots, 0);
    return DJ_OK;
}

/* ---------------------------------------------------------------- weight gradient */

typedef struct dj_wino_gjob {
    const dj_wino_conv *c;
    const float *x, *dy;
    float *V, *dM, *dU, *stages;
    int64_t stage_floats, r0, nrows, tiles;
    int slots, accumulate;
} dj_wino_gjob;

/* phase 1: slot s transforms its share of the block's rows into V and dM */
static void dj_wino_grad_tiles(void *arg, int64_t s0, int64_t s1, int thread) {
    const dj_wino_gjob *j = arg;
    (void)thread;
    for (int64_t sl = s0; sl < s1; sl++) {
        float *stage = j->stages + sl * j->stage_floats;
        int64_t a = sl * j->nrows / j->slots, b = (sl + 1) * j->nrows / j->slots;
        if (b <= a)
            continue;
        dj_wino_input_tiles_avx512(j->c, j->x, j->r0 + a, b - a, j->tiles, a * j->c->nw, j->V, stage);
        dj_wino_output_grad_tiles_avx512(j->c, j->dy, j->r0 + a, b - a, j->tiles, a * j->c->nw, j->dM, stage);
    }
}

/* phase 2: dU[xi] (+)= V[xi]^T dM[xi] for xi in [a, b) */
static void dj_wino_grad_products(void *arg, int64_t a, int64_t b, int thread) {
    const dj_wino_gjob *j = arg;
    const dj_wino_conv *c = j->c;
    (void)thread;
    for (int64_t q = a; q < b; q++)
        dj_wino_gemm_avx512(c->Cin_p, c->Cout_p, j->tiles, j->V + q * j->tiles * c->Cin_p, 1, c->Cin_p,
                            j->dM + q * j->tiles * c->Cout_p, c->Cout_p, j->dU + q * c->Cin_p * c->Cout_p, c->Cout_p,
                            j->accumulate);
}

static void dj_wino_wgrad_run(dj_threadpool *pool, const dj_wino_conv *f, const dj_conv_geom *g, const float *x,
                              const float *dy, float *dw, float *dU, float *rest, int slots) {
    int64_t wrows = dj_wino_wrows(f), tiles_max = wrows * f->nw;
    float *V = rest, *dM = V + dj_rup(f->xi * tiles_max * f->Cin_p, 16);
    float *stages = dM + dj_rup(f->xi * tiles_max * f->Cout_p, 16);
    for (int64_t r0 = 0; r0 < f->rows; r0 += wrows) {
        int64_t nrows = f->rows - r0 < wrows ? f->rows - r0 : wrows;
        int sl = nrows < slots ? (int)nrows : slots;
        dj_wino_gjob j = {f,     x,     dy,           V,  dM, dU, stages, dj_rup(dj_wino_stage_floats(f), 16),
                          r0,    nrows, nrows * f->nw, sl, r0 > 0};
        dj_parallel_for(pool, sl, 1, dj_wino_grad_tiles, &j);
        dj_parallel_for(pool, f->xi, 1, dj_wino_grad_products, &j);
    }
    dj_wino_wjob wj = {f, g, NULL, dU, dw, 0};
    dj_parallel_for(pool, f->Cout_p / 16, 1, dj_wino_weights_grad_range, &wj);
}

dj_status dj_wino_backward(dj_threadpool *pool, const dj_conv_geom *g, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, void *scratch, size_t scratch_bytes) {
    static const char who[] = "dj_conv3d_backward";
    dj_wino_conv f, d;
    if (!dj_wino_plan(g, &f, &d))
        return dj_error_set(DJ_ERR_INVALID, who, "this convolution has no Winograd form");
    int slots = dj_wino_slots(&f, &d, dj_threadpool_size(pool), scratch_bytes, who);
    if (!slots)
        return DJ_ERR_INVALID;
    float *U = scratch, *rest = U + dj_wino_u_floats(&f, &d);
    if (dx) {
        dj_wino_wjob wj = {&d, g, w, U, NULL, 1};
        dj_parallel_for(pool, d.Cout_p / 16, 1, dj_wino_weights_range, &wj);
        dj_wino_run(pool, &d, dy, U, NULL, dx, rest, slots, 1);
    }
    if (dw)
        dj_wino_wgrad_run(pool, &f, g, x, dy, dw, U, rest, slots);
    return DJ_OK;
}
