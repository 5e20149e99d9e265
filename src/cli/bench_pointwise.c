/* bench_pointwise.c — `dojo bench pointwise`: GB/s of the point-wise and
 * sequence operators, forward and backward, on realistic video shapes (an
 * (8,64,8,56,56) activation, TimeSformer-like attention over T=8 and S=196
 * tokens with D=192, 3 heads, batch 8), against a plain memcpy of the same
 * bytes measured in the same run (one thread, and split over the pool).
 * Attention also reports GFLOP/s. Prints figures; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "dojo/dojo.h"
#include "dojo/ops_pointwise.h"

static int64_t bp_threads = 0;
static int64_t bp_reps = 3;
static int bp_json;
static int bp_small;
static const char *bp_only;

static const dj_option bp_options[] = {
    {"threads", DJ_OPT_INT, &bp_threads, "T", "compute threads (0: one per core)", 0, 4096},
    {"reps", DJ_OPT_INT, &bp_reps, "N", "timed repetitions per operator (the best is kept)", 1, 1000},
    {"json", DJ_OPT_FLAG, &bp_json, NULL, "print one JSON object", 0, 0},
    {"small", DJ_OPT_FLAG, &bp_small, NULL, "batch and frame size halved (a quick smoke run)", 0, 0},
    {"op", DJ_OPT_STRING, &bp_only, "NAME", "only this operator (e.g. gelu, attention_space)", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec bp_spec = {
    "bench pointwise", "[--threads T] [--reps N] [--json] [--small] [--op NAME]",
    "Measures activations, softmax, dropout, broadcasting add/mul, bias+activation,\n"
    "residual add+ReLU, permute, concat, attention over time and space, and the\n"
    "losses, forward and backward; GB/s counts every byte read or written once.\n"
    "The memcpy line is the bandwidth of copying the activation in the same run.",
    bp_options, 0, 0,
};

/* Shapes and buffers of one run. */
enum { BP_NBUF = 7 };
typedef struct bp_ctx {
    dj_exec ex;
    int64_t act[5];            /* (N,C,T,H,W) activation */
    int64_t n;                 /* its numel */
    float *buf[BP_NBUF];       /* each n floats */
    float *probs;              /* attention probabilities */
    int64_t probs_n;
    int64_t attn[4];           /* (B,T,S,D) */
    int64_t ce[2];             /* (N,K) */
    int64_t *labels;
    int64_t mse[3];            /* (B,L,P) */
} bp_ctx;

static dj_tensor bp_view(float *p, int nd, const int64_t *s) {
    dj_tensor t;
    dj_tensor_view(DJ_DTYPE_F32, nd, s, p, &t);
    return t;
}

static double bp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One measured operator: fn(ctx, backward) runs it once. */
typedef dj_status (*bp_fn)(bp_ctx *c, int backward);

typedef struct bp_case {
    const char *name;
    bp_fn fn;
    /* bytes moved forward / backward, flops forward / backward (0: n/a) */
    double (*bytes)(const bp_ctx *c, int backward);
    double (*flops)(const bp_ctx *c, int backward);
} bp_case;

/* ---- the operators, with their byte counts -------------------------------------- */

#define ACT_CASE(NAME, ACT)                                                                 \
    static dj_status bp_##NAME(bp_ctx *c, int bw) {                                        \
        dj_tensor x = bp_view(c->buf[0], 5, c->act), y = bp_view(c->buf[1], 5, c->act);    \
        dj_tensor dy = bp_view(c->buf[2], 5, c->act), dx = bp_view(c->buf[3], 5, c->act);  \
        return bw ? dj_act_backward(&c->ex, ACT, &x, &dy, &dx) : dj_act_forward(&c->ex, ACT, &x, &y); \
    }
ACT_CASE(relu, DJ_ACT_RELU)
ACT_CASE(gelu, DJ_ACT_GELU)
ACT_CASE(gelu_tanh, DJ_ACT_GELU_TANH)
ACT_CASE(silu, DJ_ACT_SILU)
ACT_CASE(sigmoid, DJ_ACT_SIGMOID)

/* forward: read 1 write 1; backward: read 2, read+write 1 */
static double bp_bytes_unary(const bp_ctx *c, int bw) { return (bw ? 4.0 : 2.0) * 4.0 * (double)c->n; }
/* forward: read 2 write 1; backward: read 1 (dout), read+write 2 */
static double bp_bytes_binary(const bp_ctx *c, int bw) { return (bw ? 5.0 : 3.0) * 4.0 * (double)c->n; }
/* a per-channel operand: forward read 1 write 1; backward read 1, read+write 1 */
static double bp_bytes_bcast(const bp_ctx *c, int bw) { return (bw ? 3.0 : 2.0) * 4.0 * (double)c->n; }

static dj_status bp_add(bp_ctx *c, int bw) {
    dj_tensor a = bp_view(c->buf[0], 5, c->act), b = bp_view(c->buf[1], 5, c->act), o = bp_view(c->buf[2], 5, c->act);
    dj_tensor da = bp_view(c->buf[3], 5, c->act), db = bp_view(c->buf[4], 5, c->act);
    return bw ? dj_add_backward(&c->ex, &a, &b, &o, &da, &db) : dj_add_forward(&c->ex, &a, &b, &o);
}

static dj_status bp_mul(bp_ctx *c, int bw) {
    dj_tensor a = bp_view(c->buf[0], 5, c->act), b = bp_view(c->buf[1], 5, c->act), o = bp_view(c->buf[2], 5, c->act);
    dj_tensor da = bp_view(c->buf[3], 5, c->act), db = bp_view(c->buf[4], 5, c->act);
    return bw ? dj_mul_backward(&c->ex, &a, &b, &o, &da, &db) : dj_mul_forward(&c->ex, &a, &b, &o);
}
static double bp_bytes_mul(const bp_ctx *c, int bw) { return (bw ? 7.0 : 3.0) * 4.0 * (double)c->n; }

/* x (N,C,T,H,W) + b (C,1,1,1): the broadcast add; backward reduces db */
static dj_status bp_add_bcast(bp_ctx *c, int bw) {
    int64_t bs[4] = {c->act[1], 1, 1, 1};
    dj_tensor a = bp_view(c->buf[0], 5, c->act), b = bp_view(c->buf[5], 4, bs), o = bp_view(c->buf[2], 5, c->act);
    dj_tensor da = bp_view(c->buf[3], 5, c->act), db = bp_view(c->buf[6], 4, bs);
    return bw ? dj_add_backward(&c->ex, &a, &b, &o, &da, &db) : dj_add_forward(&c->ex, &a, &b, &o);
}

static dj_status bp_scale(bp_ctx *c, int bw) {
    dj_tensor x = bp_view(c->buf[0], 5, c->act), y = bp_view(c->buf[1], 5, c->act);
    dj_tensor dx = bp_view(c->buf[3], 5, c->act);
    return bw ? dj_scale_backward(&c->ex, 0.5f, &x, &dx) : dj_scale_forward(&c->ex, 0.5f, &x, &y);
}
static double bp_bytes_scale(const bp_ctx *c, int bw) { return (bw ? 3.0 : 2.0) * 4.0 * (double)c->n; }

#define BIAS_CASE(NAME, ACT)                                                                         \
    static dj_status bp_##NAME(bp_ctx *c, int bw) {                                                 \
        int64_t bs[1] = {c->act[1]};                                                                 \
        dj_tensor x = bp_view(c->buf[0], 5, c->act), y = bp_view(c->buf[1], 5, c->act);             \
        dj_tensor dy = bp_view(c->buf[2], 5, c->act), dx = bp_view(c->buf[3], 5, c->act);           \
        dj_tensor b = bp_view(c->buf[5], 1, bs), db = bp_view(c->buf[6], 1, bs);                     \
        return bw ? dj_bias_act_backward(&c->ex, ACT, &x, &b, &dy, &dx, &db)                          \
                  : dj_bias_act_forward(&c->ex, ACT, &x, &b, &y);                                    \
    }
BIAS_CASE(bias_relu, DJ_ACT_RELU)
BIAS_CASE(bias_gelu, DJ_ACT_GELU)

static dj_status bp_add_relu(bp_ctx *c, int bw) {
    dj_tensor x = bp_view(c->buf[0], 5, c->act), r = bp_view(c->buf[1], 5, c->act), y = bp_view(c->buf[2], 5, c->act);
    dj_tensor dy = bp_view(c->buf[3], 5, c->act), dx = bp_view(c->buf[4], 5, c->act);
    dj_tensor dr = bp_view(c->buf[5], 5, c->act);
    return bw ? dj_add_relu_backward(&c->ex, &y, &dy, &dx, &dr) : dj_add_relu_forward(&c->ex, &x, &r, &y);
}

static dj_status bp_dropout(bp_ctx *c, int bw) {
    dj_dropout_params p = {0.1f, 1, 7, 1};
    dj_tensor x = bp_view(c->buf[0], 5, c->act), y = bp_view(c->buf[1], 5, c->act);
    dj_tensor dx = bp_view(c->buf[3], 5, c->act);
    return bw ? dj_dropout_backward(&c->ex, &p, &x, &dx) : dj_dropout_forward(&c->ex, &p, &x, &y);
}

/* rows of 196 (attention over space) */
static dj_status bp_softmax(bp_ctx *c, int bw) {
    int64_t s[2] = {c->n / 196, 196};
    dj_tensor x = bp_view(c->buf[0], 2, s), y = bp_view(c->buf[1], 2, s);
    dj_tensor dy = bp_view(c->buf[2], 2, s), dx = bp_view(c->buf[3], 2, s);
    return bw ? dj_softmax_backward(&c->ex, &y, &dy, &dx) : dj_softmax_forward(&c->ex, &x, &y);
}

/* (N,C,T,H,W) -> (N,T,H,W,C), the way into tokens */
static dj_status bp_permute(bp_ctx *c, int bw) {
    int perm[5] = {0, 2, 3, 4, 1};
    int64_t ts[5] = {c->act[0], c->act[2], c->act[3], c->act[4], c->act[1]};
    dj_tensor x = bp_view(c->buf[0], 5, c->act), y = bp_view(c->buf[1], 5, ts);
    dj_tensor dy = bp_view(c->buf[2], 5, ts), dx = bp_view(c->buf[3], 5, c->act);
    return bw ? dj_permute_backward(&c->ex, perm, &dy, &dx) : dj_permute_forward(&c->ex, perm, &x, &y);
}
static double bp_bytes_permute(const bp_ctx *c, int bw) { return (bw ? 3.0 : 2.0) * 4.0 * (double)c->n; }

/* two halves of the channels -> the activation */
static dj_status bp_concat(bp_ctx *c, int bw) {
    int64_t hs[5] = {c->act[0], c->act[1] / 2, c->act[2], c->act[3], c->act[4]};
    dj_tensor a = bp_view(c->buf[0], 5, hs), b = bp_view(c->buf[1], 5, hs), o = bp_view(c->buf[2], 5, c->act);
    dj_tensor da = bp_view(c->buf[3], 5, hs), db = bp_view(c->buf[4], 5, hs);
    const dj_tensor *in[2] = {&a, &b};
    dj_tensor *din[2] = {&da, &db};
    return bw ? dj_concat_backward(&c->ex, 1, 2, &o, din) : dj_concat_forward(&c->ex, 1, 2, in, &o);
}
static double bp_bytes_concat(const bp_ctx *c, int bw) { return (bw ? 3.0 : 2.0) * 4.0 * (double)c->n; }

static dj_status bp_attn(bp_ctx *c, int bw, dj_attn_axis axis) {
    dj_attention_params p = {3, axis, 0};
    dj_tensor q = bp_view(c->buf[0], 4, c->attn), k = bp_view(c->buf[1], 4, c->attn), v = bp_view(c->buf[2], 4, c->attn);
    dj_tensor o = bp_view(c->buf[3], 4, c->attn), dq = bp_view(c->buf[4], 4, c->attn);
    dj_tensor dk = bp_view(c->buf[5], 4, c->attn), dv = bp_view(c->buf[6], 4, c->attn);
    int64_t pn = dj_attention_probs_numel(&p, c->attn);
    dj_tensor pr = bp_view(c->probs, 1, &pn);
    return bw ? dj_attention_backward(&c->ex, &p, &q, &k, &v, &pr, &o, &dq, &dk, &dv)
              : dj_attention_forward(&c->ex, &p, &q, &k, &v, &pr, &o);
}
static dj_status bp_attn_time(bp_ctx *c, int bw) { return bp_attn(c, bw, DJ_ATTN_TIME); }
static dj_status bp_attn_space(bp_ctx *c, int bw) { return bp_attn(c, bw, DJ_ATTN_SPACE); }

static double bp_attn_L(const bp_ctx *c, int time) { return (double)(time ? c->attn[1] : c->attn[2]); }
static double bp_attn_numel(const bp_ctx *c) { return (double)(c->attn[0] * c->attn[1] * c->attn[2] * c->attn[3]); }
/* forward: q,k,v read, out written, probs written; backward: q,k,v,probs,dout read, dq,dk,dv read+written */
static double bp_attn_bytes(const bp_ctx *c, int bw, int time) {
    double pn = bp_attn_numel(c) / (double)c->attn[3] * 3 * bp_attn_L(c, time);
    return 4.0 * (bw ? 10 * bp_attn_numel(c) + pn : 4 * bp_attn_numel(c) + pn);
}
static double bp_bytes_attn_time(const bp_ctx *c, int bw) { return bp_attn_bytes(c, bw, 1); }
static double bp_bytes_attn_space(const bp_ctx *c, int bw) { return bp_attn_bytes(c, bw, 0); }
/* Q K^T and P V: 2 matmuls of 2*L*L*hd per (sequence, head); backward 4 */
static double bp_attn_flops(const bp_ctx *c, int bw, int time) {
    return (bw ? 4.0 : 2.0) * 2.0 * bp_attn_numel(c) * bp_attn_L(c, time);
}
static double bp_flops_attn_time(const bp_ctx *c, int bw) { return bp_attn_flops(c, bw, 1); }
static double bp_flops_attn_space(const bp_ctx *c, int bw) { return bp_attn_flops(c, bw, 0); }

static dj_status bp_ce(bp_ctx *c, int bw) {
    dj_cross_entropy_params p = {0.1f};
    dj_tensor x = bp_view(c->buf[0], 2, c->ce), dx = bp_view(c->buf[3], 2, c->ce), lab;
    dj_tensor_view(DJ_DTYPE_I64, 1, c->ce, c->labels, &lab);
    float loss;
    return bw ? dj_cross_entropy_backward(&c->ex, &p, &x, &lab, 1.0f, &dx)
              : dj_cross_entropy_forward(&c->ex, &p, &x, &lab, &loss);
}
static double bp_bytes_ce(const bp_ctx *c, int bw) { return (bw ? 3.0 : 1.0) * 4.0 * (double)(c->ce[0] * c->ce[1]); }

/* VideoMAE: per-token mask over (B, L, patch pixels) */
static dj_status bp_mse(bp_ctx *c, int bw) {
    dj_tensor p = bp_view(c->buf[0], 3, c->mse), t = bp_view(c->buf[1], 3, c->mse), m = bp_view(c->buf[2], 2, c->mse);
    dj_tensor dp = bp_view(c->buf[3], 3, c->mse);
    float loss;
    return bw ? dj_mse_backward(&c->ex, &p, &t, &m, 1.0f, &dp, NULL) : dj_mse_forward(&c->ex, &p, &t, &m, &loss);
}
static double bp_bytes_mse(const bp_ctx *c, int bw) {
    return (bw ? 4.0 : 2.0) * 4.0 * (double)(c->mse[0] * c->mse[1] * c->mse[2]);
}

static const bp_case bp_cases[] = {
    {"relu", bp_relu, bp_bytes_unary, NULL},
    {"gelu", bp_gelu, bp_bytes_unary, NULL},
    {"gelu_tanh", bp_gelu_tanh, bp_bytes_unary, NULL},
    {"silu", bp_silu, bp_bytes_unary, NULL},
    {"sigmoid", bp_sigmoid, bp_bytes_unary, NULL},
    {"add", bp_add, bp_bytes_binary, NULL},
    {"add_bcast_channel", bp_add_bcast, bp_bytes_bcast, NULL},
    {"mul", bp_mul, bp_bytes_mul, NULL},
    {"scale", bp_scale, bp_bytes_scale, NULL},
    {"bias_relu", bp_bias_relu, bp_bytes_unary, NULL},
    {"bias_gelu", bp_bias_gelu, bp_bytes_unary, NULL},
    {"add_relu", bp_add_relu, bp_bytes_binary, NULL},
    {"dropout", bp_dropout, bp_bytes_scale, NULL},
    {"softmax_196", bp_softmax, bp_bytes_unary, NULL},
    {"permute_to_tokens", bp_permute, bp_bytes_permute, NULL},
    {"concat_channels", bp_concat, bp_bytes_concat, NULL},
    {"attention_time", bp_attn_time, bp_bytes_attn_time, bp_flops_attn_time},
    {"attention_space", bp_attn_space, bp_bytes_attn_space, bp_flops_attn_space},
    {"cross_entropy", bp_ce, bp_bytes_ce, NULL},
    {"mse_token_mask", bp_mse, bp_bytes_mse, NULL},
};

/* ---- timing ------------------------------------------------------------------------- */

/* Best of reps runs after one warm-up; negative on failure. */
static double bp_time(bp_ctx *c, bp_fn fn, int bw) {
    if (fn(c, bw) != DJ_OK)
        return -1;
    double best = 1e30;
    for (int64_t r = 0; r < bp_reps; r++) {
        double t0 = bp_now();
        if (fn(c, bw) != DJ_OK)
            return -1;
        double t = bp_now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

typedef struct bp_copy_job {
    const float *src;
    float *dst;
} bp_copy_job;

static void bp_copy_range(void *arg, int64_t b, int64_t e, int thread) {
    const bp_copy_job *j = arg;
    (void)thread;
    memcpy(j->dst + b, j->src + b, (size_t)(e - b) * sizeof(float));
}

static dj_status bp_memcpy1(bp_ctx *c, int bw) {
    (void)bw;
    memcpy(c->buf[1], c->buf[0], (size_t)c->n * sizeof(float));
    return DJ_OK;
}

static dj_status bp_memcpy_pool(bp_ctx *c, int bw) {
    bp_copy_job j = {c->buf[0], c->buf[1]};
    (void)bw;
    dj_parallel_for(c->ex.pool, c->n, 1 << 16, bp_copy_range, &j);
    return DJ_OK;
}

/* ---- set-up ---------------------------------------------------------------------------- */

static void bp_fill(float *p, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; i++)
        p[i] = 2.0f * dj_hash_float(seed, 0, (uint64_t)i) - 1.0f;
}

static void bp_ctx_free(bp_ctx *c) {
    for (int i = 0; i < BP_NBUF; i++)
        free(c->buf[i]);
    free(c->probs);
    free(c->labels);
    free(c->ex.scratch);
    dj_threadpool_free(c->ex.pool);
}

static dj_status bp_ctx_init(bp_ctx *c) {
    memset(c, 0, sizeof *c);
    int64_t div = bp_small ? 2 : 1;
    int64_t act[5] = {8 / div, 64, 8, 56 / div, 56 / div}, attn[4] = {8 / div, 8, 196, 192};
    int64_t ce[2] = {64, 400}, mse[3] = {8 / div, 1024, 1536};
    memcpy(c->act, act, sizeof act);
    memcpy(c->attn, attn, sizeof attn);
    memcpy(c->ce, ce, sizeof ce);
    memcpy(c->mse, mse, sizeof mse);
    c->n = act[0] * act[1] * act[2] * act[3] * act[4];
    int64_t need = c->n;
    need = need > attn[0] * attn[1] * attn[2] * attn[3] ? need : attn[0] * attn[1] * attn[2] * attn[3];
    need = need > mse[0] * mse[1] * mse[2] ? need : mse[0] * mse[1] * mse[2];
    DJ_TRY(dj_threadpool_create((int)bp_threads, &c->ex.pool));
    dj_attention_params ps = {3, DJ_ATTN_SPACE, 0};
    c->probs_n = dj_attention_probs_numel(&ps, attn);
    size_t scratch = dj_attention_scratch_bytes(&ps, attn, dj_threadpool_size(c->ex.pool));
    c->ex.scratch = aligned_alloc(64, (scratch + 63) / 64 * 64);
    c->ex.scratch_bytes = scratch;
    c->probs = aligned_alloc(64, (size_t)c->probs_n * sizeof(float));
    c->labels = calloc((size_t)ce[0], sizeof(int64_t));
    int ok = c->ex.scratch && c->probs && c->labels;
    for (int i = 0; i < BP_NBUF; i++) {
        c->buf[i] = aligned_alloc(64, (size_t)need * sizeof(float));
        ok = ok && c->buf[i];
        if (c->buf[i])
            bp_fill(c->buf[i], need, (uint64_t)i + 1);
    }
    if (!ok)
        return dj_error_set(DJ_ERR_NOMEM, "bench pointwise", "cannot allocate the benchmark buffers");
    for (int64_t i = 0; i < ce[0]; i++)
        c->labels[i] = i % ce[1];
    return DJ_OK;
}

/* ---- reporting ---------------------------------------------------------------------------- */

static void bp_report(cJSON *ops, const char *name, double tf, double tb, double bf, double bb, double ff,
                      double fb, double copy_gbs) {
    double gf = bf / tf * 1e-9, gb = bb / tb * 1e-9;
    if (ops) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "op", name);
        cJSON_AddNumberToObject(o, "fwd_ms", tf * 1e3);
        cJSON_AddNumberToObject(o, "fwd_gbs", gf);
        cJSON_AddNumberToObject(o, "bwd_ms", tb * 1e3);
        cJSON_AddNumberToObject(o, "bwd_gbs", gb);
        cJSON_AddNumberToObject(o, "fwd_vs_memcpy", gf / copy_gbs);
        cJSON_AddNumberToObject(o, "bwd_vs_memcpy", gb / copy_gbs);
        if (ff > 0) {
            cJSON_AddNumberToObject(o, "fwd_gflops", ff / tf * 1e-9);
            cJSON_AddNumberToObject(o, "bwd_gflops", fb / tb * 1e-9);
        }
        cJSON_AddItemToArray(ops, o);
        return;
    }
    printf("%-20s %9.3f %8.2f %5.2fx  %9.3f %8.2f %5.2fx", name, tf * 1e3, gf, gf / copy_gbs, tb * 1e3, gb,
           gb / copy_gbs);
    if (ff > 0)
        printf("  %7.2f %7.2f", ff / tf * 1e-9, fb / tb * 1e-9);
    printf("\n");
}

int dj_bench_pointwise(int argc, char **argv) {
    int np = 0;
    bp_threads = 0, bp_reps = 3, bp_json = 0, bp_small = 0, bp_only = NULL;
    int rc = dj_cli_parse(&bp_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    int known = !bp_only;
    for (size_t i = 0; i < sizeof bp_cases / sizeof bp_cases[0] && !known; i++)
        known = strcmp(bp_cases[i].name, bp_only) == 0;
    if (!known)
        return dj_cli_usage_error("bench pointwise", "unknown operator '%s' for --op", bp_only);
    bp_ctx c;
    if (bp_ctx_init(&c) != DJ_OK) {
        bp_ctx_free(&c);
        return dj_cli_fail();
    }
    int threads = dj_threadpool_size(c.ex.pool);
    double bytes = 2.0 * 4.0 * (double)c.n; /* read + write */
    double t1 = bp_time(&c, bp_memcpy1, 0), tp = bp_time(&c, bp_memcpy_pool, 0);
    double copy1 = bytes / t1 * 1e-9, copyp = bytes / tp * 1e-9;
    cJSON *root = NULL, *ops = NULL;
    if (bp_json) {
        root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "threads", threads);
        cJSON_AddNumberToObject(root, "reps", (double)bp_reps);
        char s[96];
        cJSON_AddStringToObject(root, "activation", dj_shape_string(5, c.act, s, sizeof s));
        cJSON_AddStringToObject(root, "attention", dj_shape_string(4, c.attn, s, sizeof s));
        cJSON_AddNumberToObject(root, "memcpy_1thread_gbs", copy1);
        cJSON_AddNumberToObject(root, "memcpy_pool_gbs", copyp);
        ops = cJSON_AddArrayToObject(root, "ops");
    } else {
        char s1[96], s2[96];
        printf("dojo bench pointwise: %d threads, best of %lld, activation %s, attention (B,T,S,D) %s, 3 heads\n",
               threads, (long long)bp_reps, dj_shape_string(5, c.act, s1, sizeof s1),
               dj_shape_string(4, c.attn, s2, sizeof s2));
        printf("memcpy of the activation (%.1f MB): %.2f GB/s on 1 thread, %.2f GB/s on the pool (read+write)\n",
               (double)c.n * 4e-6, copy1, copyp);
        printf("%-20s %9s %8s %6s  %9s %8s %6s  %7s %7s\n", "operator", "fwd ms", "GB/s", "/copy", "bwd ms", "GB/s",
               "/copy", "GF fwd", "GF bwd");
    }
    int failed = 0;
    for (size_t i = 0; i < sizeof bp_cases / sizeof bp_cases[0] && !failed; i++) {
        const bp_case *k = &bp_cases[i];
        if (bp_only && strcmp(k->name, bp_only) != 0)
            continue;
        double tf = bp_time(&c, k->fn, 0), tb = bp_time(&c, k->fn, 1);
        if (tf < 0 || tb < 0) {
            dj_error_prefix("%s", k->name);
            failed = 1;
            break;
        }
        bp_report(ops, k->name, tf, tb, k->bytes(&c, 0), k->bytes(&c, 1), k->flops ? k->flops(&c, 0) : 0,
                  k->flops ? k->flops(&c, 1) : 0, copyp);
    }
    bp_ctx_free(&c);
    if (root) {
        if (!failed) {
            char *text = cJSON_PrintUnformatted(root);
            if (text)
                printf("%s\n", text);
            free(text);
        }
        cJSON_Delete(root);
    }
    return failed ? dj_cli_fail() : DJ_EXIT_OK;
}
