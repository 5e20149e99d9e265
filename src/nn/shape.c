/* shape.c — concat (and its backward, split), general permute of up to 5
 * dims (and its inverse), and reshape as a view with one inferred size:
 * how N·C·T·H·W activations become (N, T, H*W, C) tokens and back. */
#include <string.h>

#include "dojo/cpu.h"
#include "nn/pointwise_internal.h"

/* ---- concat -------------------------------------------------------------- */

/* Tensors are viewed as (outer, size along axis * inner). */
typedef struct dj_cat_job {
    int n, axis;
    int64_t inner, out_row;       /* elements after the axis; out's row size */
    const dj_tensor *const *in;   /* forward inputs, or backward gradients */
    float *out;                   /* forward */
    const float *dout;            /* backward */
} dj_cat_job;

static void dj_cat_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_cat_job *j = arg;
    (void)thread;
    for (int64_t r = b; r < e; r++) { /* r = outer row * n + input */
        int64_t row = r / j->n;
        int i = (int)(r % j->n);
        int64_t off = 0;
        for (int k = 0; k < i; k++)
            off += j->in[k]->shape[j->axis] * j->inner;
        const dj_tensor *t = j->in[i];
        int64_t chunk = t->shape[j->axis] * j->inner;
        if (j->out) {
            memcpy(j->out + row * j->out_row + off, (const float *)t->data + row * chunk, (size_t)chunk * sizeof(float));
        } else {
            const float *g = j->dout + row * j->out_row + off;
            float *d = (float *)t->data + row * chunk;
            for (int64_t k = 0; k < chunk; k++)
                d[k] += g[k];
        }
    }
}

/* Checks inputs (or gradients when `grads`, so named in messages) against
 * out, fills the job geometry. */
static dj_status dj_cat_check(const char *op, int axis, int n, const dj_tensor *const *in, const dj_tensor *out,
                              int grads, dj_cat_job *j) {
    DJ_TRY(dj_pw_check(op, "out", out, DJ_DTYPE_F32));
    if (n < 1 || !in)
        return dj_error_set(DJ_ERR_INVALID, op, "%d inputs, need at least 1", n);
    int nd = out->ndim;
    if (axis < -nd || axis >= nd)
        return dj_error_set(DJ_ERR_INVALID, op, "axis %d out of range for %d dims", axis, nd);
    if (axis < 0)
        axis += nd;
    int64_t total = 0;
    char s1[96], s2[96];
    for (int i = 0; i < n; i++) {
        const dj_tensor *t = in[i];
        DJ_TRY(dj_pw_check(op, grads ? "a gradient" : "an input", t, DJ_DTYPE_F32));
        int ok = t->ndim == nd;
        for (int d = 0; ok && d < nd; d++)
            ok = d == axis || t->shape[d] == out->shape[d];
        if (!ok)
            return dj_error_set(DJ_ERR_INVALID, op, "input %d %s does not match out %s except along axis %d", i,
                                dj_shape_string(t->ndim, t->shape, s1, sizeof s1),
                                dj_shape_string(nd, out->shape, s2, sizeof s2), axis);
        total += t->shape[axis];
    }
    if (total != out->shape[axis])
        return dj_error_set(DJ_ERR_INVALID, op, "inputs sum to %lld along axis %d, out %s has %lld", (long long)total,
                            axis, dj_shape_string(nd, out->shape, s2, sizeof s2), (long long)out->shape[axis]);
    memset(j, 0, sizeof *j);
    j->n = n;
    j->axis = axis;
    j->inner = 1;
    for (int d = axis + 1; d < nd; d++)
        j->inner *= out->shape[d];
    j->out_row = out->shape[axis] * j->inner;
    j->in = in;
    return DJ_OK;
}

static void dj_cat_run(const dj_exec *ex, const dj_tensor *out, dj_cat_job *j) {
    if (j->out_row == 0)
        return;
    int64_t outer = dj_tensor_numel(out) / j->out_row;
    dj_parallel_for(dj_pw_pool(ex), outer * j->n, 1 + DJ_PW_GRAIN / (1 + j->out_row / j->n), dj_cat_range, j);
}

dj_status dj_concat_forward(const dj_exec *ex, int axis, int n, const dj_tensor *const *inputs, dj_tensor *out) {
    dj_cat_job j;
    DJ_TRY(dj_cat_check("dj_concat_forward", axis, n, inputs, out, 0, &j));
    j.out = out->data;
    dj_cat_run(ex, out, &j);
    return DJ_OK;
}

/* The gradients' shapes locate the slices, so all must be given. */
dj_status dj_concat_backward(const dj_exec *ex, int axis, int n, const dj_tensor *dout, dj_tensor *const *dinputs) {
    const char *op = "dj_concat_backward";
    if (n < 1 || !dinputs)
        return dj_error_set(DJ_ERR_INVALID, op, "%d gradients, need at least 1", n);
    dj_cat_job j;
    DJ_TRY(dj_cat_check(op, axis, n, (const dj_tensor *const *)dinputs, dout, 1, &j));
    j.dout = dout->data;
    dj_cat_run(ex, dout, &j);
    return DJ_OK;
}

/* ---- permute --------------------------------------------------------------- */

typedef struct dj_perm_job {
    int64_t y[DJ_MAX_DIMS];  /* y's shape padded to 5 */
    int64_t xs[DJ_MAX_DIMS]; /* stride in x of each y dim */
    const float *src;
    float *dst;
    int backward;            /* 0: y = x[perm]; 1: dx[perm] += dy */
} dj_perm_job;

static void dj_perm_rows(void *arg, int64_t b, int64_t e, int thread) {
    const dj_perm_job *j = arg;
    int64_t L = j->y[4], s = j->xs[4];
    (void)thread;
    for (int64_t r = b; r < e; r++) {
        int64_t rem = r, off = 0;
        for (int d = 3; d >= 0; d--) {
            off += (rem % j->y[d]) * j->xs[d];
            rem /= j->y[d];
        }
        if (!j->backward) {
            const float *x = j->src + off;
            float *y = j->dst + r * L;
            if (s == 1)
                memcpy(y, x, (size_t)L * sizeof *y);
            else
                for (int64_t i = 0; i < L; i++)
                    y[i] = x[i * s];
        } else {
            const float *dy = j->src + r * L;
            float *dx = j->dst + off;
            for (int64_t i = 0; i < L; i++)
                dx[i * s] += dy[i];
        }
    }
}

static int64_t dj_tensor_numel_5(const int64_t *s) { return s[0] * s[1] * s[2] * s[3] * s[4]; }

/* Tiled path when y's last dim is strided in x but another y dim k is x's
 * contiguous one (NCTHW -> NTHWC): 8 x 8 tiles over dims (k, 4), so both
 * sides stay in cache (larger tiles measured slower: the rows of x lie a
 * near-multiple of 4 KiB apart and collide in the cache sets). Items: (other three dims) x (tiles along k). */
enum { DJ_PERM_TILE = 8 };

#if defined(__x86_64__)
void dj_transpose8x8_avx2(const float *src, int64_t ss, float *dst, int64_t ds, int accumulate);
#endif

typedef struct dj_perm_tiled {
    const dj_perm_job *j;
    int k;
    int avx2; /* full 8 x 8 tiles through dj_transpose8x8_avx2 */
    int64_t ys[DJ_MAX_DIMS]; /* y's contiguous strides */
    int64_t tiles_k;
} dj_perm_tiled;

static void dj_perm_tile_range(void *arg, int64_t b, int64_t e, int thread) {
    const dj_perm_tiled *t = arg;
    const dj_perm_job *j = t->j;
    int k = t->k;
    int64_t L = j->y[4], s4 = j->xs[4], yk = t->ys[k];
    (void)thread;
    for (int64_t it = b; it < e; it++) {
        int64_t rem = it / t->tiles_k, k0 = (it % t->tiles_k) * DJ_PERM_TILE, xo = 0, yo = 0;
        for (int d = 3; d >= 0; d--) {
            if (d == k)
                continue;
            int64_t c = rem % j->y[d];
            rem /= j->y[d];
            xo += c * j->xs[d];
            yo += c * t->ys[d];
        }
        int64_t k1 = k0 + DJ_PERM_TILE < j->y[k] ? k0 + DJ_PERM_TILE : j->y[k];
        for (int64_t i0 = 0; i0 < L; i0 += DJ_PERM_TILE) {
            int64_t i1 = i0 + DJ_PERM_TILE < L ? i0 + DJ_PERM_TILE : L;
#if defined(__x86_64__)
            if (t->avx2 && k1 - k0 == 8 && i1 - i0 == 8) {
                if (!j->backward) /* x rows i (stride s4), cols k -> y rows k (stride yk), cols i */
                    dj_transpose8x8_avx2(j->src + xo + k0 + i0 * s4, s4, j->dst + yo + k0 * yk + i0, yk, 0);
                else
                    dj_transpose8x8_avx2(j->src + yo + k0 * yk + i0, yk, j->dst + xo + k0 + i0 * s4, s4, 1);
                continue;
            }
#endif
            for (int64_t kk = k0; kk < k1; kk++) {
                int64_t xb = xo + kk, yb = yo + kk * yk; /* x stride along k is 1 */
                if (!j->backward)
                    for (int64_t i = i0; i < i1; i++)
                        j->dst[yb + i] = j->src[xb + i * s4];
                else
                    for (int64_t i = i0; i < i1; i++)
                        j->dst[xb + i * s4] += j->src[yb + i];
            }
        }
    }
}

/* Returns 1 when the tiled path ran. */
static int dj_perm_try_tiled(const dj_exec *ex, const dj_perm_job *j) {
    if (j->xs[4] == 1 || j->y[4] < 4)
        return 0;
    dj_perm_tiled t = {j, -1, dj_cpu_best_isa() >= DJ_CPU_ISA_AVX2, {0}, 0};
    for (int d = 0; d < 4; d++)
        if (j->xs[d] == 1 && j->y[d] >= 4)
            t.k = d;
    if (t.k < 0)
        return 0;
    int64_t r = 1, outer = 1;
    for (int d = DJ_MAX_DIMS - 1; d >= 0; d--) {
        t.ys[d] = r;
        r *= j->y[d];
        if (d != t.k && d != 4)
            outer *= j->y[d];
    }
    t.tiles_k = (j->y[t.k] + DJ_PERM_TILE - 1) / DJ_PERM_TILE;
    int64_t per_item = DJ_PERM_TILE * j->y[4];
    dj_parallel_for(dj_pw_pool(ex), outer * t.tiles_k, 1 + DJ_PW_GRAIN / per_item, dj_perm_tile_range, &t);
    return 1;
}

/* Merges neighbouring y dims that are also neighbours in x, in the same
 * order ((N,C,T,H,W) -> (N,T,H,W,C) is (N,C,THW) -> (N,THW,C)): fewer, longer
 * dims make longer contiguous runs for the tiles. */
static void dj_perm_coalesce(dj_perm_job *j) {
    int64_t Y[DJ_MAX_DIMS], S[DJ_MAX_DIMS];
    int k = DJ_MAX_DIMS - 1;
    Y[k] = j->y[4], S[k] = j->xs[4];
    for (int d = DJ_MAX_DIMS - 2; d >= 0; d--) {
        if (j->y[d] == 1)
            continue;
        if (Y[k] == 1) {
            Y[k] = j->y[d], S[k] = j->xs[d];
        } else if (j->xs[d] == S[k] * Y[k]) {
            Y[k] *= j->y[d];
        } else {
            k--;
            Y[k] = j->y[d], S[k] = j->xs[d];
        }
    }
    for (int d = 0; d < DJ_MAX_DIMS; d++) {
        j->y[d] = d < k ? 1 : Y[d];
        j->xs[d] = d < k ? 0 : S[d];
    }
}

static dj_status dj_perm_plan(const char *op, const int *perm, const dj_tensor *x, const dj_tensor *y,
                              dj_perm_job *j) {
    DJ_TRY(dj_pw_check(op, "x", x, DJ_DTYPE_F32));
    DJ_TRY(dj_pw_check(op, "y", y, DJ_DTYPE_F32));
    int nd = x->ndim, seen[DJ_MAX_DIMS] = {0};
    if (!perm)
        return dj_error_set(DJ_ERR_INVALID, op, "perm is NULL");
    for (int i = 0; i < nd; i++) {
        if (perm[i] < 0 || perm[i] >= nd || seen[perm[i]]++)
            return dj_error_set(DJ_ERR_INVALID, op, "perm is not a permutation of 0..%d (entry %d = %d)", nd - 1, i,
                                perm[i]);
    }
    int64_t want[DJ_MAX_DIMS], xs[DJ_MAX_DIMS], r = 1;
    for (int d = nd - 1; d >= 0; d--) {
        xs[d] = r;
        r *= x->shape[d];
    }
    int ok = y->ndim == nd;
    for (int i = 0; i < nd; i++) {
        want[i] = x->shape[perm[i]];
        ok = ok && y->shape[i] == want[i];
    }
    if (!ok) {
        char s1[96], s2[96], s3[96];
        return dj_error_set(DJ_ERR_INVALID, op, "y %s is not x %s permuted (expected %s)",
                            dj_shape_string(y->ndim, y->shape, s1, sizeof s1),
                            dj_shape_string(nd, x->shape, s2, sizeof s2), dj_shape_string(nd, want, s3, sizeof s3));
    }
    int pad = DJ_MAX_DIMS - nd;
    for (int d = 0; d < DJ_MAX_DIMS; d++) {
        j->y[d] = d < pad ? 1 : want[d - pad];
        j->xs[d] = d < pad ? 0 : xs[perm[d - pad]];
    }
    dj_perm_coalesce(j);
    return DJ_OK;
}

static void dj_perm_run(const dj_exec *ex, dj_perm_job *j) {
    if (dj_tensor_numel_5(j->y) > 0 && dj_perm_try_tiled(ex, j))
        return;
    int64_t rows = j->y[0] * j->y[1] * j->y[2] * j->y[3], L = j->y[4];
    if (rows && L)
        dj_parallel_for(dj_pw_pool(ex), rows, 1 + DJ_PW_GRAIN / L, dj_perm_rows, j);
}

dj_status dj_permute_forward(const dj_exec *ex, const int *perm, const dj_tensor *x, dj_tensor *y) {
    dj_perm_job j;
    DJ_TRY(dj_perm_plan("dj_permute_forward", perm, x, y, &j));
    j.src = x->data;
    j.dst = y->data;
    j.backward = 0;
    dj_perm_run(ex, &j);
    return DJ_OK;
}

dj_status dj_permute_backward(const dj_exec *ex, const int *perm, const dj_tensor *dy, dj_tensor *dx) {
    if (!dx)
        return DJ_OK;
    dj_perm_job j;
    DJ_TRY(dj_perm_plan("dj_permute_backward", perm, dx, dy, &j));
    j.src = dy->data;
    j.dst = dx->data;
    j.backward = 1;
    dj_perm_run(ex, &j);
    return DJ_OK;
}

/* ---- reshape ------------------------------------------------------------------ */

dj_status dj_reshape(const dj_tensor *x, int ndim, const int64_t *shape, dj_tensor *out) {
    const char *op = "dj_reshape";
    if (!x || !shape || !out)
        return dj_error_set(DJ_ERR_INVALID, op, "NULL argument");
    if (ndim < 0 || ndim > DJ_MAX_DIMS)
        return dj_error_set(DJ_ERR_INVALID, op, "%d dimensions, at most %d supported", ndim, DJ_MAX_DIMS);
    int64_t s[DJ_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0)
                return dj_error_set(DJ_ERR_INVALID, op, "more than one -1 in the new shape");
            infer = i;
        } else if (shape[i] < 0) {
            return dj_error_set(DJ_ERR_INVALID, op, "negative size %lld in the new shape", (long long)shape[i]);
        } else {
            known *= shape[i];
        }
    }
    int64_t n = dj_tensor_numel(x);
    if (infer >= 0) {
        char s1[96];
        if (known == 0 || n % known)
            return dj_error_set(DJ_ERR_INVALID, op, "cannot infer -1: %s has %lld elements, not a multiple of %lld",
                                dj_shape_string(x->ndim, x->shape, s1, sizeof s1), (long long)n, (long long)known);
        s[infer] = n / known;
    }
    return dj_tensor_reshape(x, ndim, s, out);
}
