/* sampling.c — epoch order, rank shards, clip frame indices, crop boxes and
 * the per-epoch batch plan; all pure functions of (seed, epoch, position). */
#include "dojo/sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/rng.h"

/* Streams separating the uses of the seed. */
enum {
    DJ_STREAM_ORDER = 0x4f52444552ull, /* "ORDER" */
    DJ_STREAM_CLIP = 0x434c4950ull,    /* "CLIP" */
    DJ_STREAM_SPATIAL = 0x5350415449ull,
};

/* ---- draws ---------------------------------------------------------------- */

/* A sequence of counter-based draws for one (key): draw i is hash(key, i). */
typedef struct dj_draws {
    uint64_t key;
    uint64_t next;
} dj_draws;

static dj_draws dj_draws_for(uint64_t seed, uint64_t stream, uint64_t epoch, uint64_t sample, uint64_t view) {
    uint64_t k = dj_hash_u64(seed, stream, epoch);
    k = dj_hash_u64(k, sample, view);
    return (dj_draws){k, 0};
}

static double dj_draw_uniform(dj_draws *d) {
    return (double)(dj_hash_u64(d->key, 0, d->next++) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n) (n >= 1); the 128-bit product has no modulo bias to speak of. */
static int64_t dj_draw_below(dj_draws *d, int64_t n) {
    uint64_t h = dj_hash_u64(d->key, 0, d->next++);
    return (int64_t)(((unsigned __int128)h * (uint64_t)n) >> 64);
}

/* ---- order and shards ------------------------------------------------------ */

dj_status dj_epoch_order(int64_t n, uint64_t seed, uint64_t epoch, int shuffle, int64_t *order) {
    if (n < 0 || (n > 0 && !order))
        return dj_error_set(DJ_ERR_INVALID, "dj_epoch_order", "bad size %lld or NULL order", (long long)n);
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    if (!shuffle)
        return DJ_OK;
    dj_rng r;
    dj_rng_seed(&r, seed ^ dj_hash_u64(epoch, DJ_STREAM_ORDER, 0), DJ_STREAM_ORDER);
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)dj_rng_below(&r, (uint64_t)i + 1);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    return DJ_OK;
}

static int dj_shard_world(const dj_shard_options *o) { return o->world > 0 ? o->world : 1; }

int dj_shard_batch_share(int global_batch, int rank, int world) {
    if (world < 1)
        world = 1;
    if (global_batch < 0 || rank < 0 || rank >= world)
        return 0;
    return global_batch / world + (rank < global_batch % world ? 1 : 0);
}

/* Samples of rank r among the first m positions of a global batch (j % world == r). */
static int64_t dj_share_of_first(int64_t m, int rank, int world) { return m > rank ? (m - rank - 1) / world + 1 : 0; }

int64_t dj_shard_count(int64_t n, const dj_shard_options *o) {
    int world = dj_shard_world(o);
    if (n < 0 || o->rank < 0 || o->rank >= world || o->global_batch < 0) {
        dj_error_set(DJ_ERR_INVALID, "shard", "rank %d is not in [0, %d), size %lld < 0 or global batch %d < 0",
                     o->rank, world, (long long)n, o->global_batch);
        return -1;
    }
    if (o->global_batch > 0) { /* whole global batches, then the dealt part of a partial one */
        const int64_t G = o->global_batch, used = o->drop_last ? n - n % G : n;
        return used / G * dj_shard_batch_share(o->global_batch, o->rank, world) +
               dj_share_of_first(used % G, o->rank, world);
    }
    int64_t used = o->drop_last ? n - n % world : n;
    return used / world + (o->rank < used % world ? 1 : 0);
}

/* Epoch position of the rank's i-th sample. */
static int64_t dj_shard_position(const dj_shard_options *o, int world, int64_t full, int64_t i) {
    if (o->global_batch <= 0)
        return o->rank + i * world;
    const int64_t share = dj_shard_batch_share(o->global_batch, o->rank, world);
    int64_t k = i / share; /* share > 0: this rank has samples */
    if (k > full)
        k = full;
    return k * o->global_batch + o->rank + (i - k * share) * world;
}

dj_status dj_shard_indices(int64_t n, uint64_t seed, uint64_t epoch, const dj_shard_options *o, int64_t *out,
                           int64_t *positions) {
    int64_t count = dj_shard_count(n, o);
    if (count < 0)
        return DJ_ERR_INVALID;
    int64_t *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (!order)
        return dj_error_set(DJ_ERR_NOMEM, "shard", "out of memory");
    dj_status st = dj_epoch_order(n, seed, epoch, o->shuffle, order);
    int world = dj_shard_world(o);
    const int64_t full = o->global_batch > 0 ? n / o->global_batch : 0;
    for (int64_t i = 0; st == DJ_OK && i < count; i++) {
        int64_t p = dj_shard_position(o, world, full, i);
        out[i] = order[p];
        if (positions)
            positions[i] = p;
    }
    free(order);
    return st;
}

/* ---- clips ------------------------------------------------------------------ */

/* Offsets of the T samples from the clip start; returns the span (last + 1). */
static int64_t dj_clip_offsets(const dj_clip_spec *s, double source_fps, int64_t *off) {
    int stride = s->stride > 0 ? s->stride : 1;
    for (int i = 0; i < s->num_frames; i++)
        off[i] = s->target_fps > 0 ? (int64_t)floor(i * (source_fps / s->target_fps) + 1e-9) : (int64_t)i * stride;
    return off[s->num_frames - 1] + 1;
}

static int64_t dj_clip_pad_index(const dj_clip_spec *s, int64_t i, int64_t n) {
    if (i < n)
        return i;
    return s->pad == DJ_PAD_REPEAT_LAST ? n - 1 : i % n;
}

/* TSN: segment i of T over n frames is [n*i/T, n*(i+1)/T); empty ones (n < T)
 * fall back to their start. */
static void dj_clip_tsn(const dj_clip_spec *s, int64_t n, dj_draws *d, int64_t *frames) {
    int T = s->num_frames;
    for (int i = 0; i < T; i++) {
        int64_t a = n * i / T, b = n * (i + 1) / T, len = b - a;
        int64_t k = len <= 0 ? 0 : s->mode == DJ_CLIP_TSN_TRAIN ? dj_draw_below(d, len) : len / 2;
        frames[i] = a + k < n ? a + k : n - 1;
    }
}

static int64_t dj_clip_start(const dj_clip_spec *s, int64_t delta, int view, dj_draws *d) {
    int K = s->num_clips > 0 ? s->num_clips : 1;
    switch (s->mode) {
    case DJ_CLIP_RANDOM: return dj_draw_below(d, delta + 1);
    case DJ_CLIP_UNIFORM:
        if (K == 1)
            return delta / 2;
        return (int64_t)llround((double)delta * view / (K - 1));
    default: return delta / 2;
    }
}

static dj_status dj_clip_check(const dj_clip_spec *s, double source_fps, int view) {
    const char *w = "clip sampling";
    if (!s || s->num_frames <= 0 || s->num_frames > 4096)
        return dj_error_set(DJ_ERR_INVALID, w, "frames per clip must be in [1, 4096]");
    if ((unsigned)s->mode > DJ_CLIP_TSN_TEST)
        return dj_error_set(DJ_ERR_INVALID, w, "unknown clip mode %d", (int)s->mode);
    if (s->stride < 0 || s->stride > 1000)
        return dj_error_set(DJ_ERR_INVALID, w, "stride %d not in [1, 1000]", s->stride);
    if (s->target_fps < 0 || !isfinite(s->target_fps))
        return dj_error_set(DJ_ERR_INVALID, w, "bad target fps %g", s->target_fps);
    if (s->target_fps > 0 && !(source_fps > 0 && source_fps < 1e4))
        return dj_error_set(DJ_ERR_INVALID, w, "target fps %g needs the source fps (got %g)", s->target_fps,
                            source_fps);
    if (s->target_fps > 0 && source_fps / s->target_fps > 1000)
        return dj_error_set(DJ_ERR_INVALID, w, "target fps %g too low for source fps %g", s->target_fps,
                            source_fps);
    if (s->num_clips < 0 || s->num_clips > 1000)
        return dj_error_set(DJ_ERR_INVALID, w, "number of clips %d not in [1, 1000]", s->num_clips);
    int K = s->mode == DJ_CLIP_UNIFORM && s->num_clips > 0 ? s->num_clips : 1;
    if (view < 0 || view >= K)
        return dj_error_set(DJ_ERR_RANGE, w, "view %d not in [0, %d)", view, K);
    return DJ_OK;
}

/* The frames [a, b) a clip may use: the range within the video. */
static dj_status dj_clip_window(const int64_t *frames, int64_t frame_count, int64_t range_start, int64_t range_end,
                                int64_t *a, int64_t *b) {
    if (!frames)
        return dj_error_set(DJ_ERR_INVALID, "clip sampling", "frames is NULL");
    *a = range_start > 0 ? range_start : 0;
    *b = range_end >= 0 && range_end < frame_count ? range_end : frame_count;
    if (*b <= *a)
        return dj_error_set(DJ_ERR_RANGE, "clip sampling", "no frames in [%lld, %lld) of a %lld-frame video",
                            (long long)range_start, (long long)range_end, (long long)frame_count);
    return DJ_OK;
}

dj_status dj_clip_sample(const dj_clip_spec *spec, int64_t frame_count, int64_t range_start, int64_t range_end,
                         double source_fps, uint64_t seed, uint64_t epoch, uint64_t clip_id, int view,
                         int64_t *frames) {
    DJ_TRY(dj_clip_check(spec, source_fps, view));
    int64_t a = 0, b = 0;
    DJ_TRY(dj_clip_window(frames, frame_count, range_start, range_end, &a, &b));
    int64_t n = b - a;
    dj_draws d = dj_draws_for(seed, DJ_STREAM_CLIP, epoch, clip_id, (uint64_t)view);
    if (spec->mode == DJ_CLIP_TSN_TRAIN || spec->mode == DJ_CLIP_TSN_TEST) {
        dj_clip_tsn(spec, n, &d, frames);
    } else {
        int64_t span = dj_clip_offsets(spec, source_fps, frames); /* offsets into frames[] first */
        int64_t start = dj_clip_start(spec, span < n ? n - span : 0, view, &d);
        for (int i = 0; i < spec->num_frames; i++)
            frames[i] = dj_clip_pad_index(spec, start + frames[i], n);
    }
    for (int i = 0; i < spec->num_frames; i++)
        frames[i] += a;
    return DJ_OK;
}

/* The last frame of table[a, b) whose timestamp is at or before t (a when
 * none). */
static int64_t dj_frame_at(const dj_frame_entry *table, int64_t a, int64_t b, double t) {
    int64_t lo = a, hi = b - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if ((double)table[mid].pts <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

dj_status dj_clip_sample_timed(const dj_clip_spec *spec, const dj_frame_entry *table, int tb_num, int tb_den,
                               int64_t frame_count, int64_t range_start, int64_t range_end, double source_fps,
                               uint64_t seed, uint64_t epoch, uint64_t clip_id, int view, int64_t *frames) {
    if (!spec || !table || tb_num <= 0 || tb_den <= 0 || !(spec->target_fps > 0) || spec->mode == DJ_CLIP_TSN_TRAIN ||
        spec->mode == DJ_CLIP_TSN_TEST)
        return dj_clip_sample(spec, frame_count, range_start, range_end, source_fps, seed, epoch, clip_id, view,
                              frames);
    DJ_TRY(dj_clip_check(spec, source_fps > 0 ? source_fps : spec->target_fps, view));
    int64_t a = 0, b = 0;
    DJ_TRY(dj_clip_window(frames, frame_count, range_start, range_end, &a, &b));
    /* In timestamp ticks: the spacing dt, the mean frame duration and a
     * slack of 1e-9 of it (the frame-count formula's: a sample exactly on a
     * frame's start takes that frame), and the video's end, the last frame's
     * start plus the interval before it. */
    int64_t n = b - a;
    double dt = (double)tb_den / ((double)tb_num * spec->target_fps), span = (spec->num_frames - 1) * dt;
    double mean = n > 1 ? (double)(table[b - 1].pts - table[a].pts) / (double)(n - 1) : dt, eps = 1e-9 * mean;
    double end = (double)table[b - 1].pts + (n > 1 ? (double)(table[b - 1].pts - table[b - 2].pts) : mean);
    /* the starts whose last sample falls before the end: a prefix [a, a + m) */
    int64_t lo = a, hi = b;
    while (lo < hi) { /* the first frame that starts too late */
        int64_t mid = lo + (hi - lo) / 2;
        if ((double)table[mid].pts + span + eps < end)
            lo = mid + 1;
        else
            hi = mid;
    }
    int64_t m = lo - a;
    if (m <= 0) /* shorter than the clip: padded as by frame counts */
        return dj_clip_sample(spec, frame_count, range_start, range_end, source_fps, seed, epoch, clip_id, view,
                              frames);
    dj_draws d = dj_draws_for(seed, DJ_STREAM_CLIP, epoch, clip_id, (uint64_t)view);
    int64_t s = a + dj_clip_start(spec, m - 1, view, &d);
    double t0 = (double)table[s].pts;
    for (int i = 0; i < spec->num_frames; i++)
        frames[i] = dj_frame_at(table, s, b, t0 + i * dt + eps);
    return DJ_OK;
}

/* ---- crops ------------------------------------------------------------------ */

static void dj_spatial_defaults(const dj_spatial_spec *in, dj_spatial_spec *s) {
    *s = *in;
    if (s->scale_min == 0 && s->scale_max == 0) {
        s->scale_min = 0.08f;
        s->scale_max = 1.0f;
    }
    if (s->ratio_min == 0 && s->ratio_max == 0) {
        s->ratio_min = 3.0f / 4.0f;
        s->ratio_max = 4.0f / 3.0f;
    }
    if (s->num_crops == 0)
        s->num_crops = 1;
}

static dj_status dj_spatial_check(const dj_spatial_spec *s) {
    const char *w = "spatial sampling";
    if ((unsigned)s->mode > DJ_SPATIAL_SHORT_SIDE)
        return dj_error_set(DJ_ERR_INVALID, w, "unknown spatial mode %d", (int)s->mode);
    if (!(s->scale_min > 0 && s->scale_min <= s->scale_max && s->scale_max <= 1))
        return dj_error_set(DJ_ERR_INVALID, w, "crop scale range (%g, %g) not within (0, 1]", s->scale_min,
                            s->scale_max);
    if (!(s->ratio_min > 0 && s->ratio_min <= s->ratio_max && s->ratio_max < 100))
        return dj_error_set(DJ_ERR_INVALID, w, "crop aspect range (%g, %g) is invalid", s->ratio_min, s->ratio_max);
    if (!(s->flip_prob >= 0 && s->flip_prob <= 1))
        return dj_error_set(DJ_ERR_INVALID, w, "flip probability %g not in [0, 1]", s->flip_prob);
    if (s->mode == DJ_SPATIAL_SCALE_JITTER &&
        !(s->jitter_min > 0 && s->jitter_min <= s->jitter_max && s->crop_size > 0 && s->crop_size <= s->jitter_min))
        return dj_error_set(DJ_ERR_INVALID, w, "scale jitter needs 0 < crop %d <= min %d <= max %d", s->crop_size,
                            s->jitter_min, s->jitter_max);
    if (s->mode == DJ_SPATIAL_SHORT_SIDE &&
        !(s->short_side > 0 && s->crop_size > 0 && (s->num_crops == 1 || s->num_crops == 3)))
        return dj_error_set(DJ_ERR_INVALID, w, "short-side crop needs short side > 0, crop > 0, 1 or 3 crops");
    return DJ_OK;
}

static dj_status dj_crop_rrc(int W, int H, const dj_spatial_spec *s, dj_draws *d, dj_crop_box *out) {
    double area = (double)W * H;
    double lr0 = log(s->ratio_min), lr1 = log(s->ratio_max);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (s->scale_min + (s->scale_max - s->scale_min) * dj_draw_uniform(d));
        double aspect = exp(lr0 + (lr1 - lr0) * dj_draw_uniform(d));
        int w = (int)lround(sqrt(target * aspect)), h = (int)lround(sqrt(target / aspect));
        if (w > 0 && h > 0 && w <= W && h <= H) {
            int y = (int)dj_draw_below(d, H - h + 1);
            int x = (int)dj_draw_below(d, W - w + 1);
            *out = (dj_crop_box){x, y, w, h};
            return DJ_OK;
        }
    }
    double in_ratio = (double)W / H; /* fallback: the centre crop of the clamped aspect */
    int w = W, h = H;
    if (in_ratio < s->ratio_min)
        h = (int)lround(W / (double)s->ratio_min);
    else if (in_ratio > s->ratio_max)
        w = (int)lround(H * (double)s->ratio_max);
    h = h < 1 ? 1 : h > H ? H : h;
    w = w < 1 ? 1 : w > W ? W : w;
    *out = (dj_crop_box){(W - w) / 2, (H - h) / 2, w, h};
    return DJ_OK;
}

dj_status dj_crop_random_resized(int width, int height, const dj_spatial_spec *spec, uint64_t key,
                                 dj_crop_box *out) {
    if (!spec || !out || width <= 0 || height <= 0)
        return dj_error_set(DJ_ERR_INVALID, "random resized crop", "bad frame size %dx%d or NULL argument", width,
                            height);
    dj_spatial_spec s;
    dj_spatial_defaults(spec, &s);
    DJ_TRY(dj_spatial_check(&s));
    dj_draws d = {key, 0};
    return dj_crop_rrc(width, height, &s, &d, out);
}

/* Scale jitter: short side S drawn in [min, max], a random crop of C there,
 * mapped back to source pixels. */
static void dj_crop_jitter(int W, int H, const dj_spatial_spec *s, dj_draws *d, dj_crop_box *out) {
    int S = s->jitter_min + (int)dj_draw_below(d, s->jitter_max - s->jitter_min + 1);
    double scale = (double)(W < H ? W : H) / S; /* source pixels per resized pixel */
    int rw = (int)lround(W / scale), rh = (int)lround(H / scale);
    int C = s->crop_size;
    int xr = rw > C ? (int)dj_draw_below(d, rw - C + 1) : 0;
    int yr = rh > C ? (int)dj_draw_below(d, rh - C + 1) : 0;
    int side = (int)lround(C * scale);
    side = side < 1 ? 1 : side;
    int w = side < W ? side : W, h = side < H ? side : H;
    int x = (int)lround(xr * scale), y = (int)lround(yr * scale);
    *out = (dj_crop_box){x + w <= W ? x : W - w, y + h <= H ? y : H - h, w, h};
}

/* ---- the plan --------------------------------------------------------------- */

static int dj_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static dj_status dj_plan_check(const dj_plan_entry *v, int64_t n, const dj_plan_options *o) {
    if (!o || (n > 0 && !v) || n < 0)
        return dj_error_set(DJ_ERR_INVALID, "batch plan", "NULL argument or negative size");
    if (o->batch_size <= 0 || o->batch_size > (1 << 20))
        return dj_error_set(DJ_ERR_INVALID, "batch plan", "batch size %d not in [1, 2^20]", o->batch_size);
    for (int64_t i = 0; i < n; i++)
        if (v[i].width <= 0 || v[i].height <= 0 || v[i].frame_count <= 0)
            return dj_error_set(DJ_ERR_INVALID, "batch plan", "entry %lld: %dx%d with %lld frames", (long long)i,
                                v[i].width, v[i].height, (long long)v[i].frame_count);
    return DJ_OK;
}

/* Fills a slot's frames, crop and flip from its sample and view. */
static dj_status dj_plan_fill_slot(dj_plan_slot *slot, const dj_plan_entry *v, uint64_t seed,
                                   uint64_t epoch, const dj_plan_options *o, const dj_spatial_spec *sp) {
    int64_t *frames = (int64_t *)slot->frames;
    dj_status st = dj_clip_sample_timed(&o->clip, v->table, v->tb_num, v->tb_den, v->frame_count, v->start_frame,
                                        v->end_frame, v->fps, seed, epoch, (uint64_t)slot->sample,
                                        slot->temporal_view, frames);
    if (st != DJ_OK) {
        dj_error_prefix("entry %lld", (long long)slot->entry);
        return st;
    }
    uint64_t view = (uint64_t)slot->temporal_view * 8 + (uint64_t)slot->spatial_view;
    dj_draws d = dj_draws_for(seed, DJ_STREAM_SPATIAL, epoch, (uint64_t)slot->sample, view);
    if (sp->mode == DJ_SPATIAL_RESIZED_CROP)
        dj_crop_rrc(v->width, v->height, sp, &d, &slot->crop);
    else if (sp->mode == DJ_SPATIAL_SCALE_JITTER)
        dj_crop_jitter(v->width, v->height, sp, &d, &slot->crop);
    else
        DJ_TRY(dj_crop_short_side(v->width, v->height, sp->short_side, sp->crop_size,
                                  sp->num_crops == 3 ? slot->spatial_view : 1, &slot->crop));
    slot->flip = sp->flip_prob > 0 && dj_draw_uniform(&d) < sp->flip_prob;
    return DJ_OK;
}

/* Gives each slot of a batch the batch's video of its entry (one per entry). */
static void dj_plan_group_batch(dj_batch_plan *p, dj_plan_batch *b) {
    b->first_video = p->num_videos;
    for (int i = 0; i < b->num_slots; i++) {
        dj_plan_slot *s = &p->slots[b->first_slot + i];
        int64_t vid = -1;
        for (int64_t v = b->first_video; v < p->num_videos && vid < 0; v++)
            if (p->videos[v].entry == s->entry)
                vid = v;
        if (vid < 0) {
            vid = p->num_videos++;
            p->videos[vid] = (dj_plan_video){s->entry, NULL, 0};
        }
        s->video = vid;
    }
    b->num_videos = (int)(p->num_videos - b->first_video);
}

/* Writes video v's decode list at `list` (the frames of its slots in batch b,
 * sorted, unique), points each slot's frame_pos into it; returns its length. */
static int64_t dj_plan_decode_list(dj_batch_plan *p, const dj_plan_batch *b, int64_t v, int64_t *list) {
    int T = p->frames_per_clip;
    int64_t m = 0, u = 0;
    for (int i = 0; i < b->num_slots; i++) {
        const dj_plan_slot *s = &p->slots[b->first_slot + i];
        for (int t = 0; s->video == v && t < T; t++)
            list[m++] = s->frames[t];
    }
    qsort(list, (size_t)m, sizeof *list, dj_cmp_i64);
    for (int64_t j = 0; j < m; j++)
        if (u == 0 || list[u - 1] != list[j])
            list[u++] = list[j];
    p->videos[v].frames = list;
    p->videos[v].num_frames = (int)u;
    for (int i = 0; i < b->num_slots; i++) {
        dj_plan_slot *s = &p->slots[b->first_slot + i];
        for (int t = 0; s->video == v && t < T; t++) {
            const int64_t *hit = bsearch(&s->frames[t], list, (size_t)u, sizeof *list, dj_cmp_i64);
            ((int32_t *)s->frame_pos)[t] = (int32_t)(hit - list);
        }
    }
    return u;
}

/* Groups one batch's slots by entry and writes each video's decode list at
 * *pool, advancing it. */
static void dj_plan_dedup_batch(dj_batch_plan *p, dj_plan_batch *b, int64_t **pool) {
    dj_plan_group_batch(p, b);
    for (int64_t v = b->first_video; v < p->num_videos; v++)
        *pool += dj_plan_decode_list(p, b, v, *pool);
}

static dj_status dj_plan_alloc(dj_batch_plan *p, int64_t samples, const dj_plan_options *o, int T) {
    int64_t B = o->batch_size;
    if (samples > ((int64_t)1 << 31) / ((int64_t)p->views_per_sample * T))
        return dj_error_set(DJ_ERR_RANGE, "batch plan", "%lld samples x %d views x %d frames is too large for one plan",
                            (long long)samples, p->views_per_sample, T);
    int64_t slots = samples * p->views_per_sample;
    if (o->shard.drop_last)
        slots -= slots % B;
    p->num_slots = slots;
    p->num_batches = (slots + B - 1) / B;
    size_t ns = (size_t)(slots > 0 ? slots : 1);
    p->batches = calloc((size_t)(p->num_batches > 0 ? p->num_batches : 1), sizeof *p->batches);
    p->slots = calloc(ns, sizeof *p->slots);
    p->videos = calloc(ns, sizeof *p->videos);
    p->frame_pool = malloc(ns * 2 * (size_t)T * sizeof *p->frame_pool);
    p->pos_pool = malloc(ns * (size_t)T * sizeof *p->pos_pool);
    if (!p->batches || !p->slots || !p->videos || !p->frame_pool || !p->pos_pool)
        return dj_error_set(DJ_ERR_NOMEM, "batch plan", "out of memory for %lld slots", (long long)slots);
    return DJ_OK;
}

static dj_status dj_plan_build(dj_batch_plan *p, const dj_plan_entry *videos, int64_t n, uint64_t seed,
                               uint64_t epoch, const dj_plan_options *o, const dj_spatial_spec *sp) {
    int T = o->clip.num_frames;
    int kt = o->clip.mode == DJ_CLIP_UNIFORM && o->clip.num_clips > 0 ? o->clip.num_clips : 1;
    int ks = sp->mode == DJ_SPATIAL_SHORT_SIDE ? sp->num_crops : 1;
    p->frames_per_clip = T;
    p->views_per_sample = kt * ks;
    int64_t samples = dj_shard_count(n, &o->shard);
    if (samples < 0)
        return DJ_ERR_INVALID;
    int64_t *entries = malloc((size_t)(samples > 0 ? samples : 1) * 2 * sizeof *entries);
    if (!entries)
        return dj_error_set(DJ_ERR_NOMEM, "batch plan", "out of memory");
    int64_t *positions = entries + (samples > 0 ? samples : 1);
    dj_status st = dj_shard_indices(n, seed, epoch, &o->shard, entries, positions);
    if (st == DJ_OK)
        st = dj_plan_alloc(p, samples, o, T);
    for (int64_t i = 0; st == DJ_OK && i < p->num_slots; i++) {
        int64_t s = i / p->views_per_sample;
        int view = (int)(i % p->views_per_sample);
        dj_plan_slot *slot = &p->slots[i];
        *slot = (dj_plan_slot){.entry = entries[s], .sample = positions[s], .temporal_view = view / ks,
                               .spatial_view = view % ks, .frames = p->frame_pool + i * T,
                               .frame_pos = p->pos_pool + i * T};
        st = dj_plan_fill_slot(slot, &videos[entries[s]], seed, epoch, o, sp);
    }
    int64_t *pool = p->frame_pool + p->num_slots * T;
    for (int64_t b = 0; st == DJ_OK && b < p->num_batches; b++) {
        dj_plan_batch *pb = &p->batches[b];
        pb->first_slot = b * o->batch_size;
        int64_t left = p->num_slots - pb->first_slot;
        pb->num_slots = (int)(left < o->batch_size ? left : o->batch_size);
        dj_plan_dedup_batch(p, pb, &pool);
    }
    free(entries);
    return st;
}

/* With shard.global_batch, a batch is this rank's share of each global
 * batch: batch_size 0 becomes share x views; any other value must equal it. */
static dj_status dj_plan_global_batch(dj_plan_options *o) {
    if (o->shard.global_batch <= 0)
        return DJ_OK;
    int kt = o->clip.mode == DJ_CLIP_UNIFORM && o->clip.num_clips > 0 ? o->clip.num_clips : 1;
    int ks = o->spatial.mode == DJ_SPATIAL_SHORT_SIDE && o->spatial.num_crops > 0 ? o->spatial.num_crops : 1;
    int world = o->shard.world > 0 ? o->shard.world : 1;
    int share = dj_shard_batch_share(o->shard.global_batch, o->shard.rank, world);
    if (share < 1)
        return dj_error_set(DJ_ERR_INVALID, "batch plan", "a global batch of %d has no sample for rank %d of %d",
                            o->shard.global_batch, o->shard.rank, world);
    if (o->batch_size != 0 && o->batch_size != share * kt * ks)
        return dj_error_set(DJ_ERR_INVALID, "batch plan",
                            "batch size %d is not rank %d's share of the global batch (%d samples x %d views)",
                            o->batch_size, o->shard.rank, share, kt * ks);
    o->batch_size = share * kt * ks;
    return DJ_OK;
}

dj_status dj_batch_plan_create(const dj_plan_entry *videos, int64_t num_entries, uint64_t seed, uint64_t epoch,
                               const dj_plan_options *options, dj_batch_plan **out) {
    if (!out)
        return dj_error_set(DJ_ERR_INVALID, "batch plan", "out is NULL");
    *out = NULL;
    if (!options)
        return dj_error_set(DJ_ERR_INVALID, "batch plan", "NULL options");
    dj_plan_options o = *options;
    DJ_TRY(dj_plan_global_batch(&o));
    DJ_TRY(dj_plan_check(videos, num_entries, &o));
    DJ_TRY(dj_clip_check(&options->clip, options->clip.target_fps, 0)); /* per-entry fps checked per clip */
    dj_spatial_spec sp;
    dj_spatial_defaults(&options->spatial, &sp);
    DJ_TRY(dj_spatial_check(&sp));
    for (int64_t i = 0; options->clip.target_fps > 0 && i < num_entries; i++)
        if (!(videos[i].fps > 0))
            return dj_error_set(DJ_ERR_INVALID, "batch plan", "entry %lld has no fps but a target fps is set",
                                (long long)i);
    dj_batch_plan *p = calloc(1, sizeof *p);
    if (!p)
        return dj_error_set(DJ_ERR_NOMEM, "batch plan", "out of memory");
    dj_status st = dj_plan_build(p, videos, num_entries, seed, epoch, &o, &sp);
    if (st != DJ_OK) {
        dj_batch_plan_free(p);
        return st;
    }
    *out = p;
    return DJ_OK;
}

void dj_batch_plan_free(dj_batch_plan *plan) {
    if (!plan)
        return;
    free(plan->batches);
    free(plan->slots);
    free(plan->videos);
    free(plan->frame_pool);
    free(plan->pos_pool);
    free(plan);
}
