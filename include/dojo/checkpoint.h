/* dojo/checkpoint.h — saving and resuming training runs, loading weights.
 *
 * A checkpoint is one .safetensors file (dojo/safetensors.h) holding:
 *   - every parameter and buffer of the graph under its graph name, float32
 *     ("stem.0.weight", "layer1.0.conv1.1.running_mean", "fc.bias", ...: for
 *     video ResNets these are torchvision's state-dict names);
 *   - optionally the optimizer state, "optim/<param>.momentum_buffer" (SGD)
 *     or "optim/<param>.exp_avg" and ".exp_avg_sq" (AdamW);
 *   - "__metadata__" strings: "dojo.format" = "checkpoint", "dojo.version"
 *     (informative), "epoch", "step", "batch_in_epoch", "seed",
 *     "best_metric", "num_classes", "optimizer_steps" (only with optimizer
 *     state) in decimal, and "model", "config", "classes" (JSON text) when
 *     set.
 * The file is written atomically: a crash leaves the old file or the new one.
 *
 * Loading treats the file as hostile: the container is validated by the
 * safetensors reader; here every tensor name, dtype and shape is checked
 * against the graph and every metadata number is parsed strictly, before
 * anything in the graph or optimizer is changed (a refused load leaves them
 * as they were). Files without dojo metadata — a torchvision state dict
 * saved with safetensors — load as weights; their "*.num_batches_tracked"
 * entries are ignored. */
#ifndef DOJO_CHECKPOINT_H
#define DOJO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"
#include "dojo/graph.h"
#include "dojo/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_checkpoint_state {
    int64_t epoch;          /* epochs completed */
    int64_t step;           /* optimizer steps taken */
    int64_t batch_in_epoch; /* batches of the current epoch already consumed (0 at an epoch boundary) */
    uint64_t seed;          /* the run's seed */
    double best_metric;     /* best validation top-1 so far (-1 if none) */
    char *config_json;      /* the run's full configuration (JSON text); malloc'ed when loaded */
    char *model;            /* model name or model-file path; malloc'ed when loaded */
    int64_t num_classes;
    char *classes_json;     /* JSON list of class names, or NULL; malloc'ed when loaded */
} dj_checkpoint_state;

/* Frees the strings and sets them to NULL; NULL is fine. */
void dj_checkpoint_state_free(dj_checkpoint_state *st);

/* Writes every parameter and buffer of g (by graph name), the optimizer
 * state when opt != NULL (tensors "optim/<name>" from dj_optimizer_state,
 * and its step count as "optimizer_steps"), and st as __metadata__ (strings
 * may be NULL: then absent), atomically (temp file, fsync, rename, fsync of
 * the folder). On failure an existing file at path is left untouched. */
dj_status dj_checkpoint_save(const char *path, dj_graph *g, dj_optimizer *opt, const dj_checkpoint_state *st);

/* Loads into a graph planned with the same model: every param and buffer
 * must be present with its exact shape (F32, or BF16/F16/F64 converted);
 * missing, extra or mis-shaped tensors are refused with an error naming the
 * file, the tensor and both shapes, except torchvision's
 * "*.num_batches_tracked" entries, which are ignored. opt may be NULL (then
 * optimizer tensors in the file are ignored); when opt is given the file
 * must hold exactly its state. st may be NULL; otherwise it receives the
 * metadata as dj_checkpoint_peek() (free it with dj_checkpoint_state_free). */
dj_status dj_checkpoint_load(const char *path, dj_graph *g, dj_optimizer *opt, dj_checkpoint_state *st);

/* Reads only the metadata, without a graph. For files without dojo
 * metadata (a torchvision state dict) the counters are 0, best_metric -1,
 * the strings NULL, and num_classes is fc.weight's first dimension, or 0
 * when the file has no 2-D "fc.weight" (then the model file's default
 * applies: dj_model_shape.num_classes = 0). */
dj_status dj_checkpoint_peek(const char *path, dj_checkpoint_state *st);

/* Keeps the newest `keep` files named "step-<N>.safetensors" in dir (by the
 * number N, not the name), deletes older ones; keep <= 0 keeps every file.
 * Also deletes the temporaries "<name>.safetensors.tmp.<pid>.<n>" that a
 * writer killed mid-write left behind (only when process <pid> no longer
 * exists); other files are never touched. */
dj_status dj_checkpoint_rotate(const char *dir, int keep);

/* What `dojo forward` runs: reads tensor "input" (N,3,T,H,W, float) from
 * input_path, builds `model` (a name or model file; NULL: the model named in
 * the weights' metadata) for that shape with num_classes from the weights
 * (dj_checkpoint_peek), plans it for inference, loads the weights (a dojo
 * checkpoint or a torchvision state dict), runs it in eval mode on `threads`
 * threads (<= 0: one per core) and writes "logits" (N,K float32) to
 * output_path atomically. Errors name the file or tensor at fault. */
dj_status dj_checkpoint_forward(const char *model, const char *weights_path, const char *input_path,
                                const char *output_path, int threads);

/* The file name rotate() manages for a step: "step-<step>.safetensors". */
void dj_checkpoint_step_name(int64_t step, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
