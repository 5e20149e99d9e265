/* fuzz_video.c — libFuzzer target over probe + index + exact-seek decoding
 * of an in-memory file (custom AVIOContext): any input must give DJ_OK or a
 * clean error, never a crash, hang, leak or undefined behaviour.
 *
 * Build and run (clang from Debian's `clang` package):
 *   sh tests/fuzz/run.sh [SECONDS]        # short run, seeds made with ffmpeg
 * Long run (hours, several cores):
 *   sh tests/fuzz/run.sh 0 -jobs=8 -workers=8   # 0 = no time limit
 * Crashes are written as crash-* files in build/fuzz/; reproduce with
 *   build/fuzz/fuzz_video build/fuzz/crash-XXXX */
#include <stdint.h>
#include <stdlib.h>

#include "dojo/video.h"

static dj_status fuzz_touch(void *arg, const dj_frame *f) {
    unsigned *sum = arg;
    /* read the first row of every plane: the planes must really be there */
    for (int c = 0; c < 4 && f->data[c]; c++)
        for (int x = 0; x < f->linesize[c] && x < 64; x++)
            *sum += f->data[c][x];
    return DJ_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dj_video_info info;
    if (dj_video_probe_memory(data, size, "fuzz-input", &info) != DJ_OK)
        return 0;
    dj_video_reader_options o = dj_video_reader_defaults();
    o.time_limit_s = 5;
    dj_video_reader *r = NULL;
    if (dj_video_reader_open_memory(data, size, "fuzz-input", &o, &r) != DJ_OK)
        return 0;
    const dj_video_index *ix = dj_video_reader_index(r);
    int64_t n = ix->nframes;
    int64_t ks[4] = {n / 2, n / 2, n - 1, n - 1};
    int64_t first[2] = {0, n > 1 ? 1 : 0};
    unsigned sum = 0;
    dj_video_reader_read(r, ks, 4, fuzz_touch, &sum);
    dj_video_reader_read(r, first, 2, fuzz_touch, &sum);
    dj_video_reader_free(r);
    return (int)(sum & 0); /* libFuzzer wants 0 */
}
