/* spatial_cases.h — the table of spatial operator cases shared by
 * test_gradcheck_spatial.c (finite differences on the double references) and
 * test_ops_spatial.c (fast float32 operators against the references, thread
 * counts, errors). In the style of ggml's test-backend-ops: one row per case
 * with the operator, shapes, parameters, tolerance and finite-difference
 * step; every operator kind must have rows (test_every_op_has_cases).
 *
 * Each case has up to three differentiable inputs, slot 0 the input x,
 * slot 1 the weight, slot 2 the bias, and one output. sp_forward and
 * sp_backward run a case through the double references (dtype F64) or the
 * fast operators (F32) behind one interface. */
#ifndef DOJO_TEST_SPATIAL_CASES_H
#define DOJO_TEST_SPATIAL_CASES_H

#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"

typedef enum sp_op {
    SP_CONV3D,
    SP_LINEAR,
    SP_BN_TRAIN,
    SP_BN_EVAL,
    SP_LAYERNORM,
    SP_GROUPNORM,
    SP_MAXPOOL,
    SP_AVGPOOL,
    SP_ADAPTIVE_AVGPOOL,
    SP_PATCH_EMBED,
    SP_OP_COUNT,
} sp_op;

static const char *const sp_op_names[SP_OP_COUNT] = {
    "conv3d", "linear", "batchnorm_train", "batchnorm_eval", "layernorm",
    "groupnorm", "maxpool3d", "avgpool3d", "adaptive_avgpool3d", "patch_embed",
};

typedef struct sp_case {
    const char *name;
    sp_op op;
    int xdim;
    int64_t x[5];    /* input shape */
    int wdim;        /* 0: no weight */
    int64_t w[5];    /* weight shape (norms: the affine parameter shape) */
    int bias;        /* 1: a bias of the weight's first dim (norms: like the weight) */
    dj_conv3d_params conv;
    dj_pool3d_params pool;
    int64_t out3[3]; /* adaptive pool output size */
    int groups;      /* group norm */
    int norm_dims;   /* layer norm */
    double rtol;     /* fast float32 vs double reference */
    double fd_step;  /* 0: too big for the finite-difference check */
    double fd_rtol;
} sp_case;

#define SP_CONV(nm, X, W, B, ...) \
    {nm, SP_CONV3D, 5, X, 5, W, B, __VA_ARGS__, {{0}, {0}, {0}, {0}, 0, 0}, {0}, 0, 0, 1e-4, 1e-6, 1e-6}
/* conv3d is linear in each input: finite differences have no truncation
 * error, so a large step keeps the rounding of a large loss small */
#define SP_WCONV(nm, X, W, B, ...) \
    {nm, SP_CONV3D, 5, X, 5, W, B, __VA_ARGS__, {{0}, {0}, {0}, {0}, 0, 0}, {0}, 0, 0, 1e-4, 1e-3, 1e-6}
#define SP_POOL(nm, op, X, ...) \
    {nm, op, 5, X, 0, {0}, 0, {{0}, {0}, {0}, 0, 0}, __VA_ARGS__, {0}, 0, 0, 1e-5, 1e-6, 1e-6}
#define SP_SHAPE(...) {__VA_ARGS__}
#define SP_NOCONV {{0}, {0}, {0}, 0, 0}
#define SP_NOPOOL {{0}, {0}, {0}, {0}, 0, 0}
#define SP_CP(...) ((dj_conv3d_params){__VA_ARGS__})

static const sp_case sp_cases[] = {
    /* conv3d: kernels 1 / 3 / (3,1,1) / (1,3,3) / 7x7 stem, strides, padding, dilation, groups */
    SP_CONV("conv 1x1x1 pointwise", SP_SHAPE(2, 5, 3, 4, 5), SP_SHAPE(6, 5, 1, 1, 1), 1, {{0}, {0}, {0}, 0, 0}),
    SP_CONV("conv 1x1x1 stride 2 (downsample)", SP_SHAPE(2, 4, 5, 7, 6), SP_SHAPE(6, 4, 1, 1, 1), 0,
            {{2, 2, 2}, {0}, {0}, 0, 0}),
    SP_CONV("conv 3x3x3 pad 1", SP_SHAPE(2, 3, 4, 5, 6), SP_SHAPE(4, 3, 3, 3, 3), 1, {{0}, {1, 1, 1}, {0}, 0, 0}),
    SP_CONV("conv 3x3x3 stride 2 odd", SP_SHAPE(1, 3, 5, 7, 9), SP_SHAPE(5, 3, 3, 3, 3), 1,
            {{2, 2, 2}, {1, 1, 1}, {0}, 0, 0}),
    SP_CONV("conv 3x3x3 no pad", SP_SHAPE(2, 2, 5, 5, 5), SP_SHAPE(3, 2, 3, 3, 3), 0, {{0}, {0}, {0}, 0, 0}),
    SP_CONV("conv (3,1,1) temporal", SP_SHAPE(2, 4, 5, 3, 4), SP_SHAPE(3, 4, 3, 1, 1), 1, {{0}, {1, 0, 0}, {0}, 0, 0}),
    SP_CONV("conv (1,3,3) spatial s(1,2,2)", SP_SHAPE(1, 3, 3, 8, 7), SP_SHAPE(4, 3, 1, 3, 3), 1,
            {{1, 2, 2}, {0, 1, 1}, {0}, 0, 0}),
    SP_CONV("conv 7x7 stem (3,7,7) s(1,2,2) p(1,3,3)", SP_SHAPE(1, 3, 3, 13, 12), SP_SHAPE(4, 3, 3, 7, 7), 0,
            {{1, 2, 2}, {1, 3, 3}, {0}, 0, 0}),
    /* output rows of 19 and 40: the AVX-512 stride-2 gathers, whole vectors and tails */
    SP_CONV("conv 7x7 stem s(1,2,2) wide rows (GEMM, vector gathers)", SP_SHAPE(1, 3, 2, 9, 80),
            SP_SHAPE(5, 3, 3, 7, 7), 0, {{1, 2, 2}, {1, 3, 3}, {0}, 0, DJ_CONV_GEMM}),
    /* few input channels, rows of 16+ outputs: the direct path (AVX-512),
     * stride 2 and 1 along W, row tails, 8-channel blocks and their tail */
    SP_WCONV("conv 7x7 stem s(1,2,2) 3->11 W=40 (direct path)", SP_SHAPE(2, 3, 3, 9, 80), SP_SHAPE(11, 3, 3, 7, 7), 1,
            {{1, 2, 2}, {1, 3, 3}, {0}, 0, 0}),
    SP_WCONV("conv (1,5,5) 2->9 W=37 stride 1 (direct path)", SP_SHAPE(1, 2, 2, 6, 37), SP_SHAPE(9, 2, 1, 5, 5), 1,
            {{0}, {0, 2, 2}, {0}, 0, 0}),
    SP_CONV("conv 3x3x3 s2 W=38 (vector gathers, tail)", SP_SHAPE(2, 4, 3, 5, 38), SP_SHAPE(3, 4, 3, 3, 3), 1,
            {{2, 2, 2}, {1, 1, 1}, {0}, 0, 0}),
    SP_CONV("conv (1,7,7) r2plus1d stem", SP_SHAPE(1, 3, 2, 11, 11), SP_SHAPE(3, 3, 1, 7, 7), 1,
            {{1, 2, 2}, {0, 3, 3}, {0}, 0, 0}),
    SP_CONV("conv dilation 2", SP_SHAPE(1, 2, 6, 7, 8), SP_SHAPE(3, 2, 3, 3, 3), 1, {{0}, {2, 2, 2}, {2, 2, 2}, 0, 0}),
    SP_CONV("conv dilation (1,2,3) stride (2,1,2)", SP_SHAPE(2, 2, 5, 7, 9), SP_SHAPE(2, 2, 2, 3, 2), 1,
            {{2, 1, 2}, {0, 1, 2}, {1, 2, 3}, 0, 0}),
    SP_CONV("conv groups 2", SP_SHAPE(2, 4, 3, 5, 5), SP_SHAPE(6, 2, 3, 3, 3), 1, {{0}, {1, 1, 1}, {0}, 2, 0}),
    SP_CONV("conv groups 2 pointwise", SP_SHAPE(2, 4, 3, 4, 5), SP_SHAPE(6, 2, 1, 1, 1), 1, {{0}, {0}, {0}, 2, 0}),
    SP_CONV("conv depthwise 3x3x3", SP_SHAPE(2, 4, 4, 5, 6), SP_SHAPE(4, 1, 3, 3, 3), 1, {{0}, {1, 1, 1}, {0}, 4, 0}),
    SP_CONV("conv depthwise x2 stride 2 dil 2", SP_SHAPE(1, 3, 5, 7, 8), SP_SHAPE(6, 1, 3, 3, 3), 1,
            {{2, 2, 2}, {2, 1, 2}, {2, 1, 2}, 3, 0}),
    SP_CONV("conv conv2d as T=1", SP_SHAPE(2, 3, 1, 6, 7), SP_SHAPE(4, 3, 1, 3, 3), 1, {{0}, {0, 1, 1}, {0}, 0, 0}),
    SP_CONV("conv conv1d as T=H=1", SP_SHAPE(2, 3, 1, 1, 11), SP_SHAPE(4, 3, 1, 1, 5), 1, {{0, 0, 2}, {0, 0, 2}, {0}, 0, 0}),
    SP_CONV("conv kernel 2 stride 3 pad 2", SP_SHAPE(1, 2, 4, 7, 8), SP_SHAPE(3, 2, 2, 2, 2), 1,
            {{3, 3, 3}, {2, 2, 2}, {0}, 0, 0}),
    SP_CONV("conv pointwise on 1x1x1", SP_SHAPE(3, 4, 1, 1, 1), SP_SHAPE(5, 4, 1, 1, 1), 1, {{0}, {0}, {0}, 0, 0}),
    SP_CONV("conv groups 2 stride 2 dil 2", SP_SHAPE(2, 4, 5, 6, 7), SP_SHAPE(4, 2, 3, 3, 3), 1,
            {{2, 2, 2}, {2, 2, 2}, {2, 2, 2}, 2, 0}),
    /* stride 1, padding <= dilation*(kernel-1), Cout_g <= Cin_g: the input
     * gradient is a convolution (implicit GEMM); otherwise (larger padding,
     * or more output channels as in "conv 3x3x3 pad 1") col2vol */
    SP_CONV("conv 3x3x3 16->8 (8-row tiles, implicit input gradient)", SP_SHAPE(1, 16, 3, 5, 6),
            SP_SHAPE(8, 16, 3, 3, 3), 1, {{0}, {1, 1, 1}, {0}, 0, 0}),
    SP_CONV("conv dilation 2 pad (1,0,2)", SP_SHAPE(1, 3, 6, 7, 8), SP_SHAPE(2, 3, 3, 3, 3), 1,
            {{0}, {1, 0, 2}, {2, 2, 2}, 0, 0}),
    /* few positions, several samples: one forward GEMM over the batch, its
     * output (Cout*N*P = 384 floats) larger than the column block (K*P = 64) */
    SP_CONV("conv (1,2,2) s(1,2,2) 2->16 N=3 (batched forward)", SP_SHAPE(3, 2, 2, 4, 4), SP_SHAPE(16, 2, 1, 2, 2), 1,
            {{1, 2, 2}, {0}, {0}, 0, 0}),
    /* dead taps (only padding under them for every output): the GEMM paths
     * run the live block of the kernel and add its gradient back */
    SP_CONV("conv (3,1,1) on T=1 (dead taps: a pointwise conv)", SP_SHAPE(2, 6, 1, 4, 5), SP_SHAPE(5, 6, 3, 1, 1), 1,
            {{0}, {1, 0, 0}, {0}, 0, 0}),
    SP_CONV("conv 3x3x3 s2 into T=1, 2 live taps of 3 (full kernel)", SP_SHAPE(2, 4, 2, 5, 6),
            SP_SHAPE(3, 4, 3, 3, 3), 1, {{2, 2, 2}, {1, 1, 1}, {0}, 0, 0}),
    SP_CONV("conv 3x3x3 s2 on T=1 (middle tap live)", SP_SHAPE(2, 4, 1, 5, 6), SP_SHAPE(3, 4, 3, 3, 3), 1,
            {{2, 2, 2}, {1, 1, 1}, {0}, 0, 0}),
    SP_CONV("conv 3x3x3 on H=1 (dead taps on H only)", SP_SHAPE(1, 3, 3, 1, 4), SP_SHAPE(4, 3, 3, 3, 3), 1,
            {{0}, {1, 1, 1}, {0}, 0, 0}),
    SP_CONV("conv 3x3x3 on H=2 W=1 (dead taps on H and W)", SP_SHAPE(2, 3, 4, 2, 1), SP_SHAPE(4, 3, 3, 3, 3), 1,
            {{0}, {1, 2, 1}, {0}, 0, 0}),
    SP_CONV("conv dilation 2 pad 2 on T=2 (dead taps both ends)", SP_SHAPE(1, 2, 2, 5, 5), SP_SHAPE(3, 2, 3, 3, 3), 1,
            {{0}, {2, 1, 1}, {2, 1, 1}, 0, 0}),
    SP_CONV("conv groups 2 on T=1 pad 1 (dead taps per group)", SP_SHAPE(2, 4, 1, 3, 3), SP_SHAPE(6, 2, 3, 3, 3), 1,
            {{0}, {1, 1, 1}, {0}, 2, 0}),
    SP_CONV("conv pad 3 > kernel 3 (col2vol input gradient)", SP_SHAPE(1, 2, 3, 4, 5), SP_SHAPE(3, 2, 3, 3, 3), 1,
            {{0}, {3, 0, 2}, {0}, 0, 0}),
    {"conv (3,1,1) 72->64 (8-row tiles, several panels)", SP_CONV3D, 5, {2, 72, 6, 5, 13}, 5, {64, 72, 3, 1, 1}, 1,
     {{0}, {1, 0, 0}, {0}, 0, 0}, {{0}, {0}, {0}, {0}, 0, 0}, {0}, 0, 0, 1e-4, 0, 0},
    {"conv 3x3x3 40->40 groups 2 stride 1 (implicit input gradient per group)", SP_CONV3D, 5, {2, 40, 3, 9, 11}, 5,
     {40, 20, 3, 3, 3}, 1, {{0}, {1, 1, 1}, {0}, 2, 0}, {{0}, {0}, {0}, {0}, 0, 0}, {0}, 0, 0, 1e-4, 0, 0},
    /* several column blocks (K = 64*27 = 1728 > budget / P): no finite differences, too big */
    {"conv 3x3x3 64->8 several vol2col blocks", SP_CONV3D, 5, {1, 64, 3, 24, 24}, 5, {8, 64, 3, 3, 3}, 1,
     {{0}, {1, 1, 1}, {0}, 0, 0}, {{0}, {0}, {0}, {0}, 0, 0}, {0}, 0, 0, 1e-4, 0, 0},
    /* Winograd: DJ_CONV_WINOGRAD forces it on small shapes (AUTO takes it
     * from 16 channels on where it saves 1.8x the products); F(4,3) on axes
     * of 7+ outputs, F(2,3) on shorter ones, 1-tap axes as they are */
    SP_WCONV("winograd 3x3x3 pad 1 F(4,3) on every axis", SP_SHAPE(1, 5, 8, 8, 9), SP_SHAPE(7, 5, 3, 3, 3), 1,
            {{0}, {1, 1, 1}, {0}, 0, DJ_CONV_WINOGRAD}),
    SP_WCONV("winograd 3x3x3 no pad (F(2,3) on short axes)", SP_SHAPE(2, 3, 4, 5, 9), SP_SHAPE(4, 3, 3, 3, 3), 1,
            {{0}, {0}, {0}, 0, DJ_CONV_WINOGRAD}),
    SP_WCONV("winograd 3x3x3 pad 2", SP_SHAPE(1, 2, 3, 4, 5), SP_SHAPE(3, 2, 3, 3, 3), 0,
            {{0}, {2, 2, 2}, {0}, 0, DJ_CONV_WINOGRAD}),
    SP_WCONV("winograd pads (0,1,2)", SP_SHAPE(1, 3, 4, 6, 5), SP_SHAPE(2, 3, 3, 3, 3), 1,
            {{0}, {0, 1, 2}, {0}, 0, DJ_CONV_WINOGRAD}),
    SP_WCONV("winograd (1,3,3) pad (0,1,1)", SP_SHAPE(2, 4, 3, 9, 10), SP_SHAPE(6, 4, 1, 3, 3), 1,
            {{0}, {0, 1, 1}, {0}, 0, DJ_CONV_WINOGRAD}),
    SP_WCONV("winograd (3,1,1) pad (1,0,0)", SP_SHAPE(2, 4, 7, 3, 5), SP_SHAPE(5, 4, 3, 1, 1), 0,
            {{0}, {1, 0, 0}, {0}, 0, DJ_CONV_WINOGRAD}),
    SP_WCONV("winograd 3x3x3 T=1 pad 1 (trimmed to the middle tap)", SP_SHAPE(2, 6, 1, 7, 7), SP_SHAPE(5, 6, 3, 3, 3),
            1, {{0}, {1, 1, 1}, {0}, 0, DJ_CONV_WINOGRAD}),
    {"winograd 3x3x3 40->24 (channel tails, several blocks)", SP_CONV3D, 5, {2, 40, 4, 13, 30}, 5, {24, 40, 3, 3, 3},
     1, {{0}, {1, 1, 1}, {0}, 0, DJ_CONV_WINOGRAD}, {{0}, {0}, {0}, {0}, 0, 0}, {0}, 0, 0, 1e-4, 0, 0},
    {"conv 3x3x3 32->48 (AUTO takes Winograd)", SP_CONV3D, 5, {2, 32, 4, 16, 16}, 5, {48, 32, 3, 3, 3}, 0,
     {{0}, {1, 1, 1}, {0}, 0, 0}, {{0}, {0}, {0}, {0}, 0, 0}, {0}, 0, 0, 1e-4, 0, 0},

    /* linear */
    {"linear (2,3,5)x(4,5)", SP_LINEAR, 3, {2, 3, 5}, 2, {4, 5}, 1, SP_NOCONV, SP_NOPOOL, {0}, 0, 0, 1e-4, 1e-6, 1e-6},
    {"linear (2,3,11)x(130,11) (bias columns in chunks)", SP_LINEAR, 3, {2, 3, 11}, 2, {130, 11}, 1, SP_NOCONV,
     SP_NOPOOL, {0}, 0, 0, 1e-4, 1e-6, 1e-6},
    {"linear (7,9)x(3,9) no bias", SP_LINEAR, 2, {7, 9}, 2, {3, 9}, 0, SP_NOCONV, SP_NOPOOL, {0}, 0, 0, 1e-4, 1e-6, 1e-6},

    /* batch norm (training through batch statistics; eval with running stats) */
    {"batchnorm train 5-D", SP_BN_TRAIN, 5, {3, 4, 2, 3, 3}, 1, {4}, 1, SP_NOCONV, SP_NOPOOL, {0}, 0, 0, 1e-4, 1e-6, 1e-5},
    {"batchnorm train 2-D no affine", SP_BN_TRAIN, 2, {6, 3}, 0, {0}, 0, SP_NOCONV, SP_NOPOOL, {0}, 0, 0, 1e-4, 1e-6, 1e-5},
    {"batchnorm eval 5-D", SP_BN_EVAL, 5, {2, 3, 2, 3, 4}, 1, {3}, 1, SP_NOCONV, SP_NOPOOL, {0}, 0, 0, 1e-4, 1e-6, 1e-6},

    /* layer norm over the last dims */
    {"layernorm last dim", SP_LAYERNORM, 3, {2, 3, 7}, 1, {7}, 1, SP_NOCONV, SP_NOPOOL, {0}, 0, 1, 1e-4, 1e-6, 1e-5},
    {"layernorm last 2 dims", SP_LAYERNORM, 3, {3, 4, 5}, 2, {4, 5}, 1, SP_NOCONV, SP_NOPOOL, {0}, 0, 2, 1e-4, 1e-6, 1e-5},

    {"layernorm D=130 (several column chunks)", SP_LAYERNORM, 2, {5, 130}, 1, {130}, 1, SP_NOCONV, SP_NOPOOL, {0}, 0,
     1, 1e-4, 1e-6, 1e-5},
    {"layernorm last 3 dims no affine", SP_LAYERNORM, 4, {2, 2, 3, 4}, 0, {0}, 0, SP_NOCONV, SP_NOPOOL, {0}, 0, 3,
     1e-4, 1e-6, 1e-5},

    /* group norm */
    {"groupnorm G=2", SP_GROUPNORM, 5, {2, 4, 2, 3, 3}, 1, {4}, 1, SP_NOCONV, SP_NOPOOL, {0}, 2, 0, 1e-4, 1e-6, 1e-5},
    {"groupnorm G=C (instance)", SP_GROUPNORM, 4, {2, 3, 4, 5}, 1, {3}, 1, SP_NOCONV, SP_NOPOOL, {0}, 3, 0, 1e-4, 1e-6, 1e-5},
    {"groupnorm G=1 no affine", SP_GROUPNORM, 3, {3, 4, 5}, 0, {0}, 0, SP_NOCONV, SP_NOPOOL, {0}, 1, 0, 1e-4, 1e-6, 1e-5},

    /* pools */
    SP_POOL("maxpool 2x2x2", SP_MAXPOOL, SP_SHAPE(2, 2, 4, 4, 6), {{2, 2, 2}, {0}, {0}, {0}, 0, 0}),
    SP_POOL("maxpool (1,3,3) s(1,2,2) p(0,1,1) r3d", SP_MAXPOOL, SP_SHAPE(1, 3, 3, 7, 8),
            {{1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {0}, 0, 0}),
    SP_POOL("maxpool 3x3x3 dil 2 ceil", SP_MAXPOOL, SP_SHAPE(1, 2, 7, 8, 9), {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {2, 2, 2}, 1, 0}),
    SP_POOL("maxpool 2x2x2 stride 1 pad 1 overlapping", SP_MAXPOOL, SP_SHAPE(1, 2, 3, 4, 5),
            {{2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {0}, 0, 0}),
    SP_POOL("avgpool 2x2x2", SP_AVGPOOL, SP_SHAPE(2, 2, 4, 5, 6), {{2, 2, 2}, {0}, {0}, {0}, 0, 0}),
    SP_POOL("avgpool 3x3x3 s2 p1 include pad", SP_AVGPOOL, SP_SHAPE(1, 2, 5, 6, 7), {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {0}, 0, 0}),
    SP_POOL("avgpool 3x3x3 s2 p1 exclude pad", SP_AVGPOOL, SP_SHAPE(1, 2, 5, 6, 7), {{3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {0}, 0, 1}),
    SP_POOL("avgpool (2,3,3) ceil p(1,1,1)", SP_AVGPOOL, SP_SHAPE(1, 2, 5, 7, 6), {{2, 3, 3}, {2, 2, 2}, {1, 1, 1}, {0}, 1, 0}),
    {"adaptive avgpool 5x7x6 -> 3x4x5", SP_ADAPTIVE_AVGPOOL, 5, {2, 2, 5, 7, 6}, 0, {0}, 0, SP_NOCONV, SP_NOPOOL, {3, 4, 5}, 0, 0, 1e-5, 1e-6, 1e-6},
    {"adaptive avgpool upsample 2x3x2 -> 3x4x5", SP_ADAPTIVE_AVGPOOL, 5, {1, 2, 2, 3, 2}, 0, {0}, 0, SP_NOCONV, SP_NOPOOL, {3, 4, 5}, 0, 0, 1e-5, 1e-6, 1e-6},
    {"adaptive avgpool global 1x1x1", SP_ADAPTIVE_AVGPOOL, 5, {2, 3, 3, 5, 4}, 0, {0}, 0, SP_NOCONV, SP_NOPOOL, {1, 1, 1}, 0, 0, 1e-5, 1e-6, 1e-6},

    /* tubelet embedding */
    {"patch embed (2,4,4) exact", SP_PATCH_EMBED, 5, {2, 3, 4, 8, 8}, 5, {5, 3, 2, 4, 4}, 1, SP_NOCONV, SP_NOPOOL, {0}, 0, 0, 1e-4, 1e-6, 1e-6},
    {"patch embed D=70", SP_PATCH_EMBED, 5, {1, 2, 2, 4, 4}, 5, {70, 2, 1, 2, 2}, 1, SP_NOCONV, SP_NOPOOL, {0}, 0, 0,
     1e-4, 1e-6, 1e-6},
    {"patch embed remainder dropped", SP_PATCH_EMBED, 5, {1, 2, 5, 7, 6}, 5, {4, 2, 2, 3, 3}, 0, SP_NOCONV, SP_NOPOOL, {0}, 0, 0, 1e-4, 1e-6, 1e-6},
};

enum { SP_NCASES = (int)(sizeof sp_cases / sizeof sp_cases[0]) };

/* ---------------------------------------------------------------- data */

/* A case's tensors in one dtype: slots x, weight, bias (data NULL when
 * absent), the output, and the constant running statistics of eval batch
 * norm. */
typedef struct sp_set {
    dj_dtype dt;
    dj_tensor in[3];
    dj_tensor out;
    dj_tensor rmean, rvar;
} sp_set;

static inline int sp_has(const dj_tensor *t) { return t->data != NULL; }

static inline const dj_tensor *sp_opt(const dj_tensor *t) { return t->data ? t : NULL; }

/* Output shape of a case. */
static inline dj_status sp_out_shape(const sp_case *c, int *ndim, int64_t shape[5]) {
    memset(shape, 0, 5 * sizeof shape[0]);
    switch (c->op) {
    case SP_CONV3D:
        *ndim = 5;
        return dj_conv3d_output_shape(&c->conv, c->x, c->w, shape);
    case SP_MAXPOOL:
    case SP_AVGPOOL:
        *ndim = 5;
        return dj_pool3d_output_shape(&c->pool, c->x, shape);
    case SP_ADAPTIVE_AVGPOOL:
        *ndim = 5;
        shape[0] = c->x[0], shape[1] = c->x[1];
        memcpy(shape + 2, c->out3, sizeof c->out3);
        return DJ_OK;
    case SP_LINEAR:
        *ndim = c->xdim;
        memcpy(shape, c->x, 5 * sizeof shape[0]);
        shape[c->xdim - 1] = c->w[0];
        return DJ_OK;
    case SP_PATCH_EMBED:
        *ndim = 3;
        shape[0] = c->x[0];
        shape[1] = (c->x[2] / c->w[2]) * (c->x[3] / c->w[3]) * (c->x[4] / c->w[4]);
        shape[2] = c->w[0];
        return DJ_OK;
    default:
        *ndim = c->xdim;
        memcpy(shape, c->x, 5 * sizeof shape[0]);
        return DJ_OK;
    }
}

static inline void sp_set_free(sp_set *s) {
    for (int i = 0; i < 3; i++)
        dj_tensor_free(&s->in[i]);
    dj_tensor_free(&s->out);
    dj_tensor_free(&s->rmean);
    dj_tensor_free(&s->rvar);
}

/* Allocates the tensors of a case (zero-filled). */
static inline dj_status sp_set_create(const sp_case *c, dj_dtype dt, sp_set *s) {
    memset(s, 0, sizeof *s);
    s->dt = dt;
    int on;
    int64_t os[5];
    DJ_TRY(sp_out_shape(c, &on, os));
    DJ_TRY(dj_tensor_create(dt, c->xdim, c->x, &s->in[0]));
    if (c->wdim)
        DJ_TRY(dj_tensor_create(dt, c->wdim, c->w, &s->in[1]));
    if (c->bias) {
        int norm = c->op != SP_CONV3D && c->op != SP_LINEAR && c->op != SP_PATCH_EMBED;
        DJ_TRY(dj_tensor_create(dt, norm ? c->wdim : 1, c->w, &s->in[2]));
    }
    DJ_TRY(dj_tensor_create(dt, on, os, &s->out));
    if (c->op == SP_BN_EVAL) {
        DJ_TRY(dj_tensor_create(dt, 1, &c->x[1], &s->rmean));
        DJ_TRY(dj_tensor_create(dt, 1, &c->x[1], &s->rvar));
        for (int64_t i = 0; i < c->x[1]; i++) {
            double m = 0.3 * (double)i - 0.2, v = 0.5 + 0.25 * (double)i;
            if (dt == DJ_DTYPE_F64)
                ((double *)s->rmean.data)[i] = m, ((double *)s->rvar.data)[i] = v;
            else
                ((float *)s->rmean.data)[i] = (float)m, ((float *)s->rvar.data)[i] = (float)v;
        }
    }
    return DJ_OK;
}

/* Per-row statistics buffers of the norms (save_mean/save_invstd). */
static inline int64_t sp_stat_count(const sp_case *c) {
    switch (c->op) {
    case SP_BN_TRAIN:
    case SP_BN_EVAL: return c->x[1];
    case SP_GROUPNORM: return c->x[0] * c->groups;
    case SP_LAYERNORM: {
        int64_t n = 1;
        for (int i = 0; i < c->xdim - c->norm_dims; i++)
            n *= c->x[i];
        return n;
    }
    default: return 1;
    }
}

static const float sp_norm_eps = 1e-5f;

/* Runs the forward of a case (dtype of s: F64 = references, F32 = fast).
 * mean/invstd/indices receive what the backward needs (may be scratch). */
static inline dj_status sp_forward_aux(const sp_case *c, const dj_exec *ex, sp_set *s, dj_tensor *mean,
                                       dj_tensor *invstd, dj_tensor *indices) {
    const int ref = s->dt == DJ_DTYPE_F64;
    const dj_tensor *x = &s->in[0], *w = sp_opt(&s->in[1]), *b = sp_opt(&s->in[2]);
    dj_batchnorm_params bp = dj_batchnorm_defaults();
    switch (c->op) {
    case SP_CONV3D:
        return ref ? dj_conv3d_ref_forward(&c->conv, x, w, b, &s->out) : dj_conv3d_forward(ex, &c->conv, x, w, b, &s->out);
    case SP_LINEAR:
        return ref ? dj_linear_ref_forward(x, w, b, &s->out) : dj_linear_forward(ex, x, w, b, &s->out);
    case SP_BN_TRAIN:
    case SP_BN_EVAL:
        bp.training = c->op == SP_BN_TRAIN;
        if (ref)
            return dj_batchnorm_ref_forward(&bp, x, w, b, bp.training ? NULL : &s->rmean, bp.training ? NULL : &s->rvar,
                                            &s->out, mean, invstd);
        return dj_batchnorm_forward(ex, &bp, x, w, b, bp.training ? NULL : &s->rmean, bp.training ? NULL : &s->rvar,
                                    &s->out, mean, invstd);
    case SP_LAYERNORM:
        return ref ? dj_layernorm_ref_forward(c->norm_dims, sp_norm_eps, x, w, b, &s->out, mean, invstd)
                   : dj_layernorm_forward(ex, c->norm_dims, sp_norm_eps, x, w, b, &s->out, mean, invstd);
    case SP_GROUPNORM:
        return ref ? dj_groupnorm_ref_forward(c->groups, sp_norm_eps, x, w, b, &s->out, mean, invstd)
                   : dj_groupnorm_forward(ex, c->groups, sp_norm_eps, x, w, b, &s->out, mean, invstd);
    case SP_MAXPOOL:
        return ref ? dj_maxpool3d_ref_forward(&c->pool, x, &s->out, indices)
                   : dj_maxpool3d_forward(ex, &c->pool, x, &s->out, indices);
    case SP_AVGPOOL:
        return ref ? dj_avgpool3d_ref_forward(&c->pool, x, &s->out) : dj_avgpool3d_forward(ex, &c->pool, x, &s->out);
    case SP_ADAPTIVE_AVGPOOL:
        return ref ? dj_adaptive_avgpool3d_ref_forward(x, &s->out) : dj_adaptive_avgpool3d_forward(ex, x, &s->out);
    case SP_PATCH_EMBED:
        return ref ? dj_patch_embed_ref_forward(x, w, b, &s->out) : dj_patch_embed_forward(ex, x, w, b, &s->out);
    default:
        return DJ_ERR_INTERNAL;
    }
}

typedef struct sp_aux {
    dj_tensor mean, invstd, indices;
} sp_aux;

static inline void sp_aux_free(sp_aux *a) {
    dj_tensor_free(&a->mean);
    dj_tensor_free(&a->invstd);
    dj_tensor_free(&a->indices);
}

static inline dj_status sp_aux_create(const sp_case *c, const sp_set *s, sp_aux *a) {
    memset(a, 0, sizeof *a);
    int64_t n = sp_stat_count(c);
    DJ_TRY(dj_tensor_create(s->dt, 1, &n, &a->mean));
    DJ_TRY(dj_tensor_create(s->dt, 1, &n, &a->invstd));
    DJ_TRY(dj_tensor_create(DJ_DTYPE_I64, s->out.ndim, s->out.shape, &a->indices));
    return DJ_OK;
}

/* Forward only (the aux results are thrown away). */
static inline dj_status sp_forward(const sp_case *c, const dj_exec *ex, sp_set *s) {
    sp_aux a;
    dj_status st = sp_aux_create(c, s, &a);
    if (st == DJ_OK)
        st = sp_forward_aux(c, ex, s, &a.mean, &a.invstd, &a.indices);
    sp_aux_free(&a);
    return st;
}

/* Backward of a case: runs the forward (for its statistics / indices) then
 * accumulates into grads[0..2] (a grad with data NULL is not wanted).
 * dout has the shape of s->out. */
static inline dj_status sp_backward(const sp_case *c, const dj_exec *ex, sp_set *s, const dj_tensor *dout,
                                    dj_tensor grads[3]) {
    const int ref = s->dt == DJ_DTYPE_F64;
    const dj_tensor *x = &s->in[0], *w = sp_opt(&s->in[1]);
    dj_tensor *dx = grads[0].data ? &grads[0] : NULL, *dw = grads[1].data ? &grads[1] : NULL;
    dj_tensor *db = grads[2].data ? &grads[2] : NULL;
    sp_aux a;
    dj_status st = sp_aux_create(c, s, &a);
    if (st == DJ_OK)
        st = sp_forward_aux(c, ex, s, &a.mean, &a.invstd, &a.indices);
    dj_batchnorm_params bp = dj_batchnorm_defaults();
    bp.training = c->op == SP_BN_TRAIN;
    if (st == DJ_OK) {
        switch (c->op) {
        case SP_CONV3D:
            st = ref ? dj_conv3d_ref_backward(&c->conv, x, w, dout, dx, dw, db)
                     : dj_conv3d_backward(ex, &c->conv, x, w, dout, dx, dw, db);
            break;
        case SP_LINEAR:
            st = ref ? dj_linear_ref_backward(x, w, dout, dx, dw, db) : dj_linear_backward(ex, x, w, dout, dx, dw, db);
            break;
        case SP_BN_TRAIN:
        case SP_BN_EVAL:
            st = ref ? dj_batchnorm_ref_backward(&bp, x, w, &a.mean, &a.invstd, dout, dx, dw, db)
                     : dj_batchnorm_backward(ex, &bp, x, w, &a.mean, &a.invstd, dout, dx, dw, db);
            break;
        case SP_LAYERNORM:
            st = ref ? dj_layernorm_ref_backward(c->norm_dims, x, w, &a.mean, &a.invstd, dout, dx, dw, db)
                     : dj_layernorm_backward(ex, c->norm_dims, x, w, &a.mean, &a.invstd, dout, dx, dw, db);
            break;
        case SP_GROUPNORM:
            st = ref ? dj_groupnorm_ref_backward(c->groups, x, w, &a.mean, &a.invstd, dout, dx, dw, db)
                     : dj_groupnorm_backward(ex, c->groups, x, w, &a.mean, &a.invstd, dout, dx, dw, db);
            break;
        case SP_MAXPOOL:
            st = ref ? dj_maxpool3d_ref_backward(&c->pool, &a.indices, dout, dx)
                     : dj_maxpool3d_backward(ex, &c->pool, &a.indices, dout, dx);
            break;
        case SP_AVGPOOL:
            st = ref ? dj_avgpool3d_ref_backward(&c->pool, dout, dx) : dj_avgpool3d_backward(ex, &c->pool, dout, dx);
            break;
        case SP_ADAPTIVE_AVGPOOL:
            st = ref ? dj_adaptive_avgpool3d_ref_backward(dout, dx) : dj_adaptive_avgpool3d_backward(ex, dout, dx);
            break;
        case SP_PATCH_EMBED:
            st = ref ? dj_patch_embed_ref_backward(x, w, dout, dx, dw, db)
                     : dj_patch_embed_backward(ex, x, w, dout, dx, dw, db);
            break;
        default:
            st = DJ_ERR_INTERNAL;
        }
    }
    sp_aux_free(&a);
    return st;
}

/* Scratch a case needs on the fast path. */
static inline size_t sp_scratch_bytes(const sp_case *c, const sp_set *s, int threads) {
    if (c->op == SP_CONV3D)
        return dj_conv3d_scratch_bytes(&c->conv, &s->in[0], &s->in[1], threads);
    if (c->op == SP_PATCH_EMBED)
        return dj_patch_embed_scratch_bytes(&s->in[0], &s->in[1]);
    return 0;
}

/* ---------------------------------------------------------------- random data */

static inline double sp_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
    return 2.0 * (double)dj_hash_float(seed, stream, i) - 1.0;
}

/* Fills slot `slot` of a double set with reproducible values. Max pool
 * inputs are a shuffled ramp, all distinct by 2/numel, so no window has a
 * tie within a finite-difference step; norm weights stay away from zero. */
static inline void sp_fill(const sp_case *c, sp_set *s, int slot, uint64_t seed) {
    dj_tensor *t = &s->in[slot];
    if (!t->data)
        return;
    int64_t n = dj_tensor_numel(t);
    double *d = t->data;
    if (c->op == SP_MAXPOOL && slot == 0) {
        for (int64_t i = 0; i < n; i++)
            d[i] = -1.0 + 2.0 * (double)i / (double)n;
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates with hashed draws */
            int64_t j = (int64_t)(dj_hash_u64(seed, 99, (uint64_t)i) % (uint64_t)(i + 1));
            double tmp = d[i];
            d[i] = d[j], d[j] = tmp;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        d[i] = sp_uniform(seed, (uint64_t)slot, (uint64_t)i);
        if (slot == 1 && c->op != SP_CONV3D && c->op != SP_LINEAR && c->op != SP_PATCH_EMBED)
            d[i] = 1.0 + 0.5 * d[i];
    }
}

#endif
