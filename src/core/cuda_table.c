/* cuda_table.c — the CUDA backend's operator table: for every operator of
 * the CPU graph (src/nn/layers.c), the CUDA functions implementing it, or
 * NULL where the operator runs on the CPU only so far. Compiled in every
 * build, so the tests check its completeness without a GPU
 * (tests/unit/test_device.c, tests/cli/test_cuda_table.sh). */
#include <stddef.h>

#include "dojo/ops_cuda.h"

const dj_cuda_op_entry dj_cuda_op_table[] = {
    {"conv3d", "dj_cuda_conv3d_forward/backward (cuDNN)"},
    {"batch_norm", "dj_cuda_batchnorm_forward/backward"},
    {"batch_norm_relu", "dj_cuda_batchnorm_forward/backward then dj_cuda_act_forward/backward (two kernels)"},
    {"layer_norm", "dj_cuda_layernorm_forward/backward"},
    {"activation", "dj_cuda_act_forward/backward"},
    {"add", "dj_cuda_add_forward/backward (same shapes only)"},
    {"mul", "dj_cuda_mul_forward/backward (same shapes only)"},
    {"add_relu", "dj_cuda_add_relu_forward/backward"},
    {"global_avgpool", "dj_cuda_adaptive_avgpool3d_forward/backward (1x1x1)"},
    {"adaptive_avgpool", "dj_cuda_adaptive_avgpool3d_forward/backward"},
    {"max_pool3d", "dj_cuda_maxpool3d_forward/backward"},
    {"linear", "dj_cuda_linear_forward/backward (cuBLASLt)"},
    {"reshape", "a view: no kernel"},
    {"cross_entropy", "dj_cuda_cross_entropy_forward/backward"},
    {"permute", NULL},
    {"dropout", NULL},
    {"patch_embed", NULL},
    {"attention", NULL},
    {"mean_tokens", NULL},
    {NULL, NULL},
};
