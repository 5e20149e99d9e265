/* evaluator.c — what `dojo eval` and `dojo predict` share: the evaluation
 * geometry a checkpoint was trained with, the model built for it with its
 * weights loaded, the compute threads and their scratch, the class names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

dj_status dj_cli_evaluator_options(const char *ckpt, dj_eval_options *eo) {
    dj_checkpoint_state st;
    memset(&st, 0, sizeof st);
    dj_status s = dj_checkpoint_peek(ckpt, &st);
    if (s == DJ_OK)
        s = dj_eval_options_from_checkpoint(&st, eo);
    dj_checkpoint_state_free(&st);
    return s;
}

dj_status dj_cli_evaluator_open(dj_cli_evaluator *e, const char *ckpt, const char *model, int threads) {
    DJ_TRY(dj_model_from_checkpoint(ckpt, model, e->eo.batch, e->eo.frames, e->eo.size, threads, &e->model, &e->st));
    e->classes = e->st.classes_json ? cJSON_Parse(e->st.classes_json) : NULL;
    DJ_TRY(dj_threadpool_create(threads, &e->pool));
    size_t bytes = dj_graph_scratch_bytes(dj_model_graph(e->model));
    if (bytes && !(e->scratch = malloc(bytes)))
        return dj_error_set(DJ_ERR_NOMEM, ckpt, "cannot allocate %zu bytes of scratch", bytes);
    e->ex = (dj_exec){e->pool, e->scratch, bytes};
    return DJ_OK;
}

void dj_cli_evaluator_close(dj_cli_evaluator *e) {
    cJSON_Delete(e->classes);
    free(e->scratch);
    dj_threadpool_free(e->pool);
    dj_model_free(e->model);
    dj_checkpoint_state_free(&e->st);
    memset(e, 0, sizeof *e);
}

const char *dj_cli_evaluator_class(const dj_cli_evaluator *e, int i, char *buf, size_t size) {
    const cJSON *c = e->classes ? cJSON_GetArrayItem(e->classes, i) : NULL;
    if (c && cJSON_IsString(c))
        return c->valuestring;
    snprintf(buf, size, "%d", i);
    return buf;
}
