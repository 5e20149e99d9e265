/* comm_nccl.c — dojo/nccl.h: GPU all-reduce through NCCL, bootstrapped over
 * a dj_comm (rank 0's ncclUniqueId broadcast to the other ranks). Compiled
 * with NCCL when the Makefile found it (DJ_HAVE_NCCL); otherwise every entry
 * point says "built without NCCL". */
#include "dojo/nccl.h"

#include <stdlib.h>
#include <string.h>

#ifdef DJ_HAVE_NCCL
#include <nccl.h>

#include "kernels/cuda/cuda_internal.h"

struct dj_nccl {
    ncclComm_t comm;
    dj_device *dev;
    int rank, size;
};

static dj_status dj_nccl_check(ncclResult_t r, const char *what) {
    if (r == ncclSuccess)
        return DJ_OK;
    return dj_error_set(DJ_ERR_INTERNAL, "nccl", "%s: %s", what, ncclGetErrorString(r));
}

dj_status dj_nccl_create(dj_comm *c, dj_device *dev, dj_nccl **out) {
    *out = NULL;
    if (!dev)
        return dj_error_set(DJ_ERR_INVALID, "nccl", "no GPU opened: NCCL needs --device cuda");
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (dj_comm_rank(c) == 0)
        DJ_TRY(dj_nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId"));
    DJ_TRY(dj_comm_broadcast_bytes(c, &id, sizeof id));
    dj_nccl *n = calloc(1, sizeof *n);
    if (!n)
        return dj_error_set(DJ_ERR_NOMEM, "nccl", "out of memory");
    n->dev = dev;
    n->rank = dj_comm_rank(c);
    n->size = dj_comm_size(c);
    dj_status st = dj_cuda_check(cudaSetDevice(dev->index), "nccl", "cudaSetDevice");
    if (st == DJ_OK)
        st = dj_nccl_check(ncclCommInitRank(&n->comm, n->size, id, n->rank), "ncclCommInitRank");
    if (st != DJ_OK) {
        free(n);
        return st;
    }
    *out = n;
    return DJ_OK;
}

void dj_nccl_free(dj_nccl *n) {
    if (!n)
        return;
    if (n->comm)
        ncclCommDestroy(n->comm);
    free(n);
}

int dj_nccl_rank(const dj_nccl *n) { return n ? n->rank : -1; }
int dj_nccl_size(const dj_nccl *n) { return n ? n->size : 0; }

dj_status dj_nccl_allreduce_f32(dj_nccl *n, float *buf, size_t count, dj_reduce_op op) {
    if (count == 0)
        return DJ_OK;
    ncclRedOp_t rop = op == DJ_REDUCE_MEAN ? ncclAvg : ncclSum;
    return dj_nccl_check(ncclAllReduce(buf, buf, count, ncclFloat32, rop, n->comm, n->dev->stream), "ncclAllReduce");
}

#else

dj_status dj_nccl_create(dj_comm *c, dj_device *dev, dj_nccl **out) {
    *out = NULL;
    return dj_error_set(DJ_ERR_UNSUPPORTED, "nccl", "built without NCCL");
}
void dj_nccl_free(dj_nccl *n) {}
int dj_nccl_rank(const dj_nccl *n) { return -1; }
int dj_nccl_size(const dj_nccl *n) { return 0; }
dj_status dj_nccl_allreduce_f32(dj_nccl *n, float *buf, size_t count, dj_reduce_op op) {
    return dj_error_set(DJ_ERR_UNSUPPORTED, "nccl", "built without NCCL");
}

#endif
