/* compare_checkpoints.c — compares every tensor of two checkpoints:
 *   compare_checkpoints A.safetensors B.safetensors RTOL [--tensor]
 * Exit 0 when all weights and buffers agree within |a - b| <= rtol * max(|a|, |b|, 1e-3)
 * (the largest difference is printed), 1 otherwise, 2 on a read error. With
 * --tensor the scale is the tensor's: max |a - b| <= rtol * max |b| over each
 * tensor (as tests/mpi/mpi_train.c compares weights). Used by
 * tests/cli/test_mpi_train.sh to check that N ranks train like one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dojo/safetensors.h"

int main(int argc, char **argv) {
    const int per_tensor = argc == 5 && !strcmp(argv[4], "--tensor");
    if (argc != 4 && !per_tensor) {
        fprintf(stderr, "usage: compare_checkpoints A B RTOL [--tensor]\n");
        return 2;
    }
    double rtol = atof(argv[3]), worst = 0;
    const char *worst_name = "";
    dj_safetensors *a = NULL, *b = NULL;
    if (dj_safetensors_open(argv[1], &a) != DJ_OK || dj_safetensors_open(argv[2], &b) != DJ_OK) {
        fprintf(stderr, "compare_checkpoints: %s\n", dj_error_message());
        return 2;
    }
    int rc = 0;
    for (int i = 0; i < dj_safetensors_count(a) && rc == 0; i++) {
        dj_st_view va, vb;
        dj_safetensors_at(a, i, &va);
        if (!strncmp(va.name, "optim/", 6))
            continue; /* the weights are what must agree; optimizer state follows them */
        if (dj_safetensors_find(b, va.name, &vb) != DJ_OK || va.numel != vb.numel || va.dtype != vb.dtype ||
            va.dtype != DJ_ST_F32) {
            fprintf(stderr, "compare_checkpoints: %s differs in presence, type or size\n", va.name);
            rc = 1;
            break;
        }
        double dmax = 0, bmax = 0;
        for (int64_t k = 0; k < va.numel; k++) {
            float x, y;
            memcpy(&x, (const char *)va.data + 4 * k, 4);
            memcpy(&y, (const char *)vb.data + 4 * k, 4);
            double scale = fmax(fmax(fabs(x), fabs(y)), 1e-3);
            double rel = fabs((double)x - y) / scale;
            if (!per_tensor && !(rel <= worst)) {
                worst = rel;
                worst_name = va.name;
            }
            dmax = fmax(dmax, fabs((double)x - y));
            if (isnan(x) != isnan(y))
                dmax = INFINITY;
            bmax = fmax(bmax, fabs((double)y));
        }
        if (per_tensor && !(dmax / fmax(bmax, 1e-6) <= worst)) {
            worst = dmax / fmax(bmax, 1e-6);
            worst_name = va.name;
        }
    }
    if (rc == 0 && dj_safetensors_count(a) != dj_safetensors_count(b)) { /* optimizer tensors included */
        fprintf(stderr, "compare_checkpoints: %d vs %d tensors\n", dj_safetensors_count(a), dj_safetensors_count(b));
        rc = 1;
    }
    if (rc == 0) {
        printf("largest relative difference %.3g (%s)\n", worst, worst_name);
        rc = worst <= rtol ? 0 : 1;
    }
    dj_safetensors_close(a);
    dj_safetensors_close(b);
    return rc;
}
