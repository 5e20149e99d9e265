/* test.h — dojo's small unit-test harness.
 *
 * A test file defines `static void test_x(void)` functions and a main that
 * calls DJ_RUN(test_x) for each, then `return dj_test_finish();`. A failed
 * check prints file:line and the values, marks the test failed and goes on.
 * The last line "# result: P passed, F failed, S skipped" is read by
 * tests/run.sh. Select tests with DOJO_TEST_FILTER=substring. */
#ifndef DOJO_TEST_H
#define DOJO_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

void dj_test_run(const char *name, void (*fn)(void));
int dj_test_finish(void);
void dj_test_fail_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void dj_test_skip(const char *why);
/* Folder of the shared real clips (../shared/data/real from the repository
 * root, or $DOJO_REAL_DATA) as an absolute path, or NULL when absent. */
const char *dj_test_real_data(void);
/* A fresh empty temporary folder for this test binary, removed at exit. */
const char *dj_test_tmpdir(void);

#define DJ_RUN(fn) dj_test_run(#fn, fn)

#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond))                                                    \
            dj_test_fail_at(__FILE__, __LINE__, "check failed: %s", #cond); \
    } while (0)

#define CHECK_MSG(cond, ...)                                \
    do {                                                    \
        if (!(cond))                                        \
            dj_test_fail_at(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                       \
    do {                                                                                         \
        long long dj_a_ = (long long)(a), dj_b_ = (long long)(b);                                \
        if (dj_a_ != dj_b_)                                                                      \
            dj_test_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, dj_a_, dj_b_); \
    } while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                                                     \
    do {                                                                                         \
        const char *dj_h_ = (haystack), *dj_n_ = (needle);                                       \
        if (!dj_h_ || !strstr(dj_h_, dj_n_))                                                     \
            dj_test_fail_at(__FILE__, __LINE__, "'%s' does not contain '%s'", dj_h_ ? dj_h_ : "(null)", dj_n_); \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, rtol, atol)                                                             \
    do {                                                                                          \
        double dj_a_ = (double)(a), dj_b_ = (double)(b);                                          \
        if (!(fabs(dj_a_ - dj_b_) <= (atol) + (rtol) * fabs(dj_b_)))                              \
            dj_test_fail_at(__FILE__, __LINE__, "%s ~= %s: %.9g vs %.9g", #a, #b, dj_a_, dj_b_);  \
    } while (0)

#define SKIP(why)           \
    do {                    \
        dj_test_skip(why);  \
        return;             \
    } while (0)

#endif
