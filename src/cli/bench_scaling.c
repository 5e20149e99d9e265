/* bench_scaling.c — `dojo bench scaling`: data-parallel scaling of whole
 * training steps under mpirun, one rank against all ranks in the same run.
 *
 * Every rank builds the model for the per-rank --input (weak scaling: the
 * global batch is ranks x N) on random clips, rank 0's weights broadcast.
 * Rounds alternate two kinds of step, so that a machine whose load drifts
 * affects both alike:
 *   solo  rank 0 runs a plain step (zero, forward, backward, SGD) alone; the
 *         other ranks wait sleeping (they poll a non-blocking barrier every
 *         millisecond, leaving their cores free)
 *   all   every rank runs the data-parallel step: the bucketed reducer starts
 *         all-reduces during backward, then waits, then SGD
 * Figures: median seconds per step of each kind (for "all", the slowest
 * rank's), clips/s = N / solo step and ranks x N / all step, and scaling
 * efficiency = all clips/s / (ranks x solo clips/s). The "all" step is also
 * split into compute (zero + forward + backward) and the wait for gradients
 * after backward (median over rounds of rank 0's). Alone it times solo steps
 * only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/config.h"
#include "dojo/ops_spatial.h"
#include "dojo/dist.h"
#include "dojo/log.h"
#include "dojo/model.h"
#include "dojo/optim.h"
#include "dojo/rng.h"
#include "dojo/threadpool.h"

static const char *dj_bs_model, *dj_bs_input;
static int64_t dj_bs_threads, dj_bs_rounds, dj_bs_warmup;
static double dj_bs_bucket_mb;
static int dj_bs_json;

static const dj_option dj_bs_options[] = {
    {"model", DJ_OPT_STRING, &dj_bs_model, "NAME", "model name or model file (default r3d_18)", 0, 0},
    {"input", DJ_OPT_STRING, &dj_bs_input, "NxCxTxHxW", "per-rank input, C = 3 (default 1x3x8x112x112)", 0, 0},
    {"threads", DJ_OPT_INT, &dj_bs_threads, "T", "compute threads per rank (default 1)", 1, 1024},
    {"rounds", DJ_OPT_INT, &dj_bs_rounds, "R", "timed rounds (one solo and one all-ranks step each; default 5)", 1,
     100000},
    {"warmup", DJ_OPT_INT, &dj_bs_warmup, "W", "untimed rounds first (default 1)", 0, 100000},
    {"bucket-mb", DJ_OPT_DOUBLE, &dj_bs_bucket_mb, "MB", "gradient bucket size (default 25)", 0.001, 4096},
    {"json", DJ_OPT_FLAG, &dj_bs_json, NULL, "print one JSON object", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_bs_spec = {
    "bench scaling", "[--model NAME] [--input NxCxTxHxW] [--threads T] [--rounds R] [--warmup W] [--json]",
    "Under mpirun, times whole training steps of a model (random clips, SGD)\n"
    "run by rank 0 alone and by all ranks with the bucketed gradient all-reduce,\n"
    "alternating, and prints the medians, clips/s and the scaling efficiency:\n"
    "  efficiency = (all-rank clips/s) / (ranks x one-rank clips/s)\n"
    "Each rank takes --input (weak scaling). Run it as\n"
    "  mpirun -np 2 dojo bench scaling --model r3d_18 --threads 1",
    dj_bs_options, 0, 0,
};

typedef struct dj_bs {
    dj_bench_net net;
    dj_comm *comm;
    dj_grad_reducer *reducer;
} dj_bs;

/* Random clips and labels differ on every rank (the rank is the stream). */
static dj_status dj_bs_setup(dj_bs *b) {
    DJ_TRY(dj_bench_net_setup(&b->net, "bench scaling", dj_bs_model, 0, (int)dj_bs_threads, 0, DJ_CONV_AUTO,
                              (uint64_t)dj_comm_rank(b->comm)));
    DJ_TRY(dj_comm_broadcast_graph(b->comm, b->net.g));
    if (dj_comm_size(b->comm) > 1)
        DJ_TRY(dj_grad_reducer_create(b->comm, b->net.g, (size_t)(dj_bs_bucket_mb * 1e6), &b->reducer));
    return DJ_OK;
}

static void dj_bs_teardown(dj_bs *b) {
    dj_grad_reducer_free(b->reducer);
    dj_bench_net_free(&b->net);
}

/* One step; with the reducer, gradients are averaged over the ranks.
 * *compute: zero + forward + backward seconds; *wait: finish's. The small
 * learning rate keeps random labels from blowing the weights up. */
static dj_status dj_bs_step(dj_bs *b, int reduce, double *compute, double *wait) {
    double t0 = dj_time_now();
    dj_graph_zero_grads(b->net.g);
    DJ_TRY(dj_graph_forward(b->net.g, &b->net.ex, 1));
    if (reduce)
        DJ_TRY(dj_grad_reducer_begin(b->reducer));
    DJ_TRY(dj_graph_backward(b->net.g, &b->net.ex, dj_model_loss(b->net.model), 1.0f));
    double t1 = dj_time_now();
    if (reduce)
        DJ_TRY(dj_grad_reducer_finish(b->reducer));
    double t2 = dj_time_now();
    DJ_TRY(dj_optimizer_step(b->net.opt, &b->net.ex, 1e-4, NULL));
    *compute = t1 - t0;
    *wait = t2 - t1;
    return DJ_OK;
}

/* A barrier that sleeps while it waits, so that idle ranks leave the cores
 * to rank 0's solo step. */
static dj_status dj_bs_sleepy_barrier(dj_comm *c) {
    float token = 0;
    dj_comm_request *req = NULL;
    DJ_TRY(dj_comm_iallreduce_f32(c, &token, 1, DJ_REDUCE_SUM, &req));
    for (;;) {
        int done = 0;
        DJ_TRY(dj_comm_test(req, &done));
        if (done)
            return DJ_OK;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* *v becomes the largest of the ranks' values (each rank fills its slot of
 * a zeroed vector; the sum gathers them). */
static dj_status dj_bs_slowest(dj_comm *c, double *v) {
    const int n = dj_comm_size(c);
    double *all = calloc((size_t)n, sizeof *all);
    if (!all)
        return dj_error_set(DJ_ERR_NOMEM, "bench scaling", "cannot allocate");
    all[dj_comm_rank(c)] = *v;
    dj_status s = dj_comm_allreduce_f64(c, all, (size_t)n, DJ_REDUCE_SUM);
    for (int k = 0; k < n; k++)
        *v = all[k] > *v ? all[k] : *v;
    free(all);
    return s;
}

typedef struct dj_bs_result {
    double solo, all, compute, wait; /* medians, seconds */
} dj_bs_result;

/* Warm-up and timed rounds; medians into res (rank 0's view). */
static dj_status dj_bs_run(dj_bs *b, dj_bs_result *res) {
    const int64_t R = dj_bs_rounds;
    const int multi = dj_comm_size(b->comm) > 1;
    double *t = calloc((size_t)(4 * R), sizeof *t); /* solo, all, compute, wait */
    if (!t)
        return dj_error_set(DJ_ERR_NOMEM, "bench scaling", "cannot allocate the timings");
    dj_status s = DJ_OK;
    for (int64_t i = -dj_bs_warmup; i < R && s == DJ_OK; i++) {
        double compute = 0, wait = 0, solo = 0, all = 0;
        s = dj_bs_sleepy_barrier(b->comm);
        if (s == DJ_OK && dj_comm_rank(b->comm) == 0) {
            double t0 = dj_time_now();
            s = dj_bs_step(b, 0, &compute, &wait);
            solo = dj_time_now() - t0;
        }
        if (s == DJ_OK)
            s = dj_bs_sleepy_barrier(b->comm);
        if (s == DJ_OK && multi) {
            double t0 = dj_time_now();
            s = dj_bs_step(b, 1, &compute, &wait);
            all = dj_time_now() - t0;
            if (s == DJ_OK)
                s = dj_bs_slowest(b->comm, &all); /* the job's step: its slowest rank */
        }
        if (i >= 0) {
            t[i] = solo;
            t[R + i] = all;
            t[2 * R + i] = compute;
            t[3 * R + i] = wait;
        }
    }
    if (s == DJ_OK) {
        res->solo = dj_bench_median(t, R);
        res->all = dj_bench_median(t + R, R);
        res->compute = dj_bench_median(t + 2 * R, R);
        res->wait = dj_bench_median(t + 3 * R, R);
    }
    free(t);
    return s;
}

static void dj_bs_print(const dj_bs *b, const dj_bs_result *r, int ranks, double load0, double load1) {
    const double n = (double)b->net.dims[0];
    size_t grad_bytes = 0;
    for (int k = 0; b->reducer && k < dj_grad_reducer_num_buckets(b->reducer); k++)
        grad_bytes += dj_grad_reducer_bucket_bytes(b->reducer, k);
    const double solo_rate = n / r->solo, all_rate = ranks * n / r->all;
    if (dj_bs_json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", dj_bs_model);
        cJSON_AddStringToObject(o, "input", dj_bs_input);
        cJSON_AddNumberToObject(o, "ranks", ranks);
        cJSON_AddNumberToObject(o, "threads", (double)dj_bs_threads);
        cJSON_AddNumberToObject(o, "rounds", (double)dj_bs_rounds);
        cJSON_AddNumberToObject(o, "parameters", (double)dj_model_num_params(b->net.model));
        cJSON_AddNumberToObject(o, "solo_s", r->solo);
        cJSON_AddNumberToObject(o, "solo_clips_per_s", solo_rate);
        if (ranks > 1) {
            cJSON_AddNumberToObject(o, "all_s", r->all);
            cJSON_AddNumberToObject(o, "all_clips_per_s", all_rate);
            cJSON_AddNumberToObject(o, "compute_s", r->compute);
            cJSON_AddNumberToObject(o, "gradient_wait_s", r->wait);
            cJSON_AddNumberToObject(o, "gradient_bytes", (double)grad_bytes);
            cJSON_AddNumberToObject(o, "efficiency", all_rate / (ranks * solo_rate));
        }
        cJSON_AddNumberToObject(o, "loadavg_start", load0);
        cJSON_AddNumberToObject(o, "loadavg_end", load1);
        char *text = cJSON_PrintUnformatted(o);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(o);
        return;
    }
    printf("scaling of %s training steps, %s clips per rank, %lld thread(s) per rank, %lld parameters, median of "
           "%lld rounds:\n",
           dj_bs_model, dj_bs_input, (long long)dj_bs_threads, (long long)dj_model_num_params(b->net.model),
           (long long)dj_bs_rounds);
    printf("  1 rank    %9.1f ms/step  %7.3f clips/s\n", 1e3 * r->solo, solo_rate);
    if (ranks > 1) {
        printf("  %d ranks   %9.1f ms/step  %7.3f clips/s  (compute %.1f ms, gradient wait %.1f ms; %.1f MB in %d "
               "buckets)\n",
               ranks, 1e3 * r->all, all_rate, 1e3 * r->compute, 1e3 * r->wait, (double)grad_bytes / 1e6,
               dj_grad_reducer_num_buckets(b->reducer));
        printf("  scaling efficiency %.3f = %.3f / (%d x %.3f)\n", all_rate / (ranks * solo_rate), all_rate, ranks,
               solo_rate);
    } else {
        printf("  1 rank only: run it under mpirun -np N to measure scaling\n");
    }
    printf("  load average %.2f at the start, %.2f at the end\n", load0, load1);
}

int dj_bench_scaling(int argc, char **argv) {
    dj_bs_model = "r3d_18";
    dj_bs_input = "1x3x8x112x112";
    dj_bs_threads = 1;
    dj_bs_rounds = 5;
    dj_bs_warmup = 1;
    dj_bs_bucket_mb = 25;
    dj_bs_json = 0;
    int npos = 0;
    int rc = dj_cli_parse(&dj_bs_spec, argc, argv, &npos);
    if (rc >= 0)
        return rc;
    dj_bs b;
    memset(&b, 0, sizeof b);
    if (dj_bench_parse_input(dj_bs_input, b.net.dims) != 0)
        return dj_cli_usage_error("bench scaling", "--input '%s' is not NxCxTxHxW with C = 3", dj_bs_input);
    if (dj_comm_create(DJ_COMM_AUTO, &b.comm) != DJ_OK)
        return dj_cli_fail();
    const double load0 = dj_bench_loadavg();
    dj_bs_result res = {0, 0, 0, 0};
    dj_status s = dj_bs_setup(&b);
    if (s == DJ_OK)
        s = dj_bs_run(&b, &res);
    if (s != DJ_OK) {
        int code = dj_cli_fail();
        dj_bs_teardown(&b);
        dj_comm_free(b.comm);
        return code;
    }
    if (dj_comm_rank(b.comm) == 0)
        dj_bs_print(&b, &res, dj_comm_size(b.comm), load0, dj_bench_loadavg());
    dj_bs_teardown(&b);
    dj_comm_free(b.comm);
    return DJ_EXIT_OK;
}
