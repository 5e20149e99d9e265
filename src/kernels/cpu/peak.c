/* peak.c — measures the FMA peak of this machine on a thread pool, so that
 * benchmarks can report the fraction of it they reach in the same run. The
 * probes themselves (dj_fma_peak_*) live beside the GEMM kernels of each ISA. */
#include "kernels/cpu/peak.h"

#include <time.h>

#include "kernels/cpu/gemm_kernels.h"

enum { DJ_PEAK_MAX_THREADS = 1024 };

typedef struct dj_peak_job {
    dj_cpu_isa isa;
    int bf16;
    int64_t iters;
    double flops[DJ_PEAK_MAX_THREADS]; /* flops done by each thread */
} dj_peak_job;

static double dj_peak_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void dj_peak_range(void *arg, int64_t begin, int64_t end, int thread) {
    (void)thread;
    dj_peak_job *p = arg;
    for (int64_t t = begin; t < end; t++) {
        double f;
#if defined(__x86_64__)
        if (p->bf16 && p->isa == DJ_CPU_ISA_AVX512 && dj_cpu_bf16_native())
            f = dj_bf16_peak_avx512(p->iters);
        else if (p->isa == DJ_CPU_ISA_AVX512)
            f = dj_fma_peak_avx512(p->iters);
        else if (p->isa == DJ_CPU_ISA_AVX2)
            f = dj_fma_peak_avx2(p->iters);
        else
#endif
            f = dj_fma_peak_scalar(p->iters);
        p->flops[t] = f;
    }
}

double dj_cpu_peak_gflops(dj_threadpool *pool, dj_cpu_isa isa, int bf16) {
    return dj_cpu_peak_gflops_n(pool, isa, bf16, 3, 10000000);
}

double dj_cpu_peak_gflops_n(dj_threadpool *pool, dj_cpu_isa isa, int bf16, int reps, int64_t iters) {
    static dj_peak_job p; /* large; one measurement at a time */
    int nt = dj_threadpool_size(pool);
    if (nt > DJ_PEAK_MAX_THREADS)
        nt = DJ_PEAK_MAX_THREADS;
    p.isa = isa;
    p.bf16 = bf16;
    p.iters = isa == DJ_CPU_ISA_SCALAR ? 2 * iters : iters;
    double best = 0.0;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = dj_peak_now();
        dj_parallel_for(pool, nt, 1, dj_peak_range, &p);
        double dt = dj_peak_now() - t0, flops = 0.0;
        for (int t = 0; t < nt; t++)
            flops += p.flops[t];
        if (dt > 0 && flops / dt > best)
            best = flops / dt;
    }
    return best * 1e-9;
}
