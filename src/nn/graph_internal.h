/* graph_internal.h — the graph's tables, shared by graph.c (building and
 * running) and graph_plan.c (the memory plan). Not a public header. */
#ifndef DOJO_NN_GRAPH_INTERNAL_H
#define DOJO_NN_GRAPH_INTERNAL_H

#include "dojo/arena.h"
#include "dojo/graph.h"

enum { DJ_ALIGN = 64 };

static inline size_t dj_align(size_t n) { return (n + DJ_ALIGN - 1) / DJ_ALIGN * DJ_ALIGN; }

typedef struct dj_gtensor {
    char *name;
    dj_tensor_kind kind;
    dj_tensor value; /* shape before planning; a view into the arena after */
    dj_tensor grad;  /* valid when has_grad */
    dj_tensor bf16;  /* bf16 copy of a parameter (mixed precision), valid when has_bf16 */
    dj_tensor bwd_value; /* recomputed: the copy the backward pass reads, valid when recomputed */
    int recomputed;      /* kept only through the forward pass, recomputed for the backward */
    int grad_shares;     /* -1, or the tensor whose gradient buffer this gradient is (passed in place) */
    int grad_end;        /* the last backward step of the gradient's buffer (of all that share it) */
    int wants_bf16, has_bf16;
    int requires_grad;
    int has_grad;
    int producer;     /* node index, -1 for declared tensors */
    int first_fwd_use; /* earliest forward consumer, -1 if none */
    int last_fwd_use; /* latest forward consumer, -1 if none */
    int last_saved_by; /* latest consumer whose backward reads it, -1 if none */
    int is_output;
} dj_gtensor;

typedef struct dj_gnode {
    char *name;
    const dj_op_def *op;
    void *params;
    int n_in, n_out;
    int in[DJ_NODE_MAX_IO], out[DJ_NODE_MAX_IO];
    size_t saved_bytes;
    void *saved;
    int *zero_at_backward; /* activation gradients first live at this node's backward */
    int n_zero;
    int *recompute_at; /* activations to recompute just before this node's backward */
    int n_recompute;
    double fwd_s, bwd_s;
} dj_gnode;

struct dj_graph {
    dj_status status;
    char message[1024];
    dj_gtensor *tensors;
    int n_tensors, cap_tensors;
    dj_gnode *nodes;
    int n_nodes, cap_nodes;
    int planned, planned_training;
    int no_saving; /* dj_graph_set_memory_saving(g, 0): no recomputation, no gradients in place */
    dj_arena *arena;
    dj_graph_memory memory;
    int profiling;
    int threads;
    int bf16, bf16_stale; /* mixed precision; the bf16 copies need converting */
    int conv_algo;        /* dj_conv_algo for conv3d nodes (dj_graph_set_conv_algo) */
    uint64_t seed, step;
    void (*backward_hook)(void *arg, int node); /* after each node's backward, or NULL */
    void *backward_hook_arg;
    const dj_stats_sync *stats_sync; /* synchronised batch norm, or NULL */
};
/* Records s (and the thread's message) as the graph's sticky error; -1. */
int dj_graph_fail(dj_graph *g, dj_status s);
/* What node's operator sees; with_grads: the backward pass's view
 * (gradients, and the recomputed copies of recomputed values). */
void dj_graph_node_io(dj_graph *g, const dj_gnode *node, dj_node_io *io, int with_grads);

#endif
