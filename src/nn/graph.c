/* graph.c — the operator graph: building, and the forward and backward
 * passes that allocate nothing (the memory plan is graph_plan.c). */
#include "dojo/graph.h"

#include <stdlib.h>
#include <string.h>

#include "dojo/log.h"
#include "dojo/ops_spatial.h"
#include "nn/graph_internal.h"

/* ---- building ---------------------------------------------------------- */

int dj_graph_fail(dj_graph *g, dj_status s) {
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

/* ---- what an operator sees ------------------------------------------------ */

void dj_graph_node_io(dj_graph *g, const dj_gnode *node, dj_node_io *io, int with_grads) {
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
    io->conv_algo = g->conv_algo;
    for (int i = 0; i < node->n_in; i++) {
        dj_gtensor *t = &g->tensors[node->in[i]];
        io->in_bf16[i] = g->bf16 && t->has_bf16 ? &t->bf16 : NULL;
    }
}


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

void dj_graph_set_conv_algo(dj_graph *g, int algo) {
    if (g->planned)
        dj_graph_fail(g, dj_error_set(DJ_ERR_INVALID, "graph", "already planned: set the conv algorithm before planning"));
    else if (!dj_conv_algo_name(algo))
        dj_graph_fail(g, dj_error_set(DJ_ERR_INVALID, "graph", "unknown conv algorithm %d", algo));
    else
        g->conv_algo = algo;
}

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
        dj_graph_node_io(g, node, &io, 0);
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
    dj_graph_node_io(g, node, &io, 1);
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
        dj_graph_node_io(g, node, &io, 1);
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

int dj_graph_winograd_convs(const dj_graph *g, int *convs) {
    int n = 0, wino = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const dj_gnode *nd = &g->nodes[i];
        if (strcmp(nd->op->name, "conv3d") != 0)
            continue;
        dj_conv3d_params p = *(const dj_conv3d_params *)nd->params;
        if (g->conv_algo != DJ_CONV_AUTO)
            p.algo = g->conv_algo;
        n++;
        wino += dj_conv3d_winograd_tiles(&p, g->tensors[nd->in[0]].value.shape, g->tensors[nd->in[1]].value.shape,
                                         NULL);
    }
    if (convs)
        *convs = n;
    return wino;
}

double dj_graph_node_flops(dj_graph *g, int node) {
    dj_gnode *nd = &g->nodes[node];
    if (!nd->op->flops)
        return 0.0;
    dj_node_io io;
    dj_graph_node_io(g, nd, &io, 0);
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
