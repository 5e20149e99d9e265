/* dojo/graph.h — a model as a graph of operators, with its memory planned once.
 *
 * Building: declare parameters, buffers and inputs by name, then add nodes in
 * forward order; each node names an operator definition (dj_op_def), its
 * parameter struct and its input tensors, and gets its output tensors back.
 * Building errors are sticky, as in ggml: once a call fails, later calls do
 * nothing and return -1, and dj_graph_plan() reports the first error — so a
 * model builder reads as a list of layers without a check on every line.
 *
 * Planning (dj_graph_plan): once the shapes are known, every tensor gets an
 * offset in one arena. Parameters, their gradients, buffers and inputs are
 * persistent; activations and their gradients are placed by liveness over
 * the forward-then-backward timeline (a tensor saved for a backward pass
 * lives until that backward pass), so buffers are reused; a node's saved
 * state (argmax, batch statistics) lives from its forward to its backward.
 * Memory saving (dj_graph_set_memory_saving, on by default) recomputes the
 * outputs of batch norm + ReLU for the backward pass instead of keeping
 * them, and passes gradients in place where operators allow it.
 * After planning, forward and backward passes allocate nothing.
 *
 * Gradients: dj_graph_backward() zeroes each activation gradient when it
 * becomes live and runs the backward passes in reverse order; parameter
 * gradients ACCUMULATE across calls (gradient accumulation) until
 * dj_graph_zero_grads(). Only tensors that depend on a parameter get a
 * gradient: the first layer does not compute the input's gradient. */
#ifndef DOJO_GRAPH_H
#define DOJO_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"
#include "dojo/ops.h"
#include "dojo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { DJ_NODE_MAX_IO = 8 };

typedef enum dj_tensor_kind {
    DJ_KIND_PARAM = 0,      /* learned; has a gradient; saved in checkpoints */
    DJ_KIND_BUFFER = 1,     /* state without gradient (running stats); saved */
    DJ_KIND_INPUT = 2,      /* filled by the caller before each forward */
    DJ_KIND_ACTIVATION = 3, /* produced by a node; planned by liveness */
} dj_tensor_kind;

/* What an operator sees when the graph runs it. */
typedef struct dj_node_io {
    int n_in, n_out;
    dj_tensor *in[DJ_NODE_MAX_IO];   /* input values */
    dj_tensor *out[DJ_NODE_MAX_IO];  /* output values */
    dj_tensor *din[DJ_NODE_MAX_IO];  /* input gradients to accumulate into; NULL: not wanted */
    dj_tensor *dout[DJ_NODE_MAX_IO]; /* output gradients (backward only) */
    const void *params;              /* the operator's parameter struct */
    void *saved;                     /* saved_bytes() of memory kept from forward to backward */
    int training;                    /* 1 in training mode (batch norm statistics, dropout) */
    uint64_t seed, step;             /* for seeded operators (dropout) */
    int threads;                     /* threads the graph runs on (scratch sizing) */
    const dj_stats_sync *sync;       /* batch statistics over replicas, or NULL (dj_graph_set_stats_sync) */
    int bf16;                        /* mixed precision: bf16 products, float32 sums */
    int conv_algo;                   /* dj_conv_algo overriding conv3d's own (0: none) */
    const dj_tensor *in_bf16[DJ_NODE_MAX_IO]; /* bf16 copies of parameter inputs (bf16 only), or NULL */
} dj_node_io;

/* An operator as the graph knows it. Shapes come from infer(). */
typedef struct dj_op_def {
    const char *name;
    /* Writes dtype, ndim and shape of each output (data is ignored). */
    dj_status (*infer)(const void *params, const dj_tensor *const *in, int n_in, dj_tensor *out, int n_out);
    dj_status (*forward)(const dj_exec *ex, dj_node_io *io);
    dj_status (*backward)(const dj_exec *ex, dj_node_io *io); /* NULL: no gradient flows */
    size_t (*scratch_bytes)(const dj_node_io *io);            /* NULL: none */
    size_t (*saved_bytes)(const dj_node_io *io);              /* NULL: none */
    /* Forward multiply-adds x 2 (FLOPs), for benchmarks; NULL: not counted. */
    double (*flops)(const dj_node_io *io);
    unsigned saves_inputs;  /* bit i: backward reads input i */
    unsigned saves_outputs; /* bit i: backward reads output i */
    /* Writes the outputs again, bit for bit as forward() wrote them, from
     * the inputs the backward reads (saves_inputs), the parameters and the
     * saved state, changing nothing else; NULL: cannot. With it, a training
     * plan keeps no output of this node from the forward pass to the
     * backward: the graph recomputes the outputs just before the first
     * backward pass that reads them (dj_graph_set_memory_saving). */
    dj_status (*recompute)(const dj_exec *ex, dj_node_io *io);
    /* bit i: backward accepts din[i] == dout[0] (the same buffer, written
     * as 0 + the gradient). The graph then passes the gradient in place
     * when input i has the output's shape and no other node reads it, so
     * the two gradients share one buffer. */
    unsigned grad_in_place;
} dj_op_def;

typedef struct dj_graph dj_graph;

typedef struct dj_graph_memory {
    size_t params;           /* parameter values */
    size_t grads;            /* parameter gradients */
    size_t buffers;          /* running statistics and other state */
    size_t inputs;           /* the input tensors */
    size_t activations;      /* planned activations, their gradients and saved state */
    size_t activations_naive; /* the same without reuse, for comparison */
    size_t recomputed;       /* activations recomputed for the backward pass instead of kept (their bytes) */
    size_t scratch;          /* the largest scratch of any node */
    size_t params_bf16;      /* bf16 copies of the weights of matmul operators (mixed precision) */
    size_t total;            /* the arena: all of the above but the scratch, which is the caller's */
} dj_graph_memory;

dj_status dj_graph_create(dj_graph **out);
void dj_graph_free(dj_graph *g);

/* Declarations; they return the tensor's id (>= 0), or -1 after an error. */
int dj_graph_param(dj_graph *g, const char *name, int ndim, const int64_t *shape);
int dj_graph_buffer(dj_graph *g, const char *name, int ndim, const int64_t *shape);
int dj_graph_input(dj_graph *g, const char *name, dj_dtype dtype, int ndim, const int64_t *shape);

/* Adds a node running `op` with a copy of params (params_size bytes) on the
 * given inputs; writes the ids of its n_out outputs to out_ids. Returns the
 * id of the first output, or -1 after an error. `name` names the node in
 * messages and profiles ("layer1.0.conv1"). */
int dj_graph_add(dj_graph *g, const char *name, const dj_op_def *op, const void *params, size_t params_size,
                 const int *in_ids, int n_in, int *out_ids, int n_out);

/* Keeps a tensor readable for the whole step (logits read after the
 * backward pass, features); unmarked activations may be reused. */
void dj_graph_mark_output(dj_graph *g, int id);

/* Records a building error (the thread's current message) as the graph's
 * sticky error, for builders that check their own arguments; returns -1. */
int dj_graph_error(dj_graph *g, dj_status status);

/* The first building error, or DJ_OK. */
dj_status dj_graph_status(const dj_graph *g);

/* The number of compute threads the graph will run with (default 1);
 * operators whose scratch grows with threads size it from this. Set before
 * planning. */
void dj_graph_set_threads(dj_graph *g, int threads);

/* Mixed precision (set before planning): operators that multiply matrices
 * (conv3d, linear) round their operands to bf16 and sum in float32; their
 * weights get bf16 copies in the arena beside the float32 master weights,
 * which (with gradients, optimizer state, norms, softmax and losses) stay
 * float32. The copies are refreshed by the first forward pass after the
 * parameters changed: after planning, after dj_graph_tensor() handed out a
 * parameter (initialisation, loading, broadcasting), and after
 * dj_graph_params_changed() (the optimizer's step calls it) — so once per
 * step, never inside one. */
void dj_graph_set_bf16(dj_graph *g, int on);
/* How conv3d nodes compute in float32 (a dj_conv_algo of dojo/ops_spatial.h,
 * set before planning): DJ_CONV_AUTO (0, the default) leaves each node's own
 * choice (Winograd where it pays), DJ_CONV_GEMM and DJ_CONV_WINOGRAD
 * override it for every node. */
void dj_graph_set_conv_algo(dj_graph *g, int algo);
/* How many conv3d nodes run Winograd (in float32, also under mixed
 * precision); *convs (if given) gets the number of conv3d nodes. */
int dj_graph_winograd_convs(const dj_graph *g, int *convs);
/* Marks parameter `id` as read in bf16 by its operator under mixed precision
 * (layer builders call it for conv3d and linear weights): with bf16 on, it
 * gets a bf16 copy, seen by operators as io->in_bf16[i]. */
void dj_graph_param_bf16(dj_graph *g, int id);
int dj_graph_bf16(const dj_graph *g);
void dj_graph_params_changed(dj_graph *g);
/* Converts the bf16 copies now (on ex's pool). */
void dj_graph_refresh_bf16(dj_graph *g, const dj_exec *ex);

/* Memory saving (default on; set before planning), two ways, the bits the
 * same either way (off is for comparisons):
 * - recomputation: a training plan keeps the outputs of nodes whose
 *   operator can recompute them (dj_op_def's recompute: batch norm + ReLU)
 *   only through the forward pass, and recomputes them just before the
 *   first backward pass that reads them, into a copy that lives until the
 *   producer's backward pass;
 * - gradients in place: where an operator accepts it (dj_op_def's
 *   grad_in_place: batch norm, batch norm + ReLU, add + ReLU), an input's
 *   gradient is the output gradient's buffer, when no other node reads
 *   that input. */
void dj_graph_set_memory_saving(dj_graph *g, int on);

/* Plans memory for training (with gradients) or for inference only. */
dj_status dj_graph_plan(dj_graph *g, int training);
dj_status dj_graph_memory_report(const dj_graph *g, dj_graph_memory *m);

/* Runs the forward pass (training selects batch statistics and dropout). */
dj_status dj_graph_forward(dj_graph *g, const dj_exec *ex, int training);
/* Seeds d(loss) = loss_scale for the scalar tensor `loss_id` and runs the
 * backward pass. Requires a plan made with training = 1. */
dj_status dj_graph_backward(dj_graph *g, const dj_exec *ex, int loss_id, float loss_scale);
void dj_graph_zero_grads(dj_graph *g);
/* Calls fn(arg, node) after the backward of each node, in backward order
 * (node n-1 down to 0), also for nodes that have no backward pass; NULL
 * removes it. A parameter's gradient is final once the hook has been called
 * for dj_graph_first_use() of it (the gradient reducer of dist.h uses this
 * to start communicating while the backward pass goes on). */
void dj_graph_set_backward_hook(dj_graph *g, void (*fn)(void *arg, int node), void *arg);
/* Training-mode batch norm of this graph takes its statistics (and its
 * backward's sums) over every replica through sync (synchronised batch
 * norm); NULL, the default: over this replica's rows only. sync must
 * outlive its use. */
void dj_graph_set_stats_sync(dj_graph *g, const dj_stats_sync *sync);
void dj_graph_set_seed(dj_graph *g, uint64_t seed, uint64_t step);

/* The largest scratch any node asked for; give the dj_exec that much. */
size_t dj_graph_scratch_bytes(const dj_graph *g);

/* Access after planning. Tensors are views into the arena. */
int dj_graph_find(const dj_graph *g, const char *name); /* -1 if absent */
int dj_graph_num_tensors(const dj_graph *g);
dj_tensor *dj_graph_tensor(dj_graph *g, int id);
dj_tensor *dj_graph_grad(dj_graph *g, int id); /* NULL when it has none */
dj_tensor_kind dj_graph_kind(const dj_graph *g, int id);
const char *dj_graph_name(const dj_graph *g, int id);
/* The earliest node reading tensor `id` in the forward pass (the last whose
 * backward touches its gradient), or -1 when no node reads it. */
int dj_graph_first_use(const dj_graph *g, int id);
/* Activations are named "<node name>.out" (or ".out<i>"). */

/* Nodes, for profiles and FLOP counts. */
int dj_graph_num_nodes(const dj_graph *g);
const char *dj_graph_node_name(const dj_graph *g, int node);
const char *dj_graph_node_op(const dj_graph *g, int node);
double dj_graph_node_flops(dj_graph *g, int node);
/* Optional per-node timing: when enabled, forward/backward add their
 * seconds to the node's counters. */
void dj_graph_set_profiling(dj_graph *g, int on);
void dj_graph_node_times(const dj_graph *g, int node, double *forward_s, double *backward_s);

#ifdef __cplusplus
}
#endif
#endif
