/* test_synth.c — the video writer, the motion scenes and the test clips.
 *
 * Written files are checked by decoding them here with libavformat and
 * libavcodec (decode_file below), independently of dojo's own decoder. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>

#include "dojo/error.h"
#include "dojo/synth.h"
#include "support/test.h"

#define PI 3.14159265358979323846

/* libx265 3.5 leaks its parameter strings on every encoder (inside the
 * library, not through us): LeakSanitizer ignores what it allocates. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libx265.so\n"; }

/* ---- helpers -------------------------------------------------------------- */

/* What decode_file found: size, frame count, and each frame as RGB24. */
typedef struct decoded {
    int width, height, frames;
    char codec[32];
    uint8_t *rgb; /* [frames][height][width][3] */
} decoded;

static void decoded_free(decoded *d) {
    free(d->rgb);
    memset(d, 0, sizeof *d);
}

static int decode_append(decoded *d, AVFrame *f, struct SwsContext **sws) {
    if (d->frames == 0) {
        d->width = f->width;
        d->height = f->height;
    }
    if (f->width != d->width || f->height != d->height)
        return -1;
    size_t fsz = (size_t)3 * d->width * d->height;
    uint8_t *grown = realloc(d->rgb, fsz * (d->frames + 1));
    if (!grown)
        return -1;
    d->rgb = grown;
    *sws = sws_getCachedContext(*sws, f->width, f->height, f->format, f->width, f->height, AV_PIX_FMT_RGB24,
                                SWS_BILINEAR | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
    if (!*sws)
        return -1;
    uint8_t *dst[1] = {d->rgb + fsz * d->frames};
    int stride[1] = {3 * d->width};
    sws_scale(*sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, stride);
    d->frames++;
    return 0;
}

/* Decodes every frame of the first video stream; 0 on success. */
static int decode_file(const char *path, decoded *d) {
    memset(d, 0, sizeof *d);
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    struct SwsContext *sws = NULL;
    int rc = -1, si = -1;
    if (!pkt || !f || avformat_open_input(&fmt, path, NULL, NULL) < 0 || avformat_find_stream_info(fmt, NULL) < 0)
        goto done;
    const AVCodec *c = NULL;
    si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &c, 0);
    if (si < 0 || !(dec = avcodec_alloc_context3(c)) ||
        avcodec_parameters_to_context(dec, fmt->streams[si]->codecpar) < 0)
        goto done;
    dec->thread_count = 1;
    if (avcodec_open2(dec, c, NULL) < 0)
        goto done;
    snprintf(d->codec, sizeof d->codec, "%s", avcodec_get_name(c->id));
    int eof = 0;
    while (!eof) {
        int r = av_read_frame(fmt, pkt);
        if (r < 0) {
            eof = 1;
            avcodec_send_packet(dec, NULL);
        } else {
            int keep = pkt->stream_index == si;
            if (keep && avcodec_send_packet(dec, pkt) < 0) {
                av_packet_unref(pkt);
                goto done;
            }
            av_packet_unref(pkt);
        }
        while (avcodec_receive_frame(dec, f) == 0) {
            int bad = decode_append(d, f, &sws);
            av_frame_unref(f);
            if (bad)
                goto done;
        }
    }
    rc = 0;
done:
    sws_freeContext(sws);
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    if (rc != 0)
        decoded_free(d);
    return rc;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Reads a whole file; NULL if missing. */
static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    return buf;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && na > 0 && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dj_test_tmpdir(), name); }

/* The encoder the tests use for H.264, or mpeg4 where this build lacks libx264. */
static const char *h264_or_mpeg4(void) { return dj_video_encoder_available("libx264") ? "libx264" : "mpeg4"; }

/* Writes n test-pattern frames with the given options from a buffer that
 * starts `offset` bytes into an allocation and has rows `pad` bytes longer
 * than needed; returns the status. */
static dj_status write_pattern_at(const char *path, dj_video_writer_options *o, int n, int offset, int pad) {
    dj_video_writer *w = NULL;
    int stride = 3 * o->width + pad;
    uint8_t *tight = malloc((size_t)3 * o->width * o->height);
    uint8_t *buf = calloc((size_t)stride * o->height + offset, 1);
    dj_status s = tight && buf ? dj_video_writer_create(path, o, &w) : DJ_ERR_NOMEM;
    for (int i = 0; s == DJ_OK && i < n; i++) {
        s = dj_synth_testclip_render(i, o->width, o->height, tight);
        for (int y = 0; y < o->height; y++)
            memcpy(buf + offset + (size_t)y * stride, tight + (size_t)y * 3 * o->width, (size_t)3 * o->width);
        if (s == DJ_OK)
            s = dj_video_writer_write_rgb(w, buf + offset, stride);
    }
    if (s == DJ_OK)
        s = dj_video_writer_close(w);
    else
        dj_video_writer_abort(w);
    free(tight);
    free(buf);
    return s;
}

static dj_status write_pattern(const char *path, dj_video_writer_options *o, int n) {
    return write_pattern_at(path, o, n, 0, 0);
}

/* ---- video writer ----------------------------------------------------------- */

static void test_encoder_resolve(void) {
    CHECK(dj_video_encoder_resolve("nope") == NULL);
    CHECK(dj_video_encoder_resolve("") == NULL);
    CHECK(dj_video_encoder_resolve(NULL) == NULL);
    CHECK(!dj_video_encoder_available("nope"));
    CHECK(dj_video_encoder_available("mpeg4"));
    CHECK(strcmp(dj_video_encoder_codec("mpeg4"), "mpeg4") == 0);
    CHECK(strcmp(dj_video_encoder_codec("nope"), "unknown") == 0);
    if (!dj_video_encoder_available("libx264"))
        SKIP("libx264 is not in this build");
    CHECK(strcmp(dj_video_encoder_resolve("h264"), "libx264") == 0);
    CHECK(strcmp(dj_video_encoder_codec("libx264"), "h264") == 0);
    CHECK(strcmp(dj_video_encoder_codec("h264"), "h264") == 0);
}

static void test_writer_roundtrip(void) {
    char path[512], part[600];
    tmp_path(path, sizeof path, "roundtrip.mp4");
    dj_video_writer_options o;
    dj_video_writer_options_default(&o, 64, 48);
    o.codec = h264_or_mpeg4();
    CHECK_EQ_INT(write_pattern(path, &o, 10), DJ_OK);
    snprintf(part, sizeof part, "%s.part", path);
    CHECK(!file_exists(part));
    decoded d;
    CHECK_EQ_INT(decode_file(path, &d), 0);
    CHECK_EQ_INT(d.frames, 10);
    CHECK_EQ_INT(d.width, 64);
    CHECK_EQ_INT(d.height, 48);
    CHECK_STR_CONTAINS(d.codec, strcmp(o.codec, "mpeg4") ? "h264" : "mpeg4");
    for (int i = 0; i < d.frames; i++)
        CHECK_EQ_INT(dj_synth_testclip_read_index(d.rgb + (size_t)i * 3 * 64 * 48, 64, 48, 3 * 64), i);
    decoded_free(&d);
}

/* FFV1 is lossless in yuv444p: decoded frames are within rounding of the input. */
static void test_writer_lossless_content(void) {
    char path[512];
    tmp_path(path, sizeof path, "lossless.mkv");
    dj_video_writer_options o;
    dj_video_writer_options_default(&o, 64, 48);
    o.codec = "ffv1";
    o.pix_fmt = "yuv444p";
    o.lossless = 1;
    CHECK_EQ_INT(write_pattern(path, &o, 6), DJ_OK);
    decoded d;
    CHECK_EQ_INT(decode_file(path, &d), 0);
    CHECK_EQ_INT(d.frames, 6);
    uint8_t *want = malloc(3 * 64 * 48);
    int worst = 0;
    for (int i = 0; i < d.frames && want; i++) {
        CHECK_EQ_INT(dj_synth_testclip_render(i, 64, 48, want), DJ_OK);
        for (int k = 0; k < 3 * 64 * 48; k++) {
            int diff = abs((int)want[k] - (int)d.rgb[(size_t)i * 3 * 64 * 48 + k]);
            worst = diff > worst ? diff : worst;
        }
    }
    CHECK_MSG(worst <= 3, "largest difference after an RGB->YUV444->RGB round trip is %d", worst);
    free(want);
    decoded_free(&d);
}

static void test_writer_bad_codec(void) {
    char path[512];
    tmp_path(path, sizeof path, "badcodec.mp4");
    dj_video_writer_options o;
    dj_video_writer_options_default(&o, 64, 48);
    o.codec = "no-such-encoder";
    dj_video_writer *w = (dj_video_writer *)1;
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_NOT_FOUND);
    CHECK(w == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), "no-such-encoder");
    CHECK_STR_CONTAINS(dj_error_message(), path);
    CHECK(!file_exists(path));
    o.codec = "";
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_INVALID);
    /* a decoder-only name is not an encoder */
    o.codec = "h264_cuvid";
    CHECK(dj_video_writer_create(path, &o, &w) != DJ_OK);
}

static void test_writer_bad_path(void) {
    dj_video_writer_options o;
    dj_video_writer_options_default(&o, 64, 48);
    o.codec = "mpeg4";
    dj_video_writer *w = NULL;
    const char *path = "/nonexistent-dojo-dir/sub/clip.mp4";
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_IO);
    CHECK(w == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), "cannot open for writing");
    CHECK_STR_CONTAINS(dj_error_message(), path);
    CHECK_EQ_INT(dj_video_writer_create("", &o, &w), DJ_ERR_INVALID);
    char bad_ext[512];
    tmp_path(bad_ext, sizeof bad_ext, "clip.notacontainer");
    CHECK_EQ_INT(dj_video_writer_create(bad_ext, &o, &w), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "container");
    CHECK(!file_exists(bad_ext));
}

static void test_writer_container_codec_mismatch(void) {
    char path[512];
    tmp_path(path, sizeof path, "ffv1.mp4");
    dj_video_writer_options o;
    dj_video_writer_options_default(&o, 64, 48);
    o.codec = "ffv1";
    dj_video_writer *w = NULL;
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(dj_error_message(), "cannot hold codec ffv1");
    CHECK(!file_exists(path));
}

static void test_writer_odd_size(void) {
    char path[512];
    tmp_path(path, sizeof path, "odd.mp4");
    dj_video_writer_options o;
    dj_video_writer_options_default(&o, 65, 48);
    o.codec = "mpeg4";
    dj_video_writer *w = NULL;
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "multiple of 2x2 for pixel format yuv420p");
    CHECK_STR_CONTAINS(dj_error_message(), "mpeg4");
    /* handled where the pixel format allows it: FFV1 in yuv444p */
    tmp_path(path, sizeof path, "odd.mkv");
    o.codec = "ffv1";
    o.pix_fmt = "yuv444p";
    o.width = 67;
    o.height = 49;
    CHECK_EQ_INT(write_pattern(path, &o, 3), DJ_OK);
    decoded d;
    CHECK_EQ_INT(decode_file(path, &d), 0);
    CHECK_EQ_INT(d.frames, 3);
    CHECK_EQ_INT(d.width, 67);
    CHECK_EQ_INT(d.height, 49);
    decoded_free(&d);
}

static void test_writer_bad_options(void) {
    char path[512];
    tmp_path(path, sizeof path, "opts.mp4");
    dj_video_writer_options o;
    dj_video_writer *w = NULL;
    dj_video_writer_options_default(&o, 0, 48);
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "frame size 0x48");
    dj_video_writer_options_default(&o, 64, 48);
    o.fps = 0;
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "frame rate");
    dj_video_writer_options_default(&o, 64, 48);
    o.codec = "mpeg4";
    o.lossless = 1;
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(dj_error_message(), "encoder mpeg4 has no lossless mode");
    o.lossless = 0;
    o.pix_fmt = "not-a-format";
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "unknown pixel format 'not-a-format'");
    o.pix_fmt = "rgb48be";
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(dj_error_message(), "does not take pixel format rgb48be");
    o.pix_fmt = NULL;
    o.crf = 20; /* a quality setting the encoder does not have */
    o.codec = "ffv1";
    tmp_path(path, sizeof path, "opts.mkv");
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(dj_error_message(), "encoder ffv1 has no crf setting");
    CHECK(!file_exists(path));
    CHECK_EQ_INT(dj_video_writer_create(path, NULL, &w), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_video_writer_create(path, &o, NULL), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_video_writer_close(NULL), DJ_OK);
    dj_video_writer_abort(NULL);
}

static void test_writer_zero_frames(void) {
    char path[512], part[600];
    tmp_path(path, sizeof path, "empty.mp4");
    snprintf(part, sizeof part, "%s.part", path);
    dj_video_writer_options o;
    dj_video_writer_options_default(&o, 64, 48);
    o.codec = h264_or_mpeg4();
    dj_video_writer *w = NULL;
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_OK);
    CHECK(file_exists(part));
    CHECK_EQ_INT(dj_video_writer_frames(w), 0);
    CHECK_EQ_INT(dj_video_writer_close(w), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "no frames were written");
    CHECK_STR_CONTAINS(dj_error_message(), path);
    CHECK(!file_exists(path));
    CHECK(!file_exists(part));
}

/* Until close, the file only exists as PATH.part; abort removes it. */
static void test_writer_partial_name(void) {
    char path[512], part[600];
    tmp_path(path, sizeof path, "partial.mkv");
    snprintf(part, sizeof part, "%s.part", path);
    dj_video_writer_options o;
    dj_video_writer_options_default(&o, 64, 48);
    o.codec = "mpeg4";
    dj_video_writer *w = NULL;
    CHECK_EQ_INT(dj_video_writer_create(path, &o, &w), DJ_OK);
    uint8_t rgb[3 * 64 * 48];
    CHECK_EQ_INT(dj_synth_testclip_render(0, 64, 48, rgb), DJ_OK);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(dj_video_writer_write_rgb(w, rgb, 3 * 64), DJ_OK);
    CHECK_EQ_INT(dj_video_writer_frames(w), 3);
    CHECK_EQ_INT(dj_video_writer_write_rgb(w, rgb, 3 * 64 - 1), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "stride");
    CHECK_EQ_INT(dj_video_writer_write_rgb(w, NULL, 3 * 64), DJ_ERR_INVALID);
    CHECK(file_exists(part));
    CHECK(!file_exists(path));
    dj_video_writer_abort(w);
    CHECK(!file_exists(part));
    CHECK(!file_exists(path));
}

/* The same frames and options give the same bytes (mp4 and mkv), from
 * whatever source buffer. */
static void test_writer_deterministic(void) {
    const char *names[2][2] = {{"det_a.mp4", "det_b.mp4"}, {"det_a.mkv", "det_b.mkv"}};
    for (int k = 0; k < 2; k++) {
        char a[512], b[512];
        tmp_path(a, sizeof a, names[k][0]);
        tmp_path(b, sizeof b, names[k][1]);
        dj_video_writer_options o;
        dj_video_writer_options_default(&o, 64, 48);
        o.codec = h264_or_mpeg4();
        o.max_b_frames = 2;
        o.gop = 4;
        CHECK_EQ_INT(write_pattern(a, &o, 9), DJ_OK);
        CHECK_EQ_INT(write_pattern(b, &o, 9), DJ_OK);
        CHECK_MSG(same_file(a, b), "%s and %s differ", a, b);
        /* the source buffer's alignment and stride do not matter */
        for (int off = 1; off < 4; off++) {
            CHECK_EQ_INT(write_pattern_at(b, &o, 9, off, 5 * off), DJ_OK);
            CHECK_MSG(same_file(a, b), "%s and %s differ (source offset %d)", a, b, off);
        }
        o.gop = 5;
        CHECK_EQ_INT(write_pattern(b, &o, 9), DJ_OK);
        CHECK_MSG(!same_file(a, b), "a different GOP wrote the same bytes");
    }
}

/* ---- motion scenes: rendering ---------------------------------------------- */

static void test_class_names(void) {
    const char *want[] = {"translate_right", "translate_left", "translate_up", "translate_down",
                          "rotate_cw",       "rotate_ccw",     "zoom_in",      "zoom_out"};
    for (int c = 0; c < DJ_SYNTH_MAX_CLASSES; c++)
        CHECK(strcmp(dj_synth_class_name(c), want[c]) == 0);
    CHECK(dj_synth_class_name(-1) == NULL);
    CHECK(dj_synth_class_name(DJ_SYNTH_MAX_CLASSES) == NULL);
}

static void test_render_bad_params(void) {
    dj_synth_params p;
    dj_synth_params_default(&p, 32, 32, 4);
    uint8_t *buf = malloc(32 * 32 * 3 * 4);
    CHECK_EQ_INT(dj_synth_render_clip(&p, 1, DJ_SYNTH_MAX_CLASSES, buf, NULL), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "class 8 is out of range");
    CHECK_EQ_INT(dj_synth_render_clip(&p, 1, -1, buf, NULL), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_synth_render_clip(NULL, 1, 0, buf, NULL), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_synth_render_clip(&p, 1, 0, NULL, NULL), DJ_ERR_INVALID);
    p.width = 4;
    CHECK_EQ_INT(dj_synth_render_clip(&p, 1, 0, buf, NULL), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "frame size 4x32");
    dj_synth_params_default(&p, 32, 32, 0);
    CHECK_EQ_INT(dj_synth_render_clip(&p, 1, 0, buf, NULL), DJ_ERR_INVALID);
    dj_synth_params_default(&p, 32, 32, 4);
    p.noise = -1;
    CHECK_EQ_INT(dj_synth_render_clip(&p, 1, 0, buf, NULL), DJ_ERR_INVALID);
    dj_synth_params_default(&p, 32, 32, 4);
    p.speed_min = 0.5f; /* above speed_max */
    CHECK_EQ_INT(dj_synth_render_clip(&p, 1, 0, buf, NULL), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "motion range");
    free(buf);
}

/* Same seed: same bytes; another seed: other bytes. The first frame of a
 * clip is the same in every class whose object keeps its size (class only
 * sets the rates of motion; a zoom starts from another size, see
 * test_single_frame_statistics), later frames are not. */
static void test_render_deterministic(void) {
    enum { W = 40, H = 32, T = 5 };
    size_t n = (size_t)W * H * 3 * T, f0 = (size_t)W * H * 3;
    uint8_t *a = malloc(n), *b = malloc(n);
    dj_synth_params p;
    dj_synth_params_default(&p, W, H, T);
    CHECK_EQ_INT(dj_synth_render_clip(&p, 42, DJ_SYNTH_ZOOM_IN, a, NULL), DJ_OK);
    CHECK_EQ_INT(dj_synth_render_clip(&p, 42, DJ_SYNTH_ZOOM_IN, b, NULL), DJ_OK);
    CHECK(memcmp(a, b, n) == 0);
    CHECK_EQ_INT(dj_synth_render_clip(&p, 43, DJ_SYNTH_ZOOM_IN, b, NULL), DJ_OK);
    CHECK(memcmp(a, b, f0) != 0);
    uint8_t *first = malloc(f0);
    CHECK_EQ_INT(dj_synth_render_clip(&p, 42, DJ_SYNTH_TRANSLATE_RIGHT, b, NULL), DJ_OK);
    memcpy(first, b, f0);
    for (int c = 0; c < DJ_SYNTH_MAX_CLASSES; c++) {
        if (c == DJ_SYNTH_ZOOM_IN)
            continue;
        CHECK_EQ_INT(dj_synth_render_clip(&p, 42, c, b, NULL), DJ_OK);
        if (c < DJ_SYNTH_ZOOM_IN)
            CHECK_MSG(memcmp(first, b, f0) == 0, "class %d changes the first frame", c);
        CHECK_MSG(memcmp(a + f0, b + f0, n - f0) != 0, "class %d moves like zoom_in", c);
    }
    free(first);
    /* frames use the whole range of colours, not a flat image */
    int lo = 255, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    CHECK_MSG(hi - lo > 60, "contrast %d", hi - lo);
    free(a);
    free(b);
}

/* Clip seeds differ by split, class and index. */
static void test_clip_seed(void) {
    uint64_t s = dj_synth_clip_seed(7, 0, 0, 0);
    CHECK(s == dj_synth_clip_seed(7, 0, 0, 0));
    CHECK(s != dj_synth_clip_seed(8, 0, 0, 0));
    CHECK(s != dj_synth_clip_seed(7, 1, 0, 0));
    CHECK(s != dj_synth_clip_seed(7, 0, 1, 0));
    CHECK(s != dj_synth_clip_seed(7, 0, 0, 1));
}

/* ---- motion scenes: the motion is the class --------------------------------- */

typedef struct clip {
    int w, h, t;
    uint8_t *rgb;  /* [t][h][w][3] */
    uint8_t *mask; /* [t][h][w] */
    uint8_t *near; /* [t][h][w]: within 2 pixels of the main object, so its edge counts */
} clip;

static void clip_dilate(clip *c) {
    for (int t = 0; t < c->t; t++)
        for (int y = 0; y < c->h; y++)
            for (int x = 0; x < c->w; x++) {
                int hit = 0;
                for (int dy = -2; dy <= 2 && !hit; dy++)
                    for (int dx = -2; dx <= 2 && !hit; dx++)
                        hit = c->mask[((size_t)t * c->h + (y + dy + c->h) % c->h) * c->w + (x + dx + c->w) % c->w];
                c->near[((size_t)t * c->h + y) * c->w + x] = (uint8_t)hit;
            }
}

static void clip_render(clip *c, const dj_synth_params *p, uint64_t seed, int cls) {
    c->w = p->width;
    c->h = p->height;
    c->t = p->frames;
    c->rgb = malloc((size_t)3 * c->w * c->h * c->t);
    c->mask = malloc((size_t)c->w * c->h * c->t);
    c->near = malloc((size_t)c->w * c->h * c->t);
    CHECK_EQ_INT(dj_synth_render_clip(p, seed, cls, c->rgb, c->mask), DJ_OK);
    clip_dilate(c);
}

static void clip_free(clip *c) {
    free(c->rgb);
    free(c->mask);
    free(c->near);
}

static int wrapi(int x, int n) { return ((x % n) + n) % n; }

/* Circular mean position (pixel index units) of the main object in frame t
 * (the world wraps). */
static void mask_centre(const clip *c, int t, double *cx, double *cy, int *area) {
    double sx = 0, cxs = 0, sy = 0, cys = 0;
    int n = 0;
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++)
            if (c->mask[((size_t)t * c->h + y) * c->w + x]) {
                sx += sin(2 * PI * x / c->w);
                cxs += cos(2 * PI * x / c->w);
                sy += sin(2 * PI * y / c->h);
                cys += cos(2 * PI * y / c->h);
                n++;
            }
    *cx = c->w * atan2(sx, cxs) / (2 * PI);
    *cy = c->h * atan2(sy, cys) / (2 * PI);
    *area = n;
}

/* Sum of absolute differences between the selected pixels (sel: c->mask,
 * the main object, or c->near, with a 2-pixel ring around it) of frame t
 * and frame t+1 at the positions p' = centre + scale * R(angle) (p - centre)
 * + (dx, dy), the world wrapping around. */
static double pair_cost(const clip *c, const uint8_t *sel, int t, double cx, double cy, double angle, double scale,
                        int dx, int dy) {
    double ca = cos(angle) * scale, sa = sin(angle) * scale, sum = 0;
    int n = 0;
    size_t fs = (size_t)3 * c->w * c->h;
    for (int y = 0; y < c->h; y++) {
        for (int x = 0; x < c->w; x++) {
            if (!sel[((size_t)t * c->h + y) * c->w + x])
                continue;
            double ux = x - cx, uy = y - cy;
            ux -= c->w * floor(ux / c->w + 0.5); /* nearest image around the centre */
            uy -= c->h * floor(uy / c->h + 0.5);
            double fx = cx + ca * ux - sa * uy + dx, fy = cy + sa * ux + ca * uy + dy;
            int x0 = (int)floor(fx), y0 = (int)floor(fy);
            double ax = fx - x0, ay = fy - y0;
            const uint8_t *p = c->rgb + fs * t + 3 * ((size_t)y * c->w + x);
            for (int k = 0; k < 3; k++) { /* bilinear: sub-pixel motion counts */
                double q = 0;
                for (int j = 0; j < 4; j++) {
                    int xx = wrapi(x0 + (j & 1), c->w), yy = wrapi(y0 + (j >> 1), c->h);
                    double wgt = ((j & 1) ? ax : 1 - ax) * ((j >> 1) ? ay : 1 - ay);
                    q += wgt * c->rgb[fs * (t + 1) + 3 * ((size_t)yy * c->w + xx) + k];
                }
                sum += fabs(p[k] - q);
            }
            n++;
        }
    }
    return n ? sum / n : 1e9;
}

/* The best (shift) between frames t and t+1 for the main object. */
static void best_shift(const clip *c, int t, int range, int *bx, int *by) {
    double best = 1e18, cx, cy;
    int area;
    mask_centre(c, t, &cx, &cy, &area);
    for (int dy = -range; dy <= range; dy++)
        for (int dx = -range; dx <= range; dx++) {
            double cost = pair_cost(c, c->mask, t, cx, cy, 0, 1, dx, dy);
            if (cost < best) {
                best = cost;
                *bx = dx;
                *by = dy;
            }
        }
}

/* The best rotation (kind 0, degrees) or log zoom (kind 1, hundredths)
 * between frames t and t+1, allowing the camera jitter's small shift: the
 * shift is found first, then refined by +-1 pixel with each candidate. */
static int best_turn_or_zoom(const clip *c, int t, int kind, int range) {
    double best = 1e18, cx, cy;
    int area, arg = 0, sx = 0, sy = 0;
    mask_centre(c, t, &cx, &cy, &area);
    best_shift(c, t, 2, &sx, &sy);
    for (int k = -range; k <= range; k++)
        for (int dy = sy - 1; dy <= sy + 1; dy++)
            for (int dx = sx - 1; dx <= sx + 1; dx++) {
                double angle = kind == 0 ? k * PI / 180 : 0, scale = kind == 1 ? exp(k * 0.01) : 1;
                double cost = pair_cost(c, c->near, t, cx, cy, angle, scale, dx, dy);
                if (cost < best) {
                    best = cost;
                    arg = k;
                }
            }
    return arg;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Translations: summed over the clip, the main object's block-matching
 * shift points in the class's direction, at the speed the class allows. */
static void test_motion_translation(void) {
    enum { S = 64, T = 10 };
    dj_synth_params p;
    dj_synth_params_default(&p, S, S, T);
    static const int dir[4][2] = {{1, 0}, {-1, 0}, {0, -1}, {0, 1}};
    for (int cls = DJ_SYNTH_TRANSLATE_RIGHT; cls <= DJ_SYNTH_TRANSLATE_DOWN; cls++) {
        for (int k = 0; k < 3; k++) {
            clip c;
            clip_render(&c, &p, dj_synth_clip_seed(5, 0, cls, k), cls);
            int sx = 0, sy = 0;
            for (int t = 0; t + 1 < T; t++) {
                int dx = 0, dy = 0;
                best_shift(&c, t, 5, &dx, &dy);
                sx += dx;
                sy += dy;
            }
            int along = sx * dir[cls][0] + sy * dir[cls][1], across = abs(sx * dir[cls][1] + sy * dir[cls][0]);
            double lo = p.speed_min * S * (T - 1) - 2 * p.jitter - 3, hi = p.speed_max * S * (T - 1) + 2 * p.jitter + 3;
            CHECK_MSG(along >= lo && along <= hi, "%s seed %d: moved %d px along, expected %.1f..%.1f",
                      dj_synth_class_name(cls), k, along, lo, hi);
            CHECK_MSG(across <= 2 * p.jitter + 3, "%s seed %d: moved %d px across", dj_synth_class_name(cls), k,
                      across);
            clip_free(&c);
        }
    }
}

/* Rotations and zooms: the median per-frame rotation (zoom) of the main
 * object has the class's sign in every clip, and over four clips the middle
 * of those medians lies in the class's range (the estimator underrates the
 * turn of some smooth sprites by a few degrees, so one clip alone may read
 * low); the other kind of motion, which the estimator cannot fit well when
 * the object does move, stays near zero (|median| <= 3 in 48 clips tried:
 * 45 within 2). */
static void test_motion_rotation_zoom(void) {
    enum { S = 48, T = 8, K = 4 };
    dj_synth_params p;
    dj_synth_params_default(&p, S, S, T);
    for (int cls = DJ_SYNTH_ROTATE_CW; cls <= DJ_SYNTH_ZOOM_OUT; cls++) {
        int kind = cls >= DJ_SYNTH_ZOOM_IN, sign = (cls == DJ_SYNTH_ROTATE_CW || cls == DJ_SYNTH_ZOOM_IN) ? 1 : -1;
        double lo = kind ? 100 * p.zoom_min : p.spin_min, hi = kind ? 100 * p.zoom_max : p.spin_max;
        int meds[K];
        for (int k = 0; k < K; k++) {
            clip c;
            clip_render(&c, &p, dj_synth_clip_seed(9, 0, cls, k), cls);
            int est[T], other[T];
            for (int t = 0; t + 1 < T; t++) {
                est[t] = best_turn_or_zoom(&c, t, kind, 12);
                other[t] = best_turn_or_zoom(&c, t, !kind, 12);
            }
            qsort(est, T - 1, sizeof(int), cmp_int);
            qsort(other, T - 1, sizeof(int), cmp_int);
            int med = est[(T - 1) / 2] * sign, med_other = other[(T - 1) / 2];
            meds[k] = med;
            CHECK_MSG(med >= 1 && med <= hi + 2, "%s seed %d: median %s %d, expected 1..%.1f",
                      dj_synth_class_name(cls), k, kind ? "zoom" : "turn", med, hi + 2);
            CHECK_MSG(abs(med_other) <= 3, "%s seed %d: median %s %d, expected about 0",
                      dj_synth_class_name(cls), k, kind ? "turn" : "zoom", med_other);
            clip_free(&c);
        }
        qsort(meds, K, sizeof(int), cmp_int);
        int mid = meds[K / 2]; /* the upper middle of four */
        CHECK_MSG(mid >= lo - 2 && mid <= hi + 2, "%s: middle median %s %d over %d clips, expected %.1f..%.1f",
                  dj_synth_class_name(cls), kind ? "zoom" : "turn", mid, K, lo, hi);
    }
}

/* A zoom is steady and stays in range: in a calm scene, the main object's
 * visible area grows (zoom_in) or shrinks (zoom_out) at every frame by
 * about exp(2 * rate), with no jump (scene version 2 cycled the size and
 * cross-faded two copies instead), and over a clip long enough for the
 * asked rate (0.06 x 23 frames = 1.38) the whole change is capped to the
 * scene's span (log size 1.0: area x e^2 at most). */
static void test_motion_zoom_steady(void) {
    enum { S = 64, T = 24 };
    dj_synth_params p;
    dj_synth_params_default(&p, S, S, T);
    p.zoom_min = p.zoom_max = 0.06f;
    p.noise = p.jitter = 0;
    p.distractors = 0;
    const double rate = 1.0 / (T - 1); /* the cap: span 1.0 over 23 frames */
    for (int cls = DJ_SYNTH_ZOOM_IN; cls <= DJ_SYNTH_ZOOM_OUT; cls++) {
        int sign = cls == DJ_SYNTH_ZOOM_IN ? 1 : -1;
        for (int k = 0; k < 3; k++) {
            clip c;
            clip_render(&c, &p, dj_synth_clip_seed(11, 0, cls, k), cls);
            double cx, cy;
            int a0, a1, first = 0, last = 0;
            for (int t = 0; t + 1 < T; t++) {
                mask_centre(&c, t, &cx, &cy, &a0);
                mask_centre(&c, t + 1, &cx, &cy, &a1);
                if (t == 0)
                    first = a0;
                last = a1;
                double step = sign * log((double)a1 / a0) / 2; /* log size change */
                CHECK_MSG(step > 0.4 * rate && step < 1.8 * rate, "%s seed %d frame %d: log size changes by %.4f, "
                          "expected about %.4f", dj_synth_class_name(cls), k, t, step, rate);
            }
            double whole = sign * log((double)last / first) / 2;
            CHECK_MSG(whole > 0.85 && whole < 1.1, "%s seed %d: log size changes by %.3f over the clip, expected 1.0",
                      dj_synth_class_name(cls), k, whole);
            clip_free(&c);
        }
    }
}

/* A translation class neither turns nor zooms, and a rotation does not move. */
static void test_motion_static_parts(void) {
    enum { S = 48, T = 6 };
    dj_synth_params p;
    dj_synth_params_default(&p, S, S, T);
    p.jitter = 0;
    p.noise = 0;
    p.distractors = 0;
    clip c;
    clip_render(&c, &p, 77, DJ_SYNTH_ROTATE_CCW);
    for (int t = 0; t + 1 < T; t++) {
        int dx = 9, dy = 9;
        double cx0, cy0, cx1, cy1;
        int a0, a1;
        mask_centre(&c, t, &cx0, &cy0, &a0);
        mask_centre(&c, t + 1, &cx1, &cy1, &a1);
        CHECK_MSG(fabs(cx1 - cx0) < 1.0 && fabs(cy1 - cy0) < 1.0, "rotation moved the centre by %.2f, %.2f",
                  cx1 - cx0, cy1 - cy0);
        CHECK_MSG(abs(a1 - a0) <= a0 / 10 + 4, "rotation changed the area %d -> %d", a0, a1);
        best_shift(&c, t, 0, &dx, &dy);
        CHECK(dx == 0 && dy == 0);
    }
    clip_free(&c);
}

/* ---- motion scenes: a single frame does not tell the class ------------------- */

enum { NFEAT = 10 };
static const char *const feat_names[NFEAT] = {"mean R",     "mean G",   "mean B",   "contrast",
                                              "object area", "object x", "object R", "object G",
                                              "object B",   "x displacement"};

/* Features of frame t of a clip: colour means, contrast, the main object's
 * area, horizontal position and colour; and, over the whole clip, its horizontal
 * displacement (a temporal feature, for the power check). */
static void frame_features(const clip *c, int t, double f[NFEAT]) {
    size_t n = (size_t)c->w * c->h;
    const uint8_t *p = c->rgb + 3 * n * t;
    double s[3] = {0}, sq = 0;
    for (size_t i = 0; i < n; i++) {
        double l = (p[3 * i] + p[3 * i + 1] + p[3 * i + 2]) / 3.0;
        for (int k = 0; k < 3; k++)
            s[k] += p[3 * i + k];
        sq += l * l;
    }
    double mean_l = (s[0] + s[1] + s[2]) / (3.0 * n);
    for (int k = 0; k < 3; k++)
        f[k] = s[k] / n;
    f[3] = sqrt(sq / n - mean_l * mean_l);
    double cx, cy, cx0, cy0;
    int area, area0;
    mask_centre(c, t, &cx, &cy, &area);
    mask_centre(c, 0, &cx0, &cy0, &area0);
    f[4] = area;
    f[5] = cos(2 * PI * cx / c->w); /* position on the wrapped axis */
    double o[3] = {0};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3 && c->mask[n * t + i]; k++)
            o[k] += p[3 * i + k];
    for (int k = 0; k < 3; k++)
        f[6 + k] = area ? o[k] / area : 0;
    double d = 0;
    for (int u = 0; u + 1 < c->t; u++) {
        double ax, ay, bx, by;
        int aa, ba;
        mask_centre(c, u, &ax, &ay, &aa);
        mask_centre(c, u + 1, &bx, &by, &ba);
        double step = bx - ax;
        d += step - c->w * floor(step / c->w + 0.5);
    }
    f[9] = d;
}

/* Per class, the mean of each single-frame feature of a frame taken
 * anywhere in the clip (frame k mod T of clip k: a network does not know
 * where in the video its window starts) lies within 4 standard errors of
 * the mean over all classes — the zooms' object size included, since the
 * fixed sizes of the other classes are drawn from where a zoom passes;
 * the temporal
 * feature (displacement) separates translate_right from translate_left by
 * far more, so the comparison has the power to see a difference. */
static void test_single_frame_statistics(void) {
    enum { S = 32, T = 8, K = 40, C = DJ_SYNTH_MAX_CLASSES };
    dj_synth_params p;
    dj_synth_params_default(&p, S, S, T);
    static double feats[C][K][NFEAT];
    for (int cls = 0; cls < C; cls++)
        for (int k = 0; k < K; k++) {
            clip c;
            clip_render(&c, &p, dj_synth_clip_seed(1234, 0, cls, k), cls);
            frame_features(&c, k % T, feats[cls][k]);
            clip_free(&c);
        }
    for (int f = 0; f < NFEAT; f++) {
        double mean = 0, var = 0, cm[C];
        for (int cls = 0; cls < C; cls++) {
            cm[cls] = 0;
            for (int k = 0; k < K; k++)
                cm[cls] += feats[cls][k][f] / K;
            mean += cm[cls] / C;
        }
        for (int cls = 0; cls < C; cls++)
            for (int k = 0; k < K; k++)
                var += (feats[cls][k][f] - cm[cls]) * (feats[cls][k][f] - cm[cls]) / (C * (K - 1));
        double se = sqrt(var / K) + 1e-9;
        if (f == NFEAT - 1) { /* temporal: must separate right from left */
            double z = (cm[DJ_SYNTH_TRANSLATE_RIGHT] - cm[DJ_SYNTH_TRANSLATE_LEFT]) / se;
            CHECK_MSG(z > 8, "x displacement separates right from left by only %.1f standard errors", z);
            continue;
        }
        for (int cls = 0; cls < C; cls++)
            CHECK_MSG(fabs(cm[cls] - mean) <= 4 * se, "%s: class %s mean %.2f vs all %.2f (standard error %.2f)",
                      feat_names[f], dj_synth_class_name(cls), cm[cls], mean, se);
    }
}

/* ---- test clips ---------------------------------------------------------------- */

static void test_testclip_pattern(void) {
    enum { W = 128, H = 96 };
    uint8_t *rgb = malloc(3 * W * H);
    for (int i = 0; i < 256; i++) {
        CHECK_EQ_INT(dj_synth_testclip_render(i, W, H, rgb), DJ_OK);
        CHECK_EQ_INT(dj_synth_testclip_read_index(rgb, W, H, 3 * W), i);
    }
    /* consecutive frames differ outside the index blocks too */
    uint8_t *next = malloc(3 * W * H);
    CHECK_EQ_INT(dj_synth_testclip_render(11, W, H, next), DJ_OK);
    CHECK_EQ_INT(dj_synth_testclip_render(10, W, H, rgb), DJ_OK);
    CHECK(memcmp(rgb + 3 * W * 40, next + 3 * W * 40, 3 * W * (H - 40)) != 0);
    /* a frame that is not a test frame reads as -1 */
    memset(rgb, 0, 3 * W * H);
    CHECK_EQ_INT(dj_synth_testclip_read_index(rgb, W, H, 3 * W), -1);
    memset(rgb, 255, 3 * W * H);
    CHECK_EQ_INT(dj_synth_testclip_read_index(rgb, W, H, 3 * W), -1);
    CHECK_EQ_INT(dj_synth_testclip_read_index(NULL, W, H, 3 * W), -1);
    CHECK_EQ_INT(dj_synth_testclip_read_index(rgb, W, H, W), -1);
    CHECK_EQ_INT(dj_synth_testclip_render(256, W, H, rgb), DJ_ERR_RANGE);
    CHECK_EQ_INT(dj_synth_testclip_render(-1, W, H, rgb), DJ_ERR_RANGE);
    CHECK_EQ_INT(dj_synth_testclip_render(0, 32, 32, rgb), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "too small");
    CHECK_EQ_INT(dj_synth_testclip_render(0, W, H, NULL), DJ_ERR_INVALID);
    free(rgb);
    free(next);
}

/* Every clip listed in the manifest decodes to its frame count and size with
 * the frames in order; all lossless clips decode to the same pictures; a
 * second run writes the same bytes. */
static void test_testclips_generate(void) {
    char dir[512], path[700];
    tmp_path(dir, sizeof dir, "testclips");
    int written = -1;
    CHECK_EQ_INT(dj_synth_testclips_generate(dir, 14, 64, 48, &written), DJ_OK);
    CHECK(written >= 2); /* mpeg4 and ffv1 are part of libavcodec itself */
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    size_t n = 0;
    char *text = (char *)slurp(path, &n);
    CHECK(text != NULL);
    if (!text)
        return;
    text = realloc(text, n + 1);
    text[n] = '\0';
    cJSON *m = cJSON_Parse(text);
    free(text);
    cJSON *files = cJSON_GetObjectItem(m, "files");
    CHECK_EQ_INT(cJSON_GetArraySize(files), written);
    uint8_t *reference = NULL;
    int lossless_count = 0;
    for (int i = 0; i < cJSON_GetArraySize(files); i++) {
        cJSON *e = cJSON_GetArrayItem(files, i);
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(e, "file"));
        snprintf(path, sizeof path, "%s/%s", dir, file ? file : "?");
        decoded d;
        CHECK_MSG(decode_file(path, &d) == 0, "%s does not decode", path);
        CHECK_EQ_INT(d.frames, 14);
        CHECK_EQ_INT(cJSON_GetObjectItem(e, "frames")->valueint, 14);
        CHECK_EQ_INT(d.width, 64);
        CHECK_EQ_INT(d.height, 48);
        CHECK_MSG(strcmp(d.codec, cJSON_GetStringValue(cJSON_GetObjectItem(e, "codec"))) == 0, "%s: codec %s",
                  file, d.codec);
        for (int t = 0; t < d.frames; t++)
            CHECK_MSG(dj_synth_testclip_read_index(d.rgb + (size_t)t * 3 * 64 * 48, 64, 48, 3 * 64) == t,
                      "%s: frame %d reads as %d", file, t,
                      dj_synth_testclip_read_index(d.rgb + (size_t)t * 3 * 64 * 48, 64, 48, 3 * 64));
        if (cJSON_IsTrue(cJSON_GetObjectItem(e, "lossless")) && d.frames == 14) {
            lossless_count++;
            if (!reference) {
                reference = d.rgb;
                d.rgb = NULL;
            } else {
                CHECK_MSG(memcmp(reference, d.rgb, (size_t)14 * 3 * 64 * 48) == 0,
                          "%s decodes differently from the first lossless clip", file);
            }
        }
        decoded_free(&d);
    }
    CHECK(lossless_count >= 1);
    free(reference);
    /* a second run writes the same bytes */
    char dir2[512], a[800], b[800];
    tmp_path(dir2, sizeof dir2, "testclips2");
    CHECK_EQ_INT(dj_synth_testclips_generate(dir2, 14, 64, 48, NULL), DJ_OK);
    for (int i = 0; i < cJSON_GetArraySize(files); i++) {
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(files, i), "file"));
        snprintf(a, sizeof a, "%s/%s", dir, file ? file : "?");
        snprintf(b, sizeof b, "%s/%s", dir2, file ? file : "?");
        CHECK_MSG(same_file(a, b), "%s differs between two runs", file);
    }
    cJSON_Delete(m);
    CHECK_EQ_INT(dj_synth_testclips_generate(dir, 0, 64, 48, NULL), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_synth_testclips_generate(dir, 257, 64, 48, NULL), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_synth_testclips_generate(dir, 4, 66, 49, NULL), DJ_ERR_INVALID);
    CHECK_EQ_INT(dj_synth_testclips_generate("", 4, 64, 48, NULL), DJ_ERR_INVALID);
    char below_file[800]; /* a folder cannot be made below a file */
    snprintf(below_file, sizeof below_file, "%s/manifest.json/x", dir);
    CHECK_EQ_INT(dj_synth_testclips_generate(below_file, 4, 64, 48, NULL), DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "manifest.json/x");
}

/* ---- the motion data set on disk ------------------------------------------------ */

static void motion_small(dj_synth_motion_options *o, const char *dir) {
    dj_synth_motion_options_default(o);
    o->out_dir = dir;
    o->classes = 2;
    o->per_class = 2;
    o->val_per_class = 1;
    o->frames = 8;
    o->width = o->height = 32;
    o->seed = 3;
}

static void test_motion_generate(void) {
    char a[512], b[512], c[512], path[800];
    tmp_path(a, sizeof a, "motion_a");
    tmp_path(b, sizeof b, "motion_b/nested");
    tmp_path(c, sizeof c, "motion_c");
    dj_synth_motion_options o;
    motion_small(&o, a);
    o.threads = 2;
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_OK);
    motion_small(&o, b);
    o.threads = 1;
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_OK);
    motion_small(&o, c);
    o.seed = 4;
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_OK);
    const char *splits[2] = {"train", "val"};
    for (int s = 0; s < 2; s++)
        for (int cls = 0; cls < 2; cls++)
            for (int i = 0; i < (s ? 1 : 2); i++) {
                const char *name = dj_synth_class_name(cls);
                char pa[800], pb[800], pc[800];
                snprintf(pa, sizeof pa, "%s/%s/%s/%s_%04d.mp4", a, splits[s], name, name, i);
                snprintf(pb, sizeof pb, "%s/%s/%s/%s_%04d.mp4", b, splits[s], name, name, i);
                snprintf(pc, sizeof pc, "%s/%s/%s/%s_%04d.mp4", c, splits[s], name, name, i);
                decoded d;
                CHECK_MSG(decode_file(pa, &d) == 0, "%s does not decode", pa);
                CHECK_EQ_INT(d.frames, 8);
                CHECK_EQ_INT(d.width, 32);
                CHECK_EQ_INT(d.height, 32);
                decoded_free(&d);
                CHECK_MSG(same_file(pa, pb), "%s differs between 2 threads and 1", pa);
                CHECK_MSG(!same_file(pa, pc), "%s is the same with another seed", pa);
            }
    snprintf(path, sizeof path, "%s/train/%s", a, dj_synth_class_name(2));
    CHECK(!file_exists(path)); /* only 2 classes */
    snprintf(path, sizeof path, "%s/train/translate_right/translate_right_0002.mp4", a);
    CHECK(!file_exists(path)); /* only 2 per class */
    const char *lists[3] = {"classes.txt", "train/classes.txt", "val/classes.txt"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", a, lists[k]);
        size_t n = 0;
        char *text = (char *)slurp(path, &n);
        CHECK(text && n == strlen("translate_right\ntranslate_left\n") &&
              memcmp(text, "translate_right\ntranslate_left\n", n) == 0);
        free(text);
    }
    snprintf(path, sizeof path, "%s/manifest.json", a);
    size_t n = 0;
    char *text = (char *)slurp(path, &n);
    CHECK(text != NULL);
    if (text) {
        text = realloc(text, n + 1);
        text[n] = '\0';
        cJSON *m = cJSON_Parse(text);
        CHECK_EQ_INT(cJSON_GetObjectItem(m, "clips")->valueint, 6);
        CHECK_EQ_INT(cJSON_GetObjectItem(m, "seed")->valueint, 3);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(m, "classes")), 2);
        cJSON_Delete(m);
        free(text);
    }
    char pb[800];
    snprintf(pb, sizeof pb, "%s/manifest.json", b);
    CHECK_MSG(same_file(path, pb), "the manifests differ between 2 threads and 1");
}

/* Without a validation split the class folders sit directly in DIR. */
static void test_motion_generate_flat(void) {
    char dir[512], path[800];
    tmp_path(dir, sizeof dir, "motion_flat");
    dj_synth_motion_options o;
    motion_small(&o, dir);
    o.val_per_class = 0;
    o.per_class = 1;
    o.classes = 1;
    o.codec = "mpeg4";
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_OK);
    snprintf(path, sizeof path, "%s/translate_right/translate_right_0000.mp4", dir);
    decoded d;
    CHECK_MSG(decode_file(path, &d) == 0, "%s does not decode", path);
    CHECK_STR_CONTAINS(d.codec, "mpeg4");
    CHECK_EQ_INT(d.frames, 8);
    decoded_free(&d);
    snprintf(path, sizeof path, "%s/train", dir);
    CHECK(!file_exists(path));
}

static void test_motion_generate_errors(void) {
    char dir[512], file[600];
    tmp_path(dir, sizeof dir, "motion_err");
    dj_synth_motion_options o;
    motion_small(&o, dir);
    o.classes = 9;
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "there are 8 motion classes, asked for 9 (--classes)");
    motion_small(&o, dir);
    o.classes = 0;
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_ERR_INVALID);
    motion_small(&o, dir);
    o.width = 33;
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "(--size)");
    motion_small(&o, dir);
    o.per_class = 0;
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_ERR_INVALID);
    motion_small(&o, dir);
    o.frames = 1;
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "(--frames)");
    motion_small(&o, dir);
    o.codec = "no-such-codec";
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), "encoder 'no-such-codec' is not in this build");
    motion_small(&o, NULL);
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "(--out)");
    CHECK(!file_exists(dir)); /* nothing written for bad options */
    /* the output is a file, not a folder */
    tmp_path(file, sizeof file, "motion_file");
    FILE *f = fopen(file, "w");
    if (f)
        fclose(f);
    motion_small(&o, file);
    CHECK_EQ_INT(dj_synth_motion_generate(&o), DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "not a folder");
    CHECK_EQ_INT(dj_synth_motion_generate(NULL), DJ_ERR_INVALID);
}

int main(void) {
    av_log_set_level(AV_LOG_ERROR);
    DJ_RUN(test_encoder_resolve);
    DJ_RUN(test_writer_roundtrip);
    DJ_RUN(test_writer_lossless_content);
    DJ_RUN(test_writer_bad_codec);
    DJ_RUN(test_writer_bad_path);
    DJ_RUN(test_writer_container_codec_mismatch);
    DJ_RUN(test_writer_odd_size);
    DJ_RUN(test_writer_bad_options);
    DJ_RUN(test_writer_zero_frames);
    DJ_RUN(test_writer_partial_name);
    DJ_RUN(test_writer_deterministic);
    DJ_RUN(test_class_names);
    DJ_RUN(test_render_bad_params);
    DJ_RUN(test_render_deterministic);
    DJ_RUN(test_clip_seed);
    DJ_RUN(test_motion_translation);
    DJ_RUN(test_motion_rotation_zoom);
    DJ_RUN(test_motion_zoom_steady);
    DJ_RUN(test_motion_static_parts);
    DJ_RUN(test_single_frame_statistics);
    DJ_RUN(test_testclip_pattern);
    DJ_RUN(test_testclips_generate);
    DJ_RUN(test_motion_generate);
    DJ_RUN(test_motion_generate_flat);
    DJ_RUN(test_motion_generate_errors);
    return dj_test_finish();
}
