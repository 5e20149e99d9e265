/* stats_sync.c — the hook that synchronises batch norm over the ranks: the
 * operators call dj_stats_sync.sum (dojo/ops.h) and never MPI; this fills it
 * with the communicator's all-reduce (rank-order sums, the same bits on
 * every rank). */
#include "dojo/dist.h"

static dj_status dj_comm_stats_sum(void *ctx, double *buf, size_t n) {
    return dj_comm_allreduce_f64((dj_comm *)ctx, buf, n, DJ_REDUCE_SUM);
}

dj_stats_sync dj_comm_stats_sync(dj_comm *c) {
    dj_stats_sync s = {dj_comm_stats_sum, c};
    return s;
}
