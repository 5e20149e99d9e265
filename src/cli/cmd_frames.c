/* cmd_frames.c — `dojo frames FILE --index K[,K...] --out DIR [--size WxH]
 * [--no-autorotate]`: writes frames K (presentation order from 0, as
 * sequential decoding yields them) as RGB24 PNG files DIR/frame_K.png, read
 * with the exact-seek reader, upright as players show them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dojo/fs.h"
#include "dojo/video.h"

static const char *dj_frames_list;
static const char *dj_frames_out;
static const char *dj_frames_size;
static int64_t dj_frames_threads = 1;
static int dj_frames_noautorotate;

static const dj_option dj_frames_options[] = {
    {"index", DJ_OPT_STRING, &dj_frames_list, "K[,K...]", "frame numbers (from 0, presentation order)", 0, 0},
    {"out", DJ_OPT_STRING, &dj_frames_out, "DIR", "folder for frame_K.png (created when missing)", 0, 0},
    {"size", DJ_OPT_STRING, &dj_frames_size, "WxH", "resize to W x H (default: native size)", 0, 0},
    {"threads", DJ_OPT_INT, &dj_frames_threads, "N", "decoder threads", 1, 64},
    {"no-autorotate", DJ_OPT_FLAG, &dj_frames_noautorotate, NULL,
     "keep the stored orientation of videos displayed turned (default: upright, as players and ffmpeg)", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_frames_spec = {
    "frames", "FILE --index K[,K...] --out DIR [--size WxH] [--no-autorotate]",
    "Writes the chosen frames of a video as RGB24 PNG files named frame_K.png.\n"
    "Frame K is the K-th frame (from 0) in presentation order, exactly as\n"
    "sequential decoding yields it; the reader seeks to the keyframe before it.\n"
    "Videos whose display matrix turns them (phone videos) are written upright,\n"
    "--size then being the upright size, unless --no-autorotate.",
    dj_frames_options, 1, 1,
};

typedef struct dj_frames_ctx {
    const char *dir;
    int w, h;
    int upright;
} dj_frames_ctx;

static dj_status dj_frames_write(void *arg, const dj_frame *f) {
    const dj_frames_ctx *c = arg;
    char path[4096];
    snprintf(path, sizeof path, "%s/frame_%lld.png", c->dir, (long long)f->index);
    dj_frame g = *f;
    g.rotation = c->upright ? f->rotation : 0;
    g.mirrored = c->upright ? f->mirrored : 0;
    return dj_frame_write_png(&g, c->w, c->h, path);
}

static int dj_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* "3,10,7" -> sorted unique {3, 7, 10}; returns the count or -1. */
static int64_t dj_frames_parse_list(const char *text, int64_t **out) {
    int64_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    int64_t *v = malloc((size_t)cap * sizeof *v);
    if (!v)
        return -1;
    int64_t n = 0;
    const char *p = text;
    for (;;) {
        char *end;
        errno = 0;
        long long k = strtoll(p, &end, 10);
        if (end == p || errno || k < 0 || (*end && *end != ',')) {
            free(v);
            return -1;
        }
        v[n++] = k;
        if (!*end)
            break;
        p = end + 1;
    }
    qsort(v, (size_t)n, sizeof *v, dj_cmp_i64);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (m == 0 || v[m - 1] != v[i])
            v[m++] = v[i];
    *out = v;
    return m;
}

static int dj_frames_parse_size(const char *text, int *w, int *h) {
    char x;
    char rest;
    if (sscanf(text, "%d%c%d%c", w, &x, h, &rest) != 3 || (x != 'x' && x != 'X'))
        return -1;
    return *w >= 1 && *h >= 1 && *w <= DJ_VIDEO_MAX_SIDE && *h <= DJ_VIDEO_MAX_SIDE ? 0 : -1;
}

int dj_cmd_frames(int argc, char **argv) {
    int np = 0;
    dj_frames_list = dj_frames_out = dj_frames_size = NULL;
    dj_frames_noautorotate = 0;
    int rc = dj_cli_parse(&dj_frames_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    if (!dj_frames_list)
        return dj_cli_usage_error("frames", "option '--index' is required");
    if (!dj_frames_out)
        return dj_cli_usage_error("frames", "option '--out' is required");
    dj_frames_ctx c = {dj_frames_out, 0, 0, !dj_frames_noautorotate};
    if (dj_frames_size && dj_frames_parse_size(dj_frames_size, &c.w, &c.h) != 0)
        return dj_cli_usage_error("frames", "option '--size' expects WxH (e.g. 224x224), got '%s'", dj_frames_size);
    int64_t *ks = NULL;
    int64_t n = dj_frames_parse_list(dj_frames_list, &ks);
    if (n <= 0)
        return dj_cli_usage_error("frames", "option '--index' expects frame numbers K[,K...], got '%s'", dj_frames_list);
    if (dj_fs_mkdirs(dj_frames_out) != DJ_OK) {
        free(ks);
        return dj_cli_fail();
    }
    dj_video_reader_options o = dj_video_reader_defaults();
    o.threads = (int)dj_frames_threads;
    dj_video_reader *r = NULL;
    dj_status st = dj_video_reader_open(argv[1], NULL, &o, &r);
    if (st == DJ_OK)
        st = dj_video_reader_read(r, ks, n, dj_frames_write, &c);
    dj_video_reader_free(r);
    free(ks);
    if (st != DJ_OK)
        return dj_cli_fail();
    printf("wrote %lld frame%s to %s\n", (long long)n, n == 1 ? "" : "s", dj_frames_out);
    return DJ_EXIT_OK;
}
