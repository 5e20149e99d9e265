/* fixture.c — finding and reading the PyTorch fixtures, and the hash init
 * that tools/make_fixtures.py uses for whole-network fixtures (see
 * fixture.h and tools/README.md). */
#include "fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "test.h"

static int dj_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

const char *dj_fixture_dir(void) {
    static char dir[1024];
    const char *env = getenv("DOJO_FIXTURES");
    if (env && env[0])
        return dj_is_dir(env) ? env : NULL;
    /* tests run from the repository root; also accept a few levels below */
    char prefix[64] = "";
    for (int up = 0; up < 5; up++) {
        snprintf(dir, sizeof dir, "%stests/fixtures", prefix);
        if (dj_is_dir(dir))
            return dir;
        strcat(prefix, "../");
    }
    return NULL;
}

char *dj_fixture_path(const char *relative, char *buf, size_t size) {
    const char *dir = dj_fixture_dir();
    if (!dir)
        return NULL;
    snprintf(buf, size, "%s/%s", dir, relative);
    return buf;
}

dj_safetensors *dj_fixture_open(const char *relative) {
    char path[1200];
    if (!dj_fixture_path(relative, path, sizeof path)) {
        dj_test_fail_at(__FILE__, __LINE__, "tests/fixtures not found (run from the repository root or set DOJO_FIXTURES)");
        return NULL;
    }
    dj_safetensors *st = NULL;
    if (dj_safetensors_open(path, &st) != DJ_OK)
        dj_test_fail_at(__FILE__, __LINE__, "%s", dj_error_message());
    return st;
}

/* ------------------------------------------------------------------ */
/* The hash init                                                        */

uint64_t dj_fixture_fnv1a64(const char *name) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001B3ull;
    }
    return h;
}

static uint64_t dj_fixture_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t dj_fixture_hash_u64(const char *name, uint64_t index) {
    return dj_fixture_mix(dj_fixture_fnv1a64(name) + (index + 1) * 0x9E3779B97F4A7C15ull);
}

void dj_fixture_hash_init(const char *param_name, float *data, int64_t n, float scale) {
    uint64_t h = dj_fixture_fnv1a64(param_name);
    for (int64_t i = 0; i < n; i++) {
        uint64_t z = dj_fixture_mix(h + ((uint64_t)i + 1) * 0x9E3779B97F4A7C15ull);
        float u = (float)(z >> 40) * (1.0f / 16777216.0f);
        float centred = 2.0f * u - 1.0f; /* exact in float32 */
        data[i] = scale * centred;
    }
}

float dj_fixture_hash_value(const char *param_name, int64_t index, float scale) {
    float u = (float)(dj_fixture_hash_u64(param_name, (uint64_t)index) >> 40) * (1.0f / 16777216.0f);
    float centred = 2.0f * u - 1.0f;
    return scale * centred;
}

void dj_fixture_hash_positions(const char *param_name, int64_t numel, int64_t *pos) {
    char name[512];
    snprintf(name, sizeof name, "%s#pos", param_name);
    for (int j = 0; j < DJ_FIXTURE_NPOS; j++)
        pos[j] = numel > 0 ? (int64_t)(dj_fixture_hash_u64(name, (uint64_t)j) % (uint64_t)numel) : 0;
}

float dj_fixture_fan_in_scale(int64_t fan_in) { return (float)(1.0 / sqrt((double)fan_in)); }

/* ------------------------------------------------------------------ */
/* Network parameter lists                                              */

static int dj_fixture_param_parse(const cJSON *item, dj_fixture_param *p) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(item, "init");
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(item, "scale");
    const cJSON *trainable = cJSON_GetObjectItemCaseSensitive(item, "trainable");
    if (!cJSON_IsString(name) || !cJSON_IsArray(shape) || !cJSON_IsString(dtype) || !cJSON_IsString(init) ||
        !cJSON_IsString(scale) || !cJSON_IsBool(trainable) || cJSON_GetArraySize(shape) > DJ_MAX_DIMS ||
        strlen(name->valuestring) >= sizeof p->name || strlen(init->valuestring) >= sizeof p->init)
        return -1;
    memset(p, 0, sizeof *p);
    strcpy(p->name, name->valuestring);
    strcpy(p->init, init->valuestring);
    p->numel = 1;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (!cJSON_IsNumber(d) || d->valuedouble < 0)
            return -1;
        p->shape[p->ndim++] = (int64_t)d->valuedouble;
        p->numel *= (int64_t)d->valuedouble;
    }
    p->is_int = strcmp(dtype->valuestring, "I64") == 0;
    p->trainable = cJSON_IsTrue(trainable);
    p->scale = strtof(scale->valuestring, NULL);
    return 0;
}

dj_fixture_param *dj_fixture_params(const dj_safetensors *st, int *count) {
    *count = 0;
    const char *text = dj_safetensors_metadata_get(st, "params");
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    int n = cJSON_IsArray(root) ? cJSON_GetArraySize(root) : 0;
    dj_fixture_param *params = n > 0 ? calloc((size_t)n, sizeof *params) : NULL;
    int i = 0;
    for (const cJSON *item = params ? root->child : NULL; item; item = item->next, i++) {
        if (dj_fixture_param_parse(item, &params[i]) != 0)
            break;
    }
    cJSON_Delete(root);
    if (!params || i != n) {
        dj_test_fail_at(__FILE__, __LINE__, "bad or missing \"params\" metadata in %s", dj_safetensors_path(st));
        free(params);
        return NULL;
    }
    *count = n;
    return params;
}

int64_t dj_fixture_check_close(const dj_safetensors *st, const char *name, const float *got, int64_t n, double rtol,
                               double atol) {
    dj_st_view v;
    if (dj_safetensors_find(st, name, &v) != DJ_OK || v.numel != n) {
        dj_test_fail_at(__FILE__, __LINE__, "fixture tensor %s: missing or %lld elements, not %lld (%s)", name,
                        dj_safetensors_has(st, name) ? (long long)v.numel : -1LL, (long long)n,
                        dj_safetensors_path(st));
        return n ? n : 1;
    }
    float *want = malloc((size_t)(n ? n : 1) * sizeof *want);
    int64_t bad = 0;
    if (!want || dj_safetensors_read_f32(st, name, v.ndim, v.shape, want) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "cannot read %s: %s", name, want ? dj_error_message() : "no memory");
        free(want);
        return n ? n : 1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!(fabs((double)got[i] - want[i]) <= atol + rtol * fabs((double)want[i]))) {
            if (bad < 5)
                dj_test_fail_at(__FILE__, __LINE__, "%s[%lld]: got %.9g, want %.9g", name, (long long)i, got[i],
                                want[i]);
            bad++;
        }
    }
    free(want);
    return bad;
}
