/* bench_decode.c — `dojo bench decode DATA`: random 16-frame clips (a seeded
 * plan: which video, which start frame, stride 1) read with the exact-seek
 * reader, every delivered frame put through the loader's transform
 * (dj_transform_frame into a channel-planar uint8 RGB slot at --size, the
 * whole frame; --packed: bare swscale to packed RGB24 instead, what PyAV's
 * to_ndarray does). --stride S: every S-th frame, as strided training
 * clips are. Prints clips per second, frames decoded per frame delivered
 * and seeks per clip; writes
 * the plan as JSON (--plan-out) for bench/peers/pyav_decode.py, which decodes
 * the same clips with PyAV, so bench/bench_decode.sh can compare.
 *
 * By default every clip is read on its own, one reader reopened at each
 * clip's video (a training loader's worker: a batch rarely holds two clips of
 * one video; the decoder is kept while the streams are alike); --fresh opens
 * a new reader, decoder included, for every clip. --order video,
 * --reuse and --share measure what grouping clips of one file buys: sorted
 * by video and start, one reader kept per video, and clips whose first frames
 * share a GOP read in one call (one pre-roll, each frame decoded once and
 * delivered to every clip that holds it). --no-skip turns off the reader's
 * skipping of non-reference frames nobody asked for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>

#include "cli.h"
#include "dojo/log.h"
#include "dojo/rng.h"
#include "dojo/transform.h"
#include "dojo/video.h"

static int64_t dj_bd_clips = 200, dj_bd_frames = 16, dj_bd_stride = 1, dj_bd_size = 0, dj_bd_threads = 1,
               dj_bd_seed = 1;
static int dj_bd_json, dj_bd_no_skip, dj_bd_reuse, dj_bd_share, dj_bd_fresh, dj_bd_packed;
static const char *dj_bd_plan_out, *dj_bd_order;

static const dj_option dj_bd_options[] = {
    {"clips", DJ_OPT_INT, &dj_bd_clips, "N", "clips to read (default 200)", 1, 1e7},
    {"frames", DJ_OPT_INT, &dj_bd_frames, "T", "frames per clip (default 16)", 1, 4096},
    {"stride", DJ_OPT_INT, &dj_bd_stride, "S", "frames between a clip's frames (default 1: consecutive)", 1, 1024},
    {"size", DJ_OPT_INT, &dj_bd_size, "S", "convert frames to S x S RGB (0: native size, default)", 0, 8192},
    {"threads", DJ_OPT_INT, &dj_bd_threads, "W", "decoder threads (default 1)", 1, 64},
    {"seed", DJ_OPT_INT, &dj_bd_seed, "S", "seed of the clip plan", 0, 9.2e18},
    {"json", DJ_OPT_FLAG, &dj_bd_json, NULL, "print one JSON object", 0, 0},
    {"plan-out", DJ_OPT_STRING, &dj_bd_plan_out, "FILE", "write the clip plan as JSON for the PyAV peer", 0, 0},
    {"order", DJ_OPT_STRING, &dj_bd_order, "random|video", "clip order: as drawn (default) or by video and start", 0, 0},
    {"reuse", DJ_OPT_FLAG, &dj_bd_reuse, NULL, "keep the reader while clips come from the same video", 0, 0},
    {"share", DJ_OPT_FLAG, &dj_bd_share, NULL, "read consecutive clips of a video starting in one GOP in one call", 0, 0},
    {"fresh", DJ_OPT_FLAG, &dj_bd_fresh, NULL, "a new reader (and decoder) for every clip instead of reopening one", 0, 0},
    {"packed", DJ_OPT_FLAG, &dj_bd_packed, NULL, "convert with bare swscale to packed RGB24 (the peers' way) instead of the loader's transform", 0, 0},
    {"no-skip", DJ_OPT_FLAG, &dj_bd_no_skip, NULL, "decode non-reference frames nobody asked for too", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_bd_spec = {
    "bench decode",
    "DATA [--clips N] [--frames T] [--stride S] [--size S] [--threads W] [--json] [--plan-out FILE] [--order random|video] "
    "[--reuse] [--share] [--fresh] [--no-skip] [--packed]",
    "DATA is a folder, list file or index file of videos. Reads random clips of\n"
    "T frames, reopening one reader at each clip's video (as a loader's worker\n"
    "does), converting every delivered frame to RGB with the loader's transform\n"
    "(--packed: bare swscale to packed RGB24). --order video, --reuse\n"
    "and --share group the clips of one video (see bench/peers/README.md).",
    dj_bd_options, 1, 1,
};

/* Frames one clip spans: T frames, S apart. */
static int64_t dj_bd_span(void) { return (dj_bd_frames - 1) * dj_bd_stride + 1; }

typedef struct dj_bd_clip {
    int64_t video, start;
    int64_t group; /* clips read in one call share a group number (consecutive) */
} dj_bd_clip;

typedef struct dj_bd_sink {
    struct SwsContext *sws; /* --packed: bare swscale to packed RGB24, the peers' conversion */
    uint8_t *rgb;           /* [S*S*3] or [w*h*3] */
    size_t cap;
    dj_transformer *tf; /* otherwise: the loader's transform into a 1x3x1xHxW uint8 slot */
    dj_tensor slot;
    int64_t frames;
} dj_bd_sink;

static dj_status dj_bd_reserve(dj_bd_sink *s, size_t need) {
    if (need <= s->cap)
        return DJ_OK;
    uint8_t *p = realloc(s->rgb, need);
    if (!p)
        return dj_error_set(DJ_ERR_NOMEM, "bench decode", "cannot allocate a picture");
    s->rgb = p;
    s->cap = need;
    return DJ_OK;
}

/* Bare sws_scale to packed RGB24 at --size (or native), as PyAV's
 * to_ndarray(format="rgb24") does. */
static dj_status dj_bd_convert_packed(dj_bd_sink *s, const dj_frame *f, int w, int h) {
    s->sws = sws_getCachedContext(s->sws, f->width, f->height, (enum AVPixelFormat)f->format, w, h,
                                  AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
    if (!s->sws)
        return dj_error_set(DJ_ERR_UNSUPPORTED, "bench decode", "cannot convert frames to rgb24");
    DJ_TRY(dj_bd_reserve(s, (size_t)w * (h + 1) * 3 + 256)); /* swscale's SIMD may write past the last pixel */
    uint8_t *dst[4] = {s->rgb, NULL, NULL, NULL};
    int dst_ls[4] = {w * 3, 0, 0, 0};
    sws_scale(s->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dst_ls);
    return DJ_OK;
}

/* What the loader does with a delivered frame: dj_transform_frame into a
 * uint8 RGB slot of the batch layout (channel-planar, N x 3 x T x H x W). */
static dj_status dj_bd_convert_loader(dj_bd_sink *s, const dj_frame_view *v, int w, int h) {
    DJ_TRY(dj_bd_reserve(s, (size_t)w * h * 3));
    int64_t shape[5] = {1, 3, 1, h, w};
    DJ_TRY(dj_tensor_view(DJ_DTYPE_U8, 5, shape, s->rgb, &s->slot));
    return dj_transform_frame(s->tf, v, NULL, 0, NULL, &s->slot, 0, 0);
}

static dj_status dj_bd_convert(void *arg, const dj_frame *f) {
    dj_bd_sink *s = arg;
    dj_frame_view v = dj_frame_view_of(f);
    int uw = f->width, uh = f->height; /* native size: the loader's frames are upright, packed ones as stored */
    if (!dj_bd_packed)
        dj_frame_view_upright(&v, &uw, &uh);
    int w = dj_bd_size ? (int)dj_bd_size : uw, h = dj_bd_size ? (int)dj_bd_size : uh;
    DJ_TRY(dj_bd_packed ? dj_bd_convert_packed(s, f, w, h) : dj_bd_convert_loader(s, &v, w, h));
    s->frames++;
    return DJ_OK;
}

static dj_status dj_bd_open_data(const char *data, dj_index **ix) {
    if (dj_index_load(data, ix) == DJ_OK)
        return DJ_OK;
    dj_index_build_options o = {0, NULL, 1};
    return dj_index_build(data, &o, ix, NULL);
}

/* The seeded plan: clips of videos long enough for T frames. */
static dj_status dj_bd_plan(const dj_index *ix, dj_bd_clip *plan) {
    int64_t n = dj_index_count(ix), usable = 0;
    int64_t *ok = malloc((size_t)n * sizeof *ok);
    if (!ok)
        return dj_error_set(DJ_ERR_NOMEM, "bench decode", "cannot plan");
    for (int64_t i = 0; i < n; i++)
        if (dj_index_video(ix, i)->nframes >= dj_bd_span())
            ok[usable++] = i;
    if (!usable) {
        free(ok);
        return dj_error_set(DJ_ERR_INVALID, "--frames", "no video has %lld frames", (long long)dj_bd_span());
    }
    dj_rng rng;
    dj_rng_seed(&rng, (uint64_t)dj_bd_seed, 0);
    for (int64_t c = 0; c < dj_bd_clips; c++) {
        plan[c].video = ok[dj_rng_below(&rng, (uint64_t)usable)];
        const dj_video_index *v = dj_index_video(ix, plan[c].video);
        plan[c].start = (int64_t)dj_rng_below(&rng, (uint64_t)(v->nframes - dj_bd_span() + 1));
    }
    free(ok);
    return DJ_OK;
}

static int dj_bd_clip_cmp(const void *a, const void *b) {
    const dj_bd_clip *x = a, *y = b;
    if (x->video != y->video)
        return x->video < y->video ? -1 : 1;
    return (x->start > y->start) - (x->start < y->start);
}

/* The display index of the keyframe at or before frame k (0 when none). */
static int64_t dj_bd_gop_of(const dj_video_index *v, int64_t k) {
    while (k > 0 && !v->frames[k].key)
        k--;
    return k;
}

/* Orders the plan (--order video) and numbers the read calls: with --share,
 * consecutive clips of one video whose first frames lie in one GOP share a
 * call; otherwise each clip is a call of its own. */
static void dj_bd_group(const dj_index *ix, dj_bd_clip *plan) {
    if (dj_bd_order && strcmp(dj_bd_order, "video") == 0)
        qsort(plan, (size_t)dj_bd_clips, sizeof *plan, dj_bd_clip_cmp);
    int64_t g = -1;
    for (int64_t c = 0; c < dj_bd_clips; c++) {
        const dj_video_index *v = dj_index_video(ix, plan[c].video);
        int same = c > 0 && dj_bd_share && plan[c - 1].video == plan[c].video &&
                   dj_bd_gop_of(v, plan[c - 1].start) == dj_bd_gop_of(v, plan[c].start);
        plan[c].group = same ? g : ++g;
    }
}

static dj_status dj_bd_write_plan(const dj_index *ix, const dj_bd_clip *plan, const char *path) {
    cJSON *o = cJSON_CreateObject();
    cJSON *clips = cJSON_AddArrayToObject(o, "clips");
    cJSON_AddNumberToObject(o, "frames", (double)dj_bd_frames);
    cJSON_AddNumberToObject(o, "stride", (double)dj_bd_stride);
    cJSON_AddNumberToObject(o, "size", (double)dj_bd_size);
    cJSON_AddNumberToObject(o, "threads", (double)dj_bd_threads);
    cJSON_AddBoolToObject(o, "reuse", dj_bd_reuse);
    for (int64_t c = 0; c < dj_bd_clips; c++) {
        const dj_video_index *v = dj_index_video(ix, plan[c].video);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "path", v->path);
        cJSON_AddNumberToObject(e, "stream", v->stream_index);
        cJSON_AddNumberToObject(e, "start", (double)plan[c].start);
        cJSON_AddNumberToObject(e, "start_pts", (double)v->frames[plan[c].start].pts);
        cJSON_AddNumberToObject(e, "end_pts", (double)v->frames[plan[c].start + dj_bd_span() - 1].pts);
        cJSON *pts = cJSON_AddArrayToObject(e, "pts");
        for (int64_t j = 0; j < dj_bd_frames; j++)
            cJSON_AddItemToArray(pts, cJSON_CreateNumber((double)v->frames[plan[c].start + j * dj_bd_stride].pts));
        cJSON_AddNumberToObject(e, "group", (double)plan[c].group);
        cJSON_AddItemToArray(clips, e);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    FILE *f = text ? fopen(path, "w") : NULL;
    int bad = !f || fputs(text, f) < 0;
    if (f && fclose(f) != 0)
        bad = 1;
    free(text);
    return bad ? dj_error_set(DJ_ERR_IO, path, "cannot write the plan") : DJ_OK;
}

/* CPU seconds of this process: the per-core figure, robust to other load. */
static double dj_bd_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int dj_bd_i64_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void dj_bd_add_stats(dj_video_stats *total, const dj_video_reader *r) {
    dj_video_stats s = dj_video_reader_stats(r);
    total->frames_decoded += s.frames_decoded;
    total->frames_delivered += s.frames_delivered;
    total->seeks += s.seeks;
    total->bytes_read += s.bytes_read;
    total->packets_sent += s.packets_sent;
    total->decoders_opened += s.decoders_opened;
}

/* The frames of the read call starting at clip c: every clip of its group,
 * merged in ascending order (a frame of two clips is listed twice: decoded
 * once, delivered to both). ks[clips*T]. Returns the count; *next is the
 * first clip of the next call. */
static int64_t dj_bd_call_frames(const dj_bd_clip *plan, int64_t c, int64_t *ks, int64_t *next) {
    int64_t n = 0, e = c;
    for (; e < dj_bd_clips && plan[e].group == plan[c].group; e++)
        for (int64_t j = 0; j < dj_bd_frames; j++)
            ks[n++] = plan[e].start + j * dj_bd_stride;
    if (e - c > 1)
        qsort(ks, (size_t)n, sizeof *ks, dj_bd_i64_cmp);
    *next = e;
    return n;
}

static dj_status dj_bd_run(const dj_index *ix, const dj_bd_clip *plan, dj_video_stats *total, double *secs,
                           double *cpu) {
    dj_bd_sink sink;
    memset(&sink, 0, sizeof sink);
    if (!dj_bd_packed)
        DJ_TRY(dj_transformer_create(&sink.tf));
    dj_video_reader_options o = dj_video_reader_defaults();
    o.threads = (int)dj_bd_threads;
    o.skip_nonref = !dj_bd_no_skip;
    int64_t *ks = malloc((size_t)dj_bd_frames * (size_t)dj_bd_clips * sizeof *ks);
    if (!ks)
        return dj_error_set(DJ_ERR_NOMEM, "bench decode", "cannot allocate");
    memset(total, 0, sizeof *total);
    dj_status st = DJ_OK;
    dj_video_reader *r = NULL;
    int64_t r_video = -1;
    double t0 = dj_time_now(), c0 = dj_bd_cpu_now();
    for (int64_t c = 0, next = 0; c < dj_bd_clips && st == DJ_OK; c = next) {
        const dj_video_index *v = dj_index_video(ix, plan[c].video);
        int64_t n = dj_bd_call_frames(plan, c, ks, &next);
        if (r && dj_bd_reuse && r_video == plan[c].video) {
            /* same file: read on */
        } else if (r && !dj_bd_fresh) {
            st = dj_video_reader_reopen(r, v->path, v);
        } else {
            if (r)
                dj_bd_add_stats(total, r);
            dj_video_reader_free(r);
            r = NULL;
            st = dj_video_reader_open(v->path, v, &o, &r);
        }
        r_video = plan[c].video;
        if (st == DJ_OK)
            st = dj_video_reader_read(r, ks, n, dj_bd_convert, &sink);
    }
    if (r)
        dj_bd_add_stats(total, r);
    dj_video_reader_free(r);
    *secs = dj_time_now() - t0;
    *cpu = dj_bd_cpu_now() - c0;
    sws_freeContext(sink.sws);
    dj_transformer_free(sink.tf);
    free(sink.rgb);
    free(ks);
    return st;
}

int dj_bench_decode(int argc, char **argv) {
    int np = 0;
    dj_bd_json = dj_bd_no_skip = dj_bd_reuse = dj_bd_share = dj_bd_fresh = dj_bd_packed = 0;
    dj_bd_plan_out = dj_bd_order = NULL;
    int rc = dj_cli_parse(&dj_bd_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    if (dj_bd_order && strcmp(dj_bd_order, "random") != 0 && strcmp(dj_bd_order, "video") != 0)
        return dj_cli_usage_error("bench decode", "option '--order' expects random or video");
    dj_index *ix = NULL;
    dj_bd_clip *plan = malloc((size_t)dj_bd_clips * sizeof *plan);
    dj_status st = plan ? dj_bd_open_data(argv[1], &ix) : dj_error_set(DJ_ERR_NOMEM, "bench decode", "no memory");
    if (st == DJ_OK)
        st = dj_bd_plan(ix, plan);
    if (st == DJ_OK)
        dj_bd_group(ix, plan);
    if (st == DJ_OK && dj_bd_plan_out)
        st = dj_bd_write_plan(ix, plan, dj_bd_plan_out);
    dj_video_stats s;
    double secs = 0, cpu = 0;
    if (st == DJ_OK)
        st = dj_bd_run(ix, plan, &s, &secs, &cpu);
    free(plan);
    dj_index_free(ix);
    if (st != DJ_OK)
        return dj_cli_fail();
    double cps = secs > 0 ? dj_bd_clips / secs : 0;
    double cpc = cpu > 0 ? dj_bd_clips / cpu : 0;
    double dpd = s.frames_delivered ? (double)s.frames_decoded / s.frames_delivered : 0;
    double spc = (double)s.seeks / dj_bd_clips;
    if (dj_bd_json) {
        printf("{\"bench\":\"decode\",\"clips\":%lld,\"frames\":%lld,\"stride\":%lld,\"size\":%lld,\"threads\":%lld,"
               "\"seconds\":%.4f,\"cpu_seconds\":%.4f,\"clips_per_s\":%.3f,\"clips_per_cpu_s\":%.3f,\"decoded_per_delivered\":%.4f,\"seeks_per_clip\":%.4f,"
               "\"packets_sent_per_delivered\":%.4f,\"bytes_read\":%lld,\"order\":\"%s\",\"reuse\":%d,\"share\":%d,"
               "\"skip_nonref\":%d,\"fresh\":%d,\"decoders_opened\":%lld,\"convert\":\"%s\"}\n",
               (long long)dj_bd_clips, (long long)dj_bd_frames, (long long)dj_bd_stride, (long long)dj_bd_size,
               (long long)dj_bd_threads, secs,
               cpu, cps, cpc, dpd, spc,
               s.frames_delivered ? (double)s.packets_sent / s.frames_delivered : 0.0, (long long)s.bytes_read,
               dj_bd_order ? dj_bd_order : "random", dj_bd_reuse, dj_bd_share, !dj_bd_no_skip, dj_bd_fresh,
               (long long)s.decoders_opened, dj_bd_packed ? "packed" : "transform");
    } else {
        printf("decode: %lld clips x %lld frames in %.3f s (%.3f s CPU): %.1f clips/s, %.1f clips per CPU s, "
               "%.3f decoded per delivered, %.2f seeks per clip (threads %lld, size %lld, %s)\n",
               (long long)dj_bd_clips, (long long)dj_bd_frames, secs, cpu, cps, cpc, dpd, spc, (long long)dj_bd_threads,
               (long long)dj_bd_size, dj_bd_packed ? "packed RGB24 by swscale" : "the loader's transform");
    }
    return DJ_EXIT_OK;
}
