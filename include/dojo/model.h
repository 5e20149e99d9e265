/* dojo/model.h — video networks built from model files in configs/models/.
 *
 * A model file names an architecture and its sizes; dj_model_create()
 * builds the graph for one input shape: the input "input" (N,3,T,H,W)
 * float32, the labels "labels" (N) int64, the logits (N,K) and the mean
 * cross-entropy loss. Architectures:
 *   video_resnet — torchvision's r3d_18, mc3_18 and r2plus1d_18 (and any
 *                  depth/width), with torchvision's parameter names
 *                  (stem.0.weight, layer1.0.conv1.0.weight, fc.weight, ...);
 *   x3d          — X3D (Feichtenhofer 2020): depthwise 3x3x3 convs,
 *                  squeeze-excitation, SiLU (swish), expansion 2.25;
 *   timesformer  — a video transformer with divided space-time attention
 *                  (Bertasius et al. 2021): tubelet embedding, per block
 *                  attention over time then over space, then an MLP. */
#ifndef DOJO_MODEL_H
#define DOJO_MODEL_H

#include <stdint.h>

#include "dojo/config.h"
#include "dojo/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_model dj_model;

typedef struct dj_model_shape {
    int64_t batch, frames, height, width; /* input N, T, H, W (3 channels) */
    int64_t num_classes;    /* 0: the model file's num_classes */
    float label_smoothing;  /* of the loss */
    int threads;            /* compute threads (scratch sizing); 0: one per core */
} dj_model_shape;

/* Finds a model file: NAME is a path to a .yaml/.json file, or a model name
 * looked up as configs/models/NAME.yaml under $DOJO_CONFIGS, next to the
 * dojo binary (../configs) and in ./configs. Writes the path found. */
dj_status dj_model_find(const char *name, char *path, size_t size);
/* Lists the names of the model files found (for --help and errors). */
void dj_model_list(char *buf, size_t size);

/* Builds the graph (not yet planned) from a model config; reads and checks
 * every key of the file (unknown keys are rejected with their line). */
dj_status dj_model_create(dj_config *model_cfg, const dj_model_shape *shape, dj_model **out);
void dj_model_free(dj_model *m);

dj_graph *dj_model_graph(dj_model *m);
int dj_model_input(const dj_model *m);
int dj_model_labels(const dj_model *m);
int dj_model_logits(const dj_model *m);
int dj_model_loss(const dj_model *m);
const char *dj_model_arch(const dj_model *m);
int64_t dj_model_num_classes(const dj_model *m);
/* Number of learned parameters (elements). Valid before planning. */
int64_t dj_model_num_params(dj_model *m);

/* Initialises parameters and buffers after planning, deterministically
 * from the seed (each tensor from its own stream keyed by its name):
 * convolutions kaiming-normal (fan_out, ReLU gain) as torchvision's video
 * ResNets, linear layers normal(0, 0.01) (ResNets) or truncated normal(0,
 * 0.02) (transformers), norm weights 1, biases 0, running means 0 and
 * variances 1. */
dj_status dj_model_init(dj_model *m, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
