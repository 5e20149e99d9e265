/* cmd_eval.c — `dojo eval CKPT --data ...`: clip- and video-level top-1/top-5
 * with multi-view testing, per-class accuracy and the confusion matrix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/checkpoint.h"
#include "dojo/train.h"

static const char *e_data, *e_model, *e_device;
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
    {"device", DJ_OPT_STRING, &e_device, "cpu|cuda[:N]", "where the network runs (default cpu)", 0, 0},
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

int dj_cmd_eval(int argc, char **argv) {
    int np = 0;
    e_data = e_model = e_device = NULL;
    e_clips = e_crops = e_batch = e_threads = 0;
    e_workers = 1;
    e_json = 0;
    int rc = dj_cli_parse(&dj_eval_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    dj_device_spec device;
    rc = dj_cli_device("eval", e_device, &device);
    if (rc >= 0)
        return rc;
    if (!e_data)
        return dj_cli_usage_error("eval", "--data is required");
    const char *ckpt = argv[1];
    dj_cli_evaluator ev;
    memset(&ev, 0, sizeof ev);
    if (dj_cli_evaluator_options(ckpt, &ev.eo) != DJ_OK)
        return dj_cli_fail();
    if (e_clips)
        ev.eo.clips = e_clips;
    if (e_crops) {
        if (e_crops == 2)
            return dj_cli_usage_error("eval", "--crops is 1 or 3");
        ev.eo.crops = e_crops;
    }
    if (e_batch)
        ev.eo.batch = e_batch;
    ev.eo.workers = e_workers;
    dj_index *index = NULL;
    int *map = NULL;
    dj_eval_result r;
    memset(&r, 0, sizeof r);
    char id[32];
    dj_status s = dj_cli_evaluator_open(&ev, ckpt, e_model, (int)e_threads);
    if (s == DJ_OK)
        s = dj_data_open(e_data, NULL, &index);
    if (s == DJ_OK) {
        /* the data's class names onto the checkpoint's classes */
        int n = dj_index_class_count(index);
        map = calloc((size_t)(n > 0 ? n : 1), sizeof *map);
        if (!map)
            s = dj_error_set(DJ_ERR_NOMEM, "eval", "cannot allocate");
        for (int i = 0; map && i < n; i++) {
            const char *name = dj_index_class_name(index, i);
            map[i] = -1;
            for (int j = 0; j < dj_model_num_classes(ev.model); j++)
                if (!strcmp(dj_cli_evaluator_class(&ev, j, id, sizeof id), name) || (!ev.classes && i == j))
                    map[i] = j; /* weights without class names: ids in sorted order */
            if (map[i] < 0) {
                s = dj_error_set(DJ_ERR_INVALID, e_data, "class '%s' is not one of the checkpoint's classes", name);
                break;
            }
        }
    }
    if (s == DJ_OK)
        s = dj_evaluate(ev.model, &ev.ex, index, map, &ev.eo, &r);
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
            cJSON_AddNumberToObject(o, "views_per_video", (double)(ev.eo.clips * ev.eo.crops));
            cJSON *pc = cJSON_AddObjectToObject(o, "class_accuracy");
            cJSON *cm = cJSON_AddArrayToObject(o, "confusion");
            for (int i = 0; i < k; i++) {
                const char *name = dj_cli_evaluator_class(&ev, i, id, sizeof id);
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
                   (long long)(ev.eo.clips * ev.eo.crops));
            printf("video top-1 %.2f%%  top-5 %.2f%%\nclip  top-1 %.2f%%  top-5 %.2f%%  loss %.4f\n", 100 * r.video_top1,
                   100 * r.video_top5, 100 * r.clip_top1, 100 * r.clip_top5, r.loss);
            for (int i = 0; i < k; i++)
                printf("  %-24s %6.2f%%\n", dj_cli_evaluator_class(&ev, i, id, sizeof id), 100 * r.class_accuracy[i]);
        }
    }
    dj_eval_result_free(&r);
    free(map);
    dj_index_free(index);
    dj_cli_evaluator_close(&ev);
    return s == DJ_OK ? DJ_EXIT_OK : dj_cli_fail();
}
