/* graph.c — the operator graph: building, liveness planning into one arena,
 * and the forward and backward passes that allocate nothing. */
#include "dojo/graph.h"

#include <stdlib.h>
#include <string.h>

#include "dojo/arena.h"
#include "dojo/log.h"

enum { DJ_ALIGN = 64 };

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
    uint64_t seed, step;
    void (*backward_hook)(void *arg, int node); /* after each node's backward, or NULL */
    void *backward_hook_arg;
    const dj_stats_sync *stats_sync; /* synchronised batch norm, or NULL */
};

/* ---- building ---------------------------------------------------------- */

static int dj_graph_fail(dj_graph *g, dj_status s) {
    if (g->status == DJ_OK) {
        g->status = s;
        snprintf(g->message, sizeof g->message, "%s", dj_error_message());
    }
    return -1;
}

int dj_graph_error(dj_graph *g, dj_status status) { return dj_graph_fail(g, status); }

static char *dj_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

dj_status dj_graph_create(dj_graph **out) {
    *out = calloc(1, sizeof **out);
    if (!*out)
        return dj_error_set(DJ_ERR_NOMEM, "graph", "cannot allocate a graph");
    return DJ_OK;
}

void dj_graph_free(dj_graph *g) {
    if (!g)
        return;
    for (int i = 0; i < g->n_tensors; i++)
        free(g->tensors[i].name);
    for (int i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].name);
        free(g->nodes[i].params);
        free(g->nodes[i].zero_at_backward);
        free(g->nodes[i].recompute_at);
    }
    free(g->tensors);
    free(g->nodes);
    dj_arena_free(g->arena);
    free(g);
}

dj_status dj_graph_status(const dj_graph *g) {
    if (g->status != DJ_OK)
        dj_error_set(g->status, NULL, "%s", g->message);
    return g->status;
}

static int dj_graph_new_tensor(dj_graph *g, const char *name, dj_tensor_kind kind, dj_dtype dtype, int ndim,
                               const int64_t *shape) {
    if (g->status != DJ_OK)
        return -1;
    if (g->planned)
        return dj_graph_fail(g, dj_error_set(DJ_ERR_INVALID, name, "graph already planned: cannot add a tensor"));
    if (kind != DJ_KIND_ACTIVATION && dj_graph_find(g, name) >= 0)
        return dj_graph_fail(g, dj_error_set(DJ_ERR_INVALID, name, "a tensor of this name already exists"));
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? 2 * g->cap_tensors : 64;
        dj_gtensor *t = realloc(g->tensors, (size_t)cap * sizeof *t);
        if (!t)
            return dj_graph_fail(g, dj_error_set(DJ_ERR_NOMEM, name, "cannot grow the tensor table"));
        g->tensors = t;
        g->cap_tensors = cap;
    }
    dj_gtensor *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    dj_status s = dj_tensor_view(dtype, ndim, shape, NULL, &t->value);
    if (s == DJ_OK && dj_tensor_numel(&t->value) == 0 && kind != DJ_KIND_ACTIVATION)
        s = dj_error_set(DJ_ERR_INVALID, name, "tensor has no elements");
    if (s != DJ_OK) {
        dj_error_prefix("%s", name);
        return dj_graph_fail(g, s);
    }
    t->name = dj_strdup(name);
    if (!t->name)
        return dj_graph_fail(g, dj_error_set(DJ_ERR_NOMEM, name, "cannot copy the name"));
    t->kind = kind;
    t->producer = -1;
    t->first_fwd_use = -1;
    t->last_fwd_use = -1;
    t->last_saved_by = -1;
    t->requires_grad = kind == DJ_KIND_PARAM;
    return g->n_tensors++;
}

int dj_graph_param(dj_graph *g, const char *name, int ndim, const int64_t *shape) {
    return dj_graph_new_tensor(g, name, DJ_KIND_PARAM, DJ_DTYPE_F32, ndim, shape);
}

int dj_graph_buffer(dj_graph *g, const char *name, int ndim, const int64_t *shape) {
    return dj_graph_new_tensor(g, name, DJ_KIND_BUFFER, DJ_DTYPE_F32, ndim, shape);
}

int dj_graph_input(dj_graph *g, const char *name, dj_dtype dtype, int ndim, const int64_t *shape) {
    return dj_graph_new_tensor(g, name, DJ_KIND_INPUT, dtype, ndim, shape);
}

void dj_graph_mark_output(dj_graph *g, int id) {
    if (g->status == DJ_OK && id >= 0 && id < g->n_tensors)
        g->tensors[id].is_output = 1;
}

int dj_graph_add(dj_graph *g, const char *name, const dj_op_def *op, const void *params, size_t params_size,
                 const int *in_ids, int n_in, int *out_ids, int n_out) {
    if (g->status != DJ_OK)
        return -1;
    if (g->planned)
        return dj_graph_fail(g, dj_error_set(DJ_ERR_INVALID, name, "graph already planned: cannot add a node"));
    if (!op || !op->infer || !op->forward || n_in < 0 || n_in > DJ_NODE_MAX_IO || n_out < 1 ||
        n_out > DJ_NODE_MAX_IO)
        return dj_graph_fail(g, dj_error_set(DJ_ERR_INVALID, name, "bad node: operator or input/output count"));
    const dj_tensor *ins[DJ_NODE_MAX_IO];
    for (int i = 0; i < n_in; i++) {
        if (in_ids[i] < 0 || in_ids[i] >= g->n_tensors)
            return dj_graph_fail(g, dj_error_set(DJ_ERR_INVALID, name, "input %d is not a tensor of this graph", i));
        ins[i] = &g->tensors[in_ids[i]].value;
    }
    dj_tensor outs[DJ_NODE_MAX_IO];
    memset(outs, 0, sizeof outs);
    dj_status s = op->infer(params, ins, n_in, outs, n_out);
    if (s != DJ_OK) {
        dj_error_prefix("%s (%s)", name, op->name);
        return dj_graph_fail(g, s);
    }
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
        dj_gnode *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return dj_graph_fail(g, dj_error_set(DJ_ERR_NOMEM, name, "cannot grow the node table"));
        g->nodes = n;
        g->cap_nodes = cap;
    }
    int index = g->n_nodes;
    dj_gnode *node = &g->nodes[index];
    memset(node, 0, sizeof *node);
    node->name = dj_strdup(name);
    node->params = malloc(params_size ? params_size : 1);
    if (!node->name || !node->params) {
        free(node->name);
        free(node->params);
        return dj_graph_fail(g, dj_error_set(DJ_ERR_NOMEM, name, "cannot copy the node"));
    }
    if (params_size)
        memcpy(node->params, params, params_size);
    node->op = op;
    node->n_in = n_in;
    node->n_out = n_out;
    int any_grad = 0;
    for (int i = 0; i < n_in; i++) {
        node->in[i] = in_ids[i];
        any_grad |= g->tensors[in_ids[i]].requires_grad;
    }
    g->n_nodes++;
    for (int o = 0; o < n_out; o++) {
        char out_name[512];
        if (n_out == 1)
            snprintf(out_name, sizeof out_name, "%s.out", name);
        else
            snprintf(out_name, sizeof out_name, "%s.out%d", name, o);
        int id = dj_graph_new_tensor(g, out_name, DJ_KIND_ACTIVATION, outs[o].dtype, outs[o].ndim, outs[o].shape);
        if (id < 0)
            return -1;
        g->tensors[id].producer = index;
        g->tensors[id].requires_grad = any_grad && op->backward != NULL;
        node->out[o] = id;
        if (out_ids)
            out_ids[o] = id;
    }
    for (int i = 0; i < n_in; i++) {
        dj_gtensor *t = &g->tensors[in_ids[i]];
        if (t->first_fwd_use < 0)
            t->first_fwd_use = index;
        t->last_fwd_use = index;
        if (op->saves_inputs & (1u << i))
            t->last_saved_by = index;
    }
    return node->out[0];
}

/* ---- planning ---------------------------------------------------------- */

typedef enum dj_role { DJ_ROLE_VALUE, DJ_ROLE_GRAD, DJ_ROLE_RECOMPUTED } dj_role;

typedef struct dj_interval {
    size_t size, offset;
    int start, end; /* inclusive, on the forward-then-backward timeline */
    int tensor;     /* tensor id, or -1 - node for saved state */
    dj_role role;   /* a tensor's value, its gradient, or its recomputed value */
} dj_interval;

static size_t dj_align(size_t n) { return (n + DJ_ALIGN - 1) / DJ_ALIGN * DJ_ALIGN; }

static int dj_interval_by_size(const void *a, const void *b) {
    const dj_interval *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->start - y->start;
}

static int dj_offset_order(const void *a, const void *b) {
    const dj_interval *const *x = a, *const *y = b;
    return (*x)->offset < (*y)->offset ? -1 : (*x)->offset > (*y)->offset;
}

/* Greedy placement: largest first, each at the lowest offset that does not
 * overlap a placed interval alive at the same time. Returns the peak. */
static size_t dj_place_intervals(dj_interval *iv, int n, dj_interval **scratch) {
    qsort(iv, (size_t)n, sizeof *iv, dj_interval_by_size);
    size_t peak = 0;
    for (int i = 0; i < n; i++) {
        int m = 0;
        for (int j = 0; j < i; j++)
            if (iv[j].start <= iv[i].end && iv[i].start <= iv[j].end)
                scratch[m++] = &iv[j];
        qsort(scratch, (size_t)m, sizeof *scratch, dj_offset_order);
        size_t offset = 0;
        for (int j = 0; j < m; j++) {
            if (scratch[j]->offset >= offset + iv[i].size)
                break;
            size_t end = scratch[j]->offset + scratch[j]->size;
            if (end > offset)
                offset = end;
        }
        iv[i].offset = offset;
        if (offset + iv[i].size > peak)
            peak = offset + iv[i].size;
    }
    return peak;
}

static void dj_node_io_fill(dj_graph *g, const dj_gnode *node, dj_node_io *io, int with_grads) {
    memset(io, 0, sizeof *io);
    io->sync = g->stats_sync;
    io->n_in = node->n_in;
    io->n_out = node->n_out;
    /* the backward pass reads recomputed values from their second copy */
    for (int i = 0; i < node->n_in; i++) {
        dj_gtensor *t = &g->tensors[node->in[i]];
        io->in[i] = with_grads && t->recomputed ? &t->bwd_value : &t->value;
        io->din[i] = with_grads && t->has_grad ? &t->grad : NULL;
    }
    for (int o = 0; o < node->n_out; o++) {
        dj_gtensor *t = &g->tensors[node->out[o]];
        io->out[o] = with_grads && t->recomputed ? &t->bwd_value : &t->value;
        io->dout[o] = with_grads && t->has_grad ? &t->grad : NULL;
    }
    io->params = node->params;
    io->saved = node->saved;
    io->seed = g->seed;
    io->step = g->step;
    io->threads = g->threads > 0 ? g->threads : 1;
    io->bf16 = g->bf16;
    for (int i = 0; i < node->n_in; i++) {
        dj_gtensor *t = &g->tensors[node->in[i]];
        io->in_bf16[i] = g->bf16 && t->has_bf16 ? &t->bf16 : NULL;
    }
}

static int dj_same_shape(const dj_tensor *a, const dj_tensor *b) {
    if (a->ndim != b->ndim || a->dtype != b->dtype)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

static size_t dj_graph_persistent_bytes(const dj_graph *g, dj_tensor_kind kind) {
    size_t n = 0;
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].kind == kind)
            n += dj_align(dj_tensor_nbytes(&g->tensors[i].value));
    return n;
}

/* The latest node (in forward order) whose backward pass reads activation
 * t, so the first to need it in the backward pass; -1 when none does. */
static int dj_last_backward_reader(const dj_graph *g, const dj_gtensor *t) {
    if (t->last_saved_by >= 0)
        return t->last_saved_by;
    return g->nodes[t->producer].op->saves_outputs ? t->producer : -1;
}

/* Chooses the activations the backward pass recomputes instead of keeping
 * them from the forward pass: outputs of one-output nodes whose operator
 * can recompute them, that some backward pass reads, and whose producer
 * reads no recomputed input (so no recomputation waits for another).
 * Returns their bytes. */
static size_t dj_plan_recompute(dj_graph *g, int training) {
    size_t bytes = 0;
    for (int id = 0; id < g->n_tensors; id++) { /* producers' inputs come first */
        dj_gtensor *t = &g->tensors[id];
        t->recomputed = 0;
        if (!training || g->no_saving || t->kind != DJ_KIND_ACTIVATION || t->is_output || t->last_fwd_use < 0)
            continue;
        const dj_gnode *p = &g->nodes[t->producer];
        if (!p->op->recompute || p->n_out != 1 || dj_last_backward_reader(g, t) < 0)
            continue;
        t->recomputed = 1;
        for (int i = 0; i < p->n_in; i++)
            if (g->tensors[p->in[i]].recomputed)
                t->recomputed = 0;
        if (t->recomputed) {
            t->bwd_value = t->value; /* the shape; planning places it */
            bytes += dj_align(dj_tensor_nbytes(&t->value));
        }
    }
    return bytes;
}

/* Gradients passed in place: when node i's operator accepts it for input
 * j (grad_in_place), the input is an activation only node i reads, of the
 * output's shape, and both have gradients, the input's gradient is the
 * output's buffer: the output's gradient dies in node i's backward pass,
 * where the input's is born, and nothing else adds to it. Chains share one
 * buffer, kept until the backward pass of the chain's first producer. */
static void dj_plan_grad_in_place(dj_graph *g) {
    const int n = g->n_nodes;
    for (int id = 0; id < g->n_tensors; id++) {
        dj_gtensor *t = &g->tensors[id];
        t->grad_shares = -1;
        t->grad_end = t->kind == DJ_KIND_ACTIVATION ? 2 * n - 1 - t->producer : -1;
    }
    for (int i = n - 1; i >= 0 && !g->no_saving; i--) { /* consumers before producers */
        const dj_gnode *node = &g->nodes[i];
        dj_gtensor *out = &g->tensors[node->out[0]];
        for (int j = 0; j < node->n_in; j++) {
            dj_gtensor *t = &g->tensors[node->in[j]];
            if (!(node->op->grad_in_place & (1u << j)) || t->kind != DJ_KIND_ACTIVATION || !t->has_grad ||
                !out->has_grad || out->is_output || t->is_output || t->first_fwd_use != i || t->last_fwd_use != i ||
                !dj_same_shape(&t->value, &out->value))
                continue;
            int reads = 0;
            for (int k = 0; k < node->n_in; k++)
                reads += node->in[k] == node->in[j];
            if (reads != 1)
                continue;
            t->grad_shares = out->grad_shares >= 0 ? out->grad_shares : node->out[0];
            dj_gtensor *root = &g->tensors[t->grad_shares];
            if (2 * n - 1 - t->producer > root->grad_end)
                root->grad_end = 2 * n - 1 - t->producer;
            break; /* one input per node */
        }
    }
}

/* The intervals to place, on the timeline 0..n-1 (forward of node i at i)
 * then n..2n-1 (backward of node i at 2n-1-i): each activation's value, its
 * gradient from its first to its last backward use, its recomputed copy
 * from just before the first backward pass reading it to its producer's,
 * and each node's saved state. Returns the count; *naive gets their bytes. */
static int dj_plan_intervals(const dj_graph *g, int training, dj_interval *iv, size_t *naive) {
    const int n = g->n_nodes, last = training ? 2 * n - 1 : n - 1;
    int m = 0;
    for (int id = 0; id < g->n_tensors; id++) {
        const dj_gtensor *t = &g->tensors[id];
        if (t->kind != DJ_KIND_ACTIVATION)
            continue;
        const int p = t->producer;
        const size_t size = dj_align(dj_tensor_nbytes(&t->value));
        int end = t->last_fwd_use > p ? t->last_fwd_use : p;
        if (t->recomputed) {
            int reader = dj_last_backward_reader(g, t);
            iv[m++] = (dj_interval){size, 0, 2 * n - 1 - reader, 2 * n - 1 - p, id, DJ_ROLE_RECOMPUTED};
        } else if (training) { /* kept until the last backward pass reading it */
            if (t->last_saved_by >= 0 && 2 * n - 1 - t->last_saved_by > end)
                end = 2 * n - 1 - t->last_saved_by;
            if (g->nodes[p].op->saves_outputs != 0 && 2 * n - 1 - p > end)
                end = 2 * n - 1 - p;
        }
        if (t->is_output || t->last_fwd_use < 0)
            end = last;
        iv[m++] = (dj_interval){size, 0, p, end, id, DJ_ROLE_VALUE};
        if (t->has_grad && t->grad_shares < 0) {
            int first_bwd = 2 * n - 1 - (t->last_fwd_use > p ? t->last_fwd_use : p);
            iv[m++] = (dj_interval){size, 0, first_bwd, t->grad_end, id, DJ_ROLE_GRAD};
        }
    }
    for (int i = 0; i < n; i++)
        if (g->nodes[i].saved_bytes)
            iv[m++] = (dj_interval){dj_align(g->nodes[i].saved_bytes), 0, i, training ? 2 * n - 1 - i : i, -1 - i,
                                    DJ_ROLE_VALUE};
    *naive = 0;
    for (int k = 0; k < m; k++)
        *naive += iv[k].size;
    return m;
}

/* Points every planned tensor and saved state into `activations`, and gives
 * each node the gradients to zero and the values to recompute before its
 * backward pass. */
static dj_status dj_plan_assign(dj_graph *g, const dj_interval *iv, int m, char *activations) {
    const int n = g->n_nodes;
    for (int k = 0; k < m; k++) {
        if (iv[k].tensor < 0) {
            g->nodes[-1 - iv[k].tensor].saved = activations + iv[k].offset;
            continue;
        }
        dj_gtensor *t = &g->tensors[iv[k].tensor];
        dj_tensor *at = iv[k].role == DJ_ROLE_GRAD ? &t->grad : iv[k].role == DJ_ROLE_RECOMPUTED ? &t->bwd_value : NULL;
        if (at) {
            *at = t->value;
            at->data = activations + iv[k].offset;
            dj_gnode *node = &g->nodes[2 * n - 1 - iv[k].start];
            if (iv[k].role == DJ_ROLE_GRAD)
                node->n_zero++;
            else
                node->n_recompute++;
        } else {
            t->value.data = activations + iv[k].offset;
        }
    }
    for (int id = 0; id < g->n_tensors; id++) { /* gradients passed in place */
        dj_gtensor *t = &g->tensors[id];
        if (t->grad_shares >= 0) {
            t->grad = t->value;
            t->grad.data = g->tensors[t->grad_shares].grad.data;
        }
    }
    for (int i = 0; i < n; i++) {
        dj_gnode *node = &g->nodes[i];
        node->zero_at_backward = node->n_zero ? calloc((size_t)node->n_zero, sizeof(int)) : NULL;
        node->recompute_at = node->n_recompute ? calloc((size_t)node->n_recompute, sizeof(int)) : NULL;
        if ((node->n_zero && !node->zero_at_backward) || (node->n_recompute && !node->recompute_at))
            return dj_error_set(DJ_ERR_NOMEM, "graph", "cannot allocate the planner's tables");
        node->n_zero = node->n_recompute = 0;
    }
    for (int k = 0; k < m; k++) {
        if (iv[k].tensor < 0 || iv[k].role == DJ_ROLE_VALUE)
            continue;
        dj_gnode *node = &g->nodes[2 * n - 1 - iv[k].start];
        if (iv[k].role == DJ_ROLE_GRAD)
            node->zero_at_backward[node->n_zero++] = iv[k].tensor;
        else
            node->recompute_at[node->n_recompute++] = iv[k].tensor;
    }
    return DJ_OK;
}

/* Places the persistent tensors (parameters, buffers, inputs, then the
 * parameters' gradients and bf16 copies) at the arena's start; returns
 * where the planned part begins. */
static char *dj_plan_persistent(dj_graph *g, char *base) {
    size_t at = 0;
    for (int kind = DJ_KIND_PARAM; kind <= DJ_KIND_INPUT; kind++)
        for (int id = 0; id < g->n_tensors; id++) {
            dj_gtensor *t = &g->tensors[id];
            if ((int)t->kind != kind)
                continue;
            t->value.data = base + at;
            at += dj_align(dj_tensor_nbytes(&t->value));
        }
    for (int id = 0; id < g->n_tensors; id++) {
        dj_gtensor *t = &g->tensors[id];
        if (t->kind == DJ_KIND_PARAM && t->has_grad) {
            t->grad = t->value;
            t->grad.data = base + at;
            at += dj_align(dj_tensor_nbytes(&t->value));
        }
    }
    for (int id = 0; id < g->n_tensors; id++) {
        dj_gtensor *t = &g->tensors[id];
        if (!t->has_bf16)
            continue;
        dj_tensor_view(DJ_DTYPE_BF16, t->value.ndim, t->value.shape, base + at, &t->bf16);
        t->bf16.name = t->name;
        at += dj_align(dj_tensor_nbytes(&t->bf16));
    }
    return base + at;
}

/* Sizes of the saved state of every node; returns the largest scratch. */
static size_t dj_plan_node_sizes(dj_graph *g, int training) {
    size_t scratch = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        dj_gnode *node = &g->nodes[i];
        dj_node_io io;
        dj_node_io_fill(g, node, &io, training);
        node->saved_bytes = node->op->saved_bytes ? node->op->saved_bytes(&io) : 0;
        size_t s = node->op->scratch_bytes ? node->op->scratch_bytes(&io) : 0;
        if (s > scratch)
            scratch = s;
    }
    return scratch;
}

dj_status dj_graph_plan(dj_graph *g, int training) {
    if (g->status != DJ_OK)
        return dj_graph_status(g);
    if (g->planned)
        return dj_error_set(DJ_ERR_INVALID, "graph", "already planned");
    if (g->n_nodes == 0)
        return dj_error_set(DJ_ERR_INVALID, "graph", "has no nodes");
    /* which tensors get a gradient, which a bf16 copy, which are recomputed */
    for (int i = 0; i < g->n_tensors; i++) {
        g->tensors[i].has_grad = training && g->tensors[i].requires_grad;
        g->tensors[i].has_bf16 = g->bf16 && g->tensors[i].wants_bf16;
    }
    dj_graph_memory *mem = &g->memory;
    memset(mem, 0, sizeof *mem);
    mem->recomputed = dj_plan_recompute(g, training);
    dj_plan_grad_in_place(g);
    mem->scratch = dj_align(dj_plan_node_sizes(g, training)); /* sizes need the shapes only */

    int cap = 3 * g->n_tensors + g->n_nodes;
    dj_interval *iv = calloc((size_t)cap, sizeof *iv);
    dj_interval **tmp = calloc((size_t)cap, sizeof *tmp);
    if (!iv || !tmp) {
        free(iv);
        free(tmp);
        return dj_error_set(DJ_ERR_NOMEM, "graph", "cannot allocate the planner's tables");
    }
    int m = dj_plan_intervals(g, training, iv, &mem->activations_naive);
    mem->activations = dj_place_intervals(iv, m, tmp);
    free(tmp);

    mem->params = dj_graph_persistent_bytes(g, DJ_KIND_PARAM);
    mem->grads = training ? mem->params : 0;
    mem->buffers = dj_graph_persistent_bytes(g, DJ_KIND_BUFFER);
    mem->inputs = dj_graph_persistent_bytes(g, DJ_KIND_INPUT);
    for (int id = 0; id < g->n_tensors; id++)
        if (g->tensors[id].has_bf16)
            mem->params_bf16 += dj_align((size_t)dj_tensor_numel(&g->tensors[id].value) * sizeof(uint16_t));
    /* the scratch is the caller's (dj_exec), not the arena's */
    mem->total = mem->params + mem->grads + mem->buffers + mem->inputs + mem->activations + mem->params_bf16;
    dj_status s = dj_arena_create(mem->total, &g->arena);
    if (s != DJ_OK) {
        free(iv);
        dj_error_prefix("planning %zu MiB for the model", mem->total >> 20);
        return s;
    }
    s = dj_plan_assign(g, iv, m, dj_plan_persistent(g, dj_arena_base(g->arena)));
    free(iv);
    if (s != DJ_OK)
        return s;
    g->planned = 1;
    g->planned_training = training;
    g->bf16_stale = 1;
    return DJ_OK;
}

void dj_graph_set_memory_saving(dj_graph *g, int on) {
    if (g->planned)
        dj_graph_fail(g, dj_error_set(DJ_ERR_INVALID, "graph", "already planned: set memory saving before planning"));
    else
        g->no_saving = !on;
}

dj_status dj_graph_memory_report(const dj_graph *g, dj_graph_memory *m) {
    if (!g->planned)
        return dj_error_set(DJ_ERR_INVALID, "graph", "not planned yet");
    *m = g->memory;
    return DJ_OK;
}

size_t dj_graph_scratch_bytes(const dj_graph *g) { return g->memory.scratch; }

/* ---- running ------------------------------------------------------------ */

static dj_status dj_graph_ready(const dj_graph *g, const dj_exec *ex) {
    if (!g->planned)
        return dj_error_set(DJ_ERR_INVALID, "graph", "not planned: call dj_graph_plan first");
    if (g->memory.scratch && (!ex || ex->scratch_bytes < g->memory.scratch))
        return dj_error_set(DJ_ERR_INVALID, "graph", "the exec context has %zu bytes of scratch, %zu needed",
                            ex ? ex->scratch_bytes : 0, g->memory.scratch);
    return DJ_OK;
}

/* ---- mixed precision ------------------------------------------------------ */

void dj_graph_set_bf16(dj_graph *g, int on) {
    if (g->planned)
        dj_graph_fail(g, dj_error_set(DJ_ERR_INVALID, "graph", "already planned: set bf16 before planning"));
    else
        g->bf16 = on != 0;
}

int dj_graph_bf16(const dj_graph *g) { return g->bf16; }

void dj_graph_param_bf16(dj_graph *g, int id) {
    if (g->status == DJ_OK && id >= 0 && id < g->n_tensors && g->tensors[id].kind == DJ_KIND_PARAM)
        g->tensors[id].wants_bf16 = 1;
}

void dj_graph_params_changed(dj_graph *g) { g->bf16_stale = 1; }

typedef struct dj_bf16_job {
    const float *src;
    uint16_t *dst;
} dj_bf16_job;

static void dj_bf16_convert_range(void *arg, int64_t i0, int64_t i1, int thread) {
    const dj_bf16_job *j = arg;
    (void)thread;
    for (int64_t i = i0; i < i1; i++)
        j->dst[i] = dj_f32_to_bf16(j->src[i]);
}

void dj_graph_refresh_bf16(dj_graph *g, const dj_exec *ex) {
    for (int id = 0; g->planned && id < g->n_tensors; id++) {
        dj_gtensor *t = &g->tensors[id];
        if (!t->has_bf16)
            continue;
        dj_bf16_job j = {t->value.data, t->bf16.data};
        dj_parallel_for(ex ? ex->pool : NULL, dj_tensor_numel(&t->value), 16384, dj_bf16_convert_range, &j);
    }
    g->bf16_stale = 0;
}

dj_status dj_graph_forward(dj_graph *g, const dj_exec *ex, int training) {
    DJ_TRY(dj_graph_ready(g, ex));
    if (g->bf16 && g->bf16_stale)
        dj_graph_refresh_bf16(g, ex);
    for (int i = 0; i < g->n_nodes; i++) {
        dj_gnode *node = &g->nodes[i];
        dj_node_io io;
        dj_node_io_fill(g, node, &io, 0);
        io.training = training;
        double t0 = g->profiling ? dj_time_now() : 0;
        dj_status s = node->op->forward(ex, &io);
        if (g->profiling)
            node->fwd_s += dj_time_now() - t0;
        if (s != DJ_OK) {
            dj_error_prefix("forward of %s (%s)", node->name, node->op->name);
            return s;
        }
    }
    return DJ_OK;
}

/* Writes the backward copy of recomputed activation `id` (its producer's
 * recompute; the time counts as the producer's backward). */
static dj_status dj_graph_recompute(dj_graph *g, const dj_exec *ex, int id) {
    dj_gnode *node = &g->nodes[g->tensors[id].producer];
    dj_node_io io;
    dj_node_io_fill(g, node, &io, 1);
    io.training = 1;
    double t0 = g->profiling ? dj_time_now() : 0;
    dj_status s = node->op->recompute(ex, &io);
    if (g->profiling)
        node->bwd_s += dj_time_now() - t0;
    if (s != DJ_OK)
        dj_error_prefix("recomputing %s (%s)", g->tensors[id].name, node->op->name);
    return s;
}

dj_status dj_graph_backward(dj_graph *g, const dj_exec *ex, int loss_id, float loss_scale) {
    DJ_TRY(dj_graph_ready(g, ex));
    if (!g->planned_training)
        return dj_error_set(DJ_ERR_INVALID, "graph", "planned for inference: no backward pass");
    if (loss_id < 0 || loss_id >= g->n_tensors || !g->tensors[loss_id].has_grad ||
        dj_tensor_numel(&g->tensors[loss_id].value) != 1)
        return dj_error_set(DJ_ERR_INVALID, "graph", "the loss must be a scalar activation that depends on parameters");
    const int loss_producer = g->tensors[loss_id].producer;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        dj_gnode *node = &g->nodes[i];
        for (int k = 0; k < node->n_zero; k++) {
            dj_tensor *gr = &g->tensors[node->zero_at_backward[k]].grad;
            memset(gr->data, 0, dj_tensor_nbytes(gr));
        }
        for (int k = 0; k < node->n_recompute; k++)
            DJ_TRY(dj_graph_recompute(g, ex, node->recompute_at[k]));
        if (i == loss_producer)
            *(float *)g->tensors[loss_id].grad.data = loss_scale;
        if (!node->op->backward || !g->tensors[node->out[0]].has_grad) {
            if (g->backward_hook)
                g->backward_hook(g->backward_hook_arg, i);
            continue;
        }
        dj_node_io io;
        dj_node_io_fill(g, node, &io, 1);
        io.training = 1;
        double t0 = g->profiling ? dj_time_now() : 0;
        dj_status s = node->op->backward(ex, &io);
        if (g->profiling)
            node->bwd_s += dj_time_now() - t0;
        if (s != DJ_OK) {
            dj_error_prefix("backward of %s (%s)", node->name, node->op->name);
            return s;
        }
        if (g->backward_hook)
            g->backward_hook(g->backward_hook_arg, i);
    }
    return DJ_OK;
}

void dj_graph_set_backward_hook(dj_graph *g, void (*fn)(void *arg, int node), void *arg) {
    g->backward_hook = fn;
    g->backward_hook_arg = arg;
}

void dj_graph_set_stats_sync(dj_graph *g, const dj_stats_sync *sync) { g->stats_sync = sync; }

void dj_graph_zero_grads(dj_graph *g) {
    for (int i = 0; i < g->n_tensors; i++) {
        dj_gtensor *t = &g->tensors[i];
        if (t->kind == DJ_KIND_PARAM && t->has_grad && t->grad.data)
            memset(t->grad.data, 0, dj_tensor_nbytes(&t->grad));
    }
}

void dj_graph_set_threads(dj_graph *g, int threads) { g->threads = threads; }

void dj_graph_set_seed(dj_graph *g, uint64_t seed, uint64_t step) {
    g->seed = seed;
    g->step = step;
}

/* ---- access ------------------------------------------------------------- */

int dj_graph_find(const dj_graph *g, const char *name) {
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name && strcmp(g->tensors[i].name, name) == 0)
            return i;
    return -1;
}

int dj_graph_num_tensors(const dj_graph *g) { return g->n_tensors; }

dj_tensor *dj_graph_tensor(dj_graph *g, int id) {
    if (id < 0 || id >= g->n_tensors)
        return NULL;
    if (g->tensors[id].kind == DJ_KIND_PARAM)
        g->bf16_stale = 1; /* the caller may write it */
    return &g->tensors[id].value;
}

dj_tensor *dj_graph_grad(dj_graph *g, int id) {
    return id >= 0 && id < g->n_tensors && g->tensors[id].has_grad && g->planned ? &g->tensors[id].grad : NULL;
}

dj_tensor_kind dj_graph_kind(const dj_graph *g, int id) { return g->tensors[id].kind; }

int dj_graph_first_use(const dj_graph *g, int id) {
    return id >= 0 && id < g->n_tensors ? g->tensors[id].first_fwd_use : -1;
}
const char *dj_graph_name(const dj_graph *g, int id) { return g->tensors[id].name; }

int dj_graph_num_nodes(const dj_graph *g) { return g->n_nodes; }
const char *dj_graph_node_name(const dj_graph *g, int node) { return g->nodes[node].name; }
const char *dj_graph_node_op(const dj_graph *g, int node) { return g->nodes[node].op->name; }

double dj_graph_node_flops(dj_graph *g, int node) {
    dj_gnode *nd = &g->nodes[node];
    if (!nd->op->flops)
        return 0.0;
    dj_node_io io;
    dj_node_io_fill(g, nd, &io, 0);
    return nd->op->flops(&io);
}

void dj_graph_set_profiling(dj_graph *g, int on) {
    g->profiling = on;
    for (int i = 0; i < g->n_nodes; i++)
        g->nodes[i].fwd_s = g->nodes[i].bwd_s = 0;
}

void dj_graph_node_times(const dj_graph *g, int node, double *forward_s, double *backward_s) {
    *forward_s = g->nodes[node].fwd_s;
    *backward_s = g->nodes[node].bwd_s;
}
