/* dojo/safetensors.h — reading and writing .safetensors files.
 *
 * The format (the one of the Hugging Face `safetensors` library, which
 * PyTorch users write with `safetensors.torch.save_file`):
 *
 *   8 bytes   N, unsigned little-endian 64-bit: the header length
 *   N bytes   UTF-8 JSON object, starting with '{', may end with spaces:
 *             {"__metadata__": {"key": "value", ...},            (optional)
 *              "name": {"dtype": "F32", "shape": [2, 3],
 *                       "data_offsets": [BEGIN, END]}, ...}
 *   the rest  the byte buffer; [BEGIN, END) is relative to its start,
 *             elements little-endian, row-major.
 *
 * The reader treats every file as hostile: the header length is checked
 * against the file and capped (DJ_ST_MAX_HEADER), every field's type is
 * checked, every byte range must equal dtype size x shape product (computed
 * without overflow) and lie in the buffer, and — as the reference library
 * requires — the ranges, sorted, must tile the whole buffer: no gaps, no
 * overlaps, no trailing bytes. Unknown dtypes, duplicate names, a missing
 * or non-string metadata value, more than DJ_ST_MAX_DIMS dimensions: all
 * refused with DJ_ERR_FORMAT, the message naming the file and the tensor.
 * The whole file is read into memory at open (no mmap: a file truncated
 * under us cannot fault later), so views stay valid until close.
 *
 * The writer builds a file in memory-light fashion (tensor data is copied
 * or referenced), writes it to a temporary file in the destination folder,
 * fsyncs it, renames it over the destination and fsyncs the folder, so a
 * crash leaves either the old file or the new one. Like the reference
 * writer it orders tensors by dtype size (largest first) then by name, so
 * every tensor starts aligned to its element size, puts "__metadata__"
 * first and pads the header with spaces to a multiple of 8 bytes. */
#ifndef DOJO_SAFETENSORS_H
#define DOJO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"
#include "dojo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    DJ_ST_MAX_DIMS = 8, /* more dimensions than this are refused */
};
#define DJ_ST_MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB, as the reference */

/* The element types of the format (names as written in the file). */
typedef enum dj_st_dtype {
    DJ_ST_BOOL = 0, /* "BOOL", one byte, 0 or 1 */
    DJ_ST_U8,       /* "U8" */
    DJ_ST_I8,       /* "I8" */
    DJ_ST_U16,      /* "U16" */
    DJ_ST_I16,      /* "I16" */
    DJ_ST_F16,      /* "F16", IEEE half */
    DJ_ST_BF16,     /* "BF16" */
    DJ_ST_U32,      /* "U32" */
    DJ_ST_I32,      /* "I32" */
    DJ_ST_F32,      /* "F32" */
    DJ_ST_U64,      /* "U64" */
    DJ_ST_I64,      /* "I64" */
    DJ_ST_F64,      /* "F64" */
    DJ_ST_F8_E4M3,  /* "F8_E4M3" (read as bytes; no conversion) */
    DJ_ST_F8_E5M2,  /* "F8_E5M2" (read as bytes; no conversion) */
    DJ_ST_DTYPE_COUNT
} dj_st_dtype;

/* "F32" for DJ_ST_F32, ...; "?" when out of range. */
const char *dj_st_dtype_name(dj_st_dtype dtype);
/* Bytes per element (0 when out of range). */
size_t dj_st_dtype_size(dj_st_dtype dtype);
/* Parses a name ("F32") into *dtype; DJ_ERR_NOT_FOUND when unknown. */
dj_status dj_st_dtype_parse(const char *name, dj_st_dtype *dtype);
/* The file dtype that stores a dj_dtype (always exists). */
dj_st_dtype dj_st_dtype_from(dj_dtype dtype);
/* The dj_dtype of a file dtype; DJ_ERR_UNSUPPORTED for F16, U16, ... */
dj_status dj_st_dtype_to(dj_st_dtype st_dtype, dj_dtype *dtype);

/* ------------------------------------------------------------------ */
/* Reader                                                               */

typedef struct dj_safetensors dj_safetensors; /* an open file (opaque) */

/* One tensor of an open file. Pointers stay valid until close. data may be
 * unaligned when the file's offsets are (read it with memcpy or use
 * dj_safetensors_read_*); it is NULL for an empty tensor. */
typedef struct dj_st_view {
    const char *name;
    dj_st_dtype dtype;
    int ndim;                     /* 0 (a scalar) .. DJ_ST_MAX_DIMS */
    int64_t shape[DJ_ST_MAX_DIMS];
    int64_t numel;                /* product of shape (1 for a scalar) */
    const void *data;             /* numel * dtype size bytes */
    size_t nbytes;
} dj_st_view;

/* Reads and validates the whole file; *out is NULL on failure. */
dj_status dj_safetensors_open(const char *path, dj_safetensors **out);
/* Validates a file image held in memory (copied); `what` names it in
 * messages (e.g. the path it came from). */
dj_status dj_safetensors_open_memory(const void *bytes, size_t size, const char *what,
                                     dj_safetensors **out);
/* Frees everything; NULL is fine. */
void dj_safetensors_close(dj_safetensors *st);

/* The path (or `what`) the file was opened with. */
const char *dj_safetensors_path(const dj_safetensors *st);
/* Number of tensors (metadata not counted). */
int dj_safetensors_count(const dj_safetensors *st);
/* Tensor i of 0..count-1, in name order (byte order of the names). */
dj_status dj_safetensors_at(const dj_safetensors *st, int i, dj_st_view *view);
/* The tensor called name; DJ_ERR_NOT_FOUND naming file and tensor. */
dj_status dj_safetensors_find(const dj_safetensors *st, const char *name, dj_st_view *view);
/* 1 when a tensor called name exists. */
int dj_safetensors_has(const dj_safetensors *st, const char *name);

/* Metadata: count, the i-th key/value (key order), and lookup by key
 * (NULL when absent). Strings stay valid until close. */
int dj_safetensors_metadata_count(const dj_safetensors *st);
dj_status dj_safetensors_metadata_at(const dj_safetensors *st, int i, const char **key, const char **value);
const char *dj_safetensors_metadata_get(const dj_safetensors *st, const char *key);

/* Copies tensor `name` into out as float32, converting from F32, F64,
 * BF16, F16, I64, I32, I16, I8, U8 or BOOL. expected_shape: the shape
 * the caller wants (ndim entries; a -1 entry accepts any size); a
 * different rank or size is DJ_ERR_INVALID naming file, tensor and both
 * shapes. out holds numel floats. */
dj_status dj_safetensors_read_f32(const dj_safetensors *st, const char *name, int ndim,
                                  const int64_t *expected_shape, float *out);
/* The same into float64 / int64 (integers from the integer dtypes and
 * BOOL only; from floats refused, to keep labels exact). */
dj_status dj_safetensors_read_f64(const dj_safetensors *st, const char *name, int ndim,
                                  const int64_t *expected_shape, double *out);
dj_status dj_safetensors_read_i64(const dj_safetensors *st, const char *name, int ndim,
                                  const int64_t *expected_shape, int64_t *out);
/* The same into bfloat16 (from F32, F64, BF16, F16; round to nearest even). */
dj_status dj_safetensors_read_bf16(const dj_safetensors *st, const char *name, int ndim,
                                   const int64_t *expected_shape, uint16_t *out);
/* Allocates *out (dj_tensor_create) with the file's shape and copies the
 * tensor converted to dtype (as the read_* above). At most 5 dims. */
dj_status dj_safetensors_load_tensor(const dj_safetensors *st, const char *name, dj_dtype dtype,
                                     dj_tensor *out);

/* ------------------------------------------------------------------ */
/* Writer                                                               */

typedef struct dj_st_writer dj_st_writer;

enum {
    DJ_ST_COPY = 0,      /* the writer copies the data now */
    DJ_ST_REFERENCE = 1, /* the data must stay valid until write/free */
};

dj_status dj_safetensors_writer_create(dj_st_writer **out);
void dj_safetensors_writer_free(dj_st_writer *w);

/* Adds a tensor of ndim (0..DJ_ST_MAX_DIMS) dims holding
 * product(shape) * dtype size bytes at data (may be NULL when empty).
 * mode: DJ_ST_COPY or DJ_ST_REFERENCE. Refuses an empty or duplicate
 * name, "__metadata__", a negative or overflowing shape. */
dj_status dj_safetensors_writer_add(dj_st_writer *w, const char *name, dj_st_dtype dtype, int ndim,
                                    const int64_t *shape, const void *data, int mode);
/* Adds a dj_tensor (its dtype, shape and data). */
dj_status dj_safetensors_writer_add_tensor(dj_st_writer *w, const char *name, const dj_tensor *t, int mode);
/* Adds float32 data under a name (shorthand for the above with F32). */
dj_status dj_safetensors_writer_add_f32(dj_st_writer *w, const char *name, int ndim, const int64_t *shape,
                                        const float *data, int mode);
/* Sets a metadata string (copied; a second set of the key replaces). */
dj_status dj_safetensors_writer_set_metadata(dj_st_writer *w, const char *key, const char *value);

/* Serialises into a malloc'd buffer (*bytes, *size; caller frees). */
dj_status dj_safetensors_writer_serialize(const dj_st_writer *w, void **bytes, size_t *size);
/* Writes path atomically: PATH.tmp.PID.N in the same folder, write, fsync,
 * rename over path, fsync the folder. On failure the temporary file is
 * removed and path is untouched; the message names path and the cause
 * (e.g. "No space left on device"). */
dj_status dj_safetensors_write_atomic(const dj_st_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
