/* png.c — writing one decoded frame as an RGB24 PNG file, converted (and
 * resized when asked) with swscale, turned upright when the video is
 * displayed turned, and encoded with libavcodec's PNG encoder. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "dojo/transform.h"
#include "video_internal.h"

/* frame converted to an RGB24 AVFrame of w x h. */
static dj_status dj_frame_to_rgb(const dj_frame *f, int w, int h, const char *path, AVFrame **out) {
    *out = NULL;
    struct SwsContext *sws = sws_getContext(f->width, f->height, (enum AVPixelFormat)f->format, w, h,
                                            AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    if (!sws)
        return dj_error_set(DJ_ERR_UNSUPPORTED, path, "cannot convert %s %dx%d to rgb24 %dx%d",
                            av_get_pix_fmt_name((enum AVPixelFormat)f->format) ? av_get_pix_fmt_name((enum AVPixelFormat)f->format) : "?",
                            f->width, f->height, w, h);
    AVFrame *rgb = av_frame_alloc();
    dj_status st = DJ_OK;
    if (!rgb)
        st = dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a picture");
    if (st == DJ_OK) {
        rgb->format = AV_PIX_FMT_RGB24;
        rgb->width = w;
        rgb->height = h;
        if (av_frame_get_buffer(rgb, 0) < 0)
            st = dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a %dx%d picture", w, h);
    }
    if (st == DJ_OK && sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, rgb->data,
                                 rgb->linesize) != h)
        st = dj_error_set(DJ_ERR_INTERNAL, path, "colour conversion failed");
    sws_freeContext(sws);
    if (st != DJ_OK) {
        av_frame_free(&rgb);
        return st;
    }
    *out = rgb;
    return DJ_OK;
}

/* Encodes rgb as PNG into pkt. */
static dj_status dj_png_encode(AVFrame *rgb, const char *path, AVPacket *pkt) {
    char eb[128];
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    if (!codec)
        return dj_error_set(DJ_ERR_UNSUPPORTED, path, "this FFmpeg has no PNG encoder");
    AVCodecContext *enc = avcodec_alloc_context3(codec);
    if (!enc)
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a PNG encoder");
    enc->width = rgb->width;
    enc->height = rgb->height;
    enc->pix_fmt = AV_PIX_FMT_RGB24;
    enc->time_base = (AVRational){1, 25};
    int err = avcodec_open2(enc, codec, NULL);
    if (err >= 0)
        err = avcodec_send_frame(enc, rgb);
    if (err >= 0)
        err = avcodec_receive_packet(enc, pkt);
    avcodec_free_context(&enc);
    if (err < 0)
        return dj_error_set(DJ_ERR_INTERNAL, path, "PNG encoding failed: %s", dj_av_err(err, eb, sizeof eb));
    return DJ_OK;
}

static dj_status dj_write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return dj_error_set(DJ_ERR_IO, path, "cannot create: %s", strerror(errno));
    size_t n = fwrite(data, 1, size, fp);
    int bad = n != size || fflush(fp) != 0;
    if (fclose(fp) != 0 || bad) {
        remove(path);
        return dj_error_set(DJ_ERR_IO, path, "cannot write: %s", strerror(errno));
    }
    return DJ_OK;
}

/* The RGB24 picture *rgb turned clockwise by rot (0, 90, 180, 270), then
 * mirrored left-right when mirror, replacing it: the upright picture of one
 * displayed turned. */
static dj_status dj_rgb_turn(AVFrame **rgb, int rot, int mirror, const char *path) {
    const AVFrame *s = *rgb;
    int W = rot % 180 ? s->height : s->width, H = rot % 180 ? s->width : s->height;
    AVFrame *d = av_frame_alloc();
    if (!d)
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a picture");
    d->format = AV_PIX_FMT_RGB24, d->width = W, d->height = H;
    if (av_frame_get_buffer(d, 0) < 0) {
        av_frame_free(&d);
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a %dx%d picture", W, H);
    }
    for (int y = 0; y < H; y++)
        for (int xm = 0; xm < W; xm++) {
            int x = mirror ? W - 1 - xm : xm;
            int sx = rot == 0 ? x : rot == 90 ? y : rot == 180 ? s->width - 1 - x : s->width - 1 - y;
            int sy = rot == 0 ? y : rot == 90 ? s->height - 1 - x : rot == 180 ? s->height - 1 - y : x;
            memcpy(d->data[0] + (size_t)y * d->linesize[0] + 3 * (size_t)xm,
                   s->data[0] + (size_t)sy * s->linesize[0] + 3 * (size_t)sx, 3);
        }
    av_frame_free(rgb);
    *rgb = d;
    return DJ_OK;
}

dj_status dj_frame_write_png(const dj_frame *frame, int out_w, int out_h, const char *path) {
    if (!frame || !path || out_w < 0 || out_h < 0 || out_w > DJ_VIDEO_MAX_SIDE || out_h > DJ_VIDEO_MAX_SIDE)
        return dj_error_set(DJ_ERR_INVALID, path ? path : "dj_frame_write_png", "bad frame or size");
    /* the size asked for is the upright picture's (0: its own); converted as
     * stored, so a quarter turn swaps it back */
    int rot = dj_rotation_normal(frame->rotation), uw, uh, w, h;
    dj_upright_size(frame->width, frame->height, rot, &uw, &uh);
    dj_upright_size(out_w ? out_w : uw, out_h ? out_h : uh, rot, &w, &h);
    AVFrame *rgb = NULL;
    DJ_TRY(dj_frame_to_rgb(frame, w, h, path, &rgb));
    if (rot || frame->mirrored) {
        dj_status ts = dj_rgb_turn(&rgb, rot, frame->mirrored != 0, path);
        if (ts != DJ_OK) {
            av_frame_free(&rgb);
            return ts;
        }
    }
    AVPacket *pkt = av_packet_alloc();
    dj_status st = pkt ? dj_png_encode(rgb, path, pkt) : dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a packet");
    if (st == DJ_OK)
        st = dj_write_file(path, pkt->data, (size_t)pkt->size);
    av_packet_free(&pkt);
    av_frame_free(&rgb);
    return st;
}
