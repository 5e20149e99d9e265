/* test_dist.c — the data-parallel layer in one process: launcher detection,
 * the single-process communicator (every collective the identity, bit for
 * bit), and the gradient reducer on a real model: buckets, overlap hooks,
 * gradients unchanged with one rank, misuse errors. The multi-rank behaviour
 * is tested under mpirun by tests/cli/test_mpi.sh (tests/mpi/). */
#include <stdlib.h>
#include <string.h>

#include "dojo/dojo.h"
#include "dojo/model.h"
#include "support/test.h"

static const char *const launcher_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID",
                                            "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS"};

static void clear_launcher_env(void) {
    for (size_t i = 0; i < sizeof launcher_vars / sizeof launcher_vars[0]; i++)
        unsetenv(launcher_vars[i]);
}

static void test_launcher_detection(void) {
    clear_launcher_env();
    CHECK(!dj_comm_launched());
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    CHECK(dj_comm_launched());
    clear_launcher_env();
    setenv("PMI_SIZE", "2", 1);
    CHECK(dj_comm_launched());
    clear_launcher_env();
    setenv("PMIX_RANK", "0", 1);
    CHECK(dj_comm_launched());
    clear_launcher_env();
    setenv("SLURM_PROCID", "0", 1); /* a plain sbatch job with one task is not a launch */
    setenv("SLURM_NTASKS", "1", 1);
    CHECK(!dj_comm_launched());
    setenv("SLURM_NTASKS", "8", 1); /* a batch script of an 8-task allocation: no step, one process */
    CHECK(!dj_comm_launched());
    setenv("SLURM_STEP_NUM_TASKS", "1", 1); /* srun -n 1 */
    CHECK(!dj_comm_launched());
    setenv("SLURM_STEP_NUM_TASKS", "8", 1); /* srun -n 8: task 0 of a step */
    CHECK(dj_comm_launched());
    unsetenv("SLURM_PROCID"); /* not a task of the step */
    CHECK(!dj_comm_launched());
    clear_launcher_env();
}

static void test_single_comm(void) {
    clear_launcher_env();
    dj_comm *c = NULL;
    CHECK(dj_comm_create(DJ_COMM_AUTO, &c) == DJ_OK);
    if (!c)
        return;
    CHECK_EQ_INT(dj_comm_rank(c), 0);
    CHECK_EQ_INT(dj_comm_size(c), 1);
    CHECK(strcmp(dj_comm_backend(c), "single") == 0);
    CHECK(dj_comm_barrier(c) == DJ_OK);
    float x[5] = {1.5f, -2.25f, 3e-8f, 7.0f, 0.1f}, y[5];
    memcpy(y, x, sizeof x);
    CHECK(dj_comm_allreduce_f32(c, x, 5, DJ_REDUCE_SUM) == DJ_OK);
    CHECK(memcmp(x, y, sizeof x) == 0);
    CHECK(dj_comm_allreduce_f32(c, x, 5, DJ_REDUCE_MEAN) == DJ_OK);
    CHECK(memcmp(x, y, sizeof x) == 0);
    CHECK(dj_comm_broadcast_f32(c, x, 5) == DJ_OK);
    CHECK(memcmp(x, y, sizeof x) == 0);
    double d[2] = {0.1, 1e300};
    CHECK(dj_comm_allreduce_f64(c, d, 2, DJ_REDUCE_MEAN) == DJ_OK);
    CHECK(d[0] == 0.1 && d[1] == 1e300);
    int64_t v[2] = {INT64_MAX, -3};
    CHECK(dj_comm_allreduce_i64(c, v, 2) == DJ_OK);
    CHECK(v[0] == INT64_MAX && v[1] == -3);
    float w = 0;
    CHECK(dj_comm_batch_weight(c, 7, &w) == DJ_OK);
    CHECK(w == 1.0f);
    CHECK(dj_comm_batch_weight(c, 0, &w) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "no rank has any rows");
    dj_comm_request *r = NULL;
    int done = 0;
    CHECK(dj_comm_iallreduce_f32(c, x, 5, DJ_REDUCE_SUM, &r) == DJ_OK);
    CHECK(dj_comm_test(r, &done) == DJ_OK);
    CHECK(done);
    CHECK(dj_comm_test(NULL, &done) == DJ_OK && done);
    CHECK(dj_comm_wait(NULL) == DJ_OK);
    CHECK(dj_comm_iallreduce_f32(c, x, 5, DJ_REDUCE_SUM, &r) == DJ_OK);
    CHECK(dj_comm_wait(r) == DJ_OK);
    CHECK(dj_comm_iallreduce_f32(c, x, 5, DJ_REDUCE_SUM, &r) == DJ_OK);
    dj_comm_request_drop(r); /* abandoning a request frees it */
    CHECK(!dj_comm_broken(c));
    dj_comm_set_timeout(c, 2.0);
    CHECK(dj_comm_allreduce_f32(c, NULL, 5, DJ_REDUCE_SUM) == DJ_ERR_INVALID);
    CHECK(dj_comm_allreduce_f32(c, NULL, 0, DJ_REDUCE_SUM) == DJ_OK); /* nothing to do */
    CHECK(dj_comm_allreduce_f32(c, x, 5, (dj_reduce_op)9) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "unknown reduction");
    dj_comm_free(c);
    dj_comm_free(NULL);
}

static void test_bad_kinds(void) {
    dj_comm *c = (dj_comm *)&c;
    CHECK(dj_comm_create((dj_comm_kind)42, &c) == DJ_ERR_INVALID);
    CHECK(c == NULL);
#ifndef DJ_HAVE_MPI
    CHECK(dj_comm_create(DJ_COMM_MPI, &c) == DJ_ERR_UNSUPPORTED);
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1); /* launched, but no MPI here: an error, not N lone trainers */
    CHECK(dj_comm_create(DJ_COMM_AUTO, &c) == DJ_ERR_UNSUPPORTED);
    CHECK_STR_CONTAINS(dj_error_message(), "built without MPI");
    setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
    CHECK(dj_comm_create(DJ_COMM_AUTO, &c) == DJ_OK);
    dj_comm_free(c);
    clear_launcher_env();
#endif
}

/* ---- the reducer with one rank ---- */

typedef struct net {
    dj_model *m;
    dj_graph *g;
    void *scratch;
    dj_exec ex;
} net;

static int net_create(net *n, int training) {
    memset(n, 0, sizeof *n);
    char path[1024];
    dj_config *c = NULL;
    dj_model_shape shape = {2, 2, 16, 16, 0, 0.0f, 1};
    if (dj_model_find("tests/mpi/tiny_timesformer.yaml", path, sizeof path) != DJ_OK ||
        dj_config_load(path, &c) != DJ_OK || dj_model_create(c, &shape, &n->m) != DJ_OK) {
        dj_test_fail_at(__FILE__, __LINE__, "building the model: %s", dj_error_message());
        dj_config_free(c);
        return -1;
    }
    dj_config_free(c);
    n->g = dj_model_graph(n->m);
    if (dj_graph_plan(n->g, training) != DJ_OK || dj_model_init(n->m, 3) != DJ_OK)
        return -1;
    size_t bytes = dj_graph_scratch_bytes(n->g);
    n->scratch = bytes ? malloc(bytes) : NULL;
    n->ex = (dj_exec){NULL, n->scratch, bytes};
    dj_tensor *x = dj_graph_tensor(n->g, dj_model_input(n->m));
    dj_rng rng;
    dj_rng_seed(&rng, 1, 0);
    for (int64_t i = 0; i < dj_tensor_numel(x); i++)
        ((float *)x->data)[i] = (float)dj_rng_normal(&rng);
    int64_t *y = dj_graph_tensor(n->g, dj_model_labels(n->m))->data;
    y[0] = 1;
    y[1] = 2;
    return 0;
}

static void net_free(net *n) {
    free(n->scratch);
    dj_model_free(n->m);
}

static size_t grads_bytes(net *n, int *nparams) {
    size_t total = 0;
    *nparams = 0;
    for (int id = 0; id < dj_graph_num_tensors(n->g); id++)
        if (dj_graph_kind(n->g, id) == DJ_KIND_PARAM && dj_graph_grad(n->g, id)) {
            total += dj_tensor_nbytes(dj_graph_grad(n->g, id));
            (*nparams)++;
        }
    return total;
}

/* Every parameter gradient, concatenated. */
static float *grads_snapshot(net *n) {
    int np;
    float *out = malloc(grads_bytes(n, &np));
    size_t at = 0;
    for (int id = 0; id < dj_graph_num_tensors(n->g); id++)
        if (dj_graph_kind(n->g, id) == DJ_KIND_PARAM && dj_graph_grad(n->g, id)) {
            dj_tensor *gr = dj_graph_grad(n->g, id);
            memcpy((char *)out + at, gr->data, dj_tensor_nbytes(gr));
            at += dj_tensor_nbytes(gr);
        }
    return out;
}

static void test_reducer_one_rank(void) {
    clear_launcher_env();
    dj_comm *c = NULL;
    net n;
    CHECK(dj_comm_create(DJ_COMM_SINGLE, &c) == DJ_OK);
    if (!c || net_create(&n, 1) != 0) {
        dj_comm_free(c);
        return;
    }
    dj_graph_zero_grads(n.g);
    CHECK(dj_graph_forward(n.g, &n.ex, 1) == DJ_OK);
    CHECK(dj_graph_backward(n.g, &n.ex, dj_model_loss(n.m), 1.0f) == DJ_OK);
    float *plain = grads_snapshot(&n);
    int nparams = 0;
    const size_t bytes = grads_bytes(&n, &nparams);
    const size_t sizes[] = {0, 4096, 1};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        dj_grad_reducer *r = NULL;
        CHECK(dj_grad_reducer_create(c, n.g, sizes[k], &r) == DJ_OK);
        if (!r)
            continue;
        int nb = dj_grad_reducer_num_buckets(r);
        CHECK(nb == (sizes[k] == 0 ? 1 : sizes[k] == 1 ? nparams : nb));
        CHECK(sizes[k] != 4096 || (nb > 2 && (size_t)nb <= bytes / 4096 + 1));
        size_t total = 0;
        for (int b = 0; b < nb; b++) {
            total += dj_grad_reducer_bucket_bytes(r, b);
            /* every bucket but the last holds at least the bucket size */
            CHECK(sizes[k] == 0 || b == nb - 1 || dj_grad_reducer_bucket_bytes(r, b) >= sizes[k]);
        }
        CHECK(total >= bytes && total < bytes + 64 * (size_t)nparams); /* plus alignment padding */
        CHECK_EQ_INT(dj_grad_reducer_bucket_bytes(r, -1), 0);
        CHECK_EQ_INT(dj_grad_reducer_bucket_bytes(r, nb), 0);
        dj_graph_zero_grads(n.g);
        CHECK(dj_graph_forward(n.g, &n.ex, 1) == DJ_OK);
        CHECK(dj_grad_reducer_begin(r) == DJ_OK);
        CHECK(dj_graph_backward(n.g, &n.ex, dj_model_loss(n.m), 1.0f) == DJ_OK);
        CHECK(dj_grad_reducer_finish(r) == DJ_OK);
        CHECK_EQ_INT(dj_grad_reducer_started_early(r), nb); /* all started from the backward hook */
        float *reduced = grads_snapshot(&n);
        CHECK(memcmp(plain, reduced, bytes) == 0); /* the mean over one rank */
        free(reduced);
        /* finish without a backward pass in between starts every bucket itself */
        CHECK(dj_grad_reducer_begin(r) == DJ_OK);
        CHECK(dj_grad_reducer_finish(r) == DJ_OK);
        CHECK_EQ_INT(dj_grad_reducer_started_early(r), 0);
        dj_grad_reducer_free(r);
    }
    free(plain);
    net_free(&n);
    dj_comm_free(c);
}

static void test_reducer_misuse(void) {
    dj_comm *c = NULL;
    CHECK(dj_comm_create(DJ_COMM_SINGLE, &c) == DJ_OK);
    net n;
    if (!c || net_create(&n, 1) != 0) {
        dj_comm_free(c);
        return;
    }
    dj_grad_reducer *r = (dj_grad_reducer *)&r;
    CHECK(dj_grad_reducer_create(NULL, n.g, 0, &r) == DJ_ERR_INVALID);
    CHECK(r == NULL);
    CHECK(dj_grad_reducer_create(c, n.g, 0, &r) == DJ_OK);
    CHECK(dj_grad_reducer_finish(r) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "without begin");
    CHECK(dj_grad_reducer_begin(r) == DJ_OK);
    CHECK(dj_grad_reducer_begin(r) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "twice");
    dj_grad_reducer_free(r); /* armed: free removes the hook */
    dj_graph_zero_grads(n.g);
    CHECK(dj_graph_forward(n.g, &n.ex, 1) == DJ_OK);
    CHECK(dj_graph_backward(n.g, &n.ex, dj_model_loss(n.m), 1.0f) == DJ_OK); /* no dangling hook */
    net_free(&n);
    /* a graph planned for inference has no gradients to reduce */
    if (net_create(&n, 0) == 0) {
        CHECK(dj_grad_reducer_create(c, n.g, 0, &r) == DJ_ERR_INVALID);
        CHECK_STR_CONTAINS(dj_error_message(), "no parameter gradients");
        net_free(&n);
    }
    dj_comm_free(c);
}

static void test_graph_collectives_one_rank(void) {
    dj_comm *c = NULL;
    CHECK(dj_comm_create(DJ_COMM_SINGLE, &c) == DJ_OK);
    net n;
    if (!c || net_create(&n, 1) != 0) {
        dj_comm_free(c);
        return;
    }
    dj_tensor *w = dj_graph_tensor(n.g, dj_graph_find(n.g, "head.weight"));
    float w0 = ((float *)w->data)[3];
    CHECK(dj_comm_broadcast_graph(c, n.g) == DJ_OK);
    CHECK(dj_comm_average_buffers(c, n.g) == DJ_OK);
    CHECK(((float *)w->data)[3] == w0);
    net_free(&n);
    /* before planning there is nothing to send */
    char path[1024];
    dj_config *cfg = NULL;
    dj_model *m = NULL;
    dj_model_shape shape = {1, 2, 16, 16, 0, 0.0f, 1};
    if (dj_model_find("r3d_mini", path, sizeof path) == DJ_OK && dj_config_load(path, &cfg) == DJ_OK &&
        dj_model_create(cfg, &shape, &m) == DJ_OK) {
        CHECK(dj_comm_broadcast_graph(c, dj_model_graph(m)) == DJ_ERR_INVALID);
        CHECK_STR_CONTAINS(dj_error_message(), "not planned");
        CHECK(dj_comm_average_buffers(c, dj_model_graph(m)) == DJ_ERR_INVALID);
    } else {
        dj_test_fail_at(__FILE__, __LINE__, "r3d_mini: %s", dj_error_message());
    }
    dj_model_free(m);
    dj_config_free(cfg);
    dj_comm_free(c);
}

int main(void) {
    DJ_RUN(test_launcher_detection);
    DJ_RUN(test_single_comm);
    DJ_RUN(test_bad_kinds);
    DJ_RUN(test_reducer_one_rank);
    DJ_RUN(test_reducer_misuse);
    DJ_RUN(test_graph_collectives_one_rank);
    return dj_test_finish();
}
