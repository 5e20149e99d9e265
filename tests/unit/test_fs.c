/* test_fs.c — folders with their parents and atomic file writes: nested
 * creation, existing folders, a file in the way, the written bytes, no
 * temporary file left behind, the old file kept when a write fails, and
 * errors that name the path. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dojo/dojo.h"
#include "support/test.h"

static const char *in_tmp(const char *name) {
    static char buf[8][1024];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 1024, "%s/%s", dj_test_tmpdir(), name);
    return p;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = calloc(1, 4096);
    size_t n = fread(p, 1, 4095, f);
    p[n] = '\0';
    fclose(f);
    return p;
}

/* Entries of dir whose name contains needle. */
static int count_entries(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, needle) != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_mkdirs_nested(void) {
    const char *deep = in_tmp("a/b//c/d/");
    CHECK_EQ_INT(dj_fs_mkdirs(deep), DJ_OK);
    CHECK(is_dir(in_tmp("a/b/c/d")));
    CHECK_EQ_INT(dj_fs_mkdirs(deep), DJ_OK); /* again: already there */
    CHECK_EQ_INT(dj_fs_mkdirs(in_tmp("a")), DJ_OK);
}

static void test_mkdirs_file_in_the_way(void) {
    const char *file = in_tmp("plain");
    FILE *f = fopen(file, "w");
    fclose(f);
    CHECK_EQ_INT(dj_fs_mkdirs(file), DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "not a folder");
    CHECK_STR_CONTAINS(dj_error_message(), "plain");
    CHECK_EQ_INT(dj_fs_mkdirs(in_tmp("plain/below")), DJ_ERR_IO); /* a parent is a file */
    CHECK_STR_CONTAINS(dj_error_message(), "plain/below");
    CHECK_EQ_INT(dj_fs_mkdirs(""), DJ_ERR_INVALID);
}

static void test_write_text(void) {
    const char *path = in_tmp("w/out.json");
    CHECK_EQ_INT(dj_fs_mkdirs(in_tmp("w")), DJ_OK);
    CHECK_EQ_INT(dj_fs_write_text(path, "{\"a\": 1}\n"), DJ_OK);
    char *got = slurp(path);
    CHECK(got && !strcmp(got, "{\"a\": 1}\n"));
    free(got);
    CHECK_EQ_INT(dj_fs_write_text(path, "second"), DJ_OK); /* replaces */
    got = slurp(path);
    CHECK(got && !strcmp(got, "second"));
    free(got);
    CHECK_EQ_INT(count_entries(in_tmp("w"), ".tmp."), 0);
    CHECK_EQ_INT(dj_fs_write_atomic(in_tmp("w/empty"), NULL, 0), DJ_OK);
    struct stat st;
    CHECK(stat(in_tmp("w/empty"), &st) == 0 && st.st_size == 0);
}

static void test_write_fails_cleanly(void) {
    CHECK_EQ_INT(dj_fs_write_text(in_tmp("missing/out.txt"), "x"), DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "missing/out.txt");
    /* a folder where the file should go: the rename fails, the folder and
     * its contents stay, and no temporary file is left */
    const char *dir = in_tmp("r/taken");
    CHECK_EQ_INT(dj_fs_mkdirs(dir), DJ_OK);
    CHECK_EQ_INT(dj_fs_write_text(in_tmp("r/inside"), "keep"), DJ_OK);
    CHECK_EQ_INT(dj_fs_write_text(in_tmp("r/taken/x"), "y"), DJ_OK);
    CHECK_EQ_INT(dj_fs_write_text(dir, "new"), DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "taken");
    CHECK(is_dir(dir));
    CHECK_EQ_INT(count_entries(in_tmp("r"), ".tmp."), 0);
    char *kept = slurp(in_tmp("r/inside"));
    CHECK(kept && !strcmp(kept, "keep"));
    free(kept);
}

static void test_temp_commit_and_abort(void) {
    const char *path = in_tmp("t.txt");
    dj_fs_temp t;
    CHECK_EQ_INT(dj_fs_temp_open(&t, path), DJ_OK);
    fprintf(t.f, "line %d\n", 1);
    CHECK(access(path, F_OK) != 0); /* nothing under the name before the commit */
    CHECK_EQ_INT(dj_fs_temp_commit(&t), DJ_OK);
    char *got = slurp(path);
    CHECK(got && !strcmp(got, "line 1\n"));
    free(got);
    CHECK_EQ_INT(dj_fs_temp_open(&t, path), DJ_OK);
    fputs("half", t.f);
    dj_fs_temp_abort(&t);
    got = slurp(path);
    CHECK(got && !strcmp(got, "line 1\n")); /* the old file stays */
    free(got);
    CHECK_EQ_INT(count_entries(dj_test_tmpdir(), "t.txt.tmp."), 0);
    CHECK_EQ_INT(dj_fs_temp_commit(&t), DJ_ERR_INVALID); /* nothing open */
    CHECK_EQ_INT(dj_fs_sync_folder(path), DJ_OK);
    CHECK_EQ_INT(dj_fs_sync_folder("bare-name"), DJ_OK); /* the current folder */
    CHECK_EQ_INT(dj_fs_sync_folder(in_tmp("nowhere/x")), DJ_ERR_IO);
}

int main(void) {
    DJ_RUN(test_mkdirs_nested);
    DJ_RUN(test_mkdirs_file_in_the_way);
    DJ_RUN(test_write_text);
    DJ_RUN(test_write_fails_cleanly);
    DJ_RUN(test_temp_commit_and_abort);
    return dj_test_finish();
}
