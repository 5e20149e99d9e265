/* decode.c — the exact-seek video reader. Using the frame index it seeks to
 * the keyframe at or before the first wanted frame, decodes forward, hands
 * wanted frames to a callback untouched (no colour conversion) and lets the
 * decoder skip non-reference frames nobody asked for. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dojo/log.h"
#include "video_internal.h"

/* Internal outcomes of a decoding run besides dj_status values. */
enum { DJ_RUN_OVERSHOOT = 100, DJ_RUN_MISSED = 101 };

typedef struct dj_key_map {
    int64_t key;  /* packet pts (dts when none) */
    int64_t pkt;  /* decode index */
} dj_key_map;

struct dj_video_reader {
    char *path;
    dj_video_src src;         /* path, or the caller's buffer */
    dj_video_reader_options opt;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVCodecParameters *dec_par; /* the stream parameters dec was opened for */
    AVPacket *pkt;
    AVFrame *frame;
    int stream;
    const dj_video_index *ix;
    dj_video_index *own_ix;   /* built at open when none was given */
    dj_key_map *keys;         /* [npackets] sorted by key: packet identification */
    int64_t *frame_of_packet; /* [npackets]: presentation index, -1 if not shown */
    int sequential;           /* DJ_INDEX_SEQUENTIAL: identify frames by counting from 0 */
    dj_deadline dl;
    dj_video_stats stats;
    /* decoding position */
    int64_t next_pkt;   /* decode index of the next packet to send */
    int64_t skip_until; /* after a seek: drop packets before this one; -1 none */
    int64_t last_out;   /* presentation index of the last decoded frame, -1 none */
    int64_t seq_count;  /* frames output since the start (sequential mode) */
    int eof_sent;
    int64_t drain_after; /* drain once this packet is sent (last one a wanted frame needs); -1 never */
    int pending;        /* pkt holds a packet the decoder refused with EAGAIN */
};

dj_video_reader_options dj_video_reader_defaults(void) {
    dj_video_reader_options o = {1, 1, 60.0, 1};
    return o;
}

const dj_video_index *dj_video_reader_index(const dj_video_reader *r) { return r->ix; }

dj_video_stats dj_video_reader_stats(const dj_video_reader *r) { return r->stats; }

static int dj_key_map_cmp(const void *a, const void *b) {
    const dj_key_map *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static int64_t dj_packet_key_of(int64_t pts, int64_t dts) { return pts != AV_NOPTS_VALUE ? pts : dts; }

/* The decode index of the packet with this key, -1 when none. */
static int64_t dj_reader_find_packet(const dj_video_reader *r, int64_t key) {
    int64_t lo = 0, hi = r->ix->npackets - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (r->keys[mid].key == key)
            return r->keys[mid].pkt;
        if (r->keys[mid].key < key)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static dj_status dj_reader_build_maps(dj_video_reader *r) {
    const dj_video_index *ix = r->ix;
    size_t n = (size_t)(ix->npackets ? ix->npackets : 1);
    r->keys = malloc(n * sizeof *r->keys);
    r->frame_of_packet = malloc(n * sizeof *r->frame_of_packet);
    if (!r->keys || !r->frame_of_packet)
        return dj_error_set(DJ_ERR_NOMEM, r->path, "cannot allocate reader tables");
    for (int64_t i = 0; i < ix->npackets; i++) {
        r->keys[i].key = dj_packet_key_of(ix->packets[i].pts, ix->packets[i].dts);
        r->keys[i].pkt = i;
        r->frame_of_packet[i] = -1;
    }
    qsort(r->keys, (size_t)ix->npackets, sizeof *r->keys, dj_key_map_cmp);
    for (int64_t i = 1; i < ix->npackets; i++)
        if (r->keys[i].key == r->keys[i - 1].key || r->keys[i].key == AV_NOPTS_VALUE)
            r->sequential = 1; /* packets cannot be told apart by timestamp */
    for (int64_t k = 0; k < ix->nframes; k++) {
        int32_t p = ix->frames[k].packet;
        if (p >= 0 && p < ix->npackets)
            r->frame_of_packet[p] = k;
    }
    return DJ_OK;
}

/* Lets go of the file: demuxer, own index, lookup tables (not the decoder). */
static void dj_reader_detach(dj_video_reader *r) {
    if (r->pending)
        av_packet_unref(r->pkt);
    r->pending = 0;
    dj_video_close_input(&r->fmt);
    dj_video_index_free(r->own_ix);
    r->own_ix = NULL;
    r->ix = NULL;
    free(r->keys);
    free(r->frame_of_packet);
    r->keys = NULL;
    r->frame_of_packet = NULL;
}

void dj_video_reader_free(dj_video_reader *r) {
    if (!r)
        return;
    dj_reader_detach(r);
    av_packet_free(&r->pkt);
    av_frame_free(&r->frame);
    avcodec_free_context(&r->dec);
    avcodec_parameters_free(&r->dec_par);
    free(r->path);
    free(r);
}

static void dj_reader_reset_position(dj_video_reader *r, int64_t skip_until) {
    r->next_pkt = skip_until < 0 ? 0 : -1;
    r->skip_until = skip_until;
    r->last_out = -1;
    r->seq_count = 0;
    r->eof_sent = 0;
    r->drain_after = -1;
    if (r->pending)
        av_packet_unref(r->pkt);
    r->pending = 0;
}

static dj_status dj_reader_check_index(const dj_video_reader *r, const dj_video_index *ix) {
    const AVCodecParameters *par = r->fmt->streams[r->stream]->codecpar;
    struct stat sb;
    if (ix->file_size > 0 && !r->src.data && stat(r->path, &sb) == 0 &&
        (sb.st_size != ix->file_size ||
         (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec != ix->file_mtime_ns))
        return dj_error_set(DJ_ERR_INVALID, r->path, "the file changed since it was indexed (re-run dojo index)");
    if (ix->stream_index != r->stream || ix->codec_id != (int)par->codec_id || ix->width != par->width ||
        ix->height != par->height || ix->nframes <= 0 || ix->npackets <= 0)
        return dj_error_set(DJ_ERR_INVALID, r->path, "the index does not describe this file (re-run dojo index)");
    return DJ_OK;
}

/* 1 when a decoder opened for stream parameters a decodes a stream with
 * parameters b exactly as a fresh one would once flushed: same codec, coding
 * parameters, colour description and extradata (the parameter sets). */
static int dj_same_stream_params(const AVCodecParameters *a, const AVCodecParameters *b) {
    return a->codec_id == b->codec_id && a->codec_tag == b->codec_tag && a->format == b->format &&
           a->width == b->width && a->height == b->height && a->profile == b->profile && a->level == b->level &&
           a->bits_per_coded_sample == b->bits_per_coded_sample && a->bits_per_raw_sample == b->bits_per_raw_sample &&
           a->field_order == b->field_order && a->color_range == b->color_range &&
           a->color_primaries == b->color_primaries && a->color_trc == b->color_trc &&
           a->color_space == b->color_space && a->chroma_location == b->chroma_location &&
           a->video_delay == b->video_delay && a->sample_aspect_ratio.num == b->sample_aspect_ratio.num &&
           a->sample_aspect_ratio.den == b->sample_aspect_ratio.den && a->extradata_size == b->extradata_size &&
           (a->extradata_size == 0 || memcmp(a->extradata, b->extradata, (size_t)a->extradata_size) == 0);
}

/* A decoder for the attached stream: the current one, flushed, when it was
 * opened for like parameters; a new one otherwise. */
static dj_status dj_reader_prepare_decoder(dj_video_reader *r) {
    const AVStream *st = r->fmt->streams[r->stream];
    if (r->dec && r->dec_par && dj_same_stream_params(r->dec_par, st->codecpar)) {
        avcodec_flush_buffers(r->dec);
        r->dec->pkt_timebase = st->time_base;
        return DJ_OK;
    }
    avcodec_free_context(&r->dec);
    avcodec_parameters_free(&r->dec_par);
    DJ_TRY(dj_video_open_decoder(r->path, r->fmt, r->stream, r->opt.threads, &r->dec));
    r->stats.decoders_opened++;
    if (!(r->dec_par = avcodec_parameters_alloc()) || avcodec_parameters_copy(r->dec_par, st->codecpar) < 0)
        avcodec_parameters_free(&r->dec_par); /* without a copy the decoder is never reused: still correct */
    return DJ_OK;
}

/* Opens the file half of a reader: demuxer, index (given or built), lookup
 * tables, and a decoder that fits the stream. */
static dj_status dj_reader_attach(dj_video_reader *r, const dj_video_src *src, const dj_video_index *index) {
    const char *path = r->path;
    r->src = *src;
    r->src.path = r->path;
    dj_deadline_start(&r->dl, r->opt.time_limit_s);
    r->stream = index ? index->stream_index : -1;
    dj_status st = dj_video_open_input(&r->src, &r->dl, &r->fmt, &r->stream);
    if (st == DJ_OK && !index) {
        st = dj_video_index_scan(path, r->fmt, r->stream, &r->dl, &r->own_ix);
        if (st == DJ_OK && dj_video_index_needs_verify(r->own_ix))
            st = dj_video_index_verify_src(r->own_ix, &r->src, NULL);
        if (st == DJ_OK) { /* back to the start: reopen (seeking may not reach packet 0) */
            dj_video_close_input(&r->fmt);
            st = dj_video_open_input(&r->src, &r->dl, &r->fmt, &r->stream);
        }
    }
    r->ix = index ? index : r->own_ix;
    if (st == DJ_OK)
        st = dj_reader_check_index(r, r->ix);
    if (st == DJ_OK)
        st = dj_reader_prepare_decoder(r);
    if (st == DJ_OK) {
        r->sequential = (r->ix->flags & DJ_INDEX_SEQUENTIAL) != 0;
        st = dj_reader_build_maps(r);
    }
    if (st != DJ_OK) {
        dj_reader_detach(r);
        return st;
    }
    dj_reader_reset_position(r, -1);
    return DJ_OK;
}

static dj_status dj_reader_open_src(const dj_video_src *src, const dj_video_index *index,
                                   const dj_video_reader_options *options, dj_video_reader **out) {
    const char *path = src->path;
    *out = NULL;
    dj_video_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path)) || !(r->pkt = av_packet_alloc()) || !(r->frame = av_frame_alloc())) {
        dj_video_reader_free(r);
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a reader");
    }
    r->opt = options ? *options : dj_video_reader_defaults();
    if (r->opt.time_limit_s <= 0)
        r->opt.time_limit_s = 60;
    dj_status st = dj_reader_attach(r, src, index);
    if (st != DJ_OK) {
        dj_video_reader_free(r);
        return st;
    }
    *out = r;
    return DJ_OK;
}

/* The demuxer of the open file when `path` is likely the same kind: an
 * MP4/MOV or Matroska/WebM file (a wrong guess fails and
 * dj_video_open_input probes) with the same extension. Skips probing every demuxer at each reopen (73 of 180 us per
 * open, 1% of a 16-frame clip, measured). */
static const AVInputFormat *dj_reader_demuxer_for(const dj_video_reader *r, const char *path) {
    if (!r->fmt || !r->path || r->src.data)
        return NULL;
    if (!dj_demuxer_is_mov(r->fmt->iformat) && !dj_demuxer_is_matroska(r->fmt->iformat))
        return NULL;
    const char *a = strrchr(r->path, '.'), *b = strrchr(path, '.');
    return a && b && strcmp(a, b) == 0 && !strchr(a, '/') && !strchr(b, '/') ? r->fmt->iformat : NULL;
}

dj_status dj_video_reader_reopen(dj_video_reader *r, const char *path, const dj_video_index *index) {
    if (!r || !path)
        return dj_error_set(DJ_ERR_INVALID, "dj_video_reader_reopen", "reader and path are required");
    const AVInputFormat *last = dj_reader_demuxer_for(r, path);
    dj_reader_detach(r);
    char *p = strdup(path);
    if (!p)
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a reader");
    free(r->path);
    r->path = p;
    dj_video_src src = {r->path, NULL, 0, last};
    return dj_reader_attach(r, &src, index);
}

dj_status dj_video_reader_open(const char *path, const dj_video_index *index, const dj_video_reader_options *options,
                               dj_video_reader **out) {
    if (!path || !out)
        return dj_error_set(DJ_ERR_INVALID, "dj_video_reader_open", "path and out are required");
    dj_video_src src = {path, NULL, 0, NULL};
    return dj_reader_open_src(&src, index, options, out);
}

dj_status dj_video_reader_open_memory(const void *data, size_t size, const char *name,
                                      const dj_video_reader_options *options, dj_video_reader **out) {
    if (!data || !out)
        return dj_error_set(DJ_ERR_INVALID, "dj_video_reader_open_memory", "data and out are required");
    dj_video_src src = {name ? name : "memory", data, size, NULL};
    return dj_reader_open_src(&src, NULL, options, out);
}

/* The decode index of the keyframe to start from for frame k: the last
 * keyframe packet at or before k's packet in decode order whose timestamp is
 * not after k's (leading frames of an open GOP need the previous GOP). */
static int64_t dj_reader_keyframe_for(const dj_video_reader *r, int64_t k) {
    const dj_video_index *ix = r->ix;
    if (r->sequential)
        return 0;
    int64_t kk = k;
    while (kk >= 0 && ix->frames[kk].packet < 0)
        kk--;
    if (kk < 0)
        return 0;
    int64_t pts = ix->frames[k].pts;
    for (int64_t d = ix->frames[kk].packet; d >= 0; d--) {
        const dj_packet_entry *p = &ix->packets[d];
        if ((p->flags & DJ_PACKET_KEY) && dj_packet_key_of(p->pts, p->dts) <= pts)
            return d;
    }
    return 0;
}

/* The keyframe before packet d (for retries), 0 when none. */
static int64_t dj_reader_keyframe_before(const dj_video_reader *r, int64_t d) {
    for (d = d - 1; d > 0; d--)
        if (r->ix->packets[d].flags & DJ_PACKET_KEY)
            return d;
    return 0;
}

static dj_status dj_reader_reopen(dj_video_reader *r) {
    dj_video_close_input(&r->fmt);
    int s = r->stream;
    DJ_TRY(dj_video_open_input(&r->src, &r->dl, &r->fmt, &s));
    if (s != r->stream)
        return dj_error_set(DJ_ERR_FORMAT, r->path, "the file changed since it was opened");
    return DJ_OK;
}

/* Positions the demuxer so that the next packet sent is packet kd. */
static dj_status dj_reader_seek(dj_video_reader *r, int64_t kd) {
    const dj_packet_entry *p = &r->ix->packets[kd];
    int64_t ts = p->dts != AV_NOPTS_VALUE ? p->dts : p->pts;
    if (p->pts != AV_NOPTS_VALUE && p->pts < ts)
        ts = p->pts;
    r->stats.seeks++;
    avcodec_flush_buffers(r->dec);
    int err = kd == 0 || ts == AV_NOPTS_VALUE ? -1 : av_seek_frame(r->fmt, r->stream, ts, AVSEEK_FLAG_BACKWARD);
    if (err < 0) /* the start of the file is always reachable by opening it again */
        DJ_TRY(dj_reader_reopen(r));
    dj_reader_reset_position(r, kd);
    return DJ_OK;
}

/* 1 when frame p is among frames[i..n). */
static int dj_wanted(const int64_t *frames, int64_t i, int64_t n, int64_t p) {
    int64_t lo = i, hi = n - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (frames[mid] == p)
            return 1;
        if (frames[mid] < p)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

static dj_status dj_reader_deliver(dj_video_reader *r, int64_t p, int64_t slot, dj_frame_callback cb, void *arg) {
    const AVFrame *f = r->frame;
    dj_frame df;
    memset(&df, 0, sizeof df);
    df.width = f->width;
    df.height = f->height;
    df.format = f->format;
    for (int c = 0; c < 4; c++) {
        df.data[c] = f->data[c];
        df.linesize[c] = f->linesize[c];
    }
    df.index = p;
    df.pts = r->ix->frames[p].pts;
    df.slot = (int)slot;
    df.rotation = r->ix->rotation;
    df.mirrored = (r->ix->flags & DJ_INDEX_MIRRORED) != 0;
    df.avframe = f;
    r->stats.frames_delivered++;
    return cb(arg, &df);
}

/* Handles one decoded frame: delivers it to every slot that wants it. */
static int dj_reader_on_frame(dj_video_reader *r, const int64_t *frames, int64_t n, int64_t *i,
                              dj_frame_callback cb, void *arg) {
    r->stats.frames_decoded++;
    int64_t p = r->sequential ? r->seq_count++ : dj_index_find_pts(r->ix, r->frame->best_effort_timestamp);
    if (p < 0 || p >= r->ix->nframes)
        return DJ_OK; /* a frame the index does not know (e.g. a leading frame after a seek) */
    if (r->frame->width != r->ix->width || r->frame->height != r->ix->height) {
        if (r->frame->width > DJ_VIDEO_MAX_SIDE || r->frame->height > DJ_VIDEO_MAX_SIDE)
            return dj_error_set(DJ_ERR_FORMAT, r->path, "decoded frame %lld has an absurd size %dx%d",
                                (long long)p, r->frame->width, r->frame->height);
    }
    r->last_out = p;
    while (*i < n && frames[*i] == p) {
        dj_status st = dj_reader_deliver(r, p, *i, cb, arg);
        if (st != DJ_OK)
            return st;
        (*i)++;
    }
    if (*i < n && frames[*i] < p)
        return DJ_RUN_MISSED;
    return DJ_OK;
}

/* Reads the next packet of the stream into r->pkt and sends it, or sends the
 * end-of-stream signal. Returns DJ_OK, an error or DJ_RUN_OVERSHOOT. */
static int dj_reader_feed(dj_video_reader *r, const int64_t *frames, int64_t i, int64_t n) {
    char eb[128];
    if (!r->pending && r->drain_after >= 0 && r->next_pkt > r->drain_after && r->skip_until < 0) {
        /* every wanted frame's packet is in: drain instead of decoding more */
        r->eof_sent = 1;
        avcodec_send_packet(r->dec, NULL);
        return DJ_OK;
    }
    if (!r->pending) {
        for (;;) {
            int err = av_read_frame(r->fmt, r->pkt);
            if (err == AVERROR_EOF) {
                r->eof_sent = 1;
                avcodec_send_packet(r->dec, NULL);
                return DJ_OK;
            }
            if (err < 0)
                return dj_error_set(DJ_ERR_FORMAT, r->path, "read error: %s",
                                    dj_deadline_passed(&r->dl) ? "time limit exceeded" : dj_av_err(err, eb, sizeof eb));
            if (r->pkt->stream_index != r->stream) {
                av_packet_unref(r->pkt);
                continue;
            }
            r->stats.packets_read++;
            r->stats.bytes_read += r->pkt->size;
            int64_t d = dj_reader_find_packet(r, dj_packet_key_of(r->pkt->pts, r->pkt->dts));
            if (r->skip_until >= 0) {
                if (d < 0) {
                    av_packet_unref(r->pkt);
                    return dj_error_set(DJ_ERR_FORMAT, r->path, "a packet is not in the index: the file changed since indexing");
                }
                if (d < r->skip_until) {
                    av_packet_unref(r->pkt);
                    continue;
                }
                if (d > r->skip_until) {
                    av_packet_unref(r->pkt);
                    return DJ_RUN_OVERSHOOT;
                }
                r->skip_until = -1;
            }
            if (d >= 0)
                r->next_pkt = d + 1;
            else if (r->next_pkt >= 0)
                r->next_pkt++;
            if (r->pkt->size <= 0) {
                av_packet_unref(r->pkt);
                continue;
            }
            int skip = 0;
            if (r->opt.skip_nonref && !r->sequential && d >= 0) {
                int64_t p = r->frame_of_packet[d];
                skip = !(p >= 0 && dj_wanted(frames, i, n, p));
            }
            r->dec->skip_frame = skip ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
            break;
        }
    }
    int err = avcodec_send_packet(r->dec, r->pkt);
    if (err != AVERROR(EAGAIN))
        r->stats.packets_sent++;
    if (err == AVERROR(EAGAIN)) {
        r->pending = 1;
        return DJ_OK;
    }
    r->pending = 0;
    av_packet_unref(r->pkt); /* errors on one packet: the decoder goes on, as sequential decoding does */
    return DJ_OK;
}

/* Decodes forward until frames[*i..n) are delivered. */
static int dj_reader_run(dj_video_reader *r, const int64_t *frames, int64_t n, int64_t *i, dj_frame_callback cb,
                         void *arg) {
    while (*i < n) {
        if (dj_deadline_passed(&r->dl))
            return dj_error_set(DJ_ERR_DECODE, r->path, "decoding took longer than the time limit (%.0f s)",
                                r->opt.time_limit_s);
        int err = avcodec_receive_frame(r->dec, r->frame);
        if (err == 0) {
            int rc = dj_reader_on_frame(r, frames, n, i, cb, arg);
            av_frame_unref(r->frame);
            if (rc != DJ_OK)
                return rc;
            continue;
        }
        if (err == AVERROR_EOF || (r->eof_sent && err == AVERROR(EAGAIN)))
            return DJ_RUN_MISSED;
        if (err != AVERROR(EAGAIN) && !r->eof_sent)
            continue; /* a broken frame: the decoder goes on */
        if (err != AVERROR(EAGAIN))
            return DJ_RUN_MISSED;
        int rc = dj_reader_feed(r, frames, *i, n);
        if (rc != DJ_OK)
            return rc;
    }
    return DJ_OK;
}

/* The last packet (decode order) that frames[i..n) need, when the reader
 * may drain after it; -1 otherwise. */
static int64_t dj_reader_drain_point(const dj_video_reader *r, const int64_t *frames, int64_t i, int64_t n) {
    if (!r->opt.drain_at_end || r->sequential)
        return -1;
    int64_t d = -1;
    for (int64_t j = i; j < n; j++) {
        int32_t p = r->ix->frames[frames[j]].packet;
        if (p < 0)
            return -1;
        if (p > d)
            d = p;
    }
    return d;
}

static dj_status dj_reader_check_list(const dj_video_reader *r, const int64_t *frames, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        if (frames[j] < 0 || frames[j] >= r->ix->nframes)
            return dj_error_set(DJ_ERR_RANGE, r->path, "frame %lld out of range (the video has %lld frames)",
                                (long long)frames[j], (long long)r->ix->nframes);
        if (j > 0 && frames[j] < frames[j - 1])
            return dj_error_set(DJ_ERR_INVALID, r->path, "frame list not ascending (%lld after %lld)",
                                (long long)frames[j], (long long)frames[j - 1]);
    }
    return DJ_OK;
}

dj_status dj_video_reader_read(dj_video_reader *r, const int64_t *frames, int64_t n, dj_frame_callback cb,
                               void *arg) {
    if (!r || (n > 0 && (!frames || !cb)) || n < 0)
        return dj_error_set(DJ_ERR_INVALID, r ? r->path : "dj_video_reader_read", "bad arguments");
    if (!r->ix)
        return dj_error_set(DJ_ERR_INVALID, r->path, "the reader has no video (its last reopen failed)");
    DJ_TRY(dj_reader_check_list(r, frames, n));
    dj_deadline_start(&r->dl, r->opt.time_limit_s);
    int64_t i = 0;
    int attempts = 0;
    int force = 0;
    int64_t kd = -1;
    while (i < n) {
        int64_t k = frames[i];
        if (kd < 0)
            kd = dj_reader_keyframe_for(r, k);
        int seek = force || r->eof_sent || r->last_out >= k || r->next_pkt < 0 || kd > r->next_pkt ||
                   (r->sequential && r->last_out >= k);
        if (seek)
            DJ_TRY(dj_reader_seek(r, kd));
        r->drain_after = dj_reader_drain_point(r, frames, i, n);
        int rc = dj_reader_run(r, frames, n, &i, cb, arg);
        if (rc == DJ_OK)
            break;
        if (rc != DJ_RUN_OVERSHOOT && rc != DJ_RUN_MISSED)
            return (dj_status)rc;
        if (++attempts > 4 || (kd == 0 && seek && rc == DJ_RUN_MISSED))
            return dj_error_set(DJ_ERR_DECODE, r->path,
                                "the decoder did not produce frame %lld (is the index up to date? try dojo index --verify)",
                                (long long)frames[i]);
        /* retry the frame not delivered yet from an earlier keyframe */
        int64_t want = dj_reader_keyframe_for(r, frames[i]);
        kd = seek ? dj_reader_keyframe_before(r, kd < want ? kd : want) : want;
        force = 1;
    }
    return DJ_OK;
}
