/* index.c — the per-file frame index: one demux pass collects the packets of
 * the video stream (decode order) and derives the frames in presentation
 * order; dj_video_index_verify() checks it against sequential decoding. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavutil/display.h>

#include "video_internal.h"

void dj_video_index_free(dj_video_index *ix) {
    if (!ix)
        return;
    free(ix->path);
    free(ix->packets);
    free(ix->frames);
    free(ix);
}

/* The timestamp that identifies a packet and the frame it carries: its pts,
 * or its dts when the container gives none. */
static int64_t dj_packet_key(const dj_packet_entry *p) { return p->pts != AV_NOPTS_VALUE ? p->pts : p->dts; }

int64_t dj_index_find_pts(const dj_video_index *ix, int64_t pts) {
    int64_t lo = 0, hi = ix->nframes - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ix->frames[mid].pts == pts)
            return mid;
        if (ix->frames[mid].pts < pts)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

typedef struct dj_sort_item {
    int64_t key;
    int64_t order; /* decode index: ties keep decode order */
} dj_sort_item;

static int dj_sort_item_cmp(const void *a, const void *b) {
    const dj_sort_item *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

/* frames[] from packets[]: shown packets sorted by their key. Flags the index
 * SEQUENTIAL when keys are missing or repeated. */
static dj_status dj_index_derive_frames(dj_video_index *ix) {
    dj_sort_item *items = malloc((size_t)(ix->npackets ? ix->npackets : 1) * sizeof *items);
    if (!items)
        return dj_error_set(DJ_ERR_NOMEM, ix->path, "cannot allocate the frame table");
    int64_t n = 0;
    for (int64_t i = 0; i < ix->npackets; i++) {
        const dj_packet_entry *p = &ix->packets[i];
        if ((p->flags & (DJ_PACKET_DISCARD | DJ_PACKET_HIDDEN)) || p->size <= 0)
            continue;
        int64_t key = dj_packet_key(p);
        if (key == AV_NOPTS_VALUE) {
            ix->flags |= DJ_INDEX_SEQUENTIAL;
            key = n ? items[n - 1].key + 1 : 0;
        }
        items[n].key = key;
        items[n].order = i;
        n++;
    }
    qsort(items, (size_t)n, sizeof *items, dj_sort_item_cmp);
    free(ix->frames);
    ix->frames = malloc((size_t)(n ? n : 1) * sizeof *ix->frames);
    if (!ix->frames) {
        free(items);
        return dj_error_set(DJ_ERR_NOMEM, ix->path, "cannot allocate the frame table");
    }
    for (int64_t k = 0; k < n; k++) {
        if (k > 0 && items[k].key == items[k - 1].key)
            ix->flags |= DJ_INDEX_SEQUENTIAL;
        ix->frames[k].pts = items[k].key;
        ix->frames[k].packet = (int32_t)items[k].order;
        ix->frames[k].key = (ix->packets[items[k].order].flags & DJ_PACKET_KEY) != 0;
    }
    ix->nframes = n;
    free(items);
    return DJ_OK;
}

/* 1 when a VP9 frame header says the frame is shown (show_frame or
 * show_existing_frame); unknown layouts count as shown. */
static int dj_vp9_frame_shown(const uint8_t *d, size_t size) {
    if (size < 1 || (d[0] >> 6) != 2) /* frame_marker */
        return 1;
    int profile = ((d[0] >> 5) & 1) | (((d[0] >> 4) & 1) << 1);
    int bit = profile == 3 ? 2 : 3; /* position of show_existing_frame in byte 0 */
    if ((d[0] >> bit) & 1)
        return 1;
    return (d[0] >> (bit - 2)) & 1; /* skip frame_type, read show_frame */
}

/* 1 when a VP9 packet (possibly a superframe) shows a picture. Invisible
 * alt-ref frames stored in packets of their own are decoded, never output. */
static int dj_vp9_packet_shown(const uint8_t *d, int size) {
    if (!d || size <= 0)
        return 0;
    uint8_t last = d[size - 1];
    if ((last & 0xe0) == 0xc0) { /* superframe index */
        int nfr = (last & 7) + 1, mag = ((last >> 3) & 3) + 1;
        int isz = 2 + mag * nfr;
        if (size >= isz && d[size - isz] == last) {
            const uint8_t *q = d + size - isz + 1;
            size_t off = 0;
            for (int f = 0; f < nfr; f++) {
                size_t fs = 0;
                for (int b = 0; b < mag; b++)
                    fs |= (size_t)q[f * mag + b] << (8 * b);
                if (off + fs > (size_t)(size - isz))
                    return 1;
                if (dj_vp9_frame_shown(d + off, fs))
                    return 1;
                off += fs;
            }
            return 0;
        }
    }
    return dj_vp9_frame_shown(d, (size_t)size);
}

static dj_status dj_index_push_packet(dj_video_index *ix, int64_t *cap, const AVPacket *pkt) {
    if (ix->npackets >= DJ_VIDEO_MAX_PACKETS)
        return dj_error_set(DJ_ERR_FORMAT, ix->path, "more than %d video packets", DJ_VIDEO_MAX_PACKETS);
    if (ix->npackets == *cap) {
        int64_t ncap = *cap ? *cap * 2 : 1024;
        dj_packet_entry *p = realloc(ix->packets, (size_t)ncap * sizeof *p);
        if (!p)
            return dj_error_set(DJ_ERR_NOMEM, ix->path, "cannot grow the packet table");
        ix->packets = p;
        *cap = ncap;
    }
    dj_packet_entry *e = &ix->packets[ix->npackets++];
    e->pts = pkt->pts;
    e->dts = pkt->dts;
    e->pos = pkt->pos;
    e->size = pkt->size;
    e->flags = ((pkt->flags & AV_PKT_FLAG_KEY) ? DJ_PACKET_KEY : 0) |
               ((pkt->flags & AV_PKT_FLAG_DISCARD) ? DJ_PACKET_DISCARD : 0);
    if (ix->codec_id == AV_CODEC_ID_VP9 && !dj_vp9_packet_shown(pkt->data, pkt->size))
        e->flags |= DJ_PACKET_HIDDEN;
    return DJ_OK;
}

static void dj_index_fill_params(dj_video_index *ix, const AVStream *st) {
    const AVCodecParameters *par = st->codecpar;
    ix->stream_index = st->index;
    ix->codec_id = par->codec_id;
    ix->width = par->width;
    ix->height = par->height;
    ix->pix_fmt = par->format;
    ix->tb_num = st->time_base.num;
    ix->tb_den = st->time_base.den;
    int mirrored = 0;
    dj_display_orientation(st, &ix->rotation, &mirrored);
    ix->flags = mirrored ? ix->flags | DJ_INDEX_MIRRORED : ix->flags & ~(uint32_t)DJ_INDEX_MIRRORED;
}

static dj_status dj_index_read_packets(dj_video_index *ix, AVFormatContext *fmt, int stream,
                                       const dj_deadline *dl) {
    char eb[128];
    AVPacket *pkt = av_packet_alloc();
    if (!pkt)
        return dj_error_set(DJ_ERR_NOMEM, ix->path, "cannot allocate a packet");
    int64_t cap = 0;
    dj_status st = DJ_OK;
    for (;;) {
        int err = av_read_frame(fmt, pkt);
        if (err == AVERROR_EOF)
            break;
        if (err < 0) {
            st = dj_error_set(DJ_ERR_FORMAT, ix->path, "read error after %lld video packets: %s",
                              (long long)ix->npackets,
                              dj_deadline_passed(dl) ? "time limit exceeded" : dj_av_err(err, eb, sizeof eb));
            break;
        }
        if (pkt->stream_index == stream)
            st = dj_index_push_packet(ix, &cap, pkt);
        av_packet_unref(pkt);
        if (st != DJ_OK)
            break;
    }
    av_packet_free(&pkt);
    return st;
}

dj_status dj_video_index_scan(const char *path, AVFormatContext *fmt, int stream, const dj_deadline *dl,
                              dj_video_index **out) {
    *out = NULL;
    dj_video_index *ix = calloc(1, sizeof *ix);
    if (!ix || !(ix->path = strdup(path))) {
        free(ix);
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate an index");
    }
    struct stat sb;
    if (stat(path, &sb) == 0) {
        ix->file_size = sb.st_size;
        ix->file_mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    }
    ix->label = -1;
    dj_index_fill_params(ix, fmt->streams[stream]);
    dj_status st = dj_index_read_packets(ix, fmt, stream, dl);
    if (st == DJ_OK)
        st = dj_index_derive_frames(ix);
    if (st == DJ_OK && ix->nframes == 0)
        st = dj_error_set(DJ_ERR_FORMAT, path, "the video stream has no frames");
    if (st != DJ_OK) {
        dj_video_index_free(ix);
        return st;
    }
    ix->start_frame = 0;
    ix->end_frame = ix->nframes;
    *out = ix;
    return DJ_OK;
}

int dj_video_index_needs_verify(const dj_video_index *ix) {
    if (ix->flags & DJ_INDEX_VERIFIED)
        return 0;
    if (ix->flags & DJ_INDEX_SEQUENTIAL)
        return 1;
    for (int64_t i = 0; i < ix->npackets; i++)
        if (ix->packets[i].pts == AV_NOPTS_VALUE && ix->packets[i].size > 0)
            return 1; /* frame timestamps will be the decoder's guesses */
    for (int64_t i = 0; i < ix->npackets; i++) {
        const dj_packet_entry *p = &ix->packets[i];
        if (p->size > 0)
            return !(p->flags & DJ_PACKET_KEY); /* decoders drop frames before the first keyframe */
    }
    return 0;
}

dj_status dj_video_index_build(const char *path, dj_video_index **out) {
    if (!path || !out)
        return dj_error_set(DJ_ERR_INVALID, "dj_video_index_build", "path and out are required");
    *out = NULL;
    dj_deadline dl;
    dj_deadline_start(&dl, 120);
    AVFormatContext *fmt = NULL;
    int s = -1;
    dj_video_src src = {path, NULL, 0, NULL};
    DJ_TRY(dj_video_open_input(&src, &dl, &fmt, &s));
    dj_status st = dj_video_index_scan(path, fmt, s, &dl, out);
    dj_video_close_input(&fmt);
    if (st == DJ_OK && dj_video_index_needs_verify(*out)) {
        st = dj_video_index_verify(*out, NULL);
        if (st != DJ_OK) {
            dj_video_index_free(*out);
            *out = NULL;
        }
    }
    return st;
}

dj_status dj_video_index_clone(const dj_video_index *ix, dj_video_index **out) {
    *out = NULL;
    dj_video_index *c = malloc(sizeof *c);
    if (!c)
        return dj_error_set(DJ_ERR_NOMEM, ix->path, "cannot copy an index");
    *c = *ix;
    c->path = strdup(ix->path);
    c->packets = malloc((size_t)(ix->npackets ? ix->npackets : 1) * sizeof *c->packets);
    c->frames = malloc((size_t)(ix->nframes ? ix->nframes : 1) * sizeof *c->frames);
    if (!c->path || !c->packets || !c->frames) {
        dj_video_index_free(c);
        return dj_error_set(DJ_ERR_NOMEM, ix->path, "cannot copy an index");
    }
    memcpy(c->packets, ix->packets, (size_t)ix->npackets * sizeof *c->packets);
    memcpy(c->frames, ix->frames, (size_t)ix->nframes * sizeof *c->frames);
    *out = c;
    return DJ_OK;
}

/* ------------------------------------------------------------ verify -- */

typedef struct dj_ts_list {
    int64_t n, cap;
    int64_t *v;
} dj_ts_list;

static int dj_ts_push(dj_ts_list *l, int64_t t) {
    if (l->n == l->cap) {
        int64_t ncap = l->cap ? l->cap * 2 : 1024;
        int64_t *v = realloc(l->v, (size_t)ncap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = ncap;
    }
    l->v[l->n++] = t;
    return 0;
}

/* Receives every frame the decoder has ready, recording its timestamp. */
static dj_status dj_verify_drain(const char *path, AVCodecContext *dec, AVFrame *frame, dj_ts_list *ts) {
    for (;;) {
        int err = avcodec_receive_frame(dec, frame);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return DJ_OK;
        if (err < 0) /* a decode error of one frame: sequential decoding goes on */
            return DJ_OK;
        int64_t t = frame->best_effort_timestamp;
        av_frame_unref(frame);
        if (ts->n >= DJ_VIDEO_MAX_PACKETS || dj_ts_push(ts, t) != 0)
            return dj_error_set(DJ_ERR_NOMEM, path, "too many decoded frames");
    }
}

/* Decodes the index's stream from the start; ts receives best-effort
 * timestamps of the frames in output order. */
static dj_status dj_verify_decode(const dj_video_index *ix, const dj_video_src *src, dj_ts_list *ts) {
    char eb[128];
    dj_deadline dl;
    dj_deadline_start(&dl, 600);
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    int s = -1;
    DJ_TRY(dj_video_open_input(src, &dl, &fmt, &s));
    dj_status st = dj_video_open_decoder(ix->path, fmt, s, 1, &dec);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    if (st == DJ_OK && (!pkt || !frame))
        st = dj_error_set(DJ_ERR_NOMEM, ix->path, "cannot allocate decoding buffers");
    while (st == DJ_OK) {
        int err = av_read_frame(fmt, pkt);
        if (err == AVERROR_EOF)
            break;
        if (err < 0) {
            st = dj_error_set(DJ_ERR_FORMAT, ix->path, "read error while verifying: %s",
                              dj_deadline_passed(&dl) ? "time limit exceeded" : dj_av_err(err, eb, sizeof eb));
            break;
        }
        if (pkt->stream_index == s && pkt->size > 0) {
            err = avcodec_send_packet(dec, pkt);
            while (err == AVERROR(EAGAIN) && st == DJ_OK) {
                st = dj_verify_drain(ix->path, dec, frame, ts);
                err = avcodec_send_packet(dec, pkt);
            }
            if (st == DJ_OK)
                st = dj_verify_drain(ix->path, dec, frame, ts);
        }
        av_packet_unref(pkt);
    }
    if (st == DJ_OK && avcodec_send_packet(dec, NULL) >= 0)
        st = dj_verify_drain(ix->path, dec, frame, ts);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    dj_video_close_input(&fmt);
    return st;
}

/* The packet whose key is t, by linear scan of candidates sorted once. */
static int64_t dj_packet_with_key(const dj_sort_item *sorted, int64_t n, int64_t t) {
    int64_t lo = 0, hi = n - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (sorted[mid].key == t)
            return sorted[mid].order;
        if (sorted[mid].key < t)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Rewrites frames[] from decoded timestamps. */
static dj_status dj_index_rewrite(dj_video_index *ix, const dj_ts_list *ts) {
    dj_sort_item *items = malloc((size_t)(ix->npackets ? ix->npackets : 1) * sizeof *items);
    dj_frame_entry *fr = malloc((size_t)(ts->n ? ts->n : 1) * sizeof *fr);
    if (!items || !fr) {
        free(items);
        free(fr);
        return dj_error_set(DJ_ERR_NOMEM, ix->path, "cannot allocate the frame table");
    }
    for (int64_t i = 0; i < ix->npackets; i++) {
        items[i].key = dj_packet_key(&ix->packets[i]);
        items[i].order = i;
    }
    qsort(items, (size_t)ix->npackets, sizeof *items, dj_sort_item_cmp);
    for (int64_t k = 0; k < ts->n; k++) {
        int64_t t = ts->v[k];
        if (t == AV_NOPTS_VALUE || (k > 0 && t <= fr[k - 1].pts)) {
            ix->flags |= DJ_INDEX_SEQUENTIAL;
            t = k > 0 ? fr[k - 1].pts + 1 : 0;
        }
        int64_t p = dj_packet_with_key(items, ix->npackets, t);
        fr[k].pts = t;
        fr[k].packet = (int32_t)p;
        fr[k].key = p >= 0 && (ix->packets[p].flags & DJ_PACKET_KEY);
    }
    free(items);
    free(ix->frames);
    ix->frames = fr;
    if (ix->end_frame == ix->nframes || ix->end_frame > ts->n)
        ix->end_frame = ts->n;
    if (ix->start_frame > ix->end_frame)
        ix->start_frame = ix->end_frame;
    ix->nframes = ts->n;
    ix->flags |= DJ_INDEX_CORRECTED;
    return DJ_OK;
}

dj_status dj_video_index_verify(dj_video_index *ix, int64_t *mismatches) {
    if (!ix)
        return dj_error_set(DJ_ERR_INVALID, "dj_video_index_verify", "index is NULL");
    dj_video_src src = {ix->path, NULL, 0, NULL};
    return dj_video_index_verify_src(ix, &src, mismatches);
}

dj_status dj_video_index_verify_src(dj_video_index *ix, const dj_video_src *src, int64_t *mismatches) {
    dj_ts_list ts = {0, 0, NULL};
    dj_status st = dj_verify_decode(ix, src, &ts);
    if (st == DJ_OK && ts.n == 0)
        st = dj_error_set(DJ_ERR_DECODE, ix->path, "the decoder yields no frames");
    int64_t bad = 0;
    if (st == DJ_OK) {
        int64_t common = ts.n < ix->nframes ? ts.n : ix->nframes;
        for (int64_t k = 0; k < common; k++)
            bad += ts.v[k] != ix->frames[k].pts;
        bad += (ts.n > ix->nframes ? ts.n : ix->nframes) - common;
        if (bad)
            st = dj_index_rewrite(ix, &ts);
        if (st == DJ_OK)
            ix->flags |= DJ_INDEX_VERIFIED;
    }
    free(ts.v);
    if (mismatches)
        *mismatches = bad;
    return st;
}
