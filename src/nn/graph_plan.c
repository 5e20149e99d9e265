/* graph_plan.c — a graph's memory plan (dj_graph_plan): which outputs the
 * backward pass recomputes instead of keeping and which gradients pass in
 * place (dj_graph_set_memory_saving), the liveness interval of every
 * activation, gradient, recomputed copy and saved state over the
 * forward-then-backward timeline, their placement in one arena, and the
 * lists each node's backward pass follows (gradients to zero, values to
 * recompute). */
#include <stdlib.h>
#include <string.h>

#include "nn/graph_internal.h"

typedef enum dj_role { DJ_ROLE_VALUE, DJ_ROLE_GRAD, DJ_ROLE_RECOMPUTED } dj_role;

typedef struct dj_interval {
    size_t size, offset;
    int start, end; /* inclusive, on the forward-then-backward timeline */
    int tensor;     /* tensor id, or -1 - node for saved state */
    dj_role role;   /* a tensor's value, its gradient, or its recomputed value */
} dj_interval;

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
        dj_graph_node_io(g, node, &io, training);
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

