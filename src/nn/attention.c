/* attention.c — multi-head scaled-dot-product self-attention over a chosen
 * token axis of (B,T,S,D) tensors (time: tokens t of one spatial position;
 * space: tokens s of one frame). Each (sequence, head) pair is independent:
 * the pool splits pairs, and each pair runs its three matmuls through
 * dj_sgemm on its own thread, reading Q/K/V in place (leading dimension =
 * the token stride), so no gather is needed and threads never share output;
 * short sequences (<= 32 tokens) use direct loops instead of GEMM calls
 * (pw_rows.inc, picked for the CPU like the point-wise rows). */
#include "dojo/gemm.h"
#include "nn/pointwise_internal.h"

/* Geometry of one call. */
typedef struct dj_attn_geo {
    int64_t B, T, S, D, H, hd;
    int64_t L;    /* tokens per sequence */
    int64_t nseq; /* sequences */
    int64_t ldt;  /* elements between consecutive tokens */
    float scale;
    int time;
} dj_attn_geo;

static int dj_attn_geo_make(const dj_attention_params *p, const int64_t *s, dj_attn_geo *g) {
    if (!p || p->heads < 1 || (p->axis != DJ_ATTN_TIME && p->axis != DJ_ATTN_SPACE))
        return 0;
    for (int i = 0; i < 4; i++)
        if (s[i] < 1)
            return 0;
    if (s[3] % p->heads)
        return 0;
    g->B = s[0];
    g->T = s[1];
    g->S = s[2];
    g->D = s[3];
    g->H = p->heads;
    g->hd = s[3] / p->heads;
    g->time = p->axis == DJ_ATTN_TIME;
    g->L = g->time ? g->T : g->S;
    g->nseq = g->time ? g->B * g->S : g->B * g->T;
    g->ldt = g->time ? g->S * g->D : g->D;
    g->scale = p->scale > 0.0f ? p->scale : (float)(1.0 / sqrt((double)g->hd));
    return 1;
}

/* Offset of token 0 of sequence i. */
static int64_t dj_attn_base(const dj_attn_geo *g, int64_t i) {
    if (g->time)
        return (i / g->S) * g->T * g->S * g->D + (i % g->S) * g->D;
    return i * g->S * g->D;
}

int64_t dj_attention_probs_numel(const dj_attention_params *p, const int64_t *shape) {
    dj_attn_geo g;
    if (!shape || !dj_attn_geo_make(p, shape, &g))
        return 0;
    return g.nseq * g.H * g.L * g.L;
}

size_t dj_attention_scratch_bytes(const dj_attention_params *p, const int64_t *shape, int nthreads) {
    dj_attn_geo g;
    if (!shape || !dj_attn_geo_make(p, shape, &g))
        return 0;
    return (size_t)(nthreads < 1 ? 1 : nthreads) * (size_t)(g.L * g.L) * sizeof(float);
}

typedef struct dj_attn_job {
    dj_attn_geo g;
    dj_pw_rows rows;
    const float *q, *k, *v, *dout;
    float *probs, *out, *dq, *dk, *dv, *scratch;
    int failed;
} dj_attn_job;

/* ---- the three matmul shapes of one (sequence, head) ---------------------
 * Up to DJ_ATTN_SMALL_L tokens (attention over T = 8 frames) the matrices are
 * tiny and direct loops along head_dim (pw_rows.inc, built for the CPU's
 * widest vectors) beat a GEMM call; above, dj_sgemm does the work. Both run
 * on the calling thread and in a fixed order. */
enum { DJ_ATTN_SMALL_L = 32 };

/* C (L,L) = alpha * X Y^T, X and Y (L,hd) with row stride ld */
static int dj_mm_nt(const dj_pw_rows *r, int64_t L, int64_t hd, float alpha, const float *X, const float *Y,
                    int64_t ld, float *C) {
    if (L > DJ_ATTN_SMALL_L)
        return dj_sgemm(NULL, DJ_NO_TRANS, DJ_TRANS, L, L, hd, alpha, X, ld, Y, ld, 0.0f, C, L) != DJ_OK;
    r->attn_nt(L, hd, alpha, X, Y, ld, C);
    return 0;
}

/* C (L,hd, row stride ld) = beta*C + alpha * P Y, P (L,L), Y (L,hd); beta 0 or 1 */
static int dj_mm_nn(const dj_pw_rows *r, int64_t L, int64_t hd, float alpha, const float *P, const float *Y,
                    int64_t ld, float beta, float *C) {
    if (L > DJ_ATTN_SMALL_L)
        return dj_sgemm(NULL, DJ_NO_TRANS, DJ_NO_TRANS, L, hd, L, alpha, P, L, Y, ld, beta, C, ld) != DJ_OK;
    r->attn_nn(L, hd, alpha, P, Y, ld, beta, C);
    return 0;
}

/* C (L,hd, row stride ld) += alpha * P^T Y */
static int dj_mm_tn(const dj_pw_rows *r, int64_t L, int64_t hd, float alpha, const float *P, const float *Y,
                    int64_t ld, float *C) {
    if (L > DJ_ATTN_SMALL_L)
        return dj_sgemm(NULL, DJ_TRANS, DJ_NO_TRANS, L, hd, L, alpha, P, L, Y, ld, 1.0f, C, ld) != DJ_OK;
    r->attn_tn(L, hd, alpha, P, Y, ld, C);
    return 0;
}

static void dj_attn_fwd_pairs(void *arg, int64_t b, int64_t e, int thread) {
    dj_attn_job *j = arg;
    const dj_attn_geo *g = &j->g;
    int64_t L = g->L, hd = g->hd, ld = g->ldt;
    int bad = 0;
    (void)thread;
    for (int64_t pr = b; pr < e; pr++) { /* pr = seq * H + head */
        int64_t off = dj_attn_base(g, pr / g->H) + (pr % g->H) * hd;
        float *P = j->probs + pr * L * L;
        bad |= dj_mm_nt(&j->rows, L, hd, g->scale, j->q + off, j->k + off, ld, P); /* scores = scale Q K^T */
        for (int64_t r = 0; r < L; r++)
            j->rows.softmax_forward(0, P + r * L, P + r * L, L);
        bad |= dj_mm_nn(&j->rows, L, hd, 1.0f, P, j->v + off, ld, 0.0f, j->out + off); /* out = P V */
    }
    if (bad)
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
}

static void dj_attn_bwd_pairs(void *arg, int64_t b, int64_t e, int thread) {
    dj_attn_job *j = arg;
    const dj_attn_geo *g = &j->g;
    int64_t L = g->L, hd = g->hd, ld = g->ldt;
    float *dP = j->scratch + (int64_t)thread * L * L; /* (L, L) */
    int bad = 0;
    for (int64_t pr = b; pr < e; pr++) {
        int64_t off = dj_attn_base(g, pr / g->H) + (pr % g->H) * hd;
        const float *P = j->probs + pr * L * L, *dO = j->dout + off;
        if (j->dv) /* dV += P^T dO */
            bad |= dj_mm_tn(&j->rows, L, hd, 1.0f, P, dO, ld, j->dv + off);
        if (!j->dq && !j->dk)
            continue;
        /* dP = dO V^T, then dS = P * (dP - rowsum(dP * P)) in place */
        bad |= dj_mm_nt(&j->rows, L, hd, 1.0f, dO, j->v + off, ld, dP);
        for (int64_t r = 0; r < L; r++) {
            float *d = dP + r * L;
            const float *pr = P + r * L;
            float sf = (float)dj_dot_f32(d, pr, L);
            for (int64_t i = 0; i < L; i++)
                d[i] = pr[i] * (d[i] - sf);
        }
        if (j->dq) /* dQ += scale dS K */
            bad |= dj_mm_nn(&j->rows, L, hd, g->scale, dP, j->k + off, ld, 1.0f, j->dq + off);
        if (j->dk) /* dK += scale dS^T Q */
            bad |= dj_mm_tn(&j->rows, L, hd, g->scale, dP, j->q + off, ld, j->dk + off);
    }
    if (bad)
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
}

/* Checks q, k, v (and `others`, may be NULL) share q's (B,T,S,D) shape and
 * probs holds the right number of floats. */
static dj_status dj_attn_check(const char *op, const dj_attention_params *p, const dj_tensor *q, const dj_tensor *k,
                               const dj_tensor *v, const dj_tensor *probs, dj_attn_geo *g) {
    DJ_TRY(dj_pw_check(op, "q", q, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "q", q, "k", k, 0));
    DJ_TRY(dj_pw_same(op, "q", q, "v", v, 0));
    char s1[96];
    if (!p)
        return dj_error_set(DJ_ERR_INVALID, op, "params are NULL");
    if (q->ndim != 4)
        return dj_error_set(DJ_ERR_INVALID, op, "q %s must be (B,T,S,D)", dj_shape_string(q->ndim, q->shape, s1, sizeof s1));
    if (p->axis != DJ_ATTN_TIME && p->axis != DJ_ATTN_SPACE)
        return dj_error_set(DJ_ERR_INVALID, op, "axis %d is neither DJ_ATTN_TIME nor DJ_ATTN_SPACE", (int)p->axis);
    if (p->heads < 1 || q->shape[3] % p->heads)
        return dj_error_set(DJ_ERR_INVALID, op, "D = %lld is not divisible into %d heads", (long long)q->shape[3],
                            p->heads);
    if (dj_tensor_numel(q) == 0)
        return dj_error_set(DJ_ERR_INVALID, op, "q %s is empty", dj_shape_string(q->ndim, q->shape, s1, sizeof s1));
    dj_attn_geo_make(p, q->shape, g);
    DJ_TRY(dj_pw_check(op, "probs", probs, DJ_DTYPE_F32));
    int64_t need = dj_attention_probs_numel(p, q->shape);
    if (dj_tensor_numel(probs) != need)
        return dj_error_set(DJ_ERR_INVALID, op, "probs has %lld floats, dj_attention_probs_numel gives %lld",
                            (long long)dj_tensor_numel(probs), (long long)need);
    return DJ_OK;
}

dj_status dj_attention_forward(const dj_exec *ex, const dj_attention_params *p, const dj_tensor *q,
                               const dj_tensor *k, const dj_tensor *v, dj_tensor *probs, dj_tensor *out) {
    const char *op = "dj_attention_forward";
    dj_attn_job j = {0};
    DJ_TRY(dj_attn_check(op, p, q, k, v, probs, &j.g));
    DJ_TRY(dj_pw_same(op, "q", q, "out", out, 0));
    j.q = q->data;
    j.k = k->data;
    j.v = v->data;
    j.probs = probs->data;
    j.out = out->data;
    j.rows = dj_pw_rows_select();
    dj_parallel_for(dj_pw_pool(ex), j.g.nseq * j.g.H, 1, dj_attn_fwd_pairs, &j);
    if (j.failed)
        return dj_error_set(DJ_ERR_INTERNAL, op, "dj_sgemm failed: %s", dj_error_message());
    return DJ_OK;
}

dj_status dj_attention_backward(const dj_exec *ex, const dj_attention_params *p, const dj_tensor *q,
                                const dj_tensor *k, const dj_tensor *v, const dj_tensor *probs,
                                const dj_tensor *dout, dj_tensor *dq, dj_tensor *dk, dj_tensor *dv) {
    const char *op = "dj_attention_backward";
    dj_attn_job j = {0};
    DJ_TRY(dj_attn_check(op, p, q, k, v, probs, &j.g));
    DJ_TRY(dj_pw_same(op, "q", q, "dout", dout, 0));
    DJ_TRY(dj_pw_same(op, "q", q, "dq", dq, 1));
    DJ_TRY(dj_pw_same(op, "q", q, "dk", dk, 1));
    DJ_TRY(dj_pw_same(op, "q", q, "dv", dv, 1));
    int nthreads = dj_threadpool_size(dj_pw_pool(ex));
    size_t need = dj_attention_scratch_bytes(p, q->shape, nthreads);
    if ((dq || dk) && (!ex || !ex->scratch || ex->scratch_bytes < need))
        return dj_error_set(DJ_ERR_INVALID, op, "needs %zu bytes of ex->scratch (dj_attention_scratch_bytes), has %zu",
                            need, ex && ex->scratch ? ex->scratch_bytes : (size_t)0);
    j.q = q->data;
    j.k = k->data;
    j.v = v->data;
    j.probs = probs->data;
    j.dout = dout->data;
    j.dq = dq ? dq->data : NULL;
    j.dk = dk ? dk->data : NULL;
    j.dv = dv ? dv->data : NULL;
    j.scratch = ex ? ex->scratch : NULL;
    j.rows = dj_pw_rows_select();
    dj_parallel_for(dj_pw_pool(ex), j.g.nseq * j.g.H, 1, dj_attn_bwd_pairs, &j);
    if (j.failed)
        return dj_error_set(DJ_ERR_INTERNAL, op, "dj_sgemm failed: %s", dj_error_message());
    return DJ_OK;
}
