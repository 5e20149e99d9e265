/* cmd_forward.c — `dojo forward`: runs a trained network (a dojo checkpoint
 * or a torchvision state dict saved as safetensors) on a tensor from a file
 * and writes the logits, for checking dojo against PyTorch and for scripts.
 * The work is dj_checkpoint_forward() (dojo/checkpoint.h). */
#include <stdio.h>

#include "cli.h"
#include "dojo/checkpoint.h"

static const char *dj_forward_model;
static const char *dj_forward_weights;
static const char *dj_forward_input;
static const char *dj_forward_output;
static int64_t dj_forward_threads;

static const dj_option dj_forward_options[] = {
    {"model", DJ_OPT_STRING, &dj_forward_model, "NAME|FILE",
     "model name or model file (default: the model named in the weights)", 0, 0},
    {"weights", DJ_OPT_STRING, &dj_forward_weights, "W.safetensors", "dojo checkpoint or torchvision state dict", 0, 0},
    {"input", DJ_OPT_STRING, &dj_forward_input, "X.safetensors", "holds tensor 'input' (N,3,T,H,W) float32", 0, 0},
    {"output", DJ_OPT_STRING, &dj_forward_output, "Y.safetensors", "receives tensor 'logits' (N,K) float32", 0, 0},
    {"threads", DJ_OPT_INT, &dj_forward_threads, "N", "compute threads (0: one per core)", 0, 4096},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_forward_spec = {
    "forward", "--weights W.safetensors --input X.safetensors --output Y.safetensors [--model NAME|FILE] [--threads N]",
    "Builds the model for the shape of the tensor 'input' in X, loads the weights W\n"
    "(a dojo checkpoint, or a torchvision state dict saved with safetensors, with or\n"
    "without num_batches_tracked), runs the network in eval mode and writes the\n"
    "tensor 'logits' to Y. The result does not depend on --threads.",
    dj_forward_options, 0, 0,
};

int dj_cmd_forward(int argc, char **argv) {
    int np = 0;
    dj_forward_model = dj_forward_weights = dj_forward_input = dj_forward_output = NULL;
    dj_forward_threads = 0;
    int rc = dj_cli_parse(&dj_forward_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    if (!dj_forward_weights)
        return dj_cli_usage_error("forward", "--weights is required");
    if (!dj_forward_input)
        return dj_cli_usage_error("forward", "--input is required");
    if (!dj_forward_output)
        return dj_cli_usage_error("forward", "--output is required");
    if (dj_checkpoint_forward(dj_forward_model, dj_forward_weights, dj_forward_input, dj_forward_output,
                              (int)dj_forward_threads) != DJ_OK)
        return dj_cli_fail();
    return DJ_EXIT_OK;
}
