/* loss.c — softmax cross-entropy with label smoothing (PyTorch semantics),
 * top-k accuracy, and mean-squared error with an optional mask (VideoMAE).
 * Reductions run over a fixed number of fixed-size chunks whose partial sums
 * are added in order, so the loss is bit-identical for any thread count. */
#include <string.h>

#include "nn/pointwise_internal.h"

enum { DJ_LOSS_CHUNKS = 64 };

/* Sums fn over [0,n) as DJ_LOSS_CHUNKS chunks (sizes fixed by n alone). */
typedef void (*dj_chunk_fn)(void *arg, int64_t b, int64_t e, double *acc2);

typedef struct dj_chunk_job {
    dj_chunk_fn fn;
    void *arg;
    int64_t n, size;
    double part[DJ_LOSS_CHUNKS][2];
} dj_chunk_job;

static void dj_chunk_range(void *arg, int64_t b, int64_t e, int thread) {
    dj_chunk_job *j = arg;
    (void)thread;
    for (int64_t c = b; c < e; c++) {
        int64_t lo = c * j->size, hi = lo + j->size < j->n ? lo + j->size : j->n;
        j->part[c][0] = j->part[c][1] = 0.0;
        if (lo < hi)
            j->fn(j->arg, lo, hi, j->part[c]);
    }
}

static void dj_chunked_sum(const dj_exec *ex, int64_t n, dj_chunk_fn fn, void *arg, double *sum2) {
    dj_chunk_job j;
    j.fn = fn;
    j.arg = arg;
    j.n = n;
    j.size = (n + DJ_LOSS_CHUNKS - 1) / DJ_LOSS_CHUNKS;
    if (j.size < 1)
        j.size = 1;
    dj_parallel_for(dj_pw_pool(ex), DJ_LOSS_CHUNKS, 1, dj_chunk_range, &j);
    sum2[0] = sum2[1] = 0.0;
    for (int c = 0; c < DJ_LOSS_CHUNKS; c++) {
        sum2[0] += j.part[c][0];
        sum2[1] += j.part[c][1];
    }
}

/* ---- cross-entropy -------------------------------------------------------- */

typedef struct dj_ce_job {
    int64_t N, K;
    float eps, dloss;
    const float *x;
    const int64_t *y;
    float *dx;
} dj_ce_job;

/* Sum of the mask (forward's denominator, backward's too). */
static void dj_mask_sum(void *arg, int64_t b, int64_t e, double *acc);

static dj_status dj_ce_check(const char *op, const dj_cross_entropy_params *p, const dj_tensor *logits,
                             const dj_tensor *labels, dj_ce_job *j) {
    char s1[96], s2[96];
    if (!p)
        return dj_error_set(DJ_ERR_INVALID, op, "params are NULL");
    if (!(p->label_smoothing >= 0.0f && p->label_smoothing <= 1.0f))
        return dj_error_set(DJ_ERR_INVALID, op, "label_smoothing = %g, must be in [0, 1]", (double)p->label_smoothing);
    DJ_TRY(dj_pw_check(op, "logits", logits, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_check(op, "labels", labels, DJ_DTYPE_I64));
    if (logits->ndim != 2 || labels->ndim != 1 || labels->shape[0] != logits->shape[0] || logits->shape[0] < 1 ||
        logits->shape[1] < 1)
        return dj_error_set(DJ_ERR_INVALID, op, "logits %s and labels %s must be (N,K) and (N) with N, K >= 1",
                            dj_shape_string(logits->ndim, logits->shape, s1, sizeof s1),
                            dj_shape_string(labels->ndim, labels->shape, s2, sizeof s2));
    j->N = logits->shape[0];
    j->K = logits->shape[1];
    j->eps = p->label_smoothing;
    j->x = logits->data;
    j->y = labels->data;
    for (int64_t n = 0; n < j->N; n++)
        if (j->y[n] < 0 || j->y[n] >= j->K)
            return dj_error_set(DJ_ERR_RANGE, op, "label %lld of row %lld is outside [0, %lld)", (long long)j->y[n],
                                (long long)n, (long long)j->K);
    return DJ_OK;
}

/* log-sum-exp of one row: exps through a stack block, fixed-order sums. */
static double dj_row_lse(const float *x, int64_t K) {
    float mx = dj_max_f32(x, K), e[512];
    double s = 0.0;
    for (int64_t k = 0; k < K; k += 512) {
        int64_t m = K - k < 512 ? K - k : 512;
        for (int64_t i = 0; i < m; i++)
            e[i] = dj_exp_f32(x[k + i] - mx);
        s += dj_sum_f32(e, m);
    }
    return mx + log(s);
}

static void dj_ce_rows_loss(void *arg, int64_t b, int64_t e, double *acc) {
    const dj_ce_job *j = arg;
    for (int64_t n = b; n < e; n++) {
        const float *x = j->x + n * j->K;
        double lse = dj_row_lse(x, j->K), sx = dj_sum_f32(x, j->K);
        double logp_y = x[j->y[n]] - lse, sum_logp = sx - (double)j->K * lse;
        acc[0] += -((1.0 - j->eps) * logp_y + j->eps / (double)j->K * sum_logp);
    }
}

dj_status dj_cross_entropy_forward(const dj_exec *ex, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                   const dj_tensor *labels, float *loss) {
    const char *op = "dj_cross_entropy_forward";
    dj_ce_job j = {0};
    DJ_TRY(dj_ce_check(op, p, logits, labels, &j));
    if (!loss)
        return dj_error_set(DJ_ERR_INVALID, op, "loss is NULL");
    double s[2];
    dj_chunked_sum(ex, j.N, dj_ce_rows_loss, &j, s);
    *loss = (float)(s[0] / (double)j.N);
    return DJ_OK;
}

static void dj_ce_rows_grad(void *arg, int64_t b, int64_t e, int thread) {
    const dj_ce_job *j = arg;
    float c = j->dloss / (float)j->N, smooth = j->eps / (float)j->K;
    (void)thread;
    for (int64_t n = b; n < e; n++) {
        const float *x = j->x + n * j->K;
        float *dx = j->dx + n * j->K;
        float lse = (float)dj_row_lse(x, j->K);
        for (int64_t k = 0; k < j->K; k++)
            dx[k] += c * (dj_exp_f32(x[k] - lse) - smooth);
        dx[j->y[n]] -= c * (1.0f - j->eps);
    }
}

dj_status dj_cross_entropy_backward(const dj_exec *ex, const dj_cross_entropy_params *p, const dj_tensor *logits,
                                    const dj_tensor *labels, float dloss, dj_tensor *dlogits) {
    const char *op = "dj_cross_entropy_backward";
    dj_ce_job j = {0};
    DJ_TRY(dj_ce_check(op, p, logits, labels, &j));
    DJ_TRY(dj_pw_same(op, "logits", logits, "dlogits", dlogits, 1));
    if (!dlogits)
        return DJ_OK;
    j.dloss = dloss;
    j.dx = dlogits->data;
    dj_parallel_for(dj_pw_pool(ex), j.N, 1 + DJ_PW_GRAIN / j.K, dj_ce_rows_grad, &j);
    return DJ_OK;
}

dj_status dj_topk_correct(const dj_tensor *logits, const dj_tensor *labels, int k, int64_t *correct) {
    const char *op = "dj_topk_correct";
    dj_cross_entropy_params p = {0.0f};
    dj_ce_job j = {0};
    DJ_TRY(dj_ce_check(op, &p, logits, labels, &j));
    if (k < 1 || !correct)
        return dj_error_set(DJ_ERR_INVALID, op, "k = %d must be >= 1 and correct non-NULL", k);
    int64_t hits = 0;
    for (int64_t n = 0; n < j.N; n++) {
        const float *x = j.x + n * j.K;
        float ly = x[j.y[n]];
        int64_t greater = 0;
        for (int64_t c = 0; c < j.K; c++)
            greater += x[c] > ly;
        hits += greater < k;
    }
    *correct = hits;
    return DJ_OK;
}

/* ---- masked MSE --------------------------------------------------------------- */

typedef struct dj_mse_job {
    const float *p, *t, *m;
    int64_t row;    /* elements per mask weight: the last dim (token mask), else 1 */
    int token;      /* 1: one weight per row of `row` elements */
    float coef;     /* backward: dloss * 2 / den */
    float *dp, *dt;
} dj_mse_job;

static dj_status dj_mse_check(const char *op, const dj_tensor *pred, const dj_tensor *target, const dj_tensor *mask,
                              dj_mse_job *j) {
    DJ_TRY(dj_pw_check(op, "pred", pred, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "pred", pred, "target", target, 0));
    memset(j, 0, sizeof *j);
    j->p = pred->data;
    j->t = target->data;
    j->row = 1;
    if (!mask)
        return DJ_OK;
    DJ_TRY(dj_pw_check(op, "mask", mask, DJ_DTYPE_F32));
    int full = mask->ndim == pred->ndim, token = mask->ndim == pred->ndim - 1;
    for (int d = 0; d < mask->ndim && (full || token); d++)
        if (mask->shape[d] != pred->shape[d])
            full = token = 0;
    if (!full && !token) {
        char s1[96], s2[96];
        return dj_error_set(DJ_ERR_INVALID, op, "mask %s must have pred's shape %s or that shape without its last dim",
                            dj_shape_string(mask->ndim, mask->shape, s1, sizeof s1),
                            dj_shape_string(pred->ndim, pred->shape, s2, sizeof s2));
    }
    j->m = mask->data;
    j->token = token && !full;
    j->row = j->token ? pred->shape[pred->ndim - 1] : 1;
    return DJ_OK;
}

/* Squared differences of n elements, each times w[i] (w NULL: 1), summed in
 * blocks of 64 over 8 float lanes, block sums in double (fixed order). */
static double dj_sqdiff(const float *p, const float *t, const float *w, int64_t n) {
    double s = 0.0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        float lane[8] = {0};
        for (int k = 0; k < 64; k += 8)
            for (int l = 0; l < 8; l++) {
                float d = p[i + k + l] - t[i + k + l];
                lane[l] += (w ? w[i + k + l] : 1.0f) * d * d;
            }
        s += (double)(((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
    }
    for (; i < n; i++) {
        double d = (double)p[i] - t[i];
        s += (w ? w[i] : 1.0) * d * d;
    }
    return s;
}

/* Token mask: units are rows; otherwise elements. acc = {numerator, weight}. */
static void dj_mse_part(void *arg, int64_t b, int64_t e, double *acc) {
    const dj_mse_job *j = arg;
    if (j->token) {
        for (int64_t r = b; r < e; r++) {
            float w = j->m[r];
            if (w != 0.0f)
                acc[0] += w * dj_sqdiff(j->p + r * j->row, j->t + r * j->row, NULL, j->row);
            acc[1] += (double)w * (double)j->row;
        }
        return;
    }
    acc[0] += dj_sqdiff(j->p + b, j->t + b, j->m ? j->m + b : NULL, e - b);
    acc[1] += j->m ? dj_sum_f32(j->m + b, e - b) : (double)(e - b);
}

static int64_t dj_mse_units(const dj_mse_job *j, const dj_tensor *pred) {
    return dj_tensor_numel(pred) / (j->row ? j->row : 1);
}

dj_status dj_mse_forward(const dj_exec *ex, const dj_tensor *pred, const dj_tensor *target, const dj_tensor *mask,
                         float *loss) {
    const char *op = "dj_mse_forward";
    dj_mse_job j;
    DJ_TRY(dj_mse_check(op, pred, target, mask, &j));
    if (!loss)
        return dj_error_set(DJ_ERR_INVALID, op, "loss is NULL");
    double s[2];
    dj_chunked_sum(ex, j.row ? dj_mse_units(&j, pred) : 0, dj_mse_part, &j, s);
    *loss = s[1] != 0.0 ? (float)(s[0] / s[1]) : 0.0f;
    return DJ_OK;
}

/* dp += coef * w * (p - t), dt -= the same, over units [b, e). */
static void dj_mse_grad(void *arg, int64_t b, int64_t e, int thread) {
    const dj_mse_job *j = arg;
    (void)thread;
    int64_t lo = b * j->row, hi = e * j->row;
    for (int64_t r = b; r < e && j->token; r++) {
        float c = j->coef * j->m[r];
        for (int64_t i = r * j->row; i < (r + 1) * j->row; i++) {
            float g = c * (j->p[i] - j->t[i]);
            if (j->dp)
                j->dp[i] += g;
            if (j->dt)
                j->dt[i] -= g;
        }
    }
    if (j->token)
        return;
    for (int64_t i = lo; i < hi; i++) {
        float g = j->coef * (j->m ? j->m[i] : 1.0f) * (j->p[i] - j->t[i]);
        if (j->dp)
            j->dp[i] += g;
        if (j->dt)
            j->dt[i] -= g;
    }
}

dj_status dj_mse_backward(const dj_exec *ex, const dj_tensor *pred, const dj_tensor *target, const dj_tensor *mask,
                          float dloss, dj_tensor *dpred, dj_tensor *dtarget) {
    const char *op = "dj_mse_backward";
    dj_mse_job j;
    DJ_TRY(dj_mse_check(op, pred, target, mask, &j));
    DJ_TRY(dj_pw_same(op, "pred", pred, "dpred", dpred, 1));
    DJ_TRY(dj_pw_same(op, "pred", pred, "dtarget", dtarget, 1));
    int64_t units = j.row ? dj_mse_units(&j, pred) : 0;
    double den = (double)dj_tensor_numel(pred);
    if (j.m) {
        double s[2];
        dj_mse_job w = j;
        w.p = w.t = NULL;
        dj_chunked_sum(ex, dj_tensor_numel(mask), dj_mask_sum, &w, s);
        den = s[0] * (double)j.row;
    }
    if (den == 0.0 || (!dpred && !dtarget))
        return DJ_OK;
    j.coef = (float)(2.0 * dloss / den);
    j.dp = dpred ? dpred->data : NULL;
    j.dt = dtarget ? dtarget->data : NULL;
    dj_parallel_for(dj_pw_pool(ex), units, 1 + DJ_PW_GRAIN / (j.row ? j.row : 1), dj_mse_grad, &j);
    return DJ_OK;
}

static void dj_mask_sum(void *arg, int64_t b, int64_t e, double *acc) {
    const struct dj_mse_job *j = arg;
    acc[0] += dj_sum_f32(j->m + b, e - b);
}
