/* yuv_rows_avx2.c — the 4:2:0 row kernel of yuv_rows.inc compiled with AVX2
 * and FMA enabled (the Makefile adds the flags for *_avx2.c); called only
 * after dj_cpu_best_isa() reports AVX2. */
#include "video/yuv_rows.h"

#define DJ_YUV_ROW dj_yuv_row_avx2
#define DJ_YUV_RESIZE_ROW dj_yuv_resize_row_avx2
#define DJ_YUV_STORE dj_yuv_store_avx2
#include "video/yuv_rows.inc"
