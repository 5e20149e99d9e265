/* probe.c — opening a video under limits, and dj_video_probe(): container,
 * codec, geometry, rotation, rates and exact packet-level frame counts. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/display.h>
#include <libavutil/pixdesc.h>

#include "dojo/log.h"
#include "video_internal.h"

const char *dj_av_err(int err, char *buf, size_t size) {
    if (av_strerror(err, buf, size) < 0)
        snprintf(buf, size, "error %d", err);
    return buf;
}

void dj_deadline_start(dj_deadline *d, double seconds) {
    d->until = seconds > 0 ? dj_time_now() + seconds : 0;
}

int dj_deadline_passed(const dj_deadline *d) { return d->until > 0 && dj_time_now() > d->until; }

static int dj_interrupt_cb(void *opaque) { return dj_deadline_passed((const dj_deadline *)opaque); }

/* FFmpeg prints to stderr by default; dojo reports errors itself. */
static void dj_av_quiet_once(void) {
    if (dj_log_get_level() < DJ_LOG_DEBUG)
        av_log_set_level(AV_LOG_FATAL);
}

static void dj_av_quiet(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, dj_av_quiet_once);
}

static dj_status dj_video_check_stream(const char *path, const AVStream *st) {
    const AVCodecParameters *par = st->codecpar;
    if (par->width <= 0 || par->height <= 0)
        return dj_error_set(DJ_ERR_FORMAT, path, "video stream has no valid size (%dx%d)", par->width,
                            par->height);
    if (par->width > DJ_VIDEO_MAX_SIDE || par->height > DJ_VIDEO_MAX_SIDE ||
        (int64_t)par->width * par->height > DJ_VIDEO_MAX_PIXELS)
        return dj_error_set(DJ_ERR_FORMAT, path, "video size %dx%d exceeds the limit (%d per side, %d pixels)",
                            par->width, par->height, DJ_VIDEO_MAX_SIDE, DJ_VIDEO_MAX_PIXELS);
    if (!avcodec_find_decoder(par->codec_id))
        return dj_error_set(DJ_ERR_UNSUPPORTED, path, "no decoder for codec '%s'", avcodec_get_name(par->codec_id));
    if (st->time_base.num <= 0 || st->time_base.den <= 0)
        return dj_error_set(DJ_ERR_FORMAT, path, "video stream has an invalid time base");
    return DJ_OK;
}

/* With the stream known from an index, MP4/MOV and Matroska/WebM headers
 * describe it fully (size, codec configuration, timestamps): reading the
 * stream info, which decodes the first frames, can then be skipped. */
static int dj_video_header_suffices(const AVFormatContext *fmt, int s) {
    if (s < 0 || s >= (int)fmt->nb_streams)
        return 0;
    if (!dj_demuxer_is_mov(fmt->iformat) && !dj_demuxer_is_matroska(fmt->iformat))
        return 0;
    const AVStream *st = fmt->streams[s];
    const AVCodecParameters *par = st->codecpar;
    return par->codec_type == AVMEDIA_TYPE_VIDEO && par->codec_id != AV_CODEC_ID_NONE && par->width > 0 &&
           par->height > 0 && par->width <= DJ_VIDEO_MAX_SIDE && par->height <= DJ_VIDEO_MAX_SIDE &&
           (int64_t)par->width * par->height <= DJ_VIDEO_MAX_PIXELS && st->time_base.num > 0 &&
           st->time_base.den > 0 && avcodec_find_decoder(par->codec_id);
}

/* ---- reading from memory: a custom AVIOContext over the caller's buffer */

typedef struct dj_mem_io {
    const uint8_t *data;
    size_t size, pos;
} dj_mem_io;

static int dj_mem_read(void *opaque, uint8_t *buf, int n) {
    dj_mem_io *m = opaque;
    size_t left = m->size - m->pos;
    if (left == 0)
        return AVERROR_EOF;
    size_t k = (size_t)n < left ? (size_t)n : left;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (int)k;
}

static int64_t dj_mem_seek(void *opaque, int64_t offset, int whence) {
    dj_mem_io *m = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE)
        return (int64_t)m->size;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)m->pos : whence == SEEK_END ? (int64_t)m->size : -1;
    if (base < 0 || offset < -base || base + offset > (int64_t)m->size)
        return AVERROR(EINVAL);
    m->pos = (size_t)(base + offset);
    return (int64_t)m->pos;
}

static AVIOContext *dj_mem_io_create(const uint8_t *data, size_t size) {
    dj_mem_io *m = av_mallocz(sizeof *m);
    uint8_t *buf = av_malloc(32768);
    AVIOContext *pb = m && buf ? avio_alloc_context(buf, 32768, 0, m, dj_mem_read, NULL, dj_mem_seek) : NULL;
    if (!pb) {
        av_free(m);
        av_free(buf);
        return NULL;
    }
    m->data = data;
    m->size = size;
    return pb;
}

static void dj_mem_io_free(AVIOContext **pb) {
    if (!*pb)
        return;
    av_freep(&(*pb)->opaque);
    av_freep(&(*pb)->buffer);
    avio_context_free(pb);
}

/* How the AVIOContext of an input was made (AVFormatContext.opaque). */
enum { DJ_IO_FILE = 1, DJ_IO_MEMORY = 2 };
static char dj_io_kinds[3];

void dj_video_close_input(AVFormatContext **fmt) {
    if (!*fmt)
        return;
    AVIOContext *pb = (*fmt)->pb;
    int memory = (*fmt)->opaque == &dj_io_kinds[DJ_IO_MEMORY];
    avformat_close_input(fmt);
    if (memory)
        dj_mem_io_free(&pb);
    else
        avio_closep(&pb);
}

/* Playlists and references inside a file (HLS, concat, DASH, mov data
 * references) would make the demuxer open other files or URLs: a data set
 * file must not reach outside itself, so every nested open is refused. */
static int dj_refuse_nested_open(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                                 AVDictionary **options) {
    return AVERROR(EPERM);
}

/* The input's own I/O: a local file (never a URL) or the caller's buffer. */
static dj_status dj_video_open_io(const dj_video_src *src, AVFormatContext *fmt) {
    char eb[128], url[4200];
    AVIOContext *pb = NULL;
    if (src->data) {
        if (!(pb = dj_mem_io_create(src->data, src->size)))
            return dj_error_set(DJ_ERR_NOMEM, src->path, "cannot allocate memory I/O");
        fmt->opaque = &dj_io_kinds[DJ_IO_MEMORY];
    } else {
        if (snprintf(url, sizeof url, "file:%s", src->path) >= (int)sizeof url)
            return dj_error_set(DJ_ERR_INVALID, src->path, "path too long");
        int err = avio_open2(&pb, url, AVIO_FLAG_READ, &fmt->interrupt_callback, NULL);
        if (err < 0)
            return dj_error_set(err == AVERROR(ENOENT) ? DJ_ERR_NOT_FOUND : DJ_ERR_IO, src->path, "cannot open: %s",
                                dj_av_err(err, eb, sizeof eb));
        fmt->opaque = &dj_io_kinds[DJ_IO_FILE];
    }
    fmt->pb = pb;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->io_open = dj_refuse_nested_open;
    return DJ_OK;
}

dj_status dj_video_open_input(const dj_video_src *src, dj_deadline *deadline, AVFormatContext **out, int *stream) {
    char eb[128];
    const char *path = src->path;
    *out = NULL;
    dj_av_quiet();
    AVFormatContext *fmt = avformat_alloc_context();
    if (!fmt)
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a demuxer");
    fmt->interrupt_callback.callback = dj_interrupt_cb;
    fmt->interrupt_callback.opaque = deadline;
    dj_status st = dj_video_open_io(src, fmt);
    if (st != DJ_OK) {
        avformat_free_context(fmt);
        return st;
    }
    AVIOContext *pb = fmt->pb;
    int memory = src->data != NULL;
    /* the name hints the format; a demuxer known from the last file skips the probe */
    int err = avformat_open_input(&fmt, memory ? "" : path, src->demuxer, NULL);
    if (err < 0) { /* avformat_open_input frees fmt on failure, not custom I/O */
        if (memory)
            dj_mem_io_free(&pb);
        else
            avio_closep(&pb);
        if (src->demuxer) { /* not that kind of file after all: probe */
            dj_video_src probe = *src;
            probe.demuxer = NULL;
            return dj_video_open_input(&probe, deadline, out, stream);
        }
        return dj_error_set(err == AVERROR(ENOENT) ? DJ_ERR_NOT_FOUND : DJ_ERR_FORMAT, path, "cannot open: %s",
                            dj_av_err(err, eb, sizeof eb));
    }
    if (dj_video_header_suffices(fmt, *stream)) {
        for (unsigned i = 0; i < fmt->nb_streams; i++)
            fmt->streams[i]->discard = (int)i == *stream ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
        /* MP4/MOV samples are whole frames with both timestamps stored: the
         * parser libavformat runs on each H.264/HEVC packet would only
         * re-read slice headers the index already holds (1.4% of a 16-frame
         * clip's instructions, valgrind). The index itself is built with it. */
        if (dj_demuxer_is_mov(fmt->iformat))
            fmt->flags |= AVFMT_FLAG_NOPARSE | AVFMT_FLAG_NOFILLIN;
        *out = fmt;
        return DJ_OK;
    }
    err = avformat_find_stream_info(fmt, NULL);
    if (err < 0) {
        dj_video_close_input(&fmt);
        return dj_error_set(DJ_ERR_FORMAT, path, "cannot read stream info: %s", dj_av_err(err, eb, sizeof eb));
    }
    if (dj_deadline_passed(deadline)) {
        dj_video_close_input(&fmt);
        return dj_error_set(DJ_ERR_FORMAT, path, "opening took longer than the time limit");
    }
    int s = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (s < 0) {
        dj_video_close_input(&fmt);
        return dj_error_set(DJ_ERR_FORMAT, path, "no video stream");
    }
    st = dj_video_check_stream(path, fmt->streams[s]);
    if (st != DJ_OK) {
        dj_video_close_input(&fmt);
        return st;
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++) /* demux only what we use */
        fmt->streams[i]->discard = (int)i == s ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    *out = fmt;
    *stream = s;
    return DJ_OK;
}

dj_status dj_video_open_decoder(const char *path, AVFormatContext *fmt, int stream, int threads,
                                AVCodecContext **out) {
    char eb[128];
    const AVCodecParameters *par = fmt->streams[stream]->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec)
        return dj_error_set(DJ_ERR_UNSUPPORTED, path, "no decoder for codec '%s'", avcodec_get_name(par->codec_id));
    AVCodecContext *dec = avcodec_alloc_context3(codec);
    if (!dec)
        return dj_error_set(DJ_ERR_NOMEM, path, "cannot allocate a decoder");
    int err = avcodec_parameters_to_context(dec, par);
    if (err >= 0) {
        dec->pkt_timebase = fmt->streams[stream]->time_base;
        dec->thread_count = threads > 1 ? threads : 1;
        dec->max_pixels = DJ_VIDEO_MAX_PIXELS; /* a stream that changes size mid-way is held to it too */
        /* both kinds give bit-identical pictures; frame threading adds
         * output delay, which the reader's drain hides */
        dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
        err = avcodec_open2(dec, codec, NULL);
    }
    if (err < 0) {
        avcodec_free_context(&dec);
        return dj_error_set(DJ_ERR_DECODE, path, "cannot open the %s decoder: %s", codec->name,
                            dj_av_err(err, eb, sizeof eb));
    }
    *out = dec;
    return DJ_OK;
}

/* The display orientation a stream's display matrix asks for, as the ffmpeg
 * tool's autorotation applies it: a clockwise turn (quarter turns; other
 * angles rounded, and not applied by the transform), then, when mirrored, a
 * left-right flip of the turned picture (a matrix with a reflection; the
 * tool's hflip, vflip and transposes with a flip are these eight cases). */
void dj_display_orientation(const AVStream *st, int *rotation, int *mirrored) {
    const int32_t *m = (const int32_t *)av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL);
    *rotation = 0, *mirrored = 0;
    if (!m)
        return;
    double theta = -av_display_rotation_get(m);
    if (isnan(theta))
        return;
    theta -= 360 * floor(theta / 360 + 0.9 / 360);
    if (fabs(theta - 90) < 1.0) {
        *rotation = 90, *mirrored = m[3] > 0;
    } else if (fabs(theta - 180) < 1.0) {
        int h = m[0] < 0, v = m[4] < 0; /* both: a half turn; one: a mirror (vertical = half turn + left-right) */
        *rotation = v ? 180 : 0, *mirrored = h != v;
    } else if (fabs(theta - 270) < 1.0) {
        *rotation = 270, *mirrored = m[3] < 0;
    } else if (fabs(theta) < 1.0 || fabs(theta - 360) < 1.0) {
        *rotation = m[4] < 0 ? 180 : 0, *mirrored = m[4] < 0; /* upside down: a vertical flip */
    } else {
        *rotation = (int)lrint(theta) % 360;
    }
}

static double dj_q2d_or0(AVRational r) { return r.num > 0 && r.den > 0 ? av_q2d(r) : 0.0; }

/* 1 when consecutive presentation timestamps differ by more than one tick. */
static int dj_index_is_vfr(const dj_video_index *ix) {
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int64_t i = 1; i < ix->nframes; i++) {
        int64_t d = ix->frames[i].pts - ix->frames[i - 1].pts;
        if (d < lo) lo = d;
        if (d > hi) hi = d;
    }
    return ix->nframes > 2 && hi - lo > 1;
}

static void dj_video_info_fill(dj_video_info *info, const AVFormatContext *fmt, int s, const dj_video_index *ix) {
    const AVStream *st = fmt->streams[s];
    const AVCodecParameters *par = st->codecpar;
    memset(info, 0, sizeof *info);
    snprintf(info->container, sizeof info->container, "%s", fmt->iformat->name);
    snprintf(info->codec, sizeof info->codec, "%s", avcodec_get_name(par->codec_id));
    const char *prof = avcodec_profile_name(par->codec_id, par->profile);
    snprintf(info->profile, sizeof info->profile, "%s", prof ? prof : "");
    const char *pf = av_get_pix_fmt_name((enum AVPixelFormat)par->format);
    snprintf(info->pix_fmt, sizeof info->pix_fmt, "%s", pf ? pf : "unknown");
    info->width = par->width;
    info->height = par->height;
    dj_display_orientation(st, &info->rotation, &info->mirrored);
    info->stream_index = s;
    info->frames = ix->nframes;
    /* keyframe packets that carry a shown picture: the frames' own flags come
     * from matching timestamps, which a decoder's guesses (AVI's decode-order
     * stamps, one frame late behind B-frames) can pin on the wrong frames */
    for (int64_t i = 0; i < ix->npackets; i++) {
        uint32_t f = ix->packets[i].flags;
        info->keyframes += (f & DJ_PACKET_KEY) && !(f & (DJ_PACKET_DISCARD | DJ_PACKET_HIDDEN)) && ix->packets[i].size > 0;
    }
    info->mean_gop = info->keyframes ? (double)info->frames / info->keyframes : 0;
    double tb = av_q2d(st->time_base);
    /* From the frames' own timestamps, as the loader reads them: the mean
     * frame interval and the duration it implies (n intervals). */
    double span = ix->nframes > 1 ? (ix->frames[ix->nframes - 1].pts - ix->frames[0].pts) * tb : 0;
    double fps_frames = span > 0 ? (ix->nframes - 1) / span : 0;
    double dur_frames = fps_frames > 0 ? ix->nframes / fps_frames : 0;
    info->duration_s = st->duration > 0 ? st->duration * tb : 0;
    /* A header that cannot describe these frames loses to them: shorter than
     * they span, or over twice their duration plus a second (a fragmented
     * MP4's 0xFFFFFFFF, measured 143165 s for 30 frames at 29.97 fps). A
     * long-held last frame is the one honest case this reads short. */
    if (dur_frames > 0 && (info->duration_s < span || info->duration_s > 2 * dur_frames + 1))
        info->duration_s = dur_frames;
    if (info->duration_s <= 0 && fmt->duration > 0)
        info->duration_s = fmt->duration / (double)AV_TIME_BASE;
    info->fps_real = dj_q2d_or0(st->r_frame_rate);
    /* the frames' mean rate, what target-fps sampling uses (the header's
     * avg_frame_rate measured 1000 for 30 frames a second in Matroska and
     * FLV files with millisecond timestamps); the header's for one frame */
    info->fps_avg = fps_frames > 0 ? fps_frames : dj_q2d_or0(st->avg_frame_rate);
    if (info->fps_avg <= 0 && info->duration_s > 0)
        info->fps_avg = info->frames / info->duration_s;
    info->vfr = dj_index_is_vfr(ix);
    /* The stream's header, unless it is off by over 2x from the stream's
     * own bytes over duration_s (it follows a broken duration: 5 b/s in the
     * fragmented MP4 above); those bytes include frames an edit list hides,
     * which is why a sound header wins (8.4 Mb/s against 10.1 measured). */
    int64_t bytes = 0;
    for (int64_t i = 0; i < ix->npackets; i++)
        bytes += ix->packets[i].size;
    double measured = info->duration_s > 0 ? bytes * 8 / info->duration_s : 0;
    if (par->bit_rate > 0 && (measured <= 0 || (par->bit_rate >= measured / 2 && par->bit_rate <= measured * 2)))
        info->bit_rate = par->bit_rate;
    else if (measured > 0)
        info->bit_rate = (int64_t)llrint(measured);
    else if (fmt->bit_rate > 0)
        info->bit_rate = fmt->bit_rate;
}

static dj_status dj_video_probe_src(const dj_video_src *src, dj_video_info *info) {
    const char *path = src->path;
    dj_deadline dl;
    dj_deadline_start(&dl, 60);
    AVFormatContext *fmt = NULL;
    int s = -1;
    DJ_TRY(dj_video_open_input(src, &dl, &fmt, &s));
    dj_video_index *ix = NULL;
    dj_status st = dj_video_index_scan(path, fmt, s, &dl, &ix);
    if (st == DJ_OK && dj_video_index_needs_verify(ix)) /* packets cannot tell: count by decoding */
        st = dj_video_index_verify_src(ix, src, NULL);
    if (st == DJ_OK)
        dj_video_info_fill(info, fmt, s, ix);
    dj_video_index_free(ix);
    dj_video_close_input(&fmt);
    return st;
}

dj_status dj_video_probe(const char *path, dj_video_info *info) {
    if (!path || !info)
        return dj_error_set(DJ_ERR_INVALID, "dj_video_probe", "path and info are required");
    dj_video_src src = {path, NULL, 0, NULL};
    return dj_video_probe_src(&src, info);
}

dj_status dj_video_probe_memory(const void *data, size_t size, const char *name, dj_video_info *info) {
    if (!data || !info)
        return dj_error_set(DJ_ERR_INVALID, "dj_video_probe_memory", "data and info are required");
    dj_video_src src = {name ? name : "memory", data, size, NULL};
    return dj_video_probe_src(&src, info);
}
