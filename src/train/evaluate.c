/* evaluate.c — multi-view evaluation (K uniform clips x 1 or 3 crops per
 * video, softmax averaged per video, each video decoded once for all its
 * views), and opening a data set as an index. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/checkpoint.h"
#include "dojo/layers.h"
#include "dojo/loader.h"
#include "dojo/log.h"
#include "dojo/train.h"

void dj_eval_result_free(dj_eval_result *r) {
    if (!r)
        return;
    free(r->confusion);
    free(r->class_accuracy);
    free(r->video_probs);
    r->confusion = NULL;
    r->class_accuracy = NULL;
    r->video_probs = NULL;
}

dj_status dj_data_open(const char *data, const char *cache_path, dj_index **out) {
    *out = NULL;
    if (!data || !data[0])
        return dj_error_set(DJ_ERR_INVALID, "--data", "no data given");
    /* a dojo index file is recognised by its magic */
    FILE *f = fopen(data, "rb");
    if (f) {
        char magic[8] = {0};
        size_t n = fread(magic, 1, sizeof magic, f);
        fclose(f);
        if (n == sizeof magic && memcmp(magic, "DJVIDX\r\n", 8) == 0)
            return dj_index_load(data, out);
    }
    dj_index *previous = NULL;
    if (cache_path && dj_index_load(cache_path, &previous) != DJ_OK)
        previous = NULL; /* no cache or an unreadable one: index from scratch */
    dj_index_build_options bo;
    memset(&bo, 0, sizeof bo);
    bo.previous = previous;
    bo.quiet = dj_log_get_level() < DJ_LOG_INFO;
    dj_index_report rep;
    memset(&rep, 0, sizeof rep);
    dj_status s = dj_index_build(data, &bo, out, &rep);
    dj_index_free(previous);
    if (s != DJ_OK)
        return s;
    dj_log_info("indexed %s: %lld videos (%lld reused, %lld scanned, %lld skipped)", data,
                (long long)dj_index_count(*out), (long long)rep.reused, (long long)rep.scanned,
                (long long)rep.skipped);
    if (cache_path && (rep.scanned > 0 || rep.skipped > 0 || !previous)) {
        s = dj_index_save(*out, cache_path);
        if (s != DJ_OK) /* the cache is an optimisation: say so, go on */
            dj_log_warn("could not save the index cache: %s", dj_error_message());
    }
    return DJ_OK;
}

static void dj_softmax_row(const float *x, int k, double *p) {
    double m = x[0], s = 0;
    for (int i = 1; i < k; i++)
        if (x[i] > m)
            m = x[i];
    for (int i = 0; i < k; i++)
        s += (p[i] = exp((double)x[i] - m));
    for (int i = 0; i < k; i++)
        p[i] /= s;
}

static int dj_rank_of(const double *p, int k, int label) {
    int r = 0;
    for (int i = 0; i < k; i++)
        if (p[i] > p[label])
            r++;
    return r;
}

dj_status dj_evaluate(dj_model *m, const dj_exec *ex, const dj_index *index, const int *label_map,
                      const dj_eval_options *o, dj_eval_result *r) {
    memset(r, 0, sizeof *r);
    dj_graph *g = dj_model_graph(m);
    const int k = (int)dj_model_num_classes(m);
    const int64_t nvideo = dj_index_count(index);
    dj_tensor *input = dj_graph_tensor(g, dj_model_input(m));
    const int batch = (int)input->shape[0];
    dj_plan_entry *entries = calloc((size_t)nvideo, sizeof *entries);
    double *prob = calloc((size_t)nvideo * (size_t)k, sizeof *prob);
    int *views = calloc((size_t)nvideo, sizeof *views);
    double *p = calloc((size_t)k, sizeof *p);
    r->confusion = calloc((size_t)k * (size_t)k, sizeof *r->confusion);
    r->class_accuracy = calloc((size_t)k, sizeof *r->class_accuracy);
    dj_batch_plan *plan = NULL;
    dj_loader *loader = NULL;
    dj_status s = DJ_OK;
    if (!entries || !prob || !views || !p || !r->confusion || !r->class_accuracy) {
        s = dj_error_set(DJ_ERR_NOMEM, "evaluate", "cannot allocate");
        goto done;
    }
    r->num_classes = k;
    dj_loader_plan_entries(index, entries);
    dj_plan_options po;
    memset(&po, 0, sizeof po);
    po.batch_size = batch;
    po.shard.shuffle = 0;
    po.shard.drop_last = 0;
    po.clip.num_frames = (int)o->frames;
    po.clip.stride = (int)o->stride;
    po.clip.target_fps = o->target_fps;
    po.clip.mode = o->clips > 1 ? DJ_CLIP_UNIFORM : DJ_CLIP_CENTER;
    po.clip.num_clips = (int)o->clips;
    po.spatial.mode = DJ_SPATIAL_SHORT_SIDE;
    po.spatial.short_side = (int)o->short_side;
    po.spatial.crop_size = (int)o->size;
    po.spatial.num_crops = (int)o->crops;
    s = dj_batch_plan_create(entries, nvideo, 0, 0, &po, &plan);
    if (s != DJ_OK)
        goto done;
    dj_loader_options lo = dj_loader_defaults();
    lo.workers = (int)o->workers;
    lo.height = lo.width = (int)o->size;
    lo.norm = o->norm;
    lo.strict = o->strict;
    lo.center_clips = o->center_clips;
    s = dj_loader_create(index, plan, &lo, &loader);
    if (s != DJ_OK)
        goto done;
    const float *logits = dj_graph_tensor(g, dj_model_logits(m))->data;
    int64_t *labels_in = dj_graph_tensor(g, dj_model_labels(m))->data;
    double loss_sum = 0;
    int64_t c1 = 0, c5 = 0;
    for (;;) {
        const dj_loader_batch *b;
        s = dj_loader_next(loader, &b);
        if (s != DJ_OK || !b)
            break;
        size_t clip_bytes = dj_tensor_nbytes(&b->video) / (size_t)b->n;
        memcpy(input->data, b->video.data, clip_bytes * (size_t)b->n);
        if (b->n < batch) /* a short last batch: pad with zeros, ignore the rest */
            memset((char *)input->data + clip_bytes * (size_t)b->n, 0, clip_bytes * (size_t)(batch - b->n));
        for (int i = 0; i < batch; i++) {
            int64_t lab = i < b->n ? ((const int64_t *)b->labels.data)[i] : 0;
            if (label_map && i < b->n)
                lab = label_map[lab];
            if (lab < 0 || lab >= k) {
                s = dj_error_set(DJ_ERR_INVALID, "evaluate", "a video's class is not one of the model's %d classes", k);
                goto done;
            }
            labels_in[i] = lab;
        }
        s = dj_graph_forward(g, ex, 0);
        if (s != DJ_OK)
            goto done;
        for (int i = 0; i < b->n; i++) {
            int lab = (int)labels_in[i];
            dj_softmax_row(logits + (size_t)i * (size_t)k, k, p);
            loss_sum += -log(p[lab] > 1e-300 ? p[lab] : 1e-300);
            int rank = dj_rank_of(p, k, lab);
            c1 += rank == 0;
            c5 += rank < 5;
            int64_t e = b->slots[i].entry;
            for (int j = 0; j < k; j++)
                prob[e * k + j] += p[j];
            views[e]++;
            r->clips++;
        }
    }
    if (s != DJ_OK)
        goto done;
    r->clip_top1 = r->clips ? (double)c1 / (double)r->clips : 0;
    r->clip_top5 = r->clips ? (double)c5 / (double)r->clips : 0;
    r->loss = r->clips ? loss_sum / (double)r->clips : 0;
    int64_t v1 = 0, v5 = 0;
    int64_t *per_class = calloc((size_t)k, sizeof *per_class), *per_class_ok = calloc((size_t)k, sizeof *per_class);
    if (!per_class || !per_class_ok) {
        free(per_class);
        free(per_class_ok);
        s = dj_error_set(DJ_ERR_NOMEM, "evaluate", "cannot allocate");
        goto done;
    }
    for (int64_t e = 0; e < nvideo; e++) {
        if (!views[e])
            continue;
        int lab = dj_index_video(index, e)->label;
        if (label_map)
            lab = label_map[lab];
        int rank = dj_rank_of(prob + e * k, k, lab);
        int pred = 0;
        for (int j = 1; j < k; j++)
            if (prob[e * k + j] > prob[e * k + pred])
                pred = j;
        v1 += rank == 0;
        v5 += rank < 5;
        r->confusion[(int64_t)lab * k + pred]++;
        per_class[lab]++;
        per_class_ok[lab] += rank == 0;
        r->videos++;
    }
    r->video_top1 = r->videos ? (double)v1 / (double)r->videos : 0;
    r->video_top5 = r->videos ? (double)v5 / (double)r->videos : 0;
    for (int j = 0; j < k; j++)
        r->class_accuracy[j] = per_class[j] ? (double)per_class_ok[j] / (double)per_class[j] : NAN;
    free(per_class);
    free(per_class_ok);
    for (int64_t e = 0; e < nvideo; e++)
        for (int j = 0; j < k && views[e]; j++)
            prob[e * k + j] /= views[e];
    r->video_probs = prob;
    prob = NULL;
done:
    dj_loader_free(loader);
    dj_batch_plan_free(plan);
    free(entries);
    free(prob);
    free(views);
    free(p);
    if (s != DJ_OK)
        dj_eval_result_free(r);
    return s;
}

dj_status dj_model_from_checkpoint(const char *path, const char *model, int64_t batch, int64_t frames, int64_t size,
                                   int threads, dj_model **out, dj_checkpoint_state *st) {
    *out = NULL;
    memset(st, 0, sizeof *st);
    DJ_TRY(dj_checkpoint_peek(path, st));
    const char *name = model ? model : st->model;
    if (!name) {
        dj_checkpoint_state_free(st);
        return dj_error_set(DJ_ERR_INVALID, path, "the weights do not name their model: give --model");
    }
    char model_path[1024];
    dj_config *mc = NULL;
    dj_status s = dj_model_find(name, model_path, sizeof model_path);
    if (s == DJ_OK)
        s = dj_config_load(model_path, &mc);
    dj_model_shape shape = {batch, frames, size, size, st->num_classes, 0.0f, threads};
    if (s == DJ_OK)
        s = dj_model_create(mc, &shape, out);
    dj_config_free(mc);
    if (s == DJ_OK)
        s = dj_graph_plan(dj_model_graph(*out), 0);
    if (s == DJ_OK)
        s = dj_checkpoint_load(path, dj_model_graph(*out), NULL, NULL);
    if (s != DJ_OK) {
        dj_model_free(*out);
        *out = NULL;
        dj_checkpoint_state_free(st);
    }
    return s;
}

dj_status dj_eval_options_from_checkpoint(const dj_checkpoint_state *st, dj_eval_options *eo) {
    dj_train_options o;
    dj_train_defaults(&o);
    dj_config *c = NULL;
    if (st->config_json) {
        DJ_TRY(dj_config_parse(st->config_json, strlen(st->config_json), "checkpoint config", &c));
        dj_config_ignore(c, "demo"); /* the demo's data settings, read by `dojo train` */
        dj_status s = dj_train_options_read(c, &o);
        dj_config_free(c);
        DJ_TRY(s);
    } else {
        o.short_side = (o.size * 8 + 6) / 7;
    }
    memset(eo, 0, sizeof *eo);
    eo->frames = o.frames;
    eo->stride = o.stride;
    eo->target_fps = o.target_fps;
    eo->size = o.size;
    eo->short_side = o.short_side;
    eo->clips = o.eval_clips;
    eo->crops = o.eval_crops;
    eo->workers = o.workers;
    eo->batch = o.batch;
    eo->norm = o.norm;
    eo->center_clips = o.center_clips;
    return DJ_OK;
}
