/* dojo/sampling.h — which frames of which videos, cropped how, in each batch.
 *
 * Everything here is a pure function of (seed, epoch, sample position): the
 * order of an epoch is a Fisher-Yates shuffle by dj_rng seeded with (seed,
 * epoch); every random choice for a sample (clip start, TSN offsets, crop box,
 * flip) is a counter-based hash of (seed, epoch, global position of the sample
 * in the epoch order, view, draw). So a plan does not depend on the number of
 * workers, the order they run in, or even on the number of ranks: the union
 * of the ranks' plans is the one-rank plan.
 *
 * Short videos (fewer frames than the clip spans) are padded, never indexed
 * out of range: DJ_PAD_LOOP wraps around (MMAction2's default 'loop'),
 * DJ_PAD_REPEAT_LAST repeats the last frame (PySlowFast clamps its linspace
 * indices, which amounts to the same). */
#ifndef DOJO_SAMPLING_H
#define DOJO_SAMPLING_H

#include <stdint.h>

#include "dojo/error.h"
#include "dojo/transform.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- epoch order and sharding ------------------------------------------ */

typedef struct dj_shard_options {
    int shuffle;   /* 1: shuffled by (seed, epoch); 0: sorted order */
    int drop_last; /* cut the order to a multiple of world (and drop a last partial batch) */
    int rank, world; /* world 0 is taken as 1 */
    /* > 0: the order is dealt in global batches of this many samples:
     * position p = k * global_batch + j goes to rank j % world, so rank r
     * holds dj_shard_batch_share() samples of every global batch (3/3/2 for
     * 8 over 3 ranks) and the ranks' k-th batches together are the
     * one-process k-th batch. drop_last then keeps whole global batches only;
     * without it, the last partial global batch is dealt the same way (a
     * rank whose share of it is empty has one batch less). 0: position p
     * goes to rank p % world, the same deal when world divides the batch. */
    int global_batch;
} dj_shard_options;

/* order[n]: the epoch's permutation of 0..n-1. */
dj_status dj_epoch_order(int64_t n, uint64_t seed, uint64_t epoch, int shuffle, int64_t *order);
/* Rank's samples of each global batch of global_batch: global_batch /
 * world, plus one for the first global_batch % world ranks. */
int dj_shard_batch_share(int global_batch, int rank, int world);
/* How many samples rank gets of n; -1 (with an error message) when rank/world are bad. */
int64_t dj_shard_count(int64_t n, const dj_shard_options *o);
/* The rank's samples: epoch-order position p goes to rank p % world (or as
 * global_batch deals them), in epoch order.
 * out[count]: entry indices; positions[count] (may be NULL): their global
 * positions p in the epoch order. */
dj_status dj_shard_indices(int64_t n, uint64_t seed, uint64_t epoch, const dj_shard_options *o, int64_t *out,
                           int64_t *positions);

/* ---- temporal sampling --------------------------------------------------- */

typedef enum dj_clip_mode {
    DJ_CLIP_RANDOM = 0, /* training: a random start */
    DJ_CLIP_CENTER = 1, /* the centred clip */
    DJ_CLIP_UNIFORM = 2, /* testing: view k of num_clips evenly spaced starts, first at the start, last at the end */
    DJ_CLIP_TSN_TRAIN = 3, /* num_frames equal segments, one random frame in each */
    DJ_CLIP_TSN_TEST = 4,  /* num_frames equal segments, the centre frame of each */
} dj_clip_mode;

typedef enum dj_clip_pad {
    DJ_PAD_LOOP = 0,
    DJ_PAD_REPEAT_LAST = 1,
} dj_clip_pad;

typedef struct dj_clip_spec {
    int num_frames;    /* T */
    int stride;        /* frames between samples (0 taken as 1); unused by TSN */
    double target_fps; /* > 0: samples spaced 1/target_fps seconds (needs the source fps), overrides stride */
    dj_clip_mode mode;
    int num_clips;     /* K for DJ_CLIP_UNIFORM (0 taken as 1) */
    dj_clip_pad pad;
} dj_clip_spec;

/* frames[T]: the frame indices of view `view` (0..K-1 for UNIFORM, else 0) of
 * clip `clip_id`, all inside [range_start, range_end) ∩ [0, frame_count)
 * (range_end < 0: to the end). source_fps is only read when target_fps > 0. */
dj_status dj_clip_sample(const dj_clip_spec *spec, int64_t frame_count, int64_t range_start, int64_t range_end,
                         double source_fps, uint64_t seed, uint64_t epoch, uint64_t clip_id, int view,
                         int64_t *frames);

/* The same with the video's frame table (presentation order, time base
 * tb_num/tb_den): with target_fps > 0 the samples are the frames shown at
 * the times t0 + i / target_fps (the last frame starting at or before each),
 * t0 the start frame's timestamp, so variable-frame-rate videos (phones,
 * slow motion) are sampled evenly in time. The start is drawn among the
 * frames whose last sample falls before the video's end (the last frame's
 * start plus the interval before it), with the draws of dj_clip_sample: on
 * a constant-rate video both give the same frames (tested). A
 * video shorter than the clip, TSN modes and target_fps 0 take
 * dj_clip_sample (source_fps: the mean rate). */
dj_status dj_clip_sample_timed(const dj_clip_spec *spec, const dj_frame_entry *table, int tb_num, int tb_den,
                               int64_t frame_count, int64_t range_start, int64_t range_end, double source_fps,
                               uint64_t seed, uint64_t epoch, uint64_t clip_id, int view, int64_t *frames);

/* ---- spatial sampling ----------------------------------------------------- */

typedef enum dj_spatial_mode {
    DJ_SPATIAL_RESIZED_CROP = 0, /* training: torchvision RandomResizedCrop (10 tries, then centre crop) */
    DJ_SPATIAL_SCALE_JITTER = 1, /* training: short side random in [jitter_min, jitter_max], random crop_size square */
    DJ_SPATIAL_SHORT_SIDE = 2,   /* testing: short side = short_side, 1 centre or 3 crops of crop_size */
} dj_spatial_mode;

typedef struct dj_spatial_spec {
    dj_spatial_mode mode;
    float scale_min, scale_max; /* RESIZED_CROP area fraction; both 0: (0.08, 1) */
    float ratio_min, ratio_max; /* RESIZED_CROP w/h; both 0: (3/4, 4/3) */
    int jitter_min, jitter_max; /* SCALE_JITTER short side range */
    int short_side;             /* SHORT_SIDE */
    int crop_size;              /* SCALE_JITTER, SHORT_SIDE: square side in resized pixels */
    int num_crops;              /* SHORT_SIDE: 1 (centre) or 3; 0 taken as 1 */
    float flip_prob;            /* probability of a horizontal flip (0.5 training, 0 testing) */
} dj_spatial_spec;

/* RandomResizedCrop of a width x height frame from the draws of `key`. */
dj_status dj_crop_random_resized(int width, int height, const dj_spatial_spec *spec, uint64_t key,
                                 dj_crop_box *out);

/* ---- the batch plan ------------------------------------------------------- */

/* What the plan needs to know of each dataset entry (from the indexer). */
typedef struct dj_plan_entry {
    int64_t frame_count;
    int width, height;              /* the upright picture's (crops are drawn in it) */
    double fps;                     /* only read when clip.target_fps > 0 */
    const dj_frame_entry *table;    /* frame timestamps (frame_count, presentation order), or NULL: with
                                       clip.target_fps, samples by time (dj_clip_sample_timed); read
                                       only while the plan is made */
    int tb_num, tb_den;             /* their time base */
    int64_t start_frame, end_frame; /* both -1: the whole video */
} dj_plan_entry;

typedef struct dj_plan_options {
    int batch_size; /* views per batch; with shard.global_batch, 0 or this rank's share x views */
    dj_shard_options shard;
    dj_clip_spec clip;
    dj_spatial_spec spatial;
} dj_plan_options;

/* One batch slot: one view (temporal clip x spatial crop) of one video. */
typedef struct dj_plan_slot {
    int64_t entry;  /* dataset entry */
    int64_t sample; /* global position in the epoch order */
    int64_t video;  /* index into plan->videos: the batch's decode list this slot reads */
    int temporal_view, spatial_view;
    int flip;
    dj_crop_box crop;         /* in the source frame's pixels */
    const int64_t *frames;    /* [T] frame indices */
    const int32_t *frame_pos; /* [T] positions of those frames in videos[video].frames */
} dj_plan_slot;

/* The frames one batch decodes from one video: ascending, no duplicates. */
typedef struct dj_plan_video {
    int64_t entry;
    const int64_t *frames; /* [num_frames] */
    int num_frames;
} dj_plan_video;

typedef struct dj_plan_batch {
    int64_t first_slot;
    int num_slots;
    int64_t first_video;
    int num_videos;
} dj_plan_batch;

typedef struct dj_batch_plan {
    int frames_per_clip; /* T */
    int views_per_sample; /* temporal x spatial views */
    int64_t num_batches;
    dj_plan_batch *batches; /* [num_batches] */
    int64_t num_slots;
    dj_plan_slot *slots;    /* [num_slots], batch after batch */
    int64_t num_videos;
    dj_plan_video *videos;  /* [num_videos], batch after batch */
    int64_t *frame_pool;    /* [num_slots * T] slot frames, then the decode lists */
    int32_t *pos_pool;      /* [num_slots * T] */
} dj_batch_plan;

/* The plan of one epoch for one rank over `num_entries` videos. */
dj_status dj_batch_plan_create(const dj_plan_entry *videos, int64_t num_entries, uint64_t seed, uint64_t epoch,
                               const dj_plan_options *options, dj_batch_plan **out);
void dj_batch_plan_free(dj_batch_plan *plan);

#ifdef __cplusplus
}
#endif
#endif
