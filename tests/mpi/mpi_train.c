/* mpi_train.c — data-parallel training under mpirun (alone: one rank).
 *
 * Model: tests/mpi/tiny_timesformer.yaml (layer norm only, so the rows of a
 * batch do not interact). Checks: the bucketed reducer gives the same bits as
 * a plain all-reduce of each gradient, for one bucket, small buckets and one
 * bucket per parameter, and starts its buckets during the backward pass;
 * and K = 3 SGD steps with each rank taking its slice of a global batch of B
 * rows (rank r: rows B*r/size .. B*(r+1)/size, even or uneven) give the
 * weights of one process with the whole batch, within 1e-5 relative, and the
 * same bits on every rank. */
#include <string.h>

#include "dojo/dojo.h"
#include "dojo/model.h"
#include "mpi_common.h"
#ifdef DJ_HAVE_MPI
#include <mpi.h>
#endif

enum { FRAMES = 2, SIDE = 16, STEPS = 3 };

static dj_comm *comm;
static const char *model_file = "tests/mpi/tiny_timesformer.yaml";

typedef struct net {
    dj_model *m;
    dj_graph *g;
    void *scratch;
    dj_exec ex;
} net;

static int net_create(net *n, int64_t batch, uint64_t seed) {
    memset(n, 0, sizeof *n);
    char path[1024];
    dj_config *c = NULL;
    dj_model_shape shape = {batch, FRAMES, SIDE, SIDE, 0, 0.0f, 1};
    if (dj_model_find(model_file, path, sizeof path) != DJ_OK || dj_config_load(path, &c) != DJ_OK ||
        dj_model_create(c, &shape, &n->m) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "building %s: %s", model_file, dj_error_message());
        dj_config_free(c);
        return -1;
    }
    dj_config_free(c);
    n->g = dj_model_graph(n->m);
    if (dj_graph_plan(n->g, 1) != DJ_OK || dj_model_init(n->m, seed) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "planning: %s", dj_error_message());
        return -1;
    }
    size_t bytes = dj_graph_scratch_bytes(n->g);
    n->scratch = bytes ? malloc(bytes) : NULL;
    n->ex = (dj_exec){NULL, n->scratch, bytes};
    return 0;
}

static void net_free(net *n) {
    free(n->scratch);
    dj_model_free(n->m);
}

/* Rows [lo, lo + rows) of the global batch of step `step`. */
static void fill_rows(net *n, int64_t lo, int64_t rows, uint64_t step) {
    dj_tensor *x = dj_graph_tensor(n->g, dj_model_input(n->m));
    int64_t *y = dj_graph_tensor(n->g, dj_model_labels(n->m))->data;
    float *xf = x->data;
    const int64_t per = dj_tensor_numel(x) / x->shape[0];
    for (int64_t i = 0; i < rows; i++) {
        int64_t row = lo + i;
        y[i] = (int64_t)(mpi_test_mix(step * 7919u + (uint64_t)row) % 3);
        for (int64_t k = 0; k < per; k++)
            xf[i * per + k] = (float)(mpi_test_value((int)step, (uint64_t)(row * per + k), 900) + 0.2 * (double)y[i]);
    }
}

static int64_t row_lo(int64_t batch, int r, int size) { return batch * r / size; }

/* ---- the reducer equals a plain all-reduce -------------------------------- */

static float **grads_copy(net *n) {
    float **out = calloc((size_t)dj_graph_num_tensors(n->g), sizeof *out);
    for (int id = 0; id < dj_graph_num_tensors(n->g); id++) {
        dj_tensor *gr = dj_graph_grad(n->g, id);
        if (!gr || dj_graph_kind(n->g, id) != DJ_KIND_PARAM)
            continue;
        out[id] = malloc(dj_tensor_nbytes(gr));
        memcpy(out[id], gr->data, dj_tensor_nbytes(gr));
    }
    return out;
}

static void grads_free(net *n, float **g) {
    for (int id = 0; id < dj_graph_num_tensors(n->g); id++)
        free(g[id]);
    free(g);
}

static int grads_differ(net *n, float **ref) {
    int bad = 0;
    for (int id = 0; id < dj_graph_num_tensors(n->g); id++)
        if (ref[id]) {
            dj_tensor *gr = dj_graph_grad(n->g, id);
            bad += memcmp(gr->data, ref[id], dj_tensor_nbytes(gr)) != 0;
        }
    return bad;
}

static void step_grads(net *n, dj_grad_reducer *r) {
    dj_graph_zero_grads(n->g);
    CHECK(dj_graph_forward(n->g, &n->ex, 1) == DJ_OK);
    if (r)
        CHECK(dj_grad_reducer_begin(r) == DJ_OK);
    CHECK(dj_graph_backward(n->g, &n->ex, dj_model_loss(n->m), 1.0f) == DJ_OK);
    if (r)
        CHECK_MSG(dj_grad_reducer_finish(r) == DJ_OK, "finish: %s", dj_error_message());
}

static void test_reducer_equals_plain_allreduce(void) {
    const int rank = dj_comm_rank(comm), size = dj_comm_size(comm);
    net n;
    if (net_create(&n, 2, 11) != 0)
        return;
    fill_rows(&n, 2 * rank, 2, 1); /* different rows on every rank */
    step_grads(&n, NULL);
    float **local = grads_copy(&n);
    /* the reference: each gradient on its own through the blocking all-reduce */
    int nparams = 0;
    for (int id = 0; id < dj_graph_num_tensors(n.g); id++)
        if (local[id]) {
            dj_tensor *gr = dj_graph_grad(n.g, id);
            CHECK(dj_comm_allreduce_f32(comm, gr->data, (size_t)dj_tensor_numel(gr), DJ_REDUCE_MEAN) == DJ_OK);
            nparams++;
        }
    float **ref = grads_copy(&n);
#ifdef DJ_HAVE_MPI
    if (size == 2) { /* with two ranks MPI's own sum has the same single order */
        int bad = 0;
        for (int id = 0; id < dj_graph_num_tensors(n.g); id++)
            if (local[id]) {
                int64_t k = dj_tensor_numel(dj_graph_grad(n.g, id));
                float *s = malloc((size_t)k * sizeof *s);
                MPI_Allreduce(local[id], s, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                for (int64_t i = 0; i < k; i++)
                    bad += s[i] / 2.0f != ref[id][i];
                free(s);
            }
        CHECK_EQ_INT(bad, 0);
    }
#endif
    const size_t buckets[] = {0, 8192, 1};
    for (size_t b = 0; b < sizeof buckets / sizeof buckets[0]; b++) {
        dj_grad_reducer *r = NULL;
        CHECK(dj_grad_reducer_create(comm, n.g, buckets[b], &r) == DJ_OK);
        if (!r)
            continue;
        const int nb = dj_grad_reducer_num_buckets(r);
        if (buckets[b] == 0)
            CHECK_EQ_INT(nb, 1); /* 130 KB of gradients fit the 25 MB default */
        if (buckets[b] == 1)
            CHECK_EQ_INT(nb, nparams);
        if (buckets[b] == 8192)
            CHECK(nb > 3 && nb < nparams);
        size_t total = 0;
        for (int k = 0; k < nb; k++)
            total += dj_grad_reducer_bucket_bytes(r, k);
        CHECK(total >= (size_t)dj_model_num_params(n.m) * 4 && total < (size_t)dj_model_num_params(n.m) * 4 + 64 * nparams);
        for (int rep = 0; rep < 2; rep++) { /* a reducer serves step after step */
            step_grads(&n, r);
            int bad = grads_differ(&n, ref);
            CHECK_MSG(bad == 0, "bucket bytes %zu, rank %d: %d gradients differ from the plain all-reduce",
                      buckets[b], rank, bad);
            CHECK_EQ_INT(dj_grad_reducer_started_early(r), nb); /* all started by backward hooks */
        }
        /* without it the gradients are this rank's own: the check above can fail */
        if (size > 1 && b == 0) {
            step_grads(&n, NULL);
            CHECK(grads_differ(&n, ref) > 0);
        }
        dj_grad_reducer_free(r);
    }
    grads_free(&n, local);
    grads_free(&n, ref);
    net_free(&n);
}

static void test_reducer_misuse(void) {
    net n;
    if (net_create(&n, 1, 3) != 0)
        return;
    dj_grad_reducer *r = NULL;
    CHECK(dj_grad_reducer_create(comm, n.g, 0, &r) == DJ_OK);
    CHECK(dj_grad_reducer_finish(r) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "without begin");
    CHECK(dj_grad_reducer_begin(r) == DJ_OK);
    CHECK(dj_grad_reducer_begin(r) == DJ_ERR_INVALID);
    CHECK(dj_grad_reducer_finish(r) == DJ_OK); /* no backward ran: reduces what is there */
    dj_grad_reducer_free(r);
    net_free(&n);
}

/* ---- N ranks train like one process ---------------------------------------- */

static void sgd(net *n, dj_optimizer **opt) {
    dj_optim_config oc = dj_optim_defaults(DJ_OPTIM_SGD);
    oc.momentum = 0.9;
    oc.weight_decay = 1e-3;
    CHECK(dj_optimizer_create(n->g, &oc, opt) == DJ_OK);
}

/* Trains STEPS steps on rows [lo, lo + rows) of each global batch of
 * `batch` rows; reduce = 0 leaves out the reducer (a rank on its own). */
static void train(net *n, int64_t batch, int64_t lo, int64_t rows, int reduce) {
    dj_optimizer *opt = NULL;
    sgd(n, &opt);
    dj_grad_reducer *r = NULL;
    if (reduce)
        CHECK(dj_grad_reducer_create(comm, n->g, 16384, &r) == DJ_OK);
    float weight = 1.0f;
    if (reduce)
        CHECK(dj_comm_batch_weight(comm, rows, &weight) == DJ_OK);
    for (int step = 0; step < STEPS && opt; step++) {
        fill_rows(n, lo, rows, (uint64_t)step + batch * 100);
        dj_graph_zero_grads(n->g);
        CHECK(dj_graph_forward(n->g, &n->ex, 1) == DJ_OK);
        if (r)
            CHECK(dj_grad_reducer_begin(r) == DJ_OK);
        CHECK(dj_graph_backward(n->g, &n->ex, dj_model_loss(n->m), weight) == DJ_OK);
        if (r)
            CHECK(dj_grad_reducer_finish(r) == DJ_OK);
        CHECK(dj_optimizer_step(opt, &n->ex, 0.5, NULL) == DJ_OK);
    }
    dj_grad_reducer_free(r);
    dj_optimizer_free(opt);
}

/* Largest over the parameter tensors of max|a - b| / max|b|. A tensor
 * whose values stay below 1e-6 (attention key biases: softmax ignores them,
 * so their gradient is rounding noise around zero) is compared to 1e-6
 * instead of its own scale. */
static double weights_rel_diff(net *a, net *b) {
    double worst = 0;
    for (int id = 0; id < dj_graph_num_tensors(a->g); id++) {
        if (dj_graph_kind(a->g, id) != DJ_KIND_PARAM)
            continue;
        const dj_tensor *x = dj_graph_tensor(a->g, id), *y = dj_graph_tensor(b->g, id);
        const float *p = x->data, *q = y->data;
        double dmax = 0, ymax = 0;
        for (int64_t i = 0; i < dj_tensor_numel(x); i++) {
            dmax = fmax(dmax, fabs((double)p[i] - q[i]));
            ymax = fmax(ymax, fabs((double)q[i]));
        }
        if (dmax / fmax(ymax, 1e-6) > worst)
            worst = dmax / fmax(ymax, 1e-6);
    }
    return worst;
}

static void check_like_one_process(int64_t batch) {
    const int rank = dj_comm_rank(comm), size = dj_comm_size(comm);
    const int64_t lo = row_lo(batch, rank, size), rows = row_lo(batch, rank + 1, size) - lo;
    net one, mine, alone;
    if (net_create(&one, batch, 5) != 0 || net_create(&mine, rows, 5 + 1000u * (uint64_t)rank) != 0 ||
        net_create(&alone, rows, 5) != 0)
        return;
    /* rank 0's initial weights (and buffers) reach every rank */
    CHECK(dj_comm_broadcast_graph(comm, mine.g) == DJ_OK);
    CHECK(weights_rel_diff(&mine, &one) == 0.0);
    train(&one, batch, 0, batch, 0);
    train(&mine, batch, lo, rows, 1);
    train(&alone, batch, lo, rows, 0);
    double diff = weights_rel_diff(&mine, &one);
    printf("# rank %d of %d, %lld of %lld rows: weights after %d steps differ from one process by %.3g relative\n",
           rank, size, (long long)rows, (long long)batch, STEPS, diff);
    CHECK_MSG(diff <= 1e-5, "batch %lld over %d ranks (rank %d: %lld rows): weights differ by %.3g relative",
              (long long)batch, size, rank, (long long)rows, diff);
    if (size > 1) /* a rank training on its rows alone is far off: the check can fail */
        CHECK(weights_rel_diff(&alone, &one) > 1e-3);
    /* the same bits on every rank */
    int differ = 0;
    for (int id = 0; id < dj_graph_num_tensors(mine.g); id++) {
        if (dj_graph_kind(mine.g, id) != DJ_KIND_PARAM)
            continue;
        dj_tensor *t = dj_graph_tensor(mine.g, id);
        float *copy = malloc(dj_tensor_nbytes(t));
        memcpy(copy, t->data, dj_tensor_nbytes(t));
        CHECK(dj_comm_broadcast_f32(comm, copy, (size_t)dj_tensor_numel(t)) == DJ_OK);
        differ += memcmp(copy, t->data, dj_tensor_nbytes(t)) != 0;
        free(copy);
    }
    CHECK_EQ_INT(differ, 0);
    net_free(&one);
    net_free(&mine);
    net_free(&alone);
}

static void test_even_split_trains_like_one_process(void) { check_like_one_process(2 * dj_comm_size(comm)); }
static void test_uneven_split_trains_like_one_process(void) { check_like_one_process(2 * dj_comm_size(comm) + 1); }

/* Batch norm's running statistics: broadcast from rank 0, then averaged. */
static void test_graph_broadcast_and_buffer_average(void) {
    const int rank = dj_comm_rank(comm), size = dj_comm_size(comm);
    const char *saved = model_file;
    model_file = "r3d_mini";
    net n;
    int ok = net_create(&n, 1, 40 + (uint64_t)rank) == 0;
    model_file = saved;
    if (!ok)
        return;
    int nbuf = 0;
    for (int id = 0; id < dj_graph_num_tensors(n.g); id++)
        if (dj_graph_kind(n.g, id) == DJ_KIND_BUFFER) {
            dj_tensor *t = dj_graph_tensor(n.g, id);
            for (int64_t i = 0; i < dj_tensor_numel(t); i++)
                ((float *)t->data)[i] = (float)mpi_test_value(rank, (uint64_t)(id * 1000 + i), 77);
            nbuf++;
        }
    CHECK(nbuf > 4);
    CHECK(dj_comm_average_buffers(comm, n.g) == DJ_OK);
    int bad = 0;
    for (int id = 0; id < dj_graph_num_tensors(n.g); id++)
        if (dj_graph_kind(n.g, id) == DJ_KIND_BUFFER) {
            dj_tensor *t = dj_graph_tensor(n.g, id);
            for (int64_t i = 0; i < dj_tensor_numel(t); i++) {
                float s = (float)mpi_test_value(0, (uint64_t)(id * 1000 + i), 77);
                for (int p = 1; p < size; p++)
                    s += (float)mpi_test_value(p, (uint64_t)(id * 1000 + i), 77);
                bad += ((float *)t->data)[i] != s / (float)size;
            }
        }
    CHECK_EQ_INT(bad, 0);
    /* parameters differ (seed 40 + rank) until broadcast; then rank 0's everywhere */
    net ref;
    model_file = "r3d_mini";
    ok = net_create(&ref, 1, 40) == 0;
    model_file = saved;
    if (ok) {
        CHECK(size == 1 || rank == 0 || weights_rel_diff(&n, &ref) > 0);
        CHECK(dj_comm_broadcast_graph(comm, n.g) == DJ_OK);
        CHECK(weights_rel_diff(&n, &ref) == 0.0);
        net_free(&ref);
    }
    net_free(&n);
}

int main(int argc, char **argv) {
    if (argc > 1)
        model_file = argv[1];
    comm = mpi_test_comm();
    if (!comm)
        return 1;
    DJ_RUN(test_reducer_equals_plain_allreduce);
    DJ_RUN(test_reducer_misuse);
    DJ_RUN(test_graph_broadcast_and_buffer_average);
    DJ_RUN(test_even_split_trains_like_one_process);
    DJ_RUN(test_uneven_split_trains_like_one_process);
    int rc = dj_test_finish();
    dj_comm_free(comm);
    return rc;
}
