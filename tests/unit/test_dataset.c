/* test_dataset.c — class-folder trees, list files and Kinetics CSVs built in
 * a temporary folder with empty placeholder "videos". */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dojo/dataset.h"
#include "dojo/log.h"
#include "support/test.h"

/* tmp/<name>, freshly made; returns a static buffer per call slot. */
static const char *tpath(const char *rel) {
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dj_test_tmpdir(), rel);
    return buf[k];
}

static void mkdirs(const char *rel) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tpath(rel));
    CHECK(system(cmd) == 0);
}

static void write_file(const char *rel, const char *text) {
    FILE *f = fopen(tpath(rel), "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void touch(const char *rel) { write_file(rel, ""); }

static const char *base(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void test_folders_ucf_layout(void) {
    mkdirs("ucf/Walking");
    mkdirs("ucf/Archery");
    /* folders inside a class folder are searched (groups, splits, sources are
     * common there; `dojo index` has always searched them), hidden ones not */
    mkdirs("ucf/Basketball/sub/deeper");
    mkdirs("ucf/Basketball/.cache");
    mkdirs("ucf/Empty");
    mkdirs("ucf/.hidden_class");
    touch("ucf/Walking/v_Walking_g02.avi");
    touch("ucf/Walking/v_Walking_g01.AVI");
    touch("ucf/Walking/notes.txt");
    touch("ucf/Walking/.v_hidden.mp4");
    touch("ucf/Archery/b.mkv");
    touch("ucf/Archery/a.webm");
    touch("ucf/Basketball/x.mp4");
    touch("ucf/Basketball/sub/deep.mp4");
    touch("ucf/Basketball/sub/deeper/deepest.MOV");
    touch("ucf/Basketball/sub/deeper/list.txt");
    touch("ucf/Basketball/.cache/cached.mp4");
    touch("ucf/.hidden_class/h.mp4");
    touch("ucf/README.mp4"); /* a file at the root is not a class */
    dj_dataset *ds;
    dj_log_set_level(DJ_LOG_ERROR); /* the empty-class warning is expected */
    CHECK(dj_dataset_open(tpath("ucf"), NULL, &ds) == DJ_OK);
    dj_log_set_level(DJ_LOG_INFO);
    if (!ds)
        return;
    CHECK_EQ_INT(dj_dataset_format_of(ds), DJ_DATASET_FOLDERS);
    CHECK_EQ_INT(dj_dataset_num_classes(ds), 4);
    CHECK(strcmp(dj_dataset_class_name(ds, 0), "Archery") == 0);
    CHECK(strcmp(dj_dataset_class_name(ds, 1), "Basketball") == 0);
    CHECK(strcmp(dj_dataset_class_name(ds, 2), "Empty") == 0);
    CHECK(strcmp(dj_dataset_class_name(ds, 3), "Walking") == 0);
    CHECK(dj_dataset_class_name(ds, 4) == NULL && dj_dataset_class_name(ds, -1) == NULL);
    CHECK_EQ_INT(dj_dataset_class_id(ds, "Walking"), 3);
    CHECK_EQ_INT(dj_dataset_class_id(ds, "Nope"), -1);
    CHECK_EQ_INT(dj_dataset_warning_count(ds), 1);
    CHECK_EQ_INT(dj_dataset_size(ds), 7);
    const char *names[7] = {"a.webm", "b.mkv", "deep.mp4", "deepest.MOV", "x.mp4", "v_Walking_g01.AVI",
                            "v_Walking_g02.avi"};
    int labels[7] = {0, 0, 1, 1, 1, 3, 3};
    for (int i = 0; i < 7; i++) {
        const dj_dataset_entry *e = dj_dataset_entry_at(ds, i);
        CHECK(e != NULL);
        if (!e)
            continue;
        CHECK_MSG(strcmp(base(e->path), names[i]) == 0, "entry %d is %s", i, e->path);
        CHECK_EQ_INT(e->label, labels[i]);
        CHECK(e->start_frame == -1 && e->end_frame == -1);
        CHECK(access(e->path, F_OK) == 0);
    }
    CHECK(dj_dataset_entry_at(ds, 7) == NULL);
    dj_dataset_free(ds);
}

/* A folder of videos without class folders: an error, unless the caller
 * accepts unlabelled videos (the index does, for prediction). */
static void test_folders_unlabelled(void) {
    mkdirs("flat/more/evenmore");
    touch("flat/one.mp4");
    touch("flat/notes.md");
    touch("flat/more/evenmore/two.mkv");
    dj_dataset *ds = NULL;
    mkdirs("flat2");
    touch("flat2/v.mp4");
    CHECK(dj_dataset_open(tpath("flat2"), NULL, &ds) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "no class folders");
    dj_dataset_options opt = {DJ_DATASET_AUTO, NULL, 1};
    CHECK(dj_dataset_open(tpath("flat2"), &opt, &ds) == DJ_OK);
    if (ds) {
        CHECK_EQ_INT(dj_dataset_size(ds), 1);
        CHECK_EQ_INT(dj_dataset_num_classes(ds), 0);
        CHECK_EQ_INT(dj_dataset_entry_at(ds, 0)->label, -1);
        dj_dataset_free(ds);
    }
    /* a root with sub-folders is read as class folders even when unlabelled is allowed */
    CHECK(dj_dataset_open(tpath("flat"), &opt, &ds) == DJ_OK);
    if (ds) {
        CHECK_EQ_INT(dj_dataset_num_classes(ds), 1);
        CHECK_EQ_INT(dj_dataset_size(ds), 1);
        CHECK(strcmp(base(dj_dataset_entry_at(ds, 0)->path), "two.mkv") == 0);
        dj_dataset_free(ds);
    }
    mkdirs("flat3");
    touch("flat3/readme.txt");
    CHECK(dj_dataset_open(tpath("flat3"), &opt, &ds) == DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), "flat3");
    CHECK(ds == NULL);
}

/* A link loop inside a class folder ends with an error naming a folder, not a hang. */
static void test_folders_link_loop(void) {
    mkdirs("loop/cls/sub");
    touch("loop/cls/a.mp4");
    char target[1100];
    snprintf(target, sizeof target, "%s", tpath("loop/cls"));
    CHECK(symlink(target, tpath("loop/cls/sub/back")) == 0);
    dj_dataset *ds = NULL;
    CHECK(dj_dataset_open(tpath("loop"), NULL, &ds) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "nested more than");
    CHECK_STR_CONTAINS(dj_error_message(), "loop/cls");
    CHECK(ds == NULL);
}

static void test_folders_errors(void) {
    dj_dataset *ds = (dj_dataset *)1;
    CHECK(dj_dataset_open(tpath("missing_root"), NULL, &ds) == DJ_ERR_NOT_FOUND);
    CHECK(ds == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), "missing_root");
    mkdirs("allempty/a");
    mkdirs("allempty/b");
    touch("allempty/a/readme.txt");
    dj_log_set_level(DJ_LOG_ERROR);
    CHECK(dj_dataset_open(tpath("allempty"), NULL, &ds) == DJ_ERR_FORMAT);
    dj_log_set_level(DJ_LOG_INFO);
    CHECK_STR_CONTAINS(dj_error_message(), "no videos in any of the 2 class folders");
    mkdirs("noclasses");
    touch("noclasses/v.mp4");
    CHECK(dj_dataset_open(tpath("noclasses"), NULL, &ds) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "no class folders");
    CHECK(dj_dataset_open("", NULL, &ds) == DJ_ERR_INVALID);
    CHECK(dj_dataset_open(tpath("noclasses"), NULL, NULL) == DJ_ERR_INVALID);
}

static void test_list_file(void) {
    mkdirs("lst/videos");
    write_file("lst/train.txt",
               "# MMAction2-style list\n"
               "videos/b.mp4 2\n"
               "\n"
               "videos/a.mp4 0 10 40   # a trimmed clip\n"
               "   videos/a.mp4\t0 0 10\n"
               "/abs/c.mp4 1\r\n");
    dj_dataset *ds;
    CHECK(dj_dataset_open(tpath("lst/train.txt"), NULL, &ds) == DJ_OK);
    if (!ds)
        return;
    CHECK_EQ_INT(dj_dataset_format_of(ds), DJ_DATASET_LIST);
    CHECK_EQ_INT(dj_dataset_size(ds), 4);
    CHECK_EQ_INT(dj_dataset_num_classes(ds), 3);
    CHECK(strcmp(dj_dataset_class_name(ds, 2), "2") == 0);
    const dj_dataset_entry *e0 = dj_dataset_entry_at(ds, 0), *e1 = dj_dataset_entry_at(ds, 1),
                           *e2 = dj_dataset_entry_at(ds, 2), *e3 = dj_dataset_entry_at(ds, 3);
    CHECK(strcmp(e0->path, "/abs/c.mp4") == 0 && e0->label == 1 && e0->start_frame == -1);
    CHECK(strcmp(e1->path, tpath("lst/videos/a.mp4")) == 0 && e1->start_frame == 0 && e1->end_frame == 10);
    CHECK(strcmp(e2->path, tpath("lst/videos/a.mp4")) == 0 && e2->start_frame == 10 && e2->end_frame == 40);
    CHECK(strcmp(e3->path, tpath("lst/videos/b.mp4")) == 0 && e3->label == 2);
    dj_dataset_free(ds);
    /* video_root overrides the list's folder */
    dj_dataset_options opt = {DJ_DATASET_LIST, "/data/root", 0};
    CHECK(dj_dataset_open(tpath("lst/train.txt"), &opt, &ds) == DJ_OK);
    CHECK(strcmp(dj_dataset_entry_at(ds, 3)->path, "/data/root/videos/b.mp4") == 0);
    dj_dataset_free(ds);
}

static void expect_list_error(const char *text, const char *line_tag, const char *what) {
    write_file("bad.txt", text);
    dj_dataset *ds = NULL;
    dj_status st = dj_dataset_open(tpath("bad.txt"), NULL, &ds);
    CHECK_MSG(st == DJ_ERR_FORMAT, "'%s' gave %d", text, (int)st);
    CHECK(ds == NULL);
    char where[1100];
    snprintf(where, sizeof where, "bad.txt:%s)", line_tag);
    CHECK_STR_CONTAINS(dj_error_message(), where);
    CHECK_STR_CONTAINS(dj_error_message(), what);
}

static void test_list_file_bad_lines(void) {
    expect_list_error("a.mp4 0\nb.mp4\n", "2", "got 1 fields");
    expect_list_error("a.mp4 x\n", "1", "label 'x'");
    expect_list_error("a.mp4 -1\n", "1", "label '-1'");
    expect_list_error("# c\n\na.mp4 0 5\n", "3", "got 3 fields");
    expect_list_error("a.mp4 0 5 x\n", "1", "frame range");
    expect_list_error("a.mp4 0 9 3\n", "1", "empty frame range");
    expect_list_error("a.mp4 0 1 2 3\n", "1", "got 5 fields");
    expect_list_error("a.mp4 99999999999\n", "1", "not an integer");
    write_file("empty.txt", "# nothing\n\n");
    dj_dataset *ds;
    CHECK(dj_dataset_open(tpath("empty.txt"), NULL, &ds) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "no entries");
    /* a binary file is rejected, not crashed on */
    FILE *f = fopen(tpath("binary.txt"), "wb");
    for (int i = 0; i < 4096; i++)
        fputc((i * 131) & 0xff, f);
    fclose(f);
    CHECK(dj_dataset_open(tpath("binary.txt"), NULL, &ds) == DJ_ERR_FORMAT);
}

static void test_kinetics_csv(void) {
    mkdirs("k400/videos/abseiling");
    touch("k400/videos/abseiling/0347ZoDXyP0_000095_000105.mp4"); /* in a class folder */
    touch("k400/videos/---QUuC4vJs_000084_000094.mp4");           /* flat */
    touch("k400/videos/zzz_000001_000011.mp4");
    write_file("k400/train.csv",
               "label,youtube_id,time_start,time_end,split\n"
               "abseiling,0347ZoDXyP0,95,105,train\n"
               "\"testifying, in court\",---QUuC4vJs,84,94,train\n"
               "zumba,missing_one,10,20,train\n"
               "air drumming,zzz,1,11,train\n");
    char root[1024];
    snprintf(root, sizeof root, "%s", tpath("k400/videos"));
    dj_dataset_options opt = {DJ_DATASET_AUTO, root, 0};
    dj_dataset *ds;
    dj_log_set_level(DJ_LOG_ERROR);
    CHECK(dj_dataset_open(tpath("k400/train.csv"), &opt, &ds) == DJ_OK);
    dj_log_set_level(DJ_LOG_INFO);
    if (!ds)
        return;
    CHECK_EQ_INT(dj_dataset_format_of(ds), DJ_DATASET_CSV);
    CHECK_EQ_INT(dj_dataset_size(ds), 3);
    CHECK_EQ_INT(dj_dataset_warning_count(ds), 1); /* the missing video */
    /* ids over all four labels, sorted: abseiling, air drumming, testifying..., zumba */
    CHECK_EQ_INT(dj_dataset_num_classes(ds), 4);
    CHECK_EQ_INT(dj_dataset_class_id(ds, "testifying, in court"), 2);
    CHECK_EQ_INT(dj_dataset_class_id(ds, "zumba"), 3);
    const dj_dataset_entry *e = dj_dataset_entry_at(ds, 0);
    CHECK(strcmp(base(e->path), "---QUuC4vJs_000084_000094.mp4") == 0 && e->label == 2);
    e = dj_dataset_entry_at(ds, 1);
    CHECK(strcmp(base(e->path), "0347ZoDXyP0_000095_000105.mp4") == 0 && e->label == 0);
    CHECK_STR_CONTAINS(e->path, "abseiling/");
    e = dj_dataset_entry_at(ds, 2);
    CHECK(e->label == 1);
    dj_dataset_free(ds);

    /* without a header, default column order */
    write_file("k400/nohead.csv", "abseiling,0347ZoDXyP0,95.0,105.0,train\n");
    CHECK(dj_dataset_open(tpath("k400/nohead.csv"), &opt, &ds) == DJ_OK);
    CHECK_EQ_INT(dj_dataset_size(ds), 1);
    dj_dataset_free(ds);
}

static void test_kinetics_csv_errors(void) {
    char root[1024];
    snprintf(root, sizeof root, "%s", tpath("k400/videos"));
    dj_dataset_options opt = {DJ_DATASET_CSV, root, 0};
    dj_dataset *ds;
    write_file("bad1.csv", "label,youtube_id,time_start,time_end,split\nabseiling,abc,5\n");
    CHECK(dj_dataset_open(tpath("bad1.csv"), &opt, &ds) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "bad1.csv:2)");
    write_file("bad2.csv", "abseiling,abc,ten,20,train\n");
    CHECK(dj_dataset_open(tpath("bad2.csv"), &opt, &ds) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "bad2.csv:1)");
    write_file("bad3.csv", "abseiling,abc,30,20,train\n");
    CHECK(dj_dataset_open(tpath("bad3.csv"), &opt, &ds) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "bad times");
    write_file("bad4.csv", "\"abseiling,abc,30,40,train\n");
    CHECK(dj_dataset_open(tpath("bad4.csv"), &opt, &ds) == DJ_ERR_FORMAT);
    write_file("bad5.csv", "label,id,start,end\nx,y,1,2\n");
    CHECK(dj_dataset_open(tpath("bad5.csv"), &opt, &ds) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "header");
    write_file("wide.csv", "a,b,1,2,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\n");
    CHECK(dj_dataset_open(tpath("wide.csv"), &opt, &ds) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "more than 16 fields");
    write_file("none.csv", "abseiling,nothere,1,11,train\n");
    CHECK(dj_dataset_open(tpath("none.csv"), &opt, &ds) == DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), "none of the 1 rows");
    write_file("slash.csv", "abseiling,../../etc,1,11,train\n");
    CHECK(dj_dataset_open(tpath("slash.csv"), &opt, &ds) == DJ_ERR_FORMAT);
}

static void test_shard_helper(void) {
    mkdirs("shard/a");
    mkdirs("shard/b");
    char name[64];
    for (int i = 0; i < 11; i++) {
        snprintf(name, sizeof name, "shard/%c/v%02d.mp4", i % 2 ? 'a' : 'b', i);
        touch(name);
    }
    dj_dataset *ds;
    CHECK(dj_dataset_open(tpath("shard"), NULL, &ds) == DJ_OK);
    if (!ds)
        return;
    int seen[11] = {0};
    for (int r = 0; r < 3; r++) {
        int64_t *idx, n;
        CHECK(dj_dataset_shard(ds, 5, 2, 1, r, 3, 0, &idx, &n) == DJ_OK);
        CHECK(n == 3 || n == 4);
        for (int64_t i = 0; i < n; i++)
            seen[idx[i]]++;
        free(idx);
    }
    for (int i = 0; i < 11; i++)
        CHECK(seen[i] == 1);
    int64_t *a, *b, *c, na, nb, nc;
    CHECK(dj_dataset_shard(ds, 5, 2, 1, 1, 3, 1, &a, &na) == DJ_OK);
    CHECK(dj_dataset_shard(ds, 5, 2, 1, 1, 3, 1, &b, &nb) == DJ_OK);
    CHECK(dj_dataset_shard(ds, 5, 3, 1, 1, 3, 1, &c, &nc) == DJ_OK);
    CHECK(na == 3 && nb == 3 && nc == 3);
    CHECK(memcmp(a, b, sizeof *a * 3) == 0);
    CHECK(memcmp(a, c, sizeof *a * 3) != 0); /* another epoch, another shard */
    free(a);
    free(b);
    free(c);
    CHECK(dj_dataset_shard(ds, 5, 2, 1, 3, 3, 0, &a, &na) == DJ_ERR_INVALID);
    CHECK(a == NULL);
    dj_dataset_free(ds);
}

/* The shared ASL clips, one per class folder through symlinks. */
static void test_real_clips_as_class_folders(void) {
    const char *root = dj_test_real_data();
    if (!root)
        SKIP("no real clips (set DOJO_REAL_DATA)");
    static const char *words[] = {"again", "bird", "book", "yes"};
    char cls[64], src[2048], dst[2048];
    for (int i = 0; i < 4; i++) {
        snprintf(cls, sizeof cls, "asl/%s", words[i]);
        mkdirs(cls);
        snprintf(src, sizeof src, "%s/asl_signs/%s.mkv", root, words[i]);
        snprintf(dst, sizeof dst, "%s/%s/%s.mkv", dj_test_tmpdir(), cls, words[i]);
        CHECK(symlink(src, dst) == 0);
    }
    dj_dataset *ds;
    CHECK(dj_dataset_open(tpath("asl"), NULL, &ds) == DJ_OK);
    if (!ds)
        return;
    CHECK_EQ_INT(dj_dataset_size(ds), 4);
    CHECK_EQ_INT(dj_dataset_num_classes(ds), 4);
    for (int i = 0; i < 4; i++) {
        const dj_dataset_entry *e = dj_dataset_entry_at(ds, i);
        CHECK_EQ_INT(e->label, i);
        CHECK(strcmp(dj_dataset_class_name(ds, i), words[i]) == 0);
        struct stat st;
        CHECK(stat(e->path, &st) == 0 && st.st_size > 1000);
    }
    dj_dataset_free(ds);
}

int main(void) {
    DJ_RUN(test_folders_ucf_layout);
    DJ_RUN(test_folders_errors);
    DJ_RUN(test_folders_unlabelled);
    DJ_RUN(test_folders_link_loop);
    DJ_RUN(test_list_file);
    DJ_RUN(test_list_file_bad_lines);
    DJ_RUN(test_kinetics_csv);
    DJ_RUN(test_kinetics_csv_errors);
    DJ_RUN(test_shard_helper);
    DJ_RUN(test_real_clips_as_class_folders);
    return dj_test_finish();
}
