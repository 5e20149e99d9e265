/* encode.c — a small video writer over libavcodec/libavformat.
 *
 * RGB24 frames go through swscale to the encoder's pixel format, are
 * encoded with one thread (so the bytes depend only on the frames and the
 * options) and muxed with bit-exact flags (no creation time, no random
 * container ids). The file is written as PATH.part and renamed to PATH by
 * dj_video_writer_close once the trailer is written, so a half-written file
 * never carries the final name. */
#include "dojo/synth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

struct dj_video_writer {
    char *path;     /* the final name */
    char *tmp_path; /* PATH.part while writing */
    const AVCodec *codec;
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *st;
    struct SwsContext *sws;
    AVFrame *frame; /* one frame in the encoder's pixel format */
    uint8_t *rgb;   /* [height][rgb_stride]: the input, copied to 64-byte aligned rows */
    int rgb_stride;
    AVPacket *pkt;
    int width, height;
    int64_t frames;
};

void dj_video_writer_options_default(dj_video_writer_options *o, int width, int height) {
    memset(o, 0, sizeof *o);
    o->codec = "h264";
    o->width = width;
    o->height = height;
    o->fps = 25;
    o->crf = -1;
    o->qp = -1;
    o->max_b_frames = -1;
}

/* Codec families and the software encoders they stand for, best first. */
static const struct {
    const char *family;
    const char *encoders[3];
} dj_codec_families[] = {
    {"h264", {"libx264", NULL}},
    {"hevc", {"libx265", NULL}},
    {"h265", {"libx265", NULL}},
    {"vp9", {"libvpx-vp9", NULL}},
    {"vp8", {"libvpx", NULL}},
    {"av1", {"libaom-av1", "libsvtav1", NULL}},
};

static const AVCodec *dj_find_video_encoder(const char *name) {
    const AVCodec *c = avcodec_find_encoder_by_name(name);
    return c && c->type == AVMEDIA_TYPE_VIDEO ? c : NULL;
}

const char *dj_video_encoder_resolve(const char *codec) {
    if (!codec || !codec[0])
        return NULL;
    for (size_t i = 0; i < sizeof dj_codec_families / sizeof dj_codec_families[0]; i++) {
        if (strcmp(codec, dj_codec_families[i].family) != 0)
            continue;
        for (int k = 0; dj_codec_families[i].encoders[k]; k++)
            if (dj_find_video_encoder(dj_codec_families[i].encoders[k]))
                return dj_codec_families[i].encoders[k];
        return NULL;
    }
    const AVCodec *c = dj_find_video_encoder(codec);
    return c ? c->name : NULL;
}

int dj_video_encoder_available(const char *codec) { return dj_video_encoder_resolve(codec) != NULL; }

const char *dj_video_encoder_codec(const char *encoder) {
    const char *name = dj_video_encoder_resolve(encoder);
    return name ? avcodec_get_name(dj_find_video_encoder(name)->id) : "unknown";
}

static const char *dj_averr(int err, char *buf, size_t n) {
    av_strerror(err, buf, n);
    return buf;
}

static int dj_has_priv_option(const AVCodec *c, const char *name) {
    const AVClass *cls = c->priv_class;
    return cls && av_opt_find((void *)&cls, name, NULL, 0, AV_OPT_SEARCH_FAKE_OBJ) != NULL;
}

static void dj_writer_free(dj_video_writer *w, int remove_partial) {
    if (!w)
        return;
    if (w->fmt) {
        if (w->fmt->pb)
            avio_closep(&w->fmt->pb);
        avformat_free_context(w->fmt);
    }
    if (remove_partial && w->tmp_path)
        unlink(w->tmp_path);
    avcodec_free_context(&w->enc);
    sws_freeContext(w->sws);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    av_free(w->rgb);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

void dj_video_writer_abort(dj_video_writer *w) { dj_writer_free(w, 1); }

int64_t dj_video_writer_frames(const dj_video_writer *w) { return w ? w->frames : 0; }

static dj_status dj_check_options(const char *path, const dj_video_writer_options *o) {
    if (!o)
        return dj_error_set(DJ_ERR_INVALID, path, "no writer options given");
    if (!o->codec || !o->codec[0])
        return dj_error_set(DJ_ERR_INVALID, path, "no codec named");
    if (o->width <= 0 || o->height <= 0 || o->width > 16384 || o->height > 16384)
        return dj_error_set(DJ_ERR_INVALID, path, "frame size %dx%d is out of range (1..16384)", o->width,
                            o->height);
    if (o->fps <= 0 || o->fps > 1000)
        return dj_error_set(DJ_ERR_INVALID, path, "frame rate %d is out of range (1..1000)", o->fps);
    if (o->gop < 0 || o->max_b_frames < -1 || o->max_b_frames > 16)
        return dj_error_set(DJ_ERR_INVALID, path, "gop %d or max_b_frames %d is out of range", o->gop,
                            o->max_b_frames);
    return DJ_OK;
}

/* The pixel format: the one asked for, or yuv420p when the encoder has it,
 * or the encoder's first; the frame size must suit its chroma subsampling. */
static dj_status dj_pick_pix_fmt(const char *path, const AVCodec *c, const dj_video_writer_options *o,
                                 enum AVPixelFormat *out) {
    enum AVPixelFormat want = AV_PIX_FMT_YUV420P;
    if (o->pix_fmt) {
        want = av_get_pix_fmt(o->pix_fmt);
        if (want == AV_PIX_FMT_NONE)
            return dj_error_set(DJ_ERR_INVALID, path, "unknown pixel format '%s' (encoder %s)", o->pix_fmt,
                                c->name);
    }
    const enum AVPixelFormat *fmts = c->pix_fmts;
    int found = fmts == NULL;
    for (int i = 0; fmts && fmts[i] != AV_PIX_FMT_NONE; i++)
        found |= fmts[i] == want;
    if (!found && o->pix_fmt)
        return dj_error_set(DJ_ERR_UNSUPPORTED, path, "encoder %s does not take pixel format %s", c->name,
                            o->pix_fmt);
    if (!found)
        want = fmts[0];
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(want);
    int sx = 1 << d->log2_chroma_w, sy = 1 << d->log2_chroma_h;
    if (o->width % sx || o->height % sy)
        return dj_error_set(DJ_ERR_INVALID, path,
                            "frame size %dx%d must be a multiple of %dx%d for pixel format %s (encoder %s)",
                            o->width, o->height, sx, sy, d->name, c->name);
    *out = want;
    return DJ_OK;
}

/* Encoder-specific settings: quality, lossless mode, speed, one thread. */
static dj_status dj_encoder_settings(const char *path, const AVCodec *c, AVCodecContext *enc,
                                     const dj_video_writer_options *o, AVDictionary **d) {
    const char *n = c->name;
    char num[32];
    if (o->lossless) {
        if (!strcmp(n, "libx264") || !strcmp(n, "libx264rgb")) {
            av_dict_set(d, "qp", "0", 0);
        } else if (!strcmp(n, "libx265")) {
            /* handled with the other x265 parameters below */
        } else if (!strcmp(n, "libvpx-vp9")) {
            av_dict_set(d, "lossless", "1", 0);
        } else if (!strcmp(n, "libaom-av1")) {
            av_dict_set(d, "aom-params", "lossless=1", 0);
        } else if (strcmp(n, "ffv1") && strcmp(n, "huffyuv") && strcmp(n, "ffvhuff") && strcmp(n, "utvideo")) {
            return dj_error_set(DJ_ERR_UNSUPPORTED, path, "encoder %s has no lossless mode here", n);
        }
    }
    if (!strcmp(n, "libx265")) {
        char p[160];
        snprintf(p, sizeof p, "log-level=error:pools=none:frame-threads=1%s",
                 o->lossless ? ":lossless=1" : "");
        av_dict_set(d, "x265-params", p, 0);
    }
    /* x264's macroblock-tree rate control gives different bytes for the same
     * input when a process encodes more than once (measured with libx264
     * 164, one thread): it is turned off. b-adapt=0 makes x264 use exactly
     * the B-frames asked for. */
    if (!strncmp(n, "libx264", 7))
        av_dict_set(d, "x264-params", o->max_b_frames > 0 ? "mbtree=0:b-adapt=0" : "mbtree=0", 0);
    if (o->preset && dj_has_priv_option(c, "preset"))
        av_dict_set(d, "preset", o->preset, 0);
    if (!strcmp(n, "libvpx-vp9") || !strcmp(n, "libvpx")) {
        av_dict_set(d, "deadline", "realtime", 0);
        av_dict_set(d, "cpu-used", "8", 0);
        av_dict_set(d, "row-mt", "0", 0);
    } else if (!strcmp(n, "libaom-av1")) {
        av_dict_set(d, "cpu-used", "8", 0);
        av_dict_set(d, "row-mt", "0", 0);
    } else if (!strcmp(n, "libsvtav1") && !o->preset) {
        av_dict_set(d, "preset", "12", 0);
    }
    int quant_mpeg = !strcmp(n, "mpeg4") || !strcmp(n, "mpeg2video") || !strcmp(n, "mpeg1video");
    int q = o->qp >= 0 ? o->qp : o->crf;
    if (quant_mpeg && q >= 0 && !o->lossless) {
        /* qscale 1..31: constant quantiser mode */
        enc->flags |= AV_CODEC_FLAG_QSCALE;
        enc->global_quality = FF_QP2LAMBDA * (q < 1 ? 1 : q > 31 ? 31 : q);
        return DJ_OK;
    }
    if (o->crf >= 0 && !o->lossless) {
        if (!dj_has_priv_option(c, "crf"))
            return dj_error_set(DJ_ERR_UNSUPPORTED, path, "encoder %s has no crf setting", n);
        snprintf(num, sizeof num, "%d", o->crf);
        av_dict_set(d, "crf", num, 0);
        enc->bit_rate = 0;
    }
    if (o->qp >= 0 && !o->lossless) {
        if (!dj_has_priv_option(c, "qp"))
            return dj_error_set(DJ_ERR_UNSUPPORTED, path, "encoder %s has no qp setting", n);
        snprintf(num, sizeof num, "%d", o->qp);
        av_dict_set(d, "qp", num, 0);
    }
    return DJ_OK;
}

static dj_status dj_open_encoder(dj_video_writer *w, const dj_video_writer_options *o) {
    const char *path = w->path;
    enum AVPixelFormat pf = AV_PIX_FMT_NONE;
    DJ_TRY(dj_pick_pix_fmt(path, w->codec, o, &pf));
    AVCodecContext *enc = w->enc = avcodec_alloc_context3(w->codec);
    if (!enc)
        return dj_error_set(DJ_ERR_NOMEM, path, "out of memory for encoder %s", w->codec->name);
    enc->width = o->width;
    enc->height = o->height;
    enc->pix_fmt = pf;
    enc->time_base = (AVRational){1, o->fps};
    enc->framerate = (AVRational){o->fps, 1};
    enc->sample_aspect_ratio = (AVRational){1, 1};
    enc->thread_count = 1; /* one thread: the bytes do not depend on timing */
    enc->flags |= AV_CODEC_FLAG_BITEXACT;
    if (o->gop > 0)
        enc->gop_size = o->gop;
    if (o->max_b_frames >= 0)
        enc->max_b_frames = o->max_b_frames;
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *d = NULL;
    dj_status s = dj_encoder_settings(path, w->codec, enc, o, &d);
    if (s != DJ_OK) {
        av_dict_free(&d);
        return s;
    }
    int err = avcodec_open2(enc, w->codec, &d);
    const AVDictionaryEntry *left = av_dict_get(d, "", NULL, AV_DICT_IGNORE_SUFFIX);
    char key[64];
    snprintf(key, sizeof key, "%s", left ? left->key : "");
    av_dict_free(&d);
    char eb[128];
    if (err < 0)
        return dj_error_set(DJ_ERR_UNSUPPORTED, path, "encoder %s rejected the settings (%dx%d %s): %s",
                            w->codec->name, o->width, o->height, av_get_pix_fmt_name(pf),
                            dj_averr(err, eb, sizeof eb));
    if (key[0])
        return dj_error_set(DJ_ERR_UNSUPPORTED, path, "encoder %s does not understand option '%s'",
                            w->codec->name, key);
    return DJ_OK;
}

static dj_status dj_open_output(dj_video_writer *w) {
    char eb[128];
    int err = avformat_alloc_output_context2(&w->fmt, NULL, NULL, w->path);
    if (err < 0 || !w->fmt)
        return dj_error_set(DJ_ERR_INVALID, w->path, "cannot tell the container from the file name: %s",
                            dj_averr(err, eb, sizeof eb));
    w->fmt->flags |= AVFMT_FLAG_BITEXACT;
    if (avformat_query_codec(w->fmt->oformat, w->codec->id, FF_COMPLIANCE_NORMAL) != 1)
        return dj_error_set(DJ_ERR_UNSUPPORTED, w->path, "container %s cannot hold codec %s (encoder %s)",
                            w->fmt->oformat->name, avcodec_get_name(w->codec->id), w->codec->name);
    return DJ_OK;
}

static dj_status dj_open_stream(dj_video_writer *w) {
    char eb[128];
    w->st = avformat_new_stream(w->fmt, NULL);
    if (!w->st)
        return dj_error_set(DJ_ERR_NOMEM, w->path, "out of memory for a stream");
    w->st->time_base = w->enc->time_base;
    w->st->avg_frame_rate = w->enc->framerate;
    int err = avcodec_parameters_from_context(w->st->codecpar, w->enc);
    if (err < 0)
        return dj_error_set(DJ_ERR_INTERNAL, w->path, "cannot copy encoder %s parameters: %s", w->codec->name,
                            dj_averr(err, eb, sizeof eb));
    err = avio_open(&w->fmt->pb, w->tmp_path, AVIO_FLAG_WRITE);
    if (err < 0)
        return dj_error_set(DJ_ERR_IO, w->path, "cannot open for writing: %s", dj_averr(err, eb, sizeof eb));
    err = avformat_write_header(w->fmt, NULL);
    if (err < 0)
        return dj_error_set(DJ_ERR_IO, w->path, "cannot write the %s header (encoder %s): %s",
                            w->fmt->oformat->name, w->codec->name, dj_averr(err, eb, sizeof eb));
    return DJ_OK;
}

static dj_status dj_alloc_buffers(dj_video_writer *w) {
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->frame || !w->pkt)
        return dj_error_set(DJ_ERR_NOMEM, w->path, "out of memory for frames");
    w->frame->format = w->enc->pix_fmt;
    w->frame->width = w->width;
    w->frame->height = w->height;
    if (av_frame_get_buffer(w->frame, 0) < 0)
        return dj_error_set(DJ_ERR_NOMEM, w->path, "out of memory for a %dx%d frame", w->width, w->height);
    /* the padding past each row is never written by swscale: zero it so an
     * encoder that reads it sees the same bytes every time */
    for (int i = 0; i < AV_NUM_DATA_POINTERS && w->frame->buf[i]; i++)
        memset(w->frame->buf[i]->data, 0, w->frame->buf[i]->size);
    /* swscale's SIMD input paths depend on the alignment of the source, and
     * do not all give the C code's bytes: converting from our own aligned
     * copy makes the output the same whatever buffer the caller passes */
    w->rgb_stride = (3 * w->width + 63) & ~63;
    w->rgb = av_mallocz((size_t)w->rgb_stride * w->height + 64); /* + swscale's over-read */
    if (!w->rgb)
        return dj_error_set(DJ_ERR_NOMEM, w->path, "out of memory for a %dx%d frame", w->width, w->height);
    /* same size, so only the colour conversion and chroma averaging happen;
     * bit-exact C code paths make it independent of the CPU */
    w->sws = sws_getContext(w->width, w->height, AV_PIX_FMT_RGB24, w->width, w->height, w->enc->pix_fmt,
                            SWS_BILINEAR | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
    if (!w->sws)
        return dj_error_set(DJ_ERR_UNSUPPORTED, w->path, "no conversion from rgb24 to %s (encoder %s)",
                            av_get_pix_fmt_name(w->enc->pix_fmt), w->codec->name);
    return DJ_OK;
}

static char *dj_strdup_suffix(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    char *r = malloc(a + b + 1);
    if (r) {
        memcpy(r, s, a);
        memcpy(r + a, suffix, b + 1);
    }
    return r;
}

dj_status dj_video_writer_create(const char *path, const dj_video_writer_options *o, dj_video_writer **out) {
    if (!out)
        return dj_error_set(DJ_ERR_INVALID, path, "no place for the writer");
    *out = NULL;
    if (!path || !path[0])
        return dj_error_set(DJ_ERR_INVALID, "video writer", "empty output path");
    DJ_TRY(dj_check_options(path, o));
    const char *name = dj_video_encoder_resolve(o->codec);
    if (!name)
        return dj_error_set(DJ_ERR_NOT_FOUND, path, "encoder '%s' is not in this build of libavcodec", o->codec);
    dj_video_writer *w = calloc(1, sizeof *w);
    if (!w)
        return dj_error_set(DJ_ERR_NOMEM, path, "out of memory");
    w->codec = dj_find_video_encoder(name);
    w->width = o->width;
    w->height = o->height;
    w->path = dj_strdup_suffix(path, "");
    w->tmp_path = dj_strdup_suffix(path, ".part");
    dj_status s = DJ_OK;
    if (!w->path || !w->tmp_path)
        s = dj_error_set(DJ_ERR_NOMEM, path, "out of memory");
    if (s == DJ_OK)
        s = dj_open_output(w);
    if (s == DJ_OK)
        s = dj_open_encoder(w, o);
    if (s == DJ_OK)
        s = dj_open_stream(w);
    if (s == DJ_OK)
        s = dj_alloc_buffers(w);
    if (s != DJ_OK) {
        dj_writer_free(w, 1);
        return s;
    }
    *out = w;
    return DJ_OK;
}

/* Sends one frame (NULL: flush) and writes every packet that comes out. */
static dj_status dj_encode(dj_video_writer *w, AVFrame *frame) {
    char eb[128];
    int err = avcodec_send_frame(w->enc, frame);
    if (err < 0)
        return dj_error_set(DJ_ERR_IO, w->path, "encoder %s failed on frame %lld: %s", w->codec->name,
                            (long long)w->frames, dj_averr(err, eb, sizeof eb));
    for (;;) {
        err = avcodec_receive_packet(w->enc, w->pkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return DJ_OK;
        if (err < 0)
            return dj_error_set(DJ_ERR_IO, w->path, "encoder %s failed: %s", w->codec->name,
                                dj_averr(err, eb, sizeof eb));
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        err = av_interleaved_write_frame(w->fmt, w->pkt);
        av_packet_unref(w->pkt);
        if (err < 0)
            return dj_error_set(DJ_ERR_IO, w->path, "cannot write a packet: %s", dj_averr(err, eb, sizeof eb));
    }
}

dj_status dj_video_writer_write_rgb(dj_video_writer *w, const uint8_t *rgb24, int stride) {
    if (!w)
        return dj_error_set(DJ_ERR_INVALID, "video writer", "no writer");
    if (!rgb24 || stride < 3 * w->width)
        return dj_error_set(DJ_ERR_INVALID, w->path, "rgb frame missing or stride %d < 3 x width %d", stride,
                            w->width);
    if (av_frame_make_writable(w->frame) < 0)
        return dj_error_set(DJ_ERR_NOMEM, w->path, "out of memory for a frame");
    for (int y = 0; y < w->height; y++)
        memcpy(w->rgb + (size_t)y * w->rgb_stride, rgb24 + (size_t)y * stride, (size_t)3 * w->width);
    const uint8_t *src[1] = {w->rgb};
    int src_stride[1] = {w->rgb_stride};
    sws_scale(w->sws, src, src_stride, 0, w->height, w->frame->data, w->frame->linesize);
    w->frame->pts = w->frames;
    DJ_TRY(dj_encode(w, w->frame));
    w->frames++;
    return DJ_OK;
}

static dj_status dj_finish(dj_video_writer *w) {
    char eb[128];
    if (w->frames == 0)
        return dj_error_set(DJ_ERR_INVALID, w->path, "no frames were written (encoder %s)", w->codec->name);
    DJ_TRY(dj_encode(w, NULL));
    int err = av_write_trailer(w->fmt);
    if (err < 0)
        return dj_error_set(DJ_ERR_IO, w->path, "cannot write the %s trailer: %s", w->fmt->oformat->name,
                            dj_averr(err, eb, sizeof eb));
    err = avio_closep(&w->fmt->pb);
    if (err < 0)
        return dj_error_set(DJ_ERR_IO, w->path, "cannot close: %s", dj_averr(err, eb, sizeof eb));
    if (rename(w->tmp_path, w->path) != 0)
        return dj_error_set(DJ_ERR_IO, w->path, "cannot rename %s into place: %s", w->tmp_path, strerror(errno));
    return DJ_OK;
}

dj_status dj_video_writer_close(dj_video_writer *w) {
    if (!w)
        return DJ_OK;
    dj_status s = dj_finish(w);
    dj_writer_free(w, s != DJ_OK);
    return s;
}
