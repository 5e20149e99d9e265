/* safetensors.c — a hostile-input-safe reader and an atomic writer for the
 * .safetensors format (checkpoints, PyTorch parity fixtures). The format
 * and the rules the reader enforces are described in dojo/safetensors.h. */
#define _GNU_SOURCE /* qsort_r */
#include "dojo/fs.h"
#include "dojo/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* ------------------------------------------------------------------ */
/* dtypes                                                               */

static const struct {
    const char *name;
    size_t size;
} dj_st_dtypes[DJ_ST_DTYPE_COUNT] = {
    [DJ_ST_BOOL] = {"BOOL", 1}, [DJ_ST_U8] = {"U8", 1},     [DJ_ST_I8] = {"I8", 1},
    [DJ_ST_U16] = {"U16", 2},   [DJ_ST_I16] = {"I16", 2},   [DJ_ST_F16] = {"F16", 2},
    [DJ_ST_BF16] = {"BF16", 2}, [DJ_ST_U32] = {"U32", 4},   [DJ_ST_I32] = {"I32", 4},
    [DJ_ST_F32] = {"F32", 4},   [DJ_ST_U64] = {"U64", 8},   [DJ_ST_I64] = {"I64", 8},
    [DJ_ST_F64] = {"F64", 8},   [DJ_ST_F8_E4M3] = {"F8_E4M3", 1}, [DJ_ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *dj_st_dtype_name(dj_st_dtype dtype) {
    return (unsigned)dtype < DJ_ST_DTYPE_COUNT ? dj_st_dtypes[dtype].name : "?";
}

size_t dj_st_dtype_size(dj_st_dtype dtype) {
    return (unsigned)dtype < DJ_ST_DTYPE_COUNT ? dj_st_dtypes[dtype].size : 0;
}

dj_status dj_st_dtype_parse(const char *name, dj_st_dtype *dtype) {
    for (int i = 0; i < DJ_ST_DTYPE_COUNT; i++) {
        if (strcmp(name, dj_st_dtypes[i].name) == 0) {
            *dtype = (dj_st_dtype)i;
            return DJ_OK;
        }
    }
    return dj_error_set(DJ_ERR_NOT_FOUND, "safetensors", "unknown dtype '%s'", name);
}

dj_st_dtype dj_st_dtype_from(dj_dtype dtype) {
    switch (dtype) {
    case DJ_DTYPE_F32: return DJ_ST_F32;
    case DJ_DTYPE_BF16: return DJ_ST_BF16;
    case DJ_DTYPE_F64: return DJ_ST_F64;
    case DJ_DTYPE_U8: return DJ_ST_U8;
    case DJ_DTYPE_I64: return DJ_ST_I64;
    case DJ_DTYPE_I32: return DJ_ST_I32;
    }
    return DJ_ST_DTYPE_COUNT;
}

dj_status dj_st_dtype_to(dj_st_dtype st_dtype, dj_dtype *dtype) {
    switch (st_dtype) {
    case DJ_ST_F32: *dtype = DJ_DTYPE_F32; return DJ_OK;
    case DJ_ST_BF16: *dtype = DJ_DTYPE_BF16; return DJ_OK;
    case DJ_ST_F64: *dtype = DJ_DTYPE_F64; return DJ_OK;
    case DJ_ST_U8: *dtype = DJ_DTYPE_U8; return DJ_OK;
    case DJ_ST_I64: *dtype = DJ_DTYPE_I64; return DJ_OK;
    case DJ_ST_I32: *dtype = DJ_DTYPE_I32; return DJ_OK;
    default: break;
    }
    return dj_error_set(DJ_ERR_UNSUPPORTED, "safetensors", "dtype %s has no dojo tensor type",
                        dj_st_dtype_name(st_dtype));
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

/* 1 when s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static int dj_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static uint64_t dj_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* IEEE half to float (subnormals, infinities and NaN included). */
static float dj_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: value = man * 2^-24 */
        float f = (float)man * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Product of shape times elem, checked: -1 on overflow or a negative size. */
static int dj_st_sizes(int ndim, const int64_t *shape, size_t elem, int64_t *numel, uint64_t *nbytes) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(n, shape[i], &n))
            return -1;
    }
    uint64_t b;
    if (__builtin_mul_overflow((uint64_t)n, (uint64_t)elem, &b) || b > (uint64_t)SIZE_MAX)
        return -1;
    *numel = n;
    *nbytes = b;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reader                                                               */

typedef struct dj_st_entry {
    char *name;
    dj_st_dtype dtype;
    int ndim;
    int64_t shape[DJ_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end; /* relative to the byte buffer */
} dj_st_entry;

struct dj_safetensors {
    char *path;
    unsigned char *file; /* the whole file */
    size_t size;
    const unsigned char *buffer; /* file + 8 + N */
    size_t buffer_size;
    dj_st_entry *entries; /* sorted by name */
    int count;
    char **meta_keys, **meta_values; /* sorted by key */
    int meta_count;
};

void dj_safetensors_close(dj_safetensors *st) {
    if (!st)
        return;
    for (int i = 0; i < st->count; i++)
        free(st->entries[i].name);
    for (int i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->entries);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->file);
    free(st->path);
    free(st);
}

/* A non-negative integral JSON number that fits in int64 and in a double
 * exactly (<= 2^53); -1 otherwise. */
static int dj_st_json_uint(const cJSON *item, int64_t *out) {
    if (!cJSON_IsNumber(item))
        return -1;
    double d = item->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || floor(d) != d)
        return -1;
    *out = (int64_t)d;
    return 0;
}

static dj_status dj_st_fail(const dj_safetensors *st, const char *tensor, const char *fmt, const char *detail) {
    if (tensor)
        return dj_error_set(DJ_ERR_FORMAT, st->path, "tensor '%s': %s%s", tensor, fmt, detail ? detail : "");
    return dj_error_set(DJ_ERR_FORMAT, st->path, "%s%s", fmt, detail ? detail : "");
}

/* Parses one tensor description {"dtype", "shape", "data_offsets"}. */
static dj_status dj_st_parse_entry(const dj_safetensors *st, const cJSON *item, dj_st_entry *e) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return dj_st_fail(st, name, "description is not a JSON object", NULL);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype))
        return dj_st_fail(st, name, "missing or non-string \"dtype\"", NULL);
    if (dj_st_dtype_parse(dtype->valuestring, &e->dtype) != DJ_OK)
        return dj_error_set(DJ_ERR_FORMAT, st->path, "tensor '%s': unknown dtype '%.40s'", name, dtype->valuestring);
    if (!cJSON_IsArray(shape))
        return dj_st_fail(st, name, "missing or non-array \"shape\"", NULL);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > DJ_ST_MAX_DIMS)
        return dj_error_set(DJ_ERR_FORMAT, st->path, "tensor '%s': %d dimensions, at most %d supported", name,
                            ndim, DJ_ST_MAX_DIMS);
    e->ndim = ndim;
    int d = 0;
    for (const cJSON *s = shape->child; s; s = s->next, d++) {
        if (dj_st_json_uint(s, &e->shape[d]) != 0)
            return dj_st_fail(st, name, "shape entries must be non-negative integers", NULL);
    }
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return dj_st_fail(st, name, "\"data_offsets\" must be an array [begin, end]", NULL);
    int64_t b, en;
    if (dj_st_json_uint(offsets->child, &b) != 0 || dj_st_json_uint(offsets->child->next, &en) != 0)
        return dj_st_fail(st, name, "\"data_offsets\" must be non-negative integers", NULL);
    uint64_t nbytes;
    if (dj_st_sizes(e->ndim, e->shape, dj_st_dtype_size(e->dtype), &e->numel, &nbytes) != 0)
        return dj_st_fail(st, name, "shape is too large (size overflows)", NULL);
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    if (e->begin > e->end)
        return dj_error_set(DJ_ERR_FORMAT, st->path, "tensor '%s': data_offsets [%llu, %llu] end before they begin",
                            name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > st->buffer_size)
        return dj_error_set(DJ_ERR_FORMAT, st->path,
                            "tensor '%s': data_offsets [%llu, %llu] run past the data (%zu bytes; truncated file?)",
                            name, (unsigned long long)e->begin, (unsigned long long)e->end, st->buffer_size);
    if (e->end - e->begin != nbytes)
        return dj_error_set(DJ_ERR_FORMAT, st->path,
                            "tensor '%s': data_offsets span %llu bytes but %s x %lld elements need %llu", name,
                            (unsigned long long)(e->end - e->begin), dj_st_dtype_name(e->dtype),
                            (long long)e->numel, (unsigned long long)nbytes);
    e->name = strdup(name);
    if (!e->name)
        return dj_error_set(DJ_ERR_NOMEM, st->path, "out of memory for tensor names");
    return DJ_OK;
}

static int dj_st_cmp_strp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parses "__metadata__": an object of string values, or null. */
static dj_status dj_st_parse_metadata(dj_safetensors *st, const cJSON *meta) {
    if (cJSON_IsNull(meta))
        return DJ_OK;
    if (!cJSON_IsObject(meta))
        return dj_st_fail(st, NULL, "\"__metadata__\" is not a JSON object", NULL);
    int n = cJSON_GetArraySize(meta);
    st->meta_keys = calloc((size_t)n + 1, sizeof *st->meta_keys);
    st->meta_values = calloc((size_t)n + 1, sizeof *st->meta_values);
    if (!st->meta_keys || !st->meta_values)
        return dj_error_set(DJ_ERR_NOMEM, st->path, "out of memory for metadata");
    for (const cJSON *m = meta->child; m; m = m->next) {
        if (!cJSON_IsString(m))
            return dj_error_set(DJ_ERR_FORMAT, st->path, "metadata '%s' is not a string", m->string);
        /* keys and values are sorted together below through one array of pairs */
        char *pair = malloc(strlen(m->string) + strlen(m->valuestring) + 2);
        if (!pair)
            return dj_error_set(DJ_ERR_NOMEM, st->path, "out of memory for metadata");
        strcpy(pair, m->string);
        strcpy(pair + strlen(m->string) + 1, m->valuestring);
        st->meta_keys[st->meta_count++] = pair;
    }
    qsort(st->meta_keys, (size_t)st->meta_count, sizeof *st->meta_keys, dj_st_cmp_strp);
    for (int i = 0; i < st->meta_count; i++) {
        if (i > 0 && strcmp(st->meta_keys[i - 1], st->meta_keys[i]) == 0)
            return dj_error_set(DJ_ERR_FORMAT, st->path, "metadata key '%s' appears twice", st->meta_keys[i]);
        const char *value = st->meta_keys[i] + strlen(st->meta_keys[i]) + 1;
        st->meta_values[i] = strdup(value);
        if (!st->meta_values[i])
            return dj_error_set(DJ_ERR_NOMEM, st->path, "out of memory for metadata");
    }
    return DJ_OK;
}

static int dj_st_cmp_name(const void *a, const void *b) {
    return strcmp(((const dj_st_entry *)a)->name, ((const dj_st_entry *)b)->name);
}

static int dj_st_cmp_offset(const void *a, const void *b) {
    const dj_st_entry *x = *(const dj_st_entry *const *)a, *y = *(const dj_st_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The byte ranges, sorted, must tile [0, buffer_size) exactly. */
static dj_status dj_st_check_tiling(const dj_safetensors *st) {
    dj_st_entry **order = malloc(((size_t)st->count + 1) * sizeof *order);
    if (!order)
        return dj_error_set(DJ_ERR_NOMEM, st->path, "out of memory");
    for (int i = 0; i < st->count; i++)
        order[i] = &st->entries[i];
    qsort(order, (size_t)st->count, sizeof *order, dj_st_cmp_offset);
    uint64_t at = 0;
    dj_status s = DJ_OK;
    for (int i = 0; i < st->count && s == DJ_OK; i++) {
        const dj_st_entry *e = order[i];
        if (e->begin < at)
            s = dj_error_set(DJ_ERR_FORMAT, st->path, "tensor '%s': data [%llu, %llu) overlaps tensor '%s'", e->name,
                             (unsigned long long)e->begin, (unsigned long long)e->end, order[i - 1]->name);
        else if (e->begin > at)
            s = dj_error_set(DJ_ERR_FORMAT, st->path, "tensor '%s': data begins at %llu, leaving a gap after %llu",
                             e->name, (unsigned long long)e->begin, (unsigned long long)at);
        at = e->end;
    }
    if (s == DJ_OK && at != st->buffer_size)
        s = dj_error_set(DJ_ERR_FORMAT, st->path, "%llu bytes after the last tensor's data (trailing garbage)",
                         (unsigned long long)(st->buffer_size - at));
    free(order);
    return s;
}

/* Validates the header of st->file and fills entries and metadata. */
static dj_status dj_st_parse(dj_safetensors *st) {
    if (st->size < 8)
        return dj_error_set(DJ_ERR_FORMAT, st->path, "file of %zu bytes is too short for a safetensors header",
                            st->size);
    uint64_t n = dj_le64(st->file);
    if (n > DJ_ST_MAX_HEADER)
        return dj_error_set(DJ_ERR_FORMAT, st->path, "header length %llu exceeds the %llu byte limit",
                            (unsigned long long)n, (unsigned long long)DJ_ST_MAX_HEADER);
    if (n > st->size - 8)
        return dj_error_set(DJ_ERR_FORMAT, st->path, "header length %llu runs past the end of the %zu byte file",
                            (unsigned long long)n, st->size);
    if (n < 2)
        return dj_error_set(DJ_ERR_FORMAT, st->path, "header of %llu bytes is too short", (unsigned long long)n);
    const char *header = (const char *)st->file + 8;
    st->buffer = st->file + 8 + n;
    st->buffer_size = st->size - 8 - (size_t)n;
    if (header[0] != '{')
        return dj_st_fail(st, NULL, "header does not start with '{'", NULL);
    if (!dj_utf8_valid((const unsigned char *)header, (size_t)n))
        return dj_st_fail(st, NULL, "header is not valid UTF-8", NULL);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(header, (size_t)n, &end, 0);
    if (!root)
        return dj_error_set(DJ_ERR_FORMAT, st->path, "header is not valid JSON (near byte %lld)",
                            (long long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - header : -1));
    dj_status s = DJ_OK;
    for (const char *p = end; p < header + n && s == DJ_OK; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
            s = dj_st_fail(st, NULL, "header has bytes after its JSON object", NULL);
    }
    if (s == DJ_OK && !cJSON_IsObject(root))
        s = dj_st_fail(st, NULL, "header is not a JSON object", NULL);
    int total = s == DJ_OK ? cJSON_GetArraySize(root) : 0;
    if (s == DJ_OK) {
        st->entries = calloc((size_t)total + 1, sizeof *st->entries);
        if (!st->entries)
            s = dj_error_set(DJ_ERR_NOMEM, st->path, "out of memory for %d tensors", total);
    }
    int seen_meta = 0;
    for (const cJSON *item = s == DJ_OK ? root->child : NULL; item && s == DJ_OK; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            s = seen_meta++ ? dj_st_fail(st, NULL, "\"__metadata__\" appears twice", NULL)
                            : dj_st_parse_metadata(st, item);
            continue;
        }
        s = dj_st_parse_entry(st, item, &st->entries[st->count]);
        if (s == DJ_OK)
            st->count++;
    }
    cJSON_Delete(root);
    DJ_TRY(s);
    qsort(st->entries, (size_t)st->count, sizeof *st->entries, dj_st_cmp_name);
    for (int i = 1; i < st->count; i++) {
        if (strcmp(st->entries[i - 1].name, st->entries[i].name) == 0)
            return dj_st_fail(st, st->entries[i].name, "name appears twice in the header", NULL);
    }
    return dj_st_check_tiling(st);
}

static dj_status dj_st_new(const char *what, dj_safetensors **out) {
    *out = calloc(1, sizeof **out);
    if (!*out)
        return dj_error_set(DJ_ERR_NOMEM, what, "out of memory");
    (*out)->path = strdup(what ? what : "(memory)");
    if (!(*out)->path) {
        free(*out);
        *out = NULL;
        return dj_error_set(DJ_ERR_NOMEM, what, "out of memory");
    }
    return DJ_OK;
}

static dj_status dj_st_finish(dj_safetensors *st, dj_safetensors **out) {
    dj_status s = dj_st_parse(st);
    if (s != DJ_OK) {
        dj_safetensors_close(st);
        return s;
    }
    *out = st;
    return DJ_OK;
}

dj_status dj_safetensors_open_memory(const void *bytes, size_t size, const char *what, dj_safetensors **out) {
    *out = NULL;
    dj_safetensors *st;
    DJ_TRY(dj_st_new(what, &st));
    st->file = malloc(size ? size : 1);
    if (!st->file) {
        dj_safetensors_close(st);
        return dj_error_set(DJ_ERR_NOMEM, what, "out of memory for %zu bytes", size);
    }
    if (size)
        memcpy(st->file, bytes, size);
    st->size = size;
    return dj_st_finish(st, out);
}

/* Reads the whole regular file at path into st->file. */
static dj_status dj_st_read_file(dj_safetensors *st, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dj_error_set(DJ_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct stat sb;
    dj_status s = DJ_OK;
    if (fstat(fd, &sb) != 0)
        s = dj_error_set(DJ_ERR_IO, path, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        s = dj_error_set(DJ_ERR_IO, path, "not a regular file");
    else if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX / 2)
        s = dj_error_set(DJ_ERR_RANGE, path, "file too large");
    if (s == DJ_OK) {
        st->size = (size_t)sb.st_size;
        st->file = malloc(st->size ? st->size : 1);
        if (!st->file)
            s = dj_error_set(DJ_ERR_NOMEM, path, "out of memory for %zu bytes", st->size);
    }
    size_t got = 0;
    while (s == DJ_OK && got < st->size) {
        ssize_t r = read(fd, st->file + got, st->size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            s = dj_error_set(DJ_ERR_IO, path, "cannot read: %s", strerror(errno));
        else if (r == 0)
            s = dj_error_set(DJ_ERR_IO, path, "file shrank while being read");
        got += r > 0 ? (size_t)r : 0;
    }
    close(fd);
    return s;
}

dj_status dj_safetensors_open(const char *path, dj_safetensors **out) {
    *out = NULL;
    if (!path)
        return dj_error_set(DJ_ERR_INVALID, "safetensors", "no path given");
    dj_safetensors *st;
    DJ_TRY(dj_st_new(path, &st));
    dj_status s = dj_st_read_file(st, path);
    if (s != DJ_OK) {
        dj_safetensors_close(st);
        return s;
    }
    return dj_st_finish(st, out);
}

const char *dj_safetensors_path(const dj_safetensors *st) { return st->path; }
int dj_safetensors_count(const dj_safetensors *st) { return st->count; }

static void dj_st_fill_view(const dj_safetensors *st, const dj_st_entry *e, dj_st_view *view) {
    memset(view, 0, sizeof *view);
    view->name = e->name;
    view->dtype = e->dtype;
    view->ndim = e->ndim;
    memcpy(view->shape, e->shape, sizeof view->shape);
    view->numel = e->numel;
    view->nbytes = (size_t)(e->end - e->begin);
    view->data = view->nbytes ? st->buffer + e->begin : NULL;
}

dj_status dj_safetensors_at(const dj_safetensors *st, int i, dj_st_view *view) {
    if (i < 0 || i >= st->count)
        return dj_error_set(DJ_ERR_RANGE, st->path, "tensor index %d out of 0..%d", i, st->count - 1);
    dj_st_fill_view(st, &st->entries[i], view);
    return DJ_OK;
}

static const dj_st_entry *dj_st_lookup(const dj_safetensors *st, const char *name) {
    dj_st_entry key = {.name = (char *)name};
    if (st->count == 0) /* a file with no tensors: bsearch wants a non-NULL array */
        return NULL;
    return bsearch(&key, st->entries, (size_t)st->count, sizeof key, dj_st_cmp_name);
}

dj_status dj_safetensors_find(const dj_safetensors *st, const char *name, dj_st_view *view) {
    const dj_st_entry *e = name ? dj_st_lookup(st, name) : NULL;
    if (!e)
        return dj_error_set(DJ_ERR_NOT_FOUND, st->path, "no tensor named '%s'", name ? name : "(null)");
    dj_st_fill_view(st, e, view);
    return DJ_OK;
}

int dj_safetensors_has(const dj_safetensors *st, const char *name) { return name && dj_st_lookup(st, name) != NULL; }

int dj_safetensors_metadata_count(const dj_safetensors *st) { return st->meta_count; }

dj_status dj_safetensors_metadata_at(const dj_safetensors *st, int i, const char **key, const char **value) {
    if (i < 0 || i >= st->meta_count)
        return dj_error_set(DJ_ERR_RANGE, st->path, "metadata index %d out of 0..%d", i, st->meta_count - 1);
    *key = st->meta_keys[i];
    *value = st->meta_values[i];
    return DJ_OK;
}

const char *dj_safetensors_metadata_get(const dj_safetensors *st, const char *key) {
    if (!key || st->meta_count == 0) /* bsearch wants a non-NULL array */
        return NULL;
    char **hit = bsearch(&key, st->meta_keys, (size_t)st->meta_count, sizeof *st->meta_keys, dj_st_cmp_strp);
    return hit ? st->meta_values[hit - st->meta_keys] : NULL;
}

/* ------------------------------------------------------------------ */
/* Typed reads with conversion                                          */

/* Finds name and checks its shape against expected (-1 = any). */
static dj_status dj_st_find_shaped(const dj_safetensors *st, const char *name, int ndim, const int64_t *expected,
                                   dj_st_view *v) {
    DJ_TRY(dj_safetensors_find(st, name, v));
    int ok = v->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = expected[i] < 0 || expected[i] == v->shape[i];
    if (!ok) {
        char want[160], got[160];
        dj_shape_string(ndim, expected, want, sizeof want);
        dj_shape_string(v->ndim, v->shape, got, sizeof got);
        return dj_error_set(DJ_ERR_INVALID, st->path, "tensor '%s' has shape %s, expected %s", name, got, want);
    }
    return DJ_OK;
}

/* Element i of v as a double; *is_float says whether the dtype is a float
 * type; returns -1 for dtypes without a numeric reading (F8). */
static int dj_st_elem(const dj_st_view *v, int64_t i, double *out, int *is_float) {
    const unsigned char *p = (const unsigned char *)v->data + (size_t)i * dj_st_dtype_size(v->dtype);
    *is_float = 0;
    switch (v->dtype) {
    case DJ_ST_BOOL: *out = p[0] != 0; return 0;
    case DJ_ST_U8: *out = p[0]; return 0;
    case DJ_ST_I8: *out = (int8_t)p[0]; return 0;
    case DJ_ST_U16: { uint16_t x; memcpy(&x, p, 2); *out = x; return 0; }
    case DJ_ST_I16: { int16_t x; memcpy(&x, p, 2); *out = x; return 0; }
    case DJ_ST_U32: { uint32_t x; memcpy(&x, p, 4); *out = x; return 0; }
    case DJ_ST_I32: { int32_t x; memcpy(&x, p, 4); *out = x; return 0; }
    case DJ_ST_U64: { uint64_t x; memcpy(&x, p, 8); *out = (double)x; return 0; }
    case DJ_ST_I64: { int64_t x; memcpy(&x, p, 8); *out = (double)x; return 0; }
    case DJ_ST_F16: { uint16_t x; memcpy(&x, p, 2); *out = dj_f16_to_f32(x); *is_float = 1; return 0; }
    case DJ_ST_BF16: { uint16_t x; memcpy(&x, p, 2); *out = dj_bf16_to_f32(x); *is_float = 1; return 0; }
    case DJ_ST_F32: { float x; memcpy(&x, p, 4); *out = x; *is_float = 1; return 0; }
    case DJ_ST_F64: { double x; memcpy(&x, p, 8); *out = x; *is_float = 1; return 0; }
    default: return -1;
    }
}

static dj_status dj_st_no_conversion(const dj_safetensors *st, const dj_st_view *v, const char *to) {
    return dj_error_set(DJ_ERR_UNSUPPORTED, st->path, "tensor '%s': cannot convert %s to %s", v->name,
                        dj_st_dtype_name(v->dtype), to);
}

dj_status dj_safetensors_read_f64(const dj_safetensors *st, const char *name, int ndim, const int64_t *expected,
                                  double *out) {
    dj_st_view v;
    DJ_TRY(dj_st_find_shaped(st, name, ndim, expected, &v));
    if (v.dtype == DJ_ST_F64) {
        if (v.nbytes)
            memcpy(out, v.data, v.nbytes);
        return DJ_OK;
    }
    int is_float;
    for (int64_t i = 0; i < v.numel; i++) {
        if (dj_st_elem(&v, i, &out[i], &is_float) != 0)
            return dj_st_no_conversion(st, &v, "F64");
    }
    return DJ_OK;
}

dj_status dj_safetensors_read_f32(const dj_safetensors *st, const char *name, int ndim, const int64_t *expected,
                                  float *out) {
    dj_st_view v;
    DJ_TRY(dj_st_find_shaped(st, name, ndim, expected, &v));
    if (v.dtype == DJ_ST_F32) {
        if (v.nbytes)
            memcpy(out, v.data, v.nbytes);
        return DJ_OK;
    }
    int is_float;
    double x;
    for (int64_t i = 0; i < v.numel; i++) {
        if (dj_st_elem(&v, i, &x, &is_float) != 0)
            return dj_st_no_conversion(st, &v, "F32");
        out[i] = (float)x;
    }
    return DJ_OK;
}

dj_status dj_safetensors_read_bf16(const dj_safetensors *st, const char *name, int ndim, const int64_t *expected,
                                   uint16_t *out) {
    dj_st_view v;
    DJ_TRY(dj_st_find_shaped(st, name, ndim, expected, &v));
    if (v.dtype == DJ_ST_BF16) {
        if (v.nbytes)
            memcpy(out, v.data, v.nbytes);
        return DJ_OK;
    }
    if (v.dtype != DJ_ST_F32 && v.dtype != DJ_ST_F64 && v.dtype != DJ_ST_F16)
        return dj_st_no_conversion(st, &v, "BF16");
    int is_float;
    double x = 0.0;
    for (int64_t i = 0; i < v.numel; i++) {
        dj_st_elem(&v, i, &x, &is_float);
        out[i] = dj_f32_to_bf16((float)x);
    }
    return DJ_OK;
}

dj_status dj_safetensors_read_i64(const dj_safetensors *st, const char *name, int ndim, const int64_t *expected,
                                  int64_t *out) {
    dj_st_view v;
    DJ_TRY(dj_st_find_shaped(st, name, ndim, expected, &v));
    const unsigned char *p = v.data;
    for (int64_t i = 0; i < v.numel; i++) {
        switch (v.dtype) {
        case DJ_ST_I64: memcpy(&out[i], p + 8 * i, 8); break;
        case DJ_ST_I32: { int32_t x; memcpy(&x, p + 4 * i, 4); out[i] = x; break; }
        case DJ_ST_I16: { int16_t x; memcpy(&x, p + 2 * i, 2); out[i] = x; break; }
        case DJ_ST_U16: { uint16_t x; memcpy(&x, p + 2 * i, 2); out[i] = x; break; }
        case DJ_ST_U32: { uint32_t x; memcpy(&x, p + 4 * i, 4); out[i] = x; break; }
        case DJ_ST_I8: out[i] = (int8_t)p[i]; break;
        case DJ_ST_U8: out[i] = p[i]; break;
        case DJ_ST_BOOL: out[i] = p[i] != 0; break;
        default: return dj_st_no_conversion(st, &v, "I64");
        }
    }
    return DJ_OK;
}

dj_status dj_safetensors_load_tensor(const dj_safetensors *st, const char *name, dj_dtype dtype, dj_tensor *out) {
    memset(out, 0, sizeof *out);
    dj_st_view v;
    DJ_TRY(dj_safetensors_find(st, name, &v));
    if (v.ndim > DJ_MAX_DIMS)
        return dj_error_set(DJ_ERR_UNSUPPORTED, st->path, "tensor '%s' has %d dimensions, dojo tensors at most %d",
                            name, v.ndim, DJ_MAX_DIMS);
    DJ_TRY(dj_tensor_create(dtype, v.ndim, v.shape, out));
    dj_status s;
    switch (dtype) {
    case DJ_DTYPE_F32: s = dj_safetensors_read_f32(st, name, v.ndim, v.shape, out->data); break;
    case DJ_DTYPE_F64: s = dj_safetensors_read_f64(st, name, v.ndim, v.shape, out->data); break;
    case DJ_DTYPE_BF16: s = dj_safetensors_read_bf16(st, name, v.ndim, v.shape, out->data); break;
    case DJ_DTYPE_I64: s = dj_safetensors_read_i64(st, name, v.ndim, v.shape, out->data); break;
    default:
        s = v.dtype == dj_st_dtype_from(dtype) ? DJ_OK : dj_st_no_conversion(st, &v, dj_dtype_name(dtype));
        if (s == DJ_OK && v.nbytes)
            memcpy(out->data, v.data, v.nbytes);
        break;
    }
    if (s != DJ_OK)
        dj_tensor_free(out);
    return s;
}

/* ------------------------------------------------------------------ */
/* Writer                                                               */

typedef struct dj_st_wentry {
    char *name;
    dj_st_dtype dtype;
    int ndim;
    int64_t shape[DJ_ST_MAX_DIMS];
    size_t nbytes;
    const void *data;
    void *owned; /* == data when copied */
} dj_st_wentry;

struct dj_st_writer {
    dj_st_wentry *entries;
    int count, cap;
    char **meta_keys, **meta_values;
    int meta_count, meta_cap;
};

dj_status dj_safetensors_writer_create(dj_st_writer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out)
        return dj_error_set(DJ_ERR_NOMEM, "safetensors writer", "out of memory");
    return DJ_OK;
}

void dj_safetensors_writer_free(dj_st_writer *w) {
    if (!w)
        return;
    for (int i = 0; i < w->count; i++) {
        free(w->entries[i].name);
        free(w->entries[i].owned);
    }
    for (int i = 0; i < w->meta_count; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->entries);
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

static dj_status dj_st_check_string(const char *s, const char *what) {
    if (!s || !dj_utf8_valid((const unsigned char *)s, strlen(s)))
        return dj_error_set(DJ_ERR_INVALID, "safetensors writer", "%s is missing or not valid UTF-8", what);
    return DJ_OK;
}

dj_status dj_safetensors_writer_add(dj_st_writer *w, const char *name, dj_st_dtype dtype, int ndim,
                                    const int64_t *shape, const void *data, int mode) {
    DJ_TRY(dj_st_check_string(name, "tensor name"));
    if (mode != DJ_ST_COPY && mode != DJ_ST_REFERENCE)
        return dj_error_set(DJ_ERR_INVALID, name, "mode %d is neither DJ_ST_COPY nor DJ_ST_REFERENCE", mode);
    if (!name[0] || strcmp(name, "__metadata__") == 0)
        return dj_error_set(DJ_ERR_INVALID, "safetensors writer", "invalid tensor name '%s'", name);
    if (dj_st_dtype_size(dtype) == 0)
        return dj_error_set(DJ_ERR_INVALID, name, "unknown dtype %d", (int)dtype);
    if (ndim < 0 || ndim > DJ_ST_MAX_DIMS)
        return dj_error_set(DJ_ERR_INVALID, name, "%d dimensions, at most %d supported", ndim, DJ_ST_MAX_DIMS);
    for (int i = 0; i < w->count; i++) {
        if (strcmp(w->entries[i].name, name) == 0)
            return dj_error_set(DJ_ERR_INVALID, name, "tensor added twice to a safetensors writer");
    }
    int64_t numel;
    uint64_t nbytes;
    if (dj_st_sizes(ndim, shape, dj_st_dtype_size(dtype), &numel, &nbytes) != 0)
        return dj_error_set(DJ_ERR_INVALID, name, "negative or overflowing shape");
    if (nbytes && !data)
        return dj_error_set(DJ_ERR_INVALID, name, "no data for a non-empty tensor");
    if (w->count == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        dj_st_wentry *grown = realloc(w->entries, (size_t)cap * sizeof *grown);
        if (!grown)
            return dj_error_set(DJ_ERR_NOMEM, name, "out of memory");
        w->entries = grown;
        w->cap = cap;
    }
    dj_st_wentry *e = &w->entries[w->count];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (nbytes && mode == DJ_ST_COPY)
        e->owned = malloc((size_t)nbytes);
    if (!e->name || (nbytes && mode == DJ_ST_COPY && !e->owned)) {
        free(e->name);
        free(e->owned);
        return dj_error_set(DJ_ERR_NOMEM, name, "out of memory for %llu bytes", (unsigned long long)nbytes);
    }
    if (e->owned)
        memcpy(e->owned, data, (size_t)nbytes);
    e->data = e->owned ? e->owned : data;
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->nbytes = (size_t)nbytes;
    w->count++;
    return DJ_OK;
}

dj_status dj_safetensors_writer_add_tensor(dj_st_writer *w, const char *name, const dj_tensor *t, int mode) {
    dj_st_dtype dtype = dj_st_dtype_from(t->dtype);
    if (dtype == DJ_ST_DTYPE_COUNT)
        return dj_error_set(DJ_ERR_INVALID, name, "tensor of unknown dtype %d", (int)t->dtype);
    return dj_safetensors_writer_add(w, name, dtype, t->ndim, t->shape, t->data, mode);
}

dj_status dj_safetensors_writer_add_f32(dj_st_writer *w, const char *name, int ndim, const int64_t *shape,
                                        const float *data, int mode) {
    return dj_safetensors_writer_add(w, name, DJ_ST_F32, ndim, shape, data, mode);
}

dj_status dj_safetensors_writer_set_metadata(dj_st_writer *w, const char *key, const char *value) {
    DJ_TRY(dj_st_check_string(key, "metadata key"));
    DJ_TRY(dj_st_check_string(value, "metadata value"));
    char *v = strdup(value);
    if (!v)
        return dj_error_set(DJ_ERR_NOMEM, key, "out of memory");
    for (int i = 0; i < w->meta_count; i++) {
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return DJ_OK;
        }
    }
    if (w->meta_count == w->meta_cap) {
        int cap = w->meta_cap ? 2 * w->meta_cap : 8;
        char **k = realloc(w->meta_keys, (size_t)cap * sizeof *k);
        if (k)
            w->meta_keys = k;
        char **vv = k ? realloc(w->meta_values, (size_t)cap * sizeof *vv) : NULL;
        if (vv)
            w->meta_values = vv;
        if (!k || !vv) {
            free(v);
            return dj_error_set(DJ_ERR_NOMEM, key, "out of memory");
        }
        w->meta_cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return dj_error_set(DJ_ERR_NOMEM, key, "out of memory");
    }
    w->meta_keys[w->meta_count] = k;
    w->meta_values[w->meta_count++] = v;
    return DJ_OK;
}

/* A growable byte string for the JSON header. */
typedef struct dj_st_buf {
    char *data;
    size_t len, cap;
    int failed;
} dj_st_buf;

static void dj_st_put(dj_st_buf *b, const char *s, size_t n) {
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void dj_st_puts(dj_st_buf *b, const char *s) { dj_st_put(b, s, strlen(s)); }

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void dj_st_put_json_string(dj_st_buf *b, const char *s) {
    dj_st_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p, esc[2] = '\0';
            dj_st_puts(b, esc);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            dj_st_puts(b, esc);
        } else {
            dj_st_put(b, (const char *)p, 1);
        }
    }
    dj_st_puts(b, "\"");
}

/* Data order of the reference writer: larger elements first, then name. */
static int dj_st_cmp_write_order(const void *a, const void *b) {
    const dj_st_wentry *x = *(const dj_st_wentry *const *)a, *y = *(const dj_st_wentry *const *)b;
    size_t sx = dj_st_dtype_size(x->dtype), sy = dj_st_dtype_size(y->dtype);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int dj_st_cmp_index_by_key(const void *a, const void *b, void *keys) {
    char **k = keys;
    return strcmp(k[*(const int *)a], k[*(const int *)b]);
}

/* Builds the padded header (8-byte length prefix included) and the tensor
 * order. *order: count entries, caller frees; *header: caller frees. */
static dj_status dj_st_build_header(const dj_st_writer *w, dj_st_buf *header, const dj_st_wentry ***order) {
    memset(header, 0, sizeof *header);
    const dj_st_wentry **ord = malloc(((size_t)w->count + 1) * sizeof *ord);
    int *mord = malloc(((size_t)w->meta_count + 1) * sizeof *mord);
    if (!ord || !mord) {
        free(ord);
        free(mord);
        return dj_error_set(DJ_ERR_NOMEM, "safetensors writer", "out of memory");
    }
    for (int i = 0; i < w->count; i++)
        ord[i] = &w->entries[i];
    qsort(ord, (size_t)w->count, sizeof *ord, dj_st_cmp_write_order);
    for (int i = 0; i < w->meta_count; i++)
        mord[i] = i;
    qsort_r(mord, (size_t)w->meta_count, sizeof *mord, dj_st_cmp_index_by_key, w->meta_keys);
    dj_st_put(header, "\0\0\0\0\0\0\0\0{", 9);
    if (w->meta_count) {
        dj_st_puts(header, "\"__metadata__\":{");
        for (int i = 0; i < w->meta_count; i++) {
            dj_st_puts(header, i ? "," : "");
            dj_st_put_json_string(header, w->meta_keys[mord[i]]);
            dj_st_puts(header, ":");
            dj_st_put_json_string(header, w->meta_values[mord[i]]);
        }
        dj_st_puts(header, w->count ? "}," : "}");
    }
    uint64_t at = 0;
    for (int i = 0; i < w->count; i++) {
        const dj_st_wentry *e = ord[i];
        char num[64];
        dj_st_puts(header, i ? "," : "");
        dj_st_put_json_string(header, e->name);
        dj_st_puts(header, ":{\"dtype\":\"");
        dj_st_puts(header, dj_st_dtype_name(e->dtype));
        dj_st_puts(header, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)e->shape[d]);
            dj_st_puts(header, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at,
                 (unsigned long long)(at + e->nbytes));
        dj_st_puts(header, num);
        at += e->nbytes;
    }
    dj_st_puts(header, "}");
    while (!header->failed && (header->len - 8) % 8 != 0)
        dj_st_puts(header, " ");
    free(mord);
    if (header->failed) {
        free(header->data);
        free(ord);
        return dj_error_set(DJ_ERR_NOMEM, "safetensors writer", "out of memory for the header");
    }
    uint64_t n = header->len - 8;
    for (int i = 0; i < 8; i++)
        header->data[i] = (char)((n >> (8 * i)) & 0xFF);
    *order = ord;
    return DJ_OK;
}

dj_status dj_safetensors_writer_serialize(const dj_st_writer *w, void **bytes, size_t *size) {
    *bytes = NULL;
    *size = 0;
    dj_st_buf header;
    const dj_st_wentry **order;
    DJ_TRY(dj_st_build_header(w, &header, &order));
    size_t total = header.len;
    for (int i = 0; i < w->count; i++)
        total += order[i]->nbytes;
    unsigned char *out = malloc(total ? total : 1);
    if (!out) {
        free(header.data);
        free(order);
        return dj_error_set(DJ_ERR_NOMEM, "safetensors writer", "out of memory for %zu bytes", total);
    }
    memcpy(out, header.data, header.len);
    size_t at = header.len;
    for (int i = 0; i < w->count; i++) {
        if (order[i]->nbytes)
            memcpy(out + at, order[i]->data, order[i]->nbytes);
        at += order[i]->nbytes;
    }
    free(header.data);
    free(order);
    *bytes = out;
    *size = total;
    return DJ_OK;
}

/* Writes all n bytes to fd, retrying short writes. */
static int dj_st_write_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Streams header and tensors into fd, then fsyncs it. */
static dj_status dj_st_write_fd(int fd, const dj_st_buf *header, const dj_st_wentry **order, int count,
                                const char *path) {
    if (dj_st_write_all(fd, header->data, header->len) != 0)
        return dj_error_set(DJ_ERR_IO, path, "cannot write: %s", strerror(errno));
    for (int i = 0; i < count; i++) {
        if (order[i]->nbytes && dj_st_write_all(fd, order[i]->data, order[i]->nbytes) != 0)
            return dj_error_set(DJ_ERR_IO, path, "cannot write tensor '%s': %s", order[i]->name, strerror(errno));
    }
    if (fsync(fd) != 0)
        return dj_error_set(DJ_ERR_IO, path, "cannot sync: %s", strerror(errno));
    return DJ_OK;
}

dj_status dj_safetensors_write_atomic(const dj_st_writer *w, const char *path) {
    if (!path || !path[0])
        return dj_error_set(DJ_ERR_INVALID, "safetensors writer", "no path given");
    static unsigned counter; /* distinct names for writers in other threads */
    size_t tmp_len = strlen(path) + 48;
    char *tmp = malloc(tmp_len);
    if (!tmp)
        return dj_error_set(DJ_ERR_NOMEM, path, "out of memory");
    snprintf(tmp, tmp_len, "%s.tmp.%ld.%u", path, (long)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    dj_st_buf header;
    const dj_st_wentry **order = NULL;
    dj_status s = dj_st_build_header(w, &header, &order);
    if (s != DJ_OK) {
        free(tmp);
        return s;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        s = dj_error_set(DJ_ERR_IO, path, "cannot create %s: %s", tmp, strerror(errno));
    } else {
        s = dj_st_write_fd(fd, &header, order, w->count, path);
        if (close(fd) != 0 && s == DJ_OK)
            s = dj_error_set(DJ_ERR_IO, path, "cannot close: %s", strerror(errno));
        if (s == DJ_OK && rename(tmp, path) != 0)
            s = dj_error_set(DJ_ERR_IO, path, "cannot rename %s into place: %s", tmp, strerror(errno));
        if (s != DJ_OK)
            unlink(tmp);
        else
            s = dj_fs_sync_folder(path);
    }
    free(header.data);
    free(order);
    free(tmp);
    return s;
}
