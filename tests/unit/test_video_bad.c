/* test_video_bad.c — hostile and broken inputs for probe, index and reader:
 * each gives a clear error naming the file, never a crash, hang or leak
 * (this binary also runs under ASan+UBSan). Tests run as root, for whom
 * chmod 000 does not stop reading, so "lost access" is tested by the file
 * vanishing or being replaced between indexing and reading. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/test.h"
#include "video_ref.h"

static char base_mp4[512], base_mkv[512];

static int make_base(void) {
    if (base_mp4[0])
        return 1;
    if (!ref_have_ffmpeg())
        return 0;
    const char *d = dj_test_tmpdir();
    char args[1024];
    snprintf(base_mp4, sizeof base_mp4, "%s/base.mp4", d);
    snprintf(base_mkv, sizeof base_mkv, "%s/base.mkv", d);
    snprintf(args, sizeof args,
             "-f lavfi -i testsrc2=size=96x64:rate=25 -frames:v 50 -pix_fmt yuv420p -c:v libx264 -bf 2 -g 10 "
             "-movflags +faststart '%s'", base_mp4);
    if (ref_ffmpeg(args) != 0)
        return base_mp4[0] = 0;
    snprintf(args, sizeof args, "-i '%s' -c copy '%s'", base_mp4, base_mkv);
    if (ref_ffmpeg(args) != 0)
        return base_mp4[0] = 0;
    return 1;
}

static long file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Writes the first `n` bytes of src (optionally xor-ing `flip` bytes from
 * `at`) to dst. */
static int copy_cut(const char *src, const char *dst, long n, long at, long flip) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    int ok = in && out;
    for (long i = 0; ok && i < n; i++) {
        int c = fgetc(in);
        if (c == EOF)
            break;
        if (i >= at && i < at + flip)
            c ^= 0x5a;
        fputc(c, out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return ok;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

static dj_status count_cb(void *arg, const dj_frame *f) {
    (*(int64_t *)arg)++;
    return f->width > 0 ? DJ_OK : DJ_ERR_INTERNAL;
}

/* probe, index and a full read of path must either work or fail with a
 * message naming path. Returns 1 when everything worked. */
static int try_everything(const char *path) {
    int ok = 1;
    dj_video_info info;
    if (dj_video_probe(path, &info) != DJ_OK) {
        CHECK_STR_CONTAINS(dj_error_message(), path);
        ok = 0;
    }
    dj_video_index *ix = NULL;
    if (dj_video_index_build(path, &ix) != DJ_OK) {
        CHECK_STR_CONTAINS(dj_error_message(), path);
        return 0;
    }
    dj_video_reader *r = NULL;
    if (dj_video_reader_open(path, ix, NULL, &r) != DJ_OK) {
        CHECK_STR_CONTAINS(dj_error_message(), path);
        dj_video_index_free(ix);
        return 0;
    }
    int64_t n = ix->nframes < 64 ? ix->nframes : 64;
    int64_t ks[64];
    for (int64_t i = 0; i < n; i++)
        ks[i] = i;
    int64_t got = 0;
    if (dj_video_reader_read(r, ks, n, count_cb, &got) != DJ_OK) {
        CHECK_STR_CONTAINS(dj_error_message(), path);
        ok = 0;
    } else {
        CHECK_EQ_INT(got, n);
    }
    int64_t last[] = {ix->nframes - 1, ix->nframes - 1};
    got = 0;
    if (dj_video_reader_read(r, last, 2, count_cb, &got) != DJ_OK) {
        CHECK_STR_CONTAINS(dj_error_message(), path);
        ok = 0;
    }
    int64_t bad = 0;
    if (dj_video_index_verify(ix, &bad) != DJ_OK)
        CHECK_STR_CONTAINS(dj_error_message(), path);
    dj_video_reader_free(r);
    dj_video_index_free(ix);
    return ok;
}

static void test_bad_missing_file(void) {
    dj_video_info info;
    CHECK(dj_video_probe("/nonexistent/clip.mp4", &info) == DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), "/nonexistent/clip.mp4");
    dj_video_reader *r = NULL;
    CHECK(dj_video_reader_open("/nonexistent/clip.mp4", NULL, NULL, &r) != DJ_OK);
    CHECK(r == NULL);
    CHECK(dj_video_probe(NULL, &info) == DJ_ERR_INVALID);
}

static void test_bad_zero_bytes(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/empty.mp4", dj_test_tmpdir());
    write_bytes(p, "", 0);
    dj_video_info info;
    CHECK(dj_video_probe(p, &info) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), p);
    CHECK(!try_everything(p));
}

static void test_bad_directory(void) {
    dj_video_info info;
    CHECK(dj_video_probe(dj_test_tmpdir(), &info) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), dj_test_tmpdir());
}

static void test_bad_random_bytes(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/random.mp4", dj_test_tmpdir());
    unsigned char buf[65536];
    uint32_t s = 7;
    for (size_t i = 0; i < sizeof buf; i++) {
        s = s * 1103515245u + 12345u;
        buf[i] = (unsigned char)(s >> 16);
    }
    write_bytes(p, buf, sizeof buf);
    CHECK(!try_everything(p));
}

static void test_bad_truncated(void) {
    if (!make_base())
        SKIP("the ffmpeg tool or libx264 is not available");
    const char *bases[] = {base_mp4, base_mkv};
    for (int b = 0; b < 2; b++) {
        long size = file_size(bases[b]);
        double cuts[] = {0.001, 0.05, 0.3, 0.6, 0.95};
        for (int c = 0; c < 5; c++) {
            char p[600];
            snprintf(p, sizeof p, "%s/cut%d_%d.%s", dj_test_tmpdir(), b, c, b ? "mkv" : "mp4");
            copy_cut(bases[b], p, (long)(size * cuts[c]), 0, 0);
            try_everything(p); /* works on a prefix or fails clearly; never crashes */
        }
        char p[600];
        snprintf(p, sizeof p, "%s/cut%d_last.%s", dj_test_tmpdir(), b, b ? "mkv" : "mp4");
        copy_cut(bases[b], p, size - 1, 0, 0);
        try_everything(p);
    }
    char p[600];
    snprintf(p, sizeof p, "%s/cut_header.mp4", dj_test_tmpdir());
    copy_cut(base_mp4, p, 100, 0, 0);
    CHECK(!try_everything(p)); /* the header itself is cut: unusable */
}

static void test_bad_corrupt_middle(void) {
    if (!make_base())
        SKIP("the ffmpeg tool or libx264 is not available");
    const char *bases[] = {base_mp4, base_mkv};
    for (int b = 0; b < 2; b++) {
        long size = file_size(bases[b]);
        for (int c = 0; c < 4; c++) {
            char p[600];
            snprintf(p, sizeof p, "%s/flip%d_%d.%s", dj_test_tmpdir(), b, c, b ? "mkv" : "mp4");
            copy_cut(bases[b], p, size, size / 2 + c * 997, 16 + c * 200);
            try_everything(p);
        }
    }
}

static void test_bad_wrong_extension(void) {
    if (!make_base())
        SKIP("the ffmpeg tool or libx264 is not available");
    char p[600];
    snprintf(p, sizeof p, "%s/really_mkv.mp4", dj_test_tmpdir());
    copy_cut(base_mkv, p, file_size(base_mkv), 0, 0);
    dj_video_info info;
    CHECK(dj_video_probe(p, &info) == DJ_OK);
    CHECK_EQ_INT(info.frames, 50);
    CHECK_STR_CONTAINS(info.container, "matroska");
    CHECK(try_everything(p));
}

static void test_bad_audio_only(void) {
    if (!ref_have_ffmpeg())
        SKIP("the ffmpeg tool is not installed");
    char p[600], args[800];
    snprintf(p, sizeof p, "%s/audio.mka", dj_test_tmpdir());
    snprintf(args, sizeof args, "-f lavfi -i sine=frequency=440:duration=0.5 -c:a pcm_s16le '%s'", p);
    if (ref_ffmpeg(args) != 0)
        SKIP("cannot make an audio file");
    dj_video_info info;
    CHECK(dj_video_probe(p, &info) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "no video stream");
    CHECK_STR_CONTAINS(dj_error_message(), p);
}

static void test_bad_absurd_dimensions(void) {
    const char *heads[] = {"YUV4MPEG2 W100000 H100000 F25:1 C420jpeg\nFRAME\n",
                           "YUV4MPEG2 W16000 H16000 F25:1 C420jpeg\nFRAME\n",
                           "YUV4MPEG2 W0 H64 F25:1 C420jpeg\nFRAME\n"};
    for (int i = 0; i < 3; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/huge%d.y4m", dj_test_tmpdir(), i);
        char buf[4096];
        memset(buf, 0x80, sizeof buf);
        size_t n = strlen(heads[i]);
        memcpy(buf, heads[i], n);
        write_bytes(p, buf, sizeof buf);
        dj_video_info info;
        CHECK(dj_video_probe(p, &info) != DJ_OK);
        CHECK_STR_CONTAINS(dj_error_message(), p);
        dj_video_reader *r = NULL;
        CHECK(dj_video_reader_open(p, NULL, NULL, &r) != DJ_OK);
    }
    char p[600];
    snprintf(p, sizeof p, "%s/huge1.y4m", dj_test_tmpdir());
    dj_video_info info;
    dj_video_probe(p, &info);
    CHECK_STR_CONTAINS(dj_error_message(), "exceeds the limit");
}

static void test_bad_vanished_or_replaced(void) {
    if (!make_base())
        SKIP("the ffmpeg tool or libx264 is not available");
    char p[600], args[1200];
    snprintf(p, sizeof p, "%s/vanish.mp4", dj_test_tmpdir());
    copy_cut(base_mp4, p, file_size(base_mp4), 0, 0);
    dj_video_index *ix = NULL;
    CHECK(dj_video_index_build(p, &ix) == DJ_OK);
    if (!ix)
        return;
    unlink(p);
    dj_video_reader *r = NULL;
    CHECK(dj_video_reader_open(p, ix, NULL, &r) == DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), p);
    /* replaced by another video of the same size and codec */
    snprintf(args, sizeof args,
             "-f lavfi -i testsrc=size=96x64:rate=30 -frames:v 20 -pix_fmt yuv420p -c:v libx264 -g 5 '%s'", p);
    CHECK(ref_ffmpeg(args) == 0);
    CHECK(dj_video_reader_open(p, ix, NULL, &r) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "changed since it was indexed");
    CHECK_STR_CONTAINS(dj_error_message(), p);
    /* vanishing while a reader is open: the open file keeps working */
    dj_video_index_free(ix);
    CHECK(dj_video_index_build(p, &ix) == DJ_OK);
    CHECK(dj_video_reader_open(p, ix, NULL, &r) == DJ_OK);
    unlink(p);
    int64_t ks[] = {3, 19}, got = 0;
    if (r)
        CHECK(dj_video_reader_read(r, ks, 2, count_cb, &got) == DJ_OK);
    CHECK_EQ_INT(got, 2);
    dj_video_reader_free(r);
    dj_video_index_free(ix);
}

/* A playlist (HLS, ffconcat) would make FFmpeg open the files it names:
 * dojo refuses every nested open, so such a file is an error, not a way to
 * read other files. */
static void test_bad_playlists_refused(void) {
    if (!make_base())
        SKIP("the ffmpeg tool or libx264 is not available");
    char p[600], text[1500];
    snprintf(p, sizeof p, "%s/list.m3u8", dj_test_tmpdir());
    snprintf(text, sizeof text, "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n%s\n#EXT-X-ENDLIST\n", base_mkv);
    write_bytes(p, text, strlen(text));
    dj_video_info info;
    CHECK(dj_video_probe(p, &info) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), p);
    snprintf(p, sizeof p, "%s/list.ffconcat", dj_test_tmpdir());
    snprintf(text, sizeof text, "ffconcat version 1.0\nfile '%s'\n", base_mkv);
    write_bytes(p, text, strlen(text));
    CHECK(dj_video_probe(p, &info) != DJ_OK);
    CHECK_STR_CONTAINS(dj_error_message(), p);
    /* the referenced clip itself is fine */
    CHECK(dj_video_probe(base_mkv, &info) == DJ_OK);
}

static void test_bad_time_limit(void) {
    if (!make_base())
        SKIP("the ffmpeg tool or libx264 is not available");
    dj_video_reader_options o = dj_video_reader_defaults();
    o.time_limit_s = 1e-9; /* everything takes longer than this */
    dj_video_reader *r = NULL;
    CHECK(dj_video_reader_open(base_mp4, NULL, &o, &r) != DJ_OK);
    CHECK(r == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), base_mp4);
}

int main(void) {
    DJ_RUN(test_bad_missing_file);
    DJ_RUN(test_bad_zero_bytes);
    DJ_RUN(test_bad_directory);
    DJ_RUN(test_bad_random_bytes);
    DJ_RUN(test_bad_truncated);
    DJ_RUN(test_bad_corrupt_middle);
    DJ_RUN(test_bad_wrong_extension);
    DJ_RUN(test_bad_audio_only);
    DJ_RUN(test_bad_absurd_dimensions);
    DJ_RUN(test_bad_vanished_or_replaced);
    DJ_RUN(test_bad_playlists_refused);
    DJ_RUN(test_bad_time_limit);
    return dj_test_finish();
}
