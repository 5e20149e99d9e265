/* dojo/train.h — the training and evaluation loops, driven by a recipe.
 *
 * A recipe is a config (dojo/config.h) with the sections model, data, train,
 * optimizer, schedule, augment and eval (the files in configs/recipes/ show every
 * key); dj_train_options_read() reads it into dj_train_options and rejects
 * unknown keys with their line. dj_train_run() then builds the model, indexes
 * the data, trains with the loader running ahead, evaluates after each
 * epoch, writes checkpoints (atomically; last, best and the newest N),
 * metrics (JSON lines and TensorBoard) and at the end RUNDIR/summary.json
 * and RUNDIR/report.html. A run resumed from its last checkpoint continues
 * bit for bit: everything random is a function of (seed, epoch, sample) or
 * (seed, step). */
#ifndef DOJO_TRAIN_H
#define DOJO_TRAIN_H

#include <stdint.h>

#include "dojo/config.h"
#include "dojo/graph.h"
#include "dojo/model.h"
#include "dojo/optim.h"
#include "dojo/transform.h"
#include "dojo/video.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_train_options {
    const char *model;      /* model name or model file */
    const char *train_data; /* folder, list file or dojo index */
    const char *val_data;   /* may be NULL: no validation */
    const char *out;        /* the run folder */
    int64_t frames, stride, size, short_side; /* clip: T frames every stride; crop size; eval resize */
    double target_fps;      /* data.fps: > 0 spaces the T frames 1/fps seconds apart instead of every stride
                               (by each video's mean frame rate), as PySlowFast's TARGET_FPS; 0: stride */
    int64_t workers;        /* decode threads */
    int64_t worker_nice;    /* their nice value, 0..19 (data.worker_nice, 19: they run in the compute threads' gaps) */
    int strict;             /* a bad video stops the run */
    int64_t epochs, batch, seed, threads, accumulate;
    double label_smoothing;
    int bf16;
    int conv_algo;          /* train.conv_algo: dj_conv_algo (auto, gemm or winograd) */
    int64_t keep_checkpoints, log_every;
    dj_optim_config optim;
    double lr;
    dj_schedule_kind schedule;
    double warmup_epochs, warmup_start_factor, min_lr, step_epochs, gamma;
    double scale_min, scale_max, ratio_min, ratio_max, flip;
    dj_norm norm;
    int center_clips;       /* augment.normalize: clip — remove each clip's mean colour */
    int64_t eval_clips, eval_crops;
    int resume;             /* continue the run in `out` from its last checkpoint */
    double time_limit_s;    /* > 0: stop (after a checkpoint) when the next epoch would pass it */
    /* scale-out */
    int sync_bn;            /* train.sync_bn: batch norm statistics over all ranks' rows */
    int trace;              /* train.trace: RUNDIR/trace.rank<R>.json, a Chrome trace timeline per rank */
    int64_t trace_events;   /* train.trace_events: the timeline's preallocated event buffer */
} dj_train_options;

void dj_train_defaults(dj_train_options *o);
/* Reads every recipe key present in cfg into o (which holds the defaults),
 * then fails on any key it does not know (with file:line). Strings point
 * into cfg. */
dj_status dj_train_options_read(dj_config *cfg, dj_train_options *o);

typedef struct dj_eval_result {
    int64_t clips, videos;
    double clip_top1, clip_top5, video_top1, video_top5, loss;
    int num_classes;
    int64_t *confusion;      /* num_classes x num_classes, rows = true class (video level) */
    double *class_accuracy;  /* per class (video level); NaN for a class without videos */
    double *video_probs;     /* videos x num_classes: softmax averaged over each video's views */
} dj_eval_result;
void dj_eval_result_free(dj_eval_result *r);

typedef struct dj_train_result {
    double val_top1, val_top5;
    int64_t epochs, steps;
    double wall_s, clips_per_s;
    char checkpoint[1024];
    int rank; /* this process's rank (0 in a single process): rank 0 reports */
} dj_train_result;

/* Trains as the options say. cfg is the full recipe (saved in checkpoints
 * and RUNDIR/config.json). */
dj_status dj_train_run(const dj_train_options *o, dj_config *cfg, dj_train_result *result);

/* Evaluates a model (a graph planned for batch `batch`) on an index with
 * multi-view testing: `clips` uniform clips x `crops` crops per video,
 * softmax averaged per video, each video decoded once for all its views.
 * label_map maps the index's class ids to the model's (NULL: identity). */
typedef struct dj_eval_options {
    int64_t frames, stride, size, short_side, clips, crops, workers, batch;
    double target_fps; /* > 0: frames 1/fps seconds apart instead of every stride */
    int strict;
    dj_norm norm;
    int center_clips;
} dj_eval_options;
dj_status dj_evaluate(dj_model *m, const dj_exec *ex, const dj_index *index, const int *label_map,
                      const dj_eval_options *o, dj_eval_result *r);

/* Builds the model a checkpoint was trained with (or `model`, a name or
 * model file, when given: needed for plain torchvision state dicts), for
 * inference on batches of (batch, 3, frames, size, size), and loads its
 * weights. st receives the checkpoint's metadata (free it with
 * dj_checkpoint_state_free). */
struct dj_checkpoint_state;
dj_status dj_model_from_checkpoint(const char *path, const char *model, int64_t batch, int64_t frames, int64_t size,
                                   int threads, dj_model **out, struct dj_checkpoint_state *st);

/* The evaluation geometry a checkpoint was trained with (frames, stride or
 * target fps, size, resize, normalisation, views) from its stored recipe; defaults for
 * weights without one. */
dj_status dj_eval_options_from_checkpoint(const struct dj_checkpoint_state *st, dj_eval_options *eo);

/* Opens DATA as a dojo index file, or indexes a folder or list file (reusing
 * cache_path when given and still valid, and saving the index there). */
dj_status dj_data_open(const char *data, const char *cache_path, dj_index **out);

#ifdef __cplusplus
}
#endif
#endif
