/* cmd_train.c — `dojo train`: the training loop's command line.
 *
 * The training loop itself is not built yet (issue "Train, evaluate,
 * predict"); until then the command parses its options, so that scripts and
 * tests can rely on them, and says plainly that training is not available. */
#include <stdio.h>

#include "cli.h"

static const char *dj_train_config;
static const char *dj_train_data;
static const char *dj_train_val;
static const char *dj_train_model;
static const char *dj_train_out;
static int64_t dj_train_epochs = 10;
static int64_t dj_train_batch = 8;
static int64_t dj_train_seed = 0;
static int64_t dj_train_threads = 0;
static double dj_train_lr = 0.1;
static int dj_train_resume;

static const dj_option dj_train_options[] = {
    {"config", DJ_OPT_STRING, &dj_train_config, "FILE", "model and recipe file (YAML or JSON)", 0, 0},
    {"data", DJ_OPT_STRING, &dj_train_data, "DIR|LIST|INDEX", "training videos", 0, 0},
    {"val", DJ_OPT_STRING, &dj_train_val, "DIR|LIST|INDEX", "validation videos", 0, 0},
    {"model", DJ_OPT_STRING, &dj_train_model, "NAME", "model name or config file", 0, 0},
    {"epochs", DJ_OPT_INT, &dj_train_epochs, "N", "number of epochs", 1, 1e9},
    {"batch", DJ_OPT_INT, &dj_train_batch, "B", "global batch size (clips)", 1, 1e9},
    {"lr", DJ_OPT_DOUBLE, &dj_train_lr, "X", "peak learning rate", 0, 1e6},
    {"seed", DJ_OPT_INT, &dj_train_seed, "S", "seed of the whole run", 0, 9.2e18},
    {"threads", DJ_OPT_INT, &dj_train_threads, "N", "compute threads (0: one per core)", 0, 4096},
    {"out", DJ_OPT_STRING, &dj_train_out, "RUNDIR", "run folder for checkpoints, metrics and report", 0, 0},
    {"resume", DJ_OPT_FLAG, &dj_train_resume, NULL, "continue the run in --out from its last checkpoint", 0, 0},
    {NULL, 0, NULL, NULL, NULL, 0, 0},
};

static const dj_cli_spec dj_train_spec = {
    "train", "[--config FILE] [--data DIR|LIST|INDEX] [--val ...] [--model NAME] [--epochs N] ...",
    "Trains a model on a folder of videos. Without arguments it runs the built-in\n"
    "demo: a synthetic motion data set, the default model, evaluation at the end.",
    dj_train_options, 0, 0,
};

int dj_cmd_train(int argc, char **argv) {
    int np = 0;
    int rc = dj_cli_parse(&dj_train_spec, argc, argv, &np);
    if (rc >= 0)
        return rc;
    fprintf(stderr, "dojo: error: training is not available yet in this build (dojo train)\n");
    return DJ_EXIT_FAIL;
}
