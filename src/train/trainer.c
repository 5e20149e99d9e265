/* trainer.c — the training loop: data, model, optimizer and schedule set up
 * once; then per epoch a seeded batch plan, the loader running ahead, the
 * forward/backward/update steps, validation, checkpoints and metrics. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dojo/checkpoint.h"
#include "dojo/cpu.h"
#include "dojo/dist.h"
#include "dojo/fs.h"
#include "dojo/layers.h"
#include "dojo/loader.h"
#include "dojo/log.h"
#include "dojo/metrics.h"
#include "dojo/train.h"
#include "dojo/trace.h"

typedef struct dj_run {
    const dj_train_options *o;
    dj_config *cfg;
    char dir[1024], ckpt_dir[1100];
    dj_index *train, *val;
    int *val_map; /* val class id -> train class id */
    dj_plan_entry *entries;
    dj_model *model;
    dj_graph *g;
    dj_optimizer *opt;
    dj_threadpool *pool;
    void *scratch;
    dj_exec ex;
    dj_metrics *metrics;
    dj_schedule sched;
    int64_t steps_per_epoch;
    char *config_json, *classes_json;
    int threads;
    /* data parallelism: rank r of world trains on its share of every global
     * batch; gradients are averaged by the reducer; rank 0 writes the files */
    dj_comm *comm;
    dj_grad_reducer *reducer;
    int rank, world;
    int64_t local_batch; /* this rank's share of every global batch (3/3/2 for 8 over 3) */
    float loss_weight;   /* local_batch * world / batch: the reducer's mean then weights rows equally */
    dj_stats_sync stats_sync; /* --sync-bn: batch norm sums all-reduced over the ranks */
    dj_trace *trace;          /* --trace: this rank's timeline, or NULL */
} dj_run;


static int dj_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* The class names of the training index as a JSON list. */
static char *dj_classes_json(const dj_index *idx) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < dj_index_class_count(idx); i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(dj_index_class_name(idx, i)));
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

/* Writes text and a newline to dir/name atomically. */
static dj_status dj_write_text(const char *dir, const char *name, const char *text) {
    char path[1200];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return dj_error_set(DJ_ERR_INVALID, dir, "path too long");
    dj_fs_temp t;
    DJ_TRY(dj_fs_temp_open(&t, path));
    fputs(text, t.f);
    fputc('\n', t.f);
    return dj_fs_temp_commit(&t);
}

/* Maps the validation set's class names onto the training classes. */
static dj_status dj_map_classes(dj_run *r) {
    int nv = dj_index_class_count(r->val), nt = dj_index_class_count(r->train);
    r->val_map = calloc((size_t)(nv > 0 ? nv : 1), sizeof *r->val_map);
    if (!r->val_map)
        return dj_error_set(DJ_ERR_NOMEM, "train", "cannot allocate");
    for (int i = 0; i < nv; i++) {
        r->val_map[i] = -1;
        for (int j = 0; j < nt; j++)
            if (!strcmp(dj_index_class_name(r->val, i), dj_index_class_name(r->train, j)))
                r->val_map[i] = j;
        if (r->val_map[i] < 0)
            return dj_error_set(DJ_ERR_INVALID, r->o->val_data, "validation class '%s' is not a training class",
                                dj_index_class_name(r->val, i));
    }
    return DJ_OK;
}

/* Each rank plans its share of every global batch (position j of global
 * batch k goes to rank j % world: 3/3/2 clips for 8 over 3 ranks):
 * together the ranks' k-th batches are exactly the one-process k-th global
 * batch, crops and flips included (they are drawn from the sample's global
 * position). drop_last: whole global batches only, as in one process (the
 * graph is planned for one batch size, so no partial last batch is kept). */
static dj_plan_options dj_train_plan_options(const dj_train_options *o, int rank, int world) {
    dj_plan_options po;
    memset(&po, 0, sizeof po);
    po.batch_size = 0; /* this rank's share of the global batch */
    po.shard.shuffle = 1;
    po.shard.drop_last = 1;
    po.shard.rank = rank;
    po.shard.world = world;
    po.shard.global_batch = (int)o->batch;
    po.clip.num_frames = (int)o->frames;
    po.clip.stride = (int)o->stride;
    po.clip.target_fps = o->target_fps;
    po.clip.mode = DJ_CLIP_RANDOM;
    po.spatial.mode = DJ_SPATIAL_RESIZED_CROP;
    po.spatial.scale_min = (float)o->scale_min;
    po.spatial.scale_max = (float)o->scale_max;
    po.spatial.ratio_min = (float)o->ratio_min;
    po.spatial.ratio_max = (float)o->ratio_max;
    po.spatial.flip_prob = (float)o->flip;
    return po;
}

/* --sync-bn (with more than one rank: alone it changes nothing) and --trace. */
static dj_status dj_run_scale_out_setup(dj_run *r) {
    if (r->o->sync_bn && r->world > 1) {
        r->stats_sync = dj_comm_stats_sync(r->comm);
        dj_graph_set_stats_sync(r->g, &r->stats_sync);
        dj_log_info("synchronised batch norm: statistics over the %d ranks' clips", r->world);
    }
    if (r->o->trace) {
        DJ_TRY(dj_comm_barrier(r->comm)); /* the ranks' clocks start together (within a message) */
        DJ_TRY(dj_trace_create(r->rank, r->o->trace_events, &r->trace));
    }
    return DJ_OK;
}

/* Writes RUNDIR/trace.rank<R>.json (every rank its own). */
static dj_status dj_run_write_trace(dj_run *r) {
    if (!r->trace)
        return DJ_OK;
    char path[1200];
    snprintf(path, sizeof path, "%s/trace.rank%d.json", r->dir, r->rank);
    DJ_TRY(dj_trace_write(r->trace, path, r->world));
    dj_log_info("timeline: %s (%lld events%s)", path, (long long)dj_trace_count(r->trace),
                dj_trace_dropped(r->trace) ? ", buffer full: later ones dropped" : "");
    return DJ_OK;
}

/* The step's events on the timeline: times t[0..5] = start, data ready,
 * forward done, backward done, gradients reduced, optimizer done. */
static void dj_run_trace_step(dj_run *r, int64_t step, const double *t, int updated) {
    if (!r->trace)
        return;
    dj_trace_add(r->trace, "step", DJ_LANE_COMPUTE, t[0], t[5], step, -1, -1);
    dj_trace_add(r->trace, "data wait", DJ_LANE_DATA, t[0], t[1], step, -1, -1);
    dj_trace_add(r->trace, "forward", DJ_LANE_COMPUTE, t[1], t[2], step, -1, -1);
    dj_trace_add(r->trace, "backward", DJ_LANE_COMPUTE, t[2], t[3], step, -1, -1);
    if (!updated) /* an accumulation micro-batch: no exchange, no update */
        return;
    if (r->reducer)
        dj_trace_add(r->trace, "gradient wait", DJ_LANE_COMPUTE, t[3], t[4], step, -1, -1);
    dj_trace_add(r->trace, "optimizer", DJ_LANE_COMPUTE, t[4], t[5], step, -1, -1);
    for (int b = 0; r->reducer && b < dj_grad_reducer_num_buckets(r->reducer); b++) {
        double t0, t1;
        if (dj_grad_reducer_bucket_times(r->reducer, b, &t0, &t1))
            dj_trace_add(r->trace, "all-reduce", DJ_LANE_BUCKET0 + b, t0, t1, step, b,
                         (int64_t)dj_grad_reducer_bucket_bytes(r->reducer, b));
    }
}

static dj_status dj_run_setup(dj_run *r) {
    const dj_train_options *o = r->o;
    if (!o->train_data)
        return dj_error_set(DJ_ERR_INVALID, "--data", "no training data (give --data or data.train in the recipe)");
    if (!o->out)
        return dj_error_set(DJ_ERR_INVALID, "--out", "no run folder (give --out or train.out in the recipe)");
    snprintf(r->dir, sizeof r->dir, "%s", o->out);
    snprintf(r->ckpt_dir, sizeof r->ckpt_dir, "%s/checkpoints", r->dir);
    char last[1200];
    snprintf(last, sizeof last, "%s/last.safetensors", r->ckpt_dir);
    if (!o->resume && dj_exists(last))
        return dj_error_set(DJ_ERR_INVALID, r->dir,
                            "the run folder already holds a run: add --resume to continue it, or choose another --out");
    if (o->resume && !dj_exists(last))
        return dj_error_set(DJ_ERR_NOT_FOUND, last, "--resume: no checkpoint to resume from");
    DJ_TRY(dj_comm_create(DJ_COMM_AUTO, &r->comm));
    r->rank = dj_comm_rank(r->comm);
    r->world = dj_comm_size(r->comm);
    if (o->batch < r->world)
        return dj_error_set(DJ_ERR_INVALID, "--batch", "the global batch (%lld) has fewer clips than the %d ranks",
                            (long long)o->batch, r->world);
    r->local_batch = dj_shard_batch_share((int)o->batch, r->rank, r->world);
    DJ_TRY(dj_comm_batch_weight(r->comm, r->local_batch, &r->loss_weight)); /* exactly 1 for even shares */
    if (r->rank > 0 && dj_log_get_level() > DJ_LOG_WARN)
        dj_log_set_level(DJ_LOG_WARN); /* rank 0 speaks for the job */
    if (r->rank == 0) {
        DJ_TRY(dj_fs_mkdirs(r->dir));
        DJ_TRY(dj_fs_mkdirs(r->ckpt_dir));
    }

    /* data: rank 0 indexes (and caches the index); the others then reuse it */
    char cache[1200];
    for (int pass = 0; pass < 2; pass++) {
        if ((pass == 0) == (r->rank == 0)) {
            snprintf(cache, sizeof cache, "%s/train.index", r->dir);
            DJ_TRY(dj_data_open(o->train_data, cache, &r->train));
            if (o->val_data) {
                snprintf(cache, sizeof cache, "%s/val.index", r->dir);
                DJ_TRY(dj_data_open(o->val_data, cache, &r->val));
                DJ_TRY(dj_map_classes(r));
            }
        }
        if (pass == 0)
            DJ_TRY(dj_comm_barrier(r->comm));
    }
    int64_t n = dj_index_count(r->train);
    if (n < o->batch)
        return dj_error_set(DJ_ERR_INVALID, o->train_data, "%lld usable videos, fewer than one batch (%lld)",
                            (long long)n, (long long)o->batch);
    if (dj_index_class_count(r->train) < 2)
        return dj_error_set(DJ_ERR_INVALID, o->train_data, "training needs at least 2 classes, found %d",
                            dj_index_class_count(r->train));
    r->entries = calloc((size_t)n, sizeof *r->entries);
    if (!r->entries)
        return dj_error_set(DJ_ERR_NOMEM, "train", "cannot allocate");
    DJ_TRY(dj_loader_plan_entries(r->train, r->entries));

    /* threads: the compute pool; decode workers run beside it */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    r->threads = o->threads > 0 ? (int)o->threads : (int)(cores > 0 ? cores : 1);
    DJ_TRY(dj_threadpool_create(r->threads, &r->pool));

    /* model */
    char path[1024];
    dj_config *mc = NULL;
    DJ_TRY(dj_model_find(o->model, path, sizeof path));
    DJ_TRY(dj_config_load(path, &mc));
    dj_model_shape shape = {r->local_batch, o->frames, o->size, o->size, dj_index_class_count(r->train),
                            (float)o->label_smoothing, r->threads};
    dj_status s = dj_model_create(mc, &shape, &r->model);
    dj_config_free(mc);
    DJ_TRY(s);
    r->g = dj_model_graph(r->model);
    dj_graph_set_bf16(r->g, o->bf16); /* mixed precision: bf16 copies of the matmul weights */
    dj_graph_set_conv_algo(r->g, o->conv_algo);
    DJ_TRY(dj_graph_plan(r->g, 1));
    DJ_TRY(dj_model_init(r->model, (uint64_t)o->seed));
    size_t scratch = dj_graph_scratch_bytes(r->g);
    if (scratch && !(r->scratch = aligned_alloc(64, (scratch + 63) / 64 * 64)))
        return dj_error_set(DJ_ERR_NOMEM, "train", "cannot allocate %zu bytes of scratch", scratch);
    r->ex = (dj_exec){r->pool, r->scratch, scratch};
    dj_optim_config oc = o->optim;
    DJ_TRY(dj_optimizer_create(r->g, &oc, &r->opt));
    DJ_TRY(dj_comm_broadcast_graph(r->comm, r->g)); /* every rank starts from rank 0's weights */
    if (r->world > 1)
        DJ_TRY(dj_grad_reducer_create(r->comm, r->g, 0, &r->reducer));
    DJ_TRY(dj_run_scale_out_setup(r));

    /* schedule, in optimizer steps */
    dj_plan_options po = dj_train_plan_options(o, r->rank, r->world);
    dj_batch_plan *plan0 = NULL;
    DJ_TRY(dj_batch_plan_create(r->entries, n, (uint64_t)o->seed, 0, &po, &plan0));
    r->steps_per_epoch = plan0->num_batches / o->accumulate;
    dj_batch_plan_free(plan0);
    if (r->steps_per_epoch < 1)
        return dj_error_set(DJ_ERR_INVALID, "train.accumulate", "fewer batches per epoch than accumulate steps");
    memset(&r->sched, 0, sizeof r->sched);
    r->sched.kind = o->schedule;
    r->sched.base_lr = o->lr;
    r->sched.warmup_steps = (int64_t)llround(o->warmup_epochs * (double)r->steps_per_epoch);
    r->sched.warmup_start_factor = o->warmup_start_factor;
    r->sched.total_steps = r->steps_per_epoch * o->epochs;
    r->sched.step_size = (int64_t)llround(o->step_epochs * (double)r->steps_per_epoch);
    if (r->sched.step_size < 1)
        r->sched.step_size = 1;
    r->sched.gamma = o->gamma;
    r->sched.min_lr = o->min_lr;
    DJ_TRY(dj_schedule_check(&r->sched));

    r->config_json = dj_config_to_json(r->cfg);
    r->classes_json = dj_classes_json(r->train);
    if (!r->config_json || !r->classes_json)
        return dj_error_set(DJ_ERR_NOMEM, "train", "cannot allocate");
    if (r->rank == 0) {
        DJ_TRY(dj_write_text(r->dir, "config.json", r->config_json));
        DJ_TRY(dj_metrics_open(r->dir, &r->metrics));
    }

    dj_graph_memory mem;
    dj_graph_memory_report(r->g, &mem);
    dj_log_info("model %s (%s): %lld parameters, %d classes, input %lldx3x%lldx%lldx%lld", o->model,
                dj_model_arch(r->model), (long long)dj_model_num_params(r->model), dj_index_class_count(r->train),
                (long long)o->batch, (long long)o->frames, (long long)o->size, (long long)o->size);
    dj_log_info("memory planned: parameters %.1f MiB, gradients %.1f MiB, optimizer %.1f MiB, activations %.1f MiB "
                "(%.1f MiB without reuse; %.1f MiB recomputed for the backward pass, not kept), scratch %.1f MiB%s",
                mem.params / 1048576.0, mem.grads / 1048576.0, dj_optimizer_bytes(r->opt) / 1048576.0,
                mem.activations / 1048576.0, mem.activations_naive / 1048576.0, mem.recomputed / 1048576.0,
                mem.scratch / 1048576.0, o->bf16 ? "" : " (float32)");
    if (o->bf16)
        dj_log_info("mixed precision: bf16 matrix products (%s), float32 sums and master weights; bf16 weight "
                    "copies %.1f MiB",
                    dj_cpu_bf16_native() ? "avx512_bf16" : "converted", mem.params_bf16 / 1048576.0);
    int convs = 0, wino = dj_graph_winograd_convs(r->g, &convs);
    dj_log_info("conv3d (%s): %d of %d convolutions run Winograd's F(m,3) tiles, the rest implicit GEMMs",
                dj_conv_algo_name(o->conv_algo), wino,
                convs);
    dj_log_info("data: %lld training videos%s, %lld batches per epoch, %d compute threads, %lld decode workers",
                (long long)n, r->val ? " + validation" : "", (long long)(r->steps_per_epoch * o->accumulate),
                r->threads, (long long)o->workers);
    if (r->world > 1)
        dj_log_info("data parallel: %d ranks (%s), %lld to %lld clips per rank per batch, %d gradient buckets",
                    r->world, dj_comm_backend(r->comm), (long long)(o->batch / r->world),
                    (long long)((o->batch + r->world - 1) / r->world), dj_grad_reducer_num_buckets(r->reducer));
    return DJ_OK;
}

static void dj_run_free(dj_run *r) {
    dj_trace_free(r->trace);
    dj_grad_reducer_free(r->reducer);
    dj_comm_free(r->comm);
    dj_metrics_close(r->metrics);
    dj_optimizer_free(r->opt);
    dj_model_free(r->model);
    free(r->scratch);
    dj_threadpool_free(r->pool);
    dj_index_free(r->train);
    dj_index_free(r->val);
    free(r->val_map);
    free(r->entries);
    free(r->config_json);
    free(r->classes_json);
}

static dj_status dj_run_checkpoint(dj_run *r, int64_t epoch, int64_t step, double best, int is_best,
                                   char *path_out, size_t path_size) {
    snprintf(path_out, path_size, "%s/last.safetensors", r->ckpt_dir);
    if (r->rank != 0)
        return DJ_OK;
    dj_checkpoint_state st;
    memset(&st, 0, sizeof st);
    st.epoch = epoch;
    st.step = step;
    st.seed = (uint64_t)r->o->seed;
    st.best_metric = best;
    st.config_json = r->config_json;
    st.model = (char *)r->o->model;
    st.num_classes = dj_model_num_classes(r->model);
    st.classes_json = r->classes_json;
    char path[1300];
    snprintf(path, sizeof path, "%s/step-%lld.safetensors", r->ckpt_dir, (long long)step);
    DJ_TRY(dj_checkpoint_save(path, r->g, r->opt, &st));
    snprintf(path, sizeof path, "%s/last.safetensors", r->ckpt_dir);
    DJ_TRY(dj_checkpoint_save(path, r->g, r->opt, &st));
    snprintf(path_out, path_size, "%s", path);
    if (is_best) {
        snprintf(path, sizeof path, "%s/best.safetensors", r->ckpt_dir);
        DJ_TRY(dj_checkpoint_save(path, r->g, NULL, &st));
        snprintf(path_out, path_size, "%s", path);
    }
    return dj_checkpoint_rotate(r->ckpt_dir, (int)r->o->keep_checkpoints);
}

static void dj_format_eta(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(fmod(s, 3600) / 60));
    else if (s >= 60)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, n, "%ds", (int)s);
}

static dj_status dj_validate(dj_run *r, int64_t epoch, int64_t step, double wall, dj_eval_result *res) {
    dj_eval_options eo;
    memset(&eo, 0, sizeof eo);
    eo.frames = r->o->frames;
    eo.stride = r->o->stride;
    eo.target_fps = r->o->target_fps;
    eo.size = r->o->size;
    eo.short_side = r->o->short_side;
    eo.clips = r->o->eval_clips;
    eo.crops = r->o->eval_crops;
    eo.workers = r->o->workers;
    eo.strict = r->o->strict;
    eo.norm = r->o->norm;
    eo.center_clips = r->o->center_clips;
    DJ_TRY(dj_evaluate(r->model, &r->ex, r->val, r->val_map, &eo, res)); /* every rank: the same result */
    if (!r->metrics)
        return DJ_OK;
    const char *keys[] = {"top1", "top5", "loss", "clip_top1"};
    double vals[] = {res->video_top1, res->video_top5, res->loss, res->clip_top1};
    DJ_TRY(dj_metrics_log(r->metrics, "val", epoch, step, wall, 4, keys, vals));
    const char *names[4096];
    int k = res->num_classes < 4096 ? res->num_classes : 4096;
    for (int i = 0; i < k; i++)
        names[i] = dj_index_class_name(r->train, i);
    DJ_TRY(dj_metrics_log_confusion(r->metrics, epoch, step, k, res->confusion, names));
    return dj_metrics_flush(r->metrics);
}

static dj_status dj_write_summary(dj_run *r, const dj_train_result *res) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return dj_error_set(DJ_ERR_NOMEM, "train", "cannot allocate");
    cJSON_AddNumberToObject(o, "val_top1", res->val_top1);
    cJSON_AddNumberToObject(o, "val_top5", res->val_top5);
    cJSON_AddNumberToObject(o, "epochs", (double)res->epochs);
    cJSON_AddNumberToObject(o, "steps", (double)res->steps);
    cJSON_AddNumberToObject(o, "wall_s", res->wall_s);
    cJSON_AddNumberToObject(o, "clips_per_s", res->clips_per_s);
    cJSON_AddStringToObject(o, "checkpoint", res->checkpoint);
    cJSON_AddStringToObject(o, "model", r->o->model);
    cJSON_AddNumberToObject(o, "parameters", (double)dj_model_num_params(r->model));
    cJSON_AddNumberToObject(o, "threads", r->threads);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text)
        return dj_error_set(DJ_ERR_NOMEM, "train", "cannot allocate");
    dj_status s = dj_write_text(r->dir, "summary.json", text);
    free(text);
    return s;
}

static dj_status dj_train_epochs(dj_run *r, dj_train_result *res) {
    const dj_train_options *o = r->o;
    int64_t epoch0 = 0, step = 0;
    double best = -1;
    if (o->resume) {
        char last[1300];
        snprintf(last, sizeof last, "%s/last.safetensors", r->ckpt_dir);
        dj_checkpoint_state st;
        memset(&st, 0, sizeof st);
        DJ_TRY(dj_checkpoint_load(last, r->g, r->opt, &st));
        epoch0 = st.epoch;
        step = st.step;
        best = st.best_metric;
        int same_seed = st.seed == (uint64_t)o->seed;
        dj_checkpoint_state_free(&st);
        if (!same_seed)
            return dj_error_set(DJ_ERR_INVALID, last, "--resume: the checkpoint was made with another seed");
        dj_log_info("resuming from %s: epoch %lld done, step %lld", last, (long long)epoch0, (long long)step);
        snprintf(res->checkpoint, sizeof res->checkpoint, "%s", last);
    }
    const int64_t n = dj_index_count(r->train);
    dj_plan_options po = dj_train_plan_options(o, r->rank, r->world);
    dj_loader_options lo = dj_loader_defaults();
    lo.workers = (int)o->workers;
    lo.nice = (int)o->worker_nice;
    lo.height = lo.width = (int)o->size;
    lo.norm = o->norm;
    lo.strict = o->strict;
    lo.center_clips = o->center_clips;
    dj_tensor *input = dj_graph_tensor(r->g, dj_model_input(r->model));
    dj_tensor *labels = dj_graph_tensor(r->g, dj_model_labels(r->model));
    const dj_tensor *logits = dj_graph_tensor(r->g, dj_model_logits(r->model));
    const float *loss_ptr = dj_graph_tensor(r->g, dj_model_loss(r->model))->data;
    dj_progress *progress = dj_progress_create(stderr);
    const double t_start = dj_time_now();
    double train_time = 0;
    int64_t train_clips = 0;
    dj_status s = DJ_OK;
    for (int64_t epoch = epoch0; epoch < o->epochs && s == DJ_OK; epoch++) {
        double t_epoch = dj_time_now();
        double t_window = t_epoch; /* clips/s is measured over the current logging window */
        if (o->time_limit_s > 0 && epoch > epoch0) {
            double per_epoch = (t_epoch - t_start) / (double)(epoch - epoch0);
            int64_t stop = t_epoch - t_start + per_epoch > o->time_limit_s;
            if (dj_comm_broadcast_bytes(r->comm, &stop, sizeof stop) != DJ_OK) /* rank 0 decides for all */
                break;
            if (stop) {
                dj_log_warn("stopping after epoch %lld: the next epoch would pass train.time_limit_s",
                            (long long)epoch);
                break;
            }
        }
        dj_batch_plan *plan = NULL;
        dj_loader *loader = NULL;
        s = dj_batch_plan_create(r->entries, n, (uint64_t)o->seed, (uint64_t)epoch, &po, &plan);
        if (s == DJ_OK)
            s = dj_loader_create(r->train, plan, &lo, &loader);
        int64_t nb = plan ? r->steps_per_epoch * o->accumulate : 0;
        double loss_sum = 0, wloss_sum = 0, wait_sum = 0, step_sum = 0; /* wloss: loss x clips */
        int64_t correct = 0, seen = 0, log_n = 0;
        dj_loader_stats prev = {0};
        for (int64_t bi = 0; s == DJ_OK && bi < nb; bi++) {
            double t0 = dj_time_now();
            const dj_loader_batch *b;
            s = dj_loader_next(loader, &b);
            if (s != DJ_OK)
                break;
            if (!b) {
                s = dj_error_set(DJ_ERR_INTERNAL, "train", "the loader ended early at batch %lld", (long long)bi);
                break;
            }
            double t_data = dj_time_now();
            double tt[6] = {t0, t_data, 0, 0, 0, 0}; /* the timeline's marks (dj_run_trace_step) */
            const int64_t batch_step = step;
            memcpy(input->data, b->video.data, dj_tensor_nbytes(&b->video));
            memcpy(labels->data, b->labels.data, dj_tensor_nbytes(&b->labels));
            if (bi % o->accumulate == 0)
                dj_graph_zero_grads(r->g);
            dj_graph_set_seed(r->g, (uint64_t)o->seed, (uint64_t)step);
            s = dj_graph_forward(r->g, &r->ex, 1);
            tt[2] = dj_time_now();
            const int last_micro = (bi + 1) % o->accumulate == 0;
            if (s == DJ_OK && last_micro && r->reducer)
                s = dj_grad_reducer_begin(r->reducer); /* buckets start during this backward pass */
            if (s == DJ_OK)
                s = dj_graph_backward(r->g, &r->ex, dj_model_loss(r->model), r->loss_weight / (float)o->accumulate);
            tt[3] = dj_time_now();
            if (s == DJ_OK && last_micro && r->reducer)
                s = dj_grad_reducer_finish(r->reducer); /* the mean over ranks, same bits everywhere */
            tt[4] = dj_time_now();
            double lr = dj_schedule_lr(&r->sched, step);
            if (s == DJ_OK && (bi + 1) % o->accumulate == 0) {
                s = dj_optimizer_step(r->opt, &r->ex, lr, NULL);
                if (s == DJ_ERR_RANGE) {
                    dj_log_warn("step %lld: %s", (long long)step, dj_error_message());
                    s = DJ_OK;
                }
                step++;
            }
            tt[5] = dj_time_now();
            if (s != DJ_OK)
                break;
            dj_run_trace_step(r, batch_step, tt, (bi + 1) % o->accumulate == 0);
            int64_t c1 = 0;
            dj_topk_correct(logits, labels, 1, &c1);
            correct += c1;
            seen += b->n;
            loss_sum += *loss_ptr;
            wloss_sum += (double)*loss_ptr * (double)b->n;
            log_n++;
            double t1 = dj_time_now();
            wait_sum += t_data - t0;
            step_sum += t1 - t0;
            train_time += t1 - t0;
            train_clips += b->n;
            double rate = (double)seen / (t1 - t_window);
            double left = (double)((nb - bi - 1) + (o->epochs - epoch - 1) * nb) * (t1 - t_epoch) / (double)(bi + 1);
            char eta[32];
            dj_format_eta(left, eta, sizeof eta);
            dj_progress_update(progress,
                               "epoch %lld/%lld  step %lld/%lld  loss %.4f  lr %.4g  clips/s %.1f  data wait %.0f%%  "
                               "left %s",
                               (long long)epoch + 1, (long long)o->epochs, (long long)bi + 1, (long long)nb,
                               loss_sum / (double)log_n, lr, rate, 100.0 * wait_sum / step_sum, eta);
            if (step % o->log_every == 0 || bi + 1 == nb) {
                double sums[3] = {wloss_sum, (double)correct, (double)seen};
                s = dj_comm_allreduce_f64(r->comm, sums, 3, DJ_REDUCE_SUM); /* the job's figures */
                if (s != DJ_OK)
                    break;
                correct = (int64_t)sums[1];
                seen = (int64_t)sums[2];
                loss_sum = sums[0] / (double)seen * (double)log_n; /* the mean over the job's clips, x log_n */
                dj_loader_stats ls = dj_loader_get_stats(loader);
                double dpd = ls.frames_delivered > prev.frames_delivered
                                 ? (double)(ls.frames_decoded - prev.frames_decoded) /
                                       (double)(ls.frames_delivered - prev.frames_delivered)
                                 : 0;
                prev = ls;
                const char *keys[] = {"loss", "lr", "top1", "clips_per_s", "data_wait", "decoded_per_delivered"};
                double vals[] = {loss_sum / (double)log_n, lr, (double)correct / (double)seen,
                                 (double)seen / step_sum, wait_sum / step_sum, dpd};
                if (r->metrics)
                    s = dj_metrics_log(r->metrics, "train", epoch, step, dj_time_now() - t_start, 6, keys, vals);
                loss_sum = wloss_sum = 0;
                correct = seen = log_n = 0;
                wait_sum = step_sum = 0;
                t_window = dj_time_now();
            }
        }
        if (loader) {
            dj_loader_stats ls = dj_loader_get_stats(loader);
            if (ls.videos_failed)
                dj_log_warn("epoch %lld: %lld unreadable videos skipped (their clips were replaced)",
                            (long long)epoch + 1, (long long)ls.videos_failed);
        }
        dj_loader_free(loader);
        dj_batch_plan_free(plan);
        if (s != DJ_OK)
            break;
        dj_progress_end(progress);
        double top1 = -1;
        if (r->val) {
            dj_eval_result ev;
            s = dj_validate(r, epoch, step, dj_time_now() - t_start, &ev);
            if (s != DJ_OK)
                break;
            top1 = ev.video_top1;
            res->val_top1 = ev.video_top1;
            res->val_top5 = ev.video_top5;
            dj_log_info("epoch %lld: validation top-1 %.2f%%, top-5 %.2f%% (%lld videos)", (long long)epoch + 1,
                        100 * ev.video_top1, 100 * ev.video_top5, (long long)ev.videos);
            dj_eval_result_free(&ev);
        }
        int is_best = r->val && top1 > best;
        if (is_best)
            best = top1;
        s = dj_run_checkpoint(r, epoch + 1, step, best, is_best, res->checkpoint, sizeof res->checkpoint);
        res->epochs = epoch + 1;
    }
    dj_progress_free(progress);
    if (s == DJ_OK) {
        s = dj_run_write_trace(r);
    } else if (r->trace) { /* also after a failure (the timeline shows where), keeping its message */
        char why[1024];
        snprintf(why, sizeof why, "%s", dj_error_message());
        if (dj_run_write_trace(r) != DJ_OK)
            dj_log_warn("%s", dj_error_message());
        dj_error_set(s, NULL, "%s", why);
    }
    res->steps = step;
    res->wall_s = dj_time_now() - t_start;
    res->clips_per_s = train_time > 0 ? (double)train_clips * (double)o->batch / (double)r->local_batch / train_time
                                      : 0; /* the whole job's */
    if (best >= 0)
        res->val_top1 = res->val_top1 > 0 ? res->val_top1 : best;
    return s;
}

dj_status dj_train_run(const dj_train_options *o, dj_config *cfg, dj_train_result *result) {
    dj_run r;
    memset(&r, 0, sizeof r);
    memset(result, 0, sizeof *result);
    r.o = o;
    r.cfg = cfg;
    dj_status s = dj_run_setup(&r);
    if (s == DJ_OK)
        s = dj_train_epochs(&r, result);
    result->rank = r.rank;
    if (s == DJ_OK && r.rank == 0)
        s = dj_write_summary(&r, result);
    if (s == DJ_OK && r.rank == 0) {
        dj_metrics_flush(r.metrics);
        dj_status rs = dj_report_write(r.dir, NULL);
        if (rs != DJ_OK)
            dj_log_warn("could not write the report: %s", dj_error_message());
    }
    dj_run_free(&r);
    return s;
}
