/* bench_transform.c — `dojo bench transform`: frames per second of the frame
 * transform (crop + convert + resize + flip + normalise into a batch slice)
 * on one thread, against bare libswscale doing the conversion alone. */
#include <stdio.h>
#include <stdlib.h>

#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>

#include "cli.h"
#include "dojo/log.h"
#include "dojo/sampling.h"
#include "dojo/transform.h"

static int64_t dj_bt_frames = 2000, dj_bt_width = 320, dj_bt_height = 240, dj_bt_size = 112, dj_bt_clip = 16;

static const dj_option dj_bt_options[] = {
    {"frames", DJ_OPT_INT, &dj_bt_frames, "N", "frames per round, best of 5 rounds (default 2000)", 1, 1e7},
    {"width", DJ_OPT_INT, &dj_bt_width, "W", "source width (default 320)", 16, 8192},
    {"height", DJ_OPT_INT, &dj_bt_height, "H", "source height (default 240)", 16, 8192},
    {"size", DJ_OPT_INT, &dj_bt_size, "S", "output side (default 112)", 8, 1024},
    {"clip", DJ_OPT_INT, &dj_bt_clip, "T", "frames per clip sharing one random crop (default 16)", 1, 256},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_bt_spec = {
    "bench transform", "[--frames N] [--width W] [--height H] [--size S] [--clip T]",
    "Times dj_transform_frame on a synthetic YUV420P frame, one thread: full\n"
    "frame to SxS float32 (normalised) and uint8, random-resized crops changing\n"
    "every T frames (scaler cache misses), the full frame of a video displayed\n"
    "turned 90 degrees (made upright), an SxS crop taken at its size (the\n"
    "direct 4:2:0 path), and bare sws_scale to planar RGB as the peer of each.\n"
    "Each figure is the best of 5 rounds. Prints frames/s; asserts nothing.",
    dj_bt_options, 0, 0,
};

/* The synthetic frame: a moving-gradient luma and smooth chroma. */
typedef struct dj_bt_frame {
    dj_frame_view v;
    uint8_t *planes;
} dj_bt_frame;

static int dj_bt_frame_make(dj_bt_frame *f, int w, int h) {
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    f->planes = malloc((size_t)w * h + 2 * (size_t)cw * ch);
    if (!f->planes)
        return 0;
    uint8_t *y = f->planes, *u = y + (size_t)w * h, *v = u + (size_t)cw * ch;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++)
            y[(size_t)i * w + j] = (uint8_t)(16 + (i * 3 + j * 5) % 220);
    for (int i = 0; i < ch; i++)
        for (int j = 0; j < cw; j++) {
            u[(size_t)i * cw + j] = (uint8_t)(64 + (i + j) % 128);
            v[(size_t)i * cw + j] = (uint8_t)(192 - (i * 2 + j) % 128);
        }
    f->v = (dj_frame_view){w, h, AV_PIX_FMT_YUV420P, {y, u, v, NULL}, {w, cw, cw, 0}, 0, 0, 0, 0};
    return 1;
}

enum { DJ_BT_ROUNDS = 5 }; /* each figure is the best of 5 rounds: the machine is shared */

static double dj_bt_report(const char *what, const double *seconds, int64_t frames) {
    double best = seconds[0];
    for (int r = 1; r < DJ_BT_ROUNDS; r++)
        best = seconds[r] < best ? seconds[r] : best;
    double fps = frames / best;
    printf("  %-46s %9.0f frames/s  %7.1f us/frame\n", what, fps, 1e6 / fps);
    return fps;
}

/* One round: frames through dj_transform_frame; returns seconds, or -1. */
static double dj_bt_round(dj_transformer *tf, const dj_bt_frame *f, dj_tensor *batch, int mode) {
    dj_spatial_spec rrc = {.mode = DJ_SPATIAL_RESIZED_CROP, .scale_min = 0.25f, .scale_max = 1.0f};
    dj_frame_view v = f->v;
    v.rotation = mode == 4 ? 90 : 0; /* a phone video's frame: displayed a quarter turn clockwise */
    int uw, uh;
    dj_frame_view_upright(&v, &uw, &uh);
    dj_crop_box box = {0, 0, uw, uh};
    if (mode == 3) /* a centred crop as large as the output: no resize */
        box = (dj_crop_box){(f->v.width - (int)dj_bt_size) / 2, (f->v.height - (int)dj_bt_size) / 2, (int)dj_bt_size,
                            (int)dj_bt_size};
    const dj_norm *norm = mode == 1 ? NULL : &dj_norm_imagenet;
    int T = (int)batch->shape[2];
    double t0 = dj_time_now();
    for (int64_t i = 0; i < dj_bt_frames; i++) {
        if (mode == 2 && i % dj_bt_clip == 0 &&
            dj_crop_random_resized(f->v.width, f->v.height, &rrc, (uint64_t)(i / dj_bt_clip), &box) != DJ_OK)
            return -1;
        if (dj_transform_frame(tf, &v, &box, (int)(i & 1), norm, batch, 0, (int)(i % T)) != DJ_OK)
            return -1;
    }
    return dj_time_now() - t0;
}

/* mode 0: f32 full frame, 1: u8 full frame, 2: f32 random crops per clip,
 * 3: f32 centred crop at the output size (the direct 4:2:0 path), 4: f32
 * full frame displayed turned 90 degrees (upright: the turn's extra pass) */
static int dj_bt_run(dj_transformer *tf, const dj_bt_frame *f, dj_tensor *batch, int mode, double *fps) {
    static const char *names[] = {"dojo: full frame -> f32 normalised", "dojo: full frame -> u8",
                                  "dojo: random-resized crop per clip -> f32", "dojo: crop at output size -> f32",
                                  "dojo: full frame turned 90 -> f32 upright"};
    double secs[DJ_BT_ROUNDS];
    for (int r = 0; r < DJ_BT_ROUNDS; r++)
        if ((secs[r] = dj_bt_round(tf, f, batch, mode)) < 0)
            return 0;
    *fps = dj_bt_report(names[mode], secs, dj_bt_frames);
    return 1;
}

/* The peer: libswscale alone, same sizes, to planar 8-bit RGB; with crop,
 * from the centred S x S crop (even offsets) without resizing. */
static int dj_bt_peer(const dj_bt_frame *f, int S, int crop, double *fps) {
    int sw = crop ? S : f->v.width, sh = crop ? S : f->v.height;
    int cx = crop ? (f->v.width - S) / 2 & ~1 : 0, cy = crop ? (f->v.height - S) / 2 & ~1 : 0;
    const uint8_t *src[4] = {f->v.data[0] + (size_t)cy * f->v.linesize[0] + cx,
                             f->v.data[1] + (size_t)(cy / 2) * f->v.linesize[1] + cx / 2,
                             f->v.data[2] + (size_t)(cy / 2) * f->v.linesize[2] + cx / 2, NULL};
    struct SwsContext *c =
        sws_getContext(sw, sh, AV_PIX_FMT_YUV420P, S, S, AV_PIX_FMT_GBRP, SWS_BILINEAR, NULL, NULL, NULL);
    uint8_t *out = malloc(3 * (size_t)S * S);
    int ok = c && out;
    uint8_t *dst[4] = {out, out + (size_t)S * S, out + 2 * (size_t)S * S, NULL};
    int ds[4] = {S, S, S, 0};
    double secs[DJ_BT_ROUNDS];
    for (int r = 0; ok && r < DJ_BT_ROUNDS; r++) {
        double t0 = dj_time_now();
        for (int64_t i = 0; i < dj_bt_frames; i++)
            sws_scale(c, src, f->v.linesize, 0, sh, dst, ds);
        secs[r] = dj_time_now() - t0;
    }
    if (ok)
        *fps = dj_bt_report(crop ? "peer: bare sws_scale, crop at output size -> u8" : "peer: bare sws_scale -> planar u8 RGB",
                            secs, dj_bt_frames);
    sws_freeContext(c);
    free(out);
    return ok;
}

int dj_bench_transform(int argc, char **argv) {
    int np = 0;
    int rc = dj_cli_parse(&dj_bt_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    int S = (int)dj_bt_size;
    dj_bt_frame f = {0};
    dj_transformer *tf = NULL;
    dj_tensor f32 = {0}, u8 = {0};
    int64_t shape[5] = {1, 3, dj_bt_clip, S, S};
    int ok = dj_bt_frame_make(&f, (int)dj_bt_width, (int)dj_bt_height) && dj_transformer_create(&tf) == DJ_OK &&
             dj_tensor_create(DJ_DTYPE_F32, 5, shape, &f32) == DJ_OK &&
             dj_tensor_create(DJ_DTYPE_U8, 5, shape, &u8) == DJ_OK;
    double fps[7] = {0};
    int crop = S <= dj_bt_width && S <= dj_bt_height;
    if (ok) {
        printf("transform: %lldx%lld yuv420p -> %dx%d, %lld frames, one thread\n", (long long)dj_bt_width,
               (long long)dj_bt_height, S, S, (long long)dj_bt_frames);
        ok = dj_bt_run(tf, &f, &f32, 0, &fps[0]) && dj_bt_run(tf, &f, &u8, 1, &fps[1]) &&
             dj_bt_run(tf, &f, &f32, 2, &fps[2]) && dj_bt_run(tf, &f, &f32, 4, &fps[6]) &&
             dj_bt_peer(&f, S, 0, &fps[3]) &&
             (!crop || (dj_bt_run(tf, &f, &f32, 3, &fps[4]) && dj_bt_peer(&f, S, 1, &fps[5])));
    }
    if (ok && crop)
        printf("  ratio dojo f32 / bare swscale: %.2f resized, %.2f cropped at output size; scalers created: %lld\n",
               fps[0] / fps[3], fps[4] / fps[5], (long long)dj_transformer_contexts_created(tf));
    else if (ok)
        printf("  ratio dojo f32 / bare swscale: %.2f; scalers created: %lld\n", fps[0] / fps[3],
               (long long)dj_transformer_contexts_created(tf));
    dj_tensor_free(&f32);
    dj_tensor_free(&u8);
    dj_transformer_free(tf);
    free(f.planes);
    return ok ? DJ_EXIT_OK : dj_cli_fail();
}
