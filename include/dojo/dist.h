/* dojo/dist.h — data-parallel training across processes.
 *
 * A communicator (dj_comm) joins the ranks of one job: a single-process
 * backend (rank 0 of 1; every collective is the identity) and an MPI backend
 * (the job started by mpirun or srun). Collectives act on buffers in place.
 *
 * All-reduce is dojo's own, built on point-to-point messages: element i of
 * the result is always ((x_0 + x_1) + x_2) + ... in rank order, computed once
 * by the rank owning that slice and sent to the others. So the result is the
 * same bits on every rank, the same whether a buffer is reduced whole or in
 * buckets, and independent of MPI's algorithm choice.
 *
 * Failures: no wait blocks forever. A collective that has not completed
 * after the comm's timeout (default 45 s, env DOJO_DIST_TIMEOUT) fails with a
 * message naming the rank that did not answer; the comm is then broken:
 * later collectives fail at once, and dj_comm_free() skips MPI_Finalize
 * (which would hang), so the process can exit non-zero and the launcher
 * stops the job. MPI errors are returned (MPI_ERRORS_RETURN), not fatal.
 *
 * Data-parallel step (see dj_grad_reducer below for the exact sequence): each
 * rank computes the mean loss of its own rows; the reducer sums gradients
 * over ranks and divides by the number of ranks, which equals the gradient
 * of the global mean when every rank has the same batch size. With uneven
 * batches, scale each rank's loss by dj_comm_batch_weight() (n_r * size /
 * sum n) so that the average weights each rank by its rows. */
#ifndef DOJO_DIST_H
#define DOJO_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "dojo/error.h"
#include "dojo/graph.h"
#include "dojo/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dj_comm_kind {
    DJ_COMM_AUTO = 0, /* MPI when launched by mpirun/srun (env), else single */
    DJ_COMM_SINGLE = 1,
    DJ_COMM_MPI = 2,
} dj_comm_kind;

typedef enum dj_reduce_op {
    DJ_REDUCE_SUM = 0,
    DJ_REDUCE_MEAN = 1, /* the sum divided by the number of ranks */
} dj_reduce_op;

typedef struct dj_comm dj_comm;
typedef struct dj_comm_request dj_comm_request;

/* 1 when the environment says this process was started by an MPI launcher
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK set, or a task of srun:
 * SLURM_PROCID with SLURM_STEP_NUM_TASKS > 1; an sbatch script's
 * SLURM_NTASKS alone is one process). dj_comm_create() then refuses an MPI
 * that joins fewer processes than the launcher started. */
int dj_comm_launched(void);

/* Creates the communicator. MPI is initialised here (once per process) and
 * finalised by dj_comm_free(); DJ_COMM_MPI in a build without MPI fails with
 * DJ_ERR_UNSUPPORTED. */
dj_status dj_comm_create(dj_comm_kind kind, dj_comm **out);
void dj_comm_free(dj_comm *c);

int dj_comm_rank(const dj_comm *c);
int dj_comm_size(const dj_comm *c);
const char *dj_comm_backend(const dj_comm *c); /* "single" or "mpi" */
/* Seconds a wait may last before it fails naming the silent rank. */
void dj_comm_set_timeout(dj_comm *c, double seconds);
/* 1 after a timeout or an MPI error: the comm can no longer be used. */
int dj_comm_broken(const dj_comm *c);

dj_status dj_comm_barrier(dj_comm *c);
/* Copies rank 0's buffer to every rank (initial weights). */
dj_status dj_comm_broadcast_f32(dj_comm *c, float *buf, size_t n);
dj_status dj_comm_broadcast_bytes(dj_comm *c, void *buf, size_t bytes);
/* In-place all-reduce; every rank passes the same n. */
dj_status dj_comm_allreduce_f32(dj_comm *c, float *buf, size_t n, dj_reduce_op op);
dj_status dj_comm_allreduce_f64(dj_comm *c, double *buf, size_t n, dj_reduce_op op);
dj_status dj_comm_allreduce_i64(dj_comm *c, int64_t *buf, size_t n); /* sum */

/* Non-blocking f32 all-reduce: starts it and returns a request; buf must
 * stay untouched until the request completes. dj_comm_test() advances it
 * (MPI progresses only inside calls) and sets *done; dj_comm_wait() waits
 * up to the timeout. Both free the request when it completes or fails. */
dj_status dj_comm_iallreduce_f32(dj_comm *c, float *buf, size_t n, dj_reduce_op op, dj_comm_request **out);
dj_status dj_comm_test(dj_comm_request *r, int *done);
dj_status dj_comm_wait(dj_comm_request *r);
/* Abandons a request after a failure elsewhere (frees it without waiting). */
void dj_comm_request_drop(dj_comm_request *r);

/* The factor to scale this rank's mean loss by so that the averaged
 * gradient equals that of the mean over all ranks' rows: local_rows * size /
 * total_rows (exactly 1 when all ranks have the same rows). Collective. */
dj_status dj_comm_batch_weight(dj_comm *c, int64_t local_rows, float *weight);

/* Copies rank 0's parameters and buffers (running statistics) to every rank
 * of a planned graph: the same starting point everywhere. Collective. */
dj_status dj_comm_broadcast_graph(dj_comm *c, dj_graph *g);
/* Replaces every buffer (batch norm running mean and variance) by its mean
 * over ranks, the same bits everywhere: each rank's statistics come from its
 * own rows, so call this before evaluating or saving a checkpoint (unless
 * batch norm is synchronised, dj_comm_stats_sync: without it, N ranks of
 * B/N rows normalise over B/N rows, as PyTorch's DDP without SyncBatchNorm). */
dj_status dj_comm_average_buffers(dj_comm *c, dj_graph *g);

/* Synchronised batch norm: a statistics hook (dojo/ops.h) whose sum is this
 * comm's f64 all-reduce. Give it to dj_graph_set_stats_sync() on every rank
 * (the struct must outlive the graph's use of it): training-mode batch norm
 * then normalises over all ranks' rows, each rank weighted by its own count,
 * and the running statistics are the same on every rank. Every forward and
 * backward in training mode is then collective (all ranks run the same
 * steps). */
dj_stats_sync dj_comm_stats_sync(dj_comm *c);

/* ---- bucketed gradient reduction ----------------------------------------
 * Groups the parameter gradients of a planned (training) graph into buckets
 * of about bucket_bytes (0: 25 MB), in reverse registration order (the order
 * the backward pass finishes them). A bucket is a contiguous range of the
 * graph's gradient memory, reduced in place. Between dj_grad_reducer_begin()
 * and dj_graph_backward()'s end, each bucket's all-reduce starts as soon as
 * the backward of the earliest node using its parameters has run, and
 * messages progress between nodes; dj_grad_reducer_finish() waits for them
 * and leaves every gradient as the mean over ranks, the same bits on every
 * rank. One step of the trainer:
 *
 *   dj_graph_zero_grads(g);
 *   dj_graph_forward(g, ex, 1);
 *   dj_grad_reducer_begin(r);                 // last micro-batch only
 *   dj_graph_backward(g, ex, loss, weight);   // weight: dj_comm_batch_weight
 *   dj_grad_reducer_finish(r);                // gradients are now averaged
 *   dj_optimizer_step(opt, ex, lr, &norm);    // same update on every rank
 *
 * With gradient accumulation, call begin only before the last micro-batch's
 * backward: the earlier ones accumulate locally. The reducer owns the
 * graph's backward hook while it is armed. */
typedef struct dj_grad_reducer dj_grad_reducer;

dj_status dj_grad_reducer_create(dj_comm *c, dj_graph *g, size_t bucket_bytes, dj_grad_reducer **out);
void dj_grad_reducer_free(dj_grad_reducer *r);
dj_status dj_grad_reducer_begin(dj_grad_reducer *r);
dj_status dj_grad_reducer_finish(dj_grad_reducer *r);
int dj_grad_reducer_num_buckets(const dj_grad_reducer *r);
/* Bytes of bucket b (including alignment padding between gradients). */
size_t dj_grad_reducer_bucket_bytes(const dj_grad_reducer *r, int b);
/* Buckets whose reduction had started before the backward pass ended, in
 * the last step (a measure of overlap). */
int dj_grad_reducer_started_early(const dj_grad_reducer *r);
/* When bucket b's all-reduce started and when it was seen complete in the
 * last step (dj_time_now() seconds; completion is noticed between backward
 * nodes or in finish). 0 when it did not run; 1 otherwise. */
int dj_grad_reducer_bucket_times(const dj_grad_reducer *r, int b, double *start, double *done);

#ifdef __cplusplus
}
#endif
#endif
