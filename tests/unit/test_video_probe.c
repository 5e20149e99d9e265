/* test_video_probe.c — dj_video_probe fields on clips made with the ffmpeg
 * tool (known size, rate, GOP, rotation, variable frame rate, a header that
 * lies about the duration) and on real clips when present (rotations, a
 * fragmented MP4's broken duration, millisecond timestamps' frame rates,
 * the keyframes of an AVI without presentation timestamps). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>

#include "support/test.h"
#include "video_ref.h"

static int make(const char *name, const char *args, char *path, size_t size) {
    snprintf(path, size, "%s/%s", dj_test_tmpdir(), name);
    char cmd[1500];
    snprintf(cmd, sizeof cmd, "%s '%s'", args, path);
    return ref_ffmpeg(cmd) == 0;
}

static void test_probe_basic_fields(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    char p[600];
    if (!make("basic.mp4", "-f lavfi -i testsrc2=size=160x90:rate=30 -frames:v 45 -pix_fmt yuv420p -c:v libx264 "
                           "-profile:v high -bf 2 -g 10 -x264-params scenecut=0", p, sizeof p))
        SKIP("libx264 is not available");
    dj_video_info in;
    CHECK(dj_video_probe(p, &in) == DJ_OK);
    CHECK_STR_CONTAINS(in.container, "mp4");
    CHECK(strcmp(in.codec, "h264") == 0);
    CHECK(strcmp(in.profile, "High") == 0);
    CHECK(strcmp(in.pix_fmt, "yuv420p") == 0);
    CHECK_EQ_INT(in.width, 160);
    CHECK_EQ_INT(in.height, 90);
    CHECK_EQ_INT(in.rotation, 0);
    CHECK_CLOSE(in.fps_avg, 30.0, 1e-6, 0);
    CHECK_CLOSE(in.fps_real, 30.0, 1e-6, 0);
    CHECK_EQ_INT(in.vfr, 0);
    CHECK_CLOSE(in.duration_s, 1.5, 0, 0.02);
    CHECK_EQ_INT(in.frames, 45);
    CHECK_EQ_INT(in.keyframes, 5);
    CHECK_CLOSE(in.mean_gop, 9.0, 1e-9, 0);
    CHECK(in.bit_rate > 0);
    CHECK_EQ_INT(in.stream_index, 0);
}

static void test_probe_rotation(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    /* 180 degrees: the one angle whose direction conventions cannot differ
     * (the clockwise sense is checked on the real samples below) */
    char src[600], p[600], args[1400];
    if (!make("norot.mp4", "-f lavfi -i testsrc2=size=64x48:rate=25 -frames:v 5 -pix_fmt yuv420p -c:v libx264", src,
              sizeof src))
        SKIP("libx264 is not available");
    snprintf(args, sizeof args, "-i '%s' -c copy -metadata:s:v:0 rotate=180", src);
    if (!make("rot.mp4", args, p, sizeof p))
        SKIP("cannot remux with a rotation");
    dj_video_info in;
    CHECK(dj_video_probe(src, &in) == DJ_OK);
    CHECK_EQ_INT(in.rotation, 0);
    CHECK(dj_video_probe(p, &in) == DJ_OK);
    CHECK_EQ_INT(in.rotation, 180);
    CHECK_EQ_INT(in.width, 64); /* coded size, before rotation */
    dj_video_index *ix = NULL;
    CHECK(dj_video_index_build(p, &ix) == DJ_OK);
    if (ix)
        CHECK_EQ_INT(ix->rotation, 180);
    dj_video_index_free(ix);
}

static void test_probe_vfr(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    char p[600];
    if (!make("vfr.mkv", "-f lavfi -i testsrc2=size=64x48:rate=25 -frames:v 30 -pix_fmt yuv420p "
                         "-vf setpts='if(lt(N\\,15)\\,N\\,2*N-15)/25/TB' -fps_mode passthrough -c:v libx264", p, sizeof p))
        SKIP("cannot make a variable-frame-rate clip");
    dj_video_info in;
    CHECK(dj_video_probe(p, &in) == DJ_OK);
    CHECK_EQ_INT(in.vfr, 1);
    CHECK_EQ_INT(in.frames, 30);
}

static void test_probe_other_codecs(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    char p[600];
    if (!make("m4.avi", "-f lavfi -i testsrc2=size=64x48:rate=20 -frames:v 21 -c:v mpeg4 -g 7", p, sizeof p))
        SKIP("mpeg4 encoder missing");
    dj_video_info in;
    CHECK(dj_video_probe(p, &in) == DJ_OK);
    CHECK(strcmp(in.codec, "mpeg4") == 0);
    CHECK_STR_CONTAINS(in.container, "avi");
    CHECK_EQ_INT(in.frames, 21);
    CHECK_EQ_INT(in.keyframes, 3);
    CHECK_CLOSE(in.fps_avg, 20.0, 1e-6, 0);
}

static void test_probe_real_rotations(void) {
    const char *real = dj_test_real_data();
    if (!real)
        SKIP("no real clips (set DOJO_REAL_DATA or add ../shared/data/real)");
    const int rots[] = {0, 90, 180, 270};
    for (int i = 0; i < 4; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/decord_samples/video_%d.mov", real, rots[i]);
        dj_video_info in;
        if (dj_video_probe(p, &in) != DJ_OK) {
            printf("SKIP %s: %s\n", p, dj_error_message());
            continue;
        }
        CHECK_EQ_INT(in.rotation, rots[i]);
    }
}

/* Overwrites the 32-bit duration of every version-0 `box` (mvhd, mdhd) in
 * the MP4 at path; returns how many were patched. */
static int patch_mp4_durations(const char *path, const char *box, uint32_t duration) {
    FILE *f = fopen(path, "r+b");
    if (!f)
        return 0;
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    int patched = 0;
    for (size_t i = 0; i + 24 <= n; i++)
        if (!memcmp(buf + i, box, 4) && buf[i + 4] == 0) { /* version 0: 32-bit times */
            for (int b = 0; b < 4; b++)
                buf[i + 20 + b] = (unsigned char)(duration >> (24 - 8 * b));
            patched++;
        }
    int ok = fseek(f, 0, SEEK_SET) == 0 && fwrite(buf, 1, n, f) == n;
    fclose(f);
    return ok ? patched : 0;
}

/* A fragmented MP4's header duration of 0xFFFFFFFF ticks (libavformat then
 * says 279620 s for these 45 frames, and 1 b/s) is not believed: the
 * frames' timestamps give the duration, and the bit rate follows it. */
static void test_probe_broken_header_duration(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    char src[600], p[600], args[1400];
    if (!make("lying_src.mp4", "-f lavfi -i testsrc2=size=160x90:rate=30 -frames:v 45 -pix_fmt yuv420p -c:v libx264",
              src, sizeof src))
        SKIP("libx264 is not available");
    /* fragmented: the header's durations are the only ones before the frames */
    snprintf(args, sizeof args, "-i '%s' -c copy -movflags frag_keyframe+empty_moov", src);
    if (!make("lying.mp4", args, p, sizeof p))
        SKIP("cannot remux into a fragmented MP4");
    dj_video_info honest;
    CHECK(dj_video_probe(p, &honest) == DJ_OK);
    CHECK(patch_mp4_durations(p, "mvhd", 0xFFFFFFFFu) == 1 && patch_mp4_durations(p, "mdhd", 0xFFFFFFFFu) == 1);
    dj_video_info in;
    CHECK(dj_video_probe(p, &in) == DJ_OK);
    CHECK_EQ_INT(in.frames, 45);
    CHECK_CLOSE(in.duration_s, 1.5, 0, 1e-6);
    CHECK_CLOSE(in.fps_avg, 30.0, 1e-6, 0);
    CHECK_MSG(in.bit_rate > honest.bit_rate / 2 && in.bit_rate < honest.bit_rate * 2, "%lld b/s, %lld before",
              (long long)in.bit_rate, (long long)honest.bit_rate);
}

/* Real files whose headers mislead: a fragmented MP4 (duration field
 * 0xFFFFFFFF: 143165 s), Matroska and FLV with millisecond timestamps
 * (avg_frame_rate 1000); each 30 frames at about 30 a second. */
static void test_probe_real_misleading_headers(void) {
    const char *real = dj_test_real_data();
    if (!real)
        SKIP("no real clips (set DOJO_REAL_DATA or add ../shared/data/real)");
    const char *files[] = {"mp4/sample_fragmented.mp4", "mkv/sample.mkv", "flv/sample.flv", "mp4/sample.mp4"};
    for (int i = 0; i < 4; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/androidx_media/%s", real, files[i]);
        dj_video_info in;
        if (dj_video_probe(p, &in) != DJ_OK) {
            printf("SKIP %s: %s\n", p, dj_error_message());
            continue;
        }
        CHECK_EQ_INT(in.frames, 30);
        CHECK_MSG(in.duration_s > 0.95 && in.duration_s < 1.1, "%s: %g s", files[i], in.duration_s);
        CHECK_MSG(in.fps_avg > 29.5 && in.fps_avg < 30.5, "%s: %g fps", files[i], in.fps_avg);
        CHECK_MSG(in.bit_rate > 300000 && in.bit_rate < 3000000, "%s: %lld b/s", files[i], (long long)in.bit_rate);
    }
}

/* Keyframe packets of the file's first video stream, read here with
 * libavformat alone (the reference for the count); -1 on failure. */
static int64_t key_packets(const char *path) {
    AVFormatContext *fmt = NULL;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0)
        return -1;
    int64_t n = -1;
    int s = avformat_find_stream_info(fmt, NULL) >= 0 ? av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0)
                                                      : -1;
    AVPacket *pkt = av_packet_alloc();
    if (s >= 0 && pkt)
        for (n = 0; av_read_frame(fmt, pkt) >= 0; av_packet_unref(pkt))
            n += pkt->stream_index == s && (pkt->flags & AV_PKT_FLAG_KEY);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    return n;
}

/* MPEG-4 with B-frames in AVI: packets carry decode-order stamps only, the
 * decoder's frames come out one late, so matching stamps to packets puts
 * the keyframe flags on the wrong frames (the UCF101 sample read 0
 * keyframes); the count is of keyframe packets. */
static void test_probe_keyframes_without_pts(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    char p[600];
    if (!make("m4bf.avi", "-f lavfi -i testsrc2=size=64x48:rate=20 -frames:v 40 -c:v mpeg4 -bf 2 -g 10", p, sizeof p))
        SKIP("mpeg4 encoder missing");
    int64_t want = key_packets(p);
    CHECK(want >= 4);
    dj_video_info in;
    CHECK(dj_video_probe(p, &in) == DJ_OK);
    CHECK_EQ_INT(in.frames, 40);
    CHECK_EQ_INT(in.keyframes, want);
    CHECK_CLOSE(in.mean_gop, 40.0 / (double)want, 1e-9, 0);
    const char *real = dj_test_real_data();
    if (!real)
        return;
    char u[1200];
    snprintf(u, sizeof u, "%s/mmaction2_samples/ucf101_ApplyEyeMakeup_visual/test.avi", real);
    if (dj_video_probe(u, &in) == DJ_OK) {
        CHECK_EQ_INT(in.frames, 164);
        CHECK_EQ_INT(in.keyframes, key_packets(u));
        CHECK(in.keyframes >= 1);
    }
}

int main(void) {
    DJ_RUN(test_probe_basic_fields);
    DJ_RUN(test_probe_rotation);
    DJ_RUN(test_probe_vfr);
    DJ_RUN(test_probe_other_codecs);
    DJ_RUN(test_probe_real_rotations);
    DJ_RUN(test_probe_broken_header_duration);
    DJ_RUN(test_probe_real_misleading_headers);
    DJ_RUN(test_probe_keyframes_without_pts);
    return dj_test_finish();
}
