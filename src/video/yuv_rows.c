/* yuv_rows.c — the generic build of the 4:2:0 row kernel (yuv_rows.inc) and
 * the choice among the builds by CPU. */
#include "video/yuv_rows.h"

#include "dojo/cpu.h"

#define DJ_YUV_ROW dj_yuv_row_generic
#include "video/yuv_rows.inc"

dj_yuv_row_fn dj_yuv_row_select(void) {
#if defined(__x86_64__)
    dj_cpu_isa isa = dj_cpu_best_isa();
    if (isa == DJ_CPU_ISA_AVX512)
        return dj_yuv_row_avx512;
    if (isa == DJ_CPU_ISA_AVX2)
        return dj_yuv_row_avx2;
#endif
    return dj_yuv_row_generic;
}
