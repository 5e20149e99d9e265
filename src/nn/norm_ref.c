/* norm_ref.c — naive double-precision batch, layer and group norm: the
 * textbook formulas, computed element by element, used by the tests and the
 * finite-difference gradient checks. */
#include <math.h>

#include "nn/spatial_internal.h"

static dj_status dj_ref_f64(const dj_tensor *t, const char *who) {
    if (!t || t->dtype != DJ_DTYPE_F64 || t->ndim < 1)
        return dj_error_set(DJ_ERR_INVALID, who, "expected a float64 tensor");
    return DJ_OK;
}

static double dj_opt(const dj_tensor *t, int64_t i, double dflt) { return t ? ((const double *)t->data)[i] : dflt; }

/* Normalisation of `rows` sets; element i of set r sits at x[at(r, i)], its
 * affine parameter index is par(r, i). Described by a small table of sizes. */
typedef struct dj_ref_sets {
    int64_t rows, D;   /* sets and elements per set */
    int64_t N, C, R;   /* (N, C, R) layout */
    int kind;          /* 0 batch norm (set = channel), 1 layer norm, 2 group norm */
    int64_t G;
} dj_ref_sets;

static int64_t dj_ref_at(const dj_ref_sets *s, int64_t r, int64_t i) {
    if (s->kind == 0) /* channel r, element i = n*R + q */
        return ((i / s->R) * s->C + r) * s->R + i % s->R;
    return r * s->D + i;
}

static int64_t dj_ref_par(const dj_ref_sets *s, int64_t r, int64_t i) {
    if (s->kind == 0)
        return r;
    if (s->kind == 1)
        return i;
    return (r % s->G) * (s->C / s->G) + i / s->R;
}

static void dj_ref_norm_fwd(const dj_ref_sets *s, double eps, const double *x, const dj_tensor *w,
                            const dj_tensor *b, double *y, double *mean, double *invstd) {
    for (int64_t r = 0; r < s->rows; r++) {
        double m = 0.0, v = 0.0;
        for (int64_t i = 0; i < s->D; i++)
            m += x[dj_ref_at(s, r, i)];
        m /= (double)s->D;
        for (int64_t i = 0; i < s->D; i++)
            v += (x[dj_ref_at(s, r, i)] - m) * (x[dj_ref_at(s, r, i)] - m);
        v /= (double)s->D;
        mean[r] = m;
        invstd[r] = 1.0 / sqrt(v + eps);
        for (int64_t i = 0; i < s->D; i++) {
            int64_t k = dj_ref_par(s, r, i), a = dj_ref_at(s, r, i);
            y[a] = (x[a] - m) * invstd[r] * dj_opt(w, k, 1.0) + dj_opt(b, k, 0.0);
        }
    }
}

/* stats_const: the mean/invstd are constants (eval batch norm). */
static void dj_ref_norm_bwd(const dj_ref_sets *s, int stats_const, const double *x, const dj_tensor *w,
                            const double *mean, const double *invstd, const double *dy, double *dx, double *dw,
                            double *db) {
    for (int64_t r = 0; r < s->rows; r++) {
        double sg = 0.0, sgx = 0.0;
        for (int64_t i = 0; i < s->D; i++) {
            int64_t k = dj_ref_par(s, r, i), a = dj_ref_at(s, r, i);
            double xh = (x[a] - mean[r]) * invstd[r];
            double g = dy[a] * dj_opt(w, k, 1.0);
            sg += g;
            sgx += g * xh;
            if (dw)
                dw[k] += dy[a] * xh;
            if (db)
                db[k] += dy[a];
        }
        if (!dx)
            continue;
        for (int64_t i = 0; i < s->D; i++) {
            int64_t k = dj_ref_par(s, r, i), a = dj_ref_at(s, r, i);
            double xh = (x[a] - mean[r]) * invstd[r];
            double g = dy[a] * dj_opt(w, k, 1.0);
            dx[a] += stats_const ? invstd[r] * g : invstd[r] * (g - sg / (double)s->D - xh * sgx / (double)s->D);
        }
    }
}

static void dj_ref_bn_sets(const dj_tensor *inp, dj_ref_sets *s) {
    dj_nc_rest(inp, &s->N, &s->C, &s->R);
    s->kind = 0, s->rows = s->C, s->D = s->N * s->R, s->G = 0;
}

dj_status dj_batchnorm_ref_forward(const dj_batchnorm_params *p, const dj_tensor *inp, const dj_tensor *weight,
                                   const dj_tensor *bias, dj_tensor *running_mean, dj_tensor *running_var,
                                   dj_tensor *out, dj_tensor *save_mean, dj_tensor *save_invstd) {
    static const char who[] = "dj_batchnorm_ref_forward";
    DJ_TRY(dj_ref_f64(inp, who));
    DJ_TRY(dj_expect_like(out, DJ_DTYPE_F64, inp, who, "output"));
    dj_ref_sets s = {0};
    dj_ref_bn_sets(inp, &s);
    DJ_TRY(dj_expect_vec(save_mean, DJ_DTYPE_F64, s.C, 0, who, "save_mean"));
    DJ_TRY(dj_expect_vec(save_invstd, DJ_DTYPE_F64, s.C, 0, who, "save_invstd"));
    double *mean = save_mean->data, *invstd = save_invstd->data;
    if (p->training) {
        dj_ref_norm_fwd(&s, p->eps, inp->data, weight, bias, out->data, mean, invstd);
        if (running_mean && running_var) {
            double *rm = running_mean->data, *rv = running_var->data;
            for (int64_t c = 0; c < s.C; c++) {
                double var = 1.0 / (invstd[c] * invstd[c]) - p->eps;
                rm[c] = (1.0 - p->momentum) * rm[c] + p->momentum * mean[c];
                rv[c] = (1.0 - p->momentum) * rv[c] + p->momentum * var * (double)s.D / (double)(s.D - 1);
            }
        }
        return DJ_OK;
    }
    if (!running_mean || !running_var)
        return dj_error_set(DJ_ERR_INVALID, who, "eval mode needs the running statistics");
    const double *x = inp->data, *rm = running_mean->data, *rv = running_var->data;
    double *y = out->data;
    for (int64_t c = 0; c < s.C; c++) {
        mean[c] = rm[c];
        invstd[c] = 1.0 / sqrt(rv[c] + p->eps);
        for (int64_t i = 0; i < s.D; i++) {
            int64_t a = dj_ref_at(&s, c, i);
            y[a] = (x[a] - mean[c]) * invstd[c] * dj_opt(weight, c, 1.0) + dj_opt(bias, c, 0.0);
        }
    }
    return DJ_OK;
}

dj_status dj_batchnorm_ref_backward(const dj_batchnorm_params *p, const dj_tensor *inp, const dj_tensor *weight,
                                    const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                    dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    static const char who[] = "dj_batchnorm_ref_backward";
    DJ_TRY(dj_ref_f64(inp, who));
    DJ_TRY(dj_expect_like(dout, DJ_DTYPE_F64, inp, who, "output gradient"));
    dj_ref_sets s = {0};
    dj_ref_bn_sets(inp, &s);
    dj_ref_norm_bwd(&s, !p->training, inp->data, weight, save_mean->data, save_invstd->data, dout->data,
                    dinp ? dinp->data : NULL, dweight ? dweight->data : NULL, dbias ? dbias->data : NULL);
    return DJ_OK;
}

static dj_status dj_ref_ln_sets(int norm_dims, const dj_tensor *inp, dj_ref_sets *s, const char *who) {
    DJ_TRY(dj_ref_f64(inp, who));
    if (norm_dims < 1 || norm_dims > inp->ndim)
        return dj_error_set(DJ_ERR_INVALID, who, "bad norm_dims %d", norm_dims);
    s->kind = 1, s->D = 1, s->G = 0;
    for (int i = inp->ndim - norm_dims; i < inp->ndim; i++)
        s->D *= inp->shape[i];
    s->rows = dj_tensor_numel(inp) / s->D;
    return DJ_OK;
}

dj_status dj_layernorm_ref_forward(int norm_dims, double eps, const dj_tensor *inp, const dj_tensor *weight,
                                   const dj_tensor *bias, dj_tensor *out, dj_tensor *save_mean,
                                   dj_tensor *save_invstd) {
    dj_ref_sets s = {0};
    DJ_TRY(dj_ref_ln_sets(norm_dims, inp, &s, "dj_layernorm_ref_forward"));
    dj_ref_norm_fwd(&s, eps, inp->data, weight, bias, out->data, save_mean->data, save_invstd->data);
    return DJ_OK;
}

dj_status dj_layernorm_ref_backward(int norm_dims, const dj_tensor *inp, const dj_tensor *weight,
                                    const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                    dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    dj_ref_sets s = {0};
    DJ_TRY(dj_ref_ln_sets(norm_dims, inp, &s, "dj_layernorm_ref_backward"));
    dj_ref_norm_bwd(&s, 0, inp->data, weight, save_mean->data, save_invstd->data, dout->data,
                    dinp ? dinp->data : NULL, dweight ? dweight->data : NULL, dbias ? dbias->data : NULL);
    return DJ_OK;
}

static dj_status dj_ref_gn_sets(int groups, const dj_tensor *inp, dj_ref_sets *s, const char *who) {
    DJ_TRY(dj_ref_f64(inp, who));
    dj_nc_rest(inp, &s->N, &s->C, &s->R);
    if (groups <= 0 || s->C % groups)
        return dj_error_set(DJ_ERR_INVALID, who, "groups must divide channels");
    s->kind = 2, s->G = groups, s->rows = s->N * groups, s->D = s->C / groups * s->R;
    return DJ_OK;
}

dj_status dj_groupnorm_ref_forward(int groups, double eps, const dj_tensor *inp, const dj_tensor *weight,
                                   const dj_tensor *bias, dj_tensor *out, dj_tensor *save_mean,
                                   dj_tensor *save_invstd) {
    dj_ref_sets s = {0};
    DJ_TRY(dj_ref_gn_sets(groups, inp, &s, "dj_groupnorm_ref_forward"));
    dj_ref_norm_fwd(&s, eps, inp->data, weight, bias, out->data, save_mean->data, save_invstd->data);
    return DJ_OK;
}

dj_status dj_groupnorm_ref_backward(int groups, const dj_tensor *inp, const dj_tensor *weight,
                                    const dj_tensor *save_mean, const dj_tensor *save_invstd, const dj_tensor *dout,
                                    dj_tensor *dinp, dj_tensor *dweight, dj_tensor *dbias) {
    dj_ref_sets s = {0};
    DJ_TRY(dj_ref_gn_sets(groups, inp, &s, "dj_groupnorm_ref_backward"));
    dj_ref_norm_bwd(&s, 0, inp->data, weight, save_mean->data, save_invstd->data, dout->data,
                    dinp ? dinp->data : NULL, dweight ? dweight->data : NULL, dbias ? dbias->data : NULL);
    return DJ_OK;
}
