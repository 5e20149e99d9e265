/* elementwise.c — add and mul with NumPy/PyTorch broadcasting (up to 5
 * dims), scalar scale, fused bias + activation, residual add + ReLU; forward
 * and backward. Gradients of broadcast inputs are reduced element by element
 * (each output of the reduction sums its pre-image in a fixed order, in
 * double), so the thread count never changes a bit. */
#include <string.h>

#include "nn/pointwise_internal.h"

/* Pads a shape to 5 dims with leading 1s. */
static void dj_pad5(const dj_tensor *t, int64_t *s) {
    int off = DJ_MAX_DIMS - t->ndim;
    for (int d = 0; d < DJ_MAX_DIMS; d++)
        s[d] = d < off ? 1 : t->shape[d - off];
}

/* Merges neighbouring dims that both operands walk the same way (both
 * contiguous across them, or both broadcast), so rows get long: (N,C,T,H,W)
 * + (C,1,1,1) becomes (1,1,N,C,T*H*W) with b's stride 0 along T*H*W. */
static void dj_bcast_coalesce(dj_bcast *g) {
    int64_t O[DJ_MAX_DIMS], A[DJ_MAX_DIMS], B[DJ_MAX_DIMS];
    int k = DJ_MAX_DIMS - 1; /* next free slot, filled from the inside out */
    O[k] = g->out[4], A[k] = g->sa[4], B[k] = g->sb[4];
    for (int d = DJ_MAX_DIMS - 2; d >= 0; d--) {
        if (g->out[d] == 1)
            continue;
        if (O[k] == 1) { /* the inner dim is trivial: take this one's place */
            O[k] = g->out[d], A[k] = g->sa[d], B[k] = g->sb[d];
        } else if (g->sa[d] == A[k] * O[k] && g->sb[d] == B[k] * O[k]) {
            O[k] *= g->out[d];
        } else {
            k--;
            O[k] = g->out[d], A[k] = g->sa[d], B[k] = g->sb[d];
        }
    }
    for (int d = 0; d < DJ_MAX_DIMS; d++) {
        g->out[d] = d < k ? 1 : O[d];
        g->sa[d] = d < k ? 0 : A[d];
        g->sb[d] = d < k ? 0 : B[d];
    }
}

dj_status dj_bcast_plan(const char *op, const dj_tensor *a, const dj_tensor *b, const dj_tensor *out, dj_bcast *g) {
    int64_t A[DJ_MAX_DIMS], B[DJ_MAX_DIMS], O[DJ_MAX_DIMS];
    dj_pad5(a, A);
    dj_pad5(b, B);
    dj_pad5(out, O);
    char s1[96], s2[96], s3[96];
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int ok = out->ndim == nd;
    for (int d = 0; d < DJ_MAX_DIMS; d++) {
        if (A[d] != B[d] && A[d] != 1 && B[d] != 1)
            return dj_error_set(DJ_ERR_INVALID, op, "shapes %s and %s do not broadcast",
                                dj_shape_string(a->ndim, a->shape, s1, sizeof s1),
                                dj_shape_string(b->ndim, b->shape, s2, sizeof s2));
        int64_t want = A[d] == 1 ? B[d] : A[d];
        ok = ok && O[d] == want;
    }
    if (!ok)
        return dj_error_set(DJ_ERR_INVALID, op, "out %s is not the broadcast shape of %s and %s",
                            dj_shape_string(out->ndim, out->shape, s3, sizeof s3),
                            dj_shape_string(a->ndim, a->shape, s1, sizeof s1),
                            dj_shape_string(b->ndim, b->shape, s2, sizeof s2));
    int64_t ra = 1, rb = 1;
    for (int d = DJ_MAX_DIMS - 1; d >= 0; d--) {
        g->out[d] = O[d];
        g->sa[d] = A[d] == 1 && O[d] != 1 ? 0 : ra;
        g->sb[d] = B[d] == 1 && O[d] != 1 ? 0 : rb;
        ra *= A[d];
        rb *= B[d];
    }
    g->na = ra;
    g->nb = rb;
    g->nout = dj_tensor_numel(out);
    dj_bcast_coalesce(g);
    return DJ_OK;
}

/* ---- row loops over the output ------------------------------------------ */

typedef enum { DJ_EW_ADD, DJ_EW_MUL, DJ_EW_ACC, DJ_EW_ACC_MUL } dj_ew_kind;

/* po[o] (op)= p1[o1] (x p2[o2]) for every output element o; p1, p2 indexed
 * through strides s1, s2 (0 = broadcast). Rows are the last dim. */
typedef struct dj_ew_job {
    dj_ew_kind kind;
    const int64_t *out, *s1, *s2;
    const float *p1, *p2;
    float *po;
} dj_ew_job;

static void dj_ew_row(dj_ew_kind kind, int64_t L, const float *p1, int64_t t1, const float *p2, int64_t t2,
                      float *po) {
    if (t1 == 1 && t2 == 1) {
        switch (kind) {
        case DJ_EW_ADD: for (int64_t i = 0; i < L; i++) po[i] = p1[i] + p2[i]; break;
        case DJ_EW_MUL: for (int64_t i = 0; i < L; i++) po[i] = p1[i] * p2[i]; break;
        case DJ_EW_ACC: for (int64_t i = 0; i < L; i++) po[i] += p1[i]; break;
        case DJ_EW_ACC_MUL: for (int64_t i = 0; i < L; i++) po[i] += p1[i] * p2[i]; break;
        }
        return;
    }
    switch (kind) {
    case DJ_EW_ADD: for (int64_t i = 0; i < L; i++) po[i] = p1[i * t1] + p2[i * t2]; break;
    case DJ_EW_MUL: for (int64_t i = 0; i < L; i++) po[i] = p1[i * t1] * p2[i * t2]; break;
    case DJ_EW_ACC: for (int64_t i = 0; i < L; i++) po[i] += p1[i * t1]; break;
    case DJ_EW_ACC_MUL: for (int64_t i = 0; i < L; i++) po[i] += p1[i * t1] * p2[i * t2]; break;
    }
}

static void dj_ew_rows(void *arg, int64_t b, int64_t e, int thread) {
    const dj_ew_job *j = arg;
    const int64_t *O = j->out;
    int64_t L = O[4];
    (void)thread;
    for (int64_t r = b; r < e; r++) {
        int64_t rem = r, o1 = 0, o2 = 0;
        for (int d = 3; d >= 0; d--) {
            int64_t c = rem % O[d];
            rem /= O[d];
            o1 += c * j->s1[d];
            o2 += c * (j->s2 ? j->s2[d] : 0);
        }
        dj_ew_row(j->kind, L, j->p1 + o1, j->s1[4], j->p2 ? j->p2 + o2 : j->p1, j->s2 ? j->s2[4] : 0, j->po + r * L);
    }
}

/* Same shapes: a contiguous range of the flat arrays. */
static void dj_ew_flat(void *arg, int64_t b, int64_t e, int thread) {
    const dj_ew_job *j = arg;
    (void)thread;
    dj_ew_row(j->kind, e - b, j->p1 + b, 1, j->p2 + b, 1, j->po + b);
}

static void dj_ew_run(const dj_exec *ex, const dj_ew_job *j) {
    int64_t L = j->out[4], rows = 1;
    for (int d = 0; d < 4; d++)
        rows *= j->out[d];
    if (L == 0 || rows == 0)
        return;
    dj_parallel_for(dj_pw_pool(ex), rows, 1 + DJ_PW_GRAIN / L, dj_ew_rows, (void *)j);
}

/* Contiguous strides of the output (the layout of dout). */
static void dj_out_strides(const int64_t *O, int64_t *s) {
    int64_t r = 1;
    for (int d = DJ_MAX_DIMS - 1; d >= 0; d--) {
        s[d] = r;
        r *= O[d];
    }
}

/* ---- reduction of dout onto a broadcast input --------------------------- */

typedef struct dj_red_job {
    const int64_t *out, *sx;  /* out shape; strides of the reduced input */
    const int64_t *so;        /* strides of out */
    const int64_t *sy;        /* strides of the other operand (mul) or NULL */
    const float *dout, *y;
    float *dx;
} dj_red_job;

static void dj_red_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_red_job *j = arg;
    const int64_t *O = j->out;
    int64_t X[DJ_MAX_DIMS]; /* shape of the input: 1 where broadcast */
    for (int d = 0; d < DJ_MAX_DIMS; d++)
        X[d] = j->sx[d] == 0 && O[d] != 1 ? 1 : O[d];
    (void)thread;
    for (int64_t i = b; i < e; i++) {
        int64_t c[DJ_MAX_DIMS], lo[DJ_MAX_DIMS], hi[DJ_MAX_DIMS], rem = i;
        for (int d = DJ_MAX_DIMS - 1; d >= 0; d--) {
            c[d] = rem % X[d];
            rem /= X[d];
            lo[d] = X[d] == O[d] ? c[d] : 0;
            hi[d] = X[d] == O[d] ? c[d] + 1 : O[d];
        }
        double s = 0.0;
        for (int64_t i0 = lo[0]; i0 < hi[0]; i0++)
            for (int64_t i1 = lo[1]; i1 < hi[1]; i1++)
                for (int64_t i2 = lo[2]; i2 < hi[2]; i2++)
                    for (int64_t i3 = lo[3]; i3 < hi[3]; i3++) {
                        int64_t oo = i0 * j->so[0] + i1 * j->so[1] + i2 * j->so[2] + i3 * j->so[3];
                        const float *g = j->dout + oo + lo[4];
                        int64_t len = hi[4] - lo[4];
                        if (j->y) {
                            int64_t oy = i0 * j->sy[0] + i1 * j->sy[1] + i2 * j->sy[2] + i3 * j->sy[3];
                            const float *y = j->y + oy + lo[4] * j->sy[4];
                            if (j->sy[4] == 1)
                                s += dj_dot_f32(g, y, len);
                            else
                                for (int64_t i4 = 0; i4 < len; i4++)
                                    s += (double)g[i4] * y[i4 * j->sy[4]];
                        } else {
                            s += dj_sum_f32(g, len);
                        }
                    }
        j->dx[i] += (float)s;
    }
}

/* dx += reduce(dout [* y]) where x has strides sx against out; y (the other
 * operand, strides sy) is NULL for add. */
static void dj_grad_input(const dj_exec *ex, const dj_bcast *g, const int64_t *sx, int64_t nx, const float *dout,
                          const int64_t *sy, const float *y, float *dx) {
    int64_t so[DJ_MAX_DIMS];
    dj_out_strides(g->out, so);
    if (nx == g->nout) { /* not broadcast: element-wise accumulate */
        dj_ew_job j = {y ? DJ_EW_ACC_MUL : DJ_EW_ACC, g->out, so, y ? sy : NULL, dout, y, dx};
        dj_ew_run(ex, &j);
        return;
    }
    dj_red_job j = {g->out, sx, so, y ? sy : NULL, dout, y, dx};
    dj_parallel_for(dj_pw_pool(ex), nx, 1 + (nx ? DJ_PW_GRAIN / (1 + g->nout / nx) : 1), dj_red_range, &j);
}

static dj_status dj_binary_fwd(const dj_exec *ex, int mul, const dj_tensor *a, const dj_tensor *b, dj_tensor *out) {
    const char *op = mul ? "dj_mul_forward" : "dj_add_forward";
    DJ_TRY(dj_pw_check(op, "a", a, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_check(op, "b", b, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_check(op, "out", out, DJ_DTYPE_F32));
    dj_bcast g;
    DJ_TRY(dj_bcast_plan(op, a, b, out, &g));
    dj_ew_job j = {mul ? DJ_EW_MUL : DJ_EW_ADD, g.out, g.sa, g.sb, a->data, b->data, out->data};
    if (g.na == g.nout && g.nb == g.nout) /* same shapes: one flat loop */
        dj_parallel_for(dj_pw_pool(ex), g.nout, DJ_PW_GRAIN, dj_ew_flat, &j);
    else
        dj_ew_run(ex, &j);
    return DJ_OK;
}

static dj_status dj_binary_bwd(const dj_exec *ex, int mul, const dj_tensor *a, const dj_tensor *b,
                               const dj_tensor *dout, dj_tensor *da, dj_tensor *db) {
    const char *op = mul ? "dj_mul_backward" : "dj_add_backward";
    DJ_TRY(dj_pw_check(op, "a", a, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_check(op, "b", b, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_check(op, "dout", dout, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "a", a, "da", da, 1));
    DJ_TRY(dj_pw_same(op, "b", b, "db", db, 1));
    dj_bcast g;
    DJ_TRY(dj_bcast_plan(op, a, b, dout, &g));
    if (da)
        dj_grad_input(ex, &g, g.sa, g.na, dout->data, g.sb, mul ? b->data : NULL, da->data);
    if (db)
        dj_grad_input(ex, &g, g.sb, g.nb, dout->data, g.sa, mul ? a->data : NULL, db->data);
    return DJ_OK;
}

dj_status dj_add_forward(const dj_exec *ex, const dj_tensor *a, const dj_tensor *b, dj_tensor *out) {
    return dj_binary_fwd(ex, 0, a, b, out);
}
dj_status dj_mul_forward(const dj_exec *ex, const dj_tensor *a, const dj_tensor *b, dj_tensor *out) {
    return dj_binary_fwd(ex, 1, a, b, out);
}
dj_status dj_add_backward(const dj_exec *ex, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                          dj_tensor *da, dj_tensor *db) {
    return dj_binary_bwd(ex, 0, a, b, dout, da, db);
}
dj_status dj_mul_backward(const dj_exec *ex, const dj_tensor *a, const dj_tensor *b, const dj_tensor *dout,
                          dj_tensor *da, dj_tensor *db) {
    return dj_binary_bwd(ex, 1, a, b, dout, da, db);
}

/* ---- scale ------------------------------------------------------------------ */

typedef struct dj_scale_job {
    float alpha;
    const float *x;
    float *y;
    int acc;
} dj_scale_job;

static void dj_scale_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_scale_job *j = arg;
    (void)thread;
    if (j->acc)
        for (int64_t i = b; i < e; i++)
            j->y[i] += j->alpha * j->x[i];
    else
        for (int64_t i = b; i < e; i++)
            j->y[i] = j->alpha * j->x[i];
}

dj_status dj_scale_forward(const dj_exec *ex, float alpha, const dj_tensor *x, dj_tensor *y) {
    DJ_TRY(dj_pw_check("dj_scale_forward", "x", x, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same("dj_scale_forward", "x", x, "y", y, 0));
    dj_scale_job j = {alpha, x->data, y->data, 0};
    dj_parallel_for(dj_pw_pool(ex), dj_tensor_numel(x), DJ_PW_GRAIN, dj_scale_range, &j);
    return DJ_OK;
}

dj_status dj_scale_backward(const dj_exec *ex, float alpha, const dj_tensor *dy, dj_tensor *dx) {
    DJ_TRY(dj_pw_check("dj_scale_backward", "dy", dy, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same("dj_scale_backward", "dy", dy, "dx", dx, 1));
    if (!dx)
        return DJ_OK;
    dj_scale_job j = {alpha, dy->data, dx->data, 1};
    dj_parallel_for(dj_pw_pool(ex), dj_tensor_numel(dy), DJ_PW_GRAIN, dj_scale_range, &j);
    return DJ_OK;
}

/* ---- fused bias + activation ------------------------------------------------ */

/* x viewed as (N, C, P): P = product of the dims after the channel. */
typedef struct dj_bias_job {
    dj_pw_rows rows;
    dj_act act;
    int64_t N, C, P;
    const float *x, *bias, *dy;
    float *y; /* forward output, or dx */
    float *dbias;
} dj_bias_job;

static void dj_bias_fwd_rows(void *arg, int64_t b, int64_t e, int thread) {
    const dj_bias_job *j = arg;
    (void)thread;
    for (int64_t r = b; r < e; r++) /* r = n*C + c */
        j->rows.forward(j->act, j->x + r * j->P, j->bias[r % j->C], j->y + r * j->P, j->P);
}

static void dj_bias_bwd_dx_rows(void *arg, int64_t b, int64_t e, int thread) {
    const dj_bias_job *j = arg;
    (void)thread;
    for (int64_t r = b; r < e; r++)
        j->rows.backward(j->act, j->x + r * j->P, j->bias[r % j->C], j->dy + r * j->P, j->y + r * j->P, j->P);
}

/* One channel per iteration: dz = dy * f'(x + bias) block by block (one
 * evaluation of f'), dx += dz when wanted, dbias[c] += sum over n, then
 * positions, of dz (dj_sum_f32 per block, blocks in order). */
static void dj_bias_bwd_db_rows(void *arg, int64_t b, int64_t e, int thread) {
    const dj_bias_job *j = arg;
    float dz[1024];
    (void)thread;
    for (int64_t c = b; c < e; c++) {
        double s = 0.0;
        for (int64_t n = 0; n < j->N; n++) {
            int64_t base = (n * j->C + c) * j->P;
            for (int64_t i = 0; i < j->P; i += 1024) {
                int64_t m = j->P - i < 1024 ? j->P - i : 1024;
                memset(dz, 0, (size_t)m * sizeof *dz);
                j->rows.backward(j->act, j->x + base + i, j->bias[c], j->dy + base + i, dz, m);
                if (j->y) {
                    float *dx = j->y + base + i;
                    for (int64_t k = 0; k < m; k++)
                        dx[k] += dz[k];
                }
                s += dj_sum_f32(dz, m);
            }
        }
        j->dbias[c] += (float)s;
    }
}

static dj_status dj_bias_check(const char *op, dj_act act, const dj_tensor *x, const dj_tensor *bias, dj_bias_job *j) {
    DJ_TRY(dj_pw_act_valid(op, act));
    DJ_TRY(dj_pw_check(op, "x", x, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_check(op, "bias", bias, DJ_DTYPE_F32));
    char s1[96], s2[96];
    if (x->ndim < 2 || bias->ndim != 1 || bias->shape[0] != x->shape[1])
        return dj_error_set(DJ_ERR_INVALID, op, "bias %s does not match the channels of x %s (N,C,...)",
                            dj_shape_string(bias->ndim, bias->shape, s1, sizeof s1),
                            dj_shape_string(x->ndim, x->shape, s2, sizeof s2));
    memset(j, 0, sizeof *j);
    j->rows = dj_pw_rows_select();
    j->act = act;
    j->N = x->shape[0];
    j->C = x->shape[1];
    j->P = 1;
    for (int d = 2; d < x->ndim; d++)
        j->P *= x->shape[d];
    j->x = x->data;
    j->bias = bias->data;
    return DJ_OK;
}

dj_status dj_bias_act_forward(const dj_exec *ex, dj_act act, const dj_tensor *x, const dj_tensor *bias, dj_tensor *y) {
    const char *op = "dj_bias_act_forward";
    dj_bias_job j;
    DJ_TRY(dj_bias_check(op, act, x, bias, &j));
    DJ_TRY(dj_pw_same(op, "x", x, "y", y, 0));
    j.y = y->data;
    if (j.P > 0)
        dj_parallel_for(dj_pw_pool(ex), j.N * j.C, 1 + DJ_PW_GRAIN / j.P, dj_bias_fwd_rows, &j);
    return DJ_OK;
}

dj_status dj_bias_act_backward(const dj_exec *ex, dj_act act, const dj_tensor *x, const dj_tensor *bias,
                               const dj_tensor *dy, dj_tensor *dx, dj_tensor *dbias) {
    const char *op = "dj_bias_act_backward";
    dj_bias_job j;
    DJ_TRY(dj_bias_check(op, act, x, bias, &j));
    DJ_TRY(dj_pw_same(op, "x", x, "dy", dy, 0));
    DJ_TRY(dj_pw_same(op, "x", x, "dx", dx, 1));
    DJ_TRY(dj_pw_same(op, "bias", bias, "dbias", dbias, 1));
    j.dy = dy->data;
    if (j.P == 0)
        return DJ_OK;
    j.y = dx ? dx->data : NULL;
    if (dbias) { /* dx and dbias in one pass, by channel */
        j.dbias = dbias->data;
        dj_parallel_for(dj_pw_pool(ex), j.C, 1 + DJ_PW_GRAIN / (j.P * (j.N ? j.N : 1)), dj_bias_bwd_db_rows, &j);
    } else if (dx) {
        dj_parallel_for(dj_pw_pool(ex), j.N * j.C, 1 + DJ_PW_GRAIN / j.P, dj_bias_bwd_dx_rows, &j);
    }
    return DJ_OK;
}

/* ---- residual add + ReLU ----------------------------------------------------- */

typedef struct dj_addrelu_job {
    const float *a, *b;
    float *y, *dres;
} dj_addrelu_job;

static void dj_addrelu_fwd_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_addrelu_job *j = arg;
    (void)thread;
    for (int64_t i = b; i < e; i++) {
        float z = j->a[i] + j->b[i];
        j->y[i] = z < 0.0f ? 0.0f : z; /* NaN propagates, as torch.relu */
    }
}

/* a = y, b = dy, y = dx (may be NULL, or dy itself: in place), dres (may
 * be NULL); dres first, while dy is intact */
static void dj_addrelu_bwd_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_addrelu_job *j = arg;
    (void)thread;
    if (j->dres)
        for (int64_t i = b; i < e; i++) {
            float g = j->b[i];
            j->dres[i] += j->a[i] > 0.0f ? g : 0.0f;
        }
    if (j->y == j->b) /* in place (one pointer, so it vectorises): what += into zeros writes */
        for (int64_t i = b; i < e; i++) {
            float g = j->y[i];
            j->y[i] = 0.0f + (j->a[i] > 0.0f ? g : 0.0f);
        }
    else if (j->y)
        for (int64_t i = b; i < e; i++) {
            float g = j->b[i];
            j->y[i] += j->a[i] > 0.0f ? g : 0.0f;
        }
}

dj_status dj_add_relu_forward(const dj_exec *ex, const dj_tensor *x, const dj_tensor *res, dj_tensor *y) {
    const char *op = "dj_add_relu_forward";
    DJ_TRY(dj_pw_check(op, "x", x, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "x", x, "res", res, 0));
    DJ_TRY(dj_pw_same(op, "x", x, "y", y, 0));
    dj_addrelu_job j = {x->data, res->data, y->data, NULL};
    dj_parallel_for(dj_pw_pool(ex), dj_tensor_numel(x), DJ_PW_GRAIN, dj_addrelu_fwd_range, &j);
    return DJ_OK;
}

dj_status dj_add_relu_backward(const dj_exec *ex, const dj_tensor *y, const dj_tensor *dy, dj_tensor *dx,
                               dj_tensor *dres) {
    const char *op = "dj_add_relu_backward";
    DJ_TRY(dj_pw_check(op, "y", y, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_same(op, "y", y, "dy", dy, 0));
    DJ_TRY(dj_pw_same(op, "y", y, "dx", dx, 1));
    DJ_TRY(dj_pw_same(op, "y", y, "dres", dres, 1));
    dj_addrelu_job j = {y->data, dy->data, dx ? dx->data : NULL, dres ? dres->data : NULL};
    dj_parallel_for(dj_pw_pool(ex), dj_tensor_numel(y), DJ_PW_GRAIN, dj_addrelu_bwd_range, &j);
    return DJ_OK;
}
