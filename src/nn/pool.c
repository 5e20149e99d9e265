/* pool.c — max, average and adaptive average pooling over (N,C,T,H,W),
 * forward and backward, float32, with PyTorch's semantics (max_pool3d,
 * avg_pool3d, adaptive_avg_pool3d). Every loop is parallel over the N*C
 * planes, each plane written by one thread: results never depend on the
 * number of threads. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dojo/cpu.h"
#include "nn/spatial_internal.h"

static const char *const dj_axis_name[3] = {"T", "H", "W"};

dj_status dj_pool_geom_init(const dj_pool3d_params *p, const int64_t in[5], dj_pool_geom *g, const char *who) {
    char si[128];
    dj_shape_string(5, in, si, sizeof si);
    memset(g, 0, sizeof *g);
    if (!p)
        return dj_error_set(DJ_ERR_INVALID, who, "missing pooling parameters");
    g->N = in[0], g->C = in[1], g->T = in[2], g->H = in[3], g->W = in[4];
    g->ceil_mode = p->ceil_mode != 0;
    g->exclude_pad = p->exclude_pad != 0;
    int64_t out[3];
    for (int a = 0; a < 3; a++) {
        int64_t len = in[2 + a];
        g->k[a] = p->kernel[a];
        g->s[a] = p->stride[a] == 0 ? p->kernel[a] : p->stride[a];
        g->pad[a] = p->padding[a];
        g->d[a] = p->dilation[a] == 0 ? 1 : p->dilation[a];
        if (g->k[a] <= 0 || g->s[a] <= 0 || g->d[a] <= 0 || g->pad[a] < 0)
            return dj_error_set(DJ_ERR_INVALID, who,
                                "axis %s: kernel %lld, stride %lld and dilation %lld must be positive, padding %lld >= 0",
                                dj_axis_name[a], (long long)g->k[a], (long long)g->s[a], (long long)g->d[a],
                                (long long)g->pad[a]);
        if (g->pad[a] > g->k[a] / 2)
            return dj_error_set(DJ_ERR_INVALID, who, "axis %s: padding %lld exceeds half the kernel %lld",
                                dj_axis_name[a], (long long)g->pad[a], (long long)g->k[a]);
        int64_t span = g->d[a] * (g->k[a] - 1) + 1;
        int64_t room = len + 2 * g->pad[a] - span;
        if (len <= 0 || room < 0)
            return dj_error_set(DJ_ERR_INVALID, who, "axis %s: window %lld larger than padded input %s",
                                dj_axis_name[a], (long long)span, si);
        int64_t o = (room + (g->ceil_mode ? g->s[a] - 1 : 0)) / g->s[a] + 1;
        if (g->ceil_mode && (o - 1) * g->s[a] >= len + g->pad[a])
            o--;
        out[a] = o;
    }
    g->To = out[0], g->Ho = out[1], g->Wo = out[2];
    return DJ_OK;
}

dj_status dj_pool3d_output_shape(const dj_pool3d_params *p, const int64_t in_shape[5], int64_t out_shape[5]) {
    dj_pool_geom g;
    DJ_TRY(dj_pool_geom_init(p, in_shape, &g, "dj_pool3d_output_shape"));
    out_shape[0] = g.N, out_shape[1] = g.C, out_shape[2] = g.To, out_shape[3] = g.Ho, out_shape[4] = g.Wo;
    return DJ_OK;
}

void dj_avgpool_window(const dj_pool_geom *g, int axis, int64_t in, int64_t o, int64_t *lo, int64_t *hi,
                       int64_t *padded_count) {
    int64_t start = o * g->s[axis] - g->pad[axis];
    int64_t end = start + g->k[axis];
    if (end > in + g->pad[axis])
        end = in + g->pad[axis];
    *padded_count = end - start;
    *lo = start < 0 ? 0 : start;
    *hi = end > in ? in : end;
}

/* Checks a 5-D input against the parameters and the output (and indices). */
static dj_status dj_pool_setup(const dj_pool3d_params *p, const dj_tensor *inp, const dj_tensor *out,
                               const dj_tensor *indices, dj_dtype dt, dj_pool_geom *g, const char *who) {
    char where[160];
    if (!inp || inp->ndim != 5) {
        char s[128];
        return dj_error_set(DJ_ERR_INVALID, who, "input %s must be 5-D (N,C,T,H,W)",
                            inp ? dj_shape_string(inp->ndim, inp->shape, s, sizeof s) : "(missing)");
    }
    snprintf(where, sizeof where, "%s input", who);
    DJ_TRY(dj_tensor_expect(inp, dt, 5, inp->shape, where));
    DJ_TRY(dj_pool_geom_init(p, inp->shape, g, who));
    int64_t os[5] = {g->N, g->C, g->To, g->Ho, g->Wo};
    snprintf(where, sizeof where, "%s output", who);
    DJ_TRY(dj_tensor_expect(out, dt, 5, os, where));
    if (indices) {
        snprintf(where, sizeof where, "%s indices", who);
        DJ_TRY(dj_tensor_expect(indices, DJ_DTYPE_I64, 5, os, where));
    }
    return DJ_OK;
}

typedef struct dj_pool_job {
    const dj_pool_geom *g;
    const float *x, *dy;
    float *y, *dx;
    int64_t *idx;
    const int64_t *cidx;
} dj_pool_job;

/* ---------------------------------------------------------------- max pool */

/* The input positions [*lo, *hi) (step: the dilation) of output o's taps
 * along `axis` (in positions), those in the padding dropped. */
static void dj_maxpool_taps(const dj_pool_geom *g, int axis, int64_t o, int64_t in, int64_t *lo, int64_t *hi) {
    int64_t a = o * g->s[axis] - g->pad[axis], b = a + g->d[axis] * (g->k[axis] - 1) + 1;
    while (a < 0)
        a += g->d[axis];
    *lo = a, *hi = b > in ? in : b;
}

/* Output (to, ho, wo) of one plane, taps clipped to the input: PyTorch's
 * rule, (v > best || isnan(v)), as selects, not branches, taps in (t, h, w)
 * order (the first maximum wins). */
static void dj_maxpool_one(const dj_pool_geom *g, const float *x, int64_t to, int64_t ho, int64_t wo, float *y,
                           int64_t *ix) {
    int64_t t0, t1, h0, h1, w0, w1;
    dj_maxpool_taps(g, 0, to, g->T, &t0, &t1);
    dj_maxpool_taps(g, 1, ho, g->H, &h0, &h1);
    dj_maxpool_taps(g, 2, wo, g->W, &w0, &w1);
    float best = -INFINITY;
    int64_t arg_best = (t0 * g->H + h0) * g->W + w0;
    for (int64_t it = t0; it < t1; it += g->d[0])
        for (int64_t ih = h0; ih < h1; ih += g->d[1]) {
            const int64_t row = (it * g->H + ih) * g->W;
            for (int64_t iw = w0; iw < w1; iw += g->d[2]) {
                float v = x[row + iw];
                int take = (v > best) | (v != v);
                best = take ? v : best;
                arg_best = take ? row + iw : arg_best;
            }
        }
    int64_t o = (to * g->Ho + ho) * g->Wo + wo;
    y[o] = best;
    ix[o] = arg_best;
}

/* Outputs wo in [a, b) of row (to, ho), whose windows lie inside the row
 * (no clipping along W): the row's taps listed once, then the CPU's
 * widest build of the run kernel (pw_rows.inc: taps outermost, outputs
 * innermost, vectorised). Same taps, order and rule as dj_maxpool_one, so
 * the same results. 0 when the window has more than DJ_MAXPOOL_TAPS taps
 * (the caller then goes output by output). SlowFast's stem pool, (1,3,3)
 * s(1,2,2) over 8x64x8x112x112 on 2 threads (`dojo bench ops`): forward
 * 59-63 -> 19-22 ms against output-by-output loops. */
enum { DJ_MAXPOOL_TAPS = 512 };
typedef void (*dj_maxpool_run_fn)(const float *x, const int64_t *taps, int ntaps, int64_t sw, int64_t n, float *y,
                                  int64_t *ix);
#define DJ_MAXPOOL_RUN_DECL(sfx)                                                                                       \
    void dj_maxpool_run##sfx(const float *x, const int64_t *taps, int ntaps, int64_t sw, int64_t n, float *y,          \
                             int64_t *ix);
DJ_MAXPOOL_RUN_DECL(_generic)
#if defined(__x86_64__)
DJ_MAXPOOL_RUN_DECL(_avx2)
DJ_MAXPOOL_RUN_DECL(_avx512)
#endif
#undef DJ_MAXPOOL_RUN_DECL

static dj_maxpool_run_fn dj_maxpool_run_select(void) {
#if defined(__x86_64__)
    dj_cpu_isa isa = dj_cpu_best_isa();
    if (isa == DJ_CPU_ISA_AVX512)
        return dj_maxpool_run_avx512;
    if (isa == DJ_CPU_ISA_AVX2)
        return dj_maxpool_run_avx2;
#endif
    return dj_maxpool_run_generic;
}

static int dj_maxpool_run(dj_maxpool_run_fn run, const dj_pool_geom *g, const float *x, int64_t to, int64_t ho, int64_t a,
                          int64_t b, float *y, int64_t *ix) {
    int64_t t0, t1, h0, h1;
    dj_maxpool_taps(g, 0, to, g->T, &t0, &t1);
    dj_maxpool_taps(g, 1, ho, g->H, &h0, &h1);
    int64_t taps[DJ_MAXPOOL_TAPS];
    int n = 0;
    const int64_t w0 = a * g->s[2] - g->pad[2];
    for (int64_t it = t0; it < t1; it += g->d[0])
        for (int64_t ih = h0; ih < h1; ih += g->d[1])
            for (int64_t k = 0; k < g->k[2]; k++) {
                if (n == DJ_MAXPOOL_TAPS)
                    return 0;
                taps[n++] = (it * g->H + ih) * g->W + w0 + k * g->d[2];
            }
    if (n == 0)
        return 0;
    int64_t o = (to * g->Ho + ho) * g->Wo + a;
    run(x, taps, n, g->s[2], b - a, y + o, ix + o);
    return 1;
}

static void dj_maxpool_fwd_planes(void *arg, int64_t p0, int64_t p1, int thread) {
    const dj_pool_job *j = arg;
    const dj_pool_geom *g = j->g;
    const dj_maxpool_run_fn run_fn = dj_maxpool_run_select();
    (void)thread;
    const int64_t S = g->T * g->H * g->W, P = g->To * g->Ho * g->Wo;
    /* outputs whose windows need no clipping along W: [a, b) */
    int64_t a = 0, b = g->Wo;
    while (a < g->Wo && a * g->s[2] - g->pad[2] < 0)
        a++;
    while (b > a && (b - 1) * g->s[2] - g->pad[2] + g->d[2] * (g->k[2] - 1) >= g->W)
        b--;
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *x = j->x + pl * S;
        float *y = j->y + pl * P;
        int64_t *ix = j->idx + pl * P;
        for (int64_t to = 0; to < g->To; to++)
            for (int64_t ho = 0; ho < g->Ho; ho++) {
                int run = b > a && dj_maxpool_run(run_fn, g, x, to, ho, a, b, y, ix);
                for (int64_t wo = 0; wo < g->Wo; wo++)
                    if (!run || wo < a || wo >= b)
                        dj_maxpool_one(g, x, to, ho, wo, y, ix);
            }
    }
}

dj_status dj_maxpool3d_forward(const dj_exec *ex, const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out,
                               dj_tensor *indices) {
    static const char who[] = "dj_maxpool3d_forward";
    dj_pool_geom g;
    if (!indices)
        return dj_error_set(DJ_ERR_INVALID, who, "the indices tensor is required (the backward reads it)");
    DJ_TRY(dj_pool_setup(p, inp, out, indices, DJ_DTYPE_F32, &g, who));
    dj_pool_job j = {&g, inp->data, NULL, out->data, NULL, indices->data, NULL};
    dj_parallel_for(ex ? ex->pool : NULL, g.N * g.C, 1, dj_maxpool_fwd_planes, &j);
    return DJ_OK;
}

static void dj_maxpool_bwd_planes(void *arg, int64_t p0, int64_t p1, int thread) {
    const dj_pool_job *j = arg;
    const dj_pool_geom *g = j->g;
    (void)thread;
    const int64_t S = g->T * g->H * g->W, P = g->To * g->Ho * g->Wo;
    for (int64_t pl = p0; pl < p1; pl++) {
        float *dx = j->dx + pl * S;
        const float *dy = j->dy + pl * P;
        const int64_t *ix = j->cidx + pl * P;
        for (int64_t o = 0; o < P; o++)
            dx[ix[o]] += dy[o];
    }
}

/* dinp (N,C,T,H,W) is given by its own shape; dout and indices must match
 * the pooled shape of it. */
static dj_status dj_pool_bwd_setup(const dj_pool3d_params *p, const dj_tensor *dout, const dj_tensor *dinp,
                                   const dj_tensor *indices, dj_dtype dt, dj_pool_geom *g, const char *who) {
    return dj_pool_setup(p, dinp, dout, indices, dt, g, who);
}

dj_status dj_maxpool3d_backward(const dj_exec *ex, const dj_pool3d_params *p, const dj_tensor *indices,
                                const dj_tensor *dout, dj_tensor *dinp) {
    static const char who[] = "dj_maxpool3d_backward";
    dj_pool_geom g;
    if (!indices)
        return dj_error_set(DJ_ERR_INVALID, who, "the indices tensor of the forward is required");
    if (!dinp)
        return DJ_OK;
    DJ_TRY(dj_pool_bwd_setup(p, dout, dinp, indices, DJ_DTYPE_F32, &g, who));
    const int64_t S = g.T * g.H * g.W, n = dj_tensor_numel(indices);
    const int64_t *ix = indices->data;
    for (int64_t i = 0; i < n; i++)
        if (ix[i] < 0 || ix[i] >= S)
            return dj_error_set(DJ_ERR_RANGE, who, "index %lld at %lld outside the plane of %lld cells",
                                (long long)ix[i], (long long)i, (long long)S);
    dj_pool_job j = {&g, NULL, dout->data, NULL, dinp->data, NULL, ix};
    dj_parallel_for(ex ? ex->pool : NULL, g.N * g.C, 1, dj_maxpool_bwd_planes, &j);
    return DJ_OK;
}

/* ---------------------------------------------------------------- average pool */

static dj_status dj_avgpool_check(const dj_pool3d_params *p, const char *who) {
    for (int a = 0; a < 3; a++)
        if (p && p->dilation[a] > 1)
            return dj_error_set(DJ_ERR_INVALID, who, "average pooling has no dilation (got %d,%d,%d)", p->dilation[0],
                                p->dilation[1], p->dilation[2]);
    return DJ_OK;
}

/* BODY sees the clipped window [t0,t1)x[h0,h1)x[w0,w1), the output index o
 * and the PyTorch divisor div. */
#define DJ_AVG_WALK(g, BODY)                                                                            \
    for (int64_t to = 0; to < (g)->To; to++) {                                                          \
        int64_t t0, t1, ct;                                                                             \
        dj_avgpool_window((g), 0, (g)->T, to, &t0, &t1, &ct);                                           \
        for (int64_t ho = 0; ho < (g)->Ho; ho++) {                                                      \
            int64_t h0, h1, ch;                                                                         \
            dj_avgpool_window((g), 1, (g)->H, ho, &h0, &h1, &ch);                                       \
            for (int64_t wo = 0; wo < (g)->Wo; wo++) {                                                  \
                int64_t w0, w1, cw;                                                                     \
                dj_avgpool_window((g), 2, (g)->W, wo, &w0, &w1, &cw);                                   \
                int64_t o = (to * (g)->Ho + ho) * (g)->Wo + wo;                                         \
                int64_t cnt = (g)->exclude_pad ? (t1 - t0) * (h1 - h0) * (w1 - w0) : ct * ch * cw;      \
                float div = cnt > 0 ? (float)cnt : 1.0f;                                                \
                BODY;                                                                                   \
            }                                                                                           \
        }                                                                                               \
    }

static void dj_avgpool_fwd_planes(void *arg, int64_t p0, int64_t p1, int thread) {
    const dj_pool_job *j = arg;
    const dj_pool_geom *g = j->g;
    (void)thread;
    const int64_t S = g->T * g->H * g->W, P = g->To * g->Ho * g->Wo;
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *x = j->x + pl * S;
        float *y = j->y + pl * P;
        DJ_AVG_WALK(g, {
            float acc = 0.0f;
            for (int64_t it = t0; it < t1; it++)
                for (int64_t ih = h0; ih < h1; ih++) {
                    const float *row = x + (it * g->H + ih) * g->W;
                    for (int64_t iw = w0; iw < w1; iw++)
                        acc += row[iw];
                }
            y[o] = acc / div;
        });
    }
}

static void dj_avgpool_bwd_planes(void *arg, int64_t p0, int64_t p1, int thread) {
    const dj_pool_job *j = arg;
    const dj_pool_geom *g = j->g;
    (void)thread;
    const int64_t S = g->T * g->H * g->W, P = g->To * g->Ho * g->Wo;
    for (int64_t pl = p0; pl < p1; pl++) {
        float *dx = j->dx + pl * S;
        const float *dy = j->dy + pl * P;
        DJ_AVG_WALK(g, {
            float v = dy[o] / div;
            for (int64_t it = t0; it < t1; it++)
                for (int64_t ih = h0; ih < h1; ih++) {
                    float *row = dx + (it * g->H + ih) * g->W;
                    for (int64_t iw = w0; iw < w1; iw++)
                        row[iw] += v;
                }
        });
    }
}

dj_status dj_avgpool3d_forward(const dj_exec *ex, const dj_pool3d_params *p, const dj_tensor *inp, dj_tensor *out) {
    static const char who[] = "dj_avgpool3d_forward";
    dj_pool_geom g;
    DJ_TRY(dj_avgpool_check(p, who));
    DJ_TRY(dj_pool_setup(p, inp, out, NULL, DJ_DTYPE_F32, &g, who));
    dj_pool_job j = {&g, inp->data, NULL, out->data, NULL, NULL, NULL};
    dj_parallel_for(ex ? ex->pool : NULL, g.N * g.C, 1, dj_avgpool_fwd_planes, &j);
    return DJ_OK;
}

dj_status dj_avgpool3d_backward(const dj_exec *ex, const dj_pool3d_params *p, const dj_tensor *dout,
                                dj_tensor *dinp) {
    static const char who[] = "dj_avgpool3d_backward";
    dj_pool_geom g;
    if (!dinp)
        return DJ_OK;
    DJ_TRY(dj_avgpool_check(p, who));
    DJ_TRY(dj_pool_bwd_setup(p, dout, dinp, NULL, DJ_DTYPE_F32, &g, who));
    dj_pool_job j = {&g, NULL, dout->data, NULL, dinp->data, NULL, NULL};
    dj_parallel_for(ex ? ex->pool : NULL, g.N * g.C, 1, dj_avgpool_bwd_planes, &j);
    return DJ_OK;
}

/* ---------------------------------------------------------------- adaptive average pool */

typedef struct dj_adapt_job {
    int64_t in[3], out[3];
    const float *x, *dy;
    float *y, *dx;
} dj_adapt_job;

static dj_status dj_adapt_setup(const dj_tensor *inp, const dj_tensor *out, dj_dtype dt, dj_adapt_job *j,
                                const char *who) {
    char where[160], si[128], so[128];
    if (!inp || !out || inp->ndim != 5 || out->ndim != 5)
        return dj_error_set(DJ_ERR_INVALID, who, "input %s and output %s must both be 5-D (N,C,T,H,W)",
                            inp ? dj_shape_string(inp->ndim, inp->shape, si, sizeof si) : "(missing)",
                            out ? dj_shape_string(out->ndim, out->shape, so, sizeof so) : "(missing)");
    snprintf(where, sizeof where, "%s input", who);
    DJ_TRY(dj_tensor_expect(inp, dt, 5, inp->shape, where));
    int64_t want[5] = {inp->shape[0], inp->shape[1], -1, -1, -1};
    snprintf(where, sizeof where, "%s output", who);
    DJ_TRY(dj_tensor_expect(out, dt, 5, want, where));
    for (int a = 0; a < 3; a++) {
        j->in[a] = inp->shape[2 + a];
        j->out[a] = out->shape[2 + a];
        if (j->in[a] <= 0 || j->out[a] <= 0)
            return dj_error_set(DJ_ERR_INVALID, who, "empty axis %s: input %s, output %s", dj_axis_name[a],
                                dj_shape_string(5, inp->shape, si, sizeof si),
                                dj_shape_string(5, out->shape, so, sizeof so));
    }
    return DJ_OK;
}

static int dj_adapt_global(const dj_adapt_job *j) { return j->out[0] == 1 && j->out[1] == 1 && j->out[2] == 1; }

#define DJ_ADAPT_WALK(j, BODY)                                                                        \
    for (int64_t to = 0; to < (j)->out[0]; to++) {                                                    \
        int64_t t0 = dj_adaptive_start(to, (j)->in[0], (j)->out[0]), t1 = dj_adaptive_end(to, (j)->in[0], (j)->out[0]); \
        for (int64_t ho = 0; ho < (j)->out[1]; ho++) {                                                \
            int64_t h0 = dj_adaptive_start(ho, (j)->in[1], (j)->out[1]), h1 = dj_adaptive_end(ho, (j)->in[1], (j)->out[1]); \
            for (int64_t wo = 0; wo < (j)->out[2]; wo++) {                                            \
                int64_t w0 = dj_adaptive_start(wo, (j)->in[2], (j)->out[2]), w1 = dj_adaptive_end(wo, (j)->in[2], (j)->out[2]); \
                int64_t o = (to * (j)->out[1] + ho) * (j)->out[2] + wo;                               \
                float div = (float)((t1 - t0) * (h1 - h0) * (w1 - w0));                               \
                BODY;                                                                                 \
            }                                                                                         \
        }                                                                                             \
    }

static void dj_adapt_fwd_planes(void *arg, int64_t p0, int64_t p1, int thread) {
    const dj_adapt_job *j = arg;
    (void)thread;
    const int64_t S = j->in[0] * j->in[1] * j->in[2], P = j->out[0] * j->out[1] * j->out[2];
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *x = j->x + pl * S;
        float *y = j->y + pl * P;
        if (dj_adapt_global(j)) {
            y[0] = (float)(dj_sum_f32(x, S, 0.0f, NULL) / (double)S);
            continue;
        }
        DJ_ADAPT_WALK(j, {
            float acc = 0.0f;
            for (int64_t it = t0; it < t1; it++)
                for (int64_t ih = h0; ih < h1; ih++) {
                    const float *row = x + (it * j->in[1] + ih) * j->in[2];
                    for (int64_t iw = w0; iw < w1; iw++)
                        acc += row[iw];
                }
            y[o] = acc / div;
        });
    }
}

static void dj_adapt_bwd_planes(void *arg, int64_t p0, int64_t p1, int thread) {
    const dj_adapt_job *j = arg;
    (void)thread;
    const int64_t S = j->in[0] * j->in[1] * j->in[2], P = j->out[0] * j->out[1] * j->out[2];
    for (int64_t pl = p0; pl < p1; pl++) {
        float *dx = j->dx + pl * S;
        const float *dy = j->dy + pl * P;
        if (dj_adapt_global(j)) {
            float v = dy[0] / (float)S;
            for (int64_t q = 0; q < S; q++)
                dx[q] += v;
            continue;
        }
        DJ_ADAPT_WALK(j, {
            float v = dy[o] / div;
            for (int64_t it = t0; it < t1; it++)
                for (int64_t ih = h0; ih < h1; ih++) {
                    float *row = dx + (it * j->in[1] + ih) * j->in[2];
                    for (int64_t iw = w0; iw < w1; iw++)
                        row[iw] += v;
                }
        });
    }
}

dj_status dj_adaptive_avgpool3d_forward(const dj_exec *ex, const dj_tensor *inp, dj_tensor *out) {
    dj_adapt_job j;
    DJ_TRY(dj_adapt_setup(inp, out, DJ_DTYPE_F32, &j, "dj_adaptive_avgpool3d_forward"));
    j.x = inp->data, j.y = out->data, j.dy = NULL, j.dx = NULL;
    dj_parallel_for(ex ? ex->pool : NULL, inp->shape[0] * inp->shape[1], 1, dj_adapt_fwd_planes, &j);
    return DJ_OK;
}

dj_status dj_adaptive_avgpool3d_backward(const dj_exec *ex, const dj_tensor *dout, dj_tensor *dinp) {
    dj_adapt_job j;
    if (!dinp)
        return DJ_OK;
    DJ_TRY(dj_adapt_setup(dinp, dout, DJ_DTYPE_F32, &j, "dj_adaptive_avgpool3d_backward"));
    j.x = NULL, j.y = NULL, j.dy = dout->data, j.dx = dinp->data;
    dj_parallel_for(ex ? ex->pool : NULL, dinp->shape[0] * dinp->shape[1], 1, dj_adapt_bwd_planes, &j);
    return DJ_OK;
}
