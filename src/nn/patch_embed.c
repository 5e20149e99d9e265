/* patch_embed.c — tubelet / patch embedding for video transformers: a
 * conv3d with stride = kernel and no padding, flattened to tokens
 * (N, T'*H'*W', D). Non-overlapping patches make it one GEMM per sample:
 *   patches (L, K = C*kT*kH*kW) gathered from the input (parallel over rows),
 *   out_n (L, D) = patches @ W^T + b      — already in token layout,
 *   dW (D, K) += dout_n^T @ patches        (samples in order n = 0..N-1),
 *   dpatches = dout_n @ W, scattered back (each input cell in one patch). */
#include <stdio.h>
#include <string.h>

#include "dojo/gemm.h"
#include "nn/spatial_internal.h"

typedef struct dj_pe_geom {
    int64_t N, C, T, H, W, D, kT, kH, kW, Tp, Hp, Wp, L, K;
} dj_pe_geom;

static dj_status dj_pe_setup(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *out,
                             const char *out_name, dj_dtype dt, dj_pe_geom *g, const char *who) {
    char si[128], sw[128], where[160];
    if (!inp || !weight || inp->ndim != 5 || weight->ndim != 5 || inp->shape[1] != weight->shape[1])
        return dj_error_set(DJ_ERR_INVALID, who, "input %s (N,C,T,H,W) does not match weight %s (D,C,kT,kH,kW)",
                            inp ? dj_shape_string(inp->ndim, inp->shape, si, sizeof si) : "(missing)",
                            weight ? dj_shape_string(weight->ndim, weight->shape, sw, sizeof sw) : "(missing)");
    g->N = inp->shape[0], g->C = inp->shape[1], g->T = inp->shape[2], g->H = inp->shape[3], g->W = inp->shape[4];
    g->D = weight->shape[0], g->kT = weight->shape[2], g->kH = weight->shape[3], g->kW = weight->shape[4];
    if (g->C <= 0 || g->D <= 0 || g->kT <= 0 || g->kH <= 0 || g->kW <= 0 || g->kT > g->T || g->kH > g->H ||
        g->kW > g->W)
        return dj_error_set(DJ_ERR_INVALID, who, "patch of weight %s does not fit input %s",
                            dj_shape_string(5, weight->shape, sw, sizeof sw),
                            dj_shape_string(5, inp->shape, si, sizeof si));
    snprintf(where, sizeof where, "%s input", who);
    DJ_TRY(dj_tensor_expect(inp, dt, 5, inp->shape, where));
    snprintf(where, sizeof where, "%s weight", who);
    DJ_TRY(dj_tensor_expect(weight, dt, 5, weight->shape, where));
    g->Tp = g->T / g->kT, g->Hp = g->H / g->kH, g->Wp = g->W / g->kW;
    g->L = g->Tp * g->Hp * g->Wp;
    g->K = g->C * g->kT * g->kH * g->kW;
    int64_t os[3] = {g->N, g->L, g->D};
    snprintf(where, sizeof where, "%s %s", who, out_name);
    return dj_tensor_expect(out, dt, 3, os, where);
}

size_t dj_patch_embed_scratch_bytes(const dj_tensor *inp, const dj_tensor *weight) {
    if (!inp || !weight || inp->ndim != 5 || weight->ndim != 5 || weight->shape[2] <= 0 || weight->shape[3] <= 0 ||
        weight->shape[4] <= 0)
        return 0;
    int64_t L = (inp->shape[2] / weight->shape[2]) * (inp->shape[3] / weight->shape[3]) *
                (inp->shape[4] / weight->shape[4]);
    int64_t K = weight->shape[1] * weight->shape[2] * weight->shape[3] * weight->shape[4];
    return (size_t)(L * K) * sizeof(float);
}

typedef struct dj_pe_job {
    const dj_pe_geom *g;
    const float *x; /* sample n: (C, T, H, W) */
    float *dx;
    float *patches; /* (L, K) */
    const float *b;
    float *y, *db;
    const float *dy;
} dj_pe_job;

/* Gathers (dx == NULL) or scatter-adds (dx) patch rows [l0, l1). */
static void dj_pe_rows(void *arg, int64_t l0, int64_t l1, int thread) {
    const dj_pe_job *j = arg;
    const dj_pe_geom *g = j->g;
    (void)thread;
    for (int64_t l = l0; l < l1; l++) {
        int64_t tp = l / (g->Hp * g->Wp), hp = (l / g->Wp) % g->Hp, wp = l % g->Wp;
        float *row = j->patches + l * g->K;
        for (int64_t c = 0; c < g->C; c++)
            for (int64_t a = 0; a < g->kT; a++)
                for (int64_t b = 0; b < g->kH; b++) {
                    int64_t src = ((c * g->T + tp * g->kT + a) * g->H + hp * g->kH + b) * g->W + wp * g->kW;
                    float *p = row + ((c * g->kT + a) * g->kH + b) * g->kW;
                    if (j->dx) {
                        for (int64_t e = 0; e < g->kW; e++)
                            j->dx[src + e] += p[e];
                    } else {
                        memcpy(p, j->x + src, (size_t)g->kW * sizeof(float));
                    }
                }
    }
}

static void dj_pe_fill_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_pe_job *j = arg;
    (void)thread;
    for (int64_t r = r0; r < r1; r++)
        memcpy(j->y + r * j->g->D, j->b, (size_t)j->g->D * sizeof(float));
}

static void dj_pe_bias_cols(void *arg, int64_t c0, int64_t c1, int thread) {
    const dj_pe_job *j = arg;
    (void)thread;
    dj_colsum_add(j->dy, j->g->N * j->g->L, j->g->D, c0, c1, j->db);
}

static dj_status dj_pe_scratch(const dj_exec *ex, const dj_pe_geom *g, float **buf, const char *who) {
    size_t need = (size_t)(g->L * g->K) * sizeof(float);
    if (!ex || !ex->scratch || ex->scratch_bytes < need)
        return dj_error_set(DJ_ERR_INVALID, who, "scratch of %zu bytes given, %zu needed (dj_patch_embed_scratch_bytes)",
                            ex && ex->scratch ? ex->scratch_bytes : (size_t)0, need);
    *buf = ex->scratch;
    return DJ_OK;
}

dj_status dj_patch_embed_forward(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight,
                                 const dj_tensor *bias, dj_tensor *out) {
    static const char who[] = "dj_patch_embed_forward";
    dj_pe_geom g;
    float *patches = NULL;
    DJ_TRY(dj_pe_setup(inp, weight, out, "output", DJ_DTYPE_F32, &g, who));
    DJ_TRY(dj_expect_vec(bias, DJ_DTYPE_F32, g.D, 1, who, "bias"));
    DJ_TRY(dj_pe_scratch(ex, &g, &patches, who));
    dj_threadpool *pool = ex->pool;
    if (bias) {
        dj_pe_job j = {&g, NULL, NULL, NULL, bias->data, out->data, NULL, NULL};
        dj_parallel_for(pool, g.N * g.L, 64, dj_pe_fill_rows, &j);
    }
    for (int64_t n = 0; n < g.N; n++) {
        dj_pe_job j = {&g, (const float *)inp->data + n * g.C * g.T * g.H * g.W, NULL, patches, NULL, NULL, NULL, NULL};
        dj_parallel_for(pool, g.L, 4, dj_pe_rows, &j);
        DJ_TRY(dj_sgemm(pool, DJ_NO_TRANS, DJ_TRANS, g.L, g.D, g.K, 1.0f, patches, g.K, weight->data, g.K,
                        bias ? 1.0f : 0.0f, (float *)out->data + n * g.L * g.D, g.D));
    }
    return DJ_OK;
}

dj_status dj_patch_embed_backward(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight,
                                  const dj_tensor *dout, dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_patch_embed_backward";
    dj_pe_geom g;
    float *patches = NULL;
    DJ_TRY(dj_pe_setup(inp, weight, dout, "output gradient", DJ_DTYPE_F32, &g, who));
    if (dinp)
        DJ_TRY(dj_expect_like(dinp, DJ_DTYPE_F32, inp, who, "input gradient"));
    if (dweight)
        DJ_TRY(dj_expect_like(dweight, DJ_DTYPE_F32, weight, who, "weight gradient"));
    DJ_TRY(dj_expect_vec(dbias, DJ_DTYPE_F32, g.D, 1, who, "bias gradient"));
    DJ_TRY(dj_pe_scratch(ex, &g, &patches, who));
    dj_threadpool *pool = ex->pool;
    if (dbias) {
        dj_pe_job j = {&g, NULL, NULL, NULL, NULL, NULL, dbias->data, dout->data};
        dj_parallel_for(pool, g.D, 16, dj_pe_bias_cols, &j);
    }
    const int64_t S = g.C * g.T * g.H * g.W;
    for (int64_t n = 0; n < g.N; n++) {
        const float *dyn = (const float *)dout->data + n * g.L * g.D;
        if (dweight) {
            dj_pe_job j = {&g, (const float *)inp->data + n * S, NULL, patches, NULL, NULL, NULL, NULL};
            dj_parallel_for(pool, g.L, 4, dj_pe_rows, &j);
            DJ_TRY(dj_sgemm(pool, DJ_TRANS, DJ_NO_TRANS, g.D, g.K, g.L, 1.0f, dyn, g.D, patches, g.K, 1.0f,
                            dweight->data, g.K));
        }
        if (dinp) {
            DJ_TRY(dj_sgemm(pool, DJ_NO_TRANS, DJ_NO_TRANS, g.L, g.K, g.D, 1.0f, dyn, g.D, weight->data, g.K, 0.0f,
                            patches, g.K));
            dj_pe_job j = {&g, NULL, (float *)dinp->data + n * S, patches, NULL, NULL, NULL, NULL};
            dj_parallel_for(pool, g.L, 4, dj_pe_rows, &j);
        }
    }
    return DJ_OK;
}

/* ---------------------------------------------------------------- reference (double)
 * out[n, l, d] = b[d] + sum over the patch of l of w[d, ...] * x[...]. */

#define DJ_PE_REF_LOOP(g, BODY)                                                                         \
    for (int64_t n = 0; n < (g)->N; n++)                                                                \
        for (int64_t l = 0; l < (g)->L; l++)                                                            \
            for (int64_t d = 0; d < (g)->D; d++) {                                                      \
                int64_t yi = (n * (g)->L + l) * (g)->D + d;                                             \
                int64_t tp = l / ((g)->Hp * (g)->Wp), hp = (l / (g)->Wp) % (g)->Hp, wp = l % (g)->Wp;   \
                for (int64_t k = 0; k < (g)->K; k++) {                                                  \
                    int64_t c = k / ((g)->kT * (g)->kH * (g)->kW), r = k % ((g)->kT * (g)->kH * (g)->kW); \
                    int64_t a = r / ((g)->kH * (g)->kW), b = (r / (g)->kW) % (g)->kH, e = r % (g)->kW;  \
                    int64_t xi = (((n * (g)->C + c) * (g)->T + tp * (g)->kT + a) * (g)->H + hp * (g)->kH + b) * \
                                     (g)->W + wp * (g)->kW + e;                                         \
                    int64_t wi = d * (g)->K + k;                                                        \
                    BODY;                                                                               \
                }                                                                                       \
            }

dj_status dj_patch_embed_ref_forward(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                                     dj_tensor *out) {
    dj_pe_geom g;
    DJ_TRY(dj_pe_setup(inp, weight, out, "output", DJ_DTYPE_F64, &g, "dj_patch_embed_ref_forward"));
    const double *x = inp->data, *w = weight->data, *bb = bias ? bias->data : NULL;
    double *y = out->data;
    for (int64_t i = 0; i < dj_tensor_numel(out); i++)
        y[i] = bb ? bb[i % g.D] : 0.0;
    DJ_PE_REF_LOOP(&g, y[yi] += w[wi] * x[xi]);
    return DJ_OK;
}

dj_status dj_patch_embed_ref_backward(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *dout,
                                      dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    dj_pe_geom g;
    DJ_TRY(dj_pe_setup(inp, weight, dout, "output gradient", DJ_DTYPE_F64, &g, "dj_patch_embed_ref_backward"));
    const double *x = inp->data, *w = weight->data, *dy = dout->data;
    double *dx = dinp ? dinp->data : NULL, *dw = dweight ? dweight->data : NULL, *db = dbias ? dbias->data : NULL;
    if (db)
        for (int64_t i = 0; i < dj_tensor_numel(dout); i++)
            db[i % g.D] += dy[i];
    DJ_PE_REF_LOOP(&g, {
        if (dx)
            dx[xi] += dy[yi] * w[wi];
        if (dw)
            dw[wi] += dy[yi] * x[xi];
    });
    return DJ_OK;
}
