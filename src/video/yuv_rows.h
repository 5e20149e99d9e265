/* yuv_rows.h — the row kernels of the transform's direct 4:2:0 paths: a crop
 * of an 8-bit YUV 4:2:0 frame converted to RGB planes without libswscale,
 * taken at its own size (dj_yuv_row_fn) or resized (dj_yuv_resize_row_fn).
 * Generic and AVX2 builds of one loop (yuv_rows.inc), an AVX-512 one in
 * intrinsics; dj_yuv_select() picks by CPU. */
#ifndef DJ_YUV_ROWS_H
#define DJ_YUV_ROWS_H

#include <stddef.h>
#include <stdint.h>

/* The colour conversion, in floats:
 *   Y' = (Y - y_off) * y_scale
 *   U' = u16 / 16 - 128, V' likewise (u16: chroma interpolated x16, below)
 *   R = Y' + rv V',  G = Y' - gu U' - gv V',  B = Y' + bu U'
 * each clamped to [0, 255] and rounded to an integer q; uint8 output stores
 * q, float output q * scale[c] + bias[c] (c: R, G, B). */
typedef struct dj_yuv_coef {
    float y_off, y_scale;
    float rv, gu, gv, bu;
    float scale[3], bias[3];
} dj_yuv_coef;

/* One output row: w pixels from luma row `y` (already at the crop's first
 * column x0). Chroma sits at the centre of each 2x2 luma block and is
 * interpolated bilinearly (weights 3/4 and 1/4 each way, edges clamped to the
 * frame): chroma[0], chroma[1] are the U rows nearer and farther from this
 * luma row, chroma[2], chroma[3] the V rows, each cw samples (whole rows).
 * flip mirrors the row. Writes o8[c][0..w) when o8 is not NULL, else
 * o32[c][0..w). work: dj_yuv_row_work(w) floats. */
typedef void (*dj_yuv_row_fn)(const dj_yuv_coef *k, const uint8_t *y, const uint8_t *const chroma[4], int cw, int x0,
                              int w, int flip, uint8_t *const o8[3], float *const o32[3], float *work);

static inline int dj_yuv_row_work(int w) { return 8 * w + 128; }

/* ---- resized ----------------------------------------------------------------
 * A separable filter per plane: vertical taps (rows and weights, for the
 * output row at hand), then horizontal taps (for every output column j:
 * `taps` weights from input column start[j]). Planes: 0 luma, 1 U, 2 V; the
 * row pointers start at the crop's first column (chroma: its chroma
 * column). Output as dj_yuv_row_fn, from U' = U - 128 (no x16 here). */
enum { DJ_YUV_MAX_TAPS = 48 };

typedef struct dj_yuv_taps {
    int taps;
    const int32_t *start; /* [W] */
    const float *w;       /* [W][taps] */
    /* the same by blocks of 16 outputs, for vector builds: block b reads
     * input base[b] + off[b][lane] + t with weight bw[b][t][lane], all within
     * `span` inputs of base[b] (lanes past W repeat the last output) */
    int span;
    const int32_t *base, *off; /* [W/16 rounded up], [..][16] */
    const float *bw;           /* [..][taps][16] */
} dj_yuv_taps;

typedef struct dj_yuv_resize_src {
    int in_w[3];                                /* input columns of each plane */
    int vtaps[3];                               /* vertical taps */
    const uint8_t *rows[3][DJ_YUV_MAX_TAPS];
    float vw[3][DJ_YUV_MAX_TAPS];
    dj_yuv_taps h[3];                           /* horizontal taps */
} dj_yuv_resize_src;

typedef void (*dj_yuv_resize_row_fn)(const dj_yuv_coef *k, const dj_yuv_resize_src *s, int W, int flip,
                                     uint8_t *const o8[3], float *const o32[3], float *work);

/* work floats for inputs of up to in_w columns and W outputs */
static inline int dj_yuv_resize_work(int in_w, int W) { return in_w + 8 * W + 256; }

typedef struct dj_yuv_kernels {
    dj_yuv_row_fn row;
    dj_yuv_resize_row_fn resize;
} dj_yuv_kernels;

dj_yuv_kernels dj_yuv_select(void);

/* The builds, for tests that compare them. */
void dj_yuv_row_generic(const dj_yuv_coef *k, const uint8_t *y, const uint8_t *const chroma[4], int cw, int x0, int w,
                        int flip, uint8_t *const o8[3], float *const o32[3], float *work);
#if defined(__x86_64__)
void dj_yuv_row_avx2(const dj_yuv_coef *k, const uint8_t *y, const uint8_t *const chroma[4], int cw, int x0, int w,
                     int flip, uint8_t *const o8[3], float *const o32[3], float *work);
void dj_yuv_row_avx512(const dj_yuv_coef *k, const uint8_t *y, const uint8_t *const chroma[4], int cw, int x0, int w,
                       int flip, uint8_t *const o8[3], float *const o32[3], float *work);
#endif
void dj_yuv_resize_row_generic(const dj_yuv_coef *k, const dj_yuv_resize_src *s, int W, int flip,
                               uint8_t *const o8[3], float *const o32[3], float *work);
#if defined(__x86_64__)
void dj_yuv_resize_row_avx2(const dj_yuv_coef *k, const dj_yuv_resize_src *s, int W, int flip,
                            uint8_t *const o8[3], float *const o32[3], float *work);
void dj_yuv_resize_row_avx512(const dj_yuv_coef *k, const dj_yuv_resize_src *s, int W, int flip,
                              uint8_t *const o8[3], float *const o32[3], float *work);
#endif

#endif
