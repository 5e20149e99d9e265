/* cmd_predict.c — `dojo predict CKPT VIDEO...`: the top classes of each video
 * with their probabilities (multi-view, softmax averaged per video). */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/checkpoint.h"
#include "dojo/train.h"

static const char *p_model, *p_device;
static int64_t p_top, p_clips, p_threads;
static int p_json;

static const dj_option dj_predict_options[] = {
    {"top", DJ_OPT_INT, &p_top, "K", "classes to print per video", 1, 1000},
    {"clips", DJ_OPT_INT, &p_clips, "K", "uniform clips per video (0: the recipe's)", 0, 64},
    {"model", DJ_OPT_STRING, &p_model, "NAME|FILE", "model, for weights that do not name theirs", 0, 0},
    {"threads", DJ_OPT_INT, &p_threads, "N", "compute threads (0: one per core)", 0, 1024},
    {"device", DJ_OPT_STRING, &p_device, "cpu|cuda[:N]", "where the network runs (default cpu)", 0, 0},
    {"json", DJ_OPT_FLAG, &p_json, NULL, "one JSON object per video", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_predict_spec = {
    "predict", "CKPT VIDEO... [--top K] [--json]",
    "Labels videos with a trained checkpoint. A video that cannot be read gets an\n"
    "error line; the others are still labelled, and the exit status is 1.",
    dj_predict_options, 2, -1,
};

/* The list file the index is built from: "path 0" per readable video. */
static dj_status dj_predict_list(char **videos, int n, char *list, size_t size, char *dir, size_t dsize) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, dsize, "%s/dojo-predict-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return dj_error_set(DJ_ERR_IO, dir, "cannot create a temporary folder");
    snprintf(list, size, "%s/videos.txt", dir);
    FILE *f = fopen(list, "w");
    if (!f)
        return dj_error_set(DJ_ERR_IO, list, "cannot write");
    for (int i = 0; i < n; i++) {
        char real[PATH_MAX];
        if (strchr(videos[i], ' ') || strchr(videos[i], '\n')) {
            fclose(f);
            return dj_error_set(DJ_ERR_UNSUPPORTED, videos[i], "paths with spaces are not supported yet");
        }
        fprintf(f, "%s 0\n", realpath(videos[i], real) ? real : videos[i]);
    }
    return fclose(f) == 0 ? DJ_OK : dj_error_set(DJ_ERR_IO, list, "cannot write");
}

int dj_cmd_predict(int argc, char **argv) {
    int np = 0;
    p_model = p_device = NULL;
    p_top = 5;
    p_clips = p_threads = 0;
    p_json = 0;
    int rc = dj_cli_parse(&dj_predict_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    dj_device_spec device;
    rc = dj_cli_device("predict", p_device, &device);
    if (rc >= 0)
        return rc;
    const char *ckpt = argv[1];
    char **videos = argv + 2;
    int nvideos = np - 1;
    dj_cli_evaluator ev;
    memset(&ev, 0, sizeof ev);
    if (dj_cli_evaluator_options(ckpt, &ev.eo) != DJ_OK)
        return dj_cli_fail();
    if (p_clips)
        ev.eo.clips = p_clips;
    ev.eo.workers = 1;
    char list[1200], dir[1024] = "", id[32];
    dj_index *index = NULL;
    dj_eval_result r;
    memset(&r, 0, sizeof r);
    int failed = 0;
    dj_status s = dj_cli_evaluator_open(&ev, ckpt, p_model, (int)p_threads);
    if (s == DJ_OK)
        s = dj_predict_list(videos, nvideos, list, sizeof list, dir, sizeof dir);
    if (s == DJ_OK)
        s = dj_data_open(list, NULL, &index); /* unreadable videos are reported and left out */
    if (s == DJ_OK)
        s = dj_evaluate(ev.model, &ev.ex, index, NULL, &ev.eo, &r);
    for (int v = 0; s == DJ_OK && v < nvideos; v++) {
        char real[PATH_MAX];
        const char *want = realpath(videos[v], real) ? real : videos[v];
        int64_t e = -1;
        for (int64_t i = 0; i < dj_index_count(index); i++)
            if (!strcmp(dj_index_video(index, i)->path, want))
                e = i;
        if (e < 0) {
            failed = 1;
            if (p_json)
                printf("{\"path\": \"%s\", \"error\": \"cannot be read (see the warning above)\"}\n", videos[v]);
            else
                fprintf(stderr, "dojo: error: cannot be read (%s)\n", videos[v]);
            continue;
        }
        int k = r.num_classes, top = (int)(p_top < k ? p_top : k);
        const double *p = r.video_probs + e * k;
        int *order = malloc(sizeof(int) * (size_t)k);
        if (!order) {
            s = dj_error_set(DJ_ERR_NOMEM, "predict", "cannot allocate");
            break;
        }
        for (int i = 0; i < k; i++)
            order[i] = i;
        for (int i = 0; i < top; i++) /* partial selection sort: top is small */
            for (int j = i + 1; j < k; j++)
                if (p[order[j]] > p[order[i]]) {
                    int t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
        cJSON *o = cJSON_CreateObject(), *arr = NULL;
        if (p_json) {
            cJSON_AddStringToObject(o, "path", videos[v]);
            arr = cJSON_AddArrayToObject(o, "top");
        } else {
            printf("%s\n", videos[v]);
        }
        for (int i = 0; i < top; i++) {
            const char *name = dj_cli_evaluator_class(&ev, order[i], id, sizeof id);
            if (p_json) {
                cJSON *item = cJSON_CreateObject();
                cJSON_AddStringToObject(item, "label", name);
                cJSON_AddNumberToObject(item, "probability", p[order[i]]);
                cJSON_AddItemToArray(arr, item);
            } else {
                printf("  %6.2f%%  %s\n", 100 * p[order[i]], name);
            }
        }
        if (p_json) {
            char *text = cJSON_PrintUnformatted(o);
            if (text)
                printf("%s\n", text);
            free(text);
        }
        cJSON_Delete(o);
        free(order);
    }
    dj_eval_result_free(&r);
    dj_index_free(index);
    dj_cli_evaluator_close(&ev);
    if (dir[0]) {
        unlink(list);
        rmdir(dir);
    }
    if (s != DJ_OK)
        return dj_cli_fail();
    return failed ? DJ_EXIT_FAIL : DJ_EXIT_OK;
}
