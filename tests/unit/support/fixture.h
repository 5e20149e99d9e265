/* fixture.h — helpers for tests that compare dojo with the PyTorch fixtures
 * in tests/fixtures (made by tools/make_fixtures.py, described in
 * tools/README.md).
 *
 * - dj_fixture_path / dj_fixture_open find and open a fixture file whatever
 *   the test's working directory (env DOJO_FIXTURES, else tests/fixtures
 *   found by walking up from the current folder);
 * - dj_fixture_hash_* is the "hash init" of the whole-network fixtures, the
 *   same function as hash_init() in tools/make_fixtures.py, bit for bit;
 * - dj_fixture_params parses the "params" metadata of a network fixture;
 * - dj_fixture_check_close compares a computed buffer with a stored tensor. */
#ifndef DOJO_TEST_FIXTURE_H
#define DOJO_TEST_FIXTURE_H

#include <stdint.h>

#include "dojo/safetensors.h"

enum { DJ_FIXTURE_NPOS = 32 }; /* sampled positions per tensor */

/* The tests/fixtures folder, or NULL when it cannot be found. */
const char *dj_fixture_dir(void);
/* "<fixture dir>/<relative>" into buf; returns buf, or NULL without a folder. */
char *dj_fixture_path(const char *relative, char *buf, size_t size);
/* Opens a fixture; on failure the test is marked failed and NULL returned. */
dj_safetensors *dj_fixture_open(const char *relative);

/* FNV-1a 64 of the name's bytes. */
uint64_t dj_fixture_fnv1a64(const char *name);
/* splitmix64 finaliser of fnv1a64(name) + (index + 1) * 0x9E3779B97F4A7C15. */
uint64_t dj_fixture_hash_u64(const char *name, uint64_t index);
/* data[i] = scale * (2u - 1), u = (hash_u64(name, i) >> 40) / 2^24, in float. */
void dj_fixture_hash_init(const char *param_name, float *data, int64_t n, float scale);
/* The same value for one element: what dj_fixture_hash_init puts at index. */
float dj_fixture_hash_value(const char *param_name, int64_t index, float scale);
/* pos[j] = hash_u64(name + "#pos", j) % numel for j < DJ_FIXTURE_NPOS. */
void dj_fixture_hash_positions(const char *param_name, int64_t numel, int64_t *pos);
/* float32(1 / sqrt(fan_in)), the scale of conv and linear weights. */
float dj_fixture_fan_in_scale(int64_t fan_in);

/* One state_dict entry of a network fixture's "params" metadata. */
typedef struct dj_fixture_param {
    char name[128];
    int ndim;
    int64_t shape[DJ_MAX_DIMS];
    int64_t numel;
    int is_int;    /* 1 for num_batches_tracked (I64) */
    int trainable; /* 1 for parameters, 0 for buffers */
    char init[8];  /* "hash", "zeros" or "ones" */
    float scale;   /* for "hash" */
} dj_fixture_param;

/* Parses the "params" metadata into a malloc'd array (*count entries);
 * returns NULL (and fails the test) when missing or malformed. */
dj_fixture_param *dj_fixture_params(const dj_safetensors *st, int *count);

/* Compares got[0..n) with tensor `name` of st (read as f32):
 * |got - want| <= atol + rtol * |want|; reports the first few mismatches
 * as test failures and returns the number of mismatching elements. */
int64_t dj_fixture_check_close(const dj_safetensors *st, const char *name, const float *got, int64_t n, double rtol,
                               double atol);

#endif
