/* mpi_fault.c — a rank that fails must not leave the others hanging.
 *   mpi_fault exit   rank 1 exits abruptly (no MPI_Finalize) before an
 *                    all-reduce; the others are stopped by the launcher
 *   mpi_fault hang   rank 1 stays alive but never joins the all-reduce; the
 *                    others time out (DOJO_DIST_TIMEOUT) naming rank 1
 * The other ranks print dojo's error and exit 1; tests/cli/test_mpi.sh checks
 * that the whole job ends non-zero within the limit with a message naming
 * rank 1. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dojo/dojo.h"
#include "mpi_common.h"

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "exit") != 0 && strcmp(argv[1], "hang") != 0)) {
        fprintf(stderr, "usage: mpi_fault exit|hang\n");
        return 2;
    }
    dj_comm *c = mpi_test_comm();
    if (!c)
        return 1;
    float x[1000] = {0};
    if (dj_comm_allreduce_f32(c, x, 1000, DJ_REDUCE_SUM) != DJ_OK) { /* all ranks healthy here */
        fprintf(stderr, "first all-reduce failed: %s\n", dj_error_message());
        return 1;
    }
    if (dj_comm_rank(c) == 1) {
        if (strcmp(argv[1], "exit") == 0) {
            fprintf(stderr, "rank 1: exiting abruptly\n");
            _exit(3);
        }
        fprintf(stderr, "rank 1: hanging\n");
        sleep(120); /* the launcher kills it once another rank has failed */
        _exit(4);
    }
    dj_status s = dj_comm_allreduce_f32(c, x, 1000, DJ_REDUCE_SUM);
    if (s == DJ_OK) {
        fprintf(stderr, "rank %d: the all-reduce succeeded without rank 1\n", dj_comm_rank(c));
        dj_comm_free(c);
        return 0;
    }
    fprintf(stderr, "dojo: error: %s\n", dj_error_message());
    dj_comm_free(c); /* broken: does not finalise, which would wait for rank 1 */
    return 1;
}
