/* mpi_collectives.c — the communicator's collectives under mpirun (any
 * number of ranks; alone it checks the single-process backend): broadcast,
 * all-reduce of floats, doubles and integers equal to the sum in rank order
 * bit for bit (so the same bits on every rank), several reductions in flight,
 * barrier, batch weights, bad arguments. */
#include <string.h>

#include "dojo/dojo.h"
#include "mpi_common.h"
#ifdef DJ_HAVE_MPI
#include <mpi.h>
#endif

static dj_comm *comm;

static void test_rank_and_size(void) {
    const int rank = dj_comm_rank(comm), size = dj_comm_size(comm);
    CHECK(rank >= 0 && rank < size);
    const char *env = getenv("OMPI_COMM_WORLD_SIZE");
    CHECK_EQ_INT(size, env ? atoi(env) : 1);
    CHECK(strcmp(dj_comm_backend(comm), env ? "mpi" : "single") == 0);
    int64_t v[2] = {rank, 1};
    CHECK(dj_comm_allreduce_i64(comm, v, 2) == DJ_OK);
    CHECK_EQ_INT(v[0], (int64_t)size * (size - 1) / 2); /* distinct ranks 0..size-1 */
    CHECK_EQ_INT(v[1], size);
    CHECK(dj_comm_barrier(comm) == DJ_OK);
}

static void test_broadcast(void) {
    const int rank = dj_comm_rank(comm);
    const size_t sizes[] = {0, 1, 5, 100003};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        float *x = malloc((n + 1) * sizeof *x);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)mpi_test_value(rank, i, 10 + k); /* each rank different */
        CHECK(dj_comm_broadcast_f32(comm, x, n) == DJ_OK);
        int same = 1;
        for (size_t i = 0; i < n; i++)
            same &= x[i] == (float)mpi_test_value(0, i, 10 + k);
        CHECK_MSG(same, "broadcast of %zu floats: rank %d differs from rank 0", n, rank);
        free(x);
    }
    char text[32];
    snprintf(text, sizeof text, "from rank %d", rank);
    CHECK(dj_comm_broadcast_bytes(comm, text, sizeof text) == DJ_OK);
    CHECK(strcmp(text, "from rank 0") == 0);
}

/* all-reduce of n floats against the sum in rank order computed here */
static void check_allreduce_f32(size_t n, dj_reduce_op op, uint64_t salt) {
    const int rank = dj_comm_rank(comm), size = dj_comm_size(comm);
    float *x = malloc((n + 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)mpi_test_value(rank, i, salt);
    CHECK(dj_comm_allreduce_f32(comm, x, n, op) == DJ_OK);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float s = (float)mpi_test_value(0, i, salt);
        for (int p = 1; p < size; p++)
            s += (float)mpi_test_value(p, i, salt);
        if (op == DJ_REDUCE_MEAN)
            s /= (float)size;
        bad += memcmp(&s, &x[i], sizeof s) != 0;
    }
    CHECK_MSG(bad == 0, "all-reduce (%s) of %zu floats: %zu elements differ from the rank-order sum",
              op == DJ_REDUCE_MEAN ? "mean" : "sum", n, bad);
    free(x);
}

static void test_allreduce_floats(void) {
    const size_t sizes[] = {0, 1, 2, 7, 1000, (1u << 20) + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        check_allreduce_f32(sizes[k], DJ_REDUCE_SUM, 100 + k);
        check_allreduce_f32(sizes[k], DJ_REDUCE_MEAN, 200 + k);
    }
}

static void test_allreduce_doubles_and_integers(void) {
    const int rank = dj_comm_rank(comm), size = dj_comm_size(comm);
    enum { N = 4099 };
    double *d = malloc(N * sizeof *d);
    int64_t *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++) {
        d[i] = mpi_test_value(rank, (uint64_t)i, 7);
        v[i] = (int64_t)(mpi_test_mix((uint64_t)(rank * N + i)) >> 4) - ((int64_t)1 << 58);
    }
    CHECK(dj_comm_allreduce_f64(comm, d, N, DJ_REDUCE_MEAN) == DJ_OK);
    CHECK(dj_comm_allreduce_i64(comm, v, N) == DJ_OK);
    int bad_d = 0, bad_v = 0;
    for (int i = 0; i < N; i++) {
        double s = mpi_test_value(0, (uint64_t)i, 7);
        int64_t t = 0;
        for (int p = 1; p < size; p++)
            s += mpi_test_value(p, (uint64_t)i, 7);
        for (int p = 0; p < size; p++)
            t += (int64_t)(mpi_test_mix((uint64_t)(p * N + i)) >> 4) - ((int64_t)1 << 58);
        s /= size;
        bad_d += memcmp(&s, &d[i], sizeof s) != 0;
        bad_v += t != v[i];
    }
    CHECK_EQ_INT(bad_d, 0);
    CHECK_EQ_INT(bad_v, 0);
    free(d);
    free(v);
}

/* Several reductions in flight at once, completed in reverse order. */
static void test_requests_in_flight(void) {
    const int rank = dj_comm_rank(comm), size = dj_comm_size(comm);
    enum { K = 5, N = 30011 };
    float *x[K];
    dj_comm_request *req[K];
    for (int k = 0; k < K; k++) {
        x[k] = malloc(N * sizeof(float));
        for (int i = 0; i < N; i++)
            x[k][i] = (float)mpi_test_value(rank, (uint64_t)i, 300 + (uint64_t)k);
        CHECK(dj_comm_iallreduce_f32(comm, x[k], N, DJ_REDUCE_SUM, &req[k]) == DJ_OK);
    }
    int done = 0;
    CHECK(dj_comm_test(req[K - 1], &done) == DJ_OK);
    if (done)
        req[K - 1] = NULL; /* completed and freed by test */
    for (int k = K - 1; k >= 0; k--)
        CHECK(dj_comm_wait(req[k]) == DJ_OK);
    for (int k = 0; k < K; k++) {
        int bad = 0;
        for (int i = 0; i < N; i++) {
            float s = (float)mpi_test_value(0, (uint64_t)i, 300 + (uint64_t)k);
            for (int p = 1; p < size; p++)
                s += (float)mpi_test_value(p, (uint64_t)i, 300 + (uint64_t)k);
            bad += s != x[k][i];
        }
        CHECK_MSG(bad == 0, "request %d: %d elements wrong", k, bad);
        free(x[k]);
    }
}

/* With two ranks a sum has one order, so MPI's own all-reduce must give the
 * same bits as dojo's. */
static void test_same_bits_as_mpi_allreduce(void) {
#ifdef DJ_HAVE_MPI
    if (dj_comm_size(comm) != 2)
        SKIP("the comparison with MPI_Allreduce is exact for two ranks only");
    enum { N = 100000 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    for (int i = 0; i < N; i++)
        a[i] = (float)mpi_test_value(dj_comm_rank(comm), (uint64_t)i, 400);
    CHECK(MPI_Allreduce(a, b, N, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS);
    CHECK(dj_comm_allreduce_f32(comm, a, N, DJ_REDUCE_SUM) == DJ_OK);
    CHECK(memcmp(a, b, N * sizeof *a) == 0);
    free(a);
    free(b);
#else
    SKIP("built without MPI");
#endif
}

static void test_batch_weight(void) {
    const int rank = dj_comm_rank(comm), size = dj_comm_size(comm);
    float w = 0;
    CHECK(dj_comm_batch_weight(comm, 4, &w) == DJ_OK);
    CHECK(w == 1.0f); /* even split: exactly one */
    CHECK(dj_comm_batch_weight(comm, rank + 1, &w) == DJ_OK);
    CHECK_CLOSE(w, (double)(rank + 1) * size / (size * (size + 1) / 2.0), 1e-6, 0);
    /* weights average to one over the ranks */
    double sum = w;
    CHECK(dj_comm_allreduce_f64(comm, &sum, 1, DJ_REDUCE_MEAN) == DJ_OK);
    CHECK_CLOSE(sum, 1.0, 1e-6, 0);
}

static void test_bad_arguments(void) {
    CHECK(dj_comm_allreduce_f32(comm, NULL, 3, DJ_REDUCE_SUM) == DJ_ERR_INVALID);
    CHECK_STR_CONTAINS(dj_error_message(), "NULL buffer");
    float x = 1;
    CHECK(dj_comm_allreduce_f32(comm, &x, 1, (dj_reduce_op)7) == DJ_ERR_INVALID);
    CHECK(dj_comm_batch_weight(comm, -1, &x) == DJ_ERR_INVALID);
    CHECK(!dj_comm_broken(comm)); /* argument errors do not break the comm */
    CHECK(dj_comm_barrier(comm) == DJ_OK);
}

int main(void) {
    comm = mpi_test_comm();
    if (!comm)
        return 1;
    DJ_RUN(test_rank_and_size);
    DJ_RUN(test_broadcast);
    DJ_RUN(test_allreduce_floats);
    DJ_RUN(test_allreduce_doubles_and_integers);
    DJ_RUN(test_requests_in_flight);
    DJ_RUN(test_same_bits_as_mpi_allreduce);
    DJ_RUN(test_batch_weight);
    DJ_RUN(test_bad_arguments);
    int rc = dj_test_finish();
    dj_comm_free(comm);
    return rc;
}
