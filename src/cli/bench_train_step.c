/* bench_train_step.c — `dojo bench train-step`: the speed of one whole
 * training step of a model (zero gradients, forward in training mode,
 * backward, SGD step) on random clips, against the machine's FMA peak
 * measured in the same run.
 *
 * Figures: median milliseconds per step over --steps timed steps after
 * --warmup untimed ones; clips/s = N / step time; GFLOP/s = 3 x forward
 * FLOPs / step time, where forward FLOPs = the sum over the graph's nodes of
 * dj_graph_node_flops (2 x multiply-adds) and the factor 3 counts the
 * backward pass as twice the forward (input and weight gradients); MFU =
 * GFLOP/s / the FMA peak of the same threads; peak RSS = the process's
 * ru_maxrss. The optimizer is SGD with momentum 0.9 and weight decay 1e-4,
 * as in bench/peers/torch_train_step.py. --profile runs --steps more steps
 * with per-node timers and prints the forward and backward time of each
 * operator type and of the slowest nodes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/config.h"
#include "dojo/ops_spatial.h"
#include "dojo/cpu.h"
#include "dojo/log.h"
#include "dojo/model.h"
#include "dojo/optim.h"
#include "dojo/rng.h"
#include "dojo/threadpool.h"
#include "dojo/version.h"
#include "kernels/cpu/peak.h"

static const char *dj_bts_model, *dj_bts_input, *dj_bts_device, *dj_bts_algo;
static int64_t dj_bts_threads, dj_bts_steps, dj_bts_warmup, dj_bts_classes, dj_bts_top;
static int dj_bts_bf16, dj_bts_json, dj_bts_profile, dj_bts_compare;

static const dj_option dj_bts_options[] = {
    {"model", DJ_OPT_STRING, &dj_bts_model, "NAME", "model name (configs/models/NAME.yaml) or model file", 0, 0},
    {"input", DJ_OPT_STRING, &dj_bts_input, "NxCxTxHxW", "input shape, C = 3 (default 8x3x8x112x112)", 0, 0},
    {"threads", DJ_OPT_INT, &dj_bts_threads, "T", "compute threads (0: one per core)", 0, 1024},
    {"steps", DJ_OPT_INT, &dj_bts_steps, "S", "timed steps; the median is reported (default 5)", 1, 100000},
    {"warmup", DJ_OPT_INT, &dj_bts_warmup, "W", "untimed steps first (default 1)", 0, 100000},
    {"classes", DJ_OPT_INT, &dj_bts_classes, "K", "classes of the last layer (default: the model file's)", 0, 1000000},
    {"device", DJ_OPT_STRING, &dj_bts_device, "cpu|cuda[:N]", "where the step runs (default cpu)", 0, 0},
    {"bf16", DJ_OPT_FLAG, &dj_bts_bf16, NULL, "mixed precision: bf16 matrix products, float32 sums and weights", 0, 0},
    {"conv-algo", DJ_OPT_STRING, &dj_bts_algo, "auto|gemm|winograd",
     "how float32 conv3d computes (default auto: Winograd where it pays)", 0, 0},
    {"compare", DJ_OPT_FLAG, &dj_bts_compare, NULL,
     "also time a reference step in the same run, steps alternating: float32 with --bf16, else conv3d on the implicit "
     "GEMM",
     0, 0},
    {"json", DJ_OPT_FLAG, &dj_bts_json, NULL, "print one JSON object", 0, 0},
    {"profile", DJ_OPT_FLAG, &dj_bts_profile, NULL, "also time each operator (extra steps)", 0, 0},
    {"top", DJ_OPT_INT, &dj_bts_top, "N", "nodes listed by --profile (default 15)", 1, 100000},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_bts_spec = {
    "bench train-step",
    "--model NAME [--input NxCxTxHxW] [--threads T] [--steps S] [--warmup W] [--classes K] [--bf16] "
    "[--conv-algo A] [--json] [--compare] [--profile]",
    "Times whole training steps (zero gradients, forward, backward, SGD with\n"
    "momentum 0.9 and weight decay 1e-4) of a model on random clips and labels.\n"
    "Prints the median ms per step, clips/s (N / step time), GFLOP/s and the\n"
    "fraction of this machine's FMA peak measured in the same run (MFU), and the\n"
    "peak resident memory of the process.\n"
    "  FLOPs per step = 3 x forward FLOPs; forward FLOPs = sum over nodes of\n"
    "  2 x multiply-adds (dj_graph_node_flops); the backward pass is counted as\n"
    "  twice the forward (gradients of inputs and of weights).\n"
    "With --bf16 the matrix products of conv3d and linear take bf16 operands\n"
    "(float32 sums, float32 master weights; the same FLOP count) and MFU is\n"
    "against the bf16 dot-product peak (vdpbf16ps) measured in the same run, or\n"
    "the float32 FMA peak where the CPU converts bf16 instead. float32 conv3d\n"
    "runs Winograd where it pays (--conv-algo auto; its FLOPs are still counted\n"
    "as the direct convolution's, so MFU can pass 100%), or always the implicit\n"
    "GEMM (gemm). --compare builds a second model and alternates its steps with\n"
    "these, so that the speed-up is a ratio of medians taken under the same\n"
    "load: with --bf16 the float32 model (speedup_vs_f32), without it the same\n"
    "model on the implicit GEMM (speedup_vs_gemm).\n"
    "JSON keys: ms_per_step, clips_per_s, gflops, mfu, dtype, peak_rss_mb, model,\n"
    "input, threads, steps (and more).",
    dj_bts_options, 0, 0,
};

/* One benchmark run: the network and how it computes. */
typedef struct dj_bts {
    dj_bench_net net;
    int bf16;         /* mixed precision */
    int conv_algo;    /* dj_conv_algo */
    double fwd_flops; /* per step, forward only */
} dj_bts;

/* Medians of the timed steps, in seconds, and the machine around them. */
typedef struct dj_bts_result {
    double step, zero, forward, backward, optim;
    double peak_gflops, load_before, load_after, rss_mb, arena_mb;
    dj_graph_memory mem;  /* the plan */
    double optimizer_mb;  /* optimizer state (momentum), outside the arena */
    double peer_step; /* --compare: median step of the peer, alternating with these */
} dj_bts_result;

enum { DJ_BTS_PHASES = 5 }; /* step, zero, forward, backward, optimizer */

static double dj_bts_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1.0;
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

/* Bytes in MB (MiB, as ru_maxrss / 1024). */
static double dj_bts_mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

static dj_status dj_bts_setup(dj_bts *b) {
    DJ_TRY(dj_bench_net_setup(&b->net, "bench train-step", dj_bts_model, dj_bts_classes, (int)dj_bts_threads, b->bf16,
                              b->conv_algo, 0));
    for (int i = 0; i < dj_graph_num_nodes(b->net.g); i++)
        b->fwd_flops += dj_graph_node_flops(b->net.g, i);
    return DJ_OK;
}

static void dj_bts_teardown(dj_bts *b) { dj_bench_net_free(&b->net); }

/* One training step; t[] gets the seconds of: whole step, zero, forward,
 * backward, optimizer. The learning rate is small so that random labels
 * never blow the weights up however many steps run. */
static dj_status dj_bts_step(dj_bts *b, double t[DJ_BTS_PHASES]) {
    double t0 = dj_time_now();
    dj_graph_zero_grads(b->net.g);
    double t1 = dj_time_now();
    DJ_TRY(dj_graph_forward(b->net.g, &b->net.ex, 1));
    double t2 = dj_time_now();
    DJ_TRY(dj_graph_backward(b->net.g, &b->net.ex, dj_model_loss(b->net.model), 1.0f));
    double t3 = dj_time_now();
    DJ_TRY(dj_optimizer_step(b->net.opt, &b->net.ex, 1e-3, NULL));
    double t4 = dj_time_now();
    t[0] = t4 - t0;
    t[1] = t1 - t0;
    t[2] = t2 - t1;
    t[3] = t3 - t2;
    t[4] = t4 - t3;
    return DJ_OK;
}

/* Warm-up, then the timed steps; medians of each phase into r. With a peer
 * (--compare), its steps alternate with b's (b first on even steps, the
 * peer first on odd ones) and r->peer_step gets their median. */
static dj_status dj_bts_time(dj_bts *b, dj_bts *peer, dj_bts_result *r) {
    int64_t n = dj_bts_steps;
    double *t = malloc((size_t)(n * (DJ_BTS_PHASES + 1)) * sizeof *t), tmp[DJ_BTS_PHASES], ptmp[DJ_BTS_PHASES];
    if (!t)
        return dj_error_set(DJ_ERR_NOMEM, "bench train-step", "cannot allocate the timings");
    dj_status s = DJ_OK;
    for (int64_t i = 0; i < dj_bts_warmup && s == DJ_OK; i++) {
        s = dj_bts_step(b, tmp);
        if (s == DJ_OK && peer)
            s = dj_bts_step(peer, ptmp);
    }
    for (int64_t i = 0; i < n && s == DJ_OK; i++) {
        if (peer && i % 2)
            s = dj_bts_step(peer, ptmp);
        if (s == DJ_OK)
            s = dj_bts_step(b, tmp);
        if (s == DJ_OK && peer && i % 2 == 0)
            s = dj_bts_step(peer, ptmp);
        for (int p = 0; p < DJ_BTS_PHASES; p++)
            t[p * n + i] = tmp[p];
        t[DJ_BTS_PHASES * n + i] = peer ? ptmp[0] : 0.0;
    }
    if (s == DJ_OK) {
        r->step = dj_bench_median(t, n);
        r->zero = dj_bench_median(t + n, n);
        r->forward = dj_bench_median(t + 2 * n, n);
        r->backward = dj_bench_median(t + 3 * n, n);
        r->optim = dj_bench_median(t + 4 * n, n);
        r->peer_step = peer ? dj_bench_median(t + DJ_BTS_PHASES * n, n) : 0.0;
    }
    free(t);
    return s;
}

/* ---- --profile ---- */

/* Seconds per step of one operator type or node, and its forward FLOPs. */
typedef struct dj_bts_row {
    const char *name;
    double fwd_s, bwd_s, flops;
    int count;
} dj_bts_row;

static int dj_bts_row_cmp(const void *a, const void *b) {
    const dj_bts_row *x = a, *y = b;
    double tx = x->fwd_s + x->bwd_s, ty = y->fwd_s + y->bwd_s;
    return tx > ty ? -1 : tx < ty;
}

/* Adds node i's times (per step) to row r. */
static void dj_bts_row_add(dj_bts_row *r, dj_bts *b, int i, double per_step) {
    double f, bk;
    dj_graph_node_times(b->net.g, i, &f, &bk);
    r->fwd_s += f * per_step;
    r->bwd_s += bk * per_step;
    r->flops += dj_graph_node_flops(b->net.g, i);
    r->count++;
}

/* Runs --steps profiled steps; fills one row per node (nodes[], n_nodes)
 * and one per operator type (ops[], *n_ops), both slowest first. */
static dj_status dj_bts_collect(dj_bts *b, dj_bts_row *nodes, dj_bts_row *ops, int *n_ops) {
    double tmp[DJ_BTS_PHASES], per_step = 1.0 / (double)dj_bts_steps;
    dj_graph_set_profiling(b->net.g, 1);
    dj_status s = DJ_OK;
    for (int64_t i = 0; i < dj_bts_steps && s == DJ_OK; i++)
        s = dj_bts_step(b, tmp);
    int nn = dj_graph_num_nodes(b->net.g);
    *n_ops = 0;
    for (int i = 0; i < nn && s == DJ_OK; i++) {
        nodes[i] = (dj_bts_row){dj_graph_node_name(b->net.g, i), 0, 0, 0, 0};
        dj_bts_row_add(&nodes[i], b, i, per_step);
        const char *op = dj_graph_node_op(b->net.g, i);
        int k = 0;
        while (k < *n_ops && strcmp(ops[k].name, op) != 0)
            k++;
        if (k == *n_ops)
            ops[(*n_ops)++] = (dj_bts_row){op, 0, 0, 0, 0};
        dj_bts_row_add(&ops[k], b, i, per_step);
    }
    dj_graph_set_profiling(b->net.g, 0);
    qsort(nodes, (size_t)nn, sizeof *nodes, dj_bts_row_cmp);
    qsort(ops, (size_t)*n_ops, sizeof *ops, dj_bts_row_cmp);
    return s;
}

/* Forward GFLOP/s of a row, and backward counted as 2 x forward FLOPs. */
static double dj_bts_gf(double flops, double s) { return s > 0 && flops > 0 ? flops / s * 1e-9 : 0.0; }

static void dj_bts_row_print(const dj_bts_row *r, double total) {
    printf("  %-28s %4d %9.2f %7.1f %9.2f %7.1f %5.1f%%\n", r->name, r->count, 1e3 * r->fwd_s,
           dj_bts_gf(r->flops, r->fwd_s), 1e3 * r->bwd_s, dj_bts_gf(2 * r->flops, r->bwd_s),
           total > 0 ? 100.0 * (r->fwd_s + r->bwd_s) / total : 0.0);
}

static cJSON *dj_bts_rows_json(const dj_bts_row *rows, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", rows[i].name);
        cJSON_AddNumberToObject(o, "nodes", rows[i].count);
        cJSON_AddNumberToObject(o, "forward_ms", 1e3 * rows[i].fwd_s);
        cJSON_AddNumberToObject(o, "forward_gflops", dj_bts_gf(rows[i].flops, rows[i].fwd_s));
        cJSON_AddNumberToObject(o, "backward_ms", 1e3 * rows[i].bwd_s);
        cJSON_AddNumberToObject(o, "backward_gflops", dj_bts_gf(2 * rows[i].flops, rows[i].bwd_s));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static void dj_bts_profile_print(const dj_bts_row *nodes, int nn, const dj_bts_row *ops, int n_ops) {
    double total = 0;
    for (int i = 0; i < n_ops; i++)
        total += ops[i].fwd_s + ops[i].bwd_s;
    printf("\nprofile, ms per step (mean of %lld profiled steps); backward GFLOP/s counts 2 x forward FLOPs\n",
           (long long)dj_bts_steps);
    printf("  %-28s %4s %9s %7s %9s %7s %6s\n", "operator", "n", "fwd ms", "GFLOP/s", "bwd ms", "GFLOP/s", "share");
    for (int i = 0; i < n_ops; i++)
        dj_bts_row_print(&ops[i], total);
    printf("\n  %-28s %4s %9s %7s %9s %7s %6s\n", "slowest nodes", "", "fwd ms", "GFLOP/s", "bwd ms", "GFLOP/s",
           "share");
    for (int i = 0; i < nn && i < dj_bts_top; i++)
        dj_bts_row_print(&nodes[i], total);
}

/* --profile: prints the tables, or adds them to the JSON object o. */
static dj_status dj_bts_profile_run(dj_bts *b, cJSON *o) {
    int nn = dj_graph_num_nodes(b->net.g), n_ops = 0;
    dj_bts_row *nodes = calloc((size_t)nn + 1, sizeof *nodes), *ops = calloc((size_t)nn + 1, sizeof *ops);
    dj_status s = nodes && ops ? dj_bts_collect(b, nodes, ops, &n_ops)
                               : dj_error_set(DJ_ERR_NOMEM, "bench train-step --profile", "cannot allocate");
    if (s == DJ_OK && o) {
        cJSON *p = cJSON_AddObjectToObject(o, "profile");
        cJSON_AddItemToObject(p, "operators", dj_bts_rows_json(ops, n_ops));
        cJSON_AddItemToObject(p, "nodes", dj_bts_rows_json(nodes, nn < dj_bts_top ? nn : (int)dj_bts_top));
    } else if (s == DJ_OK) {
        dj_bts_profile_print(nodes, nn, ops, n_ops);
    }
    free(nodes);
    free(ops);
    return s;
}

/* ---- output ---- */

/* The peak MFU is measured against. */
static const char *dj_bts_peak_kind(void) {
    return dj_bts_bf16 && dj_cpu_bf16_native() ? "bf16 peak" : "fma peak";
}

static double dj_bts_gflops(const dj_bts *b, const dj_bts_result *r) { return 3.0 * b->fwd_flops / r->step * 1e-9; }

static cJSON *dj_bts_json_object(const dj_bts *b, const dj_bts_result *r) {
    cJSON *o = cJSON_CreateObject();
    double gf = dj_bts_gflops(b, r);
    cJSON_AddStringToObject(o, "model", dj_bts_model);
    cJSON_AddStringToObject(o, "input", dj_bts_input);
    cJSON_AddNumberToObject(o, "threads", b->net.threads);
    cJSON_AddNumberToObject(o, "steps", (double)dj_bts_steps);
    cJSON_AddNumberToObject(o, "warmup", (double)dj_bts_warmup);
    cJSON_AddNumberToObject(o, "ms_per_step", 1e3 * r->step);
    cJSON_AddNumberToObject(o, "clips_per_s", (double)b->net.dims[0] / r->step);
    cJSON_AddNumberToObject(o, "gflops", gf);
    cJSON_AddNumberToObject(o, "mfu", r->peak_gflops > 0 ? gf / r->peak_gflops : 0.0);
    cJSON_AddNumberToObject(o, "peak_rss_mb", r->rss_mb);
    cJSON_AddStringToObject(o, "dtype", dj_bts_bf16 ? "bf16" : "float32");
    cJSON_AddStringToObject(o, "peak_kind", dj_bts_peak_kind());
    cJSON_AddStringToObject(o, "conv_algo", dj_bts_algo);
    if (r->peer_step > 0 && dj_bts_bf16) {
        cJSON_AddNumberToObject(o, "f32_ms_per_step", 1e3 * r->peer_step);
        cJSON_AddNumberToObject(o, "speedup_vs_f32", r->peer_step / r->step);
    } else if (r->peer_step > 0) {
        cJSON_AddNumberToObject(o, "gemm_ms_per_step", 1e3 * r->peer_step);
        cJSON_AddNumberToObject(o, "speedup_vs_gemm", r->peer_step / r->step);
    }
    cJSON_AddNumberToObject(o, "peak_gflops", r->peak_gflops);
    cJSON_AddNumberToObject(o, "forward_gflop", b->fwd_flops * 1e-9);
    cJSON_AddNumberToObject(o, "zero_ms", 1e3 * r->zero);
    cJSON_AddNumberToObject(o, "forward_ms", 1e3 * r->forward);
    cJSON_AddNumberToObject(o, "backward_ms", 1e3 * r->backward);
    cJSON_AddNumberToObject(o, "optimizer_ms", 1e3 * r->optim);
    cJSON_AddNumberToObject(o, "arena_mb", r->arena_mb);
    cJSON_AddNumberToObject(o, "activations_mb", dj_bts_mib(r->mem.activations));
    cJSON_AddNumberToObject(o, "recomputed_mb", dj_bts_mib(r->mem.recomputed));
    cJSON_AddNumberToObject(o, "parameters_mb", dj_bts_mib(r->mem.params));
    cJSON_AddNumberToObject(o, "scratch_mb", dj_bts_mib(r->mem.scratch));
    cJSON_AddNumberToObject(o, "optimizer_mb", r->optimizer_mb);
    cJSON_AddNumberToObject(o, "loadavg_before", r->load_before);
    cJSON_AddNumberToObject(o, "loadavg_after", r->load_after);
    cJSON_AddStringToObject(o, "isa", dj_cpu_isa_name(dj_cpu_best_isa()));
    const dj_cpu_features *f = dj_cpu_detect();
    cJSON_AddStringToObject(o, "cpu", f->brand[0] ? f->brand : f->vendor);
    cJSON_AddStringToObject(o, "dojo_version", dj_build()->version);
    return o;
}

static void dj_bts_text(const dj_bts *b, const dj_bts_result *r) {
    double gf = dj_bts_gflops(b, r);
    printf("train-step %s %s, %d thread%s, %s kernels, %s, conv3d %s, median of %lld steps after %lld warm-up\n",
           dj_bts_model, dj_bts_input, b->net.threads, b->net.threads == 1 ? "" : "s", dj_cpu_isa_name(dj_cpu_best_isa()),
           dj_bts_bf16 ? (dj_cpu_bf16_native() ? "bf16 mixed precision (avx512_bf16)" : "bf16 mixed precision (converted)")
                       : "float32",
           dj_bts_algo, (long long)dj_bts_steps, (long long)dj_bts_warmup);
    printf("  load average %.2f before, %.2f after (other work lowers the figures)\n", r->load_before, r->load_after);
    printf("  ms/step      %10.2f  (zero %.2f, forward %.2f, backward %.2f, optimizer %.2f)\n", 1e3 * r->step,
           1e3 * r->zero, 1e3 * r->forward, 1e3 * r->backward, 1e3 * r->optim);
    printf("  clips/s      %10.3f\n", (double)b->net.dims[0] / r->step);
    printf("  GFLOP/s      %10.2f  (3 x %.3f GFLOP forward per step)\n", gf, b->fwd_flops * 1e-9);
    printf("  %-12s %10.2f GFLOP/s  -> %.1f%% of peak (MFU)\n", dj_bts_peak_kind(), r->peak_gflops,
           r->peak_gflops > 0 ? 100.0 * gf / r->peak_gflops : 0.0);
    printf("  peak RSS     %10.1f MB  (graph arena %.1f MB)\n", r->rss_mb, r->arena_mb);
    const dj_graph_memory *m = &r->mem;
    printf("  planned      arena: parameters %.1f, gradients %.1f, inputs %.1f, activations %.1f MB (%.1f MB of\n"
           "               them recomputed for the backward pass instead of kept); besides: scratch %.1f,\n"
           "               optimizer %.1f MB; the rest of the RSS is the process\n",
           dj_bts_mib(m->params), dj_bts_mib(m->grads), dj_bts_mib(m->inputs + m->buffers),
           dj_bts_mib(m->activations), dj_bts_mib(m->recomputed), dj_bts_mib(m->scratch), r->optimizer_mb);
    if (r->peer_step > 0 && dj_bts_bf16)
        printf("  float32 step %10.2f ms, alternating in this run -> bf16 %.2fx faster\n", 1e3 * r->peer_step,
               r->peer_step / r->step);
    else if (r->peer_step > 0)
        printf("  GEMM step    %10.2f ms (conv3d on the implicit GEMM), alternating in this run -> %.2fx faster\n",
               1e3 * r->peer_step, r->peer_step / r->step);
}

/* Times the steps between two peak measurements (the better one is kept:
 * other work on the machine lowers a measurement, never raises it). */
static dj_status dj_bts_measure(dj_bts *b, dj_bts *peer, dj_bts_result *r) {
    dj_cpu_isa isa = dj_cpu_best_isa();
    r->load_before = dj_bench_loadavg();
    double p0 = dj_cpu_peak_gflops(b->net.pool, isa, dj_bts_bf16);
    DJ_TRY(dj_bts_time(b, peer, r));
    double p1 = dj_cpu_peak_gflops(b->net.pool, isa, dj_bts_bf16);
    r->peak_gflops = p0 > p1 ? p0 : p1;
    r->load_after = dj_bench_loadavg();
    DJ_TRY(dj_graph_memory_report(b->net.g, &r->mem));
    r->arena_mb = (double)r->mem.total / (1024.0 * 1024.0);
    r->optimizer_mb = (double)dj_optimizer_bytes(b->net.opt) / (1024.0 * 1024.0);
    return DJ_OK;
}

static dj_status dj_bts_report(dj_bts *b, const dj_bts_result *r) {
    if (!dj_bts_json) {
        dj_bts_text(b, r);
        return dj_bts_profile ? dj_bts_profile_run(b, NULL) : DJ_OK;
    }
    cJSON *o = dj_bts_json_object(b, r);
    dj_status s = dj_bts_profile ? dj_bts_profile_run(b, o) : DJ_OK;
    char *text = s == DJ_OK ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (s == DJ_OK && !text)
        s = dj_error_set(DJ_ERR_NOMEM, "bench train-step --json", "cannot print");
    if (text)
        printf("%s\n", text);
    free(text);
    return s;
}

static void dj_bts_defaults(void) {
    dj_bts_model = NULL;
    dj_bts_input = "8x3x8x112x112";
    dj_bts_threads = 0;
    dj_bts_steps = 5;
    dj_bts_warmup = 1;
    dj_bts_classes = 0;
    dj_bts_top = 15;
    dj_bts_bf16 = dj_bts_json = dj_bts_profile = dj_bts_compare = 0;
    dj_bts_device = NULL;
    dj_bts_algo = "auto";
}

int dj_bench_train_step(int argc, char **argv) {
    int np = 0;
    dj_bts_defaults();
    int rc = dj_cli_parse(&dj_bts_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    dj_bts b = {0};
    if (!dj_bts_model)
        return dj_cli_usage_error("bench train-step", "--model NAME is required");
    if (dj_bench_parse_input(dj_bts_input, b.net.dims) != 0)
        return dj_cli_usage_error("bench train-step",
                                  "--input '%s' is not NxCxTxHxW with five positive numbers and C = 3",
                                  dj_bts_input);
    dj_device_spec device;
    rc = dj_cli_device("bench train-step", dj_bts_device, &device);
    if (rc >= 0)
        return rc;
    int algo = dj_conv_algo_from_name(dj_bts_algo);
    if (algo < 0)
        return dj_cli_usage_error("bench train-step", "--conv-algo must be auto, gemm or winograd, not '%s'",
                                  dj_bts_algo);
    if (dj_bts_compare && !dj_bts_bf16 && algo == DJ_CONV_GEMM)
        return dj_cli_usage_error("bench train-step", "--compare without --bf16 compares with --conv-algo gemm itself");
    dj_bts_result r = {0};
    dj_bts peer = b;
    b.bf16 = dj_bts_bf16;
    b.conv_algo = algo;
    peer.conv_algo = dj_bts_bf16 ? algo : DJ_CONV_GEMM; /* the reference --compare times */
    dj_status s = dj_bts_setup(&b);
    if (s == DJ_OK && dj_bts_compare)
        s = dj_bts_setup(&peer);
    if (s == DJ_OK)
        s = dj_bts_measure(&b, dj_bts_compare ? &peer : NULL, &r);
    r.rss_mb = dj_bts_rss_mb();
    if (s == DJ_OK)
        s = dj_bts_report(&b, &r);
    dj_bts_teardown(&b);
    if (dj_bts_compare)
        dj_bts_teardown(&peer);
    return s == DJ_OK ? DJ_EXIT_OK : dj_cli_fail();
}
