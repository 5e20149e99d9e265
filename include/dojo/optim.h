/* dojo/optim.h — optimizers and learning-rate schedules.
 *
 * SGD (momentum, dampening, Nesterov) and AdamW, with PyTorch's update rules
 * (torch.optim.SGD and torch.optim.AdamW), weight decay that can skip norms
 * and biases, and gradient clipping by global norm (torch's
 * clip_grad_norm_). The optimizer state (momentum or Adam moments) is
 * allocated once when the optimizer is created; a step allocates nothing.
 * Every update is element-wise, and the global norm is summed in a fixed
 * order, so results do not depend on the number of threads. */
#ifndef DOJO_OPTIM_H
#define DOJO_OPTIM_H

#include <stdint.h>

#include "dojo/error.h"
#include "dojo/graph.h"
#include "dojo/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dj_optim_kind {
    DJ_OPTIM_SGD = 0,
    DJ_OPTIM_ADAMW = 1,
} dj_optim_kind;

typedef struct dj_optim_config {
    dj_optim_kind kind;
    double weight_decay;
    int decay_norms_and_biases; /* 0: parameters with fewer than 2 dims get no decay */
    double clip_grad_norm;      /* > 0: scale gradients to at most this global L2 norm */
    /* SGD */
    double momentum;
    double dampening;
    int nesterov;
    /* AdamW */
    double beta1, beta2, eps;
} dj_optim_config;

/* PyTorch's defaults: SGD momentum 0, AdamW betas (0.9, 0.999), eps 1e-8,
 * weight decay 0 (SGD) or 0.01 (AdamW), decay applied to every parameter. */
dj_optim_config dj_optim_defaults(dj_optim_kind kind);
const char *dj_optim_name(dj_optim_kind kind);

typedef struct dj_optimizer dj_optimizer;

/* Creates an optimizer for every parameter of a graph planned for training. */
dj_status dj_optimizer_create(dj_graph *g, const dj_optim_config *cfg, dj_optimizer **out);
void dj_optimizer_free(dj_optimizer *opt);

/* One update with learning rate lr from the accumulated gradients (which it
 * leaves untouched; zero them with dj_graph_zero_grads). Returns the global
 * gradient norm before clipping in *grad_norm when not NULL. A non-finite
 * norm skips the update and returns DJ_ERR_RANGE. */
dj_status dj_optimizer_step(dj_optimizer *opt, const dj_exec *ex, double lr, double *grad_norm);

/* Steps taken so far (Adam's bias correction uses it; checkpoints save it). */
int64_t dj_optimizer_steps(const dj_optimizer *opt);
void dj_optimizer_set_steps(dj_optimizer *opt, int64_t steps);

/* The state tensors, for checkpoints: names "<param>.momentum_buffer" (SGD)
 * or "<param>.exp_avg" and "<param>.exp_avg_sq" (AdamW), as in PyTorch's
 * optimizer state. */
int dj_optimizer_num_states(const dj_optimizer *opt);
dj_tensor *dj_optimizer_state(dj_optimizer *opt, int i, const char **name);

/* Bytes of optimizer state. */
size_t dj_optimizer_bytes(const dj_optimizer *opt);

/* ---- schedules ---- */

typedef enum dj_schedule_kind {
    DJ_SCHEDULE_CONSTANT = 0,
    DJ_SCHEDULE_STEP = 1,   /* lr * gamma^(floor(step / step_size)) after warm-up */
    DJ_SCHEDULE_COSINE = 2, /* from lr to min_lr over total_steps, after warm-up */
} dj_schedule_kind;

typedef struct dj_schedule {
    dj_schedule_kind kind;
    double base_lr;
    int64_t warmup_steps;   /* linear from warmup_start_factor * lr to lr */
    double warmup_start_factor;
    int64_t total_steps;    /* cosine: the whole run, warm-up included */
    int64_t step_size;      /* step: steps between decays */
    double gamma;           /* step: decay factor */
    double min_lr;          /* cosine: the final learning rate */
} dj_schedule;

/* The learning rate for step (0-based). */
double dj_schedule_lr(const dj_schedule *s, int64_t step);
dj_status dj_schedule_check(const dj_schedule *s);
const char *dj_schedule_name(dj_schedule_kind kind);

#ifdef __cplusplus
}
#endif
#endif
