/* cmd_gen.c — `dojo gen KIND`: writes synthetic videos.
 *
 *   dojo gen motion --out DIR ...     the motion classification data set
 *   dojo gen testclips --out DIR ...  short clips in many codecs for decoder tests
 *
 * The work is done by the library (dojo/synth.h); this file parses the
 * command line and reports. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/log.h>

#include "cli.h"
#include "dojo/log.h"
#include "dojo/synth.h"

/* libx265 3.5 leaks its parameter strings on every encoder (inside the
 * library, not through dojo): under AddressSanitizer, LeakSanitizer calls
 * this hook and ignores what libx265 allocates. Unused otherwise. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libx265.so\n"; }

/* Parses "N" (square) or "WxH" into positive sizes; 0 when malformed. */
static int dj_gen_parse_size(const char *text, int *w, int *h) {
    char *end;
    long a = strtol(text, &end, 10), b = a;
    if (end == text || a <= 0 || a > 4096)
        return 0;
    if (*end == 'x' || *end == 'X') {
        const char *rest = end + 1;
        b = strtol(rest, &end, 10);
        if (end == rest || b <= 0 || b > 4096)
            return 0;
    }
    if (*end != '\0')
        return 0;
    *w = (int)a;
    *h = (int)b;
    return 1;
}

/* FFmpeg's own messages: errors only, unless --verbose. */
static void dj_gen_quiet_ffmpeg(void) {
    av_log_set_level(dj_log_get_level() >= DJ_LOG_DEBUG ? AV_LOG_INFO : AV_LOG_ERROR);
}

/* ---- gen motion ---------------------------------------------------------- */

static const char *dj_gm_out, *dj_gm_size, *dj_gm_codec, *dj_gm_speed, *dj_gm_spin, *dj_gm_zoom;
static int64_t dj_gm_classes, dj_gm_per_class, dj_gm_val, dj_gm_frames, dj_gm_seed, dj_gm_fps, dj_gm_threads;
static int64_t dj_gm_distractors;
static double dj_gm_noise, dj_gm_jitter;

static const dj_option dj_gm_options[] = {
    {"out", DJ_OPT_STRING, &dj_gm_out, "DIR", "output folder (created)", 0, 0},
    {"classes", DJ_OPT_INT, &dj_gm_classes, "N", "number of classes, the first N of the list", 1, 8},
    {"per-class", DJ_OPT_INT, &dj_gm_per_class, "N", "clips per class (the train split with --val-per-class)", 1,
     1e6},
    {"val-per-class", DJ_OPT_INT, &dj_gm_val, "N", "also N validation clips per class: DIR/train and DIR/val", 0,
     1e6},
    {"frames", DJ_OPT_INT, &dj_gm_frames, "T", "frames per clip", 2, 100000},
    {"size", DJ_OPT_STRING, &dj_gm_size, "N|WxH", "frame size (even)", 0, 0},
    {"seed", DJ_OPT_INT, &dj_gm_seed, "S", "seed: the same seed writes the same bytes", 0, 9.2e18},
    {"fps", DJ_OPT_INT, &dj_gm_fps, "N", "frames per second", 1, 1000},
    {"codec", DJ_OPT_STRING, &dj_gm_codec, "NAME", "h264 (libx264, else mpeg4), hevc, vp9, av1, mpeg4, ffv1, ...", 0,
     0},
    {"threads", DJ_OPT_INT, &dj_gm_threads, "N", "clips encoded in parallel (0: one per core); same output", 0, 64},
    {"speed", DJ_OPT_STRING, &dj_gm_speed, "MIN,MAX", "translation per frame, fraction of the short side", 0, 0},
    {"spin", DJ_OPT_STRING, &dj_gm_spin, "MIN,MAX", "rotation per frame, degrees", 0, 0},
    {"zoom", DJ_OPT_STRING, &dj_gm_zoom, "MIN,MAX", "zoom per frame, change of the log of the size", 0, 0},
    {"noise", DJ_OPT_DOUBLE, &dj_gm_noise, "SIGMA", "pixel noise, standard deviation on the 0..255 scale", 0, 100},
    {"jitter", DJ_OPT_DOUBLE, &dj_gm_jitter, "PX", "camera jitter, pixels per frame at most", 0, 16},
    {"distractors", DJ_OPT_INT, &dj_gm_distractors, "0|1", "1: smaller objects moving at random", 0, 1},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

/* Parses "MIN,MAX" (or one number for both) into lo <= hi, both in [0, limit];
 * 0 when malformed. */
static int dj_gen_parse_range(const char *text, double limit, float *lo, float *hi) {
    char *end;
    double a = strtod(text, &end), b = a;
    if (end == text)
        return 0;
    if (*end == ',') {
        const char *rest = end + 1;
        b = strtod(rest, &end);
        if (end == rest)
            return 0;
    }
    if (*end != '\0' || !(a >= 0 && a <= b && b <= limit))
        return 0;
    *lo = (float)a;
    *hi = (float)b;
    return 1;
}

/* The scene flags over the defaults; a usage error names the flag. */
static int dj_gen_scene(dj_synth_params *p) {
    static const struct {
        const char *flag, **text;
        double limit;
    } ranges[3] = {{"speed", &dj_gm_speed, 0.5}, {"spin", &dj_gm_spin, 90}, {"zoom", &dj_gm_zoom, DJ_SYNTH_MAX_ZOOM}};
    float *lo[3] = {&p->speed_min, &p->spin_min, &p->zoom_min}, *hi[3] = {&p->speed_max, &p->spin_max, &p->zoom_max};
    for (int i = 0; i < 3; i++)
        if (*ranges[i].text && !dj_gen_parse_range(*ranges[i].text, ranges[i].limit, lo[i], hi[i]))
            return dj_cli_usage_error("gen motion", "option '--%s' expects MIN,MAX with 0 <= MIN <= MAX <= %g, got '%s'",
                                      ranges[i].flag, ranges[i].limit, *ranges[i].text);
    p->noise = (float)dj_gm_noise;
    p->jitter = (float)dj_gm_jitter;
    p->distractors = (int)dj_gm_distractors;
    return -1;
}

static const dj_cli_spec dj_gm_spec = {
    "gen motion", "--out DIR [--classes N] [--per-class N] [--val-per-class N] [--frames T] [--size N] ...",
    "Writes a synthetic video classification data set where only motion tells the\n"
    "classes apart: translate_right, translate_left, translate_up, translate_down,\n"
    "rotate_cw, rotate_ccw, zoom_in, zoom_out (the first --classes of them). Every\n"
    "clip has a random textured object that moves by its class, smaller distractors\n"
    "moving at random, a textured background, camera jitter and pixel noise.\n"
    "Layout: DIR/<class>/<class>_NNNN.mp4, or with --val-per-class N > 0\n"
    "DIR/train/<class>/... and DIR/val/<class>/...; DIR/classes.txt lists the\n"
    "classes (also in DIR/train and DIR/val), DIR/manifest.json the parameters.",
    dj_gm_options, 0, 0,
};

static int dj_gen_motion(int argc, char **argv) {
    dj_synth_motion_options o;
    dj_synth_motion_options_default(&o);
    dj_gm_out = NULL;
    dj_gm_size = "112";
    dj_gm_codec = o.codec;
    dj_gm_classes = o.classes;
    dj_gm_per_class = o.per_class;
    dj_gm_val = 0;
    dj_gm_frames = o.frames;
    dj_gm_seed = 0;
    dj_gm_fps = o.fps;
    dj_gm_threads = 0;
    dj_gm_speed = dj_gm_spin = dj_gm_zoom = NULL;
    dj_synth_params scene;
    dj_synth_params_default(&scene, 112, 112, o.frames); /* the size and length come from o */
    dj_gm_noise = scene.noise;
    dj_gm_jitter = scene.jitter;
    dj_gm_distractors = scene.distractors;
    int np = 0;
    int rc = dj_cli_parse(&dj_gm_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    if (!dj_gm_out)
        return dj_cli_usage_error(dj_gm_spec.command, "missing option '--out DIR'");
    if (!dj_gen_parse_size(dj_gm_size, &o.width, &o.height))
        return dj_cli_usage_error(dj_gm_spec.command, "option '--size' expects N or WxH (1..4096), got '%s'",
                                  dj_gm_size);
    if (o.width < 16 || o.height < 16 || o.width % 2 || o.height % 2)
        return dj_cli_usage_error(dj_gm_spec.command, "option '--size' must be even and at least 16, got %dx%d",
                                  o.width, o.height);
    if ((rc = dj_gen_scene(&scene)) >= 0)
        return rc;
    o.scene = &scene;
    o.out_dir = dj_gm_out;
    o.codec = dj_gm_codec;
    o.classes = (int)dj_gm_classes;
    o.per_class = (int)dj_gm_per_class;
    o.val_per_class = (int)dj_gm_val;
    o.frames = (int)dj_gm_frames;
    o.seed = (uint64_t)dj_gm_seed;
    o.fps = (int)dj_gm_fps;
    o.threads = (int)dj_gm_threads;
    o.progress = 1;
    dj_gen_quiet_ffmpeg();
    if (dj_synth_motion_generate(&o) != DJ_OK)
        return dj_cli_fail();
    return DJ_EXIT_OK;
}

/* ---- gen testclips ------------------------------------------------------- */

static const char *dj_gt_out, *dj_gt_size;
static int64_t dj_gt_frames;

static const dj_option dj_gt_options[] = {
    {"out", DJ_OPT_STRING, &dj_gt_out, "DIR", "output folder (created)", 0, 0},
    {"frames", DJ_OPT_INT, &dj_gt_frames, "T", "frames per clip", 1, 256},
    {"size", DJ_OPT_STRING, &dj_gt_size, "WxH", "frame size (even, width >= 64)", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_gt_spec = {
    "gen testclips", "--out DIR [--frames T] [--size WxH]",
    "Writes short clips for decoder exactness tests: H.264 with B-frames in mp4\n"
    "and mkv (qp 10), H.264 lossless in mp4, HEVC in mp4, VP9 in webm and AV1 in\n"
    "mkv (lossless), MPEG-4 part 2 with B-frames in avi, FFV1 in mkv; GOP 12.\n"
    "Lossless means lossless in yuv420p. Each frame shows its index\n"
    "in binary across the top (see dj_synth_testclip_read_index). An encoder this\n"
    "build lacks is skipped with a warning. DIR/manifest.json lists the files.",
    dj_gt_options, 0, 0,
};

static int dj_gen_testclips(int argc, char **argv) {
    dj_gt_out = NULL;
    dj_gt_size = "128x96";
    dj_gt_frames = 48;
    int np = 0, w, h, written = 0;
    int rc = dj_cli_parse(&dj_gt_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    if (!dj_gt_out)
        return dj_cli_usage_error(dj_gt_spec.command, "missing option '--out DIR'");
    if (!dj_gen_parse_size(dj_gt_size, &w, &h))
        return dj_cli_usage_error(dj_gt_spec.command, "option '--size' expects WxH, got '%s'", dj_gt_size);
    if (w % 2 || h % 2 || w < 64 || h < 48)
        return dj_cli_usage_error(dj_gt_spec.command, "option '--size' must be even, at least 64x48, got %dx%d", w,
                                  h);
    dj_gen_quiet_ffmpeg();
    if (dj_synth_testclips_generate(dj_gt_out, (int)dj_gt_frames, w, h, &written) != DJ_OK)
        return dj_cli_fail();
    dj_log_info("gen testclips: %d clips of %d frames at %dx%d in %s", written, (int)dj_gt_frames, w, h, dj_gt_out);
    return DJ_EXIT_OK;
}

/* ---- dispatch ------------------------------------------------------------ */

static void dj_gen_help(void) {
    printf("usage: dojo gen KIND [OPTIONS]\n\n"
           "Writes synthetic videos. KIND is one of:\n"
           "  motion      a data set whose classes only motion tells apart\n"
           "  testclips   short clips in many codecs and containers for decoder tests\n\n"
           "Run 'dojo gen KIND --help' for the options of each.\n");
}

int dj_cmd_gen(int argc, char **argv) {
    if (argc < 2) {
        dj_gen_help();
        return dj_cli_usage_error("gen", "missing KIND (motion or testclips)");
    }
    const char *kind = argv[1];
    if (!strcmp(kind, "--help") || !strcmp(kind, "-h")) {
        dj_gen_help();
        return DJ_EXIT_OK;
    }
    if (!strcmp(kind, "motion"))
        return dj_gen_motion(argc - 1, argv + 1);
    if (!strcmp(kind, "testclips"))
        return dj_gen_testclips(argc - 1, argv + 1);
    return dj_cli_usage_error("gen", "unknown kind '%s' (motion or testclips)", kind);
}
