/* linear.c — torch.nn.functional.linear (x @ W^T + b) forward and backward:
 * three dj_sgemm calls and a column-parallel bias reduction. dj_sgemm never
 * splits its K dimension, so the weight gradient's sum over the rows of the
 * batch runs in a fixed order whatever the number of threads. Mixed
 * precision (*_bf16) at the end. */
#include <stdio.h>
#include <string.h>

#include "dojo/gemm.h"
#include "nn/bf16_internal.h"
#include "nn/spatial_internal.h"

typedef struct dj_linear_geom {
    int64_t M, In, Out;
} dj_linear_geom;

/* inp (..., In), weight (Out, In), other (..., Out) with inp's leading dims. */
static dj_status dj_linear_setup(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *other,
                                 const char *other_name, dj_dtype dt, dj_linear_geom *g, const char *who) {
    char si[128], sw[128], where[160];
    if (!inp || !weight || inp->ndim < 1 || weight->ndim != 2 || inp->shape[inp->ndim - 1] != weight->shape[1] ||
        weight->shape[1] <= 0)
        return dj_error_set(DJ_ERR_INVALID, who, "input %s does not match weight %s (Out, In)",
                            inp ? dj_shape_string(inp->ndim, inp->shape, si, sizeof si) : "(missing)",
                            weight ? dj_shape_string(weight->ndim, weight->shape, sw, sizeof sw) : "(missing)");
    snprintf(where, sizeof where, "%s input", who);
    DJ_TRY(dj_tensor_expect(inp, dt, inp->ndim, inp->shape, where));
    snprintf(where, sizeof where, "%s weight", who);
    DJ_TRY(dj_tensor_expect(weight, dt, 2, weight->shape, where));
    g->In = weight->shape[1], g->Out = weight->shape[0];
    g->M = dj_tensor_numel(inp) / g->In;
    int64_t want[DJ_MAX_DIMS];
    memcpy(want, inp->shape, sizeof want);
    want[inp->ndim - 1] = g->Out;
    snprintf(where, sizeof where, "%s %s", who, other_name);
    return dj_tensor_expect(other, dt, inp->ndim, want, where);
}

typedef struct dj_linear_job {
    const dj_linear_geom *g;
    const float *b, *dy;
    float *y, *db;
} dj_linear_job;

static void dj_linear_fill_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_linear_job *j = arg;
    (void)thread;
    for (int64_t r = r0; r < r1; r++)
        memcpy(j->y + r * j->g->Out, j->b, (size_t)j->g->Out * sizeof(float));
}

static void dj_linear_bias_cols(void *arg, int64_t c0, int64_t c1, int thread) {
    const dj_linear_job *j = arg;
    (void)thread;
    dj_colsum_add(j->dy, j->g->M, j->g->Out, c0, c1, j->db);
}

dj_status dj_linear_forward(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                            dj_tensor *out) {
    static const char who[] = "dj_linear_forward";
    dj_linear_geom g;
    DJ_TRY(dj_linear_setup(inp, weight, out, "output", DJ_DTYPE_F32, &g, who));
    DJ_TRY(dj_expect_vec(bias, DJ_DTYPE_F32, g.Out, 1, who, "bias"));
    dj_threadpool *pool = ex ? ex->pool : NULL;
    if (bias) {
        dj_linear_job j = {&g, bias->data, NULL, out->data, NULL};
        dj_parallel_for(pool, g.M, 64, dj_linear_fill_rows, &j);
    }
    return dj_sgemm(pool, DJ_NO_TRANS, DJ_TRANS, g.M, g.Out, g.In, 1.0f, inp->data, g.In, weight->data, g.In,
                    bias ? 1.0f : 0.0f, out->data, g.Out);
}

dj_status dj_linear_backward(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *dout,
                             dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_linear_backward";
    dj_linear_geom g;
    DJ_TRY(dj_linear_setup(inp, weight, dout, "output gradient", DJ_DTYPE_F32, &g, who));
    if (dinp)
        DJ_TRY(dj_expect_like(dinp, DJ_DTYPE_F32, inp, who, "input gradient"));
    if (dweight)
        DJ_TRY(dj_expect_like(dweight, DJ_DTYPE_F32, weight, who, "weight gradient"));
    DJ_TRY(dj_expect_vec(dbias, DJ_DTYPE_F32, g.Out, 1, who, "bias gradient"));
    dj_threadpool *pool = ex ? ex->pool : NULL;
    if (dinp)
        DJ_TRY(dj_sgemm(pool, DJ_NO_TRANS, DJ_NO_TRANS, g.M, g.In, g.Out, 1.0f, dout->data, g.Out, weight->data, g.In,
                        1.0f, dinp->data, g.In));
    if (dweight)
        DJ_TRY(dj_sgemm(pool, DJ_TRANS, DJ_NO_TRANS, g.Out, g.In, g.M, 1.0f, dout->data, g.Out, inp->data, g.In, 1.0f,
                        dweight->data, g.In));
    if (dbias) {
        dj_linear_job j = {&g, NULL, dout->data, NULL, dbias->data};
        dj_parallel_for(pool, g.Out, 16, dj_linear_bias_cols, &j);
    }
    return DJ_OK;
}

/* ---------------------------------------------------------------- reference (double) */

dj_status dj_linear_ref_forward(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out) {
    dj_linear_geom g;
    DJ_TRY(dj_linear_setup(inp, weight, out, "output", DJ_DTYPE_F64, &g, "dj_linear_ref_forward"));
    const double *x = inp->data, *w = weight->data, *b = bias ? bias->data : NULL;
    double *y = out->data;
    for (int64_t r = 0; r < g.M; r++)
        for (int64_t o = 0; o < g.Out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t i = 0; i < g.In; i++)
                acc += x[r * g.In + i] * w[o * g.In + i];
            y[r * g.Out + o] = acc;
        }
    return DJ_OK;
}

dj_status dj_linear_ref_backward(const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *dout,
                                 dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    dj_linear_geom g;
    DJ_TRY(dj_linear_setup(inp, weight, dout, "output gradient", DJ_DTYPE_F64, &g, "dj_linear_ref_backward"));
    const double *x = inp->data, *w = weight->data, *dy = dout->data;
    double *dx = dinp ? dinp->data : NULL, *dw = dweight ? dweight->data : NULL, *db = dbias ? dbias->data : NULL;
    for (int64_t r = 0; r < g.M; r++)
        for (int64_t o = 0; o < g.Out; o++) {
            double d = dy[r * g.Out + o];
            if (db)
                db[o] += d;
            for (int64_t i = 0; i < g.In; i++) {
                if (dx)
                    dx[r * g.In + i] += d * w[o * g.In + i];
                if (dw)
                    dw[o * g.In + i] += d * x[r * g.In + i];
            }
        }
    return DJ_OK;
}

/* ================================================================ mixed precision (bf16)
 * The three products on bf16 operands with float32 sums (dj_gemm_bf16).
 * Scratch: xb (M, In) bf16, then dyb (M, Out) bf16, each 64-byte aligned. */

static size_t dj_linear_bf16_parts(int64_t M, int64_t In, int64_t Out, size_t *dy_at) {
    size_t xb = dj_bf16_align((size_t)(M * In) * sizeof(uint16_t));
    *dy_at = xb;
    return xb + dj_bf16_align((size_t)(M * Out) * sizeof(uint16_t));
}

size_t dj_linear_scratch_bytes_bf16(const dj_tensor *inp, const dj_tensor *weight) {
    if (!inp || !weight || inp->ndim < 1 || weight->ndim != 2 || weight->shape[1] <= 0)
        return 0;
    size_t at;
    return dj_linear_bf16_parts(dj_tensor_numel(inp) / weight->shape[1], weight->shape[1], weight->shape[0], &at);
}

static dj_status dj_linear_bf16_scratch(const dj_exec *ex, const dj_linear_geom *g, const dj_tensor *weight,
                                        const dj_tensor *weight_bf16, uint16_t **xb, uint16_t **dyb,
                                        const char *who) {
    DJ_TRY(dj_expect_like(weight_bf16, DJ_DTYPE_BF16, weight, who, "bf16 weight"));
    size_t dy_at, need = dj_linear_bf16_parts(g->M, g->In, g->Out, &dy_at);
    if (!ex || !ex->scratch || ex->scratch_bytes < need)
        return dj_error_set(DJ_ERR_INVALID, who,
                            "scratch of %zu bytes given, %zu needed (dj_linear_scratch_bytes_bf16)",
                            ex && ex->scratch ? ex->scratch_bytes : (size_t)0, need);
    *xb = ex->scratch;
    *dyb = (uint16_t *)((char *)ex->scratch + dy_at);
    return DJ_OK;
}

dj_status dj_linear_forward_bf16(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight,
                                 const dj_tensor *weight_bf16, const dj_tensor *bias, dj_tensor *out) {
    static const char who[] = "dj_linear_forward_bf16";
    dj_linear_geom g;
    uint16_t *xb = NULL, *dyb = NULL;
    DJ_TRY(dj_linear_setup(inp, weight, out, "output", DJ_DTYPE_F32, &g, who));
    DJ_TRY(dj_expect_vec(bias, DJ_DTYPE_F32, g.Out, 1, who, "bias"));
    DJ_TRY(dj_linear_bf16_scratch(ex, &g, weight, weight_bf16, &xb, &dyb, who));
    dj_threadpool *pool = ex->pool;
    if (bias) {
        dj_linear_job j = {&g, bias->data, NULL, out->data, NULL};
        dj_parallel_for(pool, g.M, 64, dj_linear_fill_rows, &j);
    }
    dj_bf16_rows(pool, inp->data, g.In, g.M, g.In, xb);
    return dj_gemm_bf16(pool, DJ_NO_TRANS, DJ_TRANS, g.M, g.Out, g.In, 1.0f, xb, g.In, weight_bf16->data, g.In,
                        bias ? 1.0f : 0.0f, out->data, g.Out);
}

dj_status dj_linear_backward_bf16(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *weight,
                                  const dj_tensor *weight_bf16, const dj_tensor *dout, dj_tensor *dinp,
                                  dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_linear_backward_bf16";
    dj_linear_geom g;
    uint16_t *xb = NULL, *dyb = NULL;
    DJ_TRY(dj_linear_setup(inp, weight, dout, "output gradient", DJ_DTYPE_F32, &g, who));
    if (dinp)
        DJ_TRY(dj_expect_like(dinp, DJ_DTYPE_F32, inp, who, "input gradient"));
    if (dweight)
        DJ_TRY(dj_expect_like(dweight, DJ_DTYPE_F32, weight, who, "weight gradient"));
    DJ_TRY(dj_expect_vec(dbias, DJ_DTYPE_F32, g.Out, 1, who, "bias gradient"));
    DJ_TRY(dj_linear_bf16_scratch(ex, &g, weight, weight_bf16, &xb, &dyb, who));
    dj_threadpool *pool = ex->pool;
    dj_bf16_rows(pool, dout->data, g.Out, g.M, g.Out, dyb);
    if (dinp)
        DJ_TRY(dj_gemm_bf16(pool, DJ_NO_TRANS, DJ_NO_TRANS, g.M, g.In, g.Out, 1.0f, dyb, g.Out, weight_bf16->data,
                            g.In, 1.0f, dinp->data, g.In));
    if (dweight) {
        dj_bf16_rows(pool, inp->data, g.In, g.M, g.In, xb);
        DJ_TRY(dj_gemm_bf16(pool, DJ_TRANS, DJ_NO_TRANS, g.Out, g.In, g.M, 1.0f, dyb, g.Out, xb, g.In, 1.0f,
                            dweight->data, g.In));
    }
    if (dbias) {
        dj_linear_job j = {&g, NULL, dout->data, NULL, dbias->data};
        dj_parallel_for(pool, g.Out, 16, dj_linear_bias_cols, &j);
    }
    return DJ_OK;
}
