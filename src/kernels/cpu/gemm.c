/* gemm.c — dj_sgemm and dj_gemm_bf16: the packed, cache-blocked driver
 * (BLIS-style) around the micro-kernels of gemm_avx512.c / gemm_avx2.c and
 * the portable one here (also the aarch64 path).
 *
 * Loops, outermost first (A-panel-in-L1 order, suited to wide NR tiles):
 *   jc: NC columns of C  -> pack B[kc, NC] into a KC x NC block (L2/L3)
 *   pc: KC of K          -> (beta applied on the first KC block only)
 *   ic: MC rows of C     -> pack A[MC, kc] into MR-row micro-panels
 *   ir: MR rows          -> the MR x kc A micro-panel stays in L1
 *   jr: NR columns       -> streams NR x kc B micro-panels from L2/L3
 * Work is split over (ic, jc) blocks of C, taken by the pool's threads from
 * a shared counter, never over K: every element of C sees the same sequence
 * of KC blocks and FMAs whatever block or thread computes it (edge tiles
 * run the same kernel on a copy), so results are bit-identical for any
 * number of threads and any assignment of tasks to threads.
 *
 * dj_sgemm_packed_b takes B from the caller's packing function instead (an
 * implicit GEMM: conv3d gathers its columns straight into the B panels);
 * dj_gemm_bf16_packed_b is the same for bf16 (the packer writes the k-pair
 * layout; the converted path expands it to float32 panels); everything else
 * is shared. The AVX-512 tile is 12x32, or 8x32 where M is
 * a multiple of 8 that 12-row tiles would pad (64, 128, 256, 512 rows).
 *
 * Packing memory: one buffer per thread (about 2.3 MiB: an MC x KC A block,
 * a KC x NC B block and 32 x KC floats for packing functions), thread-local, allocated on the first call and
 * kept (freed when the thread exits), so steady-state calls never allocate. Thread-local rather than pool scratch because operators
 * may hold the pool's scratch while they call GEMM, and because GEMM is also
 * called with a NULL pool from inside other parallel loops. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/cpu.h"
#include "dojo/gemm.h"
#include "gemm_kernels.h"

/* ---- blocking and kernel choice ---------------------------------------- */

typedef struct dj_gemm_plan {
    int mr, nr;            /* micro-tile */
    int64_t mc, kc, nc;    /* cache blocks: A block mc x kc, B block kc x nc */
    int pairs;             /* 1: bf16 packed in k-pairs for vdpbf16ps */
    size_t esize;          /* bytes of one packed element */
    dj_gemm_micro_fn micro;
    int avx512_pack;       /* AVX-512 transposing packers allowed */
    int converted;         /* bf16 on a float32 kernel, as vdpbf16ps would (gemm_bf16_pack.c) */
} dj_gemm_plan;

/* bf16 without vdpbf16ps: the float32 kernel on values converted while
 * packing (gemm_bf16_pack.c), KC and the order of the sums as the native
 * kernel's, so both give the same bits. */
static dj_gemm_plan dj_gemm_plan_converted(dj_gemm_plan f) {
    f.kc = DJ_GEMM_BF16_KC;
    f.converted = 1;
    f.avx512_pack = 0;
    return f;
}

/* Blocks measured on Zen 4 (L1d 32 KiB, L2 1 MiB per core, 32 MiB L3), 2048^3,
 * best of many runs: a long KC (512 floats, 1024 bf16) halves the passes
 * over C, which dominate once packing is fast; the A micro-panel (12 x 512
 * floats = 24 KiB) stays in L1 and the B block (512 x 1024 floats = 2 MiB)
 * streams from L2/L3 at 128 bytes per 24 FMAs; NC = 1024 packs A only
 * N/1024 times. (KC 256 / NC 512 measured ~6% slower, KC 1024 / NC 256
 * ~6% slower, KC 384 / NC 1024 ~1% slower.) */
/* M picks the AVX-512 tile height (float32 and bf16): 8 rows where that
 * computes fewer padded rows than 12 (M = 64: 64 instead of 72), 12
 * otherwise. */
static int dj_gemm_rows8(int64_t M) { return (M + 7) / 8 * 8 < (M + 11) / 12 * 12; }

static dj_gemm_plan dj_gemm_plan_pick(int bf16, int64_t M) {
    dj_gemm_plan p = {DJ_GEMM_SCALAR_MR, DJ_GEMM_SCALAR_NR, 64, 256, 256, 0, sizeof(float), dj_sgemm_micro_scalar,
                      0, 0};
#if defined(__x86_64__)
    dj_cpu_isa isa = dj_cpu_best_isa();
    if (bf16 && dj_cpu_bf16_native()) {
        dj_gemm_plan b = {DJ_GEMM_BF16_MR, DJ_GEMM_BF16_NR, 96, DJ_GEMM_BF16_KC, 1024, 1, sizeof(uint16_t),
                          dj_bgemm_micro_avx512, 1, 0};
        if (dj_gemm_rows8(M)) {
            b.mr = DJ_GEMM_BF16_MR8;
            b.micro = dj_bgemm_micro_avx512_8;
        }
        return b;
    }
    if (bf16) /* converted: the float32 plan with the native bf16 plan's KC */
        return dj_gemm_plan_converted(dj_gemm_plan_pick(0, 0)); /* the 12-row tile, as tested against vdpbf16ps */
    if (isa == DJ_CPU_ISA_AVX512) {
        dj_gemm_plan f = {DJ_GEMM_AVX512_MR, DJ_GEMM_AVX512_NR, 96, 512, 1024, 0, sizeof(float),
                          dj_sgemm_micro_avx512, 1, 0};
        if (dj_gemm_rows8(M)) {
            f.mr = DJ_GEMM_AVX512_MR8;
            f.micro = dj_sgemm_micro_avx512_8;
        }
        return f;
    }
    if (isa == DJ_CPU_ISA_AVX2) {
        dj_gemm_plan f = {DJ_GEMM_AVX2_MR, DJ_GEMM_AVX2_NR, 96, 256, 512, 0, sizeof(float), dj_sgemm_micro_avx2,
                          0, 0};
        return f;
    }
#endif
    (void)M;
    return bf16 ? dj_gemm_plan_converted(p) : p;
}

/* ---- the portable micro-kernel ----------------------------------------- */

void dj_sgemm_micro_scalar(int64_t kc, const void *ap, const void *bp, float *c, int64_t ldc, float alpha,
                           float beta) {
    enum { MR = DJ_GEMM_SCALAR_MR, NR = DJ_GEMM_SCALAR_NR };
    const float *a = ap; /* kc x MR */
    const float *b = bp; /* kc x NR */
    float acc[MR][NR] = {{0}};
    for (int64_t k = 0; k < kc; k++, a += MR, b += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] += a[i] * b[j];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            c[i * ldc + j] = beta == 0.0f ? acc[i][j] * alpha : acc[i][j] * alpha + c[i * ldc + j] * beta;
}

/* The portable kernel is vectorised by the compiler (SSE2 on baseline
 * x86-64, NEON on aarch64, 4 lanes), so its peak is 4-lane multiply-adds
 * (fused where the target has them): 12 independent chains. */
typedef float dj_v4 __attribute__((vector_size(16)));

double dj_fma_peak_scalar(int64_t iters) {
    dj_v4 x[12], m = {0.999999f, 0.999999f, 0.999999f, 0.999999f}, s = {1e-7f, 1e-7f, 1e-7f, 1e-7f};
    for (int i = 0; i < 12; i++)
        x[i] = (dj_v4){1.0f, 1.0f, 1.0f, 1.0f} + 0.001f * (float)i;
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++)
            x[i] = x[i] * m + s;
    dj_v4 acc = x[0];
    for (int i = 1; i < 12; i++)
        acc += x[i];
    volatile float sink = acc[0] + acc[3];
    (void)sink;
    return (double)iters * 12 * 4 * 2;
}

/* ---- packing ------------------------------------------------------------ */

static inline float dj_f32f(float x) { return x; }

/* Packs rows [i0, i0+mc) x k [k0, k0+kc) of op(A) into MR-row micro-panels
 * dst[mc/MR][kc][MR] (rows past mc are zero). Same code packs op(B)^T into
 * NR-column micro-panels, since B[k,j] is B^T[j,k] with the transpose flag
 * flipped. T is the stored type, CVT its conversion to float. */
#define DJ_DEFINE_PACK(NAME, T, CVT)                                                                       \
    static void NAME(const T *X, int64_t ld, int trans, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int mr, \
                     float *dst) {                                                                        \
        for (int64_t ir = 0; ir < mc; ir += mr) {                                                         \
            int m = mc - ir < mr ? (int)(mc - ir) : mr;                                                   \
            float *d = dst + ir * kc;                                                                     \
            if (!trans) { /* X[i*ld + k]: m row streams */                                                \
                const T *rows[DJ_GEMM_MAX_NR];                                                            \
                for (int r = 0; r < m; r++)                                                               \
                    rows[r] = X + (i0 + ir + r) * ld + k0;                                                \
                for (int64_t k = 0; k < kc; k++, d += mr) {                                               \
                    int r = 0;                                                                            \
                    for (; r < m; r++)                                                                    \
                        d[r] = CVT(rows[r][k]);                                                           \
                    for (; r < mr; r++)                                                                   \
                        d[r] = 0.0f;                                                                      \
                }                                                                                         \
            } else if (m == mr && sizeof(T) == sizeof(float)) { /* X[k*ld + i]: whole runs of mr */      \
                for (int64_t k = 0; k < kc; k++, d += mr)                                                 \
                    memcpy(d, X + (k0 + k) * ld + i0 + ir, (size_t)mr * sizeof(float));                  \
            } else { /* X[k*ld + i]: contiguous runs of m */                                              \
                for (int64_t k = 0; k < kc; k++, d += mr) {                                               \
                    const T *s = X + (k0 + k) * ld + i0 + ir;                                             \
                    int r = 0;                                                                            \
                    for (; r < m; r++)                                                                    \
                        d[r] = CVT(s[r]);                                                                 \
                    for (; r < mr; r++)                                                                   \
                        d[r] = 0.0f;                                                                      \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }

DJ_DEFINE_PACK(dj_pack_f32, float, dj_f32f)

/* bf16 kept as bf16, k taken in pairs: dst[mc/MR][kcp/2][MR] of uint32
 * words (X[i,k] low half, X[i,k+1] high half), kcp = kc rounded up to even;
 * values past kc or mc are zero. Used for A. */
static void dj_pack_pairs_a(const uint16_t *X, int64_t ld, int trans, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                            int mr, uint32_t *dst) {
    int64_t kp = (kc + 1) / 2;
    for (int64_t ir = 0; ir < mc; ir += mr) {
        int m = mc - ir < mr ? (int)(mc - ir) : mr;
        uint32_t *d = dst + ir * kp;
        for (int64_t p = 0; p < kp; p++, d += mr) {
            int64_t k = k0 + 2 * p;
            int two = 2 * p + 1 < kc;
            int r = 0;
            for (; r < m; r++) {
                int64_t i = i0 + ir + r;
                uint32_t lo = trans ? X[k * ld + i] : X[i * ld + k];
                uint32_t hi = two ? (trans ? X[(k + 1) * ld + i] : X[i * ld + k + 1]) : 0;
                d[r] = lo | hi << 16;
            }
            for (; r < mr; r++)
                d[r] = 0;
        }
    }
}

/* B in k-pairs: dst[nc/NR][kcp/2][NR][2] of bf16, (B[k,j], B[k+1,j]). */
static void dj_pack_pairs_b(const uint16_t *X, int64_t ld, int trans, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                            int nr, uint16_t *dst) {
    int64_t kp = (kc + 1) / 2;
    for (int64_t jr = 0; jr < nc; jr += nr) {
        int n = nc - jr < nr ? (int)(nc - jr) : nr;
        uint16_t *d = dst + jr * 2 * kp;
        for (int64_t p = 0; p < kp; p++, d += 2 * nr) {
            int64_t k = k0 + 2 * p;
            int two = 2 * p + 1 < kc;
            int c = 0;
            if (!trans) { /* X[k*ld + j] */
                const uint16_t *s0 = X + k * ld + j0 + jr, *s1 = s0 + ld;
                for (; c < n; c++) {
                    d[2 * c] = s0[c];
                    d[2 * c + 1] = two ? s1[c] : 0;
                }
            } else { /* X[j*ld + k] */
                for (; c < n; c++) {
                    const uint16_t *s = X + (j0 + jr + c) * ld + k;
                    d[2 * c] = s[0];
                    d[2 * c + 1] = two ? s[1] : 0;
                }
            }
            for (; c < nr; c++)
                d[2 * c] = d[2 * c + 1] = 0;
        }
    }
}

/* ---- the driver ----------------------------------------------------------- */

/* every bf16 plan has KC = DJ_GEMM_BF16_KC, so the packers' tmp (MAX_NR x KC
 * floats) is the documented size */
_Static_assert((size_t)DJ_GEMM_MAX_NR * DJ_GEMM_BF16_KC * sizeof(float) == DJ_GEMM_BF16_PACK_TMP,
               "bf16 packer tmp size");

typedef struct dj_gemm_job {
    dj_gemm_plan plan;
    int ta, tb;
    int64_t M, N, K;
    float alpha, beta;
    const void *A, *B; /* float, or uint16_t bf16 when bf16 */
    int bf16;
    int64_t lda, ldb;
    float *C;
    int64_t ldc;
    dj_sgemm_pack_fn pack_b; /* packs B blocks when not NULL (B unused) */
    dj_gemm_bf16_pack_fn pack_b16; /* the same for bf16 B (pair layout) */
    void *pack_ctx;
    int64_t nc;          /* column block used (<= plan.nc) */
    int64_t tm;          /* number of row blocks */
    int64_t chunk_m;     /* row blocks per task */
    int64_t tasks_m;     /* tasks per column block */
    int64_t tasks;       /* tasks in all */
    int64_t next_task;   /* the next task to take (atomic) */
    size_t a_bytes;      /* packed A block, rounded to 64 */
    size_t b_bytes;      /* packed B block, rounded to 64 */
    size_t scratch_bytes;
    int failed;          /* set when a thread could not get its buffer */
} dj_gemm_job;

static pthread_key_t dj_gemm_key;
static pthread_once_t dj_gemm_key_once = PTHREAD_ONCE_INIT;
static __thread void *dj_gemm_buf;
static __thread size_t dj_gemm_buf_bytes;

static void dj_gemm_key_make(void) { pthread_key_create(&dj_gemm_key, free); }

/* This thread's packing buffer of at least `bytes` (64-byte aligned). */
static void *dj_gemm_scratch(size_t bytes) {
    if (bytes <= dj_gemm_buf_bytes)
        return dj_gemm_buf;
    pthread_once(&dj_gemm_key_once, dj_gemm_key_make);
    size_t rounded = (bytes + 4095) / 4096 * 4096;
    void *m = aligned_alloc(64, rounded);
    if (!m)
        return NULL;
    free(dj_gemm_buf);
    dj_gemm_buf = m;
    dj_gemm_buf_bytes = rounded;
    pthread_setspecific(dj_gemm_key, m); /* freed when the thread exits */
    return m;
}

#if defined(__x86_64__)
/* Panels whose k runs along memory rows (op(A) = A, op(B) = B^T), packed by
 * 16x16 register transposes: `rows` rows of X from row r0, kc values from
 * k0, into micro-panels of `mr` rows. For bf16 pairs the 32-bit words are
 * (X[r,k], X[r,k+1]) and an odd last k is finished here. */
static void dj_pack_rows_fast(const dj_gemm_job *g, const void *X, int64_t ld, int64_t r0, int64_t rows, int64_t k0,
                              int64_t kc, int mr, void *dst) {
    int pairs = g->plan.pairs;
    int64_t words = pairs ? kc / 2 : kc, kp = pairs ? (kc + 1) / 2 : kc;
    for (int64_t ir = 0; ir < rows; ir += mr) {
        int m = rows - ir < mr ? (int)(rows - ir) : mr;
        uint32_t *d = (uint32_t *)dst + ir * kp;
        if (pairs) {
            const uint16_t *s = (const uint16_t *)X + (r0 + ir) * ld + k0;
            dj_pack_rows32_avx512(s, ld * 2, m, words, mr, d);
            if (kc & 1)
                for (int r = 0; r < mr; r++)
                    d[(kp - 1) * mr + r] = r < m ? s[r * ld + kc - 1] : 0;
        } else {
            dj_pack_rows32_avx512((const float *)X + (r0 + ir) * ld + k0, ld * 4, m, words, mr, d);
        }
    }
}

/* bf16 B (not transposed) in k-pairs: two rows interleaved per pair. */
static void dj_pack_pairs_b_fast(const uint16_t *X, int64_t ld, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                                 int nr, uint16_t *dst) {
    int64_t kp = (kc + 1) / 2;
    for (int64_t jr = 0; jr < nc; jr += nr) {
        int n = nc - jr < nr ? (int)(nc - jr) : nr;
        uint16_t *d = dst + jr * 2 * kp;
        for (int64_t p = 0; p < kp; p++, d += 2 * nr) {
            const uint16_t *s0 = X + (k0 + 2 * p) * ld + j0 + jr;
            dj_pack_interleave_avx512(s0, 2 * p + 1 < kc ? s0 + ld : NULL, n, d);
        }
    }
}
#endif

static void dj_gemm_pack_a(const dj_gemm_job *g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, void *dst) {
#if defined(__x86_64__)
    if (g->plan.avx512_pack && !g->ta && (g->plan.pairs || !g->bf16)) {
        dj_pack_rows_fast(g, g->A, g->lda, i0, mc, k0, kc, g->plan.mr, dst);
        return;
    }
    if (g->plan.avx512_pack && g->ta && g->plan.pairs) {
        dj_pack_pairs_at_avx512(g->A, g->lda, i0, mc, k0, kc, g->plan.mr, dst);
        return;
    }
#endif
    if (g->plan.pairs)
        dj_pack_pairs_a(g->A, g->lda, g->ta, i0, mc, k0, kc, g->plan.mr, dst);
    else if (g->plan.converted)
        dj_pack_bf16_swapped(g->A, g->lda, g->ta, i0, mc, k0, kc, g->plan.mr, dst);
    else
        dj_pack_f32(g->A, g->lda, g->ta, i0, mc, k0, kc, g->plan.mr, dst);
}

static void dj_gemm_pack_b(const dj_gemm_job *g, int64_t k0, int64_t kc, int64_t j0, int64_t nc, void *dst,
                           void *tmp) {
    if (g->pack_b16) {
        if (g->plan.pairs) {
            g->pack_b16(g->pack_ctx, k0, kc, j0, nc, g->plan.nr, dst, tmp);
            return;
        }
        /* converted: the packer's pair layout in the stage after tmp, then
         * expanded into the float32 panels */
        uint16_t *stage = (uint16_t *)((char *)tmp + DJ_GEMM_BF16_PACK_TMP);
        g->pack_b16(g->pack_ctx, k0, kc, j0, nc, g->plan.nr, stage, tmp);
        dj_bf16_pairs_expand(stage, nc, kc, g->plan.nr, dst);
        return;
    }
    if (g->pack_b) {
        g->pack_b(g->pack_ctx, k0, kc, j0, nc, g->plan.nr, dst, tmp);
        return;
    }
    (void)tmp;
    /* op(B)[k,j] == op'(B)^T[j,k]: the A packer with the flag flipped */
#if defined(__x86_64__)
    if (g->plan.avx512_pack && (g->plan.pairs || !g->bf16)) {
        if (g->tb) {
            dj_pack_rows_fast(g, g->B, g->ldb, j0, nc, k0, kc, g->plan.nr, dst);
            return;
        }
        if (g->plan.pairs && g->plan.nr == 32) {
            dj_pack_pairs_b_fast(g->B, g->ldb, k0, kc, j0, nc, g->plan.nr, dst);
            return;
        }
    }
#endif
    if (g->plan.pairs)
        dj_pack_pairs_b(g->B, g->ldb, g->tb, k0, kc, j0, nc, g->plan.nr, dst);
    else if (g->plan.converted)
        dj_pack_bf16_swapped(g->B, g->ldb, !g->tb, j0, nc, k0, kc, g->plan.nr, dst);
    else
        dj_pack_f32(g->B, g->ldb, !g->tb, j0, nc, k0, kc, g->plan.nr, dst);
}

/* C[i0:i0+mc, j0:j0+nc] = alpha * Apack.Bpack + beta * C over one KC block. */
static void dj_gemm_block(const dj_gemm_job *g, const char *ap, const char *bp, int64_t i0, int64_t mc, int64_t j0,
                          int64_t nc, int64_t kc, float beta) {
    const dj_gemm_plan *p = &g->plan;
    int64_t kcp = p->pairs || p->converted ? (kc + 1) / 2 * 2 : kc;
    size_t a_step = (size_t)p->mr * (size_t)kcp * p->esize, b_step = (size_t)p->nr * (size_t)kcp * p->esize;
    for (int64_t ir = 0; ir < mc; ir += p->mr) {
        int m = mc - ir < p->mr ? (int)(mc - ir) : p->mr;
        const char *a = ap + (size_t)(ir / p->mr) * a_step;
        for (int64_t jr = 0; jr < nc; jr += p->nr) {
            int n = nc - jr < p->nr ? (int)(nc - jr) : p->nr;
            const char *b = bp + (size_t)(jr / p->nr) * b_step;
            float *c = g->C + (i0 + ir) * g->ldc + j0 + jr;
            if (m == p->mr && n == p->nr) {
                p->micro(kcp, a, b, c, g->ldc, g->alpha, beta);
                continue;
            }
            /* edge tile: the same kernel on a full-size copy */
            float t[DJ_GEMM_MAX_MR * DJ_GEMM_MAX_NR] __attribute__((aligned(64)));
            memset(t, 0, sizeof t);
            if (beta != 0.0f)
                for (int i = 0; i < m; i++)
                    memcpy(t + i * p->nr, c + i * g->ldc, (size_t)n * sizeof(float));
            p->micro(kcp, a, b, t, p->nr, g->alpha, beta);
            for (int i = 0; i < m; i++)
                memcpy(c + i * g->ldc, t + i * p->nr, (size_t)n * sizeof(float));
        }
    }
}

/* One task: C[rows of row blocks ib0..ib1, column block jb], over all of K
 * in KC steps; the B block is packed once per KC step for the row blocks. */
static void dj_gemm_task(const dj_gemm_job *g, int64_t task, char *apack, char *bpack, char *tmp) {
    const dj_gemm_plan *p = &g->plan;
    int64_t jb = task / g->tasks_m, ib0 = task % g->tasks_m * g->chunk_m;
    int64_t ib1 = ib0 + g->chunk_m < g->tm ? ib0 + g->chunk_m : g->tm;
    int64_t j0 = jb * g->nc, nc = g->N - j0 < g->nc ? g->N - j0 : g->nc;
    for (int64_t k0 = 0; k0 < g->K; k0 += p->kc) {
        int64_t kc = g->K - k0 < p->kc ? g->K - k0 : p->kc;
        dj_gemm_pack_b(g, k0, kc, j0, nc, bpack, tmp);
        float beta = k0 == 0 ? g->beta : 1.0f;
        for (int64_t ib = ib0; ib < ib1; ib++) {
            int64_t i0 = ib * p->mc, mc = g->M - i0 < p->mc ? g->M - i0 : p->mc;
            dj_gemm_pack_a(g, i0, mc, k0, kc, apack);
            dj_gemm_block(g, apack, bpack, i0, mc, j0, nc, kc, beta);
        }
    }
}

/* Each thread of the pool takes tasks from a shared counter until none are
 * left, so a core slowed by other work (the video decoders, or another
 * program) simply does fewer of them. Which thread runs a task never
 * changes its result: every task computes its own C block in full. */
static void dj_gemm_worker(void *arg, int64_t begin, int64_t end, int thread) {
    dj_gemm_job *g = arg;
    (void)begin, (void)end, (void)thread;
    char *buf = dj_gemm_scratch(g->scratch_bytes);
    if (!buf) {
        __atomic_store_n(&g->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    unsigned csr = g->plan.converted ? dj_bf16_ftz_begin() : 0;
    for (;;) {
        int64_t t = __atomic_fetch_add(&g->next_task, 1, __ATOMIC_RELAXED);
        if (t >= g->tasks)
            break;
        dj_gemm_task(g, t, buf, buf + g->a_bytes, buf + g->a_bytes + g->b_bytes);
    }
    if (g->plan.converted)
        dj_bf16_ftz_end(csr);
}

static dj_status dj_gemm_check(const char *who, int ta, int tb, int64_t M, int64_t N, int64_t K, const void *A,
                               int64_t lda, const void *B, int64_t ldb, const float *C, int64_t ldc) {
    if (M < 0 || N < 0 || K < 0)
        return dj_error_set(DJ_ERR_INVALID, who, "negative size M=%lld N=%lld K=%lld", (long long)M, (long long)N,
                            (long long)K);
    if ((M && N && !C) || (M && K && !A) || (K && N && !B))
        return dj_error_set(DJ_ERR_INVALID, who, "NULL matrix");
    if (M && K && lda < (ta ? M : K))
        return dj_error_set(DJ_ERR_INVALID, who, "lda=%lld is less than the row width %lld", (long long)lda,
                            (long long)(ta ? M : K));
    if (K && N && ldb < (tb ? K : N))
        return dj_error_set(DJ_ERR_INVALID, who, "ldb=%lld is less than the row width %lld", (long long)ldb,
                            (long long)(tb ? K : N));
    if (M && N && ldc < N)
        return dj_error_set(DJ_ERR_INVALID, who, "ldc=%lld is less than N=%lld", (long long)ldc, (long long)N);
    return DJ_OK;
}

/* C = beta * C (beta == 0: zeros), for K == 0. */
static void dj_gemm_scale(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

static dj_status dj_gemm_run(dj_threadpool *pool, dj_gemm_job *g, const char *who) {
    DJ_TRY(dj_gemm_check(who, g->ta, g->tb, g->M, g->N, g->K, g->A, g->lda, g->B, g->ldb, g->C, g->ldc));
    if (g->M == 0 || g->N == 0)
        return DJ_OK;
    if (g->K == 0) {
        dj_gemm_scale(g->M, g->N, g->beta, g->C, g->ldc);
        return DJ_OK;
    }
    const dj_gemm_plan *p = &g->plan;
    /* buffer sized from the plan's full blocks, so it is the same for every
     * call of this plan and allocated once per thread */
    int64_t mcp = (p->mc + p->mr - 1) / p->mr * p->mr, ncp = (p->nc + p->nr - 1) / p->nr * p->nr;
    g->a_bytes = ((size_t)mcp * (size_t)p->kc * p->esize + 63) / 64 * 64;
    g->b_bytes = ((size_t)ncp * (size_t)p->kc * p->esize + 63) / 64 * 64;
    /* + the B packers' temporary: DJ_GEMM_MAX_NR rows of kc floats (bf16
     * plans: kc = 1024, DJ_GEMM_BF16_PACK_TMP bytes), + for a bf16 packer on
     * the converted path its pair-layout block */
    g->scratch_bytes = g->a_bytes + g->b_bytes + (size_t)DJ_GEMM_MAX_NR * (size_t)p->kc * sizeof(float);
    if (g->pack_b16 && !p->pairs)
        g->scratch_bytes += (size_t)ncp * (size_t)p->kc * sizeof(uint16_t);
    /* below ~2 MFLOP waking the pool costs more than it saves */
    if ((double)g->M * (double)g->N * (double)g->K < (double)(1 << 20))
        pool = NULL;
    /* blocks of C: column blocks of equal width (at most plan.nc), more of
     * them when there are too few blocks to keep every thread busy; tasks of
     * several row blocks, about 4 per thread (1 thread: one per column
     * block). Block shapes never change a result: only KC orders the sums. */
    int threads = dj_threadpool_size(pool);
    g->tm = (g->M + p->mc - 1) / p->mc;
    int64_t tn = (g->N + p->nc - 1) / p->nc;
    int64_t want = 4 * (int64_t)threads;
    if (threads > 1 && g->tm * tn < want)
        tn = (want + g->tm - 1) / g->tm;
    int64_t nc = ((g->N + tn - 1) / tn + p->nr - 1) / p->nr * p->nr;
    g->nc = nc > p->nc ? p->nc : nc;
    tn = (g->N + g->nc - 1) / g->nc;
    g->chunk_m = threads > 1 ? (g->tm * tn + want - 1) / want : g->tm;
    g->tasks_m = (g->tm + g->chunk_m - 1) / g->chunk_m;
    g->tasks = g->tasks_m * tn;
    g->next_task = 0;
    dj_parallel_for(pool, threads, 1, dj_gemm_worker, g);
    if (g->failed)
        return dj_error_set(DJ_ERR_NOMEM, who, "cannot allocate %zu bytes of packing buffer", g->scratch_bytes);
    return DJ_OK;
}

dj_status dj_sgemm(dj_threadpool *pool, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                   const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    dj_gemm_job g = {.plan = dj_gemm_plan_pick(0, M), .ta = ta != DJ_NO_TRANS, .tb = tb != DJ_NO_TRANS, .M = M,
                     .N = N, .K = K, .alpha = alpha, .beta = beta, .A = A, .B = B, .lda = lda, .ldb = ldb, .C = C,
                     .ldc = ldc};
    return dj_gemm_run(pool, &g, "dj_sgemm");
}

dj_status dj_sgemm_packed_b(dj_threadpool *pool, dj_trans ta, int64_t M, int64_t N, int64_t K, float alpha,
                            const float *A, int64_t lda, dj_sgemm_pack_fn pack_b, void *ctx, float beta, float *C,
                            int64_t ldc) {
    if (!pack_b)
        return dj_error_set(DJ_ERR_INVALID, "dj_sgemm_packed_b", "NULL packing function");
    /* B is never read: a non-NULL stand-in and ldb = N pass the checks */
    dj_gemm_job g = {.plan = dj_gemm_plan_pick(0, M), .ta = ta != DJ_NO_TRANS, .M = M, .N = N, .K = K,
                     .alpha = alpha, .beta = beta, .A = A, .B = "", .lda = lda, .ldb = N, .C = C, .ldc = ldc,
                     .pack_b = pack_b, .pack_ctx = ctx};
    return dj_gemm_run(pool, &g, "dj_sgemm_packed_b");
}

void dj_sgemm_pack_rows(const float *X, int64_t ld, int64_t n, int64_t kc, int nr, float *dst) {
#if defined(__x86_64__)
    if (dj_cpu_best_isa() == DJ_CPU_ISA_AVX512 && nr <= 32) {
        for (int64_t jr = 0; jr < n; jr += nr) {
            int m = n - jr < nr ? (int)(n - jr) : nr;
            dj_pack_rows32_avx512(X + jr * ld, ld * 4, m, kc, nr, dst + jr * kc);
        }
        return;
    }
#endif
    dj_pack_f32(X, ld, 0, 0, n, 0, kc, nr, dst);
}

dj_status dj_gemm_bf16(dj_threadpool *pool, dj_trans ta, dj_trans tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C,
                       int64_t ldc) {
    dj_gemm_job g = {.plan = dj_gemm_plan_pick(1, M), .ta = ta != DJ_NO_TRANS, .tb = tb != DJ_NO_TRANS, .M = M,
                     .N = N, .K = K, .alpha = alpha, .beta = beta, .A = A, .B = B, .bf16 = 1, .lda = lda, .ldb = ldb,
                     .C = C, .ldc = ldc};
    return dj_gemm_run(pool, &g, "dj_gemm_bf16");
}

dj_status dj_gemm_bf16_packed_b(dj_threadpool *pool, dj_trans ta, int64_t M, int64_t N, int64_t K, float alpha,
                                const uint16_t *A, int64_t lda, dj_gemm_bf16_pack_fn pack_b, void *ctx, float beta,
                                float *C, int64_t ldc) {
    if (!pack_b)
        return dj_error_set(DJ_ERR_INVALID, "dj_gemm_bf16_packed_b", "NULL packing function");
    /* B is never read: a non-NULL stand-in and ldb = N pass the checks */
    dj_gemm_job g = {.plan = dj_gemm_plan_pick(1, M), .ta = ta != DJ_NO_TRANS, .M = M, .N = N, .K = K,
                     .alpha = alpha, .beta = beta, .A = A, .B = "", .bf16 = 1, .lda = lda, .ldb = N, .C = C,
                     .ldc = ldc, .pack_b16 = pack_b, .pack_ctx = ctx};
    return dj_gemm_run(pool, &g, "dj_gemm_bf16_packed_b");
}

/* Whether the AVX-512 packing helpers may run (any AVX-512 plan: they use
 * no bf16 instruction). */
static int dj_gemm_bf16_pack_avx512(int nr) {
#if defined(__x86_64__)
    return nr == 32 && dj_cpu_best_isa() == DJ_CPU_ISA_AVX512;
#else
    (void)nr;
    return 0;
#endif
}

void dj_gemm_bf16_pack_rows(const uint16_t *X, int64_t ld, int64_t n, int64_t kc, int nr, uint16_t *dst) {
    int64_t kp = (kc + 1) / 2, kcp = 2 * kp;
    int fast = dj_gemm_bf16_pack_avx512(nr);
    for (int64_t jr = 0; jr < n; jr += nr) {
        int m = n - jr < nr ? (int)(n - jr) : nr;
        const uint16_t *x = X + jr * ld;
        uint16_t *d = dst + jr * kcp; /* (kp, nr, 2) */
        int64_t q = 0;
#if defined(__x86_64__)
        if (fast) {
            dj_pack_rows32_avx512(x, ld * 2, m, kc / 2, nr, d); /* whole pairs are 32-bit words */
            q = kc / 2;
        }
#endif
        for (; q < kp; q++)
            for (int c = 0; c < nr; c++) {
                int two = 2 * q + 1 < kc;
                d[(q * nr + c) * 2] = c < m ? x[c * ld + 2 * q] : 0;
                d[(q * nr + c) * 2 + 1] = c < m && two ? x[c * ld + 2 * q + 1] : 0;
            }
    }
}

void dj_gemm_bf16_pack_lines(const uint16_t *L, int64_t ld, int64_t k, int64_t rows, int64_t nc, int64_t kc, int nr,
                             uint16_t *dst) {
    int64_t kcp = (kc + 1) / 2 * 2;
    int fast = dj_gemm_bf16_pack_avx512(nr);
    for (int64_t i = 0; i < rows; i += 2) {
        const uint16_t *s0 = L + i * ld, *s1 = i + 1 < rows ? s0 + ld : NULL;
        int64_t q = (k + i) / 2;
        for (int64_t jr = 0; jr < nc; jr += nr) {
            int n = nc - jr < nr ? (int)(nc - jr) : nr;
            uint16_t *d = dst + jr * kcp + q * 2 * nr;
#if defined(__x86_64__)
            if (fast) {
                dj_pack_interleave_avx512(s0 + jr, s1 ? s1 + jr : NULL, n, d);
                continue;
            }
#endif
            for (int c = 0; c < nr; c++) {
                d[2 * c] = c < n ? s0[jr + c] : 0;
                d[2 * c + 1] = c < n && s1 ? s1[jr + c] : 0;
            }
        }
    }
}
