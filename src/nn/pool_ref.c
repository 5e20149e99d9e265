/* pool_ref.c — naive double-precision pooling references: every window
 * position of the padded input is visited and tested against the rules of
 * PyTorch directly, without the clipping arithmetic of pool.c. */
#include <math.h>
#include <stdio.h>

#include "nn/spatial_internal.h"

static dj_status dj_pool_ref_setup(const dj_pool3d_params *p, const dj_tensor *inp, const dj_tensor *out,
                                   const dj_tensor *indices, dj_pool_geom *g, const char *who) {
    if (!inp || inp->ndim != 5 || inp->dtype != DJ_DTYPE_F64)
        return dj_error_set(DJ_ERR_INVALID, who, "input must be a 5-D float64 tensor");
    DJ_TRY(dj_pool_geom_init(p, inp->shape, g, who));
    int64_t os[5] = {g->N, g->C, g->To, g->Ho, g->Wo};
    DJ_TRY(dj_tensor_expect(out, DJ_DTYPE_F64, 5, os, who));
    if (indices)
        DJ_TRY(dj_tensor_expect(indices, DJ_DTYPE_I64, 5, os, who));
    return DJ_OK;
}

/* Loops over every output element (pl = plane, o = index in the plane) and
 * every window offset; BODY sees the input coordinates it, ih, iw. */
#define DJ_POOL_REF_LOOP(g, OUTER, BODY, AFTER)                                           \
    for (int64_t pl = 0; pl < (g)->N * (g)->C; pl++)                                      \
        for (int64_t to = 0; to < (g)->To; to++)                                          \
            for (int64_t ho = 0; ho < (g)->Ho; ho++)                                      \
                for (int64_t wo = 0; wo < (g)->Wo; wo++) {                                \
                    int64_t o = ((pl * (g)->To + to) * (g)->Ho + ho) * (g)->Wo + wo;      \
                    OUTER;                                                                \
                    for (int64_t a = 0; a < (g)->k[0]; a++)                               \
                        for (int64_t b = 0; b < (g)->k[1]; b++)                           \
                            for (int64_t c = 0; c < (g)->k[2]; c++) {                     \
                                int64_t it = to * (g)->s[0] - (g)->pad[0] + a * (g)->d[0]; \
                                int64_t ih = ho * (g)->s[1] - (g)->pad[1] + b * (g)->d[1]; \
                                int64_t iw = wo * (g)->s[2] - (g)->pad[2] + c * (g)->d[2]; \
                                BODY;                                                     \
                            }                                                             \
                    AFTER;                                                                \
                }

static int dj_inside(const dj_pool_geom *g, int64_t it, int64_t ih, int64_t iw) {
    return it >= 0 && it < g->T && ih >= 0 && ih < g->H && iw >= 0 && iw < g->W;
}

/* Inside the padded input, as PyTorch's count_include_pad counts. */
static int dj_inside_padded(const dj_pool_geom *g, int64_t it, int64_t ih, int64_t iw) {
    return it >= -g->pad[0] && it < g->T + g->pad[0] && ih >= -g->pad[1] && ih < g->H + g->pad[1] &&
           iw >= -g->pad[2] && iw < g->W + g->pad[2];
}

dj_status dj_maxpool3d_ref_forward(const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out,
                                   dj_tensor *indices) {
    dj_pool_geom g;
    DJ_TRY(dj_pool_ref_setup(p, inp, out, indices, &g, "dj_maxpool3d_ref_forward"));
    const double *x = inp->data;
    double *y = out->data;
    int64_t *ix = indices ? indices->data : NULL;
    const int64_t S = g.T * g.H * g.W;
    double best = 0;
    int64_t arg = -1;
    DJ_POOL_REF_LOOP(&g, (best = -INFINITY, arg = -1), {
        if (!dj_inside(&g, it, ih, iw))
            continue;
        int64_t q = (it * g.H + ih) * g.W + iw;
        double v = x[pl * S + q];
        if (arg < 0 || v > best || isnan(v)) { /* PyTorch: the last NaN of the window wins */
            best = v;
            arg = q;
        }
    }, {
        y[o] = best;
        if (ix)
            ix[o] = arg;
    });
    return DJ_OK;
}

dj_status dj_maxpool3d_ref_backward(const dj_pool3d_params *p, const dj_tensor *indices, const dj_tensor *dout,
                                    dj_tensor *dinp) {
    dj_pool_geom g;
    DJ_TRY(dj_pool_ref_setup(p, dinp, dout, indices, &g, "dj_maxpool3d_ref_backward"));
    const int64_t S = g.T * g.H * g.W, P = g.To * g.Ho * g.Wo;
    const int64_t *ix = indices->data;
    const double *dy = dout->data;
    double *dx = dinp->data;
    for (int64_t i = 0; i < dj_tensor_numel(dout); i++) {
        if (ix[i] < 0 || ix[i] >= S)
            return dj_error_set(DJ_ERR_RANGE, "dj_maxpool3d_ref_backward", "index %lld out of range",
                                (long long)ix[i]);
        dx[(i / P) * S + ix[i]] += dy[i];
    }
    return DJ_OK;
}

static dj_status dj_avg_ref_check(const dj_pool_geom *g) {
    if (g->d[0] != 1 || g->d[1] != 1 || g->d[2] != 1)
        return dj_error_set(DJ_ERR_INVALID, "dj_avgpool3d_ref", "average pooling has no dilation");
    return DJ_OK;
}

dj_status dj_avgpool3d_ref_forward(const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out) {
    dj_pool_geom g;
    DJ_TRY(dj_pool_ref_setup(p, inp, out, NULL, &g, "dj_avgpool3d_ref_forward"));
    DJ_TRY(dj_avg_ref_check(&g));
    const double *x = inp->data;
    double *y = out->data;
    const int64_t S = g.T * g.H * g.W;
    double sum = 0;
    int64_t cnt_in = 0, cnt_pad = 0;
    DJ_POOL_REF_LOOP(&g, (sum = 0, cnt_in = 0, cnt_pad = 0), {
        cnt_pad += dj_inside_padded(&g, it, ih, iw);
        if (!dj_inside(&g, it, ih, iw))
            continue;
        cnt_in++;
        sum += x[pl * S + (it * g.H + ih) * g.W + iw];
    }, y[o] = sum / (double)(g.exclude_pad ? cnt_in : cnt_pad));
    return DJ_OK;
}

/* Adds v to every input cell of the window of output (to, ho, wo). */
static void dj_avg_ref_spread(const dj_pool_geom *g, double *dx, int64_t to, int64_t ho, int64_t wo, double v) {
    for (int64_t a = 0; a < g->k[0]; a++)
        for (int64_t b = 0; b < g->k[1]; b++)
            for (int64_t c = 0; c < g->k[2]; c++) {
                int64_t it = to * g->s[0] - g->pad[0] + a, ih = ho * g->s[1] - g->pad[1] + b;
                int64_t iw = wo * g->s[2] - g->pad[2] + c;
                if (dj_inside(g, it, ih, iw))
                    dx[(it * g->H + ih) * g->W + iw] += v;
            }
}

dj_status dj_avgpool3d_ref_backward(const dj_pool3d_params *p, const dj_tensor *dout, dj_tensor *dinp) {
    dj_pool_geom g;
    DJ_TRY(dj_pool_ref_setup(p, dinp, dout, NULL, &g, "dj_avgpool3d_ref_backward"));
    DJ_TRY(dj_avg_ref_check(&g));
    const double *dy = dout->data;
    double *dx = dinp->data;
    const int64_t S = g.T * g.H * g.W;
    int64_t cnt_in = 0, cnt_pad = 0;
    /* first pass counts the divisor, second spreads the gradient */
    DJ_POOL_REF_LOOP(&g, (cnt_in = 0, cnt_pad = 0), {
        cnt_pad += dj_inside_padded(&g, it, ih, iw);
        cnt_in += dj_inside(&g, it, ih, iw);
    }, dj_avg_ref_spread(&g, dx + pl * S, to, ho, wo, dy[o] / (double)(g.exclude_pad ? cnt_in : cnt_pad)));
    return DJ_OK;
}

static dj_status dj_adapt_ref_check(const dj_tensor *inp, const dj_tensor *out, const char *who) {
    if (!inp || !out || inp->ndim != 5 || out->ndim != 5 || inp->dtype != DJ_DTYPE_F64 ||
        out->dtype != DJ_DTYPE_F64 || inp->shape[0] != out->shape[0] || inp->shape[1] != out->shape[1])
        return dj_error_set(DJ_ERR_INVALID, who, "input and output must be 5-D float64 with the same N and C");
    for (int a = 2; a < 5; a++)
        if (inp->shape[a] <= 0 || out->shape[a] <= 0)
            return dj_error_set(DJ_ERR_INVALID, who, "empty axis");
    return DJ_OK;
}

/* Calls BODY for every (output o, input q) pair with q in o's window and
 * the window size cnt. The windows are computed with floating point floor
 * and ceil, independently of the integer formulas of pool.c. */
#define DJ_ADAPT_REF_LOOP(inp, out, BODY)                                                                    \
    for (int64_t pl = 0; pl < (inp)->shape[0] * (inp)->shape[1]; pl++)                                      \
        for (int64_t o = 0; o < (out)->shape[2] * (out)->shape[3] * (out)->shape[4]; o++) {                  \
            int64_t oc[3] = {o / ((out)->shape[3] * (out)->shape[4]), (o / (out)->shape[4]) % (out)->shape[3], \
                             o % (out)->shape[4]};                                                           \
            int64_t lo[3], hi[3];                                                                            \
            for (int a_ = 0; a_ < 3; a_++) {                                                                 \
                double in_ = (double)(inp)->shape[2 + a_], out_ = (double)(out)->shape[2 + a_];              \
                lo[a_] = (int64_t)floor((double)oc[a_] * in_ / out_);                                        \
                hi[a_] = (int64_t)ceil((double)(oc[a_] + 1) * in_ / out_);                                   \
            }                                                                                                \
            int64_t cnt = (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]);                               \
            for (int64_t it = lo[0]; it < hi[0]; it++)                                                       \
                for (int64_t ih = lo[1]; ih < hi[1]; ih++)                                                   \
                    for (int64_t iw = lo[2]; iw < hi[2]; iw++) {                                             \
                        int64_t q = ((pl * (inp)->shape[2] + it) * (inp)->shape[3] + ih) * (inp)->shape[4] + iw; \
                        int64_t oi = pl * (out)->shape[2] * (out)->shape[3] * (out)->shape[4] + o;           \
                        BODY;                                                                                \
                    }                                                                                        \
        }

dj_status dj_adaptive_avgpool3d_ref_forward(const dj_tensor *inp, dj_tensor *out) {
    DJ_TRY(dj_adapt_ref_check(inp, out, "dj_adaptive_avgpool3d_ref_forward"));
    const double *x = inp->data;
    double *y = out->data;
    for (int64_t i = 0; i < dj_tensor_numel(out); i++)
        y[i] = 0.0;
    DJ_ADAPT_REF_LOOP(inp, out, y[oi] += x[q] / (double)cnt);
    return DJ_OK;
}

dj_status dj_adaptive_avgpool3d_ref_backward(const dj_tensor *dout, dj_tensor *dinp) {
    DJ_TRY(dj_adapt_ref_check(dinp, dout, "dj_adaptive_avgpool3d_ref_backward"));
    const double *dy = dout->data;
    double *dx = dinp->data;
    DJ_ADAPT_REF_LOOP(dinp, dout, dx[q] += dy[oi] / (double)cnt);
    return DJ_OK;
}
