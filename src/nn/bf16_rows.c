/* bf16_rows.c — the row converter of the mixed-precision operators
 * (bf16_internal.h): each element rounded on its own (AVX-512 where the CPU
 * has it, the same bits), so the result does not depend on how rows are
 * split over threads. */
#include "dojo/cpu.h"
#include "nn/bf16_internal.h"

typedef struct dj_bf16_rows_job {
    const float *src;
    int64_t ld, cols;
    uint16_t *dst;
} dj_bf16_rows_job;

void dj_bf16_round_ref(const float *src, int64_t n, uint16_t *dst) {
    for (int64_t c = 0; c < n; c++)
        dst[c] = dj_bf16_round(src[c]);
}

dj_bf16_round_fn dj_bf16_round_pick(void) {
#if defined(__x86_64__)
    if (dj_cpu_best_isa() == DJ_CPU_ISA_AVX512)
        return dj_bf16_round_avx512;
#endif
    return dj_bf16_round_ref;
}

static void dj_bf16_rows_range(void *arg, int64_t r0, int64_t r1, int thread) {
    const dj_bf16_rows_job *j = arg;
    (void)thread;
    dj_bf16_round_fn round = dj_bf16_round_pick();
    for (int64_t r = r0; r < r1; r++)
        round(j->src + r * j->ld, j->cols, j->dst + r * j->cols);
}

void dj_bf16_rows(dj_threadpool *pool, const float *src, int64_t ld, int64_t rows, int64_t cols, uint16_t *dst) {
    dj_bf16_rows_job j = {src, ld, cols, dst};
    int64_t grain = cols > 0 ? 65536 / cols + 1 : rows;
    dj_parallel_for(pool, rows, grain, dj_bf16_rows_range, &j);
}
