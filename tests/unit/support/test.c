/* test.c — the harness behind test.h: runs, counts and reports tests. */
#define _GNU_SOURCE
#include "test.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dojo/error.h"

static int dj_passed, dj_failed, dj_skipped;
static int dj_current_failed, dj_current_skipped;
static const char *dj_current_name;
static char dj_tmp[256];

void dj_test_fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "  %s:%d: %s: ", file, line, dj_current_name ? dj_current_name : "?");
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    fflush(stdout);
    dj_current_failed++;
}

void dj_test_skip(const char *why) {
    fprintf(stdout, "SKIP %s: %s\n", dj_current_name, why);
    dj_current_skipped = 1;
}

void dj_test_run(const char *name, void (*fn)(void)) {
    const char *filter = getenv("DOJO_TEST_FILTER");
    if (filter && filter[0] && !strstr(name, filter))
        return;
    dj_current_name = name;
    dj_current_failed = 0;
    dj_current_skipped = 0;
    dj_error_clear();
    fn();
    if (dj_current_failed) {
        dj_failed++;
        fprintf(stdout, "FAIL %s\n", name);
    } else if (dj_current_skipped) {
        dj_skipped++;
    } else {
        dj_passed++;
        fprintf(stdout, "ok   %s\n", name);
    }
    fflush(stdout);
    dj_current_name = NULL;
}

static void dj_test_rmtree(void) {
    if (dj_tmp[0]) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dj_tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not remove %s\n", dj_tmp);
    }
}

const char *dj_test_tmpdir(void) {
    if (!dj_tmp[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dj_tmp, sizeof dj_tmp, "%s/dojo-test-XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(dj_tmp)) {
            dj_tmp[0] = '\0';
            return "/tmp";
        }
        atexit(dj_test_rmtree);
    }
    return dj_tmp;
}

const char *dj_test_real_data(void) {
    static char path[1024];
    const char *env = getenv("DOJO_REAL_DATA");
    if (env && env[0])
        snprintf(path, sizeof path, "%s", env);
    else
        snprintf(path, sizeof path, "../shared/data/real");
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    /* absolute, so that symlinks and other working folders can use it */
    static char absolute[PATH_MAX];
    return realpath(path, absolute) ? absolute : path;
}

int dj_test_finish(void) {
    fprintf(stdout, "# result: %d passed, %d failed, %d skipped\n", dj_passed, dj_failed, dj_skipped);
    return dj_failed ? 1 : 0;
}
