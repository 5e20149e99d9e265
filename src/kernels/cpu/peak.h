/* peak.h — the machine's fused-multiply-add peak, measured on the pool's
 * threads, for the benchmarks that report a fraction of it (`dojo bench
 * gemm`, `dojo bench train-step`). Internal to dojo (src/). */
#ifndef DOJO_KERNELS_CPU_PEAK_H
#define DOJO_KERNELS_CPU_PEAK_H

#include "dojo/cpu.h"
#include "dojo/threadpool.h"

/* Best of 3 runs of a tight loop of independent FMAs on registers with the
 * given ISA on every thread of the pool, in GFLOP/s (2 flops per lane per
 * FMA). bf16 = 1 times vdpbf16ps instead (AVX-512 with avx512_bf16 only;
 * other ISAs fall back to the float32 FMA loop). */
double dj_cpu_peak_gflops(dj_threadpool *pool, dj_cpu_isa isa, int bf16);
/* The same with `reps` runs of `iters` loop steps each (a short paired
 * measurement beside each timed run uses 1 x 2e6). */
double dj_cpu_peak_gflops_n(dj_threadpool *pool, dj_cpu_isa isa, int bf16, int reps, int64_t iters);

#endif
