/* spatial_check.c — shape checks and small reductions shared by the spatial
 * operators. */
#include <stdio.h>

#include "nn/spatial_internal.h"

dj_status dj_expect_like(const dj_tensor *t, dj_dtype dt, const dj_tensor *like, const char *who, const char *what) {
    char where[160];
    snprintf(where, sizeof where, "%s %s", who, what);
    return dj_tensor_expect(t, dt, like->ndim, like->shape, where);
}

dj_status dj_expect_vec(const dj_tensor *t, dj_dtype dt, int64_t n, int optional, const char *who, const char *what) {
    if (!t && optional)
        return DJ_OK;
    char where[160];
    snprintf(where, sizeof where, "%s %s", who, what);
    return dj_tensor_expect(t, dt, 1, &n, where);
}

void dj_nc_rest(const dj_tensor *t, int64_t *N, int64_t *C, int64_t *rest) {
    *N = t->shape[0];
    *C = t->shape[1];
    *rest = 1;
    for (int i = 2; i < t->ndim; i++)
        *rest *= t->shape[i];
}

void dj_colsum_add(const float *a, int64_t rows, int64_t cols, int64_t c0, int64_t c1, float *out) {
    enum { CHUNK = 64 };
    for (int64_t b = c0; b < c1; b += CHUNK) {
        const int64_t n = c1 - b < CHUNK ? c1 - b : CHUNK;
        double acc[CHUNK] = {0};
        for (int64_t r = 0; r < rows; r++) {
            const float *row = a + r * cols + b;
            for (int64_t k = 0; k < n; k++)
                acc[k] += row[k];
        }
        for (int64_t k = 0; k < n; k++)
            out[b + k] += (float)acc[k];
    }
}

/* Fixed-order sums the compiler can vectorise: 8 float lanes over blocks of
 * DJ_SUM_BLOCK values, each block's lanes then added into a double. The
 * order depends on n only, never on threads. */
enum { DJ_SUM_LANES = 8, DJ_SUM_BLOCK = 512 };

static double dj_sum_plain(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t b0 = 0; b0 < n; b0 += DJ_SUM_BLOCK) {
        const int64_t len = n - b0 < DJ_SUM_BLOCK ? n - b0 : DJ_SUM_BLOCK;
        const float *p = x + b0;
        float a[DJ_SUM_LANES] = {0};
        int64_t i = 0;
        for (; i + DJ_SUM_LANES <= len; i += DJ_SUM_LANES)
            for (int k = 0; k < DJ_SUM_LANES; k++)
                a[k] += p[i + k];
        for (; i < len; i++)
            a[0] += p[i];
        for (int k = 0; k < DJ_SUM_LANES; k++)
            s += a[k];
    }
    return s;
}

double dj_sum_f32(const float *x, int64_t n, float m, double *dev) {
    if (!dev)
        return dj_sum_plain(x, n);
    double s = 0.0, d = 0.0;
    for (int64_t b0 = 0; b0 < n; b0 += DJ_SUM_BLOCK) {
        const int64_t len = n - b0 < DJ_SUM_BLOCK ? n - b0 : DJ_SUM_BLOCK;
        const float *p = x + b0;
        float a[DJ_SUM_LANES] = {0}, q[DJ_SUM_LANES] = {0};
        int64_t i = 0;
        for (; i + DJ_SUM_LANES <= len; i += DJ_SUM_LANES)
            for (int k = 0; k < DJ_SUM_LANES; k++) {
                float v = p[i + k], e = v - m;
                a[k] += v;
                q[k] += e * e;
            }
        for (; i < len; i++) {
            float e = p[i] - m;
            a[0] += p[i];
            q[0] += e * e;
        }
        for (int k = 0; k < DJ_SUM_LANES; k++)
            s += a[k], d += q[k];
    }
    *dev = d;
    return s;
}
