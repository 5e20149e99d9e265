/* activation_avx512.c — the activation row kernels of pw_rows.inc compiled
 * with AVX512 enabled (the Makefile adds the flags for *_avx512.c); called only
 * after dj_cpu_best_isa() reports AVX512. */
#include "nn/pointwise_internal.h"

#define DJ_ACT_ROWS_SUFFIX _avx512
#include "nn/pw_rows.inc"
