/* test_video_seek.c — exactness of the index-based reader: frame K read
 * through seeks equals, byte for byte on the decoded planes, frame K of
 * sequential decoding, for clips in several codecs and containers made here
 * with the ffmpeg tool, and on the shared real clips when present. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dojo/log.h"
#include "support/test.h"
#include "video_ref.h"

typedef struct clip_spec {
    const char *name; /* file name; its extension picks the container */
    const char *args; /* encoder arguments */
    int frames;
} clip_spec;

#define SRC "-f lavfi -i testsrc2=size=96x64:rate=25 -pix_fmt yuv420p"
static const clip_spec clips[] = {
    {"h264_bf3.mp4", SRC " -c:v libx264 -bf 3 -g 12 -x264-params scenecut=0", 60},
    {"h264_opengop.mkv", SRC " -c:v libx264 -bf 3 -g 10 -x264-params open-gop=1:scenecut=0", 50},
    {"h264_noB.avi", SRC " -c:v libx264 -preset ultrafast -bf 0 -g 7", 40},
    {"hevc.mkv", SRC " -c:v libx265 -x265-params keyint=12:min-keyint=12:bframes=3:log-level=error", 40},
    {"hevc.mp4", SRC " -c:v libx265 -tag:v hvc1 -x265-params keyint=9:bframes=2:log-level=error", 30},
    {"vp9.webm", SRC " -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -g 10 -b:v 200k", 40},
    {"av1.mkv", "-f lavfi -i testsrc2=size=64x48:rate=25 -pix_fmt yuv420p -c:v libaom-av1 -cpu-used 8 -g 8 -b:v 100k", 20},
    {"mpeg4.avi", SRC " -c:v mpeg4 -g 9 -q:v 5", 40},
    {"mpeg4_bf.mp4", SRC " -c:v mpeg4 -bf 2 -g 9 -q:v 5", 40},
    {"mpeg4_bf.avi", SRC " -c:v mpeg4 -bf 2 -g 9 -q:v 5", 40}, /* no timestamps but the decode order's */
};
enum { NCLIPS = sizeof clips / sizeof clips[0] };

static char clip_paths[NCLIPS][512];

/* Makes clip i once; returns its path, or NULL when the encoder is missing. */
static const char *clip_path(int i) {
    if (clip_paths[i][0])
        return clip_paths[i];
    char args[1024];
    snprintf(clip_paths[i], sizeof clip_paths[i], "%s/%s", dj_test_tmpdir(), clips[i].name);
    snprintf(args, sizeof args, "%s -frames:v %d '%s'", clips[i].args, clips[i].frames, clip_paths[i]);
    if (ref_ffmpeg(args) != 0) {
        clip_paths[i][0] = '\0';
        return NULL;
    }
    return clip_paths[i];
}

/* x264's defaults at GOP 32: 3 B-frames with a B-pyramid (the middle B of
 * each group is a reference, the two others are not), as bench_decode.sh
 * makes them. */
static const char *gop32_path(void) {
    static char path[512];
    if (path[0])
        return path;
    char args[1024];
    snprintf(path, sizeof path, "%s/gop32.mp4", dj_test_tmpdir());
    snprintf(args, sizeof args, SRC " -c:v libx264 -g 32 -x264-params scenecut=0 -frames:v 96 '%s'", path);
    if (ref_ffmpeg(args) != 0)
        path[0] = '\0';
    return path[0] ? path : NULL;
}

static uint64_t rng_state = 12345;
static uint64_t rng_next(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng_state >> 33;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Reads frames[] through r and compares each with the reference. */
static void check_read(const char *name, dj_video_reader *r, const ref_video *ref, const int64_t *frames, int64_t n) {
    ref_got got = {0};
    dj_status st = dj_video_reader_read(r, frames, n, ref_collect, &got);
    CHECK_MSG(st == DJ_OK, "%s: read failed: %s", name, dj_error_message());
    if (st != DJ_OK) {
        ref_got_free(&got);
        return;
    }
    CHECK_EQ_INT(got.n, n);
    for (int64_t j = 0; j < got.n && j < n; j++) {
        int64_t k = frames[j];
        CHECK_EQ_INT(got.index[j], k);
        if (k >= ref->n)
            continue;
        int same = got.bytes[j] && ref->f[k].bytes && got.size[j] == ref->f[k].size &&
                   memcmp(got.bytes[j], ref->f[k].bytes, (size_t)got.size[j]) == 0;
        CHECK_MSG(same, "%s: frame %lld differs from sequential decoding", name, (long long)k);
    }
    ref_got_free(&got);
}

/* Sets of frames: last, repeats, same GOP, across GOPs, random. */
static void check_sets(const char *name, dj_video_reader *r, const ref_video *ref, int64_t nf) {
    int64_t last[] = {nf - 1};
    int64_t rep[] = {0, 0, 2, 2, 2};
    int64_t gop[] = {5, 6, 8, 9};
    int64_t across[] = {1, nf / 2, nf / 2 + 1, nf - 2, nf - 1};
    int64_t backwards_first[] = {nf - 1};
    int64_t back[] = {3, 4};
    check_read(name, r, ref, last, 1);
    check_read(name, r, ref, rep, 5);
    check_read(name, r, ref, gop, 4);
    check_read(name, r, ref, across, 5);
    check_read(name, r, ref, backwards_first, 1);
    check_read(name, r, ref, back, 2); /* a later call may start before the last */
    for (int t = 0; t < 6; t++) {
        int64_t set[6];
        int m = 1 + (int)(rng_next() % 6);
        for (int j = 0; j < m; j++)
            set[j] = (int64_t)(rng_next() % (uint64_t)nf);
        qsort(set, (size_t)m, sizeof set[0], cmp_i64);
        check_read(name, r, ref, set, m);
    }
}

static void check_clip(int i, int threads, int skip_nonref) {
    const char *path = clip_path(i);
    if (!path) {
        printf("SKIP %s: the encoder is not available\n", clips[i].name);
        return;
    }
    ref_video ref;
    int64_t count = ref_decode(path, &ref, 1000);
    CHECK_MSG(count > 0, "%s: reference decode failed", path);
    dj_video_index *ix = NULL;
    dj_status st = dj_video_index_build(path, &ix);
    CHECK_MSG(st == DJ_OK, "%s: %s", path, dj_error_message());
    if (st == DJ_OK) {
        CHECK_EQ_INT(ix->nframes, count);
        CHECK_EQ_INT(ix->nframes, clips[i].frames);
        int64_t bad = -1;
        dj_video_index *vx = NULL;
        CHECK(dj_video_index_clone(ix, &vx) == DJ_OK);
        CHECK(dj_video_index_verify(vx, &bad) == DJ_OK);
        CHECK_MSG(bad == 0, "%s: verify found %lld mismatches", path, (long long)bad);
        dj_video_index_free(vx);
        dj_video_reader_options o = dj_video_reader_defaults();
        o.threads = threads;
        o.skip_nonref = skip_nonref;
        dj_video_reader *r = NULL;
        st = dj_video_reader_open(path, ix, &o, &r);
        CHECK_MSG(st == DJ_OK, "%s: %s", path, dj_error_message());
        if (st == DJ_OK) {
            check_sets(clips[i].name, r, &ref, ix->nframes);
            dj_video_stats s = dj_video_reader_stats(r);
            printf("# %s: %lld frames, %lld packets, flags %u; %lld decoded for %lld delivered, %lld seeks\n",
                   clips[i].name, (long long)ix->nframes, (long long)ix->npackets, ix->flags,
                   (long long)s.frames_decoded, (long long)s.frames_delivered, (long long)s.seeks);
            CHECK(s.seeks > 0);
            CHECK(s.frames_delivered > 0);
            CHECK(s.frames_decoded >= 1);
            CHECK(s.bytes_read > 0);
        }
        dj_video_reader_free(r);
    }
    dj_video_index_free(ix);
    ref_video_free(&ref);
}

#define CLIP_TEST(fn, i)                          \
    static void fn(void) {                        \
        if (!ref_have_ffmpeg())                   \
            SKIP("the ffmpeg tool is not installed"); \
        check_clip(i, 1, 1);                      \
    }
CLIP_TEST(test_seek_h264_bframes_mp4, 0)
CLIP_TEST(test_seek_h264_open_gop_mkv, 1)
CLIP_TEST(test_seek_h264_avi, 2)
CLIP_TEST(test_seek_hevc_mkv, 3)
CLIP_TEST(test_seek_hevc_mp4, 4)
CLIP_TEST(test_seek_vp9_webm, 5)
CLIP_TEST(test_seek_av1_mkv, 6)
CLIP_TEST(test_seek_mpeg4_avi, 7)
CLIP_TEST(test_seek_mpeg4_bframes_mp4, 8)

static void test_seek_threads_and_no_skip(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    check_clip(0, 2, 0);
    check_clip(3, 3, 0);
    check_clip(0, 2, 1);
    check_clip(1, 4, 1);
    check_clip(5, 2, 1);
    check_clip(8, 2, 1);
}

/* A second read continues without seeking when the next frame is ahead in
 * the same GOP; a frame asked twice is decoded once. */
static void test_seek_counters(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    const char *path = clip_path(2); /* no B-frames, GOP 7 */
    if (!path)
        SKIP("libx264 missing");
    dj_video_reader *r = NULL;
    CHECK(dj_video_reader_open(path, NULL, NULL, &r) == DJ_OK);
    if (!r)
        return;
    ref_got got = {0};
    int64_t a[] = {15, 15, 16}; /* keyframe 14 */
    CHECK(dj_video_reader_read(r, a, 3, ref_collect, &got) == DJ_OK);
    dj_video_stats s = dj_video_reader_stats(r);
    CHECK_EQ_INT(s.seeks, 1);
    CHECK_EQ_INT(s.frames_delivered, 3);
    CHECK_EQ_INT(s.frames_decoded, 3); /* 14, 15, 16 */
    int64_t b[] = {18};
    CHECK(dj_video_reader_read(r, b, 1, ref_collect, &got) == DJ_OK);
    s = dj_video_reader_stats(r);
    CHECK_EQ_INT(s.seeks, 1); /* same GOP ahead: no seek */
    CHECK_EQ_INT(s.frames_decoded, 5);
    int64_t c[] = {30};
    CHECK(dj_video_reader_read(r, c, 1, ref_collect, &got) == DJ_OK);
    s = dj_video_reader_stats(r);
    CHECK_EQ_INT(s.seeks, 2); /* later GOP: seek to keyframe 28 */
    CHECK_EQ_INT(s.frames_decoded, 8);
    CHECK_EQ_INT(got.index[4], 30);
    ref_got_free(&got);
    dj_video_reader_free(r);
}

/* drain_at_end 0 keeps the decoder going between calls: consecutive chunks
 * of one GOP need one seek; with the default drain, the second chunk seeks. */
static void test_seek_drain_option(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    const char *path = clip_path(0); /* B-frames, GOP 12 */
    if (!path)
        SKIP("libx264 missing");
    ref_video ref;
    CHECK(ref_decode(path, &ref, 1000) == 60);
    for (int drain = 0; drain <= 1; drain++) {
        dj_video_reader_options o = dj_video_reader_defaults();
        o.drain_at_end = drain;
        dj_video_reader *r = NULL;
        CHECK(dj_video_reader_open(path, NULL, &o, &r) == DJ_OK);
        if (!r)
            continue;
        int64_t a[] = {12, 13, 14, 15}, b[] = {16, 17, 18}, c[] = {19, 23};
        check_read("chunk-a", r, &ref, a, 4);
        check_read("chunk-b", r, &ref, b, 3);
        check_read("chunk-c", r, &ref, c, 2);
        dj_video_stats s = dj_video_reader_stats(r);
        CHECK_EQ_INT(s.seeks, drain ? 3 : 1);
        CHECK_EQ_INT(s.frames_delivered, 9);
        dj_video_reader_free(r);
    }
    ref_video_free(&ref);
}

/* The GOP-32 clip, its sequential decoding (*ref) and its index (*ix); NULL
 * (with a failed check, nothing left to free) when one of them fails. */
static const char *gop32_setup(ref_video *ref, dj_video_index **ix) {
    const char *path = gop32_path();
    *ix = NULL;
    CHECK(ref_decode(path, ref, 1000) == 96);
    CHECK(dj_video_index_build(path, ix) == DJ_OK);
    if (!*ix || ref->n != 96) {
        dj_video_index_free(*ix);
        ref_video_free(ref);
        return NULL;
    }
    return path;
}

/* One 16-frame clip at `start` with a fresh reader, compared with sequential
 * decoding; returns the frames the reader decoded (-1 on failure). */
static int64_t gop32_clip(const char *path, const dj_video_index *ix, const ref_video *ref, int64_t start, int skip) {
    dj_video_reader_options o = dj_video_reader_defaults();
    o.skip_nonref = skip;
    dj_video_reader *r = NULL;
    if (dj_video_reader_open(path, ix, &o, &r) != DJ_OK)
        return -1;
    int64_t k[16];
    for (int j = 0; j < 16; j++)
        k[j] = start + j;
    char name[64];
    snprintf(name, sizeof name, "gop32 skip=%d start=%lld", skip, (long long)start);
    check_read(name, r, ref, k, 16);
    int64_t decoded = dj_video_reader_stats(r).frames_decoded;
    dj_video_reader_free(r);
    return decoded;
}

/* Skipping non-reference frames nobody asked for (AVDISCARD_NONREF, the
 * default) on a B-pyramid clip: every delivered frame still equals
 * sequential decoding, and the decoder really decodes fewer frames: of the
 * pre-roll between the keyframe and the clip, only the references (I, P and
 * the middle B of each group, every second frame) instead of all of it. */
static void test_seek_nonref_skip_gop32(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    if (!gop32_path())
        SKIP("libx264 missing");
    ref_video ref;
    dj_video_index *ix = NULL;
    const char *path = gop32_setup(&ref, &ix);
    if (!path)
        return;
    CHECK(ix->frames[32].key && ix->frames[64].key && !ix->frames[63].key);
    /* a clip at a keyframe: no pre-roll, at most the references after its end */
    int64_t at_key = gop32_clip(path, ix, &ref, 32, 1);
    CHECK_MSG(at_key >= 16 && at_key <= 18, "clip at a keyframe decoded %lld frames", (long long)at_key);
    /* the last frame of a GOP: 31 frames of pre-roll, about 16 of them references */
    int64_t late_skip = gop32_clip(path, ix, &ref, 63, 1), late_all = gop32_clip(path, ix, &ref, 63, 0);
    CHECK_MSG(late_all >= 16 + 31, "without skipping %lld decoded", (long long)late_all);
    CHECK_MSG(late_skip >= 16 + 15 && late_skip <= 16 + 18, "with skipping %lld decoded", (long long)late_skip);
    /* every start in the middle GOP: decoded per delivered near 1.5, all exact */
    int64_t dec_skip = 0, dec_all = 0, delivered = 0;
    for (int64_t start = 32; start < 64; start += 3) {
        dec_skip += gop32_clip(path, ix, &ref, start, 1);
        dec_all += gop32_clip(path, ix, &ref, start, 0);
        delivered += 16;
    }
    double dpd_skip = (double)dec_skip / delivered, dpd_all = (double)dec_all / delivered;
    printf("# gop32: decoded per delivered %.3f with NONREF skipping, %.3f without\n", dpd_skip, dpd_all);
    CHECK_MSG(dpd_skip <= 1.6 && dpd_skip >= 1.3, "with skipping %.3f", dpd_skip);
    CHECK_MSG(dpd_all >= 1.8, "without skipping %.3f", dpd_all);
    dj_video_index_free(ix);
    ref_video_free(&ref);
}

/* Two clips starting in one GOP read in one call share the pre-roll: the
 * second costs no seek and no reference frame twice. */
static void test_seek_shared_preroll(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    if (!gop32_path())
        SKIP("libx264 missing");
    ref_video ref;
    dj_video_index *ix = NULL;
    const char *path = gop32_setup(&ref, &ix);
    if (!path)
        return;
    int64_t apart = gop32_clip(path, ix, &ref, 50, 1) + gop32_clip(path, ix, &ref, 44, 1);
    int64_t k[32];
    for (int j = 0; j < 16; j++) {
        k[j] = 44 + j;
        k[16 + j] = 50 + j;
    }
    qsort(k, 32, sizeof k[0], cmp_i64); /* overlapping frames are listed twice */
    dj_video_reader *r = NULL;
    CHECK(dj_video_reader_open(path, ix, NULL, &r) == DJ_OK);
    if (r) {
        check_read("shared", r, &ref, k, 32);
        dj_video_stats s = dj_video_reader_stats(r);
        CHECK_EQ_INT(s.frames_delivered, 32);
        CHECK_EQ_INT(s.seeks, 1);
        CHECK_MSG(s.frames_decoded * 10 < apart * 7, "shared %lld vs apart %lld", (long long)s.frames_decoded,
                  (long long)apart);
        dj_video_reader_free(r);
    }
    dj_video_index_free(ix);
    ref_video_free(&ref);
}

/* Reads 16 frames from `start` through r and checks them against ref. */
static void check_run(const char *name, dj_video_reader *r, const ref_video *ref, int64_t start) {
    int64_t k[16];
    for (int j = 0; j < 16; j++)
        k[j] = start + j;
    check_read(name, r, ref, k, 16);
}

/* One reader reopened from file to file (a loader worker's life): frames stay
 * those of sequential decoding; the decoder is kept between like streams
 * (same encoder settings, other pictures) and replaced for another codec; a
 * failed reopen leaves a reader that refuses to read until the next one. */
static void test_seek_reopen(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    const char *a = gop32_path(), *hevc = clip_path(3);
    if (!a || !hevc)
        SKIP("libx264 or libx265 missing");
    char b[600], args[1200];
    snprintf(b, sizeof b, "%s/gop32_other.mp4", dj_test_tmpdir());
    snprintf(args, sizeof args,
             "-f lavfi -i testsrc=size=96x64:rate=25 -pix_fmt yuv420p -c:v libx264 -g 32 -x264-params scenecut=0 "
             "-frames:v 96 '%s'", b);
    CHECK(ref_ffmpeg(args) == 0);
    char disguised[600];
    snprintf(disguised, sizeof disguised, "%s/matroska_named.mp4", dj_test_tmpdir());
    snprintf(args, sizeof args, "-i '%s' -c copy -f matroska '%s'", b, disguised);
    CHECK(ref_ffmpeg(args) == 0);
    ref_video ra, rb, rh;
    CHECK(ref_decode(a, &ra, 1000) == 96);
    CHECK(ref_decode(b, &rb, 1000) == 96);
    CHECK(ref_decode(hevc, &rh, 1000) == 40);
    CHECK(ra.f && rb.f && ra.f[40].size == rb.f[40].size && memcmp(ra.f[40].bytes, rb.f[40].bytes, (size_t)ra.f[40].size) != 0);
    dj_video_reader *r = NULL;
    CHECK(dj_video_reader_open(a, NULL, NULL, &r) == DJ_OK);
    if (r) {
        check_run("reopen a", r, &ra, 40);
        CHECK(dj_video_reader_reopen(r, b, NULL) == DJ_OK);
        check_run("reopen b", r, &rb, 40); /* the decoder saw a's frame 40 last */
        check_run("reopen b later", r, &rb, 70);
        CHECK_EQ_INT(dj_video_reader_stats(r).decoders_opened, 1);
        CHECK(dj_video_reader_reopen(r, hevc, NULL) == DJ_OK);
        check_run("reopen hevc", r, &rh, 20);
        CHECK_EQ_INT(dj_video_reader_stats(r).decoders_opened, 2);
        char missing[600];
        snprintf(missing, sizeof missing, "%s/nope.mp4", dj_test_tmpdir());
        CHECK(dj_video_reader_reopen(r, missing, NULL) == DJ_ERR_NOT_FOUND);
        CHECK_STR_CONTAINS(dj_error_message(), "nope.mp4");
        CHECK(dj_video_reader_index(r) == NULL);
        int64_t k0[] = {0};
        ref_got got = {0};
        CHECK(dj_video_reader_read(r, k0, 1, ref_collect, &got) == DJ_ERR_INVALID);
        CHECK_STR_CONTAINS(dj_error_message(), "no video");
        ref_got_free(&got);
        CHECK(dj_video_reader_reopen(r, a, NULL) == DJ_OK);
        check_run("reopen a again", r, &ra, 63);
        CHECK_EQ_INT(dj_video_reader_stats(r).decoders_opened, 3);
        /* a Matroska file named .mp4 after an MP4: the MP4 demuxer tried first
         * (a reopen to the same extension skips probing) fails, probing finds it */
        CHECK(dj_video_reader_reopen(r, disguised, NULL) == DJ_OK);
        check_run("reopen matroska named .mp4", r, &rb, 50);
        CHECK(dj_video_reader_reopen(r, b, NULL) == DJ_OK);
        check_run("reopen b after it", r, &rb, 30);
        CHECK(dj_video_reader_reopen(r, NULL, NULL) == DJ_ERR_INVALID);
        dj_video_reader_free(r);
    }
    ref_video_free(&ra);
    ref_video_free(&rb);
    ref_video_free(&rh);
}

static void test_seek_bad_lists(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    const char *path = clip_path(2);
    if (!path)
        SKIP("libx264 missing");
    dj_video_reader *r = NULL;
    CHECK(dj_video_reader_open(path, NULL, NULL, &r) == DJ_OK);
    if (!r)
        return;
    ref_got got = {0};
    int64_t down[] = {5, 3};
    CHECK(dj_video_reader_read(r, down, 2, ref_collect, &got) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "not ascending");
    CHECK_STR_CONTAINS(dj_error_message(), path);
    int64_t out[] = {40};
    CHECK(dj_video_reader_read(r, out, 1, ref_collect, &got) == DJ_ERR_RANGE);
    CHECK_STR_CONTAINS(dj_error_message(), "out of range");
    int64_t neg[] = {-1};
    CHECK(dj_video_reader_read(r, neg, 1, ref_collect, &got) == DJ_ERR_RANGE);
    CHECK(dj_video_reader_read(r, NULL, 0, NULL, NULL) == DJ_OK);
    CHECK_EQ_INT(got.n, 0);
    dj_video_reader_free(r);
}

/* A stream that does not start with a keyframe (its first keyframe packet
 * dropped): the decoder drops the frames before the next keyframe, and the
 * index must count and number frames as sequential decoding does. */
static void test_seek_no_leading_keyframe(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    char full[600], cut[600], args[1500];
    snprintf(full, sizeof full, "%s/lead_full.mkv", dj_test_tmpdir());
    snprintf(cut, sizeof cut, "%s/lead_cut.mkv", dj_test_tmpdir());
    snprintf(args, sizeof args, SRC " -frames:v 40 -c:v libx264 -bf 2 -g 10 -x264-params scenecut=0 '%s'", full);
    if (ref_ffmpeg(args) != 0)
        SKIP("libx264 is not available");
    snprintf(args, sizeof args, "-i '%s' -c copy -bsf:v noise=drop='lt(n\\,1)' '%s'", full, cut);
    if (ref_ffmpeg(args) != 0)
        SKIP("the noise bitstream filter cannot drop packets here");
    ref_video ref;
    int64_t count = ref_decode(cut, &ref, 1000);
    CHECK_EQ_INT(count, 30);
    dj_video_info info;
    CHECK(dj_video_probe(cut, &info) == DJ_OK);
    CHECK_EQ_INT(info.frames, count);
    dj_video_index *ix = NULL;
    CHECK(dj_video_index_build(cut, &ix) == DJ_OK);
    if (ix) {
        CHECK_EQ_INT(ix->nframes, count);
        CHECK(ix->flags & DJ_INDEX_VERIFIED);
        CHECK(ix->flags & DJ_INDEX_CORRECTED);
        dj_video_reader *r = NULL;
        CHECK(dj_video_reader_open(cut, ix, NULL, &r) == DJ_OK);
        if (r)
            check_sets("lead_cut.mkv", r, &ref, ix->nframes);
        dj_video_reader_free(r);
    }
    dj_video_index_free(ix);
    ref_video_free(&ref);
}

/* The same file read from memory (custom AVIOContext) gives the same
 * probe results and the same frames. */
static void test_seek_from_memory(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    for (int i = 0; i < NCLIPS; i += 3) {
        const char *path = clip_path(i);
        if (!path)
            continue;
        FILE *f = fopen(path, "rb");
        static uint8_t buf[1 << 21];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f)
            fclose(f);
        CHECK(n > 0 && n < sizeof buf);
        dj_video_info a, b;
        CHECK(dj_video_probe(path, &a) == DJ_OK);
        CHECK(dj_video_probe_memory(buf, n, "mem", &b) == DJ_OK);
        CHECK_EQ_INT(a.frames, b.frames);
        CHECK_EQ_INT(a.keyframes, b.keyframes);
        CHECK_EQ_INT(a.width, b.width);
        CHECK(strcmp(a.codec, b.codec) == 0);
        ref_video ref;
        CHECK(ref_decode(path, &ref, 1000) == a.frames);
        dj_video_reader *r = NULL;
        CHECK(dj_video_reader_open_memory(buf, n, "mem", NULL, &r) == DJ_OK);
        if (r) {
            int64_t ks[] = {0, a.frames / 2, a.frames - 1};
            check_read(clips[i].name, r, &ref, ks, 3);
        }
        dj_video_reader_free(r);
        ref_video_free(&ref);
    }
    dj_video_info c;
    CHECK(dj_video_probe_memory("garbage!", 8, "junk-buffer", &c) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), "junk-buffer");
}

/* ------------------------------------------------------------ real clips -- */

static int is_video_name(const char *n) {
    const char *ext[] = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".MOV", ".flv", ".ts", ".ps"};
    size_t ln = strlen(n);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t le = strlen(ext[i]);
        if (ln > le && strcmp(n + ln - le, ext[i]) == 0)
            return 1;
    }
    return 0;
}

/* One reader reopened at every real clip in turn, as a loader worker's:
 * decoders kept across like streams must give the same frames. */
static dj_video_reader *real_shared;

static void real_check_file(const char *path) {
    double t0 = dj_time_now();
    dj_video_info info;
    dj_status pst = dj_video_probe(path, &info);
    CHECK_MSG(pst == DJ_OK, "%s: probe: %s", path, dj_error_message());
    if (pst != DJ_OK)
        return;
    CHECK(info.frames > 0 && info.width > 0 && info.height > 0);
    /* keep the suite fast: decode-checks only for files of modest size */
#ifdef __SANITIZE_ADDRESS__
    const double budget = 10e6; /* pixels decoded per file: ASan is several times slower */
#else
    const double budget = 20e6;
#endif
    if ((double)info.width * info.height * info.frames > budget && !getenv("DOJO_TEST_REAL_FULL")) {
        printf("# %s: %lld frames %dx%d, probed only (DOJO_TEST_REAL_FULL=1 checks it)\n", path,
               (long long)info.frames, info.width, info.height);
        return;
    }
    const int64_t max_ref = 120; /* keep long files fast: frames beyond are counted, not kept */
    ref_video ref;
    int64_t count = ref_decode(path, &ref, max_ref);
    dj_video_index *ix = NULL;
    dj_status st = dj_video_index_build(path, &ix);
    CHECK_MSG(st == DJ_OK, "%s: %s", path, dj_error_message());
    if (st != DJ_OK || count <= 0) {
        CHECK_MSG(count > 0, "%s: reference decode failed", path);
        dj_video_index_free(ix);
        ref_video_free(&ref);
        return;
    }
    CHECK_EQ_INT(info.frames, ix->nframes);
    CHECK_MSG(ix->nframes == count, "%s: index has %lld frames, sequential decoding %lld", path,
              (long long)ix->nframes, (long long)count);
    dj_video_reader *r = NULL;
    st = dj_video_reader_open(path, ix, NULL, &r);
    CHECK_MSG(st == DJ_OK, "%s: %s", path, dj_error_message());
    if (st == DJ_OK) {
        int64_t lim = ref.n < ix->nframes ? ref.n : ix->nframes;
        int64_t set[4];
        for (int j = 0; j < 4; j++)
            set[j] = (int64_t)(rng_next() % (uint64_t)lim);
        qsort(set, 4, sizeof set[0], cmp_i64);
        check_read(path, r, &ref, set, 4);
        int64_t last[] = {lim - 1};
        check_read(path, r, &ref, last, 1);
        st = real_shared ? dj_video_reader_reopen(real_shared, path, ix) : dj_video_reader_open(path, ix, NULL, &real_shared);
        CHECK_MSG(st == DJ_OK, "%s: reopen: %s", path, dj_error_message());
        if (st == DJ_OK)
            check_read(path, real_shared, &ref, set, 4);
    }
    printf("# %s: %lld frames, %.2f s\n", path, (long long)ix->nframes, dj_time_now() - t0);
    dj_video_reader_free(r);
    dj_video_index_free(ix);
    ref_video_free(&ref);
}

static void real_walk(const char *dir, int *nfiles) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char names[128][256];
    int n = 0;
    while ((e = readdir(d)) && n < 128)
        if (e->d_name[0] != '.')
            snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        struct stat sb;
        if (stat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            real_walk(p, nfiles);
        else if (is_video_name(names[i]) && sb.st_size < 4 * 1024 * 1024) {
            real_check_file(p);
            (*nfiles)++;
        }
    }
}

static void test_seek_real_clips(void) {
    const char *real = dj_test_real_data();
    if (!real)
        SKIP("no real clips (set DOJO_REAL_DATA or add ../shared/data/real)");
    int n = 0;
    real_walk(real, &n);
    CHECK(n > 0);
    if (real_shared)
        printf("# one reader reopened at every clip opened %lld decoders\n",
               (long long)dj_video_reader_stats(real_shared).decoders_opened);
    dj_video_reader_free(real_shared);
    real_shared = NULL;
}

int main(void) {
    DJ_RUN(test_seek_h264_bframes_mp4);
    DJ_RUN(test_seek_h264_open_gop_mkv);
    DJ_RUN(test_seek_h264_avi);
    DJ_RUN(test_seek_hevc_mkv);
    DJ_RUN(test_seek_hevc_mp4);
    DJ_RUN(test_seek_vp9_webm);
    DJ_RUN(test_seek_av1_mkv);
    DJ_RUN(test_seek_mpeg4_avi);
    DJ_RUN(test_seek_mpeg4_bframes_mp4);
    DJ_RUN(test_seek_threads_and_no_skip);
    DJ_RUN(test_seek_counters);
    DJ_RUN(test_seek_nonref_skip_gop32);
    DJ_RUN(test_seek_shared_preroll);
    DJ_RUN(test_seek_reopen);
    DJ_RUN(test_seek_bad_lists);
    DJ_RUN(test_seek_drain_option);
    DJ_RUN(test_seek_from_memory);
    DJ_RUN(test_seek_no_leading_keyframe);
    DJ_RUN(test_seek_real_clips);
    return dj_test_finish();
}
