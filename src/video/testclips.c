/* testclips.c — short videos in several codecs and containers whose frames
 * carry their own index, for decoder exactness and seeking tests
 * (`dojo gen testclips`).
 *
 * Each frame shows its index in binary as a row of black/white blocks with
 * the complement underneath (so a damaged or foreign frame reads as -1, not
 * as a wrong index), over a gradient and a box that move every frame. Small
 * GOPs (12) and B-frames make seeks cross GOP boundaries and reorder frames.
 * "Lossless" means lossless after the RGB -> yuv420p conversion: every
 * lossless clip decodes to the same yuv420p frames. */
#define _GNU_SOURCE
#include "dojo/fs.h"
#include "dojo/synth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dojo/log.h"

#define DJ_TC_BITS 8

static int dj_tc_block(int width) { return width / DJ_TC_BITS; }

static dj_status dj_tc_check(int width, int height) {
    int b = dj_tc_block(width);
    if (width < 64 || height < 48 || width > 4096 || height > 4096 || height < 2 * b + 16)
        return dj_error_set(DJ_ERR_INVALID, "testclips",
                            "frame size %dx%d is too small for the index blocks (width >= 64, height >= "
                            "max(48, width / 4 + 16))",
                            width, height);
    return DJ_OK;
}

dj_status dj_synth_testclip_render(int index, int width, int height, uint8_t *rgb) {
    DJ_TRY(dj_tc_check(width, height));
    if (index < 0 || index >= (1 << DJ_TC_BITS))
        return dj_error_set(DJ_ERR_RANGE, "testclips", "frame index %d is out of range (0..255)", index);
    if (!rgb)
        return dj_error_set(DJ_ERR_INVALID, "testclips", "no frame buffer given");
    int b = dj_tc_block(width);
    int bx = (index * 5) % (width - 16), by = 2 * b + (index * 3) % (height - 2 * b - 16 + 1);
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            uint8_t *p = rgb + 3 * ((size_t)y * width + x);
            if (y < 2 * b && x < DJ_TC_BITS * b) {
                int bit = (index >> (DJ_TC_BITS - 1 - x / b)) & 1;
                uint8_t v = (uint8_t)((y < b ? bit : !bit) ? 255 : 0);
                p[0] = p[1] = p[2] = v;
            } else if (x >= bx && x < bx + 16 && y >= by && y < by + 16) {
                p[0] = 240;
                p[1] = (uint8_t)(200 - index % 128);
                p[2] = (uint8_t)(30 + index % 128);
            } else {
                p[0] = (uint8_t)(40 + (x * 160) / width);
                p[1] = (uint8_t)(40 + ((y + 2 * index) % height) * 160 / height);
                p[2] = (uint8_t)(100 + (index * 7) % 100);
            }
        }
    }
    return DJ_OK;
}

/* Mean of a block's central half, as 0 (dark) or 1 (light). */
static int dj_tc_bit(const uint8_t *rgb, int stride, int x0, int y0, int b) {
    long sum = 0, n = 0;
    for (int y = y0 + b / 4; y < y0 + b - b / 4; y++)
        for (int x = x0 + b / 4; x < x0 + b - b / 4; x++, n++) {
            const uint8_t *p = rgb + (size_t)y * stride + 3 * (size_t)x;
            sum += p[0] + p[1] + p[2];
        }
    return sum > n * 3 * 128;
}

int dj_synth_testclip_read_index(const uint8_t *rgb, int width, int height, int stride) {
    if (!rgb || width < 64 || height < 2 * dj_tc_block(width) || stride < 3 * width)
        return -1;
    int b = dj_tc_block(width), index = 0;
    for (int k = 0; k < DJ_TC_BITS; k++) {
        int top = dj_tc_bit(rgb, stride, k * b, 0, b), bottom = dj_tc_bit(rgb, stride, k * b, b, b);
        if (top == bottom)
            return -1;
        index = index * 2 + top;
    }
    return index;
}

/* ---- the set of clips ---------------------------------------------------- */

typedef struct dj_tc_spec {
    const char *file;      /* name in the output folder */
    const char *codec;     /* writer codec (family or encoder) */
    const char *container; /* for the manifest */
    int lossless, b_frames, qp;
} dj_tc_spec;

static const dj_tc_spec dj_tc_specs[] = {
    /* x264 turns B-frames off in lossless mode: the B-frame clips use qp 10 */
    {"h264_bframes.mp4", "libx264", "mp4", 0, 2, 10},
    {"h264_bframes.mkv", "libx264", "matroska", 0, 2, 10},
    {"h264_lossless.mp4", "libx264", "mp4", 1, 0, -1},
    {"hevc.mp4", "libx265", "mp4", 1, 2, -1},
    {"vp9.webm", "libvpx-vp9", "webm", 1, -1, -1},
    {"av1.mkv", "av1", "matroska", 1, -1, -1},
    {"mpeg4.avi", "mpeg4", "avi", 0, 2, 2},
    {"ffv1.mkv", "ffv1", "matroska", 1, -1, -1},
};

static dj_status dj_tc_write(const char *path, const dj_tc_spec *s, const char *encoder, int lossless, int frames,
                             int width, int height, uint8_t *rgb) {
    dj_video_writer_options o;
    dj_video_writer_options_default(&o, width, height);
    o.codec = encoder;
    o.gop = 12;
    o.max_b_frames = s->b_frames;
    o.lossless = lossless;
    o.qp = s->qp;
    if (!lossless && o.qp < 0)
        o.crf = 20;
    dj_video_writer *w;
    DJ_TRY(dj_video_writer_create(path, &o, &w));
    for (int i = 0; i < frames; i++) {
        dj_status st = dj_synth_testclip_render(i, width, height, rgb);
        if (st == DJ_OK)
            st = dj_video_writer_write_rgb(w, rgb, 3 * width);
        if (st != DJ_OK) {
            dj_video_writer_abort(w);
            return st;
        }
    }
    return dj_video_writer_close(w);
}

static cJSON *dj_tc_entry(const dj_tc_spec *s, const char *encoder, int lossless, int frames, int w, int h) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "file", s->file);
    cJSON_AddStringToObject(e, "codec", dj_video_encoder_codec(encoder));
    cJSON_AddStringToObject(e, "encoder", encoder);
    cJSON_AddStringToObject(e, "container", s->container);
    cJSON_AddNumberToObject(e, "frames", frames);
    cJSON_AddNumberToObject(e, "width", w);
    cJSON_AddNumberToObject(e, "height", h);
    cJSON_AddNumberToObject(e, "fps", 25);
    cJSON_AddNumberToObject(e, "gop", 12);
    if (s->b_frames >= 0) /* absent: the encoder's own choice (hidden alt-ref frames for VP9/AV1) */
        cJSON_AddNumberToObject(e, "max_b_frames", s->b_frames);
    cJSON_AddStringToObject(e, "pix_fmt", "yuv420p");
    cJSON_AddBoolToObject(e, "lossless", lossless);
    return e;
}

static dj_status dj_tc_manifest(const char *dir, cJSON *files) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "generator", "dojo gen testclips");
    cJSON_AddStringToObject(m, "pattern",
                            "frame index in binary: 8 blocks of width/8 pixels across the top (white = 1, "
                            "most significant first), their complement in the row below");
    cJSON_AddItemReferenceToObject(m, "files", files);
    char *text = cJSON_Print(m);
    cJSON_Delete(m);
    if (!text)
        return dj_error_set(DJ_ERR_NOMEM, path, "out of memory for JSON");
    dj_fs_temp t;
    dj_status s = dj_fs_temp_open(&t, path);
    if (s == DJ_OK) {
        fprintf(t.f, "%s\n", text);
        s = dj_fs_temp_commit(&t);
    }
    free(text);
    return s;
}

/* Writes every clip whose encoder this build has; adds it to files. */
static dj_status dj_tc_write_all(const char *dir, int frames, int width, int height, uint8_t *rgb, cJSON *files,
                                 int *written) {
    for (size_t i = 0; i < sizeof dj_tc_specs / sizeof dj_tc_specs[0]; i++) {
        const dj_tc_spec *s = &dj_tc_specs[i];
        const char *encoder = dj_video_encoder_resolve(s->codec);
        if (!encoder) {
            dj_log_warn("gen testclips: skipping %s: encoder %s is not in this build of libavcodec", s->file,
                        s->codec);
            continue;
        }
        int lossless = s->lossless && strcmp(encoder, "libsvtav1") != 0;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, s->file);
        DJ_TRY(dj_tc_write(path, s, encoder, lossless, frames, width, height, rgb));
        cJSON_AddItemToArray(files, dj_tc_entry(s, encoder, lossless, frames, width, height));
        (*written)++;
        dj_log_info("gen testclips: wrote %s (%s%s)", s->file, encoder, lossless ? ", lossless" : "");
    }
    return DJ_OK;
}

dj_status dj_synth_testclips_generate(const char *out_dir, int frames, int width, int height, int *written) {
    int count = 0;
    if (written)
        *written = 0;
    if (!out_dir || !out_dir[0])
        return dj_error_set(DJ_ERR_INVALID, "--out", "no output folder given");
    if (frames < 1 || frames > (1 << DJ_TC_BITS))
        return dj_error_set(DJ_ERR_INVALID, "--frames", "frame count %d is out of range (1..%d)", frames,
                            1 << DJ_TC_BITS);
    DJ_TRY(dj_tc_check(width, height));
    if (width % 2 || height % 2)
        return dj_error_set(DJ_ERR_INVALID, "--size", "frame size %dx%d must be even (yuv420p)", width, height);
    DJ_TRY(dj_fs_mkdirs(out_dir));
    uint8_t *rgb = malloc((size_t)3 * width * height);
    cJSON *files = cJSON_CreateArray();
    dj_status s = rgb && files ? DJ_OK : dj_error_set(DJ_ERR_NOMEM, out_dir, "out of memory");
    if (s == DJ_OK)
        s = dj_tc_write_all(out_dir, frames, width, height, rgb, files, &count);
    if (s == DJ_OK)
        s = dj_tc_manifest(out_dir, files);
    cJSON_Delete(files);
    free(rgb);
    if (written)
        *written = count;
    return s;
}
