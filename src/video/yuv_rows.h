/* yuv_rows.h — the row kernel of the transform's direct 4:2:0 path: a crop
 * of an 8-bit YUV 4:2:0 frame taken at its own size (no resize), converted
 * to RGB planes without libswscale. Generic, AVX2 and AVX-512 builds of one
 * loop (yuv_rows.inc); dj_yuv_row_select() picks by CPU. */
#ifndef DJ_YUV_ROWS_H
#define DJ_YUV_ROWS_H

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

dj_yuv_row_fn dj_yuv_row_select(void);

/* The builds, for tests that compare them. */
void dj_yuv_row_generic(const dj_yuv_coef *k, const uint8_t *y, const uint8_t *const chroma[4], int cw, int x0, int w,
                        int flip, uint8_t *const o8[3], float *const o32[3], float *work);
#if defined(__x86_64__)
void dj_yuv_row_avx2(const dj_yuv_coef *k, const uint8_t *y, const uint8_t *const chroma[4], int cw, int x0, int w,
                     int flip, uint8_t *const o8[3], float *const o32[3], float *work);
void dj_yuv_row_avx512(const dj_yuv_coef *k, const uint8_t *y, const uint8_t *const chroma[4], int cw, int x0, int w,
                       int flip, uint8_t *const o8[3], float *const o32[3], float *work);
#endif

#endif
