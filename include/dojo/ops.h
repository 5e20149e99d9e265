/* dojo/ops.h — how operators are called; the operator headers themselves.
 *
 * Every operator is a *_forward / *_backward pair of functions over dense
 * float32 tensors, with a shape comment on each argument, e.g.
 *
 *   // inp (N,Cin,T,H,W), weight (Cout,Cin/groups,kT,kH,kW), bias (Cout) or NULL
 *   // -> out (N,Cout,To,Ho,Wo)
 *   dj_status dj_conv3d_forward(const dj_exec *ex, const dj_conv3d_params *p, ...);
 *
 * Conventions shared by all operators:
 * - Shapes are checked on entry; a mismatch returns DJ_ERR_INVALID with a
 *   message naming the operator, the argument and both shapes.
 * - Forward writes (overwrites) its outputs. Backward ACCUMULATES (+=) into
 *   the gradients it is given, so a tensor used twice (a residual branch)
 *   sums its gradients without extra code; the caller zeroes gradients
 *   before the backward pass. A NULL gradient pointer means "not wanted".
 *   Where an operator says so (batch norm, batch norm + ReLU, add + ReLU),
 *   its input gradient may be the output gradient's own buffer (the graph
 *   passes gradients in place when nothing else adds to them): it is then
 *   written as 0 + gradient, the bits += into a zeroed buffer gives.
 * - No operator allocates. Scratch memory comes from ex->scratch, sized in
 *   advance through the operator's *_scratch_bytes() when it has one.
 * - Parallel loops go through ex->pool and are bit-identical whatever the
 *   number of threads.
 * - Each fast operator has a naive reference beside it (*_ref) that the tests
 *   and the finite-difference gradient checks use. */
#ifndef DOJO_OPS_H
#define DOJO_OPS_H

#include <stddef.h>

#include "dojo/error.h"
#include "dojo/tensor.h"
#include "dojo/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where an operator runs: the thread pool (NULL: the calling thread) and a
 * scratch buffer planned when the model was built. */
typedef struct dj_exec {
    dj_threadpool *pool;
    void *scratch;
    size_t scratch_bytes;
} dj_exec;

/* Statistics shared between replicas (synchronised batch norm): sum(ctx,
 * buf, n) adds n doubles over the replicas of a step (data-parallel ranks)
 * in place, leaving the same result on each. An operator only calls it; the
 * caller's hook does any talking (dj_comm_stats_sync() in dojo/dist.h), so
 * no operator knows about processes. */
typedef struct dj_stats_sync {
    dj_status (*sum)(void *ctx, double *buf, size_t n);
    void *ctx;
} dj_stats_sync;

#ifdef __cplusplus
}
#endif
#endif
