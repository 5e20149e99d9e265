/* fuzz_safetensors.c — libFuzzer harness for the .safetensors reader: any
 * byte string is opened from memory; when it opens, every tensor is read
 * through each conversion. Must never crash, over-read or leak.
 *
 * Built and run by tests/fuzz/run.sh (FUZZ_TARGET=safetensors; a short run
 * is part of `make test`), e.g. for ten minutes:
 *   FUZZ_TARGET=safetensors sh tests/fuzz/run.sh 600 */
#include <stdint.h>
#include <stdlib.h>

#include "dojo/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dj_safetensors *st = NULL;
    if (dj_safetensors_open_memory(data, size, "fuzz", &st) != DJ_OK)
        return 0;
    for (int i = 0; i < dj_safetensors_count(st); i++) {
        dj_st_view v;
        if (dj_safetensors_at(st, i, &v) != DJ_OK || v.numel > (1 << 16))
            continue;
        size_t n = (size_t)(v.numel ? v.numel : 1);
        void *out = malloc(n * 8);
        if (!out)
            continue;
        dj_safetensors_read_f32(st, v.name, v.ndim, v.shape, out);
        dj_safetensors_read_f64(st, v.name, v.ndim, v.shape, out);
        dj_safetensors_read_i64(st, v.name, v.ndim, v.shape, out);
        dj_safetensors_read_bf16(st, v.name, v.ndim, v.shape, out);
        free(out);
        dj_tensor t;
        if (v.ndim <= DJ_MAX_DIMS && dj_safetensors_load_tensor(st, v.name, DJ_DTYPE_F32, &t) == DJ_OK)
            dj_tensor_free(&t);
    }
    for (int i = 0; i < dj_safetensors_metadata_count(st); i++) {
        const char *k, *val;
        if (dj_safetensors_metadata_at(st, i, &k, &val) == DJ_OK && dj_safetensors_metadata_get(st, k) != val)
            abort(); /* lookup must find the same entry */
    }
    dj_safetensors_close(st);
    return 0;
}
