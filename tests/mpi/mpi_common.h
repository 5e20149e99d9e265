/* mpi_common.h — helpers shared by the programs that tests/cli/test_mpi.sh
 * runs under mpirun: a communicator from the launcher, and data that every
 * rank can regenerate for any rank (so each rank can compute the expected
 * result of a collective by itself). */
#ifndef DOJO_TESTS_MPI_COMMON_H
#define DOJO_TESTS_MPI_COMMON_H

#include <stdint.h>
#include <stdlib.h>

#include "dojo/dist.h"
#include "../unit/support/test.h"

static inline uint64_t mpi_test_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Rank r's element i of test buffer `salt`: signed, magnitudes spread over
 * 2^-8..2^7 so that the order of a sum changes its rounding. */
static inline double mpi_test_value(int r, uint64_t i, uint64_t salt) {
    uint64_t h = mpi_test_mix(mpi_test_mix(salt * 1000003u + (uint64_t)r) ^ i);
    double u = (double)(h >> 40) / (double)(1u << 24) * 2.0 - 1.0;
    return ldexp(u, (int)(h & 15) - 8);
}

/* The communicator of the launcher (MPI under mpirun, else one process). */
static inline dj_comm *mpi_test_comm(void) {
    dj_comm *c = NULL;
    if (dj_comm_create(DJ_COMM_AUTO, &c) != DJ_OK) {
        fprintf(stderr, "cannot create the communicator: %s\n", dj_error_message());
        return NULL;
    }
    return c;
}

#endif
