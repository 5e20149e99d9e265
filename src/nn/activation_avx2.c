/* activation_avx2.c — the activation row kernels of pw_rows.inc compiled
 * with AVX2 enabled (the Makefile adds the flags for *_avx2.c); called only
 * after dj_cpu_best_isa() reports AVX2. */
#include "nn/pointwise_internal.h"

#define DJ_ACT_ROWS_SUFFIX _avx2
#include "nn/pw_rows.inc"
