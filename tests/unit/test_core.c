/* test_core.c — errors, logging helpers, CPU detection, build information. */
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "support/test.h"

static void test_error_message_has_what_and_where(void) {
    dj_status s = dj_error_set(DJ_ERR_IO, "/data/a.mp4", "cannot open: %s", "No such file");
    CHECK_EQ_INT(s, DJ_ERR_IO);
    CHECK(strcmp(dj_error_message(), "cannot open: No such file (/data/a.mp4)") == 0);
    dj_error_prefix("reading index");
    CHECK(strcmp(dj_error_message(), "reading index: cannot open: No such file (/data/a.mp4)") == 0);
    dj_error_clear();
    CHECK(strcmp(dj_error_message(), "") == 0);
}

static void test_error_without_where(void) {
    dj_error_set(DJ_ERR_INVALID, NULL, "bad %d", 3);
    CHECK(strcmp(dj_error_message(), "bad 3") == 0);
}

static void test_error_long_message_is_truncated_safely(void) {
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    dj_error_set(DJ_ERR_FORMAT, big, "%s", big);
    CHECK(strlen(dj_error_message()) < 2000);
    dj_error_prefix("%s", big);
    CHECK(strlen(dj_error_message()) < 2000);
}

static void test_status_words(void) {
    CHECK(strcmp(dj_status_str(DJ_OK), "success") == 0);
    for (int s = DJ_ERR_INTERNAL; s < 0; s++)
        CHECK(strcmp(dj_status_str((dj_status)s), "unknown status") != 0);
    CHECK(strcmp(dj_status_str((dj_status)-1000), "unknown status") == 0);
}

static dj_status dj_fails_then_propagates(int *reached) {
    DJ_TRY(dj_error_set(DJ_ERR_RANGE, "k", "too big"));
    *reached = 1;
    return DJ_OK;
}

static void test_try_propagates(void) {
    int reached = 0;
    CHECK_EQ_INT(dj_fails_then_propagates(&reached), DJ_ERR_RANGE);
    CHECK_EQ_INT(reached, 0);
}

static void test_cpu_detect_is_consistent(void) {
    const dj_cpu_features *f = dj_cpu_detect();
    CHECK(f == dj_cpu_detect());
    CHECK(f->logical_cores >= 1);
    /* AVX-512 implies AVX2 implies AVX on every CPU that exists */
    if (f->avx512f)
        CHECK(f->avx2 && f->fma);
    if (f->avx2)
        CHECK(f->avx);
    if (f->avx512_bf16)
        CHECK(f->avx512f);
    char buf[256];
    dj_cpu_features_string(f, buf, sizeof buf);
    CHECK(buf[0] != '\0');
    if (f->avx512f)
        CHECK_STR_CONTAINS(buf, "avx512f");
    char tiny[4];
    dj_cpu_features_string(f, tiny, sizeof tiny); /* must not overflow */
    CHECK(strlen(tiny) < sizeof tiny);
}

static void test_cpu_isa_cap_from_environment(void) {
    dj_cpu_isa best = dj_cpu_best_isa();
    setenv("DOJO_CPU", "scalar", 1);
    CHECK_EQ_INT(dj_cpu_best_isa(), DJ_CPU_ISA_SCALAR);
    setenv("DOJO_CPU", "avx2", 1);
    CHECK(dj_cpu_best_isa() <= DJ_CPU_ISA_AVX2);
    unsetenv("DOJO_CPU");
    CHECK_EQ_INT(dj_cpu_best_isa(), best);
    CHECK(strcmp(dj_cpu_isa_name(DJ_CPU_ISA_AVX512), "avx512") == 0);
}

static void test_build_info(void) {
    const dj_build_info *b = dj_build();
    CHECK(strcmp(b->version, DJ_VERSION_STRING) == 0);
    CHECK(b->build_type && b->build_type[0]);
    char buf[256];
    CHECK_STR_CONTAINS(dj_ffmpeg_versions(buf, sizeof buf), "libavcodec ");
}

static void test_progress_plain_mode_prints_periodic_lines(void) {
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f)
        return;
    dj_progress *p = dj_progress_create(f);
    dj_progress_set_mode(p, 0);
    dj_progress_set_plain_interval(p, 1000.0);
    for (int i = 0; i < 100; i++)
        dj_progress_update(p, "step %d", i);
    dj_progress_end(p);
    dj_progress_free(p);
    rewind(f);
    char text[4096] = {0};
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    /* one line when the interval is long, plus the final state; no \r */
    CHECK(strchr(text, '\r') == NULL);
    CHECK_STR_CONTAINS(text, "step 0\n");
    CHECK_STR_CONTAINS(text, "step 99\n");
    CHECK(strstr(text, "step 50") == NULL);
}

static void test_progress_terminal_mode_redraws(void) {
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f)
        return;
    dj_progress *p = dj_progress_create(f);
    dj_progress_set_mode(p, 1);
    dj_progress_update(p, "epoch 1");
    dj_progress_end(p);
    dj_progress_free(p);
    rewind(f);
    char text[256] = {0};
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    CHECK_STR_CONTAINS(text, "\r\033[Kepoch 1");
    CHECK(n > 0 && text[n - 1] == '\n');
}

int main(void) {
    DJ_RUN(test_error_message_has_what_and_where);
    DJ_RUN(test_error_without_where);
    DJ_RUN(test_error_long_message_is_truncated_safely);
    DJ_RUN(test_status_words);
    DJ_RUN(test_try_propagates);
    DJ_RUN(test_cpu_detect_is_consistent);
    DJ_RUN(test_cpu_isa_cap_from_environment);
    DJ_RUN(test_build_info);
    DJ_RUN(test_progress_plain_mode_prints_periodic_lines);
    DJ_RUN(test_progress_terminal_mode_redraws);
    return dj_test_finish();
}
