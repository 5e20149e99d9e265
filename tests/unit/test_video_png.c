/* test_video_png.c — dj_frame_write_png: the PNG decodes back (through the
 * reader itself, PNG being a one-frame video to FFmpeg) to the RGB24 picture
 * swscale makes of the frame, at native and requested sizes; bad paths and
 * sizes give clear errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libswscale/swscale.h>

#include "support/test.h"
#include "video_ref.h"

typedef struct png_case {
    const char *dir;
    int w, h;
    uint8_t *rgb; /* [h*w*3] our own conversion of the frame */
    int written;
} png_case;

static dj_status write_and_convert(void *arg, const dj_frame *f) {
    png_case *c = arg;
    char path[700];
    snprintf(path, sizeof path, "%s/f%lld_%dx%d.png", c->dir, (long long)f->index, c->w, c->h);
    DJ_TRY(dj_frame_write_png(f, c->w, c->h, path));
    int w = c->w ? c->w : f->width, h = c->h ? c->h : f->height;
    struct SwsContext *s = sws_getContext(f->width, f->height, f->format, w, h, AV_PIX_FMT_RGB24, SWS_BICUBIC,
                                          NULL, NULL, NULL);
    c->rgb = malloc((size_t)w * (h + 1) * 3 + 256); /* swscale's SIMD may write past the last pixel */
    uint8_t *dst[4] = {c->rgb};
    int ls[4] = {w * 3};
    if (s && c->rgb)
        sws_scale(s, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, ls);
    sws_freeContext(s);
    c->written = 1;
    return DJ_OK;
}

static void check_png(const char *clip, int64_t k, int w, int h, int expect_w, int expect_h) {
    png_case c = {dj_test_tmpdir(), w, h, NULL, 0};
    dj_video_reader *r = NULL;
    CHECK(dj_video_reader_open(clip, NULL, NULL, &r) == DJ_OK);
    if (!r)
        return;
    CHECK(dj_video_reader_read(r, &k, 1, write_and_convert, &c) == DJ_OK);
    dj_video_reader_free(r);
    CHECK(c.written);
    char path[700];
    snprintf(path, sizeof path, "%s/f%lld_%dx%d.png", c.dir, (long long)k, w, h);
    dj_video_info info;
    CHECK(dj_video_probe(path, &info) == DJ_OK);
    CHECK(strcmp(info.codec, "png") == 0);
    CHECK(strcmp(info.pix_fmt, "rgb24") == 0);
    CHECK_EQ_INT(info.width, expect_w);
    CHECK_EQ_INT(info.height, expect_h);
    ref_video back;
    CHECK_EQ_INT(ref_decode(path, &back, 1), 1);
    if (back.n == 1 && c.rgb) {
        CHECK_EQ_INT(back.f[0].size, expect_w * expect_h * 3);
        CHECK(memcmp(back.f[0].bytes, c.rgb, (size_t)expect_w * expect_h * 3) == 0);
    }
    ref_video_free(&back);
    free(c.rgb);
}

static void test_png_native_and_resized(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    char clip[600], args[900];
    snprintf(clip, sizeof clip, "%s/png_src.mkv", dj_test_tmpdir());
    snprintf(args, sizeof args, "-f lavfi -i testsrc2=size=90x50:rate=25 -frames:v 12 -pix_fmt yuv420p -c:v libx264 '%s'",
             clip);
    if (ref_ffmpeg(args) != 0)
        SKIP("libx264 is not available");
    check_png(clip, 7, 0, 0, 90, 50);
    check_png(clip, 11, 32, 20, 32, 20);
    check_png(clip, 0, 200, 100, 200, 100);
}

static dj_status write_to(void *arg, const dj_frame *f) {
    const char *path = arg;
    return dj_frame_write_png(f, 0, 0, path);
}

static void test_png_errors(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    char clip[600], args[900];
    snprintf(clip, sizeof clip, "%s/png_err.mp4", dj_test_tmpdir());
    snprintf(args, sizeof args, "-f lavfi -i testsrc2=size=32x32:rate=25 -frames:v 2 -pix_fmt yuv420p -c:v libx264 '%s'",
             clip);
    if (ref_ffmpeg(args) != 0)
        SKIP("libx264 is not available");
    dj_video_reader *r = NULL;
    CHECK(dj_video_reader_open(clip, NULL, NULL, &r) == DJ_OK);
    if (!r)
        return;
    int64_t k = 1;
    CHECK(dj_video_reader_read(r, &k, 1, write_to, (void *)"/nonexistent-dir/x.png") == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "/nonexistent-dir/x.png");
    CHECK(dj_frame_write_png(NULL, 0, 0, "/tmp/x.png") == DJ_ERR_INVALID);
    dj_video_reader_free(r);
}

/* Real phone-camera files displayed turned (90, 180, 270) or turned and
 * mirrored (the display matrix of sample_rotate_and_reflect.mp4): the PNG
 * is the picture the ffmpeg tool's autorotation shows, at its size and
 * within rounding (mean 1 level; the wrong turn or mirror measured 40-92). */
static void test_png_upright_like_ffmpeg(void) {
    const char *real = dj_test_real_data();
    if (!real)
        SKIP("no real clips (set DOJO_REAL_DATA or add ../shared/data/real)");
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    const struct {
        const char *file;
        int rotation, mirrored;
    } files[4] = {{"decord_samples/video_90.mov", 90, 0},
                  {"decord_samples/video_180.mov", 180, 0},
                  {"decord_samples/video_270.mov", 270, 0},
                  {"androidx_media/mp4/sample_rotate_and_reflect.mp4", 90, 1}};
    for (int i = 0; i < 4; i++) {
        char src[1200], got[700], want[700], args[2600];
        snprintf(src, sizeof src, "%s/%s", real, files[i].file);
        dj_video_info in;
        if (dj_video_probe(src, &in) != DJ_OK) {
            printf("SKIP %s: %s\n", src, dj_error_message());
            continue;
        }
        CHECK_EQ_INT(in.rotation, files[i].rotation);
        CHECK_EQ_INT(in.mirrored, files[i].mirrored);
        snprintf(got, sizeof got, "%s/upright_%d.png", dj_test_tmpdir(), i);
        snprintf(want, sizeof want, "%s/upright_%d_ffmpeg.png", dj_test_tmpdir(), i);
        dj_video_reader *r = NULL;
        int64_t k = 1;
        CHECK(dj_video_reader_open(src, NULL, NULL, &r) == DJ_OK);
        CHECK(r && dj_video_reader_read(r, &k, 1, write_to, got) == DJ_OK);
        dj_video_reader_free(r);
        snprintf(args, sizeof args, "-i '%s' -vf 'select=eq(n\\,1)' -frames:v 1 '%s'", src, want);
        CHECK(ref_ffmpeg(args) == 0);
        ref_video a, b;
        CHECK_EQ_INT(ref_decode(got, &a, 1), 1);
        CHECK_EQ_INT(ref_decode(want, &b, 1), 1);
        dj_video_info ga, gb;
        CHECK(dj_video_probe(got, &ga) == DJ_OK && dj_video_probe(want, &gb) == DJ_OK);
        CHECK_MSG(ga.width == gb.width && ga.height == gb.height, "%s: %dx%d, ffmpeg %dx%d", files[i].file, ga.width,
                  ga.height, gb.width, gb.height);
        if (a.n == 1 && b.n == 1 && a.f[0].size == b.f[0].size) {
            double sum = 0;
            for (int j = 0; j < a.f[0].size; j++)
                sum += abs(a.f[0].bytes[j] - b.f[0].bytes[j]);
            CHECK_MSG(sum / a.f[0].size < 2.0, "%s: mean difference %.2f from ffmpeg's upright frame", files[i].file,
                      sum / a.f[0].size);
        }
        ref_video_free(&a), ref_video_free(&b);
    }
}

int main(void) {
    DJ_RUN(test_png_native_and_resized);
    DJ_RUN(test_png_errors);
    DJ_RUN(test_png_upright_like_ffmpeg);
    return dj_test_finish();
}
