/* synth_gen.c — writes synthetic data sets to disk: the motion data set
 * (`dojo gen motion`) and the decoder test clips (`dojo gen testclips`).
 *
 * Clips are rendered and encoded independently (each its own seed, one
 * encoder thread each), so splitting them over threads changes only the
 * time taken, never a byte of the output. */
#define _GNU_SOURCE
#include "dojo/fs.h"
#include "dojo/synth.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dojo/cpu.h"
#include "dojo/log.h"
#include "dojo/version.h"

/* ---- small file helpers ------------------------------------------------- */

static dj_status dj_write_json(const char *path, cJSON *o) {
    char *text = cJSON_Print(o);
    if (!text)
        return dj_error_set(DJ_ERR_NOMEM, path, "out of memory for JSON");
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return dj_error_set(DJ_ERR_NOMEM, path, "out of memory for JSON");
    }
    memcpy(line + n, "\n", 2);
    dj_status s = dj_fs_write_text(path, line);
    free(line);
    return s;
}

/* ---- motion data set ---------------------------------------------------- */

void dj_synth_motion_options_default(dj_synth_motion_options *o) {
    memset(o, 0, sizeof *o);
    o->classes = DJ_SYNTH_MAX_CLASSES;
    o->per_class = 60;
    o->frames = 32;
    o->width = o->height = 112;
    o->fps = 25;
    o->codec = "h264";
}

static const char *const dj_split_names[2] = {"train", "val"};

typedef struct dj_motion_job {
    const dj_synth_motion_options *o;
    const char *encoder; /* resolved */
    const char *ext;
    dj_synth_params params;
    int nsplits, total;
    atomic_int next, done, failed;
    pthread_mutex_t lock;
    dj_status status;   /* first failure */
    char message[1024]; /* its message */
    dj_progress *progress;
} dj_motion_job;

/* Clip k of the job: split, class and index, in a fixed order. */
static void dj_motion_clip(const dj_motion_job *j, int k, int *split, int *cls, int *index) {
    int train = j->o->classes * j->o->per_class;
    *split = k >= train;
    int per = *split ? j->o->val_per_class : j->o->per_class;
    int r = *split ? k - train : k;
    *cls = r / per;
    *index = r % per;
}

static dj_status dj_clip_path(const dj_motion_job *j, int split, int cls, int index, char *buf, size_t n) {
    const char *name = dj_synth_class_name(cls);
    int len = j->nsplits > 1 ? snprintf(buf, n, "%s/%s/%s/%s_%04d.%s", j->o->out_dir, dj_split_names[split], name,
                                        name, index, j->ext)
                             : snprintf(buf, n, "%s/%s/%s_%04d.%s", j->o->out_dir, name, name, index, j->ext);
    if (len < 0 || (size_t)len >= n)
        return dj_error_set(DJ_ERR_INVALID, j->o->out_dir, "output path too long");
    return DJ_OK;
}

static dj_status dj_motion_write_clip(dj_motion_job *j, int k, uint8_t *frames) {
    int split, cls, index;
    dj_motion_clip(j, k, &split, &cls, &index);
    char path[4096];
    DJ_TRY(dj_clip_path(j, split, cls, index, path, sizeof path));
    uint64_t seed = dj_synth_clip_seed(j->o->seed, split, cls, index);
    DJ_TRY(dj_synth_render_clip(&j->params, seed, cls, frames, NULL));
    dj_video_writer_options wo;
    dj_video_writer_options_default(&wo, j->o->width, j->o->height);
    wo.codec = j->encoder;
    wo.fps = j->o->fps;
    if (!strcmp(j->encoder, "libx264")) {
        wo.crf = 20;
        wo.preset = "veryfast";
    } else if (!strcmp(j->encoder, "mpeg4")) {
        wo.qp = 3;
    }
    dj_video_writer *w;
    DJ_TRY(dj_video_writer_create(path, &wo, &w));
    size_t fsz = (size_t)3 * j->o->width * j->o->height;
    for (int t = 0; t < j->o->frames; t++) {
        dj_status s = dj_video_writer_write_rgb(w, frames + fsz * (size_t)t, 3 * j->o->width);
        if (s != DJ_OK) {
            dj_video_writer_abort(w);
            return s;
        }
    }
    return dj_video_writer_close(w);
}

static void dj_motion_fail(dj_motion_job *j, dj_status s) {
    pthread_mutex_lock(&j->lock);
    if (!atomic_load(&j->failed)) {
        j->status = s;
        snprintf(j->message, sizeof j->message, "%s", dj_error_message());
        atomic_store(&j->failed, 1);
    }
    pthread_mutex_unlock(&j->lock);
}

/* A worker: takes clips in turn until none are left or one failed. Thread 0
 * (the caller) also draws the progress line. */
static void dj_motion_work(dj_motion_job *j, int thread) {
    size_t fsz = (size_t)3 * j->o->width * j->o->height * j->o->frames;
    uint8_t *frames = malloc(fsz);
    if (!frames) {
        dj_motion_fail(j, dj_error_set(DJ_ERR_NOMEM, j->o->out_dir, "out of memory for a clip"));
        return;
    }
    for (;;) {
        int k = atomic_fetch_add(&j->next, 1);
        if (k >= j->total || atomic_load(&j->failed))
            break;
        dj_status s = dj_motion_write_clip(j, k, frames);
        if (s != DJ_OK) {
            dj_motion_fail(j, s);
            break;
        }
        int done = atomic_fetch_add(&j->done, 1) + 1;
        if (thread == 0 && j->progress)
            dj_progress_update(j->progress, "gen motion: %d/%d clips", done, j->total);
    }
    free(frames);
}

static void *dj_motion_thread(void *arg) {
    dj_motion_work(arg, 1);
    return NULL;
}

static dj_status dj_motion_check(const dj_synth_motion_options *o) {
    if (!o || !o->out_dir || !o->out_dir[0])
        return dj_error_set(DJ_ERR_INVALID, "--out", "no output folder given");
    if (o->classes < 1 || o->classes > DJ_SYNTH_MAX_CLASSES)
        return dj_error_set(DJ_ERR_INVALID, "--classes", "there are %d motion classes, asked for %d",
                            DJ_SYNTH_MAX_CLASSES, o->classes);
    if (o->per_class < 1 || o->val_per_class < 0 || o->per_class > 1000000 || o->val_per_class > 1000000)
        return dj_error_set(DJ_ERR_INVALID, "--per-class", "clip counts %d and %d are out of range",
                            o->per_class, o->val_per_class);
    if (o->width < 16 || o->height < 16 || o->width % 2 || o->height % 2 || o->width > 4096 || o->height > 4096)
        return dj_error_set(DJ_ERR_INVALID, "--size", "frame size %dx%d must be even and within 16..4096",
                            o->width, o->height);
    if (o->frames < 2 || o->frames > 100000)
        return dj_error_set(DJ_ERR_INVALID, "--frames", "frame count %d is out of range (2..100000)", o->frames);
    if (o->fps < 1 || o->fps > 1000)
        return dj_error_set(DJ_ERR_INVALID, "--fps", "frame rate %d is out of range (1..1000)", o->fps);
    if (!o->codec || !o->codec[0])
        return dj_error_set(DJ_ERR_INVALID, "--codec", "no codec named");
    return DJ_OK;
}

/* The encoder to use: h264 falls back to MPEG-4 part 2 with a warning. */
static dj_status dj_motion_encoder(const char *codec, const char **encoder, const char **ext) {
    *encoder = dj_video_encoder_resolve(codec);
    if (!*encoder && !strcmp(codec, "h264") && dj_video_encoder_available("mpeg4")) {
        dj_log_warn("libx264 is not in this build of libavcodec: writing MPEG-4 part 2 (mpeg4) instead");
        *encoder = "mpeg4";
    }
    if (!*encoder)
        return dj_error_set(DJ_ERR_NOT_FOUND, "--codec", "encoder '%s' is not in this build of libavcodec", codec);
    *ext = "mp4";
    if (!strcmp(*encoder, "libvpx-vp9") || !strcmp(*encoder, "libvpx"))
        *ext = "webm";
    else if (!strcmp(*encoder, "ffv1"))
        *ext = "mkv";
    return DJ_OK;
}

static dj_status dj_motion_folders(const dj_motion_job *j) {
    DJ_TRY(dj_fs_mkdirs(j->o->out_dir));
    char path[4096], list[DJ_SYNTH_MAX_CLASSES * 32] = "";
    for (int c = 0; c < j->o->classes; c++) {
        strcat(list, dj_synth_class_name(c));
        strcat(list, "\n");
    }
    snprintf(path, sizeof path, "%s/classes.txt", j->o->out_dir);
    DJ_TRY(dj_fs_write_text(path, list));
    for (int s = 0; s < j->nsplits; s++) {
        for (int c = 0; c < j->o->classes; c++) {
            if (j->nsplits > 1)
                snprintf(path, sizeof path, "%s/%s/%s", j->o->out_dir, dj_split_names[s], dj_synth_class_name(c));
            else
                snprintf(path, sizeof path, "%s/%s", j->o->out_dir, dj_synth_class_name(c));
            DJ_TRY(dj_fs_mkdirs(path));
        }
        if (j->nsplits > 1) {
            snprintf(path, sizeof path, "%s/%s/classes.txt", j->o->out_dir, dj_split_names[s]);
            DJ_TRY(dj_fs_write_text(path, list));
        }
    }
    return DJ_OK;
}

/* A float parameter as the decimal it was written as (0.02, not 0.0199999). */
static double dj_round6(float x) { return round((double)x * 1e6) / 1e6; }

static dj_status dj_motion_manifest(const dj_motion_job *j, double seconds) {
    const dj_synth_motion_options *o = j->o;
    const dj_synth_params *p = &j->params;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "generator", "dojo gen motion");
    cJSON_AddNumberToObject(m, "scene_version", DJ_SYNTH_MOTION_VERSION);
    cJSON_AddStringToObject(m, "dojo_version", dj_build()->version);
    cJSON_AddStringToObject(m, "description",
                            "synthetic motion classes: only the main object's motion tells the classes apart");
    cJSON_AddNumberToObject(m, "seed", (double)o->seed);
    cJSON *cl = cJSON_AddArrayToObject(m, "classes");
    for (int c = 0; c < o->classes; c++)
        cJSON_AddItemToArray(cl, cJSON_CreateString(dj_synth_class_name(c)));
    cJSON_AddNumberToObject(m, "per_class", o->per_class);
    cJSON_AddNumberToObject(m, "val_per_class", o->val_per_class);
    cJSON_AddStringToObject(m, "layout", j->nsplits > 1 ? "{train,val}/<class>/<class>_<NNNN>.<ext>"
                                                        : "<class>/<class>_<NNNN>.<ext>");
    cJSON_AddNumberToObject(m, "clips", j->total);
    cJSON_AddNumberToObject(m, "frames", o->frames);
    cJSON_AddNumberToObject(m, "width", o->width);
    cJSON_AddNumberToObject(m, "height", o->height);
    cJSON_AddNumberToObject(m, "fps", o->fps);
    cJSON_AddStringToObject(m, "codec", o->codec);
    cJSON_AddStringToObject(m, "encoder", j->encoder);
    cJSON_AddStringToObject(m, "extension", j->ext);
    cJSON *sp = cJSON_AddObjectToObject(m, "scene");
    cJSON_AddBoolToObject(sp, "distractors", p->distractors);
    cJSON_AddNumberToObject(sp, "noise_std", dj_round6(p->noise));
    cJSON_AddNumberToObject(sp, "jitter_px", dj_round6(p->jitter));
    cJSON_AddNumberToObject(sp, "speed_min", dj_round6(p->speed_min));
    cJSON_AddNumberToObject(sp, "speed_max", dj_round6(p->speed_max));
    cJSON_AddNumberToObject(sp, "spin_deg_min", dj_round6(p->spin_min));
    cJSON_AddNumberToObject(sp, "spin_deg_max", dj_round6(p->spin_max));
    cJSON_AddNumberToObject(sp, "zoom_log_min", dj_round6(p->zoom_min));
    cJSON_AddNumberToObject(sp, "zoom_log_max", dj_round6(p->zoom_max));
    (void)seconds; /* timings are logged, not stored: the manifest is part of the deterministic output */
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", o->out_dir);
    dj_status s = dj_write_json(path, m);
    cJSON_Delete(m);
    return s;
}

static int dj_motion_threads(const dj_synth_motion_options *o, int total) {
    int n = o->threads;
    if (n <= 0) {
        n = dj_cpu_detect()->logical_cores;
        n = n < 1 ? 1 : n > 8 ? 8 : n;
    }
    return n > total ? total : n;
}

dj_status dj_synth_motion_generate(const dj_synth_motion_options *o) {
    DJ_TRY(dj_motion_check(o));
    dj_motion_job j;
    memset(&j, 0, sizeof j);
    j.o = o;
    DJ_TRY(dj_motion_encoder(o->codec, &j.encoder, &j.ext));
    dj_synth_params_default(&j.params, o->width, o->height, o->frames);
    if (o->scene) { /* the caller's scene settings; the size always comes from o */
        j.params = *o->scene;
        j.params.width = o->width;
        j.params.height = o->height;
        j.params.frames = o->frames;
    }
    j.nsplits = o->val_per_class > 0 ? 2 : 1;
    j.total = o->classes * (o->per_class + o->val_per_class);
    DJ_TRY(dj_motion_folders(&j));
    pthread_mutex_init(&j.lock, NULL);
    j.progress = o->progress ? dj_progress_create(stderr) : NULL;
    double t0 = dj_time_now();
    int nthreads = dj_motion_threads(o, j.total), started = 0;
    pthread_t tids[8];
    for (; started < nthreads - 1; started++)
        if (pthread_create(&tids[started], NULL, dj_motion_thread, &j) != 0)
            break; /* fewer threads: same output, more time */
    dj_motion_work(&j, 0);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    if (j.progress) {
        dj_progress_end(j.progress);
        dj_progress_free(j.progress);
    }
    pthread_mutex_destroy(&j.lock);
    if (j.failed)
        return dj_error_set(j.status, NULL, "%s", j.message);
    double secs = dj_time_now() - t0;
    dj_log_info("gen motion: %d clips of %d frames at %dx%d (%s) in %.2f s (%.1f clips/s, %d threads) in %s",
                j.total, o->frames, o->width, o->height, j.encoder, secs, j.total / (secs > 0 ? secs : 1e-9),
                1 + started, o->out_dir);
    return dj_motion_manifest(&j, secs);
}
