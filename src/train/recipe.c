/* recipe.c — the training recipe: defaults, and reading every key of a
 * recipe config with its checks (unknown keys are rejected with their line). */
#include <math.h>
#include <string.h>

#include "dojo/train.h"
#include "dojo/ops_spatial.h"

void dj_train_defaults(dj_train_options *o) {
    memset(o, 0, sizeof *o);
    o->model = "r3d_mini";
    o->frames = 8;
    o->stride = 2;
    o->size = 112;
    o->short_side = 0; /* size * 8 / 7, as the 128 -> 112 convention */
    o->workers = 1;
    o->worker_nice = 19;
    o->epochs = 10;
    o->batch = 8;
    o->accumulate = 1;
    o->keep_checkpoints = 3;
    o->log_every = 10;
    o->optim = dj_optim_defaults(DJ_OPTIM_SGD);
    o->optim.momentum = 0.9;
    o->optim.weight_decay = 1e-4;
    o->optim.decay_norms_and_biases = 0;
    o->lr = 0.1;
    o->schedule = DJ_SCHEDULE_COSINE;
    o->warmup_epochs = 1;
    o->warmup_start_factor = 0.1;
    o->step_epochs = 30;
    o->gamma = 0.1;
    o->scale_min = 0.25;
    o->scale_max = 1.0;
    o->ratio_min = 3.0 / 4.0;
    o->ratio_max = 4.0 / 3.0;
    o->flip = 0.5;
    o->norm = dj_norm_imagenet;
    o->eval_clips = 1;
    o->eval_crops = 1;
    o->trace_events = 1 << 16;
}

static dj_status dj_pair(dj_config *c, const char *key, double *lo, double *hi) {
    double v[2] = {*lo, *hi};
    int n = 0;
    DJ_TRY(dj_config_get_doubles(c, key, v, 2, &n));
    if (n == 1)
        return dj_error_set(DJ_ERR_INVALID, key, "recipe: expects [low, high]");
    *lo = v[0];
    *hi = v[1];
    return DJ_OK;
}

static dj_status dj_range_check(const char *key, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi))
        return dj_error_set(DJ_ERR_INVALID, key, "recipe: %g is outside [%g, %g]", v, lo, hi);
    return DJ_OK;
}

dj_status dj_train_options_read(dj_config *c, dj_train_options *o) {
    DJ_TRY(dj_config_get_string(c, "model", &o->model));
    DJ_TRY(dj_config_get_string(c, "data.train", &o->train_data));
    DJ_TRY(dj_config_get_string(c, "data.val", &o->val_data));
    DJ_TRY(dj_config_get_int(c, "data.frames", &o->frames));
    DJ_TRY(dj_config_get_int(c, "data.stride", &o->stride));
    DJ_TRY(dj_config_get_double(c, "data.fps", &o->target_fps));
    DJ_TRY(dj_config_get_int(c, "data.size", &o->size));
    DJ_TRY(dj_config_get_int(c, "data.short_side", &o->short_side));
    DJ_TRY(dj_config_get_int(c, "data.workers", &o->workers));
    DJ_TRY(dj_config_get_int(c, "data.worker_nice", &o->worker_nice));
    DJ_TRY(dj_config_get_bool(c, "data.strict", &o->strict));
    DJ_TRY(dj_config_get_string(c, "train.out", &o->out));
    DJ_TRY(dj_config_get_int(c, "train.epochs", &o->epochs));
    DJ_TRY(dj_config_get_int(c, "train.batch", &o->batch));
    DJ_TRY(dj_config_get_int(c, "train.seed", &o->seed));
    DJ_TRY(dj_config_get_int(c, "train.threads", &o->threads));
    DJ_TRY(dj_config_get_int(c, "train.accumulate", &o->accumulate));
    DJ_TRY(dj_config_get_double(c, "train.label_smoothing", &o->label_smoothing));
    DJ_TRY(dj_config_get_bool(c, "train.bf16", &o->bf16));
    const char *algo = NULL;
    DJ_TRY(dj_config_get_string(c, "train.conv_algo", &algo));
    if (algo) {
        o->conv_algo = dj_conv_algo_from_name(algo);
        if (o->conv_algo < 0)
            return dj_error_set(DJ_ERR_INVALID, "train.conv_algo", "recipe: auto, gemm or winograd, not '%s'", algo);
    }
    DJ_TRY(dj_config_get_int(c, "train.keep_checkpoints", &o->keep_checkpoints));
    DJ_TRY(dj_config_get_int(c, "train.log_every", &o->log_every));
    DJ_TRY(dj_config_get_double(c, "train.time_limit_s", &o->time_limit_s));
    DJ_TRY(dj_config_get_bool(c, "train.sync_bn", &o->sync_bn));
    DJ_TRY(dj_config_get_bool(c, "train.trace", &o->trace));
    DJ_TRY(dj_config_get_int(c, "train.trace_events", &o->trace_events));

    const char *kind = NULL;
    DJ_TRY(dj_config_get_string(c, "optimizer.kind", &kind));
    if (kind) {
        if (!strcmp(kind, "adamw")) {
            double lr = o->lr;
            o->optim = dj_optim_defaults(DJ_OPTIM_ADAMW);
            o->optim.decay_norms_and_biases = 0;
            o->optim.weight_decay = 0.05;
            o->lr = lr;
        } else if (strcmp(kind, "sgd")) {
            return dj_error_set(DJ_ERR_INVALID, "optimizer.kind", "recipe: sgd or adamw, not '%s'", kind);
        }
    }
    DJ_TRY(dj_config_get_double(c, "optimizer.lr", &o->lr));
    DJ_TRY(dj_config_get_double(c, "optimizer.momentum", &o->optim.momentum));
    DJ_TRY(dj_config_get_bool(c, "optimizer.nesterov", &o->optim.nesterov));
    DJ_TRY(dj_config_get_double(c, "optimizer.dampening", &o->optim.dampening));
    DJ_TRY(dj_config_get_double(c, "optimizer.weight_decay", &o->optim.weight_decay));
    DJ_TRY(dj_config_get_bool(c, "optimizer.decay_norms_and_biases", &o->optim.decay_norms_and_biases));
    DJ_TRY(dj_config_get_double(c, "optimizer.clip_grad_norm", &o->optim.clip_grad_norm));
    DJ_TRY(dj_pair(c, "optimizer.betas", &o->optim.beta1, &o->optim.beta2));
    DJ_TRY(dj_config_get_double(c, "optimizer.eps", &o->optim.eps));

    const char *sched = NULL;
    DJ_TRY(dj_config_get_string(c, "schedule.kind", &sched));
    if (sched) {
        if (!strcmp(sched, "cosine"))
            o->schedule = DJ_SCHEDULE_COSINE;
        else if (!strcmp(sched, "step"))
            o->schedule = DJ_SCHEDULE_STEP;
        else if (!strcmp(sched, "constant"))
            o->schedule = DJ_SCHEDULE_CONSTANT;
        else
            return dj_error_set(DJ_ERR_INVALID, "schedule.kind", "recipe: cosine, step or constant, not '%s'", sched);
    }
    DJ_TRY(dj_config_get_double(c, "schedule.warmup_epochs", &o->warmup_epochs));
    DJ_TRY(dj_config_get_double(c, "schedule.warmup_start_factor", &o->warmup_start_factor));
    DJ_TRY(dj_config_get_double(c, "schedule.min_lr", &o->min_lr));
    DJ_TRY(dj_config_get_double(c, "schedule.step_epochs", &o->step_epochs));
    DJ_TRY(dj_config_get_double(c, "schedule.gamma", &o->gamma));

    DJ_TRY(dj_pair(c, "augment.scale", &o->scale_min, &o->scale_max));
    DJ_TRY(dj_pair(c, "augment.ratio", &o->ratio_min, &o->ratio_max));
    DJ_TRY(dj_config_get_double(c, "augment.flip", &o->flip));
    double mean[3] = {o->norm.mean[0], o->norm.mean[1], o->norm.mean[2]};
    double std[3] = {o->norm.std[0], o->norm.std[1], o->norm.std[2]};
    int nm = 3, ns = 3;
    DJ_TRY(dj_config_get_doubles(c, "augment.mean", mean, 3, &nm));
    DJ_TRY(dj_config_get_doubles(c, "augment.std", std, 3, &ns));
    if (nm != 3 || ns != 3)
        return dj_error_set(DJ_ERR_INVALID, "augment.mean", "recipe: mean and std have 3 values (R, G, B)");
    for (int i = 0; i < 3; i++) {
        if (!(std[i] > 0))
            return dj_error_set(DJ_ERR_INVALID, "augment.std", "recipe: std values must be > 0");
        o->norm.mean[i] = (float)mean[i];
        o->norm.std[i] = (float)std[i];
    }
    const char *normalize = NULL;
    DJ_TRY(dj_config_get_string(c, "augment.normalize", &normalize));
    if (normalize) {
        if (!strcmp(normalize, "clip"))
            o->center_clips = 1;
        else if (!strcmp(normalize, "diff"))
            o->center_clips = 2;
        else if (strcmp(normalize, "dataset"))
            return dj_error_set(DJ_ERR_INVALID, "augment.normalize",
                                "recipe: 'dataset' (mean/std only), 'clip' (also remove each clip's mean) or 'diff' "
                                "(differences of consecutive frames), not '%s'",
                                normalize);
    }
    DJ_TRY(dj_config_get_int(c, "eval.clips", &o->eval_clips));
    DJ_TRY(dj_config_get_int(c, "eval.crops", &o->eval_crops));
    DJ_TRY(dj_config_check_unused(c));

    /* checks */
    if (o->frames < 1 || o->frames > 1024 || o->stride < 1 || o->stride > 1024)
        return dj_error_set(DJ_ERR_INVALID, "data.frames", "recipe: frames and stride must be in 1..1024");
    if (!(o->target_fps == 0 || (o->target_fps > 0 && o->target_fps <= 1000)))
        return dj_error_set(DJ_ERR_INVALID, "data.fps", "recipe: %g is not a frame rate in (0, 1000] (0: use data.stride)",
                            o->target_fps);
    if (o->size < 8 || o->size > 4096 || o->short_side < 0 || o->short_side > 8192)
        return dj_error_set(DJ_ERR_INVALID, "data.size", "recipe: size must be in 8..4096 (short_side 0..8192)");
    if (o->short_side == 0)
        o->short_side = (o->size * 8 + 6) / 7;
    if (o->short_side < o->size)
        return dj_error_set(DJ_ERR_INVALID, "data.short_side", "recipe: short_side (%lld) must be >= size (%lld)",
                            (long long)o->short_side, (long long)o->size);
    if (o->workers < 1 || o->workers > 64)
        return dj_error_set(DJ_ERR_INVALID, "data.workers", "recipe: workers must be in 1..64");
    if (o->worker_nice < 0 || o->worker_nice > 19)
        return dj_error_set(DJ_ERR_INVALID, "data.worker_nice", "recipe: a nice value in 0..19, not %lld",
                            (long long)o->worker_nice);
    if (o->epochs < 1 || o->batch < 1 || o->batch > 4096 || o->accumulate < 1 || o->accumulate > 1024)
        return dj_error_set(DJ_ERR_INVALID, "train.batch",
                            "recipe: epochs >= 1, batch in 1..4096 and accumulate in 1..1024");
    if (o->threads < 0 || o->threads > 1024 || o->seed < 0 || o->keep_checkpoints < 1 || o->log_every < 1)
        return dj_error_set(DJ_ERR_INVALID, "train.threads",
                            "recipe: threads 0..1024 (0: one per core), seed >= 0, keep_checkpoints >= 1, log_every >= 1");
    DJ_TRY(dj_range_check("train.label_smoothing", o->label_smoothing, 0, 1));
    DJ_TRY(dj_range_check("train.trace_events", (double)o->trace_events, 1, (double)(1 << 26)));
    DJ_TRY(dj_range_check("optimizer.lr", o->lr, 0, 1e6));
    DJ_TRY(dj_range_check("augment.flip", o->flip, 0, 1));
    DJ_TRY(dj_range_check("schedule.warmup_epochs", o->warmup_epochs, 0, 1e6));
    if (!(o->scale_min > 0 && o->scale_min <= o->scale_max && o->scale_max <= 1) ||
        !(o->ratio_min > 0 && o->ratio_min <= o->ratio_max))
        return dj_error_set(DJ_ERR_INVALID, "augment.scale", "recipe: 0 < scale low <= high <= 1, 0 < ratio low <= high");
    if (o->eval_clips < 1 || o->eval_clips > 64 || (o->eval_crops != 1 && o->eval_crops != 3))
        return dj_error_set(DJ_ERR_INVALID, "eval.clips", "recipe: eval clips in 1..64 and crops 1 or 3");
    return DJ_OK;
}
