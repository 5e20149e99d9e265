/* dojo/transform.h — one decoded frame to one (n, :, t, :, :) slice of a batch.
 *
 * The decoder hands frames as dj_frame_view (the fields of an AVFrame that
 * matter here). dj_transform_frame crops a box given in the frame's own pixel
 * coordinates, converts to RGB, resizes to the batch's HxW with an
 * antialiased bilinear filter (as libswscale's SWS_BILINEAR and torchvision's
 * antialiased Resize), flips and normalises. 8-bit 4:2:0 frames do it all in
 * one pass of dojo's own per output row (within 1 level of libswscale);
 * other formats go through libswscale, then a flip and normalise pass over
 * the small output while it is in cache. The batch is an N x 3 x T x H x W
 * tensor, float32 (normalised: (x/255 - mean[c]) / std[c]) or uint8 (raw
 * 0..255 RGB).
 *
 * Rotation: a frame whose view says it is displayed turned (phone videos
 * carry a display matrix; dj_video_index.rotation, DJ_INDEX_MIRRORED) comes
 * out upright, as players and the ffmpeg tool show it: crop boxes are then
 * given in the upright picture's pixels (width and height swapped at 90 and
 * 270), and flip mirrors the upright picture. The transform runs in the
 * stored orientation into a scratch of the output's size, which is then
 * turned into the batch; a mirrored display only mirrors the crop box and
 * toggles flip.
 *
 * Colour: YUV frames are converted with the matrix and range the frame names
 * (colorspace/color_range, AVColorSpace/AVColorRange values); unspecified means
 * BT.601 limited range, except the YUVJ formats (full range). Odd crop offsets
 * on subsampled chroma keep luma exact; the 4:2:0 path places chroma exactly
 * (samples centred in their 2x2 blocks), libswscale starts the chroma plane
 * at the sample covering the first luma column/row (at most half a chroma
 * sample off). */
#ifndef DOJO_TRANSFORM_H
#define DOJO_TRANSFORM_H

#include <stdint.h>

#include "dojo/error.h"
#include "dojo/tensor.h"
#include "dojo/video.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_frame_view {
    int width, height;
    int format; /* enum AVPixelFormat */
    const uint8_t *data[4];
    int linesize[4];
    int color_range; /* enum AVColorRange; 0: unspecified */
    int colorspace;  /* enum AVColorSpace; 2 (or 0): unspecified */
    int rotation;    /* display rotation, clockwise degrees: 90, 180, 270 turn the picture upright; other values 0 */
    int mirrored;    /* 1: the display then mirrors the turned picture left-right */
} dj_frame_view;

/* The view of a frame the reader delivered (planes, size, format, the
 * colour range and matrix of its AVFrame, and its display rotation). */
dj_frame_view dj_frame_view_of(const dj_frame *f);

/* A rectangle in source pixels: columns [x, x+w), rows [y, y+h). */
typedef struct dj_crop_box {
    int x, y, w, h;
} dj_crop_box;

/* Per-channel normalisation (RGB order), applied to x/255. */
typedef struct dj_norm {
    float mean[3];
    float std[3];
} dj_norm;

/* The ImageNet/Kinetics statistics most video models use. */
extern const dj_norm dj_norm_imagenet;

/* Holds the reusable scalers (small caches of the 4:2:0 path's filters, keyed
 * by crop and output size, and of libswscale contexts, keyed also by format)
 * and the scratch rows: one per worker thread; no allocation per frame once
 * warm. */
typedef struct dj_transformer dj_transformer;

dj_status dj_transformer_create(dj_transformer **out);
void dj_transformer_free(dj_transformer *tf);
/* Scalers (filters or libswscale contexts) created so far (cache misses),
 * for tests and benchmarks. */
int64_t dj_transformer_contexts_created(const dj_transformer *tf);

/* The upright picture's width and height (swapped for a rotation of 90 or
 * 270), of a frame view or of a stored size, and the rotation the transform
 * applies (0, 90, 180 or 270). */
void dj_frame_view_upright(const dj_frame_view *src, int *width, int *height);
void dj_upright_size(int width, int height, int rotation, int *upright_width, int *upright_height);
int dj_rotation_normal(int degrees);

/* Writes frame `src` cropped to `crop` (NULL: the whole frame), resized to the
 * batch's H x W, mirrored left-right when flip, into batch[n, :, t, :, :].
 * batch: N x 3 x T x H x W, DJ_DTYPE_F32 (norm required; NULL means mean 0,
 * std 1, i.e. x/255) or DJ_DTYPE_U8 (norm ignored). */
dj_status dj_transform_frame(dj_transformer *tf, const dj_frame_view *src, const dj_crop_box *crop, int flip,
                             const dj_norm *norm, dj_tensor *batch, int n, int t);

/* Eval geometry: the frame is resized so its short side is `short_side`, then
 * a `crop_size` square is taken at `position` along the long side (0: left or
 * top, 1: centre, 2: right or bottom; the short side is centred), as
 * PySlowFast's uniform crop. The box is returned in the ORIGINAL frame's
 * pixels (rounded), ready for dj_transform_frame. */
dj_status dj_crop_short_side(int width, int height, int short_side, int crop_size, int position, dj_crop_box *out);

#ifdef __cplusplus
}
#endif
#endif
