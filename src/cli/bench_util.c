/* bench_util.c — pieces the `dojo bench` kinds share: the machine's load
 * average (printed beside each figure, since other work on a shared machine
 * lowers it), medians of timings, the NxCxTxHxW input shape, and a network
 * set up for timing training steps (bench train-step and bench scaling). */
#include <stdio.h>
#include <stdlib.h>

#include "dojo/rng.h"

#include "cli.h"

double dj_bench_loadavg(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double l = -1.0;
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1.0;
        fclose(f);
    }
    return l;
}

int dj_bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double dj_bench_median(double *v, int64_t n) {
    qsort(v, (size_t)n, sizeof *v, dj_bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int dj_bench_parse_input(const char *text, int64_t dims[5]) {
    const char *p = text;
    for (int i = 0; i < 5; i++) {
        char *end = NULL;
        long long v = strtoll(p, &end, 10);
        if (end == p || v <= 0 || v > 1000000 || (i < 4 && *end != 'x') || (i == 4 && *end != '\0'))
            return -1;
        dims[i] = v;
        p = end + 1;
    }
    return dims[1] == 3 ? 0 : -1;
}

dj_status dj_bench_net_setup(dj_bench_net *b, const char *who, const char *model, int64_t classes, int threads,
                             int bf16, int conv_algo, uint64_t stream) {
    DJ_TRY(dj_threadpool_create(threads, &b->pool));
    b->threads = dj_threadpool_size(b->pool);
    char path[4096];
    dj_config *cfg = NULL;
    DJ_TRY(dj_model_find(model, path, sizeof path));
    DJ_TRY(dj_config_load(path, &cfg));
    dj_model_shape shape = {b->dims[0], b->dims[2], b->dims[3], b->dims[4], classes, 0.0f, b->threads};
    dj_status s = dj_model_create(cfg, &shape, &b->model);
    dj_config_free(cfg);
    DJ_TRY(s);
    b->g = dj_model_graph(b->model);
    dj_graph_set_bf16(b->g, bf16);
    dj_graph_set_conv_algo(b->g, conv_algo);
    DJ_TRY(dj_graph_plan(b->g, 1));
    DJ_TRY(dj_model_init(b->model, 1));
    dj_rng r;
    dj_rng_seed(&r, 2, stream);
    dj_tensor *x = dj_graph_tensor(b->g, dj_model_input(b->model));
    float *xd = x->data;
    for (int64_t i = 0, n = dj_tensor_numel(x); i < n; i++)
        xd[i] = (float)dj_rng_normal(&r);
    int64_t *yd = dj_graph_tensor(b->g, dj_model_labels(b->model))->data;
    for (int64_t i = 0; i < b->dims[0]; i++)
        yd[i] = (int64_t)dj_rng_below(&r, (uint64_t)dj_model_num_classes(b->model));
    dj_optim_config oc = dj_optim_defaults(DJ_OPTIM_SGD);
    oc.momentum = 0.9;
    oc.weight_decay = 1e-4;
    DJ_TRY(dj_optimizer_create(b->g, &oc, &b->opt));
    size_t bytes = dj_graph_scratch_bytes(b->g);
    b->scratch = bytes ? malloc(bytes) : NULL;
    if (bytes && !b->scratch)
        return dj_error_set(DJ_ERR_NOMEM, who, "cannot allocate %zu bytes of scratch", bytes);
    b->ex = (dj_exec){b->pool, b->scratch, bytes};
    return DJ_OK;
}

void dj_bench_net_free(dj_bench_net *b) {
    dj_optimizer_free(b->opt);
    dj_model_free(b->model);
    free(b->scratch);
    dj_threadpool_free(b->pool);
}
