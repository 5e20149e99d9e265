/* dojo/nccl.h — all-reduce of GPU buffers across ranks through NCCL.
 *
 * One process per GPU, started by mpirun or srun: the ranks first join a
 * dj_comm (MPI, dojo/dist.h), which carries NCCL's unique id from rank 0 to
 * the others; then every rank opens its GPU (--device cuda:N, usually N =
 * the local rank) and dj_nccl_create joins them in one NCCL communicator.
 * All-reduces run on the device's stream, in place, on device memory.
 *
 * Unlike dj_comm_allreduce_f32 (a fixed rank order on the CPU), NCCL picks
 * its own algorithm: results are the same on every rank and from run to run
 * on one machine setup, but may differ in the last bits from the CPU path.
 *
 * Built without NCCL (or CUDA), dj_nccl_create returns DJ_ERR_UNSUPPORTED
 * "built without NCCL". */
#ifndef DOJO_NCCL_H
#define DOJO_NCCL_H

#include <stddef.h>

#include "dojo/device.h"
#include "dojo/dist.h"
#include "dojo/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dj_nccl dj_nccl;

/* Collective over every rank of c: each passes its opened GPU. */
dj_status dj_nccl_create(dj_comm *c, dj_device *dev, dj_nccl **out);
void dj_nccl_free(dj_nccl *n);
int dj_nccl_rank(const dj_nccl *n);
int dj_nccl_size(const dj_nccl *n);
/* In place on device memory: buf (count floats) becomes the sum (or mean)
 * over ranks; queued on the device's stream (dj_device_sync waits for it). */
dj_status dj_nccl_allreduce_f32(dj_nccl *n, float *buf, size_t count, dj_reduce_op op);

#ifdef __cplusplus
}
#endif
#endif
