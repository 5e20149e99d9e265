/* reducer.c — bucketed gradient all-reduce, overlapped with the backward pass.
 *
 * The graph keeps every parameter's gradient in one region of its arena, in
 * registration order (64-byte aligned; the padding is zero and stays zero).
 * A bucket is a run of consecutive parameters, so it is one contiguous range
 * of that region and is reduced in place: no copy in or out. Buckets are cut
 * from the last parameter backwards, because the backward pass finishes the
 * last layers first. The graph's backward hook tells us when a node's
 * backward is done; a bucket is ready after the backward of the earliest
 * node reading any of its parameters, and is started then, in bucket order
 * (the same order on every rank, so messages match). */
#include "dojo/dist.h"

#include <stdio.h>
#include "dojo/log.h"
#include <stdlib.h>
#include <string.h>

enum { DJ_DEFAULT_BUCKET_BYTES = 25 * 1000 * 1000 };

typedef struct dj_bucket {
    float *data;         /* the bucket's gradients and the padding between them */
    size_t n;            /* floats */
    int ready_node;      /* started after this node's backward */
    int first_param;     /* tensor ids, highest first */
    int n_params;
    dj_comm_request *req;
    int started;
    double t_start, t_done; /* dj_time_now() when started and when seen complete (timeline) */
} dj_bucket;

struct dj_grad_reducer {
    dj_comm *c;
    dj_graph *g;
    dj_bucket *buckets;
    int n_buckets;
    int next;     /* the next bucket to start */
    int armed;
    int early;    /* buckets started before finish() in this step */
    dj_status error; /* the first failure inside the hook, reported by finish() */
    char message[1024];
};

/* Appends a bucket covering parameters ids[0..count) (descending ids). */
static dj_status dj_bucket_add(dj_grad_reducer *r, const int *ids, int count) {
    dj_graph *g = r->g;
    const dj_tensor *hi = dj_graph_grad(g, ids[0]), *lo = dj_graph_grad(g, ids[count - 1]);
    const char *begin = lo->data, *end = (const char *)hi->data + dj_tensor_nbytes(hi);
    int ready = dj_graph_num_nodes(g) - 1;
    size_t sum = 0;
    for (int k = 0; k < count; k++) {
        const dj_tensor *gr = dj_graph_grad(g, ids[k]);
        if ((const char *)gr->data < begin || (const char *)gr->data + dj_tensor_nbytes(gr) > end)
            return dj_error_set(DJ_ERR_INTERNAL, dj_graph_name(g, ids[k]),
                                "parameter gradients are not stored in registration order");
        sum += (dj_tensor_nbytes(gr) + 63) / 64 * 64;
        int use = dj_graph_first_use(g, ids[k]);
        if (use >= 0 && use < ready)
            ready = use;
    }
    if ((size_t)(end - begin) > sum)
        return dj_error_set(DJ_ERR_INTERNAL, dj_graph_name(g, ids[0]),
                            "parameter gradients are not contiguous (%zu bytes span %zu)", sum,
                            (size_t)(end - begin));
    dj_bucket *b = &r->buckets[r->n_buckets++];
    memset(b, 0, sizeof *b);
    b->data = (float *)begin;
    b->n = (size_t)(end - begin) / sizeof(float);
    b->ready_node = ready;
    b->first_param = ids[0];
    b->n_params = count;
    return DJ_OK;
}

static dj_status dj_reducer_cut(dj_grad_reducer *r, size_t bucket_bytes) {
    dj_graph *g = r->g;
    int n_ids = 0;
    int *ids = malloc((size_t)dj_graph_num_tensors(g) * sizeof *ids + 1);
    r->buckets = calloc((size_t)dj_graph_num_tensors(g) + 1, sizeof *r->buckets);
    if (!ids || !r->buckets) {
        free(ids);
        return dj_error_set(DJ_ERR_NOMEM, "reducer", "cannot allocate the bucket table");
    }
    for (int id = dj_graph_num_tensors(g) - 1; id >= 0; id--)
        if (dj_graph_kind(g, id) == DJ_KIND_PARAM && dj_graph_grad(g, id))
            ids[n_ids++] = id;
    dj_status s = DJ_OK;
    int start = 0;
    size_t bytes = 0;
    for (int k = 0; k < n_ids && s == DJ_OK; k++) {
        bytes += dj_tensor_nbytes(dj_graph_grad(g, ids[k]));
        if (bytes >= bucket_bytes || k == n_ids - 1) {
            s = dj_bucket_add(r, ids + start, k + 1 - start);
            start = k + 1;
            bytes = 0;
        }
    }
    free(ids);
    if (s == DJ_OK && r->n_buckets == 0)
        s = dj_error_set(DJ_ERR_INVALID, "reducer", "the graph has no parameter gradients (plan it for training)");
    return s;
}

dj_status dj_grad_reducer_create(dj_comm *c, dj_graph *g, size_t bucket_bytes, dj_grad_reducer **out) {
    *out = NULL;
    if (!c || !g)
        return dj_error_set(DJ_ERR_INVALID, "reducer", "needs a communicator and a graph");
    dj_grad_reducer *r = calloc(1, sizeof *r);
    if (!r)
        return dj_error_set(DJ_ERR_NOMEM, "reducer", "cannot allocate the gradient reducer");
    r->c = c;
    r->g = g;
    dj_status s = dj_reducer_cut(r, bucket_bytes ? bucket_bytes : DJ_DEFAULT_BUCKET_BYTES);
    if (s != DJ_OK) {
        dj_grad_reducer_free(r);
        return s;
    }
    *out = r;
    return DJ_OK;
}

static void dj_reducer_drop_all(dj_grad_reducer *r) {
    for (int b = 0; b < r->n_buckets; b++) {
        dj_comm_request_drop(r->buckets[b].req);
        r->buckets[b].req = NULL;
        r->buckets[b].started = 0;
    }
}

void dj_grad_reducer_free(dj_grad_reducer *r) {
    if (!r)
        return;
    if (r->armed)
        dj_graph_set_backward_hook(r->g, NULL, NULL);
    if (r->buckets)
        dj_reducer_drop_all(r);
    free(r->buckets);
    free(r);
}

static void dj_reducer_fail(dj_grad_reducer *r, dj_status s) {
    if (r->error != DJ_OK)
        return;
    r->error = s;
    snprintf(r->message, sizeof r->message, "%s", dj_error_message());
}

static dj_status dj_reducer_start(dj_grad_reducer *r, dj_bucket *b) {
    b->t_start = dj_time_now();
    b->t_done = 0;
    dj_status s = dj_comm_iallreduce_f32(r->c, b->data, b->n, DJ_REDUCE_MEAN, &b->req);
    if (s != DJ_OK)
        dj_error_prefix("gradient bucket of %s", dj_graph_name(r->g, b->first_param));
    b->started = 1;
    return s;
}

/* Advances every bucket in flight (MPI moves messages only inside calls). */
static dj_status dj_reducer_poll(dj_grad_reducer *r) {
    for (int b = 0; b < r->next; b++) {
        if (!r->buckets[b].req)
            continue;
        int done = 0;
        dj_status s = dj_comm_test(r->buckets[b].req, &done);
        if (s != DJ_OK || done)
            r->buckets[b].req = NULL; /* freed by test */
        if (done)
            r->buckets[b].t_done = dj_time_now();
        if (s != DJ_OK)
            return s;
    }
    return DJ_OK;
}

static void dj_reducer_hook(void *arg, int node) {
    dj_grad_reducer *r = arg;
    if (r->error != DJ_OK)
        return;
    dj_status s = DJ_OK;
    while (s == DJ_OK && r->next < r->n_buckets && r->buckets[r->next].ready_node >= node) {
        s = dj_reducer_start(r, &r->buckets[r->next++]);
        r->early++;
    }
    if (s == DJ_OK)
        s = dj_reducer_poll(r);
    if (s != DJ_OK)
        dj_reducer_fail(r, s);
}

dj_status dj_grad_reducer_begin(dj_grad_reducer *r) {
    if (r->armed)
        return dj_error_set(DJ_ERR_INVALID, "reducer", "begin called twice without finish");
    if (dj_comm_broken(r->c))
        return dj_error_set(DJ_ERR_IO, "reducer", "the communicator failed earlier");
    r->armed = 1;
    r->next = 0;
    r->early = 0;
    r->error = DJ_OK;
    for (int b = 0; b < r->n_buckets; b++)
        r->buckets[b].started = 0;
    dj_graph_set_backward_hook(r->g, dj_reducer_hook, r);
    return DJ_OK;
}

dj_status dj_grad_reducer_finish(dj_grad_reducer *r) {
    if (!r->armed)
        return dj_error_set(DJ_ERR_INVALID, "reducer", "finish called without begin");
    dj_graph_set_backward_hook(r->g, NULL, NULL);
    r->armed = 0;
    dj_status s = r->error;
    if (s != DJ_OK)
        dj_error_set(s, NULL, "%s", r->message);
    while (s == DJ_OK && r->next < r->n_buckets) /* the backward pass did not reach them */
        s = dj_reducer_start(r, &r->buckets[r->next++]);
    for (int b = 0; b < r->next && s == DJ_OK; b++) {
        dj_comm_request *req = r->buckets[b].req;
        r->buckets[b].req = NULL;
        s = dj_comm_wait(req);
        if (req && s == DJ_OK)
            r->buckets[b].t_done = dj_time_now();
        if (s != DJ_OK)
            dj_error_prefix("gradient bucket %d (%s)", b, dj_graph_name(r->g, r->buckets[b].first_param));
    }
    if (s != DJ_OK)
        dj_reducer_drop_all(r);
    return s;
}

int dj_grad_reducer_num_buckets(const dj_grad_reducer *r) { return r->n_buckets; }

size_t dj_grad_reducer_bucket_bytes(const dj_grad_reducer *r, int b) {
    return b >= 0 && b < r->n_buckets ? r->buckets[b].n * sizeof(float) : 0;
}

int dj_grad_reducer_started_early(const dj_grad_reducer *r) { return r->early; }

int dj_grad_reducer_bucket_times(const dj_grad_reducer *r, int b, double *start, double *done) {
    if (b < 0 || b >= r->n_buckets || !r->buckets[b].started || !(r->buckets[b].t_done > 0))
        return 0;
    *start = r->buckets[b].t_start;
    *done = r->buckets[b].t_done;
    return 1;
}

/* ---- whole-graph collectives ---------------------------------------------- */

static dj_status dj_graph_collective(dj_comm *c, dj_graph *g, int params, int average) {
    for (int id = 0; id < dj_graph_num_tensors(g); id++) {
        dj_tensor_kind k = dj_graph_kind(g, id);
        if (!(k == DJ_KIND_BUFFER || (params && k == DJ_KIND_PARAM)))
            continue;
        dj_tensor *t = dj_graph_tensor(g, id);
        if (!t->data)
            return dj_error_set(DJ_ERR_INVALID, dj_graph_name(g, id), "the graph is not planned");
        if (t->dtype != DJ_DTYPE_F32)
            return dj_error_set(DJ_ERR_UNSUPPORTED, dj_graph_name(g, id), "only float32 tensors are exchanged");
        dj_status s = average ? dj_comm_allreduce_f32(c, t->data, (size_t)dj_tensor_numel(t), DJ_REDUCE_MEAN)
                              : dj_comm_broadcast_f32(c, t->data, (size_t)dj_tensor_numel(t));
        if (s != DJ_OK) {
            dj_error_prefix("%s", dj_graph_name(g, id));
            return s;
        }
    }
    return DJ_OK;
}

dj_status dj_comm_broadcast_graph(dj_comm *c, dj_graph *g) { return dj_graph_collective(c, g, 1, 0); }
dj_status dj_comm_average_buffers(dj_comm *c, dj_graph *g) { return dj_graph_collective(c, g, 0, 1); }
