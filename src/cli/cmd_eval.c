/* cmd_eval.c — `dojo eval CKPT --data ...`: clip- and video-level top-1/top-5
 * with multi-view testing, per-class accuracy and the confusion matrix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/checkpoint.h"
#include "dojo/train.h"

static const char *e_data, *e_model;
static int64_t e_clips, e_crops, e_batch, e_threads, e_workers;
static int e_json;

static const dj_option dj_eval_flags[] = {
    {"data", DJ_OPT_STRING, &e_data, "DIR|LIST|INDEX", "videos to evaluate (class names as in training)", 0, 0},
    {"model", DJ_OPT_STRING, &e_model, "NAME|FILE", "model, for weights that do not name theirs", 0, 0},
    {"clips", DJ_OPT_INT, &e_clips, "K", "uniform clips per video (0: the recipe's)", 0, 64},
    {"crops", DJ_OPT_INT, &e_crops, "1|3", "spatial crops per clip (0: the recipe's)", 0, 3},
    {"batch", DJ_OPT_INT, &e_batch, "B", "clips per forward pass (0: the recipe's)", 0, 4096},
    {"threads", DJ_OPT_INT, &e_threads, "N", "compute threads (0: one per core)", 0, 1024},
    {"workers", DJ_OPT_INT, &e_workers, "N", "decode threads", 1, 64},
    {"json", DJ_OPT_FLAG, &e_json, NULL, "print one JSON object", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_eval_spec = {
    "eval", "CKPT --data DIR|LIST|INDEX [--clips K] [--crops 1|3] [--json]",
    "Evaluates a checkpoint: K uniform clips x crops per video, softmax averaged\n"
    "per video, each video decoded once for all its views. Prints clip- and\n"
    "video-level top-1 and top-5, per-class accuracy and the confusion matrix.",
    dj_eval_flags, 1, 1,
};

/* Class names of a checkpoint (its classes metadata), or NULL. */
static cJSON *dj_eval_classes(const dj_checkpoint_state *st) {
    return st->classes_json ? cJSON_Parse(st->classes_json) : NULL;
}

int dj_cmd_eval(int argc, char **argv) {
    int np = 0;
    e_data = e_model = NULL;
    e_clips = e_crops = e_batch = e_threads = 0;
    e_workers = 1;
    e_json = 0;
    int rc = dj_cli_parse(&dj_eval_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    if (!e_data)
        return dj_cli_usage_error("eval", "--data is required");
    const char *ckpt = argv[1];
    dj_checkpoint_state st;
    memset(&st, 0, sizeof st);
    dj_eval_options eo;
    dj_status s = dj_checkpoint_peek(ckpt, &st);
    if (s == DJ_OK)
        s = dj_eval_options_from_checkpoint(&st, &eo);
    dj_checkpoint_state_free(&st);
    if (s != DJ_OK)
        return dj_cli_fail();
    if (e_clips)
        eo.clips = e_clips;
    if (e_crops) {
        if (e_crops == 2)
            return dj_cli_usage_error("eval", "--crops is 1 or 3");
        eo.crops = e_crops;
    }
    if (e_batch)
        eo.batch = e_batch;
    eo.workers = e_workers;
    dj_model *m = NULL;
    dj_index *index = NULL;
    dj_threadpool *pool = NULL;
    void *scratch = NULL;
    int *map = NULL;
    cJSON *classes = NULL;
    dj_eval_result r;
    memset(&r, 0, sizeof r);
    s = dj_model_from_checkpoint(ckpt, e_model, eo.batch, eo.frames, eo.size, (int)e_threads, &m, &st);
    if (s == DJ_OK)
        s = dj_data_open(e_data, NULL, &index);
    if (s == DJ_OK) {
        classes = dj_eval_classes(&st);
        int n = dj_index_class_count(index);
        map = calloc((size_t)(n > 0 ? n : 1), sizeof *map);
        for (int i = 0; map && i < n; i++) {
            const char *name = dj_index_class_name(index, i);
            map[i] = -1;
            for (int j = 0; classes && j < cJSON_GetArraySize(classes); j++) {
                const cJSON *c = cJSON_GetArrayItem(classes, j);
                if (cJSON_IsString(c) && !strcmp(c->valuestring, name))
                    map[i] = j;
            }
            if (!classes && i < dj_model_num_classes(m))
                map[i] = i; /* weights without class names: ids in sorted order */
            if (map[i] < 0) {
                s = dj_error_set(DJ_ERR_INVALID, e_data, "class '%s' is not one of the checkpoint's classes", name);
                break;
            }
        }
        if (!map)
            s = dj_error_set(DJ_ERR_NOMEM, "eval", "cannot allocate");
    }
    if (s == DJ_OK)
        s = dj_threadpool_create((int)e_threads, &pool);
    size_t sb = m ? dj_graph_scratch_bytes(dj_model_graph(m)) : 0;
    if (s == DJ_OK && sb && !(scratch = malloc(sb)))
        s = dj_error_set(DJ_ERR_NOMEM, "eval", "cannot allocate scratch");
    dj_exec ex = {pool, scratch, sb};
    if (s == DJ_OK)
        s = dj_evaluate(m, &ex, index, map, &eo, &r);
    if (s == DJ_OK) {
        int k = r.num_classes;
        if (e_json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "clip_top1", r.clip_top1);
            cJSON_AddNumberToObject(o, "clip_top5", r.clip_top5);
            cJSON_AddNumberToObject(o, "video_top1", r.video_top1);
            cJSON_AddNumberToObject(o, "video_top5", r.video_top5);
            cJSON_AddNumberToObject(o, "loss", r.loss);
            cJSON_AddNumberToObject(o, "clips", (double)r.clips);
            cJSON_AddNumberToObject(o, "videos", (double)r.videos);
            cJSON_AddNumberToObject(o, "views_per_video", (double)(eo.clips * eo.crops));
            cJSON *pc = cJSON_AddObjectToObject(o, "class_accuracy");
            cJSON *cm = cJSON_AddArrayToObject(o, "confusion");
            for (int i = 0; i < k; i++) {
                const cJSON *c = classes ? cJSON_GetArrayItem(classes, i) : NULL;
                char id[32];
                snprintf(id, sizeof id, "%d", i);
                const char *name = c && cJSON_IsString(c) ? c->valuestring : id;
                if (r.class_accuracy[i] == r.class_accuracy[i])
                    cJSON_AddNumberToObject(pc, name, r.class_accuracy[i]);
                else
                    cJSON_AddNullToObject(pc, name);
                cJSON *row = cJSON_CreateArray();
                for (int j = 0; j < k; j++)
                    cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r.confusion[i * k + j]));
                cJSON_AddItemToArray(cm, row);
            }
            char *text = cJSON_PrintUnformatted(o);
            if (text)
                printf("%s\n", text);
            free(text);
            cJSON_Delete(o);
        } else {
            printf("%lld videos, %lld clips (%lld views per video)\n", (long long)r.videos, (long long)r.clips,
                   (long long)(eo.clips * eo.crops));
            printf("video top-1 %.2f%%  top-5 %.2f%%\nclip  top-1 %.2f%%  top-5 %.2f%%  loss %.4f\n", 100 * r.video_top1,
                   100 * r.video_top5, 100 * r.clip_top1, 100 * r.clip_top5, r.loss);
            for (int i = 0; i < k; i++) {
                const cJSON *c = classes ? cJSON_GetArrayItem(classes, i) : NULL;
                printf("  %-24s %6.2f%%\n", c && cJSON_IsString(c) ? c->valuestring : "?", 100 * r.class_accuracy[i]);
            }
        }
    }
    dj_eval_result_free(&r);
    cJSON_Delete(classes);
    free(map);
    free(scratch);
    dj_threadpool_free(pool);
    dj_index_free(index);
    dj_model_free(m);
    dj_checkpoint_state_free(&st);
    return s == DJ_OK ? DJ_EXIT_OK : dj_cli_fail();
}
