/* test_video_index.c — the data-set index: folder-per-class and list-file
 * inputs, labels and class names, save/load round trip, corrupt index files,
 * incremental re-scans of changed files, unusable videos left out. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/test.h"
#include "video_ref.h"

static char root[512];

static void put_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* root/cat/a.mp4 (30 frames), root/dog/b.mkv (20), root/dog/c.avi (12),
 * root/README.md */
static int make_tree(void) {
    if (root[0])
        return 1;
    if (!ref_have_ffmpeg())
        return 0;
    snprintf(root, sizeof root, "%s/data", dj_test_tmpdir());
    char p[700], args[1200];
    mkdir(root, 0777);
    snprintf(p, sizeof p, "%s/cat", root);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/dog", root);
    mkdir(p, 0777);
    const char *files[] = {"cat/a.mp4", "dog/b.mkv", "dog/c.avi"};
    const int frames[] = {30, 20, 12};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args,
                 "-f lavfi -i testsrc2=size=64x48:rate=25 -frames:v %d -pix_fmt yuv420p -c:v %s -g 8 '%s/%s'",
                 frames[i], i == 2 ? "mpeg4" : "libx264", root, files[i]);
        if (ref_ffmpeg(args) != 0)
            return root[0] = 0;
    }
    snprintf(p, sizeof p, "%s/README.md", root);
    put_file(p, "not a video\n");
    return 1;
}

static const dj_video_index *find(const dj_index *ix, const char *suffix) {
    for (int64_t i = 0; i < dj_index_count(ix); i++) {
        const char *p = dj_index_video(ix, i)->path;
        size_t a = strlen(p), b = strlen(suffix);
        if (a >= b && strcmp(p + a - b, suffix) == 0)
            return dj_index_video(ix, i);
    }
    return NULL;
}

static void test_index_folder_classes(void) {
    if (!make_tree())
        SKIP("the ffmpeg tool or its encoders are not available");
    dj_index *ix = NULL;
    dj_index_report rep;
    dj_index_build_options o = {0, NULL, 1};
    CHECK(dj_index_build(root, &o, &ix, &rep) == DJ_OK);
    if (!ix)
        return;
    CHECK_EQ_INT(dj_index_count(ix), 3);
    CHECK_EQ_INT(dj_index_class_count(ix), 2);
    CHECK(strcmp(dj_index_class_name(ix, 0), "cat") == 0);
    CHECK(strcmp(dj_index_class_name(ix, 1), "dog") == 0);
    CHECK(dj_index_class_name(ix, 2) == NULL);
    CHECK(dj_index_video(ix, 3) == NULL);
    const dj_video_index *a = find(ix, "cat/a.mp4"), *b = find(ix, "dog/b.mkv"), *c = find(ix, "dog/c.avi");
    CHECK(a && b && c);
    if (a && b && c) {
        CHECK_EQ_INT(a->label, 0);
        CHECK_EQ_INT(b->label, 1);
        CHECK_EQ_INT(c->label, 1);
        CHECK_EQ_INT(a->nframes, 30);
        CHECK_EQ_INT(b->nframes, 20);
        CHECK_EQ_INT(c->nframes, 12);
        CHECK_EQ_INT(a->end_frame, 30);
        CHECK_EQ_INT(a->width, 64);
        CHECK(a->file_size > 0);
    }
    CHECK_EQ_INT(rep.scanned, 3);
    CHECK_EQ_INT(rep.skipped, 0);
    dj_index_free(ix);
}

static int same_video(const dj_video_index *x, const dj_video_index *y) {
    return strcmp(x->path, y->path) == 0 && x->label == y->label && x->nframes == y->nframes &&
           x->npackets == y->npackets && x->file_size == y->file_size && x->file_mtime_ns == y->file_mtime_ns &&
           x->codec_id == y->codec_id && x->width == y->width && x->tb_den == y->tb_den && x->flags == y->flags &&
           memcmp(x->frames, y->frames, (size_t)x->nframes * sizeof *x->frames) == 0 &&
           memcmp(x->packets, y->packets, (size_t)x->npackets * sizeof *x->packets) == 0;
}

static void test_index_save_load_roundtrip(void) {
    if (!make_tree())
        SKIP("the ffmpeg tool or its encoders are not available");
    dj_index *ix = NULL, *back = NULL;
    dj_index_build_options o = {1, NULL, 1};
    CHECK(dj_index_build(root, &o, &ix, NULL) == DJ_OK);
    char path[700];
    snprintf(path, sizeof path, "%s/set.djidx", dj_test_tmpdir());
    CHECK(dj_index_save(ix, path) == DJ_OK);
    CHECK(dj_index_load(path, &back) == DJ_OK);
    if (ix && back) {
        CHECK_EQ_INT(dj_index_count(back), dj_index_count(ix));
        CHECK_EQ_INT(dj_index_class_count(back), 2);
        CHECK(strcmp(dj_index_class_name(back, 1), "dog") == 0);
        for (int64_t i = 0; i < dj_index_count(ix); i++) {
            CHECK(same_video(dj_index_video(ix, i), dj_index_video(back, i)));
            CHECK(dj_index_video(back, i)->flags & DJ_INDEX_VERIFIED);
        }
        /* a loaded entry drives a reader */
        const dj_video_index *v = dj_index_video(back, 0);
        dj_video_reader *r = NULL;
        CHECK(dj_video_reader_open(v->path, v, NULL, &r) == DJ_OK);
        ref_got got = {0};
        int64_t ks[] = {1, v->nframes - 1};
        if (r)
            CHECK(dj_video_reader_read(r, ks, 2, ref_collect, &got) == DJ_OK);
        CHECK_EQ_INT(got.n, 2);
        ref_got_free(&got);
        dj_video_reader_free(r);
    }
    /* no temporary file is left behind */
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", dj_test_tmpdir());
    CHECK(system(cmd) != 0);
    dj_index_free(ix);
    dj_index_free(back);
}

/* Copies src to dst with byte `at` changed, or cut to `cut` bytes. */
static void mangle(const char *src, const char *dst, long at, long cut) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    int c;
    long i = 0;
    while (in && out && (c = fgetc(in)) != EOF && (cut < 0 || i < cut)) {
        fputc(i == at ? c ^ 1 : c, out);
        i++;
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
}

static void test_index_corrupt_files(void) {
    if (!make_tree())
        SKIP("the ffmpeg tool or its encoders are not available");
    dj_index *ix = NULL, *back = NULL;
    dj_index_build_options o = {0, NULL, 1};
    CHECK(dj_index_build(root, &o, &ix, NULL) == DJ_OK);
    char good[700], bad[700];
    snprintf(good, sizeof good, "%s/good.djidx", dj_test_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.djidx", dj_test_tmpdir());
    CHECK(dj_index_save(ix, good) == DJ_OK);
    struct stat sb;
    stat(good, &sb);
    long offsets[] = {0, 9, 20, 100, (long)sb.st_size / 2, (long)sb.st_size - 1};
    for (int i = 0; i < 6; i++) {
        mangle(good, bad, offsets[i], -1);
        CHECK(dj_index_load(bad, &back) != DJ_OK);
        CHECK_STR_CONTAINS(dj_error_message(), bad);
        CHECK(back == NULL);
    }
    mangle(good, bad, 0, 0);
    CHECK(dj_index_load(bad, &back) == DJ_ERR_FORMAT);
    mangle(good, bad, -1, 5);
    CHECK(dj_index_load(bad, &back) == DJ_ERR_FORMAT);
    mangle(good, bad, -1, sb.st_size / 2);
    CHECK(dj_index_load(bad, &back) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "checksum");
    mangle(good, bad, 0, -1);
    CHECK(dj_index_load(bad, &back) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "magic");
    CHECK(dj_index_load("/nonexistent.djidx", &back) == DJ_ERR_NOT_FOUND);
    dj_index_free(ix);
}

static void test_index_incremental(void) {
    if (!make_tree())
        SKIP("the ffmpeg tool or its encoders are not available");
    dj_index *first = NULL, *second = NULL, *third = NULL;
    dj_index_report rep;
    dj_index_build_options o = {0, NULL, 1};
    CHECK(dj_index_build(root, &o, &first, &rep) == DJ_OK);
    o.previous = first;
    CHECK(dj_index_build(root, &o, &second, &rep) == DJ_OK);
    CHECK_EQ_INT(rep.reused, 3);
    CHECK_EQ_INT(rep.scanned, 0);
    char p[700];
    snprintf(p, sizeof p, "%s/dog/b.mkv", root);
    struct timespec ts[2] = {{1000000, 0}, {1000000, 0}};
    CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
    CHECK(dj_index_build(root, &o, &third, &rep) == DJ_OK);
    CHECK_EQ_INT(rep.reused, 2);
    CHECK_EQ_INT(rep.scanned, 1);
    if (third)
        CHECK_EQ_INT(find(third, "dog/b.mkv")->file_mtime_ns, 1000000LL * 1000000000LL);
    dj_index_free(first);
    dj_index_free(second);
    dj_index_free(third);
}

static void test_index_unusable_left_out(void) {
    if (!make_tree())
        SKIP("the ffmpeg tool or its encoders are not available");
    char dir[700], p[800];
    snprintf(dir, sizeof dir, "%s/mixed", dj_test_tmpdir());
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/broken.mp4", dir);
    put_file(p, "this is not a video");
    snprintf(p, sizeof p, "cp '%s/cat/a.mp4' '%s/good.mp4'", root, dir);
    CHECK(system(p) == 0);
    dj_index *ix = NULL;
    dj_index_report rep;
    dj_index_build_options o = {0, NULL, 1};
    CHECK(dj_index_build(dir, &o, &ix, &rep) == DJ_OK);
    CHECK_EQ_INT(dj_index_count(ix), 1);
    CHECK_EQ_INT(rep.skipped, 1);
    CHECK_EQ_INT(dj_index_class_count(ix), 0);
    if (ix)
        CHECK_EQ_INT(dj_index_video(ix, 0)->label, -1);
    dj_index_free(ix);
    /* nothing usable: an error naming the folder */
    snprintf(dir, sizeof dir, "%s/emptyset", dj_test_tmpdir());
    mkdir(dir, 0777);
    CHECK(dj_index_build(dir, &o, &ix, NULL) == DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), dir);
    CHECK(dj_index_build("/nonexistent/data", &o, &ix, NULL) == DJ_ERR_NOT_FOUND);
}

/* One enumeration: the index takes the data-set layer's entries, so videos in
 * folders inside a class folder carry that class, non-video files are not
 * tried, and the class map is the data set's (sorted class names). */
static void test_index_nested_class_folders(void) {
    if (!make_tree())
        SKIP("the ffmpeg tool or its encoders are not available");
    char dir[700], cmd[2200];
    snprintf(dir, sizeof dir, "%s/nested", dj_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/zebra/g01/c1' '%s/ant' && cp '%s/cat/a.mp4' '%s/zebra/g01/c1/x.mp4' && "
             "cp '%s/dog/c.avi' '%s/ant/y.avi' && echo notes > '%s/zebra/g01/notes.bin'",
             dir, dir, root, dir, root, dir, dir);
    CHECK(system(cmd) == 0);
    dj_index *ix = NULL;
    dj_index_report rep;
    dj_index_build_options o = {0, NULL, 1};
    CHECK(dj_index_build(dir, &o, &ix, &rep) == DJ_OK);
    if (!ix)
        return;
    CHECK_EQ_INT(dj_index_count(ix), 2);
    CHECK_EQ_INT(rep.skipped, 0); /* notes.bin is not a video: not tried */
    CHECK_EQ_INT(dj_index_class_count(ix), 2);
    CHECK(strcmp(dj_index_class_name(ix, 0), "ant") == 0);
    CHECK(strcmp(dj_index_class_name(ix, 1), "zebra") == 0);
    const dj_video_index *x = find(ix, "zebra/g01/c1/x.mp4"), *y = find(ix, "ant/y.avi");
    CHECK(x && y);
    if (x && y) {
        CHECK_EQ_INT(x->label, 1);
        CHECK_EQ_INT(y->label, 0);
        CHECK(x->path[0] == '/' && y->path[0] == '/'); /* absolute: usable from any folder */
    }
    dj_index_free(ix);
}

static void test_index_list_file(void) {
    if (!make_tree())
        SKIP("the ffmpeg tool or its encoders are not available");
    char list[700];
    snprintf(list, sizeof list, "%s/train.txt", root);
    put_file(list, "# path label [start end]\ncat/a.mp4 0\n\ndog/b.mkv 3 2 10\ndog/c.avi 1 0 50\nmissing.mp4 1\n");
    dj_index *ix = NULL;
    dj_index_report rep;
    dj_index_build_options o = {0, NULL, 1};
    CHECK(dj_index_build(list, &o, &ix, &rep) == DJ_OK);
    if (!ix)
        return;
    CHECK_EQ_INT(dj_index_count(ix), 2); /* c.avi: range beyond 12 frames; missing.mp4: absent */
    CHECK_EQ_INT(rep.skipped, 2);
    CHECK_EQ_INT(dj_index_class_count(ix), 4);
    const dj_video_index *b = find(ix, "dog/b.mkv");
    CHECK(b != NULL);
    if (b) {
        CHECK_EQ_INT(b->label, 3);
        CHECK_EQ_INT(b->start_frame, 2);
        CHECK_EQ_INT(b->end_frame, 10);
    }
    dj_index_free(ix);
    const char *bad[] = {"cat/a.mp4\n", "cat/a.mp4 x\n", "cat/a.mp4 -1\n", "cat/a.mp4 0 5\n", "cat/a.mp4 0 5 5\n",
                         "cat/a.mp4 0 1 2 3\n"};
    for (int i = 0; i < 6; i++) {
        put_file(list, bad[i]);
        CHECK(dj_index_build(list, &o, &ix, NULL) == DJ_ERR_FORMAT);
        CHECK_STR_CONTAINS(dj_error_message(), "train.txt:1");
    }
}

/* The display orientation is indexed and kept by index files: a turned and
 * mirrored real clip (rotation 90, DJ_INDEX_MIRRORED), a turned one, and a
 * plain one. */
static void test_index_orientation_roundtrip(void) {
    const char *real = dj_test_real_data();
    if (!real)
        SKIP("no real clips (set DOJO_REAL_DATA or add ../shared/data/real)");
    const struct {
        const char *file;
        int rotation, mirrored;
    } files[3] = {{"androidx_media/mp4/sample_rotate_and_reflect.mp4", 90, 1},
                  {"decord_samples/video_270.mov", 270, 0},
                  {"androidx_media/mp4/sample.mp4", 0, 0}};
    char dir[600], cmd[2000], path[700];
    snprintf(dir, sizeof dir, "%s/orient/a", dj_test_tmpdir());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(system(cmd) == 0);
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "ln -sf '%s/%s' '%s/%d.mp4'", real, files[i].file, dir, i);
        CHECK(system(cmd) == 0);
    }
    snprintf(dir, sizeof dir, "%s/orient", dj_test_tmpdir());
    dj_index *ix = NULL, *back = NULL;
    dj_index_build_options o = {1, NULL, 1};
    CHECK(dj_index_build(dir, &o, &ix, NULL) == DJ_OK);
    snprintf(path, sizeof path, "%s/orient.djidx", dj_test_tmpdir());
    CHECK(ix && dj_index_save(ix, path) == DJ_OK && dj_index_load(path, &back) == DJ_OK);
    for (int64_t v = 0; ix && back && v < dj_index_count(back); v++) {
        const dj_video_index *a = dj_index_video(ix, v), *b = dj_index_video(back, v);
        int k = 0; /* the index keeps the links' targets */
        while (k < 3 && !strstr(a->path, files[k].file))
            k++;
        CHECK(k >= 0 && k < 3 && same_video(a, b) && b->rotation == a->rotation);
        if (k >= 0 && k < 3) {
            CHECK_MSG(b->rotation == files[k].rotation, "%s: rotation %d", files[k].file, b->rotation);
            CHECK_EQ_INT((b->flags & DJ_INDEX_MIRRORED) != 0, files[k].mirrored);
        }
    }
    CHECK(ix && dj_index_count(ix) == 3);
    dj_index_free(ix);
    dj_index_free(back);
}

int main(void) {
    DJ_RUN(test_index_folder_classes);
    DJ_RUN(test_index_save_load_roundtrip);
    DJ_RUN(test_index_corrupt_files);
    DJ_RUN(test_index_incremental);
    DJ_RUN(test_index_unusable_left_out);
    DJ_RUN(test_index_list_file);
    DJ_RUN(test_index_nested_class_folders);
    DJ_RUN(test_index_orientation_roundtrip);
    return dj_test_finish();
}
