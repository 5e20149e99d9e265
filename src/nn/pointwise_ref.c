/* pointwise_ref.c — naive double-precision references of the point-wise and
 * sequence operators: plain loops written for clarity, not speed, used by
 * the tests against the fast float32 operators and by the finite-difference
 * gradient checks. Same argument conventions (backward accumulates). */
#include <string.h>

#include "dojo/rng.h"
#include "nn/pointwise_internal.h"

#define D(t) ((double *)(t)->data)

static dj_status dj_ref_f64(const char *op, const char *name, const dj_tensor *t) {
    return dj_pw_check(op, name, t, DJ_DTYPE_F64);
}

/* ---- activations, softmax, dropout -------------------------------------- */

dj_status dj_ref_act_forward(dj_act act, const dj_tensor *x, dj_tensor *y) {
    DJ_TRY(dj_pw_act_valid("dj_ref_act_forward", act));
    DJ_TRY(dj_ref_f64("dj_ref_act_forward", "x", x));
    DJ_TRY(dj_pw_same("dj_ref_act_forward", "x", x, "y", y, 0));
    for (int64_t i = 0; i < dj_tensor_numel(x); i++)
        D(y)[i] = dj_act_f64(act, D(x)[i]);
    return DJ_OK;
}

dj_status dj_ref_act_backward(dj_act act, const dj_tensor *x, const dj_tensor *dy, dj_tensor *dx) {
    DJ_TRY(dj_pw_act_valid("dj_ref_act_backward", act));
    DJ_TRY(dj_ref_f64("dj_ref_act_backward", "x", x));
    DJ_TRY(dj_pw_same("dj_ref_act_backward", "x", x, "dy", dy, 0));
    DJ_TRY(dj_pw_same("dj_ref_act_backward", "x", x, "dx", dx, 0));
    for (int64_t i = 0; i < dj_tensor_numel(x); i++)
        D(dx)[i] += D(dy)[i] * dj_act_grad_f64(act, D(x)[i]);
    return DJ_OK;
}

dj_status dj_ref_softmax_forward(int log_, const dj_tensor *x, dj_tensor *y) {
    DJ_TRY(dj_ref_f64("dj_ref_softmax_forward", "x", x));
    DJ_TRY(dj_pw_same("dj_ref_softmax_forward", "x", x, "y", y, 0));
    int64_t K = x->shape[x->ndim - 1], rows = K ? dj_tensor_numel(x) / K : 0;
    for (int64_t r = 0; r < rows; r++) {
        const double *a = D(x) + r * K;
        double *b = D(y) + r * K, mx = a[0], s = 0;
        for (int64_t i = 0; i < K; i++)
            mx = a[i] > mx ? a[i] : mx;
        for (int64_t i = 0; i < K; i++)
            s += exp(a[i] - mx);
        for (int64_t i = 0; i < K; i++)
            b[i] = log_ ? a[i] - mx - log(s) : exp(a[i] - mx) / s;
    }
    return DJ_OK;
}

dj_status dj_ref_softmax_backward(int log_, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx) {
    DJ_TRY(dj_ref_f64("dj_ref_softmax_backward", "y", y));
    DJ_TRY(dj_pw_same("dj_ref_softmax_backward", "y", y, "dy", dy, 0));
    DJ_TRY(dj_pw_same("dj_ref_softmax_backward", "y", y, "dx", dx, 0));
    int64_t K = y->shape[y->ndim - 1], rows = K ? dj_tensor_numel(y) / K : 0;
    for (int64_t r = 0; r < rows; r++) {
        const double *o = D(y) + r * K, *g = D(dy) + r * K;
        double *d = D(dx) + r * K;
        /* Jacobian written out: softmax dy_i/dx_j = y_i(delta_ij - y_j);
         * log-softmax: delta_ij - exp(y_j) */
        for (int64_t jx = 0; jx < K; jx++) {
            double s = 0;
            for (int64_t i = 0; i < K; i++) {
                double jac = log_ ? (i == jx) - exp(o[jx]) : o[i] * ((i == jx) - o[jx]);
                s += g[i] * jac;
            }
            d[jx] += s;
        }
    }
    return DJ_OK;
}

static double dj_ref_keep(const dj_dropout_params *p, int64_t i) {
    if (!p->training || p->p == 0.0f)
        return 1.0;
    if (p->p >= 1.0f)
        return 0.0;
    return dj_hash_float(p->seed, p->step, (uint64_t)i) >= p->p ? 1.0 / (1.0 - (double)p->p) : 0.0;
}

dj_status dj_ref_dropout_forward(const dj_dropout_params *p, const dj_tensor *x, dj_tensor *y) {
    DJ_TRY(dj_ref_f64("dj_ref_dropout_forward", "x", x));
    DJ_TRY(dj_pw_same("dj_ref_dropout_forward", "x", x, "y", y, 0));
    for (int64_t i = 0; i < dj_tensor_numel(x); i++)
        D(y)[i] = D(x)[i] * dj_ref_keep(p, i);
    return DJ_OK;
}

dj_status dj_ref_dropout_backward(const dj_dropout_params *p, const dj_tensor *dy, dj_tensor *dx) {
    DJ_TRY(dj_ref_f64("dj_ref_dropout_backward", "dy", dy));
    DJ_TRY(dj_pw_same("dj_ref_dropout_backward", "dy", dy, "dx", dx, 0));
    for (int64_t i = 0; i < dj_tensor_numel(dy); i++)
        D(dx)[i] += D(dy)[i] * dj_ref_keep(p, i);
    return DJ_OK;
}

/* ---- broadcasting ------------------------------------------------------------- */

/* Index into t (right-aligned against out) of out's flat element o. */
static int64_t dj_ref_bidx(const dj_tensor *t, const dj_tensor *out, int64_t o) {
    int64_t idx = 0, mul = 1;
    for (int d = out->ndim - 1, dt = t->ndim - 1; d >= 0; d--, dt--) {
        int64_t c = o % out->shape[d];
        o /= out->shape[d];
        if (dt >= 0) {
            idx += (t->shape[dt] == 1 ? 0 : c) * mul;
            mul *= t->shape[dt];
        }
    }
    return idx;
}

dj_status dj_ref_binary_forward(int mul, const dj_tensor *a, const dj_tensor *b, dj_tensor *out) {
    dj_bcast g;
    DJ_TRY(dj_bcast_plan("dj_ref_binary_forward", a, b, out, &g));
    for (int64_t o = 0; o < dj_tensor_numel(out); o++) {
        double x = D(a)[dj_ref_bidx(a, out, o)], y = D(b)[dj_ref_bidx(b, out, o)];
        D(out)[o] = mul ? x * y : x + y;
    }
    return DJ_OK;
}

dj_status dj_ref_binary_backward(int mul, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                                 dj_tensor *da, dj_tensor *db) {
    dj_bcast g;
    DJ_TRY(dj_bcast_plan("dj_ref_binary_backward", a, b, dout, &g));
    for (int64_t o = 0; o < dj_tensor_numel(dout); o++) {
        int64_t ia = dj_ref_bidx(a, dout, o), ib = dj_ref_bidx(b, dout, o);
        double go = D(dout)[o];
        if (da)
            D(da)[ia] += mul ? go * D(b)[ib] : go;
        if (db)
            D(db)[ib] += mul ? go * D(a)[ia] : go;
    }
    return DJ_OK;
}

/* ---- fused ---------------------------------------------------------------------- */

static int64_t dj_ref_channel(const dj_tensor *x, int64_t i) {
    int64_t P = 1;
    for (int d = 2; d < x->ndim; d++)
        P *= x->shape[d];
    return (i / P) % x->shape[1];
}

dj_status dj_ref_bias_act_forward(dj_act act, const dj_tensor *x, const dj_tensor *bias, dj_tensor *y) {
    DJ_TRY(dj_ref_f64("dj_ref_bias_act_forward", "x", x));
    if (x->ndim < 2 || bias->ndim != 1 || bias->shape[0] != x->shape[1])
        return dj_error_set(DJ_ERR_INVALID, "dj_ref_bias_act_forward", "bias does not match x's channels");
    for (int64_t i = 0; i < dj_tensor_numel(x); i++)
        D(y)[i] = dj_act_f64(act, D(x)[i] + D(bias)[dj_ref_channel(x, i)]);
    return DJ_OK;
}

dj_status dj_ref_bias_act_backward(dj_act act, const dj_tensor *x, const dj_tensor *bias, const dj_tensor *dy,
                                   dj_tensor *dx, dj_tensor *dbias) {
    DJ_TRY(dj_ref_f64("dj_ref_bias_act_backward", "x", x));
    for (int64_t i = 0; i < dj_tensor_numel(x); i++) {
        int64_t c = dj_ref_channel(x, i);
        double g = D(dy)[i] * dj_act_grad_f64(act, D(x)[i] + D(bias)[c]);
        if (dx)
            D(dx)[i] += g;
        if (dbias)
            D(dbias)[c] += g;
    }
    return DJ_OK;
}

dj_status dj_ref_add_relu_forward(const dj_tensor *x, const dj_tensor *res, dj_tensor *y) {
    DJ_TRY(dj_ref_f64("dj_ref_add_relu_forward", "x", x));
    DJ_TRY(dj_pw_same("dj_ref_add_relu_forward", "x", x, "res", res, 0));
    for (int64_t i = 0; i < dj_tensor_numel(x); i++) {
        double z = D(x)[i] + D(res)[i];
        D(y)[i] = z < 0 ? 0 : z;
    }
    return DJ_OK;
}

/* The reference takes the forward inputs (the fast op takes its output). */
dj_status dj_ref_add_relu_backward(const dj_tensor *x, const dj_tensor *res, const dj_tensor *dy, dj_tensor *dx,
                                   dj_tensor *dres) {
    DJ_TRY(dj_ref_f64("dj_ref_add_relu_backward", "x", x));
    for (int64_t i = 0; i < dj_tensor_numel(x); i++) {
        double g = D(x)[i] + D(res)[i] > 0 ? D(dy)[i] : 0;
        if (dx)
            D(dx)[i] += g;
        if (dres)
            D(dres)[i] += g;
    }
    return DJ_OK;
}

/* ---- shapes ---------------------------------------------------------------------- */

/* Coordinates of flat index i in shape s (ndim nd). */
static void dj_ref_coords(int nd, const int64_t *s, int64_t i, int64_t *c) {
    for (int d = nd - 1; d >= 0; d--) {
        c[d] = i % s[d];
        i /= s[d];
    }
}

static int64_t dj_ref_flat(int nd, const int64_t *s, const int64_t *c) {
    int64_t i = 0;
    for (int d = 0; d < nd; d++)
        i = i * s[d] + c[d];
    return i;
}

/* For each element of out: which input and its flat index there. */
static void dj_ref_cat_locate(int axis, int n, const dj_tensor *const *in, const dj_tensor *out, int64_t o, int *which,
                              int64_t *idx) {
    int64_t c[DJ_MAX_DIMS];
    dj_ref_coords(out->ndim, out->shape, o, c);
    int i = 0;
    while (i < n - 1 && c[axis] >= in[i]->shape[axis]) {
        c[axis] -= in[i]->shape[axis];
        i++;
    }
    *which = i;
    *idx = dj_ref_flat(out->ndim, in[i]->shape, c);
}

dj_status dj_ref_concat_forward(int axis, int n, const dj_tensor *const *inputs, dj_tensor *out) {
    if (axis < 0)
        axis += out->ndim;
    for (int64_t o = 0; o < dj_tensor_numel(out); o++) {
        int w;
        int64_t idx;
        dj_ref_cat_locate(axis, n, inputs, out, o, &w, &idx);
        D(out)[o] = D(inputs[w])[idx];
    }
    return DJ_OK;
}

dj_status dj_ref_concat_backward(int axis, int n, const dj_tensor *dout, dj_tensor *const *dinputs) {
    if (axis < 0)
        axis += dout->ndim;
    for (int64_t o = 0; o < dj_tensor_numel(dout); o++) {
        int w;
        int64_t idx;
        dj_ref_cat_locate(axis, n, (const dj_tensor *const *)dinputs, dout, o, &w, &idx);
        D(dinputs[w])[idx] += D(dout)[o];
    }
    return DJ_OK;
}

dj_status dj_ref_permute_forward(const int *perm, const dj_tensor *x, dj_tensor *y) {
    for (int64_t o = 0; o < dj_tensor_numel(y); o++) {
        int64_t cy[DJ_MAX_DIMS], cx[DJ_MAX_DIMS];
        dj_ref_coords(y->ndim, y->shape, o, cy);
        for (int i = 0; i < y->ndim; i++)
            cx[perm[i]] = cy[i];
        D(y)[o] = D(x)[dj_ref_flat(x->ndim, x->shape, cx)];
    }
    return DJ_OK;
}

dj_status dj_ref_permute_backward(const int *perm, const dj_tensor *dy, dj_tensor *dx) {
    for (int64_t o = 0; o < dj_tensor_numel(dy); o++) {
        int64_t cy[DJ_MAX_DIMS], cx[DJ_MAX_DIMS];
        dj_ref_coords(dy->ndim, dy->shape, o, cy);
        for (int i = 0; i < dy->ndim; i++)
            cx[perm[i]] = cy[i];
        D(dx)[dj_ref_flat(dx->ndim, dx->shape, cx)] += D(dy)[o];
    }
    return DJ_OK;
}

/* ---- attention -------------------------------------------------------------------- */

/* Flat index of (b, token l of sequence `seq`, channel c) in (B,T,S,D). */
static int64_t dj_ref_attn_idx(const dj_attention_params *p, const int64_t *s, int64_t b, int64_t seq, int64_t l,
                               int64_t c) {
    int64_t t = p->axis == DJ_ATTN_TIME ? l : seq, sp = p->axis == DJ_ATTN_TIME ? seq : l;
    return ((b * s[1] + t) * s[2] + sp) * s[3] + c;
}

/* Calls fn for every (b, seq, head) with the probabilities computed into P
 * (L x L, softmax of scaled scores). */
static dj_status dj_ref_attn(const dj_attention_params *p, const dj_tensor *q, const dj_tensor *k, const dj_tensor *v,
                             const dj_tensor *dout, dj_tensor *out, dj_tensor *dq, dj_tensor *dk, dj_tensor *dv) {
    const int64_t *s = q->shape;
    int64_t H = p->heads, hd = s[3] / H, L = p->axis == DJ_ATTN_TIME ? s[1] : s[2];
    int64_t nseq = p->axis == DJ_ATTN_TIME ? s[2] : s[1];
    double scale = p->scale > 0 ? p->scale : 1.0 / sqrt((double)hd);
    double P[64 * 64], dP[64 * 64];
    if (L > 64)
        return dj_error_set(DJ_ERR_UNSUPPORTED, "dj_ref_attention", "reference limited to 64 tokens, got %lld",
                            (long long)L);
#define IDX(l, c) dj_ref_attn_idx(p, s, b, sq, (l), h * hd + (c))
    for (int64_t b = 0; b < s[0]; b++)
        for (int64_t sq = 0; sq < nseq; sq++)
            for (int64_t h = 0; h < H; h++) {
                for (int64_t i = 0; i < L; i++) {
                    double mx = -INFINITY, sum = 0;
                    for (int64_t j = 0; j < L; j++) {
                        double d = 0;
                        for (int64_t c = 0; c < hd; c++)
                            d += D(q)[IDX(i, c)] * D(k)[IDX(j, c)];
                        P[i * L + j] = d * scale;
                        mx = P[i * L + j] > mx ? P[i * L + j] : mx;
                    }
                    for (int64_t j = 0; j < L; j++)
                        sum += P[i * L + j] = exp(P[i * L + j] - mx);
                    for (int64_t j = 0; j < L; j++)
                        P[i * L + j] /= sum;
                }
                if (out)
                    for (int64_t i = 0; i < L; i++)
                        for (int64_t c = 0; c < hd; c++) {
                            double o = 0;
                            for (int64_t j = 0; j < L; j++)
                                o += P[i * L + j] * D(v)[IDX(j, c)];
                            D(out)[IDX(i, c)] = o;
                        }
                if (!dout)
                    continue;
                for (int64_t i = 0; i < L; i++) {
                    double rs = 0;
                    for (int64_t j = 0; j < L; j++) {
                        double d = 0;
                        for (int64_t c = 0; c < hd; c++)
                            d += D(dout)[IDX(i, c)] * D(v)[IDX(j, c)];
                        dP[i * L + j] = d;
                        rs += d * P[i * L + j];
                    }
                    for (int64_t j = 0; j < L; j++)
                        dP[i * L + j] = P[i * L + j] * (dP[i * L + j] - rs); /* dScores */
                }
                for (int64_t i = 0; i < L; i++)
                    for (int64_t j = 0; j < L; j++)
                        for (int64_t c = 0; c < hd; c++) {
                            if (dv)
                                D(dv)[IDX(j, c)] += P[i * L + j] * D(dout)[IDX(i, c)];
                            if (dq)
                                D(dq)[IDX(i, c)] += scale * dP[i * L + j] * D(k)[IDX(j, c)];
                            if (dk)
                                D(dk)[IDX(j, c)] += scale * dP[i * L + j] * D(q)[IDX(i, c)];
                        }
            }
#undef IDX
    return DJ_OK;
}

dj_status dj_ref_attention_forward(const dj_attention_params *p, const dj_tensor *q, const dj_tensor *k,
                                   const dj_tensor *v, dj_tensor *out) {
    DJ_TRY(dj_ref_f64("dj_ref_attention_forward", "q", q));
    return dj_ref_attn(p, q, k, v, NULL, out, NULL, NULL, NULL);
}

dj_status dj_ref_attention_backward(const dj_attention_params *p, const dj_tensor *q, const dj_tensor *k,
                                    const dj_tensor *v, const dj_tensor *dout, dj_tensor *dq, dj_tensor *dk,
                                    dj_tensor *dv) {
    DJ_TRY(dj_ref_f64("dj_ref_attention_backward", "q", q));
    return dj_ref_attn(p, q, k, v, dout, NULL, dq, dk, dv);
}

/* ---- losses ------------------------------------------------------------------------- */

dj_status dj_ref_cross_entropy_forward(const dj_cross_entropy_params *p, const dj_tensor *logits,
                                       const dj_tensor *labels, double *loss) {
    int64_t N = logits->shape[0], K = logits->shape[1];
    const int64_t *y = labels->data;
    double total = 0;
    for (int64_t n = 0; n < N; n++) {
        if (y[n] < 0 || y[n] >= K)
            return dj_error_set(DJ_ERR_RANGE, "dj_ref_cross_entropy_forward", "label %lld out of range",
                                (long long)y[n]);
        const double *x = D(logits) + n * K;
        double mx = x[0], s = 0;
        for (int64_t k = 0; k < K; k++)
            mx = x[k] > mx ? x[k] : mx;
        for (int64_t k = 0; k < K; k++)
            s += exp(x[k] - mx);
        for (int64_t k = 0; k < K; k++) {
            double target = (k == y[n]) * (1.0 - p->label_smoothing) + p->label_smoothing / (double)K;
            total -= target * (x[k] - mx - log(s));
        }
    }
    *loss = total / (double)N;
    return DJ_OK;
}

dj_status dj_ref_cross_entropy_backward(const dj_cross_entropy_params *p, const dj_tensor *logits,
                                        const dj_tensor *labels, double dloss, dj_tensor *dlogits) {
    int64_t N = logits->shape[0], K = logits->shape[1];
    const int64_t *y = labels->data;
    for (int64_t n = 0; n < N; n++) {
        const double *x = D(logits) + n * K;
        double mx = x[0], s = 0;
        for (int64_t k = 0; k < K; k++)
            mx = x[k] > mx ? x[k] : mx;
        for (int64_t k = 0; k < K; k++)
            s += exp(x[k] - mx);
        for (int64_t k = 0; k < K; k++) {
            double target = (k == y[n]) * (1.0 - p->label_smoothing) + p->label_smoothing / (double)K;
            D(dlogits)[n * K + k] += dloss / (double)N * (exp(x[k] - mx) / s - target);
        }
    }
    return DJ_OK;
}

static double dj_ref_mask_w(const dj_tensor *pred, const dj_tensor *mask, int64_t i) {
    if (!mask)
        return 1.0;
    if (mask->ndim == pred->ndim)
        return D(mask)[i];
    return D(mask)[i / pred->shape[pred->ndim - 1]];
}

dj_status dj_ref_mse_forward(const dj_tensor *pred, const dj_tensor *target, const dj_tensor *mask, double *loss) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < dj_tensor_numel(pred); i++) {
        double w = dj_ref_mask_w(pred, mask, i), d = D(pred)[i] - D(target)[i];
        num += w * d * d;
        den += w;
    }
    *loss = den != 0 ? num / den : 0;
    return DJ_OK;
}

dj_status dj_ref_mse_backward(const dj_tensor *pred, const dj_tensor *target, const dj_tensor *mask, double dloss,
                              dj_tensor *dpred, dj_tensor *dtarget) {
    double den = 0;
    for (int64_t i = 0; i < dj_tensor_numel(pred); i++)
        den += dj_ref_mask_w(pred, mask, i);
    if (den == 0)
        return DJ_OK;
    for (int64_t i = 0; i < dj_tensor_numel(pred); i++) {
        double g = dloss * 2 * dj_ref_mask_w(pred, mask, i) * (D(pred)[i] - D(target)[i]) / den;
        if (dpred)
            D(dpred)[i] += g;
        if (dtarget)
            D(dtarget)[i] -= g;
    }
    return DJ_OK;
}
