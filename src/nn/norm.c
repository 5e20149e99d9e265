/* norm.c — batch norm (training and eval, running statistics), the fused
 * eval batch-norm + ReLU, training batch-norm + ReLU whose output the
 * backward pass recomputes instead of keeping, layer norm and group norm, forward and backward,
 * float32 data with double accumulators for the statistics.
 * Parallel over channels (batch norm), rows (layer norm) or (n, group)
 * (group norm); the parameter gradients are reduced per channel / column by
 * one thread in a fixed order, so results never depend on the thread count. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/spatial_internal.h"

dj_batchnorm_params dj_batchnorm_defaults(void) {
    dj_batchnorm_params p = {1, 0.1f, 1e-5f};
    return p;
}

static dj_status dj_nc_check(const dj_tensor *inp, const char *who) {
    char s[128];
    if (!inp || inp->ndim < 2 || inp->dtype != DJ_DTYPE_F32)
        return dj_error_set(DJ_ERR_INVALID, who, "input %s must be a float32 (N,C,...) tensor",
                            inp ? dj_shape_string(inp->ndim, inp->shape, s, sizeof s) : "(missing)");
    return DJ_OK;
}

enum { DJ_SUM_LANES = 8, DJ_SUM_BLOCK = 512 }; /* as dj_sum_f32 (spatial_check.c) */

static double dj_sum(const float *x, int64_t n, float m, double *dev) { return dj_sum_f32(x, n, m, dev); }

/* sum dy[i] into *sdy and sum dy[i] * (x[i] - m) into *sdyx (added). */
static void dj_sum_grad(const float *dy, const float *x, int64_t n, float m, double *sdy, double *sdyx) {
    for (int64_t b0 = 0; b0 < n; b0 += DJ_SUM_BLOCK) {
        const int64_t len = n - b0 < DJ_SUM_BLOCK ? n - b0 : DJ_SUM_BLOCK;
        const float *g = dy + b0, *p = x + b0;
        float a[DJ_SUM_LANES] = {0}, q[DJ_SUM_LANES] = {0};
        int64_t i = 0;
        for (; i + DJ_SUM_LANES <= len; i += DJ_SUM_LANES)
            for (int k = 0; k < DJ_SUM_LANES; k++) {
                a[k] += g[i + k];
                q[k] += g[i + k] * (p[i + k] - m);
            }
        for (; i < len; i++) {
            a[0] += g[i];
            q[0] += g[i] * (p[i] - m);
        }
        for (int k = 0; k < DJ_SUM_LANES; k++)
            *sdy += a[k], *sdyx += q[k];
    }
}

/* ---------------------------------------------------------------- batch norm */

typedef struct dj_bn_job {
    const dj_batchnorm_params *p;
    int64_t N, C, R; /* R: cells per channel per sample */
    const float *x, *w, *b, *dy, *mean_in, *invstd_in;
    float *y, *rm, *rv, *mean, *invstd, *dx, *dw, *db;
    float *scale, *shift;     /* forward: each channel's affine map, saved (or NULL) */
    const float *scale_in, *shift_in; /* recomputation: the saved map */
    int relu;                 /* 0: none; 1: max(0, v) (eval); 2: as dj_act_forward's ReLU of a stored v */
    /* synchronised statistics (one chunk of channels at a time): channel
     * c0 + i of the chunk uses acc[i] (forward) or acc[2i], acc[2i+1] (backward) */
    int64_t c0;
    double *acc;
    const double *gmean; /* the common mean of each channel of the chunk */
    double count;        /* values per channel over all replicas */
} dj_bn_job;

/* Writes channel c's outputs y = (x - m) * scale + shift (subtracting
 * first keeps the precision of inputs whose mean is large against their
 * spread), through the ReLU j->relu names. The forward pass and the
 * recomputation of a stored-nothing output both run this one function, so
 * they write the same bits. */
static __attribute__((noinline)) void dj_bn_apply_rows(const dj_bn_job *j, int64_t c, float m, float scale,
                                                       float shift) {
    for (int64_t n = 0; n < j->N; n++) {
        const float *x = j->x + (n * j->C + c) * j->R;
        float *y = j->y + (n * j->C + c) * j->R;
        if (j->relu == 1) {
            for (int64_t r = 0; r < j->R; r++) {
                float v = (x[r] - m) * scale + shift;
                y[r] = v > 0.0f ? v : 0.0f;
            }
        } else if (j->relu == 2) {
            /* batch norm's stored v, then ReLU's z = v + 0 (-0 becomes +0), NaN kept */
            for (int64_t r = 0; r < j->R; r++) {
                float v = (x[r] - m) * scale + shift, z = v + 0.0f;
                y[r] = z < 0.0f ? 0.0f : z;
            }
        } else {
            for (int64_t r = 0; r < j->R; r++)
                y[r] = (x[r] - m) * scale + shift;
        }
    }
}

/* Saves channel c's statistics (and affine map) and writes its outputs. */
static void dj_bn_apply(const dj_bn_job *j, int64_t c, double mean, double invstd) {
    if (j->mean)
        j->mean[c] = (float)mean, j->invstd[c] = (float)invstd;
    const float m = (float)mean, scale = (float)(invstd * (j->w ? j->w[c] : 1.0f));
    const float shift = j->b ? j->b[c] : 0.0f;
    if (j->scale)
        j->scale[c] = scale, j->shift[c] = shift;
    dj_bn_apply_rows(j, c, m, scale, shift);
}

static void dj_bn_fwd_channels(void *arg, int64_t c0, int64_t c1, int thread) {
    const dj_bn_job *j = arg;
    (void)thread;
    const int64_t M = j->N * j->R;
    for (int64_t c = c0; c < c1; c++) {
        double mean, invstd;
        if (j->p->training) {
            double s = 0.0, ss = 0.0, part;
            for (int64_t n = 0; n < j->N; n++)
                s += dj_sum(j->x + (n * j->C + c) * j->R, j->R, 0.0f, NULL);
            mean = s / (double)M;
            for (int64_t n = 0; n < j->N; n++) {
                dj_sum(j->x + (n * j->C + c) * j->R, j->R, (float)mean, &part);
                ss += part;
            }
            double var = ss / (double)M;
            invstd = 1.0 / sqrt(var + j->p->eps);
            if (j->rm) {
                double m = j->p->momentum;
                j->rm[c] = (float)((1.0 - m) * j->rm[c] + m * mean);
                j->rv[c] = (float)((1.0 - m) * j->rv[c] + m * ss / (double)(M - 1));
            }
        } else {
            mean = j->rm[c];
            invstd = 1.0 / sqrt((double)j->rv[c] + j->p->eps);
        }
        dj_bn_apply(j, c, mean, invstd);
    }
}

static dj_status dj_bn_forward_setup(dj_bn_job *jp, const dj_batchnorm_params *p, const dj_tensor *inp,
                                     const dj_tensor *weight, const dj_tensor *bias, dj_tensor *running_mean,
                                     dj_tensor *running_var, dj_tensor *out, dj_tensor *save_mean,
                                     dj_tensor *save_invstd, int synced, const char *who) {
    dj_bn_job j = {0};
    if (!p)
        return dj_error_set(DJ_ERR_INVALID, who, "missing parameters");
    DJ_TRY(dj_nc_check(inp, who));
    dj_nc_rest(inp, &j.N, &j.C, &j.R);
    DJ_TRY(dj_expect_like(out, DJ_DTYPE_F32, inp, who, "output"));
    DJ_TRY(dj_expect_vec(weight, DJ_DTYPE_F32, j.C, 1, who, "weight"));
    DJ_TRY(dj_expect_vec(bias, DJ_DTYPE_F32, j.C, 1, who, "bias"));
    int need_running = !p->training;
    DJ_TRY(dj_expect_vec(running_mean, DJ_DTYPE_F32, j.C, !need_running, who, "running_mean"));
    DJ_TRY(dj_expect_vec(running_var, DJ_DTYPE_F32, j.C, !need_running, who, "running_var"));
    if ((running_mean == NULL) != (running_var == NULL))
        return dj_error_set(DJ_ERR_INVALID, who, "give both running_mean and running_var or neither");
    DJ_TRY(dj_expect_vec(save_mean, DJ_DTYPE_F32, j.C, 0, who, "save_mean"));
    DJ_TRY(dj_expect_vec(save_invstd, DJ_DTYPE_F32, j.C, 0, who, "save_invstd"));
    /* as PyTorch: "Expected more than 1 value per channel when training" (synced: over all replicas) */
    if (p->training && !synced && j.N * j.R < 2) {
        char s[128];
        return dj_error_set(DJ_ERR_INVALID, who, "training needs more than one value per channel, input %s has %lld",
                            dj_shape_string(inp->ndim, inp->shape, s, sizeof s), (long long)(j.N * j.R));
    }
    j.p = p;
    j.x = inp->data, j.w = weight ? weight->data : NULL, j.b = bias ? bias->data : NULL;
    j.y = out->data, j.rm = running_mean ? running_mean->data : NULL, j.rv = running_var ? running_var->data : NULL;
    j.mean = save_mean->data, j.invstd = save_invstd->data;
    *jp = j;
    return DJ_OK;
}

dj_status dj_batchnorm_forward(const dj_exec *ex, const dj_batchnorm_params *p, const dj_tensor *inp,
                               const dj_tensor *weight, const dj_tensor *bias, dj_tensor *running_mean,
                               dj_tensor *running_var, dj_tensor *out, dj_tensor *save_mean,
                               dj_tensor *save_invstd) {
    dj_bn_job j;
    DJ_TRY(dj_bn_forward_setup(&j, p, inp, weight, bias, running_mean, running_var, out, save_mean, save_invstd, 0,
                               "dj_batchnorm_forward"));
    dj_parallel_for(ex ? ex->pool : NULL, j.C, 1, dj_bn_fwd_channels, &j);
    return DJ_OK;
}

/* ---- synchronised batch norm: statistics over every replica's rows ---- */

enum { DJ_BN_SYNC_CHANNELS = 512 }; /* channels per exchange: the sums live on the stack */

/* acc[i] = this replica's sum of channel c0 + i */
static void dj_bn_sync_sums(void *arg, int64_t i0, int64_t i1, int thread) {
    const dj_bn_job *j = arg;
    (void)thread;
    for (int64_t i = i0; i < i1; i++) {
        double s = 0.0;
        for (int64_t n = 0; n < j->N; n++)
            s += dj_sum(j->x + (n * j->C + j->c0 + i) * j->R, j->R, 0.0f, NULL);
        j->acc[i] = s;
    }
}

/* acc[i] = this replica's sum of squared deviations from the common mean */
static void dj_bn_sync_devs(void *arg, int64_t i0, int64_t i1, int thread) {
    const dj_bn_job *j = arg;
    (void)thread;
    for (int64_t i = i0; i < i1; i++) {
        double ss = 0.0, part;
        for (int64_t n = 0; n < j->N; n++) {
            dj_sum(j->x + (n * j->C + j->c0 + i) * j->R, j->R, (float)j->gmean[i], &part);
            ss += part;
        }
        j->acc[i] = ss;
    }
}

/* Running statistics and outputs from the common mean and deviations. */
static void dj_bn_sync_apply(void *arg, int64_t i0, int64_t i1, int thread) {
    const dj_bn_job *j = arg;
    (void)thread;
    for (int64_t i = i0; i < i1; i++) {
        const int64_t c = j->c0 + i;
        const double mean = j->gmean[i], ss = j->acc[i];
        const double invstd = 1.0 / sqrt(ss / j->count + j->p->eps);
        if (j->rm) {
            double m = j->p->momentum;
            j->rm[c] = (float)((1.0 - m) * j->rm[c] + m * mean);
            j->rv[c] = (float)((1.0 - m) * j->rv[c] + m * ss / (j->count - 1.0));
        }
        dj_bn_apply(j, c, mean, invstd);
    }
}

static dj_status dj_bn_sync_sum(const dj_stats_sync *sync, double *buf, size_t n, const char *who) {
    dj_status s = sync->sum(sync->ctx, buf, n);
    if (s != DJ_OK)
        dj_error_prefix("%s: synchronising statistics", who);
    return s;
}

/* The forward pass of a set-up job, its statistics over every replica. */
static dj_status dj_bn_forward_synced(const dj_exec *ex, const dj_stats_sync *sync, dj_bn_job j, const char *who) {
    dj_threadpool *pool = ex ? ex->pool : NULL;
    double acc[DJ_BN_SYNC_CHANNELS + 1], mean[DJ_BN_SYNC_CHANNELS];
    j.acc = acc;
    j.gmean = mean;
    for (j.c0 = 0; j.c0 < j.C; j.c0 += DJ_BN_SYNC_CHANNELS) {
        const int64_t n = j.C - j.c0 < DJ_BN_SYNC_CHANNELS ? j.C - j.c0 : DJ_BN_SYNC_CHANNELS;
        dj_parallel_for(pool, n, 1, dj_bn_sync_sums, &j);
        acc[n] = (double)(j.N * j.R); /* the counts travel with the sums: shares may differ */
        DJ_TRY(dj_bn_sync_sum(sync, acc, (size_t)n + 1, who));
        j.count = acc[n];
        if (!(j.count > 1))
            return dj_error_set(DJ_ERR_INVALID, who, "%.0f values per channel over all replicas: need more than 1",
                                j.count);
        for (int64_t i = 0; i < n; i++)
            mean[i] = acc[i] / j.count;
        dj_parallel_for(pool, n, 1, dj_bn_sync_devs, &j);
        DJ_TRY(dj_bn_sync_sum(sync, acc, (size_t)n, who));
        dj_parallel_for(pool, n, 1, dj_bn_sync_apply, &j);
    }
    return DJ_OK;
}

/* The forward pass of a set-up job: over this replica's rows, or every
 * replica's with sync in training. */
static dj_status dj_bn_forward_run(const dj_exec *ex, const dj_stats_sync *sync, const dj_bn_job *j,
                                   const char *who) {
    if (sync && j->p->training) {
        if (!sync->sum)
            return dj_error_set(DJ_ERR_INVALID, who, "the statistics hook has no sum function");
        return dj_bn_forward_synced(ex, sync, *j, who);
    }
    dj_parallel_for(ex ? ex->pool : NULL, j->C, 1, dj_bn_fwd_channels, (void *)j);
    return DJ_OK;
}

dj_status dj_batchnorm_forward_sync(const dj_exec *ex, const dj_batchnorm_params *p, const dj_stats_sync *sync,
                                    const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                                    dj_tensor *running_mean, dj_tensor *running_var, dj_tensor *out,
                                    dj_tensor *save_mean, dj_tensor *save_invstd) {
    static const char who[] = "dj_batchnorm_forward";
    if (!sync || !p || !p->training)
        return dj_batchnorm_forward(ex, p, inp, weight, bias, running_mean, running_var, out, save_mean, save_invstd);
    dj_bn_job j;
    DJ_TRY(dj_bn_forward_setup(&j, p, inp, weight, bias, running_mean, running_var, out, save_mean, save_invstd, 1,
                               who));
    return dj_bn_forward_run(ex, sync, &j, who);
}

dj_status dj_batchnorm_relu_eval_forward(const dj_exec *ex, float eps, const dj_tensor *inp, const dj_tensor *weight,
                                         const dj_tensor *bias, const dj_tensor *running_mean,
                                         const dj_tensor *running_var, dj_tensor *out) {
    static const char who[] = "dj_batchnorm_relu_eval_forward";
    dj_batchnorm_params p = {0, 0.0f, eps};
    dj_bn_job j = {0};
    DJ_TRY(dj_nc_check(inp, who));
    dj_nc_rest(inp, &j.N, &j.C, &j.R);
    DJ_TRY(dj_expect_like(out, DJ_DTYPE_F32, inp, who, "output"));
    DJ_TRY(dj_expect_vec(weight, DJ_DTYPE_F32, j.C, 1, who, "weight"));
    DJ_TRY(dj_expect_vec(bias, DJ_DTYPE_F32, j.C, 1, who, "bias"));
    DJ_TRY(dj_expect_vec(running_mean, DJ_DTYPE_F32, j.C, 0, who, "running_mean"));
    DJ_TRY(dj_expect_vec(running_var, DJ_DTYPE_F32, j.C, 0, who, "running_var"));
    j.p = &p, j.relu = 1;
    j.x = inp->data, j.w = weight ? weight->data : NULL, j.b = bias ? bias->data : NULL, j.y = out->data;
    j.rm = running_mean->data, j.rv = running_var->data;
    dj_parallel_for(ex ? ex->pool : NULL, j.C, 1, dj_bn_fwd_channels, &j);
    return DJ_OK;
}

/* dx of channel c from the sums of dy and dy * xhat over M values. */
static void dj_bn_bwd_apply(const dj_bn_job *j, int64_t c, double sdy, double sdyx, double M) {
    const double mean = j->mean_in[c], invstd = j->invstd_in[c];
    const double k = invstd * (j->w ? j->w[c] : 1.0f);
    /* dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)) in training */
    const double mdy = j->p->training ? sdy / M : 0.0;
    const double mdyx = j->p->training ? sdyx / M * invstd : 0.0;
    const float a = (float)k, b = (float)(-k * mdy), s = (float)(-k * mdyx), m = (float)mean;
    const int in_place = j->dx == j->dy; /* dx is dy's buffer: write 0 + the gradient */
    for (int64_t n = 0; n < j->N; n++) {
        const float *x = j->x + (n * j->C + c) * j->R, *dy = j->dy + (n * j->C + c) * j->R;
        float *dx = j->dx + (n * j->C + c) * j->R;
        /* in place, one pointer reads and writes (two that alias would keep
         * the loop from vectorising) */
        if (in_place) {
            for (int64_t r = 0; r < j->R; r++)
                dx[r] = 0.0f + (a * dx[r] + s * (x[r] - m) + b);
        } else {
            for (int64_t r = 0; r < j->R; r++)
                dx[r] += a * dy[r] + s * (x[r] - m) + b;
        }
    }
}

static void dj_bn_bwd_channels(void *arg, int64_t c0, int64_t c1, int thread) {
    const dj_bn_job *j = arg;
    (void)thread;
    const int64_t M = j->N * j->R;
    for (int64_t c = c0; c < c1; c++) {
        const double mean = j->mean_in[c], invstd = j->invstd_in[c];
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t n = 0; n < j->N; n++)
            dj_sum_grad(j->dy + (n * j->C + c) * j->R, j->x + (n * j->C + c) * j->R, j->R, (float)mean, &sdy, &sdyx);
        sdyx *= invstd; /* sum of dy * xhat */
        if (j->dw)
            j->dw[c] += (float)sdyx;
        if (j->db)
            j->db[c] += (float)sdy;
        if (j->dx)
            dj_bn_bwd_apply(j, c, sdy, sdyx, (double)M);
    }
}

static dj_status dj_bn_backward_setup(dj_bn_job *jp, const dj_batchnorm_params *p, const dj_tensor *inp,
                                      const dj_tensor *weight, const dj_tensor *save_mean,
                                      const dj_tensor *save_invstd, const dj_tensor *dout, dj_tensor *dinp,
                                      dj_tensor *dweight, dj_tensor *dbias, const char *who) {
    dj_bn_job j = {0};
    if (!p)
        return dj_error_set(DJ_ERR_INVALID, who, "missing parameters");
    DJ_TRY(dj_nc_check(inp, who));
    dj_nc_rest(inp, &j.N, &j.C, &j.R);
    DJ_TRY(dj_expect_like(dout, DJ_DTYPE_F32, inp, who, "output gradient"));
    if (dinp)
        DJ_TRY(dj_expect_like(dinp, DJ_DTYPE_F32, inp, who, "input gradient"));
    DJ_TRY(dj_expect_vec(weight, DJ_DTYPE_F32, j.C, 1, who, "weight"));
    DJ_TRY(dj_expect_vec(save_mean, DJ_DTYPE_F32, j.C, 0, who, "save_mean"));
    DJ_TRY(dj_expect_vec(save_invstd, DJ_DTYPE_F32, j.C, 0, who, "save_invstd"));
    DJ_TRY(dj_expect_vec(dweight, DJ_DTYPE_F32, j.C, 1, who, "weight gradient"));
    DJ_TRY(dj_expect_vec(dbias, DJ_DTYPE_F32, j.C, 1, who, "bias gradient"));
    j.p = p;
    j.x = inp->data, j.w = weight ? weight->data : NULL, j.dy = dout->data;
    j.mean_in = save_mean->data, j.invstd_in = save_invstd->data;
    j.dx = dinp ? dinp->data : NULL, j.dw = dweight ? dweight->data : NULL, j.db = dbias ? dbias->data : NULL;
    *jp = j;
    return DJ_OK;
}

dj_status dj_batchnorm_backward(const dj_exec *ex, const dj_batchnorm_params *p, const dj_tensor *inp,
                                const dj_tensor *weight, const dj_tensor *save_mean, const dj_tensor *save_invstd,
                                const dj_tensor *dout, dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    dj_bn_job j;
    DJ_TRY(dj_bn_backward_setup(&j, p, inp, weight, save_mean, save_invstd, dout, dinp, dweight, dbias,
                                "dj_batchnorm_backward"));
    dj_parallel_for(ex ? ex->pool : NULL, j.C, 1, dj_bn_bwd_channels, &j);
    return DJ_OK;
}

/* acc[2i], acc[2i+1] = this replica's sums of dy and dy * xhat for channel
 * c0 + i; the weight and bias gradients take them as they are. */
static void dj_bn_sync_grad_sums(void *arg, int64_t i0, int64_t i1, int thread) {
    const dj_bn_job *j = arg;
    (void)thread;
    for (int64_t i = i0; i < i1; i++) {
        const int64_t c = j->c0 + i;
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t n = 0; n < j->N; n++)
            dj_sum_grad(j->dy + (n * j->C + c) * j->R, j->x + (n * j->C + c) * j->R, j->R, (float)j->mean_in[c],
                        &sdy, &sdyx);
        sdyx *= j->invstd_in[c];
        if (j->dw)
            j->dw[c] += (float)sdyx;
        if (j->db)
            j->db[c] += (float)sdy;
        j->acc[2 * i] = sdy;
        j->acc[2 * i + 1] = sdyx;
    }
}

static void dj_bn_sync_grad_apply(void *arg, int64_t i0, int64_t i1, int thread) {
    const dj_bn_job *j = arg;
    (void)thread;
    for (int64_t i = i0; i < i1; i++)
        dj_bn_bwd_apply(j, j->c0 + i, j->acc[2 * i], j->acc[2 * i + 1], j->count);
}

/* The backward pass of a set-up job, its sums over every replica. */
static dj_status dj_bn_backward_synced(const dj_exec *ex, const dj_stats_sync *sync, dj_bn_job j, const char *who) {
    if (!sync->sum)
        return dj_error_set(DJ_ERR_INVALID, who, "the statistics hook has no sum function");
    dj_threadpool *pool = ex ? ex->pool : NULL;
    double acc[2 * DJ_BN_SYNC_CHANNELS + 1];
    j.acc = acc;
    for (j.c0 = 0; j.c0 < j.C; j.c0 += DJ_BN_SYNC_CHANNELS) {
        const int64_t n = j.C - j.c0 < DJ_BN_SYNC_CHANNELS ? j.C - j.c0 : DJ_BN_SYNC_CHANNELS;
        dj_parallel_for(pool, n, 1, dj_bn_sync_grad_sums, &j);
        acc[2 * n] = (double)(j.N * j.R);
        DJ_TRY(dj_bn_sync_sum(sync, acc, 2 * (size_t)n + 1, who)); /* every replica takes part, dx wanted or not */
        j.count = acc[2 * n];
        if (j.dx)
            dj_parallel_for(pool, n, 1, dj_bn_sync_grad_apply, &j);
    }
    return DJ_OK;
}

dj_status dj_batchnorm_backward_sync(const dj_exec *ex, const dj_batchnorm_params *p, const dj_stats_sync *sync,
                                     const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *save_mean,
                                     const dj_tensor *save_invstd, const dj_tensor *dout, dj_tensor *dinp,
                                     dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_batchnorm_backward";
    if (!sync || !p || !p->training)
        return dj_batchnorm_backward(ex, p, inp, weight, save_mean, save_invstd, dout, dinp, dweight, dbias);
    dj_bn_job j;
    DJ_TRY(dj_bn_backward_setup(&j, p, inp, weight, save_mean, save_invstd, dout, dinp, dweight, dbias, who));
    return dj_bn_backward_synced(ex, sync, j, who);
}

/* ---- batch norm + ReLU whose output is recomputed, not stored ---- */

dj_status dj_batchnorm_relu_forward(const dj_exec *ex, const dj_batchnorm_params *p, const dj_stats_sync *sync,
                                    const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *bias,
                                    dj_tensor *running_mean, dj_tensor *running_var, dj_tensor *out,
                                    dj_tensor *save_mean, dj_tensor *save_invstd, dj_tensor *save_scale,
                                    dj_tensor *save_shift) {
    static const char who[] = "dj_batchnorm_relu_forward";
    dj_bn_job j;
    DJ_TRY(dj_bn_forward_setup(&j, p, inp, weight, bias, running_mean, running_var, out, save_mean, save_invstd,
                               sync != NULL, who));
    DJ_TRY(dj_expect_vec(save_scale, DJ_DTYPE_F32, j.C, 0, who, "save_scale"));
    DJ_TRY(dj_expect_vec(save_shift, DJ_DTYPE_F32, j.C, 0, who, "save_shift"));
    j.relu = 2;
    j.scale = save_scale->data, j.shift = save_shift->data;
    return dj_bn_forward_run(ex, sync, &j, who);
}

static void dj_bn_recompute_channels(void *arg, int64_t c0, int64_t c1, int thread) {
    const dj_bn_job *j = arg;
    (void)thread;
    for (int64_t c = c0; c < c1; c++)
        dj_bn_apply_rows(j, c, j->mean_in[c], j->scale_in[c], j->shift_in[c]);
}

dj_status dj_batchnorm_relu_recompute(const dj_exec *ex, const dj_tensor *inp, const dj_tensor *save_mean,
                                      const dj_tensor *save_scale, const dj_tensor *save_shift, dj_tensor *out) {
    static const char who[] = "dj_batchnorm_relu_recompute";
    dj_bn_job j = {0};
    DJ_TRY(dj_nc_check(inp, who));
    dj_nc_rest(inp, &j.N, &j.C, &j.R);
    DJ_TRY(dj_expect_like(out, DJ_DTYPE_F32, inp, who, "output"));
    DJ_TRY(dj_expect_vec(save_mean, DJ_DTYPE_F32, j.C, 0, who, "save_mean"));
    DJ_TRY(dj_expect_vec(save_scale, DJ_DTYPE_F32, j.C, 0, who, "save_scale"));
    DJ_TRY(dj_expect_vec(save_shift, DJ_DTYPE_F32, j.C, 0, who, "save_shift"));
    j.relu = 2;
    j.x = inp->data, j.y = out->data;
    j.mean_in = save_mean->data, j.scale_in = save_scale->data, j.shift_in = save_shift->data;
    dj_parallel_for(ex ? ex->pool : NULL, j.C, 1, dj_bn_recompute_channels, &j);
    return DJ_OK;
}

typedef struct dj_relu_mask_job {
    const float *y;
    float *dy;
} dj_relu_mask_job;

/* dy = the gradient through the ReLU whose output is y, the bits
 * dj_act_backward adds to a zeroed buffer: 0 + (y > 0 ? dy : 0) */
static void dj_relu_mask_range(void *arg, int64_t i0, int64_t i1, int thread) {
    const dj_relu_mask_job *j = arg;
    (void)thread;
    float *dy = j->dy;
    /* the select as a bit mask (all ones where y > 0, else +0.0f), which
     * vectorises where a float ?: under trapping math does not */
    for (int64_t i = i0; i < i1; i++) {
        uint32_t bits;
        float g;
        memcpy(&bits, &dy[i], sizeof bits);
        bits &= 0u - (uint32_t)(j->y[i] > 0.0f);
        memcpy(&g, &bits, sizeof g);
        dy[i] = 0.0f + g;
    }
}

dj_status dj_batchnorm_relu_backward(const dj_exec *ex, const dj_batchnorm_params *p, const dj_stats_sync *sync,
                                     const dj_tensor *inp, const dj_tensor *weight, const dj_tensor *save_mean,
                                     const dj_tensor *save_invstd, const dj_tensor *out, dj_tensor *dout,
                                     dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_batchnorm_relu_backward";
    dj_bn_job j;
    DJ_TRY(dj_bn_backward_setup(&j, p, inp, weight, save_mean, save_invstd, dout, dinp, dweight, dbias, who));
    DJ_TRY(dj_expect_like(out, DJ_DTYPE_F32, inp, who, "output"));
    dj_relu_mask_job m = {out->data, dout->data};
    dj_parallel_for(ex ? ex->pool : NULL, dj_tensor_numel(inp), 1 << 14, dj_relu_mask_range, &m);
    if (sync && p->training)
        return dj_bn_backward_synced(ex, sync, j, who);
    dj_parallel_for(ex ? ex->pool : NULL, j.C, 1, dj_bn_bwd_channels, &j);
    return DJ_OK;
}

/* ---------------------------------------------------------------- layer norm and group norm
 * Both normalise contiguous rows: layer norm rows of D values, group norm
 * rows of (C/G)*rest values for each (n, g). The affine parameter of
 * element i of a row is indexed by i / aff_div % aff_mod + aff_base. */

typedef struct dj_rn_job {
    int64_t rows, D;   /* rows of D contiguous values */
    int64_t G, Cg, R;  /* group norm: groups, channels per group, cells per channel; layer norm: G = 0 */
    float eps;
    const float *x, *w, *b, *dy, *mean_in, *invstd_in;
    float *y, *mean, *invstd, *dx, *dw, *db;
} dj_rn_job;

/* Affine parameter index of element i of row r. */
static inline int64_t dj_rn_param(const dj_rn_job *j, int64_t r, int64_t i) {
    return j->G ? (r % j->G) * j->Cg + i / j->R : i;
}

static void dj_rn_fwd_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_rn_job *j = arg;
    (void)thread;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * j->D;
        float *y = j->y + r * j->D;
        double ss;
        const double mean = dj_sum(x, j->D, 0.0f, NULL) / (double)j->D;
        dj_sum(x, j->D, (float)mean, &ss);
        const double invstd = 1.0 / sqrt(ss / (double)j->D + j->eps);
        j->mean[r] = (float)mean, j->invstd[r] = (float)invstd;
        const float m = (float)mean, is = (float)invstd;
        for (int64_t i = 0; i < j->D; i++) {
            int64_t k = dj_rn_param(j, r, i);
            y[i] = (x[i] - m) * is * (j->w ? j->w[k] : 1.0f) + (j->b ? j->b[k] : 0.0f);
        }
    }
}

static void dj_rn_bwd_rows(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_rn_job *j = arg;
    (void)thread;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * j->D, *dy = j->dy + r * j->D;
        float *dx = j->dx + r * j->D;
        const double mean = j->mean_in[r], invstd = j->invstd_in[r];
        double sg = 0.0, sgx = 0.0; /* sums of g = dy * w and g * xhat */
        for (int64_t i = 0; i < j->D; i++) {
            double g = dy[i] * (double)(j->w ? j->w[dj_rn_param(j, r, i)] : 1.0f);
            sg += g;
            sgx += g * (x[i] - mean) * invstd;
        }
        const double mg = sg / (double)j->D, mgx = sgx / (double)j->D;
        for (int64_t i = 0; i < j->D; i++) {
            double g = dy[i] * (double)(j->w ? j->w[dj_rn_param(j, r, i)] : 1.0f);
            double xh = (x[i] - mean) * invstd;
            dx[i] += (float)(invstd * (g - mg - xh * mgx));
        }
    }
}

/* Layer norm parameter gradients: columns [d0, d1), summing rows in order. */
static void dj_ln_param_cols(void *arg, int64_t d0, int64_t d1, int thread) {
    enum { CHUNK = 64 }; /* columns summed together, row by row (contiguous reads) */
    const dj_rn_job *j = arg;
    (void)thread;
    for (int64_t c0 = d0; c0 < d1; c0 += CHUNK) {
        const int64_t n = d1 - c0 < CHUNK ? d1 - c0 : CHUNK;
        double sw[CHUNK] = {0}, sb[CHUNK] = {0};
        for (int64_t r = 0; r < j->rows; r++) {
            const float *dy = j->dy + r * j->D + c0, *x = j->x + r * j->D + c0;
            const double m = j->mean_in[r], is = j->invstd_in[r];
            for (int64_t k = 0; k < n; k++) {
                sw[k] += dy[k] * ((x[k] - m) * is);
                sb[k] += dy[k];
            }
        }
        for (int64_t k = 0; k < n; k++) {
            if (j->dw)
                j->dw[c0 + k] += (float)sw[k];
            if (j->db)
                j->db[c0 + k] += (float)sb[k];
        }
    }
}

/* Group norm parameter gradients: channels [c0, c1), summing n in order. */
static void dj_gn_param_channels(void *arg, int64_t c0, int64_t c1, int thread) {
    const dj_rn_job *j = arg;
    (void)thread;
    const int64_t C = j->G * j->Cg, N = j->rows / j->G;
    for (int64_t c = c0; c < c1; c++) {
        double sw = 0.0, sb = 0.0;
        for (int64_t n = 0; n < N; n++) {
            int64_t row = n * j->G + c / j->Cg;
            const float *x = j->x + (n * C + c) * j->R, *dy = j->dy + (n * C + c) * j->R;
            const double mean = j->mean_in[row], invstd = j->invstd_in[row];
            for (int64_t i = 0; i < j->R; i++) {
                sw += dy[i] * (x[i] - mean) * invstd;
                sb += dy[i];
            }
        }
        if (j->dw)
            j->dw[c] += (float)sw;
        if (j->db)
            j->db[c] += (float)sb;
    }
}

/* Layer norm: D = product of the last norm_dims dims. */
static dj_status dj_ln_setup(int norm_dims, const dj_tensor *inp, const dj_tensor *weight, dj_rn_job *j,
                             const char *who) {
    char s[128];
    if (!inp || inp->dtype != DJ_DTYPE_F32 || norm_dims < 1 || norm_dims > inp->ndim)
        return dj_error_set(DJ_ERR_INVALID, who, "input %s cannot be normalised over its last %d dimensions",
                            inp ? dj_shape_string(inp->ndim, inp->shape, s, sizeof s) : "(missing)", norm_dims);
    j->D = 1;
    for (int i = inp->ndim - norm_dims; i < inp->ndim; i++)
        j->D *= inp->shape[i];
    if (j->D <= 0)
        return dj_error_set(DJ_ERR_INVALID, who, "empty normalised shape in input %s",
                            dj_shape_string(inp->ndim, inp->shape, s, sizeof s));
    j->rows = dj_tensor_numel(inp) / j->D;
    if (weight) {
        char where[160];
        snprintf(where, sizeof where, "%s weight", who);
        DJ_TRY(dj_tensor_expect(weight, DJ_DTYPE_F32, norm_dims, inp->shape + inp->ndim - norm_dims, where));
    }
    return DJ_OK;
}

static dj_status dj_rn_stats_check(const dj_rn_job *j, const dj_tensor *mean, const dj_tensor *invstd,
                                   const char *who) {
    DJ_TRY(dj_expect_vec(mean, DJ_DTYPE_F32, j->rows, 0, who, "save_mean"));
    DJ_TRY(dj_expect_vec(invstd, DJ_DTYPE_F32, j->rows, 0, who, "save_invstd"));
    return DJ_OK;
}

/* Statistics tensors of layer/group norm may be given with any shape of the
 * right size (e.g. (N, G)); they are viewed as 1-D. */
static dj_status dj_flat(const dj_tensor *t, dj_tensor *flat) {
    int64_t n = dj_tensor_numel(t);
    return dj_tensor_reshape(t, 1, &n, flat);
}

static dj_status dj_rn_forward(const dj_exec *ex, dj_rn_job *j, const dj_tensor *inp, const dj_tensor *bias,
                               const dj_tensor *weight, dj_tensor *out, dj_tensor *save_mean,
                               dj_tensor *save_invstd, const char *who) {
    dj_tensor fm, fi;
    DJ_TRY(dj_expect_like(out, DJ_DTYPE_F32, inp, who, "output"));
    if (weight && bias)
        DJ_TRY(dj_expect_like(bias, DJ_DTYPE_F32, weight, who, "bias"));
    if (!save_mean || !save_invstd)
        return dj_error_set(DJ_ERR_INVALID, who, "save_mean and save_invstd are required");
    DJ_TRY(dj_flat(save_mean, &fm));
    DJ_TRY(dj_flat(save_invstd, &fi));
    DJ_TRY(dj_rn_stats_check(j, &fm, &fi, who));
    j->x = inp->data, j->w = weight ? weight->data : NULL, j->b = bias ? bias->data : NULL;
    j->y = out->data, j->mean = fm.data, j->invstd = fi.data;
    dj_parallel_for(ex ? ex->pool : NULL, j->rows, 1, dj_rn_fwd_rows, j);
    return DJ_OK;
}

static dj_status dj_rn_backward_check(dj_rn_job *j, const dj_tensor *inp, const dj_tensor *weight,
                                      const dj_tensor *save_mean, const dj_tensor *save_invstd,
                                      const dj_tensor *dout, dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias,
                                      const char *who) {
    dj_tensor fm, fi;
    DJ_TRY(dj_expect_like(dout, DJ_DTYPE_F32, inp, who, "output gradient"));
    if (dinp)
        DJ_TRY(dj_expect_like(dinp, DJ_DTYPE_F32, inp, who, "input gradient"));
    if (!save_mean || !save_invstd)
        return dj_error_set(DJ_ERR_INVALID, who, "save_mean and save_invstd are required");
    DJ_TRY(dj_flat(save_mean, &fm));
    DJ_TRY(dj_flat(save_invstd, &fi));
    DJ_TRY(dj_rn_stats_check(j, &fm, &fi, who));
    j->x = inp->data, j->w = weight ? weight->data : NULL, j->dy = dout->data;
    j->mean_in = fm.data, j->invstd_in = fi.data;
    j->dx = dinp ? dinp->data : NULL, j->dw = dweight ? dweight->data : NULL, j->db = dbias ? dbias->data : NULL;
    return DJ_OK;
}

dj_status dj_layernorm_forward(const dj_exec *ex, int norm_dims, float eps, const dj_tensor *inp,
                               const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out, dj_tensor *save_mean,
                               dj_tensor *save_invstd) {
    static const char who[] = "dj_layernorm_forward";
    dj_rn_job j = {0};
    DJ_TRY(dj_ln_setup(norm_dims, inp, weight, &j, who));
    if (bias)
        DJ_TRY(dj_ln_setup(norm_dims, inp, bias, &j, "dj_layernorm_forward bias"));
    j.eps = eps;
    return dj_rn_forward(ex, &j, inp, bias, weight, out, save_mean, save_invstd, who);
}

dj_status dj_layernorm_backward(const dj_exec *ex, int norm_dims, const dj_tensor *inp, const dj_tensor *weight,
                                const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_layernorm_backward";
    dj_rn_job j = {0};
    DJ_TRY(dj_ln_setup(norm_dims, inp, weight, &j, who));
    if (dweight)
        DJ_TRY(dj_ln_setup(norm_dims, inp, dweight, &j, "dj_layernorm_backward weight gradient"));
    if (dbias)
        DJ_TRY(dj_ln_setup(norm_dims, inp, dbias, &j, "dj_layernorm_backward bias gradient"));
    DJ_TRY(dj_rn_backward_check(&j, inp, weight, save_mean, save_invstd, dout, dinp, dweight, dbias, who));
    dj_threadpool *pool = ex ? ex->pool : NULL;
    if (j.dx)
        dj_parallel_for(pool, j.rows, 1, dj_rn_bwd_rows, &j);
    if (j.dw || j.db)
        dj_parallel_for(pool, j.D, 16, dj_ln_param_cols, &j);
    return DJ_OK;
}

static dj_status dj_gn_setup(int groups, const dj_tensor *inp, dj_rn_job *j, const char *who) {
    char s[128];
    DJ_TRY(dj_nc_check(inp, who));
    int64_t N, C, R;
    dj_nc_rest(inp, &N, &C, &R);
    if (groups <= 0 || C % groups)
        return dj_error_set(DJ_ERR_INVALID, who, "%d groups must divide the %lld channels of input %s", groups,
                            (long long)C, dj_shape_string(inp->ndim, inp->shape, s, sizeof s));
    if (R <= 0)
        return dj_error_set(DJ_ERR_INVALID, who, "empty input %s", dj_shape_string(inp->ndim, inp->shape, s, sizeof s));
    j->G = groups, j->Cg = C / groups, j->R = R;
    j->rows = N * groups, j->D = j->Cg * R;
    return DJ_OK;
}

dj_status dj_groupnorm_forward(const dj_exec *ex, int groups, float eps, const dj_tensor *inp,
                               const dj_tensor *weight, const dj_tensor *bias, dj_tensor *out, dj_tensor *save_mean,
                               dj_tensor *save_invstd) {
    static const char who[] = "dj_groupnorm_forward";
    dj_rn_job j = {0};
    DJ_TRY(dj_gn_setup(groups, inp, &j, who));
    DJ_TRY(dj_expect_vec(weight, DJ_DTYPE_F32, inp->shape[1], 1, who, "weight"));
    DJ_TRY(dj_expect_vec(bias, DJ_DTYPE_F32, inp->shape[1], 1, who, "bias"));
    j.eps = eps;
    return dj_rn_forward(ex, &j, inp, bias, weight, out, save_mean, save_invstd, who);
}

dj_status dj_groupnorm_backward(const dj_exec *ex, int groups, const dj_tensor *inp, const dj_tensor *weight,
                                const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_groupnorm_backward";
    dj_rn_job j = {0};
    DJ_TRY(dj_gn_setup(groups, inp, &j, who));
    DJ_TRY(dj_expect_vec(weight, DJ_DTYPE_F32, inp->shape[1], 1, who, "weight"));
    DJ_TRY(dj_expect_vec(dweight, DJ_DTYPE_F32, inp->shape[1], 1, who, "weight gradient"));
    DJ_TRY(dj_expect_vec(dbias, DJ_DTYPE_F32, inp->shape[1], 1, who, "bias gradient"));
    DJ_TRY(dj_rn_backward_check(&j, inp, weight, save_mean, save_invstd, dout, dinp, dweight, dbias, who));
    dj_threadpool *pool = ex ? ex->pool : NULL;
    if (j.dx)
        dj_parallel_for(pool, j.rows, 1, dj_rn_bwd_rows, &j);
    if (j.dw || j.db)
        dj_parallel_for(pool, inp->shape[1], 1, dj_gn_param_channels, &j);
    return DJ_OK;
}
