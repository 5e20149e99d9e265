/* test_transform.c — frames of several pixel formats, synthesised with known
 * patterns, cropped/converted/resized/flipped/normalised into batch slices. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixfmt.h>

#include "dojo/cpu.h"
#include "dojo/transform.h"
#include "support/test.h"
#include "video/yuv_rows.h"

/* A frame with tightly sized planes (no padding) so over-reads show up. */
typedef struct test_frame {
    dj_frame_view v;
    uint8_t *buf[4];
} test_frame;

typedef struct rgb {
    int r, g, b;
} rgb;

typedef rgb (*pattern_fn)(int x, int y, int w, int h);

static void frame_alloc(test_frame *f, int fmt, int w, int h) {
    memset(f, 0, sizeof *f);
    f->v.width = w;
    f->v.height = h;
    f->v.format = fmt;
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    int ls[4] = {0}, rows[4] = {0};
    switch (fmt) {
    case AV_PIX_FMT_YUV420P: ls[0] = w, rows[0] = h, ls[1] = ls[2] = cw, rows[1] = rows[2] = ch; break;
    case AV_PIX_FMT_NV12: ls[0] = w, rows[0] = h, ls[1] = 2 * cw, rows[1] = ch; break;
    case AV_PIX_FMT_YUV444P: ls[0] = ls[1] = ls[2] = w, rows[0] = rows[1] = rows[2] = h; break;
    case AV_PIX_FMT_RGB24: ls[0] = 3 * w, rows[0] = h; break;
    case AV_PIX_FMT_GRAY8: ls[0] = w, rows[0] = h; break;
    }
    for (int p = 0; p < 4 && ls[p]; p++) {
        f->buf[p] = malloc((size_t)ls[p] * rows[p]);
        f->v.data[p] = f->buf[p];
        f->v.linesize[p] = ls[p];
    }
}

static void frame_free(test_frame *f) {
    for (int p = 0; p < 4; p++)
        free(f->buf[p]);
}

static int clamp255(double v) { return v < 0 ? 0 : v > 255 ? 255 : (int)(v + 0.5); }

/* BT.601 (kr 0.299, kb 0.114) limited or full range. */
static void rgb_to_yuv(rgb c, int full, int *y, int *u, int *v) {
    double Y = 0.299 * c.r + 0.587 * c.g + 0.114 * c.b;
    double U = (c.b - Y) / 1.772, V = (c.r - Y) / 1.402;
    if (full) {
        *y = clamp255(Y), *u = clamp255(128 + U), *v = clamp255(128 + V);
    } else {
        *y = clamp255(16 + Y * 219 / 255), *u = clamp255(128 + U * 224 / 255), *v = clamp255(128 + V * 224 / 255);
    }
}

/* Fills every pixel from pat; chroma of subsampled formats from the
 * top-left pixel of each 2x2 block. */
static void frame_fill(test_frame *f, pattern_fn pat, int full) {
    int w = f->v.width, h = f->v.height, fmt = f->v.format;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            rgb c = pat(x, y, w, h);
            int Y, U, V;
            rgb_to_yuv(c, full, &Y, &U, &V);
            uint8_t **d = f->buf;
            int *ls = f->v.linesize;
            switch (fmt) {
            case AV_PIX_FMT_RGB24:
                d[0][y * ls[0] + 3 * x] = (uint8_t)c.r;
                d[0][y * ls[0] + 3 * x + 1] = (uint8_t)c.g;
                d[0][y * ls[0] + 3 * x + 2] = (uint8_t)c.b;
                break;
            case AV_PIX_FMT_GRAY8: d[0][y * ls[0] + x] = (uint8_t)c.g; break;
            case AV_PIX_FMT_YUV444P:
                d[0][y * ls[0] + x] = (uint8_t)Y, d[1][y * ls[1] + x] = (uint8_t)U, d[2][y * ls[2] + x] = (uint8_t)V;
                break;
            default:
                d[0][y * ls[0] + x] = (uint8_t)Y;
                if (x % 2 == 0 && y % 2 == 0) {
                    if (fmt == AV_PIX_FMT_NV12)
                        d[1][(y / 2) * ls[1] + x] = (uint8_t)U, d[1][(y / 2) * ls[1] + x + 1] = (uint8_t)V;
                    else
                        d[1][(y / 2) * ls[1] + x / 2] = (uint8_t)U, d[2][(y / 2) * ls[2] + x / 2] = (uint8_t)V;
                }
            }
        }
}

static rgb g_solid;
static rgb pat_solid(int x, int y, int w, int h) { return g_solid; }
static rgb pat_red_blue(int x, int y, int w, int h) { return x < w / 2 ? (rgb){255, 0, 0} : (rgb){0, 0, 255}; }
static rgb pat_gradient(int x, int y, int w, int h) {
    int v = x * 255 / (w - 1);
    return (rgb){v, v, v};
}
/* 8x8 blocks of six colours. */
static rgb pat_blocks(int x, int y, int w, int h) {
    static const rgb pal[6] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}, {0, 255, 255}, {255, 255, 255}};
    return pal[((x / 8) + 2 * (y / 8)) % 6];
}

static const int k_formats[] = {AV_PIX_FMT_YUV420P, AV_PIX_FMT_NV12, AV_PIX_FMT_YUV444P, AV_PIX_FMT_RGB24};

static uint8_t px(const dj_tensor *b, int n, int c, int t, int y, int x) {
    int64_t T = b->shape[2], H = b->shape[3], W = b->shape[4];
    return ((uint8_t *)b->data)[(((n * 3 + c) * T + t) * H + y) * W + x];
}

static float pxf(const dj_tensor *b, int n, int c, int t, int y, int x) {
    int64_t T = b->shape[2], H = b->shape[3], W = b->shape[4];
    return ((float *)b->data)[(((n * 3 + c) * T + t) * H + y) * W + x];
}

static dj_tensor batch_make(dj_dtype dt, int N, int T, int H, int W) {
    dj_tensor b;
    int64_t shape[5] = {N, 3, T, H, W};
    CHECK(dj_tensor_create(dt, 5, shape, &b) == DJ_OK);
    return b;
}

/* Max |out - expected colour| over a slot. */
static int slot_error(const dj_tensor *b, int n, int t, rgb want) {
    int worst = 0, wantc[3] = {want.r, want.g, want.b};
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < b->shape[3]; y++)
            for (int x = 0; x < b->shape[4]; x++) {
                int d = abs((int)px(b, n, c, t, y, x) - wantc[c]);
                worst = d > worst ? d : worst;
            }
    return worst;
}

static void test_writes_only_its_slot(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    test_frame f;
    frame_alloc(&f, AV_PIX_FMT_RGB24, 40, 30);
    g_solid = (rgb){10, 200, 30};
    frame_fill(&f, pat_solid, 1);
    dj_tensor b = batch_make(DJ_DTYPE_U8, 2, 3, 8, 12);
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 1, 2) == DJ_OK);
    CHECK(slot_error(&b, 1, 2, g_solid) <= 1);
    for (int n = 0; n < 2; n++)
        for (int t = 0; t < 3; t++)
            if (!(n == 1 && t == 2))
                CHECK(slot_error(&b, n, t, (rgb){0, 0, 0}) == 0);
    dj_tensor_free(&b);
    frame_free(&f);
    dj_transformer_free(tf);
}

static void test_pure_colours_all_formats(void) {
    static const rgb colours[] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}, {0, 0, 0}, {128, 128, 128}};
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 1, 16, 16);
    for (size_t k = 0; k < sizeof k_formats / sizeof k_formats[0]; k++)
        for (size_t c = 0; c < sizeof colours / sizeof colours[0]; c++) {
            test_frame f;
            frame_alloc(&f, k_formats[k], 32, 24);
            g_solid = colours[c];
            frame_fill(&f, pat_solid, 0);
            CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 0, 0) == DJ_OK);
            int err = slot_error(&b, 0, 0, g_solid);
            CHECK_MSG(err <= 4, "format %d colour %zu: error %d", k_formats[k], c, err);
            frame_free(&f);
        }
    dj_tensor_free(&b);
    dj_transformer_free(tf);
}

static void test_gray_and_full_range(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 1, 8, 8);
    test_frame f;
    frame_alloc(&f, AV_PIX_FMT_GRAY8, 16, 16);
    g_solid = (rgb){100, 100, 100};
    frame_fill(&f, pat_solid, 1);
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 0, 0) == DJ_OK);
    CHECK_MSG(slot_error(&b, 0, 0, g_solid) <= 2, "gray error %d", slot_error(&b, 0, 0, g_solid));
    frame_free(&f);
    /* a full-range frame read as full range; the same bytes read as limited differ */
    frame_alloc(&f, AV_PIX_FMT_YUV420P, 16, 16);
    g_solid = (rgb){250, 20, 20};
    frame_fill(&f, pat_solid, 1);
    f.v.color_range = AVCOL_RANGE_JPEG;
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 0, 0) == DJ_OK);
    CHECK_MSG(slot_error(&b, 0, 0, g_solid) <= 4, "full range error %d", slot_error(&b, 0, 0, g_solid));
    f.v.color_range = AVCOL_RANGE_MPEG;
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 0, 0) == DJ_OK);
    CHECK(slot_error(&b, 0, 0, g_solid) > 8);
    f.v.format = AV_PIX_FMT_YUVJ420P; /* the JPEG twin is full range by itself */
    f.v.color_range = AVCOL_RANGE_UNSPECIFIED;
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 0, 0) == DJ_OK);
    CHECK_MSG(slot_error(&b, 0, 0, g_solid) <= 4, "yuvj error %d", slot_error(&b, 0, 0, g_solid));
    frame_free(&f);
    dj_tensor_free(&b);
    dj_transformer_free(tf);
}

static void test_bt709_flag_changes_matrix(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 1, 8, 8);
    test_frame f;
    frame_alloc(&f, AV_PIX_FMT_YUV444P, 8, 8);
    /* BT.709 limited green: Y = 16 + 219*0.7152, Cb = 128 - 112*0.7152/0.9278, Cr = 128 - 112*0.7152/0.7874 */
    memset(f.buf[0], 173, 64);
    memset(f.buf[1], 42, 64);
    memset(f.buf[2], 26, 64);
    f.v.colorspace = AVCOL_SPC_BT709;
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 0, 0) == DJ_OK);
    CHECK_MSG(slot_error(&b, 0, 0, (rgb){0, 255, 0}) <= 4, "709 error %d", slot_error(&b, 0, 0, (rgb){0, 255, 0}));
    f.v.colorspace = AVCOL_SPC_UNSPECIFIED; /* read as BT.601: visibly off */
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 0, 0) == DJ_OK);
    CHECK(slot_error(&b, 0, 0, (rgb){0, 255, 0}) > 10);
    frame_free(&f);
    dj_tensor_free(&b);
    dj_transformer_free(tf);
}

static void test_crop_picks_region(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 2, 12, 10);
    for (size_t k = 0; k < sizeof k_formats / sizeof k_formats[0]; k++) {
        test_frame f;
        frame_alloc(&f, k_formats[k], 64, 48);
        frame_fill(&f, pat_red_blue, 0);
        dj_crop_box left = {2, 4, 28, 40}, right = {34, 4, 28, 40};
        CHECK(dj_transform_frame(tf, &f.v, &left, 0, NULL, &b, 0, 0) == DJ_OK);
        CHECK(dj_transform_frame(tf, &f.v, &right, 0, NULL, &b, 0, 1) == DJ_OK);
        CHECK_MSG(slot_error(&b, 0, 0, (rgb){255, 0, 0}) <= 4, "format %d left", k_formats[k]);
        CHECK_MSG(slot_error(&b, 0, 1, (rgb){0, 0, 255}) <= 4, "format %d right", k_formats[k]);
        frame_free(&f);
    }
    dj_tensor_free(&b);
    dj_transformer_free(tf);
}

static void test_flip_reverses_columns(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    int formats[] = {AV_PIX_FMT_GRAY8, AV_PIX_FMT_YUV420P};
    for (int k = 0; k < 2; k++) {
        test_frame f;
        frame_alloc(&f, formats[k], 64, 32);
        frame_fill(&f, pat_gradient, 1);
        dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 2, 16, 24);
        dj_tensor bf = batch_make(DJ_DTYPE_F32, 1, 2, 16, 24);
        CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 0, 0) == DJ_OK);
        CHECK(dj_transform_frame(tf, &f.v, NULL, 1, NULL, &b, 0, 1) == DJ_OK);
        CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &bf, 0, 0) == DJ_OK);
        CHECK(dj_transform_frame(tf, &f.v, NULL, 1, NULL, &bf, 0, 1) == DJ_OK);
        int mismatches = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 24; x++) {
                    mismatches += px(&b, 0, c, 0, y, x) != px(&b, 0, c, 1, y, 23 - x);
                    mismatches += pxf(&bf, 0, c, 0, y, x) != pxf(&bf, 0, c, 1, y, 23 - x);
                }
        CHECK_EQ_INT(mismatches, 0);
        /* the gradient rises left to right unflipped */
        CHECK(px(&b, 0, 0, 0, 5, 0) < 30 && px(&b, 0, 0, 0, 5, 23) > 225);
        CHECK(px(&b, 0, 1, 0, 5, 4) < px(&b, 0, 1, 0, 5, 12));
        dj_tensor_free(&b);
        dj_tensor_free(&bf);
        frame_free(&f);
    }
    dj_transformer_free(tf);
}

static void test_normalisation_arithmetic(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    test_frame f;
    frame_alloc(&f, AV_PIX_FMT_YUV420P, 48, 32);
    frame_fill(&f, pat_blocks, 0);
    dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 1, 20, 20);
    dj_tensor bf = batch_make(DJ_DTYPE_F32, 2, 1, 20, 20);
    dj_crop_box box = {4, 2, 40, 28};
    CHECK(dj_transform_frame(tf, &f.v, &box, 0, NULL, &b, 0, 0) == DJ_OK);
    CHECK(dj_transform_frame(tf, &f.v, &box, 0, &dj_norm_imagenet, &bf, 1, 0) == DJ_OK);
    CHECK(dj_transform_frame(tf, &f.v, &box, 0, NULL, &bf, 0, 0) == DJ_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 20; x++) {
                float u = px(&b, 0, c, 0, y, x) / 255.0f;
                float want = (u - dj_norm_imagenet.mean[c]) / dj_norm_imagenet.std[c];
                CHECK_CLOSE(pxf(&bf, 1, c, 0, y, x), want, 1e-5, 1e-5);
                CHECK_CLOSE(pxf(&bf, 0, c, 0, y, x), u, 1e-6, 1e-6);
            }
    dj_tensor_free(&b);
    dj_tensor_free(&bf);
    frame_free(&f);
    dj_transformer_free(tf);
}

/* Odd crop offsets on 4:2:0: luma stays exact, chroma follows; a 1:1 crop
 * of 8x8 colour blocks must reproduce the blocks away from their edges. */
static void test_odd_crop_offsets_subsampled(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    int formats[] = {AV_PIX_FMT_YUV420P, AV_PIX_FMT_NV12};
    dj_crop_box boxes[] = {{9, 5, 31, 23}, {1, 1, 33, 27}, {17, 13, 31, 19} /* touches the bottom-right corner */};
    for (int k = 0; k < 2; k++)
        for (int bi = 0; bi < 3; bi++) {
            test_frame f;
            frame_alloc(&f, formats[k], 48, 32);
            frame_fill(&f, pat_blocks, 0);
            dj_crop_box c = boxes[bi];
            dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 1, c.h, c.w);
            CHECK(dj_transform_frame(tf, &f.v, &c, 0, NULL, &b, 0, 0) == DJ_OK);
            int bad = 0;
            for (int y = 0; y < c.h; y++)
                for (int x = 0; x < c.w; x++) {
                    int sx = x + c.x, sy = y + c.y;
                    if (sx % 8 < 2 || sx % 8 > 5 || sy % 8 < 2 || sy % 8 > 5)
                        continue; /* near a block edge chroma is interpolated */
                    rgb want = pat_blocks(sx, sy, 48, 32);
                    int e = abs(px(&b, 0, 0, 0, y, x) - want.r) + abs(px(&b, 0, 1, 0, y, x) - want.g) +
                            abs(px(&b, 0, 2, 0, y, x) - want.b);
                    bad += e > 12;
                }
            CHECK_MSG(bad == 0, "format %d box %d: %d wrong pixels", formats[k], bi, bad);
            dj_tensor_free(&b);
            frame_free(&f);
        }
    dj_transformer_free(tf);
}

static void test_bad_inputs(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    test_frame f;
    frame_alloc(&f, AV_PIX_FMT_YUV420P, 32, 24);
    frame_fill(&f, pat_blocks, 0);
    dj_tensor b = batch_make(DJ_DTYPE_F32, 1, 1, 8, 8);
    dj_crop_box outside = {20, 0, 16, 8}, zero = {0, 0, 0, 8}, negative = {-1, 0, 8, 8};
    CHECK(dj_transform_frame(tf, &f.v, &outside, 0, NULL, &b, 0, 0) == DJ_ERR_RANGE);
    CHECK_STR_CONTAINS(dj_error_message(), "not inside the 32x24 frame");
    CHECK(dj_transform_frame(tf, &f.v, &zero, 0, NULL, &b, 0, 0) == DJ_ERR_RANGE);
    CHECK(dj_transform_frame(tf, &f.v, &negative, 0, NULL, &b, 0, 0) == DJ_ERR_RANGE);
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 1, 0) == DJ_ERR_RANGE);
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &b, 0, -1) == DJ_ERR_RANGE);
    CHECK(dj_transform_frame(tf, NULL, NULL, 0, NULL, &b, 0, 0) == DJ_ERR_INVALID);
    CHECK(dj_transform_frame(NULL, &f.v, NULL, 0, NULL, &b, 0, 0) == DJ_ERR_INVALID);
    dj_norm bad_norm = {{0, 0, 0}, {1, 0, 1}};
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, &bad_norm, &b, 0, 0) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "std[1]");

    dj_frame_view v = f.v;
    v.width = 0;
    CHECK(dj_transform_frame(tf, &v, NULL, 0, NULL, &b, 0, 0) == DJ_ERR_INVALID);
    v = f.v;
    v.data[2] = NULL;
    CHECK(dj_transform_frame(tf, &v, NULL, 0, NULL, &b, 0, 0) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "plane 2");
    v = f.v;
    v.format = AV_PIX_FMT_PAL8;
    CHECK(dj_transform_frame(tf, &v, NULL, 0, NULL, &b, 0, 0) == DJ_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(dj_error_message(), "pal8");
    v.format = AV_PIX_FMT_CUDA;
    CHECK(dj_transform_frame(tf, &v, NULL, 0, NULL, &b, 0, 0) == DJ_ERR_UNSUPPORTED);
    v.format = 100000;
    CHECK(dj_transform_frame(tf, &v, NULL, 0, NULL, &b, 0, 0) == DJ_ERR_UNSUPPORTED);
    v.format = -1;
    CHECK(dj_transform_frame(tf, &v, NULL, 0, NULL, &b, 0, 0) == DJ_ERR_UNSUPPORTED);

    float store[16];
    dj_tensor zero_out, four_d, wrong_c, wrong_dt;
    int64_t s0[5] = {1, 3, 1, 0, 4}, s4[4] = {1, 3, 2, 2}, sc[5] = {1, 1, 1, 2, 2}, sd[5] = {1, 3, 1, 1, 1};
    CHECK(dj_tensor_view(DJ_DTYPE_F32, 5, s0, store, &zero_out) == DJ_OK);
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &zero_out, 0, 0) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "output size");
    CHECK(dj_tensor_view(DJ_DTYPE_F32, 4, s4, store, &four_d) == DJ_OK);
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &four_d, 0, 0) == DJ_ERR_INVALID);
    CHECK(dj_tensor_view(DJ_DTYPE_F32, 5, sc, store, &wrong_c) == DJ_OK);
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &wrong_c, 0, 0) == DJ_ERR_INVALID);
    CHECK(dj_tensor_view(DJ_DTYPE_F64, 5, sd, store, &wrong_dt) == DJ_OK);
    CHECK(dj_transform_frame(tf, &f.v, NULL, 0, NULL, &wrong_dt, 0, 0) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "dtype");
    dj_tensor_free(&b);
    frame_free(&f);
    dj_transformer_free(tf);
}

/* Scalers are made once per geometry and evicted least recently used: the
 * 4:2:0 path's filters (YUV420P) and libswscale's contexts (NV12) alike. */
static void test_scaler_cache_reuse(void) {
    int formats[] = {AV_PIX_FMT_YUV420P, AV_PIX_FMT_NV12};
    for (int k = 0; k < 2; k++) {
        dj_transformer *tf;
        CHECK(dj_transformer_create(&tf) == DJ_OK);
        test_frame f;
        frame_alloc(&f, formats[k], 64, 48);
        frame_fill(&f, pat_blocks, 0);
        dj_tensor b = batch_make(DJ_DTYPE_F32, 1, 4, 16, 16);
        dj_crop_box box = {3, 5, 40, 30};
        for (int i = 0; i < 12; i++)
            CHECK(dj_transform_frame(tf, &f.v, &box, i & 1, &dj_norm_imagenet, &b, 0, i % 4) == DJ_OK);
        CHECK_EQ_INT(dj_transformer_contexts_created(tf), 1);
        box.x = 10; /* same size elsewhere: same scaler */
        CHECK(dj_transform_frame(tf, &f.v, &box, 0, &dj_norm_imagenet, &b, 0, 0) == DJ_OK);
        CHECK_EQ_INT(dj_transformer_contexts_created(tf), 1);
        for (int w = 20; w < 60; w++) { /* 40 sizes: more than the cache holds, evicting */
            dj_crop_box c = {0, 0, w, 40};
            CHECK(dj_transform_frame(tf, &f.v, &c, 0, &dj_norm_imagenet, &b, 0, 0) == DJ_OK);
        }
        CHECK_EQ_INT(dj_transformer_contexts_created(tf), 41);
        dj_crop_box c = {0, 0, 59, 40}; /* the most recent one is still there */
        CHECK(dj_transform_frame(tf, &f.v, &c, 0, &dj_norm_imagenet, &b, 0, 0) == DJ_OK);
        CHECK_EQ_INT(dj_transformer_contexts_created(tf), 41);
        c.w = 20; /* the first one was evicted */
        CHECK(dj_transform_frame(tf, &f.v, &c, 0, &dj_norm_imagenet, &b, 0, 0) == DJ_OK);
        CHECK_EQ_INT(dj_transformer_contexts_created(tf), 42);
        dj_tensor_free(&b);
        frame_free(&f);
        dj_transformer_free(tf);
    }
}

static void test_short_side_crop_geometry(void) {
    dj_crop_box c;
    /* 320x240, short side 120 (half size), crop 112: resized 160x120 */
    CHECK(dj_crop_short_side(320, 240, 120, 112, 0, &c) == DJ_OK);
    CHECK(c.x == 0 && c.y == 8 && c.w == 224 && c.h == 224);
    CHECK(dj_crop_short_side(320, 240, 120, 112, 1, &c) == DJ_OK);
    CHECK(c.x == 48 && c.y == 8 && c.w == 224 && c.h == 224);
    CHECK(dj_crop_short_side(320, 240, 120, 112, 2, &c) == DJ_OK);
    CHECK(c.x == 96 && c.y == 8 && c.w == 224 && c.h == 224);
    /* portrait: the crops move along the height */
    CHECK(dj_crop_short_side(240, 320, 120, 112, 2, &c) == DJ_OK);
    CHECK(c.x == 8 && c.y == 96 && c.w == 224 && c.h == 224);
    /* every position stays inside odd sizes */
    for (int pos = 0; pos < 3; pos++) {
        CHECK(dj_crop_short_side(341, 199, 256, 224, pos, &c) == DJ_OK);
        CHECK(c.x >= 0 && c.y >= 0 && c.x + c.w <= 341 && c.y + c.h <= 199 && c.w > 0 && c.h > 0);
    }
    CHECK(dj_crop_short_side(320, 240, 100, 112, 1, &c) == DJ_ERR_INVALID);
    CHECK(dj_crop_short_side(320, 240, 120, 112, 3, &c) == DJ_ERR_INVALID);
    CHECK(dj_crop_short_side(0, 240, 120, 112, 1, &c) == DJ_ERR_INVALID);
}

/* ---- real decoded frames (skipped without the shared clips) ---- */

/* Decodes the first video frame of path; returns NULL on any failure. */
static AVFrame *decode_first_frame(const char *path) {
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc(), *got = NULL;
    int stream = -1;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0 || avformat_find_stream_info(fmt, NULL) < 0)
        goto done;
    const AVCodec *codec = NULL;
    stream = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream < 0 || !(dec = avcodec_alloc_context3(codec)) ||
        avcodec_parameters_to_context(dec, fmt->streams[stream]->codecpar) < 0 || avcodec_open2(dec, codec, NULL) < 0)
        goto done;
    while (!got && av_read_frame(fmt, pkt) >= 0) {
        if (pkt->stream_index == stream && avcodec_send_packet(dec, pkt) >= 0 && avcodec_receive_frame(dec, frame) >= 0)
            got = frame;
        av_packet_unref(pkt);
    }
    if (!got && avcodec_send_packet(dec, NULL) >= 0 && avcodec_receive_frame(dec, frame) >= 0)
        got = frame;
done:
    if (!got)
        av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return got;
}

static dj_frame_view view_of(const AVFrame *f) {
    dj_frame_view v = {f->width, f->height, f->format, {0}, {0}, f->color_range, f->colorspace, 0, 0};
    for (int p = 0; p < 4; p++) {
        v.data[p] = f->data[p];
        v.linesize[p] = f->linesize[p];
    }
    return v;
}


/* ---- the direct 4:2:0 path (a crop taken at its own size) ---------------- */

static uint32_t g_lcg = 12345;
static int rnd(int n) {
    g_lcg = g_lcg * 1664525u + 1013904223u;
    return (int)((g_lcg >> 8) % (uint32_t)n);
}

/* A 4:2:0 frame of random bytes (or smooth ramps), planes padded by `pad`
 * bytes per row so the linesize is not the width. */
static void frame_random_420(test_frame *f, int fmt, int w, int h, int pad, int smooth) {
    memset(f, 0, sizeof *f);
    f->v.width = w, f->v.height = h, f->v.format = fmt;
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    int ls[3] = {w + pad, cw + pad, cw + pad}, rows[3] = {h, ch, ch};
    for (int p = 0; p < 3; p++) {
        f->buf[p] = malloc((size_t)ls[p] * rows[p]);
        for (int i = 0; i < ls[p] * rows[p]; i++) {
            int x = i % ls[p], y = i / ls[p];
            f->buf[p][i] = (uint8_t)(smooth ? (p == 0 ? 40 + (3 * x + 2 * y) % 170 : 90 + (x + 2 * y + 17 * p) % 80)
                                            : rnd(256));
        }
        f->v.data[p] = f->buf[p];
        f->v.linesize[p] = ls[p];
    }
}

/* The matrix of (kr, kb) on luma y and centred chroma u, v (U - 128), in
 * double: limited or full range in, rounded half up and clamped out. */
static void ref_rgb(double y, double u, double v, double kr, double kb, int full, int q[3]) {
    double cs = full ? 1.0 : 255.0 / 224.0, kg = 1 - kr - kb;
    y = full ? y : (y - 16) * 255.0 / 219.0;
    double rgb[3] = {y + 2 * (1 - kr) * cs * v, y - (2 * kb * (1 - kb) * u + 2 * kr * (1 - kr) * v) * cs / kg,
                     y + 2 * (1 - kb) * cs * u};
    for (int i = 0; i < 3; i++) {
        double r = floor(rgb[i] + 0.5);
        q[i] = r < 0 ? 0 : r > 255 ? 255 : (int)r;
    }
}

/* The direct path's definition in double precision: chroma centred in each
 * 2x2 block, bilinear (3/4, 1/4 each way, edges of the frame repeated),
 * then the matrix of (kr, kb), rounded half up and clamped. */
static void ref_420(const dj_frame_view *f, int X, int Y, double kr, double kb, int full, int q[3]) {
    int cw = (f->width + 1) / 2, ch = (f->height + 1) / 2;
    int my = Y >> 1, fy = Y & 1 ? my + 1 : my - 1;
    fy = fy < 0 ? 0 : fy >= ch ? ch - 1 : fy;
    int mx = X >> 1, fx = X & 1 ? mx + 1 : mx - 1;
    fx = fx < 0 ? 0 : fx >= cw ? cw - 1 : fx;
    double c[2];
    for (int p = 1; p <= 2; p++) {
        const uint8_t *a = f->data[p] + my * f->linesize[p], *b = f->data[p] + fy * f->linesize[p];
        double v16 = 3 * (3.0 * a[mx] + b[mx]) + (3.0 * a[fx] + b[fx]);
        c[p - 1] = v16 / 16 - 128;
    }
    ref_rgb(f->data[0][Y * f->linesize[0] + X], c[0], c[1], kr, kb, full, q);
}

/* Crops at their own size of random 4:2:0 frames (odd sizes and offsets,
 * padded rows, both ranges, three matrices, flips) against ref_420: every
 * value within 1 (float rounding at the half), nearly all exact; float output
 * is exactly the normalised uint8 value. */
static void test_direct_420_matches_reference(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    static const struct {
        int spc;
        double kr, kb;
    } mats[] = {{AVCOL_SPC_UNSPECIFIED, 0.299, 0.114}, {AVCOL_SPC_BT709, 0.2126, 0.0722},
                {AVCOL_SPC_BT2020_NCL, 0.2627, 0.0593}};
    int64_t values = 0, off_by_one = 0, worse = 0, f32_bad = 0;
    for (int trial = 0; trial < 60; trial++) {
        int w = 1 + rnd(70), h = 1 + rnd(50);
        int fmt = trial % 3 == 2 ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P;
        test_frame f;
        frame_random_420(&f, fmt, w, h, rnd(3) * 7, 0);
        int m = trial % 3, full = fmt == AV_PIX_FMT_YUVJ420P || trial % 5 == 1;
        f.v.colorspace = mats[m].spc;
        f.v.color_range = trial % 5 == 1 ? AVCOL_RANGE_JPEG : 0;
        dj_crop_box c = {0, 0, 1 + rnd(w), 1 + rnd(h)};
        c.x = rnd(w - c.w + 1), c.y = rnd(h - c.h + 1);
        int flip = trial & 1;
        dj_tensor b = batch_make(DJ_DTYPE_U8, 2, 2, c.h, c.w), bf = batch_make(DJ_DTYPE_F32, 1, 2, c.h, c.w);
        memset(b.data, 0xAB, (size_t)dj_tensor_numel(&b));
        CHECK(dj_transform_frame(tf, &f.v, &c, flip, NULL, &b, 1, 1) == DJ_OK);
        CHECK(dj_transform_frame(tf, &f.v, &c, flip, &dj_norm_imagenet, &bf, 0, 1) == DJ_OK);
        for (int y = 0; y < c.h; y++)
            for (int x = 0; x < c.w; x++) {
                int q[3];
                ref_420(&f.v, c.x + (flip ? c.w - 1 - x : x), c.y + y, mats[m].kr, mats[m].kb, full, q);
                for (int ch = 0; ch < 3; ch++) {
                    int got = px(&b, 1, ch, 1, y, x), d = abs(got - q[ch]);
                    values++;
                    off_by_one += d == 1;
                    worse += d > 1;
                    float want = (got / 255.0f - dj_norm_imagenet.mean[ch]) / dj_norm_imagenet.std[ch];
                    f32_bad += fabsf(pxf(&bf, 0, ch, 1, y, x) - want) > 1e-5f;
                }
            }
        /* nothing outside the slot was written */
        int64_t stray = 0, slot = (int64_t)c.h * c.w;
        for (int n = 0; n < 2; n++)
            for (int ch = 0; ch < 3; ch++)
                for (int t = 0; t < 2; t++)
                    if (!(n == 1 && t == 1))
                        for (int64_t i = 0; i < slot; i++)
                            stray += ((uint8_t *)b.data)[((n * 3 + ch) * 2 + t) * slot + i] != 0xAB;
        CHECK_MSG(stray == 0, "trial %d: %lld bytes written outside the slot", trial, (long long)stray);
        dj_tensor_free(&b);
        dj_tensor_free(&bf);
        frame_free(&f);
    }
    CHECK_MSG(worse == 0, "%lld of %lld values off by more than 1", (long long)worse, (long long)values);
    CHECK_MSG(off_by_one * 200 < values, "%lld of %lld values off by 1", (long long)off_by_one, (long long)values);
    CHECK_EQ_INT(f32_bad, 0);
    CHECK_EQ_INT(dj_transformer_contexts_created(tf), 0); /* no scaler was needed */
    dj_transformer_free(tf);
}

/* The direct path and libswscale agree: the same smooth picture as 4:2:0
 * (direct) and as 4:4:4 with the chroma upsampled the same way (swscale,
 * which has no direct path for it), both ranges and two matrices. */
static void test_direct_420_agrees_with_swscale(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    int w = 40, h = 30;
    for (int k = 0; k < 4; k++) {
        test_frame f, g;
        frame_random_420(&f, AV_PIX_FMT_YUV420P, w, h, 0, 1);
        f.v.colorspace = k & 1 ? AVCOL_SPC_BT709 : AVCOL_SPC_UNSPECIFIED;
        f.v.color_range = k & 2 ? AVCOL_RANGE_JPEG : 0;
        frame_alloc(&g, AV_PIX_FMT_YUV444P, w, h);
        g.v.colorspace = f.v.colorspace, g.v.color_range = f.v.color_range;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                g.buf[0][y * w + x] = f.buf[0][y * f.v.linesize[0] + x];
                int cw = (w + 1) / 2, ch = (h + 1) / 2, my = y >> 1, mx = x >> 1;
                int fy = y & 1 ? (my + 1 < ch ? my + 1 : ch - 1) : (my > 0 ? my - 1 : 0);
                int fx = x & 1 ? (mx + 1 < cw ? mx + 1 : cw - 1) : (mx > 0 ? mx - 1 : 0);
                for (int p = 1; p <= 2; p++) {
                    const uint8_t *a = f.buf[p] + my * f.v.linesize[p], *b = f.buf[p] + fy * f.v.linesize[p];
                    int v16 = 3 * (3 * a[mx] + b[mx]) + 3 * a[fx] + b[fx];
                    g.buf[p][y * w + x] = (uint8_t)((v16 + 8) / 16);
                }
            }
        dj_crop_box c = {3, 5, 31, 21};
        dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 2, c.h, c.w);
        CHECK(dj_transform_frame(tf, &f.v, &c, 0, NULL, &b, 0, 0) == DJ_OK);
        CHECK(dj_transform_frame(tf, &g.v, &c, 0, NULL, &b, 0, 1) == DJ_OK);
        int worst = 0;
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < c.h; y++)
                for (int x = 0; x < c.w; x++) {
                    int d = abs(px(&b, 0, ch, 0, y, x) - px(&b, 0, ch, 1, y, x));
                    worst = d > worst ? d : worst;
                }
        CHECK_MSG(worst <= 2, "case %d: direct and swscale differ by %d", k, worst); /* measured: 1 */
        dj_tensor_free(&b);
        frame_free(&f);
        frame_free(&g);
    }
    CHECK_EQ_INT(dj_transformer_contexts_created(tf), 4); /* one scaler per matrix and range: swscale's side */
    dj_transformer_free(tf);
}


/* The resize filter's definition, in double: the weights of output i of n
 * over `in` samples (antialiased triangle; see dj_rs_axis_make). */
static int ref_taps(int in, int n, double scale, double phase, int i, int *idx, double *w) {
    double support = scale > 1 ? scale : 1, c = phase + (i + 0.5) * scale, sum = 0;
    int k = 0;
    for (int x = 0; x < in; x++) {
        double d = fabs(x + 0.5 - c) / support;
        if (d < 1) {
            idx[k] = x, w[k] = 1 - d, sum += w[k];
            k++;
        }
    }
    if (sum <= 0) {
        int x = (int)floor(c);
        idx[0] = x < 0 ? 0 : x > in - 1 ? in - 1 : x, w[0] = 1;
        return 1;
    }
    for (int t = 0; t < k; t++)
        w[t] /= sum;
    return k;
}

/* One plane of a crop resized, in double: origin (x0, y0) in the plane,
 * in_w x in_h samples, phases px, py (chroma of odd crops), scales sx, sy. */
static double ref_plane(const uint8_t *plane, int ls, int x0, int y0, int in_w, int in_h, int W, int H, double sx,
                        double sy, double px, double py, int i, int j) {
    int xi[512], yi[512];
    double xw[512], yw[512], acc = 0;
    int ny = ref_taps(in_h, H, sy, py, i, yi, yw), nx = ref_taps(in_w, W, sx, px, j, xi, xw);
    for (int a = 0; a < ny; a++)
        for (int b = 0; b < nx; b++)
            acc += yw[a] * xw[b] * plane[(y0 + yi[a]) * ls + x0 + xi[b]];
    return acc;
}

static void ref_resize_420(const dj_frame_view *f, const dj_crop_box *c, int W, int H, int i, int j, double kr,
                           double kb, int full, int q[3]) {
    double sx = (double)c->w / W, sy = (double)c->h / H;
    int px = c->x & 1, py = c->y & 1, nc = ((px + c->w - 1) >> 1) + 1, nr = ((py + c->h - 1) >> 1) + 1;
    double y = ref_plane(f->data[0], f->linesize[0], c->x, c->y, c->w, c->h, W, H, sx, sy, 0, 0, i, j);
    double u = ref_plane(f->data[1], f->linesize[1], c->x >> 1, c->y >> 1, nc, nr, W, H, sx / 2, sy / 2, px / 2.0,
                         py / 2.0, i, j) - 128;
    double v = ref_plane(f->data[2], f->linesize[2], c->x >> 1, c->y >> 1, nc, nr, W, H, sx / 2, sy / 2, px / 2.0,
                         py / 2.0, i, j) - 128;
    ref_rgb(y, u, v, kr, kb, full, q);
}

/* Resized crops of random 4:2:0 frames (down and up, 1 to 40 outputs a
 * side, odd offsets, padded rows, both ranges, two matrices, flips) against
 * the filter's definition in double: within 1 everywhere, nearly all exact;
 * float output is the normalised uint8 value. */
static void test_direct_420_resize_matches_reference(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    int64_t values = 0, off_by_one = 0, worse = 0, f32_bad = 0;
    for (int trial = 0; trial < 80; trial++) {
        int w = trial == 0 ? 90 : 2 + rnd(90), h = 2 + rnd(60);
        test_frame f;
        frame_random_420(&f, AV_PIX_FMT_YUV420P, w, h, rnd(2) * 5, trial % 4 == 3);
        int full = trial % 3 == 1, m709 = trial % 2;
        f.v.color_range = full ? AVCOL_RANGE_JPEG : 0;
        f.v.colorspace = m709 ? AVCOL_SPC_BT709 : AVCOL_SPC_UNSPECIFIED;
        dj_crop_box c = {0, 0, 1 + rnd(w), 1 + rnd(h)};
        c.x = rnd(w - c.w + 1), c.y = rnd(h - c.h + 1);
        int W = 1 + rnd(40), H = 1 + rnd(40), flip = rnd(2);
        if (W == c.w && H == c.h)
            W++; /* a resize, not the same-size path */
        W = W < c.w / 20 + 1 ? c.w / 20 + 1 : W; /* within DJ_YUV_MAX_TAPS (wider ones take libswscale) */
        H = H < c.h / 20 + 1 ? c.h / 20 + 1 : H;
        if (trial == 0) /* a strong downscale: horizontal taps loaded per output and reduced */
            c.w = 90, c.x = 0, W = 6; /* 30 taps; spans over 64 inputs */
        dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 1, H, W), bf = batch_make(DJ_DTYPE_F32, 1, 1, H, W);
        CHECK(dj_transform_frame(tf, &f.v, &c, flip, NULL, &b, 0, 0) == DJ_OK);
        CHECK(dj_transform_frame(tf, &f.v, &c, flip, &dj_norm_imagenet, &bf, 0, 0) == DJ_OK);
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                int q[3];
                ref_resize_420(&f.v, &c, W, H, i, flip ? W - 1 - j : j, m709 ? 0.2126 : 0.299,
                               m709 ? 0.0722 : 0.114, full, q);
                for (int ch = 0; ch < 3; ch++) {
                    int got = px(&b, 0, ch, 0, i, j), d = abs(got - q[ch]);
                    values++;
                    off_by_one += d == 1;
                    worse += d > 1;
                    if (d > 1 && worse < 4)
                        fprintf(stderr, "trial %d (%dx%d crop %d,%d %dx%d -> %dx%d) at %d,%d ch %d: %d, want %d\n",
                                trial, w, h, c.x, c.y, c.w, c.h, W, H, i, j, ch, got, q[ch]);
                    float want = (got / 255.0f - dj_norm_imagenet.mean[ch]) / dj_norm_imagenet.std[ch];
                    f32_bad += fabsf(pxf(&bf, 0, ch, 0, i, j) - want) > 1e-5f;
                }
            }
        dj_tensor_free(&b);
        dj_tensor_free(&bf);
        frame_free(&f);
    }
    CHECK_MSG(worse == 0, "%lld of %lld values off by more than 1", (long long)worse, (long long)values);
    CHECK_MSG(off_by_one * 100 < values, "%lld of %lld values off by 1", (long long)off_by_one, (long long)values);
    CHECK_EQ_INT(f32_bad, 0);
    dj_transformer_free(tf);
}

/* The resize agrees with libswscale's SWS_BILINEAR on a smooth picture:
 * the same samples as YUV420P (dojo's path) and as NV12 (swscale's). */
static void test_direct_420_resize_agrees_with_swscale(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    int w = 160, h = 120;
    test_frame f, g;
    frame_random_420(&f, AV_PIX_FMT_YUV420P, w, h, 0, 1);
    frame_alloc(&g, AV_PIX_FMT_NV12, w, h);
    memcpy(g.buf[0], f.buf[0], (size_t)w * h);
    for (int i = 0; i < (w / 2) * (h / 2); i++)
        g.buf[1][2 * i] = f.buf[1][i], g.buf[1][2 * i + 1] = f.buf[2][i];
    static const struct {
        dj_crop_box c;
        int W, H;
    } cases[] = {{{0, 0, 160, 120}, 56, 56}, {{20, 10, 120, 100}, 64, 48}, {{10, 6, 60, 40}, 112, 80}};
    for (int k = 0; k < 3; k++) {
        dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 2, cases[k].H, cases[k].W);
        CHECK(dj_transform_frame(tf, &f.v, &cases[k].c, 0, NULL, &b, 0, 0) == DJ_OK);
        CHECK(dj_transform_frame(tf, &g.v, &cases[k].c, 0, NULL, &b, 0, 1) == DJ_OK);
        int worst = 0;
        double sum = 0;
        for (int ch = 0; ch < 3; ch++)
            for (int y = 1; y < cases[k].H - 1; y++) /* swscale treats the outer pixels differently */
                for (int x = 1; x < cases[k].W - 1; x++) {
                    int d = abs(px(&b, 0, ch, 0, y, x) - px(&b, 0, ch, 1, y, x));
                    worst = d > worst ? d : worst;
                    sum += d;
                }
        double mean = sum / (3.0 * (cases[k].H - 2) * (cases[k].W - 2));
        /* measured: at most 1, 0.004-0.009 on average */
        CHECK_MSG(worst <= 2 && mean < 0.05, "case %d: dojo and swscale differ by %d (%.3f on average)", k, worst, mean);
        dj_tensor_free(&b);
    }
    frame_free(&f);
    frame_free(&g);
    dj_transformer_free(tf);
}

/* The vector builds of the row kernels this CPU runs: [0] AVX2, [1]
 * AVX-512, zeroed where it has not; returns how many. */
static int vector_builds(dj_yuv_kernels builds[2]) {
    memset(builds, 0, 2 * sizeof *builds);
    int n = 0;
#if defined(__x86_64__)
    dj_cpu_isa isa = dj_cpu_best_isa();
    if (isa >= DJ_CPU_ISA_AVX2)
        builds[0] = (dj_yuv_kernels){dj_yuv_row_avx2, dj_yuv_resize_row_avx2}, n++;
    if (isa >= DJ_CPU_ISA_AVX512)
        builds[1] = (dj_yuv_kernels){dj_yuv_row_avx512, dj_yuv_resize_row_avx512}, n++;
#endif
    return n;
}

/* The row kernel's builds agree with the generic one within 1 (fused
 * multiply-adds may round the half differently), on rows of every length
 * 1..80, every chroma alignment, edges and flips. */
static void test_yuv_row_builds_agree(void) {
    dj_yuv_kernels builds[2];
    const char *names[2] = {"avx2", "avx512"};
    if (!vector_builds(builds))
        SKIP("no AVX2 or AVX-512 on this CPU");
    enum { CW = 48 };
    uint8_t luma[2 * CW], chroma[4][CW];
    for (int i = 0; i < 2 * CW; i++)
        luma[i] = (uint8_t)rnd(256);
    for (int p = 0; p < 4; p++)
        for (int i = 0; i < CW; i++)
            chroma[p][i] = (uint8_t)rnd(256);
    const uint8_t *rows[4] = {chroma[0], chroma[1], chroma[2], chroma[3]};
    dj_yuv_coef k = {16, 255.0f / 219, 1.596f, 0.392f, 0.813f, 2.017f, {1 / 255.f, 2 / 255.f, 3 / 255.f}, {-1, 0, 1}};
    float *work = malloc(sizeof(float) * (size_t)dj_yuv_row_work(2 * CW));
    uint8_t want8[3][2 * CW], got8[3][2 * CW];
    float want32[3][2 * CW], got32[3][2 * CW];
    int worst = 0, mism = 0, f32_bad = 0;
    for (int b = 0; b < 2; b++) {
        if (!builds[b].row)
            continue;
        for (int w = 1; w <= 80; w++)
            for (int x0 = 0; x0 + w <= 2 * CW; x0 += 1 + (w > 20) * 6)
                for (int flip = 0; flip < 2; flip++) {
                    uint8_t *o8w[3] = {want8[0], want8[1], want8[2]}, *o8g[3] = {got8[0], got8[1], got8[2]};
                    float *o32w[3] = {want32[0], want32[1], want32[2]}, *o32g[3] = {got32[0], got32[1], got32[2]};
                    memset(got8, 0xEE, sizeof got8);
                    dj_yuv_row_generic(&k, luma + x0, rows, CW, x0, w, flip, o8w, NULL, work);
                    builds[b].row(&k, luma + x0, rows, CW, x0, w, flip, o8g, NULL, work);
                    dj_yuv_row_generic(&k, luma + x0, rows, CW, x0, w, flip, NULL, o32w, work);
                    builds[b].row(&k, luma + x0, rows, CW, x0, w, flip, NULL, o32g, work);
                    for (int c = 0; c < 3; c++) {
                        for (int j = 0; j < w; j++) {
                            int d = abs(want8[c][j] - got8[c][j]);
                            worst = d > worst ? d : worst;
                            mism += d != 0;
                            float e = (float)got8[c][j] * k.scale[c] + k.bias[c];
                            f32_bad += fabsf(got32[c][j] - e) > 1e-6f;
                        }
                        CHECK_MSG(got8[c][w] == 0xEE || w == 2 * CW, "%s: wrote past %d pixels", names[b], w);
                    }
                }
    }
    CHECK_MSG(worst <= 1, "builds differ by %d", worst);
    CHECK_MSG(mism < 50, "%d values differ by 1", mism);
    CHECK_EQ_INT(f32_bad, 0);
    free(work);
}


/* Horizontal taps for the resize row kernels: random windows of `taps`
 * within [0, in) and random weights, with their blocked copy. */
typedef struct test_taps {
    int32_t start[64], base[4], off[64];
    float w[64 * DJ_YUV_MAX_TAPS], bw[4 * DJ_YUV_MAX_TAPS * 16];
} test_taps;

static dj_yuv_taps taps_make(test_taps *t, int in, int W, int taps) {
    int span = 0;
    for (int j = 0; j < W; j++) {
        t->start[j] = rnd(in - taps + 1);
        for (int k = 0; k < taps; k++)
            t->w[j * taps + k] = (float)rnd(1000) / 1000 / taps;
    }
    for (int b = 0; b < (W + 15) / 16; b++) {
        t->base[b] = t->start[16 * b];
        for (int l = 0; l < 16; l++) {
            int j = 16 * b + l < W ? 16 * b + l : W - 1;
            t->start[j] = t->start[j] < t->base[b] ? t->base[b] : t->start[j]; /* blocks read from their base on */
            t->off[16 * b + l] = t->start[j] - t->base[b];
            span = t->off[16 * b + l] + taps > span ? t->off[16 * b + l] + taps : span;
            for (int k = 0; k < taps; k++)
                t->bw[(b * taps + k) * 16 + l] = t->w[j * taps + k];
        }
    }
    return (dj_yuv_taps){taps, t->start, t->w, span, t->base, t->off, t->bw};
}

/* The resize row kernel's builds agree with the generic one within 1, for
 * spans of the three kinds (one register pair, two, over 64 inputs: loaded
 * per output and reduced), with up to 8 taps, or up to the most. */
static void test_yuv_resize_builds_agree(void) {
    dj_yuv_kernels builds[2];
    if (!vector_builds(builds))
        SKIP("no AVX2 or AVX-512 on this CPU");
    enum { IN = 200 };
    static uint8_t rows[3][4][IN];
    for (int p = 0; p < 3; p++)
        for (int t = 0; t < 4; t++)
            for (int x = 0; x < IN; x++)
                rows[p][t][x] = (uint8_t)rnd(256);
    dj_yuv_coef k = {16, 255.0f / 219, 1.596f, 0.392f, 0.813f, 2.017f, {1 / 255.f, 2 / 255.f, 3 / 255.f}, {-1, 0, 1}};
    float *work = malloc(sizeof(float) * (size_t)dj_yuv_resize_work(IN, 64));
    static test_taps tt[3];
    int worst = 0, mism = 0, total = 0, kinds[3] = {0, 0, 0};
    for (int trial = 0; trial < 300; trial++) {
        int W = 1 + rnd(64), in = 8 + rnd(IN - 8), flip = rnd(2);
        dj_yuv_resize_src s;
        memset(&s, 0, sizeof s);
        for (int p = 0; p < 3; p++) {
            s.in_w[p] = in;
            s.vtaps[p] = 1 + rnd(4);
            for (int t = 0; t < s.vtaps[p]; t++)
                s.rows[p][t] = rows[p][t], s.vw[p][t] = 1.0f / s.vtaps[p];
            int most = rnd(2) ? 8 : DJ_YUV_MAX_TAPS;
            s.h[p] = taps_make(&tt[p], in, W, 1 + rnd(in < most ? in : most));
            kinds[s.h[p].span <= 32 ? 0 : s.h[p].span <= 64 ? 1 : 2]++;
        }
        uint8_t want[3][64], got[3][64];
        uint8_t *ow[3] = {want[0], want[1], want[2]}, *og[3] = {got[0], got[1], got[2]};
        dj_yuv_resize_row_generic(&k, &s, W, flip, ow, NULL, work);
        for (int b = 0; b < 2; b++) {
            if (!builds[b].resize)
                continue;
            memset(got, 0xEE, sizeof got);
            builds[b].resize(&k, &s, W, flip, og, NULL, work);
            for (int c = 0; c < 3; c++) {
                for (int j = 0; j < W; j++) {
                    int d = abs(want[c][j] - got[c][j]);
                    worst = d > worst ? d : worst;
                    mism += d != 0;
                    total++;
                }
                CHECK_MSG(W == 64 || got[c][W] == 0xEE, "build %d wrote past %d outputs", b, W);
            }
        }
    }
    CHECK_MSG(worst <= 1, "builds differ by %d", worst);
    CHECK_MSG(mism * 100 < total, "%d of %d values differ by 1", mism, total);
    CHECK_MSG(kinds[0] && kinds[1] && kinds[2], "spans tried: %d %d %d", kinds[0], kinds[1], kinds[2]);
    free(work);
}

/* The two reference tests again with the generic and the AVX2 builds (what
 * a CPU without AVX-512 runs): DOJO_CPU caps the instruction set a
 * transformer picks when it is made. */
static void test_direct_420_other_builds(void) {
    static const char *caps[] = {"scalar", "avx2"};
    for (int k = 0; k < 2; k++) {
        setenv("DOJO_CPU", caps[k], 1);
        test_direct_420_matches_reference();
        test_direct_420_resize_matches_reference();
    }
    unsetenv("DOJO_CPU");
}

/* libswscale's vector loops write past narrow rows: the transform's output
 * stays inside its slot for every width and height from 1 (NV12, 4:4:4 and
 * RGB take libswscale; YUV420P dojo's own path), uint8 and float. */
static void test_narrow_outputs_stay_in_slot(void) {
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    int formats[] = {AV_PIX_FMT_NV12, AV_PIX_FMT_YUV444P, AV_PIX_FMT_RGB24, AV_PIX_FMT_YUV420P};
    int64_t stray = 0;
    for (int k = 0; k < 4; k++) {
        test_frame f;
        frame_alloc(&f, formats[k], 64, 48);
        frame_fill(&f, pat_blocks, 0);
        for (int W = 1; W <= 20; W++)
            for (int H = 1; H <= 4; H++)
                for (int dt = 0; dt < 2; dt++) {
                    dj_tensor b = batch_make(dt ? DJ_DTYPE_F32 : DJ_DTYPE_U8, 1, 3, H, W);
                    size_t es = dt ? 4 : 1, n = (size_t)dj_tensor_numel(&b);
                    memset(b.data, 0xAB, n * es);
                    CHECK(dj_transform_frame(tf, &f.v, NULL, W & 1, &dj_norm_imagenet, &b, 0, 1) == DJ_OK);
                    for (int c = 0; c < 3; c++)
                        for (int t = 0; t < 3; t += 2) /* slots 0 and 2 of each channel */
                            for (size_t i = 0; i < (size_t)H * W * es; i++)
                                stray += ((uint8_t *)b.data)[((size_t)(c * 3 + t) * H * W) * es + i] != 0xAB;
                    dj_tensor_free(&b);
                }
        frame_free(&f);
    }
    CHECK_EQ_INT(stray, 0);
    dj_transformer_free(tf);
}

/* ---- rotation ---- */

/* dst (the upright plane) from the stored plane src (pw x ph pixels of bpp
 * bytes) shown turned clockwise by rot (0, 90, 180, 270). */
static void plane_upright(const uint8_t *src, int sls, int pw, int ph, int bpp, int rot, uint8_t *dst, int dls) {
    int dw = rot % 180 ? ph : pw, dh = rot % 180 ? pw : ph;
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            int sx = rot == 0 ? x : rot == 90 ? y : rot == 180 ? pw - 1 - x : pw - 1 - y;
            int sy = rot == 0 ? y : rot == 90 ? ph - 1 - x : rot == 180 ? ph - 1 - y : x;
            memcpy(dst + (size_t)y * dls + (size_t)x * bpp, src + (size_t)sy * sls + (size_t)sx * bpp, (size_t)bpp);
        }
}

/* A frame displayed turned by 90, 180 or 270 degrees, or mirrored after its
 * turn (0 included), comes out as the transform of the upright picture (the
 * planes turned, and mirrored, here): for random
 * frames, crops given in the upright picture (odd offsets included),
 * flips, both dtypes, the 4:2:0 path and libswscale's (4:4:4, RGB). Crops
 * at the output's size equal it bit for bit; resized ones on the 4:2:0 path
 * within 1 level (its separable filter's two passes then run in the other
 * order). libswscale's resized ones are not compared: its horizontal and
 * vertical filters differ (up to ~200 levels on noise at a few pixels).
 * Rotations are read modulo 360; others than quarter turns are ignored. */
static void test_rotation_upright(void) {
    dj_transformer *tf = NULL;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    const int fmts[3] = {AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUV444P, AV_PIX_FMT_RGB24};
    int worst_resized = 0;
    for (int trial = 0; trial < 240; trial++) {
        int fmt = fmts[trial % 3], rot = 90 * rnd(4), mirrored = rnd(2);
        if (!rot && !mirrored)
            rot = 90;
        int W = 2 * (3 + rnd(14)), H = 2 * (3 + rnd(14)); /* even: 4:2:0 blocks turn onto blocks */
        test_frame f, u;
        memset(&f, 0, sizeof f), memset(&u, 0, sizeof u);
        frame_alloc(&f, fmt, W, H);
        int UW = rot % 180 ? H : W, UH = rot % 180 ? W : H;
        frame_alloc(&u, fmt, UW, UH);
        int planes = fmt == AV_PIX_FMT_RGB24 ? 1 : 3;
        for (int p = 0; p < planes; p++) {
            int pw = fmt == AV_PIX_FMT_YUV420P && p ? W / 2 : W, ph = fmt == AV_PIX_FMT_YUV420P && p ? H / 2 : H;
            int bpp = fmt == AV_PIX_FMT_RGB24 ? 3 : 1;
            for (int y = 0; y < ph; y++)
                for (int x = 0; x < pw * bpp; x++)
                    f.buf[p][(size_t)y * f.v.linesize[p] + x] = (uint8_t)rnd(256);
            plane_upright(f.buf[p], f.v.linesize[p], pw, ph, bpp, rot, u.buf[p], u.v.linesize[p]);
            if (mirrored) /* then left-right */
                for (int y = 0; y < (rot % 180 ? pw : ph); y++) {
                    uint8_t *row = u.buf[p] + (size_t)y * u.v.linesize[p];
                    int n = rot % 180 ? ph : pw;
                    for (int x = 0; x < n / 2; x++)
                        for (int b = 0; b < bpp; b++) {
                            uint8_t tmp = row[x * bpp + b];
                            row[x * bpp + b] = row[(n - 1 - x) * bpp + b];
                            row[(n - 1 - x) * bpp + b] = tmp;
                        }
                }
        }
        f.v.rotation = trial % 7 == 0 ? rot - 360 : trial % 11 == 0 ? rot + 720 : rot;
        f.v.mirrored = mirrored;
        int cw = 1 + rnd(UW), ch = 1 + rnd(UH);
        dj_crop_box c = {rnd(UW - cw + 1), rnd(UH - ch + 1), cw, ch};
        int same = rnd(2), OW = same ? cw : 1 + rnd(24), OH = same ? ch : 1 + rnd(24), flip = rnd(2);
        same = OW == cw && OH == ch;
        for (int d = 0; d < 2; d++) {
            dj_dtype dt = d ? DJ_DTYPE_F32 : DJ_DTYPE_U8;
            dj_tensor got = batch_make(dt, 2, 2, OH, OW), want = batch_make(dt, 2, 2, OH, OW);
            CHECK_MSG(dj_transform_frame(tf, &f.v, &c, flip, &dj_norm_imagenet, &got, 1, 1) == DJ_OK, "%s",
                      dj_error_message());
            CHECK(dj_transform_frame(tf, &u.v, &c, flip, &dj_norm_imagenet, &want, 1, 1) == DJ_OK);
            for (int ch3 = 0; ch3 < 3; ch3++)
                for (int y = 0; y < OH; y++)
                    for (int x = 0; x < OW; x++) {
                        if (dt == DJ_DTYPE_U8) {
                            int diff = abs(px(&got, 1, ch3, 1, y, x) - px(&want, 1, ch3, 1, y, x));
                            if (same)
                                CHECK_MSG(diff == 0, "fmt %d rot %d crop %dx%d+%d+%d flip %d: (%d,%d) off by %d", fmt,
                                          rot, c.w, c.h, c.x, c.y, flip, x, y, diff);
                            if (!same && fmt == AV_PIX_FMT_YUV420P)
                                worst_resized = diff > worst_resized ? diff : worst_resized;
                        } else if (same) {
                            CHECK(pxf(&got, 1, ch3, 1, y, x) == pxf(&want, 1, ch3, 1, y, x));
                        }
                    }
            /* nothing outside slot (1, 1): the other slots stay as made */
            CHECK(px(&got, 0, 0, 0, 0, 0) == px(&want, 0, 0, 0, 0, 0));
            dj_tensor_free(&got), dj_tensor_free(&want);
        }
        frame_free(&f), frame_free(&u);
    }
    CHECK_MSG(worst_resized <= 1, "resized crops differ by %d", worst_resized);
    /* a crop is checked against the upright picture, and says its size */
    test_frame f;
    memset(&f, 0, sizeof f);
    frame_alloc(&f, AV_PIX_FMT_YUV420P, 40, 20);
    memset(f.buf[0], 100, 40 * 20), memset(f.buf[1], 128, 20 * 10), memset(f.buf[2], 128, 20 * 10);
    f.v.rotation = 90;
    dj_tensor b = batch_make(DJ_DTYPE_U8, 1, 1, 8, 8);
    CHECK(dj_transform_frame(tf, &f.v, &(dj_crop_box){0, 0, 20, 40}, 0, NULL, &b, 0, 0) == DJ_OK);
    CHECK(dj_transform_frame(tf, &f.v, &(dj_crop_box){0, 0, 40, 20}, 0, NULL, &b, 0, 0) == DJ_ERR_RANGE);
    CHECK_STR_CONTAINS(dj_error_message(), "20x40 frame");
    int uw, uh;
    dj_frame_view_upright(&f.v, &uw, &uh);
    CHECK(uw == 20 && uh == 40);
    f.v.rotation = 45; /* not a quarter turn: as stored */
    dj_frame_view_upright(&f.v, &uw, &uh);
    CHECK(uw == 40 && uh == 20);
    CHECK(dj_transform_frame(tf, &f.v, &(dj_crop_box){0, 0, 40, 20}, 0, NULL, &b, 0, 0) == DJ_OK);
    CHECK(dj_rotation_normal(-90) == 270 && dj_rotation_normal(450) == 90 && dj_rotation_normal(180) == 180 &&
          dj_rotation_normal(10) == 0);
    dj_tensor_free(&b);
    frame_free(&f);
    dj_transformer_free(tf);
}

/* dj_frame_view_of: a delivered frame's planes, size and rotation, and its
 * AVFrame's colour range and matrix (0 without one). */
static void test_frame_view_of(void) {
    AVFrame *av = av_frame_alloc();
    CHECK(av != NULL);
    if (!av)
        return;
    av->color_range = AVCOL_RANGE_JPEG;
    av->colorspace = AVCOL_SPC_BT709;
    uint8_t planes[3][4];
    dj_frame f = {6, 4, AV_PIX_FMT_YUV420P, {planes[0], planes[1], planes[2], NULL}, {8, 4, 4, 0}, 7, 70, 0, av, 270, 1};
    dj_frame_view v = dj_frame_view_of(&f);
    CHECK(v.width == 6 && v.height == 4 && v.format == AV_PIX_FMT_YUV420P && v.rotation == 270 && v.mirrored == 1);
    for (int p = 0; p < 4; p++)
        CHECK(v.data[p] == f.data[p] && v.linesize[p] == f.linesize[p]);
    CHECK(v.color_range == AVCOL_RANGE_JPEG && v.colorspace == AVCOL_SPC_BT709);
    f.avframe = NULL;
    v = dj_frame_view_of(&f);
    CHECK(v.color_range == 0 && v.colorspace == 0);
    av_frame_free(&av);
}

static void test_real_decoded_frames(void) {
    const char *root = dj_test_real_data();
    if (!root)
        SKIP("no real clips (set DOJO_REAL_DATA)");
    static const char *clips[] = {"androidx_media/mp4/sample_with_increasing_timestamps_320w_240h_5s.mp4",
                                  "androidx_media/vp9/bear-vp9-odd-dimensions.webm",
                                  "androidx_media/vp9/roadtrip-vp92-10bit.webm"};
    dj_transformer *tf;
    CHECK(dj_transformer_create(&tf) == DJ_OK);
    dj_tensor b = batch_make(DJ_DTYPE_F32, 1, 2, 56, 56);
    float lo = (0 - 0.485f) / 0.229f - 1e-4f, hi = (1 - 0.406f) / 0.225f + 1e-4f;
    for (size_t k = 0; k < sizeof clips / sizeof clips[0]; k++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", root, clips[k]);
        AVFrame *f = decode_first_frame(path);
        CHECK_MSG(f != NULL, "cannot decode %s", path);
        if (!f)
            continue;
        dj_frame_view v = view_of(f);
        dj_crop_box odd = {1, 1, v.width - 3, v.height - 2};
        CHECK(dj_transform_frame(tf, &v, NULL, 0, &dj_norm_imagenet, &b, 0, 0) == DJ_OK);
        CHECK(dj_transform_frame(tf, &v, &odd, 1, &dj_norm_imagenet, &b, 0, 1) == DJ_OK);
        double sum = 0, sum2 = 0;
        int bad = 0;
        for (int64_t i = 0; i < dj_tensor_numel(&b); i++) {
            float x = ((float *)b.data)[i];
            bad += !(x >= lo && x <= hi);
            sum += x;
            sum2 += (double)x * x;
        }
        double n = (double)dj_tensor_numel(&b), var = sum2 / n - (sum / n) * (sum / n);
        CHECK_MSG(bad == 0, "%s: %d values out of range", clips[k], bad);
        CHECK_MSG(var > 0.01, "%s: flat output (variance %g)", clips[k], var);
        av_frame_free(&f);
    }
    dj_tensor_free(&b);
    dj_transformer_free(tf);
}

int main(void) {
    DJ_RUN(test_writes_only_its_slot);
    DJ_RUN(test_pure_colours_all_formats);
    DJ_RUN(test_gray_and_full_range);
    DJ_RUN(test_bt709_flag_changes_matrix);
    DJ_RUN(test_crop_picks_region);
    DJ_RUN(test_flip_reverses_columns);
    DJ_RUN(test_normalisation_arithmetic);
    DJ_RUN(test_odd_crop_offsets_subsampled);
    DJ_RUN(test_bad_inputs);
    DJ_RUN(test_scaler_cache_reuse);
    DJ_RUN(test_short_side_crop_geometry);
    DJ_RUN(test_direct_420_matches_reference);
    DJ_RUN(test_direct_420_agrees_with_swscale);
    DJ_RUN(test_direct_420_resize_matches_reference);
    DJ_RUN(test_direct_420_resize_agrees_with_swscale);
    DJ_RUN(test_direct_420_other_builds);
    DJ_RUN(test_narrow_outputs_stay_in_slot);
    DJ_RUN(test_yuv_row_builds_agree);
    DJ_RUN(test_yuv_resize_builds_agree);
    DJ_RUN(test_frame_view_of);
    DJ_RUN(test_rotation_upright);
    DJ_RUN(test_real_decoded_frames);
    return dj_test_finish();
}
