/* bf16_rows.c — the row converter of the mixed-precision operators
 * (bf16_internal.h): each element rounded on its own, so the result does not
 * depend on how rows are split over threads. */
#include "nn/bf16_internal.h"

typedef struct dj_bf16_rows_job {
    const float *src;
    int64_t ld, cols;
    uint16_t *dst;
} dj_bf16_rows_job;

static void dj_bf16_rows_range(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_bf16_rows_job *j = arg;
    (void)thread;
    for (int64_t r = r0; r < r1; r++) {
        const float *s = j->src + r * j->ld;
        uint16_t *d = j->dst + r * j->cols;
        for (int64_t c = 0; c < j->cols; c++)
            d[c] = dj_bf16_round(s[c]);
    }
}

void dj_bf16_rows(dj_threadpool *pool, const float *src, int64_t ld, int64_t rows, int64_t cols, uint16_t *dst) {
    dj_bf16_rows_job j = {src, ld, cols, dst};
    int64_t grain = cols > 0 ? 65536 / cols + 1 : rows;
    dj_parallel_for(pool, rows, grain, dj_bf16_rows_range, &j);
}
