/* dojo/synth.h — writing videos and generating synthetic ones.
 *
 * Three parts:
 * - dj_video_writer: RGB24 frames in, a real compressed video file out
 *   (libavcodec/libavformat), deterministic for the same input (one encoder
 *   thread, bit-exact muxing), written under a temporary name and renamed
 *   only once complete;
 * - the motion scenes: clips whose class is told only by how the main
 *   object moves (translate, rotate, zoom), never by how a frame looks;
 *   dj_synth_motion_generate writes a whole data set of them;
 * - the test clips: short videos in several codecs and containers whose
 *   frames carry their own index, for decoder exactness tests. */
#ifndef DOJO_SYNTH_H
#define DOJO_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- video writer ------------------------------------------------------ */

typedef struct dj_video_writer dj_video_writer;

typedef struct dj_video_writer_options {
    /* An encoder name ("libx264", "mpeg4", "ffv1", ...) or a codec family
     * ("h264", "hevc", "vp9", "av1") resolved to a software encoder. */
    const char *codec;
    int width, height; /* frame size in pixels */
    int fps;           /* frames per second; time base 1/fps */
    int crf;           /* constant quality (x264/x265/vpx/aom); -1: default */
    int qp;            /* constant quantiser (x264/x265: qp, mpeg4: qscale); -1: default */
    int lossless;      /* 1: lossless in the encoder's pixel format (not with mpeg4;
                        * x264 then writes no B-frames) */
    int gop;           /* key frame interval; 0: the encoder's default */
    int max_b_frames;  /* -1: the encoder's default; 0: none */
    const char *pix_fmt; /* encoder pixel format; NULL: yuv420p if supported */
    const char *preset;  /* x264/x265 preset ("veryfast"); NULL: default */
} dj_video_writer_options;

/* Fills o with the defaults for a width x height video at 25 fps, codec
 * "h264", encoder defaults for everything else. */
void dj_video_writer_options_default(dj_video_writer_options *o, int width, int height);

/* 1 if this build of libavcodec has the encoder (name or family, as in
 * dj_video_writer_options.codec), else 0. */
int dj_video_encoder_available(const char *codec);

/* The encoder that `codec` resolves to ("h264" -> "libx264"), or NULL. */
const char *dj_video_encoder_resolve(const char *codec);

/* The codec an encoder writes ("libx264" -> "h264"), or "unknown". */
const char *dj_video_encoder_codec(const char *encoder);

/* Opens `path` for writing (container from its extension: .mp4 .mkv .webm
 * .avi .mov). The file appears under its name only after a successful
 * dj_video_writer_close; until then it is PATH.part. */
dj_status dj_video_writer_create(const char *path, const dj_video_writer_options *o, dj_video_writer **out);

/* Encodes one frame. rgb24: [height][stride] bytes, 3 per pixel (R, G, B),
 * stride >= 3 * width. */
dj_status dj_video_writer_write_rgb(dj_video_writer *w, const uint8_t *rgb24, int stride);

/* Frames written so far. */
int64_t dj_video_writer_frames(const dj_video_writer *w);

/* Flushes the encoder, writes the trailer, renames PATH.part to PATH and
 * frees w. On any failure (including zero frames written) the partial file
 * is removed and w is freed all the same. NULL is a no-op. */
dj_status dj_video_writer_close(dj_video_writer *w);

/* Frees w and removes the partial file without finishing it. NULL: no-op. */
void dj_video_writer_abort(dj_video_writer *w);

/* ---- motion scenes ----------------------------------------------------- */

enum { DJ_SYNTH_MAX_CLASSES = 8 };

/* The version of the motion scenes: it changes whenever the same options
 * would render other pictures, so that caches of generated data sets (the
 * demo's) can tell a stale one. 3: the main object zooms steadily through
 * the clip (no cycling, no cross-fade), the other classes draw their size
 * from the same spread; distractors (1-2) are smaller, slide without
 * turning, more slowly than the main object, always behind it; a smoother
 * background; noise and jitter weaker. 2: cycling zooms without jumps, coarser textures, faster turns.
 * 1: the first scenes. */
enum { DJ_SYNTH_MOTION_VERSION = 3 };

/* The largest zoom rate (log size change per frame) the scenes accept. */
#define DJ_SYNTH_MAX_ZOOM 0.5f

typedef enum dj_synth_class {
    DJ_SYNTH_TRANSLATE_RIGHT = 0,
    DJ_SYNTH_TRANSLATE_LEFT,
    DJ_SYNTH_TRANSLATE_UP,
    DJ_SYNTH_TRANSLATE_DOWN,
    DJ_SYNTH_ROTATE_CW, /* clockwise as seen on screen (y down) */
    DJ_SYNTH_ROTATE_CCW,
    DJ_SYNTH_ZOOM_IN, /* the main object grows */
    DJ_SYNTH_ZOOM_OUT,
} dj_synth_class;

/* "translate_right", ...; NULL outside [0, DJ_SYNTH_MAX_CLASSES). */
const char *dj_synth_class_name(int cls);

typedef struct dj_synth_params {
    int width, height, frames;
    int distractors; /* 1: 1..2 smaller objects sliding at random; 0: none */
    float noise;     /* standard deviation of the pixel noise, 0..255 scale */
    float jitter;    /* camera jitter: per-frame offset up to this many pixels */
    /* per-frame class motion, drawn uniformly in [min, max] per clip: */
    float speed_min, speed_max; /* translation, fraction of min(w, h) per frame */
    float spin_min, spin_max;   /* rotation, degrees per frame */
    float zoom_min, zoom_max;   /* zoom, log scale change per frame */
} dj_synth_params;

/* The defaults: everything on, motion ranges that read clearly at 8..64 frames
 * (and at 64 pixels, every second frame, as the demo samples them). */
void dj_synth_params_default(dj_synth_params *p, int width, int height, int frames);

/* Renders one clip of class `cls`, a pure function of (params, seed, cls).
 * frames: [frames][height][width][3] RGB24, written;
 * mask:   [frames][height][width], 1 where the main object is visible, or NULL. */
dj_status dj_synth_render_clip(const dj_synth_params *p, uint64_t seed, int cls, uint8_t *frames, uint8_t *mask);

/* The seed of clip `index` of class `cls` in split `split` (0 train, 1 val)
 * of a data set with seed `seed`. */
uint64_t dj_synth_clip_seed(uint64_t seed, int split, int cls, int index);

typedef struct dj_synth_motion_options {
    const char *out_dir;
    int classes;       /* 1..DJ_SYNTH_MAX_CLASSES: the first `classes` of the list */
    int per_class;     /* clips per class (train split when val_per_class > 0) */
    int val_per_class; /* 0: DIR/<class>/...; > 0: DIR/train/<class>/... and DIR/val/<class>/... */
    int frames, width, height, fps;
    uint64_t seed;
    const char *codec; /* "h264" (libx264, else mpeg4 with a warning), or any writer codec */
    int threads;       /* clips encoded in parallel; <= 0: one per core (at most 8) */
    int progress;      /* 1: show a progress line */
    const dj_synth_params *scene; /* NULL: dj_synth_params_default; else distractors, noise, jitter, motion ranges */
} dj_synth_motion_options;

void dj_synth_motion_options_default(dj_synth_motion_options *o);

/* Writes the data set: the clips, classes.txt (one class name per line, in
 * DIR and in each split folder) and manifest.json (parameters, layout,
 * encoder). The files depend only on the options, not on `threads`. */
dj_status dj_synth_motion_generate(const dj_synth_motion_options *o);

/* ---- test clips -------------------------------------------------------- */

/* Renders test frame `index` (0..255): a moving gradient and box, and the
 * index written in binary as two rows of 8 blocks (the second row the
 * complement of the first) across the top, one block = width/8 pixels.
 * rgb: [height][width][3]. Needs width >= 64, height >= 48. */
dj_status dj_synth_testclip_render(int index, int width, int height, uint8_t *rgb);

/* Reads the index back from a decoded frame (rgb: [height][stride] RGB24);
 * -1 when the two rows disagree (not a test frame, or badly damaged). */
int dj_synth_testclip_read_index(const uint8_t *rgb, int width, int height, int stride);

/* Writes the test clips into out_dir (created if missing) and
 * out_dir/manifest.json; an encoder missing from this build is skipped with
 * a warning. *written (may be NULL) receives the number of files written. */
dj_status dj_synth_testclips_generate(const char *out_dir, int frames, int width, int height, int *written);

#ifdef __cplusplus
}
#endif
#endif
