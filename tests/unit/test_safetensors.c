/* test_safetensors.c — the .safetensors reader and writer: round trips of
 * every dtype and shape, the byte layout of what we write, conversions, a
 * file written by the reference Python library, files we write read by it
 * (when installed), atomic writes and their failures, and every kind of
 * hostile file the reader must refuse without reading out of bounds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "dojo/safetensors.h"
#include "support/fixture.h"
#include "support/test.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", dj_test_tmpdir(), name);
    return p;
}

/* A file image: 8-byte length of header, header, then data. */
static unsigned char *image(const char *header, const void *data, size_t data_len, size_t *size) {
    size_t n = strlen(header);
    *size = 8 + n + data_len;
    unsigned char *b = malloc(*size);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(((uint64_t)n >> (8 * i)) & 0xFF);
    memcpy(b + 8, header, n);
    if (data_len)
        memcpy(b + 8 + n, data, data_len);
    return b;
}

/* Opens header+data from memory; expects a FORMAT error containing want. */
static void expect_refused(const char *header, size_t data_len, const char *want) {
    static const unsigned char zeros[256];
    size_t size;
    unsigned char *b = image(header, zeros, data_len, &size);
    dj_safetensors *st = NULL;
    dj_status s = dj_safetensors_open_memory(b, size, "hostile.safetensors", &st);
    CHECK_MSG(s == DJ_ERR_FORMAT, "header %s: status %d, want FORMAT", header, (int)s);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), want);
    CHECK_STR_CONTAINS(dj_error_message(), "hostile.safetensors");
    dj_safetensors_close(st);
    free(b);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------ */
/* round trips                                                          */

static void test_dtype_names_and_sizes(void) {
    for (int i = 0; i < DJ_ST_DTYPE_COUNT; i++) {
        dj_st_dtype d;
        CHECK(dj_st_dtype_parse(dj_st_dtype_name((dj_st_dtype)i), &d) == DJ_OK);
        CHECK_EQ_INT(d, i);
        CHECK(dj_st_dtype_size((dj_st_dtype)i) > 0);
    }
    dj_st_dtype d;
    CHECK(dj_st_dtype_parse("F128", &d) == DJ_ERR_NOT_FOUND);
    CHECK(dj_st_dtype_parse("f32", &d) == DJ_ERR_NOT_FOUND); /* names are case-sensitive */
    CHECK_EQ_INT(dj_st_dtype_size(DJ_ST_BF16), 2);
    CHECK_EQ_INT(dj_st_dtype_size(DJ_ST_F64), 8);
    CHECK_EQ_INT(dj_st_dtype_size(DJ_ST_BOOL), 1);
    CHECK(strcmp(dj_st_dtype_name(DJ_ST_DTYPE_COUNT), "?") == 0);
    dj_dtype dd;
    CHECK(dj_st_dtype_to(dj_st_dtype_from(DJ_DTYPE_BF16), &dd) == DJ_OK && dd == DJ_DTYPE_BF16);
    CHECK(dj_st_dtype_to(dj_st_dtype_from(DJ_DTYPE_I64), &dd) == DJ_OK && dd == DJ_DTYPE_I64);
    CHECK(dj_st_dtype_to(DJ_ST_F16, &dd) == DJ_ERR_UNSUPPORTED);
}

static void test_roundtrip_all_dtypes_and_shapes(void) {
    dj_st_writer *w;
    CHECK(dj_safetensors_writer_create(&w) == DJ_OK);
    unsigned char pattern[4096];
    for (int i = 0; i < (int)sizeof pattern; i++)
        pattern[i] = (unsigned char)(i * 37 + 11);
    /* every dtype as a (3, 5) tensor */
    for (int d = 0; d < DJ_ST_DTYPE_COUNT; d++) {
        char name[32];
        snprintf(name, sizeof name, "t_%s", dj_st_dtype_name((dj_st_dtype)d));
        int64_t shape[2] = {3, 5};
        CHECK(dj_safetensors_writer_add(w, name, (dj_st_dtype)d, 2, shape, pattern + d, DJ_ST_COPY) == DJ_OK);
    }
    int64_t s5[5] = {2, 1, 3, 2, 2}, s8[8] = {1, 2, 1, 2, 1, 2, 1, 2}, empty[2] = {0, 4}, zero_mid[3] = {3, 0, 2};
    float scalar = 3.25f;
    CHECK(dj_safetensors_writer_add(w, "scalar", DJ_ST_F32, 0, NULL, &scalar, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_add(w, "five_d", DJ_ST_F64, 5, s5, pattern, DJ_ST_REFERENCE) == DJ_OK);
    CHECK(dj_safetensors_writer_add(w, "eight_d", DJ_ST_I16, 8, s8, pattern + 3, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_add(w, "empty", DJ_ST_F32, 2, empty, NULL, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_add(w, "zero_mid", DJ_ST_BF16, 3, zero_mid, NULL, DJ_ST_REFERENCE) == DJ_OK);
    CHECK(dj_safetensors_writer_set_metadata(w, "format", "pt") == DJ_OK);
    CHECK(dj_safetensors_writer_set_metadata(w, "epoch", "1") == DJ_OK);
    CHECK(dj_safetensors_writer_set_metadata(w, "epoch", "7") == DJ_OK); /* replaces */
    const char *path = tmp_path("roundtrip.safetensors");
    CHECK(dj_safetensors_write_atomic(w, path) == DJ_OK);
    dj_safetensors_writer_free(w);

    dj_safetensors *st;
    CHECK(dj_safetensors_open(path, &st) == DJ_OK);
    if (!st)
        return;
    CHECK_EQ_INT(dj_safetensors_count(st), DJ_ST_DTYPE_COUNT + 5);
    for (int d = 0; d < DJ_ST_DTYPE_COUNT; d++) {
        char name[32];
        snprintf(name, sizeof name, "t_%s", dj_st_dtype_name((dj_st_dtype)d));
        dj_st_view v;
        CHECK(dj_safetensors_find(st, name, &v) == DJ_OK);
        CHECK_EQ_INT(v.dtype, d);
        CHECK_EQ_INT(v.ndim, 2);
        CHECK(v.shape[0] == 3 && v.shape[1] == 5 && v.numel == 15);
        CHECK_EQ_INT(v.nbytes, 15 * dj_st_dtype_size((dj_st_dtype)d));
        CHECK(memcmp(v.data, pattern + d, v.nbytes) == 0);
    }
    dj_st_view v;
    CHECK(dj_safetensors_find(st, "scalar", &v) == DJ_OK);
    CHECK(v.ndim == 0 && v.numel == 1 && v.nbytes == 4 && memcmp(v.data, &scalar, 4) == 0);
    CHECK(dj_safetensors_find(st, "five_d", &v) == DJ_OK);
    CHECK(v.ndim == 5 && v.shape[2] == 3 && v.numel == 24 && memcmp(v.data, pattern, 24 * 8) == 0);
    CHECK(dj_safetensors_find(st, "eight_d", &v) == DJ_OK);
    CHECK(v.ndim == 8 && v.numel == 16 && memcmp(v.data, pattern + 3, 32) == 0);
    CHECK(dj_safetensors_find(st, "empty", &v) == DJ_OK);
    CHECK(v.ndim == 2 && v.shape[0] == 0 && v.shape[1] == 4 && v.numel == 0 && v.nbytes == 0 && v.data == NULL);
    CHECK(dj_safetensors_find(st, "zero_mid", &v) == DJ_OK);
    CHECK(v.ndim == 3 && v.numel == 0 && v.dtype == DJ_ST_BF16);
    CHECK_EQ_INT(dj_safetensors_metadata_count(st), 2);
    CHECK(dj_safetensors_metadata_get(st, "epoch") && strcmp(dj_safetensors_metadata_get(st, "epoch"), "7") == 0);
    CHECK(dj_safetensors_metadata_get(st, "format") && strcmp(dj_safetensors_metadata_get(st, "format"), "pt") == 0);
    CHECK(dj_safetensors_metadata_get(st, "absent") == NULL);
    const char *k, *val;
    CHECK(dj_safetensors_metadata_at(st, 0, &k, &val) == DJ_OK && strcmp(k, "epoch") == 0);
    CHECK(dj_safetensors_metadata_at(st, 2, &k, &val) == DJ_ERR_RANGE);
    /* iteration is in name order and covers everything once */
    const char *prev = "";
    for (int i = 0; i < dj_safetensors_count(st); i++) {
        CHECK(dj_safetensors_at(st, i, &v) == DJ_OK);
        CHECK(strcmp(prev, v.name) < 0);
        prev = v.name;
    }
    CHECK(dj_safetensors_at(st, dj_safetensors_count(st), &v) == DJ_ERR_RANGE);
    CHECK(dj_safetensors_at(st, -1, &v) == DJ_ERR_RANGE);
    CHECK(strcmp(dj_safetensors_path(st), path) == 0);
    dj_safetensors_close(st);
    CHECK_EQ_INT(count_files(dj_test_tmpdir()), 1); /* no temporary file left */
    unlink(path);
}

static void test_empty_file_and_escaped_strings(void) {
    dj_st_writer *w;
    CHECK(dj_safetensors_writer_create(&w) == DJ_OK);
    const char *path = tmp_path("nothing.safetensors");
    CHECK(dj_safetensors_write_atomic(w, path) == DJ_OK);
    dj_safetensors *st;
    CHECK(dj_safetensors_open(path, &st) == DJ_OK);
    CHECK(st && dj_safetensors_count(st) == 0 && dj_safetensors_metadata_count(st) == 0);
    dj_st_view nv;
    CHECK(st && dj_safetensors_find(st, "weight", &nv) == DJ_ERR_NOT_FOUND); /* lookups in a file with no tensors */
    CHECK(st && dj_safetensors_metadata_get(st, "step") == NULL);
    dj_safetensors_close(st);
    /* names and metadata with quotes, backslashes, control bytes, UTF-8 */
    const char *odd = "a \"quoted\" \\ name\n\t\x01 \xc3\xa9t\xc3\xa9";
    float x = 1.5f;
    CHECK(dj_safetensors_writer_add(w, odd, DJ_ST_F32, 0, NULL, &x, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_set_metadata(w, odd, odd) == DJ_OK);
    CHECK(dj_safetensors_write_atomic(w, path) == DJ_OK); /* replaces the old file */
    dj_safetensors_writer_free(w);
    CHECK(dj_safetensors_open(path, &st) == DJ_OK);
    if (!st)
        return;
    float y = 0;
    CHECK(dj_safetensors_read_f32(st, odd, 0, NULL, &y) == DJ_OK && y == 1.5f);
    CHECK(dj_safetensors_metadata_get(st, odd) && strcmp(dj_safetensors_metadata_get(st, odd), odd) == 0);
    dj_safetensors_close(st);
}

/* The bytes we write follow the reference layout. */
static void test_written_layout(void) {
    dj_st_writer *w;
    CHECK(dj_safetensors_writer_create(&w) == DJ_OK);
    uint8_t u8[3] = {1, 2, 3};
    uint16_t bf[3] = {0x3f80, 0x4000, 0xc000};
    float f[2] = {1, 2};
    double d[1] = {5};
    int64_t s3[1] = {3}, s2[1] = {2}, s1[1] = {1};
    CHECK(dj_safetensors_writer_add(w, "a_u8", DJ_ST_U8, 1, s3, u8, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_add(w, "b_bf16", DJ_ST_BF16, 1, s3, bf, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_add(w, "z_f32", DJ_ST_F32, 1, s2, f, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_add(w, "c_f32", DJ_ST_F32, 1, s2, f, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_add(w, "y_f64", DJ_ST_F64, 1, s1, d, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_set_metadata(w, "k", "v") == DJ_OK);
    void *bytes;
    size_t size;
    CHECK(dj_safetensors_writer_serialize(w, &bytes, &size) == DJ_OK);
    dj_safetensors_writer_free(w);
    const unsigned char *b = bytes;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | b[i];
    CHECK(n % 8 == 0);
    CHECK(b[8] == '{');
    CHECK(b[8 + n - 1] == ' ' || b[8 + n - 1] == '}');
    CHECK_EQ_INT(size, 8 + n + 8 + 2 * 8 + 3 * 2 + 3);
    char *header = strndup((const char *)b + 8, n);
    CHECK(strncmp(header, "{\"__metadata__\":{\"k\":\"v\"},\"y_f64\"", 33) == 0);
    /* data order: F64, then F32 by name (c before z), then BF16, then U8 */
    const char *p64 = strstr(header, "y_f64"), *pc = strstr(header, "c_f32"), *pz = strstr(header, "z_f32");
    const char *pbf = strstr(header, "b_bf16"), *pu8 = strstr(header, "a_u8");
    CHECK(p64 && pc && pz && pbf && pu8 && p64 < pc && pc < pz && pz < pbf && pbf < pu8);
    CHECK(strstr(header, "\"y_f64\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}") != NULL);
    CHECK(strstr(header, "\"a_u8\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[30,33]}") != NULL);
    free(header);
    dj_safetensors *st;
    CHECK(dj_safetensors_open_memory(bytes, size, "layout", &st) == DJ_OK);
    dj_st_view v;
    CHECK(st && dj_safetensors_find(st, "b_bf16", &v) == DJ_OK && ((uintptr_t)v.data - (uintptr_t)b) % 2 == 0);
    dj_safetensors_close(st);
    free(bytes);
}

/* ------------------------------------------------------------------ */
/* conversions                                                          */

static dj_safetensors *conversion_file(void) {
    dj_st_writer *w;
    dj_safetensors_writer_create(&w);
    double f64[4] = {0.5, -1.25, 3e10, 1e-3};
    uint16_t bf16[4] = {0x3f80, 0xc040, 0x3e20, 0x7f80}; /* 1, -3, 0.15625, inf */
    uint16_t f16[4] = {0x3c00, 0xc100, 0x7bff, 0x0001};  /* 1, -2.5, 65504, 2^-24 */
    int64_t i64[4] = {-1, 2, (int64_t)1 << 40, 7};
    int32_t i32[4] = {-5, 9, 0, 100000};
    uint8_t u8[4] = {0, 255, 3, 4}, b8[4] = {1, 0, 1, 1};
    float f32[4] = {1.0f, -2.0f, 0.1f, 3.0f};
    int64_t s[2] = {2, 2};
    dj_safetensors_writer_add(w, "f64", DJ_ST_F64, 2, s, f64, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "bf16", DJ_ST_BF16, 2, s, bf16, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "f16", DJ_ST_F16, 2, s, f16, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "i64", DJ_ST_I64, 2, s, i64, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "i32", DJ_ST_I32, 2, s, i32, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "u8", DJ_ST_U8, 2, s, u8, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "bool", DJ_ST_BOOL, 2, s, b8, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "f32", DJ_ST_F32, 2, s, f32, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "f8", DJ_ST_F8_E4M3, 2, s, u8, DJ_ST_COPY);
    void *bytes;
    size_t size;
    dj_safetensors *st = NULL;
    if (dj_safetensors_writer_serialize(w, &bytes, &size) == DJ_OK) {
        CHECK(dj_safetensors_open_memory(bytes, size, "conv.safetensors", &st) == DJ_OK);
        free(bytes);
    }
    dj_safetensors_writer_free(w);
    return st;
}

static void test_read_f32_converts_and_checks_shape(void) {
    dj_safetensors *st = conversion_file();
    if (!st)
        return;
    int64_t s[2] = {2, 2}, any[2] = {-1, 2}, wrong[2] = {4, 1};
    float out[4];
    CHECK(dj_safetensors_read_f32(st, "f64", 2, s, out) == DJ_OK);
    CHECK(out[0] == 0.5f && out[1] == -1.25f && out[2] == 3e10f && out[3] == 1e-3f);
    CHECK(dj_safetensors_read_f32(st, "bf16", 2, any, out) == DJ_OK);
    CHECK(out[0] == 1.0f && out[1] == -3.0f && out[2] == 0.15625f && isinf(out[3]));
    CHECK(dj_safetensors_read_f32(st, "f16", 2, s, out) == DJ_OK);
    CHECK(out[0] == 1.0f && out[1] == -2.5f && out[2] == 65504.0f && out[3] == ldexpf(1.0f, -24));
    CHECK(dj_safetensors_read_f32(st, "i64", 2, s, out) == DJ_OK);
    CHECK(out[0] == -1.0f && out[2] == 1099511627776.0f);
    CHECK(dj_safetensors_read_f32(st, "u8", 2, s, out) == DJ_OK && out[1] == 255.0f);
    CHECK(dj_safetensors_read_f32(st, "bool", 2, s, out) == DJ_OK && out[0] == 1.0f && out[1] == 0.0f);
    CHECK(dj_safetensors_read_f32(st, "f32", 2, s, out) == DJ_OK && out[2] == 0.1f);
    /* shape mismatch: rank and size, with file, tensor and both shapes named */
    CHECK(dj_safetensors_read_f32(st, "f32", 2, wrong, out) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "'f32' has shape (2,2), expected (4,1)");
    CHECK_STR_CONTAINS(dj_error_message(), "conv.safetensors");
    CHECK(dj_safetensors_read_f32(st, "f32", 1, s, out) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_read_f32(st, "f8", 2, s, out) == DJ_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(dj_error_message(), "cannot convert F8_E4M3 to F32");
    CHECK(dj_safetensors_read_f32(st, "nope", 2, s, out) == DJ_ERR_NOT_FOUND);
    CHECK_STR_CONTAINS(dj_error_message(), "no tensor named 'nope' (conv.safetensors)");
    dj_safetensors_close(st);
}

static void test_read_other_types(void) {
    dj_safetensors *st = conversion_file();
    if (!st)
        return;
    int64_t s[2] = {2, 2};
    double d[4];
    int64_t i[4];
    uint16_t b[4];
    CHECK(dj_safetensors_read_f64(st, "f64", 2, s, d) == DJ_OK && d[2] == 3e10 && d[3] == 1e-3);
    CHECK(dj_safetensors_read_f64(st, "f32", 2, s, d) == DJ_OK && d[2] == (double)0.1f);
    CHECK(dj_safetensors_read_f64(st, "bf16", 2, s, d) == DJ_OK && d[1] == -3.0);
    CHECK(dj_safetensors_read_i64(st, "i64", 2, s, i) == DJ_OK && i[2] == (int64_t)1 << 40);
    CHECK(dj_safetensors_read_i64(st, "i32", 2, s, i) == DJ_OK && i[0] == -5 && i[3] == 100000);
    CHECK(dj_safetensors_read_i64(st, "u8", 2, s, i) == DJ_OK && i[1] == 255);
    CHECK(dj_safetensors_read_i64(st, "bool", 2, s, i) == DJ_OK && i[0] == 1 && i[1] == 0);
    CHECK(dj_safetensors_read_i64(st, "f32", 2, s, i) == DJ_ERR_UNSUPPORTED); /* labels stay exact */
    CHECK(dj_safetensors_read_bf16(st, "f32", 2, s, b) == DJ_OK);
    CHECK(b[0] == 0x3f80 && b[1] == 0xc000 && b[2] == dj_f32_to_bf16(0.1f));
    CHECK(dj_safetensors_read_bf16(st, "f64", 2, s, b) == DJ_OK && b[0] == 0x3f00);
    CHECK(dj_safetensors_read_bf16(st, "bf16", 2, s, b) == DJ_OK && b[3] == 0x7f80);
    CHECK(dj_safetensors_read_bf16(st, "i64", 2, s, b) == DJ_ERR_UNSUPPORTED);
    dj_tensor t;
    CHECK(dj_safetensors_load_tensor(st, "bf16", DJ_DTYPE_F32, &t) == DJ_OK);
    CHECK(t.dtype == DJ_DTYPE_F32 && t.ndim == 2 && t.shape[1] == 2 && ((float *)t.data)[1] == -3.0f);
    dj_tensor_free(&t);
    CHECK(dj_safetensors_load_tensor(st, "u8", DJ_DTYPE_U8, &t) == DJ_OK && ((uint8_t *)t.data)[1] == 255);
    dj_tensor_free(&t);
    CHECK(dj_safetensors_load_tensor(st, "i32", DJ_DTYPE_I32, &t) == DJ_OK && ((int32_t *)t.data)[0] == -5);
    dj_tensor_free(&t);
    CHECK(dj_safetensors_load_tensor(st, "f32", DJ_DTYPE_U8, &t) == DJ_ERR_UNSUPPORTED);
    CHECK(t.data == NULL);
    CHECK(dj_safetensors_load_tensor(st, "i64", DJ_DTYPE_I64, &t) == DJ_OK && ((int64_t *)t.data)[3] == 7);
    dj_tensor_free(&t);
    dj_safetensors_close(st);
}

/* ------------------------------------------------------------------ */
/* interoperability with the reference library                          */

static void test_reads_reference_library_file(void) {
    dj_safetensors *st = dj_fixture_open("safetensors/reference.safetensors");
    if (!st)
        return;
    CHECK_EQ_INT(dj_safetensors_count(st), 13);
    CHECK(dj_safetensors_metadata_get(st, "format") && strcmp(dj_safetensors_metadata_get(st, "format"), "pt") == 0);
    const char *u = dj_safetensors_metadata_get(st, "unicode");
    CHECK(u && strcmp(u, "\xc3\xa9t\xc3\xa9") == 0);
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s3[1] = {3}, s22[2] = {2, 2}, s2[1] = {2};
    float f[12]; /* five_d holds 12 */
    CHECK(dj_safetensors_read_f32(st, "f32", 2, s23, f) == DJ_OK);
    for (int i = 0; i < 6; i++)
        CHECK(f[i] == i * 0.5f - 1.0f);
    double d[4];
    CHECK(dj_safetensors_read_f64(st, "f64", 1, s4, d) == DJ_OK && d[1] == 1.0 / 3.0 && d[3] == 1.0);
    CHECK(dj_safetensors_read_f32(st, "f16", 1, s4, f) == DJ_OK);
    CHECK(f[0] == 1.0f && f[1] == -2.5f && f[2] == 65504.0f && f[3] == ldexpf(1.0f, -24));
    CHECK(dj_safetensors_read_f32(st, "bf16", 1, s3, f) == DJ_OK && f[1] == -3.0f && f[2] == 0.15625f);
    int64_t i[4];
    CHECK(dj_safetensors_read_i64(st, "i64", 2, s22, i) == DJ_OK && i[0] == -1 && i[1] == (int64_t)1 << 40);
    CHECK(dj_safetensors_read_i64(st, "i32", 1, s2, i) == DJ_OK && i[0] == -5 && i[1] == 9);
    CHECK(dj_safetensors_read_i64(st, "i16", 1, (int64_t[]){1}, i) == DJ_OK && i[0] == -300);
    CHECK(dj_safetensors_read_i64(st, "i8", 1, s2, i) == DJ_OK && i[0] == -7);
    CHECK(dj_safetensors_read_i64(st, "u8", 1, s3, i) == DJ_OK && i[1] == 255);
    CHECK(dj_safetensors_read_i64(st, "bool", 1, s3, i) == DJ_OK && i[0] == 1 && i[1] == 0 && i[2] == 1);
    CHECK(dj_safetensors_read_f32(st, "scalar", 0, NULL, f) == DJ_OK && f[0] == 3.25f);
    dj_st_view v;
    CHECK(dj_safetensors_find(st, "empty", &v) == DJ_OK && v.ndim == 2 && v.shape[0] == 0 && v.nbytes == 0);
    CHECK(dj_safetensors_find(st, "five_d", &v) == DJ_OK && v.ndim == 5 && v.numel == 12);
    CHECK(dj_safetensors_read_f32(st, "five_d", 5, (int64_t[]){2, 1, 3, 1, 2}, f) == DJ_OK);
    dj_safetensors_close(st);
}

/* When a Python with the safetensors package is present ($DOJO_PYTHON or
 * python3), it must read what we write. */
static void test_python_reads_our_file(void) {
    const char *py = getenv("DOJO_PYTHON");
    if (!py || !py[0])
        py = "python3";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s -c 'import safetensors.numpy' >/dev/null 2>&1", py);
    if (system(cmd) != 0)
        SKIP("no Python safetensors package (set DOJO_PYTHON to a python that has it)");
    dj_st_writer *w;
    dj_safetensors_writer_create(&w);
    float f[6] = {1, 2, 3, 4, 5, 6.5f};
    double d = -2.25;
    int64_t l[3] = {3, -7, 1 << 30};
    uint8_t u[5] = {9, 8, 7, 6, 5};
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s5[5] = {1, 5, 1, 1, 1}, e[2] = {0, 3};
    dj_safetensors_writer_add_f32(w, "w", 2, s23, f, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "d", DJ_ST_F64, 0, NULL, &d, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "labels", DJ_ST_I64, 1, s3, l, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "u8", DJ_ST_U8, 5, s5, u, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "empty", DJ_ST_F32, 2, e, NULL, DJ_ST_COPY);
    dj_safetensors_writer_set_metadata(w, "note", "quote\" and \xc3\xa9");
    const char *path = tmp_path("for_python.safetensors");
    CHECK(dj_safetensors_write_atomic(w, path) == DJ_OK);
    dj_safetensors_writer_free(w);
    snprintf(cmd, sizeof cmd,
             "%s -c 'import sys\nfrom safetensors.numpy import load_file\nfrom safetensors import safe_open\n"
             "t = load_file(sys.argv[1])\n"
             "assert t[\"w\"].shape == (2, 3) and t[\"w\"].dtype.name == \"float32\" and t[\"w\"][1, 2] == 6.5\n"
             "assert t[\"d\"].shape == () and t[\"d\"] == -2.25\n"
             "assert list(t[\"labels\"]) == [3, -7, 1 << 30] and t[\"labels\"].dtype.name == \"int64\"\n"
             "assert t[\"u8\"].shape == (1, 5, 1, 1, 1) and t[\"u8\"].sum() == 35\n"
             "assert t[\"empty\"].shape == (0, 3)\n"
             "f = safe_open(sys.argv[1], \"numpy\")\n"
             "assert f.metadata() == {\"note\": \"quote\\\" and \\u00e9\"}, f.metadata()\n' '%s'",
             py, path);
    CHECK_MSG(system(cmd) == 0, "python safetensors could not read %s", path);
}

/* ------------------------------------------------------------------ */
/* writer failures                                                      */

static void test_writer_refuses_bad_tensors(void) {
    dj_st_writer *w;
    CHECK(dj_safetensors_writer_create(&w) == DJ_OK);
    float x[4] = {0};
    int64_t s[1] = {4}, neg[1] = {-1}, huge[3] = {INT64_MAX / 2, 4, 4}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(dj_safetensors_writer_add_f32(w, "a", 1, s, x, DJ_ST_COPY) == DJ_OK);
    CHECK(dj_safetensors_writer_add_f32(w, "a", 1, s, x, DJ_ST_COPY) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "added twice");
    CHECK(dj_safetensors_writer_add_f32(w, "__metadata__", 1, s, x, DJ_ST_COPY) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_add_f32(w, "", 1, s, x, DJ_ST_COPY) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_add_f32(w, NULL, 1, s, x, DJ_ST_COPY) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_add_f32(w, "bad\xff", 1, s, x, DJ_ST_COPY) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_add_f32(w, "neg", 1, neg, x, DJ_ST_COPY) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_add_f32(w, "huge", 3, huge, x, DJ_ST_REFERENCE) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_add_f32(w, "nine", 9, s9, x, DJ_ST_COPY) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_add_f32(w, "nodata", 1, s, NULL, DJ_ST_COPY) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_add(w, "dtype", (dj_st_dtype)99, 1, s, x, DJ_ST_COPY) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_add(w, "mode", DJ_ST_F32, 1, s, x, 7) == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_set_metadata(w, "k", "\xc3") == DJ_ERR_INVALID);
    CHECK(dj_safetensors_writer_set_metadata(w, NULL, "v") == DJ_ERR_INVALID);
    dj_tensor t;
    CHECK(dj_tensor_create(DJ_DTYPE_I32, 2, (int64_t[]){2, 2}, &t) == DJ_OK);
    CHECK(dj_safetensors_writer_add_tensor(w, "t", &t, DJ_ST_COPY) == DJ_OK);
    dj_tensor_free(&t);
    void *bytes;
    size_t size;
    CHECK(dj_safetensors_writer_serialize(w, &bytes, &size) == DJ_OK);
    dj_safetensors *st;
    CHECK(dj_safetensors_open_memory(bytes, size, "m", &st) == DJ_OK);
    CHECK(st && dj_safetensors_count(st) == 2 && dj_safetensors_has(st, "t") && !dj_safetensors_has(st, "neg"));
    dj_safetensors_close(st);
    free(bytes);
    dj_safetensors_writer_free(w);
}

static void test_write_to_unwritable_path(void) {
    dj_st_writer *w;
    dj_safetensors_writer_create(&w);
    float x = 1;
    dj_safetensors_writer_add_f32(w, "x", 0, NULL, &x, DJ_ST_COPY);
    const char *missing = tmp_path("no/such/folder/ckpt.safetensors");
    CHECK(dj_safetensors_write_atomic(w, missing) == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "No such file or directory");
    CHECK_STR_CONTAINS(dj_error_message(), "ckpt.safetensors");
    /* a parent that is a file, not a folder */
    const char *file = tmp_path("plainfile");
    write_bytes(file, "x", 1);
    char below[600];
    snprintf(below, sizeof below, "%s/ckpt.safetensors", file);
    CHECK(dj_safetensors_write_atomic(w, below) == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "Not a directory");
    /* the destination is a folder: rename fails, no temporary file is left */
    const char *dir = tmp_path("a_folder");
    mkdir(dir, 0755);
    int before = count_files(dj_test_tmpdir());
    CHECK(dj_safetensors_write_atomic(w, dir) == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "cannot rename");
    CHECK_EQ_INT(count_files(dj_test_tmpdir()), before);
    CHECK(dj_safetensors_write_atomic(w, "") == DJ_ERR_INVALID);
    CHECK(dj_safetensors_write_atomic(w, NULL) == DJ_ERR_INVALID);
    rmdir(dir);
    unlink(file);
    dj_safetensors_writer_free(w);
}

/* A full disk, on a 64 KiB tmpfs when this process may mount one. */
static void test_write_to_full_disk(void) {
    const char *dir = tmp_path("tiny_fs");
    mkdir(dir, 0755);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
        rmdir(dir);
        SKIP("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
    }
    char path[600];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    write_bytes(path, "old contents", 12);
    dj_st_writer *w;
    dj_safetensors_writer_create(&w);
    size_t n = 256 * 1024;
    float *big = calloc(n, sizeof *big);
    int64_t shape[1] = {(int64_t)n};
    dj_safetensors_writer_add_f32(w, "big", 1, shape, big, DJ_ST_REFERENCE);
    CHECK(dj_safetensors_write_atomic(w, path) == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "No space left on device");
    CHECK_STR_CONTAINS(dj_error_message(), "ckpt.safetensors");
    /* the old file is untouched and no temporary file remains */
    char buf[32] = {0};
    FILE *f = fopen(path, "rb");
    CHECK(f && fread(buf, 1, sizeof buf, f) == 12 && memcmp(buf, "old contents", 12) == 0);
    if (f)
        fclose(f);
    CHECK_EQ_INT(count_files(dir), 1);
    dj_safetensors_writer_free(w);
    free(big);
    unlink(path);
    CHECK(umount2(dir, 0) == 0);
    rmdir(dir);
}

/* An unwritable folder: a read-only tmpfs (root ignores permission bits,
 * so chmod cannot make a folder unwritable for the tests run as root). */
static void test_write_to_read_only_folder(void) {
    const char *dir = tmp_path("ro_fs");
    mkdir(dir, 0755);
    if (mount("tmpfs", dir, "tmpfs", MS_RDONLY, "size=64k") != 0) {
        rmdir(dir);
        SKIP("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
    }
    char path[600];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    dj_st_writer *w;
    dj_safetensors_writer_create(&w);
    float x = 1;
    dj_safetensors_writer_add_f32(w, "x", 0, NULL, &x, DJ_ST_COPY);
    CHECK(dj_safetensors_write_atomic(w, path) == DJ_ERR_IO);
    CHECK_STR_CONTAINS(dj_error_message(), "Read-only file system");
    CHECK_STR_CONTAINS(dj_error_message(), "ckpt.safetensors");
    dj_safetensors_writer_free(w);
    CHECK(umount2(dir, 0) == 0);
    rmdir(dir);
}

/* ------------------------------------------------------------------ */
/* hostile files                                                        */

static void test_refuses_bad_header_length(void) {
    dj_safetensors *st;
    unsigned char b[16] = {0};
    CHECK(dj_safetensors_open_memory(b, 0, "empty.st", &st) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "too short for a safetensors header (empty.st)");
    CHECK(dj_safetensors_open_memory(b, 7, "seven.st", &st) == DJ_ERR_FORMAT);
    /* length larger than the file */
    b[0] = 9;
    CHECK(dj_safetensors_open_memory(b, 16, "long.st", &st) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "runs past the end of the 16 byte file (long.st)");
    /* absurd lengths: over the cap, and 2^64 - 1 (no wrap-around) */
    memset(b, 0, 8);
    b[3] = 0x10; /* 256 MiB */
    CHECK(dj_safetensors_open_memory(b, 16, "huge.st", &st) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "exceeds the");
    memset(b, 0xff, 8);
    CHECK(dj_safetensors_open_memory(b, 16, "max.st", &st) == DJ_ERR_FORMAT);
    memset(b, 0, 8);
    CHECK(dj_safetensors_open_memory(b, 16, "zero.st", &st) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "too short");
    CHECK(st == NULL);
}

static void test_refuses_bad_json(void) {
    expect_refused("[]", 0, "does not start with '{'");
    expect_refused(" {}", 0, "does not start with '{'");
    expect_refused("{\"a\":", 0, "not valid JSON");
    expect_refused("{\"a\": {\"dtype\": \"F32\",}}", 0, "not valid JSON");
    expect_refused("{} x", 0, "bytes after its JSON object");
    expect_refused("{}\x01", 0, "bytes after its JSON object");
    expect_refused("{\"\xc3\x28\": 1}", 0, "not valid UTF-8");
    expect_refused("{\"\xed\xa0\x80\": 1}", 0, "not valid UTF-8"); /* a surrogate */
    expect_refused("{\"\xc0\xaf\": 1}", 0, "not valid UTF-8");     /* an overlong */
    /* NUL inside the header ends the JSON early: the rest is refused */
    char with_nul[16] = "{}";
    size_t size;
    unsigned char *b = image("{}  ", NULL, 0, &size);
    b[10] = '\0';
    dj_safetensors *st;
    CHECK(dj_safetensors_open_memory(b, size, "nul.st", &st) == DJ_ERR_FORMAT);
    free(b);
    (void)with_nul;
    /* spaces are the allowed padding; other JSON whitespace is tolerated */
    b = image("{}      ", NULL, 0, &size);
    CHECK(dj_safetensors_open_memory(b, size, "pad.st", &st) == DJ_OK);
    dj_safetensors_close(st);
    free(b);
}

static void test_refuses_wrong_field_types(void) {
    expect_refused("{\"a\": 5}", 0, "tensor 'a': description is not a JSON object");
    expect_refused("{\"a\": {\"shape\": [], \"data_offsets\": [0, 4]}}", 4, "tensor 'a': missing or non-string \"dtype\"");
    expect_refused("{\"a\": {\"dtype\": 4, \"shape\": [], \"data_offsets\": [0, 4]}}", 4, "non-string \"dtype\"");
    expect_refused("{\"a\": {\"dtype\": \"F128\", \"shape\": [], \"data_offsets\": [0, 4]}}", 4,
                   "tensor 'a': unknown dtype 'F128'");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "non-array \"shape\"");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4, "non-array \"shape\"");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
                   "shape entries must be non-negative integers");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4, "non-negative integers");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", 4, "non-negative integers");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
                   "9 dimensions");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "\"data_offsets\" must be an array");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
                   "\"data_offsets\" must be an array");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4, "must be an array");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": {\"0\": 4}}}", 4, "must be an array");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4,
                   "must be non-negative integers");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [null, 4]}}", 4, "non-negative integers");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 1e300]}}", 4, "non-negative integers");
    expect_refused("{\"__metadata__\": [1]}", 0, "\"__metadata__\" is not a JSON object");
    expect_refused("{\"__metadata__\": {\"k\": 1}}", 0, "metadata 'k' is not a string");
    expect_refused("{\"__metadata__\": {\"k\": \"a\", \"k\": \"b\"}}", 0, "metadata key 'k' appears twice");
    expect_refused("{\"__metadata__\": {}, \"__metadata__\": {}}", 0, "\"__metadata__\" appears twice");
}

static void test_refuses_bad_offsets(void) {
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4,
                   "tensor 'a': data_offsets [4, 0] end before they begin");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4,
                   "tensor 'a': data_offsets [0, 8] run past the data (4 bytes; truncated file?)");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4,
                   "tensor 'a': data_offsets span 4 bytes but F32 x 2 elements need 8");
    expect_refused("{\"a\": {\"dtype\": \"F64\", \"shape\": [4294967296, 4294967296, 4294967296], "
                   "\"data_offsets\": [0, 0]}}", 0, "tensor 'a': shape is too large");
    expect_refused("{\"a\": {\"dtype\": \"F64\", \"shape\": [4503599627370496, 4096], \"data_offsets\": [0, 0]}}", 0,
                   "shape is too large");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 18014398509481984]}}", 4,
                   "non-negative integers"); /* beyond 2^53: not exact in JSON numbers */
    /* overlap, gap, trailing garbage, duplicates */
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                   " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
                   "tensor 'b': data [4, 8) overlaps tensor 'a'");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                   " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "overlaps");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                   " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12,
                   "tensor 'b': data begins at 8, leaving a gap after 4");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, "leaving a gap");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 5,
                   "1 bytes after the last tensor's data (trailing garbage)");
    expect_refused("{}", 3, "3 bytes after the last tensor's data");
    expect_refused("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                   " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
                   "tensor 'a': name appears twice");
    /* valid: empty tensors at any point of the tiling, extra fields ignored */
    size_t size;
    unsigned char *b = image("{\"e\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                             " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1},"
                             " \"__metadata__\": null}",
                             "abcd", 4, &size);
    dj_safetensors *st;
    CHECK(dj_safetensors_open_memory(b, size, "ok.st", &st) == DJ_OK);
    CHECK(st && dj_safetensors_count(st) == 2);
    dj_safetensors_close(st);
    free(b);
}

static void test_refuses_missing_and_odd_paths(void) {
    dj_safetensors *st = (dj_safetensors *)1;
    CHECK(dj_safetensors_open(tmp_path("absent.safetensors"), &st) == DJ_ERR_IO);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(dj_error_message(), "cannot open: No such file or directory");
    CHECK_STR_CONTAINS(dj_error_message(), "absent.safetensors");
    CHECK(dj_safetensors_open(dj_test_tmpdir(), &st) != DJ_OK);
    CHECK(dj_safetensors_open(NULL, &st) == DJ_ERR_INVALID);
    const char *p = tmp_path("empty.safetensors");
    write_bytes(p, "", 0);
    CHECK(dj_safetensors_open(p, &st) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "empty.safetensors");
    unlink(p);
}

/* Every truncation of a valid file is refused cleanly. */
static void test_every_truncation_is_refused(void) {
    dj_st_writer *w;
    dj_safetensors_writer_create(&w);
    float x[5] = {1, 2, 3, 4, 5};
    int64_t s[1] = {5};
    dj_safetensors_writer_add_f32(w, "x", 1, s, x, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "y", DJ_ST_U8, 1, s, "abcde", DJ_ST_COPY);
    dj_safetensors_writer_set_metadata(w, "k", "v");
    void *bytes;
    size_t size;
    CHECK(dj_safetensors_writer_serialize(w, &bytes, &size) == DJ_OK);
    dj_safetensors_writer_free(w);
    int refused = 0;
    for (size_t n = 0; n < size; n++) {
        dj_safetensors *st = NULL;
        unsigned char *copy = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
        memcpy(copy, bytes, n);
        refused += dj_safetensors_open_memory(copy, n, "cut.st", &st) == DJ_ERR_FORMAT;
        dj_safetensors_close(st);
        free(copy);
    }
    CHECK_EQ_INT(refused, size);
    /* a truncated file on disk names itself */
    const char *p = tmp_path("cut.safetensors");
    write_bytes(p, bytes, size - 3);
    dj_safetensors *st;
    CHECK(dj_safetensors_open(p, &st) == DJ_ERR_FORMAT);
    CHECK_STR_CONTAINS(dj_error_message(), "run past the data");
    CHECK_STR_CONTAINS(dj_error_message(), "cut.safetensors");
    unlink(p);
    free(bytes);
}

/* Random corruption never crashes or leaks (ASan/UBSan run checks this). */
static void test_random_corruption_is_safe(void) {
    dj_st_writer *w;
    dj_safetensors_writer_create(&w);
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[2] = {2, 3}, s1[1] = {2};
    dj_safetensors_writer_add_f32(w, "weight", 2, s, x, DJ_ST_COPY);
    dj_safetensors_writer_add(w, "bias", DJ_ST_BF16, 1, s1, x, DJ_ST_COPY);
    dj_safetensors_writer_set_metadata(w, "epoch", "3");
    void *bytes;
    size_t size;
    CHECK(dj_safetensors_writer_serialize(w, &bytes, &size) == DJ_OK);
    dj_safetensors_writer_free(w);
    uint64_t r = 0x12345678;
    int opened = 0;
    for (int trial = 0; trial < 4000; trial++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, bytes, size);
        int flips = 1 + trial % 3;
        for (int k = 0; k < flips; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(r >> 33) % size;
            copy[at] = (unsigned char)(r >> 20);
        }
        dj_safetensors *st = NULL;
        if (dj_safetensors_open_memory(copy, size, "fuzz", &st) == DJ_OK) {
            opened++;
            float out[8];
            dj_st_view v;
            for (int i = 0; i < dj_safetensors_count(st); i++) {
                CHECK(dj_safetensors_at(st, i, &v) == DJ_OK);
                if (v.numel <= 8)
                    dj_safetensors_read_f32(st, v.name, v.ndim, v.shape, out);
            }
        }
        dj_safetensors_close(st);
        free(copy);
    }
    CHECK(opened > 0); /* flips in the data still open */
    free(bytes);
}

int main(void) {
    DJ_RUN(test_dtype_names_and_sizes);
    DJ_RUN(test_roundtrip_all_dtypes_and_shapes);
    DJ_RUN(test_empty_file_and_escaped_strings);
    DJ_RUN(test_written_layout);
    DJ_RUN(test_read_f32_converts_and_checks_shape);
    DJ_RUN(test_read_other_types);
    DJ_RUN(test_reads_reference_library_file);
    DJ_RUN(test_python_reads_our_file);
    DJ_RUN(test_writer_refuses_bad_tensors);
    DJ_RUN(test_write_to_unwritable_path);
    DJ_RUN(test_write_to_full_disk);
    DJ_RUN(test_write_to_read_only_folder);
    DJ_RUN(test_refuses_bad_header_length);
    DJ_RUN(test_refuses_bad_json);
    DJ_RUN(test_refuses_wrong_field_types);
    DJ_RUN(test_refuses_bad_offsets);
    DJ_RUN(test_refuses_missing_and_odd_paths);
    DJ_RUN(test_every_truncation_is_refused);
    DJ_RUN(test_random_corruption_is_safe);
    return dj_test_finish();
}
