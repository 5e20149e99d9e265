/* video_ref.h — helpers shared by the video tests: making clips with the
 * ffmpeg tool, and a plain sequential decoder (written independently of
 * src/video) whose frames are the reference for exactness checks. */
#ifndef DJ_TEST_VIDEO_REF_H
#define DJ_TEST_VIDEO_REF_H

#include <stdint.h>
#include <stdlib.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>

#include "dojo/video.h"

/* 1 when the ffmpeg command-line tool can be run. */
static inline int ref_have_ffmpeg(void) { return system("ffmpeg -version >/dev/null 2>&1") == 0; }

/* Runs `ffmpeg -v error -y ARGS` and returns its exit status. */
static inline int ref_ffmpeg(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -hide_banner -v error -y %s </dev/null >/dev/null 2>&1", args);
    return system(cmd);
}

/* One decoded frame, its planes packed tightly (av_image_copy_to_buffer). */
typedef struct ref_frame {
    int64_t pts;
    int size;
    uint8_t *bytes;
} ref_frame;

typedef struct ref_video {
    int64_t n;
    ref_frame *f;
} ref_video;

static inline void ref_video_free(ref_video *v) {
    for (int64_t i = 0; i < v->n; i++)
        free(v->f[i].bytes);
    free(v->f);
    v->f = NULL;
    v->n = 0;
}

/* Packs the planes of an AVFrame-shaped picture; returns a malloc'd buffer. */
static inline uint8_t *ref_pack(uint8_t *const data[4], const int linesize[4], int fmt, int w, int h, int *size) {
    int n = av_image_get_buffer_size((enum AVPixelFormat)fmt, w, h, 1);
    if (n <= 0)
        return NULL;
    uint8_t *buf = malloc((size_t)n);
    if (!buf)
        return NULL;
    if (av_image_copy_to_buffer(buf, n, (const uint8_t *const *)data, linesize, (enum AVPixelFormat)fmt, w, h, 1) < 0) {
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
}

static inline int ref_push(ref_video *v, AVFrame *fr, int64_t max_frames) {
    if (v->n >= max_frames)
        return 0;
    ref_frame *nf = realloc(v->f, (size_t)(v->n + 1) * sizeof *nf);
    if (!nf)
        return -1;
    v->f = nf;
    ref_frame *r = &v->f[v->n];
    r->pts = fr->best_effort_timestamp;
    r->bytes = ref_pack(fr->data, fr->linesize, fr->format, fr->width, fr->height, &r->size);
    v->n++;
    return r->bytes ? 0 : -1;
}

static inline int ref_drain(AVCodecContext *dec, AVFrame *fr, ref_video *v, int64_t max_frames, int64_t *count) {
    while (avcodec_receive_frame(dec, fr) == 0) {
        (*count)++;
        int rc = ref_push(v, fr, max_frames);
        av_frame_unref(fr);
        if (rc)
            return rc;
    }
    return 0;
}

/* Decodes path sequentially; keeps the first max_frames frames in v and
 * returns the total count of frames the decoder yields, or -1. */
static inline int64_t ref_decode(const char *path, ref_video *v, int64_t max_frames) {
    AVFormatContext *fmt = NULL;
    v->n = 0;
    v->f = NULL;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0)
        return -1;
    int64_t count = -1;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    const AVCodec *codec = NULL;
    if (avformat_find_stream_info(fmt, NULL) < 0)
        goto done;
    int s = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (s < 0 || !(dec = avcodec_alloc_context3(codec)))
        goto done;
    if (avcodec_parameters_to_context(dec, fmt->streams[s]->codecpar) < 0)
        goto done;
    dec->pkt_timebase = fmt->streams[s]->time_base;
    dec->thread_count = 1;
    if (avcodec_open2(dec, codec, NULL) < 0)
        goto done;
    count = 0;
    while (av_read_frame(fmt, pkt) >= 0) {
        if (pkt->stream_index == s && pkt->size > 0) {
            int err = avcodec_send_packet(dec, pkt);
            if (ref_drain(dec, fr, v, max_frames, &count))
                count = -1;
            if (err == AVERROR(EAGAIN))
                avcodec_send_packet(dec, pkt);
        }
        av_packet_unref(pkt);
        if (count < 0)
            goto done;
    }
    avcodec_send_packet(dec, NULL);
    if (ref_drain(dec, fr, v, max_frames, &count))
        count = -1;
done:
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return count;
}

/* A read callback collecting packed copies of the delivered frames. */
typedef struct ref_got {
    int64_t n, cap;
    int64_t index[256];
    int size[256];
    uint8_t *bytes[256];
} ref_got;

static inline dj_status ref_collect(void *arg, const dj_frame *f) {
    ref_got *g = arg;
    if (g->n >= 256)
        return dj_error_set(DJ_ERR_RANGE, "test", "too many frames");
    g->index[g->n] = f->index;
    g->bytes[g->n] = ref_pack((uint8_t *const *)f->data, f->linesize, f->format, f->width, f->height, &g->size[g->n]);
    g->n++;
    return DJ_OK;
}

static inline void ref_got_free(ref_got *g) {
    for (int64_t i = 0; i < g->n; i++)
        free(g->bytes[i]);
    g->n = 0;
}

#endif
