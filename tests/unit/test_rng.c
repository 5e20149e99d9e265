/* test_rng.c — the generators are deterministic, uniform enough, unbiased. */
#include <string.h>

#include "dojo/rng.h"
#include "support/test.h"

static void test_same_seed_same_sequence(void) {
    dj_rng a, b, c;
    dj_rng_seed(&a, 42, 0);
    dj_rng_seed(&b, 42, 0);
    dj_rng_seed(&c, 42, 1);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = dj_rng_u64(&a);
        CHECK(x == dj_rng_u64(&b));
        same_c += x == dj_rng_u64(&c);
    }
    CHECK(same_c == 0);
}

static void test_state_copy_resumes(void) {
    dj_rng a;
    dj_rng_seed(&a, 7, 3);
    for (int i = 0; i < 10; i++)
        dj_rng_u64(&a);
    dj_rng saved = a;
    uint64_t next = dj_rng_u64(&a);
    CHECK(dj_rng_u64(&saved) == next);
}

static void test_uniform_moments(void) {
    dj_rng r;
    dj_rng_seed(&r, 1, 0);
    double sum = 0, sum2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = dj_rng_float(&r);
        CHECK(u >= 0.0f && u < 1.0f);
        sum += u;
        sum2 += (double)u * u;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK_CLOSE(mean, 0.5, 0, 0.005);
    CHECK_CLOSE(var, 1.0 / 12.0, 0, 0.002);
}

static void test_below_is_in_range_and_covers(void) {
    dj_rng r;
    dj_rng_seed(&r, 5, 0);
    int seen[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t k = dj_rng_below(&r, 7);
        CHECK(k < 7);
        if (k < 7)
            seen[k]++;
    }
    for (int k = 0; k < 7; k++)
        CHECK(seen[k] > 800 && seen[k] < 1200);
    CHECK(dj_rng_below(&r, 0) == 0);
    CHECK(dj_rng_below(&r, 1) == 0);
}

static void test_normal_moments(void) {
    dj_rng r;
    dj_rng_seed(&r, 9, 0);
    double sum = 0, sum2 = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        double x = dj_rng_normal(&r);
        sum += x;
        sum2 += x * x;
    }
    CHECK_CLOSE(sum / n, 0.0, 0, 0.02);
    CHECK_CLOSE(sum2 / n, 1.0, 0, 0.02);
}

static void test_hash_is_a_function_of_its_inputs(void) {
    CHECK(dj_hash_u64(1, 2, 3) == dj_hash_u64(1, 2, 3));
    CHECK(dj_hash_u64(1, 2, 3) != dj_hash_u64(1, 2, 4));
    CHECK(dj_hash_u64(1, 2, 3) != dj_hash_u64(1, 3, 3));
    CHECK(dj_hash_u64(1, 2, 3) != dj_hash_u64(2, 2, 3));
    double sum = 0;
    for (int i = 0; i < 100000; i++)
        sum += dj_hash_float(11, 0, (uint64_t)i);
    CHECK_CLOSE(sum / 100000, 0.5, 0, 0.005);
}

int main(void) {
    DJ_RUN(test_same_seed_same_sequence);
    DJ_RUN(test_state_copy_resumes);
    DJ_RUN(test_uniform_moments);
    DJ_RUN(test_below_is_in_range_and_covers);
    DJ_RUN(test_normal_moments);
    DJ_RUN(test_hash_is_a_function_of_its_inputs);
    return dj_test_finish();
}
