/* yuv_rows.c — the generic build of the 4:2:0 row kernels (yuv_rows.inc)
 * and the choice among the builds by CPU. */
#include "video/yuv_rows.h"

#include "dojo/cpu.h"

#define DJ_YUV_ROW dj_yuv_row_generic
#define DJ_YUV_RESIZE_ROW dj_yuv_resize_row_generic
#define DJ_YUV_STORE dj_yuv_store_generic
#include "video/yuv_rows.inc"

dj_yuv_kernels dj_yuv_select(void) {
    dj_yuv_kernels k = {dj_yuv_row_generic, dj_yuv_resize_row_generic};
#if defined(__x86_64__)
    dj_cpu_isa isa = dj_cpu_best_isa();
    if (isa == DJ_CPU_ISA_AVX512)
        k = (dj_yuv_kernels){dj_yuv_row_avx512, dj_yuv_resize_row_avx512};
    else if (isa == DJ_CPU_ISA_AVX2)
        k = (dj_yuv_kernels){dj_yuv_row_avx2, dj_yuv_resize_row_avx2};
#endif
    return k;
}
